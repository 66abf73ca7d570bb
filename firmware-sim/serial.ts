/**
 * Serial wires: a point-to-point UART connection between two boards.
 *
 * Timing: 8N1 framing puts 10 bits on the line per byte, so a byte takes
 * 10 / baud seconds (86.8 µs at 115200 baud; a 100-byte frame at 9600 baud takes
 * 104.2 ms). Each direction is a queue: a frame starts when the previous one in the
 * same direction has left. A frame's bytes are handed to the receiver in one piece
 * when its last byte has arrived (cheap), except that a wire cut while the frame is on
 * the line delivers only the bytes that got through before the cut.
 *
 * Errors: each byte is corrupted (one bit flipped) with probability `corruptRate`;
 * the receiver's SLIP decoder and CRC-32 (src/wire/slip.ts) reject the frame, and the
 * wire counts it. `cut()` / `repair()` model an unplugged or broken cable: nothing
 * passes while cut, and a UART cannot tell (no event).
 *
 * The serial `Link` ('serial', maxFrame 1024 by default, docs/wire.md) carries frames only
 * to the board at the other end; a frame addressed to anyone else is not sent and is
 * counted as misaddressed.
 */
import type { Done, Link, LinkEvent } from '../hal/interfaces.ts';
import { MAX_NODE_ID, type NodeId } from '../src/types.ts';
import type { Rng } from '../src/rng.ts';
import { SlipDecoder, slipEncode } from '../src/wire/slip.ts';
import type { DeathCause, LinkPort, Proc } from './proc.ts';
import type { SimContext } from './scheduler.ts';

export interface SerialOptions {
  /** Line speed in baud (bits/s). Default 115200, the usual Pi UART setting. */
  baud?: number;
  /** Probability that a byte is corrupted on the line. Default 0. */
  corruptRate?: number;
  /** Largest frame the serial Link carries (bytes, before SLIP and CRC). Default 1024 (docs/wire.md). */
  maxFrame?: number;
}

export interface SerialStats {
  /** Bytes put on the line (both directions). */
  bytesSent: number;
  /** Bytes that reached a receiver (cut wires deliver fewer). */
  bytesDelivered: number;
  /** Bytes flipped by line noise. */
  bytesCorrupted: number;
  /** Frames the Link adapters sent / delivered. */
  framesSent: number;
  framesDelivered: number;
  /** Frames the receiving decoder rejected (bad CRC, bad escape, runt, too large). */
  framesRejected: number;
  /** Frames addressed to a node that is not at the other end. */
  misaddressed: number;
}

interface Transfer {
  wire: SerialWire;
  dest: SerialPort;
  bytes: Uint8Array;
  start: number;
  end: number;
}

/** The cable and its two UARTs. */
export class SerialWire {
  readonly baud: number;
  /** Mutable at run time. */
  corruptRate: number;
  readonly byteUs: number;
  readonly maxFrame: number;
  readonly a: SerialPort;
  readonly b: SerialPort;
  readonly stats: SerialStats = { bytesSent: 0, bytesDelivered: 0, bytesCorrupted: 0, framesSent: 0, framesDelivered: 0, framesRejected: 0, misaddressed: 0 };
  private isCut = false;
  private lastCutAt = -1;
  /** Raw byte observer (tests, debugging): called with every chunk a UART receives. */
  tap: ((to: NodeId, bytes: Uint8Array) => void) | null = null;

  constructor(
    private readonly ctx: SimContext,
    private readonly rng: Rng,
    nodeA: NodeId,
    nodeB: NodeId,
    opts: SerialOptions = {},
  ) {
    for (const n of [nodeA, nodeB]) {
      if (!Number.isInteger(n) || n < 1 || n > MAX_NODE_ID) throw new RangeError(`SerialWire: node id must be an integer 1..${MAX_NODE_ID}, got ${String(n)}`);
    }
    if (nodeA === nodeB) throw new RangeError(`SerialWire: both ends are node ${nodeA}`);
    this.baud = opts.baud ?? 115200;
    if (!Number.isFinite(this.baud) || this.baud < 50 || this.baud > 10_000_000) throw new RangeError(`SerialOptions.baud: expected 50..10000000, got ${String(opts.baud)}`);
    this.corruptRate = opts.corruptRate ?? 0;
    if (!(this.corruptRate >= 0 && this.corruptRate <= 1)) throw new RangeError(`SerialOptions.corruptRate: expected a probability in [0, 1], got ${String(opts.corruptRate)}`);
    this.maxFrame = opts.maxFrame ?? 1024;
    if (!Number.isInteger(this.maxFrame) || this.maxFrame < 1) throw new RangeError(`SerialOptions.maxFrame: expected a positive integer, got ${String(opts.maxFrame)}`);
    this.byteUs = 10_000_000 / this.baud;
    this.a = new SerialPort(this, ctx, nodeA, nodeB);
    this.b = new SerialPort(this, ctx, nodeB, nodeA);
  }

