/**
 * Flash storage (an SD card behind a page cache) with the power-loss semantics that
 * `Storage` documents in hal/interfaces.ts:
 *
 *   - write/append/truncate/rename/remove change the volatile view at once;
 *   - `sync(name)` makes the file's content durable after the fsync latency
 *     (content as of the call; bytes appended while the fsync runs may ride along
 *     only if a rewrite happened meanwhile — see `completeSync`);
 *   - `syncDir()` makes creations, renames and removals durable (the directory as of
 *     the call);
 *   - a process crash keeps everything (the page cache belongs to the kernel; an fsync
 *     already issued still completes, only its callback is not delivered);
 *   - power loss (or a watchdog reset) drops every unsynced change, except that the
 *     most recent write of the device, if unsynced, may survive torn: a random prefix
 *     of its bytes (possibly none, possibly all) reaches the card. It is eligible only
 *     when it is the sole unsynced change of its file, so the result is always a state
 *     made of bytes that were written: never garbage, never a gap.
 *
 * Files are inodes; the directory maps names to inodes, so a rename moves content
 * without copying, and an unsynced rename reverts to the old name on power loss.
 * Durable content is kept as a prefix of the volatile buffer while only appends
 * happen (the common case of a write-ahead log), so an fsync costs no copy.
 *
 * Faults: `faults.diskError` (fsyncs fail with EIO and make nothing durable),
 * `faults.slowFactor` (fsync latency multiplied, e.g. an SD card's garbage collection).
 */
import type { Done, Storage } from '../hal/interfaces.ts';
import type { Rng } from '../src/rng.ts';
import type { Proc } from './proc.ts';
import type { SimContext } from './scheduler.ts';

export interface FlashOptions {
  /** Shortest fsync latency (ms). Default 2: a fast SD card. */
  fsyncMinMs?: number;
  /** Longest fsync latency (ms). Default 10: SD cards are slow and erratic. */
  fsyncMaxMs?: number;
}

/** Counters for SD-wear reports. */
export interface FlashStats {
  /** Bytes handed to write/append (what the card eventually has to absorb). */
  bytesWritten: number;
  /** Completed file fsyncs (successful or not). */
  fsyncs: number;
  /** Completed directory fsyncs. */
  dirSyncs: number;
  /** fsyncs that reported an error (disk fault). */
  syncErrors: number;
  /** Power losses survived by this card. */
  powerLosses: number;
  /** Power losses where the last write survived partially (0 < kept < length). */
  tornWrites: number;
}

class Inode {
  buf: Uint8Array;
  len = 0;
  /** When true, the durable content is buf[0, durLen). */
  durIsPrefix = true;
  durLen = 0;
  durData: Uint8Array | null = null;
  /** Bumped by every change. */
  version = 0;
  /** Version of the last change that was not an append (write/truncate). */
  rewriteVersion = 0;
  /** Changes since the content was last made durable. */
  opsSinceSync = 0;

  constructor(readonly ino: number) {
    this.buf = new Uint8Array(0);
  }

  durable(): Uint8Array {
    return this.durIsPrefix ? this.buf.subarray(0, this.durLen) : this.durData!;
  }

  /** Keeps the durable content safe before a change that overwrites the buffer. */
  materialize(): void {
    if (this.durIsPrefix) {
      this.durData = this.buf.slice(0, this.durLen);
      this.durIsPrefix = false;
    }
  }
}

interface LastWrite {
  inode: Inode;
  kind: 'write' | 'append';
  start: number;
  length: number;
  version: number;
}

function checkName(op: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255 || name.includes('/') || name.includes('\0')) {
    throw new TypeError(`Storage.${op}: file name must be a non-empty string of at most 255 characters without '/' or NUL, got ${JSON.stringify(name)}`);
  }
}

function checkData(op: string, data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(`Storage.${op}: data must be a Uint8Array, got ${data === null ? 'null' : typeof data}`);
  }
}

function fsError(code: string, msg: string): Error {
  const e = new Error(`${code}: ${msg}`) as Error & { code: string };
  e.code = code;
  return e;
}

export class Flash {
  private volDir = new Map<string, Inode>();
  private durDir = new Map<string, Inode>();
  private nextIno = 1;
  private lastWrite: LastWrite | null = null;
  private busyUntil = 0;
  /** Bumped by every power loss: an fsync in flight at that moment makes nothing durable. */
  private epoch = 0;
  private readonly minUs: number;
  private readonly maxUs: number;
  readonly stats: FlashStats = { bytesWritten: 0, fsyncs: 0, dirSyncs: 0, syncErrors: 0, powerLosses: 0, tornWrites: 0 };
  /** Injectable faults (see the file comment). */
  readonly faults = { diskError: false, slowFactor: 1 };

