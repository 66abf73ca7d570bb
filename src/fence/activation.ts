/**
 * The activation gate (docs/fencing.md, issue 6 point 1): decides when a newly elected
 * leader becomes *active* — runs hooks and jobs, grants locks, drives actuators.
 *
 * Elected is not enough: the previous leader may still believe it leads (partitioned,
 * or its process paused) and keep driving a pump. A leader becomes active only when
 * the previous leader provably cannot act any more, by one of:
 *
 *   1. **fenced**: the fencer switched its power off and verified it off (a fence with
 *      power-on afterwards still counts: the board boots a fresh process, which starts
 *      as a follower and holds no lease);
 *   2. **lease expired**: `now ≥ safeAtMs`, the instant after which any earlier
 *      leader's lease has run out *and* its watchdog would have reset a stuck process
 *      (see `leaseSafeAtMs` for the arithmetic and its assumptions);
 *   3. **acknowledged**: the previous leader itself answered in our term (it has seen
 *      the higher term and stepped down — graceful transfer, or it rejoined);
 *   4. **operator confirmation**: `quorumd fence confirm NODE` (a human declares the
 *      node safely down, as Pacemaker's `stonith_admin --confirm`).
 *
 * Two more rules:
 *   - **first start waits for all** (`waitForAll`, like corosync's `wait_for_all`):
 *     until every listed node has been seen once, the cluster has never formed, no
 *     leader becomes active and nobody asks for a fence. Two boards that boot into a
 *     partition then cannot fence each other in a loop. Once formed (`formed` in the
 *     status; the runtime persists it), the rule no longer applies.
 *   - **only an elected leader fences**: the gate asks for a fence (`wantFence`) only
 *     while elected. In Raft, election needs a quorum; with two boards and a witness,
 *     the board that lost the witness can never fence the other.
 *
 * Pure: time enters as `nowMs` (this node's monotonic clock); output is `status()`.
 */
import { MAX_NODE_ID, type NodeId, type Term } from '../types.ts';
import { describe } from './token.ts';

export interface ActivationConfig {
  /** This node's id. Required. */
  self: NodeId;
  /**
   * STONITH available. Default true. When false the gate never asks for a fence and
   * relies on leases, acknowledgements and operators (`quorumd sim --no-stonith`).
   */
  stonith?: boolean;
  /**
   * Nodes that must all have been seen once before the cluster first becomes active
   * (first-start rule). Default []: no waiting. For two boards + witness, list both
   * boards (see docs/fencing.md).
   */
  waitForAll?: NodeId[];
  /** The cluster formed before (persisted by the runtime). Default false. */
  formed?: boolean;
}

/** Who led before us, as far as this node knows. */
export type PreviousLeader =
  /** No leader can have existed before (first term of a fresh cluster). */
  | 'none'
  /** Some node may have led (we do not know which): only the lease bound helps. */
  | 'unknown'
  | NodeId;

export interface Elected {
  term: Term;
  nowMs: number;
  previousLeader: PreviousLeader;
  /**
   * Our monotonic time after which any previous leader can no longer act
   * (`leaseSafeAtMs`), or null if no lease bound holds (e.g. bully without leases):
   * then only a fence, an acknowledgement or an operator makes us active.
   */
  safeAtMs: number | null;
}

export type ActivationReason = 'no-previous-leader' | 'self' | 'fenced' | 'lease-expired' | 'acknowledged' | 'operator';

export interface ActivationStatus {
  elected: boolean;
  active: boolean;
  term: Term;
  /** Human-readable reason for /v1/status; '' when active or not leader-relevant. */
  waitingFor: string;
  /** The node the runtime should fence now (hand to the Fencer), or null. */
  wantFence: NodeId | null;
  /** How the leader became active (null while not active). */
  activeBy: ActivationReason | null;
  /** The cluster has formed (every waitForAll node seen once). Persist it. */
  formed: boolean;
}

