/**
 * Leader-only job claims in whole simulated clusters (daemon/sim/jobs.ts): the real
 * SlotCoordinator over the real EngineBackend on every boot of every data node, one
 * job every virtual second, faults from the seed as `quorumd sim` draws them (all
 * kinds), 3 nodes, 5 nodes and 3 + witness, 30 seeds each. Checked per seed
 * (checkJobs): at most one run per slot (ground truth), runs in slot order with
 * non-decreasing fencing tokens, every run decided while active with its token, every
 * run backed by a granted job.claim in the log, every slot of the last seconds run
 * after healing, no more slots missing than failovers touch, one job record on every
 * live node naming the last run. Then: the same seed gives the same runs and trace,
 * and planted bugs are caught.
 */
import { describe, expect, it } from 'vitest';
import { SlotCoordinator, type CoordinatorLog, type Decision, type JobsHost, type Leadership } from '../../../daemon/jobs/coordinator.ts';
import type { EngineBackend } from '../../../daemon/http/engine-backend.ts';
import { checkJobs, missingBound, runJobsSeed, type JobsSeedResult, type JobsSimOptions } from '../../../daemon/sim/jobs.ts';
import { parseSimOptions, replayCommand, type SimConfig } from '../../../daemon/sim/options.ts';

const ALL = 'partition,crash,power,loss,reorder,clock,disk';
const SEEDS = 30;
const CONFIGS: Array<{ name: string; nodes: number; witness: boolean }> = [
  { name: '3 nodes', nodes: 3, witness: false },
  { name: '5 nodes', nodes: 5, witness: false },
  { name: '3 nodes + witness', nodes: 3, witness: true },
];

const cfgOf = (c: { nodes: number; witness: boolean }, seed: number): SimConfig => parseSimOptions({ seed, nodes: c.nodes, witness: c.witness, time: '15s', faults: ALL });

/** The sweep, computed once and shared by the tests below (vitest runs a file's tests in order). */
const sweeps = new Map<string, JobsSeedResult[]>();
function sweep(c: (typeof CONFIGS)[number]): JobsSeedResult[] {
  let rs = sweeps.get(c.name);
  if (!rs) {
    rs = [];
    for (let seed = 1; seed <= SEEDS; seed++) rs.push(runJobsSeed(cfgOf(c, seed), seed));
    sweeps.set(c.name, rs);
  }
  return rs;
}

/** Wraps the real decision: `alter` may turn a "no" into a "yes" with the leadership seen before the claim. */
function variant(alter: (d: Decision) => boolean): JobsSimOptions['coordinator'] {
  return (host: JobsHost, log: CoordinatorLog) => {
    const real = new SlotCoordinator(host, log);
    return {
      decide(key: string, cb: (d: Decision) => void): void {
        const before: Leadership | undefined = host.activeLeadership();
        real.decide(key, (d) => cb(!d.run && before && alter(d) ? { run: true, lead: before } : d));
      },
    };
  };
}

describe('job claims in the simulator (30 seeds per configuration, all fault kinds)', () => {
  for (const c of CONFIGS) {
    it(`${c.name}: at most once, in order, only while active, granted in the log, live after healing`, () => {
      const rs = sweep(c);
      const bad = rs.flatMap((r) => checkJobs(r).map((v) => `${replayCommand(cfgOf(c, r.seed), r.seed)}: ${v}`));
      expect(bad).toEqual([]);
      const sum = (f: (r: JobsSeedResult) => number) => rs.reduce((a, r) => a + f(r), 0);
      const runs = sum((r) => r.runs.length);
      const missing = sum((r) => r.missing.length);
      const dup = runs - sum((r) => new Set(r.runs.map((x) => x.slot)).size);
      const noActiveMs = sum((r) => r.noActiveMs);
      console.log(
        `jobs-sim ${c.name}: seeds=${rs.length} runs=${runs} duplicates=${dup} missing=${missing} bound=${sum(missingBound)} ` +
          `missing_without_active_leader=${sum((r) => r.noActiveSlots)} no_active_ms=${noActiveMs} failovers=${sum((r) => r.gaps)} ` +
          `faults=${sum((r) => r.sim.faults)} decisions=${JSON.stringify(rs.reduce<Record<string, number>>((a, r) => {
            for (const [k, v] of Object.entries(r.decisions)) a[k] = (a[k] ?? 0) + v;
            return a;
          }, {}))}`,
      );
      // The sweep exercised something: faults, failovers with slots lost in them, many runs.
      expect(dup).toBe(0);
      expect(sum((r) => r.sim.faults)).toBeGreaterThan(SEEDS * 2);
      expect(sum((r) => r.gaps)).toBeGreaterThan(SEEDS / 2);
      expect(missing).toBeGreaterThan(0);
      expect(runs).toBeGreaterThan(SEEDS * 12);
      // Every seed ran after healing (liveness window) and every seed lost no more than its failovers' slots.
      expect(rs.every((r) => r.missing.length <= missingBound(r))).toBe(true);
    }, 120_000);
  }

  it('the same seed gives the same runs, grants and trace', () => {
    for (const c of CONFIGS) {
      const seed = 7;
      const first = sweep(c).find((r) => r.seed === seed)!;
      const again = runJobsSeed(cfgOf(c, seed), seed);
      expect(again.trace).toBe(first.trace);
      expect(again.sim.trace).toBe(first.sim.trace);
      expect(again.runs).toEqual(first.runs);
      expect(again.grants).toEqual(first.grants);
      expect(again.runs.length).toBeGreaterThan(10);
    }
  }, 60_000);
});

