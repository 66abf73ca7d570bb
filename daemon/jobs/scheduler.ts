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
 * The firing rules are node-cron 4's, which this scheduler replaced (cron.ts says why):
 * a timer wakes at the slot; a slot fired more than MISSED_TOLERANCE_MS late, or after
 * the next slot of the job was due, is missed (logged, not run); with `overlap: skip` a
 * slot that comes while the job's previous slot is still being claimed or run is
 * skipped (logged).
 */
import type { JobConfig } from '../config/jobs.ts';
import { runShell, type RunningShell, type ShellLog, type ShellResult } from '../shell.ts';
import { SlotCoordinator, type JobsHost, type JobReport } from './coordinator.ts';
import { CronSchedule } from './cron.ts';
import { isoUtc } from '../utc-text.ts';

/** A slot fired later than this after its time is missed (node-cron's default tolerance). */
export const MISSED_TOLERANCE_MS = 1000;
/** A timer waits at most this long before it looks at the clock again (a clock set forward is noticed by then). */
const MAX_TIMER_MS = 3_600_000;
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
}

/** A job as `GET /v1/jobs` and `quorumd jobs` show it. */
export interface JobView {
  name: string;
  cron: string;
  timezone: string;
  overlap: 'skip' | 'allow';
  timeoutMs: number;
  command: string;
  /** Next fire time on this node's clock (ISO), null when not scheduled. */
  nextRun: string | null;
  /** Runs of this job in progress on this node. */
  runningHere: number;
  /**
   * The newest slot granted in the cluster (replicated), with how it ended:
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
  /** Slots of this job being claimed or run on this node now. */
  busy: number;
}

export class JobScheduler {
  readonly coordinator: SlotCoordinator;
  private readonly tasks = new Map<string, Task>();
  private readonly running = new Map<string, Set<LocalRun>>();
  private readonly finished: Array<{ job: string; slot: number; token: number; result: ShellResult }> = [];
  private stopped = false;

  constructor(private readonly o: JobSchedulerOptions) {
    this.coordinator = new SlotCoordinator(o.host, o.log);
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
      const t: Task = { job, schedule, expected: schedule.next(Date.now()), timer: undefined, busy: 0 };
      this.tasks.set(job.name, t);
      this.arm(t);
    }
    if (this.o.jobs.length > 0) log.info({ jobs: this.o.jobs.map((j) => j.name) }, 'jobs scheduled (run by the active leader only)');
  }

  private arm(t: Task): void {
    if (this.stopped || t.expected === undefined) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, t.expected - Date.now()));
    t.timer = setTimeout(() => this.beat(t), delay);
  }

  /**
   * The timer of a job woke: fire the slot it waited for if it is on time, log the
   * slots that were missed, and wait for the next one. "Now" is taken to its second,
   * as node-cron does: a slot is on time up to MISSED_TOLERANCE_MS late and before the
   * job's next slot.
   */
  private beat(t: Task): void {
    t.timer = undefined;
    if (this.stopped) return;
    const log = this.o.log;
    const now = Math.floor(Date.now() / 1000) * 1000;
    let slot = t.expected;
    let missed = 0;
    while (slot !== undefined && slot <= now) {
      const next = t.schedule.next(slot);
      const late = now - slot;
      if (late <= MISSED_TOLERANCE_MS && (next === undefined || late < next - slot)) {
        this.fire(t, slot);
        slot = next;
        break;
      }
      if (missed < MAX_MISSED_LOGGED) log.warn({ job: t.job.name, slot: isoUtc(slot) }, 'job slot missed (the process was busy or the clock jumped)');
      missed++;
      slot = next;
      if (missed >= MAX_MISSED_LOGGED && slot !== undefined && slot <= now) {
        // Bounded: the rest up to now are counted in one line.
        const resume = t.schedule.next(now);
        log.warn({ job: t.job.name, from: isoUtc(slot), until: isoUtc(now) }, 'job slots missed from this slot until now (the clock jumped or the process was stopped); the next slot runs as scheduled');
        slot = resume;
        break;
      }
    }
    t.expected = slot;
    this.arm(t);
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
    const startedAtMs = Date.now();
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
      const next = !this.stopped && task ? task.schedule.next(Date.now()) : undefined;
      const rec = this.o.host.record(job.name);
      const here = this.running.get(job.name);
      let last: JobView['last'] = null;
      if (rec) {
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