/**
 * Our monotonic time after which no earlier leader can act, from the lease rules:
 *
 *   - an earlier leader acts only while its lease holds: `leaseMs` on *its* clock from
 *     the send time of a heartbeat that a quorum acknowledged (Raft thesis §6.4.1);
 *   - every voter that elected us stopped acknowledging earlier leaders when it
 *     granted its vote, before we won at `electedAtMs`; any quorum intersects ours, so
 *     every earlier lease started before `electedAtMs` (real time);
 *   - clocks drift by at most ±`maxDriftPpm`: `leaseMs` on its clock is at most
 *     `leaseMs·(1+ρ)/(1−ρ)` on ours;
 *   - a process that checked its lease and then stalled before acting can act at
 *     most `watchdogTimeoutMs` later: the event loop feeds the hardware watchdog,
 *     a longer stall resets the board (watchdog self-fencing, issue 6 point 6);
 *   - `marginMs` covers scheduling jitter and the actuator's own latency.
 */
export function leaseSafeAtMs(o: { electedAtMs: number; leaseMs: number; maxDriftPpm: number; watchdogTimeoutMs: number; marginMs: number }): number {
  if (o === null || typeof o !== 'object') throw new TypeError(`leaseSafeAtMs: expected options, got ${describe(o)}`);
  const num = (k: keyof typeof o, max: number) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) throw new RangeError(`leaseSafeAtMs ${k}: expected a number 0..${max}, got ${describe(v)}`);
    return v;
  };
  const electedAt = num('electedAtMs', Number.MAX_SAFE_INTEGER);
  const lease = num('leaseMs', 3_600_000);
  const ppm = num('maxDriftPpm', 100_000);
  const wd = num('watchdogTimeoutMs', 3_600_000);
  const margin = num('marginMs', 3_600_000);
  const rho = ppm / 1e6;
  return electedAt + Math.ceil((lease * (1 + rho)) / (1 - rho)) + wd + margin;
}

function checkNode(x: unknown, what: string): NodeId {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > MAX_NODE_ID) throw new RangeError(`${what}: expected a node id 1..${MAX_NODE_ID}, got ${describe(x)}`);
  return x;
}
function checkMs(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new RangeError(`${what}: expected a finite time in ms ≥ 0, got ${describe(x)}`);
  return x;
}

export class ActivationGate {
  readonly self: NodeId;
  readonly stonith: boolean;
  private readonly waitForAll: ReadonlySet<NodeId>;
  private readonly seen = new Set<NodeId>();
  private formedValue: boolean;
  private now = 0;
  // current leadership (null = not leader)
  private lead: { term: Term; prev: PreviousLeader; safeAtMs: number | null; electedAtMs: number } | null = null;
  private activeBy: ActivationReason | null = null;
  private fenceFailure: string | null = null;
  private fenceInFlight = false;

  constructor(cfg: ActivationConfig) {
    if (cfg === null || typeof cfg !== 'object') throw new TypeError(`ActivationGate: expected config { self, ... }, got ${describe(cfg)}`);
    this.self = checkNode(cfg.self, 'ActivationGate self');
    this.stonith = cfg.stonith ?? true;
    if (typeof this.stonith !== 'boolean') throw new TypeError(`ActivationGate stonith: expected a boolean, got ${describe(cfg.stonith)}`);
    const wfa = cfg.waitForAll ?? [];
    if (!Array.isArray(wfa)) throw new TypeError(`ActivationGate waitForAll: expected an array of node ids, got ${describe(wfa)}`);
    this.waitForAll = new Set(wfa.map((n, i) => checkNode(n, `ActivationGate waitForAll[${i}]`)));
    this.formedValue = cfg.formed ?? false;
    if (typeof this.formedValue !== 'boolean') throw new TypeError(`ActivationGate formed: expected a boolean, got ${describe(cfg.formed)}`);
    this.seen.add(this.self);
    this.updateFormed();
  }

  private advance(nowMs: number, what: string): void {
    checkMs(nowMs, `ActivationGate.${what} nowMs`);
    if (nowMs < this.now) throw new RangeError(`ActivationGate.${what}: time went backwards (${nowMs} < ${this.now}); pass monotonic time`);
    this.now = nowMs;
  }

