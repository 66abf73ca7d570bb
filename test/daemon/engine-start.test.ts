/**
 * `quorumd start` with `engine: paxos` in-process: the engine runtime behind the HTTP
 * API, its durable state in <dataDir>/paxos, and a node whose storage is corrupt stops
 * cleanly on the fatal error (it used to crash with "Cannot access 'node' before
 * initialization": the error arrives synchronously while the node is being built).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseConfigWithPositions, resolveConfig } from '../../daemon/config/load.ts';
import { startNode } from '../../daemon/start.ts';
import { EngineRuntime } from '../../daemon/runtime/engine-node.ts';
import { call } from '../../daemon/client/http.ts';
import { testTokenFile } from '../helpers/auth.ts';

const KEY = 'ab'.repeat(32);
const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

function configText(dir: string): string {
  return `cluster: { name: et, key: ${KEY} }
engine: paxos
members:
  - { id: 1, name: a }
node: { name: a, dataDir: ${JSON.stringify(join(dir, 'a'))} }
mqtt: { brokers: [ "mqtt://127.0.0.1:1" ], keepaliveSec: 1 }
http: { listen: "127.0.0.1:0", tokenFile: ${JSON.stringify(testTokenFile())} }
`;
}

async function until(pred: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe('quorumd start with engine: paxos', () => {
  it('one member leads alone: writes, reads and status through the HTTP API; its log lives in <dataDir>/paxos', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-paxos-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const { config, locate } = parseConfigWithPositions(configText(dir), 'a.yaml');
    const n = await startNode(resolveConfig(config, join(dir, 'a.yaml'), locate), { pino: pino({ level: 'silent' }) });
    cleanup.push(() => n.stop());
    expect(n.runtime).toBeInstanceOf(EngineRuntime);
    const token = (await import('node:fs')).readFileSync(testTokenFile(), 'utf8').trim();
    expect(await until(async () => (await call(n.url, 'PUT', '/v1/kv/k', { body: 'v', token })).status === 200, 10_000)).toBe(true);
    const g = await call(n.url, 'GET', '/v1/kv/k', { token });
    expect([g.status, g.body.toString()]).toEqual([200, 'v']);
    const st = JSON.parse((await call(n.url, 'GET', '/v1/status', { token })).body.toString());
    expect(st).toMatchObject({ engine: 'paxos', role: 'leader', leader: 'a', active: true });
    expect((await import('node:fs')).existsSync(join(dir, 'a', 'paxos', 'hardstate'))).toBe(true);
  });

  it('a corrupt hard state stops the node on its fatal error, without crashing startNode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-paxos-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'a', 'paxos'), { recursive: true });
    writeFileSync(join(dir, 'a', 'paxos', 'hardstate'), 'not a hard state record');
    const { config, locate } = parseConfigWithPositions(configText(dir), 'a.yaml');
    const n = await startNode(resolveConfig(config, join(dir, 'a.yaml'), locate), { pino: pino({ level: 'silent' }) });
    cleanup.push(() => n.stop());
    expect(await until(() => n.runtime.state === 'stopped', 5000)).toBe(true);
  });
});
