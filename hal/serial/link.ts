/**
 * The real serial `Link` (hal/interfaces.ts) on a UART or USB-serial adapter, through
 * `serialport` 13. Two modes (docs/serial.md has wiring and kernel setup):
 *
 *   - point-to-point (`peer`): a null-modem wire between two boards. Frames are
 *     SLIP(`frame ‖ CRC-32`) exactly as docs/wire.md and the simulator's wire; the link
 *     knows which node is at the other end, and `send(to)` for anyone else is
 *     dropped and counted (`misaddressed`).
 *   - RS-485 multi-drop bus (`bus`): frames carry a 3-byte link header
 *     `[to, from, flags]` inside the SLIP frame, so that a drop filters frames for
 *     others without decoding CBOR, and transmissions are scheduled in TDMA slots
 *     (hal/serial/tdma.ts has the slot math and the time-keeping rules).
 *
 * Failure handling: a port that cannot be opened, or disappears (USB adapter
 * unplugged, pty closed), gives one 'down' event naming the path and the cause, then
 * the link reopens with exponential backoff (`reopen`), and says 'up' when it is back.
 * A port learns that it is gone from serialport's 'close' event; as a backstop, while
 * up the link also checks once a second that the device path still exists (`presence`):
 * a USB adapter's /dev/ttyUSBn and a pty's symlink vanish when the device does, and
 * serialport's Linux binding treats a read of 0 bytes as "nothing yet" and retries, so a
 * port whose other end is gone can otherwise stay 'up' without a frame for ever.
 * `send` never throws for transport problems: while the port is down frames are
 * dropped and counted. It does throw for caller mistakes (a bad node id, a frame
 * that is not a Uint8Array or exceeds `maxFrame`), like the simulator's link.
 * Received garbage, bad CRCs, bad escapes and oversize frames are counted and
 * skipped; the decoder resynchronizes on the next SLIP END.
 */
import { stat } from 'node:fs';
import { createRequire } from 'node:module';
import type { SerialPort as SerialPortClass } from 'serialport';
import type { Cancel, Clock, Done, Link, LinkEvent } from '../interfaces.ts';
import { MAX_NODE_ID, type NodeId } from '../../src/types.ts';
import { SlipDecoder, slipEncode } from '../../src/wire/slip.ts';
import { systemClock } from '../clock.ts';
import { BUS_BROADCAST, BUS_HEADER_BYTES, decodeBusFrame, TdmaScheduler, type BusOptions } from './tdma.ts';

/** What the link needs from a serial port: the subset of serialport's stream API it uses. */
export interface SerialPortLike {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  write(data: Buffer, cb?: (err: Error | null | undefined) => void): boolean;
  close(cb?: (err: Error | null) => void): void;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close', fn: (err?: Error | null) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  removeAllListeners(): unknown;
}

/** Creates an unopened port. The default uses serialport's native binding; tests pass `SerialPortMock`. */
export type SerialPortFactory = (o: { path: string; baudRate: number }) => SerialPortLike;

export const defaultPortFactory: SerialPortFactory = ({ path, baudRate }) =>
  // lock: true (TIOCEXCL) so that a getty or a second daemon cannot share the port.
  new (serialPortClass())({ path, baudRate, autoOpen: false, lock: true });

const requireCjs = createRequire(import.meta.url);
/**
 * serialport (a native binding and a dozen modules) is loaded on first use, not at
 * import: a node without serial links or relay boards never loads it (memory on a Pi Zero).
 */
export function serialPortClass(): typeof SerialPortClass {
  return (requireCjs('serialport') as { SerialPort: typeof SerialPortClass }).SerialPort;
}

export interface SerialLinkOptions {
  /** Device path, e.g. /dev/serial0 (Pi UART), /dev/ttyUSB0, /dev/ttyAMA2. Required. */
  path: string;
  /** This node's id (1..254). Required. */
  self: NodeId;
  /** Point-to-point mode: the node at the other end of the wire. Exactly one of `peer` / `bus`. */
  peer?: NodeId;
  /** RS-485 bus mode: the drops and slot parameters (hal/serial/tdma.ts). */
  bus?: BusOptions;
  /**
   * Line speed. Default 115200: the Pi's PL011 UARTs and common USB adapters do it
   * reliably over a few metres; RS-485 transceivers go far beyond, cables long
   * enough to need less should lower it (the slot math follows).
   */
  baudRate?: number;
  /** Largest frame (bytes before link framing). Default 1024 (docs/wire.md: 1 KiB on serial). */
  maxFrame?: number;
  /** Time source for reopen backoff and bus slots. Default: the system clock. */
  clock?: Clock;
  /**
   * Reopen backoff after an open failure or a disconnect: the first retry after
   * `initialMs` (default 100), doubling up to `maxMs` (default 5000, so that a
   * replugged adapter is back within ~5 s without spinning on a missing device).
   */
  reopen?: { initialMs?: number; maxMs?: number };
  /** Port factory (tests). Default: serialport's native binding. */
  portFactory?: SerialPortFactory;
  /**
   * While up, check every `everyMs` (default 1000) that the device path still exists;
   * a path found missing is a disconnect ('down' naming the path, then the reopen
   * backoff). One stat() per second. `false` turns it off. Default: on with the native
   * port factory, off with a custom `portFactory` (mock ports have no path on disk)
   * unless `presence` is given; `exists` replaces the stat() (tests).
   */
  presence?: false | { everyMs?: number; exists?: (path: string, cb: (exists: boolean) => void) => void };
  /** Link name in status and logs. Default `serial:<path>`. */
  name?: string;
}

