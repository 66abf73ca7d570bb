/**
 * The serial Link through real `serialport` on pty pairs made by socat. Every wait is
 * a bounded poll (waitFor); nothing sleeps for a fixed time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SerialPort } from 'serialport';
import { SerialLink, type SerialLinkOptions } from '../../../hal/serial/link.ts';
import type { LinkEvent } from '../../../hal/interfaces.ts';
import { slipEncode } from '../../../src/wire/slip.ts';
import { Rng } from '../../../src/rng.ts';
import { ptyPair, socatCheck, waitFor, type PtyPair } from './socat.ts';

const socat = socatCheck();

interface Probe {
  link: SerialLink;
  frames: Uint8Array[];
  events: LinkEvent[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function probe(opts: SerialLinkOptions): Probe {
  const link = new SerialLink({ reopen: { initialMs: 20, maxMs: 200 }, ...opts });
  const p: Probe = { link, frames: [], events: [] };
  link.onFrame((f) => p.frames.push(f));
  link.onEvent((e) => p.events.push(e));
  cleanups.push(() => new Promise<void>((r) => link.close(() => r())));
  return p;
}

async function pair(): Promise<PtyPair> {
  const pp = await ptyPair();
  cleanups.push(() => pp.dispose());
  return pp;
}

/** A raw serialport on one end, to put arbitrary bytes on the line. */
async function rawPort(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
  cleanups.push(() => new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r())));
  return port;
}

async function rawWrite(port: SerialPort, bytes: Uint8Array): Promise<void> {
  await new Promise<void>((res, rej) => port.write(Buffer.from(bytes), (e) => (e ? rej(e) : res())));
  await new Promise<void>((res, rej) => port.drain((e) => (e ? rej(e) : res())));
}

const up = (p: Probe) => waitFor(() => p.link.isUp, 20_000, `${p.link.name} up`);

