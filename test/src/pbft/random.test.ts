/**
 * Randomized sweeps (test/src/pbft/sweep.ts): per seed, up to f Byzantine replicas with
 * random behaviours, crashes with torn persists, partitions, loss, duplication and
 * reordering while clients write at every replica; then a calm network in which every
 * request of an honest origin must execute everywhere honest. Invariants after every
 * step. A failing seed replays exactly: runSeed(seed, {n}).
 *
 * The test suite runs a few seeds; PBFT_SEEDS=300 runs more (n = 4 and n = 7 each), as
 * does `npx tsx test/src/pbft/sweep-cli.ts --seeds 1..300 --nodes 4` (one line per seed).
 */
import { describe, expect, it } from 'vitest';
import { runSeed } from './sweep.ts';

const more = Number(process.env.PBFT_SEEDS ?? 0);

describe('PBFT randomized sweep', () => {
  for (const [n, count] of [[4, more || 10], [7, more || 3]] as const) {
    it(`n = ${n}: ${count} seeds, every fault kind`, () => {
      let accepted = 0;
      let viewChanges = 0;
      for (let seed = 1; seed <= count; seed++) {
        const r = runSeed(seed, { n });
        accepted += r.accepted;
        viewChanges += r.viewChanges;
      }
      expect(accepted).toBeGreaterThan(count * 30);
      expect(viewChanges).toBeGreaterThan(0);
    });
  }
  it('real Ed25519 signatures and every message through the wire codec (n = 4, two seeds)', () => {
    for (const seed of [1, 2]) {
      const r = runSeed(seed, { n: 4, auth: 'ed25519', wire: true, chaosTicks: 400 });
      expect(r.accepted).toBeGreaterThan(10);
    }
  });
  it('a run is a pure function of its seed (same trace of every delivery), and seeds differ', () => {
    const a = runSeed(7, { n: 4, chaosTicks: 300 });
    const b = runSeed(7, { n: 4, chaosTicks: 300 });
    const c = runSeed(8, { n: 4, chaosTicks: 300 });
    expect(a).toEqual(b);
    expect(c.trace).not.toBe(a.trace);
  });
});
