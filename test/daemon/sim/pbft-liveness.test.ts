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
