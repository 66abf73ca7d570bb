import { describe, expect, it } from 'vitest';
import type { BoardHal } from '../../firmware-sim/board.ts';
import { FAULT_KINDS, parseFaultKinds } from '../../firmware-sim/faults.ts';
import { World } from '../../firmware-sim/world.ts';

/**
 * A small random workload: every board gossips over MQTT and serial, appends to a log
 * and fsyncs, feeds its watchdog; board 1 power-cycles board 3 through its relay now
 * and then. Faults of every kind come from the seed.
 */
function runWorld(seed: number, ms = 20_000, keepLast = 0) {
  const w = new World({ seed, traceKeepLast: keepLast, board: { bootDelayMs: 500 }, mqtt: { keepaliveMs: 1000, dupRate: 0.01 } });
  let received = 0;
  w.onBoot((hal: BoardHal) => {
    const rng = w.rng.fork(`app:${hal.node}:${hal.incarnation}`);
    for (const l of hal.links) l.onFrame(() => received++);
    hal.storage.append('log', new Uint8Array([hal.incarnation]));
    const tick = () => {
      hal.watchdog.feed();
      const peer = rng.int(1, 5);
      if (peer !== hal.node) hal.links[0]!.send(peer, new Uint8Array(rng.int(1, 64)));
      for (const l of hal.links.slice(1)) if (rng.chance(0.2)) l.send((l as { peer?: number }).peer ?? 1, new Uint8Array(8));
      if (rng.chance(0.1)) hal.storage.append('log', new Uint8Array(rng.int(1, 100)));
      if (rng.chance(0.05)) hal.storage.sync('log', () => {});
      if (hal.node === 1 && rng.chance(0.01)) {
        hal.relays[0]!.set(false, () => hal.clock.setTimer(300, () => hal.relays[0]!.set(true, () => {})));
      }
      hal.clock.setTimer(rng.int(20, 80), tick);
    };
    tick();
  });
  for (let id = 1; id <= 5; id++) w.addBoard(id);
  w.wireRelay(1, 3);
  w.powerSense(1, 3);
  w.serialWire(1, 2, { baud: 115200, corruptRate: 0.0005 });
  const plan = w.faults.schedule({ kinds: FAULT_KINDS, startMs: 1000, endMs: ms - 2000, meanGapMs: 1500, maxDurationMs: 3000 });
  w.run(ms);
  return { hash: w.traceHash(), lines: w.trace.lines, received, plan, w };
}

describe('World determinism', () => {
  it('the same seed gives the same trace hash; different seeds give different ones', () => {
    const a = runWorld(11);
    const b = runWorld(11);
    const c = runWorld(12);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(b.lines).toBe(a.lines);
    expect(c.hash).not.toBe(a.hash);
    // the workload really ran, and faults really happened
    expect(a.received).toBeGreaterThan(1000);
    expect(a.plan.length).toBeGreaterThan(3);
    expect(a.w.faults.applied).toBe(a.plan.length);
    expect([...a.w.boards.values()].reduce((s, bd) => s + bd.stats.staleCalls, 0)).toBe(0);
  });

  it('every fault and its heal are in the trace', () => {
    const r = runWorld(21, 20_000, 1_000_000);
    const lines = r.w.trace.last();
    expect(lines.length).toBe(r.lines); // kept everything
    const faults = lines.filter((l) => / fault /.test(l));
    expect(faults.length).toBe(r.plan.length);
    for (const f of r.plan) {
      expect(lines.some((l) => l === `${Math.round(f.atMs * 1000)} fault ${f.kind} ${f.detail}`)).toBe(true);
      // A crash heals by the restart, a stall by the resume: both inside the board, not as a
      // heal line. A heal planned after the end of the 20 s run has not happened yet.
      if (f.kind !== 'crash' && f.kind !== 'stall' && f.healMs <= 20_000) expect(lines.some((l) => l === `${Math.round(f.healMs * 1000)} heal ${f.kind} ${f.detail}`)).toBe(true);
    }
  });
});

