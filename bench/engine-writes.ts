/**
 * Writes in the link model of bench/engines.ts (the whole-cluster simulator's MQTT
 * broker model, latency 1–5 ms, 5 boards, each engine's defaults, durable state on
 * simulated flash): for raft, paxos and zab, 16 clients each keep one 40-byte put
 * outstanding through the leader's API for 10 s of virtual time, after the cluster
 * agreed on a leader and idled 1 s. Reported per engine (3 worlds, summed):
 *   - entries/s: acknowledged puts per second of virtual time;
 *   - messages and bytes per committed write: every frame every board sent in the
 *     window (heartbeats included) ÷ acknowledged puts; bytes with the tag, before link
 *     framing, and with the MQTT PUBLISH framing ("mqtt");
 *   - client latency p50 / p99 (virtual ms).
 * Virtual time: the figures do not depend on the machine's load. Bully has no
 * replicated log (no writes).
 *
 *   npx tsx bench/engine-writes.ts [--engines raft,paxos,zab] [--seconds 10]
 */
import { cluster, pct, type Engine } from './_engine-world.ts';

const CLIENTS = 16;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? '') : dflt;
}
const engines = arg('--engines', 'raft,paxos,zab').split(',') as Engine[];
if (engines.some((e) => !['raft', 'paxos', 'zab'].includes(e))) {
  console.error(`bench/engine-writes: --engines expects a list of raft, paxos, zab; got ${engines.join(',')}`);
  process.exit(2);
}
const seconds = Number(arg('--seconds', '10'));
if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600) {
  console.error(`bench/engine-writes: --seconds expects an integer 1..600, got ${arg('--seconds', '')}`);
  process.exit(2);
}

for (const engine of engines) {
  let acked = 0;
  let failed = 0;
  let frames = 0;
  let bytes = 0;
  let wire = 0;
  let virtualMs = 0;
  const lat: number[] = [];
  for (let w = 0; w < 3; w++) {
    const c = cluster(engine, 2000 + w, 5);
    if (!c.world.runUntil(() => c.agreed() !== undefined, 10_000)) throw new Error(`${engine} world ${w}: no leader within 10 s`);
    c.world.run(1000);
    const L = c.agreed();
    const leader = c.live().find((r) => r.id === L);
    if (!leader?.put) throw new Error(`${engine} world ${w}: no leader with a KV API`);
    const before = { ...c.count };
    const t0 = c.world.nowMs;
    const end = t0 + seconds * 1000;
    let stop = false;
    let n = 0;
    const value = new Uint8Array(40).fill(120);
    const issue = (client: number) => {
      if (stop) return;
      const at = c.world.nowMs;
      leader.put!(`k${client}.${n++ % 64}`, value, {}, (r: { status: number; error?: string }) => {
        if (r.status !== 200 && failed === 0) console.log(`${engine}: first refusal: ${r.status} ${r.error ?? ''}`);
        if (stop) return;
        if (r.status === 200) {
          acked++;
          lat.push(c.world.nowMs - at);
        } else failed++;
        // Next put on a later turn (an answer may come synchronously); after a refusal, 10 ms later.
        c.world.sched.after(r.status === 200 ? 0 : 10_000, () => issue(client));
      });
    };
    for (let k = 0; k < CLIENTS; k++) issue(k);
    c.world.runUntil(() => c.world.nowMs >= end, seconds * 1000 + 1000);
    stop = true;
    virtualMs += c.world.nowMs - t0;
    frames += c.count.frames - before.frames;
    bytes += c.count.bytes - before.bytes;
    wire += c.count.wire - before.wire;
  }
  const per = (x: number) => (acked > 0 ? x / acked : NaN);
  console.log(
    `${engine.padEnd(5)} 5 boards, ${CLIENTS} clients, 40-byte puts: ${((acked * 1000) / virtualMs).toFixed(0)} entries/s (virtual; ${acked} acked, ${failed} refused)` +
      `  per committed write: ${per(frames).toFixed(2)} msgs, ${per(bytes).toFixed(0)} B (mqtt ${per(wire).toFixed(0)} B)` +
      `  latency p50 ${pct(lat, 50).toFixed(1)} ms p99 ${pct(lat, 99).toFixed(1)} ms`,
  );
}
