import { describe, expect, it } from 'vitest';
import { StorageCorruptError, StorageInputError, recover } from '../../../hal/storage/index.ts';
import { HARDSTATE_FILE, SEGMENT_MAGIC, SEGMENT_VERSION, encodeCommit, encodeSegmentHeader, segmentName } from '../../../hal/storage/format.ts';
import { Kind, Writer } from '../../../hal/storage/records.ts';
import { Rng } from '../../../src/rng.ts';
import { ent, ents, openNow, persistNow, show } from './helpers.ts';
import { PowerLossStorage } from './power-loss-storage.ts';

const ropts = { maxRecordBytes: 16 << 20, maxSnapshotBytes: 512 << 20 };

describe('durable log: round trip', () => {
  it('a fresh directory opens empty with bootId 1, and everything persisted comes back', () => {
    const st = new PowerLossStorage();
    const a = openNow(st);
    expect(a.state.entries).toEqual([]);
    expect(a.state.hardState).toEqual({ term: 0, vote: 0, commit: 0 });
    expect(a.state.bootId).toBe(1);
    expect(a.state.warnings).toEqual([]);
    expect(persistNow(a.log, { hardState: { term: 2, vote: 3, commit: 0 }, entries: ents(1, 5, 2) })).toBeNull();
    expect(persistNow(a.log, { hardState: { term: 2, vote: 3, commit: 4 } })).toBeNull();
    const meta = Uint8Array.of(1, 2, 3);
    expect(persistNow(a.log, { meta })).toBeNull();
    const b = openNow(st);
    expect(b.state.bootId).toBe(2);
    expect(b.state.hardState).toEqual({ term: 2, vote: 3, commit: 4 });
    expect(show(b.state.entries)).toEqual(show(ents(1, 5, 2)));
    expect([...b.state.meta]).toEqual([1, 2, 3]);
    expect(b.state.warnings).toEqual([]);
  });

  it('an idle log writes nothing, and an unchanged hard state costs no write', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    persistNow(log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 2, 1) });
    const before = { bytes: st.bytes, syncs: st.syncs, dirSyncs: st.dirSyncs };
    persistNow(log, { hardState: { term: 1, vote: 1, commit: 0 } });
    persistNow(log, {});
    expect({ bytes: st.bytes, syncs: st.syncs, dirSyncs: st.dirSyncs }).toEqual(before);
    // a commit advance alone is not synced (Raft's commit index is volatile): answered
    // at once, nothing written; its small record rides with the next flush
    persistNow(log, { hardState: { term: 1, vote: 1, commit: 2 } });
    expect({ bytes: st.bytes, syncs: st.syncs, dirSyncs: st.dirSyncs }).toEqual(before);
    expect(log.stats().unsynced).toBe(3);
    persistNow(log, { entries: ents(3, 3, 1) });
    expect(st.syncs).toBe(before.syncs + 1);
    expect(st.dirSyncs).toBe(before.dirSyncs);
    expect(openNow(st).state.hardState).toEqual({ term: 1, vote: 1, commit: 2 });
  });

  it('a commit-only batch behind a flush in flight is answered in call order, without a flush of its own', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    const order: string[] = [];
    st.auto = false;
    log.persist({ hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 2, 1) }, (e) => order.push(`entries ${e}`));
    log.persist({ hardState: { term: 1, vote: 1, commit: 2 } }, (e) => order.push(`commit ${e}`));
    expect(order).toEqual([]);
    const groups = log.stats().groups;
    st.runAll();
    st.auto = true;
    expect(order).toEqual(['entries null', 'commit null']);
    expect(log.stats().groups).toBe(groups);
    // A term change is synced even with the same commit.
    const syncs = st.syncs;
    persistNow(log, { hardState: { term: 2, vote: 0, commit: 2 } });
    expect(st.syncs).toBeGreaterThan(syncs);
  });

  it('entries that overwrite a suffix replace it after recovery', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    persistNow(log, { hardState: { term: 1, vote: 1, commit: 2 }, entries: ents(1, 10, 1) });
    expect(persistNow(log, { hardState: { term: 2, vote: 2, commit: 2 }, entries: ents(5, 7, 2) })).toBeNull();
    expect(log.lastIndex).toBe(7);
    expect(persistNow(log, { hardState: { term: 3, vote: 0, commit: 2 }, entries: ents(4, 4, 3) })).toBeNull();
    expect(persistNow(log, { entries: ents(5, 6, 3) })).toBeNull();
    const b = openNow(st);
    expect(show(b.state.entries)).toEqual(show([...ents(1, 3, 1), ...ents(4, 6, 3)]));
    expect(b.state.hardState).toEqual({ term: 3, vote: 0, commit: 2 });
  });

  it('rolls segments at the size limit and recovers across them', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st, { segmentBytes: 1024 });
    for (let i = 1; i <= 60; i++) {
      expect(persistNow(log, { hardState: { term: 1, vote: 1, commit: i - 1 }, entries: [ent(i, 1, 'x'.repeat(100))] })).toBeNull();
    }
    const segs = st.list().filter((n) => n.startsWith('wal-'));
    expect(segs.length).toBeGreaterThan(4);
    expect(log.stats().segments).toBe(segs.length);
    const b = openNow(st, { segmentBytes: 1024 });
    expect(b.state.entries.map((e) => e.index)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(b.state.hardState.commit).toBe(59);
  });
});

