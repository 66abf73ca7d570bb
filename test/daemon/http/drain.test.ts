/**
 * A planned stop of the API server (ApiServer.drain, allAnswered, close): no request
 * the server received loses its connection without an answer.
 *
 * Before, close() destroyed every connection at once: a write waiting for its commit was
 * applied while its client saw the connection drop, and could not tell. Now:
 *
 *   - a request in progress when the stop begins gets its real answer (the backend still
 *     runs), with `Connection: close`;
 *   - a request that reaches the server afterwards, on a kept-alive connection, is
 *     answered 503 "not tried: ask another node" with Retry-After; a new connection is
 *     refused (the listener is closed) once the connections the kernel had completed
 *     before (the listen backlog) were accepted and answered, not reset by the close;
 *   - a watch ends at once with such a 503;
 *   - a keep-alive connection that was just used is not closed under its client, which
 *     may be sending on it at that moment: a request on it is answered;
 *   - what the backend never answered gets 504 (a write: outcome unknown) or 503 (a read)
 *     from close(), not a dropped connection.
 *
 * Real HTTP over loopback, raw sockets (the test sees exactly what the client would).
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DRAIN_LISTEN_MAX_MS, startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import type { ClientCallback } from '../../../daemon/runtime/index.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';
import { until } from '../../engines/servers.ts';
import { Staller } from '../../helpers/stall.ts';

const TOKEN = testToken();

/** Blocks this thread (the server's and the clients') for `ms`: the process stands still (SIGSTOP, a starved board). */
function standStill(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Puts to keys starting with `held/` wait until the test lets them through; so do reads of `held/...`. */
class HeldBackend extends FakeBackend {
  held: Array<() => void> = [];
  override put(key: string, value: Uint8Array, o: { cas?: number }, cb: ClientCallback): void {
    if (key.startsWith('held/')) this.held.push(() => super.put(key, value, o, cb));
    else super.put(key, value, o, cb);
  }
  override get(key: string, o: { stale: boolean }, cb: ClientCallback): void {
    if (key.startsWith('held/') && !o.stale) this.held.push(() => super.get(key, o, cb));
    else super.get(key, o, cb);
  }
}

let srv: ApiServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await srv?.close();
  srv = undefined;
});

/** A raw keep-alive connection: what the server sent, and whether it closed it. */
interface Conn {
  s: net.Socket;
  data: () => string;
  ended: () => boolean;
}

function connect(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    let end = false;
    s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
    s.on('end', () => (end = true));
    s.on('close', () => (end = true));
    s.once('connect', () => resolve({ s, data: () => buf, ended: () => end }));
    s.once('error', reject);
    sockets.push(s);
  });
}

