/**
 * Real-time effects in the simulator (issue 12): with `stall` among the faults a process
 * may stop for 0.1–2 s and the clock moves between two reads inside one step. Seeds on
 * which the old time reading (Fencer ticked with a `now` older than a reading it had
 * already seen) crashed a new leader now pass; and an exception inside a node is a
 * violation of the run ('engine-error' from the engine, 'internal-error' from the
 * runtime's other fatal paths), never hidden by the node's restart.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';

const ALL = 'partition,crash,power,loss,reorder,clock,disk,stall';

describe('sim real-time effects', () => {
  it('seeds where the old code crashed with "Fencer.tick: time went backwards" pass', () => {
    // With the fix reverted, seed 2 failed at 40.7 s (node 5, handling a HeartbeatReply),
    // seed 10 at 18.7 s and seed 13 at 13.8 s: internal-error, RangeError from Fencer.advance.
    for (const seed of [2, 10, 13]) {
      const cfg = parseSimOptions({ seed, nodes: 5, time: '60s', faults: ALL });
      const r = runEngineSeed(cfg, seed);
      expect(r.violation, `seed ${seed}`).toBeUndefined();
      expect(r.faultsByKind.stall ?? 0).toBeGreaterThan(0);
    }
  }, 120_000);

  it('an exception thrown inside a node (here: by its engine) fails the seed as engine-error, with where it came from', () => {
    const cfg = parseSimOptions({ seed: 4, nodes: 3, time: '10s', faults: 'stall' });
    const r = runEngineSeed(cfg, 4, {
      setup: ({ world, runtimes }) => {
        world.sched.after(6_000_000, () => {
          const eng = runtimes.get(2)?.engine as unknown as Record<string, unknown> | undefined;
          if (eng) eng.tick = () => {
            throw new RangeError('planted: engine tick throws');
          };
        });
      },
    });
    // The runtime tells the checks first (engine-error), naming the input; then takes its fatal path.
    expect(r.violation?.invariant).toBe('engine-error');
    expect(r.violation?.detail).toMatch(/^node 2: the engine threw: internal error in engine raft tick: RangeError: planted: engine tick throws/);
  });
});
