/**
 * The real MQTT link (mqtt.js 5, MQTT 3.1.1): implements `Link` (hal/interfaces.ts)
 * over one or more brokers. docs/mqtt.md explains topics, QoS, presence and TLS.
 *
 * - Frames to node N are one PUBLISH each on `quorumd/<cluster>/to/N`, QoS 0. A node
 *   subscribes to its own inbox only (and to presence).
 * - Several brokers: the link keeps a connection to each and sends every frame through
 *   every connected one. Receivers get duplicates; the FrameOpener's replay window
 *   (src/wire/auth.ts) drops them by (from, bootId, seq). Losing a broker loses no
 *   frame as long as another one carries it.
 * - Presence: each connection has a Last Will `{state:"offline",reason:"lost"}` on
 *   `quorumd/<cluster>/presence/<self>` and publishes `{state:"online"}` retained
 *   when it connects; close() publishes `{state:"offline",reason:"closed"}` then
 *   DISCONNECTs (so the broker discards the will). Every presence carries a MAC under
 *   the cluster key and names its connection by (boot, conn) (hal/mqtt/presence.ts):
 *   a forged one is ignored and counted (`forgedPresence`), one of an older start of
 *   that peer, or of an older connection of it to the same broker, is ignored and
 *   counted (`staleWills`). A will arriving live (not replayed from the retained store)
 *   for a peer that no other connected broker still sees online is reported as
 *   `{kind:'peer-gone'}`; an orderly close is not a crash: onPresence reports it
 *   ('offline'), and a live one, once no connected broker shows the peer online, is
 *   `{kind:'peer-goodbye'}` (daemon/start.ts passes it on as the same hint as a will).
 * - Credentials: without a configured username/password the link logs in as its node
 *   with a password derived from the cluster key (hal/mqtt/credentials.ts), which the
 *   embedded broker checks; the client id `quorumd-<cluster>-<id>` is refused by it to
 *   anyone else.
 * - Bounded input: a packet announcing more than maxFrame + 1 KiB closes the
 *   connection at its header (hal/mqtt/guard.ts), before the body is buffered; and the
 *   receive path hands at most FRAMES_PER_TURN frames to the node per event-loop turn,
 *   then yields (the socket is paused meanwhile), so that a flood of frames cannot
 *   starve the node's timers: Raft ticks and heartbeats keep their time.
 * - Events: 'up' when the first broker connection is ready (subscribed), 'down' when
 *   the last one is lost after having been up.
 * - Reconnect: each broker connection retries on its own with exponential backoff and
 *   "equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015):
 *   delay = d/2 + U(0, d/2) with d = min(maxMs, initialMs · 2^attempt); 100 ms
 *   doubling to a 1 s cap by default, so a node is back within a second of its broker
 *   accepting connections again. Failed attempts are counted, not logged.
 * - Clean sessions only: a reconnect starts empty, so no stale RPC is queued at the
 *   broker across a disconnect (Raft retransmits what still matters).
 * - Sockets are created with TCP_NODELAY: with Nagle on, a QoS 1 round trip through
 *   mosquitto stalls ~88 ms on Linux (Nagle waiting for a delayed ACK).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { nodeTls } from '../lazy-builtins.ts';
import type { Duplex } from 'node:stream';
import { MqttClient, type IClientOptions } from 'mqtt';
import type { Done, Link, LinkEvent } from '../interfaces.ts';
import type { NodeId } from '../../src/types.ts';
import { DEFAULT_MAX_FRAME } from '../../src/wire/codec.ts';
import { checkKeyring, type Keyring } from '../../src/wire/tag.ts';
import { checkCluster, checkNodeId, inboxTopic, leaderTopic, parseTopic, presenceFilter, presenceTopic } from './topics.ts';
import { encodePresence, newerConnection, readPresence, type Presence } from './presence.ts';
import { nodeClientId, nodePassword, nodeUsername } from './credentials.ts';
import { MqttSizeGuard } from './guard.ts';
import { encodePublishQos0 } from './publish-packet.ts';

/** The last default `boot` of this process: links made within one second still get growing values. */
let lastDefaultBoot = 0;

/** Frames handed to the node per event-loop turn before the receive path yields (see the header). */
export const FRAMES_PER_TURN = 256;
/** Bytes a packet may carry beyond maxFrame (topic, headers; presence and leader records are far smaller). */
export const PACKET_OVERHEAD = 1024;

/** TLS material: PEM strings or buffers (read the files before constructing the link). */
export interface MqttTlsOptions {
  /** CA certificate(s) the broker certificate must chain to. Default: Node's built-in roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate for mutual TLS. Default: none. */
  cert?: string | Buffer;
  /** Private key of the client certificate. Default: none. */
  key?: string | Buffer;
  /** Default true. Turn off only for a lab broker with a throwaway certificate. */
  rejectUnauthorized?: boolean;
  /** Name the broker certificate must carry (SNI and identity check). Default: the URL's host. */
  servername?: string;
}

