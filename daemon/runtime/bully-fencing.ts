/**
 * Split-brain defenses of an election-only engine (bully, src/bully/engine.ts) in the
 * engine runtime (engine-node.ts): when an elected coordinator becomes *active* —
 * drives actuators, runs hooks — and whom it fences first. The log engines use
 * leader-fencing.ts instead (claims in the log, an own lease on quorum rounds, the
 * watchdog); bully has no quorum, so none of that applies, and the rules are these
 * (moved unchanged from the former bully runtime, docs/fencing.md):
 *
 * "coordinator" is not "active". A coordinator is active only once every earlier
 * coordinator it knows of cannot act any more. Bully has no lease, so the only proofs are:
 *   - **fenced**: switched off and verified off by STONITH (src/fence Fencer: levels,
 *     verify, retries, delays; the same HAL relays and power-sense inputs as Raft);
 *   - **acknowledged**: the suspect sent an Election or Answer at an epoch ≥ the epoch
 *     of its coordinatorship we know. The engine sends those only while *not*
 *     coordinator, with its current epoch, and an epoch ≥ e means that coordinatorship
 *     e had ended when it sent (src/bully/bully.ts: a coordinator that adopts a higher
 *     epoch steps down; a new coordinatorship takes a fresh epoch). Every follower's
 *     member report (below) is such an Election, so an earlier coordinator that now
 *     follows us acknowledges within one report: a preemption, or a partition healed
 *     under nopreempt, does not power-cycle a board that already stepped down;
 *   - **operator**: `confirmFenced(node)` (`quorumd fence confirm NODE`), judged as below.
 * Suspects ("every earlier coordinator it knows of"): every board whose Coordinator
 * announcement this process received (highest token per board) or that it followed,
 * with a token below ours, minus those shown stopped since (an Election/Answer as
 * above, or cleared at an earlier activation). A coordinatorship this process never
 * heard of (another component of a partition, or before its boot) is not a suspect:
 * nothing can be known about it; fencing tokens at the resource contain it.
 * A suspect without a fence device on this board can only be cleared by an
 * acknowledgement or an operator (the status says so): bully has no lease to wait out,
 * so wire a relay to every board that may coordinate (the simulator does).
 *
 * Member reports. Bully's own traffic goes one way: the coordinator announces, the
 * followers listen, so no board hears a live follower — and `fence confirm` of a running
 * board was accepted everywhere (the alive check found it silent). So, with a `fencing`
 * option, a follower sends its coordinator a BullyElection at its acted (durable) epoch
 * as soon as it follows a new (coordinator, epoch) and then every memberReportMs (at
 * most 200 ms: five reports per ALIVE_WINDOW_MS at the default timing). It is legal
 * bully traffic, no new message type: an Election that reaches a coordinator is
 * answered with its announcement (src/bully/bully.ts; from a follower above it too,
 * which exists under nopreempt), and it is the step-down acknowledgement above. What it
 * costs: (n − 1) reports and (n − 1) answers per report period, on top of (n − 1)
 * announcements per heartbeat: 1.5 × bully's former idle traffic with the engine's
 * 50 ms heartbeat, 2 × with the boards' 100 ms — then as many messages as Raft, whose
 * followers answer every heartbeat for the same reason. (A message type of its own
 * would have spared the answers, at the price of a wire-format change that boards of an
 * older build drop as an unknown type.)
 *
 * Who judges `fence confirm`: only the coordinator, which every live follower reports
 * to, and only once it has coordinated for the whole alive window (bullyAliveWindowMs;
 * 1 s at the defaults): before that a live member may not have reported yet (it learns
 * of the coordinator from its announcement), and a board that just booted has heard
 * nobody. A follower or candidate refuses (409 not-leader, naming the coordinator), a
 * coordinator too new answers 503 with when to retry, and a member heard within the
 * window is alive (409). Accepted, the answer says what the coordinator knew: when it
 * last heard the node (null: never since this process started) and how long it had
 * listened. What no board can see: a board that runs but whose frames reach nobody
 * (cut off, or stopped with SIGSTOP and resumed later) — confirming it is the operator's
 * word against no evidence, as with every engine (docs/fencing.md).
 *
 * Modes: no `fencing` option = 'off', a `fencing` option without fencer targets =
 * 'tokens-only': in both, active as soon as coordinator (there is nothing to wait for)
 * unless superseded; outside resources must check the token. With targets: 'stonith'
 * (the gates above). No self-fencing: a bully coordinator has no majority whose loss it
 * could notice, so the watchdog is not used.
 */