  private updateFormed(): void {
    if (this.formedValue) return;
    for (const n of this.waitForAll) if (!this.seen.has(n)) return;
    this.formedValue = true;
  }

  /** This node won an election (Raft term / bully epoch). Replaces any earlier leadership. */
  elected(e: Elected): void {
    if (e === null || typeof e !== 'object') throw new TypeError(`ActivationGate.elected: expected { term, nowMs, previousLeader, safeAtMs }, got ${describe(e)}`);
    if (typeof e.term !== 'number' || !Number.isSafeInteger(e.term) || e.term < 1) throw new RangeError(`ActivationGate.elected term: expected an integer ≥ 1, got ${describe(e.term)}`);
    if (this.lead !== null && e.term <= this.lead.term) throw new RangeError(`ActivationGate.elected term: ${e.term} is not above the current leadership's term ${this.lead.term}`);
    this.advance(e.nowMs, 'elected');
    const prev = e.previousLeader;
    if (prev !== 'none' && prev !== 'unknown') checkNode(prev, 'ActivationGate.elected previousLeader');
    const safeAt = e.safeAtMs === null ? null : checkMs(e.safeAtMs, 'ActivationGate.elected safeAtMs');
    this.lead = { term: e.term, prev, safeAtMs: safeAt, electedAtMs: e.nowMs };
    this.activeBy = null;
    this.fenceFailure = null;
    this.fenceInFlight = false;
    this.evaluate();
  }

  /** This node is no longer leader (stepped down, crashed into follower, lost quorum). */
  steppedDown(nowMs: number): void {
    this.advance(nowMs, 'steppedDown');
    this.lead = null;
    this.activeBy = null;
    this.fenceFailure = null;
    this.fenceInFlight = false;
  }

  /** A message from `node` arrived (any kind): counts for the first-start rule. */
  peerSeen(node: NodeId, nowMs: number): void {
    checkNode(node, 'ActivationGate.peerSeen node');
    this.advance(nowMs, 'peerSeen');
    this.seen.add(node);
    this.updateFormed();
    this.evaluate();
  }

  /** `node` answered in term `term` (so it knows it is not leader in any term below). */
  acknowledged(node: NodeId, term: Term, nowMs: number): void {
    checkNode(node, 'ActivationGate.acknowledged node');
    this.advance(nowMs, 'acknowledged');
    this.seen.add(node);
    this.updateFormed();
    if (this.lead !== null && !this.isActive() && this.lead.prev === node && term >= this.lead.term) this.activate('acknowledged');
    this.evaluate();
  }

  /** The fencer started fencing `node` (so that waitingFor can say so). */
  fenceStarted(node: NodeId, nowMs: number): void {
    checkNode(node, 'ActivationGate.fenceStarted node');
    this.advance(nowMs, 'fenceStarted');
    if (this.lead !== null && this.lead.prev === node) this.fenceInFlight = true;
  }

  /** The fencer finished with `node`: ok = switched off and verified off (or already off). */
  fenceResult(node: NodeId, ok: boolean, nowMs: number, reason = ''): void {
    checkNode(node, 'ActivationGate.fenceResult node');
    if (typeof ok !== 'boolean') throw new TypeError(`ActivationGate.fenceResult ok: expected a boolean, got ${describe(ok)}`);
    this.advance(nowMs, 'fenceResult');
    if (this.lead === null || this.lead.prev !== node) return;
    this.fenceInFlight = false;
    if (ok) {
      if (!this.isActive()) this.activate('fenced');
    } else {
      this.fenceFailure = reason || 'all fence levels failed';
    }
    this.evaluate();
  }

  /** Operator: `quorumd fence confirm NODE` — the node is declared safely down. */
  operatorConfirmed(node: NodeId, nowMs: number): void {
    checkNode(node, 'ActivationGate.operatorConfirmed node');
    this.advance(nowMs, 'operatorConfirmed');
    if (this.lead !== null && this.lead.prev === node && !this.isActive()) this.activate('operator');
    this.evaluate();
  }