describe('durable log: input validation (engine bugs are refused, nothing written)', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['gap', { entries: [ent(4, 1)] }, /entries\[0\]\.index 4 leaves a gap after the last index 2/],
    ['non-contiguous', { entries: [ent(3, 1), ent(5, 1)] }, /entries\[1\]\.index 5 does not follow 3/],
    ['term above current', { entries: [ent(3, 9)] }, /term 9 is above the current term 1/],
    ['overwrite committed', { entries: [ent(1, 1)] }, /would overwrite committed entries \(commit 1\)/],
    ['term goes back', { hardState: { term: 0, vote: 0, commit: 0 } }, /term 0 is below the current term 1/],
    ['double vote', { hardState: { term: 1, vote: 2, commit: 1 } }, /would change the vote already cast for 1 in term 1/],
    ['commit beyond log', { hardState: { term: 1, vote: 1, commit: 3 } }, /commit 3 is beyond the last index 2/],
    ['bad data', { entries: [{ index: 3, term: 1, type: 0, data: 'x' }] }, /entries\[0\]\.data must be a Uint8Array/],
    ['bad type', { entries: [{ index: 3, term: 1, type: 7, data: new Uint8Array() }] }, /entries\[0\]\.type must be an EntryType/],
    ['old snapshot', { snapshot: { index: 1, term: 1, config: null, data: new Uint8Array() } }, /ok/],
    ['bad vote', { hardState: { term: 2, vote: 999, commit: 1 } }, /vote must be a node id 0\.\.254, got 999/],
    ['not an object', null, /batch must be an object/],
  ];
  for (const [name, batch, re] of cases) {
    it(name, () => {
      const st = new PowerLossStorage();
      const { log } = openNow(st);
      persistNow(log, { hardState: { term: 1, vote: 1, commit: 1 }, entries: ents(1, 2, 1) });
      const bytes = st.bytes;
      const err = persistNow(log, batch as never);
      if (name === 'old snapshot') {
        // A snapshot at 1 is newer than none: accepted. Then the same again is refused.
        expect(err).toBeNull();
        const again = persistNow(log, batch as never);
        expect(again).toBeInstanceOf(StorageInputError);
        expect(again!.message).toMatch(/snapshot\.index 1 is not newer than the current snapshot 1/);
        return;
      }
      expect(err).toBeInstanceOf(StorageInputError);
      expect(err!.message).toMatch(re);
      expect(st.bytes).toBe(bytes);
      // still usable afterwards
      expect(persistNow(log, { entries: [ent(3, 1)] })).toBeNull();
    });
  }
});

describe('durable log: group commit', () => {
  it('N persists arriving while a sync is in flight share one more sync; dones fire in order', () => {
    const st = new PowerLossStorage({ auto: false });
    const { log } = openNow(st, {}, () => st.runAll());
    const syncs0 = st.syncs;
    const order: number[] = [];
    log.persist({ hardState: { term: 1, vote: 1, commit: 0 }, entries: [ent(1, 1)] }, (e) => {
      expect(e).toBeNull();
      order.push(1);
    });
    expect(st.inFlight).toBeGreaterThan(0); // the first flush is in flight
    const N = 50;
    for (let i = 2; i <= N + 1; i++) {
      log.persist({ hardState: { term: 1, vote: 1, commit: i - 2 }, entries: [ent(i, 1)] }, (e) => {
        expect(e).toBeNull();
        order.push(i);
      });
    }
    st.runAll();
    expect(order).toEqual(Array.from({ length: N + 1 }, (_, i) => i + 1));
    // first flush: WAL fsync + hard-state replace (tmp fsync + dir fsync); second: one WAL fsync.
    const walAndFileSyncs = st.syncs - syncs0;
    expect(walAndFileSyncs).toBe(3);
    expect(log.stats().groups).toBe(2);
    expect(log.stats().persists).toBe(N + 1);
  });

  it('a failed fsync fails the whole group and every later persist', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    st.failSync = (n) => n.startsWith('wal-');
    const err = persistNow(log, { hardState: { term: 1, vote: 0, commit: 0 }, entries: [ent(1, 1)] });
    expect(err?.name).toBe('StorageIoError');
    expect(err?.message).toMatch(/EIO/);
    st.failSync = undefined;
    expect(persistNow(log, { entries: [ent(2, 1)] })?.name).toBe('StorageIoError');
  });

  it('what a restart reads back is made durable before open calls back: an entry whose fsync failed, read back after the crash, survives the next power cut', () => {
    // The process dies on the EIO (the page cache keeps the bytes), restarts and reads
    // the entry back — and an engine would now act on it as durable (an acceptor's vote,
    // a follower's acknowledged log). Found by the simulator (paxos seed 154, votes-kept).
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    expect(persistNow(log, { hardState: { term: 1, vote: 0, commit: 0 }, entries: [ent(1, 1)] })).toBeNull();
    st.failSync = (n) => n.startsWith('wal-');
    expect(persistNow(log, { entries: [ent(2, 1)] })?.name).toBe('StorageIoError');
    st.failSync = undefined;
    const again = openNow(st); // a crash: nothing lost, the unsynced bytes are read back
    expect(show(again.state.entries)).toEqual(show([ent(1, 1), ent(2, 1)]));
    st.powerCut(new Rng(1));
    const after = openNow(st);
    expect(show(after.state.entries)).toEqual(show([ent(1, 1), ent(2, 1)]));
  });
});

