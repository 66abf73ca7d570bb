/**
 * bin/stack-maps.js: a stack trace through the compiled daemon (dist/) names the
 * TypeScript file and line, with the maps read only when the stack is formatted. Run in
 * a child process (plain node, the built dist/ that vitest's globalSetup makes), so
 * that the test runner's own stack handling is not in the way.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire, SourceMap } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function stackOfFailedStart(install: boolean): string {
  const code = `
    const { installLazySourceMaps } = await import(${JSON.stringify(join(root, 'bin', 'stack-maps.js'))});
    if (${install}) installLazySourceMaps(new URL('../dist/', ${JSON.stringify(`file://${join(root, 'bin')}/`)}));
    const { startNode } = await import(${JSON.stringify(join(root, 'dist', 'index.js'))});
    try { await startNode('/nonexistent-quorumd-dir/n.yaml'); } catch (e) { console.log(e.stack); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe('lazy source maps for the compiled daemon', () => {
  it('frames in dist/ are mapped to the TypeScript file and line', () => {
    const stack = stackOfFailedStart(true);
    expect(stack).toMatch(/^ConfigError: .*cannot read the file/);
    const m = /at loadConfigFile \((.*\/daemon\/config\/load\.ts):(\d+):(\d+)\)/.exec(stack);
    expect(m, stack).not.toBeNull();
    // The line it names is the call of readConfigText in loadConfigFile.
    expect(readFileSync(m![1]!, 'utf8').split('\n')[Number(m![2]) - 1]).toContain('readConfigText(');
    expect(stack).toMatch(/at startNode \(.*\/daemon\/start\.ts:\d+:\d+\)/);
    expect(stack).not.toMatch(/dist\/chunk-/);
  });

  it('without it the same stack names dist/ chunks (the check above can fail)', () => {
    expect(stackOfFailedStart(false)).toMatch(/dist\/chunk-[A-Z0-9]+\.js:\d+:\d+/);
  });

  it('a map without an index (mapWithoutIndex, checkpoints built in memory) agrees with node:module SourceMap on every built map', () => {
    const { mapWithoutIndex } = createRequire(import.meta.url)(join(root, 'bin', 'stack-maps.js')) as {
      mapWithoutIndex: (json: unknown) => { findEntry(line: number, column: number): { originalSource: string; originalLine: number; originalColumn: number } | undefined };
    };
    const dist = join(root, 'dist');
    const maps = readdirSync(dist).filter((f) => f.endsWith('.js.map') || f.endsWith('.cjs.map'));
    expect(maps).toContain('node.cjs.map');
    let compared = 0;
    for (const f of maps) {
      const json = JSON.parse(readFileSync(join(dist, f), 'utf8')) as { mappings: string };
      const generated = readFileSync(join(dist, f.slice(0, -'.map'.length)), 'utf8').split('\n');
      const lazy = mapWithoutIndex(json);
      const node = new SourceMap(json as never);
      // Every line, from the last to the first, at a spread of columns including 0 and the line's end.
      for (let line = generated.length - 1; line >= 0; line--) {
        const len = generated[line]!.length;
        for (const col of [0, 1, Math.floor(len / 3), Math.floor(len / 2), len - 1, len]) {
          if (col < 0) continue;
          const a = lazy.findEntry(line, col);
          const b = node.findEntry(line, col) as { generatedLine?: number; originalSource?: string; originalLine?: number; originalColumn?: number };
          // node's findEntry may answer with a segment of an earlier line; a frame's column
          // is mapped only by a segment of its own line.
          const expected = b.generatedLine === line && b.originalSource !== undefined ? { originalSource: b.originalSource, originalLine: b.originalLine, originalColumn: b.originalColumn } : undefined;
          expect(a, `${f} ${line}:${col}`).toEqual(expected);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });

  type Entry = { originalSource: string; originalLine: number; originalColumn: number } | undefined;
  const stackMaps = createRequire(import.meta.url)(join(root, 'bin', 'stack-maps.js')) as {
    indexedMapOf: (file: string) => { findEntry(line: number, column: number): Entry } | null;
  };

  it('the index the build writes beside each map (indexedMapOf) gives what node:module SourceMap gives, at 200 columns of every line', () => {
    const dist = join(root, 'dist');
    const maps = readdirSync(dist).filter((f) => f.endsWith('.js.map') || f.endsWith('.cjs.map'));
    let compared = 0;
    let found = 0;
    for (const f of maps) {
      const file = join(dist, f.slice(0, -'.map'.length));
      const indexed = stackMaps.indexedMapOf(file);
      expect(indexed, `${f}: no index beside it`).not.toBeNull();
      const node = new SourceMap(JSON.parse(readFileSync(join(dist, f), 'utf8')) as never);
      const generated = readFileSync(file, 'utf8').split('\n');
      for (let line = 0; line < generated.length; line++) {
        const len = generated[line]!.length;
        const cols = new Set([0, len]);
        for (let k = 1; k < 200 && k <= len; k++) cols.add(Math.floor((len * k) / 200));
        for (const col of cols) {
          const a = indexed!.findEntry(line, col);
          const b = node.findEntry(line, col) as { generatedLine?: number; originalSource?: string; originalLine?: number; originalColumn?: number };
          const expected = b.generatedLine === line && b.originalSource !== undefined ? { originalSource: b.originalSource, originalLine: b.originalLine, originalColumn: b.originalColumn } : undefined;
          expect(a, `${f} ${line}:${col}`).toEqual(expected);
          compared++;
          if (a !== undefined) found++;
        }
      }
    }
    expect(compared).toBeGreaterThan(10_000);
    expect(found).toBeGreaterThan(compared / 2);
  });

  it('an index that does not belong to the map beside it (another build) is not used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-map-index-'));
    try {
      const file = join(dir, 'node.cjs');
      copyFileSync(join(root, 'dist', 'node.cjs.map'), `${file}.map`);
      copyFileSync(join(root, 'dist', 'node.cjs.map-index.json'), `${file}.map-index.json`);
      expect(stackMaps.indexedMapOf(file)).not.toBeNull();
      appendFileSync(`${file}.map`, ' ');
      expect(stackMaps.indexedMapOf(file)).toBeNull();
      // Same size, `mappings` elsewhere: refused too.
      const text = readFileSync(join(root, 'dist', 'node.cjs.map'), 'utf8');
      writeFileSync(`${file}.map`, ` ${text.slice(0, -1)}`);
      expect(stackMaps.indexedMapOf(file)).toBeNull();
      rmSync(`${file}.map-index.json`);
      expect(stackMaps.indexedMapOf(file)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

