/**
 * One seed of `quorumd sim`: the one simulated cluster, for every engine. A World
 * (boards, MQTT broker model, flash with power-loss semantics, clocks, faults from the
 * seed) with an EngineRuntime (daemon/runtime/engine-node.ts) booted on every board at
 * every boot. runEngineSeed is the one entry for every engine: simWorld, bootNodes,
 * scheduleFaults, awaitBoardsUp, checkStaleHal and worldResult below are what every
 * engine's run is made of, and the engine's part (EngineRun) plugs in its checks, its
 * activity and its end checks.
 *
 * Log engines (raft, paxos, zab, pbft; logEngineRun): a client workload, a liveness
 * probe and the linearizability check, with the checks of engine-invariants.ts (the
 * shared ones + the engine's own: Raft's raft-invariants.ts, src/paxos, src/zab, PBFT's
 * pbft-sim.ts) after every step. Bully (bully-sim.ts bullyRun) has no replicated data:
 * its own checks (bully-invariants.ts), a fencing actuator and convergence checks
 * instead of clients and a probe, on the same world, boards, boots and fault plan.
 *
 * Split-brain defenses (fencing.ts): every board runs the runtime's fencing
 * (daemon/runtime/leader-fencing.ts: activation gate, own lease on heartbeat rounds,
 * watchdog self-fencing), and with STONITH (default; `--no-stonith`: leases only) GPIO
 * relays in every data board's supply are driven by the other data boards, so a new
 * leader fences the previous one before it acts. The actuator is driven by active
 * leaders only; after every step at most one leader is active (`dual-active`),
 * activation tokens only grow (`token-growth`), no command from an older leadership is
 * carried out once a newer one was activated (`stale-actuation`), and fencing never
 * leaves every data board off (`fenced-all-off`). A witness board (`--witness`) votes,
 * holds no data and is neither fenced nor fences.
 *
 * The checks and the actuator look at the nodes through World.observe: with the stall
 * kind every process clock read moves that clock ahead (BoardOptions.readAdvanceMaxUs),
 * and `active` reads the leader's clock, so checks that read it (the runtime reports a
 * step also after advance()) would delay the leader's ticks and cost it its lease:
 * looking must not change the run.
 *
 * Timeline of a seed with --time T:
 *   [4 s, 0.7 T]     faults start (Poisson, kinds from --faults); each heals within
 *                    min(5 s, 0.15 T), so all are healed by 0.85 T at the latest
 *   [0, T)           clients issue operations
 *   T …              the workload drains (answers or client timeouts), then the
 *                    liveness probe: a write must commit within PROBE_MS after healing
 */
import { createHash } from 'node:crypto';
import { STALL_READ_ADVANCE_MAX_US, type PlannedFault } from '../../firmware-sim/faults.ts';
import { World } from '../../firmware-sim/world.ts';
import type { Board, BoardHal, BoardOptions } from '../../firmware-sim/board.ts';
import { StorageCorruptError, StorageInputError } from '../../hal/storage/index.ts';
import type { Clock, Link, Storage } from '../../hal/interfaces.ts';
import { checkLinearizable } from '../../src/lin/index.ts';
import type { NodeId } from '../../src/types.ts';
import type { MemberConfig } from '../../src/wire/messages.ts';
import { encodeCommand } from '../../src/kv/index.ts';
import { EngineRuntime, type EngineRuntimeObserver, type EngineRuntimeOptions, type RuntimeEngineName } from '../runtime/engine-node.ts';
import { InternalError } from '../runtime/fatal.ts';
import { Status, formatLine } from '../runtime/index.ts';
import { SimViolation } from './violation.ts';
import { EngineInvariantChecker, engineChecks } from './engine-invariants.ts';
import { Workload, DEFAULT_WORKLOAD, type WorkloadNode, type WorkloadOptions } from './workload.ts';
import type { ByzKind } from '../../src/pbft/byzantine.ts';
import { PBFT_LOCK_WORKLOAD, PBFT_SETTLE_MS, PbftClientNode, PbftFenceChecks, PbftSimKeys, ReplyPool, pbftUnsettled, pickByzantine, saboteurFor, simPbftFencing, type PbftChecks } from './pbft-sim.ts';
import type { SimConfig } from './options.ts';
import type { TimelineRecorder } from './timeline/recorder.ts';
import { roleViewOf } from './role-views.ts';
import { hashBytes } from './hash.ts';
import { MemberRoleChecks, simMembers } from './member-checks.ts';
import type { ZabNode } from '../../src/zab/index.ts';
import { SIM_WATCHDOG_MS, SimActuator, countFencedOffBoards, fencedOff, simFencing, wireFencing, type FenceWiring } from './fencing.ts';
import { bullyRun, type BullySeedHooks, type BullySeedResult } from './bully-sim.ts';
import { LockWorkload, DEFAULT_LOCK_WORKLOAD, type LockStats, type LockWorkloadOptions } from './locks.ts';
import type { Rng } from '../../src/rng.ts';

