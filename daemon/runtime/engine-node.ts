/**
 * The engine runtime: ANY engine of the contract in src/engine/contract.ts wired to one
 * board's HAL (Clock, Storage, Link[]). It runs every engine — Raft (`engine: raft`,
 * src/raft/engine.ts), Multi-Paxos (`engine: paxos`, src/paxos/multi.ts), ZAB
 * (`engine: zab`, src/zab/zab.ts), PBFT (`engine: pbft`) and the election-only bully
 * (`engine: bully`, src/bully/engine.ts) — under `quorumd start`, `quorumd dev` and
 * `quorumd sim`.
 *
 * Election-only engines (caps.log false, `isElectionOnly`): leader, hooks, fencing;
 * KV, locks and jobs answer 501 (ENGINE_UNSUPPORTED), and activation follows
 * bully-fencing.ts (known coordinators, step-down acknowledgement, STONITH; no lease,
 * no watchdog) instead of leader-fencing.ts. A board that ran the former bully runtime
 * keeps its epochs in `bully.state`; the runtime never starts below it (bully-state.ts).
 *
 * THE node runtime of issue 15: Raft (`engine: raft`, src/raft/engine.ts) runs here
 * under `quorumd start` and `quorumd dev` too, its extras through the contract's
 * optional extensions (dropLease, acknowledges, isCampaignRequest, replicaProgress,
 * epochStart, dataMissing), and the simulator's clusters run it too
 * (daemon/sim/engine-cluster.ts). Not carried over from the former node.ts:
 * `batching: false` (one fsync per write, only ever used to measure what batching
 * buys). The split-brain defenses (activation gate, own lease, STONITH, watchdog,
 * fence history) are leader-fencing.ts; scheduled jobs claim slots through the log
 * (jobClaim/jobDone). What an engine still lacks is refused at config time
 * (daemon/config/schema.ts), never half-served.
 *
 * Life cycle (the same as node.ts): start() opens the durable log (hal/storage), takes
 * its new bootId for the wire stamps, builds the engine from exactly what was persisted
 * (EngineInit), restores the KV state machine from the snapshot, then ticks every
 * `engine.tickMs` of monotonic time and listens on every link. stop() answers every
 * pending request (504 for writes that may have been proposed, 503 for the rest). A
 * storage error is fatal: the node stops and `onFatal` lets the supervisor restart it.
 *
 * The Ready loop (ready-loop.ts), in the contract's order: eager messages leave at once
 * (takeEager, where the engine has it) → snapshot + entries + hard state persisted as
 * ONE batch, all or nothing when `Ready.atomic` (the durable log writes it as one
 * record) → restore the state machine from a received snapshot → send the messages →
 * apply committed entries (each exactly once, in order) → serve read states, fail
 * failed reads → advance.
 *
 * Client API (the Raft runtime's, results.ts status rule: 503 = definitely not applied,
 * 504 = unknown): put/del/get/locks. The leader proposes; a follower forwards writes to
 * the leader (ClientRequest/ClientReply, forward.ts) and relays the answer; reads go
 * through readIndex → ReadState and are served locally once applied ≥ its index.
 * A proposal answered at (index, term) is settled by the entry committed at that index:
 * the same term = ours (the contract: `term` is what propose() returned, kept by later
 * leaders that re-propose it), another term = not applied (503).
 *
 * "Active" (locks, hooks, jobs): with the `fencing` option, through the activation
 * gate (leader-fencing.ts: the leadership's `lead.claim` applied, every earlier leader
 * fenced, acknowledged, confirmed or past the lease bound, and its own lease held on
 * heartbeat rounds a quorum acknowledged — the engines' `heartbeatRounds` option puts
 * a round on every heartbeat). Without it: the leader whose engine issued a fencing
 * token (`leaderToken() > 0`: its leadership's first entry is committed, so everything
 * committed by earlier leaders is in its log) — the Raft runtime's "no fencing section"
 * meaning: a deposed leader that has not noticed yet may still believe it is active
 * until it hears the newer ballot/epoch or loses its quorum. The token is the engine's
 * either way; lock grants carry the log index of the grant, as under Raft; both are
 * indexes of one chosen sequence, so they order together.
 */
import { KvError, KvStateMachine, encodeCommand, decodeCommand, quotaGrowth, checkQuota, DEFAULT_KV_QUOTA, type KvQuota, type KvUsage, type ApplyResult, type Command } from '../../src/kv/index.ts';
import type { Engine, EngineInit, EngineName, EngineStatus, HardState, Ready, Result, SnapshotData } from '../../src/engine/contract.ts';
import { PaxosNode } from '../../src/paxos/index.ts';
import { ZabNode } from '../../src/zab/index.ts';
import { PbftNode, type PbftInit } from '../../src/pbft/pbft.ts';
import type { PbftAuth } from '../../src/pbft/auth.ts';
import type { Saboteur } from '../../src/pbft/byzantine.ts';
import { signReply, type PbftReply } from '../../src/pbft/reply.ts';
import { sha256 } from '../../src/pbft/encoding.ts';
import { derivedFrameKeys, derivedPbftAuth, decodeResult, encodeResult, pbftFromDurable, pbftSnapshotRecord, pbftToDurable } from './pbft-host.ts';
import { PbftTime, type PbftTimeOptions } from './pbft-time.ts';
import { isTimeReport } from '../../src/pbft/agreed-time.ts';
import { ClientTable, checkClientRef, clientKey, decodeClientOp, decodePbftState, encodeClientOp, encodePbftState, isClientOp, type ClientRef } from './pbft-clients.ts';
import { PbftFencing, decodeFenceOp, isFenceOp, type PbftFencingOptions } from './pbft-fencing.ts';
import { FenceTally, type FenceDecision, type FenceRequest } from '../../src/pbft/actuation.ts';
import { RaftEngine } from '../../src/raft/engine.ts';
import { BullyEngine, fencingToken } from '../../src/bully/index.ts';
import { BullyFencing, type BullyActivationStatus } from './bully-fencing.ts';
import { bullyStateOf } from './bully-state.ts';
import type { Keyring } from '../../src/wire/auth.ts';
import { DEFAULT_MAX_FRAME, newDropCounters, type DropCounters } from '../../src/wire/codec.ts';
import { EntryType, MsgType, engineOfType, typeBelongsTo, type ClientReply, type ClientRequest, type Entry, type MemberConfig, type Message } from '../../src/wire/messages.ts';
import { NO_NODE, type Index, type NodeId, type Term } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Cancel, Clock, Link, LinkEvent, Storage } from '../../hal/interfaces.ts';
import { StorageCorruptError, openDurableLog, type DurableLog, type DurableLogOptions, type PersistBatch, type Recovered, type StorageStats } from '../../hal/storage/index.ts';
import { HARDSTATE_FILE } from '../../hal/storage/format.ts';
import { decodeReplyBody, encodeReplyBody } from './forward.ts';
import { WireEndpoint } from './wire-endpoint.ts';
import { ReadyLoop } from './ready-loop.ts';
import { InternalError, NewerEntryError, guardedLinkCallbacks } from './fatal.ts';
import { nullLogger, type Logger } from './logger.ts';
import { Status, checkKey, leaseArg, resultToClient, notRunning, unavailable, unknownOutcome, type ClientCallback, type ClientResult } from './results.ts';
import { decodeMeta, encodeMeta } from './meta.ts';
import { ActivationListeners, type ActivationEvent } from './activation.ts';
import { LeaderFencing, operatorConfirm, operatorFence, type ActivationStatus, type ConfirmResult, type RuntimeFencingOptions } from './leader-fencing.ts';
import type { FenceRecord } from '../../src/fence/index.ts';
import type { JobOutcomeName } from '../../src/kv/index.ts';
import { traceMessage, type WriteTracer } from './write-trace.ts';
import { IndexMap } from './index-map.ts';

/** The contract engines this runtime hosts besides Raft (RuntimeEngineName below; PBFT's clients trust f + 1 matching replies, not one node's: pbft-host.ts). */
export type ContractEngineName = Extract<EngineName, 'paxos' | 'zab' | 'bully' | 'pbft'>;
export const CONTRACT_ENGINES: readonly ContractEngineName[] = ['paxos', 'zab', 'bully', 'pbft'];

export function isContractEngine(name: unknown): name is ContractEngineName {
  return name === 'paxos' || name === 'zab' || name === 'bully' || name === 'pbft';
}

/**
 * Election-only engines (caps.log false, src/engine/contract.ts): leader, hooks and
 * fencing, no replicated state. KV, locks and jobs answer 501, and their activation
 * rules are bully-fencing.ts's, not leader-fencing.ts's (no log to claim in, no quorum
 * lease). Known by name because a client may ask before the engine is built.
 */
export function isElectionOnly(name: ContractEngineName | 'raft'): boolean {
  return name === 'bully';
}

/**
 * Engines this runtime can host: the contract engines above, and Raft (src/raft/engine.ts),
 * here under `quorumd start`/`dev` and in the simulated cluster (daemon/sim/engine-cluster.ts)
 * alike.
 */
export type RuntimeEngineName = ContractEngineName | 'raft';
export function isRuntimeEngine(name: unknown): name is RuntimeEngineName {
  return name === 'raft' || isContractEngine(name);
}

/** Builds engine `name` from what was persisted. Options are the engine's own (src/<engine>/options.ts validates and names every problem). */
export function createEngine(name: RuntimeEngineName, init: EngineInit<Record<string, unknown>>): Engine {
  switch (name) {
    case 'raft':
      return new RaftEngine(init as ConstructorParameters<typeof RaftEngine>[0]);
    case 'paxos':
      return new PaxosNode(init as ConstructorParameters<typeof PaxosNode>[0]);
    case 'zab':
      return new ZabNode(init as ConstructorParameters<typeof ZabNode>[0]);
    case 'pbft':
      return new PbftNode(init as unknown as PbftInit);
    case 'bully':
      return new BullyEngine(init as ConstructorParameters<typeof BullyEngine>[0]);
    default:
      throw new TypeError(`engine: expected one of ${CONTRACT_ENGINES.join(', ')}, got ${String(name)}`);
  }
}

/** A snapshot is due after at most this many times snapshotEntries entries, whatever their bytes (snapshotDue). */
const SNAPSHOT_MAX_FACTOR = 20;
/** What an entry costs in the log beyond its data (WAL record header, index, term, type): counted by snapshotDue. */
const LOG_RECORD_OVERHEAD = 32;
/** `quorumd fence` / `fence confirm` under pbft: one board's word (its operator's included) is not a decision. */
const PBFT_NO_OPERATOR_FENCE = 'engine pbft: a board is fenced only on a committed decision of f + 1 members (their failure detectors vote through the log), not on one node\'s request; switch the relay by hand if you must (docs/fencing.md, "PBFT")';

/** Hooks for whoever watches the node from outside (the simulator's checks, the HTTP backend). */
export interface EngineRuntimeObserver {
  booted?(rt: EngineRuntime): void;
  /** After every input the engine took (a message, a tick, a proposal, a campaign). */
  afterStep?(rt: EngineRuntime): void;
  /** A Ready's snapshot, entries and hard state are durable; its messages are not sent yet. */
  persisted?(rt: EngineRuntime, rd: Ready): void;
  /** A committed entry was applied (result undefined for no-ops and witnesses). */
  applied?(rt: EngineRuntime, e: Entry, result: ApplyResult | undefined): void;
  /** The engine threw: always a bug, never a bad frame. */
  engineError?(rt: EngineRuntime, err: Error): void;
  /** An authenticated engine message arrived (before the engine steps it): the simulator's ground truth of who heard what. */
  received?(rt: EngineRuntime, m: Message): void;
  /** A client command was proposed at (index, term) (the simulator's "proposed" ground truth). */
  proposed?(rt: EngineRuntime, index: Index, term: Term, data: Uint8Array): void;
  /** A snapshot this node took (compaction) is durable. */
  snapshotTaken?(rt: EngineRuntime, index: Index): void;
  /** A fence run by this node finished (outcome other than 'pending'). */
  fenced?(rt: EngineRuntime, rec: FenceRecord): void;
  /** The node became active (true) or stopped being active (false); see `onActivation`. */
  activation?(rt: EngineRuntime, ev: ActivationEvent): void;
  /** PBFT: this node executed a client request and signed its reply (src/pbft/reply.ts). */
  replied?(rt: EngineRuntime, reply: PbftReply): void;
  /** PBFT: this node took the snapshot of checkpoint `index` (its digest is signed). */
  checkpointed?(rt: EngineRuntime, index: Index): void;
  /** PBFT fencing: this node proposed a fence vote (request number `reqNo`); `detectorSuspects`: its failure detector's view at that moment. */
  pbftFenceVoted?(rt: EngineRuntime, reqNo: number, req: FenceRequest, detectorSuspects: boolean): void;
  /** PBFT fencing: a fence decision executed here (every replica, with or without fencing configured). */
  pbftFenceDecided?(rt: EngineRuntime, d: FenceDecision): void;
}

