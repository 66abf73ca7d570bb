/**
 * One seed of `quorumd sim --engine bully`: the same World, link model, fault plan and
 * timeline as the Raft run (cluster.ts), a BullyRuntime (daemon/runtime/bully-node.ts)
 * on every board at every boot, the bully invariants (bully-invariants.ts) after every
 * step, a simulated actuator, and at the end the convergence check.
 *
 * Members: boards 1..N with the default priorities (list position: board N is the
 * preferred coordinator); the witness (--witness) has priority 0 (never coordinates).
 *
 * Convergence ("probe_ms" in the output line): after every fault healed and every board
 * is up again, exactly one coordinator — the highest-priority live board — followed by
 * every board, within SETTLE_BOUND_MS; it must then hold for HOLD_MS. During the run the
 * same check runs per connected component whenever the world was quiet for SETTLE_MS.
 *
 * The actuator (split-brain measures, DESIGN §6): every node that believes it is
 * coordinator sends a command every ACTUATE_EVERY_MS carrying its fencing token, and one
 * at the instant it becomes coordinator (its first act). The actuator is reachable from
 * every board without delay (a physical resource on its own wiring) and knows the ground
 * truth: the newest token of any coordinatorship begun so far.
 *   - `--no-stonith`: a plain actuator; it carries out every command. stale_actuations
 *     counts those whose token is below the newest (the split brain bully allows).
 *   - default (fencing): a FencedResource (src/fence) that refuses tokens below the
 *     newest it has seen; only carried-out commands can be stale. STONITH relays are
 *     the fencing module's (activation gate, fencer), not wired here yet: see
 *     docs/engines.md for what that means for dual_active_ms.
 * dual_active_ms: virtual time with ≥ 2 live coordinators (no activation gate for bully
 * yet, so "active" = coordinator).
 */
import { createHash } from 'node:crypto';
import { World } from '../../firmware-sim/world.ts';
import { BROKER } from '../../firmware-sim/mqtt.ts';
import type { Board } from '../../firmware-sim/board.ts';
import type { PlannedFault } from '../../firmware-sim/faults.ts';
import type { Storage } from '../../hal/interfaces.ts';
import { FencedResource } from '../../src/fence/index.ts';
import type { BullyMember, BullyOptions } from '../../src/bully/index.ts';
import type { NodeId } from '../../src/types.ts';
import { BullyRuntime, BullyStateCorruptError, type BullyRuntimeOptions } from '../runtime/bully-node.ts';
import { formatLine } from '../runtime/index.ts';
import { BullyInvariantChecker, settledProblem } from './bully-invariants.ts';
import { ACTUATE_EVERY_MS, BOOT_WAIT_MS, FAULTS_FROM_MS, type SeedResult } from './cluster.ts';
import { SimViolation } from './invariants.ts';
import type { SimConfig } from './options.ts';

/** Quiet time after the last change before the per-component check applies (ms): reconnect (1 s) + failure timeout + election, with margin. */
export const SETTLE_MS = 3000;
/** Longest wait for convergence after everything healed and booted (ms). */
export const SETTLE_BOUND_MS = 5000;
/** How long the converged state must then hold (ms). */
export const HOLD_MS = 2000;
/** Period of the quiet-period check (ms). */
const CHECK_EVERY_MS = 100;

export interface BullySeedResult extends SeedResult {
  engine: 'bully';
  /** Commands the fencing actuator refused (stale tokens kept out). 0 with --no-stonith. */
  refusedActuations: number;
  /** Quiet-period component checks made. */
  settledChecks: number;
}

export interface BullySeedHooks {
  wrapStorage?: (s: Storage, node: NodeId) => Storage;
  runtime?: Partial<BullyRuntimeOptions>;
  bully?: Partial<BullyOptions>;
  /** Invariants to skip (planted-bug tests show the others still catch the bug). */
  disableChecks?: string[];
  setup?: (ctx: { world: World; runtimes: Map<NodeId, BullyRuntime>; checker: BullyInvariantChecker }) => void;
}

export function bullyClusterKey(seed: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`quorumd-sim-key:${seed}`).digest());
}

