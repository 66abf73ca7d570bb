/**
 * The checks of the simulated cluster for contract engines (engine-cluster.ts): the
 * shared ones, the same for every engine, and the engine's own, plugged in from
 * src/<engine>/invariants.ts (pure checkers that look only at what nodes persisted,
 * applied or reported).
 *
 * Shared, after every step of every node:
 *   one leader per term   at most one node ever leads a given term (Paxos: ballot;
 *                         ZAB: epoch), over the whole run
 *   state-machine safety  the entry applied at an index is the same (type and data)
 *                         on every node, over all lives
 *   apply order           each life applies consecutive indexes from its snapshot on
 *   tokens grow           a leadership's fencing token (leaderToken() > 0) is above
 *                         every token issued by an earlier leadership, and fixed
 *   engine errors         an engine that throws is a bug
 * At the end: every write acknowledged 200 is applied at its index with its data;
 * live nodes that applied the same index hold the same state; the history is
 * linearizable (cluster.ts's checker, run by engine-cluster.ts).
 *
 * Per engine:
 *   raft   raft-invariants.ts InvariantChecker (Ongaro & Ousterhout 2014, Figure 3) — election
 *          safety, log matching (hash chains over every durable log), leader
 *          completeness, witnesses never lead, durable commit, commit monotonic per
 *          life, acknowledged writes within the final leader's commit index
 *   paxos  src/paxos/invariants.ts PaxosInvariants — one value per slot ever chosen
 *          (ground truth from durable votes), chosen commands were proposed, learners
 *          apply only chosen values, durable votes and promises survive restarts and
 *          torn writes, ballot ownership, tokens grow
 *   zab    src/zab/invariants.ts ZabInvariants — integrity, total order, agreement,
 *          local and global primary order, primary integrity, acknowledgement only
 *          after durability, establishment only with a synchronized quorum
 *   pbft   src/pbft/invariants.ts over the honest nodes (daemon/sim/pbft-sim.ts) —
 *          prepared/commit/execution agreement, contiguity, checkpoint agreement,
 *          views never go back, client-safety of results accepted with f + 1 replies;
 *          the shared checks are fed only by honest nodes
 */
import type { Ready } from '../../src/engine/contract.ts';
import { PaxosInvariants, decodeDurableSlot, type PaxosNode } from '../../src/paxos/index.ts';
import { ZabInvariants } from '../../src/zab/invariants.ts';
import type { ZabNode } from '../../src/zab/index.ts';
import { EntryType, type Entry, type MemberConfig } from '../../src/wire/messages.ts';
import type { Index, NodeId, Term } from '../../src/types.ts';
import type { RaftEngine } from '../../src/raft/engine.ts';
import type { RaftNode } from '../../src/raft/index.ts';
import type { ApplyResult, KvStateMachine } from '../../src/kv/index.ts';
import type { EngineRuntime } from '../runtime/engine-node.ts';
import { hashBytes } from './hash.ts';
import { PbftChecks } from './pbft-sim.ts';
import { InvariantChecker, type RaftHost } from './raft-invariants.ts';
import { SimViolation } from './violation.ts';

/**
 * The node is a witness (holds no command data). From the engine's status, not the
 * runtime's: this runs for every applied entry, and the runtime's status() gathers
 * storage, link and activation views (in a Raft sweep it cost about a fifth of the CPU).
 */
function isWitness(rt: EngineRuntime): boolean {
  return rt.engine?.status().isWitness ?? false;
}

/** An engine's own checks, fed by the cluster's observer. */
export interface EngineChecks {
  booted(rt: EngineRuntime): void;
  persisted(rt: EngineRuntime, rd: Ready): void;
  /** `dataHash`: hashBytes(e.data) when the shared check already computed it (a Normal entry on a data node), else undefined. */
  applied(rt: EngineRuntime, e: Entry, result?: ApplyResult, dataHash?: number): void;
  proposed(rt: EngineRuntime, index: Index, term: Term, data: Uint8Array): void;
  snapshotTaken(rt: EngineRuntime, index: Index): void;
  /** PBFT: the node took its checkpoint at `index`. */
  checkpointed?(rt: EngineRuntime, index: Index): void;
  readonly engine: 'paxos' | 'zab' | 'raft' | 'pbft';
  /** After any step: `live` are the running runtimes. */
  afterStep(rt: EngineRuntime, live: () => readonly EngineRuntime[]): void;
  /** The term (ballot, epoch, view) of a leader, where the engine has it without building its status(): read after every step of a leader. */
  leaderTerm?(rt: EngineRuntime): number;
  /** Whether the node is a witness, where the engine has it without building its status(): read for every applied entry. */
  isWitness?(rt: EngineRuntime): boolean;
  readonly violations: readonly string[];
  /** At the end, beside the shared acknowledged-writes check (the final leader, if any). */
  checkAcked?(acked: ReadonlyArray<{ index: Index; dataHash: number; what: string }>, finalLeader: EngineRuntime | undefined): void;
}

