/**
 * `job.reset` (`quorumd jobs reset NAME`): withdraws a job's latest claim when its slot
 * lies after the active leader's wall clock `now`. Encoding, validation, the apply rules
 * (refused as stale-leader like job.claim; refused with a reason when there is no record
 * or nothing ahead of `now`; else a withdrawal floor at `now` that later claims must be
 * after, and a late report of the withdrawn slot is refused), snapshots (version 4 only
 * with a reset record) and their strict validation.
 */
import { describe, expect, it } from 'vitest';
import { KvError, KvStateMachine, decodeCommand, encodeCommand, jobGrantedThrough, type Command } from '../../../src/kv/index.ts';
import { CborWriter } from '../../../src/kv/cbor.ts';
import { jobResetRefusal, resultToClient } from '../../../daemon/runtime/results.ts';

const enc = (c: Command) => {
  const b = encodeCommand(c);
  if (b instanceof KvError) throw b;
  return b;
};
const claim = (job: string, slot: number, node: number, term: number, token = term * 10): Command => ({ op: 'job.claim', job, slot, node, term, token });
const reset = (job: string, now: number, node: number, term: number): Command => ({ op: 'job.reset', job, now, node, term });
const done = (job: string, slot: number, node: number): Command => ({ op: 'job.done', job, slot, node, outcome: 'ok', code: 0, signal: '', startedAtMs: slot, durationMs: 5 });

const H = 3_600_000;
const T0 = 1_800_000_000_000; // the real time of these tests

/** A state machine and an apply with consecutive indexes. */
function machine() {
  const sm = new KvStateMachine();
  let i = 0;
  return { sm, ap: (c: Command) => sm.apply(++i, enc(c)), at: () => i };
}

describe('job.reset command', () => {
  it('round-trips through the log encoding as op code 8', () => {
    const c = reset('meters', T0, 3, 7);
    const b = enc(c);
    expect(b[1]).toBe(8); // [8, job, now, node, term]
    expect(decodeCommand(b)).toEqual(c);
  });

  it('bad input is named', () => {
    expect((encodeCommand(reset('', T0, 1, 1)) as KvError).message).toMatch(/^job: expected a non-empty string/);
    expect((encodeCommand(reset('j', -1, 1, 1)) as KvError).field).toBe('now');
    expect((encodeCommand(reset('j', 1.5, 1, 1)) as KvError).code).toBe('bad-now');
    expect((encodeCommand(reset('j', T0, 0, 1)) as KvError).message).toMatch(/^node: expected an integer in \[1, 254\], got 0/);
    expect((encodeCommand(reset('j', T0, 1, 0)) as KvError).field).toBe('term');
    // A job.reset array of the wrong length (a damaged entry) is refused by the decoder.
    const w = new CborWriter();
    w.array(4).uint(8).text('j').uint(T0).uint(1);
    expect((decodeCommand(w.finish()) as KvError).message).toBe('job.reset command: expected 5 elements, got 4');
  });
});

