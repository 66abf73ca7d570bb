/**
 * The seed sweep that runs in `npm test`: 50 seeds with every fault kind (stalls and a clock that moves within a step included), 3- and
 * 5-node clusters, some with a witness. Every seed must pass every invariant, the
 * liveness probe and the linearizability check. Seeds run one after another.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed, type SeedResult } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions, replayCommand } from '../../../daemon/sim/options.ts';

// stall brings the real-time effects (issue 12): frozen processes, a clock that moves within a step.
const ALL = 'partition,crash,power,loss,reorder,clock,disk,stall';

describe('simulation sweep (50 seeds, all fault kinds)', () => {
  it('finds no violation, keeps the cluster live and every history linearizable', () => {
    const results: Array<SeedResult & { replay: string }> = [];
    for (let seed = 1; seed <= 50; seed++) {
      const nodes = seed % 3 === 0 ? 5 : 3;
      const cfg = parseSimOptions({ seed, nodes, witness: seed % 5 === 0, time: '30s', faults: ALL });
      results.push({ ...runEngineSeed(cfg, seed), replay: replayCommand(cfg, seed) });
    }
    const bad = results.filter((r) => r.violation).map((r) => `${r.replay}: ${r.violation!.invariant}: ${r.violation!.detail}`);
    expect(bad).toEqual([]);
    // The sweep really exercised something: faults, elections, client operations, a checked history.
    const sum = (f: (r: SeedResult) => number) => results.reduce((a, r) => a + f(r), 0);
    expect(sum((r) => r.faults)).toBeGreaterThan(250);
    expect(sum((r) => r.faultsByKind.stall ?? 0)).toBeGreaterThan(20);
    expect(sum((r) => r.leaders)).toBeGreaterThanOrEqual(50);
    expect(sum((r) => r.opsOk)).toBeGreaterThan(20_000);
    expect(results.every((r) => r.lin === 'ok')).toBe(true);
    expect(results.every((r) => r.probeMs >= 0)).toBe(true);
    // Virtual time makes the result independent of machine speed; only the wall
    // time varies (≈15 s alone on 2 cores, several times that on a loaded machine).
  }, 300_000);
});
