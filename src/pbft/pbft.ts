/**
 * The PBFT engine: Practical Byzantine Fault Tolerance (Castro & Liskov, "Practical
 * Byzantine Fault Tolerance", OSDI 1999 — "paper"; "Practical Byzantine Fault
 * Tolerance and Proactive Recovery", ACM TOCS 20(4), 2002 — "TOCS") as a pure,
 * deterministic state machine behind the engine contract (src/engine/contract.ts):
 * tick/step/propose in, Ready out, advance. No timers, no I/O; signatures through the
 * injected PbftAuth (src/pbft/auth.ts).
 *
 * n = 3f + 1 replicas (more are allowed: f = ⌊(n−1)/3⌋, quorum q = ⌈(n+f+1)/2⌉, see
 * options.ts) agree on one sequence of requests although up to f of them are
 * Byzantine: they may lie, equivocate, forge what they can, replay and stay silent.
 *
 * ## Normal case (paper §4.2)
 * A request is signed by its *origin*, the replica whose client asked (propose() /
 * readIndex() on any node). It goes to the primary of the current view v
 * (members[v mod n]); retransmissions go to everyone, and a backup that gets one
 * relays it to the primary and starts its view-change timer.
 *   1. PRE-PREPARE(v, n, d) from the primary, with the request: sequence number n
 *      within the window (h, h + L] above the last stable checkpoint h.
 *   2. A backup accepts it if the primary signed it, n is in the window, the request's
 *      origin signed the request and d is its digest, and it accepted no other digest
 *      for (v, n). It makes the PRE-PREPARE durable and sends PREPARE(v, n, d).
 *   3. Prepared: the PRE-PREPARE and 2f PREPAREs from distinct backups matching it. The
 *      replica makes the prepared certificate durable and sends COMMIT(v, n, d).
 *   4. Committed-local: prepared and 2f + 1 matching COMMITs (its own included).
 *   5. Execute in sequence order: a request runs once per (origin, request number)
 *      (a per-origin duplicate filter, part of the checkpointed state); a null request
 *      or a duplicate executes as a no-op. `committed` hands the entries to the
 *      runtime, which applies them and answers its client (src/pbft/reply.ts: a client
 *      trusts a result only with f + 1 matching signed replies).
 * The primary of each view first proposes a null request: once executed its sequence
 * number is the primary's fencing token (leaderToken()).
 *
 * ## Why an honest replica never disagrees, even across a crash
 * What an honest replica said must survive its restart, or a restarted replica would
 * act as an equivocating one. Hence, through the Ready order (persist, then send):
 *   - the accepted PRE-PREPARE is durable before the PREPARE leaves, so after a
 *     restart it never prepares another digest for (v, n);
 *   - the prepared certificate is durable before the COMMIT leaves, so its later
 *     VIEW-CHANGEs still report it (the certificates the snapshot drops from the log
 *     travel in SnapshotMeta.engine);
 *   - the view is durable before the VIEW-CHANGE leaves, so it never goes back to an
 *     older view; own request numbers are reserved in blocks (HardState.vote) before a
 *     request leaves, so a restarted origin never reuses one;
 *   - a VIEW-CHANGE carries every certificate or is not sent: a replica restarted from
 *     a snapshot stored before its checkpoint became stable has an older proof than
 *     its certificates need, and waits for a newer one (sendViewChange());
 *   - a rewrite of durable records is an atomic Ready (see the end of this comment).
 *
 * ## View change (paper §4.4, with signatures; TOCS §4.5.2 for the doubling timer)
 * A backup whose known request does not execute within the timeout (doubling after
 * each view change that brings no new execution) complains (SUSPECT, see "Suspicion"
 * below: beyond the paper); once f + 1 other replicas complain, it sends VIEW-CHANGE(v+1, stable
 * checkpoint with its 2f + 1-signature proof, the highest-view prepared certificate of
 * every sequence number above it). It also joins the smallest higher view for which
 * f + 1 replicas sent a VIEW-CHANGE. The new primary, with 2f + 1 valid VIEW-CHANGEs
 * (its own included), computes O: for each n between min-s (the highest stable
 * checkpoint in them) and max-s (the highest certificate), a PRE-PREPARE of the digest
 * of the highest-view certificate for n, or of the null request if none; and sends
 * NEW-VIEW(v+1, the VIEW-CHANGEs by digest, O). Backups check every VIEW-CHANGE
 * (signatures of the certificates and proofs), recompute O and accept only an
 * identical one, then prepare O's requests in the new view.
 * Why a committed request survives: committed-local at an honest replica means 2f + 1
 * replicas prepared it, f + 1 of them honest; any 2f + 1 VIEW-CHANGEs include one of
 * those f + 1 (or a stable checkpoint covering n), and a certificate of a higher view
 * for n can only carry the same digest (by induction over views: O re-proposed it).
 * Once a replica holds 2f + 1 VIEW-CHANGEs for v it runs the NEW-VIEW timer; when that
 * expires without a valid NEW-VIEW(v) it complains about v as well (beyond the paper,
 * which sends VIEW-CHANGE(v+1) at once: "Suspicion" below), and moves on to v + 1 when
 * f + 1 other replicas complain or ask for a later view.
 * Beyond the paper: a replica that waited a whole timeout in a view change without
 * 2f + 1 VIEW-CHANGEs joins the smallest higher view another replica asked for
 * (joinHigherView(): the paper's rules can deadlock after a restart); views more than
 * MAX_VIEW_JUMP ahead are ignored.
 *
 * ## Checkpoints and state transfer (paper §4.3)
 * After executing a multiple of K the engine asks the runtime for a snapshot
 * (Ready.checkpoint, then compact()), signs CHECKPOINT(n, digest of snapshot and
 * duplicate filter) and sends it to all. 2f + 1 matching CHECKPOINTs make it stable:
 * the log below it is discarded and the window moves. A replica that learns of a
 * stable checkpoint it cannot reach by executing (it fell behind, or was partitioned)
 * fetches it from a replica that signed it and installs it if it matches the proof.
 * A replica a little behind gets commit certificates instead (2f + 1 COMMITs are a
 * proof anyone can check): every replica sends STATUS periodically, and a peer that is
 * ahead answers with what the sender lacks. Own CHECKPOINTs ride along with every
 * STATUS until stable, and a restarted replica signs its stored snapshot's checkpoint
 * again: a lost vote must not leave the window full for good.
 *
 * ## Durable state in the contract's shape
 *   HardState.term = view; .vote = reserved blocks of own request numbers;
 *   .commit = last executed sequence number.
 *   entries: one per sequence number above the snapshot, term = view of its
 *   PRE-PREPARE, data = the slot record (encoding.ts: PRE-PREPARE, request, prepared
 *   certificate) — engine-private bytes, not a command; `committed` and entryAt() give
 *   the requests. Holes (sequence numbers without a slot yet) are placeholders with
 *   empty data: the durable log must be contiguous, PBFT's slots need not be.
 *   snapshot: the application's state at a checkpoint; meta.engine the duplicate filter,
 *   the stable checkpoint's proof and the certificates it covers.
 *   A Ready that rewrites durable records (a slot in the middle changed, so the suffix
 *   after it is re-emitted) or installs a snapshot is `atomic`: torn, it would lose
 *   records whose PREPAREs or COMMITs already left. Pure appends are not.
 */
import type { Rng } from '../rng.ts';
import { NO_NODE, type Index, type NodeId, type Term } from '../types.ts';
import { EntryType, MsgType, type Entry, type MemberConfig, type Message, type PbftCheckpoint, type PbftCommit, type PbftCommitted, type PbftFetchRequest, type PbftFetchState, type PbftNewView, type PbftPrePrepare, type PbftPrepare, type PbftRequest, type PbftState, type PbftStatus, type PbftSuspect, type PbftViewChange } from '../wire/messages.ts';
import type {
  Capabilities, Engine, EngineInit, EngineRole, EngineStatus, HardState, ProposalOutcome, Ready, ReadState, Result, SnapshotData, SnapshotMeta, SoftState,
} from '../engine/contract.ts';
import type { PbftAuth } from './auth.ts';
import {
  bytesEqual, checkpointDigest, checkpointSigned, commitSigned, decodeEngineMeta, decodeExecState, decodeNewView, decodeRequest, decodeSigList,
  decodeSlotRecord, decodeViewChange, dkey, encodeEngineMeta, encodeExecState, encodeNewView, encodeRequest, encodeSigList, encodeSlotRecord,
  encodeViewChange, isNullDigest, NULL_DIGEST, ppSigned, prepareSigned, requestSigned, sha256,
  type Limits, type NewViewBody, type OriginWindow, type PreparedCert, type RequestBody, type RequestKind, type SigOf, type ViewChangeBody,
} from './encoding.ts';
import { DEDUP_WINDOW, primaryOf, replicaGroup, resolvePbftOptions, type PbftOptions, type PbftTicks, type ReplicaGroup } from './options.ts';

export interface PbftInit extends EngineInit<PbftOptions> {
  /** This node's signing key and every member's verification key. */
  auth: PbftAuth;
}

/** Own request numbers are reserved durably in blocks of this size (HardState.vote counts blocks). */
export const REQ_BLOCK = 2 ** 20;

const PBFT_TYPES = new Set<MsgType>([
  MsgType.PbftRequest, MsgType.PbftPrePrepare, MsgType.PbftPrepare, MsgType.PbftCommit, MsgType.PbftCheckpoint, MsgType.PbftViewChange,
  MsgType.PbftNewView, MsgType.PbftStatus, MsgType.PbftCommitted, MsgType.PbftFetchState, MsgType.PbftState, MsgType.PbftFetchRequest,
  MsgType.PbftSuspect,
]);

/** Why step() ignored a message; one counter each (status().dropped). A Byzantine peer's traffic shows up here. */
export interface PbftDropCounters {
  /** Addressed to another node, from this node, or from a non-member. */
  notForMe: number;
  /** A message of another engine (a member runs another engine, or lies). */
  foreignType: number;
  /** For a view other than the one this replica is in (or while it changes views). */
  wrongView: number;
  /** Sequence number outside the window (h, h + L], or already executed. */
  outOfWindow: number;
  /** A signature that does not verify under the claimed signer's key. */
  badSignature: number;
  /** A request, payload or certificate that does not decode or does not add up. */
  malformed: number;
  /** A second, different PRE-PREPARE for (view, seq), or one contradicting an executed request. */
  conflict: number;
  /** Not the sender's role (a PREPARE from the primary, a PRE-PREPARE signed by a backup). */
  wrongRole: number;
  /** A request already executed, or beyond what its origin may have in flight. */
  staleRequest: number;
  /** A NEW-VIEW whose O differs from the one its VIEW-CHANGEs give. */
  badNewView: number;
}

export interface PbftStatusView extends EngineStatus {
  engine: 'pbft';
  view: Term;
  /** 'normal' (view installed) or 'view-change'. */
  mode: 'normal' | 'view-change';
  primary: NodeId;
  n: number;
  f: number;
  quorum: number;
  /** Low water mark: the last stable checkpoint (h). */
  stableCheckpoint: Index;
  /** Highest sequence number with a slot. */
  highestSeq: Index;
  /** Requests this node knows of that have not executed (they run the view-change timer). */
  pendingRequests: number;
  /** Own proposals in flight. */
  ownInFlight: number;
  viewChanges: number;
  /** Times this replica's view-change or NEW-VIEW timer expired and it complained (SUSPECT); f + 1 complaints of other replicas change the view. */
  suspicions: number;
  stateTransfers: number;
  /** Checkpoints whose compact() the runtime did not deliver in time (the window may stall). */
  checkpointsMissed: number;
  /** Stable checkpoints whose digest differed from this replica's own: its state diverged (then fetched). */
  divergentCheckpoints: number;
  /** VIEW-CHANGEs held back until a newer checkpoint proof arrived (see sendViewChange). */
  deferredViewChanges: number;
  /** The view-change and NEW-VIEW timeout now in effect, ms: the configured one, doubled for each view change since a request last executed in the view it was committed in (capped). */
  viewChangeTimeoutMs: number;
  dropped: PbftDropCounters;
  scheme: string;
}

interface Vote {
  view: Term;
  digest: Uint8Array;
  sig: Uint8Array;
}

interface CommitCert {
  view: Term;
  digest: Uint8Array;
  sigs: SigOf[];
}

/** What a replica knows about one sequence number. */
interface Slot {
  seq: Index;
  /** The PRE-PREPARE accepted in view ppView (ppDigest undefined = none). */
  ppView: Term;
  ppDigest: Uint8Array | undefined;
  /** The primary's signature; empty when the slot was learned from a commit certificate. */
  ppSig: Uint8Array;
  /** The request with digest ppDigest: a body, null for the null request, undefined while unknown. */
  body: RequestBody | null | undefined;
  bodyBytes: Uint8Array | undefined;
  /** The highest-view prepared certificate this replica has for seq. */
  cert: PreparedCert | undefined;
  /** PREPAREs and COMMITs of the current view, by sender (an older view's are ignored). */
  prepares: Map<NodeId, Vote>;
  commits: Map<NodeId, Vote>;
  /** Committed-local (or learned from a commit certificate): the digest that executes at seq. */
  committed: CommitCert | undefined;
  /** Primary: tick its PRE-PREPARE was last sent (retransmissions wait a period). */
  sentAt: number;
}

interface KnownRequest {
  body: RequestBody;
  bytes: Uint8Array;
  digest: Uint8Array;
  relayed: boolean;
}

interface OwnRequest {
  reqNo: number;
  digest: Uint8Array;
  bytes: Uint8Array;
  /** Read marker: the ReadIndex ctx; 0 for a write. */
  ctx: number;
  /** Tick it was last sent. */
  sentAt: number;
}

interface StoredVC {
  body: ViewChangeBody;
  payload: Uint8Array;
  sig: Uint8Array;
  digest: Uint8Array;
  /** Deep validity (proof and certificates), computed once when needed. */
  valid?: boolean;
  /** Built by this incarnation of this replica (the one it retransmits). */
  local?: boolean;
}

interface StableData {
  seq: Index;
  digest: Uint8Array;
  proof: SigOf[];
  /** Application snapshot and execution state at seq (absent when this replica never held them). */
  data?: Uint8Array;
  exec?: Uint8Array;
}

