/**
 * Byte layout of every durable record (WAL records, the hard-state file, snapshot files).
 *
 *   offset 0  u32 LE  len   = 1 + payload length (kind byte included)
 *   offset 4  u32 LE  crc   = CRC-32 (zlib.crc32) over bytes [0,4) ‖ [8, 8+len)
 *   offset 8  u8      kind
 *   offset 9  payload (len - 1 bytes)
 *
 * The CRC covers the length field too, so a flipped length bit is caught by the CRC
 * rather than silently re-framing the rest of the file. Integers up to 2^53 are
 * stored as u64 LE (two u32 halves); values outside the safe range are refused.
 */
import { crc32 } from 'node:zlib';

export const RECORD_HEADER = 8;

/** Record kinds. Values are part of the on-disk format: never renumber. */
export const Kind = {
  /** First record of every WAL segment: format version and segment sequence number. */
  SegmentHeader: 1,
  /** One log entry: truncates the log from its index, then appends it (suffix overwrite). */
  Entry: 2,
  /** The commit index became at least this value (written after the entries it covers). */
  Commit: 3,
  /** A snapshot at (index, term) became durable; entries ≤ index dropped, later ones kept iff `keep`. */
  SnapshotMark: 4,
  /**
   * An all-or-nothing batch (PersistBatch.atomic): the payload is the batch's own
   * records (snapshot mark, entries) back to back, each with its header and CRC. One
   * record, one CRC: a torn write drops all of it, never a prefix.
   */
  Batch: 5,
  /** The hard-state file's single record. */
  HardState: 16,
  /** A snapshot file's single record. */
  Snapshot: 17,
} as const;
export type KindValue = (typeof Kind)[keyof typeof Kind];
const KNOWN = new Set<number>(Object.values(Kind));

export function isKnownKind(k: number): boolean {
  return KNOWN.has(k);
}

/** Encodes one record with its CRC. */
export function encodeRecord(kind: number, payload: Uint8Array): Uint8Array {
  return new Writer(payload.length).raw(payload).record(kind);
}

/**
 * Whole records (each with its header and CRC, as `encodeRecord` makes them) packed into
 * as few records as `maxLen` allows: runs of them become one Kind.Batch record each
 * (every inner record keeps its length and kind but not its CRC: the batch's covers
 * them, so a torn batch holds nothing that parses as a record of its own); a Batch
 * among them is taken apart into the new one (batches do not nest). A record that fits
 * with no other stays as it is. `maxLen` bounds a record's length field (kind + payload),
 * as recovery reads it. With `maxLen` = Infinity the result is always one record.
 */
export function packRecords(records: readonly Uint8Array[], maxLen: number): Uint8Array[] {
  if (records.length <= 1) return records.slice();
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runLen = 1; // the batch's own kind byte
  const close = (): void => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(sealBatch(run, runLen));
    run = [];
    runLen = 1;
  };
  for (const r of records) {
    const inner = r[8] === Kind.Batch ? r.length - RECORD_HEADER - 1 : r.length - 4;
    if (run.length > 0 && runLen + inner > maxLen) close();
    run.push(r);
    runLen += inner;
  }
  close();
  return out;
}

/** One Kind.Batch record holding `records` (whole records; a Batch among them contributes its inner records). */
function sealBatch(records: readonly Uint8Array[], len: number): Uint8Array {
  const out = recordBuffer(RECORD_HEADER + len);
  let o = RECORD_HEADER + 1;
  for (const r of records) {
    if (r[8] === Kind.Batch) {
      out.set(r.subarray(RECORD_HEADER + 1), o);
      o += r.length - RECORD_HEADER - 1;
    } else {
      out.set(r.subarray(0, 4), o); // length (kind + payload)
      out.set(r.subarray(RECORD_HEADER), o + 4); // kind, payload
      o += r.length - 4;
    }
  }
  return sealRecord(out, Kind.Batch);
}

/** CRC-32 (IEEE 802.3, the polynomial zlib.crc32 uses), one table entry per byte value. */
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** Records up to this many bytes get their CRC from the table loop; longer ones from zlib. */
const SMALL_RECORD = 256;

