import { describe, expect, it } from 'vitest';
import type { BoardHal } from '../../firmware-sim/board.ts';
import { World } from '../../firmware-sim/world.ts';

/** Reads a callback-style value synchronously-in-virtual-time. */
function get<T>(w: World, f: (cb: (err: Error | null, v?: T) => void) => void): { err: Error | null; v: T | undefined } {
  let out: { err: Error | null; v: T | undefined } | undefined;
  f((err, v) => (out = { err, v }));
  w.run(0);
  if (out === undefined) throw new Error('callback not called');
  return out;
}

function fencingPair(relayOpts = {}) {
  const w = new World({ seed: 3, board: { bootDelayMs: 1000 } });
  const ticks = new Map<number, number[]>([[1, []], [2, []]]);
  const boots: Array<{ node: number; inc: number; at: number }> = [];
  w.onBoot((hal: BoardHal) => {
    boots.push({ node: hal.node, inc: hal.incarnation, at: w.nowUs });
    const tick = () => {
      ticks.get(hal.node)!.push(w.nowUs);
      hal.clock.setTimer(10, tick);
    };
    hal.clock.setTimer(10, tick);
  });
  w.addBoard(1);
  w.addBoard(2);
  const relay = w.wireRelay(1, 2, relayOpts);
  w.powerSense(1, 2);
  w.run(1100);
  return { w, ticks, boots, relay };
}

describe('relays and power', () => {
  it('relay off cuts the target rail after the switching delay; its timers stop; read-back and power-sense agree', () => {
    const { w, ticks, boots, relay } = fencingPair({ switchDelayMs: 5 });
    const b1 = w.board(1).hal!;
    const b2 = w.board(2);
    expect(b1.relays[0]!.name).toBe('relay:2');
    expect(get<boolean>(w, (cb) => b1.powerSense[0]!.read(cb)).v).toBe(true);
    const t0 = w.nowUs;
    expect(get(w, (cb) => b1.relays[0]!.set(false, cb)).err).toBeNull();
    expect(get<boolean>(w, (cb) => b1.relays[0]!.read(cb)).v).toBe(true); // contact not moved yet
    w.run(4.9);
    expect(b2.railLive).toBe(true);
    w.run(0.2);
    expect(b2.railLive).toBe(false);
    expect(b2.running).toBe(false);
    const offAt = t0 + relay.switchDelayUs;
    const n = ticks.get(2)!.length;
    expect(ticks.get(2)!.every((t) => t <= offAt)).toBe(true);
    w.run(1000);
    expect(ticks.get(2)!.length).toBe(n); // no callback of the dead incarnation fires
    expect(get<boolean>(w, (cb) => b1.relays[0]!.read(cb)).v).toBe(false);
    expect(get<boolean>(w, (cb) => b1.powerSense[0]!.read(cb)).v).toBe(false);
    // back on: the target boots again with a new incarnation
    expect(get(w, (cb) => b1.relays[0]!.set(true, cb)).err).toBeNull();
    w.run(1010);
    expect(b2.running).toBe(true);
    const b2boots = boots.filter((b) => b.node === 2);
    expect(b2boots.map((b) => b.inc)).toEqual([1, 2]);
    expect(b2boots[1]!.at).toBe(w.nowUs - 1010_000 + 5_000 + 1_000_000);
    expect(b2.stats.powerLosses).toBe(1);
    expect(get<boolean>(w, (cb) => b1.powerSense[0]!.read(cb)).v).toBe(true);
  });

  it('a stuck relay reports success but read-back reveals the contact did not move', () => {
    const { w, relay } = fencingPair();
    relay.stuck = true;
    const r = w.board(1).hal!.relays[0]!;
    expect(get(w, (cb) => r.set(false, cb)).err).toBeNull();
    w.run(50);
    expect(get<boolean>(w, (cb) => r.read(cb)).v).toBe(true);
    expect(w.board(2).railLive).toBe(true);
  });

  it('a failing relay command reports an error and changes nothing', () => {
    const { w, relay } = fencingPair();
    relay.failCommands = true;
    const r = w.board(1).hal!.relays[0]!;
    expect(String(get(w, (cb) => r.set(false, cb)).err)).toMatch(/command failed/);
    w.run(50);
    expect(w.board(2).railLive).toBe(true);
  });

  it('normally-closed relay: controller power loss releases the coil and the target comes back', () => {
    const { w } = fencingPair();
    const r = w.board(1).hal!.relays[0]!;
    get(w, (cb) => r.set(false, cb));
    w.run(10);
    expect(w.board(2).railLive).toBe(false);
    w.board(1).setMains(false);
    w.run(10);
    expect(w.board(2).railLive).toBe(true);
  });

  it('normally-open relay: the target is unpowered until the controller closes it, and again when the controller dies', () => {
    const w = new World({ seed: 1, board: { bootDelayMs: 100 } });
    w.addBoard(1);
    w.addBoard(2);
    w.wireRelay(1, 2, { normallyClosed: false });
    expect(w.board(2).railLive).toBe(false);
    w.run(200);
    const r = w.board(1).hal!.relays[0]!;
    get(w, (cb) => r.set(true, cb));
    w.run(10);
    expect(w.board(2).railLive).toBe(true);
    // a process crash keeps the GPIO level
    w.board(1).crashProcess();
    w.run(10);
    expect(w.board(2).railLive).toBe(true);
    w.board(1).setMains(false);
    w.run(10);
    expect(w.board(2).railLive).toBe(false);
  });

  it('relay and sense calls from a dead incarnation do nothing and are counted', () => {
    const { w, relay } = fencingPair();
    const old = w.board(1).hal!;
    w.board(1).crashProcess();
    let called = false;
    old.relays[0]!.set(false, () => (called = true));
    old.powerSense[0]!.read(() => (called = true));
    w.run(2000);
    expect(called).toBe(false);
    expect(relay.coil).toBe(false);
    expect(w.board(1).stats.staleCalls).toBe(2);
  });

  it('bad wiring input gets clear errors', () => {
    const w = new World({ seed: 1 });
    w.addBoard(1);
    expect(() => w.wireRelay(1, 1)).toThrow(/own power/);
    expect(() => w.wireRelay(1, 9)).toThrow(/no board 9/);
    w.addBoard(2);
    expect(() => w.wireRelay(1, 2, { switchDelayMs: -1 })).toThrow(/switchDelayMs/);
    expect(() => w.addBoard(2)).toThrow(/already exists/);
    expect(() => w.addBoard(300)).toThrow(/1\.\.254/);
  });
});