  /** Time passes (lease expiry). */
  tick(nowMs: number): void {
    this.advance(nowMs, 'tick');
    this.evaluate();
  }

  /** Earliest time at which `tick` could change the status (lease expiry), or null. */
  nextDeadline(): number | null {
    if (this.lead === null || this.isActive() || this.lead.safeAtMs === null || !this.formedValue) return null;
    return this.lead.safeAtMs;
  }

  private isActive(): boolean {
    return this.activeBy !== null;
  }

  /** Same as `status().active`, without building the status (checked on every runtime step). */
  get active(): boolean {
    return this.activeBy !== null;
  }

  private activate(by: ActivationReason): void {
    if (!this.formedValue) return; // the first-start rule holds even over facts
    this.activeBy = by;
  }

  private evaluate(): void {
    const l = this.lead;
    if (l === null || this.isActive() || !this.formedValue) return;
    if (l.prev === 'none') return this.activate('no-previous-leader');
    if (l.prev === this.self) return this.activate('self');
    if (l.safeAtMs !== null && this.now >= l.safeAtMs) return this.activate('lease-expired');
  }

  /**
   * The node this gate wants fenced now, or null: status().wantFence without building the
   * status and its sentences (a leader's runtime asks on every step while it is not active).
   */
  get wantFence(): NodeId | null {
    const l = this.lead;
    if (l === null || this.activeBy !== null || !this.formedValue || l.prev === 'unknown') return null;
    return this.stonith && this.fenceFailure === null ? (l.prev as number) : null;
  }

  status(): ActivationStatus {
    const l = this.lead;
    // Whole literals, not `{ ...base, more }`: V8 (Node 20) gives each object built as a
    // spread plus keys the source lacks a hidden class of its own, a cost on every
    // status read (daemon/runtime/activation.ts builds one per /v1/status and /v1/leader).
    const formed = this.formedValue;
    if (l === null) return { formed, elected: false, active: false, term: 0, waitingFor: 'not leader', wantFence: null, activeBy: null };
    if (this.activeBy !== null) return { formed, elected: true, active: true, term: l.term, waitingFor: '', wantFence: null, activeBy: this.activeBy };
    if (!this.formedValue) {
      const missing = [...this.waitForAll].filter((n) => !this.seen.has(n)).sort((a, b) => a - b);
      return {
        formed,
        elected: true,
        active: false,
        term: l.term,
        waitingFor: `first start: waiting until every node has been seen once (missing: ${missing.map((n) => `n${n}`).join(', ')}); no fencing before that`,
        wantFence: null,
        activeBy: null,
      };
    }
    const lease = l.safeAtMs === null ? null : `its lease to expire in ${Math.max(0, Math.ceil(l.safeAtMs - this.now))} ms`;
    let waitingFor: string;
    if (l.prev === 'unknown') {
      waitingFor = lease !== null ? `previous leader unknown: waiting for any earlier leader's lease to expire in ${Math.max(0, Math.ceil(l.safeAtMs! - this.now))} ms` : 'previous leader unknown and no lease bound: cannot prove it stopped (configure leases, or wait for the next election with a known previous leader)';
    } else {
      const who = `n${l.prev as number}`;
      const alternatives = [lease, `an acknowledgement from ${who}`, `\`quorumd fence confirm ${who}\``].filter((x) => x !== null);
      if (!this.stonith) waitingFor = `previous leader ${who} may still act: waiting for ${alternatives.join(' or ')} (STONITH disabled)`;
      else if (this.fenceFailure !== null) waitingFor = `previous leader ${who}: fence failed (${this.fenceFailure}); waiting for ${alternatives.join(' or ')}`;
      else waitingFor = `previous leader ${who}: ${this.fenceInFlight ? 'fencing it (STONITH)' : 'about to fence it (STONITH)'}, or ${alternatives.join(' or ')}`;
    }
    return { formed, elected: true, active: false, term: l.term, waitingFor, wantFence: this.wantFence, activeBy: null };
  }
}
