/**
 * A small HTTP client for the node API (CLI clients, the end-to-end test, benchmarks):
 * node:http (or node:https for https:// nodes) with keep-alive, a hard timeout per
 * request, and the bearer token found as daemon/client/token.ts says (flag,
 * environment, the node's data directory).
 *
 * HTTPS: the node's certificate is checked against `QUORUMD_API_CA_FILE` (or Node's
 * root CAs); a client certificate, when the node asks for one, comes from
 * `QUORUMD_API_CERT_FILE` and `QUORUMD_API_KEY_FILE`.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { nodeHttps } from '../../hal/lazy-builtins.ts';
import { findApiToken, type TokenSources } from './token.ts';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /**
   * callFirstReached: the nodes of the `--node` list passed over before this answer
   * (not reached, or answered that they did not try the request), each with what
   * happened, for a failure's message. Empty or absent when the first node answered.
   */
  passedOver?: string[];
}

export class ClientError extends Error {
  override readonly name = 'ClientError';
  /**
   * The request never reached the node: the connection could not be made (refused, no
   * route, unknown host), so nothing was applied. False when it may have been sent
   * (a timeout, a connection lost mid-way): a write's outcome is then unknown.
   */
  readonly notSent: boolean;
  /**
   * The command's own input was bad (a --node URL that is not one, a token file that
   * cannot be read or holds no token, an unreadable TLS file): no request was made,
   * so the exit status is the bad-input one (2), never "unknown" or "unavailable".
   */
  readonly badInput: boolean;
  /**
   * With notSent: a node of the `--node` list did receive the request but answered
   * that it did not try it (it is stopping, booting); the others were not reached.
   */
  readonly untried: boolean;
  constructor(message: string, o: { notSent?: boolean; badInput?: boolean; untried?: boolean } = {}) {
    super(message);
    this.badInput = o.badInput ?? false;
    this.notSent = this.badInput || (o.notSent ?? false) || (o.untried ?? false);
    this.untried = o.untried ?? false;
  }
}

/** Socket errors that happen before a request could be sent: nothing reached the node. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export const agent = new Agent({ keepAlive: true, maxSockets: 256 });
let httpsAgent: HttpsAgent | undefined;

function tlsAgent(): HttpsAgent {
  if (httpsAgent) return httpsAgent;
  const file = (v: string | undefined, what: string) => {
    if (!v) return undefined;
    try {
      return readFileSync(v);
    } catch (err) {
      throw new ClientError(`${what} ${v}: ${(err as Error).message}`, { badInput: true });
    }
  };
  const ca = file(process.env.QUORUMD_API_CA_FILE, 'QUORUMD_API_CA_FILE');
  const cert = file(process.env.QUORUMD_API_CERT_FILE, 'QUORUMD_API_CERT_FILE');
  const key = file(process.env.QUORUMD_API_KEY_FILE, 'QUORUMD_API_KEY_FILE');
  httpsAgent = new (nodeHttps().Agent)({ keepAlive: true, maxSockets: 256, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
  return httpsAgent;
}

/** Where `call` looks for the token when no `token` option is given (the CLI sets its flags here). */
let defaultSources: TokenSources = {};
export function setTokenSources(s: TokenSources): void {
  defaultSources = s;
}

/** The token `call` would send, and where it came from (errors name the places tried). */
export function currentToken(): ReturnType<typeof findApiToken> {
  try {
    return findApiToken(defaultSources);
  } catch (err) {
    throw new ClientError((err as Error).message, { badInput: true });
  }
}

/** Parses and checks a node URL (`http://host:port`); throws ClientError naming it. */
export function nodeUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ClientError(`--node ${JSON.stringify(raw)} is not a URL; expected http://host:port, e.g. http://127.0.0.1:7071`, { badInput: true });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ClientError(`--node ${JSON.stringify(raw)}: expected an http:// or https:// URL`, { badInput: true });
  return u;
}

/**
 * Parses and checks a `--node` value: one URL or several, comma-separated
 * (`http://a:7071,http://b:7071`). Every URL is checked before anything is sent, so a
 * bad one is bad input (exit 2) wherever it stands in the list.
 */
export function nodeUrls(list: string): URL[] {
  const parts = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new ClientError(`--node ${JSON.stringify(list)}: expected one URL or several, comma-separated, e.g. http://127.0.0.1:7071,http://127.0.0.1:7072`, { badInput: true });
  return parts.map(nodeUrl);
}

export interface CallOptions {
  body?: Uint8Array | string;
  timeoutMs?: number;
  /**
   * How long the connection may take to open (default: the smaller of 5 s and
   * timeoutMs). Past it nothing was sent, so the request counts as never received and
   * `callFirstReached` goes on to the next node; past timeoutMs it may have been.
   */
  connectTimeoutMs?: number;
  token?: string | undefined;
  /**
   * callFirstReached: `code`s of the JSON error body on which, beyond the untried 503,
   * the next node of the list is asked, because the answer certainly means that nothing
   * was done and another node is the one to ask (`fence confirm`: 409 `not-leader`).
   */
  passOverCodes?: readonly string[];
}

/**
 * Whether an answer lets `callFirstReached` go on to the next node of the list, and
 * why (the text for the failure's message), else undefined. Only an answer that
 * certainly says nothing was done here:
 *
 *  - 503 with `"tried": false` in its JSON body: the node refused the request as it
 *    arrived for a reason of its own (it is stopping or still booting, its watches or
 *    the connection's pipeline are full) — daemon/http/server.ts NOT_TRIED. Any other 503 (no leader, no
 *    quorum: the request was tried, and the other nodes share the cluster's state), 504,
 *    or an answer without the field (a node of an older build) ends the command.
 *  - an error whose `code` is one of `passOverCodes` (the command knows what it means).
 *
 * A body that is not a JSON object, or a field of another type than the one expected
 * (`"tried": "false"`, `0`), is not taken for the marker.
 */
