/**
 * The byte protocol of the common USB/serial relay modules (LC-Technology "LCUS-1/2/4/8"
 * boards with a CH340 USB-serial chip and a small MCU; sold under many names).
 *
 * Facts, from the vendor's product notes as reproduced by sellers and users
 * (e.g. the LCUS-1 listing text "LC USB switch communication protocol", and
 * open-source drivers for LCUS-2/4/8 boards):
 *   - 9600 baud, 8N1;
 *   - switch command, 4 bytes: `A0 <channel 1..8> <00 = off | 01 = on> <checksum>`,
 *     checksum = (A0 + channel + state) & 0xFF; e.g. `A0 01 01 A2` closes relay 1;
 *   - the board does **not** answer a switch command;
 *   - status query: the single byte `FF`. Multi-channel boards answer one ASCII line
 *     per channel, `CH<n>:ON` or `CH<n>:OFF`, padded with spaces and ended by CR LF
 *     (e.g. `CH1:OFF \r\nCH2:ON  \r\n`); some firmware answers one byte per channel
 *     (00/01) instead — `statusFormat: 'binary'`. Some single-channel boards do not
 *     answer the query at all: they cannot be verified and are unfit for fencing
 *     (a status query that times out is a failure here, on purpose).
 *
 * "On" here means the relay coil is energized (the NO contact closed). Which way that
 * powers the target depends on the wiring; see `Wiring` in client.ts.
 */

export const BAUD_RATE = 9600;
export const START = 0xa0;
export const STATUS_QUERY = 0xff;
export const MAX_CHANNELS = 8;

export type StatusFormat = 'ascii' | 'binary';

export function checkChannel(ch: unknown, channels: number, what = 'channel'): number {
  if (typeof ch !== 'number' || !Number.isInteger(ch) || ch < 1 || ch > channels) {
    throw new RangeError(`${what}: expected a channel 1..${channels}, got ${typeof ch === 'number' ? ch : typeof ch}`);
  }
  return ch;
}

export function checkChannels(n: unknown, what = 'channels'): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CHANNELS) {
    throw new RangeError(`${what}: expected a channel count 1..${MAX_CHANNELS}, got ${typeof n === 'number' ? n : typeof n}`);
  }
  return n;
}

/** The 4-byte switch command. */
export function encodeSwitch(channel: number, energized: boolean): Uint8Array {
  checkChannel(channel, MAX_CHANNELS);
  const state = energized ? 1 : 0;
  return Uint8Array.of(START, channel, state, (START + channel + state) & 0xff);
}

/** The status reply a board with `states` (index 0 = channel 1) sends. */
export function encodeStatus(states: readonly boolean[], format: StatusFormat): Uint8Array {
  if (format === 'binary') return Uint8Array.from(states.map((s) => (s ? 1 : 0)));
  const text = states.map((s, i) => `CH${i + 1}:${s ? 'ON ' : 'OFF'} \r\n`).join('');
  return new TextEncoder().encode(text);
}

export function hex(bytes: Uint8Array, max = 32): string {
  const parts = [...bytes.subarray(0, max)].map((b) => b.toString(16).padStart(2, '0'));
  return parts.join(' ') + (bytes.length > max ? ` … (${bytes.length} bytes)` : '');
}

/** Raised for a status reply that is not what a board of this kind sends. */
export class GarbledReplyError extends Error {
  constructor(
    readonly board: string,
    readonly bytes: Uint8Array,
    detail: string,
  ) {
    super(`relay board ${board}: garbled status reply (${detail}); got ${hex(bytes)}`);
    this.name = 'GarbledReplyError';
  }
}

/**
 * Incremental parser of one status reply for a board with `channels` channels.
 * `push` returns the states once complete, undefined while more bytes are needed,
 * and throws `GarbledReplyError` as soon as the bytes cannot be a valid reply.
 */
export class StatusParser {
  private buf: number[] = [];
  constructor(
    readonly board: string,
    readonly channels: number,
    readonly format: StatusFormat,
  ) {
    checkChannels(channels, `relay board ${board} channels`);
  }

  /** Largest reply we accept, so that a babbling line cannot grow the buffer without end. */
  private get maxBytes(): number {
    return this.format === 'binary' ? this.channels : this.channels * 16;
  }

  push(chunk: Uint8Array): boolean[] | undefined {
    for (const b of chunk) this.buf.push(b);
    const bytes = Uint8Array.from(this.buf);
    if (this.format === 'binary') {
      for (const b of this.buf) if (b > 1) throw new GarbledReplyError(this.board, bytes, `byte 0x${b.toString(16).padStart(2, '0')} is neither 00 nor 01`);
      if (this.buf.length > this.channels) throw new GarbledReplyError(this.board, bytes, `expected ${this.channels} bytes`);
      return this.buf.length === this.channels ? this.buf.map((b) => b === 1) : undefined;
    }
    if (this.buf.length > this.maxBytes) throw new GarbledReplyError(this.board, bytes, `longer than ${this.maxBytes} bytes`);
    for (const b of this.buf) {
      if (b !== 0x0d && b !== 0x0a && (b < 0x20 || b > 0x7e)) throw new GarbledReplyError(this.board, bytes, `non-text byte 0x${b.toString(16).padStart(2, '0')}`);
    }
    const text = String.fromCharCode(...this.buf);
    const lines = text.split('\r\n');
    const complete = lines.slice(0, -1);
    const states: boolean[] = [];
    for (const [i, line] of complete.entries()) {
      const m = /^CH([1-8]):(ON|OFF) *$/.exec(line);
      if (m === null) throw new GarbledReplyError(this.board, bytes, `line ${i + 1} ${JSON.stringify(line)} is not "CH<n>:ON|OFF"`);
      if (Number(m[1]) !== i + 1) throw new GarbledReplyError(this.board, bytes, `line ${i + 1} names channel ${m[1]}`);
      states.push(m[2] === 'ON');
    }
    // the unfinished last line must still be a prefix of a valid line
    const tail = lines.at(-1)!;
    if (!/^(C(H([1-8](:(O(N *|F(F *)?)?)?)?)?)?)?\r?$/.test(tail)) throw new GarbledReplyError(this.board, bytes, `unexpected text ${JSON.stringify(tail)}`);
    if (complete.length > this.channels) throw new GarbledReplyError(this.board, bytes, `more than ${this.channels} channel lines`);
    return complete.length === this.channels ? states : undefined;
  }
}
