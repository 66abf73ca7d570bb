/**
 * `quorumd sim --engine bully`: a seed sweep with its invariants, replay determinism, and planted bugs that
 * the checks must catch (so that a green sweep means something).
 */
import { describe, expect, it } from 'vitest';
import type { BullySeedHooks, BullySeedResult } from '../../../daemon/sim/bully-sim.ts';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions, type SimConfig } from '../../../daemon/sim/options.ts';
import { lyingStorage } from './helpers.ts';

/** Bully runs through the one entry of the simulated cluster, with its own hooks and result fields. */
const runBully = (cfg: SimConfig, seed: number, hooks: BullySeedHooks = {}): BullySeedResult => runEngineSeed(cfg, seed, hooks) as BullySeedResult;

const brief = (r: BullySeedResult) => `seed ${r.seed}: ${r.violation ? `${r.violation.invariant}: ${r.violation.detail}` : 'ok'}`;

describe('quorumd sim --engine bully', () => {
  it('20 seeds, 5 boards, crash/power/loss: no violation, converges after healing, quiet-period checks ran', () => {
    const cfg = parseSimOptions({ seeds: '1..20', nodes: 5, engine: 'bully', time: '30s', faults: 'crash,power,loss' });
    const rs = cfg.seeds.map((s) => runBully(cfg, s));
    expect(rs.filter((r) => r.violation).map(brief)).toEqual([]);
    for (const r of rs) {
      expect(r.probeMs).toBeGreaterThanOrEqual(0);
      expect(r.probeMs).toBeLessThanOrEqual(5000);
    }
    expect(rs.reduce((a, r) => a + r.settledChecks, 0)).toBeGreaterThan(1000);
    expect(rs.reduce((a, r) => a + r.leaders, 0)).toBeGreaterThan(rs.length);
  });

  // With/without STONITH under partitions: test/daemon/sim/bully-fencing.test.ts.

  it('a witness (priority 0) never coordinates; 3 boards + witness converge', () => {
    const cfg = parseSimOptions({ seeds: '1..5', nodes: 3, witness: true, engine: 'bully', time: '20s', faults: 'partition,crash,power' });
    const rs = cfg.seeds.map((s) => runBully(cfg, s, {
      setup: ({ world, runtimes }) => {
        const check = () => {
          if (runtimes.get(4)?.isLeader) throw new Error('the witness became coordinator');
          world.sched.after(50_000, check);
        };
        world.sched.after(50_000, check);
      },
    }));
    expect(rs.filter((r) => r.violation).map(brief)).toEqual([]);
  });

  it('replays: the same seed gives the same trace, another seed differs', () => {
    const cfg = parseSimOptions({ seed: 11, nodes: 5, engine: 'bully', time: '15s', faults: 'partition,crash,power,loss,reorder,clock,disk' });
    const x = runBully(cfg, 11);
    const y = runBully(cfg, 11);
    const z = runBully(cfg, 12);
    expect(x.trace).toMatch(/^[0-9a-f]{64}$/);
    expect(y.trace).toBe(x.trace);
    expect(y.dualActiveMs).toBe(x.dualActiveMs);
    expect(z.trace).not.toBe(x.trace);
  });

  it('every fault kind, 3 and 5 boards: no violation', () => {
    for (const nodes of [3, 5]) {
      const cfg = parseSimOptions({ seeds: '21..26', nodes, engine: 'bully', time: '20s', faults: 'partition,crash,power,loss,reorder,clock,disk,stall' });
      const rs = cfg.seeds.map((s) => runBully(cfg, s));
      expect(rs.filter((r) => r.violation).map(brief)).toEqual([]);
    }
  });
});

describe('planted bugs the bully checks catch', () => {
  it('a disk that lies about fsync: a board reboots below the epoch it had made "durable"', () => {
    const cfg = parseSimOptions({ seeds: '1..10', nodes: 5, engine: 'bully', time: '30s', faults: 'power' });
    const rs = cfg.seeds.map((s) => runBully(cfg, s, { wrapStorage: (st) => lyingStorage(st) }));
    const caught = rs.filter((r) => r.violation).map((r) => r.violation!.invariant);
    expect(caught.length).toBeGreaterThan(0);
    expect(caught.every((i) => i === 'epoch-durable' || i === 'token-unique' || i === 'token-grows')).toBe(true);
  });

  it('with epoch-durable off, the same lying disk is still caught (a board that forgot its epoch disturbs the cluster)', () => {
    const cfg = parseSimOptions({ seeds: '1..10', nodes: 5, engine: 'bully', time: '30s', faults: 'power' });
    const rs = cfg.seeds.map((s) => runBully(cfg, s, { wrapStorage: (st) => lyingStorage(st), disableChecks: ['epoch-durable'] }));
    const caught = rs.filter((r) => r.violation).map((r) => r.violation!.invariant);
    expect(caught.length).toBeGreaterThan(0);
    expect(caught.every((i) => ['token-unique', 'token-grows', 'one-coordinator', 'convergence'].includes(i))).toBe(true);
  });

  it('nopreempt engines keep a lower coordinator after a better board returns: "one coordinator, the highest" fails', () => {
    const cfg = parseSimOptions({ seeds: '1..6', nodes: 5, engine: 'bully', time: '30s', faults: 'crash,power' });
    const rs = cfg.seeds.map((s) => runBully(cfg, s, { bully: { preempt: false } }));
    const caught = rs.filter((r) => r.violation).map((r) => r.violation!.invariant);
    expect(caught.length).toBeGreaterThan(0);
    expect(caught.every((i) => i === 'one-coordinator' || i === 'convergence')).toBe(true);
  });
});
