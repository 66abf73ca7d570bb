/**
 * The ZAB engine: ZooKeeper's atomic broadcast as a pure, deterministic state machine
 * behind the engine contract (src/engine/contract.ts).
 *
 * Sources: Junqueira, Reed, Serafini, "Zab: High-performance broadcast for
 * primary-backup systems" (DSN 2011, "the paper"); Medeiros, "ZooKeeper's atomic
 * broadcast protocol: Theory and practice" (2012, "Medeiros"), which describes what
 * ZooKeeper's code does (Fast Leader Election, the DIFF/TRUNC/SNAP synchronization);
 * ZooKeeper's implementation notes and the Learner/LearnerHandler/Leader classes.
 *
 * ## The protocol, phase by phase
 *
 * A zxid is (epoch, counter). Each established leader has its own epoch; a history is
 * a sequence of transactions in zxid order. Here the history is the contract's log:
 * Entry.term = the zxid's epoch, Entry.index = the position in the history (see
 * history.ts for why comparing (epoch, index) is comparing zxids).
 *
 *  0. Election (fle.ts): LOOKING nodes exchange votes (currentEpoch, last zxid, id)
 *     and settle on the best; the winner is the *prospective* leader (LEADING), the
 *     others FOLLOWING it (OBSERVING for observers).
 *  1. Discovery. A follower sends FOLLOWERINFO with its acceptedEpoch. Once the
 *     prospective leader has FOLLOWERINFO from a quorum (itself included), it picks
 *     e = max(their acceptedEpochs, its own) + 1, makes acceptedEpoch = e durable and
 *     sends NEWEPOCH(e). A follower accepts e only if e > its acceptedEpoch: it makes
 *     acceptedEpoch = e durable and answers ACKEPOCH with its currentEpoch and last
 *     zxid. (e = its acceptedEpoch — it accepted e before, e.g. before a restart — is
 *     answered but does not count, ZooKeeper's "-1"; e below it sends it back to
 *     election.) No two quorums can accept the same epoch, so at most one leader per
 *     epoch. The leader waits for ACKEPOCH from a quorum; if one of them is more
 *     recent than itself by (currentEpoch, last zxid), it gives up and goes back to
 *     election (what ZooKeeper does; the paper instead copies that history). Else its
 *     own history holds every committed transaction (the paper's Lemma: the most
 *     recent (currentEpoch, zxid) in a quorum does) and becomes the initial history.
 *  2. Synchronization. The leader makes currentEpoch = e durable and appends the
 *     epoch-start entry: a no-op of epoch e, zxid (e, 0), at index s_e. It brings each
 *     follower to its history: DIFF (the follower's history is a prefix of ours: send
 *     the rest), TRUNC (the follower has transactions we do not: "keep up to i, what
 *     differs after it goes") or SNAP (it lacks what our snapshot compacted), then the
 *     transactions, then NEWLEADER(h, s_e). The follower makes the transactions and
 *     currentEpoch = e durable, then ACKs NEWLEADER. Once a quorum (the leader
 *     counting itself when durable) has, the leader is *established*: the initial
 *     history is committed (COMMIT through s_e, ZooKeeper's UPTODATE), and only now
 *     may it broadcast. Followers joining later go through the same steps.
 *  3. Broadcast. PROPOSAL(e, counter) to every synchronized follower; a follower
 *     appends in zxid order and ACKs once durable; with ACKs from a quorum the leader
 *     COMMITs, in zxid order; followers deliver committed transactions in order.
 *
 * ZAB assumes FIFO reliable channels (ZooKeeper runs it over TCP). Links here lose,
 * duplicate and reorder frames, so the channel is emulated: a follower accepts
 * transactions only in order (prevIndex must be where it stands), acknowledges
 * cumulatively, and the leader re-sends from the last acknowledged point when a
 * follower reports a gap or stalls (go-back-N). Re-sent discovery and NEWLEADER
 * messages are answered idempotently. The sessions ZooKeeper binds to a TCP
 * connection are bound here to (leader, epoch); losing the leader for syncLimit
 * (or initLimit before broadcast) sends a follower back to election.
 *
 * TRUNC is applied lazily: the follower keeps every entry of its own that matches
 * the leader's (same epoch at the same index means the same transaction: only the
 * leader of an epoch creates entries of it, always on its initial history) and drops
 * its tail at the first difference or at NEWLEADER. So it never removes an entry it
 * may have acknowledged to an earlier leader unless that entry is not in the new
 * leader's history — and then it was not committed.
 *
 * ## Durable state (mapping onto the contract's HardState)
 *   term   = acceptedEpoch: the last NEWEPOCH accepted (or proposed, by a leader);
 *   vote   = currentEpoch: the last NEWLEADER accepted (or sent, by a leader);
 *   commit = the highest index known committed (a hint for restart; ZooKeeper
 *            recomputes it, we keep it as the contract asks).
 * The log is the transaction log; snapshots are the application's (compact()).
 * Everything a message depends on is durable before it leaves: ACKEPOCH after
 * acceptedEpoch, ACK after the transactions, ACK of NEWLEADER after the transactions
 * and currentEpoch (contract: messages go after the Ready's persist). A leader
 * counts itself only for what advance() has confirmed durable. A torn write of a Ready
 * is harmless (what it wrote was acknowledged to nobody yet), except for a shortening
 * of the history with nothing after it: that re-writes the last entry kept and is
 * marked `atomic` (src/engine/contract.ts).
 *
 * ## Fencing token
 * leaderToken() = s_e, the index of the leader's epoch-start entry — zxid (e, 0)
 * written as a position in the history — issued once established (s_e committed).
 * It only grows: s_e is committed, so every later established leader's history holds
 * it (see above), and that leader's own start entry comes after it. Lock grants are
 * entry indexes too (src/kv), so leadership tokens and grant tokens share one line.
 *
 * ## Reads
 * Linearizable through the leader: it takes its commit index and confirms with a
 * PING round answered by a quorum of synchronized followers that no later epoch was
 * established before the read arrived (a follower that accepted a newer epoch no
 * longer answers our pings). A follower asks its leader (ZabSyncReq, ZooKeeper's
 * sync) and serves once its applied index reaches the answer. No leases.
 *
 * ## The leader-gone hint (MQTT Last Will)
 * `leaderGone(id)` sends a follower of `id` back to election at once, as a ZooKeeper
 * follower does when its TCP connection to the leader breaks, instead of after syncLimit
 * of silence; a SIGKILLed or crashed leader is so replaced in tens to hundreds of ms
 * (docs/engines.md). It is safe even when the leader is alive — the broker also sends a
 * will after a keepalive timeout, to a leader that is only slow: which node FLE elects,
 * and when, never matters to safety (discovery and synchronization above give that);
 * reads have no lease (a read needs a PING round answered by a quorum in the leader's
 * epoch, and a follower that accepted a newer epoch no longer answers it); and the
 * runtime's activation lease does not rest on followers staying put. A false report
 * costs one needless election.
 *
 * ## Leadership hand-over (a planned stop)
 * ZooKeeper has no leadership transfer: a leader that stops is a leader that fails,
 * and the rest wait for it to fall silent (syncLimit) and elect. Here
 * `transferLeadership(to)` hands over in two steps, so that the runtime can stop a
 * leader without its successor fencing it (daemon/runtime/hand-over.ts):
 *   1. the leader stops taking proposals and keeps replicating until `to` has
 *      acknowledged its whole history (bounded by initLimit; then the transfer is
 *      dropped and proposals resume);
 *   2. it *retires*: it goes back to election (LOOKING), which its followers hear at
 *      once (a LOOKING notification of a later round from their leader ends their
 *      session, as a closed connection does in ZooKeeper), and for initLimit it votes
 *      for nobody of its own — it starts FLE with the empty vote, as a witness does,
 *      and only adopts the votes it hears. FLE elects only a node some voter votes for,
 *      so it is not elected again; `to` holds exactly its history (same currentEpoch,
 *      same last zxid), so `to` — or a voter just as recent with a higher id, the
 *      order FLE keeps — wins, and no voter of its discovery quorum is more recent
 *      than it (which would make it give up, ZooKeeper's rule in discovery).
 * Safety does not rest on any of it: which node FLE elects never matters to safety
 * (discovery and synchronization, above, give that), and a leader that retires is
 * just a leader that left its epoch — ZAB tolerates that at any point.
 *
 * The retired leader then follows its successor like any follower: it accepts the new
 * epoch e' (acceptedEpoch = e', durable before ACKEPOCH), synchronizes and ACKs. Every
 * ACK, ACK of NEWLEADER, PONG or snapshot ACK it sends carries e' and is sent only in
 * state FOLLOWING at e', never while LEADING: so such a message shows that its sender
 * left every epoch below e' for good (an epoch is led by one node and never re-entered:
 * a later leader's epoch is above every acceptedEpoch of its quorum). That is what the
 * runtime's activation gate takes as "acknowledged" (docs/fencing.md): the successor
 * acts without fencing the node that stopped cleanly or waiting out its lease.
 *
 * ## Members
 * Voters vote and may lead; witnesses vote, count in every quorum, hold entries
 * without command data and never lead (FLE never elects them); observers (the
 * config's learners, ZooKeeper's observers) neither vote nor count, and receive the
 * history like followers. Membership is fixed (ZooKeeper's dynamic reconfiguration is
 * not implemented); no Config entries are created.
 */
import type { Rng } from '../rng.ts';
import { NO_NODE, type Index, type NodeId, type Term } from '../types.ts';
import {
  EntryType, MsgType, ZabPeerState,
  type Entry, type MemberConfig, type Message, type ZabAck, type ZabAckEpoch, type ZabMessage, type ZabNotification, type ZabProposal, type ZabSnap,
} from '../wire/messages.ts';
import type {
  Capabilities, Engine, EngineInit, EngineRole, EngineStatus, HardState, ReadState, Ready, ReplicaProgress, Result, SnapshotData, SnapshotMeta, SoftState,
} from '../engine/contract.ts';
import { allMembers, copyConfig, ENTRY_OVERHEAD_BYTES, MSG_OVERHEAD_BYTES, quorumSize, validateConfig, votingMembers } from '../raft/config.ts';
import { kthLargest } from '../raft/raft.ts';
import { FastLeaderElection, NO_VOTE, type Decision, type Vote } from './fle.ts';
import { ZabHistory } from './history.ts';
import { takeOut } from '../engine/eager.ts';
import { commitToPush, wantCommit } from '../engine/commit-push.ts';
import { MAX_EPOCH, resolveZabOptions, type ZabOptions, type ZabTicks } from './options.ts';

/** ZooKeeper's peer states. */
export type ZabState = 'looking' | 'following' | 'leading' | 'observing';
/** The paper's phases (election = phase 0). */
export type ZabPhase = 'election' | 'discovery' | 'synchronization' | 'broadcast';

/** A learner's progress through its session with the leader (follower side). */
type LearnerStage = 'info' | 'acked-epoch' | 'syncing' | 'synced' | 'broadcast';
/** The leader's view of one learner (ZooKeeper's LearnerHandler). */
type PeerStage = 'info' | 'epoch-acked' | 'syncing' | 'synced';

