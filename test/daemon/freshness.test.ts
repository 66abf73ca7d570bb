/**
 * scripts/freshness.cjs: whether dist/ covers the sources as they are now — the check
 * bin/quorumd.js makes in a git checkout before every command, without loading the
 * build itself. On a tree of its own (temporary), so that nothing here touches the
 * checkout's dist/:
 *   - fresh when the stamp covers the newest source and every output file is there;
 *   - stale when any source (in any source folder, at any depth) or build input is
 *     newer, when an output file is missing, or when there is no readable stamp.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { binLoaded } from '../helpers/loaded-modules.ts';

const root = join(import.meta.dirname, '..', '..');
const freshness = createRequire(import.meta.url)('../../scripts/freshness.cjs') as {
  SOURCE_DIRS: string[];
  BUILD_INPUTS: string[];
  ENTRIES: Record<string, string>;
  OUTPUT_FILES: string[];
  STAMP: string;
  isFresh(root: string): boolean;
};
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const T0 = new Date('2026-01-01T00:00:00Z');
function touch(file: string, at = T0): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, '');
  utimesSync(file, at, at);
}

/** A tree with every source folder (a file nested two deep in each), every build input, and a dist/ stamped at T0. */
function tree(): string {
  const d = mkdtempSync(join(tmpdir(), 'quorumd-fresh-'));
  dirs.push(d);
  for (const s of freshness.SOURCE_DIRS) touch(join(d, s, 'deep', 'er', 'x.ts'));
  for (const f of freshness.BUILD_INPUTS) touch(join(d, f));
  for (const e of freshness.OUTPUT_FILES) touch(join(d, 'dist', e));
  writeFileSync(join(d, 'dist', freshness.STAMP), JSON.stringify({ sourceMtimeMs: T0.getTime() }));
  return d;
}

describe('dist/ freshness (scripts/freshness.cjs)', () => {
  it('fresh when the stamp covers every source', () => {
    expect(freshness.isFresh(tree())).toBe(true);
  });

  it('stale when a source anywhere, or a build input, is newer than the stamp', () => {
    const later = new Date(T0.getTime() + 1000);
    for (const s of freshness.SOURCE_DIRS) {
      const d = tree();
      utimesSync(join(d, s, 'deep', 'er', 'x.ts'), later, later);
      expect(freshness.isFresh(d), s).toBe(false);
    }
    for (const f of freshness.BUILD_INPUTS) {
      const d = tree();
      utimesSync(join(d, f), later, later);
      expect(freshness.isFresh(d), f).toBe(false);
    }
  });

  it('stale when an output file or the stamp is missing, or the stamp does not parse', () => {
    // Each output on its own: dist/node.cjs and dist/config.cjs (the node's config parser) included.
    expect(freshness.OUTPUT_FILES).toEqual(expect.arrayContaining(['cli.js', 'index.js', 'node.cjs', 'config.cjs']));
    for (const f of freshness.OUTPUT_FILES) {
      const a = tree();
      rmSync(join(a, 'dist', f));
      expect(freshness.isFresh(a), f).toBe(false);
    }
    const b = tree();
    rmSync(join(b, 'dist', freshness.STAMP));
    expect(freshness.isFresh(b)).toBe(false);
    const c = tree();
    writeFileSync(join(c, 'dist', freshness.STAMP), '{"sourceMtimeMs": "soon"}');
    expect(freshness.isFresh(c)).toBe(false);
  });

  it('the bin asks it without loading the build script when dist/ is fresh', () => {
    // The build script requires bin/code-cache.js: had the bin loaded the build, that
    // file would be in the CommonJS cache.
    const r = binLoaded(['--version'], { QUORUMD_BUILD_CHECKED: '' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.commonjs).toContain(join(root, 'scripts', 'freshness.cjs'));
    expect(r.commonjs).not.toContain(join(root, 'bin', 'code-cache.js'));
  });
});
