/**
 * bin/stack-maps.js: a stack trace through the compiled daemon (dist/) names the
 * TypeScript file and line, with the maps read only when the stack is formatted. Run in
 * a child process (plain node, the built dist/ that vitest's globalSetup makes), so
 * that the test runner's own stack handling is not in the way.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
});
