/**
 * The bully engine: "who is the primary" by priority, behind the same
 * tick/step/ready/advance shape as the Raft engine (src/raft/raft.ts), so that the
 * node runtime hosts either one.
 *
 * Algorithm: Garcia-Molina, "Elections in a Distributed Computing System" (IEEE
 * Trans. Computers C-31(1), 1982), with the usual adaptations for an unreliable
 * network:
 *   - A node that suspects the coordinator sends Election to every member of higher
 *     priority. A higher member answers (Answer) and runs its own election. A
 *     candidate that gets no Answer within `answerTimeoutMs` becomes coordinator; one
 *     that got an Answer waits `coordinatorWaitMs` for the announcement, else retries.
 *   - The coordinator announces itself (Coordinator) to everyone and re-announces every
 *     `heartbeatMs`. The classic algorithm detects failure by a failed request; here a
 *     follower starts an election when the announcements stop for a failure timeout.
 *     A coordinator answers every Election it receives with its announcement, whoever
 *     sent it: the runtime's fencing layer has followers send their coordinator one
 *     now and then, so that the coordinator hears every live member
 *     (daemon/runtime/bully-fencing.ts, "member reports").
 *   - Preemption (`preempt`, default on): a node that hears a coordinator of lower
 *     priority than its own runs an election and takes over. Off = keepalived's
 *     nopreempt: follow any live coordinator; take over only when it fails.
 *   - Epoch: a leadership number that only grows and is persisted. A new coordinator
 *     picks epoch = max(seen) + 1, persists it, and only then announces it (the
 *     Coordinator message's `term`). Every node adopts (and persists) any higher epoch
 *     it sees; a coordinator that sees a higher one steps down. An announcement with an
 *     epoch below one already seen is rejected: the receiver answers with its higher
 *     epoch (an Answer, or its own Coordinator if it coordinates), so the stale
 *     coordinator steps down. The fencing token of a coordinatorship is
 *     fencingToken(epoch, id) = epoch × 256 + id (options.ts): two boards that picked
 *     the same max + 1 concurrently still have distinct tokens. When two coordinators
 *     of one epoch meet, the higher token stays (and, with preempt, a higher-priority
 *     board then takes over with a fresh epoch); a board that knows a higher token of
 *     the epoch than an announcer's answers it at that epoch, which makes the announcer
 *     start a fresh epoch. So the coordinator that remains holds the largest token its
 *     component has seen, and a resource that refuses smaller tokens keeps working.
 *
 * What bully cannot do, honestly: it has no quorum. A partition gives one coordinator
 * per connected component (each believes it is the primary, each with a fresh epoch),
 * and a coordinator cut off from everyone keeps its role: nothing tells it otherwise.
 * With non-transitive connectivity (A hears B, B hears C, A does not hear C) elections
 * may not settle at all. When the partition heals, the announcements meet, the higher
 * epoch (or, with preempt, the higher priority followed by a fresh epoch) wins, and
 * exactly one coordinator remains — but for the length of the partition two boards
 * acted as primary. Bully does not prevent that split brain; fencing contains it: the
 * resources check the fencing token (the newer epoch wins, the older is refused), and
 * STONITH cuts the power of a board that must not act any more (docs/fencing.md). For
 * replicated state (KV, locks) use the Raft engine; `propose()` here says so.
 *
 * Contract (as in raft.ts): `ready()` returns a BullyReady or undefined. The runtime
 *   1. persists `hardState` ({epoch, held}, replaced as a whole) and makes it durable (fsync), then
 *   2. sends `messages` (a Coordinator message carries an epoch that is durable by
 *      then, so a board that restarts never reuses an epoch it announced), then
 *   3. acts on `softState` (role, leader, term = epoch), then
 *   4. calls `advance(ready)`.
 * `ready()` may not be called again before `advance()`; tick/step/campaign may be
 * called in between (their output goes into the next Ready).
 *
 * Restart: construct a new BullyNode from exactly what was persisted ({epoch, held}).
 */
import type { Rng } from '../rng.ts';
import { NO_NODE, type NodeId, type Term } from '../types.ts';
import { MsgType, type Message } from '../wire/messages.ts';
import {
  fencingToken, MAX_EPOCH, resolveBullyOptions, resolveMembers,
  type BullyMember, type BullyOptions, type BullyTicks, type MemberPriority,
} from './options.ts';

export type BullyRole = 'coordinator' | 'candidate' | 'follower';

