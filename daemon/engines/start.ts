/**
 * `quorumd start` for `engine: etcd` and `engine: zookeeper`, and `startExternalNode()`
 * as a library call: the engine (daemon/engines/etcd.ts or zookeeper.ts) → the
 * ExternalBackend → the same HTTP API, hooks and scheduled jobs as a Raft node; JSON
 * log lines on stdout (daemon/log.ts). No links, no local log: the service holds the state.
 *
 * Shutdown (SIGTERM/SIGINT, or `stop()`): scheduled jobs stop, the HTTP server stops
 * taking requests, answers those it has (bounded) and closes, then the engine switches itself off (inactive hook) and only then gives up
 * its election key (etcd: revokes the lease; ZooKeeper: closes the session), so the
 * next node leads at once instead of after the TTL, and after this one stopped.
 *
 * With a `fencing:` section the same fence devices as under Raft are built
 * (daemon/fencing/build.ts) and handed to the engine's ExternalFencing (fencing.ts):
 * a new leader fences the earlier leaders that did not resign cleanly before it acts.
 *
 * Kept beside daemon/start.ts rather than inside it while the node runtimes are being
 * merged into one: the merge can fold this into startNode() (the only difference is
 * which engine and backend are built).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { exitOnUncaught } from '../runtime/process-guard.ts';
import { loadConfigFile, type ResolvedConfig } from '../config/load.ts';
import { etcdKeepAliveMs, zkProbeMs } from '../config/plain.ts';
import { HookRunner } from '../hooks.ts';
import { JobScheduler } from '../jobs/scheduler.ts';
import { startApiServer, type ApiServer } from '../http/server.ts';
import { createNodeLog, runtimeLogger, type NodeLog } from '../log.ts';
import { buildFencing, DEFAULT_WATCHDOG_TIMEOUT_MS, type BuiltFencing } from '../fencing/build.ts';
import { systemClock } from '../../hal/clock.ts';
import { Rng } from '../../src/rng.ts';
import { ExternalFencing } from './fencing.ts';
import { DRAIN_MAX_MS, lockDataDir, type StartOptions } from '../start.ts';
import { ensureTokenFile } from '../config/secrets.ts';
import type { ApiCredential } from '../http/auth.ts';
import { ExternalBackend } from './backend.ts';
import { EtcdEngine, type EngineLog } from './etcd.ts';
import type { ExternalEngine } from './types.ts';
import { startServices, type RunningServices, type ServicesApi } from '../services/index.ts';
import { ZkEngine } from './zookeeper.ts';
import { FloorFile } from './floor-file.ts';

export interface RunningExternalNode {
  config: ResolvedConfig;
  /** The file holding the operator API token (undefined when http.token is inline). */
  apiTokenFile: string | undefined;
  engine: ExternalEngine;
  backend: ExternalBackend;
  http: ApiServer;
  url: string;
  hooks: HookRunner;
  jobs: JobScheduler;
  /** Service discovery on the service's KV. */
  services: ServicesApi;
  log: NodeLog;
  stop(): Promise<void>;
}

function readPem(file: string | undefined, what: string): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * The engine a config asks for (engine: etcd | zookeeper), with the service-went-back
 * floor kept in the data directory (floor-file.ts; a damaged file throws, naming it).
 */
