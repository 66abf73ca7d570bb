/**
 * A small, strict, bounded CBOR (RFC 8949) writer and reader for exactly the subset
 * the wire format emits:
 *   - unsigned integers (major type 0) up to Number.MAX_SAFE_INTEGER, in the
 *     shortest form (RFC 8949 §4.2.1 "preferred serialization");
 *   - byte strings (major type 2) of definite length;
 *   - arrays (major type 4) of definite length;
 *   - the simple values false, true, null, undefined (0xf4..0xf7).
 * Everything else (negative integers, text strings, maps, tags, floats,
 * indefinite lengths, non-shortest heads) is rejected as malformed.
 *
 * Why not cbor-x for decoding: a 5-byte head can claim a 4-GiB byte string or an
 * array of 2^32 elements, and cbor-x 1.6 preallocates arrays up to 112,810,000
 * elements from the head alone before it notices the input is short (checked
 * with `9a 00100000`: "Unexpected end of CBOR data" after the allocation). Here no
 * length from a head is trusted: a byte string must fit in the remaining input and
 * an array may claim at most one element per remaining byte, and an array is
 * allocated at that (bounded) length, so a decode allocates at most the input size.
 * "Remaining" excludes one byte for every item the enclosing arrays still owe (each
 * item is at least one byte): without that, an array nested in another could claim
 * the very bytes its parent's later items need, and nested claims would add up to
 * more slots than the input has bytes. cbor-x also encodes a
 * Uint8Array as tag 64 (typed array), 2 bytes more than a plain byte string.
 * The output of this writer is ordinary CBOR; a test checks that cbor-x decodes it.
 *
 * The Reader throws only CborError (callers catch it); `readCbor` returns a result.
 */

export type CborValue = number | boolean | null | undefined | Uint8Array | CborValue[];

/** Why a byte sequence is not a value of the subset. */
export type CborFailure = 'truncated' | 'malformed';

export type CborRead =
  | { ok: true; value: CborValue; end: number }
  | { ok: false; reason: CborFailure; detail: string };

/**
 * Nesting limit. The wire format nests three deep (frame → entries → entry); the
 * limit keeps recursion (and thus the stack) bounded for hostile input.
 */
export const MAX_CBOR_DEPTH = 4;

/**
 * Instrumentation for the allocation-bound test: the largest byte string or array
 * length the reader materialized, and the total of those lengths. Optional; pass an
 * object to `readCbor` to have it filled in.
 */
export interface CborReadStats {
  maxMaterialized: number;
  totalMaterialized: number;
}

/** Thrown by Reader methods; `readCbor` and the frame decoder turn it into a result. */
export class CborError extends Error {
  constructor(
    readonly reason: CborFailure,
    detail: string,
  ) {
    super(detail);
  }
}

export const utf8Encoder = new TextEncoder();

/**
 * Appends CBOR items to a growing buffer, always in the shortest head (RFC 8949
 * §4.2.1), so equal values give equal bytes. The one writer of the project: frames
 * (src/wire) and the state machine's commands and snapshots (src/kv).
 */
