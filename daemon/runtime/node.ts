/**
 * The former Raft runtime: one Raft engine wired to one board's HAL (Clock, Storage,
 * Link[]). `quorumd start` and `quorumd dev` run Raft on the engine runtime
 * (engine-node.ts) now; this one is left only for the simulator's Raft cluster
 * (daemon/sim/cluster.ts, and the jobs simulation over it), until that moves to
 * daemon/sim/engine-cluster.ts — then this file goes (issue 15).
 *
 * Life cycle
 *   start()  open the durable log (recovery warnings are logged), take its new bootId
 *            (already durable) for the wire stamps, rebuild the RaftNode from exactly
 *            what was persisted, restore the KV state machine from the snapshot, then
 *            tick every `tickMs` of monotonic time and listen on every link.
 *   stop()   stop ticking, close the log, answer every pending request (504 for writes
 *            that may have been proposed, 503 for the rest).
 *   fatal    a storage error (the durable log is failed for good after one) stops the
 *            node and calls `onFatal`: the supervisor restarts the process, which
 *            recovers from disk (systemd Restart= on a board, crashProcess in the sim).
 *
 * The Ready loop follows the contract in src/raft/raft.ts exactly, one Ready at a time:
 *   a leader's Appends and heartbeats leave at once (takeEager, also while a write is
 *   in flight) → persist snapshot + entries + hard state as ONE batch (the durable log
 *   group-commits it with one fsync, and answers a batch that only moved the commit
 *   index without one) → when durable: restore the state machine from a received
 *   snapshot → send the messages, sealed once and put on every link (the receiver's
 *   replay window drops the copies) → apply committed entries → serve read states
 *   whose index is applied, fail failed reads → advance. A Ready with nothing to
 *   persist is handled at once. Proposals, ticks and messages that arrive meanwhile go
 *   into the next Ready: that is the batching (one fsync for everything that queued up
 *   during the previous one).
 *
 * Client API (callback style; a callback may fire synchronously): put, del, get,
 * lockAcquire/Renew/Release, with the status rule of results.ts (503 = definitely not
 * applied, 504 = unknown). Any node answers: a follower forwards writes to the leader
 * (ClientRequest/ClientReply) and relays the answer; linearizable reads use ReadIndex
 * (Raft thesis §6.4) from any node and are served locally once applied ≥ read index.
 *
 * Split-brain defenses (option `fencing`; rules and the timing proof in activation.ts):
 * a new leader proposes `lead.claim` at once; when it is applied, the state machine
 * names the *suspects* (earlier leaders that may still act). The leader is `active`
 * (status, `onActivation`, lock grants) only once every suspect is fenced and verified
 * off (STONITH through the HAL relays and power-sense inputs named in `fencing.fencer`),
 * acknowledged our term, was confirmed down by an operator (`confirmFenced`), or the
 * lease bound passed — and while its own lease (a heartbeat round acknowledged by a
 * quorum, leaseRead rounds) holds. It then proposes `lead.active`. Finished fences go
 * into the replicated history (`fence.record`). The watchdog is fed every tick, except
 * by a node that lost its lease after being active (self-fence). Operator: `fence(node)`.
 */
import { KvError, KvStateMachine, encodeCommand, decodeCommand, quotaGrowth, checkQuota, DEFAULT_KV_QUOTA, type KvQuota, type KvUsage, type ApplyResult, type Command, type JobOutcomeName } from '../../src/kv/index.ts';
import { RaftNode, type RaftOptions, type Ready, type MemberConfig, type RaftStatus, type Result } from '../../src/raft/index.ts';
import type { Keyring } from '../../src/wire/auth.ts';
import { DEFAULT_MAX_FRAME, newDropCounters, type DropCounters } from '../../src/wire/codec.ts';
import { EntryType, MsgType, type ClientReply, type ClientRequest, type Entry, type Message } from '../../src/wire/messages.ts';
import { NO_NODE, type Index, type NodeId, type Term } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Cancel, Clock, Link, LinkEvent, PowerSense, Relay, Storage, Watchdog } from '../../hal/interfaces.ts';
import type { Fencer, FenceRecord, FencerConfig } from '../../src/fence/index.ts';
import type { FenceHistoryRecord } from '../../src/kv/index.ts';
import { ActivationListeners, type ActivationEvent, type ActivationView } from './activation.ts';
import { LeaderFencing, operatorConfirm, operatorFence, type ActivationStatus, type ConfirmResult, type RuntimeFencingOptions } from './leader-fencing.ts';
import { openDurableLog, type DurableLog, type DurableLogOptions, type PersistBatch, type Recovered, type StorageStats } from '../../hal/storage/index.ts';
import { decodeReplyBody, encodeReplyBody } from './forward.ts';
import { WireEndpoint } from './wire-endpoint.ts';
import { ReadyLoop } from './ready-loop.ts';
import { nullLogger, type Logger } from './logger.ts';
import { InternalError, guardedLinkCallbacks } from './fatal.ts';
import { Status, checkKey, leaseArg, resultToClient, unavailable, unknownOutcome, type ClientCallback, type ClientResult } from './results.ts';
import { decodeMeta, encodeMeta } from './meta.ts';

/** Hooks for whoever watches the node from outside (the simulator's invariant checker). */
export interface RuntimeObserver {
  /** The node finished booting: engine and state machine rebuilt from disk. */
  booted?(rt: NodeRuntime): void;
  /** After every input the engine took (a message, a tick, a proposal, a campaign). */
  afterStep?(rt: NodeRuntime): void;
  /** A Ready's snapshot, entries and hard state are durable; its messages are not sent yet. */
  persisted?(rt: NodeRuntime, rd: Ready): void;
  /** A committed entry was applied to the state machine (result undefined for no-ops and config entries). */
  applied?(rt: NodeRuntime, e: Entry, result: ApplyResult | undefined): void;
  /** The engine threw: always a bug or a safety problem, never a bad frame. */
  engineError?(rt: NodeRuntime, err: Error): void;
  /** A fence run by this node finished (outcome other than 'pending'). */
  fenced?(rt: NodeRuntime, rec: FenceRecord): void;
  /** The node became active (true) or stopped being active (false); see `onActivation`. */
  activation?(rt: NodeRuntime, ev: ActivationEvent): void;
}

export type { ActivationEvent } from './activation.ts';

export type { RuntimeFencingOptions } from './leader-fencing.ts';

