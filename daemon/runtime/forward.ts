/**
 * Bodies of forwarded client requests (a follower → the leader) and of their answers
 * (docs/api.md: any node answers any request).
 *
 *   ClientRequest.body = the KV command exactly as it goes into the log
 *                        (src/kv encodeCommand), so the leader validates it with the
 *                        same decoder as the log; lock commands are re-stamped with
 *                        the leader's clock before proposing.
 *   ClientReply.body   = CBOR array [index, token, ttlMs, expiresAt, holder, error],
 *                        null where absent; the status travels in ClientReply.status.
 *
 * Frames are authenticated before they get here, but a peer may run another version:
 * decoding validates every field and returns an Error naming it, never throws.
 */
import { decode, encode } from 'cbor-x';
import type { ClientResult } from './results.ts';

const FIELDS = ['index', 'token', 'ttlMs', 'expiresAt', 'holder', 'error'] as const;

export function encodeReplyBody(res: ClientResult): Uint8Array {
  return encode(FIELDS.map((f) => res[f] ?? null));
}

/**
 * The items of a reply body in the shape encodeReplyBody writes for the usual values —
 * a 6-item array of null, unsigned integers below 2^32 and ASCII text (RFC 8949 §3.1:
 * major types 0 and 3, simple value 22), nothing after it — read here directly;
 * undefined for any other bytes, which then go to cbor-x as before. These are the items
 * cbor-x gives for the same bytes, so the outcome is the same; this only skips
 * cbor-x's per-call setup and its TextDecoder for text over 64 bytes: that one decode
 * call was 1.8 % of the simulator's 4-client bench row (every forwarded request is
 * answered through here).
 */
export function plainReplyItems(b: Uint8Array): unknown[] | undefined {
  const n = b.length;
  if (n < 1 || b[0] !== 0x80 + FIELDS.length) return undefined;
  const items: unknown[] = [];
  let p = 1;
  for (let i = 0; i < FIELDS.length; i++) {
    if (p >= n) return undefined;
    const h = b[p++]!;
    if (h === 0xf6) {
      items.push(null);
      continue;
    }
    const ai = h & 31;
    let x: number;
    if (ai < 24) x = ai;
    else if (ai === 24 && p + 1 <= n) x = b[p++]!;
    else if (ai === 25 && p + 2 <= n) {
      x = (b[p]! << 8) | b[p + 1]!;
      p += 2;
    } else if (ai === 26 && p + 4 <= n) {
      x = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
      p += 4;
    } else return undefined;
    const major = h >> 5;
    if (major === 0) {
      items.push(x);
      continue;
    }
    if (major !== 3 || p + x > n) return undefined;
    let s = '';
    for (let k = p; k < p + x; k++) {
      const c = b[k]!;
      if (c > 0x7f) return undefined;
      s += String.fromCharCode(c);
    }
    items.push(s);
    p += x;
  }
  return p === n ? items : undefined;
}

export function decodeReplyBody(status: number, body: Uint8Array): ClientResult | Error {
  let v: unknown = body instanceof Uint8Array ? plainReplyItems(body) : undefined;
  if (v === undefined) {
    try {
      v = decode(body);
    } catch (e) {
      return new Error(`ClientReply body: not valid CBOR (${(e as Error).message})`);
    }
  }
  if (!Array.isArray(v) || v.length !== FIELDS.length) return new Error(`ClientReply body: expected an array of ${FIELDS.length} items`);
  const out: ClientResult = { status };
  for (let i = 0; i < FIELDS.length; i++) {
    const f = FIELDS[i]!;
    const x = v[i] as unknown;
    if (x === null || x === undefined) continue;
    if (f === 'holder' || f === 'error') {
      if (typeof x !== 'string' || x.length > 1024) return new Error(`ClientReply body: ${f} must be a string of at most 1024 characters`);
      out[f] = x;
    } else {
      if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) return new Error(`ClientReply body: ${f} must be a non-negative integer, got ${String(x)}`);
      out[f] = x;
    }
  }
  return out;
}
