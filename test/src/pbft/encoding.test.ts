/**
 * PBFT's nested byte formats: round trips, and decoders that never throw and never
 * accept what an honest sender cannot produce, whatever the bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEngineMeta, decodeExecState, decodeNewView, decodeRequest, decodeSigList, decodeSlotRecord, decodeViewChange, encodeEngineMeta, encodeExecState,
  encodeNewView, encodeRequest, encodeSigList, encodeSlotRecord, encodeViewChange, NULL_DIGEST, sha256, type Limits, type PreparedCert,
} from '../../../src/pbft/encoding.ts';
import { EntryType } from '../../../src/wire/messages.ts';
import { Rng } from '../../../src/rng.ts';

const lim: Limits = { sigBytes: 64, maxOpBytes: 1000, maxItems: 8, n: 4 };
const sig = (k: number) => new Uint8Array(64).fill(k);
const d = (k: number) => sha256(new Uint8Array([k]));
const cert = (seq: number, view: number): PreparedCert => ({ seq, view, digest: d(seq), ppSig: sig(seq), prepares: [{ replica: 2, sig: sig(2) }, { replica: 3, sig: sig(3) }] });

const samples: Array<[string, Uint8Array, (b: Uint8Array) => unknown]> = [
  ['request', encodeRequest({ origin: 2, reqNo: 77, kind: EntryType.Normal, op: new Uint8Array([1, 2, 3]), sig: sig(1) }), (b) => decodeRequest(b, lim)],
  ['view-change', encodeViewChange({ newView: 5, replica: 3, stable: 16, stableDigest: d(9), proof: [1, 2, 3].map((r) => ({ replica: r, sig: sig(r) })), certs: [cert(17, 4), cert(19, 2)] }), (b) => decodeViewChange(b, lim)],
  ['new-view', encodeNewView({ view: 5, vcs: [1, 2, 3].map((r) => ({ replica: r, digest: d(r) })), pps: [{ seq: 17, digest: d(17), sig: sig(4) }, { seq: 18, digest: NULL_DIGEST, sig: sig(5) }] }), (b) => decodeNewView(b, lim)],
  ['slot record', encodeSlotRecord(17, { ppView: 4, ppDigest: d(17), ppSig: sig(9), request: new Uint8Array([7]), cert: cert(17, 4) }), (b) => decodeSlotRecord(17, b, lim)],
  ['signature list', encodeSigList([{ replica: 1, sig: sig(1) }, { replica: 4, sig: sig(4) }]), (b) => decodeSigList(b, lim)],
  ['execution state', encodeExecState(new Map([[1, { top: 70, lo: 0x7fffffff, hi: -1 }], [3, { top: 2, lo: 3, hi: 0 }]])), (b) => decodeExecState(b)],
  ['engine meta', encodeEngineMeta({ exec: new Uint8Array([0x80]), stable: 16, stableDigest: d(1), proof: [{ replica: 1, sig: sig(1) }], certs: [cert(17, 1)] }), (b) => decodeEngineMeta(b, lim)],
];

describe('PBFT encodings', () => {
  for (const [name, bytes, dec] of samples) {
    it(`${name}: decodes to a value (not an error) and is canonical`, () => {
      const v = dec(bytes);
      expect(typeof v, String(v)).not.toBe('string');
    });
    it(`${name}: every truncation and every single-byte change decodes to a value or a named error, never throws`, () => {
      for (let n = 0; n < bytes.length; n++) {
        const r = dec(bytes.subarray(0, n));
        expect(typeof r === 'string' || typeof r === 'object').toBe(true);
      }
      const rng = new Rng(name);
      for (let k = 0; k < 300; k++) {
        const m = bytes.slice();
        m[rng.int(0, m.length - 1)] = rng.int(0, 255);
        expect(() => dec(m)).not.toThrow();
      }
      expect(typeof dec(new Uint8Array([...bytes, 0]))).toBe('string'); // trailing bytes
    });
  }
  it('random bytes never throw in any decoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const [, , dec] of samples) expect(() => dec(b)).not.toThrow();
      }),
      { numRuns: 400 },
    );
  });
  it('refuses what no honest sender produces', () => {
    expect(decodeRequest(encodeRequest({ origin: 2, reqNo: 1, kind: EntryType.Noop, op: new Uint8Array([1]), sig: sig(1) }), lim)).toMatch(/read marker carries no operation/);
    expect(decodeRequest(encodeRequest({ origin: 2, reqNo: 1, kind: EntryType.Normal, op: new Uint8Array(1001), sig: sig(1) }), lim)).toMatch(/op/);
    expect(decodeRequest(encodeRequest({ origin: 2, reqNo: 1, kind: EntryType.Normal, op: new Uint8Array(1), sig: new Uint8Array(16) }), lim)).toMatch(/sig/);
    expect(decodeRequest(encodeRequest({ origin: 2, reqNo: 0, kind: EntryType.Normal, op: new Uint8Array(1), sig: sig(1) }), lim)).toMatch(/reqNo/);
    const many = encodeViewChange({ newView: 5, replica: 3, stable: 0, stableDigest: NULL_DIGEST, proof: [], certs: Array.from({ length: 9 }, (_, i) => cert(i + 1, 1)) });
    expect(decodeViewChange(many, lim)).toMatch(/certificates: expected 0\.\.8 items/);
    expect(decodeExecState(encodeExecState(new Map([[3, { top: 1, lo: 1, hi: 0 }]])).map((x, i) => (i === 2 ? 0 : x)))).toMatch(/origin id/);
  });
  it('the execution state round-trips the 64-bit window exactly', () => {
    const w = new Map([[7, { top: 2 ** 40, lo: 0x80000001 | 0, hi: 0xfffffffe | 0 }]]);
    const back = decodeExecState(encodeExecState(w));
    expect(back).toEqual(w);
  });
});
