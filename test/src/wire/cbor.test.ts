import fc from 'fast-check';
import { encode as cborxEncode } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { CborWriter, headSize, MAX_CBOR_DEPTH, readCbor, type CborValue } from '../../../src/wire/cbor.ts';

const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));

describe('bounded CBOR subset', () => {
  it('writes shortest-form heads that cbor-x agrees with, and reads them back', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(70000), fc.maxSafeNat()), (n) => {
        const ours = new CborWriter().uint(n).finish();
        expect(ours.length).toBe(headSize(n));
        expect(Buffer.from(ours).equals(Buffer.from(cborxEncode(n > 0xffffffff ? BigInt(n) : n)))).toBe(true);
        expect(readCbor(ours)).toEqual({ ok: true, value: n, end: ours.length });
      }),
      { numRuns: 500, seed: 3 },
    );
  });
  it('accepts 2^53-1 and rejects 2^53', () => {
    expect(readCbor(hex('1b 001fffffffffffff'))).toMatchObject({ ok: true, value: Number.MAX_SAFE_INTEGER });
    expect(readCbor(hex('1b 0020000000000000'))).toMatchObject({ ok: false, reason: 'malformed' });
  });
  it('rejects non-shortest forms at every width', () => {
    for (const h of ['1817', '190017', '1a0000ffff', '1b00000000ffffffff', '5800', '980100']) {
      expect(readCbor(hex(h)), h).toMatchObject({ ok: false, reason: 'malformed' });
    }
  });
  it('rejects what the wire format never emits', () => {
    for (const [h, why] of [
      ['20', /negative/], ['6161', /text/], ['a0', /map/], ['c100', /tag/], ['f93c00', /float/], ['fb3ff0000000000000', /float/],
      ['9fff', /indefinite/], ['5f41ff', /indefinite/], ['1c', /reserved/], ['ff', /simple value or float/],
    ] as const) {
      const r = readCbor(hex(h));
      expect(r.ok, h).toBe(false);
      if (!r.ok) expect(r.detail, h).toMatch(why);
    }
  });
  it('huge claimed lengths are truncated, not allocated', () => {
    for (const h of ['9affffffff', '5affffffff', '9b0000000100000000', '5b0000000100000000', '99ffff00', '82 5a00010000']) {
      expect(readCbor(hex(h)), h).toMatchObject({ ok: false, reason: 'truncated' });
    }
    // A length beyond 2^53-1 is not even a safe integer.
    expect(readCbor(hex('5bffffffffffffffff'))).toMatchObject({ ok: false, reason: 'malformed' });
  });
  it('nested claims cannot count on the bytes their parents still owe (at most one slot per input byte in total)', () => {
    // [[x, y, z, u, v], ?]: the outer array still owes an item and the middle one
    // another when the inner claims five items from the last five bytes. Before the
    // owed bytes were counted, all three claims passed and 2 + 2 + 5 = 9 slots were
    // sized for an 8-byte input (found by the frame fuzz test once new message types
    // changed its corpus).
    const stats = { maxMaterialized: 0, totalMaterialized: 0 };
    const r = readCbor(Uint8Array.of(0x82, 0x82, 0x85, 0, 0, 0, 0, 0), 0, 8, stats);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('truncated');
    expect(stats.totalMaterialized).toBeLessThanOrEqual(8);
    // A byte string inside an array likewise leaves a byte for each later sibling.
    const s2 = { maxMaterialized: 0, totalMaterialized: 0 };
    expect(readCbor(Uint8Array.of(0x82, 0x44, 1, 2, 3, 4), 0, 6, s2).ok).toBe(false);
    expect(s2.totalMaterialized).toBeLessThanOrEqual(6);
    // Exactly enough bytes is still fine.
    expect(readCbor(Uint8Array.of(0x82, 0x82, 0x83, 0, 0, 0, 0, 0))).toEqual({ ok: true, value: [[[0, 0, 0], 0], 0], end: 8 });
  });

  it(`limits nesting to ${MAX_CBOR_DEPTH}`, () => {
    expect(readCbor(hex('81818100'))).toMatchObject({ ok: true });
    expect(readCbor(hex('8181818100'))).toMatchObject({ ok: false, reason: 'malformed' });
  });
  it('round-trips every value of the subset', () => {
    const leaf = fc.oneof(fc.maxSafeNat(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.uint8Array({ maxLength: 30 }));
    const val: fc.Arbitrary<CborValue> = fc.oneof(leaf, fc.array(leaf, { maxLength: 5 }), fc.array(fc.array(leaf, { maxLength: 3 }), { maxLength: 3 }));
    fc.assert(
      fc.property(val, (v) => {
        const b = new CborWriter().value(v).finish();
        const r = readCbor(b);
        expect(r).toEqual({ ok: true, value: v, end: b.length });
      }),
      { numRuns: 300, seed: 8 },
    );
  });
});
