/**
 * Randomized sweeps (the small one that runs in `npm test`): client load, crashes
 * (between inputs, between two Readys, while persisting a Ready), leader faults,
 * restarts, partitions, loss, duplication and reordering, snapshots and reads — every
 * ZAB invariant checked on every Ready and after every delivery and tick — then
 * healing, after which the cluster must converge. Bigger sweeps:
 * `npx tsx bench/zab-sweep.ts --seeds 1..300` (prints violations per configuration).
 */
import { describe, expect, it } from 'vitest';
import { chaos } from './chaos.ts';
import { Cluster } from './harness.ts';
import { Rng } from '../../../src/rng.ts';

describe('zab randomized safety', () => {
  it('30 seeds, 5 voters: invariants hold, all converge, and the cluster made progress', () => {
    let applied = 0;
    let establishments = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = chaos(seed, { voters: 5 });
      applied += r.applied;
      establishments += r.establishments;
    }
    expect(applied).toBeGreaterThan(30 * 20); // progress, not safety by doing nothing
    expect(establishments).toBeGreaterThan(30); // leaders changed under the faults
  });

  it('15 seeds, 3 voters with snapshots and reads (SNAP synchronization, linearizable reads checked)', () => {
    let reads = 0;
    for (let seed = 100; seed < 115; seed++) reads += chaos(seed, { voters: 3, snapshots: true, reads: true }).reads;
    expect(reads).toBeGreaterThan(15); // reads were answered (and each checked)
  });

  it('15 seeds, 2 voters + a witness + an observer, snapshots and reads', () => {
    for (let seed = 200; seed < 215; seed++) chaos(seed, { voters: 2, witnesses: 1, observers: 1, snapshots: true, reads: true });
  });

  it('10 seeds, 5 voters, hard leader faults (a leader crashed or cut off every ~100 ms on average)', () => {
    for (let seed = 300; seed < 310; seed++) chaos(seed, { voters: 5, leaderFault: 0.1, ticks: 300 });
  });
});

describe('zab under harsh schedules', () => {
  it('long reordering (delays up to 300 ms, twice syncLimit) keeps safety and makes progress once it calms down', () => {
    for (let seed = 400; seed < 404; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.02, dup: 0.02, minDelay: 0, maxDelay: 30 } });
      for (let t = 0; t < 600; t++) {
        if (t % 3 === 0) c.propose(`r${t}`);
        c.tick();
      }
      c.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 0 };
      c.runUntil(() => c.agreed() !== undefined, 600, `seed ${seed}: agreement`);
      c.propose('last');
      c.run(30);
      const l = c.leader()!;
      expect(c.appliedData(l.id).at(-1)).toBe('last');
      for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(c.appliedData(l.id));
    }
  });

  it('churn: a node crashes every 200–300 ms and restarts shortly after; the cluster keeps committing', () => {
    for (let seed = 500; seed < 504; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.01, dup: 0.01, minDelay: 0, maxDelay: 2 } });
      const rng = new Rng(seed).fork('churn');
      let next = 20;
      let victim: number | undefined;
      let committed = 0;
      for (let t = 0; t < 1500; t++) {
        if (t === next) {
          if (victim !== undefined) c.restart(victim);
          victim = rng.int(1, 5);
          c.crash(victim);
          next = t + rng.int(20, 30);
        }
        if (t % 2 === 0 && c.propose(`c${seed}-${t}`) !== undefined) committed++;
        c.tick();
      }
      if (victim !== undefined) c.restart(victim);
      c.runUntil(() => c.agreed() !== undefined, 400, `seed ${seed}: agreement`);
      c.run(100);
      const l = c.leader()!;
      expect(c.appliedData(l.id).length).toBeGreaterThan(100); // it kept committing through the churn
      for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(c.appliedData(l.id));
    }
  });
});