const put = (key: string, body = 'v') => `PUT /v1/kv/${key} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;

/** The complete answers in `raw` (status, headers lower-cased, body). */
function answers(raw: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const out: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let rest = raw;
  for (let i = 0; i < 100; i++) {
    const h = rest.indexOf('\r\n\r\n');
    if (h < 0) break;
    const lines = rest.slice(0, h).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const len = Number(headers['content-length'] ?? 0);
    if (rest.length < h + 4 + len) break;
    out.push({ status: Number(lines[0]!.split(' ')[1]), headers, body: rest.slice(h + 4, h + 4 + len) });
    rest = rest.slice(h + 4 + len);
  }
  return out;
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('a planned stop of the HTTP API', () => {
  it('connections the kernel completed before the stop but the process had not accepted yet are answered, not reset by the listener closing', async () => {
    // A burst of clients that connected and sent their PUTs just before a SIGTERM: on real
    // processes 18-35 of 56 were reset (ECONNREFUSED never, ECONNRESET after sending), as
    // the listener closed with them in its backlog. The process stands still here for
    // 100 ms while the kernel completes the handshakes, then the stop begins.
    const b = new FakeBackend();
    srv = await startApiServer(b, { port: 0, token: TOKEN });
    const port = srv.address().port;
    const outcomes: Array<Promise<string>> = [];
    for (let i = 0; i < 56; i++) {
      outcomes.push(
        new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => s.write(put(`burst/${i}`, 'b')));
          sockets.push(s);
          let buf = '';
          s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
          s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
          s.once('close', () => resolve(answers(buf)[0] ? `answered ${answers(buf)[0]!.status}` : 'closed without an answer'));
        }),
      );
    }
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        const end = performance.now() + 100;
        while (performance.now() < end); // the process stands still (a loaded board)
        srv!.drain('node n1 is stopping');
        resolve();
      }, 1),
    );
    const got = await Promise.all(outcomes);
    const tally: Record<string, number> = {};
    for (const g of got) tally[g] = (tally[g] ?? 0) + 1;
    // Every one answered: 503 (not tried: the stop had begun when it was read).
    expect(tally).toEqual({ 'answered 503': 56 });
  });

  it('connections queued when the stop began are answered even if the process stands still right after it began', async () => {
    // The listener closes once the connections the kernel had queued at the stop were
    // accepted, or after DRAIN_ACCEPT_MAX_MS without an accept. A process that stands
    // still (SIGSTOP, a loaded board starving it) just after the stop began came back with
    // that time counted as "no accept": its first check closed the listener before it
    // accepted any of them, and all 56 were reset (ECONNRESET after sending their PUT).
    // Time the process did not run is not time without an accept.
    const b = new FakeBackend();
    srv = await startApiServer(b, { port: 0, token: TOKEN });
    const port = srv.address().port;
    const outcomes: Array<Promise<string>> = [];
    for (let i = 0; i < 56; i++) {
      outcomes.push(
        new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => s.write(put(`paused/${i}`, 'b')));
          sockets.push(s);
          let buf = '';
          s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
          s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
          s.once('close', () => resolve(answers(buf)[0] ? `answered ${answers(buf)[0]!.status}` : 'closed without an answer'));
        }),
      );
    }
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        const end = performance.now() + 100;
        while (performance.now() < end); // the kernel completes the handshakes
        srv!.drain('node n1 is stopping');
        standStill(DRAIN_LISTEN_MAX_MS + 500); // and the process stands still right after the stop began
        resolve();
      }, 1),
    );
    const got = await Promise.all(outcomes);
    const tally: Record<string, number> = {};
    for (const g of got) tally[g] = (tally[g] ?? 0) + 1;
    expect(tally).toEqual({ 'answered 503': 56 });
  });

  it('close() right after drain() (nothing was in progress) still accepts and answers the connections queued at the stop, also across a stand-still', async () => {
    // A node's stop: drain(), then — nothing in progress to wait for — close() at once.
    // close() closed the listener once no accepted connection was left, which was at
    // once when the stop found the queued ones not accepted yet, or after a stand-still
    // (its bound counted the time the process did not run): they were reset.
    const b = new FakeBackend();
    srv = await startApiServer(b, { port: 0, token: TOKEN });
    const port = srv.address().port;
    const outcomes: Array<Promise<string>> = [];
    for (let i = 0; i < 56; i++) {
      outcomes.push(
        new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => s.write(put(`closed/${i}`, 'b')));
          sockets.push(s);
          let buf = '';
          s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
          s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
          s.once('close', () => resolve(answers(buf)[0] ? `answered ${answers(buf)[0]!.status}` : 'closed without an answer'));
        }),
      );
    }
    let closed: Promise<void> | undefined;
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        const end = performance.now() + 100;
        while (performance.now() < end); // the kernel completes the handshakes
        srv!.drain('node n1 is stopping');
        closed = srv!.close('node n1 is stopping');
        // close() has begun its wait (it looks after this loop turn's reads) when the
        // process stands still.
        setImmediate(() => {
          standStill(DRAIN_LISTEN_MAX_MS + 500);
          resolve();
        });
      }, 1),
    );
    const got = await Promise.all(outcomes);
    await closed;
    srv = undefined;
    const tally: Record<string, number> = {};
    for (const g of got) tally[g] = (tally[g] ?? 0) + 1;
    expect(tally).toEqual({ 'answered 503': 56 });
  });

  it('allAnswered: a stand-still during the wait is not time waited; the answer that arrived meanwhile counts', async () => {
    // A node's stop waits (bounded) for the answers of the requests in progress, then
    // answers what is left 504 "outcome unknown". After a stand-still the bound was
    // past at the first look, before the commit that arrived meanwhile (unread in the
    // kernel: Node runs timers before it reads sockets) was read: a write that was about
    // to be acknowledged got a 504.
    const staller = await new Staller().start();
    try {
      const b = new HeldBackend();
      srv = await startApiServer(b, { port: 0, token: TOKEN });
      const c = await connect(srv.address().port);
      c.s.write(put('held/stall'));
      await until('the write to be held', async () => b.held.length === 1, 10_000);
      // Its answer comes as a datagram, sent while the process stands still past the bound.
      staller.socket.once('message', () => b.held.shift()!());
      srv.drain('node n1 is stopping');
      const all = srv.allAnswered(300);
      setImmediate(() => staller.stallWhileAnswerArrives(600));
      expect(await all).toBe(true);
      await until('the answer', async () => answers(c.data()).length === 1, 10_000);
      expect(answers(c.data())[0]!.status).toBe(200);
    } finally {
      await staller.stop();
    }
  });

  it('a write in progress gets its real answer; a request after the stop began gets 503 with Retry-After; new connections are refused', async () => {
    const b = new HeldBackend();
    srv = await startApiServer(b, { port: 0, token: TOKEN });
    const port = srv.address().port;
    const writer = await connect(port);
    const other = await connect(port);
    writer.s.write(put('held/a', 'x'));
    await until('the write waiting in the backend', () => b.held.length === 1, 5000);
    other.s.write(get('/v1/status'));
    await until('the other connection answered once (kept alive)', () => answers(other.data()).length === 1, 5000);

    srv.drain('node n1 is stopping');
    // The kept-alive connection was used a moment ago: still open, and its next request is answered.
    other.s.write(put('k', 'y'));
    // New connections are refused once the connections the kernel held were accepted (a
    // few ms; a connection made meanwhile is accepted and answered 503 like this one).
    await until('new connections refused', async () => (await refused(port)) === 'ECONNREFUSED', 5000);
    await until('the request after the stop answered', () => answers(other.data()).length === 2, 5000);
    const late = answers(other.data())[1]!;
    expect(late.status).toBe(503);
    expect(late.headers['retry-after']).toBe('1');
    expect(late.headers.connection).toBe('close');
    // Machine-readable "not tried" (a --node list goes on to the next node on it).
    expect(JSON.parse(late.body)).toMatchObject({ code: 'unavailable', tried: false });
    expect(JSON.parse(late.body).error).toMatch(/node n1 is stopping; this request was not tried: ask another node/);
    expect(b.kv.get('k')).toBeUndefined();
    await until('that connection closed by the server', () => other.ended(), 5000);

    // The write still waits; its connection too.
    expect(writer.ended()).toBe(false);
    expect(await srv.allAnswered(50)).toBe(false);
    b.held.shift()!();
    await until('the write answered', () => answers(writer.data()).length === 1, 5000);
    const a = answers(writer.data())[0]!;
    expect(a.status).toBe(200);
    expect(a.headers.connection).toBe('close');
    expect(JSON.parse(a.body)).toEqual({ index: 1 });
    expect(await srv.allAnswered(1000)).toBe(true);
    await until('the write\'s connection closed after its answer', () => writer.ended(), 5000);
    await srv.close('node n1 is stopping');
  }, 30_000);

  it('close(): what the backend never answered gets 504 (a write) or 503 (a read), not a dropped connection', async () => {
    const b = new HeldBackend();
    srv = await startApiServer(b, { port: 0, token: TOKEN, backstopMs: 60_000 });
    const port = srv.address().port;
    const w = await connect(port);
    const r = await connect(port);
    w.s.write(put('held/w'));
    r.s.write(get('/v1/kv/held/r'));
    await until('both waiting in the backend', () => b.held.length === 2, 5000);
    await srv.close();
    await until('both answered', () => answers(w.data()).length === 1 && answers(r.data()).length === 1, 5000);
    const wa = answers(w.data())[0]!;
    expect(wa.status).toBe(504);
    expect(JSON.parse(wa.body)).toMatchObject({ code: 'outcome-unknown' });
    expect(JSON.parse(wa.body).error).toMatch(/may or may not have been applied/);
    expect(JSON.parse(wa.body).tried).toBeUndefined();
    const ra = answers(r.data())[0]!;
    expect(ra.status).toBe(503);
    expect(JSON.parse(ra.body)).toMatchObject({ code: 'unavailable' });
    // The read was under way (forwarded, a ReadIndex round): nothing changed, but it was tried.
    expect(JSON.parse(ra.body).tried).toBeUndefined();
    await until('both connections closed', () => w.ended() && r.ended(), 5000);
  }, 30_000);

  it('close(): a write whose body had not all arrived gets 503 (never tried), not 504', async () => {
    const b = new HeldBackend();
    srv = await startApiServer(b, { port: 0, token: TOKEN });
    const port = srv.address().port;
    const c = await connect(port);
    // 10 bytes announced, 3 sent.
    c.s.write(`PUT /v1/kv/k HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 10\r\n\r\nabc`);
    await until('the request received', () => srv!.counts.size === 0 && srv!.allAnswered(0).then((x) => !x), 5000);
    await srv.close('node n1 is stopping');
    await until('answered', () => answers(c.data()).length === 1, 5000);
    const a = answers(c.data())[0]!;
    expect(a.status).toBe(503);
    expect(JSON.parse(a.body).error).toMatch(/node n1 is stopping; the request was not answered before it stopped \(its body had not arrived: nothing was changed\)/);
    expect(JSON.parse(a.body).tried).toBe(false);
    expect(b.kv.get('k')).toBeUndefined();
  }, 30_000);

  it('a watch ends at once with 503 "ask another node"', async () => {
    srv = await startApiServer(new FakeBackend(), { port: 0, token: TOKEN, maxWatchMs: 120_000 });
    const port = srv.address().port;
    const c = await connect(port);
    c.s.write(get('/v1/kv/never?watch=0&wait=100s'));
    await new Promise((res) => setTimeout(res, 100));
    const t0 = performance.now();
    const closing = srv.close('node n1 is stopping');
    await until('the watch answered', () => answers(c.data()).length === 1, 5000);
    expect(performance.now() - t0).toBeLessThan(5000);
    const a = answers(c.data())[0]!;
    expect(a.status).toBe(503);
    expect(a.headers['retry-after']).toBe('1');
    expect(JSON.parse(a.body).error).toMatch(/node n1 is stopping; the watch ended without a change: ask another node/);
    // The watch was under way: ended without a change, but not "not tried".
    expect(JSON.parse(a.body).tried).toBeUndefined();
    await closing;
  }, 30_000);

  it('a keep-alive connection just used is not closed under its client: a request sent on it a moment later is answered', async () => {
    srv = await startApiServer(new FakeBackend(), { port: 0, token: TOKEN });
    const port = srv.address().port;
    const c = await connect(port);
    c.s.write(get('/v1/status'));
    await until('answered once', () => answers(c.data()).length === 1, 5000);
    const closing = srv.close();
    // A client that picks this pooled connection now sends on it: answered, not reset.
    c.s.write(put('k'));
    await until('the second request answered', () => answers(c.data()).length === 2, 5000);
    expect(answers(c.data())[1]!.status).toBe(503);
    await closing;
    expect(c.ended()).toBe(true);
  }, 30_000);
});
