/**
 * Security acceptance against a real `quorumd dev` (issue 13): the in-process broker
 * and rail server, three node processes. Each row of the table that a local
 * user (or anybody on the broker) could do to `quorumd dev` is replayed as it was
 * reported, and must now be refused or held; the checks are the causes the report
 * named (the board powered off, the lock released, a log entry written, the leader
 * kicked off the broker, sockets left open), read from the processes themselves.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'aedes';
import { startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { alive, json, maxTerm, mqttClient, rssMiB, sleep, until } from './helpers.ts';
import { metricValue as metric } from '../e2e/harness.ts';
import { freeBasePort } from '../helpers/ports.ts';

let dev: DevCluster;
/** The broker's connected clients by id (aedes keeps them in `clients`). */
const clientsOf = () => (dev.broker.aedes as unknown as { clients: Record<string, unknown> }).clients;
let token: string;
let leader: { name: string; url: string; id: number; pid: number };
const out: string[] = [];
/** Disconnects of node client ids at the broker while the attacks run. */
const nodeDisconnects: string[] = [];

beforeAll(async () => {
  const base = await freeBasePort(3);
  dev = await startDev({ nodes: 3, engine: 'raft', basePort: base, handleSignals: false, jobs: [], ...(process.env.SEC_DEBUG ? { dataDir: '/tmp/i13-secdev' } : {}), out: (s) => out.push(s), readyTimeoutMs: 60_000 });
  token = readFileSync(dev.tokenFile, 'utf8').trim();
  process.env.QUORUMD_API_TOKEN_FILE = dev.tokenFile; // as `quorumd --data-dir <dev dir>` finds it
  const l = (await json(dev.nodes[0]!.url, '/v1/leader')).leader as string;
  const node = dev.nodes.find((n) => n.name === l)!;
  leader = { name: l, url: node.url, id: node.id, pid: node.child!.pid! };
  const t0 = performance.now();
  dev.broker.aedes.on('clientDisconnect', (c: Client) => {
    if (/^quorumd-1-\d+$/.test(c.id)) nodeDisconnects.push(c.id);
    if (process.env.SEC_DEBUG) console.log(`[${Math.round(performance.now() - t0)}] disconnect ${c.id}`);
  });
  if (process.env.SEC_DEBUG) dev.broker.aedes.on('clientError', (c: Client, e: Error) => console.log(`[${Math.round(performance.now() - t0)}] clientError ${c.id}: ${e.message}`));
}, 90_000);
afterAll(async () => {
  await dev?.stop();
});