export function passOverReason(r: Reply, passOverCodes: readonly string[] = []): string | undefined {
  if (r.status < 400) return undefined;
  let j: unknown;
  try {
    j = JSON.parse(r.body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) return undefined;
  const o = j as { tried?: unknown; code?: unknown; error?: unknown };
  const said = typeof o.error === 'string' ? o.error : typeof o.code === 'string' ? o.code : '';
  if (r.status === 503 && o.tried === false) return `${r.status} (not tried): ${said}`;
  if (typeof o.code === 'string' && passOverCodes.includes(o.code)) return `${r.status} ${o.code}: ${said}`;
  return undefined;
}

/**
 * One request to the first node of a `--node` list that takes it. Passed over for the
 * next one is a node that certainly did nothing with the request: it did not receive
 * it (connection refused, no route, unknown host, no connection within the connect
 * timeout), or it answered that it did not try it (passOverReason: a stopping node's
 * 503 with `"tried": false`, or a code the command names). Anything else ends it, as
 * one `call` would: any other answer, or a connection lost or a timeout after the
 * request was sent (a write's outcome is then unknown, and sending it to another node
 * could apply it twice). The last node's answer is returned whatever it is, with the
 * nodes passed over before it in `passedOver`. When no node was reached, the
 * ClientError names each one and what happened (notSent: nothing was done).
 */
export async function callFirstReached(nodes: string | URL[], method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const urls = typeof nodes === 'string' ? nodeUrls(nodes) : nodes;
  const missed: string[] = [];
  let answered = false;
  for (const [i, u] of urls.entries()) {
    let r: Reply;
    try {
      r = await call(u, method, path, opts);
    } catch (err) {
      if (!(err instanceof ClientError) || err.badInput || !err.notSent) throw err;
      if (urls.length === 1) throw err;
      missed.push(err.message);
      continue;
    }
    const why = i < urls.length - 1 ? passOverReason(r, opts.passOverCodes) : undefined;
    if (why === undefined) return missed.length > 0 ? { ...r, passedOver: missed } : r;
    missed.push(`${method} ${u.origin}${path}: ${why}`);
    answered = true;
  }
  // Only reached when the last node was not reached (an answer from it is returned above).
  throw new ClientError(`no node of --node ${answered ? 'took the request' : 'was reached'}: ${missed.join('; ')}`, { notSent: true, untried: answered });
}

/**
 * One request; rejects with ClientError on network problems or timeout. `notSent` on
 * the error says the node certainly received nothing (refused, no route, unknown host,
 * no connection within the connect timeout); otherwise a write's outcome is unknown.
 */
export function call(base: string | URL, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const u = typeof base === 'string' ? nodeUrl(base) : base;
  // QUORUMD_API_TOKEN, not QUORUMD_TOKEN: that one is the *fencing* token in hooks and jobs.
  const token = opts.token ?? currentToken().token;
  const secure = u.protocol === 'https:';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const connectTimeoutMs = Math.min(opts.connectTimeoutMs ?? 5000, timeoutMs);
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? Buffer.from(opts.body) : Buffer.from(opts.body);
    const req = (secure ? nodeHttps().request : request)(
      {
        host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: u.port || (secure ? 443 : 80),
        method,
        path,
        agent: secure ? tlsAgent() : agent,
        headers: {
          ...(body ? { 'Content-Length': body.length } : method === 'PUT' || method === 'POST' ? { 'Content-Length': 0 } : {}),
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(new ClientError(`${method} ${u.origin}${path}: ${err.message}`));
        });
      },
    );
    // Whether the connection is open (for https: the TLS handshake done), so that the
    // request may have left: until then a timeout means the node received nothing.
    let open = false;
    const connectTimer = setTimeout(() => {
      if (!open) req.destroy(new ClientError(`${method} ${u.origin}${path}: no connection within ${connectTimeoutMs} ms (the node was not reached)`, { notSent: true }));
    }, connectTimeoutMs);
    const timer = setTimeout(
      () => req.destroy(new ClientError(open ? `${method} ${u.origin}${path}: no answer within ${timeoutMs} ms` : `${method} ${u.origin}${path}: no connection within ${timeoutMs} ms (the node was not reached)`, { notSent: !open })),
      timeoutMs,
    );
    const opened = () => {
      open = true;
      clearTimeout(connectTimer);
    };
    // A kept-alive socket is open already; a new one is still connecting here.
    req.on('socket', (sock) => {
      if (!sock.connecting) opened();
      else sock.once(secure ? 'secureConnect' : 'connect', opened);
    });
    req.on('close', () => clearTimeout(connectTimer));
    req.on('error', (err) => {
      clearTimeout(timer);
      clearTimeout(connectTimer);
      const code = (err as NodeJS.ErrnoException).code;
      reject(err instanceof ClientError ? err : new ClientError(`${method} ${u.origin}${path}: ${err.message}`, { notSent: code !== undefined && NOT_SENT.has(code) }));
    });
    req.end(body);
  });
}

/** The JSON body of a reply (or a ClientError saying what came instead). */
export function jsonOf(r: Reply): Record<string, unknown> {
  try {
    const v = JSON.parse(r.body.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new ClientError(`expected a JSON object from the node, got status ${r.status} and ${JSON.stringify(r.body.toString('utf8').slice(0, 80))}`);
}

export const enc = (s: string) => encodeURIComponent(s);