/**
 * An EngineRuntime as the RaftHost the Raft checks look at: its RaftEngine's RaftNode and
 * its state machine, read when asked. A class (getters on its prototype), not an object
 * literal with getters per runtime: every view then has the same shape, and the checks'
 * `rt.engine` after every step stays a monomorphic property load.
 */
class RaftView implements RaftHost {
  readonly id: NodeId;
  constructor(private readonly rt: EngineRuntime) {
    this.id = rt.id;
  }
  get engine(): RaftNode | undefined {
    return (this.rt.engine as RaftEngine | undefined)?.raft;
  }
  get stateMachine(): KvStateMachine {
    return this.rt.stateMachine;
  }
}

/**
 * Raft's own checks: raft-invariants.ts's InvariantChecker (it throws SimViolation itself,
 * through the cluster's callback), fed with a view of each EngineRuntime as the
 * RaftHost it checks (its RaftNode and its state machine).
 */
class RaftChecks implements EngineChecks {
  readonly engine = 'raft' as const;
  readonly violations: readonly string[] = [];
  readonly inv: InvariantChecker;
  private readonly views = new WeakMap<EngineRuntime, RaftHost>();
  constructor(config: MemberConfig, disabled: ReadonlySet<string>, now: () => number, onViolation: (v: SimViolation) => void) {
    this.inv = new InvariantChecker(now, config.witnesses, onViolation, disabled);
  }
  /** The last runtime asked for and its view: most calls ask for the same node as the one before. */
  private lastRt: EngineRuntime | undefined;
  private lastView: RaftHost | undefined;
  private view(rt: EngineRuntime): RaftHost {
    if (rt === this.lastRt) return this.lastView!;
    let v = this.views.get(rt);
    if (v === undefined) {
      v = new RaftView(rt);
      this.views.set(rt, v);
    }
    this.lastRt = rt;
    this.lastView = v;
    return v;
  }
  leaderTerm(rt: EngineRuntime): number {
    return (rt.engine as RaftEngine).raft.currentTerm;
  }
  isWitness(rt: EngineRuntime): boolean {
    return (rt.engine as RaftEngine | undefined)?.raft.witness ?? false;
  }
  booted(rt: EngineRuntime): void {
    this.inv.booted(this.view(rt));
  }
  persisted(rt: EngineRuntime, rd: Ready): void {
    this.inv.persisted(this.view(rt), rd as unknown as Parameters<InvariantChecker['persisted']>[1]);
  }
  applied(rt: EngineRuntime, e: Entry, _result?: ApplyResult, dataHash?: number): void {
    this.inv.applied(this.view(rt), e, undefined, dataHash);
  }
  proposed(): void {}
  snapshotTaken(): void {}
  afterStep(rt: EngineRuntime): void {
    this.inv.afterStep(this.view(rt));
  }
  checkAcked(acked: ReadonlyArray<{ index: Index; dataHash: number; what: string }>, finalLeader: EngineRuntime | undefined): void {
    this.inv.checkAcked(acked, finalLeader && this.view(finalLeader));
  }
}

