/**
 * A node process (dist/node.cjs) reads its config with the parser from a bundle of its
 * own (dist/config.cjs) and keeps none of it afterwards (daemon/config/load-apart.ts):
 *   - the node bundle holds no zod and no yaml; the config bundle holds both;
 *   - the node bundle's loadConfigFile reads a config like daemon/config/load.ts does,
 *     errors included (by name: another bundle's class);
 *   - after the read, a heap snapshot of the process has no zod or yaml object left —
 *     while the same snapshot check does find them when the parser's exports are kept
 *     (the check can fail).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const dist = join(root, 'dist');
const dir = mkdtempSync(join(tmpdir(), 'quorumd-config-apart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(): string {
  const file = join(dir, 'n1.yaml');
  writeFileSync(join(dir, 'cluster.key'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  writeFileSync(
    file,
    [
      'cluster: { name: apart, id: 1, keyFile: cluster.key }',
      'members:',
      '  - { id: 1, name: n1 }',
      '  - { id: 2, name: n2 }',
      '  - { id: 3, name: n3 }',
      'node: { name: n1, dataDir: data }',
      'mqtt: { brokers: [mqtt://127.0.0.1:1883] }',
      'http: { listen: 127.0.0.1:7071 }',
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * Runs `script` in a fresh node (CommonJS, code cache off), after a prelude that gives it
 * `loadWithCodeCache` (bin/code-cache.js) and `countParser()` (zod and yaml objects in a
 * heap snapshot of the process); the script prints one JSON line, returned parsed.
 */
function run(script: string): Record<string, unknown> {
  const prelude = `
    const { loadWithCodeCache } = require(${JSON.stringify(join(root, 'bin', 'code-cache.js'))});
    const { readFileSync, rmSync } = require('node:fs');
    function countParser() {
      const file = require('node:v8').writeHeapSnapshot(${JSON.stringify(join(dir, 'snap.heapsnapshot'))});
      const s = JSON.parse(readFileSync(file, 'utf8'));
      rmSync(file);
      const NF = s.snapshot.meta.node_fields.length, types = s.snapshot.meta.node_types[0];
      let zod = 0, yaml = 0;
      for (let i = 0; i < s.nodes.length; i += NF) {
        const t = types[s.nodes[i]];
        if (t !== 'closure' && t !== 'object') continue;
        const name = s.strings[s.nodes[i + 1]];
        if (/Zod/.test(name)) zod++;
        if (/^(LineCounter|Composer|YAMLMap|YAMLSeq)$/.test(name)) yaml++;
      }
      return { zod, yaml };
    }`;
  const r = spawnSync(process.execPath, ['-e', `${prelude}\n${script}`], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, QUORUMD_CODE_CACHE: 'off' } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('the node reads its config apart (dist/config.cjs)', () => {
  it('the node bundle has no zod and no yaml; the config bundle has both', () => {
    const node = readFileSync(join(dist, 'node.cjs'), 'latin1');
    const cfg = readFileSync(join(dist, 'config.cjs'), 'latin1');
    for (const marker of ['$ZodType', 'LineCounter']) {
      expect(node.includes(marker), marker).toBe(false);
      expect(cfg.includes(marker), marker).toBe(true);
    }
  });

  it('reads a config as load.ts does, and keeps nothing of the parser after the read', () => {
    const file = config();
    const out = run(`
      const node = loadWithCodeCache(${JSON.stringify(join(dist, 'node.cjs'))}).exports;
      const cfg = node.loadConfigFile(${JSON.stringify(file)});
      let error;
      try { node.loadConfigFile(${JSON.stringify(join(dir, 'missing.yaml'))}); } catch (e) { error = { name: e.name, message: e.message }; }
      console.log(JSON.stringify({ name: cfg.self.name, members: cfg.config.members.length, port: cfg.http.port, key: cfg.key.length, error, globals: Object.keys(globalThis).filter((k) => /zod/i.test(k)), ...countParser() }));
    `);
    expect(out).toMatchObject({ name: 'n1', members: 3, port: 7071, key: 32, globals: [], zod: 0, yaml: 0 });
    expect(out.error).toMatchObject({ name: 'ConfigError', message: expect.stringContaining('missing.yaml') });
  });

  it('the snapshot check finds the parser while its exports are kept', () => {
    const file = config();
    const out = run(`
      const parser = loadWithCodeCache(${JSON.stringify(join(dist, 'config.cjs'))}).exports;
      parser.loadConfigFile(${JSON.stringify(file)});
      globalThis.kept = parser;
      console.log(JSON.stringify(countParser()));
    `);
    expect(out.zod).toBeGreaterThan(0);
    expect(out.yaml).toBeGreaterThan(0);
  });
});