/**
 * What must be durable: `epoch`, the highest epoch this node has seen or held, and
 * `held`, the epoch of its own latest coordinatorship (0 if none). `held` changes only
 * together with `epoch` (when this node becomes coordinator), so it costs no extra
 * write; it lets a restarted board that coordinated at epoch e refuse a same-epoch
 * coordinator with a lower fencing token (see onCoordinator).
 */
export interface BullyHardState { epoch: Term; held: Term }
/** `term` is the epoch, named like Raft's SoftState so the runtime reads both alike. */
export interface BullySoftState { role: BullyRole; leader: NodeId; term: Term }

export interface BullyReady {
  /** Present when the epoch grew since the last advanced Ready: persist before sending. */
  hardState?: BullyHardState;
  /** To send only after hardState is durable. */
  messages: Message[];
  /** Present when role, leader or epoch changed. */
  softState?: BullySoftState;
}

export interface BullyInit {
  id: NodeId;
  /** Every member, this node included; priorities as in BullyMember (options.ts). */
  members: readonly BullyMember[];
  /** What was persisted before a restart; absent on first boot (epoch 0). `held` defaults to 0. */
  persisted?: { epoch: Term; held?: Term };
  options?: Partial<BullyOptions>;
  /** Failure timeouts only. */
  rng: Rng;
}

export type BullyRejectCode = 'not-supported' | 'not-eligible';
export type BullyResult<T = object> = ({ ok: true } & T) | { ok: false; code: BullyRejectCode; reason: string };

/** Why step() ignored a message; one counter each (status().dropped). */
export interface BullyDropCounters {
  /** Addressed to another node, or sent by this node. */
  notForMe: number;
  /** Sender is not in the member list. */
  unknownMember: number;
  /** A Raft or client message: the sender runs another engine (a config mismatch). */
  foreignType: number;
  /** The message's priority differs from the configured priority of its sender (member lists disagree). */
  priorityMismatch: number;
  /** An Election to a non-coordinator from a node that is not below us (misconfiguration), or to a node that never coordinates. */
  notLower: number;
  /** Epoch beyond MAX_EPOCH. */
  badEpoch: number;
}

/** Phase of a candidate: waiting for Answers, or (after one) for the Coordinator announcement. */
export type BullyPhase = 'none' | 'electing' | 'awaiting';

export interface BullyStatus {
  id: NodeId;
  engine: 'bully';
  role: BullyRole;
  /** The epoch (also `epoch`): named `term` like RaftStatus for the status API. */
  term: Term;
  epoch: Term;
  leader: NodeId;
  /** Fencing token of the current leader's epoch (0 when no leader is known). */
  token: number;
  priority: number;
  leaderPriority: number;
  phase: BullyPhase;
  preempt: boolean;
  members: MemberPriority[];
  /** Elections this incarnation started / times it became coordinator. */
  electionsStarted: number;
  coordinatorships: number;
  dropped: BullyDropCounters;
  /** Raft-only fields, fixed at 0 so that a status consumer can read either engine. */
  commitIndex: 0;
  appliedIndex: 0;
}

const BULLY_TYPES = new Set<MsgType>([MsgType.BullyElection, MsgType.BullyAnswer, MsgType.BullyCoordinator]);
const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

export const NOT_SUPPORTED_REASON = 'the bully engine has no replicated log: KV and locks need another engine (engine: raft, paxos, zab, pbft, etcd or zookeeper)';

export class BullyNode {
  readonly id: NodeId;
  readonly options: Readonly<BullyOptions>;
  readonly priority: number;
  private readonly ticks: BullyTicks;
  private readonly rng: Rng;
  private readonly members: MemberPriority[];
  private readonly prio = new Map<NodeId, number>();
  /** Members that can coordinate and rank above this node. */
  private readonly higher: NodeId[];
  private readonly others: NodeId[];

  private epoch: Term;
  private held: Term = 0;
  private role: BullyRole = 'follower';
  private leader: NodeId = NO_NODE;
  private phase: BullyPhase = 'none';
  /** Ticks in the current phase (follower: since the last announcement from the leader). */
  private elapsed = 0;
  private failureTimeout = 0;
  private heartbeatElapsed = 0;
  /**
   * Highest fencing token of the current epoch this node has followed or held (0 after
   * a restart: not persisted). Lets it refuse a same-epoch coordinator with a lower
   * token, so that the coordinator that remains always holds the largest token.
   */
  private knownToken = 0;

  private prevHard: BullyHardState;
  private prevSoft: BullySoftState;
  private msgs: Message[] = [];
  private outstanding: BullyReady | undefined;