/** One broker. `url` is `mqtt://host[:1883]` or `mqtts://host[:8883]`. */
export interface MqttBrokerOptions {
  url: string;
  /** Overrides the link-wide username/password for this broker. */
  username?: string;
  password?: string;
  /** Overrides the link-wide TLS options for this broker (mqtts:// only). */
  tls?: MqttTlsOptions;
}

export interface MqttReconnectOptions {
  /** First retry delay (ms). Default 100: a broker restart on the LAN or a broker process that was stalled for a moment is back at once. */
  initialMs?: number;
  /**
   * Largest retry delay (ms). Default 1000: a node is back within a second of its broker
   * accepting connections again (with equal jitter the wait is 500..1000 ms at the cap).
   * A refused connection costs one SYN and its RST per attempt and is not logged (the
   * runtime logs one line per outage and a summary when it ends), so a broker that
   * stays away for hours costs ~1 attempt per second per node, nothing more.
   */
  maxMs?: number;
}

export interface MqttLinkOptions {
  /** Wire cluster id (0..65535), the `<cluster>` topic segment. */
  cluster: number;
  /**
   * The cluster key(s): presence messages are signed with the current key and
   * accepted under either; without username/password the broker password is derived
   * from the current key (hal/mqtt/credentials.ts).
   */
  keyring: Keyring;
  /**
   * This process's start counter, durable and growing at every start (startNode keeps
   * it in the data directory): with the connection count it orders every connection
   * of this node, so that receivers can tell an old will from a current one. Default:
   * seconds since the Unix epoch, growing by at least one per link made in this
   * process (monotonic across processes only where the clock is).
   */
  boot?: number;
  /** This node's id (1..254): its inbox and presence topics. */
  self: NodeId;
  /** One or more brokers; each frame goes through every connected one. */
  brokers: Array<string | MqttBrokerOptions>;
  /** Link name for status pages and logs. Default `mqtt`. */
  name?: string;
  /** Default credentials for every broker. Default: none (anonymous). */
  username?: string;
  password?: string;
  /** Default TLS options for every mqtts:// broker. */
  tls?: MqttTlsOptions;
  /**
   * MQTT keepalive in seconds (integer 1..65535). Default 5. The broker publishes the
   * will of a silently dead node (power cut, cable pulled) after 1.5 × keepalive
   * (MQTT 3.1.1 §3.1.2.10), i.e. 7.5 s; a crashed process is noticed at once because
   * its kernel closes the socket. Shorter detects faster but false-alarms on Wi-Fi.
   */
  keepaliveSec?: number;
  /** Time allowed for TCP + TLS + CONNACK (ms). Default 5000. */
  connectTimeoutMs?: number;
  reconnect?: MqttReconnectOptions;
  /** Largest frame carried (bytes). Default 65536 (docs/wire.md). Larger ones are refused at send and dropped at receive, and counted. */
  maxFrame?: number;
  /**
   * Bytes that may wait in one socket's send buffer before send() drops frames for that
   * broker (counted). Default 1 MiB. Keeps a stalled broker from growing memory without
   * bound; Raft retransmits what is dropped.
   */
  maxBufferedBytes?: number;
  /** Uniform [0,1) source for backoff jitter. Default Math.random (tests may inject a seeded one). */
  random?: () => number;
}

/** Counters for metrics and tests. Every dropped or ignored input is counted here. */
export interface MqttLinkStats {
  /** PUBLISHes of frames handed to a broker connection (one per frame per broker). */
  framesSent: number;
  /** Frames delivered to onFrame (duplicates through several brokers included). */
  framesReceived: number;
  /** send() with a frame above maxFrame. */
  refusedTooLarge: number;
  /** Frames received above maxFrame. */
  droppedTooLarge: number;
  /** send() while no broker was connected (frame lost). */
  droppedDisconnected: number;
  /** Per-broker sends skipped because that socket's send buffer exceeded maxBufferedBytes. */
  droppedBackpressure: number;
  /** send() after close(). */
  droppedClosed: number;
  /** Messages on a topic this link did not expect (ignored). */
  unexpectedTopic: number;
  /** Presence messages that did not parse or did not match their topic (ignored). */
  badPresence: number;
  /** Presence messages (wills included) whose MAC did not verify under the cluster key: forged (ignored). */
  forgedPresence: number;
  /** Presence messages (wills included) of an older connection than the newest known for that peer (ignored). */
  staleWills: number;
  /** Broker connections closed because a packet announced more than maxFrame + PACKET_OVERHEAD bytes. */
  droppedOversizePackets: number;
  /** Times the receive path yielded to the event loop after FRAMES_PER_TURN frames in one turn. */
  receiveYields: number;
  /** peer-gone events emitted. */
  peerGone: number;
  /** peer-goodbye events emitted (a peer's live orderly goodbye, once no connected broker shows it online). */
  peerGoodbyes: number;
  /** Connection attempts and successful connections over all brokers. */
  connectAttempts: number;
  connects: number;
}

