/**
 * Throughput of the node runtime (engine raft) in the simulator: entries committed per
 * second of virtual time (every proposal that arrives during an fsync rides in the next
 * Ready: batching is always on — the former Raft runtime's bench-only switch to turn it
 * off went with that runtime), and wire bytes per committed entry (every frame every
 * node hands to a link).
 * 5 nodes, MQTT latency 1–5 ms, fsync 2–10 ms (firmware-sim defaults); closed-loop
 * clients writing 16-byte values to 8 keys through random nodes.
 *
 *   npx tsx bench/throughput.ts
 */
import { benchCluster } from './_cluster.ts';
import { Status } from '../daemon/runtime/index.ts';

function run(clients: number, seconds: number): void {
  const c = benchCluster({ seed: 7, ids: [1, 2, 3, 4, 5] });
  const w = c.world;
  w.runUntil(() => c.leader() !== undefined, 10_000);
  w.run(500);
  const value = new Uint8Array(16).fill(0x61);
  let ok = 0;
  let n = 0;
  const stopAt = w.nowUs + seconds * 1e6;
  const client = () => {
    if (w.nowUs >= stopAt) return;
    const nodes = c.liveData();
    const r = nodes[n++ % nodes.length]!;
    r.put(`k${n % 8}`, value, {}, (res) => {
      if (res.status === Status.OK) ok++;
      w.sched.after(0, client);
    });
  };
  const L = c.leader()!;
  const commit0 = L.status().commitIndex;
  const bytes0 = c.wire.bytes;
  const frames0 = c.wire.frames;
  const syncs0 = [...c.rt.values()].reduce((a, r) => a + (r.status().storage?.fileSyncs ?? 0), 0);
  const wall0 = performance.now();
  for (let i = 0; i < clients; i++) client();
  w.run(seconds * 1000);
  const wall = performance.now() - wall0;
  const commits = L.status().commitIndex - commit0;
  const bytes = c.wire.bytes - bytes0;
  const frames = c.wire.frames - frames0;
  const syncs = [...c.rt.values()].reduce((a, r) => a + (r.status().storage?.fileSyncs ?? 0), 0) - syncs0;
  console.log(
    `clients=${String(clients).padStart(3)}: ${(commits / seconds).toFixed(0)} entries/s (${(ok / seconds).toFixed(0)} acked puts/s), ` +
      `${(bytes / Math.max(1, commits)).toFixed(0)} wire bytes/entry, ${(frames / Math.max(1, commits)).toFixed(1)} frames/entry, ` +
      `${(syncs / Math.max(1, commits)).toFixed(2)} fsyncs/entry (all nodes) [${(seconds * 1000 / wall).toFixed(0)}x real time]`,
  );
}

for (const clients of [1, 16, 64]) {
  run(clients, 5);
}
