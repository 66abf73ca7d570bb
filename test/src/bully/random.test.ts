/**
 * Randomized sweep: per seed, a cluster of 3–7 boards with random priorities (some
 * that never coordinate) goes through crashes, restarts, loss, reordering and
 * partitions; then the faults stop (loss ends; the partition heals or stays; down
 * boards come back or stay down) and within a bound
 *   - every connected component of live boards has exactly one coordinator, every
 *     other board of the component follows it at its epoch, and (preempt) it is the
 *     component's highest-priority live board;
 *   - its fencing token is the largest any board of the component ever held;
 * and it stays so. Throughout, the harness checks on every Ready that epochs only grow
 * (across restarts too), are persisted before any message carries them, and that each
 * new coordinatorship's epoch exceeds every epoch its board had seen, with no fencing
 * token issued twice.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { Cluster } from './harness.ts';
import type { BullyMember } from '../../../src/bully/index.ts';

const SEEDS = 100;
const FAULT_TICKS = 1500;
/**
 * Settling bound after the faults stop, in ticks (10 ms). Observed: p50 6, max 32 over
 * 1500 seeds of this sweep. The worst chain: a board whose election got an Answer
 * waits out one coordinatorWait (15) for an announcement lost before the faults
 * stopped, elects again (answer timeout 5), the new announcement meets a stale
 * coordinator that is rejected within a heartbeat (5) and deliveries (≤ 3 each).
 */
const SETTLE_BOUND = 80;

interface Outcome {
  settleTicks: number;
  coordinatorships: number;
  messages: number;
}

function runSeed(seed: number): Outcome {
  const r = new Rng(seed ^ 0x5eed);
  const n = r.int(3, 7);
  const ids = Array.from({ length: n }, (_, k) => k + 1);
  // random distinct priorities, one board in four never coordinates (priority 0)
  const prios = ids.map((k) => k * 10);
  for (let k = prios.length - 1; k > 0; k--) {
    const j = r.int(0, k);
    [prios[k], prios[j]] = [prios[j]!, prios[k]!];
  }
  const members: BullyMember[] = ids.map((id, k) => ({ id, priority: r.chance(0.25) && k > 0 ? 0 : prios[k]! }));
  const preempt = !r.chance(0.2);
  const maxDelay = r.int(1, 3);
  const c = new Cluster({ seed, members, options: { preempt }, net: { drop: r.float() * 0.3, minDelay: 1, maxDelay } });
  c.countBytes = false;

  let t = 0;
  while (t < FAULT_TICKS) {
    const step = r.int(5, 60);
    c.run(step);
    t += step;
    const ev = r.int(0, 9);
    if (ev <= 2) {
      const up = c.up();
      if (up.length > 1) c.crash(r.pick(up));
    } else if (ev <= 4) {
      const down = ids.filter((id) => !c.isUp(id));
      if (down.length > 0) c.restart(r.pick(down));
    } else if (ev === 5) {
      const groups = r.int(2, 3);
      const assign: number[][] = Array.from({ length: groups }, () => []);
      for (const id of ids) assign[r.int(0, groups - 1)]!.push(id);
      c.partition(...assign);
    } else if (ev === 6) {
      c.heal();
    } else if (ev === 7) {
      c.net = { drop: r.float() * 0.4, minDelay: 1, maxDelay: r.int(1, 4) };
    } else if (ev === 8) {
      // the coordinator is the favourite target
      const co = c.coordinators();
      if (co.length > 0 && c.up().length > 1) c.crash(r.pick(co));
    }
  }
  // Faults stop.
  c.net = { drop: 0, minDelay: 1, maxDelay };
  if (r.chance(0.5)) c.heal();
  for (const id of ids) if (!c.isUp(id) && r.chance(0.5)) c.restart(id);

  const settleTicks = c.settle(SETTLE_BOUND, preempt);
  const before = c.coordinatorships.length;
  for (let k = 0; k < 30; k++) {
    c.run(10);
    const p = c.settledProblem(preempt);
    if (p) throw new Error(`seed ${seed}: unsettled again at tick ${c.now}: ${p}`);
  }
  expect(c.coordinatorships.length).toBe(before); // stable: no new coordinatorship once settled
  // Per board, coordinatorship epochs strictly increase (the harness also checks each
  // exceeds everything its board had seen).
  for (const id of ids) {
    const es = c.coordinatorships.filter((x) => x.id === id).map((x) => x.epoch);
    for (let k = 1; k < es.length; k++) expect(es[k]!).toBeGreaterThan(es[k - 1]!);
  }
  return { settleTicks, coordinatorships: c.coordinatorships.length, messages: c.sent.messages };
}

describe('bully randomized sweep', () => {
  it(`${SEEDS} seeds: after faults stop, one coordinator per component, the highest, within ${SETTLE_BOUND} ticks; epochs only grow`, () => {
    const outcomes: Outcome[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      try {
        outcomes.push(runSeed(seed));
      } catch (e) {
        throw new Error(`seed ${seed}: ${(e as Error).message}`);
      }
    }
    const settle = outcomes.map((o) => o.settleTicks).sort((a, b) => a - b);
    const elections = outcomes.reduce((s, o) => s + o.coordinatorships, 0);
    expect(elections).toBeGreaterThan(SEEDS * 3); // the faults really did cause failovers
    console.log(`bully sweep: ${SEEDS} seeds, ${elections} coordinatorships; settle after faults stop: ` +
      `p50=${settle[Math.floor(SEEDS / 2)]} max=${settle[SEEDS - 1]} ticks (bound ${SETTLE_BOUND})`);
  });

  it('a broken engine rule is caught: the sweep is not vacuous', () => {
    // Without preemption the highest-priority rule must fail on some seed: proves the
    // check looks at who leads, not only at how many lead.
    const c = new Cluster({ seed: 1, members: [1, 2, 3], options: { preempt: false } });
    c.crash(3);
    c.settle(60, false);
    c.restart(3);
    c.run(100);
    expect(c.settledProblem(true)).toMatch(/not by its highest board 3/);
  });
});
