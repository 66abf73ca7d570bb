/**
 * The daemon's acceptance numbers on real processes (issue 5): one `quorumd broker`
 * and three `quorumd start` on loopback, fsync on (FsStorage in a temp dir).
 *
 *   - failover: SIGKILL the leader → first committed write, over K kills, with the
 *     MQTT will hint (raft.campaignOnPeerGone: true) and without (election timeout only).
 *     A prober issues a PUT every 5 ms to a random surviving node (150 ms timeout each,
 *     not waiting for earlier ones); the first 200 ends the trial.
 *   - RSS of a node idle and under load (/proc/<pid>/status VmRSS).
 *   - idle CPU% of the 3 node processes over a window (/proc/<pid>/stat utime+stime).
 *   - sequential write latency p50/p99 (one client, to the leader) and writes/s with 64
 *     concurrent clients (to random nodes; followers forward).
 *
 *   npx tsx bench/daemon.ts [kills=10] [idleSeconds=30]
 *   npx tsx bench/daemon.ts --history run.jsonl   # also record a workload history
 *   QUORUMD_BENCH_FAILOVER_ONLY=1 npx tsx bench/daemon.ts 10   # failover numbers only
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { call } from '../daemon/client/http.ts';
import { historyToJsonLines, runWorkload } from '../daemon/client/workload.ts';
import { checkLinearizable } from '../src/lin/index.ts';
import { ProcCluster, type ProcNode } from '../test/daemon/e2e/proc-cluster.ts';

const args = process.argv.slice(2);
const hIdx = args.indexOf('--history');
const historyFile = hIdx >= 0 ? args.splice(hIdx, 2)[1] : undefined;
const KILLS = Number(args[0] ?? 10);
const IDLE_S = Number(args[1] ?? 30);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

async function failover(withHint: boolean): Promise<number[]> {
  const c = await ProcCluster.start(3, withHint ? '' : 'raft:\n  campaignOnPeerGone: false\n');
  const out: number[] = [];
  try {
    await c.waitLeader(30_000);
    for (let k = 0; k < KILLS; k++) {
      const L = await c.waitLeader(20_000);
      const others = c.nodes.filter((n) => n !== L);
      let done = false;
      let t1 = 0;
      const t0 = performance.now();
      c.kill(L, 'SIGKILL');
      let i = 0;
      while (!done && performance.now() - t0 < 15_000) {
        const node = others[i++ % others.length]!;
        void call(node.url, 'PUT', '/v1/kv/probe', { body: String(i), timeoutMs: 150 }).then(
          (r) => {
            if (r.status === 200 && !done) {
              done = true;
              t1 = performance.now();
            }
          },
          () => undefined,
        );
        await sleep(5);
      }
      if (done) out.push(t1 - t0);
      else console.log(`  kill ${k + 1}: no committed write within 15 s`);
      await sleep(300);
      c.spawn(L);
      await c.waitFor(async () => {
        try {
          const r = await call(L.url, 'GET', '/v1/status', { timeoutMs: 300 });
          const s = JSON.parse(r.body.toString()) as { leader: string | null; appliedIndex: number };
          return s.leader !== null;
        } catch {
          return false;
        }
      }, 20_000, `${L.name} back and following`);
      await sleep(700);
    }
  } finally {
    await c.stop();
  }
  return out;
}

async function perf(): Promise<void> {
  const c = await ProcCluster.start(3);
  try {
    const L = await c.waitLeader(30_000);
    await sleep(3000);
    const pids = c.nodes.map((n) => n.child!.pid!);
    const idleRss = pids.map(rssMiB);
    const hz = 100; // USER_HZ on Linux
    const before = pids.map(cpuTicks);
    const w0 = performance.now();
    await sleep(IDLE_S * 1000);
    const secs = (performance.now() - w0) / 1000;
    const cpu = pids.map((p, i) => ((cpuTicks(p) - before[i]!) / hz / secs) * 100);
    console.log(`idle RSS per node: ${idleRss.map((x) => x.toFixed(1)).join(', ')} MiB`);
    console.log(`idle CPU over ${secs.toFixed(0)} s: ${cpu.map((x) => x.toFixed(2)).join(' + ')} = ${cpu.reduce((a, b) => a + b, 0).toFixed(2)} % of one core (3 nodes)`);

    // Sequential latency to the leader.
    const lat: number[] = [];
    for (let i = 0; i < 500; i++) {
      const t = performance.now();
      const r = await call(L.url, 'PUT', `/v1/kv/seq${i % 10}`, { body: 'x'.repeat(64) });
      if (r.status !== 200) throw new Error(`sequential put: ${r.status}`);
      lat.push(performance.now() - t);
    }
    console.log(`sequential write latency (leader, fsync on): p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms`);

    // 64 concurrent clients for 5 s.
    for (const [label, target] of [['leader', [L]], ['random nodes', c.nodes]] as Array<[string, ProcNode[]]>) {
      let n = 0;
      let errors = 0;
      const lats: number[] = [];
      const end = performance.now() + 5000;
      let peakRss = 0;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, ...pids.map(rssMiB))), 250);
      await Promise.all(
        Array.from({ length: 64 }, async (_, k) => {
          while (performance.now() < end) {
            const t = performance.now();
            const node = target[(k + n) % target.length]!;
            try {
              const r = await call(node.url, 'PUT', `/v1/kv/load${k}`, { body: 'y'.repeat(64), timeoutMs: 5000 });
              if (r.status === 200) {
                n++;
                lats.push(performance.now() - t);
              } else errors++;
            } catch {
              errors++;
            }
          }
        }),
      );
      clearInterval(sampler);
      console.log(`64 clients → ${label}: ${(n / 5).toFixed(0)} writes/s, p50 ${pct(lats, 50).toFixed(1)} ms, p99 ${pct(lats, 99).toFixed(1)} ms, errors ${errors}; peak RSS under load ${peakRss.toFixed(1)} MiB`);
    }

    if (historyFile) {
      const { history, counts } = await runWorkload({ nodes: c.nodes.map((x) => x.url), keys: ['a', 'b', 'c'], clients: 8, until: performance.now() + 5000, random: Math.random });
      writeFileSync(historyFile, historyToJsonLines(history));
      const r = checkLinearizable(history);
      console.log(`history: ${history.length} ops → ${historyFile} (${JSON.stringify(counts)}); linearizable: ${String(r.ok)}`);
    }
  } finally {
    await c.stop();
  }
}

const fmt = (xs: number[]) =>
  xs.length ? `n=${xs.length} median ${pct(xs, 50).toFixed(0)} ms, p90 ${pct(xs, 90).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}` : 'no data';

if (!process.env.QUORUMD_BENCH_FAILOVER_ONLY) await perf();
const withHint = await failover(true);
console.log(`failover with will hint   (SIGKILL leader → first committed write): ${fmt(withHint)}  [${withHint.map((x) => x.toFixed(0)).join(' ')}]`);
const without = await failover(false);
console.log(`failover without the hint (election timeout 1000-2000 ms):          ${fmt(without)}  [${without.map((x) => x.toFixed(0)).join(' ')}]`);
process.exit(0);
