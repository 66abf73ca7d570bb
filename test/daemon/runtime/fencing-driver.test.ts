/**
 * The fencing driver never hands the Fencer an earlier time than it already saw
 * (issue 12): a runtime step that reads the clock twice — once at its start, once
 * more inside (a cancel, a listener) — must not end in `Fencer.tick: time went
 * backwards`, the RangeError that escaped an MQTT handler and killed new leaders.
 */
import { describe, expect, it } from 'vitest';
import { FencingDriver } from '../../../daemon/runtime/fencing-driver.ts';
import { Fencer } from '../../../src/fence/index.ts';
import { Rng } from '../../../src/rng.ts';
import type { Cancel, Clock, Relay } from '../../../hal/interfaces.ts';

/** A clock that moves forward by 0.5 ms at every read, like a real one during a busy step. */
function creepingClock(start: number): Clock & { t: number; timers: number } {
  const c = {
    t: start,
    timers: 0,
    monotonicMs() {
      c.t += 0.5;
      return c.t;
    },
    wallMs() {
      return c.t;
    },
    setTimer(_ms: number, _fn: () => void): Cancel {
      c.timers++;
      return () => {};
    },
  };
  return c;
}

function relay(name: string): Relay {
  let on = true;
  return {
    name,
    set(v: boolean, done: (err: Error | null) => void) {
      on = v;
      done(null);
    },
    read(done: (err: Error | null, on?: boolean) => void) {
      done(null, on);
    },
  } as unknown as Relay;
}

function driver(clock: Clock): FencingDriver {
  return new FencingDriver({
    who: 'test',
    id: 1,
    devices: {
      relays: [relay('r2')],
      fencer: { targets: [{ target: 2, delayMs: 1000, levels: [[{ kind: 'gpio-relay', relay: 'r2' }]] }], randomDelayMaxMs: 0, priorityDelayMs: 0 },
    },
    rng: new Rng(7),
    clock,
    log: () => {},
    running: () => true,
    stopped: () => false,
    resultFed: () => {},
    wake: () => {},
    record: () => {},
    pollMs: 10,
    fatal: (where, e) => {
      throw new Error(`fatal at ${where}: ${String(e)}`);
    },
  });
}

describe('fencing driver time', () => {
  it('the issue-12 ordering: a step reads now, a delayed fence is cancelled with a fresh (later) reading, then the fencer is ticked with the older now — no RangeError', () => {
    const clock = creepingClock(25_000);
    const d = driver(clock);
    d.fence(2, clock.monotonicMs(), { reason: 'earlier leader', term: 3 });
    const now = clock.monotonicMs(); // the step's reading (updateActive(now))
    d.cancelDelayed(clock.monotonicMs(), 'active'); // a fresh reading inside the step, as the old node.ts did
    expect(() => d.step(now)).not.toThrow();
    expect(d.fencer.history()[0]!.outcome).toBe('cancelled');
  });

  it('the raw Fencer does refuse that order (what the driver protects against)', () => {
    const f = new Fencer({ self: 1, targets: [{ target: 2, delayMs: 1000, levels: [[{ kind: 'gpio-relay', relay: 'r2' }]] }], randomDelayMaxMs: 0, priorityDelayMs: 0 }, new Rng(7));
    f.fence(2, 25_000, { reason: 'x', term: 3 });
    f.cancel(2, 25_001, 'active');
    expect(() => f.tick(25_000.5)).toThrow(/time went backwards/);
  });

  it('operator fence, confirm and device answers interleaved with stale readings never go backwards', () => {
    const clock = creepingClock(100);
    const d = driver(clock);
    const stale = clock.monotonicMs();
    d.confirm(2, clock.monotonicMs());
    expect(() => d.fence(2, stale, { reason: 'operator', term: 1 })).not.toThrow();
    expect(() => d.step(stale)).not.toThrow();
    expect(() => d.cancelDelayed(stale - 50, 'stepped down')).not.toThrow();
    expect(d.at(stale)).toBeGreaterThan(stale);
  });
});
