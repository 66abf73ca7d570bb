/**
 * Leader-only scheduled jobs in the cluster simulator (test/daemon/jobs): one seed of
 * `runEngineSeed` (faults, clients, invariants as `quorumd sim` draws them) with, on every
 * boot incarnation of every data node, the real `SlotCoordinator` over the real
 * `EngineBackend` (attached to that incarnation's EngineRuntime, with fencing: the
 * simulator always runs the activation gate) — node-cron's part played in virtual time:
 *
 *   - slot k is the time BASE + k·1000 ms; every live data node decides it
 *     (`decide('job:<ISO>')`) at virtual k·1000 ms plus a small per-node, per-slot
 *     jitter (cron and event-loop lag; deterministic from seed, node and slot);
 *   - when told to run, the ground truth records a run {slot, node, token, term, time,
 *     and whether the runtime was live and active at that instant}; the run ends
 *     `runMs` later and reports `job.done` through the host, like daemon/jobs/scheduler.ts;
 *   - every `job.claim` the state machine granted is recorded from the applied entries
 *     (the invariant checker's `applied` observer is wrapped: no production hook);
 *   - after `runEngineSeed` returns (all faults healed, every board up, probe committed), the
 *     world runs `tailMs` more: slots keep firing until `settleMs` before the end, so the
 *     last seconds show whether jobs run again and the replicated records can settle.
 *
 * `checkJobs` turns a result into a list of violations (empty = pass). Planted bugs for
 * the tests come in through `host` (wrap the JobsHost) and `coordinator` (wrap decide).
 */
import { createHash } from 'node:crypto';
import type { World } from '../../firmware-sim/world.ts';
import { decodeCommand, KvError, type ApplyResult, type JobRecord } from '../../src/kv/index.ts';
import type { NodeId } from '../../src/types.ts';
import type { Entry } from '../../src/wire/messages.ts';
import type { MemberInfo } from '../http/backend-base.ts';
import { EngineBackend } from '../http/engine-backend.ts';
import { SlotCoordinator, type CoordinatorLog, type Decision, type JobsHost } from '../jobs/coordinator.ts';
import type { EngineRuntime } from '../runtime/engine-node.ts';
import { runEngineSeed, type EngineSeedHooks, type EngineSimCluster, type SeedResult } from './engine-cluster.ts';
import type { SimConfig } from './options.ts';
import { SimViolation } from './violation.ts';

/** Slot 0's time (ms since the Unix epoch): 2025-01-01T00:00:00Z. */
export const JOB_SLOT_BASE_MS = Date.UTC(2025, 0, 1);
export const JOB_NAME = 'job';

export interface JobsSimOptions {
  /** Largest per-node fire delay after the slot's virtual second (ms). Default 50. */
  jitterMs?: number;
  /** Virtual duration of a run before it reports job.done (ms). Default 5. */
  runMs?: number;
  /** Virtual time run after runEngineSeed returned (ms). Default 10 000. */
  tailMs?: number;
  /** No slots fire in the last `settleMs` of the tail (ms). Default 2000. */
  settleMs?: number;
  /** Liveness window: every slot in the last `windowMs` before firing stops must have run (ms). Default 4000. */
  windowMs?: number;
  /** Planted bugs: the JobsHost the coordinator gets (default: the EngineBackend itself). */
  host?: (backend: EngineBackend, rt: EngineRuntime) => JobsHost;
  /** Planted bugs: the decision (default: the SlotCoordinator's decide). */
  coordinator?: (host: JobsHost, log: CoordinatorLog) => { decide(key: string, cb: (d: Decision) => void): void };
  /** Extra runEngineSeed hooks (setup is chained after the driver's). */
  hooks?: EngineSeedHooks;
}

/** A run as the outside world saw it (ground truth). */
export interface JobRun {
  slot: number;
  node: NodeId;
  term: number;
  token: number;
  atMs: number;
  /** The runtime was the live incarnation, and active, with this token and term, at the decision. */
  live: boolean;
  active: boolean;
  activeToken: number;
  activeTerm: number;
  /** Status of the job.done report (0 = not sent: the incarnation died first; -1 = no answer yet). */
  reported: number;
}

/** A `job.claim` the state machine granted (from the applied log). */
export interface JobGrant {
  index: number;
  slot: number;
  node: NodeId;
  term: number;
  token: number;
}