export class CborWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(initial = 64) {
    this.buf = new Uint8Array(Math.max(16, initial));
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private head(major: number, n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`CBOR head: expected a non-negative safe integer, got ${String(n)}`);
    }
    const m = major << 5;
    this.ensure(9);
    const b = this.buf;
    if (n < 24) {
      b[this.len++] = m | n;
    } else if (n < 0x100) {
      b[this.len++] = m | 24;
      b[this.len++] = n;
    } else if (n < 0x10000) {
      b[this.len++] = m | 25;
      b[this.len++] = n >>> 8;
      b[this.len++] = n & 0xff;
    } else if (n < 0x100000000) {
      b[this.len++] = m | 26;
      b[this.len++] = n >>> 24;
      b[this.len++] = (n >>> 16) & 0xff;
      b[this.len++] = (n >>> 8) & 0xff;
      b[this.len++] = n & 0xff;
    } else {
      const hi = Math.floor(n / 0x100000000);
      const lo = n >>> 0;
      b[this.len++] = m | 27;
      for (const w of [hi, lo]) {
        b[this.len++] = w >>> 24;
        b[this.len++] = (w >>> 16) & 0xff;
        b[this.len++] = (w >>> 8) & 0xff;
        b[this.len++] = w & 0xff;
      }
    }
  }

  uint(n: number): this {
    this.head(0, n);
    return this;
  }

  bytes(data: Uint8Array): this {
    this.head(2, data.length);
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  /** Writes an array head; the caller then writes exactly `n` items. */
  array(n: number): this {
    this.head(4, n);
    return this;
  }

  /** Writes `utf8` (already-encoded UTF-8 bytes) as a text string (major type 3). */
  textUtf8(utf8: Uint8Array): this {
    this.head(3, utf8.length);
    this.ensure(utf8.length);
    this.buf.set(utf8, this.len);
    this.len += utf8.length;
    return this;
  }

  /**
   * A text string. Frames carry none (the wire reader refuses them); the state
   * machine's commands and snapshots (src/kv) do. ASCII fast path (keys, lock names,
   * owners are nearly always ASCII): the bytes are the UTF-16 code units, so no
   * TextEncoder call (a native round trip per string, ~1.5% of the simulator's time).
   */
  text(s: string): this {
    const n = s.length;
    let i = 0;
    while (i < n && s.charCodeAt(i) < 0x80) i++;
    if (i < n) return this.textUtf8(utf8Encoder.encode(s));
    this.head(3, n);
    this.ensure(n);
    const buf = this.buf;
    let o = this.len;
    for (let k = 0; k < n; k++) buf[o++] = s.charCodeAt(k);
    this.len = o;
    return this;
  }

  null(): this {
    this.ensure(1);
    this.buf[this.len++] = 0xf6;
    return this;
  }

  bool(v: boolean): this {
    this.ensure(1);
    this.buf[this.len++] = v ? 0xf5 : 0xf4;
    return this;
  }

  /** Any value of the subset (used by tests to build hostile-but-well-formed frames). */
  value(v: CborValue): this {
    if (typeof v === 'number') return this.uint(v);
    if (typeof v === 'boolean') return this.bool(v);
    if (v instanceof Uint8Array) return this.bytes(v);
    if (Array.isArray(v)) {
      this.array(v.length);
      for (const x of v) this.value(x);
      return this;
    }
    this.ensure(1);
    this.buf[this.len++] = v === null ? 0xf6 : 0xf7;
    return this;
  }

  /** The bytes written so far (a copy sized exactly). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /**
   * As finish(), for one large result whose buffer was sized up front (a state-machine
   * snapshot, up to 16 MiB): a view of the buffer when it is at least 3/4 used, not a
   * copy of it (one copy fewer of the whole state). The writer must not be used after.
   */
  take(): Uint8Array {
    const out = this.len * 4 >= this.buf.length * 3 ? this.buf.subarray(0, this.len) : this.buf.slice(0, this.len);
    this.buf = new Uint8Array(16);
    this.len = 0;
    return out;
  }

  /** Number of bytes written so far. */
  get length(): number {
    return this.len;
  }

  /** Copies the bytes written so far into out[at..at+length) (no allocation). */
  copyTo(out: Uint8Array, at: number): void {
    const b = this.buf;
    const n = this.len;
    // A byte loop for frame-sized bodies: a subarray view for set() costs more than the copy.
    if (n > 512) out.set(b.subarray(0, n), at);
    else for (let i = 0; i < n; i++) out[at + i] = b[i]!;
  }

  /**
   * Starts over, keeping the buffer (for a writer reused per frame). A buffer grown
   * beyond `keepAtMost` bytes by one large value is dropped, so one big frame does not
   * pin its memory for the life of the process.
   */
  reset(keepAtMost = 64 * 1024): this {
    this.len = 0;
    if (this.buf.length > keepAtMost) this.buf = new Uint8Array(64);
    return this;
  }
}

/** Size in bytes of the head encoding `n` (shortest form). */
export function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

/**
 * Reads one CBOR value starting at `start` from `data[start, limit)`.
 * Never throws; never reads beyond `limit`; never allocates more than the input
 * allows (see the module comment). The result's `end` is the offset after the value.
 */
export function readCbor(data: Uint8Array, start = 0, limit = data.length, stats?: CborReadStats): CborRead {
  const r = new Reader(data, start, limit, stats);
  try {
    const value = r.value(0);
    return { ok: true, value, end: r.pos };
  } catch (e) {
    if (e instanceof CborError) return { ok: false, reason: e.reason, detail: e.message };
    return { ok: false, reason: 'malformed', detail: `internal decoder error: ${String(e)}` };
  }
}

/** Incremental access for callers that want to look at an array head before its items. */
export class Reader {
  pos: number;
  /** Major type of the item head read last (set by head()). */
  private major = 0;
  /**
   * Items the enclosing arrays have claimed but not yet read, besides the one being
   * read now: each needs at least one byte, so a nested claim may not count on them.
   */
  private owed = 0;

  constructor(
    private readonly data: Uint8Array,
    start: number,
    private readonly limit: number,
    private readonly stats?: CborReadStats,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.limit - this.pos;
  }

  /** Bytes a new claim may count on: the remaining input less one byte per item still owed. */
  private get claimable(): number {
    return this.limit - this.pos - this.owed;
  }

  /**
   * For callers that read an array's items one by one (the frame decoder): `n` items
   * follow, read each with value() after calling nextItem(). Claims inside an item
   * then leave one byte for each item not read yet.
   */
  owe(n: number): void {
    this.owed += n;
  }