/** Longest wait for the liveness probe's write after the run (virtual ms). */
export const PROBE_MS = 20_000;
/** Faults start once the cluster is up: boards boot 3 s after power-on (firmware-sim default). */
export const FAULTS_FROM_MS = 4000;
/** Longest wait for every board to be up again after healing (virtual ms). */
export const BOOT_WAIT_MS = 15_000;
/** Actuation period of a node that believes it leads (virtual ms). */
export const ACTUATE_EVERY_MS = 100;

export interface SeedResult {
  seed: number;
  trace: string;
  violation?: { invariant: string; detail: string; atMs: number; lastTrace: string[] };
  leaders: number;
  commits: number;
  ops: number;
  opsOk: number;
  opsUnknown: number;
  faults: number;
  /** Faults applied, by kind (kinds never applied are absent). */
  faultsByKind: Record<string, number>;
  virtualMs: number;
  wallMs: number;
  staleActuations: number;
  actuations: number;
  dualActiveMs: number;
  /** Times without an active leader after there had been one (ms each): failover as the outside world sees it. */
  failoversMs?: number[];
  /** Fences that switched a board off (or found it off), and fences that failed. */
  fences?: number;
  fencesFailed?: number;
  lin: 'ok' | 'fail' | 'unknown' | 'skipped';
  historyOps: number;
  /** Milliseconds from the end of healing to the probe's committed write (-1 if none). */
  probeMs: number;
  /** With the workload's readYourWrites: stale reads made right after a write through the same node, skipped (answered unapplied), missed. */
  readYourWrites?: { checked: number; skipped: number; missed: number; misses: string[] };
  /** With --locks: the lock clients' counts (locks.ts). */
  locks?: LockStats;
}

export function clusterKey(seed: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`quorumd-sim-key:${seed}`).digest());
}

/** What a test's `setup` hook gets: the world and runtimes before the run starts. */
export interface EngineSimCluster {
  world: World;
  checker: EngineInvariantChecker;
  runtimes: Map<NodeId, EngineRuntime>;
  live(): EngineRuntime[];
}

export { ENGINE_ROLE_VIEW } from './role-views.ts';

/** Test and benchmark hooks; the CLI uses only `timeline` (for --html). */
export interface EngineSeedHooks {
  /** Records the run for the HTML timeline (timeline/recorder.ts); recording does not change the trace. */
  timeline?: TimelineRecorder;
  /** Called with the world and runtimes before the run starts. */
  setup?: (ctx: EngineSimCluster) => void;
  wrapStorage?: (s: Storage, node: NodeId) => Storage;
  /** Wraps every board's links (e.g. hiding session losses from the runtime, to show the checks catch it). */
  wrapLink?: (l: Link, node: NodeId) => Link;
  /** Extra runtime options (e.g. engine options with a planted bug). */
  runtime?: Partial<EngineRuntimeOptions>;
  workload?: Partial<WorkloadOptions>;
  /** With --locks: lock client options (locks.ts). */
  locks?: Partial<LockWorkloadOptions>;
  skipLin?: boolean;
  /** Checks to switch off by name (shared or the engine's): a planted-bug test shows which check catches what. */
  disableChecks?: string[];
  /** PBFT, testing the checks only: clients accept with this many matching replies instead of f + 1. */
  pbftClientQuorum?: number;
  /** PBFT, testing the checks only: a planted bug in every replica's fence tally (src/pbft/actuation.ts). */
  pbftPlantedTally?: 'one-vote' | 'stale-votes';
  /** Told of every runtime booted (debugging a seed; tests that look inside nodes). */
  onRuntime?: (rt: EngineRuntime) => void;
  /** Wraps the cluster's runtime observer (a test that makes the checks look more often, to show that looking does not change the run). */
  wrapObserver?: (o: EngineRuntimeObserver) => EngineRuntimeObserver;
}

/** The boards of one seed: voters 1..nodes, then the witness (--witness), then the observers (--observers): member-checks.ts. */
export interface SimBase {
  world: World;
  config: MemberConfig;
  dataIds: NodeId[];
  witnessIds: NodeId[];
  allIds: NodeId[];
}

/**
 * The world of one seed with a board per member, the stall kind's clock effect (the
 * clock also moves within a step) and the timeline's lanes. Every engine's run starts here.
 */
