/**
 * One randomized PBFT run per seed: a chaos phase (Byzantine replicas, crashes with
 * torn persists, partitions, loss, duplication, reordering, client requests at every
 * replica), then a stable phase (network healed and synchronous, every replica up, at
 * most f Byzantine) in which every request of an honest origin must execute at every
 * honest replica. Invariants are checked after every delivery and tick. A run is a pure
 * function of (seed, n, options): a failing seed replays exactly.
 */
import { Rng } from '../../../src/rng.ts';
import type { PbftOptions } from '../../../src/pbft/options.ts';
import type { NodeId } from '../../../src/types.ts';
import { BYZ_KINDS, Cluster, type ByzKind } from './harness.ts';

export interface SweepOptions {
  n: number;
  /** Virtual ticks of chaos (10 ms each). */
  chaosTicks?: number;
  /** Bound for the stable phase, ticks. */
  liveTicks?: number;
  faults?: ReadonlySet<'byzantine' | 'crash' | 'partition' | 'loss' | 'reorder'>;
  honestOptions?: Partial<PbftOptions>;
  auth?: 'simulated' | 'ed25519';
  wire?: boolean;
  clientQuorum?: number;
  /** Called after every tick (debugging a seed). */
  onTick?: (c: Cluster) => void;
}

/** Faster timers than the board defaults, so a run covers many view changes and checkpoints. */
export const SWEEP_OPTIONS: Partial<PbftOptions> = {
  viewChangeTimeoutMs: 300,
  maxViewChangeTimeoutMs: 2400,
  retransmitMs: 50,
  statusMs: 200,
  checkpointInterval: 8,
};

export interface SweepResult {
  seed: number;
  byzantine: Record<NodeId, ByzKind[]>;
  submitted: number;
  accepted: number;
  executed: number;
  viewChanges: number;
  stateTransfers: number;
  liveAfter: number;
  deliveries: number;
  trace: string;
}

export const ALL_FAULTS = new Set(['byzantine', 'crash', 'partition', 'loss', 'reorder'] as const);

export function runSeed(seed: number, o: SweepOptions): SweepResult {
  const rng = new Rng(`pbft-sweep-${seed}-${o.n}`);
  const faults = o.faults ?? ALL_FAULTS;
  const f = Math.floor((o.n - 1) / 3);
  const members = Array.from({ length: o.n }, (_, i) => i + 1);
  const byzantine: Record<NodeId, ByzKind[]> = {};
  if (faults.has('byzantine')) {
    const count = rng.int(0, f);
    const pool = [...members];
    for (let i = 0; i < count; i++) {
      const id = pool.splice(rng.int(0, pool.length - 1), 1)[0]!;
      const kinds = BYZ_KINDS.filter(() => rng.chance(0.35));
      byzantine[id] = kinds.length > 0 ? kinds : [rng.pick(BYZ_KINDS)];
    }
  }
  const c = new Cluster({
    seed, n: o.n, options: SWEEP_OPTIONS, honestOptions: o.honestOptions, byzantine, auth: o.auth, wire: o.wire, clientQuorum: o.clientQuorum,
    net: {
      drop: faults.has('loss') ? rng.pick([0, 0.05, 0.15]) : 0,
      dup: faults.has('reorder') ? rng.pick([0, 0.05]) : 0,
      minDelay: 0,
      maxDelay: faults.has('reorder') ? rng.int(1, 5) : 1,
    },
  });
  c.onTick = o.onTick;
  const chaos = o.chaosTicks ?? 800;
  let submitted = 0;
  let op = 0;
  for (let t = 0; t < chaos; t++) {
    if (rng.chance(0.15)) {
      const origin = rng.pick(members);
      if (c.submit(origin, `set k${rng.int(0, 9)} v${op++}`)) submitted++;
    }
    if (faults.has('crash') && rng.chance(0.006)) {
      const id = rng.pick(members.filter((x) => !byzantine[x]));
      c.crash(id, { torn: rng.chance(0.5) });
    }
    if (faults.has('crash') && rng.chance(0.02)) {
      const down = members.filter((x) => !c.replica(x).up);
      if (down.length > 0) c.restart(rng.pick(down));
    }
    if (faults.has('partition') && rng.chance(0.004)) {
      const cut = members.filter(() => rng.chance(0.4));
      if (cut.length > 0 && cut.length < o.n) c.partition(cut, members.filter((x) => !cut.includes(x)));
    }
    if (faults.has('partition') && rng.chance(0.01)) c.heal();
    c.tick();
  }
  // Stable phase: some requests during it too, then quiet.
  for (let i = 0; i < 3; i++) {
    const origin = rng.pick(members.filter((x) => !byzantine[x]));
    c.restart(origin);
    if (c.submit(origin, `set late${i} v${op++}`)) submitted++;
  }
  const liveAfter = c.stabilize(o.liveTicks ?? 6000);
  let executed = 0;
  let viewChanges = 0;
  let stateTransfers = 0;
  for (const r of c.honest()) {
    executed = Math.max(executed, r.e.executedIndex);
    const st = r.e.status();
    viewChanges = Math.max(viewChanges, st.viewChanges);
    stateTransfers += st.stateTransfers;
  }
  return {
    seed, byzantine, submitted, accepted: c.inv.accepted, executed, viewChanges, stateTransfers, liveAfter, deliveries: c.deliveries,
    trace: c.trace.toString(16).padStart(8, '0'),
  };
}
