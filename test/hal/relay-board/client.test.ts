/**
 * The relay board protocol and client against the firmware model, in virtual time
 * (a tiny fake clock and an in-memory line): fast and deterministic. The same client
 * over real serialport and a pty is in serial-pty.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { RelayBoardClient, type ByteTransport } from '../../../hal/relay-board/client.ts';
import { encodeStatus, encodeSwitch, GarbledReplyError, StatusParser } from '../../../hal/relay-board/protocol.ts';
import { RelayBoardFirmware } from '../../../firmware-sim/relay-board.ts';

class FakeClock {
  now = 0;
  private timers: Array<{ at: number; fn: () => void; dead: boolean }> = [];
  setTimer(ms: number, fn: () => void) {
    const t = { at: this.now + ms, fn, dead: false };
    this.timers.push(t);
    return () => void (t.dead = true);
  }
  /** Runs timers in order up to `until`. Bounded. */
  run(until: number): void {
    for (let i = 0; i < 10_000; i++) {
      const live = this.timers.filter((t) => !t.dead && t.at <= until).sort((a, b) => a.at - b.at);
      const t = live[0];
      if (t === undefined) break;
      t.dead = true;
      this.now = t.at;
      t.fn();
    }
    this.now = until;
  }
}

function rig(channels = 4, opts: { latencyMs?: number } = {}) {
  const clock = new FakeClock();
  const fw = new RelayBoardFirmware({ channels });
  const handlers: Array<(b: Uint8Array) => void> = [];
  const written: number[][] = [];
  let inject: Uint8Array | null = null;
  const transport: ByteTransport = {
    write(bytes, done) {
      written.push([...bytes]);
      const reply = fw.receive(bytes);
      clock.setTimer(0, () => done(null));
      const out = inject ?? reply;
      if (out.length > 0) clock.setTimer(opts.latencyMs ?? 20, () => handlers.forEach((h) => h(out)));
      inject = null;
    },
    onData: (fn) => void handlers.push(fn),
  };
  const client = new RelayBoardClient(transport, clock, { name: 'lcus', channels, timeoutMs: 500 });
  return { clock, fw, client, written, injectNext: (b: Uint8Array) => (inject = b) };
}

describe('relay board protocol', () => {
  it('encodes switch commands as the vendor examples', () => {
    expect([...encodeSwitch(1, true)]).toEqual([0xa0, 0x01, 0x01, 0xa2]);
    expect([...encodeSwitch(1, false)]).toEqual([0xa0, 0x01, 0x00, 0xa1]);
    expect([...encodeSwitch(2, true)]).toEqual([0xa0, 0x02, 0x01, 0xa3]);
    expect(() => encodeSwitch(9, true)).toThrow(/channel 1..8, got 9/);
  });

  it('parses ASCII and binary status replies, also split into chunks', () => {
    const bytes = encodeStatus([false, true, false], 'ascii');
    expect(new TextDecoder().decode(bytes)).toBe('CH1:OFF \r\nCH2:ON  \r\nCH3:OFF \r\n');
    const p = new StatusParser('b', 3, 'ascii');
    let res: boolean[] | undefined;
    for (const b of bytes) res = p.push(Uint8Array.of(b)) ?? res;
    expect(res).toEqual([false, true, false]);
    const q = new StatusParser('b', 2, 'binary');
    expect(q.push(Uint8Array.of(1))).toBeUndefined();
    expect(q.push(Uint8Array.of(0))).toEqual([true, false]);
  });

  it('rejects garbled replies early with the bytes in the message', () => {
    expect(() => new StatusParser('lcus', 2, 'ascii').push(Uint8Array.of(0xc3, 0xc8))).toThrow(GarbledReplyError);
    expect(() => new StatusParser('lcus', 2, 'ascii').push(new TextEncoder().encode('CH1:MAYBE\r\n'))).toThrow(/relay board lcus: garbled status reply \(unexpected text "CH1:M|line 1/);
    expect(() => new StatusParser('lcus', 2, 'ascii').push(new TextEncoder().encode('CH2:ON\r\n'))).toThrow(/line 1 names channel 2/);
    expect(() => new StatusParser('lcus', 2, 'binary').push(Uint8Array.of(7))).toThrow(/byte 0x07 is neither 00 nor 01\); got 07/);
    expect(() => new StatusParser('lcus', 1, 'ascii').push(new TextEncoder().encode('CH1:ON       \r\nCH2'))).toThrow(/longer than|more than/);
  });
});

describe('RelayBoardClient over the firmware model', () => {
  it('switches a channel, confirmed by a status query; relay semantics follow the wiring', () => {
    const { clock, fw, client, written } = rig();
    const nc = client.relay(2); // normally closed: off = coil energized
    const no = client.relay(3, { wiring: 'no' });
    const results: unknown[] = [];
    nc.set(false, (e) => results.push(['nc off', e]));
    no.set(true, (e) => results.push(['no on', e]));
    nc.read((e, v) => results.push(['nc read', e, v]));
    clock.run(5000);
    expect(results).toEqual([
      ['nc off', null],
      ['no on', null],
      ['nc read', null, false],
    ]);
    expect(fw.states).toEqual([false, true, true, false]);
    expect(written.slice(0, 2)).toEqual([[0xa0, 2, 1, 0xa3], [0xff]]);
  });

  it('a board that does not answer: timeout failure, then it recovers for the next operation', () => {
    const { clock, fw, client } = rig();
    fw.mute = true;
    const errs: Array<Error | null> = [];
    client.relay(1).set(false, (e) => errs.push(e));
    clock.run(2000);
    expect(errs[0]?.message).toMatch(/relay board lcus: no answer to switching channel 1 on \(confirming status query\) within 500 ms/);
    expect(client.stats.timeouts).toBe(1);
    fw.mute = false;
    client.relay(1).read((e, v) => errs.push(e ?? (v === true ? null : new Error('wrong'))));
    clock.run(4000);
    expect(errs[1]).toBeNull();
  });

  it('garbled reply: clear error naming the bytes', () => {
    const { clock, client, injectNext } = rig(2);
    const errs: Array<Error | null> = [];
    injectNext(Uint8Array.of(0x43, 0x48, 0x31, 0x3a, 0x4f, 0x00, 0x7f)); // "CH1:O" then noise
    client.status((e) => errs.push(e));
    clock.run(1000);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toBeInstanceOf(GarbledReplyError);
    expect(errs[0]!.message).toMatch(/garbled status reply \(non-text byte 0x00\); got 43 48 31 3a 4f 00 7f/);
  });

  it('a switch the board did not carry out is an error', () => {
    const errs: Array<Error | null> = [];
    const r2 = rig(1);
    r2.fw.onSwitch = () => {
      r2.fw.states[0] = false; // relay refuses to latch
    };
    r2.client.relay(1).set(false, (e) => errs.push(e));
    r2.clock.run(2000);
    expect(errs[0]?.message).toMatch(/channel 1 reads off after the command to switch it on/);
  });

  it('bad arguments are named', () => {
    const { client } = rig(2);
    expect(() => client.relay(3)).toThrow(/relay board lcus channel: expected a channel 1..2, got 3/);
    expect(() => client.relay(1, { wiring: 'x' as never })).toThrow(/wiring: expected 'nc' or 'no'/);
    expect(() => client.relay(1).set('on' as never, () => {})).toThrow(/'on' must be a boolean/);
    expect(() => new RelayBoardClient({ write() {}, onData() {} }, new FakeClock(), { name: 'x', channels: 9 })).toThrow(/channels: expected a channel count 1..8/);
  });
});
