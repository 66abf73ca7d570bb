/**
 * Open watches per client address. A watch holds its connection for up to its wait (at
 * most http.maxWatchMs, 5 min by default), and a connection with a request in progress
 * is never closed to make room for another (address-bound.test.ts, idle-evict.test.ts). So a holder
 * of a read token could fill every connection slot of 127.0.0.1 — shared by every local
 * application — with watches it half-closed, and nobody else on the board got into the
 * API for minutes. Now one address holds at most `maxWatchesPerAddress` watches (KV and
 * service watches together; by default half its connections): the next is answered 429
 * naming the bound, and its connection closes, leaving the rest of the address's
 * connections to other requests.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer, type HttpOptions } from '../../../daemon/http/server.ts';
import { call } from '../../../daemon/client/http.ts';
import { handleServices } from '../../../daemon/services/http.ts';
import { ServiceRegistry } from '../../../daemon/services/registry.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';
import { until } from '../../engines/servers.ts';
import { StillKv } from '../../services/still-kv.ts';

const TOKEN = testToken();
/** The hog's credential: scope read is enough for watches. */
const READ = 'read-only-token-of-a-monitor';


let srv: ApiServer | undefined;
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await srv?.close();
  srv = undefined;
});

async function start(opts: HttpOptions): Promise<{ port: number; base: string }> {
  const registry = new ServiceRegistry(new StillKv(), { self: 'n1', nodeTtlMs: 600, scriptChecks: false, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } });
  srv = await startApiServer(new FakeBackend(), { port: 0, token: TOKEN, credentials: [{ name: 'monitor', scope: 'read', token: READ }], maxWatchMs: 120_000, backstopMs: 5000, services: { registry, handle: handleServices }, ...opts });
  const port = srv.address().port;
  return { port, base: `http://127.0.0.1:${port}` };
}

interface Held {
  s: net.Socket;
  got: () => string;
  closed: () => boolean;
}

/**
 * Sends a watch on a new connection and half-closes it, as the hog does: the connection
 * stays open until the server answers (bounded by the callers' waits).
 */
function hogWatch(port: number, path: string, localAddress = '127.0.0.1'): Promise<Held> {
  return new Promise((resolve, reject) => {
    let got = '';
    let closed = false;
    const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
      s.end(`GET ${path} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${READ}\r\n\r\n`);
      resolve({ s, got: () => got, closed: () => closed });
    });
    sockets.add(s);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => (closed = true));
  });
}

const metric = async (base: string, line: RegExp) => Number(line.exec((await call(base, 'GET', '/metrics')).body.toString())?.[1]);

describe('open watches per client address', () => {
  it('a read-token holder filling the address with watches gets 429 past half the connection bound; other clients still get in', async () => {
    const { port, base } = await start({ maxConnectionsPerAddress: 8 });
    const held: Held[] = [];
    for (let i = 0; i < 8; i++) held.push(await hogWatch(port, `/v1/kv/k${i}?watch=0&wait=100s`));
    await until('every watch answered or waiting', () => held.filter((h) => h.closed()).length === 4, 5000);
    const refused = held.filter((h) => h.closed());
    for (const h of refused) {
      expect(h.got().split('\r\n')[0]).toBe('HTTP/1.1 429 Too Many Requests');
      expect(h.got()).toMatch(/Connection: close/i);
      const body = JSON.parse(h.got().slice(h.got().indexOf('\r\n\r\n') + 4)) as { error: string; code: string };
      expect(body.code).toBe('too-many-watches');
      expect(body.error).toMatch(/4 watches open from 127\.0\.0\.1 already: at most 4 per address \(http\.maxWatchesPerAddress\)/);
    }
    // The four that were taken are the first four, still waiting.
    expect(held.slice(0, 4).every((h) => !h.closed() && h.got() === '')).toBe(true);

    // The hog keeps trying; every other request of the address still gets in.
    for (let i = 0; i < 10; i++) {
      const extra = await hogWatch(port, '/v1/services?watch=5&wait=100s');
      await until('the extra watch refused', () => extra.closed(), 5000);
      expect(extra.got().split('\r\n')[0]).toBe('HTTP/1.1 429 Too Many Requests');
      const r = await call(base, 'GET', '/v1/leader');
      expect(r.status).toBe(200);
    }
    expect(await metric(base, /^quorumd_http_watch_refusals_total\{limit="address"\} (\d+)/m)).toBe(14);
    expect(await metric(base, /^quorumd_http_watches_open (\d+)/m)).toBe(4);

    // Another address is not held by this one's watches.
    const other = await hogWatch(port, '/v1/kv/k?watch=5&wait=100s', '127.0.0.2');
    await until('the watch from 127.0.0.2 taken', async () => (await metric(base, /^quorumd_http_watches_open (\d+)/m)) === 5, 5000);
    expect(other.closed()).toBe(false);

    // A watch that ends gives its place back: the address may open another.
    expect((await call(base, 'PUT', '/v1/kv/k0', { body: 'v' })).status).toBe(200);
    await until('the watch of k0 answered', () => held[0]!.closed(), 5000);
    expect(held[0]!.got().split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    await until('a place free again', async () => (await call(base, 'GET', '/v1/kv/x?watch=5&wait=50ms')).status === 404, 5000);
  }, 30_000);

  it('maxWatchesPerAddress sets the bound; a bound that is not a positive integer is refused, naming it', async () => {
    const { port, base } = await start({ maxWatchesPerAddress: 1 });
    const first = await hogWatch(port, '/v1/kv/a?watch=5&wait=100s');
    const second = await hogWatch(port, '/v1/kv/b?watch=5&wait=100s');
    await until('the second refused', () => second.closed(), 5000);
    expect(second.got()).toMatch(/^HTTP\/1\.1 429 [\s\S]*1 watch open from 127\.0\.0\.1 already: at most 1 per address/);
    expect(first.closed()).toBe(false);
    // A write pipelined behind the refused watch is still done and answered: the
    // connection closes only after it (a close right after the 429 cut its answer off).
    const both = await new Promise<string>((resolve, reject) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () =>
        s.end(`GET /v1/kv/c?watch=5&wait=100s HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\nPUT /v1/kv/after HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 1\r\n\r\nv`),
      );
      sockets.add(s);
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('error', reject);
      s.on('close', () => resolve(got));
    });
    expect(both.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 429', 'HTTP/1.1 200']);
    expect((await call(base, 'GET', '/v1/kv/after')).body.toString()).toBe('v');
    await srv!.close();
    srv = undefined;
    for (const bad of [0, 1.5, -1]) {
      await expect(startApiServer(new FakeBackend(), { port: 0, token: TOKEN, maxWatchesPerAddress: bad })).rejects.toThrow(/maxWatchesPerAddress: expected an integer >= 1/);
    }
  }, 20_000);
});
