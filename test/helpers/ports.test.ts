/**
 * test/helpers/ports.ts: ports handed out to one test file never overlap, whether drawn
 * one at a time (freePort) or as a range (freeBasePort), even before anything listens
 * on them — a probe alone sees only listeners.
 */
import { describe, expect, it } from 'vitest';
import { freeBasePort, freePort } from './ports.ts';

describe('test ports', () => {
  it('a range never takes a port handed out before, and a single port never one of a range', async () => {
    // Many single ports handed out and not bound (as a test draws DNS ports before its
    // nodes start): a third of this worker's slice.
    const singles = new Set<number>();
    for (let i = 0; i < 500; i++) singles.add(await freePort());
    expect(singles.size).toBe(500);
    const ranged = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const base = await freeBasePort(5);
      for (let k = 1; k <= 5; k++) {
        expect(singles.has(base + k), `port ${base + k} of the range from ${base} was handed out singly before`).toBe(false);
        expect(ranged.has(base + k), `port ${base + k} of the range from ${base} is in an earlier range`).toBe(false);
        ranged.add(base + k);
      }
    }
    for (let i = 0; i < 100; i++) expect(ranged.has(await freePort())).toBe(false);
  });
});