import { fencingToken, type BullyEngine, type BullySoftState } from '../../src/bully/index.ts';
import { MsgType, type Message } from '../../src/wire/messages.ts';
import { NO_NODE, type NodeId, type Term } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Clock, PowerSense, Relay } from '../../hal/interfaces.ts';
import { ActivationGate, type ActivationReason, type Fencer, type FenceRecord, type FencerConfig } from '../../src/fence/index.ts';
import type { Logger } from './logger.ts';
import type { ActivationEvent } from './activation.ts';
import { FencingDriver, badNodeArg, fenceSucceeded } from './fencing-driver.ts';
import { ALIVE_WINDOW_MS, aliveRefusal, type ConfirmResult } from './leader-fencing.ts';

/**
 * How often a follower reports to its coordinator (ms): five reports per
 * ALIVE_WINDOW_MS, but never more often than every second announcement period (a slow
 * link with a long heartbeat gets a longer alive window instead, bullyAliveWindowMs).
 */
export function memberReportMs(heartbeatMs: number): number {
  return Math.max(ALIVE_WINDOW_MS / 5, 2 * heartbeatMs);
}

/**
 * How long a bully member must have been silent, to a coordinator that listened all
 * that time, before `fence confirm` of it is taken (ms): ALIVE_WINDOW_MS, or five
 * report periods when they are longer, so that four lost reports in a row never make a
 * live member confirmable.
 */
export function bullyAliveWindowMs(heartbeatMs: number): number {
  return Math.max(ALIVE_WINDOW_MS, 5 * memberReportMs(heartbeatMs));
}

/** The bully fencing options (omitted: mode 'off', active = coordinator). */
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

export type BullyFencingMode = 'stonith' | 'tokens-only' | 'off';

/** What the module needs from the runtime that hosts it. */
export interface BullyFencingHost {
  who: string;
  id: NodeId;
  clock: Clock;
  log: Logger;
  rng: Rng;
  tickMs: number;
  running(): boolean;
  stopped(): boolean;
  /** The engine (undefined before boot). */
  engine(): BullyEngine | undefined;
  send(m: Message): void;
  heardAgoMs(node: NodeId): number | undefined;
  /** An exception in a device answer or a timer: the runtime's fatal path. */
  crash(where: string, e: unknown): void;
  activationChanged(ev: ActivationEvent): void;
  /** A fence run by this node finished (outcome other than 'pending'). */
  fenced(rec: FenceRecord): void;
}

/** The bully-only fields of a node's status. */
export interface BullyActivationStatus {
  fencingMode: BullyFencingMode;
  /** Earlier coordinators known to this process (`n<id>` → highest token heard); the suspects of its next coordinatorship. */
  knownCoordinators: Record<string, number>;
  /** How each suspect of the current coordinatorship was cleared. */
  clearedBy: Record<string, ActivationReason>;
}

