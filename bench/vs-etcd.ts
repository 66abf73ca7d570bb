/**
 * quorumd beside etcd on one machine (issue 14): `quorumd dev` (3 node processes, the
 * embedded aedes broker, fsync on, simulated relays) against Debian's etcd 3.4 (3
 * members on loopback, fsync on), both driven by the same Node.js client (node:http
 * with a keep-alive agent, daemon/client/http.ts), in interleaved blocks: each round
 * starts a fresh etcd cluster and measures it, then a fresh quorumd dev cluster, and
 * each block waits (bounded) for the 1-minute load average to drop below --max-load
 * before it starts and prints the load it started at. The printed table gives ranges
 * over the rounds and the ratio quorumd / etcd per round.
 *
 * What each row measures:
 *   sequential writes    --writes PUTs of a 16-byte value, one at a time, to the leader,
 *                        after --warmup writes (default 3000) of the same kind: a node's
 *                        JavaScript runs unoptimized until V8 has seen it hot, so the
 *                        first thousand writes after a start cost it 2–3× the CPU of
 *                        later ones. The first 1000 of the warm-up are the cold rows
 *   fsyncs per write     the leader's fsync counter over those writes / writes
 *                        (quorumd_fsyncs_total; etcd_disk_wal_fsync_duration_seconds_count)
 *   fsync time           the members' fsync latency histograms over those writes (same
 *                        disk, same time): the mean on the leader and on the followers,
 *                        and the share ≤ 1 ms. etcd times its fdatasync call; quorumd
 *                        times a sync from its request to its callback, so the trip
 *                        through libuv's thread pool and the wait for the event loop are in
 *                        it — on a busy machine that is most of the difference
 *   64 clients           64 closed-loop writers to the leader for --secs seconds
 *   CPU per write        utime + stime of the members together (and of the dev
 *                        supervisor, which hosts the broker) over the sequential writes
 *                        and over the 64 writers, / writes: what a write costs, which a
 *                        busy machine disturbs much less than the wall-time rows
 *   linearizable reads   GET on the leader, one at a time and 64 at once. quorumd's
 *                        are lease reads (the leader answers alone while a quorum's
 *                        heartbeat acknowledgement holds); etcd's are ReadIndex rounds
 *   failover             SIGKILL the leader → first write committed through a survivor
 *                        (a PUT every 5 ms to a random survivor, each waiting up to
 *                        --probe-timeout ms, default 1000; timed at the first 200);
 *                        --kills per round; the member comes back before the next kill
 *                        (quorumd dev: the new leader fences it, its rail is switched on
 *                        again after 5 s; etcd: restarted)
 *   RSS                  VmRSS of each member process (and private memory, which does
 *                        not count the shared pages of the node/etcd binary, and PSS), idle and
 *                        the peak under 64 writers; the dev supervisor (broker + rails)
 *   idle CPU             utime + stime of each member over --idle seconds, % of a core
 *                        (quorumd dev runs without its demo job here: etcd has none)
 *   cold start           spawn of the cluster → first committed write: PUTs are tried
 *                        from the spawn on, round robin over the members, every 10 ms
 *                        (for quorumd too; the guide of `quorumd dev` is printed later,
 *                        once every node agreed on the leader for a while: its own row).
 *                        Before the first block (untimed): dist/ is built if a source is
 *                        newer, and one start writes V8's code cache, so no block times a
 *                        build or a start without the cache (_proc.ts prepareBin)
 *   CLI call             wall time of `quorumd kv get` (and `etcdctl get`) against the
 *                        leader, median of 5, after the benchmark's own keep-alive
 *                        sockets are closed (a call on an idle machine, as the goal says)
 *
 *   npm run bench -- vs-etcd
 *   npx tsx bench/vs-etcd.ts [--rounds 2] [--writes 1000] [--warmup 3000] [--secs 5] [--kills 5] [--idle 10]
 *                            [--max-load 2] [--etcd-timing 50/300] [--only quorumd]
 *                            [--links mqtt,tcp] [--quorumd-node-options '--max-old-space-size=48']
 *                            [--only-writes] [--compare <another checkout>]
 *
 * --links: the quorumd variants, each a `quorumd dev --link <link>` block of its own in
 * every round (default mqtt; `mqtt,tcp` compares the broker with the direct TCP link,
 * interleaved with etcd, one column each). --quorumd-node-options: NODE_OPTIONS for the
 * dev supervisor and its node processes only (V8 heap limits for an A/B of memory flags).
 * --only-writes: the write rows only (sequential writes, fsyncs per write, the CONC
 * writers); no idle window, reads, CLI calls or failovers — a block takes seconds, not
 * minutes, so more interleaved rounds fit in an A/B of the write path.
 * --paired N (default 6; 0: none): after the blocks, N paired rounds per link with etcd
 * and quorumd running side by side, the write and read rows alternating between them in
 * segments seconds apart (pairedRounds says why); --pair-secs: each segment's writers and
 * readers windows (default 3 s). Printed as a second table: per-pair ratios, their median.
 * It adds ~2 min per link (both clusters' start and warm-up, then ~15 s a pair).
 * --compare <dir>: one more quorumd column per link, `<dir>/bin/quorumd.js` (another
 * checkout, built: a baseline), interleaved with the others in every round; its column
 * is named `<link>@base`.
 *
 * etcd: Debian's `etcd-server` package (apt-get install etcd-server). Without it the
 * quorumd column is measured alone and the bench says how to install it. Data goes to
 * fresh directories under the OS temp dir (same file system for both). Loopback only;
 * every loop is bounded; everything started is stopped.
 */
import { cpuSeconds, devNoJobsArgs, machineSeconds, findNodePids, freePorts, numberOption, prepareBin, userCommand } from './_proc.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { agent, call } from '../daemon/client/http.ts';
import { loadConfigFile } from '../daemon/config/load.ts';

// ---------------------------------------------------------------------------
// Options

