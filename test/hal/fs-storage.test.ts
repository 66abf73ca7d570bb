/** FsStorage on real files in a temp dir (real fsync), and the durable log on top of it. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { FsStorage, validateFileName } from '../../hal/fs-storage.ts';
import type { DurableLog, DurableLogOptions, Opened, PersistBatch } from '../../hal/storage/index.ts';
import { StorageCorruptError, openDurableLog } from '../../hal/storage/index.ts';
import { segmentName } from '../../hal/storage/format.ts';
import { ent, ents, show } from './storage/helpers.ts';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quorumd-fs-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function open(st: FsStorage, opts: DurableLogOptions = {}): Promise<Opened> {
  return new Promise((res, rej) => openDurableLog(st, opts, (err, v) => (err ? rej(err) : res(v!))));
}
function persist(log: DurableLog, b: PersistBatch): Promise<void> {
  return new Promise((res, rej) => log.persist(b, (err) => (err ? rej(err) : res())));
}
function cb(fn: (done: (err: Error | null) => void) => void): Promise<void> {
  return new Promise((res, rej) => fn((err) => (err ? rej(err) : res())));
}

/** Where each record of a WAL segment ends (the framing: u32 length, CRC, then length bytes), up to the first zero length. */
function recordEnds(buf: Uint8Array): number[] {
  const ends: number[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let o = 0; o + 8 <= buf.length && dv.getUint32(o, true) !== 0; ) {
    o += 8 + dv.getUint32(o, true);
    ends.push(o);
  }
  return ends;
}

describe('FsStorage', () => {
  it('rejects bad file names with a clear error', () => {
    const st = new FsStorage(tmpDir());
    for (const bad of ['', '.', '..', 'a/b', '../x', 'a\\b', 'x\0y', 'n'.repeat(300)]) {
      expect(() => st.write(bad, new Uint8Array(1)), JSON.stringify(bad)).toThrow(RangeError);
      expect(() => st.read(bad)).toThrow(/storage file name/);
    }
    expect(() => validateFileName(7)).toThrow(/must be a string, got number/);
    expect(validateFileName('wal-0001.log')).toBe('wal-0001.log');
  });

  it('write, append, read, truncate, rename, remove, list on real files; sync and syncDir call back', async () => {
    const d = tmpDir();
    const st = new FsStorage(d);
    expect(st.read('nope')).toBeUndefined();
    st.write('a', Uint8Array.of(1, 2, 3));
    st.append('a', Uint8Array.of(4, 5));
    st.append('b', Uint8Array.of(9)); // creates
    expect([...st.read('a')!]).toEqual([1, 2, 3, 4, 5]);
    st.truncate('a', 2);
    st.append('a', Uint8Array.of(7)); // the kept append fd still appends at the new end
    expect([...st.read('a')!]).toEqual([1, 2, 7]);
    await cb((done) => st.sync('a', done));
    st.rename('a', 'c');
    await cb((done) => st.syncDir(done));
    expect(st.list().sort()).toEqual(['b', 'c']);
    expect([...fs.readFileSync(path.join(d, 'c'))]).toEqual([1, 2, 7]);
    st.remove('b');
    expect(st.list()).toEqual(['c']);
    await expect(cb((done) => st.sync('missing', done))).rejects.toThrow(/fsync missing: ENOENT/);
    expect(() => st.truncate('c', -1)).toThrow(/size must be a non-negative integer/);
    st.close();
    expect(() => st.list()).toThrow(/closed/);
  });

  it('preallocates WAL segments only, in steps of preallocateBytes, and writes each append where the last one ended', () => {
    const d = tmpDir();
    expect(() => new FsStorage(d, { preallocateBytes: -1 })).toThrow(/preallocateBytes must be a non-negative integer, got -1/);
    const st = new FsStorage(d, { preallocateBytes: 4096 });
    const seg = segmentName(1);
    const rec = (n: number, v: number) => new Uint8Array(n).fill(v);
    st.write(seg, rec(100, 1)); // a new segment: exactly what was written
    expect(fs.statSync(path.join(d, seg)).size).toBe(100);
    st.append(seg, rec(50, 2)); // past the written end: zeros up to the next step past it
    expect(fs.statSync(path.join(d, seg)).size).toBe(4096);
    st.append(seg, rec(4000, 3)); // 150 + 4000 passes 4096: the next step
    expect(fs.statSync(path.join(d, seg)).size).toBe(8192);
    const got = st.read(seg)!;
    expect(got.subarray(0, 100).every((b) => b === 1)).toBe(true);
    expect(got.subarray(100, 150).every((b) => b === 2)).toBe(true);
    expect(got.subarray(150, 4150).every((b) => b === 3)).toBe(true);
    expect(got.subarray(4150).every((b) => b === 0)).toBe(true);
    // Truncated (recovery cuts the zeros): the next append starts at the new size, zeros after it again.
    st.truncate(seg, 150);
    st.append(seg, rec(10, 4));
    const again = st.read(seg)!;
    expect(again.length).toBe(4096);
    expect(again.subarray(150, 160).every((b) => b === 4)).toBe(true);
    expect(again.subarray(160).every((b) => b === 0)).toBe(true);
    // Other files (hard state, snapshots, their .tmp) are never padded.
    st.write('hardstate.tmp', rec(10, 5));
    st.append('hardstate.tmp', rec(10, 6));
    expect(fs.statSync(path.join(d, 'hardstate.tmp')).size).toBe(20);
    st.close();
    // Off: a segment grows by what is appended.
    const plain = new FsStorage(tmpDir(), { preallocateBytes: 0 });
    plain.write(seg, rec(100, 1));
    plain.append(seg, rec(50, 2));
    expect(plain.read(seg)!.length).toBe(150);
    plain.close();
  });
});

