/**
 * The RS-485 slot scheduler in virtual time: drops with unrelated clock origins and
 * ±200 ppm drift share one medium that records every transmission interval and
 * flags any overlap (two drivers on the bus at once = a collision).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { SlipDecoder } from '../../../src/wire/slip.ts';
import { BUS_BROADCAST, decodeBusFrame, TdmaScheduler, tdmaTiming, type BusOptions } from '../../../hal/serial/tdma.ts';
import { VirtualTime } from './vclock.ts';

describe('tdmaTiming', () => {
  it('follows slot = guard + maxWireBytes × 10 / baud', () => {
    const t = tdmaTiming(115200, 1024, 3, 10);
    expect(t.maxWireBytes).toBe(2 * (1024 + 3 + 4) + 2);
    expect(t.maxFrameMs).toBeCloseTo((2064 * 10 * 1000) / 115200, 9);
    expect(t.slotMs).toBeCloseTo(10 + 179.1667, 3);
    expect(t.cycleMs).toBeCloseTo(3 * t.slotMs, 9);
    expect(tdmaTiming(9600, 64, 2, 0).slotMs).toBeCloseTo(((2 * 71 + 2) * 10 * 1000) / 9600, 9);
  });
  it('rejects bad parameters with named errors', () => {
    expect(() => tdmaTiming(0, 10, 3)).toThrow(/baudRate/);
    expect(() => tdmaTiming(9600, 0, 3)).toThrow(/maxFrame/);
    expect(() => tdmaTiming(9600, 10, 1)).toThrow(/at least 2/);
    expect(() => tdmaTiming(9600, 10, 3, -1)).toThrow(/guardMs/);
    const vt = new VirtualTime();
    const mk = (o: BusOptions, self = 1) => new TdmaScheduler(vt.clock(), self, 115200, 64, o, () => {});
    expect(() => mk({ members: [1, 1, 2] })).toThrow(/duplicate/);
    expect(() => mk({ members: [2, 3] })).toThrow(/not in/);
    expect(() => mk({ members: [1, 300] })).toThrow(/1\.\.254/);
    expect(() => mk({ members: [1, 2], queueLimit: 0 })).toThrow(/queueLimit/);
    const s = mk({ members: [1, 2] });
    expect(() => s.send(0, new Uint8Array(1))).toThrow(/'to'/);
    expect(() => s.send(2, new Uint8Array(65))).toThrow(/exceeds maxFrame 64/);
  });
});

interface Tx {
  node: number;
  start: number;
  end: number;
}

interface Drop {
  id: number;
  sched: TdmaScheduler;
  decoder: SlipDecoder;
  received: number;
  clock: ReturnType<VirtualTime['clock']>;
}

/** A shared bus in virtual time with collision detection. */
function runBus(opts: {
  seed: number;
  ids: number[];
  baud: number;
  maxFrame: number;
  guardMs: number;
  durationMs: number;
  startSpreadMs: number;
  latencyMs: number;
  loadPerSec: number;
}) {
  const rng = new Rng(opts.seed);
  const vt = new VirtualTime();
  const byteMs = 10_000 / opts.baud;
  const txs: Tx[] = [];
  let collisions = 0;
  let sent = 0;
  const drops = new Map<number, Drop>();
  let lastEnd = -Infinity;
  let lastNode = -1;

  const transmit = (node: number, bytes: Uint8Array) => {
    // The first byte leaves after a random OS/USB latency; the medium is busy until the last.
    const start = vt.now + rng.float() * opts.latencyMs;
    const end = start + bytes.length * byteMs;
    // Overlap with any other node's transmission that is still on the line.
    if (start < lastEnd && lastNode !== node) collisions++;
    for (let i = txs.length - 1; i >= 0 && i >= txs.length - 20; i--) {
      const o = txs[i]!;
      if (o.node !== node && start < o.end && o.start < end) collisions++;
    }
    txs.push({ node, start, end });
    if (end > lastEnd) {
      lastEnd = end;
      lastNode = node;
    }
    vt.at(end, () => {
      for (const d of drops.values()) {
        if (d.id === node) continue;
        for (const r of d.decoder.push(bytes)) {
          if (!r.ok) throw new Error(`bus frame damaged: ${r.reason}`);
          const h = decodeBusFrame(r.frame)!;
          d.sched.heard(h.from, h.flags, bytes.length, d.clock.monotonicMs());
          if (h.to === d.id || h.to === BUS_BROADCAST) d.received++;
        }
      }
    });
  };

  for (const id of opts.ids) {
    const start = rng.float() * opts.startSpreadMs;
    vt.at(start, () => {
      const clock = vt.clock(rng.float() * 1e6, rng.int(-200, 200));
      const sched = new TdmaScheduler(clock, id, opts.baud, opts.maxFrame, { members: opts.ids, guardMs: opts.guardMs, queueLimit: 1000 }, (b) => transmit(id, b));
      drops.set(id, { id, sched, decoder: new SlipDecoder(opts.maxFrame + 3), received: 0, clock });
    });
  }
  // Offered load: Poisson-ish arrivals of random frames to random destinations.
  const meanGap = 1000 / opts.loadPerSec;
  let t = opts.startSpreadMs;
  for (let i = 0; i < 1_000_000 && t < opts.durationMs * 0.8; i++) {
    t += -Math.log(1 - rng.float()) * meanGap;
    const from = rng.pick(opts.ids);
    const others = opts.ids.filter((x) => x !== from);
    const to = rng.chance(0.1) ? BUS_BROADCAST : rng.pick(others);
    const len = rng.int(1, opts.maxFrame);
    vt.at(t, () => {
      const d = drops.get(from);
      if (d && d.sched.send(to, new Uint8Array(len).fill(0xc0))) sent += to === BUS_BROADCAST ? others.length : 1;
    });
  }
  vt.run(opts.durationMs);
  const received = [...drops.values()].reduce((s, d) => s + d.received, 0);
  const queued = [...drops.values()].reduce((s, d) => s + d.sched.queued, 0);
  return { collisions, txs: txs.length, sent, received, queued, drops };
}

