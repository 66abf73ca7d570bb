/**
 * `quorumd sim --engine paxos|zab`: the simulated cluster for contract engines
 * (daemon/sim/engine-cluster.ts). A small sweep with every fault kind (the full one is
 * `quorumd sim --engine paxos --seeds 1..300 --nodes 5 --faults ...`, docs/engines.md),
 * replay (same seed → same trace hash), and planted bugs that the checks must catch:
 * the shared ones and, with those switched off, the engine's own. Fencing is on in
 * every run (activation gate, own lease, STONITH relays unless --no-stonith, as for
 * Raft); a run with the runtime's fencing switched off shows that the split-brain
 * checks (dual-active, stale-actuation) can fail.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';
import { runSimCommand } from '../../../daemon/sim.ts';

const ALL = 'partition,crash,power,loss,reorder,clock,disk';
/** Faults that change leaders often (the planted Paxos bug needs a leader change mid-slot). */
const LEADER_FAULTS = 'crash,power,partition';

describe('quorumd sim --engine paxos|zab', () => {
  for (const engine of ['paxos', 'zab'] as const) {
    it(`${engine}: a small sweep with every fault kind has no violation and linearizable histories`, async () => {
      const lines: string[] = [];
      const code = await runSimCommand({ seeds: '1..3', engine, nodes: 5, time: '30s', faults: ALL }, (l) => lines.push(l));
      expect(code, lines.join('\n')).toBe(0);
      expect(lines.at(-1)).toMatch(/^seeds=3 violations=0 /);
      for (const l of lines.slice(0, 3)) {
        expect(l).toMatch(/ ok trace=[0-9a-f]{64} /);
        expect(l).toMatch(/ lin=(ok|unknown) /);
      }
      // Faults happened and the cluster still committed.
      expect(Number(/ faults=(\d+)/.exec(lines.at(-1)!)![1])).toBeGreaterThan(5);
      // With fencing on: no command from a stale leadership, never two active leaders.
      expect(lines.at(-1)).toMatch(/ stale_actuations=0 dual_active_ms=0 /);
    }, 120_000);

    it(`${engine}: without the runtime's fencing two leaders are active at once (the check can fail); with it the same seed is clean`, () => {
      // Seeds found by running seeds 1..40 with fencing off (the first that failed).
      const seed = engine === 'paxos' ? 3 : 5;
      const cfg = parseSimOptions({ seed, engine, nodes: 5, time: '30s', faults: ALL });
      const off = runEngineSeed(cfg, seed, { runtime: { fencing: undefined }, skipLin: true });
      expect(off.violation?.invariant).toBe('dual-active');
      const on = runEngineSeed(cfg, seed, { skipLin: true });
      expect(on.violation, JSON.stringify(on.violation)).toBeUndefined();
      expect(on.staleActuations).toBe(0);
      expect(on.dualActiveMs).toBe(0);
      expect(on.actuations).toBeGreaterThan(0);
    }, 120_000);

    it(`${engine}: the same seed gives the same trace hash; another seed differs`, () => {
      const cfg = parseSimOptions({ seed: 5, engine, nodes: 3, time: '8s', faults: ALL });
      const a = runEngineSeed(cfg, 5);
      const b = runEngineSeed(cfg, 5);
      const c = runEngineSeed(cfg, 6);
      expect(a.violation).toBeUndefined();
      expect(b.trace).toBe(a.trace);
      expect(b.commits).toBe(a.commits);
      expect(c.trace).not.toBe(a.trace);
    }, 60_000);
  }

  it('paxos: a leader that skips re-proposing accepted values is caught, by the shared checks and by the Paxos invariants alone', () => {
    // The bug shows only when a leader change finds a slot accepted by some but not yet
    // chosen (about one seed in fifteen with leader crashes, power cuts and partitions);
    // which seed brings that depends on the whole simulated run, so look for the first
    // seed of a bounded few where the shared checks catch it, then hold that seed. The
    // search runs without the Paxos invariants: a run stops at its first violation, and
    // on some schedules they see the bug first — each side is checked on its own.
    const bug = { runtime: { engineOptions: { plantedBug: 'skip-reproposal' } } };
    const PAXOS_OWN = ['applied-prefix', 'ballot-owner', 'learned-chosen', 'one-value', 'one-value-per-ballot', 'promise-kept', 'proposed', 'token-grows', 'votes-kept']; // src/paxos/invariants.ts
    const tried: string[] = [];
    let seed = 0;
    for (let s = 1; s <= 40 && seed === 0; s++) {
      const cfg = parseSimOptions({ seed: s, engine: 'paxos', nodes: 5, time: '60s', faults: LEADER_FAULTS });
      const v = runEngineSeed(cfg, s, { ...bug, disableChecks: PAXOS_OWN }).violation;
      tried.push(`${s}:${v?.invariant ?? 'none'}`);
      if (v !== undefined) {
        expect(v.invariant, tried.join(' ')).toBe('state-machine-safety');
        seed = s;
      }
    }
    expect(seed, `no seed of 1..40 caught the planted bug: ${tried.join(' ')}`).toBeGreaterThan(0);
    const cfg = parseSimOptions({ seed, engine: 'paxos', nodes: 5, time: '60s', faults: LEADER_FAULTS });
    const own = runEngineSeed(cfg, seed, { ...bug, disableChecks: ['state-machine-safety'] });
    expect(own.violation?.invariant).toMatch(/^(applied-prefix|learned-chosen|one-value)$/);
    // And the same seed without the bug is clean.
    expect(runEngineSeed(cfg, seed).violation).toBeUndefined();
  }, 300_000);

  it('zab: a leader that broadcasts before a quorum synchronized, and a follower that ACKs before fsync, are caught', () => {
    const cfg = parseSimOptions({ seed: 1, engine: 'zab', nodes: 5, time: '10s', faults: ALL });
    const early = runEngineSeed(cfg, 1, { runtime: { engineOptions: { testingBroadcastBeforeQuorumSync: true } } });
    expect(early.violation?.invariant).toBe('zab-invariant');
    expect(early.violation?.detail).toMatch(/synchronized durably, fewer than a quorum/);
    const ack = runEngineSeed(cfg, 1, { runtime: { engineOptions: { testingAckBeforeDurable: true } } });
    expect(ack.violation?.detail).toMatch(/acknowledged index \d+ of epoch \d+ while its durable history ends at/);
    expect(runEngineSeed(cfg, 1).violation).toBeUndefined();
  }, 60_000);

  it('zab: a prospective leader that goes back to election before its epoch-start entry is durable is not a violation (seed 289)', () => {
    // The 300-seed sweep with fencing on found it: the start entry is checked when its
    // Ready is durable, by then the node was 'looking' again; it is still its own entry.
    const cfg = parseSimOptions({ seed: 289, engine: 'zab', nodes: 5, time: '60s', faults: ALL });
    const r = runEngineSeed(cfg, 289, { skipLin: true });
    expect(r.violation, JSON.stringify(r.violation)).toBeUndefined();
  }, 60_000);

  it('refuses what is not implemented for these engines, naming it', () => {
    expect(() => parseSimOptions({ seed: 1, engine: 'paxos', observers: 1 })).toThrow(/--observers: only with --engine zab/);
    expect(() => parseSimOptions({ seed: 1, nodes: 4, engine: 'pbft', witness: true })).toThrow(/--witness: not for engine pbft/);
    // The timeline (--html, --html-dir) records these engines too: timeline-engines.test.ts.
  });
});
