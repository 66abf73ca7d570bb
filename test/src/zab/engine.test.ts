/**
 * The engine contract's surface for ZAB: the fencing token (the index of the epoch's
 * start, zxid (e, 0)), capabilities, options and bad input, snapshots, observers and
 * witnesses holding what they should.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import type { Engine } from '../../../src/engine/contract.ts';
import { EntryType, MsgType } from '../../../src/wire/messages.ts';
import { resolveZabOptions, ZabNode } from '../../../src/zab/index.ts';
import { Cluster, text } from './harness.ts';
import { lone } from './helpers.ts';

describe('fencing token', () => {
  it('is the index of the epoch-start entry, issued once established, and grows past every committed index with each new leader', () => {
    const c = new Cluster({ seed: 71, voters: [1, 2, 3, 4, 5] });
    const tokens: number[] = [];
    let lastCommitted = 0;
    for (let round = 0; round < 6; round++) {
      c.runUntil(() => c.agreed() !== undefined, 400, `leader ${round}`);
      const l = c.leader()!;
      const st = l.z.status();
      const token = l.z.leaderToken();
      expect(token).toBe(st.epochStart);
      expect(l.z.entryAt(token)).toMatchObject({ type: EntryType.Noop, term: st.epoch });
      expect(token).toBeGreaterThan(lastCommitted); // above every lock-grant index committed before
      for (const n of c.up()) if (n !== l) expect(n.z.leaderToken()).toBe(0);
      tokens.push(token);
      for (let i = 0; i < 3; i++) c.propose(`r${round}-${i}`);
      c.run(20);
      lastCommitted = l.z.commitIndex;
      c.crash(l.id);
      c.run(1);
      for (const n of c.nodes.values()) if (!n.up && n.id !== l.id) c.restart(n.id);
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  });

  it('is 0 while the leader is only prospective', () => {
    const c = new Cluster({ seed: 72, voters: [1, 2, 3] });
    c.filter = (m) => (m.type === MsgType.ZabAckNewLeader ? undefined : m);
    c.runUntil(() => c.up().some((n) => n.z.zabState === 'leading' && n.z.status().phase === 'synchronization'), 300, 'synchronizing');
    for (const n of c.up()) expect(n.z.leaderToken()).toBe(0);
  });
});

describe('contract surface', () => {
  it('implements Engine with its capabilities: a log, reads, witnesses, hand-over; no lease, not Byzantine', () => {
    const z: Engine = lone(1, [1, 2, 3]);
    expect(z.name).toBe('zab');
    expect(z.caps).toEqual({ log: true, reads: true, transfer: true, witness: true, lease: false, byzantine: false });
    expect(z.tickMs).toBe(10);
    // Only an established leader hands over (test/src/zab/hand-over.test.ts).
    expect(z.transferLeadership(2)).toMatchObject({ ok: false, code: 'not-leader' });
    expect(z.status()).toMatchObject({ engine: 'zab', role: 'candidate', detail: 'election', leader: 0 });
  });

  it('refuses bad input with the input named', () => {
    const z = lone(1, [1, 2, 3]);
    expect(z.propose('x' as unknown as Uint8Array)).toMatchObject({ ok: false, code: 'bad-request' });
    expect(z.propose(text('x'))).toMatchObject({ ok: false, code: 'not-leader' });
    expect(z.propose(new Uint8Array(70000))).toMatchObject({ ok: false, code: 'too-large', reason: expect.stringMatching(/70000 bytes/) });
    expect(z.compact(-1, new Uint8Array())).toMatchObject({ ok: false, code: 'bad-request' });
    expect(z.compact(5, new Uint8Array())).toMatchObject({ ok: false, reason: expect.stringMatching(/beyond the applied index 0/) });
    expect(z.leaderGone(0)).toMatchObject({ ok: false, code: 'bad-request' });
    expect(() => z.step(null as never)).toThrow(/expected a Message/);
    // From a non-member, for another node, or of another engine (a peer configured with
    // another `engine:`, as the other engines count it; this used to throw and stop the
    // node): ignored and counted.
    const before = z.status().dropped;
    z.step({ type: MsgType.ZabPing, from: 9, to: 1, term: 1 });
    z.step({ type: MsgType.ZabPing, from: 2, to: 3, term: 1 });
    z.step({ type: MsgType.Heartbeat, from: 2, to: 1, term: 1, ctx: 0, commit: undefined });
    expect(z.status().dropped).toBe(before + 3);
    expect(() => new ZabNode({ id: 1, config: { voters: [1], learners: [], witnesses: [] }, rng: new Rng(1), options: { bogus: 1 } as never })).toThrow(/unknown option "bogus"/);
    expect(() => resolveZabOptions({ heartbeatMs: 200 })).toThrow(/heartbeatMs \(200\) must be below syncLimitMs \(150\)/);
    expect(() => resolveZabOptions({ initLimitMs: 100 })).toThrow(/initLimitMs \(100\) must be at least syncLimitMs/);
    expect(() => resolveZabOptions({ tickMs: 0 })).toThrow(/tickMs must be an integer >= 1/);
    expect(() => resolveZabOptions({ testingAckBeforeDurable: 1 as never })).toThrow(/must be a boolean/);
    expect(() => z.ready() && z.ready()).toThrow(/not been advanced/);
  });

  it('a single voter elects itself, establishes and commits on its own durable log', () => {
    const z = lone(1, [1]);
    for (let i = 0; i < 10 && !z.isLeader; i++) {
      z.tick();
      for (let rd = z.ready(); rd; rd = z.ready()) z.advance(rd);
    }
    expect(z.isLeader).toBe(true);
    expect(z.leaderToken()).toBe(1);
    const r = z.propose(text('solo'));
    expect(r).toMatchObject({ ok: true, index: 2 });
    const rd1 = z.ready()!;
    expect(rd1.entries.map((e) => e.index)).toEqual([2]);
    expect(rd1.committed.map((e) => e.index)).toEqual([]); // not durable yet
    z.advance(rd1);
    const rd2 = z.ready()!;
    expect(rd2.committed.map((e) => e.index)).toEqual([2]);
    z.advance(rd2);
  });

  it('snapshots bound the history; observers and witnesses hold what they should', () => {
    const c = new Cluster({ seed: 73, voters: [1, 2], witnesses: [3], observers: [4] });
    c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
    for (let i = 0; i < 10; i++) c.propose(`k${i}`);
    c.run(20);
    const l = c.leader()!;
    c.compact(l.id);
    expect(l.z.snapshotIndex).toBe(l.applied);
    expect(l.z.entryAt(1)).toBeUndefined();
    // The observer applied everything; the witness holds entries without data.
    expect(c.appliedData(4)).toEqual(c.appliedData(l.id));
    const w = c.node(3).z;
    const last = w.status().lastIndex;
    const e = w.entryAt(last)!;
    expect(e.type).toBe(EntryType.Normal);
    expect(e.data.length).toBe(0);
    expect(w.witness).toBe(true);
    expect(w.campaign()).toMatchObject({ ok: true }); // it votes (elects) but never leads
    expect(c.node(4).z.campaign()).toMatchObject({ ok: false, code: 'not-voter' });
  });

  it('on a serial link (1 KiB frames) every message fits, snapshots included', () => {
    const c = new Cluster({ seed: 74, voters: [1, 2, 3], options: { maxMsgBytes: 1024 }, wire: true });
    c.runUntil(() => c.agreed() !== undefined, 300, 'agreement');
    const l = c.leader()!;
    const f = [1, 2, 3].find((x) => x !== l.id)!;
    c.crash(f);
    for (let i = 0; i < 40; i++) c.propose(`${i}:${'x'.repeat(200)}`);
    c.run(30);
    c.compact(l.id); // about 9 KB of state: several chunks
    c.restart(f);
    c.runUntil(() => c.agreed() === l.id && c.node(f).applied === l.z.commitIndex, 300, 'the follower caught up by snapshot');
    expect(c.maxFrame).toBeGreaterThan(800); // full snapshot chunks and proposals went out
    expect(c.maxFrame).toBeLessThanOrEqual(1024);
    expect(l.z.propose(new Uint8Array(1000))).toMatchObject({ ok: false, code: 'too-large' });
  });
});
