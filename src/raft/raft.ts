/**
 * The Raft engine: a pure, deterministic state machine in the style of etcd-io/raft's
 * Step/Ready/Advance. Rules from Ongaro & Ousterhout, "In Search of an Understandable
 * Consensus Algorithm" (2014, "paper") and Ongaro's dissertation (2014, "thesis").
 *
 * Inputs: `tick()` (the runtime calls it every `tickMs`), `step(msg)`, `propose(data)`,
 * `readIndex(ctx)`, `transferLeadership(to)`, `proposeConfChange(change)`,
 * `campaign()`, `leaderGone(id)`, `compact(index, data)`. No timers, no I/O; randomness comes from the
 * injected Rng (election timeouts only).
 *
 * Output: `ready()` returns a Ready, or undefined when there is nothing to do. The
 * runtime handles one Ready at a time, in this order:
 *
 *   1. persist `snapshot` (if any, received from the leader): the runtime stores it,
 *      discards its WHOLE durable log (the engine discarded its log too; later
 *      entries follow in `entries`), and restores its state machine from
 *      snapshot.data;
 *   2. persist `entries`: entries[0].index may be at or below the durable last
 *      index, in which case the durable log is truncated from entries[0].index first
 *      (a suffix is overwritten), then the entries are appended;
 *   3. persist `hardState` (term, vote, commit) — after the entries, since commit may
 *      refer to them;
 *   4. make 1–3 durable (fsync) — only then
 *   5. send `messages` (votes, append acks and snapshot acks depend on 1–3);
 *   6. apply `committed` to the state machine, in order, each exactly once (they are
 *      always durable already); serve `readStates` once the applied index reaches
 *      their index; answer `failedReads` with a definite "no leader" (503);
 *   7. call `advance(ready)`.
 *
 * A leader's own messages need nothing durable: `takeEager()` hands them out at any
 * time — before ready(), and while a Ready is being persisted — and the runtime sends
 * them at once, so the followers' fsyncs overlap the leader's (thesis §10.2.1). A
 * follower's heartbeat replies in a durable term go the same way, so that a slow fsync
 * does not silence it (see takeEager).
 *
 * Committed entries need not wait for the node's own disk either: `takeCommitted()`
 * hands out, at any time, the entries committed by a quorum of durable copies that
 * need not include this node's own (its copy may still be syncing) — on a leader and on
 * a follower — and the runtime applies them at once and answers their clients — see
 * takeCommitted() for why that is safe. Entries in a Ready's `committed` are always
 * durable here.
 *
 * `advance(ready)` acknowledges that everything in that Ready is durable, sent and
 * applied: the engine only then counts its own log as stable (a leader counts its own
 * match toward commit only after this, as etcd does) and its applied index moves.
 * `ready()` may not be called again before `advance()`; tick/step/propose may be
 * called in between (their output goes into the next Ready). Messages created at any
 * time are sent only after every entry that was in the log at their creation is
 * durable, so an acknowledgement never runs ahead of the disk — except what
 * takeEager() hands out, which acknowledges nothing of the log: a leader's own
 * replication traffic and its answers to ReadIndex, and a follower's heartbeat replies
 * and ReadIndex requests in a durable term.
 *
 * Restart: construct a new RaftNode from exactly what was persisted (hard state,
 * snapshot, entries). The state machine is expected to be restored from the
 * snapshot; `applied` (default: the snapshot index) says where it stands. A hard
 * state whose commit lies beyond the durable log is refused (the runtime must make
 * entries durable no later than the hard state that refers to them).
 *
 * Proposals: propose() returns the {index, term} the entry got. The runtime learns
 * the outcome from `committed`: the entry at that index with that term is applied
 * (success), or a different term is committed at that index (definitely lost). If
 * the node loses leadership first, the outcome is unknown until then (HTTP 504).
 *
 * Witnesses (docs/fencing.md) run this same engine: they receive Normal entries without
 * data, so `committed` carries empty data they must not apply; their runtime should
 * call compact(applied, empty) now and then to bound the log. A Normal entry without
 * data always means "data not held here" (propose() refuses empty data, and a state
 * machine snapshot is never 0 bytes): a node that is no witness and holds such an
 * entry or a 0-byte snapshot applies nothing until a snapshot brings the data
 * (lacksData).
 */
import type { Rng } from '../rng.ts';
import { NO_NODE, type Index, type NodeId, type Term } from '../types.ts';
import { EntryType, MsgType, type Append, type AppendReply, type Entry, type Heartbeat, type HeartbeatReply, type Message, type ReadIndexReply, type Snapshot, type SnapshotReply } from '../wire/messages.ts';
import {
  applyConfChange, copyConfig, decodeConfig, encodeConfig, ENTRY_OVERHEAD_BYTES, MSG_OVERHEAD_BYTES, quorumSize,
  resolveOptions, validateConfig, votingMembers, allMembers,
  type ConfChange, type MemberConfig, type RaftOptions, type SnapshotMeta, type Ticks,
} from './config.ts';
import { RaftLog } from './log.ts';
import { takeOut } from '../engine/eager.ts';
import { commitToPush, wantCommit } from '../engine/commit-push.ts';

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

export interface HardState { term: Term; vote: NodeId; commit: Index }
export interface SoftState { role: Role; leader: NodeId; term: Term }
/** A confirmed ReadIndex: serve the read once the applied index is >= index. */
export interface ReadState { ctx: number; index: Index }
export interface SnapshotData { meta: SnapshotMeta; data: Uint8Array }

export interface Ready {
  /** Present when term, vote or commit changed since the last advanced Ready. */
  hardState?: HardState;
  /** Entries to append to stable storage; may overwrite a suffix (see header). */
  entries: Entry[];
  /** A snapshot received from the leader: persist first, restore the state machine from it. */
  snapshot?: SnapshotData;
  /** To send only after snapshot, entries and hardState are durable. */
  messages: Message[];
  /** Committed entries to apply, in order, exactly once. */
  committed: Entry[];
  readStates: ReadState[];
  /** ReadIndex contexts that can no longer be served here (leadership lost, no leader): answer 503. */
  failedReads: number[];
  /** Present when role, leader or term changed. */
  softState?: SoftState;
}

export type RejectCode =
  | 'not-leader' | 'transfer-in-progress' | 'too-large' | 'conf-pending' | 'not-caught-up'
  | 'bad-request' | 'no-leader' | 'not-voter' | 'term-not-committed';

export type Result<T = { index: Index; term: Term }> =
  | ({ ok: true } & T)
  | { ok: false; code: RejectCode; reason: string };

export interface RaftInit {
  id: NodeId;
  /** Bootstrap membership; a snapshot's config and config entries in the log override it. */
  config: MemberConfig;
  hardState?: HardState;
  snapshot?: SnapshotData;
  /** Durable log entries after the snapshot, contiguous. */
  entries?: Entry[];
  /** Index the state machine has applied (default: the snapshot index, or 0). */
  applied?: Index;
  options?: Partial<RaftOptions>;
  rng: Rng;
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one follower (etcd's Progress; thesis §3.5 nextIndex/matchIndex). */
interface Progress {
  id: NodeId;
  match: Index;
  next: Index;
  state: ProgressState;
  /** Probe: one Append in flight; cleared on a reply and at every heartbeat round. */
  probeSent: boolean;
  /** Replicate: last indexes of Appends in flight (bounded by maxInflight). */
  inflight: Index[];
  /** Heard from since the last check-quorum round. */
  active: boolean;
  /** Highest commit index the follower told us it has (lets heartbeats omit commit). */
  knownCommit: Index;
  /**
   * Highest commit index we sent it that it can take (an Append's commit as far as its
   * entries reach, a heartbeat's): what it has unless a message was lost. See pushCommit.
   */
  sentCommit: Index;
  /** It was told something it acts on once it has applied this (a read's ReadIndexReply, a forwarded write's answer); 0: none. See notifyCommit. */
  wantCommit: Index;
  /** Highest heartbeat round (ctx) it acknowledged in this term. */
  ackedRound: number;
  /** Heartbeat rounds in a row without progress while data is in flight. */
  stall: number;
  matchAtLastRound: Index;
  snap?: OutgoingSnapshot;
  timeoutNowSent: boolean;
}

interface OutgoingSnapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
  chunks: number;
  sentChunks: number;
  ackedChunks: number;
}

export interface ProgressView {
  id: NodeId;
  match: Index;
  next: Index;
  state: ProgressState;
  inflight: number;
  knownCommit: Index;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: Term;
  vote: NodeId;
  leader: NodeId;
  commitIndex: Index;
  /** Applied index as acknowledged through advance(). */
  appliedIndex: Index;
  lastIndex: Index;
  lastTerm: Term;
  /** Last log index known durable (acknowledged through advance()). */
  stableIndex: Index;
  snapshotIndex: Index;
  snapshotTerm: Term;
  config: MemberConfig;
  isWitness: boolean;
  /**
   * A node that is not a witness but whose log or snapshot lacks entry data up to this
   * index (a former witness keeps its data-less log when it is removed, or re-added as
   * a voter or learner): it neither campaigns nor applies until a snapshot from the
   * leader covers it. 0 otherwise.
   */
  missingDataTo: Index;
  transferee: NodeId;
  /** Leader only: one row per other member. */
  progress: ProgressView[];
}

interface PendingRead { ctx: number; from: NodeId; index: Index; round: number }

const RAFT_TYPES = new Set<MsgType>([
  MsgType.PreVote, MsgType.PreVoteReply, MsgType.Vote, MsgType.VoteReply, MsgType.Append, MsgType.AppendReply,
  MsgType.Heartbeat, MsgType.HeartbeatReply, MsgType.Snapshot, MsgType.SnapshotReply, MsgType.TimeoutNow,
  MsgType.ReadIndex, MsgType.ReadIndexReply,
]);

/** The empty lists of a Ready (frozen: a consumer that tried to add to one would throw, not corrupt the next Ready). */
const NO_ENTRIES = Object.freeze([]) as unknown as Entry[];
const NO_MESSAGES = Object.freeze([]) as unknown as Message[];
/** ReadIndex requests a follower keeps track of at most (askedReads). */
const MAX_ASKED_READS = 1024;

/** What takeEager() hands out (see there): a leader's replication traffic and answers to ReadIndex; a follower's heartbeat replies and ReadIndex requests. */
const LEADER_EAGER: ReadonlySet<MsgType> = new Set([MsgType.Append, MsgType.Heartbeat, MsgType.Snapshot, MsgType.TimeoutNow, MsgType.ReadIndexReply]);
const FOLLOWER_EAGER: ReadonlySet<MsgType> = new Set([MsgType.HeartbeatReply, MsgType.ReadIndex]);
const NO_READ_STATES = Object.freeze([]) as unknown as ReadState[];
const NO_CTXS = Object.freeze([]) as unknown as number[];

/**
 * Drops, in place, each successful AppendReply that a later one in the same list makes
 * redundant: same destination, same term, an index at least as high. A follower whose
 * disk is busy steps several Appends into one Ready (one fsync for all of them) and
 * used to answer each; under load that was ~2 acknowledgements per fsync, each one
 * encoded, tagged, sent, then read, verified and stepped by the leader. The last one
 * says all the others say: a success means "my log matches yours up to index", the
 * leader takes the highest (match never moves back, and the in-flight window drops
 * every Append at or below it), and all of them leave together once the Ready is
 * durable, so none is delayed. Same term and destination means the same leader, whose
 * log only grows within its term, so the higher match does not cover an older
 * conflicting suffix. Rejections and replies to other messages are kept as they are.
 */
function coalesceAcks(msgs: Message[]): void {
  let acks = 0;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    if (m.type === MsgType.AppendReply && m.success) acks++;
  }
  if (acks < 2) return;
  let kept = 0;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    if (m.type === MsgType.AppendReply && m.success && supersededAck(msgs, i, m)) continue;
    msgs[kept++] = m;
  }
  msgs.length = kept;
}

