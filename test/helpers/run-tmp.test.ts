import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeRunDir, sweepStaleRunDirs } from './run-tmp.ts';

describe('one temp directory per test run (run-tmp.ts)', () => {
  it('this worker and the processes it starts make their temp files inside the run directory', () => {
    // Set by the global setup before the workers started (test/build-setup.ts).
    expect(basename(tmpdir())).toMatch(/^quorumd-test-\d+$/);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(require("node:os").tmpdir())'], { encoding: 'utf8' });
    expect(child.stdout).toBe(tmpdir());
  });

  const base = mkdtempSync(join(dirname(tmpdir()), 'run-tmp-test-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it("removes a dead run's directory and keeps a live one's and anything else", () => {
    // A pid that is certainly gone: a child that has exited and been reaped.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    expect(Number(dead)).toBeGreaterThan(0);
    const stale = makeRunDir(base, Number(dead));
    mkdirSync(join(stale, 'quorumd-dev-abc'));
    writeFileSync(join(stale, 'quorumd-dev-abc', 'n1.log'), 'x');
    const live = makeRunDir(base, process.ppid); // vitest's main process: alive
    mkdirSync(join(base, 'quorumd-test-x'));
    mkdirSync(join(base, 'quorumd-dev-123'));
    writeFileSync(join(base, `quorumd-test-${Number(dead) + 1}0`), 'a file, not a run directory');

    expect(sweepStaleRunDirs(base)).toEqual([`quorumd-test-${dead}`]);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(join(base, 'quorumd-test-x'))).toBe(true);
    expect(existsSync(join(base, 'quorumd-dev-123'))).toBe(true);
    expect(sweepStaleRunDirs(base)).toEqual([]);
  });

  it('makes a fresh directory even where a dead run of the same pid left one', () => {
    const dir = makeRunDir(base, 4242424);
    writeFileSync(join(dir, 'old'), 'x');
    expect(makeRunDir(base, 4242424)).toBe(dir);
    expect(existsSync(join(dir, 'old'))).toBe(false);
  });
});