describe('job.reset apply rules', () => {
  it('withdraws a future claim: the slot is gone, later claims must be after the floor, a late report of the withdrawn slot is refused', () => {
    const { sm, ap } = machine();
    ap(claim('j', T0 - 10_000, 1, 2)); // index 1: an ordinary slot
    ap(done('j', T0 - 10_000, 1));
    ap(claim('j', T0 + 10 * H, 2, 3)); // index 3: n2's clock was 10 h ahead
    // Without a reset every slot up to it is refused:
    expect(ap(claim('j', T0 + 10_000, 1, 4))).toMatchObject({ ok: false, reason: 'claimed', claim: { slot: T0 + 10 * H } });
    const r = ap(reset('j', T0 + 20_000, 1, 4)); // index 5: n1, active in term 4, clock right
    expect(r).toEqual({ op: 'job.reset', ok: true, index: 5, withdrawn: { slot: T0 + 10 * H, node: 2, term: 3, token: 30, index: 3 }, floor: T0 + 20_000 });
    const rec = sm.job('j')!;
    expect(rec.claim).toBeNull();
    expect(rec.reset).toEqual({ at: T0 + 20_000, floor: T0 + 20_000, node: 1, term: 4, index: 5, withdrawn: { slot: T0 + 10 * H, node: 2, term: 3, token: 30, index: 3 } });
    expect(rec.result).toMatchObject({ slot: T0 - 10_000 }); // the last real run stays
    expect(jobGrantedThrough(rec)).toBe(T0 + 20_000);
    // The withdrawn slot's late report is refused (no claim now, and later after any new one).
    expect(ap(done('j', T0 + 10 * H, 2))).toEqual({ op: 'job.done', ok: false });
    // A slot at or before the floor is never granted (it may have run before the reset).
    expect(ap(claim('j', T0 + 20_000, 1, 4))).toMatchObject({ ok: false, reason: 'claimed', claim: null, floor: T0 + 20_000 });
    expect(resultToClient(ap(claim('j', T0 + 10_000, 1, 4))).error).toBe('slot not granted: the job was reset; a slot must be after its floor 2027-01-15T08:00:20.000Z');
    // The next slot after it is granted, and its report is kept.
    expect(ap(claim('j', T0 + 30_000, 1, 4))).toMatchObject({ op: 'job.claim', ok: true });
    expect(ap(done('j', T0 + 10 * H, 2))).toEqual({ op: 'job.done', ok: false });
    expect(ap(done('j', T0 + 30_000, 1))).toEqual({ op: 'job.done', ok: true });
    expect(sm.job('j')).toMatchObject({ claim: { slot: T0 + 30_000, node: 1 }, result: { slot: T0 + 30_000 }, reset: { floor: T0 + 20_000 } });
  });

  it('a report of the withdrawn slot recorded before the reset does not hold back the reports of the slots after it', () => {
    const { sm, ap } = machine();
    ap(claim('j', T0 + H, 2, 3));
    ap(done('j', T0 + H, 2)); // the ahead leader ran it
    ap(reset('j', T0, 1, 4));
    expect(sm.job('j')!.result).toMatchObject({ slot: T0 + H }); // it did run: kept, honestly
    ap(claim('j', T0 + 10_000, 1, 4));
    expect(ap(done('j', T0 + 10_000, 1))).toEqual({ op: 'job.done', ok: true });
    expect(sm.job('j')!.result).toMatchObject({ slot: T0 + 10_000, node: 1 });
  });

  it('refuses with a reason: no record, nothing ahead of the leader\'s clock, a second reset', () => {
    const { ap } = machine();
    const none = ap(reset('ghost', T0, 1, 1));
    expect(none).toEqual({ op: 'job.reset', ok: false, reason: 'no-record', now: T0, claim: null, floor: null });
    expect(resultToClient(none)).toEqual({ status: 409, error: 'nothing to withdraw: no slot of this job was ever granted (it has no record in the replicated table)' });
    ap(claim('j', T0, 1, 1));
    // Equal is not after: the slot at the leader's clock is the leader's own, not a future one.
    const same = ap(reset('j', T0, 1, 1));
    expect(same).toMatchObject({ ok: false, reason: 'not-ahead', claim: { slot: T0 } });
    expect(resultToClient(same).error).toBe("nothing to withdraw: the latest claim 2027-01-15T08:00:00.000Z is not after the leader's clock 2027-01-15T08:00:00.000Z; if the leader's clock is the wrong one, fix it first");
    ap(claim('j', T0 + H, 2, 2));
    expect(ap(reset('j', T0 + 5000, 1, 3))).toMatchObject({ ok: true, floor: T0 + 5000 });
    const twice = ap(reset('j', T0 + 6000, 1, 3));
    expect(twice).toMatchObject({ ok: false, reason: 'not-ahead', claim: null, floor: T0 + 5000 });
    expect(jobResetRefusal(twice as Extract<typeof twice, { op: 'job.reset'; ok: false }>)).toBe('nothing to withdraw: the job was reset before (floor 2027-01-15T08:00:05.000Z) and no slot was granted since');
  });

  it('is refused as stale-leader like job.claim: older than the newest activation, or than the job\'s record', () => {
    const { sm, ap } = machine();
    ap({ op: 'lead.active', node: 2, term: 5, token: 50 });
    ap(claim('j', T0 + H, 2, 5));
    expect(ap(reset('j', T0, 1, 4))).toMatchObject({ ok: false, reason: 'stale-leader' });
    expect(sm.job('j')!.claim).toMatchObject({ slot: T0 + H }); // unchanged
    const m2 = machine();
    m2.ap(claim('j', T0 + H, 2, 6));
    expect(m2.ap(reset('j', T0, 1, 5))).toMatchObject({ ok: false, reason: 'stale-leader' });
    // After a reset, a claim or reset of a term older than the reset's is stale too.
    expect(m2.ap(reset('j', T0, 1, 7))).toMatchObject({ ok: true });
    expect(m2.ap(claim('j', T0 + 2 * H, 2, 6))).toMatchObject({ ok: false, reason: 'stale-leader' });
  });

  it('the floor never goes down: a later reset by a leader whose clock is behind the earlier floor keeps the earlier floor', () => {
    const { sm, ap } = machine();
    ap(claim('j', T0 + H, 2, 2));
    ap(reset('j', T0 + 60_000, 1, 3));
    ap(claim('j', T0 + 2 * H, 2, 4));
    expect(ap(reset('j', T0, 3, 5))).toMatchObject({ ok: true, floor: T0 + 60_000 });
    expect(sm.job('j')!.reset).toMatchObject({ at: T0, floor: T0 + 60_000, node: 3, withdrawn: { slot: T0 + 2 * H } });
    expect(ap(claim('j', T0 + 30_000, 3, 5))).toMatchObject({ ok: false, reason: 'claimed' });
  });
});

