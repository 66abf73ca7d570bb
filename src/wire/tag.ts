/**
 * The authentication tag of a frame (docs/wire.md): HMAC-SHA256 (RFC 2104, FIPS 198-1)
 * with the cluster key over the encoded CBOR bytes, truncated to the leftmost 16
 * bytes. RFC 2104 §5 allows truncation to no less than half the hash length and
 * 80 bits; 128 bits keeps forgery at 2^-128 per attempt while saving 16 bytes
 * per frame (the idle heartbeat budget is 32 bytes, docs/wire.md).
 *
 * node:crypto is allowed in src/: hashing is deterministic computation, not I/O.
 */
import { createHash } from 'node:crypto';
import { sha256Compress } from './sha256.ts';

export const TAG_BYTES = 16;
/** Shortest accepted key: 128 bits (RFC 2104 §3 recommends at least the hash output length, 32 bytes; 16 is the floor). */
export const MIN_KEY_BYTES = 16;
/** Longest accepted key: one SHA-256 block; longer keys are hashed by HMAC anyway. */
export const MAX_KEY_BYTES = 64;

/**
 * The keys a node holds for its cluster. Frames are sealed with `current`; frames
 * under `current` or `previous` are accepted. A rotation without a flag day:
 *   1. on every node, {current: old, previous: new} — still sends under old, already accepts new;
 *   2. on every node, {current: new, previous: old} — sends under new, accepts stragglers;
 *   3. on every node, {current: new} — the old key is dead.
 * A frame under any other key (e.g. older than `previous`) fails with bad-tag.
 */
export interface Keyring {
  current: Uint8Array;
  previous?: Uint8Array;
}

/** Throws a clear error if a keyring is unusable (a config problem, found at start-up). */
export function checkKeyring(k: Keyring, what = 'keyring'): void {
  if (k === null || typeof k !== 'object') throw new TypeError(`${what}: expected {current, previous?}, got ${String(k)}`);
  checkKey(k.current, `${what}.current`);
  if (k.previous !== undefined) checkKey(k.previous, `${what}.previous`);
}

function checkKey(key: unknown, what: string): void {
  if (!(key instanceof Uint8Array)) throw new TypeError(`${what}: expected a Uint8Array key, got ${typeof key}`);
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new RangeError(`${what}: expected a key of ${MIN_KEY_BYTES}..${MAX_KEY_BYTES} bytes, got ${key.length}`);
  }
}

// ---------------------------------------------------------------------------
// HMAC-SHA256 with precomputed pads.
//
// Why not node:crypto createHmac: a frame is ~20–200 bytes, and createHmac costs
// ~2 µs per call (object creation and the native boundary, measured on the CI box:
// 1.9–2.4 µs), a quarter of the whole simulator's CPU time at load. HMAC (RFC 2104
// §4 "Implementation note") allows precomputing the compression-function state
// after the key's inner pad block (K ⊕ ipad) and outer pad block (K ⊕ opad) once
// per key; a tag then costs ceil((len+9)/64) + 1 compressions. SHA-256 itself is
// FIPS 180-4 §6.2 (initial hash §5.3.3 below; the compression function with its
// constants, §4.2.2, in sha256.ts).
// Node's Hash.copy() on precomputed pads was measured too and is slower than
// createHmac (2.4–3.0 µs: two native objects per tag). test/src/wire/tag.test.ts
// checks every length 0..300 and random inputs against createHmac.

const SHA256_IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

/** The block being compressed as 16 big-endian words (single-threaded: one shared buffer, never retained). */
const W = new Int32Array(16);
/** Scratch for the padded last block(s) of the inner hash. */
const TAIL = new Uint8Array(128);

/** One SHA-256 compression of the 64-byte block at `b[off..off+64)` into state `h`. */
function compress(h: Int32Array, b: Uint8Array, off: number): void {
  const w = W;
  for (let i = 0; i < 16; i++, off += 4) w[i] = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
  sha256Compress(h, w);
}

/** Writes the 64-bit big-endian bit length of `bytes` at b[off..off+8). */
function putBitLength(b: Uint8Array, off: number, bytes: number): void {
  const hi = Math.floor(bytes / 0x20000000); // bytes * 8 / 2^32
  const lo = (bytes * 8) >>> 0;
  b[off] = hi >>> 24;
  b[off + 1] = hi >>> 16;
  b[off + 2] = hi >>> 8;
  b[off + 3] = hi;
  b[off + 4] = lo >>> 24;
  b[off + 5] = lo >>> 16;
  b[off + 6] = lo >>> 8;
  b[off + 7] = lo;
}

/** Slots of the per-key result table (HmacKey.memoData); a power of two. */
const MEMO_SLOTS = 256;
/** Longer data is not remembered (bounds the table: at most MEMO_SLOTS × this many bytes per key). */
const MEMO_MAX_BYTES = 512;

/** A key's HMAC-SHA256 midstates (RFC 2104 §4): SHA-256 state after K⊕ipad and after K⊕opad. */
class HmacKey {
  readonly key: Uint8Array;
  private readonly inner = new Int32Array(8);
  private readonly outer = new Int32Array(8);
  private readonly st = new Int32Array(8);

