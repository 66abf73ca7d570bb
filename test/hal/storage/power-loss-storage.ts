/**
 * An in-memory `Storage` with the power-loss semantics of hal/interfaces.ts, for
 * tests: writes change the volatile view at once; `sync(name)` makes the content of
 * one file durable, `syncDir()` the directory entries; on `powerCut()` everything
 * unsynced is lost and the last unsynced write of a file is torn at a seeded random
 * byte (optionally followed by zeros or garbage, as a real file system may leave).
 *
 * I/O completions run either at once (`auto: true`) or when the test calls
 * `step()`/`runAll()`, so that a test can hold a sync "in flight" and cut power
 * with callbacks outstanding.
 */
import type { Done, Storage } from '../../../hal/interfaces.ts';
import { Rng } from '../../../src/rng.ts';

interface Inode {
  id: number;
  data: Uint8Array;
  durable: Uint8Array;
  /** The last change since the last sync, for tearing. */
  last?: { kind: 'append'; offset: number; bytes: Uint8Array } | { kind: 'write'; bytes: Uint8Array } | { kind: 'other' };
}

/**
 * What a power cut leaves of a file's last unsynced append: a prefix of it followed by
 * nothing ('cut'), by zeros or by garbage; or 'sectors': the file was preallocated
 * (zero-filled space, hal/fs-storage.ts), so its size hides nothing and the disk kept
 * any subset of the append's 512-byte sectors (in file offsets), the others still zero,
 * followed by more zeros.
 */
export type Tail = 'cut' | 'zeros' | 'garbage' | 'sectors';

export class PowerLossStorage implements Storage {
  private dir = new Map<string, Inode>();
  private durableDir = new Map<string, Inode>();
  private queue: Array<() => void> = [];
  private nextId = 1;
  auto: boolean;
  /** Count of sync() and syncDir() calls. */
  syncs = 0;
  dirSyncs = 0;
  bytes = 0;
  /** When set, sync(name) fails for names it returns true on (I/O error injection). */
  failSync: ((name: string) => boolean) | undefined;
  /**
   * When set, write(name) and append(name) throw ENOSPC for names it returns true on, as
   * a full disk does: a write has created (and emptied) the file first, an append changes nothing.
   */
  failWrite: ((name: string) => boolean) | undefined;

  constructor(opts: { auto?: boolean } = {}) {
    this.auto = opts.auto ?? true;
  }

  list(): string[] {
    return [...this.dir.keys()];
  }
  read(name: string): Uint8Array | undefined {
    const f = this.dir.get(name);
    return f ? f.data.slice() : undefined;
  }
  write(name: string, data: Uint8Array): void {
    let f = this.dir.get(name);
    if (!f) {
      f = { id: this.nextId++, data: new Uint8Array(0), durable: new Uint8Array(0) };
      this.dir.set(name, f);
    }
    if (this.failWrite?.(name)) {
      f.data = new Uint8Array(0);
      f.last = { kind: 'other' };
      throw noSpace(`write ${name}`);
    }
    f.data = data.slice();
    f.last = f.last ? { kind: 'other' } : { kind: 'write', bytes: data.slice() };
    this.bytes += data.length;
  }
  append(name: string, data: Uint8Array): void {
    if (this.failWrite?.(name)) throw noSpace(`append to ${name}`);
    let f = this.dir.get(name);
    if (!f) {
      f = { id: this.nextId++, data: new Uint8Array(0), durable: new Uint8Array(0) };
      this.dir.set(name, f);
    }
    const out = new Uint8Array(f.data.length + data.length);
    out.set(f.data, 0);
    out.set(data, f.data.length);
    f.last = f.last ? { kind: 'other' } : { kind: 'append', offset: f.data.length, bytes: data.slice() };
    f.data = out;
    this.bytes += data.length;
  }
  truncate(name: string, size: number): void {
    const f = this.must(name);
    f.data = f.data.slice(0, size);
    f.last = { kind: 'other' };
  }
  rename(from: string, to: string): void {
    const f = this.must(from);
    this.dir.delete(from);
    this.dir.set(to, f);
  }
  remove(name: string): void {
    this.must(name);
    this.dir.delete(name);
  }
  sync(name: string, done: Done): void {
    this.syncs++;
    const f = this.dir.get(name);
    if (!f) return this.later(() => done(new Error(`sync ${name}: no such file`)));
    if (this.failSync?.(name)) return this.later(() => done(new Error(`sync ${name}: EIO (injected)`)));
    const content = f.data.slice();
    const lastAtCall = f.last;
    this.later(() => {
      f.durable = content;
      if (f.last === lastAtCall) delete f.last;
      else f.last = { kind: 'other' };
      done(null);
    });
  }
  syncDir(done: Done): void {
    this.dirSyncs++;
    const snapshot = new Map(this.dir);
    this.later(() => {
      this.durableDir = snapshot;
      done(null);
    });
  }

