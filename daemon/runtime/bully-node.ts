/**
 * The bully node runtime: one BullyNode (src/bully) wired to one board's HAL (Clock,
 * Storage, Link[]), with the same outward surface as NodeRuntime (node.ts) where it
 * makes sense: start/stop, status() with `engine: 'bully'`, isLeader, campaign, the
 * same authenticated links (FrameSealer/FrameOpener, one sealed frame put on every
 * link), peer-gone → campaign, a fatal storage error stops the node and calls
 * `onFatal`. The simulator (`quorumd sim --engine bully`) and `quorumd start` with
 * `engine: bully` run this same code.
 *
 * Durability: the engine's hard state `{epoch, held}` and the wire boot counter live in
 * one small file, `bully.state`, replaced atomically (docs/architecture.md, Durability): write
 * `bully.state.tmp`, fsync it, rename over `bully.state`, fsync the directory. 27 bytes:
 *   'Q' 'B' · version 1 · epoch (u64 BE) · held (u64 BE) · boot counter (u32 BE) · CRC-32 (u32 BE) of the bytes before it
 * We chose a file of our own over the Raft durable log: bully has no log, and the
 * durable log's recovery (torn tails, snapshots) would be dead weight on a board that
 * only needs 27 bytes. A rename is atomic, so a power cut leaves either the old or the
 * new file; a `bully.state` that fails its CRC is therefore real corruption and the
 * node refuses to start (a clearly named StorageCorruptError-like error), rather than
 * silently restart at epoch 0 and reuse an epoch it announced.
 *
 * Boot: read the file, persist boot counter + 1 (durable before any frame leaves, so the
 * receivers' replay windows never see a (bootId, seq) reused), rebuild the BullyNode
 * from exactly the persisted {epoch, held}, then tick every `tickMs` and listen.
 *
 * The Ready loop follows src/bully/bully.ts exactly, one Ready at a time: persist the
 * hard state (when present) → when durable, send the messages → act on the soft state →
 * advance. A Coordinator message therefore never carries an epoch that a restart could
 * reuse. Ticks and messages that arrive during an fsync go into the next Ready.
 *
 * Fencing (option `fencing`, docs/fencing.md, issue 6/7): "coordinator" is not "active". A
 * coordinator is *active* — drives actuators, runs hooks — only once every earlier
 * coordinator it knows of cannot act any more. Bully has no quorum and therefore no
 * lease (the Raft runtime's lease rule needs quorum-acknowledged heartbeat rounds), so
 * the only proofs are:
 *   - **fenced**: switched off and verified off by STONITH (src/fence Fencer: levels,
 *     verify, retries, delays; the same HAL relays and power-sense inputs as Raft);
 *   - **acknowledged**: the suspect sent an Election or Answer at an epoch ≥ the epoch
 *     of its coordinatorship we know. The engine sends those only while *not*
 *     coordinator, with its current epoch, and an epoch ≥ e means that coordinatorship
 *     e had ended when it sent (src/bully/bully.ts: a coordinator that adopts a higher
 *     epoch steps down; a new coordinatorship takes a fresh epoch). To make this cheap
 *     after a preemption, a node that ever coordinated (`held > 0`) and now follows a
 *     higher-priority coordinator under a new (leader, epoch) sends it one Election at
 *     that epoch — legal bully traffic (the coordinator answers with its announcement),
 *     and the step-down acknowledgement the gate needs. Without it every preemption
 *     would power-cycle the preempted board;
 *   - **operator**: `confirmFenced(node)` (`quorumd fence confirm NODE`).
 * Suspects ("every earlier coordinator it knows of"): every board whose Coordinator
 * announcement this process received (highest token per board) or that it followed,
 * with a token below ours, minus those shown stopped since (an Election/Answer as
 * above, or cleared at an earlier activation). A coordinatorship this process never
 * heard of (another component of a partition, or before its boot) is not a suspect:
 * nothing can be known about it; fencing tokens at the resource contain it.
 * A suspect without a fence device on this board can only be cleared by an
 * acknowledgement or an operator (the status says so): bully has no lease to wait out,
 * so wire a relay to every board that may coordinate (the simulator does).
 * `fencing` without fencer targets = **tokens only**: active as soon as coordinator
 * (there is nothing to wait for); outside resources must check the token. No
 * self-fencing: a bully coordinator has no majority whose loss it could notice, so the
 * watchdog is not used here.
 *
 * Client API: the bully engine has no replicated log, so KV and lock requests answer
 * 501 with NOT_SUPPORTED_REASON ("... needs the Raft engine (engine: raft)"): a definite
 * answer — nothing was applied — that tells the client this engine cannot do it, not
 * that it should retry (503) or that the outcome is unknown (504).
 */
