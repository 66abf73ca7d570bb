/**
 * Linearizable reads: readIndex(ctx) orders a read marker through the log; its
 * ReadState {ctx, index} says "serve once applied ≥ index", and that point is after
 * every write that completed before the read began (the marker is ordered after it).
 */
import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';
import { SWEEP_OPTIONS } from './sweep.ts';

describe('PBFT reads', () => {
  it('a read started after a write completed is served at an index that includes the write, at any replica', () => {
    const c = new Cluster({ seed: 51, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 2 } });
    for (let i = 0; i < 6; i++) {
      const key = c.submit((i % 4) + 1, `set x v${i}`)!;
      c.runUntil(() => c.clients.get(key)!.accepted !== undefined, 500, 'write accepted');
      const writeIndex = c.clients.get(key)!.accepted!.index;
      const reader = c.replica(((i + 2) % 4) + 1);
      const res = reader.e.readIndex(100 + i);
      expect(res.ok).toBe(true);
      c.process(reader);
      c.runUntil(() => reader.reads.some((r) => r.ctx === 100 + i), 500, 'read point');
      const at = reader.reads.find((r) => r.ctx === 100 + i)!.index;
      expect(at).toBeGreaterThan(writeIndex);
      c.runUntil(() => reader.applied >= at, 100, 'applied up to the read point');
      expect(reader.kv.get('x')).toBe(`v${i}`);
    }
    // A read marker is a no-op in the log: it executed, nothing changed.
    expect(c.inv.violations).toEqual([]);
  });

  it('refuses a bad ctx, and reads count against the in-flight limit', () => {
    const c = new Cluster({ seed: 52, n: 4, options: { ...SWEEP_OPTIONS, maxPending: 1 } });
    const r = c.replica(2).e;
    expect(r.readIndex(0)).toMatchObject({ ok: false, code: 'bad-request' });
    expect(r.readIndex(1)).toMatchObject({ ok: true });
    expect(r.readIndex(2)).toMatchObject({ ok: false, code: 'busy' });
  });
});
