/**
 * Basic Paxos: the single-decree synod — proposer, acceptor and learner in one node —
 * as a pure, deterministic state machine in the Step/Ready/Advance style of the
 * engines (src/engine/contract.ts), so that the deterministic harness can drive it
 * with every fault. Rules from Lamport, "Paxos Made Simple" (2001, "PMS") and "The
 * Part-Time Parliament" (1998).
 *
 * This is the algorithm on its own, to be tested on its own; the replicated log the
 * runtime uses is Multi-Paxos (multi.ts), which runs this protocol once per slot with
 * phase 1 shared by all slots.
 *
 * ## The rules (PMS §2.2, §2.3)
 *   Phase 1a  a proposer picks a ballot n above every ballot it has seen and sends
 *             Prepare(n) to every acceptor.
 *   Phase 1b  an acceptor that has promised nothing above n promises n — it will not
 *             accept a ballot below n any more — and answers with the highest-ballot
 *             proposal it accepted (if any). Otherwise it answers Nack with its promise.
 *   Phase 2a  with promises from a majority, the proposer sends Accept(n, v) where v is
 *             the value of the highest-ballot proposal among the promises, or its own
 *             value if there is none.
 *   Phase 2b  an acceptor that has promised nothing above n accepts (n, v) and tells
 *             every learner (Accepted); otherwise it answers Nack.
 *   Learning  a value is chosen when a majority of acceptors accepted the same ballot;
 *             a learner that counts a majority of Accepted(n, v) knows v. A node that
 *             learns v tells everyone once (Decided), so that a learner that missed
 *             Accepted messages learns too.
 *
 * Safety needs nothing but those rules and acceptors that never forget: the promise
 * and the accepted proposal are persisted before the answer leaves (the Ready below).
 * Liveness needs one proposer to run alone long enough (FLP): two proposers that keep
 * preempting each other ("dueling proposers", PMS §2.4) never finish. Each proposer
 * therefore waits a random time drawn from the injected Rng before it retries after a
 * Nack or a round that did not finish, so that one of them soon runs alone.
 *
 * ## Ready / advance
 * `ready()` returns what to do, in this order:
 *   1. write `persist` records in order (each one a small durable record: a promise, or
 *      an accepted proposal, which implies the promise of its ballot) and make them
 *      durable;
 *   2. only then send `messages` (promises and Accepted answers rest on step 1);
 *   3. `chosen` is set once, when this node first learns the chosen value;
 *   4. call `advance(ready)`. Messages a node sends to itself are delivered to it here,
 *      so its own promise and its own acceptance count only once durable, like every
 *      other acceptor's.
 * A crash in the middle of step 1 (a torn write) loses a suffix of the records of that
 * Ready; none of its messages left, so no other node relies on what was lost.
 *
 * Restart: construct a new SynodNode from the durable records (`SynodDurable`). The
 * learner's knowledge is not durable: a restarted node learns the value again from a
 * Decided message or by running a round (which re-proposes the chosen value).
 */
import type { Rng } from '../rng.ts';
import type { NodeId } from '../types.ts';
import { nextBallot, type Ballot } from './ballot.ts';

export interface Proposal {
  ballot: Ballot;
  value: string;
}

/** What an acceptor keeps on disk. */
export interface SynodDurable {
  promised: Ballot;
  accepted: Proposal | undefined;
}

/** One durable record: a promise, or an accepted proposal (which implies the promise of its ballot). */
export type SynodRecord = { kind: 'promise'; promised: Ballot } | { kind: 'accept'; ballot: Ballot; value: string };

interface Base {
  from: NodeId;
  to: NodeId;
}
export type SynodMessage =
  | (Base & { type: 'prepare'; ballot: Ballot })
  | (Base & { type: 'promise'; ballot: Ballot; accepted: Proposal | undefined })
  | (Base & { type: 'accept'; ballot: Ballot; value: string })
  | (Base & { type: 'accepted'; ballot: Ballot; value: string })
  /** `ballot` is the refused ballot, `promised` the acceptor's higher promise. */
  | (Base & { type: 'nack'; ballot: Ballot; promised: Ballot })
  | (Base & { type: 'decided'; value: string });

export interface SynodReady {
  persist: SynodRecord[];
  messages: SynodMessage[];
  chosen?: string;
}

