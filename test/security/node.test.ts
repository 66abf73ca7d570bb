/**
 * Security acceptance against one `quorumd start` node and a `quorumd broker` (real
 * child processes; a one-member cluster, so that nothing but the attack moves it):
 * the broker is closed and bounded, the node's HTTP server holds 2000 half-open
 * sockets, and the KV quota keeps the node under the systemd unit's MemoryMax with the
 * quota full, before and after a restart.
 */
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../../daemon/client/http.ts';
import { DEFAULT_KV_QUOTA } from '../../src/kv/index.ts';
import { bin, freePort, Harness, killChild, type BrokerProc, type ProcNode } from '../e2e/harness.ts';
import { fdCount, mqttClient, rssMiB, sleep, until } from './helpers.ts';

/** The shipped unit's MemoryMax (packaging/quorumd.service), MiB. */
const MEMORY_MAX_MIB = Number(/^MemoryMax=(\d+)M$/m.exec(readFileSync(join(import.meta.dirname, '..', '..', 'packaging', 'quorumd.service'), 'utf8'))![1]);

let h: Harness;
let broker: BrokerProc;
let node: ProcNode;

beforeAll(async () => {
  h = new Harness();
  broker = await h.aedesChild();
  const port = await freePort();
  const config = h.writeConfig(1, 1, { brokers: [broker.url] }, port);
  node = h.addNode('n1', 1, config, `http://127.0.0.1:${port}`);
  await h.waitLeader(60_000, [node]);
}, 90_000);
afterAll(async () => {
  await h?.dispose();
});

