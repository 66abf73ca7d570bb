/**
 * Idle CPU per member over time, leader and followers apart (issue 14): quorumd dev
 * clusters (one per variant) and a 3-member etcd cluster run side by side, all started
 * together, so that every variant is measured in the same windows at the same load (an
 * A/B at the same time instead of blocks one after another on a machine whose load
 * moves). Nothing is written to the clusters: they only exchange heartbeats (and
 * quorumd dev's demo job, when on).
 *
 * Why windows over minutes and not one window after the start: a node is a V8 process,
 * and V8 compiles the heartbeat path with its optimizing compiler only after it ran hot
 * for a while. In the first minutes an idle node spends a good part of its CPU in the
 * interpreter, the baseline code and the compiler (perf: ~15 % of a follower's samples
 * in TurboFan at one minute, ~9 % at four); a follower's idle CPU about halves over its
 * first four minutes. An etcd member (Go, compiled ahead of time) has no such phase.
 * The summary gives both: the first window and the windows after --warmup seconds.
 *
 *   npx tsx bench/idle-cpu.ts [--links mqtt,tcp] [--jobs on|off|both] [--warmup 240]
 *                             [--window 30] [--windows 6] [--etcd-timing 100/1000]
 *                             [--compare /path/to/other/checkout]
 *                             [--node-flags '--single-threaded-gc|--interrupt-budget=16384']
 *
 * --jobs: quorumd dev's demo job (a shell command every 10 s on the leader, its slot
 * claimed through the log) on, off (`--no-jobs`), or one cluster each.
 * --compare: the same variants from another checkout (its dist/ is built when stale, as
 * bin/quorumd.js does), in the same windows: an A/B of a change.
 * --node-flags: one more cluster per set of flags (sets separated by |) for the nodes of
 * this checkout (QUORUMD_DEV_NODE_FLAGS, daemon/dev.ts), in the same windows: what a V8
 * flag does to idle CPU over the first minutes (earlier tier-up, GC threads) and to RSS.
 * Memory: VmRSS of each member at the end of the last window (median per system).
 * CPU: utime + stime of each member process from /proc/<pid>/stat, % of one core.
 * Roles are read at the end of each window (quorumd: /v1/status; etcd: its status
 * endpoint). Loopback only; every loop is bounded; everything started is stopped.
 */
import { cpuSeconds, devNoJobsArgs, findNodePids, freePorts, numberOption, userCommand } from './_proc.ts';
import { devNodeFlags } from '../daemon/dev.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
function num(name: string, dflt: number, min: number, max: number): number {
  return numberOption('idle-cpu', name, opt(name, String(dflt)), min, max);
}
const WARMUP_S = num('warmup', 240, 0, 3600);
const WINDOW_S = num('window', 30, 5, 600);
const WINDOWS = num('windows', 6, 1, 100);
const LINKS = opt('links', 'mqtt').split(',').map((x) => x.trim());
if (LINKS.length === 0 || LINKS.some((l) => l !== 'mqtt' && l !== 'tcp') || new Set(LINKS).size !== LINKS.length) {
  console.error(`idle-cpu: --links must be a list of mqtt and tcp, e.g. mqtt,tcp; got ${JSON.stringify(opt('links', 'mqtt'))}`);
  process.exit(2);
}
const JOBS = opt('jobs', 'on');
if (!['on', 'off', 'both'].includes(JOBS)) {
  console.error(`idle-cpu: --jobs must be on, off or both, got ${JSON.stringify(JOBS)}`);
  process.exit(2);
}
const ETCD_TIMING = opt('etcd-timing', '100/1000');
const timing = /^(\d+)\/(\d+)$/.exec(ETCD_TIMING);
if (!timing) {
  console.error(`idle-cpu: --etcd-timing must be <heartbeat ms>/<election ms>, e.g. 100/1000, got ${JSON.stringify(ETCD_TIMING)}`);
  process.exit(2);
}
const COMPARE = opt('compare', '');
if (COMPARE && !existsSync(join(COMPARE, 'bin', 'quorumd.js'))) {
  console.error(`idle-cpu: --compare must be a checkout of quorumd (with bin/quorumd.js), got ${JSON.stringify(COMPARE)}`);
  process.exit(2);
}
const NODE_FLAG_SETS = opt('node-flags', '').split('|').map((x) => x.trim()).filter((x) => x !== '');
for (const set of NODE_FLAG_SETS) {
  // The same check dev applies to QUORUMD_DEV_NODE_FLAGS, which is where each set goes.
  try {
    devNodeFlags(set);
  } catch (e) {
    console.error(`idle-cpu: --node-flags must be sets of node flags (--name or --name=value) separated by |, got ${JSON.stringify(set)}: ${(e as Error).message}`);
    process.exit(2);
  }
}
const root = join(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};


