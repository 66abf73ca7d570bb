/**
 * Split-brain defenses of a log-engine runtime (docs/fencing.md): the part of a node
 * runtime that turns "elected" into "active" through the replicated log, shared by the
 * Raft runtime (node.ts) and the contract-engine runtime (engine-node.ts: Multi-Paxos,
 * ZAB). The rules and the timing proof are in activation.ts; the HAL side of STONITH
 * is fencing-driver.ts. This module is the glue between them and the log:
 *
 *   - a new leader proposes `lead.claim` at once; when it is applied, the state machine
 *     names the *suspects* (earlier leaders that may still act) and the leadership's
 *     fencing token is known (Raft: the index of its term's no-op; Paxos: its start
 *     slot; ZAB: the index of zxid (epoch, 0) — the engine's leaderToken());
 *   - the leader is `active` once every suspect is fenced and verified off, acknowledged
 *     its term, was confirmed down by an operator, or the lease bound passed — and while
 *     its own lease (a heartbeat round acknowledged by a quorum in its term) holds. It
 *     then proposes `lead.active`, so later leaders need not suspect older ones;
 *   - finished fences go into the replicated history (`fence.record`), and a fence that
 *     switched a target off is carried to its end by the next active leader if its own
 *     fencer could not (hand-over through the replicated `powered-on` record);
 *   - the watchdog is fed every tick, except by a node that lost its lease after being
 *     active (self-fence);
 *   - operator actions: fence(node), confirmFenced(node).
 *
 * What differs between engines stays in the runtime and reaches this module through
 * `LeaderFencingHost`: how to propose, which messages are heartbeat rounds and which
 * acknowledge the leader's term, and when the token is known.
 */
import { KvError, encodeCommand, type ApplyResult, type Command, type FenceHistoryRecord, type KvStateMachine } from '../../src/kv/index.ts';
import type { Fencer, FenceRecord, FencerConfig } from '../../src/fence/index.ts';
import type { Entry } from '../../src/wire/messages.ts';
import { NO_NODE, type NodeId, type Term } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Cancel, Clock, PowerSense, Relay, Watchdog } from '../../hal/interfaces.ts';
import { ActivationController, resolveActivationOptions, type ActivationEvent, type ActivationOptions, type ActivationView } from './activation.ts';
import { FencingDriver, badNodeArg, fenceSucceeded } from './fencing-driver.ts';
import type { Logger } from './logger.ts';

/**
 * Split-brain defenses (docs/fencing.md; daemon/runtime/activation.ts). Without this
 * option a leader is active as soon as it is elected (the pre-fencing behaviour,
 * kept for tests of the engine alone); with it, the activation gate, the lease,
 * STONITH (when `fencer` lists targets) and watchdog self-fencing are on.
 */
export interface RuntimeFencingOptions {
  activation?: ActivationOptions;
  /** The board's hardware watchdog: fed every tick while healthy (self-fencing stops that). Without it the lease bound assumes `watchdogTimeoutMs`. */
  watchdog?: Watchdog;
  /** Watchdog timeout to assume for the lease bound when no `watchdog` is given (ms). Default 15000 (bcm2835 maximum). */
  watchdogTimeoutMs?: number;
  /** HAL relays this board drives and power-sense inputs it reads, found by name from the fencer config. */
  relays?: Relay[];
  powerSense?: PowerSense[];
  /** STONITH: fence targets and timing (src/fence/fencer.ts documents every field and default). Omitted or no targets: leases only. */
  fencer?: Omit<FencerConfig, 'self'>;
}

