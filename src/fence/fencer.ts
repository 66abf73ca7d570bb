/**
 * Fence sequencing (STONITH, docs/fencing.md, issue 6 point 3): which device to switch,
 * in which order, how to verify, when to give up. Pure, like the engines: inputs are
 * `fence()`, `result()`, `tick(now)`; the runtime executes the `FenceCommand`s that
 * `take()` hands out on the HAL (`Relay.set/read`, `PowerSense.read`) and feeds the
 * callbacks back as `result()`. Time is this node's monotonic clock in ms.
 *
 * One fence of one target:
 *
 *   request ─delay─▶ level 1 ─fail─▶ (backoff, retry level 1)… ─▶ level 2 … ─▶ failed
 *                      │ok
 *                      ▼
 *               off & verified ─(action reboot: powerOnAfterMs)─▶ power on
 *
 * A level is a list of devices that must *all* succeed (a board fed by two supplies
 * needs both relays off; Pacemaker's fencing topology has the same rule). A level
 * runs:
 *   1. pre-check: power-sense inputs if the level has any, else relay read-backs. All
 *      say "off" → the target is *already off*: success (after the verify below, which
 *      then re-reads only the senses, since the relays were never switched), nothing
 *      is switched and nothing is powered back on;
 *   2. off: `relay-set(false)` for each relay device;
 *   3. settle: `settleMs` for the contact to move and the target's supply to drain;
 *      a `watchdog-wait` device waits its `waitMs` here instead (the target resets
 *      itself by its watchdog; the fence is a wait, as diskless SBD);
 *   4. verify: every relay's read-back must say off, and every power-sense input must
 *      say off. A read-back "off" with a sense "on" means the relay switches some other
 *      board (miswired): failure, and the next level is tried.
 * After a failed verify, the relays this attempt switched off are switched back on
 * (best effort) before the retry or the next level: a miswired relay cut some other,
 * healthy board. A command that does not answer within `opTimeoutMs` is a failure
 * (late answers are ignored and counted). A failed level is retried `retries` times with exponential
 * backoff, then the next level runs.
 *
 * Delays (so two boards that lose each other never fence each other at once): before
 * the first level, wait `target.delayMs` (fixed, per target: the node whose fencing
 * is delayed wins a race, Pacemaker's `pcmk_delay_base`) + a random 0..`randomDelayMaxMs`
 * from the injected Rng (`pcmk_delay_max`) + `priorityDelayMs` when the target runs the
 * workload (it was the active leader: Pacemaker's `priority-fencing-delay`), so the
 * board that was doing the work survives a symmetric partition.
 */
import { MAX_NODE_ID, type NodeId, type Term } from '../types.ts';
import type { Rng } from '../rng.ts';
import { describe } from './token.ts';

/** A power relay in the target's supply: a GPIO relay or a serial relay board channel (both are HAL `Relay`s). */
export interface RelayDevice {
  kind: 'gpio-relay' | 'serial-relay';
  /** Name of the HAL `Relay` (e.g. `relay:2`, `lcus:/dev/ttyUSB0#1`). */
  relay: string;
  /** Name of the HAL `PowerSense` that reads the target's rail, if wired. Strongly recommended: it catches miswiring. */
  sense?: string;
}
/** Waiting for the target's watchdog to reset it (it self-fences when it lost quorum). */
export interface WatchdogWaitDevice {
  kind: 'watchdog-wait';
  /** How long after the level starts the target has provably reset: its self-fence time + watchdog timeout + margin. */
  waitMs: number;
  /** Optional power-sense input, read after the wait (a board that reset may already be back on: only "off" counts as verified if given). */
  sense?: string;
}
export type FenceDevice = RelayDevice | WatchdogWaitDevice;

/**
 * Waits before each new try of a power-on that failed (ms): a relay driver's transient
 * error (a bus glitch, a relay board's HTTP server closing an idle connection just as it
 * is reused) must not leave a fenced board off for good. After the last wait the error
 * stays in the record (`powerOnError`) and the fence ends; a board still off is then
 * powered on by the next leader's hand-over or by an operator. About 90 s in all.
 */
export const POWER_ON_RETRY_MS: readonly number[] = Object.freeze([1000, 2000, 4000, 8000, 15_000, 30_000, 30_000]);