export function buildEngine(cfg: ResolvedConfig, log: EngineLog, fencing?: ExternalFencing): ExternalEngine {
  const c = cfg.config;
  const self = { id: cfg.self.id, name: cfg.self.name };
  const requestTimeoutMs = c.http.requestTimeoutMs;
  const floorStore = (engine: 'etcd' | 'zookeeper', service: string[]) => ({ floor: new FloorFile({ dataDir: cfg.dataDir, engine, owner: { cluster: c.cluster.name, node: cfg.self.name }, service: service.join(','), log }) });
  if (c.engine === 'etcd' && c.etcd) {
    const e = c.etcd;
    const tls = e.tls ? { ca: readPem(e.tls.caFile, 'etcd.tls.caFile'), cert: readPem(e.tls.certFile, 'etcd.tls.certFile'), key: readPem(e.tls.keyFile, 'etcd.tls.keyFile') } : undefined;
    return new EtcdEngine({
      endpoints: e.endpoints,
      prefix: e.prefix ?? `/quorumd/${c.cluster.name}/`,
      self,
      ttlSec: e.ttlSec,
      keepAliveMs: etcdKeepAliveMs(e),
      driftRate: e.driftRate,
      marginMs: e.marginMs,
      requestTimeoutMs,
      ...(tls ? { tls: { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) } } : {}),
      ...(e.username !== undefined ? { auth: { username: e.username, password: cfg.servicePassword ?? '' } } : {}),
      ...(fencing ? { fencing } : {}),
      ...floorStore('etcd', e.endpoints),
      log,
    });
  }
  if (c.engine === 'zookeeper' && c.zookeeper) {
    const z = c.zookeeper;
    return new ZkEngine({
      servers: z.servers,
      chroot: z.chroot ?? `/quorumd/${c.cluster.name}`,
      self,
      sessionTimeoutMs: z.sessionTimeoutMs,
      probeMs: zkProbeMs(z),
      serverLagMs: z.serverLagMs,
      driftRate: z.driftRate,
      marginMs: z.marginMs,
      requestTimeoutMs,
      ...(z.username !== undefined ? { auth: { username: z.username, password: cfg.servicePassword ?? '' } } : {}),
      ...(fencing ? { fencing } : {}),
      ...floorStore('zookeeper', z.servers),
      log,
    });
  }
  throw new Error(`${cfg.file}: engine ${c.engine} is not an external engine`);
}

