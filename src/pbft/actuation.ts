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
 * success (docs/fencing.md). The runtime side (failure detector, proposals, the tally
 * in the checkpointed state, the relay driver) is daemon/runtime/pbft-fencing.ts.
 */
import type { Index, NodeId } from '../types.ts';
import { CborWriter, readCbor, type Cbor } from '../kv/cbor.ts';

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
  /** Each voter's counted request (origin, request number), in the order of `by`: who can check a vote against its origin's detector. */
  votes: Array<{ origin: NodeId; reqNo: number }>;
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
    const d: FenceDecision = { target: r.target, round: t.round, index: e.index, by, votes: by.map((o) => ({ origin: o, reqNo: t.latest.get(o)!.reqNo })) };
    t.round++;
    // Rule 3: every vote was for the round that just ended.
    for (const v of t.latest.values()) v.votes = false;
    this.decisions.push(d);
    if (this.decisions.length > MAX_DECISIONS) this.decisions.shift();
    return d;
  }

  /** Whether `origin`'s newest request about `target` votes for its current round (what the origin's detector compares with). */
  votesNow(origin: NodeId, target: NodeId): boolean {
    return this.targets.get(target)?.latest.get(origin)?.votes === true;
  }

  /**
   * The replicated part (rounds and each origin's newest request per target) as CBOR
   * bytes: [[target, round, origin, reqNo, votes 0|1, origin, reqNo, votes, ...], ...],
   * sorted by target and origin, so equal histories give equal bytes (flat rows: the
   * KV CBOR reader allows 4 levels). `decisions` is not part of it (a record of what
   * this replica executed, not state).
   */
  encode(): Uint8Array {
    const w = new CborWriter(64);
    const targets = [...this.targets.keys()].sort((a, b) => a - b);
    w.array(targets.length);
    for (const target of targets) {
      const t = this.targets.get(target)!;
      const origins = [...t.latest.keys()].sort((a, b) => a - b);
      w.array(2 + 3 * origins.length).uint(target).uint(t.round);
      for (const o of origins) {
        const v = t.latest.get(o)!;
        w.uint(o).uint(v.reqNo).uint(v.votes ? 1 : 0);
      }
    }
    return w.finish();
  }

  get empty(): boolean {
    return this.targets.size === 0;
  }

  /** A tally from `encode()`'s bytes; a string names what is wrong. */
  static decode(o: FenceTallyOptions, data: Uint8Array): FenceTally | string {
    const r = readCbor(data);
    if (!r.ok) return `fence tally: not valid CBOR: ${r.error}`;
    const v = r.value;
    const t = new FenceTally(o);
    if (!Array.isArray(v) || v.length > 254) return 'fence tally: expected an array of at most 254 targets';
    const isId = (x: Cbor | undefined): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 254;
    const isCount = (x: Cbor | undefined): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
    for (let i = 0; i < v.length; i++) {
      const row = v[i];
      if (!Array.isArray(row) || row.length < 2 || (row.length - 2) % 3 !== 0 || !isId(row[0]) || !isCount(row[1])) return `fence tally row ${i}: expected [target, round, origin, reqNo, votes, ...]`;
      if (t.targets.has(row[0])) return `fence tally: target ${row[0]} twice`;
      const latest = new Map<NodeId, { reqNo: number; votes: boolean }>();
      for (let j = 2; j < row.length; j += 3) {
        const [origin, reqNo, votes] = [row[j], row[j + 1], row[j + 2]];
        if (!isId(origin) || !isCount(reqNo) || (votes !== 0 && votes !== 1) || latest.has(origin)) return `fence tally target ${row[0]}: expected distinct (origin, reqNo, votes 0|1) triples`;
        latest.set(origin, { reqNo, votes: votes === 1 });
      }
      t.targets.set(row[0], { round: row[1], latest });
    }
    return t;
  }
}

/** Decisions a tally keeps in `decisions` (a record for status and tests; not replicated state). */
const MAX_DECISIONS = 256;
