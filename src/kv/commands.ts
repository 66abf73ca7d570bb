/**
 * Commands of the replicated key-value state machine (docs/api.md): their in-memory
 * shape, their limits, validation, and their compact CBOR encoding in the log.
 *
 * Encoding: one CBOR array whose first element is the op code (small integer),
 * then positional fields; optional trailing fields are simply absent:
 *   put           [1, key, value(bytes)]            or [1, key, value, cas]
 *   del           [2, key]                          or [2, key, cas]
 *   lock.acquire  [3, name, owner, ttlMs, now, lease]  (lease: 16-byte digest of the
 *                                                        holder's secret lease id; absent
 *                                                        in entries written before leases)
 *   lock.renew    [14, name, lease, now]              (by lease; [4, name, token, now]: older entries)
 *   lock.release  [15, name, lease]                   (by lease; [5, name, token]: older entries)
 *   lead.claim    [10, node, term]                   (split-brain defenses, see below)
 *   lead.active   [11, node, term, token]
 *   fence.record  [12, target, by, term, outcome index, level + 1, atMs, reason]
 *   job.claim     [6, job, slot, node, term, token]        (scheduled jobs, see below)
 *   job.done      [7, job, slot, node, outcome index, code + 1, signal, startedAtMs, durationMs]
 *   job.reset     [8, job, now, node, term]                (withdraws a future claim, see below)
 * Keys, names and owners are CBOR text strings. A put of a 64-KiB value costs 1 + 3
 * + key + 5 bytes of framing.
 *
 * Op codes are part of the log format: never renumber them; a new command gets a
 * new code.
 */
import { CborWriter, readCbor, utf8Encoder, type Cbor } from './cbor.ts';

/** Longest key (and lock name, and lock owner), in UTF-8 bytes. */
export const MAX_KEY_BYTES = 256;

/**
 * Largest value, in bytes. The default maximum frame is 64 KiB (docs/wire.md) and a
 * put travels inside one Append message as one entry: 1 KiB is reserved for the
 * message envelope (version, type, cluster, ids, term, bootId, seq, prevIndex,
 * prevTerm, commit: < 64 bytes), the entry header (term, index, type: < 20 bytes),
 * the command framing with a maximal key (< 270 bytes) and the 16-byte tag, with
 * room to spare. The Raft engine must send an entry this large alone in its Append.
 */
export const MAX_VALUE_BYTES = 64 * 1024 - 1024;

/**
 * Largest encoded command the decoder looks at: a maximal put plus its framing.
 * Anything longer in the log is rejected before parsing.
 */
export const MAX_COMMAND_BYTES = MAX_VALUE_BYTES + MAX_KEY_BYTES + 32;

/** Shortest lock TTL: 1 ms (shorter is meaningless for a lease). */
export const MIN_TTL_MS = 1;
/**
 * Longest lock TTL: one day. A holder that dies blocks its lock for at most its
 * TTL, so an unbounded TTL would make a crashed client block a lock forever.
 */
export const MAX_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Largest `now` a lock command may carry, so that `now + ttlMs` stays a safe
 * integer (2^53 ms is 285,000 years; any real time line fits).
 */
export const MAX_NOW_MS = Number.MAX_SAFE_INTEGER - MAX_TTL_MS;

export const OpCode = {
  Put: 1,
  Del: 2,
  LockAcquire: 3,
  LockRenew: 4,
  LockRelease: 5,
  JobClaim: 6,
  JobDone: 7,
  JobReset: 8,
  // 9 left free.
  LeadClaim: 10,
  LeadActive: 11,
  FenceRecord: 12,
  // 13 left free.
  LockRenewLease: 14,
  LockReleaseLease: 15,
} as const;

/**
 * Bytes of a lease digest: the first 16 bytes of SHA-256 over the holder's secret
 * lease id (src/kv/lease.ts). Only the digest is in the log, in snapshots and on the
 * wire (forwarded commands travel through the broker): the id itself stays with the
 * client and the node it talked to.
 */
