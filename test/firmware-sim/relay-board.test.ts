/**
 * The relay board emulation: the pure firmware model byte by byte, and the board
 * wired into a simulated world, driven by the pure Fencer through the controller's HAL.
 */
import { describe, expect, it } from 'vitest';
import type { BoardHal } from '../../firmware-sim/board.ts';
import { RelayBoardFirmware, wireRelayBoard } from '../../firmware-sim/relay-board.ts';
import { World } from '../../firmware-sim/world.ts';
import { Fencer, type FencerConfig, type FenceRecord } from '../../src/fence/fencer.ts';
import { Rng } from '../../src/rng.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('RelayBoardFirmware', () => {
  it('switches on valid frames, answers FF with the status, ignores bad checksums and stray bytes', () => {
    const fw = new RelayBoardFirmware({ channels: 2 });
    const seen: string[] = [];
    fw.onSwitch = (ch, on) => seen.push(`${ch}:${on}`);
    expect(fw.receive(Uint8Array.of(0xa0, 0x02, 0x01, 0xa3)).length).toBe(0); // no reply to a switch
    expect(fw.receive(Uint8Array.of(0x55, 0xa0, 0x01, 0x01, 0xa9))).toHaveLength(0); // bad checksum
    expect(fw.receive(Uint8Array.of(0xa0, 0x03, 0x01, 0xa4))).toHaveLength(0); // no channel 3
    expect(text(fw.receive(Uint8Array.of(0xff)))).toBe('CH1:OFF \r\nCH2:ON  \r\n');
    expect(seen).toEqual(['2:true']);
    expect(fw.stats).toMatchObject({ frames: 1, badFrames: 2, queries: 1, strayBytes: 1 });
    // a frame split across reads
    fw.receive(Uint8Array.of(0xa0, 0x01));
    fw.receive(Uint8Array.of(0x01, 0xa2));
    expect(fw.states).toEqual([true, true]);
    fw.reset();
    expect(fw.states).toEqual([false, false]);
    expect(seen).toEqual(['2:true', '1:true', '1:false', '2:false']);
  });

  it('binary status format, mute and garble faults', () => {
    const fw = new RelayBoardFirmware({ channels: 3, statusFormat: 'binary' });
    fw.receive(Uint8Array.of(0xa0, 0x03, 0x01, 0xa4));
    expect([...fw.receive(Uint8Array.of(0xff))]).toEqual([0, 0, 1]);
    fw.garble = true;
    expect([...fw.receive(Uint8Array.of(0xff))]).toEqual([0x80, 0x80, 0x81]);
    fw.mute = true;
    expect(fw.receive(Uint8Array.of(0xa0, 0x01, 0x01, 0xa2, 0xff))).toHaveLength(0);
    expect(fw.states).toEqual([false, false, true]);
    expect(() => new RelayBoardFirmware({ channels: 0 })).toThrow(/channels: expected a channel count 1..8/);
  });
});

/** World: board 1 controls a 2-channel relay board (ch1 → board 2, ch2 → board 3), a GPIO relay to 2, and senses 2 and 3. */
function world(opts: { miswired?: boolean } = {}) {
  const w = new World({ seed: 11, board: { bootDelayMs: 1000 } });
  const hals = new Map<number, BoardHal>();
  w.onBoot((hal) => void hals.set(hal.node, hal));
  for (const id of [1, 2, 3]) w.addBoard(id);
  w.wireRelay(1, 2);
  const rb = wireRelayBoard(w, 1, opts.miswired ? [3, 2] : [2, 3]);
  w.powerSense(1, 2);
  w.powerSense(1, 3);
  w.run(1100);
  return { w, rb, hals };
}

function get<T>(w: World, f: (cb: (err: Error | null, v?: T) => void) => void, maxMs = 5000) {
  let out: { err: Error | null; v: T | undefined } | undefined;
  f((err, v) => (out = { err, v }));
  w.runUntil(() => out !== undefined, maxMs);
  if (out === undefined) throw new Error('callback not called within the bound');
  return out;
}

/** Executes a Fencer on board 1's HAL in virtual time until `pred` or `maxMs`. */
function runFencer(w: World, hal: BoardHal, f: Fencer, pred: () => boolean, maxMs: number) {
  const relays = new Map(hal.relays.map((r) => [r.name, r]));
  const senses = new Map(hal.powerSense.map((s) => [s.name, s]));
  const records: FenceRecord[] = [];
  const pump = () => {
    const now = hal.clock.monotonicMs();
    f.tick(now);
    const out = f.take();
    records.push(...out.records);
    for (const c of out.commands) {
      const answer = (err: Error | null, v?: boolean) => {
        f.result(c.id, hal.clock.monotonicMs(), err ? { ok: false, error: err.message } : { ok: true, value: v });
        pump();
      };
      if (c.op === 'relay-set') relays.get(c.device)!.set(c.on, answer);
      else if (c.op === 'relay-read') relays.get(c.device)!.read(answer);
      else senses.get(c.device)!.read(answer);
    }
    const next = f.nextDeadline();
    if (next !== null) hal.clock.setTimer(Math.max(0, next - hal.clock.monotonicMs()), pump);
  };
  pump();
  w.runUntil(pred, maxMs);
  return records;
}

