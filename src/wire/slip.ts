/**
 * Serial-link framing (docs/wire.md): SLIP (RFC 1055) around `frame ‖ CRC-32`.
 *
 * The CRC is zlib's CRC-32 (IEEE 802.3 polynomial), appended little-endian. SLIP
 * gives frame boundaries that resynchronize after line noise (every END starts
 * over); the CRC catches the byte errors a UART lets through, before the frame
 * costs an HMAC. The frame's own tag still authenticates it: the CRC is not security.
 *
 * Encoding puts END at both ends (RFC 1055 suggests a leading END to flush noise
 * that accumulated on the line). Decoding is stricter than RFC 1055: an ESC followed
 * by anything but ESC_END/ESC_ESC is a protocol violation ('bad-escape'), not a
 * byte to pass through.
 */
import { crc32 } from 'node:zlib';

export const SLIP_END = 0xc0;
export const SLIP_ESC = 0xdb;
export const SLIP_ESC_END = 0xdc;
export const SLIP_ESC_ESC = 0xdd;
export const CRC_BYTES = 4;

export type SlipResult =
  | { ok: true; frame: Uint8Array }
  | { ok: false; reason: 'crc' | 'too-large' | 'bad-escape' | 'runt' };

/** frame ‖ CRC-32(frame) little-endian, SLIP-escaped, between END bytes. */
export function slipEncode(frame: Uint8Array): Uint8Array {
  if (!(frame instanceof Uint8Array)) throw new TypeError(`slipEncode: expected a Uint8Array frame, got ${typeof frame}`);
  const crc = crc32(frame) >>> 0;
  const raw = new Uint8Array(frame.length + CRC_BYTES);
  raw.set(frame);
  raw[frame.length] = crc & 0xff;
  raw[frame.length + 1] = (crc >>> 8) & 0xff;
  raw[frame.length + 2] = (crc >>> 16) & 0xff;
  raw[frame.length + 3] = (crc >>> 24) & 0xff;
  let escapes = 0;
  for (const x of raw) if (x === SLIP_END || x === SLIP_ESC) escapes++;
  const out = new Uint8Array(raw.length + escapes + 2);
  let o = 0;
  out[o++] = SLIP_END;
  for (const x of raw) {
    if (x === SLIP_END) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_END;
    } else if (x === SLIP_ESC) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_ESC;
    } else {
      out[o++] = x;
    }
  }
  out[o++] = SLIP_END;
  return out;
}

/**
 * Streaming decoder: push bytes as they arrive, in chunks of any size; get back the
 * frames (CRC checked and removed) and the errors, in stream order.
 *   - 'crc': the CRC does not match (line noise, or garbage before the first END);
 *   - 'runt': fewer than 4 bytes between two ENDs (no room for a CRC);
 *   - 'bad-escape': ESC followed by a byte other than ESC_END/ESC_ESC;
 *   - 'too-large': more than maxFrame + 4 unescaped bytes; reported once, the rest
 *     is discarded up to the next END.
 * Empty frames (END END) are ignored: they are the normal separator/flush.
 * Memory: one buffer of maxFrame + 4 bytes, allocated once.
 */
export class SlipDecoder {
  private readonly buf: Uint8Array;
  private len = 0;
  private escaped = false;
  private badEscape = false;
  private overflow = false;

  constructor(readonly maxFrame: number) {
    if (!Number.isInteger(maxFrame) || maxFrame < 1 || maxFrame > 16 * 1024 * 1024) {
      throw new RangeError(`SlipDecoder: maxFrame must be an integer 1..16777216, got ${String(maxFrame)}`);
    }
    this.buf = new Uint8Array(maxFrame + CRC_BYTES);
  }

  push(bytes: Uint8Array): SlipResult[] {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`SlipDecoder.push: expected a Uint8Array, got ${typeof bytes}`);
    const out: SlipResult[] = [];
    for (const x of bytes) {
      if (x === SLIP_END) {
        this.endFrame(out);
        continue;
      }
      if (this.overflow) continue;
      let v = x;
      if (this.escaped) {
        this.escaped = false;
        if (x === SLIP_ESC_END) v = SLIP_END;
        else if (x === SLIP_ESC_ESC) v = SLIP_ESC;
        else {
          this.badEscape = true;
          continue;
        }
      } else if (x === SLIP_ESC) {
        this.escaped = true;
        continue;
      }
      if (this.badEscape) continue; // the frame is lost; wait for END
      if (this.len >= this.buf.length) {
        this.overflow = true;
        out.push({ ok: false, reason: 'too-large' });
        continue;
      }
      this.buf[this.len++] = v;
    }
    return out;
  }

  private endFrame(out: SlipResult[]): void {
    const { len, overflow } = this;
    const bad = this.badEscape || this.escaped;
    this.len = 0;
    this.escaped = false;
    this.badEscape = false;
    this.overflow = false;
    if (overflow) return; // already reported
    if (bad) {
      out.push({ ok: false, reason: 'bad-escape' });
      return;
    }
    if (len === 0) return;
    if (len < CRC_BYTES) {
      out.push({ ok: false, reason: 'runt' });
      return;
    }
    const n = len - CRC_BYTES;
    const b = this.buf;
    const got = (b[n]! | (b[n + 1]! << 8) | (b[n + 2]! << 16) | (b[n + 3]! << 24)) >>> 0;
    const frame = b.slice(0, n);
    if ((crc32(frame) >>> 0) !== got) {
      out.push({ ok: false, reason: 'crc' });
      return;
    }
    out.push({ ok: true, frame });
  }
}