export interface FenceTargetConfig {
  target: NodeId;
  /** Ordered fence levels; each is a non-empty list of devices that must all succeed. */
  levels: FenceDevice[][];
  /**
   * After a successful fence: 'reboot' powers the target back on after
   * `powerOnAfterMs` (it boots a fresh process that rejoins as a follower), 'off' leaves
   * it off until an operator acts. Default 'reboot': a Pi cluster should heal itself.
   */
  action?: 'off' | 'reboot';
  /** Time the target stays off before power-on (ms). Default 10000: long enough for the supply to drain and the new leader to settle. */
  powerOnAfterMs?: number;
  /** Fixed delay before fencing this target (ms). Default 0. */
  delayMs?: number;
}

export interface FencerConfig {
  /** This node's id (recorded as `by` in the history). */
  self: NodeId;
  targets: FenceTargetConfig[];
  /** A relay or sense command without an answer after this long is a failure (ms). Default 5000 (the serial relay board's own timeout is shorter). */
  opTimeoutMs?: number;
  /** Wait between switching off and verifying (ms). Default 500: relay contact (5–20 ms) plus a Pi's 5 V rail draining its capacitors. */
  settleMs?: number;
  /** Retries of a failed level before the next level. Default 2. */
  retries?: number;
  /** First retry backoff (ms), doubled per retry. Default 500. */
  backoffMs?: number;
  /** Backoff cap (ms). Default 8000. */
  backoffMaxMs?: number;
  /** Random delay 0..max before a fence (ms). Default 2000. */
  randomDelayMaxMs?: number;
  /** Extra delay when the target runs the workload (ms). Default 5000: longer than a fence takes, so the active board wins a race. */
  priorityDelayMs?: number;
  /** History records kept in memory (oldest dropped). Default 100. */
  historyLimit?: number;
}

export type FenceCommand =
  | { id: number; op: 'relay-set'; target: NodeId; device: string; on: boolean }
  | { id: number; op: 'relay-read'; target: NodeId; device: string }
  | { id: number; op: 'sense-read'; target: NodeId; device: string };

/** The answer to a command: for reads `value` is the state read (true = powered / relay on). */
export type FenceCommandResult = { ok: true; value?: boolean } | { ok: false; error: string };

export type FenceOutcome = 'pending' | 'off' | 'already-off' | 'failed' | 'cancelled' | 'confirmed';

export interface FenceAttempt {
  level: number;
  attempt: number;
  startedAtMs: number;
  endedAtMs: number;
  ok: boolean;
  /** What failed, for the operator. */
  error?: string;
}

/**
 * One fence, as kept in the history (and later in the replicated state, shown by
 * `quorumd status`). Times are the fencing node's monotonic ms.
 */
export interface FenceRecord {
  id: number;
  target: NodeId;
  by: NodeId;
  term: Term;
  reason: string;
  action: 'off' | 'reboot';
  requestedAtMs: number;
  delayMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  outcome: FenceOutcome;
  /** Index (0-based) of the level that succeeded, or null. */
  level: number | null;
  attempts: FenceAttempt[];
  poweredOnAtMs: number | null;
  powerOnError: string | null;
}

export interface FencerReady {
  commands: FenceCommand[];
  /** Records that changed since the last take (finished, powered on). */
  records: FenceRecord[];
}

type Step =
  | { k: 'precheck'; op: 'relay-read' | 'sense-read'; device: string }
  | { k: 'off'; device: string }
  | { k: 'wait'; ms: number; why: string }
  | { k: 'verify'; op: 'relay-read' | 'sense-read'; device: string };

interface Op {
  rec: FenceRecord;
  cfg: Required<Omit<FenceTargetConfig, 'delayMs'>> & { delayMs: number };
  phase: 'delay' | 'run' | 'backoff' | 'power-on-wait' | 'power-on' | 'done';
  level: number;
  attempt: number;
  steps: Step[];
  stepIdx: number;
  attemptStart: number;
  wakeAt: number;
  pending: { id: number; deadline: number } | null;
  precheckOff: boolean[];
  alreadyOff: boolean;
  /** Relays to switch back on (reboot). */
  onQueue: string[];
  /** Failed tries of the relay at the head of onQueue (power-on retries, see POWER_ON_RETRY_MS). */
  onFailures: number;
  /** Relays to switch back on after a failed verify (they may cut the wrong board). */
  undo: string[];
  /** The pending command is an undo (its answer changes nothing). */
  undoing: boolean;
}

