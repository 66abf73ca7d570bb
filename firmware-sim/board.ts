/**
 * A simulated board: power rail, clock, flash, transports, GPIO relay outputs,
 * power-sense inputs, a hardware watchdog, and the process that runs on it.
 *
 * Life cycle:
 *   rail goes live ──bootDelay──▶ boot: incarnation+1, a fresh `BoardHal`, `boot(hal, board)`
 *   crashProcess()  : process dies; page cache, GPIO levels, armed watchdog survive;
 *                     the process restarts after `restartDelayMs` (systemd Restart=).
 *   rail goes dead  : process dies; unsynced flash lost (last write maybe torn);
 *                     GPIO lines drop (relays fall back to their normal state);
 *                     links go down; watchdog stops; monotonic clock restarts on next boot.
 *   watchdog expiry : SoC reset: like a power cut for everything on the board, but the
 *                     rail stays live, so it boots again after `bootDelayMs`.
 *
 * Every HAL object a process gets is bound to its `Proc`; every callback into it is
 * gated on `proc.alive`, so nothing from before a power cut or crash reaches the next
 * incarnation, and a dead process's calls have no effect (counted as `staleCalls`).
 */
import type { Cancel, Clock, Link, PowerSense, Relay, Storage, Watchdog } from '../hal/interfaces.ts';
import type { NodeId } from '../src/types.ts';
import type { Rng } from '../src/rng.ts';
import { BoardClock, type ClockOptions } from './clock.ts';
import { Flash, type FlashOptions } from './flash.ts';
import type { BoardChangeCause } from './observer.ts';
import type { PowerSenseHw, PoweredBoard, RelayHw } from './power.ts';
import { Proc, type DeathCause, type LinkPort } from './proc.ts';
import type { SimContext, SimEvent } from './scheduler.ts';

export interface BoardOptions {
  /**
   * Real-time effect (issue 12): every monotonic-clock read of the process moves the
   * time it sees forward by 0..this many µs (drawn from the board's 'cpu' fork), as a
   * real CPU does while it executes a step; the lead over virtual time drains as
   * virtual time passes, and timers fire that much later. Reads stay monotonic. Two
   * reads inside one step differ, as on a board. Default 0 (off: a step is instantaneous).
   */
  readAdvanceMaxUs?: number;
  /** Time from power-on to the start of the node process (ms). Default 3000 (a trimmed Pi OS boot is 3–20 s). */
  bootDelayMs?: number;
  /** Time from a process crash to its restart (ms). Default 1000 (systemd RestartSec=1). */
  restartDelayMs?: number;
  /** Has a battery-backed RTC. Default false (a Pi has none): wall clock resumes stale after power-on until NTP. */
  rtc?: boolean;
  /** Time from boot to the NTP step of the wall clock on a board without RTC (ms). Default 10000. */
  ntpSyncDelayMs?: number;
  /** Hardware watchdog timeout (ms). Default 15000 (the bcm2835 watchdog's maximum is about 15 s). */
  watchdogTimeoutMs?: number;
  clock?: ClockOptions;
  flash?: FlashOptions;
}

export interface BoardStats {
  boots: number;
  crashes: number;
  powerLosses: number;
  watchdogResets: number;
  /** Calls made through a dead incarnation's HAL objects (should stay 0). */
  staleCalls: number;
}

/** What the process on a board sees: its HAL, valid for one incarnation. */
export interface BoardHal {
  readonly node: NodeId;
  readonly incarnation: number;
  /** True until this incarnation dies. */
  readonly alive: boolean;
  readonly clock: Clock;
  readonly storage: Storage;
  /** Links in the order they were wired: 'mqtt' first if attached, then each serial wire. */
  readonly links: Link[];
  readonly relays: Relay[];
  readonly powerSense: PowerSense[];
  readonly watchdog: Watchdog;
}

/** Installed by the cluster simulation: constructs the node runtime on a fresh HAL. */
export type BootFn = (hal: BoardHal, board: Board) => void;

export type BoardState = 'off' | 'booting' | 'running' | 'restarting';

function checkMsOpt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`BoardOptions.${name}: expected a finite number of ms ≥ 0, got ${String(v)}`);
  return v;
}

interface TimerRec {
  proc: Proc;
  fn: () => void;
}
function fireTimer(r: TimerRec): void {
  if (!r.proc.alive) return;
  if (r.proc.stalled) r.proc.hold(() => fireTimer(r));
  else r.fn();
}

