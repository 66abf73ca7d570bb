import { describe, expect, it } from 'vitest';
import { Fencer, POWER_ON_RETRY_MS, type FencerConfig, type FenceTargetConfig } from '../../../src/fence/fencer.ts';
import { Rng } from '../../../src/rng.ts';
import { FenceWorld } from './harness.ts';

/** Node 1 fences node 2: level 0 = GPIO relay with power-sense, level 1 = serial relay board, level 2 = watchdog wait. */
function setup(over: Partial<FencerConfig> = {}, target: Partial<FenceTargetConfig> = {}, seed = 1) {
  const cfg: FencerConfig = {
    self: 1,
    randomDelayMaxMs: 0,
    targets: [
      {
        target: 2,
        action: 'off',
        levels: [
          [{ kind: 'gpio-relay', relay: 'gpio:2', sense: 'sense:2' }],
          [{ kind: 'serial-relay', relay: 'lcus:1', sense: 'sense:2' }],
          [{ kind: 'watchdog-wait', waitMs: 20_000 }],
        ],
        ...target,
      },
    ],
    ...over,
  };
  const f = new Fencer(cfg, new Rng(seed));
  const w = new FenceWorld(f);
  w.relays.set('gpio:2', { feeds: 2, on: true });
  w.relays.set('lcus:1', { feeds: 2, on: true });
  w.senses.set('sense:2', 2);
  return { f, w };
}

