/**
 * `quorumd start` with `engine: bully` (in-process, real MQTT broker on 127.0.0.1, real
 * files) and `quorumd dev --engine bully` (child processes): status, leader with its
 * fencing token, hooks, failover, the 501 answer for KV and locks, and config errors.
 * Polls are bounded; nothing sleeps on the wall clock beyond them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startBroker, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { parseConfigText, parseConfigWithPositions, resolveConfig } from '../../daemon/config/load.ts';
import { startNode, type RunningNode } from '../../daemon/start.ts';
import { startDev } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { testTokenFile } from '../helpers/auth.ts';
import { freeBasePort } from '../helpers/ports.ts';

const KEY = 'cd'.repeat(32);
const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function until(pred: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

function configText(o: { name: string; dir: string; port: number; hookFile: string; extra?: string }): string {
  return `cluster: { name: bt, key: ${KEY} }
engine: bully
members:
  - { id: 1, name: a }
  - { id: 2, name: b }
  - { id: 3, name: c }
node: { name: ${o.name}, dataDir: ${JSON.stringify(join(o.dir, o.name))} }
mqtt: { brokers: [ "mqtt://127.0.0.1:${o.port}" ], keepaliveSec: 1 }
http: { listen: "127.0.0.1:0", tokenFile: ${JSON.stringify(testTokenFile())} }
hooks:
  onActive: echo "active $QUORUMD_TERM $QUORUMD_TOKEN" >> ${JSON.stringify(o.hookFile)}
${o.extra ?? ''}`;
}

describe('quorumd start with engine: bully', () => {
  it('three nodes: the highest coordinates, status/leader/hooks work, KV and locks answer 501, failover to the next', async () => {
    const broker: RunningBroker = await startBroker({ port: 0, host: '127.0.0.1', clusterKeys: [{ cluster: 1, keys: [Buffer.from(KEY, 'hex')] }] });
    cleanup.push(() => new Promise<void>((r) => broker.close(() => r())));
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-bully-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const nodes: RunningNode[] = [];
    for (const name of ['a', 'b', 'c']) {
      const hookFile = join(dir, `${name}.hook`);
      const { config, locate } = parseConfigWithPositions(configText({ name, dir, port: broker.port, hookFile }), `${name}.yaml`);
      const n = await startNode(resolveConfig(config, join(dir, `${name}.yaml`), locate), { pino: pino({ level: 'silent' }) });
      nodes.push(n);
      cleanup.push(() => n.stop());
    }
    const [a, b, c] = nodes as [RunningNode, RunningNode, RunningNode];
    expect(await until(() => c.runtime.isLeader && nodes.every((n) => n.runtime.status().leader === 3), 10_000)).toBe(true);

    const st = JSON.parse((await call(a.url, 'GET', '/v1/status')).body.toString());
    expect(st).toMatchObject({ id: 'a', engine: 'bully', role: 'follower', leader: 'c', commitIndex: 0 });
    const ld = JSON.parse((await call(b.url, 'GET', '/v1/leader')).body.toString());
    expect(ld.leader).toBe('c');
    expect(ld.token).toBe(ld.term * 256 + 3);
    // The epoch is durable in the engine runtime's durable log, in the bully directory (no bully.state any more).
    expect(existsSync(join(dir, 'c', 'bully', 'hardstate'))).toBe(true);
    expect(existsSync(join(dir, 'c', 'bully', 'bully.state'))).toBe(false);
    expect(await until(() => existsSync(join(dir, 'c.hook')), 5000)).toBe(true);
    expect(readFileSync(join(dir, 'c.hook'), 'utf8')).toContain(`active ${ld.term} ${ld.token}`);

    const put = await call(a.url, 'PUT', '/v1/kv/x', { body: Buffer.from('1') });
    expect(put.status).toBe(501);
    const pj = JSON.parse(put.body.toString());
    expect(pj.code).toBe('engine-unsupported');
    expect(pj.error).toMatch(/\(engine: raft, paxos, zab, pbft, etcd or zookeeper\)/);
    expect((await call(a.url, 'GET', '/v1/kv/x')).status).toBe(501);
    expect((await call(a.url, 'POST', '/v1/locks/l?ttl=5s&owner=me')).status).toBe(501);
    const metrics = (await call(a.url, 'GET', '/metrics')).body.toString();
    expect(metrics).toMatch(/quorumd_info\{[^}]*engine="bully"/);

    await c.stop();
    expect(await until(() => b.runtime.isLeader && a.runtime.status().leader === 2, 5000)).toBe(true);
    const ld2 = JSON.parse((await call(a.url, 'GET', '/v1/leader')).body.toString());
    expect(ld2.token).toBeGreaterThan(ld.token);
  }, 30_000);

  it('config: bully options are validated with their key; priorities only with engine bully and distinct', () => {
    const base = (extra: string, engine = 'bully', members = '  - { id: 1, name: a }\n  - { id: 2, name: b }') =>
      `cluster: { name: bt, key: ${KEY} }\nengine: ${engine}\nmembers:\n${members}\nnode: { name: a, dataDir: /tmp/x }\nmqtt: { brokers: [ "mqtt://127.0.0.1:1883" ] }\n${extra}`;
    expect(parseConfigText(base('')).bully).toMatchObject({ heartbeatMs: 100, failureTimeoutMinMs: 1000, failureTimeoutMaxMs: 1500, answerTimeoutMs: 200, coordinatorWaitMs: 600 });
    expect(() => parseConfigText(base('bully: { heartbeatMs: 600 }'))).toThrow(/bully\.heartbeatMs: expected at most half of failureTimeoutMinMs/);
    expect(() => parseConfigText(base('bully: { answerTimeoutMs: 600 }'))).toThrow(/bully\.coordinatorWaitMs: expected more than answerTimeoutMs/);
    expect(() => parseConfigText(base('bully: { preempt: maybe }'))).toThrow(/bully\.preempt: expected preempt: true or false/);
    expect(() => parseConfigText(base('bully: { bogus: 1 }'))).toThrow(/bully\.bogus: unknown key/);
    expect(() => parseConfigText(base('', 'raft', '  - { id: 1, name: a, priority: 5 }'))).toThrow(/members\.0\.priority: expected no priority.*engine: bully only/);
    expect(() => parseConfigText(base('', 'bully', '  - { id: 1, name: a, priority: 2 }\n  - { id: 2, name: b }'))).toThrow(/members\.1\.priority: expected a priority distinct from a's \(2\)/);
  });
});

describe('quorumd dev --engine bully', () => {
  it('starts three child processes that agree on the highest node, and prints a bully guide', async () => {
    let printed = '';
    const base = await freeBasePort(3);
    const dev = await startDev({ nodes: 3, engine: 'bully', basePort: base, handleSignals: false, out: (s) => (printed += s), readyTimeoutMs: 60_000 });
    process.env.QUORUMD_API_TOKEN_FILE = dev.tokenFile; // as `quorumd --data-dir <dev dir>` finds it
    cleanup.push(() => dev.stop());
    expect(printed).toMatch(/running, leader n3/);
    expect(printed).toMatch(/KV and locks answer 501/);
    const st = JSON.parse((await call(dev.nodes[0]!.url, 'GET', '/v1/status')).body.toString());
    expect(st.engine).toBe('bully');
    expect((await call(dev.nodes[1]!.url, 'PUT', '/v1/kv/greeting', { body: Buffer.from('x') })).status).toBe(501);
    // Refused before anything starts: pbft needs n = 3f + 1 ≥ 4.
    await expect(startDev({ nodes: 1, engine: 'pbft', basePort: base + 50, handleSignals: false, out: () => {} })).rejects.toThrow(/--nodes: engine pbft needs at least 4 nodes/);
  }, 120_000); // the cluster may take most of a minute to settle on a loaded machine
});