function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  return process.env[`QUORUMD_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? dflt;
}
function num(name: string, dflt: number, min: number, max: number): number {
  return numberOption('vs-etcd', name, opt(name, String(dflt)), min, max);
}
const ROUNDS = num('rounds', 2, 1, 20);
const WRITES = num('writes', 1000, 10, 100_000);
/**
 * Sequential writes before the measured ones, the same number for both systems. A fresh
 * quorumd node runs its write path in V8's interpreter and baseline tiers until the
 * optimizing compiler has seen it hot, and compiles meanwhile (on its own threads, in its
 * own CPU time): over the first thousand writes after start its CPU per write is 2–3× its
 * steady figure. etcd speeds up too (Go's heap and GC pacing, its caches), less. The first
 * COLD_WRITES of the warm-up are timed as rows of their own (the figure right after a start).
 */
const WARMUP = num('warmup', 3000, 0, 100_000);
const COLD_WRITES = Math.min(1000, WARMUP);
const SECS = num('secs', 5, 1, 120);
const KILLS = num('kills', 5, 0, 50);
const IDLE_S = num('idle', 10, 2, 300);
const MAX_LOAD = num('max-load', 2, 0.1, 100);
const LOAD_WAIT_S = num('load-wait', 120, 0, 3600);
const CONC = num('clients', 64, 1, 1024);
/**
 * Each failover probe PUT waits this long for its answer (ms). The first one answered
 * 200 ends the trial, timed at its answer. Long enough that a busy machine's slow
 * answers are not taken for failures (150 ms made loaded runs look like 4–7 s failovers).
 */
const FAILOVER_PUT_TIMEOUT_MS = num('probe-timeout', 1000, 50, 10_000);
const ETCD_TIMING = opt('etcd-timing', '50/300');
const Q_NODE_OPTIONS = opt('quorumd-node-options', '');
const ONLY = opt('only', '');
const ONLY_WRITES = process.argv.includes('--only-writes');
/** Paired rounds after the blocks (see pairedRounds); 0: none. */
const PAIRS = num('paired', 6, 0, 50);
/** Length of a paired segment's writers and readers windows, s. */
const PAIR_SECS = num('pair-secs', 3, 1, 60);
const LINKS = opt('links', 'mqtt').split(',').map((x) => x.trim());
if (LINKS.length === 0 || LINKS.some((l) => l !== 'mqtt' && l !== 'tcp') || new Set(LINKS).size !== LINKS.length) {
  console.error(`vs-etcd: --links must be a list of mqtt and tcp, e.g. mqtt,tcp; got ${JSON.stringify(opt('links', 'mqtt'))}`);
  process.exit(2);
}
const COMPARE = opt('compare', '');
if (COMPARE && !existsSync(join(COMPARE, 'bin', 'quorumd.js'))) {
  console.error(`vs-etcd: --compare must be a checkout of quorumd (with bin/quorumd.js and a built dist/), got ${JSON.stringify(COMPARE)}`);
  process.exit(2);
}
/** The quorumd columns: each link, and with --compare the same link from the other checkout. */
const VARIANTS = LINKS.flatMap((l) => [l, ...(COMPARE ? [`${l}@base`] : [])]);
const timing = /^(\d+)\/(\d+)$/.exec(ETCD_TIMING);
if (!timing) {
  console.error(`vs-etcd: --etcd-timing must be <heartbeat ms>/<election ms>, e.g. 50/300, got ${JSON.stringify(ETCD_TIMING)}`);
  process.exit(2);
}
const root = join(import.meta.dirname, '..');
const ownBin = join(root, 'bin', 'quorumd.js');

// ---------------------------------------------------------------------------
// Helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const median = (xs: number[]) => pct(xs, 50);

function procStatus(pid: number): { rss: number; priv: number; pss: number } {
  try {
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
    const r = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const f = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(r)?.[1] ?? 0);
    return { rss, priv: (f('Private_Clean') + f('Private_Dirty')) / 1024, pss: f('Pss') / 1024 };
  } catch {
    return { rss: NaN, priv: NaN, pss: NaN };
  }
}

async function waitLoad(label: string): Promise<number> {
  const t0 = Date.now();
  while (loadavg()[0]! >= MAX_LOAD && Date.now() - t0 < LOAD_WAIT_S * 1000) await sleep(2000);
  const l = loadavg()[0]!;
  console.log(`  [${label}] block starts at load ${l.toFixed(2)}${l >= MAX_LOAD ? ` (above --max-load ${MAX_LOAD} after waiting ${LOAD_WAIT_S} s: the numbers are disturbed)` : ''}`);
  return l;
}

// ---------------------------------------------------------------------------
// The two systems behind one interface

interface Member {
  name: string;
  url: string;
  pid: number;
}

interface System {
  readonly kind: 'etcd' | 'quorumd';
  members: Member[];
  /** Process ids that are not members but part of the system (the dev supervisor). */
  supervisorPid?: number;
  /**
   * Resolves once the system says it is ready (quorumd dev: its guide is printed; etcd:
   * at once), with the time from the spawn, ms. Writes are tried before that.
   */
  ready: Promise<number>;
  put(url: string, key: string, value: string, timeoutMs?: number): Promise<boolean>;
  get(url: string, key: string): Promise<boolean>;
  leader(): Promise<Member | undefined>;
  fsyncs(m: Member): Promise<number>;
  /** The member's fsync latency histogram (cumulative buckets, seconds), from its /metrics. */
  fsyncHist(m: Member): Promise<Hist>;
  kill(m: Member): void;
  /** Until every member answers again (after a kill). */
  recover(m: Member): Promise<void>;
  cliGet(m: Member): string[];
  stop(): Promise<void>;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * A Prometheus histogram as scraped: cumulative counts per upper bound (seconds), count, sum.
 * etcd's etcd_disk_wal_fsync_duration_seconds times the fdatasync call of its WAL;
 * quorumd's quorumd_fsync_seconds times a sync from the request to its callback (the
 * thread pool's trip and the event loop's wait included): same disk, not quite the same
 * span — the difference is the cost of doing it off the event loop.
 */
interface Hist {
  le: Map<number, number>;
  count: number;
  sum: number;
}
function parseHist(text: string, name: string): Hist {
  const le = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)`, 'gm'))) if (m[1] !== '+Inf') le.set(Number(m[1]), Number(m[2]));
  const count = Number(new RegExp(`^${name}_count (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  const sum = Number(new RegExp(`^${name}_sum (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { le, count, sum };
}
/** b − a, bucket by bucket. */
function histDelta(a: Hist, b: Hist): Hist {
  return { le: new Map([...b.le].map(([k, v]) => [k, v - (a.le.get(k) ?? 0)])), count: b.count - a.count, sum: b.sum - a.sum };
}
/** Summed over members. */
function histSum(hs: Hist[]): Hist {
  const le = new Map<number, number>();
  for (const h of hs) for (const [k, v] of h.le) le.set(k, (le.get(k) ?? 0) + v);
  return { le, count: hs.reduce((a, h) => a + h.count, 0), sum: hs.reduce((a, h) => a + h.sum, 0) };
}
/** Share of observations at or below `s` seconds (a bucket bound both systems have: 0.001). */
function histShare(h: Hist, s: number): number {
  return h.count > 0 ? (h.le.get(s) ?? NaN) / h.count : NaN;
}
/** The last failed request (for error messages). */
let lastError = '';

function exited(c: ChildProcess): Promise<void> {
  return new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
}

// etcd runs without auth, and etcd 3.4 refuses a request whose Authorization header it
// cannot verify ("auth: invalid auth token"): its requests carry none. Without this, an
// etcd block after a quorumd block (QUORUMD_API_TOKEN is set from then on) sent the dev
// cluster's token and never committed a write ("no write committed within 60 s").
const NO_TOKEN = '';

async function startEtcd(dir: string): Promise<System> {
  const base = await freePorts(6, 'vs-etcd');
  const names = ['m1', 'm2', 'm3'];
  const initial = names.map((n, i) => `${n}=http://127.0.0.1:${base + 3 + i}`).join(',');
  const procs = new Map<string, ChildProcess>();
  const args = (i: number) => [
    '--name', names[i]!, '--data-dir', join(dir, names[i]!),
    '--listen-client-urls', `http://127.0.0.1:${base + i}`, '--advertise-client-urls', `http://127.0.0.1:${base + i}`,
    '--listen-peer-urls', `http://127.0.0.1:${base + 3 + i}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${base + 3 + i}`,
    '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `vs-etcd-${base}`,
    '--heartbeat-interval', timing![1]!, '--election-timeout', timing![2]!, '--log-level', 'warn',
  ];
  const members: Member[] = names.map((name, i) => ({ name, url: `http://127.0.0.1:${base + i}`, pid: 0 }));
  const launch = (i: number) => {
    // Each member's own output goes to <dir>/<name>.log (appended across restarts): kept
    // with the data when a block fails (an etcd that never committed left nothing to read).
    const log = openSync(join(dir, `${names[i]!}.log`), 'a');
    const c = spawn('etcd', args(i), { stdio: ['ignore', log, log] });
    closeSync(log);
    procs.set(names[i]!, c);
    members[i]!.pid = c.pid!;
  };
  names.forEach((_, i) => launch(i));
  const memberId = new Map<string, string>();
  const sys: System = {
    kind: 'etcd',
    members,
    ready: Promise.resolve(0),
    async put(url, key, value, timeoutMs = 5000) {
      try {
        const r = await call(url, 'POST', '/v3/kv/put', { body: JSON.stringify({ key: b64(key), value: b64(value) }), timeoutMs, token: NO_TOKEN });
        if (r.status !== 200) lastError = `POST ${url}/v3/kv/put: ${r.status} ${r.body.toString().slice(0, 200)}`;
        return r.status === 200;
      } catch (e) {
        lastError = `POST ${url}/v3/kv/put: ${(e as Error).message}`;
        return false;
      }
    },
    async get(url, key) {
      try {
        return (await call(url, 'POST', '/v3/kv/range', { body: JSON.stringify({ key: b64(key) }), timeoutMs: 5000, token: NO_TOKEN })).status === 200;
      } catch {
        return false;
      }
    },
    async leader() {
      for (const m of members) {
        try {
          const r = await call(m.url, 'POST', '/v3/maintenance/status', { body: '{}', timeoutMs: 1000, token: NO_TOKEN });
          if (r.status !== 200) continue;
          const s = JSON.parse(r.body.toString()) as { header: { member_id: string }; leader: string };
          memberId.set(s.header.member_id, m.name);
          const name = memberId.get(s.leader);
          if (name) return members.find((x) => x.name === name);
          for (const o of members) {
            const r2 = await call(o.url, 'POST', '/v3/maintenance/status', { body: '{}', timeoutMs: 1000, token: NO_TOKEN }).catch(() => undefined);
            if (r2?.status === 200) memberId.set((JSON.parse(r2.body.toString()) as { header: { member_id: string } }).header.member_id, o.name);
          }
          const n2 = memberId.get(s.leader);
          if (n2) return members.find((x) => x.name === n2);
        } catch {
          /* next */
        }
      }
      return undefined;
    },
    async fsyncs(m) {
      const r = await call(m.url, 'GET', '/metrics', { timeoutMs: 5000, token: NO_TOKEN });
      return Number(/^etcd_disk_wal_fsync_duration_seconds_count (\d+)/m.exec(r.body.toString())?.[1] ?? NaN);
    },
    async fsyncHist(m) {
      const r = await call(m.url, 'GET', '/metrics', { timeoutMs: 5000, token: NO_TOKEN });
      return parseHist(r.body.toString(), 'etcd_disk_wal_fsync_duration_seconds');
    },
    kill(m) {
      procs.get(m.name)?.kill('SIGKILL');
    },
    async recover(m) {
      const i = names.indexOf(m.name);
      await exited(procs.get(m.name)!);
      launch(i);
      const t0 = Date.now();
      while (Date.now() - t0 < 30_000) {
        if (await sys.get(m.url, 'probe')) return;
        await sleep(50);
      }
      throw new Error(`etcd member ${m.name} did not come back within 30 s`);
    },
    cliGet(m) {
      return ['etcdctl', '--endpoints', m.url, 'get', 'seq'];
    },
    async stop() {
      for (const c of procs.values()) c.kill('SIGTERM');
      await Promise.race([Promise.all([...procs.values()].map(exited)), sleep(5000)]);
      for (const c of procs.values()) c.kill('SIGKILL');
    },
  };
  return sys;
}

async function startQuorumd(dir: string, variant: string): Promise<System> {
  const [link, base_] = variant.split('@') as [string, string?];
  const bin = base_ ? join(COMPARE, 'bin', 'quorumd.js') : ownBin;
  // HTTP on base+1..3; with --link tcp the node links on base+11..13 (daemon/dev.ts devTcpPort).
  const base = (await freePorts(14, 'vs-etcd')) - 0;
  const t0 = performance.now();
  // No scheduled job: dev's demo job (a shell command every 10 s on the leader, its slot
  // claimed and released through the log) is work etcd does not do, and it alone adds
  // 0.2–0.3 points to a young leader's idle CPU (bench/idle-cpu.ts --jobs both).
  const dev = spawn(...userCommand(bin, ['dev', '--base-port', String(base), '--data-dir', dir, '--link', link, ...devNoJobsArgs(bin, dir)]), {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(Q_NODE_OPTIONS ? { env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${Q_NODE_OPTIONS}`.trim() } } : {}),
  });
  let out = '';
  dev.stdout!.on('data', (d) => (out += d));
  dev.stderr!.on('data', (d) => (out += d));
  const members: Member[] = [1, 2, 3].map((k) => ({ name: `n${k}`, url: `http://127.0.0.1:${base + k}`, pid: 0 }));
  // The node processes of this dev cluster (a fenced node comes back with a new pid).
  const pids = () => findNodePids(dir, members);
  // The dev cluster's API token (operator scope): every request of this process and its
  // CLI calls use it. The supervisor writes it before it spawns the nodes; writes are
  // tried from the spawn on (as for etcd), so it is picked up as soon as it is there.
  delete process.env.QUORUMD_API_TOKEN;
  const haveToken = () => {
    if (process.env.QUORUMD_API_TOKEN) return true;
    const f = join(dir, 'api.token');
    if (!existsSync(f)) return false;
    const t = readFileSync(f, 'utf8').trim();
    if (t) process.env.QUORUMD_API_TOKEN = t;
    return t !== '';
  };
  const ready = (async () => {
    const t1 = Date.now();
    while (!/quorumd dev: \d+ nodes? running/.test(out) && Date.now() - t1 < 60_000 && dev.exitCode === null) await sleep(10);
    const ms = performance.now() - t0;
    pids();
    haveToken();
    if (members.some((m) => m.pid === 0)) {
      dev.kill('SIGKILL');
      throw new Error(`quorumd dev did not start (node logs kept in ${dir}):\n${out.slice(0, 2000)}`);
    }
    return ms;
  })();
  ready.catch(() => undefined); // awaited by runBlock; not an unhandled rejection meanwhile
  const sys: System = {
    kind: 'quorumd',
    members,
    supervisorPid: dev.pid!,
    ready,
    async put(url, key, value, timeoutMs = 5000) {
      if (!haveToken()) {
        lastError = 'no API token yet';
        return false;
      }
      try {
        const r = await call(url, 'PUT', `/v1/kv/${key}`, { body: value, timeoutMs });
        if (r.status !== 200) lastError = `PUT ${url}/v1/kv/${key}: ${r.status} ${r.body.toString().slice(0, 200)}`;
        return r.status === 200;
      } catch (e) {
        lastError = `PUT ${url}/v1/kv/${key}: ${(e as Error).message}`;
        return false;
      }
    },
    async get(url, key) {
      try {
        const r = await call(url, 'GET', `/v1/kv/${key}`, { timeoutMs: 5000 });
        return r.status === 200 || r.status === 404;
      } catch {
        return false;
      }
    },
    async leader() {
      for (const m of members) {
        try {
          const r = await call(m.url, 'GET', '/v1/leader', { timeoutMs: 1000 });
          if (r.status !== 200) continue;
          const l = (JSON.parse(r.body.toString()) as { leader: string | null }).leader;
          const lm = members.find((x) => x.name === l);
          if (lm) return lm;
        } catch {
          /* next */
        }
      }
      return undefined;
    },
    async fsyncs(m) {
      const r = await call(m.url, 'GET', '/metrics', { timeoutMs: 5000 });
      return Number(/^quorumd_fsyncs_total (\d+)/m.exec(r.body.toString())?.[1] ?? NaN);
    },
    async fsyncHist(m) {
      const r = await call(m.url, 'GET', '/metrics', { timeoutMs: 5000 });
      return parseHist(r.body.toString(), 'quorumd_fsync_seconds');
    },
    kill(m) {
      pids();
      try {
        process.kill(m.pid, 'SIGKILL');
      } catch (e) {
        throw new Error(`quorumd node ${m.name} (pid ${m.pid}): ${(e as Error).message}`);
      }
    },
    async recover(m) {
      // The new leader fences it (its rail goes off) and switches the rail on again after 5 s.
      const t0 = Date.now();
      while (Date.now() - t0 < 60_000) {
        try {
          const r = await call(m.url, 'GET', '/v1/status', { timeoutMs: 500 });
          if (r.status === 200 && (JSON.parse(r.body.toString()) as { leader: string | null }).leader) {
            pids();
            return;
          }
        } catch {
          /* down */
        }
        await sleep(100);
      }
      throw new Error(`quorumd node ${m.name} did not come back within 60 s`);
    },
    cliGet(m) {
      // As a user types it: the bin as a command, whose shell lines run node without flags for a CLI call.
      return userCommand(bin, ['kv', 'get', 'seq', '--node', m.url]).flat();
    },
    async stop() {
      dev.kill('SIGTERM');
      await Promise.race([exited(dev), sleep(10_000)]);
      dev.kill('SIGKILL');
      pids();
      for (const m of members) {
        if (m.pid <= 0) continue; // never found (kill(0) would hit our own process group)
        try {
          process.kill(m.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
  return sys;
}

// ---------------------------------------------------------------------------
// One block: one system, every measurement

interface Block {
  load: number;
  coldStartMs: number;
  readyMs: number;
  seqP50: number;
  seqP99: number;
  /** The first COLD_WRITES sequential writes after start (part of the warm-up). */
  coldSeqP50: number;
  coldSeqP99: number;
  coldCpuSeqMembers: number;
  fsyncsPerWrite: number;
  /** The same under CONC writers (group commit: below 1 when batches form). */
  fsyncsPerWriteConc: number;
  /** Mean fsync time over the sequential writes, ms: on the leader, and on the followers together. */
  fsyncMeanLeader: number;
  fsyncMeanFollowers: number;
  /** Share of all members' fsyncs over the sequential writes that took ≤ 1 ms. */
  fsyncUnder1ms: number;
  writesPerSec: number;
  /** Requests of the CONC writers that failed (an error or a non-200 answer; retried by the same writer). */
  writesFailed: number;
  /**
   * CPU time (utime + stime) per write, ms, of every member together and of the dev
   * supervisor (the embedded broker: with --link tcp it is idle), over the sequential
   * writes and over the CONC writers. On a shared machine a steadier measure than wall
   * time: it counts what a write costs, not how long it waited for a core.
   */
  cpuSeqMembers: number;
  cpuSeqSupervisor: number;
  cpuConcMembers: number;
  cpuConcSupervisor: number;
  /**
   * This process (the benchmark's client) per write under CONC clients: it shares the
   * machine's cores with the members, so what it costs is taken from both systems'
   * throughput alike and narrows their ratio.
   */
  cpuConcClient: number;
  readP50: number;
  readsPerSec: number;
  readsFailed: number;
  failoverMs: number[];
  failoverFailed: number;
  idleRss: number;
  idlePriv: number;
  /** Proportional set size (smaps_rollup Pss): what the member costs when its binary's pages are shared. */
  idlePss: number;
  peakRss: number;
  supervisorRss: number;
  idleCpuPct: number;
  cliMs: number;
  /** The heartbeat interval the members ran, ms (etcd: --etcd-timing; quorumd: its nodes' config). */
  heartbeatMs: number;
}

async function firstWrite(sys: System, deadlineMs: number): Promise<boolean> {
  const t0 = Date.now();
  let i = 0;
  while (Date.now() - t0 < deadlineMs) {
    const m = sys.members[i++ % sys.members.length]!;
    if (await sys.put(m.url, 'coldstart', 'x', 300)) return true;
    await sleep(10);
  }
  return false;
}

/**
 * n closed-loop clients for `secs` seconds: successes per second, and how many requests
 * failed (a failed one is retried at once by its client, so failures are printed: a node
 * refusing connections showed up only as fewer writes/s).
 */
async function closedLoop(n: number, secs: number, op: () => Promise<boolean>, sample?: () => void): Promise<{ perSec: number; failed: number }> {
  let ok = 0;
  let failed = 0;
  const end = performance.now() + secs * 1000;
  const timer = sample ? setInterval(sample, 200) : undefined;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (performance.now() < end) {
        if (await op()) ok++;
        else failed++;
      }
    }),
  );
  if (timer) clearInterval(timer);
  return { perSec: ok / secs, failed };
}

async function failover(sys: System): Promise<{ ms: number[]; failed: number }> {
  const ms: number[] = [];
  let failed = 0;
  for (let k = 0; k < KILLS; k++) {
    const L = await sys.leader();
    if (!L) {
      failed++;
      await sleep(1000);
      continue;
    }
    const others = sys.members.filter((m) => m !== L);
    let done = -1;
    const t0 = performance.now();
    sys.kill(L);
    let i = 0;
    const inflight: Promise<void>[] = [];
    while (done < 0 && performance.now() - t0 < 15_000) {
      const m = others[Math.floor(Math.random() * others.length)]!;
      inflight.push(
        sys.put(m.url, 'failover', String(i++), FAILOVER_PUT_TIMEOUT_MS).then((ok) => {
          if (ok && done < 0) done = performance.now() - t0;
        }),
      );
      await sleep(5);
    }
    await Promise.all(inflight);
    if (done >= 0) ms.push(done);
    else failed++;
    await sys.recover(L);
    await sleep(1000);
  }
  return { ms, failed };
}

async function runBlock(kind: 'etcd' | 'quorumd', link = 'mqtt'): Promise<Block> {
  const load = await waitLoad(kind === 'etcd' ? kind : `quorumd ${link}`);
  const dir = mkdtempSync(join(tmpdir(), `quorumd-vs-etcd-${kind}-`));
  const t0 = performance.now();
  const sys = kind === 'etcd' ? await startEtcd(dir) : await startQuorumd(dir, link);
  let failed = false;
  try {
    if (!(await firstWrite(sys, 60_000))) throw new Error(`${kind}: no write committed within 60 s of the start`);
    const coldStartMs = performance.now() - t0;
    const readyMs = sys.kind === 'etcd' ? NaN : await sys.ready;
    // What the idle CPU row is measured at: etcd's --heartbeat-interval, or the Raft heartbeat of the generated node config.
    const heartbeatMs = sys.kind === 'etcd' ? Number(timing![1]) : loadConfigFile(join(dir, 'n1.yaml')).config.raft.heartbeatMs;
    // Settle, then idle memory and CPU.
    await sleep(3000);
    const cpu0 = sys.members.map((m) => cpuSeconds(m.pid));
    if (!ONLY_WRITES) await sleep(IDLE_S * 1000);
    const cpu1 = sys.members.map((m) => cpuSeconds(m.pid));
    const idleCpuPct = median(cpu1.map((c, i) => ((c - cpu0[i]!) / IDLE_S) * 100));
    const idle = sys.members.map((m) => procStatus(m.pid));
    const idleRss = Math.max(...idle.map((s) => s.rss));
    const idlePriv = Math.max(...idle.map((s) => s.priv));
    const idlePss = Math.max(...idle.map((s) => s.pss));
    const supervisorRss = sys.supervisorPid ? procStatus(sys.supervisorPid).rss : NaN;

    const L = await sys.leader();
    if (!L) throw new Error(`${kind}: no leader`);
    // Sequential writes to the leader: the warm-up, its first COLD_WRITES timed as the cold rows.
    const value = 'v'.repeat(16);
    const coldLat: number[] = [];
    const cc0 = cpuNow(sys);
    let cc1 = cc0;
    for (let i = 0; i < WARMUP; i++) {
      const s = performance.now();
      if (!(await sys.put(L.url, 'seq', value))) throw new Error(`${kind}: warm-up write ${i} failed: ${lastError}`);
      if (i < COLD_WRITES) coldLat.push(performance.now() - s);
      if (i === COLD_WRITES - 1) cc1 = cpuNow(sys);
    }
    const cold = { coldSeqP50: pct(coldLat, 50), coldSeqP99: pct(coldLat, 99), coldCpuSeqMembers: COLD_WRITES ? ((cc1.members - cc0.members) * 1000) / COLD_WRITES : NaN };
    const f0 = await sys.fsyncs(L);
    const h0 = await Promise.all(sys.members.map((m) => sys.fsyncHist(m)));
    const c0 = cpuNow(sys);
    const lat: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      const s = performance.now();
      if (!(await sys.put(L.url, 'seq', value))) throw new Error(`${kind}: sequential write ${i} failed: ${lastError}`);
      lat.push(performance.now() - s);
    }
    const c1 = cpuNow(sys);
    const f1 = await sys.fsyncs(L);
    const hd = (await Promise.all(sys.members.map((m) => sys.fsyncHist(m)))).map((h, i) => histDelta(h0[i]!, h));
    const hl = hd[sys.members.indexOf(L)]!;
    const hf = histSum(hd.filter((_, i) => sys.members[i] !== L));
    const fsyncMeanLeader = (hl.sum / hl.count) * 1000;
    const fsyncMeanFollowers = (hf.sum / hf.count) * 1000;
    const fsyncUnder1ms = histShare(histSum(hd), 0.001);
    // 64 writers, RSS sampled meanwhile.
    let peakRss = 0;
    const sample = () => {
      for (const m of sys.members) peakRss = Math.max(peakRss, procStatus(m.pid).rss);
    };
    let k = 0;
    let okWrites = 0;
    const f2 = await sys.fsyncs(L);
    const c2 = cpuNow(sys);
    const u2 = process.cpuUsage();
    const { perSec: writesPerSec, failed: writesFailed } = await closedLoop(CONC, SECS, async () => {
      const ok = await sys.put(L.url, `c${k++ % 256}`, value);
      if (ok) okWrites++;
      return ok;
    }, sample);
    const u3 = process.cpuUsage(u2);
    const c3 = cpuNow(sys);
    const f3 = await sys.fsyncs(L);
    sample();
    const cpu = {
      cpuSeqMembers: ((c1.members - c0.members) * 1000) / WRITES,
      cpuSeqSupervisor: ((c1.supervisor - c0.supervisor) * 1000) / WRITES,
      cpuConcMembers: ((c3.members - c2.members) * 1000) / Math.max(1, okWrites),
      cpuConcSupervisor: ((c3.supervisor - c2.supervisor) * 1000) / Math.max(1, okWrites),
      cpuConcClient: (u3.user + u3.system) / 1000 / Math.max(1, okWrites),
    };
    if (ONLY_WRITES) {
      return {
        ...failedBlock(), load, coldStartMs, readyMs, seqP50: pct(lat, 50), seqP99: pct(lat, 99), ...cold, fsyncsPerWrite: (f1 - f0) / WRITES, fsyncMeanLeader, fsyncMeanFollowers, fsyncUnder1ms,
        fsyncsPerWriteConc: (f3 - f2) / Math.max(1, okWrites), writesPerSec, writesFailed, ...cpu, peakRss, heartbeatMs,
      };
    }
    // Reads.
    const rl: number[] = [];
    for (let i = 0; i < Math.min(WRITES, 1000); i++) {
      const s = performance.now();
      if (!(await sys.get(L.url, 'seq'))) throw new Error(`${kind}: read ${i} failed`);
      rl.push(performance.now() - s);
    }
    const { perSec: readsPerSec, failed: readsFailed } = await closedLoop(CONC, SECS, () => sys.get(L.url, 'seq'));
    // A CLI call against it (median of 5).
    // The keep-alive sockets of the readers go first: the CLI call is timed on a quiet node
    // (and a node takes at most http.maxConnectionsPerAddress from one address).
    agent.destroy();
    const cli: number[] = [];
    // (etcd's CLI comes in its own Debian package: without it the row stays empty, said once at the start.)
    for (let i = 0; i < (kind === 'etcd' && !haveEtcdctl ? 0 : 5); i++) {
      const [cmd, ...args] = sys.cliGet(L);
      const s = performance.now();
      const r = spawnSync(cmd!, args, { encoding: 'utf8', timeout: 10_000, env: { ...process.env, ETCDCTL_API: '3' } });
      if (r.status === 0) cli.push(performance.now() - s);
      else console.log(`  ${kind}: CLI call ${[cmd, ...args].join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}): ${(r.stderr ?? '').trim().slice(0, 300)}`);
    }
    const fo = await failover(sys);
    return {
      load, coldStartMs, readyMs, seqP50: pct(lat, 50), seqP99: pct(lat, 99), ...cold, fsyncsPerWrite: (f1 - f0) / WRITES, fsyncMeanLeader, fsyncMeanFollowers, fsyncUnder1ms, fsyncsPerWriteConc: (f3 - f2) / Math.max(1, okWrites), writesPerSec, writesFailed, ...cpu,
      readP50: pct(rl, 50), readsPerSec, readsFailed, failoverMs: fo.ms, failoverFailed: fo.failed, idleRss, idlePriv, idlePss, peakRss,
      supervisorRss, idleCpuPct, cliMs: median(cli), heartbeatMs,
    };
  } catch (e) {
    failed = true;
    throw new Error(`${(e as Error).message}\n(its data and logs are kept in ${dir})`);
  } finally {
    await sys.stop();
    if (!failed) rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

/** CPU seconds so far of the members together and of the supervisor (NaN for etcd: it has none, an empty cell). */
function cpuNow(sys: System): { members: number; supervisor: number } {
  let members = 0;
  for (const m of sys.members) members += cpuSeconds(m.pid);
  return { members, supervisor: sys.supervisorPid ? cpuSeconds(sys.supervisorPid) : NaN };
}

/** A block that could not be measured: every number NaN (printed as an empty cell). */
function failedBlock(): Block {
  return {
    load: NaN, coldStartMs: NaN, readyMs: NaN, seqP50: NaN, seqP99: NaN, coldSeqP50: NaN, coldSeqP99: NaN, coldCpuSeqMembers: NaN, fsyncsPerWrite: NaN, fsyncsPerWriteConc: NaN, fsyncMeanLeader: NaN, fsyncMeanFollowers: NaN, fsyncUnder1ms: NaN, writesPerSec: NaN, writesFailed: NaN,
    cpuSeqMembers: NaN, cpuSeqSupervisor: NaN, cpuConcMembers: NaN, cpuConcSupervisor: NaN, cpuConcClient: NaN,
    readP50: NaN, readsPerSec: NaN, readsFailed: NaN, failoverMs: [], failoverFailed: 0, idleRss: NaN, idlePriv: NaN, idlePss: NaN, peakRss: NaN,
    supervisorRss: NaN, idleCpuPct: NaN, cliMs: NaN, heartbeatMs: NaN,
  };
}

// ---------------------------------------------------------------------------
// Table

type Row = [label: string, get: (b: Block) => number, unit: string, digits: number];
const idleCpuOf = (b: Block) => b.idleCpuPct;
const ROWS: Row[] = [
  [`sequential writes, 1 client, p50 (after ${WARMUP} warm-up writes)`, (b) => b.seqP50, 'ms', 2],
  ['sequential writes, p99 (same)', (b) => b.seqP99, 'ms', 2],
  [`sequential writes, p50, cold: the first ${COLD_WRITES} after start`, (b) => b.coldSeqP50, 'ms', 2],
  ['sequential writes, p99, cold (same)', (b) => b.coldSeqP99, 'ms', 2],
  ['CPU per write, all members together, cold (same)', (b) => b.coldCpuSeqMembers, 'ms', 2],
  ['fsyncs per write on the leader, 1 client', (b) => b.fsyncsPerWrite, '', 2],
  ['fsync time, mean, on the leader during the sequential writes (etcd: the fdatasync call; quorumd: request → callback, thread pool included)', (b) => b.fsyncMeanLeader, 'ms', 2],
  ['fsync time, mean, on the followers (same)', (b) => b.fsyncMeanFollowers, 'ms', 2],
  ['fsyncs ≤ 1 ms, share of all members\' (same)', (b) => b.fsyncUnder1ms, '', 2],
  [`fsyncs per write on the leader, ${CONC} clients`, (b) => b.fsyncsPerWriteConc, '', 2],
  [`${CONC} clients → leader, writes/s`, (b) => b.writesPerSec, '', 0],
  [`${CONC} clients: failed requests (each retried at once; should be 0)`, (b) => b.writesFailed, '', 0],
  ['CPU per write, all members together, sequential (utime + stime)', (b) => b.cpuSeqMembers, 'ms', 2],
  ['CPU per write, the dev supervisor (embedded broker), sequential', (b) => b.cpuSeqSupervisor, 'ms', 2],
  [`CPU per write, all members together, ${CONC} clients`, (b) => b.cpuConcMembers, 'ms', 3],
  [`CPU per write, the dev supervisor (embedded broker), ${CONC} clients`, (b) => b.cpuConcSupervisor, 'ms', 3],
  [`CPU per write, the benchmark's own client (this process, on the same cores), ${CONC} clients`, (b) => b.cpuConcClient, 'ms', 3],
  ['linearizable reads, 1 client, p50 (quorumd: lease read; etcd: ReadIndex round)', (b) => b.readP50, 'ms', 2],
  [`${CONC} readers → leader, reads/s (same)`, (b) => b.readsPerSec, '', 0],
  [`${CONC} readers: failed requests (same)`, (b) => b.readsFailed, '', 0],
  ['failover, SIGKILL leader → first write, median', (b) => median(b.failoverMs), 'ms', 0],
  ['failover, slowest', (b) => Math.max(...b.failoverMs), 'ms', 0],
  ['RSS per member idle', (b) => b.idleRss, 'MiB', 1],
  ['private memory per member idle (RSS less shared binary pages)', (b) => b.idlePriv, 'MiB', 1],
  ['PSS per member idle (shared pages divided among the processes sharing them, as smem)', (b) => b.idlePss, 'MiB', 1],
  [`RSS per member peak (${CONC} writers)`, (b) => b.peakRss, 'MiB', 1],
  ['dev supervisor (broker + rails) idle RSS', (b) => b.supervisorRss, 'MiB', 1],
  // One window seconds after the writes: a quorumd node's V8 has not optimized its heartbeat
  // path yet (a follower's idle CPU about halves over its first minutes; etcd, compiled Go,
  // has no such phase), so this row is the cold figure. bench/idle-cpu.ts measures both.
  ['idle CPU per member, % of a core, cold (a few s after start; warm: npm run bench -- idle-cpu)', idleCpuOf, '', 2],
  ['cold start of 3 members → first write', (b) => b.coldStartMs, 'ms', 0],
  ['cold start → quorumd dev prints its guide (every node agrees, stable)', (b) => b.readyMs, 'ms', 0],
  ['CLI call (quorumd kv get / etcdctl get), wall, median', (b) => b.cliMs, 'ms', 0],
];

/** The rows --only-writes measures: every row before the reads. */
const WRITE_ROWS = new Set(ROWS.slice(0, ROWS.findIndex((r) => r[0].startsWith('linearizable reads'))).map((r) => r[0]));

function range(xs: number[], digits: number, unit: string): string {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return '–';
  const fmt = (x: number) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const lo = Math.min(...ok);
  const hi = Math.max(...ok);
  const s = lo === hi ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
  return unit ? `${s} ${unit}` : s;
}

function printTable(etcd: Block[], qs: Record<string, Block[]>): void {
  const links = Object.keys(qs);
  console.log(`\n| measure | etcd ${ETCD_TIMING} | ${links.map((l) => `quorumd dev --link ${l.replace('@base', '')}${l.endsWith('@base') ? ' (--compare)' : ''}`).join(' | ')} | ${links.map((l) => `${l} / etcd`).join(' | ')} |`);
  console.log(`|---|---:|${links.map(() => '---:|').join('')}${links.map(() => '---:|').join('')}`);
  // The idle CPU row says the heartbeat each side ran at: they compare only when it is the same.
  const hb = (bs: Block[]) => range(bs.map((b) => b.heartbeatMs), 0, 'ms');
  const hbNote = ` (heartbeat: etcd ${hb(etcd)}; ${links.map((l) => `quorumd ${l} ${hb(qs[l]!)}`).join(', ')})`;
  for (const [row, get, unit, digits] of ONLY_WRITES ? ROWS.filter((r) => WRITE_ROWS.has(r[0])) : ROWS) {
    const label = get === idleCpuOf ? `${row}${hbNote}` : row;
    const e = etcd.map(get);
    const cols = links.map((l) => range(qs[l]!.map(get), digits, unit));
    const ratios = links.map((l) => {
      const r = qs[l]!.map((b, i) => (etcd[i] ? get(b) / get(etcd[i]) : NaN)).filter((x) => Number.isFinite(x));
      return r.length ? `${range(r, 2, '')}×` : '';
    });
    console.log(`| ${label} | ${range(e, digits, unit)} | ${cols.join(' | ')} | ${ratios.join(' | ')} |`);
  }
}

// ---------------------------------------------------------------------------
// Paired rounds

/**
 * The blocks above give each system a cluster of its own, one after the other, a minute
 * or more apart. On a machine whose speed swings over minutes (the 2-core VM of issue 14:
 * the same read micro-benchmark measured its client's CPU per read at 35 µs in one start
 * and 56–80 µs in the next three, and etcd's 64 writers ran at 3,931 and 5,283 writes/s in
 * two rounds of one run) a block's write or read ratio says as much about which block
 * landed in a slow spell as about the two systems. Here both run side by side (the one not
 * measured idles: etcd ~1.5 %, a quorumd node ~2.5 % of a core), and the load rows
 * alternate between them in segments seconds apart, the order swapped every pair; a
 * pair's ratio compares two measurements taken under the same machine. The blocks'
 * numbers stay as they were measured: this is a second table, not a replacement.
 */
interface Segment {
  seqP50: number;
  seqP99: number;
  writesPerSec: number;
  /**
   * CPU per write (ms) in the writers window: the system's processes (members and the
   * dev supervisor), this process (the client), and the whole machine (every CPU's busy
   * time in /proc/stat, the kernel's own threads included: journal commits, softirqs).
   * With both cores busy, writes/s follow the machine's CPU per write.
   */
  cpuSystem: number;
  cpuClient: number;
  cpuMachine: number;
  readsPerSec: number;
  failed: number;
}

async function segment(sys: System): Promise<Segment> {
  // Fresh connections for each segment: the other system's idle keep-alive sockets are
  // not carried into this one, and neither side reuses sockets its server may be closing.
  agent.destroy();
  const L = await sys.leader();
  if (!L) throw new Error(`${sys.kind}: no leader`);
  const value = 'v'.repeat(16);
  const lat: number[] = [];
  let failed = 0;
  for (let i = 0; i < WRITES; i++) {
    const s = performance.now();
    if (await sys.put(L.url, 'seq', value)) lat.push(performance.now() - s);
    else if (++failed > 100) throw new Error(`${sys.kind}: more than 100 sequential writes failed: ${lastError}`);
  }
  let k = 0;
  const c0 = cpuNow(sys);
  const u0 = process.cpuUsage();
  const m0 = machineSeconds().busy;
  const w = await closedLoop(CONC, PAIR_SECS, () => sys.put(L.url, `c${k++ % 256}`, value));
  const m1 = machineSeconds().busy;
  const u1 = process.cpuUsage(u0);
  const c1 = cpuNow(sys);
  const writes = w.perSec * PAIR_SECS;
  const perWrite = (sec: number) => (sec * 1000) / writes;
  const sup = Number.isNaN(c1.supervisor) ? 0 : c1.supervisor - c0.supervisor;
  // --only-writes: no readers here either (their row stays empty).
  const r = ONLY_WRITES ? { perSec: NaN, failed: 0 } : await closedLoop(CONC, PAIR_SECS, () => sys.get(L.url, 'seq'));
  return {
    seqP50: pct(lat, 50), seqP99: pct(lat, 99), writesPerSec: w.perSec,
    cpuSystem: perWrite(c1.members - c0.members + sup), cpuClient: perWrite((u1.user + u1.system) / 1e6), cpuMachine: perWrite(m1 - m0),
    readsPerSec: r.perSec, failed: failed + w.failed + r.failed,
  };
}

async function pairedRounds(link: string): Promise<void> {
  const load = await waitLoad(`paired etcd + quorumd ${link}`);
  const dirs = [mkdtempSync(join(tmpdir(), 'quorumd-vs-etcd-paired-etcd-')), mkdtempSync(join(tmpdir(), 'quorumd-vs-etcd-paired-quorumd-'))];
  const started: System[] = [];
  let failed = false;
  try {
    const etcd = await startEtcd(dirs[0]!);
    started.push(etcd);
    const q = await startQuorumd(dirs[1]!, link);
    started.push(q);
    for (const sys of started) if (!(await firstWrite(sys, 60_000))) throw new Error(`${sys.kind}: no write committed within 60 s of the start`);
    await q.ready;
    // The same warm-up as a block's, for each (a fresh quorumd node's write path is not optimized yet).
    for (const sys of started) {
      const L = await sys.leader();
      if (!L) throw new Error(`${sys.kind}: no leader`);
      for (let i = 0; i < WARMUP; i++) if (!(await sys.put(L.url, 'seq', 'w'))) throw new Error(`${sys.kind}: warm-up write ${i} failed: ${lastError}`);
    }
    const es: Segment[] = [];
    const qs: Segment[] = [];
    for (let p = 0; p < PAIRS; p++) {
      const first = p % 2 === 0 ? etcd : q;
      const second = first === etcd ? q : etcd;
      const a = await segment(first);
      const b = await segment(second);
      const [e, x] = first === etcd ? [a, b] : [b, a];
      es.push(e);
      qs.push(x);
      console.log(`  pair ${p + 1}/${PAIRS} (${first.kind} first): etcd ${JSON.stringify(e, rnd)} quorumd ${JSON.stringify(x, rnd)}`);
    }
    const rows: Array<[string, (s: Segment) => number, string, number]> = [
      [`sequential writes, 1 client, p50 (${WRITES} per segment)`, (s) => s.seqP50, 'ms', 2],
      ['sequential writes, p99 (same)', (s) => s.seqP99, 'ms', 2],
      [`${CONC} clients → leader, writes/s (${PAIR_SECS} s per segment)`, (s) => s.writesPerSec, '', 0],
      [`CPU per write, ${CONC} clients: the system's processes (quorumd: nodes + dev supervisor)`, (s) => s.cpuSystem, 'ms', 3],
      ['CPU per write, same: the benchmark\'s client (this process)', (s) => s.cpuClient, 'ms', 3],
      ['CPU per write, same: the whole machine (/proc/stat, kernel threads included)', (s) => s.cpuMachine, 'ms', 3],
      [`${CONC} readers → leader, reads/s (same; quorumd: lease read, etcd: ReadIndex round)`, (s) => s.readsPerSec, '', 0],
      ['failed requests (each retried at once; should be 0)', (s) => s.failed, '', 0],
    ];
    console.log(`\n| paired rounds, ${PAIRS} pairs (load ${load.toFixed(2)} at the start) | etcd ${ETCD_TIMING} | quorumd dev --link ${link} | ${link} / etcd: median of the pairs' ratios (range) |`);
    console.log('|---|---:|---:|---:|');
    for (const [label, get, unit, digits] of rows) {
      const ratios = qs.map((x, i) => get(x) / get(es[i]!)).filter((v) => Number.isFinite(v));
      const ratio = label.startsWith('failed') || ratios.length === 0 ? '' : `${midMedian(ratios).toFixed(2)}× (${range(ratios, 2, '')}×)`;
      console.log(`| ${label} | ${range(es.map(get), digits, unit)} | ${range(qs.map(get), digits, unit)} | ${ratio} |`);
    }
  } catch (e) {
    failed = true;
    console.log(`  paired rounds (${link}) failed: ${(e as Error).message}\n  (data and logs kept in ${dirs.join(' and ')})`);
  } finally {
    for (const sys of started) await sys.stop();
    agent.destroy();
    if (!failed) for (const d of dirs) rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

/** The median, the mean of the middle two for an even count (pct's 50th is the lower one). */
function midMedian(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** JSON.stringify's replacer for the per-block and per-pair lines: numbers to two decimals (below 1: three, for CPU ms per write). */
const rnd = (_k: string, v: unknown) => (typeof v !== 'number' ? v : Math.abs(v) < 1 ? Math.round(v * 1000) / 1000 : Math.round(v * 100) / 100);

// ---------------------------------------------------------------------------

/**
 * What an empty `node` process costs on this machine (median of 7): the floor under every
 * quorumd process, the cold start's four and each CLI call's. NODE_EXTRA_CA_CERTS, when
 * set, makes Node 20 parse that file in every process before any JavaScript runs
 * (~40 ms of CPU for Debian's 144-certificate bundle on the 2-core x86-64 machine of
 * issue 14): said, and measured without it, so that a row is not blamed on quorumd.
 */
function nodeFloor(): string {
  const probe = (env: NodeJS.ProcessEnv) => {
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['-e', 'const u = process.cpuUsage(); process.stdout.write(String((u.user + u.system) / 1000))'], { encoding: 'utf8', env, timeout: 30_000 });
      wall.push(performance.now() - t0);
      cpu.push(Number(r.stdout));
    }
    return `${median(cpu).toFixed(0)} ms CPU, ${median(wall).toFixed(0)} ms wall`;
  };
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (!extra) return `an empty node process (node -e 0): ${probe(process.env)}`;
  const { NODE_EXTRA_CA_CERTS: _, ...without } = process.env;
  return `an empty node process (node -e 0): ${probe(process.env)} with NODE_EXTRA_CA_CERTS=${extra} as set here, ${probe(without)} without it (every quorumd process and CLI call pays the difference; the rows below are measured as set)`;
}

const haveEtcd = ONLY !== 'quorumd' && spawnSync('etcd', ['--version'], { encoding: 'utf8' }).status === 0;
if (ONLY !== 'quorumd' && !haveEtcd) {
  console.log('etcd not found: install Debian\'s etcd 3.4 for the side-by-side columns:\n  sudo apt-get install etcd-server etcd-client\n(measuring quorumd alone)');
}
const haveEtcdctl = haveEtcd && spawnSync('etcdctl', ['version'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } }).status === 0;
if (haveEtcd && !haveEtcdctl) console.log('etcdctl not found: etcd\'s CLI call is not timed (its cell stays empty); install it with\n  sudo apt-get install etcd-client');
// Not timed: a stale dist/ or a missing code cache would be the first block's start (_proc.ts prepareBin).
console.log(`quorumd: ${await prepareBin(ownBin, 'vs-etcd')}`);
if (COMPARE) console.log(`--compare ${COMPARE}: ${await prepareBin(join(COMPARE, 'bin', 'quorumd.js'), 'vs-etcd')}`);
console.log(ONLY_WRITES
  ? `vs-etcd --only-writes: ${ROUNDS} round(s), ${WRITES} sequential writes, ${CONC} clients × ${SECS} s, etcd heartbeat/election ${ETCD_TIMING} ms`
  : `vs-etcd: ${ROUNDS} round(s), ${WRITES} sequential writes, ${CONC} clients × ${SECS} s, ${KILLS} kills per round, idle window ${IDLE_S} s, etcd heartbeat/election ${ETCD_TIMING} ms`);
// The idle CPU row compares like with like only at the same heartbeat: say what each runs.
console.log(`quorumd dev runs the board defaults (daemon/config/schema.ts): Raft heartbeat 100 ms, election timeout 1000–2000 ms${timing![1] === '100' ? '' : ` — not etcd's heartbeat (${timing![1]} ms): the idle CPU row is then not at the same heartbeat (--etcd-timing 100/1000 for that)`}`);
console.log(`uptime: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
console.log(nodeFloor());
if (Q_NODE_OPTIONS) console.log(`quorumd processes run with NODE_OPTIONS=${Q_NODE_OPTIONS}`);
const etcdBlocks: Block[] = [];
const qBlocks: Record<string, Block[]> = Object.fromEntries(VARIANTS.map((l) => [l, []]));
for (let r = 0; r < ROUNDS; r++) {
  console.log(`round ${r + 1}/${ROUNDS}`);
  // Rotate which goes first, so none always meets another's leftovers.
  const all: string[] = [...(haveEtcd ? ['etcd'] : []), ...VARIANTS];
  const order = all.map((_, i) => all[(i + r) % all.length]!);
  for (const what of order) {
    let b: Block;
    try {
      b = what === 'etcd' ? await runBlock('etcd') : await runBlock('quorumd', what);
    } catch (e) {
      // One failed block (etcd not electing within 60 s at load 20+ happened) must not
      // lose the rounds measured so far: say so, and leave its cell empty.
      console.log(`  ${what}: block failed: ${(e as Error).message}`);
      b = failedBlock();
    }
    (what === 'etcd' ? etcdBlocks : qBlocks[what]!).push(b);
    const kind = what === 'etcd' ? 'etcd' : `quorumd ${what}`;
    console.log(`  ${kind}: ${JSON.stringify({ ...b, failoverMs: b.failoverMs.map((x) => Math.round(x)) }, rnd)}`);
  }
}
printTable(etcdBlocks, qBlocks);
if (haveEtcd && PAIRS > 0) {
  console.log(`\npaired rounds: etcd and quorumd side by side, ${PAIRS} pairs per link, the order swapped every pair`);
  for (const link of LINKS) await pairedRounds(link);
}
console.log(`\nuptime: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
process.exit(0);
