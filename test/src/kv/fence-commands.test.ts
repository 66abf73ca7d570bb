/**
 * The split-brain commands of the replicated state machine: lead.claim, lead.active,
 * fence.record — encoding, validation, deterministic apply (suspects), snapshots.
 */
import { describe, expect, it } from 'vitest';
import { KvError, KvStateMachine, decodeCommand, encodeCommand, MAX_CLAIMS, MAX_FENCE_HISTORY, type Command } from '../../../src/kv/index.ts';

const enc = (c: Command) => {
  const b = encodeCommand(c);
  if (b instanceof KvError) throw b;
  return b;
};

describe('KV split-brain commands', () => {
  it('round-trip through the log encoding', () => {
    const cmds: Command[] = [
      { op: 'lead.claim', node: 3, term: 7 },
      { op: 'lead.active', node: 3, term: 7, token: 41 },
      { op: 'fence.record', target: 2, by: 3, term: 7, outcome: 'already-off', level: -1, atMs: 1234, reason: 'earlier leader' },
      { op: 'fence.record', target: 2, by: 3, term: 0, outcome: 'off', level: 1, atMs: 0, reason: '' },
    ];
    for (const c of cmds) expect(decodeCommand(enc(c))).toEqual(c);
  });

  it('bad input is named', () => {
    expect((encodeCommand({ op: 'lead.claim', node: 0, term: 1 }) as KvError).message).toMatch(/^node: expected an integer in \[1, 254\]/);
    expect((encodeCommand({ op: 'lead.active', node: 1, term: 1, token: 0 }) as KvError).field).toBe('token');
    expect((encodeCommand({ op: 'fence.record', target: 2, by: 3, term: 1, outcome: 'maybe' as 'off', level: 0, atMs: 0, reason: '' }) as KvError).message).toMatch(/outcome: expected one of off, already-off/);
    expect((encodeCommand({ op: 'fence.record', target: 2, by: 3, term: 1, outcome: 'off', level: 0, atMs: 0, reason: 'x'.repeat(201) }) as KvError).field).toBe('reason');
  });

  it('suspects: claims since the newest activation, that activation included; older claims are ignored', () => {
    const sm = new KvStateMachine();
    let i = 0;
    const ap = (c: Command) => sm.apply(++i, enc(c));
    expect(sm.suspects(5)).toEqual({ nodes: [], unknown: false });
    ap({ op: 'lead.claim', node: 1, term: 2 });
    ap({ op: 'lead.claim', node: 2, term: 3 });
    expect(sm.suspects(4).nodes).toEqual([1, 2]);
    expect(sm.suspects(3).nodes).toEqual([1]);
    expect(ap({ op: 'lead.active', node: 2, term: 3, token: 9 })).toEqual({ op: 'lead.active', ok: true });
    expect(sm.suspects(4).nodes).toEqual([2]);
    expect(ap({ op: 'lead.claim', node: 1, term: 2 })).toEqual({ op: 'lead.claim', ok: false }); // cannot act any more
    expect(ap({ op: 'lead.active', node: 1, term: 2, token: 5 })).toEqual({ op: 'lead.active', ok: false });
    ap({ op: 'lead.claim', node: 3, term: 6 });
    expect(sm.suspects(7).nodes).toEqual([2, 3]);
    expect(sm.activation).toEqual({ node: 2, term: 3, token: 9 });
  });

  it('bounded: more than MAX_CLAIMS claims mark the list truncated (suspects unknown); histories keep the newest', () => {
    const sm = new KvStateMachine();
    let i = 0;
    for (let t = 1; t <= MAX_CLAIMS + 3; t++) sm.apply(++i, enc({ op: 'lead.claim', node: (t % 5) + 1, term: t }));
    expect(sm.leaderClaims.length).toBe(MAX_CLAIMS);
    expect(sm.suspects(1000).unknown).toBe(true);
    for (let k = 0; k < MAX_FENCE_HISTORY + 5; k++) sm.apply(++i, enc({ op: 'fence.record', target: 2, by: 1, term: 1, outcome: 'failed', level: -1, atMs: k, reason: `r${k}` }));
    expect(sm.fenceHistory.length).toBe(MAX_FENCE_HISTORY);
    expect(sm.fenceHistory[0]!.atMs).toBe(5);
  });

  it('snapshots: version 2 only when the table is used; restore gives the same bytes and suspects', () => {
    const plain = new KvStateMachine();
    plain.apply(1, enc({ op: 'put', key: 'k', value: new Uint8Array([1]) }));
    expect((KvStateMachine.restore(plain.snapshot()) as KvStateMachine).snapshot()).toEqual(plain.snapshot());
    expect(plain.snapshot()[12]).toBe(1); // still version 1

    const sm = new KvStateMachine();
    sm.apply(1, enc({ op: 'lead.claim', node: 1, term: 2 }));
    sm.apply(2, enc({ op: 'lead.active', node: 1, term: 2, token: 1 }));
    sm.apply(3, enc({ op: 'lead.claim', node: 2, term: 4 }));
    sm.apply(4, enc({ op: 'fence.record', target: 1, by: 2, term: 4, outcome: 'off', level: 0, atMs: 77, reason: 'earlier leader' }));
    const snap = sm.snapshot();
    const r = KvStateMachine.restore(snap);
    expect(r).toBeInstanceOf(KvStateMachine);
    const back = r as KvStateMachine;
    expect(back.snapshot()).toEqual(snap);
    expect(back.suspects(5)).toEqual(sm.suspects(5));
    expect(back.fenceHistory).toEqual(sm.fenceHistory);
    // a damaged table is a named error
    const bad = snap.slice();
    bad[bad.length - 1] = 0xff;
    const e = KvStateMachine.restore(bad);
    expect(e).toBeInstanceOf(KvError);
  });
});
