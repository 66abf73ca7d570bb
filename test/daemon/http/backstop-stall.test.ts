/**
 * After a stall (SIGSTOP, an overloaded board), every deadline is past at once and the
 * answers that arrived meanwhile are still unread in the kernel: Node runs due timers
 * before it reads sockets. The HTTP server's backstop must not call "unknown" (504) a
 * write whose answer is waiting there; it looks after this loop turn's reads.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import type { ClientCallback } from '../../../daemon/runtime/index.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';
import { Staller } from '../../helpers/stall.ts';

const TOKEN = testToken();
const BACKSTOP_MS = 300;
let staller: Staller;

/** A put's answer comes as a datagram, sent while the process is stalled past the backstop. */
class StalledBackend extends FakeBackend {
  override put(key: string, value: Uint8Array, o: { cas?: number }, cb: ClientCallback): void {
    staller.socket.once('message', () => super.put(key, value, o, cb));
    staller.stallWhileAnswerArrives(BACKSTOP_MS + 300);
  }
}

let srv: ApiServer;
beforeAll(async () => {
  staller = await new Staller().start();
  srv = await startApiServer(new StalledBackend(), { port: 0, backstopMs: BACKSTOP_MS, token: TOKEN });
});
afterAll(async () => {
  srv.close();
  await staller.stop();
});

/** One request on a raw connection; the status line of the answer (bounded: 20 s). */
function request(raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(srv.address().port, '127.0.0.1', () => s.write(raw));
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within 20 s; got ${JSON.stringify(got)}`));
    }, 20_000);
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        clearTimeout(timer);
        s.destroy();
        resolve(got.split('\r\n')[0]!);
      }
    });
    s.on('error', reject);
  });
}

it('a write answered during a stall longer than the backstop gets its answer, not a 504', async () => {
  const line = await request(`PUT /v1/kv/x HTTP/1.1\r\nhost: a\r\nauthorization: Bearer ${TOKEN}\r\ncontent-length: 1\r\n\r\nv`);
  expect(line).toBe('HTTP/1.1 200 OK');
});