function nodeId(x: unknown, what: string): NodeId {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > MAX_NODE_ID) throw new RangeError(`${what}: expected a node id 1..${MAX_NODE_ID}, got ${describe(x)}`);
  return x;
}
function ms(x: unknown, what: string, def: number, max = 86_400_000): number {
  if (x === undefined) return def;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || x > max) throw new RangeError(`${what}: expected a number of ms 0..${max}, got ${describe(x)}`);
  return x;
}
function name(x: unknown, what: string): string {
  if (typeof x !== 'string' || x.length === 0 || x.length > 200) throw new TypeError(`${what}: expected a non-empty device name, got ${describe(x)}`);
  return x;
}

/** Validates a fencer config (from YAML via the daemon, or code) with errors that name the key. */
export function checkFencerConfig(c: FencerConfig): void {
  if (c === null || typeof c !== 'object') throw new TypeError(`fencer config: expected an object, got ${describe(c)}`);
  nodeId(c.self, 'fencer self');
  if (!Array.isArray(c.targets)) throw new TypeError(`fencer targets: expected an array, got ${describe(c.targets)}`);
  const seen = new Set<NodeId>();
  c.targets.forEach((t, i) => {
    const at = `fencer targets[${i}]`;
    if (t === null || typeof t !== 'object') throw new TypeError(`${at}: expected an object, got ${describe(t)}`);
    nodeId(t.target, `${at}.target`);
    if (t.target === c.self) throw new RangeError(`${at}.target: a node cannot fence itself (${t.target}); it self-fences by its watchdog`);
    if (seen.has(t.target)) throw new RangeError(`${at}.target: node ${t.target} is listed twice`);
    seen.add(t.target);
    if (!Array.isArray(t.levels) || t.levels.length === 0) throw new RangeError(`${at}.levels: expected a non-empty array of levels, got ${describe(t.levels)}`);
    t.levels.forEach((lv, j) => {
      if (!Array.isArray(lv) || lv.length === 0) throw new RangeError(`${at}.levels[${j}]: expected a non-empty array of devices, got ${describe(lv)}`);
      lv.forEach((d, k) => {
        const dat = `${at}.levels[${j}][${k}]`;
        if (d === null || typeof d !== 'object') throw new TypeError(`${dat}: expected a device object, got ${describe(d)}`);
        if (d.kind === 'gpio-relay' || d.kind === 'serial-relay') {
          name(d.relay, `${dat}.relay`);
          if (d.sense !== undefined) name(d.sense, `${dat}.sense`);
        } else if (d.kind === 'watchdog-wait') {
          ms(d.waitMs, `${dat}.waitMs`, NaN);
          if (d.waitMs === undefined) throw new RangeError(`${dat}.waitMs: required for a watchdog-wait device`);
          if (d.sense !== undefined) name(d.sense, `${dat}.sense`);
        } else {
          throw new RangeError(`${dat}.kind: expected 'gpio-relay', 'serial-relay' or 'watchdog-wait', got ${describe((d as { kind: unknown }).kind)}`);
        }
      });
    });
    if (t.action !== undefined && t.action !== 'off' && t.action !== 'reboot') throw new RangeError(`${at}.action: expected 'off' or 'reboot', got ${describe(t.action)}`);
    ms(t.powerOnAfterMs, `${at}.powerOnAfterMs`, 0);
    ms(t.delayMs, `${at}.delayMs`, 0);
  });
  ms(c.opTimeoutMs, 'fencer opTimeoutMs', 0);
  if (c.opTimeoutMs === 0) throw new RangeError('fencer opTimeoutMs: expected > 0');
  ms(c.settleMs, 'fencer settleMs', 0);
  if (c.retries !== undefined && (!Number.isInteger(c.retries) || c.retries < 0 || c.retries > 100)) throw new RangeError(`fencer retries: expected an integer 0..100, got ${describe(c.retries)}`);
  ms(c.backoffMs, 'fencer backoffMs', 0);
  ms(c.backoffMaxMs, 'fencer backoffMaxMs', 0);
  ms(c.randomDelayMaxMs, 'fencer randomDelayMaxMs', 0);
  ms(c.priorityDelayMs, 'fencer priorityDelayMs', 0);
  if (c.historyLimit !== undefined && (!Number.isInteger(c.historyLimit) || c.historyLimit < 1 || c.historyLimit > 100_000)) throw new RangeError(`fencer historyLimit: expected an integer 1..100000, got ${describe(c.historyLimit)}`);
}