/** What `confirmFenced` did (the HTTP answer of `POST /v1/fence/<node>/confirm`). */
export interface ConfirmResult {
  ok: boolean;
  error?: string;
  /** Refused because the node is alive (HTTP 409). */
  alive?: boolean;
  /** Refused because this node is not the leader: only the leader can tell whether the node is alive (HTTP 409). */
  notLeader?: boolean;
  /** A fence of the node that was still running here was superseded by the confirmation. */
  superseded?: boolean;
  /** This node is an active leader after the confirmation; else what it still waits for. */
  active?: boolean;
  waitingFor?: string;
  /** Recorded, but something went wrong after (the node stopped). */
  warning?: string;
  /**
   * What the leader (bully: the coordinator) knew when it accepted, the evidence it judged
   * on: how long ago it last accepted a message from the node (null: never since its
   * process started), and how long it had been leading, i.e. hearing every live member.
   */
  lastHeardMs?: number | null;
  listenedMs?: number;
}

/**
 * A node heard from within this many ms is alive: `fence confirm` of it is refused.
 * Twenty heartbeats of the default configuration (a live leader is never silent that
 * long towards a node it leads), and no wait worth mentioning for an operator who
 * really pulled the plug.
 */
export const ALIVE_WINDOW_MS = 1000;

/**
 * Why confirming `node` down is refused (it is alive), or undefined. Shared by every
 * runtime; `windowMs` is ALIVE_WINDOW_MS except where an engine's timing needs longer
 * (bully-fencing.ts).
 */
export function aliveRefusal(node: NodeId, heardAgoMs: number | undefined, isKnownLeader: boolean, windowMs = ALIVE_WINDOW_MS): string | undefined {
  if (heardAgoMs !== undefined && heardAgoMs < windowMs) {
    return `n${node} is alive: this node accepted an authenticated message from it ${Math.round(heardAgoMs)} ms ago; confirm only a node that is powered off (it must have been silent for ${windowMs} ms)`;
  }
  if (isKnownLeader) return `n${node} is the leader this node follows; confirm only a node that is powered off`;
  return undefined;
}

/**
 * Why this node cannot judge whether `node` is alive, or undefined when it can. Silence
 * means something only to a node that would have heard the other one: the leader, which
 * every live voter, witness and learner answers many times a second, once it has led
 * for the whole window. A follower hears its leader (and candidates) only, so every
 * other follower looks silent to it, alive or not.
 */
export function cannotJudgeAlive(self: NodeId, node: NodeId, leader: { isLeader: boolean; leaderId: NodeId; leadingForMs: number }): { notLeader: boolean; error: string } | undefined {
  if (!leader.isLeader) {
    const l = leader.leaderId;
    return {
      notLeader: true,
      error:
        l !== NO_NODE && l !== self
          ? `n${self} is not the leader (n${l} is): a follower hears only its leader, so it cannot tell whether n${node} is alive; confirm on the leader n${l}`
          : `n${self} is not the leader and knows of none: only a leader hears every node, so only a leader can tell whether n${node} is alive; confirm on the leader once one is elected`,
    };
  }
  if (leader.leadingForMs < ALIVE_WINDOW_MS) {
    const wait = Math.ceil(ALIVE_WINDOW_MS - leader.leadingForMs);
    return { notLeader: false, error: `n${self} leads since ${Math.floor(leader.leadingForMs)} ms only: it cannot tell yet whether n${node} has been silent for ${ALIVE_WINDOW_MS} ms; retry in ${wait} ms` };
  }
  return undefined;
}

/** The activation fields of a runtime's status. */
export interface ActivationStatus {
  /** Elected leader, and allowed to act on the outside world (docs/fencing.md). Without fencing options: the same as being leader. */
  elected: boolean;
  active: boolean;
  /** Why an elected leader is not active yet ('' otherwise). */
  waitingFor: string;
  /** This leadership's fencing token (0 when none). */
  token: number;
  /** Activation details (undefined without fencing options). */
  activation: ActivationView | undefined;
  /** Fences run by this node (this boot; newest last) and the replicated history. */
  fences: { local: FenceRecord[]; history: FenceHistoryRecord[] };
  /** The node stopped feeding its watchdog (it lost its lease after being active): the board resets soon. */
  selfFencing: boolean;
}

