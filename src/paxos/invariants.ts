/**
 * The safety properties of Paxos as pure checkers over observed events, so that the
 * deterministic harness (test/src/paxos/) uses them now and the one simulated cluster
 * can plug them in later unchanged. Nothing here looks inside an engine: every input
 * is something a node persisted, applied or reported.
 *
 * Ground truth, not the nodes' opinion: "chosen" is computed from what acceptors made
 * durable — a value is chosen at ballot b (in slot s) once a majority of acceptors have
 * durably accepted b (at s), at any time (Lamport, "Paxos Made Simple" §2.1). The
 * learners' own conclusions are then checked against it. A checker records every
 * violation it finds (`violations`) and never throws, so a caller can decide whether
 * to stop at the first.
 */
import type { NodeId } from '../types.ts';
import { EntryType } from '../wire/messages.ts';
import { showBallot, type Ballot } from './ballot.ts';

/** Shared base: a list of violations, each a readable sentence. */
export class Violations {
  private list: string[] = [];
  /** Checks switched off by name (a planted-bug test shows which check catches what). */
  readonly disabled = new Set<string>();

  protected report(check: string, text: string): void {
    if (!this.disabled.has(check)) this.list.push(`${check}: ${text}`);
  }
  get violations(): readonly string[] {
    return this.list;
  }
  get ok(): boolean {
    return this.list.length === 0;
  }
}

const majorityOf = (n: number) => Math.floor(n / 2) + 1;

// ---------------------------------------------------------------------------
// Basic Paxos (src/paxos/synod.ts)

/**
 * Checks for the single-decree synod:
 *   - `one-value`: every value chosen (by any ballot) is the same;
 *   - `one-value-per-ballot`: acceptors never accepted two values at one ballot;
 *   - `proposed`: the chosen value is one a client proposed;
 *   - `learned-chosen`: a learner only ever learns a value that is chosen;
 *   - `promise-kept`: an acceptor restarted from disk promises at least what it had
 *     durably promised (its promise never goes back).
 */
export class SynodInvariants extends Violations {
  private readonly majority: number;
  private readonly proposals = new Set<string>();
  /** ballot → value and the acceptors that durably accepted it. */
  private readonly accepts = new Map<Ballot, { value: string; by: Set<NodeId> }>();
  private chosenValue: string | undefined;
  private chosenAt: Ballot = 0;
  private readonly durablePromise = new Map<NodeId, Ballot>();

  constructor(readonly members: readonly NodeId[]) {
    super();
    this.majority = majorityOf(members.length);
  }

  /** The value chosen so far (ground truth), if any. */
  get chosen(): string | undefined {
    return this.chosenValue;
  }

  proposed(value: string): void {
    this.proposals.add(value);
  }

  /** Acceptor `node` made a promise of `ballot` durable. */
  promiseDurable(node: NodeId, ballot: Ballot): void {
    if (ballot > (this.durablePromise.get(node) ?? 0)) this.durablePromise.set(node, ballot);
  }

  /** Acceptor `node` made an accepted proposal durable. */
  acceptDurable(node: NodeId, ballot: Ballot, value: string): void {
    this.promiseDurable(node, ballot);
    let a = this.accepts.get(ballot);
    if (!a) {
      a = { value, by: new Set() };
      this.accepts.set(ballot, a);
    } else if (a.value !== value) {
      this.report('one-value-per-ballot', `acceptor ${node} accepted ${JSON.stringify(value)} at ballot ${showBallot(ballot)}, others accepted ${JSON.stringify(a.value)} there`);
      return;
    }
    a.by.add(node);
    if (a.by.size < this.majority) return;
    if (this.chosenValue === undefined) {
      this.chosenValue = value;
      this.chosenAt = ballot;
      if (!this.proposals.has(value)) this.report('proposed', `value ${JSON.stringify(value)} was chosen at ballot ${showBallot(ballot)} but no client proposed it`);
    } else if (this.chosenValue !== value) {
      this.report('one-value', `${JSON.stringify(value)} chosen at ballot ${showBallot(ballot)} by acceptors ${[...a.by].join(',')}, but ${JSON.stringify(this.chosenValue)} was chosen at ballot ${showBallot(this.chosenAt)}`);
    }
  }

  /** A learner reported `value` chosen. */
  learned(node: NodeId, value: string): void {
    if (this.chosenValue === undefined) this.report('learned-chosen', `node ${node} learned ${JSON.stringify(value)} before any value was chosen`);
    else if (value !== this.chosenValue) this.report('learned-chosen', `node ${node} learned ${JSON.stringify(value)}, the chosen value is ${JSON.stringify(this.chosenValue)}`);
  }

  /** Acceptor `node` was rebuilt from disk and now holds `promised`. */
  restarted(node: NodeId, promised: Ballot): void {
    const d = this.durablePromise.get(node) ?? 0;
    if (promised < d) this.report('promise-kept', `acceptor ${node} restarted with promise ${showBallot(promised)} below its durable promise ${showBallot(d)}`);
  }
}

// ---------------------------------------------------------------------------
// Multi-Paxos (src/paxos/multi.ts)