export const LEASE_DIGEST_BYTES = 16;

/**
 * `cas` is the expected modify index of the key: the command applies only if the
 * key's current modify index equals it; `cas: 0` means "the key must not exist"
 * (create-only put; for del: succeed only as a no-op on an absent key).
 */
export interface PutCommand { op: 'put'; key: string; value: Uint8Array; cas?: number }
export interface DelCommand { op: 'del'; key: string; cas?: number }
/**
 * `now` is the leader's time stamp in milliseconds on the cluster's time line
 * (the leader stamps it when it proposes; the state machine never reads a clock).
 */
export interface LockAcquireCommand { op: 'lock.acquire'; name: string; owner: string; ttlMs: number; now: number; lease?: Uint8Array }
/**
 * Renew and release name the grant by its lease digest (`lease`). `token` (the public
 * fencing token) is how entries written before leases named it; such entries still
 * apply to grants made without a lease, never to a grant that has one. Exactly one of
 * the two.
 */
export interface LockRenewCommand { op: 'lock.renew'; name: string; token?: number; lease?: Uint8Array; now: number }
export interface LockReleaseCommand { op: 'lock.release'; name: string; token?: number; lease?: Uint8Array }

/**
 * Split-brain defenses (docs/fencing.md; daemon/runtime/activation.ts). A Raft leader
 * appends `lead.claim` right after its election and becomes active only once that
 * entry is applied: every leader that ever acted therefore left a committed claim,
 * and by Leader Completeness (Raft §5.4.3) every later leader finds it in its log.
 * Once active, it appends `lead.active`: leaders of earlier terms were provably
 * stopped at that moment, so later leaders need not worry about them any more.
 * The state machine keeps the claims since the newest activation: the *suspects*
 * a new leader must see stopped (fenced, lease expired, acknowledged) before it acts.
 */
export interface LeadClaimCommand { op: 'lead.claim'; node: number; term: number }
export interface LeadActiveCommand { op: 'lead.active'; node: number; term: number; token: number }
/** Outcomes of a fence as kept in the replicated history (src/fence/fencer.ts FenceOutcome minus 'pending'). */
/**
 * Outcomes in the replicated fence history. 'powered-on' ends a 'reboot' fence: the
 * fencer's own power-on, or a later leader's that took over a fence whose fencer stopped
 * leading or crashed before it (docs/fencing.md). Appended last: encodings by index stay.
 */
export const FENCE_OUTCOMES = ['off', 'already-off', 'failed', 'cancelled', 'confirmed', 'powered-on'] as const;
export type FenceOutcomeName = (typeof FENCE_OUTCOMES)[number];
/** One finished fence, replicated so that every node's `status` shows the history. `atMs` is the fencing node's monotonic time. */
export interface FenceRecordCommand {
  op: 'fence.record';
  target: number;
  by: number;
  term: number;
  outcome: FenceOutcomeName;
  /** Level (0-based) that succeeded, or -1. */
  level: number;
  atMs: number;
  reason: string;
}
/** Longest fence reason kept, in characters. */
export const MAX_FENCE_REASON = 200;

/**
 * Leader-only scheduled jobs (daemon/jobs). The active leader appends `job.claim` for
 * a time slot of a job before it runs it, and runs it only once the claim is applied
 * with ok: the state machine grants a slot only if it is later than every slot of that
 * job granted before (so a slot is granted once, and a slot that an earlier leader
 * claimed is never run again), and only to a term not older than the newest recorded
 * activation (lead.active: a deposed leader's late claim is refused). `slot` is the
 * scheduled fire time in ms since the Unix epoch (the slot's identity, not a clock
 * reading of the state machine); `token` is the claimer's fencing token, handed to the
 * job. `job.done` records how the run of a slot ended, for `quorumd jobs`.
 */
