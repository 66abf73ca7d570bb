/**
 * A KV watch (`GET /v1/kv/<key>?watch=<i>&wait=…`) whose client goes away gives its
 * watch slot and its key-change listener back at once, however early it went:
 *
 *   - while the watch's first read was still on its way (a read that answers later, as a
 *     node's through etcd or ZooKeeper does): the watch listened for the close only after
 *     that read, so a close during it was never seen;
 *   - before the watch's handler ran at all (the watch pipelined behind another request
 *     on a connection that was then reset): its response never had the socket, so it
 *     never reports a close; only the connection does.
 *
 * In both cases the watch held its slot for its whole wait (here 100 s), and with the
 * slots used up every KV and service watch of the node was answered 503. Real HTTP over
 * loopback; the clients reset their connections (SO_LINGER 0), as a hostile client would.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { call } from '../../../daemon/client/http.ts';
import type { ClientCallback } from '../../../daemon/runtime/index.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';
import { until } from '../../engines/servers.ts';

const TOKEN = testToken();

/** Counts key-change listeners; reads of `slowKey` wait until the test lets them through. */
class WatchedBackend extends FakeBackend {
  listeners = 0;
  slowKey: string | undefined;
  parked: Array<() => void> = [];
  override get(key: string, o: { stale: boolean }, cb: ClientCallback): void {
    if (key === this.slowKey) this.parked.push(() => super.get(key, o, cb));
    else super.get(key, o, cb);
  }
  override onKeyChange(key: string, fn: () => void): () => void {
    const off = super.onKeyChange(key, fn);
    this.listeners++;
    let on = true;
    return () => {
      if (on) this.listeners--;
      on = false;
      off();
    };
  }
}

let srv: ApiServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await srv?.close();
  srv = undefined;
});

const watchReq = (key: string) => `GET /v1/kv/${key}?watch=0&wait=100s HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;

/** A raw connection that has sent `raw` (the answer, if any, is ignored). */
function send(port: number, raw: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(raw, () => resolve(s)));
    s.on('error', reject);
    sockets.push(s);
  });
}

/** Open connections of the server (bounded by the caller's until()). */
const connections = (s: ApiServer) => new Promise<number>((r) => s.server.getConnections((_e, n) => r(n)));

describe('KV watches and clients that went away', () => {
  it('a client that reset while the first read was on its way: slot and listener freed at once', async () => {
    const b = new WatchedBackend();
    b.slowKey = 'slow';
    srv = await startApiServer(b, { port: 0, token: TOKEN, maxWatches: 1, maxWatchMs: 120_000, backstopMs: 60_000 });
    const port = srv.address().port;
    const base = `http://127.0.0.1:${port}`;
    const s = await send(port, watchReq('slow'));
    await until('the watch to start its first read', () => b.parked.length === 1, 5000);
    s.resetAndDestroy();
    await until('the server to see the connection closed', async () => (await connections(srv!)) === 0, 5000);
    // The read answers now: nobody is left to wait for.
    b.parked.shift()!();
    b.slowKey = undefined;
    await until('the closed watch to give back its slot', async () => (await call(base, 'GET', '/v1/kv/other?watch=0&wait=50ms')).status !== 503, 5000);
    expect(b.listeners).toBe(0);
  }, 20_000);

  it('a watch pipelined behind another on a connection reset before its handler ran: slot and listener freed at once', async () => {
    const b = new WatchedBackend();
    srv = await startApiServer(b, { port: 0, token: TOKEN, maxWatches: 2, maxWatchMs: 120_000, backstopMs: 60_000 });
    const port = srv.address().port;
    const base = `http://127.0.0.1:${port}`;
    // Two watches on one connection: the second waits for the first (requests on a
    // connection are handled in order) and has no socket of its own yet.
    const s = await send(port, watchReq('first') + watchReq('second'));
    await until('the first watch waiting', () => b.listeners === 1, 5000);
    s.resetAndDestroy();
    await until('the server to see the connection closed', async () => (await connections(srv!)) === 0, 5000);
    // Both slots come back: two new watches are taken (not 503) and end after their 50 ms.
    await until('both closed watches to give back their slots', async () => {
      const r = await Promise.all([call(base, 'GET', '/v1/kv/x?watch=0&wait=50ms'), call(base, 'GET', '/v1/kv/y?watch=0&wait=50ms')]);
      return r.every((x) => x.status === 404);
    }, 5000);
    expect(b.listeners).toBe(0);
  }, 20_000);
});