export interface EngineRuntimeOptions {
  engine: RuntimeEngineName;
  id: NodeId;
  /** Bootstrap membership (a snapshot's overrides it). */
  config: MemberConfig;
  /** Cluster id on the wire (0..65535). */
  cluster: number;
  keyring: Keyring;
  clock: Clock;
  storage: Storage;
  /** Every link; messages go out on all of them. */
  links: Link[];
  /** The engine's randomness (election timeouts); the simulator passes a fork of the board's seed. */
  rng: Rng;
  /** The engine's options (PaxosOptions / ZabOptions); maxMsgBytes defaults to the smallest link's maxFrame. */
  engineOptions?: Record<string, unknown>;
  /** How long a client request may wait for its outcome, ms. Default 2000 (as the Raft runtime). */
  requestTimeoutMs?: number;
  /**
   * Compact (snapshot the state machine, then drop the log before it) once at least this
   * many entries were applied since the last snapshot AND those entries hold at least
   * half as many bytes as the state (see snapshotDue), or once 20 times this many were
   * applied whatever their size. Default 1000.
   */
  snapshotEntries?: number;
  /**
   * When the link reports the leader gone (MQTT Last Will), the surviving voters
   * campaign in id order, the k-th after k × this many ms if no leader is known by then.
   * Default 25 (as the Raft runtime).
   */
  peerGoneStaggerMs?: number;
  /**
   * Start the engine's clock only once a peer is reachable (`quorumd start`: a link
   * connected to a peer, or to a broker a peer is present on), or after `maxWaitMs`
   * since boot, whichever comes first. A node whose links are still connecting, or
   * whose peers are still starting, would otherwise time out and campaign into the
   * void: its lost pre-vote cost a whole election round of a cluster's cold start
   * (issue 14). Holding the clock is what a slow start looks like to the protocol (no
   * timer fires early; a lease or a vote refusal counted in ticks only lasts longer),
   * so safety does not depend on it. Not for a one-member cluster (nothing to wait
   * for). Unset (the simulator): the clock starts at boot.
   */
  startClockWhen?: { reachable: () => boolean; maxWaitMs: number };
  storageOptions?: DurableLogOptions;
  logger?: Logger;
  observer?: EngineRuntimeObserver;
  onFatal?: (err: Error) => void;
  /** Cluster-wide limits of the replicated state (src/kv/quota.ts). Default DEFAULT_KV_QUOTA. */
  quota?: KvQuota;
  /**
   * Split-brain defenses, as for the Raft runtime (leader-fencing.ts, docs/fencing.md):
   * the activation gate, the own lease (every heartbeat carries a round: the engine
   * option `heartbeatRounds` is set), STONITH when `fencer` lists targets, and watchdog
   * self-fencing. Without it a leader is active once its engine issued a token.
   */
  fencing?: RuntimeFencingOptions;
  /**
   * PBFT: this node's signer. Default: Ed25519 keys derived from the cluster key
   * (pbft-host.ts says what that protects against and what not).
   */
  pbftAuth?: PbftAuth;
  /** PBFT: the agreed lock time's report period and cap (pbft-time.ts; defaults there). */
  pbftTime?: PbftTimeOptions;
  /**
   * PBFT: STONITH on committed f + 1 votes (pbft-fencing.ts): this board's failure
   * detector votes, and it drives the relays of its `fencer` targets on a decision. The
   * `fencing` option (leases, activation gate) is not for pbft.
   */
  pbftFencing?: PbftFencingOptions;
  /**
   * Testing only (`quorumd dev --byzantine-node`, `quorumd sim --faults byzantine`):
   * this node lies — its PBFT traffic and the replies it signs go through the saboteur.
   */
  byzantine?: Saboteur;
  /** Per-write trace points (daemon/runtime/write-trace.ts, QUORUMD_TRACE_WRITES); off when absent. */
  trace?: WriteTracer;
  /**
   * Quiet ticks (issue 14, idle CPU): sleep through the ticks the engine says would only
   * count (engine.quietTicks) instead of waking every tickMs, and make them up, in
   * order, before the next input. An idle follower then wakes for its leader's
   * heartbeats and about once a second, not 100 times a second; the engine still sees
   * every tick, between the same inputs (see armTick). Only while nothing else wants
   * the tick: no client request waiting (their timeouts), fencing quiet
   * (LeaderFencing.quietUntil), the engine's clock started, not PBFT, not the etcd
   * engine's election fencing. Default false (the simulator and most tests tick every
   * tickMs); `quorumd start` sets it.
   */
  quietTicks?: boolean;
  /**
   * Tests only: a planted bug, to show that the simulator's lock checks (daemon/sim/locks.ts)
   * catch it. 'clamped-offset': the lock clock's offset as before commit ad2fb33, clamped at
   * 0 and fractional (a failover to an older process jumps the lock clock ahead; one to a
   * younger process stamps fractional times). 'own-clock-report' (engine pbft): every
   * board reports its own monotonic clock as its clock report instead of its estimate of
   * the agreed time (daemon/runtime/pbft-time.ts), the design src/pbft/agreed-time.ts
   * explains it must not use: processes started at different times jump the agreed time.
   * Never set outside tests.
   */
  plantedLockClock?: 'clamped-offset' | 'own-clock-report';
}

export type EngineRuntimeState = 'new' | 'booting' | 'running' | 'stopped';

export interface EngineNodeStatus extends ActivationStatus {
  id: NodeId;
  engine: RuntimeEngineName;
  state: EngineRuntimeState;
  role: string;
  detail: string | undefined;
  term: Term;
  leader: NodeId;
  commitIndex: Index;
  appliedIndex: Index;
  lastIndex: Index;
  snapshotIndex: Index;
  isWitness: boolean;
  bootId: number;
  framesAccepted: number;
  drops: DropCounters;
  /** Messages of types this node's engine does not handle (dropped). */
  unsupported: number;
  pending: { writes: number; reads: number; forwarded: number };
  storage: StorageStats | undefined;
  /** Election-only engines (bully): the activation details of bully-fencing.ts and the leader's token. */
  bully?: BullyActivationStatus & { leaderToken: number; priority: number };
  // elected, active (with a token issued and, with fencing, through the activation
  // gate: see the header), waitingFor, token, activation, fences, selfFencing:
  // ActivationStatus (leader-fencing.ts).
}

interface PendingWrite {
  term: Term;
  reply: ClientCallback;
  deadline: number;
  /** PBFT: the proposal's ref (its request number) and operation digest, for the reply certificate. */
  ref?: number;
  op?: Uint8Array;
}
interface PendingRead {
  key: string;
  cb: ClientCallback;
  deadline: number;
  index?: Index;
}
interface Forwarded {
  reply: ClientCallback;
  deadline: number;
  to: NodeId;
}

/** A forwarded write's answer, held until this node has applied it (see onClientReply). */
interface HeldAnswer {
  res: ClientResult;
  reply: ClientCallback;
  deadline: number;
  /** Answer once the applied index reaches this. */
  at: Index;
}

/**
 * The index a write's answer speaks of: a put's or delete's modify index (the entry's
 * own on success; on a failed cas the key's current one), a lock grant's token (its
 * entry's index; on 409 the holder's). 0: none (nothing to wait for).
 */
function answerIndex(res: ClientResult): Index {
  const a = res.index ?? 0;
  const b = res.token ?? 0;
  return a > b ? a : b;
}

/** HTTP-like status for "this engine cannot do that": definite, nothing was applied (not 503 retry, not 504 unknown). */
export const ENGINE_UNSUPPORTED = 501;
/** How a refused command is named in the 501 answer. */
const OP_NAMES: Partial<Record<Command['op'], string>> = { 'put': 'kv put', 'del': 'kv delete', 'lock.acquire': 'lock acquire', 'lock.renew': 'lock renew', 'lock.release': 'lock release', 'job.claim': 'job claim', 'job.done': 'job done', 'job.reset': 'job reset' };

