/**
 * Multi-Paxos: the replicated-log engine `paxos`, a pure deterministic state machine
 * implementing the engine contract (src/engine/contract.ts).
 *
 * Sources: Lamport, "Paxos Made Simple" (2001, "PMS") §3 for the multi-decree
 * protocol (a distinguished proposer runs phase 1 once for all later instances, then
 * phase 2 per instance, and fills gaps with no-ops); van Renesse & Altinbuken,
 * "Paxos Made Moderately Complex" (2015, "PMMC") for the leader's use of its phase-1
 * reports and the per-slot rules; Chandra, Griesemer & Redstone, "Paxos Made Live"
 * (2007) for master leases, catch-up and snapshots in practice; Howard & Mortier,
 * "Paxos vs Raft: Have we reached consensus on distributed consensus?" (2020) for the
 * observation that Multi-Paxos can replicate the way Raft does once a leader holds a
 * ballot. The replication machinery (progress, pipelining, probing, snapshot chunks,
 * read rounds) follows src/raft/raft.ts, so the two engines read alike.
 *
 * ## Roles and ballots
 * Every node is a proposer, acceptor and learner; voters may lead, witnesses accept
 * but never lead, learners only learn. Ballots are round × 256 + node id
 * (ballot.ts). An acceptor's promise `P` is its one durable number (HardState.term).
 *
 * ## Leader election = phase 1, once for all slots
 * A follower that hears no leader for a randomized election timeout campaigns: it
 * picks a ballot b above everything it has seen, promises b to itself, and sends
 * Prepare(b, lo) to every acceptor, lo = its commit + 1. (With pre-prepare, it first
 * asks whether a quorum would promise; nothing changes until one would.) An acceptor
 * promises b if b > P — unless it heard a live leader within the minimum election
 * timeout (leader stickiness: a liveness measure only) — and answers with every value
 * it holds from lo on, in pages. When the candidate has complete answers from a
 * quorum (itself included) it is leader and picks, for every slot s from lo to the
 * highest slot any of them reported (N):
 *   - the chosen value, if a reporter knows s is chosen (s ≤ its commit);
 *   - else the value of the highest ballot any of them accepted at s (PMS P2c);
 *   - else a no-op (a gap: nothing there can have been chosen).
 * It accepts all of them at b itself — re-proposing them, which keeps their origin —
 * and appends its own no-op at N + 1 (its start slot). Phase 1 is then done for every
 * slot: new commands go to N + 2, N + 3, ... with phase 2 only.
 *
 * Why a value chosen at a lower ballot survives: it was accepted at some c < b by a
 * majority; the candidate's quorum intersects it in an acceptor that accepted at c
 * before promising b (after the promise it would refuse c), so that acceptor reports a
 * vote ≥ c at s, and every value accepted at a ballot in [c, b) at s is the chosen one
 * (induction over ballots, PMS §2.2). Taking the maximum over more reports than a
 * quorum changes nothing in this argument. Slots above N: no quorum member accepted
 * anything there before promising b, so nothing there was or will be chosen at a
 * ballot below b — votes for them elsewhere are dead.
 *
 * ## Leadership transfer (a planned stop)
 * `transferLeadership(to)`: the leader takes no more proposals, brings `to` up to its
 * last slot, then sends it TimeoutNow; `to` runs phase 1 at once with a higher ballot,
 * its Prepare marked `transfer` so that acceptors that still hear the old leader
 * promise anyway (stickiness is liveness only). Nothing about safety changes: it is an
 * ordinary phase 1 (PMS §2.2), which any proposer may start at any time; being caught
 * up only makes `to` win quickly. Dropped after a minimum election timeout.
 *
 * What the runtime's activation gate takes as the old leader's acknowledgement of the
 * new leadership (docs/fencing.md) is a HeartbeatReply or a positive Accepted at the
 * new ballot b'. An acceptor sends one only after it promised b' (onHeartbeat,
 * onAccept: followLeader), and on this engine a node leads ballot b only while its
 * promise is b: a higher promise, by a Prepare, an Accept or a heartbeat, makes it a
 * follower in the same step, and its promise never goes down (it is durable before the
 * answer leaves, and recovered from the write stamps after a restart). So such an answer
 * shows that its sender left every ballot below b' for good — exactly what the gate needs
 * to let the successor act without fencing it or waiting out its lease. A Promise does
 * not count (a pre-prepare answer promises nothing).
 *
 * ## Phase 2 per slot, Raft-shaped
 * The leader sends Accept(b, first, commit, slots) to every other member, pipelined
 * (maxInflight per follower, many slots per message: batching). An acceptor takes
 * them in order: it holds b's values from its commit + 1 up to `accEnd`, and accepts
 * an Accept whose first slot is at most accEnd + 1 (else it says where it stands, and
 * the leader backs up, like Raft's probe). It answers Accepted(index = accEnd): every
 * slot up to there is b's value or known chosen. A slot is chosen once a quorum holds
 * b's value there; since every value the leader holds after phase 1 is at ballot b,
 * the leader commits the quorum's k-th highest accEnd — no Raft "current term" rule is
 * needed.
 *
 * ## Commit learning
 * Accept and Heartbeat carry the leader's commit. A replica commits min(commit, accEnd)
 * for that leader's ballot: up to accEnd it holds exactly the leader's values. A replica
 * that is behind gets the leader's values (or a snapshot when the leader compacted
 * them). The leader itself commits what a quorum acknowledged; a new leader also
 * adopts the highest commit its quorum reported (those slots were chosen and the
 * report carried their values).
 *
 * ## Durability (see slots.ts for the on-disk shape)
 * Durable: the promise P (HardState.term), the commit index, and every slot value
 * with the ballot that accepted it. Messages of a Ready leave only after its state is
 * durable: a promise or an Accepted never runs ahead of the disk. After a restart P is
 * the larger of the stored term and every entry's write stamp.
 *
 * A Paxos acceptor overwrites votes in the middle of its log (a higher ballot's value
 * replaces an older one), so a Ready may rewrite a suffix that holds votes it already
 * acknowledged; a Ready that installs a snapshot keeps the votes after it the same
 * way. **The runtime must make such a Ready's snapshot and entries durable all or
 * nothing** (`Ready.atomic`): if a crash kept the first rewritten slot but lost the
 * rest, acknowledged votes would be gone — the one thing an acceptor must never do.
 * A Ready that only appends (the steady state) may be torn anywhere: what is lost was
 * never acknowledged. The hard state may be lost with any torn Ready: P is recovered
 * from the stamps, and commit is learned again.
 *
 * ## Fencing token
 * leaderToken() = the start slot of this leadership (its own no-op at N + 1), once
 * committed; 0 before. Why it grows: if leader L1 (ballot b1) committed its start slot
 * n1, and L2 has ballot b2 > b1, L2's quorum intersects every quorum that chose n1, so
 * L2's N ≥ n1 and its start slot n2 = N + 1 > n1. (The ballot alone orders leaderships
 * too, but it lives on another scale than lock-grant tokens, which are slot indexes:
 * a resource that saw lock token 1000 would refuse leadership ballot 513.) A start slot
 * and a lock grant are both indexes of chosen slots, one total order shared by every
 * replica, exactly as in Raft (src/fence/token.ts).
 *
 * ## Reads
 * ReadIndex by a quorum round (Raft thesis §6.4): the leader notes its commit, sends a
 * heartbeat round, and serves the read once a quorum answered that round at its ballot
 * — no newer leader can have completed a write before then — and once its start slot
 * is committed (so its commit covers everything chosen by earlier leaders). No leases:
 * a lease needs a clock-drift bound and a promise that also survives restarts; a read
 * costs one heartbeat round trip, which concurrent reads share. caps.lease = false.
 *
 * ## The leader-gone hint (MQTT Last Will)
 * `leaderGone(id)` makes a follower forget its leader, so that it promises a new ballot
 * at once instead of ignoring Prepares for up to electionTimeoutMin (stickiness); the
 * runtime then has the survivors campaign in id order. A SIGKILLed or crashed leader is
 * so replaced in tens of ms instead of an election timeout (docs/engines.md). It is
 * safe even when the leader is alive — the broker also sends a will after a keepalive
 * timeout, to a leader that is only slow — because nothing here rests on stickiness:
 *   - Chosen values: a new leader's phase 1 learns every value a quorum accepted, with
 *     or without the hint (Lamport, "Paxos Made Simple", 2001).
 *   - Reads: no leases. The old leader serves a read only once a quorum answered a
 *     round at its ballot; an acceptor that promised the new ballot no longer does, and
 *     the quorums intersect, so it cannot answer with a commit older than the new
 *     leader's writes.
 *   - The runtime's activation lease (daemon/runtime/activation.ts) does not count on
 *     stickiness either: the successor waits from its own election, which a voter of the
 *     old leader's last acknowledged round joined after acknowledging it.
 * Stickiness (and pre-prepare) only keep a cut-off node from disrupting a live leader;
 * a false report costs one needless election. So, unlike Raft with lease reads, no
 * bound between the keepalive and the election timeout is needed (the config check
 * for it is Raft's alone).
 *
 * ## Witnesses
 * A witness is an acceptor that stores no command data: it keeps every slot's ballot,
 * origin and type, and the data of no-op and config slots, but not of Normal slots. It
 * counts in every quorum (promises and accepts) and never campaigns. A new leader whose
 * quorum reports a Normal value only from witnesses takes the data from any report of
 * the same (slot, origin) — one origin names one value — and until it has it, it cannot
 * finish phase 1. The limit (the same as Raft's witness): with two data nodes and a
 * witness, if the data node that alone holds a chosen value is down, the other cannot
 * become leader until it is back. Safety never depends on the witness's data.
 *
 * ## Not supported
 * Membership changes: the membership is the bootstrap config (or a snapshot's).
 * propose() takes application commands only.
 */
