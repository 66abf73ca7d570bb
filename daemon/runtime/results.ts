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
export function unknownOutcome(error: string): ClientResult {
  return { status: Status.UNKNOWN, error };
}
