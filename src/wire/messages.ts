/**
 * Every message the engines exchange, as in-memory values.
 *
 * This file is the contract between the engines (src/raft, src/bully, src/paxos, src/zab, src/pbft), the wire
 * codec (src/wire/codec.ts) and the runtimes. Engines produce and consume these
 * objects; only the codec knows their bytes. The envelope fields that protect a
 * frame on the wire (cluster, bootId, seq, tag) are added by the codec, not here.
 *
 * Wire layout (docs/wire.md): one CBOR array
 *   [version, type, cluster, from, to, term, bootId, seq, ...body]
 * followed by a 16-byte truncated HMAC-SHA256 tag.
 */
import type { Index, NodeId, Term } from '../types.ts';

export enum MsgType {
  // Raft
  PreVote = 1,
  PreVoteReply = 2,
  Vote = 3,
  VoteReply = 4,
  Append = 5,
  AppendReply = 6,
  Heartbeat = 7,
  HeartbeatReply = 8,
  Snapshot = 9,
  SnapshotReply = 10,
  TimeoutNow = 11,
  ReadIndex = 12,
  ReadIndexReply = 13,
  // Bully
  BullyElection = 20,
  BullyAnswer = 21,
  BullyCoordinator = 22,
  // Client requests forwarded from a follower to the leader, and the answers.
  ClientRequest = 30,
  ClientReply = 31,
  // Multi-Paxos (src/paxos/multi.ts; 40–49 reserved). It also sends Heartbeat,
  // HeartbeatReply, TimeoutNow, ReadIndex and ReadIndexReply above, whose bodies mean
  // the same for any leader-based log engine; the heartbeat keeps its one-byte type
  // number (< 24) so that an idle Paxos heartbeat fits the 32-byte budget too.
  PaxosPrepare = 40,
  PaxosPromise = 41,
  PaxosAccept = 42,
  PaxosAccepted = 43,
  PaxosSnapshot = 44,
  PaxosSnapshotReply = 45,
  // ZAB (src/zab/): 50–69. `term` is the election round for ZabNotification, the
  // follower's acceptedEpoch for ZabFollowerInfo, and the epoch of the leadership
  // for every other ZAB message.
  /** Fast Leader Election vote ("notification"), exchanged among all voters. */
  ZabNotification = 50,
  /** Discovery: a follower tells its prospective leader its acceptedEpoch (FOLLOWERINFO / CEPOCH). */
  ZabFollowerInfo = 51,
  /** Discovery: the prospective leader proposes the new epoch (LEADERINFO / NEWEPOCH). */
  ZabNewEpoch = 52,
  /** Discovery: a follower accepts the epoch and reports its history (ACKEPOCH). */
  ZabAckEpoch = 53,
  /** Synchronization: "your history is a prefix of mine up to index" (DIFF). */
  ZabDiff = 54,
  /** Synchronization: "your history agrees with mine up to index; drop what differs after it" (TRUNC). */
  ZabTrunc = 55,
  /** Synchronization: a chunk of the leader's snapshot (SNAP). */
  ZabSnap = 56,
  ZabSnapAck = 57,
  /** Transactions, in zxid order: the rest of a DIFF during synchronization, PROPOSAL during broadcast. */
  ZabProposal = 58,
  /** Cumulative acknowledgement: the sender holds the leader's history up to index, durably. */
  ZabAck = 59,
  /** Synchronization ends: "my history ends at index; set currentEpoch" (NEWLEADER). */
  ZabNewLeader = 60,
  ZabAckNewLeader = 61,
  /** Everything up to index is committed (COMMIT; the first one is ZooKeeper's UPTODATE). */
  ZabCommit = 62,
  /** Leader heartbeat with a read round (PING). */
  ZabPing = 63,
  ZabPong = 64,
  /** A follower asks the leader for a linearizable read point (ZooKeeper's sync). */
  ZabSyncReq = 65,
  ZabSyncReply = 66,
  // PBFT (Castro & Liskov, OSDI 1999 / TOCS 2002; src/pbft). `term` is the view.
  PbftRequest = 70,
  PbftPrePrepare = 71,
  PbftPrepare = 72,
  PbftCommit = 73,
  PbftCheckpoint = 74,
  PbftViewChange = 75,
  PbftNewView = 76,
  PbftStatus = 77,
  PbftCommitted = 78,
  PbftFetchState = 79,
  PbftState = 80,
  PbftFetchRequest = 81,
  PbftSuspect = 82,
}