/** What the module needs from the runtime that hosts it (all calls are cheap getters unless said). */
export interface LeaderFencingHost {
  /** Error message prefix: 'EngineRuntime'. */
  who: string;
  id: NodeId;
  clock: Clock;
  log: Logger;
  rng: Rng;
  /** The runtime's tick (an operator's fence is polled at it). */
  tickMs: number;
  /** The engine's minimum election timeout: the default own lease (activation.ts). */
  electionTimeoutMinMs: number;
  /** The cluster formed in an earlier boot (runtime metadata; the first-start rule). */
  formedBefore: boolean;
  running(): boolean;
  stopped(): boolean;
  /** The engine leads now. */
  isLeader(): boolean;
  /** The leader this node knows of (NO_NODE: none). */
  leaderId(): NodeId;
  /** The engine's leadership number now (Raft term, Paxos ballot, ZAB epoch). */
  term(): Term;
  /** Voting members now (voters and witnesses): the own lease needs a quorum of them. */
  voters(): NodeId[];
  /**
   * Called once when this node becomes leader: the leadership's fencing token if the
   * engine fixes it at election (Raft: the index of its no-op, the last index now), or 0
   * when it is known only once the leadership's first entry commits — then
   * `leaderToken()` is read when the claim entry is applied.
   */
  tokenAtElection(): number;
  leaderToken(): number;
  kv(): KvStateMachine;
  /** Proposes `data` on the engine right now (lead.claim, lead.active); true when the engine took it. */
  propose(data: Uint8Array): boolean;
  /** Proposes or forwards a fence history command (any node; the answer is ignored). */
  submit(cmd: Command): void;
  pump(): void;
  /** Persists "the cluster formed" in the runtime's metadata. */
  persistFormed(done: (err: Error | null) => void): void;
  /** An exception at an entry point of its own (a timer, a device answer): the runtime's fatal path. */
  crash(where: string, e: unknown): void;
  fatal(err: Error): void;
  /** Milliseconds since an authenticated message from `node` (undefined: never). */
  heardAgoMs(node: NodeId): number | undefined;
  /** A fence run by this node finished (outcome other than 'pending'). */
  fenced(rec: FenceRecord): void;
  /** Activity changed: the runtime tells its observer and `onActivation` listeners. */
  activationChanged(ev: ActivationEvent): void;
}

export class LeaderFencing {
  readonly act: ActivationController;
  /** STONITH through this board's relays (undefined without fencer targets). */
  readonly driver: FencingDriver | undefined;
  private readonly h: LeaderFencingHost;
  private readonly opts: RuntimeFencingOptions;
  private activeValue = false;
  private leaderTermValue: Term = 0;
  private votersValue: NodeId[] = [];
  private electedToken = 0;
  /** When this node became leader (monotonic ms; its confirmations wait for ALIVE_WINDOW_MS of it). */
  private leaderSinceMs = 0;
  private claimProposed: Term = 0;
  private selfFenceLogged = false;
  /** Power-ons taken over from earlier fencers, by target (pending timers). */
  private readonly handOvers = new Map<NodeId, { term: Term; cancel: Cancel }>();