export function simWorld(cfg: SimConfig, seed: number, timeline: TimelineRecorder | undefined, board: BoardOptions = {}): SimBase {
  const world = new World({ seed, traceKeepLast: 40, board: { ...board, ...(cfg.faults.includes('stall') ? { readAdvanceMaxUs: STALL_READ_ADVANCE_MAX_US } : {}) } });
  const config = simMembers(cfg.nodes, cfg.witness, cfg.observers ?? 0);
  const dataIds: NodeId[] = config.voters;
  const witnessIds: NodeId[] = config.witnesses;
  timeline?.attach(world, { dataIds, witnessIds, observerIds: config.learners });
  const allIds = [...dataIds, ...config.witnesses, ...config.learners];
  for (const id of allIds) world.addBoard(id);
  return { world, config, dataIds, witnessIds, allIds };
}

/** The runtimes of a seed: the newest per board, and which of them is live (its board's current incarnation, running). */
export interface SimNodes {
  runtimes: Map<NodeId, EngineRuntime>;
  isLive(rt: EngineRuntime): boolean;
  live(): EngineRuntime[];
  /** Live runtimes that are active now: counted through per-board slots, without allocating (it runs after every step). */
  countActive(): number;
}

export interface SimBootOptions {
  engine: RuntimeEngineName;
  keyring: { current: Uint8Array };
  observer: EngineRuntimeObserver;
  /** Per boot: the engine's own runtime options (fencing, engine options, PBFT keys). */
  options: (hal: BoardHal) => Partial<EngineRuntimeOptions>;
  /** A violation (throws SimViolation). */
  fail: (invariant: string, detail: string) => never;
  /** Errors that mean the node's durable state is unreadable (a `storage-corrupt` violation). */
  corrupt?: (err: Error) => boolean;
  /** Told of every fatal error before the process dies. */
  onFatal?: (err: Error) => void;
  hooks: Pick<EngineSeedHooks, 'wrapStorage' | 'wrapLink' | 'runtime' | 'onRuntime'>;
  /** --process-clocks: each process's monotonic clock from its own origin (processClock). */
  processClocks?: boolean;
}

/**
 * --process-clocks: the monotonic clock of one process incarnation as performance.now()
 * gives it on a real node: from an origin of its own, with a fraction, restarting with
 * the process. The first process of each board in the run started some time before it
 * (up to 3 h, drawn), a restarted one a few hundred ms before it first reads the clock.
 * Runs at the board's rate from the board's monotonic clock; timers are the board's.
 */
export function processClock(hw: Clock, board: Board, rng: Rng, first: boolean): Clock {
  const origin = (first ? rng.int(0, 3 * 3_600_000) : rng.int(20, 400)) + (rng.int(1, 1023) / 1024);
  // The hardware reading, not the process facade's: reading that may move a stalled process's clock.
  const base = board.clockHw.monotonicMs();
  return { ...hw, monotonicMs: () => origin + (hw.monotonicMs() - base) };
}

