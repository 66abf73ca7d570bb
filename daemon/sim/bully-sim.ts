/**
 * What `quorumd sim --engine bully` adds to the simulated cluster (engine-cluster.ts:
 * the same world, boards, fault plan, EngineRuntime on every board at every boot,
 * timeline and result fields): the bully invariants (bully-invariants.ts) after every
 * step, a fencing actuator, and instead of a client workload and a liveness probe the
 * convergence checks. Bully has no replicated data: no clients, no linearizability.
 *
 * Members: boards 1..N with the default priorities (list position: board N is the
 * preferred coordinator); the witness (--witness) has priority 0 (never coordinates).
 *
 * Convergence ("probe_ms" in the output line): after every fault healed and every board
 * is up again, exactly one coordinator — the highest-priority live board — followed by
 * every board, within SETTLE_BOUND_MS; it must then hold for HOLD_MS. During the run the
 * same check runs per connected component whenever the world was quiet for SETTLE_MS.
 *
 * Fencing (default; docs/fencing.md, daemon/runtime/bully-fencing.ts): GPIO relays with
 * power-sense inputs from every data board to every other (all-to-all, also beyond 3
 * boards: bully has no lease to fall back on, so a coordinator must be able to fence
 * whichever board coordinated before it), the runtime's activation gate and STONITH,
 * and a FencedResource actuator. `--no-stonith`: no relays, no gate (active =
 * coordinator), a plain actuator: the numbers then show the split brain that only the
 * fencing tokens at the resource are left to contain.
 *
 * The actuator (split-brain measures, docs/sim.md): every *active* node sends a command
 * every ACTUATE_EVERY_MS carrying its fencing token, and one at the instant it becomes
 * active (its first act). The actuator is reachable from every board without delay (a
 * physical resource on its own wiring) and knows the ground truth: the newest token
 * handed to any activation so far (as for Raft, daemon/sim/fencing.ts SimActuator).
 *   - `--no-stonith`: a plain actuator; it carries out every command. stale_actuations
 *     counts those whose token is below the newest (what a token check must refuse).
 *   - default: a FencedResource (src/fence) that refuses tokens below the newest it has
 *     seen; only carried-out commands can be stale; refusals are counted apart.
 * dual_active_ms: virtual time with ≥ 2 live active coordinators.
 * Checks with STONITH, per step: dual-active and token-growth (bully-invariants.ts),
 * fenced-all-off (never every data board off because of fencing); at the end, the
 * converged coordinator must be active within ACTIVE_BOUND_MS.
 */
import { BROKER } from '../../firmware-sim/mqtt.ts';
import type { World } from '../../firmware-sim/world.ts';
import type { BoardHal } from '../../firmware-sim/board.ts';
import type { Storage } from '../../hal/interfaces.ts';
import { FencedResource } from '../../src/fence/index.ts';
import type { BullyOptions } from '../../src/bully/index.ts';
import type { NodeId } from '../../src/types.ts';
import type { EngineRuntime, EngineRuntimeObserver, EngineRuntimeOptions } from '../runtime/engine-node.ts';
import { BullyStateCorruptError } from '../runtime/bully-state.ts';
import type { BullyFencingOptions } from '../runtime/bully-fencing.ts';
import type { RoleView, TimelineRecorder } from './timeline/recorder.ts';
import { SIM_POWER_ON_AFTER_MS, SimActuator, fencedOff, simFencing, type FenceWiring } from './fencing.ts';
import { BullyInvariantChecker, bullyOf, settledProblem } from './bully-invariants.ts';
import { SimViolation } from './violation.ts';
import type { SimConfig } from './options.ts';
import type { EngineRun, SeedResult, SimNodes, worldResult } from './engine-cluster.ts';

/** A runtime that hosts the bully engine. */
type BullyRuntime = EngineRuntime;

/** Quiet time after the last change before the per-component check applies (ms): reconnect (1 s) + failure timeout + election, with margin. */
export const SETTLE_MS = 3000;
/** Longest wait for convergence after everything healed and booted (ms). */
export const SETTLE_BOUND_MS = 5000;
/** How long the converged state must then hold (ms). */
export const HOLD_MS = 2000;
/** Period of the quiet-period check (ms). */
const CHECK_EVERY_MS = 100;
/**
 * With STONITH, how long after converging the coordinator may take to become active
 * (ms): a fence's random delay (≤ 500) + relay + settle (200) + a retry with backoff,
 * with margin. Without a relay to a suspect it would wait for an operator: a violation.
 */
