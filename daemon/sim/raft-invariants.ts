/**
 * Raft's own checks in the simulated cluster (engine-invariants.ts RaftChecks plugs them
 * in beside the shared ones): the safety invariants of Raft (Ongaro & Ousterhout 2014, Figure 3), checked by the
 * simulator after every step of every node — every delivered message, tick, proposal
 * and every Ready — plus the durability and client-visible ones:
 *
 *   election safety     at most one leader per term, over the whole run (term → leader map)
 *   log matching        two logs holding an entry with the same index and term are
 *                       identical up to it: each node keeps a hash chain over its durable
 *                       log; a global (index, term) → chain map must agree (incremental,
 *                       O(1) per persisted entry)
 *   leader completeness a new leader of term T holds every entry that was applied
 *                       anywhere while the applying node was in a term < T (applied ⇒
 *                       committed in a term ≤ the applier's term)
 *   state-machine safety the entry applied at an index is the same on every node
 *                       (global index → chain value; a witness is compared on metadata)
 *   durable commit      a node's commit index never decreases during a life; after a
 *                       restart its durable log reaches every index it applied from its
 *                       own durable log, and its commit index is ≥ the last one written
 *                       with an fsync.
 *                       A batch that only raises the commit index is not synced (the
 *                       durable log answers it at once and writes the record with its
 *                       next flush), so a node may come back with an older commit index
 *                       than it had: that is safe because Raft's commit index is
 *                       volatile (paper Fig. 2) — the restarted node rebuilds a prefix
 *                       of the same state and learns the rest of the commit index from
 *                       the leader (a heartbeat reply after a restart reports its
 *                       commit, so an idle leader sends it). What must survive — the
 *                       log up to what was acknowledged, term and vote — is always
 *                       synced
 *   applied ⇒ durable   every entry a node applies is durable on a quorum of the voting
 *                       members of its configuration at that moment, its own copy
 *                       included if durable. Ready's committed entries are durable on
 *                       the node itself too; a leader or a follower applies the
 *                       entries a quorum of other copies made committed while its own
 *                       copy may still be syncing (RaftNode.takeCommitted): if it
 *                       crashes before that copy is durable it comes back with a
 *                       shorter log — the quorum holds what it applied (in their logs
 *                       or compacted into their snapshots), and the next leader has it
 *   acknowledged writes every write answered 200 is, at the end, in the committed log at
 *                       the index it was acknowledged with
 *
 * A violation throws `SimViolation` out of the scheduler: the seed stops at once.
 */
import type { ApplyResult, KvStateMachine } from '../../src/kv/index.ts';
import { quorumSize, votingMembers, type RaftNode, type Ready } from '../../src/raft/index.ts';
import type { Entry } from '../../src/wire/messages.ts';
import type { Index, NodeId, Term } from '../../src/types.ts';
import { chainMix, hashBytes } from './hash.ts';
import { SimViolation } from './violation.ts';

/**
 * What the Raft checks look at of a node: its RaftNode and its state machine: a view
 * over the EngineRuntime and its RaftEngine (engine-invariants.ts RaftChecks).
 */
export interface RaftHost {
  readonly id: NodeId;
  readonly engine: RaftNode | undefined;
  readonly stateMachine: KvStateMachine;
}

interface Chain {
  /** Over (index, term, type): comparable between data nodes and witnesses. */
  meta: number;
  /** Over (index, term, type, data): data nodes only. */
  full: number;
}

interface NodeTrack {
  rt: RaftHost | undefined;
  witness: boolean;
  /** Chain value by index of this node's durable log (plus its snapshot base). */
  chain: ChainLog;
  /** Highest index in `chain`. */
  last: Index;
  /** Highest commit index seen in this life. */
  lifeCommit: Index;
  /** Highest commit index made durable with an fsync (a synced batch, or a snapshot), over all lives. */
  durableCommit: Index;
  /** Highest commit index handed to the durable log, synced or not (a synced batch carries it). */
  acceptedCommit: Index;
  /** Term and vote of the last persisted hard state (a change of either is synced). */
  hsTerm: Term;
  hsVote: NodeId;
  /** Highest index this node applied from its own durable log, over all lives: always in its durable log. */
  appliedMax: Index;
}

