/**
 * `Storage` on real files in one directory (the board's SD card).
 *
 * Writes go through the page cache with synchronous fs calls (they return as soon as
 * the kernel has the bytes); durability comes only from `sync` (fsync of the file)
 * and `syncDir` (fsync of the directory, which makes creations, renames and
 * removals durable — ext4 and f2fs need it, see the LWN article "ext4 and data loss"
 * and the rename-then-fsync-dir pattern). Both run asynchronously on libuv's thread
 * pool so that the node keeps ticking while the card is slow.
 *
 * File names are flat: no path separators, no "." or "..", no NUL, at most 255 bytes.
 * A bad name is a RangeError naming it. Reads of missing files return undefined.
 *
 * Append descriptors are kept open per file (a WAL segment gets thousands of appends)
 * and closed on remove, rename, truncate-by-replace and close().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Done, Storage } from './interfaces.ts';

const MAX_NAME = 255;

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
      fs.closeSync(fd);
    }
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
    fs.writeFileSync(p, data);
  }

  append(name: string, data: Uint8Array): void {
    const p = this.p(name);
    let fd = this.fds.get(name);
    if (fd === undefined) {
      fd = fs.openSync(p, 'a');
      this.fds.set(name, fd);
    }
    let off = 0;
    // writeSync may write less than asked (rare on files, but allowed): loop, bounded by progress.
    while (off < data.length) {
      const n = fs.writeSync(fd, data, off, data.length - off);
      if (n <= 0) throw new Error(`FsStorage: append to ${name} made no progress`);
      off += n;
    }
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
    fs.open(p, 'r', (err, fd) => {
      if (err) return done(withContext(err, `fsync ${name}`));
      fs.fsync(fd, (err2) => {
        fs.close(fd, (err3) => done(err2 ? withContext(err2, `fsync ${name}`) : err3 ? withContext(err3, `close ${name}`) : null));
      });
    });
  }

  syncDir(done: Done): void {
    try {
      this.open();
    } catch (e) {
      queueMicrotask(() => done(e as Error));
      return;
    }
    fs.open(this.dir, 'r', (err, fd) => {
      if (err) return done(withContext(err, `fsync directory ${this.dir}`));
      fs.fsync(fd, (err2) => {
        fs.close(fd, (err3) => done(err2 ? withContext(err2, `fsync directory ${this.dir}`) : err3 ? withContext(err3, 'close directory') : null));
      });
    });
  }

  /** Closes the append descriptors; later calls throw. Syncs already running still call back. */
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
    this.closed = true;
  }
}

function withContext(err: NodeJS.ErrnoException, what: string): Error {
  const e = new Error(`${what}: ${err.code ?? ''} ${err.message}`.trim());
  (e as Error & { cause?: unknown }).cause = err;
  return e;
}
