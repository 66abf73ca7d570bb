/**
 * The engine contract: what every consensus engine in `src/` offers to the one node
 * runtime (`daemon/runtime/`) and the one simulated cluster (`daemon/sim/`).
 *
 * An engine is a pure, deterministic state machine in the Step/Ready/Advance style of
 * etcd-io/raft: no timers, no clock, no randomness except an injected seeded `Rng`,
 * no I/O. Time enters only as `tick()` (every `tickMs` of monotonic time).
 *
 * ## Inputs
 *   tick()                 one tick of monotonic time passed
 *   step(msg)              a message from a peer (already authenticated and decoded)
 *   propose(data)          a client command for the replicated log (log engines)
 *   readIndex(ctx)         a linearizable read: answered later by a ReadState
 *                          {ctx, index} (serve once applied ≥ index) or a failedReads ctx
 *   transferLeadership(to) hand leadership to another member (optional capability)
 *   campaign()             try to become leader now (e.g. the link reported the leader gone)
 *   leaderGone(id)         a hint from the link that node `id`'s connection died
 *   compact(index, data)   the application stored a snapshot of its state at `index`
 *
 * ## Output: one Ready at a time
 * `ready()` returns a Ready or undefined. The runtime handles it in this order:
 *   1. persist `snapshot` (if any): store it, discard the whole durable log, restore
 *      the state machine from it;
 *   2. persist `entries`: entries[0].index may be at or below the durable last index,
 *      in which case the durable log is truncated from entries[0].index first (a
 *      suffix is overwritten), then the entries are appended;
 *   3. persist `hardState` — after the entries, since `commit` may refer to them;
 *   4. make 1–3 durable (fsync) — all or nothing when `atomic` is set — and only then
 *   5. send `messages`;
 *   6. apply `committed` in order, each exactly once; serve `readStates` once the
 *      applied index reaches theirs; answer `failedReads` with a definite 503;
 *   7. act on `softState` (role, leader, term/epoch changed);
 *   8. call `advance(ready)`.
 * `ready()` is not called again before `advance()`; inputs may arrive in between
 * (their output goes into the next Ready).
 *
 * Optional, for pipelining: `takeEager()` returns messages that may be sent before
 * anything is durable — a leader's replication traffic, which acknowledges nothing of
 * its own log (it counts its own entries toward commit only after `advance()`); Raft
 * thesis §10.2.1 — and a follower's liveness answers that acknowledge no entry and
 * rest only on state already durable (Raft: heartbeat replies once their term is
 * durable), so that a slow fsync does not make a follower look gone. The runtime may
 * call it at any time, also while a Ready is being persisted, and sends what it
 * returns at once; those messages are not in any Ready.
 * A `hardState` whose only change is `commit` is made durable without an fsync (the
 * commit index is volatile state; every entry an engine hands out in `committed` must
 * already be durable).
 *
 * Optional, for the same reason: `takeCommitted()` returns committed entries the
 * runtime applies at once (in order, each exactly once, answering their clients),
 * also while a Ready is being persisted, and that are in no Ready's `committed`:
 * entries committed by a quorum of durable copies that need not include the node's
 * own (Raft, leader and follower: src/raft/raft.ts takeCommitted, where the safety
 * argument is). The
 * engine's status().appliedIndex counts them only once they are durable here, and
 * compact() covers only that, so a snapshot never runs ahead of the node's own log.
 * Likewise `takeReadStates()`: read states (a read's confirmed index) handed out at
 * once instead of in the next Ready — a read waits for the applied index, not the disk.
 *
 * ## Durable state: one shape for every engine
 * The runtime stores every engine's state in the same durable log (hal/storage):
 *   - `HardState {term, vote, commit}`: two 32/53-bit numbers the engine must not lose
 *     plus its commit index. Each engine documents what `term` and `vote` mean for it
 *     (Raft: current term and vote; bully: epoch and held epoch; Paxos: promised
 *     ballot, vote unused; ZAB: acceptedEpoch and currentEpoch; PBFT: view). `vote` ≤ 2^32 − 1.
 *   - `entries`: the log, one Entry per index (Raft index, Paxos slot, ZAB counter
 *     within the log, PBFT sequence number), each with a `term` (Raft term, ZAB epoch,
 *     PBFT view; Paxos: a write stamp that never decreases along the log, with the
 *     accepted ballot inside `data`, see src/paxos/slots.ts) and `data`;
 *     suffix-overwrite semantics as in step 2 above. An engine that must change one
 *     entry in the middle re-emits the whole suffix from there. Durable entries are the
 *     engine's own: the runtime stores them and gives them back at restart, and applies
 *     only `committed`.
 *   - `committed` entries: `data` is the command; `term` is the `term` propose()
 *     returned for it (Raft: the entry's term; Paxos: the ballot of the leader that
 *     first proposed it, kept when later leaders propose it again), so a runtime that
 *     proposed (index, term) and sees another term committed at that index knows its
 *     command was not applied.
 *   - `snapshot`: the application's state at an index plus the membership.
 * Restart: the engine is constructed from exactly what was persisted (EngineInit).
 *
 * ## Extensions for engines whose leader is not trusted (PBFT), all optional
 * Added for PBFT (src/pbft); the other engines never set them and a runtime that only
 * hosts them may ignore them.
 *   - `propose()` may answer `{ok, index: 0, term, ref}`: any replica accepts a
 *     proposal, but only the primary assigns its sequence number, possibly after a
 *     view change, so the index is not known yet. `ref` names the proposal; the
 *     outcome arrives later in `Ready.outcomes` as {ref, index}: index ≥ 1 = applied
 *     at that index (the entry is in the same Ready's `committed`), 0 = definitely
 *     never applied. No outcome (the node restarted, or a state transfer skipped the
 *     entry) = unknown: the runtime times out with 504 as for any lost answer.
 *   - `Ready.checkpoint = c`: the engine needs the application's state at index c
 *     (PBFT checkpoints sign a digest of it). `committed` then ends at c; after
 *     `advance()` and before the next `ready()` the runtime calls `compact(c, data)`
 *     with a snapshot of its state. Snapshot bytes must be a deterministic function
 *     of the applied entries (equal states → equal bytes on every replica).
 *   - `SnapshotMeta.engine`: engine state that belongs to a snapshot and must be
 *     stored with it and handed back in EngineInit.snapshot (PBFT: the duplicate
 *     filter, the stable checkpoint's proof and prepared certificates the snapshot
 *     covers). Opaque bytes; the runtime stores them as given.
 *   - RejectCode 'busy': too many proposals of this node in flight; retry later (503).
 *
 * ## Extensions for Raft's extras, all optional
 * Added when Raft moved onto this contract (src/raft/engine.ts); any engine may offer
 * them, and the runtime uses each only where the engine has it.
 *   - `proposeConfChange(change)`: a membership change through the log (one at a time;
 *     learners, witnesses, promotion once caught up). Without it the membership is the
 *     bootstrap one for good, and the runtime answers membership requests 501.
 *   - `dropLease()`: heartbeat rounds sent so far hold no lease any more. The runtime
 *     calls it when its tick came late (the engine's clock is behind real time) and when
 *     a link lost a session through which peers may hear this node's will (MQTT Last
 *     Will: they forget it as leader before its lease would end). Lease reads then wait
 *     for a fresh round.
 *   - `quietTicks()`: how many of the next tick() calls would only count time — no
 *     message, no role or leader change, nothing in a Ready — if no other input came
 *     first (0: the next one may act). An idle node need not wake for those: the runtime
 *     (daemon/runtime/engine-node.ts, quiet ticks) sleeps until the first tick that may
 *     act and makes up the quiet ones, in order, before any other input, so the engine
 *     sees the same ticks between the same inputs as with a timer every tickMs. Without
 *     it the runtime wakes for every tick.
 *   - `acknowledges(m)`: whether a received message shows that its sender follows the
 *     leadership of `m.term` (so it does not lead an earlier one) — the activation gate's
 *     acknowledgement. Without it the runtime has a rule per message type.
 *   - `isCampaignRequest(m)`: whether `m` asks for a vote in a newer term than this
 *     node's, from a candidate whose log this node's vote would back; the runtime's
 *     staggered campaigns after a leader's will defer to it (to one whose log is behind
 *     they must not: it cannot win with this vote, and it retries as long as they wait).
 *   - `EngineStatus.dataMissing`: a member that is no witness but whose log still lacks
 *     data (a former witness before the snapshot that brings it): it serves no reads.
 *   - `EngineStatus.unsupported`: messages of other engines' types it dropped.
 *   - `SoftState.detail` / `EngineStatus.detail`: the engine's finer role (Raft
 *     'pre-candidate' is role 'candidate', detail 'pre-candidate').
 *   - `replicaProgress()`: on a leader, how far each other member's log is known to match
 *     (the runtime hands leadership to the most caught-up voter before it stops, and
 *     /v1/status shows it); elsewhere an empty list.
 *   - `EngineStatus.epochStart`: the index of the current leadership's first entry in
 *     this node's log (0 while unknown); once committed it is that leadership's
 *     fencing token, so a follower can report the leader's token (ZAB has it from
 *     NEWLEADER, Raft from the first entry of the term in its log).
 *
 * ## Capabilities differ, and say so
 * A replicated-log engine (`caps.log`) gives KV, locks, jobs and fence history. An
 * election-only engine (bully) gives a leader, hooks and fencing; its `propose` and
 * `readIndex` refuse with code 'not-supported', which the runtime answers as 501.
 */
