/**
 * `quorumd dev`: the embedded default (docs/cli.md). An in-process aedes broker and N
 * nodes, each a separate child process running `quorumd start` with a generated
 * config (so that you can kill one and watch the failover), HTTP API of node nK on
 * 127.0.0.1:<base-port + K>. Prints where everything is and a short guide.
 *
 * Simulated relays (STONITH, docs/fencing.md): this process holds the "power rail" of every
 * node process. A rail server on 127.0.0.1 (daemon/fencing/dev-relay.ts) lets the
 * nodes switch each other's rails through a `dev-relay` fence device in their
 * generated configs. Rail off = SIGKILL of the node's process and of every process it
 * started (jobs, hooks: fencing/dev-power.ts), which stay down; rail
 * on = the process is started again. So when the leader's process dies, the new
 * leader fences it through its rail (visible in `quorumd status`, `/v1/status` fences
 * and the log) before it becomes active, and powers it back on `powerOnAfterMs` later
 * (the fence's `reboot` action): the node boots and rejoins as a follower. The same
 * with `--engine bully`: the new coordinator fences the SIGKILLed one before it is
 * active; the returning board, the highest priority, coordinates again and the one it
 * preempts acknowledges its step-down (no second fence).
 *
 * Supervisor (issue 12): a node process that crashes — exits on its own with a
 * non-zero status (70: a fatal error, its stack at the end of its log) or dies of a
 * crash signal (SIGABRT, SIGSEGV, ...) — is restarted, with a growing delay (0.5, 1, 2,
 * 4, 8 s) and at most CRASH_RESTARTS times per minute; each crash and restart is printed
 * with where the log is. A process you kill (kill -9, SIGTERM) is not a crash: the
 * failover demo's fence brings it back.
 *
 * Ctrl-C / SIGTERM / SIGHUP: every node gets SIGTERM (the leader hands over first), then
 * a power cut after 5 s if still there; whatever the nodes started and left running (a
 * job run of a node killed earlier) is SIGKILLed; the broker stops; a temp data directory is
 * removed — unless a node crashed during the run: then it is kept, with its logs, and
 * its path is printed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningBroker } from '../hal/mqtt/broker.ts';
import { listenEarly, type EarlyListener } from '../hal/mqtt/early-listen.ts';
import type { JobConfig } from './config/jobs.ts';
import { call } from './client/http.ts';
import { startRailServer, type RailServer } from './fencing/dev-relay.ts';
import { cutPower, DEV_BOARD_ENV } from './fencing/dev-power.ts';
import { ensureTokenFile } from './config/secrets.ts';
import { UsageError } from './exit-codes.ts';
import { cliCommand, linkHint } from './cli-path.ts';
import { startMark } from './start-trace.ts';

startMark('dev: module loaded');

export interface DevOptions {
  /** Voters (data nodes that may lead), n1..nN. */
  nodes: number;
  /**
   * Add a witness member n<N+1> (engines raft, paxos, zab): votes, never leads, keeps no
   * data; run by `quorumd witness`. Default false.
   */
  witness?: boolean;
  /**
   * Observers after the voters (and the witness): engine zab only, ZooKeeper's
   * non-voting members — they apply every committed write and serve reads, never vote,
   * never lead. Default 0. Voters + witness + observers ≤ 7.
   */
  observers?: number;
  engine: string;
  basePort: number;
  /** Broker port; 0 = any free one. Default 0. */
  brokerPort?: number;
  /**
   * How the nodes talk: `mqtt` (default) through the in-process broker, which also
   * relays each node's Last Will (fast failover); `tcp`: directly (hal/tcp/link.ts), node
   * nK listening on 127.0.0.1:<base-port + 10 + K> — no broker hop on a write — with the
   * broker beside it for presence and wills only (`mqtt.frames: fallback`), so that a
   * killed leader is still replaced on its will (docs/mqtt.md).
   */
  link?: string;
  /** Keep data here instead of a fresh temp directory (kept at exit). */
  dataDir?: string;
  /** Where to print the guide. Default stdout. */
  out?: (s: string) => void;
  /** Handle SIGINT/SIGTERM (CLI). Default true. */
  handleSignals?: boolean;
  /** How long to wait for a leader before printing (ms). Default 30000. */
  readyTimeoutMs?: number;
  /** How long every node must name the same leader in the same term before the guide is printed (ms). Default 1500. */
  stableMs?: number;
  /**
   * The start-up progress line: called with the line while waiting for a stable leader,
   * then once with ('', true). Default: stderr, redrawn in place on a terminal, one line
   * per change otherwise.
   */
  progress?: (line: string, final: boolean) => void;
  /**
   * Simulated relays: how long a fenced node stays powered off before its rail is
   * switched on again, ms. Default 5000: long enough to watch it in `quorumd status`,
   * short enough to see it rejoin.
   */
  powerOnAfterMs?: number;
  /**
   * Simulated relays on. Default true for every engine: bully has no lease, so without a
   * relay a new coordinator could only act on an acknowledgement or an operator's
   * `quorumd fence confirm` (and a crashed coordinator never acknowledges); raft, paxos,
   * zab, etcd fence the previous leader instead of waiting out the lease bound. false:
   * no `fencing:` section at all (raft, paxos, zab: active once the leadership's first
   * entry commits; bully: active = coordinator, tokens are the only defense).
   */
  relays?: boolean;
  /**
   * Scheduled jobs for every node's config (engines raft, paxos, zab). Default: one demo job,
   * `heartbeat`, every 10 s, that prints its slot, node and fencing token to the
   * running node's log (`quorumd jobs` shows it). [] = none.
   */
  jobs?: JobConfig[];
  /**
   * Testing only, engine pbft: node n<K> runs as a lying replica with the behaviours of
   * `byzantineMode` (src/pbft/byzantine.ts, default 'wrong-reply'). Logged loudly by that
   * node and printed in the guide; `quorumd start` refuses it outside dev.
   */
  byzantineNode?: number;
  byzantineMode?: string;
}

/** The demo job of `quorumd dev` (see DevOptions.jobs). */
export const DEV_DEMO_JOB: JobConfig = {
  name: 'heartbeat',
  cron: '*/10 * * * * *',
  command: 'echo "job $QUORUMD_JOB slot $QUORUMD_SLOT ran on $QUORUMD_NODE (term $QUORUMD_TERM, fencing token $QUORUMD_TOKEN)"',
  timeoutMs: 5000,
  timezone: 'UTC',
  overlap: 'skip',
};

export interface DevNode {
  name: string;
  id: number;
  /** voter (may lead), witness (`quorumd witness`: votes, keeps no data) or observer (zab). */
  role: 'voter' | 'witness' | 'observer';
  url: string;
  configFile: string;
  logFile: string;
  child: ChildProcess | undefined;
  /** The simulated power rail: false = switched off by a fence (the process is kept down). */
  powered: boolean;
  /** When this node's process crashed (performance.now() ms), newest last: the restart budget. */
  crashTimes: number[];
  /** A restart waiting for its backoff. */
  restartTimer: ReturnType<typeof setTimeout> | undefined;
}

