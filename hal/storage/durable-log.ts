/**
 * The durable log: Raft's write-ahead log, hard state and snapshots on a `Storage`.
 *
 * The runtime hands every Raft `Ready` to `persist(batch, done)` and sends the
 * Ready's messages only when `done(null)` fired (docs/architecture.md, Durability: persist before send).
 *
 * Group commit: a persist that arrives while a flush is in flight waits; when the
 * flush ends, everything that waited is written with one append and made durable
 * with one fsync (plus the rename dance when the hard state's term or vote changed,
 * and one more when a snapshot arrived). So a busy leader pays one fsync per batch
 * of Readys, not per Ready, and an idle node writes nothing (no timers here at all).
 *
 * What goes where, and why:
 *   - entries, commit advances, snapshot marks → the WAL (appends; one fsync);
 *   - term, vote, bootId, metadata → the `hardstate` file, replaced atomically
 *     (write tmp, fsync, rename, fsync dir). Term and vote change only at elections,
 *     so the expensive replace is rare; the commit index advances on nearly every
 *     Ready and rides along in the WAL as a tiny record instead. (Raft keeps commit
 *     volatile anyway — Raft paper Fig. 2 — storing it only saves re-learning it.)
 *     The commit written into `hardstate` is always one already durable in the WAL,
 *     so a crash can never leave a commit index pointing past the durable log;
 *   - a batch whose only change is a higher commit index is NOT synced (as etcd's
 *     `MustSync`): it is accepted and answered at once, and its commit record goes
 *     into the WAL with the next flush. Why that is safe: Raft's commit index is
 *     volatile state; a node that restarts with an older commit index rebuilds a
 *     prefix of the same state from its log and learns the rest of the commit index
 *     from the leader — it never needs an entry it does not have. (A Raft leader
 *     may apply entries that a quorum of followers holds durably before its own
 *     copy is durable, src/raft/raft.ts takeCommitted: if it crashes first it comes
 *     back with a shorter log, and the quorum holds them.) What a restart must not lose is the log and
 *     the term/vote, and those are always synced before anything depends on them.
 *     This takes one fsync off every write on the leader (the record holding only
 *     the new commit index, before it applies) and off every follower;
 *   - snapshots → their own file (same atomic replace); then a mark in the WAL; then
 *     WAL segments wholly below the snapshot are removed. The previous snapshot file
 *     is removed only after the new one's rename is durable.
 *
 * One record per flush: the records of a flush (a group's entries, marks and commit
 * record) go into the WAL as ONE record (Kind.Batch when there are several), so a flush
 * torn by a power cut is one bad record at the end of the log and never a bad record
 * followed by good ones. That matters because the WAL file may be preallocated
 * (hal/fs-storage.ts writes segments into zero-filled space, so that an fdatasync has
 * no file size to commit): the file's size then no longer hides the part of an
 * unfinished write that reached the disk, and a disk may persist the pages of one
 * write in any order — a later record of the flush could survive where an earlier one
 * did not, which recovery would have to call corruption (a good record after a bad
 * one is what a flipped bit in acknowledged data looks like). Flushes are serial (the
 * next one starts after this one's fsync), so at most the last record is ever torn.
 * A group larger than maxRecordBytes is written as several flushes, each synced
 * before the next. Recovery reads zeros after the last record as the end of the log.
 *
 * Failure: after any I/O error the log is failed for good (a failed fsync leaves the
 * file's state unknown) and every later persist gets the error; restart and recover.
 */
import { encode as cborEncode } from 'cbor-x';
import { EntryType, type Entry } from '../../src/wire/messages.ts';
import { MAX_NODE_ID } from '../../src/types.ts';
import type { Done, DoneWith, Storage } from '../interfaces.ts';
import { StorageInputError, StorageIoError } from './errors.ts';
import {
  HARDSTATE_FILE,
  type HardState,
  type HardStateFile,
  MAX_META_BYTES,
  type SnapshotRecord,
  TMP_SUFFIX,
  encodeCommit,
  encodeEntry,
  encodeHardState,
  encodeMark,
  encodeSegmentHeader,
  encodeSnapshotParts,
  parseSnapshotName,
  segmentName,
  snapshotName,
} from './format.ts';
import { Kind, RECORD_HEADER, packRecords, recordBuffer } from './records.ts';
import { type Recovered, type RecoveryPlan, type SegmentInfo, recover } from './recover.ts';

