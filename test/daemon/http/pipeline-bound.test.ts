/**
 * A connection may have at most 32 requests without an answer. Node's server stops
 * reading a connection only when answers already written pile up unsent; ours are
 * written later (after a commit or a read's confirmation), so a client that pipelined
 * thousands of GETs had them all parsed and queued — found on `quorumd dev`: 8
 * connections with a read token took a node from ~80 MB to ~540 MB, and a leader lost
 * its leadership and was fenced. Past the bound a request is answered 503 untried with
 * Connection: close; the requests before it keep their answers, in order.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import type { ClientCallback } from '../../../daemon/runtime/index.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';

const TOKEN = testToken();

/** Answers every read 30 ms after it is asked for (as a leader confirming its lease), and counts them. */
class SlowReads extends FakeBackend {
  reads = 0;
  override get(key: string, o: { stale: boolean }, cb: ClientCallback): void {
    this.reads++;
    setTimeout(() => super.get(key, o, cb), 30);
  }
}

let srv: ApiServer;
let port: number;
const backend = new SlowReads();
beforeAll(async () => {
  srv = await startApiServer(backend, { port: 0, maxBodyBytes: 1024, maxWatchMs: 2000, backstopMs: 5000, token: TOKEN });
  port = srv.address().port;
});
afterAll(() => srv.close());

const get = (key: string) => `GET /v1/kv/${key} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;

/** Sends `raw` at once and returns everything the server sent until it closed (bounded: 15 s; the client never half-closes). */
function exchange(raw: string, closeAfter?: (got: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(raw));
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within 15 s; got ${got.length} bytes: ${JSON.stringify(got.slice(-300))}`));
    }, 15_000);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (closeAfter?.(got)) s.destroy();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

const statuses = (got: string) => [...got.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

describe('requests pipelined on one connection', () => {
  it('past 32 without an answer: 503 untried and the connection closes; the 32 before it are answered in order', async () => {
    await new Promise<void>((r) => backend.put('p', new TextEncoder().encode('v'), {}, () => r()));
    const readsBefore = backend.reads;
    const got = await exchange(get('p').repeat(2000));
    const st = statuses(got);
    expect(st.slice(0, 32)).toEqual(Array(32).fill(200));
    expect(st[32]).toBe(503);
    expect(st.every((s, i) => (i < 32 ? s === 200 : s === 503))).toBe(true);
    expect(got).toMatch(/too many requests pipelined on one connection \(33 without an answer; at most 32\): not tried/);
    expect(got).toMatch(/"code":"unavailable","tried":false/);
    expect(got).toMatch(/Connection: close/i);
    // Nothing past the bound reached the backend.
    expect(backend.reads - readsBefore).toBe(32);
    const metrics = await exchange(`GET /metrics HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    expect(Number(/^quorumd_http_pipeline_refusals_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('up to 32 are all answered, in order, on a connection that stays open', async () => {
    const keys = Array.from({ length: 32 }, (_, i) => `k${i}`);
    for (const k of keys) await new Promise<void>((r) => backend.put(k, new TextEncoder().encode(k), {}, () => r()));
    const got = await exchange(keys.map(get).join(''), (g) => statuses(g).length === 32);
    expect(statuses(got)).toEqual(Array(32).fill(200));
    const bodies = got.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
    expect(bodies).toEqual(keys);
    expect(got).not.toMatch(/Connection: close/i);
  });
});
