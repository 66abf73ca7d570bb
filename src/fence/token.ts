/**
 * Fencing tokens (docs/fencing.md): numbers that only grow, handed to everything that acts
 * on the outside world (hooks, jobs, lock holders), so that an outside resource can
 * reject a command from an epoch that has already been superseded
 * (Kleppmann, "How to do distributed locking", 2016; Chubby's sequencers, Burrows 2006 §2.4).
 *
 * ## Encoding for Raft: a token is a log index
 *
 *   - leadership token = the log index of the new leader's no-op entry of its term
 *     (Raft thesis §6.4: a leader appends a no-op at the start of its term), issued
 *     only once that no-op is committed;
 *   - lock-grant token = the log index of the grant entry (src/kv/state-machine.ts
 *     already does this), issued when the grant is applied, i.e. committed.
 *
 * Why this only grows. Every token is the index of a *committed* entry. Let leader
 * L1 issue token n1 (its committed no-op) and a later leader L2 (term t2 > t1) have
 * its no-op at n2. By Leader Completeness (Raft §5.4.3) L2's log holds every entry
 * committed in earlier terms, n1 included, so L2 appends its no-op after it:
 * n2 > n1. The same argument orders lock grants against leadership tokens: each is a
 * distinct committed index, and log positions are a total order shared by every
 * replica. A leader whose no-op never commits never issues a token, which is exactly
 * the case where the argument would fail (an uncommitted no-op may be overwritten
 * and its index reused by the next leader).
 *
 * Why not `term·2^32 + index`: it stays below Number.MAX_SAFE_INTEGER (2^53) only
 * while term < 2^21 *and* index < 2^32; 2^32 entries is 50 days at 1000 writes/s.
 * A plain index is a safe integer for 2^53 entries (285 000 years at 1 MHz), needs
 * no second field, and is the same number the KV layer already uses for locks.
 *
 * ## Encoding for bully: the epoch
 *
 * Bully has no replicated log; the coordinator's epoch (its term) grows with every
 * election and is the token. Bully allows two coordinators in one epoch under a
 * partition — this is what the activation gate and STONITH contain; tokens still only
 * grow per resource, because a resource keeps the newest it saw.
 *
 * Tokens are positive safe integers. 0 means "no token" and is never issued.
 */
import type { Index, NodeId, Term } from '../types.ts';
import { fencingToken } from '../bully/options.ts';

export type Token = number;
export const NO_TOKEN: Token = 0;

/** True for a value that can be a token (a safe integer ≥ 1). */
export function isToken(x: unknown): x is Token {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 1;
}

/** Throws a clear error unless `x` is a token; `what` names the input in the message. */
export function checkToken(x: unknown, what = 'token'): Token {
  if (!isToken(x)) {
    throw new RangeError(`${what}: expected a fencing token (an integer 1..${Number.MAX_SAFE_INTEGER}), got ${describe(x)}`);
  }
  return x;
}

/**
 * Parses a token from text (an HTTP query `?token=`, an environment variable of a
 * hook). Only plain decimal digits, no sign, no exponent, no leading zeros.
 */
export function parseToken(text: unknown, what = 'token'): Token {
  if (typeof text !== 'string') throw new TypeError(`${what}: expected a decimal string, got ${describe(text)}`);
  if (!/^[1-9][0-9]{0,15}$/.test(text)) {
    throw new RangeError(`${what}: expected a decimal integer 1..${Number.MAX_SAFE_INTEGER} without sign or leading zeros, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return checkToken(Number(text), what);
}

/** Facts about a Raft leader's term start, as the runtime knows them. */
export interface RaftLeadership {
  term: Term;
  /** Index of the no-op entry the leader appended at the start of `term`. */
  noopIndex: Index;
  /** The leader's current commit index. */
  commitIndex: Index;
}

/**
 * The leadership token of a Raft leader, or `NO_TOKEN` while its no-op is not yet
 * committed (see the file comment: only a committed index is safe to hand out).
 */
export function raftLeaderToken(l: RaftLeadership): Token {
  if (l === null || typeof l !== 'object') throw new TypeError(`raftLeaderToken: expected { term, noopIndex, commitIndex }, got ${describe(l)}`);
  checkToken(l.term, 'raftLeaderToken term');
  checkToken(l.noopIndex, 'raftLeaderToken noopIndex');
  if (!Number.isSafeInteger(l.commitIndex) || l.commitIndex < 0) throw new RangeError(`raftLeaderToken commitIndex: expected an integer ≥ 0, got ${describe(l.commitIndex)}`);
  return l.commitIndex >= l.noopIndex ? l.noopIndex : NO_TOKEN;
}

/** The token of a lock grant applied at log index `index` (same as src/kv). */
export function raftGrantToken(index: Index): Token {
  return checkToken(index, 'raftGrantToken index');
}

/**
 * The leadership token of a bully coordinator: epoch×256 + coordinator id, the
 * engine's own token (src/bully/options.ts `fencingToken`). The epoch alone is not
 * unique: two sides of a partition can both pick max(seen)+1, and the id breaks the
 * tie the same way the engine does when two such coordinators meet.
 */
export function bullyToken(epoch: Term, coordinator: NodeId): Token {
  return checkToken(fencingToken(epoch, coordinator), 'bullyToken');
}

/**
 * Watches a stream of issued tokens and reports the first that did not grow: the
 * simulator's "fencing tokens only grow" invariant (docs/sim.md), and a self-check a
 * runtime can keep. Equal tokens are allowed (one epoch issues many commands).
 */
export class TokenMonotonicity {
  private newest: Token = NO_TOKEN;
  private violationsValue: string[] = [];

  observe(token: Token, context = ''): boolean {
    checkToken(token, 'TokenMonotonicity.observe');
    if (token < this.newest) {
      this.violationsValue.push(`token ${token} issued after ${this.newest}${context ? ` (${context})` : ''}`);
      return false;
    }
    this.newest = token;
    return true;
  }
  get highest(): Token {
    return this.newest;
  }
  get violations(): readonly string[] {
    return this.violationsValue;
  }
}

/** @internal A short, safe rendering of any value for error messages. */
export function describe(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint' || x === undefined || x === null) return String(x);
  if (Array.isArray(x)) return `an array of ${x.length}`;
  return `a ${typeof x}`;
}