export interface FenceRequest {
  /** Why (shown in status and the log), e.g. 'previous leader of term 7'. */
  reason: string;
  /** The term/epoch in which the fence was decided (recorded). Default 0. */
  term?: Term;
  /** The target runs the workload (was the active leader): adds `priorityDelayMs`. */
  targetRunsWorkload?: boolean;
}

/** Counters for status and tests. */
export interface FencerStats {
  commands: number;
  timeouts: number;
  lateResults: number;
  unknownResults: number;
  /** Power-ons tried again after a failure (POWER_ON_RETRY_MS). */
  powerOnRetries: number;
}

export class Fencer {
  readonly self: NodeId;
  private readonly targets = new Map<NodeId, FenceTargetConfig>();
  private readonly opTimeoutMs: number;
  private readonly settleMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly backoffMaxMs: number;
  private readonly randomDelayMaxMs: number;
  private readonly priorityDelayMs: number;
  private readonly historyLimit: number;
  private readonly ops = new Map<NodeId, Op>();
  private readonly byCmd = new Map<number, Op>();
  private readonly historyList: FenceRecord[] = [];
  private outCommands: FenceCommand[] = [];
  private outRecords: FenceRecord[] = [];
  private nextCmd = 1;
  private nextRec = 1;
  private now = 0;
  readonly stats: FencerStats = { commands: 0, timeouts: 0, lateResults: 0, unknownResults: 0, powerOnRetries: 0 };

  constructor(
    cfg: FencerConfig,
    private readonly rng: Rng,
  ) {
    checkFencerConfig(cfg);
    if (rng === null || typeof rng !== 'object' || typeof rng.int !== 'function') throw new TypeError('Fencer: expected an Rng (src/rng.ts) for the random fence delay');
    this.self = cfg.self;
    for (const t of cfg.targets) this.targets.set(t.target, t);
    this.opTimeoutMs = cfg.opTimeoutMs ?? 5000;
    this.settleMs = cfg.settleMs ?? 500;
    this.retries = cfg.retries ?? 2;
    this.backoffMs = cfg.backoffMs ?? 500;
    this.backoffMaxMs = cfg.backoffMaxMs ?? 8000;
    this.randomDelayMaxMs = cfg.randomDelayMaxMs ?? 2000;
    this.priorityDelayMs = cfg.priorityDelayMs ?? 5000;
    this.historyLimit = cfg.historyLimit ?? 100;
  }

  private advance(nowMs: number, what: string): void {
    if (typeof nowMs !== 'number' || !Number.isFinite(nowMs) || nowMs < 0) throw new RangeError(`Fencer.${what} nowMs: expected a finite time ≥ 0, got ${describe(nowMs)}`);
    if (nowMs < this.now) throw new RangeError(`Fencer.${what}: time went backwards (${nowMs} < ${this.now}); pass monotonic time`);
    this.now = nowMs;
  }

  /** True if a fence of `target` is configured. */
  canFence(target: NodeId): boolean {
    return this.targets.has(target);
  }

  /** True while a fence of `target` runs (delay, levels, or waiting to power it back on). */
  busy(target: NodeId): boolean {
    const op = this.ops.get(target);
    return op !== undefined && op.phase !== 'done';
  }