export class Board implements PoweredBoard {
  readonly clockHw: BoardClock;
  readonly flash: Flash;
  readonly stats: BoardStats = { boots: 0, crashes: 0, powerLosses: 0, watchdogResets: 0, staleCalls: 0 };
  /** Main supply (the wall socket); `setMains` switches it. */
  private mains = true;
  private live = false;
  private stateValue: BoardState = 'off';
  private inc = 0;
  private proc: Proc | null = null;
  private halValue: BoardHal | null = null;
  private bootEv: SimEvent | null = null;
  private ntpEv: SimEvent | null = null;
  private bootFn: BootFn | null = null;
  /** Relays whose contacts are in series with this board's supply. */
  private readonly feeds: RelayHw[] = [];
  /** Relays this board drives. */
  private readonly relayOuts: RelayHw[] = [];
  private readonly senses: PowerSenseHw[] = [];
  private readonly ports: LinkPort[] = [];
  // watchdog hardware
  private wdArmed = false;
  private wdDeadline = 0;
  private wdEv: SimEvent | null = null;
  readonly bootDelayUs: number;
  readonly restartDelayUs: number;
  readonly watchdogTimeoutMs: number;
  private readonly rtc: boolean;
  private readonly ntpDelayUs: number;

  constructor(
    private readonly ctx: SimContext,
    rng: Rng,
    readonly id: NodeId,
    trueWallMs: () => number,
    opts: BoardOptions = {},
  ) {
    this.bootDelayUs = Math.round(checkMsOpt('bootDelayMs', opts.bootDelayMs ?? 3000) * 1000);
    this.restartDelayUs = Math.round(checkMsOpt('restartDelayMs', opts.restartDelayMs ?? 1000) * 1000);
    this.watchdogTimeoutMs = checkMsOpt('watchdogTimeoutMs', opts.watchdogTimeoutMs ?? 15000);
    if (this.watchdogTimeoutMs <= 0) throw new RangeError(`BoardOptions.watchdogTimeoutMs: expected > 0, got ${this.watchdogTimeoutMs}`);
    this.ntpDelayUs = Math.round(checkMsOpt('ntpSyncDelayMs', opts.ntpSyncDelayMs ?? 10000) * 1000);
    this.rtc = opts.rtc ?? false;
    const now = () => ctx.sched.now;
    this.clockHw = new BoardClock(now, trueWallMs, opts.clock);
    this.readAdvanceMaxUs = Math.round(checkMsOpt('readAdvanceMaxUs', opts.readAdvanceMaxUs ?? 0));
    this.cpuRng = rng.fork('cpu');
    this.flash = new Flash(ctx, rng.fork('flash'), `n${id}`, opts.flash);
  }

  // ---- wiring (done by World) -----------------------------------------------------

  /** @internal */ addPort(p: LinkPort): void {
    this.ports.push(p);
  }
  /** @internal */ addFeed(r: RelayHw): void {
    this.feeds.push(r);
  }
  /** @internal */ addRelayOutput(r: RelayHw): void {
    this.relayOuts.push(r);
  }
  /** @internal */ addSense(s: PowerSenseHw): void {
    this.senses.push(s);
  }

  /** Installs the software: called at every boot with the new incarnation's HAL. */
  setBoot(fn: BootFn | null): void {
    if (fn !== null && typeof fn !== 'function') throw new TypeError(`Board ${this.id}.setBoot: expected a function or null`);
    this.bootFn = fn;
  }

  // ---- observation ----------------------------------------------------------------

  get railLive(): boolean {
    return this.live;
  }
  get state(): BoardState {
    return this.stateValue;
  }
  /** Boots so far (the current process's incarnation number while running). */
  get incarnation(): number {
    return this.inc;
  }
  /** True while a process runs. */
  get running(): boolean {
    return this.proc !== null;
  }
  /** The running process's HAL, or null when no process runs. */
  get hal(): BoardHal | null {
    return this.halValue;
  }
  get mainsOn(): boolean {
    return this.mains;
  }

  // ---- power ----------------------------------------------------------------------

  /** Switches the wall supply (the 'power' fault). */
  setMains(on: boolean): void {
    if (typeof on !== 'boolean') throw new TypeError(`Board ${this.id}.setMains: expected a boolean, got ${String(on)}`);
    if (this.mains === on) return;
    this.mains = on;
    this.ctx.log(`board ${this.id} mains ${on ? 'on' : 'off'}`);
    this.updateRail();
  }

  updateRail(): void {
    let live = this.mains;
    for (const r of this.feeds) live = live && r.contact;
    if (live === this.live) return;
    this.live = live;
    if (live) this.powerOn();
    else this.powerOff();
  }

