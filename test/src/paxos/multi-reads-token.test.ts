/**
 * Linearizable reads by a quorum round (ReadIndex) and the leadership fencing token
 * (the start slot of a leadership), including its order against lock-grant tokens.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import { encodeCommand, KvError } from '../../../src/kv/index.ts';
import { Cluster } from './harness.ts';

describe('paxos reads (ReadIndex by a quorum round)', () => {
  it('on the leader: one heartbeat round, and the read index is the commit index at the request', () => {
    const c = new Cluster({ seed: 31, voters: [1, 2, 3] });
    const l = c.waitLeader();
    const w = c.propose('x')!;
    c.run(10);
    c.record = true;
    expect(l.e.readIndex(7).ok).toBe(true);
    c.process(l);
    expect(l.reads).toEqual([]); // not before a quorum answered the round
    c.run(1);
    expect(l.reads).toEqual([{ ctx: 7, index: l.e.commitIndex }]);
    expect(l.reads[0]!.index).toBeGreaterThanOrEqual(w);
    const rounds = c.log.filter((m) => m.type === MsgType.Heartbeat && m.ctx > 0);
    expect(rounds).toHaveLength(2);
  });

  it('reads that arrive together share one round', () => {
    const c = new Cluster({ seed: 32, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    c.record = true;
    for (let i = 1; i <= 10; i++) l.e.readIndex(i);
    c.process(l);
    c.run(1);
    expect(l.reads.map((r) => r.ctx)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat).length).toBe(2);
  });

  it('a follower forwards the read to the leader and gets the read state back', () => {
    const c = new Cluster({ seed: 33, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.propose('y');
    c.run(10);
    const f = c.up().find((n) => n.id !== l.id)!;
    expect(f.e.readIndex(5).ok).toBe(true);
    c.process(f);
    c.run(2);
    expect(f.reads).toEqual([{ ctx: 5, index: l.e.commitIndex }]);
  });

  it('a new leader serves no read before its start slot is chosen (its commit then covers every earlier leader’s writes)', () => {
    const c = new Cluster({ seed: 34, voters: [1, 2, 3] });
    c.filter = (m) => (m.type === MsgType.PaxosAccept ? undefined : m);
    const l = c.waitLeader();
    expect(l.e.readIndex(9).ok).toBe(true);
    c.process(l);
    c.run(10);
    expect(l.reads).toEqual([]);
    c.filter = undefined;
    c.run(20);
    expect(l.reads).toEqual([{ ctx: 9, index: l.e.status().startSlot }]);
  });

  it('a leader that loses leadership fails its pending reads (a definite 503), it does not serve them', () => {
    const c = new Cluster({ seed: 35, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    c.isolate(l.id);
    l.e.readIndex(3);
    c.process(l);
    c.runUntil(() => !l.e.isLeader, 40, 'check-quorum');
    c.process(l);
    expect(l.failedReads).toEqual([3]);
    expect(l.reads).toEqual([]);
  });
});

describe('paxos fencing token', () => {
  it('is 0 until the start slot is chosen, then the start slot; every later leadership’s token is larger', () => {
    const c = new Cluster({ seed: 36, voters: [1, 2, 3, 4, 5] });
    const tokens: number[] = [];
    for (let k = 0; k < 6; k++) {
      const l = c.waitLeader(600);
      c.runUntil(() => l.e.leaderToken() > 0, 50, 'token issued');
      expect(l.e.leaderToken()).toBe(l.e.status().startSlot);
      tokens.push(l.e.leaderToken());
      for (let i = 0; i < 3; i++) c.propose(`t${k}-${i}`);
      c.run(10);
      c.crash(l.id, 50);
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  });

  it('orders against lock-grant tokens (slot indexes): a grant under one leader is below the next leader’s token', () => {
    const c = new Cluster({ seed: 37, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    const cmd = encodeCommand({ op: 'lock.acquire', name: 'pump', owner: 'job-1', ttlMs: 60000, now: 1 });
    if (cmd instanceof KvError) throw cmd;
    const r = c.proposeOn(l.id, cmd);
    expect(r.ok).toBe(true);
    c.run(10);
    const grant = l.kv.getLock('pump')!.token;
    expect(grant).toBe(r.ok && r.index); // a grant's token is its slot
    expect(grant).toBeGreaterThan(l.e.leaderToken()); // granted after this leadership began
    c.crash(l.id);
    const l2 = c.waitLeader();
    c.runUntil(() => l2.e.leaderToken() > 0, 50, 'token');
    expect(l2.e.leaderToken()).toBeGreaterThan(grant);
  });
});
