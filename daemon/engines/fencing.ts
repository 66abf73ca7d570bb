/**
 * STONITH and the activation gate for the external engines (`engine: etcd`,
 * `engine: zookeeper` with a `fencing:` section), with the same pieces as the Raft and
 * bully runtimes: the board's Fencer and its HAL side (daemon/runtime/fencing-driver.ts:
 * levels, verify by read-back or power-sense, retries, power-on after the configured
 * delay, fence history) and one src/fence ActivationGate per earlier leader to clear.
 *
 * Why fence at all, when the lease window already keeps leaders apart (leadership.ts)?
 * The window argument holds for a process that runs: it switches itself off before the
 * service can expire its lease. A board that hangs — SIGSTOP, an SD card that blocks
 * every write, a kernel that keeps the relay of a pump energised — does not run its
 * timers; when it wakes it may finish what it was doing before it looks at its window.
 * A new leader that switches the old board's power off, and verifies that it is off,
 * knows that no such late action can come.
 *
 * Who led before: the engines keep one record in the service, the *leader history*
 * (etcd: <prefix>leader-history, ZooKeeper: <chroot>/leader-history), not bound to any
 * lease or session, so it outlives its writer:
 *
 *     { node, id, clean, suspects }
 *
 * A node that wins the election reads it and replaces it in the same transaction that
 * makes it leader (etcd: a txn comparing the record's mod revision; ZooKeeper: a
 * multi-op with the record's version and a check of our candidate znode), so every
 * winner sees exactly the record of the winner before it. Its suspects — the earlier
 * leaders it must show stopped before it acts — are:
 *
 *   - the previous winner, unless its record says `clean`;
 *   - the previous winner's own `suspects` (those it had not cleared yet: it may have
 *     died while fencing them);
 *   - not itself (a previous incarnation of this node is gone: its data dir lock is ours).
 *
 * Clean resign vs crash: a leader that stops on purpose (SIGTERM, `stop()`) first
 * switches itself off (inactive hook), then writes `clean: true` in a transaction
 * guarded by its leadership (etcd: <prefix>leader still has its token as mod revision;
 * ZooKeeper: its candidate znode still exists), and only then gives up its key. A
 * crashed, killed, hung or cut-off leader never writes it: its successor fences it.
 * A clean record written after the writer lost its leadership cannot exist (the guard),
 * so `clean` is never a lie about a leader that could still act.
 *
 * When a leader has cleared all its suspects it rewrites the record with no suspects
 * (guarded the same way), so that a later leader does not fence them again.
 *
 * Activation: elected by the service, inside its lease window (leadership.ts), and every
 * suspect cleared by one of the gate's reasons: fenced (off and verified), operator
 * (`quorumd fence confirm`), or lease-expired — here the watchdog bound: the suspect's
 * lease had expired on the service before we were elected, so a process that runs had
 * stopped; one that hangs is reset by its watchdog within `watchdogTimeoutMs`. That
 * bound is the fallback when the suspect has no fence device on this board, STONITH is
 * off, or every fence level failed; with a working relay the fence decides, and the
 * activation waits for nothing but the relay's switch, settle and verification (no
 * random or priority delay: the service elects one leader at a time, so two nodes never
 * race to fence each other).
 *
 * Without a previous record (a fresh cluster, or one started before this record
 * existed) there is nobody to fence.
 *
 * The watchdog (`fencing.watchdog`): fed from a timer while this process runs, so that
 * a hung process stops feeding it and the board resets — what the fallback bound
 * assumes of every board. No self-fencing as under Raft: a leader cut off from the
 * service already stops acting by its window, and resetting the board whenever the
 * service is unreachable would turn an etcd or ZooKeeper upgrade into a fleet reboot.
 */
