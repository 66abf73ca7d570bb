/**
 * The timeline recorder: what `quorumd sim --html` draws, collected while a seed runs.
 *
 * One recorder per seed. The simulated cluster (engine-cluster.ts, and bully-sim.ts for
 * bully) feeds it at the same four points and nowhere else:
 *
 *   rec.attach(world, lanes)          board states, relay contacts, faults — through the
 *                                     world's SimObserver (firmware-sim/observer.ts)
 *   rec.observer(base, view)          wraps the runtime observer: role and term after
 *                                     every step, activation (token), finished fences
 *   workload.onOp = rec.opListener()  client requests, call → return, with their outcome
 *   locks.onOp / locks.onHold         with --locks: lock requests with their outcome, and
 *     = rec.lockListeners()           every hold as its client counts on it (locks.ts)
 *   rec.finish(result, meta)          the violation (if any) and the run's summary
 *
 * Recording only reads. It draws no random number, schedules nothing and writes
 * nothing to the trace, so a seed has the same trace hash with and without it (the
 * test in test/daemon/sim/timeline.test.ts compares them for every fault kind, both
 * engines). Without --html no recorder exists: the clusters pass their observer
 * through unchanged and the world's observer stays null.
 *
 * Role comes from the engine's own cheap getters (the `view` each cluster passes), not
 * from status() and not from anything that reads a clock: reading a simulated clock
 * may one day advance it (a real step takes time), and the recorder must not.
 *
 * The data is compact on purpose (a 60 s, 5-node run holds ~4000 client requests):
 * times are integer virtual microseconds, per-lane changes are flat arrays, client
 * requests are columns. The page's script (timeline/page.js) turns it into rows.
 */
import type { World } from '../../../firmware-sim/world.ts';
import type { BoardChangeCause, SimObserver } from '../../../firmware-sim/observer.ts';
import type { BoardState } from '../../../firmware-sim/board.ts';
import type { PlannedFault } from '../../../firmware-sim/faults.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import type { NodeId } from '../../../src/types.ts';
import type { FenceRecord } from '../../../src/fence/index.ts';
import type { ActivationEvent } from '../../runtime/activation.ts';
import type { OpRecord } from '../workload.ts';
import type { HoldEnd, LockHold, LockKind, LockOpRecord, LockOutcome } from '../locks.ts';

/** Format of TimelineData; the page's script refuses another. */
export const TIMELINE_VERSION = 1;

export interface TimelineLane {
  id: NodeId;
  witness: boolean;
  /** A ZooKeeper-style observer (`--observers`, engine zab): receives the committed stream, never votes. Absent otherwise. */
  observer?: true;
  /** `--faults byzantine` (engine pbft): this board lies for the whole run, with these behaviours. Absent otherwise. */
  byzantine?: string[];
}

/**
 * The engine's own round number as the page names it (Raft's term, bully's and ZAB's
 * epoch, Paxos's ballot, PBFT's view). `idSpan`: the number carries its owner in the low
 * part (Paxos: ballot = round × idSpan + node id), and the page shows it as round.node.
 */
export interface TimelineRound {
  word: string;
  idSpan?: number;
}

export interface TimelineFault {
  kind: string;
  /** Applied / healed (µs); heal null when no heal call came (a crash heals by restarting; or the run ended first). */
  at: number;
  heal: number | null;
  /** The planned heal time (µs), for faults without a heal call. */
  planHeal: number;
  node: NodeId | null;
  /** Partition sides; the broker is "broker". */
  groups: Array<Array<NodeId | 'broker'>> | null;
  detail: string;
}

export interface TimelineFence {
  /** Finished (µs of virtual time) and the fence's own duration from request to finish (ms, the fencer's clock). */
  at: number;
  durMs: number;
  by: NodeId;
  target: NodeId;
  outcome: string;
  action: string;
  reason: string;
  term: number;
}

export interface TimelineMeta {
  engine: string;
  seed: number;
  nodes: number;
  witness: boolean;
  /** ZAB observers (`--observers`); absent when none. */
  observers?: number;
  timeMs: number;
  faults: string[];
  stonith: boolean;
  /** The command that replays the seed. */
  replay: string;
  /** The `quorumd sim` output line of the seed, without `wall_ms` and `speed` (they differ from run to run). */
  summary: string;
  trace: string;
}

