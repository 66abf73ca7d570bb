/**
 * The scheduled-job commands of the replicated state machine: job.claim grants each
 * slot of a job at most once and never a slot at or before one granted earlier;
 * job.done keeps the newest reported run. Encoding, validation, deterministic apply,
 * snapshots (version 3) and their validation.
 */
import { describe, expect, it } from 'vitest';
import { KvError, KvStateMachine, MAX_JOBS, decodeCommand, encodeCommand, type Command } from '../../../src/kv/index.ts';
import { Rng } from '../../../src/rng.ts';

const enc = (c: Command) => {
  const b = encodeCommand(c);
  if (b instanceof KvError) throw b;
  return b;
};
const claim = (job: string, slot: number, node: number, term: number, token = term * 10): Command => ({ op: 'job.claim', job, slot, node, term, token });
const done = (job: string, slot: number, node: number, outcome: 'ok' | 'failed' | 'timeout' | 'error' = 'ok', code = 0): Command => ({
  op: 'job.done',
  job,
  slot,
  node,
  outcome,
  code,
  signal: '',
  startedAtMs: slot + 3,
  durationMs: 12,
});

describe('KV job commands', () => {
  it('round-trip through the log encoding', () => {
    const cmds: Command[] = [
      claim('meters', 1_800_000_000_000, 2, 7, 41),
      done('meters', 1_800_000_000_000, 2, 'failed', 3),
      { op: 'job.done', job: 'rotate', slot: 0, node: 254, outcome: 'timeout', code: -1, signal: 'SIGKILL', startedAtMs: 0, durationMs: 0 },
    ];
    for (const c of cmds) expect(decodeCommand(enc(c))).toEqual(c);
  });

  it('bad input is named', () => {
    expect((encodeCommand(claim('', 1, 1, 1)) as KvError).message).toMatch(/^job: expected a non-empty string/);
    expect((encodeCommand(claim('j', -1, 1, 1)) as KvError).field).toBe('slot');
    expect((encodeCommand(claim('j', 1, 0, 1)) as KvError).field).toBe('node');
    expect((encodeCommand({ op: 'job.claim', job: 'j', slot: 1, node: 1, term: 1, token: 0 }) as KvError).field).toBe('token');
    expect((encodeCommand({ ...done('j', 1, 1), code: 256 } as Command) as KvError).message).toMatch(/^code: expected an integer in \[-1, 255\]/);
    expect((encodeCommand({ ...done('j', 1, 1), outcome: 'maybe' } as unknown as Command) as KvError).message).toMatch(/outcome: expected one of ok, failed, timeout, error/);
    expect((encodeCommand({ ...done('j', 1, 1), signal: 'kill -9' } as Command) as KvError).field).toBe('signal');
  });

  it('a slot is granted once; an earlier or equal slot is refused with the grant that holds', () => {
    const sm = new KvStateMachine();
    let i = 0;
    const ap = (c: Command) => sm.apply(++i, enc(c));
    expect(ap(claim('j', 1000, 1, 2))).toEqual({ op: 'job.claim', ok: true, index: 1 });
    const again = ap(claim('j', 1000, 2, 3));
    expect(again).toMatchObject({ op: 'job.claim', ok: false, reason: 'claimed', claim: { slot: 1000, node: 1, term: 2, index: 1 } });
    expect(ap(claim('j', 999, 2, 3))).toMatchObject({ ok: false, reason: 'claimed' });
    expect(ap(claim('j', 2000, 2, 3))).toEqual({ op: 'job.claim', ok: true, index: 4 });
    // Jobs are independent.
    expect(ap(claim('other', 1000, 2, 3))).toMatchObject({ ok: true });
    expect(sm.job('j')!.claim).toEqual({ slot: 2000, node: 2, term: 3, token: 30, index: 4 });
    expect(sm.jobs.map((j) => j.name)).toEqual(['j', 'other']);
  });

  it('a claim of a term older than the newest activation or the last grant is refused (a deposed leader)', () => {
    const sm = new KvStateMachine();
    let i = 0;
    const ap = (c: Command) => sm.apply(++i, enc(c));
    ap({ op: 'lead.active', node: 2, term: 5, token: 50 });
    expect(ap(claim('j', 1000, 1, 4))).toMatchObject({ ok: false, reason: 'stale-leader', claim: null });
    expect(ap(claim('j', 1000, 2, 5))).toMatchObject({ ok: true });
    // Without an activation record too: a later slot from an older term than the grant.
    const sm2 = new KvStateMachine();
    sm2.apply(1, enc(claim('j', 1000, 2, 6)));
    expect(sm2.apply(2, enc(claim('j', 5000, 1, 5)))).toMatchObject({ ok: false, reason: 'stale-leader' });
  });

  it('at most MAX_JOBS jobs', () => {
    const sm = new KvStateMachine();
    for (let j = 0; j < MAX_JOBS; j++) expect(sm.apply(j + 1, enc(claim(`j${j}`, 1, 1, 1)))).toMatchObject({ ok: true });
    expect(sm.apply(MAX_JOBS + 1, enc(claim('one-more', 1, 1, 1)))).toMatchObject({ ok: false, reason: 'too-many-jobs' });
    // Existing jobs still advance.
    expect(sm.apply(MAX_JOBS + 2, enc(claim('j0', 2, 1, 1)))).toMatchObject({ ok: true });
  });

  it('job.done keeps the newest run of a granted slot, by the claimer only', () => {
    const sm = new KvStateMachine();
    let i = 0;
    const ap = (c: Command) => sm.apply(++i, enc(c));
    expect(ap(done('j', 1000, 1))).toEqual({ op: 'job.done', ok: false }); // nothing claimed
    ap(claim('j', 1000, 1, 2));
    expect(ap(done('j', 1000, 2))).toEqual({ op: 'job.done', ok: false }); // not the claimer
    expect(ap(done('j', 2000, 1))).toEqual({ op: 'job.done', ok: false }); // not claimed yet
    expect(ap(done('j', 1000, 1, 'failed', 2))).toEqual({ op: 'job.done', ok: true });
    expect(sm.job('j')!.result).toMatchObject({ slot: 1000, node: 1, outcome: 'failed', code: 2, index: 5 });
    expect(ap(done('j', 1000, 1))).toEqual({ op: 'job.done', ok: false }); // duplicate report
    ap(claim('j', 2000, 3, 4));
    // The result of the slot before the grant of node 3 stays until node 3 reports.
    expect(sm.job('j')!.result!.slot).toBe(1000);
    expect(ap(done('j', 2000, 3, 'timeout', -1))).toMatchObject({ ok: true });
    expect(sm.job('j')).toMatchObject({ claim: { slot: 2000, node: 3 }, result: { slot: 2000, node: 3, outcome: 'timeout', code: -1 } });
  });

  it('snapshots carry the jobs table (version 3) and equal states give equal bytes; a damaged table is refused', () => {
    const rng = new Rng(42);
    const a = new KvStateMachine();
    let i = 0;
    a.apply(++i, enc({ op: 'put', key: 'k', value: new Uint8Array([1]) }));
    for (let n = 0; n < 200; n++) {
      const job = `job-${rng.int(0, 5)}`;
      const slot = rng.int(0, 50) * 1000;
      const node = rng.int(1, 3);
      a.apply(++i, enc(rng.int(0, 1) === 0 ? claim(job, slot, node, 1 + (n >> 4)) : done(job, slot, node)));
    }
    const snap = a.snapshot();
    const b = KvStateMachine.restore(snap);
    expect(b).toBeInstanceOf(KvStateMachine);
    const bb = b as KvStateMachine;
    expect(bb.jobs).toEqual(a.jobs);
    expect(bb.snapshot()).toEqual(snap);
    // A restored state machine goes on granting exactly as the original.
    for (const sm of [a, bb]) expect(sm.apply(i + 1, enc(claim('job-1', 10_000_000, 2, 99)))).toMatchObject({ ok: true });
    expect(bb.snapshot()).toEqual(a.snapshot());

    // A state without jobs keeps its older snapshot layout.
    const plain = new KvStateMachine();
    plain.apply(1, enc({ op: 'put', key: 'k', value: new Uint8Array([1]) }));
    expect(plain.snapshot()[0]).toBe(0x87); // array(7)
    expect(snap[0]).toBe(0x89); // array(9)

    // Damaged: a claim index above appliedIndex.
    const one = new KvStateMachine();
    one.apply(1, enc(claim('j', 5, 1, 1)));
    const bytes = one.snapshot();
    const last = bytes.lastIndexOf(0x01); // the claim's index (1) is the last small uint before the empty result
    const bad = Uint8Array.from(bytes);
    bad[last] = 0x09;
    const r = KvStateMachine.restore(bad);
    expect(r).toBeInstanceOf(KvError);
    expect((r as KvError).message).toMatch(/jobs table: job 0: claim must be/);
  });
});
