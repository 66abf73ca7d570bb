/**
 * The embedded MQTT broker (aedes 1.x, MQTT 3.1.1) for `quorumd broker` and
 * `quorumd dev`: optional TLS, per-node credentials and topic rules. docs/mqtt.md
 * has the setup; the rules are:
 *
 *   - Closed by default: a client must present a known username and password
 *     (compared in constant time); otherwise CONNACK 4 (bad username or password).
 *     Accounts come from `users` and from `clusterKeys`: given a cluster's key, the
 *     broker accepts node N of that cluster as `quorumd-<c>-<N>` with the password
 *     derived from the key (hal/mqtt/credentials.ts), current or previous key. An open
 *     broker (no accounts) needs `open: true` and only listens on loopback (tests).
 *   - The client id `quorumd-<c>-<N>` is that node's: a client authenticated as
 *     anybody else that asks for it gets CONNACK 5, so nobody can kick a node off the
 *     broker by connecting with its id (MQTT disconnects the older holder of an id).
 *   - A node account (nodeId N, optionally bound to one cluster) may
 *       subscribe: `quorumd/<c>/to/N`, `quorumd/<c>/leader`, `quorumd/<c>/presence/<any or +>`;
 *       publish:   `quorumd/<c>/to/<any node>`, `quorumd/<c>/leader`, `quorumd/<c>/presence/N`
 *     and a frame it publishes to an inbox must name N as its sender: the broker
 *     peeks at the `from` item of the CBOR header (it cannot check the tag, which
 *     needs the cluster key, but it keeps one node's credentials from speaking as
 *     another). Its Last Will is a publish too, so it can only be for N.
 *   - An observer account (no nodeId) may only subscribe to leader and presence.
 *   - Everything else is refused: subscriptions get SUBACK 0x80, publishes close the
 *     connection (MQTT 3.1.1 has no PUBLISH refusal code; aedes's documented behaviour).
 *
 * Bounded resources, also for an open broker (docs/security.md):
 *   - A packet announcing more than `maxPacketBytes` (default: the largest frame plus
 *     1 KiB) closes its connection at the fixed header, before the body is buffered
 *     (hal/mqtt/guard.ts).
 *   - Publishes per client are rate limited by a token bucket (messages and bytes per
 *     second): a client above its rate is slowed, not dropped — aedes reads a client's
 *     next packets only once the current ones are authorized, so delaying the
 *     authorization pushes back through TCP onto that client alone, and nobody else's
 *     frames wait behind its flood.
 *   - One client address holds at most `maxConnectionsPerAddress` connections. At the
 *     bound a new connection is not refused: the oldest connection of that address that
 *     has not authenticated yet (no CONNECT with good credentials) is closed to make room,
 *     and only when all of them have authenticated is the new one refused. Whoever shares
 *     an address with a node (every local user in `quorumd dev`, a NAT) and holds the
 *     slots with silent sockets, reopening each one the broker closes, mostly closes its
 *     own older sockets; a node's CONNECT, sent at once, authenticates it within a round
 *     trip and it is never closed for this again. All of 127.0.0.0/8 counts as one
 *     address (hal/address-slots.ts addressKey): a local user can send from 127.0.0.2,
 *     127.0.0.3, … as well, and would otherwise hold 64 sockets per address, without end.
 *     A socket may stay silent before its
 *     CONNECT for `connectTimeoutMs` (default 10 s), and as long in a TLS handshake.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import net from 'node:net';
import type { TlsOptions } from 'node:tls';
import { nodeTls } from '../lazy-builtins.ts';
import { Aedes, type AedesOptions, type AuthenticateError, type Client } from 'aedes';
import mqttPacket from 'mqtt-packet';
import type { NodeId } from '../../src/types.ts';
import { DEFAULT_MAX_FRAME } from '../../src/wire/codec.ts';
import { checkCluster, checkNodeId, parseTopic, type ParsedTopic } from './topics.ts';
import { nodePassword, parseNodeName } from './credentials.ts';
import { MqttSizeGuard } from './guard.ts';
import { AddressSlots, addressKey } from '../address-slots.ts';
import type { EarlyListener } from './early-listen.ts';

// aedes writes packets with mqtt-packet, whose default is to pre-build 65,536 two-byte
// Buffers for packet ids on the first write (~6 MiB of heap in the broker's process);
// a broker of a few boards writes them on the fly instead. (The node side sets the
// same through mqtt.js's writeCache option.)
mqttPacket.writeToStream.cacheNumbers = false;

export interface BrokerUser {
  username: string;
  password: string;
  /** The node this account speaks for; absent = observer (read leader/presence only). */
  nodeId?: NodeId;
  /** Restricts the account to one cluster id; absent = any cluster. */
  cluster?: number;
}