  /**
   * Starts fencing `target`. Idempotent while one runs (returns the running record's
   * id). Throws for a target without fence devices in the config.
   */
  fence(target: NodeId, nowMs: number, req: FenceRequest): number {
    nodeId(target, 'Fencer.fence target');
    this.advance(nowMs, 'fence');
    if (req === null || typeof req !== 'object' || typeof req.reason !== 'string') throw new TypeError(`Fencer.fence request: expected { reason: string, term?, targetRunsWorkload? }, got ${describe(req)}`);
    const cfg = this.targets.get(target);
    if (cfg === undefined) throw new RangeError(`Fencer.fence: no fence devices configured for node ${target} (configured: ${[...this.targets.keys()].join(', ') || 'none'})`);
    const running = this.ops.get(target);
    if (running !== undefined && running.phase !== 'done' && running.phase !== 'power-on-wait' && running.phase !== 'power-on') return running.rec.id;
    if (running !== undefined) this.finishPowerOnEarly(running);
    const delay = (cfg.delayMs ?? 0) + (this.randomDelayMaxMs > 0 ? this.rng.int(0, Math.floor(this.randomDelayMaxMs)) : 0) + (req.targetRunsWorkload === true ? this.priorityDelayMs : 0);
    const rec: FenceRecord = {
      id: this.nextRec++,
      target,
      by: this.self,
      term: req.term ?? 0,
      reason: req.reason.slice(0, 200),
      action: cfg.action ?? 'reboot',
      requestedAtMs: nowMs,
      delayMs: delay,
      startedAtMs: null,
      finishedAtMs: null,
      outcome: 'pending',
      level: null,
      attempts: [],
      poweredOnAtMs: null,
      powerOnError: null,
    };
    const op: Op = {
      rec,
      cfg: { target, levels: cfg.levels, action: cfg.action ?? 'reboot', powerOnAfterMs: cfg.powerOnAfterMs ?? 10_000, delayMs: cfg.delayMs ?? 0 },
      phase: 'delay',
      level: 0,
      attempt: 1,
      steps: [],
      stepIdx: 0,
      attemptStart: 0,
      wakeAt: nowMs + delay,
      pending: null,
      precheckOff: [],
      alreadyOff: false,
      onQueue: [],
      undo: [],
      undoing: false,
      onFailures: 0,
    };
    this.ops.set(target, op);
    this.historyList.push(rec);
    if (this.historyList.length > this.historyLimit) this.historyList.shift();
    this.pump(op);
    return rec.id;
  }

  /** Stops a fence (e.g. the target answered in the new term during the delay). Commands already out are not undone. */
  cancel(target: NodeId, nowMs: number, why = 'cancelled'): boolean {
    nodeId(target, 'Fencer.cancel target');
    this.advance(nowMs, 'cancel');
    const op = this.ops.get(target);
    if (op === undefined || op.phase === 'done') return false;
    if (op.phase === 'power-on-wait' || op.phase === 'power-on') {
      // The fence itself is over; cancelling skips the power-on.
      op.rec.powerOnError = `power-on skipped: ${why}`;
      this.end(op);
      return true;
    }
    op.rec.attempts.push({ level: op.level, attempt: op.attempt, startedAtMs: op.attemptStart, endedAtMs: nowMs, ok: false, error: why });
    this.finish(op, 'cancelled');
    return true;
  }

  /**
   * Operator: `quorumd fence confirm NODE`. Recorded as a fence with outcome 'confirmed';
   * a fence still in its delay or its levels stops. One that already switched the target
   * off and waits to power it on ('reboot') is over and keeps its power-on: the operator
   * says the node is down, not that it must stay down (issue 12: a confirm in that window
   * left the board off for good). `term`: the leadership (term, epoch) of the node that
   * took the confirmation, recorded as a fence's is (0 left `quorumd status` showing
   * `term 0` for every confirmation).
   */
  confirm(target: NodeId, nowMs: number, by = 'operator', term: Term = 0): number {
    nodeId(target, 'Fencer.confirm target');
    if (!Number.isSafeInteger(term) || term < 0) throw new TypeError(`Fencer.confirm term: expected an integer >= 0, got ${describe(term)}`);
    this.advance(nowMs, 'confirm');
    const op = this.ops.get(target);
    if (op !== undefined && op.phase !== 'done' && op.phase !== 'power-on-wait' && op.phase !== 'power-on') this.cancel(target, nowMs, `superseded by operator confirmation (${by})`);
    const rec: FenceRecord = {
      id: this.nextRec++,
      target,
      by: this.self,
      term,
      reason: `confirmed down by ${by.slice(0, 100)}`,
      action: 'off',
      requestedAtMs: nowMs,
      delayMs: 0,
      startedAtMs: nowMs,
      finishedAtMs: nowMs,
      outcome: 'confirmed',
      level: null,
      attempts: [],
      poweredOnAtMs: null,
      powerOnError: null,
    };
    this.historyList.push(rec);
    if (this.historyList.length > this.historyLimit) this.historyList.shift();
    this.outRecords.push(structuredClone(rec));
    return rec.id;
  }