export interface TimelineViolation {
  at: number;
  invariant: string;
  detail: string;
}

export interface TimelineData {
  version: number;
  meta: TimelineMeta;
  /** End of the run (µs). */
  end: number;
  lanes: TimelineLane[];
  /** Lane state names (index = the codes in `spans`). */
  states: string[];
  /** Why a board changed state (index = the cause codes in `spans`; -1 = an engine change). */
  causes: string[];
  /** Per lane (same order as `lanes`): flat [atUs, stateCode, causeCode, ...], each a change. */
  spans: number[][];
  /** Per lane: flat [atUs, term, ...], each a change of the engine's round number (`round` says which). */
  terms: number[][];
  /** What `terms` count (absent in pages of older builds: the page then says term for raft, epoch otherwise). */
  round?: TimelineRound;
  /** Flat [atUs, node, token, ...]: activations with their fencing token. */
  tokens: number[];
  faults: TimelineFault[];
  fences: TimelineFence[];
  /** Flat [atUs, from, to, closed (1|0), ...]: relay contacts that moved. */
  relays: number[];
  ops: {
    kinds: string[];
    outcomes: string[];
    keys: string[];
    clients: number;
    /** Flat [callUs, retUs, client, node, kindCode, keyCode, outcomeCode, ...] (7 a request). */
    cols: number[];
    /** What a put wrote or a get read (null: nothing). */
    values: Array<string | null>;
  };
  violations: TimelineViolation[];
  /** With --locks only (absent otherwise). */
  locks?: TimelineLocks;
}

/** The lock clients' requests and holds (`--locks`, daemon/sim/locks.ts). */
export interface TimelineLocks {
  kinds: LockKind[];
  outcomes: LockOutcome[];
  /** Lock names (index = the name codes below). */
  names: string[];
  clients: number;
  /** Flat [callUs, retUs, client, node, kindCode, nameCode, outcomeCode, token (-1: none), ttlMs, status (-1: no answer), ...] (10 a request). */
  cols: number[];
  /** How a hold ended (index = the end codes below); 'held' = still held when the run ended. */
  ends: Array<HoldEnd | 'held'>;
  /** Flat [grantedUs, client, nameCode, token, ttlMs, endCode, inViolation (1|0), ...] (7 a hold), in grant order. */
  holds: number[];
  /** Flat [fromUs, untilUs, hold index, ...]: the stretches of time each client counted on holding its lock (from a 200 to sent + ttl or its release; renewals answered in time extend a stretch). */
  spans: number[];
}

/** The engine's role and term of a runtime, read by cheap getters after every step. */
export interface RoleView<RT> {
  role(rt: RT): string;
  term(rt: RT): number;
  /** What the page calls `term` (default: term). */
  round?: TimelineRound;
  /**
   * For an engine whose runtime reports no activation events (PBFT: no activation gate):
   * the token the node acts with now, 0 when it may not act. Read after every step; a
   * change from 0 is drawn as an activation with that token, a change to 0 as its end.
   */
  token?(rt: RT): number;
}

/** The parts of a runtime observer the recorder taps (RuntimeObserver and BullyRuntimeObserver both have them). */
export interface TappableObserver<RT> {
  booted?(rt: RT): void;
  afterStep?(rt: RT): void;
  activation?(rt: RT, ev: ActivationEvent): void;
  fenced?(rt: RT, rec: FenceRecord): void;
}

interface LaneTrack {
  board: BoardState;
  /** The engine's role while a process that finished booting runs; null otherwise. */
  role: string | null;
  active: boolean;
  /** Last cause of a board change (relay-open tells a fenced-off board from a mains cut). */
  cause: BoardChangeCause | null;
  term: number;
  spans: number[];
  terms: number[];
}

const OP_KINDS: OpRecord['kind'][] = ['put', 'get', 'cas'];
const OP_OUTCOMES: OpRecord['outcome'][] = ['ok', 'not-found', 'conflict', 'unavailable', 'unknown', 'timeout', 'rejected'];
const LOCK_KINDS: LockKind[] = ['acquire', 'renew', 'release'];
const LOCK_OUTCOMES: LockOutcome[] = ['granted', 'renewed', 'released', 'held', 'expired', 'unavailable', 'unknown', 'timeout', 'error'];
const HOLD_ENDS: Array<HoldEnd | 'held'> = ['held', 'released', 'lapsed', 'lost', 'overdue'];

