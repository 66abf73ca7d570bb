/**
 * A board's oscillator and clocks (docs/architecture.md, Time).
 *
 *   monotonic = anchorMono + (virtual − anchorVirtual) × (1 + drift·10⁻⁶)    [ms]
 *
 * The crystal of a Raspberry-Pi-class board is off by tens of ppm, and more when hot;
 * the default span ±200 ppm is deliberately pessimistic so that leases are tested
 * against a drift margin. Monotonic time restarts at every power-on (CLOCK_MONOTONIC
 * counts from kernel boot) but survives a process crash. Within one power period it
 * never decreases, whatever the wall clock does.
 *
 * The wall clock runs at the same drifting rate, may be stepped by any amount
 * (`stepWall`, an NTP step), and, on a board without an RTC, comes back after a
 * power cut at the time it had when the power went (fake-hwclock), until NTP steps
 * it to the true time again.
 */

export interface ClockOptions {
  /** Oscillator error in parts per million (positive = runs fast). Default: drawn by the world. */
  driftPpm?: number;
  /**
   * Monotonic reading (ms) when the process first sees the clock after a power-on: the
   * time the kernel took to boot. Default 5000 ms.
   */
  bootMonotonicMs?: number;
}

/** Largest drift we accept: beyond ±10 % the model (and any lease) makes no sense. */
export const MAX_DRIFT_PPM = 100_000;

export function checkDrift(ppm: number, what = 'driftPpm'): void {
  if (typeof ppm !== 'number' || !Number.isFinite(ppm) || Math.abs(ppm) > MAX_DRIFT_PPM) {
    throw new RangeError(`${what}: expected a finite number of ppm within ±${MAX_DRIFT_PPM}, got ${String(ppm)}`);
  }
}

/**
 * The clock hardware of one board. The board's HAL `Clock` is a thin per-process
 * facade over it (see board.ts) that adds timers.
 */
export class BoardClock {
  private rate: number; // board ms per virtual µs
  private anchorV = 0; // virtual µs
  private anchorMono: number; // ms
  private wallAnchorV = 0;
  private wallAnchorMs: number;
  private driftPpmValue: number;
  private readonly bootMonoMs: number;

  /**
   * @param now returns the current virtual time in µs
   * @param trueWallMs returns the true wall time (ms since epoch) at the current virtual time
   */
  constructor(
    private readonly now: () => number,
    private readonly trueWallMs: () => number,
    opts: ClockOptions = {},
  ) {
    const drift = opts.driftPpm ?? 0;
    checkDrift(drift);
    this.driftPpmValue = drift;
    this.rate = (1 + drift / 1e6) / 1000;
    this.bootMonoMs = opts.bootMonotonicMs ?? 5000;
    if (!Number.isFinite(this.bootMonoMs) || this.bootMonoMs < 0) {
      throw new RangeError(`bootMonotonicMs: expected a finite number ≥ 0, got ${String(opts.bootMonotonicMs)}`);
    }
    this.anchorMono = this.bootMonoMs;
    this.anchorV = now();
    this.wallAnchorV = now();
    this.wallAnchorMs = trueWallMs();
  }

  get driftPpm(): number {
    return this.driftPpmValue;
  }

  /** Changes the oscillator rate from now on, without a jump in either clock. */
  setDrift(ppm: number): void {
    checkDrift(ppm);
    const v = this.now();
    this.anchorMono = this.monotonicMs();
    this.anchorV = v;
    this.wallAnchorMs = this.wallMs();
    this.wallAnchorV = v;
    this.driftPpmValue = ppm;
    this.rate = (1 + ppm / 1e6) / 1000;
  }

  monotonicMs(): number {
    return this.anchorMono + (this.now() - this.anchorV) * this.rate;
  }

  wallMs(): number {
    return this.wallAnchorMs + (this.now() - this.wallAnchorV) * this.rate;
  }

  /** Steps the wall clock by `deltaMs` (either sign). Monotonic time is untouched. */
  stepWall(deltaMs: number): void {
    if (typeof deltaMs !== 'number' || !Number.isFinite(deltaMs)) {
      throw new RangeError(`stepWall: expected a finite number of ms, got ${String(deltaMs)}`);
    }
    this.wallAnchorMs = this.wallMs() + deltaMs;
    this.wallAnchorV = this.now();
  }

  /** Sets the wall clock to the true time (an NTP step). Returns the step applied (ms). */
  syncWall(): number {
    const before = this.wallMs();
    this.wallAnchorMs = this.trueWallMs();
    this.wallAnchorV = this.now();
    return this.wallAnchorMs - before;
  }

  /** Power-on: monotonic restarts from the kernel boot time; the wall clock resumes. */
  powerOn(rtc: boolean): void {
    this.anchorMono = this.bootMonoMs;
    this.anchorV = this.now();
    if (rtc) this.syncWall();
    else this.wallAnchorV = this.now(); // resumes from the value it had at power-off
  }

  /** Power-off: freezes the wall clock at its current value (fake-hwclock saves it). */
  powerOff(): void {
    this.wallAnchorMs = this.wallMs();
    this.wallAnchorV = this.now();
  }

  /**
   * Virtual µs until `ms` of this board's time have passed (rounded up, so a timer
   * never fires early by the board's own clock).
   */
  delayUs(ms: number): number {
    return Math.ceil(ms / this.rate);
  }
}
