/**
 * Emulation of an LCUS-style serial/USB relay board (hal/relay-board/protocol.ts),
 * answering byte for byte like the board's MCU, in three settings:
 *
 *   - `RelayBoardFirmware`: the pure model — bytes in, reply bytes out, channel
 *     states, fault knobs (`mute`: the MCU hangs, neither acts nor answers;
 *     `garble`: replies corrupted on the line);
 *   - `attachRelayBoardEmulation(path)`: a runner that serves the model on a real
 *     serial device, e.g. one end of a socat pty pair, so that the real backend is
 *     tested through real `serialport`;
 *   - `wireRelayBoard(world, controller, targets)`: in the simulator, a relay board
 *     plugged into `controller`'s USB with channel i switching `targets[i-1]`'s supply.
 *     The controller's processes see each channel as a HAL `Relay` (in
 *     `hal.relays`, after its GPIO relays wired before it) that speaks the byte
 *     protocol through the very `RelayBoardClient` the real backend uses, with 9600
 *     baud timing in virtual time.
 *
 * Firmware behaviour (as the real boards): a switch frame `A0 ch st sum` with a bad
 * checksum, a channel the board does not have, or a state other than 0/1 is ignored
 * silently; stray bytes between frames are skipped (the parser resynchronizes on
 * `A0`); `FF` outside a frame is the status query. The board powers up with every
 * coil released, and loses its state when its USB power goes (the controller's power
 * cut or reset).
 */
import { SerialPort } from 'serialport';
import type { Done, Relay } from '../hal/interfaces.ts';
import { RelayBoardClient, type ByteTransport, type Wiring } from '../hal/relay-board/client.ts';
import { BAUD_RATE, checkChannels, encodeStatus, START, STATUS_QUERY, type StatusFormat } from '../hal/relay-board/protocol.ts';
import type { NodeId } from '../src/types.ts';
import type { Board } from './board.ts';
import { RelayHw } from './power.ts';
import type { Proc } from './proc.ts';
import type { SimContext } from './scheduler.ts';
import type { World } from './world.ts';

export interface RelayBoardFirmwareOptions {
  /** Channels (1..8). Default 1. */
  channels?: number;
  /** Status reply format. Default 'ascii'. */
  statusFormat?: StatusFormat;
}

export class RelayBoardFirmware {
  readonly channels: number;
  readonly statusFormat: StatusFormat;
  /** Coil states, index 0 = channel 1. */
  readonly states: boolean[];
  /** Fault: the MCU hangs: bytes are ignored, nothing switches, nothing answers. */
  mute = false;
  /** Fault: replies are corrupted on the line (high bit flipped on every byte). */
  garble = false;
  /** Called when a coil changes. */
  onSwitch: ((channel: number, energized: boolean) => void) | null = null;
  /** Counters. */
  readonly stats = { frames: 0, badFrames: 0, queries: 0, strayBytes: 0 };
  private frame: number[] = [];

  constructor(opts: RelayBoardFirmwareOptions = {}) {
    this.channels = checkChannels(opts.channels ?? 1, 'RelayBoardFirmware channels');
    this.statusFormat = opts.statusFormat ?? 'ascii';
    if (this.statusFormat !== 'ascii' && this.statusFormat !== 'binary') throw new RangeError(`RelayBoardFirmware statusFormat: expected 'ascii' or 'binary', got ${String(opts.statusFormat)}`);
    this.states = new Array<boolean>(this.channels).fill(false);
  }

  /** Bytes arrive from the host; returns the bytes the board sends back (maybe none). */
  receive(bytes: Uint8Array): Uint8Array {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('RelayBoardFirmware.receive: expected a Uint8Array');
    if (this.mute) return new Uint8Array(0);
    const out: number[] = [];
    for (const b of bytes) {
      if (this.frame.length > 0) {
        this.frame.push(b);
        if (this.frame.length === 4) {
          this.execute(this.frame);
          this.frame = [];
        }
      } else if (b === START) this.frame.push(b);
      else if (b === STATUS_QUERY) {
        this.stats.queries++;
        for (const r of encodeStatus(this.states, this.statusFormat)) out.push(this.garble ? r ^ 0x80 : r);
      } else this.stats.strayBytes++;
    }
    return Uint8Array.from(out);
  }