function posInt(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`EngineRuntime: ${what} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

/** The client answer for a proposal the engine refused (too large, malformed, or not proposable now). */
function proposeRefused(r: Extract<Result, { ok: false }>): ClientResult {
  if (r.code === 'too-large') return { status: Status.TOO_LARGE, error: r.reason };
  if (r.code === 'bad-request') return { status: Status.BAD_REQUEST, error: r.reason };
  return unavailable(`not proposed: ${r.reason}`);
}

export class EngineRuntime {
  readonly id: NodeId;
  readonly engineName: RuntimeEngineName;
  private readonly opts: EngineRuntimeOptions;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly snapshotEntries: number;
  private readonly staggerMs: number;
  private readonly maxFrame: number;
  private readonly quota: KvQuota;
  private tickMs = 10;
  /** options.quietTicks and the engine can say which ticks are quiet (set at boot). */
  private quietMode = false;
  /**
   * Quiet ticks (options.quietTicks): how many ticks after `tickBase` the engine may
   * take without acting (made up by syncTicks, the timer is armed for the one after),
   * and the monotonic time of the latest tick taken (made up ones count at the time
   * they were due). `ticking`: onTick runs (it arms the timer itself at its end).
   */
  private quietLeft = 0;
  private tickBase = 0;
  private ticking = false;
  /** Monotonic time until which the engine's clock waits for a reachable peer (startClockWhen); undefined once it runs. */
  private clockHeldUntil: number | undefined;

  private stateValue: EngineRuntimeState = 'new';
  private eng: Engine | undefined;
  private kv = new KvStateMachine();
  private dlog: DurableLog | undefined;
  private wire: WireEndpoint | undefined;
  private wireBoot = 0;
  private bootCounter = 0;
  private formed = false;
  private bootHard: HardState = { term: 0, vote: 0, commit: 0 };
  private snapIndex: Index = 0;
  /** Bytes of the entries applied since the last snapshot (data + a record's overhead): see snapshotDue. */
  private logBytesSinceSnap = 0;
  private cancelTick: Cancel | undefined;
  private readonly loop: ReadyLoop<Ready>;
  private ids = 0;
  private wasLeader = false;
  /**
   * The lock clock of this leadership: lockNow() = floor(monotonic) + this offset, set at
   * election so that it continues from the state machine's clock (the newest lock
   * command's time). It may be negative (this process is older than the lock time line)
   * and is an integer (a lock command's `now` must be one). See lockNow().
   */
  private lockClockOffset = 0;
  /** Lock renewals/releases refused by this leader without proposing. */
  lockRefusals = 0;
  /** Forwarded writes answered at their deadline before this node had applied them (releaseHeld): read-your-writes did not hold for those. */
  answeredUnapplied = 0;
  /** Writes refused for the quota (507). */
  quotaRefusals = 0;
  /** Split-brain defenses (undefined without the `fencing` option, and for election-only engines). */
  private fencing: LeaderFencing | undefined;
  /** An election-only engine's activation rules (bully-fencing.ts; always present for one, mode 'off' without `fencing`). */
  private electionFencing: BullyFencing | undefined;
  /** The hard state last made durable (what a restart would rebuild from). */
  private durableHard: HardState = { term: 0, vote: 0, commit: 0 };
  private readonly activationListeners = new ActivationListeners('EngineRuntime', (error) => this.log('error', 'activation listener threw', { node: this.id, error }));

  // Keyed by increasing numbers, set and deleted on every request: IndexMaps, not Maps
  // (index-map.ts says why).
  private readonly pendingWrites = new IndexMap<PendingWrite>();
  private readonly pendingGrowth = new IndexMap<KvUsage>();
  private pendingUse: KvUsage = { keys: 0, bytes: 0 };
  private readonly pendingReads = new IndexMap<PendingRead>();
  private readonly forwarded = new IndexMap<Forwarded>();
  /** Answers of forwarded writes waiting for this node to apply them, roughly in index order. */
  private held: HeldAnswer[] = [];
  // The predicates of the per-tick timeout sweep and of serveReads, made once (not a
  // closure per tick or per Ready), with the instant and the applied index they compare
  // against set just before each use.
  private sweepNow = 0;
  private servedUpTo = 0;
  private readonly isLate = (_: number, p: { deadline: number }): boolean => p.deadline <= this.sweepNow;
  private readonly isServable = (_: number, p: PendingRead): boolean => p.index !== undefined && p.index <= this.servedUpTo;
  /** PBFT only (see pbft-host.ts): its signer, proposals waiting for their outcome by ref, replies it signed. */
  private readonly pbftAuth: PbftAuth | undefined;
  private readonly pendingRefs = new IndexMap<PendingWrite>();
  private readonly signedReplies = new Map<string, PbftReply>();
  /** PBFT: the replicated last-write-per-client table (pbft-clients.ts), and the replies signed for client requests by client id/seq. */
  private clientTable = new ClientTable();
  private readonly clientReplies = new Map<string, PbftReply>();
  /** PBFT: the client results of the entries applied in the current Ready (what was signed, before a liar's changes). */
  private pbftApplied: Map<Index, ClientResult> | undefined;
  /** PBFT: the newest hard state in the durable log's shape (entries may not be stored above its term). */
  private pbftHard: HardState = { term: 1, vote: 0, commit: 0 };
  /** PBFT: the replicated fence tally (src/pbft/actuation.ts; in the checkpoints), and this board's detector/relay side (with the pbftFencing option). */
  private pbftTally: FenceTally | undefined;
  private pbftFencingHost: PbftFencing | undefined;
  /** PBFT: the agreed lock time (pbft-time.ts; src/pbft/agreed-time.ts). */
  private readonly pbftTime: PbftTime | undefined;

  constructor(opts: EngineRuntimeOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('EngineRuntime: expected an options object');
    if (!isRuntimeEngine(opts.engine)) throw new TypeError(`EngineRuntime: engine must be one of raft, ${CONTRACT_ENGINES.join(', ')}, got ${String(opts.engine)}`);
    this.engineName = opts.engine;
    this.id = posInt(opts.id, 'id', 1);
    if (this.id > 254) throw new RangeError(`EngineRuntime: id must be a node id 1..254, got ${this.id}`);
    if (!opts.clock || typeof opts.clock.setTimer !== 'function') throw new TypeError('EngineRuntime: clock must be a HAL Clock');
    if (!opts.storage || typeof opts.storage.sync !== 'function') throw new TypeError('EngineRuntime: storage must be a HAL Storage');
    if (!Array.isArray(opts.links)) throw new TypeError('EngineRuntime: links must be an array of HAL Links');
    opts.links.forEach((l, i) => {
      if (!l || typeof l.send !== 'function' || typeof l.onFrame !== 'function') throw new TypeError(`EngineRuntime: links[${i}] is not a HAL Link`);
    });
    if (!opts.rng || typeof opts.rng.int !== 'function') throw new TypeError('EngineRuntime: rng must be an Rng (src/rng.ts)');
    this.opts = opts;
    this.memberIds = new Set<NodeId>([...opts.config.voters, ...opts.config.learners, ...opts.config.witnesses]);
    this.log = opts.logger ?? nullLogger;
    this.timeoutMs = posInt(opts.requestTimeoutMs ?? 2000, 'requestTimeoutMs', 1);
    this.snapshotEntries = posInt(opts.snapshotEntries ?? 1000, 'snapshotEntries', 1);
    this.staggerMs = posInt(opts.peerGoneStaggerMs ?? 25, 'peerGoneStaggerMs', 0);
    this.quota = { maxKeys: posInt(opts.quota?.maxKeys ?? DEFAULT_KV_QUOTA.maxKeys, 'quota.maxKeys', 1), maxBytes: posInt(opts.quota?.maxBytes ?? DEFAULT_KV_QUOTA.maxBytes, 'quota.maxBytes', 1) };
    this.maxFrame = Math.min(DEFAULT_MAX_FRAME, ...opts.links.map((l) => l.maxFrame));
    if (opts.engine === 'pbft') {
      this.pbftAuth = opts.pbftAuth ?? derivedPbftAuth(this.id, opts.config.voters, opts.keyring.current, opts.cluster);
      this.pbftTime = new PbftTime(opts.config.voters, Math.floor((opts.config.voters.length - 1) / 3), opts.plantedLockClock === 'own-clock-report' ? { ...opts.pbftTime, plantedOwnClock: true } : opts.pbftTime);
    }
    else if (opts.pbftAuth || opts.byzantine || opts.pbftFencing) throw new TypeError(`EngineRuntime: pbftAuth, pbftFencing and byzantine are for engine pbft, not ${opts.engine}`);
    if (opts.engine === 'pbft' && opts.fencing) throw new TypeError('EngineRuntime: engine pbft fences on committed votes (option pbftFencing), not through the leader fencing option `fencing`');
    this.loop = new ReadyLoop<Ready>({
      clock: opts.clock,
      running: () => this.stateValue === 'running',
      eager: () => this.sendEager(),
      // Committed entries the engine lets go before its own Ready is durable (Raft:
      // entries committed by a quorum of other durable copies, on a leader or a
      // follower; src/raft/raft.ts takeCommitted).
      // Paused while a snapshot is due: the snapshot is taken of the state machine at
      // the engine's appliedIndex, which counts them only once durable here, so the two
      // must meet first (maybeCompact); the Readys apply meanwhile.
      apply: () => {
        // Read states need nothing durable (Raft: RaftNode.takeReadStates): a read is
        // served as soon as the applied index reaches its own.
        const rss = this.eng!.takeReadStates?.();
        let reads = false;
        if (rss && rss.length > 0) {
          for (let i = 0; i < rss.length; i++) {
            const p = this.pendingReads.get(rss[i]!.ctx);
            if (p) p.index = rss[i]!.index;
          }
          reads = true;
        }
        const es = this.snapshotDue() ? undefined : this.eng!.takeCommitted?.();
        if (es && es.length > 0) {
          const witness = this.eng!.status().isWitness;
          for (let i = 0; i < es.length; i++) {
            this.applyEntry(es[i]!, witness);
            if (this.stateValue === 'stopped') return; // an entry it cannot apply (NewerEntryError): nothing after it
          }
          reads = true;
        }
        if (reads) this.serveReads();
      },
      next: () => this.eng!.ready(),
      persist: (rd, done) => {
        const batch: PersistBatch = {};
        if (this.pbftAuth) this.pbftBatch(rd, batch);
        else {
          if (rd.snapshot) batch.snapshot = { index: rd.snapshot.meta.index, term: rd.snapshot.meta.term, config: rd.snapshot.meta.config, data: rd.snapshot.data };
          if (rd.entries.length > 0) batch.entries = rd.entries;
          if (rd.hardState) batch.hardState = rd.hardState;
        }
        if (!batch.snapshot && !batch.entries && !batch.hardState) return false;
        if (rd.atomic) batch.atomic = true;
        const tr = this.opts.trace;
        if (tr && rd.entries.length > 0) tr.mark('persist.start', rd.entries[0]!.index, rd.entries[rd.entries.length - 1]!.index);
        const hs = rd.hardState;
        this.dlog!.persist(batch, hs ? (err) => {
          if (!err) this.durableHard = hs;
          done(err);
        } : done);
        return true;
      },
      durable: (rd) => {
        const tr = this.opts.trace;
        if (tr && rd.entries.length > 0) tr.mark('persist.done', rd.entries[0]!.index, rd.entries[rd.entries.length - 1]!.index);
        this.handleDurable(rd);
      },
      fatal: (err) => this.fatal(err),
    });
  }

  // ---------------------------------------------------------------------------
  // Read-only views

  get state(): EngineRuntimeState {
    return this.stateValue;
  }
  /** The engine (undefined until booted). */
  get engine(): Engine | undefined {
    return this.eng;
  }
  /** The hard state this incarnation booted from (what was durable). */
  get bootHardState(): Readonly<HardState> {
    return this.bootHard;
  }
  /** The hard state last made durable (the boot's, then every persisted Ready's). */
  get durableHardState(): Readonly<HardState> {
    return this.durableHard;
  }
  /** Index of this node's newest snapshot (taken or installed), 0 for none. */
  get snapshotIndex(): Index {
    return this.snapIndex;
  }
  /** Testing only: the saboteur this node lies through (undefined for an honest node). */
  get byzantine(): Saboteur | undefined {
    return this.opts.byzantine;
  }
  get stateMachine(): KvStateMachine {
    return this.kv;
  }
  get isLeader(): boolean {
    return this.stateValue === 'running' && this.eng !== undefined && this.eng.isLeader;
  }
  /**
   * Allowed to act on the outside world now. With fencing: through the activation gate,
   * its own lease judged at this instant (leader-fencing.ts). Without: leader with its
   * leadership's fencing token issued (see the header).
   */
  get active(): boolean {
    if (!this.isLeader) return false;
    if (this.electionFencing) return this.electionFencing.active;
    if (this.fencing) return this.fencing.isActive(this.opts.clock.monotonicMs());
    return this.eng!.leaderToken() > 0;
  }
  /** The fencing token of this node's leadership while active, else 0. */
  get activeToken(): number {
    if (this.electionFencing) return this.electionFencing.token;
    if (this.fencing) return this.active ? this.fencing.token : 0;
    return this.isLeader ? this.eng!.leaderToken() : 0;
  }
  /**
   * Hooks, jobs and actuators: called with active=true (and the token) when this node
   * becomes active, and with active=false as soon as it stops (lease lost, stepped
   * down, node stopped). Only with the `fencing` option. Returns an unsubscribe function.
   */
  onActivation(cb: (ev: ActivationEvent) => void): () => void {
    return this.activationListeners.add(cb);
  }
  private activationStatus(): ActivationStatus {
    const elected = this.isLeader;
    const ef = this.electionFencing;
    if (ef) return { elected, active: ef.active, waitingFor: ef.waitingFor(), token: ef.token, activation: undefined, fences: { local: ef.fences(), history: [] }, selfFencing: false };
    if (this.fencing) return this.fencing.status(elected, this.active);
    const active = this.active;
    return { elected, active, waitingFor: elected && !active ? 'elected: waiting for this leadership\'s first entry to commit' : '', token: this.activeToken, activation: undefined, fences: { local: this.pbftFences, history: [...this.kv.fenceHistory] }, selfFencing: false };
  }
  get lockClockMs(): number {
    if (this.pbftTime) return this.pbftTime.nowMs;
    return this.isLeader ? this.lockNow() : this.kv.clockMs;
  }
  contact(peer: NodeId): { agoMs: number | null; links: Record<string, number | null> } {
    const now = this.opts.clock.monotonicMs();
    return { agoMs: this.wire?.heardAgoMs(peer, now) ?? null, links: this.wire?.heardOnLinks(peer, now) ?? {} };
  }

  status(): EngineNodeStatus {
    const s: EngineStatus | undefined = this.eng?.status();
    return {
      id: this.id,
      engine: this.engineName,
      state: this.stateValue,
      role: s?.role ?? 'down',
      detail: s?.detail,
      term: s?.term ?? 0,
      leader: s?.leader ?? NO_NODE,
      commitIndex: s?.commitIndex ?? 0,
      appliedIndex: this.kv.appliedIndex,
      lastIndex: s?.lastIndex ?? 0,
      snapshotIndex: this.snapIndex,
      isWitness: s?.isWitness ?? false,
      bootId: this.wireBoot,
      framesAccepted: this.wire?.accepted ?? 0,
      drops: { ...(this.wire ? this.wire.drops() : newDropCounters()), 'other-engine': this.otherEngineDrops, 'not-member': this.notMemberDrops },
      unsupported: s?.unsupported ?? 0,
      pending: { writes: this.pendingWrites.size, reads: this.pendingReads.size, forwarded: this.forwarded.size + this.held.length },
      storage: this.dlog?.stats(),
      ...(this.electionFencing && this.eng instanceof BullyEngine
        ? { bully: { ...this.electionFencing.status(), leaderToken: s && s.leader !== NO_NODE ? fencingToken(s.term, s.leader) : 0, priority: this.eng.priority } }
        : {}),
      ...this.activationStatus(),
    };
  }

  // ---------------------------------------------------------------------------
  // Life cycle

  start(): void {
    if (this.stateValue !== 'new') throw new Error(`EngineRuntime ${this.id}: start() called twice (state ${this.stateValue})`);
    this.stateValue = 'booting';
    // ZAB keeps currentEpoch in HardState.vote (src/engine/contract.ts): not a Raft vote.
    // Bully keeps its held epoch there too (a number, not a node id); PBFT its reserved request-number blocks.
    const storageOptions: DurableLogOptions = {
      ...(this.engineName === 'zab' || this.engineName === 'bully' || this.engineName === 'pbft' ? { voteRule: 'number' as const } : {}),
      // The owner (daemon/runtime/meta.ts): checked, and written with the open's own hard-state replace.
      openMeta: (m) => this.ownedMeta(m),
      ...this.opts.storageOptions,
    };
    openDurableLog(this.opts.storage, storageOptions, (err, opened) => {
      if (this.stateValue !== 'booting') return;
      if (err || !opened) return this.fatal(err ?? new Error('openDurableLog returned nothing'));
      const start = (st: Recovered, bootCounter: number) => {
        try {
          this.boot(opened.log, st, bootCounter);
        } catch (e) {
          this.fatal(e as Error);
        }
      };
      // The wire bootId of this run must be newer than every one an earlier run used
      // (src/wire/auth.ts Sender: receivers drop a frame whose (bootId, seq) they have
      // passed): max(the durable log's bootId, the last seq wrap's counter + 1). The log's
      // bootId is already durable and grows by one per boot; a wrap's counter is durable
      // too — but when this run's id comes from it, nothing durable says that this run
      // used it, and the next boot would compute the same id again. Seen in a soak run: a
      // node whose seq had wrapped was killed twice within seconds and its third run
      // booted with its second run's id; reads through it got no answer for about two
      // minutes (its frames dropped as replays until its seq passed the second run's,
      // as read from the logs). So such an id is made durable before anything is sent.
      const boot = (st: Recovered) => {
        const meta = decodeMeta(st.meta);
        const counter = Math.max(st.bootId, meta.boot + 1);
        if (counter === st.bootId) return start(st, counter);
        opened.log.persist({ meta: this.metaBytes(counter, meta.formed) }, (err2) => {
          if (this.stateValue !== 'booting') return;
          if (err2) return this.fatal(err2);
          start(st, counter);
        });
      };
      if (this.engineName !== 'bully') return boot(opened.state);
      this.adoptBullyStateFile(opened.log, opened.state, boot);
    });
  }

  /**
   * A board upgraded from the bully runtime of its own keeps its epochs and boot counter
   * in `bully.state` (bully-state.ts): never start below them. Merged into the durable
   * log once (one batch), then booted from the merged state; a corrupt file is fatal.
   */
  private adoptBullyStateFile(dlog: DurableLog, st: Recovered, boot: (st: Recovered) => void): void {
    let old;
    try {
      old = bullyStateOf(this.opts.storage);
    } catch (e) {
      return this.fatal(e as Error);
    }
    const meta = decodeMeta(st.meta);
    if (!old || (old.epoch <= st.hardState.term && old.held <= st.hardState.vote && old.boot <= meta.boot)) return boot(st);
    const hardState: HardState = { term: Math.max(old.epoch, st.hardState.term), vote: Math.max(old.held, st.hardState.vote), commit: 0 };
    const m = this.metaBytes(Math.max(old.boot, meta.boot), meta.formed);
    this.log('info', 'adopting bully.state', { node: this.id, epoch: hardState.term, held: hardState.vote, boot: old.boot });
    dlog.persist({ hardState, meta: m }, (err) => {
      if (this.stateValue !== 'booting') return;
      if (err) return this.fatal(err);
      boot({ ...st, hardState, meta: m });
    });
  }

  /**
   * The recovered metadata with this member as its owner; throws a StorageCorruptError
   * when it names another member or cluster (metadata without an owner, from an older
   * build or a fresh log, is taken as this member's).
   */
  private ownedMeta(recovered: Uint8Array): Uint8Array {
    const meta = decodeMeta(recovered);
    if (meta.newer !== undefined) {
      // Read as "nothing recorded", it would restart the boot counter (frames dropped as
      // replays) and forget that the cluster formed (the fencing first-start rule).
      throw new StorageCorruptError(HARDSTATE_FILE, -1, `runtime metadata version ${meta.newer}, newer than this build reads (1 to 2): upgrade this node to the quorumd that wrote it`, true);
    }
    const owner = meta.owner;
    if (owner !== undefined && (owner.cluster !== this.opts.cluster || owner.node !== this.id)) {
      throw new StorageCorruptError(
        HARDSTATE_FILE,
        -1,
        `this state belongs to node ${owner.node} of cluster ${owner.cluster}, but this is node ${this.id} of cluster ${this.opts.cluster}: a data directory copied from another ${owner.cluster === this.opts.cluster ? 'member' : 'cluster'}; a member must only ever start on its own data (its votes and acknowledged entries), never on another's`,
      );
    }
    if (owner !== undefined) return recovered;
    // boot -1: nothing recorded (a fresh log); 0 says the same to the next start (start(): counter = max(bootId, boot + 1)).
    return this.metaBytes(Math.max(meta.boot, 0), meta.formed);
  }

  /** The runtime metadata of this member (daemon/runtime/meta.ts): its owner always written. */
  private metaBytes(boot: number, formed: boolean): Uint8Array {
    return encodeMeta({ boot, formed, owner: { cluster: this.opts.cluster, node: this.id } });
  }

  /** `bootCounter`: this run's boot counter, already durable (see start(); the wire bootId is its low 16 bits). */
  private boot(dlog: DurableLog, st: Recovered, bootCounter: number): void {
    this.dlog = dlog;
    for (const w of st.warnings) this.log('warn', 'storage recovery', { node: this.id, warning: w });
    this.formed = decodeMeta(st.meta).formed;
    this.bootCounter = bootCounter;
    this.wireBoot = this.bootCounter & 0xffff;
    const snap = st.snapshot;
    let snapshot: SnapshotData | undefined;
    let hardState = st.hardState;
    let entries = st.entries;
    if (this.pbftAuth) {
      const p = pbftFromDurable(st);
      ({ hardState, entries, snapshot } = p);
      this.pbftHard = { term: Math.max(1, st.hardState.term), vote: st.hardState.vote, commit: st.hardState.commit };
    } else if (snap) snapshot = { meta: { index: snap.index, term: snap.term, config: snap.config as MemberConfig }, data: snap.data };
    this.bootHard = { ...hardState };
    this.durableHard = { ...hardState };
    this.eng = createEngine(this.engineName, {
      id: this.id,
      config: this.opts.config,
      hardState,
      ...(snapshot ? { snapshot } : {}),
      entries,
      // With fencing every heartbeat carries a round: the activation lease counts them (not PBFT's: no leases).
      options: { maxMsgBytes: this.maxFrame, ...(this.opts.fencing && !this.pbftAuth ? { heartbeatRounds: true } : {}), ...this.opts.engineOptions },
      rng: this.opts.rng,
      ...(this.pbftAuth ? { auth: this.pbftAuth } : {}),
    } as EngineInit<Record<string, unknown>>);
    this.tickMs = posInt(this.eng.tickMs, 'engine tickMs', 1);
    // Engines without quietTicks keep a timer per tick, armed as without the option.
    this.quietMode = this.opts.quietTicks === true && typeof this.eng.quietTicks === 'function';
    this.kv = new KvStateMachine();
    if (this.pbftAuth) this.pbftTally = this.newTally();
    this.snapIndex = snap?.index ?? 0;
    this.logBytesSinceSnap = 0;
    if (snap) this.restoreStateMachine(snap.index, snap.data);
    this.pbftTime?.afterApply(this.kv, this.opts.clock.monotonicMs());
    this.wire = new WireEndpoint({
      id: this.id,
      cluster: this.opts.cluster,
      keyring: this.opts.keyring,
      ...(this.pbftAuth ? { senderKeys: derivedFrameKeys(this.opts.keyring, this.opts.cluster, this.opts.config.voters) } : {}),
      now: () => this.opts.clock.monotonicMs(),
      maxFrame: this.maxFrame,
      links: this.opts.links,
      bootId: this.wireBoot,
      log: this.log,
      running: () => this.stateValue === 'running',
      fatal: (err) => this.fatal(err),
      persistNextBoot: (bootId, done) => {
        this.bootCounter++;
        this.wireBoot = bootId;
        this.dlog!.persist({ meta: this.metaBytes(this.bootCounter, this.formed) }, done);
      },
    });
    // Link callbacks are entry points: an exception outside the engine's own guard (client
    // requests, replies, link events) takes the fatal path too, never the link library's.
    this.wire.listen(...guardedLinkCallbacks((where, e) => this.fatal(new InternalError(where, e)), (m) => this.onMessage(m), (link, ev) => this.onLinkEvent(link, ev)));
    this.setupFencing();
    this.stateValue = 'running';
    const s = this.eng.status();
    this.log('info', 'booted', { node: this.id, engine: this.engineName, term: s.term, commit: s.commitIndex, last: s.lastIndex, snapshot: this.snapIndex, bootId: this.wireBoot });
    this.opts.observer?.booted?.(this);
    const sc = this.opts.startClockWhen;
    if (sc && this.opts.config.voters.length + this.opts.config.witnesses.length > 1) this.clockHeldUntil = this.opts.clock.monotonicMs() + sc.maxWaitMs;
    this.armTick();
    this.pump();
  }

  private restoreStateMachine(index: Index, data: Uint8Array): void {
    if (this.pbftAuth) {
      // A PBFT snapshot may carry the client table beside the KV state (pbft-clients.ts).
      const st = decodePbftState(data);
      if (typeof st === 'string') throw new Error(`node ${this.id}: snapshot at index ${index}: ${st}`);
      this.clientTable = st.table;
      if (st.fences) {
        const t = FenceTally.decode(this.tallyOptions(), st.fences);
        if (typeof t === 'string') throw new Error(`node ${this.id}: snapshot at index ${index}: ${t}`);
        this.pbftTally = t;
      } else this.pbftTally = this.newTally();
      const bad = this.pbftTime?.restore(st.clock);
      if (bad) throw new Error(`node ${this.id}: snapshot at index ${index}: ${bad}`);
      data = st.kv;
    }
    if (data.length === 0) {
      // A witness keeps no data: an empty state machine at the snapshot's index.
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
    this.halt(true, 'node stopped');
    for (const l of this.opts.links) l.close();
  }

  /** The fatal path for an exception from outside the runtime's own entry points (an uncaught exception of a library; daemon/runtime/process-guard.ts). */
  crash(where: string, e: unknown): void {
    this.fatal(new InternalError(where, e));
  }

  private fatal(err: Error): void {
    if (this.stateValue === 'stopped') return;
    this.log('error', 'fatal: node stops', { node: this.id, error: err.message, kind: err.name });
    this.halt(false, `node stopped: ${err.message}`);
    this.opts.onFatal?.(err);
  }

  /** What stop() and fatal() both do: fencing stopped (the watchdog disarmed only on an orderly stop), no more ticks, the log closed, every waiting client answered with `why`. */
  private halt(orderly: boolean, why: string): void {
    this.stateValue = 'stopped';
    this.fencing?.stopped(orderly);
    this.electionFencing?.stopped();
    this.pbftFencingHost?.stopped();
    this.cancelTick?.();
    this.dlog?.close();
    this.failAll(why);
  }

  private failAll(why: string): void {
    const writes = this.pendingWrites.values();
    const fw = this.forwarded.values();
    const reads = this.pendingReads.values();
    const held = this.held;
    for (const w of this.pendingRefs.values()) writes.push(w);
    this.pendingWrites.clear();
    this.pendingRefs.clear();
    this.forwarded.clear();
    this.pendingReads.clear();
    this.held = [];
    for (const w of writes) w.reply(unknownOutcome(`${why}; the write was proposed and may or may not be applied`));
    for (const f of fw) f.reply(unknownOutcome(`${why}; the write was forwarded to the leader and may or may not be applied`));
    for (const h of held) h.reply(h.res); // the leader applied it: the outcome is known
    for (const r of reads) r.cb(unavailable(why));
  }

  private armTick(): void {
    const now = this.opts.clock.monotonicMs();
    // Quiet ticks: the next q ticks are due at now + k × tickMs as before (k = 1..q), only
    // nobody wakes for them; syncTicks takes each once its time passed, before any input,
    // and the timer fires for tick q + 1, the first that may act. q = 0: one tick per
    // timer, as without quiet ticks.
    const q = this.quietMode ? this.quietTicksAt(now) : 0;
    this.quietLeft = q;
    this.tickBase = now;
    this.tickDueAt = now + (q + 1) * this.tickMs;
    this.cancelTick = this.opts.clock.setTimer((q + 1) * this.tickMs, this.onTick);
  }

  /** Longest quiet stretch, ms: a sleeping node still looks at everything once a second. */
  private static readonly MAX_QUIET_MS = 1000;

  /** How many ticks from now may be made up later instead of woken for (0: wake for the next one). */
  private quietTicksAt(now: number): number {
    if (this.stateValue !== 'running' || this.clockHeldUntil !== undefined) return 0;
    if (this.pbftTime || this.pbftFencingHost || this.electionFencing) return 0;
    // expire() times out waiting clients at their deadlines: tick while any waits.
    if (this.pendingWrites.size > 0 || this.forwarded.size > 0 || this.held.length > 0 || this.pendingRefs.size > 0 || this.pendingReads.size > 0) return 0;
    let q = this.eng!.quietTicks?.() ?? 0;
    if (!(q >= 1)) return 0;
    let untilMs = EngineRuntime.MAX_QUIET_MS;
    if (this.fencing) untilMs = Math.min(untilMs, this.fencing.quietUntil(now) - now);
    // The tick after the quiet ones must come no later than that.
    q = Math.min(q, Math.floor(untilMs / this.tickMs) - 1);
    return q > 0 ? q : 0;
  }

  /**
   * Quiet ticks: takes the quiet ticks whose time has come (each at the time it was
   * due), so that an input finds the engine's clock where a timer every tickMs would
   * have put it. Called before every input; cheap when nothing is owed.
   */
  private syncTicks(all = false): void {
    if (this.quietLeft === 0) return;
    const now = this.opts.clock.monotonicMs();
    // all: onTick, whose timer fired for the tick after the quiet ones (a timer may fire
    // a fraction of a millisecond before its time by this clock).
    while (this.quietLeft > 0 && (all || this.tickBase + this.tickMs <= now)) {
      this.quietLeft--;
      this.tickBase += this.tickMs;
      this.lastTickAt = this.tickBase;
      // guard() inline: no closure per made-up tick.
      try {
        this.eng!.tick();
      } catch (e) {
        this.engineFailed(e, 'tick');
        return;
      }
    }
  }

  /**
   * Quiet ticks: after an input the engine may act sooner than the armed timer (it became
   * leader: heartbeats; a client request now waits: its timeout), so the timer moves
   * earlier. Never later: a timer that fires early only looks again.
   */
  private recheckQuiet(): void {
    if (this.quietLeft === 0 || this.ticking || this.tickDeferred || this.stateValue !== 'running') return;
    const now = this.opts.clock.monotonicMs();
    const q = this.quietTicksAt(now);
    if (q >= this.quietLeft) return;
    this.quietLeft = q;
    this.tickDueAt = this.tickBase + (q + 1) * this.tickMs;
    this.cancelTick?.();
    this.cancelTick = this.opts.clock.setTimer(Math.max(0, this.tickDueAt - now), this.onTick);
  }

  /** Monotonic time the armed tick is due, and whether the current one was put off once (onTick). */
  private tickDueAt = 0;
  private tickDeferred = false;
  /** Monotonic time of the last tick (NaN before the first): see checkTickLag. */
  private lastTickAt = NaN;
  /**
   * When another node's vote request for a newer term last arrived, by sender
   * (engine.isCampaignRequest; peer-gone campaigns defer to it, but not to one of the
   * node that is gone: its campaign is over).
   */
  private readonly campaignSeen = new Map<NodeId, number>();
  /** Messages of another engine's types received (otherEngine). */
  private otherEngineDrops = 0;
  /** Messages from nodes this node's members do not include (notMember). */
  private notMemberDrops = 0;
  /** When something about each peer was last said at warn (monotonic ms; sayOncePerMinute). */
  private readonly warnedAt = new Map<NodeId, number>();
  /** Every member this node's configuration lists, of any role. */
  private readonly memberIds: Set<NodeId>;

  /**
   * The engine counts time in ticks, one per timer firing. A tick that comes late (the
   * process was stopped: SIGSTOP, a GC pause, a blocked SD-card write) leaves the
   * engine's clock behind real time, and a lease counted in ticks would outlive its
   * real bound. So when the last tick is more than two periods old, heartbeat rounds
   * sent so far hold no lease any more (engine.dropLease, where the engine has leases):
   * reads take a round until a fresh one is acknowledged. Called before anything that
   * may serve a read (a tick, a ReadIndex message, a client read).
   */
  private checkTickLag(now: number): void {
    this.syncTicks();
    if (now - this.lastTickAt > 2 * this.tickMs) this.eng!.dropLease?.();
  }

  private readonly onTick = (): void => {
    if (this.stateValue !== 'running') return;
    if (!this.tickDeferred && this.opts.clock.monotonicMs() - this.tickDueAt > this.tickMs) {
      // As node.ts (and the bully runtime had it): the tick comes late (the process
      // stalled: GC, SIGSTOP, a busy core). Node runs timers before it polls sockets, so
      // a heartbeat that arrived during the stall would still be unread when this tick
      // reaches the failure timeout. Let the waiting input in first: a 0 ms timer runs
      // after this loop turn's poll phase.
      this.tickDeferred = true;
      this.cancelTick = this.opts.clock.setTimer(0, this.onTick);
      return;
    }
    this.tickDeferred = false;
    if (this.quietMode) {
      // The quiet ticks first (all due by now), then this one; the timer is armed at the end.
      this.ticking = true;
      try {
        this.syncTicks(true);
        if (this.stateValue === 'running') this.tickNow();
      } finally {
        this.ticking = false;
      }
      if (this.stateValue === 'running') this.armTick();
      return;
    }
    this.armTick();
    this.tickNow();
  };

  /** One tick (onTick after the timer): the engine's, then what else runs every tick. */
  private tickNow(): void {
    const now = this.opts.clock.monotonicMs();
    if (this.clockHeldUntil !== undefined && (now >= this.clockHeldUntil || this.opts.startClockWhen!.reachable())) {
      this.log('info', 'engine clock started', { node: this.id, peerReachable: now < this.clockHeldUntil });
      this.clockHeldUntil = undefined;
    }
    if (this.clockHeldUntil === undefined) {
      this.checkTickLag(now);
      this.lastTickAt = now;
      // Caught here, as in onMessage, not through a closure per tick (every node ticks every tickMs).
      try {
        this.eng!.tick();
      } catch (e) {
        this.engineFailed(e, 'tick');
      }
      if (this.stateValue !== 'running') return;
    }
    this.expire();
    this.afterStep();
    if (this.stateValue !== 'running') return;
    this.fencing?.tick();
    this.pbftFencingHost?.tick(this.opts.clock.monotonicMs());
    if (this.pbftTime) this.pbftTimeTick(now);
    this.pump();
    if (this.stateValue === 'running') this.electionFencing?.tick();
  }

  /** An engine call that answers a Result: an exception is a definite refusal here, then the fatal path (engineFailed). */
  private guarded<T>(fn: () => Result<T>, what: string): Result<T> {
    try {
      return fn();
    } catch (e) {
      this.engineFailed(e, what);
      return { ok: false, code: 'no-leader', reason: `the engine failed on ${what}: ${(e as Error).message}` };
    }
  }

  /**
   * An engine input threw (the tick and message paths catch inline; guarded() for the
   * rest). An exception is an engine bug: the engine's state is no longer known to be
   * sound, so it is logged with its stack, reported, and the node takes the fatal path
   * (pending requests answered, onFatal → the process exits for its supervisor), as the
   * Raft and bully runtimes do. Never rethrown into a link callback.
   */
  private engineFailed(e: unknown, what: string): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.log('error', 'engine threw', { node: this.id, input: what, error: err.message, stack: err.stack ?? '' });
    // An InternalError names the input ("internal error in engine raft tick: RangeError: ..."), for the observer and the supervisor alike.
    const ie = new InternalError(`engine ${this.engineName} ${what}`, err);
    this.opts.observer?.engineError?.(this, ie);
    this.fatal(ie);
  }

  private afterStep(): void {
    const leader = this.eng!.isLeader;
    if (leader && !this.wasLeader) {
      // Lock time line: a new leader continues from the state machine's clock (lockNow()).
      this.lockClockOffset = this.opts.plantedLockClock === 'clamped-offset' ? Math.max(0, this.kv.clockMs - this.opts.clock.monotonicMs()) : this.kv.clockMs - Math.floor(this.opts.clock.monotonicMs());
    }
    if (!leader && this.wasLeader && this.pendingGrowth.size > 0) {
      this.pendingGrowth.clear();
      this.pendingUse = { keys: 0, bytes: 0 };
    }
    this.fencing?.step(leader, this.wasLeader);
    this.electionFencing?.step();
    this.wasLeader = leader;
    if (this.opts.trace) this.traceCommit(this.opts.trace);
    this.opts.observer?.afterStep?.(this);
    this.recheckQuiet();
  }

  /** Write trace: the commit index passed these entries (only with a tracer). */
  private traceCommit(tr: WriteTracer): void {
    const commit = this.eng!.status().commitIndex;
    if (commit > this.tracedCommit) {
      tr.mark('commit', this.tracedCommit + 1, commit);
      this.tracedCommit = commit;
    }
  }
  private tracedCommit = 0;

  private pump(): void {
    this.loop.pump();
  }

  // ---------------------------------------------------------------------------
  // The Ready loop

  private handleDurable(rd: Ready): void {
    const eng = this.eng!;
    this.opts.observer?.persisted?.(this, rd);
    if (rd.snapshot) {
      const idx = rd.snapshot.meta.index;
      try {
        this.restoreStateMachine(idx, rd.snapshot.data);
      } catch (e) {
        return this.fatal(e as Error);
      }
      this.snapIndex = idx;
      this.logBytesSinceSnap = 0;
      this.log('info', 'snapshot installed', { node: this.id, index: idx, term: rd.snapshot.meta.term });
      for (const [i, w] of this.pendingWrites.takeWhere((i) => i <= idx)) {
        w.reply(unknownOutcome(`a snapshot up to index ${idx} replaced the log; the outcome of the write at index ${i} is not known here`));
      }
    }
    // Indexed loops (as node.ts had them): a Ready's empty lists are one frozen array, and
    // for-of over a frozen array is not turned into a plain loop (an iterator object per loop,
    // three per Ready; this runs for every Ready of every node).
    const msgs = rd.messages;
    for (let i = 0; i < msgs.length; i++) this.send(msgs[i]!);
    let results: Map<Index, ApplyResult | undefined> | undefined;
    const committed = rd.committed;
    if (committed.length > 0) {
      const witness = eng.status().isWitness;
      if (this.pbftAuth) {
        results = new Map();
        this.pbftApplied = new Map();
      }
      for (let i = 0; i < committed.length; i++) {
        const e = committed[i]!;
        const r = this.applyEntry(e, witness);
        if (this.stateValue === 'stopped') return; // an entry it cannot apply (NewerEntryError): nothing after it
        results?.set(e.index, r);
      }
    }
    if (rd.outcomes) this.pbftOutcomes(rd.outcomes, results);
    this.pbftApplied = undefined;
    if (this.pbftTime && (committed.length > 0 || rd.snapshot)) this.pbftTime.afterApply(this.kv, this.opts.clock.monotonicMs());
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
    if (rd.softState) this.log('info', 'role', { node: this.id, role: rd.softState.role, detail: rd.softState.detail, term: rd.softState.term, leader: rd.softState.leader });
    eng.advance(rd);
    if (rd.checkpoint !== undefined) this.pbftCheckpoint(rd.checkpoint);
    this.afterStep();
    this.serveReads();
    if (!this.pbftAuth) this.maybeCompact();
  }

  private applyEntry(e: Entry, witness: boolean): ApplyResult | undefined {
    this.logBytesSinceSnap += e.data.length + LOG_RECORD_OVERHEAD;
    const g = this.pendingGrowth.get(e.index);
    if (g) {
      this.pendingGrowth.delete(e.index);
      this.pendingUse = { keys: this.pendingUse.keys - g.keys, bytes: this.pendingUse.bytes - g.bytes };
    }
    let result: ApplyResult | undefined;
    if (this.pbftAuth && e.type === EntryType.Normal && isClientOp(e.data)) return this.pbftApplyClientOp(e);
    if (this.pbftAuth && e.type === EntryType.Normal && isFenceOp(e.data)) return this.pbftApplyFenceOp(e);
    if (this.pbftTime && e.type === EntryType.Normal && isTimeReport(e.data)) {
      // A clock report (pbft-time.ts): the agreed lock time, nothing in the KV state.
      this.pbftTime.applyReport((this.eng as PbftNode).executedRequest(e.index)?.origin, e.data);
      const err = this.kv.applyNoop(e.index);
      if (err) this.log('error', 'apply order', { node: this.id, index: e.index, error: err.message });
      this.opts.observer?.applied?.(this, e, undefined);
      this.opts.trace?.mark('apply', e.index);
      return undefined;
    }
    if (e.type !== EntryType.Normal && e.type !== EntryType.Noop && e.type !== EntryType.Config) {
      // Only a newer build's log (a downgrade) can hold one: the wire refuses unknown entry types.
      this.fatal(new NewerEntryError(e.index, e.term, `entry type ${String(e.type)} is not one this build knows (${EntryType.Normal} command, ${EntryType.Noop} no-op, ${EntryType.Config} membership)`));
      return undefined;
    }
    if (e.type === EntryType.Normal && !witness) {
      // Strict but under PBFT (NewerEntryError says why): an entry that does not decode stops the node.
      const strict = this.engineName !== 'pbft';
      result = this.kv.apply(e.index, this.pbftTime ? this.pbftTime.stamp(e.data) : e.data, strict);
      if (result.op === 'error') {
        if (result.error.code === 'apply-order') this.log('error', 'apply order', { node: this.id, index: e.index, error: result.error.message });
        else if (strict) {
          this.fatal(new NewerEntryError(e.index, e.term, result.error.message));
          return undefined;
        }
      }
    } else {
      const err = this.kv.applyNoop(e.index);
      if (err) this.log('error', 'apply order', { node: this.id, index: e.index, error: err.message });
    }
    this.opts.observer?.applied?.(this, e, result);
    this.opts.trace?.mark('apply', e.index);
    this.fencing?.applied(e, result);
    if (this.pbftAuth) {
      this.pbftSignReply(e, resultToClient(result));
      return result;
    }
    const w = this.pendingWrites.get(e.index);
    if (!w) return result;
    this.pendingWrites.delete(e.index);
    if (w.term !== e.term || e.type !== EntryType.Normal) {
      w.reply(unavailable(`another entry (term ${e.term}) was committed at index ${e.index}: the write was not applied`));
      return result;
    }
    w.reply(resultToClient(result));
    return result;
  }

  // ---------------------------------------------------------------------------
  // PBFT (pbft-host.ts; src/engine/contract.ts "Extensions for engines whose leader is not trusted")

  /** The Ready's durable pieces in the durable log's shape; entries never above the stored term. */
  private pbftBatch(rd: Ready, batch: PersistBatch): void {
    pbftToDurable(rd, batch);
    if (batch.hardState) this.pbftHard = batch.hardState;
    else if (batch.entries || batch.snapshot) batch.hardState = this.pbftHard;
  }

  /**
   * Any replica proposes (the primary only orders): the request is signed by this node
   * as its origin and its outcome comes back by ref (Ready.outcomes). Locks execute at
   * the agreed time (pbft-time.ts): their `now` is proposed as 0. Jobs are not offered
   * under PBFT: their claims assume a trusted leader (501).
   */
  private pbftPropose(req: Command | { cmd: Command; ref: ClientRef } | { read: string; ref: ClientRef }, reply: ClientCallback, local: boolean): void {
    if (!local) return reply(unavailable(`node ${this.id} runs pbft: every node proposes its own clients' requests; forwarded requests are not taken`));
    if ('read' in req) {
      this.pbftProposeBytes(encodeClientOp({ ...req.ref, kind: 'read', key: req.read }), reply);
      return;
    }
    let cmd = 'ref' in req ? req.cmd : req;
    if (cmd.op !== 'put' && cmd.op !== 'del' && cmd.op !== 'lock.acquire' && cmd.op !== 'lock.renew' && cmd.op !== 'lock.release') {
      return reply({ status: 501, error: `${cmd.op} is not supported under engine pbft (jobs need a trusted leader)` });
    }
    if (cmd.op === 'lock.acquire' || cmd.op === 'lock.renew') cmd = { ...cmd, now: 0 };
    const plain = encodeCommand(cmd);
    if (plain instanceof KvError) return reply({ status: plain.httpStatus, error: plain.message });
    const data = 'ref' in req ? encodeClientOp({ ...req.ref, kind: 'write', command: plain }) : plain;
    const growth = quotaGrowth(this.kv, cmd);
    const over = growth.keys > 0 || growth.bytes > 0 ? checkQuota(this.quota, this.kv.usage(), { keys: 0, bytes: 0 }, growth) : null;
    if (over) {
      this.quotaRefusals++;
      return reply({ status: over.httpStatus, error: over.message });
    }
    this.pbftProposeBytes(data, reply);
  }

  /** Proposes `data` as this node's request; returns its request number (ref) once the engine took it. */
  private pbftProposeBytes(data: Uint8Array, reply: ClientCallback): number | undefined {
    const eng = this.eng!;
    const r: Result = this.guarded(() => eng.propose(data), 'propose');
    this.afterStep();
    if (!r.ok) {
      reply(proposeRefused(r));
      return undefined;
    }
    if (r.ref === undefined) {
      reply(unknownOutcome(`the pbft engine accepted the proposal without a ref; its outcome cannot be followed`));
      return undefined;
    }
    this.pendingRefs.set(r.ref, { term: r.term, reply, deadline: this.opts.clock.monotonicMs() + this.timeoutMs, ref: r.ref, op: data });
    this.recheckQuiet(); // a client waits now: its timeout needs the tick (quietTicksAt)
    return r.ref;
  }

  /** Outcomes of own proposals: index 0 = never applied (503); else the result applied in this Ready. */
  private pbftOutcomes(outcomes: readonly { ref: number; index: Index }[], results: Map<Index, ApplyResult | undefined> | undefined): void {
    for (const o of outcomes) {
      const w = this.pendingRefs.get(o.ref);
      if (!w) continue;
      this.pendingRefs.delete(o.ref);
      if (o.index === 0) {
        w.reply(unavailable(`request ${this.id}/${o.ref} will never be applied (the engine dropped it); not applied`));
        continue;
      }
      const applied = this.pbftApplied?.get(o.index);
      if (!results?.has(o.index) || !applied) {
        w.reply(unknownOutcome(`request ${this.id}/${o.ref} was applied at index ${o.index} before this node could see its result`));
        continue;
      }
      let res = applied;
      const byz = this.opts.byzantine;
      if (byz?.has('wrong-reply')) {
        // Lies to its own client too.
        if (res.index !== undefined) res = { ...res, index: res.index + 7 };
        if (res.value !== undefined) res = { ...res, value: new Uint8Array(Buffer.concat([Buffer.from('LIE-'), res.value])) };
      }
      w.reply({ ...res, pbftF: this.pbftF(), pbft: { origin: this.id, reqNo: o.ref, reply: this.signedReplies.get(`${this.id}/${o.ref}`) } });
    }
  }

  /** Every executed client request gets a signed reply (src/pbft/reply.ts): the client trusts f + 1 matching ones. */
  private pbftSignReply(e: Entry, res: ClientResult, client?: ClientRef): void {
    if (e.type !== EntryType.Normal) return;
    this.pbftApplied?.set(e.index, res);
    const eng = this.eng as PbftNode;
    const req = eng.executedRequest(e.index);
    if (!req) return;
    const plain = encodeResult(res);
    const rep = signReply(this.pbftAuth!, {
      view: eng.currentView, origin: req.origin, reqNo: req.reqNo, index: e.index, opDigest: sha256(e.data),
      result: this.opts.byzantine ? this.opts.byzantine.replyResult(plain) : plain,
    });
    const key = `${req.origin}/${req.reqNo}`;
    this.signedReplies.set(key, rep);
    if (this.signedReplies.size > 1024) this.signedReplies.delete(this.signedReplies.keys().next().value!);
    if (client) {
      // The first execution's reply stays (a retry's duplicate answers the same result).
      const ck = clientKey(client.id, client.seq);
      if (!this.clientReplies.has(ck)) this.clientReplies.set(ck, rep);
      if (this.clientReplies.size > 1024) this.clientReplies.delete(this.clientReplies.keys().next().value!);
    }
    this.opts.observer?.replied?.(this, rep);
  }

  /** f of this PBFT cluster (⌊(n − 1) / 3⌋ of the voters). */
  private pbftF(): number {
    return Math.floor((this.opts.config.voters.length - 1) / 3);
  }

  /**
   * A request of a client that gathers f + 1 replies itself (pbft-clients.ts): a KV write
   * or, with a key, an ordered read, in the client's envelope. Proposed here as any
   * request of this node (origin = this node); the answer carries this node's signed reply.
   */
  private pbftClientRequest(what: Command | string, ref: ClientRef, cb: ClientCallback): void {
    if (typeof cb !== 'function') throw new TypeError('EngineRuntime: cb must be a function');
    const bad = checkClientRef(ref);
    if (bad) return cb({ status: Status.BAD_REQUEST, error: bad });
    if (typeof what === 'string') {
      const badKey = checkKey(what);
      if (badKey) return cb(badKey);
    }
    if (this.stateValue !== 'running') return cb(notRunning(this.id, this.stateValue));
    this.pbftPropose(typeof what === 'string' ? { read: what, ref } : { cmd: what, ref }, cb, true);
    this.pump();
  }

  /**
   * A lock command of a client that gathers f + 1 replies itself (daemon/client/pbft.ts):
   * proposed in the client's envelope, `now` = 0 (it executes at the agreed time).
   */
  pbftLock(cmd: Command, ref: ClientRef, cb: ClientCallback): void {
    if (typeof cb !== 'function') throw new TypeError('EngineRuntime.pbftLock: cb must be a function');
    if (!this.pbftAuth) return cb({ status: ENGINE_UNSUPPORTED, error: `pbft client locks need engine pbft; this node runs ${this.engineName}` });
    if (cmd.op !== 'lock.acquire' && cmd.op !== 'lock.renew' && cmd.op !== 'lock.release') return cb({ status: Status.BAD_REQUEST, error: `pbftLock: expected a lock command, got ${String(cmd.op)}` });
    const bad = encodeCommand(cmd);
    if (bad instanceof KvError) return cb({ status: bad.httpStatus, error: bad.message });
    this.pbftClientRequest(cmd, ref, cb);
  }

  /** PBFT: the agreed lock time (src/pbft/agreed-time.ts), and this node's estimate of it. */
  get pbftLockTime(): { agreedMs: number; estimateMs: number; running: boolean; reports: number } | undefined {
    const t = this.pbftTime;
    if (!t) return undefined;
    return { agreedMs: t.nowMs, estimateMs: t.line.estimate(this.opts.clock.monotonicMs()), running: t.line.isRunning, reports: t.executedReports };
  }

  /** PBFT: while a lock is live, propose this node's clock report every period (pbft-time.ts). */
  private pbftTimeTick(now: number): void {
    const t = this.pbftTime!;
    const data = t.due(now);
    if (!data) return;
    this.pbftProposeBytes(data, () => t.settled());
  }

  /** Applies a client envelope (pbft-clients.ts): a read, or a write at most once per client request. */
  private pbftApplyClientOp(e: Entry): ApplyResult | undefined {
    const op = decodeClientOp(e.data);
    if (typeof op === 'string') {
      // Not a valid envelope: a bad command as any other (counted, index consumed).
      const result = this.kv.apply(e.index, e.data);
      this.opts.observer?.applied?.(this, e, result);
      this.pbftSignReply(e, { status: Status.BAD_REQUEST, error: op });
      return result;
    }
    let res: ClientResult;
    let result: ApplyResult | undefined;
    let seen: Entry = e;
    if (op.kind === 'read') {
      this.kv.applyNoop(e.index);
      res = this.localGet(op.key!);
    } else {
      const v = this.clientTable.judge(op);
      seen = { ...e, data: op.command! };
      if (v.run) {
        result = this.kv.apply(e.index, this.pbftTime ? this.pbftTime.stamp(op.command!) : op.command!);
        res = resultToClient(result);
        this.clientTable.record(op, e.index, encodeResult(res));
      } else {
        this.kv.applyNoop(e.index);
        const rec = 'recorded' in v ? decodeResult(v.recorded) : undefined;
        res = rec === undefined
          ? { status: Status.CONFLICT, error: `client request ${op.seq} is older than this client's last executed request (${'stale' in v ? v.stale : '?'}); not executed` }
          : rec instanceof Error ? { status: Status.UNKNOWN, error: rec.message } : rec;
      }
    }
    // Observers see the KV command itself (watches, the simulator); reads change nothing.
    this.opts.observer?.applied?.(this, seen, result);
    this.pbftSignReply(e, res, op);
    return result;
  }

  private tallyOptions(): { members: readonly NodeId[]; f: number; planted?: 'one-vote' | 'stale-votes' } {
    const planted = this.opts.pbftFencing?.plantedTally;
    return { members: this.opts.config.voters, f: this.pbftF(), ...(planted ? { planted } : {}) };
  }

  private newTally(): FenceTally {
    return new FenceTally(this.tallyOptions());
  }

  /**
   * Applies a fence vote (pbft-fencing.ts): on every replica, into the replicated tally,
   * counted by the request's signed origin; a decision it completes fences the target
   * on the board(s) wired to it (pbftFencing). Changes nothing in the KV state.
   */
  private pbftApplyFenceOp(e: Entry): ApplyResult | undefined {
    this.kv.applyNoop(e.index);
    this.opts.observer?.applied?.(this, e, undefined);
    const req = decodeFenceOp(e.data);
    const ex = (this.eng as PbftNode).executedRequest(e.index);
    let decision: FenceDecision | undefined;
    if (typeof req === 'string') this.log('warn', 'pbft fence request refused', { node: this.id, index: e.index, error: req });
    else if (ex) decision = this.pbftTally!.apply({ index: e.index, origin: ex.origin, reqNo: ex.reqNo, request: req });
    this.pbftSignReply(e, typeof req === 'string' ? { status: Status.BAD_REQUEST, error: req } : { status: Status.OK, index: e.index });
    if (decision) {
      this.opts.observer?.pbftFenceDecided?.(this, decision);
      this.pbftFencingHost?.decided(decision, this.opts.clock.monotonicMs());
    }
    return undefined;
  }

  /** PBFT fencing's host (pbft-fencing.ts): created at boot with the pbftFencing option. */
  private setupPbftFencing(o: PbftFencingOptions): void {
    const eng = this.eng as PbftNode;
    this.pbftFencingHost = new PbftFencing({
      id: this.id,
      members: this.opts.config.voters,
      clock: this.opts.clock,
      log: this.log,
      rng: this.opts.rng,
      tickMs: this.tickMs,
      statusMs: eng.options.statusMs,
      running: () => this.stateValue === 'running',
      stopped: () => this.stateValue === 'stopped',
      tally: () => this.pbftTally!,
      propose: (data, done) => this.pbftProposeBytes(data, () => done()),
      bootExecuted: this.bootHard.commit,
      crash: (where, e) => this.fatal(new InternalError(where, e)),
      voted: (reqNo, req, suspects) => this.opts.observer?.pbftFenceVoted?.(this, reqNo, req, suspects),
      fenced: (rec) => this.opts.observer?.fenced?.(this, rec),
    }, o);
  }

  /** PBFT fencing: fences this board started on committed decisions (status, tests). */
  get pbftFences(): FenceRecord[] {
    return this.pbftFencingHost?.fences() ?? [];
  }

  /** The reply this node signed for the client request (id, seq), while it keeps it (the last 1024). */
  pbftClientReply(id: Uint8Array, seq: number): PbftReply | undefined {
    return this.clientReplies.get(clientKey(id, seq));
  }

  /** The reply this node signed for request origin/reqNo, while it keeps it (the last 1024). */
  pbftReply(origin: NodeId, reqNo: number): PbftReply | undefined {
    return this.signedReplies.get(`${origin}/${reqNo}`);
  }

  /** Ready.checkpoint: hand the engine the state machine's snapshot at c, and store it. */
  private pbftCheckpoint(c: Index): void {
    const eng = this.eng!;
    if (this.kv.appliedIndex !== c) {
      this.log('error', 'pbft checkpoint skipped', { node: this.id, checkpoint: c, applied: this.kv.appliedIndex });
      return;
    }
    const tally = this.pbftTally;
    const data = encodePbftState(this.kv.snapshot(), this.clientTable, tally && !tally.empty ? tally.encode() : undefined, this.pbftTime?.encode());
    const r = eng.compact(c, data);
    if (!r.ok) {
      this.log('warn', 'pbft checkpoint refused', { node: this.id, checkpoint: c, reason: r.reason });
      return;
    }
    this.snapIndex = c;
    this.logBytesSinceSnap = 0;
    this.opts.observer?.checkpointed?.(this, c);
    this.dlog!.persist({ snapshot: pbftSnapshotRecord({ meta: r.meta, data }) }, (err) => {
      if (this.stateValue !== 'running') return;
      if (err) return this.fatal(err);
      this.opts.observer?.snapshotTaken?.(this, c);
    });
  }

  /** Serves the reads, and answers the held forwarded writes, that the applied index now covers. */
  private serveReads(): void {
    if (this.held.length > 0) this.releaseHeld(false);
    if (this.pendingReads.size === 0) return;
    this.servedUpTo = this.kv.appliedIndex;
    const ready = this.pendingReads.takeWhere(this.isServable);
    for (let i = 0; i < ready.length; i++) {
      const p = ready[i]![1];
      p.cb(this.localGet(p.key));
    }
  }

  /**
   * Whether a snapshot is due. A snapshot writes the whole state machine (up to the
   * quota, 16 MiB by default) and is taken synchronously, so its cost grows with the
   * state, while the log it lets go grows with the writes. Counting entries alone
   * (every snapshotEntries) made a node with 15 MB of state rewrite 15 MB every 1000
   * small writes: 15 KB written per write (SD-card wear) and a stall of the event loop
   * and of the log's fsyncs each time — ~150 ms on a 2-core x86 (the snapshot's
   * encoding and copies, then its write and fsync before the next WAL flush), several
   * times that on a Pi, every node at about the same index. So a snapshot waits, past
   * snapshotEntries, until the entries since the last one hold at least half the
   * state's bytes: the snapshots then cost at most about twice the bytes of the log
   * itself (the amortization of log-structured stores; Redis rewrites its append-only
   * file by the same rule). With a small state nothing changes (1000 small entries
   * outweigh it). The log kept between snapshots then holds up to about half the state's
   * bytes (or snapshotEntries entries, whichever is more), and never more than
   * SNAPSHOT_MAX_FACTOR × snapshotEntries entries, which also bounds what a restart
   * replays.
   */
  private snapshotDue(): boolean {
    const n = this.kv.appliedIndex - this.snapIndex;
    if (n < this.snapshotEntries) return false;
    if (n >= this.snapshotEntries * SNAPSHOT_MAX_FACTOR) return true;
    return this.logBytesSinceSnap * 2 >= this.kv.usedBytes;
  }

  private maybeCompact(): void {
    const eng = this.eng!;
    const applied = this.kv.appliedIndex;
    if (!this.snapshotDue() || eng.status().appliedIndex !== applied) return;
    const st = eng.status();
    // A witness, or a former witness still without the data, keeps an empty snapshot.
    const data = st.isWitness || st.dataMissing ? new Uint8Array(0) : this.kv.snapshot();
    const r = eng.compact(applied, data);
    if (!r.ok) {
      this.log('warn', 'compaction refused', { node: this.id, reason: r.reason });
      return;
    }
    this.snapIndex = r.meta.index;
    this.logBytesSinceSnap = 0;
    // compaction: our own applied prefix; the log after it stays (a Paxos snapshot's term is
    // the slot's origin, not the write stamp the log holds there: hal/storage/durable-log.ts).
    this.dlog!.persist({ snapshot: { index: r.meta.index, term: r.meta.term, config: r.meta.config, data }, compaction: true }, (err) => {
      if (this.stateValue !== 'running') return;
      if (err) return this.fatal(err);
      this.log('debug', 'snapshot taken', { node: this.id, index: r.meta.index });
      this.opts.observer?.snapshotTaken?.(this, r.meta.index);
    });
  }

  // ---------------------------------------------------------------------------
  // Wire

  private send(m: Message): void {
    const byz = this.opts.byzantine;
    if (byz && m.type !== MsgType.ClientRequest && m.type !== MsgType.ClientReply) {
      for (const x of byz.outgoing([m])) this.wire!.send(x);
      return;
    }
    if (this.fencing) {
      // Heartbeat rounds of the own lease (engine option heartbeatRounds).
      if (m.type === MsgType.Heartbeat) this.fencing.roundSent(m.term, m.ctx);
      else if (m.type === MsgType.ZabPing && m.ctx !== undefined) this.fencing.roundSent(m.term, m.ctx);
    }
    if (this.opts.trace) traceMessage(this.opts.trace, m, 'send');
    this.wire!.send(m);
  }

  /**
   * What an engine message tells the activation gate: its sender follows the leadership
   * of `m.term` (so it does not lead an earlier one), and which heartbeat round it
   * answers. Only messages a node sends while it follows that leadership: Paxos
   * heartbeat replies and positive Accepted (a Promise does not count: a pre-prepare
   * answer promises nothing and changes no state); ZAB ACK, ACK of NEWLEADER, PONG and
   * snapshot ACK (FLE notifications carry votes, not the sender's allegiance).
   */
  private noteAcknowledgement(m: Message): void {
    const f = this.fencing!;
    const acks = this.eng!.acknowledges;
    if (acks !== undefined) {
      // The engine's own rule (Raft: any of its messages in a term).
      if (acks.call(this.eng, m)) f.acknowledged(m.from, m.term, m.type === MsgType.HeartbeatReply ? m.ctx : undefined);
      return;
    }
    switch (m.type) {
      case MsgType.HeartbeatReply:
        return f.acknowledged(m.from, m.term, m.ctx);
      case MsgType.PaxosAccepted:
        if (m.ok) f.acknowledged(m.from, m.term, undefined);
        return;
      case MsgType.ZabPong:
        return f.acknowledged(m.from, m.term, m.ctx);
      case MsgType.ZabAck:
      case MsgType.ZabAckNewLeader:
      case MsgType.ZabSnapAck:
        return f.acknowledged(m.from, m.term, undefined);
      default:
    }
  }

  private onMessage(m: Message): void {
    this.syncTicks();
    if (!this.memberIds.has(m.from)) return this.notMember(m.from);
    if (this.opts.trace) traceMessage(this.opts.trace, m, 'recv');
    if (m.type === MsgType.ClientRequest) this.onClientRequest(m);
    else if (m.type === MsgType.ClientReply) this.onClientReply(m);
    else {
      const eng = this.eng!;
      // A type of another engine: a member configured with another `engine:` (dropped
      // here, before the fencing bookkeeping, counted and said; the engines also drop
      // types not their own).
      // (A Heartbeat, which Raft and Paxos share, at a ZAB node is one too: a Raft leader's
      // heartbeats may be all such a node ever gets of it.)
      if (!typeBelongsTo(m.type, eng.name)) return this.otherEngine(m.from, engineOfType(m.type) ?? 'raft or paxos');
      if (this.fencing) {
        this.fencing.peerSeen(m.from);
        this.noteAcknowledgement(m);
      }
      this.pbftFencingHost?.heard(m.from, this.opts.clock.monotonicMs());
      this.opts.observer?.received?.(this, m);
      this.electionFencing?.heard(m);
      this.opts.byzantine?.receive(m);
      if (eng.isCampaignRequest?.(m)) this.campaignSeen.set(m.from, this.opts.clock.monotonicMs());
      if (m.type === MsgType.ReadIndex) this.checkTickLag(this.opts.clock.monotonicMs());
      // Caught inline: the input's name is built only when the engine throws (this runs per message).
      try {
        eng.step(m);
      } catch (e) {
        this.engineFailed(e, `step ${MsgType[m.type] ?? m.type} from n${m.from}`);
      }
      if (this.stateValue !== 'running') return;
      this.afterStep();
    }
    this.pump();
  }

  /**
   * A message of `kind` from `from`, while this node runs another engine: every member
   * must run the same one (a ZAB node stopped on a Raft peer's PreVote before). Counted
   * as dropped frames (reason other-engine); said at warn once a minute per peer, since
   * the cluster cannot elect while it lasts and nothing else would say why.
   */
  private otherEngine(from: NodeId, kind: string): void {
    this.otherEngineDrops++;
    if (!this.sayOncePerMinute(from)) return;
    this.log('warn', `n${from} sends ${kind} messages, but this node runs ${this.eng!.name}: every member needs the same \`engine:\` in its configuration; its messages are dropped`, { node: this.id, peer: from, peerEngine: kind });
  }

  /**
   * A message from a node this node's members do not include: its `members:` list differs
   * from this one's (every node's must be the same: quorumd has no membership change, and
   * two lists make two ideas of a majority — a node of one could lead with a majority of
   * its own list that a leader of the other never meets). Raft acted on such a node's
   * higher term (stepped down for it) and answered its vote requests. Dropped, counted
   * (reason not-member) and said once a minute per sender; the nodes listed in both see
   * nothing wrong, so this is where the difference shows.
   */
  private notMember(from: NodeId): void {
    this.notMemberDrops++;
    if (!this.sayOncePerMinute(from)) return;
    this.log('warn', `n${from} is not among this node's members (${[...this.memberIds].sort((a, b) => a - b).map((i) => `n${i}`).join(', ')}) but sends to it: every node's \`members:\` must be the same list; its messages are dropped`, { node: this.id, peer: from });
  }

  /** True at most once a minute per peer (the warnings of otherEngine and notMember). */
  private sayOncePerMinute(peer: NodeId): boolean {
    const now = this.opts.clock.monotonicMs();
    const last = this.warnedAt.get(peer);
    if (last !== undefined && now - last < 60_000) return false;
    this.warnedAt.set(peer, now);
    return true;
  }

  private onLinkEvent(link: Link, ev: LinkEvent): void {
    this.syncTicks();
    if (ev.kind === 'session-lost' || ev.kind === 'down') {
      // Peers may hear our will now and forget us as leader: earlier heartbeat rounds
      // hold no lease any more (src/raft/raft.ts leaderGone has the argument).
      this.eng!.dropLease?.();
    }
    // A peer's orderly goodbye (peer-goodbye: it stopped, after its runtime had stopped
    // acting) is the same hint as its will (docs/mqtt.md, "The goodbye"): a leader whose
    // hand-over did not finish is replaced at once instead of after an election timeout.
    if (ev.kind !== 'peer-gone' && ev.kind !== 'peer-goodbye') {
      WireEndpoint.logLinkEvent(this.log, this.id, link, ev);
      // A direct connection to a peer ended: a will held for it may count now.
      if (ev.kind === 'session-lost' && ev.peer !== undefined) this.releaseHeldWill(ev.peer);
      return;
    }
    if (ev.peer === this.id) return;
    // With another link that still reaches the peer, this broker losing it says nothing
    // yet: the will is held until no other link reaches it (a TCP connection closing,
    // as when the peer's process was killed: its kernel closes every socket at once).
    const how = ev.kind === 'peer-goodbye' ? 'goodbye' : 'will';
    if (this.otherPath(link, ev.peer)) {
      this.heldWills.set(ev.peer, { link, how });
      this.log('info', `${how} held: another link still reaches the peer`, { node: this.id, link: link.name, peer: ev.peer });
      return;
    }
    this.heldWills.delete(ev.peer);
    this.peerGone(link, ev.peer, how);
  }

  /**
   * Wills (peer-gone) that came while another link still reached the peer, by peer: the
   * link they came on. Released by releaseHeldWill.
   */
  private readonly heldWills = new Map<NodeId, { link: Link; how: 'will' | 'goodbye' }>();

  /**
   * Whether a link other than `link` reaches `peer` now: by its own word where it can
   * tell (Link.reaches: TCP knows its connections), else by what it carries (a serial
   * wire reaches its peer, a bus or a broker every node).
   */
  private otherPath(link: Link, peer: NodeId): boolean {
    return this.opts.links.some((l) => {
      if (l === link) return false;
      if (typeof l.reaches === 'function') return l.reaches(peer);
      const p = (l as { peer?: unknown }).peer;
      return typeof p !== 'number' || p === peer;
    });
  }

  /**
   * A will held for `peer` counts once no link reaches the peer. The link it came on
   * must still say the peer is away: a peer back online there since (whose newer
   * heartbeats we may have acknowledged through that broker) makes the old will void.
   * A will link that cannot tell (no `reaches`) keeps it held: the election timeout
   * decides, as without wills.
   */
  private releaseHeldWill(peer: NodeId): void {
    const held = this.heldWills.get(peer);
    if (held === undefined) return;
    const link = held.link;
    if (this.stateValue !== 'running' || typeof link.reaches !== 'function') return;
    if (link.reaches(peer)) {
      this.heldWills.delete(peer);
      return;
    }
    if (this.otherPath(link, peer)) return;
    this.heldWills.delete(peer);
    this.peerGone(link, peer, held.how);
  }

  /**
   * When a campaign of another node than `gone` was last seen. The dead leader's own
   * campaign (the one that elected it, maybe a moment before it died) is not waited for:
   * deferring to it held the first survivor back for a whole campaign window.
   */
  private campaignSeenAt(gone: NodeId): number {
    let at = -Infinity;
    for (const [from, t] of this.campaignSeen) if (from !== gone && t > at) at = t;
    return at;
  }

  /** A will (or goodbye) that counts: forget `peer` if it leads, and campaign in id order (below). */
  private peerGone(link: Link, peer: NodeId, how: 'will' | 'goodbye'): void {
    const ev = { peer };
    const eng = this.eng!;
    const st = eng.status();
    this.log('info', 'peer gone', { node: this.id, link: link.name, peer: ev.peer, leader: st.leader, how });
    for (const [, f] of this.forwarded.takeWhere((_, f) => f.to === ev.peer)) {
      f.reply(unknownOutcome(`node ${ev.peer}, the leader this write was forwarded to, is gone (${how === 'will' ? 'its connection died' : 'it stopped'}); the write may or may not be applied`));
    }
    if (ev.peer !== st.leader) return;
    // The leader's connection died (MQTT Last Will): forget it, then the survivors
    // campaign in id order, the k-th after k × stagger if no leader is known by then
    // (all at once would duel; the engines' own timeouts remain the fallback).
    const r = eng.leaderGone(ev.peer);
    this.afterStep();
    if (r.ok && r.forgot) {
      const survivors = st.config.voters.filter((v) => v !== ev.peer).sort((a, b) => a - b);
      const rank = survivors.indexOf(this.id);
      // Attempts at rank × stagger, then every survivors × stagger until one minimum
      // election timeout passed (as node.ts): a campaign that a peer ignored because its
      // own copy of the will had not arrived yet (it was still sticky to the old leader)
      // is tried again instead of waiting out a whole election timeout.
      const period = survivors.length * this.staggerMs;
      const electionMinMs = typeof this.opts.engineOptions?.electionTimeoutMinMs === 'number' ? this.opts.engineOptions.electionTimeoutMinMs : 150;
      let left = period > 0 ? Math.ceil(electionMinMs / period) + 1 : 1;
      const campaignWindowMs = Math.max(this.staggerMs, electionMinMs / 4);
      let campaignedAt = -Infinity;
      const campaignNow = () => {
        campaignedAt = this.opts.clock.monotonicMs();
        this.guarded(() => eng.campaign(), 'campaign');
        this.afterStep();
        this.pump();
      };
      const go = () => {
        if (this.stateValue !== 'running' || this.eng !== eng) return;
        // Quiet ticks due by now first: the engine decides on the state it would have.
        this.syncTicks();
        // Someone is campaigning already (we are, or we promised a newer term/ballot since
        // the will): let it finish instead of dueling with it, as node.ts does. A Raft
        // pre-candidate has taken no term and promised nothing: it tries again, since its
        // pre-vote may have been dropped by a peer still sticky to the old leader (its
        // own copy of the will came later) — with 2 boards + a witness there is no other
        // survivor to try.
        const now = eng.status();
        if (now.role === 'leader' || now.leader !== NO_NODE) return;
        if (now.role === 'candidate' && now.detail !== 'pre-candidate') {
          if (this.engineName !== 'raft') return;
          // Our vote round is running. If it is still undecided a campaign window after we
          // started it, the vote was split (another survivor campaigned at the same term,
          // each voting for itself): the lowest survivor starts over at the next term — the
          // other candidate grants it, as its log is no newer — instead of all of them
          // waiting out an election timeout. Only rank 0 does, so that no new duel starts;
          // and only under Raft, where a candidate's vote round is what this reasons about
          // (a bully or Paxos candidate restarted mid-round would only start over: the
          // other engines stop here, as before).
          if (rank === 0 && now.term > st.term && this.opts.clock.monotonicMs() - campaignedAt >= campaignWindowMs) {
            campaignNow();
          }
          if (--left > 0) this.opts.clock.setTimer(period, go);
          return;
        }
        if (now.term !== st.term) return;
        // Someone else is campaigning right now (we just granted it, or refused it only
        // because we still followed the dead leader): let it finish instead of splitting
        // the vote; try again one period later if it fails. Not a candidate whose log is
        // behind ours (the engine does not count that as a campaign: our vote cannot make
        // it win, and it retries as long as we wait), nor the dead leader's own campaign.
        // "Right now" lasts as long as a campaign may take: a pre-vote round, a vote round
        // and the voters' fsync of their vote. One stagger was too short on a loaded
        // machine: a survivor that had refused the first survivor's pre-vote (its own copy
        // of the will not there yet) campaigned 30 ms later, the first one retried, each
        // granted the other's pre-vote, and the two split the vote at the same term — a
        // 2–3 s failover (the election timeout). A quarter of the minimum election
        // timeout keeps the hint path far ahead of that.
        if (this.opts.clock.monotonicMs() - this.campaignSeenAt(ev.peer) >= campaignWindowMs) {
          campaignNow();
        }
        if (--left > 0) this.opts.clock.setTimer(period, go);
      };
      if (rank === 0) go();
      else if (rank > 0) this.opts.clock.setTimer(rank * this.staggerMs, go);
    }
    this.pump();
  }

  // ---------------------------------------------------------------------------
  // Client API

  /** `pbftClient` (engine pbft): the client's id and request number, so that a retry on another node does not execute twice (pbft-clients.ts). */
  put(key: string, value: Uint8Array, opts: { cas?: number; pbftClient?: ClientRef }, cb: ClientCallback): void {
    const cmd: Command = { op: 'put', key, value };
    if (opts?.cas !== undefined) cmd.cas = opts.cas;
    if (opts?.pbftClient && this.pbftAuth) return this.pbftClientRequest(cmd, opts.pbftClient, cb);
    this.write(cmd, cb);
  }

  del(key: string, opts: { cas?: number; pbftClient?: ClientRef }, cb: ClientCallback): void {
    const cmd: Command = { op: 'del', key };
    if (opts?.cas !== undefined) cmd.cas = opts.cas;
    if (opts?.pbftClient && this.pbftAuth) return this.pbftClientRequest(cmd, opts.pbftClient, cb);
    this.write(cmd, cb);
  }

  /** Locks (src/kv/lease.ts): only the lease id's digest goes into the command. */
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    const refused = this.electionOnlyRefusal('lock acquire');
    if (refused) return cb(refused);
    const l = leaseArg(lease);
    if (typeof l === 'string') return cb({ status: Status.BAD_REQUEST, error: l });
    this.write({ op: 'lock.acquire', name, owner, ttlMs, now: 0, lease: l }, cb);
  }

  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    const refused = this.electionOnlyRefusal('lock renew');
    if (refused) return cb(refused);
    const l = leaseArg(lease);
    if (typeof l === 'string') return cb({ status: Status.BAD_REQUEST, error: l });
    this.write({ op: 'lock.renew', name, lease: l, now: 0 }, cb);
  }

  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    const refused = this.electionOnlyRefusal('lock release');
    if (refused) return cb(refused);
    const l = leaseArg(lease);
    if (typeof l === 'string') return cb({ status: Status.BAD_REQUEST, error: l });
    this.write({ op: 'lock.release', name, lease: l }, cb);
  }

  /**
   * Linearizable by default (readIndex → ReadState); `stale: true` reads this node's state as is.
   * Engine pbft with `pbftClient`: an ordered read that every replica executes and signs (pbft-clients.ts).
   */
  get(key: string, opts: { stale?: boolean; pbftClient?: ClientRef }, cb: ClientCallback): void {
    if (typeof cb !== 'function') throw new TypeError('EngineRuntime.get: cb must be a function');
    const refused = this.electionOnlyRefusal('kv get');
    if (refused) return cb(refused);
    const bad = checkKey(key);
    if (bad) return cb(bad);
    if (this.stateValue !== 'running') return cb(notRunning(this.id, this.stateValue));
    const eng = this.eng!;
    const st = eng.status();
    if (st.isWitness) return cb(unavailable(`node ${this.id} is a witness and holds no data; ask a data node`));
    if (st.dataMissing) return cb(unavailable(`node ${this.id} is a former witness waiting for a snapshot with the data (docs/fencing.md); ask another node`));
    if (this.pbftAuth) {
      if (opts?.pbftClient) return this.pbftClientRequest(key, opts.pbftClient, cb);
      const f = this.pbftF();
      const inner = cb;
      cb = (res) => inner({ ...res, pbftF: f });
    }
    if (opts?.stale) return cb(this.localGet(key));
    const ctx = this.nextId();
    this.checkTickLag(this.opts.clock.monotonicMs());
    const r = this.guarded(() => eng.readIndex(ctx), 'readIndex');
    this.afterStep();
    if (!r.ok) return cb(unavailable(`read not possible: ${r.reason}`));
    this.pendingReads.set(ctx, { key, cb, deadline: this.opts.clock.monotonicMs() + this.timeoutMs });
    this.recheckQuiet(); // a client waits now: its timeout needs the tick (quietTicksAt)
    this.pump();
  }

  campaign(): Result<{ term: Term }> {
    if (this.stateValue !== 'running') return { ok: false, code: 'no-leader', reason: `node ${this.id} is not running` };
    this.syncTicks();
    const r = this.eng!.campaign();
    this.afterStep();
    this.pump();
    return r;
  }

  transferLeadership(to: NodeId): Result<{ term: Term }> {
    if (this.stateValue !== 'running') return { ok: false, code: 'not-leader', reason: `node ${this.id} is not running` };
    this.syncTicks();
    const r = this.eng!.transferLeadership(to);
    this.afterStep();
    this.pump();
    return r;
  }

  /**
   * Operator: `quorumd fence NODE` — fence `node` now through this board's configured
   * devices (leader-fencing.ts). Errors when this node has no fencing or no device for it.
   */
  fence(node: NodeId, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
    if (typeof cb !== 'function') throw new TypeError('EngineRuntime.fence: cb must be a function');
    if (this.electionFencing) return this.electionFencing.fence(node, cb);
    if (this.pbftAuth) return cb({ ok: false, error: PBFT_NO_OPERATOR_FENCE });
    operatorFence(this.fencing, { id: this.id, running: this.stateValue === 'running' }, node, cb);
  }

  /** Operator: `quorumd fence confirm NODE` — a human declares `node` safely down (leader-fencing.ts). */
  confirmFenced(node: NodeId): ConfirmResult {
    if (this.electionFencing) return this.electionFencing.confirmFenced(node);
    if (this.pbftAuth) return { ok: false, error: PBFT_NO_OPERATOR_FENCE };
    return operatorConfirm(this.fencing, { id: this.id, running: this.stateValue === 'running' }, node, () => this.activationStatus());
  }

  /**
   * Scheduled jobs (daemon/jobs): claims `slot` of `job` for
   * this node's leadership of term `lead.term` (the engine's ballot or epoch) whose
   * fencing token the caller saw. Proposed only here and only by an active leader.
   */
  jobClaim(job: string, slot: number, lead: { term: number; token: number }, cb: ClientCallback): void {
    this.write({ op: 'job.claim', job, slot, node: this.id, term: lead.term, token: lead.token }, cb);
  }

  /**
   * Operator: `quorumd jobs reset NAME` — withdraws the job's latest claim if its slot is
   * after the active leader's wall clock (src/kv/commands.ts job.reset). Any node; a
   * follower forwards it like a put. The leader stamps `now` (its own wall clock, the
   * clock its scheduler claims the next slots by), its term and its id when it proposes,
   * and proposes only while active, as for a job claim. 200 with `index` (the reset's log
   * index: the record's `reset` then tells what was withdrawn), 409 with the reason.
   */
  jobReset(job: string, cb: ClientCallback): void {
    this.write({ op: 'job.reset', job, now: 0, node: this.id, term: 1 }, cb);
  }

  /** Records how the run of a claimed slot ended (any node; forwarded to the leader like a put). */
  jobDone(r: { job: string; slot: number; outcome: JobOutcomeName; code: number; signal: string; startedAtMs: number; durationMs: number }, cb: ClientCallback): void {
    this.write({ op: 'job.done', job: r.job, slot: r.slot, node: this.id, outcome: r.outcome, code: r.code, signal: r.signal, startedAtMs: r.startedAtMs, durationMs: r.durationMs }, cb);
  }

  /** Builds the shared split-brain defenses with this runtime as their host (after the engine is up). */
  private setupFencing(): void {
    const f = this.opts.fencing;
    if (isElectionOnly(this.engineName)) return this.setupElectionFencing();
    if (this.pbftAuth) {
      if (this.opts.pbftFencing) this.setupPbftFencing(this.opts.pbftFencing);
      return;
    }
    if (!f) return;
    const eo = this.opts.engineOptions ?? {};
    // The own lease defaults to the engine's failure-detection time: Paxos's minimum
    // election timeout (check-quorum), ZAB's syncLimit (a leader without a quorum
    // within it gives up); both default to 150 ms, as Raft's.
    const lease = this.engineName === 'zab' ? eo.syncLimitMs : eo.electionTimeoutMinMs;
    this.fencing = new LeaderFencing({
      who: 'EngineRuntime',
      id: this.id,
      clock: this.opts.clock,
      log: this.log,
      rng: this.opts.rng,
      tickMs: this.tickMs,
      electionTimeoutMinMs: typeof lease === 'number' ? lease : 150,
      formedBefore: this.formed,
      running: () => this.stateValue === 'running',
      stopped: () => this.stateValue === 'stopped',
      isLeader: () => this.isLeader,
      leaderId: () => {
        // Asked after every step of a follower: the engine's cheap getter where it has one.
        const e = this.eng;
        return e === undefined ? NO_NODE : (e.currentLeader ?? e.status().leader);
      },
      term: () => this.eng?.status().term ?? 0,
      voters: () => {
        const c = this.eng!.status().config;
        return [...c.voters, ...c.witnesses];
      },
      // Paxos's start slot and ZAB's epoch-start index are issued when the leadership's
      // first entry commits (src/engine/contract.ts leaderToken): read at the claim.
      tokenAtElection: () => 0,
      leaderToken: () => this.eng?.leaderToken() ?? 0,
      kv: () => this.kv,
      propose: (data) => {
        const eng = this.eng!;
        const r = this.guarded(() => eng.propose(data), 'propose');
        if (r.ok) this.opts.observer?.proposed?.(this, r.index, r.term, data);
        return r.ok;
      },
      submit: (cmd) => this.proposeOrForward(cmd, () => {}, true),
      pump: () => this.pump(),
      persistFormed: (done) => {
        this.formed = true;
        this.dlog!.persist({ meta: this.metaBytes(this.bootCounter, true) }, done);
      },
      crash: (where, e) => this.engineFailed(e, where),
      fatal: (err) => this.fatal(err),
      heardAgoMs: (node) => this.wire?.heardAgoMs(node, this.opts.clock.monotonicMs()),
      fenced: (rec) => this.opts.observer?.fenced?.(this, rec),
      activationChanged: (ev) => {
        this.opts.observer?.activation?.(this, ev);
        this.activationListeners.emit(ev);
      },
    }, f);
  }

  /** An election-only engine's activation rules (bully-fencing.ts); mode 'off' without the `fencing` option. */
  private setupElectionFencing(): void {
    this.electionFencing = new BullyFencing({
      who: 'EngineRuntime',
      id: this.id,
      clock: this.opts.clock,
      log: this.log,
      rng: this.opts.rng,
      tickMs: this.tickMs,
      running: () => this.stateValue === 'running',
      stopped: () => this.stateValue === 'stopped',
      engine: () => (this.eng instanceof BullyEngine ? this.eng : undefined),
      send: (m) => this.send(m),
      heardAgoMs: (node) => this.wire?.heardAgoMs(node, this.opts.clock.monotonicMs()),
      crash: (where, e) => this.fatal(new InternalError(where, e)),
      activationChanged: (ev) => {
        this.opts.observer?.activation?.(this, ev);
        this.activationListeners.emit(ev);
      },
      fenced: (rec) => this.opts.observer?.fenced?.(this, rec),
    }, this.opts.fencing);
    this.electionFencing.booted(this.eng!.status().term);
  }

  /** Election-only engines (bully) have no replicated state: a definite 501, nothing was applied. */
  private electionOnlyRefusal(what: string): ClientResult | undefined {
    if (!isElectionOnly(this.engineName)) return undefined;
    return { status: ENGINE_UNSUPPORTED, error: `${what}: the ${this.engineName} engine has no replicated log: KV and locks need another engine (engine: raft, paxos, zab, pbft, etcd or zookeeper)` };
  }

  private localGet(key: string): ClientResult {
    const e = this.kv.get(key);
    if (!e) return { status: Status.NOT_FOUND, index: 0, error: `key ${JSON.stringify(key)} not found` };
    return { status: Status.OK, value: e.value, index: e.modIndex };
  }

  private write(cmd: Command, cb: ClientCallback): void {
    if (typeof cb !== 'function') throw new TypeError(`EngineRuntime.${cmd.op}: cb must be a function`);
    const refused = this.electionOnlyRefusal(OP_NAMES[cmd.op] ?? cmd.op);
    if (refused) return cb(refused);
    const enc = encodeCommand(cmd);
    if (enc instanceof KvError) return cb({ status: enc.httpStatus, error: enc.message });
    if (this.stateValue !== 'running') return cb(notRunning(this.id, this.stateValue));
    this.proposeOrForward(cmd, cb, true, enc);
    this.pumpSoon();
  }

  /**
   * The pump after a client write. Where the clock can defer (hal Clock.soon: a real
   * board), one pump runs after every request read in this event-loop turn, so that
   * their entries leave in one Append per follower and one Ready (one fsync), instead of
   * an Append per request: under 64 writers the leader sent 3.6 Appends per follower per
   * Ready, each one a frame, a broker publish and an ack. The proposal itself is made
   * at once (the entry has its index); only the sending waits, for microseconds.
   * Without `soon` (the simulator) it pumps at once, as before.
   */
  private pumpSoon(): void {
    const soon = this.opts.clock.soon;
    if (!soon) return this.pump();
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    soon.call(this.opts.clock, this.queuedPump);
  }
  private pumpQueued = false;
  private readonly queuedPump = (): void => {
    this.pumpQueued = false;
    // An entry point of its own (a setImmediate): a throw takes the fatal path.
    try {
      this.pump();
    } catch (e) {
      this.fatal(new InternalError('pump after client writes', e));
    }
  };

  /**
   * Proposes on the leader; a follower forwards requests of its own clients (a forwarded
   * request is never forwarded again). `encoded`: encodeCommand(cmd) when the caller has
   * it already (a put is encoded once per write, not twice).
   */
  private proposeOrForward(cmd: Command, reply: ClientCallback, local: boolean, encoded?: Uint8Array): void {
    this.syncTicks();
    const eng = this.eng!;
    if (this.pbftAuth) return this.pbftPropose(cmd, reply, local);
    if (eng.isLeader) {
      if (cmd.op === 'lock.acquire' || cmd.op === 'lock.renew') {
        if (!this.active) return reply(unavailable(`leader ${this.id} is not active yet (${this.activationStatus().waitingFor}); the lock command was not proposed`));
        cmd = { ...cmd, now: this.lockNow() };
        encoded = undefined;
      }
      if ((cmd.op === 'lock.renew' || cmd.op === 'lock.release') && cmd.lease && this.judgesLocksLocally()) {
        const verdict = this.kv.lockCheck(cmd.name, cmd.lease, this.lockNow());
        if (verdict !== 'ok') {
          this.lockRefusals++;
          return reply({ status: Status.CONFLICT, error: `${cmd.op === 'lock.renew' ? 'renew' : 'release'} refused: ${verdict === 'not-held' ? `lock ${JSON.stringify(cmd.name)} is not held` : 'not the holder (wrong lease)'}` });
        }
      }
      if (cmd.op === 'job.claim') {
        // A slot is claimed only by an active leader, in the term it saw itself active in.
        if (!this.active) return reply(unavailable(`leader ${this.id} is not active (${this.activationStatus().waitingFor || 'not active'}); the job claim was not proposed`));
        const term = eng.status().term;
        if (term !== cmd.term) return reply(unavailable(`term changed (now ${term}, claim for ${cmd.term}); the job claim was not proposed`));
      }
      if (cmd.op === 'job.reset') {
        // Judged against the clock that claims the next slots: this active leader's wall clock.
        if (!this.active) return reply(unavailable(`leader ${this.id} is not active (${this.activationStatus().waitingFor || 'not active'}); the job reset was not proposed`));
        cmd = { ...cmd, now: Math.max(0, Math.floor(this.opts.clock.wallMs())), node: this.id, term: eng.status().term };
        encoded = undefined;
      }
      const data = encoded ?? encodeCommand(cmd);
      if (data instanceof KvError) return reply({ status: data.httpStatus, error: data.message });
      const growth = quotaGrowth(this.kv, cmd);
      const over = growth.keys > 0 || growth.bytes > 0 ? checkQuota(this.quota, this.kv.usage(), this.pendingUse, growth) : null;
      if (over) {
        this.quotaRefusals++;
        return reply({ status: over.httpStatus, error: over.message });
      }
      const r: Result = this.guarded(() => eng.propose(data), 'propose');
      this.afterStep();
      if (!r.ok) return reply(proposeRefused(r));
      this.opts.observer?.proposed?.(this, r.index, r.term, data);
      this.opts.trace?.mark('propose', r.index);
      if (growth.keys > 0 || growth.bytes > 0) {
        this.pendingGrowth.set(r.index, growth);
        this.pendingUse = { keys: this.pendingUse.keys + growth.keys, bytes: this.pendingUse.bytes + growth.bytes };
      }
      // An earlier proposal of ours at this index (an earlier leadership's, replaced in
      // this log) is not settled by this one: a later leader could still choose it.
      const prev = this.pendingWrites.get(r.index);
      if (prev) prev.reply(unknownOutcome(`the write proposed at index ${r.index} in term ${prev.term} was replaced in this node's log; it may or may not be applied`));
      this.pendingWrites.set(r.index, { term: r.term, reply, deadline: this.opts.clock.monotonicMs() + this.timeoutMs });
      this.recheckQuiet(); // a client waits now: its timeout needs the tick (quietTicksAt)
      return;
    }
    const leader = eng.status().leader;
    // A slot is claimed by the leader that saw itself active, never on its behalf by another (as node.ts).
    if (cmd.op === 'job.claim') return reply(unavailable(`node ${this.id} is not the leader; a job claim is never forwarded`));
    if (!local) return reply(unavailable(`node ${this.id} is not the leader (leader: ${leader || 'unknown'}); not proposed`));
    if (leader === NO_NODE || leader === this.id) return reply(unavailable('no leader known; not proposed'));
    const data = encoded ?? encodeCommand(cmd);
    if (data instanceof KvError) return reply({ status: data.httpStatus, error: data.message });
    const reqId = this.nextId();
    this.forwarded.set(reqId, { reply, deadline: this.opts.clock.monotonicMs() + this.timeoutMs, to: leader });
    this.recheckQuiet(); // a client waits now: its timeout needs the tick (quietTicksAt)
    const m: ClientRequest = { type: MsgType.ClientRequest, from: this.id, to: leader, term: eng.status().term, reqId, body: data };
    this.send(m);
  }

  /** As node.ts: only a leader whose applied state holds everything committed refuses a lock command without proposing it. */
  private judgesLocksLocally(): boolean {
    if (!this.active) return false;
    const s = this.eng!.status();
    return this.kv.appliedIndex >= s.commitIndex;
  }

  private onClientRequest(m: ClientRequest): void {
    const answer = this.replyTo(m);
    const cmd = decodeCommand(m.body);
    if (cmd instanceof KvError) return answer({ status: cmd.httpStatus, error: `forwarded command: ${cmd.message}` });
    this.proposeOrForward(cmd, answer, false);
  }

  /**
   * The callback that answers a forwarded request. Returned unnamed (not a `const f = …`
   * in onClientRequest): under tsx, which runs the simulator, esbuild's keepNames wraps
   * every named function value in an Object.defineProperty call, here once per forwarded request.
   */
  private replyTo(m: ClientRequest): ClientCallback {
    return (res: ClientResult) => {
      if (this.stateValue !== 'running') return;
      const eng = this.eng!;
      // The asking node answers its client once it has applied this (onClientReply):
      // it gets the commit now, ahead of this answer, not with the next heartbeat.
      const at = answerIndex(res);
      if (at > 0 && eng.notifyCommit) {
        eng.notifyCommit(m.from, at);
        this.sendEager();
      }
      const rep: ClientReply = { type: MsgType.ClientReply, from: this.id, to: m.from, term: eng.currentTerm ?? eng.status().term, reqId: m.reqId, status: res.status, body: encodeReplyBody(res) };
      this.send(rep);
    };
  }

  /** Sends what the engine lets go before anything is durable (the Ready loop's `eager`). */
  private sendEager(): void {
    const ms = this.eng!.takeEager?.();
    if (ms) for (let i = 0; i < ms.length; i++) this.send(ms[i]!);
  }

  private onClientReply(m: ClientReply): void {
    const f = this.forwarded.get(m.reqId);
    if (!f) return;
    this.forwarded.delete(m.reqId);
    const res = decodeReplyBody(m.status, m.body);
    if (res instanceof Error) {
      this.log('warn', 'bad ClientReply', { node: this.id, from: m.from, error: res.message });
      return f.reply(unknownOutcome(`the leader's answer was unreadable (${res.message}); the write may or may not be applied`));
    }
    // Read your writes here: the client's next read on this node — a local (stale) one
    // too — must see this write, so the answer waits until this node has applied it
    // (the leader sent us the commit just before its answer: notifyCommit). Most
    // answers find it applied already, or wait for the commit a moment behind.
    const at = answerIndex(res);
    if (at > this.kv.appliedIndex) {
      this.held.push({ res, reply: f.reply, deadline: f.deadline, at });
      return;
    }
    f.reply(res);
  }

  /**
   * Answers the held forwarded writes this node has applied; with `expired`, also those
   * past their request's deadline — answered as the leader did (the write was applied
   * by the cluster), only this node has not caught up yet (cut off from the leader, or
   * far behind): the one case where a read here right after may not see the write.
   */
  private releaseHeld(expired: boolean): void {
    const applied = this.kv.appliedIndex;
    const now = this.sweepNow;
    let out: HeldAnswer[] | undefined;
    let kept = 0;
    const held = this.held;
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!;
      if (h.at <= applied) (out ??= []).push(h);
      else if (expired && h.deadline <= now) {
        (out ??= []).push(h);
        this.answeredUnapplied++;
        this.log('warn', 'forwarded write answered before this node applied it', { node: this.id, index: h.at, applied });
      } else held[kept++] = h;
    }
    if (!out) return;
    held.length = kept;
    for (let i = 0; i < out.length; i++) out[i]!.reply(out[i]!.res);
  }

  private expire(): void {
    this.sweepNow = this.opts.clock.monotonicMs();
    const late = this.isLate;
    if (this.pendingWrites.size > 0) for (const [i, w] of this.pendingWrites.takeWhere(late)) {
      w.reply(unknownOutcome(`no outcome within ${this.timeoutMs} ms for the write proposed at index ${i}; it may or may not be applied`));
    }
    if (this.forwarded.size > 0) for (const [, f] of this.forwarded.takeWhere(late)) {
      f.reply(unknownOutcome(`no answer from the leader within ${this.timeoutMs} ms; the forwarded write may or may not be applied`));
    }
    if (this.held.length > 0) this.releaseHeld(true);
    if (this.pendingRefs.size > 0) for (const [ref, w] of this.pendingRefs.takeWhere(late)) {
      w.reply(unknownOutcome(`no outcome within ${this.timeoutMs} ms for request ${this.id}/${ref}; it may or may not be applied`));
    }
    if (this.pendingReads.size > 0) for (const [, r] of this.pendingReads.takeWhere(late)) {
      r.cb(unavailable(`the read was not confirmed within ${this.timeoutMs} ms`));
    }
  }

  /**
   * The time a lock command is stamped with on this leader, on the cluster's lock clock:
   * this leader's monotonic milliseconds since its election, counted on from the state
   * machine's clock as it stood then, and never below that clock.
   *
   * Each board's monotonic clock starts at its own process start (performance.now()), so
   * two boards' readings differ by their processes' ages (hours on a real fleet). The
   * offset takes that difference out, both ways: a new leader whose process is older than
   * the time line must not jump it forward — every lease would end early and a lock be
   * granted again while its holder still counts on its ttl (found on real processes: a
   * second grant 4.1 s into a 20 s lease after a failover to an older node) — and one
   * whose process is younger must stamp whole milliseconds (a fractional offset made
   * every acquire and renew a 400 until the leadership moved). The time from the newest
   * lock command to this election is not counted: a failover makes leases longer, never
   * shorter.
   */
  private lockNow(): number {
    return Math.max(this.kv.clockMs, Math.floor(this.opts.clock.monotonicMs()) + this.lockClockOffset);
  }

  /** Request ids and read contexts: 12 bits of this boot's id, 20 bits of counter (as node.ts). */
  private nextId(): number {
    this.ids = (this.ids + 1) & 0xfffff;
    if (this.ids === 0) this.ids = 1;
    return (((this.bootCounter & 0xfff) << 20) | this.ids) >>> 0 || 1;
  }
}
