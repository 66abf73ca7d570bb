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

function driver(clock: Clock, o: { relay?: Relay; delayMs?: number; powerOnAfterMs?: number; stopped?: () => boolean } = {}): FencingDriver {
  const r = o.relay ?? relay('r2');
  const stopped = o.stopped ?? (() => false);
  return new FencingDriver({
    who: 'test',
    id: 1,
    devices: {
      relays: [r],
      fencer: { targets: [{ target: 2, delayMs: o.delayMs ?? 1000, ...(o.powerOnAfterMs !== undefined ? { powerOnAfterMs: o.powerOnAfterMs } : {}), levels: [[{ kind: 'gpio-relay', relay: r.name }]] }], randomDelayMaxMs: 0, priorityDelayMs: 0 },
    },
    rng: new Rng(7),
    clock,
    log: () => {},
    running: () => !stopped(),
    stopped,
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
    d.cancelDelayed(clock.monotonicMs(), 'active'); // a fresh reading inside the step, as the former Raft runtime did
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

/** A clock whose timers fire only when the test moves it. */
function manualClock(): Clock & { advance(ms: number): void; pending(): number } {
  let t = 1000;
  let timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    monotonicMs: () => t,
    wallMs: () => t,
    setTimer(ms: number, fn: () => void): Cancel {
      const e = { at: t + ms, fn, live: true };
      timers.push(e);
      return () => {
        e.live = false;
      };
    },
    advance(ms: number) {
      t += ms;
      const due = timers.filter((e) => e.live && e.at <= t);
      timers = timers.filter((e) => e.live && e.at > t);
      for (const e of due) e.fn();
    },
    pending: () => timers.filter((e) => e.live).length,
  };
}

function offRelay(name: string): Relay & { on: boolean; sets: boolean[] } {
  const r = {
    name,
    on: false,
    sets: [] as boolean[],
    set(v: boolean, done: (err: Error | null) => void) {
      r.on = v;
      r.sets.push(v);
      done(null);
    },
    read(done: (err: Error | null, on?: boolean) => void) {
      done(null, r.on);
    },
  };
  return r as unknown as Relay & { on: boolean; sets: boolean[] };
}

function startupDriver(clock: Clock, r: Relay, stopped: () => boolean = () => false): FencingDriver {
  return driver(clock, { relay: r, delayMs: 0, powerOnAfterMs: 5000, stopped });
}

describe('a relay read off at start', () => {
  it('is not switched on at once: the fence that may hold it keeps its powerOnAfterMs; after that it is powered on', () => {
    const clock = manualClock();
    const r = offRelay('r2');
    const d = startupDriver(clock, r);
    expect(r.sets).toEqual([]); // the old driver switched it on here, cutting a fence in progress short
    expect(d.leftOff.has('r2')).toBe(true);
    clock.advance(4999);
    expect(r.sets).toEqual([]);
    clock.advance(1);
    expect(r.sets).toEqual([true]);
    expect(d.leftOff.size).toBe(0);
  });

  it('is left alone when it was switched on meanwhile (the fence that held it ended)', () => {
    const clock = manualClock();
    const r = offRelay('r2');
    startupDriver(clock, r);
    r.on = true;
    clock.advance(5000);
    expect(r.sets).toEqual([]);
  });

  it('is left to our own fence when one of the same target starts during the wait', () => {
    const clock = manualClock();
    const r = offRelay('r2');
    const d = startupDriver(clock, r);
    d.fence(2, clock.monotonicMs(), { reason: 'suspect', term: 4 });
    d.step(clock.monotonicMs());
    expect(d.fencer.busy(2)).toBe(true);
    const setsByFence = r.sets.length;
    clock.advance(5000); // the fencer is not stepped here: whatever switches the relay now is the start-up wait
    expect(r.sets.slice(setsByFence)).toEqual([]);
    expect(r.on).toBe(false);
    expect(d.leftOff.size).toBe(0);
  });

  it('is not switched after the node stopped', () => {
    const clock = manualClock();
    const r = offRelay('r2');
    let stopped = false;
    const d = startupDriver(clock, r, () => stopped);
    stopped = true;
    d.stop();
    expect(clock.pending()).toBe(0);
    clock.advance(10_000);
    expect(r.sets).toEqual([]);
  });
});
