/**
 * Every message the engines exchange, as in-memory values.
 *
 * This file is the contract between the engines (src/raft, src/bully), the wire
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

export type Message =
  | PreVote | PreVoteReply | Vote | VoteReply
  | Append | AppendReply | Heartbeat | HeartbeatReply
  | Snapshot | SnapshotReply | TimeoutNow | ReadIndex | ReadIndexReply
  | BullyElection | BullyAnswer | BullyCoordinator
  | ClientRequest | ClientReply
  | PaxosPrepare | PaxosPromise | PaxosAccept | PaxosAccepted
  | PaxosSnapshot | PaxosSnapshotReply;
