/**
 * Leader-only scheduled jobs (issue 8, docs/jobs.md): every configured job is scheduled
 * on every node (its slots from cron.ts: node-cron 4's syntax); for each slot the run
 * coordinator (SlotCoordinator, coordinator.ts) lets a node run it only as the active
 * leader holding a committed claim for that slot. The run is a shell command
 * (daemon/shell.ts) with the slot and the leadership's fencing token in its
 * environment; how it ended is replicated (`job.done`), so `quorumd jobs` on any node
 * shows the last run, its node and result.
 *
 * Time: slots fire on the wall clock (cron is wall-clock time by nature); the slot's
 * identity is its scheduled time, which every node computes alike. A board whose clock
 * is off by more than a slot period could claim a slot "late" or "early"; the claim
 * rule still grants each slot at most once and never a slot at or before one granted
 * earlier. Keep the boards on NTP.
 *
 * The timers themselves run on the monotonic clock (Node's setTimeout), so the
 * scheduler looks at the wall clock whenever one wakes, at least once a minute
 * (MAX_TIMER_MS), and compares how far the wall clock moved with how far the monotonic
 * one did. That tells a step of the wall clock (NTP's first sync on a board without an
 * RTC, `date -s`) from a busy process:
 *   - a step forward of up to CATCH_UP_MAX_STEP_MS that skipped slots runs the newest
 *     skipped slot once, when the step is noticed, and logs the others as skipped (one
 *     line): systemd timers coalesce missed elapses the same way, and Vixie cron runs
 *     a fixed-time job whose time a forward change of less than 3 hours skipped. A
 *     daily job does not lose its day to a 10-second NTP correction over its slot; a
 *     job every 10 s does not run 360 times after a step of an hour. A larger step is
 *     a correction of a clock that was wrong (a board that booted with an old time):
 *     the slots it skipped are not run (one line says so), nor any slot within
 *     CORRECTION_GRACE_MS (or a period of the job) of noticing it, so that a clock set
 *     years ahead and corrected within that time claims nothing of the wrong time.
 *   - a step back aims at the first slot after the new time, but never at or before the
 *     newest slot the cluster granted (that one ran, or was claimed, already: a slot
 *     never runs twice). Without this, a clock set back (or set wrongly ahead for a
 *     moment and then corrected) left the timer waiting for the slot it computed before,
 *     for as long as the step: a step back of ten years stopped the job on that node for
 *     ten years.
 *
 * The firing rules otherwise are node-cron 4's, which this scheduler replaced (cron.ts
 * says why): a timer wakes at the slot; without a clock step, a slot fired more than
 * MISSED_TOLERANCE_MS late, or after the next slot of the job was due, is missed
 * (logged, not run: the process was busy); with `overlap: skip` a slot that comes
 * while the job's previous slot is still being claimed or run is skipped (logged).
 */
import type { JobConfig } from '../config/jobs.ts';
import { runShell, type RunningShell, type ShellLog, type ShellResult } from '../shell.ts';
import { SlotCoordinator, type JobsHost, type JobReport } from './coordinator.ts';
import { CronSchedule } from './cron.ts';
import { isoUtc } from '../utc-text.ts';
import { jobGrantedThrough } from '../../src/kv/state-machine.ts';

/** A slot fired later than this after its time is missed (node-cron's default tolerance). */
export const MISSED_TOLERANCE_MS = 1000;
/** A timer waits at most this long before it looks at the wall clock again: a step of it is noticed by then. */
export const MAX_TIMER_MS = 60_000;
/**
 * A forward step of the wall clock up to this size runs the newest slot it skipped; a
 * larger one is taken as a correction of a clock that was wrong (Vixie cron's rule, with
 * its 3 hours): nothing it skipped runs. It also bounds what a bad step on the leader
 * can do: a slot it claims at the wrong time refuses every slot up to it.
 */
