/**
 * Raft vs bully vs Multi-Paxos vs ZAB in the whole-cluster simulator, under the same link model: the MQTT
 * broker model's defaults (latency 1–5 ms, no loss), 5 boards, default options of each
 * engine, the same World seeds. Each trial: wait until every board agrees on one
 * leader, idle 1 s (idle traffic measured there), then cut the leader's power or crash
 * its process, and measure until every live board knows the same new leader:
 *   - failover ms (fault → the last live board names the new leader);
 *   - frames and bytes sent by all boards in that window: frame bytes (tag included,
 *     before link framing) and "wire" bytes with the MQTT PUBLISH framing added
 *     (fixed header + topic `quorumd/<cluster>/to/<id>`; QoS 0, no packet id).
 * Power cut: the broker notices only after the keepalive (no Last Will in time), so
 * this is failure detection by the engines' own timeouts. Crash: the kernel closes
 * the socket and the Last Will arrives after one latency (peer-gone → campaign).
 * The old leader comes back before the next trial.
 *
 *   npx tsx bench/engines.ts [trials] [--engines raft,bully,paxos,zab]
 *
 * bully, paxos and zab run on the engine runtime (daemon/runtime/engine-node.ts), raft
 * on its own; each with its defaults.
 */
import { cluster, pct, type Engine } from './_engine-world.ts';

function run(engine: Engine, how: 'power' | 'crash', trials: number, n = 5) {
  const fo: number[] = [];
  const frames: number[] = [];
  const bytes: number[] = [];
  const wire: number[] = [];
  let idleFrames = 0;
  let idleBytes = 0;
  let idleMs = 0;
  let failed = 0;
  // A few worlds, many trials each: seeds vary the latencies and timeouts.
  const perWorld = Math.max(1, Math.ceil(trials / 5));
  for (let w = 0; w < 5 && fo.length + failed < trials; w++) {
    const c = cluster(engine, 1000 + w, n);
    c.world.runUntil(() => c.agreed() !== undefined, 10_000);
    for (let t = 0; t < perWorld && fo.length + failed < trials; t++) {
      if (!c.world.runUntil(() => c.agreed() !== undefined, 10_000)) { failed++; continue; }
      const f0 = { ...c.count };
      c.world.run(1000);
      idleFrames += c.count.frames - f0.frames;
      idleBytes += c.count.bytes - f0.bytes;
      idleMs += 1000;
      const L = c.agreed();
      if (L === undefined) { failed++; continue; }
      const before = { ...c.count };
      const t0 = c.world.nowMs;
      if (how === 'power') c.world.board(L).setMains(false);
      else c.world.board(L).crashProcess(3000); // restarts 3 s later (after the measurement)
      const ok = c.world.runUntil(() => {
        const a = c.agreed();
        return a !== undefined && a !== L;
      }, 10_000);
      if (!ok) { failed++; continue; }
      fo.push(c.world.nowMs - t0);
      frames.push(c.count.frames - before.frames);
      bytes.push(c.count.bytes - before.bytes);
      wire.push(c.count.wire - before.wire);
      // Bring the old leader back (power on / restart) for the next trial.
      if (how === 'power') c.world.board(L).setMains(true);
      c.world.run(6000);
    }
  }
  const f = (x: number) => Math.round(x);
  console.log(
    `${engine.padEnd(5)} ${how.padEnd(5)} n=${n} trials=${fo.length} failed=${failed}  failover p50=${f(pct(fo, 50))} p99=${f(pct(fo, 99))} max=${f(Math.max(...fo))} ms` +
      `  msgs p50=${pct(frames, 50)} max=${Math.max(...frames)}  bytes p50=${pct(bytes, 50)} (mqtt ${pct(wire, 50)})  max=${Math.max(...bytes)} (mqtt ${Math.max(...wire)})` +
      `  idle ${f((idleFrames * 1000) / idleMs)} msgs/s ${f((idleBytes * 1000) / idleMs)} B/s`,
  );
}

const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !(all[i - 1] ?? '').startsWith('--'));
const trials = Number(positional[0] ?? 100);
const ei = process.argv.indexOf('--engines');
const engines = (ei >= 0 ? process.argv[ei + 1] ?? '' : 'raft,bully,paxos,zab').split(',') as Engine[];
if (engines.some((e) => !['raft', 'bully', 'paxos', 'zab'].includes(e))) {
  console.error(`bench/engines: --engines expects a list of raft, bully, paxos, zab; got ${engines.join(',')}`);
  process.exit(2);
}
if (!Number.isInteger(trials) || trials < 1 || trials > 100_000) {
  console.error(`bench/engines: trials must be an integer 1..100000, got ${process.argv[2]}`);
  process.exit(2);
}
for (const how of ['power', 'crash'] as const) {
  for (const engine of engines) run(engine, how, trials);
}
