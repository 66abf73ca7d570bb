/**
 * Recovery: reads the storage directory and rebuilds what Raft had made durable.
 *
 * Pure reading: nothing here writes. `openDurableLog` applies the repairs that the
 * returned plan lists (cut the torn tail, remove leftovers) before it writes anything.
 *
 * Rules (docs/architecture.md, Durability):
 *   - a partial or bad LAST record of the LAST segment is a torn write: cut, warned;
 *   - zeros after the last record are the end of the log, in any segment (space the
 *     writer preallocated, hal/fs-storage.ts): the last segment's are cut, silently;
 *   - anything else that does not parse — a bad record followed by a valid one, a bad
 *     record in an earlier segment, a missing segment, a bad hard-state or snapshot
 *     file — is a `StorageCorruptError` naming the file and byte offset.
 */
import type { Entry } from '../../src/wire/messages.ts';
import type { Storage } from '../interfaces.ts';
import { StorageCorruptError } from './errors.ts';
import {
  HARDSTATE_FILE,
  type HardState,
  type HardStateFile,
  type SnapshotMark,
  type SnapshotRecord,
  TMP_SUFFIX,
  decodeCommit,
  decodeEntry,
  decodeHardState,
  decodeMark,
  decodeSegmentHeader,
  decodeSnapshot,
  NewerFormatError,
  parseSegmentName,
  parseSnapshotName,
  segmentName,
  snapshotName,
} from './format.ts';
import { Kind, RECORD_HEADER, parseRecord } from './records.ts';

export interface RecoverOptions {
  /** Largest WAL record accepted when reading (a larger length field is garbage). */
  maxRecordBytes: number;
  /** Largest snapshot file accepted. */
  maxSnapshotBytes: number;
}

export interface Recovered {
  /** Term, vote and the highest commit index known durable (≥ the snapshot index). */
  hardState: HardState;
  /** bootId stored on disk (openDurableLog returns the next one, already made durable). */
  bootId: number;
  meta: Uint8Array;
  snapshot?: SnapshotRecord;
  /** The log after the snapshot: contiguous, first index = snapshot index + 1 (or 1). */
  entries: Entry[];
  /** Things the runtime should log: torn tails cut, leftovers removed. */
  warnings: string[];
}

export interface SegmentInfo {
  name: string;
  seq: number;
  /** Valid bytes (after a torn tail is cut). */
  size: number;
  /** Highest entry index written in this segment (0 if none). */
  maxIndex: number;
}

/** Recovered state plus what the writer needs and the repairs to apply. */
export interface RecoveryPlan extends Recovered {
  /** Nothing on disk at all: a brand new node. */
  fresh: boolean;
  /** Live segments in order. */
  segments: SegmentInfo[];
  /** Cut this segment to this size (torn tail). */
  truncate?: { name: string; size: number };
  /** The snapshot's WAL mark was lost in a crash and must be written before new entries. */
  missingMark?: SnapshotMark;
  /** Files to delete: *.tmp leftovers, older snapshots, stale segments, an empty torn last segment. */
  remove: string[];
}

interface Rec {
  kind: number;
  payload: Uint8Array;
  offset: number;
}

function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Parses all records of one segment. A bad record in the last segment is a torn
 * tail only if nothing valid follows it (checked at every later offset) — otherwise
 * a flipped bit in a length field would silently swallow committed records.
 */
export function scanRecords(
  file: string,
  buf: Uint8Array,
  isLast: boolean,
  maxLen: number,
): { records: Rec[]; validEnd: number; torn?: { offset: number; dropped: number; reason: string }; zeros?: number } {
  const records: Rec[] = [];
  let off = 0;
  while (off < buf.length) {
    const r = parseRecord(buf, off, maxLen);
    if (r.ok) {
      if (r.kind === Kind.Batch) {
        // An atomic batch: [u32 LE len][kind][payload] per record (len counts kind +
        // payload; no CRC: the batch's covers them). Its CRC held, so every record
        // inside must be whole; they replay in order.
        const b = r.payload;
        let o = 0;
        while (o < b.length) {
          const len = o + 5 <= b.length ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0 : 0;
          const kind = b[o + 4];
          if (len < 1 || o + 4 + len > b.length) throw new StorageCorruptError(file, off, `atomic batch record: inner record at byte ${o} has length ${len}, the batch ends at ${b.length}`);
          if (kind !== Kind.Entry && kind !== Kind.SnapshotMark && kind !== Kind.Commit) throw new StorageCorruptError(file, off, `atomic batch record: inner record of kind ${kind}`);
          records.push({ kind, payload: b.subarray(o + 5, o + 4 + len), offset: off });
          o += 4 + len;
        }
      } else records.push({ kind: r.kind, payload: r.payload, offset: off });
      off = r.next;
      continue;
    }
    // Nothing but zeros to the end: the end of the log in space the file system (or a
    // preallocation, hal/fs-storage.ts) filled with zeros — not a torn record, in any
    // segment. A segment needs its header, though.
    if (records.length > 0 && allZero(buf, off)) return { records, validEnd: off, zeros: buf.length - off };
    if (!isLast) throw new StorageCorruptError(file, off, `${r.reason} (not the last segment, so this is not a torn write)`);
    if (!allZero(buf, off)) {
      for (let y = off + 1; y + RECORD_HEADER < buf.length; y++) {
        const later = parseRecord(buf, y, maxLen);
        if (later.ok) {
          throw new StorageCorruptError(file, off, `${r.reason}, but a valid record follows at byte ${y}: corruption, not a torn tail`);
        }
      }
    }
    return { records, validEnd: off, torn: { offset: off, dropped: buf.length - off, reason: r.reason } };
  }
  return { records, validEnd: off };
}