interface AppliedRec {
  term: Term;
  chain: Chain;
  /** Data hash from a data node (undefined while only witnesses applied it). */
  dataHash: number | undefined;
  /** Lowest term any node was in when it applied this index. */
  minTerm: Term;
}

const ZERO: Chain = { meta: 0, full: 0 };

/**
 * A node's chain values by index: always a contiguous range [lo, lo + size) (a
 * snapshot base, then the entries after it), so arrays from `lo` rather than a Map
 * (a Map set per persisted entry per node showed in the simulator's profile). The two
 * halves of each value are kept in two number arrays, not as a Chain object per
 * entry: an object with two doubles per persisted entry of every node was the
 * checker's largest allocation.
 *
 * The snapshot base is the one value that is an object shared with other records
 * (what was applied at that index, possibly a log-matching record whose `full` is
 * filled in later, matchLog): it is kept as that object and read through it, so every
 * read sees what it saw when the log held Chain objects.
 */
class ChainLog {
  private lo: Index;
  private readonly metas: number[] = [];
  private readonly fulls: number[] = [];
  /** The value at offset 0 while it is the snapshot base (read live; metas/fulls[0] unused then). */
  private base: Chain | undefined;

  constructor(index: Index = 0, base?: Chain) {
    this.lo = index;
    if (base) {
      this.base = base;
      this.metas.push(0);
      this.fulls.push(0);
    }
  }

  get size(): number {
    return this.metas.length;
  }

  /** Where index i is held (an offset for meta()/full()/chain()), or -1 when it is not. */
  offset(i: Index): number {
    const k = i - this.lo;
    return k >= 0 && k < this.metas.length ? k : -1;
  }

  /** The halves of the value at an offset from offset() (≥ 0). */
  meta(k: number): number {
    return k === 0 && this.base !== undefined ? this.base.meta : this.metas[k]!;
  }
  full(k: number): number {
    return k === 0 && this.base !== undefined ? this.base.full : this.fulls[k]!;
  }

  /** The value at an offset as a Chain to keep: the base object itself, else a copy (entry values never change once set). */
  chain(k: number): Chain {
    return k === 0 && this.base !== undefined ? this.base : { meta: this.metas[k]!, full: this.fulls[k]! };
  }

  /** Sets index i: an existing one, or the next after the last (the range stays contiguous). */
  set(i: Index, meta: number, full: number): void {
    const k = i - this.lo;
    if (this.metas.length === 0) {
      this.lo = i;
      this.metas.push(meta);
      this.fulls.push(full);
    } else if (k >= 0 && k < this.metas.length) {
      if (k === 0) this.base = undefined;
      this.metas[k] = meta;
      this.fulls[k] = full;
    } else if (k === this.metas.length) {
      this.metas.push(meta);
      this.fulls.push(full);
    } else {
      throw new Error(`invariant checker: chain index ${i} outside ${this.lo}..${this.lo + this.metas.length}`);
    }
  }

  /** Forgets every index ≥ i. */
  truncateFrom(i: Index): void {
    const k = i - this.lo;
    if (k < this.metas.length) {
      const n = Math.max(0, k);
      if (n === 0) this.base = undefined;
      this.metas.length = n;
      this.fulls.length = n;
    }
  }

  /**
   * Index i lies below what this log holds: compacted into its snapshot (or forgotten by
   * dropBelow, which follows the snapshot). A snapshot covers only applied, hence
   * committed, entries, and state-machine safety checks that those are the same
   * everywhere: the node holds that entry durably, in its snapshot.
   */
  compactedPast(i: Index): boolean {
    return this.metas.length > 0 && i < this.lo;
  }

