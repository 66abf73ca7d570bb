/**
 * A direct TCP `Link` (hal/interfaces.ts) for nodes on one LAN: no broker between them
 * (issue 14: the broker hop cost ~0.5 ms per direction and ~1 ms of broker CPU per write).
 *
 * The frames are the same authenticated wire frames as on MQTT and serial (docs/wire.md:
 * CBOR + HMAC tag, checked above the link with the replay window); on a stream they travel
 * as `u32 length (big-endian) ‖ frame`.
 *
 * Topology: every node listens on one address and dials every peer. A node *sends* only
 * on the connection it dialed and only *reads* the connections it accepted, so there is
 * never a question which of two crossing connections to keep.
 *
 * Connection set-up (so that only a holder of the cluster key takes a connection slot,
 * and a recorded handshake cannot be replayed):
 *   listener → dialer   "QDT1" ‖ challenge (16 bytes: listener's session (8) ‖ 8 random)   20 bytes
 *   dialer → listener   "QDT1" ‖ cluster u16 ‖ from u8 ‖ to u8 ‖ session (8) ‖ tag (16)   32 bytes
 *     tag = HMAC-SHA256(key, "quorumd-tcp-hello" 0x00 ‖ challenge ‖ cluster ‖ from ‖ to ‖ session)[0..16]
 * The listener accepts the current or the previous key (rotation as for frames). The
 * session is random per link instance (per process start): a connection from a peer
 * with a new session means the peer restarted, and the listener redials it at once,
 * rather than keep sending into a connection whose other end may be gone (a board that
 * lost power sends no RST; TCP would retransmit into it for minutes) — unless its own
 * connection to that peer already leads to the new session: when both restart-time dials
 * cross, ours may reach the new process before its hello reaches us, and redialing it
 * would only cost a needless down and up. The dialer learns which session it reached
 * from the challenge's first 8 bytes. They are not authenticated and need not be: they
 * decide only whether a connection is redialed, and whoever can answer a dial on the
 * peer's address can swallow our frames anyway. The challenge stays 16 bytes as before
 * (a dialer that treats it as opaque still works); its 8 random bytes keep a recorded
 * hello from being replayed (a match needs the same listener process and 64 random bits).
 *
 * Hostile input (every case counted in `stats`, the connection closed, the node keeps
 * running): garbage or a wrong magic, a wrong cluster or addressee, an unknown node, a
 * bad tag (wrong key); a handshake not complete within `helloTimeoutMs` (slowloris); a
 * length of 0 or above `maxFrame` (the connection closes at the header, nothing of that
 * size is buffered).
 *
 * At most `maxPending` accepted connections are in handshake at once. At the bound a new
 * one is not refused: the oldest connection in handshake of the address holding the most
 * of them is closed for it (counted in `evictedPending`). Refusing the newcomer let any
 * LAN host without the key hold every slot with silent connections, reopened as they
 * timed out, and no peer got in: after a power cut of a tcp-only cluster, no leader for
 * as long as it held them. Now a holder mostly closes its own older connections, a peer
 * answers the challenge within a round trip, and a peer dialing from another address
 * than the holder's is not closed for the holder's newcomers at all. Authenticated
 * connections do not count here and are never closed for this.
 *
 * `send` never throws for transport problems: frames for a peer that is not connected,
 * or whose socket already holds `maxQueuedBytes` unsent, are dropped and counted (Raft
 * retransmits). It throws for caller mistakes (a bad id, an oversize frame), like the
 * other links.
 *
 * No 'peer-gone' hints of its own: the hint is the MQTT will of a broker beside it
 * (`mqtt:` with `frames: fallback`, docs/config.md). This link gives two facts that make
 * acting on that will safe (docs/mqtt.md, "The will as a failover hint"):
 *   - `reaches(peer)`: an authenticated connection with that peer is open, dialed or
 *     accepted. A connection counts as closed only on FIN, RST, a socket error or our own
 *     close, never on a timeout's guess, so a partition that sends nothing leaves the
 *     peer "reached" (and its will ignored) until the election timeout decides.
 *     Updated on 'end' and 'error', not only on 'close' (which Node reports a phase of
 *     the event loop later): a killed peer's FIN is seen before its will, which takes a
 *     hop through the broker.
 *   - `{kind:'session-lost', peer}` whenever an authenticated connection with a peer
 *     ends, either direction, emitted by the side that closes it (in the same turn of
 *     the event loop, before it serves anything else) or sees it close: that peer may
 *     now find this node unreachable and act on its will, so a leader drops its read
 *     lease (as on a lost broker session), and a will the runtime held for that peer
 *     may count now.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type { Done, Link, LinkEvent } from '../interfaces.ts';
import { MAX_NODE_ID, type NodeId } from '../../src/types.ts';
import { DEFAULT_MAX_FRAME } from '../../src/wire/codec.ts';
import { checkKeyring, type Keyring } from '../../src/wire/tag.ts';

const MAGIC = Buffer.from('QDT1', 'latin1');
const CHALLENGE_BYTES = 20;
const HELLO_BYTES = 32;
const SESSION_BYTES = 8;
const HELLO_TAG_BYTES = 16;
const HELLO_LABEL = Buffer.from('quorumd-tcp-hello\u0000', 'latin1');

export interface TcpEndpoint {
  host: string;
  port: number;
}

export interface TcpPeer extends TcpEndpoint {
  id: NodeId;
}

export interface TcpLinkOptions {
  /** Cluster id (0..65535), as in the frames. */
  cluster: number;
  self: NodeId;
  keyring: Keyring;
  /** Where this node accepts its peers' connections. Port 0 = any free port (tests; see `port`). */
  listen: TcpEndpoint;
  /** The other nodes and where they listen. */
  peers: TcpPeer[];
  /** Largest frame, bytes. Default the wire default (64 KiB). */
  maxFrame?: number;
  /** An accepted connection must complete the handshake within this, ms. Default 2000. */
  helloTimeoutMs?: number;
  /**
   * Accepted connections in handshake at once. Default 16. At the bound the oldest in
   * handshake from the address holding the most of them is closed for the newcomer.
   */
  maxPending?: number;
  /** Unsent bytes per outgoing connection above which frames are dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
  /** Redial backoff (equal jitter): first retry after ~initialMs (default 100), doubling up to maxMs (default 2000). */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** Random source for challenges' jitter (tests). Default Math.random. */
  random?: () => number;
  /** Link name in status and logs. Default `tcp:<host>:<port>`. */
  name?: string;
}