/** A slot value as the checks compare it: origin, type and (when the observer has it) the command bytes. */
export interface ObservedValue {
  origin: Ballot;
  type: number;
  /** undefined: not known to this observer (a witness stores no Normal data). */
  data: Uint8Array | undefined;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const show = (v: ObservedValue) => `origin ${showBallot(v.origin)}/type ${v.type}${v.data ? `/${v.data.length}B` : ''}`;

/** Same value: same origin and type, and the same bytes wherever both sides know them. */
function sameValue(a: ObservedValue, b: ObservedValue): boolean {
  return a.origin === b.origin && a.type === b.type && (a.data === undefined || b.data === undefined || sameBytes(a.data, b.data));
}

/**
 * Checks for the Multi-Paxos engine, fed by whoever runs the nodes (the harness now,
 * the simulated cluster later):
 *   - `one-value-per-ballot`: at one (slot, ballot) every acceptor holds the same value
 *     (a leader proposes one value per slot per ballot);
 *   - `one-value`: every value chosen in a slot (by any ballot, ground truth from the
 *     acceptors' durable votes) is the same — one value per slot ever chosen, so chosen
 *     values never change;
 *   - `proposed`: a chosen command was proposed by a client at that slot with that
 *     origin (no-ops are the engine's own);
 *   - `learned-chosen`: a replica commits (applies) at a slot only the value chosen there;
 *   - `applied-prefix`: every replica applies slots in order, each exactly once, and the
 *     values agree with every other replica's — each applied sequence is a prefix of
 *     one sequence;
 *   - `votes-kept`: an acceptor's durable vote in a slot is never lost or lowered, except
 *     by a snapshot of the chosen prefix (what a torn write must not do);
 *   - `promise-kept`: a restarted acceptor's promise is at least its durable promise;
 *   - `ballot-owner`: a leader leads only with its own ballot;
 *   - `token-grows`: every newly issued leadership token is greater than every token
 *     issued before it, anywhere in the cluster.
 */
export class PaxosInvariants extends Violations {
  private readonly majority: number;
  private readonly acceptors: ReadonlySet<NodeId>;
  /** `${slot}/${ballot}` → the value and the acceptors that durably accepted it. */
  private readonly votes = new Map<string, { value: ObservedValue; by: Set<NodeId> }>();
  /** slot → the chosen value (ground truth) and the ballot that first chose it. */
  private readonly chosenAt = new Map<number, { value: ObservedValue; ballot: Ballot }>();
  /** `${slot}/${origin}` → the proposed command. */
  private readonly proposals = new Map<string, Uint8Array>();
  /** slot → the value the first replica applied there. */
  private readonly appliedAt = new Map<number, ObservedValue>();
  private readonly appliedUpTo = new Map<NodeId, number>();
  /** Per acceptor: slot → the ballot of its durable vote there; and its snapshot. */
  private readonly durable = new Map<NodeId, { snap: number; votes: Map<number, Ballot> }>();
  private readonly durablePromise = new Map<NodeId, Ballot>();
  private readonly tokens = new Map<string, number>();
  private highestToken = 0;

  /** `acceptors`: the voting members (voters and witnesses). */
  constructor(acceptors: readonly NodeId[]) {
    super();
    this.acceptors = new Set(acceptors);
    this.majority = majorityOf(acceptors.length);
  }

  /** The chosen value at `slot` (ground truth), if any. */
  chosen(slot: number): ObservedValue | undefined {
    return this.chosenAt.get(slot)?.value;
  }

  get chosenSlots(): number {
    return this.chosenAt.size;
  }

  /** A client's command was proposed at `slot` by the leader of ballot `origin`. */
  proposed(slot: number, origin: Ballot, data: Uint8Array): void {
    this.proposals.set(`${slot}/${origin}`, data);
  }

  /** Acceptor `node` durably holds `value` at `slot`, accepted at `ballot`. */
  voteDurable(node: NodeId, slot: number, ballot: Ballot, value: ObservedValue): void {
    const d = this.durableOf(node);
    const prev = d.votes.get(slot);
    if (prev !== undefined && ballot < prev) this.report('votes-kept', `acceptor ${node} replaced its vote at slot ${slot}, ballot ${showBallot(prev)}, by a lower ballot ${showBallot(ballot)}`);
    d.votes.set(slot, ballot);
    if (!this.acceptors.has(node)) return;
    const key = `${slot}/${ballot}`;
    let v = this.votes.get(key);
    if (!v) {
      v = { value: { ...value }, by: new Set() };
      this.votes.set(key, v);
    } else if (!sameValue(v.value, value)) {
      this.report('one-value-per-ballot', `slot ${slot}, ballot ${showBallot(ballot)}: acceptor ${node} holds ${show(value)}, another holds ${show(v.value)}`);
      return;
    } else if (v.value.data === undefined && value.data !== undefined) {
      v.value.data = value.data;
    }
    v.by.add(node);
    if (v.by.size < this.majority) return;
    const c = this.chosenAt.get(slot);
    if (!c) {
      this.chosenAt.set(slot, { value: v.value, ballot });
      if (value.type === EntryType.Normal) {
        const p = this.proposals.get(`${slot}/${value.origin}`);
        if (!p) this.report('proposed', `slot ${slot}: ${show(value)} chosen at ballot ${showBallot(ballot)}, but no client proposed a command there with that origin`);
        else if (v.value.data !== undefined && !sameBytes(p, v.value.data)) this.report('proposed', `slot ${slot}: the chosen command differs from the one proposed with origin ${showBallot(value.origin)}`);
      }
    } else if (!sameValue(c.value, v.value)) {
      this.report('one-value', `slot ${slot}: ${show(v.value)} chosen at ballot ${showBallot(ballot)} by ${[...v.by].join(',')}, but ${show(c.value)} was chosen at ballot ${showBallot(c.ballot)}`);
    }
  }