export const CATCH_UP_MAX_STEP_MS = 3 * 3_600_000;
/**
 * After a forward step larger than CATCH_UP_MAX_STEP_MS, no slot runs for this long (or
 * for one period of the job, if that is shorter) from when the step is noticed: a wrong
 * step corrected within it claims nothing.
 */
export const CORRECTION_GRACE_MS = 60_000;
/** Missed slots logged one by one at most (a clock set hours ahead would otherwise log thousands). */
const MAX_MISSED_LOGGED = 20;

export interface JobsLog extends ShellLog {
  debug(fields: Record<string, unknown>, msg: string): void;
}

export interface JobSchedulerOptions {
  jobs: JobConfig[];
  host: JobsHost;
  /** This node's name (QUORUMD_NODE) and the cluster's (QUORUMD_CLUSTER). */
  node: string;
  cluster: string;
  /** This node's HTTP API (QUORUMD_API_URL), for `quorumd kv ...` inside a job. */
  apiUrl?: string;
  /** How a `quorumd` command in a job finds the API token (QUORUMD_API_TOKEN_FILE). */
  apiAuthEnv?: Record<string, string>;
  log: JobsLog;
  /** Grace between SIGTERM and SIGKILL on timeout or stop, ms. Default 2000. */
  killGraceMs?: number;
  /**
   * The two clocks, ms (tests): `wallMs` places the slots (default Date.now),
   * `monotonicMs` tells a step of the wall clock from a late timer (default
   * performance.now). The timers are setTimeout's either way.
   */
  clock?: { wallMs(): number; monotonicMs(): number };
}

/** A job as `GET /v1/jobs` and `quorumd jobs` show it. */
export interface JobView {
  name: string;
  cron: string;
  timezone: string;
  overlap: 'skip' | 'allow';
  timeoutMs: number;
  command: string;
  /**
   * The next slot that can run (ISO): the first after this node's clock and after the
   * newest slot granted in the cluster; null when not scheduled.
   */
  nextRun: string | null;
  /** Runs of this job in progress on this node. */
  runningHere: number;
  /**
   * The newest slot granted in the cluster (replicated; null if none was, or if a reset
   * withdrew it and none was granted since: see `reset`), with how it ended:
   * ok | failed | timeout | error, or `running` (on this node now) or `pending`
   * (no result reported yet: still running elsewhere, or its node died mid-run).
   */
  last: {
    slot: string;
    node: string;
    term: number;
    token: number;
    result: string;
    exitCode: number | null;
    signal: string | null;
    startedAt: string | null;
    durationMs: number | null;
  } | null;
  /**
   * The job's newest `quorumd jobs reset` (replicated), null if it was never reset: when
   * (`at`, the resetting leader's clock), by which leader and term, the floor that later
   * slots must be after, and the claim it withdrew.
   */
  reset: {
    at: string;
    floor: string;
    node: string;
    term: number;
    withdrawn: { slot: string; node: string; term: number };
  } | null;
}

interface LocalRun {
  key: string;
  slot: number;
  shell: RunningShell | undefined;
}

/** A scheduled job: its schedule, the slot its timer waits for, and its slots in progress here. */
interface Task {
  job: JobConfig;
  schedule: CronSchedule;
  /** The slot the timer waits for (ms); undefined: no slot comes any more. */
  expected: number | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Both clocks when the timer was set: how far each moved until it woke tells a step of the wall clock. */
  armedWall: number;
  armedMono: number;
  /** Slots of this job being claimed or run on this node now. */
  busy: number;
  /**
   * The newest granted slot that the timer waits past, after the clock was set back
   * behind it (a claim made with a clock that was ahead); undefined otherwise. While set,
   * the timer looks every HELD_RECHECK_MS whether `quorumd jobs reset` withdrew it.
   */
  heldBy: number | undefined;
}

/** While a job waits past a granted slot (Task.heldBy), how often its timer checks for a reset. */
export const HELD_RECHECK_MS = 5_000;