/** A later successful AppendReply in `msgs` (after `i`) to the same node, same term, index ≥ m.index. */
function supersededAck(msgs: Message[], i: number, m: AppendReply): boolean {
  for (let j = i + 1; j < msgs.length; j++) {
    const x = msgs[j]!;
    if (x.type === MsgType.AppendReply && x.success && x.to === m.to && x.term === m.term && x.index >= m.index) return true;
  }
  return false;
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

export class RaftNode {
  readonly id: NodeId;
  readonly options: Readonly<RaftOptions>;
  private readonly ticks: Ticks;
  private readonly rng: Rng;

  private term: Term = 0;
  private vote: NodeId = NO_NODE;
  private leader: NodeId = NO_NODE;
  private role: Role = 'follower';
  private readonly log: RaftLog;
  private commit: Index = 0;
  /**
   * Applied by the runtime and durable here: what compact() may cover (the snapshot
   * of the state machine must not run ahead of the local log). Acknowledged through
   * advance(); entries takeCommitted() handed out count once they are durable here.
   */
  private applied: Index = 0;
  /**
   * Highest index handed out by takeCommitted() (applied by the runtime, maybe before
   * this node's own copy is durable); 0 when none is beyond `applied`.
   */
  private appliedEager: Index = 0;
  private stableIndex: Index = 0;
  /** First log index not yet handed out in a Ready. */
  private unstableFrom: Index = 1;
  private truncatedSinceReady: Index | undefined;
  private prevHard: HardState;
  private prevSoft: SoftState;

  private config: MemberConfig;
  /**
   * votingMembers(config) and quorumSize(config), kept with `config` (set only in the
   * constructor and setConfig): commit, read and vote counting run per message and
   * must not allocate the list each time.
   */
  private voting: NodeId[] = [];
  private quorum = 1;
  /** Scratch for the k-th largest match / acked round / sent time (reused, never retained). */
  private readonly scratch: number[] = [];
  /** Configurations by the index where they took effect; [0] is the snapshot's. */
  private confHistory: Array<{ index: Index; config: MemberConfig }>;
  private snapshot: SnapshotData | undefined;
  /** A snapshot received from the leader, to hand out in the next Ready. */
  private installing: SnapshotData | undefined;
  private incoming: { from: NodeId; term: Term; lastIndex: Index; lastTerm: Term; total: number; parts: Uint8Array[]; received: number; nackedAt?: number } | undefined;

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private failedReads: number[] = [];
  /** ReadIndex requests this follower forwarded to its leader, not answered yet (setLeader). */
  private askedReads: number[] = [];
  private outstanding: { rd: Ready; committedTo: Index } | undefined;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedTimeout = 0;
  /**
   * The durable term this node was constructed with was 0: it never adopted any
   * term, so it never acknowledged a leader's heartbeat (a reply is sent only after the
   * term it carries is durable), and it holds no lease promise (see inLease()).
   */
  private readonly bootedPristine: boolean;
  /** The next election timeout is one tick: this node booted at term 0 as the lowest voter, and has not campaigned yet (resetTimers). */
  private lowestFirstPending = false;
  /** Counts ticks since construction (leases are measured in it). */
  private now = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId = NO_NODE;
  private transferElapsed = 0;
  /**
   * A TimeoutNow left this leader in its current term: no lease read again in this term
   * (see sendTimeoutNow). Cleared only by winning a new term.
   */
  private timeoutNowSentInTerm = false;
  /** Heartbeat rounds up to this one hold no lease (dropLease). */
  private leaseFloor = 0;
  private pendingConfIndex: Index = 0;
  /**
   * Highest index at or below which this node's log or snapshot holds no entry data:
   * a Normal entry without data (what a witness stores in place of the data) or a
   * 0-byte snapshot (a witness's). Derived from the durable log and snapshot alone, so
   * a restart recovers it. It only matters once this node is a voter or learner again
   * (a former witness): see lacksData().
   */
  private dataGapTo: Index = 0;
  private needBcast = false;
  /** Index of this leadership's no-op (becomeLeader); its fencing token once committed. */
  private termStart: Index = 0;

  private readRound = 0;
  private readRoundWanted = false;
  private roundSentAt = new Map<number, number>();
  private pendingReads: PendingRead[] = [];
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private waitingReads: Array<{ ctx: number; from: NodeId }> = [];

  /** Messages ignored because they were for another node or from a stale term. */
  dropped = 0;
  /** Heartbeat replies that still carry the commit index unasked (after a restart; see handleHeartbeat). */
  private reportCommitLeft = 3;

  constructor(init: RaftInit) {
    if (typeof init !== 'object' || init === null) throw new TypeError('RaftNode: expected an init object {id, config, rng, ...}');
    if (!isNat(init.id) || init.id < 1 || init.id > 254) throw new RangeError(`RaftNode: id must be a node id 1..254, got ${String(init.id)}`);
    if (!init.rng || typeof init.rng.int !== 'function') throw new TypeError('RaftNode: rng must be an Rng (src/rng.ts)');
    this.id = init.id;
    this.rng = init.rng;
    const { opts, ticks } = resolveOptions(init.options);
    this.options = Object.freeze(opts);
    this.ticks = ticks;

    let snapIndex = 0;
    let snapTerm = 0;
    let baseConfig = validateConfig(init.config, 'RaftNode config');
    if (init.snapshot !== undefined) {
      const s = init.snapshot;
      if (!s || !s.meta || !isNat(s.meta.index) || !isNat(s.meta.term)) throw new TypeError('RaftNode snapshot: expected {meta: {index, term, config}, data}');
      if (!(s.data instanceof Uint8Array)) throw new TypeError('RaftNode snapshot.data: expected a Uint8Array');
      snapIndex = s.meta.index;
      snapTerm = s.meta.term;
      baseConfig = validateConfig(s.meta.config, 'RaftNode snapshot.meta.config');
      this.snapshot = { meta: { index: snapIndex, term: snapTerm, config: copyConfig(baseConfig) }, data: s.data };
    }
    const entries = init.entries ?? [];
    if (!Array.isArray(entries)) throw new TypeError('RaftNode entries: expected an array of Entry');
    entries.forEach((e, k) => {
      if (!e || !isNat(e.term) || !isNat(e.index) || !(e.data instanceof Uint8Array) || !(e.type in EntryType)) {
        throw new TypeError(`RaftNode entries[${k}]: expected {term, index, type, data: Uint8Array}`);
      }
    });
    this.log = new RaftLog(snapIndex, snapTerm, entries);
    this.confHistory = [{ index: snapIndex, config: baseConfig }];
    for (const e of entries) if (e.type === EntryType.Config) this.confHistory.push({ index: e.index, config: decodeConfig(e.data, `RaftNode entries[index ${e.index}]`) });
    this.config = this.confHistory[this.confHistory.length - 1]!.config;
    this.voting = votingMembers(this.config);
    this.quorum = quorumSize(this.config);

    const hs = init.hardState ?? { term: 0, vote: NO_NODE, commit: 0 };
    if (!isNat(hs.term) || !isNat(hs.vote) || !isNat(hs.commit)) throw new TypeError('RaftNode hardState: expected {term, vote, commit} of non-negative integers');
    if (hs.term < this.log.lastTerm) throw new RangeError(`RaftNode hardState.term ${hs.term} is below the last log term ${this.log.lastTerm}`);
    if (hs.commit > this.log.lastIndex) {
      throw new RangeError(`RaftNode hardState.commit ${hs.commit} is beyond the last durable log index ${this.log.lastIndex}: committed entries are missing from storage`);
    }
    this.term = hs.term;
    this.vote = hs.vote;
    this.bootedPristine = hs.term === 0;
    // The lowest id among the voters that may lead (a witness votes but never campaigns).
    this.lowestFirstPending = this.bootedPristine && this.config.voters.includes(this.id) && this.config.voters.every((v) => v >= this.id);
    this.commit = Math.max(hs.commit, snapIndex);
    this.applied = init.applied ?? snapIndex;
    if (!isNat(this.applied) || this.applied < snapIndex || this.applied > this.commit) {
      throw new RangeError(`RaftNode applied ${String(init.applied)} must be within [snapshot index ${snapIndex}, commit ${this.commit}]`);
    }
    this.stableIndex = this.log.lastIndex;
    this.unstableFrom = this.log.lastIndex + 1;
    this.prevHard = { term: this.term, vote: this.vote, commit: this.commit };
    this.recomputeDataGap();
    this.becomeFollower(this.term, NO_NODE);
    this.prevSoft = this.softState();
  }

  // -------------------------------------------------------------------------
  // Inspection (read-only; for invariant checks and the status API)

  status(): RaftStatus {
    return {
      id: this.id, role: this.role, term: this.term, vote: this.vote, leader: this.leader,
      commitIndex: this.commit, appliedIndex: this.applied, lastIndex: this.log.lastIndex, lastTerm: this.log.lastTerm,
      stableIndex: this.stableIndex, snapshotIndex: this.log.snapIndex, snapshotTerm: this.log.snapTerm,
      config: copyConfig(this.config), isWitness: this.isWitness(), missingDataTo: this.applyBlocked() ? this.dataGapTo : 0, transferee: this.transferee,
      progress: [...this.progress.values()].map((p) => ({ id: p.id, match: p.match, next: p.next, state: p.state, inflight: p.inflight.length, knownCommit: p.knownCommit })),
    };
  }

  /** Term of the entry at `i` (the snapshot's at its index); undefined if compacted or absent. */
  termAt(i: Index): Term | undefined {
    return this.log.term(i);
  }

  entryAt(i: Index): Entry | undefined {
    return this.log.entry(i);
  }

  /** Entries lo..hi inclusive that are in memory. */
  entries(lo: Index, hi: Index): Entry[] {
    return this.log.slice(lo, hi);
  }

  /** The latest snapshot this node holds (taken by compact() or installed from a leader). */
  latestSnapshot(): SnapshotData | undefined {
    return this.snapshot;
  }

  get isLeader(): boolean {
    return this.role === 'leader';
  }

  /**
   * The fencing token of this leadership (src/engine/contract.ts): the index of its
   * no-op once that is committed, else 0. A later leader's log holds every committed
   * entry (leader completeness), so its no-op lands at a higher index: tokens grow.
   * The same value the Raft runtime always used (the last index at election).
   */
  leaderToken(): number {
    return this.role === 'leader' && this.termStart > 0 && this.commit >= this.termStart ? this.termStart : 0;
  }

  /** The current membership, not copied (status().config copies it): do not mutate. */
  get memberConfig(): Readonly<MemberConfig> {
    return this.config;
  }

  // Cheap read-only views of single status() fields. status() copies the
  // configuration and the progress table; the simulator's invariant checker reads
  // a few scalars after every step, so it uses these instead.

  /** The current term (status().term). */
  get currentTerm(): Term {
    return this.term;
  }

  /** The current role (status().role). */
  get currentRole(): Role {
    return this.role;
  }

  /** The highest index known committed (status().commitIndex). */
  get commitIndex(): Index {
    return this.commit;
  }

  /** The leader this node knows for the current term, NO_NODE if none (status().leader). */
  get leaderId(): NodeId {
    return this.leader;
  }

  /** Index of the last entry in the log (status().lastIndex). */
  get lastIndex(): Index {
    return this.log.lastIndex;
  }

  /** The index the latest snapshot covers (status().snapshotIndex). */
  get snapshotIndex(): Index {
    return this.log.snapIndex;
  }

  /**
   * The index the runtime has applied, as acknowledged by advance(), and durable here
   * (status().appliedIndex): what compact() may cover. Entries a leader applied through
   * takeCommitted() count once its own copy of them is durable.
   */
  get appliedIndex(): Index {
    return this.applied;
  }

  /** This node is a witness member in the current configuration (status().isWitness). */
  get witness(): boolean {
    return this.isWitness();
  }

  /** A voter or learner still waiting for the data its former witness log lacks (status().missingDataTo > 0). */
  get missingData(): boolean {
    return this.lacksData();
  }

  // -------------------------------------------------------------------------
  // Inputs

  tick(): void {
    this.now++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /**
   * How many of the next tick() calls only count (tickLeader / tickElection below act on
   * none of them) when no other input comes first: the runtime may sleep through them and
   * make them up in order before the next input (src/engine/contract.ts quietTicks).
   * Leader: until its next heartbeat, check-quorum round or transfer timeout; any
   * other role: until its election timeout; a member that never campaigns (witness,
   * learner): no tick of its own ever acts.
   */
  quietTicks(): number {
    if (this.role === 'leader') {
      let acts = Math.min(this.ticks.heartbeat - this.heartbeatElapsed, this.ticks.electionMin - this.electionElapsed);
      if (this.transferee !== NO_NODE) acts = Math.min(acts, this.ticks.electionMin - this.transferElapsed);
      return Math.max(0, acts - 1);
    }
    if (!this.promotable()) return Number.MAX_SAFE_INTEGER;
    return Math.max(0, this.randomizedTimeout - this.electionElapsed - 1);
  }

  /** Starts an election now (pre-vote first when enabled), e.g. when the link reports the leader gone. */
  campaign(): Result<{ term: Term }> {
    if (this.lacksData()) return { ok: false, code: 'not-caught-up', reason: `node ${this.id} lacks the data of its log up to index ${this.dataGapTo} (a former witness) and campaigns only once a snapshot from the leader brought it` };
    if (!this.promotable()) return { ok: false, code: 'not-voter', reason: `node ${this.id} is not a voter (learner, witness or not a member) and never campaigns` };
    if (this.role === 'leader') return { ok: true, term: this.term };
    this.startCampaign(false);
    return { ok: true, term: this.term };
  }

  /**
   * The link reported that node `id`'s connection died (MQTT Last Will: the broker
   * saw the TCP connection close, or heard nothing for 1.5 × keepalive). If `id` is
   * the leader this node follows, it forgets it: `leader` becomes 0, which ends leader
   * stickiness (thesis §4.2.3), so this node grants pre-votes and votes to another
   * candidate at once instead of ignoring them for up to electionTimeoutMin after the
   * last heartbeat. Any member may get it, witnesses included: a witness cannot
   * campaign, but its vote is needed in 3 data nodes + 1 witness with one node down.
   * It does not start a campaign; the runtime decides who campaigns (`campaign()`).
   *
   * Why this is safe even if the report is false (thesis §9.6):
   *   - Stickiness and pre-vote are liveness measures against a *disruptive* server
   *     (one that keeps bumping terms); election safety, log matching and leader
   *     completeness never rest on them. A false report costs at most one needless
   *     election: the live leader sees the higher term and steps down; committed
   *     entries survive (the new leader's log must be up to date to win, §5.4.1).
   *   - Pre-vote still applies: a candidate needs a quorum of pre-votes, and a node
   *     that did not get the report and still hears the leader keeps refusing. A
   *     broker reports a will to every connected client, so with MQTT only a broken
   *     broker, or a leader that really lost its broker connection (then it cannot
   *     reach anyone over MQTT and an election is wanted), causes one.
   *   - Lease reads (options.leaseRead): a live leader answers reads alone for as long
   *     as the followers that acknowledged its heartbeat promised not to vote, and
   *     forgetting it here breaks that promise. It is kept by the leader's side of the
   *     same connection: the runtime calls dropLease() the moment one of the leader's
   *     broker sessions ends (before the broker can tell anyone), and from then on only
   *     heartbeat rounds sent after that count toward a lease. A follower that forgets
   *     the leader on the will and then acknowledges a newer round received it after
   *     the will (one broker delivers a client's messages in order; with several, a
   *     will counts only when no other broker still sees the leader online), so it is
   *     sticky again and the lease argument holds as without wills. A will the broker
   *     sends on its own — keepalive expiry after 1.5 × keepalive of silence — comes
   *     after every lease of the silent leader ended, as long as that silence is longer
   *     than the lease (the config check: mqtt.keepaliveSec × 1.5 s > the minimum
   *     election timeout). docs/mqtt.md has the argument and its one assumption: a
   *     broker does not close a live, talking client's connection for another reason
   *     (a protocol or ACL violation) without that client seeing it close first.
   * A report about a node that is not our leader (a late will of an earlier leader,
   * or about ourselves) changes nothing.
   */
  leaderGone(id: NodeId): Result<{ forgot: boolean }> {
    if (!Number.isInteger(id) || id < 1 || id > 254) {
      return { ok: false, code: 'bad-request', reason: `leaderGone: id must be a node id 1..254, got ${String(id)}` };
    }
    if (id === this.id || this.role === 'leader' || this.leader !== id) return { ok: true, forgot: false };
    this.setLeader(NO_NODE);
    return { ok: true, forgot: true };
  }

  /**
   * One of this node's links lost a session through which peers may be told it is gone
   * (an MQTT broker connection ended: the broker publishes its Last Will). Heartbeat
   * rounds sent until now no longer hold a lease (see leaderGone for why): lease reads
   * wait for a round sent after this one to be acknowledged by a quorum, and are
   * served by a ReadIndex round meanwhile. Harmless on a follower and when repeated.
   */
  dropLease(): void {
    this.leaseFloor = this.readRound;
  }

  /**
   * Whether this node's log would back a candidate whose last entry is (lastIndex,
   * lastTerm): the up-to-date half of the vote rule (§5.4.1), without the term and
   * stickiness halves. The runtime's campaigns after a leader's will defer only to a
   * candidate it would back (src/raft/engine.ts isCampaignRequest).
   */
  wouldBackLog(cand: NodeId, lastIndex: Index, lastTerm: Term): boolean {
    return this.candidateUpToDate(cand, lastIndex, lastTerm);
  }

  propose(data: Uint8Array): Result {
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: `propose: data must be a Uint8Array, got ${typeof data}` };
    if (data.length === 0) {
      return { ok: false, code: 'bad-request', reason: 'propose: data is empty; a Normal entry without data is what a witness stores in place of data, so commands must be at least one byte' };
    }
    if (data.length > this.ticks.maxEntryBytes) {
      return { ok: false, code: 'too-large', reason: `propose: ${data.length} bytes exceed the ${this.ticks.maxEntryBytes}-byte limit of one entry (maxMsgBytes ${this.options.maxMsgBytes})` };
    }
    const rej = this.leaderCheck();
    if (rej) return rej;
    return this.appendOwn(EntryType.Normal, data);
  }

  proposeConfChange(change: ConfChange): Result {
    const rej = this.leaderCheck();
    if (rej) return rej;
    if (this.pendingConfIndex > this.commit) {
      return { ok: false, code: 'conf-pending', reason: `a configuration change (index ${this.pendingConfIndex}) is not committed yet; one change at a time (thesis §4.1)` };
    }
    // A leader must commit an entry of its own term before changing the membership
    // (Ongaro, raft-dev 2015, the single-server change bug fix).
    if (this.log.term(this.commit) !== this.term) {
      return { ok: false, code: 'term-not-committed', reason: 'the leader has not committed an entry of its term yet; retry shortly' };
    }
    let next: MemberConfig;
    try {
      next = applyConfChange(this.config, change);
    } catch (e) {
      return { ok: false, code: 'bad-request', reason: (e as Error).message };
    }
    if (change.op === 'promote') {
      const pr = this.progress.get(change.node);
      if (!pr || pr.match < this.commit) {
        return { ok: false, code: 'not-caught-up', reason: `learner ${change.node} has match ${pr?.match ?? 0} < commit ${this.commit}; it becomes a voter only once caught up (thesis §4.2.1)` };
      }
    }
    return this.appendOwn(EntryType.Config, encodeConfig(next));
  }

  transferLeadership(to: NodeId): Result<{ term: Term }> {
    if (this.role !== 'leader') return { ok: false, code: 'not-leader', reason: `node ${this.id} is not the leader (leader: ${this.leader})` };
    if (to === this.id) return { ok: true, term: this.term };
    if (!this.config.voters.includes(to)) return { ok: false, code: 'not-voter', reason: `transfer target ${to} is not a voter (witnesses and learners never lead)` };
    if (this.transferee === to) return { ok: true, term: this.term };
    const pr = this.progress.get(to);
    if (!pr) return { ok: false, code: 'not-voter', reason: `no replication progress for ${to}` };
    this.transferee = to;
    this.transferElapsed = 0;
    pr.timeoutNowSent = false;
    if (pr.match === this.log.lastIndex) this.sendTimeoutNow(pr);
    else this.sendAppends(pr);
    return { ok: true, term: this.term };
  }

  /**
   * ReadIndex (thesis §6.4). `ctx` (integer >= 1) identifies the request; the answer is
   * a ReadState {ctx, index} or a failedReads entry in a later Ready. On a follower
   * the request is forwarded to the leader.
   */
  readIndex(ctx: number): Result<{ term: Term }> {
    if (!Number.isInteger(ctx) || ctx < 1 || ctx > 0xffffffff) return { ok: false, code: 'bad-request', reason: `readIndex: ctx must be an integer 1..2^32-1, got ${String(ctx)}` };
    if (this.role !== 'leader') {
      if (this.leader === NO_NODE) return { ok: false, code: 'no-leader', reason: 'no leader known' };
      this.send({ type: MsgType.ReadIndex, from: this.id, to: this.leader, term: this.term, ctx });
      // Bounded: answers lost on the way leave their ctx here; the oldest beyond the
      // bound is failed (its client's request timeout has long answered it).
      if (this.askedReads.length >= MAX_ASKED_READS) this.failedReads.push(this.askedReads.shift()!);
      this.askedReads.push(ctx);
      return { ok: true, term: this.term };
    }
    this.leaderRead(ctx, this.id);
    return { ok: true, term: this.term };
  }

  /**
   * The application has durably stored a snapshot of its state at `index` (<= applied).
   * The engine drops log entries up to `index` and keeps `data` to send to followers
   * that fall behind. Returns the metadata to store with the snapshot; the runtime may
   * then drop durable log entries up to `index`.
   */
  compact(index: Index, data: Uint8Array): Result<{ meta: SnapshotMeta }> {
    if (!isNat(index)) return { ok: false, code: 'bad-request', reason: `compact: index must be a non-negative integer, got ${String(index)}` };
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: 'compact: data must be a Uint8Array' };
    if (index > this.applied) return { ok: false, code: 'bad-request', reason: `compact: index ${index} is beyond the applied index ${this.applied}` };
    if (index <= this.log.snapIndex) return { ok: false, code: 'bad-request', reason: `compact: index ${index} is not after the current snapshot ${this.log.snapIndex}` };
    const meta: SnapshotMeta = { index, term: this.log.term(index)!, config: copyConfig(this.configAt(index)) };
    this.log.compactTo(index);
    let k = 0;
    while (k + 1 < this.confHistory.length && this.confHistory[k + 1]!.index <= index) k++;
    this.confHistory = [{ index, config: this.confHistory[k]!.config }, ...this.confHistory.slice(k + 1)];
    // A witness, or a former witness still without the data, has no state to keep: its
    // snapshot stays empty, and the gap with it (a restart recovers it from the 0 bytes).
    const noData = this.isWitness() || this.lacksData();
    this.snapshot = { meta, data: noData ? new Uint8Array(0) : data };
    if (noData) this.dataGapTo = Math.max(this.dataGapTo, index);
    return { ok: true, meta };
  }

  step(m: Message): void {
    if (typeof m !== 'object' || m === null) throw new TypeError(`raft step: expected a Message object, got ${String(m)}`);
    if (!RAFT_TYPES.has(m.type)) throw new TypeError(`raft step: message type ${String(m.type)} is not a Raft message`);
    if (!isNat(m.term) || !isNat(m.from) || !isNat(m.to)) throw new TypeError(`raft step: term, from and to must be non-negative integers (type ${MsgType[m.type]})`);
    if (m.to !== this.id || m.from === this.id) {
      this.dropped++;
      return;
    }
    if (m.term > this.term) {
      if (m.type === MsgType.PreVote || m.type === MsgType.Vote) {
        const force = m.type === MsgType.Vote && m.transfer;
        // Leader stickiness (thesis §4.2.3): a node that heard from a leader within the
        // minimum election timeout ignores vote requests, unless it is a transfer.
        if (!force && this.inLease()) {
          this.dropped++;
          return;
        }
      }
      if (m.type === MsgType.PreVote || (m.type === MsgType.PreVoteReply && m.granted)) {
        // A pre-vote never changes terms (thesis §9.6); a granted reply carries the
        // candidate's prospective term.
      } else if (m.type === MsgType.Append || m.type === MsgType.Heartbeat || m.type === MsgType.Snapshot) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NO_NODE);
      }
    } else if (m.term < this.term) {
      if ((this.options.checkQuorum || this.options.preVote) && (m.type === MsgType.Append || m.type === MsgType.Heartbeat)) {
        // A stale leader (e.g. back from a partition) learns our term and steps down;
        // with pre-vote we never bump terms to tell it otherwise.
        this.send({ type: MsgType.AppendReply, from: this.id, to: m.from, term: this.term, success: false, index: 0, conflictTerm: 0, conflictIndex: 0 });
      } else if (m.type === MsgType.PreVote) {
        this.send({ type: MsgType.PreVoteReply, from: this.id, to: m.from, term: this.term, granted: false });
      } else if (m.type === MsgType.Vote) {
        // Raft Figure 2: the refusal carries our term "for the candidate to update
        // itself". Without it a candidate that nobody else contacts — a removed leader
        // still campaigning (promotable), whose successors do not send to it — would
        // stay in its old term for good.
        this.send({ type: MsgType.VoteReply, from: this.id, to: m.from, term: this.term, granted: false });
      } else if (m.type === MsgType.ReadIndex) {
        this.send({ type: MsgType.ReadIndexReply, from: this.id, to: m.from, term: this.term, ctx: m.ctx, index: 0, ok: false });
      } else {
        this.dropped++;
      }
      return;
    }

    switch (m.type) {
      case MsgType.PreVote: {
        // Granted for a term above ours when the candidate's log is up to date (§5.4.1).
        const grant = m.term > this.term && this.candidateUpToDate(m.from, m.lastIndex, m.lastTerm);
        this.send({ type: MsgType.PreVoteReply, from: this.id, to: m.from, term: grant ? m.term : this.term, granted: grant });
        // Term 0 (the first election of a brand-new cluster, see resetTimers): having backed
        // a node with a lower id, stand back — leave our own pre-candidacy and draw a new
        // short timeout — so that two nodes that came up together do not both become
        // candidates of term 1 and split its vote (then everyone waits out a whole election
        // timeout). The id only breaks the tie between campaigns that overlap: crossing
        // pre-votes leave the lower id campaigning and the higher one backing it, rather
        // than both backing off. Pre-votes change no term or vote, so this is liveness only.
        if (grant && this.term === 0 && this.role !== 'leader' && m.from < this.id) this.becomeFollower(0, NO_NODE);
        return;
      }
      case MsgType.Vote: {
        const canVote = this.vote === m.from || (this.vote === NO_NODE && this.leader === NO_NODE);
        const grant = canVote && this.candidateUpToDate(m.from, m.lastIndex, m.lastTerm);
        if (grant) {
          this.vote = m.from;
          this.electionElapsed = 0;
        }
        // Sent only after the Ready holding the vote is durable (Raft §5.2 / Figure 2).
        this.send({ type: MsgType.VoteReply, from: this.id, to: m.from, term: this.term, granted: grant });
        return;
      }
      case MsgType.PreVoteReply:
        if (this.role === 'pre-candidate' && m.term === this.term + 1) this.poll(m.from, m.granted);
        else if (this.role === 'pre-candidate' && !m.granted && m.term === this.term) this.poll(m.from, false);
        return;
      case MsgType.VoteReply:
        if (this.role === 'candidate') this.poll(m.from, m.granted);
        return;
      case MsgType.Append:
      case MsgType.Heartbeat:
      case MsgType.Snapshot:
        if (this.role === 'leader') {
          this.dropped++; // impossible by election safety; never act on it
          return;
        }
        if (this.role !== 'follower' || this.leader !== m.from) this.becomeFollower(this.term, m.from);
        this.electionElapsed = 0;
        if (m.type === MsgType.Append) this.handleAppend(m);
        else if (m.type === MsgType.Heartbeat) this.handleHeartbeat(m);
        else this.handleSnapshot(m);
        return;
      case MsgType.TimeoutNow:
        // Thesis §3.10: the target starts an election at once, skipping pre-vote, and
        // its Vote carries `transfer` so that voters ignore their leader lease.
        if (this.role !== 'leader' && this.promotable()) this.startCampaign(true);
        else this.dropped++;
        return;
      case MsgType.ReadIndex:
        if (this.role === 'leader') this.leaderRead(m.ctx, m.from);
        else this.send({ type: MsgType.ReadIndexReply, from: this.id, to: m.from, term: this.term, ctx: m.ctx, index: 0, ok: false });
        return;
      case MsgType.ReadIndexReply: {
        // Only for a read we asked and have not given up on (setLeader): once.
        const k = this.askedReads.indexOf(m.ctx);
        if (k < 0) return;
        this.askedReads.splice(k, 1);
        if (m.ok) this.readStates.push({ ctx: m.ctx, index: m.index });
        else this.failedReads.push(m.ctx);
        return;
      }
      case MsgType.AppendReply:
      case MsgType.HeartbeatReply:
      case MsgType.SnapshotReply: {
        if (this.role !== 'leader') {
          this.dropped++;
          return;
        }
        const pr = this.progress.get(m.from);
        if (!pr) {
          this.dropped++;
          return;
        }
        pr.active = true;
        if (m.type === MsgType.AppendReply) this.handleAppendReply(pr, m);
        else if (m.type === MsgType.HeartbeatReply) this.handleHeartbeatReply(pr, m);
        else this.handleSnapshotReply(pr, m);
        return;
      }
      default:
        this.dropped++;
    }
  }

  // -------------------------------------------------------------------------
  // Ready / advance

  /**
   * Messages this leader may send before its own log is durable, taken out of the next
   * Ready: Appends, heartbeats, snapshot chunks, TimeoutNow and answers to a follower's
   * ReadIndex (a commit index whose leadership a quorum confirmed) of its current term, once
   * that term (with its vote for itself) is durable. As etcd's leader does (Raft thesis
   * §10.2.1: the leader may write its log in parallel with replicating it), because
   * none of them acknowledges anything of this node's log: the leader counts its own
   * entries toward commit only once advance() says they are durable, so a quorum of
   * durable copies is still needed for every commit, and if the leader crashes first it
   * merely lost entries that no one was told are committed. Proposals made since the
   * last Ready become Appends here. May be called at any time, also while a Ready is
   * being persisted.
   *
   * A follower gets its ReadIndex requests (they ask, and promise nothing) and its
   * replies to heartbeats of its current term, once that term is durable: such a
   * reply acknowledges no entry (the leader learns its match only from
   * AppendReply), it says "I follow you in this term and heard this round" — a promise
   * kept in memory (the election timer it reset; after a restart inLease() refuses votes
   * for an election timeout) resting on a term no restart can forget. So a follower
   * whose disk stalls (an SD card's garbage collection: seconds) still tells its leader
   * it is there while its fsync is in flight, and the leader keeps its quorum (check-quorum)
   * and lease instead of stepping down over a slow disk; the writes wait for the disk
   * either way. Its votes, append and snapshot acknowledgements wait for the disk, and so
   * does everything of a candidate.
   */
  takeEager(): Message[] {
    if (this.prevHard.term !== this.term) return NO_MESSAGES;
    if (this.role === 'leader') {
      this.flush();
      return takeOut(this.msgs, LEADER_EAGER, this.term);
    }
    return this.role === 'follower' ? takeOut(this.msgs, FOLLOWER_EAGER, this.term) : NO_MESSAGES;
  }


  ready(): Ready | undefined {
    if (this.outstanding) throw new Error('raft ready(): the previous Ready has not been advanced yet; call advance(ready) first');
    this.flush();
    // The runtime asks after every input; most of the time there is nothing: answer
    // without allocating (hasReady() false implies every field below would be empty).
    if (!this.hasReady()) return undefined;
    if (this.msgs.length > 1) coalesceAcks(this.msgs);
    // Empty lists are one shared frozen array (a Ready per step of every node: five
    // fresh arrays each, most of them empty, were a visible share of the garbage).
    const rd: Ready = {
      entries: NO_ENTRIES,
      messages: this.msgs.length > 0 ? this.msgs : NO_MESSAGES,
      committed: NO_ENTRIES,
      readStates: this.readStates.length > 0 ? this.readStates : NO_READ_STATES,
      failedReads: this.failedReads.length > 0 ? this.failedReads : NO_CTXS,
    };
    const ph = this.prevHard;
    if (this.term !== ph.term || this.vote !== ph.vote || this.commit !== ph.commit) rd.hardState = { term: this.term, vote: this.vote, commit: this.commit };
    const ps = this.prevSoft;
    if (this.role !== ps.role || this.leader !== ps.leader || this.term !== ps.term) rd.softState = this.softState();
    if (this.installing) rd.snapshot = this.installing;
    if (this.unstableFrom <= this.log.lastIndex) rd.entries = this.log.slice(this.unstableFrom, this.log.lastIndex);
    let committedTo = this.applied;
    const base = this.handedOut();
    if (!this.installing && this.applied >= this.log.snapIndex && !this.applyBlocked()) {
      const hi = Math.min(this.commit, this.stableIndex);
      if (hi > base) {
        rd.committed = this.log.slice(base + 1, hi);
        committedTo = hi;
      }
    }
    const empty = !rd.hardState && !rd.softState && !rd.snapshot && rd.entries.length === 0 && rd.messages.length === 0 &&
      rd.committed.length === 0 && rd.readStates.length === 0 && rd.failedReads.length === 0;
    if (empty) return undefined;
    // Lists handed out belong to the Ready now; empty ones stay (the Ready has NO_* instead).
    if (this.msgs.length > 0) this.msgs = [];
    if (this.readStates.length > 0) this.readStates = [];
    if (this.failedReads.length > 0) this.failedReads = [];
    this.installing = undefined;
    this.unstableFrom = this.log.lastIndex + 1;
    this.truncatedSinceReady = undefined;
    this.outstanding = { rd, committedTo };
    return rd;
  }

  /** Whether ready() would return a Ready (without flushing pending leader work). */
  hasReady(): boolean {
    return this.needBcast || this.readRoundWanted || this.msgs.length > 0 || this.readStates.length > 0 || this.failedReads.length > 0 ||
      this.installing !== undefined || this.unstableFrom <= this.log.lastIndex || (Math.min(this.commit, this.stableIndex) > this.handedOut() && !this.applyBlocked()) ||
      this.term !== this.prevHard.term || this.vote !== this.prevHard.vote || this.commit !== this.prevHard.commit ||
      this.role !== this.prevSoft.role || this.leader !== this.prevSoft.leader || this.term !== this.prevSoft.term;
  }

  advance(rd: Ready): void {
    if (!this.outstanding || this.outstanding.rd !== rd) throw new Error('raft advance(): argument is not the Ready last returned by ready()');
    const { committedTo } = this.outstanding;
    this.outstanding = undefined;
    if (rd.hardState) this.prevHard = { ...rd.hardState };
    if (rd.softState) this.prevSoft = { ...rd.softState };
    if (rd.snapshot) {
      this.stableIndex = Math.max(this.stableIndex, rd.snapshot.meta.index);
      // The state machine was restored from the snapshot: it stands exactly there (a
      // former witness may have applied its data-less entries beyond it).
      this.applied = rd.snapshot.meta.index;
      this.appliedEager = 0;
    }
    if (rd.entries.length > 0) {
      let s = rd.entries[rd.entries.length - 1]!.index;
      if (this.truncatedSinceReady !== undefined) s = Math.min(s, this.truncatedSinceReady - 1);
      this.stableIndex = Math.max(this.stableIndex, Math.min(s, this.log.lastIndex));
    }
    if (!rd.snapshot) this.applied = Math.max(this.applied, committedTo);
    this.foldEager();
    if (this.role === 'leader') this.maybeCommit();
  }

  /** Entries applied through takeCommitted() count in `applied` once durable here. */
  private foldEager(): void {
    if (this.appliedEager > this.applied) this.applied = Math.max(this.applied, Math.min(this.appliedEager, this.stableIndex));
    if (this.appliedEager <= this.applied) this.appliedEager = 0;
  }

  /** Highest index handed out to apply, through a Ready or takeCommitted(). */
  private handedOut(): Index {
    return this.appliedEager > this.applied ? this.appliedEager : this.applied;
  }

  /**
   * Read states (a read's index, confirmed by the leader) to act on now, also while a
   * Ready is being persisted; they are then in no Ready's `readStates`. A read state
   * depends on nothing this node writes: the read is served once the applied index
   * reaches it (takeCommitted keeps applying meanwhile), so neither a leader's nor a
   * follower's linearizable reads wait for its own disk.
   */
  takeReadStates(): ReadState[] {
    if (this.readStates.length === 0) return NO_READ_STATES;
    const rs = this.readStates;
    this.readStates = [];
    return rs;
  }

  /**
   * Committed entries that may be applied now although this node's own copy of them
   * may not be durable yet (its Ready is still being persisted): the runtime applies
   * them at once, in order, each exactly once, and answers their clients; they are in
   * no Ready's `committed`. A leader's, and a follower's (the entries its leader says
   * are committed), so that neither waits for its own disk to apply — a follower whose
   * SD card stalls still serves linearizable reads of what the cluster committed. Empty
   * for candidates, while a snapshot is being installed, and while the Ready in flight
   * holds committed entries not yet applied (they come first).
   *
   * Why this is safe (Raft thesis §10.2.1; etcd's server applies a leader's committed
   * entries while its own WAL write is in flight too, etcdserver/raft.go): the leader
   * counts its own log toward commit only once it is durable (maybeCommit), so an
   * entry committed while the leader's copy is still syncing is durable on a quorum of
   * other voters — committed in the Raft sense, on a quorum that every later leader's
   * election overlaps (leader completeness). Applying it and answering the client
   * reports exactly what is committed. If the leader then crashes before its own copy
   * is durable, it restarts with a shorter log and an older commit index, rebuilds a
   * prefix of the same state and learns the rest from the next leader, as any node
   * that restarts behind does; nothing it applied is lost, because a quorum holds it.
   * A follower: its commit index never exceeds what its leader counted committed (the
   * leader's commit, capped at the last entry the follower holds from that leader's
   * Appends, whose log matches the leader's up to there), so what it applies early is
   * committed on a quorum of durable copies just the same, and a crash before its own
   * fsync costs it only a replay from the leader, as for the leader above.
   * What must stay local stays local: compact() covers only entries that are applied
   * AND durable here (appliedIndex lags until they are), so a snapshot never runs ahead
   * of this node's own log; the hard state's commit never refers to entries beyond the
   * durable log (entries are persisted with or before it, as before).
   */
  takeCommitted(): Entry[] {
    if ((this.role !== 'leader' && this.role !== 'follower') || this.installing || this.applyBlocked() || this.applied < this.log.snapIndex) return NO_ENTRIES;
    const base = this.handedOut();
    if (this.commit <= base) return NO_ENTRIES;
    const o = this.outstanding;
    if (o && (o.committedTo > base || o.rd.snapshot)) return NO_ENTRIES;
    const ents = this.log.slice(base + 1, this.commit);
    this.appliedEager = this.commit;
    // Those already durable here count at once (there may be no later Ready to advance).
    this.foldEager();
    return ents;
  }

  // -------------------------------------------------------------------------
  // Roles

  private softState(): SoftState {
    return { role: this.role, leader: this.leader, term: this.term };
  }

  private isWitness(): boolean {
    return this.config.witnesses.includes(this.id);
  }

  /**
   * The vote rule (Raft §5.4.1): grant only to a candidate whose log is at least as up to
   * date as ours — with an addition for configurations of at most two voting members.
   *
   * The case: two data boards and a witness; the leader, cut off from the other board,
   * proposes its own removal. The entry C = {other board, witness} reaches only the
   * witness (maybe with entries the leader appended after it); the leader then steps
   * down (check-quorum) or dies. The other board comes back with a shorter log than the
   * witness's, the witness never campaigns and refuses the shorter log: no leader ever
   * again, although both members of the newest config can talk.
   *
   * The addition: the candidate's log is a prefix of ours (its last entry is in our
   * log), we know nothing after it committed, and either
   *   (a) our next entry is a config entry C (the only one after the candidate's log)
   *       of which the candidate is a voting member and every quorum contains it, or
   *   (b) we hold no config entry after the candidate's log, and in the candidate's
   *       latest config (ours at its last index) every quorum contains it;
   * "every quorum contains it" means at most two voting members, the candidate one.
   * Then none of our entries after the candidate's log can be committed, so the
   * candidate lacks nothing committed, and a voter holding a committed entry still never
   * votes for a candidate without it — all that leader completeness (§5.4.3) asks of
   * the vote. Why, using one change at a time (a config is proposed only once the one
   * before it in the proposer's log is committed: proposeConfChange waits for the
   * pending one, a new leader treats its whole log as pending) and that a committed
   * entry is never lost:
   *   (a) A leader that commits one of our entries at or after C holds C (log
   *       matching). A config after C is proposed only once C committed, and C commits
   *       only on a quorum of C, which contains the candidate — which lacks C. So the
   *       commit was counted with C, on a quorum holding the candidate: contradiction.
   *   (b) Say our entry e after the candidate's log was committed by a quorum Q without
   *       the candidate of the committing leader's config X. X is not the candidate's
   *       config Z (every quorum of Z holds it), so X lies after e in that leader's log
   *       and came from a chain of single changes from Z, each proposed once the one
   *       before committed. If Z = {candidate}, the first change has only quorums with
   *       the candidate, so it never commits without the candidate holding it (which it
   *       does not) and nothing further follows: X would be it — contradiction. If Z =
   *       {candidate, w}, the first change (or X itself) has a quorum without the
   *       candidate only if every such quorum contains w, and it committed on one — so
   *       w holds a config after the candidate's log. The candidate needs w's vote
   *       (quorum of Z), and w's log then fails (b) and (a) (its config after the
   *       candidate's log has a quorum without the candidate): w refuses. We are w or
   *       not in Z: our vote alone elects no one.
   * (The thesis, §4.2.2, lets a removed leader keep leading until C commits — see
   * promotable(); this lets the remaining members finish the job when it cannot.)
   */
  private candidateUpToDate(cand: NodeId, lastIndex: Index, lastTerm: Term): boolean {
    if (this.log.isUpToDate(lastIndex, lastTerm)) return true;
    if (lastIndex < this.log.snapIndex || this.log.term(lastIndex) !== lastTerm || this.commit > lastIndex) return false;
    const h = this.confHistory;
    const last = h[h.length - 1]!;
    if (last.index <= lastIndex) return quorumsHold(this.config, cand); // (b)
    // (a): exactly one config entry after the candidate's log, right after it.
    return last.index === lastIndex + 1 && h[h.length - 2]!.index <= lastIndex && quorumsHold(last.config, cand);
  }

  /**
   * Only nodes that hold the data and are voters campaign: witnesses, learners, former
   * witnesses still without their data, and non-members never do — except a voter that
   * was removed by the last config entry in its log while that entry is not known
   * committed: thesis §4.2.2, "a server that is not part of its own latest configuration
   * should still start new elections, as it might still be needed until the C_new entry
   * is committed". Typically the leader that proposed its own removal and lost its
   * quorum (check-quorum) or restarted before the entry committed: it may hold committed
   * entries nobody else of the new config has. It then counts votes and commits in the
   * new config without itself, and steps down once that config commits
   * (onCommitAdvanced).
   */
  private promotable(): boolean {
    if (this.dataGapTo > 0) return false;
    if (this.config.voters.includes(this.id)) return true;
    const n = this.confHistory.length;
    return n >= 2 && this.confHistory[n - 1]!.index > this.commit && this.confHistory[n - 2]!.config.voters.includes(this.id);
  }

  /**
   * A former witness that is a voter or learner again: its log has the real indexes and
   * terms but not the data below dataGapTo. What it does until a snapshot brings the
   * data (the behaviour a user sees is in docs/fencing.md, "Re-adding a former witness"):
   *   - it never campaigns nor takes a transfer (a leader must hold the data, §5.4);
   *   - it applies nothing (its state machine would miss the writes), so reads that
   *     wait for its applied index wait;
   *   - it refuses every Append with the hint (0, 0), so the leader walks back to the
   *     start of its log and sends its snapshot — and counts no acknowledgement from it
   *     meanwhile (its match stays 0), as for a learner catching up;
   *   - it installs only a snapshot that covers both the gap and its commit index (a
   *     commit index never goes back); an older one is dropped and the leader sends its
   *     next one (checkStall). The leader has no snapshot before its first compaction:
   *     until then the node waits.
   * It still votes: a vote reads only indexes and terms, which it has, exactly as a
   * witness votes.
   */
  private lacksData(): boolean {
    return this.dataGapTo > 0 && (this.config.voters.includes(this.id) || this.config.learners.includes(this.id));
  }

  /**
   * No entry is applied while the log lacks data and this node is not a witness: a
   * former witness as voter or learner (lacksData), but also one that was removed and
   * is no member (it would apply empty commands to its state machine) and a new node
   * added as a witness that has not yet received the entry that makes it one (it
   * applies, as a witness, once it has).
   */
  private applyBlocked(): boolean {
    return this.dataGapTo > 0 && !this.isWitness();
  }

  /** dataGapTo from the log and snapshot held now (construction, and after a truncation below it). */
  private recomputeDataGap(): void {
    for (let i = this.log.lastIndex; i > this.log.snapIndex; i--) {
      const e = this.log.entry(i)!;
      if (e.type === EntryType.Normal && e.data.length === 0) {
        this.dataGapTo = i;
        return;
      }
    }
    this.dataGapTo = this.log.snapIndex > 0 && this.snapshot !== undefined && this.snapshot.data.length === 0 ? this.log.snapIndex : 0;
  }

  /**
   * Leader stickiness. Tied to checkQuorum as in etcd: only then does a node with a
   * higher term (which we would ignore) learn of, and end, a live leader through the
   * stale-term AppendReply in step(); without it a rejoining node could stay locked out.
   */
  private inLease(): boolean {
    if (!this.options.checkQuorum) return false;
    // With lease reads a node that just (re)started may have acknowledged the leader's
    // lease before it crashed: it grants no vote during its first election timeout.
    // Not a node that booted with durable term 0: acknowledging a heartbeat means
    // adopting the leader's term (>= 1), and the acknowledgement leaves only once that
    // term is durable, so such a node never promised anything (a brand-new cluster
    // elects without first sitting out a whole election timeout).
    if (this.options.leaseRead && this.now < this.ticks.electionMin && !this.bootedPristine) return true;
    return this.leader !== NO_NODE && this.electionElapsed < this.ticks.electionMin;
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    // Term 0: no node of this cluster ever campaigned that we know of (any vote request,
    // heartbeat or refusal we received carried a term >= 1 and we adopted it), so there
    // is no leader to disrupt and nothing a short timeout could hurt: the first
    // election of a brand-new cluster starts after [firstElectionMin, firstElectionMax)
    // ticks (one to two heartbeat intervals), still randomized, instead of the normal
    // election timeout. Safety rests on terms, votes and log comparison as always; pre-vote
    // still asks first, and a node that is refused (a peer with a term) adopts that term
    // and waits normal timeouts from then on. One draw either way: the simulator's
    // sequence of random numbers keeps its shape.
    this.randomizedTimeout = this.term === 0
      ? this.rng.int(this.ticks.firstElectionMin, this.ticks.firstElectionMax - 1)
      : this.rng.int(this.ticks.electionMin, this.ticks.electionMax - 1);
    // The lowest voter of a brand-new cluster asks at once, the first time: its clock
    // starts when a peer is reachable (the daemon holds it until then), so its pre-vote
    // meets a peer that has backed nobody, and the other nodes' first timeouts are still
    // drawn as above (its campaign is over before theirs run out, and the tie-break of
    // PreVote keeps a crossing one from splitting the vote). Only once: should that
    // pre-vote fail (a peer not listening yet), it waits the randomized timeouts.
    if (this.lowestFirstPending && this.term === 0) this.randomizedTimeout = 1;
  }

  private becomeFollower(term: Term, leader: NodeId): void {
    const wasLeader = this.role === 'leader';
    if (term > this.term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.role = 'follower';
    this.setLeader(leader);
    this.resetTimers();
    this.votes.clear();
    if (wasLeader) this.loseLeadership();
  }

  private loseLeadership(): void {
    this.progress.clear();
    this.transferee = NO_NODE;
    this.needBcast = false;
    this.readRoundWanted = false;
    this.roundSentAt.clear();
    for (const r of [...this.pendingReads, ...this.waitingReads]) this.failRead(r.ctx, r.from);
    this.pendingReads = [];
    this.waitingReads = [];
  }

  /**
   * The leader this node follows changes (or it knows none). ReadIndex requests it
   * forwarded to the one before are failed now ("no leader", 503: the client may
   * retry) instead of waiting out the request timeout: that leader is gone or deposed,
   * and its answer, if any came, is no longer looked for. Before, a follower cut off
   * from its leader kept its clients' reads for the whole timeout.
   */
  private setLeader(leader: NodeId): void {
    if (leader !== this.leader && this.askedReads.length > 0) {
      for (const ctx of this.askedReads) this.failedReads.push(ctx);
      this.askedReads = [];
    }
    this.leader = leader;
  }

  private failRead(ctx: number, from: NodeId): void {
    if (from === this.id) this.failedReads.push(ctx);
    else this.send({ type: MsgType.ReadIndexReply, from: this.id, to: from, term: this.term, ctx, index: 0, ok: false });
  }

  private startCampaign(transfer: boolean): void {
    this.lowestFirstPending = false;
    if (this.options.preVote && !transfer) {
      this.role = 'pre-candidate';
      this.setLeader(NO_NODE);
      this.resetTimers();
      this.votes.clear();
      // Counting our own pre-vote needs no persistence: a pre-vote changes nothing.
      this.votes.set(this.id, true);
      if (this.tally() === 'won') return this.becomeCandidate(false);
      for (const to of votingMembers(this.config)) {
        if (to !== this.id) this.send({ type: MsgType.PreVote, from: this.id, to, term: this.term + 1, lastIndex: this.log.lastIndex, lastTerm: this.log.lastTerm });
      }
      return;
    }
    this.becomeCandidate(transfer);
  }

  private becomeCandidate(transfer: boolean): void {
    this.role = 'candidate';
    this.term += 1;
    this.vote = this.id;
    this.setLeader(NO_NODE);
    this.resetTimers();
    this.votes.clear();
    // Our own vote counts at once: the Vote requests leave only after the Ready that
    // holds (term, vote) is durable, and a single-node leader commits nothing before
    // advance() confirms its own log.
    this.votes.set(this.id, true);
    if (this.tally() === 'won') return this.becomeLeader();
    for (const to of votingMembers(this.config)) {
      if (to !== this.id) this.send({ type: MsgType.Vote, from: this.id, to, term: this.term, lastIndex: this.log.lastIndex, lastTerm: this.log.lastTerm, transfer });
    }
  }

  private poll(from: NodeId, granted: boolean): void {
    if (!this.voting.includes(from)) return;
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const r = this.tally();
    if (r === 'won') {
      if (this.role === 'pre-candidate') this.becomeCandidate(false);
      else this.becomeLeader();
    } else if (r === 'lost') {
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  private tally(): 'won' | 'lost' | 'pending' {
    const members = this.voting;
    const q = this.quorum;
    let yes = 0;
    let no = 0;
    for (const id of members) {
      const v = this.votes.get(id);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    if (yes >= q) return 'won';
    if (no > members.length - q) return 'lost';
    return 'pending';
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.setLeader(this.id);
    this.resetTimers();
    this.votes.clear();
    this.progress.clear();
    this.transferee = NO_NODE;
    this.readRound = 0;
    this.leaseFloor = 0;
    this.timeoutNowSentInTerm = false;
    this.roundSentAt.clear();
    for (const id of allMembers(this.config)) if (id !== this.id) this.progress.set(id, this.newProgress(id));
    // Conservative: no config change until everything in our log so far is committed.
    this.pendingConfIndex = this.log.lastIndex;
    // Raft §5.4.2 / §8: a new leader appends an empty entry of its term; committing it
    // commits everything before it and lets ReadIndex start (thesis §6.4).
    this.appendOwn(EntryType.Noop, new Uint8Array(0));
    this.termStart = this.log.lastIndex;
  }

  private newProgress(id: NodeId): Progress {
    return {
      id, match: 0, next: this.log.lastIndex + 1, state: 'probe', probeSent: false, inflight: [], active: false,
      knownCommit: 0, sentCommit: 0, wantCommit: 0, ackedRound: 0, stall: 0, matchAtLastRound: 0, timeoutNowSent: false,
    };
  }

  private leaderCheck(): Result | undefined {
    if (this.role !== 'leader') return { ok: false, code: 'not-leader', reason: `node ${this.id} is not the leader (leader: ${this.leader || 'unknown'})` };
    if (this.transferee !== NO_NODE) return { ok: false, code: 'transfer-in-progress', reason: `leadership is being transferred to ${this.transferee}` };
    return undefined;
  }

  private appendOwn(type: EntryType, data: Uint8Array): Result {
    const e: Entry = { term: this.term, index: this.log.lastIndex + 1, type, data };
    this.log.append(e);
    if (type === EntryType.Config) {
      this.pendingConfIndex = e.index;
      this.confHistory.push({ index: e.index, config: decodeConfig(data, `own config entry ${e.index}`) });
      this.setConfig(this.confHistory[this.confHistory.length - 1]!.config);
    }
    this.needBcast = true;
    return { ok: true, index: e.index, term: e.term };
  }

  // -------------------------------------------------------------------------
  // Ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedTimeout) this.startCampaign(false);
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.transferee !== NO_NODE && ++this.transferElapsed >= this.ticks.electionMin) {
      this.transferee = NO_NODE; // thesis §3.10: abort a transfer that did not finish within an election timeout
    }
    if (this.electionElapsed >= this.ticks.electionMin) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum) {
        // Thesis §6.2: step down when no majority was heard from within an election timeout.
        const voting = this.voting;
        let active = voting.includes(this.id) ? 1 : 0;
        for (const id of voting) if (id !== this.id && this.progress.get(id)?.active) active++;
        for (const pr of this.progress.values()) pr.active = false;
        if (active < this.quorum) {
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
      }
    }
    if (this.heartbeatElapsed >= this.ticks.heartbeat) {
      for (const pr of this.progress.values()) this.checkStall(pr);
      this.bcastHeartbeat(this.leaseOrReadCtx());
    }
  }

  /** Called once per heartbeat round: recovers from lost Appends / snapshot chunks. */
  private checkStall(pr: Progress): void {
    if (pr.state === 'probe') {
      pr.probeSent = false;
    } else if (pr.state === 'replicate') {
      if (pr.inflight.length > 0 && pr.match === pr.matchAtLastRound) {
        if (++pr.stall >= 2) this.becomeProbe(pr, pr.match + 1);
      } else {
        pr.stall = 0;
      }
    } else if (pr.snap) {
      if (pr.snap.sentChunks > pr.snap.ackedChunks && ++pr.stall >= 2) {
        pr.stall = 0;
        // A newer snapshot was taken meanwhile: send that one (a former witness drops
        // one that does not cover its gap and commit index, see lacksData).
        if (this.snapshot && this.snapshot.meta.index > pr.snap.meta.index) this.startSnapshot(pr);
        else pr.snap.sentChunks = pr.snap.ackedChunks; // resend from the last acknowledged chunk
      }
    }
    pr.matchAtLastRound = pr.match;
  }

  private leaseOrReadCtx(): number {
    if (this.readRoundWanted || this.options.leaseRead) {
      this.readRoundWanted = false;
      this.readRound++;
      this.roundSentAt.set(this.readRound, this.now);
      this.roundSentAt.delete(this.readRound - 64); // rounds that old cannot hold a lease any more
      return this.readRound;
    }
    return 0;
  }

  private bcastHeartbeat(ctx: number): void {
    this.heartbeatElapsed = 0;
    for (const pr of this.progress.values()) {
      const c = Math.min(pr.match, this.commit);
      const hb: Heartbeat = { type: MsgType.Heartbeat, from: this.id, to: pr.id, term: this.term, commit: c > pr.knownCommit ? c : undefined, ctx };
      if (c > pr.sentCommit) pr.sentCommit = c;
      this.send(hb);
    }
    if (ctx !== 0) this.checkReads();
  }

  // -------------------------------------------------------------------------
  // Replication (leader)

  /** Sends what proposals and read requests accumulated since the last ready(). */
  private flush(): void {
    if (this.role !== 'leader') return;
    if (this.readRoundWanted) this.bcastHeartbeat(this.leaseOrReadCtx());
    if (this.needBcast) {
      this.needBcast = false;
      for (const pr of this.progress.values()) this.sendAppends(pr);
      this.maybeCommit(); // a single voter commits on its own
    }
  }

  /** Sends as many Appends as the follower's state allows (bounded by maxInflight). */
  private sendAppends(pr: Progress): void {
    for (let i = 0; i <= this.options.maxInflight; i++) if (!this.maybeSendAppend(pr)) break;
  }

  /** Returns true when another Append could follow at once (replicate state, data sent). */
  private maybeSendAppend(pr: Progress): boolean {
    if (pr.state === 'snapshot') {
      this.sendSnapshotChunks(pr);
      return false;
    }
    if (pr.state === 'probe' && pr.probeSent) return false;
    if (pr.state === 'replicate' && pr.inflight.length >= this.options.maxInflight) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      this.startSnapshot(pr);
      return false;
    }
    const witness = this.config.witnesses.includes(pr.id);
    const entries: Entry[] = [];
    let budget = this.options.maxMsgBytes - MSG_OVERHEAD_BYTES;
    for (let i = pr.next; i <= this.log.lastIndex && entries.length < this.options.maxEntriesPerMsg; i++) {
      let e = this.log.entry(i)!;
      // Witnesses keep log metadata only (docs/fencing.md): Normal entries go without data.
      if (witness && e.type === EntryType.Normal && e.data.length > 0) e = { ...e, data: new Uint8Array(0) };
      const size = e.data.length + ENTRY_OVERHEAD_BYTES;
      if (size > budget && entries.length > 0) break;
      budget -= size;
      entries.push(e);
    }
    if (entries.length === 0 && pr.state === 'replicate') return false;
    const m: Append = { type: MsgType.Append, from: this.id, to: pr.id, term: this.term, prevIndex, prevTerm, entries, commit: this.commit };
    this.send(m);
    if (pr.state === 'probe') {
      pr.probeSent = true;
      return false;
    }
    const last = entries[entries.length - 1]!.index;
    pr.next = last + 1;
    pr.inflight.push(last);
    // A follower takes the commit as far as the entries it has from us (§5.3).
    const c = Math.min(this.commit, last);
    if (c > pr.sentCommit) pr.sentCommit = c;
    return true;
  }

  private becomeProbe(pr: Progress, next: Index): void {
    pr.state = 'probe';
    pr.next = Math.max(pr.match + 1, next);
    pr.probeSent = false;
    pr.inflight = [];
    pr.stall = 0;
    pr.snap = undefined;
  }

  private becomeReplicate(pr: Progress): void {
    pr.state = 'replicate';
    pr.next = pr.match + 1;
    pr.inflight = [];
    pr.stall = 0;
    pr.snap = undefined;
  }

  private handleAppendReply(pr: Progress, m: AppendReply): void {
    if (!m.success) {
      // Stale rejections (for an Append we already moved past) are ignored.
      if (m.index <= pr.match) return;
      if (pr.state === 'probe' && m.index !== pr.next - 1) return;
      if (pr.state === 'snapshot') return;
      // Fast backtracking (thesis §5.3 / etcd): the follower's hint (conflictIndex,
      // conflictTerm) is its last entry at or below the rejected index whose term is
      // <= the leader's prevTerm. We skip every one of our entries above the hint with
      // a term above conflictTerm: one round trip per term, not per entry.
      const next = this.log.lastIndexWithTermAtMost(Math.min(m.conflictIndex, m.index), m.conflictTerm).index + 1;
      this.becomeProbe(pr, Math.min(next, m.index));
      this.sendAppends(pr);
      return;
    }
    // Acknowledged appends leave the window (in place: one reply per append is the hot path).
    const inf = pr.inflight;
    let kept = 0;
    for (let r = 0; r < inf.length; r++) if (inf[r]! > m.index) inf[kept++] = inf[r]!;
    inf.length = kept;
    if (m.index > pr.match) {
      pr.match = m.index;
      if (pr.next <= pr.match) pr.next = pr.match + 1;
      if (pr.state === 'probe') this.becomeReplicate(pr);
      else if (pr.state === 'snapshot' && pr.snap && pr.match >= pr.snap.meta.index) this.becomeReplicate(pr);
      this.maybeCommit();
    } else if (pr.state === 'probe' && m.index === pr.next - 1) {
      this.becomeReplicate(pr); // probe answered: the follower matches up to next-1
    }
    if (this.role !== 'leader') return; // maybeCommit may have made us step down
    if (pr.id === this.transferee && pr.match === this.log.lastIndex) this.sendTimeoutNow(pr);
    this.sendAppends(pr);
    if (pr.wantCommit > 0) this.pushCommit(pr);
  }

  private handleHeartbeatReply(pr: Progress, m: HeartbeatReply): void {
    // What the follower says it has, also when lower (it restarted): a stale, reordered
    // reply only costs the commit field in the next heartbeat.
    if (m.commit !== undefined) {
      pr.knownCommit = m.commit;
      // Lower after a restart (the commit index is not durable on every change): it must be told again.
      if (m.commit < pr.sentCommit) pr.sentCommit = m.commit;
    }
    if (m.ctx > pr.ackedRound) {
      pr.ackedRound = m.ctx;
      this.checkReads();
    }
    if (pr.match < this.log.lastIndex || pr.state === 'snapshot') this.sendAppends(pr);
  }

  private sendTimeoutNow(pr: Progress): void {
    if (pr.timeoutNowSent) return;
    pr.timeoutNowSent = true;
    // The target's Vote carries `transfer`, which makes every voter ignore the promise
    // (leader stickiness) that a lease rests on. The message may be delayed, duplicated
    // or reordered without bound, so no time after which it can no longer arrive exists:
    // a lease read is unsafe from now on for the rest of this term, even after the
    // transfer was aborted. Reads fall back to ReadIndex, whose quorum round proves
    // leadership at the time of the read whatever the delays (a target that won a
    // higher term makes the quorum answer with that term). A stale TimeoutNow cannot
    // harm a later term of ours: the target it reaches campaigns at most at term + 1
    // of this one, and every voter that acknowledged a later term's heartbeats has
    // that later term (so it refuses a lower one) and knows us as its leader in it
    // (so it refuses a vote in an equal one); becomeLeader clears the flag.
    this.timeoutNowSentInTerm = true;
    this.send({ type: MsgType.TimeoutNow, from: this.id, to: pr.id, term: this.term });
  }

  /** Raft §5.3/§5.4.2: commit the highest index stored on a quorum, if it is of the current term. */
  private maybeCommit(): void {
    if (this.role !== 'leader') return;
    // The scratch array is written by index and its length set only when it changes:
    // `length = 0` then push was a runtime call per use (a leader does this per step).
    const matches = this.scratch;
    let n = 0;
    for (const id of this.voting) {
      if (id === this.id) matches[n++] = this.stableIndex; // own log counts only once durable
      else matches[n++] = this.progress.get(id)?.match ?? 0;
    }
    if (matches.length !== n) matches.length = n;
    const mci = kthLargest(matches, this.quorum, 0);
    // Figure 8: only entries of the current term are committed by counting.
    if (mci > this.commit && this.log.term(mci) === this.term) {
      this.commit = mci;
      this.onCommitAdvanced();
    }
  }

  private onCommitAdvanced(): void {
    if (this.waitingReads.length > 0 && this.log.term(this.commit) === this.term) {
      const w = this.waitingReads;
      this.waitingReads = [];
      for (const r of w) this.leaderRead(r.ctx, r.from);
    }
    // Thesis §4.2.2: a leader that removed itself steps down once that config is committed.
    if (!this.voting.includes(this.id) && this.commit >= this.confHistory[this.confHistory.length - 1]!.index) {
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  // -------------------------------------------------------------------------
  // Snapshots (leader side)

  private startSnapshot(pr: Progress): void {
    if (!this.snapshot) throw new Error(`raft: follower ${pr.id} needs entries before ${this.log.firstIndex} but this node holds no snapshot`);
    const witness = this.config.witnesses.includes(pr.id);
    const data = witness ? new Uint8Array(0) : this.snapshot.data;
    pr.state = 'snapshot';
    pr.inflight = [];
    pr.stall = 0;
    pr.snap = { meta: this.snapshot.meta, data, chunks: Math.max(1, Math.ceil(data.length / this.ticks.chunkBytes)), sentChunks: 0, ackedChunks: 0 };
    this.sendSnapshotChunks(pr);
  }

  private sendSnapshotChunks(pr: Progress): void {
    const s = pr.snap;
    if (!s) return;
    const cb = this.ticks.chunkBytes;
    while (s.sentChunks < s.chunks && s.sentChunks - s.ackedChunks < this.options.maxInflight) {
      const off = s.sentChunks * cb;
      const end = Math.min(off + cb, s.data.length);
      const m: Snapshot = {
        type: MsgType.Snapshot, from: this.id, to: pr.id, term: this.term, lastIndex: s.meta.index, lastTerm: s.meta.term,
        offset: off, total: s.data.length, data: s.data.subarray(off, end), done: s.sentChunks === s.chunks - 1, config: copyConfig(s.meta.config),
      };
      this.send(m);
      s.sentChunks++;
    }
  }

  private handleSnapshotReply(pr: Progress, m: SnapshotReply): void {
    const s = pr.snap;
    if (pr.state !== 'snapshot' || !s || m.lastIndex !== s.meta.index) return;
    const cb = this.ticks.chunkBytes;
    pr.stall = 0;
    if (!m.ok) {
      // The follower lost a chunk: go back to the first byte it is missing.
      s.ackedChunks = Math.min(Math.floor(m.next / cb), s.chunks - 1);
      s.sentChunks = s.ackedChunks;
    } else if (m.next === s.data.length) {
      // Installed (and durable: the reply left after the follower's Ready was persisted).
      pr.match = Math.max(pr.match, s.meta.index);
      this.becomeReplicate(pr);
      this.maybeCommit();
      if (this.role !== 'leader') return;
    } else {
      s.ackedChunks = Math.max(s.ackedChunks, Math.floor(m.next / cb));
    }
    this.sendAppends(pr);
  }

  // -------------------------------------------------------------------------
  // Follower side

  /** The answer to an Append (a method, not a closure per call: Appends are the hot path). */
  private replyAppend(to: NodeId, success: boolean, index: Index, conflictIndex = 0, conflictTerm = 0): void {
    this.send({ type: MsgType.AppendReply, from: this.id, to, term: this.term, success, index, conflictIndex, conflictTerm });
  }

  private handleAppend(m: Append): void {
    const before = this.msgs.length;
    this.acceptAppend(m);
    if (this.dataGapTo === 0 || !this.lacksData()) return;
    // A former witness without its data acknowledges nothing; the (0, 0) hint makes the
    // leader walk back to its snapshot (see lacksData). The entries stay: they carry the
    // configuration, and their indexes and terms are real.
    for (let i = before; i < this.msgs.length; i++) {
      const x = this.msgs[i]!;
      if (x.type === MsgType.AppendReply && x.to === m.from) {
        this.msgs[i] = { type: MsgType.AppendReply, from: this.id, to: m.from, term: this.term, success: false, index: m.prevIndex, conflictIndex: 0, conflictTerm: 0 };
      }
    }
  }

  private acceptAppend(m: Append): void {
    if (m.prevIndex < this.commit) {
      // Everything up to commit already matches the leader (committed entries never change).
      const lastNew = m.prevIndex + m.entries.length;
      if (lastNew <= this.commit) return this.replyAppend(m.from, true, this.commit);
      // Keep only the part above our commit.
      const skip = this.commit - m.prevIndex;
      return this.acceptAppend({ ...m, prevIndex: this.commit, prevTerm: m.entries[skip - 1]!.term, entries: m.entries.slice(skip) });
    }
    if (!this.log.matchTerm(m.prevIndex, m.prevTerm)) {
      const hintFrom = Math.min(m.prevIndex, this.log.lastIndex);
      const h = this.log.lastIndexWithTermAtMost(hintFrom, m.prevTerm);
      return this.replyAppend(m.from, false, m.prevIndex, h.index, h.term);
    }
    let i = 0;
    for (; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      const want = m.prevIndex + 1 + i;
      if (e.index !== want) throw new TypeError(`raft step: Append from ${m.from} has entries[${i}].index ${e.index}, expected ${want}`);
      const t = this.log.term(e.index);
      if (t === undefined) break;
      if (t !== e.term) {
        // Conflict: drop it and everything after (Raft §5.3).
        if (e.index <= this.commit) throw new Error(`raft: leader ${m.from} conflicts with committed entry ${e.index}`);
        this.truncate(e.index);
        break;
      }
    }
    for (; i < m.entries.length; i++) {
      let e = m.entries[i]!;
      if (this.isWitness() && e.type === EntryType.Normal && e.data.length > 0) e = { ...e, data: new Uint8Array(0) };
      this.log.append(e);
      if (e.type === EntryType.Normal && e.data.length === 0) this.dataGapTo = e.index;
      if (e.type === EntryType.Config) {
        this.confHistory.push({ index: e.index, config: decodeConfig(e.data, `config entry ${e.index} from ${m.from}`) });
        this.setConfig(this.confHistory[this.confHistory.length - 1]!.config);
      }
    }
    const lastNew = m.prevIndex + m.entries.length;
    const c = Math.min(m.commit, lastNew);
    if (c > this.commit) this.commit = c;
    this.replyAppend(m.from, true, lastNew);
  }

  private truncate(from: Index): void {
    this.log.truncateFrom(from);
    this.stableIndex = Math.min(this.stableIndex, from - 1);
    this.unstableFrom = Math.min(this.unstableFrom, from);
    this.truncatedSinceReady = Math.min(this.truncatedSinceReady ?? from, from);
    if (this.dataGapTo >= from) this.recomputeDataGap();
    // An acknowledgement not yet sent must not claim entries we just dropped.
    this.msgs = this.msgs.filter((x) => !(x.type === MsgType.AppendReply && x.success && x.index >= from));
    let changed = false;
    while (this.confHistory.length > 1 && this.confHistory[this.confHistory.length - 1]!.index >= from) {
      this.confHistory.pop();
      changed = true;
    }
    if (changed) this.setConfig(this.confHistory[this.confHistory.length - 1]!.config);
  }

  private handleHeartbeat(m: Heartbeat): void {
    if (m.commit !== undefined) {
      const c = Math.min(m.commit, this.log.lastIndex);
      if (c > this.commit) this.commit = c;
      this.reportCommitLeft = 0;
    }
    const r: HeartbeatReply = { type: MsgType.HeartbeatReply, from: this.id, to: m.from, term: this.term, ctx: m.ctx };
    // Also in the first replies after a restart (until a heartbeat carried the commit):
    // the commit index is not synced on its own (hal/storage), so this node may have
    // come back with an older one than the leader last heard of, and an idle leader
    // omits the commit from heartbeats to a follower it believes knows it. Three
    // replies, in case one is lost; after that the idle reply is small again.
    if (m.commit !== undefined) r.commit = this.commit;
    else if (this.reportCommitLeft > 0) {
      this.reportCommitLeft--;
      r.commit = this.commit;
    }
    this.send(r);
  }

  private handleSnapshot(m: Snapshot): void {
    const reply = (next: number, ok: boolean) =>
      this.send({ type: MsgType.SnapshotReply, from: this.id, to: m.from, term: this.term, lastIndex: m.lastIndex, next, ok });
    const needData = this.lacksData();
    if (needData && m.lastIndex < Math.max(this.commit, this.dataGapTo)) {
      // Too old to bring our missing data without moving the commit index back: wait
      // for the leader's next snapshot (it sends it when this one stalls).
      this.incoming = undefined;
      this.dropped++;
      return;
    }
    if (!needData && m.lastIndex <= this.commit) {
      // Nothing to install: we have it all (committed). Report installed.
      this.incoming = undefined;
      return reply(m.total, true);
    }
    if (!needData && this.log.term(m.lastIndex) === m.lastTerm) {
      // Our log already holds the snapshot's last entry, hence (log matching) all
      // before it: keep the log and what follows — we may have acknowledged it — and
      // just learn the commit (Raft Figure 13, step 6).
      this.incoming = undefined;
      this.commit = m.lastIndex;
      return reply(m.total, true);
    }
    let inc = this.incoming;
    if (m.offset === 0 && (!inc || inc.lastIndex !== m.lastIndex || inc.term !== m.term || inc.from !== m.from)) {
      inc = this.incoming = { from: m.from, term: m.term, lastIndex: m.lastIndex, lastTerm: m.lastTerm, total: m.total, parts: [], received: 0 };
    }
    if (!inc || inc.lastIndex !== m.lastIndex || inc.term !== m.term || inc.from !== m.from || inc.total !== m.total) {
      return reply(0, false);
    }
    if (m.offset < inc.received) return reply(inc.received, true); // duplicate chunk
    if (m.offset > inc.received) {
      // A chunk was lost; ask once per gap (the window's later chunks say the same),
      // the leader's stall detection covers a lost request.
      if (inc.nackedAt === inc.received) return;
      inc.nackedAt = inc.received;
      return reply(inc.received, false);
    }
    if (m.offset + m.data.length > m.total) return reply(inc.received, false);
    inc.parts.push(m.data.slice());
    inc.received += m.data.length;
    if (!m.done) return reply(inc.received, true);
    if (inc.received !== inc.total) return reply(inc.received, false);
    // Install (Raft §7): discard the whole log, take the snapshot's config and commit.
    const data = new Uint8Array(inc.total);
    let p = 0;
    for (const part of inc.parts) {
      data.set(part, p);
      p += part.length;
    }
    this.incoming = undefined;
    const config = validateConfig(m.config, `snapshot config from ${m.from}`);
    const meta: SnapshotMeta = { index: m.lastIndex, term: m.lastTerm, config };
    const snap: SnapshotData = { meta, data: this.config.witnesses.includes(this.id) ? new Uint8Array(0) : data };
    this.msgs = this.msgs.filter((x) => !(x.type === MsgType.AppendReply && x.success));
    this.log.reset(m.lastIndex, m.lastTerm);
    this.stableIndex = Math.min(this.stableIndex, m.lastIndex);
    this.unstableFrom = m.lastIndex + 1;
    this.truncatedSinceReady = undefined;
    this.commit = m.lastIndex;
    this.confHistory = [{ index: m.lastIndex, config }];
    this.setConfig(config);
    this.snapshot = snap;
    this.installing = snap;
    this.dataGapTo = snap.data.length === 0 ? m.lastIndex : 0;
    reply(inc.total, true);
  }

  // -------------------------------------------------------------------------
  // Membership

  private configAt(index: Index): MemberConfig {
    let c = this.confHistory[0]!.config;
    for (const h of this.confHistory) if (h.index <= index) c = h.config;
    return c;
  }

  /** Thesis §4.1: a configuration takes effect as soon as its entry is in the log. */
  private setConfig(c: MemberConfig): void {
    this.config = c;
    this.voting = votingMembers(c);
    this.quorum = quorumSize(c);
    if (this.role !== 'leader') return;
    const members = new Set(allMembers(c));
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) if (id !== this.id && !this.progress.has(id)) this.progress.set(id, this.newProgress(id));
    if (this.transferee !== NO_NODE && !c.voters.includes(this.transferee)) this.transferee = NO_NODE;
    this.maybeCommit();
    this.checkReads();
  }

  // -------------------------------------------------------------------------
  // Reads (thesis §6.4)

  private leaderRead(ctx: number, from: NodeId): void {
    if (this.log.term(this.commit) !== this.term) {
      this.waitingReads.push({ ctx, from });
      return;
    }
    if (this.leaseValid()) return this.serveRead(ctx, from, this.commit);
    this.pendingReads.push({ ctx, from, index: this.commit, round: this.readRound + 1 });
    this.readRoundWanted = true;
    this.checkReads();
  }

  private serveRead(ctx: number, from: NodeId, index: Index): void {
    if (from === this.id) return void this.readStates.push({ ctx, index });
    this.notifyCommit(from, index); // first: the commit then arrives before the answer
    this.send({ type: MsgType.ReadIndexReply, from: this.id, to: from, term: this.term, ctx, index, ok: true });
  }

  /**
   * Peer `to` is being told something it acts on only once it has applied `index`: a
   * read's ReadIndex (above) or, from the runtime, the answer to a write it forwarded.
   * It gets the commit now (src/engine/commit-push.ts). With lease reads a ReadIndex is
   * answered without a heartbeat round, and a follower's read right after a write waited
   * for the next heartbeat: 94 ms median at a 100 ms heartbeat before this.
   */
  notifyCommit(to: NodeId, index: Index): void {
    if (this.role !== 'leader' || index > this.commit) return;
    const pr = this.progress.get(to);
    if (pr && wantCommit(pr, index)) this.pushCommit(pr);
  }

  /** A heartbeat (ctx 0: no read round) carrying the commit `pr` waits for, once its log matches ours that far (§5.3, as bcastHeartbeat). */
  private pushCommit(pr: Progress): void {
    const c = commitToPush(pr, Math.max(pr.sentCommit, pr.knownCommit), Math.min(pr.match, this.commit));
    if (c === 0) return;
    pr.sentCommit = c;
    this.send({ type: MsgType.Heartbeat, from: this.id, to: pr.id, term: this.term, commit: c, ctx: 0 });
  }

  /** Releases reads whose heartbeat round a quorum (counting us) acknowledged. */
  private checkReads(): void {
    if (this.role !== 'leader') return;
    const acked = this.scratch; // by index, as in maybeCommit
    let n = 0;
    for (const id of this.voting) acked[n++] = id === this.id ? Number.MAX_SAFE_INTEGER : this.progress.get(id)?.ackedRound ?? 0;
    if (acked.length !== n) acked.length = n;
    const confirmed = kthLargest(acked, this.quorum, 0);
    let k = 0;
    while (k < this.pendingReads.length && this.pendingReads[k]!.round <= Math.min(confirmed, this.readRound)) {
      const r = this.pendingReads[k]!;
      this.serveRead(r.ctx, r.from, r.index);
      k++;
    }
    if (k > 0) this.pendingReads = this.pendingReads.slice(k);
  }

  /**
   * Lease read (thesis §6.4.1): valid while a quorum acknowledged a heartbeat round sent
   * less than electionMin × (1 − maxClockDriftRatio) ticks ago — those followers ignore
   * vote requests until electionMin of their own ticks after receiving it. Never during
   * a transfer, nor for the rest of a term in which a TimeoutNow was sent (TimeoutNow
   * votes bypass the lease; see sendTimeoutNow).
   */
  private leaseValid(): boolean {
    if (!this.options.leaseRead || this.transferee !== NO_NODE || this.timeoutNowSentInTerm) return false;
    const sent = this.scratch; // by index, as in maybeCommit
    let n = 0;
    for (const id of this.voting) {
      if (id === this.id) sent[n++] = this.now;
      else {
        const round = this.progress.get(id)?.ackedRound ?? 0;
        sent[n++] = round > this.leaseFloor ? (this.roundSentAt.get(round) ?? -Infinity) : -Infinity;
      }
    }
    if (sent.length !== n) sent.length = n;
    const start = kthLargest(sent, this.quorum, -Infinity);
    return this.now < start + Math.floor(this.ticks.electionMin * (1 - this.options.maxClockDriftRatio)) - 1;
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }
}

/** Every quorum of `c` contains `id`: it votes in c, which has at most two voting members. */
function quorumsHold(c: MemberConfig, id: NodeId): boolean {
  const voting = votingMembers(c);
  return voting.includes(id) && voting.length - 1 < quorumSize(c);
}

/**
 * The k-th largest value (k ≥ 1) of `xs`, or `dflt` when there are fewer than k.
 * Sorts `xs` in place (a scratch array of at most a few voters). Also the ZAB
 * engine's quorum count (src/zab/zab.ts).
 */
export function kthLargest(xs: number[], k: number, dflt: number): number {
  // Insertion sort, descending: a handful of values, cheaper than Array.sort's comparator calls.
  for (let i = 1; i < xs.length; i++) {
    const v = xs[i]!;
    let j = i - 1;
    while (j >= 0 && xs[j]! < v) {
      xs[j + 1] = xs[j]!;
      j--;
    }
    xs[j + 1] = v;
  }
  return xs[k - 1] ?? dflt;
}