describe('durable log: recovery of damaged files', () => {
  function build(): { st: PowerLossStorage; seg: string; offsets: number[]; size: number } {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    for (let i = 1; i <= 8; i++) persistNow(log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [ent(i, 1, `payload-${i}`)] });
    const seg = segmentName(1);
    // record offsets: walk the framing
    const buf = st.read(seg)!;
    const offsets: number[] = [];
    for (let o = 0; o < buf.length; ) {
      offsets.push(o);
      o += 8 + new DataView(buf.buffer).getUint32(o, true);
    }
    return { st, seg, offsets, size: buf.length };
  }

  it('a torn last record, cut at every byte, is truncated and reported; earlier records intact', () => {
    const { st, seg, offsets, size } = build();
    const full = st.read(seg)!;
    const lastStart = offsets[offsets.length - 1]!;
    for (let cut = lastStart; cut < size; cut++) {
      for (const tail of ['cut', 'zeros'] as const) {
        const s2 = new PowerLossStorage();
        for (const n of st.list()) s2.write(n, st.read(n)!);
        const torn = new Uint8Array(tail === 'cut' ? cut : size);
        torn.set(full.subarray(0, cut));
        s2.setContent(seg, torn);
        const r = openNow(s2);
        expect(r.state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        if (torn.subarray(lastStart).some((b) => b !== 0)) {
          expect(r.state.warnings.join()).toContain(`torn tail in ${seg} at byte ${lastStart}: ${torn.length - lastStart} byte(s) dropped`);
        } else {
          // Nothing but zeros after the last record: the end of the log (preallocated space), cut without a word.
          expect(r.state.warnings).toEqual([]);
        }
        expect(s2.size(seg)).toBe(lastStart);
        // the log continues after the cut
        expect(persistNow(r.log, { entries: [ent(8, 1)] })).toBeNull();
        expect(openNow(s2).state.entries.length).toBe(8);
      }
    }
  });

  it('reads segments of format 1 (written before preallocation) and 2; refuses a newer one by its version', () => {
    const header = (v: number) => new Writer(13).u32(SEGMENT_MAGIC).u8(v).u64(1, 'seq').record(Kind.SegmentHeader);
    expect(header(SEGMENT_VERSION)).toEqual(encodeSegmentHeader(1));
    const { st, seg, offsets } = build();
    const full = st.read(seg)!;
    for (const v of [1, 2, 3]) {
      const s2 = new PowerLossStorage();
      for (const n of st.list()) s2.write(n, st.read(n)!);
      const content = full.slice();
      content.set(header(v), 0);
      s2.setContent(seg, content);
      if (v <= SEGMENT_VERSION) {
        expect(openNow(s2).state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      } else {
        expect(() => recover(s2, ropts)).toThrow(`storage written by a newer quorumd: ${seg} at byte 0: bad segment header: segment format version 3, newer than this build reads (1 to 2): upgrade this node to the quorumd that wrote it`);
      }
    }
    expect(offsets[1]).toBe(header(1).length);
  });

  it('a hard state or snapshot file of a newer format is refused as written by a newer quorumd, not as damage', () => {
    const { st } = build();
    const r = openNow(st);
    expect(persistNow(r.log, { snapshot: { index: 3, term: 1, config: { voters: [1] }, data: new Uint8Array([1, 2, 3]) } })).toBeNull();
    const snap = st.list().find((n) => n.endsWith('.snap'))!;
    const hs = openNow(st).state.hardState;
    // The same content with the format byte (the first of the payload) one above this build's.
    const newer: Array<[string, Uint8Array, string]> = [
      [HARDSTATE_FILE, new Writer(40).u8(2).u64(hs.term, 't').u32(hs.vote).u64(hs.commit, 'c').u64(9, 'b').bytes(new Uint8Array(0)).record(Kind.HardState), 'hard state'],
      [snap, (() => { const [head, tail] = new Writer(40).u8(2).u64(3, 'i').u64(1, 't').bytes(new Uint8Array([0xa0])).recordWithTail(Kind.Snapshot, new Uint8Array([1, 2, 3])); const b = new Uint8Array(head.length + tail.length); b.set(head); b.set(tail, head.length); return b; })(), 'snapshot'],
    ];
    for (const [file, content, what] of newer) {
      const s2 = new PowerLossStorage();
      for (const n of st.list()) s2.write(n, st.read(n)!);
      s2.setContent(file, content);
      let err: unknown;
      try {
        recover(s2, ropts);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StorageCorruptError);
      expect((err as StorageCorruptError).newer).toBe(true);
      expect((err as Error).message).toBe(`storage written by a newer quorumd: ${file} at byte 0: undecodable: ${what} format version 2, newer than this build reads (1): upgrade this node to the quorumd that wrote it`);
    }
  });

  it('a bit flip in a middle record is fatal and names the file and offset', () => {
    const { st, seg, offsets } = build();
    for (const k of [1, 3, 5]) {
      const s2 = new PowerLossStorage();
      for (const n of st.list()) s2.write(n, st.read(n)!);
      s2.flipBit(seg, offsets[k]! + 12, 3);
      let err: unknown;
      try {
        openNow(s2);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StorageCorruptError);
      const ce = err as StorageCorruptError;
      expect(ce.file).toBe(seg);
      expect(ce.offset).toBe(offsets[k]);
      expect(ce.message).toMatch(/CRC mismatch.*but a valid record follows/);
    }
  });

  it('a flipped length field (that would swallow the rest) is fatal, not a torn tail', () => {
    const { st, seg, offsets } = build();
    st.flipBit(seg, offsets[2]! + 3, 6); // length becomes huge
    expect(() => recover(st, ropts)).toThrow(StorageCorruptError);
    try {
      recover(st, ropts);
    } catch (e) {
      expect((e as StorageCorruptError).offset).toBe(offsets[2]);
    }
  });

  it('a bad record in a non-last segment is fatal even at its end', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st, { segmentBytes: 200 });
    for (let i = 1; i <= 12; i++) persistNow(log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [ent(i, 1, 'y'.repeat(60))] });
    const first = segmentName(1);
    const sz = st.size(first);
    st.setContent(first, st.read(first)!.slice(0, sz - 3));
    expect(() => recover(st, ropts)).toThrow(/wal-0000000000000001\.log at byte \d+: .*not the last segment/);
  });

  it('a missing segment in the sequence is fatal and named', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st, { segmentBytes: 200 });
    for (let i = 1; i <= 12; i++) persistNow(log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [ent(i, 1, 'y'.repeat(60))] });
    st.remove(segmentName(2));
    expect(() => recover(st, ropts)).toThrow(/wal-0000000000000002\.log: segment missing/);
  });

  it('a corrupt or missing hard-state file is fatal', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    persistNow(log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [ent(1, 1)] });
    st.flipBit(HARDSTATE_FILE, 12);
    expect(() => recover(st, ropts)).toThrow(/hardstate at byte 0: CRC mismatch/);
    st.remove(HARDSTATE_FILE);
    expect(() => recover(st, ropts)).toThrow(/hardstate: missing, but 1 WAL segment/);
  });

  it('commit beyond the durable log is fatal', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    persistNow(log, { hardState: { term: 1, vote: 1, commit: 3 }, entries: ents(1, 3, 1) });
    // hand-build a bad segment: its header and a commit record, without the entries
    st.setContent(segmentName(1), Buffer.concat([encodeSegmentHeader(1), encodeCommit(3)]));
    expect(() => recover(st, ropts)).toThrow(/commit index 3 is beyond the last durable entry 0/);
  });

  it('random garbage files do not crash recovery: either a clean result or a typed error', () => {
    const rng = new Rng(7);
    for (let t = 0; t < 200; t++) {
      const st = new PowerLossStorage();
      const { log } = openNow(st);
      persistNow(log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 3, 1) });
      const name = rng.pick([segmentName(1), HARDSTATE_FILE]);
      const buf = st.read(name)!;
      for (let k = rng.int(1, 4); k > 0; k--) buf[rng.int(0, buf.length - 1)] = rng.int(0, 255);
      st.setContent(name, buf.slice(0, rng.int(0, buf.length)));
      try {
        const r = recover(st, ropts);
        expect(r.entries.length).toBeLessThanOrEqual(3);
      } catch (e) {
        expect(e).toBeInstanceOf(StorageCorruptError);
      }
    }
  });
});
