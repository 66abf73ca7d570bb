/**
 * A serial relay board (protocol.ts) as HAL `Relay`s, over any byte transport: the
 * real backend (serial.ts: `serialport`) and the simulator (firmware-sim/relay-board.ts:
 * virtual-time bytes) use this same class, so the code tested in simulation is the
 * code that drives the board.
 *
 * Commands are serialized (replies carry no address): one operation at a time, queued.
 *   - `set(on)`: send the 4-byte switch command (the board does not answer it), wait
 *     `switchMs`, then query the status and check the channel: a switch is reported
 *     done only when the board confirms it. No answer within `timeoutMs` → failure.
 *   - `read()`: query the status.
 * Bytes that arrive while no reply is expected are dropped (counted), and after a
 * failed operation the next one waits `switchMs`, so the tail of a reply that came
 * after a timeout, or the rest of a garbled one, cannot be taken for the next reply. A status reply that cannot
 * come from such a board fails the operation with a `GarbledReplyError` naming the
 * bytes.
 */
import type { Cancel, Clock, Done, DoneWith, Relay } from '../interfaces.ts';
import { checkChannel, checkChannels, encodeSwitch, GarbledReplyError, STATUS_QUERY, StatusParser, type StatusFormat } from './protocol.ts';

/** Moves bytes to and from the board. `write` calls back once the bytes are handed to the OS (or failed). */
export interface ByteTransport {
  write(bytes: Uint8Array, done: Done): void;
  onData(fn: (chunk: Uint8Array) => void): void;
}

/**
 * How a channel is wired into the target's supply:
 *   - 'nc' (default): through the normally-closed contact: the target is powered while
 *     the coil is released. A board that loses USB power, or an unplugged relay board,
 *     leaves the targets powered: a dead fencer does not take the cluster down.
 *   - 'no': through the normally-open contact: powered only while the coil is held.
 */
export type Wiring = 'nc' | 'no';

export interface RelayBoardOptions {
  /** Board name in errors and relay names. Required (e.g. the device path). */
  name: string;
  /** Channels on the board (1..8). Required: a status reply is complete after this many. */
  channels: number;
  /** Answer deadline of one operation (ms). Default 1000: an 8-channel ASCII reply is ~80 bytes ≈ 85 ms at 9600 baud; USB latency and the MCU add tens of ms. */
  timeoutMs?: number;
  /** Pause between a switch command and the confirming status query (ms). Default 50: the MCU's reaction plus the relay's own 10 ms. */
  switchMs?: number;
  /** Status reply format. Default 'ascii' (LCUS-2/4/8). */
  statusFormat?: StatusFormat;
}

interface PendingOp {
  kind: 'set' | 'status';
  channel: number;
  energized: boolean;
  done: (err: Error | null, states?: boolean[]) => void;
}

export class RelayBoardClient {
  readonly name: string;
  readonly channels: number;
  readonly timeoutMs: number;
  readonly switchMs: number;
  readonly statusFormat: StatusFormat;
  private readonly queue: PendingOp[] = [];
  private current: { op: PendingOp; parser: StatusParser | null; cancel: Cancel | null; finished: boolean } | null = null;
  private closed = false;
  /** Counters for status and tests. */
  readonly stats = { operations: 0, timeouts: 0, garbled: 0, strayBytes: 0 };