export class JobScheduler {
  readonly coordinator: SlotCoordinator;
  private readonly tasks = new Map<string, Task>();
  private readonly running = new Map<string, Set<LocalRun>>();
  private readonly finished: Array<{ job: string; slot: number; token: number; result: ShellResult }> = [];
  private stopped = false;
  private readonly wallMs: () => number;
  private readonly monoMs: () => number;

  constructor(private readonly o: JobSchedulerOptions) {
    this.coordinator = new SlotCoordinator(o.host, o.log);
    const c = o.clock;
    this.wallMs = c ? () => c.wallMs() : () => Date.now();
    this.monoMs = c ? () => c.monotonicMs() : () => performance.now();
  }

  /** Schedules every job (idempotent). */
  start(): void {
    if (this.stopped || this.tasks.size > 0) return;
    const log = this.o.log;
    for (const job of this.o.jobs) {
      let schedule: CronSchedule;
      try {
        schedule = new CronSchedule(job.cron, job.timezone);
      } catch (err) {
        // The config was validated; only an expression or zone this Node.js reads differently gets here.
        log.error({ job: job.name, cron: job.cron, timezone: job.timezone, error: (err as Error).message }, 'job could not be scheduled');
        continue;
      }
      const t: Task = { job, schedule, expected: schedule.next(this.wallMs()), timer: undefined, armedWall: 0, armedMono: 0, busy: 0, heldBy: undefined };
      this.tasks.set(job.name, t);
      this.arm(t);
    }
    if (this.o.jobs.length > 0) log.info({ jobs: this.o.jobs.map((j) => j.name) }, 'jobs scheduled (run by the active leader only)');
  }

  private arm(t: Task): void {
    if (this.stopped || t.expected === undefined) return;
    t.armedWall = this.wallMs();
    t.armedMono = this.monoMs();
    const delay = Math.min(t.heldBy !== undefined ? HELD_RECHECK_MS : MAX_TIMER_MS, Math.max(0, t.expected - t.armedWall));
    t.timer = setTimeout(() => this.beat(t), delay);
  }