  constructor(key: Uint8Array) {
    this.key = key.slice();
    // RFC 2104 §2: keys longer than the block are hashed first.
    const k = key.length > 64 ? new Uint8Array(createHash('sha256').update(key).digest()) : key;
    const pad = new Uint8Array(64);
    for (const [mid, x] of [[this.inner, 0x36], [this.outer, 0x5c]] as const) {
      pad.fill(x);
      for (let i = 0; i < k.length; i++) pad[i] = k[i]! ^ x;
      mid.set(SHA256_IV);
      compress(mid, pad, 0);
    }
  }

  /** Whether this precomputation belongs to exactly these key bytes. */
  matches(key: Uint8Array): boolean {
    const a = this.key;
    if (a.length !== key.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i]! ^ key[i]!;
    return d === 0;
  }

  /**
   * Recent (data → digest) results under this key, in a direct-mapped table indexed
   * by the digest's first bytes. In the simulator every node runs in one process, so
   * a frame's tag is computed when it is sealed and again when a receiver opens it;
   * the receiver knows the claimed tag, looks up the slot it names, and if that slot
   * holds exactly the same data bytes (compared in full) it holds HMAC(key, data):
   * HMAC is a pure function, and the key is this object's (matched by content). The
   * claimed tag is then compared with that digest in constant time as always, so a
   * forged tag is rejected exactly as before. Comparing the data with early exit
   * leaks nothing secret: it travelled in clear. On a real node nothing hits (the
   * sealer is another process) and the cost is one copy of each sealed/verified body.
   */
  private readonly memoData: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(MEMO_SLOTS);
  private readonly memoLen = new Int32Array(MEMO_SLOTS).fill(-1);
  private readonly memoMac = new Uint8Array(MEMO_SLOTS * 32);

  /**
   * The first `n` (≤ 32) bytes of HMAC-SHA256(key, data[0..len)), written into
   * out[at..at+n); remembered. `out` may be `data` itself with at ≥ len (the encoder
   * writes the tag right after the body; lengths instead of subarray views, which
   * cost more than the copy they save).
   */
  mac(data: Uint8Array, len: number, out: Uint8Array, at: number, n: number): void {
    this.compute(data, len);
    const st = this.st;
    for (let i = 0; i < n; i++) out[at + i] = st[i >> 2]! >>> (24 - 8 * (i & 3));
    this.remember(data, len);
  }

  /** Whether tag[at..at+TAG_BYTES) is the truncated HMAC of data[0..len), compared in constant time. */
  verify(data: Uint8Array, len: number, tag: Uint8Array, at: number): boolean {
    const j = (tag[at]! | (tag[at + 1]! << 8)) & (MEMO_SLOTS - 1);
    const mm = this.memoMac;
    const o = 32 * j;
    let d = 0;
    if (this.memoLen[j] === len) {
      const m = this.memoData[j]!;
      let i = 0;
      while (i < len && m[i] === data[i]) i++;
      if (i === len) {
        for (let k = 0; k < TAG_BYTES; k++) d |= mm[o + k]! ^ tag[at + k]!;
        return d === 0;
      }
    }
    this.compute(data, len);
    const st = this.st;
    for (let k = 0; k < TAG_BYTES; k++) d |= ((st[k >> 2]! >>> (24 - 8 * (k & 3))) & 0xff) ^ tag[at + k]!;
    this.remember(data, len);
    return d === 0;
  }

  /** Stores data → the digest now in `st`, in the slot its first bytes name. */
  private remember(data: Uint8Array, len: number): void {
    if (len > MEMO_MAX_BYTES) return;
    const st = this.st;
    const b0 = st[0]! >>> 24;
    const b1 = (st[0]! >>> 16) & 0xff;
    const j = (b0 | (b1 << 8)) & (MEMO_SLOTS - 1);
    const m = (this.memoData[j] ??= new Uint8Array(MEMO_MAX_BYTES));
    for (let i = 0; i < len; i++) m[i] = data[i]!;
    this.memoLen[j] = len;
    // Only the tag's bytes: verify() compares TAG_BYTES of the slot, nothing reads the rest.
    const mm = this.memoMac;
    for (let k = 0, o = 32 * j; k < TAG_BYTES; k++) mm[o + k] = st[k >> 2]! >>> (24 - 8 * (k & 3));
  }