  private execute(f: number[]): void {
    const [, ch, st, sum] = f as [number, number, number, number];
    if (((START + ch + st) & 0xff) !== sum || ch < 1 || ch > this.channels || st > 1) {
      this.stats.badFrames++;
      return;
    }
    this.stats.frames++;
    const on = st === 1;
    if (this.states[ch - 1] === on) return;
    this.states[ch - 1] = on;
    this.onSwitch?.(ch, on);
  }

  /** USB power lost: every coil released, a half-received frame forgotten. */
  reset(): void {
    this.frame = [];
    for (let i = 0; i < this.channels; i++) {
      if (this.states[i]) {
        this.states[i] = false;
        this.onSwitch?.(i + 1, false);
      }
    }
  }
}

// ---- runner on a real serial device --------------------------------------------------

export interface RelayBoardEmulation {
  readonly firmware: RelayBoardFirmware;
  readonly path: string;
  close(): Promise<void>;
}

/** Serves a `RelayBoardFirmware` on the serial device `path` (e.g. a socat pty). */
export function attachRelayBoardEmulation(path: string, opts: RelayBoardFirmwareOptions & { baudRate?: number } = {}): Promise<RelayBoardEmulation> {
  if (typeof path !== 'string' || path.length === 0) return Promise.reject(new TypeError(`attachRelayBoardEmulation path: expected a device path, got ${typeof path}`));
  let firmware: RelayBoardFirmware;
  try {
    firmware = new RelayBoardFirmware(opts);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate: opts.baudRate ?? BAUD_RATE, autoOpen: false });
    port.open((err) => {
      if (err) return reject(new Error(`relay board emulation: cannot open ${path}: ${err.message}`));
      port.on('data', (chunk: Buffer) => {
        const reply = firmware.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (reply.length > 0 && port.isOpen) port.write(Buffer.from(reply));
      });
      port.on('error', () => {
        /* the test sees it as a silent board */
      });
      resolve({
        firmware,
        path,
        close: () =>
          new Promise<void>((r) => {
            port.removeAllListeners('data');
            if (!port.isOpen) return r();
            port.close(() => r());
          }),
      });
    });
  });
}

// ---- in the simulator ------------------------------------------------------------------

export interface WireRelayBoardOptions {
  /** Board name (HAL relay names are `<name>#<channel>`). Default `relayboard:<controller>`. */
  name?: string;
  /** Channels on the board; at least `targets.length`. Default `targets.length`. */
  channels?: number;
  /** How each target's supply is wired. Default 'nc' (see hal/relay-board/client.ts). */
  wiring?: Wiring;
  statusFormat?: StatusFormat;
  /** Client timeout (ms). Default 1000, as the real backend. */
  timeoutMs?: number;
  /** Relay contact delay (ms). Default 10 (the boards' SRD-05VDC relays). */
  switchDelayMs?: number;
  /** Line speed for byte timing. Default 9600. */
  baudRate?: number;
}

/** One channel: a relay whose coil the board's MCU drives (not a GPIO of the controller). */
export class RelayBoardChannelHw extends RelayHw {
  constructor(
    ctx: SimContext,
    controller: Board,
    target: Board,
    readonly board: SimRelayBoard,
    readonly channel: number,
    opts: { name: string; normallyClosed: boolean; switchDelayMs: number },
  ) {
    super(ctx, controller, target, opts);
  }

  /** The MCU changed the coil. */
  coilFromBoard(energized: boolean): void {
    this.drive(this.normallyClosed ? !energized : energized);
  }

  /** The controller lost power or reset: the USB-powered board loses its state too. */
  override controllerReset(): void {
    this.board.firmware.reset();
    super.controllerReset();
  }

  /** The HAL `Relay` the controller's process sees: the serial protocol, not a GPIO. */
  override facade(proc: Proc): Relay {
    return this.board.clientFor(proc).relay(this.channel, { wiring: this.normallyClosed ? 'nc' : 'no', name: this.name });
  }
}

export class SimRelayBoard {
  readonly name: string;
  readonly firmware: RelayBoardFirmware;
  readonly channelsHw: RelayBoardChannelHw[] = [];
  private readonly clients = new WeakMap<Proc, RelayBoardClient>();
  private readonly usPerByte: number;

