/**
 * Who runs a slot: the run coordinator of the job scheduler (scheduler.ts; the
 * interface is node-cron 4's `RunCoordinator`), answered through the replicated log.
 * The scheduler asks on every node at every fire time; the answer is yes on one node
 * at most, and only if
 *
 *  1. this node is the *active* leader now (docs/fencing.md: with a `fencing:` section the
 *     activation gate is open; without, its term's first entry is committed), and
 *  2. its `job.claim` for `job:slot` was committed and applied with ok — the state
 *     machine grants a slot only if it is later than every slot of the job granted
 *     before (src/kv/state-machine.ts), so a slot claimed by an earlier leader is never
 *     run again, and a claim proposed in an older term than the newest activation is
 *     refused, and
 *  3. when the grant arrives, this node is still active with the same term and token.
 *
 * Anything else is "no": not active, claimed before, not proposed (503), outcome
 * unknown (504: the claim may be committed; running would risk a second run) — the
 * rule is at most once, and a slot lost in a failover stays lost. The claim is proposed
 * by the leader itself and never forwarded (EngineRuntime.jobClaim).
 *
 * The slot key is `<job name>:<slot ISO time>` (node-cron's format; job names have no
 * ':'). The grant (term, token) is kept until the run starts, for
 * the job's environment.
 */
import type { RunCoordinator } from 'node-cron';
import type { JobRecord } from '../../src/kv/index.ts';
import type { ClientCallback } from '../runtime/results.ts';
import { isoUtc } from '../utc-text.ts';

export interface Leadership {
  term: number;
  /** Fencing token of the leadership (QUORUMD_TOKEN). */
  token: number;
}

export interface JobReport {
  job: string;
  slot: number;
  outcome: 'ok' | 'failed' | 'timeout' | 'error';
  code: number;
  signal: string;
  startedAtMs: number;
  durationMs: number;
}

/** What the jobs need of a node (EngineBackend implements it over an EngineRuntime). */
export interface JobsHost {
  /** This node's leadership while it is the active leader now, else undefined. */
  activeLeadership(): Leadership | undefined;
  /** Proposes `job.claim` (EngineRuntime.jobClaim): 200 granted, 409 not granted, 503 not proposed, 504 unknown. */
  claim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void;
  /** Proposes `job.done` (forwarded to the leader if need be). */
  report(r: JobReport, cb: ClientCallback): void;
  /** The replicated record of a job as this node applied it. */
  record(job: string): JobRecord | undefined;
  /** A member's name by node id. */
  nodeName(id: number): string;
}

export interface CoordinatorLog {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export type Decision =
  | { run: true; lead: Leadership }
  | { run: false; reason: 'not-active' | 'claimed' | 'not-granted' | 'unknown' | 'lost-activity' | 'bad-key'; detail: string };

/** Counters of decisions on this node (for /v1/jobs and tests). */
export interface CoordinatorStats {
  granted: number;
  notActive: number;
  claimedBefore: number;
  notGranted: number;
  unknown: number;
  lostActivity: number;
}

/** Parses a slot key `<name>:<ISO time>`; undefined when it is not one. */
export function parseSlotKey(key: string): { job: string; slot: number } | undefined {
  const i = key.indexOf(':');
  if (i <= 0) return undefined;
  const slot = Date.parse(key.slice(i + 1));
  if (!Number.isSafeInteger(slot) || slot < 0) return undefined;
  return { job: key.slice(0, i), slot };
}

/**
 * A granted slot this far ahead of a slot being fired now means that some claimer's
 * wall clock was ahead: the coordinator warns (once per such claim).
 */
export const FUTURE_CLAIM_WARN_MS = 60_000;

export class SlotCoordinator implements RunCoordinator {
  private readonly grants = new Map<string, Leadership>();
  private warnedFuture = 0;
  readonly stats: CoordinatorStats = { granted: 0, notActive: 0, claimedBefore: 0, notGranted: 0, unknown: 0, lostActivity: 0 };

  constructor(
    private readonly host: JobsHost,
    private readonly log: CoordinatorLog,
  ) {}

  /** May this node run the slot `key`? */
  shouldRun(key: string): Promise<boolean> {
    return new Promise((resolve) =>
      this.decide(key, (d) => {
        if (d.run) this.grants.set(key, d.lead);
        resolve(d.run);
      }),
    );
  }

  /** The run of `key` finished (or was not started). */
  onComplete(key: string): void {
    this.grants.delete(key);
  }

