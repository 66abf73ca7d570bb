import { describe, expect, it } from 'vitest';
import { IndexMap } from '../../../daemon/runtime/index-map.ts';
import { Rng } from '../../../src/rng.ts';

/** What a Map with the same operations holds, in key order. */
function sorted(m: Map<number, string>): [number, string][] {
  return [...m].sort((a, b) => a[0] - b[0]);
}

describe('IndexMap: a Map of increasing integer keys kept in arrays', () => {
  it('answers get/has/size like a Map through in-order set and delete (the runtime pattern)', () => {
    const m = new IndexMap<string>();
    for (let i = 1; i <= 200; i++) m.set(i, `v${i}`);
    expect(m.size).toBe(200);
    for (let i = 1; i <= 150; i++) expect(m.delete(i)).toBe(true);
    expect(m.size).toBe(50);
    expect(m.get(150)).toBeUndefined();
    expect(m.get(151)).toBe('v151');
    expect(m.get(200)).toBe('v200');
    expect(m.delete(150)).toBe(false);
    expect(m.values()).toEqual(Array.from({ length: 50 }, (_, i) => `v${151 + i}`));
  });

  it('keeps keys set out of order (a replaced index, a wrapped request id) in key order', () => {
    const m = new IndexMap<string>();
    m.set(10, 'a');
    m.set(30, 'c');
    m.set(20, 'b');
    m.set(5, 'z');
    m.set(20, 'B');
    expect(m.size).toBe(4);
    expect(m.values()).toEqual(['z', 'a', 'B', 'c']);
    expect([5, 10, 20, 30].map((k) => m.get(k))).toEqual(['z', 'a', 'B', 'c']);
  });

  it('takeWhere removes and returns exactly the matching entries, in key order', () => {
    const m = new IndexMap<{ deadline: number }>();
    for (let i = 1; i <= 10; i++) m.set(i, { deadline: i % 3 === 0 ? 100 : 200 });
    const late = m.takeWhere((_, v) => v.deadline <= 150);
    expect(late.map(([k]) => k)).toEqual([3, 6, 9]);
    expect(m.size).toBe(7);
    expect(m.get(3)).toBeUndefined();
    expect(m.get(4)).toEqual({ deadline: 200 });
    expect(m.takeWhere(() => false)).toEqual([]);
  });

  it('refuses undefined as a value (it marks a hole)', () => {
    const m = new IndexMap<string | undefined>();
    expect(() => m.set(1, undefined)).toThrow(/must not be undefined/);
  });

  it('matches a Map model through 20,000 random operations (seeded), with one key left pending for long', () => {
    const rng = new Rng('index-map');
    const m = new IndexMap<string>();
    const model = new Map<number, string>();
    let next = 1;
    for (let step = 0; step < 20_000; step++) {
      const r = rng.float();
      if (r < 0.42) {
        // mostly increasing keys, sometimes one below the largest
        const k = rng.chance(0.05) ? Math.max(1, next - rng.int(1, 50)) : next++;
        m.set(k, `v${step}`);
        model.set(k, `v${step}`);
      } else if (r < 0.9) {
        // delete mostly the oldest live key, sometimes any key (present or not); never key 1
        const keys = [...model.keys()].filter((k) => k !== 1).sort((a, b) => a - b);
        const k = keys.length > 0 && rng.chance(0.8) ? keys[0]! : rng.int(2, next + 5);
        expect(m.delete(k)).toBe(model.delete(k));
      } else if (r < 0.98) {
        const k = rng.int(0, next + 5);
        expect(m.get(k)).toBe(model.get(k));
      } else {
        const cut = rng.int(2, next + 1);
        const took = m.takeWhere((k) => k !== 1 && k < cut);
        const want = sorted(model).filter(([k]) => k !== 1 && k < cut);
        expect(took).toEqual(want);
        for (const [k] of want) model.delete(k);
      }
      expect(m.size).toBe(model.size);
    }
    // Same size, every model key with its value, values in key order: the same map.
    for (const [k, v] of model) expect(m.get(k)).toBe(v);
    expect(m.values()).toEqual(sorted(model).map(([, v]) => v));
    m.clear();
    expect(m.size).toBe(0);
    expect(m.values()).toEqual([]);
    expect(m.get(1)).toBeUndefined();
  });

  it('does not grow without bound behind one key that stays (compaction of the holes)', () => {
    const m = new IndexMap<number>();
    m.set(1, 1); // a write waiting for its deadline
    for (let i = 2; i < 100_000; i++) {
      m.set(i, i);
      m.delete(i);
    }
    expect(m.size).toBe(1);
    // The slots kept are bounded (checked through the arrays' length: private, read for the test).
    const keys = (m as unknown as { keys: number[] }).keys;
    expect(keys.length).toBeLessThan(300);
    expect(m.get(1)).toBe(1);
  });
});