/** Most restarts of one crashing node within CRASH_WINDOW_MS; beyond it the node stays down (printed). */
export const CRASH_RESTARTS = 5;
export const CRASH_WINDOW_MS = 60_000;
/** Signals that mean the process crashed (not that someone stopped or killed it). */
const CRASH_SIGNALS = new Set(['SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP', 'SIGSYS']);

export interface DevCluster {
  broker: RunningBroker;
  brokerUrl: string;
  dir: string;
  nodes: DevNode[];
  /** The rail server the nodes' dev-relay devices talk to (undefined without relays). */
  rails: RailServer | undefined;
  /** The dev cluster's API token file (operator scope): `quorumd --data-dir <dir>` / QUORUMD_DATA_DIR finds it. */
  tokenFile: string;
  /** Rail switches so far, oldest first: what the fences did. */
  railLog: Array<{ node: string; on: boolean; atMs: number }>;
  /** Node processes that crashed so far (the supervisor's record), oldest first. */
  /** Crashes, and starts that failed (`startError`: the process could not be created at all, e.g. EMFILE, EAGAIN, ENOMEM). */
  crashes: Array<{ node: string; pid: number | undefined; code: number | null; signal: string | null; startError?: string; atMs: number; logFile: string; restartInMs: number | null }>;
  /** Starts node `name` again (after you killed it), if its rail is on. */
  restart(name: string): void;
  stop(): Promise<void>;
}

const bin = join(import.meta.dirname, '..', 'bin', 'quorumd.js');
/**
 * V8 flags for each node process (the shell lines at the top of bin/quorumd.js give the
 * same to `quorumd start`, `witness` and `broker` typed in a shell, and the systemd unit
 * to a board's node; test/daemon/bin-shell.test.ts checks all three agree): 4 MiB young-generation semi-spaces, a quarter of
 * V8's default of 16: a node's live data is small and short-lived. 1 MiB saves ~7 MiB
 * more at the peak under load and nothing once a node has idled for half a minute (V8
 * shrinks the young generation again), and a busy leader then spends a quarter of its
 * time in scavenges: 16-26 % fewer writes/s under 64 writers (docs/install-pi.md
 * "Memory"). And the old generation may grow only 20 % beyond what survived the last full collection
 * (V8 picks a factor of up to 4 when the mutator allocates fast): under 64 writers the
 * leader's heap otherwise swells with garbage from ~30 to ~80 MiB (RSS peak ~130 MiB;
 * ~88 with the flag, and no more CPU per write, issue 14). A growth factor, not a
 * limit: a large KV still fits (--max-old-space-size would be a hard cap, an
 * out-of-memory exit).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=20'];
/**
 * glibc's malloc settings for each node process (GLIBC_TUNABLES; the systemd unit sets
 * the same, docs/install-pi.md "Memory"), unless the environment already has its own.
 * arena_max=2: glibc gives every thread that allocates its own arena (up to 8 per core),
 * and a node has about ten threads (V8's platform workers, libuv's pool); memory one
 * thread freed stayed in that thread's arena, resident and of no use to the others. mmap_threshold=131072: blocks of 128 KiB and more come from
 * mmap and go back to the kernel when freed (a fixed threshold also keeps glibc from
 * raising it, and with it the trim threshold, after the first large block). Measured
 * on `quorumd dev` (issue 14, 4 interleaved rounds × 3 nodes): idle RSS per node 64.5 → 62.8 MiB.
 */
export const NODE_MALLOC_TUNABLES = 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072';

/**
 * QUORUMD_DEV_NODE_FLAGS: more flags for the node processes `quorumd dev` spawns, after
 * NODE_FLAGS (for V8 the later of two settings wins), separated by spaces, each `--name`
 * or `--name=value`. It is there to measure what a V8 flag costs or saves on a real
 * cluster (bench/idle-cpu.ts --node-flags; bench/vs-etcd.ts and bench/cold-start.ts
 * pass their environment on): NODE_OPTIONS refuses most V8 flags (--interrupt-budget,
 * --single-threaded-gc, --max-lazy, ...). Anything else is a UsageError naming the variable.
 */
export function devNodeFlags(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const flags = raw.trim().split(/\s+/);
  const bad = flags.find((f) => !/^--[A-Za-z0-9][A-Za-z0-9_-]*(=\S+)?$/.test(f));
  if (bad !== undefined) throw new UsageError(`QUORUMD_DEV_NODE_FLAGS: expected flags for node separated by spaces, each --name or --name=value (e.g. "--single-threaded-gc --interrupt-budget=16384"), got "${bad}"`);
  return flags;
}

/** The default progress line: redrawn in place on a terminal; elsewhere one line per change (the seconds left out). */
function stderrProgress(): (line: string, final: boolean) => void {
  const tty = process.stderr.isTTY === true;
  let last = '';
  return (line, final) => {
    if (tty) {
      process.stderr.write(final ? '\r\x1b[K' : `\r\x1b[K${line}`);
      return;
    }
    const gist = line.replace(/\s+\([\d.]+ s\)$/, '').replace(/stable for [\d.]+ s/, 'stable');
    if (!final && gist !== last) process.stderr.write(`${line}\n`);
    last = gist;
  };
}

/** A free TCP port on 127.0.0.1 (bound and released), for the local etcd of --engine etcd. */
function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * The generated `fencing:` section of node k: a dev-relay per other node, short delays.
 * Engine bully gets no lease, watchdog or priority delay (they have no meaning there:
 * daemon/config/fencing.ts checkBullyFencing): its coordinator is active once every
 * earlier coordinator it knows of is fenced or acknowledged its step-down.
 */