import type { Rng } from '../rng.ts';
import { NO_NODE, type Index, type NodeId, type Term } from '../types.ts';
import {
  EntryType, MsgType,
  type Entry, type Heartbeat, type HeartbeatReply, type MemberConfig, type Message, type PaxosAccept, type PaxosAccepted,
  type PaxosPrepare, type PaxosPromise, type PaxosSlot, type PaxosSnapshot, type PaxosSnapshotReply,
} from '../wire/messages.ts';
import type {
  Capabilities, Engine, EngineInit, EngineRole, EngineStatus, HardState, ReadState, Ready, ReplicaProgress, Result, SnapshotData, SnapshotMeta, SoftState,
} from '../engine/contract.ts';
import { allMembers, copyConfig, quorumSize, validateConfig, votingMembers } from '../raft/config.ts';
import { takeOut } from '../engine/eager.ts';
import { commitToPush, wantCommit } from '../engine/commit-push.ts';
import { nextBallot, type Ballot } from './ballot.ts';
import { PAXOS_MSG_OVERHEAD_BYTES, PAXOS_SLOT_OVERHEAD_BYTES, resolvePaxosOptions, type PaxosOptions, type PaxosTicks } from './options.ts';
import { decodeDurableSlot, encodeDurableSlot, SlotLog } from './slots.ts';

export type PaxosInit = EngineInit<PaxosOptions>;
export type PaxosDetail = 'pre-prepare' | 'prepare' | undefined;

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one member (as Raft's Progress). */
interface Progress {
  id: NodeId;
  /** Every slot up to here holds this leader's value (or is chosen) at the member, durably. */
  match: Index;
  next: Index;
  state: ProgressState;
  probeSent: boolean;
  inflight: Index[];
  active: boolean;
  knownCommit: Index;
  /** The highest commit we sent it (Accepts carry ours, heartbeats up to its match); see pushCommit. */
  sentCommit: Index;
  /** It was told an answer it acts on once it has applied this index; 0: none (pushCommit). */
  wantCommit: Index;
  ackedRound: number;
  stall: number;
  matchAtLastRound: Index;
  timeoutNowSent: boolean;
}

interface OutgoingSnapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
  chunks: number;
  sentChunks: number;
  ackedChunks: number;
  stall: number;
  /** Heartbeat rounds without any answer (a non-leader sender gives up after a few). */
  idle: number;
}

/** What one acceptor reported in phase 1 (pages merged). */
interface Report {
  commit: Index;
  last: Index;
  /** The next slot we need from it; the report is complete once nextLo > last. */
  nextLo: Index;
  slots: Map<Index, PaxosSlot>;
}

interface PendingRead { ctx: number; from: NodeId; index: Index; round: number }

export interface PaxosProgressView { id: NodeId; match: Index; next: Index; state: ProgressState; inflight: number }

export interface PaxosStatus extends EngineStatus {
  engine: 'paxos';
  /** The promised ballot (also `term`). */
  promised: Ballot;
  /** This node's ballot as leader or candidate; 0 otherwise. */
  ballot: Ballot;
  /** The leader's start slot (its no-op after phase 1); 0 when not leader. */
  startSlot: Index;
  stableIndex: Index;
  snapshotIndex: Index;
  /** A candidate that cannot finish phase 1 because only witnesses reported some value: the slots it waits for. */
  missingData: Index[];
  transferee: NodeId;
  progress: PaxosProgressView[];
}

/** Why step() ignored a message (status and tests). */
export interface PaxosDropCounters {
  notForMe: number;
  /** Prepares ignored while a live leader is heard (leader stickiness). */
  sticky: number;
  unknownMember: number;
  foreignType: number;
  staleBallot: number;
  wrongRole: number;
}

const PAXOS_TYPES = new Set<MsgType>([
  MsgType.PaxosPrepare, MsgType.PaxosPromise, MsgType.PaxosAccept, MsgType.PaxosAccepted, MsgType.PaxosSnapshot, MsgType.PaxosSnapshotReply,
  MsgType.Heartbeat, MsgType.HeartbeatReply, MsgType.TimeoutNow, MsgType.ReadIndex, MsgType.ReadIndexReply,
]);

const NO_ENTRIES = Object.freeze([]) as unknown as Entry[];
const NO_MESSAGES = Object.freeze([]) as unknown as Message[];
/** What a follower's takeEager() hands out: its heartbeat replies. */
const FOLLOWER_EAGER: ReadonlySet<MsgType> = new Set([MsgType.HeartbeatReply]);
const NO_READ_STATES = Object.freeze([]) as unknown as ReadState[];
const NO_CTXS = Object.freeze([]) as unknown as number[];
const EMPTY = new Uint8Array(0);

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export const PAXOS_CAPS: Readonly<Capabilities> = Object.freeze({ log: true, reads: true, transfer: true, witness: true, lease: false, byzantine: false });

export class PaxosNode implements Engine {
  readonly id: NodeId;
  readonly name = 'paxos' as const;
  readonly caps = PAXOS_CAPS;
  readonly tickMs: number;
  readonly options: Readonly<PaxosOptions>;
  private readonly ticks: PaxosTicks;
  private readonly rng: Rng;

  // Acceptor (durable: promised, log, commit).
  private promised: Ballot = 0;
  private readonly log: SlotLog;
  private commit: Index = 0;
  /** The ballot whose values this node holds from commit + 1 to accEnd (see the header). */
  private accBallot: Ballot = 0;
  private accEnd: Index = 0;

  private applied: Index = 0;
  private stableIndex: Index = 0;
  /** Lowest slot changed since the last Ready was handed out (lastIndex + 1 = none). */
  private unstableFrom: Index = 1;
  /** The last slot handed to storage so far: a Ready writing at or below it overwrites durable votes. */
  private durableLast: Index = 0;
  /** Lowest slot changed after the outstanding Ready was handed out (for advance). */
  private changedSinceReady: Index | undefined;
  private prevHard: HardState;
  private prevSoft: SoftState;

  private config: MemberConfig;
  private voting: NodeId[] = [];
  private quorum = 1;
  private readonly scratch: number[] = [];
  private snapshot: SnapshotData | undefined;
  private installing: SnapshotData | undefined;
  private incoming: { from: NodeId; lastIndex: Index; total: number; parts: Uint8Array[]; received: number; nackedAt?: number } | undefined;
  private outSnaps = new Map<NodeId, OutgoingSnapshot>();

  private role: EngineRole = 'follower';
  private detail: PaxosDetail;
  private leader: NodeId = NO_NODE;
  /** Highest ballot seen in any message (a new ballot goes above it). */
  private maxSeen: Ballot = 0;

  // Candidate.
  private ballot: Ballot = 0;
  private probeVotes = new Map<NodeId, boolean>();
  private probeTransfer = false;
  private reports = new Map<NodeId, Report>();
  private missingData: Index[] = [];

  // Leader.
  private progress = new Map<NodeId, Progress>();
  private startSlot: Index = 0;
  private transferee: NodeId = NO_NODE;
  private transferElapsed = 0;
  private needBcast = false;
  private readRound = 0;
  private readRoundWanted = false;
  private pendingReads: PendingRead[] = [];
  private waitingReads: Array<{ ctx: number; from: NodeId }> = [];

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private failedReads: number[] = [];
  private outstanding: { rd: Ready; committedTo: Index } | undefined;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedTimeout = 0;
  private now = 0;

  readonly dropped: PaxosDropCounters = { notForMe: 0, sticky: 0, unknownMember: 0, foreignType: 0, staleBallot: 0, wrongRole: 0 };

