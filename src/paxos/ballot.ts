/**
 * Ballot numbers for Basic Paxos (synod.ts) and Multi-Paxos (multi.ts).
 *
 * Paxos needs proposal numbers that are totally ordered and that no two proposers
 * ever share (Lamport, "Paxos Made Simple", 2001, §2.2: "different proposals have
 * different numbers"; the usual construction is a round number with the proposer's
 * id as the low-order part). Here
 *
 *   ballot = round × 256 + nodeId      (round ≥ 1, nodeId 1..254)
 *
 * so the order is by round first and by node id within a round, every node owns the
 * ballots ending in its id, and 0 means "no ballot" (nothing promised or accepted).
 * The largest ballot is below 2^53: rounds up to 2^45 — at one new round every
 * 10 ms, 11 000 years.
 *
 * A node never reuses one of its ballots: it picks a new one above everything it has
 * promised (its durable promise) or seen, and it promises that ballot to itself in the
 * same Ready that carries its Prepares — so after a restart its durable promise is at
 * least every ballot it ever sent.
 */
import type { NodeId } from '../types.ts';

export type Ballot = number;

/** Node ids occupy the low 8 bits of a ballot. */
export const BALLOT_ID_SPAN = 256;
/** Highest round: keeps every ballot a safe integer. */
export const MAX_ROUND = Math.floor((Number.MAX_SAFE_INTEGER - 255) / BALLOT_ID_SPAN);

export function ballotOf(round: number, id: NodeId): Ballot {
  if (!Number.isInteger(round) || round < 1 || round > MAX_ROUND) throw new RangeError(`ballot: round must be an integer 1..${MAX_ROUND}, got ${String(round)}`);
  if (!Number.isInteger(id) || id < 1 || id > 254) throw new RangeError(`ballot: node id must be 1..254, got ${String(id)}`);
  return round * BALLOT_ID_SPAN + id;
}

/** The round of a ballot (0 for "no ballot"). */
export function roundOf(b: Ballot): number {
  return Math.floor(b / BALLOT_ID_SPAN);
}

/** The node that owns ballot `b` (0 for "no ballot"). */
export function ownerOf(b: Ballot): NodeId {
  return b % BALLOT_ID_SPAN;
}

/** The smallest ballot of node `id` that is above `above`. */
export function nextBallot(above: Ballot, id: NodeId): Ballot {
  return ballotOf(roundOf(above) + 1, id);
}

/** A readable form for logs and messages: "3.2" = round 3 of node 2. */
export function showBallot(b: Ballot): string {
  return b === 0 ? '0' : `${roundOf(b)}.${ownerOf(b)}`;
}
