/**
 * `engine: zookeeper` — leadership and replicated state through a ZooKeeper ensemble,
 * with `node-zookeeper-client`. What maps onto what is in types.ts; the safety rule in
 * safety.ts, with ZooKeeper's own term L explained below.
 *
 * Leadership (the leader-election recipe of the ZooKeeper documentation, "Recipes and
 * Solutions"): every node creates an EPHEMERAL_SEQUENTIAL znode
 * <chroot>/election/n-<session>-<seq> holding {node, id}; the lowest sequence leads;
 * each other node watches only the next lower znode (no herd) and looks again when it
 * goes. The fencing token is the leader's znode's czxid: znodes are created in zxid
 * order and a leader's successor was created after it (the lowest leads, so every
 * later leader's znode is younger), so the token grows from leader to leader, in the
 * same sequence as lock tokens (zxids). The znode lives exactly as long as our
 * session, so a write guarded by `check(<our znode>)` in a multi-op (job claims)
 * cannot land after our session expired — and with it our leadership.
 *
 * The leader history (fencing.ts): a persistent znode <chroot>/leader-history that the
 * winner reads and replaces with a multi-op (check of our candidate znode, setData at
 * the version read): who led before, whether it resigned cleanly, whom it had not
 * cleared. With a `fencing:` section those earlier leaders are fenced before we act.
 *
 * The window. The session is renewed by every request we send; we send a probe
 * (exists on our own znode) every `probeMs` and count its answer at its send time.
 * ZooKeeper's catch is that the session is expired by the ZooKeeper *leader*, while
 * our requests are answered by whichever server we are connected to: a follower
 * records our requests and passes them to the leader only in its answer to the
 * leader's next ping. A follower cut off from its leader goes on answering clients
 * until it notices, syncLimit × tickTime later (its read timeout on the leader; the
 * leader likewise drops a follower it has not heard from for that long) — and during
 * that time the leader hears nothing of us. Say the leader last heard from that
 * follower at t_b: the follower answers us no later than about t_b + syncLimit·tick,
 * and the follower's last ping answer to arrive (at t_b) carried a request of ours
 * sent at most one probe period (plus a ping period, tick/2) before. So an answer to a
 * request sent at s proves the session lives at the ZooKeeper leader until at least
 *
 *     s + T − (syncLimit·tick + tick/2 + probeMs)
 *
 * which is the window with L = `serverLagMs` + probeMs, `serverLagMs` being the
 * ensemble's syncLimit × tickTime + tickTime (rounded up; Debian's zoo.cfg: 5 × 2000 +
 * 2000 = 12000 ms, the default). Config checks that the window left is useful.
 *
 * This client never notices a silently dead connection (it sends pings but never
 * times out waiting for answers): a probe not answered within probeMs closes the
 * socket, so the client reconnects to the next server (the session survives if that
 * happens within T).
 *
 * KV: <chroot>/kv/<key, percent-encoded into one znode name>. A delete writes a
 * tombstone (first data byte 0) instead of removing the znode, so that a znode's
 * version never restarts: compare-and-set maps the index the user saw (the znode's
 * mzxid, which ZooKeeper numbers globally like etcd revisions) to the znode's version
 * and checks that in the write; with removal and re-creation the version would repeat
 * (0, 1, ...) and a stale cas could succeed (ABA). Tombstones are a few bytes each.
 * Reads are ZooKeeper's sequentially consistent reads; a linearizable read (without
 * `?stale`) first sends a check-only multi-op through the ZooKeeper leader, after
 * which our server has applied everything committed before the read began.
 *
 * Locks: <chroot>/locks/<name> = {owner, ttlMs}, a persistent znode; the lock is
 * expired when the ZooKeeper leader's clock is past its mtime + ttlMs (the "now" of
 * the ensemble is read by writing <chroot>/clock and reading its mtime). Token = the
 * zxid of the write that granted it. The znode is never removed (released = empty),
 * so its version never repeats (lockAcquire). ZooKeeper has no per-key TTL (its TTL
 * nodes need a server switch and this client does not speak them), hence the clock znode.
 */
import zk, { type ACL, type Client, type Exception, type Stat, type TransactionResult } from 'node-zookeeper-client';
import type { JobReport, Leadership } from '../jobs/coordinator.ts';
import { Status, type ClientCallback, type ClientResult } from '../runtime/results.ts';
import { answerOnce, checkCommand, type ClaimedJobRecord, decodeJobRecord, decodeLeaderRecord, decodeLockGrant, encodeJobRecord, KeyWatchers, leaseHex, Presence, PRESENCE_PERIOD_MS, sleep, type LockGrant } from './common.ts';
import { wentBackAdvice, type EngineLog } from './etcd.ts';
import type { FloorStore } from './floor-file.ts';
import { LeadershipGate } from './leadership.ts';
import { decodeLeaderHistory, encodeLeaderHistory, suspectIds, type ExternalFencing, type Suspect } from './fencing.ts';
import { LeaseWindow } from './safety.ts';
import { guardMalformedFrames } from './zk-guard.ts';
import { emptyStats, type ActivationEvent, type EngineMember, type EngineStats, type ExternalEngine, type ExternalStatus } from './types.ts';
import { isoUtc } from '../utc-text.ts';

export interface ZkEngineOptions {
  /** host:port of each server. */
  servers: string[];
  /** Root znode of this cluster, e.g. /quorumd/<cluster> (created if missing). */
  chroot: string;
  self: EngineMember;
  /** Session timeout asked for, ms (the ensemble clamps it to 2..20 × its tickTime). */
  sessionTimeoutMs: number;
  /** Probe period, ms. */
  probeMs: number;
  /** syncLimit × tickTime + tickTime of the ensemble, ms (see the header). */
  serverLagMs: number;
  driftRate: number;
  marginMs: number;
  requestTimeoutMs: number;
  /** digest credentials: znodes are then created with CREATOR_ALL_ACL. */
  auth?: { username: string; password: string };
  log: EngineLog;
  now?: () => number;
  /** STONITH of earlier leaders before acting (a `fencing:` section); none = act once elected. */
  fencing?: ExternalFencing;
  /** The zxid floor kept in the data directory (floor-file.ts); none = in memory only. */
  floor?: FloorStore;
}

const { CreateMode, State } = zk;
const ZX = zk.Exception;

/** A zxid (8-byte big-endian) as a number; zxids stay far below 2^53 (epoch << 32 | counter). */
export function zxid(b: Buffer): number {
  const n = Number(b.readBigUInt64BE(0));
  if (!Number.isSafeInteger(n)) throw new Error(`zxid ${b.toString('hex')} exceeds 2^53`);
  return n;
}

/** The key a znode name stands for (znodeName's inverse); undefined for a name it cannot have made. */
export function keyOfZnode(name: string): string | undefined {
  if (name === '%') return '';
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '%') {
      const h = name.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) return undefined;
      bytes.push(parseInt(h, 16));
      i += 2;
    } else if (/[A-Za-z0-9_-]/.test(c)) bytes.push(c.charCodeAt(0));
    else return undefined;
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The zxid in the header of the newest answer on this client's connection: the
 * server's last processed (committed) zxid when it answered. The client keeps it to
 * resume its session elsewhere (connectionManager.zxid); undefined when none is known.
 */
