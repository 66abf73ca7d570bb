/**
 * The bully engine on its own: inputs validated, the Ready contract, and each message
 * rule driven by hand (no network).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import {
  BullyNode, DEFAULT_BULLY_OPTIONS, fencingToken, MAX_EPOCH, NOT_SUPPORTED_REASON, resolveBullyOptions,
  type BullyOptions, type BullyReady, type BullyMember,
} from '../../../src/bully/index.ts';
import { MsgType, type Message } from '../../../src/wire/messages.ts';

/** What each node has made durable, as a runtime would: starts at the persisted epoch. */
const durableOf = new WeakMap<BullyNode, { epoch: number }>();

function mk(id: number, opts: { members?: BullyMember[]; epoch?: number; options?: Partial<BullyOptions> } = {}): BullyNode {
  const n = new BullyNode({
    id, members: opts.members ?? [1, 2, 3], rng: new Rng(id),
    ...(opts.epoch !== undefined ? { persisted: { epoch: opts.epoch } } : {}),
    ...(opts.options ? { options: opts.options } : {}),
  });
  durableOf.set(n, { epoch: opts.epoch ?? 0 });
  return n;
}

/** Takes the next Ready, checks the persist-before-send rule, advances. */
function drain(n: BullyNode): BullyReady {
  const durable = durableOf.get(n)!;
  const rd = n.ready() ?? { messages: [] };
  if (rd.hardState) durable.epoch = rd.hardState.epoch;
  for (const m of rd.messages) expect(m.term).toBeLessThanOrEqual(durable.epoch);
  if (rd.hardState || rd.softState || rd.messages.length > 0) n.advance(rd);
  return rd;
}

function tickUntil(n: BullyNode, pred: () => boolean, max = 100): number {
  for (let i = 1; i <= max; i++) {
    n.tick();
    if (pred()) return i;
  }
  throw new Error(`not reached in ${max} ticks`);
}

const coord = (from: number, to: number, term: number, priority = from): Message => ({ type: MsgType.BullyCoordinator, from, to, term, priority });
const election = (from: number, to: number, term: number, priority = from): Message => ({ type: MsgType.BullyElection, from, to, term, priority });
const answer = (from: number, to: number, term: number, priority = from): Message => ({ type: MsgType.BullyAnswer, from, to, term, priority });

