/**
 * Leader activation in the runtime (docs/fencing.md, issue 6 points 1 and 6): engine-agnostic
 * bookkeeping that turns "elected" into "active" and back, for every engine the
 * node runtime (engine-node.ts) hosts.
 *
 *   inputs   elected(term, now) / suspectsKnown(suspects) / steppedDown(now),
 *            acknowledged(peer, term), fenceStarted / fenceResult, operatorConfirmed,
 *            lease rounds (roundSent / roundAcked), tick(now)
 *   output   status(): elected, active, waitingFor, wantFence[], token
 *
 * A leader is *active* — runs hooks and jobs, grants locks, drives actuators — iff
 *   1. it is elected and its leadership token is known (Raft: its claim entry is
 *      applied, which also means its no-op is committed; src/fence/token.ts);
 *   2. every *suspect* (a node that may have led before: src/kv lead.claim) is shown
 *      unable to act, each through its own src/fence ActivationGate: fenced and verified
 *      off, acknowledged our term, confirmed by an operator, or the lease bound
 *      `leaseSafeAtMs` passed (one bound covers every earlier leader);
 *   3. its own lease holds: a heartbeat round that a quorum acknowledged in this term
 *      was sent less than `leaseMs` ago (own monotonic clock).
 * Rule 3 makes the old leader stop on its own; rule 2 makes the new one wait for it.
 * Before all three, the first-start rule (`waitForAll`, corosync's wait_for_all): a node
 * that has never seen every listed node neither activates nor fences, so two boards
 * that boot apart cannot fence each other in a loop; "formed" is persisted by the
 * runtime (its metadata, daemon/runtime/meta.ts) and not waited for again.
 *
 * ## Why the old leader stops before the new one starts (the ordering, with numbers)
 *
 * Let ρ be the drift bound (`maxDriftPpm`, default 50 000 ppm = 5 %, the same bound as
 * the Raft engine's maxClockDriftRatio), L the old leader, N the new one.
 *   - L acts only while a round it sent at its time s (real time S) was acknowledged by
 *     a quorum in L's term; it stops at its time s + leaseMs, i.e. by real time
 *     S + leaseMs/(1−ρ) at the latest (its clock may run slow).
 *   - N was elected at real time tE by a quorum that intersects L's: some voter v both
 *     acknowledged S in L's term and voted for N in a higher term. Terms only grow on a
 *     voter (they are durable), so the acknowledgement came first: S < tE.
 *   - Without a fence, N waits until safeAt = e + ⌈leaseMs(1+ρ)/(1−ρ)⌉ + watchdog +
 *     margin on its own clock (e = its clock at election ≥ tE), which is real time
 *     ≥ tE + leaseMs/(1−ρ) + (watchdog + margin)/(1+ρ) > S + leaseMs/(1−ρ).
 *   With the defaults (leaseMs 150, ρ 5 %, the simulator's 3 s watchdog, margin 50 ms):
 *   L stops at most 157.9 ms after S < tE; N activates no earlier than
 *   tE + 157.9 + 3000/1.05 + 50/1.05 = tE + 3062 ms. The watchdog term covers an L whose
 *   process checked its lease and then stalled before acting: the event loop stops
 *   feeding the watchdog, which resets the board within `watchdogTimeoutMs` of the
 *   last feed (issue 6 point 6). The tick granularity (10 ms) is inside the margin.
 *
 * Self-fencing: a node that was active in this boot and then lost its lease (or its
 * leadership without learning of a newer leader) for `selfFenceAfterMs` stops feeding
 * the watchdog (`shouldFeedWatchdog()`), so the board resets and takes every process
 * and actuator with it (like diskless SBD). Learning of a newer leader clears that.
 */
import { ActivationGate, leaseSafeAtMs, type ActivationReason } from '../../src/fence/index.ts';
import type { NodeId, Term } from '../../src/types.ts';

