/**
 * Idle keep-alive connections give way at a connection bound. A holder of any token
 * could keep every slot of 127.0.0.1 with keep-alive connections that each carried a
 * request every few seconds (authenticated, so never closed for a newcomer): 128 such
 * connections against `quorumd dev` kept 24 of 25 CLI calls out. Now, at the
 * per-address bound (after the address's unauthenticated connections) or the bound in
 * all, the connection idle the longest gives way, if it has been idle for at least
 * `idleEvictMs`. A request in progress (a watch), a request half sent, and a connection
 * idle for less than that are never closed for it.
 */
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer, type HttpOptions } from '../../../daemon/http/server.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';
import { until } from '../../engines/servers.ts';

const TOKEN = testToken();
const IDLE_MS = 300;

let srv: ApiServer | undefined;
const open = new Set<net.Socket>();
afterEach(async () => {
  for (const s of open) s.destroy();
  open.clear();
  await srv?.close();
  srv = undefined;
});

async function start(o: HttpOptions): Promise<number> {
  srv = await startApiServer(new FakeBackend(), { port: 0, token: TOKEN, backstopMs: 5000, maxWatchMs: 60_000, idleEvictMs: IDLE_MS, ...o });
  return srv.address().port;
}

interface Conn {
  s: net.Socket;
  closed: () => boolean;
  got: () => string;
}

/** A connected socket (from `localAddress`) that records what it got and whether it closed. */
function connect(port: number, localAddress = '127.0.0.1'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let closed = false;
    let got = '';
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve({ s, closed: () => closed, got: () => got }));
    open.add(s);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      open.delete(s);
      reject(new Error('closed before it connected'));
    });
    setTimeout(() => reject(new Error('no connect within 10 s')), 10_000).unref();
  });
}

const leader = `GET /v1/leader HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;

/** Sends `raw` on `c` and waits (bounded) for one more answer's status line; 'closed' if the connection closed first. */
async function ask(c: Conn, raw = leader): Promise<string> {
  const before = c.got().length;
  c.s.write(raw);
  await until('an answer or a close', () => c.got().slice(before).includes('\r\n\r\n') || c.closed(), 10_000, 5);
  const mine = c.got().slice(before);
  return mine.includes('\r\n') ? mine.slice(0, mine.indexOf('\r\n')) : 'closed';
}

/** A newcomer: connects and asks once. Its answer's status line, or 'closed' when it was refused. */
/** `n` connections from 127.0.0.1, each with one request answered: keep-alive connections that then sit idle. */
async function answeredConnections(port: number, n: number): Promise<Conn[]> {
  const held: Conn[] = [];
  for (let i = 0; i < n; i++) {
    const c = await connect(port);
    expect(await ask(c)).toBe('HTTP/1.1 200 OK');
    held.push(c);
  }
  return held;
}

async function newcomer(port: number, localAddress?: string): Promise<{ c: Conn; status: string }> {
  const c = await connect(port, localAddress);
  return { c, status: await ask(c) };
}

async function metric(port: number, name: string): Promise<number> {
  const c = await connect(port);
  c.s.write(`GET /metrics HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
  await until('the metrics', () => c.closed(), 10_000, 5);
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(c.got())?.[1]);
}

/** Waits until the idle bound has passed for connections that went idle now (bounded: real time). */
const idleLong = () => {
  const t0 = performance.now();
  return until('the idle bound to pass', () => performance.now() - t0 > IDLE_MS + 50, 5000, 25);
};

describe('idle keep-alive connections at a connection bound', () => {
  it('authenticated keep-alive connections holding every slot: the one idle the longest gives way to a newcomer', async () => {
    const port = await start({ maxConnectionsPerAddress: 4 });
    const held = await answeredConnections(port, 4);
    // held[1] is asked again: held[0] is now the one idle the longest.
    expect(await ask(held[1]!)).toBe('HTTP/1.1 200 OK');
    expect(await ask(held[2]!)).toBe('HTTP/1.1 200 OK');
    expect(await ask(held[3]!)).toBe('HTTP/1.1 200 OK');
    await idleLong();
    const n = await newcomer(port);
    expect(n.status).toBe('HTTP/1.1 200 OK');
    await until('held[0] closed', () => held[0]!.closed(), 10_000, 5);
    expect(held.slice(1).every((c) => !c.closed())).toBe(true);
    expect(await metric(port, 'quorumd_http_idle_connections_evicted_total')).toBeGreaterThanOrEqual(1);
    expect(await metric(port, 'quorumd_http_connections_refused_total')).toBe(0);
  });

  /** A connection waiting in a watch, and one whose next request is half sent (its first was answered). */
  async function watchAndHalf(port: number): Promise<{ watch: Conn; half: Conn }> {
    const watch = await connect(port);
    expect(await ask(watch)).toBe('HTTP/1.1 200 OK');
    watch.s.write(`GET /v1/kv/w?watch=0&wait=60s HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const half = await connect(port);
    expect(await ask(half)).toBe('HTTP/1.1 200 OK');
    // Its next request: the request line and part of the header, the rest held back.
    half.s.write(`GET /v1/leader HTTP/1.1\r\nHost: q\r\n`);
    return { watch, half };
  }
  /** The half-sent request completes and is answered on its connection. */
  async function completes(half: Conn): Promise<void> {
    const before = half.got().length;
    half.s.write(`Authorization: Bearer ${TOKEN}\r\n\r\n`);
    await until('the half-sent request answered', () => half.got().slice(before).includes('\r\n\r\n'), 10_000, 5);
    expect(half.got().slice(before)).toMatch(/^HTTP\/1\.1 200 OK/);
  }

  it('a watch and a request half sent are passed over: the idle connection gives way', async () => {
    const port = await start({ maxConnectionsPerAddress: 3 });
    const { watch, half } = await watchAndHalf(port);
    const idle = await connect(port);
    expect(await ask(idle)).toBe('HTTP/1.1 200 OK');
    await idleLong();
    // `half` has been idle the longest by its last answer, but its parser holds a request's start.
    const n = await newcomer(port);
    expect(n.status).toBe('HTTP/1.1 200 OK');
    await until('the idle one closed', () => idle.closed(), 10_000, 5);
    expect(watch.closed() || half.closed()).toBe(false);
    await completes(half);
  });

  it('when only a watch and a request half sent hold the slots, the newcomer is refused', async () => {
    const port = await start({ maxConnectionsPerAddress: 2 });
    const { watch, half } = await watchAndHalf(port);
    await idleLong();
    expect((await newcomer(port)).status).toBe('closed');
    expect(watch.closed() || half.closed()).toBe(false);
    await completes(half);
  });

  it('the bound in all: the connection of any address idle the longest gives way', async () => {
    const port = await start({ maxConnectionsPerAddress: 10, maxConnections: 3 });
    const held = await answeredConnections(port, 3);
    await idleLong();
    // From another loopback address: its own bound is far, the bound in all is reached.
    const n = await newcomer(port, '127.0.0.2');
    expect(n.status).toBe('HTTP/1.1 200 OK');
    await until('the longest idle closed', () => held[0]!.closed(), 10_000, 5);
    expect(held[1]!.closed() || held[2]!.closed()).toBe(false);
  });

  it('connections idle for less than the bound are never closed: the newcomer is refused', async () => {
    const port = await start({ maxConnectionsPerAddress: 3, idleEvictMs: 60_000 });
    const held = await answeredConnections(port, 3);
    await idleLong();
    expect((await newcomer(port)).status).toBe('closed');
    for (const c of held) expect(await ask(c)).toBe('HTTP/1.1 200 OK');
  });
});