  /** The answer to command `id` (from the HAL callback). */
  result(id: number, nowMs: number, r: FenceCommandResult): void {
    this.advance(nowMs, 'result');
    if (r === null || typeof r !== 'object' || typeof r.ok !== 'boolean') throw new TypeError(`Fencer.result: expected { ok: true, value? } or { ok: false, error }, got ${describe(r)}`);
    const op = this.byCmd.get(id);
    if (op === undefined) {
      if (Number.isInteger(id) && id >= 1 && id < this.nextCmd) this.stats.lateResults++;
      else this.stats.unknownResults++;
      return;
    }
    this.byCmd.delete(id);
    if (op.pending === null || op.pending.id !== id) {
      this.stats.lateResults++;
      return;
    }
    op.pending = null;
    if (op.undoing) {
      op.undoing = false;
      return this.pump(op);
    }
    if (op.phase === 'power-on') {
      this.powerOnResult(op, r);
      return this.pump(op);
    }
    const step = op.steps[op.stepIdx]!;
    if (!r.ok) return this.failAttempt(op, `${describeStep(step)}: ${String(r.error).slice(0, 200)}`);
    if (step.k === 'off') return this.nextStep(op);
    if (typeof r.value !== 'boolean') return this.failAttempt(op, `${describeStep(step)}: the read returned no boolean state`);
    if (step.k === 'precheck') {
      op.precheckOff.push(!r.value);
      return this.nextStep(op);
    }
    if (step.k !== 'verify') throw new Error(`Fencer: internal error, a result for a ${step.k} step`);
    // verify: relay read-back false = relay off (target unpowered); sense false = rail dead.
    if (r.value) {
      const why =
        step.op === 'sense-read'
          ? `verify failed: power-sense ${step.device} still reads the target powered` +
            (op.steps.some((s) => s.k === 'verify' && s.op === 'relay-read') ? ' although the relay reads off (relay wired to another board, or a second supply?)' : '')
          : `verify failed: relay ${step.device} reads back on (stuck contact?)`;
      return this.failAttempt(op, why);
    }
    this.nextStep(op);
  }

  /** Time passes: delays, settles, backoffs, timeouts, power-on. */
  tick(nowMs: number): void {
    this.advance(nowMs, 'tick');
    if (this.ops.size === 0) return; // the common case, every tick of every node: no array
    for (const op of [...this.ops.values()]) this.pump(op);
  }

  /** Earliest time at which `tick` has something to do, or null. */
  nextDeadline(): number | null {
    if (this.ops.size === 0) return null; // every engine step of every node asks
    let best: number | null = null;
    for (const op of this.ops.values()) {
      if (op.phase === 'done' && op.pending === null) continue;
      const t = op.pending !== null ? op.pending.deadline : op.wakeAt;
      if (best === null || t < best) best = t;
    }
    return best;
  }

  /** Whether take() would hand out anything (lets a caller that polls skip the allocation). */
  get hasOutput(): boolean {
    return this.outCommands.length > 0 || this.outRecords.length > 0;
  }

  /** Commands to execute and records that changed, since the last call. */
  take(): FencerReady {
    const out = { commands: this.outCommands, records: this.outRecords };
    this.outCommands = [];
    this.outRecords = [];
    return out;
  }

  /** The fence history, oldest first (copies). */
  history(): FenceRecord[] {
    return this.historyList.map((r) => structuredClone(r));
  }

  /** The running or last fence of `target` (a copy), if any. */
  current(target: NodeId): FenceRecord | null {
    const op = this.ops.get(target);
    return op === undefined ? null : structuredClone(op.rec);
  }

  // ---- the state machine ------------------------------------------------------------