function devFencing(k: number, n: number, railUrl: string, powerOnAfterMs: number, engine = 'raft', tokenFile?: string): string {
  const targets = Array.from({ length: n }, (_, i) => i + 1).filter((j) => j !== k);
  if (targets.length === 0) return '';
  const bully = engine === 'bully';
  if (engine === 'pbft') {
    const list = targets.map((j) => `    - { node: n${j}, action: reboot, powerOnAfterMs: ${powerOnAfterMs}, levels: [[{ type: dev-relay, url: "${railUrl}"${tokenFile !== undefined ? `, tokenFile: ${JSON.stringify(tokenFile)}` : ''} }]] }`).join('\n');
    return `fencing:
  # Simulated relays (quorumd dev only): each target's power rail is held by the dev
  # supervisor at ${railUrl}. docs/fencing.md has the real devices (gpio-relay, serial-relay).
  # pbft: no leader, lease or watchdog. Every board votes (a signed request through the
  # log) to fence a member it has not heard from for 4 s; the boards wired to it switch
  # its relay when the f + 1st vote executes.
  randomDelayMaxMs: 300
  settleMs: 200
  opTimeoutMs: 2000
  targets:
${list}
`;
  }
  if (engine === 'etcd') {
    const list = targets.map((j) => `    - { node: n${j}, action: reboot, powerOnAfterMs: ${powerOnAfterMs}, levels: [[{ type: dev-relay, url: "${railUrl}"${tokenFile !== undefined ? `, tokenFile: ${JSON.stringify(tokenFile)}` : ''} }]] }`).join('\n');
    return `fencing:
  # Simulated relays (quorumd dev only): each target's power rail is held by the dev
  # supervisor at ${railUrl}. docs/fencing.md has the real devices (gpio-relay, serial-relay).
  # etcd: the lease window keeps a running leader from acting late; a new leader also
  # fences a predecessor that did not resign cleanly (it may hang) before it acts.
  # No random or priority delay here: etcd elects one leader at a time.
  watchdogTimeoutMs: 15000   # without a fence (no device, or it failed) a new leader waits this long
  settleMs: 200
  opTimeoutMs: 2000
  targets:
${list}
`;
  }
  // Bully: delayMs 500 gives a preempted coordinator time to acknowledge its step-down
  // (one Election) before a returning higher board switches its relay; a crashed one
  // is fenced 0.5 s later than it could be.
  const list = targets.map((j) => `    - { node: n${j}, action: reboot, powerOnAfterMs: ${powerOnAfterMs},${bully ? ' delayMs: 500,' : ''} levels: [[{ type: dev-relay, url: "${railUrl}"${tokenFile !== undefined ? `, tokenFile: ${JSON.stringify(tokenFile)}` : ''} }]] }`).join('\n');
  if (bully) {
    return `fencing:
  # Simulated relays (quorumd dev only): each target's power rail is held by the dev
  # supervisor at ${railUrl}. docs/fencing.md has the real devices (gpio-relay, serial-relay).
  # Bully: no lease and no watchdog; a new coordinator acts only once every earlier
  # coordinator it heard of is fenced (relay off, verified) or acknowledged its step-down.
  # delayMs 500 per target: a preempted coordinator acknowledges well within it.
  randomDelayMaxMs: 300
  settleMs: 200
  opTimeoutMs: 2000
  targets:
${list}
`;
  }
  return `fencing:
  # Simulated relays (quorumd dev only): each target's power rail is held by the dev
  # supervisor at ${railUrl}. docs/fencing.md has the real devices (gpio-relay, serial-relay).
  watchdogTimeoutMs: 15000   # no hardware watchdog here; a failover without a fence would wait ~15 s
  randomDelayMaxMs: 300
  priorityDelayMs: 1000      # the old active leader is fenced 1 s later than a follower would be
  settleMs: 200
  opTimeoutMs: 2000
  targets:
${list}
`;
}

/** The `jobs:` section of a generated config ('' for none). */
function devJobs(jobs: JobConfig[] | undefined): string {
  if (!jobs || jobs.length === 0) return '';
  // One flow mapping per job in JSON's syntax, which YAML reads as it is: the supervisor
  // need not load a YAML library for this (start-up time of `quorumd dev`).
  const fields = (j: JobConfig) => Object.entries(j).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ');
  return `# Leader-only scheduled jobs: only the active leader runs a slot, each slot at most once (docs/jobs.md).\njobs:\n${jobs.map((j) => `  - { ${fields(j)} }\n`).join('')}`;
}

/**
 * Node k's generated config. Secrets are files (mode 0600) beside the configs: the
 * cluster key (`keyFile`, or `key` inline when only a key is given: then the config
 * itself must be written 0600) and the dev cluster's one API token (`tokenFile`).
 */