  /** Forgets every index < i. */
  dropBelow(i: Index): void {
    const k = Math.min(i - this.lo, this.metas.length);
    if (k <= 0) return;
    this.base = undefined;
    this.metas.splice(0, k);
    this.fulls.splice(0, k);
    this.lo += k;
  }
}

/** A log-matching record: the chain of (index, term), and the records of other terms at the same index. */
interface SeenAt {
  term: Term;
  chain: Chain;
  next: SeenAt | undefined;
}

export class InvariantChecker {
  readonly termLeader = new Map<Term, NodeId>();
  private readonly nodes = new Map<NodeId, NodeTrack>();
  /** The same tracks by node id 0..255 (track() runs on every step of every node). */
  private readonly byId: (NodeTrack | undefined)[] = new Array<NodeTrack | undefined>(256).fill(undefined);
  /**
   * (index, term) → chain: the log-matching map, an array by index with a short list
   * per index (one term, unless leaders overwrote it): not an `index:term` string built
   * and hashed for every persisted entry of every node, nor a Map (its lookups were
   * most of persisted()'s time; indexes are small and dense, from 1 up).
   */
  private readonly seen: (SeenAt | undefined)[] = [];
  /** index → what was applied there (state-machine safety). */
  private readonly appliedLog: (AppliedRec | undefined)[] = [];
  private maxApplied = 0;
  /** Counters for the summary. */
  elections = 0;
  checks = 0;

  constructor(
    private readonly nowMs: () => number,
    witnesses: readonly NodeId[],
    private readonly onViolation?: (v: SimViolation) => void,
    /**
     * Checks to skip (only 'durable-commit' and 'commit-monotonic' can be): lets a test
     * show that the other invariants also catch a bug these would catch first.
     */
    private readonly disabled: ReadonlySet<string> = new Set(),
  ) {
    for (const w of witnesses) this.track(w).witness = true;
  }

  /** Highest index applied by any node. */
  get highestApplied(): Index {
    return this.maxApplied;
  }

  appliedAt(i: Index): { term: Term; dataHash: number | undefined } | undefined {
    const a = this.appliedLog[i];
    return a && { term: a.term, dataHash: a.dataHash };
  }

  fail(invariant: string, detail: string): never {
    const v = new SimViolation(invariant, detail, this.nowMs());
    this.onViolation?.(v);
    throw v;
  }

  private track(id: NodeId): NodeTrack {
    // By id first (every step of every node asks): the Map only for ids beyond the array.
    let t = Number.isInteger(id) && id >= 0 && id < this.byId.length ? this.byId[id] : this.nodes.get(id);
    if (!t) {
      t = { rt: undefined, witness: false, chain: new ChainLog(), last: 0, lifeCommit: 0, durableCommit: 0, acceptedCommit: 0, hsTerm: 0, hsVote: 0, appliedMax: 0 };
      this.nodes.set(id, t);
      if (Number.isInteger(id) && id >= 0 && id < this.byId.length) this.byId[id] = t;
    }
    return t;
  }

  /** The last entryChain() result (two numbers, not an object per persisted entry of every node). */
  private cMeta = 0;
  private cFull = 0;

  /** The chain value of `e` after (prevMeta, prevFull), into cMeta/cFull. */
  private entryChain(prevMeta: number, prevFull: number, e: Entry, witness: boolean): void {
    this.cMeta = chainMix(prevMeta, e.index, e.term, e.type, 0);
    this.cFull = witness ? 0 : chainMix(prevFull, e.index, e.term, e.type, hashBytes(e.data));
  }

  /** Chain value at a snapshot index: what was applied there (a snapshot holds only applied state). */
  private snapshotBase(id: NodeId, index: Index, term: Term): Chain {
    if (index === 0) return ZERO;
    const a = this.appliedLog[index];
    if (!a) this.fail('snapshot-provenance', `node ${id} holds a snapshot at index ${index} (term ${term}) but no node ever applied index ${index}`);
    if (a.term !== term) this.fail('state-machine-safety', `node ${id} holds a snapshot at index ${index} with term ${term}, but the entry applied there has term ${a.term}`);
    return a.chain;
  }

