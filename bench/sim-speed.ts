/**
 * Simulator speed: virtual time / wall time for a whole 5-node cluster (NodeRuntime,
 * real codec + HMAC on every frame, durable log on the flash model, invariant checks
 * after every step) at rising client load, through the same runSeed as `quorumd sim`
 * (linearizability check excluded: it is measured separately below).
 *
 *   npx tsx bench/sim-speed.ts
 */
import { runSeed } from '../daemon/sim/cluster.ts';
import { parseSimOptions } from '../daemon/sim/options.ts';
import { checkLinearizable } from '../src/lin/index.ts';

const cfg = parseSimOptions({ seed: 1, nodes: 5, time: '60s', faults: '' });
runSeed(cfg, 99, { skipLin: true, workload: { clients: 2 } }); // warm-up (JIT)
for (const clients of [0, 1, 4, 16]) {
  const r = runSeed(cfg, 1, { skipLin: true, workload: { clients, thinkMinMs: 0, thinkMaxMs: 10 } });
  console.log(
    `5 nodes, ${String(clients).padStart(2)} clients: ${(r.virtualMs / r.wallMs).toFixed(0)}x real time ` +
      `(${(r.virtualMs / 1000).toFixed(0)} s virtual in ${(r.wallMs / 1000).toFixed(2)} s; ${r.commits} entries, ${r.ops} ops)`,
  );
}
const faulty = parseSimOptions({ seed: 1, nodes: 5, time: '60s', faults: 'partition,crash,power,loss,reorder,clock,disk' });
const t0 = performance.now();
let ops = 0;
let hist = 0;
let linMs = 0;
for (let s = 1; s <= 5; s++) {
  const r = runSeed(faulty, s, { skipLin: true });
  ops += r.ops;
  hist += r.historyOps;
}
const wall = performance.now() - t0;
console.log(`5 nodes, all faults, default workload (4 clients): ${((5 * 60_000) / wall).toFixed(0)}x real time over 5 seeds (${ops} ops)`);
{
  // The lin check on its own, for one default seed's history.
  const r = runSeed(faulty, 1, { skipLin: true });
  void r;
  const t = performance.now();
  const full = runSeed(faulty, 1);
  linMs = performance.now() - t;
  console.log(`one seed with the lin check: ${(linMs / 1000).toFixed(2)} s wall (${full.historyOps} ops, lin=${full.lin}); history ops/seed ≈ ${(hist / 5).toFixed(0)}`);
  void checkLinearizable;
}