export function devConfig(o: { k: number; n: number; key?: string; keyFile?: string; tokenFile?: string; brokerUrl: string; basePort: number; dir: string; engine?: string; railUrl?: string; powerOnAfterMs?: number; jobs?: JobConfig[]; etcdUrl?: string; link?: string; witness?: boolean; observers?: number }): string {
  // Voters n1..nN, then the witness, then the observers (devRoles).
  const roles = devRoles(o.n, o.witness === true, o.observers ?? 0);
  const members = roles.map((r, i) => `  - { id: ${i + 1}, name: n${i + 1}${r === 'voter' ? '' : `, role: ${r}`} }`).join('\n');
  const self = roles[o.k - 1] ?? 'voter';
  return `# Generated by \`quorumd dev\` for node n${o.k}. docs/config.md explains every key.
cluster:
  name: dev
  id: 1
${o.keyFile !== undefined ? `  keyFile: ${JSON.stringify(o.keyFile)}` : `  key: ${o.key}`}
members:
${members}
${o.engine === 'bully' ? 'engine: bully   # priorities: list position, the last member is the preferred coordinator\n' : ''}${o.engine === 'paxos' || o.engine === 'zab' ? `engine: ${o.engine}   # KV, locks, jobs, fencing and witnesses as under raft${o.engine === 'zab' ? '; observers' : ''} (docs/engines.md)\n` : ''}${o.engine === 'pbft' ? 'engine: pbft   # Byzantine fault tolerant: n = 3f + 1; KV, locks on an agreed time, and STONITH on f + 1 committed votes (docs/engines.md)\n# pbft signing keys: derived from the cluster key here (dev only); real boards set pbft.privateKey and pbft.publicKeys (docs/engines.md "Keys")\n' : ''}node:
  name: n${o.k}
  dataDir: ${JSON.stringify(join(o.dir, `n${o.k}`))}
${o.engine === 'etcd' ? `engine: etcd   # elected through the local etcd below (docs/external.md); no links
etcd:
  endpoints: [${o.etcdUrl}]
  ttlSec: 2          # failover after a crash within ~2 s (default 5)
  keepAliveMs: 300
  marginMs: 200
` : o.link === 'tcp' ? `tcp:   # direct links, no broker hop on a write (quorumd dev --link tcp)
  peers:
${roles.map((_, i) => `    - { id: ${i + 1}, address: 127.0.0.1:${devTcpPort(o.basePort, i + 1)} }`).join('\n')}
mqtt:   # the embedded broker beside tcp: presence and Last Wills (fast failover), frames only while a TCP connection is down
  brokers: [${o.brokerUrl}]
  keepaliveSec: 5
  frames: fallback
` : `mqtt:
  brokers: [${o.brokerUrl}]
  keepaliveSec: 5
`}http:
  listen: 127.0.0.1:${o.basePort + o.k}
${o.tokenFile !== undefined ? `  tokenFile: ${JSON.stringify(o.tokenFile)}   # the dev cluster's API token (operator scope), mode 0600\n` : ''}${o.engine === 'pbft' ? '' : `hooks:
  onActive: echo "n${o.k} is the active leader (term $QUORUMD_TERM, fencing token $QUORUMD_TOKEN)"
  onInactive: echo "n${o.k} is no longer leader"
`}log:
  level: info
${o.railUrl !== undefined && self === 'voter' ? devFencing(o.k, o.n, o.railUrl, o.powerOnAfterMs ?? 5000, o.engine, o.tokenFile) : ''}${o.engine === 'bully' || self === 'witness' ? '' : devJobs(o.jobs)}`;
}

/** The role of each dev member by id − 1: `nodes` voters, then the witness, then the observers. */
export function devRoles(nodes: number, witness: boolean, observers: number): Array<'voter' | 'witness' | 'observer'> {
  return [...Array.from({ length: nodes }, () => 'voter' as const), ...(witness ? ['witness' as const] : []), ...Array.from({ length: observers }, () => 'observer' as const)];
}

/** Node k's TCP link port under `quorumd dev --link tcp`. */
export function devTcpPort(basePort: number, k: number): number {
  return basePort + 10 + k;
}

export async function startDev(opts: DevOptions): Promise<DevCluster> {
  const out = opts.out ?? ((s: string) => void process.stdout.write(s));
  if (opts.engine !== 'raft' && opts.engine !== 'bully' && opts.engine !== 'paxos' && opts.engine !== 'zab' && opts.engine !== 'pbft' && opts.engine !== 'etcd') throw new UsageError(`--engine: expected raft, bully, paxos, zab, pbft or etcd, got "${String(opts.engine)}"`);
  const bully = opts.engine === 'bully';
  // pbft: KV and STONITH on f + 1 committed votes (daemon/config/schema.ts refuses jobs and hooks for it); at least 4 nodes.
  const pbft = opts.engine === 'pbft';
  if (pbft && opts.nodes < 4) throw new UsageError(`--nodes: engine pbft needs at least 4 nodes (n = 3f + 1 tolerates f liars), got ${opts.nodes}`);
  let byzantineMode: string | undefined;
  if (opts.byzantineNode !== undefined || opts.byzantineMode !== undefined) {
    if (!pbft) throw new UsageError(`--byzantine-node: a lying node is for engine pbft only (the other engines trust every member); got --engine ${opts.engine}`);
    const k = opts.byzantineNode;
    if (k === undefined || !Number.isInteger(k) || k < 1 || k > opts.nodes) throw new UsageError(`--byzantine-node: expected a node number 1..${opts.nodes}, got ${String(k)}`);
    byzantineMode = opts.byzantineMode ?? 'wrong-reply';
    const { parseByzKinds } = await import('../src/pbft/byzantine.ts');
    try {
      parseByzKinds(byzantineMode, '--byzantine-mode');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  // paxos, zab: the engine runtime (daemon/runtime/engine-node.ts), with relays and jobs as under raft.
  // engine etcd: a local single-member etcd (Debian's etcd-server) as the service.
  const etcdBin = opts.engine === 'etcd' ? ['/usr/bin/etcd', '/usr/local/bin/etcd'].find((f) => existsSync(f)) : undefined;
  if (opts.engine === 'etcd' && !etcdBin) throw new UsageError('--engine etcd: etcd is not installed (apt-get install etcd-server); quorumd dev starts a local one');
  const voterCount = opts.nodes;
  const withWitness = opts.witness ?? false;
  const observerCount = opts.observers ?? 0;
  if (typeof withWitness !== 'boolean') throw new UsageError(`--witness: expected a flag, got ${String(opts.witness)}`);
  if (withWitness && opts.engine !== 'raft' && opts.engine !== 'paxos' && opts.engine !== 'zab') throw new UsageError(`--witness: needs --engine raft, paxos or zab, got --engine ${opts.engine}`);
  if (withWitness && voterCount < 2) throw new UsageError('--witness: needs --nodes 2 or more (a witness never leads)');
  if (!Number.isInteger(observerCount) || observerCount < 0 || observerCount > 6) throw new UsageError(`--observers: expected an integer 0..6, got ${String(opts.observers)}`);
  if (observerCount > 0 && opts.engine !== 'zab') throw new UsageError(`--observers: ZooKeeper's observers need --engine zab, got --engine ${opts.engine}`);
  const roles = devRoles(voterCount, withWitness, observerCount);
  if (roles.length > 7) throw new UsageError(`--nodes ${voterCount}${withWitness ? ' + --witness' : ''} + --observers ${observerCount}: at most 7 members in all`);
  // Every member gets a process and an HTTP port; `n` counts them all, voters are n1..n<voterCount>.
  const n = roles.length;
  // Every check before anything is started (a throw below would leave the temp dir, and what was started, behind).
  const powerOnAfterMs = opts.powerOnAfterMs ?? 5000;
  if (!Number.isInteger(powerOnAfterMs) || powerOnAfterMs < 0 || powerOnAfterMs > 86_400_000) throw new UsageError(`powerOnAfterMs: expected an integer 0..86400000 ms, got ${String(opts.powerOnAfterMs)}`);
  // pbft: relays too; a board is fenced only on a committed decision of f + 1 members (daemon/runtime/pbft-fencing.ts).
  const withRelays = opts.relays ?? true;
  if (pbft && opts.jobs !== undefined && opts.jobs.length > 0) throw new UsageError('--jobs: not implemented for engine pbft yet (a job slot is claimed by a trusted leader)');
  if (bully && opts.jobs !== undefined && opts.jobs.length > 0) throw new UsageError('--jobs: scheduled jobs need --engine raft (a slot is granted through the replicated log)');
  const devJobList = bully || pbft ? [] : (opts.jobs ?? [DEV_DEMO_JOB]);
  if (typeof withRelays !== 'boolean') throw new UsageError(`relays: expected true or false, got ${String(opts.relays)}`);
  const link = opts.link ?? 'mqtt';
  if (link !== 'mqtt' && link !== 'tcp') throw new UsageError(`--link: expected mqtt or tcp, got "${String(opts.link)}"`);
  if (link === 'tcp' && opts.engine === 'etcd') throw new UsageError('--link tcp: engine etcd has no links between the nodes (they talk only to etcd)');
  if (link === 'tcp' && devTcpPort(opts.basePort, n) > 65535) throw new UsageError(`--link tcp: node n${n} would listen on port ${devTcpPort(opts.basePort, n)} (--base-port + 10 + ${n}); expected a --base-port of at most ${65535 - 10 - n}`);
  for (let k = 1; k <= n; k++) {
    const p = opts.basePort + k;
    if (!(await portFree(p))) {
      throw new Error(`port ${p} (HTTP of n${k} = --base-port ${opts.basePort} + ${k}) is in use; stop what uses it or pick another --base-port`);
    }
    const t = devTcpPort(opts.basePort, k);
    if (link === 'tcp' && !(await portFree(t))) {
      throw new Error(`port ${t} (TCP link of n${k} = --base-port ${opts.basePort} + 10 + ${k}) is in use; stop what uses it or pick another --base-port`);
    }
  }
  const extraNodeFlags = devNodeFlags(process.env.QUORUMD_DEV_NODE_FLAGS);
  if (extraNodeFlags.length > 0) {
    // A flag this node binary does not know would make every node exit at once (and the
    // supervisor restart it again): refuse it here, with node's own message.
    const probe = spawnSync(process.execPath, [...NODE_FLAGS, ...extraNodeFlags, '-e', '0'], { encoding: 'utf8', timeout: 30_000 });
    if (probe.status !== 0) throw new UsageError(`QUORUMD_DEV_NODE_FLAGS: node does not start with "${extraNodeFlags.join(' ')}": ${(probe.stderr || probe.error?.message || `exit ${String(probe.status ?? probe.signal)}`).trim().split('\n')[0]}`);
  }
  const ownDir = opts.dataDir === undefined;
  const dir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'quorumd-dev-'));
  // The owner's alone whatever the umask, as mkdtemp makes it: it holds the token, the
  // key, and configs whose hooks the nodes run (other local users are not trusted).
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32).toString('hex');
  /** This cluster's part of every node's board mark (DEV_BOARD_ENV, daemon/fencing/dev-power.ts). */
  const boardCluster = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const boardOf = (node: DevNode) => `${boardCluster}/${node.name}/`;
  /** A power cut: the node process and every process it started (jobs, hooks, their children). */
  const cut = (node: DevNode): number => {
    const r = cutPower(node.child?.pid ?? undefined, boardOf(node));
    node.child?.kill('SIGKILL'); // already SIGKILLed by pid; this records it on the ChildProcess too
    return r.killed.filter((p) => p !== node.child?.pid).length;
  };
  const nodes: DevNode[] = [];
  const railLog: DevCluster['railLog'] = [];
  const crashes: DevCluster['crashes'] = [];
  let stopping = false;
  /** Set when the cluster never became ready: its logs are what the user needs next. */
  let keepDir = false;
  let etcd: ChildProcess | undefined;
  let rails: RailServer | undefined;
  let early: EarlyListener | undefined;
  /**
   * A start that failed after something was started: stop it all again (nodes, etcd,
   * the rails' server, the broker's port), remove a temp dir of ours unless its logs
   * are named in the error, and throw the error. Without this, a server still listening
   * kept the process up after the error was printed.
   */
  const failStart = async (e: unknown): Promise<never> => {
    stopping = true;
    for (const node of nodes) node.child?.kill('SIGKILL');
    etcd?.kill('SIGKILL');
    await rails?.close();
    early?.close();
    if (ownDir && !keepDir) rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    throw e;
  };
  // The broker's port now, the broker itself once the nodes are starting: they spend their
  // first few hundred milliseconds loading their own code, and starting the broker
  // meanwhile (~40 ms, most of it loading aedes) takes ~40 ms off the cold start (issue
  // 14, bench cold-start); a node that connects before it waits in the port's queue
  // (hal/mqtt/early-listen.ts).
  let etcdUrl: string | undefined;
  let brokerUrl: string;
  let keyFile: string;
  let tokenFile: string;
  let apiToken: string;
  const t0 = performance.now();
  try {
    early = await listenEarly('127.0.0.1', opts.brokerPort ?? 0);
    brokerUrl = `mqtt://127.0.0.1:${early.port}`;
    startMark('dev: broker port bound');
    if (etcdBin) {
      const [cp, pp] = [await freeLocalPort(), await freeLocalPort()];
      etcdUrl = `http://127.0.0.1:${cp}`;
      const elog = createWriteStream(join(dir, 'etcd.log'), { flags: 'a', mode: 0o600 });
      etcd = spawn(etcdBin, ['--name', 'dev', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl, '--listen-peer-urls', `http://127.0.0.1:${pp}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${pp}`, '--initial-cluster', `dev=http://127.0.0.1:${pp}`, '--heartbeat-interval', '50', '--election-timeout', '500', '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
      etcd.stdout!.pipe(elog);
      etcd.stderr!.pipe(elog);
      const deadline = performance.now() + 20_000;
      for (;;) {
        const ok = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(500) }).then((r) => r.ok, () => false);
        if (ok) break;
        if (performance.now() > deadline || etcd.exitCode !== null) {
          keepDir = true; // the error names etcd's log
          throw new Error(`--engine etcd: the local etcd did not come up within 20 s; see ${join(dir, 'etcd.log')}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Secrets as files only their owner may read (docs/security.md); one API token for the dev cluster.
    keyFile = join(dir, 'cluster.key');
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    tokenFile = join(dir, 'api.token');
    apiToken = ensureTokenFile(tokenFile, 'dev API token').token;
    // The supervisor's power rails: off = SIGKILL the process and keep it down; on = start it.
    rails = withRelays
      ? await startRailServer({
          token: apiToken,
          get: (name) => nodes.find((x) => x.name === name)?.powered,
          set: (name, on) => {
            const node = nodes.find((x) => x.name === name);
            if (!node) return undefined;
            if (node.powered !== on) {
              node.powered = on;
              railLog.push({ node: name, on, atMs: Math.round(performance.now() - t0) });
              // A node's scheduled power-on can still arrive while dev stops (its fencer has not
              // exited yet): the rail records it, but nothing is started, and the line says so.
              const onNote = stopping ? ' (fence action reboot; not started: dev is stopping)' : ' (fence action reboot: it boots again)';
              if (on) {
                out(`\n[dev] relay of ${name}: power ON${onNote}\n`);
                if (!stopping) powerOn(node);
              } else {
                // Power off stops everything on the board, as a real relay does: not only the
                // node process but the jobs and hooks it started (their own process groups).
                const pid = node.child?.pid;
                const others = cut(node);
                const also = others > 0 ? ` and ${others} process${others > 1 ? 'es' : ''} it started` : '';
                out(`\n[dev] relay of ${name}: power OFF${pid !== undefined ? ` (fenced: SIGKILL pid ${pid}${also}, kept down)` : ` (fenced; its process was already gone${others > 0 ? `; SIGKILL ${others} process${others > 1 ? 'es' : ''} it had started` : ''})`}\n`);
              }
            }
            return node.powered;
          },
        })
      : undefined;
    for (let k = 1; k <= n; k++) {
      const configFile = join(dir, `n${k}.yaml`);
      writeFileSync(configFile, devConfig({ k, n: voterCount, keyFile, tokenFile, brokerUrl, basePort: opts.basePort, dir, engine: opts.engine, jobs: devJobList, link, witness: withWitness, observers: observerCount, ...(etcdUrl ? { etcdUrl } : {}), ...(rails ? { railUrl: rails.url, powerOnAfterMs } : {}) }), { mode: 0o600 });
      nodes.push({ name: `n${k}`, id: k, role: roles[k - 1]!, url: `http://127.0.0.1:${opts.basePort + k}`, configFile, logFile: join(dir, `n${k}.log`), child: undefined, powered: true, crashTimes: [], restartTimer: undefined });
    }
  } catch (e) {
    return failStart(e);
  }

  /** Starts the node once its previous process (if dying) has exited: the data dir lock is per process. */
  function powerOn(node: DevNode): void {
    const c = node.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.once('exit', () => {
        if (!stopping && node.powered && !node.child) spawnNode(node);
      });
      return;
    }
    if (!node.child) spawnNode(node);
  }

  const spawnNode = (node: DevNode) => {
    const log = createWriteStream(node.logFile, { flags: 'a', mode: 0o600 });
    // QUORUMD_BUILD_CHECKED: when this process runs through the bin, the bin already made
    // sure that dist/ is fresh, and the nodes skip that check (bin/quorumd.js).
    const checked = (globalThis as { quorumdBuildChecked?: boolean }).quorumdBuildChecked === true;
    // This process's pid: a node stops once this process is gone (start.ts
    // stopWithDevSupervisor), and the lying node's behaviours are refused without it.
    // Testing only: the lying node gets its behaviours.
    const liar = byzantineMode !== undefined && node.id === opts.byzantineNode ? { QUORUMD_DEV_BYZANTINE: byzantineMode } : undefined;
    // DEV_BOARD_ENV: every process this node starts inherits it, so a power cut finds them all (dev-power.ts).
    const env = { ...process.env, ...(process.env.GLIBC_TUNABLES === undefined ? { GLIBC_TUNABLES: NODE_MALLOC_TUNABLES } : {}), ...(checked ? { QUORUMD_BUILD_CHECKED: '1' } : {}), QUORUMD_DEV_PARENT: String(process.pid), [DEV_BOARD_ENV]: `${boardOf(node)}${randomBytes(4).toString('hex')}`, ...liar };
    // Neither may end the supervisor with an unhandled error (its nodes would be left
    // running without it): a log that cannot be opened is said, and the node runs on
    // without it; a process that could not be created (out of file descriptors,
    // processes or memory: node's spawn throws for some causes and emits 'error' for
    // others, and no 'exit' follows either) is handled like a crash: said, and tried
    // again after the crash backoff.
    log.on('error', (err) => out(`[dev] ${node.name}'s log ${node.logFile}: ${err.message}\n`));
    const notStarted = (err: Error) => {
      log.destroy();
      if (!stopping && node.powered) supervise(node, undefined, null, null, err.message);
    };
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...NODE_FLAGS, ...extraNodeFlags, bin, node.role === 'witness' ? 'witness' : 'start', '--config', node.configFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
    } catch (err) {
      return notStarted(err as Error);
    }
    child.on('error', (err) => {
      if (child.pid !== undefined) return; // a started process: its 'exit' reports it
      if (node.child === child) node.child = undefined;
      notStarted(err);
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    node.child = child;
    child.on('exit', (code, signal) => {
      if (node.child === child) node.child = undefined;
      if (stopping) return;
      const crashed = node.powered && ((code !== null && code !== 0) || (signal !== null && CRASH_SIGNALS.has(signal)));
      if (crashed) return supervise(node, child.pid, code, signal);
      if (!node.powered) out(`[dev] ${node.name} (pid ${child.pid}) is down: its relay is off${rails ? ` until the fence powers it on (${powerOnAfterMs} ms)` : ''}\n`);
      else if (rails) out(`\n[dev] ${node.name} (pid ${child.pid}) exited (${signal ?? `code ${code}`}). ${pbft ? `Once f + 1 of the others voted it off, its relay is switched off, and on again ${powerOnAfterMs} ms later` : code === 0 && (opts.engine === 'raft' || opts.engine === 'paxos' || opts.engine === 'zab') ? 'It stopped in order (if it led, it handed over first, and the next leader acts without fencing it)' : `If it led, the next leader fences it through its relay and powers it on ${powerOnAfterMs} ms later`}; or restart it now: kill -USR2 ${process.pid}\n`);
      else out(`\n[dev] ${node.name} (pid ${child.pid}) exited (${signal ?? `code ${code}`}). Restart it with:  kill -USR2 ${process.pid}   (restarts every stopped node)\n`);
    });
  };
  // A node's start is CPU-bound (about half a second of CPU: loading and compiling the
  // daemon, QUORUMD_TRACE_START=1 shows it). On a machine with fewer cores than nodes,
  // starting them all at once slows every one of them down, and the first write waits
  // for a quorum of them (issue 14: 3 nodes on 2 cores). So at most max(quorum, cores)
  // start at once; each further node starts when one of those answers on its HTTP port
  // (its loading done), and every node is started within 2 s. Not under bully: its
  // preferred coordinator is the last member, and a quorum started first would elect
  // another one that the last then preempts.
  const quorum = pbft ? 2 * Math.floor((voterCount - 1) / 3) + 1 : Math.floor((voterCount + (withWitness ? 1 : 0)) / 2) + 1;
  const firstBatch = bully ? n : Math.min(n, Math.max(quorum, availableParallelism()));
  for (const node of nodes.slice(0, firstBatch)) spawnNode(node);
  startMark('dev: nodes spawned');
  // Closed broker: each node logs in with the password derived from the cluster key (hal/mqtt/credentials.ts).
  let broker: RunningBroker;
  try {
    const { startBroker } = await import('../hal/mqtt/broker.ts');
    broker = await startBroker({ listening: early, clusterKeys: [{ cluster: 1, keys: [Buffer.from(key, 'hex')] }], log: (line) => out(`[dev] ${line}\n`) });
  } catch (e) {
    return failStart(e);
  }
  startMark('dev: broker listening');
  const later = nodes.slice(firstBatch);
  const spawnLater = (node: DevNode | undefined) => {
    if (node && !stopping && node.powered && !node.child) spawnNode(node);
  };
  if (later.length > 0) {
    void (async () => {
      const deadline = performance.now() + 2000;
      const answered = new Set<string>();
      while (later.length > 0 && !stopping && performance.now() < deadline) {
        for (const x of nodes.slice(0, firstBatch)) {
          if (answered.has(x.name)) continue;
          const up = await call(x.url, 'GET', '/v1/leader', { timeoutMs: 200, token: apiToken }).then(() => true, () => false);
          if (up) {
            answered.add(x.name);
            spawnLater(later.shift());
          }
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      for (const x of later.splice(0)) spawnLater(x);
    })();
  }

  /** A node crashed, or its process could not be created (`startError`): keep its log, say where, restart it after a backoff (bounded). */
  function supervise(node: DevNode, pid: number | undefined, code: number | null, signal: string | null, startError?: string): void {
    const now = performance.now();
    node.crashTimes = node.crashTimes.filter((t) => now - t < CRASH_WINDOW_MS);
    node.crashTimes.push(now);
    const n = node.crashTimes.length;
    const restartInMs = n > CRASH_RESTARTS ? null : Math.min(8000, 500 * 2 ** (n - 1));
    crashes.push({ node: node.name, pid, code, signal, ...(startError !== undefined ? { startError } : {}), atMs: Math.round(now - t0), logFile: node.logFile, restartInMs });
    const how = signal ?? `exit code ${code}${code === 70 ? ': a fatal error' : ''}`;
    const what = startError !== undefined ? `\n[dev] could not start ${node.name}: ${startError}\n` : `\n[dev] ${node.name} (pid ${pid}) crashed (${how}). Its log is kept: ${node.logFile} (the error and its stack are at its end; ${dir} is kept at exit)\n`;
    // What happened and what follows in one write: a reader of the output (a person, a
    // log shipper, a test) never sees the one without the other.
    if (restartInMs === null) {
      out(`${what}[dev] ${node.name} crashed ${n} times within ${CRASH_WINDOW_MS / 1000} s: not restarted again. Restart it by hand: kill -USR2 ${process.pid}\n`);
      return;
    }
    out(`${what}[dev] restarting ${node.name} in ${restartInMs} ms (restart ${n} of at most ${CRASH_RESTARTS} per ${CRASH_WINDOW_MS / 1000} s)\n`);
    clearTimeout(node.restartTimer);
    node.restartTimer = setTimeout(() => {
      node.restartTimer = undefined;
      if (stopping || !node.powered || node.child) return; // fenced meanwhile: its relay brings it back
      spawnNode(node);
      const pid = (node.child as ChildProcess | undefined)?.pid;
      if (pid !== undefined) out(`[dev] restarted ${node.name} (pid ${pid})\n`);
    }, restartInMs);
  }

  const cluster: DevCluster = {
    broker,
    brokerUrl,
    dir,
    tokenFile,
    nodes,
    rails,
    railLog,
    crashes,
    restart(name) {
      const node = nodes.find((x) => x.name === name);
      if (!node) throw new Error(`no node ${name}; expected one of ${nodes.map((x) => x.name).join(', ')}`);
      if (!node.powered) throw new Error(`${name}'s relay is off (fenced): it comes back when the fence powers it on`);
      if (!node.child) spawnNode(node);
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const node of nodes) clearTimeout(node.restartTimer);
      const exits = nodes.map(
        (node) =>
          new Promise<void>((resolve) => {
            const c = node.child;
            if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
            // Still there after 5 s: a power cut, which also stops the jobs and hooks it started.
            const t = setTimeout(() => void cut(node), 5000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      );
      await Promise.all(exits);
      // A node that stopped on its own ended its jobs and hooks (SIGTERM, SIGKILL after their
      // grace), but may have exited before a run was gone, and a node killed earlier (kill -9)
      // left its runs behind: nothing a node started outlives `quorumd dev`.
      const left = nodes.reduce((k, node) => k + cut(node), 0);
      if (left > 0) out(`[dev] stopped ${left} process${left > 1 ? 'es' : ''} the nodes had started (jobs or hooks still running)\n`);
      await rails?.close();
      await new Promise<void>((r) => broker.close(() => r()));
      if (etcd && etcd.exitCode === null && etcd.signalCode === null) {
        const e = etcd;
        await new Promise<void>((r) => {
          const t = setTimeout(() => e.kill('SIGKILL'), 3000);
          e.once('exit', () => {
            clearTimeout(t);
            r();
          });
          e.kill('SIGTERM');
        });
      }
      if (ownDir && keepDir) {
        out(`[dev] kept ${dir} (the logs of a cluster that did not become ready)\n`);
      } else if (ownDir && crashes.some((c) => c.startError === undefined)) {
        // Evidence survives a crash: the logs (with the stack) and the data stay (a process
        // that could not be created left none).
        const who = [...new Set(crashes.filter((c) => c.startError === undefined).map((c) => c.node))];
        out(`[dev] kept ${dir}: ${who.join(', ')} crashed during this run; logs: ${who.map((w) => nodes.find((x) => x.name === w)!.logFile).join(', ')}\n`);
      } else if (ownDir) {
        // Retries: a log stream may still be flushing, or a late file appear, while the tree
        // is removed (ENOTEMPTY); a failure is said, not thrown past process.exit.
        try {
          rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
        } catch (err) {
          out(`[dev] could not remove ${dir}: ${(err as Error).message}\n`);
        }
      }
    },
  };

  // Ctrl-C / SIGTERM stop the nodes from the moment they exist, also while we still wait
  // for the first leader: a supervisor killed before its guide must not leave nodes behind.
  if (opts.handleSignals !== false) {
    // One stop, whichever signals come: a second one (SIGHUP after Ctrl-C, as the terminal
    // closes) must not exit before the first stop is done (cluster.stop() returns at once
    // while a stop is under way).
    let stopSignalled = false;
    const onStop = () => {
      if (stopSignalled) return;
      stopSignalled = true;
      out('\n[dev] stopping...\n');
      void cluster.stop().then(() => process.exit(0));
    };
    process.once('SIGINT', onStop);
    process.once('SIGTERM', onStop);
    // The terminal it ran in went away (an SSH session dropped, a terminal window closed):
    // Node's default ended the supervisor on the spot, leaving its nodes to notice it gone
    // and its temp directory behind, with no power cut for a node that hangs and no
    // clean-up of what the nodes started. Stop as on Ctrl-C. Writes to a terminal that hung up fail
    // (EIO): on a terminal, output errors are dropped from here on, so that they cannot cut
    // the stop short (the CLI's listener of daemon/exit-codes.ts drops EIO too; a program
    // that embeds startDev may have none, and an 'error' without a listener is thrown).
    // `on`, not `once`: the listener stays for the whole stop, so that a further SIGHUP
    // (another `kill -HUP`) is ignored; with no listener left, Node's default would end
    // the supervisor by that signal in the middle of its stop.
    process.on('SIGHUP', () => {
      if (stopSignalled) return;
      for (const stream of [process.stdout, process.stderr]) {
        if (!stream.isTTY) continue;
        stream.removeAllListeners('error');
        stream.on('error', () => {});
      }
      onStop();
    });
  }

  // Wait (bounded) until every node answers, all name the same leader in the same term,
  // every node serves a linearizable read (its leader confirmed by a quorum; bully has
  // no KV: agreeing on the coordinator is all there is), and that has held for
  // stableMs: the guide is printed once, when its first command will not meet an
  // election in progress. Meanwhile a progress line says what is missing.
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const stableMs = opts.stableMs ?? 1500;
  const deadline = performance.now() + readyTimeoutMs;
  const progress = opts.progress ?? stderrProgress();
  const t0Wait = performance.now();
  let leader: string | null = null;
  // A lying node (testing only, --byzantine-node) may say anything about who leads: the
  // cluster is ready when the honest nodes agree.
  const judged = byzantineMode !== undefined ? nodes.filter((x) => x.id !== opts.byzantineNode) : nodes;
  let stableKey = '';
  let stableSince = 0;
  while (performance.now() < deadline && !stopping) {
    const rs = await Promise.all(
      judged.map((x) =>
        call(x.url, 'GET', '/v1/leader', { timeoutMs: 1000, token: apiToken }).then(
          (r) => (r.status === 200 ? (JSON.parse(r.body.toString()) as { leader: string | null; term: number }) : undefined),
          () => undefined,
        ),
      ),
    );
    const up = rs.filter((r) => r !== undefined).length;
    const names = rs.map((r) => r?.leader ?? null);
    const agreed = names.every((x) => x !== null && x === names[0]) && rs.every((r) => r!.term === rs[0]!.term);
    let ready = false;
    if (agreed) {
      const reads = bully ? [] : await Promise.all(judged.filter((x) => x.role !== 'witness').map((x) => call(x.url, 'GET', '/v1/kv/greeting', { timeoutMs: 1000, token: apiToken }).catch(() => undefined)));
      ready = reads.every((r) => r !== undefined && (r.status === 200 || r.status === 404));
    }
    const key = ready ? `${names[0]}/${rs[0]!.term}` : '';
    if (key !== stableKey) {
      stableKey = key;
      stableSince = performance.now();
    }
    const secs = ((performance.now() - t0Wait) / 1000).toFixed(1);
    const leaderText = !agreed
      ? up < judged.length ? 'no leader yet' : 'electing'
      : !ready ? `${names[0]} (term ${rs[0]!.term}), waiting for every node to confirm it` : `${names[0]} (term ${rs[0]!.term}), stable for ${((performance.now() - stableSince) / 1000).toFixed(1)} s`;
    progress(`[dev] starting: ${up}/${judged.length} node${judged.length > 1 ? 's' : ''} answer${judged.length < n ? ` (the lying n${opts.byzantineNode} not asked)` : ''}; leader: ${leaderText}  (${secs} s)`, false);
    if (key !== '' && performance.now() - stableSince >= stableMs) {
      leader = names[0]!;
      break;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  progress('', true);
  if (stopping) return cluster; // a signal came while we waited: the nodes are being stopped
  if (!leader) {
    keepDir = true; // the error names the logs: they must still be there
    await cluster.stop();
    throw new Error(`the dev cluster did not elect a stable leader within ${readyTimeoutMs} ms; see the node logs in ${dir}${ownDir ? ' (kept; remove it when done)' : ''}`);
  }
  const Q = cliCommand().cmd;
  const hint = linkHint();
  const L = nodes.find((x) => x.name === leader)!;
  const u = (k: number) => nodes[(k - 1) % voterCount]!.url;
  const obs = nodes.find((x) => x.role === 'observer');
  const all = nodes.map((x) => x.url).join(',');
  out(`quorumd dev: ${n} node${n > 1 ? 's' : ''} running, leader ${leader}

  broker      ${brokerUrl}  (in this process)${link === 'tcp' ? `
  links       tcp: the nodes talk directly (n1 on 127.0.0.1:${devTcpPort(opts.basePort, 1)}, ...); the broker carries presence and wills (failover hint)` : ''}${etcdUrl ? `
  etcd        ${etcdUrl}  (child pid ${etcd?.pid}, data and log in ${dir}; the nodes elect through it)` : ''}
${nodes.map((x) => `  ${x.name.padEnd(10)}  ${x.url}  pid ${x.child?.pid}  log ${x.logFile}${x.role === 'voter' ? '' : x.role === 'witness' ? '  (witness: votes, never leads, keeps no data)' : '  (observer: applies every write, serves reads, never votes or leads)'}`).join('\n')}
  configs     ${dir}/n*.yaml${ownDir ? '  (temp dir, removed at exit unless a node crashed: then kept with its logs)' : ''}
  API token   ${tokenFile}  (mode 0600, operator scope; every request needs it, also on 127.0.0.1)
${byzantineMode !== undefined ? `  LIAR        n${opts.byzantineNode} runs as a BYZANTINE replica (${byzantineMode}; testing only): its own answers may lie (one node's answer is only its word: kv --pbft below trusts f + 1 matching signed replies)
` : ''}  relays      ${rails ? `simulated: power rails held by this process at ${rails.url} (dev-relay); a fenced node is powered on again after ${powerOnAfterMs} ms` : 'none (relays: false)'}

Dashboard: ${L.url}/ui  (paste the token of ${tokenFile} into its form)

First, in the shell you try things from (the CLI finds the token by itself through the first, curl needs the second):
  export QUORUMD_DATA_DIR=${dir}
  AUTH="Authorization: Bearer $(cat ${tokenFile})"

${bully ? `${hint ? `${hint}\n` : ''}Try (engine bully: "who is the primary" only; KV and locks answer 501, they need --engine raft):
  curl -s -H "$AUTH" ${u(1)}/v1/status
  curl -s -H "$AUTH" ${u(1)}/v1/leader                          # coordinator, epoch, fencing token (epoch × 256 + id)
  curl -s -H "$AUTH" -X PUT --data-binary 'hello' ${u(1)}/v1/kv/greeting   # 501 engine-unsupported
  curl -s -H "$AUTH" ${u(1)}/metrics | grep -E '^quorumd_(role|term|fencing_token)'
  ${Q} status --node ${all}
` : `${hint ? `${hint}\n` : ''}Try:
  curl -s -H "$AUTH" ${u(1)}/v1/status
  curl -s -H "$AUTH" -X PUT --data-binary 'hello' ${u(1)}/v1/kv/greeting
  curl -s -H "$AUTH" ${u(2)}/v1/kv/greeting
  curl -s -H "$AUTH" -X PUT --data-binary 'only once' '${u(3)}/v1/kv/once?cas=0'      # again: 409
  curl -s -H "$AUTH" '${u(1)}/v1/kv/news?watch=0&wait=60s'     # blocks until someone writes news:
  curl -s -H "$AUTH" -X PUT --data-binary 'extra' ${u(2)}/v1/kv/news
${obs ? `  curl -s -H "$AUTH" ${obs.url}/v1/kv/greeting            # ${obs.name}, an observer: a linearizable read (it syncs with the leader first)
  curl -s -H "$AUTH" '${obs.url}/v1/kv/greeting?stale'     # its own copy, no round trip
` : ''}${pbft ? '' : `  curl -s -H "$AUTH" -X POST '${u(1)}/v1/locks/backup?ttl=15s&owner=me'
`}  curl -s -H "$AUTH" ${u(1)}/v1/leader
  curl -s -H "$AUTH" ${u(1)}/metrics | grep -E '^quorumd_(role|term)'
  ${Q} status --node ${all}
${pbft ? `  ${Q} kv put greeting hi --pbft ${dir}/n1.yaml --node ${all}   # f + 1 matching signed replies, not one node's word
  ${Q} kv get greeting --pbft ${dir}/n1.yaml --node ${all}
  ${Q} lock acquire backup --ttl 15s --pbft ${dir}/n1.yaml --node ${all}   # a fencing token f + 1 signed; the lease runs on the nodes' agreed time
  (engine pbft: jobs are not built for it yet; a node is fenced only when f + 1 others voted through the log; one node's answer is only its word — docs/engines.md)
` : `  ${Q} lock list --node ${u(1)}             # who holds backup: holder, fencing token, time left
`}${devJobList.length > 0 ? `  ${Q} jobs --node ${u(1)}             # ${devJobList.map((j) => j.name).join(', ')}: last run, node, result (run by the active leader only)
` : ''}`}
Failover: kill the ${pbft ? 'primary' : 'leader'} and watch another node take over:
  kill -9 ${L.child?.pid}        # ${leader}, the ${pbft ? 'primary' : 'leader'} now
  curl -s -H "$AUTH" ${nodes.find((x) => x !== L)?.url ?? u(1)}/v1/leader
${rails && pbft ? `  ${Q} status --node ${all}   # after about 4 s of silence the others vote ${leader} off; f + 1 committed votes switch its relay off; ${leader} is back after ${powerOnAfterMs} ms
` : rails ? `  ${Q} status --node ${all}   # the new leader fences ${leader} (relay off, verified) before it is active; ${leader} is back after ${powerOnAfterMs} ms${bully ? ' and, as the highest priority, coordinates again (preempt: the other coordinator acknowledges its step-down, no second fence)' : ''}
  ${Q} fence ${nodes.find((x) => x !== L)?.name ?? 'n2'} --node ${L.url}   # operator: fence a node now through its relay
` : ''}  kill -USR2 ${process.pid}        # restarts every stopped node

Ctrl-C stops everything.
`);

  if (opts.handleSignals !== false) {
    process.on('SIGUSR2', () => {
      for (const x of nodes) {
        if (!x.child && x.powered) {
          cluster.restart(x.name);
          out(`[dev] restarted ${x.name} (pid ${x.child!.pid})\n`);
        }
      }
    });
  }
  return cluster;
}

export async function runDev(opts: DevOptions): Promise<void> {
  await startDev(opts);
}