  constructor(host: LeaderFencingHost, f: RuntimeFencingOptions) {
    if (typeof f !== 'object' || f === null) throw new TypeError(`${host.who}: fencing must be an object (RuntimeFencingOptions)`);
    this.h = host;
    this.opts = f;
    const wdMs = f.watchdog ? f.watchdog.timeoutMs : f.watchdogTimeoutMs ?? 15_000;
    if (typeof wdMs !== 'number' || !(wdMs > 0)) throw new RangeError(`${host.who}: fencing watchdog timeout must be > 0 ms, got ${String(wdMs)}`);
    const targets = f.fencer?.targets ?? [];
    const stonith = targets.length > 0;
    const o = resolveActivationOptions(f.activation, { electionTimeoutMinMs: host.electionTimeoutMinMs, watchdogTimeoutMs: wdMs, stonith });
    this.act = new ActivationController(host.id, o, host.formedBefore);
    if (!this.act.formed) {
      host.log('info', 'first start: not active until every node of fencing.waitForAll was seen once', { node: host.id, waitForAll: o.waitForAll.join(',') });
      this.act.onFormed = () => {
        host.log('info', 'cluster formed: every node of fencing.waitForAll seen; persisted', { node: host.id });
        host.persistFormed((err) => {
          if (err) host.fatal(err);
        });
      };
    }
    if (stonith) {
      this.driver = new FencingDriver({
        who: host.who,
        id: host.id,
        devices: f,
        rng: host.rng,
        clock: host.clock,
        log: host.log,
        running: () => host.running(),
        stopped: () => host.stopped(),
        resultFed: (now) => this.updateActive(now),
        wake: () => {
          if (host.running()) this.updateActive(host.clock.monotonicMs());
        },
        record: (r, now) => this.fenceRecordChanged(r, now),
        pollMs: host.tickMs,
        fatal: (where, e) => host.crash(where, e),
      });
    }
    this.votersValue = host.voters();
    f.watchdog?.feed();
  }

  /** The Fencer (undefined without fencer targets). */
  get fencer(): Fencer | undefined {
    return this.driver?.fencer;
  }
  /** The term of the leadership this node holds (0 when not leader). */
  get leaderTerm(): Term {
    return this.leaderTermValue;
  }
  /** The voters the own lease is counted against. */
  get voters(): readonly NodeId[] {
    return this.votersValue;
  }
  /** Active as last evaluated (the runtime's `active` getter judges the lease at the instant). */
  get activeNow(): boolean {
    return this.activeValue;
  }
  get token(): number {
    return this.act.token;
  }

  /** Allowed to act on the outside world at `now` (the lease judged at this instant). */
  isActive(now: number): boolean {
    return this.h.isLeader() && this.act.isActive(this.votersValue, now);
  }

  status(elected: boolean, active: boolean): ActivationStatus {
    const fences = { local: this.fencer?.history() ?? [], history: [...this.h.kv().fenceHistory] };
    const v = this.act.view(this.votersValue);
    return { elected, active, waitingFor: active ? '' : v.waitingFor, token: v.token, activation: v, fences, selfFencing: this.act.selfFencing };
  }

  /** Why this leader is not active ('' when it is or is not leader). */
  waitingFor(): string {
    return this.act.view(this.votersValue).waitingFor;
  }

  // ---------------------------------------------------------------------------
  // Inputs from the runtime

  /** The leader sent a heartbeat round `ctx` in `term` (the own lease counts rounds). */
  roundSent(term: Term, ctx: number): void {
    if (ctx !== 0 && term === this.leaderTermValue && term !== 0) this.act.lease.roundSent(ctx, this.h.clock.monotonicMs());
  }

  /** An authenticated message of the engine from `peer` arrived. */
  peerSeen(peer: NodeId): void {
    this.act.peerSeen(peer);
  }

  /**
   * `peer` sent a message in `term` that shows it follows this leadership (it does not
   * lead any earlier one); `round` is the heartbeat round it answers, if any.
   */
  acknowledged(peer: NodeId, term: Term, round: number | undefined): void {
    if (this.leaderTermValue === 0 || term !== this.leaderTermValue || !this.h.isLeader()) return;
    this.act.acknowledged(peer, term, this.h.clock.monotonicMs());
    if (round !== undefined && round !== 0) this.act.lease.roundAcked(peer, round);
  }