describe('construction and options', () => {
  it('defaults are documented values and convert to ticks', () => {
    const { ticks } = resolveBullyOptions(undefined);
    expect(DEFAULT_BULLY_OPTIONS).toMatchObject({ tickMs: 10, heartbeatMs: 50, failureTimeoutMinMs: 150, failureTimeoutMaxMs: 200, answerTimeoutMs: 50, coordinatorWaitMs: 150, preempt: true });
    expect(ticks).toEqual({ heartbeat: 5, failureMin: 15, failureMax: 20, answer: 5, coordinatorWait: 15 });
  });

  it('rejects bad options, naming the option', () => {
    expect(() => resolveBullyOptions({ tickMs: 0 })).toThrow(/tickMs must be an integer/);
    expect(() => resolveBullyOptions({ heartbeatMs: 1.5 })).toThrow(/heartbeatMs/);
    expect(() => resolveBullyOptions({ bogus: 1 } as never)).toThrow(/unknown option "bogus"/);
    expect(() => resolveBullyOptions({ preempt: 'yes' } as never)).toThrow(/preempt must be a boolean/);
    expect(() => resolveBullyOptions({ failureTimeoutMinMs: 200, failureTimeoutMaxMs: 200 })).toThrow(/failureTimeoutMaxMs/);
    expect(() => resolveBullyOptions({ heartbeatMs: 100 })).toThrow(/at most half of failureTimeoutMinMs/);
    expect(() => resolveBullyOptions({ coordinatorWaitMs: 50 })).toThrow(/coordinatorWaitMs/);
    expect(() => resolveBullyOptions(null as never)).toThrow(/expected an object, got null/);
  });

  it('rejects bad members, ids, persisted state and rng, naming the input', () => {
    expect(() => mk(1, { members: [] })).toThrow(/at least one member/);
    expect(() => mk(1, { members: [1, 1] })).toThrow(/node 1 appears more than once/);
    expect(() => mk(1, { members: [2, 3] })).toThrow(/this node \(1\) is not in the list/);
    expect(() => mk(1, { members: [1, { id: 2, priority: 1 }] })).toThrow(/nodes 1 and 2 both have priority 1/);
    expect(() => mk(1, { members: [1, { id: 2, priority: -1 }] })).toThrow(/\[1\]\.priority: expected an integer/);
    expect(() => mk(1, { members: [1, { id: 300 }] })).toThrow(/\[1\]\.id: expected a node id/);
    expect(() => mk(1, { members: [1, { id: 2, prio: 3 } as never] })).toThrow(/unknown key "prio"/);
    expect(() => mk(1, { members: [1, 'two' as never] })).toThrow(/\[1\]: expected a node id or \{id, priority\}/);
    expect(() => mk(0)).toThrow(/id must be a node id/);
    expect(() => mk(1, { epoch: -1 })).toThrow(/persisted: expected \{epoch/);
    expect(() => mk(1, { epoch: MAX_EPOCH + 1 })).toThrow(/persisted/);
    expect(() => new BullyNode({ id: 1, members: [1], rng: {} as never })).toThrow(/rng must be an Rng/);
    expect(() => new BullyNode(undefined as never)).toThrow(/expected an init object/);
  });

  it('default priority is the 1-based list position; priority 0 is allowed several times and never coordinates', () => {
    const n = mk(2, { members: [7, 2, { id: 9, priority: 0 }, { id: 4, priority: 0 }, { id: 5, priority: 10 }] });
    expect(n.status().members).toEqual([{ id: 7, priority: 1 }, { id: 2, priority: 2 }, { id: 9, priority: 0 }, { id: 4, priority: 0 }, { id: 5, priority: 10 }]);
    const w = mk(9, { members: [9, 1] });
    expect(w.priority).toBe(1);
    const z = new BullyNode({ id: 9, members: [{ id: 9, priority: 0 }], rng: new Rng(1) });
    expect(z.campaign()).toMatchObject({ ok: false, code: 'not-eligible' });
    for (let i = 0; i < 100; i++) z.tick();
    expect(z.isLeader).toBe(false);
  });

  it('fencing tokens order by epoch, then coordinator id, and reject bad input', () => {
    expect(fencingToken(3, 1)).toBe(3 * 256 + 1);
    expect(fencingToken(3, 254)).toBeLessThan(fencingToken(4, 1));
    expect(fencingToken(MAX_EPOCH, 254)).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    expect(() => fencingToken(-1, 1)).toThrow(/epoch must be an integer/);
    expect(() => fencingToken(1, 255)).toThrow(/coordinator must be a node id/);
  });
});

describe('the Ready contract', () => {
  it('a lone node becomes coordinator after one failure timeout and hands out epoch 1 to persist', () => {
    const n = mk(1, { members: [1] });
    expect(drain(n)).toEqual({ messages: [] }); // nothing at boot
    const t = tickUntil(n, () => n.isLeader);
    expect(t).toBeGreaterThanOrEqual(15);
    expect(t).toBeLessThan(20);
    const rd = drain(n);
    expect(rd.hardState).toEqual({ epoch: 1, held: 1 });
    expect(rd.softState).toEqual({ role: 'coordinator', leader: 1, term: 1 });
  });

  it('the new epoch is in the same Ready as the Coordinator messages that carry it (persist before send)', () => {
    const n = mk(3, { epoch: 6 });
    tickUntil(n, () => n.isLeader);
    const rd = n.ready()!;
    expect(rd.hardState).toEqual({ epoch: 7, held: 7 });
    expect(rd.messages.map((m) => [m.type, m.to, m.term])).toEqual([[MsgType.BullyCoordinator, 1, 7], [MsgType.BullyCoordinator, 2, 7]]);
    expect(rd.softState).toEqual({ role: 'coordinator', leader: 3, term: 7 });
    n.advance(rd);
    expect(n.ready()).toBeUndefined();
    // Re-announcements every heartbeat, no new hard state.
    for (let i = 0; i < 5; i++) n.tick();
    const hb = n.ready()!;
    expect(hb.hardState).toBeUndefined();
    expect(hb.messages).toHaveLength(2);
    n.advance(hb);
    expect(n.status()).toMatchObject({ role: 'coordinator', term: 7, epoch: 7, leader: 3, token: fencingToken(7, 3), coordinatorships: 1 });
  });

  it('ready() twice without advance, or advance() of another object, is a clear error', () => {
    const n = mk(3);
    tickUntil(n, () => n.isLeader);
    const rd = n.ready()!;
    expect(() => n.ready()).toThrow(/previous Ready has not been advanced/);
    expect(() => n.advance({ messages: [] })).toThrow(/not the Ready last returned/);
    n.advance(rd);
    expect(() => n.advance(rd)).toThrow(/not the Ready last returned/);
  });

  it('propose and readIndex say the bully engine has no log and name the engines that have one', () => {
    const n = mk(1);
    expect(n.propose(new Uint8Array(1))).toEqual({ ok: false, code: 'not-supported', reason: NOT_SUPPORTED_REASON });
    expect(n.readIndex(1)).toEqual({ ok: false, code: 'not-supported', reason: NOT_SUPPORTED_REASON });
    expect(NOT_SUPPORTED_REASON).toMatch(/engine: raft, paxos, zab, pbft, etcd or zookeeper/);
  });
});

describe('message rules', () => {
  it('bad step input: a non-object throws a clear error; misaddressed, foreign and mismatched messages are dropped and counted', () => {
    const n = mk(2);
    expect(() => n.step(null as never)).toThrow(/expected a Message object, got null/);
    expect(() => n.step({ type: MsgType.BullyElection, from: 1, to: 2, term: -1, priority: 1 } as never)).toThrow(/non-negative integers/);
    expect(() => n.step({ type: MsgType.BullyElection, from: 1, to: 2, term: 0 } as never)).toThrow(/priority must be/);
    n.step(election(1, 3, 0));
    n.step(election(2, 2, 0));
    n.step({ type: MsgType.Heartbeat, from: 1, to: 2, term: 0, commit: undefined, ctx: 0 });
    n.step(election(9, 2, 0, 9));
    n.step(election(1, 2, 0, 5));
    n.step(election(3, 2, 0)); // from above: elections only go upwards
    n.step(coord(3, 2, MAX_EPOCH + 1));
    expect(n.status().dropped).toEqual({ notForMe: 2, foreignType: 1, unknownMember: 1, priorityMismatch: 1, notLower: 1, badEpoch: 1 });
    expect(n.ready()).toBeUndefined(); // none of them produced anything
  });

  it('an Election from below is answered, and the receiver runs its own election upwards', () => {
    const n = mk(2);
    n.step(election(1, 2, 4));
    const rd = drain(n);
    expect(rd.hardState).toEqual({ epoch: 4, held: 0 }); // adopted from the candidate
    expect(rd.messages.map((m) => [m.type, m.to, m.term])).toEqual([[MsgType.BullyAnswer, 1, 4], [MsgType.BullyElection, 3, 4]]);
    expect(n.status()).toMatchObject({ role: 'candidate', phase: 'electing', leader: 0 });
  });

  it('a candidate that gets an Answer waits for the announcement, and starts over if none comes', () => {
    const n = mk(2);
    n.campaign();
    drain(n);
    n.step(answer(3, 2, 0));
    expect(n.status().phase).toBe('awaiting');
    const t = tickUntil(n, () => n.status().phase === 'electing');
    expect(t).toBe(15);
    expect(drain(n).messages.map((m) => [m.type, m.to])).toEqual([[MsgType.BullyElection, 3]]);
    expect(n.status().electionsStarted).toBe(2);
  });

  it('a candidate that gets no Answer declares itself after the answer timeout', () => {
    const n = mk(2);
    n.campaign();
    drain(n);
    expect(tickUntil(n, () => n.isLeader)).toBe(5);
    expect(n.status().epoch).toBe(1);
  });

  it('a coordinator answers an Election with its announcement', () => {
    const n = mk(3);
    n.campaign();
    drain(n);
    n.step(election(1, 3, 1));
    expect(drain(n).messages).toEqual([coord(3, 1, 1)]);
  });

  it('a coordinator answers an Election from above too (a nopreempt follower reporting to it); a follower still drops one', () => {
    // Under nopreempt, 3 follows the lower coordinator 2 and reports to it with Elections
    // (daemon/runtime/bully-fencing.ts): 2 answers with its announcement, nothing else changes.
    const c = mk(2, { options: { preempt: false } });
    c.campaign();
    drain(c);
    tickUntil(c, () => c.isLeader);
    drain(c);
    c.step(election(3, 2, 1));
    expect(drain(c).messages).toEqual([coord(2, 3, 1)]);
    expect(c.status()).toMatchObject({ role: 'coordinator', epoch: 1, leader: 2 });
    expect(c.status().dropped.notLower).toBe(0);
    const f = mk(2);
    f.step(election(3, 2, 0));
    expect(f.ready()).toBeUndefined();
    expect(f.status().dropped.notLower).toBe(1);
  });

  it('a stale announcement is rejected with the higher epoch, and its sender steps down', () => {
    const f = mk(1, { epoch: 5 });
    f.step(coord(2, 1, 3));
    expect(drain(f).messages).toEqual([answer(1, 2, 5)]);
    expect(f.status().leader).toBe(0);

    const stale = mk(2, { epoch: 2 });
    stale.campaign();
    tickUntil(stale, () => stale.isLeader);
    drain(stale);
    expect(stale.status().epoch).toBe(3);
    stale.step(answer(1, 2, 5));
    expect(stale.isLeader).toBe(false);
    const rd = drain(stale);
    expect(rd.hardState).toEqual({ epoch: 5, held: 3 });
    expect(rd.softState).toEqual({ role: 'follower', leader: 0, term: 5 });
  });

  it('a coordinator hearing a stale coordinator re-announces itself to it', () => {
    const n = mk(2, { epoch: 4, options: { preempt: false } });
    n.campaign();
    tickUntil(n, () => n.isLeader);
    drain(n);
    n.step(coord(3, 2, 2));
    expect(drain(n).messages).toEqual([coord(2, 3, 5)]);
    expect(n.isLeader).toBe(true);
  });

  it('two coordinators of one epoch: the lower id yields, the higher id re-announces', () => {
    const lo = mk(1, { epoch: 0, options: { preempt: false } });
    lo.campaign();
    tickUntil(lo, () => lo.isLeader);
    drain(lo);
    lo.step(coord(2, 1, 1));
    expect(lo.status()).toMatchObject({ role: 'follower', leader: 2, epoch: 1 });

    const hi = mk(2, { epoch: 0, options: { preempt: false } });
    hi.campaign();
    tickUntil(hi, () => hi.isLeader);
    drain(hi);
    hi.step(coord(1, 2, 1));
    expect(drain(hi).messages).toEqual([coord(2, 1, 1)]);
    expect(hi.isLeader).toBe(true);
  });

  it('a follower that knows a higher token of the epoch makes a lower announcer start a fresh epoch', () => {
    const f = mk(1, { options: { preempt: false } });
    f.step(coord(3, 1, 4));
    drain(f);
    f.step(coord(2, 1, 4)); // same epoch, lower token
    expect(drain(f).messages).toEqual([answer(1, 2, 4)]);
    expect(f.status().leader).toBe(3);

    const c = mk(2, { epoch: 3, options: { preempt: false } });
    c.campaign();
    tickUntil(c, () => c.isLeader);
    drain(c);
    c.step(answer(1, 2, 4));
    expect(c.status()).toMatchObject({ role: 'coordinator', epoch: 5, coordinatorships: 2 });
  });

  it('preempt: a node hearing a lower coordinator bullies it; nopreempt: it follows', () => {
    const p = mk(3);
    p.step(coord(2, 3, 7));
    expect(p.isLeader).toBe(true); // no one above: takes over at once
    expect(p.status().epoch).toBe(8);

    const np = mk(3, { options: { preempt: false } });
    np.step(coord(2, 3, 7));
    expect(np.status()).toMatchObject({ role: 'follower', leader: 2, epoch: 7 });
    // ... and does not take over when a lower node challenges, while its coordinator lives.
    drain(np);
    np.step(election(1, 3, 7));
    expect(drain(np).messages).toEqual([answer(3, 1, 7)]);
    expect(np.status().role).toBe('follower');
  });

  it('a follower elects when the announcements stop, not before', () => {
    const n = mk(2);
    n.step(coord(3, 2, 1));
    drain(n);
    for (let i = 0; i < 40; i++) {
      n.tick();
      if (i % 5 === 4) n.step(coord(3, 2, 1));
    }
    expect(n.status()).toMatchObject({ role: 'follower', leader: 3 });
    const t = tickUntil(n, () => n.status().role === 'candidate');
    expect(t).toBeGreaterThanOrEqual(15);
    expect(t).toBeLessThan(20);
  });

  it('restart after holding the epoch: a same-epoch coordinator with a lower token is made to start a fresh epoch', () => {
    const held = new BullyNode({ id: 3, members: [1, 2, 3], persisted: { epoch: 4, held: 4 }, rng: new Rng(1), options: { preempt: false } });
    held.step(coord(2, 3, 4));
    expect(held.ready()!.messages).toEqual([answer(3, 2, 4)]);
    // without `held`, the same board would follow node 2 at epoch 4 (token below its own old one)
    const plain = new BullyNode({ id: 3, members: [1, 2, 3], persisted: { epoch: 4 }, rng: new Rng(1), options: { preempt: false } });
    plain.step(coord(2, 3, 4));
    expect(plain.status()).toMatchObject({ role: 'follower', leader: 2 });
    expect(() => new BullyNode({ id: 3, members: [3], persisted: { epoch: 4, held: 5 }, rng: new Rng(1) })).toThrow(/held\?: integer 0..epoch/);
  });

  it('restart: a board boots as a follower at its persisted epoch and its next coordinatorship is above it', () => {
    const n = mk(3, { epoch: 41 });
    expect(n.status()).toMatchObject({ role: 'follower', epoch: 41, leader: 0, token: 0 });
    tickUntil(n, () => n.isLeader);
    expect(n.status().epoch).toBe(42);
  });
});