  constructor(
    private readonly ctx: SimContext,
    readonly controller: NodeId,
    private readonly opts: WireRelayBoardOptions & { name: string; channels: number },
  ) {
    this.name = opts.name;
    this.firmware = new RelayBoardFirmware({ channels: opts.channels, statusFormat: opts.statusFormat ?? 'ascii' });
    const baud = opts.baudRate ?? BAUD_RATE;
    if (!Number.isInteger(baud) || baud < 50 || baud > 4_000_000) throw new RangeError(`wireRelayBoard baudRate: expected an integer 50..4000000, got ${String(opts.baudRate)}`);
    this.usPerByte = Math.ceil((10 * 1e6) / baud); // 8N1: 10 bits per byte
    this.firmware.onSwitch = (ch, on) => {
      ctx.log(`relayboard ${this.name} ch${ch}=${on ? 1 : 0}`);
      this.channelsHw.find((c) => c.channel === ch)?.coilFromBoard(on);
    };
  }

  /** @internal The protocol client of one process of the controller (one per incarnation). */
  clientFor(proc: Proc): RelayBoardClient {
    let c = this.clients.get(proc);
    if (c !== undefined) return c;
    const ctx = this.ctx;
    const sched = ctx.sched;
    const handlers: Array<(b: Uint8Array) => void> = [];
    // The UART line is busy until `lineFreeAt` in each direction.
    let txFree = 0;
    let rxFree = 0;
    const transport: ByteTransport = {
      write: (bytes: Uint8Array, done: Done) => {
        if (!proc.alive) return proc.stale(`relayboard.write ${this.name}`);
        const start = Math.max(sched.now, txFree);
        txFree = start + bytes.length * this.usPerByte;
        const copy = bytes.slice();
        sched.after(txFree - sched.now, () => {
          const reply = this.firmware.receive(copy);
          proc.deliver(() => done(null));
          if (reply.length === 0) return;
          const rs = Math.max(sched.now, rxFree);
          rxFree = rs + reply.length * this.usPerByte;
          sched.after(rxFree - sched.now, () => {
            proc.deliver(() => {
              for (const h of handlers) h(reply);
            });
          });
        });
      },
      onData: (fn) => void handlers.push(fn),
    };
    const clock = {
      setTimer: (ms: number, fn: () => void) => {
        const ev = sched.after(Math.max(0, Math.round(ms * 1000)), () => {
          proc.deliver(fn);
        });
        return () => ev.cancel();
      },
    };
    c = new RelayBoardClient(transport, clock, { name: this.name, channels: this.firmware.channels, timeoutMs: this.opts.timeoutMs ?? 1000, statusFormat: this.opts.statusFormat ?? 'ascii' });
    this.clients.set(proc, c);
    return c;
  }
}

/**
 * Plugs a relay board into `controller`'s USB; channel i switches `targets[i-1]`'s
 * supply. Like all wiring, wire before the boards boot (it appears in the HAL of
 * processes booted after this call).
 */
export function wireRelayBoard(world: World, controller: NodeId, targets: NodeId[], opts: WireRelayBoardOptions = {}): SimRelayBoard {
  if (!Array.isArray(targets) || targets.length === 0) throw new RangeError(`wireRelayBoard targets: expected a non-empty array of board ids, got ${String(targets)}`);
  const channels = checkChannels(opts.channels ?? targets.length, 'wireRelayBoard channels');
  if (channels < targets.length) throw new RangeError(`wireRelayBoard: ${targets.length} targets do not fit on ${channels} channels`);
  const wiring = opts.wiring ?? 'nc';
  if (wiring !== 'nc' && wiring !== 'no') throw new RangeError(`wireRelayBoard wiring: expected 'nc' or 'no', got ${String(wiring)}`);
  const ctrl = world.board(controller);
  const name = opts.name ?? `relayboard:${controller}`;
  const board = new SimRelayBoard(world.ctx, controller, { ...opts, name, channels });
  targets.forEach((t, i) => {
    if (t === controller) throw new RangeError(`wireRelayBoard: a board cannot switch its own power (${t})`);
    const tb = world.board(t);
    const ch = new RelayBoardChannelHw(world.ctx, ctrl, tb, board, i + 1, { name: `${name}#${i + 1}`, normallyClosed: wiring === 'nc', switchDelayMs: opts.switchDelayMs ?? 10 });
    board.channelsHw.push(ch);
    ctrl.addRelayOutput(ch);
    tb.addFeed(ch);
    world.relays.push(ch);
    tb.updateRail();
  });
  return board;
}