export async function startExternalNode(cfgOrFile: ResolvedConfig | string, opts: StartOptions = {}): Promise<RunningExternalNode> {
  const cfg = typeof cfgOrFile === 'string' ? loadConfigFile(cfgOrFile) : cfgOrFile;
  const c = cfg.config;
  const log = opts.pino ?? createNodeLog(c.log.level, { node: cfg.self.name, cluster: c.cluster.name });
  if (opts.witness) throw new Error(`${cfg.file}: engine ${c.engine} has no witnesses (${c.engine} is the quorum)`);
  const unlock = lockDataDir(cfg.dataDir);
  // The operator credential, as startNode makes it: configured, or <dataDir>/api.token made at the first start.
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
  const apiAuthEnv: Record<string, string> = cfg.http.tokenFile !== undefined ? { QUORUMD_API_TOKEN_FILE: cfg.http.tokenFile } : { QUORUMD_API_TOKEN: apiToken };
  const elog: EngineLog = {
    debug: (f, m) => log.debug(f, m),
    info: (f, m) => log.info(f, m),
    warn: (f, m) => log.warn(f, m),
    error: (f, m) => log.error(f, m),
  };
  let engine: ExternalEngine;
  let built: BuiltFencing | undefined;
  let fencing: ExternalFencing | undefined;
  // ExternalFencing counts finished fences on the backend, made after the engine.
  let onFenced: ((r: Parameters<ExternalBackend['fenced']>[0]) => void) | undefined;
  try {
    if (c.fencing) {
      built = buildFencing(c.fencing, { members: c.members, selfId: cfg.self.id, log: { warn: (f, m) => log.warn(f, m), error: (f, m) => log.error(f, m) } });
      fencing = new ExternalFencing({
        self: cfg.self.id,
        members: new Set(c.members.map((m) => m.id)),
        devices: { relays: built.options.relays ?? [], powerSense: built.options.powerSense ?? [], fencer: built.options.fencer! },
        watchdogTimeoutMs: built.watchdog?.timeoutMs ?? c.fencing.watchdogTimeoutMs ?? DEFAULT_WATCHDOG_TIMEOUT_MS,
        ...(built.watchdog ? { watchdog: built.watchdog } : {}),
        marginMs: (c.engine === 'etcd' ? c.etcd?.marginMs : c.zookeeper?.marginMs) ?? 500,
        clock: systemClock(),
        rng: new Rng(randomBytes(4).readUInt32LE(0)),
        log: runtimeLogger(log),
        fenced: (r) => onFenced?.(r),
      });
    }
    engine = buildEngine(cfg, elog, fencing);
  } catch (err) {
    if (fencing) fencing.stop();
    else built?.watchdog?.disarm();
    built?.close();
    unlock();
    throw new Error(`${cfg.file}: ${(err as Error).message}`);
  }
  const backend = new ExternalBackend(engine, cfg.self, c.members, c.cluster.name);
  if (built && fencing) {
    backend.setFencing(built.devices, fencing);
    onFenced = (r) => backend.fenced(r);
  }
  const closeFencing = () => {
    fencing?.stop();
    built?.close();
  };
  const hooks = new HookRunner({
    onActive: c.hooks.onActive,
    onInactive: c.hooks.onInactive,
    timeoutMs: c.hooks.timeoutMs,
    node: cfg.self.name,
    cluster: c.cluster.name,
    log: { info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m), error: (f, m) => log.error(f, m) },
  });
  backend.onLeadership = (ev) => {
    log.info({ event: ev.event, term: ev.term, token: ev.token }, ev.event === 'active' ? 'became active leader' : 'no longer leader');
    hooks.fire(ev);
  };
  let services: RunningServices;
  try {
    services = await startServices(backend, { self: cfg.self.name, cluster: c.cluster.name, config: c.services, log: { debug: (f, m) => log.debug(f, m), info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m) }, env: { QUORUMD_NODE: cfg.self.name, QUORUMD_CLUSTER: c.cluster.name } });
  } catch (err) {
    backend.detach();
    closeFencing();
    unlock();
    throw new Error(`${cfg.file}: ${(err as Error).message}`);
  }
  let http: ApiServer;
  try {
    http = await startApiServer(backend, {
      services: services.http,
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
      onError: (err, where) => log.error({ where, error: (err as Error)?.stack ?? String(err) }, 'HTTP handler error'),
    });
  } catch (err) {
    await services.stop();
    backend.detach();
    closeFencing();
    unlock();
    throw new Error(`HTTP API on ${cfg.http.host}:${opts.httpPort ?? cfg.http.port}: ${(err as Error).message}`);
  }
  const a = http.address();
  const url = `${cfg.http.tls ? 'https' : 'http'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  hooks.apiUrl = url;
  hooks.apiAuthEnv = apiAuthEnv;
  engine.start();
  const jobs = new JobScheduler({
    jobs: c.jobs,
    host: backend,
    node: cfg.self.name,
    cluster: c.cluster.name,
    apiUrl: url,
    apiAuthEnv,
    log: { debug: (f, m) => log.debug(f, m), info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m), error: (f, m) => log.error(f, m) },
  });
  backend.jobsView = () => jobs.view();
  jobs.start();
  log.info({ id: cfg.self.id, http: url, dataDir: cfg.dataDir, engine: c.engine, endpoints: engine.status().endpoints, ...(built ? { fencing: built.devices.map((d) => `${d.name}=${d.detail}`).join('; ') || 'no fence devices (watchdog bound only)', stonith: c.fencing!.stonith } : {}) }, 'node started');

  let stopping: Promise<void> | undefined;
  const node: RunningExternalNode = {
    config: cfg,
    apiTokenFile: cfg.http.tokenFile,
    engine,
    backend,
    http,
    url,
    hooks,
    jobs,
    services: services.api,
    log,
    stop: () => (stopping ??= (async () => {
      await jobs.stop();
      await services.stop();
      // New requests refused; those received get their answers while the engine still runs.
      const why = `node ${cfg.self.name} is stopping`;
      http.drain(why);
      if (!(await http.allAnswered(DRAIN_MAX_MS))) log.warn({ waitedMs: DRAIN_MAX_MS }, 'stopping with API requests still unanswered: they are answered as the node stops (a write: outcome unknown)');
      await http.close(why);
      // The engine emits 'inactive' (hooks fire) before it gives up its key.
      await engine.stop();
      closeFencing();
      backend.detach();
      await Promise.race([hooks.stop(), new Promise((r) => setTimeout(r, c.hooks.timeoutMs + 3000))]);
      unlock();
      log.info('node stopped');
    })()),
  };
  if (opts.handleSignals) {
    // An exception no handler caught (e.g. from a client library's socket handler): stop, exit 70 for the supervisor.
    exitOnUncaught(log, () => node.stop());
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