  /** Acceptor `node` durably installed (or took) a snapshot up to `index`: its votes there may go. */
  snapshotDurable(node: NodeId, index: number): void {
    const d = this.durableOf(node);
    d.snap = Math.max(d.snap, index);
    for (const s of [...d.votes.keys()]) if (s <= d.snap) d.votes.delete(s);
  }

  /** Acceptor `node` made promise `ballot` durable. */
  promiseDurable(node: NodeId, ballot: Ballot): void {
    if (ballot > (this.durablePromise.get(node) ?? 0)) this.durablePromise.set(node, ballot);
  }

  /**
   * `node` restarted from disk: `promised` is the engine's promise now, `snap` its
   * snapshot index, `votes` slot → ballot of every durable vote it came back with.
   */
  restarted(node: NodeId, promised: Ballot, snap: number, votes: ReadonlyMap<number, Ballot>): void {
    const p = this.durablePromise.get(node) ?? 0;
    if (promised < p) this.report('promise-kept', `acceptor ${node} restarted with promise ${showBallot(promised)} below its durable promise ${showBallot(p)}`);
    const d = this.durableOf(node);
    for (const [slot, ballot] of d.votes) {
      if (slot <= snap) continue;
      const now = votes.get(slot);
      if (now === undefined) this.report('votes-kept', `acceptor ${node} restarted without its durable vote at slot ${slot} (ballot ${showBallot(ballot)})`);
      else if (now < ballot) this.report('votes-kept', `acceptor ${node} restarted with ballot ${showBallot(now)} at slot ${slot}, below its durable vote ${showBallot(ballot)}`);
    }
    this.durable.set(node, { snap, votes: new Map(votes) });
    this.appliedUpTo.delete(node);
  }

  /**
   * Replica `node` applied the committed value at `slot`. `from` is where its state
   * machine stood (its snapshot index) when this incarnation began applying.
   */
  applied(node: NodeId, slot: number, value: ObservedValue, from = 0): void {
    const last = this.appliedUpTo.get(node) ?? from;
    if (slot !== last + 1) this.report('applied-prefix', `replica ${node} applied slot ${slot} after ${last} (out of order, twice, or with a gap)`);
    this.appliedUpTo.set(node, slot);
    const c = this.chosenAt.get(slot);
    if (!c) this.report('learned-chosen', `replica ${node} applied slot ${slot} (${show(value)}) before any value was chosen there`);
    else if (!sameValue(c.value, value)) this.report('learned-chosen', `replica ${node} applied ${show(value)} at slot ${slot}, the chosen value is ${show(c.value)}`);
    const a = this.appliedAt.get(slot);
    if (!a) this.appliedAt.set(slot, { ...value });
    else if (!sameValue(a, value)) this.report('applied-prefix', `replica ${node} applied ${show(value)} at slot ${slot}, another replica applied ${show(a)}`);
    else if (a.data === undefined && value.data !== undefined) a.data = value.data;
  }

  /** A replica's state machine was reset to a snapshot at `index` (restart or install). */
  appliedReset(node: NodeId, index: number): void {
    this.appliedUpTo.set(node, index);
  }

  /** `node` is leader with `ballot`, and `token` is its leaderToken() (0 = none yet). */
  leadership(node: NodeId, ballot: Ballot, token: number): void {
    if (ballot % 256 !== node) this.report('ballot-owner', `node ${node} leads with ballot ${showBallot(ballot)}, which belongs to node ${ballot % 256}`);
    if (token === 0) return;
    const key = `${node}/${ballot}`;
    const prev = this.tokens.get(key);
    if (prev === undefined) {
      if (token <= this.highestToken) this.report('token-grows', `leader ${node} (ballot ${showBallot(ballot)}) issued token ${token}, not above the earlier token ${this.highestToken}`);
      this.tokens.set(key, token);
      this.highestToken = Math.max(this.highestToken, token);
    } else if (prev !== token) {
      this.report('token-grows', `leader ${node} (ballot ${showBallot(ballot)}) changed its token from ${prev} to ${token}`);
    }
  }

  private durableOf(node: NodeId): { snap: number; votes: Map<number, Ballot> } {
    let d = this.durable.get(node);
    if (!d) {
      d = { snap: 0, votes: new Map() };
      this.durable.set(node, d);
    }
    return d;
  }
}
