/**
 * Leader-only scheduled jobs (issue 8, docs/jobs.md): node-cron 4 schedules every
 * configured job on every node; its distributed run coordinator (SlotCoordinator,
 * coordinator.ts) lets a node run a slot only as the active leader holding a committed
 * claim for that slot. The run is a shell command (daemon/shell.ts) with the slot and
 * the leadership's fencing token in its environment; how it ended is replicated
 * (`job.done`), so `quorumd jobs` on any node shows the last run, its node and result.
 *
 * Time: node-cron fires on the wall clock (cron is wall-clock time by nature); the
 * slot's identity is its scheduled time, which every node computes alike. A board
 * whose clock is off by more than a slot period could claim a slot "late" or "early";
 * the claim rule still grants each slot at most once and never a slot at or before
 * one granted earlier. Keep the boards on NTP.
 */
import { createTask, type ScheduledTask, type TaskContext } from 'node-cron';
import type { JobConfig } from '../config/jobs.ts';
import { runShell, type RunningShell, type ShellLog, type ShellResult } from '../shell.ts';
import { SlotCoordinator, type JobsHost, type JobReport } from './coordinator.ts';

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

export class JobScheduler {
  readonly coordinator: SlotCoordinator;
  private readonly tasks = new Map<string, ScheduledTask>();
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
    const cronLogger = {
      info: (m: string) => log.debug({}, `node-cron: ${m}`),
      warn: (m: string) => log.warn({}, `node-cron: ${m}`),
      error: (m: string | Error, e?: Error) => log.error({ error: (e ?? m) instanceof Error ? (e ?? (m as Error)).message : String(m) }, 'node-cron error'),
      debug: (m: string | Error) => log.debug({}, `node-cron: ${m instanceof Error ? m.message : m}`),
    };
    for (const job of this.o.jobs) {
      const task = createTask(job.cron, (ctx: TaskContext) => this.run(job, ctx), {
        name: job.name,
        timezone: job.timezone,
        noOverlap: job.overlap === 'skip',
        distributed: true,
        runCoordinator: this.coordinator,
        logger: cronLogger,
      });
      task.on('execution:overlap', (ctx) => {
        if (job.overlap === 'skip') log.warn({ job: job.name, slot: ctx.date.toISOString() }, 'job still running from an earlier slot; this slot is skipped (overlap: skip)');
      });
      task.on('execution:missed', (ctx) => log.warn({ job: job.name, slot: ctx.date.toISOString() }, 'job slot missed (the process was busy or the clock jumped)'));
      this.tasks.set(job.name, task);
      void Promise.resolve(task.start()).catch((err: Error) => log.error({ job: job.name, error: err.message }, 'job could not be scheduled'));
    }
    if (this.o.jobs.length > 0) log.info({ jobs: this.o.jobs.map((j) => j.name) }, 'jobs scheduled (run by the active leader only)');
  }

  /** node-cron calls this for a slot the coordinator allowed. */
  private async run(job: JobConfig, ctx: TaskContext): Promise<void> {
    const slot = ctx.date.getTime();
    const slotIso = ctx.date.toISOString();
    const key = `${job.name}:${slotIso}`;
    const lead = this.coordinator.grant(key);
    const log = this.o.log;
    if (!lead) {
      // Only reachable if node-cron ran a slot without asking the coordinator.
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
      const next = !this.stopped && task ? task.getNextRun() : null;
      const rec = this.o.host.record(job.name);
      const here = this.running.get(job.name);
      let last: JobView['last'] = null;
      if (rec) {
        const c = rec.claim;
        const r = rec.result !== null && rec.result.slot === c.slot ? rec.result : null;
        const runningHere = [...(here ?? [])].some((x) => x.slot === c.slot);
        last = {
          slot: new Date(c.slot).toISOString(),
          node: this.o.host.nodeName(c.node),
          term: c.term,
          token: c.token,
          result: r ? r.outcome : runningHere ? 'running' : 'pending',
          exitCode: r && r.code >= 0 ? r.code : null,
          signal: r && r.signal !== '' ? r.signal : null,
          startedAt: r ? new Date(r.startedAtMs).toISOString() : null,
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
        nextRun: next ? next.toISOString() : null,
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
      try {
        await t.destroy();
      } catch {
        /* already destroyed */
      }
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
