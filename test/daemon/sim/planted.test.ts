/**
 * The checks can fail: planted bugs are caught.
 *   - a disk that lies about fsync (the engine's acknowledgements then run ahead of
 *     the disk, as if the runtime sent before persisting) + power cuts;
 *   - the same with the direct durability checks switched off, and a whole-cluster
 *     outage: the Raft invariants themselves (log matching, election safety) catch it;
 *   - stale local reads instead of ReadIndex: the linearizability check catches it;
 *   - the end-of-run acknowledged-writes check on a fabricated lost write.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { InvariantChecker } from '../../../daemon/sim/raft-invariants.ts';
import { SimViolation } from '../../../daemon/sim/violation.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';
import { lyingStorage } from './helpers.ts';

describe('planted bugs are caught', () => {
  it('a disk that lies about fsync, with power cuts: durable-commit violation', () => {
    const cfg = parseSimOptions({ seeds: '1..10', nodes: 3, time: '10s', faults: 'power' });
    const caught = cfg.seeds.map((s) => runEngineSeed(cfg, s, { wrapStorage: lyingStorage, skipLin: true }).violation?.invariant);
    expect(caught.filter((v) => v === 'durable-commit').length).toBeGreaterThanOrEqual(8);
  });

  it('whole-cluster outage: honest flash survives it, a lying disk breaks Raft invariants', () => {
    const cfg = parseSimOptions({ seeds: '1..4', nodes: 3, time: '10s', faults: '' });
    const outage = {
      setup: (c: { world: { sched: { at: (t: number, f: () => void) => unknown }; boards: Map<number, { setMains: (on: boolean) => void }> } }) => {
        c.world.sched.at(6_000_000, () => c.world.boards.forEach((b) => b.setMains(false)));
        c.world.sched.at(6_500_000, () => c.world.boards.forEach((b) => b.setMains(true)));
      },
    };
    for (const seed of cfg.seeds) {
      const honest = runEngineSeed(cfg, seed, outage);
      expect(honest.violation).toBeUndefined();
      expect(honest.lin).toBe('ok');
      const lying = runEngineSeed(cfg, seed, { ...outage, wrapStorage: lyingStorage, disableChecks: ['durable-commit', 'commit-monotonic'] });
      // one-leader-per-term and acked-lost: the shared checks' names for election safety and a lost acknowledged write.
      expect(['log-matching', 'election-safety', 'one-leader-per-term', 'state-machine-safety', 'acked-write-lost', 'acked-lost', 'leader-completeness', 'linearizability']).toContain(lying.violation?.invariant);
    }
  });

  it('stale local reads instead of ReadIndex: the linearizability check fails', () => {
    const cfg = parseSimOptions({ seeds: '1..3', nodes: 3, time: '10s', faults: 'partition' });
    for (const seed of cfg.seeds) {
      const r = runEngineSeed(cfg, seed, { workload: { staleReads: true } });
      expect(r.violation?.invariant).toBe('linearizability');
      expect(r.lin).toBe('fail');
    }
  });

  it('acknowledged-writes check fails for a write that is not in the committed log', () => {
    const ck = new InvariantChecker(() => 0, []);
    expect(() => ck.checkAcked([{ index: 5, dataHash: 1, what: 'put k=v' }], undefined)).toThrow(SimViolation);
    expect(() => ck.checkAcked([{ index: 5, dataHash: 1, what: 'put k=v' }], undefined)).toThrow(/acked-write-lost: put k=v was acknowledged at index 5/);
  });
});