export class TimelineRecorder implements SimObserver {
  private world: World | null = null;
  private readonly lanes: TimelineLane[] = [];
  private round: TimelineRound | undefined;
  /** Track by node id (0..255). */
  private readonly byId: Array<LaneTrack | undefined> = [];
  private readonly tracks: LaneTrack[] = [];
  private readonly states: string[] = [];
  private readonly stateCode = new Map<string, number>();
  private readonly causes: string[] = [];
  private readonly causeCode = new Map<string, number>();
  private readonly tokens: number[] = [];
  private readonly faults: TimelineFault[] = [];
  private readonly openFaults = new Map<Readonly<PlannedFault>, TimelineFault>();
  private readonly fences: TimelineFence[] = [];
  private readonly relays: number[] = [];
  private readonly opCols: number[] = [];
  private readonly opValues: Array<string | null> = [];
  private readonly keys: string[] = [];
  private readonly keyCode = new Map<string, number>();
  private clients = 0;
  /** --locks: set once the lock listeners were taken. */
  private lockCols: number[] | null = null;
  private readonly lockNames: string[] = [];
  private readonly lockNameCode = new Map<string, number>();
  private lockClients = 0;
  private readonly holds: LockHold[] = [];

  /**
   * Starts recording `world` (right after it is built, before boards are added, so
   * that their first power-on is seen): one lane per data board, then the witnesses.
   */
  attach(world: World, lanes: { dataIds: readonly NodeId[]; witnessIds: readonly NodeId[]; observerIds?: readonly NodeId[] }): void {
    if (this.world !== null) throw new Error('TimelineRecorder.attach: a recorder records one world (one seed); make a new one per seed');
    if (world.ctx.observer !== null) throw new Error('TimelineRecorder.attach: the world already has an observer');
    this.world = world;
    for (const id of lanes.dataIds) this.addLane({ id, witness: false });
    for (const id of lanes.witnessIds) this.addLane({ id, witness: true });
    for (const id of lanes.observerIds ?? []) this.addLane({ id, witness: false, observer: true });
    world.ctx.observer = this;
  }

  private addLane(lane: TimelineLane): void {
    const id = lane.id;
    if (this.byId[id] !== undefined) throw new Error(`TimelineRecorder.attach: node ${id} listed twice`);
    const t: LaneTrack = { board: 'off', role: null, active: false, cause: null, term: -1, spans: [], terms: [] };
    this.byId[id] = t;
    this.tracks.push(t);
    this.lanes.push(lane);
  }

  /** `--faults byzantine`: board `id` lies for the whole run with these behaviours (its lane is labelled so). */
  markByzantine(id: NodeId, kinds: readonly string[]): void {
    const lane = this.lanes.find((l) => l.id === id);
    if (lane === undefined) throw new Error(`TimelineRecorder.markByzantine: node ${id} has no lane`);
    lane.byzantine = [...kinds];
  }

  private get nowUs(): number {
    if (this.world === null) throw new Error('TimelineRecorder: attach(world, lanes) first');
    return this.world.sched.now;
  }

  private code(table: string[], index: Map<string, number>, name: string): number {
    let c = index.get(name);
    if (c === undefined) {
      c = table.length;
      table.push(name);
      index.set(name, c);
    }
    return c;
  }

  /** The lane's state from the board, the engine's role and activation. */
  private laneState(t: LaneTrack): string {
    switch (t.board) {
      case 'off':
        return t.cause === 'relay-open' ? 'off (fenced)' : 'off';
      case 'booting':
        return 'booting';
      case 'restarting':
        return 'crashed';
      case 'running':
        if (t.role === null) return 'starting';
        return t.active ? 'active' : t.role;
      default:
        // A board state added later is drawn under its own name.
        return String(t.board);
    }
  }