  /**
   * The timer of a job woke: fire the slot it waited for if it is due, and wait for the
   * next one. "Now" is taken to its second, as node-cron does. The wall clock's step
   * since the timer was set (how much further, or less far, it moved than the
   * monotonic clock) decides what happens to slots it skipped (the header says why):
   *   - on time (at most MISSED_TOLERANCE_MS late): the newest due slot fires;
   *   - later than that after a step forward of up to CATCH_UP_MAX_STEP_MS: the newest
   *     skipped slot fires once; after a larger step nothing fires at this wake, and the
   *     next slot is at least CORRECTION_GRACE_MS (or a period) on;
   *   - later than that without a step (a busy process): missed, logged;
   *   - the clock was set back: the timer aims at the first slot after the new time and
   *     after the newest slot the cluster granted (earlier than the slot it waited for
   *     when the step went back past slots; later when that slot was granted already);
   *   - while it waits past a granted slot that way, and `quorumd jobs reset` withdrew
   *     that grant: the timer aims at the first slot after the new time and after the
   *     reset's floor (found within HELD_RECHECK_MS).
   * Only a step of more than MISSED_TOLERANCE_MS counts: NTP's slewing and a timer that
   * wakes a millisecond early are not steps.
   */
  private beat(t: Task): void {
    t.timer = undefined;
    if (this.stopped) return;
    const log = this.o.log;
    const wall = this.wallMs();
    const stepMs = wall - t.armedWall - (this.monoMs() - t.armedMono);
    const now = Math.floor(wall / 1000) * 1000;
    let slot = t.expected;
    if (slot !== undefined && slot > now && stepMs < -MISSED_TOLERANCE_MS) {
      // Not due, and the clock was set back: the first slot from now on (next() is
      // strictly after the second it is given), after the newest one granted in the
      // cluster (a slot never runs twice, and asking for one would only be refused).
      const granted = jobGrantedThrough(this.o.host.record(t.job.name));
      const first = t.schedule.next(Math.max(now - 1000, granted));
      // Said once per step (the next wake measures from here), also when the awaited
      // slot stays: then the job pauses until the slots granted before come again.
      log.warn(
        { job: t.job.name, stepMs: Math.round(stepMs), awaited: isoUtc(slot), next: first !== undefined ? isoUtc(first) : null, ...(granted >= now ? { lastGranted: isoUtc(granted) } : {}) },
        `the wall clock was set back ${Math.round(-stepMs / 1000)} s: the job's next slot is ${first !== undefined ? isoUtc(first) : 'none'}` +
          (granted >= now ? ` (the first after ${isoUtc(granted)}, the newest slot granted in the cluster: no slot runs twice)` : ''),
      );
      slot = first;
      t.heldBy = granted >= now ? granted : undefined;
    } else if (slot !== undefined && slot > now && t.heldBy !== undefined) {
      const granted = jobGrantedThrough(this.o.host.record(t.job.name));
      if (granted < t.heldBy) {
        // The grant it waited past was withdrawn (a reset): the slots after the reset's floor run.
        const first = t.schedule.next(Math.max(now - 1000, granted));
        log.info(
          { job: t.job.name, withdrawn: isoUtc(t.heldBy), next: first !== undefined ? isoUtc(first) : null },
          `the job's claim of ${isoUtc(t.heldBy)} was withdrawn (quorumd jobs reset): its next slot is ${first !== undefined ? isoUtc(first) : 'none'}`,
        );
        slot = first;
        t.heldBy = granted >= now ? granted : undefined;
      }
    }
    if (slot !== undefined && slot <= now) {
      t.heldBy = undefined;
      const newest = lastSlotUpTo(t.schedule, slot, now);
      const late = now - newest;
      const stepped = stepMs > MISSED_TOLERANCE_MS;
      if (stepped && stepMs > CATCH_UP_MAX_STEP_MS) {
        // Not even a slot that looks on time now: after a step of years, "on time" is a
        // coincidence of where the step landed, and a slot claimed on a clock that is
        // wrong refuses every slot up to it. The next slot is the first at least
        // CORRECTION_GRACE_MS (or one period of the job, if shorter) after this notice:
        // the step may have been noticed seconds before a slot of the wrong time (at the
        // minute's look, or at a wake a busy process made late), and a bad step that is
        // corrected within that grace claims nothing (the next wake sees the correction).
        const upcoming = t.schedule.next(newest);
        const grace = upcoming === undefined ? 0 : Math.min(CORRECTION_GRACE_MS, upcoming - newest);
        const first = upcoming === undefined ? undefined : t.schedule.next(now + grace - 1000);
        log.warn(
          { job: t.job.name, from: isoUtc(slot), until: isoUtc(newest), stepMs: Math.round(stepMs), next: first !== undefined ? isoUtc(first) : null },
          `the wall clock stepped forward ${Math.round(stepMs / 1000)} s, more than ${CATCH_UP_MAX_STEP_MS / 3_600_000} h: taken as the correction of a wrong clock, the job's slots it skipped are not run; the next slot is ${first !== undefined ? isoUtc(first) : 'none'}`,
        );
        t.expected = first;
        this.arm(t);
        return;
      } else if (late <= MISSED_TOLERANCE_MS || stepped) {
        if (newest > slot) {
          if (stepped) {
            log.warn(
              { job: t.job.name, from: isoUtc(slot), until: isoUtc(newest), stepMs: Math.round(stepMs) },
              `the wall clock stepped forward ${Math.round(stepMs / 1000)} s: the job's slots it skipped (from ${isoUtc(slot)}) are not run; the newest, ${isoUtc(newest)}, is due now (the active leader runs it)`,
            );
          }
          else this.logMissed(t, slot, newest);
        } else if (late > MISSED_TOLERANCE_MS) {
          log.warn({ job: t.job.name, slot: isoUtc(newest), stepMs: Math.round(stepMs) }, `the wall clock stepped forward ${Math.round(stepMs / 1000)} s past the job's slot: it is due now, ${Math.round(late / 1000)} s late (the active leader runs it)`);
        }
        this.fire(t, newest);
      } else {
        this.logMissed(t, slot, t.schedule.next(newest) ?? newest + 1);
      }
      slot = t.schedule.next(newest);
    }
    t.expected = slot;
    this.arm(t);
  }

