/**
 * `Storage` on real files in one directory (the board's SD card).
 *
 * Writes go through the page cache with synchronous fs calls (they return as soon as
 * the kernel has the bytes); durability comes only from `sync` (fdatasync of the
 * file) and `syncDir` (fsync of the directory, which makes creations, renames and
 * removals durable — ext4 and f2fs need it, see the LWN article "ext4 and data loss"
 * and the rename-then-fsync-dir pattern). Both run asynchronously on libuv's thread
 * pool so that the node keeps ticking while the card is slow.
 *
 * File names are flat: no path separators, no "." or "..", no NUL, at most 255 bytes.
 * A bad name is a RangeError naming it. Reads of missing files return undefined.
 *
 * Descriptors stay open: every file written or appended keeps its descriptor until it
 * is removed, renamed, truncated, replaced or the storage closes, and the directory
 * keeps one too (writes are positional, at the end this process knows: a truncation
 * closes the descriptor, and the next append starts at the new size). A sync is then one
 * trip through the thread pool (fdatasync) instead of three (open, fsync, close) —
 * about half of a WAL sync's time on ext4, most of it on tmpfs. fdatasync, as etcd
 * uses for its WAL: it flushes the data and what is needed to read it back (the
 * size), not the times. A descriptor with a sync in flight is closed only after that
 * sync called back (its number must not be reused under it).
 *
 * Preallocation (WAL segments only: names as hal/storage/format.ts gives them): an
 * append that would pass the end of the space written so far first writes zeros up to
 * the next multiple of `preallocateBytes` (default 1 MiB) past it, and later appends
 * overwrite those zeros. An fdatasync after an append that grows a file must commit the
 * new size through the file system's journal (on ext4 a journal commit, by its own
 * kernel thread, on every write); one that only overwrites flushes the data pages and
 * nothing else. Measured on this project's 2-core test VM (ext4, 150-byte records, 3,000
 * syncs each): fdatasync median 0.16–0.18 ms growing, 0.12 ms into written zeros; with
 * two busy loops beside it 0.21–0.35 ms against 0.15–0.23 ms. On an SD card the journal
 * blocks are also card writes that each small write no longer pays. The zeros cost one
 * larger sync every `preallocateBytes` of log. (etcd preallocates its WAL segments too,
 * with fallocate, which Node does not offer.) The file then ends in zeros: recovery
 * reads them as the end of the log, and the durable log writes every flush as one
 * record, so that a torn write into this space is one bad record, never a bad record
 * followed by good ones (hal/storage/durable-log.ts, "One record per flush").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Done, Storage } from './interfaces.ts';
import { parseSegmentName } from './storage/format.ts';

const MAX_NAME = 255;
/** Writes and appends: created when missing (write() adds O_TRUNC). Positional, not O_APPEND (Linux's pwrite ignores the position under O_APPEND). */
const WRITE = fs.constants.O_WRONLY | fs.constants.O_CREAT;
/**
 * Files and directories this storage creates are its owner's alone, whatever the umask:
 * other local users are not trusted (docs/security.md). The log holds every value of the
 * KV, which the API gives only to a token holder; and under `umask 000` the files came
 * out 0666 in a 0777 directory, so that any local user could rewrite the hard state (a
 * second vote in a term) or the log.
 */
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
/** Default `preallocateBytes`. */
const PREALLOCATE_BYTES = 1 << 20;
/** The zeros of a preallocation are written in pieces of this size (one short-lived buffer). */
const ZERO_PIECE = 64 * 1024;

export interface FsStorageOptions {
  /**
   * WAL segments are extended with zeros in steps of this many bytes, ahead of the
   * appends (see the header). Default 1 MiB; 0 turns preallocation off (every append
   * grows the file).
   */
  preallocateBytes?: number;
}

/** Where the next append of an open file goes, and how far the file is written (its size on disk). */
interface OpenFile {
  fd: number;
  end: number;
  written: number;
  preallocate: boolean;
}

export function validateFileName(name: unknown): string {
  if (typeof name !== 'string') throw new RangeError(`storage file name must be a string, got ${typeof name}`);
  if (name.length === 0) throw new RangeError('storage file name must not be empty');
  if (Buffer.byteLength(name) > MAX_NAME) throw new RangeError(`storage file name "${name.slice(0, 40)}…" is longer than ${MAX_NAME} bytes`);
  if (name === '.' || name === '..') throw new RangeError(`storage file name "${name}" is not a file name`);
  if (/[/\\\0]/.test(name)) throw new RangeError(`storage file name ${JSON.stringify(name)} must not contain "/", "\\" or NUL`);
  return name;
}

export class FsStorage implements Storage {
  readonly dir: string;
  private fds = new Map<string, OpenFile>();
  private readonly preallocateBytes: number;
  /** Syncs in flight per descriptor; a descriptor dropped meanwhile is closed by the last one. */
  private syncing = new Map<number, number>();
  private closeWhenIdle = new Set<number>();
  private dirFd: number | undefined;
  private closed = false;
  /** Files found readable or writable by group or others when opened, with their old mode; made 0600 (the caller may log it). */
  readonly tightened: Array<{ name: string; mode: number }> = [];

