/**
 * Raft on the one simulated cluster (daemon/sim/engine-cluster.ts) and the one runtime
 * (daemon/runtime/engine-node.ts, RaftEngine): a small sweep with every fault kind and
 * a witness, and replay; runs without the stall fault; the per-step checks do not
 * change the run by looking.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';

const ALL = 'partition,crash,power,loss,reorder,clock,disk,stall';

describe('Raft on the engine cluster', () => {
  it('a small sweep with every fault kind, with and without a witness: no violation, linearizable, no split brain', () => {
    for (const witness of [false, true]) {
      const cfg = parseSimOptions({ seeds: '1..2', engine: 'raft', nodes: witness ? 2 : 5, witness, time: '20s', faults: ALL });
      for (const seed of cfg.seeds) {
        const r = runEngineSeed(cfg, seed);
        expect(r.violation, JSON.stringify(r.violation)).toBeUndefined();
        expect(['ok', 'unknown']).toContain(r.lin);
        expect(r.faults).toBeGreaterThan(2);
        expect(r.commits).toBeGreaterThan(100);
        expect(r.actuations).toBeGreaterThan(0);
        expect(r.staleActuations).toBe(0);
        expect(r.dualActiveMs).toBe(0);
      }
    }
  }, 300_000);

  it('the same seed gives the same trace hash; another seed differs', () => {
    const cfg = parseSimOptions({ seed: 5, engine: 'raft', nodes: 3, time: '8s', faults: ALL });
    const a = runEngineSeed(cfg, 5);
    const b = runEngineSeed(cfg, 5);
    const c = runEngineSeed(cfg, 6);
    expect(a.violation).toBeUndefined();
    expect(b.trace).toBe(a.trace);
    expect(b.commits).toBe(a.commits);
    expect(c.trace).not.toBe(a.trace);
  }, 120_000);

  it('finishes without the stall fault (a pre-candidate once made the Ready loop spin at one instant)', () => {
    for (const faults of ['partition,crash', undefined]) {
      const cfg = parseSimOptions({ seed: 3, engine: 'raft', nodes: 3, time: '8s', ...(faults ? { faults } : {}) });
      const r = runEngineSeed(cfg, 3);
      expect(r.violation, JSON.stringify(r.violation)).toBeUndefined();
      expect(r.commits).toBeGreaterThan(50);
    }
  }, 120_000);

  it('the checks look without moving a clock: with the stall kind, checking twice per step gives the same run', () => {
    // With `stall` in the list every process clock read moves that clock (whether or not a stall comes).
    const cfg = parseSimOptions({ seed: 4, engine: 'raft', nodes: 3, time: '8s', faults: 'stall,partition' });
    const once = runEngineSeed(cfg, 4);
    const twice = runEngineSeed(cfg, 4, {
      wrapObserver: (o) => ({
        ...o,
        afterStep: (rt) => {
          o.afterStep!(rt);
          o.afterStep!(rt);
        },
      }),
    });
    expect(once.violation).toBeUndefined();
    expect(twice.trace).toBe(once.trace);
    expect(twice.failoversMs).toEqual(once.failoversMs);
  }, 120_000);
});
