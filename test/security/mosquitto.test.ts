/**
 * examples/mosquitto (mosquitto.conf + quorumd.acl) with Debian's mosquitto, as
 * docs/security.md tells to install it: the password file made by `quorumd broker
 * passwords` and `mosquitto_passwd -U`. Three `quorumd start` nodes (no mqtt account in
 * their configs: they derive it from the cluster key) commit through it; anonymous
 * clients, other nodes' inboxes and a node's client id are refused.
 */
import { execFileSync } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodePassword, nodeUsername } from '../../hal/mqtt/credentials.ts';
import { bin, CALM_RAFT_YAML, freePort, Harness, killChild, MOSQUITTO, mosquittoCheck, waitFor, type BrokerProc } from '../e2e/harness.ts';
import { createWriteStream } from 'node:fs';
import { mqttClient, sleep } from './helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const mosq = mosquittoCheck();
let h: Harness;
let broker: BrokerProc;
let port = 0;

beforeAll(async () => {
  if (!mosq.run) return;
  h = new Harness();
  port = await freePort();
  // The example, with this test's port and files (the cluster id of the harness is 7, not 1).
  const conf = readFileSync(join(root, 'examples', 'mosquitto', 'mosquitto.conf'), 'utf8')
    .replace(/^listener 1883 127\.0\.0\.1$/m, `listener ${port} 127.0.0.1`)
    .replace(/^password_file .*$/m, `password_file ${join(h.dir, 'quorumd.passwd')}`)
    .replace(/^acl_file .*$/m, `acl_file ${join(h.dir, 'quorumd.acl')}`);
  expect(conf).toContain(`listener ${port} 127.0.0.1`);
  // Started as root (CI), mosquitto switches to the user "mosquitto", which cannot read
  // this test's private temp dir: on a board the files belong to mosquitto (docs/security.md).
  const asRoot = process.getuid?.() === 0 ? 'user root\n' : '';
  writeFileSync(join(h.dir, 'mosquitto.conf'), conf + asRoot + 'log_dest stderr\nlog_type error\nlog_type warning\n');
  writeFileSync(join(h.dir, 'quorumd.acl'), readFileSync(join(root, 'examples', 'mosquitto', 'quorumd.acl'), 'utf8').replace(/quorumd\/1\//g, 'quorumd/7/').replace(/quorumd-1-/g, 'quorumd-7-'));
  // The password file as docs/security.md says: derived passwords, then hashed by mosquitto_passwd -U.
  const plain = execFileSync(process.execPath, [bin, 'broker', 'passwords', '--cluster-key-file', h.keyFile(), '--cluster', '7', '--nodes', '1-3'], { encoding: 'utf8' });
  expect(plain.split('\n').filter(Boolean)).toHaveLength(3);
  writeFileSync(join(h.dir, 'quorumd.passwd'), plain + 'dashboard:dashboard-password\n', { mode: 0o600 });
  execFileSync('/usr/bin/mosquitto_passwd', ['-U', join(h.dir, 'quorumd.passwd')]);
  expect(readFileSync(join(h.dir, 'quorumd.passwd'), 'utf8')).not.toContain(plain.split('\n')[0]!.split(':')[1]!);
  const child = spawnTied(MOSQUITTO, ['-c', join(h.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(h.dir, 'mosquitto.log'));
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  broker = { url: `mqtt://127.0.0.1:${port}`, port, kind: 'mosquitto', child, stop: () => killChild(child) };
  h.brokers.push(broker);
  await waitFor(async () => (await mqttClient(broker.url, { username: 'dashboard', password: 'dashboard-password' })).err === undefined, 20_000, `mosquitto on ${port} (log ${join(h.dir, 'mosquitto.log')})`);
  await h.startCluster({ n: 3, links: () => ({ brokers: [broker.url] }), raftYaml: CALM_RAFT_YAML });
}, 120_000);
afterAll(async () => {
  await h?.dispose();
});

describe.skipIf(!mosq.run)('examples/mosquitto with Debian mosquitto', () => {
  it('nodes log in with derived passwords and commit', async () => {
    const leader = await h.waitLeader(60_000);
    const w = await h.writes(() => h.nodes.find((n) => n !== leader)!, 10, 2, 'mosq-sec');
    expect(w.latencies).toHaveLength(10);
  });

  it('refuses anonymous clients; an account reads only what the ACL gives it', async () => {
    const anon = await mqttClient(broker.url);
    expect(anon.err?.message).toMatch(/Not authorized|Bad username or password/);
    anon.c.end(true);
    const key = Buffer.from(h.key, 'hex');
    // Node 2's account: its own inbox yes, node 1's no (mosquitto grants the SUBACK but never delivers).
    const n2 = await mqttClient(broker.url, { username: nodeUsername(7, 2), password: nodePassword(key, 7, 2), clientId: 'whatever' });
    expect(n2.err).toBeUndefined();
    const got: string[] = [];
    n2.c.on('message', (t) => got.push(t));
    await new Promise<void>((r) => n2.c.subscribe(['quorumd/7/to/1', 'quorumd/#'], { qos: 0 }, () => r()));
    await sleep(1500); // node 1 receives heartbeats all the time
    expect(got.filter((t) => t === 'quorumd/7/to/1')).toEqual([]);
    n2.c.end(true);
    // The dashboard sees presence and the leader record, no frames.
    const dash = await mqttClient(broker.url, { username: 'dashboard', password: 'dashboard-password' });
    const seen: string[] = [];
    dash.c.on('message', (t) => seen.push(t));
    await new Promise<void>((r) => dash.c.subscribe('quorumd/#', { qos: 0 }, () => r()));
    await sleep(1500);
    expect(seen.some((t) => t.startsWith('quorumd/7/presence/'))).toBe(true);
    expect(seen.filter((t) => t.includes('/to/'))).toEqual([]);
    dash.c.end(true);
  });

  it("a node's client id cannot be taken: the dashboard asking for quorumd-7-<leader> leaves the leader connected", async () => {
    const leader = await h.waitLeader();
    const before = await h.json(leader, '/v1/status');
    // Only what the broker logs from here on: the test above logs in with node 2's own
    // account, which does take over quorumd-7-2 (and node 2 takes it back): when node 2
    // leads, those lines are in the log already.
    const logFile = join(h.dir, 'mosquitto.log');
    const logFrom = readFileSync(logFile, 'utf8').length;
    for (let i = 0; i < 8; i++) {
      const r = await mqttClient(broker.url, { username: 'dashboard', password: 'dashboard-password', clientId: `quorumd-7-${leader.id}` });
      r.c.end(true);
    }
    await sleep(1000);
    const after = await h.json(leader, '/v1/status');
    expect(after?.term).toBe(before?.term);
    expect((after?.links as Array<{ up: boolean }>)[0]!.up).toBe(true);
    const logged = readFileSync(logFile, 'utf8').slice(logFrom);
    expect(logged).not.toMatch(new RegExp(`Client quorumd-7-${leader.id} already connected, closing old connection`));
  });
});
