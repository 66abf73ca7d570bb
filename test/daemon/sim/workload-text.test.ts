import { describe, expect, it } from 'vitest';
import { text, utf8 } from '../../../daemon/sim/workload.ts';

// The workload builds its values' bytes without TextEncoder/TextDecoder (a native call
// per short string); these must give exactly what those give, or traces would change.
describe('workload utf8/text', () => {
  const samples = ['', '1.1', '16.123456', 'a'.repeat(64), 'b'.repeat(65), 'x\u007f', 'caf\u00e9', '\u{1f600}.2', '\ufeffbom', 'lone \ud800 surrogate'];
  it('utf8 gives TextEncoder bytes', () => {
    for (const s of samples) expect([...utf8(s)], s).toEqual([...new TextEncoder().encode(s)]);
  });
  it('text gives TextDecoder text, also for non-ASCII, invalid and BOM-led bytes', () => {
    const bytes = [...samples.map((s) => new TextEncoder().encode(s)), new Uint8Array([0x80, 0x41]), new Uint8Array([0xef, 0xbb, 0xbf, 0x41]), new Uint8Array(70).fill(0x41), new Uint8Array([0x41, 0xff])];
    for (const b of bytes) expect(text(b), String([...b])).toBe(new TextDecoder().decode(b));
  });
});