export interface JobsSeedResult {
  seed: number;
  sim: SeedResult;
  /** Trace hash after the tail (covers the whole run). */
  trace: string;
  /** A SimViolation thrown during the tail (runEngineSeed reports its own in sim.violation). */
  tailViolation?: string;
  runs: JobRun[];
  grants: JobGrant[];
  /** Decisions by reason ('run' for yes). */
  decisions: Record<string, number>;
  /** Slot numbers k fired, first and last. */
  firstK: number;
  lastK: number;
  /** Slot number of the first slot fired at or after the first activation (-1 = never active). */
  firstActiveK: number;
  /** Slots k ≥ firstActiveK not run. */
  missing: number[];
  /** Of those, slots with no active leader at their virtual second. */
  noActiveSlots: number;
  /** Virtual time without an active leader after the first activation (sampled every 20 ms). */
  noActiveMs: number;
  /** Times the cluster went from an active leader to none (failovers, by the 20 ms samples). */
  gaps: number;
  /** Liveness window [fromK, toK] (every slot there must have run). */
  windowK: [number, number];
  /** Replicated job record on every live data node at the end. */
  records: Array<{ node: NodeId; record: JobRecord | undefined; applied: number }>;
}

export function slotMs(k: number): number {
  return JOB_SLOT_BASE_MS + k * 1000;
}
export function slotKey(k: number): string {
  return `${JOB_NAME}:${new Date(slotMs(k)).toISOString()}`;
}

/** Deterministic fire delay of `node` for slot k (ms, 0..max-1). */
function jitter(seed: number, node: number, k: number, max: number): number {
  if (max <= 0) return 0;
  const h = createHash('sha256').update(`jobs-jitter:${seed}:${node}:${k}`).digest();
  return h.readUInt32BE(0) % max;
}

const quietLog: CoordinatorLog = { debug: () => {}, info: () => {}, warn: () => {} };

interface NodeJobs {
  host: JobsHost;
  decide(key: string, cb: (d: Decision) => void): void;
}