  private powerOn(cause: BoardChangeCause = 'power-on'): void {
    this.ctx.log(`board ${this.id} rail on`);
    this.clockHw.powerOn(this.rtc);
    this.setState('booting', cause);
    this.bootEv = this.ctx.sched.after(this.bootDelayUs, bootBoard, this);
    if (!this.rtc) this.ntpEv = this.ctx.sched.after(this.bootDelayUs + this.ntpDelayUs, ntpStep, this);
  }

  private powerOff(): void {
    this.ctx.log(`board ${this.id} rail off`);
    this.stats.powerLosses++;
    this.hardReset('power');
    this.clockHw.powerOff();
    this.setState('off', this.mains ? 'relay-open' : 'mains-off');
  }

  /** Sets the state and tells the world's observer (if any; observer.ts). */
  private setState(s: BoardState, cause: BoardChangeCause): void {
    this.stateValue = s;
    const o = this.ctx.observer;
    if (o !== null) o.boardState?.(this.id, s, cause);
  }

  /** Everything a power cut or SoC reset does to the board (not to the rail). */
  private hardReset(cause: DeathCause): void {
    this.kill(cause);
    this.bootEv?.cancel();
    this.bootEv = null;
    this.ntpEv?.cancel();
    this.ntpEv = null;
    this.wdArmed = false;
    this.wdEv?.cancel();
    this.wdEv = null;
    this.flash.powerLoss();
    for (const r of this.relayOuts) r.controllerReset();
  }

  /** @internal */
  ntp(): void {
    this.ntpEv = null;
    const step = this.clockHw.syncWall();
    this.ctx.log(`board ${this.id} ntp step ${Math.round(step)}`);
  }

  // ---- process --------------------------------------------------------------------

  /** @internal */
  boot(): void {
    this.bootEv = null;
    this.inc++;
    this.stats.boots++;
    const proc = new Proc(this.id, this.inc, (what) => {
      this.stats.staleCalls++;
      this.ctx.log(`board ${this.id} stale-call inc=${proc.incarnation} ${what}`);
    });
    this.proc = proc;
    this.setState('running', 'boot');
    this.ctx.log(`board ${this.id} boot inc=${this.inc}`);
    const links = this.ports.map((p) => p.open(proc));
    const hal: BoardHal = {
      node: this.id,
      incarnation: this.inc,
      get alive() {
        return proc.alive;
      },
      clock: this.clockFacade(proc),
      storage: this.flash.storage(proc),
      links,
      relays: this.relayOuts.map((r) => r.facade(proc)),
      powerSense: this.senses.map((s) => s.facade(proc)),
      watchdog: this.watchdogFacade(proc),
    };
    this.halValue = hal;
    this.bootFn?.(hal, this);
  }

  private kill(cause: DeathCause): void {
    const proc = this.proc;
    if (proc === null) return;
    proc.alive = false;
    this.proc = null;
    this.halValue = null;
    this.ctx.log(`board ${this.id} process dies (${cause}) inc=${proc.incarnation}`);
    for (const p of this.ports) p.processDied(cause);
  }

  /**
   * The process dies (a bug, OOM kill) and restarts after `restartDelayMs` (default:
   * the board's option). Page cache, GPIO levels and an armed watchdog survive.
   * Returns false (and does nothing) if no process is running.
   */
  crashProcess(restartDelayMs?: number): boolean {
    if (this.proc === null) return false;
    const delayUs = restartDelayMs === undefined ? this.restartDelayUs : Math.round(checkMsOpt('crashProcess restartDelayMs', restartDelayMs) * 1000);
    this.stats.crashes++;
    this.kill('crash');
    this.setState('restarting', 'crash');
    this.bootEv = this.ctx.sched.after(delayUs, bootBoard, this);
    return true;
  }

  // ---- HAL facades ----------------------------------------------------------------

  /** See BoardOptions.readAdvanceMaxUs. */
  private readonly readAdvanceMaxUs: number;
  private readonly cpuRng: Rng;
  /** How far the process's clock runs ahead of the board's (ms), and the board time it was last drained at. */
  private lagMs = 0;
  private lagBase = 0;

  /** The lead of the process's clock now (drained by the board time passed since the last read). */
  private lag(base: number): number {
    if (base !== this.lagBase) {
      // Drained by board time (not virtual time): base + lag never decreases, whatever the drift.
      this.lagMs = base > this.lagBase ? Math.max(0, this.lagMs - (base - this.lagBase)) : 0;
      this.lagBase = base;
    }
    return this.lagMs;
  }