export interface JobClaimCommand { op: 'job.claim'; job: string; slot: number; node: number; term: number; token: number }
/** How a job run ended: exit 0; non-zero exit or signal; killed after its timeout; could not be started. */
export const JOB_OUTCOMES = ['ok', 'failed', 'timeout', 'error'] as const;
export type JobOutcomeName = (typeof JOB_OUTCOMES)[number];
/** Longest signal name kept (e.g. "SIGKILL"). */
export const MAX_SIGNAL_CHARS = 16;
export interface JobDoneCommand {
  op: 'job.done';
  job: string;
  slot: number;
  node: number;
  outcome: JobOutcomeName;
  /** Exit code 0..255, or -1 when the process did not exit by itself (signal, not started). */
  code: number;
  /** Signal that ended the process ("" for none). */
  signal: string;
  /** Wall-clock start of the run, ms since the Unix epoch (informational). */
  startedAtMs: number;
  durationMs: number;
}

/**
 * `quorumd jobs reset NAME`: withdraws a job's latest claim when it lies in the future
 * of the active leader's wall clock (a leader whose clock was ahead claimed it; every
 * slot up to it would be refused until real time catches up). `now` and `term` are the
 * proposing active leader's wall clock (ms since the Unix epoch: the clock that claims
 * the next slots) and term, stamped when it proposes; `node` is that leader. Applied,
 * the claim becomes a withdrawal floor at `now`: later claims must be after it.
 * Older builds do not know op code 8 and stop at such an entry (NewerEntryError).
 */
export interface JobResetCommand { op: 'job.reset'; job: string; now: number; node: number; term: number }

export type Command = PutCommand | DelCommand | LockAcquireCommand | LockRenewCommand | LockReleaseCommand | LeadClaimCommand | LeadActiveCommand | FenceRecordCommand | JobClaimCommand | JobDoneCommand | JobResetCommand;

export type KvErrorCode =
  | 'bad-command' // not an object / unknown op / undecodable bytes
  | 'bad-key' // missing, not a string, empty, not well-formed Unicode
  | 'key-too-long'
  | 'bad-value' // not bytes
  | 'value-too-large'
  | 'bad-cas'
  | 'bad-owner'
  | 'bad-ttl'
  | 'bad-now'
  | 'bad-token'
  | 'bad-lease'
  | 'quota-exceeded'
  | 'bad-node'
  | 'bad-term'
  | 'bad-fence'
  | 'bad-slot'
  | 'bad-job'
  | 'bad-snapshot'
  | 'apply-order';

/**
 * A typed error naming the offending input (`field`) and what was expected.
 * `httpStatus` is the answer the HTTP API should give (400 bad input, 413 too large).
 */
export class KvError extends Error {
  override readonly name = 'KvError';
  constructor(
    readonly code: KvErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(message);
  }

  get httpStatus(): number {
    return this.code === 'value-too-large' ? 413 : this.code === 'quota-exceeded' ? 507 : 400;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  return typeof v === 'number' ? String(v) : typeof v;
}

/** Checks a key-like string (key, lock name, owner); returns the error or null. */
export function checkKeyLike(v: unknown, field: string, code: 'bad-key' | 'bad-owner' = 'bad-key'): KvError | null {
  if (typeof v !== 'string') return new KvError(code, field, `${field}: expected a string, got ${describe(v)}`);
  if (v.length === 0) return new KvError(code, field, `${field}: expected a non-empty string`);
  if (LONE_SURROGATE.test(v)) return new KvError(code, field, `${field}: expected well-formed Unicode (has a lone surrogate)`);
  // A UTF-16 code unit is at most 3 UTF-8 bytes, so short strings need no encoding.
  if (v.length * 3 > MAX_KEY_BYTES) {
    const n = utf8Encoder.encode(v).length;
    if (n > MAX_KEY_BYTES) return new KvError(code === 'bad-key' ? 'key-too-long' : code, field, `${field}: ${n} UTF-8 bytes, at most ${MAX_KEY_BYTES} allowed`);
  }
  return null;
}

function checkLease(v: unknown, field = 'lease'): KvError | null {
  if (!(v instanceof Uint8Array) || v.length !== LEASE_DIGEST_BYTES) {
    return new KvError('bad-lease', field, `${field}: expected a ${LEASE_DIGEST_BYTES}-byte lease digest, got ${describe(v)}`);
  }
  return null;
}

/** Renew/release name their grant by exactly one of token (older entries) and lease. */
function checkGrantRef(c: Record<string, unknown>): KvError | null {
  if ((c.token === undefined) === (c.lease === undefined)) {
    return new KvError('bad-lease', 'lease', 'lease: expected exactly one of lease (the grant\'s lease digest) and token');
  }
  return c.lease !== undefined ? checkLease(c.lease) : checkIndexLike(c.token, 'token', 'bad-token', 1);
}

function checkIndexLike(v: unknown, field: string, code: KvErrorCode, min: number, max = Number.MAX_SAFE_INTEGER): KvError | null {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    return new KvError(code, field, `${field}: expected an integer in [${min}, ${max}], got ${describe(v)}`);
  }
  return null;
}