export interface BrokerTlsOptions {
  /** Server certificate and key (PEM). */
  cert: string | Buffer;
  key: string | Buffer;
  /** CA for client certificates; with `requestCert`, clients must present one signed by it. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Ask for (and require) a client certificate. Default false: username/password identify nodes. */
  requestCert?: boolean;
}

export interface BrokerOptions {
  /** TCP port; 0 picks a free one (reported in the result). Default 1883 (8883 with TLS). */
  port?: number;
  /** Listen address. Default 127.0.0.1: exposing a broker to the LAN is a deliberate choice. */
  host?: string;
  tls?: BrokerTlsOptions;
  /** Accounts (observers, or nodes with their own passwords). */
  users?: BrokerUser[];
  /** Node accounts derived from cluster keys: node N of `cluster` logs in as quorumd-<cluster>-<N> (hal/mqtt/credentials.ts). */
  clusterKeys?: Array<{ cluster: number; keys: Uint8Array[] }>;
  /** No accounts at all: anyone may connect and publish anything. Loopback only; for tests. Default false. */
  open?: boolean;
  /** Largest MQTT packet accepted (bytes). Default DEFAULT_MAX_FRAME + 1024. */
  maxPacketBytes?: number;
  /** Publish rate per client. Default 5000 messages/s (burst 10000) and 32 MiB/s (burst 32 MiB). */
  rate?: { messagesPerSec?: number; messageBurst?: number; bytesPerSec?: number; byteBurst?: number };
  /**
   * Connections one client address may hold at once. Default 64. At the bound the
   * oldest of that address's connections without a successful CONNECT is closed for the
   * new one; when all have authenticated the new one is refused.
   */
  maxConnectionsPerAddress?: number;
  /**
   * How long a connection may stay before its CONNECT arrives, ms. Default 10,000: a
   * client sends CONNECT as soon as TCP (and TLS, which is done before this starts)
   * is up, and 10 s lets its first segment be retransmitted three times (1 + 2 + 4 s
   * of TCP's initial backoff) on a lossy Wi-Fi; aedes's own default, 30 s, let a
   * silent socket hold a slot three times as long.
   */
  connectTimeoutMs?: number;
  /**
   * Where to report connections closed or refused at the per-address bound (one line,
   * no newline): the first at once, then at most one summary per 10 s while it goes on.
   * Without it they are only counted in `stats`.
   */
  log?: (line: string) => void;
  /**
   * A port already bound (hal/mqtt/early-listen.ts): the broker serves it, with the
   * connections that waited there, instead of binding `port` itself. Plain TCP: not
   * with `tls`.
   */
  listening?: EarlyListener;
}

export interface RunningBroker {
  port: number;
  host: string;
  /** The aedes instance (events for logs and tests). */
  aedes: Aedes;
  /**
   * Refusals and slow-downs so far (metrics, logs, tests). `evictedConnections`: closed
   * before their CONNECT to make room for a newer connection from the same address;
   * `refusedConnections`: refused because that address held its bound of authenticated
   * connections.
   */
  stats: { rateDelayed: number; oversize: number; refusedConnections: number; evictedConnections: number; refusedClientIds: number; refusedLogins: number; refusedSubscriptions: number };
  /** Stops listening, disconnects every client (their wills are published), calls back once. */
  close(cb?: (err: Error | null) => void): void;
}

interface ClientState {
  /** The account it authenticated as (undefined on an open broker, or before CONNACK). */
  user: BrokerUser | undefined;
  /** Token buckets: messages and bytes left, and when they were last refilled (ms). */
  m: number;
  b: number;
  at: number;
  /** The distinct topic filters it subscribed to (at most MAX_SUBSCRIPTIONS). */
  subs?: Set<string>;
}