export interface SerialLinkStats {
  framesSent: number;
  framesReceived: number;
  bytesReceived: number;
  /** Frames whose CRC-32 did not match (line noise, garbage before an END). */
  crcErrors: number;
  /** Frames with an invalid SLIP escape. */
  badEscapes: number;
  /** Frames shorter than the CRC. */
  runts: number;
  /** Received frames larger than maxFrame (discarded up to the next END). */
  tooLarge: number;
  /** send() to a node this link cannot reach (not the peer / not a bus member). */
  misaddressed: number;
  /** Frames dropped because the port was not open. */
  droppedDown: number;
  /** Frames dropped because the bus queue was full. */
  droppedQueue: number;
  /** Bus frames addressed to another drop (ignored), and beacons. */
  notForUs: number;
  /** Bus frames with a bad link header. */
  badHeader: number;
  writeErrors: number;
  opens: number;
  openFailures: number;
  disconnects: number;
}

type State = 'opening' | 'up' | 'down' | 'closed';

export class SerialLink implements Link {
  readonly name: string;
  readonly maxFrame: number;
  readonly path: string;
  readonly baudRate: number;
  readonly self: NodeId;
  readonly peer: NodeId | null;
  readonly bus: TdmaScheduler | null;
  readonly stats: SerialLinkStats = {
    framesSent: 0, framesReceived: 0, bytesReceived: 0, crcErrors: 0, badEscapes: 0, runts: 0, tooLarge: 0,
    misaddressed: 0, droppedDown: 0, droppedQueue: 0, notForUs: 0, badHeader: 0, writeErrors: 0,
    opens: 0, openFailures: 0, disconnects: 0,
  };
  /** The last transport problem, for status pages. */
  lastError: string | null = null;
  private state: State = 'opening';
  private port: SerialPortLike | null = null;
  private readonly decoder: SlipDecoder;
  private readonly clock: Clock;
  private readonly factory: SerialPortFactory;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private backoff: number;
  private reopenTimer: Cancel | null = null;
  private presenceTimer: Cancel | null = null;
  private readonly presenceEveryMs: number;
  private readonly pathExists: ((path: string, cb: (exists: boolean) => void) => void) | null;
  private frameHandler: ((frame: Uint8Array) => void) | null = null;
  private eventHandler: ((ev: LinkEvent) => void) | null = null;

