/**
 * One seed of `quorumd sim`: a World with N boards (+ a witness), a NodeRuntime booted
 * on every board at every boot, faults drawn from the seed, a client workload, the
 * invariant checker after every step, a simulated actuator, and at the end a liveness
 * probe, the acknowledged-writes check and the linearizability check of the history.
 *
 * Timeline of a seed with --time T:
 *   [4 s, 0.7 T]     faults start (Poisson, kinds from --faults); each heals within
 *                    min(5 s, 0.15 T), so all are healed by 0.85 T at the latest
 *   [0, T)           clients issue operations
 *   T …              the workload drains (answers or client timeouts), then the
 *                    liveness probe: a write must commit within PROBE_MS after healing
 */
import { STALL_READ_ADVANCE_MAX_US } from '../../firmware-sim/faults.ts';
import { InternalError } from '../runtime/fatal.ts';
import { World } from '../../firmware-sim/world.ts';
import type { Board } from '../../firmware-sim/board.ts';
import { StorageCorruptError } from '../../hal/storage/index.ts';
import type { Link, Storage } from '../../hal/interfaces.ts';
import { checkLinearizable } from '../../src/lin/index.ts';
import type { NodeId } from '../../src/types.ts';
import { encodeCommand } from '../../src/kv/index.ts';
import type { Ready } from '../../src/raft/index.ts';
import type { Entry } from '../../src/wire/messages.ts';
import { NodeRuntime, Status, formatLine, type NodeRuntimeOptions, type RuntimeObserver } from '../runtime/index.ts';
import { InvariantChecker, SimViolation } from './invariants.ts';
import { Workload, DEFAULT_WORKLOAD, type WorkloadOptions } from './workload.ts';
import type { SimConfig } from './options.ts';
import { hashBytes } from './hash.ts';
import type { RoleView, TimelineRecorder } from './timeline/recorder.ts';
import { ACTUATE_EVERY_MS, BOOT_WAIT_MS, FAULTS_FROM_MS, PROBE_MS, clusterKey, traceFields, type SeedResult } from './engine-cluster.ts';
import { SIM_WATCHDOG_MS, SimActuator, countFencedOffBoards, fencedOff, simFencing, wireFencing, type FenceWiring } from './fencing.ts';

/** Test and benchmark hooks; the CLI uses only `timeline` (for --html). */
export interface SeedHooks {
  /** Records the run for the HTML timeline (timeline/recorder.ts); recording does not change the trace. */
  timeline?: TimelineRecorder;
  /** Wraps every board's Storage (e.g. a disk that lies about fsync, to show the checks catch it). */
  wrapStorage?: (s: Storage, node: NodeId) => Storage;
  /** Wraps every board's links (e.g. hiding session losses from the runtime, to show the checks catch it). */
  wrapLink?: (l: Link, node: NodeId) => Link;
  /** Extra runtime options (e.g. batching off). */
  runtime?: Partial<NodeRuntimeOptions>;
  workload?: Partial<WorkloadOptions>;
  /** Skip the linearizability check (benchmarks). */
  skipLin?: boolean;
  /** Invariant checks to skip (see InvariantChecker): for tests that show the other checks catch a bug too. */
  disableChecks?: string[];
  /** Called with the world and runtimes before the run starts. */
  setup?: (ctx: SimCluster) => void;
}

export interface SimCluster {
  world: World;
  checker: InvariantChecker;
  runtimes: Map<NodeId, NodeRuntime>;
  live(): NodeRuntime[];
}

/** What the timeline draws of a Raft node after every step: the engine's role and term (cheap getters). */
export const RAFT_ROLE_VIEW: RoleView<NodeRuntime> = {
  role: (rt) => rt.engine?.currentRole ?? 'starting',
  term: (rt) => rt.engine?.currentTerm ?? 0,
};


