/**
 * `quorumd services watch` when its address already holds as many watches as the node
 * allows it (http.maxWatchesPerAddress: 429 too-many-watches): it waits and asks again,
 * as after a 503, instead of giving up at the first refusal — a watcher started beside
 * other local watchers must not die because they were first. Real HTTP over loopback.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../daemon/http/server.ts';
import { handleServices } from '../../daemon/services/http.ts';
import { servicesWatch } from '../../daemon/client/services.ts';
import { ServiceRegistry } from '../../daemon/services/registry.ts';
import { FakeBackend } from '../daemon/http/fake-backend.ts';
import { testToken } from '../helpers/auth.ts';
import { until } from '../engines/servers.ts';
import { StillKv } from './still-kv.ts';


let srv: ApiServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await srv?.close();
  srv = undefined;
});

describe('quorumd services watch and the per-address watch bound', () => {
  it('a 429 too-many-watches is waited out: the watch prints once a place is free', async () => {
    const registry = new ServiceRegistry(new StillKv(), { self: 'n1', nodeTtlMs: 600, scriptChecks: false, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } });
    srv = await startApiServer(new FakeBackend(), { port: 0, token: testToken(), maxWatchesPerAddress: 1, maxWatchMs: 120_000, services: { registry, handle: handleServices } });
    const port = srv.address().port;
    const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { Authorization: `Bearer ${testToken()}` } })).text();
    // Another local watcher holds the address's one place.
    const other = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(`GET /v1/services?watch=5&wait=100s HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${testToken()}\r\n\r\n`, () => resolve(s)));
      s.on('error', reject);
      sockets.push(s);
    });
    await until('the other watch open', async () => /^quorumd_http_watches_open 1$/m.test(await metrics()), 5000);
    const out: string[] = [];
    const err: string[] = [];
    const watching = servicesWatch(`http://127.0.0.1:${port}`, undefined, { count: 1, waitSec: 1 }, { out: (s) => out.push(String(s)), err: (s) => err.push(s) });
    await until('the CLI refused once', async () => /^quorumd_http_watch_refusals_total\{limit="address"\} [1-9]/m.test(await metrics()), 5000);
    // The other watcher goes away; the CLI gets in at its next try.
    other.resetAndDestroy();
    expect(await watching).toBe(0);
    expect(err).toEqual([]);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0]!)).toEqual({ index: 0, services: {} });
  }, 20_000);
});
