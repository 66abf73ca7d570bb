import { describe, expect, it } from 'vitest';
import { decode, encode } from 'cbor-x';
import { decodeReplyBody, encodeReplyBody, plainReplyItems } from '../../../daemon/runtime/forward.ts';
import type { ClientResult } from '../../../daemon/runtime/results.ts';

/**
 * The direct reader must give exactly the items cbor-x gives for the same bytes, or
 * decline (undefined: decodeReplyBody then hands the bytes to cbor-x, as before it existed),
 * so decodeReplyBody's outcome is what cbor-x alone gave for any bytes.
 */
const same = (body: Uint8Array): boolean => {
  const items = plainReplyItems(body);
  if (items === undefined) return false;
  expect(decode(body), `bytes ${[...body]}`).toEqual(items);
  return true;
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
  it('reads the usual replies directly, with the items cbor-x gives', () => {
    // Integers below 2^32 and ASCII text take the direct path; the others (2^32 and up,
    // non-ASCII text, values encodeReplyBody writes as negative or float) go to cbor-x.
    const direct = results.map((r) => same(encodeReplyBody(r)));
    expect(direct).toEqual([true, true, true, false, false, true, true, true, true, false, false, false]);
  });
  it('gives the items cbor-x gives, or declines, for other and damaged bytes', () => {
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
    let direct = 0;
    for (const b of bodies) if (same(b)) direct++;
    expect(direct).toBeGreaterThan(0); // some damaged bodies are still plain replies, read directly
  });
  it('a plain reply with text over 64 bytes decodes to its values', () => {
    const r = decodeReplyBody(409, encodeReplyBody({ status: 409, index: 70000, holder: 'n3', error: 'e'.repeat(100) }));
    expect(r).toEqual({ status: 409, index: 70000, holder: 'n3', error: 'e'.repeat(100) });
  });
});