  /** After every engine step: leadership transitions, the claim entry, activity. */
  step(leader: boolean, wasLeader: boolean): void {
    const act = this.act;
    const h = this.h;
    const now = h.clock.monotonicMs();
    if (leader && !wasLeader) {
      this.leaderTermValue = h.term();
      this.leaderSinceMs = now;
      this.electedToken = h.tokenAtElection();
      this.votersValue = h.voters();
      act.elected(this.leaderTermValue, now);
      h.log('info', 'elected: not active until earlier leaders are shown stopped', { node: h.id, term: this.leaderTermValue, ...(this.electedToken > 0 ? { noop: this.electedToken } : {}) });
    } else if (!leader && wasLeader) {
      const l = h.leaderId();
      act.steppedDown(now, l !== NO_NODE && l !== h.id);
      this.leaderTermValue = 0;
      this.claimProposed = 0;
      this.driver?.cancelDelayed(now, 'stepped down');
    } else if (!leader) {
      const l = h.leaderId();
      if (l !== NO_NODE && l !== h.id) act.learnedNewerLeader();
    }
    if (leader && this.claimProposed !== this.leaderTermValue) {
      const data = encodeCommand({ op: 'lead.claim', node: h.id, term: this.leaderTermValue });
      if (!(data instanceof KvError) && h.propose(data)) this.claimProposed = this.leaderTermValue;
    }
    this.updateActive(now);
  }

  /** A committed entry was applied (`result` from the state machine). */
  applied(e: Entry, result: ApplyResult | undefined): void {
    if (result?.op !== 'lead.claim' || this.leaderTermValue === 0 || e.term !== this.leaderTermValue || this.act.token !== 0) return;
    const token = this.electedToken > 0 ? this.electedToken : this.h.leaderToken();
    if (token <= 0) {
      // The engine's first entry of this leadership commits before the claim (it was
      // proposed after it), so a token is always there; refuse to activate without one.
      this.h.log('error', 'leadership claim committed but the engine issued no fencing token: not activating', { node: this.h.id, term: this.leaderTermValue, index: e.index });
      return;
    }
    const sus = this.h.kv().suspects(this.leaderTermValue);
    this.act.suspectsKnown(token, sus, this.h.clock.monotonicMs());
    this.h.log('info', 'leadership claim committed', { node: this.h.id, term: this.leaderTermValue, index: e.index, token, suspects: sus.nodes.join(',') || 'none', unknown: sus.unknown });
  }

  /** Every tick: watchdog, fencer deadlines, lease expiry. */
  tick(): void {
    const now = this.h.clock.monotonicMs();
    this.updateActive(now);
    const wd = this.opts.watchdog;
    if (wd) {
      if (this.act.shouldFeedWatchdog()) wd.feed();
      else if (!this.selfFenceLogged) {
        this.selfFenceLogged = true;
        this.h.log('warn', 'self-fencing: lost the lease after being active; the watchdog will reset this board', { node: this.h.id, watchdogMs: wd.timeoutMs });
      }
    }
  }

  /**
   * Monotonic time before which tick() would change nothing here (no activation change,
   * no fence to start, the watchdog fed recently enough), when no other input comes
   * first: what the runtime's quiet ticks may sleep until (-Infinity: tick now). The
   * fencer's own deadlines have their own wake-up (fencing-driver.ts); the watchdog is
   * still fed at least every third of its timeout (hal/watchdog.ts recommendedFeedMs).
   */
  quietUntil(now: number): number {
    // Becoming active or just stopping (and a leader that is not active yet fences
    // from runFencer): every tick, as before.
    if (this.h.isLeader() !== this.activeValue) return -Infinity;
    let until = this.act.quietUntil(this.votersValue);
    const wd = this.opts.watchdog;
    if (wd) until = Math.min(until, now + Math.floor(wd.timeoutMs / 3));
    return until;
  }

  /** The node stops (stop() or the fatal path): not active any more, no wake-ups; `disarm` the watchdog on an orderly stop. */
  stopped(disarm: boolean): void {
    this.setActive(false);
    this.driver?.stop();
    if (disarm) this.opts.watchdog?.disarm();
  }

