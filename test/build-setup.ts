/**
 * vitest globalSetup: the tests that start real processes run `bin/quorumd.js`, which
 * runs the compiled daemon in dist/. Build it once here when a source changed, rather
 * than in whichever test process spawns a node first (several at once would each build).
 *
 * And one temp directory for the whole run (test/helpers/run-tmp.ts): TMPDIR points
 * into it before the workers start, the teardown removes it, and the next run removes
 * the directory of a run that was killed before its teardown.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ensureBuilt } from '../scripts/build.mjs';
import { makeRunDir, sweepStaleRunDirs } from './helpers/run-tmp.ts';

export async function setup(): Promise<() => void> {
  await ensureBuilt();
  const base = tmpdir();
  sweepStaleRunDirs(base);
  const dir = makeRunDir(base);
  process.env.TMPDIR = dir;
  return () => {
    process.env.TMPDIR = base;
    rmSync(dir, { recursive: true, force: true });
  };
}