class PaxosChecks implements EngineChecks {
  readonly engine = 'paxos' as const;
  private readonly inv: PaxosInvariants;
  constructor(config: MemberConfig, disabled: ReadonlySet<string>) {
    this.inv = new PaxosInvariants([...config.voters, ...config.witnesses]);
    for (const d of disabled) this.inv.disabled.add(d);
  }
  get violations(): readonly string[] {
    return this.inv.violations;
  }
  booted(rt: EngineRuntime): void {
    const eng = rt.engine as PaxosNode;
    const st = eng.status();
    const snap = rt.snapshotIndex;
    const votes = new Map<number, number>();
    for (let i = snap + 1; i <= st.lastIndex; i++) {
      const s = eng.slotAt(i);
      if (s) votes.set(i, s.ballot);
    }
    this.inv.restarted(rt.id, eng.currentTerm, snap, votes);
    this.inv.appliedReset(rt.id, snap);
  }
  persisted(rt: EngineRuntime, rd: Ready): void {
    if (rd.snapshot) {
      this.inv.snapshotDurable(rt.id, rd.snapshot.meta.index);
      this.inv.appliedReset(rt.id, rd.snapshot.meta.index);
    }
    const witness = isWitness(rt);
    for (const e of rd.entries) {
      const slot = decodeDurableSlot(e);
      if (typeof slot === 'string') {
        this.inv['report']('durable-slot', `node ${rt.id}: entry ${e.index} is not a durable slot: ${slot}`);
        continue;
      }
      this.inv.voteDurable(rt.id, slot.index, slot.ballot, { origin: slot.origin, type: slot.type, data: witness && slot.type === EntryType.Normal ? undefined : slot.data });
    }
    if (rd.hardState) this.inv.promiseDurable(rt.id, rd.hardState.term);
  }
  applied(rt: EngineRuntime, e: Entry): void {
    const witness = isWitness(rt);
    this.inv.applied(rt.id, e.index, { origin: e.term, type: e.type, data: witness && e.type === EntryType.Normal ? undefined : e.data });
  }
  proposed(_rt: EngineRuntime, index: Index, term: Term, data: Uint8Array): void {
    this.inv.proposed(index, term, data);
  }
  snapshotTaken(rt: EngineRuntime, index: Index): void {
    this.inv.snapshotDurable(rt.id, index);
  }
  afterStep(rt: EngineRuntime): void {
    const eng = rt.engine;
    if (eng?.isLeader) this.inv.leadership(rt.id, eng.status().term, eng.leaderToken());
  }
}

class ZabChecks implements EngineChecks {
  readonly engine = 'zab' as const;
  private readonly inv: ZabInvariants;
  constructor(config: MemberConfig, disabled: ReadonlySet<string>) {
    this.inv = new ZabInvariants({ config, rules: { acknowledgements: !disabled.has('acknowledgements'), establishment: !disabled.has('establishment') } });
  }
  get violations(): readonly string[] {
    return this.inv.violations;
  }
  booted(rt: EngineRuntime): void {
    this.inv.started((rt.engine as ZabNode).view(), rt.bootHardState);
  }
  persisted(rt: EngineRuntime, rd: Ready): void {
    this.inv.ready((rt.engine as ZabNode).view(), rd);
  }
  applied(): void {}
  proposed(): void {}
  snapshotTaken(): void {}
  afterStep(_rt: EngineRuntime, live: () => readonly EngineRuntime[]): void {
    this.inv.step(live().map((r) => (r.engine as ZabNode).view()));
  }
}

/**
 * `now` and `onViolation` are for checks that throw their SimViolation themselves (Raft's);
 * `honest`: PBFT only, the nodes the simulator did not make Byzantine (the checks look at them alone).
 */
export function engineChecks(engine: 'paxos' | 'zab' | 'raft' | 'pbft', config: MemberConfig, disabled: ReadonlySet<string>, now: () => number = () => 0, onViolation: (v: SimViolation) => void = () => {}, honest?: readonly NodeId[]): EngineChecks {
  if (engine === 'raft') return new RaftChecks(config, disabled, now, onViolation);
  if (engine === 'pbft') return new PbftChecks(honest ?? config.voters);
  return engine === 'paxos' ? new PaxosChecks(config, disabled) : new ZabChecks(config, disabled);
}

/** The shared checks plus the engine's; throws SimViolation at the first problem. */
export class EngineInvariantChecker {
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  /**
   * What was applied first at each index (state-machine safety): its data hash, entry
   * type and node, in three arrays by index (undefined type: nothing applied there yet).
   * Not a Map of objects: this runs for every entry applied on every node, and the Map's
   * get and set were most of applied()'s time. Indexes are small and dense, from 1 up.
   */
  private readonly appliedType: number[] = [];
  private readonly appliedHash: number[] = [];
  private readonly appliedNode: NodeId[] = [];
  private readonly lifeApplied = new Map<NodeId, Index>();
  private readonly tokenOf = new Map<string, number>();
  /** Every leadership's token, with its term: tokens must grow with the term, not with the time they are issued. */
  private readonly issued: Array<{ term: number; token: number; node: NodeId }> = [];
  /** Per node id: the (term, token) its leadership was last checked with in this life (the check is the same until one changes). */
  private readonly checkedTerm: number[] = [];
  private readonly checkedToken: number[] = [];
  private reported = 0;
  /** Distinct (term, leader) pairs seen: the number of leaderships. */
  elections = 0;
  highestApplied: Index = 0;

