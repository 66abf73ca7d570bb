/**
 * What the etcd and ZooKeeper engines share besides the safety window: input checks
 * with the replicated state machine's own rules (the same 400/413 answers as under
 * Raft), records stored as JSON in the service (job claims and results, lock grants)
 * read back with validation (a record someone else wrote badly is an error that names
 * the key, not a crash), callbacks answered exactly once with a monotonic timeout, and
 * small async helpers.
 */
import { encodeCommand, KvError, leaseDigest, type Command } from '../../src/kv/index.ts';
import { JOB_OUTCOMES } from '../../src/kv/commands.ts';
import type { JobClaim, JobRecord } from '../../src/kv/index.ts';

/**
 * A job record as the external engines keep it: always with a claim (they have no
 * `quorumd jobs reset`, which leaves a Raft-family record without one until the next grant).
 */
export type ClaimedJobRecord = JobRecord & { readonly claim: JobClaim };
import type { ClientCallback, ClientResult } from '../runtime/results.ts';

/**
 * The state machine's input rules for a command (key and owner sizes, TTL range,
 * value size...): an error result, or null when the command is well-formed.
 */
export function checkCommand(cmd: Command): ClientResult | null {
  const enc = encodeCommand(cmd);
  return enc instanceof KvError ? { status: enc.httpStatus, error: enc.message } : null;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref?.());

/**
 * Wraps a callback so that it is called exactly once: by the first answer, or with
 * `onTimeout()` after `ms` (monotonic timer) when none came. Later answers are dropped.
 * The timeout waits for the poll phase of the loop turn its timer fires in (setImmediate):
 * after a stall every timer is due at once, and Node runs timers before it reads
 * sockets, so the service's answer that arrived during the stall is taken first
 * instead of being called a timeout.
 */
export function answerOnce(cb: ClientCallback, ms: number, onTimeout: () => ClientResult): ClientCallback {
  let done = false;
  const t = setTimeout(() => {
    if (done) return;
    setImmediate(() => {
      if (done) return;
      done = true;
      cb(onTimeout());
    }).unref?.();
  }, ms);
  t.unref?.();
  return (r) => {
    if (done) return;
    done = true;
    clearTimeout(t);
    cb(r);
  };
}

/** Resolves with the promise's value, or with `undefined` after `ms`. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(undefined), ms);
    t.unref?.();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

const uint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A job record as stored in the service: the same fields as the Raft state machine's. */
export function encodeJobRecord(r: ClaimedJobRecord): string {
  return JSON.stringify({ claim: r.claim, result: r.result });
}

/** Parses a stored job record; a string error names what is wrong. */
export function decodeJobRecord(name: string, text: string): ClaimedJobRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return `job record ${name}: not JSON`;
  }
  const o = v as { claim?: Record<string, unknown>; result?: Record<string, unknown> | null };
  const c = o?.claim;
  if (!c || !uint(c.slot) || !uint(c.node) || !uint(c.term) || !uint(c.token) || !uint(c.index)) return `job record ${name}: claim must have slot, node, term, token, index (integers)`;
  let result: JobRecord['result'] = null;
  const r = o.result;
  if (r !== null && r !== undefined) {
    if (!uint(r.slot) || !uint(r.node) || typeof r.outcome !== 'string' || !(JOB_OUTCOMES as readonly string[]).includes(r.outcome) || typeof r.code !== 'number' || typeof r.signal !== 'string' || !uint(r.startedAtMs) || !uint(r.durationMs) || !uint(r.index)) {
      return `job record ${name}: bad result`;
    }
    result = { slot: r.slot, node: r.node, outcome: r.outcome as JobRecord['result'] extends infer R ? R extends { outcome: infer O } ? O : never : never, code: r.code, signal: r.signal, startedAtMs: r.startedAtMs, durationMs: r.durationMs, index: r.index };
  }
  return { name, claim: { slot: c.slot, node: c.node, term: c.term, token: c.token, index: c.index }, result };
}

/**
 * A lock grant as stored in the service: the holder's name, the TTL, and the digest
 * of the holder's secret lease id (src/kv/lease.ts: the service, like the Raft log,
 * never sees the id itself). `etcdLease`: the etcd lease the lock key is bound to.
 */
export interface LockGrant {
  owner: string;
  ttlMs: number;
  digest: string;
  etcdLease?: string;
  /**
   * ZooKeeper: the grant's fencing token once a renewal wrote it down; 0 in the record
   * the grant itself wrote (its token is then that write's mzxid). Absent in records of
   * quorumd versions that deleted and re-created lock znodes (their token is the czxid).
   */
  token?: number;
}