export const ACTIVE_BOUND_MS = 5000;
/** The simulated boards' boot delay (firmware-sim default bootDelayMs). */
const BOOT_DELAY_MS = 3000;

/** All-to-all relays between data boards (see the file comment), wired in the world. */
export function wireBullyFencing(world: World, dataIds: readonly NodeId[]): FenceWiring {
  const wiring: FenceWiring = new Map();
  for (const a of dataIds) {
    wiring.set(a, dataIds.filter((b) => b !== a));
    for (const b of dataIds) {
      if (a === b) continue;
      world.wireRelay(a, b);
      world.powerSense(a, b);
    }
  }
  return wiring;
}

export interface BullySeedResult extends SeedResult {
  engine: 'bully';
  /** Commands the fencing actuator refused (stale tokens kept out). 0 with --no-stonith. */
  refusedActuations: number;
  /** Activations (a coordinator that became active). */
  activations: number;
  /** Quiet-period component checks made. */
  settledChecks: number;
}

export interface BullySeedHooks {
  /** Records the run for the HTML timeline (timeline/recorder.ts); recording does not change the trace. */
  timeline?: TimelineRecorder;
  wrapStorage?: (s: Storage, node: NodeId) => Storage;
  runtime?: Partial<EngineRuntimeOptions>;
  bully?: Partial<BullyOptions>;
  /** Invariants to skip (planted-bug tests show the others still catch the bug). */
  disableChecks?: string[];
  /** `changed()`: tell the quiet-period check that a scripted event (a partition, a power cut) just happened. */
  setup?: (ctx: { world: World; runtimes: Map<NodeId, BullyRuntime>; checker: BullyInvariantChecker; changed: () => void }) => void;
}

/** The runtime's fencing options for one boot: relays, senses and STONITH targets as for Raft (fencing.ts), no watchdog (bully does not self-fence). */
export function bullySimFencing(hal: BoardHal, wiring: FenceWiring): BullyFencingOptions {
  const f = simFencing(hal, wiring);
  return { relays: f.relays ?? [], powerSense: f.powerSense ?? [], ...(f.fencer ? { fencer: f.fencer } : {}) };
}

/** What the timeline draws of a bully node after every step: the role and epoch it acts on. */
export const BULLY_ROLE_VIEW: RoleView<BullyRuntime> = {
  role: (rt) => bullyOf(rt).actedState.role,
  term: (rt) => bullyOf(rt).actedState.term,
  round: { word: 'epoch' },
};


/**
 * Bully's part of a seed (engine-cluster.ts runEngineSeed runs it, on the same world,
 * boots and fault plan as every engine): the bully checks after every step, the fencing
 * actuator, the quiet-period checks during the run and the convergence checks at the end.
 */