/** Writes nested arrays of unsigned integers and text (a hand-made snapshot). */
type V = number | string | V[];
function cbor(v: V): Uint8Array {
  const w = new CborWriter();
  const put = (x: V): void => {
    if (typeof x === 'number') w.uint(x);
    else if (typeof x === 'string') w.text(x);
    else {
      w.array(x.length);
      for (const y of x) put(y);
    }
  };
  put(v);
  return w.finish();
}

describe('job.reset in snapshots', () => {
  it('a reset record is kept in snapshot version 4 and restores exactly; without one the layout stays version 3', () => {
    const { sm, ap, at } = machine();
    ap(claim('a', T0, 1, 1));
    ap(claim('b', T0 + H, 2, 2));
    ap(done('b', T0 + H, 2));
    const v3 = sm.snapshot();
    expect(v3[0]).toBe(0x89);
    expect(v3[12]).toBe(3);
    ap(reset('b', T0 + 1000, 1, 3));
    const v4 = sm.snapshot();
    expect(v4[12]).toBe(4);
    const back = KvStateMachine.restore(v4) as KvStateMachine;
    expect(back).toBeInstanceOf(KvStateMachine);
    expect(back.jobs).toEqual(sm.jobs);
    expect(back.snapshot()).toEqual(v4);
    // Restored, it goes on exactly as the original: the floor holds, the next slot is granted.
    for (const m of [sm, back]) {
      expect(m.apply(at() + 1, enc(claim('b', T0 + 1000, 1, 3)))).toMatchObject({ ok: false, reason: 'claimed' });
      expect(m.apply(at() + 2, enc(claim('b', T0 + 2000, 1, 3)))).toMatchObject({ ok: true });
    }
    expect(back.snapshot()).toEqual(sm.snapshot());
    // The older version still reads.
    expect((KvStateMachine.restore(v3) as KvStateMachine).job('b')!.claim).toMatchObject({ slot: T0 + H });
  });

  it('a damaged or inconsistent reset record is refused, naming it', () => {
    const applied = 10;
    const head = (version: number): V[] => ['quorumd-kv', version, applied, 0, 0, [], [], [[], 0, [], []]];
    const withdrawn: V[] = [T0 + H, 2, 3, 30, 3];
    const row = (c: V, r: V, z?: V): V => (z === undefined ? ['j', c, r] : ['j', c, r, z]);
    const snap = (version: number, ...rows: V[]) => cbor([...head(version), rows]);
    const msg = (b: Uint8Array) => (KvStateMachine.restore(b) as KvError).message;
    const good = [T0, T0, 1, 4, 5, ...withdrawn];
    expect(KvStateMachine.restore(snap(4, row([], [], good)))).toBeInstanceOf(KvStateMachine);
    expect(KvStateMachine.restore(snap(4, row([T0 + 1000, 1, 4, 40, 6], [], good)))).toBeInstanceOf(KvStateMachine);
    // Version 3 has no reset records and no empty claims.
    expect(msg(snap(3, row([], [], good)))).toBe('snapshot: jobs table: job 0: expected [name, claim, result]');
    expect(msg(snap(3, row([], [])))).toMatch(/^snapshot: jobs table: job 0: claim must be \[slot/);
    // Version 4 only with a reset record.
    expect(msg(snap(4, row([T0, 1, 1, 10, 1], [])))).toBe('snapshot: jobs table: version 4 without a reset record (version 3 is written then)');
    // An empty claim only after a reset.
    expect(msg(snap(4, row([], []), row([], [], good)))).toBe('snapshot: jobs table: job 0: claim must be [slot, node 1..254, term ≥ 1, token ≥ 1, index 1..appliedIndex]');
    expect(msg(snap(4, row([1, 2], [], good)))).toBe('snapshot: jobs table: job 0: claim must be [slot, node 1..254, term ≥ 1, token ≥ 1, index 1..appliedIndex] or [] (withdrawn)');
    // The reset's own fields.
    expect(msg(snap(4, row([], [], [T0, T0 - 1, 1, 4, 5, ...withdrawn])))).toMatch(/job 0: reset must be \[at, floor ≥ at/);
    expect(msg(snap(4, row([], [], [T0, T0, 0, 4, 5, ...withdrawn])))).toMatch(/job 0: reset must be/);
    expect(msg(snap(4, row([], [], [T0, T0, 1, 4, 11, ...withdrawn])))).toMatch(/job 0: reset must be/); // index > applied
    expect(msg(snap(4, row([], [], [T0, T0, 1, 4, 5, T0, 2, 3, 30, 0])))).toMatch(/job 0: reset: withdrawn claim must be/);
    // Consistency: the withdrawn claim after the floor and before the reset; a claim since after both.
    expect(msg(snap(4, row([], [], [T0, T0, 1, 4, 5, T0, 2, 3, 30, 3])))).toMatch(/withdrawn claim must be after the floor, before the reset/);
    expect(msg(snap(4, row([], [], [T0, T0, 1, 4, 2, ...withdrawn])))).toMatch(/withdrawn claim must be after the floor, before the reset/);
    expect(msg(snap(4, row([T0, 1, 4, 40, 6], [], good)))).toMatch(/a claim after a reset must be after its floor/);
    expect(msg(snap(4, row([T0 + 1000, 1, 4, 40, 4], [], good)))).toMatch(/a claim after a reset must be after its floor/);
    // A result of the withdrawn slot only if recorded before the reset.
    expect(KvStateMachine.restore(snap(4, row([], [T0 + H, 2, 0, 1, '', T0, 5, 4], good)))).toBeInstanceOf(KvStateMachine);
    expect(msg(snap(4, row([], [T0 + H, 2, 0, 1, '', T0, 5, 6], good)))).toBe('snapshot: jobs table: job 0: bad result field');
    // A newer version than this build reads.
    expect(msg(snap(5, row([], [], good)))).toBe('snapshot: version 5 was written by a newer quorumd (this build reads 1 to 4): upgrade this node to the version the other members run');
  });
});
