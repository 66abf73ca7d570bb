/**
 * Split-brain defenses in the simulator: seeds of 2 boards + witness and of 3 boards,
 * with STONITH and with leases only, must show no violation, no stale actuation and no
 * time with two active leaders — and the checks must be able to fail: without the
 * activation gate (raw leadership drives the actuator) they catch two active leaders.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed, type SeedResult } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions, replayCommand } from '../../../daemon/sim/options.ts';
import { SimActuator, fenceTopology, percentile } from '../../../daemon/sim/fencing.ts';
import { lastLine, totalsOf } from '../../../daemon/sim/report.ts';

const FAULTS = 'partition,crash,power,loss,clock';

function sweep(seeds: number[], o: { nodes: number; witness?: boolean; stonith: boolean }): Array<SeedResult & { replay: string }> {
  return seeds.map((seed) => {
    const cfg = parseSimOptions({ seed, nodes: o.nodes, witness: o.witness ?? false, stonith: o.stonith, time: '20s', faults: FAULTS });
    return { ...runEngineSeed(cfg, seed), replay: replayCommand(cfg, seed) };
  });
}

function clean(rs: Array<SeedResult & { replay: string }>): void {
  expect(rs.filter((r) => r.violation).map((r) => `${r.replay}: ${r.violation!.invariant}: ${r.violation!.detail}`)).toEqual([]);
  expect(rs.reduce((a, r) => a + r.staleActuations, 0)).toBe(0);
  expect(rs.reduce((a, r) => a + r.dualActiveMs, 0)).toBe(0);
  // non-vacuous: the actuator was driven
  expect(rs.reduce((a, r) => a + r.actuations, 0)).toBeGreaterThan(rs.length * 50);
}

describe('fencing in the simulator', () => {
  it('2 boards + witness with STONITH: no violation, no stale actuation, no dual activity, and boards were fenced', () => {
    const rs = sweep([1, 2, 3, 4, 5, 6], { nodes: 2, witness: true, stonith: true });
    clean(rs);
    expect(rs.reduce((a, r) => a + (r.fences ?? 0), 0)).toBeGreaterThan(0);
  });

  it('2 boards + witness with leases only (--no-stonith): tokens and leases hold, nothing is fenced', () => {
    const rs = sweep([1, 2, 3, 4, 5, 6], { nodes: 2, witness: true, stonith: false });
    clean(rs);
    expect(rs.reduce((a, r) => a + (r.fences ?? 0), 0)).toBe(0);
  });

  it('3 boards with STONITH (all-to-all relays)', () => {
    clean(sweep([7, 8, 9, 10], { nodes: 3, stonith: true }));
  });

  it('the checks can fail: without the activation gate, raw leadership gives two active leaders', () => {
    let caught: SeedResult | undefined;
    for (let seed = 1; seed <= 30 && !caught; seed++) {
      const cfg = parseSimOptions({ seed, nodes: 3, time: '20s', faults: 'partition' });
      const r = runEngineSeed(cfg, seed, { runtime: { fencing: undefined }, skipLin: true });
      if (r.violation) caught = r;
    }
    expect(caught?.violation?.invariant).toBe('dual-active');
  });

  it('the report line carries the fencing numbers', () => {
    const rs = sweep([2], { nodes: 2, witness: true, stonith: true });
    const cfg = parseSimOptions({ seeds: '2..2', nodes: 2, witness: true, faults: FAULTS });
    const line = lastLine(totalsOf(rs, 1), cfg);
    expect(line).toMatch(/^seeds=1 violations=0 stale_actuations=0 dual_active_ms=0 /);
    expect(line).toMatch(/ fences=\d+ fences_failed=\d+ failovers=\d+ failover_p50_ms=-?\d+ failover_p99_ms=-?\d+ /);
  });
});

describe('fencing helpers', () => {
  it('relay topology: all-to-all up to 3 data boards, both ring neighbours beyond', () => {
    expect([...fenceTopology([1, 2])]).toEqual([[1, [2]], [2, [1]]]);
    expect(fenceTopology([1, 2, 3]).get(2)).toEqual([1, 3]);
    expect(fenceTopology([1, 2, 3, 4, 5]).get(1)).toEqual([2, 5]);
    expect(fenceTopology([4]).get(4)).toEqual([]);
  });

  it('actuator: a command with an older token than the newest activation is stale; dual time and gaps are measured', () => {
    const a = new SimActuator();
    expect(a.activated(1, 5, 1000)).toBeNull();
    a.update(1000, 1);
    a.command(1, 5, 1100);
    expect(a.activated(2, 9, 2000)).toBeNull();
    a.update(2000, 2);
    a.command(1, 5, 2100); // node 1 still acts with token 5: stale
    a.update(2500, 0);
    a.update(4500, 1);
    expect(a.stale).toBe(1);
    expect(a.actuations).toBe(2);
    expect(a.dualUs).toBe(500);
    expect(a.gapsUs).toEqual([2000]);
    expect(a.activated(3, 7, 5000)).toMatch(/token 7 issued after 9/);
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([], 99)).toBe(-1);
  });
});
