import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { slipEncode, SlipDecoder, SLIP_END, SLIP_ESC, type SlipResult } from '../../../src/wire/slip.ts';

const oks = (rs: SlipResult[]) => rs.filter((r) => r.ok).map((r) => (r.ok ? Array.from(r.frame) : []));
const errs = (rs: SlipResult[]) => rs.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.reason));

describe('slipEncode', () => {
  it('escapes every byte value and round-trips', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const enc = slipEncode(all);
    expect(enc[0]).toBe(SLIP_END);
    expect(enc[enc.length - 1]).toBe(SLIP_END);
    expect(enc.subarray(1, -1).includes(SLIP_END)).toBe(false);
    const rs = new SlipDecoder(1024).push(enc);
    expect(rs).toEqual([{ ok: true, frame: all }]);
  });
  it('appends the CRC-32 little-endian before escaping', () => {
    const f = new Uint8Array([1, 2, 3]);
    const c = crc32(f) >>> 0;
    const enc = slipEncode(f);
    const noEsc = [1, 2, 3, c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, c >>> 24];
    if (!noEsc.some((x) => x === SLIP_END || x === SLIP_ESC)) expect(Array.from(enc)).toEqual([SLIP_END, ...noEsc, SLIP_END]);
  });
});

describe('SlipDecoder', () => {
  it('any frames, split at arbitrary chunk boundaries, come out intact and in order', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 8 }), fc.array(fc.nat(40), { maxLength: 20 }), (frames, cuts) => {
        const stream = Uint8Array.from(frames.flatMap((f) => Array.from(slipEncode(f))));
        const d = new SlipDecoder(128);
        const out: SlipResult[] = [];
        let pos = 0;
        for (const c of cuts) {
          out.push(...d.push(stream.subarray(pos, pos + c)));
          pos = Math.min(stream.length, pos + c);
        }
        out.push(...d.push(stream.subarray(pos)));
        expect(errs(out)).toEqual([]);
        expect(oks(out)).toEqual(frames.map((f) => Array.from(f)));
      }),
      { numRuns: 300, seed: 5 },
    );
  });
  it('detects a corrupted byte by CRC', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 60 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (f, at, x) => {
        const enc = slipEncode(f);
        const i = 1 + (at % (enc.length - 2));
        const v = enc[i]! ^ x;
        // Keep the corruption a plain data byte so that it tests the CRC, not the framing.
        if ([SLIP_END, SLIP_ESC].includes(v) || [SLIP_END, SLIP_ESC].includes(enc[i]!) || enc[i - 1] === SLIP_ESC) return;
        enc[i] = v;
        expect(new SlipDecoder(128).push(enc)).toEqual([{ ok: false, reason: 'crc' }]);
      }),
      { numRuns: 300, seed: 6 },
    );
  });
  it('resynchronizes after garbage, joining mid-frame', () => {
    const d = new SlipDecoder(128);
    const good = new Uint8Array([10, 20, 30]);
    const enc = slipEncode(good);
    const rs = [...d.push(new Uint8Array([0x55, 0x66, 0x77, 0x88, 0x99, 0x42])), ...d.push(enc), ...d.push(enc.subarray(3)), ...d.push(enc)];
    expect(errs(rs)).toEqual(['crc', 'crc']); // the leading garbage; the tail of a frame we joined in the middle of
    expect(oks(rs)).toEqual([[10, 20, 30], [10, 20, 30]]);
  });
  it('too-large: reported once, discarded up to END, then back to normal', () => {
    const d = new SlipDecoder(16);
    expect(d.push(slipEncode(new Uint8Array(16).fill(7)))).toEqual([{ ok: true, frame: new Uint8Array(16).fill(7) }]);
    const rs = d.push(slipEncode(new Uint8Array(100).fill(1)));
    expect(errs(rs)).toEqual(['too-large']);
    expect(oks(d.push(slipEncode(new Uint8Array([1]))))).toEqual([[1]]);
    // Buffer is fixed at maxFrame + 4, whatever arrives.
    expect((d as unknown as { buf: Uint8Array }).buf.length).toBe(20);
  });
  it('a stream without END never grows the buffer and reports too-large once', () => {
    const d = new SlipDecoder(32);
    const rs: SlipResult[] = [];
    for (let i = 0; i < 100; i++) rs.push(...d.push(new Uint8Array(1000).fill(0x41)));
    expect(errs(rs)).toEqual(['too-large']);
  });
  it('bad escapes, runts and empty frames', () => {
    const d = new SlipDecoder(64);
    expect(d.push(new Uint8Array([SLIP_END, 1, SLIP_ESC, 0x01, 2, 3, 4, 5, SLIP_END]))).toEqual([{ ok: false, reason: 'bad-escape' }]);
    expect(d.push(new Uint8Array([1, 2, SLIP_ESC, SLIP_END]))).toEqual([{ ok: false, reason: 'bad-escape' }]);
    expect(d.push(new Uint8Array([1, 2, 3, SLIP_END]))).toEqual([{ ok: false, reason: 'runt' }]);
    expect(d.push(new Uint8Array([SLIP_END, SLIP_END, SLIP_END]))).toEqual([]);
    expect(oks(d.push(slipEncode(new Uint8Array())))).toEqual([[]]);
  });
  it('bad arguments are clear exceptions', () => {
    expect(() => new SlipDecoder(0)).toThrow(/maxFrame must be an integer/);
    expect(() => new SlipDecoder(64).push('x' as never)).toThrow(/expected a Uint8Array/);
    expect(() => slipEncode(null as never)).toThrow(/expected a Uint8Array/);
  });
});
