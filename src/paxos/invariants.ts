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