  private electionsStarted = 0;
  private coordinatorships = 0;
  private readonly dropped: BullyDropCounters = { notForMe: 0, unknownMember: 0, foreignType: 0, priorityMismatch: 0, notLower: 0, badEpoch: 0 };

  constructor(init: BullyInit) {
    if (typeof init !== 'object' || init === null) throw new TypeError('BullyNode: expected an init object {id, members, rng, persisted?, options?}');
    if (!isNat(init.id) || init.id < 1 || init.id > 254) throw new RangeError(`BullyNode: id must be a node id 1..254, got ${String(init.id)}`);
    if (!init.rng || typeof (init.rng as Partial<Rng>).int !== 'function') throw new TypeError('BullyNode: rng must be an Rng (src/rng.ts)');
    this.id = init.id;
    this.rng = init.rng;
    const { opts, ticks } = resolveBullyOptions(init.options);
    this.options = Object.freeze(opts);
    this.ticks = ticks;
    this.members = resolveMembers(init.members, init.id);
    for (const m of this.members) this.prio.set(m.id, m.priority);
    this.priority = this.prio.get(this.id)!;
    this.higher = this.members.filter((m) => m.priority > this.priority && m.priority > 0 && m.id !== this.id).map((m) => m.id);
    this.others = this.members.filter((m) => m.id !== this.id).map((m) => m.id);

    const p = init.persisted ?? { epoch: 0 };
    if (typeof p !== 'object' || p === null || !isNat(p.epoch) || p.epoch > MAX_EPOCH ||
      (p.held !== undefined && (!isNat(p.held) || p.held > p.epoch))) {
      throw new RangeError(`BullyNode persisted: expected {epoch: integer 0..${MAX_EPOCH}, held?: integer 0..epoch}, got ${JSON.stringify(p)}`);
    }
    this.epoch = p.epoch;
    this.held = p.held ?? 0;
    // A board that coordinated at its persisted epoch knows at least its own token of it.
    if (this.held === this.epoch && this.held > 0) this.knownToken = fencingToken(this.epoch, this.id);
    this.prevHard = { epoch: this.epoch, held: this.held };
    this.becomeFollower(NO_NODE);
    this.prevSoft = this.softState();
  }

  // -------------------------------------------------------------------------
  // Inspection

  status(): BullyStatus {
    return {
      id: this.id, engine: 'bully', role: this.role, term: this.epoch, epoch: this.epoch, leader: this.leader,
      token: this.leader === NO_NODE ? 0 : fencingToken(this.epoch, this.leader),
      priority: this.priority, leaderPriority: this.leader === NO_NODE ? 0 : this.prio.get(this.leader)!,
      phase: this.phase, preempt: this.options.preempt, members: this.members.map((m) => ({ ...m })),
      electionsStarted: this.electionsStarted, coordinatorships: this.coordinatorships, dropped: { ...this.dropped },
      commitIndex: 0, appliedIndex: 0,
    };
  }

  get isLeader(): boolean {
    return this.role === 'coordinator';
  }

  /** The epoch in memory (status().epoch without building the status). */
  get currentEpoch(): Term {
    return this.epoch;
  }

  /** Whether this node can ever coordinate (priority > 0). */
  get eligible(): boolean {
    return this.priority > 0;
  }

  priorityOf(id: NodeId): number | undefined {
    return this.prio.get(id);
  }

  // -------------------------------------------------------------------------
  // Inputs

  tick(): void {
    this.elapsed++;
    switch (this.role) {
      case 'coordinator':
        if (++this.heartbeatElapsed >= this.ticks.heartbeat) this.announce();
        return;
      case 'candidate':
        if (this.phase === 'electing' && this.elapsed >= this.ticks.answer) {
          // Nobody above us answered in time: we are the highest live member we know of.
          if (this.eligible) this.becomeCoordinator();
          else this.becomeFollower(NO_NODE); // never coordinates; try again after a failure timeout
        } else if (this.phase === 'awaiting' && this.elapsed >= this.ticks.coordinatorWait) {
          // A higher member answered but never announced (it died, or its message was lost).
          this.startElection();
        }
        return;
      case 'follower':
        if (this.elapsed >= this.failureTimeout) this.startElection();
        return;
    }
  }

  /**
   * Starts an election now, e.g. when the link reports the coordinator gone (its MQTT
   * Last Will). This forgets the current coordinator: with preempt off, a higher node
   * that campaigns takes over even a live coordinator, so call it only on evidence
   * that the coordinator is gone (or as an operator's deliberate takeover).
   */
  campaign(): BullyResult<{ term: Term }> {
    if (!this.eligible) return { ok: false, code: 'not-eligible', reason: `node ${this.id} has priority 0 and never coordinates` };
    if (this.role === 'follower') this.startElection(); // a candidate is already electing
    return { ok: true, term: this.epoch };
  }

