import { leaseDigest, type ApplyResult } from '../../src/kv/index.ts';
import { isoUtc } from '../utc-text.ts';

/**
 * What the node runtime's client API answers: an HTTP-like status (docs/api.md) plus
 * the operation's data. The status rule that users and the simulator's history rely on:
 *
 *   200 ok · 404 absent (get) · 409 conflict (cas failed, lock held)
 *   400 bad input · 413 too large
 *   503 definitely NOT applied: no leader, not proposed, or a different entry was
 *       committed at the proposal's index — safe to retry
 *   504 outcome UNKNOWN: proposed or forwarded, but no answer in time (leadership
 *       lost, partition, timeout) — the write may or may not have happened
 *
 * A definite error is never given when the outcome is uncertain.
 */
export const Status = {
  OK: 200,
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  UNAVAILABLE: 503,
  UNKNOWN: 504,
} as const;

export interface ClientResult {
  status: number;
  /** put/del: the key's modify index after the write, or on 409 its current one (0 = absent). get: the key's modify index. */
  index?: number;
  /** get: the value. */
  value?: Uint8Array;
  /** Locks: the fencing token of the grant (or of the current holder on 409). */
  token?: number;
  ttlMs?: number;
  /** Locks: expiry on the state machine's time line (ms). */
  expiresAt?: number;
  /** Locks: the current holder on 409. */
  holder?: string;
  /** Human-readable reason for any status other than 200. */
  error?: string;
  /**
   * 503 only: this node did nothing with the request — refused before proposing,
   * forwarding or reading it, for a reason of its own (it is not running yet: booting,
   * or no more: stopped). The HTTP answer says `"tried": false`, and a client with other
   * nodes to ask may send it to one of them (daemon/http/server.ts NOT_TRIED).
   */
  tried?: false;
  /**
   * Engine pbft: which request this was (origin node, its request number) and this
   * node's signed reply, so that a client can gather f + 1 matching replies from
   * different nodes (src/pbft/reply.ts) instead of trusting this one.
   */
  pbft?: { origin: number; reqNo: number; reply?: import('../../src/pbft/reply.ts').PbftReply };
  /**
   * Engine pbft: set on every KV answer of a pbft node. This answer is one node's word;
   * a client trusts a result only with f + 1 matching signed replies (the HTTP answer
   * says so in X-Quorumd-Trust). The value is f.
   */
  pbftF?: number;
}

export type ClientCallback = (res: ClientResult) => void;

export function unavailable(error: string): ClientResult {
  return { status: Status.UNAVAILABLE, error };
}
/** 503 from a runtime that is not running (booting, stopped): nothing was tried. */
export function notRunning(id: number, state: string): ClientResult {
  return { status: Status.UNAVAILABLE, error: `node ${id} is not running (${state})`, tried: false };
}
export function unknownOutcome(error: string): ClientResult {
  return { status: Status.UNKNOWN, error };
}

/** The digest of a lease id, or the reason it is not one. */
export function leaseArg(lease: unknown): Uint8Array | string {
  if (typeof lease !== 'string' || !/^[A-Za-z0-9_-]{22,64}$/.test(lease)) return 'lease: expected a lease id of 22 to 64 characters A-Z a-z 0-9 _ -';
  return leaseDigest(lease);
}

export function checkKey(key: unknown): ClientResult | undefined {
  if (typeof key !== 'string' || key.length === 0) return { status: Status.BAD_REQUEST, error: `key: expected a non-empty string, got ${typeof key}` };
  return undefined;
}

/** Maps the state machine's result of an applied write to the client's answer. */
export function resultToClient(r: ApplyResult | undefined): ClientResult {
  if (!r) return { status: Status.OK };
  switch (r.op) {
    case 'put':
    case 'del':
      return r.ok ? { status: Status.OK, index: r.index } : { status: Status.CONFLICT, index: r.index, error: `cas failed: the key's modify index is ${r.index}` };
    case 'lock.acquire':
      return r.ok
        ? { status: Status.OK, token: r.token, ttlMs: r.ttlMs, expiresAt: r.expiresAt }
        : { status: Status.CONFLICT, holder: r.holder, token: r.token, expiresAt: r.expiresAt, error: `lock held by ${r.holder}` };
    case 'lock.renew':
      return r.ok ? { status: Status.OK, token: r.token, ttlMs: r.ttlMs, expiresAt: r.expiresAt } : { status: Status.CONFLICT, error: `renew refused: ${r.reason}` };
    case 'lock.release':
      return r.ok ? { status: Status.OK } : { status: Status.CONFLICT, error: 'release refused: not the holder' };
    case 'lead.claim':
    case 'lead.active':
    case 'fence.record':
      return { status: Status.OK };
    case 'job.claim':
      if (r.ok) return { status: Status.OK, index: r.index };
      return {
        status: Status.CONFLICT,
        ...(r.claim ? { holder: `n${r.claim.node}`, token: r.claim.token, index: r.claim.index } : {}),
        error:
          r.reason === 'claimed'
            ? r.claim !== null
              ? `slot not granted: slot ${r.claim.slot} of this job was already claimed by node ${r.claim.node} (term ${r.claim.term})`
              : `slot not granted: the job was reset; a slot must be after its floor ${isoUtc(r.floor ?? 0)}`
            : r.reason === 'stale-leader'
              ? 'slot not granted: the claimer\'s term is older than the newest leadership'
              : 'slot not granted: too many jobs in the replicated table',
      };
    case 'job.done':
      return r.ok ? { status: Status.OK } : { status: Status.CONFLICT, error: 'job result not recorded: no matching claim, or a newer result is kept' };
    case 'job.reset':
      // The details (withdrawn claim, floor) are read from the applied record by whoever
      // answers (a forwarded answer carries the index only: daemon/runtime/forward.ts).
      if (r.ok) return { status: Status.OK, index: r.index };
      return { status: Status.CONFLICT, error: jobResetRefusal(r) };
    case 'error':
      // Applied as a no-op (the index is consumed): definite, and the input was bad.
      return { status: Status.BAD_REQUEST, error: r.error.message };
  }
}

/** Why a job.reset was not applied, in words (the 409 of `POST /v1/jobs/<name>/reset`). */
export function jobResetRefusal(r: Extract<ApplyResult, { op: 'job.reset'; ok: false }>): string {
  if (r.reason === 'no-record') return 'nothing to withdraw: no slot of this job was ever granted (it has no record in the replicated table)';
  if (r.reason === 'stale-leader') return 'not reset: the proposing leader\'s term is older than the newest leadership or than the job\'s record; try again';
  if (r.claim === null) {
    return `nothing to withdraw: the job was reset before (floor ${isoUtc(r.floor ?? 0)}) and no slot was granted since`;
  }
  return `nothing to withdraw: the latest claim ${isoUtc(r.claim.slot)} is not after the leader's clock ${isoUtc(r.now)}; if the leader's clock is the wrong one, fix it first`;
}