  /** Outstanding I/O completions. */
  get inFlight(): number {
    return this.queue.length;
  }
  /** Completes the oldest outstanding I/O; false if none. */
  step(): boolean {
    const f = this.queue.shift();
    if (!f) return false;
    f();
    return true;
  }
  /** Completes I/O until none is left (bounded). */
  runAll(limit = 100_000): void {
    for (let i = 0; i < limit && this.step(); i++);
    if (this.queue.length) throw new Error('runAll: I/O did not settle');
  }

  /**
   * Power loss: outstanding completions never fire; the directory reverts to its last
   * synced entries; each file to its synced content, plus — if its last unsynced
   * change was a single write or append — a random prefix of that change, followed by
   * nothing, zeros or garbage up to the change's length.
   */
  powerCut(rng: Rng, tail: Tail = 'cut'): void {
    this.queue = [];
    const seen = new Set<Inode>();
    for (const f of this.durableDir.values()) {
      if (seen.has(f)) continue;
      seen.add(f);
      let content = f.durable;
      const l = f.last;
      if (l && l.kind === 'append' && l.offset === f.durable.length && rng.chance(0.7)) {
        content = concat(f.durable, tail === 'sectors' ? this.sectors(rng, l.offset, l.bytes) : this.tear(rng, l.bytes, tail));
      } else if (l && l.kind === 'write' && rng.chance(0.5)) {
        content = this.tear(rng, l.bytes, tail);
      }
      f.data = content.slice();
      f.durable = content.slice();
      delete f.last;
    }
    this.dir = new Map(this.durableDir);
  }

  /** The sectors of an append at file offset `at` that reached the disk, in any order; then zeros. */
  private sectors(rng: Rng, at: number, bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.length + rng.int(0, 1024));
    for (let o = 0; o < bytes.length; ) {
      const next = Math.min(bytes.length, (Math.floor((at + o) / 512) + 1) * 512 - at);
      if (rng.chance(0.5)) out.set(bytes.subarray(o, next), o);
      o = next;
    }
    return out;
  }

  private tear(rng: Rng, bytes: Uint8Array, tail: Tail): Uint8Array {
    const k = rng.int(0, bytes.length);
    const out = new Uint8Array(tail === 'cut' ? k : bytes.length);
    out.set(bytes.subarray(0, k), 0);
    if (tail === 'garbage') for (let i = k; i < out.length; i++) out[i] = rng.int(0, 255);
    // 'sectors' on a whole-file write (a new file: its size is not durable before its data)
    // is a prefix followed by zeros.
    return out;
  }

  /** Test helper: flips one bit of a file, in both the volatile and the durable view. */
  flipBit(name: string, byte: number, bit = 0): void {
    const f = this.must(name);
    f.data[byte]! ^= 1 << bit;
    if (byte < f.durable.length) f.durable[byte]! ^= 1 << bit;
  }
  /** Test helper: replaces a file's content everywhere (volatile and durable). */
  setContent(name: string, data: Uint8Array): void {
    const f = this.must(name);
    f.data = data.slice();
    f.durable = data.slice();
    delete f.last;
  }
  size(name: string): number {
    return this.must(name).data.length;
  }

  private must(name: string): Inode {
    const f = this.dir.get(name);
    if (!f) throw new Error(`PowerLossStorage: no such file ${name}`);
    return f;
  }
  private later(fn: () => void): void {
    if (this.auto) fn();
    else this.queue.push(fn);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function noSpace(what: string): Error {
  return Object.assign(new Error(`${what}: ENOSPC: no space left on device (injected)`), { code: 'ENOSPC' });
}