export class BullyFencing {
  readonly mode: BullyFencingMode;
  /** STONITH through this board's relays (undefined without fencer targets). */
  private fenceDriver: FencingDriver | undefined;
  /** Earlier coordinators this process heard of: node → highest token (bounded by the member count). */
  private readonly known = new Map<NodeId, number>();
  /** The current coordinatorship and one gate per suspect (null when not coordinator). */
  private lead: { epoch: Term; token: number; gates: Map<NodeId, ActivationGate>; suspectTokens: Map<NodeId, number> } | null = null;
  private activeValue = false;
  /** The (coordinator, epoch) this follower last reported to, and when (member reports, file comment). */
  private reportedTo = '';
  private reportedAtMs = -Infinity;
  /** Since when this node has been coordinator without a break (undefined when it is not): how long it has listened to the reports. */
  private coordinatingSinceMs: number | undefined;
  /** When this process's fencing started (booted()): what a coordinator that heard nothing can say. */
  private bootedAtMs = 0;
  /** The acted soft state last seen (step()). */
  private acted: BullySoftState = { role: 'follower', leader: NO_NODE, term: 0 };

  constructor(private readonly host: BullyFencingHost, private readonly opts: BullyFencingOptions | undefined) {
    const f = opts;
    if (f === undefined) {
      this.mode = 'off';
      return;
    }
    if (f === null || typeof f !== 'object') throw new TypeError(`${host.who}: fencing must be an object (BullyFencingOptions)`);
    const targets = f.fencer?.targets ?? [];
    if (!Array.isArray(targets)) throw new TypeError(`${host.who}: fencing.fencer.targets must be an array`);
    this.mode = targets.length > 0 ? 'stonith' : 'tokens-only';
    if (targets.length === 0) return;
    this.fenceDriver = new FencingDriver({
      who: host.who,
      id: host.id,
      devices: f,
      rng: host.rng,
      clock: host.clock,
      log: host.log,
      running: () => host.running(),
      stopped: () => host.stopped(),
      resultFed: () => this.updateActive(),
      wake: () => this.updateActive(),
      record: (r, now) => this.fenceRecordChanged(r, now),
      pollMs: host.tickMs,
      fatal: (where, e) => host.crash(where, e),
    });
  }

  /** The boot's starting point: the epoch the engine was built from. */
  booted(epoch: Term): void {
    this.acted = { role: 'follower', leader: NO_NODE, term: epoch };
    this.bootedAtMs = this.host.clock.monotonicMs();
  }

  /** The runtime's tick: member reports, then activity. */
  tick(): void {
    if (!this.host.running()) return;
    this.report(this.host.clock.monotonicMs());
    this.updateActive();
  }

  /** The report period and alive window of this node's engine timing. */
  private get heartbeatMs(): number {
    return this.host.engine()?.node.options.heartbeatMs ?? 50;
  }

  /**
   * A follower's report to its coordinator (file comment): an Election at the acted
   * epoch, at once for a new (coordinator, epoch), then every memberReportMs. The acted
   * epoch is durable; the acted role says this node is not coordinator at it, which is
   * what makes the Election a step-down acknowledgement at the receiver (heard()).
   */
  private report(now: number): void {
    const eng = this.host.engine();
    if (!this.opts || !eng) return;
    const ss = eng.actedState;
    if (ss.role !== 'follower' || ss.leader === NO_NODE || ss.leader === this.host.id) return;
    const key = `${ss.leader}:${ss.term}`;
    if (key === this.reportedTo && now - this.reportedAtMs < memberReportMs(this.heartbeatMs)) return;
    this.reportedTo = key;
    this.reportedAtMs = now;
    this.host.send({ type: MsgType.BullyElection, from: this.host.id, to: ss.leader, term: ss.term, priority: eng.priority });
  }

  private get fencer(): Fencer | undefined {
    return this.fenceDriver?.fencer;
  }

  private get isLeader(): boolean {
    return this.host.running() && this.host.engine()?.isLeader === true;
  }

  /** Fencing token of this node's own coordinatorship (its epoch durable), 0 when not coordinator. */
  get ownToken(): number {
    return this.isLeader ? this.host.engine()!.leaderToken() : 0;
  }

  get active(): boolean {
    return this.isLeader && this.activeValue;
  }

  get token(): number {
    return this.active ? this.ownToken : 0;
  }

