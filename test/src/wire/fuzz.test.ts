/**
 * Seeded decoder fuzz: ≥ 100,000 hostile frames per run. Asserts that decodeFrame
 * never throws, answers every rejection with a reason from the closed set, reads no
 * length it cannot back with input bytes, and only accepts canonical frames
 * (re-encoding an accepted message gives back the same bytes).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import type { CborReadStats } from '../../../src/wire/cbor.ts';
import { DROP_REASONS, decodeFrame, encodeFrame, encodeMessage, MSG_TYPES, type DropReason } from '../../../src/wire/codec.ts';
import type { Message } from '../../../src/wire/messages.ts';
import { computeTag, TAG_BYTES } from '../../../src/wire/tag.ts';
import { envelope, KEY_A, messageArb } from './arbitraries.ts';

const CLUSTER = 3;
const CASES = 100_000;
const MAX_FRAME = 4096;

function corpus(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const t of MSG_TYPES) {
    const samples = fc.sample(fc.tuple(messageArb[t] as fc.Arbitrary<Message>, envelope), { numRuns: 6, seed: 77 + t });
    for (const [m, e] of samples) out.push(encodeFrame(m, { ...e, cluster: CLUSTER }, KEY_A));
  }
  return out;
}

/** Heads claiming enormous lengths: array/byte string/uint with 4- and 8-byte arguments. */
const HUGE = [
  [0x9a, 0xff, 0xff, 0xff, 0xff],
  [0x5a, 0xff, 0xff, 0xff, 0xff],
  [0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
  [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x9f],
  [0x5f],
  [0xbf],
  [0x99, 0xff, 0xff],
];

function mutate(rng: Rng, src: Uint8Array): Uint8Array {
  let b = Array.from(src);
  const ops = rng.int(1, 3);
  for (let k = 0; k < ops; k++) {
    const at = rng.int(0, Math.max(0, b.length - 1));
    switch (rng.int(0, 6)) {
      case 0: // bit flip
        if (b.length) b[at] = b[at]! ^ (1 << rng.int(0, 7));
        break;
      case 1: // insertion
        b.splice(at, 0, rng.int(0, 255));
        break;
      case 2: // deletion
        b.splice(at, 1);
        break;
      case 3: {
        // duplication of a slice
        const len = rng.int(1, 8);
        b.splice(at, 0, ...b.slice(at, at + len));
        break;
      }
      case 4: // truncation
        b = b.slice(0, at);
        break;
      case 5: // huge head
        b.splice(at, rng.int(0, 2), ...rng.pick(HUGE));
        break;
      default: // random byte
        if (b.length) b[at] = rng.int(0, 255);
    }
  }
  return Uint8Array.from(b);
}

/** Re-tags the CBOR part with the right key, so field validation (not just the tag) is exercised. */
function retag(f: Uint8Array): Uint8Array {
  if (f.length <= TAG_BYTES) return f;
  const body = f.subarray(0, f.length - TAG_BYTES);
  const out = new Uint8Array(f.length);
  out.set(body);
  out.set(computeTag(KEY_A, body), body.length);
  return out;
}

describe('decoder fuzz', () => {
  it(`survives ${CASES} seeded hostile frames`, () => {
    const rng = new Rng('wire-fuzz-1');
    const base = corpus();
    const seen = new Map<string, number>();
    const valid = new Set<string>(DROP_REASONS);
    let accepted = 0;
    let cases = 0;
    let worstRatio = 0;

    const run = (f: Uint8Array) => {
      cases++;
      const stats: CborReadStats = { maxMaterialized: 0, totalMaterialized: 0 };
      let r;
      try {
        r = decodeFrame(f, { cluster: CLUSTER, keyring: { current: KEY_A }, maxFrame: MAX_FRAME, stats });
      } catch (e) {
        throw new Error(`decodeFrame threw on ${Buffer.from(f).toString('hex')}: ${String(e)}`);
      }
      // Allocation bound. An array is allocated at its claimed length (≤ the bytes left)
      // before its items are read, and the byte strings among those items are counted
      // again: for a truncated or malformed array the same input bytes back a slot and a
      // string's content, so the bound is 2 × the frame (still O(frame), as docs/wire.md
      // says). For a frame that decodes, every slot and byte is backed by its own input byte.
      if (stats.totalMaterialized > 2 * f.length) throw new Error(`materialized ${stats.totalMaterialized} > 2 × frame ${f.length}: ${Buffer.from(f).toString('hex')}`);
      if (r.ok) {
        if (stats.totalMaterialized > f.length) throw new Error(`accepted frame materialized ${stats.totalMaterialized} > ${f.length}`);
        if (f.length) worstRatio = Math.max(worstRatio, stats.totalMaterialized / f.length);
        accepted++;
        const again = encodeMessage(r.msg, r.env);
        if (Buffer.compare(again, f.subarray(0, f.length - TAG_BYTES)) !== 0) {
          throw new Error(`accepted a non-canonical frame ${Buffer.from(f).toString('hex')}`);
        }
        seen.set('ok', (seen.get('ok') ?? 0) + 1);
      } else {
        if (!valid.has(r.reason) || typeof r.detail !== 'string' || !r.detail) throw new Error(`bad rejection ${JSON.stringify(r)}`);
        seen.set(r.reason, (seen.get(r.reason) ?? 0) + 1);
      }
    };

    // Systematic: every truncation of every corpus frame.
    for (const f of base) for (let n = 0; n < f.length; n++) run(f.subarray(0, n));
    // Random.
    let guard = 0;
    while (cases < CASES && guard++ < 2 * CASES) {
      const kind = rng.int(0, 9);
      if (kind === 0) {
        run(Uint8Array.from({ length: rng.int(0, 80) }, () => rng.int(0, 255)));
      } else if (kind === 1) {
        // random bytes behind a plausible prefix, re-tagged
        const head = [0x80 | rng.int(8, 20), 1, rng.pick(MSG_TYPES), CLUSTER];
        run(retag(Uint8Array.from([...head, ...Array.from({ length: rng.int(0, 60) }, () => rng.int(0, 255))])));
      } else {
        const m = mutate(rng, rng.pick(base));
        run(rng.chance(0.5) ? retag(m) : m);
      }
    }
    // Oversized input is refused before parsing.
    run(new Uint8Array(MAX_FRAME + 1));

    expect(cases).toBeGreaterThanOrEqual(CASES);
    expect(worstRatio).toBeLessThanOrEqual(1);
    // The fuzz reaches deep: most reasons show up, and some mutants are still valid frames.
    for (const r of ['too-large', 'truncated', 'malformed', 'bad-version', 'unknown-type', 'bad-field', 'unknown-cluster', 'bad-tag'] as DropReason[]) {
      expect(seen.get(r) ?? 0, `reason ${r} reached`).toBeGreaterThan(0);
    }
    expect(accepted).toBeGreaterThan(0);
    console.log(`wire fuzz: ${cases} cases`, Object.fromEntries([...seen].sort()));
  });
});