  get cutNow(): boolean {
    return this.isCut;
  }

  cut(): void {
    if (this.isCut) return;
    this.isCut = true;
    this.lastCutAt = this.ctx.sched.now;
    this.ctx.log(`serial ${this.a.node}-${this.b.node} cut`);
  }

  repair(): void {
    if (!this.isCut) return;
    this.isCut = false;
    this.ctx.log(`serial ${this.a.node}-${this.b.node} repaired`);
  }

  /** The port at `node`'s end. */
  portOf(node: NodeId): SerialPort {
    if (node === this.a.node) return this.a;
    if (node === this.b.node) return this.b;
    throw new RangeError(`SerialWire ${this.a.node}-${this.b.node}: node ${node} is not on this wire`);
  }

  /**
   * Puts raw bytes on the line from `from`'s UART. Returns the virtual time (µs) at
   * which the last byte arrives. Bytes sent into a cut wire are lost.
   */
  transmit(from: SerialPort, bytes: Uint8Array): number {
    const dest = from === this.a ? this.b : this.a;
    const now = this.ctx.sched.now;
    const start = Math.max(now, from.txBusyUntil);
    const end = Math.ceil(start + bytes.length * this.byteUs);
    from.txBusyUntil = end;
    this.stats.bytesSent += bytes.length;
    if (this.isCut) {
      this.ctx.log(`serial ${from.node}>${dest.node} ${bytes.length}B into cut wire`);
      return end;
    }
    let data = bytes;
    if (this.corruptRate > 0) data = this.corrupt(bytes);
    const t: Transfer = { wire: this, dest, bytes: data, start, end };
    this.ctx.sched.at(end, arrive, t);
    return end;
  }

  private corrupt(bytes: Uint8Array): Uint8Array {
    // Geometric skipping: one draw per corrupted byte rather than one per byte.
    const p = this.corruptRate;
    let out: Uint8Array | null = null;
    let i = p >= 1 ? 0 : Math.floor(Math.log(1 - this.rng.float()) / Math.log(1 - p));
    while (i < bytes.length) {
      if (out === null) out = bytes.slice();
      out[i] = out[i]! ^ (1 << this.rng.int(0, 7));
      this.stats.bytesCorrupted++;
      i += 1 + (p >= 1 ? 0 : Math.floor(Math.log(1 - this.rng.float()) / Math.log(1 - p)));
    }
    return out ?? bytes;
  }

  /** @internal */
  arrived(t: Transfer): void {
    let bytes = t.bytes;
    if (this.lastCutAt >= t.start) {
      // Cut while on the line: only the bytes that left before the cut get through.
      const n = Math.max(0, Math.floor((this.lastCutAt - t.start) / this.byteUs));
      bytes = bytes.subarray(0, Math.min(n, bytes.length));
    }
    if (bytes.length === 0) return;
    this.stats.bytesDelivered += bytes.length;
    this.tap?.(t.dest.node, bytes);
    t.dest.receive(bytes);
  }
}

function arrive(t: Transfer): void {
  t.wire.arrived(t);
}

/** One end of a wire: the board's UART. Each process gets a fresh `SerialLink`. */
export class SerialPort implements LinkPort {
  /** @internal Virtual time at which the transmitter is free. */
  txBusyUntil = 0;
  private current: SerialLink | null = null;

  constructor(
    readonly wire: SerialWire,
    private readonly ctx: SimContext,
    readonly node: NodeId,
    readonly peer: NodeId,
  ) {}