/**
 * The one engine a message type belongs to, or undefined for the types several engines
 * share (Heartbeat, HeartbeatReply, TimeoutNow, ReadIndex, ReadIndexReply: Raft and
 * Paxos) and the forwarded client requests. A node that receives another engine's type
 * is a member configured with another `engine:`; the runtime drops those and says so.
 */
export function engineOfType(t: MsgType): 'raft' | 'bully' | 'paxos' | 'zab' | 'pbft' | undefined {
  if ((t >= MsgType.PreVote && t <= MsgType.AppendReply) || t === MsgType.Snapshot || t === MsgType.SnapshotReply) return 'raft';
  if (t >= MsgType.BullyElection && t <= MsgType.BullyCoordinator) return 'bully';
  if (t >= MsgType.PaxosPrepare && t <= MsgType.PaxosSnapshotReply) return 'paxos';
  if (t >= MsgType.ZabNotification && t <= MsgType.ZabSyncReply) return 'zab';
  if (t >= MsgType.PbftRequest && t <= MsgType.PbftSuspect) return 'pbft';
  return undefined;
}

/**
 * Whether an engine named `engine` sends and takes messages of type `t`: its own types,
 * the types Raft and Paxos share (for those two), and forwarded client requests (all).
 * A message that fails this comes from a member configured with another engine.
 */
export function typeBelongsTo(t: MsgType, engine: 'raft' | 'bully' | 'paxos' | 'zab' | 'pbft'): boolean {
  const own = engineOfType(t);
  if (own !== undefined) return own === engine;
  if (t === MsgType.ClientRequest || t === MsgType.ClientReply) return true;
  return engine === 'raft' || engine === 'paxos';
}

export enum EntryType {
  /** Application command for the replicated state machine. */
  Normal = 0,
  /** Empty entry a new leader appends to commit entries of earlier terms. */
  Noop = 1,
  /** Membership change (data = encoded configuration change). */
  Config = 2,
}

export interface Entry {
  term: Term;
  index: Index;
  type: EntryType;
  data: Uint8Array;
}

interface Base {
  from: NodeId;
  to: NodeId;
  term: Term;
}

export interface PreVote extends Base { type: MsgType.PreVote; lastIndex: Index; lastTerm: Term }
export interface PreVoteReply extends Base { type: MsgType.PreVoteReply; granted: boolean }
export interface Vote extends Base {
  type: MsgType.Vote;
  lastIndex: Index;
  lastTerm: Term;
  /** Set when campaigning because of TimeoutNow: voters skip the leader-stickiness check. */
  transfer: boolean;
}
export interface VoteReply extends Base { type: MsgType.VoteReply; granted: boolean }

export interface Append extends Base {
  type: MsgType.Append;
  prevIndex: Index;
  prevTerm: Term;
  entries: Entry[];
  commit: Index;
}
export interface AppendReply extends Base {
  type: MsgType.AppendReply;
  success: boolean;
  /** On success: the follower's last matching index. On reject: the rejected prevIndex. */
  index: Index;
  /** Conflict hints for fast backtracking (0 when absent). */
  conflictTerm: Term;
  conflictIndex: Index;
}
export interface Heartbeat extends Base {
  type: MsgType.Heartbeat;
  /** Leader commit (min with the follower's match); omitted on the wire when the follower is known to have it. */
  commit: Index | undefined;
  /** ReadIndex round context; 0 when none. */
  ctx: number;
}
export interface HeartbeatReply extends Base {
  type: MsgType.HeartbeatReply;
  ctx: number;
  /**
   * The follower's commit index, present only when the heartbeat carried a commit
   * (so that idle replies stay small). Lets the leader know the follower has it and
   * omit commit from later heartbeats (added by the Raft engine).
   */
  commit?: Index | undefined;
}

