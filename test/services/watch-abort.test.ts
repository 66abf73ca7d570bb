/**
 * A service watch (`GET /v1/services[/<name>]?watch=<i>&wait=…`) whose client goes away
 * gives its watch slot back at once, and the registry's key-change listener with it.
 * Real HTTP over loopback: clients send the watch and reset the connection (SO_LINGER 0)
 * right after, as a hostile client would by the thousand; then a new watch must be
 * accepted (the KV and service watches share the server's slots), not answered 503 until
 * the abandoned waits run out.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../daemon/http/server.ts';
import { call } from '../../daemon/client/http.ts';
import { handleServices } from '../../daemon/services/http.ts';
import { ServiceRegistry } from '../../daemon/services/registry.ts';
import { FakeBackend } from '../daemon/http/fake-backend.ts';
import { testToken } from '../helpers/auth.ts';
import { freePort } from '../helpers/ports.ts';
import { until } from '../engines/servers.ts';
import { StillKv } from './still-kv.ts';


const SLOTS = 8;
let srv: ApiServer | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await srv?.close();
  srv = undefined;
});

/** Sends a watch on a raw connection and leaves it open (the answer, if any, is ignored). */
function rawWatch(port: number, path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${testToken()}\r\n\r\n`, () => resolve(s));
    });
    s.on('error', reject);
    sockets.push(s);
  });
}

describe('service watches and closed clients', () => {
  for (const path of ['/v1/services', '/v1/services/web'] as const) {
    it(`${path}: a watch whose client reset the connection frees its slot and its listener at once`, async () => {
      const kv = new StillKv();
      const registry = new ServiceRegistry(kv, { self: 'n1', nodeTtlMs: 600, scriptChecks: false, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } });
      const port = await freePort();
      srv = await startApiServer(new FakeBackend(), { host: '127.0.0.1', port, token: testToken(), maxWatches: SLOTS, maxWatchMs: 120_000, services: { registry, handle: handleServices } });
      const base = `http://127.0.0.1:${port}`;
      const watchPath = `${path}?watch=5&wait=100s`;
      const held = await Promise.all(Array.from({ length: SLOTS }, () => rawWatch(port, watchPath)));
      // Every one is waiting (listening for catalog changes), and the slots are used up.
      await until('every watch waiting', () => kv.listeners === SLOTS, 5000);
      const full = await call(base, 'GET', `${path}?watch=5&wait=1s`);
      expect(full.status).toBe(503);
      expect(full.body.toString()).toMatch(/too many watches open \(8\)/);
      // Refused as it arrived: not tried (another node may have a slot).
      expect(JSON.parse(full.body.toString())).toMatchObject({ code: 'unavailable', tried: false });

      // The clients go away with a reset, long before their waits end.
      for (const s of held) s.resetAndDestroy();
      await until('the closed watches to drop their listeners', () => kv.listeners === 0, 5000);
      // Their slots are free again: KV and service watches are taken at once.
      const kvWatch = await call(base, 'GET', '/v1/kv/k?watch=0&wait=50ms');
      expect(kvWatch.status).not.toBe(503);
      const again = await Promise.all(Array.from({ length: SLOTS }, () => call(base, 'GET', `${path}?watch=5&wait=50ms`)));
      expect(again.map((r) => r.status)).toEqual(Array(SLOTS).fill(200));
      expect(kv.listeners).toBe(0);
    }, 20_000);
  }

  it('a service watch open when the node stops ends at once with 503 "ask another node"', async () => {
    const kv = new StillKv();
    const registry = new ServiceRegistry(kv, { self: 'n1', nodeTtlMs: 600, scriptChecks: false, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } });
    const port = await freePort();
    srv = await startApiServer(new FakeBackend(), { host: '127.0.0.1', port, token: testToken(), maxWatchMs: 120_000, services: { registry, handle: handleServices } });
    const s = await rawWatch(port, '/v1/services/web?watch=5&wait=100s');
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    await until('the watch waiting', () => kv.listeners === 1, 5000);
    const closing = srv.close('node n1 is stopping');
    await until('the watch answered', () => got.includes('\r\n\r\n{'), 5000);
    expect(got).toMatch(/^HTTP\/1\.1 503 /);
    expect(got).toMatch(/\r\nRetry-After: 1\r\n/i);
    expect(got).toMatch(/node n1 is stopping; the watch ended without a change: ask another node/);
    await closing;
    expect(kv.listeners).toBe(0);
  });
});
