/**
 * Raft on the one simulated cluster (daemon/sim/engine-cluster.ts) and the one runtime
 * (daemon/runtime/engine-node.ts, RaftEngine): a small sweep with every fault kind and
 * a witness, replay, and planted bugs caught by Raft's own checks (invariants.ts,
 * plugged into the cluster's per-engine checks) — a disk that lies about fsync with
 * power cuts is caught by durable-commit, and with that switched off by the Raft
 * safety invariants themselves.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';
import { lyingStorage } from './helpers.ts';

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

  it('a disk that lies about fsync, with power cuts: Raft\'s durable-commit check catches it, and without it the other checks do', () => {
    const cfg = parseSimOptions({ seeds: '1..6', engine: 'raft', nodes: 3, time: '10s', faults: 'power' });
    const caught = cfg.seeds.map((s) => runEngineSeed(cfg, s, { wrapStorage: lyingStorage, skipLin: true }).violation?.invariant);
    expect(caught.filter((v) => v === 'durable-commit').length, caught.join(',')).toBeGreaterThanOrEqual(4);
    const blind = cfg.seeds.map((s) => runEngineSeed(cfg, s, { wrapStorage: lyingStorage, disableChecks: ['durable-commit', 'commit-monotonic'] }).violation?.invariant);
    expect(blind.filter((v) => v !== undefined).length, blind.join(',')).toBeGreaterThanOrEqual(1);
    for (const v of blind) if (v !== undefined) expect(v).not.toMatch(/^(durable-commit|commit-monotonic)$/);
  }, 300_000);
});
