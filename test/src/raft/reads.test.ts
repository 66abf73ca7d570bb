/**
 * Reads: ReadIndex (thesis §6.4) and lease reads (§6.4.1).
 */
import { describe, expect, it } from 'vitest';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import { Cluster } from './harness.ts';
import { RaftNode } from '../../../src/raft/index.ts';
import { Rng } from '../../../src/rng.ts';

describe('raft reads', () => {
  it('ReadIndex on the leader: one heartbeat round, index = commit at request time', () => {
    const c = new Cluster({ seed: 41, voters: [1, 2, 3] });
    const l = c.waitLeader();
    const w = c.propose('x')!;
    c.run(10);
    c.record = true;
    expect(l.r.readIndex(7).ok).toBe(true);
    c.process(l);
    c.run(1);
    expect(l.reads).toEqual([{ ctx: 7, index: l.r.status().commitIndex }]);
    expect(l.reads[0]!.index).toBeGreaterThanOrEqual(w);
    const rounds = c.log.filter((m) => m.type === MsgType.Heartbeat && m.ctx > 0);
    expect(rounds).toHaveLength(2); // one per follower
  });

  it('reads arriving together share one heartbeat round', () => {
    const c = new Cluster({ seed: 42, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    c.record = true;
    for (let i = 1; i <= 10; i++) l.r.readIndex(i);
    c.process(l);
    c.run(1);
    expect(l.reads.map((r) => r.ctx)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat).length).toBe(2);
  });

  it('a follower forwards ReadIndex to the leader and gets the read state', () => {
    const c = new Cluster({ seed: 43, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.propose('y');
    c.run(10);
    const f = c.up().find((n) => n.id !== l.id)!;
    expect(f.r.readIndex(5).ok).toBe(true);
    c.process(f);
    c.run(2);
    expect(f.reads).toEqual([{ ctx: 5, index: l.r.status().commitIndex }]);
  });

  it('lease reads: a follower answered a read gets the commit index at once, not at the next heartbeat (a read right after a write)', () => {
    // Heartbeats every 50 ticks: a follower that waited for one would wait long.
    const c = new Cluster({ seed: 46, voters: [1, 2, 3], options: { leaseRead: true, heartbeatMs: 500, electionTimeoutMinMs: 1500, electionTimeoutMaxMs: 3000 } });
    const l = c.waitLeader(1000);
    c.run(60); // a heartbeat round acknowledged: the lease holds
    const f = c.up().find((n) => n.id !== l.id)!;
    c.record = true;
    const w = c.propose('w')!;
    c.run(1);
    // The write committed with the followers' acknowledgements; nothing told f so yet.
    expect(l.r.status().commitIndex).toBeGreaterThanOrEqual(w);
    expect(f.r.status().commitIndex).toBeLessThan(w);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat)).toEqual([]);
    c.log = [];
    expect(f.r.readIndex(7).ok).toBe(true);
    c.process(f);
    c.run(1);
    // Served by the lease (no read round), and f has the commit to apply the write.
    expect(f.reads).toEqual([{ ctx: 7, index: l.r.status().commitIndex }]);
    expect(f.r.status().commitIndex).toBeGreaterThanOrEqual(w);
    expect(f.applied).toBeGreaterThanOrEqual(w);
    // What it cost: one heartbeat to f (no read round) and its reply.
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat).map((m) => [m.to, (m as { ctx: number }).ctx])).toEqual([[f.id, 0]]);
    // A second read with nothing new committed sends nothing more.
    c.log = [];
    f.r.readIndex(8);
    c.process(f);
    c.run(1);
    expect(f.reads.map((r) => r.ctx)).toEqual([7, 8]);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat)).toEqual([]);
  });

  it('notifyCommit (the runtime answering a write a follower forwarded): the follower gets the commit at once, or at its acknowledgement when the entry is still on its way', () => {
    const c = new Cluster({ seed: 48, voters: [1, 2, 3], options: { heartbeatMs: 500, electionTimeoutMinMs: 1500, electionTimeoutMaxMs: 3000 } });
    const l = c.waitLeader(1000);
    c.run(60);
    const [f, g] = c.up().filter((n) => n.id !== l.id) as [typeof l, typeof l];
    c.record = true;
    const w = c.propose('w')!;
    c.run(1);
    expect(l.r.status().commitIndex).toBeGreaterThanOrEqual(w);
    expect(f.r.status().commitIndex).toBeLessThan(w);
    c.log = [];
    l.r.notifyCommit(f.id, w);
    c.process(l);
    c.run(1);
    expect(f.r.status().commitIndex).toBeGreaterThanOrEqual(w);
    expect(f.applied).toBeGreaterThanOrEqual(w);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat).map((m) => [m.to, (m as { ctx: number }).ctx])).toEqual([[f.id, 0]]);
    // Told already: nothing more.
    c.log = [];
    l.r.notifyCommit(f.id, w);
    c.process(l);
    c.run(1);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat)).toEqual([]);
    // The entry has not reached f yet (its Append held back) when g's acknowledgement
    // commits it: no heartbeat can carry that commit to f yet; its acknowledgement brings it.
    const held: Message[] = [];
    c.filter = (m) => (m.type === MsgType.Append && m.to === f.id ? void held.push(m) : m);
    const w2 = c.propose('w2')!;
    c.run(1);
    expect(l.r.status().commitIndex).toBeGreaterThanOrEqual(w2);
    c.log = [];
    l.r.notifyCommit(f.id, w2);
    c.process(l);
    c.run(1);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat && m.to === f.id)).toEqual([]);
    expect(f.r.status().commitIndex).toBeLessThan(w2);
    c.filter = undefined;
    for (const m of held) c.deliver(m);
    c.run(2);
    expect(f.r.status().commitIndex).toBeGreaterThanOrEqual(w2);
    expect(f.applied).toBeGreaterThanOrEqual(w2);
    // On a follower, or for an index not committed: nothing.
    c.log = [];
    f.r.notifyCommit(g.id, w2);
    l.r.notifyCommit(f.id, l.r.status().commitIndex + 5);
    c.process(f);
    c.process(l);
    c.run(1);
    expect(c.log.filter((m) => m.type === MsgType.Heartbeat)).toEqual([]);
  });

  it('a follower fails the reads it forwarded as soon as it no longer follows that leader, not at the request timeout; a late answer is ignored', () => {
    const c = new Cluster({ seed: 47, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    const f = c.up().find((n) => n.id !== l.id)!;
    // The leader's answers to f's reads are lost.
    let held: Message[] = [];
    c.filter = (m) => (m.type === MsgType.ReadIndexReply && m.to === f.id ? void held.push(m) : m);
    expect(f.r.readIndex(9).ok).toBe(true);
    c.process(f);
    c.run(1);
    expect(held).toHaveLength(1);
    expect(f.reads).toEqual([]);
    expect(f.failedReads).toEqual([]);
    // The leader's will arrives: f forgets it, and its read fails at once (503, retry).
    expect(f.r.leaderGone(l.id)).toMatchObject({ ok: true, forgot: true });
    c.process(f);
    expect(f.failedReads).toEqual([9]);
    // The answer arriving late is not a second outcome.
    c.filter = undefined;
    c.deliver(held[0]!);
    expect(f.reads).toEqual([]);
    expect(f.failedReads).toEqual([9]);
    // Bounded: with every answer lost, the oldest beyond 1024 outstanding is failed.
    held = [];
    c.run(20);
    c.filter = (m) => (m.type === MsgType.ReadIndexReply && m.to === f.id ? void held.push(m) : m);
    for (let ctx = 100; ctx < 100 + 1030; ctx++) expect(f.r.readIndex(ctx).ok).toBe(true);
    c.process(f);
    expect(f.failedReads.slice(1)).toEqual([100, 101, 102, 103, 104, 105]);
  });

  it('a new leader serves no read before it has committed an entry of its term', () => {
    const c = new Cluster({ seed: 44, voters: [1, 2, 3] });
    // Appends are lost until we allow them: the new leader's Noop cannot commit.
    c.filter = (m) => (m.type === MsgType.Append ? undefined : m);
    const l = c.waitLeader();
    expect(l.r.readIndex(9).ok).toBe(true);
    c.process(l);
    c.run(10);
    expect(l.reads).toEqual([]);
    c.filter = undefined;
    c.run(20);
    expect(l.reads).toEqual([{ ctx: 9, index: l.r.status().commitIndex }]);
  });

  it('a cut-off leader serves no read and fails it when it steps down', () => {
    const c = new Cluster({ seed: 45, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    c.isolate(l.id);
    l.r.readIndex(3);
    c.process(l);
    c.run(10);
    expect(l.reads).toEqual([]);
    c.run(30); // check-quorum: it steps down
    expect(l.r.status().role).not.toBe('leader');
    expect(l.failedReads).toEqual([3]);
  });

  it('lease reads: served without a round while the lease holds, never once it lapsed', () => {
    const c = new Cluster({ seed: 46, voters: [1, 2, 3], options: { leaseRead: true } });
    const l = c.waitLeader();
    c.run(20);
    c.record = true;
    l.r.readIndex(1);
    c.process(l);
    expect(l.reads).toEqual([{ ctx: 1, index: l.r.status().commitIndex }]); // at once, no messages
    expect(c.log).toEqual([]);
    c.isolate(l.id);
    c.run(14); // electionMin (15) x (1 - 0.05) rounds down: the lease lapses before followers may vote
    l.r.readIndex(2);
    c.process(l);
    c.run(1);
    expect(l.reads.map((r) => r.ctx)).toEqual([1]);
  });

  it('lease reads: a restarted node grants no pre-vote within its first election timeout', () => {
    // Restarted: its durable term is 1, so it may have acknowledged a leader's heartbeat before it went down.
    const mk = (leaseRead: boolean) => new RaftNode({ id: 2, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(3), options: { leaseRead }, hardState: { term: 1, vote: 1, commit: 0 } });
    for (const leaseRead of [true, false]) {
      const r = mk(leaseRead);
      r.step({ type: MsgType.PreVote, from: 3, to: 2, term: 2, lastIndex: 0, lastTerm: 0 });
      const replies = r.ready()?.messages.filter((m) => m.type === MsgType.PreVoteReply) ?? [];
      expect(replies.length).toBe(leaseRead ? 0 : 1);
    }
  });

  it('lease reads: a node that booted at term 0 never acknowledged a lease and grants a pre-vote at once', () => {
    const r = new RaftNode({ id: 2, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(3), options: { leaseRead: true } });
    r.step({ type: MsgType.PreVote, from: 3, to: 2, term: 1, lastIndex: 0, lastTerm: 0 });
    const replies = r.ready()?.messages.filter((m) => m.type === MsgType.PreVoteReply) ?? [];
    expect(replies).toEqual([expect.objectContaining({ to: 3, granted: true, term: 1 })]);
  });

  it('lease reads stop once leadership transfer sent TimeoutNow', () => {
    const c = new Cluster({ seed: 48, voters: [1, 2, 3], options: { leaseRead: true } });
    const l = c.waitLeader();
    c.run(20);
    const to = [1, 2, 3].find((x) => x !== l.id)!;
    c.filter = (m) => (m.type === MsgType.TimeoutNow ? undefined : m); // the transfer never completes
    l.r.transferLeadership(to);
    c.process(l);
    c.run(20); // aborted by now
    expect(l.r.status().transferee).toBe(0);
    l.r.readIndex(1);
    c.process(l);
    expect(l.reads).toEqual([]); // not served from the lease...
    c.run(1);
    expect(l.reads.map((r) => r.ctx)).toEqual([1]); // ...but through a heartbeat round
  });

  it('readIndex input is validated', () => {
    const c = new Cluster({ seed: 47, voters: [1] });
    const l = c.waitLeader();
    expect(l.r.readIndex(0).ok).toBe(false);
    expect(l.r.readIndex(1.5).ok).toBe(false);
  });
});