  /** Logs the slots from `from` up to (not including) `until` as missed: one by one up to MAX_MISSED_LOGGED, then one line. */
  private logMissed(t: Task, from: number, until: number): void {
    const log = this.o.log;
    let slot: number | undefined = from;
    for (let n = 0; slot !== undefined && slot < until; n++) {
      if (n === MAX_MISSED_LOGGED) {
        log.warn({ job: t.job.name, from: isoUtc(slot), until: isoUtc(until) }, 'job slots missed from this slot until now (the process was stopped or busy); the next slot runs as scheduled');
        return;
      }
      log.warn({ job: t.job.name, slot: isoUtc(slot) }, 'job slot missed (the process was busy)');
      slot = t.schedule.next(slot);
    }
  }

  /** A slot is due: unless it would overlap (overlap: skip), ask the coordinator and run it if granted. */
  private fire(t: Task, slot: number): void {
    const job = t.job;
    const slotIso = isoUtc(slot);
    if (t.busy > 0 && job.overlap === 'skip') {
      this.o.log.warn({ job: job.name, slot: slotIso }, 'job still running from an earlier slot; this slot is skipped (overlap: skip)');
      return;
    }
    t.busy++;
    const key = `${job.name}:${slotIso}`;
    void this.coordinator
      .shouldRun(key)
      .then(async (allowed) => {
        if (allowed) await this.run(job, slot, key);
      })
      .catch((err: unknown) => this.o.log.error({ job: job.name, slot: slotIso, error: (err as Error)?.message ?? String(err) }, 'job slot failed'))
      .finally(() => {
        this.coordinator.onComplete(key);
        t.busy--;
      });
  }

  /** Runs a slot the coordinator allowed. */
  private async run(job: JobConfig, slot: number, key: string): Promise<void> {
    const slotIso = isoUtc(slot);
    const lead = this.coordinator.grant(key);
    const log = this.o.log;
    if (!lead) {
      // Only reachable if a slot were run without asking the coordinator.
      log.error({ job: job.name, slot: slotIso }, 'job slot has no grant; not run');
      return;
    }
    if (this.stopped) return;
    const fields = { job: job.name, slot: slotIso, term: lead.term, token: lead.token };
    const local: LocalRun = { key, slot, shell: undefined };
    let set = this.running.get(job.name);
    if (!set) this.running.set(job.name, (set = new Set()));
    set.add(local);
    const startedAtMs = this.wallMs();
    log.info(fields, 'job run start');
    local.shell = runShell({
      command: job.command,
      env: {
        QUORUMD_JOB: job.name,
        QUORUMD_SLOT: slotIso,
        QUORUMD_SLOT_MS: String(slot),
        QUORUMD_TOKEN: String(lead.token),
        QUORUMD_TERM: String(lead.term),
        QUORUMD_NODE: this.o.node,
        QUORUMD_CLUSTER: this.o.cluster,
        ...(this.o.apiUrl !== undefined ? { QUORUMD_API_URL: this.o.apiUrl } : {}),
        ...this.o.apiAuthEnv,
      },
      timeoutMs: job.timeoutMs,
      ...(this.o.killGraceMs !== undefined ? { killGraceMs: this.o.killGraceMs } : {}),
      log,
      fields,
      what: 'job',
    });
    const r = await local.shell.done;
    set.delete(local);
    const outcome: JobReport['outcome'] = r.spawnError !== undefined ? 'error' : r.timedOut ? 'timeout' : r.code === 0 ? 'ok' : 'failed';
    const rec = { ...fields, outcome, ms: r.ms, code: r.code, signal: r.signal };
    if (outcome === 'ok') log.info(rec, 'job run done');
    else log.error(rec, 'job run failed');
    this.finished.push({ job: job.name, slot, token: lead.token, result: r });
    if (this.finished.length > 100) this.finished.shift();
    const report: JobReport = {
      job: job.name,
      slot,
      outcome,
      code: r.code ?? -1,
      signal: r.signal ?? '',
      startedAtMs,
      durationMs: r.ms,
    };
    await new Promise<void>((resolve) =>
      this.o.host.report(report, (res) => {
        if (res.status !== 200) log.warn({ ...fields, status: res.status, error: res.error }, 'job result not recorded in the replicated table (quorumd jobs shows it as pending)');
        resolve();
      }),
    );
  }

