/**
 * Issue 12 point 4, failover on real processes with the board's default timings
 * (Raft heartbeat 100 ms, election timeout 1000–2000 ms, MQTT keepalive 5 s): one
 * `quorumd broker` and three `quorumd start` on 127.0.0.1 (test/daemon/e2e/proc-cluster.ts,
 * fsync on), K trials of each kind:
 *
 *   - kill:  SIGKILL the leader. The kernel closes its socket, the broker publishes its
 *            Last Will at once, and the followers campaign on it (campaignOnPeerGone).
 *   - silent: SIGSTOP the leader and leave it stopped: its socket stays open, no will
 *            comes before 1.5 × keepalive (7.5 s), so the followers find out by their
 *            election timeout — a power cut or a frozen board as the others see it.
 *            The stopped process is SIGKILLed after the trial.
 *
 * Measured: fault → the first write acknowledged (200) by a survivor. A prober sends a
 * PUT every 10 ms to the survivors in turn (1 s timeout each, not waiting for earlier
 * ones). The old leader is started again and follows before the next trial. Prints
 * p50/p99/max per kind and the load average; the simulator's figure for a silent power
 * cut comes from `quorumd sim --faults power` (failover_p50_ms / failover_p99_ms).
 *
 *   npm run bench -- failover-proc
 *   node --import tsx bench/failover-proc.ts [--kills 10] [--silent 10]
 */
import { loadavg } from 'node:os';
import { call } from '../daemon/client/http.ts';
import { ProcCluster, type ProcNode } from '../test/daemon/e2e/proc-cluster.ts';
import { percentile } from './_cluster.ts';

function opt(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0 || v > 1000) {
    console.error(`failover-proc: --${name}: expected an integer 0..1000, got ${process.argv[i + 1] ?? '(nothing)'}`);
    process.exit(2);
  }
  return v;
}
const KILLS = opt('kills', 10);
const SILENT = opt('silent', 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fault → first acknowledged write through a survivor (undefined: none within 20 s). */
async function firstWrite(others: ProcNode[], t0: number): Promise<number | undefined> {
  let t1: number | undefined;
  let i = 0;
  const pending: Array<Promise<unknown>> = [];
  while (t1 === undefined && performance.now() - t0 < 20_000) {
    const node = others[i++ % others.length]!;
    pending.push(
      call(node.url, 'PUT', '/v1/kv/probe', { body: String(i), timeoutMs: 1000 }).then(
        (r) => {
          if (r.status === 200 && t1 === undefined) t1 = performance.now();
        },
        () => undefined,
      ),
    );
    await sleep(10);
  }
  await Promise.all(pending);
  return t1 === undefined ? undefined : t1 - t0;
}

async function followerAgain(c: ProcCluster, n: ProcNode): Promise<void> {
  await c.waitFor(async () => {
    try {
      const r = await call(n.url, 'GET', '/v1/status', { timeoutMs: 1000 });
      const s = JSON.parse(r.body.toString()) as { leader: string | null; role: string };
      return s.leader !== null && s.role === 'follower';
    } catch {
      return false;
    }
  }, 30_000, `${n.name} back and following`);
}

async function trials(kind: 'kill' | 'silent', k: number): Promise<number[]> {
  const out: number[] = [];
  if (k === 0) return out;
  const c = await ProcCluster.start(3);
  try {
    await c.waitLeader(60_000);
    for (let t = 0; t < k; t++) {
      const L = await c.waitLeader(30_000);
      for (const n of c.nodes) if (n !== L) await followerAgain(c, n);
      await sleep(500);
      const others = c.nodes.filter((n) => n !== L);
      const t0 = performance.now();
      c.kill(L, kind === 'kill' ? 'SIGKILL' : 'SIGSTOP');
      const ms = await firstWrite(others, t0);
      if (ms === undefined) console.log(`  ${kind} ${t + 1}: no acknowledged write within 20 s (logs in ${c.dir})`);
      else out.push(ms);
      if (kind === 'silent') {
        const child = L.child;
        if (child) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGKILL');
          await Promise.race([exited, sleep(5000)]);
        }
      } else {
        await c.waitFor(async () => L.child === undefined, 5000, `${L.name} exited`);
      }
      c.spawn(L);
      await followerAgain(c, L);
    }
  } finally {
    await c.stop();
  }
  return out;
}

const fmt = (xs: number[]) => {
  if (xs.length === 0) return 'no data';
  const s = [...xs].sort((a, b) => a - b);
  return `n=${s.length} p50 ${percentile(s, 50).toFixed(0)} ms, p99 ${percentile(s, 99).toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ${s.at(-1)!.toFixed(0)}  [${xs.map((x) => x.toFixed(0)).join(' ')}]`;
};

const load0 = loadavg();
const kills = await trials('kill', KILLS);
const loadKill = loadavg();
console.log(`kill -9 the leader → first acknowledged write (will hint): ${fmt(kills)}; load ${loadKill.map((x) => x.toFixed(2)).join(' ')}`);
const silent = await trials('silent', SILENT);
const loadSilent = loadavg();
console.log(`silent (SIGSTOP the leader, no will) → first acknowledged write: ${fmt(silent)}; load ${loadSilent.map((x) => x.toFixed(2)).join(' ')}`);
console.log(`load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}`);
process.exit(0);