import { InternalError, guardedLinkCallbacks } from './fatal.ts';
import { BullyNode, NOT_SUPPORTED_REASON, fencingToken, type BullyMember, type BullyOptions, type BullyReady, type BullySoftState, type BullyStatus } from '../../src/bully/index.ts';
import type { Keyring } from '../../src/wire/auth.ts';
import { DEFAULT_MAX_FRAME, newDropCounters, type DropCounters } from '../../src/wire/codec.ts';
import { MsgType, type Message } from '../../src/wire/messages.ts';
import { NO_NODE, type NodeId, type Term } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Cancel, Clock, Done, Link, LinkEvent, PowerSense, Relay, Storage } from '../../hal/interfaces.ts';
import { ActivationGate, type ActivationReason, type Fencer, type FenceRecord, type FencerConfig } from '../../src/fence/index.ts';
import { nullLogger, type Logger } from './logger.ts';
import type { ClientCallback } from './results.ts';
import { ActivationListeners, type ActivationEvent } from './activation.ts';
import { WireEndpoint } from './wire-endpoint.ts';
import { ReadyLoop } from './ready-loop.ts';
import { FencingDriver, badNodeArg, fenceSucceeded } from './fencing-driver.ts';
import { aliveRefusal } from './node.ts';

/** HTTP-like status for "this engine cannot do that" (docs/api.md lists 503/504 for the uncertain cases; this one is definite). */
export const ENGINE_UNSUPPORTED = 501;
/** The `code` the HTTP API puts next to ENGINE_UNSUPPORTED. */
export const ENGINE_UNSUPPORTED_CODE = 'engine-unsupported';

export { BULLY_STATE_FILE, BullyStateCorruptError, encodeBullyState, decodeBullyState, type BullyPersisted } from './bully-state.ts';
import { BULLY_STATE_FILE, decodeBullyState, encodeBullyState, type BullyPersisted } from './bully-state.ts';
const TMP_FILE = 'bully.state.tmp';

/** Hooks for whoever watches the node from outside (the simulator's checks, the HTTP backend). */
export interface BullyRuntimeObserver {
  booted?(rt: BullyRuntime): void;
  /** After every input the engine took (message, tick, campaign) and every handled Ready. */
  afterStep?(rt: BullyRuntime): void;
  /** A Ready's hard state is durable (or it had none); its messages are not sent yet. */
  persisted?(rt: BullyRuntime, rd: BullyReady): void;
  /** The engine threw: a bug, never a bad frame. */
  engineError?(rt: BullyRuntime, err: Error): void;
  /** An authenticated bully message arrived (before the engine steps it): the simulator's ground truth of who heard what. */
  received?(rt: BullyRuntime, m: Message): void;
  /** The node became active (true) or stopped being active (false). */
  activation?(rt: BullyRuntime, ev: ActivationEvent): void;
  /** A fence run by this node finished (outcome other than 'pending'). */
  fenced?(rt: BullyRuntime, rec: FenceRecord): void;
}

/**
 * Split-brain defenses for bully (see the file comment). Omitted: active = coordinator
 * (the behaviour before fencing, kept for engine tests and benchmarks).
 */
export interface BullyFencingOptions {
  /** HAL relays this board drives and power-sense inputs it reads, found by name from `fencer`. Default none. */
  relays?: Relay[];
  powerSense?: PowerSense[];
  /**
   * STONITH: fence targets and timing (src/fence/fencer.ts documents every field and
   * default). Omitted or no targets: tokens only (active as soon as coordinator).
   */
  fencer?: Omit<FencerConfig, 'self'>;
}

export interface BullyRuntimeOptions {
  id: NodeId;
  /** Every member with its priority (src/bully/options.ts BullyMember); the same list on every node. */
  members: readonly BullyMember[];
  /** Cluster id on the wire (0..65535). */
  cluster: number;
  keyring: Keyring;
  clock: Clock;
  storage: Storage;
  /** Every link; messages go out on all of them. */
  links: Link[];
  /** Failure-timeout draws of the engine. */
  rng: Rng;
  /** Engine options (src/bully/options.ts documents each, with defaults). */
  bully?: Partial<BullyOptions>;
  /**
   * Start an election at once when a link reports the coordinator gone (its MQTT Last
   * Will). Default true: bully needs no vote, so there is no split vote to avoid; the
   * Elections go upwards and the highest survivor announces within one answer timeout.
   */
  campaignOnPeerGone?: boolean;
  logger?: Logger;
  observer?: BullyRuntimeObserver;
  /** Activation gate and STONITH (BullyFencingOptions); omitted: active = coordinator. */
  fencing?: BullyFencingOptions;
  /** Called once when the node stops itself on a fatal error (storage); the supervisor restarts it. */
  onFatal?: (err: Error) => void;
}

export type BullyRuntimeState = 'new' | 'booting' | 'running' | 'stopped';

export interface BullyNodeStatus {
  id: NodeId;
  engine: 'bully';
  state: BullyRuntimeState;
  role: string;
  /** The epoch (named term like NodeStatus). */
  term: Term;
  epoch: Term;
  leader: NodeId;
  /** Fencing token of the known coordinator's epoch (fencingToken(epoch, leader)); 0 without one. */
  token: number;
  priority: number;
  commitIndex: 0;
  appliedIndex: 0;
  bootId: number;
  framesAccepted: number;
  drops: DropCounters;
  /** Frames of types this runtime does not handle (Raft or client messages: a config mismatch). */
  unsupported: number;
  /** State-file writes (each: write, fsync, rename, fsync dir). */
  stateWrites: number;
  engineStatus: BullyStatus | undefined;
  /** Coordinator (its epoch durable). */
  elected: boolean;
  /** Coordinator and allowed to act on the outside world (docs/fencing.md). Without fencing options: the same as elected. */
  active: boolean;
  /** Why an elected coordinator is not active yet ('' otherwise). */
  waitingFor: string;
  /** 'stonith' (gate + fencing), 'tokens-only' (fencing without targets), 'off' (no fencing options). */
  fencingMode: 'stonith' | 'tokens-only' | 'off';
  /** Earlier coordinators known to this process (node → highest token heard); the suspects of its next coordinatorship. */
  knownCoordinators: Record<string, number>;
  /** How each suspect of the current coordinatorship was cleared. */
  clearedBy: Record<string, ActivationReason>;
  /** Fences run by this node (this boot, newest last). */
  fences: FenceRecord[];
}

