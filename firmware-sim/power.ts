/**
 * Power wiring: GPIO-driven relays in the feed of other boards (STONITH, docs/fencing.md)
 * and power-sense inputs.
 *
 * A relay has a coil (driven by a GPIO output of the controlling board) and a contact
 * in series with the target board's supply. The contact moves `switchDelayMs` after
 * the coil changes (a few ms for a small signal relay). A normally-closed relay (the
 * default) powers its target while the coil is de-energized, so a controller that
 * loses power, crashes into a reset, or was never installed leaves the target powered:
 * a dead fencer must not take the cluster down with it. A normally-open relay
 * powers its target only while its controller holds the coil.
 *
 * GPIO lines keep their level when the controlling *process* crashes (the kernel keeps
 * the line as last driven), and drop to de-energized on power loss or SoC reset.
 *
 * `Relay.read()` returns the read-back contact (a second pole wired to an input), so
 * it reveals a stuck relay. Faults: `stuck` (the contact no longer moves, the command
 * still reports success) and `failCommands` (set() reports an error and nothing
 * changes, e.g. a GPIO export failure).
 */
import type { DoneWith, Done, PowerSense, Relay } from '../hal/interfaces.ts';
import type { NodeId } from '../src/types.ts';
import type { Proc } from './proc.ts';
import type { SimContext, SimEvent } from './scheduler.ts';

/** What a relay needs of a board: its rail and its process. */
export interface PoweredBoard {
  readonly id: NodeId;
  /** True while the board's supply rail is live. */
  readonly railLive: boolean;
  /** Re-evaluates the rail after a change in its feed (mains or a relay contact). */
  updateRail(): void;
}

export interface RelayOptions {
  /** Relay name as the HAL shows it. Default `relay:<target id>`. */
  name?: string;
  /** Contact closed (target powered) when the coil is de-energized. Default true: see the file comment. */
  normallyClosed?: boolean;
  /** Time from coil change to contact change (ms). Default 5: a small signal relay. */
  switchDelayMs?: number;
}

export class RelayHw {
  readonly name: string;
  readonly normallyClosed: boolean;
  readonly switchDelayUs: number;
  /** Coil energized (driven by the controller's GPIO). */
  coil = false;
  /** Contact closed = target fed. */
  contact: boolean;
  /** Fault: contact frozen where it is; commands still report success. */
  stuck = false;
  /** Fault: set() fails with an error and changes nothing. */
  failCommands = false;
  /** Commands received (successful or not). */
  commands = 0;
  private moveEv: SimEvent | null = null;

  constructor(
    private readonly ctx: SimContext,
    readonly controller: PoweredBoard,
    readonly target: PoweredBoard,
    opts: RelayOptions = {},
  ) {
    this.name = opts.name ?? `relay:${target.id}`;
    if (typeof this.name !== 'string' || this.name.length === 0) throw new TypeError(`RelayOptions.name: expected a non-empty string`);
    this.normallyClosed = opts.normallyClosed ?? true;
    if (typeof this.normallyClosed !== 'boolean') throw new TypeError(`RelayOptions.normallyClosed: expected a boolean, got ${String(opts.normallyClosed)}`);
    const d = opts.switchDelayMs ?? 5;
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0 || d > 10_000) {
      throw new RangeError(`RelayOptions.switchDelayMs: expected 0..10000 ms, got ${String(opts.switchDelayMs)}`);
    }
    this.switchDelayUs = Math.round(d * 1000);
    this.contact = this.normallyClosed;
  }

  /** The contact position the coil asks for. */
  private wanted(): boolean {
    return this.normallyClosed ? !this.coil : this.coil;
  }

  /** Drives the coil so that the target is (on) or is not (off) powered. */
  drive(on: boolean): void {
    this.commands++;
    this.coil = this.normallyClosed ? !on : on;
    this.ctx.log(`relay ${this.controller.id}>${this.target.id} coil=${this.coil ? 1 : 0}`);
    this.scheduleMove();
  }

  /** The controlling board lost power or was reset: the GPIO line drops, the coil releases. */
  controllerReset(): void {
    if (!this.coil) return;
    this.coil = false;
    this.ctx.log(`relay ${this.controller.id}>${this.target.id} coil released`);
    this.scheduleMove();
  }

  private scheduleMove(): void {
    this.moveEv?.cancel();
    this.moveEv = this.ctx.sched.after(this.switchDelayUs, moveContact, this);
  }

  /** @internal */
  move(): void {
    this.moveEv = null;
    if (this.stuck) return;
    const want = this.wanted();
    if (want === this.contact) return;
    this.contact = want;
    this.ctx.log(`relay ${this.controller.id}>${this.target.id} contact=${want ? 'closed' : 'open'}`);
    const o = this.ctx.observer;
    if (o !== null) o.relayContact?.(this.controller.id, this.target.id, want);
    this.target.updateRail();
  }

  /** The `Relay` a process of the controlling board sees. */
  facade(proc: Proc): Relay {
    return new GpioRelay(this, proc, this.ctx);
  }
}