export interface ActivationOptions {
  /**
   * First start waits for all (corosync's wait_for_all; docs/fencing.md two-node mode): until
   * this node has seen every listed node once — itself counts — it never becomes
   * active and never fences. Two boards that start apart (or cannot see each other)
   * then cannot fence each other in a loop at boot. The runtime persists "formed" and
   * does not wait again. Default [] (no wait).
   */
  waitForAll?: NodeId[];
  /**
   * Own lease, ms of own monotonic time from sending a heartbeat round that a quorum
   * acknowledged. Default: the Raft election timeout minimum (150): followers honour
   * a leader that long (leader stickiness), and a leader that loses its quorum steps
   * down after about the same time (check-quorum).
   */
  leaseMs?: number;
  /** Clock drift bound between any two boards, ppm. Default 50 000 (5 %): matches the Raft engine's maxClockDriftRatio default. */
  maxDriftPpm?: number;
  /** Scheduling and actuator latency margin, ms. Default 50 (five ticks). */
  marginMs?: number;
  /**
   * Time a node that was active may spend without its lease before it stops feeding
   * the watchdog (self-fence), ms. Default 1000: several election timeouts, so a lost
   * heartbeat or two never resets a board, short enough to be a bounded extra wait.
   */
  selfFenceAfterMs?: number;
}

export interface ResolvedActivationOptions {
  waitForAll: NodeId[];
  leaseMs: number;
  maxDriftPpm: number;
  marginMs: number;
  selfFenceAfterMs: number;
  watchdogTimeoutMs: number;
  stonith: boolean;
}

export function resolveActivationOptions(o: ActivationOptions | undefined, d: { electionTimeoutMinMs: number; watchdogTimeoutMs: number; stonith: boolean }): ResolvedActivationOptions {
  if (o !== undefined && (o === null || typeof o !== 'object')) throw new TypeError(`activation options: expected an object, got ${String(o)}`);
  const known = new Set(['waitForAll', 'leaseMs', 'maxDriftPpm', 'marginMs', 'selfFenceAfterMs']);
  for (const k of Object.keys(o ?? {})) if (!known.has(k)) throw new TypeError(`activation options: unknown option "${k}" (known: ${[...known].join(', ')})`);
  const num = (k: keyof ActivationOptions, def: number, min: number, max: number): number => {
    const v = o?.[k] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new RangeError(`activation options: ${k} must be a number ${min}..${max}, got ${String(v)}`);
    return v;
  };
  const wfa = o?.waitForAll ?? [];
  if (!Array.isArray(wfa) || !wfa.every((n) => Number.isInteger(n) && n >= 1 && n <= 254)) {
    throw new TypeError(`activation options: waitForAll must be an array of node ids 1..254, got ${JSON.stringify(wfa)}`);
  }
  return {
    waitForAll: [...new Set(wfa)].sort((a, b) => a - b),
    leaseMs: num('leaseMs', d.electionTimeoutMinMs, 1, 3_600_000),
    maxDriftPpm: num('maxDriftPpm', 50_000, 0, 100_000),
    marginMs: num('marginMs', 50, 0, 3_600_000),
    selfFenceAfterMs: num('selfFenceAfterMs', 1000, 0, 3_600_000),
    watchdogTimeoutMs: d.watchdogTimeoutMs,
    stonith: d.stonith,
  };
}

export interface Suspects {
  nodes: NodeId[];
  /** Some earlier leader is not known by name: only the lease bound helps for it. */
  unknown: boolean;
}

export interface ActivationView {
  elected: boolean;
  active: boolean;
  term: Term;
  /** Fencing token of this leadership once known (0 before). */
  token: number;
  /** Why an elected leader is not active ('' when active or not leader). */
  waitingFor: string;
  /** Suspects the runtime should fence now. */
  wantFence: NodeId[];
  /** How each suspect was cleared (suspect → reason). */
  clearedBy: Record<string, ActivationReason>;
  /** Every earlier leader this leadership must show stopped (cleared or not), by id; absent before the claim commits. */
  suspects?: NodeId[];
  /** Own monotonic time at which the lease bound clears every earlier leader (null when not elected). */
  safeAtMs: number | null;
  /** Own monotonic time until which this leader's own lease holds (0 = none). */
  leaseUntilMs: number;
}

export class LeaseTracker {
  private readonly sent = new Map<number, number>();
  /** Newest acknowledged round's send time per peer id (-Infinity: none); by index, read on every step. */
  private readonly acked = new Float64Array(256).fill(-Infinity);
  private oldest = Infinity;
  private readonly scratch: number[] = [];

  constructor(private readonly self: NodeId) {}