  updateActive(now: number): void {
    const act = this.act;
    const ticked = act.tick(now, this.votersValue); // always: it also runs the self-fence timer
    const on = this.h.isLeader() && ticked;
    if (!on && this.activeValue) this.setActive(false, now);
    if (on && !this.activeValue) {
      this.setActive(true, now);
      // The step's own `now`, not a fresh reading: the fencer is ticked with `now` below.
      this.driver?.cancelDelayed(now, 'active');
      this.scheduleHandOvers();
      // Later leaders need not suspect leaders older than this one any more.
      const data = encodeCommand({ op: 'lead.active', node: this.h.id, term: this.leaderTermValue, token: act.token });
      if (!(data instanceof KvError)) this.h.propose(data);
    }
    this.runFencer(now);
  }

  private setActive(on: boolean, now = this.h.clock.monotonicMs()): void {
    if (on === this.activeValue) return;
    this.activeValue = on;
    const ev: ActivationEvent = { active: on, term: this.leaderTermValue || this.h.term(), token: this.act.token, atMs: now };
    const v = this.act.view(this.votersValue);
    this.h.log('info', on ? 'active' : 'not active any more', { node: this.h.id, term: ev.term, token: ev.token, ...(on ? { by: JSON.stringify(v.clearedBy) } : {}) });
    this.h.activationChanged(ev);
  }

  /** Starts fences the gate asks for, executes fencer commands, feeds results back. */
  private runFencer(now: number): void {
    const f = this.fencer;
    if (!f) return;
    if (this.h.isLeader() && !this.activeValue) {
      // The targets alone, not the view (its sentences cost a step's allocations): a fresh
      // list, since starting a fence may come back here through the driver.
      for (const target of this.act.wantFence([])) {
        if (f.busy(target) || !f.canFence(target)) continue;
        const last = this.h.kv().activation;
        this.driver!.fence(target, now, { reason: `earlier leader, before n${this.h.id} acts in term ${this.leaderTermValue}`, term: this.leaderTermValue, targetRunsWorkload: last !== null && last.node === target });
        this.act.fenceStarted(target, now);
        this.h.log('warn', 'fencing', { node: this.h.id, target, term: this.leaderTermValue, delayMs: f.current(target)?.delayMs ?? 0 });
      }
    }
    this.driver!.step(now);
  }

  private fenceRecordChanged(r: FenceRecord, now: number): void {
    if (r.outcome === 'pending') return;
    const ok = fenceSucceeded(r);
    if (r.poweredOnAtMs === null && r.powerOnError === null) {
      // The fence itself finished (a later record of the same fence reports the power-on).
      if (r.outcome !== 'confirmed') this.act.fenceResult(r.target, ok, now, r.attempts.at(-1)?.error ?? r.outcome);
      this.h.fenced(r);
      this.driver!.logFinished(r, ok);
      if (r.outcome === 'confirmed') return; // confirmFenced proposed its record (with the term)
      const cmd: Command = { op: 'fence.record', target: r.target, by: r.by, term: r.term, outcome: r.outcome, level: r.level ?? -1, atMs: Math.floor(r.finishedAtMs ?? now), reason: r.reason.slice(0, 200) };
      if (encodeCommand(cmd) instanceof Uint8Array) this.h.submit(cmd);
    } else {
      this.driver!.logPowerOn(r);
      // The end of the fence goes into the replicated history too: a later leader must
      // know that nobody needs to power the target on any more (handOver).
      if (r.poweredOnAtMs !== null) {
        const cmd: Command = { op: 'fence.record', target: r.target, by: r.by, term: r.term, outcome: 'powered-on', level: r.level ?? -1, atMs: Math.floor(r.poweredOnAtMs), reason: 'fence action reboot: powered back on' };
        if (encodeCommand(cmd) instanceof Uint8Array) this.h.submit(cmd);
      }
    }
  }

  /**
   * The replicated record of a fence that switched `target` off and was not ended by a
   * power-on (or a later fence that found it already off), if any, and not one this
   * node's own Fencer is still running (it powers the target on itself).
   */
  private leftOff(target: NodeId): FenceHistoryRecord | undefined {
    if (this.fencer?.busy(target)) return undefined;
    const h = this.h.kv().fenceHistory;
    for (let i = h.length - 1; i >= 0; i--) {
      const r = h[i]!;
      if (r.target !== target) continue;
      if (r.outcome === 'off') return r;
      if (r.outcome === 'powered-on') return undefined;
    }
    return undefined;
  }