  /**
   * The acted coordinatorship is over already: the engine has stepped down in memory (or
   * begun a fresh epoch), and the runtime is only acting out a Ready whose epoch is still
   * being made durable (one Ready at a time). Never activate on such a stale Ready. A
   * token above our own among the known coordinators says so too, but is not enough
   * alone: that entry is deleted when the other board acknowledges *its* step-down (an
   * Answer at the new epoch), which can happen while our Ready still waits for its fsync.
   */
  private superseded(): boolean {
    if (this.host.engine()?.actedLeadStale) return true;
    const own = this.ownToken;
    for (const t of this.known.values()) if (t > own) return true;
    return false;
  }

  /** Remembers a coordinatorship this process heard of (node → highest token). */
  private remember(node: NodeId, token: number): void {
    if (node === this.host.id || node === NO_NODE) return;
    if (token > (this.known.get(node) ?? 0)) this.known.set(node, token);
    // Heard while elected but not yet active: it is a suspect of this coordinatorship too.
    const l = this.lead;
    if (l && !this.activeValue && token < l.token && token > (l.suspectTokens.get(node) ?? 0)) this.addGate(node, token);
  }

  /** An authenticated message, before the engine steps it. */
  heard(m: Message): void {
    if (m.type !== MsgType.BullyElection && m.type !== MsgType.BullyAnswer && m.type !== MsgType.BullyCoordinator) return;
    const prio = this.host.engine()!.priorityOf(m.from);
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
      l.gates.get(m.from)!.acknowledged(m.from, l.epoch, this.host.clock.monotonicMs());
      this.updateActive();
    }
  }

  /** A gate for suspect `node` (its coordinatorship `token`), replacing an older one. */
  private addGate(node: NodeId, token: number): void {
    const l = this.lead!;
    l.suspectTokens.set(node, token);
    const now = this.host.clock.monotonicMs();
    const g = new ActivationGate({ self: this.host.id, stonith: this.fencer?.canFence(node) ?? false, formed: true });
    // No lease bound (safeAtMs null): only a fence, an acknowledgement or an operator clears it.
    g.elected({ term: l.epoch, nowMs: now, previousLeader: node, safeAtMs: null });
    l.gates.set(node, g);
  }

  /** After every engine input and handled Ready: acts on a change of the acted soft state. */
  step(): void {
    const eng = this.host.engine();
    if (!eng) return;
    const ss = eng.actedState;
    if (ss.role === this.acted.role && ss.leader === this.acted.leader && ss.term === this.acted.term) return;
    this.acted = { ...ss };
    this.leadershipChanged(ss);
  }

  /** The acted soft state changed (role, leader or epoch). */
  private leadershipChanged(ss: BullySoftState): void {
    const id = this.host.id;
    const now = this.host.clock.monotonicMs();
    if (ss.leader !== NO_NODE && ss.leader !== id) this.remember(ss.leader, fencingToken(ss.term, ss.leader));
    const token = ss.role === 'coordinator' ? fencingToken(ss.term, id) : 0;
    // Listening starts afresh with every coordinatorship (a fresh epoch too: the members
    // may have followed another coordinator in between, and reported to it).
    if (token === 0) this.coordinatingSinceMs = undefined;
    else if (this.lead?.token !== token) this.coordinatingSinceMs = now;
    if (token !== 0 && this.lead?.token !== token) {
      if (this.activeValue) this.setActive(false); // a fresh epoch is a new coordinatorship: a new token, a new activation
      this.lead = { epoch: ss.term, token, gates: new Map(), suspectTokens: new Map() };
      for (const [n, t] of this.known) if (t < token) this.addGate(n, t);
      this.host.log('info', this.lead.gates.size > 0 ? 'coordinator: not active until earlier coordinators are shown stopped' : 'coordinator: no earlier coordinator known', { node: id, epoch: ss.term, token, suspects: [...this.lead.gates.keys()].join(',') || 'none' });
    } else if (token === 0 && this.lead) {
      this.lead = null;
      this.setActive(false);
      this.fenceDriver?.cancelDelayed(now, 'stepped down');
    }
    // A new coordinator to follow: report at once (it is also the step-down acknowledgement).
    this.report(now);
    this.updateActive();
  }

  /** Re-evaluates activity: gates, fences to start, fencer commands and results. */
  updateActive(): void {
    if (!this.host.running()) return;
    const now = this.host.clock.monotonicMs();
    const l = this.lead;
    if (this.mode !== 'stonith') {
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
      this.fenceDriver?.cancelDelayed(now, 'active');
    } else if (!open && this.activeValue) this.setActive(false);
    this.runFencer(now);
  }

  private setActive(on: boolean): void {
    if (on === this.activeValue) return;
    this.activeValue = on;
    const ev: ActivationEvent = { active: on, term: this.acted.term, token: on ? this.ownToken : (this.lead?.token ?? fencingToken(this.acted.term, this.host.id)), atMs: this.host.clock.monotonicMs() };
    this.host.log('info', on ? 'active' : 'not active any more', { node: this.host.id, epoch: ev.term, token: ev.token, ...(on ? { by: JSON.stringify(this.clearedBy()) } : {}) });
    this.host.activationChanged(ev);
  }

  private clearedBy(): Record<string, ActivationReason> {
    const out: Record<string, ActivationReason> = {};
    for (const [n, g] of this.lead?.gates ?? []) {
      const st = g.status();
      if (st.active && st.activeBy !== null) out[`n${n}`] = st.activeBy;
    }
    return out;
  }

  waitingFor(): string {
    if (!this.isLeader || this.active) return '';
    const waits: string[] = [];
    for (const [n, g] of this.lead?.gates ?? []) {
      const st = g.status();
      if (st.active) continue;
      waits.push(this.fencer?.canFence(n) ? st.waitingFor : `earlier coordinator n${n} may still act: no fence device for it on this board; waiting for an acknowledgement from n${n} or \`quorumd fence confirm n${n}\``);
    }
    return waits.join('; ');
  }

  status(): BullyActivationStatus {
    return {
      fencingMode: this.mode,
      knownCoordinators: Object.fromEntries([...this.known].map(([n, t]) => [`n${n}`, t])),
      clearedBy: this.clearedBy(),
    };
  }

  /** Fences run by this node (this boot, newest last). */
  fences(): FenceRecord[] {
    return this.fencer?.history() ?? [];
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
        this.fenceDriver!.fence(target, now, { reason: `earlier coordinator, before n${this.host.id} acts at epoch ${l.epoch}`, term: l.epoch, targetRunsWorkload: false });
        g.fenceStarted(target, now);
        this.host.log('warn', 'fencing', { node: this.host.id, target, epoch: l.epoch, delayMs: f.current(target)?.delayMs ?? 0 });
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
      this.host.fenced(r);
      this.fenceDriver!.logFinished(r, ok);
    } else {
      this.fenceDriver!.logPowerOn(r);
    }
  }

  /** The node stopped (or failed): no timer left, not active. */
  stopped(): void {
    this.fenceDriver?.stop();
    this.setActive(false);
    this.coordinatingSinceMs = undefined;
  }

  /**
   * Operator: `quorumd fence confirm NODE` — a human declares `node` safely down (as
   * Pacemaker's stonith_admin --confirm): it is no longer a suspect, now or later. Judged
   * by the coordinator only, after a whole alive window of listening (file comment).
   */
  confirmFenced(node: NodeId): ConfirmResult {
    const bad = badNodeArg(node);
    if (bad) return { ok: false, error: bad };
    const id = this.host.id;
    if (node === id) return { ok: false, error: 'a node cannot confirm itself down' };
    if (!this.host.running()) return { ok: false, error: `node ${id} is not running` };
    if (this.mode !== 'stonith') return { ok: false, error: `node ${id} has no activation gate (fencing.fencer.targets is empty): nothing to confirm` };
    const eng = this.host.engine()!;
    const now = this.host.clock.monotonicMs();
    const windowMs = bullyAliveWindowMs(this.heartbeatMs);
    const reportMs = memberReportMs(this.heartbeatMs);
    const heard = this.host.heardAgoMs(node);
    const acted = eng.actedState;
    const alive = aliveRefusal(node, heard, acted.role !== 'coordinator' && acted.leader === node, windowMs);
    if (alive) return { ok: false, alive: true, error: alive };
    const since = this.isLeader ? this.coordinatingSinceMs : undefined;
    if (since === undefined) {
      const c = acted.leader;
      return {
        ok: false,
        notLeader: true,
        error:
          c !== NO_NODE && c !== id
            ? `n${id} is not the coordinator (n${c} is): a bully follower hears only its coordinator, so it cannot tell whether n${node} is alive; confirm on the coordinator n${c}`
            : `n${id} is not the coordinator and follows none: only the coordinator hears every member (each reports to it every ${reportMs} ms), so only it can tell whether n${node} is alive; confirm on the coordinator once one is elected`,
      };
    }
    const listenedMs = now - since;
    if (listenedMs < windowMs) {
      const known = heard === undefined ? `it has heard nothing from n${node} since it started ${Math.floor(now - this.bootedAtMs)} ms ago` : `it last heard n${node} ${Math.round(heard)} ms ago`;
      return {
        ok: false,
        error: `n${id} coordinates since ${Math.floor(listenedMs)} ms only (${known}): every live member reports to its coordinator every ${reportMs} ms, so it cannot tell yet whether n${node} has been silent for ${windowMs} ms; retry in ${Math.ceil(windowMs - listenedMs)} ms`,
      };
    }
    const superseded = this.fencer?.current(node)?.outcome === 'pending';
    this.fenceDriver!.confirm(node, now, { term: this.acted.term }); // (the coordinator's epoch, as its fences carry)
    this.known.delete(node);
    this.lead?.gates.get(node)?.operatorConfirmed(node, now);
    const lastHeardMs = heard === undefined ? null : Math.round(heard);
    this.host.log('warn', `operator confirmed n${node} down`, { node: id, target: node, lastHeardMs: lastHeardMs ?? 'never since start', listenedMs: Math.floor(listenedMs) });
    try {
      this.updateActive();
    } catch (e) {
      // Recorded, then the node failed: the fatal path, and the confirmation still counts.
      this.host.crash('fence confirm', e);
      return { ok: true, superseded, active: false, waitingFor: '', lastHeardMs, listenedMs: Math.floor(listenedMs), warning: `recorded, but node ${id} then stopped on an internal error: ${(e as Error)?.message ?? String(e)}` };
    }
    return { ok: true, superseded, active: this.active, waitingFor: this.waitingFor(), lastHeardMs, listenedMs: Math.floor(listenedMs) };
  }

  /**
   * Operator: `quorumd fence NODE` — fence `node` now through this board's devices.
   * The callback gets the finished record (bounded: the fencer times out every command).
   */
  fence(node: NodeId, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
    const bad = badNodeArg(node);
    if (bad) return cb({ ok: false, error: bad });
    if (!this.host.running()) return cb({ ok: false, error: `node ${this.host.id} is not running` });
    if (!this.fencer || !this.fencer.canFence(node)) return cb({ ok: false, error: `node ${this.host.id} has no fence device for n${node} (fencing.fencer.targets)` });
    const now = this.host.clock.monotonicMs();
    const id = this.fenceDriver!.fence(node, now, { reason: 'operator request', term: this.acted.term });
    this.lead?.gates.get(node)?.fenceStarted(node, now);
    this.runFencer(now);
    this.fenceDriver!.waitFor(id, cb);
  }
}