describe('Fencer: one fence, step by step', () => {
  it('switches the first level off and verifies by read-back and power-sense', () => {
    const { f, w } = setup();
    f.fence(2, 0, { reason: 'test' });
    w.run(60_000);
    expect(w.finished).toHaveLength(1);
    const rec = w.finished[0]!;
    expect(rec.outcome).toBe('off');
    expect(rec.level).toBe(0);
    expect(w.powered(2)).toBe(false);
    expect(w.relays.get('lcus:1')!.on).toBe(true); // level 1 never touched
    expect(w.log.map((l) => l.split(' ').slice(1).join(' '))).toEqual(['sense-read sense:2', 'relay-set gpio:2 off', 'relay-read gpio:2', 'sense-read sense:2']);
    // settle time between the off and the verify
    const tOff = Number(w.log[1]!.split(' ')[0]);
    const tVerify = Number(w.log[2]!.split(' ')[0]);
    expect(tVerify - tOff).toBeGreaterThanOrEqual(500);
  });

  it('"already off" is success and switches nothing', () => {
    const { f, w } = setup();
    w.mains.set(2, false); // the board is dead already
    f.fence(2, 0, { reason: 'dead board' });
    w.run(60_000);
    expect(w.finished[0]!.outcome).toBe('already-off');
    expect(w.log.some((l) => l.includes('relay-set'))).toBe(false);
    expect(w.relays.get('gpio:2')!.on).toBe(true);
  });

  it('"already off" by relay read-back when no power-sense is wired', () => {
    const { f, w } = setup({}, { levels: [[{ kind: 'gpio-relay', relay: 'gpio:2' }]] });
    w.relays.get('gpio:2')!.on = false;
    f.fence(2, 0, { reason: 'x' });
    w.run(60_000);
    expect(w.finished[0]!.outcome).toBe('already-off');
  });

  it('tries levels in order on failure and records each attempt', () => {
    const { f, w } = setup({ retries: 1 });
    w.relays.get('gpio:2')!.failSet = true;
    f.fence(2, 0, { reason: 'x' });
    w.run(60_000);
    const rec = w.finished[0]!;
    expect(rec.outcome).toBe('off');
    expect(rec.level).toBe(1);
    expect(rec.attempts.map((a) => [a.level, a.attempt, a.ok])).toEqual([
      [0, 1, false],
      [0, 2, false],
      [1, 1, true],
    ]);
    expect(rec.attempts[0]!.error).toMatch(/GPIO write error/);
  });

  it('verify catches a relay wired to the wrong board (read-back off, power-sense on) and goes to the next level', () => {
    const { f, w } = setup({ retries: 0 });
    w.relays.get('gpio:2')!.feeds = 3; // the GPIO relay cuts board 3, not 2
    f.fence(2, 0, { reason: 'x' });
    w.run(60_000);
    const rec = w.finished[0]!;
    expect(rec.attempts[0]!.ok).toBe(false);
    expect(rec.attempts[0]!.error).toMatch(/power-sense sense:2 still reads the target powered although the relay reads off/);
    expect(rec.outcome).toBe('off');
    expect(rec.level).toBe(1);
    expect(w.powered(2)).toBe(false);
    // the miswired relay was switched back on: board 3 is not left dark
    expect(rec.attempts[0]!.error).toMatch(/switching gpio:2 back on/);
    expect(w.relays.get('gpio:2')!.on).toBe(true);
    expect(w.powered(3)).toBe(true);
  });

  it('a stuck relay fails the read-back verify', () => {
    const { f, w } = setup({ retries: 0 }, { levels: [[{ kind: 'gpio-relay', relay: 'gpio:2' }]] });
    w.relays.get('gpio:2')!.stuck = true;
    f.fence(2, 0, { reason: 'x' });
    w.run(60_000);
    expect(w.finished[0]!.outcome).toBe('failed');
    expect(w.finished[0]!.attempts[0]!.error).toMatch(/reads back on/);
  });

  it('a device that does not answer is a failure after opTimeoutMs; its late answer is ignored', () => {
    const { f, w } = setup({ retries: 0, opTimeoutMs: 1000 }, { levels: [[{ kind: 'gpio-relay', relay: 'gpio:2' }]] });
    w.relays.get('gpio:2')!.silent = true;
    f.fence(2, 0, { reason: 'x' });
    w.run(60_000);
    const rec = w.finished[0]!;
    expect(rec.outcome).toBe('failed');
    expect(rec.finishedAtMs).toBe(1000);
    expect(rec.attempts[0]!.error).toMatch(/timeout, no answer within 1000 ms/);
    f.result(1, 2000, { ok: true, value: false });
    expect(f.stats.lateResults).toBe(1);
    expect(f.stats.timeouts).toBe(1);
  });

  it('retries with exponential backoff, capped', () => {
    const { f, w } = setup({ retries: 4, backoffMs: 100, backoffMaxMs: 300, opTimeoutMs: 50 }, { levels: [[{ kind: 'gpio-relay', relay: 'gpio:2' }]] });
    w.relays.get('gpio:2')!.silent = true;
    f.fence(2, 0, { reason: 'x' });
    w.run(60_000);
    const starts = w.finished[0]!.attempts.map((a) => a.startedAtMs);
    const gaps = starts.slice(1).map((s, i) => s - starts[i]! - 50);
    expect(gaps).toEqual([100, 200, 300, 300]);
    expect(w.finished[0]!.outcome).toBe('failed');
  });

  it('falls through to watchdog-wait when both relays fail, and it takes waitMs', () => {
    const { f, w } = setup({ retries: 0 });
    w.relays.get('gpio:2')!.failSet = true;
    w.relays.get('lcus:1')!.silent = true;
    f.fence(2, 0, { reason: 'x' });
    w.run(120_000);
    const rec = w.finished[0]!;
    expect(rec.outcome).toBe('off');
    expect(rec.level).toBe(2);
    const last = rec.attempts.at(-1)!;
    expect(last.endedAtMs - last.startedAtMs).toBe(20_000);
  });

  it('reboot: powers the target back on after powerOnAfterMs', () => {
    const { f, w } = setup({}, { action: 'reboot', powerOnAfterMs: 7000 });
    f.fence(2, 0, { reason: 'x' });
    w.run(5000);
    expect(w.powered(2)).toBe(false);
    const done = w.finished[0]!;
    expect(done.outcome).toBe('off');
    w.run(60_000);
    expect(w.powered(2)).toBe(true);
    const last = w.updates.at(-1)!;
    expect(last.poweredOnAtMs).toBe(done.finishedAtMs! + 7000 + w.latencyMs); // confirmed by the relay's answer
    expect(last.powerOnError).toBeNull();
  });

  it('reboot: a power-on that fails is tried again (backoff) until the relay takes it; the board is not left off', () => {
    const { f, w } = setup({}, { action: 'reboot', powerOnAfterMs: 7000 });
    f.fence(2, 0, { reason: 'x' });
    w.run(5000);
    const done = w.finished[0]!;
    expect(done.outcome).toBe('off');
    w.relays.get('gpio:2')!.failSet = true; // e.g. the relay board's server dropped the connection
    const onAt = done.finishedAtMs! + 7000;
    w.run(onAt + 1000 + 2000 + 100); // the first try and two retries fail
    expect(w.powered(2)).toBe(false);
    expect(w.log.filter((l) => l.endsWith('relay-set gpio:2 on'))).toHaveLength(3);
    w.relays.get('gpio:2')!.failSet = false;
    w.run(onAt + 60_000);
    expect(w.powered(2)).toBe(true);
    expect(w.log.filter((l) => l.endsWith('relay-set gpio:2 on'))).toHaveLength(4);
    const last = w.updates.at(-1)!;
    expect(last.powerOnError).toBeNull();
    expect(last.poweredOnAtMs).toBeGreaterThan(onAt + 1000 + 2000 + 4000);
    expect(f.stats.powerOnRetries).toBe(3);
  });

  it('reboot: a relay that never takes the power-on is tried a bounded number of times, then the error is recorded', () => {
    const { f, w } = setup({}, { action: 'reboot', powerOnAfterMs: 7000 });
    f.fence(2, 0, { reason: 'x' });
    w.run(5000);
    w.relays.get('gpio:2')!.failSet = true;
    w.run(10 * 60_000);
    expect(w.powered(2)).toBe(false);
    expect(w.log.filter((l) => l.endsWith('relay-set gpio:2 on'))).toHaveLength(POWER_ON_RETRY_MS.length + 1);
    const last = w.updates.at(-1)!;
    expect(last.poweredOnAtMs).toBeNull();
    expect(last.powerOnError).toMatch(/GPIO write error \(8 tries\)/);
    expect(f.nextDeadline()).toBeNull(); // nothing left to do: the fence ended
  });

  it('reboot: an operator confirm after the relay went off keeps the power-on (the board is not left off)', () => {
    const { f, w } = setup({}, { action: 'reboot', powerOnAfterMs: 7000 });
    f.fence(2, 0, { reason: 'x' });
    w.run(5000);
    expect(w.powered(2)).toBe(false);
    const done = w.finished[0]!;
    f.confirm(2, 5001, 'alice');
    w.run(60_000);
    expect(w.powered(2)).toBe(true);
    expect(w.updates.at(-1)!.poweredOnAtMs).toBe(done.finishedAtMs! + 7000 + w.latencyMs);
    expect(f.history().map((h) => h.outcome)).toEqual(['off', 'confirmed']);
  });

  it('action off leaves the target off', () => {
    const { f, w } = setup({}, { action: 'off' });
    f.fence(2, 0, { reason: 'x' });
    w.run(120_000);
    expect(w.powered(2)).toBe(false);
  });

  it('fixed and priority delays postpone the first command', () => {
    const { f, w } = setup({ priorityDelayMs: 3000 }, { delayMs: 1500 });
    f.fence(2, 0, { reason: 'x', targetRunsWorkload: true });
    w.run(60_000);
    expect(w.finished[0]!.delayMs).toBe(4500);
    expect(w.finished[0]!.startedAtMs).toBe(4500);
    expect(w.log[0]!.startsWith('4500 ')).toBe(true);
  });

  it('is idempotent while running; cancel and operator confirm end it', () => {
    const { f, w } = setup({}, { delayMs: 1000 });
    const a = f.fence(2, 0, { reason: 'x' });
    expect(f.fence(2, 10, { reason: 'y' })).toBe(a);
    expect(f.cancel(2, 20, 'target answered')).toBe(true);
    w.run(60_000);
    expect(w.finished[0]!.outcome).toBe('cancelled');
    expect(w.log).toEqual([]);
    f.fence(2, 60_000, { reason: 'z' });
    const c = f.confirm(2, 60_001, 'alice');
    w.run(120_000);
    const hist = f.history();
    expect(hist.map((h) => h.outcome)).toEqual(['cancelled', 'cancelled', 'confirmed']);
    expect(hist.at(-1)!.id).toBe(c);
    expect(hist.at(-1)!.reason).toMatch(/alice/);
  });

  it('an operator confirm is recorded with the term it was taken at; a bad term is named', () => {
    const { f } = setup({}, {});
    f.confirm(2, 10, 'alice', 7);
    expect(f.history().at(-1)).toMatchObject({ outcome: 'confirmed', term: 7, target: 2 });
    expect(() => f.confirm(2, 20, 'bob', -1)).toThrow(/Fencer\.confirm term: expected an integer >= 0, got -1/);
    expect(() => f.confirm(2, 20, 'bob', 1.5)).toThrow(/Fencer\.confirm term: expected an integer >= 0, got 1\.5/);
  });

  it('rejects bad configuration and input with errors that name them', () => {
    expect(() => new Fencer({ self: 1, targets: [{ target: 1, levels: [[{ kind: 'gpio-relay', relay: 'r' }]] }] }, new Rng(1))).toThrow(/targets\[0\]\.target: a node cannot fence itself/);
    expect(() => new Fencer({ self: 1, targets: [{ target: 2, levels: [] }] }, new Rng(1))).toThrow(/targets\[0\]\.levels: expected a non-empty array/);
    expect(() => new Fencer({ self: 1, targets: [{ target: 2, levels: [[{ kind: 'ipmi' } as never]] }] }, new Rng(1))).toThrow(/levels\[0\]\[0\]\.kind: expected 'gpio-relay'/);
    expect(() => new Fencer({ self: 1, targets: [{ target: 2, levels: [[{ kind: 'watchdog-wait' } as never]] }] }, new Rng(1))).toThrow(/waitMs/);
    expect(() => new Fencer({ self: 1, targets: [], opTimeoutMs: -1 }, new Rng(1))).toThrow(/opTimeoutMs/);
    expect(() => new Fencer(null as never, new Rng(1))).toThrow(/fencer config: expected an object/);
    const { f } = setup();
    expect(() => f.fence(3, 0, { reason: 'x' })).toThrow(/no fence devices configured for node 3/);
    expect(() => f.fence(2, Number.NaN, { reason: 'x' })).toThrow(/nowMs/);
    f.tick(100);
    expect(() => f.tick(50)).toThrow(/time went backwards/);
    expect(() => f.result(999, 100, { ok: true })).not.toThrow();
    expect(f.stats.unknownResults).toBe(1);
    expect(() => f.result(1, 100, 'yes' as never)).toThrow(/Fencer.result: expected/);
  });
});

