/**
 * The board's real `Clock` for the serial and GPIO backends when the runtime does
 * not inject one: `performance.now()` for monotonic time (DESIGN §4: only
 * monotonic time drives timeouts), `Date.now()` for logs, `setTimeout` for timers.
 * Tests inject a fake clock instead, so that slot timing runs in virtual time.
 */
import type { Cancel, Clock } from '../interfaces.ts';

export function systemClock(): Clock {
  return {
    monotonicMs: () => performance.now(),
    wallMs: () => Date.now(),
    setTimer(ms: number, fn: () => void): Cancel {
      if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`Clock.setTimer: ms must be a finite number >= 0, got ${String(ms)}`);
      const t = setTimeout(fn, ms);
      t.unref?.();
      return () => clearTimeout(t);
    },
  };
}