  /** HMAC-SHA256(key, data[0..len)) into `st`. */
  private compute(data: Uint8Array, len: number): void {
    const st = this.st;
    st.set(this.inner);
    const full = len & ~63;
    for (let off = 0; off < full; off += 64) compress(st, data, off);
    // Last block(s) of the inner hash: remaining bytes, 0x80, zeros, bit length of K⊕ipad ‖ data.
    // Only the bytes between the 0x80 and the length are zeroed (not all 128).
    const rest = len - full;
    if (rest + 9 <= 64) {
      // One last block (every frame of up to 55 bytes): its words built straight from
      // the data, 0x80 and the length, without going through TAIL.
      const w = W;
      const words = rest >> 2;
      let o = full;
      for (let i = 0; i < words; i++, o += 4) w[i] = (data[o]! << 24) | (data[o + 1]! << 16) | (data[o + 2]! << 8) | data[o + 3]!;
      // The partial word: the remaining 0..3 bytes, then 0x80.
      const r = rest & 3;
      let x = 0x80 << (24 - 8 * r);
      if (r > 0) x |= data[o]! << 24;
      if (r > 1) x |= data[o + 1]! << 16;
      if (r > 2) x |= data[o + 2]! << 8;
      w[words] = x;
      for (let i = words + 1; i < 14; i++) w[i] = 0;
      const bytes = 64 + len; // K⊕ipad ‖ data, in bits below
      w[14] = Math.floor(bytes / 0x20000000);
      w[15] = (bytes * 8) | 0;
      sha256Compress(st, w);
    } else {
      const t = TAIL;
      for (let i = 0; i < rest; i++) t[i] = data[full + i]!;
      t[rest] = 0x80;
      t.fill(0, rest + 1, 120);
      putBitLength(t, 120, 64 + len);
      compress(st, t, 0);
      compress(st, t, 64);
    }
    // Outer hash: K⊕opad (precomputed) then one block: inner digest (32 B), 0x80, zeros,
    // length 96 B — built as words in the schedule directly (no byte round trip).
    const w = W;
    for (let i = 0; i < 8; i++) w[i] = st[i]!;
    w[8] = 0x80000000 | 0;
    for (let i = 9; i < 15; i++) w[i] = 0;
    w[15] = (64 + 32) * 8;
    st.set(this.outer);
    sha256Compress(st, w);
  }
}

/**
 * Precomputed keys, most recently used first. A node uses one or two keys (current,
 * previous); the cache is bounded so that a test that makes many keys cannot grow it.
 * Entries are found by content (a copy of the key is kept), so a caller that reuses
 * or mutates a key buffer still gets the right tag.
 */
const keyCache: HmacKey[] = [];
const KEY_CACHE_SIZE = 8;

function hmacKey(key: Uint8Array): HmacKey {
  for (let i = 0; i < keyCache.length; i++) {
    const k = keyCache[i]!;
    if (k.matches(key)) {
      if (i > 0) {
        keyCache.splice(i, 1);
        keyCache.unshift(k);
      }
      return k;
    }
  }
  const k = new HmacKey(key);
  keyCache.unshift(k);
  if (keyCache.length > KEY_CACHE_SIZE) keyCache.pop();
  return k;
}

/** Full 32-byte HMAC-SHA256(key, data) (RFC 2104); exported for the equivalence tests. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || !(data instanceof Uint8Array)) throw new TypeError('hmacSha256: key and data must be Uint8Arrays');
  const out = new Uint8Array(32);
  hmacKey(key).mac(data, data.length, out, 0, 32);
  return out;
}

/** HMAC-SHA256(key, data) truncated to TAG_BYTES. */
export function computeTag(key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(TAG_BYTES);
  hmacKey(key).mac(data, data.length, out, 0, TAG_BYTES);
  return out;
}

/**
 * Writes the tag of data[0..len) (default: all of `data`) under `key` into
 * out[at..at+TAG_BYTES) (no allocation; the encoder's path). `out` may be `data`
 * with at ≥ len: the body and its tag in one buffer.
 */
export function writeTag(key: Uint8Array, data: Uint8Array, out: Uint8Array, at: number, len: number = data.length): void {
  if (!(len >= 0 && len <= data.length) || !(at >= 0 && at + TAG_BYTES <= out.length) || (out === data && at < len)) {
    throw new RangeError(`writeTag: expected len 0..${data.length} and a tag slot inside out (${out.length} bytes) not overlapping the data, got len ${len}, at ${at}`);
  }
  hmacKey(key).mac(data, len, out, at, TAG_BYTES);
}

/** Which key of the ring produced `tag` over `data`, compared in constant time; null if none. */
export function verifyTag(k: Keyring, data: Uint8Array, tag: Uint8Array): 'current' | 'previous' | null {
  if (tag.length !== TAG_BYTES) return null;
  return verifyTagIn(k, data, data.length, tag, 0);
}

/**
 * verifyTag for a frame in one buffer: the tag over frame[0..bodyEnd) is
 * frame[bodyEnd..bodyEnd+TAG_BYTES), and the frame ends there (the decoder's path,
 * without two subarray views per frame).
 */
export function verifyFrameTag(k: Keyring, frame: Uint8Array, bodyEnd: number): 'current' | 'previous' | null {
  if (!(bodyEnd >= 0) || frame.length - bodyEnd !== TAG_BYTES) return null;
  return verifyTagIn(k, frame, bodyEnd, frame, bodyEnd);
}

function verifyTagIn(k: Keyring, data: Uint8Array, len: number, tag: Uint8Array, at: number): 'current' | 'previous' | null {
  if (hmacKey(k.current).verify(data, len, tag, at)) return 'current';
  if (k.previous && hmacKey(k.previous).verify(data, len, tag, at)) return 'previous';
  return null;
}