describe('planted bugs are caught', () => {
  it('a host whose claim answers 200 without going through the log', () => {
    const lying = (b: EngineBackend): JobsHost => ({
      activeLeadership: () => b.activeLeadership(),
      claim: (_job, _slot, _lead, cb) => cb({ status: 200, index: 0 }),
      report: (r, cb) => b.report(r, cb),
      record: (job) => b.record(job),
      nodeName: (id) => b.nodeName(id),
    });
    for (const seed of [1, 2, 3]) {
      const r = runJobsSeed(cfgOf(CONFIGS[0]!, seed), seed, { host: lying });
      const v = checkJobs(r);
      expect(v.some((x) => x.startsWith('granted:'))).toBe(true);
      expect(v.some((x) => x.startsWith('record:'))).toBe(true);
    }
  }, 30_000);

  it('a coordinator that runs on a 504 (outcome unknown)', () => {
    // The seeds of the sweep that saw a 504 decision; running them anyway breaks the contract in some.
    const seen = CONFIGS.flatMap((c) => sweep(c).filter((r) => (r.decisions.unknown ?? 0) > 0).map((r) => ({ c, seed: r.seed })));
    expect(seen.length).toBeGreaterThan(0);
    const caught = seen.filter(({ c, seed }) => checkJobs(runJobsSeed(cfgOf(c, seed), seed, { coordinator: variant((d) => !d.run && d.reason === 'unknown') })).length > 0);
    expect(caught.length).toBeGreaterThan(0);
  }, 60_000);

  it('a coordinator that does not check, when the grant arrives, that it is still active with the same token', () => {
    const seen = CONFIGS.flatMap((c) => sweep(c).filter((r) => (r.decisions['lost-activity'] ?? 0) > 0).map((r) => ({ c, seed: r.seed })));
    expect(seen.length).toBeGreaterThan(0);
    for (const { c, seed } of seen) {
      const v = checkJobs(runJobsSeed(cfgOf(c, seed), seed, { coordinator: variant((d) => !d.run && d.reason === 'lost-activity') }));
      expect(v.some((x) => x.startsWith('active:'))).toBe(true);
    }
  }, 60_000);

  it('a node that runs every slot it is told about while merely elected (no claim, no activation gate)', () => {
    const eager: JobsSimOptions['coordinator'] = (host) => ({
      decide(_key, cb) {
        const b = host as EngineBackend & { rt?: { isLeader: boolean; engine?: { currentTerm: number } } };
        const rt = b.rt!;
        if (!rt.isLeader) return cb({ run: false, reason: 'not-active', detail: 'follower' });
        cb({ run: true, lead: { term: rt.engine!.currentTerm, token: 1 } });
      },
    });
    const caught = [1, 2, 3, 4, 5].filter((seed) => checkJobs(runJobsSeed(cfgOf(CONFIGS[0]!, seed), seed, { coordinator: eager })).length > 0);
    expect(caught.length).toBe(5);
  }, 30_000);
});