function moveContact(r: RelayHw): void {
  r.move();
}

class GpioRelay implements Relay {
  readonly name: string;
  constructor(
    private readonly hw: RelayHw,
    private readonly proc: Proc,
    private readonly ctx: SimContext,
  ) {
    this.name = hw.name;
  }

  set(on: boolean, done: Done): void {
    if (typeof on !== 'boolean') throw new TypeError(`Relay ${this.name}.set: 'on' must be a boolean, got ${String(on)}`);
    if (typeof done !== 'function') throw new TypeError(`Relay ${this.name}.set: done must be a function`);
    const proc = this.proc;
    if (!proc.alive) return proc.stale(`relay.set ${this.name}`);
    const hw = this.hw;
    if (hw.failCommands) {
      hw.commands++;
      this.ctx.log(`relay ${hw.controller.id}>${hw.target.id} command failed`);
      this.ctx.sched.after(0, () => {
        proc.deliver(() => done(new Error(`relay ${this.name}: command failed (GPIO write error, injected fault)`)));
      });
      return;
    }
    hw.drive(on);
    this.ctx.sched.after(0, () => proc.deliver(() => done(null)));
  }

  read(done: DoneWith<boolean>): void {
    if (typeof done !== 'function') throw new TypeError(`Relay ${this.name}.read: done must be a function`);
    const proc = this.proc;
    if (!proc.alive) return proc.stale(`relay.read ${this.name}`);
    this.ctx.sched.after(0, () => {
      proc.deliver(() => done(null, this.hw.contact));
    });
  }
}

export interface PowerSenseOptions {
  /** Input name as the HAL shows it. Default `sense:<target id>`. */
  name?: string;
}

/** An input on `controller` that reads whether `target`'s rail is live. */
export class PowerSenseHw {
  readonly name: string;
  constructor(
    private readonly ctx: SimContext,
    readonly controller: PoweredBoard,
    readonly target: PoweredBoard,
    opts: PowerSenseOptions = {},
  ) {
    this.name = opts.name ?? `sense:${target.id}`;
    if (typeof this.name !== 'string' || this.name.length === 0) throw new TypeError(`PowerSenseOptions.name: expected a non-empty string`);
  }

  facade(proc: Proc): PowerSense {
    const hw = this;
    const ctx = this.ctx;
    return {
      name: hw.name,
      read(done: DoneWith<boolean>): void {
        if (typeof done !== 'function') throw new TypeError(`PowerSense ${hw.name}.read: done must be a function`);
        if (!proc.alive) return proc.stale(`sense.read ${hw.name}`);
        ctx.sched.after(0, () => {
          proc.deliver(() => done(null, hw.target.railLive));
        });
      },
    };
  }
}