/**
 * Topic filters one connection may subscribe to. A node needs three (its inbox, the
 * leader topic, presence), a dashboard a few. Without a bound a read-only observer
 * account stalled the broker: one SUBSCRIBE of 2,400 allowed presence filters took 0.4 s
 * of the broker's processor (3.9 s with a persistent session, below), its leader lost
 * its followers, and 240,000 subscriptions took the broker from 48 to 284 MB.
 */
const MAX_SUBSCRIPTIONS = 64;

/** How late a failed login's refusal is answered (ms): see authenticate. */
const LOGIN_REFUSAL_DELAY_MS = 1000;

interface Account {
  user: BrokerUser;
  /** SHA-256 of the password: equal-length digests for timingSafeEqual. */
  digest: Buffer;
}

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}
const NO_USER_DIGEST = sha256('\u0000no-such-user');

function checkUsers(users: unknown): BrokerUser[] {
  if (users === undefined) return [];
  if (!Array.isArray(users)) throw new TypeError('startBroker: users must be a list of {username, password, nodeId?, cluster?}');
  const seen = new Set<string>();
  return users.map((u: unknown, i) => {
    if (typeof u !== 'object' || u === null) throw new TypeError(`startBroker: users[${i}] must be an object`);
    const o = u as Record<string, unknown>;
    if (typeof o.username !== 'string' || o.username.length === 0) throw new TypeError(`startBroker: users[${i}].username must be a non-empty string`);
    if (typeof o.password !== 'string' || o.password.length < 8) {
      throw new TypeError(`startBroker: users[${i}].password must be a string of at least 8 characters`);
    }
    if (seen.has(o.username)) throw new TypeError(`startBroker: users[${i}].username "${o.username}" appears twice`);
    seen.add(o.username);
    const out: BrokerUser = { username: o.username, password: o.password };
    if (o.nodeId !== undefined) out.nodeId = checkNodeId(o.nodeId, `startBroker users[${i}].nodeId`);
    if (o.cluster !== undefined) out.cluster = checkCluster(o.cluster, `startBroker users[${i}]`);
    return out;
  });
}

/**
 * The `from` item of a frame's CBOR header `[version, type, cluster, from, ...]`, or
 * undefined if the payload does not start like a frame. Only unsigned integers in
 * their shortest form are read (src/wire/cbor.ts subset).
 */
export function peekFrameFrom(payload: Uint8Array): number | undefined {
  // Runs on every frame the broker carries: a plain loop, no allocation.
  const n = payload.length;
  let i = 0;
  if (n === 0) return undefined;
  const head = payload[i++]!;
  if (head >= 0x80 && head <= 0x97) {
    /* short array */
  } else if (head === 0x98) i++;
  else return undefined;
  let value = -1;
  for (let k = 0; k < 4; k++) {
    if (i >= n) return undefined;
    const b = payload[i++]!;
    if (b <= 0x17) value = b;
    else if (b === 0x18) {
      if (i >= n) return undefined;
      value = payload[i++]!;
    } else if (b === 0x19) {
      if (i + 1 >= n) return undefined;
      value = (payload[i]! << 8) | payload[i + 1]!;
      i += 2;
    } else return undefined;
  }
  return value;
}