export interface Snapshot extends Base {
  type: MsgType.Snapshot;
  lastIndex: Index;
  lastTerm: Term;
  /** Byte offset of this chunk in the snapshot. */
  offset: number;
  /** Total snapshot size in bytes. */
  total: number;
  data: Uint8Array;
  done: boolean;
  /**
   * Cluster membership as of `lastIndex` (a follower installing the snapshot learns
   * the configuration from it; thesis §5.1). Sent on every chunk; a few bytes.
   */
  config: MemberConfig;
}

/**
 * Cluster membership (Raft thesis §4.1). `voters` and `witnesses` vote and count
 * toward quorums; witnesses keep only log metadata and never lead; learners receive
 * the log but do not vote. A node id appears in at most one list.
 */
export interface MemberConfig {
  voters: NodeId[];
  learners: NodeId[];
  witnesses: NodeId[];
}
export interface SnapshotReply extends Base {
  type: MsgType.SnapshotReply;
  lastIndex: Index;
  /** Next offset the follower expects; equals total when installed. */
  next: number;
  /** False if the follower rejected the chunk (wrong offset/snapshot); leader restarts from `next`. */
  ok: boolean;
}
export interface TimeoutNow extends Base { type: MsgType.TimeoutNow }
export interface ReadIndex extends Base { type: MsgType.ReadIndex; ctx: number }
export interface ReadIndexReply extends Base { type: MsgType.ReadIndexReply; ctx: number; index: Index; ok: boolean }

export interface BullyElection extends Base { type: MsgType.BullyElection; priority: number }
export interface BullyAnswer extends Base { type: MsgType.BullyAnswer; priority: number }
export interface BullyCoordinator extends Base { type: MsgType.BullyCoordinator; priority: number }

export interface ClientRequest extends Base { type: MsgType.ClientRequest; reqId: number; body: Uint8Array }
export interface ClientReply extends Base {
  type: MsgType.ClientReply;
  reqId: number;
  /** HTTP-like status of the forwarded request (200, 409, 503, 504, ...). */
  status: number;
  body: Uint8Array;
}

// ---------------------------------------------------------------------------
// Multi-Paxos (src/paxos/multi.ts). A message's `term` is a ballot
// (src/paxos/ballot.ts: round × 256 + node id): the sender's ballot in a Prepare,
// Accept or Heartbeat, the acceptor's promised ballot in an answer.

/**
 * One slot's value as an acceptor holds it: accepted at `ballot`, first proposed
 * (into this slot) by the leader of ballot `origin` ≤ ballot. A value keeps its origin
 * when a later leader proposes it again, so (index, origin) names one value.
 */
export interface PaxosSlot {
  index: Index;
  ballot: Term;
  origin: Term;
  type: EntryType;
  data: Uint8Array;
}

/**
 * Phase 1a: the sender asks for a promise of ballot `term` and for every value the
 * acceptor holds from slot `lo` on. `probe`: only ask whether the acceptor would
 * promise (a pre-prepare, which changes nothing); `transfer`: the sender campaigns on
 * the leader's request (TimeoutNow), so acceptors answer although they hear a leader.
 */
export interface PaxosPrepare extends Base { type: MsgType.PaxosPrepare; lo: Index; probe: boolean; transfer: boolean }
/**
 * Phase 1b. ok: the acceptor promised `term` (or, for a probe, would); `slots` is a
 * page of its values from `first` = the asked `lo` on, `last` its last slot (more
 * pages follow on request when `first + slots.length ≤ last`), `commit` the end of the
 * prefix it knows chosen. Not ok: `term` is its higher promise, or — when `snap` ≥ the
 * asked `lo` — it compacted the slots the candidate lacks (it sends a snapshot instead).
 */
