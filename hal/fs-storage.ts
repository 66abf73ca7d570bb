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
 * Descriptors stay open: every file written or appended keeps its descriptor (opened
 * O_APPEND, so a truncation never leaves a hole) until it is removed, renamed,
 * replaced or the storage closes, and the directory keeps one too. A sync is then one
 * trip through the thread pool (fdatasync) instead of three (open, fsync, close) —
 * about half of a WAL sync's time on ext4, most of it on tmpfs. fdatasync, as etcd
 * uses for its WAL: it flushes the data and what is needed to read it back (the
 * size), not the times. A descriptor with a sync in flight is closed only after that
 * sync called back (its number must not be reused under it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Done, Storage } from './interfaces.ts';

const MAX_NAME = 255;
/** Writes and appends: always at the end, created when missing (write() adds O_TRUNC). */
const APPEND = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND;

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
  private fds = new Map<string, number>();
  /** Syncs in flight per descriptor; a descriptor dropped meanwhile is closed by the last one. */
  private syncing = new Map<number, number>();
  private closeWhenIdle = new Set<number>();
  private dirFd: number | undefined;
  private closed = false;

  /** Uses `dir` (created if missing, with parents). */
  constructor(dir: string) {
    if (typeof dir !== 'string' || dir.length === 0) throw new RangeError('FsStorage: dir must be a non-empty path');
    this.dir = path.resolve(dir);
    fs.mkdirSync(this.dir, { recursive: true });
    const st = fs.statSync(this.dir);
    if (!st.isDirectory()) throw new RangeError(`FsStorage: ${this.dir} is not a directory`);
  }

  private p(name: string): string {
    this.open();
    return path.join(this.dir, validateFileName(name));
  }
  private open(): void {
    if (this.closed) throw new Error(`FsStorage(${this.dir}): closed`);
  }
  private dropFd(name: string): void {
    const fd = this.fds.get(name);
    if (fd !== undefined) {
      this.fds.delete(name);
      this.release(fd);
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
    const fd = fs.openSync(p, APPEND | fs.constants.O_TRUNC);
    this.fds.set(name, fd);
    writeAll(fd, data, name);
  }

  append(name: string, data: Uint8Array): void {
    const p = this.p(name);
    let fd = this.fds.get(name);
    if (fd === undefined) {
      fd = fs.openSync(p, APPEND);
      this.fds.set(name, fd);
    }
    writeAll(fd, data, name);
  }

  truncate(name: string, size: number): void {
    const p = this.p(name);
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`FsStorage.truncate(${name}): size must be a non-negative integer, got ${size}`);
    fs.truncateSync(p, size);
  }

  rename(from: string, to: string): void {
    const a = this.p(from);
    const b = this.p(to);
    this.dropFd(from);
    this.dropFd(to);
    fs.renameSync(a, b);
  }

  remove(name: string): void {
    const p = this.p(name);
    this.dropFd(name);
    fs.rmSync(p);
  }

  sync(name: string, done: Done): void {
    let p: string;
    try {
      p = this.p(name);
    } catch (e) {
      queueMicrotask(() => done(e as Error));
      return;
    }
    const fd = this.fds.get(name);
    if (fd !== undefined) return this.syncFd(fd, false, `fsync ${name}`, done);
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
    this.syncFd(this.dirFd, true, `fsync directory ${this.dir}`, done);
  }

  private syncFd(fd: number, full: boolean, what: string, done: Done): void {
    this.syncing.set(fd, (this.syncing.get(fd) ?? 0) + 1);
    const cb = (err: NodeJS.ErrnoException | null) => {
      const left = this.syncing.get(fd)! - 1;
      if (left > 0) this.syncing.set(fd, left);
      else {
        this.syncing.delete(fd);
        if (this.closeWhenIdle.delete(fd)) fs.close(fd, () => {});
      }
      done(err ? withContext(err, what) : null);
    };
    if (full) fs.fsync(fd, cb);
    else fs.fdatasync(fd, cb);
  }

  /** Closes the descriptors (those with a sync in flight once it calls back); later calls throw. Syncs already running still call back. */
  close(): void {
    for (const fd of this.fds.values()) this.release(fd);
    this.fds.clear();
    if (this.dirFd !== undefined) this.release(this.dirFd);
    this.dirFd = undefined;
    this.closed = true;
  }
}

/** writeSync may write less than asked (rare on files, but allowed): loop, bounded by progress. */
function writeAll(fd: number, data: Uint8Array, name: string): void {
  let off = 0;
  while (off < data.length) {
    const n = fs.writeSync(fd, data, off, data.length - off);
    if (n <= 0) throw new Error(`FsStorage: write to ${name} made no progress`);
    off += n;
  }
}

function withContext(err: NodeJS.ErrnoException, what: string): Error {
  // Node's own messages start with the code already ("EIO: i/o error, fdatasync").
  const code = err.code !== undefined && !err.message.startsWith(`${err.code}:`) ? `${err.code} ` : '';
  const e = new Error(`${what}: ${code}${err.message}`);
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}