describe('quorumd broker is closed and bounded', () => {
  it('anonymous `subscribe quorumd/#` and a wrong password are refused at CONNECT', async () => {
    const anon = await mqttClient(broker.url);
    expect(anon.err?.message).toMatch(/Bad username or password|Not authorized/);
    anon.c.end(true);
    const wrong = await mqttClient(broker.url, { username: 'quorumd-7-1', password: 'x'.repeat(43) });
    expect(wrong.err?.message).toMatch(/Bad username or password/);
    wrong.c.end(true);
  });

  it('a 200 MB publish is cut at its header: the broker process does not grow by it', async () => {
    const pid = broker.child!.pid!;
    const rss0 = rssMiB(pid);
    const s = net.connect(broker.port, '127.0.0.1');
    s.on('error', () => {});
    let closed = false;
    s.on('close', () => (closed = true));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(Buffer.from([0x30, 0x80, 0x84, 0xaf, 0x5f])); // remaining length 200,000,000
    const chunk = Buffer.alloc(256 * 1024, 0x41);
    for (let i = 0; i < 800 && !closed; i++) {
      if (!s.write(chunk)) await new Promise((r) => setTimeout(r, 2));
    }
    await until(() => closed, 15_000, 'the broker closed the connection');
    await sleep(300);
    expect(rssMiB(pid) - rss0).toBeLessThan(32);
  });

  it('refuses to start without accounts', () => {
    const r = spawnSync(process.execPath, [bin, 'broker', '--port', '0'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no accounts: give --cluster-key-file FILE .* and\/or --users FILE/);
  });
});

describe("a node's HTTP server", () => {
  it('2000 sockets sending half a header: at most 128 held per address, all destroyed after the header timeout', async () => {
    const pid = node.child!.pid!;
    const fds0 = fdCount(pid);
    const port = Number(new URL(node.url).port);
    const socks: net.Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 2000; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => closed++);
      s.on('connect', () => s.write('GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Half: '));
      socks.push(s);
      if (i % 200 === 199) await sleep(20);
    }
    await until(() => socks.every((s) => !s.connecting), 30_000, 'all 2000 connects settled');
    await sleep(500);
    // At most 128 from this address are held (the rest destroyed at accept): the node's descriptors show it.
    expect(fdCount(pid) - fds0).toBeLessThanOrEqual(128 + 8);
    expect(node.child!.pid).toBe(pid);
    // Each held one is destroyed after the 10 s header timeout (checked every second), not half-closed.
    await until(() => closed === 2000, 40_000, 'every half-open socket destroyed by the node');
    expect(fdCount(pid) - fds0).toBeLessThanOrEqual(8);
    expect((await call(node.url, 'GET', '/v1/status')).status).toBe(200);
  }, 90_000);

  it('a pool of 64 keep-alive connections beside two more (a supervisor, a CLI call): every request answered, none refused', async () => {
    // 66 requests in flight at once over 66 sockets from 127.0.0.1: at the old default of
    // 64 per address the last ones were reset at accept (a 64-writer pool beside `quorumd dev`).
    const refused = async () => Number(/^quorumd_http_connections_refused_total (\d+)/m.exec((await call(node.url, 'GET', '/metrics')).body.toString())?.[1]);
    const r0 = await refused();
    const token = readFileSync(h.tokenFile, 'utf8').trim();
    const port = Number(new URL(node.url).port);
    const socks = Array.from({ length: 66 }, () => net.connect(port, '127.0.0.1'));
    try {
      const answers = socks.map(
        (s) =>
          new Promise<string>((resolve) => {
            let got = '';
            s.on('data', (d) => {
              got += d.toString('latin1');
              if (got.includes('\r\n\r\n')) resolve(got.slice(0, 12));
            });
            s.on('error', (e) => resolve(`error ${e.message}`));
            s.on('close', () => resolve(got.slice(0, 12) || 'closed before an answer'));
          }),
      );
      // All 66 are open before any asks: the node holds them at once.
      await until(() => socks.every((s) => !s.connecting), 30_000, 'all 66 sockets connected');
      for (const s of socks) s.write(`GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      expect((await Promise.all(answers)).filter((a) => a !== 'HTTP/1.1 200')).toEqual([]);
      expect((await refused()) - r0).toBe(0);
    } finally {
      for (const s of socks) s.destroy();
    }
  }, 90_000);

  it('200 half-closed watches from one address: 64 held, the other 136 answered 429 at once; other clients still get in', async () => {
    // Before: the watches held all 128 connections of 127.0.0.1 for their whole wait, and
    // every other local application was reset at accept (a read token is enough for this).
    const token = readFileSync(h.tokenFile, 'utf8').trim();
    const port = Number(new URL(node.url).port);
    const open = async () => Number(/^quorumd_http_watches_open (\d+)/m.exec((await call(node.url, 'GET', '/metrics')).body.toString())?.[1]);
    const socks: net.Socket[] = [];
    /** A watch on a new connection, half-closed at once; resolves with its status line when the node closes it. */
    const watch = () =>
      new Promise<string>((resolve) => {
        let got = '';
        const s = net.connect(port, '127.0.0.1', () => s.end(`GET /v1/kv/hog?watch=0&wait=60s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`));
        socks.push(s);
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('error', () => {});
        s.on('close', () => resolve(got.slice(0, 12) || 'closed before an answer'));
      });
    try {
      const held = Array.from({ length: 64 }, watch);
      await until(async () => (await open()) === 64, 30_000, '64 watches open');
      // The next 136, in batches (so that the address stays below its 128 connections and
      // no connection is closed to make room): each answered 429 at once, its connection closed.
      for (let b = 0; b < 8; b++) {
        const answers = await Promise.all(Array.from({ length: 17 }, watch));
        expect(answers).toEqual(Array(17).fill('HTTP/1.1 429'));
        // Meanwhile a client of the same address gets in.
        expect((await call(node.url, 'GET', '/v1/status')).status).toBe(200);
      }
      expect(await open()).toBe(64);
      // A write to the key ends the 64 waiting watches with their answer.
      expect((await call(node.url, 'PUT', '/v1/kv/hog', { body: 'x' })).status).toBe(200);
      expect(await Promise.all(held)).toEqual(Array(64).fill('HTTP/1.1 200'));
    } finally {
      for (const s of socks) s.destroy();
    }
  }, 90_000);
});

describe('the KV quota', () => {
  it(`60 KB PUTs until full: 507 past the default quota; RSS below MemoryMax, before and after a restart`, async () => {
    const value = Buffer.alloc(60 * 1000, 0x61);
    let stored = 0;
    let refused: { status: number; body: string } | undefined;
    let next = 0;
    const worker = async () => {
      while (!refused && next < 2000) {
        const i = next++;
        const r = await call(node.url, 'PUT', `/v1/kv/big/${i}`, { body: value, timeoutMs: 30_000 });
        if (r.status === 200) stored++;
        else if (r.status === 507) refused ??= { status: r.status, body: r.body.toString() };
        else throw new Error(`PUT big/${i}: HTTP ${r.status} ${r.body.toString()}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(refused?.status).toBe(507);
    expect(JSON.parse(refused!.body)).toMatchObject({ code: 'quota-exceeded' });
    expect(stored * value.length).toBeLessThanOrEqual(DEFAULT_KV_QUOTA.maxBytes);
    expect(stored * value.length).toBeGreaterThan(DEFAULT_KV_QUOTA.maxBytes - 2 * value.length);
    const full = rssMiB(node.child!.pid!);
    // Restart with that data: recovery reads the log and the snapshot back.
    await killChild(node.child);
    h.spawnNode(node);
    await h.waitLeader(60_000, [node]);
    expect((await call(node.url, 'GET', `/v1/kv/big/0`)).body.length).toBe(value.length);
    await sleep(1000);
    const restarted = rssMiB(node.child!.pid!);
    const line = `quota full: ${stored} values of 60 KB (${((stored * value.length) / 1048576).toFixed(1)} MiB); node RSS ${full.toFixed(0)} MiB, after restart ${restarted.toFixed(0)} MiB; MemoryMax ${MEMORY_MAX_MIB} MiB`;
    writeFileSync(join(h.dir, 'quota-rss.txt'), line + '\n');
    console.log(line);
    expect(full).toBeLessThan(MEMORY_MAX_MIB);
    expect(restarted).toBeLessThan(MEMORY_MAX_MIB);
  }, 300_000);
});
