/**
 * The replicated state machine behind the daemon's KV and lock API (docs/api.md).
 *
 * The Raft engine calls `apply(index, data)` with every committed Normal entry, in
 * log order; every replica that applies the same entries holds the same state and
 * returns the same results. Nothing here reads a clock or a random source: lock
 * time comes only from the `now` the leader stamped into the command.
 *
 * Keys: each key carries `createIndex` (log index of the put that created it) and
 * `modIndex` (log index of its latest put). Compare-and-set compares `modIndex`:
 * `cas: N` applies only if the key's modIndex is N; `cas: 0` means "must not exist".
 *
 * Locks and fencing tokens: a grant's token is the log index of the entry that
 * granted it. Committed entries have unique indexes, and Raft's State Machine
 * Safety property (Ongaro & Ousterhout 2014, §5.4.3) guarantees that every replica
 * applies the same entry at each index, in index order, whichever leader proposed
 * it. So a grant applied after another always has a larger token — also across
 * leader changes and on every replica — and a token is never handed out twice.
 * An outside resource that remembers the largest token it saw rejects a
 * deposed holder (docs/fencing.md).
 *
 * Time: the state machine's clock is the largest `now` of any applied lock command
 * (`clockMs`); a command whose `now` is smaller is evaluated at `clockMs`, so time
 * inside the state machine never runs backwards even if a new leader's stamp lags.
 * A new leader should stamp `max(its lease-adjusted time, clockMs)`. A holder has
 * expired once the clock reaches `expiresAt` (now ≥ expiresAt).
 */
import { CborWriter, readCbor, type Cbor } from './cbor.ts';
import { utf8Length, type KvUsage } from './quota.ts';
import {
  checkKeyLike,
  decodeCommand,
  KvError,
  MAX_TTL_MS,
  MAX_VALUE_BYTES,
  MIN_TTL_MS,
  FENCE_OUTCOMES,
  LEASE_DIGEST_BYTES,
  MAX_FENCE_REASON,
  JOB_OUTCOMES,
  MAX_SIGNAL_CHARS,
  type Command,
  type FenceOutcomeName,
  type JobOutcomeName,
} from './commands.ts';

export interface KvEntry {
  /** The stored bytes. Shared with the state machine: callers must not mutate them. */
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modIndex: number;
}

export interface LockRecord {
  readonly name: string;
  readonly owner: string;
  /** Fencing token: log index of the grant. */
  readonly token: number;
  readonly ttlMs: number;
  /** Time (on the commands' time line) at which the grant lapses unless renewed. */
  readonly expiresAt: number;
  /**
   * Digest of the holder's secret lease id (commands.ts LEASE_DIGEST_BYTES): only a
   * command carrying it renews or releases the grant. null for a grant made by an
   * entry written before leases (renewed and released by its token, as then).
   */
  readonly lease: Uint8Array | null;
}

