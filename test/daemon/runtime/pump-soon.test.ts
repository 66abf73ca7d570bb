/**
 * Client writes of one event-loop turn leave in one Append per follower where the clock
 * can defer (hal Clock.soon, setImmediate on a real board): EngineRuntime.pumpSoon.
 * The simulated clock has no `soon`; here each board's clock gets one that runs the
 * deferred work after the current virtual instant (a 0 ms timer), as setImmediate runs
 * it after the current turn's I/O callbacks.
 */
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../hal/interfaces.ts';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import { Status } from '../../../daemon/runtime/results.ts';
import type { ClientResult } from '../../../daemon/runtime/results.ts';
import { bytes, testCluster } from './helpers.ts';

/** Appends with entries each follower received, and the writes' results, for `n` puts issued in one turn. */
function burst(withSoon: boolean, n: number): { appends: Map<number, number>; results: (ClientResult | undefined)[]; deferred: number } {
  let deferred = 0;
  const appends = new Map<number, number>();
  const c = testCluster([1, 2, 3], {
    runtime: {
      observer: {
        received: (rt, m: Message) => {
          if (m.type === MsgType.Append && m.entries.length > 0 && counting) appends.set(rt.id, (appends.get(rt.id) ?? 0) + 1);
        },
      },
    },
    perBoot: (hal) => {
      if (!withSoon) return {};
      const clock: Clock = {
        monotonicMs: () => hal.clock.monotonicMs(),
        wallMs: () => hal.clock.wallMs(),
        setTimer: (ms, fn) => hal.clock.setTimer(ms, fn),
        soon: (fn) => {
          // The runtime's deferred pump after client writes (the ready loop also defers
          // its next persist after each completed one: not counted here).
          if (fn.name === 'queuedPump') deferred++;
          hal.clock.setTimer(0, fn);
        },
      };
      return { clock };
    },
  });
  let counting = false;
  expect(c.until(() => c.leader() !== undefined, 5000)).toBe(true);
  // Let the leadership's no-op settle everywhere first.
  expect(c.call((cb) => c.leader()!.put('warm', bytes('x'), {}, cb))?.status).toBe(Status.OK);
  c.world.run(300);
  const L = c.leader()!;
  counting = true;
  const results: (ClientResult | undefined)[] = Array.from({ length: n }, () => undefined);
  for (let i = 0; i < n; i++) L.put(`k${i}`, bytes(`v${i}`), {}, (r) => (results[i] = r));
  expect(c.until(() => results.every((r) => r !== undefined), 5000)).toBe(true);
  counting = false;
  expect(c.fatals).toEqual([]);
  return { appends, results, deferred };
}

describe('EngineRuntime: client writes of one turn, one Append per follower (Clock.soon)', () => {
  it('with soon: five puts of one turn reach each follower in one Append, and all commit', () => {
    const r = burst(true, 5);
    expect(r.results.map((x) => x?.status)).toEqual(Array(5).fill(Status.OK));
    // One deferred pump for the five writes of the burst (and one for the warm-up write).
    expect(r.deferred).toBe(2);
    expect([...r.appends.values()]).toEqual([1, 1]);
  });

  it('without soon (the simulator): each put pumps at once, so the burst leaves in several Appends', () => {
    const r = burst(false, 5);
    expect(r.results.map((x) => x?.status)).toEqual(Array(5).fill(Status.OK));
    expect(r.deferred).toBe(0);
    expect(Math.max(...r.appends.values())).toBeGreaterThan(1);
  });
});
