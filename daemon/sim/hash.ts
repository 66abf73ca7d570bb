/**
 * Cheap, deterministic hashes for the invariant checker: 53-bit values (two FNV-1a
 * variants combined) so that they stay exact JavaScript numbers. A collision can only
 * hide a violation, never invent one (equal inputs always hash equal); at 53 bits and
 * a few thousand entries per run the chance is ~1e-9 per run.
 */
export function hashBytes(b: Uint8Array): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ b.length;
  for (let i = 0; i < b.length; i++) {
    const x = b[i]!;
    h1 = Math.imul(h1 ^ x, 0x01000193);
    h2 = Math.imul(h2 ^ x, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h1 >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff);
}

/** Chain value of an entry given the previous entry's chain value (a hash chain over the log). */
export function chainMix(prev: number, index: number, term: number, type: number, dataHash: number): number {
  let h1 = Math.imul((prev % 0x100000000) ^ index, 0x9e3779b1);
  h1 = Math.imul(h1 ^ term, 0x85ebca6b);
  h1 = Math.imul(h1 ^ type, 0xc2b2ae35);
  h1 = Math.imul(h1 ^ (dataHash % 0x100000000), 0x27d4eb2f);
  let h2 = Math.imul(Math.floor(prev / 0x100000000) ^ term, 0x165667b1);
  h2 = Math.imul(h2 ^ Math.floor(dataHash / 0x100000000) ^ (h1 >>> 13), 0x9e3779b1);
  return ((h1 ^ (h1 >>> 16)) >>> 0) * 0x200000 + ((h2 >>> 0) & 0x1fffff);
}