interface Summary {
  currentEpoch: Term;
  lastIndex: Index;
  lastTerm: Term;
  commit: Index;
}

interface OutgoingSnapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
  chunks: number;
  sentChunks: number;
  ackedChunks: number;
}

interface Peer {
  id: NodeId;
  voting: boolean;
  witness: boolean;
  stage: PeerStage;
  summary: Summary | undefined;
  /** Its ACKEPOCH counts toward the discovery quorum (accepted the epoch for the first time, and votes). */
  counted: boolean;
  mode: 'diff' | 'trunc' | 'snap';
  /** Where synchronization starts: the follower's history agrees with ours up to here. */
  startIndex: Index;
  startAcked: boolean;
  /** The follower holds our history up to here, durably (its cumulative ACK). */
  acked: Index;
  next: Index;
  inflight: Index[];
  newLeaderSent: boolean;
  newLeaderAt: Index;
  snap: OutgoingSnapshot | undefined;
  /** Heard from since the last check-quorum round. */
  heard: boolean;
  stall: number;
  ackedAtRound: Index;
  /** The follower's commit as it last told us. */
  knownCommit: Index;
  /** Highest read round (ping ctx) it answered. */
  pongRound: number;
  /** Tick of the last go-back, so that a burst of gap reports re-sends once. */
  backAt: number;
  /** The highest commit sent to it (in a proposal or a COMMIT). */
  commitSent: Index;
  /** It was told something it acts on once it has applied this (a read's SYNC reply, a forwarded write's answer); 0: none. See notifyCommit. */
  wantCommit: Index;
}

interface PendingRead { ctx: number; from: NodeId; index: Index; round: number }

export interface ZabPeerView {
  id: NodeId;
  stage: PeerStage;
  mode: 'diff' | 'trunc' | 'snap';
  acked: Index;
  next: Index;
}

export interface ZabStatus extends EngineStatus {
  state: ZabState;
  phase: ZabPhase;
  acceptedEpoch: Term;
  currentEpoch: Term;
  /** The epoch of the leadership this node leads or follows (0 before NEWEPOCH). */
  epoch: Term;
  /** Index of the epoch-start entry (zxid (epoch, 0)); 0 when not known yet. */
  epochStart: Index;
  /** The last zxid as (epoch, counter) when the counter is known (the epoch's start entry is in memory), else (epoch, -1). */
  lastZxid: { epoch: Term; counter: number };
  round: number;
  stableIndex: Index;
  snapshotIndex: Index;
  /** Leader only: one row per learner. */
  peers: ZabPeerView[];
  /** Messages ignored (not for us, from a stale session or non-member). */
  dropped: number;
  /** Synchronizations a follower refused because the leader's start point did not match its history (must stay 0). */
  syncRefused: number;
  /** Leader only: the voter a leadership hand-over waits for (0: none). */
  transferee: NodeId;
  /** A leader that handed over and votes for nobody of its own in elections for a while ("Leadership hand-over"). */
  retiring: boolean;
}

/** What the invariant checker (src/zab/invariants.ts) reads after every step. */
export interface ZabView {
  id: NodeId;
  state: ZabState;
  phase: ZabPhase;
  acceptedEpoch: Term;
  currentEpoch: Term;
  epoch: Term;
  epochStart: Index;
  /** A leader in broadcast (established). */
  established: boolean;
  commit: Index;
  lastIndex: Index;
  snapshotIndex: Index;
  witness: boolean;
  token: number;
  entryAt(i: Index): Entry | undefined;
}

export type ZabInit = EngineInit<ZabOptions>;

const ZAB_TYPES = new Set<MsgType>([
  MsgType.ZabNotification, MsgType.ZabFollowerInfo, MsgType.ZabNewEpoch, MsgType.ZabAckEpoch, MsgType.ZabDiff, MsgType.ZabTrunc,
  MsgType.ZabSnap, MsgType.ZabSnapAck, MsgType.ZabProposal, MsgType.ZabAck, MsgType.ZabNewLeader, MsgType.ZabAckNewLeader,
  MsgType.ZabCommit, MsgType.ZabPing, MsgType.ZabPong, MsgType.ZabSyncReq, MsgType.ZabSyncReply,
]);

const NO_ENTRIES = Object.freeze([]) as unknown as Entry[];
const NO_MESSAGES = Object.freeze([]) as unknown as Message[];
/** What a follower's takeEager() hands out: its PONGs. */
const FOLLOWER_EAGER: ReadonlySet<MsgType> = new Set([MsgType.ZabPong]);
const NO_READ_STATES = Object.freeze([]) as unknown as ReadState[];
const NO_CTXS = Object.freeze([]) as unknown as number[];
const EMPTY = new Uint8Array(0);

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Is summary a more recent than b? (currentEpoch, then last zxid.) */
function moreRecent(a: Summary, b: Summary): boolean {
  if (a.currentEpoch !== b.currentEpoch) return a.currentEpoch > b.currentEpoch;
  if (a.lastTerm !== b.lastTerm) return a.lastTerm > b.lastTerm;
  return a.lastIndex > b.lastIndex;
}

export class ZabNode implements Engine {
  readonly id: NodeId;
  readonly name = 'zab' as const;
  readonly caps: Readonly<Capabilities> = Object.freeze({ log: true, reads: true, transfer: true, witness: true, lease: false, byzantine: false });
  readonly options: Readonly<ZabOptions>;
  readonly tickMs: number;
  private readonly ticks: ZabTicks;

  // Durable
  private acceptedEpoch: Term = 0;
  private currentEpoch: Term = 0;
  private commit: Index = 0;
  private readonly log: ZabHistory;
  private snapshot: SnapshotData | undefined;

  // Durability tracking (as raft.ts)
  private applied: Index = 0;
  private stableIndex: Index = 0;
  private unstableFrom: Index = 1;
  private truncatedSinceReady: Index | undefined;
  /** The last index handed out in a Ready: the durable history reaches (at most) here. */
  private handedOut: Index = 0;
  private heldBack: Index = 0;
  private prevHard: HardState;
  private prevSoft: SoftState;
  private installing: SnapshotData | undefined;
  private outstanding: { rd: Ready; committedTo: Index } | undefined;

  // Membership (fixed)
  private readonly config: MemberConfig;
  private readonly voting: NodeId[];
  private readonly members: Set<NodeId>;
  private readonly quorum: number;
  private readonly scratch: number[] = [];

  // Roles
  private state: ZabState = 'looking';
  /** The leader followed, or this node when leading (prospective or established). */
  private leaderId: NodeId = NO_NODE;
  /** Epoch of the leadership this node leads or follows (0 before it is known). */
  private epoch: Term = 0;
  /** Index of the epoch-start entry of `epoch` (0 before synchronization). */
  private epochStart: Index = 0;
  private readonly fle: FastLeaderElection;
  private finalVote: Decision | undefined;
  private now = 0;

  // Follower side
  private stage: LearnerStage = 'info';
  private syncPos: Index = 0;
  /** Entries beyond syncPos are our own old ones, not yet compared with the leader's (lazy TRUNC). */
  private lazy = false;
  private lastAckEpoch: ZabAckEpoch | undefined;
  private stageElapsed = 0;
  private quiet = 0;
  private resendElapsed = 0;
  private incoming: { from: NodeId; epoch: Term; lastIndex: Index; lastTerm: Term; total: number; parts: Uint8Array[]; received: number; nackedAt?: number } | undefined;

  // Leader side
  private leaderPhase: 'discovery' | 'synchronization' | 'broadcast' = 'discovery';
  /** FOLLOWERINFO received while looking, by sender: its acceptedEpoch (becomeLeading steps them). */
  private readonly earlyInfos = new Map<NodeId, number>();
  private established = false;
  private epochChosen = false;
  private infos = new Map<NodeId, Term>();
  private peers = new Map<NodeId, Peer>();
  private selfSummary: Summary = { currentEpoch: 0, lastIndex: 0, lastTerm: 0, commit: 0 };
  private leadElapsed = 0;
  private checkElapsed = 0;
  private heartbeatElapsed = 0;
  private needBcast = false;
  private commitDirty = false;
  /** Leadership hand-over (see "Leadership hand-over" in the header): the voter it waits for, NO_NODE when none. */
  private transferee: NodeId = NO_NODE;
  private transferElapsed = 0;
  /** Ticks left during which this node, having retired from leading, votes for nobody of its own in FLE. */
  private retiring = 0;

  // Reads
  private readRound = 0;
  private readRoundWanted = false;
  private pendingReads: PendingRead[] = [];
  /** Reads this learner asked its leader for (ZabSyncReq), not answered yet. */
  private forwarded = new Set<number>();

  // Output
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private failedReads: number[] = [];

  /** Messages ignored (not for us, a stale session, a non-member). */
  dropped = 0;
  /** A follower refused a synchronization start that did not match its history. */
  syncRefused = 0;