  open(proc: Proc): Link {
    this.current = new SerialLink(this, proc, this.ctx);
    return this.current;
  }

  processDied(_cause: DeathCause): void {
    this.current = null;
  }

  /** @internal Bytes from the line: to the open Link's decoder, if a process listens. */
  receive(bytes: Uint8Array): void {
    this.current?.bytesIn(bytes);
  }

  /** Puts raw bytes on the line (no framing). Returns the arrival time (µs) of the last byte. */
  writeRaw(bytes: Uint8Array): number {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`SerialPort.writeRaw: expected a Uint8Array, got ${typeof bytes}`);
    return this.wire.transmit(this, bytes);
  }
}

/** The `Link` one process sees on one wire ('serial'). `peer` is the board at the other end. */
export class SerialLink implements Link {
  readonly name = 'serial';
  readonly maxFrame: number;
  readonly peer: NodeId;
  private readonly decoder: SlipDecoder;
  private frameHandler: ((frame: Uint8Array) => void) | null = null;
  private eventHandler: ((ev: LinkEvent) => void) | null = null;
  private closed = false;

  constructor(
    private readonly port: SerialPort,
    private readonly proc: Proc,
    private readonly ctx: SimContext,
  ) {
    this.maxFrame = port.wire.maxFrame;
    this.peer = port.peer;
    this.decoder = new SlipDecoder(this.maxFrame);
    // A UART has no carrier: the link is 'up' as soon as the device is open.
    ctx.sched.after(0, () => this.eventIn({ kind: 'up' }));
  }

  send(to: NodeId, frame: Uint8Array): void {
    if (!Number.isInteger(to) || to < 1 || to > MAX_NODE_ID) throw new RangeError(`serial Link.send: 'to' must be a node id 1..${MAX_NODE_ID}, got ${String(to)}`);
    if (!(frame instanceof Uint8Array)) throw new TypeError(`serial Link.send: frame must be a Uint8Array, got ${typeof frame}`);
    if (frame.length > this.maxFrame) throw new RangeError(`serial Link.send: frame of ${frame.length} bytes exceeds maxFrame ${this.maxFrame}`);
    if (!this.proc.alive) return this.proc.stale('serial.send');
    if (this.closed) return;
    const wire = this.port.wire;
    if (to !== this.peer) {
      wire.stats.misaddressed++;
      this.ctx.log(`serial ${this.port.node}>${to} misaddressed (wire goes to ${this.peer})`);
      return;
    }
    wire.stats.framesSent++;
    this.port.writeRaw(slipEncode(frame));
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    if (typeof handler !== 'function') throw new TypeError('serial Link.onFrame: expected a function');
    this.frameHandler = handler;
  }

  onEvent(handler: (ev: LinkEvent) => void): void {
    if (typeof handler !== 'function') throw new TypeError('serial Link.onEvent: expected a function');
    this.eventHandler = handler;
  }

  close(done?: Done): void {
    if (!this.proc.alive) return this.proc.stale('serial.close');
    this.closed = true;
    if (done !== undefined) done(null);
  }

  /** @internal */
  bytesIn(bytes: Uint8Array): void {
    if (!this.proc.alive || this.closed) return;
    if (this.proc.stalled) return this.proc.hold(() => this.bytesIn(bytes));
    const wire = this.port.wire;
    for (const r of this.decoder.push(bytes)) {
      if (r.ok) {
        wire.stats.framesDelivered++;
        this.ctx.log(`serial ${this.peer}>${this.port.node} frame ${r.frame.length}`);
        this.frameHandler?.(r.frame);
      } else {
        wire.stats.framesRejected++;
        this.ctx.log(`serial ${this.peer}>${this.port.node} rejected ${r.reason}`);
      }
      // A handler may have killed the process (e.g. a crash injected from it).
      if (!this.proc.alive || this.closed) return;
    }
  }

  /** @internal */
  eventIn(ev: LinkEvent): void {
    if (this.proc.stalled) return this.proc.hold(() => this.eventIn(ev));
    if (this.proc.alive && !this.closed) this.eventHandler?.(ev);
  }
}
