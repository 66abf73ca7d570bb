/**
 * The HAL `Clock` of a real board: `performance.now()` for everything that times
 * (monotonic, immune to NTP jumps, DESIGN §4), `Date.now()` only for logs and humans.
 * Timers are `setTimeout`s: Node's timers run on the monotonic clock (libuv's
 * uv_now is CLOCK_MONOTONIC), so an NTP step does not fire or delay them.
 */
import { performance } from 'node:perf_hooks';
import type { Cancel, Clock } from '../hal/interfaces.ts';

export class RealClock implements Clock {
  monotonicMs(): number {
    return performance.now();
  }
  wallMs(): number {
    return Date.now();
  }
  setTimer(ms: number, fn: () => void): Cancel {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`RealClock.setTimer: ms must be a finite number ≥ 0, got ${ms}`);
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  }
}