describe('fault plans', () => {
  it('are reproducible from the seed, stay in the window, and keep a majority up', () => {
    const mk = (seed: number) => {
      const w = new World({ seed });
      for (let id = 1; id <= 5; id++) w.addBoard(id);
      return w.faults.plan({ kinds: ['crash', 'power', 'partition', 'disk'], endMs: 120_000, meanGapMs: 500 });
    };
    const p1 = mk(3);
    expect(mk(3)).toEqual(p1);
    expect(mk(4)).not.toEqual(p1);
    expect(p1.length).toBeGreaterThan(50);
    expect(new Set(p1.map((f) => f.kind)).size).toBe(4);
    for (const f of p1) {
      expect(f.atMs).toBeGreaterThanOrEqual(0);
      expect(f.atMs).toBeLessThanOrEqual(120_000);
      expect(f.healMs - f.atMs).toBeGreaterThanOrEqual(500);
      expect(f.healMs - f.atMs).toBeLessThanOrEqual(5000);
    }
    // at every instant at most 2 of 5 boards are down
    const down = p1.filter((f) => f.kind === 'crash' || f.kind === 'power');
    for (const f of down) {
      const overlapping = down.filter((g) => g.atMs <= f.atMs && f.atMs < g.healMs).length;
      expect(overlapping).toBeLessThanOrEqual(2);
    }
    // partitions never overlap each other
    const parts = p1.filter((f) => f.kind === 'partition').sort((a, b) => a.atMs - b.atMs);
    for (let i = 1; i < parts.length; i++) expect(parts[i]!.atMs).toBeGreaterThanOrEqual(parts[i - 1]!.healMs);
  });

  it('parses --faults and names a bad kind', () => {
    expect(parseFaultKinds('partition, crash,partition')).toEqual(['partition', 'crash']);
    expect(() => parseFaultKinds('partition,meteor')).toThrow(/unknown fault kind "meteor"/);
    const w = new World({ seed: 1 });
    w.addBoard(1);
    expect(() => w.faults.plan({ kinds: ['crash'], endMs: -5 })).toThrow(/endMs/);
    expect(() => w.faults.plan({ kinds: ['crash'], endMs: 10, nodes: [7] })).toThrow(/no board 7/);
  });

  it('World rejects bad options clearly', () => {
    expect(() => new World({ seed: Number.NaN })).toThrow(/seed/);
    expect(() => new World({ seed: 1, maxDriftPpm: -1 })).toThrow(/maxDriftPpm/);
    expect(() => new World({ seed: 1, board: { bootDelayMs: -3 } }).addBoard(1)).toThrow(/bootDelayMs/);
    const w = new World({ seed: 1 });
    expect(() => w.run(Number.POSITIVE_INFINITY)).toThrow(/finite/);
  });
});

describe('World.observe: the simulator looking does not move a process clock', () => {
  /** One board whose process clock moves on every read (the stall kind's setting); `look` reads it between the process's own reads. */
  function reads(look: (w: World, hal: BoardHal) => void): number[] {
    const w = new World({ seed: 9, board: { bootDelayMs: 10, readAdvanceMaxUs: 200 } });
    const out: number[] = [];
    w.onBoot((hal) => {
      const tick = () => {
        out.push(hal.clock.monotonicMs());
        look(w, hal);
        out.push(hal.clock.monotonicMs());
        if (out.length < 200) hal.clock.setTimer(5, tick);
      };
      tick();
    });
    w.addBoard(1);
    w.run(2000);
    return out;
  }

  it('reads inside observe() leave the process reads as they were without them; reads outside move them', () => {
    const plain = reads(() => {});
    const observed: number[] = [];
    const quiet = reads((w, hal) => {
      for (let i = 0; i < 5; i++) observed.push(w.observe(() => hal.clock.monotonicMs()));
    });
    expect(plain.length).toBe(200);
    expect(quiet).toEqual(plain);
    // What the observer saw never runs behind the process's own earlier reads.
    for (let i = 1; i < observed.length; i++) expect(observed[i]!).toBeGreaterThanOrEqual(observed[i - 1]!);
    const loud = reads((_w, hal) => {
      for (let i = 0; i < 5; i++) hal.clock.monotonicMs();
    });
    expect(loud).not.toEqual(plain);
  });
});
