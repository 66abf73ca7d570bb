/** Power cuts at random points, many seeds, on the in-memory flash model (see sweep.ts). */
import { describe, expect, it } from 'vitest';
import type { Rng } from '../../../src/rng.ts';
import { PowerLossStorage, type Tail } from './power-loss-storage.ts';
import { runSeed } from './sweep.ts';

describe('power cuts at random points (in-memory flash model)', () => {
  // 'sectors': a preallocated WAL whose append reached the disk in any subset of its
  // sectors; safe only because every flush is one record (durable-log.ts).
  for (const tail of ['cut', 'zeros', 'garbage', 'sectors'] as const satisfies readonly Tail[]) {
    it(`tail=${tail}: acknowledged batches survive, recovered state is prefix-consistent (120 seeds)`, () => {
      let acked = 0;
      let torn = 0;
      for (let seed = 1; seed <= 120; seed++) {
        const st = new PowerLossStorage({ auto: false });
        const dev = { storage: st, settle: () => st.runAll(), advance: () => void st.step(), powerCut: (rng: Rng) => st.powerCut(rng, tail) };
        const r = runSeed(seed * 7919 + tail.length, dev, { segmentBytes: 1500 });
        acked += r.acked;
        torn += r.warnings.filter((w) => w.startsWith('torn tail')).length;
      }
      // The sweep must actually exercise acknowledgements and torn tails.
      expect(acked).toBeGreaterThan(500);
      expect(torn).toBeGreaterThan(20);
    });
  }
});