export interface PaxosPromise extends Base {
  type: MsgType.PaxosPromise;
  ok: boolean;
  probe: boolean;
  commit: Index;
  last: Index;
  snap: Index;
  first: Index;
  slots: PaxosSlot[];
}
/** Phase 2a for slots first.., all at ballot `term`; `commit` is the leader's commit index. */
export interface PaxosAccept extends Base { type: MsgType.PaxosAccept; first: Index; commit: Index; slots: PaxosSlot[] }
/**
 * Phase 2b. ok: the acceptor holds ballot `term`'s values (or chosen ones) for every
 * slot up to `index`. Not ok: `term` is a higher promise, or (same ballot) the accept
 * started past `index` + 1, the end of what it holds from this leader.
 */
export interface PaxosAccepted extends Base { type: MsgType.PaxosAccepted; ok: boolean; index: Index }
/** A snapshot chunk, as Snapshot above: sent by the leader to a lagging replica, or by an acceptor to a lagging candidate. */
export interface PaxosSnapshot extends Base {
  type: MsgType.PaxosSnapshot;
  lastIndex: Index;
  lastTerm: Term;
  offset: number;
  total: number;
  data: Uint8Array;
  done: boolean;
  config: MemberConfig;
}
export interface PaxosSnapshotReply extends Base { type: MsgType.PaxosSnapshotReply; lastIndex: Index; next: number; ok: boolean }
// PBFT. `term` is the sender's view (for VIEW-CHANGE the view it asks for, for
// NEW-VIEW the view it starts). Signatures (`sig`) are the signer's over a canonical
// encoding of the message's content without envelope or destination
// (src/pbft/encoding.ts), so a certificate can be forwarded and checked by anyone;
// `digest` is SHA-256 (32 bytes); the null request's digest is 32 zero bytes. The
// nested structures (requests, certificates, VIEW-CHANGE and NEW-VIEW contents) travel
// as byte strings with their own strict decoders in src/pbft/encoding.ts.

/** A client request, signed by its origin replica: `request` = encoded [origin, reqNo, kind, op, sig]. */
export interface PbftRequest extends Base { type: MsgType.PbftRequest; request: Uint8Array }
/**
 * The primary of view `term` assigns sequence number `seq` to the request with
 * `digest`; `sig` is the primary's. `request` is the encoded request, or empty for
 * the null request (digest all zeros) or when re-sent without its body.
 */
export interface PbftPrePrepare extends Base { type: MsgType.PbftPrePrepare; seq: Index; digest: Uint8Array; sig: Uint8Array; request: Uint8Array }
/** A backup accepted the PRE-PREPARE (term, seq, digest). */
export interface PbftPrepare extends Base { type: MsgType.PbftPrepare; seq: Index; digest: Uint8Array; sig: Uint8Array }
/** The sender is prepared for (term, seq, digest) and has made its certificate durable. */
export interface PbftCommit extends Base { type: MsgType.PbftCommit; seq: Index; digest: Uint8Array; sig: Uint8Array }
/** `replica` signed that its state after executing `seq` has digest `digest` (forwardable: `replica` may differ from `from`). */
export interface PbftCheckpoint extends Base { type: MsgType.PbftCheckpoint; replica: NodeId; seq: Index; digest: Uint8Array; sig: Uint8Array }
/** `payload` = encoded VIEW-CHANGE for view `term` (it names its replica; forwardable), `sig` that replica's. */
export interface PbftViewChange extends Base { type: MsgType.PbftViewChange; payload: Uint8Array; sig: Uint8Array }
/** `payload` = encoded NEW-VIEW for view `term`, `sig` the primary's of that view (forwardable). */
export interface PbftNewView extends Base { type: MsgType.PbftNewView; payload: Uint8Array; sig: Uint8Array }
/**
 * Periodic progress report (unsigned: it only makes peers retransmit): the sender is
 * in view `term`, `normal` = that view is installed (false: changing to it), it has
 * executed up to `executed` and its stable checkpoint is `stable`.
 */
