/**
 * Links acceptance numbers (the hardware-abstraction issue): a 3-node Raft cluster of
 * real `quorumd start` processes on this machine commits WRITES writes over
 *   (a) the embedded aedes broker (`quorumd broker`),
 *   (b) Debian's mosquitto (/usr/sbin/mosquitto, a config on a free 127.0.0.1 port),
 *   (c) three socat pty pairs with real serialport (ring n1–n2, n2–n3, n3–n1),
 *   (d) MQTT (aedes) and the serial ring together (every frame on both; copies dropped as replays),
 *   and, for comparison, mosquitto without `set_tcp_nodelay true` (its default): its
 *   writes to subscribers then wait for delayed ACKs (Nagle), ~40 ms per hop here,
 * each twice: one client (commit latency without queueing) and CONC concurrent clients
 * (throughput; batching makes one fsync cover many entries). Writes are
 * `PUT /v1/kv/<key>` to the leader's HTTP API, latency = request to 200.
 *
 * Reported per run: p50/p99 latency, writes/s, and fsyncs per committed entry on the
 * leader and on the followers (Δ quorumd_fsyncs_total / Δ commit index, /metrics).
 * A missing mosquitto or socat skips that row with the reason.
 *
 *   node --import tsx bench/links.ts [--writes 1000] [--conc 16] [--only aedes,mosquitto,mosquitto-nagle,serial,both]
 */
import { Harness, metricValue, mosquittoCheck, percentile, serialRing, socatCheck, type NodeSpec, type ProcNode } from '../test/e2e/harness.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const WRITES = Number(arg('writes', '1000'));
const CONC = Number(arg('conc', '16'));
const ONLY = arg('only', 'aedes,mosquitto,mosquitto-nagle,serial,both').split(',');
if (!Number.isInteger(WRITES) || WRITES < 1 || WRITES > 100_000) throw new Error(`--writes: expected an integer 1..100000, got ${arg('writes', '')}`);
if (!Number.isInteger(CONC) || CONC < 1 || CONC > 256) throw new Error(`--conc: expected an integer 1..256, got ${arg('conc', '')}`);

interface Row {
  setup: string;
  clients: number;
  p50: number;
  p99: number;
  wps: number;
  fsyncLeader: number;
  fsyncFollowers: number;
  retries: number;
}

async function fsyncsAndCommit(h: Harness, n: ProcNode): Promise<{ fsyncs: number; commit: number }> {
  const m = await h.metrics(n);
  return { fsyncs: metricValue(m, 'quorumd_fsyncs_total'), commit: metricValue(m, 'quorumd_commit_index') };
}

async function measure(setup: string, h: Harness, leader: ProcNode, clients: number, prefix: string): Promise<Row> {
  const nodes = h.nodes.filter((n) => n.child);
  const before = await Promise.all(nodes.map((n) => fsyncsAndCommit(h, n)));
  const r = await h.writes(() => leader, WRITES, clients, prefix);
  // Let the followers learn the last commit (next heartbeat), then read the counters.
  await new Promise((res) => setTimeout(res, 300));
  const after = await Promise.all(nodes.map((n) => fsyncsAndCommit(h, n)));
  const ratio = (i: number) => (after[i]!.fsyncs - before[i]!.fsyncs) / Math.max(1, after[i]!.commit - before[i]!.commit);
  const li = nodes.indexOf(leader);
  const followers = nodes.map((_, i) => i).filter((i) => i !== li);
  return {
    setup,
    clients,
    p50: percentile(r.latencies, 50),
    p99: percentile(r.latencies, 99),
    wps: WRITES / r.seconds,
    fsyncLeader: ratio(li),
    fsyncFollowers: followers.reduce((a, i) => a + ratio(i), 0) / followers.length,
    retries: r.retries,
  };
}

async function run(setup: string, links: (h: Harness) => Promise<(k: number) => NodeSpec>): Promise<Row[]> {
  const h = new Harness();
  try {
    const spec = await links(h);
    await h.startCluster({ n: 3, links: spec });
    const leader = await h.waitLeader(30_000);
    await h.writes(() => leader, 20, 2, 'warm'); // JIT, connections, first fsyncs
    const rows = [await measure(setup, h, leader, 1, 'seq'), await measure(setup, h, leader, CONC, 'par')];
    const l2 = await h.leader();
    if (l2?.name !== leader.name) console.log(`  note: leader changed during ${setup} (${leader.name} → ${l2?.name ?? 'none'})`);
    return rows;
  } finally {
    await h.dispose();
  }
}

const rows: Row[] = [];
const skip = (what: string, reason: string) => console.log(`  ${what}: SKIPPED — ${reason}`);
console.log(`links: 3 quorumd start processes, ${WRITES} writes per run, 1 and ${CONC} clients, 127.0.0.1, ${new Date().toISOString()}`);
if (ONLY.includes('aedes')) rows.push(...(await run('aedes (quorumd broker)', async (h) => {
  const b = await h.aedesChild();
  return () => ({ brokers: [b.url] });
})));
if (ONLY.includes('mosquitto')) {
  const m = mosquittoCheck();
  if (!m.run) skip('mosquitto', m.reason);
  else rows.push(...(await run('mosquitto', async (h) => {
    const b = await h.mosquitto();
    return () => ({ brokers: [b.url] });
  })));
}
const s = socatCheck();
if (ONLY.includes('serial')) {
  if (!s.run) skip('serial', s.reason);
  else rows.push(...(await run('serial ring (socat ptys)', async (h) => {
    const ring = await serialRing(h);
    return (k) => ({ serial: ring(k) });
  })));
}
if (ONLY.includes('both')) {
  if (!s.run) skip('mqtt+serial', s.reason);
  else rows.push(...(await run('aedes + serial ring', async (h) => {
    const b = await h.aedesChild();
    const ring = await serialRing(h);
    return (k) => ({ brokers: [b.url], serial: ring(k) });
  })));
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
console.log('\n| link | clients | p50 ms | p99 ms | writes/s | fsyncs/entry leader | fsyncs/entry followers | 503 retries |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.setup} | ${r.clients} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${f(r.wps, 0)} | ${f(r.fsyncLeader, 3)} | ${f(r.fsyncFollowers, 3)} | ${r.retries} |`);