  /** Records (index, term) → chain (meta, full); a different chain for the same (index, term) breaks log matching. */
  private matchLog(id: NodeId, e: Entry, meta: number, full: number, witness: boolean): void {
    const head = this.seen[e.index];
    let at = head;
    while (at !== undefined && at.term !== e.term) at = at.next;
    if (at === undefined) {
      this.seen[e.index] = { term: e.term, chain: { meta, full: witness ? -1 : full }, next: head };
      return;
    }
    const s = at.chain;
    if (s.meta !== meta || (!witness && s.full !== -1 && s.full !== full)) {
      this.fail('log-matching', `node ${id} has entry (index ${e.index}, term ${e.term}) with a log prefix different from another node's entry with the same index and term`);
    }
    if (!witness && s.full === -1) s.full = full;
  }

  // ---------------------------------------------------------------------------
  // Observer callbacks (RaftChecks in engine-invariants.ts hands them on)

  booted(rt: RaftHost): void {
    const t = this.track(rt.id);
    t.rt = rt;
    const raft = rt.engine!;
    const s = raft.status();
    t.witness = s.isWitness;
    if (!this.disabled.has('durable-commit')) {
      if (s.commitIndex < t.durableCommit) {
        this.fail('durable-commit', `node ${rt.id} restarted with commit index ${s.commitIndex}, below the ${t.durableCommit} it had made durable`);
      }
      const last = Math.max(s.snapshotIndex, s.lastIndex);
      if (last < t.appliedMax) {
        this.fail('durable-commit', `node ${rt.id} restarted with a log ending at index ${last}, below the index ${t.appliedMax} it had applied (an applied entry must have been durable)`);
      }
    }
    t.lifeCommit = s.commitIndex;
    // What this life's durable log accepted so far: what it recovered (a commit of an
    // earlier life that was never synced is gone, and is not what its flushes write).
    t.acceptedCommit = s.commitIndex;
    t.hsTerm = s.term;
    t.hsVote = s.vote;
    const base = this.snapshotBase(rt.id, s.snapshotIndex, s.snapshotTerm);
    t.chain = new ChainLog(s.snapshotIndex, base);
    let pm = base.meta;
    let pf = base.full;
    for (let i = s.snapshotIndex + 1; i <= s.lastIndex; i++) {
      const e = raft.entryAt(i);
      if (!e) this.fail('recovery', `node ${rt.id} recovered a log with a hole at index ${i}`);
      this.entryChain(pm, pf, e, t.witness);
      pm = this.cMeta;
      pf = this.cFull;
      t.chain.set(i, pm, pf);
      this.matchLog(rt.id, e, pm, pf, t.witness);
    }
    t.last = Math.max(s.snapshotIndex, s.lastIndex);
    this.afterStep(rt);
  }

  afterStep(rt: RaftHost): void {
    this.checks++;
    const raft = rt.engine;
    if (!raft) return;
    const t = this.track(rt.id);
    // The getters, not status(): status() copies config and progress, and this runs after every step.
    const commit = raft.commitIndex;
    if (commit < t.lifeCommit && !this.disabled.has('commit-monotonic')) this.fail('commit-monotonic', `node ${rt.id}'s commit index went from ${t.lifeCommit} down to ${commit}`);
    t.lifeCommit = commit;
    if (raft.currentRole !== 'leader') return;
    const term = raft.currentTerm;
    const prevLeader = this.termLeader.get(term);
    if (prevLeader === rt.id) return;
    if (prevLeader !== undefined) this.fail('election-safety', `nodes ${prevLeader} and ${rt.id} were both leader in term ${term}`);
    this.termLeader.set(term, rt.id);
    this.elections++;
    if (t.witness) this.fail('witness-leads', `witness ${rt.id} became leader in term ${term}`);
    // Leader completeness: the highest index applied by a node in a term < T.
    let i = this.maxApplied;
    for (; i > 0; i--) if ((this.appliedLog[i]?.minTerm ?? Infinity) < term) break;
    if (i === 0 || i <= raft.snapshotIndex) return;
    const e = raft.entryAt(i);
    const a = this.appliedLog[i]!;
    if (!e || e.term !== a.term || (a.dataHash !== undefined && hashBytes(e.data) !== a.dataHash)) {
      this.fail('leader-completeness', `node ${rt.id} became leader of term ${term} without the entry at index ${i} (term ${a.term}) that was committed in an earlier term (it has ${e ? `term ${e.term}` : 'nothing'} there)`);
    }
  }