  reset(): void {
    this.sent.clear();
    this.acked.fill(-Infinity);
    this.oldest = Infinity;
  }
  /** A heartbeat round `ctx` left at `nowMs` (first send counts). */
  roundSent(ctx: number, nowMs: number): void {
    if (ctx === 0 || this.sent.has(ctx)) return;
    this.sent.set(ctx, nowMs);
    // Bounded: keep the newest 64 rounds (older ones cannot extend a lease anyway).
    if (this.sent.size > 64) {
      const first = this.sent.keys().next().value as number;
      this.sent.delete(first);
    }
  }
  /** `peer` acknowledged round `ctx` in the current term. */
  roundAcked(peer: NodeId, ctx: number): void {
    const t = this.sent.get(ctx);
    if (t === undefined) return;
    // Node ids are 1..254 (a typed array ignores anything else, as quorumRoundAt reads it).
    if (t > ((this.acked[peer] as number | undefined) ?? -Infinity)) this.acked[peer] = t;
  }
  /** Send time of the newest round acknowledged by a quorum of `voters` (self counts at `nowMs`), or -Infinity. */
  quorumRoundAt(voters: readonly NodeId[], nowMs: number): number {
    // q-th largest by insertion into a reused array (runs on every runtime step: no
    // map/sort/closure allocation; voter sets are small).
    const n = voters.length;
    const q = (n >> 1) + 1;
    if (q > n) return -Infinity;
    const times = this.scratch;
    for (let i = 0; i < n; i++) {
      const v = voters[i]!;
      const t = v === this.self ? nowMs : (this.acked[v] as number | undefined) ?? -Infinity;
      let j = i;
      while (j > 0 && times[j - 1]! < t) {
        times[j] = times[j - 1]!;
        j--;
      }
      times[j] = t;
    }
    return times[q - 1]!;
  }
}

interface Leadership {
  term: Term;
  electedAtMs: number;
  safeAtMs: number;
  token: number;
  gates: Map<string, ActivationGate> | null;
}

export class ActivationController {
  readonly lease: LeaseTracker;
  private lead: Leadership | null = null;
  private now = 0;
  /** Active at some point in this boot and not yet told of a newer leader. */
  private wasActive = false;
  private lostSinceMs: number | null = null;
  /** First-start rule (`waitForAll`): nodes not seen yet; empty once formed. */
  private readonly unseen: Set<NodeId>;
  /** Called once when the cluster forms (the runtime persists it). */
  onFormed: (() => void) | undefined;

  constructor(
    readonly self: NodeId,
    readonly opts: ResolvedActivationOptions,
    /** The cluster formed in an earlier boot (persisted by the runtime). */
    formedBefore = false,
  ) {
    this.lease = new LeaseTracker(self);
    this.unseen = new Set(formedBefore ? [] : opts.waitForAll.filter((n) => n !== self));
  }

  /** Every node of `waitForAll` was seen once (now or in an earlier boot). */
  get formed(): boolean {
    return this.unseen.size === 0;
  }

  /** An authenticated message from `peer` arrived. */
  peerSeen(peer: NodeId): void {
    if (this.unseen.size === 0 || !this.unseen.delete(peer)) return;
    if (this.unseen.size === 0) this.onFormed?.();
  }

  private advance(nowMs: number): void {
    if (nowMs > this.now) this.now = nowMs;
  }

  /** Elected in `term` (its suspects are not known yet). */
  elected(term: Term, nowMs: number): void {
    this.advance(nowMs);
    const o = this.opts;
    const safeAt = leaseSafeAtMs({ electedAtMs: this.now, leaseMs: o.leaseMs, maxDriftPpm: o.maxDriftPpm, watchdogTimeoutMs: o.watchdogTimeoutMs, marginMs: o.marginMs });
    this.lead = { term, electedAtMs: this.now, safeAtMs: safeAt, token: 0, gates: null };
    this.lease.reset();
  }

  /** The leadership's token and suspects are known (Raft: its claim entry was applied). */
  suspectsKnown(token: number, s: Suspects, nowMs: number): void {
    this.advance(nowMs);
    const l = this.lead;
    if (l === null || l.gates !== null) return;
    l.token = token;
    l.gates = new Map();
    const list: Array<NodeId | 'unknown'> = [...s.nodes.filter((n) => n !== this.self)];
    if (s.unknown) list.push('unknown');
    for (const p of list) {
      const g = new ActivationGate({ self: this.self, stonith: this.opts.stonith, formed: true });
      g.elected({ term: l.term, nowMs: l.electedAtMs, previousLeader: p, safeAtMs: l.safeAtMs });
      g.tick(Math.max(this.now, l.electedAtMs));
      l.gates.set(String(p), g);
    }
  }