export interface TcpLinkStats {
  framesSent: number;
  framesReceived: number;
  bytesReceived: number;
  /** send() to a node that is not a configured peer. */
  misaddressed: number;
  /** Frames dropped because the peer was not connected. */
  droppedDown: number;
  /** Frames dropped because the peer's socket already held maxQueuedBytes unsent. */
  droppedBackpressure: number;
  /** Received frames announcing a length of 0 or above maxFrame (connection closed). */
  tooLarge: number;
  /** Handshakes with a wrong magic, cluster, addressee or an unknown node (garbage). */
  badHello: number;
  /** Handshakes whose tag matched no key (wrong key, or a replayed handshake). */
  authFailures: number;
  /** Accepted connections closed for not finishing the handshake in time. */
  helloTimeouts: number;
  /** Connections in handshake closed for a newer one because maxPending were in handshake. */
  evictedPending: number;
  /** Peers seen with a new session (restarted); their outgoing connection was redialed unless it already reached the new session. */
  peerRestarts: number;
  dials: number;
  connects: number;
  disconnects: number;
  listenErrors: number;
}

interface Out {
  peer: TcpPeer;
  sock: net.Socket | null;
  ready: boolean;
  attempts: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  lastError: string | undefined;
  /** The session the listener announced in the challenge of the current connection (hex). */
  reached: string | undefined;
}