export interface DurableLogOptions {
  /**
   * Start a new WAL segment once the current one holds at least this many bytes.
   * Default 4 MiB: small enough that compaction frees space soon after a snapshot,
   * large enough that rolling (one extra directory fsync) is rare. A batch is never
   * split across segments, so a segment may exceed this by one batch.
   */
  segmentBytes?: number;
  /**
   * Largest single WAL record (one entry) in bytes, when writing and when reading.
   * Default 16 MiB: far above any sane entry (frames are ≤ 64 KiB), and low enough
   * that a garbage length field is recognised as garbage.
   */
  maxRecordBytes?: number;
  /** Largest snapshot file in bytes. Default 512 MiB (a Pi's state machine is far smaller). */
  maxSnapshotBytes?: number;
  /**
   * What HardState.vote is. 'raft' (default): a node id, cast at most once per term —
   * a persist that would change a vote already cast in the same term is refused (an
   * engine bug). 'number': an engine's own 32-bit number with no such rule (ZAB keeps
   * currentEpoch there, which moves within one acceptedEpoch; src/engine/contract.ts).
   */
  voteRule?: 'raft' | 'number';
  /**
   * At open: the metadata to keep from now on, given the recovered one (empty when
   * fresh). It is written with the new bootId, in the hard-state replace every open
   * makes anyway (no extra fsync). It may throw to refuse the state (the runtime throws
   * a StorageCorruptError for another member's state): open then fails with that error
   * and writes nothing. Default: keep it as it is.
   */
  openMeta?: (recovered: Uint8Array) => Uint8Array;
}

/**
 * What one entry and one snapshot mark add to a Kind.Batch record's length (their
 * records without the CRC, records.ts packRecords); the fields are fixed-width, so the
 * same for every entry beyond its data.
 */
const ENTRY_INNER = encodeEntry({ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }).length - 4;
const MARK_INNER = encodeMark({ index: 1, term: 1, keep: false }).length - 4;

const DEFAULTS: Required<DurableLogOptions> = {
  segmentBytes: 4 << 20,
  maxRecordBytes: 16 << 20,
  maxSnapshotBytes: 512 << 20,
  voteRule: 'raft',
  openMeta: (m) => m,
};

/** One Raft Ready's durable part. Applied in the order snapshot → entries → hard state. */
export interface PersistBatch {
  /** New hard state; `commit` may only grow (a lower value is ignored) and must be ≤ the last index. */
  hardState?: HardState;
  /**
   * Entries to append, contiguous. If `entries[0].index ≤ lastIndex`, the log is first
   * truncated from there (suffix overwrite). Overwriting a committed entry is refused.
   */
  entries?: Entry[];
  /**
   * A snapshot to install (newer than the current one). Entries ≤ its index are
   * dropped; later entries are kept iff the log has the snapshot's term at its index
   * (Raft paper §7, Fig. 13 step 6), else the whole log is discarded.
   */
  snapshot?: SnapshotRecord;
  /** Replace the small runtime metadata stored with the hard state (≤ 4 KiB). */
  meta?: Uint8Array;
  /**
   * All or nothing (src/engine/contract.ts Ready.atomic): the snapshot mark and the
   * entries go into the WAL as ONE record (Kind.Batch), so after a crash recovery finds
   * all of them or none — a torn write never keeps a prefix. (Paxos and ZAB rewrite
   * votes they already acknowledged; a torn prefix would lose some of them.) The
   * snapshot file itself is written before the WAL as usual.
   */
  atomic?: boolean;
  /**
   * The snapshot is this node's own compaction of its applied prefix (not one received
   * from a leader): the entries after it are this log's own and stay, whatever term the
   * snapshot carries. Needed where an engine's snapshot term is not the term stored in
   * the log at that index (Paxos: the slot's origin ballot vs the entry's write stamp);
   * without it the term rule above would drop the tail — durable votes included.
   */
  compaction?: boolean;
}

/** Counters for metrics (SD-card wear, fsync rate). */
export interface StorageStats {
  /** persist() calls accepted. */
  persists: number;
  /** Flushes; each makes a whole group of persists durable. */
  groups: number;
  /** Persists answered without a flush: only the commit index moved (see the header). */
  unsynced: number;
  /** Bytes handed to write/append (WAL, hard state, snapshots). */
  bytesWritten: number;
  /** fsyncs of files. */
  fileSyncs: number;
  /** fsyncs of the directory. */
  dirSyncs: number;
  /** fileSyncs + dirSyncs. */
  syncs: number;
  /** Live WAL segments. */
  segments: number;
}

export interface Opened {
  log: DurableLog;
  /** The recovered state; `bootId` is the new one, already durable. */
  state: Recovered;
}

interface Pending {
  records: Uint8Array[];
  snapshot?: SnapshotRecord;
  /** Written beside the WAL (see persist): its file first, then its mark joins the queue. */
  beside?: boolean;
  /** Its mark is in `records`: remove the segments below this index once they are durable. */
  compactTo?: number;
  done: Done;
  /** Needs an fsync (false: only the commit index moved; see the header). */
  sync: boolean;
}

/** Throws the StorageInputError for a refused persist (module-level, not a per-call closure: persist is hot). */
function bad(msg: string): never {
  throw new StorageInputError(`persist: ${msg}`);
}