  constructor(
    private readonly ctx: SimContext,
    private readonly rng: Rng,
    /** Label in trace lines, e.g. `n3`. */
    readonly label: string,
    opts: FlashOptions = {},
  ) {
    const lo = opts.fsyncMinMs ?? 2;
    const hi = opts.fsyncMaxMs ?? 10;
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo < 0 || hi < lo) {
      throw new RangeError(`FlashOptions: expected 0 ≤ fsyncMinMs ≤ fsyncMaxMs (ms), got ${String(opts.fsyncMinMs)}..${String(opts.fsyncMaxMs)}`);
    }
    this.minUs = Math.round(lo * 1000);
    this.maxUs = Math.round(hi * 1000);
    this.tagWrite = `flash ${label} write`;
    this.tagAppend = `flash ${label} append`;
  }

  // Trace tags, built once (per-write and per-fsync lines use SimContext.logFields).
  private readonly tagWrite: string;
  private readonly tagAppend: string;
  private readonly syncedTags = new Map<string, string>();
  private syncedTag(name: string): string {
    let t = this.syncedTags.get(name);
    if (t === undefined) {
      // Bounded: file names come and go (WAL segments); the cache only saves string building.
      if (this.syncedTags.size >= 64) this.syncedTags.clear();
      t = `flash ${this.label} synced ${name}`;
      this.syncedTags.set(name, t);
    }
    return t;
  }

  // ---- volatile view -------------------------------------------------------------

  list(): string[] {
    return [...this.volDir.keys()].sort();
  }

  read(name: string): Uint8Array | undefined {
    checkName('read', name);
    const ino = this.volDir.get(name);
    return ino === undefined ? undefined : ino.buf.slice(0, ino.len);
  }

  write(name: string, data: Uint8Array): void {
    checkName('write', name);
    checkData('write', data);
    let ino = this.volDir.get(name);
    if (ino === undefined) {
      ino = new Inode(this.nextIno++);
      this.volDir.set(name, ino);
    }
    ino.materialize();
    ino.buf = data.slice();
    ino.len = data.length;
    this.changed(ino, 'write', 0, data.length);
    ino.rewriteVersion = ino.version;
  }

  append(name: string, data: Uint8Array): void {
    checkName('append', name);
    checkData('append', data);
    let ino = this.volDir.get(name);
    if (ino === undefined) {
      ino = new Inode(this.nextIno++);
      this.volDir.set(name, ino);
    }
    const start = ino.len;
    const need = start + data.length;
    if (need > ino.buf.length) {
      const grown = new Uint8Array(Math.max(need, ino.buf.length * 2, 256));
      grown.set(ino.buf.subarray(0, ino.len));
      ino.buf = grown;
    }
    ino.buf.set(data, start);
    ino.len = need;
    this.changed(ino, 'append', start, data.length);
  }

  truncate(name: string, size: number): void {
    checkName('truncate', name);
    const ino = this.volDir.get(name);
    if (ino === undefined) throw fsError('ENOENT', `Storage.truncate: no file ${JSON.stringify(name)}`);
    if (!Number.isInteger(size) || size < 0 || size > ino.len) {
      throw new RangeError(`Storage.truncate: size must be an integer in [0, ${ino.len}] for ${JSON.stringify(name)}, got ${String(size)}`);
    }
    if (size < ino.durLen) ino.materialize();
    ino.len = size;
    ino.version++;
    ino.opsSinceSync++;
    ino.rewriteVersion = ino.version;
    this.ctx.log(`flash ${this.label} truncate ${name} ${size}`);
  }

  rename(from: string, to: string): void {
    checkName('rename', from);
    checkName('rename', to);
    const ino = this.volDir.get(from);
    if (ino === undefined) throw fsError('ENOENT', `Storage.rename: no file ${JSON.stringify(from)}`);
    if (from === to) return;
    this.volDir.delete(from);
    this.volDir.set(to, ino);
    this.ctx.log(`flash ${this.label} rename ${from} ${to}`);
  }

  remove(name: string): void {
    checkName('remove', name);
    if (!this.volDir.delete(name)) throw fsError('ENOENT', `Storage.remove: no file ${JSON.stringify(name)}`);
    this.ctx.log(`flash ${this.label} remove ${name}`);
  }

  private changed(ino: Inode, kind: 'write' | 'append', start: number, length: number): void {
    ino.version++;
    ino.opsSinceSync++;
    this.stats.bytesWritten += length;
    this.lastWrite = { inode: ino, kind, start, length, version: ino.version };
    this.ctx.logFields(kind === 'write' ? this.tagWrite : this.tagAppend, fmtRange, ino.ino, start, length);
  }

  // ---- durability ----------------------------------------------------------------

  private latencyUs(): number {
    const base = this.minUs === this.maxUs ? this.minUs : this.rng.int(this.minUs, this.maxUs);
    return Math.max(0, Math.round(base * this.faults.slowFactor));
  }

  /** fsyncs are served one at a time, as an SD card does. Returns the completion time (µs). */
  private reserve(): number {
    const start = Math.max(this.ctx.sched.now, this.busyUntil);
    const end = start + this.latencyUs();
    this.busyUntil = end;
    return end;
  }

  /**
   * fsync of one file. `done` is called at completion (never synchronously) with an
   * error for a missing file or an injected disk error. A power loss before completion
   * makes nothing durable and `done` is never called (the caller is dead anyway).
   */
  sync(name: string, done: Done): void {
    checkName('sync', name);
    if (typeof done !== 'function') throw new TypeError('Storage.sync: done must be a function');
    const ino = this.volDir.get(name);
    const t = this.reserve();
    const job = { flash: this, name, ino, version: ino?.version ?? 0, len: ino?.len ?? 0, epoch: this.epoch, done };
    this.ctx.sched.at(t, completeSync, job);
  }

  /** fsync of the directory: the name → file map as of the call becomes durable. */
  syncDir(done: Done): void {
    if (typeof done !== 'function') throw new TypeError('Storage.syncDir: done must be a function');
    const t = this.reserve();
    const job = { flash: this, dir: new Map(this.volDir), epoch: this.epoch, done };
    this.ctx.sched.at(t, completeSyncDir, job);
  }

  /** @internal */
  finishSync(job: SyncJob): void {
    if (job.epoch !== this.epoch) return;
    this.stats.fsyncs++;
    const ino = job.ino;
    if (ino === undefined) {
      job.done(fsError('ENOENT', `Storage.sync: no file ${JSON.stringify(job.name)}`));
      return;
    }
    if (this.faults.diskError) {
      this.stats.syncErrors++;
      this.ctx.log(`flash ${this.label} sync-error ${job.name}`);
      job.done(fsError('EIO', `Storage.sync: I/O error on ${JSON.stringify(job.name)} (injected disk fault)`));
      return;
    }
    if (ino.rewriteVersion <= job.version && ino.len >= job.len) {
      // Only appends since the call: the content as of the call is a prefix of the buffer.
      ino.durIsPrefix = true;
      ino.durData = null;
      ino.durLen = job.len;
      ino.opsSinceSync = ino.version - job.version;
    } else {
      // A rewrite raced the fsync: the kernel flushed what it had at completion.
      ino.durIsPrefix = true;
      ino.durData = null;
      ino.durLen = ino.len;
      ino.opsSinceSync = 0;
    }
    if (this.lastWrite !== null && this.lastWrite.inode === ino && (ino.opsSinceSync === 0 || this.lastWrite.version <= job.version)) {
      this.lastWrite = null;
    }
    this.ctx.logFields(this.syncedTag(job.name), fmtOne, ino.durLen);
    job.done(null);
  }

  /** @internal */
  finishSyncDir(job: SyncDirJob): void {
    if (job.epoch !== this.epoch) return;
    this.stats.dirSyncs++;
    if (this.faults.diskError) {
      this.stats.syncErrors++;
      this.ctx.log(`flash ${this.label} syncdir-error`);
      job.done(fsError('EIO', 'Storage.syncDir: I/O error (injected disk fault)'));
      return;
    }
    this.durDir = job.dir;
    this.ctx.log(`flash ${this.label} syncdir ${job.dir.size}`);
    job.done(null);
  }

  /**
   * The card loses power (board power cut or SoC reset): everything volatile is
   * replaced by the durable state, the last write possibly torn (see the file comment).
   */
  powerLoss(): void {
    this.epoch++;
    this.busyUntil = this.ctx.sched.now;
    this.stats.powerLosses++;
    const lw = this.lastWrite;
    this.lastWrite = null;
    let torn: Inode | null = null;
    let keep = 0;
    if (lw !== null && lw.inode.opsSinceSync === 1 && lw.inode.version === lw.version) {
      const ino = lw.inode;
      if (lw.kind === 'append' && ino.durIsPrefix && lw.start === ino.durLen) {
        torn = ino;
        keep = this.rng.int(0, lw.length);
      } else if (lw.kind === 'write') {
        torn = ino;
        keep = this.rng.int(0, lw.length);
      }
    }
    const seen = new Set<Inode>();
    for (const ino of this.durDir.values()) {
      if (seen.has(ino)) continue;
      seen.add(ino);
      if (ino === torn && lw !== null && keep > 0) {
        // The written bytes are still in the buffer (no change since): keep a prefix.
        if (lw.kind === 'append') ino.len = ino.durLen + keep;
        else ino.len = keep;
        if (keep < lw.length) this.stats.tornWrites++;
        this.ctx.log(`flash ${this.label} torn ${ino.ino} kept ${keep}/${lw.length}`);
      } else if (ino.durIsPrefix) {
        ino.len = ino.durLen;
      } else {
        ino.buf = ino.durData!;
        ino.len = ino.buf.length;
      }
      ino.durIsPrefix = true;
      ino.durData = null;
      ino.durLen = ino.len;
      ino.opsSinceSync = 0;
      ino.version++;
      ino.rewriteVersion = ino.version;
    }
    this.volDir = new Map(this.durDir);
    this.ctx.log(`flash ${this.label} power-loss files=${this.volDir.size}`);
  }

  /** What the card holds durably right now (for tests and invariant checks). */
  durableView(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const [name, ino] of this.durDir) out.set(name, ino.durable().slice());
    return out;
  }

  /** A `Storage` for one process incarnation: calls from a dead process do nothing. */
  storage(proc: Proc): Storage {
    return new FlashStorage(this, proc);
  }
}