interface Member {
  name: string;
  pid: number;
}
interface Sys {
  label: string;
  members: Member[];
  /** Name of the leader now ('' when not known). */
  leader(): Promise<string>;
  procs: ChildProcess[];
  dir: string;
}

async function startEtcd(): Promise<Sys> {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-idle-cpu-etcd-'));
  const base = await freePorts(6, 'idle-cpu');
  const names = ['m1', 'm2', 'm3'];
  const initial = names.map((n, i) => `${n}=http://127.0.0.1:${base + 3 + i}`).join(',');
  const procs = names.map((n, i) =>
    spawn('etcd', [
      '--name', n, '--data-dir', join(dir, n),
      '--listen-client-urls', `http://127.0.0.1:${base + i}`, '--advertise-client-urls', `http://127.0.0.1:${base + i}`,
      '--listen-peer-urls', `http://127.0.0.1:${base + 3 + i}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${base + 3 + i}`,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `idle-cpu-${base}`,
      '--heartbeat-interval', timing![1]!, '--election-timeout', timing![2]!, '--log-level', 'warn',
    ], { stdio: 'ignore' }),
  );
  const members = names.map((name, i) => ({ name, pid: procs[i]!.pid! }));
  const status = async (i: number) => {
    const r = await fetch(`http://127.0.0.1:${base + i}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2000) });
    return (await r.json()) as { header: { member_id: string }; leader: string };
  };
  return {
    label: `etcd ${ETCD_TIMING}`,
    members,
    procs,
    dir,
    async leader() {
      for (let i = 0; i < 3; i++) {
        try {
          const s = await status(i);
          if (s.leader === s.header.member_id) return names[i]!;
        } catch {
          /* next */
        }
      }
      return '';
    },
  };
}

async function startDev(checkout: string, label: string, link: string, jobs: boolean, nodeFlags = ''): Promise<Sys> {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-idle-cpu-dev-'));
  const base = await freePorts(14, 'idle-cpu'); // HTTP base+1..3, TCP links base+11..13 (daemon/dev.ts)
  const bin = join(checkout, 'bin', 'quorumd.js');
  const args = ['dev', '--base-port', String(base), '--data-dir', join(dir, 'd'), '--link', link];
  if (!jobs) args.push(...devNoJobsArgs(bin, dir));
  const env = nodeFlags ? { ...process.env, QUORUMD_DEV_NODE_FLAGS: nodeFlags } : process.env;
  const dev = spawn(...userCommand(bin, args), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  dev.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  dev.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  const t0 = Date.now();
  while (!/quorumd dev: \d+ nodes? running/.test(out) && Date.now() - t0 < 90_000 && dev.exitCode === null) await sleep(50);
  const members: Member[] = [1, 2, 3].map((k) => ({ name: `n${k}`, pid: 0 }));
  findNodePids(join(dir, 'd'), members);
  if (members.some((m) => m.pid === 0)) {
    dev.kill('SIGKILL');
    throw new Error(`idle-cpu: quorumd dev (${label}) did not start:\n${out.slice(-2000)}`);
  }
  const token = readFileSync(join(dir, 'd', 'api.token'), 'utf8').trim();
  return {
    label,
    members,
    procs: [dev],
    dir,
    async leader() {
      for (let k = 1; k <= 3; k++) {
        try {
          const r = await fetch(`http://127.0.0.1:${base + k}/v1/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) });
          const s = (await r.json()) as { role?: string };
          if (s.role === 'leader') return `n${k}`;
        } catch {
          /* next */
        }
      }
      return '';
    },
  };
}