import type { Rng } from '../rng.ts';
import type { Index, NodeId, Term } from '../types.ts';
import type { Entry, MemberConfig, Message } from '../wire/messages.ts';

export type { Entry, MemberConfig, Message };

/** Names used in config (`engine:`), on the CLI (`--engine`) and in /v1/status. */
export type EngineName = 'raft' | 'bully' | 'paxos' | 'zab' | 'pbft';

export interface Capabilities {
  /** A replicated log with committed commands (KV, locks, jobs). False = election only. */
  log: boolean;
  /** Linearizable reads through readIndex(). */
  reads: boolean;
  /** transferLeadership() is implemented. */
  transfer: boolean;
  /** Members that vote but hold no command data (witness members in MemberConfig.witnesses). */
  witness: boolean;
  /**
   * The leader can prove it still leads for a bounded time without a round trip
   * (a quorum-acknowledged lease): lease reads and the activation gate's own-lease
   * rule rest on it. Engines without it serve reads by a round and prove
   * activation by fencing or acknowledgement only.
   */
  lease: boolean;
  /** Tolerates Byzantine members: a single node's answer is not enough for a client (f + 1 matching replies are). */
  byzantine: boolean;
}

/**
 * The role as the runtime, the API and the invariants see it. `detail` carries the
 * engine's own finer state for status and logs (Raft 'pre-candidate', ZAB
 * 'discovery'/'synchronization', PBFT 'view-change', ...).
 */
