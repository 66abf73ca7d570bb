/**
 * A node started on a full disk says which file it could not write and that the disk is
 * full. Found by hand: a follower whose data directory filled up stopped (exit 70,
 * "storage I/O failed: ENOSPC", as it should), and every restart then ended with only
 * `quorumd: ENOSPC: no space left on device, write` — a write to a descriptor names no
 * file. Here the full disk is /dev/full (every write to it fails with ENOSPC) behind the
 * start counter's temporary file, the first file a start writes after its lock.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { devConfig } from '../../daemon/dev.ts';
import { ensureTokenFile } from '../../daemon/config/secrets.ts';
import { lockDataDir } from '../../daemon/start.ts';
import { freeBasePort } from '../helpers/ports.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');
const work = mkdtempSync(join(tmpdir(), 'quorumd-disk-full-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('quorumd start on a full disk', () => {
  it.skipIf(!existsSync('/dev/full'))('names the file it could not write and says the disk is full; leaves no lock behind', async () => {
    writeFileSync(join(work, 'cluster.key'), 'cd'.repeat(32) + '\n');
    chmodSync(join(work, 'cluster.key'), 0o600);
    ensureTokenFile(join(work, 'api.token'), 'test token');
    // Its broker is not there (port 1): the start fails before it would need one.
    writeFileSync(join(work, 'n1.yaml'), devConfig({ k: 1, n: 1, keyFile: join(work, 'cluster.key'), tokenFile: join(work, 'api.token'), brokerUrl: 'mqtt://127.0.0.1:1', basePort: await freeBasePort(1), dir: work, jobs: [] }));
    const data = join(work, 'n1');
    mkdirSync(data);
    symlinkSync('/dev/full', join(data, 'start.counter.tmp'));
    const r = spawnSync(process.execPath, [bin, 'start', '--config', join(work, 'n1.yaml')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, `killed by the test's bound: ${r.stderr}`).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot write ${join(data, 'start.counter')}: ENOSPC`);
    expect(r.stderr).toMatch(/the file system of the data directory is full: free space on it, then start the node again/);
    expect(existsSync(join(data, 'quorumd.pid')), 'the lock of the failed start').toBe(false);
  }, 90_000);

  // A read-only file system needs a mount: only where this process may mount (root).
  const ro = join(work, 'ro');
  mkdirSync(ro, { recursive: true });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', ro], { encoding: 'utf8', timeout: 10_000 }).status === 0;
  afterAll(() => {
    if (mounted) spawnSync('umount', [ro], { timeout: 10_000 });
  });
  it.skipIf(!mounted)('a data directory that cannot be created on a read-only file system: EROFS and the directory, not ENOENT', () => {
    // Node's recursive mkdir says ENOENT here; the operator needs to read "read-only".
    const cfg = join(work, 'ro.yaml');
    writeFileSync(cfg, readFileSync(join(work, 'n1.yaml'), 'utf8').replace(/^( *dataDir: ).*$/m, `$1${JSON.stringify(join(ro, 'deep', 'n1'))}`));
    const r = spawnSync(process.execPath, [bin, 'start', '--config', cfg], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, `killed by the test's bound: ${r.stderr}`).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`data directory ${join(ro, 'deep', 'n1')}: cannot create it: EROFS: read-only file system, mkdir '${join(ro, 'deep')}'`);
    expect(r.stderr).toContain('(the file system of the data directory is read-only: mounted so, or remounted read-only by the kernel after write errors, see dmesg)');
  }, 90_000);
});

describe('the lock of a node that died on a file system now read-only', () => {
  // Found by hand: a follower whose ext4 data directory the kernel remounted read-only
  // (errors=remount-ro) stopped with EROFS, as it should; every restart then said only
  // "could not take the lock …/quorumd.pid": the stale pid file could not be removed.
  const dir = join(work, 'ro-lock');
  mkdirSync(dir, { recursive: true });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir], { encoding: 'utf8', timeout: 10_000 }).status === 0;
  afterAll(() => {
    if (mounted) spawnSync('umount', [dir], { timeout: 10_000 });
  });
  it.skipIf(!mounted)('says EROFS, the lock file and the pid that left it', () => {
    // A pid that no longer runs: a child that has exited.
    const gone = spawnSync(process.execPath, ['-e', '0'], { timeout: 30_000 }).pid!;
    writeFileSync(join(dir, 'quorumd.pid'), `${gone}\n`);
    expect(spawnSync('mount', ['-o', 'remount,ro', dir], { encoding: 'utf8', timeout: 10_000 }).status).toBe(0);
    let msg = '';
    try {
      lockDataDir(dir)();
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toBe(`data directory ${dir}: cannot remove the lock file ${join(dir, 'quorumd.pid')} left by process ${gone}, which is no longer running: EROFS: read-only file system, unlink '${join(dir, 'quorumd.pid')}' (the file system of the data directory is read-only: mounted so, or remounted read-only by the kernel after write errors, see dmesg)`);
  });
});