  steppedDown(nowMs: number, newerLeaderKnown: boolean): void {
    this.advance(nowMs);
    this.lead = null;
    this.lease.reset();
    if (newerLeaderKnown) this.learnedNewerLeader();
  }

  /** A node heard from a leader of a higher term than any it led: it need not self-fence any more. */
  learnedNewerLeader(): void {
    this.wasActive = false;
    this.lostSinceMs = null;
  }

  acknowledged(peer: NodeId, term: Term, nowMs: number): void {
    this.advance(nowMs);
    this.gate(peer)?.acknowledged(peer, term, this.now);
  }
  fenceStarted(peer: NodeId, nowMs: number): void {
    this.advance(nowMs);
    this.gate(peer)?.fenceStarted(peer, this.now);
  }
  fenceResult(peer: NodeId, ok: boolean, nowMs: number, reason: string): void {
    this.advance(nowMs);
    this.gate(peer)?.fenceResult(peer, ok, this.now, reason);
  }
  operatorConfirmed(peer: NodeId, nowMs: number): void {
    this.advance(nowMs);
    this.gate(peer)?.operatorConfirmed(peer, this.now);
  }

  private gate(peer: NodeId): ActivationGate | undefined {
    return this.lead?.gates?.get(String(peer));
  }

  /** Time passes; returns whether the node is active now. Tracks the self-fence timer. */
  tick(nowMs: number, voters: readonly NodeId[]): boolean {
    this.advance(nowMs);
    const gates = this.lead?.gates;
    if (gates && gates.size > 0) for (const g of gates.values()) g.tick(this.now);
    const active = this.isActive(voters);
    if (active) {
      this.wasActive = true;
      this.lostSinceMs = null;
    } else if (this.wasActive && this.lostSinceMs === null) {
      this.lostSinceMs = this.now;
    }
    return active;
  }

  leaseUntil(voters: readonly NodeId[]): number {
    if (this.lead === null) return 0;
    const at = this.lease.quorumRoundAt(voters, this.now);
    return at === -Infinity ? 0 : at + this.opts.leaseMs;
  }

  private gatesOpen(): boolean {
    const l = this.lead;
    if (l === null || l.gates === null || l.token === 0 || this.unseen.size > 0) return false;
    if (l.gates.size > 0) for (const g of l.gates.values()) if (!g.active) return false;
    return true;
  }

  /** Active at `now` (exact: the lease is judged at this instant). */
  isActive(voters: readonly NodeId[], nowMs = this.now): boolean {
    this.advance(nowMs);
    return this.gatesOpen() && this.now < this.leaseUntil(voters);
  }

  /**
   * Monotonic time before which tick() cannot change whether this node is active or
   * whether it feeds its watchdog, when no other input comes first (the runtime's quiet
   * ticks sleep until then): the end of the own lease while active, the self-fence
   * deadline while that timer runs. -Infinity when the next tick may change something
   * (elected and not active yet: the gates and the lease are judged at every tick; or
   * the loss of activity is not timed yet); Infinity when no tick ever does by itself.
   */
  quietUntil(voters: readonly NodeId[]): number {
    let until = Infinity;
    if (this.lead !== null) {
      if (!this.isActive(voters)) return -Infinity;
      until = this.leaseUntil(voters);
    } else if (this.wasActive && this.lostSinceMs === null) return -Infinity;
    if (this.wasActive && this.lostSinceMs !== null && this.shouldFeedWatchdog()) until = Math.min(until, this.lostSinceMs + this.opts.selfFenceAfterMs);
    return until;
  }

  /** False once a node that was active spent `selfFenceAfterMs` without being active (self-fence). */
  shouldFeedWatchdog(): boolean {
    return !(this.wasActive && this.lostSinceMs !== null && this.now - this.lostSinceMs >= this.opts.selfFenceAfterMs);
  }

  get selfFencing(): boolean {
    return !this.shouldFeedWatchdog();
  }