export type PeerState = 'online' | 'offline' | 'gone';

/** Presence change as this link sees it; 'gone' = crashed (will), 'offline' = orderly close. */
export interface PresenceEvent {
  peer: NodeId;
  state: PeerState;
  /** Index of the broker (in options.brokers) the news came through. */
  broker: number;
  /**
   * 'offline' only: true when it came from the broker's retained store at subscribe
   * time (old news: the peer said goodbye before this connection), absent when live.
   */
  retained?: boolean;
}

export interface LeaderInfo {
  /** Leader node id, 0 when none is known. */
  leader: NodeId;
  term: number;
  /** Fencing token of the leadership epoch (docs/fencing.md). */
  token: number | bigint;
}

export interface BrokerStatus {
  url: string;
  connected: boolean;
  /** Failed attempts since the last successful connection. */
  attempts: number;
  lastError: string | undefined;
}

interface Endpoint {
  url: string;
  secure: boolean;
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  tls: MqttTlsOptions;
}

interface Conn {
  index: number;
  ep: Endpoint;
  client: MqttClient | undefined;
  /** The TCP socket under the MQTT stream (under TLS when secure). */
  socket: net.Socket | undefined;
  /** The stream mqtt.js reads and writes (the socket, or TLS over it): frames are written to it directly (send). */
  stream: Duplex | undefined;
  /** Ready = CONNACK received and subscriptions granted. */
  ready: boolean;
  /** Bumped for every new client: events of an older client are ignored. */
  gen: number;
  /** This connection's number within this start (presence `conn`). */
  conn: number;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  lastError: string | undefined;
  /** What this broker says about each peer: latest presence seen on it. */
  presence: Map<NodeId, Presence>;
}

function uncork(stream: Duplex): void {
  stream.uncork();
}

const DEFAULTS = {
  keepaliveSec: 5,
  connectTimeoutMs: 5000,
  initialMs: 100,
  maxMs: 1000,
  maxBufferedBytes: 1 << 20,
} as const;

function parseEndpoint(b: string | MqttBrokerOptions, i: number, o: MqttLinkOptions): Endpoint {
  const spec = typeof b === 'string' ? { url: b } : b;
  if (typeof spec !== 'object' || spec === null || typeof spec.url !== 'string') {
    throw new TypeError(`MqttLink: brokers[${i}] must be a URL string or {url, ...}, got ${JSON.stringify(b)}`);
  }
  let u: URL;
  try {
    u = new URL(spec.url);
  } catch {
    throw new TypeError(`MqttLink: brokers[${i}] "${spec.url}" is not a URL (expected mqtt://host:port or mqtts://host:port)`);
  }
  const secure = u.protocol === 'mqtts:';
  if (!secure && u.protocol !== 'mqtt:') {
    throw new TypeError(`MqttLink: brokers[${i}] "${spec.url}" has protocol ${u.protocol}, expected mqtt: or mqtts:`);
  }
  if (u.username || u.password) {
    throw new TypeError(`MqttLink: brokers[${i}] "${spec.url}": put credentials in username/password options, not in the URL`);
  }
  const port = u.port ? Number(u.port) : secure ? 8883 : 1883;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new TypeError(`MqttLink: brokers[${i}] "${spec.url}" has no host`);
  const username = spec.username ?? o.username;
  const password = spec.password ?? o.password;
  if (username !== undefined && typeof username !== 'string') throw new TypeError(`MqttLink: brokers[${i}] username must be a string`);
  if (password !== undefined && typeof password !== 'string') throw new TypeError(`MqttLink: brokers[${i}] password must be a string`);
  const tlsOpts = spec.tls ?? o.tls ?? {};
  if (!secure && (spec.tls !== undefined)) {
    throw new TypeError(`MqttLink: brokers[${i}] "${spec.url}" has TLS options but is not mqtts://`);
  }
  return { url: spec.url, secure, host, port, username, password, tls: tlsOpts };
}

function positiveInt(v: unknown, what: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new RangeError(`MqttLink: ${what} must be an integer ${lo}..${hi}, got ${String(v)}`);
  }
  return v;
}

export class MqttLink implements Link {
  readonly name: string;
  readonly maxFrame: number;
  readonly stats: MqttLinkStats = {
    framesSent: 0,
    framesReceived: 0,
    refusedTooLarge: 0,
    droppedTooLarge: 0,
    droppedDisconnected: 0,
    droppedBackpressure: 0,
    droppedClosed: 0,
    unexpectedTopic: 0,
    badPresence: 0,
    forgedPresence: 0,
    staleWills: 0,
    droppedOversizePackets: 0,
    receiveYields: 0,
    peerGone: 0,
    peerGoodbyes: 0,
    connectAttempts: 0,
    connects: 0,
  };

