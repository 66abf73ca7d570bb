/**
 * A node that stood still (SIGSTOP, a paused VM, a blocked event loop) past the HTTP
 * server's timeouts still answers the requests that reached it meanwhile.
 *
 * Node judges a client's silence by timers — its header not in within headersTimeout,
 * an idle keep-alive connection past keepAliveTimeout — and runs due timers before it
 * reads the sockets. So after a stall, a client whose request had been waiting in the
 * kernel the whole time looked silent and lost its connection unanswered (found by
 * bench/chaos-soak.ts: a leader stopped 12 s just after it accepted a burst of PUTs).
 *
 * The stall is injected by blocking this process's thread (Atomics.wait) at the point
 * under test — it stands for the node being stopped, not for waiting on anything.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import type { ClientCallback } from '../../../daemon/runtime/index.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';

const TOKEN = testToken();
const HEADERS_TIMEOUT_MS = 100;
/** Node closes an idle keep-alive connection 1 s after this. */
const KEEP_ALIVE_MS = 100;

/** Blocks this thread (the server's and the client's) for `ms`: the process stands still. */
function standStill(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Answers 20 ms after it is asked, as a cluster's round trip does: the connection must still be there then. */
class RoundTripBackend extends FakeBackend {
  override put(key: string, value: Uint8Array, o: { cas?: number }, cb: ClientCallback): void {
    setTimeout(() => super.put(key, value, o, cb), 20);
  }
  override get(key: string, o: { stale: boolean }, cb: ClientCallback): void {
    setTimeout(() => super.get(key, o, cb), 20);
  }
}

let srv: ApiServer;
let port: number;
let stallNextAccept = 0;
beforeAll(async () => {
  srv = await startApiServer(new RoundTripBackend(), { port: 0, token: TOKEN, headersTimeoutMs: HEADERS_TIMEOUT_MS, keepAliveTimeoutMs: KEEP_ALIVE_MS });
  port = srv.address().port;
  // Runs after Node's own connection listener (which starts the header clock).
  srv.server.on('connection', () => {
    const ms = stallNextAccept;
    stallNextAccept = 0;
    if (ms > 0) standStill(ms);
  });
});
afterAll(() => srv.close());

const put = (key: string, value: string) => `PUT /v1/kv/${key} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: ${value.length}\r\n\r\n${value}`;
const get = (key: string) => `GET /v1/kv/${key} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;

/**
 * A raw connection: `steps` are sent one after the other, each once the answer to the one
 * before has arrived (`after` runs right after a step is written). Resolves with what the
 * server sent and whether it closed the connection, once every step is answered, or once
 * the server closes, or after 10 s.
 */
function converse(steps: string[], after: (i: number) => void = () => {}): Promise<{ got: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let answered = 0;
    let ended = false;
    const end = (closedByServer: boolean) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ got, closedByServer });
    };
    const timer = setTimeout(() => end(false), 10_000);
    const send = (i: number) => {
      s.write(steps[i]!);
      after(i);
    };
    s.on('connect', () => send(0));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const n = (got.match(/HTTP\/1\.1 \d{3} /g) ?? []).length;
      if (n > answered) {
        answered = n;
        if (answered === steps.length) end(false);
        else send(answered);
      }
    });
    s.on('error', () => {}); // 'close' reports what arrived
    s.on('close', () => end(true));
  });
}

const statuses = (raw: string) => (raw.match(/HTTP\/1\.1 (\d{3}) /g) ?? []).map((l) => Number(l.slice(9, 12)));

describe('a server that stood still past its header timeout', () => {
  it('answers a write that reached it just after it accepted the connection', async () => {
    stallNextAccept = HEADERS_TIMEOUT_MS * 4;
    const r = await converse([put('stall-a', 'v1')]);
    expect(statuses(r.got)).toEqual([200]);
    const back = await converse([get('stall-a')]);
    expect(statuses(back.got)).toEqual([200]);
    expect(back.got.endsWith('\r\n\r\nv1')).toBe(true);
  });

  it('still drops a client that sent nothing, and one whose header stopped half-way', async () => {
    const silent = await converse(['']);
    expect(silent).toEqual({ got: '', closedByServer: true });
    const partial = await converse([`GET /v1/kv/x HTTP/1.1\r\nHost: q\r\n`]);
    expect(partial).toEqual({ got: '', closedByServer: true });
  });
});

describe('a server that stood still past its keep-alive timeout', () => {
  it('answers the next request sent on the idle connection meanwhile', async () => {
    // The second request leaves, then the whole process stands still past the idle
    // connection's timeout (KEEP_ALIVE_MS + Node's 1 s).
    const r = await converse([put('stall-b', 'v2'), get('stall-b')], (i) => {
      if (i === 1) standStill(KEEP_ALIVE_MS + 1000 + 500);
    });
    expect(statuses(r.got)).toEqual([200, 200]);
    expect(r.got.endsWith('\r\n\r\nv2')).toBe(true);
  });

  it('still closes a connection left idle', async () => {
    const r = await converse([get('stall-b'), '']);
    expect(statuses(r.got)).toEqual([200]);
    expect(r.closedByServer).toBe(true);
  });
});