  /** The next owed item is being read now (see owe()). */
  nextItem(): void {
    if (this.owed > 0) this.owed--;
  }

  private byte(what: string): number {
    if (this.pos >= this.limit) throw new CborError('truncated', `input ends inside ${what} at byte ${this.pos}`);
    return this.data[this.pos++]!;
  }

  /**
   * Reads an item head: returns its argument and leaves its major type in `major`;
   * simple values come back as major 7. (Not a [major, n] tuple: that was an array
   * per item, and destructuring it goes through the iterator protocol, per item.)
   */
  private head(): number {
    const at = this.pos;
    const ib = this.byte('an item head');
    const major = ib >>> 5;
    const info = ib & 0x1f;
    this.major = major;
    if (major === 7) return info;
    if (info < 24) return info;
    let n: number;
    let min: number;
    if (info === 24) {
      n = this.byte('a 1-byte argument');
      min = 24;
    } else if (info === 25) {
      n = (this.byte('a 2-byte argument') << 8) | this.byte('a 2-byte argument');
      min = 0x100;
    } else if (info === 26) {
      n = 0;
      for (let i = 0; i < 4; i++) n = n * 256 + this.byte('a 4-byte argument');
      min = 0x10000;
    } else if (info === 27) {
      let hi = 0;
      let lo = 0;
      for (let i = 0; i < 4; i++) hi = hi * 256 + this.byte('an 8-byte argument');
      for (let i = 0; i < 4; i++) lo = lo * 256 + this.byte('an 8-byte argument');
      if (hi >= 0x200000) {
        throw new CborError('malformed', `integer at byte ${at} exceeds 2^53-1 (not a safe JavaScript integer)`);
      }
      n = hi * 0x100000000 + lo;
      min = 0x100000000;
    } else if (info === 31) {
      throw new CborError('malformed', `indefinite-length item at byte ${at} (only definite lengths are accepted)`);
    } else {
      throw new CborError('malformed', `reserved additional information ${info} at byte ${at}`);
    }
    if (n < min) throw new CborError('malformed', `non-shortest encoding of ${n} at byte ${at}`);
    return n;
  }

  private note(n: number): void {
    if (!this.stats) return;
    if (n > this.stats.maxMaterialized) this.stats.maxMaterialized = n;
    this.stats.totalMaterialized += n;
  }

  /** Reads an array head and returns its length, bounded by the remaining input. */
  arrayHead(): number {
    const at = this.pos;
    const n = this.head();
    const major = this.major;
    if (major !== 4) throw new CborError('malformed', `expected an array at byte ${at}, found major type ${major}`);
    // Every item takes at least one byte: a longer claim cannot be satisfied.
    if (n > this.remaining) {
      throw new CborError('truncated', `array at byte ${at} claims ${n} items but only ${this.remaining} bytes remain`);
    }
    return n;
  }

  value(depth: number): CborValue {
    const at = this.pos;
    const n = this.head();
    const major = this.major;
    switch (major) {
      case 0:
        return n;
      case 2: {
        if (n > this.claimable) {
          throw new CborError('truncated', `byte string at byte ${at} claims ${n} bytes but only ${this.claimable} remain for it`);
        }
        this.note(n);
        const out = this.data.slice(this.pos, this.pos + n);
        this.pos += n;
        return out;
      }
      case 4: {
        if (depth + 1 >= MAX_CBOR_DEPTH) {
          throw new CborError('malformed', `arrays nested deeper than ${MAX_CBOR_DEPTH} at byte ${at}`);
        }
        if (n > this.claimable) {
          throw new CborError('truncated', `array at byte ${at} claims ${n} items but only ${this.claimable} bytes remain for it`);
        }
        this.note(n);
        // Sized once (n ≤ the bytes left for it, checked above) rather than grown by push.
        const out: CborValue[] = new Array<CborValue>(n);
        this.owed += n;
        for (let i = 0; i < n; i++) {
          this.owed--;
          out[i] = this.value(depth + 1);
        }
        return out;
      }
      case 7:
        if (n === 20) return false;
        if (n === 21) return true;
        if (n === 22) return null;
        if (n === 23) return undefined;
        throw new CborError('malformed', `unsupported simple value or float (0x${(0xe0 | n).toString(16)}) at byte ${at}`);
      case 1:
        throw new CborError('malformed', `negative integer at byte ${at} (not used by the wire format)`);
      case 3:
        throw new CborError('malformed', `text string at byte ${at} (not used by the wire format)`);
      case 5:
        throw new CborError('malformed', `map at byte ${at} (not used by the wire format)`);
      default:
        throw new CborError('malformed', `tag at byte ${at} (not used by the wire format)`);
    }
  }
}