  /** Advances `op` as far as the current time allows (bounded: each iteration consumes a step or waits). */
  private pump(op: Op): void {
    for (let guard = 0; guard < 10_000; guard++) {
      if (op.phase === 'done' && op.undo.length === 0 && !op.undoing) return;
      if (op.pending !== null) {
        if (this.now < op.pending.deadline) return;
        // timeout
        this.byCmd.delete(op.pending.id);
        op.pending = null;
        this.stats.timeouts++;
        if (op.undoing) {
          op.undoing = false;
          continue;
        }
        if (op.phase === 'power-on') {
          this.powerOnResult(op, { ok: false, error: `timeout: no answer within ${this.opTimeoutMs} ms` });
          continue;
        }
        this.failAttempt(op, `${describeStep(op.steps[op.stepIdx]!)}: timeout, no answer within ${this.opTimeoutMs} ms`);
        continue;
      }
      if (op.undo.length > 0 && (op.phase === 'backoff' || op.phase === 'done')) {
        op.undoing = true;
        this.send(op, { op: 'relay-set', device: op.undo.shift()!, on: true, target: op.rec.target });
        return;
      }
      if (this.now < op.wakeAt) return;
      switch (op.phase) {
        case 'delay':
          op.rec.startedAtMs = this.now;
          this.startAttempt(op);
          continue;
        case 'backoff':
          this.startAttempt(op);
          continue;
        case 'power-on-wait':
          op.phase = 'power-on';
          continue;
        case 'power-on': {
          const dev = op.onQueue[0];
          if (dev === undefined) {
            if (op.rec.powerOnError === null) op.rec.poweredOnAtMs = this.now;
            this.outRecords.push(structuredClone(op.rec));
            this.end(op);
            return;
          }
          this.send(op, { op: 'relay-set', device: dev, on: true, target: op.rec.target });
          return;
        }
        case 'run':
          if (!this.runStep(op)) return;
          continue;
      }
    }
    throw new Error(`Fencer: internal loop bound exceeded for target ${op.rec.target}`);
  }

  private startAttempt(op: Op): void {
    op.phase = 'run';
    op.attemptStart = this.now;
    op.precheckOff = [];
    op.alreadyOff = false;
    op.steps = this.plan(op.cfg.levels[op.level]!);
    op.stepIdx = 0;
  }

  private plan(level: FenceDevice[]): Step[] {
    const relays = level.filter((d): d is RelayDevice => d.kind !== 'watchdog-wait');
    const waits = level.filter((d): d is WatchdogWaitDevice => d.kind === 'watchdog-wait');
    const senses = [...new Set(level.map((d) => d.sense).filter((s): s is string => s !== undefined))];
    const steps: Step[] = [];
    if (relays.length > 0) {
      if (senses.length > 0) for (const s of senses) steps.push({ k: 'precheck', op: 'sense-read', device: s });
      else for (const r of relays) steps.push({ k: 'precheck', op: 'relay-read', device: r.relay });
      for (const r of relays) steps.push({ k: 'off', device: r.relay });
      steps.push({ k: 'wait', ms: this.settleMs, why: 'settle' });
    }
    for (const w of waits) steps.push({ k: 'wait', ms: w.waitMs, why: 'watchdog-wait' });
    for (const r of relays) steps.push({ k: 'verify', op: 'relay-read', device: r.relay });
    for (const s of senses) steps.push({ k: 'verify', op: 'sense-read', device: s });
    return steps;
  }

  /** Runs the current step; returns true if the op can go on at once. */
  private runStep(op: Op): boolean {
    const step = op.steps[op.stepIdx];
    if (step === undefined) {
      this.succeedLevel(op);
      return true;
    }
    switch (step.k) {
      case 'verify':
        if (op.alreadyOff && step.op === 'relay-read' && op.steps.some((x) => x.k === 'precheck' && x.op === 'sense-read')) {
          // Already off by power-sense (e.g. its mains failed): the relay was never
          // switched, so its read-back says on; the senses are the verification.
          op.stepIdx++;
          return true;
        }
        this.send(op, { op: step.op, device: step.device, target: op.rec.target });
        return false;
      case 'precheck':
        this.send(op, { op: step.op, device: step.device, target: op.rec.target });
        return false;
      case 'off':
        if (op.alreadyOff) {
          op.stepIdx++;
          return true;
        }
        this.send(op, { op: 'relay-set', device: step.device, on: false, target: op.rec.target });
        return false;
      case 'wait':
        if (step.why === 'settle' && op.alreadyOff) {
          op.stepIdx++;
          return true;
        }
        op.stepIdx++;
        op.wakeAt = this.now + step.ms;
        return this.now >= op.wakeAt;
    }
  }

  private nextStep(op: Op): void {
    const step = op.steps[op.stepIdx]!;
    op.stepIdx++;
    if (step.k === 'precheck') {
      const next = op.steps[op.stepIdx];
      if (next === undefined || next.k !== 'precheck') op.alreadyOff = op.precheckOff.length > 0 && op.precheckOff.every((x) => x);
    }
    this.pump(op);
  }