/** Starts the broker; resolves once it listens. */
export async function startBroker(opts: BrokerOptions = {}): Promise<RunningBroker> {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('startBroker: options object expected');
  const host = opts.listening?.host ?? opts.host ?? '127.0.0.1';
  if (typeof host !== 'string' || net.isIP(host) === 0 && host !== 'localhost') {
    throw new TypeError(`startBroker: host must be an IP address or "localhost", got ${JSON.stringify(host)}`);
  }
  if (opts.listening !== undefined && opts.tls) throw new TypeError('startBroker: listening (a port bound early) is plain TCP; a TLS broker binds its own port');
  const port = opts.listening?.port ?? opts.port ?? (opts.tls ? 8883 : 1883);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`startBroker: port must be an integer 0..65535, got ${String(port)}`);
  if (opts.tls && (opts.tls.cert === undefined || opts.tls.key === undefined)) {
    throw new TypeError('startBroker: tls needs cert and key (PEM)');
  }
  const users = checkUsers(opts.users);
  const accounts = new Map<string, Account>(users.map((u) => [u.username, { user: u, digest: sha256(u.password) }]));
  const derivedKeys = new Map<number, Uint8Array[]>();
  for (const [i, ck] of (opts.clusterKeys ?? []).entries()) {
    const c = checkCluster(ck?.cluster, `startBroker clusterKeys[${i}]`);
    if (!Array.isArray(ck.keys) || ck.keys.length === 0 || !ck.keys.every((k) => k instanceof Uint8Array && k.length >= 16)) {
      throw new TypeError(`startBroker: clusterKeys[${i}].keys must be a non-empty list of keys (Uint8Array, at least 16 bytes)`);
    }
    derivedKeys.set(c, [...(derivedKeys.get(c) ?? []), ...ck.keys]);
  }
  const secured = accounts.size > 0 || derivedKeys.size > 0;
  if (!secured && opts.open !== true) {
    throw new TypeError('startBroker: no accounts: give users, or clusterKeys (node accounts derived from the cluster key); an open broker needs open: true');
  }
  if (!secured && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)) {
    throw new TypeError(`startBroker: refusing an open broker (no accounts) on ${host}: anyone on the network could read and inject every message; give users or clusterKeys`);
  }
  const maxPacket = opts.maxPacketBytes ?? DEFAULT_MAX_FRAME + 1024;
  if (!Number.isInteger(maxPacket) || maxPacket < 1024 || maxPacket > 256 * 1024 * 1024) throw new RangeError(`startBroker: maxPacketBytes must be an integer 1024..268435456, got ${String(opts.maxPacketBytes)}`);
  const rate = {
    msgs: opts.rate?.messagesPerSec ?? 5000,
    msgBurst: opts.rate?.messageBurst ?? 10_000,
    bytes: opts.rate?.bytesPerSec ?? 32 * 1024 * 1024,
    byteBurst: opts.rate?.byteBurst ?? 32 * 1024 * 1024,
  };
  for (const [k, v] of Object.entries(rate)) if (typeof v !== 'number' || !(v > 0)) throw new RangeError(`startBroker: rate.${k} must be a positive number, got ${String(v)}`);
  const perAddress = opts.maxConnectionsPerAddress ?? 64;
  if (opts.log !== undefined && typeof opts.log !== 'function') throw new TypeError('startBroker: log must be a function (line: string) => void');
  if (!Number.isInteger(perAddress) || perAddress < 1) throw new RangeError(`startBroker: maxConnectionsPerAddress must be an integer >= 1, got ${String(opts.maxConnectionsPerAddress)}`);
  const connectTimeout = opts.connectTimeoutMs ?? 10_000;
  if (!Number.isInteger(connectTimeout) || connectTimeout < 100 || connectTimeout > 600_000) throw new RangeError(`startBroker: connectTimeoutMs must be an integer 100..600000, got ${String(opts.connectTimeoutMs)}`);
  /**
   * Per client (by Client object: ids may be reused): its account once authenticated,
   * and its token buckets (messages, bytes, last refill ms). One lookup per publish.
   */
  const clients = new WeakMap<Client, ClientState>();
  const stateOf = (client: Client): ClientState => {
    let st = clients.get(client);
    if (!st) clients.set(client, (st = { user: undefined, m: rate.msgBurst, b: rate.byteBurst, at: performance.now() }));
    return st;
  };
  const stats = { rateDelayed: 0, oversize: 0, refusedConnections: 0, evictedConnections: 0, refusedClientIds: 0, refusedLogins: 0, refusedSubscriptions: 0 };

  /** A derived node account, when `username` names a node of a cluster whose key we hold and the password matches. */
  const derivedUser = (username: string | undefined, password: Buffer | undefined): BrokerUser | undefined => {
    const n = parseNodeName(username);
    const keys = n ? derivedKeys.get(n.cluster) : undefined;
    if (!n || !keys) return undefined;
    const given = sha256(password ?? Buffer.alloc(0));
    let ok = false;
    for (const k of keys) if (timingSafeEqual(given, sha256(nodePassword(k, n.cluster, n.node))) && password !== undefined) ok = true;
    return ok ? { username: username!, password: '', nodeId: n.node, cluster: n.cluster } : undefined;
  };

  const refuse = (done: Parameters<NonNullable<AedesOptions['authenticate']>>[3], code: number, msg: string) => {
    const err = new Error(msg) as AuthenticateError;
    (err as { returnCode: number }).returnCode = code;
    done(err, null);
  };
  const authenticate: AedesOptions['authenticate'] = (client, username, password, done) => {
    // Clean sessions only, for every account: quorumd's links never ask for a stored
    // session, and aedes stores a persistent session's subscriptions at a cost that grows
    // with the square of a SUBSCRIBE's filters (3.9 s of broker time for one packet of
    // 2,400), and keeps them after the client has gone.
    if (client.clean === false) return refuse(done, 5, `client ${client.id}: persistent sessions (clean session 0) are not offered by this broker; connect with clean session 1`);
    if (!secured) {
      authenticated(client);
      return done(null, true);
    }
    let user = derivedUser(username, password);
    if (!user) {
      const acc = username === undefined ? undefined : accounts.get(username);
      // Compare against a dummy digest when the user is unknown so that timing does not reveal usernames.
      const given = sha256(password ?? Buffer.alloc(0));
      const match = timingSafeEqual(given, acc ? acc.digest : NO_USER_DIGEST);
      if (match && acc && password !== undefined) user = acc.user;
    }
    if (!user) {
      stats.refusedLogins++;
      const conn = (client as unknown as { conn?: net.Socket }).conn;
      trouble(conn?.remoteAddress ?? '?', 'login');
      // Answered late: a guesser waits a second per try on each connection, and the
      // per-address bound caps its connections, so passwords of a users file (8
      // characters at least) are not tried thousands of times a second (4,268/s from one
      // client before). A client with good credentials never waits.
      const t = setTimeout(() => refuse(done, 4, `bad username or password for client ${client.id}`), LOGIN_REFUSAL_DELAY_MS);
      conn?.once('close', () => clearTimeout(t));
      return;
    }
    // A node's client id is that node's: taking it would disconnect the node (MQTT 3.1.1 §3.1.4).
    const idOf = parseNodeName(client.id);
    if (idOf && (user.nodeId !== idOf.node || (user.cluster !== undefined && user.cluster !== idOf.cluster))) {
      stats.refusedClientIds++;
      return refuse(done, 5, `client id ${client.id} belongs to node ${idOf.node} of cluster ${idOf.cluster}; user ${user.username} may not use it`);
    }
    stateOf(client).user = user;
    authenticated(client);
    done(null, true);
  };

  /** Ms until the client of `b` may publish `bytes` more (0 = now), charging its buckets. */
  const rateWait = (b: ClientState, bytes: number): number => {
    const now = performance.now();
    const dt = (now - b.at) / 1000;
    b.at = now;
    b.m = Math.min(rate.msgBurst, b.m + dt * rate.msgs) - 1;
    b.b = Math.min(rate.byteBurst, b.b + dt * rate.bytes) - bytes;
    // A debt is paid by waiting: the next packets of this client wait behind this one.
    return Math.max(0, (-b.m / rate.msgs) * 1000, (-b.b / rate.bytes) * 1000);
  };

  const clusterOk = (u: BrokerUser, c: number) => u.cluster === undefined || u.cluster === c;

  /**
   * parseTopic, remembered: a cluster publishes to a handful of topics over and over,
   * and splitting each one again cost more than the rest of the checks. Only quorumd
   * topics are kept (at most 26 characters each: anything else is refused, and its
   * connection closed, so it need not be fast), at most 1024 of them: an account
   * publishing to ever new topics only empties it now and then, and a client cannot
   * park long topic strings in it.
   */
  const topics = new Map<string, ParsedTopic>();
  const topicOf = (topic: string): ParsedTopic | undefined => {
    const known = topics.get(topic);
    if (known !== undefined) return known;
    const t = parseTopic(topic);
    if (t === undefined) return undefined;
    if (topics.size >= 1024) topics.clear();
    topics.set(topic, t);
    return t;
  };

  const authorizeSubscribe: AedesOptions['authorizeSubscribe'] = (client, sub, done) => {
    // A connection past MAX_SUBSCRIPTIONS distinct filters is closed (aedes closes it on
    // an error here): every mode, before the account's rules.
    const st = stateOf(client);
    const subs = (st.subs ??= new Set());
    if (!subs.has(sub.topic)) {
      if (subs.size >= MAX_SUBSCRIPTIONS) {
        stats.refusedSubscriptions++;
        return done(new Error(`client ${client.id} subscribed to more than ${MAX_SUBSCRIPTIONS} topic filters`), null);
      }
      subs.add(sub.topic);
    }
    if (!secured) return done(null, sub);
    const u = clients.get(client)?.user;
    const t = parseTopic(sub.topic);
    let ok = false;
    if (u && t && clusterOk(u, t.cluster)) {
      if (t.kind === 'leader' || t.kind === 'presence' || t.kind === 'presence-all') ok = true;
      else if (t.kind === 'inbox') ok = u.nodeId !== undefined && t.node === u.nodeId;
    }
    // Refused subscriptions get SUBACK 0x80 (aedes: callback(null, null) negates it).
    done(null, ok ? sub : null);
  };

  /** The reason a publish of `u` (undefined: not authenticated) to `packet` is refused, or undefined if allowed. */
  const publishRefusal = (u: BrokerUser | undefined, packet: { topic: string; payload: unknown }): string | undefined => {
    if (!u) return 'not authenticated';
    const t = topicOf(packet.topic);
    if (!t || t.kind === 'presence-all') return 'not a quorumd topic';
    if (!clusterOk(u, t.cluster)) return `account is bound to cluster ${u.cluster}`;
    if (u.nodeId === undefined) return 'observer accounts are read-only';
    if (t.kind === 'presence' && t.node !== u.nodeId) return `presence only for node ${u.nodeId}`;
    if (t.kind === 'inbox') {
      const from = peekFrameFrom(packet.payload as Uint8Array);
      if (from !== u.nodeId) return `frames must be sent as node ${u.nodeId} (header says ${from ?? 'not a frame'})`;
    }
    return undefined;
  };

  // Called for every publish (every frame of every write, 4 per write on a 3-node
  // cluster): it answers synchronously and allocates nothing on the allowed path.
  const authorizePublish: AedesOptions['authorizePublish'] = (client, packet, done) => {
    if (packet.topic.startsWith('$SYS')) return done(new Error('$SYS topics are reserved'));
    const st = client ? stateOf(client) : undefined;
    const why = secured ? publishRefusal(st?.user, packet) : undefined;
    const err = why === undefined ? null : new Error(`publish to ${packet.topic} refused for ${st?.user ? `user ${st.user.username}` : 'unknown client'}: ${why}`);
    // Rate limit (every mode, refused publishes too): a client above its rate waits
    // here, and aedes reads no more of it meanwhile.
    const wait = st ? rateWait(st, (packet.payload as Uint8Array | undefined)?.length ?? 0) : 0;
    if (wait <= 0) return done(err);
    stats.rateDelayed++;
    setTimeout(() => done(err), Math.min(wait, 10_000));
  };

  const aedes = await Aedes.createBroker({ authenticate, authorizeSubscribe, authorizePublish, connectTimeout });
  const aedesHandle = aedes.handle as (s: net.Socket) => void;
  /** Connections per client address (hal/address-slots.ts: room is made by closing the oldest not logged in). */
  const slots = new AddressSlots<net.Socket>(perAddress, { key: addressKey });
  /** A connection of `client` presented good credentials: never closed to make room. */
  function authenticated(client: Client): void {
    const s = (client as unknown as { conn?: net.Socket }).conn;
    if (s) slots.authenticated(s);
  }
  /**
   * Reports trouble at the door, per kind: connections closed or refused at the
   * per-address bound, and failed logins. The first event of a kind at once, then what
   * happened during each 10 s window, until a window passes without any.
   */
  let closing = false;
  const TROUBLE_LOG_MS = 10_000;
  type Trouble = 'evicted' | 'refused' | 'login';
  const troubleLine = (kind: Trouble, n: number, addrs: Set<string>, within: string) => {
    const from = `from ${[...addrs].slice(0, 5).join(', ')}${addrs.size > 5 ? ` and ${addrs.size - 5} more` : ''}`;
    if (kind === 'login') return `broker: ${n} failed login(s)${within}, ${from}: bad username or password (each refusal is answered ${LOGIN_REFUSAL_DELAY_MS} ms late)`;
    return kind === 'evicted'
      ? `broker: ${n} connection(s) closed before their CONNECT to make room for newer ones${within}, ${from}: something holds connections of that address without logging in (maxConnectionsPerAddress ${perAddress})`
      : `broker: ${n} connection(s) refused${within} (all ${perAddress} of the address authenticated), ${from} (maxConnectionsPerAddress ${perAddress})`;
  };
  const troubles = new Map<Trouble, { timer: ReturnType<typeof setTimeout> | undefined; n: number; addrs: Set<string> }>();
  const flushTrouble = (kind: Trouble) => {
    const t = troubles.get(kind)!;
    t.timer = undefined;
    if (t.n === 0 || closing) return;
    opts.log?.(troubleLine(kind, t.n, t.addrs, ` in the last ${TROUBLE_LOG_MS / 1000} s`));
    t.n = 0;
    t.addrs.clear();
    t.timer = setTimeout(flushTrouble, TROUBLE_LOG_MS, kind);
    t.timer.unref?.();
  };
  const trouble = (addr: string, kind: Trouble) => {
    if (opts.log === undefined || closing) return;
    let t = troubles.get(kind);
    if (t === undefined) troubles.set(kind, (t = { timer: undefined, n: 0, addrs: new Set() }));
    if (t.timer === undefined) {
      opts.log(troubleLine(kind, 1, new Set([addr]), ''));
      t.timer = setTimeout(flushTrouble, TROUBLE_LOG_MS, kind);
      t.timer.unref?.();
      return;
    }
    t.n++;
    if (t.addrs.size < 64) t.addrs.add(addr);
  };
  const handle = (s: net.Socket) => {
    const addr = s.remoteAddress ?? '?';
    const slot = slots.admit(s, addr);
    if (slot.refused) {
      // Every connection of this address has authenticated: those are never closed for a newcomer.
      stats.refusedConnections++;
      trouble(addr, 'refused');
      s.destroy();
      return;
    }
    if (slot.evict) {
      stats.evictedConnections++;
      trouble(addr, 'evicted');
      slot.evict.destroy();
    }
    s.once('close', () => slots.release(s));
    aedesHandle(s);
    // After aedes's 'readable' listener: this 'data' listener sees every chunk aedes reads
    // (without switching the socket to flowing mode) and closes it at an oversized header.
    const guard = new MqttSizeGuard(maxPacket, () => {
      stats.oversize++;
      s.destroy();
    });
    s.on('data', (d: Buffer) => guard.feed(d));
  };
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server: net.Server = opts.listening ? opts.listening.server : opts.tls
    ? nodeTls().createServer(
        {
          cert: opts.tls.cert,
          key: opts.tls.key,
          ...(opts.tls.ca !== undefined ? { ca: opts.tls.ca } : {}),
          requestCert: opts.tls.requestCert === true,
          rejectUnauthorized: opts.tls.requestCert === true,
          noDelay: true,
          // The TLS handshake comes before handle() (not counted per address, no aedes
          // timer yet): Node's default gives a silent socket 120 s; the same time as
          // for the CONNECT that follows.
          handshakeTimeout: connectTimeout,
        } as TlsOptions,
        handle,
      )
    : net.createServer({ noDelay: true }, handle);
  // A client that resets the connection or fails TLS must not take the broker down; its
  // socket is closed here (Node leaves one whose handshake timed out open otherwise).
  server.on('tlsClientError', (_err: Error, s: net.Socket) => s.destroy());
  if (opts.listening) {
    // Bound already; the connections that waited for the broker are served first.
    opts.listening.take((s) => {
      handle(s);
      track(s);
    });
  } else {
    await new Promise<void>((resolve, reject) => {
      // A port in use (EADDRINUSE) and the like: close what was built, so that nothing
      // (aedes's own timers) keeps the process alive after the caller reports it.
      const fail = (err: NodeJS.ErrnoException) => {
        aedes.close(() => reject(err));
      };
      server.once('error', fail);
      server.listen(port, host, () => {
        server.off('error', fail);
        resolve();
      });
    });
  }
  server.on('error', () => {});
  const addr = server.address() as net.AddressInfo;
  if (!opts.listening) server.on('connection', track);
  return {
    port: addr.port,
    host,
    aedes,
    stats,
    close(cb) {
      if (closing) {
        cb?.(new Error('broker already closing'));
        return;
      }
      closing = true;
      for (const t of troubles.values()) if (t.timer) clearTimeout(t.timer);
      server.close();
      aedes.close(() => {
        // aedes closes its clients; destroy anything left (half-open, TLS handshakes).
        for (const s of sockets) s.destroy();
        cb?.(null);
      });
    },
  };
}
