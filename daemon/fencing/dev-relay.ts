/**
 * DEVELOPMENT ONLY: simulated power rails for `quorumd dev`.
 *
 * The dev supervisor owns the "power rail" of every node process. A rail server on
 * 127.0.0.1 answers
 *
 *   GET  /rail/<node>          → 200 {"node","on"}           (the relay's read-back)
 *   POST /rail/<node>?on=0|1   → 200 {"node","on"}           (switch; off = a power cut: SIGKILL of the node and of everything it started, dev-power.ts, kept down; on = start again)
 *
 * and node processes reach it through `DevRelay`, a HAL `Relay` (config
 * `type: dev-relay`). Every request needs the dev cluster's token
 * (`Authorization: Bearer <token>`, the dev API token): other local users may reach
 * 127.0.0.1 too, and must not be able to power nodes off (401 otherwise). This works on a fresh machine (no socat, no pty, no GPIO); on a
 * board use `gpio-relay` or `serial-relay`. Nothing here is used outside `quorumd dev`
 * and its tests.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Done, DoneWith, Relay } from '../../hal/interfaces.ts';
import { httpDateNow } from '../utc-text.ts';

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

export interface DevRelayOptions {
  /** The rail server, http://127.0.0.1:<port>. */
  url: string;
  /** The member whose rail this relay switches. */
  node: string;
  /** Relay name in logs and status. Default `dev-relay:<node>`. */
  name?: string;
  /** Answer deadline per request, ms. Default 2000 (loopback answers in < 5 ms). */
  timeoutMs?: number;
  /** The dev cluster's token, sent as a bearer token. */
  token?: string;
}

/** A HAL Relay that switches a dev node's simulated power rail over loopback HTTP. */
export class DevRelay implements Relay {
  readonly name: string;
  private readonly url: URL;
  private readonly node: string;
  private readonly timeoutMs: number;
  private readonly token: string | undefined;

  constructor(o: DevRelayOptions) {
    if (o === null || typeof o !== 'object') throw new TypeError('DevRelay: expected options { url, node }');
    let u: URL;
    try {
      u = new URL(o.url);
    } catch {
      throw new TypeError(`DevRelay url: expected http://127.0.0.1:<port>, got ${JSON.stringify(o.url)}`);
    }
    if (u.protocol !== 'http:' || !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(u.hostname)) throw new RangeError(`DevRelay url: expected a loopback http URL (dev only), got ${o.url}`);
    if (typeof o.node !== 'string' || !NAME.test(o.node)) throw new TypeError(`DevRelay node: expected a member name, got ${JSON.stringify(o.node)}`);
    this.url = u;
    this.node = o.node;
    this.name = o.name ?? `dev-relay:${o.node}`;
    this.timeoutMs = o.timeoutMs ?? 2000;
    this.token = o.token;
  }

  set(on: boolean, done: Done): void {
    if (typeof on !== 'boolean') return done(new TypeError(`relay ${this.name}: set(on) expects a boolean, got ${typeof on}`));
    this.req('POST', `/rail/${this.node}?on=${on ? 1 : 0}`, (err, v) => {
      if (err) return done(err);
      if (v !== on) return done(new Error(`relay ${this.name}: asked ${on ? 'on' : 'off'}, the rail reports ${v ? 'on' : 'off'}`));
      done(null);
    });
  }

  read(done: DoneWith<boolean>): void {
    this.req('GET', `/rail/${this.node}`, done);
  }

  private req(method: string, path: string, done: DoneWith<boolean>): void {
    let finished = false;
    const finish = (err: Error | null, v?: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done(err, v);
    };
    // agent: false — a new connection per switch. Node's global agent keeps connections
    // alive and the server closes idle ones after 5 s: a power-on 5 s after the fence's
    // last read reused a socket the server was closing ("socket hang up") and left the
    // board off. Relays switch rarely; a connection each costs nothing.
    const r = request({ agent: false, host: this.url.hostname.replace(/^\[(.*)\]$/, '$1'), port: this.url.port, method, path, headers: { 'Content-Length': 0, ...(this.token !== undefined ? { Authorization: `Bearer ${this.token}` } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => finish(new Error(`relay ${this.name}: ${e.message}`)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return finish(new Error(`relay ${this.name}: rail server answered ${res.statusCode}: ${text.slice(0, 200)}`));
        try {
          const j = JSON.parse(text) as { on?: unknown };
          if (typeof j.on !== 'boolean') throw new Error('no boolean "on"');
          finish(null, j.on);
        } catch (e) {
          finish(new Error(`relay ${this.name}: garbled answer from the rail server (${(e as Error).message}): ${JSON.stringify(text.slice(0, 80))}`));
        }
      });
    });
    const timer = setTimeout(() => {
      r.destroy();
      finish(new Error(`relay ${this.name}: no answer from ${this.url.origin} within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    r.on('error', (e) => finish(new Error(`relay ${this.name}: ${this.url.origin}: ${e.message}`)));
    r.end();
  }
}

export interface RailServerOptions {
  /** Current rail state of a node, undefined if no such node. */
  get(node: string): boolean | undefined;
  /** Switch a node's rail; returns the new state (undefined if no such node). */
  set(node: string, on: boolean): boolean | undefined;
  /** Port on 127.0.0.1. Default 0 (any free one). */
  port?: number;
  /** Bearer token every request must carry (the dev cluster's token). Required: the rails are never open. */
  token: string;
}

export interface RailServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** The supervisor side: serves the rails on 127.0.0.1. */
export function startRailServer(o: RailServerOptions): Promise<RailServer> {
  if (typeof o.token !== 'string' || o.token.length < 16) throw new TypeError('startRailServer: token must be a string of at least 16 characters (the dev cluster\'s token)');
  const want = createHash('sha256').update(o.token).digest();
  const server = createServer((req, res) => {
    const send = (status: number, v: unknown) => {
      const body = JSON.stringify(v) + '\n';
      // Date written by us, not by Node's Date#toUTCString (daemon/utc-text.ts says why).
      res.sendDate = false;
      res.writeHead(status, { Date: httpDateNow(), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...(status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {}) });
      res.end(body);
    };
    const m0 = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const given = createHash('sha256').update(m0 ? m0[1]! : '\u0000').digest();
    if (!m0 || !timingSafeEqual(given, want)) return send(401, { error: 'the rail server needs the dev cluster\'s token: Authorization: Bearer <token> (its api.token)' });
    const url = req.url ?? '';
    const m = /^\/rail\/([a-z0-9][a-z0-9-]{0,31})(?:\?on=([01]))?$/.exec(url);
    if (!m) return send(404, { error: `no such endpoint ${JSON.stringify(url.slice(0, 80))}; expected GET /rail/<node> or POST /rail/<node>?on=0|1` });
    const node = m[1]!;
    if (req.method === 'GET' && m[2] === undefined) {
      const v = o.get(node);
      return v === undefined ? send(404, { error: `no node ${node}` }) : send(200, { node, on: v });
    }
    if (req.method === 'POST' && m[2] !== undefined) {
      const v = o.set(node, m[2] === '1');
      return v === undefined ? send(404, { error: `no node ${node}` }) : send(200, { node, on: v });
    }
    return send(405, { error: `expected GET /rail/<node> or POST /rail/<node>?on=0|1, got ${req.method} ${url.slice(0, 80)}` });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        server,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
