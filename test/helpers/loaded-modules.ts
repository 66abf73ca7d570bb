/**
 * What a `quorumd` process loaded: runs bin/quorumd.js with `args` and a preload
 * (NODE_OPTIONS --require, so the bin itself is untouched) that writes, as the process
 * exits, Node's built-in module list and the files in the CommonJS cache.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

export interface Loaded {
  /** The process's exit status. */
  status: number | null;
  stderr: string;
  /** process.moduleLoadList: `NativeModule <name>`, `Internal Binding <name>`. */
  builtins: string[];
  /** Absolute paths of the files in require.cache. */
  commonjs: string[];
}

export function binLoaded(args: string[], env: NodeJS.ProcessEnv = {}): Loaded {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-loaded-'));
  try {
    const out = join(dir, 'loaded.json');
    const preload = join(dir, 'preload.cjs');
    writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ builtins: process.moduleLoadList, commonjs: Object.keys(require.cache) })));`);
    const r = spawnSync(process.execPath, [join(root, 'bin', 'quorumd.js'), ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env, NODE_OPTIONS: `--require ${preload}` } });
    if (r.error) throw r.error;
    const l = JSON.parse(readFileSync(out, 'utf8')) as { builtins: string[]; commonjs: string[] };
    return { status: r.status, stderr: r.stderr, ...l };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