  /**
   * A fence that switched a relay off is always carried to its end. Its fencer powers
   * the target on after powerOnAfterMs; if the fencer stopped leading or crashed first,
   * the next active leader does: for every 'reboot' target whose newest record is 'off'
   * with no 'powered-on' after it, it waits its own powerOnAfterMs from its activation
   * (the target stays off at least as long as the fence promised) and switches the
   * target's relays on, recording 'powered-on' with the hand-over in the reason.
   */
  private scheduleHandOvers(): void {
    const d = this.driver;
    if (!d) return;
    const h = this.h;
    const term = this.leaderTermValue;
    for (const t of this.opts.fencer?.targets ?? []) {
      const target = t.target;
      const pending = this.handOvers.get(target);
      if (pending?.term === term || !this.leftOff(target)) continue;
      pending?.cancel(); // armed in an earlier leadership of ours: this one re-arms it
      const plan = d.rebootPlan(target);
      if (!plan) continue;
      const rec = this.leftOff(target)!;
      h.log('warn', `fence hand-over: n${rec.by}'s fence of n${target} (term ${rec.term}) left it off; powering it on in ${plan.powerOnAfterMs} ms`, { node: h.id, target });
      const cancel = h.clock.setTimer(plan.powerOnAfterMs, () => {
        if (this.handOvers.get(target)?.term === term) this.handOvers.delete(target);
        try {
          if (!h.running()) return;
          if (!this.activeValue || this.leaderTermValue !== term) {
            h.log('info', `fence hand-over of n${target}: not the active leader any more; the next one takes it over`, { node: h.id, target });
            return;
          }
          const still = this.leftOff(target);
          if (!still) return; // powered on meanwhile (its fencer came back), or fenced again by us
          d.powerOn(target, (err) => {
            if (err) {
              h.log('error', `fence hand-over of n${target}: power-on failed: ${err}`, { node: h.id, target });
              return;
            }
            const now = h.clock.monotonicMs();
            const cmd: Command = { op: 'fence.record', target, by: h.id, term: this.leaderTermValue || term, outcome: 'powered-on', level: -1, atMs: Math.floor(now), reason: `handed over: n${still.by}'s fence in term ${still.term} switched it off; powered on by the next leader n${h.id}` };
            h.log('warn', `fence hand-over: n${target} powered back on`, { node: h.id, target, from: still.by });
            h.submit(cmd);
            h.pump();
          });
        } catch (e) {
          h.crash('fence hand-over', e);
        }
      });
      this.handOvers.set(target, { term, cancel });
    }
  }

  // ---------------------------------------------------------------------------
  // Operator

  /**
   * `quorumd fence NODE` — fence `node` now through this board's configured devices
   * (any node may do it; no delay beyond the configured ones). The answer comes when
   * the fence finished: ok with the record, or an error when nothing is configured.
   */
  fence(node: NodeId, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
    const bad = badNodeArg(node);
    if (bad) return cb({ ok: false, error: bad });
    if (!this.h.running()) return cb({ ok: false, error: `node ${this.h.id} is not running` });
    if (!this.fencer || !this.fencer.canFence(node)) return cb({ ok: false, error: `node ${this.h.id} has no fence device for n${node} (fencing.fencer.targets)` });
    const now = this.h.clock.monotonicMs();
    const id = this.driver!.fence(node, now, { reason: 'operator request', term: this.h.term() });
    this.act.fenceStarted(node, now);
    this.runFencer(now);
    this.driver!.waitFor(id, cb);
  }