/** Whether two lease digests are the same (constant time is not needed: digests are not secret). */
function sameLease(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether a renew/release names grant `cur`: by lease when the grant has one (a token
 * never suffices then: it is public), by token for a grant made before leases.
 */
function namesGrant(cur: LockRecord, cmd: { token?: number; lease?: Uint8Array }): boolean {
  return cur.lease !== null ? sameLease(cur.lease, cmd.lease) : cmd.lease === undefined && cmd.token === cur.token;
}

/**
 * The outcome of applying one entry. `index` of put/del: the key's modify index
 * after a successful command (for del: the log index of the delete, the point at
 * which the key changed), or its current modify index on a failed cas (0 = absent).
 */
export type ApplyResult =
  | { op: 'put'; ok: boolean; index: number }
  | { op: 'del'; ok: boolean; index: number }
  | { op: 'lock.acquire'; ok: true; token: number; ttlMs: number; expiresAt: number }
  | { op: 'lock.acquire'; ok: false; holder: string; token: number; expiresAt: number }
  | { op: 'lock.renew'; ok: true; token: number; expiresAt: number; ttlMs: number }
  | { op: 'lock.renew'; ok: false; reason: 'not-held' | 'expired' | 'wrong-token' | 'wrong-lease' }
  | { op: 'lock.release'; ok: boolean }
  /** ok false: a claim of a term at or below the newest activation (it can never act; not kept). */
  | { op: 'lead.claim'; ok: boolean }
  /** ok false: an activation older than the newest recorded one (kept as it was). */
  | { op: 'lead.active'; ok: boolean }
  | { op: 'fence.record'; ok: true }
  /** ok: the slot is this claim's (index = the claim's log index). */
  | { op: 'job.claim'; ok: true; index: number }
  /**
   * Not granted: `claimed` — this or a later slot of the job was granted before (`claim`
   * is that grant); `stale-leader` — the claimer's term is older than the newest
   * activation or than the job's last grant; `too-many-jobs` — MAX_JOBS other jobs exist.
   */
  | { op: 'job.claim'; ok: false; reason: 'claimed' | 'stale-leader' | 'too-many-jobs'; claim: JobClaim | null; floor?: number }
  /** ok false: no grant of that slot to that node, or a result of that or a later slot is already kept. */
  | { op: 'job.done'; ok: boolean }
  /** The job's latest claim was withdrawn (index = the reset's log index); later claims must be after `floor`. */
  | { op: 'job.reset'; ok: true; index: number; withdrawn: JobClaim; floor: number }
  /**
   * Not withdrawn: `no-record` — no slot of the job was ever granted; `stale-leader` — the
   * proposer's term is older than the newest activation or than the job's record;
   * `not-ahead` — the latest claim (`claim`, null after a reset with no claim since) is
   * not after the leader's clock `now`.
   */
  | { op: 'job.reset'; ok: false; reason: 'no-record' | 'stale-leader' | 'not-ahead'; now: number; claim: JobClaim | null; floor: number | null }
  /**
   * The entry was not applied: undecodable/invalid bytes (counted in
   * `badCommands`, the index is consumed), or an index that does not follow
   * `appliedIndex` (code 'apply-order': a runtime bug; nothing changes).
   */
  | { op: 'error'; ok: false; error: KvError };

const SNAPSHOT_MAGIC = 'quorumd-kv';
/**
 * Version 1: 7 elements. Version 2 adds the leadership/fence table as an 8th; written
 * only when that table is not empty, so older states keep their bytes. Version 3 adds
 * the jobs table as a 9th (with the 8th, possibly empty), written only when a job was claimed.
 * Version 4 has the same 9 elements; its job rows may carry a reset record (job.reset) as
 * a 4th element and an empty claim; written only when some job has a reset record.
 */
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_VERSION_FENCE = 2;
const SNAPSHOT_VERSION_JOBS = 3;
const SNAPSHOT_VERSION_RESET = 4;

/** Jobs kept in the replicated table (a job is a config entry: 256 is far above any real list). */
export const MAX_JOBS = 256;

/** Leadership claims kept (since the newest activation). More means a flapping cluster; the oldest go and `claimsTruncated` is set (a new leader then also waits for the lease bound). */
export const MAX_CLAIMS = 32;
/** Fence records kept in the replicated history (oldest dropped). */
export const MAX_FENCE_HISTORY = 64;

export interface LeaderClaim {
  readonly node: number;
  readonly term: number;
}
export interface LeaderActivation {
  readonly node: number;
  readonly term: number;
  readonly token: number;
}
/** A fence as kept in the replicated history, with the log index that recorded it. */
export interface FenceHistoryRecord {
  readonly index: number;
  readonly target: number;
  readonly by: number;
  readonly term: number;
  readonly outcome: FenceOutcomeName;
  readonly level: number;
  readonly atMs: number;
  readonly reason: string;
}
/** The latest granted slot of a job. */
export interface JobClaim {
  /** Scheduled time of the slot, ms since the Unix epoch. */
  readonly slot: number;
  readonly node: number;
  readonly term: number;
  /** The claimer's fencing token (handed to the job as QUORUMD_TOKEN). */
  readonly token: number;
  /** Log index of the claim. */
  readonly index: number;
}
/** How the latest reported run of a job ended. */
export interface JobResult {
  readonly slot: number;
  readonly node: number;
  readonly outcome: JobOutcomeName;
  /** Exit code, -1 if none. */
  readonly code: number;
  readonly signal: string;
  readonly startedAtMs: number;
  readonly durationMs: number;
  /** Log index of the report. */
  readonly index: number;
}
/**
 * The newest withdrawal of a job's claim (`quorumd jobs reset`): the active leader `node`
 * of term `term` withdrew claim `withdrawn` because its slot lay after the leader's wall
 * clock `at`. Later claims must be after `floor` (= `at`, or an earlier reset's floor if
 * that is later), so no slot at or before the reset is granted twice.
 */
export interface JobReset {
  readonly at: number;
  readonly floor: number;
  readonly node: number;
  readonly term: number;
  /** Log index of the reset. */
  readonly index: number;
  readonly withdrawn: JobClaim;
}
export interface JobRecord {
  readonly name: string;
  /** The latest granted slot; null after a reset until the next grant. */
  readonly claim: JobClaim | null;
  readonly result: JobResult | null;
  /** The newest reset of the job, if it was ever reset (kept until the next reset). */
  readonly reset?: JobReset;
}

/**
 * The slot a new claim of the job must be after: its latest granted slot, or the floor
 * of its newest reset (whichever is later); -Infinity for a job with no record.
 */
export function jobGrantedThrough(r: JobRecord | undefined): number {
  if (!r) return -Infinity;
  return Math.max(r.claim?.slot ?? -Infinity, r.reset?.floor ?? -Infinity);
}

/** Who may still act, as far as the committed log tells a leader of term `term` (see commands.ts lead.claim). */
export interface Suspects {
  /** Nodes that claimed leadership in a term below `term`, since the newest activation (included). */
  nodes: number[];
  /** Claims were dropped (more than MAX_CLAIMS): some earlier leader is unknown. */
  unknown: boolean;
}

/** The newest term that wrote a job's record (its claim or its reset); 0 for none. */
function recordTerm(r: JobRecord | undefined): number {
  return Math.max(r?.claim?.term ?? 0, r?.reset?.term ?? 0);
}

/** Deterministic total order for keys (UTF-16 code units; the same on every replica). */
function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class KvStateMachine {
  private readonly data = new Map<string, KvEntry>();
  private readonly locks = new Map<string, LockRecord>();
  private applied = 0;
  private clock = 0;
  private bad = 0;
  private claims: LeaderClaim[] = [];
  private claimsTruncated = false;
  private lastActive: LeaderActivation | null = null;
  private fences: FenceHistoryRecord[] = [];
  private readonly jobTable = new Map<string, JobRecord>();
  /** Keys + lock records, and their bytes (key, value, lock name and owner): what quotas bound (src/kv/quota.ts). */
  private use: KvUsage = { keys: 0, bytes: 0 };

  /** Keys (and lock records) held and their bytes. */
  usage(): KvUsage {
    return { ...this.use };
  }

  /** usage().bytes without the copy (asked on every apply while a snapshot may be due). */
  get usedBytes(): number {
    return this.use.bytes;
  }

  /** Index of the last entry applied (or skipped as a no-op); 0 before the first. */
  get appliedIndex(): number {
    return this.applied;
  }

  /** The state machine's time: the largest `now` of any applied lock command. */
  get clockMs(): number {
    return this.clock;
  }

  /** Entries that could not be decoded and were applied as no-ops. */
  get badCommands(): number {
    return this.bad;
  }

  /** The newest recorded activation (null before the first). */
  get activation(): LeaderActivation | null {
    return this.lastActive;
  }

  /** Leadership claims kept (oldest first). */
  get leaderClaims(): readonly LeaderClaim[] {
    return this.claims;
  }

  /** The replicated fence history, oldest first. */
  get fenceHistory(): readonly FenceHistoryRecord[] {
    return this.fences;
  }

  /**
   * Nodes that may have led (and so may still act) before term `term`: every claim of
   * a lower term since the newest activation, that activation's node included.
   */
  suspects(term: number): Suspects {
    const nodes = new Set<number>();
    for (const c of this.claims) if (c.term < term) nodes.add(c.node);
    if (this.lastActive !== null && this.lastActive.term < term) nodes.add(this.lastActive.node);
    return { nodes: [...nodes].sort((a, b) => a - b), unknown: this.claimsTruncated };
  }

  /** The replicated record of job `name` (latest granted slot, latest reported run), if any slot was granted. */
  job(name: string): JobRecord | undefined {
    return this.jobTable.get(name);
  }

  /** Every job record, sorted by name. */
  get jobs(): JobRecord[] {
    return [...this.jobTable.keys()].sort(byKey).map((k) => this.jobTable.get(k)!);
  }

  /** Number of keys. */
  get size(): number {
    return this.data.size;
  }

  get(key: string): KvEntry | undefined {
    return this.data.get(key);
  }

  /** All keys, sorted, optionally only those starting with `prefix`. */
  keys(prefix = ''): string[] {
    const out: string[] = [];
    for (const k of this.data.keys()) if (k.startsWith(prefix)) out.push(k);
    return out.sort(byKey);
  }

  /**
   * The lock's current grant, or undefined if it is free. With `now`, a grant that
   * expired by then is reported as free; without it, expiry is judged at `clockMs`.
   */
  getLock(name: string, now?: number): LockRecord | undefined {
    const l = this.locks.get(name);
    if (!l) return undefined;
    return Math.max(now ?? 0, this.clock) >= l.expiresAt ? undefined : l;
  }

  /**
   * Every lock granted and not lapsed at `now` (default: judged at `clockMs`) whose
   * name starts with `prefix`, sorted by name: who holds what, for `GET /v1/locks` and
   * the dashboard.
   */
  lockList(now?: number, prefix = ''): LockRecord[] {
    const at = Math.max(now ?? 0, this.clock);
    const names = prefix === '' ? [...this.locks.keys()] : [...this.locks.keys()].filter((n) => n.startsWith(prefix));
    return names.sort(byKey).map((n) => this.locks.get(n)!).filter((l) => at < l.expiresAt);
  }

  /**
   * What a renew/release naming lock `name` by `lease` would meet now: 'ok' (it names
   * the current grant), 'not-held' (no grant, or it lapsed by `now`) or 'wrong-lease'.
   * The leader asks before proposing, so that guesses are refused without writing.
   */
  lockCheck(name: string, lease: Uint8Array, now?: number): 'ok' | 'not-held' | 'wrong-lease' {
    const l = this.getLock(name, now);
    if (!l) return 'not-held';
    return namesGrant(l, { lease }) ? 'ok' : 'wrong-lease';
  }

  /**
   * Marks a log entry that carries no command (Raft no-op, configuration change)
   * as applied, so that `appliedIndex` follows the log.
   */
  applyNoop(index: number): KvError | null {
    const e = this.checkOrder(index);
    if (e) return e;
    this.applied = index;
    return null;
  }

  private checkOrder(index: number): KvError | null {
    if (!Number.isSafeInteger(index) || index <= this.applied) {
      return new KvError('apply-order', 'index', `apply: index must be an integer > appliedIndex (${this.applied}), got ${String(index)}`);
    }
    return null;
  }

  /**
   * Applies the committed entry at `index` (strictly greater than `appliedIndex`;
   * gaps are allowed for entries that carry no command). Never throws.
   *
   * An entry that does not decode as a command is, by default, consumed as a no-op and
   * counted (`badCommands`): every replica does the same with it, which is what PBFT
   * needs, where a lying replica may get garbage ordered. With `strict` it changes
   * nothing instead — the index is not consumed, nothing is counted — and the caller
   * must stop: under a leader that validated every command it proposed (Raft, Paxos,
   * ZAB), such an entry was written by a newer quorumd whose commands this build does
   * not know (or by a bug), and the members that do know it apply it. Skipping it
   * would leave this replica's state silently different from theirs.
   */
  apply(index: number, data: Uint8Array, strict = false): ApplyResult {
    const orderErr = this.checkOrder(index);
    if (orderErr) return { op: 'error', ok: false, error: orderErr };
    const cmd = decodeCommand(data);
    if (cmd instanceof KvError) {
      if (strict) return { op: 'error', ok: false, error: cmd };
      this.applied = index;
      this.bad++;
      return { op: 'error', ok: false, error: cmd };
    }
    this.applied = index;
    return this.exec(index, cmd);
  }

  private exec(index: number, cmd: Command): ApplyResult {
    switch (cmd.op) {
      case 'put': {
        const cur = this.data.get(cmd.key);
        if (cmd.cas !== undefined && cmd.cas !== (cur?.modIndex ?? 0)) {
          return { op: 'put', ok: false, index: cur?.modIndex ?? 0 };
        }
        this.data.set(cmd.key, { value: cmd.value, createIndex: cur?.createIndex ?? index, modIndex: index });
        if (cur) this.use.bytes += cmd.value.length - cur.value.length;
        else this.use = { keys: this.use.keys + 1, bytes: this.use.bytes + utf8Length(cmd.key) + cmd.value.length };
        return { op: 'put', ok: true, index };
      }
      case 'del': {
        const cur = this.data.get(cmd.key);
        if (cmd.cas !== undefined && cmd.cas !== (cur?.modIndex ?? 0)) {
          return { op: 'del', ok: false, index: cur?.modIndex ?? 0 };
        }
        if (cur) {
          this.data.delete(cmd.key);
          this.use = { keys: this.use.keys - 1, bytes: this.use.bytes - utf8Length(cmd.key) - cur.value.length };
        }
        return { op: 'del', ok: true, index };
      }
      case 'lock.acquire': {
        const now = this.tick(cmd.now);
        const cur = this.locks.get(cmd.name);
        if (cur && now < cur.expiresAt) {
          // The owner name is public (a 409 tells it), so asking again as the same owner
          // proves nothing: only the same lease (a retry of the same request) does.
          const retry = cur.owner === cmd.owner && (cur.lease === null ? cmd.lease === undefined : sameLease(cur.lease, cmd.lease));
          if (!retry) {
            return { op: 'lock.acquire', ok: false, holder: cur.owner, token: cur.token, expiresAt: cur.expiresAt };
          }
          // The holder asks again (e.g. a retry after an unknown outcome, HTTP 504):
          // same grant, same token, refreshed lease.
          const again: LockRecord = { ...cur, ttlMs: cmd.ttlMs, expiresAt: now + cmd.ttlMs };
          this.locks.set(cmd.name, again);
          return { op: 'lock.acquire', ok: true, token: again.token, ttlMs: again.ttlMs, expiresAt: again.expiresAt };
        }
        const grant: LockRecord = { name: cmd.name, owner: cmd.owner, token: index, ttlMs: cmd.ttlMs, expiresAt: now + cmd.ttlMs, lease: cmd.lease ?? null };
        this.countLock(cur, -1);
        this.locks.set(cmd.name, grant);
        this.countLock(grant, 1);
        return { op: 'lock.acquire', ok: true, token: index, ttlMs: cmd.ttlMs, expiresAt: grant.expiresAt };
      }
      case 'lock.renew': {
        const now = this.tick(cmd.now);
        const cur = this.locks.get(cmd.name);
        if (!cur) return { op: 'lock.renew', ok: false, reason: 'not-held' };
        if (!namesGrant(cur, cmd)) return { op: 'lock.renew', ok: false, reason: cur.lease !== null || cmd.lease !== undefined ? 'wrong-lease' : 'wrong-token' };
        if (now >= cur.expiresAt) return { op: 'lock.renew', ok: false, reason: 'expired' };
        const renewed: LockRecord = { ...cur, expiresAt: now + cur.ttlMs };
        this.locks.set(cmd.name, renewed);
        return { op: 'lock.renew', ok: true, token: cur.token, expiresAt: renewed.expiresAt, ttlMs: cur.ttlMs };
      }
      case 'lock.release': {
        const cur = this.locks.get(cmd.name);
        // Releasing a lapsed grant nobody else took is harmless: the record goes.
        if (!cur || !namesGrant(cur, cmd)) return { op: 'lock.release', ok: false };
        this.locks.delete(cmd.name);
        this.countLock(cur, -1);
        return { op: 'lock.release', ok: true };
      }
      case 'lead.claim': {
        if (this.lastActive !== null && cmd.term <= this.lastActive.term) return { op: 'lead.claim', ok: cmd.term === this.lastActive.term };
        if (this.claims.some((c) => c.term === cmd.term)) return { op: 'lead.claim', ok: true };
        this.claims.push({ node: cmd.node, term: cmd.term });
        this.claims.sort((a, b) => a.term - b.term);
        if (this.claims.length > MAX_CLAIMS) {
          this.claims.shift();
          this.claimsTruncated = true;
        }
        return { op: 'lead.claim', ok: true };
      }
      case 'lead.active': {
        if (this.lastActive !== null && cmd.term <= this.lastActive.term) return { op: 'lead.active', ok: false };
        this.lastActive = { node: cmd.node, term: cmd.term, token: cmd.token };
        // Leaders of earlier terms were provably stopped when this one activated.
        this.claims = this.claims.filter((c) => c.term >= cmd.term);
        this.claimsTruncated = false;
        return { op: 'lead.active', ok: true };
      }
      case 'fence.record': {
        this.fences.push({ index, target: cmd.target, by: cmd.by, term: cmd.term, outcome: cmd.outcome, level: cmd.level, atMs: cmd.atMs, reason: cmd.reason });
        if (this.fences.length > MAX_FENCE_HISTORY) this.fences.shift();
        return { op: 'fence.record', ok: true };
      }
      case 'job.claim': {
        const cur = this.jobTable.get(cmd.job);
        const prev = cur?.claim ?? null;
        // A leader deposed before the newest activation may still get an old entry
        // committed by its successor: it must not win a slot with it.
        if ((this.lastActive !== null && cmd.term < this.lastActive.term) || cmd.term < recordTerm(cur)) {
          return { op: 'job.claim', ok: false, reason: 'stale-leader', claim: prev };
        }
        if (cur && cmd.slot <= jobGrantedThrough(cur)) {
          // At or before the latest grant, or at or before the floor of a reset.
          return prev !== null && prev.slot >= cmd.slot ? { op: 'job.claim', ok: false, reason: 'claimed', claim: prev } : { op: 'job.claim', ok: false, reason: 'claimed', claim: prev, floor: cur.reset!.floor };
        }
        if (!cur && this.jobTable.size >= MAX_JOBS) return { op: 'job.claim', ok: false, reason: 'too-many-jobs', claim: null };
        const claim: JobClaim = { slot: cmd.slot, node: cmd.node, term: cmd.term, token: cmd.token, index };
        this.jobTable.set(cmd.job, cur ? { ...cur, claim } : { name: cmd.job, claim, result: null });
        return { op: 'job.claim', ok: true, index };
      }
      case 'job.done': {
        const cur = this.jobTable.get(cmd.job);
        // No claim (withdrawn by a reset, none since): nothing to report on; a withdrawn
        // slot is after every claim that can follow the reset, so its report stays refused.
        if (!cur || cur.claim === null || cmd.slot > cur.claim.slot || (cmd.slot === cur.claim.slot && cmd.node !== cur.claim.node)) return { op: 'job.done', ok: false };
        // A newer result is kept: not replaced by an older one. A result recorded before the
        // newest reset may be of a withdrawn (future) slot: it does not hold later reports back.
        const before = cur.reset !== undefined && cur.result !== null && cur.result.index < cur.reset.index;
        if (cur.result !== null && cmd.slot <= cur.result.slot && !before) return { op: 'job.done', ok: false };
        const result: JobResult = { slot: cmd.slot, node: cmd.node, outcome: cmd.outcome, code: cmd.code, signal: cmd.signal, startedAtMs: cmd.startedAtMs, durationMs: cmd.durationMs, index };
        this.jobTable.set(cmd.job, { ...cur, result });
        return { op: 'job.done', ok: true };
      }
      case 'job.reset': {
        const cur = this.jobTable.get(cmd.job);
        if (!cur) return { op: 'job.reset', ok: false, reason: 'no-record', now: cmd.now, claim: null, floor: null };
        const floor = cur.reset?.floor ?? null;
        // As job.claim: a deposed leader's late reset must not move the job's record.
        if ((this.lastActive !== null && cmd.term < this.lastActive.term) || cmd.term < recordTerm(cur)) {
          return { op: 'job.reset', ok: false, reason: 'stale-leader', now: cmd.now, claim: cur.claim, floor };
        }
        if (cur.claim === null || cur.claim.slot <= cmd.now) return { op: 'job.reset', ok: false, reason: 'not-ahead', now: cmd.now, claim: cur.claim, floor };
        // The floor never goes down: slots up to an earlier reset's floor may have been granted.
        const reset: JobReset = { at: cmd.now, floor: Math.max(cmd.now, floor ?? 0), node: cmd.node, term: cmd.term, index, withdrawn: cur.claim };
        this.jobTable.set(cmd.job, { name: cur.name, claim: null, result: cur.result, reset });
        return { op: 'job.reset', ok: true, index, withdrawn: cur.claim, floor: reset.floor };
      }
    }
  }

  /** Adds (sign 1) or removes (-1) a lock record's share of the usage. */
  private countLock(l: LockRecord | undefined, sign: 1 | -1): void {
    if (!l) return;
    this.use = { keys: this.use.keys + sign, bytes: this.use.bytes + sign * (utf8Length(l.name) + utf8Length(l.owner)) };
  }

  private tick(now: number): number {
    if (now > this.clock) this.clock = now;
    return this.clock;
  }

  /**
   * A deterministic encoding of the whole state: equal states give equal bytes
   * (keys and lock names sorted, shortest CBOR heads). Layout:
   *   ["quorumd-kv", 1, appliedIndex, clockMs, badCommands,
   *    [[key, value, createIndex, modIndex], ...], [[name, owner, token, ttlMs, expiresAt, lease?], ...]]
 * (a lock row carries its lease digest as a 6th element when it has one).
   */
  snapshot(): Uint8Array {
    const keys = [...this.data.keys()].sort(byKey);
    const names = [...this.locks.keys()].sort(byKey);
    let size = 64;
    for (const k of keys) size += this.data.get(k)!.value.length + k.length * 3 + 24;
    const jobTable = this.jobTable.size > 0;
    const fenceTable = jobTable || this.claims.length > 0 || this.lastActive !== null || this.fences.length > 0 || this.claimsTruncated;
    const w = new CborWriter(size + names.length * 64 + (fenceTable ? 64 + this.fences.length * 256 : 0) + this.jobTable.size * 400);
    const elements = jobTable ? 9 : fenceTable ? 8 : 7;
    let resets = false;
    for (const j of this.jobTable.values()) if (j.reset !== undefined) resets = true;
    const version = resets ? SNAPSHOT_VERSION_RESET : jobTable ? SNAPSHOT_VERSION_JOBS : fenceTable ? SNAPSHOT_VERSION_FENCE : SNAPSHOT_VERSION;
    w.array(elements).text(SNAPSHOT_MAGIC).uint(version).uint(this.applied).uint(this.clock).uint(this.bad);
    w.array(keys.length);
    for (const k of keys) {
      const e = this.data.get(k)!;
      w.array(4).text(k).bytes(e.value).uint(e.createIndex).uint(e.modIndex);
    }
    w.array(names.length);
    for (const n of names) {
      const l = this.locks.get(n)!;
      w.array(l.lease ? 6 : 5).text(l.name).text(l.owner).uint(l.token).uint(l.ttlMs).uint(l.expiresAt);
      if (l.lease) w.bytes(l.lease);
    }
    if (fenceTable) {
      // [[[node, term], ...], truncated 0|1, [node, term, token] or [], [[index, target, by, term, outcome, level+1, atMs, reason], ...]]
      w.array(4);
      w.array(this.claims.length);
      for (const c of this.claims) w.array(2).uint(c.node).uint(c.term);
      w.uint(this.claimsTruncated ? 1 : 0);
      const a = this.lastActive;
      if (a === null) w.array(0);
      else w.array(3).uint(a.node).uint(a.term).uint(a.token);
      w.array(this.fences.length);
      for (const f of this.fences) w.array(8).uint(f.index).uint(f.target).uint(f.by).uint(f.term).uint(FENCE_OUTCOMES.indexOf(f.outcome)).uint(f.level + 1).uint(f.atMs).text(f.reason);
    }
    if (jobTable) {
      // [[name, [slot, node, term, token, index], [] or [slot, node, outcome, code+1, signal, startedAtMs, durationMs, index]], ...] sorted by name;
      // version 4: the claim may be [] (withdrawn, none since) and a row with a reset has it as a 4th
      // element, [at, floor, node, term, index, then the withdrawn claim's slot, node, term, token, index]
      // (flat: the reader's nesting bound, cbor.ts MAX_DEPTH, is a claim inside a row).
      const jobs = this.jobs;
      w.array(jobs.length);
      const claimRow = (c: JobClaim) => w.array(5).uint(c.slot).uint(c.node).uint(c.term).uint(c.token).uint(c.index);
      for (const j of jobs) {
        const c = j.claim;
        w.array(j.reset ? 4 : 3).text(j.name);
        if (c === null) w.array(0);
        else claimRow(c);
        const r = j.result;
        if (r === null) w.array(0);
        else w.array(8).uint(r.slot).uint(r.node).uint(JOB_OUTCOMES.indexOf(r.outcome)).uint(r.code + 1).text(r.signal).uint(r.startedAtMs).uint(r.durationMs).uint(r.index);
        const z = j.reset;
        if (z) {
          const c2 = z.withdrawn;
          w.array(10).uint(z.at).uint(z.floor).uint(z.node).uint(z.term).uint(z.index).uint(c2.slot).uint(c2.node).uint(c2.term).uint(c2.token).uint(c2.index);
        }
      }
    }
    return w.take();
  }

  /** Rebuilds a state machine from `snapshot()` bytes, validating everything. Never throws. */
  static restore(bytes: Uint8Array): KvStateMachine | KvError {
    const bad = (msg: string) => new KvError('bad-snapshot', 'snapshot', `snapshot: ${msg}`);
    if (!(bytes instanceof Uint8Array)) return bad('expected bytes (Uint8Array)');
    const r = readCbor(bytes);
    if (!r.ok) return bad(`not valid CBOR: ${r.error}`);
    const root = r.value;
    if (Array.isArray(root) && root[0] === SNAPSHOT_MAGIC && typeof root[1] === 'number' && root[1] > SNAPSHOT_VERSION_RESET) {
      // A newer build's state (a newer leader's snapshot, or a data directory it wrote): say so, not "malformed".
      return bad(`version ${root[1]} was written by a newer quorumd (this build reads 1 to ${SNAPSHOT_VERSION_RESET}): upgrade this node to the version the other members run`);
    }
    if (!Array.isArray(root) || root.length < 7 || root.length > 9) return bad('expected a 7-element array (version 1), an 8-element one (version 2) or a 9-element one (version 3 or 4)');
    if (root[0] !== SNAPSHOT_MAGIC) return bad(`expected magic "${SNAPSHOT_MAGIC}"`);
    const version = root.length === 7 ? SNAPSHOT_VERSION : root.length === 8 ? SNAPSHOT_VERSION_FENCE : root[1] === SNAPSHOT_VERSION_RESET ? SNAPSHOT_VERSION_RESET : SNAPSHOT_VERSION_JOBS;
    if (root[1] !== version) return bad(`unsupported version ${JSON.stringify(root[1])} for a ${root.length}-element snapshot, expected ${root.length === 9 ? `${SNAPSHOT_VERSION_JOBS} or ${SNAPSHOT_VERSION_RESET}` : version}`);
    const uint = (v: Cbor | undefined): v is number => typeof v === 'number';
    const [, , applied, clock, badCount, rows, lockRows] = root;
    if (!uint(applied) || !uint(clock) || !uint(badCount)) return bad('appliedIndex, clockMs and badCommands must be unsigned integers');
    if (!Array.isArray(rows) || !Array.isArray(lockRows)) return bad('expected the key table and the lock table as arrays');
    const sm = new KvStateMachine();
    sm.applied = applied;
    sm.clock = clock;
    sm.bad = badCount;
    let prev: string | undefined;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (!Array.isArray(row) || row.length !== 4) return bad(`key row ${i}: expected [key, value, createIndex, modIndex]`);
      const [key, value, c, m] = row;
      const ke = checkKeyLike(key, `key row ${i} key`);
      if (ke) return bad(ke.message);
      const k = key as string;
      if (prev !== undefined && byKey(prev, k) >= 0) return bad(`key row ${i}: keys must be sorted and unique (${JSON.stringify(k)} after ${JSON.stringify(prev)})`);
      prev = k;
      if (!(value instanceof Uint8Array) || value.length > MAX_VALUE_BYTES) return bad(`key row ${i}: value must be at most ${MAX_VALUE_BYTES} bytes`);
      if (!uint(c) || !uint(m) || c < 1 || c > m || m > applied) return bad(`key row ${i}: expected 1 ≤ createIndex ≤ modIndex ≤ appliedIndex`);
      sm.data.set(k, { value, createIndex: c, modIndex: m });
      sm.use = { keys: sm.use.keys + 1, bytes: sm.use.bytes + utf8Length(k) + value.length };
    }
    prev = undefined;
    for (let i = 0; i < lockRows.length; i++) {
      const row = lockRows[i]!;
      if (!Array.isArray(row) || (row.length !== 5 && row.length !== 6)) return bad(`lock row ${i}: expected [name, owner, token, ttlMs, expiresAt, lease?]`);
      const [name, owner, token, ttl, exp, lease] = row;
      if (row.length === 6 && !(lease instanceof Uint8Array && lease.length === LEASE_DIGEST_BYTES)) return bad(`lock row ${i}: lease must be ${LEASE_DIGEST_BYTES} bytes`);
      const ne = checkKeyLike(name, `lock row ${i} name`) ?? checkKeyLike(owner, `lock row ${i} owner`, 'bad-owner');
      if (ne) return bad(ne.message);
      const n = name as string;
      if (prev !== undefined && byKey(prev, n) >= 0) return bad(`lock row ${i}: names must be sorted and unique`);
      prev = n;
      if (!uint(token) || token < 1 || token > applied) return bad(`lock row ${i}: expected 1 ≤ token ≤ appliedIndex`);
      if (!uint(ttl) || ttl < MIN_TTL_MS || ttl > MAX_TTL_MS) return bad(`lock row ${i}: ttlMs out of range`);
      if (!uint(exp)) return bad(`lock row ${i}: expiresAt must be an unsigned integer`);
      sm.locks.set(n, { name: n, owner: owner as string, token, ttlMs: ttl, expiresAt: exp, lease: row.length === 6 ? (lease as Uint8Array) : null });
      sm.countLock(sm.locks.get(n), 1);
    }
    if (root.length >= 8) {
      const err = sm.restoreFenceTable(root[7], applied);
      if (err !== null) return bad(err);
    }
    if (root.length === 9) {
      const err = sm.restoreJobTable(root[8], applied, version === SNAPSHOT_VERSION_RESET);
      if (err !== null) return bad(err);
    }
    return sm;
  }

  /** Reads the jobs table (version 3, or 4 with `resets`: at least one reset record); returns an error text or null. */
  private restoreJobTable(t: Cbor | undefined, applied: number, resets: boolean): string | null {
    const uint = (v: Cbor | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    const node = (v: Cbor | undefined): v is number => uint(v) && v >= 1 && v <= 254;
    const idx = (v: Cbor | undefined): v is number => uint(v) && v >= 1 && v <= applied;
    if (!Array.isArray(t) || t.length === 0 || t.length > MAX_JOBS) return `jobs table: expected an array of 1..${MAX_JOBS} jobs`;
    const claimOf = (c: Cbor | undefined): JobClaim | null =>
      Array.isArray(c) && c.length === 5 && uint(c[0]) && node(c[1]) && uint(c[2]) && c[2] >= 1 && uint(c[3]) && c[3] >= 1 && idx(c[4]) ? { slot: c[0], node: c[1], term: c[2], token: c[3], index: c[4] } : null;
    const claimShape = 'claim must be [slot, node 1..254, term ≥ 1, token ≥ 1, index 1..appliedIndex]';
    let prev: string | undefined;
    let anyReset = false;
    for (let i = 0; i < t.length; i++) {
      const row = t[i];
      if (!Array.isArray(row) || (row.length !== 3 && !(resets && row.length === 4))) return `jobs table: job ${i}: expected [name, claim, result]${resets ? ' or [name, claim, result, reset]' : ''}`;
      const [name, c, r, z] = row;
      const ne = checkKeyLike(name, `jobs table: job ${i} name`);
      if (ne) return ne.message;
      const n = name as string;
      if (prev !== undefined && byKey(prev, n) >= 0) return `jobs table: job ${i}: names must be sorted and unique`;
      prev = n;
      let reset: JobReset | undefined;
      if (row.length === 4) {
        anyReset = true;
        if (!Array.isArray(z) || z.length !== 10 || !uint(z[0]) || !uint(z[1]) || z[1] < z[0] || !node(z[2]) || !uint(z[3]) || z[3] < 1 || !idx(z[4])) {
          return `jobs table: job ${i}: reset must be [at, floor ≥ at, node 1..254, term ≥ 1, index 1..appliedIndex, then the withdrawn claim's 5 fields]`;
        }
        const w = claimOf(z.slice(5));
        if (w === null) return `jobs table: job ${i}: reset: withdrawn ${claimShape}`;
        if (w.slot <= z[1] || w.index >= z[4] || w.term > z[3]) return `jobs table: job ${i}: reset: the withdrawn claim must be after the floor, before the reset, of a term not after it`;
        reset = { at: z[0], floor: z[1], node: z[2], term: z[3], index: z[4], withdrawn: w };
      }
      // An empty claim only after a reset (the claim was withdrawn, none granted since).
      const claim = reset && Array.isArray(c) && c.length === 0 ? null : claimOf(c);
      if (claim === null && !(reset && Array.isArray(c) && c.length === 0)) return `jobs table: job ${i}: ${claimShape}${reset ? ' or [] (withdrawn)' : ''}`;
      if (claim !== null && reset && (claim.slot <= reset.floor || claim.index <= reset.index || claim.term < reset.term)) return `jobs table: job ${i}: a claim after a reset must be after its floor, its index and of a term not before it`;
      let result: JobResult | null = null;
      if (!Array.isArray(r) || (r.length !== 0 && r.length !== 8)) return `jobs table: job ${i}: result must be [] or 8 fields`;
      if (r.length === 8) {
        const [slot, by, oc, code, signal, started, dur, index] = r;
        // A result is of the claim's slot or an earlier one; one recorded before a reset may be of the withdrawn slot.
        const bound = Math.max(claim?.slot ?? -1, reset && uint(index) && index < reset.index ? reset.withdrawn.slot : -1);
        if (!uint(slot) || slot > bound || !node(by) || !uint(oc) || oc >= JOB_OUTCOMES.length || !uint(code) || code > 256 || !uint(started) || !uint(dur) || !idx(index)) return `jobs table: job ${i}: bad result field`;
        if (typeof signal !== 'string' || signal.length > MAX_SIGNAL_CHARS) return `jobs table: job ${i}: signal must be text of at most ${MAX_SIGNAL_CHARS} characters`;
        result = { slot, node: by, outcome: JOB_OUTCOMES[oc]!, code: code - 1, signal, startedAtMs: started, durationMs: dur, index };
      }
      this.jobTable.set(n, reset ? { name: n, claim, result, reset } : { name: n, claim, result });
    }
    // Version 4 is written only when a reset record exists (equal states, equal bytes).
    if (resets && !anyReset) return `jobs table: version ${SNAPSHOT_VERSION_RESET} without a reset record (version ${SNAPSHOT_VERSION_JOBS} is written then)`;
    return null;
  }

  /** Reads the version-2 table; returns an error text or null. */
  private restoreFenceTable(t: Cbor | undefined, applied: number): string | null {
    const uint = (v: Cbor | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    const node = (v: Cbor | undefined): v is number => uint(v) && v >= 1 && v <= 254;
    if (!Array.isArray(t) || t.length !== 4) return 'fence table: expected [claims, truncated, activation, fences]';
    const [claims, trunc, act, fences] = t;
    if (!Array.isArray(claims) || claims.length > MAX_CLAIMS) return `fence table: claims must be an array of at most ${MAX_CLAIMS}`;
    let prevTerm = 0;
    for (let i = 0; i < claims.length; i++) {
      const c = claims[i];
      if (!Array.isArray(c) || c.length !== 2 || !node(c[0]) || !uint(c[1]) || c[1] <= prevTerm) return `fence table: claim ${i}: expected [node 1..254, term] with terms rising`;
      prevTerm = c[1];
      this.claims.push({ node: c[0], term: c[1] });
    }
    if (trunc !== 0 && trunc !== 1) return 'fence table: truncated must be 0 or 1';
    this.claimsTruncated = trunc === 1;
    if (!Array.isArray(act) || (act.length !== 0 && act.length !== 3)) return 'fence table: activation must be [] or [node, term, token]';
    if (act.length === 3) {
      if (!node(act[0]) || !uint(act[1]) || act[1] < 1 || !uint(act[2]) || act[2] < 1) return 'fence table: activation must be [node 1..254, term ≥ 1, token ≥ 1]';
      this.lastActive = { node: act[0], term: act[1], token: act[2] };
    }
    if (!Array.isArray(fences) || fences.length > MAX_FENCE_HISTORY) return `fence table: fences must be an array of at most ${MAX_FENCE_HISTORY}`;
    for (let i = 0; i < fences.length; i++) {
      const f = fences[i];
      if (!Array.isArray(f) || f.length !== 8) return `fence table: fence ${i}: expected 8 fields`;
      const [index, target, by, term, oc, lv, at, reason] = f;
      if (!uint(index) || index < 1 || index > applied || !node(target) || !node(by) || !uint(term) || !uint(oc) || oc >= FENCE_OUTCOMES.length || !uint(lv) || !uint(at)) return `fence table: fence ${i}: bad field`;
      if (typeof reason !== 'string' || reason.length > MAX_FENCE_REASON) return `fence table: fence ${i}: reason must be text of at most ${MAX_FENCE_REASON} characters`;
      this.fences.push({ index, target, by, term, outcome: FENCE_OUTCOMES[oc]!, level: lv - 1, atMs: at, reason });
    }
    return null;
  }
}