export interface PbftStatus extends Base { type: MsgType.PbftStatus; normal: boolean; executed: Index; stable: Index }
/**
 * A commit certificate, for a replica that fell behind: 2f + 1 COMMITs of view
 * `term` for (seq, digest of `request`), `commits` = encoded [replica, sig, ...].
 * `request` empty = the null request.
 */
export interface PbftCommitted extends Base { type: MsgType.PbftCommitted; seq: Index; request: Uint8Array; commits: Uint8Array }
/** Asks for the sender's stable checkpoint at `seq` or later (state transfer). */
export interface PbftFetchState extends Base { type: MsgType.PbftFetchState; seq: Index }
/**
 * One chunk of a stable checkpoint: the application's snapshot bytes
 * [offset, offset + data.length) of `total`, the engine's execution state `exec`
 * and the checkpoint's proof (2f + 1 CHECKPOINTs, encoded [replica, sig, ...]) on
 * every chunk, so each chunk can be checked against the same digest.
 */
export interface PbftState extends Base {
  type: MsgType.PbftState;
  seq: Index;
  proof: Uint8Array;
  exec: Uint8Array;
  offset: number;
  total: number;
  data: Uint8Array;
}

/** Asks for the request with `digest` (at `seq`): a replica prepares only requests it holds. */
export interface PbftFetchRequest extends Base { type: MsgType.PbftFetchRequest; seq: Index; digest: Uint8Array }
/**
 * A complaint (unsigned; the per-sender frame key says who sent it): the sender's
 * view-change timer expired in view `term` (or its NEW-VIEW timer, in the view change
 * to `term`), it suspects that view's primary but stays in the view. f + 1 complaints
 * (or VIEW-CHANGEs for later views) from other replicas make a replica leave the
 * view (src/pbft/pbft.ts, "Suspicion").
 */
export interface PbftSuspect extends Base { type: MsgType.PbftSuspect }

// ---------------------------------------------------------------------------
// ZAB (src/zab/zab.ts explains the protocol; docs/wire.md lists sizes).
//
// A zxid is (epoch, counter). On the wire and in the log it travels as (epoch, index):
// within one epoch counter = index − index of the epoch's start entry, so the two
// orders agree, and the index is what storage, commits and fencing tokens use.

/** Peer states of Fast Leader Election, as in ZooKeeper's QuorumPeer.ServerState. */
export enum ZabPeerState {
  Looking = 0,
  Following = 1,
  Leading = 2,
  Observing = 3,
}

/**
 * A Fast Leader Election notification. `term` = the sender's election round
 * (ZooKeeper's electionEpoch / logicalclock). The vote: `leader` (0 = none yet, a
 * witness's or observer's initial vote), the proposed leader's currentEpoch (`epoch`,
 * ZooKeeper's peerEpoch) and last zxid (`zxidTerm`, `zxidIndex`). `state` is the sender's.
 */
export interface ZabNotification extends Base {
  type: MsgType.ZabNotification;
  leader: NodeId;
  epoch: Term;
  zxidTerm: Term;
  zxidIndex: Index;
  state: ZabPeerState;
}
/** `term` = the follower's acceptedEpoch. */
export interface ZabFollowerInfo extends Base { type: MsgType.ZabFollowerInfo }
/** `term` = the new epoch. */
export interface ZabNewEpoch extends Base { type: MsgType.ZabNewEpoch }
/**
 * `term` = the epoch acknowledged. `ok` false = ZooKeeper's "-1": the follower had
 * accepted this epoch before (e.g. before a restart) and cannot accept it again, so
 * the reply does not count toward the discovery quorum; the leader may still sync it.
 */