export type EngineRole = 'leader' | 'candidate' | 'follower';

export interface HardState {
  term: Term;
  vote: number;
  commit: Index;
}

export interface SoftState {
  role: EngineRole;
  /** The leader this node follows or is; 0 = none known. */
  leader: NodeId;
  /** The leadership number that only grows: Raft term, bully epoch, Paxos ballot, ZAB epoch, PBFT view. */
  term: Term;
  detail?: string;
}

export interface SnapshotMeta {
  index: Index;
  term: Term;
  config: MemberConfig;
  /** Engine state stored with the snapshot (PBFT only; see "Extensions" in the header). */
  engine?: Uint8Array;
}
export interface SnapshotData {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/** A confirmed linearizable read: serve it once the applied index is ≥ index. */
export interface ReadState {
  ctx: number;
  index: Index;
}

export interface Ready {
  /** Present when anything in the hard state changed since the last advanced Ready. */
  hardState?: HardState;
  /** Entries to make durable (suffix-overwrite semantics, see the header). */
  entries: Entry[];
  /** A snapshot received from a peer: persist first, restore the state machine from it. */
  snapshot?: SnapshotData;
  /** To send only after snapshot, entries and hardState are durable. */
  messages: Message[];
  /** Committed entries to apply, in order, exactly once. */
  committed: Entry[];
  readStates: ReadState[];
  /** Read contexts that can no longer be served here: answer 503. */
  failedReads: number[];
  /** Present when role, leader or term changed. */
  softState?: SoftState;
  /** Outcomes of this node's proposals that were answered with a `ref` (PBFT; see the header). */
  outcomes?: ProposalOutcome[];
  /** The engine wants `compact(checkpoint, data)` after this Ready (PBFT; see the header). */
  checkpoint?: Index;
  /**
   * Set when the runtime must make this Ready's snapshot and entries durable all or
   * nothing: after a crash in the middle of persisting it, storage holds either the
   * state before the Ready or all of its snapshot and entries, never a prefix (the hard
   * state may still be lost). Absent or false: a torn prefix is harmless to the engine
   * (Raft: a rewritten suffix was never committed; appended entries were never
   * acknowledged). Paxos sets it when an acceptor rewrites votes it already
   * acknowledged — a higher ballot's value in the middle of its log re-emits the votes
   * after it (step 2's suffix overwrite), and an installed snapshot keeps its votes
   * after the snapshot by writing them again — because a torn write there would lose
   * acknowledged votes. A WAL can provide it with a batch-end record (a batch without
   * one is dropped at recovery). Added for src/paxos/multi.ts; optional, so engines
   * that never set it need nothing.
   */
  atomic?: boolean;
}

/** Where a proposal answered with `ref` ended: index ≥ 1 applied there, 0 never applied. */
export interface ProposalOutcome {
  ref: number;
  index: Index;
}

export type RejectCode =
  | 'not-leader' | 'no-leader' | 'transfer-in-progress' | 'too-large' | 'bad-request'
  | 'not-voter' | 'not-supported' | 'conf-pending' | 'not-caught-up' | 'term-not-committed' | 'not-eligible' | 'busy';

/** `ref`: only from engines that assign the index later (index is then 0; see the header). */
export type Result<T = { index: Index; term: Term; ref?: number }> =
  | ({ ok: true } & T)
  | { ok: false; code: RejectCode; reason: string };

/** What every engine reports; engines add their own fields in their own status type. */
export interface EngineStatus {
  id: NodeId;
  engine: EngineName;
  role: EngineRole;
  detail?: string;
  term: Term;
  leader: NodeId;
  commitIndex: Index;
  appliedIndex: Index;
  lastIndex: Index;
  isWitness: boolean;
  config: MemberConfig;
  /** A member that is no witness but still lacks the data of part of its log (see "Extensions for Raft's extras"). */
  dataMissing?: boolean;
  /** Messages of other engines' types this engine dropped. */
  unsupported?: number;
  /** The current leadership's first entry in this node's log, 0 = not known (see "Extensions for Raft's extras"). */
  epochStart?: Index;
}

/** A leader's view of one other member's replication (Engine.replicaProgress). */
export interface ReplicaProgress {
  id: NodeId;
  /** Highest index known to be in that member's log. */
  match: Index;
  /** The engine's name for how it replicates to that member now (Raft: probe, replicate, snapshot). */
  state: string;
}

/** A membership change (Engine.proposeConfChange; Raft thesis §4: one server at a time). */
export type MemberChange =
  | { op: 'add-learner'; node: NodeId }
  /** Learner → voter, refused until the learner caught up. */
  | { op: 'promote'; node: NodeId }
  | { op: 'add-voter'; node: NodeId }
  | { op: 'add-witness'; node: NodeId }
  /** Removes a voter, learner or witness. */
  | { op: 'remove'; node: NodeId };

/** What a restarted engine is built from: exactly what was persisted. */
export interface EngineInit<O = unknown> {
  id: NodeId;
  /** Bootstrap membership; a snapshot's config (and config entries, where the engine has them) override it. */
  config: MemberConfig;
  hardState?: HardState;
  snapshot?: SnapshotData;
  /** Durable log entries after the snapshot, contiguous. */
  entries?: Entry[];
  /** Index the state machine has applied (default: the snapshot index, or 0). */
  applied?: Index;
  options?: Partial<O>;
  rng: Rng;
}

export interface Engine {
  readonly id: NodeId;
  readonly name: EngineName;
  readonly caps: Readonly<Capabilities>;
  /** Milliseconds of monotonic time per tick() (the runtime's tick period). */
  readonly tickMs: number;