  get term(): Term {
    return this.lead?.term ?? 0;
  }
  get token(): number {
    return this.lead?.token ?? 0;
  }

  /**
   * view().wantFence without the view: the earlier leaders this leadership wants fenced
   * now (the runtime asks on every step while it leads and is not active; the view
   * builds every gate's sentences). Appends to `out` and returns it.
   */
  wantFence(out: NodeId[]): NodeId[] {
    const l = this.lead;
    if (l === null || l.gates === null || this.unseen.size > 0) return out;
    for (const g of l.gates.values()) {
      const w = g.wantFence;
      if (w !== null) out.push(w);
    }
    return out;
  }

  view(voters: readonly NodeId[]): ActivationView {
    const l = this.lead;
    if (l === null) return { elected: false, active: false, term: 0, token: 0, waitingFor: 'not leader', wantFence: [], clearedBy: {}, safeAtMs: null, leaseUntilMs: 0 };
    const leaseUntil = this.leaseUntil(voters);
    // Whole literals, not `{ ...base, more }`: V8 (Node 20) gives every object built as a
    // spread plus keys the source lacks a hidden class of its own (a new map and its
    // descriptors, old-generation garbage), and /v1/status and /v1/leader build a view per
    // request: that was ~1 KB promoted to the old generation per request.
    const { term, token, safeAtMs } = l;
    if (this.unseen.size > 0) {
      // No fence either: two boards that never saw each other must not fence each other at boot.
      return { elected: true, term, token, safeAtMs, leaseUntilMs: leaseUntil, active: false, waitingFor: `first start: every node of fencing.waitForAll must be seen once (not seen yet: ${[...this.unseen].sort((a, b) => a - b).join(', ')})`, wantFence: [], clearedBy: {} };
    }
    if (l.gates === null) return { elected: true, term, token, safeAtMs, leaseUntilMs: leaseUntil, active: false, waitingFor: 'elected: waiting for this leadership\'s claim entry to commit (the token and the list of earlier leaders come from it)', wantFence: [], clearedBy: {} };
    const clearedBy: Record<string, ActivationReason> = {};
    const waits: string[] = [];
    const wantFence: NodeId[] = [];
    for (const [k, g] of l.gates) {
      const st = g.status();
      if (st.active && st.activeBy !== null) clearedBy[k] = st.activeBy;
      else waits.push(st.waitingFor);
      if (st.wantFence !== null) wantFence.push(st.wantFence);
    }
    if (waits.length === 0 && this.now >= leaseUntil) waits.push(`own lease: no heartbeat round acknowledged by a quorum within ${this.opts.leaseMs} ms`);
    return { elected: true, term, token, safeAtMs, leaseUntilMs: leaseUntil, active: waits.length === 0, waitingFor: waits.join('; '), wantFence, clearedBy, suspects: [...l.gates.keys()].map(Number) };
  }
}

/** Handed to `onActivation` listeners (hooks, jobs, actuators): act only between active=true and active=false, with this token. */
export interface ActivationEvent {
  active: boolean;
  term: Term;
  /** The leadership's fencing token (src/fence/token.ts: Raft, the committed index of this term's no-op; bully, epoch×256+id). */
  token: number;
  /** Own monotonic ms. */
  atMs: number;
}

/**
 * The `onActivation` subscribers of a runtime (either engine): added and removed by
 * the application, told of every change of activity in order. A listener that throws
 * is logged and does not stop the others or the runtime.
 */
export class ActivationListeners {
  private readonly list: Array<(ev: ActivationEvent) => void> = [];

  constructor(
    private readonly who: string,
    private readonly logError: (message: string) => void,
  ) {}

  /** Subscribes `cb`; returns its unsubscribe. */
  add(cb: (ev: ActivationEvent) => void): () => void {
    if (typeof cb !== 'function') throw new TypeError(`${this.who}.onActivation: expected a function`);
    this.list.push(cb);
    return () => {
      const i = this.list.indexOf(cb);
      if (i >= 0) this.list.splice(i, 1);
    };
  }

  /** Calls every listener subscribed now (a listener may unsubscribe while called). */
  emit(ev: ActivationEvent): void {
    for (const cb of [...this.list]) {
      try {
        cb(ev);
      } catch (e) {
        this.logError((e as Error).message);
      }
    }
  }
}
