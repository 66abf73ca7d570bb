/**
 * The `Clock` of a real board.
 *
 * `performance.now()` drives everything that times (monotonic, immune to NTP
 * steps — docs/architecture.md, Time); `Date.now()` is only for logs and humans. Timers are
 * `setTimeout`s: Node's timers run on libuv's uv_now, which is CLOCK_MONOTONIC, so
 * an NTP step neither fires nor delays them. Tests inject a fake or simulated
 * clock instead, so that timing runs in virtual time.
 */
import { performance } from 'node:perf_hooks';
import type { Cancel, Clock } from './interfaces.ts';

export interface SystemClockOptions {
  /**
   * Do not let pending timers keep the process alive. Default false: a node's
   * tick timer is what it lives on. Backends that only retry or time out in the
   * background (serial reopen, relay-board replies) set it so that a program that
   * is done can exit.
   */
  unref?: boolean;
}

export function systemClock(opts: SystemClockOptions = {}): Clock {
  const unref = opts.unref ?? false;
  return {
    monotonicMs: () => performance.now(),
    wallMs: () => Date.now(),
    setTimer(ms: number, fn: () => void): Cancel {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`Clock.setTimer: ms must be a finite number >= 0, got ${String(ms)}`);
      const t = setTimeout(fn, ms);
      if (unref) t.unref();
      return () => clearTimeout(t);
    },
    soon(fn: () => void): void {
      setImmediate(fn);
    },
  };
}
