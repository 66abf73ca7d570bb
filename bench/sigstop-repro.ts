/**
 * Issue 12's repro on real processes: `quorumd dev` (3 nodes, simulated relays), and
 * per try
 *   1. the repro as filed: the active leader gets SIGSTOP, 0.8 s later SIGCONT; then we
 *      wait (bounded) for an active leader again;
 *   2. the operator's confirm: the active leader gets SIGSTOP; once it has been silent
 *      for ALIVE_WINDOW_MS (a live node is never confirmed) and another node leads, that
 *      leader gets `POST /v1/fence/<stopped>/confirm` (what used to answer 500 although
 *      recorded); SIGCONT; wait for an active leader again.
 * Printed: tries, leader changes, node processes that exited (crashes the supervisor
 * restarted, fences that switched a rail off, other exits), the confirm answers by
 * status, and how long the cluster took to have an active leader again. Numbers only:
 * it never passes or fails (run it with `uptime` beside it: the load matters).
 *
 *   npm run bench -- sigstop-repro            (20 tries)
 *   npx tsx bench/sigstop-repro.ts [tries] [stopMs]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startDev, type DevCluster } from '../daemon/dev.ts';
import { call } from '../daemon/client/http.ts';
import { ALIVE_WINDOW_MS } from '../daemon/runtime/leader-fencing.ts';
import { freeBasePort } from '../test/helpers/ports.ts';

const tries = Number(process.argv[2] ?? 20);
const stopMs = Number(process.argv[3] ?? 800);
if (!Number.isInteger(tries) || tries < 1 || tries > 1000) throw new Error(`tries: expected an integer 1..1000, got ${process.argv[2]}`);
if (!Number.isFinite(stopMs) || stopMs < 0 || stopMs > 60_000) throw new Error(`stopMs: expected 0..60000, got ${process.argv[3]}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A signal to a node process that may be gone meanwhile (a fence switched its rail off: SIGKILL). */
function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

interface Status {
  name: string;
  role: string;
  term: number;
  active: boolean;
}

async function statuses(dev: DevCluster, token: string, skip?: string): Promise<Status[]> {
  const rs = await Promise.all(dev.nodes.filter((n) => n.name !== skip).map((n) => call(n.url, 'GET', '/v1/status', { token, timeoutMs: 800 }).then((r) => (r.status === 200 ? { ...(JSON.parse(r.body.toString()) as Omit<Status, 'name'>), name: n.name } : undefined), () => undefined)));
  return rs.filter((r): r is Status => r !== undefined);
}

/** The one active leader (polled, bounded), or undefined; `all`: only once every node answers. */
async function activeLeader(dev: DevCluster, token: string, maxMs: number, all = false): Promise<Status | undefined> {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    const st = await statuses(dev, token);
    const act = st.filter((s) => s.active);
    if (act.length === 1 && (!all || st.length === dev.nodes.length)) return act[0];
    await sleep(50);
  }
  return undefined;
}

