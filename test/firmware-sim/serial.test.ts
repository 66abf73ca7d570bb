import { describe, expect, it } from 'vitest';
import { slipEncode } from '../../src/wire/slip.ts';
import type { SerialLink, SerialOptions } from '../../firmware-sim/serial.ts';
import { World } from '../../firmware-sim/world.ts';

function pair(opts: SerialOptions, seed = 1) {
  const w = new World({ seed, board: { bootDelayMs: 10 } });
  const rx = new Map<number, Array<{ frame: Uint8Array; at: number }>>([[1, []], [2, []]]);
  w.onBoot((hal) => {
    const link = hal.links.find((l) => l.name === 'serial')!;
    link.onFrame((frame) => rx.get(hal.node)!.push({ frame, at: w.nowUs }));
  });
  w.addBoard(1, { mqtt: false });
  w.addBoard(2, { mqtt: false });
  const wire = w.serialWire(1, 2, opts);
  w.run(20);
  const link = (n: number) => w.board(n).hal!.links[0]! as SerialLink;
  return { w, wire, rx, link };
}

describe('serial wires', () => {
  it('raw bytes take 10 bits per byte at the baud rate: 100 bytes at 9600 baud ≈ 104.2 ms', () => {
    const { w, wire } = pair({ baud: 9600 });
    const arrivals: Array<{ at: number; n: number }> = [];
    wire.tap = (_to, bytes) => arrivals.push({ at: w.nowUs, n: bytes.length });
    const t0 = w.nowUs;
    const end = wire.a.writeRaw(new Uint8Array(100));
    expect(end - t0).toBe(Math.ceil((100 * 10 * 1e6) / 9600)); // 104167 µs
    w.run(200);
    expect(arrivals).toEqual([{ at: end, n: 100 }]);
    // frames queue behind each other in one direction
    const t1 = w.nowUs;
    wire.a.writeRaw(new Uint8Array(48));
    const end2 = wire.a.writeRaw(new Uint8Array(48));
    expect(end2 - t1).toBe(Math.ceil((96 * 10 * 1e6) / 9600));
  });

  it('the serial Link frames with SLIP + CRC and delivers to the peer at wire speed', () => {
    const { w, wire, rx, link } = pair({ baud: 115200 });
    const l1 = link(1);
    expect(l1.name).toBe('serial');
    expect(l1.maxFrame).toBe(1024);
    expect(l1.peer).toBe(2);
    const frame = new Uint8Array(200).map((_, i) => (i * 37) & 0xff); // includes END/ESC bytes
    const t0 = w.nowUs;
    l1.send(2, frame);
    w.run(100);
    const got = rx.get(2)!;
    expect(got.length).toBe(1);
    expect(Buffer.from(got[0]!.frame).equals(Buffer.from(frame))).toBe(true);
    const wireBytes = slipEncode(frame).length;
    expect(got[0]!.at - t0).toBe(Math.ceil((wireBytes * 10 * 1e6) / 115200));
    expect(wire.stats.framesDelivered).toBe(1);
  });

  it('corrupted bytes are caught by the CRC and counted; clean frames still pass', () => {
    const { w, wire, rx, link } = pair({ baud: 115200, corruptRate: 0.002 }, 9);
    const frame = new Uint8Array(300).fill(0x41);
    for (let i = 0; i < 200; i++) {
      link(1).send(2, frame);
    }
    w.run(10_000);
    const got = rx.get(2)!;
    expect(wire.stats.bytesCorrupted).toBeGreaterThan(50);
    expect(wire.stats.framesRejected).toBeGreaterThan(20);
    expect(got.length).toBeGreaterThan(20);
    // nothing corrupted got through
    for (const g of got) expect(Buffer.from(g.frame).equals(Buffer.from(frame))).toBe(true);
    expect(got.length + wire.stats.framesRejected).toBeLessThanOrEqual(200);
  });

  it('a cut wire delivers nothing, a cut mid-frame delivers only the bytes before the cut, repair restores it', () => {
    const { w, wire, rx, link } = pair({ baud: 9600 });
    const seen: number[] = [];
    wire.tap = (_to, b) => seen.push(b.length);
    wire.cut();
    link(1).send(2, new Uint8Array(50));
    w.run(500);
    expect(rx.get(2)!.length).toBe(0);
    expect(seen).toEqual([]);
    wire.repair();
    wire.a.writeRaw(new Uint8Array(100)); // 104 ms on the line
    w.run(52.1); // 50 bytes in
    wire.cut();
    w.run(200);
    expect(seen).toEqual([50]);
    wire.repair();
    link(1).send(2, new Uint8Array([1, 2, 3]));
    w.run(100);
    // the truncated garbage before was discarded by the decoder; the new frame arrives
    expect(rx.get(2)!.map((r) => [...r.frame])).toEqual([[1, 2, 3]]);
  });

  it('frames to a node not on the wire are not sent and are counted', () => {
    const { w, wire, rx, link } = pair({});
    link(1).send(3, new Uint8Array([1]));
    w.run(100);
    expect(wire.stats.misaddressed).toBe(1);
    expect(rx.get(2)!.length).toBe(0);
    expect(() => link(1).send(2, new Uint8Array(1025))).toThrow(/maxFrame/);
    expect(() => w.serialWire(1, 1)).toThrow(/both ends/);
    expect(() => w.serialWire(1, 2, { baud: 0 })).toThrow(/baud/);
  });

  it('bytes reaching a powered-off board are dropped; after reboot the link works', () => {
    const { w, rx, link } = pair({});
    w.board(2).setMains(false);
    link(1).send(2, new Uint8Array([9]));
    w.run(5);
    w.board(2).setMains(true);
    w.run(50);
    expect(rx.get(2)!.length).toBe(0);
    link(1).send(2, new Uint8Array([8]));
    w.run(5);
    expect(rx.get(2)!.map((r) => [...r.frame])).toEqual([[8]]);
  });
});