/** Boots an EngineRuntime on every board at every boot (the process a board's supervisor starts). */
export function bootNodes(base: SimBase, o: SimBootOptions): SimNodes {
  const { world } = base;
  const runtimes = new Map<NodeId, EngineRuntime>();
  const incarnation = new Map<EngineRuntime, number>();
  /** Per board (in allIds order): its newest runtime and the incarnation it was booted in (= runtimes/incarnation). */
  const slots: Array<{ board: Board; rt: EngineRuntime | undefined; inc: number }> = base.allIds.map((id) => ({ board: world.board(id), rt: undefined, inc: -1 }));
  const slotOf = new Map<NodeId, (typeof slots)[number]>(base.allIds.map((id, i) => [id, slots[i]!]));
  const isLive = (rt: EngineRuntime) => {
    const b = world.board(rt.id);
    return rt.state === 'running' && b.hal !== null && b.incarnation === incarnation.get(rt);
  };
  const live = () => {
    const out: EngineRuntime[] = [];
    for (const rt of runtimes.values()) if (isLive(rt)) out.push(rt);
    return out;
  };
  const countActive = () => {
    let n = 0;
    for (let i = 0; i < slots.length; i++) {
      const sl = slots[i]!;
      const rt = sl.rt;
      if (rt !== undefined && rt.state === 'running' && sl.board.hal !== null && sl.board.incarnation === sl.inc && rt.active) n++;
    }
    return n;
  };
  const h = o.hooks;
  const clocked = new Set<NodeId>();
  world.onBoot((hal, board: Board) => {
    let clock = hal.clock;
    if (o.processClocks) {
      clock = processClock(hal.clock, board, world.rng.fork(`process-clock:${hal.node}:${hal.incarnation}`), !clocked.has(hal.node));
      clocked.add(hal.node);
    }
    const storage = h.wrapStorage ? h.wrapStorage(hal.storage, hal.node) : hal.storage;
    const rt = new EngineRuntime({
      engine: o.engine,
      id: hal.node,
      config: base.config,
      cluster: 1,
      keyring: o.keyring,
      clock,
      storage,
      links: h.wrapLink ? hal.links.map((l) => h.wrapLink!(l, hal.node)) : hal.links,
      rng: world.rng.fork(`${o.engine}:${hal.node}:${hal.incarnation}`),
      snapshotEntries: 200,
      logger: (level, msg, fields) => {
        if (level !== 'debug') world.ctx.log(`n${hal.node} ${formatLine(level, msg, traceFields(fields))}`);
      },
      observer: o.observer,
      ...o.options(hal),
      onFatal: (err) => {
        if (err instanceof StorageCorruptError || o.corrupt?.(err)) o.fail('storage-corrupt', `node ${hal.node} refuses to start: ${err.message}`);
        // An exception from inside the node (the runtime's fatal path) is a bug: on a
        // board the process would restart, here the seed fails and names it.
        if (err instanceof InternalError) o.fail('internal-error', `node ${hal.node}: ${err.message} (${(err.stack ?? '').split('\n')[1]?.trim() ?? 'no stack'})`);
        // A Ready the durable log refuses (its rules broken: an engine bug, nothing written).
        // On a board the process stops and restarts, so the seed went on as if it had
        // crashed, and the bug stayed hidden (a pbft replica stopped this way on real
        // processes, bench/chaos-soak.ts, while 300 simulated seeds passed).
        if (err instanceof StorageInputError) o.fail('internal-error', `node ${hal.node}: the durable log refused a Ready: ${err.message}`);
        o.onFatal?.(err);
        board.crashProcess();
      },
      ...h.runtime,
    });
    runtimes.set(hal.node, rt);
    incarnation.set(rt, hal.incarnation);
    const slot = slotOf.get(hal.node)!;
    slot.rt = rt;
    slot.inc = hal.incarnation;
    h.onRuntime?.(rt);
    rt.start();
  });
  return { runtimes, isLive, live, countActive };
}

/**
 * The seed's faults: from 4 s (or 0.3 T) to 0.7 T, kinds from --faults, each healed
 * within min(5 s, 0.15 T): all are healed by `healedBy`.
 */
export function scheduleFaults(world: World, cfg: SimConfig): { plan: PlannedFault[]; healedBy: number } {
  const T = cfg.timeMs;
  const maxDur = Math.min(5000, Math.max(500, Math.round(T * 0.15)));
  const faultEnd = Math.round(T * 0.7);
  const plan = world.faults.schedule({
    kinds: cfg.faults,
    startMs: Math.min(FAULTS_FROM_MS, Math.round(T * 0.3)),
    endMs: faultEnd,
    meanGapMs: Math.min(5000, Math.max(300, Math.round(T / 12))),
    minDurationMs: Math.min(500, maxDur),
    maxDurationMs: maxDur,
  });
  return { plan, healedBy: faultEnd + maxDur };
}

/** After healing: every board up again (power restored → boot delay; disk repaired → restart), bounded. */
export function awaitBoardsUp(base: SimBase, nodes: SimNodes): boolean {
  return base.world.runUntil(() => base.allIds.every((id) => base.world.board(id).running && nodes.runtimes.get(id)?.state === 'running'), BOOT_WAIT_MS);
}

/** No call went through a dead incarnation's HAL (a runtime that kept a reference across its death). */
export function checkStaleHal(base: SimBase, fail: (invariant: string, detail: string) => never): void {
  for (const id of base.allIds) {
    const stale = base.world.board(id).stats.staleCalls;
    if (stale > 0) fail('stale-hal-calls', `board ${id}: ${stale} calls through a dead incarnation's HAL (the runtime kept a reference across its death)`);
  }
}

/** The fields every engine's result has from the world and the actuator. */
export function worldResult(base: SimBase, seed: number, wall0: number, actuator: SimActuator): Pick<SeedResult, 'seed' | 'trace' | 'faults' | 'faultsByKind' | 'virtualMs' | 'wallMs' | 'staleActuations' | 'actuations' | 'dualActiveMs' | 'failoversMs'> {
  const { world } = base;
  return {
    seed,
    trace: world.traceHash(),
    faults: world.faults.applied,
    faultsByKind: { ...world.faults.appliedByKind },
    virtualMs: Math.round(world.nowMs),
    wallMs: Math.round(performance.now() - wall0),
    staleActuations: actuator.stale,
    actuations: actuator.actuations,
    dualActiveMs: Math.round(actuator.dualUs / 1000),
    failoversMs: actuator.gapsUs.map((u) => Math.round(u / 1000)),
  };
}