export function runBullySeed(cfg: SimConfig, seed: number, hooks: BullySeedHooks = {}): BullySeedResult {
  const wall0 = performance.now();
  const world = new World({ seed, traceKeepLast: 40 });
  const dataIds: NodeId[] = [];
  for (let i = 1; i <= cfg.nodes; i++) dataIds.push(i);
  const witnessIds: NodeId[] = cfg.witness ? [cfg.nodes + 1] : [];
  const allIds = [...dataIds, ...witnessIds];
  for (const id of allIds) world.addBoard(id);
  const members: BullyMember[] = [...dataIds.map((id, i) => ({ id, priority: i + 1 })), ...witnessIds.map((id) => ({ id, priority: 0 }))];
  const keyring = { current: bullyClusterKey(seed) };
  const disabled = new Set(hooks.disableChecks ?? []);
  let violation: SimViolation | undefined;

  const runtimes = new Map<NodeId, BullyRuntime>();
  const incarnation = new Map<BullyRuntime, number>();
  const isLive = (rt: BullyRuntime) => {
    const b = world.board(rt.id);
    return rt.state === 'running' && b.hal !== null && b.incarnation === incarnation.get(rt);
  };
  const live = () => [...runtimes.values()].filter(isLive);

  // ---- actuator ---------------------------------------------------------------
  const fenced = cfg.stonith ? new FencedResource({ name: 'sim-actuator' }) : undefined;
  let actuations = 0;
  let stale = 0;
  let refused = 0;
  const actuate = (token: number) => {
    if (fenced && !fenced.admit(token).ok) {
      refused++;
      return;
    }
    actuations++;
    if (token < checker.newestToken) stale++;
  };
  let dualUs = 0;
  let lastUs = 0;
  let coordsNow = 0;
  let everCoord = false;
  let gapFromUs = -1;
  const gapsUs: number[] = [];
  const updateDual = () => {
    if (coordsNow >= 2) dualUs += world.nowUs - lastUs;
    lastUs = world.nowUs;
    coordsNow = live().filter((r) => r.isLeader).length;
    // Failover as the outside world sees it: time without any coordinator after there was one.
    if (coordsNow > 0) {
      if (gapFromUs >= 0) gapsUs.push(world.nowUs - gapFromUs);
      gapFromUs = -1;
      everCoord = true;
    } else if (everCoord && gapFromUs < 0) gapFromUs = world.nowUs;
  };

  let lastChangeMs = 0;
  const changed = () => {
    lastChangeMs = world.nowMs;
  };
  const checker = new BullyInvariantChecker(
    () => world.nowMs,
    (v) => {
      violation ??= v;
    },
    (rt, token) => {
      // A new coordinator acts at once: its first command carries the new token.
      if (isLive(rt)) actuate(token);
    },
  );
  for (const d of disabled) checker.skip.add(d);

  world.onBoot((hal, board: Board) => {
    const storage = hooks.wrapStorage ? hooks.wrapStorage(hal.storage, hal.node) : hal.storage;
    const rt = new BullyRuntime({
      id: hal.node,
      members,
      cluster: 1,
      keyring,
      clock: hal.clock,
      storage,
      links: hal.links,
      rng: world.rng.fork(`bully:${hal.node}:${hal.incarnation}`),
      ...(hooks.bully ? { bully: hooks.bully } : {}),
      logger: (level, msg, fields) => {
        if (level !== 'debug') world.ctx.log(`n${hal.node} ${formatLine(level, msg, fields)}`);
      },
      observer: {
        booted: (r) => {
          changed();
          checker.booted(r);
        },
        afterStep: (r) => {
          checker.afterStep(r);
          updateDual();
        },
        persisted: (r, rd) => checker.persisted(r, rd),
        engineError: (r, err) => checker.engineError(r, err),
      },
      onFatal: (err) => {
        if (err instanceof BullyStateCorruptError) checker.fail('storage-corrupt', `node ${hal.node} refuses to start: ${err.message}`);
        changed();
        board.crashProcess();
      },
      ...hooks.runtime,
    });
    runtimes.set(hal.node, rt);
    incarnation.set(rt, hal.incarnation);
    rt.start();
  });

  // ---- faults (same plan as the Raft run) -----------------------------------
  const T = cfg.timeMs;
  const maxDur = Math.min(5000, Math.max(500, Math.round(T * 0.15)));
  const faultEnd = Math.round(T * 0.7);
  const healedBy = faultEnd + maxDur;
  const plan: PlannedFault[] = world.faults.schedule({
    kinds: cfg.faults,
    startMs: Math.min(FAULTS_FROM_MS, Math.round(T * 0.3)),
    endMs: faultEnd,
    meanGapMs: Math.min(5000, Math.max(300, Math.round(T / 12))),
    minDurationMs: Math.min(500, maxDur),
    maxDurationMs: maxDur,
  });
  // Every fault start and end is a change; a fault in force (other than a wall-clock
  // step, which bully never reads) keeps the world unquiet.
  for (const f of plan) {
    world.sched.at(Math.round(f.atMs * 1000), changed);
    world.sched.at(Math.round(f.healMs * 1000), changed);
  }
  const faultInForce = (ms: number) => plan.some((f) => f.kind !== 'clock' && f.atMs <= ms && ms < f.healMs);

  /** Connected components of live boards under the broker's current partition. */
  const components = (): BullyRuntime[][] => {
    const rts = live();
    const b = world.broker;
    const conn = (x: NodeId, y: NodeId) => b.reach(x, BROKER) && b.reach(y, BROKER) && b.reach(x, y);
    const out: BullyRuntime[][] = [];
    const seen = new Set<NodeId>();
    for (const r of rts) {
      if (seen.has(r.id)) continue;
      const comp = rts.filter((o) => o.id === r.id || conn(r.id, o.id));
      for (const o of comp) seen.add(o.id);
      out.push(comp);
    }
    return out;
  };

  const periodic = () => {
    const now = world.nowMs;
    if (now - lastChangeMs >= SETTLE_MS && !faultInForce(now) && !disabled.has('one-coordinator')) {
      checker.checkComponents(components(), `quiet for ${Math.round(now - lastChangeMs)} ms`);
    }
    for (const r of live()) if (r.isLeader) actuate(r.ownToken);
    world.sched.after(CHECK_EVERY_MS * 1000, periodic);
  };
  world.sched.after(CHECK_EVERY_MS * 1000, periodic);
  hooks.setup?.({ world, runtimes, checker });

  let probeMs = -1;
  try {
    world.run(Math.max(T, healedBy));
    world.runUntil(() => allIds.every((id) => world.board(id).running && runtimes.get(id)?.state === 'running'), BOOT_WAIT_MS);
    const t0 = world.nowMs;
    const settled = () => settledProblem([live()]) === undefined && live().length === allIds.length;
    if (world.runUntil(settled, SETTLE_BOUND_MS)) {
      probeMs = Math.round(world.nowMs - t0);
      world.run(HOLD_MS);
      if (!disabled.has('one-coordinator')) checker.checkComponents([live()], `${HOLD_MS} ms after converging`);
    } else if (!disabled.has('one-coordinator')) {
      const p = settledProblem([live()]) ?? `only ${live().length} of ${allIds.length} boards running`;
      checker.fail('convergence', `no single coordinator within ${SETTLE_BOUND_MS} ms after every fault healed and every board was up: ${p}`);
    }
    for (const id of allIds) {
      const st = world.board(id).stats.staleCalls;
      if (st > 0) checker.fail('stale-hal-calls', `board ${id}: ${st} calls through a dead incarnation's HAL`);
    }
  } catch (e) {
    if (!(e instanceof SimViolation)) throw e;
    violation ??= e;
  }
  updateDual();

  const result: BullySeedResult = {
    seed,
    engine: 'bully',
    trace: world.traceHash(),
    leaders: checker.coordinatorships,
    commits: 0,
    ops: 0,
    opsOk: 0,
    opsUnknown: 0,
    faults: world.faults.applied,
    virtualMs: Math.round(world.nowMs),
    wallMs: Math.round(performance.now() - wall0),
    staleActuations: stale,
    actuations,
    dualActiveMs: Math.round(dualUs / 1000),
    failoversMs: gapsUs.map((u) => Math.round(u / 1000)),
    fences: 0,
    fencesFailed: 0,
    lin: 'skipped',
    historyOps: 0,
    probeMs,
    refusedActuations: refused,
    settledChecks: checker.settledChecks,
  };
  if (violation) result.violation = { invariant: violation.invariant, detail: violation.detail, atMs: violation.atMs, lastTrace: world.trace.last() };
  return result;
}
