/**
 * Security acceptance, secret files (issue 13, last row): `quorumd start` refuses a
 * cluster key or API token file that group or others may read, naming the file and
 * the chmod to run; and a config with a secret inline is a secret file too. Real
 * `quorumd start` processes.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');
const dir = mkdtempSync(join(tmpdir(), 'quorumd-sec-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(config: string): { code: number | null; err: string } {
  const r = spawnSync(process.execPath, [bin, 'start', '--config', config], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, err: r.stderr + r.stdout };
}

function config(name: string, http = ''): string {
  const f = join(dir, `${name}.yaml`);
  writeFileSync(
    f,
    `cluster: { name: sec, keyFile: cluster.key }
members: [{ id: 1, name: solo }]
node: { name: solo, dataDir: ${JSON.stringify(join(dir, `data-${name}`))} }
mqtt: { brokers: ["mqtt://127.0.0.1:1"] }
http: { listen: "127.0.0.1:0"${http} }
`,
  );
  return f;
}

describe('secret files readable by others are refused', () => {
  it('cluster.key at 0644: refused, naming the file and the chmod', () => {
    const key = join(dir, 'cluster.key');
    writeFileSync(key, 'ab'.repeat(32) + '\n');
    chmodSync(key, 0o644);
    const r = start(config('a'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cluster\.keyFile/);
    expect(r.err).toContain(`chmod 600 ${key}`);
    expect(r.err).toMatch(/other users may access it \(mode 0644\)|its group and other users may access it \(mode 0644\)/);
    chmodSync(key, 0o600);
  });

  it('api.token at 0644 (http.tokenFile): refused; group-readable (0640) too', () => {
    const tok = join(dir, 'api.token');
    writeFileSync(tok, 'x'.repeat(43) + '\n');
    chmodSync(tok, 0o644);
    const r = start(config('b', ', tokenFile: api.token'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/http\.tokenFile/);
    expect(r.err).toContain(`chmod 600 ${tok}`);
    chmodSync(tok, 0o640);
    expect(start(config('b2', ', tokenFile: api.token')).err).toMatch(/its group may access it \(mode 0640\)/);
  });

  it('a config with the key inline is a secret file: refused at 0644', () => {
    const f = join(dir, 'inline.yaml');
    writeFileSync(f, `cluster: { name: sec, key: ${'cd'.repeat(32)} }\nmembers: [{ id: 1, name: solo }]\nnode: { name: solo, dataDir: ${JSON.stringify(join(dir, 'data-inline'))} }\nmqtt: { brokers: ["mqtt://127.0.0.1:1"] }\n`);
    chmodSync(f, 0o644);
    const r = start(f);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cluster\.key inline makes the config a secret file/);
    expect(r.err).toContain(`chmod 600 ${f}`);
  });
});