function corrupt(file: string, offset: number, what: string, e: unknown): StorageCorruptError {
  return new StorageCorruptError(file, offset, `${what}: ${(e as Error).message}`, e instanceof NewerFormatError);
}

function readSingleRecordFile<T>(storage: Storage, file: string, kind: number, maxLen: number, decode: (p: Uint8Array) => T): T {
  const buf = storage.read(file);
  if (!buf) throw new StorageCorruptError(file, -1, 'listed but unreadable');
  const r = parseRecord(buf, 0, maxLen);
  if (!r.ok) throw new StorageCorruptError(file, 0, r.reason);
  if (r.kind !== kind) throw new StorageCorruptError(file, 0, `record kind ${r.kind}, expected ${kind}`);
  if (r.next !== buf.length) throw new StorageCorruptError(file, r.next, `${buf.length - r.next} trailing bytes after the record`);
  try {
    return decode(r.payload);
  } catch (e) {
    throw corrupt(file, 0, 'undecodable', e);
  }
}

/** Reads everything and returns the recovered state; throws `StorageCorruptError`. Writes nothing. */
export function recover(storage: Storage, opts: RecoverOptions): RecoveryPlan {
  const warnings: string[] = [];
  const remove: string[] = [];
  const names = storage.list().slice().sort();
  const segs: Array<{ name: string; seq: number }> = [];
  const snaps: Array<{ name: string; index: number }> = [];
  let hasHardState = false;
  for (const n of names) {
    if (n.endsWith(TMP_SUFFIX)) {
      warnings.push(`removing leftover ${n} (an atomic replace was interrupted)`);
      remove.push(n);
      continue;
    }
    const seq = parseSegmentName(n);
    if (seq !== undefined) {
      segs.push({ name: n, seq });
      continue;
    }
    const si = parseSnapshotName(n);
    if (si !== undefined) {
      snaps.push({ name: n, index: si });
      continue;
    }
    if (n === HARDSTATE_FILE) {
      hasHardState = true;
      continue;
    }
    warnings.push(`ignoring unknown file ${n} in the storage directory`);
  }
  segs.sort((a, b) => a.seq - b.seq);
  snaps.sort((a, b) => a.index - b.index);

  if (!hasHardState) {
    if (segs.length > 0 || snaps.length > 0) {
      throw new StorageCorruptError(HARDSTATE_FILE, -1, `missing, but ${segs.length} WAL segment(s) and ${snaps.length} snapshot(s) exist`);
    }
    return {
      fresh: true,
      hardState: { term: 0, vote: 0, commit: 0 },
      bootId: 0,
      meta: new Uint8Array(0),
      entries: [],
      warnings,
      segments: [],
      remove,
    };
  }
  const hs: HardStateFile = readSingleRecordFile(storage, HARDSTATE_FILE, Kind.HardState, 1 << 16, decodeHardState);

  // The newest snapshot wins; older ones were kept only until it was durable.
  let snapshot: SnapshotRecord | undefined;
  const newest = snaps[snaps.length - 1];
  if (newest) {
    snapshot = readSingleRecordFile(storage, newest.name, Kind.Snapshot, opts.maxSnapshotBytes, decodeSnapshot);
    if (snapshot.index !== newest.index) {
      throw new StorageCorruptError(newest.name, 0, `file name says index ${newest.index} but the content says ${snapshot.index}`);
    }
    for (const s of snaps.slice(0, -1)) {
      warnings.push(`removing older snapshot ${s.name} (superseded by ${newest.name})`);
      remove.push(s.name);
    }
  }
  const snapIndex = snapshot?.index ?? 0;

  // Segment sequence: segments before the last gap are stale leftovers of a compaction
  // whose removals were not all durable — allowed only if the snapshot covers them.
  const scanned: Array<{ name: string; seq: number; records: Rec[]; size: number; maxIndex: number }> = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const isLast = i === segs.length - 1;
    const buf = storage.read(s.name);
    if (!buf) throw new StorageCorruptError(s.name, -1, 'listed but unreadable');
    const res = scanRecords(s.name, buf, isLast, opts.maxRecordBytes);
    if (res.torn) {
      warnings.push(
        `torn tail in ${s.name} at byte ${res.torn.offset}: ${res.torn.dropped} byte(s) dropped (${res.torn.reason})`,
      );
    }
    if (res.records.length === 0) {
      // Only possible for the last segment (scanRecords throws otherwise): its header was torn.
      warnings.push(`removing ${s.name}: its header was never completely written`);
      remove.push(s.name);
      continue;
    }
    const first = res.records[0]!;
    if (first.kind !== Kind.SegmentHeader) throw new StorageCorruptError(s.name, 0, `first record is kind ${first.kind}, not a segment header`);
    let hdr: { seq: number };
    try {
      hdr = decodeSegmentHeader(first.payload);
    } catch (e) {
      throw corrupt(s.name, 0, 'bad segment header', e);
    }
    if (hdr.seq !== s.seq) throw new StorageCorruptError(s.name, 0, `header says segment ${hdr.seq}, the name says ${s.seq}`);
    let maxIndex = 0;
    for (const r of res.records) {
      if (r.kind === Kind.Entry) {
        // index is at payload offset 8 (after term); decode fully later.
        const dv = new DataView(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
        if (r.payload.length >= 17) maxIndex = Math.max(maxIndex, dv.getUint32(8, true) + dv.getUint32(12, true) * 0x100000000);
      }
    }
    scanned.push({ name: s.name, seq: s.seq, records: res.records, size: res.validEnd, maxIndex });
    // A torn tail is cut (and said); zeros after the last record of the last segment are
    // cut silently, so that new records follow the last one with no gap.
    if (res.torn || (isLast && res.zeros)) (scanned[scanned.length - 1] as { cut?: boolean }).cut = true;
  }
  let start = 0;
  for (let i = 1; i < scanned.length; i++) {
    if (scanned[i]!.seq !== scanned[i - 1]!.seq + 1) start = i;
  }
  for (let i = 0; i < start; i++) {
    const s = scanned[i]!;
    if (s.maxIndex > snapIndex) {
      const missing = scanned[start - 1]!.seq + 1;
      throw new StorageCorruptError(
        segmentName(missing),
        -1,
        `segment missing: ${scanned[start - 1]!.name} is followed by ${scanned[start]!.name}, and ${s.name} holds entries up to ${s.maxIndex} beyond the snapshot (${snapIndex})`,
      );
    }
    warnings.push(`removing stale segment ${s.name} (all its entries are covered by the snapshot at ${snapIndex})`);
    remove.push(s.name);
  }
  const live = scanned.slice(start);

  // Replay. `base` is the index before entries[0]; undefined until the first entry or mark.
  let base: number | undefined;
  let entries: Entry[] = [];
  let commit = hs.commit;
  let lastMark: { index: number; term: number; file: string } | undefined;
  for (const s of live) {
    for (const r of s.records.slice(1)) {
      switch (r.kind) {
        case Kind.Entry: {
          let e: Entry;
          try {
            e = decodeEntry(r.payload);
          } catch (err) {
            throw corrupt(s.name, r.offset, 'bad entry record', err);
          }
          if (base === undefined || e.index <= base) {
            base = e.index - 1;
            entries = [];
          } else {
            const last = base + entries.length;
            if (e.index > last + 1) {
              throw new StorageCorruptError(s.name, r.offset, `entry ${e.index} follows entry ${last}: entries ${last + 1}..${e.index - 1} missing`);
            }
            entries.length = e.index - base - 1;
            const prev = entries[entries.length - 1];
            if (prev && prev.term > e.term) {
              throw new StorageCorruptError(s.name, r.offset, `entry ${e.index} has term ${e.term} below the previous entry's term ${prev.term}`);
            }
          }
          entries.push(e);
          break;
        }
        case Kind.Commit: {
          try {
            commit = Math.max(commit, decodeCommit(r.payload));
          } catch (err) {
            throw corrupt(s.name, r.offset, 'bad commit record', err);
          }
          break;
        }
        case Kind.SnapshotMark: {
          let m: ReturnType<typeof decodeMark>;
          try {
            m = decodeMark(r.payload);
          } catch (err) {
            throw corrupt(s.name, r.offset, 'bad snapshot mark', err);
          }
          if (base === undefined) {
            // Nothing known yet (earlier segments were compacted away). A keeping mark
            // says nothing about the entries after it, which may sit in removed
            // segments below an older snapshot; a discarding mark empties the log.
            if (!m.keep) {
              base = m.index;
              entries = [];
            }
          } else if (!m.keep || m.index >= base + entries.length) {
            base = m.index;
            entries = [];
          } else if (m.index >= base) {
            entries = entries.slice(m.index - base);
            base = m.index;
          }
          // else: every entry is above the mark and kept; the final checks catch a gap.
          commit = Math.max(commit, m.index);
          lastMark = { index: m.index, term: m.term, file: s.name };
          break;
        }
        default:
          throw new StorageCorruptError(s.name, r.offset, `record kind ${r.kind} does not belong in a WAL segment`);
      }
    }
  }

  if (lastMark && (!snapshot || lastMark.index > snapshot.index)) {
    throw new StorageCorruptError(
      snapshotName(lastMark.index),
      -1,
      `${lastMark.file} records a durable snapshot at index ${lastMark.index}, but the newest snapshot file is ${snapshot ? `at ${snapshot.index}` : 'missing'}`,
    );
  }
  let missingMark: SnapshotMark | undefined;
  if (snapshot && (!lastMark || lastMark.index < snapshot.index)) {
    // The snapshot file became durable but its WAL mark did not (crash in between):
    // apply the mark's rule now (Raft paper Fig. 13 step 6).
    const S = snapshot.index;
    if (base === undefined || S >= base + entries.length) {
      entries = [];
    } else if (S < base) {
      throw new StorageCorruptError(
        live[0]!.name,
        -1,
        `log starts at ${base + 1}, after the snapshot at ${S}, and no WAL mark says whether its entries belong to it`,
      );
    } else if (S === base) {
      // The log starts right after the snapshot: nothing to compare, nothing to drop.
    } else {
      const at = entries[S - base - 1]!;
      entries = at.term === snapshot.term ? entries.slice(S - base) : [];
    }
    base = S;
    missingMark = { index: S, term: snapshot.term, keep: entries.length > 0 };
    warnings.push(`snapshot at ${S} was durable without its WAL mark; applied it (entries after it ${entries.length ? 'kept' : 'dropped'})`);
  }
  if (base === undefined) base = snapIndex;
  if (base !== snapIndex) {
    throw new StorageCorruptError(
      live[0]?.name ?? HARDSTATE_FILE,
      -1,
      snapIndex === 0
        ? `log starts at index ${base + 1} but there is no snapshot: entries 1..${base} missing`
        : `log starts at index ${base + 1} but the snapshot ends at ${snapIndex}`,
    );
  }
  commit = Math.max(commit, snapIndex);
  const lastIndex = base + entries.length;
  if (commit > lastIndex) {
    throw new StorageCorruptError(
      live[live.length - 1]?.name ?? HARDSTATE_FILE,
      -1,
      `commit index ${commit} is beyond the last durable entry ${lastIndex}: committed entries are missing`,
    );
  }
  // WAL and hard state are made durable in parallel, so a crash can leave entries (or
  // a snapshot) of a newer term than the durable hard state. Nothing of that newer
  // term was acknowledged (no done fired), in particular no vote was sent in it: adopt
  // the term with no vote, as a node that saw the term and has not voted yet.
  let term = hs.term;
  let vote = hs.vote;
  const seenTerm = Math.max(entries[entries.length - 1]?.term ?? 0, snapshot?.term ?? 0);
  if (seenTerm > term) {
    warnings.push(`the log holds term ${seenTerm} but the hard state only term ${term} (crash between the two): adopting term ${seenTerm} with no vote`);
    term = seenTerm;
    vote = 0;
  }
  const lastSeg = live[live.length - 1];
  const truncate = lastSeg && (lastSeg as { cut?: boolean }).cut ? { name: lastSeg.name, size: lastSeg.size } : undefined;
  const out: RecoveryPlan = {
    fresh: false,
    hardState: { term, vote, commit },
    bootId: hs.bootId,
    meta: hs.meta,
    entries,
    warnings,
    segments: live.map((s) => ({ name: s.name, seq: s.seq, size: s.size, maxIndex: s.maxIndex })),
    remove,
  };
  if (snapshot) out.snapshot = snapshot;
  if (truncate) out.truncate = truncate;
  if (missingMark) out.missingMark = missingMark;
  return out;
}