  constructor(
    private readonly transport: ByteTransport,
    private readonly clock: Pick<Clock, 'setTimer'>,
    opts: RelayBoardOptions,
  ) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('RelayBoardClient: expected options { name, channels }');
    if (typeof opts.name !== 'string' || opts.name.length === 0) throw new TypeError(`RelayBoardClient name: expected a non-empty string, got ${typeof opts.name}`);
    this.name = opts.name;
    this.channels = checkChannels(opts.channels, `relay board ${this.name} channels`);
    this.timeoutMs = opts.timeoutMs ?? 1000;
    if (!(typeof this.timeoutMs === 'number' && this.timeoutMs > 0 && this.timeoutMs <= 60_000)) throw new RangeError(`relay board ${this.name} timeoutMs: expected 1..60000 ms, got ${String(opts.timeoutMs)}`);
    this.switchMs = opts.switchMs ?? 50;
    if (!(typeof this.switchMs === 'number' && this.switchMs >= 0 && this.switchMs <= 10_000)) throw new RangeError(`relay board ${this.name} switchMs: expected 0..10000 ms, got ${String(opts.switchMs)}`);
    this.statusFormat = opts.statusFormat ?? 'ascii';
    if (this.statusFormat !== 'ascii' && this.statusFormat !== 'binary') throw new RangeError(`relay board ${this.name} statusFormat: expected 'ascii' or 'binary', got ${String(opts.statusFormat)}`);
    transport.onData((chunk) => this.onData(chunk));
  }

  /** Energizes (true) or releases (false) the coil of `channel`, confirmed by a status query. */
  switchChannel(channel: number, energized: boolean, done: Done): void {
    checkChannel(channel, this.channels, `relay board ${this.name} channel`);
    if (typeof energized !== 'boolean') throw new TypeError(`relay board ${this.name}: energized must be a boolean, got ${typeof energized}`);
    if (typeof done !== 'function') throw new TypeError(`relay board ${this.name}: done must be a function`);
    this.enqueue({ kind: 'set', channel, energized, done: (err) => done(err) });
  }

  /** Reads every channel's coil state (index 0 = channel 1). */
  status(done: DoneWith<boolean[]>): void {
    if (typeof done !== 'function') throw new TypeError(`relay board ${this.name}: done must be a function`);
    this.enqueue({ kind: 'status', channel: 0, energized: false, done });
  }

  /** A HAL `Relay` for one channel: `set(true)` = target powered, per `wiring`. */
  relay(channel: number, opts: { wiring?: Wiring; name?: string } = {}): Relay {
    checkChannel(channel, this.channels, `relay board ${this.name} channel`);
    const wiring = opts.wiring ?? 'nc';
    if (wiring !== 'nc' && wiring !== 'no') throw new RangeError(`relay board ${this.name} channel ${channel} wiring: expected 'nc' or 'no', got ${String(wiring)}`);
    const name = opts.name ?? `${this.name}#${channel}`;
    const energizedFor = (powered: boolean) => (wiring === 'nc' ? !powered : powered);
    return {
      name,
      set: (on: boolean, done: Done) => {
        if (typeof on !== 'boolean') throw new TypeError(`Relay ${name}.set: 'on' must be a boolean, got ${typeof on}`);
        this.switchChannel(channel, energizedFor(on), done);
      },
      read: (done: DoneWith<boolean>) => {
        if (typeof done !== 'function') throw new TypeError(`Relay ${name}.read: done must be a function`);
        this.status((err, states) => {
          if (err !== null || states === undefined) return done(err ?? new Error(`relay board ${this.name}: no status`));
          done(null, energizedFor(states[channel - 1]!) === true ? true : false);
        });
      },
    };
  }

  /** Fails queued and running operations; later calls fail at once. */
  close(): void {
    this.closed = true;
    const err = new Error(`relay board ${this.name}: closed`);
    const cur = this.current;
    if (cur !== null) this.finish(cur, err);
    for (const op of this.queue.splice(0)) op.done(err);
  }

  private enqueue(op: PendingOp): void {
    if (this.closed) {
      this.clock.setTimer(0, () => op.done(new Error(`relay board ${this.name}: closed`)));
      return;
    }
    this.queue.push(op);
    if (this.current === null) this.startNext();
  }

  private startNext(): void {
    const op = this.queue.shift();
    if (op === undefined) return;
    this.stats.operations++;
    const cur = { op, parser: null as StatusParser | null, cancel: null as Cancel | null, finished: false };
    this.current = cur;
    cur.cancel = this.clock.setTimer(this.timeoutMs, () => {
      if (cur.finished) return;
      this.stats.timeouts++;
      const what = op.kind === 'set' ? `switching channel ${op.channel} ${op.energized ? 'on' : 'off'} (confirming status query)` : 'status query';
      this.finish(cur, new Error(`relay board ${this.name}: no answer to ${what} within ${this.timeoutMs} ms (board unplugged, wrong port, or a board without status query?)`));
    });
    const query = () => {
      if (cur.finished) return;
      cur.parser = new StatusParser(this.name, this.channels, this.statusFormat);
      this.transport.write(Uint8Array.of(STATUS_QUERY), (err) => {
        if (err !== null) this.finish(cur, new Error(`relay board ${this.name}: write failed: ${err.message}`));
      });
    };
    if (op.kind === 'status') return query();
    this.transport.write(encodeSwitch(op.channel, op.energized), (err) => {
      if (cur.finished) return;
      if (err !== null) return this.finish(cur, new Error(`relay board ${this.name}: write failed: ${err.message}`));
      this.clock.setTimer(this.switchMs, query);
    });
  }

  private onData(chunk: Uint8Array): void {
    const cur = this.current;
    if (cur === null || cur.parser === null || cur.finished) {
      this.stats.strayBytes += chunk.length;
      return;
    }
    let states: boolean[] | undefined;
    try {
      states = cur.parser.push(chunk);
    } catch (e) {
      this.stats.garbled++;
      return this.finish(cur, e instanceof GarbledReplyError ? e : new Error(String(e)));
    }
    if (states === undefined) return;
    const op = cur.op;
    if (op.kind === 'set' && states[op.channel - 1] !== op.energized) {
      return this.finish(cur, new Error(`relay board ${this.name}: channel ${op.channel} reads ${states[op.channel - 1] ? 'on' : 'off'} after the command to switch it ${op.energized ? 'on' : 'off'}`));
    }
    this.finish(cur, null, states);
  }

  private finish(cur: NonNullable<RelayBoardClient['current']>, err: Error | null, states?: boolean[]): void {
    if (cur.finished) return;
    cur.finished = true;
    cur.cancel?.();
    if (this.current === cur) this.current = null;
    // After a failure, wait `switchMs` before the next operation so that the rest of a
    // late or garbled reply drains (counted as stray bytes) instead of being read as
    // the next reply.
    const busy = { op: cur.op, parser: null, cancel: null, finished: true };
    if (err !== null && this.current === null && !this.closed) {
      this.current = busy;
      this.clock.setTimer(this.switchMs, () => {
        if (this.current !== busy) return;
        this.current = null;
        if (!this.closed) this.startNext();
      });
    }
    try {
      cur.op.done(err, states);
    } finally {
      if (this.current === null && !this.closed) this.startNext();
    }
  }
}
