import { describe, expect, it } from 'vitest';
import { decode, encode } from 'cbor-x';
import { decodeReplyBody, encodeReplyBody } from '../../../daemon/runtime/forward.ts';
import type { ClientResult } from '../../../daemon/runtime/results.ts';

const FIELDS = ['index', 'token', 'ttlMs', 'expiresAt', 'holder', 'error'] as const;

/** decodeReplyBody as it was with cbor-x alone: the direct reader must give exactly this for any bytes. */
function reference(status: number, body: Uint8Array): ClientResult | Error {
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
      (out as unknown as Record<string, unknown>)[f] = x;
    } else {
      if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) return new Error(`ClientReply body: ${f} must be a non-negative integer, got ${String(x)}`);
      (out as unknown as Record<string, unknown>)[f] = x;
    }
  }
  return out;
}

const same = (body: Uint8Array) => {
  const a = decodeReplyBody(409, body);
  const b = reference(409, body);
  if (a instanceof Error || b instanceof Error) expect(String(a), `bytes ${[...body]}`).toBe(String(b));
  else expect(Object.entries(a), `bytes ${[...body]}`).toEqual(Object.entries(b));
};

describe('ClientReply body decoding', () => {
  const results: ClientResult[] = [
    { status: 200 },
    { status: 200, index: 0 },
    { status: 200, index: 23, token: 24, ttlMs: 255, expiresAt: 256 },
    { status: 200, index: 65535, token: 65536, ttlMs: 2 ** 32 - 1, expiresAt: 2 ** 32 },
    { status: 200, index: 2 ** 53 - 1, expiresAt: 2 ** 53 + 2 },
    { status: 409, holder: 'n1', error: 'lock held' },
    { status: 409, error: 'x'.repeat(64) },
    { status: 409, error: 'y'.repeat(65) },
    { status: 409, error: 'z'.repeat(1025) },
    { status: 409, holder: 'caf\u00e9', error: '\u{1f600}' },
    { status: 409, index: -1 },
    { status: 409, index: 1.5 },
  ];
  it('gives what cbor-x alone gave, for replies as encoded', () => {
    for (const r of results) same(encodeReplyBody(r));
  });
  it('gives what cbor-x alone gave, for other and damaged bytes', () => {
    const bodies: Uint8Array[] = [new Uint8Array(0), new Uint8Array([0x86]), encode([1, 2, 3]), encode(['a', null, null, null, null, null]), encode([null, null, null, null, null, null, 7])];
    for (const r of results) {
      const b = encodeReplyBody(r);
      bodies.push(b.subarray(0, b.length - 1), new Uint8Array([...b, 0]));
      for (let i = 0; i < b.length; i++) for (const x of [0x00, 0x18, 0x19, 0x1a, 0x1b, 0x60, 0x78, 0xf6, 0xf7, 0xff, b[i]! ^ 0x20]) {
        const c = new Uint8Array(b);
        c[i] = x;
        bodies.push(c);
      }
    }
    for (const b of bodies) same(b);
  });
  it('a plain reply with text over 64 bytes decodes to its values', () => {
    const r = decodeReplyBody(409, encodeReplyBody({ status: 409, index: 70000, holder: 'n3', error: 'e'.repeat(100) }));
    expect(r).toEqual({ status: 409, index: 70000, holder: 'n3', error: 'e'.repeat(100) });
  });
});