export function runSeed(cfg: SimConfig, seed: number, hooks: SeedHooks = {}): SeedResult {
  const wall0 = performance.now();
  // Real-time effects come with the stall kind: the clock also moves within a step.
  const world = new World({ seed, traceKeepLast: 40, board: { watchdogTimeoutMs: SIM_WATCHDOG_MS, ...(cfg.faults.includes('stall') ? { readAdvanceMaxUs: STALL_READ_ADVANCE_MAX_US } : {}) } });
  const dataIds: NodeId[] = [];
  for (let i = 1; i <= cfg.nodes; i++) dataIds.push(i);
  const witnessIds: NodeId[] = cfg.witness ? [cfg.nodes + 1] : [];
  hooks.timeline?.attach(world, { dataIds, witnessIds });
  const allIds = [...dataIds, ...witnessIds];
  for (const id of allIds) world.addBoard(id);
  // STONITH relays and power-sense inputs between data boards (fencing.ts).
  const wiring: FenceWiring | null = cfg.stonith ? wireFencing(world, dataIds) : null;
  const keyring = { current: clusterKey(seed) };
  let violation: SimViolation | undefined;
  const checker = new InvariantChecker(() => world.nowMs, witnessIds, (v) => {
    violation ??= v;
  }, new Set(hooks.disableChecks ?? []));
  const runtimes = new Map<NodeId, NodeRuntime>();
  const incarnation = new Map<NodeRuntime, number>();
  const actuator = new SimActuator();
  /** Per board (in allIds order): its newest runtime and the incarnation it was booted in (= runtimes/incarnation). */
  const slots: Array<{ board: Board; rt: NodeRuntime | undefined; inc: number }> = allIds.map((id) => ({ board: world.board(id), rt: undefined, inc: -1 }));
  const slotOf = new Map<NodeId, (typeof slots)[number]>(allIds.map((id, i) => [id, slots[i]!]));
  const dataBoards = dataIds.map((id) => world.board(id));
  const isLive = (rt: NodeRuntime) => {
    const b = world.board(rt.id);
    return rt.state === 'running' && b.hal !== null && b.incarnation === incarnation.get(rt);
  };
  const live = () => {
    const out: NodeRuntime[] = [];
    for (const rt of runtimes.values()) if (isLive(rt)) out.push(rt);
    return out;
  };
  const liveData = () => live().filter((rt) => !witnessIds.includes(rt.id));
  const activeNodes = () => {
    const out: NodeRuntime[] = [];
    for (const rt of runtimes.values()) if (isLive(rt) && rt.active) out.push(rt);
    return out;
  };
  /** Per-step checks of the split-brain defenses (docs/sim.md). */
  // Runs after every step of every node: counts without allocating, and builds the
  // lists (for the message) only when a check fails.
  const checkFencing = () => {
    // isLive(rt) && rt.active for the newest runtime of every board, as `activeNodes`
    // but through the per-board slots below (no Map lookups per node per step).
    let nActive = 0;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      const rt = s.rt;
      if (rt !== undefined && rt.state === 'running' && s.board.hal !== null && s.board.incarnation === s.inc && rt.active) nActive++;
    }
    actuator.update(world.nowUs, nActive);
    if (nActive >= 2) {
      const act = activeNodes();
      checker.fail('dual-active', `${act.length} active leaders at once: ${act.map((r) => `n${r.id} (term ${r.engine!.status().term}, token ${r.activeToken})`).join(', ')}`);
    }
    if (dataIds.length >= 2 && countFencedOffBoards(dataBoards) === dataIds.length) {
      const off = fencedOff(world, dataIds);
      checker.fail('fenced-all-off', `every data board is off because of fencing at once (mains on, rail dead): ${off.map((n) => `n${n}`).join(', ')}`);
    }
  };
  const baseObserver: RuntimeObserver = {
    booted: (rt) => checker.booted(rt),
    afterStep: (rt) => {
      checker.afterStep(rt);
      checkFencing();
    },
    fenced: (_rt, rec) => actuator.fenceFinished(rec),
    activation: (rt, ev) => {
      const err = actuator.activationEvent(rt.id, ev, world.nowUs);
      if (err !== null) checker.fail('token-growth', `fencing tokens must only grow: ${err}`);
    },
    persisted: (rt: NodeRuntime, rd: Ready) => checker.persisted(rt, rd),
    applied: (rt: NodeRuntime, e: Entry, r) => checker.applied(rt, e, r),
    engineError: (rt, err) => checker.engineError(rt, err),
  };
  const observer = hooks.timeline ? hooks.timeline.observer(baseObserver, RAFT_ROLE_VIEW) : baseObserver;

  world.onBoot((hal, board: Board) => {
    const storage = hooks.wrapStorage ? hooks.wrapStorage(hal.storage, hal.node) : hal.storage;
    const rt = new NodeRuntime({
      id: hal.node,
      config: { voters: dataIds, learners: [], witnesses: witnessIds },
      cluster: 1,
      keyring,
      clock: hal.clock,
      storage,
      links: hooks.wrapLink ? hal.links.map((l) => hooks.wrapLink!(l, hal.node)) : hal.links,
      rng: world.rng.fork(`raft:${hal.node}:${hal.incarnation}`),
      snapshotEntries: 200,
      logger: (level, msg, fields) => {
        if (level !== 'debug') world.ctx.log(`n${hal.node} ${formatLine(level, msg, traceFields(fields))}`);
      },
      observer,
      fencing: simFencing(hal, wiring),
      onFatal: (err) => {
        if (err instanceof StorageCorruptError) checker.fail('storage-corrupt', `node ${hal.node} refuses to start: ${err.message}`);
        // An exception from inside the node (the runtime's fatal path, daemon/runtime/fatal.ts)
        // is a bug: on a board the process would restart, here the seed fails and names it.
        if (err instanceof InternalError) checker.fail('internal-error', `node ${hal.node}: ${err.message} (${(err.stack ?? '').split('\n')[1]?.trim() ?? 'no stack'})`);
        // The supervisor (systemd) restarts the process; recovery runs from disk.
        board.crashProcess();
      },
      ...hooks.runtime,
    });
    runtimes.set(hal.node, rt);
    incarnation.set(rt, hal.incarnation);
    const slot = slotOf.get(hal.node)!;
    slot.rt = rt;
    slot.inc = hal.incarnation;
    rt.onActivation(() => {});
    rt.start();
  });

  const T = cfg.timeMs;
  const maxDur = Math.min(5000, Math.max(500, Math.round(T * 0.15)));
  const faultEnd = Math.round(T * 0.7);
  const healedBy = faultEnd + maxDur;
  const plan = world.faults.schedule({
    kinds: cfg.faults,
    // After the boards booted (3 s boot delay) and elected a first leader.
    startMs: Math.min(FAULTS_FROM_MS, Math.round(T * 0.3)),
    endMs: faultEnd,
    meanGapMs: Math.min(5000, Math.max(300, Math.round(T / 12))),
    minDurationMs: Math.min(500, maxDur),
    maxDurationMs: maxDur,
  });

  const workload = new Workload(world.sched, world.rng.fork('clients'), liveData, { ...DEFAULT_WORKLOAD, ...hooks.workload });
  if (hooks.timeline) workload.onOp = hooks.timeline.opListener();
  // A request to a stalled process waits for it (the workload calls the runtime directly).
  workload.deliver = (node, fn) => world.board(node).deliver(fn);
  workload.start(T * 1000);
  // Only active leaders drive the actuator, each with its fencing token.
  const actuate = () => {
    checkFencing();
    for (const rt of activeNodes()) actuator.command(rt.id, rt.activeToken, world.nowUs);
    world.sched.after(ACTUATE_EVERY_MS * 1000, actuate);
  };
  world.sched.after(ACTUATE_EVERY_MS * 1000, actuate);
  hooks.setup?.({ world, checker, runtimes, live });

  let probeMs = -1;
  const probeAcked: Array<{ index: number; dataHash: number; what: string }> = [];
  try {
    world.run(Math.max(T, healedBy));
    // Every board back up (power restored → boot delay; disk repaired → restart).
    world.runUntil(() => allIds.every((id) => world.board(id).running && runtimes.get(id)?.state === 'running'), BOOT_WAIT_MS);
    // Drain: every client answer or client timeout.
    world.runUntil(() => workload.pending === 0, DEFAULT_WORKLOAD.clientTimeoutMs + 1000);
    // Liveness: all faults are healed; a write must commit.
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
        rt.put('__probe', value, {}, (res) => {
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
    if (!done) checker.fail('liveness', `no write committed within ${PROBE_MS} ms after every fault healed (live data nodes: ${liveData().map((r) => r.id).join(',') || 'none'})`);
    // Let followers catch up before comparing their state machines.
    world.run(500);
    const leader = live().find((r) => r.isLeader);
    checker.checkAcked([...workload.acked, ...probeAcked], leader);
    checker.checkStateMachines(liveData());
    for (const id of allIds) {
      const stale = world.board(id).stats.staleCalls;
      if (stale > 0) checker.fail('stale-hal-calls', `board ${id}: ${stale} calls through a dead incarnation's HAL (the runtime kept a reference across its death)`);
    }
  } catch (e) {
    if (!(e instanceof SimViolation)) throw e;
    violation ??= e;
  }

  let lin: SeedResult['lin'] = 'skipped';
  if (!violation && !hooks.skipLin) {
    const r = checkLinearizable(workload.history, { maxStates: 200_000 });
    if (r.ok === true) lin = 'ok';
    else if (r.ok === 'unknown') lin = 'unknown';
    else {
      lin = 'fail';
      violation = new SimViolation("linearizability", r.explanation, world.nowMs);
    }
  }
  const result: SeedResult = {
    seed,
    trace: world.traceHash(),
    leaders: checker.elections,
    commits: checker.highestApplied,
    ops: workload.stats.issued,
    opsOk: workload.stats.ok + workload.stats.conflict,
    opsUnknown: workload.stats.unknown + workload.stats.noAnswer,
    faults: world.faults.applied,
    faultsByKind: { ...world.faults.appliedByKind },
    virtualMs: Math.round(world.nowMs),
    wallMs: Math.round(performance.now() - wall0),
    staleActuations: actuator.stale,
    actuations: actuator.actuations,
    dualActiveMs: Math.round(actuator.dualUs / 1000),
    failoversMs: actuator.gapsUs.map((u) => Math.round(u / 1000)),
    fences: actuator.fences,
    fencesFailed: actuator.fencesFailed,
    lin,
    historyOps: workload.history.length,
    probeMs,
  };
  void plan;
  if (violation) result.violation = { invariant: violation.invariant, detail: violation.detail, atMs: violation.atMs, lastTrace: world.trace.last() };
  return result;
}
