/**
 * A client that half-closes its connection after sending its request (`nc -N`, HTTP
 * stacks that shutdown(SHUT_WR) once the request is out) still gets its answer.
 *
 * Node's HTTP server, by default, ends its side as soon as the client's FIN arrives, so
 * a write whose commit came a tick later was never answered although it may have been
 * applied — the client could not tell. The writes here are committed 50 ms later, as a
 * cluster's are. Requests pipelined on one connection are handled in order: a read
 * behind a write sees it.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import type { ClientCallback } from '../../../daemon/runtime/index.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';

const TOKEN = testToken();

/** Commits every put 50 ms after it is asked for, like a cluster's round trip. */
class SlowBackend extends FakeBackend {
  override put(key: string, value: Uint8Array, o: { cas?: number }, cb: ClientCallback): void {
    setTimeout(() => super.put(key, value, o, cb), 50);
  }
}

let srv: ApiServer;
let port: number;
beforeAll(async () => {
  srv = await startApiServer(new SlowBackend(), { port: 0, maxBodyBytes: 1024, maxWatchMs: 2000, backstopMs: 2000, token: TOKEN, leaseFailures: { max: 3, windowMs: 60_000 } });
  port = srv.address().port;
});
afterAll(() => srv.close());

/** Sends `raw`, half-closes, and returns everything the server sent until it closed (bounded: 10 s). */
function sendThenHalfClose(raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(raw));
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within 10 s; got ${JSON.stringify(got)}`));
    }, 10_000);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => {}); // the close below reports what arrived
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

const put = (key: string, value: string) => `PUT /v1/kv/${key} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: ${value.length}\r\n\r\n${value}`;
const get = (key: string) => `GET /v1/kv/${key} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;

describe('a client that half-closes after its request', () => {
  it('gets the answer to a write committed after its FIN, and the connection then closes', async () => {
    const got = await sendThenHalfClose(put('hc1', 'v1'));
    expect(got.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(got).toMatch(/"index":\d+/);
    expect(await sendThenHalfClose(get('hc1'))).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nv1$/);
  });

  it('gets every answer to writes pipelined before its FIN, in order', async () => {
    const got = await sendThenHalfClose(put('hc2', 'a') + put('hc2', 'bb'));
    const indexes = [...got.matchAll(/HTTP\/1\.1 200 OK[\s\S]*?"index":(\d+)/g)].map((m) => Number(m[1]));
    expect(indexes).toHaveLength(2);
    expect(indexes[1]).toBeGreaterThan(indexes[0]!);
    expect(await sendThenHalfClose(get('hc2'))).toMatch(/\r\n\r\nbb$/);
  });

  it('a read pipelined behind a write is handled after the write (RFC 9112 §9.3.2) and sees it', async () => {
    const got = await sendThenHalfClose(put('hc4', 'first') + get('hc4') + put('hc4', 'second') + get('hc4'));
    expect(got.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200']);
    const bodies = got.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
    expect(bodies[1]).toBe('first');
    expect(bodies[3]).toBe('second');
  });

  it('an incomplete request cut off by a FIN still gets 400, not silence', async () => {
    const got = await sendThenHalfClose(`PUT /v1/kv/hc3 HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 10\r\n\r\nabc`);
    expect(got.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  });

  it('requests Node would accept or refuse bare get an answer that names the problem', async () => {
    const auth = `Authorization: Bearer ${TOKEN}`;
    const cases: Array<[string, RegExp]> = [
      // No Host on HTTP/1.1: Node's own 400 had no body.
      [`GET /v1/leader HTTP/1.1\r\n${auth}\r\n\r\n`, /^HTTP\/1\.1 400[\s\S]*needs a Host header/],
      // A length no body here may have: too large, not "not an integer".
      [`PUT /v1/kv/big HTTP/1.1\r\nHost: q\r\n${auth}\r\nContent-Length: 99999999999999999\r\n\r\n`, /^HTTP\/1\.1 413[\s\S]*body of 99999999999999999 bytes, expected at most 1024/],
      // gzip under chunked: Node undoes only the chunks; the compressed bytes were stored as the value.
      [`PUT /v1/kv/gz HTTP/1.1\r\nHost: q\r\n${auth}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n`, /^HTTP\/1\.1 400[\s\S]*only chunked is understood/],
      // A body where none is taken: the message names the endpoint.
      [`DELETE /v1/kv/x?cas=1 HTTP/1.1\r\nHost: q\r\n${auth}\r\nContent-Length: 2\r\n\r\nab`, /^HTTP\/1\.1 400[\s\S]*DELETE \/v1\/kv\/x takes no request body/],
    ];
    for (const [raw, re] of cases) expect(await sendThenHalfClose(raw)).toMatch(re);
    expect(await sendThenHalfClose(get('gz'))).toMatch(/^HTTP\/1\.1 404/);
  });

  it('CONNECT gets 405 naming the method (Node reset the connection without a word), then the connection closes', async () => {
    const connect = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n';
    const got = await sendThenHalfClose(connect + '\x16\x03\x01 tunnel bytes');
    expect(got.split('\r\n')[0]).toBe('HTTP/1.1 405 Method Not Allowed');
    expect(got).toMatch(/\r\nAllow: GET, HEAD, PUT, POST, DELETE\r\n/);
    expect(got).toMatch(/\r\nConnection: close\r\n/);
    const body = JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)) as { error: string; code: string };
    expect(body.code).toBe('method-not-allowed');
    expect(body.error).toMatch(/^CONNECT is not allowed: this is quorumd's HTTP API, not a proxy \(asked to tunnel to "example\.com:443"\)/);
    // A client that does not half-close gets the answer too, and the node closes the connection.
    const open = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(connect));
      let out = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`not closed by the node within 10 s; got ${JSON.stringify(out)}`));
      }, 10_000);
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(timer);
        resolve(out);
      });
    });
    expect(open.split('\r\n')[0]).toBe('HTTP/1.1 405 Method Not Allowed');
    // Behind a write (committed 50 ms later) on the same connection: the write's answer first.
    const behind = await sendThenHalfClose(put('hc7', 'v7') + connect);
    expect(behind.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 405']);
    expect(await sendThenHalfClose(get('hc7'))).toMatch(/\r\n\r\nv7$/);
    // Counted with the other answers.
    expect(await sendThenHalfClose(`GET /metrics HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)).toMatch(/^quorumd_http_responses_total\{code="405"\} [3-9]/m);
  });

  it('a malformed request behind a write: the write is answered first, then the 400', async () => {
    // Garbage where the next request line should be (a body longer than its
    // Content-Length reads the same way); the write before it commits 50 ms later.
    const got = await sendThenHalfClose(put('hc5', 'v5') + 'xx' + put('hc5', 'v6'));
    expect(got.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(got).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*"index":\d+[\s\S]*HTTP\/1\.1 400 Bad Request[\s\S]*malformed HTTP request/);
    expect(await sendThenHalfClose(get('hc5'))).toMatch(/\r\n\r\nv5$/);
  });
});