describe.skipIf(!socat.run)('SerialLink over socat ptys (real serialport)', () => {
  it('round trip both ways, point-to-point', async () => {
    const pp = await pair();
    const a = probe({ path: pp.a, self: 1, peer: 2 });
    const b = probe({ path: pp.b, self: 2, peer: 1 });
    await up(a);
    await up(b);
    expect(a.events).toEqual([{ kind: 'up' }]);
    a.link.send(2, new Uint8Array([1, 2, 3, 0xc0, 0xdb]));
    b.link.send(1, new Uint8Array([9]));
    await waitFor(() => a.frames.length === 1 && b.frames.length === 1, 20_000, 'both frames');
    expect([...b.frames[0]!]).toEqual([1, 2, 3, 0xc0, 0xdb]);
    expect([...a.frames[0]!]).toEqual([9]);
    // Not the peer: dropped and counted, never sent.
    a.link.send(3, new Uint8Array([7]));
    expect(a.link.stats.misaddressed).toBe(1);
    expect(a.link.stats.framesSent).toBe(1);
  });

  it('many frames of every size arrive intact and in order', async () => {
    const pp = await pair();
    const a = probe({ path: pp.a, self: 1, peer: 2 });
    const b = probe({ path: pp.b, self: 2, peer: 1 });
    await up(a);
    await up(b);
    const rng = new Rng(42);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 400; i++) {
      const f = new Uint8Array(rng.int(0, 1024));
      for (let j = 0; j < f.length; j++) f[j] = rng.chance(0.1) ? rng.pick([0xc0, 0xdb]) : rng.int(0, 255);
      sent.push(f);
      a.link.send(2, f);
    }
    // An empty frame still carries its CRC, so it is delivered too.
    await waitFor(() => b.frames.length >= sent.length, 45_000, '400 frames');
    expect(b.frames.length).toBe(400);
    for (let i = 0; i < sent.length; i++) expect(Buffer.from(b.frames[i]!).equals(Buffer.from(sent[i]!))).toBe(true);
    expect(b.link.stats.crcErrors).toBe(0);
  });

  it('reassembles frames split across reads, skips garbage, catches a corrupt byte by CRC', async () => {
    const pp = await pair();
    const raw = await rawPort(pp.a);
    const b = probe({ path: pp.b, self: 2, peer: 1 });
    await up(b);
    // One frame, one byte per write: many separate reads on the other side.
    const f1 = slipEncode(new Uint8Array([10, 20, 30, 40, 50]));
    for (let i = 0; i < f1.length; i++) {
      const before = b.link.stats.bytesReceived;
      await rawWrite(raw, f1.subarray(i, i + 1));
      await waitFor(() => b.link.stats.bytesReceived > before, 15_000, `byte ${i}`);
    }
    expect(b.frames.map((f) => [...f])).toEqual([[10, 20, 30, 40, 50]]);
    // Line noise before a frame: skipped (counted), the frame after it survives.
    await rawWrite(raw, new Uint8Array([0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47]));
    await rawWrite(raw, slipEncode(new Uint8Array([7, 7])));
    await waitFor(() => b.frames.length === 2, 15_000, 'frame after garbage');
    expect([...b.frames[1]!]).toEqual([7, 7]);
    expect(b.link.stats.crcErrors).toBe(1);
    // One corrupted byte inside a frame: the CRC catches it, nothing is delivered.
    const bad = slipEncode(new Uint8Array([1, 2, 3, 4, 5, 6]));
    bad[3] = bad[3]! ^ 0x10;
    await rawWrite(raw, bad);
    await rawWrite(raw, slipEncode(new Uint8Array([8])));
    await waitFor(() => b.frames.length === 3, 15_000, 'frame after the corrupt one');
    expect([...b.frames[2]!]).toEqual([8]);
    expect(b.link.stats.crcErrors).toBe(2);
    expect(b.link.stats.framesReceived).toBe(3);
  });

  it('refuses a frame larger than maxFrame, on send and on receive', async () => {
    const pp = await pair();
    const raw = await rawPort(pp.a);
    const b = probe({ path: pp.b, self: 2, peer: 1, maxFrame: 16 });
    await up(b);
    expect(() => b.link.send(1, new Uint8Array(17))).toThrow(/17 bytes exceeds maxFrame 16/);
    await rawWrite(raw, slipEncode(new Uint8Array(40)));
    await rawWrite(raw, slipEncode(new Uint8Array(16).fill(3)));
    await waitFor(() => b.frames.length === 1, 15_000, 'the frame that fits');
    expect(b.frames[0]!.length).toBe(16);
    expect(b.link.stats.tooLarge).toBe(1);
  });

  it("goes 'down' when the port disappears and comes back 'up' by itself", async () => {
    const pp = await pair();
    const a = probe({ path: pp.a, self: 1, peer: 2 });
    const b = probe({ path: pp.b, self: 2, peer: 1 });
    await up(a);
    await up(b);
    await pp.kill();
    await waitFor(() => a.events.some((e) => e.kind === 'down'), 20_000, "'down' on a");
    const down = a.events.find((e) => e.kind === 'down') as { kind: 'down'; reason: string };
    expect(down.reason).toContain(pp.a);
    // Sending while down: dropped and counted, never thrown.
    a.link.send(2, new Uint8Array([1]));
    expect(a.link.stats.droppedDown).toBeGreaterThanOrEqual(1);
    await pp.restart();
    await waitFor(() => a.link.isUp && b.link.isUp, 30_000, 'both reopened');
    expect(a.events.map((e) => e.kind)).toEqual(['up', 'down', 'up']);
    a.link.send(2, new Uint8Array([5, 5]));
    await waitFor(() => b.frames.length === 1, 20_000, 'frame after reopen');
    expect([...b.frames[0]!]).toEqual([5, 5]);
  }, 120_000);

  it('bus mode between two drops: addressed, broadcast, and filtered frames', async () => {
    const pp = await pair();
    const bus = { members: [1, 2, 3], guardMs: 4, listenCycles: 1 };
    const a = probe({ path: pp.a, self: 1, bus, maxFrame: 64 });
    const b = probe({ path: pp.b, self: 2, bus, maxFrame: 64 });
    await up(a);
    await up(b);
    a.link.send(2, new Uint8Array([1, 1]));
    a.link.send(3, new Uint8Array([3, 3])); // drop 3 is not on this pty: b must ignore it
    a.link.send(255, new Uint8Array([0xff]));
    b.link.send(1, new Uint8Array([2, 2]));
    await waitFor(() => b.frames.length === 2 && a.frames.length === 1, 30_000, 'bus frames');
    expect(b.frames.map((f) => [...f])).toEqual([[1, 1], [0xff]]);
    expect(a.frames.map((f) => [...f])).toEqual([[2, 2]]);
    expect(b.link.stats.notForUs).toBeGreaterThanOrEqual(1);
    a.link.send(9, new Uint8Array([1]));
    expect(a.link.stats.misaddressed).toBe(1);
    expect(b.link.bus!.following).toBe(1);
  });
});