  /** The jobs with their last run (replicated) and next run (local clock). */
  view(): JobView[] {
    return this.o.jobs.map((job) => {
      const task = this.tasks.get(job.name);
      const rec = this.o.host.record(job.name);
      // After the newest granted slot as well: a slot at or before it is refused (a
      // clock set back, or a leader whose clock was ahead), so it is not the next run.
      const next = !this.stopped && task ? task.schedule.next(Math.max(this.wallMs(), jobGrantedThrough(rec))) : undefined;
      const here = this.running.get(job.name);
      let last: JobView['last'] = null;
      if (rec && rec.claim !== null) {
        const c = rec.claim;
        const r = rec.result !== null && rec.result.slot === c.slot ? rec.result : null;
        const runningHere = [...(here ?? [])].some((x) => x.slot === c.slot);
        last = {
          slot: isoUtc(c.slot),
          node: this.o.host.nodeName(c.node),
          term: c.term,
          token: c.token,
          result: r ? r.outcome : runningHere ? 'running' : 'pending',
          exitCode: r && r.code >= 0 ? r.code : null,
          signal: r && r.signal !== '' ? r.signal : null,
          startedAt: r ? isoUtc(r.startedAtMs) : null,
          durationMs: r ? r.durationMs : null,
        };
      }
      return {
        name: job.name,
        cron: job.cron,
        timezone: job.timezone,
        overlap: job.overlap,
        timeoutMs: job.timeoutMs,
        command: job.command,
        nextRun: next !== undefined ? isoUtc(next) : null,
        runningHere: here?.size ?? 0,
        last,
        reset: rec?.reset
          ? {
              at: isoUtc(rec.reset.at),
              floor: isoUtc(rec.reset.floor),
              node: this.o.host.nodeName(rec.reset.node),
              term: rec.reset.term,
              withdrawn: { slot: isoUtc(rec.reset.withdrawn.slot), node: this.o.host.nodeName(rec.reset.withdrawn.node), term: rec.reset.withdrawn.term },
            }
          : null,
      };
    });
  }

  /** Results of runs on this node, newest last (at most 100). */
  get localRuns(): ReadonlyArray<{ job: string; slot: number; token: number; result: ShellResult }> {
    return this.finished;
  }

  /**
   * Stops scheduling; running jobs get SIGTERM (SIGKILL after the grace) and are
   * waited for, so that nothing the daemon started outlives it unnoticed.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.tasks.values()) {
      if (t.timer) clearTimeout(t.timer);
      t.timer = undefined;
    }
    const waits: Array<Promise<unknown>> = [];
    for (const set of this.running.values()) {
      for (const r of set) {
        r.shell?.kill('node stopping');
        if (r.shell) waits.push(r.shell.done);
      }
    }
    await Promise.all(waits);
  }
}

/**
 * The newest slot of `s` in [from, now] (`from` is a slot at or before `now`). Searched
 * in windows back from `now` that double (a few dozen calls of next() for a step of
 * years), then walked forward inside the window.
 */
function lastSlotUpTo(s: CronSchedule, from: number, now: number): number {
  for (let w = 1000; ; w *= 2) {
    const lo = Math.max(from - 1000, now - w);
    let x = s.next(lo);
    if (x !== undefined && x <= now) {
      for (let y = s.next(x); y !== undefined && y <= now; y = s.next(x)) x = y;
      return x;
    }
    if (lo <= from - 1000) return from;
  }
}
