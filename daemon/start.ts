/**
 * `quorumd start --config node.yaml`: one node on a board, and `startNode()`, the same
 * thing as a library call (daemon/index.ts).
 *
 * Wiring: systemClock() + FsStorage(<dataDir>/raft; the pid lock is <dataDir>/quorumd.pid) (fsync timed for /metrics) + the configured
 * links (one MqttLink over all brokers, one TcpLink for `tcp:`, one SerialLink per `serial:` entry; every frame
 * goes out on each link that reaches its destination, the receiver's replay window
 * drops the copies) → EngineRuntime (daemon/runtime/engine-node.ts: raft, paxos, zab,
 * pbft, bully) → EngineBackend (BullyBackend for bully) → HTTP API; leadership changes
 * → hooks; JSON log lines on stdout (daemon/log.ts).
 *
 * Shutdown (SIGTERM/SIGINT/SIGHUP, or `stop()`): a Raft, Multi-Paxos or ZAB leader
 * first hands leadership to the most up-to-date reachable voter (Raft thesis §3.10) and
 * waits, bounded, until the successor is active (daemon/runtime/hand-over.ts), so that
 * the cluster neither sits out an election timeout nor fences this board. The HTTP API stops taking
 * requests before that (new connections refused, new requests 503 "ask another node")
 * and answers those it has (bounded: DRAIN_MAX_MS); then the runtime stops (what still
 * waits is answered 503/504), links close (MQTT publishes an orderly "offline", so peers
 * do not treat it as a crash), the HTTP server closes and the data directory lock is
 * released.
 */
import { EXIT } from './exit-codes.ts';
import { exitOnUncaught } from './runtime/process-guard.ts';
import { handOver } from './runtime/hand-over.ts';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { userInfo } from 'node:os';
import type { Clock, Done, Link, Storage } from '../hal/interfaces.ts';
import { FsStorage } from '../hal/fs-storage.ts';
import { MqttLink, type MqttTlsOptions } from '../hal/mqtt/link.ts';
import { SerialLink } from '../hal/serial/link.ts';
import { TcpLink } from '../hal/tcp/link.ts';
import { Rng } from '../src/rng.ts';
import { loadConfigFile, type ResolvedConfig } from './config/load.ts';
import { HookRunner } from './hooks.ts';
import { JobScheduler } from './jobs/scheduler.ts';
import { startApiServer, type ApiServer } from './http/server.ts';
import type { LinkInfo } from './http/backend-base.ts';
import { createNodeLog, runtimeLogger, type NodeLog } from './log.ts';
import { systemClock } from '../hal/clock.ts';
import { writeTracerFromEnv } from './runtime/write-trace.ts';
import { startMark, tracedObserver } from './start-trace.ts';
// The bully and the Paxos/ZAB runtimes are loaded only by a node that runs them
// (startNode): a Raft node does not read, compile and keep their code (start-up CPU
// and memory of every node, issue 14).
import type { EngineRuntime } from './runtime/engine-node.ts';
import type { EngineBackend } from './http/engine-backend.ts';
import { BullyBackend } from './http/backend-base.ts';
import { bullyPriority, parseListen } from './config/plain.ts';
import type { Config } from './config/schema.ts';
import { buildFencing, bullyFencingOptions, pbftFencingOptions, type BuiltFencing } from './fencing/build.ts';
import { ensureTokenFile, readSecretFile } from './config/secrets.ts';
import { ed25519Auth } from '../src/pbft/auth.ts';
import type { ApiCredential } from './http/auth.ts';
import { startServices, type RunningServices, type ServicesApi } from './services/index.ts';

startMark('start module loaded');

export interface StartOptions {
  /** A logger to use instead of JSON lines on stdout: a pino Logger, or anything with its level methods (NodeLog). */
  pino?: NodeLog;
  /** Install SIGTERM/SIGINT handlers that stop the node and exit. Default false (library use). */
  handleSignals?: boolean;
  /** Override the HTTP port (0 = any free port; tests). */
  httpPort?: number;
  /**
   * Run this config's member as a witness (`quorumd witness`): votes and acknowledges
   * with log metadata only, never leads, keeps no data, no fencing, no hooks. The
   * member must have `role: witness`. Default false.
   */
  witness?: boolean;
}

export interface RunningNode {
  config: ResolvedConfig;
  /** The engine runtime (any engine; under bully KV and locks answer 501). */
  runtime: EngineRuntime;
  backend: BullyBackend | EngineBackend;
  /** The node's links with their counters (MqttLink.stats / SerialLink.stats), in config order: mqtt first, then tcp, then serial. */
  links: LinkInfo[];
  http: ApiServer;
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:7071. */
  url: string;
  /** The file holding the operator API token (undefined when http.token is inline). */
  apiTokenFile: string | undefined;
  hooks: HookRunner;
  /** Scheduled jobs (engine raft, not a witness; an empty scheduler without a `jobs:` list). */
  jobs: JobScheduler | undefined;
  /** Service discovery (engines with a replicated KV, not a witness; undefined under bully). */
  services: ServicesApi | undefined;
  log: NodeLog;
  /** Transfers leadership if leader (bounded), then stops everything. Idempotent. */
  stop(): Promise<void>;
}

/** fsync timing for /metrics: wraps a Storage, timing sync and syncDir. */
class TimedStorage implements Storage {
  constructor(
    private readonly inner: Storage,
    private readonly observe: (seconds: number) => void,
  ) {}
  list() { return this.inner.list(); }
  read(n: string) { return this.inner.read(n); }
  write(n: string, d: Uint8Array) { this.inner.write(n, d); }
  append(n: string, d: Uint8Array) { this.inner.append(n, d); }
  truncate(n: string, s: number) { this.inner.truncate(n, s); }
  rename(a: string, b: string) { this.inner.rename(a, b); }
  remove(n: string) { this.inner.remove(n); }
  sync(n: string, done: Done) {
    const t0 = performance.now();
    this.inner.sync(n, (e) => { this.observe((performance.now() - t0) / 1000); done(e); });
  }
  syncDir(done: Done) {
    const t0 = performance.now();
    this.inner.syncDir((e) => { this.observe((performance.now() - t0) / 1000); done(e); });
  }
}

/**
 * Creates the data directory (and its parents) if needed; an error names it. Node's
 * recursive mkdir says ENOENT for a directory it may not create on a read-only file
 * system (seen with a read-only mount), although the parent exists: a plain mkdir of
 * the first missing directory then gives the real cause (EROFS, EACCES), which is
 * what the operator needs to read.
 */