  persisted(rt: RaftHost, rd: Ready): void {
    this.checks++;
    const t = this.track(rt.id);
    if (rd.snapshot) {
      const m = rd.snapshot.meta;
      t.chain = new ChainLog(m.index, this.snapshotBase(rt.id, m.index, m.term));
      t.last = m.index;
      t.durableCommit = Math.max(t.durableCommit, m.index);
      t.acceptedCommit = Math.max(t.acceptedCommit, m.index);
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      t.chain.truncateFrom(first);
      const k = t.chain.offset(first - 1);
      if (k < 0) this.fail('checker', `node ${rt.id} persisted entries from ${first} but its log before them is unknown to the checker`);
      let pm = t.chain.meta(k);
      let pf = t.chain.full(k);
      const es = rd.entries;
      for (let i = 0; i < es.length; i++) {
        const e = es[i]!;
        this.entryChain(pm, pf, e, t.witness);
        pm = this.cMeta;
        pf = this.cFull;
        t.chain.set(e.index, pm, pf);
        this.matchLog(rt.id, e, pm, pf, t.witness);
      }
      t.last = rd.entries[rd.entries.length - 1]!.index;
    }
    // The durable log syncs a batch unless only the commit index moved; a synced flush
    // writes the highest commit accepted so far (hal/storage/durable-log.ts).
    const hs = rd.hardState;
    if (hs) t.acceptedCommit = Math.max(t.acceptedCommit, hs.commit);
    const synced = rd.snapshot !== undefined || rd.entries.length > 0 || (hs !== undefined && (hs.term !== t.hsTerm || hs.vote !== t.hsVote));
    if (hs) {
      t.hsTerm = hs.term;
      t.hsVote = hs.vote;
    }
    if (synced) t.durableCommit = Math.max(t.durableCommit, t.acceptedCommit);
    // Keep the chain map small: entries below the snapshot are no longer needed.
    if (t.chain.size > 4096) t.chain.dropBelow(rt.engine?.snapshotIndex ?? 0);
  }

  /** `knownHash`: hashBytes(e.data) if the caller computed it already (engine-invariants.ts), else computed here. */
  applied(rt: RaftHost, e: Entry, _result: ApplyResult | undefined, knownHash?: number): void {
    this.checks++;
    const t = this.track(rt.id);
    let at = this.seen[e.index];
    while (at !== undefined && at.term !== e.term) at = at.next;
    if (!at) this.fail('checker', `node ${rt.id} applied index ${e.index} (term ${e.term}) that the checker never saw persisted anywhere`);
    // c: the node's own durable copy's chain if it holds this entry there (offset k), else
    // the log-matching record's (held by the object, whose `full` may be filled in later).
    let k = t.chain.offset(e.index);
    if (k >= 0 && t.chain.meta(k) !== at.chain.meta) k = -1; // its durable copy there is another entry (or none yet)
    let cMeta: number;
    let cFull: number;
    if (k >= 0) {
      cMeta = t.chain.meta(k);
      cFull = t.chain.full(k);
      if (e.index > t.appliedMax) t.appliedMax = e.index;
    } else {
      this.durableOnQuorum(rt, e, at.chain);
      cMeta = at.chain.meta;
      cFull = at.chain.full;
    }
    const term = rt.engine!.currentTerm;
    const a = this.appliedLog[e.index];
    const dataHash = t.witness ? undefined : (knownHash ?? hashBytes(e.data));
    if (!a) {
      this.appliedLog[e.index] = { term: e.term, chain: k >= 0 ? t.chain.chain(k) : at.chain, dataHash, minTerm: term };
      if (e.index > this.maxApplied) this.maxApplied = e.index;
      return;
    }
    if (a.term !== e.term || a.chain.meta !== cMeta || (!t.witness && a.dataHash !== undefined && (a.dataHash !== dataHash || (cFull !== -1 && a.chain.full !== cFull)))) {
      this.fail('state-machine-safety', `node ${rt.id} applied (index ${e.index}, term ${e.term}) but another node applied a different entry (term ${a.term}) at that index`);
    }
    if (a.dataHash === undefined && dataHash !== undefined) {
      a.dataHash = dataHash;
      a.chain = k >= 0 ? t.chain.chain(k) : at.chain;
    }
    if (term < a.minTerm) a.minTerm = term;
  }