interface IncomingState {
  from: NodeId;
  seq: Index;
  total: number;
  proof: Uint8Array;
  exec: Uint8Array;
  parts: Map<number, Uint8Array>;
  received: number;
}

const NO_ENTRIES = Object.freeze([]) as unknown as Entry[];
const NO_MESSAGES = Object.freeze([]) as unknown as Message[];
const NO_READ_STATES = Object.freeze([]) as unknown as ReadState[];
const NO_CTXS = Object.freeze([]) as unknown as number[];
const EMPTY = new Uint8Array(0);
/** Commit certificates sent per STATUS from a replica that is behind (the rest follow at its next STATUS). */
const CATCH_UP_PER_STATUS = 32;
/** VIEW-CHANGEs kept per replica (its latest views). */
const VCS_PER_REPLICA = 4;
/** CHECKPOINT votes kept per replica (its latest sequence numbers). */
const CKPTS_PER_REPLICA = 4;
/**
 * VIEW-CHANGEs and NEW-VIEWs more than this many views ahead are ignored: otherwise a
 * Byzantine replica could lure view-changing replicas towards 2^53, where view + 1
 * no longer fits the wire. Honest views advance one timeout (≥ 1 s, doubling) at a time.
 */
export const MAX_VIEW_JUMP = 65536;

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export class PbftNode implements Engine {
  readonly id: NodeId;
  readonly name = 'pbft' as const;
  readonly caps: Readonly<Capabilities> = Object.freeze({ log: true, reads: true, transfer: false, witness: false, lease: false, byzantine: true });
  readonly tickMs: number;
  readonly options: Readonly<PbftOptions>;
  private readonly ticks: PbftTicks;
  private readonly auth: PbftAuth;
  private readonly group: ReplicaGroup;
  private readonly config: MemberConfig;
  private readonly lim: Limits;
  private readonly rng: Rng;

  // --- durable (HardState)
  private view: Term = 0;
  private reserved = 0;
  private executed: Index = 0;

  private normal = true;
  private now = 0;

  // --- the log
  private slots = new Map<Index, Slot>();
  /** Low water mark h: the last stable checkpoint (its proof in `stable`). */
  private low: Index = 0;
  private stable: StableData = { seq: 0, digest: NULL_DIGEST, proof: [] };
  /** Index of the durable snapshot: entries are persisted only above it. */
  private snapIndex: Index = 0;
  /** Lowest sequence number whose slot record must be (re)persisted. */
  private dirtyFrom = Infinity;
  /** Where the durable log ends (the runtime's last entry index; the log must stay contiguous). */
  private durableEnd: Index = 0;

  // --- execution
  private windows = new Map<NodeId, OriginWindow>();
  private toApply: Entry[] = [];
  /** Who asked for what executed recently (index → request), kept for 2L executions beyond slot GC (replies need it). */
  private history = new Map<Index, { origin: NodeId; reqNo: number; digest: Uint8Array }>();
  private applied: Index = 0;
  /** Checkpoints executed but not yet handed out (their execution state captured at that point). */
  private ckptQueue: Array<{ seq: Index; exec: Uint8Array }> = [];
  /** The checkpoint whose compact() may come now (set by advance of its Ready). */
  private ckptWanted: { seq: Index; exec: Uint8Array } | undefined;
  /** Own checkpoints: digest, data and our signature, by sequence number (until superseded by a stable one). */
  private ownCkpts = new Map<Index, { digest: Uint8Array; data: Uint8Array; exec: Uint8Array; sig: Uint8Array }>();
  /** CHECKPOINT votes by replica: its latest few (seq → digest, sig). */
  private ckptVotes = new Map<NodeId, Map<Index, Vote>>();
  /** The highest stable checkpoint proven by others that this replica has not reached. */
  private target: StableData | undefined;
  private executedAtLastStatus: Index = 0;
  private fetch: { seq: Index; peer: NodeId; tries: number; sentAt: number } | undefined;
  private incoming: IncomingState | undefined;
  private installing: SnapshotData | undefined;
  private lastServed = new Map<NodeId, number>();
  private lastRelayed = new Map<NodeId, number>();
  private bodiesServed = new Map<NodeId, number>();

  // --- requests
  private known = new Map<string, KnownRequest>();
  private knownPerOrigin = new Map<NodeId, number>();
  private mine = new Map<number, OwnRequest>();
  private nextReq = 1;
  /** Primary: requests waiting for a sequence number, and digests assigned in this view. */
  private queue: string[] = [];
  private queued = new Set<string>();
  private assigned = new Set<string>();
  private nextSeq: Index = 1;
  private noopSeq: Index = 0;
  private token: Index = 0;

  // --- view change
  private vcs = new Map<NodeId, StoredVC[]>();
  private vcElapsed = 0;
  private nvTimer: number | undefined;
  private backoff = 0;
  private primarySuspected = false;
  /**
   * The highest sequence number the primary had pre-prepared here when the link said it
   * was gone (leaderGone), and when (tick). Executing up to it, or anything within one
   * retransmission period after (its last PRE-PREPAREs may still be on their way), is
   * that primary's last orders finishing among the backups, not a sign of life: only a
   * later execution ends the suspicion.
   */
  private suspectedUpTo: Index = 0;
  private suspectedAt = 0;
  /** Our view-change timer expired in this view: we complain (SUSPECT) until progress or a view change. */
  private suspecting = false;
  /** Other replicas' complaints about the current view: replica → tick of the latest one received. */
  private suspects = new Map<NodeId, number>();
  private suspicions = 0;
  private nvSentFor: Term = 0;
  /** The NEW-VIEW of the installed view and the VIEW-CHANGEs it rests on (to relay to laggards). */
  private curNV: { msg: { payload: Uint8Array; sig: Uint8Array }; vcs: StoredVC[] } | undefined;
  /** A NEW-VIEW waiting for VIEW-CHANGEs this replica has not received yet. */
  private pendingNV: { view: Term; body: NewViewBody; payload: Uint8Array; sig: Uint8Array } | undefined;
  private retransmitElapsed = 0;
  private statusElapsed = 0;
  /** Our VIEW-CHANGE for the current view waits for a newer stable checkpoint proof (see sendViewChange). */
  private vcDeferred = false;
  private deferredViewChanges = 0;

  // --- Ready bookkeeping
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private failedReads: number[] = [];
  private outcomes: ProposalOutcome[] = [];
  private outstanding: { rd: Ready; appliedTo: Index } | undefined;
  private prevHard: HardState;
  private prevSoft: SoftState;

  readonly dropped: PbftDropCounters = {
    notForMe: 0, foreignType: 0, wrongView: 0, outOfWindow: 0, badSignature: 0, malformed: 0, conflict: 0, wrongRole: 0, staleRequest: 0, badNewView: 0,
  };
  private viewChanges = 0;
  private stateTransfers = 0;
  private checkpointsMissed = 0;
  private divergent = 0;

  constructor(init: PbftInit) {
    if (typeof init !== 'object' || init === null) throw new TypeError('PbftNode: expected an init object {id, config, auth, rng, ...}');
    if (!isNat(init.id) || init.id < 1 || init.id > 254) throw new RangeError(`PbftNode: id must be a node id 1..254, got ${String(init.id)}`);
    if (!init.rng || typeof init.rng.int !== 'function') throw new TypeError('PbftNode: rng must be an Rng (src/rng.ts)');
    const auth = init.auth;
    if (!auth || typeof auth.sign !== 'function' || typeof auth.verify !== 'function' || !isNat(auth.sigBytes)) {
      throw new TypeError('PbftNode: auth must be a PbftAuth (src/pbft/auth.ts: ed25519Auth for real clusters)');
    }
    if (auth.id !== init.id) throw new RangeError(`PbftNode: auth signs for node ${auth.id}, not for this node ${init.id}`);
    if (auth.sigBytes < 16 || auth.sigBytes > 64) throw new RangeError(`PbftNode: signatures of ${auth.sigBytes} bytes are outside the wire's 16..64`);
    this.id = init.id;
    this.rng = init.rng;
    this.auth = auth;
    const { opts, ticks } = resolvePbftOptions(init.options);
    this.options = Object.freeze({ ...opts, testingBugs: Object.freeze({ ...opts.testingBugs }) });
    this.ticks = ticks;
    this.tickMs = opts.tickMs;

    let config = init.config;
    if (init.snapshot !== undefined) {
      const s = init.snapshot;
      if (!s || !s.meta || !isNat(s.meta.index) || !isNat(s.meta.term) || !(s.data instanceof Uint8Array)) {
        throw new TypeError('PbftNode snapshot: expected {meta: {index, term, config, engine}, data: Uint8Array}');
      }
      config = s.meta.config;
    }
    this.group = replicaGroup(config, 'PbftNode config');
    this.config = { voters: [...this.group.members], learners: [], witnesses: [] };
    if (!this.group.members.includes(this.id)) throw new RangeError(`PbftNode: node ${this.id} is not a member of ${this.group.members.join(', ')}`);
    this.lim = { sigBytes: auth.sigBytes, maxOpBytes: ticks.maxOpBytes, maxItems: ticks.window, n: this.group.n };
    this.checkViewChangeFits();

    // Snapshot: the application state at a checkpoint, and the engine's part of it.
    let snapCerts: PreparedCert[] = [];
    if (init.snapshot) {
      const s = init.snapshot;
      if (!(s.meta.engine instanceof Uint8Array)) throw new TypeError('PbftNode snapshot.meta.engine: expected the engine state stored with the snapshot (Uint8Array)');
      const em = decodeEngineMeta(s.meta.engine, this.lim);
      if (typeof em === 'string') throw new TypeError(`PbftNode snapshot.meta.engine: ${em}`);
      const win = decodeExecState(em.exec);
      if (typeof win === 'string') throw new TypeError(`PbftNode snapshot.meta.engine: ${win}`);
      this.windows = win;
      this.snapIndex = s.meta.index;
      if (em.stable > this.snapIndex) throw new RangeError(`PbftNode snapshot: stable checkpoint ${em.stable} beyond the snapshot index ${this.snapIndex}`);
      this.low = em.stable;
      this.stable = { seq: em.stable, digest: em.stableDigest, proof: em.proof };
      if (em.stable === this.snapIndex && em.stable > 0) {
        this.stable.data = s.data;
        this.stable.exec = em.exec;
      }
      snapCerts = em.certs;
    }

    // The durable log: contiguous slot records above the snapshot.
    const entries = init.entries ?? [];
    if (!Array.isArray(entries)) throw new TypeError('PbftNode entries: expected an array of Entry');
    entries.forEach((e, k) => {
      if (!e || !isNat(e.term) || !isNat(e.index) || !(e.data instanceof Uint8Array)) throw new TypeError(`PbftNode entries[${k}]: expected {term, index, type, data: Uint8Array}`);
      if (e.index !== this.snapIndex + 1 + k) throw new RangeError(`PbftNode entries[${k}]: index ${e.index}, expected ${this.snapIndex + 1 + k} (contiguous after the snapshot)`);
      if (e.data.length === 0) return; // placeholder
      const r = decodeSlotRecord(e.index, e.data, this.lim);
      if (typeof r === 'string') throw new TypeError(`PbftNode entries[${k}]: ${r}`);
      const slot = this.newSlot(e.index);
      slot.ppView = r.ppView;
      slot.ppDigest = r.ppDigest;
      slot.ppSig = r.ppSig;
      slot.cert = r.cert;
      if (r.ppDigest === undefined) {
        // a certificate only
      } else if (isNullDigest(r.ppDigest)) slot.body = null;
      else if (r.request.length > 0) {
        const b = decodeRequest(r.request, this.lim);
        if (typeof b === 'string') throw new TypeError(`PbftNode entries[${k}]: ${b}`);
        slot.body = b;
        slot.bodyBytes = r.request;
      }
      this.slots.set(e.index, slot);
    });
    const durableTop = this.snapIndex + entries.length;
    this.durableEnd = durableTop;
    for (const c of snapCerts) {
      if (c.seq <= this.low || this.slots.has(c.seq)) continue;
      const slot = this.newSlot(c.seq);
      slot.cert = c;
      this.slots.set(c.seq, slot);
    }

    const hs = init.hardState ?? { term: 0, vote: 0, commit: 0 };
    if (!isNat(hs.term) || !isNat(hs.vote) || !isNat(hs.commit)) throw new TypeError('PbftNode hardState: expected {term, vote, commit} of non-negative integers');
    if (hs.commit > durableTop) {
      throw new RangeError(`PbftNode hardState.commit ${hs.commit} is beyond the last durable log index ${durableTop}: executed requests are missing from storage`);
    }
    this.view = hs.term;
    this.reserved = hs.vote;
    this.nextReq = this.reserved * REQ_BLOCK + 1;
    const commit = Math.max(hs.commit, this.snapIndex);
    this.applied = init.applied ?? this.snapIndex;
    if (!isNat(this.applied) || this.applied < this.snapIndex || this.applied > commit) {
      throw new RangeError(`PbftNode applied ${String(init.applied)} must be within [snapshot index ${this.snapIndex}, executed ${commit}]`);
    }
    // Re-execute what was executed before the restart (rebuilds the duplicate filter);
    // entries above the application's applied index are handed out again.
    this.executed = this.snapIndex;
    for (let i = this.snapIndex + 1; i <= commit; i++) {
      const s = this.slots.get(i);
      if (!s || !s.ppDigest || s.body === undefined) throw new RangeError(`PbftNode: executed sequence number ${i} has no request in the durable log`);
      s.committed = { view: s.ppView, digest: s.ppDigest, sigs: [] };
      const e = this.executeSlot(s, true);
      if (i > this.applied) this.toApply.push(e);
    }
    this.ckptQueue = this.ckptQueue.filter((c) => c.seq > this.applied);
    this.dirtyFrom = Infinity;
    if (this.view > 0) {
      // The view may or may not have been installed: wait for its NEW-VIEW (a replica
      // that has it relays it) or move on with the others (docs/engines.md "PBFT").
      this.normal = false;
      this.sendViewChange();
    }
    // The stored snapshot is this replica's checkpoint at its index; if that checkpoint
    // was not yet known stable, sign it again (the vote may never have arrived).
    if (init.snapshot && this.snapIndex > this.stable.seq && this.snapIndex % this.options.checkpointInterval === 0) {
      const exec = decodeEngineMeta(init.snapshot.meta.engine!, this.lim) as { exec: Uint8Array };
      this.signCheckpoint(this.snapIndex, checkpointDigest(this.snapIndex, init.snapshot.data, exec.exec), init.snapshot.data, exec.exec);
    }
    this.nextSeq = this.firstFreeSeq();
    this.prevHard = { term: this.view, vote: this.reserved, commit: this.executed };
    this.prevSoft = this.softState();
    if (this.normal && this.isPrimary()) this.startPrimary();
  }

  /** Refuses a configuration whose largest VIEW-CHANGE would not fit a message. */
  private checkViewChangeFits(): void {
    const s = this.auth.sigBytes;
    const cert = 9 + 9 + 34 + 2 + s + 3 + (this.group.q - 1) * (2 + 2 + s);
    const proof = this.group.q * (2 + 2 + s);
    const worst = 64 + proof + this.ticks.window * cert + s + 64;
    if (worst > this.options.maxMsgBytes) {
      throw new RangeError(
        `pbft options: a VIEW-CHANGE may need ${worst} bytes (window L = ${this.ticks.window} certificates of ${this.group.q - 1} PREPAREs each) but maxMsgBytes is ${this.options.maxMsgBytes}; lower checkpointInterval or windowCheckpoints`,
      );
    }
  }

  // -------------------------------------------------------------------------
  // Inspection

  get isLeader(): boolean {
    return this.normal && this.isPrimary();
  }

  /** The current view (HardState.term). */
  get currentView(): Term {
    return this.view;
  }
  get inViewChange(): boolean {
    return !this.normal;
  }
  get executedIndex(): Index {
    return this.executed;
  }
  get appliedIndex(): Index {
    return this.applied;
  }
  get stableCheckpoint(): Index {
    return this.low;
  }
  get replicaGroup(): ReplicaGroup {
    return this.group;
  }

  status(): PbftStatusView {
    let top = 0;
    for (const k of this.slots.keys()) if (k > top) top = k;
    return {
      id: this.id, engine: 'pbft', role: this.role(), detail: this.normal ? 'normal' : 'view-change', term: this.view, leader: this.leaderId(),
      commitIndex: this.executed, appliedIndex: this.applied, lastIndex: Math.max(top, this.executed), isWitness: false,
      config: { voters: [...this.config.voters], learners: [], witnesses: [] },
      view: this.view, mode: this.normal ? 'normal' : 'view-change', primary: primaryOf(this.group, this.view),
      n: this.group.n, f: this.group.f, quorum: this.group.q, stableCheckpoint: this.low, highestSeq: top,
      pendingRequests: this.known.size, ownInFlight: this.mine.size, viewChanges: this.viewChanges, suspicions: this.suspicions, stateTransfers: this.stateTransfers,
      checkpointsMissed: this.checkpointsMissed, divergentCheckpoints: this.divergent, deferredViewChanges: this.deferredViewChanges,
      viewChangeTimeoutMs: this.viewChangeTimeout() * this.options.tickMs, dropped: { ...this.dropped }, scheme: this.auth.scheme,
    };
  }

  /**
   * The leadership token: the sequence number of this primary's opening null request
   * in its view, once executed (0 before, and on backups). It only grows from one
   * leadership to the next: an executed sequence number n1 of view v1 was committed,
   * so every NEW-VIEW of a later view v2 has max-s ≥ n1 (2f + 1 VIEW-CHANGEs include
   * a certificate for n1 or a stable checkpoint ≥ n1), and v2's primary proposes its
   * null request above max-s. Lock-grant tokens are sequence numbers of executed
   * requests too, so both kinds share one order (src/fence/token.ts).
   */
  leaderToken(): number {
    return this.isLeader && this.token > 0 ? this.token : 0;
  }

  /** The request at sequence number i (term = view of its PRE-PREPARE), if this replica holds it. */
  entryAt(i: Index): Entry | undefined {
    const s = this.slots.get(i);
    if (!s || !s.ppDigest || s.body === undefined) return undefined;
    if (s.body === null) return { term: s.ppView, index: i, type: EntryType.Noop, data: EMPTY };
    return { term: s.ppView, index: i, type: s.body.kind === EntryType.Normal ? EntryType.Normal : EntryType.Noop, data: s.body.op };
  }

  /**
   * Who asked for the request executed at index i (origin replica, its request number,
   * the request's digest), for the last 2L executions: the runtime signs its reply
   * with it (src/pbft/reply.ts) and counts fence endorsements by origin. Undefined for
   * a null request, an index not executed here, or one executed long ago.
   */
  executedRequest(i: Index): { origin: NodeId; reqNo: number; digest: Uint8Array } | undefined {
    return this.history.get(i);
  }

  /** The prepared certificate this replica holds for seq (for the invariants). */
  preparedAt(seq: Index): { view: Term; digest: Uint8Array } | undefined {
    const c = this.slots.get(seq)?.cert;
    return c ? { view: c.view, digest: c.digest } : undefined;
  }

  /** The digest committed-local at seq (for the invariants). */
  committedAt(seq: Index): { view: Term; digest: Uint8Array } | undefined {
    const c = this.slots.get(seq)?.committed;
    return c ? { view: c.view, digest: c.digest } : undefined;
  }

  /** Sequence numbers with a slot in memory, in no particular order (for the invariants). */
  slotSeqs(): IterableIterator<Index> {
    return this.slots.keys();
  }

  /** The digest of this replica's own checkpoint at seq, while it holds it. */
  ownCheckpoint(seq: Index): Uint8Array | undefined {
    return this.ownCkpts.get(seq)?.digest ?? (this.stable.seq === seq && this.stable.data ? this.stable.digest : undefined);
  }

  // -------------------------------------------------------------------------
  // Inputs

  propose(data: Uint8Array): Result {
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: `propose: data must be a Uint8Array, got ${typeof data}` };
    if (data.length > this.ticks.maxOpBytes) {
      return { ok: false, code: 'too-large', reason: `propose: ${data.length} bytes exceed the ${this.ticks.maxOpBytes}-byte limit of one request (maxMsgBytes ${this.options.maxMsgBytes})` };
    }
    if (this.mine.size >= this.options.maxPending) {
      return { ok: false, code: 'busy', reason: `${this.mine.size} proposals of node ${this.id} are in flight (maxPending ${this.options.maxPending}); not proposed, retry` };
    }
    const reqNo = this.newOwnRequest(EntryType.Normal, data, 0);
    return { ok: true, index: 0, term: this.view, ref: reqNo };
  }

  /**
   * A linearizable read point: a read marker goes through the log like a write; once
   * it executes at index i, a ReadState {ctx, index: i} says "serve the read once
   * applied ≥ i". PBFT has no leader whose word is enough (the primary may lie), so
   * there is no lease or ReadIndex round; the marker costs one normal-case round.
   * A client still needs f + 1 matching replies (src/pbft/reply.ts).
   */
  readIndex(ctx: number): Result<{ term: Term }> {
    if (!Number.isInteger(ctx) || ctx < 1 || ctx > 0xffffffff) return { ok: false, code: 'bad-request', reason: `readIndex: ctx must be an integer 1..2^32-1, got ${String(ctx)}` };
    if (this.mine.size >= this.options.maxPending) {
      return { ok: false, code: 'busy', reason: `${this.mine.size} proposals of node ${this.id} are in flight (maxPending ${this.options.maxPending}); retry` };
    }
    this.newOwnRequest(EntryType.Noop, EMPTY, ctx);
    return { ok: true, term: this.view };
  }

  transferLeadership(to: NodeId): Result<{ term: Term }> {
    void to;
    return { ok: false, code: 'not-supported', reason: 'PBFT: the primary is fixed by the view number (members[view mod n]); leadership moves only by a view change' };
  }

  campaign(): Result<{ term: Term }> {
    return { ok: false, code: 'not-supported', reason: 'PBFT: no replica can make itself primary; a view change needs f + 1 replicas (leaderGone(primary) lets this one suspect it sooner)' };
  }

  /**
   * The link reported that node `id`'s connection died. If it is the primary, this
   * replica suspects it at once: a known request that does not execute within one
   * retransmission period (instead of the full view-change timeout) starts a view
   * change. Nothing happens while no request is pending (an idle cluster needs no
   * primary), and the hint alone never changes the view: that takes f + 1 replicas,
   * so a false report (or a Byzantine broker) costs at most one needless view change.
   */
  leaderGone(id: NodeId): Result<{ forgot: boolean }> {
    if (!Number.isInteger(id) || id < 1 || id > 254) return { ok: false, code: 'bad-request', reason: `leaderGone: id must be a node id 1..254, got ${String(id)}` };
    if (!this.normal || id === this.id || id !== primaryOf(this.group, this.view)) return { ok: true, forgot: false };
    this.primarySuspected = true;
    let top = this.executed;
    for (const [seq, s] of this.slots) if (s.ppDigest && s.ppView === this.view && seq > top) top = seq;
    this.suspectedUpTo = top;
    this.suspectedAt = this.now;
    return { ok: true, forgot: true };
  }

  /**
   * The application's snapshot at a checkpoint this engine asked for (Ready.checkpoint):
   * `index` must be that checkpoint and the application must have applied exactly up
   * to it. Returns the metadata to store with the snapshot (meta.engine included); the
   * runtime may then drop durable log entries up to `index`.
   */
  compact(index: Index, data: Uint8Array): Result<{ meta: SnapshotMeta }> {
    if (!isNat(index)) return { ok: false, code: 'bad-request', reason: `compact: index must be a non-negative integer, got ${String(index)}` };
    if (!(data instanceof Uint8Array)) return { ok: false, code: 'bad-request', reason: 'compact: data must be a Uint8Array' };
    const w = this.ckptWanted;
    if (!w || w.seq !== index) {
      return { ok: false, code: 'bad-request', reason: `compact: PBFT snapshots are taken at checkpoints only (Ready.checkpoint); ${w ? `the checkpoint wanted now is ${w.seq}` : 'none is wanted now'}, got ${index}` };
    }
    if (this.applied !== index) return { ok: false, code: 'bad-request', reason: `compact: the application must have applied exactly ${index}, engine's applied index is ${this.applied}` };
    this.ckptWanted = undefined;
    const digest = checkpointDigest(index, data, w.exec);
    if (this.stable.seq === index && !this.stable.data) {
      // Proven stable by the others before our own snapshot came: now we can serve it.
      if (bytesEqual(this.stable.digest, digest)) this.stable = { ...this.stable, data, exec: w.exec };
      else this.divergent++;
    }
    const certs: PreparedCert[] = [];
    for (const [seq, s] of this.slots) if (seq > this.low && seq <= index && s.cert) certs.push(s.cert);
    certs.sort((a, b) => a.seq - b.seq);
    const meta: SnapshotMeta = {
      index,
      term: this.slots.get(index)?.committed?.view ?? this.view,
      config: { voters: [...this.config.voters], learners: [], witnesses: [] },
      engine: encodeEngineMeta({ exec: w.exec, stable: this.stable.seq, stableDigest: this.stable.digest, proof: this.stable.proof, certs }),
    };
    this.snapIndex = index;
    this.durableEnd = Math.max(this.durableEnd, index);
    if (this.dirtyFrom <= index) this.dirtyFrom = index + 1;
    this.signCheckpoint(index, digest, data, w.exec);
    return { ok: true, meta };
  }

  /** Signs, records and sends this replica's CHECKPOINT (re-sent with every STATUS until it is stable). */
  private signCheckpoint(seq: Index, digest: Uint8Array, data: Uint8Array, exec: Uint8Array): void {
    const sig = this.auth.sign(checkpointSigned(seq, digest, this.id));
    this.ownCkpts.set(seq, { digest, data, exec, sig });
    this.recordCheckpointVote(this.id, seq, digest, sig);
    this.broadcast({ type: MsgType.PbftCheckpoint, from: this.id, to: 0, term: this.view, replica: this.id, seq, digest, sig });
    this.checkStable(seq, digest);
  }

  tick(): void {
    this.now++;
    if (this.normal && !this.isPrimary() && this.known.size > 0) {
      this.vcElapsed++;
      const limit = this.primarySuspected ? this.ticks.retransmit : this.viewChangeTimeout();
      if (this.vcElapsed >= limit) {
        if (this.options.testingBugs.viewChangeAlone === true) this.startViewChange(this.view + 1);
        else this.suspect();
      }
    } else if (this.normal) {
      this.vcElapsed = 0;
    }
    if (!this.normal && this.nvTimer !== undefined && ++this.nvTimer >= this.viewChangeTimeout()) {
      // No NEW-VIEW in time: a complaint, like the normal-mode timer ("Suspicion").
      if (this.options.testingBugs.newViewTimerAlone === true) this.startViewChange(this.view + 1);
      else this.suspect();
    } else if (!this.normal && this.nvTimer === undefined && ++this.vcElapsed >= this.viewChangeTimeout()) {
      this.joinHigherView();
    }
    if (++this.retransmitElapsed >= this.ticks.retransmit) {
      this.retransmitElapsed = 0;
      this.retransmit();
    }
    if (++this.statusElapsed >= this.ticks.status) {
      this.statusElapsed = 0;
      this.sendStatus();
      this.maybeFetchState();
    }
  }

  step(m: Message): void {
    if (typeof m !== 'object' || m === null) throw new TypeError(`pbft step: expected a Message object, got ${String(m)}`);
    if (!PBFT_TYPES.has(m.type)) {
      this.dropped.foreignType++;
      return;
    }
    if (m.to !== this.id || m.from === this.id || !this.group.members.includes(m.from) || !isNat(m.term)) {
      this.dropped.notForMe++;
      return;
    }
    switch (m.type) {
      case MsgType.PbftRequest:
        return this.onRequest(m);
      case MsgType.PbftPrePrepare:
        return this.onPrePrepare(m);
      case MsgType.PbftPrepare:
      case MsgType.PbftCommit:
        return this.onVote(m);
      case MsgType.PbftCheckpoint:
        return this.onCheckpoint(m);
      case MsgType.PbftViewChange:
        return this.onViewChange(m);
      case MsgType.PbftNewView:
        return this.onNewView(m);
      case MsgType.PbftStatus:
        return this.onStatus(m);
      case MsgType.PbftCommitted:
        return this.onCommitted(m);
      case MsgType.PbftFetchState:
        return this.onFetchState(m);
      case MsgType.PbftState:
        return this.onState(m);
      case MsgType.PbftFetchRequest:
        return this.onFetchRequest(m);
      case MsgType.PbftSuspect:
        return this.onSuspect(m);
      default:
        this.dropped.foreignType++;
    }
  }

  // -------------------------------------------------------------------------
  // Ready / advance

  ready(): Ready | undefined {
    if (this.outstanding) throw new Error('pbft ready(): the previous Ready has not been advanced yet; call advance(ready) first');
    if (this.ckptWanted) {
      // The runtime did not call compact() for the checkpoint it was handed: no
      // checkpoint here (the window may stall until a later one becomes stable).
      this.ckptWanted = undefined;
      this.checkpointsMissed++;
    }
    if (!this.hasReady()) return undefined;
    const rd: Ready = {
      entries: NO_ENTRIES,
      messages: this.msgs.length > 0 ? this.msgs : NO_MESSAGES,
      committed: NO_ENTRIES,
      readStates: this.readStates.length > 0 ? this.readStates : NO_READ_STATES,
      failedReads: this.failedReads.length > 0 ? this.failedReads : NO_CTXS,
    };
    const ph = this.prevHard;
    if (this.view !== ph.term || this.reserved !== ph.vote || this.executed !== ph.commit) rd.hardState = { term: this.view, vote: this.reserved, commit: this.executed };
    const ps = this.prevSoft;
    const role = this.role();
    const leader = this.leaderId();
    if (role !== ps.role || leader !== ps.leader || this.view !== ps.term) rd.softState = this.softState();
    if (this.installing) rd.snapshot = this.installing;
    const top = this.topSeq();
    const from = this.persistFrom();
    if (this.dirtyFrom !== Infinity && from <= top) {
      const es: Entry[] = [];
      for (let i = from; i <= top; i++) es.push(this.slotEntry(i));
      rd.entries = es;
      // Rewriting records that were durable (a slot that became prepared re-emits the
      // slots after it, whose PREPAREs or COMMITs may have left): a torn write would make
      // this replica forget what it said, so all or nothing. Appends alone need not be.
      if (from <= this.durableEnd) rd.atomic = true;
      this.durableEnd = top;
    }
    // A state transfer discards the durable log and writes the slots above it again.
    if (rd.snapshot) rd.atomic = true;
    let appliedTo = this.applied;
    if (this.toApply.length > 0) {
      const cut = this.ckptQueue.length > 0 ? this.ckptQueue[0]!.seq : Infinity;
      let k = 0;
      while (k < this.toApply.length && this.toApply[k]!.index <= cut) k++;
      if (k > 0) {
        rd.committed = this.toApply.slice(0, k);
        this.toApply = this.toApply.slice(k);
        appliedTo = rd.committed[k - 1]!.index;
        if (appliedTo === cut) rd.checkpoint = cut;
      }
    }
    if (this.outcomes.length > 0) {
      // An outcome leaves with (or after) the Ready that applies its entry.
      const out = this.outcomes.filter((o) => o.index <= appliedTo);
      if (out.length === this.outcomes.length) this.outcomes = [];
      else this.outcomes = this.outcomes.filter((o) => o.index > appliedTo);
      if (out.length > 0) rd.outcomes = out;
    }
    const empty = !rd.hardState && !rd.softState && !rd.snapshot && rd.entries.length === 0 && rd.messages.length === 0 &&
      rd.committed.length === 0 && rd.readStates.length === 0 && rd.failedReads.length === 0 && !rd.outcomes;
    if (empty) return undefined;
    if (this.msgs.length > 0) this.msgs = [];
    if (this.readStates.length > 0) this.readStates = [];
    if (this.failedReads.length > 0) this.failedReads = [];
    this.installing = undefined;
    this.dirtyFrom = Infinity;
    this.outstanding = { rd, appliedTo };
    return rd;
  }

  hasReady(): boolean {
    if (this.msgs.length > 0 || this.readStates.length > 0 || this.failedReads.length > 0 || this.installing) return true;
    if (this.outcomes.length > 0 && this.outcomes.some((o) => o.index <= this.applied)) return true;
    if (this.view !== this.prevHard.term || this.reserved !== this.prevHard.vote || this.executed !== this.prevHard.commit) return true;
    if (this.role() !== this.prevSoft.role || this.leaderId() !== this.prevSoft.leader || this.view !== this.prevSoft.term) return true;
    if (this.toApply.length > 0) return true;
    return this.dirtyFrom !== Infinity && this.persistFrom() <= this.topSeq();
  }

  /**
   * Whether every slot up to `seq` is in the durable log as it is now (handed to storage
   * in a Ready, which is written before the next): only then may a stable checkpoint
   * this replica holds no snapshot of drop those slots.
   */
  private durableThrough(seq: Index): boolean {
    return seq < this.persistFrom();
  }

  /** First index the next Ready's entries start at: the lowest dirty slot, but never leaving a gap after the durable log's end. */
  private persistFrom(): Index {
    return Math.min(Math.max(this.dirtyFrom, this.snapIndex + 1), this.durableEnd + 1);
  }

  advance(rd: Ready): void {
    if (!this.outstanding || this.outstanding.rd !== rd) throw new Error('pbft advance(): argument is not the Ready last returned by ready()');
    const { appliedTo } = this.outstanding;
    this.outstanding = undefined;
    if (rd.hardState) this.prevHard = { ...rd.hardState };
    if (rd.softState) this.prevSoft = { ...rd.softState };
    if (rd.snapshot) this.applied = Math.max(this.applied, rd.snapshot.meta.index);
    this.applied = Math.max(this.applied, appliedTo);
    if (rd.checkpoint !== undefined) {
      const c = this.ckptQueue.shift();
      if (c && c.seq === rd.checkpoint) this.ckptWanted = c;
    }
  }

  // -------------------------------------------------------------------------
  // Roles and views

  private isPrimary(): boolean {
    return primaryOf(this.group, this.view) === this.id;
  }

  private role(): EngineRole {
    if (!this.normal) return 'candidate';
    return this.isPrimary() ? 'leader' : 'follower';
  }

  private leaderId(): NodeId {
    return this.normal ? primaryOf(this.group, this.view) : NO_NODE;
  }

  private softState(): SoftState {
    return { role: this.role(), leader: this.leaderId(), term: this.view, detail: this.normal ? 'normal' : 'view-change' };
  }

  private viewChangeTimeout(): number {
    return Math.min(this.ticks.viewChange * 2 ** Math.min(this.backoff, 30), this.ticks.maxViewChange);
  }

  // -------------------------------------------------------------------------
  // Requests

  private newOwnRequest(kind: RequestKind, op: Uint8Array, ctx: number): number {
    const reqNo = this.nextReq++;
    // Reserve the request number durably before it leaves (HardState.vote, persisted
    // in the same Ready as the message): a restarted origin starts above the reservation.
    while (reqNo > this.reserved * REQ_BLOCK) this.reserved++;
    const sig = this.auth.sign(requestSigned(this.id, reqNo, kind, op));
    const body: RequestBody = { origin: this.id, reqNo, kind, op, sig };
    const bytes = encodeRequest(body);
    const digest = sha256(bytes);
    this.mine.set(reqNo, { reqNo, digest, bytes, ctx, sentAt: this.now });
    this.noteRequest(body, bytes, digest, true);
    // First attempt to the primary only (paper §4.1); retransmissions go to everyone.
    const p = primaryOf(this.group, this.view);
    if (p !== this.id && this.normal) this.send({ type: MsgType.PbftRequest, from: this.id, to: p, term: this.view, request: bytes });
    return reqNo;
  }

  private onRequest(m: PbftRequest): void {
    const body = decodeRequest(m.request, this.lim);
    if (typeof body === 'string') {
      this.dropped.malformed++;
      return;
    }
    if (!this.group.members.includes(body.origin)) {
      this.dropped.malformed++;
      return;
    }
    if (!this.auth.verify(body.origin, requestSigned(body.origin, body.reqNo, body.kind, body.op), body.sig)) {
      this.dropped.badSignature++;
      return;
    }
    const digest = sha256(m.request);
    const k = this.noteRequest(body, m.request, digest, false);
    // A backup relays a request it got from its origin to the primary (paper §4.1),
    // so an origin cannot trigger a view change by skipping the primary.
    if (k && !k.relayed && m.from === body.origin && this.normal && !this.isPrimary()) {
      k.relayed = true;
      this.send({ type: MsgType.PbftRequest, from: this.id, to: primaryOf(this.group, this.view), term: this.view, request: m.request });
    }
  }

  /** Records a verified request as known (pending); the primary queues it. Returns undefined when refused. */
  private noteRequest(body: RequestBody, bytes: Uint8Array, digest: Uint8Array, own: boolean): KnownRequest | undefined {
    if (this.isExecuted(body.origin, body.reqNo)) {
      // Done already, but a slot may still need the body to execute it (as a duplicate).
      this.attachBody(digest, body, bytes);
      if (!own) this.dropped.staleRequest++;
      return undefined;
    }
    const key = dkey(digest);
    let k = this.known.get(key);
    if (!k) {
      const count = this.knownPerOrigin.get(body.origin) ?? 0;
      const w = this.windows.get(body.origin);
      if (count >= DEDUP_WINDOW || (w && body.reqNo > w.top + 4 * REQ_BLOCK)) {
        this.dropped.staleRequest++;
        return undefined;
      }
      k = { body, bytes, digest, relayed: own };
      this.known.set(key, k);
      this.knownPerOrigin.set(body.origin, count + 1);
      this.attachBody(digest, body, bytes);
    }
    if (this.normal && this.isPrimary() && !this.queued.has(key) && !this.assigned.has(key)) {
      this.queued.add(key);
      this.queue.push(key);
      this.assign();
    }
    return k;
  }

  /** Requests of `origin` that the filter now calls done will never execute: they must not keep the view-change timer running. */
  private pruneKnown(origin: NodeId): void {
    for (const [key, k] of [...this.known]) if (k.body.origin === origin && this.isExecuted(origin, k.body.reqNo)) this.forgetKnown(key);
  }

  private forgetKnown(key: string): void {
    const k = this.known.get(key);
    if (!k) return;
    this.known.delete(key);
    const c = (this.knownPerOrigin.get(k.body.origin) ?? 1) - 1;
    if (c > 0) this.knownPerOrigin.set(k.body.origin, c);
    else this.knownPerOrigin.delete(k.body.origin);
  }

  /**
   * A body for slots that accepted its digest without one (NEW-VIEW re-proposals,
   * body-less re-sends). A backup prepares only requests it holds (so a committed
   * request is held by f + 1 honest replicas, who can hand it on): the PREPARE that
   * waited for the body leaves now.
   */
  private attachBody(digest: Uint8Array, body: RequestBody, bytes: Uint8Array): void {
    let found = false;
    for (const s of this.slots.values()) {
      if (s.body === undefined && s.ppDigest && bytesEqual(s.ppDigest, digest)) {
        found = true;
        s.body = body;
        s.bodyBytes = bytes;
        if (s.seq > this.executed) this.markDirty(s.seq);
        if (this.normal && s.ppView === this.view && !this.isPrimary() && this.inWindow(s.seq) && s.prepares.get(this.id)?.view !== this.view) this.sendPrepare(s);
      }
    }
    if (found) this.executeReady();
  }

  /** Bodies this replica lacks for requests it must prepare or execute: ask everyone (a few per period). */
  private fetchMissingBodies(): void {
    let asked = 0;
    for (const s of this.slots.values()) {
      if (asked >= 16) return;
      if (s.body !== undefined || !s.ppDigest || !this.inWindow(s.seq)) continue;
      if (!s.committed && !(this.normal && s.ppView === this.view)) continue;
      this.broadcast({ type: MsgType.PbftFetchRequest, from: this.id, to: 0, term: this.view, seq: s.seq, digest: s.ppDigest });
      asked++;
    }
  }

  private onFetchRequest(m: PbftFetchRequest): void {
    let bytes = this.known.get(dkey(m.digest))?.bytes;
    if (!bytes) {
      const s = this.slots.get(m.seq);
      if (s?.bodyBytes && s.ppDigest && bytesEqual(s.ppDigest, m.digest)) bytes = s.bodyBytes;
    }
    if (!bytes) return;
    const n = this.bodiesServed.get(m.from) ?? 0;
    if (n >= 32) return; // per requester and retransmission period
    this.bodiesServed.set(m.from, n + 1);
    this.send({ type: MsgType.PbftRequest, from: this.id, to: m.from, term: this.view, request: bytes });
  }

  // --- duplicate filter (per origin: newest executed request number and the 64 below it)

  private isExecuted(origin: NodeId, reqNo: number): boolean {
    const w = this.windows.get(origin);
    if (!w || reqNo > w.top) return false;
    const d = w.top - reqNo;
    if (d >= DEDUP_WINDOW) return true; // too old to tell: treated as done, never executed again
    return d < 32 ? ((w.lo >>> d) & 1) === 1 : ((w.hi >>> (d - 32)) & 1) === 1;
  }

  private markExecuted(origin: NodeId, reqNo: number): void {
    let w = this.windows.get(origin);
    if (!w) {
      w = { top: 0, lo: 0, hi: 0 };
      this.windows.set(origin, w);
    }
    if (reqNo > w.top) {
      const shift = reqNo - w.top;
      if (shift >= 64) {
        w.lo = 0;
        w.hi = 0;
      } else if (shift >= 32) {
        w.hi = shift === 32 ? w.lo : w.lo << (shift - 32);
        w.lo = 0;
      } else {
        w.hi = (w.hi << shift) | (w.lo >>> (32 - shift));
        w.lo = w.lo << shift;
      }
      w.top = reqNo;
      w.lo |= 1;
    } else {
      const d = w.top - reqNo;
      if (d < 32) w.lo |= 1 << d;
      else if (d < 64) w.hi |= 1 << (d - 32);
    }
  }

  // -------------------------------------------------------------------------
  // Primary: assigning sequence numbers

  private firstFreeSeq(): Index {
    let n = Math.max(this.executed, this.low);
    for (const [seq, s] of this.slots) if (s.ppDigest && s.ppView === this.view && seq > n) n = seq;
    return n + 1;
  }

  /** A primary starts its view with a null request: its execution issues the leadership token. */
  private startPrimary(): void {
    this.queue = [];
    this.queued.clear();
    this.noopSeq = 0;
    this.token = 0;
    if (this.nextSeq <= this.low + this.ticks.window) {
      this.noopSeq = this.nextSeq;
      this.prePrepare(this.nextSeq++, NULL_DIGEST, null, EMPTY);
    }
    for (const [key, k] of this.known) {
      if (this.isExecuted(k.body.origin, k.body.reqNo) || this.assigned.has(key)) continue;
      this.queued.add(key);
      this.queue.push(key);
    }
    this.assign();
  }

  private assign(): void {
    if (!this.normal || !this.isPrimary()) return;
    if (this.noopSeq === 0 && this.nextSeq <= this.low + this.ticks.window) {
      this.noopSeq = this.nextSeq;
      this.prePrepare(this.nextSeq++, NULL_DIGEST, null, EMPTY);
    }
    while (this.queue.length > 0 && this.nextSeq <= this.low + this.ticks.window) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      const k = this.known.get(key);
      if (!k || this.assigned.has(key) || this.isExecuted(k.body.origin, k.body.reqNo)) continue;
      this.prePrepare(this.nextSeq++, k.digest, k.body, k.bytes);
    }
  }

  private prePrepare(seq: Index, digest: Uint8Array, body: RequestBody | null, bytes: Uint8Array): void {
    const sig = this.auth.sign(ppSigned(this.view, seq, digest));
    const s = this.slotFor(seq);
    this.setPrePrepare(s, this.view, digest, sig, body, body ? bytes : undefined);
    s.sentAt = this.now;
    this.assigned.add(dkey(digest));
    this.broadcast({ type: MsgType.PbftPrePrepare, from: this.id, to: 0, term: this.view, seq, digest, sig, request: body ? bytes : EMPTY });
    this.checkPrepared(s);
  }

  // -------------------------------------------------------------------------
  // Normal case: backups

  private inWindow(seq: Index): boolean {
    return seq > this.low && seq <= this.low + this.ticks.window;
  }

  private onPrePrepare(m: PbftPrePrepare): void {
    if (!this.normal || m.term !== this.view) {
      this.dropped.wrongView++;
      return;
    }
    if (this.isPrimary()) {
      this.dropped.wrongRole++;
      return;
    }
    if (!this.inWindow(m.seq)) {
      this.dropped.outOfWindow++;
      return;
    }
    const s0 = this.slots.get(m.seq);
    const dup = s0 && s0.ppDigest && s0.ppView === this.view;
    if (dup && !bytesEqual(s0.ppDigest!, m.digest)) {
      this.dropped.conflict++;
      return;
    }
    if (s0?.committed && !bytesEqual(s0.committed.digest, m.digest)) {
      this.dropped.conflict++;
      return;
    }
    const needSig = !dup || s0!.ppSig.length === 0; // a slot learned from a commit certificate lacks the primary's signature
    if (needSig && !this.auth.verify(primaryOf(this.group, this.view), ppSigned(m.term, m.seq, m.digest), m.sig)) {
      this.dropped.badSignature++;
      return;
    }
    let body: RequestBody | null | undefined;
    let bytes: Uint8Array | undefined;
    if (isNullDigest(m.digest)) {
      if (m.request.length > 0) {
        this.dropped.malformed++;
        return;
      }
      body = null;
    } else if (m.request.length > 0) {
      const b = decodeRequest(m.request, this.lim);
      if (typeof b === 'string' || !this.group.members.includes(b.origin) || !bytesEqual(sha256(m.request), m.digest)) {
        this.dropped.malformed++;
        return;
      }
      if (!this.auth.verify(b.origin, requestSigned(b.origin, b.reqNo, b.kind, b.op), b.sig)) {
        this.dropped.badSignature++;
        return;
      }
      body = b;
      bytes = m.request;
    } else {
      const k = this.known.get(dkey(m.digest));
      if (k) {
        body = k.body;
        bytes = k.bytes;
      }
    }
    if (dup) {
      // A retransmitted PRE-PREPARE: the primary did not see enough progress. Answer
      // with this replica's own PREPARE and COMMIT again (they may have been lost).
      const s = s0!;
      if (s.ppSig.length === 0) {
        s.ppSig = m.sig;
        if (s.seq > this.executed) this.markDirty(s.seq);
        if (s.body !== undefined && s.prepares.get(this.id)?.view !== this.view) this.sendPrepare(s);
      }
      if (s.body === undefined && body !== undefined) {
        s.body = body;
        s.bodyBytes = bytes;
        if (s.seq > this.executed) this.markDirty(s.seq);
        this.executeReady();
      }
      const p = s.prepares.get(this.id);
      if (p && p.view === this.view) this.broadcast({ type: MsgType.PbftPrepare, from: this.id, to: 0, term: this.view, seq: s.seq, digest: p.digest, sig: p.sig });
      const c = s.commits.get(this.id);
      if (c && c.view === this.view) this.broadcast({ type: MsgType.PbftCommit, from: this.id, to: 0, term: this.view, seq: s.seq, digest: c.digest, sig: c.sig });
      return;
    }
    if (body) this.noteRequest(body, bytes!, m.digest, false);
    const s = this.slotFor(m.seq);
    this.setPrePrepare(s, this.view, m.digest, m.sig, body, bytes);
    if (s.body !== undefined) this.sendPrepare(s);
    else this.broadcast({ type: MsgType.PbftFetchRequest, from: this.id, to: 0, term: this.view, seq: s.seq, digest: m.digest });
  }

  /** Accepts a PRE-PREPARE into a slot: votes of other views and a body of another digest are dropped. */
  private setPrePrepare(s: Slot, view: Term, digest: Uint8Array, sig: Uint8Array, body: RequestBody | null | undefined, bytes: Uint8Array | undefined): void {
    const sameDigest = s.ppDigest !== undefined && bytesEqual(s.ppDigest, digest);
    if (!sameDigest) {
      if (body === undefined && !isNullDigest(digest)) {
        const k = this.known.get(dkey(digest));
        if (k) {
          body = k.body;
          bytes = k.bytes;
        }
      }
      s.body = isNullDigest(digest) ? null : body;
      s.bodyBytes = s.body ? bytes : undefined;
    } else if (s.body === undefined && body !== undefined) {
      s.body = body;
      s.bodyBytes = bytes;
    }
    if (s.ppView !== view) {
      for (const [r, v] of s.prepares) if (v.view !== view) s.prepares.delete(r);
      for (const [r, v] of s.commits) if (v.view !== view) s.commits.delete(r);
    }
    s.ppView = view;
    s.ppDigest = digest;
    s.ppSig = sig;
    if (s.seq > this.executed) this.markDirty(s.seq);
  }

  private sendPrepare(s: Slot): void {
    const sig = this.auth.sign(prepareSigned(this.view, s.seq, s.ppDigest!, this.id));
    s.prepares.set(this.id, { view: this.view, digest: s.ppDigest!, sig });
    this.broadcast({ type: MsgType.PbftPrepare, from: this.id, to: 0, term: this.view, seq: s.seq, digest: s.ppDigest!, sig });
    this.checkPrepared(s);
  }

  /** A PREPARE or COMMIT: one per replica and view counts; the primary's PREPARE never does. */
  private onVote(m: PbftPrepare | PbftCommit): void {
    if (!this.normal || m.term !== this.view) {
      this.dropped.wrongView++;
      return;
    }
    const prepare = m.type === MsgType.PbftPrepare;
    if (prepare && m.from === primaryOf(this.group, this.view)) {
      this.dropped.wrongRole++;
      return;
    }
    if (!this.inWindow(m.seq)) {
      this.dropped.outOfWindow++;
      return;
    }
    const s = this.slotFor(m.seq);
    const votes = prepare ? s.prepares : s.commits;
    const prev = votes.get(m.from);
    if (prev && prev.view === this.view) return;
    const content = prepare ? prepareSigned(m.term, m.seq, m.digest, m.from) : commitSigned(m.term, m.seq, m.digest, m.from);
    if (!this.auth.verify(m.from, content, m.sig)) {
      this.dropped.badSignature++;
      return;
    }
    votes.set(m.from, { view: m.term, digest: m.digest, sig: m.sig });
    if (prepare) this.checkPrepared(s);
    else this.checkCommitted(s);
  }

  /** Prepared: the PRE-PREPARE and q − 1 (= 2f) matching PREPAREs from backups, in this view. */
  private checkPrepared(s: Slot): void {
    if (!this.normal || !s.ppDigest || s.ppView !== this.view || s.ppSig.length === 0) return;
    if (s.cert && s.cert.view === this.view) return;
    const primary = primaryOf(this.group, this.view);
    const prepares: SigOf[] = [];
    for (const [r, v] of s.prepares) {
      if (r !== primary && v.view === this.view && bytesEqual(v.digest, s.ppDigest)) prepares.push({ replica: r, sig: v.sig });
    }
    if (prepares.length < this.group.q - 1) return;
    prepares.sort((a, b) => a.replica - b.replica);
    s.cert = { seq: s.seq, view: this.view, digest: s.ppDigest, ppSig: s.ppSig, prepares: prepares.slice(0, this.group.q - 1) };
    if (s.seq > this.executed) this.markDirty(s.seq);
    // COMMIT leaves with the Ready that makes the certificate durable.
    const sig = this.auth.sign(commitSigned(this.view, s.seq, s.ppDigest, this.id));
    s.commits.set(this.id, { view: this.view, digest: s.ppDigest, sig });
    this.broadcast({ type: MsgType.PbftCommit, from: this.id, to: 0, term: this.view, seq: s.seq, digest: s.ppDigest, sig });
    this.checkCommitted(s);
  }

  /** Committed-local: prepared in this view and q (= 2f + 1) matching COMMITs, own included. */
  private checkCommitted(s: Slot): void {
    if (s.committed || !s.cert || s.cert.view !== this.view || !s.ppDigest || s.ppView !== this.view) return;
    const sigs: SigOf[] = [];
    for (const [r, v] of s.commits) if (v.view === this.view && bytesEqual(v.digest, s.ppDigest)) sigs.push({ replica: r, sig: v.sig });
    const need = this.options.testingBugs.commitQuorumMinusOne ? this.group.q - 1 : this.group.q;
    if (sigs.length < need) return;
    sigs.sort((a, b) => a.replica - b.replica);
    s.committed = { view: this.view, digest: s.ppDigest, sigs: sigs.slice(0, this.group.q) };
    this.executeReady();
  }

  /** A commit certificate from a peer: 2f + 1 COMMITs prove the request committed at seq. */
  private onCommitted(m: PbftCommitted): void {
    if (m.seq <= this.executed) return;
    if (!this.inWindow(m.seq)) {
      this.dropped.outOfWindow++;
      return;
    }
    let body: RequestBody | null;
    let digest: Uint8Array;
    if (m.request.length === 0) {
      body = null;
      digest = NULL_DIGEST;
    } else {
      const b = decodeRequest(m.request, this.lim);
      if (typeof b === 'string' || !this.group.members.includes(b.origin)) {
        this.dropped.malformed++;
        return;
      }
      if (!this.auth.verify(b.origin, requestSigned(b.origin, b.reqNo, b.kind, b.op), b.sig)) {
        this.dropped.badSignature++;
        return;
      }
      body = b;
      digest = sha256(m.request);
    }
    const s0 = this.slots.get(m.seq);
    if (s0?.committed && s0.body !== undefined) return;
    const sigs = decodeSigList(m.commits, this.lim, 'commit certificate');
    if (typeof sigs === 'string') {
      this.dropped.malformed++;
      return;
    }
    const ok = this.countValid(sigs, (r) => commitSigned(m.term, m.seq, digest, r));
    if (ok.length < this.group.q) {
      this.dropped.badSignature++;
      return;
    }
    const s = this.slotFor(m.seq);
    if (s.committed && !bytesEqual(s.committed.digest, digest)) {
      this.dropped.conflict++; // two commit certificates for one seq: more than f faulty replicas
      return;
    }
    if (!s.ppDigest || !bytesEqual(s.ppDigest, digest)) {
      s.ppView = m.term;
      s.ppDigest = digest;
      s.ppSig = EMPTY;
    }
    s.body = body;
    s.bodyBytes = body ? m.request : undefined;
    s.committed = { view: m.term, digest, sigs: ok.slice(0, this.group.q) };
    this.markDirty(s.seq);
    this.executeReady();
  }

  /** The signatures of `sigs` from distinct members that verify (over content(replica)). */
  private countValid(sigs: readonly SigOf[], content: (replica: NodeId) => Uint8Array, exclude = NO_NODE): SigOf[] {
    const seen = new Set<NodeId>();
    const out: SigOf[] = [];
    for (const s of sigs) {
      if (seen.has(s.replica) || s.replica === exclude || !this.group.members.includes(s.replica)) continue;
      seen.add(s.replica);
      if (this.auth.verify(s.replica, content(s.replica), s.sig)) out.push(s);
    }
    return out;
  }

  // -------------------------------------------------------------------------
  // Execution

  private executeReady(): void {
    for (;;) {
      const s = this.slots.get(this.executed + 1);
      if (!s || !s.committed || s.body === undefined || !s.ppDigest || !bytesEqual(s.ppDigest, s.committed.digest)) return;
      const e = this.executeSlot(s, false);
      this.toApply.push(e);
    }
  }

  /** Executes the committed request at executed + 1 (replaying: while rebuilding after a restart). */
  private executeSlot(s: Slot, replaying: boolean): Entry {
    const seq = s.seq;
    this.executed = seq;
    const view = s.committed!.view;
    let entry: Entry;
    const b = s.body;
    if (!b) {
      entry = { term: view, index: seq, type: EntryType.Noop, data: EMPTY };
    } else {
      const fresh = !this.isExecuted(b.origin, b.reqNo);
      if (fresh) {
        const before = this.windows.get(b.origin)?.top ?? 0;
        this.markExecuted(b.origin, b.reqNo);
        if (b.reqNo - before > 0 && b.reqNo > DEDUP_WINDOW) this.pruneKnown(b.origin);
      }
      entry = { term: view, index: seq, type: fresh && b.kind === EntryType.Normal ? EntryType.Normal : EntryType.Noop, data: fresh && b.kind === EntryType.Normal ? b.op : EMPTY };
      this.forgetKnown(dkey(s.ppDigest!));
      this.history.set(seq, { origin: b.origin, reqNo: b.reqNo, digest: s.ppDigest! });
      this.history.delete(seq - 2 * this.ticks.window);
      if (!replaying && b.origin === this.id) this.settleOwn(b.reqNo, s.ppDigest!, fresh ? seq : 0);
    }
    if (seq % this.options.checkpointInterval === 0) this.ckptQueue.push({ seq, exec: encodeExecState(this.windows) });
    if (!replaying) {
      if (seq === this.noopSeq && this.normal && this.isPrimary() && s.committed!.view === this.view) this.token = seq;
      // Progress in normal operation: the view-change timer restarts, and the complaint
      // about this primary ends. The doubling ends only with a request executed in the
      // view that came out of the view change (TOCS §4.5.2: "before it executes a request
      // in the new view that it had not executed previously"): not with an old view's
      // certificate caught up on (COMMITTED), which says nothing about the new primary.
      // During a view change an execution changes no timer and withdraws no complaint:
      // the NEW-VIEW timer and the complaint about the view being installed stand.
      if (this.normal) {
        this.vcElapsed = 0;
        if (view === this.view) this.backoff = 0;
        // A request the gone primary had ordered before its connection died says nothing
        // about it now: the hint stays (a SIGTERMed primary's last slots still commit
        // among the backups, and clearing the hint on them put the view change back to
        // the full timeout: 4-15 s on real processes instead of one retransmission period).
        if (seq > this.suspectedUpTo && this.now - this.suspectedAt >= this.ticks.retransmit) this.primarySuspected = false;
        this.suspecting = false;
      }
    }
    return entry;
  }

  /** Resolves own proposals: the one executed at `index` (0 = as a duplicate: resolved earlier) and any the filter now calls too old. */
  private settleOwn(reqNo: number, digest: Uint8Array, index: Index): void {
    const own = this.mine.get(reqNo);
    if (own && bytesEqual(own.digest, digest)) {
      this.mine.delete(reqNo);
      if (index > 0) {
        if (own.ctx > 0) this.readStates.push({ ctx: own.ctx, index });
        else this.outcomes.push({ ref: reqNo, index });
      }
    }
    this.settleTooOld();
  }

  private settleTooOld(): void {
    for (const [r, own] of this.mine) {
      if (!this.isExecuted(this.id, r)) continue;
      // Executed per the filter but not seen executing here (a state transfer skipped
      // it, or it fell out of the window): the index is unknown, or it never will run.
      this.mine.delete(r);
      const w = this.windows.get(this.id)!;
      if (own.ctx > 0) this.failedReads.push(own.ctx);
      else if (w.top - r >= DEDUP_WINDOW) this.outcomes.push({ ref: r, index: 0 });
    }
  }

  // -------------------------------------------------------------------------
  // Checkpoints

  private recordCheckpointVote(replica: NodeId, seq: Index, digest: Uint8Array, sig: Uint8Array): void {
    let m = this.ckptVotes.get(replica);
    if (!m) {
      m = new Map();
      this.ckptVotes.set(replica, m);
    }
    m.set(seq, { view: 0, digest, sig });
    if (m.size > CKPTS_PER_REPLICA) {
      let min = Infinity;
      for (const k of m.keys()) if (k < min) min = k;
      m.delete(min);
    }
  }

  private onCheckpoint(m: PbftCheckpoint): void {
    // (m.replica may be this replica: its own signature from before a restart, relayed
    // back as part of a proof — the vote it needs to see that checkpoint stable again.)
    if (!this.group.members.includes(m.replica)) {
      this.dropped.notForMe++;
      return;
    }
    if (m.seq <= this.low || m.seq % this.options.checkpointInterval !== 0) {
      if (m.seq % this.options.checkpointInterval !== 0) this.dropped.malformed++;
      return;
    }
    const prev = this.ckptVotes.get(m.replica)?.get(m.seq);
    if (prev && bytesEqual(prev.digest, m.digest)) return;
    if (!this.auth.verify(m.replica, checkpointSigned(m.seq, m.digest, m.replica), m.sig)) {
      this.dropped.badSignature++;
      return;
    }
    this.recordCheckpointVote(m.replica, m.seq, m.digest, m.sig);
    this.checkStable(m.seq, m.digest);
  }

  /** q matching CHECKPOINTs for (seq, digest) make it stable (if this replica holds that state) or a target to fetch. */
  private checkStable(seq: Index, digest: Uint8Array): void {
    if (seq <= this.low) return;
    const proof: SigOf[] = [];
    for (const [r, votes] of this.ckptVotes) {
      const v = votes.get(seq);
      if (v && bytesEqual(v.digest, digest)) proof.push({ replica: r, sig: v.sig });
    }
    if (proof.length < this.group.q) return;
    proof.sort((a, b) => a.replica - b.replica);
    const proven: StableData = { seq, digest, proof: proof.slice(0, this.group.q) };
    const own = this.ownCkpts.get(seq);
    if (own && bytesEqual(own.digest, digest)) {
      this.makeStable({ ...proven, data: own.data, exec: own.exec });
    } else if (own) {
      // 2f + 1 replicas (f + 1 honest) signed another state: ours diverged. Fetch theirs.
      this.divergent++;
      this.ownCkpts.delete(seq);
      this.setTarget(proven, true);
    } else if (seq <= this.executed) {
      // Executed past it without holding its snapshot (a restart in between): the log
      // below it can go, but this replica cannot serve it — once its slots are written.
      // A replica that executed up to it in this same batch of steps (paused, then handed
      // the COMMITs and the CHECKPOINTs at once while a write was in flight) has not
      // written them yet; dropping them now left the next Ready's executed index beyond
      // the durable log, which storage refuses (the node stopped). Then its own
      // CHECKPOINT, signed once the runtime stored that state, makes it stable instead.
      if (this.durableThrough(seq)) this.makeStable(proven);
    } else {
      this.setTarget(proven, seq > this.low + this.ticks.window);
    }
  }

  private makeStable(st: StableData): void {
    this.low = st.seq;
    this.stable = st;
    for (const k of [...this.slots.keys()]) if (k <= st.seq) this.slots.delete(k);
    for (const k of [...this.ownCkpts.keys()]) if (k <= st.seq) this.ownCkpts.delete(k);
    for (const votes of this.ckptVotes.values()) for (const k of [...votes.keys()]) if (k <= st.seq) votes.delete(k);
    if (this.target && this.target.seq <= st.seq) this.target = undefined;
    if (this.vcDeferred && !this.normal) this.sendViewChange();
    this.assign();
  }

  private setTarget(st: StableData, now: boolean): void {
    if (!this.target || this.target.seq < st.seq) this.target = st;
    if (now) this.startFetch();
  }

  private maybeFetchState(): void {
    const t = this.target;
    if (t && t.seq > this.executed && this.executed === this.executedAtLastStatus && !this.fetch) this.startFetch();
    this.executedAtLastStatus = this.executed;
  }

  /** Asks a replica that signed the target checkpoint for it (rotating on each retry). */
  private startFetch(): void {
    const t = this.target;
    if (!t || t.seq <= this.executed) return;
    const peers = t.proof.map((p) => p.replica).filter((r) => r !== this.id);
    if (peers.length === 0) return;
    const tries = this.fetch && this.fetch.seq === t.seq ? this.fetch.tries + 1 : 0;
    const peer = peers[(tries + this.rng.int(0, peers.length - 1)) % peers.length]!;
    this.fetch = { seq: t.seq, peer, tries, sentAt: this.now };
    this.incoming = undefined;
    this.send({ type: MsgType.PbftFetchState, from: this.id, to: peer, term: this.view, seq: t.seq });
  }

  private onFetchState(m: PbftFetchState): void {
    const st = this.stable;
    if (!st.data || !st.exec || st.seq < m.seq) return;
    const last = this.lastServed.get(m.from);
    if (last !== undefined && this.now - last < this.ticks.retransmit) return; // one transfer per requester per period
    this.lastServed.set(m.from, this.now);
    const proof = encodeSigList(st.proof);
    const cb = this.ticks.stateChunkBytes;
    const total = st.data.length;
    for (let off = 0; off < total || off === 0; off += cb) {
      this.send({ type: MsgType.PbftState, from: this.id, to: m.from, term: this.view, seq: st.seq, proof, exec: st.exec, offset: off, total, data: st.data.subarray(off, Math.min(off + cb, total)) });
      if (total === 0) break;
    }
  }

  private onState(m: PbftState): void {
    const f = this.fetch;
    if (!f || m.from !== f.peer || m.seq <= this.executed || m.seq < f.seq) return;
    let inc = this.incoming;
    if (!inc || inc.seq !== m.seq || inc.total !== m.total || !bytesEqual(inc.proof, m.proof) || !bytesEqual(inc.exec, m.exec)) {
      inc = this.incoming = { from: m.from, seq: m.seq, total: m.total, proof: m.proof, exec: m.exec, parts: new Map(), received: 0 };
    }
    if (!inc.parts.has(m.offset)) {
      inc.parts.set(m.offset, m.data);
      inc.received += m.data.length;
    }
    if (inc.received < inc.total) return;
    this.incoming = undefined;
    const data = new Uint8Array(inc.total);
    let p = 0;
    for (const off of [...inc.parts.keys()].sort((a, b) => a - b)) {
      const part = inc.parts.get(off)!;
      if (off !== p) {
        this.dropped.malformed++;
        return;
      }
      data.set(part, p);
      p += part.length;
    }
    const digest = checkpointDigest(inc.seq, data, inc.exec);
    const sigs = decodeSigList(inc.proof, this.lim, 'checkpoint proof');
    const windows = decodeExecState(inc.exec);
    if (typeof sigs === 'string' || typeof windows === 'string') {
      this.dropped.malformed++;
      return;
    }
    const proof = this.countValid(sigs, (r) => checkpointSigned(inc.seq, digest, r));
    if (proof.length < this.group.q) {
      this.dropped.badSignature++;
      return;
    }
    this.installState({ seq: inc.seq, digest, proof: proof.slice(0, this.group.q), data, exec: inc.exec }, windows);
  }

  /** State transfer: the checkpoint replaces everything up to its sequence number. */
  private installState(st: StableData, windows: Map<NodeId, OriginWindow>): void {
    this.stateTransfers++;
    this.fetch = undefined;
    this.executed = st.seq;
    this.windows = windows;
    this.snapIndex = st.seq;
    this.toApply = [];
    this.ckptQueue = [];
    this.ckptWanted = undefined;
    this.ownCkpts.clear();
    // What executed here before the jump stays true (a Ready handed out before it may
    // still be applying those entries, and their replies need it); only the old part goes.
    for (const k of [...this.history.keys()]) if (k <= st.seq - 2 * this.ticks.window) this.history.delete(k);
    this.makeStable(st);
    this.installing = {
      meta: {
        index: st.seq, term: this.view, config: { voters: [...this.config.voters], learners: [], witnesses: [] },
        engine: encodeEngineMeta({ exec: st.exec!, stable: st.seq, stableDigest: st.digest, proof: st.proof, certs: [] }),
      },
      data: st.data!,
    };
    // The runtime discards its whole durable log with the snapshot: every slot above it is written again.
    this.dirtyFrom = st.seq + 1;
    this.durableEnd = st.seq;
    for (const [key, k] of [...this.known]) if (this.isExecuted(k.body.origin, k.body.reqNo)) this.forgetKnown(key);
    this.settleTooOld();
    this.vcElapsed = 0;
    this.executeReady();
  }

  // -------------------------------------------------------------------------
  // View change

  private startViewChange(target: Term): void {
    if (target <= this.view) return;
    this.view = target;
    this.normal = false;
    this.viewChanges++;
    this.backoff++;
    this.vcElapsed = 0;
    this.nvTimer = undefined;
    this.primarySuspected = false;
    this.suspecting = false;
    this.suspects.clear();
    this.pendingNV = undefined;
    this.assigned.clear();
    this.queue = [];
    this.queued.clear();
    this.curNV = undefined;
    this.token = 0;
    this.noopSeq = 0;
    this.sendViewChange();
    this.processViewChanges();
  }

  // -------------------------------------------------------------------------
  // Suspicion
  //
  // The paper's backup whose timer expires sends VIEW-CHANGE for v + 1 at once and
  // stops taking part in view v (§4.4). Alone, that is final: the other 2f + 1 go on in
  // view v (they need f + 1 VIEW-CHANGEs to follow, §4.5.2), and the replica is out of
  // every quorum until the next view change — with one liar among the rest, the liar
  // alone then decides whether view v makes progress (found on real processes: one
  // timeout at start-up on a loaded machine). It cannot simply go back to view v: its
  // VIEW-CHANGE for v + 1 is signed and out there, and if it prepared more requests in
  // view v, a NEW-VIEW for v + 1 built from that stale VIEW-CHANGE, f liars and f
  // honest replicas that did not prepare them would drop a committed request.
  // So the timer's expiry is split in two, as in the SUSPECT message proposed for
  // Fabric's PBFT (hyperledger fabric issue 1120) and concord-bft's complaints: the
  // replica first complains (SUSPECT, resent every retransmission period while its
  // timer stays expired) and keeps working in view v; only when f + 1 other
  // replicas complain or sent a VIEW-CHANGE for a later view — at least one of them
  // honest, the paper's own threshold for joining a view change — does it send its
  // VIEW-CHANGE. Execution of a request clears the complaint. A complaint says nothing
  // about prepared requests, so it is never a safety matter, and f liars complaining
  // cannot change the view on their own (paper §4.5.2's third point holds).
  // Complaints older than three retransmission periods no longer count.
  //
  // The same holds for the NEW-VIEW timer (TOCS §4.5.2: a replica that holds 2f + 1
  // VIEW-CHANGEs for v starts a timer, and if no valid NEW-VIEW(v) arrives in time it
  // starts the view change to v + 1, waiting twice as long). Alone, that move strands
  // the replica just like the normal-mode one: found by `quorumd sim` (pbft seed 46, 5
  // nodes) — n2 restarted while the others changed to view 4, whose primary n5 was
  // down; n2's timer ran out first (timers start when each replica reaches 2f + 1
  // VIEW-CHANGEs, so they never expire together) and it moved to view 5 alone; n5 came
  // back and the others installed NEW-VIEW(4). One VIEW-CHANGE(5) pulls nobody forward
  // (f + 1 are needed, §4.5.2), and a replica in a higher view is not handed a lower
  // NEW-VIEW — nor could it take one: its VIEW-CHANGE(5) is signed and out there without
  // the certificates it would prepare back in view 4. So an expired NEW-VIEW timer is a
  // complaint about v too (SUSPECT for v, sent in the view change), and a replica in
  // the view change to v counts complaints about v and VIEW-CHANGEs for later views as
  // in v's normal mode: f + 1 of them (one honest at least; other replicas' only, see
  // below) move it to v + 1; until then it keeps asking for v's NEW-VIEW (STATUS), which
  // a replica that installed v relays. Safety is untouched: leaving a view later never
  // is a safety matter (the VIEW-CHANGE it sends then is as complete as ever), and a
  // complaint carries no certificates. Liveness: if no honest replica ever installs v,
  // every honest replica reaches v (the f + 1 rule pulls them) and, the network being
  // timely, holds their 2f + 1 VIEW-CHANGEs for v (each is retransmitted), so all of
  // them complain once their timers expire — each hears 2f ≥ f + 1 others — and all
  // move to v + 1; if one installed v, the others get its NEW-VIEW through STATUS. f
  // liars complaining still move no one.
  //
  // Whose complaints count: other replicas' only — f + 1 of them, the paper's own
  // threshold for joining a view change (§4.5.2: f + 1 VIEW-CHANGEs "from other
  // replicas"). A replica's own expired timer is a message to the others, not a vote of
  // its own. Counting itself, a replica whose timer expired left the view on a single
  // other complaint: a liar's (one liar could then strand any honest replica that fell
  // behind), or an honest one withdrawn a moment later — `quorumd sim` pbft seed 188 (5
  // nodes): n4 complained once and executed again 50 ms later; n5, cut off from progress
  // for a second, counted that complaint (60 ticks old, the last tick it still counts)
  // with its own and went to view 1 alone, for good. Liveness keeps: with a faulty
  // primary every honest replica hears the 2f other honest ones complain, and 2f ≥ f + 1
  // (n ≥ 4); an honest primary that makes no progress runs no timer but moves on its
  // backups' complaints, and its VIEW-CHANGE then counts at each of them.
  // What complaints still do not rule out (in either mode): a replica moves on f + 1
  // other replicas' complaints even if their authors then make progress (execute, or
  // install the NEW-VIEW) before they hear each other, and may be left ahead alone. That
  // takes messages crossing within a delay at f + 1 replicas at once; under the paper's
  // rule the first timer to expire was enough.
  // A complaint is not signed: it is never forwarded or shown to a third replica, so,
  // like the messages the paper authenticates with MACs on point-to-point channels
  // (TOCS §3), the authenticated channel is enough — the per-sender frame key and its
  // replay window (daemon/runtime/pbft-host.ts) stop a liar from complaining in another
  // replica's name or replaying an old complaint. A cluster-key thief could fake them,
  // and then force needless view changes: liveness only, never safety.

  private suspect(): void {
    if (!this.suspecting) {
      this.suspecting = true;
      this.suspicions++;
      this.broadcast({ type: MsgType.PbftSuspect, from: this.id, to: 0, term: this.view });
    }
    if (this.suspectCount() >= this.group.f + 1) this.startViewChange(this.view + 1);
  }

  private onSuspect(m: PbftSuspect): void {
    // In view v's normal mode or in the view change to v alike: the sender wants to leave v.
    if (m.term !== this.view) return;
    this.suspects.set(m.from, this.now);
    if (this.suspectCount() >= this.group.f + 1) this.startViewChange(this.view + 1);
  }

  /** Other replicas that want to leave the current view: fresh complaints, VIEW-CHANGEs for later views (our own complaint is not counted: see "Suspicion"). */
  private suspectCount(): number {
    const who = new Set<NodeId>();
    const fresh = this.ticks.retransmit * 3;
    for (const [r, t] of this.suspects) {
      if (this.now - t <= fresh) who.add(r);
      else this.suspects.delete(r);
    }
    for (const [r, list] of this.vcs) if (r !== this.id && list.some((v) => v.body.newView > this.view)) who.add(r);
    return who.size;
  }

  /**
   * A view change that found no quorum for a whole timeout, while another replica
   * already asks for a higher view: join the smallest such view. The paper's rules
   * (timer only after 2f + 1 VIEW-CHANGEs, join only with f + 1 ahead) can deadlock
   * when a replica restarted after moving on (its older VIEW-CHANGE is gone) and a
   * Byzantine one stays silent: two honest replicas wait in view v for a third
   * message that never comes, the third waits alone in v + 1. Moving forward is always
   * safe; views cannot run away, since a jump needs someone already there.
   */
  private joinHigherView(): void {
    this.vcElapsed = 0;
    let target = Infinity;
    for (const [r, list] of this.vcs) {
      if (r === this.id) continue;
      for (const v of list) if (v.body.newView > this.view && v.body.newView < target) target = v.body.newView;
    }
    if (target !== Infinity) this.startViewChange(target);
  }

  /**
   * Builds, signs, records and sends this replica's VIEW-CHANGE for the current (target)
   * view — unless it holds a prepared certificate beyond its proven window (stable + L).
   * That happens after a restart from a snapshot taken before its checkpoint became
   * stable: the proof stored with it is older, the low water mark comes back lower than
   * it was. A VIEW-CHANGE can only carry certificates within stable + L, and leaving one
   * out would let a NEW-VIEW re-use a committed sequence number (the sweep found exactly
   * that). So the VIEW-CHANGE waits until a peer hands over a newer checkpoint proof
   * (answering our STATUS); makeStable() sends it then.
   */
  private sendViewChange(): void {
    const certs: PreparedCert[] = [];
    this.vcDeferred = false;
    for (const [seq, s] of this.slots) {
      if (seq <= this.low || !s.cert) continue;
      if (seq > this.low + this.ticks.window) {
        this.vcDeferred = true;
        this.deferredViewChanges++;
        return;
      }
      certs.push(s.cert);
    }
    certs.sort((a, b) => a.seq - b.seq);
    const body: ViewChangeBody = { newView: this.view, replica: this.id, stable: this.stable.seq, stableDigest: this.stable.digest, proof: this.stable.proof, certs };
    const payload = encodeViewChange(body);
    const sig = this.auth.sign(payload);
    const local = this.vcs.get(this.id)?.filter((v) => !(v.local && v.body.newView === this.view));
    if (local) this.vcs.set(this.id, local);
    this.storeViewChange({ body, payload, sig, digest: sha256(payload), valid: true, local: true });
    this.broadcast({ type: MsgType.PbftViewChange, from: this.id, to: 0, term: this.view, payload, sig });
  }

  private ownViewChange(): StoredVC | undefined {
    return this.vcs.get(this.id)?.find((v) => v.local && v.body.newView === this.view);
  }

  /**
   * Keeps a VIEW-CHANGE: several per replica (by digest: a restarted replica may have
   * sent two for one view, a NEW-VIEW names the one it used), the newest few views.
   */
  private storeViewChange(vc: StoredVC): void {
    let list = this.vcs.get(vc.body.replica);
    if (!list) {
      list = [];
      this.vcs.set(vc.body.replica, list);
    }
    if (list.some((x) => bytesEqual(x.digest, vc.digest))) return;
    list.push(vc);
    list.sort((a, b) => a.body.newView - b.body.newView);
    while (list.length > VCS_PER_REPLICA) list.splice(list.findIndex((x) => !x.local) >= 0 ? list.findIndex((x) => !x.local) : 0, 1);
  }

  private pruneViewChanges(): void {
    for (const [r, list] of this.vcs) {
      const keep = list.filter((v) => v.body.newView >= this.view || (r === this.id && v.local));
      if (keep.length > 0) this.vcs.set(r, keep);
      else this.vcs.delete(r);
    }
  }

  /** A stored VIEW-CHANGE of `replica` for `view` (the one with `digest`, if given; else the local one first). */
  private vcOf(replica: NodeId, view: Term, digest?: Uint8Array): StoredVC | undefined {
    const list = this.vcs.get(replica);
    if (!list) return undefined;
    if (digest) return list.find((v) => v.body.newView === view && bytesEqual(v.digest, digest));
    return list.find((v) => v.body.newView === view && v.local) ?? list.find((v) => v.body.newView === view);
  }

  private onViewChange(m: PbftViewChange): void {
    const body = decodeViewChange(m.payload, this.lim);
    if (typeof body === 'string' || body.newView !== m.term || !this.group.members.includes(body.replica) || body.newView > this.view + MAX_VIEW_JUMP) {
      this.dropped.malformed++;
      return;
    }
    const digest = sha256(m.payload);
    if (this.vcOf(body.replica, body.newView, digest)) {
      if (body.replica !== this.id) this.afterViewChange(m, body);
      return;
    }
    if (!this.auth.verify(body.replica, m.payload, m.sig)) {
      this.dropped.badSignature++;
      return;
    }
    if (body.newView < this.view || (body.newView === this.view && this.normal)) return;
    // Our own, from an earlier incarnation, comes back with a NEW-VIEW that names it: keep it (not as the one we retransmit).
    this.storeViewChange({ body, payload: m.payload, sig: m.sig, digest });
    if (body.replica === this.id) {
      this.processViewChanges();
      return;
    }
    this.afterViewChange(m, body);
  }

  private afterViewChange(m: PbftViewChange, body: ViewChangeBody): void {
    void m;
    // (A replica still asking for a view we installed gets our NEW-VIEW in answer to its
    // STATUS, not to this: VIEW-CHANGEs are also forwarded with a NEW-VIEW, and answering
    // those would make two replicas relay to each other forever.)
    if (body.newView < this.view || (body.newView === this.view && this.normal)) return;
    if (body.replica === this.id) return;
    // f + 1 replicas want a higher view: at least one is honest, join (paper §4.5.2).
    const higher = new Map<NodeId, Term>();
    for (const [r, list] of this.vcs) {
      if (r === this.id) continue;
      for (const v of list) if (v.body.newView > this.view) { higher.set(r, Math.min(higher.get(r) ?? Infinity, v.body.newView)); }
    }
    if (higher.size < this.group.f + 1 && this.suspectCount() >= this.group.f + 1) {
      // Complaints and VIEW-CHANGEs together: f + 1 replicas want to leave this view
      // (in its normal mode or in the view change to it).
      this.startViewChange(this.view + 1);
      return;
    }
    if (higher.size >= this.group.f + 1) {
      // At least one of them is honest, so a view change is due; go to the smallest
      // view in the set (paper §4.5.2), each replica counted by its lowest one.
      let target = Infinity;
      for (const v of higher.values()) if (v < target) target = v;
      this.startViewChange(target);
      return;
    }
    this.processViewChanges();
  }

  /** In a view change: start the NEW-VIEW timer at q VIEW-CHANGEs, build the NEW-VIEW if primary, finish a waiting one. */
  private processViewChanges(): void {
    if (this.normal) return;
    const v = this.view;
    let count = 0;
    for (const list of this.vcs.values()) if (list.some((x) => x.body.newView === v)) count++;
    if (count >= this.group.q && this.nvTimer === undefined) this.nvTimer = 0;
    if (this.pendingNV && this.pendingNV.view >= v) {
      const p = this.pendingNV;
      this.tryNewView(p.body, p.payload, p.sig);
      if (this.normal) return;
    }
    if (primaryOf(this.group, v) === this.id && this.nvSentFor < v && count >= this.group.q) this.buildNewView();
  }

  /** Deep check of a VIEW-CHANGE: its checkpoint proof and every prepared certificate (cached). */
  private validViewChange(vc: StoredVC): boolean {
    if (vc.valid !== undefined) return vc.valid;
    vc.valid = this.checkViewChange(vc.body);
    return vc.valid;
  }

  private checkViewChange(b: ViewChangeBody): boolean {
    if (b.stable === 0) {
      if (b.proof.length !== 0 || !isNullDigest(b.stableDigest)) return false;
    } else {
      if (b.stable % this.options.checkpointInterval !== 0) return false;
      if (this.countValid(b.proof, (r) => checkpointSigned(b.stable, b.stableDigest, r)).length < this.group.q) return false;
    }
    let last = b.stable;
    for (const c of b.certs) {
      if (c.seq <= last || c.seq > b.stable + this.ticks.window || c.view >= b.newView) return false;
      last = c.seq;
      const p = primaryOf(this.group, c.view);
      if (!this.auth.verify(p, ppSigned(c.view, c.seq, c.digest), c.ppSig)) return false;
      if (this.countValid(c.prepares, (r) => prepareSigned(c.view, c.seq, c.digest, r), p).length < this.group.q - 1) return false;
    }
    return true;
  }

  /**
   * O from a set of VIEW-CHANGEs (paper §4.4): min-s = the highest stable checkpoint
   * among them, max-s = the highest certificate's sequence number; for each n in
   * (min-s, max-s] the digest of the highest-view certificate for n, or the null
   * request. Deterministic (equal digests in equal views are the same request; the
   * smaller digest breaks an impossible tie the same way everywhere).
   */
  private computeO(vcs: readonly StoredVC[]): { minS: Index; minSFrom: StoredVC; maxS: Index; entries: Array<{ seq: Index; digest: Uint8Array }> } {
    let minSFrom = vcs[0]!;
    for (const v of vcs) if (v.body.stable > minSFrom.body.stable) minSFrom = v;
    const minS = minSFrom.body.stable;
    let maxS = minS;
    const best = new Map<Index, PreparedCert>();
    for (const v of vcs) {
      for (const c of v.body.certs) {
        if (c.seq <= minS) continue;
        if (c.seq > maxS) maxS = c.seq;
        const b = best.get(c.seq);
        if (!b || c.view > b.view || (c.view === b.view && compareBytes(c.digest, b.digest) < 0)) best.set(c.seq, c);
      }
    }
    const entries: Array<{ seq: Index; digest: Uint8Array }> = [];
    const drop = this.options.testingBugs.viewChangeDropsPrepared === true;
    for (let n = minS + 1; n <= maxS; n++) {
      const c = best.get(n);
      entries.push({ seq: n, digest: c && !drop ? c.digest : NULL_DIGEST });
    }
    return { minS, minSFrom, maxS, entries };
  }

  private buildNewView(): void {
    const v = this.view;
    const chosen: StoredVC[] = [];
    const own = this.ownViewChange();
    if (!own) return;
    chosen.push(own);
    for (const [r, list] of this.vcs) {
      if (r === this.id || chosen.length >= this.group.q) continue;
      const vc = list.find((x) => x.body.newView === v);
      if (vc && this.validViewChange(vc)) chosen.push(vc);
    }
    if (chosen.length < this.group.q) return;
    chosen.sort((a, b) => a.body.replica - b.body.replica);
    const o = this.computeO(chosen);
    const pps = o.entries.map((e) => ({ seq: e.seq, digest: e.digest, sig: this.auth.sign(ppSigned(v, e.seq, e.digest)) }));
    const body: NewViewBody = { view: v, vcs: chosen.map((c) => ({ replica: c.body.replica, digest: c.digest })), pps };
    const payload = encodeNewView(body);
    const sig = this.auth.sign(payload);
    this.nvSentFor = v;
    this.broadcast({ type: MsgType.PbftNewView, from: this.id, to: 0, term: v, payload, sig });
    // The backups need the VIEW-CHANGEs the NEW-VIEW names; they may have missed some.
    for (const to of this.group.members) {
      if (to === this.id) continue;
      for (const c of chosen) if (c.body.replica !== to) this.send({ type: MsgType.PbftViewChange, from: this.id, to, term: v, payload: c.payload, sig: c.sig });
    }
    this.installNewView(body, payload, sig, chosen, o);
  }

  private onNewView(m: PbftNewView): void {
    const body = decodeNewView(m.payload, this.lim);
    if (typeof body === 'string' || body.view !== m.term || body.view > this.view + MAX_VIEW_JUMP) {
      this.dropped.malformed++;
      return;
    }
    if (body.view < this.view || (body.view === this.view && this.normal)) return;
    if (!this.auth.verify(primaryOf(this.group, body.view), m.payload, m.sig)) {
      this.dropped.badSignature++;
      return;
    }
    this.tryNewView(body, m.payload, m.sig);
  }

  /** Checks a signed NEW-VIEW against its VIEW-CHANGEs and installs it; waits if some are missing. */
  private tryNewView(body: NewViewBody, payload: Uint8Array, sig: Uint8Array): void {
    const v = body.view;
    if (v < this.view || (v === this.view && this.normal)) return;
    if (body.vcs.length !== this.group.q) {
      this.dropped.badNewView++;
      return;
    }
    const chosen: StoredVC[] = [];
    const seen = new Set<NodeId>();
    let missing = false;
    for (const ref of body.vcs) {
      if (seen.has(ref.replica) || !this.group.members.includes(ref.replica)) {
        this.dropped.badNewView++;
        return;
      }
      seen.add(ref.replica);
      const vc = this.vcOf(ref.replica, v, ref.digest);
      if (!vc) {
        missing = true;
        continue;
      }
      if (!this.validViewChange(vc)) {
        this.dropped.badNewView++;
        return;
      }
      chosen.push(vc);
    }
    if (missing) {
      this.pendingNV = { view: v, body, payload, sig };
      return;
    }
    const o = this.computeO(chosen);
    if (o.entries.length !== body.pps.length) {
      this.dropped.badNewView++;
      return;
    }
    const primary = primaryOf(this.group, v);
    for (let i = 0; i < o.entries.length; i++) {
      const want = o.entries[i]!;
      const got = body.pps[i]!;
      if (got.seq !== want.seq || !bytesEqual(got.digest, want.digest) || !this.auth.verify(primary, ppSigned(v, got.seq, got.digest), got.sig)) {
        this.dropped.badNewView++;
        return;
      }
    }
    if (v > this.view) {
      // A valid NEW-VIEW of a later view: 2f + 1 replicas moved there; follow.
      this.view = v;
      this.viewChanges++;
    }
    this.installNewView(body, payload, sig, chosen, o);
  }

  private installNewView(body: NewViewBody, payload: Uint8Array, sig: Uint8Array, chosen: StoredVC[], o: ReturnType<PbftNode['computeO']>): void {
    const v = body.view;
    this.view = v;
    this.normal = true;
    this.vcDeferred = false;
    this.nvTimer = undefined;
    this.vcElapsed = 0;
    this.pendingNV = undefined;
    this.suspecting = false;
    this.suspects.clear();
    this.curNV = { msg: { payload, sig }, vcs: chosen };
    this.assigned.clear();
    this.queue = [];
    this.queued.clear();
    this.pruneViewChanges();
    // The checkpoint min-s is stable (2f + 1 signed it); take it as the low water mark
    // if this replica holds that state, else fetch it.
    if (o.minS > this.low) {
      const from = o.minSFrom.body;
      const st: StableData = { seq: o.minS, digest: from.stableDigest, proof: from.proof };
      const own = this.ownCkpts.get(o.minS);
      if (own && bytesEqual(own.digest, st.digest)) this.makeStable({ ...st, data: own.data, exec: own.exec });
      else if (o.minS <= this.executed && !own) {
        // As in checkStable: only once the slots up to it are written; until then its
        // proof waits among the CHECKPOINT votes, for this replica's own checkpoint.
        if (this.durableThrough(o.minS)) this.makeStable(st);
        else for (const p of st.proof) this.recordCheckpointVote(p.replica, st.seq, st.digest, p.sig);
      } else this.setTarget(st, true);
    }
    const primary = this.isPrimary();
    for (const e of body.pps) {
      if (e.seq <= this.low) continue;
      const s = this.slotFor(e.seq);
      if (s.committed && !bytesEqual(s.committed.digest, e.digest)) {
        // Impossible with at most f faulty replicas (a committed request is in every valid O).
        this.dropped.conflict++;
        continue;
      }
      this.setPrePrepare(s, v, e.digest, e.sig, undefined, undefined);
      this.assigned.add(dkey(e.digest));
      if (!primary) {
        if (this.inWindow(e.seq) && s.body !== undefined) this.sendPrepare(s);
      } else if (s.body) {
        // The backups may lack the request: send the PRE-PREPARE again with it.
        this.broadcast({ type: MsgType.PbftPrePrepare, from: this.id, to: 0, term: v, seq: e.seq, digest: e.digest, sig: e.sig, request: s.bodyBytes ?? EMPTY });
      }
    }
    // PRE-PREPAREs of older views above max-s are void in the new view (their requests are re-proposed).
    for (const s of this.slots.values()) {
      if (s.seq > o.maxS && s.ppDigest && s.ppView < v && !s.committed) {
        s.ppDigest = undefined;
        s.ppSig = EMPTY;
        s.body = undefined;
        s.bodyBytes = undefined;
        if (s.seq > this.executed) this.markDirty(s.seq);
      }
    }
    this.nextSeq = Math.max(this.firstFreeSeq(), o.maxS + 1);
    if (primary) this.startPrimary();
    this.executeReady();
  }

  /** Sends our NEW-VIEW and its VIEW-CHANGEs to a replica that is behind (at most once per retransmission period per replica). */
  private relayNewView(to: NodeId): void {
    if (!this.normal || !this.curNV) return;
    const last = this.lastRelayed.get(to);
    if (last !== undefined && this.now - last < this.ticks.retransmit) return;
    this.lastRelayed.set(to, this.now);
    const v = this.view;
    this.send({ type: MsgType.PbftNewView, from: this.id, to, term: v, payload: this.curNV.msg.payload, sig: this.curNV.msg.sig });
    // All of them, the recipient's own too: it may have restarted and lost the one V names.
    for (const c of this.curNV.vcs) this.send({ type: MsgType.PbftViewChange, from: this.id, to, term: v, payload: c.payload, sig: c.sig });
  }

  // -------------------------------------------------------------------------
  // Retransmission and status

  private retransmit(): void {
    this.bodiesServed.clear();
    this.fetchMissingBodies();
    // Own requests not executed yet: to everyone (paper §4.1: the client multicasts on a timeout).
    for (const own of this.mine.values()) {
      if (this.now - own.sentAt < this.ticks.retransmit) continue;
      own.sentAt = this.now;
      this.broadcast({ type: MsgType.PbftRequest, from: this.id, to: 0, term: this.view, request: own.bytes });
    }
    if (this.normal && this.isPrimary()) {
      for (const s of this.slots.values()) {
        if (s.seq > this.executed && s.ppDigest && s.ppView === this.view && s.ppSig.length > 0 && !s.committed && this.now - s.sentAt >= this.ticks.retransmit) {
          s.sentAt = this.now;
          this.broadcast({ type: MsgType.PbftPrePrepare, from: this.id, to: 0, term: this.view, seq: s.seq, digest: s.ppDigest, sig: s.ppSig, request: s.bodyBytes ?? EMPTY });
        }
      }
    }
    if (this.suspecting) this.broadcast({ type: MsgType.PbftSuspect, from: this.id, to: 0, term: this.view });
    if (!this.normal) {
      const own = this.ownViewChange();
      if (own) this.broadcast({ type: MsgType.PbftViewChange, from: this.id, to: 0, term: this.view, payload: own.payload, sig: own.sig });
      // A replica that already installed this view (or a later one) answers with its NEW-VIEW.
      this.sendStatus();
    }
    if (this.fetch && this.now - this.fetch.sentAt >= this.ticks.retransmit * 2) this.startFetch();
  }

  private sendStatus(): void {
    this.broadcast({ type: MsgType.PbftStatus, from: this.id, to: 0, term: this.view, normal: this.normal, executed: this.executed, stable: this.low });
    // Our CHECKPOINTs that are not stable yet: a lost one (or a peer's restart) would
    // otherwise leave the checkpoint a vote short for good, and the window full.
    for (const [seq, c] of this.ownCkpts) {
      if (seq > this.low) this.broadcast({ type: MsgType.PbftCheckpoint, from: this.id, to: 0, term: this.view, replica: this.id, seq, digest: c.digest, sig: c.sig });
    }
  }

  /** A peer's progress report: give it what it lacks (NEW-VIEW, our VIEW-CHANGE, checkpoint proof, commit certificates). */
  private onStatus(m: PbftStatus): void {
    if (this.normal && this.view > 0 && (m.term < this.view || (m.term === this.view && !m.normal))) this.relayNewView(m.from);
    if (!m.normal) {
      // It is changing to view m.term: our VIEW-CHANGE for that view (kept after we
      // moved on) may be what it lacks for a quorum, and our current one lets the
      // f + 1 rule pull it along.
      const old = this.vcOf(this.id, m.term);
      if (old) this.send({ type: MsgType.PbftViewChange, from: this.id, to: m.from, term: m.term, payload: old.payload, sig: old.sig });
      const own = !this.normal && m.term < this.view ? this.ownViewChange() : undefined;
      if (own) this.send({ type: MsgType.PbftViewChange, from: this.id, to: m.from, term: this.view, payload: own.payload, sig: own.sig });
    }
    if (m.stable < this.low || m.executed < this.low) {
      for (const p of this.stable.proof) {
        this.send({ type: MsgType.PbftCheckpoint, from: this.id, to: m.from, term: this.view, replica: p.replica, seq: this.stable.seq, digest: this.stable.digest, sig: p.sig });
      }
    }
    if (m.executed < this.executed) {
      let sent = 0;
      for (let i = Math.max(m.executed, this.low) + 1; i <= this.executed && sent < CATCH_UP_PER_STATUS; i++) {
        const s = this.slots.get(i);
        if (!s || !s.committed || s.committed.sigs.length < this.group.q || s.body === undefined) continue;
        this.send({ type: MsgType.PbftCommitted, from: this.id, to: m.from, term: s.committed.view, seq: i, request: s.body ? s.bodyBytes ?? EMPTY : EMPTY, commits: encodeSigList(s.committed.sigs) });
        sent++;
      }
    }
  }

  // -------------------------------------------------------------------------
  // Slots and persistence

  private newSlot(seq: Index): Slot {
    return {
      seq, ppView: 0, ppDigest: undefined, ppSig: EMPTY, body: undefined, bodyBytes: undefined, cert: undefined, prepares: new Map(), commits: new Map(), committed: undefined,
      sentAt: this.now,
    };
  }

  private slotFor(seq: Index): Slot {
    let s = this.slots.get(seq);
    if (!s) {
      s = this.newSlot(seq);
      this.slots.set(seq, s);
    }
    return s;
  }

  private markDirty(seq: Index): void {
    if (seq > this.snapIndex && seq < this.dirtyFrom) this.dirtyFrom = seq;
  }

  /** Highest sequence number whose record the durable log must reach. */
  private topSeq(): Index {
    let top = 0;
    for (const [k, s] of this.slots) if (k > top && (s.ppDigest || s.cert)) top = k;
    return top;
  }

  private slotEntry(i: Index): Entry {
    const s = this.slots.get(i);
    if (!s || (!s.ppDigest && !s.cert)) return { term: 0, index: i, type: EntryType.Noop, data: EMPTY };
    const rec = encodeSlotRecord(i, {
      ppView: s.ppDigest ? s.ppView : 0, ppDigest: s.ppDigest, ppSig: s.ppDigest ? s.ppSig : EMPTY,
      request: s.body ? s.bodyBytes ?? EMPTY : EMPTY, cert: s.cert,
    });
    const type = s.body && s.body.kind === EntryType.Normal ? EntryType.Normal : EntryType.Noop;
    return { term: s.ppDigest ? s.ppView : 0, index: i, type, data: rec };
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  /** One copy per other member (`to` filled in). */
  private broadcast(m: Message): void {
    for (const to of this.group.members) if (to !== this.id) this.msgs.push({ ...m, to } as Message);
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