/** Validates an in-memory command (e.g. built from an HTTP request). Returns null when valid. */
export function validateCommand(cmd: unknown): KvError | null {
  if (typeof cmd !== 'object' || cmd === null || Array.isArray(cmd)) {
    return new KvError('bad-command', 'command', `command: expected an object, got ${describe(cmd)}`);
  }
  const c = cmd as Record<string, unknown>;
  switch (c.op) {
    case 'put': {
      const e = checkKeyLike(c.key, 'key');
      if (e) return e;
      if (!(c.value instanceof Uint8Array)) return new KvError('bad-value', 'value', `value: expected bytes (Uint8Array), got ${describe(c.value)}`);
      if (c.value.length > MAX_VALUE_BYTES) return new KvError('value-too-large', 'value', `value: ${c.value.length} bytes, at most ${MAX_VALUE_BYTES} allowed`);
      if (c.cas !== undefined) return checkIndexLike(c.cas, 'cas', 'bad-cas', 0);
      return null;
    }
    case 'del': {
      const e = checkKeyLike(c.key, 'key');
      if (e) return e;
      if (c.cas !== undefined) return checkIndexLike(c.cas, 'cas', 'bad-cas', 0);
      return null;
    }
    case 'lock.acquire': {
      const e = checkKeyLike(c.name, 'name') ?? checkKeyLike(c.owner, 'owner', 'bad-owner');
      if (e) return e;
      if (typeof c.ttlMs !== 'number' || !Number.isSafeInteger(c.ttlMs) || c.ttlMs < MIN_TTL_MS || c.ttlMs > MAX_TTL_MS) {
        return new KvError('bad-ttl', 'ttlMs', `ttlMs: expected an integer in [${MIN_TTL_MS}, ${MAX_TTL_MS}], got ${describe(c.ttlMs)}`);
      }
      return checkIndexLike(c.now, 'now', 'bad-now', 0, MAX_NOW_MS) ?? (c.lease !== undefined ? checkLease(c.lease) : null);
    }
    case 'lock.renew':
      return checkKeyLike(c.name, 'name') ?? checkGrantRef(c) ?? checkIndexLike(c.now, 'now', 'bad-now', 0, MAX_NOW_MS);
    case 'lock.release':
      return checkKeyLike(c.name, 'name') ?? checkGrantRef(c);
    case 'lead.claim':
      return checkIndexLike(c.node, 'node', 'bad-node', 1, 254) ?? checkIndexLike(c.term, 'term', 'bad-term', 1);
    case 'lead.active':
      return checkIndexLike(c.node, 'node', 'bad-node', 1, 254) ?? checkIndexLike(c.term, 'term', 'bad-term', 1) ?? checkIndexLike(c.token, 'token', 'bad-token', 1);
    case 'fence.record': {
      const e =
        checkIndexLike(c.target, 'target', 'bad-node', 1, 254) ??
        checkIndexLike(c.by, 'by', 'bad-node', 1, 254) ??
        checkIndexLike(c.term, 'term', 'bad-term', 0) ??
        checkIndexLike(c.level, 'level', 'bad-fence', -1, 1000) ??
        checkIndexLike(c.atMs, 'atMs', 'bad-fence', 0);
      if (e) return e;
      if (typeof c.outcome !== 'string' || !(FENCE_OUTCOMES as readonly string[]).includes(c.outcome)) {
        return new KvError('bad-fence', 'outcome', `outcome: expected one of ${FENCE_OUTCOMES.join(', ')}, got ${describe(c.outcome)}`);
      }
      if (typeof c.reason !== 'string' || c.reason.length > MAX_FENCE_REASON || LONE_SURROGATE.test(c.reason)) {
        return new KvError('bad-fence', 'reason', `reason: expected well-formed text of at most ${MAX_FENCE_REASON} characters, got ${describe(c.reason)}`);
      }
      return null;
    }
    case 'job.claim':
      return (
        checkKeyLike(c.job, 'job') ??
        checkIndexLike(c.slot, 'slot', 'bad-slot', 0) ??
        checkIndexLike(c.node, 'node', 'bad-node', 1, 254) ??
        checkIndexLike(c.term, 'term', 'bad-term', 1) ??
        checkIndexLike(c.token, 'token', 'bad-token', 1)
      );
    case 'job.done': {
      const e =
        checkKeyLike(c.job, 'job') ??
        checkIndexLike(c.slot, 'slot', 'bad-slot', 0) ??
        checkIndexLike(c.node, 'node', 'bad-node', 1, 254) ??
        checkIndexLike(c.code, 'code', 'bad-job', -1, 255) ??
        checkIndexLike(c.startedAtMs, 'startedAtMs', 'bad-job', 0) ??
        checkIndexLike(c.durationMs, 'durationMs', 'bad-job', 0);
      if (e) return e;
      if (typeof c.outcome !== 'string' || !(JOB_OUTCOMES as readonly string[]).includes(c.outcome)) {
        return new KvError('bad-job', 'outcome', `outcome: expected one of ${JOB_OUTCOMES.join(', ')}, got ${describe(c.outcome)}`);
      }
      if (typeof c.signal !== 'string' || c.signal.length > MAX_SIGNAL_CHARS || !/^[A-Z0-9]*$/.test(c.signal)) {
        return new KvError('bad-job', 'signal', `signal: expected "" or a signal name such as "SIGTERM" (A-Z, 0-9, at most ${MAX_SIGNAL_CHARS} characters), got ${describe(c.signal)}`);
      }
      return null;
    }
    case 'job.reset':
      return (
        checkKeyLike(c.job, 'job') ??
        checkIndexLike(c.now, 'now', 'bad-now', 0, MAX_NOW_MS) ??
        checkIndexLike(c.node, 'node', 'bad-node', 1, 254) ??
        checkIndexLike(c.term, 'term', 'bad-term', 1)
      );
    default:
      return new KvError('bad-command', 'op', `op: expected put, del, lock.acquire, lock.renew, lock.release, lead.claim, lead.active, fence.record, job.claim, job.done or job.reset, got ${describe(c.op)}`);
  }
}