  /** The bully engine has no replicated log; the daemon answers KV and lock requests with this reason. */
  propose(_data?: unknown): BullyResult<never> {
    return { ok: false, code: 'not-supported', reason: NOT_SUPPORTED_REASON };
  }

  /** Linearizable reads need a log too: same answer as propose(). */
  readIndex(_ctx?: unknown): BullyResult<never> {
    return { ok: false, code: 'not-supported', reason: NOT_SUPPORTED_REASON };
  }

  step(m: Message): void {
    if (typeof m !== 'object' || m === null) throw new TypeError(`bully step: expected a Message object, got ${m === null ? 'null' : typeof m}`);
    if (!isNat(m.term) || !isNat(m.from) || !isNat(m.to)) throw new TypeError(`bully step: term, from and to must be non-negative integers (type ${String(m.type)})`);
    if (m.to !== this.id || m.from === this.id) {
      this.dropped.notForMe++;
      return;
    }
    if (!BULLY_TYPES.has(m.type)) {
      this.dropped.foreignType++;
      return;
    }
    const m2 = m as Message & { priority: unknown };
    if (!isNat(m2.priority)) throw new TypeError(`bully step: priority must be a non-negative integer (type ${MsgType[m.type]}), got ${String(m2.priority)}`);
    const fromPrio = this.prio.get(m.from);
    if (fromPrio === undefined) {
      this.dropped.unknownMember++;
      return;
    }
    if (m2.priority !== fromPrio) {
      this.dropped.priorityMismatch++;
      return;
    }
    if (m.term > MAX_EPOCH) {
      this.dropped.badEpoch++;
      return;
    }

    if (m.term > this.epoch) {
      // Someone became coordinator after our epoch: adopt it (persisted with the next
      // Ready). A coordinator with an older epoch is stale and steps down.
      this.epoch = m.term;
      this.knownToken = 0;
      if (this.role === 'coordinator') this.becomeFollower(NO_NODE);
    }

    switch (m.type) {
      case MsgType.BullyElection:
        this.onElection(m.from, fromPrio);
        return;
      case MsgType.BullyAnswer:
        // Rejections of a stale announcement were handled by the epoch rule above.
        if (this.role === 'coordinator' && m.term === this.epoch) {
          // Someone knows another coordinatorship of our epoch with a higher token
          // (onCoordinator): start a fresh one, above every token of this epoch.
          this.becomeCoordinator();
        } else if (this.role === 'candidate' && this.phase === 'electing' && fromPrio > this.priority) {
          this.phase = 'awaiting';
          this.elapsed = 0;
        }
        return;
      case MsgType.BullyCoordinator:
        this.onCoordinator(m.from, fromPrio, m.term);
        return;
    }
  }

  private onElection(from: NodeId, fromPrio: number): void {
    if (this.role === 'coordinator') {
      // Our announcement is the answer: it stops the candidate's election and names us.
      // From any member, also one above us: an Election that reaches a coordinator asks
      // who coordinates, and telling it is always right. The runtime uses this as a
      // follower's report to its coordinator (daemon/runtime/bully-fencing.ts), and a
      // follower above its coordinator exists under nopreempt.
      this.send(from, MsgType.BullyCoordinator);
      return;
    }
    if (!this.eligible || fromPrio >= this.priority) {
      // Elections go only to eligible members of higher priority: the lists disagree.
      this.dropped.notLower++;
      return;
    }
    this.send(from, MsgType.BullyAnswer);
    if (this.role === 'candidate') return; // already electing
    // Classic bully: whoever is challenged from below runs its own election. Not under
    // nopreempt while we follow a live coordinator below us: that would be a takeover.
    const leaderPrio = this.leader === NO_NODE ? 0 : this.prio.get(this.leader)!;
    if (!this.options.preempt && this.leader !== NO_NODE && leaderPrio < this.priority) return;
    this.startElection();
  }

