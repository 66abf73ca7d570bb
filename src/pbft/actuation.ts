/**
 * Actuation under PBFT: when may honest boards fence (STONITH) board X, given that up
 * to f members — the primary among them, possibly — lie?
 *
 * Under Raft a leader fences on its own judgement: the leader is trusted. A PBFT
 * primary is not, and neither is any single replica: one liar must not be able to cut
 * an honest board's power. The rule here (a pure function of the executed sequence, so
 * every honest replica reaches the same decision at the same sequence number):
 *
 *   A fence of X executes when, at some point of the executed sequence, f + 1 distinct
 *   members other than X *currently* ask for it in X's current round:
 *   1. Only committed and executed requests count, each with its origin — the member
 *      whose signature the request carries (src/pbft/pbft.ts checks it before a backup
 *      prepares it). A primary can order, delay or drop requests; it cannot make one in
 *      another member's name.
 *   2. "Currently": per (origin, X) only the origin's newest fence request counts, by
 *      its request number (signed with it). A suspicion the origin cleared later stays
 *      cleared even if a primary executes the old request after the clearing one: PBFT
 *      executes an origin's requests in any order within its duplicate window (64),
 *      and each (origin, request number) at most once, so a replayed vote runs never.
 *   3. Rounds: a vote names the round of X it is for (how many fences of X executed
 *      before, as the origin saw it). Once X is fenced its round moves on and every
 *      older vote is void: a suspicion of yesterday does not fence X again today.
 *   4. X's own requests about X do not count.
 * Why this suffices: among f + 1 distinct members at most f lie, so at least one
 * honest member's own failure detector suspects X at its newest request. Then the
 * fence is what a crash-fault cluster would do too (an honest member that cannot hear
 * X cannot tell a crash from a partition); a liar alone — or a liar as primary,
 * reordering, replaying and voting as often as it likes — adds at most one vote.
 * Liveness: when f + 1 honest members suspect X (X is down and the network is
 * synchronous again), their votes commit and the fence executes.
 *
 * Which board drives the relay: the one(s) wired to X's relay, when they execute the
 * sequence number at which the decision falls, never earlier, and "already off" is
 * success (docs/fencing.md). Nothing of this is wired into the runtime yet
 * (docs/engines.md says what remains); `quorumd` refuses fencing for engine pbft.
 */
import type { Index, NodeId } from '../types.ts';

export type FenceRequest =
  /** The origin's failure detector suspects `target` (seen at its round `round`). */
  | { kind: 'suspect'; target: NodeId; round: number }
  /** The origin hears `target` again: its suspicion is withdrawn. */
  | { kind: 'clear'; target: NodeId };

export interface ExecutedFenceRequest {
  /** Sequence number it executed at. */
  index: Index;
  /** Its origin (the signer of the request) and the origin's request number. */
  origin: NodeId;
  reqNo: number;
  request: FenceRequest;
}

export interface FenceDecision {
  target: NodeId;
  /** The round that ended with this fence (the target's next round is round + 1). */
  round: number;
  index: Index;
  /** The f + 1 (or more) members whose current votes made it, sorted. */
  by: NodeId[];
}

export interface FenceTallyOptions {
  members: readonly NodeId[];
  f: number;
  /**
   * Testing only: a planted bug, to show that the tests catch it. 'stale-votes' counts
   * an origin's older request after a newer one (no rule 2); 'one-vote' fences on one vote.
   */
  planted?: 'stale-votes' | 'one-vote';
}

interface TargetState {
  round: number;
  /** origin → its newest fence request number about this target, and whether that request is a vote for the current round. */
  latest: Map<NodeId, { reqNo: number; votes: boolean }>;
}

export class FenceTally {
  private readonly targets = new Map<NodeId, TargetState>();
  private readonly need: number;
  readonly decisions: FenceDecision[] = [];

  constructor(private readonly o: FenceTallyOptions) {
    if (!Number.isInteger(o.f) || o.f < 0 || o.members.length < 3 * o.f + 1) throw new RangeError(`FenceTally: expected f ≥ 0 with at least 3f + 1 members, got f=${o.f} and ${o.members.length} members`);
    this.need = o.planted === 'one-vote' ? 1 : o.f + 1;
  }

  /** The round of `target` now (fences of it executed so far). */
  round(target: NodeId): number {
    return this.targets.get(target)?.round ?? 0;
  }

  /** Members whose newest request votes to fence `target` in its current round. */
  voters(target: NodeId): NodeId[] {
    const t = this.targets.get(target);
    if (!t) return [];
    return [...t.latest].filter(([, v]) => v.votes).map(([o]) => o).sort((a, b) => a - b);
  }

  /** Applies one executed fence request (in execution order); returns the fence it completes, if any. */
  apply(e: ExecutedFenceRequest): FenceDecision | undefined {
    const r = e.request;
    if (!this.o.members.includes(e.origin) || !this.o.members.includes(r.target) || e.origin === r.target) return undefined;
    let t = this.targets.get(r.target);
    if (!t) this.targets.set(r.target, (t = { round: 0, latest: new Map() }));
    const prev = t.latest.get(e.origin);
    if (prev && prev.reqNo >= e.reqNo && this.o.planted !== 'stale-votes') return undefined; // rule 2: an older request of this origin
    const votes = r.kind === 'suspect' && r.round === t.round;
    t.latest.set(e.origin, { reqNo: Math.max(e.reqNo, prev?.reqNo ?? 0), votes });
    if (!votes) return undefined;
    const by = this.voters(r.target);
    if (by.length < this.need) return undefined;
    const d: FenceDecision = { target: r.target, round: t.round, index: e.index, by };
    t.round++;
    // Rule 3: every vote was for the round that just ended.
    for (const v of t.latest.values()) v.votes = false;
    this.decisions.push(d);
    return d;
  }
}