  constructor(init: ZabInit) {
    if (typeof init !== 'object' || init === null) throw new TypeError('ZabNode: expected an init object {id, config, rng, ...}');
    if (!isNat(init.id) || init.id < 1 || init.id > 254) throw new RangeError(`ZabNode: id must be a node id 1..254, got ${String(init.id)}`);
    if (!init.rng || typeof (init.rng as Rng).int !== 'function') throw new TypeError('ZabNode: rng must be an Rng (src/rng.ts)');
    this.id = init.id;
    const { opts, ticks } = resolveZabOptions(init.options);
    this.options = Object.freeze(opts);
    this.ticks = ticks;
    this.tickMs = opts.tickMs;

    let snapIndex = 0;
    let snapTerm = 0;
    let config = validateConfig(init.config, 'ZabNode config');
    if (init.snapshot !== undefined) {
      const s = init.snapshot;
      if (!s || !s.meta || !isNat(s.meta.index) || !isNat(s.meta.term)) throw new TypeError('ZabNode snapshot: expected {meta: {index, term, config}, data}');
      if (!(s.data instanceof Uint8Array)) throw new TypeError('ZabNode snapshot.data: expected a Uint8Array');
      snapIndex = s.meta.index;
      snapTerm = s.meta.term;
      config = validateConfig(s.meta.config, 'ZabNode snapshot.meta.config');
      this.snapshot = { meta: { index: snapIndex, term: snapTerm, config: copyConfig(config) }, data: s.data };
    }
    const entries = init.entries ?? [];
    if (!Array.isArray(entries)) throw new TypeError('ZabNode entries: expected an array of Entry');
    entries.forEach((e, k) => {
      if (!e || !isNat(e.term) || !isNat(e.index) || !(e.data instanceof Uint8Array) || !(e.type in EntryType)) {
        throw new TypeError(`ZabNode entries[${k}]: expected {term, index, type, data: Uint8Array}`);
      }
      if (e.type === EntryType.Config) throw new TypeError(`ZabNode entries[${k}]: a Config entry; the ZAB engine has fixed membership and never writes one`);
      if (e.index !== snapIndex + 1 + k) throw new RangeError(`ZabNode entries[${k}]: index ${e.index}, expected ${snapIndex + 1 + k} (contiguous after the snapshot at ${snapIndex})`);
      const prev = k > 0 ? entries[k - 1]!.term : snapTerm;
      if (e.term < prev) throw new RangeError(`ZabNode entries[${k}] (index ${e.index}): epoch ${e.term} below the previous ${prev}; epochs never decrease along a history`);
    });
    this.log = new ZabHistory(snapIndex, snapTerm, entries);
    this.config = config;
    this.voting = votingMembers(config);
    this.members = new Set(allMembers(config));
    this.quorum = quorumSize(config);
    if (!this.members.has(this.id)) throw new RangeError(`ZabNode: node ${this.id} is not in the configuration ${JSON.stringify(config)}`);

    const hs = init.hardState ?? { term: 0, vote: 0, commit: 0 };
    if (!isNat(hs.term) || !isNat(hs.vote) || !isNat(hs.commit)) throw new TypeError('ZabNode hardState: expected {term: acceptedEpoch, vote: currentEpoch, commit} of non-negative integers');
    if (hs.term > MAX_EPOCH || hs.vote > hs.term) {
      throw new RangeError(`ZabNode hardState: currentEpoch (vote ${hs.vote}) must not exceed acceptedEpoch (term ${hs.term}), and both must be ≤ ${MAX_EPOCH}`);
    }
    if (this.log.lastTerm > hs.term) {
      throw new RangeError(`ZabNode: the durable history ends in epoch ${this.log.lastTerm}, above acceptedEpoch ${hs.term} (an entry was made durable before the epoch it belongs to)`);
    }
    if (hs.commit > this.log.lastIndex) {
      throw new RangeError(`ZabNode hardState.commit ${hs.commit} is beyond the last durable index ${this.log.lastIndex}: committed transactions are missing from storage`);
    }
    this.acceptedEpoch = hs.term;
    this.currentEpoch = hs.vote;
    this.commit = Math.max(hs.commit, snapIndex);
    this.applied = init.applied ?? snapIndex;
    if (!isNat(this.applied) || this.applied < snapIndex || this.applied > this.commit) {
      throw new RangeError(`ZabNode applied ${String(init.applied)} must be within [snapshot index ${snapIndex}, commit ${this.commit}]`);
    }
    this.stableIndex = this.log.lastIndex;
    this.unstableFrom = this.log.lastIndex + 1;
    this.heldBack = this.log.lastIndex;
    this.handedOut = this.log.lastIndex;
    this.prevHard = { term: this.acceptedEpoch, vote: this.currentEpoch, commit: this.commit };

    this.fle = new FastLeaderElection(
      {
        id: this.id,
        isVoting: (x) => this.voting.includes(x),
        isElectable: (x) => this.config.voters.includes(x),
        isMember: (x) => this.members.has(x),
        votingMembers: this.voting,
        quorum: this.quorum,
        send: (m) => this.send(m),
      },
      ticks,
    );
    this.prevSoft = { role: 'follower', leader: NO_NODE, term: this.acceptedEpoch };
    this.goLooking();
  }

  // -------------------------------------------------------------------------
  // Inspection

  get isLeader(): boolean {
    return this.state === 'leading' && this.established;
  }

  leaderToken(): number {
    return this.isLeader ? this.epochStart : 0;
  }

  entryAt(i: Index): Entry | undefined {
    return this.log.entry(i);
  }

  /** Epoch of the entry at `i` (the snapshot's at its index), undefined if compacted or absent. */
  termAt(i: Index): Term | undefined {
    return this.log.term(i);
  }

  get commitIndex(): Index {
    return this.commit;
  }

  get appliedIndex(): Index {
    return this.applied;
  }

  get lastIndex(): Index {
    return this.log.lastIndex;
  }

  get snapshotIndex(): Index {
    return this.log.snapIndex;
  }

  /** The latest snapshot this node holds (taken by compact() or installed from a leader). */
  latestSnapshot(): SnapshotData | undefined {
    return this.snapshot;
  }

  get witness(): boolean {
    return this.config.witnesses.includes(this.id);
  }

  get zabState(): ZabState {
    return this.state;
  }

  get phase(): ZabPhase {
    if (this.state === 'looking') return 'election';
    if (this.state === 'leading') return this.leaderPhase;
    if (this.stage === 'info' || this.stage === 'acked-epoch') return 'discovery';
    if (this.stage === 'broadcast') return 'broadcast';
    return 'synchronization';
  }

  /** A cheap read-only view for the invariant checker (no copies of the log). */
  view(): ZabView {
    return {
      id: this.id, state: this.state, phase: this.phase, acceptedEpoch: this.acceptedEpoch, currentEpoch: this.currentEpoch, epoch: this.epoch,
      epochStart: this.epochStart, established: this.isLeader, commit: this.commit, lastIndex: this.log.lastIndex, snapshotIndex: this.log.snapIndex,
      witness: this.witness, token: this.leaderToken(), entryAt: (i) => this.log.entry(i),
    };
  }

  status(): ZabStatus {
    const s = this.softState();
    const lastEpoch = this.log.lastTerm;
    const start = this.epochStartIndexOf(lastEpoch);
    return {
      id: this.id, engine: 'zab', role: s.role, detail: s.detail, term: this.acceptedEpoch, leader: s.leader,
      commitIndex: this.commit, appliedIndex: this.applied, lastIndex: this.log.lastIndex, isWitness: this.witness, config: copyConfig(this.config),
      state: this.state, phase: this.phase, acceptedEpoch: this.acceptedEpoch, currentEpoch: this.currentEpoch, epoch: this.epoch, epochStart: this.epochStart,
      lastZxid: { epoch: lastEpoch, counter: start === undefined ? -1 : this.log.lastIndex - start },
      round: this.fle.round, stableIndex: this.stableIndex, snapshotIndex: this.log.snapIndex,
      peers: [...this.peers.values()].map((p) => ({ id: p.id, stage: p.stage, mode: p.mode, acked: p.acked, next: p.next })),
      dropped: this.dropped + this.fle.dropped, syncRefused: this.syncRefused, transferee: this.transferee, retiring: this.retiring > 0,
    };
  }

  /** Index of epoch t's start entry if it is in memory (the first entry of the run of t). */
  private epochStartIndexOf(t: Term): Index | undefined {
    const end = this.log.runEnd(t);
    if (end === undefined) return undefined;
    const before = this.log.lastIndexAtOrBelow(t - 1);
    const first = before + 1;
    return first > this.log.snapIndex && this.log.term(first) === t ? first : undefined;
  }

  // -------------------------------------------------------------------------
  // Inputs

  tick(): void {
    this.now++;
    if (this.retiring > 0) this.retiring--;
    switch (this.state) {
      case 'looking':
        this.fle.tick();
        this.afterElection();
        return;
      case 'leading':
        this.tickLeader();
        return this.maybeRetire();
      default:
        return this.tickLearner();
    }
  }

  step(m: Message): void {
    if (typeof m !== 'object' || m === null) throw new TypeError(`zab step: expected a Message object, got ${String(m)}`);
    if (!isNat(m.term) || !isNat(m.from) || !isNat(m.to)) throw new TypeError(`zab step: term, from and to must be non-negative integers (type ${MsgType[m.type]})`);
    if (!ZAB_TYPES.has(m.type)) {
      // A Raft, Paxos, bully or client message: a peer runs another engine (as the other
      // engines do; this threw, and the runtime stopped the node on a peer's PreVote).
      this.dropped++;
      return;
    }
    if (m.to !== this.id || m.from === this.id || !this.members.has(m.from)) {
      this.dropped++;
      return;
    }
    const z = m as ZabMessage;
    if (z.type === MsgType.ZabNotification) return this.onNotification(z);
    switch (this.state) {
      case 'looking':
        if (z.type === MsgType.ZabSyncReq) return this.send({ type: MsgType.ZabSyncReply, from: this.id, to: z.from, term: z.term, ctx: z.ctx, index: 0, ok: false });
        if (z.type === MsgType.ZabFollowerInfo) {
          // A voter that already concluded we lead (its FLE finished before ours, by up to
          // finalizeWait): kept for becomeLeading, so that discovery need not wait for its
          // resend one heartbeat later.
          this.earlyInfos.set(z.from, z.term);
          return;
        }
        this.dropped++;
        return;
      case 'leading':
        this.stepLeader(z);
        return this.maybeRetire();
      default:
        if (z.from !== this.leaderId) {
          this.dropped++;
          return;
        }
        return this.stepLearner(z);
    }
  }