  private readonly cluster: number;
  private readonly self: NodeId;
  private readonly conns: Conn[];
  private readonly keepaliveSec: number;
  private readonly connectTimeoutMs: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly maxBuffered: number;
  private readonly random: () => number;
  private readonly inbox: string;
  /** Each peer's inbox topic as UTF-8 bytes, built on its first frame (one per member). */
  private readonly inboxTopics = new Map<NodeId, Buffer>();
  private readonly keyring: Keyring;
  /** This start's counter (see MqttLinkOptions.boot). */
  private readonly boot: number;
  private connSeq = 0;
  /** Newest boot seen per peer, over every broker: a presence of an older start is stale anywhere. */
  private readonly newestBoot = new Map<NodeId, number>();
  /**
   * Newest connection (boot, conn) seen per peer on each broker (key `broker:peer`, kept
   * across reconnects): an older one's presence there is stale. Per broker, because a
   * peer with several brokers holds one connection to each at once, numbered in turn:
   * its first broker's connection is not older than its second's, and compared over
   * every broker the goodbye or will of the lower-numbered one was dropped as stale —
   * that broker kept showing the peer online, and no peer-gone ever came.
   */
  private readonly newest = new Map<string, { boot: number; conn: number }>();
  /** Frames handed on in the current event-loop turn (reset by a setImmediate). */
  private turnFrames = 0;
  private frameHandler: ((frame: Uint8Array) => void) | undefined;
  private eventHandler: ((ev: LinkEvent) => void) | undefined;
  private presenceHandler: ((ev: PresenceEvent) => void) | undefined;
  private up = false;
  /** Since the link went down (monotonic ms), and connection attempts since: the outage summary on 'up'. */
  private downSince: number | undefined;
  private attemptsAtDown = 0;
  private closing = false;
  private closed = false;
  /** Peers reported gone and not seen online since (peer-gone is emitted once per death). */
  private readonly gone = new Set<NodeId>();