  tick(): void;
  step(m: Message): void;
  propose(data: Uint8Array): Result;
  readIndex(ctx: number): Result<{ term: Term }>;
  transferLeadership(to: NodeId): Result<{ term: Term }>;
  campaign(): Result<{ term: Term }>;
  leaderGone(id: NodeId): Result<{ forgot: boolean }>;
  compact(index: Index, data: Uint8Array): Result<{ meta: SnapshotMeta }>;

  hasReady(): boolean;
  /** Messages that need nothing durable (see "Optional, for pipelining" above). */
  takeEager?(): Message[];
  /** Committed entries to apply now, also while a Ready is in flight (see "Optional, for the same reason" above). */
  takeCommitted?(): Entry[];
  /** Read states to act on now, also while a Ready is in flight: they depend on nothing durable (see "Optional, for the same reason" above). */
  takeReadStates?(): ReadState[];
  ready(): Ready | undefined;
  advance(rd: Ready): void;

  status(): EngineStatus;
  readonly isLeader: boolean;
  /**
   * The fencing token of this node's current leadership (0 when not leader or not yet
   * issued): positive, and strictly greater than every token issued by an earlier
   * leadership of the cluster. Each engine documents its encoding and why it grows.
   */
  leaderToken(): number;
  /** The entry at `i` if still in the log (for the runtime's and simulator's checks). */
  entryAt(i: Index): Entry | undefined;

