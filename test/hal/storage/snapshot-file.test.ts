/**
 * A snapshot file is one record written in two parts (hal/storage/format.ts
 * encodeSnapshotParts): the head, then the state machine's bytes as they are. The two
 * together must be one valid record whose CRC covers both, as recovery reads it.
 */
import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshotParts } from '../../../hal/storage/format.ts';
import { Kind, parseRecord } from '../../../hal/storage/records.ts';

describe('snapshot file: head and state written apart, one record', () => {
  const data = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff);
  const snap = { index: 123_456_789_012, term: 7, config: { voters: [1, 2, 3], learners: [4] }, data };

  it('parses as one Snapshot record with the same index, term, config and data, and the data is not copied', () => {
    const [head, tail] = encodeSnapshotParts(snap);
    expect(tail).toBe(data);
    const file = new Uint8Array(head.length + tail.length);
    file.set(head, 0);
    file.set(tail, head.length);
    const r = parseRecord(file, 0, 1 << 30);
    if (!r.ok) throw new Error(r.reason);
    expect(r.kind).toBe(Kind.Snapshot);
    expect(r.next).toBe(file.length);
    const back = decodeSnapshot(r.payload);
    expect(back.index).toBe(snap.index);
    expect(back.term).toBe(7);
    expect(back.config).toEqual(snap.config);
    expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
  });

  it('a flipped bit anywhere in the state, or a state cut short, fails the record', () => {
    const [head, tail] = encodeSnapshotParts(snap);
    for (const at of [0, 1, 35_000, tail.length - 1]) {
      const file = new Uint8Array(head.length + tail.length);
      file.set(head, 0);
      file.set(tail, head.length);
      file[head.length + at]! ^= 0x10;
      const r = parseRecord(file, 0, 1 << 30);
      expect(r.ok, `bit flipped in the state at ${at}`).toBe(false);
    }
    const short = new Uint8Array(head.length + tail.length - 1);
    short.set(head, 0);
    short.set(tail.subarray(0, tail.length - 1), head.length);
    const r = parseRecord(short, 0, 1 << 30);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.partial).toBe(true);
  });
});
