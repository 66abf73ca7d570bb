/**
 * The authentication tag of a frame (DESIGN §2): HMAC-SHA256 (RFC 2104, FIPS 198-1)
 * with the cluster key over the encoded CBOR bytes, truncated to the leftmost 16
 * bytes. RFC 2104 §5 allows truncation to no less than half the hash length and
 * 80 bits; 128 bits keeps forgery at 2^-128 per attempt while saving 16 bytes
 * per frame (the idle heartbeat budget is 32 bytes, DESIGN §2).
 *
 * node:crypto is allowed in src/: hashing is deterministic computation, not I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

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

/** HMAC-SHA256(key, data) truncated to TAG_BYTES. */
export function computeTag(key: Uint8Array, data: Uint8Array): Uint8Array {
  const full = createHmac('sha256', key).update(data).digest();
  return new Uint8Array(full.buffer, full.byteOffset, TAG_BYTES);
}

/** Which key of the ring produced `tag` over `data`, compared in constant time; null if none. */
export function verifyTag(k: Keyring, data: Uint8Array, tag: Uint8Array): 'current' | 'previous' | null {
  if (tag.length !== TAG_BYTES) return null;
  if (timingSafeEqual(computeTag(k.current, data), tag)) return 'current';
  if (k.previous && timingSafeEqual(computeTag(k.previous, data), tag)) return 'previous';
  return null;
}