import { ActivationGate, leaseSafeAtMs, type ActivationReason, type FenceRecord, type Fencer } from '../../src/fence/index.ts';
import { MAX_NODE_ID, type NodeId } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Cancel, Clock, Watchdog } from '../../hal/interfaces.ts';
import type { Logger } from '../runtime/logger.ts';
import { FencingDriver, badNodeArg, fenceSucceeded, type FencingDevices } from '../runtime/fencing-driver.ts';

/** The leader history record (see the file comment). `suspects`: node ids, 0 = an earlier leader nobody can name. */
export interface LeaderHistory {
  node: string;
  id: number;
  clean: boolean;
  suspects: number[];
}

export function encodeLeaderHistory(r: LeaderHistory): string {
  return JSON.stringify({ node: r.node, id: r.id, clean: r.clean, suspects: r.suspects });
}

/** undefined for an empty record (none yet); a string error names what is wrong with a bad one. */
export function decodeLeaderHistory(text: string): LeaderHistory | string | undefined {
  if (text.length === 0) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return 'leader history: not JSON';
  }
  const id = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= MAX_NODE_ID;
  if (v === null || typeof v !== 'object' || typeof v.node !== 'string' || !id(v.id) || typeof v.clean !== 'boolean' || !Array.isArray(v.suspects) || !v.suspects.every(id) || v.suspects.length > 64) {
    return 'leader history: expected {node, id, clean, suspects: [node ids]}';
  }
  return { node: v.node, id: v.id as number, clean: v.clean, suspects: v.suspects as number[] };
}

/** An earlier leader to clear: a member id, or 'unknown' (a record nobody can read names no one). */
export type Suspect = NodeId | 'unknown';

/**
 * The suspects of a new leader `self` from the record it replaces (file comment).
 * `members`: ids of the configured members; an id outside them cannot be fenced from
 * here and counts as 'unknown' (the watchdog bound clears it).
 */
export function suspectsAfter(prev: LeaderHistory | string | undefined, self: NodeId, members: ReadonlySet<NodeId>): Suspect[] {
  if (prev === undefined) return [];
  if (typeof prev === 'string') return ['unknown'];
  const ids = new Set<number>(prev.suspects);
  if (!prev.clean) ids.add(prev.id);
  ids.delete(self);
  const out = new Set<Suspect>();
  for (const id of ids) out.add(id !== 0 && members.has(id) ? id : 'unknown');
  return [...out];
}

/** Suspects as the record stores them (0 = unknown). */
export const suspectIds = (s: Suspect[]): number[] => s.map((x) => (x === 'unknown' ? 0 : x));

export interface ExternalFencingOptions {
  self: NodeId;
  /** Ids of the configured members (suspectsAfter). */
  members: ReadonlySet<NodeId>;
  /** Relays, power-sense inputs and the fencer config (`targets` may be empty: no STONITH, the watchdog bound only). */
  devices: FencingDevices;
  /** How long a hung board may go on before its watchdog resets it, ms (the fallback bound). */
  watchdogTimeoutMs: number;
  /** This board's hardware watchdog, fed every timeoutMs / 4 while this process runs; disarmed by stop(). */
  watchdog?: Watchdog;
  /** Added to that bound, ms. */
  marginMs: number;
  clock: Clock;
  rng: Rng;
  log: Logger;
  /** A fence run by this node finished (any outcome but pending). */
  fenced?: (rec: FenceRecord) => void;
}

const key = (s: Suspect): number => (s === 'unknown' ? 0 : s);

/**
 * The suspects of the current leadership with their gates, the Fencer through the
 * shared driver, and the operator's fence endpoints. The engine asks `clear(token)`
 * before it lets its LeadershipGate open, and is told by `onChange` when that changed.
 */