  /**
   * `e` was applied on `rt` before its own copy was durable: it must be durable (the
   * same chain at its index) on a quorum of the voting members of rt's configuration.
   * Membership changes one server at a time: the leader counted the commit with the
   * configuration it had then, which is rt's now unless a configuration entry was
   * appended between the commit and the apply.
   */
  private durableOnQuorum(rt: RaftHost, e: Entry, c: Chain): void {
    const cfg = rt.engine!.memberConfig;
    const voting = votingMembers(cfg);
    const need = quorumSize(cfg);
    let have = 0;
    for (const id of voting) {
      const ch = this.track(id).chain;
      const k = ch.offset(e.index);
      // A member that compacted past the index holds it in its snapshot: a follower
      // catching up applies entries that the others compacted long ago.
      if (k >= 0 ? ch.meta(k) === c.meta : ch.compactedPast(e.index)) have++;
    }
    if (have < need) {
      this.fail('applied-durable', `node ${rt.id} applied index ${e.index} (term ${e.term}) before its own copy was durable, held durably by ${have} voting member(s); a quorum is ${need}`);
    }
  }

  engineError(rt: RaftHost, err: Error): void {
    this.fail('engine-error', `node ${rt.id}'s engine threw: ${err.message}`);
  }

  // ---------------------------------------------------------------------------
  // End of run

  /**
   * Every acknowledged write must be committed at the index it was acknowledged
   * with: `index` applied (somewhere) with exactly the command's bytes, and within
   * the final leader's commit index.
   */
  checkAcked(acked: ReadonlyArray<{ index: Index; dataHash: number; what: string }>, finalLeader: RaftHost | undefined): void {
    const commit = finalLeader?.engine?.status().commitIndex ?? this.maxApplied;
    for (const w of acked) {
      const a = this.appliedLog[w.index];
      if (!a || (a.dataHash !== undefined && a.dataHash !== w.dataHash)) {
        this.fail('acked-write-lost', `${w.what} was acknowledged at index ${w.index}, but ${a ? 'a different entry' : 'nothing'} was applied there`);
      }
      if (w.index > commit) this.fail('acked-write-lost', `${w.what} was acknowledged at index ${w.index}, above the final leader's commit index ${commit}`);
    }
  }

  /** Data nodes that applied the same index hold byte-identical state machines. */
  checkStateMachines(rts: readonly RaftHost[]): void {
    const byIndex = new Map<Index, { id: NodeId; snap: Uint8Array }>();
    for (const rt of rts) {
      if (this.track(rt.id).witness) continue;
      const sm = rt.stateMachine;
      const snap = sm.snapshot();
      const other = byIndex.get(sm.appliedIndex);
      if (!other) byIndex.set(sm.appliedIndex, { id: rt.id, snap });
      else if (hashBytes(other.snap) !== hashBytes(snap) || other.snap.length !== snap.length) {
        this.fail('state-machine-safety', `nodes ${other.id} and ${rt.id} both applied up to index ${sm.appliedIndex} but hold different states`);
      }
    }
  }
}
