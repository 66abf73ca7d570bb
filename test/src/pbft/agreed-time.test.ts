/**
 * The agreed lock time of engine pbft (src/pbft/agreed-time.ts): the (f + 1)-th largest
 * clock report, each replica's time line, and the bound a liar has on a lease — a lying
 * reporter (far future, far past, silent) and a lying primary (delays honest reports up
 * to a view-change timeout) — in a model of four replicas with drifting clocks, in
 * virtual time. Determinism: equal report sequences give equal bytes, and a state
 * restored mid-way continues alike.
 */
import { describe, expect, it } from 'vitest';
import { AgreedClock, decodeTimeReport, encodeTimeReport, isTimeReport, LocalTimeLine, PBFT_TIME_OP } from '../../../src/pbft/agreed-time.ts';
import { readCbor } from '../../../src/kv/cbor.ts';
import { Rng } from '../../../src/rng.ts';
import type { NodeId } from '../../../src/types.ts';

const IDS: NodeId[] = [1, 2, 3, 4];

describe('AgreedClock', () => {
  it('is the (f + 1)-th largest report; never goes back; refuses non-members and bad times', () => {
    const c = new AgreedClock(IDS, 1);
    expect(c.nowMs).toBe(0);
    expect(c.report(1, 1000)).toBe(false); // one report: the 2nd largest is still 0
    expect(c.nowMs).toBe(0);
    expect(c.report(2, 900)).toBe(true);
    expect(c.nowMs).toBe(900);
    expect(c.report(4, 1e12)).toBe(true); // a liar's far future only makes 1000 the 2nd largest
    expect(c.nowMs).toBe(1000);
    expect(c.report(1, 500)).toBe(false); // a report below the member's last changes nothing
    expect(c.reportOf(1)).toBe(1000);
    expect(c.report(9, 5000)).toBe(false); // not a member
    expect(c.report(3, -1)).toBe(false);
    expect(c.report(3, 1.5)).toBe(false);
    expect(c.nowMs).toBe(1000);
    expect(() => new AgreedClock(IDS, 4)).toThrow(/f must be an integer 0\.\.3/);
  });

  it('encodes deterministically; a state restored mid-way continues exactly as the original', () => {
    const rng = new Rng('agreed-clock-determinism');
    const ops: Array<[NodeId, number]> = [];
    for (let i = 0; i < 200; i++) ops.push([IDS[rng.int(0, 3)]!, rng.int(0, 100_000)]);
    const a = new AgreedClock(IDS, 1);
    const b = new AgreedClock([4, 3, 2, 1], 1); // member order does not matter
    let restored: AgreedClock | undefined;
    for (const [i, [n, ms]] of ops.entries()) {
      a.report(n, ms);
      b.report(n, ms);
      restored?.report(n, ms);
      if (i === 100) {
        const r = readCbor(a.encode()!);
        expect(r.ok).toBe(true);
        const d = AgreedClock.decode(r.ok ? r.value : null, IDS, 1);
        if (typeof d === 'string') throw new Error(d);
        restored = d;
      }
    }
    expect(Buffer.from(a.encode()!)).toEqual(Buffer.from(b.encode()!));
    expect(Buffer.from(restored!.encode()!)).toEqual(Buffer.from(a.encode()!));
    expect(restored!.nowMs).toBe(a.nowMs);
    expect(new AgreedClock(IDS, 1).encode()).toBeUndefined();
  });

  it('decode names what is wrong', () => {
    expect(AgreedClock.decode([5, [[9, 1]]], IDS, 1)).toMatch(/report of 9: not a member/);
    expect(AgreedClock.decode([5, [[1, 1], [1, 2]]], IDS, 1)).toMatch(/twice/);
    expect(AgreedClock.decode([5, [[1, 10], [2, 10]]], IDS, 1)).toMatch(/T 5 is below/);
    expect(AgreedClock.decode('x', IDS, 1)).toMatch(/expected \[T/);
  });

  it('clock report bytes: round trip, recognised cheaply, bad ones refused', () => {
    const b = encodeTimeReport(123_456);
    expect(isTimeReport(b)).toBe(true);
    expect(decodeTimeReport(b)).toBe(123_456);
    expect(isTimeReport(new Uint8Array([0x82, 0x18, 200, 1]))).toBe(false); // the client envelope's code
    expect(decodeTimeReport(new Uint8Array([0x83, 0x18, PBFT_TIME_OP, 1, 2]))).toMatch(/expected \[201, ms\]/);
    expect(() => encodeTimeReport(-1)).toThrow(/ms must be an integer/);
  });
});

describe('LocalTimeLine', () => {
  it('runs only while a lock is live, never below the agreed time, at most cap above it', () => {
    const l = new LocalTimeLine(2000);
    l.observe(0, false, 5000);
    expect(l.estimate(9000)).toBe(0); // paused: no live lock, time does not run
    l.observe(100, true, 10_000);
    expect(l.estimate(10_500)).toBe(600);
    expect(l.reportValue(20_000)).toBe(2100); // capped at T seen + cap
    l.observe(50, true, 20_000); // an older T changes nothing
    expect(l.estimate(20_000)).toBe(2100); // pulled back to T + cap at observation
    l.observe(3000, true, 20_000);
    expect(l.estimate(20_000)).toBe(3000); // never below T
    l.observe(3000, false, 21_000);
    expect(l.estimate(99_000)).toBe(4000); // paused where it was
    expect(l.isRunning).toBe(false);
  });
});

/**
 * Four replicas, one lock held throughout. Honest replicas report every P on their own
 * drifting clock; reports execute after a network delay (a lying primary may add up to
 * `primaryDelay`); every replica observes T when a report executes. Returns how long,
 * in real time, leases of `ttl` granted at many points stayed unexpired.
 */
function model(o: { seed: string; liar?: 'future' | 'past' | 'silent'; primaryDelay?: number; ttl: number; kthIsMax?: boolean }): { held: number[] } {
  const P = 1000;
  const C = 2000;
  const rng = new Rng(o.seed);
  const clock = new AgreedClock(IDS, o.kthIsMax ? 0 : 1); // kthIsMax: a broken clock that takes the largest report
  const honest: NodeId[] = o.liar ? [1, 2, 3] : [1, 2, 3, 4];
  const rate = new Map<NodeId, number>([[1, 1 - 1e-4], [2, 1], [3, 1 + 1e-4], [4, 1 + 5e-5]]);
  const boot = new Map<NodeId, number>(IDS.map((n) => [n, rng.int(0, 10_000_000)]));
  const mono = (n: NodeId, t: number) => boot.get(n)! + rate.get(n)! * t;
  const lines = new Map<NodeId, LocalTimeLine>(IDS.map((n) => [n, new LocalTimeLine(C)]));
  const nextReport = new Map<NodeId, number>(IDS.map((n) => [n, rng.int(0, P)]));
  for (const n of IDS) lines.get(n)!.observe(0, true, mono(n, 0));
  const pending: Array<{ at: number; origin: NodeId; ms: number }> = [];
  const trace: Array<[number, number]> = []; // (real time, T) after each execution
  const END = 120_000;
  for (let t = 0; t <= END; t += 5) {
    for (const n of IDS) {
      if (t < nextReport.get(n)!) continue;
      nextReport.set(n, t + P);
      let ms: number;
      if (honest.includes(n)) ms = lines.get(n)!.reportValue(mono(n, t));
      else if (o.liar === 'future') ms = t * 10 + 3_600_000; // an hour ahead, and running fast
      else if (o.liar === 'past') ms = 1;
      else continue; // silent
      const delay = rng.int(5, 50) + (honest.includes(n) && o.primaryDelay ? rng.int(0, o.primaryDelay) : 0);
      pending.push({ at: t + delay, origin: n, ms });
    }
    pending.sort((a, b) => a.at - b.at || a.origin - b.origin);
    while (pending.length > 0 && pending[0]!.at <= t) {
      const r = pending.shift()!;
      clock.report(r.origin, r.ms);
      for (const n of IDS) lines.get(n)!.observe(clock.nowMs, true, mono(n, t));
    }
    trace.push([t, clock.nowMs]);
  }
  // Leases granted every 700 ms after a warm-up: held until T ≥ T(grant) + ttl.
  const held: number[] = [];
  let j = 0;
  for (let g = 2000; g < trace.length; g += 140) {
    const [tg, Tg] = trace[g]!;
    if (tg + o.ttl * 1.5 > END) break;
    j = Math.max(j, g);
    while (j < trace.length && trace[j]![1] < Tg + o.ttl) j++;
    held.push(trace[j]![0] - tg);
  }
  return { held };
}

describe('what a liar can do to a lease (P = 1 s, cap C = 2 s)', () => {
  const ttl = 15_000;
  const P = 1000;
  const C = 2000;
  const net = 50;
  const drift = Math.ceil(2e-4 * ttl);

  it('honest replicas only: a lease lasts its TTL give or take one report period and the network', () => {
    const { held } = model({ seed: 'honest', ttl });
    expect(held.length).toBeGreaterThan(50);
    for (const h of held) {
      expect(h).toBeGreaterThanOrEqual(ttl - P - 2 * net - drift);
      expect(h).toBeLessThanOrEqual(ttl + P + 2 * net + drift);
    }
  });

  it('a reporter of the far future cuts a lease by at most the cap (plus drift); of the past or silent, it changes nothing beyond the honest bound', () => {
    for (const liar of ['future', 'past', 'silent'] as const) {
      const { held } = model({ seed: `liar-${liar}`, liar, ttl });
      for (const h of held) {
        expect(h, liar).toBeGreaterThanOrEqual(ttl - P - C - 2 * net - drift);
        expect(h, liar).toBeLessThanOrEqual(ttl + P + 2 * net + drift);
      }
    }
  });

  it('a lying primary that delays honest reports up to a view-change timeout D extends a lease by at most P + D + max(0, P + D - C)', () => {
    for (const D of [1000, 3000]) {
      const { held } = model({ seed: `primary-${D}`, liar: 'silent', primaryDelay: D, ttl });
      const pulledBack = Math.max(0, P + D - C);
      for (const h of held) {
        expect(h, `D ${D}`).toBeGreaterThanOrEqual(ttl - P - D - 2 * net - drift);
        expect(h, `D ${D}`).toBeLessThanOrEqual(ttl + P + D + pulledBack + 2 * net + drift);
      }
    }
  });

  it('the bound comes from the (f + 1)-th largest: a clock that took the largest report lets the liar expire leases at once', () => {
    const { held } = model({ seed: 'broken', liar: 'future', ttl, kthIsMax: true });
    expect(Math.min(...held)).toBeLessThan(ttl - P - C);
  });
});
