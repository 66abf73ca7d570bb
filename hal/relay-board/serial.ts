/**
 * The real serial relay board backend: `RelayBoardClient` over `serialport` (the
 * CH340 shows up as /dev/ttyUSB0; better use the stable /dev/serial/by-id/... link).
 *
 *   const board = await openSerialRelayBoard({ path: '/dev/ttyUSB0', channels: 4 });
 *   const relay = board.client.relay(2, { wiring: 'nc' });   // HAL Relay for channel 2
 *   relay.set(false, (err) => ...);                           // cut node 2's power
 *
 * The port is opened once; if it fails to open, the promise rejects with an error
 * naming the path. If the port goes away later (USB unplugged), operations time out
 * and fail; the fencer then tries its next level. (Reopening is the runtime's call:
 * close() and open again.)
 */
import { serialPortClass } from '../serial/link.ts';
import type { Clock, Done } from '../interfaces.ts';
import { systemClock } from '../clock.ts';
import { RelayBoardClient, type ByteTransport, type RelayBoardOptions } from './client.ts';
import { BAUD_RATE } from './protocol.ts';

export interface SerialRelayBoardOptions extends Omit<RelayBoardOptions, 'name'> {
  /** Device path. Required. */
  path: string;
  /** Board name. Default `relayboard:<path>`. */
  name?: string;
  /** Line speed. Default 9600 (the LCUS boards' fixed rate). */
  baudRate?: number;
  /** Time source for timeouts. Default the system clock (monotonic). */
  clock?: Clock;
}

export interface SerialRelayBoard {
  readonly client: RelayBoardClient;
  readonly path: string;
  close(done?: Done): void;
}

export function openSerialRelayBoard(opts: SerialRelayBoardOptions): Promise<SerialRelayBoard> {
  if (opts === null || typeof opts !== 'object') return Promise.reject(new TypeError('openSerialRelayBoard: expected options { path, channels }'));
  if (typeof opts.path !== 'string' || opts.path.length === 0) return Promise.reject(new TypeError(`openSerialRelayBoard path: expected a device path, got ${typeof opts.path}`));
  const baudRate = opts.baudRate ?? BAUD_RATE;
  if (!Number.isInteger(baudRate) || baudRate < 50 || baudRate > 4_000_000) return Promise.reject(new RangeError(`openSerialRelayBoard baudRate: expected an integer 50..4000000, got ${String(opts.baudRate)}`));
  const path = opts.path;
  return new Promise((resolve, reject) => {
    const port = new (serialPortClass())({ path, baudRate, autoOpen: false, lock: true });
    port.open((err) => {
      if (err) return reject(new Error(`relay board ${path}: cannot open: ${err.message}`));
      const handlers: Array<(c: Uint8Array) => void> = [];
      port.on('data', (chunk: Buffer) => {
        const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        for (const h of handlers) h(bytes);
      });
      port.on('error', () => {
        /* surfaced as timeouts of the running operation */
      });
      const transport: ByteTransport = {
        write(bytes, done) {
          if (!port.isOpen) return done(new Error('port is closed'));
          port.write(Buffer.from(bytes), (e) => done(e ?? null));
        },
        onData(fn) {
          handlers.push(fn);
        },
      };
      let client: RelayBoardClient;
      try {
        client = new RelayBoardClient(transport, opts.clock ?? systemClock({ unref: true }), { ...opts, name: opts.name ?? `relayboard:${path}` });
      } catch (e) {
        port.close();
        return reject(e);
      }
      resolve({
        client,
        path,
        close(done?: Done) {
          client.close();
          port.removeAllListeners('data');
          if (!port.isOpen) return done?.(null);
          port.close((e) => done?.(e ?? null));
        },
      });
    });
  });
}