  /** The grant of a slot that shouldRun allowed (until onComplete). */
  grant(key: string): Leadership | undefined {
    return this.grants.get(key);
  }

  /**
   * The whole decision for one slot key, with its reason. Callback style, like the
   * runtime's client API, so that the simulator drives it in virtual time
   * (test/daemon/jobs); `cb` is called exactly once, possibly synchronously.
   */
  decide(key: string, cb: (d: Decision) => void): void {
    const k = parseSlotKey(key);
    if (!k) {
      this.log.warn({ key }, 'job slot key not understood; not run');
      return cb({ run: false, reason: 'bad-key', detail: `slot key ${JSON.stringify(key)}: expected <job>:<ISO time>` });
    }
    const fields = { job: k.job, slot: isoUtc(k.slot) };
    const lead = this.host.activeLeadership();
    if (!lead) {
      this.stats.notActive++;
      return cb({ run: false, reason: 'not-active', detail: 'this node is not the active leader' });
    }
    // Known from the local state already: no log entry needed to learn "no".
    const rec = this.host.record(k.job);
    if (rec && rec.claim === null && rec.reset && rec.reset.floor >= k.slot) {
      // Withdrawn by `quorumd jobs reset`: slots up to its floor are never granted (one may have run before the reset).
      this.stats.claimedBefore++;
      const detail = `slot is at or before ${isoUtc(rec.reset.floor)}, the floor of the job's reset by ${this.host.nodeName(rec.reset.node)}`;
      this.log.info({ ...fields, floor: isoUtc(rec.reset.floor) }, 'job slot at or before the reset floor; not run');
      return cb({ run: false, reason: 'claimed', detail });
    }
    if (rec && rec.claim !== null && rec.claim.slot >= k.slot) {
      this.stats.claimedBefore++;
      if (rec.claim.slot - k.slot > FUTURE_CLAIM_WARN_MS && this.warnedFuture !== rec.claim.index) {
        // A claimer whose wall clock ran ahead granted itself a future slot: every slot up
        // to it is now refused (at most once). Say so once per such claim.
        this.warnedFuture = rec.claim.index;
        this.log.warn(
          { ...fields, claimed: isoUtc(rec.claim.slot), by: this.host.nodeName(rec.claim.node), aheadMs: rec.claim.slot - k.slot },
          `job slots are refused until ${isoUtc(rec.claim.slot)}: ${this.host.nodeName(rec.claim.node)} claimed that slot with a clock ${Math.round((rec.claim.slot - k.slot) / 1000)} s ahead of this node's; check NTP on both, then \`quorumd jobs reset ${k.job}\` withdraws that claim (docs/jobs.md, Time)`,
        );
      }
      const detail = `slot already claimed by ${this.host.nodeName(rec.claim.node)} (term ${rec.claim.term})`;
      this.log.info({ ...fields, by: this.host.nodeName(rec.claim.node), term: rec.claim.term }, 'job slot claimed before; not run again');
      return cb({ run: false, reason: 'claimed', detail });
    }
    this.host.claim(k.job, k.slot, lead, (r) => {
      if (r.status === 200) {
        const now = this.host.activeLeadership();
        if (!now || now.term !== lead.term || now.token !== lead.token) {
          this.stats.lostActivity++;
          this.log.warn({ ...fields, term: lead.term, token: lead.token }, 'job slot granted, but this node is no longer the active leader of that term; not run');
          return cb({ run: false, reason: 'lost-activity', detail: 'granted after this node stopped being the active leader' });
        }
        this.stats.granted++;
        return cb({ run: true, lead });
      }
      if (r.status === 409) {
        this.stats.claimedBefore++;
        this.log.info({ ...fields, holder: r.holder, error: r.error }, 'job slot not granted; not run');
        return cb({ run: false, reason: 'claimed', detail: r.error ?? 'not granted' });
      }
      if (r.status === 504) {
        this.stats.unknown++;
        this.log.warn({ ...fields, error: r.error }, 'job claim outcome unknown; slot not run (at most once)');
        return cb({ run: false, reason: 'unknown', detail: r.error ?? 'outcome unknown' });
      }
      this.stats.notGranted++;
      this.log.warn({ ...fields, status: r.status, error: r.error }, 'job claim not committed; slot not run');
      cb({ run: false, reason: 'not-granted', detail: r.error ?? `status ${r.status}` });
    });
  }
}