  private onCoordinator(from: NodeId, fromPrio: number, epoch: Term): void {
    if (epoch < this.epoch) {
      // A late (reordered) announcement from the coordinator we know at our epoch: it
      // has moved on already. Answering would read, at its current epoch, as a token
      // conflict (below) and make it start a needless fresh epoch.
      if (this.knownToken === fencingToken(this.epoch, from)) return;
      // A stale coordinator (e.g. back from a partition): tell it the newer epoch.
      this.send(from, this.role === 'coordinator' ? MsgType.BullyCoordinator : MsgType.BullyAnswer);
      return;
    }
    // From here on epoch === this.epoch (a higher one was adopted in step()).
    const token = fencingToken(epoch, from);
    if (this.role === 'coordinator') {
      // Two coordinators elected concurrently with one epoch: the higher token (node id)
      // stays, so that the survivor's token is the largest either of them ever used.
      if (from < this.id) {
        this.send(from, MsgType.BullyCoordinator);
        return;
      }
      this.becomeFollower(from);
    } else if (token < this.knownToken) {
      // We know a coordinatorship of this epoch with a higher token: an Answer at the
      // coordinator's own epoch makes it start a fresh epoch, above every token.
      this.send(from, MsgType.BullyAnswer);
      return;
    }
    this.knownToken = token;
    if (this.options.preempt && this.eligible && this.priority > fromPrio) {
      // We outrank this coordinator: bully it (our election ends with a newer epoch).
      if (this.role !== 'candidate') this.startElection();
      return;
    }
    if (this.role === 'follower' && this.leader === from) {
      this.elapsed = 0;
      return;
    }
    this.becomeFollower(from);
  }

  // -------------------------------------------------------------------------
  // Ready / advance

  ready(): BullyReady | undefined {
    if (this.outstanding) throw new Error('bully ready(): the previous Ready has not been advanced yet; call advance(ready) first');
    const rd: BullyReady = { messages: [] };
    if (this.epoch !== this.prevHard.epoch || this.held !== this.prevHard.held) rd.hardState = { epoch: this.epoch, held: this.held };
    const ss = this.softState();
    if (ss.role !== this.prevSoft.role || ss.leader !== this.prevSoft.leader || ss.term !== this.prevSoft.term) rd.softState = ss;
    if (!rd.hardState && !rd.softState && this.msgs.length === 0) return undefined;
    rd.messages = this.msgs;
    this.msgs = [];
    this.outstanding = rd;
    return rd;
  }

  hasReady(): boolean {
    return this.msgs.length > 0 || this.epoch !== this.prevHard.epoch || this.held !== this.prevHard.held ||
      this.role !== this.prevSoft.role || this.leader !== this.prevSoft.leader || this.epoch !== this.prevSoft.term;
  }

  advance(rd: BullyReady): void {
    if (!this.outstanding || this.outstanding !== rd) throw new Error('bully advance(): argument is not the Ready last returned by ready()');
    this.outstanding = undefined;
    if (rd.hardState) this.prevHard = { ...rd.hardState };
    if (rd.softState) this.prevSoft = { ...rd.softState };
  }

  // -------------------------------------------------------------------------
  // Roles

  private softState(): BullySoftState {
    return { role: this.role, leader: this.leader, term: this.epoch };
  }

  private becomeFollower(leader: NodeId): void {
    this.role = 'follower';
    this.leader = leader;
    this.phase = 'none';
    this.elapsed = 0;
    this.failureTimeout = this.rng.int(this.ticks.failureMin, this.ticks.failureMax - 1);
  }

  private startElection(): void {
    this.electionsStarted++;
    if (this.higher.length === 0) {
      if (this.eligible) this.becomeCoordinator();
      else this.becomeFollower(NO_NODE); // nobody can coordinate: a lone priority-0 list
      return;
    }
    this.role = 'candidate';
    this.leader = NO_NODE;
    this.phase = 'electing';
    this.elapsed = 0;
    for (const to of this.higher) this.send(to, MsgType.BullyElection);
  }

  private becomeCoordinator(): void {
    if (this.epoch >= MAX_EPOCH) {
      // Unreachable in practice (2^45 elections); never announce an epoch we cannot exceed.
      this.becomeFollower(NO_NODE);
      return;
    }
    this.epoch += 1; // max(seen) + 1: every epoch seen was adopted into this.epoch
    this.held = this.epoch;
    this.knownToken = fencingToken(this.epoch, this.id);
    this.coordinatorships++;
    this.role = 'coordinator';
    this.leader = this.id;
    this.phase = 'none';
    this.elapsed = 0;
    this.announce();
  }

  private announce(): void {
    this.heartbeatElapsed = 0;
    for (const to of this.others) this.send(to, MsgType.BullyCoordinator);
  }

  private send(to: NodeId, type: MsgType.BullyElection | MsgType.BullyAnswer | MsgType.BullyCoordinator): void {
    this.msgs.push({ type, from: this.id, to, term: this.epoch, priority: this.priority });
  }
}
