/**
 * One incarnation of the process on a board: from a boot to the next crash, power
 * loss or watchdog reset. Every callback into the node software (timers, frames,
 * link events, relay and storage completions) is gated on `alive`, and every HAL
 * facade a process gets is bound to its `Proc`: nothing from before a power cut or
 * a crash is ever delivered to the next incarnation, and a dead process cannot act.
 */
import type { Link } from '../hal/interfaces.ts';
import type { NodeId } from '../src/types.ts';

export class Proc {
  /** False from the instant the process dies; never true again. */
  alive = true;
  /**
   * Stopped for a while (a GC pause, SIGSTOP, a process blocked on a slow SD card):
   * nothing is delivered to it — timers, frames, link events, storage and relay
   * completions wait in `held` and all arrive, in their order, when the stall ends.
   */
  stalled = false;
  private held: Array<() => void> = [];

  constructor(
    /** The board this process runs on. */
    readonly node: NodeId,
    /** 1 for the first boot, +1 for every boot after. */
    readonly incarnation: number,
    private readonly onStale: (what: string) => void,
  ) {}

  /**
   * Records that a dead incarnation's HAL object was called (a bug in the software
   * above: it kept a reference across its own death). The call has no effect; the
   * board counts it in `stats.staleCalls` so that a simulation can assert zero.
   */
  stale(what: string): void {
    this.onStale(what);
  }

  /** Keeps `fn` (a delivery to the process) for the end of the current stall. Call only while `stalled`. */
  hold(fn: () => void): void {
    this.held.push(fn);
  }

  /** Runs `fn` now if the process is alive and not stalled; while stalled, at the end of the stall. */
  deliver(fn: () => void): void {
    if (!this.alive) return;
    if (this.stalled) this.held.push(fn);
    else fn();
  }

  /** The stall ends: everything held is delivered, late, in arrival order (each re-checks that the process lives). */
  resume(): void {
    this.stalled = false;
    const h = this.held;
    this.held = [];
    for (let i = 0; i < h.length && this.alive; i++) h[i]!();
  }
}

/** How a process died: it matters to the transports (a crash closes sockets at once). */
export type DeathCause = 'crash' | 'power' | 'reset';

/**
 * A board's attachment to a transport (its MQTT client, a UART). The board opens it
 * for every new process and tells it when the process dies.
 */
export interface LinkPort {
  /** The `Link` the new process `proc` sees. */
  open(proc: Proc): Link;
  /** The process that had the port open died. */
  processDied(cause: DeathCause): void;
}
