/**
 * The HTTP API of a node (docs/api.md), on node:http.
 *
 *   GET    /v1/status                       → status JSON (with `version`: this node's quorumd version)
 *   GET    /v1/leader                       → {leader, term, token}
 *   GET    /v1/kv/<key>[?stale]             → raw value, X-Quorumd-Index; 404 absent
 *   GET    /v1/kv/<key>?watch=<i>[&wait=30s]→ blocks until the key's index passes i
 *   PUT    /v1/kv/<key>[?cas=<i>]           → {index} | {ok,index}; 409 {ok:false,index}
 *   DELETE /v1/kv/<key>[?cas=<i>]           → same
 *   POST   /v1/locks/<name>?ttl=15s&owner=s → {token, ttlMs} | 409 {holder}
 *   POST   /v1/locks/<name>/renew?token=t   → {token, expiresAt} | 409
 *   DELETE /v1/locks/<name>?token=t         → {ok:true} | 409
 *   POST   /v1/fence/<node>                 → {ok:true, record} | 502 {record} (fence failed) | 503
 *   POST   /v1/fence/<node>/confirm         → {ok:true, node, superseded, active, waitingFor, lastHeardMs, listenedMs} (operator: node declared safely down) | 409 alive, or not the leader
 *   GET    /v1/jobs                         → {jobs: [...]} scheduled jobs: last run (replicated), next run
 *   POST   /v1/jobs/<name>/reset            → {ok:true, job, withdrawn, floor} (operator: withdraw a future claim) | 404 not configured | 409 nothing to withdraw
 *   GET    /v1/keys?prefix=p&limit=n        → {index, keys: [{key, size, createIndex, modIndex}], more} (local)
 *   GET    /v1/locks[?prefix=p&limit=n]     → {index, clockMs, exact, locks: [{name, owner, token, ttlMs, expiresAt}], more} (local)
 *   GET    /metrics                         → Prometheus text
 *   GET    /v1/pbft/reply?client=c&seq=n    → engine pbft: this node's signed reply for a client request (pbft-headers.ts)
 *   GET    /ui, /ui/<file>                  → the dashboard (its code only; its data needs the token)
 *
 * Every request (but the dashboard's own page and code under /ui, which hold no data)
 * carries `Authorization: Bearer <token>` of a credential whose scope
 * covers it (daemon/http/auth.ts: read, write, operator), also on loopback: 401
 * without a known token, 403 when the scope is too small. Optional TLS (https) with
 * optional client certificates.
 *
 * Errors are `{error, code}`; 503 = definitely not applied, 504 = outcome unknown.
 * A 503 this node gives without having tried the request at all (it is stopping or
 * booting, its watch slots or a connection's pipeline are full, the body never arrived) also carries
 * `"tried": false` (NOT_TRIED): a client with other nodes to ask may send it to another.
 *
 * A planned stop (drain, allAnswered, close; docs/api.md "Stopping a node") answers every
 * request received before the connection closes: new connections are refused, new
 * requests get 503 "ask another node", requests in progress their real answers.
 * Every malformed input (path, percent-encoding, query parameter, body size, header)
 * is a 400/404/405/413 naming it; an exception in a handler is a 500 and is logged,
 * never a crash. Keys may contain '/' (the rest of the path is the key).
 *
 * Bounded resources (docs/security.md): a connection that has not sent its whole
 * header within `headersTimeoutMs` is destroyed (not half-closed: a client that
 * never reads must not keep the descriptor), checked every second; one client
 * address holds at most `maxConnectionsPerAddress` connections, the server at most
 * `maxConnections` (at a bound an unauthenticated or idle connection gives way to a
 * newcomer, else it is destroyed at accept: hal/address-slots.ts); at most `maxWatchesPerAddress` of them
 * may wait in a watch (more are answered 429), `maxWatches` in all (more: 503). Repeated lock renewals and
 * releases with a wrong lease id from one client (address + credential) are answered
 * 429 for a while without reaching the node.
 */
import { acceptQueueLength } from './listen-backlog.ts';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { nodeHttps } from '../../hal/lazy-builtins.ts';
import type { AddressInfo, Socket } from 'node:net';
import { MAX_KEY_BYTES, MAX_TTL_MS, MAX_VALUE_BYTES, MIN_TTL_MS } from '../../src/kv/commands.ts';
import { leaseDigest } from '../../src/kv/lease.ts';
import type { ClientRef } from '../runtime/pbft-clients.ts';
import type { ClientResult } from '../runtime/results.ts';
import type { ApiBackend, FenceAnswer, JobResetAnswer } from './backend.ts';
import type { ServiceRegistry } from '../services/registry.ts';
import type { HttpTools } from '../services/http.ts';
import { renderMetrics, type MetricFamily } from './metrics.ts';
import { httpDateNow } from '../utc-text.ts';
import { QUORUMD_VERSION } from '../version.ts';
import { ApiAuth, requiredScope, scopeAllows, type ApiCredential, type Caller } from './auth.ts';
import { isUiPath, UI_HEADERS, uiFile } from '../ui/dashboard.ts';
import { clientRefOf, pbftHeaders, REPLY_HEADER, replyHeaderValue } from './pbft-headers.ts';
import { AddressSlots, addressKey } from '../../hal/address-slots.ts';

export interface HttpOptions {
  /** Default 127.0.0.1. Any non-loopback host requires `token` (checked by the config; enforced here too). */
  host?: string;
  /** Default 7071; 0 = any free port. */
  port?: number;
  /**
   * Who may call the API (daemon/http/auth.ts). Required (or `token`): the API has no
   * unauthenticated mode.
   */
  credentials?: ApiCredential[];
  /** Shorthand for one credential named `token` with the operator scope. */
  token?: string | undefined;
  /** Serve HTTPS: PEM certificate and key; with `ca`, clients must present a certificate signed by it. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** A connection that has not sent a complete request header within this is destroyed (ms). Default 10000. */
  headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (ms; Node adds 1 s before it acts). Default 5000. */
  keepAliveTimeoutMs?: number;
  /** Connections from one client address at a time; more are destroyed when accepted. Default 128 (the config's default says why). */
  maxConnectionsPerAddress?: number;
  /** Connections at a time in all. Default 1024. At the bound the connection of any address idle the longest (at least `idleEvictMs`) is closed for a newcomer, else the newcomer is. */
  maxConnections?: number;
  /**
   * At a connection bound, a keep-alive connection idle (no request in progress, no
   * bytes of a next one read) for at least this long is closed for a newcomer (ms).
   * Default IDLE_EVICT_MS (1000; see there why). For tests.
   */
  idleEvictMs?: number;
  /** Lock renewals/releases refused for a wrong lease, per client and window, before 429. Default 5 per 10 s. */
  leaseFailures?: { max: number; windowMs: number };
  /** Largest request body (bytes). Default 65536; values are further capped by MAX_VALUE_BYTES. */
  maxBodyBytes?: number;
  /** Longest watch wait (ms). Default 300000. */
  maxWatchMs?: number;
  /** Default watch wait when `wait` is absent (ms). Default 30000. */
  defaultWatchMs?: number;
  /** Safety net: a backend call not answered within this is answered 504 (ms). Default 10000. */
  backstopMs?: number;
  /** Most concurrent watches; more get 503. Default 1024 (each holds a socket). */
  maxWatches?: number;
  /**
   * Most watches (KV and service watches together) open at once from one client address;
   * more get 429 `too-many-watches` and their connection closes. Default half of
   * `maxConnectionsPerAddress` (64 of 128): a watch holds its connection for up to its
   * wait, and a connection with a request in progress is never closed to make room, so
   * without this one read token could fill every slot of 127.0.0.1 with watches
   * and keep the board's other applications out for minutes.
   */
  maxWatchesPerAddress?: number;
  /** Longest wait for `POST /v1/fence/<node>` (delays, retries, settle), ms. Default 120000; then 504. */
  fenceTimeoutMs?: number;
  /** Service discovery (daemon/services): /v1/services answers 501 without it. */
  services?: { registry: ServiceRegistry; handle: typeof import('../services/http.ts').handleServices };
  /** Called for unexpected handler exceptions (logged by the daemon). */
  onError?: (err: unknown, where: string) => void;
}

export interface ApiServer {
  server: Server;
  /** The bound address (port resolved when 0 was asked). */
  address(): { host: string; port: number };
  /** Counters of answered requests by status code, for /metrics and tests. */
  readonly counts: Map<number, number>;
  /**
   * A planned stop begins (`why`, e.g. "node n1 is stopping", is said in the answers):
   * the server stops listening (a new connection is refused before any byte), a request
   * that reaches it from now on is answered 503 `unavailable` with Retry-After and
   * "not tried: ask another node", every watch ends with such an answer at once, every
   * answer from now on is its connection's last (`Connection: close`), and a keep-alive
   * connection is closed once it has been idle for DRAIN_IDLE_MS. Requests already in
   * progress carry on and get their real answers: the backend must keep running until
   * `allAnswered()`. Once; later calls do nothing.
   */
  drain(why: string): void;
  /** Resolves once no request received waits for its answer (true), or after `maxMs` (false). */
  allAnswered(maxMs: number): Promise<boolean>;
  /**
   * The end of a stop (drain(why) first if it was not called): a request still without
   * its answer (the backend stopped under it) gets one — 503 for a read or a request
   * whose body had not all arrived (nothing was changed), 504 `outcome-unknown` for
   * anything else — with
   * `Connection: close`; connections are closed once their answers are out (idle
   * keep-alive ones after DRAIN_IDLE_MS of quiet, so that a client that just got an
   * answer and is sending its next request is answered rather than cut off); whatever
   * is left after that, bounded, is destroyed. Resolves once the server is closed.
   */
  close(why?: string): Promise<void>;
}

/**
 * During a stop, a keep-alive connection is closed once it has had no request for this
 * long (ms). Closing an idle connection races with its client sending its next request
 * on it at that moment (RFC 9112 §9.5): the client sees the connection close without an
 * answer and cannot tell whether its request ran. A client in active use sends its next
 * request within a few ms of an answer, and while the node stops that request is
 * answered 503 with `Connection: close` (its client then opens a new connection, which
 * is refused); a connection quiet this long is most likely one its client is not using.
 * It is also what a stop waits at most for such connections.
 */
export const DRAIN_IDLE_MS = 250;

/**
 * During a stop, how long the listener stays open without accepting a connection (or,
 * where the accept queue cannot be read, at most) while it accepts the connections the
 * kernel had completed when the stop began, which a close would reset (ms). See drain().
 */