  private send(op: Op, c: NewCommand): void {
    const id = this.nextCmd++;
    this.stats.commands++;
    op.pending = { id, deadline: this.now + this.opTimeoutMs };
    this.byCmd.set(id, op);
    this.outCommands.push({ id, ...c } as FenceCommand);
  }

  private failAttempt(op: Op, error: string): void {
    const step = op.steps[op.stepIdx];
    if (step !== undefined && step.k === 'verify' && !op.alreadyOff) {
      op.undo = op.steps.filter((x): x is Extract<Step, { k: 'off' }> => x.k === 'off').map((x) => x.device);
      if (op.undo.length > 0) error += `; switching ${op.undo.join(', ')} back on`;
    }
    op.rec.attempts.push({ level: op.level, attempt: op.attempt, startedAtMs: op.attemptStart, endedAtMs: this.now, ok: false, error });
    if (op.attempt <= this.retries) {
      const backoff = Math.min(this.backoffMaxMs, this.backoffMs * 2 ** (op.attempt - 1));
      op.attempt++;
      op.phase = 'backoff';
      op.wakeAt = this.now + backoff;
    } else if (op.level + 1 < op.cfg.levels.length) {
      op.level++;
      op.attempt = 1;
      op.phase = 'backoff';
      op.wakeAt = this.now;
    } else {
      this.finish(op, 'failed');
    }
    this.pump(op);
  }

  private succeedLevel(op: Op): void {
    op.rec.attempts.push({ level: op.level, attempt: op.attempt, startedAtMs: op.attemptStart, endedAtMs: this.now, ok: true });
    op.rec.level = op.level;
    const switched = op.alreadyOff ? [] : op.steps.filter((s): s is Extract<Step, { k: 'off' }> => s.k === 'off').map((s) => s.device);
    this.finish(op, op.alreadyOff ? 'already-off' : 'off');
    if (op.cfg.action === 'reboot' && switched.length > 0) {
      op.phase = 'power-on-wait';
      op.onQueue = switched;
      op.wakeAt = this.now + op.cfg.powerOnAfterMs;
    }
  }

  private finish(op: Op, outcome: FenceOutcome): void {
    op.rec.outcome = outcome;
    op.rec.finishedAtMs = this.now;
    if (op.pending !== null) this.byCmd.delete(op.pending.id);
    op.pending = null;
    op.phase = 'done';
    this.outRecords.push(structuredClone(op.rec));
  }

  private end(op: Op): void {
    if (op.pending !== null) this.byCmd.delete(op.pending.id);
    op.pending = null;
    op.phase = 'done';
  }

  /** The answer to switching `op.onQueue[0]` on: next relay, a later try (POWER_ON_RETRY_MS), or give up on it. */
  private powerOnResult(op: Op, r: FenceCommandResult): void {
    if (r.ok) {
      op.onQueue.shift();
      op.onFailures = 0;
      return; // go on with the next relay (pump sends it, or closes the record)
    }
    const error = String(r.error).slice(0, 200);
    const wait = POWER_ON_RETRY_MS[op.onFailures];
    op.onFailures++;
    if (wait !== undefined) {
      this.stats.powerOnRetries++;
      op.phase = 'power-on-wait';
      op.wakeAt = this.now + wait;
      return;
    }
    if (op.rec.powerOnError === null) op.rec.powerOnError = `${error} (${op.onFailures} tries)`;
    op.onQueue.shift();
    op.onFailures = 0;
  }

  /** A new fence of a target that is still waiting to be powered on: the power-on is dropped. */
  private finishPowerOnEarly(op: Op): void {
    if (op.phase === 'power-on-wait' || op.phase === 'power-on') {
      op.rec.powerOnError = 'power-on skipped: fenced again';
      this.outRecords.push(structuredClone(op.rec));
      this.end(op);
    }
  }
}

type NewCommand = FenceCommand extends infer C ? (C extends FenceCommand ? Omit<C, 'id'> : never) : never;

function describeStep(s: Step): string {
  switch (s.k) {
    case 'precheck':
      return `pre-check ${s.op === 'sense-read' ? 'power-sense' : 'relay read-back'} ${s.device}`;
    case 'off':
      return `switching relay ${s.device} off`;
    case 'wait':
      return s.why;
    case 'verify':
      return `verify ${s.op === 'sense-read' ? 'power-sense' : 'relay read-back'} ${s.device}`;
  }
}