async function main(): Promise<void> {
  let printed = '';
  const base = await freeBasePort(3);
  const dev = await startDev({ nodes: 3, engine: 'raft', basePort: base, handleSignals: false, jobs: [], out: (s) => (printed += s), progress: () => {} });
  const token = readFileSync(dev.tokenFile, 'utf8').trim();
  const exitsBefore = () => (printed.match(/\) exited \(/g) ?? []).length;
  const confirms = new Map<string, number>();
  const recover: number[] = [];
  let leaderChanges = 0;
  const fenced = { repro: 0, confirm: 0 };
  let noLeader = 0;
  const load0 = loadavg()[0]!;
  try {
    for (let t = 1; t <= tries; t++) {
      // 1. The repro as filed (every node up first: a node a fence switched off comes back after powerOnAfterMs).
      let L = await activeLeader(dev, token, 60_000, true);
      let rails = dev.railLog.length;
      if (!L) {
        noLeader++;
        continue;
      }
      let pid = dev.nodes.find((n) => n.name === L!.name)!.child?.pid;
      if (pid === undefined) continue;
      signal(pid, 'SIGSTOP');
      await sleep(stopMs);
      signal(pid, 'SIGCONT');
      let t0 = performance.now();
      let A = await activeLeader(dev, token, 60_000);
      if (!A) noLeader++;
      else {
        recover.push(performance.now() - t0);
        if (A.name !== L.name || A.term !== L.term) leaderChanges++;
      }
      fenced.repro += dev.railLog.slice(rails).filter((r) => !r.on).length;
      rails = dev.railLog.length;
      // 2. The operator's confirm of a stopped leader, sent to the node that leads now.
      L = A ?? (await activeLeader(dev, token, 60_000));
      if (!L) continue;
      pid = dev.nodes.find((n) => n.name === L!.name)!.child?.pid;
      if (pid === undefined) continue;
      const stoppedAt = performance.now();
      signal(pid, 'SIGSTOP');
      let answer = 'no other leader';
      try {
        const end = stoppedAt + 10_000;
        while (performance.now() < end) {
          const other = (await statuses(dev, token, L.name)).find((s) => s.role === 'leader');
          if (!other) {
            await sleep(20);
            continue;
          }
          // Silent for the window, and led for the window too (a leader judges silence
          // only over time it spent listening, daemon/runtime/leader-fencing.ts): it
          // leads since now at the latest, and the stop came before now.
          await sleep(ALIVE_WINDOW_MS + 20);
          const url = dev.nodes.find((n) => n.name === other.name)!.url;
          const r = await call(url, 'POST', `/v1/fence/${L.name}/confirm`, { token, timeoutMs: 5000 });
          answer = String(r.status);
          if (r.status !== 200) answer += ` ${r.body.toString().trim().slice(0, 160)}`;
          break;
        }
      } finally {
        if (!signal(pid, 'SIGCONT')) answer += ' (the stopped node was killed by a fence meanwhile)';
      }
      confirms.set(answer, (confirms.get(answer) ?? 0) + 1);
      t0 = performance.now();
      A = await activeLeader(dev, token, 60_000);
      if (!A) noLeader++;
      else recover.push(performance.now() - t0);
      fenced.confirm += dev.railLog.slice(rails).filter((r) => !r.on).length;
      process.stdout.write(`try ${t}/${tries}: exits so far ${exitsBefore() + dev.crashes.length}, confirm ${answer.split(' ')[0]}\n`);
    }
  } finally {
    await dev.stop();
  }
  recover.sort((a, b) => a - b);
  const pct = (p: number) => (recover.length === 0 ? NaN : recover[Math.min(recover.length - 1, Math.floor((p / 100) * recover.length))]!);
  console.log(`sigstop-repro: tries=${tries} stop_ms=${stopMs} leader_changes=${leaderChanges} no_active_leader=${noLeader}`);
  console.log(`  exits: crashes=${dev.crashes.length} (restarted by the supervisor) fenced_off: in the repro ${fenced.repro}, in the confirm step ${fenced.confirm} other_exits=${exitsBefore()}${dev.crashes.length > 0 ? ` crash logs: ${[...new Set(dev.crashes.map((c) => c.logFile))].join(', ')}` : ''}`);
  console.log(`  confirm on the leader: ${[...confirms].map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  console.log(`  active leader again after SIGCONT: p50=${pct(50).toFixed(0)}ms p90=${pct(90).toFixed(0)}ms max=${(recover.at(-1) ?? NaN).toFixed(0)}ms (n=${recover.length})`);
  console.log(`  load average (1 min) at start ${load0.toFixed(2)}, at end ${loadavg()[0]!.toFixed(2)}`);
  if (dev.crashes.length > 0) console.log(printed.split('\n').filter((l) => l.includes('crashed')).join('\n'));
}

await main();
