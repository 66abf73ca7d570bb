/**
 * The `jobs:` section of the node config: leader-only scheduled jobs (daemon/jobs).
 * Every node lists the same jobs; only the active leader runs a slot, after the
 * replicated log granted it that slot (docs/jobs.md). Every key is documented at its
 * declaration, with its default and why.
 */
import { cronRangeProblem, nodeCron } from '../jobs/node-cron.ts';
import './zod.ts'; // before zod: no JIT (see there)
import * as z from 'zod';

/** Job names: like member names, safe in logs, environment and the replicated table; no ':' (node-cron's slot keys use it). */
const JOB_NAME = /^[a-z0-9][a-z0-9_-]{0,47}$/;

/** What a cron expression looks like, for error messages. */
export const CRON_HELP = 'expected 5 fields "minute hour day-of-month month day-of-week" or 6 with seconds first, e.g. "*/15 * * * *" or "0 30 2 * * *"';

/**
 * Why `expr` is not a cron expression node-cron accepts, or undefined when it is.
 * node-cron's `validate` decides; its detailed validation names the bad field.
 */
export function cronProblem(expr: string): string | undefined {
  const range = cronRangeProblem(expr);
  if (range !== undefined) return range;
  if (nodeCron().validate(expr)) return undefined;
  let detail = '';
  try {
    const d = nodeCron().validateDetailed(expr);
    detail = d.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  } catch (err) {
    detail = (err as Error).message;
  }
  return detail || 'not a cron expression';
}

/** True when `tz` is an IANA time zone this Node.js knows (e.g. "UTC", "Europe/Berlin"). */
export function knownTimeZone(tz: string): boolean {
  // Every Node.js knows UTC (the default): the first Intl.DateTimeFormat of a process
  // costs ~20 ms of CPU (ICU's zone data), a tenth of a node's start-up (issue 14).
  if (tz === 'UTC') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const jobSchema = () => z
  .strictObject({
    /** Unique name: 1-48 characters a-z, 0-9, '-', '_'. Shown by `quorumd jobs`, given to the command as QUORUMD_JOB. Required. */
    name: z
      .string({ error: 'expected a job name (string)' })
      .regex(JOB_NAME, { error: "expected a job name of 1-48 characters a-z, 0-9, '-' and '_', starting with a letter or digit" }),
    /**
     * When to run: a cron expression as node-cron 4 reads it, 5 fields (minute hour
     * day-of-month month day-of-week) or 6 with seconds first ("* * * * * *" = every
     * second). Required. Checked with node-cron's `validate`.
     */
    cron: z.string({ error: `expected a cron expression (string): ${CRON_HELP}` }),
    /**
     * Shell command (run by /bin/sh -c, in its own process group). Its environment has
     * QUORUMD_JOB, QUORUMD_SLOT (the slot's scheduled time, ISO 8601 UTC),
     * QUORUMD_SLOT_MS (the same in ms since the epoch), QUORUMD_TOKEN (the leadership's
     * fencing token: pass it to what you drive), QUORUMD_TERM, QUORUMD_NODE,
     * QUORUMD_CLUSTER, QUORUMD_API_URL (this node's API: `quorumd kv put ...` works
     * as is). stdout/stderr go to the log. Required.
     */
    command: z.string({ error: 'expected a shell command (string)' }).min(1, { error: 'expected a non-empty shell command' }),
    /**
     * A run still going after this many ms is killed (SIGTERM to its process group,
     * SIGKILL 2 s later) and reported as `timeout`. Default 600000 (10 min): long
     * enough for a report upload over a slow uplink, short enough that a hung run does
     * not block its job (overlap: skip) for long. Keep it below the job's period.
     */
    timeoutMs: z
      .number({ error: 'expected milliseconds: an integer 100..86400000' })
      .int({ error: 'expected milliseconds: an integer 100..86400000' })
      .min(100, { error: 'expected milliseconds: an integer 100..86400000' })
      .max(86_400_000, { error: 'expected milliseconds: an integer 100..86400000' })
      .default(600_000),
    /**
     * IANA time zone of the expression ("0 2 * * *" = 02:00 there). Default UTC: the
     * same on every board whatever its local setting, and no DST surprises.
     */
    timezone: z.string({ error: 'expected an IANA time zone such as UTC or Europe/Berlin' }).default('UTC'),
    /**
     * A slot that comes while the previous run of this job still runs on this node:
     * `skip` (default) does not start it — one run at a time, the usual wish for
     * meters and reports; `allow` starts it alongside. Either way every slot is
     * granted at most once in the cluster. (A run that outlives its leader's activity
     * is not stopped: the new leader may start the next slot while it ends; the
     * fencing token tells them apart.)
     */
    overlap: z.enum(['skip', 'allow'], { error: 'expected "skip" or "allow"' }).default('skip'),
  })
  .superRefine((j, ctx) => {
    const p = cronProblem(j.cron);
    if (p !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: `job ${JSON.stringify(j.name)}: ${JSON.stringify(j.cron)} is not a valid cron expression (${p}); ${CRON_HELP}` });
    }
    if (!knownTimeZone(j.timezone)) {
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: `job ${JSON.stringify(j.name)}: expected an IANA time zone such as UTC or Europe/Berlin, got ${JSON.stringify(j.timezone)}` });
    }
  });

export const jobsSchema = () => z
  .array(jobSchema(), { error: 'expected a list of jobs ({name, cron, command})' })
  .max(64, { error: 'expected at most 64 jobs' })
  .superRefine((jobs, ctx) => {
    const seen = new Set<string>();
    jobs.forEach((j, i) => {
      if (seen.has(j.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `expected a unique job name; ${JSON.stringify(j.name)} appears twice` });
      seen.add(j.name);
    });
  });

export type JobConfig = z.infer<ReturnType<typeof jobSchema>>;