  constructor(init: PaxosInit) {
    if (typeof init !== 'object' || init === null) throw new TypeError('PaxosNode: expected an init object {id, config, rng, ...}');
    if (!isNat(init.id) || init.id < 1 || init.id > 254) throw new RangeError(`PaxosNode: id must be a node id 1..254, got ${String(init.id)}`);
    if (!init.rng || typeof init.rng.int !== 'function') throw new TypeError('PaxosNode: rng must be an Rng (src/rng.ts)');
    this.id = init.id;
    this.rng = init.rng;
    const { opts, ticks } = resolvePaxosOptions(init.options);
    this.options = Object.freeze(opts);
    this.ticks = ticks;
    this.tickMs = opts.tickMs;

    let config = validateConfig(init.config, 'PaxosNode config');
    let snapIndex = 0;
    let snapOrigin = 0;
    if (init.snapshot !== undefined) {
      const s = init.snapshot;
      if (!s || !s.meta || !isNat(s.meta.index) || !isNat(s.meta.term)) throw new TypeError('PaxosNode snapshot: expected {meta: {index, term, config}, data}');
      if (!(s.data instanceof Uint8Array)) throw new TypeError('PaxosNode snapshot.data: expected a Uint8Array');
      config = validateConfig(s.meta.config, 'PaxosNode snapshot.meta.config');
      snapIndex = s.meta.index;
      snapOrigin = s.meta.term;
      this.snapshot = { meta: { index: snapIndex, term: snapOrigin, config: copyConfig(config) }, data: s.data };
    }
    const entries = init.entries ?? [];
    if (!Array.isArray(entries)) throw new TypeError('PaxosNode entries: expected an array of Entry');
    let maxStamp = 0;
    const slots = entries.map((e, k) => {
      const s = decodeDurableSlot(e);
      if (typeof s === 'string') throw new TypeError(`PaxosNode entries[${k}]: ${s}`);
      maxStamp = Math.max(maxStamp, e.term);
      return s;
    });
    this.log = new SlotLog(snapIndex, snapOrigin, slots);
    this.config = config;
    this.voting = votingMembers(config);
    this.quorum = quorumSize(config);

    const hs = init.hardState ?? { term: 0, vote: 0, commit: 0 };
    if (!isNat(hs.term) || !isNat(hs.vote) || !isNat(hs.commit)) throw new TypeError('PaxosNode hardState: expected {term, vote, commit} of non-negative integers');
    if (hs.commit > this.log.lastIndex) {
      throw new RangeError(`PaxosNode hardState.commit ${hs.commit} is beyond the last durable slot ${this.log.lastIndex}: chosen values are missing from storage`);
    }
    // The promise is the larger of the stored one and every write stamp: a torn Ready
    // may have kept its entries but lost its hard state.
    this.promised = Math.max(hs.term, maxStamp);
    this.maxSeen = this.promised;
    this.commit = Math.max(hs.commit, snapIndex);
    this.applied = init.applied ?? snapIndex;
    if (!isNat(this.applied) || this.applied < snapIndex || this.applied > this.commit) {
      throw new RangeError(`PaxosNode applied ${String(init.applied)} must be within [snapshot index ${snapIndex}, commit ${this.commit}]`);
    }
    this.accEnd = this.commit;
    this.stableIndex = this.log.lastIndex;
    this.unstableFrom = this.log.lastIndex + 1;
    this.durableLast = this.log.lastIndex;
    this.prevHard = { term: this.promised, vote: 0, commit: this.commit };
    this.becomeFollower(NO_NODE);
    this.prevSoft = this.softState();
  }

  // -------------------------------------------------------------------------
  // Inspection

  status(): PaxosStatus {
    return {
      id: this.id, engine: 'paxos', role: this.role, detail: this.detail, term: this.promised, leader: this.leader,
      commitIndex: this.commit, appliedIndex: this.applied, lastIndex: this.log.lastIndex, isWitness: this.isWitness(),
      config: copyConfig(this.config), promised: this.promised, ballot: this.role === 'follower' ? 0 : this.ballot, startSlot: this.startSlot,
      stableIndex: this.stableIndex, snapshotIndex: this.log.snapIndex, missingData: [...this.missingData], transferee: this.transferee,
      progress: [...this.progress.values()].map((p) => ({ id: p.id, match: p.match, next: p.next, state: p.state, inflight: p.inflight.length })),
    };
  }

  get isLeader(): boolean {
    return this.role === 'leader';
  }

  get commitIndex(): Index {
    return this.commit;
  }

  get appliedIndex(): Index {
    return this.applied;
  }

  get leaderId(): NodeId {
    return this.leader;
  }

  get currentTerm(): Term {
    return this.promised;
  }

  /** The slot value at `i` as this node holds it (ballot and origin included); undefined if compacted or absent. */
  slotAt(i: Index): PaxosSlot | undefined {
    return this.log.get(i);
  }

  /** The entry at `i` as the runtime would apply it: term = the value's origin (what propose() returned). */
  entryAt(i: Index): Entry | undefined {
    const s = this.log.get(i);
    return s && { index: s.index, term: s.origin, type: s.type, data: s.data };
  }

  latestSnapshot(): SnapshotData | undefined {
    return this.snapshot;
  }

  /** See the header: the start slot, once committed. */
  leaderToken(): number {
    return this.role === 'leader' && this.startSlot > 0 && this.commit >= this.startSlot ? this.startSlot : 0;
  }

  // -------------------------------------------------------------------------
  // Inputs

  tick(): void {
    this.now++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
    this.tickSnapshots();
  }

  campaign(): Result<{ term: Term }> {
    if (!this.promotable()) return { ok: false, code: 'not-voter', reason: `node ${this.id} is not a voter (witness, learner or not a member) and never leads` };
    if (this.role === 'leader') return { ok: true, term: this.promised };
    this.startCampaign(false);
    return { ok: true, term: this.promised };
  }

  /**
   * The link reported node `id`'s connection gone. If it is the leader this node
   * follows, the node forgets it, which ends leader stickiness: it promises to another
   * candidate at once instead of ignoring Prepares for up to electionTimeoutMin. Safe
   * even if the report is false: stickiness is a liveness measure, and this engine has
   * no lease that a promise could break. A false report costs at most one needless
   * election (the live leader sees the higher ballot and steps down; nothing chosen is
   * lost). It does not start a campaign: the runtime decides (`campaign()`).
   */
  leaderGone(id: NodeId): Result<{ forgot: boolean }> {
    if (!Number.isInteger(id) || id < 1 || id > 254) return { ok: false, code: 'bad-request', reason: `leaderGone: id must be a node id 1..254, got ${String(id)}` };
    if (id === this.id || this.role === 'leader' || this.leader !== id) return { ok: true, forgot: false };
    this.leader = NO_NODE;
    return { ok: true, forgot: true };
  }