export interface SynodOptions {
  /**
   * A proposer that got a Nack, or whose round did not finish, retries after a random
   * number of ticks in [retryMinTicks, retryMaxTicks]. Default 10..30 (100–300 ms at a
   * 10 ms tick): well above a round trip, and wide enough that two proposers' retries
   * rarely coincide. min = max removes the randomization (the dueling test uses it).
   */
  retryMinTicks: number;
  retryMaxTicks: number;
  /**
   * TESTING ONLY — a deliberately broken acceptor, so that the tests can show the
   * invariants catch it. 'forget-promise': on restart the acceptor keeps its accepted
   * proposal but forgets a promise it made above it (as if the promise record were
   * never written). Never set outside tests.
   */
  plantedBug: 'none' | 'forget-promise';
}

export const SYNOD_DEFAULTS: Readonly<SynodOptions> = Object.freeze({ retryMinTicks: 10, retryMaxTicks: 30, plantedBug: 'none' });

export interface SynodInit {
  id: NodeId;
  /** Every acceptor (this node included); all are proposers and learners too. */
  members: readonly NodeId[];
  durable?: SynodDurable;
  options?: Partial<SynodOptions>;
  /** Retry backoff only. */
  rng: Rng;
}

export type SynodPhase = 'idle' | 'prepare' | 'accept';

export interface SynodStatus {
  id: NodeId;
  promised: Ballot;
  accepted: Proposal | undefined;
  /** The proposer's current ballot (0 when it never proposed). */
  ballot: Ballot;
  phase: SynodPhase;
  chosen: string | undefined;
}