export interface NodeRuntimeOptions {
  id: NodeId;
  /** Bootstrap membership (a snapshot's or the log's configuration overrides it). */
  config: MemberConfig;
  /** Cluster id on the wire (0..65535). */
  cluster: number;
  keyring: Keyring;
  clock: Clock;
  storage: Storage;
  /** Every link; messages go out on all of them (multi-link redundancy). */
  links: Link[];
  /** Election timeouts only (src/raft); the simulator passes a fork of the board's seed. */
  rng: Rng;
  /** Raft engine options (src/raft/config.ts documents each, with defaults). maxMsgBytes defaults to the smallest link's maxFrame. */
  raft?: Partial<RaftOptions>;
  /**
   * How long a client request may wait for its outcome, ms. Default 2000: ten
   * election timeouts, enough to ride out one leader change; after it a write that
   * was proposed or forwarded answers 504 (unknown), anything else 503.
   */
  requestTimeoutMs?: number;
  /**
   * When the link reports the leader gone (MQTT Last Will), every node calls
   * RaftNode.leaderGone (no more stickiness, witnesses included) and the surviving
   * voters campaign in id order: the lowest at once, the k-th only after k × this
   * many ms and only if no election has started meanwhile (its term is unchanged and
   * no leader is known) — i.e. the ones before it failed (dead too, or a log behind).
   * Each survivor retries every survivors × this many ms (bounded by the minimum
   * election timeout), for a pre-vote dropped by a peer still sticky because its own
   * will came later. Default 25: one pre-vote + vote round with two fsyncs on an SD
   * card (~5–20 ms). Campaigning all at once would split the vote (one more election
   * timeout).
   */
  peerGoneStaggerMs?: number;
  /**
   * Take a state-machine snapshot and compact the log once this many entries were
   * applied since the last snapshot. Default 1000: a few hundred KiB of log at most
   * on the SD card, and a follower that falls further behind gets a snapshot.
   */
  snapshotEntries?: number;
  /**
   * Batching (default true): every proposal that arrives while an fsync is in flight
   * rides in the next Ready. false proposes at most one client command per Ready
   * (one fsync per write) — only for measuring what batching buys (bench/).
   */
  batching?: boolean;
  /** Options of the durable log (hal/storage). */
  storageOptions?: DurableLogOptions;
  logger?: Logger;
  observer?: RuntimeObserver;
  /** Called once when the node stops itself on a fatal error (storage failure); the supervisor restarts it. */
  onFatal?: (err: Error) => void;
  /** Split-brain defenses; see RuntimeFencingOptions. */
  fencing?: RuntimeFencingOptions;
  /**
   * Cluster-wide limits of the replicated state (src/kv/quota.ts), enforced by this node
   * while it leads: a write that would pass them answers 507 and is not proposed.
   * Default DEFAULT_KV_QUOTA.
   */
  quota?: KvQuota;
}

export type RuntimeState = 'new' | 'booting' | 'running' | 'stopped';

export interface NodeStatus extends ActivationStatus {
  id: NodeId;
  state: RuntimeState;
  role: string;
  term: Term;
  leader: NodeId;
  commitIndex: Index;
  appliedIndex: Index;
  lastIndex: Index;
  snapshotIndex: Index;
  isWitness: boolean;
  /** This boot's wire bootId (16-bit). */
  bootId: number;
  /** Frames accepted, and dropped by reason (bad tag, replay, ...). */
  framesAccepted: number;
  drops: DropCounters;
  /** Messages of types this runtime does not handle (e.g. bully on a Raft node). */
  unsupported: number;
  pending: { writes: number; reads: number; forwarded: number };
  storage: StorageStats | undefined;
  // elected, active, waitingFor, token, activation, fences, selfFencing: ActivationStatus (leader-fencing.ts).
}

interface PendingWrite {
  term: Term;
  reply: ClientCallback;
  deadline: number;
}
interface PendingRead {
  key: string;
  cb: ClientCallback;
  deadline: number;
  /** Set when the read index is confirmed; served once applied ≥ it. */
  index?: Index;
}
interface Forwarded {
  reply: ClientCallback;
  deadline: number;
  /** The leader it was forwarded to (answered 504 at once if that node is reported gone). */
  to: NodeId;
}

const RAFT_TYPES = new Set<MsgType>([
  MsgType.PreVote, MsgType.PreVoteReply, MsgType.Vote, MsgType.VoteReply, MsgType.Append, MsgType.AppendReply,
  MsgType.Heartbeat, MsgType.HeartbeatReply, MsgType.Snapshot, MsgType.SnapshotReply, MsgType.TimeoutNow,
  MsgType.ReadIndex, MsgType.ReadIndexReply,
]);

function posInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`NodeRuntime: ${what} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

export class NodeRuntime {
  readonly id: NodeId;
  private readonly opts: NodeRuntimeOptions;
  private readonly log: Logger;
  private readonly tickMs: number;
  private readonly timeoutMs: number;
  private readonly staggerMs: number;
  /** When another node's (pre-)vote request for a newer term last arrived (peer-gone campaigns defer to it). */
  private campaignSeenAt = -Infinity;
  private readonly snapshotEntries: number;
  private readonly batching: boolean;
  private readonly maxFrame: number;

  private stateValue: RuntimeState = 'new';
  private raft: RaftNode | undefined;
  private kv = new KvStateMachine();
  private dlog: DurableLog | undefined;
  private wire: WireEndpoint | undefined;
  private wireBoot = 0;
  private bootCounter = 0;
  /** The cluster formed in an earlier boot (runtime metadata; the fencing first-start rule). */
  private formedBefore = false;
  private cancelTick: Cancel | undefined;
  /** The Ready loop (daemon/runtime/ready-loop.ts): persist, then send/apply/advance. */
  private readonly loop: ReadyLoop<Ready>;
  private unsupported = 0;
  /** Lock renewals/releases refused by this leader without proposing (wrong lease, not held). */
  lockRefusals = 0;
  private ids = 0;
  private lockClockOffset = 0;
  private wasLeader = false;
  private readonly jitter: Rng;
  /** Split-brain defenses (undefined without the `fencing` option). */
  private fencing: LeaderFencing | undefined;
  private readonly activationListeners = new ActivationListeners('NodeRuntime', (error) => this.log('error', 'activation listener threw', { node: this.id, error }));

  private readonly pendingWrites = new Map<Index, PendingWrite>();
  /** Quota growth of this leader's proposals not applied yet, by log index (src/kv/quota.ts). */
  private readonly pendingGrowth = new Map<Index, KvUsage>();
  private pendingUse: KvUsage = { keys: 0, bytes: 0 };
  private readonly quota: KvQuota;
  /** Writes refused for the quota (507). */
  quotaRefusals = 0;
  private readonly pendingReads = new Map<number, PendingRead>();
  private readonly forwarded = new Map<number, Forwarded>();
  /** batching off: commands waiting for their own Ready. */
  private readonly queue: Array<{ cmd: Command; reply: ClientCallback; local: boolean }> = [];

  constructor(opts: NodeRuntimeOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('NodeRuntime: expected an options object');
    this.id = posInt(opts.id, 'id', 1);
    if (this.id > 254) throw new RangeError(`NodeRuntime: id must be a node id 1..254, got ${this.id}`);
    if (!opts.clock || typeof opts.clock.setTimer !== 'function') throw new TypeError('NodeRuntime: clock must be a HAL Clock');
    if (!opts.storage || typeof opts.storage.sync !== 'function') throw new TypeError('NodeRuntime: storage must be a HAL Storage');
    if (!Array.isArray(opts.links)) throw new TypeError('NodeRuntime: links must be an array of HAL Links');
    opts.links.forEach((l, i) => {
      if (!l || typeof l.send !== 'function' || typeof l.onFrame !== 'function') throw new TypeError(`NodeRuntime: links[${i}] is not a HAL Link`);
    });
    if (!opts.rng || typeof opts.rng.int !== 'function') throw new TypeError('NodeRuntime: rng must be an Rng (src/rng.ts)');
    this.opts = opts;
    this.jitter = opts.rng.fork('runtime');
    this.log = opts.logger ?? nullLogger;
    this.timeoutMs = posInt(opts.requestTimeoutMs ?? 2000, 'requestTimeoutMs', 1);
    this.staggerMs = posInt(opts.peerGoneStaggerMs ?? 25, 'peerGoneStaggerMs', 0);
    this.snapshotEntries = posInt(opts.snapshotEntries ?? 1000, 'snapshotEntries', 1);
    if (opts.batching !== undefined && typeof opts.batching !== 'boolean') throw new TypeError(`NodeRuntime: batching must be a boolean, got ${String(opts.batching)}`);
    this.batching = opts.batching ?? true;
    this.tickMs = posInt(opts.raft?.tickMs ?? 10, 'raft.tickMs', 1);
    this.quota = { maxKeys: posInt(opts.quota?.maxKeys ?? DEFAULT_KV_QUOTA.maxKeys, 'quota.maxKeys', 1), maxBytes: posInt(opts.quota?.maxBytes ?? DEFAULT_KV_QUOTA.maxBytes, 'quota.maxBytes', 1) };
    this.maxFrame = Math.min(DEFAULT_MAX_FRAME, ...opts.links.map((l) => l.maxFrame));
    this.loop = new ReadyLoop<Ready>({
      clock: opts.clock,
      running: () => this.stateValue === 'running',
      before: () => {
        if (!this.batching && this.queue.length > 0) this.proposeQueued();
      },
      // A leader's Appends and heartbeats go out before its own write is durable; it
      // counts itself toward commit only once it is (src/raft/raft.ts takeEager).
      eager: () => {
        const ms = this.raft!.takeEager();
        for (let i = 0; i < ms.length; i++) this.send(ms[i]!);
      },
      // A leader's entries committed by a quorum of followers are applied and answered
      // while its own copy may still be syncing (src/raft/raft.ts takeCommitted).
      // Paused while a snapshot is due: the snapshot is taken of the state machine at
      // the engine's appliedIndex, which counts them only once durable here, so the two
      // must meet first (maybeCompact); the Readys apply meanwhile.
      apply: () => {
        const raft = this.raft!;
        if (this.kv.appliedIndex - raft.snapshotIndex >= this.snapshotEntries) return;
        const es = raft.takeCommitted();
        if (es.length === 0) return;
        const witness = raft.witness;
        for (let i = 0; i < es.length; i++) this.applyEntry(es[i]!, witness);
        this.serveReads();
      },
      next: () => this.raft!.ready(),
      persist: (rd, done) => {
        // Snapshot + entries + hard state as ONE batch: the durable log group-commits it with one fsync.
        const batch: PersistBatch = {};
        if (rd.snapshot) batch.snapshot = { index: rd.snapshot.meta.index, term: rd.snapshot.meta.term, config: rd.snapshot.meta.config, data: rd.snapshot.data };
        if (rd.entries.length > 0) batch.entries = rd.entries;
        if (rd.hardState) batch.hardState = rd.hardState;
        if (!batch.snapshot && !batch.entries && !batch.hardState) return false;
        this.dlog!.persist(batch, done);
        return true;
      },
      durable: (rd) => this.handleDurable(rd),
      fatal: (err) => this.fatal(err),
    });
  }

  // ---------------------------------------------------------------------------
  // Read-only views (status API, invariant checks). Do not mutate what they return.

  get state(): RuntimeState {
    return this.stateValue;
  }
  /** The engine (undefined until booted). */
  get engine(): RaftNode | undefined {
    return this.raft;
  }
  /** The replicated state machine as applied on this node. */
  get stateMachine(): KvStateMachine {
    return this.kv;
  }
  /**
   * When `peer` was last heard (an authenticated frame), ms ago, overall and on each
   * link by name (null: never in this boot): the dashboard's "last contact".
   */
  contact(peer: NodeId): { agoMs: number | null; links: Record<string, number | null> } {
    const now = this.opts.clock.monotonicMs();
    return { agoMs: this.wire?.heardAgoMs(peer, now) ?? null, links: this.wire?.heardOnLinks(peer, now) ?? {} };
  }

  /**
   * The lock clock now (docs/api.md, Locks): on the leader the time it would stamp on a
   * lock command; elsewhere the state machine's clock (the newest applied lock
   * command's time), which lags: remaining times judged with it are upper bounds.
   */
  get lockClockMs(): number {
    return this.isLeader ? this.lockNow() : this.kv.clockMs;
  }

  get isLeader(): boolean {
    return this.stateValue === 'running' && this.raft !== undefined && this.raft.isLeader;
  }

  status(): NodeStatus {
    const s: RaftStatus | undefined = this.raft?.status();
    return {
      id: this.id,
      state: this.stateValue,
      role: s?.role ?? 'down',
      term: s?.term ?? 0,
      leader: s?.leader ?? NO_NODE,
      commitIndex: s?.commitIndex ?? 0,
      appliedIndex: this.kv.appliedIndex,
      lastIndex: s?.lastIndex ?? 0,
      snapshotIndex: s?.snapshotIndex ?? 0,
      isWitness: s?.isWitness ?? false,
      bootId: this.wireBoot,
      framesAccepted: this.wire?.accepted ?? 0,
      drops: this.wire ? this.wire.drops() : newDropCounters(),
      unsupported: this.unsupported,
      pending: { writes: this.pendingWrites.size, reads: this.pendingReads.size, forwarded: this.forwarded.size },
      storage: this.dlog?.stats(),
      ...this.activationStatus(),
    };
  }

  private activationStatus(): Pick<NodeStatus, 'elected' | 'active' | 'waitingFor' | 'token' | 'activation' | 'fences' | 'selfFencing'> {
    const elected = this.isLeader;
    const fences = { local: this.fencer?.history() ?? [], history: [...this.kv.fenceHistory] };
    if (!this.fencing) return { elected, active: elected, waitingFor: '', token: 0, activation: undefined, fences, selfFencing: false };
    return this.fencing.status(elected, this.active);
  }

  /**
   * Allowed to act on the outside world now (judged at this instant: the lease may
   * have run out since the last tick). Without fencing options: the same as isLeader.
   */
  get active(): boolean {
    if (!this.isLeader) return false;
    if (!this.fencing) return true;
    return this.fencing.isActive(this.opts.clock.monotonicMs());
  }

  /** The fencing token of the current leadership while active, else 0. */
  get activeToken(): number {
    return this.active ? (this.fencing?.token ?? 0) : 0;
  }

  /**
   * Hooks, jobs and actuators: called with active=true (and the token) when this node
   * becomes active, and with active=false as soon as it stops (lease lost, stepped
   * down, node stopped). Returns an unsubscribe function.
   */
  onActivation(cb: (ev: ActivationEvent) => void): () => void {
    return this.activationListeners.add(cb);
  }

  // ---------------------------------------------------------------------------
  // Life cycle

  start(): void {
    if (this.stateValue !== 'new') throw new Error(`NodeRuntime ${this.id}: start() called twice (state ${this.stateValue})`);
    this.stateValue = 'booting';
    openDurableLog(this.opts.storage, this.opts.storageOptions ?? {}, (err, opened) => {
      if (this.stateValue !== 'booting') return;
      if (err || !opened) return this.fatal(err ?? new Error('openDurableLog returned nothing'));
      try {
        this.boot(opened.log, opened.state);
      } catch (e) {
        this.fatal(e as Error);
      }
    });
  }

  private boot(dlog: DurableLog, st: Recovered): void {
    this.dlog = dlog;
    for (const w of st.warnings) this.log('warn', 'storage recovery', { node: this.id, warning: w });
    // Wire bootId: the durable log's counter grows at every open and is durable
    // before we get here. A seq wrap moves the stamp's bootId forward inside a boot;
    // that counter is kept in the log's metadata (persisted before such a frame goes
    // out), so the next boot starts above both.
    const meta = decodeMeta(st.meta);
    this.formedBefore = meta.formed;
    this.bootCounter = Math.max(st.bootId, meta.boot + 1);
    this.wireBoot = this.bootCounter & 0xffff;
    const snap = st.snapshot;
    let config = this.opts.config;
    if (snap) config = snap.config as MemberConfig;
    this.raft = new RaftNode({
      id: this.id,
      config: this.opts.config,
      hardState: st.hardState,
      ...(snap ? { snapshot: { meta: { index: snap.index, term: snap.term, config }, data: snap.data } } : {}),
      entries: st.entries,
      // The activation lease counts heartbeat rounds: with fencing on, every heartbeat carries a round (leaseRead).
      options: { maxMsgBytes: this.maxFrame, ...(this.opts.fencing ? { leaseRead: true } : {}), ...this.opts.raft },
      rng: this.opts.rng,
    });
    this.kv = new KvStateMachine();
    if (snap) this.restoreStateMachine(snap.index, snap.data);
    this.wire = new WireEndpoint({
      id: this.id,
      cluster: this.opts.cluster,
      keyring: this.opts.keyring,
      now: () => this.opts.clock.monotonicMs(),
      maxFrame: this.maxFrame,
      links: this.opts.links,
      bootId: this.wireBoot,
      log: this.log,
      running: () => this.stateValue === 'running',
      fatal: (err) => this.fatal(err),
      persistNextBoot: (bootId, done) => {
        // The boot counter lives in the durable log's metadata (see boot()).
        this.bootCounter++;
        this.wireBoot = bootId;
        this.dlog!.persist({ meta: encodeMeta({ boot: this.bootCounter, formed: this.fencing?.act.formed ?? this.formedBefore }) }, done);
      },
    });
    // Link callbacks are entry points: an exception in them takes the fatal path (fatal.ts).
    this.wire.listen(...guardedLinkCallbacks((where, e) => this.crash(where, e), (m) => this.onMessage(m), (link, ev) => this.onLinkEvent(link, ev)));
    this.setupFencing();
    this.stateValue = 'running';
    const s = this.raft.status();
    this.log('info', 'booted', { node: this.id, term: s.term, commit: s.commitIndex, last: s.lastIndex, snapshot: s.snapshotIndex, bootId: this.wireBoot });
    this.opts.observer?.booted?.(this);
    this.armTick();
    this.pump();
  }

  private restoreStateMachine(index: Index, data: Uint8Array): void {
    if (data.length === 0) {
      // A witness keeps no data (docs/fencing.md): an empty state machine at the snapshot's index.
      this.kv = new KvStateMachine();
      if (index > 0) this.kv.applyNoop(index);
      return;
    }
    const r = KvStateMachine.restore(data);
    if (r instanceof KvError) throw new Error(`node ${this.id}: snapshot at index ${index} does not restore: ${r.message}`);
    if (r.appliedIndex !== index) throw new Error(`node ${this.id}: snapshot at index ${index} holds a state machine at index ${r.appliedIndex}`);
    this.kv = r;
  }

  stop(): void {
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'stopped';
    this.fencing?.stopped(true);
    this.cancelTick?.();
    this.dlog?.close();
    this.failAll('node stopped');
    for (const l of this.opts.links) l.close();
  }

  /** An exception escaped the engine, the fencer or the state machine at entry point `where`: the fatal path. */
  private crash(where: string, e: unknown): void {
    const err = new InternalError(where, e);
    if (this.stateValue === 'stopped') {
      this.log('error', 'internal error after the node stopped', { node: this.id, error: err.message, stack: err.stack ?? '' });
      return;
    }
    this.fatal(err);
  }

  private fatal(err: Error): void {
    if (this.stateValue === 'stopped') return;
    this.log('error', 'fatal: node stops', { node: this.id, error: err.message, kind: err.name, stack: err.stack ?? '' });
    this.stateValue = 'stopped';
    this.fencing?.stopped(false);
    this.cancelTick?.();
    this.dlog?.close();
    this.failAll(`node stopped: ${err.message}`);
    this.opts.onFatal?.(err);
  }

  private failAll(why: string): void {
    const writes = [...this.pendingWrites.values()];
    const fw = [...this.forwarded.values()];
    const reads = [...this.pendingReads.values()];
    const queued = this.queue.splice(0);
    this.pendingWrites.clear();
    this.forwarded.clear();
    this.pendingReads.clear();
    for (const w of writes) w.reply(unknownOutcome(`${why}; the write was proposed and may or may not be applied`));
    for (const f of fw) f.reply(unknownOutcome(`${why}; the write was forwarded to the leader and may or may not be applied`));
    for (const r of reads) r.cb(unavailable(why));
    for (const q of queued) q.reply(unavailable(`${why}; the write was not proposed`));
  }

  private armTick(): void {
    this.tickDueAt = this.opts.clock.monotonicMs() + this.tickMs;
    this.cancelTick = this.opts.clock.setTimer(this.tickMs, this.onTick);
  }

  /** Monotonic time the armed tick is due (see onTick: a late tick lets input in first). */
  private tickDueAt = 0;
  /** The current tick was put off once to let waiting input in (see onTick). */
  private tickDeferred = false;

  /** The tick timer's callback: one function for the runtime's life, not a closure per tick. */
  private readonly onTick = (): void => {
    if (this.stateValue !== 'running') return;
    if (!this.tickDeferred && this.opts.clock.monotonicMs() - this.tickDueAt > this.tickMs) {
      // The tick comes late (the process stalled: GC, SIGSTOP, a busy core). Node runs
      // timers before it polls sockets, so a heartbeat that arrived during the stall
      // would still be unread when this tick reaches the election timeout. Let the
      // waiting input in first: a 0 ms timer runs after this loop turn's poll phase.
      this.tickDeferred = true;
      this.cancelTick = this.opts.clock.setTimer(0, this.onTick);
      return;
    }
    this.tickDeferred = false;
    this.armTick();
    try {
      const now = this.opts.clock.monotonicMs();
      this.checkTickLag(now);
      this.lastTickAt = now;
      this.raft!.tick();
      this.expire();
      this.afterStep();
      this.fencing?.tick();
      this.pump();
    } catch (e) {
      this.crash('tick', e);
    }
  };

  /** Monotonic time of the last tick (NaN before the first). */
  private lastTickAt = NaN;

  /**
   * The engine counts time in ticks, one per timer firing. A tick that comes late — the
   * process was stopped (SIGSTOP, a GC pause, a blocked SD-card write) or the event
   * loop was blocked — leaves the engine's clock behind real time, and a read lease
   * counted in ticks would then outlive its real bound (a resumed leader answering
   * reads that miss a newer leader's writes). So when the last tick is more than two
   * periods old, heartbeat rounds sent so far hold no lease any more (RaftNode.dropLease):
   * reads go through a ReadIndex round until a fresh round is acknowledged. Called before
   * anything that may serve a read (a tick, a message, a client read).
   */
  private checkTickLag(now: number): void {
    if (now - this.lastTickAt > 2 * this.tickMs) this.raft!.dropLease();
  }

  private afterStep(): void {
    const raft = this.raft!;
    const leader = raft.isLeader;
    if (leader && !this.wasLeader) {
      // Lock time line: a new leader continues from the state machine's clock, so the
      // time stamped into lock commands never runs backwards across leaders.
      this.lockClockOffset = Math.max(0, this.kv.clockMs - this.opts.clock.monotonicMs());
    }
    if (!leader && this.wasLeader && this.pendingGrowth.size > 0) {
      // Not leading any more: our proposals' growth is no longer ours to count.
      this.pendingGrowth.clear();
      this.pendingUse = { keys: 0, bytes: 0 };
    }
    this.fencing?.step(leader, this.wasLeader);
    this.wasLeader = leader;
    this.opts.observer?.afterStep?.(this);
  }

  // ---------------------------------------------------------------------------
  // Split-brain defenses (leader-fencing.ts, shared with engine-node.ts; the rules and
  // the proof are in activation.ts)

  /** Builds the shared defenses with this runtime as their host (after the engine is up). */
  private setupFencing(): void {
    const f = this.opts.fencing;
    if (!f) return;
    this.fencing = new LeaderFencing({
      who: 'NodeRuntime',
      id: this.id,
      clock: this.opts.clock,
      log: this.log,
      rng: this.opts.rng,
      tickMs: this.tickMs,
      electionTimeoutMinMs: this.opts.raft?.electionTimeoutMinMs ?? 150,
      formedBefore: this.formedBefore,
      running: () => this.stateValue === 'running',
      stopped: () => this.stateValue === 'stopped',
      isLeader: () => this.isLeader,
      // getters, not status(): this runs after every engine step
      leaderId: () => this.raft?.leaderId ?? NO_NODE,
      term: () => this.raft?.currentTerm ?? 0,
      voters: () => this.currentVoters(),
      // Raft's token is the index of the term's no-op: the last index at election.
      tokenAtElection: () => this.raft!.status().lastIndex,
      leaderToken: () => 0,
      kv: () => this.kv,
      propose: (data) => this.raft!.propose(data).ok,
      submit: (cmd) => this.proposeOrForward(cmd, () => {}, true),
      pump: () => this.pump(),
      persistFormed: (done) => this.dlog!.persist({ meta: encodeMeta({ boot: this.bootCounter, formed: true }) }, done),
      crash: (where, e) => this.crash(where, e),
      fatal: (err) => this.fatal(err),
      heardAgoMs: (node) => this.wire?.heardAgoMs(node, this.opts.clock.monotonicMs()),
      fenced: (rec) => this.opts.observer?.fenced?.(this, rec),
      activationChanged: (ev) => {
        this.opts.observer?.activation?.(this, ev);
        this.activationListeners.emit(ev);
      },
    }, f);
  }

  /** The Fencer (undefined without fencer targets). */
  private get fencer(): Fencer | undefined {
    return this.fencing?.fencer;
  }

  private currentVoters(): NodeId[] {
    const c = this.raft!.status().config;
    return [...c.voters, ...c.witnesses];
  }

  /**
   * Operator: `quorumd fence NODE` — fence `node` now through this board's configured
   * devices (any node may do it; no delay beyond the configured ones). The answer comes
   * when the fence finished: 200 with the record, or 503 when nothing is configured.
   */
  fence(node: NodeId, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
    if (typeof cb !== 'function') throw new TypeError('NodeRuntime.fence: cb must be a function');
    operatorFence(this.fencing, { id: this.id, running: this.stateValue === 'running' }, node, cb);
  }

  /**
   * Operator: `quorumd fence confirm NODE` — a human declares `node` safely down (as
   * Pacemaker's stonith_admin --confirm). Clears it as a suspect and records it.
   */
  confirmFenced(node: NodeId): ConfirmResult {
    return operatorConfirm(this.fencing, { id: this.id, running: this.stateValue === 'running' }, node, () => this.activationStatus());
  }

  // ---------------------------------------------------------------------------
  // The Ready loop

  private pump(): void {
    this.loop.pump();
  }

  private handleDurable(rd: Ready): void {
    const raft = this.raft!;
    this.opts.observer?.persisted?.(this, rd);
    if (rd.snapshot) {
      const idx = rd.snapshot.meta.index;
      try {
        this.restoreStateMachine(idx, rd.snapshot.data);
      } catch (e) {
        return this.fatal(e as Error);
      }
      this.log('info', 'snapshot installed', { node: this.id, index: idx, term: rd.snapshot.meta.term });
      for (const [i, w] of this.pendingWrites) {
        if (i <= idx) {
          this.pendingWrites.delete(i);
          w.reply(unknownOutcome(`a snapshot up to index ${idx} replaced the log; the outcome of the write at index ${i} is not known here`));
        }
      }
    }
    // Indexed loops: empty lists of a Ready are one frozen array, and for-of over a
    // frozen array is not optimized into a plain loop (an iterator per loop).
    const msgs = rd.messages;
    for (let i = 0; i < msgs.length; i++) this.send(msgs[i]!);
    if (rd.committed.length > 0) {
      const witness = raft.witness;
      for (const e of rd.committed) this.applyEntry(e, witness);
    }
    const rss = rd.readStates;
    for (let i = 0; i < rss.length; i++) {
      const rs = rss[i]!;
      const p = this.pendingReads.get(rs.ctx);
      if (p) p.index = rs.index;
    }
    const failed = rd.failedReads;
    for (let i = 0; i < failed.length; i++) {
      const ctx = failed[i]!;
      const p = this.pendingReads.get(ctx);
      if (p) {
        this.pendingReads.delete(ctx);
        p.cb(unavailable('the read could not be confirmed by a leader (leadership lost or no leader)'));
      }
    }
    if (rd.softState) {
      this.log('info', 'role', { node: this.id, role: rd.softState.role, term: rd.softState.term, leader: rd.softState.leader });
    }
    raft.advance(rd);
    this.serveReads();
    this.maybeCompact();
  }

  private applyEntry(e: Entry, witness: boolean): void {
    const g = this.pendingGrowth.get(e.index);
    if (g) this.settleGrowth(e.index, g);
    let result: ApplyResult | undefined;
    if (e.type === EntryType.Normal && !witness) {
      result = this.kv.apply(e.index, e.data);
    } else {
      const err = this.kv.applyNoop(e.index);
      if (err) this.log('error', 'apply order', { node: this.id, index: e.index, error: err.message });
    }
    if (result && result.op === 'error' && result.error.code === 'apply-order') {
      this.log('error', 'apply order', { node: this.id, index: e.index, error: result.error.message });
    }
    this.opts.observer?.applied?.(this, e, result);
    this.fencing?.applied(e, result);
    const w = this.pendingWrites.get(e.index);
    if (!w) return;
    this.pendingWrites.delete(e.index);
    if (w.term !== e.term) {
      w.reply(unavailable(`another entry (term ${e.term}) was committed at index ${e.index}: the write was not applied`));
      return;
    }
    w.reply(resultToClient(result));
  }

  private settleGrowth(index: Index, g: KvUsage): void {
    this.pendingGrowth.delete(index);
    this.pendingUse = { keys: this.pendingUse.keys - g.keys, bytes: this.pendingUse.bytes - g.bytes };
  }

  private serveReads(): void {
    if (this.pendingReads.size === 0) return;
    const applied = this.kv.appliedIndex;
    for (const [ctx, p] of this.pendingReads) {
      if (p.index === undefined || p.index > applied) continue;
      this.pendingReads.delete(ctx);
      p.cb(this.localGet(p.key));
    }
  }

  private maybeCompact(): void {
    const raft = this.raft!;
    const applied = raft.appliedIndex;
    if (applied - raft.snapshotIndex < this.snapshotEntries || this.kv.appliedIndex !== applied) return;
    const data = this.kv.snapshot();
    const r = raft.compact(applied, data);
    if (!r.ok) {
      this.log('warn', 'compaction refused', { node: this.id, reason: r.reason });
      return;
    }
    const snap = raft.latestSnapshot()!;
    this.dlog!.persist({ snapshot: { index: r.meta.index, term: r.meta.term, config: r.meta.config, data: snap.data } }, (err) => {
      if (this.stateValue !== 'running') return;
      if (err) return this.fatal(err);
      this.log('debug', 'snapshot taken', { node: this.id, index: r.meta.index });
    });
  }

  // ---------------------------------------------------------------------------
  // Wire

  private send(m: Message): void {
    if (this.fencing && m.type === MsgType.Heartbeat) this.fencing.roundSent(m.term, m.ctx);
    this.wire!.send(m);
  }


  /** An authenticated message (daemon/runtime/wire-endpoint.ts opened it). */
  private onMessage(m: Message): void {
    if (RAFT_TYPES.has(m.type)) {
      this.fencing?.peerSeen(m.from);
      if ((m.type === MsgType.PreVote || m.type === MsgType.Vote) && m.term > this.raft!.status().term) this.campaignSeenAt = this.opts.clock.monotonicMs();
      // A message in our term: its sender knows it does not lead any earlier term.
      this.fencing?.acknowledged(m.from, m.term, m.type === MsgType.HeartbeatReply ? m.ctx : undefined);
      try {
        if (m.type === MsgType.ReadIndex) this.checkTickLag(this.opts.clock.monotonicMs());
        this.raft!.step(m);
      } catch (e) {
        // A bad frame never gets here (the decoder refuses it): a throw is a bug or a
        // safety problem, and the node stops (the supervisor restarts it from disk).
        this.opts.observer?.engineError?.(this, e as Error);
        return this.crash(`engine step of ${MsgType[m.type]} from n${m.from}`, e);
      }
      this.afterStep();
    } else if (m.type === MsgType.ClientRequest) {
      this.onClientRequest(m);
    } else if (m.type === MsgType.ClientReply) {
      this.onClientReply(m);
    } else {
      this.unsupported++;
      return;
    }
    this.pump();
  }

  private onLinkEvent(link: Link, ev: LinkEvent): void {
    if (ev.kind === 'session-lost' || ev.kind === 'down') {
      // Peers may hear our will now and forget us as leader: earlier heartbeat rounds
      // hold no read lease any more (src/raft/raft.ts leaderGone has the argument).
      this.raft!.dropLease();
      if (ev.kind === 'session-lost') return;
    }
    if (ev.kind === 'peer-gone') {
      const raft = this.raft!;
      const st = raft.status();
      this.log('info', 'peer gone', { node: this.id, link: link.name, peer: ev.peer, leader: st.leader });
      if (ev.peer === this.id) return;
      // With another link that may still reach the peer (a serial wire to it, or a
      // second bus), its connection to this broker dying says nothing about the peer.
      const otherPath = this.opts.links.some((l) => {
        const p = (l as { peer?: unknown }).peer;
        return l !== link && (typeof p !== 'number' || p === ev.peer);
      });
      if (otherPath) return;
      // Writes forwarded to it will get no answer: 504 now rather than at the timeout.
      for (const [id, f] of this.forwarded) {
        if (f.to !== ev.peer) continue;
        this.forwarded.delete(id);
        f.reply(unknownOutcome(`node ${ev.peer}, the leader this write was forwarded to, is gone (its connection died); the write may or may not be applied`));
      }
      if (ev.peer !== st.leader) return;
      // The leader's connection died (MQTT Last Will): forget it (RaftNode.leaderGone:
      // no stickiness; safety reasoning there), then campaign in id order (see
      // peerGoneStaggerMs): the first survivor at once, and the others grant at once.
      const r = raft.leaderGone(ev.peer);
      this.afterStep();
      if (r.ok && r.forgot) {
        const survivors = st.config.voters.filter((v) => v !== ev.peer).sort((a, b) => a - b);
        const rank = survivors.indexOf(this.id);
        const term = st.term;
        // Attempts at rank × stagger, then every survivors × stagger, until the
        // election timeout takes over. A retry matters when a pre-vote was dropped by
        // a peer whose own will had not arrived yet (it was still sticky and does not
        // answer): with 2 nodes + witness there is no other survivor to try.
        const period = survivors.length * this.staggerMs;
        let left = period > 0 ? Math.ceil((this.opts.raft?.electionTimeoutMinMs ?? 150) / period) + 1 : 1;
        const go = () => {
          if (this.stateValue !== 'running' || this.raft !== raft) return;
          const now = raft.status();
          if (now.role === 'candidate' || now.role === 'leader' || now.leader !== NO_NODE || now.term !== term) return;
          // Someone else is campaigning right now (we just granted or refused it): let it
          // finish instead of splitting the vote; try again one period later if it fails.
          if (this.opts.clock.monotonicMs() - this.campaignSeenAt >= this.staggerMs) {
            raft.campaign();
            this.afterStep();
            this.pump();
          }
          if (--left > 0) this.opts.clock.setTimer(period, goGuarded);
        };
        const goGuarded = () => {
          try {
            go();
          } catch (e) {
            this.crash('peer-gone campaign', e);
          }
        };
        if (rank === 0) go();
        else if (rank > 0) this.opts.clock.setTimer(rank * this.staggerMs, goGuarded);
      }
      this.pump();
    } else {
      WireEndpoint.logLinkEvent(this.log, this.id, link, ev);
    }
  }

  // ---------------------------------------------------------------------------
  // Client API

  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void {
    const cmd: Command = { op: 'put', key, value };
    if (opts?.cas !== undefined) cmd.cas = opts.cas;
    this.write(cmd, cb);
  }

  del(key: string, opts: { cas?: number }, cb: ClientCallback): void {
    const cmd: Command = { op: 'del', key };
    if (opts?.cas !== undefined) cmd.cas = opts.cas;
    this.write(cmd, cb);
  }

  /**
   * Locks. `lease` is the holder's secret lease id (src/kv/lease.ts): only its digest
   * goes into the command, so neither the log nor a forwarded frame carries the id.
   * Renew and release name the grant by it; the public fencing token is no credential.
   */
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    const l = leaseArg(lease);
    if (typeof l === 'string') return cb({ status: Status.BAD_REQUEST, error: l });
    this.write({ op: 'lock.acquire', name, owner, ttlMs, now: 0, lease: l }, cb);
  }

  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    const l = leaseArg(lease);
    if (typeof l === 'string') return cb({ status: Status.BAD_REQUEST, error: l });
    this.write({ op: 'lock.renew', name, lease: l, now: 0 }, cb);
  }

  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    const l = leaseArg(lease);
    if (typeof l === 'string') return cb({ status: Status.BAD_REQUEST, error: l });
    this.write({ op: 'lock.release', name, lease: l }, cb);
  }

  /**
   * Whether this leader's applied state holds every committed write: it is active (with
   * fencing, its lease holds, so no newer leader exists), an entry of its own term is
   * committed (so everything committed before it is in its log) and it applied up to
   * its commit index. Only then may it refuse a lock command on its own state without
   * proposing it: a refusal then is as linearizable as a read at this instant.
   */
  private judgesLocksLocally(): boolean {
    const raft = this.raft!;
    if (!this.active) return false;
    const commit = raft.status().commitIndex;
    return commit > 0 && raft.termAt(commit) === raft.currentTerm && this.kv.appliedIndex >= commit;
  }

  /**
   * Scheduled jobs (daemon/jobs): claims `slot` (ms since the Unix epoch) of `job` for
   * this node's leadership of term `lead.term`, whose fencing token the caller saw as
   * `lead.token`. Proposed only here and never forwarded: only an active leader may
   * claim, and only in the term it saw. Answers 200 (granted: the slot is this node's),
   * 409 (not granted: that or a later slot was claimed before, or the term is stale;
   * `holder` names the claimer), 503 (not proposed) or 504 (unknown). A granted claim
   * does not by itself allow running: the caller checks that it is still active with
   * the same token when the answer arrives.
   */
  jobClaim(job: string, slot: number, lead: { term: number; token: number }, cb: ClientCallback): void {
    this.write({ op: 'job.claim', job, slot, node: this.id, term: lead.term, token: lead.token }, cb);
  }

  /** Records how the run of a claimed slot ended (any node; forwarded to the leader like a put). */
  jobDone(r: { job: string; slot: number; outcome: JobOutcomeName; code: number; signal: string; startedAtMs: number; durationMs: number }, cb: ClientCallback): void {
    this.write({ op: 'job.done', job: r.job, slot: r.slot, node: this.id, outcome: r.outcome, code: r.code, signal: r.signal, startedAtMs: r.startedAtMs, durationMs: r.durationMs }, cb);
  }

  /** Linearizable by default (ReadIndex); `stale: true` reads this node's state as is. */
  get(key: string, opts: { stale?: boolean }, cb: ClientCallback): void {
    if (typeof cb !== 'function') throw new TypeError('NodeRuntime.get: cb must be a function');
    const bad = checkKey(key);
    if (bad) return cb(bad);
    if (this.stateValue !== 'running') return cb(unavailable(`node ${this.id} is not running (${this.stateValue})`));
    const raft = this.raft!;
    if (raft.witness) return cb(unavailable(`node ${this.id} is a witness and holds no data; ask a data node`));
    if (raft.missingData) return cb(unavailable(`node ${this.id} is a former witness waiting for a snapshot with the data (docs/fencing.md); ask another node`));
    if (opts?.stale) return cb(this.localGet(key));
    const ctx = this.nextId();
    this.checkTickLag(this.opts.clock.monotonicMs());
    const r = raft.readIndex(ctx);
    this.afterStep();
    if (!r.ok) return cb(unavailable(`read not possible: ${r.reason}`));
    this.pendingReads.set(ctx, { key, cb, deadline: this.opts.clock.monotonicMs() + this.timeoutMs });
    this.pump();
  }

  campaign(): Result<{ term: Term }> {
    if (this.stateValue !== 'running') return { ok: false, code: 'no-leader', reason: `node ${this.id} is not running` };
    const r = this.raft!.campaign();
    this.afterStep();
    this.pump();
    return r;
  }

  transferLeadership(to: NodeId): Result<{ term: Term }> {
    if (this.stateValue !== 'running') return { ok: false, code: 'not-leader', reason: `node ${this.id} is not running` };
    const r = this.raft!.transferLeadership(to);
    this.afterStep();
    this.pump();
    return r;
  }

  private localGet(key: string): ClientResult {
    const e = this.kv.get(key);
    if (!e) return { status: Status.NOT_FOUND, index: 0, error: `key ${JSON.stringify(key)} not found` };
    return { status: Status.OK, value: e.value, index: e.modIndex };
  }

  private write(cmd: Command, cb: ClientCallback): void {
    if (typeof cb !== 'function') throw new TypeError(`NodeRuntime.${cmd.op}: cb must be a function`);
    const enc = encodeCommand(cmd);
    if (enc instanceof KvError) return cb({ status: enc.httpStatus, error: enc.message });
    if (this.stateValue !== 'running') return cb(unavailable(`node ${this.id} is not running (${this.stateValue})`));
    if (!this.batching) {
      this.queue.push({ cmd, reply: cb, local: true });
      this.pump();
      return;
    }
    this.proposeOrForward(cmd, cb, true);
    this.pump();
  }

  private proposeQueued(): void {
    const q = this.queue.shift()!;
    this.proposeOrForward(q.cmd, q.reply, q.local);
  }

  /**
   * Proposes on the leader; a follower forwards (only requests from local clients:
   * a forwarded request is never forwarded again, so there are no loops).
   */
  private proposeOrForward(cmd: Command, reply: ClientCallback, local: boolean): void {
    const raft = this.raft!;
    if (raft.isLeader) {
      if (cmd.op === 'lock.acquire' || cmd.op === 'lock.renew') {
        // docs/fencing.md: locks are granted only by an active leader.
        if (!this.active) return reply(unavailable(`leader ${this.id} is not active yet (${this.fencing?.waitingFor() ?? ''}); the lock command was not proposed`));
        cmd = { ...cmd, now: this.lockNow() };
      }
      if ((cmd.op === 'lock.renew' || cmd.op === 'lock.release') && cmd.lease && this.judgesLocksLocally()) {
        // A wrong lease id (a guess) is refused here, before anything is written.
        const verdict = this.kv.lockCheck(cmd.name, cmd.lease, this.lockNow());
        if (verdict !== 'ok') {
          this.lockRefusals++;
          return reply({ status: Status.CONFLICT, error: `${cmd.op === 'lock.renew' ? 'renew' : 'release'} refused: ${verdict === 'not-held' ? `lock ${JSON.stringify(cmd.name)} is not held` : 'not the holder (wrong lease)'}` });
        }
      }
      if (cmd.op === 'job.claim') {
        // A slot is claimed only by an active leader, in the term it saw itself active in.
        if (!this.active) return reply(unavailable(`leader ${this.id} is not active (${this.fencing?.waitingFor() || 'not active'}); the job claim was not proposed`));
        if (raft.status().term !== cmd.term) return reply(unavailable(`term changed (now ${raft.status().term}, claim for ${cmd.term}); the job claim was not proposed`));
      }
      const data = encodeCommand(cmd);
      if (data instanceof KvError) return reply({ status: data.httpStatus, error: data.message });
      // Quotas: what this write adds, beside what the state holds and what our accepted proposals will add.
      const growth = quotaGrowth(this.kv, cmd);
      const over = growth.keys > 0 || growth.bytes > 0 ? checkQuota(this.quota, this.kv.usage(), this.pendingUse, growth) : null;
      if (over) {
        this.quotaRefusals++;
        return reply({ status: over.httpStatus, error: over.message });
      }
      const r = raft.propose(data);
      this.afterStep();
      if (r.ok && (growth.keys > 0 || growth.bytes > 0)) {
        this.pendingGrowth.set(r.index, growth);
        this.pendingUse = { keys: this.pendingUse.keys + growth.keys, bytes: this.pendingUse.bytes + growth.bytes };
      }
      if (r.ok) {
        // An earlier proposal of ours at this index (from a previous leadership, since
        // truncated here) is not settled by this one: it could still be committed by a
        // later leader that holds it, so its outcome is unknown.
        const prev = this.pendingWrites.get(r.index);
        if (prev) prev.reply(unknownOutcome(`the write proposed at index ${r.index} in term ${prev.term} was replaced in this node's log; it may or may not be applied`));
        this.pendingWrites.set(r.index, { term: r.term, reply, deadline: this.opts.clock.monotonicMs() + this.timeoutMs });
        return;
      }
      if (r.code === 'too-large') return reply({ status: Status.TOO_LARGE, error: r.reason });
      if (r.code === 'bad-request') return reply({ status: Status.BAD_REQUEST, error: r.reason });
      return reply(unavailable(`not proposed: ${r.reason}`));
    }
    const leader = raft.leaderId;
    if (cmd.op === 'job.claim') return reply(unavailable(`node ${this.id} is not the leader; a job claim is never forwarded`));
    if (!local) return reply(unavailable(`node ${this.id} is not the leader (leader: ${leader || 'unknown'}); not proposed`));
    if (leader === NO_NODE || leader === this.id) return reply(unavailable('no leader known; not proposed'));
    const data = encodeCommand(cmd);
    if (data instanceof KvError) return reply({ status: data.httpStatus, error: data.message });
    const reqId = this.nextId();
    this.forwarded.set(reqId, { reply, deadline: this.opts.clock.monotonicMs() + this.timeoutMs, to: leader });
    const m: ClientRequest = { type: MsgType.ClientRequest, from: this.id, to: leader, term: raft.currentTerm, reqId, body: data };
    this.send(m);
  }

  private onClientRequest(m: ClientRequest): void {
    const answer = (res: ClientResult) => {
      if (this.stateValue !== 'running') return;
      const rep: ClientReply = { type: MsgType.ClientReply, from: this.id, to: m.from, term: this.raft!.currentTerm, reqId: m.reqId, status: res.status, body: encodeReplyBody(res) };
      this.send(rep);
    };
    const cmd = decodeCommand(m.body);
    if (cmd instanceof KvError) return answer({ status: cmd.httpStatus, error: `forwarded command: ${cmd.message}` });
    if (!this.batching) {
      this.queue.push({ cmd, reply: answer, local: false });
      return;
    }
    this.proposeOrForward(cmd, answer, false);
  }

  private onClientReply(m: ClientReply): void {
    const f = this.forwarded.get(m.reqId);
    if (!f) return; // late (we already answered 504) or from before a restart
    this.forwarded.delete(m.reqId);
    const res = decodeReplyBody(m.status, m.body);
    if (res instanceof Error) {
      this.log('warn', 'bad ClientReply', { node: this.id, from: m.from, error: res.message });
      return f.reply(unknownOutcome(`the leader's answer was unreadable (${res.message}); the write may or may not be applied`));
    }
    f.reply(res);
  }

  /** Times out requests (called every tick). */
  private expire(): void {
    const now = this.opts.clock.monotonicMs();
    // Every tick of every node: the maps are mostly empty, and an empty for-of still makes an iterator.
    if (this.pendingWrites.size > 0) for (const [i, w] of this.pendingWrites) {
      if (w.deadline <= now) {
        this.pendingWrites.delete(i);
        w.reply(unknownOutcome(`no outcome within ${this.timeoutMs} ms for the write proposed at index ${i}; it may or may not be applied`));
      }
    }
    if (this.forwarded.size > 0) for (const [id, f] of this.forwarded) {
      if (f.deadline <= now) {
        this.forwarded.delete(id);
        f.reply(unknownOutcome(`no answer from the leader within ${this.timeoutMs} ms; the forwarded write may or may not be applied`));
      }
    }
    if (this.pendingReads.size > 0) for (const [ctx, r] of this.pendingReads) {
      if (r.deadline <= now) {
        this.pendingReads.delete(ctx);
        r.cb(unavailable(`the read was not confirmed within ${this.timeoutMs} ms`));
      }
    }
  }

  private lockNow(): number {
    return Math.max(this.kv.clockMs, Math.floor(this.opts.clock.monotonicMs()) + this.lockClockOffset);
  }

  /**
   * Request ids and read contexts: 12 bits of this boot's id, 20 bits of counter, so
   * that an answer to a request of an earlier incarnation (still in flight when we
   * restarted) never matches a request of this one.
   */
  private nextId(): number {
    this.ids = (this.ids + 1) & 0xfffff;
    if (this.ids === 0) this.ids = 1;
    return (((this.bootCounter & 0xfff) << 20) | this.ids) >>> 0 || 1;
  }
}

export { ALIVE_WINDOW_MS, aliveRefusal, type ConfirmResult } from './leader-fencing.ts';

export { checkKey, leaseArg, resultToClient } from './results.ts';
export { decodeMeta, encodeMeta, type RuntimeMeta } from './meta.ts';