interface SyncJob {
  flash: Flash;
  name: string;
  ino: Inode | undefined;
  version: number;
  len: number;
  epoch: number;
  done: Done;
}
interface SyncDirJob {
  flash: Flash;
  dir: Map<string, Inode>;
  epoch: number;
  done: Done;
}

function completeSync(job: SyncJob): void {
  job.flash.finishSync(job);
}
function completeSyncDir(job: SyncDirJob): void {
  job.flash.finishSyncDir(job);
}

/** The per-incarnation `Storage` facade. */
class FlashStorage implements Storage {
  constructor(
    private readonly flash: Flash,
    private readonly proc: Proc,
  ) {}

  private dead(op: string): boolean {
    if (this.proc.alive) return false;
    this.proc.stale(`storage.${op}`);
    return true;
  }

  list(): string[] {
    return this.dead('list') ? [] : this.flash.list();
  }
  read(name: string): Uint8Array | undefined {
    return this.dead('read') ? undefined : this.flash.read(name);
  }
  write(name: string, data: Uint8Array): void {
    if (!this.dead('write')) this.flash.write(name, data);
  }
  append(name: string, data: Uint8Array): void {
    if (!this.dead('append')) this.flash.append(name, data);
  }
  truncate(name: string, size: number): void {
    if (!this.dead('truncate')) this.flash.truncate(name, size);
  }
  rename(from: string, to: string): void {
    if (!this.dead('rename')) this.flash.rename(from, to);
  }
  remove(name: string): void {
    if (!this.dead('remove')) this.flash.remove(name);
  }
  sync(name: string, done: Done): void {
    if (this.dead('sync')) return;
    const proc = this.proc;
    this.flash.sync(name, (err) => proc.deliver(() => done(err)));
  }
  syncDir(done: Done): void {
    if (this.dead('syncDir')) return;
    const proc = this.proc;
    this.flash.syncDir((err) => proc.deliver(() => done(err)));
  }
}

// Per-write / per-fsync trace lines, recorded as numbers (SimContext.logFields) and formatted only for trace.last().
/** `<tag> <ino> <start>+<length>` */
function fmtRange(tag: string, ino: number, start: number, length: number): string {
  return `${tag} ${ino} ${start}+${length}`;
}
/** `<tag> <n>` */
function fmtOne(tag: string, n: number): string {
  return `${tag} ${n}`;
}