describe('Fencer: two boards that lose each other', () => {
  /**
   * Both boards decide to fence the other within `skewMs`. A fence takes effect when
   * its relay command lands; a board that lost power does nothing more. Returns
   * whether both ended up off.
   */
  function race(seed: number, cfgFor: (self: number, other: number) => Partial<FencerConfig> & { target?: Partial<FenceTargetConfig> }, workloadOn: number | null) {
    const rng = new Rng(seed);
    const skew = rng.int(0, 50);
    const relayOn = new Map([
      [1, true],
      [2, true],
    ]);
    const fencers = new Map<number, Fencer>();
    for (const self of [1, 2]) {
      const other = 3 - self;
      const { target, ...over } = cfgFor(self, other);
      fencers.set(self, new Fencer({ self, opTimeoutMs: 1000, targets: [{ target: other, action: 'off', levels: [[{ kind: 'gpio-relay', relay: `r${other}` }]], ...target }], ...over }, rng.fork(`n${self}`)));
    }
    const start = new Map([
      [1, 0],
      [2, skew],
    ]);
    const started = new Set<number>();
    const pending: Array<{ at: number; node: number; id: number; value?: boolean }> = [];
    const relayMs = 15; // command latency + contact switching
    for (let now = 0; now <= 30_000; now += 5) {
      for (const self of [1, 2]) {
        if (!relayOn.get(self)) continue; // a dead board does nothing
        const f = fencers.get(self)!;
        if (!started.has(self) && now >= start.get(self)!) {
          started.add(self);
          f.fence(3 - self, now, { reason: 'peer lost', targetRunsWorkload: workloadOn === 3 - self });
        }
        for (const p of pending.filter((x) => x.node === self && x.at <= now)) f.result(p.id, now, { ok: true, value: p.value });
        f.tick(now);
        for (const c of f.take().commands) {
          const target = Number(c.device.slice(1));
          if (c.op === 'relay-set') {
            pending.push({ at: now + relayMs, node: self, id: c.id });
            // the contact moves at now + relayMs, if the commanding board is still alive then
            pending.push({ at: now + relayMs, node: -target, id: c.on ? 1 : 0 });
          } else pending.push({ at: now + relayMs, node: self, id: c.id, value: relayOn.get(target) });
        }
      }
      for (const p of pending.filter((x) => x.node < 0 && x.at <= now)) relayOn.set(-p.node, p.id === 1);
      for (let i = pending.length - 1; i >= 0; i--) if (pending[i]!.at <= now) pending.splice(i, 1);
    }
    return !relayOn.get(1) && !relayOn.get(2);
  }

  it('without delays, boards fence each other at once (the hazard is real)', () => {
    let both = 0;
    for (let seed = 1; seed <= 50; seed++) if (race(seed, () => ({ randomDelayMaxMs: 0, priorityDelayMs: 0 }), null)) both++;
    expect(both).toBeGreaterThan(5); // skew 0..50 ms vs a ~15 ms window
  });

  it('with a fixed per-target delay, never both off over 300 seeds', () => {
    let both = 0;
    for (let seed = 1; seed <= 300; seed++) if (race(seed, (self, other) => ({ randomDelayMaxMs: 2000, priorityDelayMs: 0, target: { delayMs: other === 1 ? 5000 : 0 } }), null)) both++;
    expect(both).toBe(0);
  });

  it('with the priority delay, the board running the workload survives, over 300 seeds', () => {
    let both = 0;
    for (let seed = 1; seed <= 300; seed++) if (race(seed, () => ({ randomDelayMaxMs: 2000, priorityDelayMs: 5000 }), 1)) both++;
    expect(both).toBe(0);
  });

  it('random delay alone makes a double fence rare (measured, not zero by construction)', () => {
    let both = 0;
    for (let seed = 1; seed <= 300; seed++) if (race(seed, () => ({ randomDelayMaxMs: 5000, priorityDelayMs: 0 }), null)) both++;
    expect(both).toBeLessThan(15); // 2·15 ms window in 5 s: ~1 %
  });
});
