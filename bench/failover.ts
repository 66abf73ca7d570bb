/**
 * Failover: leader crash → first new write committed, over many simulated crashes.
 * MQTT latency 1–5 ms (the broker model's default), election timeout 150–300 ms
 * (the engine's default). A writer starts at the crash and issues a put every 5 ms
 * through a random live data node (followers forward); the first 200 answer ends the
 * trial. The old leader restarts and catches up before the next trial.
 *
 *   npx tsx bench/failover.ts [trials]
 */
import { benchCluster, percentile } from './_cluster.ts';
import { Status } from '../daemon/runtime/index.ts';
import type { NodeId } from '../src/types.ts';

function run(label: string, ids: NodeId[], witnesses: NodeId[], trials: number, how: 'crash' | 'power'): void {
  const c = benchCluster({ seed: 42, ids, witnesses });
  const w = c.world;
  w.runUntil(() => c.leader() !== undefined, 10_000);
  w.run(500);
  const lat: number[] = [];
  let failed = 0;
  const wall0 = performance.now();
  const enc = new TextEncoder();
  let n = 0;
  for (let t = 0; t < trials; t++) {
    const L = c.leader();
    if (!L) {
      w.runUntil(() => c.leader() !== undefined, 10_000);
      continue;
    }
    const t0 = w.nowMs;
    if (how === 'crash') w.board(L.id).crashProcess(300);
    else w.board(L.id).setMains(false);
    let done = -1;
    const writer = () => {
      if (done >= 0) return;
      const nodes = c.liveData();
      if (nodes.length > 0) {
        const r = nodes[n++ % nodes.length]!;
        r.put('k', enc.encode(`v${n}`), {}, (res) => {
          if (res.status === Status.OK && done < 0) done = w.nowMs - t0;
        });
      }
      w.sched.after(5000, writer);
    };
    writer();
    w.runUntil(() => done >= 0, 10_000);
    if (done >= 0) lat.push(done);
    else failed++;
    if (how === 'power') {
      w.run(50);
      w.board(L.id).setMains(true);
    }
    // Let the old leader come back and catch up (and the writer's last answers drain).
    w.run(how === 'power' ? 1500 : 1200);
  }
  const wall = performance.now() - wall0;
  lat.sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(1);
  console.log(
    `failover ${label} (${how}, ${lat.length}/${trials} trials): p50=${f(percentile(lat, 50))}ms p90=${f(percentile(lat, 90))}ms ` +
      `p99=${f(percentile(lat, 99))}ms max=${f(lat[lat.length - 1] ?? NaN)}ms failed=${failed} ` +
      `(virtual ${(w.nowMs / 1000).toFixed(0)} s in ${(wall / 1000).toFixed(1)} s wall)`,
  );
}

const trials = Number(process.argv[2] ?? 1000);
run('5 nodes', [1, 2, 3, 4, 5], [], trials, 'crash');
run('3 nodes + witness', [1, 2, 3, 4], [4], trials, 'crash');
run('2 nodes + witness', [1, 2, 3], [3], Math.min(trials, 300), 'crash');
run('5 nodes', [1, 2, 3, 4, 5], [], Math.min(trials, 200), 'power');