export const DRAIN_ACCEPT_MAX_MS = 250;

/** During a stop, the longest the listener stays open to accept the connections queued when the stop began (ms). */
export const DRAIN_LISTEN_MAX_MS = 2000;

/**
 * While the listener drains, a gap between two of its checks (one every millisecond or
 * so) longer than this is a process that stood still, not time it spent accepting: it
 * counts as this much towards DRAIN_ACCEPT_MAX_MS and DRAIN_LISTEN_MAX_MS (ms).
 */
export const DRAIN_STALL_MS = 50;

/**
 * A stop's clock: the ms this process ran since it was made, read at each call; a gap
 * between two calls longer than DRAIN_STALL_MS (the process stood still) counts as that.
 * For the bounds of a stop, which poll every few ms.
 */
function runningTime(): () => number {
  let last = performance.now();
  let ran = 0;
  return () => {
    const now = performance.now();
    ran += Math.min(now - last, DRAIN_STALL_MS);
    last = now;
    return ran;
  };
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * How long a keep-alive connection must have been idle before it may be closed to make
 * room for a newcomer at a connection bound (ms). Closing an idle keep-alive connection
 * races with its client: one that picks it from its pool and sends just as the close
 * crosses sees a reset, and cannot tell whether its request ran (RFC 9112 §9.5 calls
 * this out; clients retry only idempotent requests on a reused connection, §9.3.1). The node's
 * own keep-alive timeout (5 s) has that race already; this bound keeps it away from
 * connections in active use: a client sending requests back to back, or a few per
 * second (the CLI, `status --watch`, a dashboard, a pool under load), always finds its
 * connections idle for less than a second. A shorter bound would let eviction hit such
 * clients; a longer one (toward the 5 s timeout) would let a holder that sends one
 * request every few seconds on each connection keep them all (a holder must now send
 * more than one request per second per connection, 128 a second for 127.0.0.1's slots,
 * which the node serves but which shows in its metrics).
 */
export const IDLE_EVICT_MS = 1000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const bad = (message: string, code = 'bad-request') => new HttpError(400, code, message);

/**
 * The field of a 503 that says this node did nothing with the request: it was neither
 * proposed, nor forwarded, nor read — refused as it arrived, for a reason of this
 * node's own (it is stopping, or not running yet: booting; its watch slots or the
 * connection's pipeline are full; it stopped before the request's body had arrived),
 * not the cluster's. Another node may take it, and sending it there cannot apply it
 * twice: the CLI with a `--node` list goes on to the next node on it
 * (daemon/client/http.ts). Only answers that certainly mean this carry it. A 503 from
 * the cluster's state (no leader, no quorum, a proposal lost) does not: it was tried,
 * and the other nodes share that state; nor does a read or a watch that was under way
 * when the node stopped. Older clients ignore the field; older nodes never send it.
 */
const NOT_TRIED = { tried: false } as const;

/** The abort reason of a watch ended by the node's stop (drain), not by its client. */
const STOPPING = Symbol('node stopping');

/** A watch's hold on one of the server's watch slots (openWatch). */
export interface OpenWatch {
  /** Aborts when the client went away, or the node stops (then `stopped()` says so). */
  gone: AbortSignal;
  /** The answer to end the watch with when the node's stop ended it (and its client is still there), else undefined. */
  stopped: () => Error | undefined;
  /** Gives the slot back (once). */
  done: () => void;
}

/**
 * Durations in query parameters: `500ms`, `15s`, `2m`, `1h`, or a bare integer of
 * seconds (as in Consul's `wait=`). Returns ms.
 */
export function parseDuration(raw: string, what: string): number {
  const m = /^(\d{1,9})(ms|s|m|h)?$/.exec(raw);
  if (!m) throw bad(`${what} must be a duration like 500ms, 15s, 2m or 1h, got ${JSON.stringify(raw.slice(0, 40))}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
}

/** An index-like query parameter: `what` names it, `kind` says what it counts (in the error). */
function parseIndexParam(raw: string, what: string, kind = 'a log index'): number {
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw bad(`${what} must be a non-negative integer (${kind}), got ${JSON.stringify(raw.slice(0, 40))}`);
  }
  return Number(raw);
}

type Params = ReadonlyMap<string, string>;
/** The parameters of a request without a query string (most of them): one shared, read-only map. */
const NO_PARAMS: Params = new Map();

const GET_HEAD = ['GET', 'HEAD'] as const;
const KV_METHODS = ['GET', 'HEAD', 'PUT', 'DELETE'] as const;
const POST_ONLY = ['POST'] as const;
const POST_DELETE = ['POST', 'DELETE'] as const;

/** 405 unless `method` is one of `allowed` (a module function: no closure per request). */
function onlyMethods(method: string, path: string, allowed: readonly string[]): void {
  if (!allowed.includes(method)) {
    throw new HttpError(405, 'method-not-allowed', `${method} is not allowed on ${path.slice(0, 80)}; expected ${allowed.join(' or ')}`, { allow: allowed.join(', ') });
  }
}

/** Who the wrong-lease guard counts for: address and credential (built on the lock paths only, not for every request). */
function leaseClient(req: IncomingMessage, credential: string): string {
  return `${req.socket.remoteAddress ?? '?'}|${credential}`;
}

function parseQuery(search: string, allowed: readonly string[]): Params {
  if (search.length > 4096) throw bad('query string longer than 4096 characters');
  if (!search) return NO_PARAMS;
  const out = new Map<string, string>();
  for (const part of search.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    let k: string;
    let v: string;
    try {
      k = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '));
      v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      throw bad(`query parameter ${JSON.stringify(part.slice(0, 40))} is not valid percent-encoding of UTF-8 text (%XX escapes of UTF-8 bytes)`);
    }
    if (!allowed.includes(k)) {
      throw bad(`unknown query parameter ${JSON.stringify(k.slice(0, 40))}; expected ${allowed.length ? allowed.join(', ') : 'none'}`);
    }
    if (out.has(k)) throw bad(`query parameter ${k} given twice`);
    out.set(k, v);
  }
  return out;
}

/** No lone surrogates (String.prototype.isWellFormed is ES2024; Node 20 has it, our lib target not). */
function wellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

function decodeName(raw: string, what: 'key' | 'lock name'): string {
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    throw bad(`${what} is not valid percent-encoding of UTF-8 text (%XX escapes of UTF-8 bytes)`, 'bad-key');
  }
  if (s.length === 0) throw bad(`${what} is empty; expected /v1/${what === 'key' ? 'kv' : 'locks'}/<${what === 'key' ? 'key' : 'name'}>`, 'bad-key');
  if (!wellFormed(s)) throw bad(`${what} is not well-formed Unicode`, 'bad-key');
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes > MAX_KEY_BYTES) throw bad(`${what} is ${bytes} bytes, expected at most ${MAX_KEY_BYTES}`, 'bad-key');
  return s;
}

/** A job name (daemon/config/jobs.ts). */
const JOB_NAME = /^[a-z0-9][a-z0-9_-]{0,47}$/;

/** A lease id: 22..64 base64url characters (at least 128 random bits). */
const LEASE_ID = /^[A-Za-z0-9_-]{22,64}$/;

function leaseParam(raw: string | undefined, missing: string): string {
  if (raw === undefined || raw === '') throw bad(missing);
  if (!LEASE_ID.test(raw)) throw bad(`lease must be 22 to 64 characters A-Z a-z 0-9 _ - (the lease id of the acquire answer), got ${raw.length} characters`);
  return raw;
}

/** A fresh lease id: 16 random bytes, base64url (22 characters). */
export function newLeaseId(): string {
  return randomBytes(16).toString('base64url');
}

/** Maps a runtime result that is not 200 to an HttpError. */
function failure(r: ClientResult, what: string): HttpError {
  const msg = r.error ?? `${what} failed with status ${r.status}`;
  switch (r.status) {
    case 400:
      return new HttpError(400, 'bad-request', msg);
    case 404:
      return new HttpError(404, 'not-found', msg);
    case 413:
      return new HttpError(413, 'too-large', msg);
    case 507:
      // Definite: refused before proposing, the cluster's quota is full (src/kv/quota.ts).
      return new HttpError(507, 'quota-exceeded', msg);
    case 501:
      // Definite: this engine cannot do it at all (bully has no replicated log).
      return new HttpError(501, 'engine-unsupported', msg);
    case 503:
      // A runtime that is not running (booting, stopped) refused it untried (results.ts notRunning).
      return new HttpError(503, 'unavailable', `${msg} (definitely not applied; safe to retry)`, r.tried === false ? { ...NOT_TRIED } : {});
    case 504:
      // Most of the node's own 504 reasons say so already ("… may or may not be applied").
      return new HttpError(504, 'outcome-unknown', /may or may not/.test(msg) ? msg : `${msg} (the request may or may not have been applied)`);
    default:
      // Anything unexpected is reported as unknown: never a definite error when unsure.
      return new HttpError(504, 'outcome-unknown', `${what}: unexpected status ${r.status}: ${msg}`);
  }
}

export function startApiServer(backend: ApiBackend, opts: HttpOptions = {}): Promise<ApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const maxBody = Math.min(opts.maxBodyBytes ?? 65536, 16 * 1024 * 1024);
  const maxWatchMs = opts.maxWatchMs ?? 300_000;
  const defaultWatchMs = Math.min(opts.defaultWatchMs ?? 30_000, maxWatchMs);
  const backstopMs = opts.backstopMs ?? 10_000;
  const maxWatches = opts.maxWatches ?? 1024;
  const credentials = [...(opts.credentials ?? []), ...(opts.token !== undefined ? [{ name: 'token', scope: 'operator' as const, token: opts.token }] : [])];
  let auth: ApiAuth;
  try {
    auth = new ApiAuth(credentials);
  } catch (err) {
    return Promise.reject(err);
  }
  const headersTimeoutMs = opts.headersTimeoutMs ?? 10_000;
  const perAddress = opts.maxConnectionsPerAddress ?? 128;
  const leaseLimit = opts.leaseFailures ?? { max: 5, windowMs: 10_000 };
  /**
   * Connections per client address (hal/address-slots.ts): at the bound a newcomer closes
   * the address's oldest connection on which no request has passed authentication yet.
   * Refusing it instead let any local user without a token hold all 128 slots of
   * 127.0.0.1 with half-sent headers, renewed as they timed out, and the CLI, hooks and
   * dashboards of the board could not get in for as long. Counted by TCP socket, also
   * under TLS.
   */
  let slots: AddressSlots<Socket>;
  try {
    slots = new AddressSlots<Socket>(perAddress, { total: opts.maxConnections ?? 1024, minIdleMs: opts.idleEvictMs ?? IDLE_EVICT_MS, key: addressKey });
  } catch (err) {
    return Promise.reject(err);
  }
  const watchesPerAddress = opts.maxWatchesPerAddress ?? Math.max(1, Math.floor(perAddress / 2));
  if (!Number.isInteger(watchesPerAddress) || watchesPerAddress < 1) {
    return Promise.reject(new RangeError(`maxWatchesPerAddress: expected an integer >= 1, got ${String(opts.maxWatchesPerAddress)}`));
  }
  /** The TCP socket of a request's socket (under TLS, the one under it): what `slots` counts. */
  const tcpOf = (sock: Socket) => (sock as Socket & { _parent?: Socket })._parent ?? sock;
  /** A request on `sock` passed authentication: its connection is closed to make room only once idle. */
  const authenticated = (sock: Socket) => slots.authenticated(tcpOf(sock));
  let evictedConnections = 0;
  /** Authenticated keep-alive connections closed at a bound for a newcomer, idle for IDLE_EVICT_MS or more. */
  let idleEvictions = 0;
  /**
   * Wrong-lease failures per client (address + credential): how many distinct leases
   * failed since the window started (the same wrong lease again is one failure: an
   * application that retries the release of a lease that lapsed is not guessing), and
   * which (their digests). Bounded: past the limit only leases that worked for the
   * client (at most 64, leasesOf) still reach the node, so at most leaseLimit.max + 64.
   */
  const leaseFails = new Map<string, { n: number; since: number; tried: Set<string> }>();
  /**
   * Leases each client (address + credential) was granted or renewed through this node,
   * by digest, newest last (at most 64 per client, 10,000 clients): never held off. On a
   * board every application is 127.0.0.1 and often uses the one token file, so without
   * this five wrong guesses by one of them — or one buggy release loop — held the real
   * holder's renewals off for 10 s, longer than a short ttl. A lease that already worked
   * for this client tells a guesser nothing.
   */
  const leasesOf = new Map<string, Set<string>>();
  const leaseKey = (lease: string) => Buffer.from(leaseDigest(lease)).toString('base64');
  function leaseWorked(client: string, lease: string): void {
    const key = leaseKey(lease);
    let set = leasesOf.get(client);
    if (set === undefined) {
      if (leasesOf.size >= 10_000) leasesOf.delete(leasesOf.keys().next().value!); // bounded: oldest client first
      leasesOf.set(client, (set = new Set()));
    }
    set.delete(key);
    set.add(key);
    if (set.size > 64) set.delete(set.values().next().value!);
  }
  function leaseReleased(client: string, lease: string): void {
    const set = leasesOf.get(client);
    if (set === undefined) return;
    set.delete(leaseKey(lease));
    if (set.size === 0) leasesOf.delete(client);
  }
  let refusedConnections = 0;
  /** Requests answered 503 because too many were pipelined on their connection (MAX_PIPELINED). */
  let pipelineRefusals = 0;
  const onError = opts.onError ?? (() => {});
  const counts = new Map<number, number>();
  let watches = 0;
  /** Watches open per client address (only addresses with one open). */
  const watchesOf = new Map<string, number>();
  /** Watches refused: the address's bound (429), the server's (503). */
  const watchRefusals = { address: 0, node: 0 };
  const sockets = new Set<Socket>();
  /**
   * Requests without an answer yet (answered 503 by close(why)): one short list per
   * connection (more than one entry only when requests are pipelined), not one Set of
   * every request. Why not a Set: a long-lived Map or Set through which every request
   * passes (add, then delete) makes V8 (Node 20) promote the requests' objects to the
   * old generation whenever its incremental marking runs — and on a leader it runs most
   * of the time, as each write keeps a log entry and a value for a while. Measured on a
   * plain node:http server, 64 clients, requests held 10 ms, something long-lived kept
   * per request: ~1.9 KB promoted per request with such a Set, ~0.26 KB with an array
   * or without it; on a `quorumd dev` leader under 64 writers this Set alone was ~2.9 KB
   * of the ~4.4 KB promoted per write. Arrays, and fields of long-lived objects, do not
   * do this (runtime/index-map.ts has the same story for the runtime's pending tables).
   */
  const unanswered = new WeakMap<Socket, ServerResponse[]>();
  // The lists, for close(why). Not found through `sockets` below: with TLS those are the
  // TCP sockets of 'connection', while a request's socket is the TLS socket over one.
  const lists = new Set<ServerResponse[]>();
  function unansweredOn(sock: Socket): ServerResponse[] {
    let list = unanswered.get(sock);
    if (list === undefined) {
      const l: ServerResponse[] = [];
      unanswered.set(sock, l);
      // (A connection closed already never says so again: its list is not kept.)
      if (!sock.destroyed) {
        lists.add(l);
        sock.once('close', () => lists.delete(l));
      }
      list = l;
    }
    return list;
  }
  let closing = false;
  /** Connections accepted so far: drain() closes the listener once this stops moving. */
  let acceptedCount = 0;
  /** Set by drain(): why the node stops (said in every answer from then on). */
  let draining: string | undefined;
  /** The watches waiting now: drain() ends each (its abort reason is STOPPING). */
  const watchStops = new Set<AbortController>();
  /** The server emitted 'close' (no listener, no connection left). */
  let serverClosed = false;
  let sweepTimer: ReturnType<typeof setInterval> | undefined;
  let closed: Promise<void> | undefined;

  const httpFamilies = (): MetricFamily[] => [
    {
      name: 'quorumd_http_responses_total',
      help: 'HTTP responses by status code.',
      type: 'counter',
      samples: [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([code, n]) => ({ labels: { code: String(code) }, value: n })),
    },
    {
      name: 'quorumd_http_connections_refused_total',
      help: 'Connections destroyed at accept: too many from one address, or in all.',
      type: 'counter',
      samples: [{ value: refusedConnections }],
    },
    {
      name: 'quorumd_http_connections_evicted_total',
      help: 'Connections closed to make room for a newer one (from the same address, or at the bound in all from the address holding the most): none of their requests had passed authentication.',
      type: 'counter',
      samples: [{ value: evictedConnections }],
    },
    {
      name: 'quorumd_http_idle_connections_evicted_total',
      help: 'Keep-alive connections closed to make room for a newer one at the per-address or the total bound: no request in progress, none begun, idle for a second or more.',
      type: 'counter',
      samples: [{ value: idleEvictions }],
    },
    {
      name: 'quorumd_http_watches_open',
      help: 'KV and service watches waiting now.',
      type: 'gauge',
      samples: [{ value: watches }],
    },
    {
      name: 'quorumd_http_watch_refusals_total',
      help: 'Watches refused: limit="address" the client address already held maxWatchesPerAddress (429), limit="node" the server held maxWatches (503).',
      type: 'counter',
      samples: [{ labels: { limit: 'address' }, value: watchRefusals.address }, { labels: { limit: 'node' }, value: watchRefusals.node }],
    },
    {
      name: 'quorumd_http_pipeline_refusals_total',
      help: 'Requests answered 503 untried because their connection had too many pipelined requests without an answer.',
      type: 'counter',
      samples: [{ value: pipelineRefusals }],
    },
    ...serviceFamilies(),
  ];

  /** Service discovery's families, when this node runs it: the cached catalog by health, and the registry's counters. */
  function serviceFamilies(): MetricFamily[] {
    const reg = opts.services?.registry;
    if (!reg) return [];
    const c = reg.cached();
    const st = reg.stats;
    return [
      { name: 'quorumd_services_instances', help: 'Service instances in this node\'s cached catalog, by health.', type: 'gauge', samples: (['passing', 'warning', 'critical'] as const).map((h) => ({ labels: { health: h }, value: c.instances.filter((v) => v.health === h).length })) },
      { name: 'quorumd_services_events_total', help: 'Service registry events on this node: registered, deregistered, reaped (instances of silent nodes removed as leader), health changes written, liveness renewals.', type: 'counter', samples: (['registered', 'deregistered', 'reaped', 'healthChanges', 'renewals'] as const).map((k) => ({ labels: { event: k }, value: st[k] })) },
    ];
  }

  function send(res: ServerResponse, status: number, body: string | Uint8Array, headers: Record<string, string | number> = {}): void {
    if (res.headersSent || res.destroyed) return;
    counts.set(status, (counts.get(status) ?? 0) + 1);
    const h: Record<string, string | number> = { Date: httpDateNow(), 'Cache-Control': 'no-store', ...headers };
    if (typeof body === 'string' && !('Content-Type' in h)) h['Content-Type'] = JSON_TYPE;
    // Stopping: the last answer on its connection says so, and the connection closes after
    // it. Not while requests pipelined behind it wait for theirs (they are answered first;
    // the last of them closes it).
    if (draining !== undefined && (unanswered.get(res.req.socket)?.length ?? 1) <= 1) h.Connection = 'close';
    h['Content-Length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    res.writeHead(status, h);
    res.end(body);
  }

  const json = (res: ServerResponse, status: number, v: unknown, headers?: Record<string, string | number>) =>
    send(res, status, JSON.stringify(v) + '\n', headers);

  function sendError(res: ServerResponse, e: HttpError): void {
    const headers: Record<string, string | number> = {};
    if (e.status === 401) headers['WWW-Authenticate'] = 'Bearer';
    if (e.extra.allow) headers.Allow = String(e.extra.allow);
    if (e.extra.retryAfter !== undefined) headers['Retry-After'] = String(e.extra.retryAfter);
    const extra = { ...e.extra };
    delete extra.allow;
    delete extra.retryAfter;
    delete extra.closeIfLast;
    json(res, e.status, { error: e.message, code: e.code, ...extra }, headers);
  }

  /** Reads the body up to `limit` bytes; rejects with 413 beyond it. */
  function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
    // Node undoes `chunked` and nothing else: a gzip-coded body would be stored as its compressed bytes.
    const te = req.headers['transfer-encoding'];
    if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
      return Promise.reject(bad(`Transfer-Encoding ${JSON.stringify(te.slice(0, 40))}: only chunked is understood; send the body uncoded (no gzip or other coding)`));
    }
    const cl = req.headers['content-length'];
    if (cl !== undefined) {
      // Digits beyond 15 are a length no body here may have: 413, like any other too large.
      if (/^\d{16,}$/.test(cl)) return Promise.reject(new HttpError(413, 'too-large', `body of ${cl.length > 40 ? `${cl.slice(0, 40)}…` : cl} bytes, expected at most ${limit}`));
      if (!/^\d{1,15}$/.test(cl)) return Promise.reject(bad(`Content-Length must be a non-negative integer, got ${JSON.stringify(cl.slice(0, 40))}`));
      if (Number(cl) > limit) return Promise.reject(new HttpError(413, 'too-large', `body of ${cl} bytes, expected at most ${limit}`));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let n = 0;
      let done = false;
      req.on('data', (c: Buffer) => {
        if (done) return;
        n += c.length;
        if (n > limit) {
          done = true;
          reject(new HttpError(413, 'too-large', `body larger than ${limit} bytes`));
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (done) return;
        done = true;
        // One copy (a chunk may be a view of a larger socket buffer): most bodies are one chunk.
        resolve(chunks.length === 1 ? new Uint8Array(chunks[0]!) : new Uint8Array(Buffer.concat(chunks)));
      });
      req.on('error', (err) => {
        if (done) return;
        done = true;
        reject(bad(`request body could not be read: ${err.message}`));
      });
      req.on('aborted', () => {
        if (done) return;
        done = true;
        reject(bad('request aborted'));
      });
    });
  }

  /** Drains a body we do not want (GET with body, errors) without buffering it, up to a bound. */
  function rejectBodyIfAny(req: IncomingMessage): void {
    const cl = req.headers['content-length'];
    const te = req.headers['transfer-encoding'];
    if ((cl !== undefined && cl !== '0') || te !== undefined) {
      throw bad(`${req.method} ${(req.url ?? '').split('?')[0]!.slice(0, 80)} takes no request body`);
    }
  }

  // The backstops of the calls in flight, oldest first, and one timer for the oldest.
  // Every call waits the same backstopMs, so deadlines are in call order and the head
  // is always the next to expire: one timer is enough, armed for the head's deadline
  // and re-armed for the next one when it fires. A timer per call (setTimeout, then
  // clearTimeout once answered) was an object and two timer-list operations per write
  // on the leader. Precision is unchanged: a call still gets its 504 once its own
  // deadline has passed, as late as Node runs due timers, as before. Answered calls
  // leave the list as soon as they are the oldest (calls finish roughly in order), so
  // it holds about the calls in flight.
  interface Backstop {
    deadline: number;
    settled: boolean;
    resolve: (r: ClientResult) => void;
  }
  const backstops: Backstop[] = [];
  let backstopHead = 0;
  let backstopTimer: ReturnType<typeof setTimeout> | undefined;
  let backstopImmediate: ReturnType<typeof setImmediate> | undefined;

  function dropSettledBackstops(): void {
    while (backstopHead < backstops.length && backstops[backstopHead]!.settled) backstopHead++;
    if (backstopHead === backstops.length) {
      backstops.length = 0;
      backstopHead = 0;
      // Nothing in flight. A timer still armed is left to fire (it finds nothing due and
      // arms no other): clearing it here and arming a new one for the next call was a
      // Timeout object per write when calls come one at a time. An armed timer is never
      // later than the next call's deadline (deadlines grow), and it is unref'd: an idle
      // server holds none after at most backstopMs, and none keeps a process alive.
    } else if (backstopHead >= 1024 && backstopHead * 2 >= backstops.length) {
      backstops.splice(0, backstopHead);
      backstopHead = 0;
    }
  }

  function armBackstopTimer(): void {
    if (backstopTimer !== undefined || backstopImmediate !== undefined || backstopHead === backstops.length) return;
    backstopTimer = setTimeout(afterInput, Math.max(0, backstops[backstopHead]!.deadline - performance.now()));
    backstopTimer.unref();
  }

  // When the timer fires, the expiry waits for this loop turn's poll phase. Node runs
  // due timers before it reads sockets: after a stall (SIGSTOP, a swapping or overloaded
  // board) every deadline is past at once, and the answers that arrived meanwhile —
  // followers' acknowledgements, etcd's replies — are still unread in the kernel. A 504
  // then would call "unknown" a write the node is about to answer. setImmediate runs
  // after the poll phase, so what arrived during the stall is read first.
  function afterInput(): void {
    backstopTimer = undefined;
    backstopImmediate = setImmediate(expireBackstops);
  }

  function expireBackstops(): void {
    backstopImmediate = undefined;
    const now = performance.now();
    while (backstopHead < backstops.length && backstops[backstopHead]!.deadline <= now) {
      const b = backstops[backstopHead++]!;
      if (b.settled) continue;
      b.settled = true;
      b.resolve({ status: 504, error: `no answer from the node within ${backstopMs} ms` });
    }
    dropSettledBackstops();
    armBackstopTimer();
  }

  /** Calls a backend operation with a backstop: an unanswered call becomes 504 after backstopMs. */
  function call(op: (cb: (r: ClientResult) => void) => void): Promise<ClientResult> {
    return new Promise((resolve) => {
      const b: Backstop = { deadline: performance.now() + backstopMs, settled: false, resolve };
      backstops.push(b);
      armBackstopTimer();
      try {
        op((r) => {
          if (b.settled) return;
          b.settled = true;
          dropSettledBackstops();
          resolve(r);
        });
      } catch (err) {
        if (b.settled) return;
        b.settled = true;
        dropSettledBackstops();
        onError(err, 'backend call');
        // A synchronous throw happened before anything was proposed.
        resolve({ status: 503, error: `internal error before proposing: ${(err as Error).message}` });
      }
    });
  }

  /** client/seq of a lock request: a pbft client's envelope (other engines: ignored, as on /v1/kv). */
  function lockClientRef(q: Params): ClientRef | undefined {
    const ref = clientRefOf(q.get('client'), q.get('seq'));
    if (typeof ref === 'string') throw bad(ref);
    return ref && backend.pbftLock && backend.status().engine === 'pbft' ? ref : undefined;
  }

  function casOf(q: Params): number | undefined {
    const c = q.get('cas');
    return c === undefined ? undefined : parseIndexParam(c, 'cas');
  }

  function writeResult(res: ServerResponse, r: ClientResult, cas: number | undefined, what: string): void {
    if (r.status === 200) {
      json(res, 200, cas === undefined ? { index: r.index ?? 0 } : { ok: true, index: r.index ?? 0 }, pbftHeaders(r));
      return;
    }
    if (r.status === 409) {
      json(res, 409, { ok: false, index: r.index ?? 0, error: r.error ?? `${what}: compare-and-set failed: the key's index is ${r.index ?? 0}`, code: 'cas-failed' }, pbftHeaders(r));
      return;
    }
    sendError(res, failure(r, what));
  }

  function sendValue(res: ServerResponse, r: ClientResult, key: string): void {
    if (r.status === 200) {
      send(res, 200, r.value ?? new Uint8Array(0), { 'Content-Type': 'application/octet-stream', 'X-Quorumd-Index': r.index ?? 0, ...pbftHeaders(r) });
    } else if (r.status === 404) {
      json(res, 404, { error: `key ${JSON.stringify(key)} not found`, code: 'not-found' }, { 'X-Quorumd-Index': r.index ?? 0, ...pbftHeaders(r) });
    } else sendError(res, failure(r, 'get'));
  }

  /**
   * Takes one of the server's watch slots for the request, and tells when its client went
   * away: `gone` aborts when the response or its connection closes — also when that
   * happened before this call (a watch pipelined behind another request on a connection
   * reset meanwhile: its response never had the socket and never reports a close, only the
   * connection does). Listening starts here, before the watch's first read: a close during
   * that read was missed, and the watch held its slot for its whole wait. `done()` gives
   * the slot back and removes the listeners; once, later calls do nothing.
   *
   * One client address holds at most `watchesPerAddress` watches: a watch keeps its
   * connection for up to its wait, and a connection with a request in progress is never
   * closed to make room, so watches alone could hold every connection slot of the address (127.0.0.1 is
   * every local application). Past the bound the watch is answered 429 and its connection
   * closes (when nothing is pipelined behind it), so that the refused ones do not hold
   * slots either.
   */
  function openWatch(req: IncomingMessage, res: ServerResponse): OpenWatch {
    const addr = req.socket.remoteAddress ?? '?';
    const mine = watchesOf.get(addr) ?? 0;
    if (mine >= watchesPerAddress) {
      watchRefusals.address++;
      throw new HttpError(429, 'too-many-watches', `${mine} ${mine === 1 ? 'watch' : 'watches'} open from ${addr} already: at most ${watchesPerAddress} per address (http.maxWatchesPerAddress). Each holds a connection for up to its wait, and the address's other connections (http.maxConnectionsPerAddress ${perAddress}) are kept for other requests; retry once one of them has ended`, { closeIfLast: true });
    }
    if (watches >= maxWatches) {
      watchRefusals.node++;
      throw new HttpError(503, 'unavailable', `too many watches open (${maxWatches}); retry later`, { ...NOT_TRIED });
    }
    watches++;
    watchesOf.set(addr, mine + 1);
    const ac = new AbortController();
    const closed = () => ac.abort();
    const sock = req.socket;
    res.once('close', closed);
    sock.once('close', closed);
    if (res.destroyed || sock.destroyed) ac.abort();
    watchStops.add(ac);
    let open = true;
    return {
      gone: ac.signal,
      stopped: () => (ac.signal.reason === STOPPING && !res.destroyed && !sock.destroyed ? watchStopped() : undefined),
      done: () => {
        if (!open) return;
        open = false;
        watchStops.delete(ac);
        watches--;
        const left = (watchesOf.get(addr) ?? 1) - 1;
        if (left > 0) watchesOf.set(addr, left);
        else watchesOf.delete(addr);
        res.off('close', closed);
        sock.off('close', closed);
      },
    };
  }

  async function watch(req: IncomingMessage, res: ServerResponse, key: string, after: number, waitMs: number): Promise<void> {
    const w = openWatch(req, res);
    // Ended by the node's stop (drain): a clear last answer; by the client going away: none.
    const ended = () => {
      const e = w.stopped();
      if (e) throw e;
    };
    try {
      if (w.gone.aborted) return ended();
      const read = () => call((cb) => backend.get(key, { stale: true }, cb));
      let r = await read();
      if (w.gone.aborted) return ended();
      const passed = (x: ClientResult) => x.status === 200 && (x.index ?? 0) > after;
      if (passed(r) || (r.status !== 200 && r.status !== 404)) return sendValue(res, r, key);
      const firstStatus = r.status;
      const deadline = performance.now() + waitMs;
      await new Promise<void>((resolve) => {
        let finished = false;
        let unsub: (() => void) | undefined;
        let poll: NodeJS.Timeout | undefined;
        const finish = () => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          if (poll) clearTimeout(poll);
          unsub?.();
          w.gone.removeEventListener('abort', finish);
          resolve();
        };
        const timer = setTimeout(finish, waitMs);
        w.gone.addEventListener('abort', finish, { once: true });
        const check = async () => {
          if (finished) return;
          r = await read();
          // A key that was present and is now absent was deleted: that passes too.
          if (passed(r) || (firstStatus === 200 && r.status === 404)) finish();
        };
        if (backend.onKeyChange) unsub = backend.onKeyChange(key, () => void check());
        else {
          const tick = () => {
            if (finished || performance.now() >= deadline) return;
            void check().then(() => {
              if (!finished) poll = setTimeout(tick, 50);
            });
          };
          poll = setTimeout(tick, 50);
        }
      });
      if (w.gone.aborted) return ended();
      sendValue(res, r, key);
    } finally {
      w.done();
    }
  }

  /** The last answer of a watch that the node's stop ended. */
  function watchStopped(): HttpError {
    return new HttpError(503, 'unavailable', `${draining ?? 'the node is stopping'}; the watch ended without a change: ask another node (with the same watch index)`, { retryAfter: 1 });
  }

  /** A wrong-lease 409 for `client`; the window restarts when it has passed. */
  function countLeaseFailure(client: string, lease: string): void {
    const now = performance.now();
    const f = leaseFails.get(client);
    const key = leaseKey(lease);
    if (!f || now - f.since >= leaseLimit.windowMs) leaseFails.set(client, { n: 1, since: now, tried: new Set([key]) });
    else if (!f.tried.has(key)) {
      f.n++;
      f.tried.add(key);
    }
    if (leaseFails.size > 10_000) leaseFails.delete(leaseFails.keys().next().value!); // bounded: oldest first
  }

  /** 429 while `client` has used up its wrong-lease failures in the current window (not for a lease that worked for it). */
  function holdOffLeaseGuesser(client: string, lease: string): void {
    const f = leaseFails.get(client);
    if (!f) return;
    if (leasesOf.get(client)?.has(leaseKey(lease))) return;
    const left = leaseLimit.windowMs - (performance.now() - f.since);
    if (left <= 0) {
      leaseFails.delete(client);
      return;
    }
    if (f.n >= leaseLimit.max) {
      throw new HttpError(429, 'too-many-failures', `${f.n} lock renewals/releases with a wrong lease from this client in ${leaseLimit.windowMs} ms; retry after ${Math.ceil(left / 1000)} s`, { retryAfter: Math.ceil(left / 1000) });
    }
  }

  /**
   * The checks every request passes (target, credential, scope), then the endpoint.
   * Not an async function itself, nor one large one for every endpoint: an async
   * function's state holds room for all of its locals, and one function dispatching
   * ~20 endpoints made a leader under 64 writers allocate 15.2 KB per write instead of
   * 14.3 (V8's sampling heap profiler; less garbage, fewer young-generation collections).
   * The KV endpoints (the hot path) have a small async function of their own.
   */
  function route(req: IncomingMessage, res: ServerResponse): Promise<void> | void {
    // Stopping (drain): nothing new is tried, whatever it is; the answer says where to go.
    if (draining !== undefined) throw new HttpError(503, 'unavailable', `${draining}; this request was not tried: ask another node`, { retryAfter: 1, ...NOT_TRIED });
    const method = req.method ?? '';
    const rawUrl = req.url ?? '';
    if (req.headers.host === undefined && req.httpVersionMinor >= 1) throw bad('an HTTP/1.1 request needs a Host header (RFC 9112 §3.2), e.g. Host: 127.0.0.1');
    if (rawUrl.length > 8192) throw new HttpError(414, 'uri-too-long', 'request target longer than 8192 characters');
    if (!rawUrl.startsWith('/')) throw bad(`request target must be a path starting with '/', got ${JSON.stringify(rawUrl.slice(0, 40))}`);
    const qi = rawUrl.indexOf('?');
    const path = qi < 0 ? rawUrl : rawUrl.slice(0, qi);
    const search = qi < 0 ? '' : rawUrl.slice(qi + 1);

    // The dashboard's own page and code (no cluster data): served to anyone; every
    // request the page makes for data carries the token (daemon/ui/dashboard.ts).
    if (isUiPath(path)) {
      onlyMethods(method, path, GET_HEAD);
      parseQuery(search, []);
      rejectBodyIfAny(req);
      const a = uiFile(path);
      if (!a) throw new HttpError(404, 'not-found', `no such dashboard file: ${path.slice(0, 80)} (the dashboard is /ui)`);
      if (req.headers['if-none-match'] === a.etag) {
        counts.set(304, (counts.get(304) ?? 0) + 1);
        res.writeHead(304, { Date: httpDateNow(), ETag: a.etag, 'Cache-Control': 'no-cache' });
        res.end();
        return;
      }
      return send(res, 200, method === 'HEAD' ? '' : a.body, { 'Content-Type': a.type, 'Cache-Control': 'no-cache', ETag: a.etag, ...UI_HEADERS });
    }

    const who = auth.check(req.headers.authorization, req.socket);
    if (!who) {
      throw new HttpError(401, 'unauthorized', req.headers.authorization === undefined
        ? 'no credentials: send Authorization: Bearer <token> (the node\'s token file; `quorumd` finds it by itself, docs/security.md)'
        : 'unknown or malformed bearer token (Authorization: Bearer <token>)');
    }
    authenticated(req.socket);
    const need = requiredScope(method, path);
    if (!scopeAllows(who.scope, need)) {
      throw new HttpError(403, 'forbidden', `credential ${JSON.stringify(who.name)} has scope ${who.scope}; ${method} ${path.slice(0, 80)} needs scope ${need}`);
    }
    if (path.startsWith('/v1/kv/') || path === '/v1/kv') return kv(req, res, method, path, search);
    return endpoint(req, res, method, path, search, who);
  }

  /** /v1/kv/<key>: GET (lease read, stale, watch), PUT, DELETE. */
  async function kv(req: IncomingMessage, res: ServerResponse, method: string, path: string, search: string): Promise<void> {
    const key = decodeName(path.slice('/v1/kv/'.length), 'key');
    onlyMethods(method, path, KV_METHODS);
    // HEAD is a GET whose body Node leaves out (the headers, Content-Length included, stay).
    const read = method === 'GET' || method === 'HEAD';
    if (!read && key.startsWith('_quorumd/')) throw bad(`key ${JSON.stringify(key.slice(0, 40))}: the prefix _quorumd/ is reserved for quorumd's own records (service discovery: /v1/services); it can be read, not written`, 'reserved-key');
    if (read) {
      const q = parseQuery(search, ['stale', 'watch', 'wait', 'client', 'seq']);
      rejectBodyIfAny(req);
      const ref = clientRefOf(q.get('client'), q.get('seq'));
      if (typeof ref === 'string') throw bad(ref);
      if (ref && (q.has('watch') || q.has('stale'))) throw bad('client/seq (a signed, ordered read) do not combine with watch or stale');
      const w = q.get('watch');
      if (w !== undefined) {
        if (q.has('stale')) throw bad('watch reads are local already; do not combine watch with stale');
        const after = parseIndexParam(w, 'watch');
        const waitRaw = q.get('wait');
        const waitMs = waitRaw === undefined ? defaultWatchMs : parseDuration(waitRaw, 'wait');
        if (waitMs > maxWatchMs) throw bad(`wait must be at most ${maxWatchMs} ms, got ${waitMs} ms`);
        return watch(req, res, key, after, waitMs);
      }
      if (q.has('wait')) throw bad('wait is only meaningful with watch=<index>');
      const st = q.get('stale');
      if (st !== undefined && st !== '' && st !== 'true' && st !== '1') throw bad(`stale takes no value (or true/1), got ${JSON.stringify(st.slice(0, 40))}`);
      const r = await call((cb) => backend.get(key, { stale: st !== undefined, ...(ref ? { pbftClient: ref } : {}) }, cb));
      return sendValue(res, r, key);
    }
    const q = parseQuery(search, ['cas', 'client', 'seq']);
    const cas = casOf(q);
    const ref = clientRefOf(q.get('client'), q.get('seq'));
    if (typeof ref === 'string') throw bad(ref);
    const wopts = { ...(cas === undefined ? {} : { cas }), ...(ref ? { pbftClient: ref } : {}) };
    if (method === 'PUT') {
      const value = await readBody(req, Math.min(maxBody, MAX_VALUE_BYTES));
      const r = await call((cb) => backend.put(key, value, wopts, cb));
      return writeResult(res, r, cas, 'put');
    }
    rejectBodyIfAny(req);
    const r = await call((cb) => backend.del(key, wopts, cb));
    return writeResult(res, r, cas, 'delete');
  }

  /** Every endpoint but the dashboard's files and /v1/kv. */
  async function endpoint(req: IncomingMessage, res: ServerResponse, method: string, path: string, search: string, who: Caller): Promise<void> {
    if (path === '/v1/status') {
      onlyMethods(method, path, GET_HEAD);
      parseQuery(search, []);
      rejectBodyIfAny(req);
      // version: which quorumd build answers (a rolling upgrade: which board runs what).
      return json(res, 200, { ...backend.status(), version: QUORUMD_VERSION });
    }
    if (path === '/v1/leader') {
      onlyMethods(method, path, GET_HEAD);
      parseQuery(search, []);
      rejectBodyIfAny(req);
      return json(res, 200, backend.leader());
    }
    if (path === '/v1/jobs') {
      onlyMethods(method, path, GET_HEAD);
      parseQuery(search, []);
      rejectBodyIfAny(req);
      if (!backend.jobs) throw new HttpError(501, 'engine-unsupported', 'scheduled jobs need an engine with a replicated log (engine: raft, paxos or zab)');
      return json(res, 200, { jobs: backend.jobs() });
    }
    if (path.startsWith('/v1/jobs/')) {
      const rest = path.slice('/v1/jobs/'.length);
      if (!rest.endsWith('/reset')) throw new HttpError(404, 'not-found', `no such endpoint: ${path.slice(0, 80)} (jobs: GET /v1/jobs, POST /v1/jobs/<name>/reset)`);
      const job = rest.slice(0, -'/reset'.length);
      if (!JOB_NAME.test(job)) throw bad(`job name: expected 1-48 characters a-z, 0-9, '-' and '_', starting with a letter or digit, got ${JSON.stringify(job.slice(0, 60))}`, 'bad-job');
      onlyMethods(method, path, POST_ONLY);
      parseQuery(search, []);
      rejectBodyIfAny(req);
      const reset = backend.jobReset;
      if (!reset) throw new HttpError(501, 'engine-unsupported', 'scheduled jobs need an engine with a replicated log (engine: raft, paxos or zab): there is nothing to reset');
      // Through call(): the same backstop (504 after backstopMs) as every other write.
      const a = (await call((cb) => reset.call(backend, job, (x) => cb(x as ClientResult)))) as JobResetAnswer;
      if (a.status === 200) return json(res, 200, { ok: true, job, withdrawn: a.withdrawn ?? null, floor: a.floor ?? null });
      if (a.status === 409) return json(res, 409, { ok: false, job, error: a.error ?? 'nothing to withdraw', code: 'nothing-to-withdraw' });
      return sendError(res, failure({ status: a.status, ...(a.error !== undefined ? { error: a.error } : {}) }, 'job reset'));
    }
    if (path === '/metrics') {
      onlyMethods(method, path, GET_HEAD);
      parseQuery(search, []);
      rejectBodyIfAny(req);
      return send(res, 200, renderMetrics([...backend.metrics(), ...httpFamilies()]), { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
    }
    if (path === '/v1/keys') {
      onlyMethods(method, path, GET_HEAD);
      const q = parseQuery(search, ['prefix', 'limit']);
      rejectBodyIfAny(req);
      if (!backend.keys) throw new HttpError(501, 'engine-unsupported', 'listing keys needs an engine with a replicated log (engine: raft, paxos, zab, pbft, etcd or zookeeper)');
      const prefix = q.get('prefix') ?? '';
      if (Buffer.byteLength(prefix) > MAX_KEY_BYTES || !wellFormed(prefix)) throw bad(`prefix must be well-formed text of at most ${MAX_KEY_BYTES} bytes`);
      const limitRaw = q.get('limit');
      const limit = limitRaw === undefined ? 1000 : parseIndexParam(limitRaw, 'limit', 'how many keys at most, written in digits');
      if (limit < 1 || limit > 10_000) throw bad(`limit must be between 1 and 10000, got ${limit}`);
      return json(res, 200, backend.keys(prefix, limit));
    }
    if (path === '/v1/locks' && (method === 'GET' || method === 'HEAD')) {
      const q = parseQuery(search, ['prefix', 'limit']);
      rejectBodyIfAny(req);
      if (!backend.locks) throw new HttpError(501, 'engine-unsupported', 'locks need an engine with a replicated log (engine: raft, paxos, zab, pbft, etcd or zookeeper)');
      const prefix = q.get('prefix') ?? '';
      if (Buffer.byteLength(prefix) > MAX_KEY_BYTES || !wellFormed(prefix)) throw bad(`prefix must be well-formed text of at most ${MAX_KEY_BYTES} bytes`);
      // Without limit: every lock (as before; the CLI's lock list). The dashboard asks for
      // a page: with thousands of locks the whole list is megabytes of JSON per poll.
      const limitRaw = q.get('limit');
      const limit = limitRaw === undefined ? Infinity : parseIndexParam(limitRaw, 'limit', 'how many locks at most, written in digits');
      if (limitRaw !== undefined && (limit < 1 || limit > 10_000)) throw bad(`limit must be between 1 and 10000, got ${limit}`);
      return json(res, 200, backend.locks(prefix, limit));
    }
    if (path === '/v1/pbft/reply') {
      onlyMethods(method, path, GET_HEAD);
      const q = parseQuery(search, ['client', 'seq']);
      rejectBodyIfAny(req);
      if (!backend.pbftClientReply || backend.status().engine !== 'pbft') throw new HttpError(501, 'engine-unsupported', 'signed replies are given by engine pbft only');
      const ref = clientRefOf(q.get('client'), q.get('seq'));
      if (ref === undefined) throw bad('needs client=<hex id>&seq=<request number>');
      if (typeof ref === 'string') throw bad(ref);
      const rep = backend.pbftClientReply(ref.id, ref.seq);
      if (!rep) return json(res, 404, { error: `no signed reply for client request ${q.get('client')}/${ref.seq} here (not executed here yet, or forgotten)`, code: 'not-found' });
      const b64 = replyHeaderValue(rep);
      return json(res, 200, { replica: rep.replica, reply: b64 }, { [REPLY_HEADER]: b64 });
    }
    if (path.startsWith('/v1/locks/') || path === '/v1/locks') {
      let rest = path.slice('/v1/locks/'.length);
      const renew = rest.endsWith('/renew');
      if (renew) rest = rest.slice(0, -'/renew'.length);
      const name = decodeName(rest, 'lock name');
      rejectBodyIfAny(req);
      if (renew || method === 'DELETE') {
        if (renew) onlyMethods(method, path, POST_ONLY);
        const what = renew ? 'renew' : 'release';
        const q = parseQuery(search, ['lease', 'token', 'client', 'seq']);
        if (q.has('token')) throw bad(`${what} takes lease=<the lease id of the acquire answer>, not token=: the fencing token is public and releases nothing`);
        const lease = leaseParam(q.get('lease'), `${what} needs lease=<the lease id of the acquire answer>`);
        const ref = lockClientRef(q);
        const client = leaseClient(req, who.name);
        holdOffLeaseGuesser(client, lease);
        const r = await call((cb) => {
          if (ref) backend.pbftLock!(renew ? { op: 'lock.renew', name, lease: leaseDigest(lease), now: 0 } : { op: 'lock.release', name, lease: leaseDigest(lease) }, ref, cb);
          else if (renew) backend.lockRenew(name, lease, cb);
          else backend.lockRelease(name, lease, cb);
        });
        if (r.status === 409) {
          countLeaseFailure(client, lease);
          return json(res, 409, { ok: false, error: r.error ?? `lock ${name} is not held with that lease`, code: 'not-held' }, pbftHeaders(r));
        }
        if (r.status !== 200) return sendError(res, failure(r, `lock ${what}`));
        if (!renew) {
          leaseReleased(client, lease);
          return json(res, 200, { ok: true }, pbftHeaders(r));
        }
        leaseWorked(client, lease);
        return json(res, 200, { ok: true, ...(r.token !== undefined ? { token: r.token } : {}), ...(r.ttlMs !== undefined ? { ttlMs: r.ttlMs } : {}), ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}) }, pbftHeaders(r));
      }
      onlyMethods(method, path, POST_DELETE);
      const q = parseQuery(search, ['ttl', 'owner', 'lease', 'client', 'seq']);
      const ttlRaw = q.get('ttl');
      const owner = q.get('owner');
      if (ttlRaw === undefined) throw bad('acquire needs ttl=<duration>, e.g. ttl=15s');
      if (owner === undefined || owner === '') throw bad('acquire needs owner=<who holds it>, e.g. owner=backup-job');
      if (Buffer.byteLength(owner) > MAX_KEY_BYTES || !wellFormed(owner)) throw bad(`owner must be well-formed text of at most ${MAX_KEY_BYTES} bytes`);
      const ttlMs = parseDuration(ttlRaw, 'ttl');
      if (ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) throw bad(`ttl must be between ${MIN_TTL_MS} ms and ${MAX_TTL_MS / 3_600_000} h, got ${ttlMs} ms`);
      // A client may choose its lease id (so that a retry after 504 is the same request); else a fresh one.
      const ref = lockClientRef(q);
      // A pbft client computes the request's bytes itself (the lease digest among them): it names the lease.
      if (ref && !q.has('lease')) throw bad('client/seq on an acquire need lease=<the lease id the client chose>: the signed replies name the request by its bytes');
      const lease = q.has('lease') ? leaseParam(q.get('lease'), 'lease') : newLeaseId();
      const r = await call((cb) => (ref ? backend.pbftLock!({ op: 'lock.acquire', name, owner, ttlMs, now: 0, lease: leaseDigest(lease) }, ref, cb) : backend.lockAcquire(name, owner, ttlMs, lease, cb)));
      if (r.status === 200) {
        leaseWorked(leaseClient(req, who.name), lease);
        return json(res, 200, { token: r.token ?? 0, lease, ttlMs: r.ttlMs ?? ttlMs }, pbftHeaders(r));
      }
      if (r.status === 409) return json(res, 409, { holder: r.holder ?? null, error: r.error ?? `lock ${name} is held by ${r.holder ?? 'another owner'}`, code: 'lock-held' }, pbftHeaders(r));
      return sendError(res, failure(r, 'lock acquire'));
    }
    if (path.startsWith('/v1/fence/')) {
      let rest = path.slice('/v1/fence/'.length);
      const confirm = rest.endsWith('/confirm');
      if (confirm) rest = rest.slice(0, -'/confirm'.length);
      if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(rest)) throw bad(`node must be a member name (a-z, 0-9, -), got ${JSON.stringify(rest.slice(0, 40))}`, 'bad-node');
      onlyMethods(method, path, POST_ONLY);
      parseQuery(search, []);
      rejectBodyIfAny(req);
      if (confirm) {
        if (!backend.confirmFenced) throw new HttpError(501, 'engine-unsupported', 'this node cannot confirm fences (engine without fencing)');
        const r = backend.confirmFenced(rest);
        if (r.status === 200) return json(res, 200, { ok: true, node: rest, ...(r.result ?? {}) });
        throw new HttpError(r.status, r.code ?? (r.status === 404 ? 'not-found' : r.status === 409 ? 'node-alive' : r.status === 503 ? 'unavailable' : 'bad-request'), r.error ?? 'not confirmed');
      }
      const fence = backend.fence;
      if (!fence) throw new HttpError(501, 'engine-unsupported', 'this node cannot fence (engine without fencing)');
      const fenceLimit = opts.fenceTimeoutMs ?? 120_000;
      const r = await new Promise<FenceAnswer | undefined>((resolve) => {
        const t = setTimeout(() => resolve(undefined), fenceLimit);
        fence.call(backend, rest, (a) => {
          clearTimeout(t);
          resolve(a);
        });
      });
      if (r === undefined) throw new HttpError(504, 'outcome-unknown', `the fence of ${rest} did not finish within ${fenceLimit} ms (it may still switch the relay; see /v1/status fences)`);
      if (r.status === 200) return json(res, 200, { ok: true, node: rest, record: r.record ?? null });
      const code = r.status === 502 ? 'fence-failed' : r.status === 404 ? 'not-found' : r.status === 503 ? 'unavailable' : 'bad-request';
      throw new HttpError(r.status, code, r.error ?? 'fence failed', r.record !== undefined ? { record: r.record } : {});
    }
    if (path === '/v1/services' || path.startsWith('/v1/services/')) {
      const svc = opts.services;
      if (!svc) throw new HttpError(501, 'engine-unsupported', 'service discovery needs a replicated KV (engine raft, paxos, zab, pbft, etcd or zookeeper)');
      const tools: HttpTools = {
        json,
        readBody,
        rejectBodyIfAny,
        parseQuery,
        parseDuration,
        error: (status, code, message) => new HttpError(status, code, message),
        maxWatchMs,
        defaultWatchMs,
        openWatch,
      };
      return svc.handle(svc.registry, req, res, path, search, who.scope, tools);
    }
    throw new HttpError(404, 'not-found', `no such endpoint: ${path.slice(0, 80)} (see /v1/status, /v1/leader, /v1/kv/<key>, /v1/keys, /v1/locks, /v1/locks/<name>, /v1/services, /v1/fence/<node>, /v1/jobs, /metrics, /ui)`);
  }

  const serverOpts = {
    maxHeaderSize: 16 * 1024,
    // A missing Host gets our own 400 that says so (route()), not Node's bare one.
    requireHostHeader: false,
    requestTimeout: maxWatchMs + 60_000,
    headersTimeout: headersTimeoutMs,
    // Node checks the two timeouts above only this often (default 30 s: a slow-header client kept its socket ~34 s).
    connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
  };
  // Requests pipelined on one connection run one after the other: Node starts a handler
  // for each request as soon as it is parsed, so a GET pipelined behind a PUT was served
  // before the PUT committed. RFC 9112 §9.3.2 lets a server handle pipelined requests
  // in parallel only when all of them are safe methods; their answers go out in order
  // anyway, so waiting costs a pipelining client nothing it could have seen.
  const previous = new WeakMap<Socket, Promise<void>>();
  // At most MAX_PIPELINED requests without an answer per connection. Node's server stops
  // reading a connection only when answers already written pile up unsent, and ours are
  // written later (after a commit, a read's confirmation), so a client that pipelined
  // thousands of GETs had them all parsed and queued: 8 connections with a read token
  // took a node from ~80 MB to ~540 MB RSS, and a leader lost its leadership to it and
  // was fenced. Past the bound a request is answered 503 at once (nothing tried) with
  // Connection: close, and the connection is read no more: the requests before it still
  // get their answers, then it closes. Clients that pipeline at all send a few.
  const MAX_PIPELINED = 32;
  const overPipelined = (sock: Socket, res: ServerResponse, n: number) => {
    pipelineRefusals++;
    sock.pause();
    json(res, 503, { error: `too many requests pipelined on one connection (${n} without an answer; at most ${MAX_PIPELINED}): not tried; this connection closes after the answers before this one`, code: 'unavailable', ...NOT_TRIED }, { Connection: 'close' });
  };
  // A client's silence is judged by timers: its header not in within headersTimeoutMs
  // (Node's connection check), an idle keep-alive connection past its timeout (the
  // socket's). Node runs due timers *before* it reads the sockets, so after this process
  // stood still past such a timeout (SIGSTOP, a paused VM, a blocked loop), a client
  // whose request had been waiting in the kernel all along looked silent, and its
  // connection was destroyed with the request unanswered — a write never proposed, that
  // the client could not tell from one lost mid-way (bench/chaos-soak.ts: 7 of 56 PUTs
  // sent to a leader just before it was stopped for 12 s). So the verdict waits for the
  // next poll phase, where whatever the kernel holds is read and a request in it reaches
  // the handler; setImmediate runs right after that phase. The connection is destroyed
  // only if no request came. (A request whose body was cut short by a stall longer than
  // requestTimeout, over a minute, is still lost with its connection.)
  const judgedSilent = new Set<Socket>();
  function closeUnlessRequest(socket: Socket): void {
    if (socket.destroyed || judgedSilent.has(socket)) return;
    judgedSilent.add(socket);
    setImmediate(() => {
      if (judgedSilent.delete(socket)) socket.destroy();
    });
  }
  // No closure more than needed per request: under 64 writers a leader answers thousands
  // a second, and what it allocates per request is its garbage collector's work.
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    // A request on a connection judged silent (closeUnlessRequest): it was not.
    if (judgedSilent.size !== 0) judgedSilent.delete(req.socket);
    // Our own Date header: Node's would be written by Date#toUTCString, which loads ICU's
    // time-zone names into the process (~1 MiB resident, daemon/utc-text.ts).
    // It goes into writeHead's object with the others (send, and the 304 below): one
    // setHeader before writeHead would send every header of every answer through
    // setHeader's validation (Node's slow path for headers set both ways).
    res.sendDate = false;
    const sock = req.socket;
    const list = unansweredOn(sock);
    list.push(res);
    slots.busy(tcpOf(sock));
    res.on('close', () => {
      const k = list.indexOf(res);
      if (k >= 0) list.splice(k, 1);
      // Nothing left to answer: idle (a candidate to make room once idle for IDLE_EVICT_MS).
      if (list.length === 0) slots.idle(tcpOf(sock), performance.now());
    });
    if (list.length > MAX_PIPELINED) return overPipelined(sock, res, list.length);
    const before = previous.get(sock);
    // After the one before it whatever became of it (handle answers its own errors).
    const done = before === undefined ? handle(req, res) : before.then(() => handle(req, res), () => handle(req, res));
    previous.set(sock, done);
    done.then(
      () => {
        if (previous.get(sock) === done) previous.delete(sock);
      },
      (err: unknown) => {
        if (previous.get(sock) === done) previous.delete(sock);
        onError(err, `${req.method} ${req.url?.slice(0, 80)}`);
      },
    );
  };
  /** After an endpoint returned: a 500 if it ended without an answer. */
  function answered(res: ServerResponse): void {
    // (Not when the client went away: a watch ends without an answer then, rightly.)
    if (!res.headersSent && !res.destroyed && !res.req.socket.destroyed) json(res, 500, { error: 'handler ended without an answer', code: 'internal' });
  }
  /** An endpoint threw: its HttpError is the answer; anything else is logged and a 500. */
  function failed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      // A body we did not read (413, or an error found before reading it) makes the
      // connection unusable for the next request: say so and close after answering.
      if (!req.complete) res.setHeader('Connection', 'close');
      // Close after this answer, but not while requests pipelined behind it wait on the
      // connection: a write among them would be applied with its answer cut off. (Decided
      // here, not where the error was thrown: by now the parser has read what came with it.)
      else if (err.extra.closeIfLast === true && (unanswered.get(req.socket)?.length ?? 1) <= 1) res.setHeader('Connection', 'close');
      sendError(res, err);
      return;
    }
    onError(err, `${req.method} ${req.url?.slice(0, 80)}`);
    if (!res.headersSent) json(res, 500, { error: `internal error: ${(err as Error)?.message ?? String(err)}`, code: 'internal' });
  }
  const settled = Promise.resolve();
  const handle = (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let p: Promise<void> | void;
    try {
      p = route(req, res);
      if (p === undefined) {
        answered(res);
        return settled;
      }
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.then(() => answered(res), (err: unknown) => failed(req, res, err));
  };
  const server: Server = opts.tls
    ? nodeHttps().createServer({ ...serverOpts, cert: opts.tls.cert, key: opts.tls.key, ...(opts.tls.ca !== undefined ? { ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true } : {}) }, handler)
    : createServer(serverOpts, handler);
  // (The bound in all, opts.maxConnections, is kept by `slots`, not by Node's
  // server.maxConnections, which refuses at the bound where we close an idle one.)
  // A client that half-closes once its request is out (`nc -N`, HTTP stacks that
  // shutdown(SHUT_WR) after sending) must still get its answer: Node's server by default
  // ends its own side at the client's FIN, so a write committed a tick later was never
  // answered — applied or not, the client could not tell. With this (a property of
  // Node's http.Server since 0.x, not in its docs) the connection closes after the last
  // pending answer instead (test/daemon/http/half-close.test.ts).
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? 5000;
  // An idle keep-alive connection's timeout (with a listener here, Node leaves the socket to us).
  server.on('timeout', (s: Socket) => closeUnlessRequest(s));
  /**
   * The connections whose HTTP parser is between messages: no byte of a next request
   * read. Node keeps this list for its own server.closeIdleConnections() (the same test:
   * its ConnectionsList, `idle()`), under a symbol it does not export; found by its
   * description. Without it (another Node.js) no connection counts as idle here, and a
   * newcomer at a full bound is refused as before.
   */
  let connectionsKey: symbol | undefined; // (set once the server listens)
  const parsersBetweenMessages = (): Set<Socket> => {
    connectionsKey ??= Object.getOwnPropertySymbols(server).find((k) => k.description === 'http.server.connections');
    const list = connectionsKey === undefined ? undefined : (server as unknown as Record<symbol, { idle?: () => { socket?: Socket }[] }>)[connectionsKey];
    const out = new Set<Socket>();
    for (const p of list?.idle?.() ?? []) if (p.socket) out.add(tcpOf(p.socket));
    return out;
  };
  /** Counts a new connection, closing what must give way for it, or closes it: hal/address-slots.ts. */
  const admitConnection = (s: Socket, addr: string) => {
    if (s.destroyed) return;
    if (closing) return void s.destroy();
    let between: Set<Socket> | undefined;
    const slot = slots.admit(s, addr, performance.now(), (c) => (between ??= parsersBetweenMessages()).has(c));
    if (slot.refused) {
      refusedConnections++;
      s.destroy();
      return;
    }
    if (slot.evict) {
      if (slot.idle) idleEvictions++;
      else evictedConnections++;
      slot.evict.destroy();
    }
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      slots.release(s);
    });
  };
  server.on('connection', (s: Socket) => {
    acceptedCount++;
    const addr = s.remoteAddress ?? '?';
    if (!slots.full(addr)) return admitConnection(s, addr);
    // At a bound, something gives way or the newcomer is closed; decided after this poll
    // phase, once what the kernel held for the other connections has been read: after
    // this process stood still (a stall, SIGSTOP), a connection whose next request sat
    // unread in the kernel looked idle, and closing it would lose a request its client
    // had sent (the same reason as closeUnlessRequest's wait). The newcomer sends
    // nothing that is read before then.
    setImmediate(admitConnection, s, addr);
  });
  server.on('drop', () => {
    refusedConnections++;
  });
  /**
   * The last answer on a connection, written by hand (Node's parser is done with it), and
   * the connection closed. Requests before it on the connection keep their answers, and
   * this one comes after them: ending the connection at once replaced the answer to a
   * write pipelined before it (applied: a lock granted with its lease never seen) with an
   * answer that says "nothing was tried". The wait is bounded: every request is answered
   * within the backstop. Nothing more is read meanwhile.
   */
  function lastAnswer(socket: Socket, status: string, json: string, o: { head?: boolean; headers?: string } = {}): void {
    const write = () => {
      if (!socket.writable) return void socket.destroy();
      // An answer to HEAD carries no body (RFC 9110 §9.3.2), or the client misreads the stream.
      socket.end(`HTTP/1.1 ${status}\r\nDate: ${httpDateNow()}\r\n${o.headers ?? ''}Content-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${o.head === true ? '' : json}`);
      // end() half-closes; a peer that never closes its side must not keep the socket.
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    // (A request whose body the error cut short is the malformed one: it gets the 400.)
    const before = unanswered.get(socket)?.filter((r) => !r.writableFinished && !r.destroyed && r.req.complete) ?? [];
    if (before.length === 0) return write();
    socket.pause();
    let left = before.length;
    for (const r of before) r.once('close', () => --left === 0 && write());
  }
  // CONNECT (a proxy's tunnel request): Node hands the connection to a 'connect' listener,
  // and without one destroyed it, the client left with a reset and no word why. This is
  // no proxy: 405 naming the method, then the connection closes (whatever the client
  // sent after its request, the tunnel's first bytes, is not read).
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    counts.set(405, (counts.get(405) ?? 0) + 1);
    const body = JSON.stringify({ error: `CONNECT is not allowed: this is quorumd's HTTP API, not a proxy (asked to tunnel to ${JSON.stringify((req.url ?? '').slice(0, 80))}); expected GET, HEAD, PUT, POST or DELETE on /v1/..., /metrics or /ui`, code: 'method-not-allowed' }) + '\n';
    socket.on('error', () => socket.destroy());
    lastAnswer(socket, '405 Method Not Allowed', body, { headers: 'Allow: GET, HEAD, PUT, POST, DELETE\r\n' });
  });
  // A TLS handshake that fails (no client certificate, wrong CA) must not take the server down.
  server.on('tlsClientError', (_err: Error, s: Socket) => s.destroy());
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    counts.set(400, (counts.get(400) ?? 0) + 1);
    if (socket.writable) {
      const json = JSON.stringify({ error: `malformed HTTP request: ${err.code ?? err.message}`, code: 'bad-request' }) + '\n';
      const raw = (err as { rawPacket?: Buffer }).rawPacket;
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT';
      if (timeout) {
        // A client that did not send its header in time gets no answer worth waiting for:
        // destroyed, not half-closed (a client that never reads would keep the descriptor)
        // — unless the header was only waiting for us to read it (closeUnlessRequest).
        closeUnlessRequest(socket);
        return;
      }
      lastAnswer(socket, '400 Bad Request', json, { head: raw !== undefined && raw.subarray(0, 5).toString('latin1') === 'HEAD ' });
    } else socket.destroy();
  });

  server.once('close', () => {
    serverClosed = true;
  });

  /** ApiServer.drain. */
  function drain(why: string): void {
    if (draining !== undefined) return;
    draining = why;
    // Stop listening — once the connections queued at this moment were accepted. A
    // connection the kernel has completed but the process not yet accepted (a client that
    // connected and sent its request just before the signal) is reset when the listener
    // closes: its request sent and never answered. On real processes 18-35 of a burst of
    // 56 PUTs sent 0-30 ms before a SIGTERM were reset that way, also when the close
    // waited for one more poll phase: Node accepts one connection per turn of its event
    // loop (measured: 56 queued took 56 turns, 5-6 ms each in a busy process). So the
    // kernel is asked how many wait now (acceptQueueLength: Linux's /proc/net/tcp), and
    // the listener closes once that many more were accepted (the queue is first in,
    // first out) — bounded by DRAIN_LISTEN_MAX_MS, and DRAIN_ACCEPT_MAX_MS without an
    // accept; where the queue cannot be read, once three checks a millisecond or more
    // apart accepted nothing (at most DRAIN_ACCEPT_MAX_MS). Those accepted meanwhile get
    // their answers (503, not tried). A connection made after the stop began may still be
    // reset by the close (docs/api.md, "Stopping a node").
    //
    // Those bounds count the time this process ran, not the time that passed: a check
    // comes every millisecond or so, and a gap of more than DRAIN_STALL_MS between two
    // is a process that stood still (SIGSTOP, a board too loaded to schedule it, a long
    // pause of the collector), which accepted nothing because it did not run; such a gap
    // counts as DRAIN_STALL_MS. Counting it whole, a stop of 2 s just after the stop
    // began closed the listener at the first check after it, with the queued
    // connections still in the kernel: all but one reset (test/daemon/http/drain.test.ts).
    const port = (server.address() as AddressInfo | null)?.port;
    const queuedAtStop = port === undefined ? undefined : acceptQueueLength(port);
    const acceptedAtStop = acceptedCount;
    let seen = acceptedCount;
    let still = 0;
    const running = runningTime();
    let acceptedAt = 0; // running() at the last accept seen
    const whenQuiet = () => {
      const ran = running();
      if (acceptedCount === seen) still++;
      else {
        seen = acceptedCount;
        still = 0;
        acceptedAt = ran;
      }
      const done =
        closing ||
        (queuedAtStop === undefined
          ? still >= 3 || ran >= DRAIN_ACCEPT_MAX_MS
          : acceptedCount - acceptedAtStop >= queuedAtStop || ran - acceptedAt >= DRAIN_ACCEPT_MAX_MS || ran >= DRAIN_LISTEN_MAX_MS);
      if (done) return closeListener();
      setTimeout(whenQuiet, 1);
    };
    whenQuiet();
    for (const ac of watchStops) ac.abort(STOPPING);
    sweepTimer = setInterval(sweepIdle, 25);
    sweepTimer.unref();
    sweepIdle();
  }

  /**
   * Stops listening (once). Node's Server#close also closes every keep-alive connection
   * idle at that instant, each a race with its client sending on it (a request that then
   * gets no answer): those are left to sweepIdle, which waits until they are quiet.
   */
  function closeListener(): void {
    if (!server.listening) return;
    const own = server.closeIdleConnections;
    server.closeIdleConnections = () => {};
    try {
      server.close();
    } finally {
      server.closeIdleConnections = own;
    }
  }

  /**
   * While stopping: closes each connection without a request in progress, no byte of a
   * next one read, and quiet for DRAIN_IDLE_MS (after this poll phase, as
   * closeUnlessRequest: a request that was waiting in the kernel is answered instead).
   */
  function sweepIdle(): void {
    const now = performance.now();
    let between: Set<Socket> | undefined;
    for (const s of sockets) {
      if (!(slots.quietFor(s, now) >= DRAIN_IDLE_MS)) continue;
      if (!(between ??= parsersBetweenMessages()).has(s)) continue;
      closeUnlessRequest(s);
    }
  }

  const waiting = () => {
    for (const l of lists) if (l.length > 0) return true;
    return false;
  };

  /** ApiServer.allAnswered. */
  async function allAnswered(maxMs: number): Promise<boolean> {
    // Bounded in this process's running time: after a stand-still (SIGSTOP, a starved
    // board) the answers that arrived meanwhile (a commit, the leader's reply to a
    // forwarded write) are still unread in the kernel, and a bound of time passed gave up
    // on them at its first look, before they were read: those writes got 504.
    const ran = runningTime();
    for (let i = 0; i < 1_000_000 && waiting(); i++) {
      if (ran() >= maxMs) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** ApiServer.close. */
  function close(why?: string): Promise<void> {
    closed ??= (async () => {
      drain(why ?? 'the node is stopping');
      const reason = why ?? draining!;
      // Answers the backend gave as it stopped (callbacks, then promise jobs) go out first.
      await new Promise((r) => setImmediate(r));
      for (const l of lists) {
        for (const res of l) {
          if (res.headersSent || res.destroyed) continue;
          const read = res.req.method === 'GET' || res.req.method === 'HEAD';
          // A body not received in full was never acted on.
          // Not tried is only the request whose body never arrived; a read was under way
          // (forwarded, a ReadIndex round): nothing changed, but it was tried.
          if (read || !res.req.complete) json(res, 503, { error: `${reason}; the request was not answered before it stopped (${read ? 'a read' : 'its body had not arrived'}: nothing was changed): ask another node`, code: 'unavailable', ...(read ? {} : NOT_TRIED) }, { Connection: 'close', 'Retry-After': 1 });
          else json(res, 504, { error: `${reason}; the request was not answered before it stopped and may or may not have been applied`, code: 'outcome-unknown' }, { Connection: 'close' });
        }
      }
      // The listener first: drain() closes it once the connections queued at the stop were
      // accepted (bounded: DRAIN_LISTEN_MAX_MS of this process's running time), and they
      // get their answers (503, not tried) meanwhile. Closing it here instead reset them:
      // all of them when the stop found none accepted yet (a node with nothing in progress
      // comes here at once), or after the process stood still.
      const listening = runningTime();
      for (let i = 0; i < 1_000_000 && server.listening && listening() < DRAIN_LISTEN_MAX_MS + DRAIN_ACCEPT_MAX_MS; i++) await new Promise((r) => setTimeout(r, 5));
      // The answers leave and their connections close; idle keep-alive ones after their
      // quiet time (sweepIdle); whatever is left then is dropped (bounded, in running
      // time: after a stand-still the requests sent meanwhile are still to be read).
      const left = runningTime();
      for (let i = 0; i < 1_000_000 && sockets.size > 0 && left() < DRAIN_IDLE_MS + 500; i++) await new Promise((r) => setTimeout(r, 10));
      closing = true;
      closeListener();
      if (sweepTimer !== undefined) clearInterval(sweepTimer);
      if (backstopTimer !== undefined) clearTimeout(backstopTimer);
      backstopTimer = undefined;
      for (const s of sockets) s.destroy();
      if (!serverClosed) await new Promise<void>((r) => server.once('close', () => r()));
    })();
    return closed;
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 7071, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({
        server,
        counts,
        address: () => ({ host: a.address, port: a.port }),
        drain,
        allAnswered,
        close,
      });
    });
  });
}
