/**
 * ZAB leadership hand-over (src/zab/zab.ts, "Leadership hand-over"): the leader takes no
 * proposals, waits until the transferee holds its whole history, then retires into
 * election and votes for nobody of its own for initLimit — so a voter as recent as it
 * leads next, never itself again — and follows the new epoch, whose messages (ACK,
 * ACK of NEWLEADER, PONG) it sends only while FOLLOWING. Nothing committed is lost,
 * with or without a lossy network (the harness checks the ZAB invariants after every
 * step).
 */
import { describe, expect, it } from 'vitest';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import { Cluster, text } from './harness.ts';
import { lone } from './helpers.ts';

/** Proposes on the current leader and runs until every live node applied it. */
function write(c: Cluster, data: string): void {
  expect(c.propose(data)).toBeDefined();
  c.runUntil(() => c.up().every((n) => c.appliedData(n.id).includes(data)), 300, `${data} applied everywhere`);
}

describe('zab hand-over', () => {
  it('the leader hands over: no proposals meanwhile, it is not elected again (although as recent as any and the highest id), and it follows the new epoch', () => {
    const c = new Cluster({ seed: 11, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
    const old = c.node(c.agreed()!);
    expect(old.id).toBe(3); // FLE's choice among equal histories: the highest id
    for (const d of ['a', 'b', 'c']) write(c, d);
    const oldEpoch = old.z.status().epoch;
    c.record = true;
    // Node 1 (the lowest id) is the transferee; node 2 is just as recent and wins FLE
    // over it on its id — what matters is that node 3, the highest id with the same
    // history, does not: it abstains.
    expect(old.z.transferLeadership(1)).toMatchObject({ ok: true, term: old.z.status().acceptedEpoch });
    c.process(old);
    // Retired at once (every follower already held everything).
    expect(old.z.zabState).toBe('looking');
    expect(old.z.status()).toMatchObject({ retiring: true, role: 'candidate', leader: 0 });
    expect(old.z.propose(text('x'))).toMatchObject({ ok: false, code: 'not-leader' });
    let oldLedAgain = false;
    c.runUntil(() => {
      if (old.z.zabState === 'leading') oldLedAgain = true;
      const a = c.agreed();
      return a !== undefined && a !== old.id;
    }, 300, 'a new leader that every node follows');
    expect(oldLedAgain).toBe(false);
    const neu = c.node(c.agreed()!);
    expect(neu.id).toBe(2);
    expect(neu.z.status().epoch).toBeGreaterThan(oldEpoch);
    expect(old.z.status()).toMatchObject({ state: 'following', phase: 'broadcast', leader: neu.id, epoch: neu.z.status().epoch });
    // The retired leader answers the new epoch — the runtime's "acknowledged" — and every
    // such answer left while it followed (the engine sends them only then).
    const acks = c.log.filter((m: Message) => m.from === old.id && m.term === neu.z.status().epoch && (m.type === MsgType.ZabAckNewLeader || m.type === MsgType.ZabAck || m.type === MsgType.ZabPong));
    expect(acks.some((m) => m.type === MsgType.ZabAckNewLeader)).toBe(true);
    // Nothing committed is lost; the new leader takes writes.
    write(c, 'd');
    for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('waits for a transferee that is behind, refusing proposals; the transferee leads once it holds everything', () => {
    const c = new Cluster({ seed: 12, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
    const old = c.node(c.agreed()!);
    const lag = c.up().find((n) => n.id !== old.id)!;
    const other = c.up().find((n) => n.id !== old.id && n.id !== lag.id)!;
    write(c, 'a');
    // The transferee misses the next writes (its link from the leader is cut).
    c.partition([old.id], [lag.id]);
    for (const d of ['b', 'c']) {
      expect(c.propose(d)).toBeDefined();
      c.runUntil(() => c.appliedData(other.id).includes(d), 300, `${d} on ${other.id}`);
    }
    expect(old.z.transferLeadership(lag.id).ok).toBe(true);
    expect(old.z.propose(text('x'))).toMatchObject({ ok: false, code: 'transfer-in-progress' });
    c.run(20);
    // Still leading: the transferee does not hold everything yet.
    expect(old.z.isLeader).toBe(true);
    expect(old.z.status().transferee).toBe(lag.id);
    c.heal();
    c.runUntil(() => {
      const a = c.agreed();
      return a !== undefined && a !== old.id;
    }, 400, 'a new leader');
    expect(c.node(c.agreed()!).z.status().epoch).toBeGreaterThan(0);
    write(c, 'd');
    for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a transferee that never catches up: the hand-over is dropped after initLimit and the leader takes proposals again', () => {
    const c = new Cluster({ seed: 13, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
    const old = c.node(c.agreed()!);
    const gone = c.up().find((n) => n.id !== old.id)!;
    write(c, 'a');
    c.crash(gone.id);
    expect(c.propose('b')).toBeDefined();
    expect(old.z.transferLeadership(gone.id).ok).toBe(true);
    const ticks = c.runUntil(() => old.z.status().transferee === 0, 200, 'the hand-over dropped');
    expect(ticks).toBeGreaterThanOrEqual(old.z.options.initLimitMs / old.z.tickMs - 1);
    expect(old.z.isLeader).toBe(true);
    expect(old.z.status().retiring).toBe(false);
    expect(c.propose('c')).toBeDefined();
  });

  it('refuses what it cannot do, naming why', () => {
    const z = lone(1, [1, 2, 3]);
    expect(z.transferLeadership(2)).toMatchObject({ ok: false, code: 'not-leader' });
    const c = new Cluster({ seed: 14, voters: [1, 2], witnesses: [3], observers: [4] });
    c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
    const l = c.node(c.agreed()!);
    expect(l.z.transferLeadership(3)).toMatchObject({ ok: false, code: 'not-voter' });
    expect(l.z.transferLeadership(4)).toMatchObject({ ok: false, code: 'not-voter' });
    expect(l.z.transferLeadership(0)).toMatchObject({ ok: false, code: 'bad-request', reason: expect.stringMatching(/node id 1..254/) });
    expect(l.z.transferLeadership(l.id)).toMatchObject({ ok: true });
    expect(l.z.isLeader).toBe(true);
    // A follower does not report replication progress; the leader does, per learner.
    expect(c.node(l.id === 1 ? 2 : 1).z.replicaProgress()).toEqual([]);
    expect(l.z.replicaProgress().map((p) => p.id).sort()).toEqual([1, 2, 3, 4].filter((x) => x !== l.id));
  });

  it('lossy network, many seeds: repeated hand-overs keep every invariant and every committed write', () => {
    for (let seed = 100; seed < 115; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.05, dup: 0.05, minDelay: 0, maxDelay: 3 } });
      c.runUntil(() => c.agreed() !== undefined, 1000, `agreement (seed ${seed})`);
      const written: string[] = [];
      for (let round = 0; round < 3; round++) {
        const l = c.node(c.agreed()!);
        for (let i = 0; i < 3; i++) {
          const d = `s${seed}r${round}w${i}`;
          if (c.propose(d) !== undefined) written.push(d);
        }
        c.runUntil(() => c.up().every((n) => written.every((d) => c.appliedData(n.id).includes(d))), 1000, `writes applied (seed ${seed})`);
        const to = c.rng.fork(`to${round}`).pick(c.up().filter((n) => n.id !== l.id)).id;
        expect(l.z.transferLeadership(to).ok).toBe(true);
        c.process(l);
        c.runUntil(() => {
          const a = c.agreed();
          return a !== undefined && a !== l.id;
        }, 1000, `a new leader after ${l.id} handed over (seed ${seed})`);
      }
      for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(written);
    }
  });
});