  /** Uses `dir` (created if missing, with parents). */
  constructor(dir: string, opts: FsStorageOptions = {}) {
    if (typeof dir !== 'string' || dir.length === 0) throw new RangeError('FsStorage: dir must be a non-empty path');
    const pre = opts.preallocateBytes ?? PREALLOCATE_BYTES;
    if (!Number.isSafeInteger(pre) || pre < 0) throw new RangeError(`FsStorage: preallocateBytes must be a non-negative integer, got ${String(pre)}`);
    this.preallocateBytes = pre;
    this.dir = path.resolve(dir);
    fs.mkdirSync(this.dir, { recursive: true, mode: DIR_MODE });
    const st = fs.statSync(this.dir);
    if (!st.isDirectory()) throw new RangeError(`FsStorage: ${this.dir} is not a directory`);
    // Whoever may create, rename or remove files here can replace the hard state or the
    // log under the node: refused, as a secret file readable by others is.
    if ((st.mode & 0o022) !== 0) {
      throw new RangeError(`FsStorage: ${this.dir} is writable by ${(st.mode & 0o002) !== 0 ? 'other users' : 'its group'} (mode ${octal(st.mode)}): other users could replace the node's log and hard state; make it the owner's alone: chmod 700 ${this.dir}`);
    }
    // Files an earlier start made under a permissive umask: the owner's alone from now on.
    for (const d of fs.readdirSync(this.dir, { withFileTypes: true })) {
      if (!d.isFile()) continue;
      const f = path.join(this.dir, d.name);
      const mode = fs.lstatSync(f).mode;
      if ((mode & 0o077) !== 0) {
        fs.chmodSync(f, FILE_MODE);
        this.tightened.push({ name: d.name, mode: mode & 0o777 });
      }
    }
  }

  private p(name: string): string {
    this.open();
    return path.join(this.dir, validateFileName(name));
  }
  private open(): void {
    if (this.closed) throw new Error(`FsStorage(${this.dir}): closed`);
  }
  private dropFd(name: string): void {
    const f = this.fds.get(name);
    if (f !== undefined) {
      this.fds.delete(name);
      this.release(f.fd);
    }
  }
  /** Closes `fd` now, or once the syncs running on it called back. */
  private release(fd: number): void {
    if (this.syncing.has(fd)) this.closeWhenIdle.add(fd);
    else fs.closeSync(fd);
  }

