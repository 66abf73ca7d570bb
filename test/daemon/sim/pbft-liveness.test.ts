/**
 * `quorumd sim --engine pbft`: an honest replica whose view-change timer expires alone
 * (here: cut off for a few timeouts while its client waits) must take part again once
 * the network heals. Found on real processes (`quorumd dev --engine pbft
 * --byzantine-node 4`): under the paper's rule it sent VIEW-CHANGE for view 1 alone,
 * the other three went on in view 0, and it never came back — with a liar among those
 * three, the liar alone decided whether view 0 moved. The sim's pbft-liveness check
 * (daemon/sim/pbft-sim.ts pbftUnsettled) catches it; the engine's complaints
 * (src/pbft/pbft.ts "Suspicion") fix it. `viewChangeAlone` plants the old rule back.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import type { EngineSeedHooks } from '../../../daemon/sim/engine-cluster.ts';

// No random faults: only the one cut below (the engine's own timeout is 1000 ms in the sim).
const cfg = parseSimOptions({ seed: 1, engine: 'pbft', nodes: 4, time: '12s', faults: '' });
const isolateTwo: EngineSeedHooks['setup'] = ({ world }) => {
  world.sched.after(3_000_000, () => world.partition([[2], [1, 3, 4, BROKER]]));
  world.sched.after(7_000_000, () => world.heal());
};

describe('pbft liveness: a replica alone in a higher view', () => {
  it('the paper\'s rule (VIEW-CHANGE at once, alone) leaves it out for good: pbft-liveness catches it', () => {
    const r = runEngineSeed(cfg, 1, { setup: isolateTwo, skipLin: true, runtime: { engineOptions: { testingBugs: { viewChangeAlone: true } } } });
    expect(r.violation?.invariant).toBe('pbft-liveness');
    expect(r.violation?.detail).toMatch(/n2 view 1 \(view change\)/);
  }, 120_000);

  it('with complaints it stays in view 0 and takes part again after the cut heals', () => {
    const r = runEngineSeed(cfg, 1, { setup: isolateTwo, skipLin: true });
    expect(r.violation).toBeUndefined();
    expect(r.opsOk).toBeGreaterThan(20);
  }, 120_000);
});

/**
 * The NEW-VIEW timer's counterpart, on five boards (no random faults, no STONITH: the
 * engine alone). The view changes to 1 while its primary n2 is cut off; n1 (view 0's
 * primary, frozen meanwhile) joins last and holds every VIEW-CHANGE before the others
 * hold its own, so its NEW-VIEW timer runs out first (9.5 s). Then n2 comes back and
 * the others install NEW-VIEW(1). Under the paper's rule (`newViewTimerAlone`) n1 has
 * moved to view 2 alone and stays there: one VIEW-CHANGE(2) pulls nobody along. With
 * the complaint it waits in view 1 and installs the NEW-VIEW with the others. (The
 * same race on four replicas, step by step: test/src/pbft/newview-timer.test.ts; it
 * once showed in sweep seed 27, test/daemon/sim/regression-seeds.test.ts.)
 */
const fiveCfg = parseSimOptions({ seed: 1, engine: 'pbft', nodes: 5, time: '20s', faults: '', stonith: false });
const newViewRace: EngineSeedHooks['setup'] = ({ world }) => {
  const at = (ms: number, fn: () => void) => world.sched.after(ms * 1000, fn);
  // Booted by 3 s. From 5 s: n2 cut off, n1 frozen for 2.5 s (what reaches it waits).
  at(5_000, () => {
    world.partition([[2], [1, 3, 4, 5, BROKER]]);
    world.board(1).stall(2_500);
  });
  // n1 wakes to the others' VIEW-CHANGE(1)s, joins, and its own reaches nobody for 1.5 s.
  at(7_499, () => world.partition([[2], [1], [3, 4, 5, BROKER]]));
  at(9_000, () => world.partition([[2], [1, 3, 4, 5, BROKER]]));
  // n1's NEW-VIEW timer (2 × 1000 ms after the doubling) ran out at ~9.5 s; n2 comes back.
  at(9_600, () => world.heal());
};

describe('pbft liveness: the NEW-VIEW timer of one replica runs out first', () => {
  it('the paper\'s rule (newViewTimerAlone: VIEW-CHANGE for the next view at once) leaves it alone in view 2: pbft-liveness catches it', () => {
    const r = runEngineSeed(fiveCfg, 1, { setup: newViewRace, skipLin: true, runtime: { engineOptions: { testingBugs: { newViewTimerAlone: true } } } });
    expect(r.violation?.invariant).toBe('pbft-liveness');
    expect(r.violation?.detail).toMatch(/n1 view 2 \(view change\)/);
  }, 120_000);

  it('with the complaint it installs NEW-VIEW(1) with the others', () => {
    const r = runEngineSeed(fiveCfg, 1, { setup: newViewRace, skipLin: true });
    expect(r.violation).toBeUndefined();
    expect(r.opsOk).toBeGreaterThan(100);
  }, 120_000);
});