function makeDataDir(dir: string): void {
  try {
    // The owner's alone, whatever the umask (other local users are not trusted).
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    let cause = err as NodeJS.ErrnoException;
    if (cause.code === 'ENOENT') {
      // The first missing one of dir and its parents: what the recursive mkdir tripped on.
      let first = dir;
      for (let i = 0; i < 256 && dirname(first) !== first && !existsSync(dirname(first)); i++) first = dirname(first);
      try {
        mkdirSync(first, { mode: 0o700 });
      } catch (plain) {
        cause = plain as NodeJS.ErrnoException;
      }
    }
    throw new Error(`data directory ${dir}: cannot create it: ${cause.message}${storageHint(cause)}`);
  }
  // Whoever may create, rename or remove files in it could replace the node's state (its
  // log, hard state, API token): refused, as a secret file readable by others is.
  const mode = statSync(dir).mode;
  if ((mode & 0o022) !== 0) {
    throw new Error(`data directory ${dir} is writable by ${(mode & 0o002) !== 0 ? 'other users' : 'its group'} (mode 0${(mode & 0o777).toString(8)}): they could replace the node's log, hard state and API token; make it the owner's alone: chmod 700 ${dir}`);
  }
}

/**
 * One process per data directory: a pid file created with O_EXCL. A file left by a
 * process that no longer exists (SIGKILL, power cut) is taken over.
 */
export function lockDataDir(dir: string): () => void {
  makeDataDir(dir);
  const p = join(dir, 'quorumd.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(p, 'wx', 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } catch (err) {
        // Created but not written (a full disk): leave no empty lock file behind. The
        // write's error is the one to report, whatever the clean-up meets.
        try {
          closeSync(fd);
          unlinkSync(p);
        } catch {
          /* a later start takes over a lock file without a live pid anyway */
        }
        throw err;
      }
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(p, 'utf8').trim() === String(process.pid)) unlinkSync(p);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`data directory ${dir}: cannot create ${p}: ${(err as Error).message}${storageHint(err)}`);
      let pid = NaN;
      try {
        pid = Number(readFileSync(p, 'utf8').trim());
      } catch {
        /* vanished meanwhile: retry */
      }
      let alive = false;
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (e) {
          alive = (e as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) throw new Error(`data directory ${dir} is in use by process ${pid} (${p}); one node per data directory`);
      try {
        unlinkSync(p);
      } catch (e) {
        // Gone meanwhile (raced with another start): retry. Anything else is why the lock
        // cannot be taken, to be said: seen on a file system the kernel had remounted
        // read-only, where this ended in a bare "could not take the lock".
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new Error(`data directory ${dir}: cannot remove the lock file ${p} left by process ${Number.isInteger(pid) && pid > 0 ? `${pid}, which is no longer running` : 'that is gone'}: ${(e as Error).message}${storageHint(e)}`);
        }
      }
    }
  }
  throw new Error(`data directory ${dir}: could not take the lock ${p}`);
}

/**
 * `text` as the whole of file `p` (mode 0600), replacing it atomically and durably: a
 * temporary file written and fsynced, renamed over `p`, the directory fsynced (the
 * rename is durable only then on ext4/f2fs). Throws the system's error.
 */
function writeFileDurably(p: string, text: string): void {
  const tmp = `${p}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, p);
  const dfd = openSync(dirname(p), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/**
 * This start's counter, kept in `<dataDir>/start.counter` (written atomically, fsynced):
 * max(previous + 1, seconds since the Unix epoch). It grows at every start, and comes
 * back above every earlier value even after the data directory was wiped, once the
 * clock is set. The MQTT link names its connections with it (signed presence,
 * hal/mqtt/presence.ts), so that peers can tell a replayed old will from a current one.
 */
function nextStartCounter(dir: string): number {
  const p = join(dir, 'start.counter');
  let prev = 0;
  try {
    const t = readFileSync(p, 'utf8').trim();
    if (/^\d{1,10}$/.test(t)) prev = Number(t);
  } catch {
    /* first start */
  }
  const next = Math.min(0xffffffff, Math.max(prev + 1, Math.floor(Date.now() / 1000)));
  try {
    writeFileDurably(p, `${next}\n`);
  } catch (err) {
    // A write to a descriptor names no file ("ENOSPC: no space left on device, write"):
    // say which, and what a full disk means here.
    throw new Error(`data directory ${dir}: cannot write ${p}: ${(err as Error).message}${storageHint(err)}`);
  }
  return next;
}

/**
 * `<dataDir>/<engine dir>.initialized` (e.g. `raft.initialized`): written once the
 * engine's directory held its first durable hard state, never removed by quorumd. An
 * engine directory that is missing or has no hard state while this file exists lost the
 * node's votes and log (removed under a running node, emptied, another disk mounted
 * over it): found by hand, a dev member whose raft/ was removed while it ran stopped at
 * its next snapshot (ENOENT) and came back as a new member with term 0 and an empty
 * log, having forgotten whom it voted for and what it acknowledged. The durable log
 * alone cannot tell that from a first start. Refused, with what to do.
 */
function stateMarkPath(dataDir: string, sub: string): string {
  return join(dataDir, `${sub}.initialized`);
}

function checkStateMark(dataDir: string, sub: string): void {
  const mark = stateMarkPath(dataDir, sub);
  if (!existsSync(mark)) return;
  const dir = join(dataDir, sub);
  if (existsSync(join(dir, 'hardstate'))) return;
  throw new Error(
    `data directory ${dataDir}: ${existsSync(dir) ? `${dir} has no hard state` : `${dir} is missing`}, but ${mark} says this node kept its state there: its votes and log are gone (removed, emptied, or another disk mounted?). Started like this it would be a new member that forgot whom it voted for and what it acknowledged, so it does not start. Put the directory back from this board (docs/install-pi.md, "When a data file is damaged"); only if you set up the whole cluster afresh, remove ${mark}`,
  );
}

/** Writes the mark (atomically, synced) when missing and the engine's hard state exists; a failure is only logged (the mark guards, it holds no state). */
function writeStateMark(dataDir: string, sub: string, warn: (msg: string) => void): void {
  const mark = stateMarkPath(dataDir, sub);
  try {
    if (existsSync(mark) || !existsSync(join(dataDir, sub, 'hardstate'))) return;
    writeFileDurably(mark, `the state of this node is in ${sub}/ (written at its first start there; see docs/install-pi.md before removing this file)\n`);
  } catch (err) {
    warn(`cannot write ${mark}: ${(err as Error).message}${storageHint(err)}`);
  }
}

/**
 * What the operator is to do about a storage error that is theirs to fix — a full, a
 * failing or a read-only disk — or '' for any other error. Looks through `cause`
 * (the storage layer wraps the system's error to name the file).
 */
/** The name of the user this process runs as, for a message (its uid when the name cannot be found). */
function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

export function storageHint(err: unknown): string {
  let code: string | undefined;
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; depth < 4 && e !== undefined && e !== null && code === undefined; depth++) {
    if (typeof e.code === 'string') code = e.code;
    e = e.cause as typeof e;
  }
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return ' (the file system of the data directory is full: free space on it, then start the node again)';
    case 'EIO':
      return ' (the storage device reported an I/O error: the SD card or disk may be failing, see the kernel log (dmesg); the other nodes carry on without this one)';
    case 'EROFS':
      return ' (the file system of the data directory is read-only: mounted so, or remounted read-only by the kernel after write errors, see dmesg)';
    case 'EACCES':
    case 'EPERM':
      return ` (the node's user, ${userName()}, may not read or write it: the data directory and everything in it must belong to the user quorumd runs as: chown -R ${userName()} on the data directory)`;
    default:
      return '';
  }
}