export class TcpLink implements Link {
  readonly name: string;
  readonly maxFrame: number;
  readonly self: NodeId;
  readonly stats: TcpLinkStats = {
    framesSent: 0, framesReceived: 0, bytesReceived: 0, misaddressed: 0, droppedDown: 0, droppedBackpressure: 0,
    tooLarge: 0, badHello: 0, authFailures: 0, helloTimeouts: 0, evictedPending: 0, peerRestarts: 0,
    dials: 0, connects: 0, disconnects: 0, listenErrors: 0,
  };
  /** The last transport problem, for status pages. */
  lastError: string | null = null;
  private readonly cluster: number;
  private readonly keyring: Keyring;
  private readonly listenAt: TcpEndpoint;
  private readonly out = new Map<NodeId, Out>();
  /** Authenticated incoming connection per peer, and the session it announced. */
  private readonly inbound = new Map<NodeId, { sock: net.Socket; session: string }>();
  private readonly sessions = new Map<NodeId, string>();
  private readonly session = randomBytes(SESSION_BYTES);
  /** Accepted connections in handshake, oldest first, and the address each came from. */
  private readonly pending = new Map<net.Socket, string>();
  private readonly server: net.Server;
  private readonly helloTimeoutMs: number;
  private readonly maxPending: number;
  private readonly maxQueued: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;
  private listenTimer: ReturnType<typeof setTimeout> | undefined;
  private listenAttempts = 0;
  private boundPort = 0;
  private up = false;
  private closed = false;
  private frameHandler: ((frame: Uint8Array) => void) | null = null;
  private eventHandler: ((ev: LinkEvent) => void) | null = null;