/**
 * zlib.crc32(b[from..to), crc) computed in JavaScript: the same value, for short
 * ranges (a WAL entry or commit record is ~20–100 bytes), where the call into zlib
 * and its two subarray views cost about twice the table loop.
 */
function crc32Small(b: Uint8Array, from: number, to: number, crc: number): number {
  let c = ~crc;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * Fills in the 9-byte header (len, CRC, kind) of a record whose payload is at out[9..],
 * followed by `tail` when given (a payload kept in two pieces: the record is out ‖ tail).
 */
function sealRecord(out: Uint8Array, kind: number, tail?: Uint8Array): Uint8Array {
  const len = out.length - RECORD_HEADER + (tail === undefined ? 0 : tail.length);
  putU32(out, 0, len);
  out[8] = kind;
  // One CRC over [0,4) ‖ [8, end): the length field, then kind and payload.
  const head = crc32Small(out, 0, 4, 0);
  let crc = out.length <= SMALL_RECORD ? crc32Small(out, 8, out.length, head) : crc32(out.subarray(8), head);
  if (tail !== undefined) crc = crc32(tail, crc);
  putU32(out, 4, crc);
  return out;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

export type ParseResult =
  | { ok: true; kind: number; payload: Uint8Array; next: number }
  /** `partial`: the bytes end before the record does (a torn write looks like this). */
  | { ok: false; partial: boolean; reason: string };

/**
 * Parses the record starting at `off`. Never throws; `maxLen` bounds the length
 * field so that garbage cannot make us treat the rest of the file as one record.
 */
export function parseRecord(buf: Uint8Array, off: number, maxLen: number): ParseResult {
  const left = buf.length - off;
  if (left < RECORD_HEADER) return { ok: false, partial: true, reason: `only ${left} bytes left, a record header needs ${RECORD_HEADER}` };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = dv.getUint32(off, true);
  if (len < 1 || len > maxLen) return { ok: false, partial: false, reason: `record length ${len} outside 1..${maxLen}` };
  if (left < RECORD_HEADER + len) {
    return { ok: false, partial: true, reason: `record of ${len} bytes runs past the end of the file (${left - RECORD_HEADER} bytes present)` };
  }
  const want = dv.getUint32(off + 4, true);
  const got = crc32(buf.subarray(off + 8, off + 8 + len), crc32(buf.subarray(off, off + 4)));
  if (want !== got) return { ok: false, partial: false, reason: `CRC mismatch (stored ${hex(want)}, computed ${hex(got)})` };
  const kind = buf[off + 8]!;
  if (!KNOWN.has(kind)) return { ok: false, partial: false, reason: `unknown record kind ${kind}` };
  return { ok: true, kind, payload: buf.subarray(off + 9, off + 8 + len), next: off + 8 + len };
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

/** The buffer of a Writer whose record() was taken (shared; never written: room() replaces it first). */
const NO_BYTES = new Uint8Array(0);

/**
 * Record buffers come from a slab: views into one shared ArrayBuffer, handed out
 * back to back and never handed out twice. A WAL entry record is ~50–120 bytes, and
 * V8 keeps a typed array of more than 64 bytes outside the heap, so `new Uint8Array(n)`
 * per record meant a native allocation and a backing store for the garbage collector to
 * track and free, for every entry of every node (the frame slab in src/wire/codec.ts and
 * the broker's in firmware-sim/mqtt.ts exist for the same reason).
 *
 * Safe because nothing is reused: a record lives until its flush copies it into the file
 * (or longer, if a caller keeps it), and a full slab is simply dropped for a new one; it
 * is freed once its last record is. The cost is memory held a little longer: a slab stays
 * while any record in it is referenced (records of a flush in flight, a few KiB), never
 * more than SLAB_BYTES per record kept. Larger buffers (snapshots) get their own.
 */
const SLAB_BYTES = 64 * 1024;
/** Buffers above this size are not taken from the slab. */
const SLAB_MAX = 4096;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/** A zero-filled buffer of `n` bytes that no one else holds (from the slab when small). */
export function recordBuffer(n: number): Uint8Array {
  if (n > SLAB_MAX) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += n;
  return out;
}

/**
 * Builds payloads of fixed-width fields into one growing buffer (no per-field
 * allocation: this is on the WAL's persist path). The first 9 bytes are kept free
 * for a record header, so `record(kind)` frames the payload without copying it;
 * `finish()` returns the bare payload.
 */
export class Writer {
  private buf: Uint8Array;
  private off = RECORD_HEADER + 1;
  /** `sizeHint`: expected payload bytes; exact hints avoid any copy in `record()`. */
  constructor(sizeHint = 32) {
    this.buf = recordBuffer(RECORD_HEADER + 1 + Math.max(0, sizeHint));
  }
  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = recordBuffer(Math.max(this.buf.length * 2, this.off + n));
    next.set(this.buf.subarray(0, this.off));
    this.buf = next;
  }
  u8(v: number): this {
    this.room(1);
    this.buf[this.off++] = v & 0xff;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    putU32(this.buf, this.off, v >>> 0);
    this.off += 4;
    return this;
  }
  u64(v: number, what: string): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${v}`);
    this.room(8);
    putU32(this.buf, this.off, v % 0x100000000);
    putU32(this.buf, this.off + 4, Math.floor(v / 0x100000000));
    this.off += 8;
    return this;
  }
  /** u32 length then the bytes. */
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    return this.raw(b);
  }
  /** The bytes as they are (no length prefix). */
  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
    return this;
  }
  /** The payload alone. */
  finish(): Uint8Array {
    return this.buf.slice(RECORD_HEADER + 1, this.off);
  }
  /** The payload framed as one record of `kind` (same bytes as `encodeRecord(kind, finish())`). */
  record(kind: number): Uint8Array {
    // A slab buffer is cut to size as a view (its spare bytes are never handed out again); a big one is copied, not kept whole.
    const out = this.off === this.buf.length ? this.buf : this.buf.length <= SLAB_MAX ? this.buf.subarray(0, this.off) : this.buf.slice(0, this.off);
    this.buf = NO_BYTES; // a fresh empty Uint8Array here cost ~2% of the simulator's time
    this.off = 0;
    return sealRecord(out, kind);
  }
  /**
   * The payload so far followed by `tail` as one record of `kind`, returned as
   * [head, tail] without copying the tail: head ‖ tail is the same bytes as
   * `raw(tail).record(kind)`. For a snapshot file, whose tail is the whole state
   * machine (up to 16 MiB): one copy fewer on the event loop.
   */
  recordWithTail(kind: number, tail: Uint8Array): [Uint8Array, Uint8Array] {
    const head = this.buf.slice(0, this.off);
    this.buf = NO_BYTES;
    this.off = 0;
    return [sealRecord(head, kind, tail), tail];
  }
}

/** Reads fixed-width fields; throws `RangeError` on short input (callers turn it into a typed error). */
export class Reader {
  private off = 0;
  private dv: DataView;
  constructor(private buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number, what: string): void {
    if (this.off + n > this.buf.length) throw new RangeError(`payload too short for ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.off++]!;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.off, true);
    this.off += 4;
    return v;
  }
  u64(what: string): number {
    const lo = this.u32(what);
    const hi = this.u32(what);
    const v = hi * 0x100000000 + lo;
    if (!Number.isSafeInteger(v)) throw new RangeError(`${what} ${v} exceeds 2^53`);
    return v;
  }
  bytes(what: string): Uint8Array {
    const n = this.u32(what);
    this.need(n, what);
    const b = this.buf.slice(this.off, this.off + n);
    this.off += n;
    return b;
  }
  rest(): Uint8Array {
    const b = this.buf.slice(this.off);
    this.off = this.buf.length;
    return b;
  }
  end(what: string): void {
    if (this.off !== this.buf.length) throw new RangeError(`${this.buf.length - this.off} unexpected trailing bytes in ${what}`);
  }
}