  constructor(opts: MqttLinkOptions) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('MqttLink: options object expected');
    this.cluster = checkCluster(opts.cluster, 'MqttLink');
    this.self = checkNodeId(opts.self, 'MqttLink self');
    checkKeyring(opts.keyring, 'MqttLink keyring');
    this.keyring = opts.keyring;
    const boot = opts.boot ?? (lastDefaultBoot = Math.max(lastDefaultBoot + 1, Math.floor(Date.now() / 1000)));
    if (!Number.isInteger(boot) || boot < 0 || boot > 0xffffffff) throw new RangeError(`MqttLink: boot must be an integer 0..4294967295, got ${String(opts.boot)}`);
    this.boot = boot;
    if (!Array.isArray(opts.brokers) || opts.brokers.length === 0) {
      throw new TypeError('MqttLink: brokers must be a non-empty list of broker URLs');
    }
    if (opts.brokers.length > 8) throw new RangeError(`MqttLink: at most 8 brokers, got ${opts.brokers.length}`);
    this.name = opts.name ?? 'mqtt';
    this.maxFrame = positiveInt(opts.maxFrame ?? DEFAULT_MAX_FRAME, 'maxFrame', 1, 256 * 1024 * 1024);
    this.keepaliveSec = positiveInt(opts.keepaliveSec ?? DEFAULTS.keepaliveSec, 'keepaliveSec', 1, 65535);
    this.connectTimeoutMs = positiveInt(opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs, 'connectTimeoutMs', 1, 600_000);
    this.initialMs = positiveInt(opts.reconnect?.initialMs ?? DEFAULTS.initialMs, 'reconnect.initialMs', 1, 600_000);
    this.maxMs = positiveInt(opts.reconnect?.maxMs ?? DEFAULTS.maxMs, 'reconnect.maxMs', this.initialMs, 3_600_000);
    this.maxBuffered = positiveInt(opts.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes, 'maxBufferedBytes', 0, 2 ** 31);
    this.random = opts.random ?? Math.random;
    this.inbox = inboxTopic(this.cluster, this.self);
    // No account configured: log in as this node with the password derived from the cluster key.
    const derived = opts.username === undefined && opts.password === undefined
      ? { username: nodeUsername(this.cluster, this.self), password: nodePassword(this.keyring.current, this.cluster, this.self) }
      : {};
    const eps = opts.brokers.map((b, i) => parseEndpoint(b, i, { ...opts, ...derived }));
    this.conns = eps.map((ep, index) => ({
      index,
      ep,
      client: undefined,
      socket: undefined,
      stream: undefined,
      ready: false,
      gen: 0,
      conn: 0,
      attempts: 0,
      timer: undefined,
      lastError: undefined,
      presence: new Map(),
    }));
    for (const c of this.conns) this.connect(c);
  }

  // ---- Link -------------------------------------------------------------------

  /**
   * Publishes `frame` to `to`'s inbox on every connected broker. Transport trouble
   * never throws (the frame is dropped and counted); a bad argument (no node id, not
   * bytes) is a programming error and throws a RangeError/TypeError naming it.
   */
  send(to: NodeId, frame: Uint8Array): void {
    checkNodeId(to, 'MqttLink.send destination');
    if (!(frame instanceof Uint8Array)) throw new TypeError('MqttLink.send: frame must be a Uint8Array');
    if (this.closing || this.closed) {
      this.stats.droppedClosed++;
      return;
    }
    if (frame.length > this.maxFrame) {
      this.stats.refusedTooLarge++;
      return;
    }
    let packet: Buffer | undefined;
    let any = false;
    for (const c of this.conns) {
      const stream = c.stream;
      if (!c.ready || !c.client || !stream || !stream.writable) continue;
      any = true;
      if (c.socket && c.socket.writableLength > this.maxBuffered) {
        this.stats.droppedBackpressure++;
        continue;
      }
      this.stats.framesSent++;
      // QoS 0: a lost frame is retransmitted by Raft; no broker-side queue, no PUBACK.
      // One buffer, one write, into the stream mqtt.js writes its own packets to (each of
      // those is written whole within one call, so a frame never lands inside one). The
      // stream is corked until the end of this tick, as mqtt.js does for its packets: the
      // frames of one turn (an Append to each follower) leave in one system call.
      packet ??= encodePublishQos0(this.inboxBytes(to), frame);
      if (stream.writableCorked === 0) {
        stream.cork();
        process.nextTick(uncork, stream);
      }
      stream.write(packet);
    }
    if (!any) this.stats.droppedDisconnected++;
  }

  private inboxBytes(to: NodeId): Buffer {
    let t = this.inboxTopics.get(to);
    if (!t) {
      t = Buffer.from(inboxTopic(this.cluster, to), 'utf8');
      this.inboxTopics.set(to, t);
    }
    return t;
  }

  /** The handler gets a view of the received payload; it may keep it (the buffer is not reused). */
  onFrame(handler: (frame: Uint8Array) => void): void {
    this.frameHandler = handler;
  }

  onEvent(handler: (ev: LinkEvent) => void): void {
    this.eventHandler = handler;
  }

  /**
   * Orderly shutdown: on every connected broker publish `offline/closed` (QoS 1,
   * retained), wait for its PUBACK (at most connectTimeoutMs), then DISCONNECT so the
   * broker discards the will. No callback fires after close() (Link contract).
   */
  close(done?: Done): void {
    if (this.closed) {
      done?.(null);
      return;
    }
    if (this.closing) {
      if (done) this.whenClosed.push(done);
      return;
    }
    this.closing = true;
    if (done) this.whenClosed.push(done);
    let pending = this.conns.length;
    const one = () => {
      if (--pending === 0) {
        this.closed = true;
        const cbs = this.whenClosed.splice(0);
        for (const cb of cbs) cb(null);
      }
    };
    for (const c of this.conns) {
      if (c.timer) clearTimeout(c.timer);
      c.timer = undefined;
      const client = c.client;
      if (!client) {
        one();
        continue;
      }
      const finish = (force: boolean) => {
        let called = false;
        const cb = () => {
          if (called) return;
          called = true;
          clearTimeout(guard);
          one();
        };
        // end() calls back once the stream closed; the guard bounds a broker that never answers.
        const guard = setTimeout(() => {
          client.end(true, {}, () => {});
          cb();
        }, this.connectTimeoutMs);
        client.end(force, {}, cb);
        // mqtt.js calls back on the stream's 'close'; if that already happened it never will.
        if (client.stream?.closed) cb();
      };
      // A socket destroyed a moment ago may not have reported 'close' yet: no PUBACK will come.
      if (c.ready && client.stream && !client.stream.destroyed) {
        c.ready = false;
        let sent = false;
        const t = setTimeout(() => {
          if (!sent) {
            sent = true;
            finish(true);
          }
        }, this.connectTimeoutMs);
        client.publish(
          presenceTopic(this.cluster, this.self),
          this.presencePayload({ state: 'offline', reason: 'closed', conn: c.conn }),
          { qos: 1, retain: true },
          () => {
            if (sent) return;
            sent = true;
            clearTimeout(t);
            finish(false);
          },
        );
      } else {
        finish(true);
      }
    }
  }

  private readonly whenClosed: Done[] = [];

  // ---- beyond Link ------------------------------------------------------------

  /** Presence changes as seen through the brokers ('gone' also raises peer-gone on onEvent). */
  onPresence(handler: (ev: PresenceEvent) => void): void {
    this.presenceHandler = handler;
  }

  /**
   * Publishes the retained leader record `{leader, term, token}` (QoS 1) on every
   * connected broker, for dashboards and `quorumd status`. `done(null)` once at least
   * one broker acknowledged; an error if none is connected or none acknowledged.
   * Not republished automatically on reconnect: a deposed leader must not overwrite a
   * newer record, so the runtime calls this again (on 'up') only while it leads.
   */
  publishLeader(info: LeaderInfo, done?: Done): void {
    const cb = done ?? (() => {});
    if (typeof info !== 'object' || info === null) throw new TypeError('MqttLink.publishLeader: {leader, term, token} expected');
    const { leader, term, token } = info;
    if (!Number.isInteger(leader) || leader < 0 || leader > 254) {
      throw new RangeError(`MqttLink.publishLeader: leader must be 0 (none) or a node id 1..254, got ${String(leader)}`);
    }
    if (!Number.isSafeInteger(term) || term < 0) throw new RangeError(`MqttLink.publishLeader: term must be a non-negative safe integer, got ${String(term)}`);
    const tokenOk =
      (typeof token === 'bigint' && token >= 0n) || (typeof token === 'number' && Number.isSafeInteger(token) && token >= 0);
    if (!tokenOk) throw new RangeError(`MqttLink.publishLeader: token must be a non-negative safe integer or bigint, got ${String(token)}`);
    if (this.closing || this.closed) {
      cb(new Error('MqttLink.publishLeader: link is closed'));
      return;
    }
    // Tokens beyond 2^53 travel as decimal strings so that JSON readers do not round them.
    const tok = typeof token === 'bigint' ? (token <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(token) : token.toString()) : token;
    const payload = Buffer.from(JSON.stringify({ leader, term, token: tok }));
    const ready = this.conns.filter((c) => c.ready && c.client);
    if (ready.length === 0) {
      cb(new Error('MqttLink.publishLeader: no broker connected'));
      return;
    }
    let pending = ready.length;
    let ok = false;
    let lastErr: Error | undefined;
    for (const c of ready) {
      c.client!.publish(leaderTopic(this.cluster), payload, { qos: 1, retain: true }, (err) => {
        if (err) lastErr = err;
        else ok = true;
        if (--pending === 0 && !this.closed) cb(ok ? null : (lastErr ?? new Error('publishLeader failed')));
      });
    }
  }

  /** What the brokers say about a peer now (undefined = never heard of). */
  peerState(peer: NodeId): PeerState | undefined {
    if (this.gone.has(peer)) return 'gone';
    let seen = false;
    for (const c of this.conns) {
      const p = c.presence.get(peer);
      if (!p) continue;
      seen = true;
      if (c.ready && p.state === 'online') return 'online';
    }
    return seen ? 'offline' : undefined;
  }

  /**
   * Whether a connected broker shows `peer` online now (Link.reaches): not after its
   * will or its orderly goodbye until it says online again.
   */
  reaches(peer: NodeId): boolean {
    return this.peerState(peer) === 'online';
  }

  /** Per-broker connection state, in options order. */
  status(): BrokerStatus[] {
    return this.conns.map((c) => ({ url: c.ep.url, connected: c.ready, attempts: c.attempts, lastError: c.lastError }));
  }

  /** Number of brokers currently connected and subscribed. */
  connectedCount(): number {
    return this.conns.filter((c) => c.ready).length;
  }

  /** The TCP socket under broker `i` (diagnostics and tests: noDelay, fault injection). */
  socketOf(i: number): net.Socket | undefined {
    return this.conns[i]?.socket;
  }

  // ---- connection management --------------------------------------------------

  private connect(c: Conn): void {
    if (this.closing) return;
    c.timer = undefined;
    const gen = ++c.gen;
    c.conn = ++this.connSeq;
    c.ready = false;
    c.presence.clear();
    this.stats.connectAttempts++;
    const ep = c.ep;
    const builder = (): Duplex => {
      // TCP_NODELAY from the first byte (Node applies it when the socket connects).
      const sock = net.createConnection({ host: ep.host, port: ep.port, noDelay: true });
      c.socket = sock;
      // A packet announcing more than the largest frame closes the connection at its header.
      let stream: Duplex = sock;
      const guard = new MqttSizeGuard(this.maxFrame + PACKET_OVERHEAD, () => {
        this.stats.droppedOversizePackets++;
        c.lastError = `the broker sent a packet larger than ${this.maxFrame + PACKET_OVERHEAD} bytes; connection closed`;
        stream.destroy();
      });
      if (!ep.secure) {
        sock.on('data', (d: Buffer) => guard.feed(d));
        c.stream = sock;
        return sock;
      }
      const servername = ep.tls.servername ?? (net.isIP(ep.host) ? undefined : ep.host);
      const t = nodeTls().connect({
        socket: sock,
        host: ep.host,
        ...(servername !== undefined ? { servername } : {}),
        ca: ep.tls.ca,
        cert: ep.tls.cert,
        key: ep.tls.key,
        rejectUnauthorized: ep.tls.rejectUnauthorized !== false,
      });
      // Errors of the raw socket (ECONNREFUSED) must surface on the stream mqtt.js watches.
      sock.on('error', (err) => t.destroy(err));
      stream = t;
      t.on('data', (d: Buffer) => guard.feed(d));
      c.stream = t;
      return t;
    };
    const options: IClientOptions = {
      protocolVersion: 4,
      clean: true,
      clientId: nodeClientId(this.cluster, this.self),
      keepalive: this.keepaliveSec,
      connectTimeout: this.connectTimeoutMs,
      reconnectPeriod: 0, // our own backoff below
      resubscribe: false,
      queueQoSZero: false, // never queue frames while offline: they would be stale
      // mqtt-packet's number cache is 65,536 two-byte Buffers (~6 MiB of heap on a
      // node that uses a handful of packet ids): written on the fly instead.
      writeCache: false,
      will: {
        topic: presenceTopic(this.cluster, this.self),
        payload: this.presencePayload({ state: 'offline', reason: 'lost', conn: c.conn }),
        qos: 1,
        retain: true,
      },
      ...(ep.username !== undefined ? { username: ep.username } : {}),
      ...(ep.password !== undefined ? { password: ep.password } : {}),
    };
    let client: MqttClient;
    try {
      client = new MqttClient(builder as never, options);
    } catch (err) {
      c.lastError = `cannot create client: ${(err as Error).message}`;
      this.scheduleReconnect(c);
      return;
    }
    c.client = client;
    const live = () => c.gen === gen && !this.closing;
    // The receive path yields after FRAMES_PER_TURN frames in one event-loop turn: mqtt.js
    // takes the next packet only when this calls back, so the socket waits meanwhile.
    client.handleMessage = (_packet, done) => {
      if (this.turnFrames === 0) setImmediate(() => (this.turnFrames = 0));
      if (++this.turnFrames < FRAMES_PER_TURN) return done();
      this.stats.receiveYields++;
      setImmediate(done);
    };
    client.on('connect', () => {
      if (!live()) return;
      const topics = [this.inbox, presenceFilter(this.cluster)];
      client.subscribe({ [topics[0]!]: { qos: 0 }, [topics[1]!]: { qos: 1 } }, (err, granted) => {
          if (!live()) return;
          // mqtt.js 5 reports SUBACK 0x80 as an error carrying the SUBACK packet.
          // (On error the second argument is the SUBACK packet, not the grant list.)
          const codes: unknown[] = err
            ? ((err as { packet?: { granted?: unknown[] } }).packet?.granted ?? [])
            : Array.isArray(granted) ? granted.map((g) => g.qos) : [];
          const refused = topics.filter((_, i) => codes[i] === 128);
          if (err || refused.length > 0) {
            c.lastError =
              refused.length > 0 ? `broker refused subscription to ${refused.join(', ')}` : `subscribe failed: ${err!.message}`;
            this.drop(c, gen);
            return;
          }
          this.publishOnline(c);
          const lastError = c.lastError;
          c.ready = true;
          c.attempts = 0;
          c.lastError = undefined;
          this.stats.connects++;
          if (!this.up) {
            this.up = true;
            if (this.downSince !== undefined) {
              const outageMs = performance.now() - this.downSince;
              const attempts = this.stats.connectAttempts - this.attemptsAtDown;
              this.downSince = undefined;
              this.emit({ kind: 'up', outageMs, attempts, ...(lastError !== undefined ? { lastError } : {}) });
            } else {
              this.emit({ kind: 'up' });
            }
          }
      });
    });
    client.on('message', (topic, payload, packet) => {
      if (!live()) return;
      this.onMessage(c, topic, payload, packet.retain === true);
    });
    client.on('error', (err) => {
      if (!live()) return;
      c.lastError = err.message;
      this.drop(c, gen);
    });
    client.on('close', () => {
      if (!live()) return;
      c.lastError ??= 'connection closed';
      this.drop(c, gen);
    });
  }

  /** Tears down connection `gen` of `c` (once) and schedules the next attempt. */
  private drop(c: Conn, gen: number): void {
    if (c.gen !== gen || this.closing) return;
    c.gen++; // later events of this client are stale
    const client = c.client;
    c.client = undefined;
    c.socket = undefined;
    c.stream = undefined;
    const wasReady = c.ready;
    c.ready = false;
    if (client) client.end(true, {}, () => {});
    // The broker publishes our will for a session that ends like this, and peers act on
    // it when that session had said online (ready): say so first (a leader stops
    // counting earlier heartbeat rounds toward its read lease).
    if (wasReady) this.emit({ kind: 'session-lost', reason: `${c.ep.url}: ${c.lastError ?? 'connection lost'}` });
    if (wasReady) {
      c.attempts = 0;
      if (this.up && !this.conns.some((x) => x.ready)) {
        this.up = false;
        this.downSince = performance.now();
        this.attemptsAtDown = this.stats.connectAttempts;
        this.emit({ kind: 'down', reason: `${c.ep.url}: ${c.lastError ?? 'connection lost'}` });
      }
    } else {
      c.attempts++;
    }
    this.scheduleReconnect(c);
  }

  private scheduleReconnect(c: Conn): void {
    if (this.closing || c.timer) return;
    c.timer = setTimeout(() => this.connect(c), this.backoffMs(c.attempts));
  }

  /** Equal-jitter exponential backoff: d/2 + U(0, d/2), d = min(max, initial · 2^attempts). */
  backoffMs(attempts: number): number {
    const d = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(attempts, 30));
    return Math.round(d / 2 + this.random() * (d / 2));
  }

  private presencePayload(p: { state: 'online' } | { state: 'offline'; reason: 'lost' | 'closed'; conn: number } | { state: 'online'; conn: number }): Buffer {
    const conn = 'conn' in p ? p.conn : 0;
    const pr: Presence = p.state === 'online' ? { node: this.self, state: 'online', boot: this.boot, conn } : { node: this.self, state: 'offline', reason: p.reason, boot: this.boot, conn };
    return encodePresence(pr, this.cluster, this.keyring.current);
  }

  private publishOnline(c: Conn): void {
    c.client?.publish(presenceTopic(this.cluster, this.self), this.presencePayload({ state: 'online', conn: c.conn }), { qos: 1, retain: true }, () => {});
  }

  // ---- receive path -----------------------------------------------------------

  private onMessage(c: Conn, topic: string, payload: Buffer, retained: boolean): void {
    if (topic === this.inbox) {
      if (payload.length > this.maxFrame) {
        this.stats.droppedTooLarge++;
        return;
      }
      this.stats.framesReceived++;
      const h = this.frameHandler;
      if (!h) return;
      try {
        h(new Uint8Array(payload.buffer, payload.byteOffset, payload.length));
      } catch (err) {
        // A bug above the link must not corrupt mqtt.js's parser state: rethrow outside it.
        process.nextTick(() => {
          throw err;
        });
      }
      return;
    }
    const t = parseTopic(topic);
    if (!t || t.kind !== 'presence' || t.cluster !== this.cluster) {
      this.stats.unexpectedTopic++;
      return;
    }
    const r = readPresence(payload, { cluster: this.cluster, topicNode: t.node, keyring: this.keyring });
    if (r.kind === 'malformed') {
      this.stats.badPresence++;
      return;
    }
    if (r.kind === 'forged') {
      // Not signed with the cluster key: whoever published it is not a node. Never acted on.
      this.stats.forgedPresence++;
      return;
    }
    const p = r.presence;
    if (p.node === this.self) {
      // A late will of one of our own older connections overwrote the retained
      // "online" on this broker: say online again.
      if (p.state === 'offline' && (p.boot !== this.boot || p.conn !== c.conn) && c.ready) this.publishOnline(c);
      return;
    }
    const key = `${c.index}:${p.node}`;
    const known = this.newest.get(key);
    if ((this.newestBoot.get(p.node) ?? -Infinity) > p.boot || (known && newerConnection(known, p))) {
      // An older connection's news (a late will, or a replay of an old message).
      this.stats.staleWills++;
      return;
    }
    this.newest.set(key, { boot: p.boot, conn: p.conn });
    this.newestBoot.set(p.node, p.boot);
    const prev = c.presence.get(p.node);
    c.presence.set(p.node, p);
    if (p.state === 'online') {
      const wasGone = this.gone.delete(p.node);
      if (wasGone || prev?.state !== 'online') this.emitPresence({ peer: p.node, state: 'online', broker: c.index });
      return;
    }
    if (p.reason === 'closed') {
      this.emitPresence({ peer: p.node, state: 'offline', broker: c.index, ...(retained ? { retained: true } : {}) });
      // Its goodbye, live (one from the retained store was said before we connected), the
      // moment it went offline on this broker, and once no connected broker still shows it
      // online (with several brokers: the last goodbye): a hint, as the will is.
      if (!retained && prev?.state === 'online' && !this.gone.has(p.node) && !this.reaches(p.node)) {
        this.stats.peerGoodbyes++;
        this.emit({ kind: 'peer-goodbye', peer: p.node });
      }
      return;
    }
    // A will. Replayed from the retained store at subscribe time it is old news;
    // live, it is a death — unless another connected broker still sees the peer online
    // (its connection to this broker alone died).
    if (retained || this.gone.has(p.node)) return;
    const stillOnline = this.conns.some((x) => x !== c && x.ready && x.presence.get(p.node)?.state === 'online');
    if (stillOnline) return;
    this.gone.add(p.node);
    this.stats.peerGone++;
    this.emitPresence({ peer: p.node, state: 'gone', broker: c.index });
    this.emit({ kind: 'peer-gone', peer: p.node });
  }

  private emit(ev: LinkEvent): void {
    if (!this.closed && !this.closing) this.eventHandler?.(ev);
  }

  private emitPresence(ev: PresenceEvent): void {
    if (!this.closed && !this.closing) this.presenceHandler?.(ev);
  }
}