function once(fn: Done): Done {
  let called = false;
  return (err) => {
    if (called) return;
    called = true;
    fn(err);
  };
}

/** Calls `done` once `n` parts finished, with the first error. */
function join(n: number, done: Done): Done {
  let left = n;
  let failed = false;
  if (n === 0) done(null);
  return (err) => {
    if (failed) return;
    if (err) {
      failed = true;
      done(err);
      return;
    }
    if (--left === 0) done(null);
  };
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}
function isIndex(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/**
 * Opens (or creates) the durable log: recovers, repairs a torn tail, removes
 * leftovers, makes the next bootId durable, then calls back. `err` is a
 * `StorageCorruptError` when the node must not start, or a `StorageIoError`.
 */
export function openDurableLog(storage: Storage, options: DurableLogOptions, done: DoneWith<Opened>): void {
  const opts = { ...DEFAULTS };
  if (options.voteRule !== undefined && options.voteRule !== 'raft' && options.voteRule !== 'number') {
    done(new StorageInputError(`durable log option voteRule: expected 'raft' or 'number', got ${String(options.voteRule)}`));
    return;
  }
  if (options.voteRule !== undefined) opts.voteRule = options.voteRule;
  for (const k of ['segmentBytes', 'maxRecordBytes', 'maxSnapshotBytes'] as const) {
    const v = options[k];
    if (v === undefined) continue;
    if (!isIndex(v, RECORD_HEADER + 64)) {
      done(new StorageInputError(`durable log option ${k}: expected an integer ≥ ${RECORD_HEADER + 64}, got ${String(v)}`));
      return;
    }
    opts[k] = v;
  }
  let plan: RecoveryPlan;
  try {
    plan = recover(storage, opts);
    if (options.openMeta !== undefined) {
      const meta = options.openMeta(plan.meta);
      if (!(meta instanceof Uint8Array) || meta.length > MAX_META_BYTES) throw new StorageInputError(`durable log option openMeta: expected at most ${MAX_META_BYTES} bytes, got ${meta instanceof Uint8Array ? `${meta.length} bytes` : typeof meta}`);
      plan.meta = meta;
    }
  } catch (e) {
    done(e as Error);
    return;
  }
  const log = new DurableLog(storage, opts, plan);
  log.start((err) => {
    if (err) return done(err);
    const state: Recovered = {
      hardState: plan.hardState,
      bootId: log.bootId,
      meta: plan.meta,
      entries: plan.entries,
      warnings: plan.warnings,
    };
    if (plan.snapshot) state.snapshot = plan.snapshot;
    done(null, { log, state });
  });
}

export class DurableLog {
  private readonly opts: Required<DurableLogOptions>;
  // Accepted state: what the log will be once everything handed to persist() is durable.
  private term: number;
  private vote: number;
  private commit: number;
  private meta: Uint8Array;
  private snapIndex: number;
  private snapTerm: number;
  /** Index before terms[0]; terms[i] is the term of entry base + 1 + i. */
  private base: number;
  private terms: number[];
  // Durable state.
  private durable: HardStateFile;
  private walCommit: number;
  private segments: SegmentInfo[];
  private nextSeq: number;
  private boot: number;
  // Group commit.
  private pending: Pending[] = [];
  private flushing = false;
  private draining = false;
  private failure: Error | undefined;
  private closed = false;
  /** A compaction snapshot's file is being written beside the WAL (see persist). */
  private besideBusy = false;
  private readonly counters = { persists: 0, groups: 0, unsynced: 0, bytesWritten: 0, fileSyncs: 0, dirSyncs: 0 };

  /** Use openDurableLog(). */
  constructor(
    private readonly storage: Storage,
    opts: Required<DurableLogOptions>,
    private readonly plan: RecoveryPlan,
  ) {
    this.opts = opts;
    this.term = plan.hardState.term;
    this.vote = plan.hardState.vote;
    this.commit = plan.hardState.commit;
    this.meta = plan.meta;
    this.snapIndex = plan.snapshot?.index ?? 0;
    this.snapTerm = plan.snapshot?.term ?? 0;
    this.base = this.snapIndex;
    this.terms = plan.entries.map((e) => e.term);
    this.walCommit = plan.hardState.commit;
    this.segments = plan.segments.slice();
    this.nextSeq = (this.segments[this.segments.length - 1]?.seq ?? 0) + 1;
    this.boot = plan.bootId + 1;
    this.durable = { term: this.term, vote: this.vote, commit: this.commit, bootId: plan.bootId, meta: this.meta };
  }

  /** @internal Applies the recovery repairs and makes the new bootId durable. */
  start(done: Done): void {
    const cb = once((err) => done(err ? this.fail(err) : null));
    try {
      for (const n of this.plan.remove) this.storage.remove(n);
      const t = this.plan.truncate;
      if (t) this.storage.truncate(t.name, t.size);
      // A snapshot applied at recovery without its WAL mark gets the mark now, before
      // any new entry, so that the next recovery replays the same log.
      const mark = this.plan.missingMark ? encodeMark(this.plan.missingMark) : undefined;
      // What recovery read may be only in the page cache, not on the card: written by a
      // process that crashed before its fsync, or whose fsync failed (EIO) — the kernel
      // shows the bytes to readers either way. The engine is rebuilt from what was read
      // (an acceptor's votes, a follower's log) and acts on it as durable, so it must be
      // durable before open calls back: every segment and the snapshot file recovery
      // kept are fsynced (as PostgreSQL syncs its data directory after a crash), the
      // directory by the hard-state replace below. Found by the simulator: an acceptor
      // whose WAL fsync failed restarted with that slot's vote read back, and lost it at
      // the next power cut (votes-kept, paxos seed 154). A segment the write below
      // appends to is synced by it; syncing it here too is harmless.
      // (The torn-tail truncation is always of the last kept segment: synced with them.)
      const files = this.segments.map((s) => s.name);
      if (this.plan.snapshot) files.push(snapshotName(this.plan.snapshot.index));
      const j = join(files.length + 1, cb);
      for (const f of files) this.sync(f, j);
      this.writeWalAndHardState(mark, { ...this.durable, bootId: this.boot }, j);
    } catch (e) {
      cb(e as Error);
    }
  }

  /** This boot's id (stored bootId + 1, durable before openDurableLog called back). */
  get bootId(): number {
    return this.boot;
  }
  /** Last index of the accepted log (including persists not yet durable). */
  get lastIndex(): number {
    return this.base + this.terms.length;
  }
  /** Index of the snapshot the log starts after (0 = none). */
  get snapshotIndex(): number {
    return this.snapIndex;
  }
  /** Term of the entry at `index` in the accepted log, or undefined if unknown (compacted or beyond the end). */
  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    if (index === this.snapIndex) return this.snapTerm;
    if (index > this.base && index <= this.lastIndex) return this.terms[index - this.base - 1];
    return undefined;
  }

  stats(): StorageStats {
    const c = this.counters;
    // Spelled out, not `{ ...c, syncs, segments }`: V8 (Node 20) gives an object spread
    // followed by keys the source lacks a hidden class of its own on every call (old-
    // generation garbage), and /v1/status and /v1/leader read this on every request.
    return { persists: c.persists, groups: c.groups, unsynced: c.unsynced, bytesWritten: c.bytesWritten, fileSyncs: c.fileSyncs, dirSyncs: c.dirSyncs, syncs: c.fileSyncs + c.dirSyncs, segments: this.segments.length };
  }

  /** Refuses further persists. Flushes already in progress still complete and call back. */
  close(): void {
    this.closed = true;
  }

  /**
   * Makes `batch` durable and then calls `done(null)`. Invalid input (an engine bug)
   * calls `done` with a `StorageInputError` at once and writes nothing. Batches
   * become durable in call order; `done`s fire in call order — except a compaction
   * written beside the WAL:
   *
   * A batch that is only a compaction snapshot (`compaction`, no entries, hard state or
   * meta) whose term is the log's own term at its index does not hold up the WAL. Its
   * file is written and fsynced while later batches flush as usual, and only then does
   * its mark join the queue (its `done` fires after that flush, so possibly after later
   * batches' `done`s); the segments below it are removed after the mark is durable, as
   * always. A snapshot holds the whole state machine (up to 16 MiB by default): in the
   * queue, every node stalled its writes for the file's write and fsync — on a Pi's SD
   * card about a second for 16 MiB — at about the same index on every node.
   * Why a crash in between is safe: the WAL still holds every entry (nothing is removed
   * before the mark is durable), and a snapshot file found durable without its mark is
   * applied by recovery with the mark's rule (recover.ts: the log after it is kept when
   * the log's term at its index is the snapshot's) — the same result the mark gives,
   * which is why only a snapshot whose term matches the log goes beside (a Paxos
   * compaction's term is the slot's origin and may differ: it stays in the queue).
   * Snapshot files and marks stay in index order: while one is being written beside,
   * a batch holding another snapshot waits in the queue.
   */
  persist(batch: PersistBatch, done: Done): void {
    if (typeof done !== 'function') throw new StorageInputError('persist: done must be a function');
    if (this.failure) return done(this.failure);
    if (this.closed) return done(new StorageInputError('persist: the durable log is closed'));
    let item: Pending;
    try {
      item = this.accept(batch, done);
    } catch (e) {
      return done(e as Error);
    }
    this.counters.persists++;
    if (item.beside) return this.writeBeside(item);
    if (!item.sync && !this.flushing && this.pending.length === 0) {
      // Only the commit index moved: nothing to wait for (see the header). Answered
      // synchronously; its record is written with the next flush.
      this.counters.unsynced++;
      return done(null);
    }
    this.pending.push(item);
    this.drain();
  }

  /** Term at `i` once `snap` (if any) is applied; undefined when `i` is below it. */
  private termBefore(i: number, snap: SnapshotRecord | undefined): number | undefined {
    if (snap && i === snap.index) return snap.term;
    if (snap && i < snap.index) return undefined;
    return this.termAt(i);
  }

  /** Validates a batch against the accepted state, then applies it; throws StorageInputError. */
  private accept(batch: PersistBatch, done: Done): Pending {
    if (typeof batch !== 'object' || batch === null) bad('batch must be an object');
    const { hardState: hs, entries = [], snapshot: snap, meta } = batch;
    // --- validation (no mutation) ---
    let snapKeep = false;
    let lastAfterSnap = this.lastIndex;
    let commitAfterSnap = this.commit;
    const newTerm = hs ? hs.term : this.term;
    if (hs !== undefined) {
      if (typeof hs !== 'object' || hs === null) bad('hardState must be an object {term, vote, commit}');
      if (!isIndex(hs.term, 0)) bad(`hardState.term must be a non-negative safe integer, got ${String(hs.term)}`);
      if (hs.term < this.term) bad(`hardState.term ${hs.term} is below the current term ${this.term}`);
      const raftVote = this.opts.voteRule === 'raft';
      if (raftVote && (!isIndex(hs.vote, 0) || hs.vote > MAX_NODE_ID)) bad(`hardState.vote must be a node id 0..${MAX_NODE_ID}, got ${String(hs.vote)}`);
      if (!raftVote && (!isIndex(hs.vote, 0) || hs.vote > 0xffffffff)) bad(`hardState.vote must be an integer 0..2^32-1, got ${String(hs.vote)}`);
      if (raftVote && hs.term === this.term && this.vote !== 0 && hs.vote !== this.vote) {
        bad(`hardState.vote ${hs.vote} would change the vote already cast for ${this.vote} in term ${this.term}`);
      }
      if (!isIndex(hs.commit, 0)) bad(`hardState.commit must be a non-negative safe integer, got ${String(hs.commit)}`);
    }
    if (snap !== undefined) {
      if (typeof snap !== 'object' || snap === null) bad('snapshot must be an object {index, term, config, data}');
      if (!isIndex(snap.index, 1)) bad(`snapshot.index must be a positive safe integer, got ${String(snap.index)}`);
      if (!isIndex(snap.term, 1)) bad(`snapshot.term must be a positive safe integer, got ${String(snap.term)}`);
      if (!isBytes(snap.data)) bad('snapshot.data must be a Uint8Array');
      if (snap.index <= this.snapIndex) bad(`snapshot.index ${snap.index} is not newer than the current snapshot ${this.snapIndex}`);
      if (snap.term > newTerm) bad(`snapshot.term ${snap.term} is above the current term ${newTerm}`);
      if (snap.data.length > this.opts.maxSnapshotBytes - 1024) bad(`snapshot of ${snap.data.length} bytes exceeds maxSnapshotBytes`);
      try {
        cborEncode(snap.config);
      } catch (e) {
        bad(`snapshot.config is not CBOR-encodable: ${(e as Error).message}`);
      }
      snapKeep = batch.compaction === true ? snap.index <= this.lastIndex : this.termAt(snap.index) === snap.term;
      lastAfterSnap = snapKeep ? this.lastIndex : snap.index;
      commitAfterSnap = Math.max(this.commit, snap.index);
    }
    if (!Array.isArray(entries)) bad('entries must be an array');
    let prevTerm = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry | undefined;
      if (typeof e !== 'object' || e === null) bad(`entries[${i}] must be an object {term, index, type, data}`);
      const en = e as Entry;
      if (!isIndex(en.index, 1)) bad(`entries[${i}].index must be a positive safe integer, got ${String(en.index)}`);
      if (!isIndex(en.term, 1)) bad(`entries[${i}].term must be a positive safe integer, got ${String(en.term)}`);
      if (en.type !== EntryType.Normal && en.type !== EntryType.Noop && en.type !== EntryType.Config) {
        bad(`entries[${i}].type must be an EntryType (0, 1, 2), got ${String(en.type)}`);
      }
      if (!isBytes(en.data)) bad(`entries[${i}].data must be a Uint8Array`);
      if (en.data.length + 32 > this.opts.maxRecordBytes) bad(`entries[${i}] of ${en.data.length} bytes exceeds maxRecordBytes`);
      if (en.term > newTerm) bad(`entries[${i}].term ${en.term} is above the current term ${newTerm}`);
      if (i === 0) {
        const floor = snap ? snap.index : this.snapIndex;
        if (en.index <= floor) bad(`entries[0].index ${en.index} is covered by the snapshot at ${floor}`);
        if (en.index > lastAfterSnap + 1) bad(`entries[0].index ${en.index} leaves a gap after the last index ${lastAfterSnap}`);
        if (en.index <= commitAfterSnap) bad(`entries[0].index ${en.index} would overwrite committed entries (commit ${commitAfterSnap})`);
        const t = this.termBefore(en.index - 1, snap);
        if (t !== undefined && en.term < t) bad(`entries[0].term ${en.term} is below the term ${t} of the entry before it`);
      } else {
        if (en.index !== entries[i - 1]!.index + 1) bad(`entries[${i}].index ${en.index} does not follow ${entries[i - 1]!.index}`);
        if (en.term < prevTerm) bad(`entries[${i}].term ${en.term} is below the previous entry's term ${prevTerm}`);
      }
      prevTerm = en.term;
    }
    if (batch.atomic === true && entries.length + (snap ? 1 : 0) > 1) {
      // Written as one record (below): it must fit one, or recovery would refuse it.
      let len = 1 + (snap ? MARK_INNER : 0);
      for (const e of entries) len += ENTRY_INNER + e.data.length;
      if (len > this.opts.maxRecordBytes) bad(`an atomic batch of ${entries.length} entries is ${len} bytes as one record, above maxRecordBytes (${this.opts.maxRecordBytes}); it must be written as one record`);
    }
    const lastAfter = entries.length > 0 ? entries[entries.length - 1]!.index : lastAfterSnap;
    if (hs && hs.commit > lastAfter) bad(`hardState.commit ${hs.commit} is beyond the last index ${lastAfter}`);
    if (meta !== undefined) {
      if (!isBytes(meta)) bad('meta must be a Uint8Array');
      if (meta.length > MAX_META_BYTES) bad(`meta of ${meta.length} bytes exceeds ${MAX_META_BYTES}`);
    }
    // Beside the WAL (see persist): decided on the log as it is before this batch.
    const beside =
      batch.compaction === true && snap !== undefined && entries.length === 0 && hs === undefined && meta === undefined &&
      batch.atomic !== true && !this.besideBusy && this.termAt(snap.index) === snap.term;
    // --- apply ---
    const termBefore = this.term;
    const voteBefore = this.vote;
    const records: Uint8Array[] = [];
    if (snap) {
      if (snapKeep) this.terms = this.terms.slice(snap.index - this.base);
      else this.terms = [];
      this.base = snap.index;
      this.snapIndex = snap.index;
      this.snapTerm = snap.term;
      this.commit = commitAfterSnap;
      records.push(encodeMark({ index: snap.index, term: snap.term, keep: snapKeep }));
    }
    if (entries.length > 0) {
      // Truncate only when the batch overwrites a suffix (setting length is a runtime call even when unchanged).
      const keep = entries[0]!.index - this.base - 1;
      if (this.terms.length !== keep) this.terms.length = keep;
      for (const e of entries) {
        this.terms.push(e.term);
        records.push(encodeEntry(e));
      }
    }
    if (batch.atomic === true && records.length > 1) {
      // One record, whatever its size (a torn write must never keep a prefix of it).
      const one = packRecords(records, Infinity);
      records.length = 0;
      records.push(one[0]!);
    }
    if (hs) {
      this.term = hs.term;
      this.vote = hs.vote;
      this.commit = Math.max(this.commit, hs.commit);
    }
    // Term or vote moved: compare with the state before this batch (kept above).
    const sync = records.length > 0 || meta !== undefined || (hs !== undefined && (hs.term !== termBefore || hs.vote !== voteBefore));
    if (meta) this.meta = meta.slice();
    const item: Pending = { records, done, sync };
    if (snap) item.snapshot = snap;
    if (beside) item.beside = true;
    return item;
  }

  /** Starts flushes while there is work and none is in flight; loops instead of recursing when I/O calls back synchronously. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.flushing && this.pending.length > 0) {
        // Snapshot files and marks in index order: a snapshot waits for the one beside.
        if (this.besideBusy && this.pending.some((p) => p.snapshot !== undefined)) break;
        const group = this.pending.splice(0);
        if (!group.some((p) => p.sync)) {
          // Commit-only batches that queued behind a flush: done in call order, no I/O.
          this.counters.unsynced += group.length;
          for (const p of group) p.done(null);
          continue;
        }
        this.flushing = true;
        this.counters.groups++;
        this.flushGroup(group, (err) => {
          this.flushing = false;
          for (const p of group) p.done(err);
          if (!this.draining) this.drain();
        });
      }
    } finally {
      this.draining = false;
    }
  }

  private fail(e: unknown): Error {
    if (!this.failure) {
      this.failure = e instanceof StorageIoError ? e : new StorageIoError(`storage I/O failed: ${(e as Error)?.message ?? String(e)}`, e);
    }
    return this.failure;
  }

  private flushGroup(group: Pending[], done: Done): void {
    const cb = once((err) => done(err ? this.fail(err) : null));
    if (this.failure) return cb(this.failure);
    // Everything accepted is in this group (all pending were taken): the accepted state is the target.
    let snap: SnapshotRecord | undefined;
    let compactTo: number | undefined;
    const parts: Uint8Array[] = [];
    for (const p of group) {
      if (p.snapshot) snap = p.snapshot;
      if (p.compactTo !== undefined) compactTo = Math.max(compactTo ?? 0, p.compactTo);
      const rs = p.records;
      for (let i = 0; i < rs.length; i++) parts.push(rs[i]!);
    }
    const groupCommit = this.commit;
    if (groupCommit > this.walCommit) parts.push(encodeCommit(groupCommit));
    const target: HardStateFile = { term: this.term, vote: this.vote, commit: this.durable.commit, bootId: this.boot, meta: this.meta };
    const hsChanged =
      target.term !== this.durable.term ||
      target.vote !== this.durable.vote ||
      target.bootId !== this.durable.bootId ||
      !sameBytes(target.meta, this.durable.meta);
    try {
      if (snap) {
        const to = Math.max(snap.index, compactTo ?? 0);
        this.writeSnapshot(snap, (err) => {
          if (err) cb(err);
          else this.flushWal(parts, target, hsChanged, groupCommit, to, cb);
        });
      } else this.flushWal(parts, target, hsChanged, groupCommit, compactTo, cb);
    } catch (e) {
      cb(this.fail(e));
    }
  }

  /** flushGroup's second half, once its snapshot (if any) is durable. */
  private flushWal(parts: Uint8Array[], target: HardStateFile, hsChanged: boolean, groupCommit: number, compactTo: number | undefined, cb: Done): void {
    try {
      // One record per flush (see the header, "One record per flush"); a group too large
      // for one record is written as several flushes, each synced before the next.
      const chunks = packRecords(parts, this.opts.maxRecordBytes);
      const after: Done = (err2) => {
        if (err2) return cb(err2);
        this.walCommit = Math.max(this.walCommit, groupCommit);
        this.durable = { ...target, commit: this.walCommit };
        if (compactTo !== undefined) this.compact(compactTo);
        cb(null);
      };
      let then = after;
      if (chunks.length > 1) {
        let next = 1;
        const more: Done = (err) => {
          if (err || next >= chunks.length) return after(err);
          try {
            this.writeWalAndHardState(chunks[next++], undefined, more);
          } catch (e) {
            cb(this.fail(e));
          }
        };
        then = more;
      }
      this.writeWalAndHardState(chunks[0], hsChanged ? target : undefined, then);
    } catch (e) {
      cb(this.fail(e));
    }
  }

  /** A compaction beside the WAL (see persist): its file now, its mark into the queue once the file is durable. */
  private writeBeside(item: Pending): void {
    const snap = item.snapshot!;
    item.snapshot = undefined;
    item.beside = undefined;
    item.compactTo = snap.index;
    this.besideBusy = true;
    const after = (err: Error | null): void => {
      this.besideBusy = false;
      if (err || this.failure) {
        item.done(this.fail(err ?? this.failure));
      } else if (this.closed) {
        // Nothing more goes into the WAL. The file is durable: recovery applies it
        // without its mark (see persist), so the snapshot is not lost.
        item.done(null);
        return;
      } else {
        // First in the queue: its place in call order is before everything queued since
        // (a later snapshot's mark must follow it; later entries are above it and kept).
        this.pending.unshift(item);
      }
      this.drain();
    };
    try {
      this.writeSnapshot(snap, once(after));
    } catch (e) {
      after(e as Error);
    }
  }

  /**
   * Snapshot file: write tmp, fsync, rename, fsync dir; then drop older snapshot files.
   *
   * A tmp that could not be written or synced is removed again before the error goes
   * on. It is worth nothing (recovery removes any leftover tmp), but it is as large as
   * the state: on a disk that filled up during its write it held the space that the
   * next start needed for its first small files, so that the node could not start
   * again until an operator deleted it by hand (seen on a 4 MiB data directory: a
   * 1.3 MB snapshot tmp, 4 KiB left free).
   */
  private writeSnapshot(snap: SnapshotRecord, done: Done): void {
    const name = snapshotName(snap.index);
    const tmp = name + TMP_SUFFIX;
    const failed = (err: Error): void => {
      try {
        this.storage.remove(tmp);
      } catch {
        /* best effort (perhaps never created): the write's error is the one to report, and recovery removes a leftover */
      }
      done(err);
    };
    // Head and state written apart: the state (up to 16 MiB) is not copied into one buffer first.
    const [head, data] = encodeSnapshotParts(snap);
    try {
      this.write(tmp, head);
      this.append(tmp, data);
    } catch (e) {
      return failed(e as Error);
    }
    this.sync(tmp, (err) => {
      if (err) return failed(err);
      try {
        this.storage.rename(tmp, name);
      } catch (e) {
        return failed(e as Error);
      }
      this.syncDir((err2) => {
        if (err2) return done(err2);
        try {
          for (const n of this.storage.list()) {
            const i = parseSnapshotName(n);
            if (i !== undefined && i < snap.index) this.storage.remove(n);
          }
        } catch (e) {
          return done(e as Error);
        }
        done(null);
      });
    });
  }

  /** One record (a flush: see the header) appended + one fsync for the WAL; the hard-state replace in parallel when term/vote/meta changed. */
  private writeWalAndHardState(record: Uint8Array | undefined, hs: HardStateFile | undefined, done: Done): void {
    let dirSyncNeeded = false;
    let walName: string | undefined;
    if (record !== undefined) {
      let cur = this.segments[this.segments.length - 1];
      let bytes = record;
      if (!cur || cur.size >= this.opts.segmentBytes) {
        // Roll. The previous segment is entirely durable (every flush fsyncs it before
        // the next starts), so only this one can ever hold a torn tail.
        const seq = this.nextSeq++;
        const head = [encodeSegmentHeader(seq)];
        if (this.walCommit > 0) head.push(encodeCommit(this.walCommit));
        bytes = concat([...head, bytes]);
        cur = { name: segmentName(seq), seq, size: 0, maxIndex: 0 };
        this.write(cur.name, bytes);
        this.segments.push(cur);
        dirSyncNeeded = true;
      } else {
        this.append(cur.name, bytes);
      }
      cur.size += bytes.length;
      const p = record;
      if (p[8] === 2 /* Kind.Entry */) cur.maxIndex = Math.max(cur.maxIndex, entryIndexAt(p, 0));
      else if (p[8] === Kind.Batch) {
        // The records inside a batch ([u32 len][kind][payload] each, no CRC), from payload offset 9.
        for (let o = RECORD_HEADER + 1; o + 5 <= p.length; ) {
          if (p[o + 4] === 2) cur.maxIndex = Math.max(cur.maxIndex, entryIndexAt(p, o - 4));
          o += 4 + ((p[o]! | (p[o + 1]! << 8) | (p[o + 2]! << 16) | (p[o + 3]! << 24)) >>> 0);
        }
      }
      walName = cur.name;
    }
    const j = join((walName ? 1 : 0) + (hs || dirSyncNeeded ? 1 : 0), done);
    if (walName) this.sync(walName, j);
    if (hs) this.replaceHardState(hs, j); // its directory fsync also covers a new segment's entry
    else if (dirSyncNeeded) this.syncDir(j);
  }

  /** Atomic replace of the hard-state file (write tmp, fsync, rename, fsync dir). */
  private replaceHardState(hs: HardStateFile, done: Done): void {
    const tmp = HARDSTATE_FILE + TMP_SUFFIX;
    this.write(tmp, encodeHardState(hs));
    this.sync(tmp, (err) => {
      if (err) return done(err);
      try {
        this.storage.rename(tmp, HARDSTATE_FILE);
      } catch (e) {
        return done(e as Error);
      }
      this.syncDir((err2) => {
        if (!err2) this.durable = { ...hs };
        done(err2);
      });
    });
  }

  /**
   * Removes WAL segments wholly below a durable snapshot whose mark is in the current
   * segment. Not fsynced here: if a removal is lost in a crash, recovery sees a stale
   * segment covered by the snapshot and removes it again.
   */
  private compact(snapIndex: number): void {
    let n = 0;
    while (n < this.segments.length - 1 && this.segments[n]!.maxIndex <= snapIndex) n++;
    for (const s of this.segments.splice(0, n)) this.storage.remove(s.name);
  }

  // Counted storage calls.
  private write(name: string, data: Uint8Array): void {
    this.storage.write(name, data);
    this.counters.bytesWritten += data.length;
  }
  private append(name: string, data: Uint8Array): void {
    this.storage.append(name, data);
    this.counters.bytesWritten += data.length;
  }
  private sync(name: string, done: Done): void {
    this.counters.fileSyncs++;
    this.storage.sync(name, once(done));
  }
  private syncDir(done: Done): void {
    this.counters.dirSyncs++;
    this.storage.syncDir(once(done));
  }
}

/** The index of the entry record at `o` in `p`: u64 LE at payload offset 8 (record offset 17); read by hand, no DataView per record. */
function entryIndexAt(p: Uint8Array, o: number): number {
  const lo = (p[o + 17]! | (p[o + 18]! << 8) | (p[o + 19]! << 16) | (p[o + 20]! << 24)) >>> 0;
  const hi = (p[o + 21]! | (p[o + 22]! << 8) | (p[o + 23]! << 16) | (p[o + 24]! << 24)) >>> 0;
  return lo + hi * 0x100000000;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  // From the records' slab (records.ts): this is written or appended (copied) at once.
  const out = recordBuffer(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
