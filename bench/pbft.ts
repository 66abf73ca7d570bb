/**
 * What PBFT costs, measured (numbers only; nothing passes or fails):
 *
 *   1. Authentication per message: Ed25519 sign and verify (node:crypto), against a
 *      per-pair MAC (HMAC-SHA256 truncated to 16 bytes, the frame tag's code) and a
 *      SHA-256 digest, on a 100-byte message (a PREPARE's signed content is ~50 bytes,
 *      a request with a KV put ~100). The Pi column is an estimate: a Pi Zero 2 W core
 *      (Cortex-A53, 1 GHz) is roughly 8–10× slower than this machine for this kind of
 *      code; it multiplies by 9. Measure on a board for real numbers.
 *   2. Messages and bytes per committed request, by message type, in a steady state
 *      without faults (4, 7 and 10 replicas; frames with the 16-byte tag, Ed25519).
 *   3. Latency in message delays (1 tick = 1 delay in the harness): submit at a backup
 *      (PBFT) or a follower (Raft) → the client's answer: f + 1 matching replies for
 *      PBFT, the leader's commit for Raft; and at the primary / leader.
 *   4. CPU per committed request through an in-memory 4-replica cluster (all replicas
 *      in this process, so divide by 4 for one board): PBFT with Ed25519, PBFT with the
 *      simulated signatures (protocol work alone), and Raft on the same harness style;
 *      every message goes through the codec with its tag (PBFT: encoded and decoded,
 *      Raft: encoded), no invariant checks.
 *      The throughput a board could sustain is bounded by 1 / (its share of that CPU).
 *
 *   npm run bench -- pbft        (or: npx tsx bench/pbft.ts [requests=400])
 *
 * Machine load matters for 1 and 4: the load average is printed with the results.
 */
import { createHmac } from 'node:crypto';
import { loadavg } from 'node:os';
import { devEd25519Auths } from '../src/pbft/auth.ts';
import { computeTag } from '../src/wire/tag.ts';
import { sha256 } from '../src/pbft/encoding.ts';
import { Cluster } from '../test/src/pbft/harness.ts';
import { Cluster as RaftCluster } from '../test/src/raft/harness.ts';
import type { PbftOptions } from '../src/pbft/options.ts';

const REQUESTS = Math.max(50, Number(process.argv[2] ?? 400));
const PI = 9;