/** The fields of a seed's result that the engine's part of the run gives (the rest come from the world: worldResult). */
export type EngineResultFields = Omit<SeedResult, keyof ReturnType<typeof worldResult> | 'violation'>;

/**
 * What one engine adds to the one run of a seed (runEngineSeed): log engines
 * (logEngineRun below: clients, the liveness probe, engine-invariants.ts) and bully
 * (bully-sim.ts bullyRun: no clients, bully-invariants.ts, convergence). The world, the
 * boots, the fault plan, the run until every fault healed and every board is up, the
 * stale-HAL check and the world's result fields are the same for every engine.
 */
export interface EngineRun {
  /** Options of every board of the world (log engines: the watchdog their runtime feeds). */
  board?: BoardOptions;
  /** The world and its boards exist: relays, checks, the observer; how every boot's runtime is made. */
  boot(base: SimBase): Omit<SimBootOptions, 'engine' | 'keyring' | 'hooks'>;
  /** Runtimes boot and the fault plan is made: the engine's own activity (clients, actuator, quiet checks), then the test's setup hook. */
  start(nodes: SimNodes, plan: readonly PlannedFault[]): void;
  /** Every fault healed and every board up again (or the wait for it ended): the engine's end-of-run checks, which throw SimViolation. */
  finish(): void;
  /**
   * The run is over (`thrown`: the violation that stopped it, if one did): the first
   * violation (the checks record theirs before throwing), the engine's result fields and
   * the actuator the split-brain figures come from.
   */
  result(thrown: SimViolation | undefined): { violation: SimViolation | undefined; fields: EngineResultFields; actuator: SimActuator };
}

/**
 * One seed of `quorumd sim`, any engine: the world, a runtime booted on every board at
 * every boot, the seed's faults, the run; the engine's part (EngineRun) plugs in its
 * checks, its activity and its end checks. `hooks`: EngineSeedHooks for log engines,
 * BullySeedHooks (bully-sim.ts) for bully.
 */
export function runEngineSeed(cfg: SimConfig, seed: number, hooks?: EngineSeedHooks): SeedResult;
export function runEngineSeed(cfg: SimConfig, seed: number, hooks: BullySeedHooks): BullySeedResult;
export function runEngineSeed(cfg: SimConfig, seed: number, hooks: EngineSeedHooks | BullySeedHooks): SeedResult;
export function runEngineSeed(cfg: SimConfig, seed: number, hooks: EngineSeedHooks | BullySeedHooks = {}): SeedResult {
  const wall0 = performance.now();
  const run = cfg.engine === 'bully' ? bullyRun(cfg, hooks as BullySeedHooks) : logEngineRun(cfg, seed, hooks as EngineSeedHooks);
  const base = simWorld(cfg, seed, hooks.timeline, run.board);
  const boot = run.boot(base);
  const nodes = bootNodes(base, { engine: cfg.engine, keyring: { current: clusterKey(seed) }, ...boot, hooks, ...(cfg.processClocks ? { processClocks: true } : {}) });
  const { plan, healedBy } = scheduleFaults(base.world, cfg);
  run.start(nodes, plan);
  let thrown: SimViolation | undefined;
  try {
    base.world.run(Math.max(cfg.timeMs, healedBy));
    awaitBoardsUp(base, nodes);
    run.finish();
    checkStaleHal(base, boot.fail);
  } catch (e) {
    if (!(e instanceof SimViolation)) throw e;
    thrown = e;
  }
  const { violation, fields, actuator } = run.result(thrown);
  const result: SeedResult = { ...worldResult(base, seed, wall0, actuator), ...fields };
  if (violation) result.violation = { invariant: violation.invariant, detail: violation.detail, atMs: violation.atMs, lastTrace: base.world.trace.last() };
  return result;
}

