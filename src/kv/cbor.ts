/**
 * The strict CBOR (RFC 8949) subset that the state machine's commands and snapshots
 * use: unsigned integers up to Number.MAX_SAFE_INTEGER, byte strings, UTF-8 text
 * strings and arrays, all of definite length and in preferred (shortest) form
 * (RFC 8949 §4.2.1), plus null. Output is ordinary CBOR that any decoder (cbor-x
 * included) reads.
 *
 * Why not cbor-x here: commands are read back from the replicated log, where a
 * corrupted or hostile entry must become a counted no-op, never a crash or a huge
 * allocation. cbor-x trusts length heads (an array head can make it preallocate
 * a very large array before noticing the input is short), and it writes Uint8Array
 * as tag 64. This reader trusts no length: a string must fit in the remaining
 * input, an array may claim at most one element per remaining byte, and arrays grow
 * element by element, so decoding allocates O(input size). The nesting depth is
 * bounded, so recursion is too.
 *
 * Determinism: the writer always picks the shortest head, so equal values give equal
 * bytes — the snapshot relies on it.
 */

export type Cbor = number | string | Uint8Array | null | Cbor[];

/** Deepest nesting a reader accepts (snapshot: root → table → row = 3). */
export const MAX_DEPTH = 4;

/** The writer is shared with the wire format (one implementation of the shortest-head rules). */
export { CborWriter, utf8Encoder } from '../wire/cbor.ts';
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type CborResult = { ok: true; value: Cbor } | { ok: false; error: string };

class Malformed extends Error {}

/**
 * Decodes exactly one item that must span all of `data`. Never throws: every
 * problem (truncation, trailing bytes, unsupported type, non-shortest head, bad
 * UTF-8, too deep) comes back as `{ok: false, error}` naming the byte offset.
 */
export function readCbor(data: Uint8Array): CborResult {
  const r = new KvCborReader(data);
  try {
    const value = r.item(0);
    if (r.pos !== data.length) return { ok: false, error: `${data.length - r.pos} trailing bytes after the item (ends at byte ${r.pos})` };
    return { ok: true, value };
  } catch (e) {
    if (e instanceof Malformed) return { ok: false, error: e.message };
    return { ok: false, error: `unexpected decoder failure: ${String(e)}` };
  }
}

/**
 * readCbor's cursor. A class rather than closures: commands are decoded on every
 * applied entry, and per-call closures (plus a [major, n] tuple per head) showed in
 * the simulator's profile. The head's result is left in `major` / `n`.
 */
class KvCborReader {
  pos = 0;
  major = 0;
  n = 0;
  constructor(private readonly data: Uint8Array) {}

  private need(n: number, what: string): void {
    if (n > this.data.length - this.pos) throw new Malformed(`truncated ${what} at byte ${this.pos}: needs ${n} bytes, ${this.data.length - this.pos} left`);
  }

  private head(): void {
    const data = this.data;
    this.need(1, 'item head');
    const start = this.pos;
    const b = data[this.pos++]!;
    const major = b >> 5;
    const info = b & 0x1f;
    if (major === 7) {
      if (info === 22) {
        this.major = 7;
        this.n = 22;
        return;
      }
      throw new Malformed(`unsupported simple/float value 0x${b.toString(16)} at byte ${start}`);
    }
    let n: number;
    if (info < 24) n = info;
    else if (info === 24) {
      this.need(1, 'head argument');
      n = data[this.pos++]!;
      if (n < 24) throw new Malformed(`non-shortest head at byte ${start}`);
    } else if (info === 25) {
      this.need(2, 'head argument');
      const pos = this.pos;
      n = (data[pos]! << 8) | data[pos + 1]!;
      this.pos += 2;
      if (n < 0x100) throw new Malformed(`non-shortest head at byte ${start}`);
    } else if (info === 26) {
      this.need(4, 'head argument');
      const pos = this.pos;
      n = ((data[pos]! << 24) >>> 0) + (data[pos + 1]! << 16) + (data[pos + 2]! << 8) + data[pos + 3]!;
      this.pos += 4;
      if (n < 0x10000) throw new Malformed(`non-shortest head at byte ${start}`);
    } else if (info === 27) {
      this.need(8, 'head argument');
      const pos = this.pos;
      let hi = 0;
      let lo = 0;
      for (let i = 0; i < 4; i++) hi = hi * 256 + data[pos + i]!;
      for (let i = 4; i < 8; i++) lo = lo * 256 + data[pos + i]!;
      this.pos += 8;
      n = hi * 0x100000000 + lo;
      if (hi >= 0x200000) throw new Malformed(`integer at byte ${start} exceeds 2^53-1`);
      if (n < 0x100000000) throw new Malformed(`non-shortest head at byte ${start}`);
    } else {
      throw new Malformed(`indefinite length or reserved head 0x${b.toString(16)} at byte ${start}`);
    }
    this.major = major;
    this.n = n;
  }

  item(depth: number): Cbor {
    const start = this.pos;
    this.head();
    const n = this.n;
    switch (this.major) {
      case 0:
        return n;
      case 2:
        this.need(n, 'byte string');
        this.pos += n;
        return this.data.slice(this.pos - n, this.pos);
      case 3: {
        this.need(n, 'text string');
        this.pos += n;
        // Short ASCII (keys, lock names, owners): the bytes are the code units. A loop
        // beats the TextDecoder call (~30 vs ~70 ns); anything else goes to the decoder.
        if (n <= 16) {
          const d = this.data;
          let s = '';
          let i = this.pos - n;
          for (; i < this.pos; i++) {
            const c = d[i]!;
            if (c >= 0x80) break;
            s += String.fromCharCode(c);
          }
          if (i === this.pos) return s;
        }
        try {
          return utf8Decoder.decode(this.data.subarray(this.pos - n, this.pos));
        } catch {
          throw new Malformed(`invalid UTF-8 in text string at byte ${start}`);
        }
      }
      case 4: {
        if (depth >= MAX_DEPTH) throw new Malformed(`nesting deeper than ${MAX_DEPTH} at byte ${start}`);
        if (n > this.data.length - this.pos) throw new Malformed(`array at byte ${start} claims ${n} items, only ${this.data.length - this.pos} bytes left`);
        // Sized once (n ≤ the bytes left, checked above) rather than grown by push.
        const out: Cbor[] = new Array<Cbor>(n);
        for (let i = 0; i < n; i++) out[i] = this.item(depth + 1);
        return out;
      }
      case 7:
        return null;
      default:
        throw new Malformed(`unsupported major type ${this.major} at byte ${start}`);
    }
  }
}