export class ExternalFencing {
  /** Called when `clear()` may have changed (a suspect cleared, a fence finished). */
  onChange: (() => void) | undefined;
  /**
   * What the service showed this node of member `node`'s liveness, for the confirm
   * answer (ExternalEngine.heard, set by the backend); none: the answer leaves it out.
   */
  evidence: ((node: NodeId) => { lastHeardMs: number | null; listenedMs: number }) | undefined;
  /** Whether this node is an active leader now (the engine's gate), for the confirm answer. */
  activeNow: (() => boolean) | undefined;
  private readonly driver: FencingDriver | undefined;
  private lead: { token: number; gates: Map<number, ActivationGate>; electedAtMs: number } | null = null;
  private timer: Cancel | undefined;
  private running = true;
  private t = 0;
  private wasClear = false;
  private updating = false;
  private again = false;
  private feedTimer: Cancel | undefined;

  constructor(private readonly o: ExternalFencingOptions) {
    if (!(Number.isFinite(o.watchdogTimeoutMs) && o.watchdogTimeoutMs >= 0)) throw new RangeError(`watchdogTimeoutMs: expected ms ≥ 0, got ${o.watchdogTimeoutMs}`);
    const wd = o.watchdog;
    if (wd) {
      const every = Math.max(50, Math.floor(wd.timeoutMs / 4));
      const feed = () => {
        if (!this.running) return;
        wd.feed();
        this.feedTimer = o.clock.setTimer(every, feed);
      };
      feed();
    }
    const targets = o.devices.fencer?.targets ?? [];
    if (targets.length > 0) {
      this.driver = new FencingDriver({
        who: 'external engine',
        id: o.self,
        // No random or priority delay: the service elects one leader at a time (file comment).
        devices: { ...o.devices, fencer: { ...o.devices.fencer!, randomDelayMaxMs: 0, priorityDelayMs: 0 } },
        rng: o.rng,
        clock: o.clock,
        log: o.log,
        running: () => this.running,
        stopped: () => !this.running,
        resultFed: () => this.update(),
        wake: () => this.update(),
        record: (r) => this.recordChanged(r),
        pollMs: 50,
        fatal: (where, e) => o.log('error', `fencing: ${where}: ${(e as Error)?.stack ?? String(e)}`, { node: o.self }),
      });
    }
  }

  private get fencer(): Fencer | undefined {
    return this.driver?.fencer;
  }

  private now(): number {
    this.t = Math.max(this.t, this.o.clock.monotonicMs());
    return this.t;
  }

  /** This node's suspects after the record `prev` (suspectsAfter with this cluster's members). */
  suspectsAfter(prev: LeaderHistory | string | undefined): Suspect[] {
    return suspectsAfter(prev, this.o.self, this.o.members);
  }

  /** The service elected this node with `token`; `suspects` from the leader history (suspectsAfter). */
  elected(token: number, suspects: Suspect[]): void {
    if (this.lead?.token === token) return;
    const now = this.now();
    const gates = new Map<number, ActivationGate>();
    // Fallback bound: the suspect's lease was gone before our election; a hung process acts at most a watchdog period later.
    const safeAtMs = leaseSafeAtMs({ electedAtMs: now, leaseMs: 0, maxDriftPpm: 0, watchdogTimeoutMs: this.o.watchdogTimeoutMs, marginMs: this.o.marginMs });
    for (const s of suspects) {
      const g = new ActivationGate({ self: this.o.self, stonith: s !== 'unknown' && (this.fencer?.canFence(s) ?? false), formed: true });
      g.elected({ term: token, nowMs: now, previousLeader: s, safeAtMs });
      gates.set(key(s), g);
    }
    this.lead = { token, gates, electedAtMs: now };
    this.wasClear = false;
    this.o.log(suspects.length > 0 ? 'warn' : 'info', suspects.length > 0 ? 'elected: not active until the earlier leaders are shown stopped' : 'elected: the previous leader resigned cleanly or there was none: nothing to fence', {
      node: this.o.self,
      token,
      suspects: suspects.map((s) => (s === 'unknown' ? 'unknown' : `n${s}`)).join(',') || 'none',
    });
    this.update();
  }

