/**
 * A node's data directory and the files of its start are the owner's alone, whatever
 * the umask: other local users are not trusted (docs/security.md). Found with
 * `umask 000; quorumd dev`: the pid file came out 0666 (any user could write a live pid
 * into it, and the next start refused as "in use"), the data directory of a
 * `quorumd start` 0777. (vitest runs this file in a forked process: process.umask may be set.)
 */
import { mkdtempSync, rmSync, statSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { lockDataDir } from '../../daemon/start.ts';

const work = mkdtempSync(join(tmpdir(), 'quorumd-modes-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the data directory under a permissive umask', () => {
  it('is created 0700 (its parents too) with a 0600 pid file under umask 000', () => {
    const old = process.umask(0);
    onTestFinished(() => void process.umask(old));
    const dir = join(work, 'a', 'node');
    const unlock = lockDataDir(dir);
    onTestFinished(unlock);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(work, 'a')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'quorumd.pid')).mode & 0o777).toBe(0o600);
  });

  it('an existing one that others or its group may write to is refused, naming it and the chmod; 0755 is fine', () => {
    for (const mode of [0o777, 0o775, 0o1777]) {
      const dir = join(work, `m${mode.toString(8)}`);
      mkdirSync(dir);
      chmodSync(dir, mode);
      expect(() => lockDataDir(dir)).toThrow(`data directory ${dir} is writable by ${mode & 0o002 ? 'other users' : 'its group'} (mode 0${(mode & 0o777).toString(8)}): they could replace the node's log, hard state and API token; make it the owner's alone: chmod 700 ${dir}`);
    }
    const ok = join(work, 'ok');
    mkdirSync(ok);
    chmodSync(ok, 0o755);
    lockDataDir(ok)();
  });
});

describe('a data file the node may not read', () => {
  // Found by hand: raft/hardstate owned by root (0600) under a node run as another user:
  // exit 70 with only "EACCES: permission denied, open '…/hardstate'".
  it('says whose files they must be', async () => {
    const { storageHint } = await import('../../daemon/start.ts');
    const { userInfo } = await import('node:os');
    const e = Object.assign(new Error("EACCES: permission denied, open '/d/raft/hardstate'"), { code: 'EACCES' });
    const me = userInfo().username;
    expect(storageHint(e)).toBe(` (the node's user, ${me}, may not read or write it: the data directory and everything in it must belong to the user quorumd runs as: chown -R ${me} on the data directory)`);
    expect(storageHint(new Error('wrapped', { cause: e }))).toBe(storageHint(e));
  });
});
