/**
 * Payloads of the durable records and the file names of the storage directory.
 *
 * Files (all flat in one directory, docs/architecture.md, Durability):
 *   wal-<seq, 16 hex digits>.log    WAL segments, numbered consecutively from 1. The
 *                                   number is a sequence, not the first index: a
 *                                   suffix overwrite can move the log's end below the
 *                                   start of the current segment, so first indexes do
 *                                   not sort segments; sequence numbers do, and a gap
 *                                   in them is a missing segment.
 *   hardstate                       term, vote, commit, bootId, metadata (atomic replace)
 *   snap-<index, 16 hex>.snap       snapshots; the newest valid one wins
 *   *.tmp                           a replace in progress; removed at open
 */
import { decode as cborDecode, encode as cborEncode } from 'cbor-x';
import type { Entry } from '../../src/wire/messages.ts';
import { Kind, Reader, Writer } from './records.ts';

export const FORMAT_VERSION = 1;
/**
 * Version of a WAL segment (its header). 2: the segment may end in zeros (preallocated,
 * hal/fs-storage.ts) and every flush is one record (durable-log.ts). This build writes
 * 2 and reads 1 and 2; a build that reads only 1 refuses a 2 with "unsupported format
 * version" instead of calling the zeros corruption.
 */
export const SEGMENT_VERSION = 2;
/** 'QWAL' as a little-endian u32: the first payload field of every segment. */
export const SEGMENT_MAGIC = 0x4c415751;

/**
 * A format version above the newest this build reads: the file was written by a newer
 * quorumd (a node downgraded onto its data directory). recover.ts turns it into a
 * StorageCorruptError marked `newer`, so that the refusal says so instead of "corrupt".
 */
export class NewerFormatError extends RangeError {
  constructor(what: string, version: number, newest: number) {
    super(`${what} format version ${version}, newer than this build reads (${newest === 1 ? '1' : `1 to ${newest}`}): upgrade this node to the quorumd that wrote it`);
  }
}

/** Reads a format version byte: 1..newest, else throws (NewerFormatError above newest). */
function formatVersion(r: Reader, what: string, newest: number): number {
  const v = r.u8('format version');
  if (v > newest) throw new NewerFormatError(what, v, newest);
  if (v < 1) throw new RangeError(`unsupported ${what} format version ${v}`);
  return v;
}

export const HARDSTATE_FILE = 'hardstate';
export const TMP_SUFFIX = '.tmp';

export function segmentName(seq: number): string {
  return `wal-${seq.toString(16).padStart(16, '0')}.log`;
}
export function snapshotName(index: number): string {
  return `snap-${index.toString(16).padStart(16, '0')}.snap`;
}
const SEG_RE = /^wal-([0-9a-f]{16})\.log$/;
const SNAP_RE = /^snap-([0-9a-f]{16})\.snap$/;
export function parseSegmentName(name: string): number | undefined {
  const m = SEG_RE.exec(name);
  return m ? parseInt(m[1]!, 16) : undefined;
}
export function parseSnapshotName(name: string): number | undefined {
  const m = SNAP_RE.exec(name);
  return m ? parseInt(m[1]!, 16) : undefined;
}

/** What Raft must keep across restarts (Raft paper Fig. 2 "persistent state", plus commit as etcd does). */
export interface HardState {
  term: number;
  /** Node voted for in `term`; 0 = none. */
  vote: number;
  commit: number;
}

/** The hard-state file: Raft's hard state plus what the runtime keeps next to it. */
export interface HardStateFile extends HardState {
  /** Grows by one at every open; the wire layer's replay protection uses (from, bootId, seq). */
  bootId: number;
  /** Small opaque metadata for the runtime (e.g. cluster id); at most MAX_META_BYTES. */
  meta: Uint8Array;
}
export const MAX_META_BYTES = 4096;

export interface SnapshotRecord {
  /** Last log index the snapshot covers. */
  index: number;
  /** Term of the entry at `index`. */
  term: number;
  /** Cluster configuration at `index`: any CBOR-encodable value (stored with cbor-x). */
  config: unknown;
  /** The state machine's serialized state. */
  data: Uint8Array;
}