export interface ZabAckEpoch extends Base {
  type: MsgType.ZabAckEpoch;
  ok: boolean;
  currentEpoch: Term;
  lastIndex: Index;
  lastTerm: Term;
  /** The follower's commit index: its history up to here is committed, hence the leader's too. */
  commit: Index;
}
export interface ZabDiff extends Base { type: MsgType.ZabDiff; index: Index; indexTerm: Term }
export interface ZabTrunc extends Base { type: MsgType.ZabTrunc; index: Index; indexTerm: Term }
export interface ZabSnap extends Base {
  type: MsgType.ZabSnap;
  lastIndex: Index;
  lastTerm: Term;
  offset: number;
  total: number;
  data: Uint8Array;
  done: boolean;
  config: MemberConfig;
}
export interface ZabSnapAck extends Base { type: MsgType.ZabSnapAck; lastIndex: Index; next: number; ok: boolean }
export interface ZabProposal extends Base {
  type: MsgType.ZabProposal;
  prevIndex: Index;
  prevTerm: Term;
  commit: Index;
  entries: Entry[];
}
/**
 * `ok` false: the message did not fit (a gap, or no sync session); the sender holds
 * the leader's history up to `index` (0 = no session). `commit` is the sender's
 * commit index: the leader stops resending ZabCommit once a follower has it.
 */
export interface ZabAck extends Base { type: MsgType.ZabAck; index: Index; ok: boolean; commit: Index }
/** `index`: the end of the leader's history sent; `start`: the index of the epoch's start entry (zxid (epoch, 0)). */
export interface ZabNewLeader extends Base { type: MsgType.ZabNewLeader; index: Index; start: Index }
export interface ZabAckNewLeader extends Base { type: MsgType.ZabAckNewLeader; index: Index }
export interface ZabCommit extends Base { type: MsgType.ZabCommit; index: Index }
/**
 * Leader heartbeat. `ctx`: the read round it confirms, omitted when none — an idle
 * ping is then 32 bytes with its tag (ZAB's type numbers take two bytes, so the body
 * must be empty to stay within the idle-heartbeat budget). Commits travel in ZabCommit.
 */
export interface ZabPing extends Base { type: MsgType.ZabPing; ctx?: number | undefined }
export interface ZabPong extends Base { type: MsgType.ZabPong; ctx?: number | undefined }
export interface ZabSyncReq extends Base { type: MsgType.ZabSyncReq; ctx: number }
export interface ZabSyncReply extends Base { type: MsgType.ZabSyncReply; ctx: number; index: Index; ok: boolean }

export type ZabMessage =
  | ZabNotification | ZabFollowerInfo | ZabNewEpoch | ZabAckEpoch | ZabDiff | ZabTrunc | ZabSnap | ZabSnapAck
  | ZabProposal | ZabAck | ZabNewLeader | ZabAckNewLeader | ZabCommit | ZabPing | ZabPong | ZabSyncReq | ZabSyncReply;

export type Message =
  | PreVote | PreVoteReply | Vote | VoteReply
  | Append | AppendReply | Heartbeat | HeartbeatReply
  | Snapshot | SnapshotReply | TimeoutNow | ReadIndex | ReadIndexReply
  | BullyElection | BullyAnswer | BullyCoordinator
  | ClientRequest | ClientReply
  | PaxosPrepare | PaxosPromise | PaxosAccept | PaxosAccepted
  | PaxosSnapshot | PaxosSnapshotReply
  | ZabMessage
  | PbftRequest | PbftPrePrepare | PbftPrepare | PbftCommit | PbftCheckpoint | PbftViewChange | PbftNewView
  | PbftStatus | PbftCommitted | PbftFetchState | PbftState | PbftFetchRequest | PbftSuspect;