/** Encodes a command for the log, or returns the validation error (never throws). */
export function encodeCommand(cmd: Command): Uint8Array | KvError {
  const err = validateCommand(cmd);
  if (err) return err;
  const w = new CborWriter(32);
  switch (cmd.op) {
    case 'put':
      w.array(cmd.cas === undefined ? 3 : 4).uint(OpCode.Put).text(cmd.key).bytes(cmd.value);
      if (cmd.cas !== undefined) w.uint(cmd.cas);
      break;
    case 'del':
      w.array(cmd.cas === undefined ? 2 : 3).uint(OpCode.Del).text(cmd.key);
      if (cmd.cas !== undefined) w.uint(cmd.cas);
      break;
    case 'lock.acquire':
      w.array(cmd.lease ? 6 : 5).uint(OpCode.LockAcquire).text(cmd.name).text(cmd.owner).uint(cmd.ttlMs).uint(cmd.now);
      if (cmd.lease) w.bytes(cmd.lease);
      break;
    case 'lock.renew':
      if (cmd.lease) w.array(4).uint(OpCode.LockRenewLease).text(cmd.name).bytes(cmd.lease).uint(cmd.now);
      else w.array(4).uint(OpCode.LockRenew).text(cmd.name).uint(cmd.token!).uint(cmd.now);
      break;
    case 'lock.release':
      if (cmd.lease) w.array(3).uint(OpCode.LockReleaseLease).text(cmd.name).bytes(cmd.lease);
      else w.array(3).uint(OpCode.LockRelease).text(cmd.name).uint(cmd.token!);
      break;
    case 'lead.claim':
      w.array(3).uint(OpCode.LeadClaim).uint(cmd.node).uint(cmd.term);
      break;
    case 'lead.active':
      w.array(4).uint(OpCode.LeadActive).uint(cmd.node).uint(cmd.term).uint(cmd.token);
      break;
    case 'fence.record':
      // level -1 (none) is stored as 0, levels as level + 1: the writer has unsigned integers only.
      w.array(8).uint(OpCode.FenceRecord).uint(cmd.target).uint(cmd.by).uint(cmd.term).uint(FENCE_OUTCOMES.indexOf(cmd.outcome)).uint(cmd.level + 1).uint(cmd.atMs).text(cmd.reason);
      break;
    case 'job.claim':
      w.array(6).uint(OpCode.JobClaim).text(cmd.job).uint(cmd.slot).uint(cmd.node).uint(cmd.term).uint(cmd.token);
      break;
    case 'job.done':
      // code -1 (none) is stored as 0, codes as code + 1 (unsigned integers only).
      w.array(9).uint(OpCode.JobDone).text(cmd.job).uint(cmd.slot).uint(cmd.node).uint(JOB_OUTCOMES.indexOf(cmd.outcome)).uint(cmd.code + 1).text(cmd.signal).uint(cmd.startedAtMs).uint(cmd.durationMs);
      break;
    case 'job.reset':
      w.array(5).uint(OpCode.JobReset).text(cmd.job).uint(cmd.now).uint(cmd.node).uint(cmd.term);
      break;
  }
  return w.finish();
}

