/**
 * The durable log on the simulator's flash (firmware-sim/flash.ts): fsyncs take
 * virtual time, power is cut at random virtual instants, the last write of the card
 * may be torn. Same sweep and checks as the in-memory model (sweep.ts).
 */
import { describe, expect, it } from 'vitest';
import { Flash } from '../../../firmware-sim/flash.ts';
import { Scheduler, SimContext, Trace } from '../../../firmware-sim/scheduler.ts';
import { Rng } from '../../../src/rng.ts';
import { ents, openNow } from './helpers.ts';
import { runSeed } from './sweep.ts';

function device(seed: number) {
  const sched = new Scheduler();
  const ctx = new SimContext(sched, new Trace());
  const flash = new Flash(ctx, new Rng(seed ^ 0x5eed), 'n1', { fsyncMinMs: 1, fsyncMaxMs: 8 });
  return {
    sched,
    flash,
    dev: {
      storage: flash,
      settle: () => void sched.run(sched.now + 60_000_000, 1_000_000),
      advance: (rng: Rng) => void sched.run(sched.now + rng.int(0, 4000)),
      powerCut: () => flash.powerLoss(),
    },
  };
}

describe('durable log on firmware-sim Flash', () => {
  it('power cuts at random virtual instants: acknowledged batches survive, prefix-consistent (100 seeds)', () => {
    let acked = 0;
    let torn = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const { dev, flash } = device(seed);
      const r = runSeed(seed * 104729, dev, { segmentBytes: 1500 });
      acked += r.acked;
      torn += flash.stats.tornWrites;
    }
    expect(acked).toBeGreaterThan(300);
    expect(torn).toBeGreaterThan(5);
  });

  it('group commit on flash: persists issued during an fsync share the next one', () => {
    const { dev, sched, flash } = device(1);
    const { log } = openNow(dev.storage, {}, dev.settle);
    let first: Error | null | undefined;
    log.persist({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 1, 1) }, (e) => (first = e));
    dev.settle();
    expect(first).toBeNull();
    const f0 = flash.stats.fsyncs;
    let done = 0;
    for (let i = 2; i <= 101; i++) log.persist({ entries: ents(i, i, 1) }, (e) => void (e === null && done++));
    dev.settle();
    expect(done).toBe(100);
    expect(flash.stats.fsyncs - f0).toBe(2);
    expect(sched.now).toBeGreaterThan(0);
  });
});
