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

export function decodeReplyBody(status: number, body: Uint8Array): ClientResult | Error {
  let v: unknown;
  try {
    v = decode(body);
  } catch (e) {
    return new Error(`ClientReply body: not valid CBOR (${(e as Error).message})`);
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