  constructor(
    private readonly now: () => number,
    readonly checks: EngineChecks,
    private readonly onViolation: (v: SimViolation) => void,
    private readonly disabled: ReadonlySet<string> = new Set(),
  ) {}

  fail(invariant: string, detail: string): never {
    const v = new SimViolation(invariant, detail, this.now());
    this.onViolation(v);
    throw v;
  }

  private engineDone(): void {
    const vs = this.checks.violations;
    if (vs.length > this.reported) {
      this.reported = vs.length;
      const first = vs[vs.length - 1]!;
      const i = first.indexOf(':');
      // Paxos names its checks ("one-value: ..."); ZAB's sentences are the paper's properties.
      const named = i > 0 && /^[a-z-]+$/.test(first.slice(0, i));
      this.fail(named ? first.slice(0, i) : `${this.checks.engine}-invariant`, named ? first.slice(i + 2) : first);
    }
  }

  booted(rt: EngineRuntime): void {
    this.lifeApplied.set(rt.id, rt.stateMachine.appliedIndex);
    this.checkedTerm[rt.id] = -1;
    // A PBFT primary that restarts is primary of the same view again and opens it with a
    // new null request: a new token for the same (node, view), still above every earlier
    // one (the growth check below holds it to that). Other engines never lead the same
    // term again after a restart, so for them a changed token stays a violation.
    if (this.checks.engine === 'pbft') for (const k of [...this.tokenOf.keys()]) if (k.startsWith(`${rt.id}/`)) this.tokenOf.delete(k);
    this.checks.booted(rt);
    this.engineDone();
  }

  afterStep(rt: EngineRuntime, live: () => readonly EngineRuntime[]): void {
    const eng = rt.engine;
    if (!eng) return;
    // A leader's step: its (term, token) is checked when it changes, not at every step of
    // the leadership (this runs for most steps of a sweep: the leader handles most messages).
    const term = eng.isLeader ? (this.checks.leaderTerm?.(rt) ?? eng.status().term) : -1;
    if (term >= 0 && (term !== this.checkedTerm[rt.id] || eng.leaderToken() !== this.checkedToken[rt.id])) {
      const prev = this.leaderOfTerm.get(term);
      if (prev === undefined) {
        this.leaderOfTerm.set(term, rt.id);
        this.elections++;
      } else if (prev !== rt.id && !this.disabled.has('one-leader-per-term')) this.fail('one-leader-per-term', `nodes ${prev} and ${rt.id} both led term ${term}`);
      const token = eng.leaderToken();
      if (token > 0) {
        const key = `${rt.id}/${term}`;
        const had = this.tokenOf.get(key);
        if (had === undefined) {
          // Ordered by leadership, not by the moment of issue: a leader that learns late
          // that its term's start committed (it was stalled while a later term began:
          // raft seed 112, 5 nodes, every fault kind) issues its smaller token after a
          // later leadership issued a larger one. A resource that saw the larger refuses
          // it, which is what fencing needs. What must hold: a later term's token is
          // above every earlier term's (and a term's token, re-issued after a PBFT
          // primary's restart, above the one before it).
          if (!this.disabled.has('token-growth')) {
            for (const x of this.issued) {
              if (x.term <= term && x.token >= token) this.fail('token-growth', `leader ${rt.id} (term ${term}) issued token ${token}, not above token ${x.token} of node ${x.node}'s ${x.term === term ? 'earlier leadership of the same term' : `earlier term ${x.term}`}`);
              else if (x.term > term && x.token <= token) this.fail('token-growth', `leader ${rt.id} (term ${term}) issued token ${token}, not below token ${x.token} of node ${x.node}'s later term ${x.term}`);
            }
          }
          this.tokenOf.set(key, token);
          this.issued.push({ term, token, node: rt.id });
        } else if (had !== token) this.fail('token-growth', `leader ${rt.id} (term ${term}) changed its token from ${had} to ${token}`);
      }
      this.checkedTerm[rt.id] = term;
      this.checkedToken[rt.id] = token;
    }
    this.checks.afterStep(rt, live);
    this.engineDone();
  }

