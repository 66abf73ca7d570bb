/**
 * `quorumd start` with `engine: bully` and a `fencing:` section: keys without meaning
 * for bully (no lease, no watchdog, no priority delay, no watchdog-wait level) are
 * config errors naming key and line, before anything is opened; `stonith: false`
 * runs tokens only (active at once). In-process, real broker on 127.0.0.1, bounded polls.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startBroker } from '../../../hal/mqtt/broker.ts';
import { startNode } from '../../../daemon/start.ts';
import { checkBullyFencing } from '../../../daemon/config/fencing.ts';
import { parseConfigText } from '../../../daemon/config/load.ts';
import { call } from '../../../daemon/client/http.ts';
import { testTokenFile } from '../../helpers/auth.ts';

const KEY = 'ab'.repeat(32);
const dir = mkdtempSync(join(tmpdir(), 'quorumd-bully-cfg-'));
const cleanup: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

function text(fencing: string, port = 1883, name = 'a'): string {
  return `cluster: { name: bc, key: ${KEY} }
engine: bully
members:
  - { id: 1, name: a }
  - { id: 2, name: b }
node: { name: ${name}, dataDir: ${JSON.stringify(join(dir, name))} }
mqtt: { brokers: [ "mqtt://127.0.0.1:${port}" ], keepaliveSec: 1 }
http: { listen: "127.0.0.1:0", tokenFile: ${JSON.stringify(testTokenFile())} }
fencing:
${fencing}`;
}
const relay = '    - { node: b, levels: [[{ type: dev-relay, url: "http://127.0.0.1:9" }]] }';

describe('engine bully with a fencing: section', () => {
  it('keys that have no meaning for bully are config errors with key and line, before the data directory is touched', async () => {
    const cases: Array<[string, RegExp]> = [
      [`  activation: { leaseMs: 1000 }\n  targets:\n${relay}`, /:10:\d+: fencing\.activation\.leaseMs: has no meaning for engine bully/],
      [`  watchdog: { path: /dev/null }\n  targets:\n${relay}`, /:10:\d+: fencing\.watchdog: has no meaning for engine bully/],
      [`  targets:\n${relay}\n  watchdogTimeoutMs: 15000`, /:12:\d+: fencing\.watchdogTimeoutMs: has no meaning for engine bully/],
      [`  priorityDelayMs: 100\n  targets:\n${relay}`, /:10:\d+: fencing\.priorityDelayMs: has no meaning for engine bully/],
      [`  targets:\n    - { node: b, levels: [[{ type: watchdog-wait, waitMs: 100 }]] }`, /:11:\d+: fencing\.targets\.0\.levels\.0\.0\.type: expected gpio-relay, serial-relay or dev-relay: watchdog-wait has no meaning for engine bully/],
    ];
    for (const [i, [f, re]] of cases.entries()) {
      const file = join(dir, `bad${i}.yaml`);
      writeFileSync(file, text(f));
      await expect(startNode(file, { pino: pino({ level: 'silent' }) }), f).rejects.toThrow(re);
    }
    // Nothing was started: the data directory lock was never taken.
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(dir, 'a', 'quorumd.pid'))).toBe(false);
    // The schema runs the same check, so `quorumd config validate` reports these keys
    // too; a config that writes none of them passes.
    expect(checkBullyFencing(parseConfigText(text(`  targets:\n${relay}`)).fencing!)).toEqual([]);
    expect(() => parseConfigText(text(`  watchdogTimeoutMs: 9000\n  targets:\n${relay}`))).toThrow(/fencing\.watchdogTimeoutMs: has no meaning for engine bully/);
  });

  it('stonith: false runs tokens only: active at once, fence endpoints answer without a fence device', async () => {
    const broker = await startBroker({ port: 0, host: '127.0.0.1', clusterKeys: [{ cluster: 1, keys: [Buffer.from(KEY, 'hex')] }] });
    cleanup.push(() => new Promise<void>((r) => broker.close(() => r())));
    const file = join(dir, 'tok.yaml');
    writeFileSync(file, text(`  stonith: false\n  targets:\n${relay.replace('node: b', 'node: a')}`, broker.port, 'b'));
    const n = await startNode(file, { pino: pino({ level: 'silent' }) });
    cleanup.push(() => n.stop());
    const deadline = Date.now() + 10_000;
    let s: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      s = JSON.parse((await call(n.url, 'GET', '/v1/status')).body.toString());
      if (s.active === true) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(s).toMatchObject({ engine: 'bully', role: 'coordinator', active: true, elected: true, fencingMode: 'tokens-only', waitingFor: '' });
    expect((s.relays as unknown[]).length).toBe(1);
    expect(s.token).toBe((s.term as number) * 256 + 2);
    const f = await call(n.url, 'POST', '/v1/fence/a', { timeoutMs: 5000 });
    expect(f.status).toBe(503);
    expect(f.body.toString()).toMatch(/no fence device for n1/);
    expect((await call(n.url, 'POST', '/v1/fence/a/confirm')).status).toBe(503);
    const m = (await call(n.url, 'GET', '/metrics')).body.toString();
    expect(m).toMatch(/^quorumd_active 1$/m);
    expect(m).toMatch(/^quorumd_elected 1$/m);
  }, 20_000);
});
