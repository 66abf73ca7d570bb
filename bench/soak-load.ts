/**
 * Issue 12 point 4: no election without a fault on a loaded board. A 3-node `quorumd
 * dev` cluster (daemon/dev.ts startDev: the embedded broker and the relay supervisor in
 * this process, the nodes as child processes, default timings, simulated relays and the
 * demo job, as a user gets it) runs beside N busy-loop processes (default 4), and every
 * few seconds one random node is stopped for 200 ms (SIGSTOP, then SIGCONT): a GC
 * pause, a slow SD card, a preempted process. Every node's /v1/status is polled; the
 * bench prints every term change it sees, the total, leader changes, node exits, and
 * the load average. Goal: 0 term changes. Numbers depend on the machine and its load:
 * compare runs on the same machine.
 *
 *   npm run bench -- soak-load                        10 minutes, 4 busy loops
 *   node --import tsx bench/soak-load.ts [--minutes 10] [--busy 4] [--stall-ms 200] [--every-s 3]
 *
 * Only 127.0.0.1; every loop is bounded by the duration; everything started here (the
 * dev cluster, the busy loops) is stopped at the end, also on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { startDev, type DevCluster } from '../daemon/dev.ts';
import { call } from '../daemon/client/http.ts';
import { freeBasePort } from '../test/helpers/ports.ts';

function opt(name: string, def: number, min: number, max: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < min || v > max) {
    console.error(`soak-load: --${name}: expected a number ${min}..${max}, got ${process.argv[i + 1] ?? '(nothing)'}`);
    process.exit(2);
  }
  return v;
}
const MINUTES = opt('minutes', 10, 0.1, 24 * 60);
const BUSY = opt('busy', 4, 0, 64);
const STALL_MS = opt('stall-ms', 200, 0, 10_000);
const EVERY_S = opt('every-s', 3, 0.2, 3600);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
const busy: ChildProcess[] = [];
let dev: DevCluster | undefined;
const stopped = new Set<number>();
let cleaning: Promise<void> | undefined;

async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    for (const b of busy) b.kill('SIGKILL');
    await dev?.stop();
  })();
  return cleaning;
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
process.on('SIGTERM', () => void cleanup().then(() => process.exit(143)));

interface Status {
  role: string;
  term: number;
  leader: string | null;
}

async function status(url: string): Promise<Status | undefined> {
  try {
    const r = await call(url, 'GET', '/v1/status', { timeoutMs: 2000 });
    if (r.status !== 200) return undefined;
    return JSON.parse(r.body.toString()) as Status;
  } catch {
    return undefined;
  }
}

try {
  for (let i = 0; i < BUSY; i++) busy.push(spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  await sleep(BUSY > 0 ? 2000 : 0); // let the load show in the load average a little
  const base = await freeBasePort(3);
  dev = await startDev({ nodes: 3, engine: 'raft', basePort: base, handleSignals: false, out: () => {}, progress: () => {}, readyTimeoutMs: 120_000 });
  delete process.env.QUORUMD_API_TOKEN_FILE;
  process.env.QUORUMD_DATA_DIR = dev.dir;
  const cluster = dev;
  console.log(`quorumd dev: 3 nodes (default timings) in ${cluster.dir}; ${BUSY} busy loops; a ${STALL_MS} ms SIGSTOP of a random node every ~${EVERY_S} s; ${MINUTES} min; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const pidsAtStart = cluster.nodes.map((n) => n.child?.pid);
  const first = await Promise.all(cluster.nodes.map((n) => status(n.url)));
  let maxTerm = Math.max(0, ...first.map((s) => s?.term ?? 0));
  const startTerm = maxTerm;
  let lastLeader = first.find((s) => s?.role === 'leader') ? cluster.nodes[first.findIndex((s) => s?.role === 'leader')]!.name : undefined;
  const changes: string[] = [];
  let leaderChanges = 0;
  let polls = 0;
  let pollFailures = 0;
  let stalls = 0;
  const loads: number[] = [];
  const endAt = t0 + MINUTES * 60_000;

  const poller = (async () => {
    while (performance.now() < endAt) {
      const st = await Promise.all(cluster.nodes.map((n) => status(n.url)));
      polls++;
      pollFailures += st.filter((s) => s === undefined).length;
      for (const [i, s] of st.entries()) {
        if (!s) continue;
        if (s.term > maxTerm) {
          changes.push(`  t=${secs()} s: term ${maxTerm} → ${s.term} (seen on ${cluster.nodes[i]!.name}, role ${s.role}, leader ${s.leader ?? 'none'}); load ${loadavg()[0]!.toFixed(2)}`);
          console.log(changes.at(-1));
          maxTerm = s.term;
        }
        if (s.role === 'leader' && s.term === maxTerm && cluster.nodes[i]!.name !== lastLeader) {
          if (lastLeader !== undefined) leaderChanges++;
          lastLeader = cluster.nodes[i]!.name;
        }
      }
      await sleep(250);
    }
  })();

  const staller = (async () => {
    while (performance.now() < endAt) {
      await sleep(EVERY_S * 1000 * (0.5 + Math.random()));
      if (performance.now() >= endAt || STALL_MS === 0) break;
      const n = cluster.nodes[Math.floor(Math.random() * cluster.nodes.length)]!;
      const pid = n.child?.pid;
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGSTOP');
        stopped.add(pid);
        stalls++;
        await sleep(STALL_MS);
      } finally {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          /* exited meanwhile */
        }
        stopped.delete(pid);
      }
    }
  })();

  const reporter = (async () => {
    while (performance.now() < endAt) {
      await sleep(Math.min(30_000, Math.max(1000, endAt - performance.now())));
      const l = loadavg();
      loads.push(l[0]!);
      console.log(`  t=${secs()} s: term changes ${maxTerm - startTerm}, stalls ${stalls}, load ${l.map((x) => x.toFixed(2)).join(' ')}`);
    }
  })();

  await Promise.all([poller, staller, reporter]);
  const exits = cluster.nodes.filter((n, i) => n.child?.pid !== pidsAtStart[i]).map((n) => n.name);
  console.log(`duration ${(MINUTES * 60).toFixed(0)} s, ${BUSY} busy loops, ${stalls} stalls of ${STALL_MS} ms`);
  console.log(`term changes: ${maxTerm - startTerm} (term ${startTerm} → ${maxTerm}); leader changes: ${leaderChanges}; nodes whose process changed (exited/restarted): ${exits.length ? exits.join(', ') : 'none'}`);
  console.log(`status polls: ${polls} rounds, ${pollFailures} unanswered`);
  if (loads.length) console.log(`load average (1 min) over the run: min ${Math.min(...loads).toFixed(2)}, mean ${(loads.reduce((a, b) => a + b, 0) / loads.length).toFixed(2)}, max ${Math.max(...loads).toFixed(2)}`);
} finally {
  await cleanup();
}
process.exit(0);