describe('TdmaScheduler on a shared medium (virtual time)', () => {
  it('the collision detector itself sees two drivers at once', () => {
    // Two drops that both believe they are alone (each the only member it knows of
    // besides a silent one, both rank 0 with the same origin) must collide.
    const vt = new VirtualTime();
    const seen: Array<[number, number]> = [];
    const a = new TdmaScheduler(vt.clock(), 1, 115200, 32, { members: [1, 9], listenCycles: 1 }, () => seen.push([1, vt.now]));
    const b = new TdmaScheduler(vt.clock(), 1, 115200, 32, { members: [1, 8], listenCycles: 1 }, () => seen.push([2, vt.now]));
    vt.run(1000);
    const times1 = seen.filter(([n]) => n === 1).map(([, t]) => t);
    const times2 = new Set(seen.filter(([n]) => n === 2).map(([, t]) => t));
    expect(times1.length).toBeGreaterThan(3);
    expect(times1.some((t) => times2.has(t))).toBe(true);
    a.stop();
    b.stop();
  });

  for (const [seed, ids] of [[1, [1, 2, 3]], [2, [3, 7, 9, 12, 40]], [3, [1, 2, 3]], [4, [2, 5, 6]]] as const) {
    it(`seed ${seed}, drops ${ids.join(',')}: no collision over thousands of frames, everything delivered`, () => {
      const r = runBus({ seed, ids: [...ids], baud: 115200, maxFrame: 128, guardMs: 4, durationMs: 120_000, startSpreadMs: 3000, latencyMs: 1.5, loadPerSec: 25 });
      expect(r.collisions).toBe(0);
      expect(r.txs).toBeGreaterThan(2000);
      expect(r.queued).toBe(0);
      expect(r.received).toBe(r.sent);
      for (const d of r.drops.values()) expect(d.sched.stats.lateSlots).toBe(0);
    });
  }

  it('a latency larger than half the guard is where overlaps start (the guard is what protects)', () => {
    const r = runBus({ seed: 5, ids: [1, 2, 3], baud: 115200, maxFrame: 128, guardMs: 0.2, durationMs: 60_000, startSpreadMs: 3000, latencyMs: 3, loadPerSec: 60 });
    expect(r.collisions).toBeGreaterThan(0);
  });

  it('the lowest drop keeps time with beacons when idle; the others follow it', () => {
    const r = runBus({ seed: 6, ids: [4, 5, 6], baud: 115200, maxFrame: 64, guardMs: 4, durationMs: 20_000, startSpreadMs: 100, latencyMs: 0, loadPerSec: 0.0001 });
    const d4 = r.drops.get(4)!;
    expect(d4.sched.stats.beaconsSent).toBeGreaterThan(50);
    expect(d4.sched.following).toBe(0);
    expect(r.drops.get(5)!.sched.following).toBe(4);
    expect(r.drops.get(6)!.sched.following).toBe(4);
    expect(r.drops.get(5)!.sched.stats.beaconsSent).toBe(0);
    expect(r.collisions).toBe(0);
  });
});
