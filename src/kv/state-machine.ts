/**
 * The replicated state machine behind the daemon's KV and lock API (DESIGN §6).
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
 * deposed holder (DESIGN §5).
 *
 * Time: the state machine's clock is the largest `now` of any applied lock command
 * (`clockMs`); a command whose `now` is smaller is evaluated at `clockMs`, so time
 * inside the state machine never runs backwards even if a new leader's stamp lags.
 * A new leader should stamp `max(its lease-adjusted time, clockMs)`. A holder has
 * expired once the clock reaches `expiresAt` (now ≥ expiresAt).
 */
import { CborWriter, readCbor, type Cbor } from './cbor.ts';
import {
  checkKeyLike,
  decodeCommand,
  KvError,
  MAX_TTL_MS,
  MAX_VALUE_BYTES,
  MIN_TTL_MS,
  type Command,
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
  | { op: 'lock.renew'; ok: true; token: number; expiresAt: number }
  | { op: 'lock.renew'; ok: false; reason: 'not-held' | 'expired' | 'wrong-token' }
  | { op: 'lock.release'; ok: boolean }
  /**
   * The entry was not applied: undecodable/invalid bytes (counted in
   * `badCommands`, the index is consumed), or an index that does not follow
   * `appliedIndex` (code 'apply-order': a runtime bug; nothing changes).
   */
  | { op: 'error'; ok: false; error: KvError };

const SNAPSHOT_MAGIC = 'quorumd-kv';
const SNAPSHOT_VERSION = 1;

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
   */
  apply(index: number, data: Uint8Array): ApplyResult {
    const orderErr = this.checkOrder(index);
    if (orderErr) return { op: 'error', ok: false, error: orderErr };
    this.applied = index;
    const cmd = decodeCommand(data);
    if (cmd instanceof KvError) {
      this.bad++;
      return { op: 'error', ok: false, error: cmd };
    }
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
        return { op: 'put', ok: true, index };
      }
      case 'del': {
        const cur = this.data.get(cmd.key);
        if (cmd.cas !== undefined && cmd.cas !== (cur?.modIndex ?? 0)) {
          return { op: 'del', ok: false, index: cur?.modIndex ?? 0 };
        }
        this.data.delete(cmd.key);
        return { op: 'del', ok: true, index };
      }
      case 'lock.acquire': {
        const now = this.tick(cmd.now);
        const cur = this.locks.get(cmd.name);
        if (cur && now < cur.expiresAt) {
          if (cur.owner !== cmd.owner) {
            return { op: 'lock.acquire', ok: false, holder: cur.owner, token: cur.token, expiresAt: cur.expiresAt };
          }
          // The holder asks again (e.g. a retry after an unknown outcome, HTTP 504):
          // same grant, same token, refreshed lease.
          const again: LockRecord = { ...cur, ttlMs: cmd.ttlMs, expiresAt: now + cmd.ttlMs };
          this.locks.set(cmd.name, again);
          return { op: 'lock.acquire', ok: true, token: again.token, ttlMs: again.ttlMs, expiresAt: again.expiresAt };
        }
        const grant: LockRecord = { name: cmd.name, owner: cmd.owner, token: index, ttlMs: cmd.ttlMs, expiresAt: now + cmd.ttlMs };
        this.locks.set(cmd.name, grant);
        return { op: 'lock.acquire', ok: true, token: index, ttlMs: cmd.ttlMs, expiresAt: grant.expiresAt };
      }
      case 'lock.renew': {
        const now = this.tick(cmd.now);
        const cur = this.locks.get(cmd.name);
        if (!cur) return { op: 'lock.renew', ok: false, reason: 'not-held' };
        if (cur.token !== cmd.token) return { op: 'lock.renew', ok: false, reason: 'wrong-token' };
        if (now >= cur.expiresAt) return { op: 'lock.renew', ok: false, reason: 'expired' };
        const renewed: LockRecord = { ...cur, expiresAt: now + cur.ttlMs };
        this.locks.set(cmd.name, renewed);
        return { op: 'lock.renew', ok: true, token: cur.token, expiresAt: renewed.expiresAt };
      }
      case 'lock.release': {
        const cur = this.locks.get(cmd.name);
        // Releasing a lapsed grant nobody else took is harmless: the record goes.
        if (!cur || cur.token !== cmd.token) return { op: 'lock.release', ok: false };
        this.locks.delete(cmd.name);
        return { op: 'lock.release', ok: true };
      }
    }
  }

  private tick(now: number): number {
    if (now > this.clock) this.clock = now;
    return this.clock;
  }

  /**
   * A deterministic encoding of the whole state: equal states give equal bytes
   * (keys and lock names sorted, shortest CBOR heads). Layout:
   *   ["quorumd-kv", 1, appliedIndex, clockMs, badCommands,
   *    [[key, value, createIndex, modIndex], ...], [[name, owner, token, ttlMs, expiresAt], ...]]
   */
  snapshot(): Uint8Array {
    const keys = [...this.data.keys()].sort(byKey);
    const names = [...this.locks.keys()].sort(byKey);
    let size = 64;
    for (const k of keys) size += this.data.get(k)!.value.length + k.length * 3 + 24;
    const w = new CborWriter(size + names.length * 64);
    w.array(7).text(SNAPSHOT_MAGIC).uint(SNAPSHOT_VERSION).uint(this.applied).uint(this.clock).uint(this.bad);
    w.array(keys.length);
    for (const k of keys) {
      const e = this.data.get(k)!;
      w.array(4).text(k).bytes(e.value).uint(e.createIndex).uint(e.modIndex);
    }
    w.array(names.length);
    for (const n of names) {
      const l = this.locks.get(n)!;
      w.array(5).text(l.name).text(l.owner).uint(l.token).uint(l.ttlMs).uint(l.expiresAt);
    }
    return w.finish();
  }

  /** Rebuilds a state machine from `snapshot()` bytes, validating everything. Never throws. */
  static restore(bytes: Uint8Array): KvStateMachine | KvError {
    const bad = (msg: string) => new KvError('bad-snapshot', 'snapshot', `snapshot: ${msg}`);
    if (!(bytes instanceof Uint8Array)) return bad('expected bytes (Uint8Array)');
    const r = readCbor(bytes);
    if (!r.ok) return bad(`not valid CBOR: ${r.error}`);
    const root = r.value;
    if (!Array.isArray(root) || root.length !== 7) return bad('expected a 7-element array');
    if (root[0] !== SNAPSHOT_MAGIC) return bad(`expected magic "${SNAPSHOT_MAGIC}"`);
    if (root[1] !== SNAPSHOT_VERSION) return bad(`unsupported version ${JSON.stringify(root[1])}, expected ${SNAPSHOT_VERSION}`);
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
    }
    prev = undefined;
    for (let i = 0; i < lockRows.length; i++) {
      const row = lockRows[i]!;
      if (!Array.isArray(row) || row.length !== 5) return bad(`lock row ${i}: expected [name, owner, token, ttlMs, expiresAt]`);
      const [name, owner, token, ttl, exp] = row;
      const ne = checkKeyLike(name, `lock row ${i} name`) ?? checkKeyLike(owner, `lock row ${i} owner`, 'bad-owner');
      if (ne) return bad(ne.message);
      const n = name as string;
      if (prev !== undefined && byKey(prev, n) >= 0) return bad(`lock row ${i}: names must be sorted and unique`);
      prev = n;
      if (!uint(token) || token < 1 || token > applied) return bad(`lock row ${i}: expected 1 ≤ token ≤ appliedIndex`);
      if (!uint(ttl) || ttl < MIN_TTL_MS || ttl > MAX_TTL_MS) return bad(`lock row ${i}: ttlMs out of range`);
      if (!uint(exp)) return bad(`lock row ${i}: expiresAt must be an unsigned integer`);
      sm.locks.set(n, { name: n, owner: owner as string, token, ttlMs: ttl, expiresAt: exp });
    }
    return sm;
  }
}