  propose(data: Uint8Array): Result {
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: `propose: data must be a Uint8Array, got ${typeof data}` };
    if (data.length > this.ticks.maxEntryBytes) {
      return { ok: false, code: 'too-large', reason: `propose: ${data.length} bytes exceed the ${this.ticks.maxEntryBytes}-byte limit of one transaction (maxMsgBytes ${this.options.maxMsgBytes})` };
    }
    if (this.state !== 'leading') return { ok: false, code: 'not-leader', reason: `node ${this.id} is not the leader (${this.state}; leader: ${this.softState().leader || 'unknown'})` };
    if (!this.established) return { ok: false, code: 'no-leader', reason: `node ${this.id} is a prospective leader in ${this.leaderPhase}; it broadcasts only once a quorum is synchronized` };
    if (this.transferee !== NO_NODE) return { ok: false, code: 'transfer-in-progress', reason: `leadership is being handed over to ${this.transferee}` };
    const e: Entry = { term: this.epoch, index: this.log.lastIndex + 1, type: EntryType.Normal, data };
    this.log.append(e);
    this.needBcast = true;
    return { ok: true, index: e.index, term: e.term };
  }

  /**
   * A linearizable read: answered by a ReadState {ctx, index} (serve once applied ≥
   * index) or a failedReads entry. On a follower, ZooKeeper's sync: the leader is asked.
   */
  readIndex(ctx: number): Result<{ term: Term }> {
    if (!Number.isInteger(ctx) || ctx < 1 || ctx > 0xffffffff) return { ok: false, code: 'bad-request', reason: `readIndex: ctx must be an integer 1..2^32-1, got ${String(ctx)}` };
    if (this.state === 'leading') {
      if (!this.established) return { ok: false, code: 'no-leader', reason: `node ${this.id} is not established yet (${this.leaderPhase})` };
      this.leaderRead(ctx, this.id);
      return { ok: true, term: this.epoch };
    }
    if ((this.state === 'following' || this.state === 'observing') && this.stage === 'broadcast') {
      this.forwarded.add(ctx);
      this.send({ type: MsgType.ZabSyncReq, from: this.id, to: this.leaderId, term: this.epoch, ctx });
      return { ok: true, term: this.epoch };
    }
    return { ok: false, code: 'no-leader', reason: `node ${this.id} follows no established leader (${this.phase})` };
  }

  /**
   * Hands leadership over (see "Leadership hand-over" in the header): no proposals
   * from now on; once `to` has acknowledged the whole history, this node retires into
   * election and abstains, so a voter as recent as it leads next. Dropped after
   * initLimit if `to` does not catch up. FLE, not `to`, has the last word on who
   * leads: a voter just as recent with a higher id wins over `to`.
   */
  transferLeadership(to: NodeId): Result<{ term: Term }> {
    if (!this.isLeader) return { ok: false, code: 'not-leader', reason: `node ${this.id} is not an established leader (${this.state}${this.state === 'leading' ? `, ${this.leaderPhase}` : ''})` };
    if (!Number.isInteger(to) || to < 1 || to > 254) return { ok: false, code: 'bad-request', reason: `transferLeadership: to must be a node id 1..254, got ${String(to)}` };
    if (to === this.id) return { ok: true, term: this.acceptedEpoch };
    if (!this.config.voters.includes(to)) return { ok: false, code: 'not-voter', reason: `transfer target ${to} is not a voter (witnesses and observers never lead)` };
    if (this.transferee !== to) {
      this.transferee = to;
      this.transferElapsed = 0;
    }
    const term = this.acceptedEpoch;
    this.maybeRetire();
    return { ok: true, term };
  }

  /**
   * On a leader, how far each learner's history is known to match ours (its cumulative
   * ACK; 0 before it synchronized). The runtime hands over to the most caught-up voter.
   */
  replicaProgress(): ReplicaProgress[] {
    if (!this.isLeader) return [];
    return [...this.peers.values()].map((p) => ({ id: p.id, match: p.stage === 'synced' ? p.acked : 0, state: p.stage }));
  }

  /** Step 2 of a hand-over: the transferee holds our whole history durably; leave the epoch and abstain. */
  private maybeRetire(): void {
    if (this.transferee === NO_NODE || !this.isLeader) return;
    const p = this.peers.get(this.transferee);
    if (!p || p.stage !== 'synced' || p.acked < this.log.lastIndex) return;
    this.retiring = this.ticks.initLimit;
    this.goLooking();
  }

  /** Starts leader election now unless this node leads or already elects (a follower answered by settled peers rejoins the same leader). */
  campaign(): Result<{ term: Term }> {
    if (!this.voting.includes(this.id)) return { ok: false, code: 'not-voter', reason: `node ${this.id} is an observer and never takes part in elections` };
    if (this.state === 'leading' || this.state === 'looking') return { ok: true, term: this.acceptedEpoch };
    this.goLooking();
    return { ok: true, term: this.acceptedEpoch };
  }

  /**
   * The link reported node `id`'s connection gone. If it is our leader, we go back to
   * election at once, as a ZooKeeper follower does when its TCP connection to the
   * leader breaks. Safe even if the report is false: election and discovery never
   * rest on it, and the settled peers answer us with the current leader.
   */
  leaderGone(id: NodeId): Result<{ forgot: boolean }> {
    if (!Number.isInteger(id) || id < 1 || id > 254) return { ok: false, code: 'bad-request', reason: `leaderGone: id must be a node id 1..254, got ${String(id)}` };
    if ((this.state === 'following' || this.state === 'observing') && this.leaderId === id) {
      this.goLooking();
      return { ok: true, forgot: true };
    }
    return { ok: true, forgot: false };
  }

  compact(index: Index, data: Uint8Array): Result<{ meta: SnapshotMeta }> {
    if (!isNat(index)) return { ok: false, code: 'bad-request', reason: `compact: index must be a non-negative integer, got ${String(index)}` };
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: 'compact: data must be a Uint8Array' };
    if (index > this.applied) return { ok: false, code: 'bad-request', reason: `compact: index ${index} is beyond the applied index ${this.applied}` };
    if (index <= this.log.snapIndex) return { ok: false, code: 'bad-request', reason: `compact: index ${index} is not after the current snapshot ${this.log.snapIndex}` };
    const meta: SnapshotMeta = { index, term: this.log.term(index)!, config: copyConfig(this.config) };
    this.log.compactTo(index);
    this.snapshot = { meta, data: this.witness ? EMPTY : data };
    return { ok: true, meta };
  }

  // -------------------------------------------------------------------------
  // Ready / advance (the contract's order; see src/engine/contract.ts)

  hasReady(): boolean {
    return this.needBcast || this.readRoundWanted || this.commitDirty || this.msgs.length > 0 || this.readStates.length > 0 || this.failedReads.length > 0 ||
      this.installing !== undefined || this.unstableFrom <= this.log.lastIndex || Math.min(this.commit, this.stableIndex) > this.applied ||
      this.acceptedEpoch !== this.prevHard.term || this.currentEpoch !== this.prevHard.vote || this.commit !== this.prevHard.commit ||
      this.softChanged();
  }

  /**
   * A follower's PONGs, sent at once instead of after the Ready being persisted (the
   * runtime may call this at any time, also while a write is in flight). A PONG
   * acknowledges no transaction (the leader learns what a follower logged only from
   * ACK): it says "I follow the leader of this epoch and heard this ping round", which
   * rests on the epochs alone — so only once both (acceptedEpoch and currentEpoch) are
   * durable at this epoch, so that no restart can forget them. A follower whose disk
   * stalls for seconds (an SD card's garbage collection) then still counts for its
   * leader's quorum checks and read rounds; its ACKs wait for the disk as before.
   */
  takeEager(): Message[] {
    const e = this.epoch;
    if (this.state !== 'following' || this.prevHard.term !== e || this.prevHard.vote !== e) return NO_MESSAGES;
    return takeOut(this.msgs, FOLLOWER_EAGER, e);
  }

  ready(): Ready | undefined {
    if (this.outstanding) throw new Error('zab ready(): the previous Ready has not been advanced yet; call advance(ready) first');
    this.flush();
    if (!this.hasReady()) return undefined;
    const rd: Ready = {
      entries: NO_ENTRIES,
      messages: this.msgs.length > 0 ? this.msgs : NO_MESSAGES,
      committed: NO_ENTRIES,
      readStates: this.readStates.length > 0 ? this.readStates : NO_READ_STATES,
      failedReads: this.failedReads.length > 0 ? this.failedReads : NO_CTXS,
    };
    // Entries to persist. The planted bug testingAckBeforeDurable hands them out one
    // Ready late, while the acknowledgements in this Ready leave now.
    let from = this.unstableFrom;
    let hi = this.log.lastIndex;
    if (this.options.testingAckBeforeDurable && this.truncatedSinceReady === undefined && !this.installing) {
      hi = Math.min(hi, Math.max(this.heldBack, from - 1));
      this.heldBack = this.log.lastIndex;
    }
    let rewrite = false;
    if (this.truncatedSinceReady !== undefined && this.truncatedSinceReady <= this.handedOut && from > this.log.lastIndex) {
      // A tail was dropped and nothing follows it: re-write the last entry kept, so
      // that the runtime truncates its durable history there (the contract's only
      // way to shorten the log without a snapshot). That entry may be one we
      // acknowledged, so the write must be all or nothing (Ready.atomic): a torn one
      // would have truncated it without writing it back.
      if (this.log.lastIndex <= this.log.snapIndex) throw new Error(`zab: cannot shorten the durable history to ${this.log.lastIndex}: no entry there to re-write (snapshot at ${this.log.snapIndex})`);
      from = this.log.lastIndex;
      hi = this.log.lastIndex;
      rewrite = true;
    }
    if (from <= hi) rd.entries = this.log.slice(from, hi);
    if (rewrite) rd.atomic = true;
    const persistedLast = rd.entries.length > 0 ? hi : this.installing ? this.installing.meta.index : Math.min(this.handedOut, this.log.lastIndex);
    // The durable commit never points past the durable history.
    const hardCommit = Math.min(this.commit, persistedLast);
    const ph = this.prevHard;
    if (this.acceptedEpoch !== ph.term || this.currentEpoch !== ph.vote || hardCommit !== ph.commit) {
      rd.hardState = { term: this.acceptedEpoch, vote: this.currentEpoch, commit: hardCommit };
    }
    if (this.softChanged()) rd.softState = this.softState();
    if (this.installing) rd.snapshot = this.installing;
    let committedTo = this.applied;
    if (!this.installing && this.applied >= this.log.snapIndex) {
      const top = Math.min(this.commit, this.stableIndex);
      if (top > this.applied) {
        rd.committed = this.log.slice(this.applied + 1, top);
        committedTo = top;
      }
    }
    const empty = !rd.hardState && !rd.softState && !rd.snapshot && rd.entries.length === 0 && rd.messages.length === 0 &&
      rd.committed.length === 0 && rd.readStates.length === 0 && rd.failedReads.length === 0;
    if (empty) {
      if (this.unstableFrom > this.log.lastIndex) return undefined;
      // Only held-back entries remain (the testing bug): hand them out now.
      rd.entries = this.log.slice(this.unstableFrom, this.log.lastIndex);
    }
    if (this.msgs.length > 0) this.msgs = [];
    if (this.readStates.length > 0) this.readStates = [];
    if (this.failedReads.length > 0) this.failedReads = [];
    if (rd.snapshot) this.handedOut = rd.snapshot.meta.index;
    this.installing = undefined;
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!.index;
      this.unstableFrom = last + 1;
      this.handedOut = last;
    }
    this.truncatedSinceReady = undefined;
    this.outstanding = { rd, committedTo };
    return rd;
  }

  advance(rd: Ready): void {
    if (!this.outstanding || this.outstanding.rd !== rd) throw new Error('zab advance(): argument is not the Ready last returned by ready()');
    const { committedTo } = this.outstanding;
    this.outstanding = undefined;
    if (rd.hardState) this.prevHard = { ...rd.hardState };
    if (rd.softState) this.prevSoft = { ...rd.softState };
    if (rd.snapshot) {
      this.stableIndex = Math.max(this.stableIndex, rd.snapshot.meta.index);
      this.applied = Math.max(this.applied, rd.snapshot.meta.index);
    }
    if (rd.entries.length > 0) {
      let s = rd.entries[rd.entries.length - 1]!.index;
      if (this.truncatedSinceReady !== undefined) s = Math.min(s, this.truncatedSinceReady - 1);
      this.stableIndex = Math.max(this.stableIndex, Math.min(s, this.log.lastIndex));
    }
    this.applied = Math.max(this.applied, committedTo);
    if (this.state === 'leading') {
      // Our own acceptedEpoch / history / currentEpoch may just have become durable.
      this.maybeStartSync();
      this.maybeEstablish();
      this.maybeCommit();
    }
  }

  // -------------------------------------------------------------------------
  // Roles

  private softChanged(): boolean {
    const s = this.softState();
    const p = this.prevSoft;
    return s.role !== p.role || s.leader !== p.leader || s.term !== p.term || s.detail !== p.detail;
  }

  private softState(): SoftState {
    let role: EngineRole;
    let leader: NodeId = NO_NODE;
    if (this.state === 'leading') {
      role = this.established ? 'leader' : 'candidate';
      if (this.established) leader = this.id;
    } else if (this.state === 'looking') {
      role = this.voting.includes(this.id) ? 'candidate' : 'follower';
    } else {
      role = 'follower';
      if (this.stage === 'broadcast') leader = this.leaderId;
    }
    const detail = this.state === 'observing' ? `observing ${this.phase}` : this.phase;
    return { role, leader, term: this.acceptedEpoch, detail };
  }

  private ownVote(): Vote {
    // A retired leader abstains (see "Leadership hand-over" in the header).
    if (!this.config.voters.includes(this.id) || this.retiring > 0) return NO_VOTE;
    return { leader: this.id, epoch: this.currentEpoch, zxidTerm: this.log.lastTerm, zxidIndex: this.log.lastIndex };
  }

  /** Back to phase 0 (ZooKeeper: LOOKING). */
  private goLooking(): void {
    if (this.state === 'leading') this.loseLeadership();
    this.earlyInfos.clear();
    this.failForwarded();
    this.state = 'looking';
    this.leaderId = NO_NODE;
    this.epoch = 0;
    this.epochStart = 0;
    this.stage = 'info';
    this.incoming = undefined;
    this.lazy = false;
    this.lastAckEpoch = undefined;
    this.fle.start(this.ownVote());
    this.afterElection();
  }

  private afterElection(): void {
    const d = this.fle.decided;
    if (!d || this.state !== 'looking') return;
    this.fle.decided = undefined;
    this.finalVote = d;
    if (d.state === ZabPeerState.Leading) this.becomeLeading();
    else this.becomeLearner(d.vote.leader, d.state === ZabPeerState.Observing);
  }

  private onNotification(n: ZabNotification): void {
    if (this.state === 'looking') {
      this.fle.handle(n);
      this.afterElection();
      return;
    }
    if (n.state !== ZabPeerState.Looking) return; // settled reports while settled: nothing to do
    if ((this.state === 'following' || this.state === 'observing') && n.from === this.leaderId && n.term > (this.finalVote?.round ?? 0)) {
      // Our leader is in a later election round than the one we concluded: its
      // leadership is over (ZooKeeper: the connection closes). In the same round it is
      // still concluding that election: our FOLLOWING answer below helps it conclude.
      this.goLooking();
      if ((this.state as ZabState) === 'looking') {
        this.fle.handle(n);
        this.afterElection();
      }
      return;
    }
    if (this.state === 'leading' && this.leaderPhase === 'discovery' && this.voting.includes(n.from) && this.leadElapsed >= this.ticks.syncLimit) {
      // A prospective leader that has waited a syncLimit in discovery for its quorum
      // while a voter is still electing gives up and elects with it (ZooKeeper's
      // quitLeading for a voter looking again, ZOOKEEPER-4074): two prospective
      // leaders, or one the others never heard conclude, would otherwise both wait out
      // initLimit. Once synchronizing, its quorum is committed to it: it stays.
      this.goLooking();
      if ((this.state as ZabState) === 'looking') {
        this.fle.handle(n);
        this.afterElection();
      }
      return;
    }
    // Tell the looking node who leads (ZooKeeper's WorkerReceiver answers with its current vote).
    const v = this.finalVote;
    if (!v) return;
    const state = this.state === 'leading' ? ZabPeerState.Leading : this.state === 'observing' ? ZabPeerState.Observing : ZabPeerState.Following;
    this.send({ type: MsgType.ZabNotification, from: this.id, to: n.from, term: v.round, leader: v.vote.leader, epoch: v.vote.epoch, zxidTerm: v.vote.zxidTerm, zxidIndex: v.vote.zxidIndex, state });
  }

  // -------------------------------------------------------------------------
  // Learner side (followers and observers)

  private becomeLearner(leader: NodeId, observer: boolean): void {
    this.earlyInfos.clear();
    this.state = observer ? 'observing' : 'following';
    this.leaderId = leader;
    this.epoch = 0;
    this.epochStart = 0;
    this.stage = 'info';
    this.syncPos = 0;
    this.lazy = false;
    this.lastAckEpoch = undefined;
    this.incoming = undefined;
    this.stageElapsed = 0;
    this.quiet = 0;
    this.resendElapsed = 0;
    this.send({ type: MsgType.ZabFollowerInfo, from: this.id, to: leader, term: this.acceptedEpoch });
  }

  private tickLearner(): void {
    this.stageElapsed++;
    this.quiet++;
    if (this.stage !== 'broadcast' && this.stageElapsed >= this.ticks.initLimit) return this.goLooking();
    if ((this.stage === 'syncing' || this.stage === 'synced' || this.stage === 'broadcast') && this.quiet >= this.ticks.syncLimit) return this.goLooking();
    if (++this.resendElapsed >= this.ticks.heartbeat) {
      this.resendElapsed = 0;
      if (this.stage === 'info') this.send({ type: MsgType.ZabFollowerInfo, from: this.id, to: this.leaderId, term: this.acceptedEpoch });
      else if (this.stage === 'acked-epoch' && this.lastAckEpoch) this.send({ ...this.lastAckEpoch });
      // Reads asked of the leader and not answered: ask again (the first answer counts).
      for (const ctx of this.forwarded) this.send({ type: MsgType.ZabSyncReq, from: this.id, to: this.leaderId, term: this.epoch, ctx });
    }
  }

  private stepLearner(m: ZabMessage): void {
    this.quiet = 0;
    if (m.type === MsgType.ZabNewEpoch) return this.onNewEpoch(m.term);
    if (this.stage === 'info' || m.term < this.epoch) {
      // Before NEWEPOCH, or a message of an older session: nothing to act on.
      this.dropped++;
      return;
    }
    if (m.term > this.epoch) return this.goLooking(); // our leader is in a newer epoch we never accepted
    switch (m.type) {
      case MsgType.ZabDiff:
      case MsgType.ZabTrunc:
        return this.onSyncStart(m.index, m.indexTerm);
      case MsgType.ZabSnap:
        return this.onSnap(m);
      case MsgType.ZabProposal:
        return this.onProposal(m);
      case MsgType.ZabNewLeader:
        return this.onNewLeader(m.index, m.start);
      case MsgType.ZabCommit:
        if (this.stage !== 'synced' && this.stage !== 'broadcast') return this.nack(this.stage === 'syncing' ? this.syncPos : 0);
        this.learnCommit(m.index);
        return this.ack();
      case MsgType.ZabPing:
        // While synchronizing, the answer says where we stand (the leader re-sends what is missing).
        if (this.stage === 'syncing') return this.ack();
        if (this.stage !== 'synced' && this.stage !== 'broadcast') return this.nack(0);
        this.send({ type: MsgType.ZabPong, from: this.id, to: this.leaderId, term: this.epoch, ctx: m.ctx });
        return;
      case MsgType.ZabSyncReply:
        // Only an answer to a read we asked in this session (not a duplicate, not one of another life).
        if (!this.forwarded.delete(m.ctx)) {
          this.dropped++;
          return;
        }
        if (m.ok) this.readStates.push({ ctx: m.ctx, index: m.index });
        else this.failedReads.push(m.ctx);
        return;
      default:
        this.dropped++;
    }
  }

  /** NEWEPOCH (ZooKeeper's LEADERINFO): accept it if above our acceptedEpoch. */
  private onNewEpoch(e: Term): void {
    if (this.stage === 'info') {
      let ok: boolean;
      if (e > this.acceptedEpoch) {
        if (e > MAX_EPOCH) {
          this.dropped++;
          return;
        }
        this.acceptedEpoch = e; // durable before ACKEPOCH leaves (the Ready's order)
        ok = true;
      } else if (e === this.acceptedEpoch) {
        ok = false; // accepted before (ZooKeeper's -1): answered, not counted
      } else {
        return this.goLooking(); // a stale leader
      }
      this.epoch = e;
      this.stage = 'acked-epoch';
      this.stageElapsed = 0;
      this.lastAckEpoch = {
        type: MsgType.ZabAckEpoch, from: this.id, to: this.leaderId, term: e, ok,
        currentEpoch: this.currentEpoch, lastIndex: this.log.lastIndex, lastTerm: this.log.lastTerm, commit: Math.min(this.commit, this.log.lastIndex),
      };
      this.send({ ...this.lastAckEpoch });
      return;
    }
    if (e !== this.epoch) return this.goLooking(); // our leader started another epoch: it went back to election meanwhile
    // The leader lost our ACKEPOCH, or took a late FOLLOWERINFO for a new session: answer again.
    if (this.lastAckEpoch) this.send({ ...this.lastAckEpoch });
  }

  /** DIFF or TRUNC: our history agrees with the leader's up to `index`. */
  private onSyncStart(index: Index, indexTerm: Term): void {
    const matches = index <= this.log.snapIndex ? index <= this.commit || index === this.log.snapIndex : this.log.term(index) === indexTerm;
    if (!matches || index > this.log.lastIndex) {
      // Cannot happen with a correct leader; refusing is always safe.
      this.syncRefused++;
      return this.goLooking();
    }
    // Below our snapshot everything is committed, hence the leader's too.
    const from = Math.max(index, this.log.snapIndex);
    if (this.stage === 'acked-epoch') {
      this.stage = 'syncing';
      this.syncPos = from;
      this.lazy = this.log.lastIndex > from;
    } else if (this.stage === 'syncing') {
      this.syncPos = Math.max(this.syncPos, from); // a repeated start; what we confirmed stays confirmed
    }
    // synced or broadcast: a late copy, or the leader began a new session for us after
    // a duplicate FOLLOWERINFO. Either way our history is its history up to our last
    // index: the ACK says so, and its NEWLEADER will be answered at once.
    this.ack();
  }

  private onSnap(m: ZabSnap): void {
    if (this.stage === 'info') return this.nack(0);
    const reply = (next: number, ok: boolean) => this.send({ type: MsgType.ZabSnapAck, from: this.id, to: m.from, term: this.epoch, lastIndex: m.lastIndex, next, ok });
    let inc = this.incoming;
    if (m.offset === 0 && (!inc || inc.lastIndex !== m.lastIndex || inc.epoch !== m.term || inc.from !== m.from)) {
      inc = this.incoming = { from: m.from, epoch: m.term, lastIndex: m.lastIndex, lastTerm: m.lastTerm, total: m.total, parts: [], received: 0 };
    }
    if (!inc || inc.lastIndex !== m.lastIndex || inc.epoch !== m.term || inc.total !== m.total) return reply(0, false);
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
    this.incoming = undefined;
    const s = m.lastIndex;
    if (s <= this.commit || this.log.term(s) === m.lastTerm) {
      // We hold the snapshot's last entry (committed here, or the same zxid: the same
      // prefix), hence all before it: keep our history.
      this.syncFrom(Math.max(s, this.log.snapIndex));
    } else {
      // We do not: none of our entries after s is in the leader's history (else we
      // would hold s too), so none is committed. Install and start from s.
      const data = new Uint8Array(inc.total);
      let p = 0;
      for (const part of inc.parts) {
        data.set(part, p);
        p += part.length;
      }
      const config = validateConfig(m.config, `snapshot config from ${m.from}`);
      const snap: SnapshotData = { meta: { index: s, term: m.lastTerm, config }, data: this.witness ? EMPTY : data };
      this.log.reset(s, m.lastTerm);
      this.stableIndex = Math.min(this.stableIndex, s);
      this.unstableFrom = s + 1;
      this.heldBack = s;
      this.truncatedSinceReady = undefined;
      this.snapshot = snap;
      this.installing = snap;
      this.lazy = false;
      // Synchronized (or in broadcast) already: the history stays the leader's, now from
      // its snapshot; otherwise synchronization goes on from there.
      if (this.stage !== 'synced' && this.stage !== 'broadcast') {
        this.stage = 'syncing';
        this.syncPos = s;
      }
    }
    // Everything up to the leader's snapshot is committed.
    if (s > this.commit) this.commit = Math.min(s, this.log.lastIndex);
    reply(inc.total, true);
  }

  private syncFrom(index: Index): void {
    if (this.stage === 'syncing') this.syncPos = Math.max(this.syncPos, index);
    else if (this.stage === 'acked-epoch') {
      this.lazy = this.log.lastIndex > index;
      this.syncPos = index;
      this.stage = 'syncing';
    }
    // synced or broadcast: a late copy of a snapshot we already have (see onSyncStart).
  }

  private onProposal(m: ZabProposal): void {
    if (this.stage === 'acked-epoch') return this.nack(0);
    const syncing = this.stage === 'syncing';
    const pos = syncing ? this.syncPos : this.log.lastIndex;
    if (m.prevIndex > pos) return this.nack(pos); // a gap: go back to pos
    // Skip what we already confirmed (a re-send, or overlapping batches).
    let k = 0;
    for (; k < m.entries.length && m.entries[k]!.index <= pos; k++) {
      const e = m.entries[k]!;
      if (e.index > this.log.snapIndex && this.log.term(e.index) !== e.term) {
        // Our confirmed history differs from the leader's: impossible for one leader's epoch.
        this.syncRefused++;
        return this.goLooking();
      }
    }
    if (k === m.entries.length) {
      if (!syncing) this.learnCommit(m.commit);
      return this.ack();
    }
    const first = m.entries[k]!;
    const prevIndex = first.index - 1;
    const prevTerm = k > 0 ? m.entries[k - 1]!.term : m.prevTerm;
    if (prevIndex > this.log.snapIndex && this.log.term(prevIndex) !== prevTerm) {
      this.syncRefused++;
      return this.goLooking();
    }
    for (; k < m.entries.length; k++) {
      let e = m.entries[k]!;
      if (this.witness && e.type === EntryType.Normal && e.data.length > 0) e = { ...e, data: EMPTY };
      if (this.lazy) {
        const t = this.log.term(e.index);
        if (t === e.term) {
          // Our own old entry is the leader's: keep it (it may be one we acknowledged).
          this.syncPos = e.index;
          continue;
        }
        if (t !== undefined) this.truncate(e.index);
        this.lazy = false;
      }
      if (e.index !== this.log.lastIndex + 1) {
        this.syncRefused++;
        return this.goLooking();
      }
      this.log.append(e);
      if (syncing) this.syncPos = e.index;
    }
    if (!syncing) this.learnCommit(m.commit);
    this.ack();
  }

  /** NEWLEADER: our history equals the leader's up to `index`; adopt its epoch. */
  private onNewLeader(index: Index, start: Index): void {
    if (this.stage === 'synced' || this.stage === 'broadcast') {
      this.send({ type: MsgType.ZabAckNewLeader, from: this.id, to: this.leaderId, term: this.epoch, index: this.log.lastIndex });
      return;
    }
    if (this.stage !== 'syncing') return this.nack(0);
    if (this.syncPos < index) return this.nack(this.syncPos);
    if ((index > this.log.snapIndex && this.log.term(index) !== this.epoch) || (start > this.log.snapIndex && this.log.term(start) !== this.epoch)) {
      this.syncRefused++;
      return this.goLooking();
    }
    if (this.lazy) {
      if (this.log.lastIndex > this.syncPos) this.truncate(this.syncPos + 1); // what the leader does not have goes
      this.lazy = false;
    }
    this.currentEpoch = this.epoch; // durable (with the history) before the ACK leaves
    this.epochStart = start;
    this.stage = 'synced';
    this.send({ type: MsgType.ZabAckNewLeader, from: this.id, to: this.leaderId, term: this.epoch, index: this.syncPos });
  }

  private learnCommit(c: Index): void {
    const n = Math.min(c, this.log.lastIndex);
    if (n > this.commit) this.commit = n;
    // The first commit at or past the epoch's start is ZooKeeper's UPTODATE.
    if (this.stage === 'synced' && this.commit >= this.epochStart) {
      this.stage = 'broadcast';
      this.settleVote(this.leaderId);
    }
  }

  /**
   * The vote we report to looking nodes, once in broadcast: (leader, its epoch), the
   * same on every member however each joined — ZooKeeper's updateElectionVote
   * (ZOOKEEPER-1732), so that a joining node sees a quorum agree.
   */
  private settleVote(leader: NodeId): void {
    const d = this.finalVote;
    const round = d?.round ?? this.fle.round;
    const state = d?.state ?? (leader === this.id ? ZabPeerState.Leading : this.state === 'observing' ? ZabPeerState.Observing : ZabPeerState.Following);
    this.finalVote = { vote: { leader, epoch: this.epoch, zxidTerm: this.epoch, zxidIndex: this.epochStart }, round, state };
  }

  private ack(): void {
    const index = this.stage === 'syncing' ? this.syncPos : this.log.lastIndex;
    const commit = this.stage === 'syncing' ? 0 : Math.min(this.commit, index);
    this.send({ type: MsgType.ZabAck, from: this.id, to: this.leaderId, term: this.epoch, index, ok: true, commit });
  }

  private nack(index: Index): void {
    this.send({ type: MsgType.ZabAck, from: this.id, to: this.leaderId, term: this.epoch, index, ok: false, commit: this.commit });
  }

  private truncate(from: Index): void {
    this.log.truncateFrom(from);
    this.stableIndex = Math.min(this.stableIndex, from - 1);
    this.unstableFrom = Math.min(this.unstableFrom, from);
    this.heldBack = Math.min(this.heldBack, from - 1);
    this.truncatedSinceReady = Math.min(this.truncatedSinceReady ?? from, from);
    // An acknowledgement not sent yet must not claim what we just dropped.
    this.msgs = this.msgs.filter((x) => !(x.type === MsgType.ZabAck && x.ok && x.index >= from));
  }

  // -------------------------------------------------------------------------
  // Leader side: discovery

  private becomeLeading(): void {
    this.state = 'leading';
    this.leaderId = this.id;
    this.leaderPhase = 'discovery';
    this.established = false;
    this.epochChosen = false;
    this.epoch = 0;
    this.epochStart = 0;
    this.infos.clear();
    this.peers.clear();
    this.selfSummary = { currentEpoch: this.currentEpoch, lastIndex: this.log.lastIndex, lastTerm: this.log.lastTerm, commit: this.commit };
    this.leadElapsed = 0;
    this.checkElapsed = 0;
    this.heartbeatElapsed = 0;
    this.readRound = 0;
    this.maybeChooseEpoch();
    // FOLLOWERINFOs that arrived while we were still electing, stepped now as if the
    // network had delivered them late (which it may do with any message: nothing here
    // rests on when one arrives). Their senders resend them every heartbeat anyway; this
    // only saves that wait — after a leader's will, most of a failover's time.
    const early = [...this.earlyInfos];
    this.earlyInfos.clear();
    for (const [from, term] of early) {
      if (this.state !== 'leading') break;
      this.stepLeader({ type: MsgType.ZabFollowerInfo, from, to: this.id, term });
    }
  }

  private loseLeadership(): void {
    this.transferee = NO_NODE;
    for (const r of this.pendingReads) this.failRead(r.ctx, r.from);
    this.pendingReads = [];
    this.readRoundWanted = false;
    this.peers.clear();
    this.infos.clear();
    this.established = false;
    this.epochChosen = false;
    this.needBcast = false;
    this.commitDirty = false;
  }

  /** Reads we forwarded to a leader we no longer follow: definitely not served here (503, retry). */
  private failForwarded(): void {
    for (const ctx of this.forwarded) this.failedReads.push(ctx);
    this.forwarded.clear();
  }

  private failRead(ctx: number, from: NodeId): void {
    if (from === this.id) this.failedReads.push(ctx);
    else this.send({ type: MsgType.ZabSyncReply, from: this.id, to: from, term: this.epoch, ctx, index: 0, ok: false });
  }

  private newPeer(id: NodeId): Peer {
    return {
      id, voting: this.voting.includes(id), witness: this.config.witnesses.includes(id), stage: 'info', summary: undefined, counted: false,
      mode: 'diff', startIndex: 0, startAcked: false, acked: 0, next: 1, inflight: [], newLeaderSent: false, newLeaderAt: 0, snap: undefined,
      heard: false, stall: 0, ackedAtRound: 0, knownCommit: 0, pongRound: 0, backAt: -1, commitSent: 0, wantCommit: 0,
    };
  }

  /** With FOLLOWERINFO from a quorum (us included): e = max(acceptedEpoch) + 1. */
  private maybeChooseEpoch(): void {
    if (this.epochChosen) return;
    let n = this.voting.includes(this.id) ? 1 : 0;
    let max = this.acceptedEpoch;
    for (const [id, acc] of this.infos) {
      if (acc > max) max = acc; // observers too: the epoch must be one they can accept
      if (this.voting.includes(id)) n++;
    }
    if (n < this.quorum) return;
    if (max + 1 > MAX_EPOCH) return this.goLooking(); // 2^32 epochs: not reachable in practice
    this.epoch = max + 1;
    this.epochChosen = true;
    this.acceptedEpoch = this.epoch; // durable before NEWEPOCH leaves; we count ourselves only then (advance)
    for (const id of this.infos.keys()) {
      this.peers.set(id, this.newPeer(id));
      this.send({ type: MsgType.ZabNewEpoch, from: this.id, to: id, term: this.epoch });
    }
    this.maybeStartSync();
  }

  private stepLeader(m: ZabMessage): void {
    switch (m.type) {
      case MsgType.ZabFollowerInfo:
        if (!this.epochChosen) {
          this.infos.set(m.from, m.term);
          return this.maybeChooseEpoch();
        }
        if (m.term > this.epoch && this.established) {
          // It accepted a later epoch than ours (from a prospective leader that failed):
          // it can never join our epoch. Hand over to a new election, whose epoch must
          // be above that one (ZooKeeper leaves such a member out until the leader
          // changes for another reason). We take its acceptedEpoch as ours — promising
          // not to accept anything up to it only narrows what we accept — so that any
          // quorum we are in picks a later epoch.
          this.acceptedEpoch = Math.max(this.acceptedEpoch, m.term);
          return this.goLooking();
        }
        // A follower sends FOLLOWERINFO only to begin a session: whatever we had with it is over.
        if (this.peers.get(m.from)?.stage !== 'info') this.peers.set(m.from, this.newPeer(m.from));
        this.send({ type: MsgType.ZabNewEpoch, from: this.id, to: m.from, term: this.epoch });
        return;
      case MsgType.ZabAckEpoch:
        if (!this.epochChosen || m.term !== this.epoch) {
          this.dropped++;
          return;
        }
        return this.onAckEpoch(m);
      case MsgType.ZabSyncReq:
        if (!this.established || m.term !== this.epoch || this.peers.get(m.from)?.stage !== 'synced') {
          return this.send({ type: MsgType.ZabSyncReply, from: this.id, to: m.from, term: m.term, ctx: m.ctx, index: 0, ok: false });
        }
        return this.leaderRead(m.ctx, m.from);
      default:
        break;
    }
    const p = this.peers.get(m.from);
    if (!p || !this.epochChosen || m.term !== this.epoch) {
      this.dropped++;
      return;
    }
    p.heard = true;
    switch (m.type) {
      case MsgType.ZabAck:
        return this.onAck(p, m);
      case MsgType.ZabAckNewLeader:
        return this.onAckNewLeader(p, m.index);
      case MsgType.ZabSnapAck:
        return this.onSnapAck(p, m.lastIndex, m.next, m.ok);
      case MsgType.ZabPong:
        if (m.ctx !== undefined && m.ctx > p.pongRound) {
          p.pongRound = m.ctx;
          this.checkReads();
        }
        return this.resendIfStalled(p);
      default:
        this.dropped++;
    }
  }

  private onAckEpoch(m: ZabAckEpoch): void {
    const summary: Summary = { currentEpoch: m.currentEpoch, lastIndex: m.lastIndex, lastTerm: m.lastTerm, commit: m.commit };
    let p = this.peers.get(m.from);
    if (!p) this.peers.set(m.from, (p = this.newPeer(m.from)));
    if (p.stage === 'syncing' || p.stage === 'synced') {
      const s = p.summary;
      if (s && s.currentEpoch === summary.currentEpoch && s.lastIndex === summary.lastIndex && s.lastTerm === summary.lastTerm && s.commit === summary.commit) {
        return; // a duplicate of the ACKEPOCH this session began with
      }
      // The follower began a new session (it restarted, or went back to election and returned).
      const fresh = this.newPeer(m.from);
      this.peers.set(m.from, fresh);
      p = fresh;
    }
    p.summary = summary;
    p.counted = m.ok && p.voting;
    p.stage = 'epoch-acked';
    if (this.leaderPhase === 'discovery') {
      if (p.counted && moreRecent(summary, this.selfSummary)) {
        // ZooKeeper's waitForEpochAck: a follower of our quorum has a more recent
        // history than ours; we must not become its leader. Elect again.
        return this.goLooking();
      }
      return this.maybeStartSync();
    }
    this.startSync(p);
  }

  /** With ACKEPOCH from a quorum (us included once our acceptedEpoch is durable): synchronization. */
  private maybeStartSync(): void {
    if (this.state !== 'leading' || this.leaderPhase !== 'discovery' || !this.epochChosen) return;
    if (this.prevHard.term !== this.epoch) return; // our own acceptedEpoch is not durable yet
    let n = this.voting.includes(this.id) ? 1 : 0;
    for (const p of this.peers.values()) if (p.stage === 'epoch-acked' && p.counted) n++;
    if (n < this.quorum) return;
    this.leaderPhase = 'synchronization'; // one initLimit covers discovery and synchronization, as in ZooKeeper
    // Our history is the initial history of the epoch; its start entry is zxid (epoch, 0).
    this.currentEpoch = this.epoch;
    this.epochStart = this.log.lastIndex + 1;
    this.log.append({ term: this.epoch, index: this.epochStart, type: EntryType.Noop, data: EMPTY });
    for (const p of this.peers.values()) if (p.stage === 'epoch-acked') this.startSync(p);
  }

  // -------------------------------------------------------------------------
  // Leader side: synchronization

  /**
   * Where the follower's history and ours agree (ZooKeeper's LearnerHandler.syncFollower):
   *  - its last entry is in our history: DIFF from there;
   *  - we hold entries of its last epoch, ending before its last entry: TRUNC to our last
   *    one of that epoch (the run of an epoch starts at the same start entry everywhere);
   *  - we hold none of its last epoch: TRUNC to its commit index (committed entries are
   *    in our history); what lies between is compared lazily by the follower;
   *  - the point is below our snapshot: SNAP.
   */
  private syncPoint(s: Summary): { index: Index; mode: 'diff' | 'trunc' | 'snap' } {
    let index: Index;
    let mode: 'diff' | 'trunc' | 'snap';
    if (s.lastIndex >= this.log.snapIndex && s.lastIndex <= this.log.lastIndex && this.log.term(s.lastIndex) === s.lastTerm) {
      index = s.lastIndex;
      mode = 'diff';
    } else {
      const end = this.log.runEnd(s.lastTerm);
      index = end !== undefined && end < s.lastIndex ? end : s.commit;
      index = Math.min(index, this.log.lastIndex);
      mode = 'trunc';
    }
    if (index < this.log.snapIndex) mode = 'snap';
    return { index, mode };
  }

  private startSync(p: Peer): void {
    if (this.leaderPhase === 'discovery' || !p.summary) return;
    const { index, mode } = this.syncPoint(p.summary);
    p.stage = 'syncing';
    p.mode = mode;
    p.startAcked = false;
    p.acked = 0;
    p.inflight = [];
    p.newLeaderSent = false;
    p.newLeaderAt = 0;
    p.snap = undefined;
    p.stall = 0;
    p.ackedAtRound = 0;
    if (mode === 'snap') {
      p.startIndex = this.log.snapIndex;
      p.next = this.log.snapIndex + 1;
      this.startSnapshot(p);
      return;
    }
    p.startIndex = index;
    p.next = index + 1;
    this.sendStart(p);
    this.sendProposals(p);
  }

  private sendStart(p: Peer): void {
    if (p.startIndex < this.log.snapIndex) {
      // We compacted past the start point since: the learner needs the snapshot now.
      p.next = this.log.snapIndex + 1;
      return this.startSnapshot(p);
    }
    const type = p.mode === 'diff' ? MsgType.ZabDiff : MsgType.ZabTrunc;
    this.send({ type, from: this.id, to: p.id, term: this.epoch, index: p.startIndex, indexTerm: this.log.term(p.startIndex)! });
  }

  private startSnapshot(p: Peer): void {
    if (!this.snapshot) throw new Error(`zab: learner ${p.id} needs entries before ${this.log.firstIndex} but this node holds no snapshot`);
    const data = p.witness ? EMPTY : this.snapshot.data;
    p.mode = 'snap';
    p.startIndex = this.snapshot.meta.index;
    p.inflight = [];
    p.stall = 0;
    p.snap = { meta: this.snapshot.meta, data, chunks: Math.max(1, Math.ceil(data.length / this.ticks.chunkBytes)), sentChunks: 0, ackedChunks: 0 };
    this.sendSnapChunks(p);
  }

  private sendSnapChunks(p: Peer): void {
    const s = p.snap;
    if (!s) return;
    const cb = this.ticks.chunkBytes;
    while (s.sentChunks < s.chunks && s.sentChunks - s.ackedChunks < this.options.maxInflight) {
      const off = s.sentChunks * cb;
      const end = Math.min(off + cb, s.data.length);
      this.send({
        type: MsgType.ZabSnap, from: this.id, to: p.id, term: this.epoch, lastIndex: s.meta.index, lastTerm: s.meta.term,
        offset: off, total: s.data.length, data: s.data.subarray(off, end), done: s.sentChunks === s.chunks - 1, config: copyConfig(s.meta.config),
      });
      s.sentChunks++;
    }
  }

  private onSnapAck(p: Peer, lastIndex: Index, next: number, ok: boolean): void {
    const s = p.snap;
    // A learner in broadcast gets a snapshot too, when it fell behind what we compacted.
    if ((p.stage !== 'syncing' && p.stage !== 'synced') || !s || lastIndex !== s.meta.index) return;
    const cb = this.ticks.chunkBytes;
    p.stall = 0;
    if (!ok) {
      s.ackedChunks = Math.min(Math.floor(next / cb), s.chunks - 1);
      s.sentChunks = s.ackedChunks;
      return this.sendSnapChunks(p);
    }
    if (next === s.data.length) {
      // Installed (durably: the answer left after the follower's Ready was persisted).
      p.snap = undefined;
      p.startAcked = true;
      p.acked = Math.max(p.acked, s.meta.index);
      p.next = Math.max(p.next, p.acked + 1);
      return this.sendProposals(p);
    }
    s.ackedChunks = Math.max(s.ackedChunks, Math.floor(next / cb));
    this.sendSnapChunks(p);
  }

  /** Sends what the learner lacks, up to maxInflight messages, then NEWLEADER when all is out. */
  private sendProposals(p: Peer): void {
    if (p.stage !== 'syncing' && p.stage !== 'synced') return;
    if (p.snap) return this.sendSnapChunks(p);
    for (let i = 0; i < this.options.maxInflight; i++) if (!this.sendOneProposal(p)) break;
    if (p.stage === 'syncing' && !p.newLeaderSent && p.next > this.log.lastIndex && this.leaderPhase !== 'discovery') {
      p.newLeaderSent = true;
      p.newLeaderAt = this.log.lastIndex;
      this.send({ type: MsgType.ZabNewLeader, from: this.id, to: p.id, term: this.epoch, index: p.newLeaderAt, start: this.epochStart });
    }
  }

  private sendOneProposal(p: Peer): boolean {
    if (p.inflight.length >= this.options.maxInflight || p.next > this.log.lastIndex) return false;
    const prevIndex = p.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      this.startSnapshot(p);
      return false;
    }
    const entries: Entry[] = [];
    let budget = this.options.maxMsgBytes - MSG_OVERHEAD_BYTES;
    for (let i = p.next; i <= this.log.lastIndex && entries.length < this.options.maxEntriesPerMsg; i++) {
      let e = this.log.entry(i)!;
      if (p.witness && e.type === EntryType.Normal && e.data.length > 0) e = { ...e, data: EMPTY };
      const size = e.data.length + ENTRY_OVERHEAD_BYTES;
      if (size > budget && entries.length > 0) break;
      budget -= size;
      entries.push(e);
    }
    this.send({ type: MsgType.ZabProposal, from: this.id, to: p.id, term: this.epoch, prevIndex, prevTerm, commit: this.commit, entries });
    if (p.stage === 'synced') p.commitSent = Math.max(p.commitSent, this.commit);
    const last = entries[entries.length - 1]!.index;
    p.next = last + 1;
    p.inflight.push(last);
    return true;
  }

  private onAck(p: Peer, m: ZabAck): void {
    if (p.stage !== 'syncing' && p.stage !== 'synced') return;
    if (m.ok) {
      if (p.stage === 'synced' && m.commit > p.knownCommit) p.knownCommit = m.commit;
      if (p.stage === 'syncing' && m.index >= p.startIndex) p.startAcked = true;
      if (m.index <= p.acked && p.stage === 'syncing') this.resendIfStalled(p); // an answer to a ping: no progress
      if (m.index > p.acked && (p.startAcked || p.stage === 'synced')) {
        p.acked = m.index;
        p.stall = 0;
        const inf = p.inflight;
        let kept = 0;
        for (let r = 0; r < inf.length; r++) if (inf[r]! > m.index) inf[kept++] = inf[r]!;
        inf.length = kept;
        if (p.next <= p.acked) p.next = p.acked + 1;
        if (p.stage === 'synced') this.maybeCommit();
      }
      this.sendProposals(p);
      if (p.wantCommit > 0) this.pushCommit(p);
      return;
    }
    // A report that our message did not fit: no session yet, or a gap.
    if (p.stage === 'syncing' && !p.startAcked && m.index <= p.startIndex) return this.goBack(p, true);
    if (m.index < Math.max(p.acked, p.startIndex)) return; // stale: it reported more since
    p.acked = Math.max(p.acked, m.index);
    this.goBack(p, false);
  }

  /** Re-sends from the last point the learner confirmed (go-back-N), at most once per tick. */
  private goBack(p: Peer, restart: boolean): void {
    if (p.backAt === this.now) return;
    p.backAt = this.now;
    p.inflight = [];
    p.next = Math.max(p.acked, p.startIndex) + 1;
    p.newLeaderSent = false;
    if (p.mode === 'snap' && !p.startAcked) {
      // The snapshot never completed: start it over.
      return this.startSnapshot(p);
    }
    if (restart && p.mode !== 'snap') this.sendStart(p);
    this.sendProposals(p);
  }

  private onAckNewLeader(p: Peer, index: Index): void {
    if (p.stage === 'synced') {
      if (index > p.acked) p.acked = index;
      return;
    }
    if (p.stage !== 'syncing' || !p.newLeaderSent || index < p.newLeaderAt) return;
    p.stage = 'synced';
    p.acked = Math.max(p.acked, index);
    p.inflight = p.inflight.filter((x) => x > p.acked);
    p.stall = 0;
    if (this.leaderPhase === 'synchronization') return this.maybeEstablish();
    if (this.leaderPhase === 'broadcast') {
      this.maybeCommit();
      this.sendCommit(p); // UPTODATE for a follower joining an established leader
      this.sendProposals(p);
    }
  }

  /** Established once a quorum (us included, when our history and currentEpoch are durable) acknowledged NEWLEADER. */
  private maybeEstablish(): void {
    if (this.state !== 'leading' || this.leaderPhase !== 'synchronization') return;
    const self = this.prevHard.vote === this.epoch && this.stableIndex >= this.epochStart && this.voting.includes(this.id);
    let n = self ? 1 : 0;
    for (const p of this.peers.values()) if (p.voting && p.stage === 'synced') n++;
    const bug = this.options.testingBroadcastBeforeQuorumSync && self;
    if (n < this.quorum && !bug) return;
    this.leaderPhase = 'broadcast';
    this.established = true;
    this.settleVote(this.id);
    this.checkElapsed = 0;
    this.heartbeatElapsed = 0;
    for (const p of this.peers.values()) p.heard = false;
    if (bug && n < this.quorum) {
      // The planted bug: deliver the initial history without a quorum holding it.
      this.commit = Math.max(this.commit, this.epochStart);
      this.commitDirty = true;
    }
    this.maybeCommit();
    for (const p of this.peers.values()) if (p.stage === 'synced') this.sendCommit(p);
  }

  // -------------------------------------------------------------------------
  // Leader side: broadcast

  /** The highest index a quorum of synchronized voters holds durably (us: what advance() confirmed). */
  private maybeCommit(): void {
    if (this.state !== 'leading' || this.leaderPhase !== 'broadcast') return;
    const acks = this.scratch;
    acks.length = 0;
    // The planted bug testingCountObservers counts learners' acknowledgements too.
    for (const id of this.options.testingCountObservers ? allMembers(this.config) : this.voting) {
      if (id === this.id) acks.push(this.stableIndex);
      else {
        const p = this.peers.get(id);
        acks.push(p && p.stage === 'synced' ? p.acked : 0);
      }
    }
    const c = kthLargest(acks, this.quorum, 0);
    if (c > this.commit) {
      this.commit = c;
      this.commitDirty = true;
    }
  }

  private sendCommit(p: Peer): void {
    const c = Math.min(this.commit, p.acked);
    if (c <= 0) return;
    this.send({ type: MsgType.ZabCommit, from: this.id, to: p.id, term: this.epoch, index: c });
    p.commitSent = Math.max(p.commitSent, c);
  }

  private tickLeader(): void {
    this.leadElapsed++;
    // A transferee that did not catch up within initLimit: drop the hand-over, take proposals again.
    if (this.transferee !== NO_NODE && ++this.transferElapsed >= this.ticks.initLimit) this.transferee = NO_NODE;
    if (this.leaderPhase !== 'broadcast') {
      if (this.leadElapsed >= this.ticks.initLimit) return this.goLooking();
    } else if (++this.checkElapsed >= this.ticks.syncLimit) {
      this.checkElapsed = 0;
      // ZooKeeper's leader: "not sufficient followers synced" — give up.
      let n = this.voting.includes(this.id) ? 1 : 0;
      for (const p of this.peers.values()) if (p.voting && p.stage === 'synced' && p.heard) n++;
      for (const p of this.peers.values()) p.heard = false;
      if (n < this.quorum) return this.goLooking();
    }
    if (++this.heartbeatElapsed < this.ticks.heartbeat) return;
    this.heartbeatElapsed = 0;
    for (const p of this.peers.values()) this.checkStall(p);
    if (this.pendingReads.length > 0) this.readRoundWanted = true; // a round was lost: another one
    // Pings also keep synchronizing learners with us (ZooKeeper pings learners throughout).
    if (this.leaderPhase !== 'discovery') this.bcastPing(this.leaderPhase === 'broadcast' ? this.nextReadCtx() : undefined);
  }

  /**
   * An answer to a ping that shows no progress since the last heartbeat round while we
   * have something outstanding: the learner lost it, re-send now (Raft re-sends on a
   * heartbeat reply likewise) rather than wait for the stall count.
   */
  private resendIfStalled(p: Peer): void {
    if (p.snap) return;
    const outstanding = p.next - 1 > p.acked || (p.stage === 'syncing' && (!p.startAcked || (p.newLeaderSent && p.next > this.log.lastIndex)));
    if (outstanding && p.acked === p.ackedAtRound && p.stall > 0) this.goBack(p, p.stage === 'syncing' && !p.startAcked);
  }

  /** Once per heartbeat: recovers lost synchronization messages, proposals and snapshot chunks. */
  private checkStall(p: Peer): void {
    if (p.stage !== 'syncing' && p.stage !== 'synced') return;
    const outstanding = p.snap !== undefined || p.next - 1 > p.acked || (p.stage === 'syncing' && (!p.startAcked || p.newLeaderSent));
    if (outstanding && p.acked === p.ackedAtRound) {
      if (++p.stall >= 3) {
        p.stall = 0;
        if (p.snap) {
          p.snap.sentChunks = p.snap.ackedChunks;
          this.sendSnapChunks(p);
        } else {
          p.backAt = -1;
          this.goBack(p, p.stage === 'syncing' && !p.startAcked);
        }
      }
    } else {
      p.stall = 0;
    }
    p.ackedAtRound = p.acked;
    // A commit the follower has not confirmed (a lost COMMIT): send it again.
    if (p.stage === 'synced' && this.leaderPhase === 'broadcast' && p.knownCommit < Math.min(this.commit, p.acked)) this.sendCommit(p);
  }

  /** A new round when a read waits for one, or on every ping with `heartbeatRounds` (the runtime's lease); else none. */
  private nextReadCtx(): number | undefined {
    if (!this.readRoundWanted && !this.options.heartbeatRounds) return undefined;
    this.readRoundWanted = false;
    return ++this.readRound;
  }

  private bcastPing(ctx: number | undefined): void {
    this.heartbeatElapsed = 0;
    for (const p of this.peers.values()) {
      if (p.stage === 'synced' || p.stage === 'syncing') this.send({ type: MsgType.ZabPing, from: this.id, to: p.id, term: this.epoch, ctx });
    }
    if (ctx !== undefined) this.checkReads();
  }

  /** Sends what accumulated since the last ready(): proposals, commits, a read round. */
  private flush(): void {
    if (this.state !== 'leading' || !this.epochChosen) return;
    if (this.readRoundWanted && this.leaderPhase === 'broadcast') this.bcastPing(this.nextReadCtx());
    if (this.needBcast) {
      this.needBcast = false;
      const commitBefore = this.commit;
      for (const p of this.peers.values()) this.sendProposals(p);
      this.maybeCommit(); // a single voter commits on its own
      if (this.commit !== commitBefore) this.commitDirty = true;
    }
    if (this.commitDirty) {
      // COMMIT where no proposal carrying the new commit went out in this batch.
      this.commitDirty = false;
      for (const p of this.peers.values()) if (p.stage === 'synced' && p.commitSent < Math.min(this.commit, p.acked)) this.sendCommit(p);
    }
  }

  // -------------------------------------------------------------------------
  // Reads

  private leaderRead(ctx: number, from: NodeId): void {
    this.pendingReads.push({ ctx, from, index: this.commit, round: this.readRound + 1 });
    this.readRoundWanted = true;
    this.checkReads();
  }

  private serveRead(ctx: number, from: NodeId, index: Index): void {
    if (from === this.id) return void this.readStates.push({ ctx, index });
    this.notifyCommit(from, index); // first: the COMMIT then arrives before the answer
    this.send({ type: MsgType.ZabSyncReply, from: this.id, to: from, term: this.epoch, ctx, index, ok: true });
  }

  /**
   * Peer `to` acts on what we tell it only once it has applied `index`: a read's SYNC
   * answer (above), or from the runtime the answer to a write it forwarded. A COMMIT
   * goes to a follower only up to what it acknowledged (sendCommit); one whose ACK came
   * after a quorum's heard of the commit only with the next proposal or ping (p90 103 ms
   * at a 100 ms heartbeat, for a read right after a write). It gets the COMMIT now, or at
   * its ACK if that is still on the way (src/engine/commit-push.ts).
   */
  notifyCommit(to: NodeId, index: Index): void {
    if (!this.isLeader || index > this.commit) return;
    const p = this.peers.get(to);
    if (p && p.stage === 'synced' && wantCommit(p, index)) this.pushCommit(p);
  }

  private pushCommit(p: Peer): void {
    if (commitToPush(p, Math.max(p.commitSent, p.knownCommit), Math.min(this.commit, p.acked)) > 0) this.sendCommit(p);
  }

  /** Serves reads whose ping round a quorum of synchronized voters (us included) answered. */
  private checkReads(): void {
    if (!this.isLeader || this.pendingReads.length === 0) return;
    const rounds = this.scratch;
    rounds.length = 0;
    for (const id of this.voting) {
      if (id === this.id) rounds.push(Number.MAX_SAFE_INTEGER);
      else {
        const p = this.peers.get(id);
        rounds.push(p && p.stage === 'synced' ? p.pongRound : 0);
      }
    }
    const confirmed = Math.min(kthLargest(rounds, this.quorum, 0), this.readRound);
    let k = 0;
    while (k < this.pendingReads.length && this.pendingReads[k]!.round <= confirmed) {
      const r = this.pendingReads[k]!;
      this.serveRead(r.ctx, r.from, r.index);
      k++;
    }
    if (k > 0) this.pendingReads = this.pendingReads.slice(k);
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }
}
