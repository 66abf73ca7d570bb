/**
 * The JS HMAC-SHA256 in tag.ts (precomputed pads, RFC 2104 §4) against node:crypto's
 * createHmac: every message length across the one/two-block padding boundaries, keys
 * of every accepted length (and longer ones, which HMAC hashes first), random inputs,
 * and RFC 4231 test vectors.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeTag, hmacSha256, TAG_BYTES, verifyFrameTag, verifyTag, writeTag } from '../../../src/wire/tag.ts';
import { Rng } from '../../../src/rng.ts';

const ref = (key: Uint8Array, data: Uint8Array) => new Uint8Array(createHmac('sha256', key).update(data).digest());
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (rng: Rng, n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 255);
  return b;
};

describe('hmacSha256 equals createHmac', () => {
  it('every data length 0..300 (padding boundaries at 55/56, 119/120) and key lengths 1..130', () => {
    const rng = new Rng('tag-lengths');
    for (let len = 0; len <= 300; len++) {
      const key = bytes(rng, 1 + (len % 130));
      const data = bytes(rng, len);
      expect(hex(hmacSha256(key, data)), `len ${len}, key ${key.length}`).toBe(hex(ref(key, data)));
    }
  });

  it('random keys and data (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.uint8Array({ maxLength: 2000 }), (key, data) => {
        expect(hex(hmacSha256(key, data))).toBe(hex(ref(key, data)));
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('RFC 4231 test cases 1, 2 and 6 (key longer than a block)', () => {
    const tc1 = hmacSha256(new Uint8Array(20).fill(0x0b), new TextEncoder().encode('Hi There'));
    expect(hex(tc1)).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
    const tc2 = hmacSha256(new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?'));
    expect(hex(tc2)).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    const tc6 = hmacSha256(new Uint8Array(131).fill(0xaa), new TextEncoder().encode('Test Using Larger Than Block-Size Key - Hash Key First'));
    expect(hex(tc6)).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  });

  it('many keys in turn (beyond the key cache) and a key buffer mutated in place still give the right tags', () => {
    const rng = new Rng('tag-keys');
    const keys = Array.from({ length: 20 }, () => bytes(rng, 32));
    const data = bytes(rng, 77);
    for (let round = 0; round < 3; round++) {
      for (const k of keys) expect(hex(computeTag(k, data))).toBe(hex(ref(k, data).subarray(0, TAG_BYTES)));
    }
    const k = bytes(rng, 32);
    const before = computeTag(k, data);
    k[0]! ^= 1;
    const after = computeTag(k, data);
    expect(hex(after)).toBe(hex(ref(k, data).subarray(0, TAG_BYTES)));
    expect(hex(after)).not.toBe(hex(before));
  });

  it('computeTag, writeTag and verifyTag agree; a flipped bit or a wrong key fails', () => {
    const rng = new Rng('tag-verify');
    const cur = bytes(rng, 32);
    const prev = bytes(rng, 16);
    const data = bytes(rng, 150);
    const t = computeTag(cur, data);
    const out = new Uint8Array(TAG_BYTES + 3);
    writeTag(cur, data, out, 3);
    expect(hex(out.subarray(3))).toBe(hex(t));
    expect(verifyTag({ current: cur, previous: prev }, data, t)).toBe('current');
    expect(verifyTag({ current: prev, previous: cur }, data, t)).toBe('previous');
    expect(verifyTag({ current: prev }, data, t)).toBe(null);
    const bad = t.slice();
    bad[TAG_BYTES - 1]! ^= 0x80;
    expect(verifyTag({ current: cur }, data, bad)).toBe(null);
    expect(verifyTag({ current: cur }, data, t.subarray(0, 15))).toBe(null);
  });

  it('remembered results (seal then verify in one process) never accept a wrong tag or changed data', () => {
    // verifyTag looks up the digest remembered when the same bytes were sealed; these
    // cases hit that table: same slot with a forged tail, changed data under the
    // remembered tag, same length and prefix, a buffer mutated after sealing, and
    // data longer than the remembered limit. Every answer is checked against createHmac.
    const rng = new Rng('tag-memo');
    const key = bytes(rng, 32);
    const ring = { current: key };
    for (let round = 0; round < 300; round++) {
      const len = rng.int(0, 700);
      const data = bytes(rng, len);
      const t = computeTag(key, data);
      expect(hex(t)).toBe(hex(ref(key, data).subarray(0, TAG_BYTES)));
      expect(verifyTag(ring, data.slice(), t)).toBe('current');
      expect(verifyTag(ring, data, t)).toBe('current');
      const forged = t.slice();
      forged[2 + rng.int(0, TAG_BYTES - 3)]! ^= 1 << rng.int(0, 7); // keeps the slot (bytes 0–1), changes the tag
      expect(verifyTag(ring, data, forged)).toBe(null);
      if (len > 0) {
        const changed = data.slice();
        changed[rng.int(0, len - 1)]! ^= 1 << rng.int(0, 7);
        expect(verifyTag(ring, changed, t)).toBe(null);
        expect(verifyTag(ring, changed, computeTag(key, changed))).toBe('current');
        data[len - 1]! ^= 0xff; // mutate the sealed buffer in place: the old tag must no longer pass
        expect(verifyTag(ring, data, t)).toBe(null);
      }
      expect(verifyTag(ring, data.subarray(0, Math.max(0, len - 1)), t)).toBe(len === 0 ? 'current' : null);
    }
  });

  it('writeTag into the same buffer after the body, and verifyFrameTag on that frame, agree with createHmac', () => {
    const rng = new Rng('tag-inplace');
    const key = bytes(rng, 32);
    for (const len of [0, 1, 55, 56, 64, 120, 700]) {
      const frame = new Uint8Array(len + TAG_BYTES);
      frame.set(bytes(rng, len));
      writeTag(key, frame, frame, len, len);
      expect(hex(frame.subarray(len))).toBe(hex(ref(key, frame.subarray(0, len)).subarray(0, TAG_BYTES)));
      expect(verifyFrameTag({ current: key }, frame, len)).toBe('current');
      expect(verifyFrameTag({ current: bytes(rng, 32) }, frame, len)).toBe(null);
      expect(verifyFrameTag({ current: key }, frame, len - 1)).toBe(null); // tag must end the frame
      const bad = frame.slice();
      bad[len + TAG_BYTES - 1]! ^= 1;
      expect(verifyFrameTag({ current: key }, bad, len)).toBe(null);
    }
    const f = new Uint8Array(20);
    expect(() => writeTag(key, f, f, 2, 10)).toThrow(/writeTag: .*not overlapping the data/);
    expect(() => writeTag(key, f, f, 5, 30)).toThrow(/writeTag: expected len 0\.\.20/);
  });

  it('bad input is a clear TypeError', () => {
    expect(() => hmacSha256('k' as unknown as Uint8Array, new Uint8Array(1))).toThrow(/key and data must be Uint8Arrays/);
  });
});
