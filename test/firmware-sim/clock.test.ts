import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.ts';
import { World } from '../../firmware-sim/world.ts';

describe('board clocks', () => {
  it('monotonic time runs at the configured drift rate', () => {
    const w = new World({ seed: 1, board: { bootDelayMs: 0 } });
    const fast = w.addBoard(1, { clock: { driftPpm: 150 } });
    const slow = w.addBoard(2, { clock: { driftPpm: -80 } });
    w.run(1);
    const f0 = fast.hal!.clock.monotonicMs();
    const s0 = slow.hal!.clock.monotonicMs();
    w.run(1_000_000); // 1000 s
    expect(fast.hal!.clock.monotonicMs() - f0).toBeCloseTo(1_000_000 * (1 + 150e-6), 6);
    expect(slow.hal!.clock.monotonicMs() - s0).toBeCloseTo(1_000_000 * (1 - 80e-6), 6);
  });

  it('the world draws drifts from the seed within ±maxDriftPpm, different per board', () => {
    const w = new World({ seed: 5, maxDriftPpm: 200 });
    const drifts = [1, 2, 3, 4, 5].map((id) => w.addBoard(id).clockHw.driftPpm);
    for (const d of drifts) expect(Math.abs(d)).toBeLessThanOrEqual(200);
    expect(new Set(drifts).size).toBe(5);
    const again = new World({ seed: 5, maxDriftPpm: 200 });
    expect([1, 2, 3, 4, 5].map((id) => again.addBoard(id).clockHw.driftPpm)).toEqual(drifts);
  });

  it('monotonic never decreases under wall-clock jumps and drift changes; the wall clock jumps', () => {
    const w = new World({ seed: 2, board: { bootDelayMs: 0 } });
    const b = w.addBoard(1);
    w.run(1);
    const clock = b.hal!.clock;
    const rng = new Rng(99);
    let lastMono = clock.monotonicMs();
    let sawBackwardWall = false;
    for (let i = 0; i < 2000; i++) {
      const wall0 = clock.wallMs();
      if (rng.chance(0.1)) {
        const step = (rng.chance(0.5) ? -1 : 1) * rng.int(1, 12) * 3_600_000;
        b.clockHw.stepWall(step);
        expect(clock.wallMs() - wall0).toBeCloseTo(step, 3);
        if (step < 0) sawBackwardWall = true;
      }
      if (rng.chance(0.05)) b.clockHw.setDrift(rng.int(-500, 500));
      w.run(rng.int(0, 50));
      const m = clock.monotonicMs();
      expect(m).toBeGreaterThanOrEqual(lastMono);
      lastMono = m;
    }
    expect(sawBackwardWall).toBe(true);
    const before = clock.wallMs();
    const step = b.clockHw.syncWall();
    expect(clock.wallMs()).toBeCloseTo(w.trueWallMs(), 6);
    expect(clock.wallMs() - before).toBeCloseTo(step, 6);
  });

  it('timers fire at the virtual time that matches the board clock (never early by the board clock)', () => {
    const w = new World({ seed: 3, board: { bootDelayMs: 0 } });
    const b = w.addBoard(1, { clock: { driftPpm: 100 } });
    w.run(1);
    const clock = b.hal!.clock;
    const fired: Array<{ v: number; mono: number }> = [];
    const v0 = w.nowUs;
    const m0 = clock.monotonicMs();
    clock.setTimer(1000, () => fired.push({ v: w.nowUs, mono: clock.monotonicMs() }));
    const cancel = clock.setTimer(500, () => fired.push({ v: -1, mono: -1 }));
    cancel();
    cancel(); // twice is harmless
    w.run(2000);
    expect(fired.length).toBe(1);
    expect(fired[0]!.v - v0).toBe(Math.ceil(1_000_000 / 1.0001)); // 999901 µs of virtual time
    expect(fired[0]!.mono - m0).toBeGreaterThanOrEqual(1000);
    expect(fired[0]!.mono - m0).toBeLessThan(1000.01);
    expect(() => clock.setTimer(-1, () => {})).toThrow(/≥ 0/);
    expect(() => clock.setTimer(Number.NaN, () => {})).toThrow(/finite/);
  });

  it('monotonic restarts at power-on; a board without RTC comes back with a stale wall clock until NTP', () => {
    const w = new World({ seed: 4, board: { bootDelayMs: 1000, ntpSyncDelayMs: 5000, clock: { driftPpm: 0, bootMonotonicMs: 2000 } } });
    const b = w.addBoard(1);
    w.run(1000);
    expect(b.hal!.clock.monotonicMs()).toBeCloseTo(3000, 6); // 2 s kernel + 1 s boot delay
    w.run(10_000);
    expect(b.hal!.clock.wallMs()).toBeCloseTo(w.trueWallMs(), 6);
    b.setMains(false);
    const wallAtCut = b.clockHw.wallMs();
    w.run(60_000); // off for a minute
    b.setMains(true);
    w.run(1000);
    const hal = b.hal!;
    expect(hal.clock.monotonicMs()).toBeCloseTo(3000, 6);
    expect(hal.clock.wallMs()).toBeCloseTo(wallAtCut + 1000, 3); // stale by the minute it was off
    w.run(5001);
    expect(hal.clock.wallMs()).toBeCloseTo(w.trueWallMs(), 3); // NTP stepped it
  });
});
