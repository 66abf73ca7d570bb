/**
 * Linearizable reads: the leader's commit index, confirmed by a PING round that a
 * quorum of synchronized followers answers (no newer epoch was established before
 * the read arrived); a follower asks its leader (ZooKeeper's sync) and serves once it
 * has applied that far. A leader cut off from its quorum never serves one; reads it
 * can no longer serve fail definitely. The harness checks every answer against the
 * highest commit any node knew when the read was asked.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import { Cluster } from './harness.ts';
import { lone } from './helpers.ts';

function settled(seed: number, voters = [1, 2, 3]) {
  const c = new Cluster({ seed, voters });
  c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
  for (let i = 0; i < 5; i++) c.propose(`v${i}`);
  c.run(20);
  return c;
}

describe('reads', () => {
  it('on the leader: served at its commit index only after a quorum answered the ping round', () => {
    const c = settled(31);
    const l = c.leader()!;
    // Answers to read rounds are lost (plain pongs, which keep the leadership, get through).
    c.filter = (m) => (m.type === MsgType.ZabPong && m.ctx !== undefined ? undefined : m);
    const ctx = c.read(l.id)!;
    c.run(10); // less than syncLimit: it still leads, and has not served the read
    expect(l.z.isLeader).toBe(true);
    expect(l.reads).toEqual([]);
    c.filter = undefined;
    c.run(10);
    expect(l.reads).toEqual([{ ctx, index: l.z.commitIndex }]);
  });

  it('on a follower: asked of the leader (sync), answered with the leader\'s commit, served once applied', () => {
    const c = settled(32);
    const l = c.leader()!;
    const f = c.up().find((n) => n !== l)!;
    c.record = true;
    const ctx = c.read(f.id)!;
    c.run(10);
    expect(c.log).toContainEqual(expect.objectContaining({ type: MsgType.ZabSyncReq, from: f.id, to: l.id, ctx }));
    expect(f.reads).toEqual([{ ctx, index: l.z.commitIndex }]);
    expect(f.applied).toBeGreaterThanOrEqual(f.reads[0]!.index);
  });

  it('a follower whose ACK came after the commit gets the COMMIT with its read\'s answer, not with the next write or ping', () => {
    // Pings every 50 ticks: a follower that waited for the next one would wait long.
    const c = new Cluster({ seed: 34, voters: [1, 2, 3], options: { heartbeatMs: 500, syncLimitMs: 2000, initLimitMs: 4000 } });
    c.runUntil(() => c.agreed() !== undefined, 1000, 'agreement');
    c.run(5);
    const l = c.leader()!;
    const w = c.propose('w')!;
    c.run(1);
    // The first ACK committed it; the other follower acknowledged after, and was not told.
    expect(l.z.commitIndex).toBeGreaterThanOrEqual(w);
    const late = c.up().find((n) => n !== l && n.z.commitIndex < w);
    expect(late, 'a follower that has not heard of the commit').toBeDefined();
    const f = late!;
    const ctx = c.read(f.id)!;
    c.run(1); // the read's ping round and the answer, nothing more
    expect(f.reads).toEqual([{ ctx, index: l.z.commitIndex }]);
    expect(f.applied).toBeGreaterThanOrEqual(w);
  });

  it('a leader cut off from its quorum never serves a read; it fails it when it gives up, while the majority moves on', () => {
    const c = settled(33, [1, 2, 3, 4, 5]);
    const l = c.leader()!;
    c.isolate(l.id);
    const ctx = c.read(l.id)!;
    const t = c.runUntil(() => c.up().some((n) => n !== l && n.z.isLeader), 300, 'a new leader');
    expect(t).toBeGreaterThan(0);
    c.propose('newer');
    c.run(40);
    expect(l.reads).toEqual([]);
    expect(l.failedReads).toContain(ctx);
    expect(l.z.isLeader).toBe(false);
  });

  it('refused without an established leader; a forwarded read fails when the follower loses its leader', () => {
    const z = lone(1, [1, 2, 3]);
    expect(z.readIndex(1)).toMatchObject({ ok: false, code: 'no-leader' });
    expect(z.readIndex(0)).toMatchObject({ ok: false, code: 'bad-request' });
    expect(z.readIndex(2 ** 32)).toMatchObject({ ok: false, code: 'bad-request' });
    const c = settled(34);
    const l = c.leader()!;
    const f = c.up().find((n) => n !== l)!;
    c.filter = (m) => (m.type === MsgType.ZabSyncReply ? undefined : m);
    const ctx = c.read(f.id)!;
    c.run(5);
    expect(f.z.leaderGone(l.id)).toEqual({ ok: true, forgot: true });
    c.process(f);
    expect(f.failedReads).toContain(ctx);
    // A late answer for it is ignored (the read already failed).
    c.filter = undefined;
    f.z.step({ type: MsgType.ZabSyncReply, from: l.id, to: f.id, term: l.z.status().epoch, ctx, index: 1, ok: true });
    c.process(f);
    expect(f.reads).toEqual([]);
  });

  it('randomized: every answered read is at least the highest commit known when it was asked', () => {
    let served = 0;
    for (let seed = 40; seed < 50; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.05, dup: 0.05, minDelay: 0, maxDelay: 8 } });
      for (let t = 0; t < 500; t++) {
        if (t % 3 === 0) c.propose(`w${t}`);
        if (t % 4 === 0) {
          const up = c.up();
          c.read(up[t % up.length]!.id);
        }
        if (t % 97 === 50) {
          const l = c.leader();
          if (l) c.crash(l.id);
        }
        if (t % 97 === 80) for (const n of c.nodes.values()) if (!n.up) c.restart(n.id);
        c.tick();
      }
      served += c.inv.counts.reads;
    }
    expect(served).toBeGreaterThan(100); // the check ran on many answers (the harness throws on a stale one)
  });
});