export function serverZxid(c: Client): number | undefined {
  const b = c.connectionManager.zxid;
  if (!b || b.length !== 8) return undefined;
  const n = b.readBigInt64BE(0);
  if (n <= 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(n);
}

/** ZooKeeper's time fields (ms since the epoch, 8-byte big-endian). */
const timeOf = (b: Buffer): number => Number(b.readBigInt64BE(0));

/** A key as one znode name: [A-Za-z0-9_-] kept, every other byte %XX (so never '.', '..' or '/'). */
export function znodeName(key: string): string {
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out.length ? out : '%';
}

const codeOf = (err: unknown): number | undefined => (err && typeof (err as Exception).getCode === 'function' ? (err as Exception).getCode() : undefined);
const errText = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 300);

/** Promise forms of the client's callbacks. */
function p<T>(f: (cb: (err: Exception | Error | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));
}

/** The ensemble went back (ZkEngine.wroteAt); `sent`: the call reached it (a write may be applied there). */
export class ServiceWentBack extends Error {
  constructor(message: string, readonly sent: boolean) {
    super(message);
  }
}

/** A candidate's znode name: n-<session id, hex>-<ZooKeeper's 10-digit sequence>. */
const CANDIDATE = /^n-[0-9a-f]+-\d{10}$/;

const LIVE = 1;
const TOMBSTONE = 0;