function perOp(f: () => void, n: number): number {
  for (let i = 0; i < Math.min(200, n); i++) f(); // warm-up
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

console.log(`load average (1/5/15 min): ${loadavg().map((x) => x.toFixed(2)).join(' / ')}`);

// --- 1. authentication --------------------------------------------------------------
{
  const auth = devEd25519Auths([1, 2], 'bench-')!;
  const a = auth.get(1)!;
  const msg = new Uint8Array(100).map((_, i) => i);
  const sig = a.sign(msg);
  const key = new Uint8Array(32).fill(7);
  const rows: Array<[string, number]> = [
    ['Ed25519 sign', perOp(() => a.sign(msg), 2000)],
    ['Ed25519 verify', perOp(() => auth.get(2)!.verify(1, msg, sig), 2000)],
    ['HMAC-SHA256/16 (src/wire/tag.ts)', perOp(() => computeTag(key, msg), 50000)],
    ['HMAC-SHA256 (node:crypto createHmac)', perOp(() => createHmac('sha256', key).update(msg).digest(), 20000)],
    ['SHA-256 digest (node:crypto)', perOp(() => sha256(msg), 20000)],
  ];
  console.log('\n1. authentication, 100-byte message        ns/op (this machine)   µs/op Pi Zero 2 W (est. ×9)');
  for (const [name, ns] of rows) console.log(`   ${name.padEnd(40)} ${ns.toFixed(0).padStart(10)}   ${((ns * PI) / 1000).toFixed(1).padStart(10)}`);
  const v = rows[1]![1];
  const s = rows[0]![1];
  console.log(`   a backup per request (4 replicas): 7 verifies + 2 signs = ${(((7 * v + 2 * s) * PI) / 1e6).toFixed(1)} ms on a Pi (est.)`);
  console.log(`   MAC authenticators instead: ~${Math.round((7 * v + 2 * s) / (13 * rows[2]![1]))}× less CPU (about 13 MACs), but not transferable`);
}

// --- 2. messages and bytes per commit ---------------------------------------------------
const steady: Partial<PbftOptions> = { viewChangeTimeoutMs: 5000, retransmitMs: 1000, statusMs: 60_000, checkpointInterval: 32 };
console.log('\n2. messages and bytes per committed request (steady state, no faults, Ed25519, frames incl. tag)');
for (const n of [4, 7, 10]) {
  const c = new Cluster({ seed: 1, n, options: steady, auth: 'ed25519', check: false, net: { minDelay: 1, maxDelay: 1 } });
  c.run(20);
  c.sent.clear();
  c.sentBytes.clear();
  const before = c.replica(1).e.executedIndex;
  const count = 64;
  for (let i = 0; i < count; i++) {
    c.submit((i % (n - 1)) + 2, `set k${i % 8} ${'v'.repeat(30)}${i}`); // 40-byte-ish commands from backups
    c.run(1);
  }
  c.runUntil(() => c.honest().every((r) => r.e.executedIndex >= before + count), 2000, 'all executed');
  c.run(5);
  const executed = c.replica(1).e.executedIndex - before;
  const total = [...c.sent.values()].reduce((a, b) => a + b, 0);
  const bytes = [...c.sentBytes.values()].reduce((a, b) => a + b, 0);
  const by = [...c.sent].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k.replace('Pbft', '')} ${(v / executed).toFixed(1)}`).join(', ');
  console.log(`   n=${String(n).padEnd(3)} f=${Math.floor((n - 1) / 3)}: ${(total / executed).toFixed(1).padStart(6)} msgs, ${(bytes / executed / 1024).toFixed(1).padStart(5)} KiB per request  (${by})`);
}

// --- 3. latency in message delays ----------------------------------------------------
console.log('\n3. latency in message delays (1 delay per hop), 4 replicas / 4 Raft voters, idle cluster');
{
  const lat = (origin: number) => {
    const c = new Cluster({ seed: 2, n: 4, options: steady, check: false, net: { minDelay: 1, maxDelay: 1 } });
    c.run(10);
    const ticks: number[] = [];
    for (let i = 0; i < 20; i++) {
      const key = c.submit(origin, `set a ${i}`)!;
      ticks.push(c.runUntil(() => c.clients.get(key)!.accepted !== undefined, 200, 'accepted'));
      c.run(3);
    }
    ticks.sort((a, b) => a - b);
    return ticks[Math.floor(ticks.length / 2)]!;
  };
  const raftLat = (atLeader: boolean) => {
    const c = new RaftCluster({ seed: 2, voters: [1, 2, 3, 4], net: { minDelay: 1, maxDelay: 1 }, check: false });
    const l = c.waitLeader(500);
    c.run(10);
    const ticks: number[] = [];
    for (let i = 0; i < 20; i++) {
      const idx = c.propose(`x${i}`)!;
      const t = c.runUntil(() => l.r.status().commitIndex >= idx, 200, 'committed');
      // From a follower: one more delay to forward the write, one to carry the answer back.
      ticks.push(atLeader ? t : t + 2);
      c.run(3);
    }
    ticks.sort((a, b) => a - b);
    return ticks[Math.floor(ticks.length / 2)]!;
  };
  console.log(`   PBFT, submitted at the primary: ${lat(1)} delays to f + 1 replies; at a backup: ${lat(3)} (request → PRE-PREPARE → PREPARE → COMMIT → execute; replies gathered by the client)`);
  console.log(`   Raft, proposed at the leader:   ${raftLat(true)} delays to commit; at a follower (forwarded): ${raftLat(false)}`);
}

// --- 4. CPU per committed request -----------------------------------------------------
console.log(`\n4. CPU per committed request, in-memory cluster of 4 (all replicas in this process), ${REQUESTS} requests`);
function cpuRun(run: () => number): { msPerReq: number; reqPerCpuSec: number } {
  const c0 = process.cpuUsage();
  const executed = run();
  const c = process.cpuUsage(c0);
  const ms = (c.user + c.system) / 1000;
  return { msPerReq: ms / executed, reqPerCpuSec: (executed / ms) * 1000 };
}
const pbftLoad = (auth: 'ed25519' | 'simulated') => () => {
  const c = new Cluster({ seed: 3, n: 4, options: steady, auth, check: false, countBytes: false, wire: true, net: { minDelay: 1, maxDelay: 1 } });
  c.run(10);
  const before = c.replica(1).e.executedIndex;
  for (let i = 0; i < REQUESTS; i++) {
    c.submit((i % 3) + 2, `set k${i % 16} value-${i}`);
    if (i % 8 === 7) c.run(1);
  }
  c.runUntil(() => c.honest().every((r) => r.e.executedIndex >= before + REQUESTS), 20000, 'all executed');
  return REQUESTS;
};
const raftLoad = () => {
  const c = new RaftCluster({ seed: 3, voters: [1, 2, 3, 4], net: { minDelay: 1, maxDelay: 1 }, check: false, wire: true });
  c.waitLeader(500);
  let last = 0;
  for (let i = 0; i < REQUESTS; i++) {
    last = c.propose(`set k${i % 16} value-${i}`) ?? last;
    if (i % 8 === 7) c.run(1);
  }
  c.runUntil(() => c.up().every((n) => n.r.status().appliedIndex >= last), 20000, 'all applied');
  return REQUESTS;
};
pbftLoad('simulated')(); // warm-up (JIT)
for (const [name, f] of [['PBFT, Ed25519', pbftLoad('ed25519')], ['PBFT, simulated signatures', pbftLoad('simulated')], ['Raft', raftLoad]] as const) {
  const r = cpuRun(f);
  console.log(`   ${name.padEnd(38)} ${r.msPerReq.toFixed(3).padStart(8)} ms CPU/request (4 replicas) → one board ≈ ${(r.msPerReq / 4).toFixed(3)} ms here, ≈ ${((r.msPerReq / 4) * PI).toFixed(2)} ms on a Pi (est.): ≤ ${Math.round(1000 / ((r.msPerReq / 4) * PI))} requests/s per core`);
}
console.log(`\nload average after: ${loadavg().map((x) => x.toFixed(2)).join(' / ')}`);