  list(): string[] {
    this.open();
    return fs
      .readdirSync(this.dir, { withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => d.name);
  }

  read(name: string): Uint8Array | undefined {
    const p = this.p(name);
    try {
      const b = fs.readFileSync(p);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  write(name: string, data: Uint8Array): void {
    const p = this.p(name);
    this.dropFd(name);
    try {
      const fd = fs.openSync(p, WRITE | fs.constants.O_TRUNC, FILE_MODE);
      this.fds.set(name, { fd, end: data.length, written: data.length, preallocate: this.preallocates(name) });
      writeAll(fd, data, 0, name);
    } catch (e) {
      throw named(e, `write ${name}`);
    }
  }

  append(name: string, data: Uint8Array): void {
    try {
      this.appendTo(name, data);
    } catch (e) {
      throw named(e, `append to ${name}`);
    }
  }

  private appendTo(name: string, data: Uint8Array): void {
    // An open descriptor was opened under a checked name, and close() forgets them all:
    // the path is needed (and built) only to open one. Building it on every append and
    // sync (path.join) was about 1.3 KB of garbage per write on every node.
    let f = this.fds.get(name);
    if (f === undefined) {
      const fd = fs.openSync(this.p(name), WRITE, FILE_MODE);
      let size: number;
      try {
        size = fs.fstatSync(fd).size;
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
      f = { fd, end: size, written: size, preallocate: this.preallocates(name) };
      this.fds.set(name, f);
    }
    const end = f.end + data.length;
    if (f.preallocate && end > f.written) {
      // Zeros from the written end to the next step past this append (see the header).
      const step = this.preallocateBytes;
      const to = (Math.floor(end / step) + 1) * step;
      try {
        writeZeros(f.fd, f.written, to - f.written, name);
        f.written = to;
      } catch (e) {
        // A nearly full disk: no room for the zeros, perhaps for the record. Go on with
        // plain appends for this file (zeros already written are overwritten or read
        // as the log's end), so that preallocation never stops a node sooner.
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        f.preallocate = false;
      }
    }
    writeAll(f.fd, data, f.end, name);
    f.end = end;
    if (end > f.written) f.written = end;
  }

  private preallocates(name: string): boolean {
    return this.preallocateBytes > 0 && parseSegmentName(name) !== undefined;
  }

  truncate(name: string, size: number): void {
    const p = this.p(name);
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`FsStorage.truncate(${name}): size must be a non-negative integer, got ${size}`);
    this.dropFd(name); // the next append starts at the new size
    try {
      fs.truncateSync(p, size);
    } catch (e) {
      throw named(e, `truncate ${name}`);
    }
  }

  rename(from: string, to: string): void {
    const a = this.p(from);
    const b = this.p(to);
    this.dropFd(from);
    this.dropFd(to);
    try {
      fs.renameSync(a, b);
    } catch (e) {
      throw named(e, `rename ${from} to ${to}`);
    }
  }

  remove(name: string): void {
    const p = this.p(name);
    this.dropFd(name);
    try {
      fs.rmSync(p);
    } catch (e) {
      throw named(e, `remove ${name}`);
    }
  }

  sync(name: string, done: Done): void {
    const f = this.fds.get(name); // open: see append
    if (f !== undefined) return this.syncFd(f.fd, false, name, done);
    let p: string;
    try {
      p = this.p(name);
    } catch (e) {
      queueMicrotask(() => done(e as Error));
      return;
    }
    // Not written by this process (recovery truncated it): open it once for the sync.
    fs.open(p, 'r', (err, rfd) => {
      if (err) return done(withContext(err, `fsync ${name}`));
      fs.fdatasync(rfd, (err2) => {
        fs.close(rfd, (err3) => done(err2 ? withContext(err2, `fsync ${name}`) : err3 ? withContext(err3, `close ${name}`) : null));
      });
    });
  }

  syncDir(done: Done): void {
    try {
      this.open();
      this.dirFd ??= fs.openSync(this.dir, 'r');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      queueMicrotask(() => done(err.code ? withContext(err, `fsync directory ${this.dir}`) : err));
      return;
    }
    this.syncFd(this.dirFd, true, undefined, done);
  }

  /** `name`: the file's, for the error message (undefined: the directory). */
  private syncFd(fd: number, full: boolean, name: string | undefined, done: Done): void {
    this.syncing.set(fd, (this.syncing.get(fd) ?? 0) + 1);
    const cb = (err: NodeJS.ErrnoException | null) => {
      const left = this.syncing.get(fd)! - 1;
      if (left > 0) this.syncing.set(fd, left);
      else {
        this.syncing.delete(fd);
        if (this.closeWhenIdle.delete(fd)) fs.close(fd, () => {});
      }
      done(err ? withContext(err, name === undefined ? `fsync directory ${this.dir}` : `fsync ${name}`) : null);
    };
    if (full) fs.fsync(fd, cb);
    else fs.fdatasync(fd, cb);
  }

  /** Closes the descriptors (those with a sync in flight once it calls back); later calls throw. Syncs already running still call back. */
  close(): void {
    for (const f of this.fds.values()) this.release(f.fd);
    this.fds.clear();
    if (this.dirFd !== undefined) this.release(this.dirFd);
    this.dirFd = undefined;
    this.closed = true;
  }
}

/** `data` at byte `at` of the file. writeSync may write less than asked (rare on files, but allowed): loop, bounded by progress. */
function writeAll(fd: number, data: Uint8Array, at: number, name: string): void {
  let off = 0;
  while (off < data.length) {
    const n = fs.writeSync(fd, data, off, data.length - off, at + off);
    if (n <= 0) throw new Error(`FsStorage: write to ${name} made no progress`);
    off += n;
  }
}

/** `n` zero bytes at byte `at` of the file, in pieces (one short-lived buffer). */
function writeZeros(fd: number, at: number, n: number, name: string): void {
  const zeros = new Uint8Array(Math.min(n, ZERO_PIECE));
  for (let done = 0; done < n; ) {
    const k = Math.min(zeros.length, n - done);
    writeAll(fd, k === zeros.length ? zeros : zeros.subarray(0, k), at + done, name);
    done += k;
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

function withContext(err: NodeJS.ErrnoException, what: string): Error {
  // Node's own messages start with the code already ("EIO: i/o error, fdatasync").
  const code = err.code !== undefined && !err.message.startsWith(`${err.code}:`) ? `${err.code} ` : '';
  const e = new Error(`${what}: ${code}${err.message}`) as NodeJS.ErrnoException;
  e.cause = err;
  // Kept, so that a caller can still tell ENOSPC from EIO without looking through `cause`.
  if (err.code !== undefined) e.code = err.code;
  return e;
}

/**
 * A system error of a write, append, truncate, rename or removal, with the file it was
 * about: a write to a descriptor names none ("ENOSPC: no space left on device, write"),
 * and the node's fatal error is all an operator reads of it. Other errors (a bad name,
 * a closed storage) already say what they are about.
 */
function named(e: unknown, what: string): unknown {
  const err = e as NodeJS.ErrnoException;
  return err instanceof Error && typeof err.code === 'string' && err.syscall !== undefined ? withContext(err, what) : e;
}