export class ZkEngine implements ExternalEngine {
  readonly name = 'zookeeper' as const;
  private client: Client | undefined;
  private readonly now: () => number;
  private readonly gate: LeadershipGate;
  private readonly window: LeaseWindow;
  private readonly acl: ACL[];
  private readonly paths: { election: string; history: string; kv: string; locks: string; jobs: string; clock: string };
  private readonly watchers: KeyWatchers;
  private readonly jobs = new Map<string, ClaimedJobRecord>();
  private readonly jobReadAt = new Map<string, number>();
  private started = false;
  private stopped = false;
  private sessionGen = 0;
  private sessionId = '';
  private myNode: string | undefined;
  private myToken = 0;
  /** The data version of our candidate znode as we last wrote it (another client's setData changes it). */
  private myVersion = 0;
  /** A rewrite of our candidate znode's data is under way (keepOwnRecord). */
  private rewriting = false;
  private role: ExternalStatus['role'] = 'connecting';
  private leaderName: string | null = null;
  private leaderToken = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Watches to arm again on a new session (a new client has none of the old one's). */
  private readonly armers = new Set<() => void>();
  readonly stats: EngineStats = emptyStats();
  /** The newest zxid any answer showed this node (znode stats, our writes). */
  private zxidFloor = 0;
  /** Why this node refuses for good: a write of ours got a zxid not above the floor (wroteAt). */
  private wentBack: string | undefined;
  private readonly presence: Presence;
  /** Candidate znode name → the member name in its data (read once per znode). */
  private readonly candidateNames = new Map<string, string | null>();
  /** Znodes in the election that no quorumd node made, warned about once each. */
  private readonly warnedNodes = new Set<string>();

  constructor(private readonly o: ZkEngineOptions) {
    if (o.servers.length === 0) throw new Error('zookeeper: no servers');
    if (!/^(\/[^/]+)+$/.test(o.chroot)) throw new Error(`zookeeper: chroot must be an absolute znode path like /quorumd/plant, got ${JSON.stringify(o.chroot)}`);
    this.now = o.now ?? (() => performance.now());
    this.presence = new Presence(this.now);
    this.zxidFloor = o.floor?.initial ?? 0;
    this.window = new LeaseWindow({ driftRate: o.driftRate, marginMs: o.marginMs, serverLagMs: o.serverLagMs + o.probeMs });
    const fencing = o.fencing;
    this.gate = new LeadershipGate(this.window, this.now, fencing ? (t) => fencing.clear(t) : undefined);
    if (fencing) {
      fencing.onChange = () => this.gate.recheck('earlier-leaders-stopped');
      // Once every earlier leader is shown stopped, the record says so (a later leader need not fence them again).
      this.gate.onActivation((ev) => {
        const c = this.client;
        if (ev.active && c && fencing.hadSuspects(ev.token)) void this.writeHistory(c, false, []).catch(() => undefined);
      });
    }
    this.acl = o.auth ? zk.ACL.CREATOR_ALL_ACL : zk.ACL.OPEN_ACL_UNSAFE;
    const r = o.chroot;
    this.paths = { election: `${r}/election`, history: `${r}/leader-history`, kv: `${r}/kv`, locks: `${r}/locks`, jobs: `${r}/jobs`, clock: `${r}/clock` };
    this.watchers = new KeyWatchers((key, fire) => this.openWatch(`${this.paths.kv}/${znodeName(key)}`, fire));
  }

  // ---------------------------------------------------------------------------
  // Life cycle and sessions

  start(): void {
    if (this.started) return;
    this.started = true;
    this.loop = this.sessionLoop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Off first, then say so in the leader history, then close the session (which removes our key).
    const token = this.gate.electedToken;
    const pending = this.o.fencing?.pending() ?? [];
    this.gate.stop();
    this.o.fencing?.stop();
    this.role = 'stopped';
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.wake?.();
    const c = this.client;
    if (token > 0 && c && c.getState() === State.SYNC_CONNECTED) {
      try {
        const ok = await Promise.race([this.writeHistory(c, true, pending), sleep(Math.min(2000, this.o.requestTimeoutMs)).then(() => false)]);
        if (!ok) this.o.log.warn({ token }, 'zookeeper: could not record the clean resign; the next leader will fence this node');
      } catch (err) {
        this.o.log.warn({ error: errText(err) }, 'zookeeper: could not record the clean resign; the next leader will fence this node');
      }
    }
    // Closing the session removes our ephemeral znode at once: the next node leads without waiting for the timeout.
    if (c && c.getState() === State.SYNC_CONNECTED) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(2000, this.o.requestTimeoutMs));
        c.once('disconnected', () => {
          clearTimeout(t);
          resolve();
        });
        c.close();
      });
    } else c?.close();
    this.watchers.closeAll();
    await Promise.race([this.loop, sleep(2000)]);
    // The newest zxid seen, on disk before the process ends (bounded: a hung card does not hold the stop).
    await Promise.race([this.o.floor?.flush() ?? Promise.resolve(), sleep(2000)]);
    this.o.floor?.close();
  }

  get active(): boolean {
    return this.gate.active;
  }

  activeLeadership(): Leadership | undefined {
    return this.gate.leadership();
  }

  onActivation(fn: (ev: ActivationEvent) => void): () => void {
    return this.gate.onActivation(fn);
  }

  status(): ExternalStatus {
    return {
      engine: 'zookeeper',
      role: this.stopped ? 'stopped' : this.role,
      leader: this.leaderName,
      leaderToken: this.leaderToken,
      ...this.gate.view(this.sessionId),
      endpoints: [...this.o.servers],
      ...(this.wentBack ? { refused: this.wentBack } : {}),
      stats: { ...this.stats, windowEnds: this.gate.windowEnds },
    };
  }

  /** One session after the other: a new client when the old session expired. */
  private async sessionLoop(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      if (this.wentBack) {
        // No session with an ensemble that went back (the reason is logged and in the status).
        this.role = 'connecting';
        await sleep(1000);
        continue;
      }
      const gen = ++this.sessionGen;
      try {
        await this.runSession(gen);
        backoff = 100;
      } catch (err) {
        if (this.stopped) break;
        this.o.log.warn({ error: errText(err) }, 'zookeeper: session ended; starting a new one');
      }
      if (this.probeTimer) clearTimeout(this.probeTimer);
      this.gate.leaseLost('session-lost');
      this.gate.deposed('session-lost');
      this.o.fencing?.deposed();
      this.myNode = undefined;
      this.myToken = 0;
      this.role = 'connecting';
      this.client?.close();
      if (this.stopped) break;
      await sleep(backoff);
      backoff = Math.min(2000, backoff * 2);
    }
  }

  private async runSession(gen: number): Promise<void> {
    this.stats.elections++;
    const c = zk.createClient(this.o.servers.join(','), { sessionTimeout: this.o.sessionTimeoutMs, spinDelay: 100, retries: 0 });
    this.client = c;
    this.sessionId = '';
    guardMalformedFrames(c, this.o.log);
    if (this.o.auth) c.addAuthInfo('digest', Buffer.from(`${this.o.auth.username}:${this.o.auth.password}`));
    let ended: ((why: string) => void) | undefined;
    const over = new Promise<string>((resolve) => (ended = resolve));
    // Not connected again within the session timeout (and a probe period): the ensemble
    // has expired the session by now, whether or not a server says so. A server refuses
    // to take a session back when its data is older than what the session saw ("client
    // must try another server" in its log: the ensemble was wiped or restored), and then
    // no server ever says so: the client would try for good. A new session is started.
    let lostAt: NodeJS.Timeout | undefined;
    c.on('state', (s: { name: string }) => {
      if (s === State.EXPIRED || s === State.AUTH_FAILED) {
        if (s === State.EXPIRED) this.stats.leasesLost++;
        this.o.log.warn({ state: s.name }, 'zookeeper: session over');
        ended?.(s.name);
      } else if (s === State.DISCONNECTED && !lostAt && this.sessionId) {
        const ms = c.getSessionTimeout() + this.o.probeMs;
        lostAt = setTimeout(() => {
          if (c.getState() === State.SYNC_CONNECTED || gen !== this.sessionGen) return;
          this.o.log.warn({ afterMs: ms }, 'zookeeper: no server took this session back within its timeout (a server whose data is older than what the session saw refuses it); starting a new session');
          ended?.('NOT_RECONNECTED');
        }, ms);
        lostAt.unref?.();
      } else if (s === State.SYNC_CONNECTED && lostAt) {
        clearTimeout(lostAt);
        lostAt = undefined;
      }
    });
    void over.then(() => lostAt && clearTimeout(lostAt));
    // The client waits for a server's answer to its connect request without a limit (its
    // own timeout covers only the TCP connect). A server whose process is stopped
    // (SIGSTOP, a hung JVM, a long pause) still accepts TCP connections — the kernel
    // queues them — and never answers: a client that picked it, to start a session or to
    // take one back, waited on it for good. Not connected at two ticks in a row: the
    // socket is dropped, and the client goes on to the next server.
    const kickMs = Math.max(1000, Math.floor(this.o.sessionTimeoutMs / this.o.servers.length));
    let waitedTick = false;
    const kick = setInterval(() => {
      if (gen !== this.sessionGen || this.stopped) return clearInterval(kick);
      const waiting = c.getState() !== State.SYNC_CONNECTED;
      if (waiting && waitedTick) {
        this.o.log.debug({ afterMs: kickMs }, 'zookeeper: no connect answer from the server; trying the next one');
        c.connectionManager.socket?.destroy();
      }
      waitedTick = waiting;
    }, kickMs);
    kick.unref?.();
    void over.then(() => clearInterval(kick));
    const t0 = this.now();
    const connected = new Promise<void>((resolve) => c.once('connected', () => resolve()));
    c.connect();
    const first = await Promise.race([connected.then(() => 'connected'), over]);
    if (first !== 'connected') throw new Error(`session ${first}`);
    this.sessionId = c.getSessionId().toString('hex');
    // The connect answer itself renews the session: sent at t0 (or later; t0 is safe).
    this.window.answered(t0, c.getSessionTimeout());
    this.o.log.info({ session: this.sessionId, timeoutMs: c.getSessionTimeout() }, 'zookeeper: session established');
    // The first request of a session is checked against the floor before anything is
    // written: a check-only multi goes through the ZooKeeper leader as a transaction of
    // its own, so the zxid in its answer's header is newer than everything committed
    // before — above the floor, unless the ensemble went back. Checked later (at our
    // candidate znode), a node restarted on a wiped ensemble first created its base
    // znodes there, and every such node moved the new numbering up towards the floors
    // of the nodes after it.
    // Any answer of the server will do (its header carries the zxid even when the check
    // itself is refused, e.g. by an ACL on /); only no answer is tried again. Refused
    // only when strictly below the floor: with local sessions (no session transaction)
    // and an idle ensemble the answer may equal it.
    const floor0 = this.zxidFloor;
    await this.retry(gen, 'session check', () =>
      this.multi(c, (t) => t.check('/', -1)).catch((err: unknown) => {
        const code = codeOf(err);
        if (err instanceof ServiceWentBack || code === undefined || code === ZX.CONNECTION_LOSS || code === ZX.OPERATION_TIMEOUT || code === ZX.SESSION_EXPIRED) throw err;
      }),
    );
    const z0 = serverZxid(c);
    if (z0 !== undefined && z0 < floor0) this.wroteAt(floor0, z0, 'the first request of a new session');
    else if (z0 !== undefined && z0 > this.zxidFloor) {
      this.zxidFloor = z0;
      this.o.floor?.note(z0, 'later');
    }
    for (const path of [this.paths.election, this.paths.history, this.paths.kv, this.paths.locks, this.paths.jobs, this.paths.clock]) {
      await this.retry(gen, 'create base znodes', () => p<string>((cb) => c.mkdirp(path, null, this.acl, CreateMode.PERSISTENT, cb)));
    }
    this.probeLoop(gen);
    void this.presenceLoop(c, gen);
    for (const arm of this.armers) arm();
    // Our candidate znode; found again by its session part if the create's answer was lost.
    const prefix = `n-${this.sessionId}-`;
    const data = Buffer.from(JSON.stringify({ node: this.o.self.name, id: this.o.self.id }));
    const floor = this.zxidFloor;
    const myName = await this.retry(gen, 'candidate znode', async () => {
      const kids = await p<string[]>((cb) => c.getChildren(this.paths.election, undefined, cb));
      const mine = kids.find((k) => k.startsWith(prefix));
      if (mine) return mine;
      const path = await p<string>((cb) => c.create(`${this.paths.election}/${prefix}`, data, this.acl, CreateMode.EPHEMERAL_SEQUENTIAL, cb));
      return path.slice(this.paths.election.length + 1);
    });
    const myPath = `${this.paths.election}/${myName}`;
    const myStat = await this.retry(gen, 'candidate stat', () => p<Stat | null>((cb) => c.exists(myPath, undefined, cb)));
    if (!myStat) throw new Error('our candidate znode vanished');
    // Created by us after everything we had seen: its zxid must be newer.
    this.wroteAt(floor, zxid(myStat.czxid), 'our candidate znode');
    this.myNode = myPath;
    this.myVersion = myStat.version;
    this.myToken = zxid(myStat.czxid);
    this.role = 'candidate';
    // Wait to be the lowest; follow the leader for /v1/leader meanwhile.
    const seq = (n: string) => n.slice(n.lastIndexOf('-') + 1);
    const watchLoop = async () => {
      while (!this.stopped && gen === this.sessionGen) {
        let changed!: () => void;
        const change = new Promise<void>((resolve) => (changed = resolve));
        const all = await this.retry(gen, 'election children', () => p<string[]>((cb) => c.getChildren(this.paths.election, () => changed(), cb)));
        // Only candidates count: ephemeral (they go with their session) and named as quorumd
        // names them. Anything else (another program's znode, an operator's typo) would
        // otherwise sort among them and, never going away, keep every node behind it from
        // leading: it is passed over, with a warning naming it.
        const kids = all.filter((k) => CANDIDATE.test(k) || this.foreign(k, 'its name is not n-<session>-<sequence>'));
        kids.sort((a, b) => seq(a).localeCompare(seq(b)));
        while (kids.length > 0 && kids[0] !== myName) {
          const st = await this.retry(gen, 'lowest candidate', () => p<Stat | null>((cb) => c.exists(`${this.paths.election}/${kids[0]}`, undefined, cb)));
          if (!st || !st.ephemeralOwner.every((b) => b === 0)) break;
          this.foreign(kids.shift()!, 'it is not ephemeral');
        }
        await this.noteLeaderFrom(c, kids[0]);
        const i = kids.indexOf(myName);
        if (i < 0) throw new Error('our candidate znode is gone');
        if (i === 0 && !this.gate.elected_) {
          const suspects = await this.retry(gen, 'leader history', () => this.takeHistory(c, myPath));
          this.role = 'leader';
          this.o.floor?.note(this.myToken, 'now');
          this.stats.wins++;
          this.o.log.info({ token: this.myToken, znode: myName }, 'zookeeper: elected');
          this.o.fencing?.elected(this.myToken, suspects);
          this.gate.elected(this.myToken);
        }
        await Promise.race([change, over, new Promise<void>((r) => (this.wake = r)), sleep(Math.max(1000, this.o.probeMs * 2))]);
      }
    };
    await Promise.race([watchLoop(), over.then((why) => Promise.reject(new Error(`session ${why}`)))]);
  }

  /**
   * The winner's turn on the leader history: read it, work out the suspects, replace it
   * with ours — in a multi-op that checks our candidate znode and the version we read
   * (a change between the two is retried by the caller).
   */
  private async takeHistory(c: Client, myPath: string): Promise<Suspect[]> {
    const cur = await this.read(c, this.paths.history);
    const prev = cur ? decodeLeaderHistory(cur.data.toString('utf8')) : undefined;
    if (typeof prev === 'string') this.o.log.warn({ error: prev }, 'zookeeper: the leader history is unreadable: the previous leader is unknown');
    const suspects = this.o.fencing?.suspectsAfter(prev) ?? [];
    const data = Buffer.from(encodeLeaderHistory({ node: this.o.self.name, id: this.o.self.id, clean: false, suspects: suspectIds(suspects) }));
    const r = await this.multi(c, (t) => {
      t.check(myPath, -1);
      if (cur) t.setData(this.paths.history, data, cur.stat.version);
      else t.create(this.paths.history, data, this.acl, CreateMode.PERSISTENT);
    });
    if (!r.ok) throw new Error(`leader history: changed while we won, or our candidate znode is gone (${r.code})`);
    return suspects;
  }

  /**
   * Rewrites the leader history as the current leader: `clean` on a resign, and the
   * suspects not cleared yet; guarded by our candidate znode (gone with our session,
   * and with it our leadership). Resolves true when written.
   */
  private async writeHistory(c: Client, clean: boolean, suspects: Suspect[]): Promise<boolean> {
    const mine = this.myNode;
    if (!mine) return false;
    const data = Buffer.from(encodeLeaderHistory({ node: this.o.self.name, id: this.o.self.id, clean, suspects: suspectIds(suspects) }));
    const r = await this.multi(c, (t) => t.check(mine, -1).setData(this.paths.history, data, -1));
    if (r.ok) this.o.log.info({ token: this.myToken, clean, suspects: suspectIds(suspects).join(',') }, 'zookeeper: leader history written');
    return r.ok;
  }

  /**
   * Our candidate znode's data written again when another client changed it (zkCli.sh
   * set on it: garbage, or another node's record). The lowest candidate's data is the
   * leader record every node shows in /v1/leader; before, after such a set every node
   * showed no leader (or the wrong one) until the next leader change. Seen by the probe
   * (its stat's data version moved). Nothing else depends on the data — leadership and
   * its token are the znode itself and its czxid, job claims check that it exists — so
   * writing it back changes no token and needs no argument beyond the version check:
   * the write lands only on the version we saw, and only while our session (and so the
   * ephemeral znode) lives.
   */
  private async keepOwnRecord(c: Client, gen: number, path: string, version: number): Promise<void> {
    if (this.rewriting) return;
    this.rewriting = true;
    try {
      const cur = await this.read(c, path);
      if (!cur || gen !== this.sessionGen || this.myNode !== path) return;
      const text = cur.data.toString('utf8');
      const rec = decodeLeaderRecord(text);
      if (rec && rec.node === this.o.self.name && rec.id === this.o.self.id) {
        this.myVersion = cur.stat.version;
        return;
      }
      const data = Buffer.from(JSON.stringify({ node: this.o.self.name, id: this.o.self.id }));
      const r = await this.multi(c, (t) => t.setData(path, data, cur.stat.version));
      if (!r.ok) return; // changed again meanwhile (the next probe sees it) or gone
      this.myVersion = r.results[0]?.stat?.version ?? version + 1;
      this.stats.leaderRewrites++;
      this.o.log.warn(
        { znode: path, found: JSON.stringify(text.slice(0, 80)) },
        `zookeeper: the data of our election znode ${path} was changed by another client (it held ${JSON.stringify(text.slice(0, 80))}); every node reads the leader's name there, so it was written back. Only quorumd should write under ${this.o.chroot}`,
      );
    } catch (err) {
      this.o.log.debug({ error: errText(err) }, 'zookeeper: rewriting our election znode failed; the next probe tries again');
    } finally {
      this.rewriting = false;
    }
  }

  heard(name: string): { lastHeardMs: number | null; listenedMs: number } {
    return this.presence.evidence(name);
  }

  /**
   * Lists the election about once a second for this session: which members' sessions
   * the ensemble holds (common.ts Presence). A candidate znode's data (its member) is
   * read once, when it first shows up; znodes not named as candidates are passed over.
   */
  private async presenceLoop(c: Client, gen: number): Promise<void> {
    while (!this.stopped && gen === this.sessionGen && !this.wentBack) {
      const t = this.now();
      if (c.getState() === State.SYNC_CONNECTED) {
        try {
          const kids = (await p<string[]>((cb) => c.getChildren(this.paths.election, undefined, cb))).filter((k) => CANDIDATE.test(k));
          for (const k of [...this.candidateNames.keys()]) if (!kids.includes(k)) this.candidateNames.delete(k);
          for (const k of kids) {
            if (this.candidateNames.get(k)) continue; // known (a record not ours is read again next round)
            const d = await this.read(c, `${this.paths.election}/${k}`).catch(() => undefined);
            if (d) this.candidateNames.set(k, decodeLeaderRecord(d.data.toString('utf8'))?.node ?? null);
          }
          if (!this.stopped && gen === this.sessionGen) this.presence.saw(kids.map((k) => this.candidateNames.get(k)).filter((n): n is string => typeof n === 'string'));
        } catch {
          /* not answered: the next round lists again */
        }
      }
      const rest = t + PRESENCE_PERIOD_MS - this.now();
      if (rest > 0) await sleep(rest);
    }
  }

  /** Reads the lowest candidate's record for the leader view. */
  private async noteLeaderFrom(c: Client, lowest: string | undefined): Promise<void> {
    if (!lowest) return this.noteLeader(null, 0);
    try {
      const [d, st] = await new Promise<[Buffer, Stat]>((resolve, reject) => c.getData(`${this.paths.election}/${lowest}`, undefined, (err, data, stat) => (err ? reject(err) : resolve([data, stat]))));
      const rec = decodeLeaderRecord(d.toString('utf8'));
      this.noteLeader(rec?.node ?? null, rec ? zxid(st.czxid) : 0);
    } catch {
      /* gone meanwhile: the next round sees it */
    }
  }

  private noteLeader(name: string | null, token: number): void {
    if (name !== null && token !== this.leaderToken) this.stats.leaderChanges++;
    this.leaderName = name;
    this.leaderToken = token;
  }

  /** Warns once about a znode in the election that no quorumd node made; false (for filters). */
  private foreign(name: string, why: string): false {
    if (!this.warnedNodes.has(name)) {
      this.warnedNodes.add(name);
      const path = `${this.paths.election}/${name}`;
      this.o.log.warn({ znode: path }, `zookeeper: ${path} is in the election but ${why}, so no quorumd node made it: it is not counted as a candidate; delete it (zkCli.sh delete ${path})`);
    }
    return false;
  }

  /** A znode's stat: its zxids are of transactions committed already, so the floor rises to them. */
  private sawStat(st: Stat | undefined): void {
    if (!st) return;
    for (const b of [st.czxid, st.mzxid, st.pzxid]) {
      const z = b ? zxid(b) : 0;
      if (z > this.zxidFloor) {
        this.zxidFloor = z;
        this.o.floor?.note(z, 'later');
      }
    }
  }

  /**
   * A write of ours, sent when the floor was `floor`, got zxid `z`. The ZooKeeper leader
   * numbers every write after everything committed before it, and everything that raised
   * the floor had been committed — so z > floor, unless the ensemble went back: wiped and
   * set up anew (zxids restart with epoch 1) or restored from an older snapshot. Its zxids
   * would then repeat ones given out before, and with them leader tokens, lock tokens and
   * KV indexes: this node refuses for good (a restart too, while the floor file is kept: floor-file.ts).
   */
  private wroteAt(floor: number, z: number, what: string): void {
    if (z > floor) {
      if (z > this.zxidFloor) {
        this.zxidFloor = z;
        this.o.floor?.note(z, 'later');
      }
      return;
    }
    if (!this.wentBack) {
      this.wentBack =
        `ZooKeeper gave ${what} zxid 0x${z.toString(16)} after it had shown this node zxid 0x${floor.toString(16)}: the ensemble at ${this.o.servers.join(', ')} was wiped and set up anew or restored from an older snapshot. ` +
        `Its zxids now repeat ones it gave out before, so leader tokens, lock tokens and KV indexes from it could go backwards: ${wentBackAdvice('zookeeper', floor, this.o.floor?.file)}`;
      this.o.log.error({ floor: `0x${floor.toString(16)}`, zxid: `0x${z.toString(16)}`, ...(this.o.floor ? { file: this.o.floor.file } : {}) }, this.wentBack);
      // A restart must refuse just the same: the floor this write was checked against is written now.
      this.o.floor?.note(this.zxidFloor, 'now');
      void this.o.floor?.flush();
      this.gate.leaseLost('service-went-back');
      this.gate.deposed('service-went-back');
      this.o.fencing?.deposed();
      this.sessionGen++;
      this.wake?.();
      this.client?.close();
    }
    throw new ServiceWentBack(this.wentBack, true);
  }

  /** Retries one step within this session (transient errors: connection loss while reconnecting). */
  private async retry<T>(gen: number, what: string, fn: () => Promise<T>): Promise<T> {
    let delay = 50;
    for (;;) {
      if (this.stopped) throw new Error('stopped');
      if (this.wentBack) throw new ServiceWentBack(this.wentBack, false);
      if (gen !== this.sessionGen) throw new Error('session replaced');
      try {
        return await fn();
      } catch (err) {
        if (err instanceof ServiceWentBack) throw err;
        const code = codeOf(err);
        if (code === ZX.SESSION_EXPIRED || code === ZX.AUTH_FAILED || code === ZX.NO_AUTH) throw err;
        this.o.log.debug({ what, error: errText(err) }, 'zookeeper: step failed; retrying');
      }
      await sleep(delay);
      delay = Math.min(500, delay * 2);
    }
  }

  /**
   * Every probeMs: exists(<our candidate znode>), counted at its send time. No answer
   * within probeMs: the connection is presumed dead and closed (see the header).
   */
  private probeLoop(gen: number): void {
    const tick = () => {
      if (this.stopped || gen !== this.sessionGen) return;
      const c = this.client!;
      const t = this.now();
      let answered = false;
      const path = this.myNode ?? this.o.chroot;
      if (c.getState() === State.SYNC_CONNECTED) {
        c.exists(path, undefined, (err, stat) => {
          answered = true;
          if (gen !== this.sessionGen || this.stopped) return;
          if (err) {
            this.stats.renewalFailures++;
            return;
          }
          this.stats.renewals++;
          this.window.answered(t, c.getSessionTimeout());
          // The server's newest zxid (committed: a server applies nothing else) raises the
          // floor, so that every node's floor follows the ensemble, not only the leader's.
          const z = serverZxid(c);
          if (z !== undefined && z > this.zxidFloor) {
            this.zxidFloor = z;
            this.o.floor?.note(z, 'later');
          }
          if (this.myNode && path === this.myNode && !stat) {
            // Our znode is gone while the session lives (deleted by hand?): campaign again.
            this.o.log.warn({ znode: this.myNode }, 'zookeeper: our candidate znode was deleted; campaigning again');
            this.gate.deposed('znode-deleted');
            this.sessionGen++;
            this.wake?.();
            return;
          }
          this.gate.renewed();
          if (this.myNode && path === this.myNode && stat && stat.version !== this.myVersion) void this.keepOwnRecord(c, gen, path, stat.version);
        });
      }
      this.probeTimer = setTimeout(() => {
        if (!answered && c.getState() === State.SYNC_CONNECTED && gen === this.sessionGen) {
          this.stats.renewalFailures++;
          this.o.log.debug({}, 'zookeeper: probe unanswered; dropping the connection so the client reconnects');
          c.connectionManager.socket?.destroy();
        }
        tick();
      }, this.o.probeMs);
      this.probeTimer.unref?.();
    };
    tick();
  }

  // ---------------------------------------------------------------------------
  // Requests

  /** The current session's client if it is connected now; else an answer 503 (nothing was sent). */
  private connected(cb: ClientCallback): Client | undefined {
    const c = this.client;
    if (this.stopped) {
      cb({ status: Status.UNAVAILABLE, error: 'node is stopping' });
      return undefined;
    }
    if (this.wentBack) {
      cb({ status: Status.UNAVAILABLE, error: `refused: ${this.wentBack}` });
      return undefined;
    }
    if (!c || c.getState() !== State.SYNC_CONNECTED) {
      cb({ status: Status.UNAVAILABLE, error: 'not connected to ZooKeeper (reconnecting); nothing was sent' });
      return undefined;
    }
    return c;
  }

  /** Runs `fn` with the request timeout; failures become 503 (reads, refused writes) or 504 (writes with unknown outcome). */
  private run(write: boolean, what: string, cb: ClientCallback, fn: (c: Client) => Promise<ClientResult>): void {
    this.stats.requests++;
    const c = this.connected(cb);
    if (!c) return;
    const answer = answerOnce(cb, this.o.requestTimeoutMs, () => {
      this.stats.requestErrors++;
      return write
        ? { status: Status.UNKNOWN, error: `${what}: ZooKeeper did not answer within ${this.o.requestTimeoutMs} ms; the write may or may not be applied` }
        : { status: Status.UNAVAILABLE, error: `${what}: ZooKeeper did not answer within ${this.o.requestTimeoutMs} ms` };
    });
    fn(c).then(answer, (err) => {
      this.stats.requestErrors++;
      if (err instanceof ServiceWentBack) {
        if (write && err.sent) return answer({ status: Status.UNKNOWN, error: `${what}: refused: ${err.message}. This write reached that ensemble and may be applied there` });
        return answer({ status: Status.UNAVAILABLE, error: `${what}: refused: ${err.message}` });
      }
      const code = codeOf(err);
      // Refused by the server before applying: definite.
      const definite = code === ZX.NO_AUTH || code === ZX.AUTH_FAILED || code === ZX.SESSION_EXPIRED;
      if (!write || definite) answer({ status: Status.UNAVAILABLE, error: `${what}: ZooKeeper: ${errText(err)}` });
      else answer({ status: Status.UNKNOWN, error: `${what}: ZooKeeper: ${errText(err)}; the write may or may not be applied` });
    });
  }

  private kvPath(key: string): string {
    return `${this.paths.kv}/${znodeName(key)}`;
  }

  /** getData, with a missing znode as undefined. */
  private read(c: Client, path: string): Promise<{ data: Buffer; stat: Stat } | undefined> {
    return new Promise((resolve, reject) =>
      c.getData(path, undefined, (err, data, stat) => {
        if (err) return codeOf(err) === ZX.NO_NODE ? resolve(undefined) : reject(err);
        this.sawStat(stat);
        resolve({ data: data ?? Buffer.alloc(0), stat });
      }),
    );
  }

  private multi(c: Client, build: (t: ReturnType<Client['transaction']>) => void): Promise<{ ok: true; results: TransactionResult[] } | { ok: false; code: number | undefined; results: TransactionResult[] }> {
    if (this.wentBack) return Promise.reject(new ServiceWentBack(this.wentBack, false));
    const floor = this.zxidFloor;
    return new Promise((resolve, reject) => {
      const t = c.transaction();
      build(t);
      t.commit((err, results) => {
        if (!err) {
          // A multi's writes share one zxid, newer than everything we had seen.
          const written = results.find((r) => r.stat)?.stat;
          try {
            if (written) this.wroteAt(floor, zxid(written.mzxid), 'a multi-op');
          } catch (e) {
            return reject(e);
          }
          return resolve({ ok: true, results });
        }
        const code = codeOf(err);
        // A failed op inside the multi (bad version, node exists, no node) is a definite "not applied".
        if (code === ZX.BAD_VERSION || code === ZX.NODE_EXISTS || code === ZX.NO_NODE || code === ZX.NOT_EMPTY) return resolve({ ok: false, code, results: results ?? [] });
        reject(err);
      });
    });
  }

  /** A write through the ZooKeeper leader, so that our server has applied everything committed before (linearizable reads). */
  private async barrier(c: Client): Promise<void> {
    const r = await this.multi(c, (t) => t.check(this.o.chroot, -1));
    if (!r.ok) throw new Error(`barrier failed (${r.code})`);
  }

  get(key: string, opts: { stale: boolean }, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'del', key });
    if (bad) return cb(bad);
    this.run(false, 'get', cb, async (c) => {
      if (!opts.stale) await this.barrier(c);
      const r = await this.read(c, this.kvPath(key));
      if (!r || r.data.length === 0 || r.data[0] !== LIVE) return { status: Status.NOT_FOUND, index: 0, error: `key ${JSON.stringify(key)} not found` };
      return { status: Status.OK, value: new Uint8Array(r.data.subarray(1)), index: zxid(r.stat.mzxid) };
    });
  }

  /** Keys under `prefix`: the kv znode's children whose decoded names start with it (the KV is one flat znode). */
  list(prefix: string, opts: { stale: boolean }, cb: (r: { status: number; entries?: Array<{ key: string; value: Uint8Array; index: number }>; error?: string }) => void): void {
    this.run(false, 'list', (r) => cb(r as never), async (c) => {
      if (!opts.stale) await this.barrier(c);
      const kids = await p<string[]>((k) => c.getChildren(this.paths.kv, undefined, k));
      const keys = kids.map((n) => [n, keyOfZnode(n)] as const).filter((x): x is readonly [string, string] => x[1] !== undefined && x[1].startsWith(prefix));
      const reads = await Promise.all(keys.map(([n, key]) => this.read(c, `${this.paths.kv}/${n}`).then((r) => ({ key, r }))));
      const entries = reads.filter((x) => x.r && x.r.data.length > 0 && x.r.data[0] === LIVE).map((x) => ({ key: x.key, value: new Uint8Array(x.r!.data.subarray(1)), index: zxid(x.r!.stat.mzxid) }));
      return { status: Status.OK, entries } as ClientResult;
    });
  }

  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'put', key, value, ...(opts.cas !== undefined ? { cas: opts.cas } : {}) });
    if (bad) return cb(bad);
    this.write('put', key, opts.cas, Buffer.concat([Buffer.from([LIVE]), Buffer.from(value)]), cb);
  }

  del(key: string, opts: { cas?: number }, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'del', key, ...(opts.cas !== undefined ? { cas: opts.cas } : {}) });
    if (bad) return cb(bad);
    this.write('delete', key, opts.cas, Buffer.from([TOMBSTONE]), cb);
  }

  /**
   * put / delete (tombstone) of a key, optionally compare-and-set on its index (mzxid;
   * 0 = absent): read the znode, compare, write with the read version. A concurrent
   * change makes the version check fail: read again (bounded).
   */
  private write(what: string, key: string, cas: number | undefined, data: Buffer, cb: ClientCallback): void {
    const path = this.kvPath(key);
    const deleting = data[0] === TOMBSTONE;
    this.run(true, what, cb, async (c) => {
      for (let i = 0; i < 8; i++) {
        const cur = await this.read(c, path);
        const live = cur !== undefined && cur.data.length > 0 && cur.data[0] === LIVE;
        const index = live ? zxid(cur!.stat.mzxid) : 0;
        if (cas !== undefined && cas !== index) return { status: Status.CONFLICT, index, error: `${what}: compare-and-set failed: the key's index is ${index}, not ${cas}` };
        if (deleting && !cur) return { status: Status.OK, index: 0 };
        if (cur) {
          const r = await this.multi(c, (t) => t.setData(path, data, cur.stat.version));
          if (r.ok) return { status: Status.OK, index: zxid(r.results[0]!.stat!.mzxid) };
        } else {
          const r = await this.multi(c, (t) => t.create(path, Buffer.from([TOMBSTONE]), this.acl, CreateMode.PERSISTENT).setData(path, data, 0));
          if (r.ok) return { status: Status.OK, index: zxid(r.results[1]!.stat!.mzxid) };
        }
        // Raced with another writer: read again.
      }
      return { status: Status.UNAVAILABLE, error: `${what}: the key kept changing; nothing written` };
    });
  }

  // Locks

  private lockPath(name: string): string {
    return `${this.paths.locks}/${znodeName(name)}`;
  }

  /** The ensemble's clock now: the mtime of a write to <chroot>/clock (ms since the epoch, the ZooKeeper leader's clock). */
  private async serverNow(c: Client): Promise<number> {
    if (this.wentBack) throw new ServiceWentBack(this.wentBack, false);
    const floor = this.zxidFloor;
    const st = await p<Stat>((cb) => c.setData(this.paths.clock, Buffer.alloc(0), -1, cb));
    this.wroteAt(floor, zxid(st.mzxid), 'the clock znode');
    return timeOf(st.mtime);
  }

  /**
   * The fencing token of the grant in a lock znode: written into the record by the
   * first rewrite (a renewal), else the mzxid of the write that made the grant (token 0
   * in its record); a record of an older quorumd (no token field) has its znode's czxid.
   */
  private lockToken(g: LockGrant, stat: Stat): number {
    if (g.token === undefined) return zxid(stat.czxid);
    return g.token > 0 ? g.token : zxid(stat.mzxid);
  }

  /** The record to write back over grant `g` (a renewal, the holder asking again): its token kept. */
  private lockRecord(g: LockGrant, stat: Stat): Buffer {
    return Buffer.from(JSON.stringify({ owner: g.owner, ttlMs: g.ttlMs, digest: g.digest, token: this.lockToken(g, stat) }));
  }

  /*
   * A lock znode is created once and never removed: a release writes it empty, a new
   * grant overwrites a free or lapsed record. Every write is conditional on the version
   * read, and since the znode is never re-created its version never repeats. (Removing
   * and re-creating it restarted the version: a holder's renewal, or a second acquirer
   * that had read the old znode, could then write over a newer grant that happened to
   * have the same version — two holders at once.)
   */

  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'lock.acquire', name, owner, ttlMs, now: 0 });
    if (bad) return cb(bad);
    const digest = leaseHex(lease);
    if (typeof digest !== 'string') return cb(digest);
    const path = this.lockPath(name);
    const fresh = Buffer.from(JSON.stringify({ owner, ttlMs, digest, token: 0 }));
    this.run(true, 'lock acquire', cb, async (c) => {
      for (let i = 0; i < 8; i++) {
        const cur = await this.read(c, path);
        if (!cur) {
          // A create's answer has no stat: the setData in the same multi gives the zxid.
          const r = await this.multi(c, (t) => t.create(path, Buffer.alloc(0), this.acl, CreateMode.PERSISTENT).setData(path, fresh, 0));
          if (r.ok) return this.granted(zxid(r.results[1]!.stat!.mzxid), ttlMs);
          continue;
        }
        // Empty: released. A record quorumd cannot read: treated as free (and overwritten).
        const g = cur.data.length === 0 ? 'free' : decodeLockGrant(name, cur.data.toString('utf8'));
        if (typeof g === 'string' && g !== 'free') this.o.log.warn({ lock: name, error: g }, 'zookeeper: a lock znode holds a record quorumd did not write; it is treated as free');
        const free = typeof g === 'string' || timeOf(cur.stat.mtime) + g.ttlMs <= (await this.serverNow(c));
        if (free) {
          const r = await this.multi(c, (t) => t.setData(path, fresh, cur.stat.version));
          if (r.ok) return this.granted(zxid(r.results[0]!.stat!.mzxid), ttlMs);
          continue;
        }
        const token = this.lockToken(g, cur.stat);
        // Only the same lease id (a retry of the same request after a 504) is the holder asking again.
        if (g.owner !== owner || g.digest !== digest) return { status: Status.CONFLICT, holder: g.owner, token, error: `lock ${name} is held by ${g.owner}` };
        const r = await this.multi(c, (t) => t.setData(path, this.lockRecord({ ...g, ttlMs }, cur.stat), cur.stat.version));
        if (r.ok) return { status: Status.OK, token, ttlMs };
      }
      return { status: Status.UNAVAILABLE, error: `lock ${name} kept changing; try again` };
    });
  }

  /** A new grant: its token is the newest zxid, kept on disk soon (floor-file.ts). */
  private granted(token: number, ttlMs: number): ClientResult {
    this.o.floor?.note(token, 'soon');
    return { status: Status.OK, token, ttlMs };
  }

  /** The lock's znode if it is held (not expired) with lease digest `digest`. */
  private async heldWith(c: Client, name: string, digest: string): Promise<{ data: Buffer; stat: Stat; grant: LockGrant } | undefined> {
    const cur = await this.read(c, this.lockPath(name));
    if (!cur || cur.data.length === 0) return undefined;
    const g = decodeLockGrant(name, cur.data.toString('utf8'));
    if (typeof g === 'string' || g.digest !== digest) return undefined;
    if (timeOf(cur.stat.mtime) + g.ttlMs <= (await this.serverNow(c))) return undefined;
    return { ...cur, grant: g };
  }

  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'lock.renew', name, token: 1, now: 0 });
    if (bad) return cb(bad);
    const digest = leaseHex(lease);
    if (typeof digest !== 'string') return cb(digest);
    this.run(true, 'lock renew', cb, async (c) => {
      const cur = await this.heldWith(c, name, digest);
      if (!cur) return { status: Status.CONFLICT, error: `lock ${name} is not held with that lease` };
      // Rewriting the record moves the znode's mtime: the TTL runs from now.
      const r = await this.multi(c, (t) => t.setData(this.lockPath(name), this.lockRecord(cur.grant, cur.stat), cur.stat.version));
      if (!r.ok) return { status: Status.CONFLICT, error: `lock ${name} changed while renewing` };
      return { status: Status.OK, token: this.lockToken(cur.grant, cur.stat), ttlMs: cur.grant.ttlMs };
    });
  }

  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'lock.release', name, token: 1 });
    if (bad) return cb(bad);
    const digest = leaseHex(lease);
    if (typeof digest !== 'string') return cb(digest);
    this.run(true, 'lock release', cb, async (c) => {
      const cur = await this.heldWith(c, name, digest);
      if (!cur) return { status: Status.CONFLICT, error: `lock ${name} is not held with that lease` };
      // Written empty, not removed: the znode's version goes on growing (see above).
      const r = await this.multi(c, (t) => t.setData(this.lockPath(name), Buffer.alloc(0), cur.stat.version));
      if (!r.ok) return { status: Status.CONFLICT, error: `lock ${name} changed while releasing` };
      return { status: Status.OK };
    });
  }

  // Jobs

  jobRecordLocation(job: string): string {
    return `znode ${this.jobPath(job)}`;
  }

  private jobPath(job: string): string {
    return `${this.paths.jobs}/${znodeName(job)}`;
  }

  private async readJob(c: Client, job: string): Promise<{ rec: ClaimedJobRecord | undefined; version: number | undefined } | string> {
    const cur = await this.read(c, this.jobPath(job));
    if (!cur) return { rec: undefined, version: undefined };
    const rec = decodeJobRecord(job, cur.data.toString('utf8'));
    if (typeof rec === 'string') return rec;
    this.jobs.set(job, rec);
    return { rec, version: cur.stat.version };
  }

  jobClaim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'job.claim', job, slot, node: this.o.self.id, term: Math.max(1, lead.term), token: Math.max(1, lead.token) });
    if (bad) return cb(bad);
    const path = this.jobPath(job);
    this.run(true, 'job claim', cb, async (c) => {
      const mine = this.myNode;
      if (!mine || this.myToken !== lead.token) return { status: Status.CONFLICT, error: `not granted: this node no longer leads with token ${lead.token}` };
      for (let i = 0; i < 3; i++) {
        const cur = await this.readJob(c, job);
        if (typeof cur === 'string') return { status: Status.CONFLICT, error: cur };
        if (cur.rec && cur.rec.claim.slot >= slot) return { status: Status.CONFLICT, holder: String(cur.rec.claim.node), error: `slot already claimed (slot ${isoUtc(cur.rec.claim.slot)}, token ${cur.rec.claim.token})` };
        const rec: ClaimedJobRecord = { name: job, claim: { slot, node: this.o.self.id, term: lead.term, token: lead.token, index: lead.token }, result: cur.rec?.result ?? null };
        const data = Buffer.from(encodeJobRecord(rec));
        // Guarded by our candidate znode: gone with our session, and with it our leadership.
        const r = await this.multi(c, (t) => {
          t.check(mine, -1);
          if (cur.version === undefined) t.create(path, Buffer.alloc(0), this.acl, CreateMode.PERSISTENT).setData(path, data, 0);
          else t.setData(path, data, cur.version);
        });
        if (r.ok) {
          const st = r.results.at(-1)!.stat!;
          this.jobs.set(job, { ...rec, claim: { ...rec.claim, index: zxid(st.mzxid) } });
          return { status: Status.OK, index: zxid(st.mzxid) };
        }
        if (r.code === ZX.NO_NODE && (await this.read(c, mine)) === undefined) return { status: Status.CONFLICT, error: `not granted: this node no longer leads with token ${lead.token}` };
      }
      return { status: Status.CONFLICT, error: 'not granted: the job record kept changing' };
    });
  }

  jobDone(rep: JobReport, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'job.done', job: rep.job, slot: rep.slot, node: this.o.self.id, outcome: rep.outcome, code: rep.code, signal: rep.signal, startedAtMs: rep.startedAtMs, durationMs: rep.durationMs });
    if (bad) return cb(bad);
    this.run(true, 'job done', cb, async (c) => {
      for (let i = 0; i < 3; i++) {
        const cur = await this.readJob(c, rep.job);
        if (typeof cur === 'string') return { status: Status.CONFLICT, error: cur };
        if (!cur.rec || cur.version === undefined) return { status: Status.CONFLICT, error: `job ${rep.job} has no claim` };
        if (cur.rec.claim.slot !== rep.slot) return { status: Status.CONFLICT, error: `job ${rep.job}: the claimed slot is another one` };
        const rec: ClaimedJobRecord = { ...cur.rec, result: { slot: rep.slot, node: this.o.self.id, outcome: rep.outcome, code: rep.code, signal: rep.signal, startedAtMs: rep.startedAtMs, durationMs: rep.durationMs, index: 0 } };
        const r = await this.multi(c, (t) => t.setData(this.jobPath(rep.job), Buffer.from(encodeJobRecord(rec)), cur.version));
        if (r.ok) {
          const index = zxid(r.results[0]!.stat!.mzxid);
          this.jobs.set(rep.job, { ...rec, result: { ...rec.result!, index } });
          return { status: Status.OK, index };
        }
      }
      return { status: Status.CONFLICT, error: `job ${rep.job}: the record kept changing` };
    });
  }

  /** The cached record; a read of it goes out (at most once a second per job), so the next call has the service's copy. */
  jobRecord(job: string): ClaimedJobRecord | undefined {
    const now = this.now();
    const c = this.client;
    if (!this.stopped && c && c.getState() === State.SYNC_CONNECTED && now - (this.jobReadAt.get(job) ?? -Infinity) >= 1000) {
      this.jobReadAt.set(job, now);
      this.readJob(c, job).catch(() => undefined);
    }
    return this.jobs.get(job);
  }

  // Watches: ZooKeeper's data watches fire once; re-armed after each event.

  onKeyChange(key: string, fn: () => void): () => void {
    return this.watchers.add(key, fn);
  }

  private openWatch(path: string, fire: () => void): () => void {
    let closed = false;
    const arm = () => {
      const c = this.client;
      if (closed || this.stopped || !c) return;
      c.exists(
        path,
        () => {
          if (closed) return;
          fire();
          arm();
        },
        (err) => {
          // Not connected now: try again shortly (the watch is what the HTTP watch waits on).
          if (err && !closed) setTimeout(arm, 200).unref?.();
        },
      );
    };
    this.armers.add(arm);
    arm();
    return () => {
      closed = true;
      this.armers.delete(arm);
    };
  }
}