  /**
   * The same leadership goes on under a new token (etcd: the leader record was written
   * again after another client changed it, EtcdEngine.keepLeaderRecord): its suspects
   * and what cleared them stay, since the earlier leaders they name are the same.
   */
  retoken(from: number, to: number): void {
    if (this.lead?.token !== from) return;
    this.lead.token = to;
    this.update();
  }

  /** This node no longer leads: fences still in their delay are cancelled (one that switched a relay runs to its end). */
  deposed(): void {
    if (this.lead === null) return;
    this.lead = null;
    this.wasClear = false;
    this.driver?.cancelDelayed(this.now(), 'not leader any more');
    this.update();
  }

  /** Every suspect of leadership `token` is shown stopped. */
  clear(token: number): boolean {
    const l = this.lead;
    if (l === null || l.token !== token) return false;
    for (const g of l.gates.values()) if (!g.active) return false;
    return true;
  }

  /** The leadership `token` had suspects (so the record should be rewritten once they are cleared). */
  hadSuspects(token: number): boolean {
    return this.lead?.token === token && this.lead.gates.size > 0;
  }

  /** Suspects of the current leadership not cleared yet (what a clean resign hands on). */
  pending(): Suspect[] {
    const out: Suspect[] = [];
    for (const [k, g] of this.lead?.gates ?? []) if (!g.active) out.push(k === 0 ? 'unknown' : k);
    return out;
  }

  /** For /v1/status. */
  status(): { waitingFor: string; suspects: Array<{ node: number | 'unknown'; clearedBy: ActivationReason | null }>; clearedBy: Record<string, ActivationReason>; fences: FenceRecord[]; stonith: boolean } {
    const suspects: Array<{ node: number | 'unknown'; clearedBy: ActivationReason | null }> = [];
    const clearedBy: Record<string, ActivationReason> = {};
    const waits: string[] = [];
    for (const [k, g] of this.lead?.gates ?? []) {
      const st = g.status();
      suspects.push({ node: k === 0 ? 'unknown' : k, clearedBy: st.activeBy });
      if (st.activeBy !== null) clearedBy[String(k)] = st.activeBy;
      else waits.push(st.waitingFor.replace('lease to expire', 'watchdog bound (lease gone on the service) to pass'));
    }
    return { waitingFor: waits.join('; '), suspects, clearedBy, fences: this.fencer?.history() ?? [], stonith: this.driver !== undefined };
  }

  /** Operator: fence `node` now through this board's devices (bounded: the Fencer times out every command). */
  fence(node: NodeId, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
    const bad = badNodeArg(node);
    if (bad) return cb({ ok: false, error: bad });
    if (!this.running) return cb({ ok: false, error: 'node is stopping' });
    if (!this.driver || !this.driver.fencer.canFence(node)) return cb({ ok: false, error: `node ${this.o.self} has no fence device for n${node} (fencing.targets)` });
    const now = this.now();
    const id = this.driver.fence(node, now, { reason: 'operator request', term: this.lead?.token ?? 0 });
    this.lead?.gates.get(node)?.fenceStarted(node, now);
    this.update();
    this.driver.waitFor(id, cb);
  }

