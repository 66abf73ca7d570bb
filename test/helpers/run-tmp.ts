/**
 * One temp directory per test run, so that a run cut short leaves nothing behind for good.
 *
 * Why: the tests make ~120 temp directories (data dirs of nodes, `quorumd dev` clusters,
 * etcd and ZooKeeper members, configs) and remove them in their own hooks. When the run
 * itself is killed (SIGTERM from a CI timeout or `kill`, a worker that dies), those hooks
 * never run and the directories stay in /tmp (seen: `/tmp/i18-*` and `quorumd-dev-*` after
 * killed runs; a dev cluster's directory holds the logs and data of three nodes).
 * test/helpers/tied.ts ends the processes of such a run; this ends its files.
 *
 * How: vitest's global setup (test/build-setup.ts) makes `<tmp>/quorumd-test-<pid>`,
 * named after vitest's own process, and points TMPDIR at it before any worker starts:
 * the workers and every process they start inherit it, and `os.tmpdir()` answers it, so
 * every temp directory of the run — also those made by the daemon under test — lands
 * inside. The global teardown removes it. A run that never got to its teardown is swept
 * by the next one: a `quorumd-test-<pid>` whose process is gone (kill(pid, 0): ESRCH)
 * is removed. A directory whose pid belongs to a live process is left alone — also when
 * that process is an unrelated one that reused the number (then the directory waits for
 * a later run; nothing is removed by mistake) — and so is one another user owns.
 */
import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const RUN_DIR = /^quorumd-test-(\d+)$/;

/** Whether a process with this pid exists (another user's counts: EPERM). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the run directories in `base` left by runs whose process is gone; returns their names. */
export function sweepStaleRunDirs(base: string): string[] {
  const removed: string[] = [];
  const uid = process.getuid?.();
  for (const name of readdirSync(base)) {
    const m = RUN_DIR.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const path = join(base, name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue; // gone meanwhile
    }
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
    // Our own pid's directory can only be a dead run's (we have not made ours yet).
    if (pid !== process.pid && alive(pid)) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** Makes this run's directory in `base` (fresh: a dead run's of the same pid is removed first). */
export function makeRunDir(base: string, pid = process.pid): string {
  const path = join(base, `quorumd-test-${pid}`);
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { mode: 0o700 });
  return path;
}