describe('FsStorage on a nearly full file system', () => {
  // A small tmpfs needs a mount: only where this process may mount (root).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorumd-fs-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=96k,mode=0700', 'tmpfs', dir], { encoding: 'utf8', timeout: 10_000 }).status === 0;
  afterAll(() => {
    if (mounted) spawnSync('umount', [dir], { timeout: 10_000 });
    fs.rmSync(dir, { recursive: true, force: true });
  });
  it.skipIf(!mounted)('no room for the preallocation: appends go on without it until the records themselves do not fit', () => {
    const st = new FsStorage(dir, { preallocateBytes: 64 * 1024 });
    // Closed whatever happens: an open descriptor would keep the tmpfs from unmounting.
    onTestFinished(() => st.close());
    const seg = segmentName(1);
    st.write(seg, new Uint8Array(100).fill(1));
    st.append(seg, new Uint8Array(100).fill(2)); // zeros to 64 KiB: fits
    expect(fs.statSync(path.join(dir, seg)).size).toBe(64 * 1024);
    const rec = new Uint8Array(1000).fill(3);
    let appended = 0;
    let error: unknown;
    for (let i = 0; i < 200; i++) {
      try {
        st.append(seg, rec); // the next 64 KiB of zeros would not fit in 96 KiB
        appended++;
      } catch (e) {
        error = e;
        break;
      }
    }
    // Past the first step (where the zeros no longer fit) the records went on, plainly, until the disk was full.
    expect(appended).toBeGreaterThan(70);
    expect((error as NodeJS.ErrnoException | undefined)?.code).toBe('ENOSPC');
    const got = st.read(seg)!;
    expect(got.subarray(200, 200 + 70 * 1000).every((b) => b === 3)).toBe(true);
  });
});