/**
 * Decodes and validates a command from the log. Never throws: undecodable or
 * invalid bytes give a KvError with code 'bad-command' (or the field's code).
 */
export function decodeCommand(data: Uint8Array): Command | KvError {
  if (!(data instanceof Uint8Array)) return new KvError('bad-command', 'data', `command bytes: expected a Uint8Array, got ${describe(data)}`);
  if (data.length > MAX_COMMAND_BYTES) {
    return new KvError('bad-command', 'data', `command bytes: ${data.length} bytes, at most ${MAX_COMMAND_BYTES} expected`);
  }
  const r = readCbor(data);
  if (!r.ok) return new KvError('bad-command', 'data', `command bytes: not valid CBOR: ${r.error}`);
  const a = r.value;
  if (!Array.isArray(a) || a.length === 0) return new KvError('bad-command', 'data', `command bytes: expected a non-empty CBOR array`);
  let cmd: Command;
  switch (a[0]) {
    case OpCode.Put: {
      const e = arity(a, 3, 4, 'put');
      if (e) return e;
      cmd = { op: 'put', key: a[1] as string, value: a[2] as Uint8Array };
      if (a.length === 4) cmd.cas = a[3] as number;
      break;
    }
    case OpCode.Del: {
      const e = arity(a, 2, 3, 'del');
      if (e) return e;
      cmd = { op: 'del', key: a[1] as string };
      if (a.length === 3) cmd.cas = a[2] as number;
      break;
    }
    case OpCode.LockAcquire: {
      const e = arity(a, 5, 6, 'lock.acquire');
      if (e) return e;
      cmd = { op: 'lock.acquire', name: a[1] as string, owner: a[2] as string, ttlMs: a[3] as number, now: a[4] as number };
      if (a.length === 6) cmd.lease = a[5] as Uint8Array;
      break;
    }
    case OpCode.LockRenewLease: {
      const e = arity(a, 4, 4, 'lock.renew');
      if (e) return e;
      cmd = { op: 'lock.renew', name: a[1] as string, lease: a[2] as Uint8Array, now: a[3] as number };
      break;
    }
    case OpCode.LockReleaseLease: {
      const e = arity(a, 3, 3, 'lock.release');
      if (e) return e;
      cmd = { op: 'lock.release', name: a[1] as string, lease: a[2] as Uint8Array };
      break;
    }
    case OpCode.LockRenew: {
      const e = arity(a, 4, 4, 'lock.renew');
      if (e) return e;
      cmd = { op: 'lock.renew', name: a[1] as string, token: a[2] as number, now: a[3] as number };
      break;
    }
    case OpCode.LockRelease: {
      const e = arity(a, 3, 3, 'lock.release');
      if (e) return e;
      cmd = { op: 'lock.release', name: a[1] as string, token: a[2] as number };
      break;
    }
    case OpCode.LeadClaim: {
      const e = arity(a, 3, 3, 'lead.claim');
      if (e) return e;
      cmd = { op: 'lead.claim', node: a[1] as number, term: a[2] as number };
      break;
    }
    case OpCode.LeadActive: {
      const e = arity(a, 4, 4, 'lead.active');
      if (e) return e;
      cmd = { op: 'lead.active', node: a[1] as number, term: a[2] as number, token: a[3] as number };
      break;
    }
    case OpCode.FenceRecord: {
      const e = arity(a, 8, 8, 'fence.record');
      if (e) return e;
      const oc = a[4];
      const lv = a[5];
      cmd = {
        op: 'fence.record',
        target: a[1] as number,
        by: a[2] as number,
        term: a[3] as number,
        outcome: (typeof oc === 'number' ? FENCE_OUTCOMES[oc] : undefined) as FenceOutcomeName,
        level: typeof lv === 'number' ? lv - 1 : (lv as unknown as number),
        atMs: a[6] as number,
        reason: a[7] as string,
      };
      break;
    }
    case OpCode.JobClaim: {
      const e = arity(a, 6, 6, 'job.claim');
      if (e) return e;
      cmd = { op: 'job.claim', job: a[1] as string, slot: a[2] as number, node: a[3] as number, term: a[4] as number, token: a[5] as number };
      break;
    }
    case OpCode.JobDone: {
      const e = arity(a, 9, 9, 'job.done');
      if (e) return e;
      const oc = a[4];
      const code = a[5];
      cmd = {
        op: 'job.done',
        job: a[1] as string,
        slot: a[2] as number,
        node: a[3] as number,
        outcome: (typeof oc === 'number' ? JOB_OUTCOMES[oc] : undefined) as JobOutcomeName,
        code: typeof code === 'number' ? code - 1 : (code as unknown as number),
        signal: a[6] as string,
        startedAtMs: a[7] as number,
        durationMs: a[8] as number,
      };
      break;
    }
    case OpCode.JobReset: {
      const e = arity(a, 5, 5, 'job.reset');
      if (e) return e;
      cmd = { op: 'job.reset', job: a[1] as string, now: a[2] as number, node: a[3] as number, term: a[4] as number };
      break;
    }
    default:
      return new KvError('bad-command', 'op', `command bytes: unknown op code ${describe(a[0])}`);
  }
  // The casts above are checked here: validateCommand looks at every field's type.
  return validateCommand(cmd) ?? cmd;
}

/** An arity error for a decoded command array, or null. (Not a closure: decodeCommand runs for every applied entry.) */
function arity(a: Cbor[], lo: number, hi: number, what: string): KvError | null {
  return a.length < lo || a.length > hi ? new KvError('bad-command', 'data', `${what} command: expected ${lo === hi ? lo : `${lo}..${hi}`} elements, got ${a.length}`) : null;
}