export function runJobsSeed(cfg: SimConfig, seed: number, opts: JobsSimOptions = {}): JobsSeedResult {
  const jitterMs = opts.jitterMs ?? 50;
  const runMs = opts.runMs ?? 5;
  const tailMs = opts.tailMs ?? 10_000;
  const settleMs = opts.settleMs ?? 2000;
  const windowMs = opts.windowMs ?? 4000;
  const dataIds: NodeId[] = [];
  for (let i = 1; i <= cfg.nodes; i++) dataIds.push(i);
  const members: MemberInfo[] = dataIds.map((id) => ({ id, name: `n${id}`, role: 'voter' as const }));
  if (cfg.witness) members.push({ id: cfg.nodes + 1, name: `n${cfg.nodes + 1}`, role: 'witness' });

  let ctx: EngineSimCluster | undefined;
  let world!: World;
  const perRuntime = new WeakMap<EngineRuntime, NodeJobs>();
  const runs: JobRun[] = [];
  const grants = new Map<number, JobGrant>();
  const decisions: Record<string, number> = {};
  let stopAtMs = Number.POSITIVE_INFINITY;
  let firstK = -1;
  let lastK = -1;
  let firstActiveMs = -1;
  let noActiveMs = 0;
  let gaps = 0;
  let wasActive = false;
  const activeAtK = new Map<number, boolean>();

  const liveData = (): EngineRuntime[] => ctx!.live().filter((rt) => rt.id <= cfg.nodes);
  const jobsOf = (rt: EngineRuntime): NodeJobs => {
    let j = perRuntime.get(rt);
    if (!j) {
      const backend = new EngineBackend(members.find((m) => m.id === rt.id)!, members, [], 'sim');
      backend.setFencing([]); // the simulator always runs the activation gate (simFencing)
      backend.attach(rt);
      const host = opts.host ? opts.host(backend, rt) : backend;
      const coord = opts.coordinator ? opts.coordinator(host, quietLog) : new SlotCoordinator(host, quietLog);
      j = { host, decide: (key, cb) => coord.decide(key, cb) };
      perRuntime.set(rt, j);
    }
    return j;
  };

  const fire = (rt: EngineRuntime, k: number) => {
    if (!ctx!.live().includes(rt)) return;
    const j = jobsOf(rt);
    j.decide(slotKey(k), (d) => {
      const reason = d.run ? 'run' : d.reason;
      decisions[reason] = (decisions[reason] ?? 0) + 1;
      if (!d.run) return;
      const live = ctx!.live().includes(rt);
      const run: JobRun = {
        slot: slotMs(k),
        node: rt.id,
        term: d.lead.term,
        token: d.lead.token,
        atMs: world.nowMs,
        live,
        // The ground truth looks without moving the node's clock (World.observe).
        active: live && world.observe(() => rt.active),
        activeToken: world.observe(() => rt.activeToken),
        activeTerm: rt.engine?.status().term ?? 0,
        reported: 0,
      };
      runs.push(run);
      world.sched.after(runMs * 1000, () => {
        if (!ctx!.live().includes(rt)) return; // the process died mid-run: no report
        run.reported = -1;
        j.host.report(
          { job: JOB_NAME, slot: run.slot, outcome: 'ok', code: 0, signal: '', startedAtMs: Math.round(run.atMs), durationMs: runMs },
          (res) => {
            run.reported = res.status;
          },
        );
      });
    });
  };

  const tick = () => {
    const now = world.nowMs;
    if (now >= stopAtMs) return;
    const k = Math.round(now / 1000);
    if (firstK < 0) firstK = k;
    lastK = k;
    activeAtK.set(k, world.observe(() => liveData().some((rt) => rt.active)));
    for (const rt of liveData()) {
      const d = jitter(seed, rt.id, k, jitterMs);
      if (d === 0) fire(rt, k);
      else world.sched.after(d * 1000, () => fire(rt, k));
    }
    world.sched.after(1_000_000, tick);
  };

  const SAMPLE_MS = 20;
  const sample = () => {
    const active = world.observe(() => liveData().some((rt) => rt.active));
    if (active && firstActiveMs < 0) firstActiveMs = world.nowMs;
    if (!active && firstActiveMs >= 0) noActiveMs += SAMPLE_MS;
    if (wasActive && !active) gaps++;
    wasActive = active;
    if (world.nowMs < stopAtMs) world.sched.after(SAMPLE_MS * 1000, sample);
  };

  const setup = (c: EngineSimCluster) => {
    ctx = c;
    world = c.world;
    // Grants, as the state machine applied them (every node applies each; keep one per index).
    const checker = c.checker;
    const applied = checker.applied.bind(checker);
    checker.applied = (rt: EngineRuntime, e: Entry, r: ApplyResult | undefined) => {
      applied(rt, e, r);
      if (r?.op === 'job.claim' && r.ok && !grants.has(e.index)) {
        const cmd = decodeCommand(e.data);
        if (!(cmd instanceof KvError) && cmd.op === 'job.claim') grants.set(e.index, { index: e.index, slot: cmd.slot, node: cmd.node, term: cmd.term, token: cmd.token });
      }
    };
    world.sched.after(1_000_000, tick);
    world.sched.after(SAMPLE_MS * 1000, sample);
    opts.hooks?.setup?.(c);
  };

  const sim = runEngineSeed(cfg, seed, { skipLin: true, ...opts.hooks, setup });
  let tailViolation: string | undefined;
  if (!sim.violation) {
    stopAtMs = world.nowMs + tailMs - settleMs;
    try {
      world.run(tailMs);
    } catch (e) {
      if (!(e instanceof SimViolation)) throw e;
      tailViolation = `${e.invariant}: ${e.detail}`;
    }
  }

  const ranK = new Set(runs.map((r) => Math.round((r.slot - JOB_SLOT_BASE_MS) / 1000)));
  const firstActiveK = firstActiveMs < 0 ? -1 : Math.ceil(firstActiveMs / 1000);
  const missing: number[] = [];
  let noActiveSlots = 0;
  if (firstActiveK >= 0) {
    for (let k = firstActiveK; k <= lastK; k++) {
      if (ranK.has(k)) continue;
      missing.push(k);
      if (activeAtK.get(k) === false) noActiveSlots++;
    }
  }
  const windowTo = lastK;
  const windowFrom = lastK - Math.round(windowMs / 1000) + 1;
  const records = ctx ? liveData().map((rt) => ({ node: rt.id, record: rt.stateMachine.job(JOB_NAME), applied: rt.stateMachine.appliedIndex })) : [];
  return {
    seed,
    sim,
    trace: world.traceHash(),
    ...(tailViolation !== undefined ? { tailViolation } : {}),
    runs,
    grants: [...grants.values()].sort((a, b) => a.index - b.index),
    decisions,
    firstK,
    lastK,
    firstActiveK,
    missing,
    noActiveSlots,
    noActiveMs,
    gaps,
    windowK: [windowFrom, windowTo],
    records,
  };
}

/**
 * Slots that failovers touch: a time of g ms without an active leader overlaps at most
 * ceil(g / 1000) + 1 slot seconds, so `gaps` failovers totalling `noActiveMs` touch at
 * most ceil(noActiveMs / 1000) + gaps slots.
 */