describe('durable log on FsStorage (real files, real fsync)', () => {
  it('keeps descriptors open (one per written file and the directory), closes them after a sync in flight, and at close()', async () => {
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    // A descriptor given up after a sync is closed asynchronously: polled for (bounded),
    // not slept for (20 ms was not always enough with busy loops beside the suite).
    const fdsBecome = async (n: number) => {
      const end = performance.now() + 10_000;
      while (fds() !== n && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
      expect(fds()).toBe(n);
    };
    const before = fds();
    const st = new FsStorage(tmpDir());
    st.write('a', new Uint8Array([1, 2]));
    st.append('b', new Uint8Array([3]));
    st.append('b', new Uint8Array([4]));
    expect(fds()).toBe(before + 2);
    await cb((d) => st.sync('a', d));
    await cb((d) => st.syncDir(d));
    expect(fds()).toBe(before + 3);
    // Truncating a file kept open for appends leaves no hole: O_APPEND writes at the new end.
    st.truncate('b', 1);
    st.append('b', new Uint8Array([9]));
    expect([...st.read('b')!]).toEqual([3, 9]);
    // Removed while its sync runs: the sync still calls back, the descriptor is closed after it.
    const synced = cb((d) => st.sync('a', d));
    st.remove('a');
    await synced;
    await fdsBecome(before + 2);
    st.close();
    await fdsBecome(before);
  });

  it('round trip, suffix overwrite, group commit', async () => {
    const d = tmpDir();
    const st = new FsStorage(d);
    const a = await open(st);
    expect(a.state.bootId).toBe(1);
    await persist(a.log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 10, 1) });
    const syncs0 = a.log.stats().syncs;
    // 40 persists issued at once: the first flush starts, the other 39 wait and share one more.
    const all: Promise<void>[] = [];
    for (let i = 11; i <= 50; i++) all.push(persist(a.log, { hardState: { term: 1, vote: 1, commit: i - 1 }, entries: [ent(i, 1)] }));
    await Promise.all(all);
    expect(a.log.stats().syncs - syncs0).toBeLessThanOrEqual(2);
    expect(a.log.stats().groups).toBeLessThanOrEqual(4); // start + first persist + ≤2 groups
    await persist(a.log, { hardState: { term: 2, vote: 2, commit: 49 }, entries: ents(50, 52, 2) });
    st.close();
    const st2 = new FsStorage(d);
    const b = await open(st2);
    expect(b.state.bootId).toBe(2);
    expect(b.state.hardState).toEqual({ term: 2, vote: 2, commit: 49 });
    expect(show(b.state.entries)).toEqual(show([...ents(1, 10, 1), ...Array.from({ length: 39 }, (_, k) => ent(11 + k, 1)), ...ents(50, 52, 2)]));
    st2.close();
  });

  it('a torn tail on disk is cut and reported; a flipped bit in the middle is fatal with file and offset', async () => {
    const d = tmpDir();
    let st = new FsStorage(d);
    const a = await open(st);
    for (let i = 1; i <= 5; i++) await persist(a.log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: [ent(i, 1, 'abcdefgh')] });
    st.close();
    const segPath = path.join(d, segmentName(1));
    const full = fs.readFileSync(segPath);
    // The file is preallocated: records, then zeros to the next MiB.
    const ends = recordEnds(full);
    const end = ends[ends.length - 1]!;
    expect(full.length).toBe(1 << 20);
    expect(full.subarray(end).every((b) => b === 0)).toBe(true);
    // A write torn at the end: its last 5 bytes never reached the disk (zeros, as in preallocated space).
    full.fill(0, end - 5, end);
    fs.writeFileSync(segPath, full);
    st = new FsStorage(d);
    const b = await open(st);
    expect(b.state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(b.state.warnings.some((w) => w.includes(`torn tail in ${segmentName(1)}`))).toBe(true);
    st.close();
    const cut = fs.readFileSync(segPath);
    expect(cut.length).toBe(ends[ends.length - 2]);
    cut[40]! ^= 0x10;
    fs.writeFileSync(segPath, cut);
    st = new FsStorage(d);
    await expect(open(st)).rejects.toBeInstanceOf(StorageCorruptError);
    await expect(open(st)).rejects.toThrow(new RegExp(`${segmentName(1)} at byte \\d+`));
    st.close();
  });

  it('preallocated segments: every restart continues right after the last record, with no warning; zeros ending an earlier segment are its end', async () => {
    const d = tmpDir();
    let st = new FsStorage(d, { preallocateBytes: 4096 });
    let a = await open(st, { segmentBytes: 1500 });
    let n = 0;
    for (let boot = 0; boot < 3; boot++) {
      for (let i = 0; i < 20; i++) {
        n++;
        await persist(a.log, { hardState: { term: 1, vote: 1, commit: n - 1 }, entries: [ent(n, 1, `value ${n} `.repeat(8))] });
      }
      st.close();
      const segs = fs.readdirSync(d).filter((f) => f.startsWith('wal-')).sort();
      expect(segs.length).toBeGreaterThan(1 + boot);
      // Earlier segments end in zeros (appended to, then rolled away from); only a
      // segment that got nothing after the roll that created it has its exact size.
      const padded = segs.filter((f) => {
        const buf = fs.readFileSync(path.join(d, f));
        return buf.length % 4096 === 0 && buf[buf.length - 1] === 0;
      });
      expect(padded.length).toBeGreaterThanOrEqual(segs.length - 1);
      expect(padded).toContain(segs[0]);
      st = new FsStorage(d, { preallocateBytes: 4096 });
      a = await open(st, { segmentBytes: 1500 });
      expect(a.state.warnings).toEqual([]);
      expect(a.state.entries.map((e) => e.index)).toEqual(Array.from({ length: n }, (_, k) => k + 1));
    }
    st.close();
  });

  it('snapshot install writes a file, removes WAL segments below it, and recovers', async () => {
    const d = tmpDir();
    let st = new FsStorage(d);
    const a = await open(st, { segmentBytes: 300 });
    for (let i = 1; i <= 30; i++) await persist(a.log, { hardState: { term: 1, vote: 1, commit: i - 1 }, entries: [ent(i, 1, 'z'.repeat(50))] });
    const before = st.list().filter((n) => n.startsWith('wal-')).length;
    expect(before).toBeGreaterThan(5);
    await persist(a.log, { snapshot: { index: 25, term: 1, config: { voters: [1, 2, 3] }, data: Uint8Array.of(42) } });
    const after = st.list().filter((n) => n.startsWith('wal-')).length;
    expect(after).toBeLessThan(before);
    expect(st.list().filter((n) => n.startsWith('snap-'))).toEqual(['snap-0000000000000019.snap']);
    await persist(a.log, { snapshot: { index: 28, term: 1, config: { voters: [1, 2] }, data: Uint8Array.of(43) } });
    expect(st.list().filter((n) => n.startsWith('snap-'))).toEqual(['snap-000000000000001c.snap']);
    st.close();
    st = new FsStorage(d);
    const b = await open(st, { segmentBytes: 300 });
    expect(b.state.snapshot?.index).toBe(28);
    expect(b.state.snapshot?.config).toEqual({ voters: [1, 2] });
    expect([...b.state.snapshot!.data]).toEqual([43]);
    expect(b.state.entries.map((e) => e.index)).toEqual([29, 30]);
    expect(b.state.hardState.commit).toBe(29);
    expect(b.state.warnings).toEqual([]);
    st.close();
  });
});

