/**
 * The embedded MQTT broker (aedes 1.x, MQTT 3.1.1) for `quorumd broker` and
 * `quorumd dev`: optional TLS, per-node credentials and topic rules. docs/mqtt.md
 * has the setup; the rules are:
 *
 *   - With `users` configured, a client must present a known username and password
 *     (compared in constant time); otherwise CONNACK 4 (bad username or password).
 *     Without `users` the broker is open (dev mode on 127.0.0.1).
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
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { Aedes, type AedesOptions, type AuthenticateError, type Client } from 'aedes';
import mqttPacket from 'mqtt-packet';
import type { NodeId } from '../../src/types.ts';
import { checkCluster, checkNodeId, parseTopic } from './topics.ts';

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
  /** Accounts; absent or empty = open broker (anyone may connect, topics unrestricted). */
  users?: BrokerUser[];
}

export interface RunningBroker {
  port: number;
  host: string;
  /** The aedes instance (events for logs and tests). */
  aedes: Aedes;
  /** Stops listening, disconnects every client (their wills are published), calls back once. */
  close(cb?: (err: Error | null) => void): void;
}

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
  let i = 0;
  const head = payload[i++];
  if (head === undefined) return undefined;
  if (head >= 0x80 && head <= 0x97) {
    /* short array */
  } else if (head === 0x98) i++;
  else return undefined;
  const uint = (): number | undefined => {
    const b = payload[i++];
    if (b === undefined) return undefined;
    if (b <= 0x17) return b;
    if (b === 0x18) return payload[i++];
    if (b === 0x19) {
      const hi = payload[i++];
      const lo = payload[i++];
      return hi === undefined || lo === undefined ? undefined : (hi << 8) | lo;
    }
    return undefined;
  };
  for (let k = 0; k < 3; k++) if (uint() === undefined) return undefined;
  return uint();
}

/** Starts the broker; resolves once it listens. */
export async function startBroker(opts: BrokerOptions = {}): Promise<RunningBroker> {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('startBroker: options object expected');
  const host = opts.host ?? '127.0.0.1';
  if (typeof host !== 'string' || net.isIP(host) === 0 && host !== 'localhost') {
    throw new TypeError(`startBroker: host must be an IP address or "localhost", got ${JSON.stringify(host)}`);
  }
  const port = opts.port ?? (opts.tls ? 8883 : 1883);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`startBroker: port must be an integer 0..65535, got ${String(port)}`);
  if (opts.tls && (opts.tls.cert === undefined || opts.tls.key === undefined)) {
    throw new TypeError('startBroker: tls needs cert and key (PEM)');
  }
  const users = checkUsers(opts.users);
  const accounts = new Map<string, Account>(users.map((u) => [u.username, { user: u, digest: sha256(u.password) }]));
  const secured = accounts.size > 0;
  /** Account of each authenticated client (by Client object: ids may be reused). */
  const who = new WeakMap<Client, BrokerUser>();

  const authenticate: AedesOptions['authenticate'] = (client, username, password, done) => {
    if (!secured) return done(null, true);
    const acc = username === undefined ? undefined : accounts.get(username);
    // Compare against a dummy digest when the user is unknown so that timing does not reveal usernames.
    const given = sha256(password ?? Buffer.alloc(0));
    const match = timingSafeEqual(given, acc ? acc.digest : NO_USER_DIGEST);
    if (!match || !acc || password === undefined) {
      const err = new Error(`bad username or password for client ${client.id}`) as AuthenticateError;
      (err as { returnCode: number }).returnCode = 4;
      return done(err, null);
    }
    who.set(client, acc.user);
    done(null, true);
  };

  const clusterOk = (u: BrokerUser, c: number) => u.cluster === undefined || u.cluster === c;

  const authorizeSubscribe: AedesOptions['authorizeSubscribe'] = (client, sub, done) => {
    if (!secured) return done(null, sub);
    const u = who.get(client);
    const t = parseTopic(sub.topic);
    let ok = false;
    if (u && t && clusterOk(u, t.cluster)) {
      if (t.kind === 'leader' || t.kind === 'presence' || t.kind === 'presence-all') ok = true;
      else if (t.kind === 'inbox') ok = u.nodeId !== undefined && t.node === u.nodeId;
    }
    // Refused subscriptions get SUBACK 0x80 (aedes: callback(null, null) negates it).
    done(null, ok ? sub : null);
  };

  const authorizePublish: AedesOptions['authorizePublish'] = (client, packet, done) => {
    if (packet.topic.startsWith('$SYS')) return done(new Error('$SYS topics are reserved'));
    if (!secured) return done(null);
    const u = client ? who.get(client) : undefined;
    const t = parseTopic(packet.topic);
    const deny = (why: string) => done(new Error(`publish to ${packet.topic} refused for ${u ? `user ${u.username}` : 'unknown client'}: ${why}`));
    if (!u) return deny('not authenticated');
    if (!t || t.kind === 'presence-all') return deny('not a quorumd topic');
    if (!clusterOk(u, t.cluster)) return deny(`account is bound to cluster ${u.cluster}`);
    if (u.nodeId === undefined) return deny('observer accounts are read-only');
    if (t.kind === 'presence' && t.node !== u.nodeId) return deny(`presence only for node ${u.nodeId}`);
    if (t.kind === 'inbox') {
      const from = peekFrameFrom(packet.payload as Uint8Array);
      if (from !== u.nodeId) return deny(`frames must be sent as node ${u.nodeId} (header says ${from ?? 'not a frame'})`);
    }
    done(null);
  };

  const aedes = await Aedes.createBroker({ authenticate, authorizeSubscribe, authorizePublish });
  const handle = aedes.handle as (s: net.Socket) => void;
  const server: net.Server = opts.tls
    ? tls.createServer(
        {
          cert: opts.tls.cert,
          key: opts.tls.key,
          ...(opts.tls.ca !== undefined ? { ca: opts.tls.ca } : {}),
          requestCert: opts.tls.requestCert === true,
          rejectUnauthorized: opts.tls.requestCert === true,
          noDelay: true,
        } as tls.TlsOptions,
        handle,
      )
    : net.createServer({ noDelay: true }, handle);
  // A client that resets the connection or fails TLS must not take the broker down.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  const addr = server.address() as net.AddressInfo;
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  let closing = false;
  return {
    port: addr.port,
    host,
    aedes,
    close(cb) {
      if (closing) {
        cb?.(new Error('broker already closing'));
        return;
      }
      closing = true;
      server.close();
      aedes.close(() => {
        // aedes closes its clients; destroy anything left (half-open, TLS handshakes).
        for (const s of sockets) s.destroy();
        cb?.(null);
      });
    },
  };
}