export function missingBound(r: Pick<JobsSeedResult, 'noActiveMs' | 'gaps'>): number {
  return Math.ceil(r.noActiveMs / 1000) + r.gaps;
}

/**
 * The claims' contract over one seed; returns the violations (empty = pass):
 *  - at-most-once: no slot run twice (ground truth);
 *  - order: runs in strictly increasing slot order, fencing tokens never decreasing;
 *  - active: every run decided by the live incarnation while active, with the token and
 *    term it ran with;
 *  - granted: every run matches a job.claim the state machine granted (slot, node, term, token);
 *  - liveness: every slot of the last window ran;
 *  - missing: no more slots missing (after the first activation) than failovers touch;
 *  - record: every live data node holds the same job record, naming the last run's
 *    slot and node (and its result, when the report was answered 200);
 *  - no simulator invariant violated.
 */
export function checkJobs(r: JobsSeedResult): string[] {
  const out: string[] = [];
  const at = (run: JobRun) => `slot ${new Date(run.slot).toISOString()} on n${run.node} (term ${run.term}, token ${run.token}) at ${run.atMs.toFixed(1)} ms`;
  if (r.sim.violation) out.push(`sim invariant ${r.sim.violation.invariant}: ${r.sim.violation.detail}`);
  if (r.tailViolation) out.push(`sim invariant in the tail: ${r.tailViolation}`);
  const bySlot = new Map<number, JobRun>();
  for (const run of r.runs) {
    const prev = bySlot.get(run.slot);
    if (prev) out.push(`at-most-once: ${at(run)} already ran: ${at(prev)}`);
    else bySlot.set(run.slot, run);
  }
  for (let i = 1; i < r.runs.length; i++) {
    const a = r.runs[i - 1]!;
    const b = r.runs[i]!;
    if (b.slot <= a.slot) out.push(`order: ${at(b)} after ${at(a)}`);
    if (b.token < a.token) out.push(`token: ${at(b)} has a lower fencing token than the run before, ${at(a)}`);
  }
  for (const run of r.runs) {
    if (!run.live || !run.active) out.push(`active: ${at(run)} was decided while the node was ${run.live ? 'not active' : 'not the live incarnation'}`);
    else if (run.activeToken !== run.token || run.activeTerm !== run.term) out.push(`active: ${at(run)} but the node was active with token ${run.activeToken} in term ${run.activeTerm}`);
  }
  const granted = new Set(r.grants.map((g) => `${g.slot}/${g.node}/${g.term}/${g.token}`));
  for (const run of r.runs) if (!granted.has(`${run.slot}/${run.node}/${run.term}/${run.token}`)) out.push(`granted: ${at(run)} has no granted job.claim in the log`);
  const [from, to] = r.windowK;
  const ran = new Set(r.runs.map((x) => x.slot));
  const notRun: number[] = [];
  for (let k = from; k <= to; k++) if (!ran.has(slotMs(k))) notRun.push(k);
  if (r.sim.violation === undefined && notRun.length > 0) out.push(`liveness: slots ${notRun.join(',')} of the last window ${from}..${to} did not run after every fault healed`);
  const bound = missingBound(r);
  if (r.missing.length > bound) out.push(`missing: ${r.missing.length} slots not run (${r.missing.join(',')}), more than the ${bound} slots touched by failovers (${r.gaps} failovers, ${r.noActiveMs} ms without an active leader)`);
  const last = r.runs.at(-1);
  if (r.records.length === 0) out.push('record: no live data node at the end');
  for (const { node, record } of r.records) {
    if (!last) break;
    if (!record) {
      out.push(`record: n${node} has no record of job ${JOB_NAME}`);
      continue;
    }
    if (record.claim === null) {
      out.push(`record: n${node} has no claim of job ${JOB_NAME} (withdrawn by a reset), the last run was ${at(last)}`);
    } else if (record.claim.slot !== last.slot || record.claim.node !== last.node) {
      out.push(`record: n${node} names slot ${new Date(record.claim.slot).toISOString()} by n${record.claim.node}, the last run was ${at(last)}`);
    }
    if (last.reported === 200 && (record.result?.slot !== last.slot || record.result.node !== last.node)) {
      out.push(`record: n${node} keeps result ${JSON.stringify(record.result)}, the last run's report was answered 200`);
    }
  }
  const first = r.records[0];
  for (const x of r.records.slice(1)) {
    if (JSON.stringify(x.record) !== JSON.stringify(first!.record)) out.push(`record: n${x.node} and n${first!.node} disagree: ${JSON.stringify(x.record)} vs ${JSON.stringify(first!.record)}`);
  }
  return out;
}
