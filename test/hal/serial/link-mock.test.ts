/**
 * Error paths of the serial Link with serialport's mock binding; the reopen backoff
 * runs on a virtual clock so that the delays are asserted exactly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SerialPortMock } from 'serialport';
import { SerialLink } from '../../../hal/serial/link.ts';
import type { LinkEvent } from '../../../hal/interfaces.ts';
import { slipEncode } from '../../../src/wire/slip.ts';
import { VirtualTime } from './vclock.ts';
import { waitFor } from './socat.ts';

const links: SerialLink[] = [];
afterEach(async () => {
  for (const l of links.splice(0)) await new Promise<void>((r) => l.close(() => r()));
  SerialPortMock.binding.reset();
});

function setup(path: string, presence?: ConstructorParameters<typeof SerialLink>[0]['presence']) {
  const vt = new VirtualTime();
  const ports: SerialPortMock[] = [];
  const events: LinkEvent[] = [];
  const frames: Uint8Array[] = [];
  const link = new SerialLink({
    path,
    self: 1,
    peer: 2,
    clock: vt.clock(),
    reopen: { initialMs: 100, maxMs: 400 },
    ...(presence === undefined ? {} : { presence }),
    portFactory: ({ path: p, baudRate }) => {
      const port = new SerialPortMock({ path: p, baudRate, autoOpen: false });
      ports.push(port);
      return port;
    },
  });
  links.push(link);
  link.onEvent((e) => events.push(e));
  link.onFrame((f) => frames.push(f));
  return { vt, ports, events, frames, link };
}

describe('SerialLink error paths (mock binding)', () => {
  it('a missing port gives one clear down event, retries with backoff, and comes up when the port appears', async () => {
    const t = setup('/dev/ttyMISSING0');
    await waitFor(() => t.events.length === 1, 2000, 'down event');
    const ev = t.events[0] as { kind: 'down'; reason: string };
    expect(ev.kind).toBe('down');
    expect(ev.reason).toMatch(/cannot open \/dev\/ttyMISSING0: .*does not exist/);
    expect(t.link.stats.openFailures).toBe(1);
    // Retries at +100, +200, +400, +400 ms (capped); no event repeated meanwhile.
    const retryAt = [100, 300, 700, 1100];
    for (let i = 0; i < retryAt.length; i++) {
      t.vt.run(retryAt[i]! - 1);
      expect(t.ports.length).toBe(i + 1);
      t.vt.run(retryAt[i]!);
      expect(t.ports.length).toBe(i + 2);
      await waitFor(() => t.link.stats.openFailures === i + 2, 2000, `failure ${i + 2}`);
    }
    expect(t.events.length).toBe(1);
    expect(t.link.lastError).toContain('/dev/ttyMISSING0');
    // Sending while down is dropped and counted, not thrown.
    t.link.send(2, new Uint8Array([1]));
    expect(t.link.stats.droppedDown).toBe(1);
    SerialPortMock.binding.createPort('/dev/ttyMISSING0');
    t.vt.run(1500);
    await waitFor(() => t.link.isUp, 2000, 'up');
    expect(t.events.map((e) => e.kind)).toEqual(['down', 'up']);
  });

  it("a port closed underneath gives 'down', then reopens and carries frames again", async () => {
    SerialPortMock.binding.createPort('/dev/ttyMOCK1');
    const t = setup('/dev/ttyMOCK1');
    await waitFor(() => t.link.isUp, 2000, 'up');
    const first = t.ports[0]!;
    first.port!.emitData(Buffer.from(slipEncode(new Uint8Array([4, 2]))));
    await waitFor(() => t.frames.length === 1, 2000, 'frame');
    first._disconnected(new Error('USB device unplugged'));
    await waitFor(() => t.events.length === 2, 2000, 'down');
    expect(t.events[1]).toEqual({ kind: 'down', reason: expect.stringContaining('USB device unplugged') });
    expect(t.link.stats.disconnects).toBe(1);
    t.vt.run(100);
    await waitFor(() => t.link.isUp, 2000, 'reopened');
    expect(t.events.map((e) => e.kind)).toEqual(['up', 'down', 'up']);
    t.link.send(2, new Uint8Array([6, 6, 6]));
    const second = t.ports[1]!;
    await waitFor(() => second.port?.lastWrite !== null && second.port?.lastWrite !== undefined, 2000, 'write');
    expect([...second.port!.lastWrite!]).toEqual([...slipEncode(new Uint8Array([6, 6, 6]))]);
  });

  it('no event and no frame after close(); close is idempotent', async () => {
    SerialPortMock.binding.createPort('/dev/ttyMOCK2');
    const t = setup('/dev/ttyMOCK2');
    await waitFor(() => t.link.isUp, 2000, 'up');
    const port = t.ports[0]!;
    let closed = 0;
    t.link.close(() => closed++);
    t.link.close(() => closed++);
    await waitFor(() => closed === 2, 2000, 'close callbacks');
    expect(() => port.port?.emitData(Buffer.from(slipEncode(new Uint8Array([1]))))).toThrow();
    t.link.send(2, new Uint8Array([1]));
    t.vt.run(10_000);
    expect(t.events.map((e) => e.kind)).toEqual(['up']);
    expect(t.frames.length).toBe(0);
  });

  it("a device path that vanishes while the port says nothing gives 'down' within a check, then reopens when it is back", async () => {
    SerialPortMock.binding.createPort('/dev/ttyMOCK3');
    let there = true;
    let checks = 0;
    const t = setup('/dev/ttyMOCK3', { everyMs: 1000, exists: (p, cb) => { expect(p).toBe('/dev/ttyMOCK3'); checks++; cb(there); } });
    await waitFor(() => t.link.isUp, 2000, 'up');
    t.vt.run(5000);
    expect(checks).toBe(5); // once a second while up, nothing else
    expect(t.events.map((e) => e.kind)).toEqual(['up']);
    there = false; // e.g. the USB adapter is unplugged and the binding never reports it
    t.vt.run(5999);
    expect(t.link.isUp).toBe(true);
    t.vt.run(6000);
    expect(t.events[1]).toEqual({ kind: 'down', reason: '/dev/ttyMOCK3 vanished (the device path no longer exists)' });
    expect(t.link.stats.disconnects).toBe(1);
    expect(t.ports[0]!.isOpen).toBe(false);
    // While down the path is not polled; the reopen backoff runs (+100 ms) and finds the port.
    const before = checks;
    there = true;
    t.vt.run(6100);
    await waitFor(() => t.link.isUp, 2000, 'up again');
    expect(checks).toBe(before);
    expect(t.events.map((e) => e.kind)).toEqual(['up', 'down', 'up']);
    expect(t.ports.length).toBe(2);
    t.vt.run(7100);
    expect(checks).toBe(before + 1); // watching again
  });

  it('checks no path with a custom port factory unless asked, and never after close', async () => {
    SerialPortMock.binding.createPort('/dev/ttyMOCK4');
    const t = setup('/dev/ttyMOCK4'); // mock factory, no presence option: the mock path is not on disk
    await waitFor(() => t.link.isUp, 2000, 'up');
    t.vt.run(10_000);
    expect(t.events.map((e) => e.kind)).toEqual(['up']);
    let checks = 0;
    SerialPortMock.binding.createPort('/dev/ttyMOCK5');
    const u = setup('/dev/ttyMOCK5', { exists: (_p, cb) => { checks++; cb(true); } });
    await waitFor(() => u.link.isUp, 2000, 'up');
    u.vt.run(2000);
    expect(checks).toBe(2);
    await new Promise<void>((r) => u.link.close(() => r()));
    u.vt.run(10_000);
    expect(checks).toBe(2);
  });

  it('rejects bad options with errors that name them', () => {
    const mk = (o: object) => () => new SerialLink({ path: '/dev/x', self: 1, peer: 2, portFactory: () => { throw new Error('unused'); }, ...o });
    expect(mk({ path: '' })).toThrow(/serial\.path/);
    expect(mk({ self: 0 })).toThrow(/serial\.self/);
    expect(mk({ peer: 1 })).toThrow(/serial\.peer/);
    expect(mk({ baudRate: 12.5 })).toThrow(/serial\.baudRate/);
    expect(mk({ maxFrame: 0 })).toThrow(/serial\.maxFrame/);
    expect(mk({ bus: { members: [1, 2] } })).toThrow(/exactly one/);
    expect(mk({ reopen: { initialMs: 500, maxMs: 100 } })).toThrow(/serial\.reopen/);
    expect(mk({ presence: { everyMs: 0 } })).toThrow(/serial\.presence\.everyMs/);
    expect(mk({ presence: 'yes' })).toThrow(/serial\.presence/);
  });
});