export function decodeLockGrant(name: string, text: string): LockGrant | string {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.owner !== 'string' || !uint(v.ttlMs) || typeof v.digest !== 'string' || (v.etcdLease !== undefined && typeof v.etcdLease !== 'string') || (v.token !== undefined && !uint(v.token))) return `lock record ${name}: expected {owner, ttlMs, digest}`;
    return { owner: v.owner, ttlMs: v.ttlMs, digest: v.digest, ...(typeof v.etcdLease === 'string' ? { etcdLease: v.etcdLease } : {}), ...(typeof v.token === 'number' ? { token: v.token } : {}) };
  } catch {
    return `lock record ${name}: not JSON`;
  }
}

/** The digest (hex) of a lock lease id, or a 400 answer for a malformed id (the runtime's rule). */
export function leaseHex(lease: string): string | ClientResult {
  if (typeof lease !== 'string' || !/^[A-Za-z0-9_-]{22,64}$/.test(lease)) return { status: 400, error: 'lease: expected a lease id of 22 to 64 characters A-Z a-z 0-9 _ -' };
  return Buffer.from(leaseDigest(lease)).toString('hex');
}

/** The leader record: who won, by member name and id. */
export interface LeaderRecord {
  node: string;
  id: number;
}

export function decodeLeaderRecord(text: string): LeaderRecord | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.node === 'string' && uint(v.id)) return { node: v.node, id: v.id };
  } catch {
    /* not ours */
  }
  return undefined;
}

/** Ref-counted per-key listeners over one service watch per key. */
export class KeyWatchers {
  private readonly map = new Map<string, { fns: Set<() => void>; close: () => void }>();

  constructor(private readonly open: (key: string, fire: () => void) => () => void) {}

  add(key: string, fn: () => void): () => void {
    let e = this.map.get(key);
    if (!e) {
      const fns = new Set<() => void>();
      const close = this.open(key, () => {
        for (const f of [...fns]) f();
      });
      e = { fns, close };
      this.map.set(key, e);
    }
    e.fns.add(fn);
    const entry = e;
    return () => {
      entry.fns.delete(fn);
      if (entry.fns.size === 0 && this.map.get(key) === entry) {
        this.map.delete(key);
        entry.close();
      }
    };
  }

  get size(): number {
    return this.map.size;
  }

  closeAll(): void {
    for (const e of this.map.values()) e.close();
    this.map.clear();
  }
}

/**
 * What the service showed this node of the members' liveness: the evidence behind
 * `quorumd fence confirm` (the confirm answer's `lastHeardMs` and `listenedMs`, as the
 * boards-only engines give them). A member's election key (etcd: bound to its lease) or
 * election znode (ZooKeeper: ephemeral, bound to its session) exists exactly while the
 * service keeps that member's lease or session — while it renews it, or for at most a
 * TTL / session timeout after it stopped. Every node reads the election about once a
 * second (PRESENCE_PERIOD_MS); the time of the newest answer that listed a member is
 * when the service last showed it alive. The answer's arrival, not its send, is taken:
 * the read happened somewhere in between, so this never makes a member look silent for
 * longer than it was (up to one read period it may look more recently alive).
 */
export const PRESENCE_PERIOD_MS = 1000;

export class Presence {
  private readonly seen = new Map<string, number>();
  private since: number | undefined;
  private last: number | undefined;

  constructor(
    private readonly now: () => number,
    /** Answers further apart than this break the run `listenedMs` counts (cut off meanwhile). */
    private readonly gapMs = 3 * PRESENCE_PERIOD_MS,
  ) {}

  /** A read of the election answered now listed these members (by name). */
  saw(names: Iterable<string>): void {
    const at = this.now();
    if (this.last === undefined || this.since === undefined || at - this.last > this.gapMs) this.since = at;
    this.last = at;
    for (const n of names) this.seen.set(n, at);
  }

  /**
   * `lastHeardMs`: how long ago the newest read that listed `name` was answered (null:
   * no read since this node started listed it); `listenedMs`: how long this node had
   * then been reading the election without a gap (from the first to the newest answer
   * of the run; 0 before any answer).
   */
  evidence(name: string): { lastHeardMs: number | null; listenedMs: number } {
    const s = this.seen.get(name);
    return {
      lastHeardMs: s === undefined ? null : Math.round(this.now() - s),
      listenedMs: this.since === undefined || this.last === undefined ? 0 : Math.floor(this.last - this.since),
    };
  }
}
