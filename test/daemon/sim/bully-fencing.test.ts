/**
 * The bully engine's activation gate and STONITH in the simulator (daemon/sim/bully-sim.ts,
 * daemon/runtime/bully-fencing.ts on the engine runtime): an old coordinator cut off by a partition is fenced by
 * the new one, verified off, and only then does the new one act; a returning better
 * board preempts without a power cycle (step-down acknowledgement); a planted bug (no
 * gate) makes the dual-active check fire.
 */
import { describe, expect, it } from 'vitest';
import type { BullySeedHooks, BullySeedResult } from '../../../daemon/sim/bully-sim.ts';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions, type SimConfig } from '../../../daemon/sim/options.ts';
import type { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import type { FenceRecord } from '../../../src/fence/index.ts';
import type { World } from '../../../firmware-sim/world.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import type { NodeId } from '../../../src/types.ts';

/** Bully runs through the one entry of the simulated cluster, with its own hooks and result fields. */
const runBully = (cfg: SimConfig, seed: number, hooks: BullySeedHooks = {}): BullySeedResult => runEngineSeed(cfg, seed, hooks) as BullySeedResult;

interface Seen {
  activations: Array<{ node: NodeId; token: number; atMs: number; by: string }>;
  fences: Array<FenceRecord & { atMs: number; by5Running: boolean }>;
  railOff5AtMs: number | null;
  coordAtPartition: NodeId;
}

/** 5 boards, no random faults; at 8 s board 5 (the coordinator) is cut off from everyone (its broker link too); healed at 14 s. */
function partitionScenario(runtime: Record<string, unknown> = {}): { r: BullySeedResult; seen: Seen } {
  const cfg = parseSimOptions({ seed: 3, nodes: 5, engine: 'bully', time: '25s', faults: '' });
  const seen: Seen = { activations: [], fences: [], railOff5AtMs: null, coordAtPartition: 0 };
  const r = runBully(cfg, 3, {
    runtime,
    setup: ({ world, runtimes, changed }: { world: World; runtimes: Map<NodeId, EngineRuntime>; changed: () => void }) => {
      const watch = () => {
        for (const rt of runtimes.values()) {
          if (rt.state !== 'running' || rt.id === 5 || rt.status().fences.local.length === 0) continue;
          for (const f of rt.status().fences.local) {
            if (f.outcome !== 'pending' && !seen.fences.some((x) => x.id === f.id && x.by === f.by)) seen.fences.push({ ...f, atMs: world.nowMs, by5Running: world.board(5).running });
          }
        }
        for (const rt of runtimes.values()) {
          const last = seen.activations.filter((a) => a.node === rt.id).at(-1);
          if (rt.state === 'running' && rt.active && last?.token !== rt.activeToken) {
            seen.activations.push({ node: rt.id, token: rt.activeToken, atMs: world.nowMs, by: JSON.stringify(rt.status().bully?.clearedBy) });
          }
        }
        if (seen.railOff5AtMs === null && world.nowMs > 8000 && !world.board(5).railLive) seen.railOff5AtMs = world.nowMs;
        world.sched.after(10_000, watch);
      };
      world.sched.after(10_000, watch);
      world.sched.at(8_000_000, () => {
        seen.coordAtPartition = [...runtimes.values()].find((x) => x.state === 'running' && x.isLeader)?.id ?? 0;
        world.partition([[5], [1, 2, 3, 4, BROKER]]);
        changed();
      });
      world.sched.at(14_000_000, () => {
        world.heal();
        changed();
      });
    },
  });
  return { r, seen };
}

describe('bully + STONITH (activation gate)', () => {
  it('the old coordinator, partitioned away, is fenced and verified off before the new one acts; no two active afterwards', () => {
    const { r, seen } = partitionScenario();
    expect(r.violation).toBeUndefined();
    expect(seen.coordAtPartition).toBe(5);
    // n4 (the best survivor) fenced n5 through its relay, verified by power-sense.
    const f = seen.fences.find((x) => x.target === 5 && x.by === 4);
    expect(f?.outcome).toBe('off');
    expect(seen.railOff5AtMs).not.toBeNull();
    // n4 became active only after n5's rail was dead, cleared by the fence.
    const a4 = seen.activations.find((a) => a.node === 4 && a.atMs > 8000);
    expect(a4).toBeDefined();
    expect(a4!.atMs).toBeGreaterThanOrEqual(seen.railOff5AtMs!);
    expect(a4!.by).toContain('"n5":"fenced"');
    // Never two active coordinators: n5 stopped acting (power cut) before n4 started.
    expect(r.dualActiveMs).toBe(0);
    expect(r.staleActuations).toBe(0);
    expect(r.fences).toBeGreaterThanOrEqual(1);
    // n5 came back (power-on after the fence), preempted n4 and activated by n4's
    // step-down acknowledgement, not by a second fence.
    const a5 = seen.activations.filter((a) => a.node === 5 && a.atMs > 14_000).at(-1);
    expect(a5).toBeDefined();
    expect(a5!.token).toBeGreaterThan(a4!.token);
    expect(a5!.by).toContain('"n4":"acknowledged"');
    expect(seen.fences.filter((x) => x.target === 4)).toEqual([]);
  });

  it('planted bug: the gate disabled (no fencing options) — the dual-active check fires', () => {
    const { r } = partitionScenario({ fencing: undefined });
    expect(r.violation?.invariant).toBe('dual-active');
    expect(r.violation?.detail).toMatch(/n4 .* active while n5 still acts/);
  });

  it('with partitions: STONITH keeps stale actuations at 0 and shortens the split brain; --no-stonith shows it', () => {
    const base = { seeds: '1..8', nodes: 5, engine: 'bully', time: '30s', faults: 'partition,crash,power,loss' };
    const plain = parseSimOptions({ ...base, stonith: false });
    const fenced = parseSimOptions(base);
    const a = plain.seeds.map((s) => runBully(plain, s));
    const b = fenced.seeds.map((s) => runBully(fenced, s));
    const bad = [...a, ...b].filter((x) => x.violation).map((x) => `seed ${x.seed}: ${x.violation!.invariant}: ${x.violation!.detail}`);
    expect(bad).toEqual([]);
    const sum = (rs: BullySeedResult[], k: 'dualActiveMs' | 'staleActuations' | 'refusedActuations' | 'fences' | 'activations') => rs.reduce((x, r) => x + (r[k] ?? 0), 0);
    expect(sum(a, 'dualActiveMs')).toBeGreaterThan(0);
    expect(sum(a, 'staleActuations')).toBeGreaterThan(0);
    expect(sum(a, 'fences')).toBe(0);
    expect(sum(b, 'staleActuations')).toBe(0);
    expect(sum(b, 'fences')).toBeGreaterThan(0);
    expect(sum(b, 'activations')).toBeGreaterThan(b.length);
    // Not zero: two sides of a partition never hear of each other (see docs/engines.md).
    expect(sum(b, 'dualActiveMs')).toBeGreaterThan(0);
    expect(sum(b, 'dualActiveMs')).toBeLessThan(sum(a, 'dualActiveMs'));
  });
});