  /**
   * Operator: `quorumd fence confirm NODE` — declared safely down; clears it as a suspect.
   * The answer has what the Raft and bully answers have: `superseded` (a fence of it
   * still under way here was stopped), `active` and `waitingFor` after the confirmation,
   * and the evidence — `lastHeardMs`, how long ago the service last showed NODE's
   * election key or znode (which lives only with its lease or session), null when no
   * read since this node started did; `listenedMs`, how long this node had been reading
   * the election without a gap (common.ts Presence).
   */
  confirmFenced(node: NodeId): { ok: boolean; error?: string; superseded?: boolean; active?: boolean; waitingFor?: string; lastHeardMs?: number | null; listenedMs?: number } {
    const bad = badNodeArg(node);
    if (bad) return { ok: false, error: bad };
    if (!this.running) return { ok: false, error: 'node is stopping' };
    const now = this.now();
    const superseded = this.fencer?.current(node)?.outcome === 'pending';
    const ev = this.evidence?.(node);
    this.driver?.confirm(node, now, { term: this.lead?.token ?? 0 }); // (as this node's fences carry)
    this.lead?.gates.get(node)?.operatorConfirmed(node, now);
    this.o.log('warn', `operator confirmed n${node} down`, { node: this.o.self, target: node, ...(ev ? { lastHeardMs: ev.lastHeardMs ?? 'never since start', listenedMs: ev.listenedMs } : {}) });
    this.update();
    return { ok: true, superseded, active: this.activeNow?.() ?? false, waitingFor: this.status().waitingFor, ...(ev ?? {}) };
  }

  /** Stops timers; relays a fence left off stay off only for 'off' targets (the driver powers 'reboot' ones on at the next start). */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.timer?.();
    this.timer = undefined;
    this.driver?.stop();
    this.feedTimer?.();
    this.feedTimer = undefined;
    this.o.watchdog?.disarm();
  }

  /**
   * Re-evaluates; never re-entered: a device that answers synchronously (inside the
   * driver's step) asks for another round instead, which runs after the step has handed
   * the finished record to its gate — so a failed fence is not started again at once.
   */
  private update(): void {
    if (this.updating) {
      this.again = true;
      return;
    }
    this.updating = true;
    try {
      for (let i = 0; i < 100; i++) {
        this.again = false;
        this.updateOnce();
        if (!this.again) break;
      }
    } finally {
      this.updating = false;
    }
  }

  /** Gates ticked, fences started where a gate wants one, the Fencer stepped, a wake-up armed; tells the engine when clear() changed. */
  private updateOnce(): void {
    if (!this.running) return;
    const now = this.now();
    const l = this.lead;
    const f = this.fencer;
    let next: number | null = null;
    if (l) {
      for (const [k, g] of l.gates) {
        g.tick(now);
        const st = g.status();
        if (f && k !== 0 && st.wantFence === k && !f.busy(k) && f.canFence(k)) {
          this.driver!.fence(k, now, { reason: `earlier leader, before n${this.o.self} acts with token ${l.token}`, term: l.token, targetRunsWorkload: false });
          g.fenceStarted(k, now);
          this.o.log('warn', 'fencing the earlier leader before acting', { node: this.o.self, target: k, token: l.token });
        }
        const d = g.nextDeadline();
        if (d !== null && (next === null || d < next)) next = d;
      }
    }
    this.driver?.step(now);
    this.timer?.();
    this.timer = undefined;
    if (next !== null) this.timer = this.o.clock.setTimer(Math.max(0, next - now), () => this.update());
    const clear = l !== null && this.clear(l.token);
    if (clear !== this.wasClear) {
      this.wasClear = clear;
      if (clear && l!.gates.size > 0) {
        this.o.log('info', 'every earlier leader is shown stopped', { node: this.o.self, token: l!.token, by: JSON.stringify(this.status().clearedBy) });
        this.driver?.cancelDelayed(now, 'active');
      }
      this.onChange?.();
    }
  }

  private recordChanged(r: FenceRecord): void {
    if (r.outcome === 'pending') return;
    const ok = fenceSucceeded(r);
    if (r.poweredOnAtMs === null && r.powerOnError === null) {
      if (r.outcome !== 'confirmed') this.lead?.gates.get(r.target)?.fenceResult(r.target, ok, this.now(), r.attempts.at(-1)?.error ?? r.outcome);
      this.o.fenced?.(r);
      this.driver!.logFinished(r, ok);
      // The gate changed: another round (after the driver's step; update() is not re-entered).
      this.update();
    } else {
      this.driver!.logPowerOn(r);
    }
  }
}
