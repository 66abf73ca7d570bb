/**
 * A keep-alive connection's credential is remembered while it sends the very same
 * Authorization header (daemon/http/auth.ts): any other header on that connection —
 * another token, an unknown one, none — is checked in full, and the scope is always
 * the one of the header sent.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiAuth } from '../../../daemon/http/auth.ts';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { FakeBackend } from './fake-backend.ts';

const OPS = 'operator-token-0001';
const APP = 'write-token-000001';
const RO = 'read-token-0000001';
const CREDS = [
  { name: 'ops', scope: 'operator' as const, token: OPS },
  { name: 'app', scope: 'write' as const, token: APP },
  { name: 'grafana', scope: 'read' as const, token: RO },
];

describe('ApiAuth.check with a connection', () => {
  it('gives the same credential for the same header, and checks any other header in full', () => {
    const auth = new ApiAuth(CREDS);
    const conn = {};
    expect(auth.check(`Bearer ${APP}`, conn)?.name).toBe('app');
    expect(auth.check(`Bearer ${APP}`, conn)?.name).toBe('app');
    expect(auth.check(`Bearer ${RO}`, conn)?.name).toBe('grafana');
    expect(auth.check(`Bearer ${APP}x`, conn)).toBeUndefined();
    expect(auth.check(`Bearer ${APP.slice(0, -1)}`, conn)).toBeUndefined();
    expect(auth.check(undefined, conn)).toBeUndefined();
    expect(auth.check(`bearer ${RO}`, conn)).toBeUndefined();
    // An unknown header did not replace what the connection last proved.
    expect(auth.check(`Bearer ${RO}`, conn)?.name).toBe('grafana');
    // Another connection proves its own.
    expect(auth.check(`Bearer ${RO}`, {})?.name).toBe('grafana');
    expect(auth.check(`Bearer ${OPS}`)?.name).toBe('ops');
  });
});

let srv: ApiServer;
let port: number;
beforeAll(async () => {
  srv = await startApiServer(new FakeBackend(), { port: 0, credentials: CREDS });
  port = srv.address().port;
});
afterAll(() => srv.close());

/** Sends each request on ONE connection, the next once the previous answer is in; returns the status codes. */
function onOneConnection(requests: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const codes: number[] = [];
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    let i = 0;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer to request ${i + 1} within 10 s; got ${JSON.stringify(codes)}`));
    }, 10_000);
    sock.on('connect', () => sock.write(requests[i]!));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      // One answer: status line, headers, Content-Length bytes of body.
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = Number(/\r\ncontent-length: (\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
      if (buf.length < head + 4 + len) return;
      codes.push(Number(buf.slice(9, 12)));
      buf = buf.slice(head + 4 + len);
      if (++i < requests.length) sock.write(requests[i]!);
      else {
        clearTimeout(timer);
        sock.end();
        resolve(codes);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

// Refusals come without a body: a refused request whose body was not read closes its connection (server.ts).
const req = (method: string, path: string, auth: string | undefined, body = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: q\r\n${auth === undefined ? '' : `Authorization: ${auth}\r\n`}${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n${body}`;

describe('one keep-alive connection, several credentials', () => {
  it('each request is judged by the header it sends: 200, 403, 401 as that header deserves', async () => {
    const codes = await onOneConnection([
      req('PUT', '/v1/kv/a', `Bearer ${APP}`, 'x'), // write: 200
      req('PUT', '/v1/kv/a', `Bearer ${APP}`, 'y'), // the same header again: 200
      req('DELETE', '/v1/kv/a', `Bearer ${RO}`), // read scope on the same connection: 403
      req('GET', '/v1/kv/a', `Bearer ${RO}`), // read: 200
      req('DELETE', '/v1/kv/a', `Bearer ${APP}0`), // unknown token: 401
      req('GET', '/v1/kv/a', undefined), // none: 401
      req('POST', '/v1/fence/n2', `Bearer ${APP}`), // write scope, operator path: 403
      req('POST', '/v1/fence/n2', `Bearer ${OPS}`), // operator: past auth (the fake backend has no fencing: 501)
      req('PUT', '/v1/kv/a', `Bearer ${APP}`, 'v'), // back to the writer: 200
    ]);
    expect(codes).toEqual([200, 200, 403, 200, 401, 401, 403, 501, 200]);
  });
});