const BULLY_TYPES = new Set<MsgType>([MsgType.BullyElection, MsgType.BullyAnswer, MsgType.BullyCoordinator]);

function posInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`BullyRuntime: ${what} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

export class BullyRuntime {
  readonly id: NodeId;
  readonly engineName = 'bully' as const;
  private readonly opts: BullyRuntimeOptions;
  private readonly log: Logger;
  private readonly tickMs: number;
  private readonly maxFrame: number;
  private stateValue: BullyRuntimeState = 'new';
  private node: BullyNode | undefined;
  private wire: WireEndpoint | undefined;
  private boot = 0;
  private durable: BullyPersisted = { epoch: 0, held: 0, boot: 0 };
  private cancelTick: Cancel | undefined;
  /** The Ready loop (daemon/runtime/ready-loop.ts): persist the hard state, then send/act/advance. */
  private readonly loop: ReadyLoop<BullyReady>;
  private unsupported = 0;
  private stateWrites = 0;
  /** What the state file should hold: every requested change, merged (hard state only grows). */
  private want: BullyPersisted = { epoch: 0, held: 0, boot: 0 };
  private writing = false;
  /** Requests not yet covered by a write that started after them. */
  private waiters: Done[] = [];
  private acted: BullySoftState = { role: 'follower', leader: NO_NODE, term: 0 };
  // ---- fencing (see the file comment) ----
  /** STONITH through this board's relays (undefined without fencer targets). */
  private fenceDriver: FencingDriver | undefined;
  /** Earlier coordinators this process heard of: node → highest token (bounded by the member count). */
  private readonly known = new Map<NodeId, number>();
  /** The current coordinatorship and one gate per suspect (null when not coordinator). */
  private lead: { epoch: Term; token: number; gates: Map<NodeId, ActivationGate>; suspectTokens: Map<NodeId, number> } | null = null;
  private activeValue = false;
  private readonly activationListeners = new ActivationListeners('BullyRuntime', (error) => this.log('error', 'activation listener threw', { node: this.id, error }));
  /** (leader, epoch) last acknowledged with a step-down Election. */
  private ackedLead = '';

  constructor(opts: BullyRuntimeOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('BullyRuntime: expected an options object');
    this.id = posInt(opts.id, 'id', 1);
    if (this.id > 254) throw new RangeError(`BullyRuntime: id must be a node id 1..254, got ${this.id}`);
    if (!opts.clock || typeof opts.clock.setTimer !== 'function') throw new TypeError('BullyRuntime: clock must be a HAL Clock');
    if (!opts.storage || typeof opts.storage.sync !== 'function') throw new TypeError('BullyRuntime: storage must be a HAL Storage');
    if (!Array.isArray(opts.links)) throw new TypeError('BullyRuntime: links must be an array of HAL Links');
    opts.links.forEach((l, i) => {
      if (!l || typeof l.send !== 'function' || typeof l.onFrame !== 'function') throw new TypeError(`BullyRuntime: links[${i}] is not a HAL Link`);
    });
    if (!opts.rng || typeof opts.rng.int !== 'function') throw new TypeError('BullyRuntime: rng must be an Rng (src/rng.ts)');
    if (opts.campaignOnPeerGone !== undefined && typeof opts.campaignOnPeerGone !== 'boolean') throw new TypeError(`BullyRuntime: campaignOnPeerGone must be a boolean, got ${String(opts.campaignOnPeerGone)}`);
    this.opts = opts;
    this.log = opts.logger ?? nullLogger;
    this.tickMs = posInt(opts.bully?.tickMs ?? 10, 'bully.tickMs', 1);
    this.maxFrame = Math.min(DEFAULT_MAX_FRAME, ...opts.links.map((l) => l.maxFrame));
    this.loop = new ReadyLoop<BullyReady>({
      clock: opts.clock,
      running: () => this.stateValue === 'running',
      next: () => this.node!.ready(),
      persist: (rd, done) => {
        if (!rd.hardState) return false;
        this.requestWrite({ epoch: rd.hardState.epoch, held: rd.hardState.held }, done);
        return true;
      },
      durable: (rd) => this.handleDurable(rd),
      fatal: (err) => this.fatal(err),
    });
    // Validate members and options now (a config error should not wait for boot).
    new BullyNode({ id: this.id, members: opts.members, options: opts.bully ?? {}, rng: opts.rng.fork('validate') });
  }

  // ---------------------------------------------------------------------------
  // Read-only views

  get state(): BullyRuntimeState {
    return this.stateValue;
  }
  /** The engine (undefined until booted). */
  get engine(): BullyNode | undefined {
    return this.node;
  }
  /**
   * Whether this node acts as coordinator: the role of the last soft state handled,
   * i.e. only once the epoch it coordinates in is durable (src/bully contract, step 3).
   * The engine may already be coordinator in memory while that fsync is in flight.
   */
  /**
   * When `peer` was last heard (an authenticated frame), ms ago, overall and on each
   * link by name (null: never in this boot): the dashboard's "last contact".
   */
  contact(peer: NodeId): { agoMs: number | null; links: Record<string, number | null> } {
    const now = this.opts.clock.monotonicMs();
    return { agoMs: this.wire?.heardAgoMs(peer, now) ?? null, links: this.wire?.heardOnLinks(peer, now) ?? {} };
  }

  get isLeader(): boolean {
    return this.stateValue === 'running' && this.acted.role === 'coordinator';
  }
  /** The soft state last acted on (role, leader, epoch): what status, hooks and the actuator see. */
  get actedState(): Readonly<BullySoftState> {
    return this.acted;
  }
  /** The hard state last made durable (what a restart would rebuild from). */
  get durableState(): Readonly<BullyPersisted> {
    return this.durable;
  }
  /** Fencing token of this node's own coordinatorship, 0 when it is not coordinator. */
  get ownToken(): number {
    if (!this.isLeader) return 0;
    return fencingToken(this.acted.term, this.id);
  }

  status(): BullyNodeStatus {
    const s = this.node?.status();
    return {
      id: this.id,
      engine: 'bully',
      state: this.stateValue,
      role: s && this.stateValue === 'running' ? this.acted.role : 'down',
      term: s ? this.acted.term : 0,
      epoch: s ? this.acted.term : 0,
      leader: s ? this.acted.leader : NO_NODE,
      token: s && this.acted.leader !== NO_NODE ? fencingToken(this.acted.term, this.acted.leader) : 0,
      priority: s?.priority ?? 0,
      commitIndex: 0,
      appliedIndex: 0,
      bootId: this.boot & 0xffff,
      framesAccepted: this.wire?.accepted ?? 0,
      drops: this.wire ? this.wire.drops() : newDropCounters(),
      unsupported: this.unsupported,
      stateWrites: this.stateWrites,
      engineStatus: s,
      elected: this.isLeader,
      active: this.active,
      waitingFor: this.waitingFor(),
      fencingMode: this.fencingMode,
      knownCoordinators: Object.fromEntries([...this.known].map(([n, t]) => [`n${n}`, t])),
      clearedBy: this.clearedBy(),
      fences: this.fencer?.history() ?? [],
    };
  }

  /** 'stonith' (activation gate + fencing), 'tokens-only' (fencing options without targets), 'off'. */
  get fencingMode(): 'stonith' | 'tokens-only' | 'off' {
    if (!this.opts.fencing) return 'off';
    return (this.opts.fencing.fencer?.targets?.length ?? 0) > 0 ? 'stonith' : 'tokens-only';
  }

  /**
   * Coordinator and allowed to act (see the file comment). Without STONITH: the same as
   * isLeader, except while superseded (below).
   */
  get active(): boolean {
    return this.stateValue === 'running' && this.isLeader && this.activeValue;
  }

  /**
   * This process heard a coordinator token above its own: the engine has already stepped
   * down in memory, and the runtime is only acting out a Ready that was durable-pending
   * (one Ready at a time). Never activate on such a stale Ready.
   */
  private superseded(): boolean {
    const own = this.ownToken;
    for (const t of this.known.values()) if (t > own) return true;
    return false;
  }

  /** The fencing token of the current coordinatorship while active, else 0. */
  get activeToken(): number {
    return this.active ? this.ownToken : 0;
  }

  /**
   * Hooks, jobs and actuators: called with active=true (and the token) when this node
   * becomes active, and with active=false as soon as it stops. Returns an unsubscribe.
   */
  onActivation(cb: (ev: ActivationEvent) => void): () => void {
    return this.activationListeners.add(cb);
  }

  // ---------------------------------------------------------------------------
  // Life cycle

  start(): void {
    if (this.stateValue !== 'new') throw new Error(`BullyRuntime ${this.id}: start() called twice (state ${this.stateValue})`);
    this.stateValue = 'booting';
    let st: BullyPersisted;
    try {
      const raw = this.opts.storage.read(BULLY_STATE_FILE);
      st = raw === undefined ? { epoch: 0, held: 0, boot: 0 } : decodeBullyState(raw);
    } catch (e) {
      return this.fatal(e as Error);
    }
    const next: BullyPersisted = { ...st, boot: (st.boot + 1) >>> 0 };
    this.want = { ...next };
    this.requestWrite({}, (err) => {
      if (this.stateValue !== 'booting') return;
      if (err) return this.fatal(err);
      try {
        this.bootNow(next);
      } catch (e) {
        this.fatal(e as Error);
      }
    });
  }

  private bootNow(st: BullyPersisted): void {
    this.durable = st;
    this.boot = st.boot;
    this.node = new BullyNode({
      id: this.id,
      members: this.opts.members,
      persisted: { epoch: st.epoch, held: st.held },
      options: this.opts.bully ?? {},
      rng: this.opts.rng,
    });
    this.wire = new WireEndpoint({
      id: this.id,
      cluster: this.opts.cluster,
      keyring: this.opts.keyring,
      now: () => this.opts.clock.monotonicMs(),
      maxFrame: this.maxFrame,
      links: this.opts.links,
      bootId: this.boot & 0xffff,
      log: this.log,
      running: () => this.stateValue === 'running',
      fatal: (err) => this.fatal(err),
      persistNextBoot: (_bootId, done) => {
        // The boot counter lives in the state file (its low 16 bits are the wire bootId).
        this.boot = (this.boot + 1) >>> 0;
        this.requestWrite({ boot: this.boot }, done);
      },
    });
    // Link callbacks are entry points: an exception in them takes the fatal path (fatal.ts).
    this.wire.listen(...guardedLinkCallbacks((where, e) => this.crash(where, e), (m) => this.onMessage(m), (link, ev) => this.onLinkEvent(link, ev)));
    this.acted = { role: 'follower', leader: NO_NODE, term: st.epoch };
    this.setupFencing();
    this.stateValue = 'running';
    this.log('info', 'booted', { node: this.id, engine: 'bully', epoch: st.epoch, held: st.held, bootId: this.boot & 0xffff, priority: this.node.priority });
    this.opts.observer?.booted?.(this);
    this.armTick();
    this.pump();
  }

  stop(): void {
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'stopped';
    this.cancelTick?.();
    this.fenceDriver?.cancelTimer();
    this.setActive(false);
    for (const l of this.opts.links) l.close();
  }

  private fatal(err: Error): void {
    if (this.stateValue === 'stopped') return;
    this.log('error', 'fatal: node stops', { node: this.id, error: err.message, kind: err.name, stack: err.stack ?? '' });
    this.stateValue = 'stopped';
    this.cancelTick?.();
    this.fenceDriver?.cancelTimer();
    this.setActive(false);
    this.opts.onFatal?.(err);
  }

  /**
   * Asks for the state file to hold `update` (merged into everything asked before).
   * Writes never overlap (one tmp file): a request made during a write is covered by
   * the next one, which writes the merged state.
   */
  private requestWrite(update: Partial<BullyPersisted>, done: Done): void {
    Object.assign(this.want, update);
    this.waiters.push(done);
    if (!this.writing) this.flush();
  }

  private flush(): void {
    this.writing = true;
    const snap = { ...this.want };
    const ws = this.waiters.splice(0);
    this.writeState(snap, (err) => {
      this.writing = false;
      if (!err) this.durable = snap;
      for (const w of ws) w(err);
      if (this.waiters.length > 0 && this.stateValue !== 'stopped') this.flush();
    });
  }

  /** Atomic replace of the state file: write tmp → fsync → rename → fsync dir. */
  private writeState(s: BullyPersisted, done: Done): void {
    const st = this.opts.storage;
    this.stateWrites++;
    try {
      st.write(TMP_FILE, encodeBullyState(s));
    } catch (e) {
      return done(e as Error);
    }
    st.sync(TMP_FILE, (err) => {
      if (err) return done(err);
      try {
        st.rename(TMP_FILE, BULLY_STATE_FILE);
      } catch (e) {
        return done(e as Error);
      }
      st.syncDir(done);
    });
  }

  private armTick(): void {
    const due = this.opts.clock.monotonicMs() + this.tickMs;
    let deferred = false;
    const fire = (): void => {
      if (this.stateValue !== 'running') return;
      if (!deferred && this.opts.clock.monotonicMs() - due > this.tickMs) {
        // A late tick (the process stalled) lets the input that waited meanwhile in
        // first: a 0 ms timer runs after this loop turn's poll phase (node.ts onTick).
        deferred = true;
        this.cancelTick = this.opts.clock.setTimer(0, fire);
        return;
      }
      this.armTick();
      try {
        this.guard(() => this.node!.tick());
        this.pump();
        if (this.stateValue === 'running') this.updateActive();
      } catch (e) {
        this.crash('tick', e);
      }
    };
    this.cancelTick = this.opts.clock.setTimer(this.tickMs, fire);
  }

  /** Runs an engine input; a throw is a bug: the observer hears of it and the node takes the fatal path. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.opts.observer?.engineError?.(this, e as Error);
      this.crash('bully engine', e);
      return;
    }
    this.opts.observer?.afterStep?.(this);
  }

  /** An exception escaped the engine, the fencer or the state at entry point `where`: the fatal path. */
  private crash(where: string, e: unknown): void {
    const err = new InternalError(where, e);
    if (this.stateValue === 'stopped') {
      this.log('error', 'internal error after the node stopped', { node: this.id, error: err.message, stack: err.stack ?? '' });
      return;
    }
    this.fatal(err);
  }

  // ---------------------------------------------------------------------------
  // The Ready loop

  private pump(): void {
    this.loop.pump();
  }

  private handleDurable(rd: BullyReady): void {
    this.opts.observer?.persisted?.(this, rd);
    for (const m of rd.messages) this.send(m);
    if (rd.softState) {
      const ss = rd.softState;
      this.acted = { ...ss };
      this.log('info', 'role', { node: this.id, role: ss.role, epoch: ss.term, leader: ss.leader, ...(ss.leader !== NO_NODE ? { token: fencingToken(ss.term, ss.leader) } : {}) });
      this.leadershipChanged(ss);
    }
    this.node!.advance(rd);
    this.opts.observer?.afterStep?.(this);
  }

  // ---------------------------------------------------------------------------
  // Wire

  private send(m: Message): void {
    this.wire!.send(m);
  }

  /** An authenticated message (daemon/runtime/wire-endpoint.ts opened it). */
  private onMessage(m: Message): void {
    if (!BULLY_TYPES.has(m.type)) {
      // A Raft node (or its forwarded client request) on our cluster id: the configs disagree.
      if (this.unsupported++ === 0) this.log('warn', 'frame of another engine (is every node configured with engine: bully?)', { node: this.id, type: MsgType[m.type], from: m.from });
      return;
    }
    this.opts.observer?.received?.(this, m);
    this.heard(m);
    this.guard(() => this.node!.step(m));
    this.pump();
  }

  private onLinkEvent(link: Link, ev: LinkEvent): void {
    if (ev.kind === 'peer-gone') {
      const leader = this.node!.status().leader;
      this.log('info', 'peer gone', { node: this.id, link: link.name, peer: ev.peer, leader });
      if ((this.opts.campaignOnPeerGone ?? true) && ev.peer === leader && ev.peer !== this.id && this.node!.eligible) {
        this.guard(() => this.node!.campaign());
        this.pump();
      }
    } else {
      WireEndpoint.logLinkEvent(this.log, this.id, link, ev);
    }
  }

  // ---------------------------------------------------------------------------
  // Split-brain defenses (the file comment has the rules)

  private setupFencing(): void {
    const f = this.opts.fencing;
    if (f === undefined) return;
    if (f === null || typeof f !== 'object') throw new TypeError('BullyRuntime: fencing must be an object (BullyFencingOptions)');
    const targets = f.fencer?.targets ?? [];
    if (!Array.isArray(targets)) throw new TypeError('BullyRuntime: fencing.fencer.targets must be an array');
    if (targets.length === 0) return; // tokens only
    this.fenceDriver = new FencingDriver({
      who: 'BullyRuntime',
      id: this.id,
      devices: f,
      rng: this.opts.rng,
      clock: this.opts.clock,
      log: this.log,
      running: () => this.stateValue === 'running',
      stopped: () => this.stateValue === 'stopped',
      resultFed: () => this.updateActive(),
      wake: () => this.updateActive(),
      record: (r, now) => this.fenceRecordChanged(r, now),
      pollMs: this.tickMs,
      fatal: (where, e) => this.crash(where, e),
    });
  }

  /** The Fencer (undefined without fencer targets). */
  private get fencer(): Fencer | undefined {
    return this.fenceDriver?.fencer;
  }

  /** Remembers a coordinatorship this process heard of (node → highest token). */
  private remember(node: NodeId, token: number): void {
    if (node === this.id || node === NO_NODE) return;
    if (token > (this.known.get(node) ?? 0)) this.known.set(node, token);
    // Heard while elected but not yet active: it is a suspect of this coordinatorship too.
    const l = this.lead;
    if (l && !this.activeValue && token < l.token && token > (l.suspectTokens.get(node) ?? 0)) this.addGate(node, token);
  }

  /** An authenticated bully message, before the engine steps it. */
  private heard(m: Message): void {
    const prio = this.node!.priorityOf(m.from);
    if (prio === undefined || (m as { priority?: unknown }).priority !== prio) return; // the engine drops it
    if (m.type === MsgType.BullyCoordinator) {
      if (prio > 0) this.remember(m.from, fencingToken(m.term, m.from));
      return;
    }
    // Election / Answer: sent only by a non-coordinator, at its current epoch. An epoch
    // ≥ that of the coordinatorship we know of means that coordinatorship had ended.
    const t = this.known.get(m.from);
    if (t !== undefined && m.term >= Math.floor(t / 256)) this.known.delete(m.from);
    const l = this.lead;
    const st = l?.suspectTokens.get(m.from);
    if (l && st !== undefined && m.term >= Math.floor(st / 256)) {
      // The gate's own rule wants "answered in our term"; the fact above is what makes it safe.
      l.gates.get(m.from)!.acknowledged(m.from, l.epoch, this.opts.clock.monotonicMs());
      this.updateActive();
    }
  }

  /** A gate for suspect `node` (its coordinatorship `token`), replacing an older one. */
  private addGate(node: NodeId, token: number): void {
    const l = this.lead!;
    l.suspectTokens.set(node, token);
    const now = this.opts.clock.monotonicMs();
    const g = new ActivationGate({ self: this.id, stonith: this.fencer?.canFence(node) ?? false, formed: true });
    // No lease bound (safeAtMs null): only a fence, an acknowledgement or an operator clears it.
    g.elected({ term: l.epoch, nowMs: now, previousLeader: node, safeAtMs: null });
    l.gates.set(node, g);
  }

  /** The acted soft state changed (role, leader or epoch). */
  private leadershipChanged(ss: BullySoftState): void {
    if (ss.leader !== NO_NODE && ss.leader !== this.id) this.remember(ss.leader, fencingToken(ss.term, ss.leader));
    const token = ss.role === 'coordinator' ? fencingToken(ss.term, this.id) : 0;
    if (token !== 0 && this.lead?.token !== token) {
      if (this.activeValue) this.setActive(false); // a fresh epoch is a new coordinatorship: a new token, a new activation
      this.lead = { epoch: ss.term, token, gates: new Map(), suspectTokens: new Map() };
      for (const [n, t] of this.known) if (t < token) this.addGate(n, t);
      this.log('info', this.lead.gates.size > 0 ? 'coordinator: not active until earlier coordinators are shown stopped' : 'coordinator: no earlier coordinator known', { node: this.id, epoch: ss.term, token, suspects: [...this.lead.gates.keys()].join(',') || 'none' });
    } else if (token === 0 && this.lead) {
      this.lead = null;
      this.setActive(false);
      this.cancelDelayedFences('stepped down');
    }
    // Step-down acknowledgement (file comment): one Election to a new higher coordinator.
    const key = `${ss.leader}:${ss.term}`;
    if (this.opts.fencing && ss.role === 'follower' && ss.leader !== NO_NODE && ss.leader !== this.id && this.durable.held > 0 && key !== this.ackedLead &&
      (this.node!.priorityOf(ss.leader) ?? 0) > this.node!.priority) {
      this.ackedLead = key;
      this.send({ type: MsgType.BullyElection, from: this.id, to: ss.leader, term: ss.term, priority: this.node!.priority });
    }
    this.updateActive();
  }

  /** Re-evaluates activity: gates, fences to start, fencer commands and results. */
  private updateActive(): void {
    if (this.stateValue !== 'running') return;
    const now = this.opts.clock.monotonicMs();
    const l = this.lead;
    if (this.fencingMode !== 'stonith') {
      this.setActive(this.isLeader && !this.superseded());
      return;
    }
    let open = l !== null && this.isLeader && !this.superseded();
    if (l) for (const g of l.gates.values()) {
      g.tick(now);
      if (!g.status().active) open = false;
    }
    if (open && !this.activeValue) {
      // Every suspect of this coordinatorship is shown stopped: forget them.
      for (const [n, t] of [...this.known]) if (t <= (l!.suspectTokens.get(n) ?? 0)) this.known.delete(n);
      this.setActive(true);
      this.cancelDelayedFences('active', now);
    } else if (!open && this.activeValue) this.setActive(false);
    this.runFencer(now);
  }

  private setActive(on: boolean): void {
    if (on === this.activeValue) return;
    this.activeValue = on;
    const ev: ActivationEvent = { active: on, term: this.acted.term, token: on ? this.ownToken : (this.lead?.token ?? fencingToken(this.acted.term, this.id)), atMs: this.opts.clock.monotonicMs() };
    this.log('info', on ? 'active' : 'not active any more', { node: this.id, epoch: ev.term, token: ev.token, ...(on ? { by: JSON.stringify(this.clearedBy()) } : {}) });
    this.opts.observer?.activation?.(this, ev);
    this.activationListeners.emit(ev);
  }

  private clearedBy(): Record<string, ActivationReason> {
    const out: Record<string, ActivationReason> = {};
    for (const [n, g] of this.lead?.gates ?? []) {
      const st = g.status();
      if (st.active && st.activeBy !== null) out[`n${n}`] = st.activeBy;
    }
    return out;
  }

  private waitingFor(): string {
    if (!this.isLeader || this.active) return '';
    const waits: string[] = [];
    for (const [n, g] of this.lead?.gates ?? []) {
      const st = g.status();
      if (st.active) continue;
      waits.push(this.fencer?.canFence(n) ? st.waitingFor : `earlier coordinator n${n} may still act: no fence device for it on this board; waiting for an acknowledgement from n${n} or \`quorumd fence confirm n${n}\``);
    }
    return waits.join('; ');
  }

  /** Starts the fences the gates ask for, executes fencer commands, feeds results back. */
  private runFencer(now: number): void {
    const f = this.fencer;
    if (!f) return;
    const l = this.lead;
    if (l && this.isLeader && !this.activeValue) {
      for (const [target, g] of l.gates) {
        if (g.status().wantFence !== target || f.busy(target) || !f.canFence(target)) continue;
        // No priority delay (targetRunsWorkload false): a suspect's token is below ours,
        // so it never suspects us for the same pair of coordinatorships; the random delay
        // covers the rare case of a stale view.
        this.fenceDriver!.fence(target, now, { reason: `earlier coordinator, before n${this.id} acts at epoch ${l.epoch}`, term: l.epoch, targetRunsWorkload: false });
        g.fenceStarted(target, now);
        this.log('warn', 'fencing', { node: this.id, target, epoch: l.epoch, delayMs: f.current(target)?.delayMs ?? 0 });
      }
    }
    this.fenceDriver!.step(now);
  }

  private fenceRecordChanged(r: FenceRecord, now: number): void {
    if (r.outcome === 'pending') return;
    const ok = fenceSucceeded(r);
    if (r.poweredOnAtMs === null && r.powerOnError === null) {
      if (r.outcome !== 'confirmed') this.lead?.gates.get(r.target)?.fenceResult(r.target, ok, now, r.attempts.at(-1)?.error ?? r.outcome);
      // A board switched off runs a fresh process when it comes back: it does not act.
      if (ok && r.outcome !== 'confirmed') this.known.delete(r.target);
      this.opts.observer?.fenced?.(this, r);
      this.fenceDriver!.logFinished(r, ok);
    } else {
      this.fenceDriver!.logPowerOn(r);
    }
  }

  /**
   * `now` is the caller's reading when it goes on to tick the Fencer with it: the
   * Fencer refuses time that goes backwards, and a later reading here followed by the
   * caller's earlier one did exactly that on a real clock (a simulated clock stands
   * still within a step, so only `quorumd dev` showed it).
   */
  private cancelDelayedFences(why: string, now = this.opts.clock.monotonicMs()): void {
    this.fenceDriver?.cancelDelayed(now, why);
  }

  /**
   * Operator: `quorumd fence confirm NODE` — a human declares `node` safely down (as
   * Pacemaker's stonith_admin --confirm): it is no longer a suspect, now or later.
   */
  confirmFenced(node: NodeId): { ok: boolean; error?: string; alive?: boolean } {
    const bad = badNodeArg(node);
    if (bad) return { ok: false, error: bad };
    if (this.stateValue !== 'running') return { ok: false, error: `node ${this.id} is not running` };
    if (this.fencingMode !== 'stonith') return { ok: false, error: `node ${this.id} has no activation gate (fencing.fencer.targets is empty): nothing to confirm` };
    const now = this.opts.clock.monotonicMs();
    const alive = aliveRefusal(node, this.wire?.heardAgoMs(node, now), false);
    if (alive) return { ok: false, alive: true, error: alive };
    this.fenceDriver!.confirm(node, now);
    this.known.delete(node);
    this.lead?.gates.get(node)?.operatorConfirmed(node, now);
    this.log('warn', `operator confirmed n${node} down`, { node: this.id, target: node });
    try {
      this.updateActive();
    } catch (e) {
      // Recorded, then the node failed: the fatal path, and the confirmation still counts.
      this.crash('fence confirm', e);
    }
    return { ok: true };
  }

  /**
   * Operator: `quorumd fence NODE` — fence `node` now through this board's devices.
   * The callback gets the finished record (bounded: the fencer times out every command).
   */
  fence(node: NodeId, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
    if (typeof cb !== 'function') throw new TypeError('BullyRuntime.fence: cb must be a function');
    const bad = badNodeArg(node);
    if (bad) return cb({ ok: false, error: bad });
    if (this.stateValue !== 'running') return cb({ ok: false, error: `node ${this.id} is not running` });
    if (!this.fencer || !this.fencer.canFence(node)) return cb({ ok: false, error: `node ${this.id} has no fence device for n${node} (fencing.fencer.targets)` });
    const now = this.opts.clock.monotonicMs();
    const id = this.fenceDriver!.fence(node, now, { reason: 'operator request', term: this.acted.term });
    this.lead?.gates.get(node)?.fenceStarted(node, now);
    this.runFencer(now);
    this.fenceDriver!.waitFor(id, cb);
  }

  // ---------------------------------------------------------------------------
  // Client API: what needs a replicated log answers ENGINE_UNSUPPORTED.

  /** Starts an election now (an operator's deliberate takeover, or evidence that the coordinator is gone). */
  campaign(): { ok: true; term: Term } | { ok: false; code: string; reason: string } {
    if (this.stateValue !== 'running') return { ok: false, code: 'not-running', reason: `node ${this.id} is not running` };
    let r: ReturnType<BullyNode['campaign']> | undefined;
    this.guard(() => {
      r = this.node!.campaign();
    });
    this.pump();
    return r ?? { ok: false, code: 'engine-error', reason: 'the engine threw (see the log)' };
  }

  private unsupportedOp(what: string, cb: ClientCallback): void {
    if (typeof cb !== 'function') throw new TypeError(`BullyRuntime.${what}: cb must be a function`);
    cb({ status: ENGINE_UNSUPPORTED, error: `${what}: ${NOT_SUPPORTED_REASON}` });
  }
  put(_key: string, _value: Uint8Array, _opts: { cas?: number }, cb: ClientCallback): void {
    this.unsupportedOp('kv put', cb);
  }
  del(_key: string, _opts: { cas?: number }, cb: ClientCallback): void {
    this.unsupportedOp('kv delete', cb);
  }
  get(_key: string, _opts: { stale?: boolean }, cb: ClientCallback): void {
    this.unsupportedOp('kv get', cb);
  }
  lockAcquire(_name: string, _owner: string, _ttlMs: number, _lease: string, cb: ClientCallback): void {
    this.unsupportedOp('lock acquire', cb);
  }
  lockRenew(_name: string, _lease: string, cb: ClientCallback): void {
    this.unsupportedOp('lock renew', cb);
  }
  lockRelease(_name: string, _lease: string, cb: ClientCallback): void {
    this.unsupportedOp('lock release', cb);
  }
}