function readPem(file: string | undefined, what: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Starts a node from a resolved config (see loadConfigFile). */
export async function startNode(cfgOrFile: ResolvedConfig | string, opts: StartOptions = {}): Promise<RunningNode> {
  const cfg = typeof cfgOrFile === 'string' ? loadConfigFile(cfgOrFile) : cfgOrFile;
  startMark('config loaded');
  const c = cfg.config;
  if (c.engine === 'etcd' || c.engine === 'zookeeper') {
    throw new Error(`${cfg.file}: engine ${c.engine} runs through an external service: start it with startExternalNode() (import { startExternalNode } from 'quorumd'); \`quorumd start\` does that by itself`);
  }
  const log = opts.pino ?? createNodeLog(c.log.level, { node: cfg.self.name, cluster: c.cluster.name });
  // Under bully a witness member is a priority-0 board that follows and never coordinates.
  const witness = opts.witness === true;
  if (cfg.self.role === 'witness' && (c.engine === 'raft' || c.engine === 'paxos' || c.engine === 'zab') && !witness) {
    throw new Error(`${cfg.file}: node ${cfg.self.name} is a witness member: run it with \`quorumd witness --config ${cfg.file}\``);
  }
  if (witness && cfg.self.role !== 'witness') {
    throw new Error(`${cfg.file}: node ${cfg.self.name} is a voter (members: role), not a witness: run it with \`quorumd start\`, or give it role: witness`);
  }
  if (witness && c.engine !== 'raft' && c.engine !== 'paxos' && c.engine !== 'zab') throw new Error(`${cfg.file}: not implemented: a witness process for engine ${c.engine} (a bully witness is a priority-0 member run by \`quorumd start\`)`);
  // An observer (engine zab) never leads: like a witness it needs no fence devices or watchdog.
  const observer = cfg.self.role === 'observer';

  const unlock = lockDataDir(cfg.dataDir);
  // The operator credential: configured, or <dataDir>/api.token made at the first start.
  let apiToken = cfg.http.token;
  if (apiToken === undefined) {
    try {
      const t = ensureTokenFile(cfg.http.tokenFile!, 'http.tokenFile');
      apiToken = t.token;
      if (t.created) log.info({ tokenFile: cfg.http.tokenFile }, `created the API token (operator scope) in ${cfg.http.tokenFile}, mode 0600; quorumd finds it with --data-dir ${cfg.dataDir} (or QUORUMD_DATA_DIR)`);
    } catch (err) {
      unlock();
      throw new Error(`${cfg.file}: ${(err as Error).message}`);
    }
  }
  const apiCredentials: ApiCredential[] = [{ name: 'token', scope: 'operator', token: apiToken }, ...cfg.http.credentials];
  // How `quorumd` in a hook or job finds the token: the file, or the inline token itself.
  const apiAuthEnv: Record<string, string> = cfg.http.tokenFile !== undefined ? { QUORUMD_API_TOKEN_FILE: cfg.http.tokenFile } : { QUORUMD_API_TOKEN: apiToken };
  const links: Link[] = [];
  const linkInfos: LinkInfo[] = [];
  try {
    if (c.mqtt) {
      const tlsOpts: MqttTlsOptions | undefined = c.mqtt.tls
        ? {
            ...(c.mqtt.tls.caFile ? { ca: readPem(c.mqtt.tls.caFile, 'mqtt.tls.caFile') } : {}),
            ...(c.mqtt.tls.certFile ? { cert: readPem(c.mqtt.tls.certFile, 'mqtt.tls.certFile') } : {}),
            ...(c.mqtt.tls.keyFile ? { key: readSecretFile(c.mqtt.tls.keyFile, 'mqtt.tls.keyFile') } : {}),
            rejectUnauthorized: c.mqtt.tls.rejectUnauthorized,
          }
        : undefined;
      const link = new MqttLink({
        cluster: c.cluster.id,
        self: cfg.self.id,
        keyring: cfg.previousKey ? { current: cfg.key, previous: cfg.previousKey } : { current: cfg.key },
        boot: nextStartCounter(cfg.dataDir),
        brokers: c.mqtt.brokers,
        keepaliveSec: c.mqtt.keepaliveSec,
        ...(c.mqtt.username !== undefined ? { username: c.mqtt.username } : {}),
        ...(cfg.mqttPassword !== undefined ? { password: cfg.mqttPassword } : {}),
        ...(tlsOpts ? { tls: tlsOpts } : {}),
      });
      links.push(link);
      linkInfos.push({
        name: link.name,
        stats: link.stats as unknown as Record<string, number>,
        up: () => link.connectedCount() > 0,
        errorKeys: ['droppedDisconnected', 'droppedBackpressure', 'droppedTooLarge', 'refusedTooLarge', 'unexpectedTopic', 'badPresence', 'forgedPresence', 'staleWills', 'droppedOversizePackets'],
      });
    }
    if (c.tcp) {
      // Listens and dials asynchronously, redialing with backoff: a peer that is not up
      // yet, or a listen address in use, is a 'down' event and a log line, not a failed start.
      const own = c.tcp.peers.find((p) => p.id === cfg.self.id)!;
      const link = new TcpLink({
        cluster: c.cluster.id,
        self: cfg.self.id,
        keyring: cfg.previousKey ? { current: cfg.key, previous: cfg.previousKey } : { current: cfg.key },
        listen: parseListen(c.tcp.listen ?? own.address)!,
        peers: c.tcp.peers.filter((p) => p.id !== cfg.self.id).map((p) => ({ id: p.id, ...parseListen(p.address)! })),
        maxFrame: c.tcp.maxFrame,
        helloTimeoutMs: c.tcp.helloTimeoutMs,
        maxPending: c.tcp.maxPending,
      });
      links.push(link);
      linkInfos.push({
        name: link.name,
        stats: link.stats as unknown as Record<string, number>,
        up: () => link.connectedPeers().length > 0,
        errorKeys: ['droppedDown', 'droppedBackpressure', 'tooLarge', 'badHello', 'authFailures', 'helloTimeouts', 'evictedPending', 'listenErrors'],
      });
    }
    for (const [i, sc] of (c.serial ?? []).entries()) {
      // The SerialLink opens the port asynchronously and reopens it with backoff: a
      // missing or busy device is a 'down' event and a log line, not a failed start,
      // so that a node whose USB adapter is replugged (or whose other link still
      // works) keeps running.
      const link = new SerialLink({
        path: sc.path,
        self: cfg.self.id,
        ...(sc.peer !== undefined ? { peer: sc.peer } : { bus: { members: sc.bus!.members, guardMs: sc.bus!.guardMs } }),
        baudRate: sc.baudRate,
        maxFrame: sc.maxFrame,
        name: `serial${i}:${sc.path}`,
      });
      links.push(link);
      linkInfos.push({
        name: link.name,
        stats: link.stats as unknown as Record<string, number>,
        up: () => link.isUp,
        errorKeys: ['crcErrors', 'badEscapes', 'runts', 'tooLarge', 'droppedDown', 'droppedQueue', 'badHeader', 'writeErrors', 'openFailures', 'disconnects'],
      });
    }
  } catch (err) {
    for (const l of links) l.close();
    unlock();
    throw err;
  }
  // mqtt.frames (daemon/config/schema.ts): with `fallback` the brokers carry a frame only
  // when the TCP link cannot send it now; they carry the presence and the wills anyway.
  const tcpLink = links.find((l): l is TcpLink => l instanceof TcpLink);
  const mqttFrames = c.mqtt && tcpLink && (c.mqtt.frames ?? 'fallback') === 'fallback' ? (to: number) => !tcpLink.sendsTo(to) : undefined;

  startMark('links created');
  // Fence devices, watchdog (a witness or an observer never leads: it needs neither).
  let fencing: BuiltFencing | undefined;
  if (c.fencing && !witness && !observer) {
    try {
      fencing = buildFencing(c.fencing, { members: c.members, selfId: cfg.self.id, log: { warn: (f, m) => log.warn(f, m), error: (f, m) => log.error(f, m) } });
    } catch (err) {
      for (const l of links) l.close();
      unlock();
      throw new Error(`${cfg.file}: ${(err as Error).message}`);
    }
  }

  // QUORUMD_TRACE_WRITES=<dir>: per-write trace points (daemon/runtime/write-trace.ts, bench/write-trace.ts).
  const tracer = c.engine === 'raft' ? writeTracerFromEnv(cfg.self.name) : undefined;
  // The log engines (every engine but bully): the engine runtime with the engine backend.
  const contract = c.engine === 'raft' || c.engine === 'paxos' || c.engine === 'zab' || c.engine === 'pbft' ? c.engine : undefined;
  // Testing only: `quorumd dev --byzantine-node` starts this node lying (daemon/runtime/pbft-host.ts devByzantine).
  let byzantine: import('../src/pbft/byzantine.ts').Saboteur | undefined;
  if (process.env.QUORUMD_DEV_BYZANTINE !== undefined) {
    const { devByzantine } = await import('./runtime/pbft-host.ts');
    try {
      byzantine = devByzantine(process.env.QUORUMD_DEV_BYZANTINE, process.env.QUORUMD_DEV_PARENT, process.ppid, c.engine, cfg.self.id, c.members.filter((m) => m.role !== 'witness').map((m) => m.id), cfg.key, c.cluster.id);
    } catch (err) {
      for (const l of links) l.close();
      unlock();
      throw err;
    }
    log.error({ node: cfg.self.name, behaviours: [...byzantine.kinds].join(',') }, 'TESTING ONLY: this node runs as a BYZANTINE (lying) PBFT replica, started by quorumd dev --byzantine-node; never on a real cluster');
  }
  if (contract === 'pbft' && !cfg.pbftKeys) {
    log.warn({ node: cfg.self.name }, 'pbft: no pbft.privateKey/publicKeys: every member\'s signing key is derived from the cluster key, so whoever reads the cluster key off any board can sign as every board (docs/engines.md "Keys"); configure per-board key files on a real cluster');
  }
  let engineMods: [typeof import('./runtime/engine-node.ts'), typeof import('./http/engine-backend.ts')] | undefined;
  let bullyMod: typeof import('./runtime/engine-node.ts') | undefined;
  try {
    if (contract) engineMods = await Promise.all([import('./runtime/engine-node.ts'), import('./http/engine-backend.ts')]);
    // Bully runs on the engine runtime too (election only: KV and locks answer 501), with its own backend.
    else if (c.engine === 'bully') bullyMod = await import('./runtime/engine-node.ts');
  } catch (err) {
    for (const l of links) l.close();
    fencing?.close();
    fencing?.watchdog?.disarm();
    unlock();
    throw err;
  }
  startMark('engine modules loaded');
  const backend = engineMods ? new engineMods[1].EngineBackend(cfg.self, c.members, linkInfos, c.cluster.name) : new BullyBackend(cfg.self, c.members, linkInfos, c.cluster.name);
  const isEngineBackend = (b: typeof backend): b is EngineBackend => engineMods !== undefined && b instanceof engineMods[1].EngineBackend;
  // Each engine keeps its durable state in a directory of its own: one engine's log is never read as another's.
  const stateSub = c.engine === 'bully' ? 'bully' : contract ?? 'raft';
  let fsStorage: FsStorage;
  try {
    checkStateMark(cfg.dataDir, stateSub);
    fsStorage = new FsStorage(join(cfg.dataDir, stateSub));
  } catch (err) {
    for (const l of links) l.close();
    fencing?.close();
    fencing?.watchdog?.disarm();
    unlock();
    const msg = (err as Error).message;
    throw new Error(msg.startsWith('data directory ') ? msg : `data directory ${cfg.dataDir}: ${msg}${storageHint(err)}`);
  }
  for (const t of fsStorage.tightened) {
    log.warn({ file: join(fsStorage.dir, t.name), mode: `0${t.mode.toString(8)}` }, 'storage file was readable or writable by group or others (made under a permissive umask by an earlier version): now mode 0600; other local users may have read the KV values in it');
  }
  const storage = new TimedStorage(fsStorage, (s) => backend.fsync.observe(s));
  // Once booted (the durable log's hard state is on disk): the state mark (checkStateMark).
  const markingState = <O extends { booted?(rt: never): void }>(o: O): O => ({
    ...o,
    booted: (rt: never) => {
      o.booted?.(rt);
      writeStateMark(cfg.dataDir, stateSub, (m) => log.warn({ dataDir: cfg.dataDir }, m));
    },
  });
  const voters = c.members.filter((m) => m.role === 'voter').map((m) => m.id);
  const witnesses = c.members.filter((m) => m.role === 'witness').map((m) => m.id);
  // Observers are the engine's learners (the config allows them with engine: zab only).
  const learners = c.members.filter((m) => m.role === 'observer').map((m) => m.id);
  const rlog = runtimeLogger(log);
  let stopping: Promise<void> | undefined;
  let fatal: Error | undefined;
  // The one fatal path (daemon/runtime/fatal.ts): the runtime already stopped and
  // answered its pending requests; here the rest of the process follows — HTTP requests
  // still waiting get 503, links close (peers hear "offline" at once), and the process
  // exits EXIT.FATAL for its supervisor. Never from inside the link callback or timer
  // that failed: on a later turn of the event loop.
  const onFatal = (err: Error) => {
    if (fatal) return;
    fatal = err;
    // A full, failing or read-only disk is the operator's to fix, not a bug: say so, and where.
    // A damaged file is named by the storage layer without its directory: add it, and what the refusal means.
    const hint = err.name === 'StorageCorruptError'
      ? (err as { newer?: boolean }).newer === true
        ? ` (in ${fsStorage.dir}: a newer quorumd wrote it and this build cannot read it; start the newer build again: docs/install-pi.md, "Upgrading")`
        : ` (in ${fsStorage.dir}: the node refuses to start rather than run without state it acknowledged; docs/install-pi.md, "When a data file is damaged")`
      : err.name === 'NewerEntryError'
        ? ' (every restart replays the same entry and stops here again: this node needs a build that knows it)'
        : storageHint(err);
    log.fatal({ error: `${err.message}${hint}`, kind: err.name, ...(hint ? { dataDir: cfg.dataDir } : {}), stack: err.stack ?? '' }, 'node stopped on a fatal error; exiting so that the supervisor restarts it');
    setImmediate(() => {
      void node
        .stop()
        .catch((e: unknown) => log.error({ error: (e as Error)?.message ?? String(e) }, 'error while stopping after a fatal error'))
        .finally(() => {
          for (const l of links) l.close();
          if (opts.handleSignals) process.exit(EXIT.FATAL);
        });
    });
  };
  const runtime = isEngineBackend(backend) ? new engineMods![0].EngineRuntime({
    engine: contract!,
    id: cfg.self.id,
    config: { voters, learners, witnesses },
    cluster: c.cluster.id,
    keyring: cfg.previousKey ? { current: cfg.key, previous: cfg.previousKey } : { current: cfg.key },
    clock: systemClock(),
    storage,
    // A leader's will, or its goodbye on a planned stop, is a hint: Raft, Paxos and ZAB
    // followers campaign at once (their hand-over may not have finished); PBFT backups
    // suspect the primary sooner (src/pbft/pbft.ts leaderGone) — it never elects anyone.
    links: links.map((l) => peerGoneFilter(l, contract === 'raft' ? c.raft.campaignOnPeerGone : contract === 'paxos' ? c.paxos.campaignOnPeerGone : contract === 'zab' ? c.zab.campaignOnPeerGone : true, mqttFrames, true)),
    rng: new Rng(randomBytes(4).readUInt32LE(0)),
    startClockWhen: { reachable: () => peerReachable(links, cfg.self.id, c.members.map((m) => m.id)), maxWaitMs: START_CLOCK_MAX_WAIT_MS },
    // Idle CPU (issue 14): no wake-up every tick while the engine has nothing due (engines with quietTicks: Raft).
    quietTicks: true,
    engineOptions: contract === 'raft'
      ? { tickMs: c.raft.tickMs, electionTimeoutMinMs: c.raft.electionTimeoutMinMs, electionTimeoutMaxMs: c.raft.electionTimeoutMaxMs, heartbeatMs: c.raft.heartbeatMs, preVote: c.raft.preVote, checkQuorum: c.raft.checkQuorum }
      : contract === 'paxos'
        ? { tickMs: c.paxos.tickMs, electionTimeoutMinMs: c.paxos.electionTimeoutMinMs, electionTimeoutMaxMs: c.paxos.electionTimeoutMaxMs, heartbeatMs: c.paxos.heartbeatMs, prePrepare: c.paxos.prePrepare, checkQuorum: c.paxos.checkQuorum }
        : contract === 'zab'
          ? { tickMs: c.zab.tickMs, heartbeatMs: c.zab.heartbeatMs, syncLimitMs: c.zab.syncLimitMs, initLimitMs: c.zab.initLimitMs }
          : pbftEngineOptions(c.pbft),
    // pbft: this board's key files when configured (daemon/config/load.ts readPbftKeys); else the runtime derives them from the cluster key.
    ...(contract === 'pbft' && cfg.pbftKeys ? { pbftAuth: ed25519Auth(cfg.self.id, cfg.pbftKeys.privateKey, cfg.pbftKeys.publicKeys) } : {}),
    ...(byzantine ? { byzantine } : {}),
    ...(tracer ? { trace: tracer } : {}),
    requestTimeoutMs: c.http.requestTimeoutMs,
    quota: { maxKeys: c.kv.maxKeys, maxBytes: c.kv.maxBytes },
    logger: rlog,
    observer: markingState(tracedObserver(backend.observer())),
    onFatal,
    // Activation gate, own lease, STONITH and watchdog as under Raft (daemon/runtime/leader-fencing.ts);
    // pbft: STONITH on committed f + 1 votes (daemon/runtime/pbft-fencing.ts; a lying dev node also votes against everyone).
    ...(fencing && contract !== 'pbft' ? { fencing: fencing.options } : {}),
    ...(contract === 'pbft' && (fencing || byzantine) ? { pbftFencing: { ...(fencing ? pbftFencingOptions(fencing) : {}), ...(byzantine ? { lieSuspectAll: true } : {}) } } : {}),
  }) : new bullyMod!.EngineRuntime({
    engine: 'bully',
    id: cfg.self.id,
    config: { voters, learners: [], witnesses },
    cluster: c.cluster.id,
    keyring: cfg.previousKey ? { current: cfg.key, previous: cfg.previousKey } : { current: cfg.key },
    clock: systemClock(),
    storage,
    // No stagger: bully needs no vote, every follower may start its election at once.
    // Its will only: a coordinator's goodbye is not passed on (not looked at for bully yet).
    links: links.map((l) => peerGoneFilter(l, c.bully.campaignOnPeerGone, mqttFrames)),
    rng: new Rng(randomBytes(4).readUInt32LE(0)),
    startClockWhen: { reachable: () => peerReachable(links, cfg.self.id, c.members.map((m) => m.id)), maxWaitMs: START_CLOCK_MAX_WAIT_MS },
    engineOptions: {
      members: c.members.map((m, i) => ({ id: m.id, priority: bullyPriority(m, i) })),
      tickMs: c.bully.tickMs,
      heartbeatMs: c.bully.heartbeatMs,
      failureTimeoutMinMs: c.bully.failureTimeoutMinMs,
      failureTimeoutMaxMs: c.bully.failureTimeoutMaxMs,
      answerTimeoutMs: c.bully.answerTimeoutMs,
      coordinatorWaitMs: c.bully.coordinatorWaitMs,
      preempt: c.bully.preempt,
    },
    logger: rlog,
    observer: markingState(backend.observer()),
    onFatal,
    // Activation gate + STONITH (stonith: false or no targets: tokens only). No lease, no watchdog.
    ...(fencing ? { fencing: bullyFencingOptions(fencing) } : {}),
  });
  if (fencing) backend.setFencing(fencing.devices);
  if (tracer && isEngineBackend(backend)) backend.trace = tracer;
  backend.attach(runtime);

  const hooks = new HookRunner({
    onActive: c.hooks.onActive,
    onInactive: c.hooks.onInactive,
    timeoutMs: c.hooks.timeoutMs,
    node: cfg.self.name,
    cluster: c.cluster.name,
    log: { info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m), error: (f, m) => log.error(f, m) },
  });
  backend.onLeadership = (ev) => {
    if (ev.event === 'active') startMark('active');
    log.info({ event: ev.event, term: ev.term, token: ev.token }, ev.event === 'active' ? 'became active leader' : 'no longer leader');
    hooks.fire(ev);
  };

  // Service discovery on the replicated KV (daemon/services): not under bully (no KV), not on a witness (no data).
  let services: RunningServices | undefined;
  if (isEngineBackend(backend) && !witness) {
    try {
      services = await startServices(backend, { self: cfg.self.name, cluster: c.cluster.name, config: c.services, log: { debug: (f, m) => log.debug(f, m), info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m) }, env: { QUORUMD_NODE: cfg.self.name, QUORUMD_CLUSTER: c.cluster.name } });
    } catch (err) {
      for (const l of links) l.close();
      fencing?.close();
      fencing?.watchdog?.disarm();
      unlock();
      throw new Error(`${cfg.file}: ${(err as Error).message}`);
    }
  }
  let http: ApiServer;
  try {
    http = await startApiServer(backend, {
      ...(services ? { services: services.http } : {}),
      host: cfg.http.host,
      port: opts.httpPort ?? cfg.http.port,
      credentials: apiCredentials,
      ...(cfg.http.tls ? { tls: cfg.http.tls } : {}),
      headersTimeoutMs: c.http.headersTimeoutMs,
      maxConnectionsPerAddress: c.http.maxConnectionsPerAddress,
      ...(c.http.maxWatchesPerAddress !== undefined ? { maxWatchesPerAddress: c.http.maxWatchesPerAddress } : {}),
      maxBodyBytes: c.http.maxBodyBytes,
      maxWatchMs: c.http.maxWatchMs,
      backstopMs: c.http.requestTimeoutMs + 2000,
      fenceTimeoutMs: 120_000,
      onError: (err, where) => log.error({ where, error: (err as Error)?.stack ?? String(err) }, 'HTTP handler error'),
    });
  } catch (err) {
    await services?.stop();
    for (const l of links) l.close();
    fencing?.close();
    fencing?.watchdog?.disarm();
    unlock();
    throw new Error(`HTTP API on ${cfg.http.host}:${opts.httpPort ?? cfg.http.port}: ${(err as Error).message}`);
  }
  const a = http.address();
  const url = `${cfg.http.tls ? 'https' : 'http'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  hooks.apiUrl = url;
  hooks.apiAuthEnv = apiAuthEnv;

  startMark('http listening');
  runtime.start();
  injectFault(process.env.QUORUMD_INJECT_FAULT, runtime, log);
  // Jobs run on data nodes only: a witness never leads.
  const jobs = isEngineBackend(backend) && !witness ? new JobScheduler({
    jobs: c.jobs,
    host: backend,
    node: cfg.self.name,
    cluster: c.cluster.name,
    apiUrl: url,
    apiAuthEnv,
    log: { debug: (f, m) => log.debug(f, m), info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m), error: (f, m) => log.error(f, m) },
  }) : undefined;
  if (jobs && isEngineBackend(backend)) {
    backend.jobsView = () => jobs.view();
    jobs.start();
  }
  log.info({ id: cfg.self.id, http: url, dataDir: cfg.dataDir, links: linkInfos.map((l) => l.name), members: c.members.length, ...(witness ? { witness: true } : {}), ...(observer ? { observer: true, ...(c.fencing ? { fencing: 'not used: an observer never leads' } : {}) } : {}), ...(fencing ? { fencing: fencing.devices.map((d) => `${d.name}=${d.detail}`).join('; ') || (c.engine === 'bully' ? 'tokens only' : 'leases only'), stonith: c.fencing!.stonith } : {}) }, witness ? 'witness started' : 'node started');

  const node: RunningNode = {
    config: cfg,
    runtime,
    backend,
    links: linkInfos,
    http,
    url,
    apiTokenFile: cfg.http.tokenFile,
    hooks,
    jobs,
    services: services?.api,
    log,
    stop: () => (stopping ??= shutdown()),
  };

  async function shutdown(): Promise<void> {
    // No new slots; running jobs are stopped (SIGTERM, then SIGKILL) and their results reported while the runtime still runs.
    await jobs?.stop();
    await services?.stop();
    // The HTTP API stops taking requests (refused, or answered 503 "ask another node"):
    // those already received get their real answers, so the runtime runs on until they
    // have them — a write forwarded to the leader or waiting for its commit, when its
    // connection was dropped here, had been applied with its client left unable to tell.
    const why = fatal ? `node ${cfg.self.name} stopped on a fatal error (${fatal.message.slice(0, 200)})` : `node ${cfg.self.name} is stopping`;
    http.drain(why);
    // Engines that transfer and report their followers' progress (Raft, Multi-Paxos, ZAB)
    // hand leadership over first, and stay until the successor no longer needs this node
    // (daemon/runtime/hand-over.ts); the others' followers notice within one
    // failure/election timeout.
    if (runtime.isLeader && !fatal) await handOverNow(runtime);
    if (!(await http.allAnswered(DRAIN_MAX_MS))) log.warn({ waitedMs: DRAIN_MAX_MS }, 'stopping with API requests still unanswered: they are answered as the node stops (a write: outcome unknown)');
    runtime.stop(); // closes the links too (and disarms the watchdog); answers whatever still waits
    // ...and their orderly close finishes before the process may exit (bounded): on MQTT
    // the goodbye, then DISCONNECT, so that the broker drops the will. Before, under load
    // the process often exited before the goodbye's PUBACK, and the broker published the
    // will too (in 5 of 24 measured planned stops of a leader).
    const linksClosed = Promise.race([
      Promise.all(links.map((l) => new Promise<void>((r) => l.close(() => r())))),
      new Promise<void>((r) => setTimeout(r, LINKS_CLOSE_MAX_MS).unref()),
    ]);
    fencing?.close();
    await http.close(why);
    if (backend.active) hooks.fire({ event: 'inactive', term: runtime.status().term, token: backend.leader().token });
    await Promise.race([hooks.stop(), new Promise((r) => setTimeout(r, c.hooks.timeoutMs + 3000))]);
    await linksClosed;
    unlock();
    log.info('node stopped');
  }

  /**
   * Leadership hand-over to the most caught-up reachable voter (daemon/runtime/hand-over.ts),
   * bounded by twice the engine's longest election timeout (1 s at least).
   */
  function handOverNow(runtime: EngineRuntime): Promise<void> {
    // A voter that every link says is gone (its orderly "offline" or its will on MQTT, its
    // TCP connection closed) cannot take over: when the whole cluster stops at once
    // (`quorumd dev` on Ctrl-C, a shutdown of every board) the followers leave first, and
    // waiting for them held the leader for the whole bound (4 s by default).
    // A link that cannot tell (serial) keeps every voter a candidate.
    const gone = (id: number) => links.length > 0 && links.every((l) => typeof l.reaches === 'function') && !links.some((l) => l.reaches!(id));
    // The engine's own election timing: a Raft or Paxos transfer is one campaign; a ZAB
    // hand-over an election, discovery and synchronization, within initLimit.
    const electionMs = c.engine === 'paxos' ? c.paxos.electionTimeoutMaxMs : c.engine === 'zab' ? c.zab.initLimitMs : c.raft.electionTimeoutMaxMs;
    return new Promise((resolve) => {
      handOver(
        runtime,
        {
          clock: systemClock(),
          voters,
          gone,
          boundMs: Math.max(1000, electionMs * 2),
          log: (level, msg, fields) => log[level](fields ?? {}, msg),
        },
        () => resolve(),
      );
    });
  }

  if (opts.handleSignals) {
    // An exception no entry point caught (a library's event handler) takes the fatal path too: exit 70, not Node's 1.
    exitOnUncaught(log, async (err) => {
      runtime.crash('an event handler outside the engine', err);
      await node.stop();
    });
    let stopSignal: string | undefined;
    const onSignal = (sig: string) => {
      // One stop: a later signal (SIGHUP as the terminal closes after a Ctrl-C) is noted only.
      if (stopSignal !== undefined) {
        log.info({ signal: sig, stopping: stopSignal }, 'already stopping');
        return;
      }
      stopSignal = sig;
      log.info({ signal: sig }, 'stopping');
      void node.stop().then(
        () => process.exit(0),
        (err) => {
          log.error({ error: (err as Error).message }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    // The terminal it was started from went away (an SSH session dropped without nohup):
    // Node's default ended the process on the spot, a leader without handing over and its
    // job runs left going; stop as on SIGTERM instead (quorumd reads no config on SIGHUP).
    // `on`, not `once`: the listener stays for the whole stop, so that a further SIGHUP is
    // ignored (node.stop() is the one stop under way); with no listener left, Node's
    // default would end the node by that signal in the middle of its hand-over.
    process.on('SIGHUP', () => onSignal('SIGHUP'));
  }
  return node;
}

/**
 * The longest a stop waits for its links' orderly close (an MQTT link's goodbye and its
 * PUBACK, then DISCONNECT), ms. The link bounds each broker by its connect timeout too.
 */
const LINKS_CLOSE_MAX_MS = 3000;

/**
 * The longest a planned stop waits for the API requests in progress to get their answers
 * (ms), after the leader's hand-over. A write to a healthy cluster commits in a few ms; one
 * still waiting after this (no quorum, its leader gone) is answered 504 "outcome unknown"
 * as the runtime stops. Kept short: `quorumd dev` and service managers stop a node that
 * takes seconds the hard way.
 */
export const DRAIN_MAX_MS = 2000;

/**
 * The longest a node's engine clock waits at start for a reachable peer
 * (EngineRuntimeOptions.startClockWhen), ms: a node that hears of no peer within about
 * one election timeout starts it anyway (it could not win a vote alone; and should a
 * link never say so, it costs this once).
 */
const START_CLOCK_MAX_WAIT_MS = 1000;

/**
 * A peer is reachable through one of `links`: an MQTT broker connection on which a
 * member's presence is online (it subscribed to its inbox), a TCP connection to a peer,
 * or an open serial port (the other end is not known before it speaks).
 */
function peerReachable(links: Link[], self: number, members: number[]): boolean {
  const yes = () => {
    startMark('peer reachable');
    return true;
  };
  for (const l of links) {
    if (l instanceof MqttLink) {
      if (l.connectedCount() > 0 && members.some((m) => m !== self && l.peerState(m) === 'online')) return yes();
    } else if (l instanceof TcpLink) {
      if (l.connectedPeers().length > 0) return yes();
    } else if (l instanceof SerialLink) {
      if (l.isUp) return yes();
    } else return yes();
  }
  return false;
}

/**
 * Shapes the link's peer-gone hints before the runtime sees them.
 *
 * - `pass` false (raft/bully.campaignOnPeerGone: false): hints are dropped; followers
 *   find a dead leader by the election timeout only (the failover benchmark's baseline).
 * - Otherwise they go to the runtime at once. The runtime orders the reaction (one
 *   mechanism, not two delays on top of each other): for Raft every node calls
 *   RaftNode.leaderGone (no more stickiness) and the lowest surviving voter campaigns
 *   at once, the next ones only after peerGoneStaggerMs × rank if that failed
 *   (daemon/runtime/engine-node.ts). Until 2026-11 this wrapper delayed the hint by rank ×
 *   ≤ 10 ms on top of the runtime's own random 0–75 ms.
 * - `mqttFrames` (mqtt.frames: fallback beside tcp:): the MQTT link is offered a frame
 *   only when this says so (the TCP link cannot send to that peer now).
 * - `goodbyeIsGone` (every engine but bully): a peer's orderly goodbye on the brokers
 *   (its signed "offline" presence, published when it stops: SIGTERM, `systemctl
 *   restart`; the link reports it as peer-goodbye once no connected broker still shows
 *   the peer online, and never one from the retained store) is passed on, as the same
 *   hint as its will (`pass` governs both). Without it a PBFT primary's backups waited
 *   out the whole view-change timeout (bench/chaos-soak.ts term-leader over mqtt:
 *   4.3-5.5 s), and so did Raft, Paxos and ZAB followers whenever the leader's
 *   hand-over did not finish (its bound passed: the node it chose was stalled or cut
 *   off): the leader's clean stop dropped its will, and nothing else told them (in
 *   `quorumd dev --nodes 5`, 1.1-2.4 s after the old leader's exit before the next
 *   write). Why acting on it is as safe as acting on the will: docs/mqtt.md, "The goodbye".
 */
export function peerGoneFilter(l: Link, pass: boolean, mqttFrames: ((to: number) => boolean) | undefined, goodbyeIsGone = false): Link {
  const viaBroker = l instanceof MqttLink && mqttFrames !== undefined ? mqttFrames : undefined;
  return {
    name: l.name,
    maxFrame: l.maxFrame,
    // What the link says it reaches (TCP connections, MQTT presence): the runtime weighs
    // a will by it (a will counts only when no other link reaches the peer).
    ...(typeof l.reaches === 'function' ? { reaches: (p: number) => l.reaches!(p) } : {}),
    // A point-to-point link's peer: the runtime puts on a wire only frames for the node
    // at its other end (daemon/runtime/wire-endpoint.ts); the wrapper must not hide it.
    ...(typeof (l as { peer?: unknown }).peer === 'number' ? { peer: (l as unknown as { peer: number }).peer } : {}),
    // An RS-485 bus reaches only its drops: frames for anyone else are not offered to it,
    // so that its `misaddressed` counter keeps meaning a caller mistake.
    send: (to, f) => {
      if (l instanceof SerialLink && l.bus && !l.bus.members.includes(to)) return;
      // mqtt.frames: fallback: through the brokers only what the TCP link cannot send now.
      if (viaBroker !== undefined && !viaBroker(to)) return;
      l.send(to, f);
    },
    onFrame: (h) => l.onFrame(h),
    onEvent: (h) => {
      l.onEvent((ev) => {
        if (ev.kind === 'up') startMark('first link up');
        if (ev.kind === 'peer-gone' && !pass) return;
        if (ev.kind === 'peer-goodbye' && !(pass && goodbyeIsGone)) return;
        h(ev);
      });
    },
    close: (d) => l.close(d),
  };
}

/**
 * QUORUMD_INJECT_FAULT=engine-tick@<when> | engine-step@<when> | uncaught@<when>, <when> =
 * <ms> after start or SIGUSR2 (on receipt of that signal): from then on the Raft engine
 * throws from its tick (a timer) or from its next message (a link callback); `uncaught`
 * throws once from a plain event-loop callback outside the engine, as a library's socket
 * handler would (any engine). Only for testing the fatal path and its supervisor
 * (docs/cli.md, Exit status): the node must log the stack, answer what is pending, exit 70
 * and be restarted. Unset: nothing.
 */
function injectFault(spec: string | undefined, runtime: EngineRuntime, log: NodeLog): void {
  if (spec === undefined || spec === '') return;
  const m = /^(engine-tick|engine-step|uncaught)@(\d{1,7}|SIGUSR2)$/.exec(spec);
  if (!m) {
    log.error({ value: spec }, 'QUORUMD_INJECT_FAULT: expected engine-tick@<ms|SIGUSR2>, engine-step@<ms|SIGUSR2> or uncaught@<ms|SIGUSR2>; ignored');
    return;
  }
  if (m[1] !== 'uncaught' && runtime.engineName !== 'raft') {
    log.error({ value: spec }, 'QUORUMD_INJECT_FAULT: engine-tick and engine-step only for engine raft; ignored');
    return;
  }
  const what = m[1] === 'engine-tick' ? 'tick' : 'step';
  log.warn({ value: spec }, m[1] === 'uncaught' ? 'QUORUMD_INJECT_FAULT: this node will throw an uncaught exception on purpose' : 'QUORUMD_INJECT_FAULT: this node will throw from its engine on purpose');
  const arm = () => {
    log.warn({ value: spec }, 'QUORUMD_INJECT_FAULT: armed');
    if (m[1] === 'uncaught') {
      setImmediate(() => {
        throw new RangeError(`injected fault: an uncaught exception from an event handler (QUORUMD_INJECT_FAULT=${spec})`);
      });
      return;
    }
    const eng = runtime.engine as unknown as Record<string, unknown> | undefined;
    if (!eng) return;
    eng[what] = () => {
      throw new Error(`injected fault: RaftNode.${what} throws (QUORUMD_INJECT_FAULT=${spec})`);
    };
  };
  if (m[2] === 'SIGUSR2') process.once('SIGUSR2', arm);
  else setTimeout(arm, Number(m[2])).unref();
}

/** The CLI command: starts, runs until a signal. Config errors propagate (exit 2 in cli.ts). */
export async function runStart(file: string): Promise<void> {
  const devParent = devSupervisor();
  if (devParent === 'gone') return devSupervisorGone();
  // Watched from now on, not once started: a start that never finished was never watched.
  // (A node was found still running 37 minutes after its supervisor had gone, with no log
  // left to say where its start stood.) Before the start installs its SIGTERM handler,
  // the signal ends the process outright, which is right for a node nobody supervises.
  stopWithDevSupervisor(devParent);
  const cfg = loadConfigFile(file);
  if (cfg.config.engine === 'etcd' || cfg.config.engine === 'zookeeper') {
    // Loaded only here: a Raft or bully node never loads the etcd/ZooKeeper clients.
    const { startExternalNode } = await import('./engines/start.ts');
    await startExternalNode(cfg, { handleSignals: true });
  } else {
    await startNode(cfg, { handleSignals: true });
  }
}

/** `quorumd witness --config FILE`: the witness member of a two-board cluster (see StartOptions.witness). */
export async function runWitness(file: string): Promise<void> {
  const devParent = devSupervisor();
  if (devParent === 'gone') return devSupervisorGone();
  stopWithDevSupervisor(devParent); // from now on: see runStart
  const cfg = loadConfigFile(file);
  await startNode(cfg, { handleSignals: true, witness: true });
}

/**
 * The pid of the `quorumd dev` process that started this one (QUORUMD_DEV_PARENT, when it
 * is our parent), read first thing: a supervisor that dies while the node starts must
 * still be noticed. 'gone': that process no longer exists (it died before this one got
 * here: the node does not start). A `quorumd start` whose parent is another, living
 * process (one that merely inherited the variable, from a hook for instance) has none.
 */
function devSupervisor(): number | 'gone' | undefined {
  const v = process.env.QUORUMD_DEV_PARENT;
  if (v === undefined || !/^[1-9]\d*$/.test(v)) return undefined;
  const pid = Number(v);
  if (process.ppid === pid) return pid;
  try {
    process.kill(pid, 0);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH' ? 'gone' : undefined;
  }
}

/** Said when the supervisor died before this node started (a `quorumd dev` node's stderr then goes nowhere; anyone else's shell sees why nothing started). */
function devSupervisorGone(): void {
  process.stderr.write(`quorumd: not starting: QUORUMD_DEV_PARENT names the quorumd dev process (pid ${process.env.QUORUMD_DEV_PARENT}) that started this node, and it is gone\n`);
}

/**
 * A node that `quorumd dev` started stops, as on SIGTERM, once that supervisor is gone:
 * a process whose parent died is handed to init (or a subreaper), so its parent pid
 * changes. Without this, a supervisor killed with SIGKILL (the OOM killer, `kill -9`, a
 * terminal closed hard) left its nodes running for good without the broker and relays it
 * held, on their ports. Looked at twice a second (getppid).
 */
function stopWithDevSupervisor(parent: number | 'gone' | undefined): void {
  if (parent === undefined || parent === 'gone') return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, 500);
  timer.unref();
}

/** The pbft section without its key paths: the engine's options only (src/pbft/options.ts). */
function pbftEngineOptions(p: Config['pbft']): Omit<Config['pbft'], 'privateKey' | 'publicKeys'> {
  const { privateKey: _k, publicKeys: _p, ...engine } = p;
  return engine;
}