export type SynodResult = { ok: true } | { ok: false; code: 'bad-request'; reason: string };

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export class SynodNode {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
  readonly options: Readonly<SynodOptions>;
  private readonly rng: Rng;
  private readonly majority: number;

  // Acceptor (durable).
  private promised: Ballot;
  private accepted: Proposal | undefined;

  // Proposer (volatile).
  private want: string | undefined;
  private ballot: Ballot = 0;
  private phase: SynodPhase = 'idle';
  /** Highest ballot seen in any message: the next ballot goes above it. */
  private maxSeen: Ballot = 0;
  private promises = new Map<NodeId, Proposal | undefined>();
  private now = 0;
  /** Tick at which the proposer retries (a round in progress, or backing off). */
  private retryAt = Infinity;

  // Learner (volatile).
  private votes = new Map<string, { value: string; from: Set<NodeId> }>();
  private chosen: string | undefined;
  /** Times this learner was told of a value other than the one it learned (0 unless safety broke). */
  conflicts = 0;
  private chosenReported = false;

  private records: SynodRecord[] = [];
  private msgs: SynodMessage[] = [];
  /** Messages to this node itself: delivered at advance(), once their Ready is durable. */
  private selfMsgs: SynodMessage[] = [];
  private outstanding: SynodReady | undefined;

  constructor(init: SynodInit) {
    if (typeof init !== 'object' || init === null) throw new TypeError('SynodNode: expected an init object {id, members, rng, ...}');
    if (!Number.isInteger(init.id) || init.id < 1 || init.id > 254) throw new RangeError(`SynodNode: id must be a node id 1..254, got ${String(init.id)}`);
    if (!Array.isArray(init.members) || !init.members.includes(init.id)) throw new RangeError(`SynodNode: members must be an array of node ids that includes ${init.id}`);
    if (new Set(init.members).size !== init.members.length) throw new RangeError('SynodNode: members must not repeat a node id');
    if (!init.rng || typeof init.rng.int !== 'function') throw new TypeError('SynodNode: rng must be an Rng (src/rng.ts)');
    const o: SynodOptions = { ...SYNOD_DEFAULTS, ...(init.options ?? {}) };
    if (!isNat(o.retryMinTicks) || o.retryMinTicks < 1 || !isNat(o.retryMaxTicks) || o.retryMaxTicks < o.retryMinTicks) {
      throw new RangeError(`SynodNode options: need 1 ≤ retryMinTicks ≤ retryMaxTicks, got ${String(o.retryMinTicks)}..${String(o.retryMaxTicks)}`);
    }
    if (o.plantedBug !== 'none' && o.plantedBug !== 'forget-promise') throw new RangeError(`SynodNode options: plantedBug must be 'none' or 'forget-promise', got ${String(o.plantedBug)}`);
    this.id = init.id;
    this.members = [...init.members];
    this.options = Object.freeze(o);
    this.rng = init.rng;
    this.majority = Math.floor(this.members.length / 2) + 1;
    const d = init.durable ?? { promised: 0, accepted: undefined };
    if (!isNat(d.promised)) throw new TypeError(`SynodNode durable.promised: expected a ballot, got ${String(d.promised)}`);
    if (d.accepted !== undefined && (!isNat(d.accepted.ballot) || typeof d.accepted.value !== 'string')) {
      throw new TypeError('SynodNode durable.accepted: expected {ballot, value: string} or undefined');
    }
    this.accepted = d.accepted ? { ...d.accepted } : undefined;
    // An accepted proposal implies the promise of its ballot (it was accepted only at or above the promise).
    this.promised = Math.max(d.promised, this.accepted?.ballot ?? 0);
    if (this.options.plantedBug === 'forget-promise') this.promised = this.accepted?.ballot ?? 0;
    this.maxSeen = this.promised;
  }

  status(): SynodStatus {
    return { id: this.id, promised: this.promised, accepted: this.accepted ? { ...this.accepted } : undefined, ballot: this.ballot, phase: this.phase, chosen: this.chosen };
  }

  /** The value this node knows is chosen, if any. */
  get learned(): string | undefined {
    return this.chosen;
  }

  // ---------------------------------------------------------------------------
  // Inputs

  /**
   * Asks this node to get `value` chosen (or to learn what was chosen instead). It
   * starts a round at once unless one is running; it keeps retrying until it learns
   * the chosen value, which may be another proposer's.
   */
  propose(value: string): SynodResult {
    if (typeof value !== 'string') return { ok: false, code: 'bad-request', reason: `propose: value must be a string, got ${typeof value}` };
    this.want ??= value;
    if (this.chosen === undefined && this.phase === 'idle') this.startRound();
    return { ok: true };
  }

  tick(): void {
    this.now++;
    if (this.chosen !== undefined || this.want === undefined) return;
    if (this.now >= this.retryAt) this.startRound();
  }

  step(m: SynodMessage): void {
    if (typeof m !== 'object' || m === null) throw new TypeError(`synod step: expected a message object, got ${String(m)}`);
    if (m.to !== this.id || m.from === this.id || !this.members.includes(m.from)) return;
    this.handle(m);
  }

  private handle(m: SynodMessage): void {
    switch (m.type) {
      case 'prepare':
        this.seen(m.ballot);
        return this.onPrepare(m.from, m.ballot);
      case 'accept':
        this.seen(m.ballot);
        return this.onAccept(m.from, m.ballot, m.value);
      case 'promise':
        return this.onPromise(m.from, m.ballot, m.accepted);
      case 'nack':
        this.seen(m.promised);
        return this.onNack(m.ballot);
      case 'accepted':
        return this.onAccepted(m.from, m.ballot, m.value);
      case 'decided':
        return this.learn(m.value);
      default:
        throw new TypeError(`synod step: unknown message type ${String((m as { type: unknown }).type)}`);
    }
  }

  // ---------------------------------------------------------------------------
  // Acceptor (PMS §2.2 phases 1b and 2b)

  private onPrepare(from: NodeId, n: Ballot): void {
    if (n < this.promised) return this.send({ type: 'nack', from: this.id, to: from, ballot: n, promised: this.promised });
    if (n > this.promised) {
      this.promised = n;
      this.records.push({ kind: 'promise', promised: n });
    }
    // n === promised: a duplicate (or a retry of the same round); the same promise again.
    this.send({ type: 'promise', from: this.id, to: from, ballot: n, accepted: this.accepted ? { ...this.accepted } : undefined });
    // A proposer that runs a round after the value was chosen learns it at once.
    if (this.chosen !== undefined) this.send({ type: 'decided', from: this.id, to: from, value: this.chosen });
  }

  private onAccept(from: NodeId, n: Ballot, value: string): void {
    if (n < this.promised) return this.send({ type: 'nack', from: this.id, to: from, ballot: n, promised: this.promised });
    this.promised = n;
    if (this.accepted?.ballot !== n) {
      this.accepted = { ballot: n, value };
      this.records.push({ kind: 'accept', ballot: n, value });
    }
    // Tell every learner (this node's own learner counts it after the Ready is durable).
    for (const to of this.members) this.send({ type: 'accepted', from: this.id, to, ballot: n, value });
  }

  // ---------------------------------------------------------------------------
  // Proposer (PMS §2.2 phases 1a and 2a)

  private startRound(): void {
    this.ballot = nextBallot(Math.max(this.promised, this.maxSeen, this.ballot), this.id);
    this.maxSeen = this.ballot;
    this.phase = 'prepare';
    this.promises.clear();
    this.retryAt = this.now + this.backoff();
    // Our own acceptor is asked like any other (the message is delivered at advance()).
    for (const to of this.members) this.send({ type: 'prepare', from: this.id, to, ballot: this.ballot });
  }

  private onPromise(from: NodeId, n: Ballot, acc: Proposal | undefined): void {
    if (this.phase !== 'prepare' || n !== this.ballot) return; // a late answer to an older round
    this.promises.set(from, acc);
    if (this.promises.size < this.majority) return;
    // The value of the highest-ballot proposal any of the majority accepted, else ours.
    let best: Proposal | undefined;
    for (const p of this.promises.values()) if (p && (!best || p.ballot > best.ballot)) best = p;
    const value = best ? best.value : this.want!;
    this.phase = 'accept';
    for (const to of this.members) this.send({ type: 'accept', from: this.id, to, ballot: this.ballot, value });
  }

  private onNack(n: Ballot): void {
    if (this.phase === 'idle' || n !== this.ballot) return;
    // Preempted by a higher ballot: back off for a random time, then retry above it.
    this.phase = 'idle';
    this.retryAt = this.now + this.backoff();
  }

  private backoff(): number {
    return this.rng.int(this.options.retryMinTicks, this.options.retryMaxTicks);
  }

  private seen(b: Ballot): void {
    if (b > this.maxSeen) this.maxSeen = b;
  }

  // ---------------------------------------------------------------------------
  // Learner

  private onAccepted(from: NodeId, n: Ballot, value: string): void {
    // Counted per (ballot, value): one ballot carries one value when the rules hold,
    // and if a broken node ever sent two, neither is mistaken for the other's majority.
    const key = `${n}/${value}`;
    let v = this.votes.get(key);
    if (!v) {
      v = { value, from: new Set() };
      this.votes.set(key, v);
    }
    v.from.add(from);
    if (v.from.size >= this.majority) this.learn(v.value);
  }

  private learn(value: string): void {
    if (this.chosen !== undefined) {
      // Only possible when safety is already broken; the invariants report it (the
      // harness compares every learner with the values acceptors actually chose).
      if (this.chosen !== value) this.conflicts++;
      return;
    }
    this.chosen = value;
    this.phase = 'idle';
    this.retryAt = Infinity;
    for (const to of this.members) if (to !== this.id) this.send({ type: 'decided', from: this.id, to, value });
  }

  // ---------------------------------------------------------------------------
  // Ready / advance

  hasReady(): boolean {
    return this.records.length > 0 || this.msgs.length > 0 || (this.chosen !== undefined && !this.chosenReported);
  }

  ready(): SynodReady | undefined {
    if (this.outstanding) throw new Error('synod ready(): the previous Ready has not been advanced yet');
    if (!this.hasReady()) return undefined;
    const rd: SynodReady = { persist: this.records, messages: [], };
    const self: SynodMessage[] = [];
    for (const m of this.msgs) (m.to === this.id ? self : rd.messages).push(m);
    if (this.chosen !== undefined && !this.chosenReported) {
      rd.chosen = this.chosen;
      this.chosenReported = true;
    }
    this.records = [];
    this.msgs = [];
    this.selfMsgs = self;
    this.outstanding = rd;
    return rd;
  }

  advance(rd: SynodReady): void {
    if (this.outstanding !== rd) throw new Error('synod advance(): argument is not the Ready last returned by ready()');
    this.outstanding = undefined;
    const self = this.selfMsgs;
    this.selfMsgs = [];
    for (const m of self) this.handle(m);
  }

  private send(m: SynodMessage): void {
    this.msgs.push(m);
  }
}