describe('FsStorage: a failed write names the file', () => {
  // /dev/full fails every write with ENOSPC: a name linked to it is a file on a full disk.
  it.skipIf(!fs.existsSync('/dev/full'))('write and append say which file, keep the code, and the durable log passes it on', async () => {
    const d = tmpDir();
    fs.symlinkSync('/dev/full', path.join(d, 'snap-0000000000000006.snap.tmp'));
    fs.symlinkSync('/dev/full', path.join(d, 'other'));
    const st = new FsStorage(d);
    onTestFinished(() => st.close());
    let err: NodeJS.ErrnoException | undefined;
    try {
      st.append('other', new Uint8Array(10));
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    // Node's own message names no file: "ENOSPC: no space left on device, write".
    expect(err?.message).toBe('append to other: ENOSPC: no space left on device, write');
    expect(err?.code).toBe('ENOSPC');
    // Through the durable log: its fatal error is what an operator reads in the node's log.
    const a = await open(st);
    await persist(a.log, { hardState: { term: 1, vote: 1, commit: 0 }, entries: ents(1, 10, 1) });
    const e2 = await persist(a.log, { snapshot: { index: 6, term: 1, config: { voters: [1] }, data: new Uint8Array(10) }, compaction: true }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(e2?.message).toBe('storage I/O failed: write snap-0000000000000006.snap.tmp: ENOSPC: no space left on device, write');
  });
});

describe('FsStorage: the files are the owner\'s alone, whatever the umask', () => {
  // Found with `umask 000; quorumd dev`: the raft directory came out 0777 and the hard
  // state and WAL 0666, so that any local user could read every KV value or rewrite the
  // vote. (vitest runs this file in a forked process: process.umask may be set.)
  it('creates its directory 0700 and its files 0600 under umask 000', () => {
    const old = process.umask(0);
    onTestFinished(() => void process.umask(old));
    const d = path.join(tmpDir(), 'deep', 'raft');
    const st = new FsStorage(d);
    onTestFinished(() => st.close());
    st.write('hardstate.tmp', new Uint8Array(4));
    st.rename('hardstate.tmp', 'hardstate');
    st.append(segmentName(1), new Uint8Array(4));
    expect(fs.statSync(d).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.dirname(d)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(d, 'hardstate')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(d, segmentName(1))).mode & 0o777).toBe(0o600);
  });

  it('refuses a directory others or its group may write to, naming it and the chmod', () => {
    for (const mode of [0o777, 0o770, 0o1777]) {
      const d = tmpDir();
      fs.chmodSync(d, mode);
      expect(() => new FsStorage(d)).toThrow(new RegExp(`^FsStorage: ${d} is writable by (other users|its group) \\(mode 0${(mode & 0o777).toString(8)}\\): .*chmod 700 ${d}$`));
    }
    const ok = tmpDir();
    fs.chmodSync(ok, 0o755); // systemd's StateDirectory= default: others may list, not write
    new FsStorage(ok).close();
  });

  it('makes files an earlier start left readable by others 0600, and says which', () => {
    const d = tmpDir();
    fs.writeFileSync(path.join(d, 'hardstate'), 'x', { mode: 0o666 });
    fs.chmodSync(path.join(d, 'hardstate'), 0o666);
    fs.writeFileSync(path.join(d, segmentName(1)), 'y', { mode: 0o600 });
    const st = new FsStorage(d);
    st.close();
    expect(fs.statSync(path.join(d, 'hardstate')).mode & 0o777).toBe(0o600);
    expect(st.tightened).toEqual([{ name: 'hardstate', mode: 0o666 }]);
  });
});