  constructor(opts: SerialLinkOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('SerialLink: options object required');
    if (typeof opts.path !== 'string' || opts.path.length === 0) throw new RangeError(`serial.path: expected a device path such as /dev/serial0, got ${JSON.stringify(opts.path)}`);
    checkId('serial.self', opts.self);
    this.path = opts.path;
    this.self = opts.self;
    this.baudRate = opts.baudRate ?? 115200;
    if (!Number.isInteger(this.baudRate) || this.baudRate < 50 || this.baudRate > 4_000_000) throw new RangeError(`serial.baudRate: expected an integer 50..4000000, got ${String(opts.baudRate)}`);
    this.maxFrame = opts.maxFrame ?? 1024;
    if (!Number.isInteger(this.maxFrame) || this.maxFrame < 1 || this.maxFrame > 65536) throw new RangeError(`serial.maxFrame: expected an integer 1..65536, got ${String(opts.maxFrame)}`);
    this.backoffInitial = opts.reopen?.initialMs ?? 100;
    this.backoffMax = opts.reopen?.maxMs ?? 5000;
    if (!(this.backoffInitial > 0) || !(this.backoffMax >= this.backoffInitial)) throw new RangeError(`serial.reopen: expected 0 < initialMs <= maxMs, got ${this.backoffInitial} / ${this.backoffMax}`);
    this.backoff = this.backoffInitial;
    this.clock = opts.clock ?? systemClock({ unref: true });
    this.factory = opts.portFactory ?? defaultPortFactory;
    this.name = opts.name ?? `serial:${opts.path}`;
    const presence = opts.presence ?? (opts.portFactory === undefined ? {} : false);
    if (presence !== false && (presence === null || typeof presence !== 'object')) throw new TypeError(`serial.presence: expected false or {everyMs?, exists?}, got ${String(presence)}`);
    this.presenceEveryMs = presence === false ? 0 : (presence.everyMs ?? 1000);
    if (presence !== false && !(Number.isFinite(this.presenceEveryMs) && this.presenceEveryMs >= 10)) throw new RangeError(`serial.presence.everyMs: expected a number of ms >= 10, got ${String(presence.everyMs)}`);
    this.pathExists = presence === false ? null : (presence.exists ?? statExists);
    if ((opts.peer === undefined) === (opts.bus === undefined)) throw new RangeError('serial: set exactly one of `peer` (point-to-point) or `bus` (RS-485 multi-drop)');
    if (opts.peer !== undefined) {
      checkId('serial.peer', opts.peer);
      if (opts.peer === opts.self) throw new RangeError(`serial.peer: the peer (${opts.peer}) is this node`);
      this.peer = opts.peer;
      this.bus = null;
      this.decoder = new SlipDecoder(this.maxFrame);
    } else {
      this.peer = null;
      this.bus = new TdmaScheduler(this.clock, this.self, this.baudRate, this.maxFrame, opts.bus!, (b) => this.write(b));
      this.decoder = new SlipDecoder(this.maxFrame + BUS_HEADER_BYTES);
    }
    this.open();
  }

  /** True while the port is open. */
  get isUp(): boolean {
    return this.state === 'up';
  }

  send(to: NodeId, frame: Uint8Array): void {
    if (!Number.isInteger(to) || to < 1 || to > (this.bus ? BUS_BROADCAST : MAX_NODE_ID)) {
      throw new RangeError(`${this.name} send: 'to' must be a node id 1..${MAX_NODE_ID}${this.bus ? ` or ${BUS_BROADCAST} (all drops)` : ''}, got ${String(to)}`);
    }
    if (!(frame instanceof Uint8Array)) throw new TypeError(`${this.name} send: frame must be a Uint8Array, got ${typeof frame}`);
    if (frame.length > this.maxFrame) throw new RangeError(`${this.name} send: frame of ${frame.length} bytes exceeds maxFrame ${this.maxFrame}`);
    if (this.state === 'closed') return;
    if (this.bus) {
      if (to !== BUS_BROADCAST && (to === this.self || !this.bus.members.includes(to))) {
        this.stats.misaddressed++;
        return;
      }
      if (!this.bus.send(to, frame)) this.stats.droppedQueue++;
      return;
    }
    if (to !== this.peer) {
      this.stats.misaddressed++;
      return;
    }
    this.write(slipEncode(frame));
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    if (typeof handler !== 'function') throw new TypeError(`${this.name} onFrame: expected a function`);
    this.frameHandler = handler;
  }

  onEvent(handler: (ev: LinkEvent) => void): void {
    if (typeof handler !== 'function') throw new TypeError(`${this.name} onEvent: expected a function`);
    this.eventHandler = handler;
  }

  close(done?: Done): void {
    if (this.state === 'closed') {
      done?.(null);
      return;
    }
    this.state = 'closed';
    this.reopenTimer?.();
    this.reopenTimer = null;
    this.presenceTimer?.();
    this.presenceTimer = null;
    this.bus?.stop();
    const port = this.port;
    this.port = null;
    if (port === null || !port.isOpen) {
      port?.removeAllListeners();
      done?.(null);
      return;
    }
    port.close((err) => {
      port.removeAllListeners();
      done?.(err ? new Error(`${this.name}: close failed: ${err.message}`) : null);
    });
  }