  /** Appends a change of the lane's state at now (several changes in one instant keep the last). */
  private update(t: LaneTrack, cause: BoardChangeCause | null): void {
    const s = this.code(this.states, this.stateCode, this.laneState(t));
    const c = cause === null ? -1 : this.code(this.causes, this.causeCode, cause);
    const a = t.spans;
    const now = this.nowUs;
    let n = a.length;
    let c2 = c;
    if (n >= 3 && a[n - 3] === now) {
      // Several changes in one instant: the last one stands (keeping a board cause
      // given earlier in the instant when this change is the engine's).
      if (c2 === -1) c2 = a[n - 1]!;
      a.length = n -= 3;
    }
    if (n >= 3 && a[n - 2] === s) return;
    a.push(now, s, c2);
  }

  // ---- the world (SimObserver) ------------------------------------------------------

  boardState(node: NodeId, state: BoardState, cause: BoardChangeCause): void {
    const t = this.byId[node];
    if (t === undefined) return;
    t.board = state;
    t.cause = cause;
    // A new process starts with no engine role; a dead one has none.
    t.role = null;
    t.active = false;
    this.update(t, cause);
  }

  relayContact(from: NodeId, to: NodeId, closed: boolean): void {
    this.relays.push(this.nowUs, from, to, closed ? 1 : 0);
  }

  fault(f: Readonly<PlannedFault>, phase: 'apply' | 'heal'): void {
    const now = this.nowUs;
    if (phase === 'apply') {
      const rec: TimelineFault = {
        kind: f.kind,
        at: now,
        heal: null,
        planHeal: Math.round(f.healMs * 1000),
        node: f.node ?? null,
        groups: f.groups ? f.groups.map((g) => g.map((n) => (n === BROKER ? 'broker' : n))) : null,
        detail: f.detail,
      };
      this.faults.push(rec);
      this.openFaults.set(f, rec);
    } else {
      const rec = this.openFaults.get(f);
      if (rec !== undefined) {
        rec.heal = now;
        this.openFaults.delete(f);
      }
    }
  }

  // ---- the runtimes -----------------------------------------------------------------

  /** After a step (or a boot) of node `id`: its engine role and term now. */
  step(id: NodeId, role: string, term: number): void {
    const t = this.byId[id];
    if (t === undefined || t.board !== 'running') return;
    if (t.role !== role) {
      t.role = role;
      this.update(t, null);
    }
    if (t.term !== term) {
      t.term = term;
      t.terms.push(this.nowUs, term);
    }
  }

  activation(id: NodeId, ev: ActivationEvent): void {
    const t = this.byId[id];
    if (t === undefined || t.board !== 'running') return;
    if (ev.active) this.tokens.push(this.nowUs, id, ev.token);
    if (t.active !== ev.active) {
      t.active = ev.active;
      this.update(t, null);
    }
  }

  /** RoleView.token: the token node `id` acts with now (0: none); drawn as activations. */
  tokenNow(id: NodeId, token: number): void {
    const t = this.byId[id];
    if (t === undefined || t.board !== 'running') return;
    const active = token > 0;
    if (active === t.active) return;
    if (active) this.tokens.push(this.nowUs, id, token);
    t.active = active;
    this.update(t, null);
  }

  fenced(by: NodeId, rec: FenceRecord): void {
    const dur = rec.finishedAtMs !== null ? Math.max(0, rec.finishedAtMs - rec.requestedAtMs) : 0;
    this.fences.push({ at: this.nowUs, durMs: Math.round(dur), by, target: rec.target, outcome: rec.outcome, action: rec.action, reason: rec.reason, term: rec.term });
  }

  /**
   * The cluster's runtime observer with the recorder tapped in after each hook (the
   * base runs first: a violation it throws stops the step before anything is drawn).
   */
  observer<RT extends { readonly id: NodeId }, O extends TappableObserver<RT>>(base: O, view: RoleView<RT>): O {
    const rec = this;
    if (view.round) this.round = view.round;
    const token = view.token;
    const after = (rt: RT) => {
      rec.step(rt.id, view.role(rt), view.term(rt));
      if (token) rec.tokenNow(rt.id, token(rt));
    };
    return {
      ...base,
      booted(rt: RT) {
        base.booted?.(rt);
        after(rt);
      },
      afterStep(rt: RT) {
        base.afterStep?.(rt);
        after(rt);
      },
      activation(rt: RT, ev: ActivationEvent) {
        base.activation?.(rt, ev);
        rec.activation(rt.id, ev);
      },
      fenced(rt: RT, fr: FenceRecord) {
        base.fenced?.(rt, fr);
        rec.fenced(rt.id, fr);
      },
    };
  }