describe('watchdog', () => {
  it('resets the board when not fed in time: process dies, unsynced flash lost, boots again', () => {
    const w = new World({ seed: 2, board: { bootDelayMs: 100, watchdogTimeoutMs: 2000 } });
    let feeding = true;
    w.onBoot((hal) => {
      const feed = () => {
        if (!feeding) return;
        hal.watchdog.feed();
        hal.clock.setTimer(500, feed);
      };
      feed();
    });
    const b = w.addBoard(1, { clock: { driftPpm: 0 } });
    w.run(5000);
    expect(b.stats.watchdogResets).toBe(0);
    b.hal!.storage.write('unsynced', new Uint8Array([1]));
    feeding = false; // last feed happened at ≤ 5000 ms
    const lastFeed = 100 + 500 * 9; // 4600 ms
    w.run(lastFeed + 2000 - 5000 - 1);
    expect(b.stats.watchdogResets).toBe(0);
    w.run(2);
    expect(b.stats.watchdogResets).toBe(1);
    expect(b.running).toBe(false);
    expect(b.railLive).toBe(true);
    w.run(200);
    expect(b.running).toBe(true);
    expect(b.incarnation).toBe(2);
    expect(b.hal!.storage.read('unsynced')).toBeUndefined();
  });

  it('disarm stops it; an armed watchdog survives a process crash and resets a board whose restart hangs', () => {
    const w = new World({ seed: 2, board: { bootDelayMs: 100, watchdogTimeoutMs: 1000 } });
    let disarm = true;
    w.onBoot((hal) => {
      if (hal.incarnation > 1) return;
      hal.watchdog.feed();
      if (disarm) hal.watchdog.disarm();
    });
    const b = w.addBoard(1);
    w.run(3000);
    expect(b.stats.watchdogResets).toBe(0);
    disarm = false;
    b.crashProcess(10);
    w.run(3000); // the restarted process (inc 2) does not feed
    expect(b.stats.watchdogResets).toBe(0); // inc 1 disarmed it cleanly, inc 2 never armed it
    const w2 = new World({ seed: 2, board: { bootDelayMs: 100, watchdogTimeoutMs: 1000 } });
    w2.onBoot((hal) => {
      if (hal.incarnation === 1) hal.watchdog.feed();
    });
    const b2 = w2.addBoard(1);
    w2.run(500);
    b2.crashProcess(5000); // restart takes longer than the watchdog timeout
    w2.run(1000);
    expect(b2.stats.watchdogResets).toBe(1);
  });
});