  private readMono(): number {
    const base = this.clockHw.monotonicMs();
    if (this.readAdvanceMaxUs === 0) return base;
    // The simulator reading (World.observe), not the process: the clock as it stands,
    // without the cost of a read (no draw, no lead added). lag() only drains the lead
    // by board time, which gives the same as draining it later in one go.
    if (this.ctx.observing > 0) return base + this.lag(base);
    const lag = this.lag(base) + this.cpuRng.int(0, this.readAdvanceMaxUs) / 1000;
    this.lagMs = lag;
    return base + lag;
  }

  /** Runs `fn` in the running process: now, or when its stall ends; never if no process runs. */
  deliver(fn: () => void): void {
    this.proc?.deliver(fn);
  }

  /**
   * A stall of the running process for `ms` (GC pause, SIGSTOP, slow SD card): its
   * timers and deliveries wait and then all arrive late (Proc.stalled). Returns false
   * (and does nothing) if no process runs or it is already stalled.
   */
  stall(ms: number): boolean {
    const proc = this.proc;
    if (proc === null || proc.stalled) return false;
    const us = Math.round(checkMsOpt('stall ms', ms) * 1000);
    proc.stalled = true;
    this.ctx.log(`board ${this.id} stall ${ms}ms inc=${proc.incarnation}`);
    this.ctx.sched.after(us, () => {
      if (!proc.alive) return;
      this.ctx.log(`board ${this.id} resumes inc=${proc.incarnation}`);
      proc.resume();
    });
    return true;
  }

  private clockFacade(proc: Proc): Clock {
    const hw = this.clockHw;
    const sched = this.ctx.sched;
    if (this.readAdvanceMaxUs > 0) {
      this.lagMs = 0;
      this.lagBase = hw.monotonicMs();
    }
    return {
      monotonicMs: this.readAdvanceMaxUs === 0 ? () => hw.monotonicMs() : () => this.readMono(),
      wallMs: () => hw.wallMs(),
      setTimer: (ms: number, fn: () => void): Cancel => {
        if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new RangeError(`Clock.setTimer: ms must be a finite number ≥ 0, got ${String(ms)}`);
        if (typeof fn !== 'function') throw new TypeError('Clock.setTimer: fn must be a function');
        if (!proc.alive) {
          proc.stale('clock.setTimer');
          return noop;
        }
        // A process whose clock runs ahead (readAdvanceMaxUs) arms its timer from its own later "now".
        const lead = this.readAdvanceMaxUs === 0 ? 0 : this.lag(hw.monotonicMs());
        const ev = sched.after(hw.delayUs(ms + lead), fireTimer, { proc, fn });
        return () => ev.cancel();
      },
    };
  }

  private watchdogFacade(proc: Proc): Watchdog {
    const board = this;
    return {
      timeoutMs: this.watchdogTimeoutMs,
      feed(): void {
        if (!proc.alive) return proc.stale('watchdog.feed');
        board.wdFeed();
      },
      disarm(): void {
        if (!proc.alive) return proc.stale('watchdog.disarm');
        board.wdArmed = false;
        board.ctx.log(`board ${board.id} watchdog disarmed`);
      },
    };
  }

  private wdFeed(): void {
    if (!this.wdArmed) {
      this.wdArmed = true;
      this.ctx.log(`board ${this.id} watchdog armed`);
    }
    this.wdDeadline = this.ctx.sched.now + this.clockHw.delayUs(this.watchdogTimeoutMs);
    // One pending check at a time: feeding moves the deadline, the check re-arms itself.
    if (this.wdEv === null) this.wdEv = this.ctx.sched.at(this.wdDeadline, wdCheck, this);
  }

  /** @internal */
  watchdogCheck(): void {
    this.wdEv = null;
    if (!this.wdArmed) return;
    const now = this.ctx.sched.now;
    if (now < this.wdDeadline) {
      this.wdEv = this.ctx.sched.at(this.wdDeadline, wdCheck, this);
      return;
    }
    this.ctx.log(`board ${this.id} watchdog reset`);
    this.stats.watchdogResets++;
    this.hardReset('reset');
    // The SoC restarts on a live rail.
    this.clockHw.powerOff();
    this.powerOn('watchdog');
  }
}

function noop(): void {}
function bootBoard(b: Board): void {
  b.boot();
}
function ntpStep(b: Board): void {
  b.ntp();
}
function wdCheck(b: Board): void {
  b.watchdogCheck();
}
