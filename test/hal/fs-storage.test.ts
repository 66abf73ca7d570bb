/** FsStorage on real files in a temp dir (real fsync), and the durable log on top of it. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
});

describe('durable log on FsStorage (real files, real fsync)', () => {
  it('keeps descriptors open (one per written file and the directory), closes them after a sync in flight, and at close()', async () => {
    const fds = () => fs.readdirSync('/proc/self/fd').length;
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
    await new Promise((r) => setTimeout(r, 20));
    expect(fds()).toBe(before + 2);
    st.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(fds()).toBe(before);
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
    fs.truncateSync(segPath, full.length - 5);
    st = new FsStorage(d);
    const b = await open(st);
    expect(b.state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(b.state.warnings.some((w) => w.includes(`torn tail in ${segmentName(1)}`))).toBe(true);
    st.close();
    const cut = fs.readFileSync(segPath);
    expect(cut.length).toBeLessThan(full.length - 5);
    cut[40]! ^= 0x10;
    fs.writeFileSync(segPath, cut);
    st = new FsStorage(d);
    await expect(open(st)).rejects.toBeInstanceOf(StorageCorruptError);
    await expect(open(st)).rejects.toThrow(new RegExp(`${segmentName(1)} at byte \\d+`));
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