export function encodeSegmentHeader(seq: number): Uint8Array {
  return new Writer(13).u32(SEGMENT_MAGIC).u8(SEGMENT_VERSION).u64(seq, 'segment seq').record(Kind.SegmentHeader);
}
export function decodeSegmentHeader(p: Uint8Array): { seq: number } {
  const r = new Reader(p);
  const magic = r.u32('segment magic');
  if (magic !== SEGMENT_MAGIC) throw new RangeError(`bad segment magic 0x${magic.toString(16)}`);
  formatVersion(r, 'segment', SEGMENT_VERSION);
  const seq = r.u64('segment seq');
  r.end('segment header');
  return { seq };
}

export function encodeEntry(e: Entry): Uint8Array {
  return new Writer(17 + e.data.length).u64(e.term, 'entry term').u64(e.index, 'entry index').u8(e.type).raw(e.data).record(Kind.Entry);
}
export function decodeEntry(p: Uint8Array): Entry {
  const r = new Reader(p);
  const term = r.u64('entry term');
  const index = r.u64('entry index');
  const type = r.u8('entry type');
  return { term, index, type, data: r.rest() };
}

export function encodeCommit(commit: number): Uint8Array {
  return new Writer(8).u64(commit, 'commit').record(Kind.Commit);
}
export function decodeCommit(p: Uint8Array): number {
  const r = new Reader(p);
  const c = r.u64('commit');
  r.end('commit record');
  return c;
}

export interface SnapshotMark {
  index: number;
  term: number;
  /** Whether the entries after `index` were kept (the log had `term` at `index`, Raft paper §7 / Fig. 13 step 6). */
  keep: boolean;
}
export function encodeMark(m: SnapshotMark): Uint8Array {
  return new Writer(17).u64(m.index, 'mark index').u64(m.term, 'mark term').u8(m.keep ? 1 : 0).record(Kind.SnapshotMark);
}
export function decodeMark(p: Uint8Array): SnapshotMark {
  const r = new Reader(p);
  const index = r.u64('mark index');
  const term = r.u64('mark term');
  const keep = r.u8('mark keep');
  r.end('snapshot mark');
  if (keep > 1) throw new RangeError(`mark keep flag ${keep} is not 0 or 1`);
  return { index, term, keep: keep === 1 };
}

export function encodeHardState(h: HardStateFile): Uint8Array {
  return new Writer(33 + h.meta.length)
    .u8(FORMAT_VERSION)
    .u64(h.term, 'term')
    .u32(h.vote)
    .u64(h.commit, 'commit')
    .u64(h.bootId, 'bootId')
    .bytes(h.meta)
    .record(Kind.HardState);
}
export function decodeHardState(p: Uint8Array): HardStateFile {
  const r = new Reader(p);
  formatVersion(r, 'hard state', FORMAT_VERSION);
  const term = r.u64('term');
  const vote = r.u32('vote');
  const commit = r.u64('commit');
  const bootId = r.u64('bootId');
  const meta = r.bytes('meta');
  r.end('hard state');
  return { term, vote, commit, bootId, meta };
}

/** A snapshot file's one record as [head, data], without copying the data (the whole state machine): durable-log.ts writes head, then appends data. */
export function encodeSnapshotParts(s: SnapshotRecord): [Uint8Array, Uint8Array] {
  const cfg = new Uint8Array(cborEncode(s.config));
  return new Writer(21 + cfg.length)
    .u8(FORMAT_VERSION)
    .u64(s.index, 'snapshot index')
    .u64(s.term, 'snapshot term')
    .bytes(cfg)
    .recordWithTail(Kind.Snapshot, s.data);
}
export function decodeSnapshot(p: Uint8Array): SnapshotRecord {
  const r = new Reader(p);
  formatVersion(r, 'snapshot', FORMAT_VERSION);
  const index = r.u64('snapshot index');
  const term = r.u64('snapshot term');
  const cfg = r.bytes('snapshot config');
  let config: unknown;
  try {
    config = cborDecode(cfg);
  } catch (e) {
    throw new RangeError(`snapshot config is not valid CBOR: ${(e as Error).message}`);
  }
  return { index, term, config, data: r.rest() };
}