async function stop(s: Sys): Promise<void> {
  await Promise.all(
    s.procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
          p.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
  rmSync(s.dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------

const haveEtcd = spawnSync('etcd', ['--version'], { encoding: 'utf8' }).status === 0;
const jobModes = JOBS === 'both' ? [true, false] : [JOBS === 'on'];
const checkouts: Array<[string, string]> = [[root, ''], ...(COMPARE ? ([[COMPARE, '@base']] as Array<[string, string]>) : [])];
console.log(`idle-cpu: windows of ${WINDOW_S} s; summary over the windows that start ≥ ${WARMUP_S} s after the clusters are up; quorumd dev at the board defaults (Raft heartbeat 100 ms), etcd ${ETCD_TIMING}`);
console.log(`uptime: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
const systems: Sys[] = [];
const cleanup = async () => {
  await Promise.all(systems.map(stop));
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
try {
  if (haveEtcd) systems.push(await startEtcd());
  else console.log('etcd not found (apt-get install etcd-server): quorumd alone');
  for (const [co, tag] of checkouts) for (const link of LINKS) for (const j of jobModes) systems.push(await startDev(co, `quorumd ${link}${j ? '' : ' no-jobs'}${tag}`, link, j));
  for (const flags of NODE_FLAG_SETS) for (const link of LINKS) for (const j of jobModes) systems.push(await startDev(root, `quorumd ${link}${j ? '' : ' no-jobs'} ${flags}`, link, j, flags));
  const t0 = Date.now();
  // Per system and member: [cpu %, was leader] per window.
  const rows = systems.map((s) => s.members.map(() => [] as Array<{ at: number; pct: number; leader: boolean }>));
  const lastWindowStart = WARMUP_S + WINDOWS * WINDOW_S;
  for (let w = 0; w < 1000 && (Date.now() - t0) / 1000 < lastWindowStart; w++) {
    const at = (Date.now() - t0) / 1000;
    const c0 = systems.map((s) => s.members.map((m) => cpuSeconds(m.pid)));
    const w0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const secs = (performance.now() - w0) / 1000;
    const c1 = systems.map((s) => s.members.map((m) => cpuSeconds(m.pid)));
    const leaders = await Promise.all(systems.map((s) => s.leader()));
    const parts = systems.map((s, i) =>
      `${s.label}: ${s.members
        .map((m, k) => {
          const pct = ((c1[i]![k]! - c0[i]![k]!) / secs) * 100;
          rows[i]![k]!.push({ at, pct, leader: leaders[i] === m.name });
          return `${m.name}${leaders[i] === m.name ? '*' : ''} ${pct.toFixed(2)}`;
        })
        .join(' ')}`,
    );
    console.log(`t=${at.toFixed(0).padStart(4)} s load ${loadavg()[0]!.toFixed(2)} | ${parts.join(' | ')}`);
  }
  const rss = (pid: number) => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
    } catch {
      return NaN;
    }
  };
  const rssAtEnd = systems.map((s) => median(s.members.map((m) => rss(m.pid))));
  console.log(`\n| system | first window: leader | first window: followers | after ${WARMUP_S} s: leader (median) | after ${WARMUP_S} s: followers (median) | after ${WARMUP_S} s: all members (median) | RSS at the end (median) |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  const f = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} %` : '–');
  systems.forEach((s, i) => {
    const all = rows[i]!.flat();
    const first = all.filter((r) => r.at === all[0]!.at);
    const late = all.filter((r) => r.at >= WARMUP_S);
    const pick = (rs: typeof all, leader: boolean) => median(rs.filter((r) => r.leader === leader).map((r) => r.pct));
    console.log(`| ${s.label} | ${f(pick(first, true))} | ${f(pick(first, false))} | ${f(pick(late, true))} | ${f(pick(late, false))} | ${f(median(late.map((r) => r.pct)))} | ${Number.isFinite(rssAtEnd[i]!) ? `${rssAtEnd[i]!.toFixed(1)} MiB` : '–'} |`);
  });
  console.log(`uptime: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
} finally {
  await cleanup();
}