  // ---- the clients ------------------------------------------------------------------

  op(o: OpRecord): void {
    const k = OP_KINDS.indexOf(o.kind);
    const out = OP_OUTCOMES.indexOf(o.outcome);
    this.opCols.push(o.callUs, o.retUs, o.client, o.node, k, this.code(this.keys, this.keyCode, o.key), out);
    this.opValues.push(o.value);
    if (o.client > this.clients) this.clients = o.client;
  }

  /** For Workload.onOp. */
  opListener(): (o: OpRecord) => void {
    return (o) => this.op(o);
  }

  // ---- the lock clients (--locks) ----------------------------------------------------

  lockOp(o: LockOpRecord): void {
    const cols = (this.lockCols ??= []);
    cols.push(o.callUs, o.retUs, o.client, o.node, LOCK_KINDS.indexOf(o.kind), this.code(this.lockNames, this.lockNameCode, o.name), LOCK_OUTCOMES.indexOf(o.outcome), o.token, o.ttlMs, o.status);
    if (o.client > this.lockClients) this.lockClients = o.client;
  }

  /** A grant: the hold object itself, read at finish() (its spans and end change until then). */
  lockHold(h: LockHold): void {
    this.lockCols ??= [];
    this.holds.push(h);
    this.code(this.lockNames, this.lockNameCode, h.name);
    if (h.client > this.lockClients) this.lockClients = h.client;
  }

  /** For LockWorkload.onOp and onHold. */
  lockListeners(): { onOp: (o: LockOpRecord) => void; onHold: (h: LockHold) => void } {
    this.lockCols ??= [];
    return { onOp: (o) => this.lockOp(o), onHold: (h) => this.lockHold(h) };
  }

  private lockData(): TimelineLocks | undefined {
    if (this.lockCols === null) return undefined;
    const holds: number[] = [];
    const spans: number[] = [];
    this.holds.forEach((h, i) => {
      holds.push(h.grantedUs, h.client, this.code(this.lockNames, this.lockNameCode, h.name), h.token, h.ttlMs, HOLD_ENDS.indexOf(h.end ?? 'held'), h.violation !== null ? 1 : 0);
      // One interval per stretch the client counted on without a break (a renewal answered
      // before the previous end extends it), so that a hold is one band on the page.
      let from = -1;
      let until = -1;
      for (const s of h.spans) {
        if (s.until <= s.from) continue;
        if (from >= 0 && s.from <= until) until = Math.max(until, s.until);
        else {
          if (from >= 0) spans.push(from, until, i);
          from = s.from;
          until = s.until;
        }
      }
      if (from >= 0) spans.push(from, until, i);
    });
    return { kinds: LOCK_KINDS, outcomes: LOCK_OUTCOMES, names: this.lockNames, clients: this.lockClients, cols: this.lockCols, ends: HOLD_ENDS, holds, spans };
  }

  // ---- the end ----------------------------------------------------------------------

  /** Stops recording and returns the data of the page. */
  finish(meta: TimelineMeta, violation?: { invariant: string; detail: string; atMs: number }): TimelineData {
    const world = this.world;
    if (world === null) throw new Error('TimelineRecorder.finish: nothing was recorded (attach first)');
    const end = world.sched.now;
    if (world.ctx.observer === this) world.ctx.observer = null;
    return {
      version: TIMELINE_VERSION,
      meta,
      end,
      lanes: this.lanes,
      states: this.states,
      causes: this.causes,
      spans: this.tracks.map((t) => t.spans),
      terms: this.tracks.map((t) => t.terms),
      ...(this.round ? { round: this.round } : {}),
      tokens: this.tokens,
      faults: this.faults,
      fences: this.fences,
      relays: this.relays,
      ops: { kinds: OP_KINDS, outcomes: OP_OUTCOMES, keys: this.keys, clients: this.clients, cols: this.opCols, values: this.opValues },
      violations: violation ? [{ at: Math.round(violation.atMs * 1000), invariant: violation.invariant, detail: violation.detail }] : [],
      ...(this.lockCols !== null ? { locks: this.lockData() } : {}),
    };
  }
}