describe('relay board in the simulated world', () => {
  it('appears in the controller HAL after the GPIO relay and switches the target through the byte protocol', () => {
    const { w, rb, hals } = world();
    const hal = hals.get(1)!;
    expect(hal.relays.map((r) => r.name)).toEqual(['relay:2', 'relayboard:1#1', 'relayboard:1#2']);
    const ch1 = hal.relays[1]!;
    const t0 = w.nowMs;
    expect(get(w, (cb) => ch1.set(false, cb)).err).toBeNull();
    // 4 bytes + 50 ms + 1 byte + 20-byte reply at 9600 baud ≈ 4.2 + 50 + 1 + 21 ms
    expect(w.nowMs - t0).toBeGreaterThan(70);
    expect(w.nowMs - t0).toBeLessThan(90);
    w.run(20);
    expect(w.board(2).railLive).toBe(false);
    expect(w.board(3).railLive).toBe(true);
    expect(rb.firmware.states).toEqual([true, false]);
    expect(get<boolean>(w, (cb) => ch1.read(cb)).v).toBe(false);
    expect(get(w, (cb) => ch1.set(true, cb)).err).toBeNull();
    w.run(1100);
    expect(w.board(2).running).toBe(true);
  });

  it('the controller losing power releases every channel (NC wiring: targets powered again)', () => {
    const { w, rb, hals } = world();
    get(w, (cb) => hals.get(1)!.relays[2]!.set(false, cb));
    w.run(20);
    expect(w.board(3).railLive).toBe(false);
    w.board(1).setMains(false);
    w.run(20);
    expect(rb.firmware.states).toEqual([false, false]);
    expect(w.board(3).railLive).toBe(true);
  });

  it('a hung board: the set fails by timeout, nothing switches', () => {
    const { w, rb, hals } = world();
    rb.firmware.mute = true;
    const r = get(w, (cb) => hals.get(1)!.relays[1]!.set(false, cb));
    expect(r.err?.message).toMatch(/no answer to switching channel 1 on \(confirming status query\) within 1000 ms/);
    expect(w.board(2).railLive).toBe(true);
  });

  const cfg = (levels: FencerConfig['targets'][0]['levels']): FencerConfig => ({
    self: 1,
    randomDelayMaxMs: 0,
    retries: 0,
    targets: [{ target: 2, action: 'reboot', powerOnAfterMs: 5000, levels }],
  });

  it('Fencer through the HAL: serial relay board off, verified by power-sense, rebooted after the delay', () => {
    const { w, hals } = world();
    const hal = hals.get(1)!;
    const f = new Fencer(cfg([[{ kind: 'serial-relay', relay: 'relayboard:1#1', sense: 'sense:2' }]]), new Rng(1));
    const inc = w.board(2).incarnation;
    f.fence(2, hal.clock.monotonicMs(), { reason: 'test' });
    const recs = runFencer(w, hal, f, () => f.current(2)?.poweredOnAtMs != null, 30_000);
    expect(recs[0]!.outcome).toBe('off');
    expect(recs.at(-1)!.poweredOnAtMs).not.toBeNull();
    w.run(1100);
    expect(w.board(2).running).toBe(true);
    expect(w.board(2).incarnation).toBe(inc + 1);
    expect(w.board(2).stats.powerLosses).toBe(1);
  });

  it('Fencer through the HAL: a relay board channel wired to the wrong board is caught by verify; the GPIO level then fences', () => {
    const { w, hals } = world({ miswired: true }); // channel 1 actually feeds board 3
    const hal = hals.get(1)!;
    const f = new Fencer(
      cfg([[{ kind: 'serial-relay', relay: 'relayboard:1#1', sense: 'sense:2' }], [{ kind: 'gpio-relay', relay: 'relay:2', sense: 'sense:2' }]]),
      new Rng(1),
    );
    f.fence(2, hal.clock.monotonicMs(), { reason: 'test' });
    const recs = runFencer(w, hal, f, () => f.current(2)?.outcome !== 'pending', 30_000);
    const rec = recs[0]!;
    expect(rec.attempts[0]!.error).toMatch(/power-sense sense:2 still reads the target powered although the relay reads off/);
    expect(rec.outcome).toBe('off');
    expect(rec.level).toBe(1);
    expect(w.board(2).railLive).toBe(false);
    w.run(100);
    expect(w.board(3).railLive).toBe(true); // the miswired channel was switched back on after the failed verify
    expect(w.board(3).stats.powerLosses).toBe(1); // but board 3 did lose power once: the history tells the operator
  });
});