  propose(data: Uint8Array): Result {
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: `propose: data must be a Uint8Array, got ${typeof data}` };
    if (data.length > this.ticks.maxEntryBytes) {
      return { ok: false, code: 'too-large', reason: `propose: ${data.length} bytes exceed the ${this.ticks.maxEntryBytes}-byte limit of one slot (maxMsgBytes ${this.options.maxMsgBytes})` };
    }
    if (this.role !== 'leader') return { ok: false, code: this.leader === NO_NODE ? 'no-leader' : 'not-leader', reason: `node ${this.id} is not the leader (leader: ${this.leader || 'unknown'})` };
    if (this.transferee !== NO_NODE) return { ok: false, code: 'transfer-in-progress', reason: `leadership is being transferred to ${this.transferee}` };
    const index = this.appendOwn(EntryType.Normal, data);
    return { ok: true, index, term: this.ballot };
  }

  transferLeadership(to: NodeId): Result<{ term: Term }> {
    if (this.role !== 'leader') return { ok: false, code: 'not-leader', reason: `node ${this.id} is not the leader (leader: ${this.leader || 'unknown'})` };
    if (to === this.id) return { ok: true, term: this.promised };
    if (!this.config.voters.includes(to)) return { ok: false, code: 'not-voter', reason: `transfer target ${to} is not a voter (witnesses and learners never lead)` };
    if (this.transferee === to) return { ok: true, term: this.promised };
    const pr = this.progress.get(to)!;
    this.transferee = to;
    this.transferElapsed = 0;
    pr.timeoutNowSent = false;
    if (pr.match === this.log.lastIndex) this.sendTimeoutNow(pr);
    else this.sendAccepts(pr);
    return { ok: true, term: this.promised };
  }

  /**
   * On a leader, every other member's match: the slots up to there hold this ballot's
   * values (or are chosen) at that member, durably (its cumulative Accepted). The
   * runtime hands leadership to the most caught-up voter before a planned stop
   * (daemon/runtime/hand-over.ts); elsewhere an empty list.
   */
  replicaProgress(): ReplicaProgress[] {
    if (this.role !== 'leader') return [];
    return [...this.progress.values()].map((p) => ({ id: p.id, match: p.match, state: p.state }));
  }

  readIndex(ctx: number): Result<{ term: Term }> {
    if (!Number.isInteger(ctx) || ctx < 1 || ctx > 0xffffffff) return { ok: false, code: 'bad-request', reason: `readIndex: ctx must be an integer 1..2^32-1, got ${String(ctx)}` };
    if (this.role !== 'leader') {
      if (this.leader === NO_NODE) return { ok: false, code: 'no-leader', reason: 'no leader known' };
      this.send({ type: MsgType.ReadIndex, from: this.id, to: this.leader, term: this.promised, ctx });
      return { ok: true, term: this.promised };
    }
    this.leaderRead(ctx, this.id);
    return { ok: true, term: this.promised };
  }

  compact(index: Index, data: Uint8Array): Result<{ meta: SnapshotMeta }> {
    if (!isNat(index)) return { ok: false, code: 'bad-request', reason: `compact: index must be a non-negative integer, got ${String(index)}` };
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: 'compact: data must be a Uint8Array' };
    if (index > this.applied) return { ok: false, code: 'bad-request', reason: `compact: index ${index} is beyond the applied index ${this.applied}` };
    if (index <= this.log.snapIndex) return { ok: false, code: 'bad-request', reason: `compact: index ${index} is not after the current snapshot ${this.log.snapIndex}` };
    const meta: SnapshotMeta = { index, term: this.log.origin(index)!, config: copyConfig(this.config) };
    this.log.compactTo(index);
    this.snapshot = { meta, data: this.isWitness() ? EMPTY : data };
    return { ok: true, meta };
  }

  step(m: Message): void {
    if (typeof m !== 'object' || m === null) throw new TypeError(`paxos step: expected a Message object, got ${String(m)}`);
    if (!isNat(m.term) || !isNat(m.from) || !isNat(m.to)) throw new TypeError(`paxos step: term, from and to must be non-negative integers (type ${MsgType[m.type]})`);
    if (!PAXOS_TYPES.has(m.type)) {
      this.dropped.foreignType++; // a Raft, bully or client message: a peer runs another engine
      return;
    }
    if (m.to !== this.id || m.from === this.id) {
      this.dropped.notForMe++;
      return;
    }
    if (!allMembers(this.config).includes(m.from)) {
      this.dropped.unknownMember++;
      return;
    }
    switch (m.type) {
      case MsgType.PaxosPrepare:
        return this.onPrepare(m);
      case MsgType.PaxosPromise:
        return this.onPromise(m);
      case MsgType.PaxosAccept:
        return this.onAccept(m);
      case MsgType.PaxosAccepted:
        return this.onAccepted(m);
      case MsgType.Heartbeat:
        return this.onHeartbeat(m);
      case MsgType.HeartbeatReply:
        return this.onHeartbeatReply(m);
      case MsgType.PaxosSnapshot:
        return this.onSnapshot(m);
      case MsgType.PaxosSnapshotReply:
        return this.onSnapshotReply(m);
      case MsgType.TimeoutNow:
        if (m.term >= this.promised && m.from === this.leader && this.role !== 'leader' && this.promotable()) return this.startCampaign(true);
        this.dropped.wrongRole++;
        return;
      case MsgType.ReadIndex:
        if (this.role === 'leader') return this.leaderRead(m.ctx, m.from);
        return this.send({ type: MsgType.ReadIndexReply, from: this.id, to: m.from, term: this.promised, ctx: m.ctx, index: 0, ok: false });
      case MsgType.ReadIndexReply:
        if (m.ok) this.readStates.push({ ctx: m.ctx, index: m.index });
        else this.failedReads.push(m.ctx);
        return;
      default:
        this.dropped.foreignType++;
    }
  }

  // -------------------------------------------------------------------------
  // Acceptor: phase 1b

  private onPrepare(m: PaxosPrepare): void {
    const b = m.term;
    if (!this.voting.includes(this.id)) {
      this.dropped.wrongRole++; // learners are not acceptors
      return;
    }
    // Leader stickiness: while we hear a live leader (or are one) we ignore others'
    // Prepares, unless the leader itself asked for the transfer. Liveness only.
    if (!m.transfer && this.inLease() && m.from !== this.leader) {
      this.dropped.sticky++;
      return;
    }
    const reply = (ok: boolean, term: Ballot, slots: PaxosSlot[], first: Index) =>
      this.send({
        type: MsgType.PaxosPromise, from: this.id, to: m.from, term, ok, probe: m.probe,
        commit: this.commit, last: this.log.lastIndex, snap: this.log.snapIndex, first, slots,
      });
    const first = Math.max(1, m.lo);
    if (m.probe) {
      // Pre-prepare: would we promise b? Nothing changes either way.
      const grant = b > this.promised;
      return reply(grant, grant ? b : this.promised, [], first);
    }
    if (b < this.promised) return reply(false, this.promised, [], first);
    if (first <= this.log.snapIndex) {
      // The candidate lacks slots we have compacted: we could not report our votes
      // there. No promise; a data node sends it its snapshot so it can catch up (a
      // witness has no data to send: the candidate must catch up from a data node).
      reply(false, this.promised, [], first);
      if (!this.isWitness()) this.startSnapshotTo(m.from);
      return;
    }
    if (b > this.promised) {
      this.promised = b;
      if (this.role !== 'follower') this.becomeFollower(NO_NODE);
      else this.leader = NO_NODE;
      this.electionElapsed = 0;
    }
    // b === promised: a continuation (next page) or a duplicate; answered the same way.
    reply(true, b, this.page(first), first);
  }

  /** Our values from `lo` on, as many as fit one message. */
  private page(lo: Index): PaxosSlot[] {
    const out: PaxosSlot[] = [];
    let budget = this.options.maxMsgBytes - PAXOS_MSG_OVERHEAD_BYTES;
    for (let i = lo; i <= this.log.lastIndex && out.length < this.options.maxEntriesPerMsg; i++) {
      const s = this.log.get(i)!;
      const size = s.data.length + PAXOS_SLOT_OVERHEAD_BYTES;
      if (size > budget && out.length > 0) break;
      budget -= size;
      out.push(s);
    }
    return out;
  }

  // -------------------------------------------------------------------------
  // Acceptor: phase 2b and commit learning

  /** Makes accEnd describe `b`'s values: from commit on, the slots that hold ballot b. */
  private trackBallot(b: Ballot): void {
    if (this.accBallot !== b) {
      this.accBallot = b;
      this.accEnd = this.commit;
    }
    if (this.accEnd < this.commit) this.accEnd = this.commit;
    while (this.accEnd < this.log.lastIndex && this.log.get(this.accEnd + 1)!.ballot === b) this.accEnd++;
  }

  private onAccept(m: PaxosAccept): void {
    const b = m.term;
    if (b < this.promised) {
      this.dropped.staleBallot++;
      // Tells a deposed leader about the higher promise.
      return this.send({ type: MsgType.PaxosAccepted, from: this.id, to: m.from, term: this.promised, ok: false, index: 0 });
    }
    this.followLeader(b, m.from);
    this.trackBallot(b);
    const last = m.first + m.slots.length - 1;
    const from = Math.max(m.first, this.commit + 1);
    if (from > this.accEnd + 1) {
      // A gap: we do not hold b's values right before `first`. Say where we stand.
      return this.send({ type: MsgType.PaxosAccepted, from: this.id, to: m.from, term: b, ok: false, index: this.accEnd });
    }
    const strip = this.isWitness();
    for (let i = from; i <= last; i++) {
      const s = m.slots[i - m.first]!;
      if (s.ballot !== b || s.index !== i) throw new TypeError(`paxos step: Accept from ${m.from} carries slot ${s.index} at ballot ${s.ballot}, expected slot ${i} at ${b}`);
      const cur = this.log.get(i);
      if (cur && cur.ballot === b && cur.origin === s.origin) continue; // already held (a resend)
      this.setSlot(strip && s.type === EntryType.Normal && s.data.length > 0 ? { ...s, data: EMPTY } : s);
    }
    this.trackBallot(b);
    const c = Math.min(m.commit, this.accEnd);
    if (c > this.commit) this.commit = c;
    this.send({ type: MsgType.PaxosAccepted, from: this.id, to: m.from, term: b, ok: true, index: this.accEnd });
  }

  private onHeartbeat(m: Heartbeat): void {
    if (m.term < this.promised) {
      this.dropped.staleBallot++;
      return this.send({ type: MsgType.HeartbeatReply, from: this.id, to: m.from, term: this.promised, ctx: 0 });
    }
    this.followLeader(m.term, m.from);
    this.trackBallot(m.term);
    if (m.commit !== undefined) {
      const c = Math.min(m.commit, this.accEnd);
      if (c > this.commit) this.commit = c;
    }
    const r: HeartbeatReply = { type: MsgType.HeartbeatReply, from: this.id, to: m.from, term: m.term, ctx: m.ctx };
    if (m.commit !== undefined) r.commit = this.commit;
    this.send(r);
  }

  /** A message from the leader of ballot b ≥ our promise: we follow it. */
  private followLeader(b: Ballot, from: NodeId): void {
    if (b > this.promised) this.promised = b;
    if (this.role !== 'follower' || this.leader !== from) this.becomeFollower(from);
    this.electionElapsed = 0;
  }

  /** Changes one slot; keeps durability and unsent acknowledgements honest. */
  private setSlot(s: PaxosSlot): void {
    const old = this.log.get(s.index);
    this.log.set(s);
    if (s.index < this.unstableFrom) this.unstableFrom = s.index;
    if (this.outstanding && (this.changedSinceReady === undefined || s.index < this.changedSinceReady)) this.changedSinceReady = s.index;
    if (s.index <= this.stableIndex) this.stableIndex = s.index - 1;
    if (old && old.ballot !== s.ballot) {
      // An Accepted not yet sent must not claim a vote we just replaced (it would go
      // out after the Ready that holds the replacement, claiming a vote never durable).
      this.msgs = this.msgs.filter((x) => !(x.type === MsgType.PaxosAccepted && x.ok && x.term === old.ballot && x.index >= s.index));
    }
  }

  // -------------------------------------------------------------------------
  // Snapshots (any node sends; see the header)

  private startSnapshotTo(to: NodeId): void {
    const s = this.snapshot;
    if (!s) throw new Error(`paxos: node ${to} needs slots before ${this.log.firstIndex} but this node holds no snapshot`);
    const cur = this.outSnaps.get(to);
    if (cur && cur.meta.index === s.meta.index) return; // already sending it
    const data = this.config.witnesses.includes(to) ? EMPTY : s.data;
    const chunks = Math.max(1, Math.ceil(data.length / this.ticks.chunkBytes));
    this.outSnaps.set(to, { meta: s.meta, data, chunks, sentChunks: 0, ackedChunks: 0, stall: 0, idle: 0 });
    this.sendSnapshotChunks(to);
  }

  private sendSnapshotChunks(to: NodeId): void {
    const s = this.outSnaps.get(to);
    if (!s) return;
    const cb = this.ticks.chunkBytes;
    while (s.sentChunks < s.chunks && s.sentChunks - s.ackedChunks < this.options.maxInflight) {
      const off = s.sentChunks * cb;
      const end = Math.min(off + cb, s.data.length);
      const m: PaxosSnapshot = {
        type: MsgType.PaxosSnapshot, from: this.id, to, term: Math.max(this.promised, s.meta.term), lastIndex: s.meta.index, lastTerm: s.meta.term,
        offset: off, total: s.data.length, data: s.data.subarray(off, end), done: s.sentChunks === s.chunks - 1, config: copyConfig(s.meta.config),
      };
      this.send(m);
      s.sentChunks++;
    }
  }

  /** Once per heartbeat period: resend lost chunks; a non-leader sender gives up on a silent receiver. */
  private tickSnapshots(): void {
    if (this.outSnaps.size === 0 || this.now % this.ticks.heartbeat !== 0) return;
    for (const [to, s] of this.outSnaps) {
      if (s.sentChunks > s.ackedChunks && ++s.stall >= 2) {
        s.stall = 0;
        s.sentChunks = s.ackedChunks;
        this.sendSnapshotChunks(to);
      }
      if (this.role !== 'leader' && ++s.idle > 20) this.outSnaps.delete(to);
    }
  }

  private onSnapshotReply(m: PaxosSnapshotReply): void {
    const s = this.outSnaps.get(m.from);
    if (!s || m.lastIndex !== s.meta.index) return;
    const cb = this.ticks.chunkBytes;
    s.stall = 0;
    s.idle = 0;
    if (!m.ok) {
      s.ackedChunks = Math.min(Math.floor(m.next / cb), s.chunks - 1);
      s.sentChunks = s.ackedChunks;
    } else if (m.next === s.data.length) {
      this.outSnaps.delete(m.from);
      const pr = this.progress.get(m.from);
      if (this.role === 'leader' && pr && pr.state === 'snapshot') {
        // Installed and durable (the reply left after the receiver's Ready).
        pr.match = Math.max(pr.match, Math.min(s.meta.index, this.log.lastIndex));
        this.becomeReplicate(pr);
        this.maybeCommit();
        if (this.role === 'leader') this.sendAccepts(pr);
      }
      return;
    } else {
      s.ackedChunks = Math.max(s.ackedChunks, Math.floor(m.next / cb));
    }
    this.sendSnapshotChunks(m.from);
  }

  private onSnapshot(m: PaxosSnapshot): void {
    const reply = (next: number, ok: boolean) =>
      this.send({ type: MsgType.PaxosSnapshotReply, from: this.id, to: m.from, term: this.promised, lastIndex: m.lastIndex, next, ok });
    if (this.config.witnesses.includes(m.from) && !this.isWitness()) {
      // A witness holds no command data: its snapshot cannot restore a data node.
      this.dropped.wrongRole++;
      return reply(0, false);
    }
    if (m.lastIndex <= this.commit || this.role === 'leader') {
      // We have it all (a leader holds every chosen slot a snapshot could cover).
      this.incoming = undefined;
      return reply(m.total, true);
    }
    let inc = this.incoming;
    if (m.offset === 0 && (!inc || inc.lastIndex !== m.lastIndex || inc.from !== m.from)) {
      inc = this.incoming = { from: m.from, lastIndex: m.lastIndex, total: m.total, parts: [], received: 0 };
    }
    if (!inc || inc.lastIndex !== m.lastIndex || inc.from !== m.from || inc.total !== m.total) return reply(0, false);
    if (m.offset < inc.received) return reply(inc.received, true);
    if (m.offset > inc.received) {
      if (inc.nackedAt === inc.received) return;
      inc.nackedAt = inc.received;
      return reply(inc.received, false);
    }
    inc.parts.push(m.data.slice());
    inc.received += m.data.length;
    if (!m.done) return reply(inc.received, true);
    if (inc.received !== inc.total) return reply(inc.received, false);
    const data = new Uint8Array(inc.total);
    let p = 0;
    for (const part of inc.parts) {
      data.set(part, p);
      p += part.length;
    }
    this.incoming = undefined;
    this.installSnapshot({ index: m.lastIndex, term: m.lastTerm, config: validateConfig(m.config, `snapshot config from ${m.from}`) }, data);
    reply(inc.total, true);
  }

  /**
   * Installs a snapshot of the chosen prefix up to meta.index: slots up to there go,
   * our votes after it stay (an acceptor never drops a vote) and are written again
   * after the snapshot in the same Ready — which the runtime persists all or nothing.
   */
  private installSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    if (this.role === 'candidate') this.becomeFollower(NO_NODE); // phase 1 started below this snapshot: start again later
    const config = meta.config;
    // The snapshot's ballot (that of its last chosen slot) may be above our promise: we
    // learned those values without having been asked to promise that ballot (a node cut
    // off through the Prepare). Storage takes no ballot above the hard state's, and on a
    // restart the promise is at least every ballot written (the constructor): so the
    // promise rises to it in the same Ready. Raising a promise is always safe in Paxos (an
    // acceptor may refuse any lower ballot); the leader that sent the values holds a
    // ballot at least this high. Before, storage refused that Ready and the node stopped
    // (a fatal exit on a board, restarted; in the simulator a failed seed since a95b3cc).
    if (meta.term > this.promised) this.promised = meta.term;
    this.log.installSnapshot(meta.index, meta.term);
    this.commit = meta.index;
    this.accEnd = Math.max(this.accEnd, meta.index);
    this.trackBallot(this.accBallot);
    this.stableIndex = Math.min(this.stableIndex, meta.index);
    this.unstableFrom = meta.index + 1; // everything after is re-emitted behind the snapshot
    if (this.outstanding) this.changedSinceReady = Math.min(this.changedSinceReady ?? meta.index + 1, meta.index + 1);
    this.config = config;
    this.voting = votingMembers(config);
    this.quorum = quorumSize(config);
    const snap: SnapshotData = { meta: { index: meta.index, term: meta.term, config: copyConfig(config) }, data: this.isWitness() ? EMPTY : data };
    this.snapshot = snap;
    this.installing = snap;
  }

  // -------------------------------------------------------------------------
  // Candidate: pre-prepare and phase 1a

  private startCampaign(transfer: boolean): void {
    if (this.options.prePrepare && !transfer) {
      this.role = 'candidate';
      this.detail = 'pre-prepare';
      this.leader = NO_NODE;
      this.ballot = nextBallot(Math.max(this.promised, this.maxSeen), this.id);
      this.resetTimers();
      this.probeVotes.clear();
      this.probeVotes.set(this.id, true);
      this.probeTransfer = false;
      if (this.tallyProbes() === 'won') return this.startPrepare(false);
      for (const to of this.voting) {
        if (to !== this.id) this.send({ type: MsgType.PaxosPrepare, from: this.id, to, term: this.ballot, lo: this.commit + 1, probe: true, transfer: false });
      }
      return;
    }
    this.startPrepare(transfer);
  }

  private tallyProbes(): 'won' | 'lost' | 'pending' {
    let yes = 0;
    let no = 0;
    for (const id of this.voting) {
      const v = this.probeVotes.get(id);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    if (yes >= this.quorum) return 'won';
    if (no > this.voting.length - this.quorum) return 'lost';
    return 'pending';
  }

  private startPrepare(transfer: boolean): void {
    this.role = 'candidate';
    this.detail = 'prepare';
    this.leader = NO_NODE;
    this.ballot = nextBallot(Math.max(this.promised, this.maxSeen, this.ballot), this.id);
    this.maxSeen = this.ballot;
    this.promised = this.ballot; // our own promise: durable before any Prepare leaves
    this.resetTimers();
    this.reports.clear();
    this.missingData = [];
    const lo = this.commit + 1;
    for (const to of this.voting) {
      if (to !== this.id) this.send({ type: MsgType.PaxosPrepare, from: this.id, to, term: this.ballot, lo, probe: false, transfer });
    }
    this.tryFinishPhase1();
  }

  private onPromise(m: PaxosPromise): void {
    if (m.term > this.maxSeen) this.maxSeen = m.term;
    if (this.role !== 'candidate' || !this.voting.includes(m.from)) {
      this.dropped.wrongRole++;
      return;
    }
    if (m.probe) {
      if (this.detail !== 'pre-prepare' || (m.ok && m.term !== this.ballot)) return;
      if (!this.probeVotes.has(m.from)) this.probeVotes.set(m.from, m.ok);
      const r = this.tallyProbes();
      if (r === 'won') this.startPrepare(this.probeTransfer);
      else if (r === 'lost') this.becomeFollower(NO_NODE);
      return;
    }
    if (this.detail !== 'prepare') return;
    if (!m.ok) {
      // A higher promise: give up this ballot (a later campaign goes above it). A
      // refusal because we are behind its snapshot only means this acceptor does not
      // count; its snapshot follows, and installing it ends this campaign.
      if (m.term > this.ballot) this.becomeFollower(NO_NODE);
      return;
    }
    if (m.term !== this.ballot) return; // an answer to an earlier ballot
    let r = this.reports.get(m.from);
    if (!r) {
      r = { commit: m.commit, last: m.last, nextLo: this.commit + 1, slots: new Map() };
      this.reports.set(m.from, r);
    }
    if (m.first !== r.nextLo) return; // a duplicate or stale page
    r.commit = Math.max(r.commit, m.commit);
    r.last = m.last;
    for (const s of m.slots) r.slots.set(s.index, s);
    r.nextLo = m.first + m.slots.length;
    if (r.nextLo <= r.last) {
      // More to come: ask for the next page (the acceptor answers the same ballot again).
      this.send({ type: MsgType.PaxosPrepare, from: this.id, to: m.from, term: this.ballot, lo: r.nextLo, probe: false, transfer: false });
      return;
    }
    this.tryFinishPhase1();
  }

  /** Phase 2a preparation: with complete reports from a quorum, pick every open slot's value and lead. */
  private tryFinishPhase1(): void {
    if (this.role !== 'candidate' || this.detail !== 'prepare') return;
    const complete: Array<[NodeId, Report]> = [];
    let count = this.voting.includes(this.id) ? 1 : 0;
    for (const [id, r] of this.reports) {
      if (r.nextLo > r.last && this.voting.includes(id)) {
        complete.push([id, r]);
        count++;
      }
    }
    if (count < this.quorum) return;
    const lo = this.commit + 1;
    let n = this.log.lastIndex;
    let newCommit = this.commit;
    for (const [, r] of complete) {
      n = Math.max(n, r.last);
      newCommit = Math.max(newCommit, r.commit);
    }
    const skip = this.options.plantedBug === 'skip-reproposal';
    const picks: PaxosSlot[] = [];
    const missing: Index[] = [];
    for (let s = lo; s <= n; s++) {
      let best = this.log.get(s);
      let bestFrom = this.id;
      if (!skip) {
        for (const [id, r] of complete) {
          const v = r.slots.get(s);
          if (!v) continue;
          if (s <= r.commit) {
            best = v; // known chosen there: take it as it is
            bestFrom = id;
            break;
          }
          if (!best || v.ballot > best.ballot) {
            best = v;
            bestFrom = id;
          }
        }
      }
      if (!best) {
        picks.push({ index: s, ballot: this.ballot, origin: this.ballot, type: EntryType.Noop, data: EMPTY });
        continue;
      }
      const data = this.dataFor(best, bestFrom);
      if (data === undefined) {
        missing.push(s);
        continue;
      }
      picks.push({ index: s, ballot: this.ballot, origin: best.origin, type: best.type, data });
    }
    if (missing.length > 0) {
      // Only witnesses reported these values: wait for a data node's report (every
      // voter was asked; late answers still count) or for the next campaign.
      this.missingData = missing;
      return;
    }
    this.missingData = [];
    for (const p of picks) {
      const cur = this.log.get(p.index);
      if (!cur || cur.ballot !== p.ballot || cur.origin !== p.origin) this.setSlot(p);
    }
    if (newCommit > this.commit) this.commit = newCommit;
    this.becomeLeader(n);
  }

  /**
   * The command bytes of `v`, reported by `from`. A witness reports Normal values
   * without data; then any data node's copy of the same (slot, origin) — one origin
   * names one value — will do: ours, or any report, complete or not.
   */
  private dataFor(v: PaxosSlot, from: NodeId): Uint8Array | undefined {
    if (v.type !== EntryType.Normal || !this.config.witnesses.includes(from)) return v.data;
    const own = this.log.get(v.index);
    if (own && own.origin === v.origin) return own.data; // a candidate is never a witness
    for (const [id, r] of this.reports) {
      if (this.config.witnesses.includes(id)) continue;
      const x = r.slots.get(v.index);
      if (x && x.origin === v.origin) return x.data;
    }
    return undefined;
  }

  private becomeLeader(n: Index): void {
    this.role = 'leader';
    this.detail = undefined;
    this.leader = this.id;
    this.resetTimers();
    this.reports.clear();
    this.progress.clear();
    this.transferee = NO_NODE;
    this.readRound = 0;
    for (const id of allMembers(this.config)) if (id !== this.id) this.progress.set(id, this.newProgress(id));
    this.trackBallot(this.ballot);
    // PMS §3: the new leader's own no-op; committing it commits everything before it.
    this.startSlot = n + 1;
    this.setSlot({ index: this.startSlot, ballot: this.ballot, origin: this.ballot, type: EntryType.Noop, data: EMPTY });
    this.trackBallot(this.ballot);
    this.needBcast = true;
  }

  // -------------------------------------------------------------------------
  // Leader: phase 2a

  private newProgress(id: NodeId): Progress {
    return {
      id, match: 0, next: this.commit + 1, state: 'probe', probeSent: false, inflight: [], active: false,
      knownCommit: 0, sentCommit: 0, wantCommit: 0, ackedRound: 0, stall: 0, matchAtLastRound: 0, timeoutNowSent: false,
    };
  }

  private appendOwn(type: EntryType, data: Uint8Array): Index {
    const index = this.log.lastIndex + 1;
    this.setSlot({ index, ballot: this.ballot, origin: this.ballot, type, data });
    this.accEnd = index;
    this.needBcast = true;
    return index;
  }

  private sendAccepts(pr: Progress): void {
    for (let i = 0; i <= this.options.maxInflight; i++) if (!this.maybeSendAccept(pr)) break;
  }

  private maybeSendAccept(pr: Progress): boolean {
    if (pr.state === 'snapshot') {
      this.sendSnapshotChunks(pr.id);
      return false;
    }
    if (pr.state === 'probe' && pr.probeSent) return false;
    if (pr.state === 'replicate' && pr.inflight.length >= this.options.maxInflight) return false;
    if (pr.next <= this.log.snapIndex) {
      pr.state = 'snapshot';
      pr.inflight = [];
      pr.stall = 0;
      this.startSnapshotTo(pr.id);
      return false;
    }
    const witness = this.config.witnesses.includes(pr.id);
    const slots: PaxosSlot[] = [];
    let budget = this.options.maxMsgBytes - PAXOS_MSG_OVERHEAD_BYTES;
    for (let i = pr.next; i <= this.log.lastIndex && slots.length < this.options.maxEntriesPerMsg; i++) {
      let s = this.log.get(i)!;
      // Slots up to our commit may still hold the ballot that chose them: proposing a
      // chosen value again at our ballot is what phase 2 of our ballot would do anyway.
      if (s.ballot !== this.ballot) s = { ...s, ballot: this.ballot };
      if (witness && s.type === EntryType.Normal && s.data.length > 0) s = { ...s, data: EMPTY };
      const size = s.data.length + PAXOS_SLOT_OVERHEAD_BYTES;
      if (size > budget && slots.length > 0) break;
      budget -= size;
      slots.push(s);
    }
    if (slots.length === 0 && pr.state === 'replicate') return false;
    this.send({ type: MsgType.PaxosAccept, from: this.id, to: pr.id, term: this.ballot, first: pr.next, commit: this.commit, slots });
    const carried = Math.min(this.commit, slots.length > 0 ? slots[slots.length - 1]!.index : pr.next - 1);
    if (carried > pr.sentCommit) pr.sentCommit = carried;
    if (pr.state === 'probe') {
      pr.probeSent = true;
      return false;
    }
    const last = slots[slots.length - 1]!.index;
    pr.next = last + 1;
    pr.inflight.push(last);
    return true;
  }

  private becomeProbe(pr: Progress, next: Index): void {
    pr.state = 'probe';
    pr.next = Math.max(pr.match + 1, next);
    pr.probeSent = false;
    pr.inflight = [];
    pr.stall = 0;
    this.outSnaps.delete(pr.id);
  }

  private becomeReplicate(pr: Progress): void {
    pr.state = 'replicate';
    pr.next = pr.match + 1;
    pr.inflight = [];
    pr.stall = 0;
  }

  private onAccepted(m: PaxosAccepted): void {
    if (this.role !== 'leader') {
      this.dropped.wrongRole++;
      return;
    }
    if (m.term > this.ballot) {
      // An acceptor promised a higher ballot: some candidate is running phase 1.
      if (m.term > this.maxSeen) this.maxSeen = m.term;
      this.becomeFollower(NO_NODE);
      return;
    }
    const pr = this.progress.get(m.from);
    if (!pr || m.term !== this.ballot) {
      this.dropped.staleBallot++;
      return;
    }
    pr.active = true;
    if (!m.ok) {
      if (m.index < pr.match || pr.state === 'snapshot') return; // stale
      this.becomeProbe(pr, m.index + 1);
      this.sendAccepts(pr);
      return;
    }
    const inf = pr.inflight;
    let kept = 0;
    for (let r = 0; r < inf.length; r++) if (inf[r]! > m.index) inf[kept++] = inf[r]!;
    inf.length = kept;
    if (m.index > pr.match) {
      pr.match = m.index;
      if (pr.next <= pr.match) pr.next = pr.match + 1;
      if (pr.state === 'probe') this.becomeReplicate(pr);
      this.maybeCommit();
      if (this.role !== 'leader') return;
    } else if (pr.state === 'probe') {
      this.becomeReplicate(pr);
    }
    if (pr.id === this.transferee && pr.match === this.log.lastIndex) this.sendTimeoutNow(pr);
    this.sendAccepts(pr);
    if (pr.wantCommit > 0) this.pushCommit(pr);
  }

  /**
   * Peer `to` is about to be told, by the runtime, the answer to a write it forwarded,
   * and answers its client once it has applied that write itself. A replica learns the
   * commit from our Accepts and heartbeats, the next of which may be a heartbeat
   * interval away: it gets it now (src/engine/commit-push.ts).
   */
  notifyCommit(to: NodeId, index: Index): void {
    if (this.role !== 'leader' || index > this.commit) return;
    const pr = this.progress.get(to);
    if (pr && wantCommit(pr, index)) this.pushCommit(pr);
  }

  /** A heartbeat (ctx 0: no read round) carrying the commit `pr` waits for, up to its match as every heartbeat's; or at its PaxosAccepted. */
  private pushCommit(pr: Progress): void {
    const c = commitToPush(pr, Math.max(pr.sentCommit, pr.knownCommit), Math.min(pr.match, this.commit));
    if (c === 0) return;
    pr.sentCommit = c;
    this.send({ type: MsgType.Heartbeat, from: this.id, to: pr.id, term: this.ballot, commit: c, ctx: 0 });
  }

  /** A slot is chosen once a quorum holds this ballot's value there (every value we hold is at our ballot). */
  private maybeCommit(): void {
    if (this.role !== 'leader') return;
    const matches = this.scratch;
    matches.length = 0;
    const last = this.log.lastIndex;
    for (const id of this.voting) {
      if (id === this.id) matches.push(this.stableIndex); // our own vote counts once durable
      else matches.push(Math.min(this.progress.get(id)?.match ?? 0, last));
    }
    const mci = kthLargest(matches, this.quorum, 0);
    if (mci > this.commit) {
      this.commit = mci;
      this.onCommitAdvanced();
    }
  }

  private onCommitAdvanced(): void {
    if (this.waitingReads.length > 0 && this.commit >= this.startSlot) {
      const w = this.waitingReads;
      this.waitingReads = [];
      for (const r of w) this.leaderRead(r.ctx, r.from);
    }
  }

  private onHeartbeatReply(m: HeartbeatReply): void {
    if (m.term > this.promised && this.role !== 'follower') {
      if (m.term > this.maxSeen) this.maxSeen = m.term;
      this.becomeFollower(NO_NODE);
      return;
    }
    if (this.role !== 'leader' || m.term !== this.ballot) {
      this.dropped.wrongRole++;
      return;
    }
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.active = true;
    if (m.commit !== undefined) {
      if (m.commit > pr.knownCommit) pr.knownCommit = m.commit;
      // Lower than we sent (it restarted, or the heartbeat was lost on its way): tell it again.
      if (m.commit < pr.sentCommit) pr.sentCommit = m.commit;
    }
    if (m.ctx > pr.ackedRound) {
      pr.ackedRound = m.ctx;
      this.checkReads();
    }
    if (pr.match < this.log.lastIndex || pr.state === 'snapshot') this.sendAccepts(pr);
  }

  private sendTimeoutNow(pr: Progress): void {
    if (pr.timeoutNowSent) return;
    pr.timeoutNowSent = true;
    this.send({ type: MsgType.TimeoutNow, from: this.id, to: pr.id, term: this.ballot });
  }

  // -------------------------------------------------------------------------
  // Reads (ReadIndex by a quorum round)

  private leaderRead(ctx: number, from: NodeId): void {
    if (this.commit < this.startSlot) {
      this.waitingReads.push({ ctx, from });
      return;
    }
    this.pendingReads.push({ ctx, from, index: this.commit, round: this.readRound + 1 });
    this.readRoundWanted = true;
    this.checkReads();
  }

  private serveRead(ctx: number, from: NodeId, index: Index): void {
    if (from === this.id) this.readStates.push({ ctx, index });
    else this.send({ type: MsgType.ReadIndexReply, from: this.id, to: from, term: this.promised, ctx, index, ok: true });
  }

  private checkReads(): void {
    if (this.role !== 'leader') return;
    const acked = this.scratch;
    acked.length = 0;
    for (const id of this.voting) acked.push(id === this.id ? Number.MAX_SAFE_INTEGER : this.progress.get(id)?.ackedRound ?? 0);
    const confirmed = kthLargest(acked, this.quorum, 0);
    let k = 0;
    while (k < this.pendingReads.length && this.pendingReads[k]!.round <= Math.min(confirmed, this.readRound)) {
      const r = this.pendingReads[k]!;
      this.serveRead(r.ctx, r.from, r.index);
      k++;
    }
    if (k > 0) this.pendingReads = this.pendingReads.slice(k);
  }

  private failRead(ctx: number, from: NodeId): void {
    if (from === this.id) this.failedReads.push(ctx);
    else this.send({ type: MsgType.ReadIndexReply, from: this.id, to: from, term: this.promised, ctx, index: 0, ok: false });
  }

  // -------------------------------------------------------------------------
  // Roles and timers

  private softState(): SoftState {
    const s: SoftState = { role: this.role, leader: this.leader, term: this.promised };
    if (this.detail) s.detail = this.detail;
    return s;
  }

  private isWitness(): boolean {
    return this.config.witnesses.includes(this.id);
  }

  private promotable(): boolean {
    return this.config.voters.includes(this.id);
  }

  private inLease(): boolean {
    if (this.role === 'leader') return true;
    return this.leader !== NO_NODE && this.electionElapsed < this.ticks.electionMin;
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedTimeout = this.rng.int(this.ticks.electionMin, this.ticks.electionMax - 1);
  }

  private becomeFollower(leader: NodeId): void {
    const wasLeader = this.role === 'leader';
    this.role = 'follower';
    this.detail = undefined;
    this.leader = leader;
    this.resetTimers();
    this.probeVotes.clear();
    this.reports.clear();
    this.missingData = [];
    if (wasLeader) {
      this.ballot = 0;
      this.startSlot = 0;
      this.progress.clear();
      this.transferee = NO_NODE;
      this.needBcast = false;
      this.readRoundWanted = false;
      for (const r of [...this.pendingReads, ...this.waitingReads]) this.failRead(r.ctx, r.from);
      this.pendingReads = [];
      this.waitingReads = [];
    }
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedTimeout) this.startCampaign(false);
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.transferee !== NO_NODE && ++this.transferElapsed >= this.ticks.electionMin) this.transferee = NO_NODE;
    if (this.electionElapsed >= this.ticks.electionMin) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum) {
        let active = this.voting.includes(this.id) ? 1 : 0;
        for (const id of this.voting) if (id !== this.id && this.progress.get(id)?.active) active++;
        for (const pr of this.progress.values()) pr.active = false;
        if (active < this.quorum) {
          this.becomeFollower(NO_NODE);
          return;
        }
      }
    }
    if (this.heartbeatElapsed >= this.ticks.heartbeat) {
      for (const pr of this.progress.values()) this.checkStall(pr);
      this.bcastHeartbeat(this.nextReadRound());
    }
  }

  private checkStall(pr: Progress): void {
    if (pr.state === 'probe') {
      pr.probeSent = false;
    } else if (pr.state === 'replicate') {
      if (pr.inflight.length > 0 && pr.match === pr.matchAtLastRound) {
        if (++pr.stall >= 2) this.becomeProbe(pr, pr.match + 1);
      } else {
        pr.stall = 0;
      }
    } else if (!this.outSnaps.has(pr.id)) {
      this.becomeProbe(pr, pr.match + 1); // the snapshot sender gave up or finished without an answer
    }
    pr.matchAtLastRound = pr.match;
  }

  /** A new round when a read waits for one, or on every heartbeat with `heartbeatRounds` (the runtime's lease); else 0. */
  private nextReadRound(): number {
    if (!this.readRoundWanted && !this.options.heartbeatRounds) return 0;
    this.readRoundWanted = false;
    return ++this.readRound;
  }

  private bcastHeartbeat(ctx: number): void {
    this.heartbeatElapsed = 0;
    for (const pr of this.progress.values()) {
      const c = Math.min(pr.match, this.commit);
      this.send({ type: MsgType.Heartbeat, from: this.id, to: pr.id, term: this.ballot, commit: c > pr.knownCommit ? c : undefined, ctx });
      if (c > pr.knownCommit && c > pr.sentCommit) pr.sentCommit = c;
    }
    if (ctx !== 0) this.checkReads();
  }

  private flush(): void {
    if (this.role !== 'leader') return;
    if (this.readRoundWanted) this.bcastHeartbeat(this.nextReadRound());
    if (this.needBcast) {
      this.needBcast = false;
      for (const pr of this.progress.values()) this.sendAccepts(pr);
      this.maybeCommit();
    }
  }

  // -------------------------------------------------------------------------
  // Ready / advance

  /**
   * A follower's heartbeat replies, sent at once instead of after the Ready being
   * persisted (the runtime may call this at any time, also while a write is in flight).
   * A reply acknowledges no slot (the leader learns what an acceptor holds only from
   * PaxosAccepted): it says "I follow the leader of this ballot and heard this round",
   * which rests on the promise alone — so only once that promise is durable, so that no
   * restart can forget it. An acceptor whose disk stalls for seconds (an SD card's garbage
   * collection) then still counts for its leader's check-quorum and read rounds; what
   * it accepts waits for the disk as before.
   */
  takeEager(): Message[] {
    if (this.role !== 'follower' || this.prevHard.term !== this.promised) return NO_MESSAGES;
    return takeOut(this.msgs, FOLLOWER_EAGER, this.promised);
  }

  ready(): Ready | undefined {
    if (this.outstanding) throw new Error('paxos ready(): the previous Ready has not been advanced yet; call advance(ready) first');
    this.flush();
    if (!this.hasReady()) return undefined;
    const rd: Ready = {
      entries: NO_ENTRIES,
      messages: this.msgs.length > 0 ? this.msgs : NO_MESSAGES,
      committed: NO_ENTRIES,
      readStates: this.readStates.length > 0 ? this.readStates : NO_READ_STATES,
      failedReads: this.failedReads.length > 0 ? this.failedReads : NO_CTXS,
    };
    const ph = this.prevHard;
    if (this.promised !== ph.term || this.commit !== ph.commit) rd.hardState = { term: this.promised, vote: 0, commit: this.commit };
    const ps = this.prevSoft;
    if (this.role !== ps.role || this.leader !== ps.leader || this.promised !== ps.term || this.detail !== ps.detail) rd.softState = this.softState();
    if (this.installing) rd.snapshot = this.installing;
    let overwrites = false;
    if (this.unstableFrom <= this.log.lastIndex) {
      overwrites = this.unstableFrom <= this.durableLast;
      rd.entries = this.log.slice(this.unstableFrom, this.log.lastIndex).map((s) => encodeDurableSlot(s, this.promised));
    }
    if (rd.snapshot || overwrites) rd.atomic = true;
    let committedTo = this.applied;
    if (!this.installing && this.applied >= this.log.snapIndex) {
      const hi = Math.min(this.commit, this.stableIndex);
      if (hi > this.applied) {
        const out: Entry[] = [];
        const witness = this.isWitness();
        for (const s of this.log.slice(this.applied + 1, hi)) {
          out.push({ index: s.index, term: s.origin, type: s.type, data: witness && s.type === EntryType.Normal ? EMPTY : s.data });
        }
        rd.committed = out;
        committedTo = hi;
      }
    }
    if (this.msgs.length > 0) this.msgs = [];
    if (this.readStates.length > 0) this.readStates = [];
    if (this.failedReads.length > 0) this.failedReads = [];
    this.installing = undefined;
    this.durableLast = this.log.lastIndex;
    this.unstableFrom = this.log.lastIndex + 1;
    this.changedSinceReady = undefined;
    this.outstanding = { rd, committedTo };
    return rd;
  }


  hasReady(): boolean {
    return this.needBcast || this.readRoundWanted || this.msgs.length > 0 || this.readStates.length > 0 || this.failedReads.length > 0 ||
      this.installing !== undefined || this.unstableFrom <= this.log.lastIndex || Math.min(this.commit, this.stableIndex) > this.applied ||
      this.promised !== this.prevHard.term || this.commit !== this.prevHard.commit ||
      this.role !== this.prevSoft.role || this.leader !== this.prevSoft.leader || this.promised !== this.prevSoft.term || this.detail !== this.prevSoft.detail;
  }

  advance(rd: Ready): void {
    if (!this.outstanding || this.outstanding.rd !== rd) throw new Error('paxos advance(): argument is not the Ready last returned by ready()');
    const { committedTo } = this.outstanding;
    this.outstanding = undefined;
    if (rd.hardState) this.prevHard = { ...rd.hardState };
    if (rd.softState) this.prevSoft = { ...rd.softState };
    let s = this.stableIndex;
    if (rd.snapshot) {
      s = Math.max(s, rd.snapshot.meta.index);
      this.applied = Math.max(this.applied, rd.snapshot.meta.index);
    }
    if (rd.entries.length > 0) s = Math.max(s, rd.entries[rd.entries.length - 1]!.index);
    if (this.changedSinceReady !== undefined) s = Math.min(s, this.changedSinceReady - 1);
    this.stableIndex = Math.min(s, this.log.lastIndex);
    this.changedSinceReady = undefined;
    this.applied = Math.max(this.applied, committedTo);
    if (this.role === 'leader') this.maybeCommit();
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }
}

/** The k-th largest value (k ≥ 1) of `xs` (sorted in place), or `dflt` when there are fewer than k. */
function kthLargest(xs: number[], k: number, dflt: number): number {
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