  constructor(opts: TcpLinkOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('TcpLink: options object required');
    if (!Number.isInteger(opts.cluster) || opts.cluster < 0 || opts.cluster > 0xffff) throw new RangeError(`tcp: cluster must be an integer 0..65535, got ${String(opts.cluster)}`);
    checkId('tcp.self', opts.self);
    checkKeyring(opts.keyring, 'tcp keyring');
    checkEndpoint('tcp.listen', opts.listen, true);
    if (!Array.isArray(opts.peers) || opts.peers.length === 0) throw new RangeError('tcp.peers: expected at least one peer {id, host, port}');
    this.cluster = opts.cluster;
    this.self = opts.self;
    this.keyring = opts.keyring;
    this.listenAt = { host: opts.listen.host, port: opts.listen.port };
    this.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!Number.isInteger(this.maxFrame) || this.maxFrame < 64 || this.maxFrame > 16 * 1024 * 1024) throw new RangeError(`tcp.maxFrame: expected an integer 64..16777216, got ${String(opts.maxFrame)}`);
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 2000;
    if (!(this.helloTimeoutMs > 0)) throw new RangeError(`tcp.helloTimeoutMs: expected > 0, got ${String(opts.helloTimeoutMs)}`);
    this.maxPending = opts.maxPending ?? 16;
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) throw new RangeError(`tcp.maxPending: expected an integer >= 1, got ${String(opts.maxPending)}`);
    this.maxQueued = opts.maxQueuedBytes ?? 1024 * 1024;
    if (!(this.maxQueued >= this.maxFrame)) throw new RangeError(`tcp.maxQueuedBytes: expected at least maxFrame (${this.maxFrame}), got ${String(opts.maxQueuedBytes)}`);
    this.initialMs = opts.reconnect?.initialMs ?? 100;
    this.maxMs = opts.reconnect?.maxMs ?? 2000;
    if (!(this.initialMs > 0) || !(this.maxMs >= this.initialMs)) throw new RangeError(`tcp.reconnect: expected 0 < initialMs <= maxMs, got ${this.initialMs} / ${this.maxMs}`);
    this.random = opts.random ?? Math.random;
    this.name = opts.name ?? `tcp:${opts.listen.host}:${opts.listen.port}`;
    for (const [i, p] of opts.peers.entries()) {
      checkId(`tcp.peers[${i}].id`, p?.id);
      checkEndpoint(`tcp.peers[${i}]`, p, false);
      if (p.id === this.self) throw new RangeError(`tcp.peers[${i}]: node ${p.id} is this node`);
      if (this.out.has(p.id)) throw new RangeError(`tcp.peers[${i}]: node ${p.id} appears twice`);
      this.out.set(p.id, { peer: { id: p.id, host: p.host, port: p.port }, sock: null, ready: false, attempts: 0, timer: undefined, lastError: undefined, reached: undefined });
    }
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.accepted(s));
    this.server.on('error', (err) => this.listenFailed(err));
    this.server.on('listening', () => {
      this.listenAttempts = 0;
      const a = this.server.address();
      this.boundPort = typeof a === 'object' && a !== null ? a.port : this.listenAt.port;
    });
    this.server.listen(this.listenAt.port, this.listenAt.host);
    for (const o of this.out.values()) this.dial(o);
  }

  /** The port the link listens on (the bound one when `listen.port` was 0); 0 until listening. */
  get port(): number {
    return this.boundPort;
  }

  /** Calls back once the listening socket is bound (or at once if it is). */
  whenListening(cb: () => void): void {
    if (this.server.listening) cb();
    else this.server.once('listening', cb);
  }

  /** Peers with an authenticated outgoing connection. */
  connectedPeers(): NodeId[] {
    return [...this.out.values()].filter((o) => o.ready).map((o) => o.peer.id);
  }

  /**
   * Whether an authenticated connection with `peer` is open now, dialed or accepted
   * (see the header: closed only by FIN, RST, a socket error or our own close).
   */
  reaches(peer: NodeId): boolean {
    return this.out.get(peer)?.ready === true || this.inbound.has(peer);
  }

  /** Whether a frame for `peer` can leave now (its outgoing connection is up). */
  sendsTo(peer: NodeId): boolean {
    return this.out.get(peer)?.ready === true;
  }

  /** Per-peer connection state, in options order. */
  status(): { peer: NodeId; address: string; connected: boolean; inbound: boolean; attempts: number; lastError: string | undefined }[] {
    return [...this.out.values()].map((o) => ({
      peer: o.peer.id,
      address: `${o.peer.host}:${o.peer.port}`,
      connected: o.ready,
      inbound: this.inbound.has(o.peer.id),
      attempts: o.attempts,
      lastError: o.lastError,
    }));
  }

  send(to: NodeId, frame: Uint8Array): void {
    if (!Number.isInteger(to) || to < 1 || to > MAX_NODE_ID) throw new RangeError(`${this.name} send: 'to' must be a node id 1..${MAX_NODE_ID}, got ${String(to)}`);
    if (!(frame instanceof Uint8Array)) throw new TypeError(`${this.name} send: frame must be a Uint8Array, got ${typeof frame}`);
    if (frame.length === 0 || frame.length > this.maxFrame) throw new RangeError(`${this.name} send: frame of ${frame.length} bytes; expected 1..maxFrame (${this.maxFrame})`);
    if (this.closed) return;
    const o = this.out.get(to);
    if (o === undefined) {
      this.stats.misaddressed++;
      return;
    }
    const s = o.sock;
    if (!o.ready || s === null) {
      this.stats.droppedDown++;
      return;
    }
    if (s.writableLength + frame.length > this.maxQueued) {
      this.stats.droppedBackpressure++;
      return;
    }
    const b = Buffer.allocUnsafe(4 + frame.length);
    b.writeUInt32BE(frame.length, 0);
    b.set(frame, 4);
    this.stats.framesSent++;
    // Frames sent in one turn of the event loop (a Ready's Appends and replies, a batch
    // under many clients) leave in one writev: cork now, uncork once this turn's
    // synchronous work is done (the pattern Node's stream docs give for cork).
    if (s.writableCorked === 0) {
      s.cork();
      process.nextTick(uncork, s);
    }
    s.write(b);
  }

  onFrame(handler: (frame: Uint8Array) => void): void {
    if (typeof handler !== 'function') throw new TypeError(`${this.name} onFrame: expected a function`);
    this.frameHandler = handler;
  }

  onEvent(handler: (ev: LinkEvent) => void): void {
    if (typeof handler !== 'function') throw new TypeError(`${this.name} onEvent: expected a function`);
    this.eventHandler = handler;
  }

  close(done?: Done): void {
    if (this.closed) {
      done?.(null);
      return;
    }
    this.closed = true;
    if (this.listenTimer) clearTimeout(this.listenTimer);
    for (const o of this.out.values()) {
      if (o.timer) clearTimeout(o.timer);
      o.timer = undefined;
      o.ready = false;
      o.sock?.destroy();
      o.sock = null;
    }
    for (const s of this.pending.keys()) s.destroy();
    this.pending.clear();
    for (const { sock } of this.inbound.values()) sock.destroy();
    this.inbound.clear();
    if (this.server.listening) this.server.close(() => done?.(null));
    else done?.(null);
  }

  // ---- outgoing ---------------------------------------------------------------

  private dial(o: Out): void {
    if (this.closed) return;
    o.timer = undefined;
    this.stats.dials++;
    const sock = net.createConnection({ host: o.peer.host, port: o.peer.port, noDelay: true });
    o.sock = sock;
    o.ready = false;
    o.reached = undefined;
    let got: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => fail(`no handshake from ${o.peer.host}:${o.peer.port} within ${this.helloTimeoutMs} ms`), this.helloTimeoutMs + 1000);
    const fail = (why: string) => {
      clearTimeout(timer);
      if (o.sock !== sock) return;
      sock.destroy();
      o.sock = null;
      const wasReady = o.ready;
      o.ready = false;
      o.lastError = why;
      this.lastError = `node ${o.peer.id}: ${why}`;
      if (wasReady) {
        this.stats.disconnects++;
        o.attempts = 0;
        this.emit({ kind: 'session-lost', reason: `node ${o.peer.id}: ${why}`, peer: o.peer.id });
        this.updateUp(`node ${o.peer.id}: ${why}`);
      } else {
        o.attempts++;
      }
      this.scheduleDial(o);
    };
    sock.on('error', (err) => fail(err.message));
    // The peer's FIN: closed for us at once (see the header), not a loop phase later at 'close'.
    sock.on('end', () => fail('connection closed by the peer'));
    sock.on('close', () => fail('connection closed'));
    sock.on('data', (d: Buffer) => {
      if (o.sock !== sock) return;
      if (o.ready) {
        fail('the listener sent data after the handshake');
        return;
      }
      got = got.length === 0 ? d : Buffer.concat([got, d]);
      if (got.length < CHALLENGE_BYTES) return;
      if (got.length > CHALLENGE_BYTES || !got.subarray(0, 4).equals(MAGIC)) {
        fail(`${o.peer.host}:${o.peer.port} is not a quorumd TCP link (bad handshake)`);
        return;
      }
      clearTimeout(timer);
      const challenge = got.subarray(4, CHALLENGE_BYTES);
      sock.write(this.hello(challenge, o.peer.id));
      o.reached = challenge.subarray(0, SESSION_BYTES).toString('hex');
      o.ready = true;
      o.attempts = 0;
      o.lastError = undefined;
      this.stats.connects++;
      this.updateUp(undefined);
    });
  }

  private scheduleDial(o: Out): void {
    if (this.closed || o.timer) return;
    const d = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(o.attempts, 20));
    o.timer = setTimeout(() => this.dial(o), Math.round(d / 2 + this.random() * (d / 2)));
  }

  private hello(challenge: Buffer, to: NodeId): Buffer {
    const b = Buffer.alloc(HELLO_BYTES);
    MAGIC.copy(b, 0);
    b.writeUInt16BE(this.cluster, 4);
    b.writeUInt8(this.self, 6);
    b.writeUInt8(to, 7);
    this.session.copy(b, 8);
    helloTag(this.keyring.current, challenge, b.subarray(4, 8 + SESSION_BYTES)).copy(b, 8 + SESSION_BYTES);
    return b;
  }

  private updateUp(reason: string | undefined): void {
    const any = [...this.out.values()].some((o) => o.ready);
    if (any && !this.up) {
      this.up = true;
      this.emit({ kind: 'up' });
    } else if (!any && this.up) {
      this.up = false;
      this.emit({ kind: 'down', reason: reason ?? 'no peer connected' });
    }
  }

  // ---- incoming ---------------------------------------------------------------

  private accepted(sock: net.Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    if (this.pending.size >= this.maxPending) this.makeRoom();
    this.pending.set(sock, sock.remoteAddress ?? '?');
    const challenge = Buffer.concat([this.session, randomBytes(CHALLENGE_BYTES - 4 - SESSION_BYTES)]);
    sock.write(Buffer.concat([MAGIC, challenge]));
    let got: Buffer = Buffer.alloc(0);
    let peer: NodeId | 0 = 0;
    const timer = setTimeout(() => {
      if (peer !== 0) return;
      this.stats.helloTimeouts++;
      sock.destroy();
    }, this.helloTimeoutMs);
    // After the handshake: the frame parser's state.
    let need = 0; // bytes of the frame being read; 0 = reading a header
    // The end of an authenticated connection, seen first at FIN ('end'), RST ('error')
    // or 'close': the peer is no longer reached through it.
    const ended = (why: string) => {
      if (peer === 0 || this.inbound.get(peer)?.sock !== sock) return;
      this.inbound.delete(peer);
      if (!sock.destroyed) sock.destroy();
      this.emit({ kind: 'session-lost', reason: `node ${peer}: incoming connection ${why}`, peer });
    };
    sock.on('end', () => ended('closed by the peer'));
    // A reset from a hostile peer is not our error; 'close' follows.
    sock.on('error', (err) => ended(err.message));
    sock.on('close', () => {
      clearTimeout(timer);
      this.pending.delete(sock);
      ended('closed');
    });
    sock.on('data', (d: Buffer) => {
      if (this.closed) return;
      this.stats.bytesReceived += d.length;
      got = got.length === 0 ? d : Buffer.concat([got, d]);
      if (peer === 0) {
        if (got.length < HELLO_BYTES) {
          // A wrong magic is garbage at once; do not wait for the timeout.
          if (!MAGIC.subarray(0, Math.min(4, got.length)).equals(got.subarray(0, Math.min(4, got.length)))) this.refuse(sock, timer, 'badHello');
          return;
        }
        const who = this.checkHello(got.subarray(0, HELLO_BYTES), challenge);
        if (typeof who === 'string') {
          this.refuse(sock, timer, who);
          return;
        }
        clearTimeout(timer);
        this.pending.delete(sock);
        peer = who.peer;
        const old = this.inbound.get(peer);
        this.inbound.set(peer, { sock, session: who.session });
        if (old) {
          old.sock.destroy();
          this.emit({ kind: 'session-lost', reason: `node ${peer}: incoming connection replaced by a new one`, peer });
        }
        const known = this.sessions.get(peer);
        this.sessions.set(peer, who.session);
        if (known !== undefined && known !== who.session) {
          // The peer restarted: our connection to it may lead into a dead socket, unless
          // its challenge came from the new session (the dials crossed; see the header).
          this.stats.peerRestarts++;
          const o = this.out.get(peer)!;
          if (o.sock !== null && o.ready && o.reached !== who.session) {
            o.sock.destroy(); // 'close' → redial with attempts reset
          }
        }
        got = got.subarray(HELLO_BYTES);
      }
      // Frames: u32 length ‖ frame.
      while (!sock.destroyed) {
        if (need === 0) {
          if (got.length < 4) break;
          const len = got.readUInt32BE(0);
          if (len === 0 || len > this.maxFrame) {
            this.stats.tooLarge++;
            this.lastError = `node ${peer}: a frame of ${len} bytes announced (expected 1..${this.maxFrame}); connection closed`;
            ended(`closed: a frame of ${len} bytes announced`);
            return;
          }
          need = len;
          got = got.subarray(4);
        }
        if (got.length < need) break;
        // A copy: the handler may keep the frame, and `got` may be a view of a larger chunk.
        const frame = new Uint8Array(need);
        frame.set(got.subarray(0, need));
        got = got.subarray(need);
        need = 0;
        this.stats.framesReceived++;
        this.deliver(frame);
        if (this.closed) return;
      }
      // Keep no view of a large chunk alive for a few trailing bytes.
      if (got.length > 0 && got.byteOffset > 0) got = Buffer.from(got);
    });
  }

  /**
   * Closes the oldest connection in handshake of the address that holds the most of
   * them (a Map iterates in insertion order): a holder of many slots pays for its own
   * newcomers. At most maxPending entries: two short passes.
   */
  private makeRoom(): void {
    const per = new Map<string, number>();
    let most = 0;
    for (const addr of this.pending.values()) {
      const n = (per.get(addr) ?? 0) + 1;
      per.set(addr, n);
      if (n > most) most = n;
    }
    for (const [s, addr] of this.pending) {
      if (per.get(addr) !== most) continue;
      this.stats.evictedPending++;
      this.pending.delete(s);
      s.destroy(); // its 'close' clears its timer
      return;
    }
  }

  private refuse(sock: net.Socket, timer: ReturnType<typeof setTimeout>, why: 'badHello' | 'authFailures' | string): void {
    clearTimeout(timer);
    if (why === 'authFailures') this.stats.authFailures++;
    else this.stats.badHello++;
    this.pending.delete(sock);
    sock.destroy();
  }

  /** The peer and session a handshake proves, or which counter it fails. */
  private checkHello(h: Buffer, challenge: Buffer): { peer: NodeId; session: string } | 'badHello' | 'authFailures' {
    if (!h.subarray(0, 4).equals(MAGIC)) return 'badHello';
    const cluster = h.readUInt16BE(4);
    const from = h.readUInt8(6);
    const to = h.readUInt8(7);
    if (cluster !== this.cluster || to !== this.self || !this.out.has(from)) return 'badHello';
    const signed = h.subarray(4, 8 + SESSION_BYTES);
    const tag = h.subarray(8 + SESSION_BYTES, HELLO_BYTES);
    const keys = this.keyring.previous ? [this.keyring.current, this.keyring.previous] : [this.keyring.current];
    const ok = keys.some((k) => timingSafeEqual(helloTag(k, challenge, signed), tag));
    if (!ok) return 'authFailures';
    return { peer: from, session: h.subarray(8, 8 + SESSION_BYTES).toString('hex') };
  }

  private listenFailed(err: Error): void {
    if (this.closed) return;
    this.stats.listenErrors++;
    this.lastError = `cannot listen on ${this.listenAt.host}:${this.listenAt.port}: ${err.message}`;
    if (this.listenAttempts++ === 0) this.emit({ kind: 'down', reason: this.lastError });
    const d = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.listenAttempts, 20));
    this.listenTimer = setTimeout(() => {
      this.listenTimer = undefined;
      if (!this.closed) this.server.listen(this.listenAt.port, this.listenAt.host);
    }, d);
  }

  private deliver(frame: Uint8Array): void {
    const h = this.frameHandler;
    if (!h) return;
    try {
      h(frame);
    } catch (err) {
      // A bug above the link is not the peer's fault: rethrow outside the socket's handler.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  private emit(ev: LinkEvent): void {
    if (!this.closed) this.eventHandler?.(ev);
  }
}

function uncork(s: net.Socket): void {
  s.uncork();
}

function helloTag(key: Uint8Array, challenge: Buffer, signed: Buffer): Buffer {
  return createHmac('sha256', key).update(HELLO_LABEL).update(challenge).update(signed).digest().subarray(0, HELLO_TAG_BYTES);
}

function checkId(what: string, v: unknown): asserts v is NodeId {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_NODE_ID) throw new RangeError(`${what}: expected a node id 1..${MAX_NODE_ID}, got ${String(v)}`);
}

function checkEndpoint(what: string, e: unknown, allowZero: boolean): asserts e is TcpEndpoint {
  const o = e as Partial<TcpEndpoint> | null;
  if (o === null || typeof o !== 'object') throw new TypeError(`${what}: expected {host, port}, got ${String(e)}`);
  if (typeof o.host !== 'string' || o.host.length === 0) throw new RangeError(`${what}.host: expected a host name or IP address, got ${JSON.stringify(o.host)}`);
  if (!Number.isInteger(o.port) || (o.port as number) < (allowZero ? 0 : 1) || (o.port as number) > 65535) throw new RangeError(`${what}.port: expected a port ${allowZero ? 0 : 1}..65535, got ${String(o.port)}`);
}