  persisted(rt: EngineRuntime, rd: Ready): void {
    if (rd.snapshot) this.lifeApplied.set(rt.id, rd.snapshot.meta.index);
    this.checks.persisted(rt, rd);
    this.engineDone();
  }

  /** `result`: the state machine's (undefined for no-ops and witnesses); the per-engine checks (PBFT's client replies) and hooks that watch what was applied (sim/jobs.ts). */
  applied(rt: EngineRuntime, e: Entry, result?: ApplyResult): void {
    const last = this.lifeApplied.get(rt.id) ?? 0;
    if (e.index !== last + 1) this.fail('apply-order', `node ${rt.id} applied index ${e.index} after ${last}`);
    this.lifeApplied.set(rt.id, e.index);
    const witness = this.checks.isWitness?.(rt) ?? isWitness(rt);
    // The data's hash, handed on to the engine's checks (Raft's hashes the same bytes again
    // otherwise): computed here in this call from this entry, so it is the value they would compute.
    let dataHash: number | undefined;
    if (!witness || e.type !== EntryType.Normal) {
      const h = e.type === EntryType.Normal ? hashBytes(e.data) : 0;
      if (e.type === EntryType.Normal) dataHash = h;
      const i = e.index;
      const type = this.appliedType[i];
      if (type === undefined) {
        this.appliedType[i] = e.type;
        this.appliedHash[i] = h;
        this.appliedNode[i] = rt.id;
      } else if ((this.appliedHash[i] !== h || type !== e.type) && !this.disabled.has('state-machine-safety')) {
        this.fail('state-machine-safety', `node ${rt.id} applied another entry at index ${i} (type ${e.type}) than node ${this.appliedNode[i]} (type ${type})`);
      }
    }
    this.highestApplied = Math.max(this.highestApplied, e.index);
    this.checks.applied(rt, e, result, dataHash);
    this.engineDone();
  }

  proposed(rt: EngineRuntime, index: Index, term: Term, data: Uint8Array): void {
    this.checks.proposed(rt, index, term, data);
  }

  snapshotTaken(rt: EngineRuntime, index: Index): void {
    this.checks.snapshotTaken(rt, index);
    this.engineDone();
  }

  checkpointed(rt: EngineRuntime, index: Index): void {
    this.checks.checkpointed?.(rt, index);
    this.engineDone();
  }

  engineError(rt: EngineRuntime, err: Error): void {
    this.fail('engine-error', `node ${rt.id}: the engine threw: ${err.message}`);
  }

  /** Every write answered 200 is applied at its index with its data. */
  checkAcked(acked: ReadonlyArray<{ index: Index; dataHash: number; what: string }>, finalLeader?: EngineRuntime): void {
    this.checks.checkAcked?.(acked, finalLeader);
    for (const a of acked) {
      if (this.appliedType[a.index] === undefined) {
        if (a.index > this.highestApplied) this.fail('acked-lost', `${a.what}: acknowledged at index ${a.index}, but nothing was applied there (highest applied ${this.highestApplied})`);
        continue; // below an installed snapshot everywhere: not observed entry by entry
      }
      if (this.appliedHash[a.index] !== a.dataHash) this.fail('acked-lost', `${a.what}: acknowledged at index ${a.index}, but another entry was applied there`);
    }
  }

  /** Live data nodes that applied the same index hold the same state. */
  checkStateMachines(rts: readonly EngineRuntime[]): void {
    const byIndex = new Map<Index, { id: NodeId; hash: number; len: number }>();
    for (const rt of rts) {
      if (isWitness(rt)) continue;
      const snap = rt.stateMachine.snapshot();
      const o = byIndex.get(rt.stateMachine.appliedIndex);
      const h = hashBytes(snap);
      if (!o) byIndex.set(rt.stateMachine.appliedIndex, { id: rt.id, hash: h, len: snap.length });
      else if (o.hash !== h || o.len !== snap.length) this.fail('state-machine-safety', `nodes ${o.id} and ${rt.id} both applied up to index ${rt.stateMachine.appliedIndex} but hold different states`);
    }
  }
}