  /**
   * `quorumd fence confirm NODE` — a human declares `node` safely down (as Pacemaker's
   * stonith_admin --confirm). Clears it as a suspect and records it. Only the leader
   * takes it, and only a node it has not heard from for ALIVE_WINDOW_MS (cannotJudgeAlive):
   * a live node is never confirmed down, whichever node is asked.
   */
  confirmFenced(node: NodeId, activeNow: () => ActivationStatus): ConfirmResult {
    const h = this.h;
    const bad = badNodeArg(node);
    if (bad) return { ok: false, error: bad };
    if (node === h.id) return { ok: false, error: 'a node cannot confirm itself down' };
    if (!h.running()) return { ok: false, error: `node ${h.id} is not running with fencing` };
    const now = h.clock.monotonicMs();
    const alive = aliveRefusal(node, h.heardAgoMs(node), h.leaderId() === node);
    if (alive) return { ok: false, alive: true, error: alive };
    const leader = h.isLeader();
    const leadingForMs = leader && this.leaderTermValue !== 0 ? now - this.leaderSinceMs : 0;
    const blind = cannotJudgeAlive(h.id, node, { isLeader: leader, leaderId: h.leaderId(), leadingForMs });
    if (blind) return { ok: false, ...(blind.notLeader ? { notLeader: true } : {}), error: blind.error };
    this.act.operatorConfirmed(node, now);
    const term = h.term();
    // The evidence, as bully's coordinator gives it (bully-fencing.ts): when this leader last
    // heard the node, and for how long it had been hearing every member.
    const heard = h.heardAgoMs(node);
    const lastHeardMs = heard === undefined ? null : Math.round(heard);
    const listenedMs = Math.floor(leadingForMs);
    h.log('warn', `operator confirmed n${node} down`, { node: h.id, target: node, term, lastHeardMs: lastHeardMs ?? 'never since start', listenedMs });
    // A fence of it still running (in its delay, or switching) is superseded: say so.
    const superseded = this.fencer?.current(node)?.outcome === 'pending';
    // The Fencer's confirmed record reaches fenceRecordChanged through the driver's next
    // step (with any other fence's commands: nothing is taken out of the Fencer here);
    // the replicated record is this one, with the term.
    if (this.driver) this.driver.confirm(node, now, { term });
    const cmd: Command = { op: 'fence.record', target: node, by: h.id, term, outcome: 'confirmed', level: -1, atMs: Math.floor(now), reason: 'confirmed down by an operator' };
    h.submit(cmd);
    try {
      this.updateActive(now);
      h.pump();
    } catch (e) {
      // Recorded, then the node failed: the answer says both (not a 500 that hides the record).
      h.crash('fence confirm', e);
      return { ok: true, superseded, active: false, waitingFor: '', lastHeardMs, listenedMs, warning: `recorded, but node ${h.id} then stopped on an internal error: ${(e as Error)?.message ?? String(e)}` };
    }
    const st = activeNow();
    return { ok: true, superseded, active: st.active, waitingFor: st.waitingFor, lastHeardMs, listenedMs };
  }
}

/**
 * `quorumd fence NODE` on a runtime that may run without fencing (`f` undefined): the
 * same answers from every runtime that hosts LeaderFencing.
 */
export function operatorFence(f: LeaderFencing | undefined, self: { id: NodeId; running: boolean }, node: NodeId, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
  if (f) return f.fence(node, cb);
  const bad = badNodeArg(node);
  if (bad) return cb({ ok: false, error: bad });
  if (!self.running) return cb({ ok: false, error: `node ${self.id} is not running` });
  cb({ ok: false, error: `node ${self.id} has no fence device for n${node} (fencing.fencer.targets)` });
}

/** `quorumd fence confirm NODE` on a runtime that may run without fencing (`f` undefined). */
export function operatorConfirm(f: LeaderFencing | undefined, self: { id: NodeId; running: boolean }, node: NodeId, status: () => ActivationStatus): ConfirmResult {
  const bad = badNodeArg(node);
  if (bad) return { ok: false, error: bad };
  if (node === self.id) return { ok: false, error: 'a node cannot confirm itself down' };
  if (!self.running || !f) return { ok: false, error: `node ${self.id} is not running with fencing` };
  return f.confirmFenced(node, status);
}