  private write(bytes: Uint8Array): void {
    const port = this.port;
    if (this.state !== 'up' || port === null) {
      this.stats.droppedDown++;
      return;
    }
    this.stats.framesSent++;
    port.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (err) => {
      if (err) {
        this.stats.writeErrors++;
        this.lastError = `write to ${this.path} failed: ${err.message}`;
      }
    });
  }

  private open(): void {
    if (this.state === 'closed') return;
    let port: SerialPortLike;
    try {
      port = this.factory({ path: this.path, baudRate: this.baudRate });
    } catch (e) {
      this.failed(`cannot open ${this.path}: ${(e as Error).message}`, true);
      return;
    }
    this.port = port;
    port.on('data', (chunk: Buffer) => {
      if (this.port === port) this.bytesIn(chunk);
    });
    port.on('error', (err: Error) => {
      if (this.port === port) this.lastError = `${this.path}: ${err.message}`;
    });
    port.on('close', (err?: Error | null) => {
      if (this.port !== port || this.state === 'closed') return;
      this.stats.disconnects++;
      this.failed(`${this.path} closed${err ? `: ${err.message}` : ''}`, false);
    });
    port.open((err) => {
      if (this.port !== port || this.state === 'closed') {
        if (!err) port.close();
        return;
      }
      if (err) {
        this.failed(`cannot open ${this.path}: ${err.message}`, true);
        return;
      }
      this.stats.opens++;
      this.backoff = this.backoffInitial;
      this.state = 'up';
      this.lastError = null;
      this.emit({ kind: 'up' });
      this.watchPresence(port);
    });
  }

  /** The backstop for a port that vanished without a 'close' (see the header). */
  private watchPresence(port: SerialPortLike): void {
    const exists = this.pathExists;
    if (exists === null) return;
    this.presenceTimer?.();
    this.presenceTimer = this.clock.setTimer(this.presenceEveryMs, () => {
      this.presenceTimer = null;
      if (this.port !== port || this.state !== 'up') return;
      exists(this.path, (there) => {
        if (this.port !== port || this.state !== 'up') return;
        if (there) return this.watchPresence(port);
        this.stats.disconnects++;
        this.failed(`${this.path} vanished (the device path no longer exists)`, false);
      });
    });
  }

  private failed(reason: string, atOpen: boolean): void {
    if (this.state === 'closed') return;
    if (atOpen) this.stats.openFailures++;
    this.lastError = reason;
    const old = this.port;
    this.port = null;
    if (old) {
      old.removeAllListeners();
      old.on('error', () => {}); // a late error from a dead port must not become an uncaught 'error'
      if (old.isOpen) old.close();
    }
    this.presenceTimer?.();
    this.presenceTimer = null;
    const wasDown = this.state === 'down';
    this.state = 'down';
    if (!wasDown) this.emit({ kind: 'down', reason });
    const delay = this.backoff;
    this.backoff = Math.min(this.backoffMax, this.backoff * 2);
    this.reopenTimer = this.clock.setTimer(delay, () => {
      this.reopenTimer = null;
      this.open();
    });
  }

  private bytesIn(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.stats.bytesReceived += chunk.length;
    const rxAt = this.clock.monotonicMs();
    for (const r of this.decoder.push(chunk)) {
      if ((this.state as State) === 'closed') return; // a handler may have closed the link
      if (!r.ok) {
        if (r.reason === 'crc') this.stats.crcErrors++;
        else if (r.reason === 'bad-escape') this.stats.badEscapes++;
        else if (r.reason === 'runt') this.stats.runts++;
        else this.stats.tooLarge++;
        continue;
      }
      if (this.bus) {
        const h = decodeBusFrame(r.frame);
        if (h === null) {
          this.stats.badHeader++;
          continue;
        }
        this.bus.heard(h.from, h.flags, slipEncode(r.frame).length, rxAt);
        if (h.to !== this.self && h.to !== BUS_BROADCAST) {
          this.stats.notForUs++;
          continue;
        }
        if (h.payload.length > this.maxFrame) {
          this.stats.tooLarge++;
          continue;
        }
        this.stats.framesReceived++;
        this.deliver(h.payload.slice());
      } else {
        this.stats.framesReceived++;
        this.deliver(r.frame);
      }
    }
  }

  private deliver(frame: Uint8Array): void {
    try {
      this.frameHandler?.(frame);
    } catch (e) {
      this.lastError = `${this.name} frame handler threw: ${(e as Error).message}`;
    }
  }

  private emit(ev: LinkEvent): void {
    if (this.state === 'closed') return;
    try {
      this.eventHandler?.(ev);
    } catch (e) {
      this.lastError = `${this.name} event handler threw: ${(e as Error).message}`;
    }
  }
}

/** The default presence check: the path exists (ENOENT/ENOTDIR = gone; any other error is not taken as proof of absence). */
function statExists(path: string, cb: (exists: boolean) => void): void {
  stat(path, (err) => cb(!err || (err.code !== 'ENOENT' && err.code !== 'ENOTDIR')));
}

function checkId(what: string, v: unknown): asserts v is NodeId {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_NODE_ID) {
    throw new RangeError(`${what}: expected a node id 1..${MAX_NODE_ID}, got ${String(v)}`);
  }
}