/** The log engines' part of a seed (raft, paxos, zab, pbft): clients, the liveness probe, the linearizability check. */
function logEngineRun(cfg: SimConfig, seed: number, hooks: EngineSeedHooks): EngineRun {
  const engine = cfg.engine as Exclude<RuntimeEngineName, 'bully'>;
  const pbft = engine === 'pbft';
  let world: World;
  let config: MemberConfig;
  let dataIds: NodeId[];
  let liars: Map<NodeId, ByzKind[]>;
  let isHonest: (rt: EngineRuntime) => boolean;
  let pbftKeys: PbftSimKeys | undefined;
  let violation: SimViolation | undefined;
  let disabled: Set<string>;
  let checker: EngineInvariantChecker;
  let members: MemberRoleChecks;
  let pbftFences: PbftFenceChecks | undefined;
  let pool: ReplyPool | undefined;
  const actuator = new SimActuator();
  let nodes: SimNodes;
  /** The per-step split-brain checks (set up with the boards). */
  let measureActive: () => void;
  const live = () => nodes.live();
  /** Nodes that hold the KV state (not the witness): the clients' and the probe's. */
  const liveData = () => live().filter((rt) => !config.witnesses.includes(rt.id));
  const activeNodes = () => live().filter((rt) => rt.active);
  const honestLive = () => live().filter(isHonest);
  let workload: Workload;
  /** --locks: the lock clients (locks.ts). */
  let locks: LockWorkload | undefined;
  // PBFT clients trust f + 1 matching replies, not the node they asked (pbft-sim.ts).
  const clientOf = new Map<EngineRuntime, PbftClientNode>();
  const pbftClient = (rt: EngineRuntime, pool: ReplyPool): PbftClientNode => {
    let c = clientOf.get(rt);
    if (!c) clientOf.set(rt, (c = new PbftClientNode(rt, pool, world.sched, DEFAULT_WORKLOAD.clientTimeoutMs - 500)));
    return c;
  };
  const client = (rt: EngineRuntime): WorkloadNode => (pool ? pbftClient(rt, pool) : rt);
  let probeMs = -1;
  const probeAcked: Array<{ index: number; dataHash: number; what: string }> = [];

  return {
    board: { watchdogTimeoutMs: SIM_WATCHDOG_MS },
    boot(base) {
      ({ world, config, dataIds } = base);
      // PBFT (pbft-sim.ts): liars from the seed, per-node signers, no leader-driven actuator.
      liars = pbft && cfg.byzantine ? pickByzantine(world.rng.fork('byzantine'), dataIds) : new Map<NodeId, ByzKind[]>();
      for (const [id, kinds] of liars) hooks.timeline?.markByzantine(id, kinds);
      const honestIds = dataIds.filter((id) => !liars.has(id));
      isHonest = (rt) => !liars.has(rt.id);
      pbftKeys = pbft ? new PbftSimKeys(dataIds, seed) : undefined;
      // STONITH relays and power-sense inputs between data boards (fencing.ts): voters only, the
      // others never lead. PBFT fences on committed f + 1 votes (pbft-sim.ts), with no activation gate.
      const wiring: FenceWiring | null = cfg.stonith ? wireFencing(world, dataIds) : null;
      const dataBoards = dataIds.map((id) => world.board(id));
      // PBFT: a primary is not an actuating leader (a deposed one may believe it leads until it
      // hears of the new view), so the leader-actuator checks do not apply.
      disabled = new Set([...(hooks.disableChecks ?? []), ...(pbft ? ['dual-active', 'stale-actuation'] : [])]);
      const onViolation = (v: SimViolation) => {
        violation ??= v;
      };
      const engChecks = engineChecks(engine, config, disabled, () => world.nowMs, onViolation, honestIds);
      checker = new EngineInvariantChecker(() => world.nowMs, engChecks, onViolation, disabled);
      members = new MemberRoleChecks(config, engine, (inv, detail) => checker.fail(inv, detail), disabled);
      pbftFences = pbft && wiring ? new PbftFenceChecks(new Set(honestIds), (inv, detail) => disabled.has(inv) || checker.fail(inv, detail)) : undefined;
      pool = pbft ? new ReplyPool(dataIds, pbftKeys!.auth(dataIds[0]!), engChecks as PbftChecks, hooks.pbftClientQuorum) : undefined;
      /**
       * Per-step checks of the split-brain defenses. Runs after every step of every node:
       * counts without allocating, and builds the lists (for the message) only when a check fails.
       */
      measureActive = () => {
        const nActive = nodes.countActive();
        actuator.update(world.nowUs, nActive);
        if (nActive >= 2 && !disabled.has('dual-active')) {
          const act = activeNodes();
          checker.fail('dual-active', `${act.length} active leaders at once: ${act.map((r) => `n${r.id} (term ${r.engine!.status().term}, token ${r.activeToken})`).join(', ')}`);
        }
        const nOff = dataIds.length >= 2 ? countFencedOffBoards(dataBoards) : 0;
        if (nOff === dataIds.length && nOff > 0 && !disabled.has('fenced-all-off')) {
          checker.fail('fenced-all-off', `every data board is off because of fencing at once (mains on, rail dead): ${fencedOff(world, dataIds).map((n) => `n${n}`).join(', ')}`);
        }
        if (pbftFences && nOff > 0) pbftFences.fencedOff(fencedOff(world, dataIds));
      };
      /** The checks after a step of `stepped` (one closure for the run, not one per step). */
      let stepped: EngineRuntime | undefined;
      const stepChecks = () => {
        const rt = stepped!;
        if (isHonest(rt)) checker.afterStep(rt, honestLive);
        if (members.active) members.afterStep(rt);
        measureActive();
      };
      const baseObserver: EngineRuntimeObserver = {
        booted: (rt) => {
          if (!isHonest(rt)) return;
          checker.booted(rt);
          // The log it recovered is durable there (member-checks.ts recovered).
          if (members.active && engine === 'zab') members.recovered(rt, (rt.engine as ZabNode).view());
        },
        // The checks look without moving any process clock (World.observe): `active` judges
        // the leader's lease at its clock's "now", and with the stall kind every process read
        // moves that clock ahead. The runtime reports a step more often than the Raft runtime
        // did (also after advance()), and reads from here would then delay the leader's ticks
        // and cost it its lease more often: the run would depend on how often the checks look.
        afterStep: (rt) => {
          stepped = rt;
          world.observe(stepChecks);
        },
        fenced: (_rt, rec) => actuator.fenceFinished(rec),
        activation: (rt, ev) => {
          const err = actuator.activationEvent(rt.id, ev, world.nowUs);
          if (err !== null && !disabled.has('token-growth')) checker.fail('token-growth', `fencing tokens must only grow: ${err}`);
        },
        persisted: (rt, rd) => {
          if (!isHonest(rt)) return;
          checker.persisted(rt, rd);
          if (members.active) members.persisted(rt, rd);
        },
        applied: (rt, e, result) => {
          if (!isHonest(rt)) return;
          checker.applied(rt, e, result);
          if (members.active) members.applied(rt, e);
        },
        proposed: (rt, index, term, data) => isHonest(rt) && checker.proposed(rt, index, term, data),
        snapshotTaken: (rt, index) => isHonest(rt) && checker.snapshotTaken(rt, index),
        checkpointed: (rt, index) => isHonest(rt) && checker.checkpointed(rt, index),
        replied: (_rt, rep) => pool?.add(rep),
        pbftFenceVoted: (rt, reqNo, req, suspects) => pbftFences?.voted(rt.id, reqNo, req, suspects),
        pbftFenceDecided: (rt, d) => pbftFences?.decided(rt.id, d),
        engineError: (rt, err) => checker.engineError(rt, err),
      };
      const recorded = hooks.timeline ? hooks.timeline.observer(baseObserver, roleViewOf(engine)) : baseObserver;
      return {
        observer: hooks.wrapObserver ? hooks.wrapObserver(recorded) : recorded,
        options: (hal) => ({
          ...(pbft ? (wiring ? { pbftFencing: simPbftFencing(hal, wiring, liars.has(hal.node), hooks.pbftPlantedTally) } : {}) : { fencing: simFencing(hal, wiring) }),
          ...(pbftKeys ? { pbftAuth: pbftKeys.auth(hal.node) } : {}),
          ...(liars.has(hal.node) ? { byzantine: saboteurFor(pbftKeys!.auth(hal.node), dataIds, liars.get(hal.node)!, world.rng.fork(`saboteur:${hal.node}:${hal.incarnation}`)) } : {}),
        }),
        fail: (inv, detail) => checker.fail(inv, detail),
      };
    },
    start(n) {
      nodes = n;
      workload = new Workload(world.sched, world.rng.fork('clients'), pool ? () => liveData().map(client) : liveData, { ...DEFAULT_WORKLOAD, ...hooks.workload });
      // A request to a stalled process waits for it (the workload calls the runtime directly).
      workload.deliver = (node, fn) => world.board(node).deliver(fn);
      if (hooks.timeline) workload.onOp = hooks.timeline.opListener();
      workload.start(cfg.timeMs * 1000);
      if (cfg.locks) {
        // PBFT: through the f + 1 client, on the agreed time's documented bound (pbft-sim.ts).
        const certifying = pool;
        const lockNodes = certifying ? () => liveData().map((rt) => pbftClient(rt, certifying)) : liveData;
        locks = new LockWorkload(world.sched, world.rng.fork('locks'), lockNodes, (inv, detail) => checker.fail(inv, detail), { ...DEFAULT_LOCK_WORKLOAD, ...(pbft ? PBFT_LOCK_WORKLOAD : {}), ...hooks.locks });
        locks.deliver = (node, fn) => world.board(node).deliver(fn);
        if (hooks.timeline) ({ onOp: locks.onOp, onHold: locks.onHold } = hooks.timeline.lockListeners());
        locks.start(cfg.timeMs * 1000);
      }
      // Only active leaders drive the actuator, each with its fencing token.
      const actuate = () => {
        // The actuator stands for the outside world: it reads who is active without moving a clock (as the checks).
        world.observe(() => {
          measureActive();
          for (const rt of activeNodes()) {
            const before = actuator.stale;
            actuator.command(rt.id, rt.activeToken, world.nowUs);
            if (actuator.stale > before && !disabled.has('stale-actuation')) {
              checker.fail('stale-actuation', `n${rt.id} drove the actuator with token ${rt.activeToken} after a newer leadership was activated (recent: ${actuator.recent.slice(-4).map((c) => `n${c.node}/${c.token}${c.stale ? ' stale' : ''}`).join(', ')})`);
            }
          }
        });
        world.sched.after(ACTUATE_EVERY_MS * 1000, actuate);
      };
      world.sched.after(ACTUATE_EVERY_MS * 1000, actuate);
      hooks.setup?.({ world, checker, runtimes: nodes.runtimes, live });
    },
    finish() {
      world.runUntil(() => workload.pending === 0 && (locks?.pending ?? 0) === 0, DEFAULT_WORKLOAD.clientTimeoutMs + 1000);
      const t0 = world.nowMs;
      let done = false;
      let n = 0;
      const probe = () => {
        if (done) return;
        const nodes = liveData();
        if (nodes.length > 0) {
          const rt = nodes[n++ % nodes.length]!;
          const value = new TextEncoder().encode(`probe.${n}`);
          const data = encodeCommand({ op: 'put', key: '__probe', value });
          client(rt).put('__probe', value, {}, (res) => {
            if (done || res.status !== Status.OK) return;
            done = true;
            probeMs = Math.round(world.nowMs - t0);
            probeAcked.push({ index: res.index!, dataHash: data instanceof Uint8Array ? hashBytes(data) : 0, what: `probe put via node ${rt.id}` });
          });
        }
        world.sched.after(300_000, probe);
      };
      probe();
      world.runUntil(() => done, PROBE_MS);
      if (!done) checker.fail('liveness', `no write committed within ${PROBE_MS} ms after every fault healed (live nodes: ${liveData().map((r) => r.id).join(',') || 'none'})`);
      world.run(500);
      if (done && pbft && !disabled.has('pbft-liveness')) {
        // Every honest replica takes part again: one view, normal mode, same executed index (pbft-sim.ts).
        world.runUntil(() => pbftUnsettled(honestLive()) === null, PBFT_SETTLE_MS);
        const why = pbftUnsettled(honestLive());
        if (why !== null) checker.fail('pbft-liveness', why);
      }
      if (done && config.learners.length > 0) {
        // Observers receive the committed stream: each live one applies the probe (bounded wait).
        const idx = probeAcked[0]!.index;
        const view = () => live().map((r) => ({ id: r.id, appliedIndex: r.stateMachine.appliedIndex }));
        world.runUntil(() => members.observersBehind(view(), idx, config.learners) === null, 5000);
        const behind = members.observersBehind(view(), idx, config.learners);
        if (behind !== null && !disabled.has('observer-behind')) checker.fail('observer-behind', behind);
      }
      checker.checkAcked([...workload.acked, ...probeAcked], live().find((r) => r.isLeader));
      checker.checkStateMachines(pbft ? honestLive() : liveData());
    },
    result(thrown) {
      violation ??= thrown;
      let lin: SeedResult['lin'] = 'skipped';
      if (!violation && !hooks.skipLin) {
        const r = checkLinearizable(workload.history, { maxStates: 200_000 });
        if (r.ok === true) lin = 'ok';
        else if (r.ok === 'unknown') lin = 'unknown';
        else {
          lin = 'fail';
          violation = new SimViolation('linearizability', r.explanation, world.nowMs);
        }
      }
      const fields: EngineResultFields = {
        leaders: checker.elections,
        commits: checker.highestApplied,
        ops: workload.stats.issued,
        opsOk: workload.stats.ok + workload.stats.conflict,
        opsUnknown: workload.stats.unknown + workload.stats.noAnswer,
        fences: actuator.fences,
        fencesFailed: actuator.fencesFailed,
        lin,
        historyOps: workload.history.length,
        probeMs,
      };
      if (locks) fields.locks = locks.stats;
      if (hooks.workload?.readYourWrites) {
        fields.readYourWrites = workload.readYourWrites;
        const miss = workload.readYourWrites.misses[0];
        if (miss !== undefined && !violation) violation = new SimViolation('read-your-writes', `${workload.readYourWrites.missed} stale reads right after a write through the same node missed it; first: ${miss}`, world.nowMs);
      }
      return { violation, fields, actuator };
    },
  };
}

/**
 * Log fields as the trace keeps them: without a stack (the fatal path logs one), whose
 * file paths and frames depend on the checkout and on who called in (a timeline
 * recorder's observer), not on the seed — the trace hash must not.
 */
export function traceFields(fields: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (fields === undefined || !('stack' in fields)) return fields;
  const { stack: _stack, ...rest } = fields;
  return rest;
}