  /**
   * Optional, on a leader: peer `to` is about to be told something it acts on only once
   * it has applied `index` (the runtime's answer to a write `to` forwarded: `to` answers
   * its client once it has applied that write itself, so the client then reads its own
   * write there, also with a local read). Send `to` the commit up to `index` now, or as
   * soon as its log holds that far, instead of with the next heartbeat. Changes nothing
   * about what is committed. Without it the peer learns the commit as it otherwise would.
   */
  notifyCommit?(to: NodeId, index: Index): void;

  // Optional (see "Extensions for Raft's extras" in the header).
  proposeConfChange?(change: MemberChange): Result;
  dropLease?(): void;
  quietTicks?(): number;
  acknowledges?(m: Message): boolean;
  isCampaignRequest?(m: Message): boolean;
  replicaProgress?(): ReplicaProgress[];
  /** status().leader without building the status (the runtime reads it after every step); without it, status() is asked. */
  readonly currentLeader?: NodeId;
  /** status().term without building the status (the HTTP layer's bookkeeping reads it after every step). */
  readonly currentTerm?: Term;
  /**
   * The role as the API names it, without building the status: status().role, or
   * 'pre-candidate' while status().detail says so. With currentLeader and currentTerm it
   * lets the per-step bookkeeping skip status(); without the three, status() is asked.
   */
  readonly currentRole?: string;
}