export function bullyRun(cfg: SimConfig, hooks: BullySeedHooks): EngineRun {
  let world: World;
  let dataIds: NodeId[];
  let allIds: NodeId[];
  // Priorities by list position (board N is the preferred coordinator), the witness 0: src/bully/engine.ts bullyMembersOf.
  const disabled = new Set(hooks.disableChecks ?? []);
  let violation: SimViolation | undefined;
  let nodes: SimNodes;
  const isLive = (rt: BullyRuntime) => nodes.isLive(rt);
  const live = () => nodes.live();

  // ---- actuator ---------------------------------------------------------------
  const fenced = cfg.stonith ? new FencedResource({ name: 'sim-actuator' }) : undefined;
  const actuator = new SimActuator();
  let refused = 0;
  let fences = 0;
  let fencesFailed = 0;
  const actuate = (rt: BullyRuntime, token: number) => {
    if (fenced && !fenced.admit(token).ok) {
      refused++;
      return;
    }
    actuator.command(rt.id, token, world.nowUs);
  };
  const activeNow = () => live().filter((r) => r.active);
  /** After every step: split-brain accounting and (with STONITH) the per-step checks. */
  const updateDual = () => {
    const act = activeNow();
    actuator.update(world.nowUs, act.length);
    if (!cfg.stonith) return;
    checker.checkDualActive(act);
    if (dataIds.length >= 2 && !disabled.has('fenced-all-off')) {
      const off = fencedOff(world, dataIds);
      if (off.length === dataIds.length) checker.fail('fenced-all-off', `every data board is off because of fencing at once (mains on, rail dead): ${off.map((n) => `n${n}`).join(', ')}`);
    }
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
  );
  for (const d of disabled) checker.skip.add(d);
  let probeMs = -1;

  return {
    // Bully does not feed a watchdog (it does not self-fence): the boards' default timeout.
    board: {},
    boot(base) {
      ({ world, dataIds, allIds } = base);
      const wiring: FenceWiring | null = cfg.stonith ? wireBullyFencing(world, dataIds) : null;
      const baseObserver: EngineRuntimeObserver = {
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
        received: (r, m) => checker.received(r, m),
        activation: (r, ev) => {
          if (!ev.active) return;
          checker.activated(r, ev.token);
          actuator.activated(r.id, ev.token, world.nowUs);
          // The first act of a new activation carries its token.
          if (isLive(r)) actuate(r, ev.token);
        },
        fenced: (_r, rec) => {
          changed();
          if (rec.outcome === 'off' || rec.outcome === 'already-off') fences++;
          else if (rec.outcome === 'failed') fencesFailed++;
        },
      };
      return {
        observer: hooks.timeline ? hooks.timeline.observer(baseObserver, BULLY_ROLE_VIEW) : baseObserver,
        options: (hal) => ({
          ...(hooks.bully ? { engineOptions: { ...hooks.bully } } : {}),
          ...(wiring ? { fencing: bullySimFencing(hal, wiring) } : {}),
        }),
        fail: (inv, detail) => checker.fail(inv, detail),
        corrupt: (err) => err instanceof BullyStateCorruptError,
        onFatal: () => changed(),
      };
    },
    start(n, plan) {
      nodes = n;
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

      // A board that a fence switched off (or that came back) changes the components: not quiet.
      let liveSig = '';
      const periodic = () => {
        const sig = live().map((r) => r.id).join(',');
        if (sig !== liveSig) {
          liveSig = sig;
          changed();
        }
        const now = world.nowMs;
        if (now - lastChangeMs >= SETTLE_MS && !faultInForce(now) && !disabled.has('one-coordinator')) {
          checker.checkComponents(components(), `quiet for ${Math.round(now - lastChangeMs)} ms`);
        }
        updateDual();
        for (const r of activeNow()) actuate(r, r.activeToken);
        world.sched.after(CHECK_EVERY_MS * 1000, periodic);
      };
      world.sched.after(CHECK_EVERY_MS * 1000, periodic);
      hooks.setup?.({ world, runtimes: nodes.runtimes, checker, changed });
    },
    finish() {
      const t0 = world.nowMs;
      const settled = () => settledProblem([live()]) === undefined && live().length === allIds.length;
      // A fence at the end (a board coming back preempts and fences) costs the fenced board a power cycle.
      const bound = SETTLE_BOUND_MS + (cfg.stonith ? SIM_POWER_ON_AFTER_MS + BOOT_DELAY_MS : 0);
      if (world.runUntil(settled, bound)) {
        probeMs = Math.round(world.nowMs - t0);
        if (cfg.stonith && !disabled.has('activation')) {
          const coord = () => live().find((r) => r.isLeader);
          if (!world.runUntil(() => coord()?.active === true, ACTIVE_BOUND_MS)) {
            const c = coord();
            checker.fail('activation', `the coordinator ${c ? `n${c.id}` : '(none)'} did not become active within ${ACTIVE_BOUND_MS} ms after converging: ${c?.status().waitingFor ?? ''}`);
          }
        }
        world.run(HOLD_MS);
        if (!disabled.has('one-coordinator')) checker.checkComponents([live()], `${HOLD_MS} ms after converging`);
      } else if (!disabled.has('one-coordinator')) {
        const p = settledProblem([live()]) ?? `only ${live().length} of ${allIds.length} boards running`;
        checker.fail('convergence', `no single coordinator within ${bound} ms after every fault healed and every board was up: ${p}`);
      }
    },
    result(thrown) {
      violation ??= thrown;
      actuator.update(world.nowUs, activeNow().length);
      const fields: Omit<BullySeedResult, keyof ReturnType<typeof worldResult> | 'violation'> = {
        engine: 'bully',
        leaders: checker.coordinatorships,
        commits: 0,
        ops: 0,
        opsOk: 0,
        opsUnknown: 0,
        fences,
        fencesFailed,
        lin: 'skipped',
        historyOps: 0,
        probeMs,
        refusedActuations: refused,
        activations: checker.activations,
        settledChecks: checker.settledChecks,
      };
      return { violation, fields, actuator };
    },
  };
}