describe('quorumd dev under attack', () => {
  it('POST /v1/fence/<node> without credentials: 401, nothing powered off', async () => {
    const follower = dev.nodes.find((n) => n.name !== leader.name)!;
    for (const target of [follower, dev.nodes.find((n) => n.name === leader.name)!]) {
      for (const via of dev.nodes) {
        if (via === target) continue;
        const r = await call(via.url, 'POST', `/v1/fence/${target.name}`, { token: '' });
        expect(r.status).toBe(401);
        const wrong = await call(via.url, 'POST', `/v1/fence/${target.name}`, { token: 'not-the-token-000000000' });
        expect(wrong.status).toBe(401);
      }
    }
    // No fence ran on anybody's request (a slow machine may fence a node that really
    // stalled: those carry the failover's reason, never "operator request").
    for (const n of dev.nodes) {
      const st = await json(n.url, '/v1/status').catch(() => undefined);
      const local = ((st?.fences as { local?: Array<{ reason: string }> } | undefined)?.local ?? []);
      expect(local.filter((f) => f.reason === 'operator request')).toEqual([]);
    }
  });

  it('POST /v1/fence/<live leader>/confirm, even with the operator token: refused 409', async () => {
    for (const via of dev.nodes.filter((n) => n.name !== leader.name)) {
      const r = await call(via.url, 'POST', `/v1/fence/${leader.name}/confirm`, { token });
      expect(r.status).toBe(409);
      expect(JSON.parse(r.body.toString())).toMatchObject({ code: 'node-alive' });
    }
    const s = await json(leader.url, '/v1/status');
    expect((s.fences as { history: Array<{ outcome: string }> }).history.filter((f) => f.outcome === 'confirmed')).toEqual([]);
  });

  it('POST <follower>/v1/fence/<the other, live follower>/confirm: refused 409 not-leader (a follower hears only its leader), nothing recorded', async () => {
    const followers = dev.nodes.filter((n) => n.name !== leader.name);
    expect(followers.length).toBe(2);
    for (const [via, target] of [followers, [...followers].reverse()] as const) {
      const r = await call(via!.url, 'POST', `/v1/fence/${target!.name}/confirm`, { token });
      expect(r.status).toBe(409);
      expect(JSON.parse(r.body.toString())).toMatchObject({ code: 'not-leader', error: expect.stringMatching(/confirm on the leader n\d+/) });
    }
    for (const n of dev.nodes) {
      const s = await json(n.url, '/v1/status');
      expect((s.fences as { history: Array<{ outcome: string }> }).history.filter((f) => f.outcome === 'confirmed')).toEqual([]);
    }
  });

  it('DELETE /v1/locks/backup?token=1..40: the fencing token releases nothing; lease guesses write nothing and get 429', async () => {
    let a = await call(leader.url, 'POST', '/v1/locks/backup?ttl=60s&owner=backup-job', { token });
    for (let i = 0; i < 50 && a.status === 503; i++) {
      await sleep(200); // an election on a busy machine: not applied, retry
      a = await call(leader.url, 'POST', '/v1/locks/backup?ttl=60s&owner=backup-job', { token });
    }
    expect(a.status).toBe(200);
    const grant = JSON.parse(a.body.toString()) as { token: number; lease: string };
    const refusals = async () => {
      let n = 0;
      for (const x of dev.nodes) n += metric(await call(x.url, 'GET', '/metrics', { token }).then((r) => r.body.toString(), () => ''), 'quorumd_lock_refusals_total');
      return n;
    };
    const refused0 = await refusals();
    const term0 = await maxTerm(dev.nodes.map((n) => n.url));
    for (let t = 1; t <= 40; t++) {
      const r = await call(leader.url, 'DELETE', `/v1/locks/backup?token=${t}`, { token });
      expect(r.status).toBe(400);
    }
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const guess = Buffer.from(`guess-${i}-0123456789abcdef`).toString('base64url');
      statuses.push((await call(leader.url, 'DELETE', `/v1/locks/backup?lease=${guess}`, { token })).status);
    }
    expect(statuses.slice(0, 5)).toEqual([409, 409, 409, 409, 409]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    // Not one entry written: each 409 was the leader's refusal before proposing. (If an
    // election happened meanwhile, a new leader proposes until its term's entry commits:
    // then this count is not the question asked, and the test says so.)
    if ((await maxTerm(dev.nodes.map((n) => n.url))) === term0) expect((await refusals()) - refused0).toBe(5);
    else console.warn('lock row: the term changed during the guesses (busy machine); not counting refusals');
    const held = await call(leader.url, 'POST', '/v1/locks/backup?ttl=60s&owner=thief', { token });
    expect(held.status).toBe(409);
    // The holder, with its lease, still renews and releases it at once, although the
    // guesses came from the same address and credential (applications on one board): a
    // lease this client was granted is not held off.
    expect((await call(leader.url, 'POST', `/v1/locks/backup/renew?lease=${grant.lease}`, { token })).status).toBe(200);
    expect((await call(leader.url, 'DELETE', `/v1/locks/backup?lease=${grant.lease}`, { token })).status).toBe(200);
  });

  it('anonymous subscribe to quorumd/# on the dev broker: refused at CONNECT', async () => {
    const url = dev.brokerUrl;
    const anon = await mqttClient(url);
    expect(anon.err?.message).toMatch(/Bad username or password|Not authorized/);
    anon.c.end(true);
    const guess = await mqttClient(url, { username: `quorumd-1-${leader.id}`, password: 'guessed-password' });
    expect(guess.err?.message).toMatch(/Bad username or password|Not authorized/);
    guess.c.end(true);
  });

  it("64 connections with the leader's client id: all refused, the leader never kicked off the broker", async () => {
    const id = `quorumd-1-${leader.id}`;
    const node = dev.nodes.find((n) => n.name === leader.name)!;
    const pid = node.child?.pid;
    const held = clientsOf()[id];
    expect(held).toBeDefined();
    const refused0 = dev.broker.stats.refusedLogins;
    for (let i = 0; i < 64; i++) {
      const r = await mqttClient(dev.brokerUrl, { clientId: id });
      expect(r.err?.message).toMatch(/Bad username or password|Not authorized/);
      r.c.end(true);
    }
    expect(dev.broker.stats.refusedLogins - refused0).toBe(64);
    // The node's own connection is the same one throughout (a takeover would have replaced
    // it), unless its process was restarted meanwhile (a failover on a busy machine).
    if (node.child?.pid === pid) expect(clientsOf()[id]).toBe(held);
  });

  it('a flood (or a 100 MB publish) by a client without credentials never reaches a node', async () => {
    const flooder = await mqttClient(dev.brokerUrl, { clientId: 'flooder' });
    expect(flooder.err).toBeDefined();
    flooder.c.end(true);
    // 100 MB PUBLISH straight on a socket: closed at its fixed header; the broker's process does not grow by it.
    const rss0 = rssMiB(process.pid);
    const oversize0 = dev.broker.stats.oversize;
    const s = net.connect(dev.broker.port, '127.0.0.1');
    s.on('error', () => {});
    let closed = false;
    s.on('close', () => (closed = true));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(Buffer.from([0x30, 0x80, 0xc2, 0xd7, 0x2f])); // remaining length 100,000,000
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 64 && !closed; i++) {
      s.write(chunk);
      await sleep(5);
    }
    await until(() => closed, 10_000, 'the broker closed the oversized publish');
    expect(dev.broker.stats.oversize).toBe(oversize0 + 1);
    expect(rssMiB(process.pid) - rss0).toBeLessThan(48);
  });

  it('POST /rail/n3?on=0 to the dev rail server without the dev token: 401, n3 keeps running', async () => {
    const rails = dev.rails!;
    const n3 = dev.nodes[2]!;
    const post = (auth?: string) =>
      new Promise<number>((resolve, reject) => {
        const r = request({ host: '127.0.0.1', port: rails.port, method: 'POST', path: '/rail/n3?on=0', headers: { 'Content-Length': 0, ...(auth ? { Authorization: auth } : {}) } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        r.on('error', reject);
        r.end();
      });
    const at = dev.railLog.length;
    expect(await post()).toBe(401);
    expect(await post('Bearer not-the-dev-token-000000')).toBe(401);
    await sleep(200);
    // Nothing switched n3 off in answer (a failover on a busy machine would be logged with its own fence).
    expect(dev.railLog.slice(at).filter((r) => r.node === 'n3' && !r.on)).toEqual([]);
  });
});
