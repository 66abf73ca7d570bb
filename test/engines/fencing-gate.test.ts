/**
 * STONITH for the external engines without servers (daemon/engines/fencing.ts): who a
 * new leader must show stopped after the leader history it replaces, and the gate that
 * keeps it inactive until then — on a fake clock with in-memory relays, so that the
 * order "relay off, verified off, then active" is checked exactly, and a failed fence
 * falls back to the watchdog bound, not to acting at once.
 */
import { describe, expect, it } from 'vitest';
import { decodeLeaderHistory, encodeLeaderHistory, ExternalFencing, suspectsAfter } from '../../daemon/engines/fencing.ts';
import { LeadershipGate } from '../../daemon/engines/leadership.ts';
import { LeaseWindow } from '../../daemon/engines/safety.ts';
import { Rng } from '../../src/rng.ts';
import type { Cancel, Clock, Done, DoneWith, Relay } from '../../hal/interfaces.ts';

class FakeClock implements Clock {
  now = 1000;
  private timers: Array<{ at: number; fn: () => void; dead: boolean }> = [];
  monotonicMs(): number {
    return this.now;
  }
  wallMs(): number {
    return this.now;
  }
  setTimer(ms: number, fn: () => void): Cancel {
    const t = { at: this.now + ms, fn, dead: false };
    this.timers.push(t);
    return () => void (t.dead = true);
  }
  /** Runs timers in order up to `until` (bounded). */
  run(until: number): void {
    for (let i = 0; i < 10_000; i++) {
      const t = this.timers.filter((x) => !x.dead && x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (t === undefined) break;
      t.dead = true;
      this.now = t.at;
      t.fn();
    }
    this.now = until;
  }
}

/** A relay whose state is a boolean; every switch is logged with the clock's time. */
class MemRelay implements Relay {
  on = true;
  broken = false;
  constructor(
    readonly name: string,
    private readonly clock: FakeClock,
    private readonly events: string[],
  ) {}
  set(on: boolean, done: Done): void {
    if (this.broken) return done(new Error('relay driver gone'));
    this.on = on;
    this.events.push(`${this.clock.now} ${this.name} ${on ? 'on' : 'off'}`);
    done(null);
  }
  read(done: DoneWith<boolean>): void {
    if (this.broken) return done(new Error('relay driver gone'));
    done(null, this.on);
  }
}

const flush = () => new Promise((r) => setImmediate(r));

function rig(o: { targets?: number[]; broken?: boolean } = {}) {
  const clock = new FakeClock();
  const events: string[] = [];
  const relays = (o.targets ?? [2, 3]).map((t) => new MemRelay(`relay:n${t}`, clock, events));
  for (const r of relays) r.broken = o.broken ?? false;
  const f = new ExternalFencing({
    self: 1,
    members: new Set([1, 2, 3]),
    devices: {
      relays,
      fencer: { targets: (o.targets ?? [2, 3]).map((t) => ({ target: t, levels: [[{ kind: 'gpio-relay' as const, relay: `relay:n${t}` }]], action: 'reboot' as const, powerOnAfterMs: 3000 })), settleMs: 100, retries: 0 },
    },
    watchdogTimeoutMs: 15_000,
    marginMs: 500,
    clock,
    rng: new Rng(7),
    log: () => undefined,
  });
  const window = new LeaseWindow({ driftRate: 0.001, marginMs: 100, serverLagMs: 0 });
  const gate = new LeadershipGate(window, () => clock.now, (t) => f.clear(t));
  f.onChange = () => gate.recheck('earlier-leaders-stopped');
  f.activeNow = () => gate.active;
  gate.onActivation((ev) => events.push(`${clock.now} ${ev.active ? 'ACTIVE' : 'inactive'} ${ev.token}`));
  // A lease answered just now, long enough for every scenario (the window is not what is tested here).
  window.answered(clock.now, 3_600_000);
  return { clock, events, relays, f, gate };
}

describe('leader history and suspects', () => {
  const members = new Set([1, 2, 3]);
  it('fences the previous leader unless it resigned cleanly, carries its uncleared suspects, never itself', () => {
    expect(suspectsAfter(undefined, 1, members)).toEqual([]);
    expect(suspectsAfter({ node: 'b', id: 2, clean: false, suspects: [] }, 1, members)).toEqual([2]);
    expect(suspectsAfter({ node: 'b', id: 2, clean: true, suspects: [] }, 1, members)).toEqual([]);
    expect(suspectsAfter({ node: 'b', id: 2, clean: true, suspects: [3] }, 1, members)).toEqual([3]);
    expect(suspectsAfter({ node: 'b', id: 2, clean: false, suspects: [3, 1] }, 1, members).sort()).toEqual([2, 3]);
    expect(suspectsAfter({ node: 'a', id: 1, clean: false, suspects: [] }, 1, members)).toEqual([]);
    // Nobody can be named: the watchdog bound only.
    expect(suspectsAfter({ node: 'x', id: 9, clean: false, suspects: [0] }, 1, members)).toEqual(['unknown']);
    expect(suspectsAfter('leader history: not JSON', 1, members)).toEqual(['unknown']);
  });

  it('round-trips the record and names what is wrong with a bad one', () => {
    const r = { node: 'pi-b', id: 2, clean: false, suspects: [3] };
    expect(decodeLeaderHistory(encodeLeaderHistory(r))).toEqual(r);
    expect(decodeLeaderHistory('')).toBeUndefined();
    expect(decodeLeaderHistory('{')).toMatch(/not JSON/);
    expect(decodeLeaderHistory('{"node":"b","id":2,"clean":"yes","suspects":[]}')).toMatch(/expected \{node, id, clean, suspects/);
    expect(decodeLeaderHistory('{"node":"b","id":300,"clean":false,"suspects":[]}')).toMatch(/expected/);
  });
});

describe('ExternalFencing with the LeadershipGate', () => {
  it('no suspects: active as soon as elected, no relay touched', () => {
    const { events, f, gate, relays } = rig();
    f.elected(50, []);
    gate.elected(50);
    expect(gate.active).toBe(true);
    expect(relays.every((r) => r.on)).toBe(true);
    expect(events).toEqual(['1000 ACTIVE 50']);
    f.stop();
    gate.stop();
  });

  it('an unclean previous leader: its relay off, verified off, then active — no random delay; powered on after powerOnAfterMs', async () => {
    const { clock, events, f, gate, relays } = rig();
    f.elected(60, [2]);
    gate.elected(60);
    expect(gate.active).toBe(false);
    expect(f.status().waitingFor).toMatch(/previous leader n2: fencing it/);
    // The fence starts at once (no delay): relay off at t=1000; verification after settleMs (100).
    expect(events).toEqual(['1000 relay:n2 off']);
    clock.run(1099);
    await flush();
    expect(gate.active).toBe(false);
    clock.run(1100);
    await flush();
    expect(gate.active).toBe(true);
    expect(events).toEqual(['1000 relay:n2 off', '1100 ACTIVE 60']);
    expect(f.status().suspects).toEqual([{ node: 2, clearedBy: 'fenced' }]);
    expect(f.status().fences.map((r) => r.outcome)).toEqual(['off']);
    // The 'reboot' action: n2 gets its power back 3000 ms after it was verified off.
    clock.run(4200);
    await flush();
    expect(relays[0]!.on).toBe(true);
    expect(events.at(-1)).toBe('4100 relay:n2 on');
    f.stop();
    gate.stop();
  });

  it('every fence level fails: not active until the watchdog bound (15 s + margin), then lease-expired', async () => {
    const { clock, events, f, gate } = rig({ broken: true });
    f.elected(70, [2]);
    gate.elected(70);
    clock.run(5000);
    await flush();
    expect(gate.active).toBe(false);
    expect(f.status().waitingFor).toMatch(/fence failed/);
    clock.run(1000 + 15_000 + 499);
    await flush();
    expect(gate.active).toBe(false);
    clock.run(1000 + 15_000 + 500);
    await flush();
    expect(gate.active).toBe(true);
    expect(f.status().suspects).toEqual([{ node: 2, clearedBy: 'lease-expired' }]);
    expect(events.filter((e) => e.includes('ACTIVE'))).toEqual(['16500 ACTIVE 70']);
    f.stop();
    gate.stop();
  });

  it('a suspect without a fence device here waits for the bound; an operator confirmation clears it at once', async () => {
    const { clock, f, gate } = rig({ targets: [3] });
    f.elected(80, [2]);
    gate.elected(80);
    expect(f.status().waitingFor).toMatch(/STONITH disabled|watchdog bound/);
    clock.run(2000);
    await flush();
    expect(gate.active).toBe(false);
    // What the confirmation did (no evidence without an engine behind it: left out).
    expect(f.confirmFenced(2)).toEqual({ ok: true, superseded: false, active: true, waitingFor: '' });
    expect(gate.active).toBe(true);
    expect(f.status().suspects).toEqual([{ node: 2, clearedBy: 'operator' }]);
    f.stop();
    gate.stop();
  });

  it('two suspects (the previous leader died while fencing its own predecessor): both fenced before acting', async () => {
    const { clock, events, f, gate } = rig();
    f.elected(90, [2, 3]);
    gate.elected(90);
    clock.run(1100);
    await flush();
    expect(gate.active).toBe(true);
    expect(events.slice(0, 2).sort()).toEqual(['1000 relay:n2 off', '1000 relay:n3 off']);
    expect(events[2]).toBe('1100 ACTIVE 90');
    expect(f.pending()).toEqual([]);
    f.stop();
    gate.stop();
  });

  it('deposed while fencing: a new leadership starts from its own suspects; pending() lists the uncleared ones', async () => {
    const { f, gate } = rig({ broken: true });
    f.elected(100, [2]);
    gate.elected(100);
    expect(f.pending()).toEqual([2]);
    gate.deposed('lease-lost');
    f.deposed();
    expect(f.clear(100)).toBe(false);
    f.elected(110, []);
    gate.elected(110);
    expect(gate.active).toBe(true);
    f.stop();
    gate.stop();
  });

  it('the watchdog is fed every timeoutMs / 4 while the process runs (a hung one stops feeding it) and disarmed on stop', () => {
    const clock = new FakeClock();
    const feeds: number[] = [];
    let disarmed = 0;
    const f = new ExternalFencing({
      self: 1,
      members: new Set([1, 2]),
      devices: {},
      watchdogTimeoutMs: 8000,
      marginMs: 0,
      watchdog: { timeoutMs: 8000, feed: () => feeds.push(clock.now), disarm: () => void disarmed++ },
      clock,
      rng: new Rng(1),
      log: () => undefined,
    });
    clock.run(1000 + 8000);
    expect(feeds).toEqual([1000, 3000, 5000, 7000, 9000]);
    f.stop();
    f.stop();
    clock.run(20_000);
    expect(feeds).toHaveLength(5);
    expect(disarmed).toBe(1);
  });
});
