/**
 * The real backend (serialport) against the emulated board on the other end of a
 * socat pty pair. Without socat: skipped locally with a message, a failure with CI set.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { spawnTied } from '../../helpers/tied.ts';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSerialRelayBoard, type SerialRelayBoard } from '../../../hal/relay-board/serial.ts';
import { GarbledReplyError } from '../../../hal/relay-board/protocol.ts';
import { attachRelayBoardEmulation, type RelayBoardEmulation } from '../../../firmware-sim/relay-board.ts';

const SOCAT = process.env.SOCAT ?? '/usr/bin/socat';
const haveSocat = spawnSync(SOCAT, ['-V'], { stdio: 'ignore', timeout: 5000 }).status === 0;
if (!haveSocat) {
  const why = `socat not found at ${SOCAT}: install it (apt-get install socat) to run the serial relay board pty tests`;
  if (process.env.CI) throw new Error(`CI is set and ${why}`);
  console.warn(`SKIP: ${why}`);
}

async function poll(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

const call = <T>(f: (cb: (e: Error | null, v?: T) => void) => void) =>
  new Promise<{ err: Error | null; value: T | undefined }>((resolve) => f((err, value) => resolve({ err, value })));

describe.skipIf(!haveSocat)('serial relay board over a socat pty pair', () => {
  let dir: string;
  let socat: ChildProcess;
  let board: SerialRelayBoard;
  let emu: RelayBoardEmulation;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quorumd-relayboard-'));
    const a = join(dir, 'host');
    const b = join(dir, 'board');
    socat = spawnTied(SOCAT, ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    await poll(() => existsSync(a) && existsSync(b), 5000, `socat ptys ${a} ${b}`);
    emu = await attachRelayBoardEmulation(b, { channels: 4 });
    board = await openSerialRelayBoard({ path: a, channels: 4, timeoutMs: 400, switchMs: 20 });
  });

  afterAll(async () => {
    await new Promise<void>((r) => (board ? board.close(() => r()) : r()));
    await emu?.close();
    if (socat && socat.exitCode === null && socat.signalCode === null) {
      const exited = new Promise<void>((r) => socat.once('exit', () => r()));
      socat.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('off, then on, confirmed by the board, with the right bytes on the wire', async () => {
    const r = board.client.relay(3); // NC wiring: off = coil energized
    expect((await call<void>((cb) => r.set(false, cb))).err).toBeNull();
    expect(emu.firmware.states).toEqual([false, false, true, false]);
    expect(emu.firmware.stats.frames).toBe(1);
    expect((await call<boolean>((cb) => r.read(cb))).value).toBe(false);
    expect((await call<void>((cb) => r.set(true, cb))).err).toBeNull();
    expect(emu.firmware.states).toEqual([false, false, false, false]);
    expect((await call<boolean>((cb) => r.read(cb))).value).toBe(true);
  });

  it('status query reads every channel', async () => {
    await call<void>((cb) => board.client.switchChannel(1, true, cb));
    await call<void>((cb) => board.client.switchChannel(4, true, cb));
    const s = await call<boolean[]>((cb) => board.client.status(cb));
    expect(s.err).toBeNull();
    expect(s.value).toEqual([true, false, false, true]);
  });

  it('a board that does not answer: timeout → failure', async () => {
    emu.firmware.mute = true;
    const t0 = performance.now();
    const res = await call<void>((cb) => board.client.relay(2).set(false, cb));
    emu.firmware.mute = false;
    expect(res.err?.message).toMatch(/no answer to switching channel 2 on \(confirming status query\) within 400 ms/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
    expect(emu.firmware.states[1]).toBe(false); // the hung MCU did not act
  });

  it('a garbled reply: clear error', async () => {
    emu.firmware.garble = true;
    const res = await call<boolean>((cb) => board.client.relay(1).read(cb));
    emu.firmware.garble = false;
    expect(res.err).toBeInstanceOf(GarbledReplyError);
    expect(res.err?.message).toMatch(/relay board relayboard:.*host: garbled status reply \(non-text byte 0xc3\); got c3 c8/);
    // and the board works again afterwards
    const ok = await call<boolean[]>((cb) => board.client.status(cb));
    expect(ok.err).toBeNull();
  });

  it('opening a missing device fails with the path in the message', async () => {
    await expect(openSerialRelayBoard({ path: join(dir, 'nope'), channels: 1 })).rejects.toThrow(/relay board .*nope: cannot open/);
  });
});
