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
 * Link loss under load (kill-broker, kill-wire): CONC clients write WRITES keys while,
 * after a third of them, one of two brokers (mosquitto + `quorumd broker`) is killed,
 * or the two serial wires of a follower that also has MQTT (their socat). Reported:
 * the latency percentiles and the maximum, the longest gap between two successive
 * commits after the kill, and whether an election happened.
 *
 * Reported per run: p50/p99 latency, writes/s, and fsyncs per committed entry on the
 * leader and on the followers (Δ quorumd_fsyncs_total / Δ commit index, /metrics).
 * A missing mosquitto or socat skips that row with the reason.
 *
 *   node --import tsx bench/links.ts [--writes 1000] [--conc 16] [--only aedes,mosquitto,mosquitto-nagle,serial,both,kill-broker,kill-wire]
 */
import { Harness, metricValue, mosquittoCheck, percentile, serialRing, socatCheck, type NodeSpec, type ProcNode } from '../test/e2e/harness.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const WRITES = Number(arg('writes', '1000'));
const CONC = Number(arg('conc', '16'));
const ONLY = arg('only', 'aedes,mosquitto,mosquitto-nagle,serial,both,kill-broker,kill-wire').split(',');
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
  else rows.push(...(await run('mosquitto (set_tcp_nodelay true)', async (h) => {
    const b = await h.mosquitto();
    return () => ({ brokers: [b.url] });
  })));
}
if (ONLY.includes('mosquitto-nagle')) {
  const m = mosquittoCheck();
  if (!m.run) skip('mosquitto-nagle', m.reason);
  else rows.push(...(await run('mosquitto, set_tcp_nodelay off (its default)', async (h) => {
    const b = await h.mosquitto({ noDelay: false });
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

interface KillRow {
  setup: string;
  p50: number;
  p99: number;
  max: number;
  gapMs: number;
  elections: number;
  retries: number;
}
const killRows: KillRow[] = [];

/** Writes under load, and `kill()` once a third of them committed. */
async function killRun(setup: string, links: (h: Harness) => Promise<(k: number) => NodeSpec>, kill: (h: Harness, leader: ProcNode) => Promise<void>): Promise<void> {
  const h = new Harness();
  try {
    const spec = await links(h);
    await h.startCluster({ n: 3, links: spec });
    const leader = await h.waitLeader(30_000);
    await h.writes(() => leader, 20, 2, 'warm');
    const el0 = await Promise.all(h.nodes.map(async (n) => metricValue(await h.metrics(n), 'quorumd_elections_total')));
    const done: number[] = [];
    let killedAt = Infinity;
    const run = h.writes(() => leader, WRITES, CONC, 'kill', (t) => done.push(t));
    while (done.length < WRITES / 3) await new Promise((r) => setTimeout(r, 5));
    killedAt = performance.now();
    await kill(h, leader);
    const r = await run;
    const el1 = await Promise.all(h.nodes.map(async (n) => metricValue(await h.metrics(n), 'quorumd_elections_total')));
    const after = [killedAt, ...done.filter((t) => t >= killedAt).sort((a, b) => a - b)];
    let gap = 0;
    for (let i = 1; i < after.length; i++) gap = Math.max(gap, after[i]! - after[i - 1]!);
    killRows.push({ setup, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99), max: Math.max(...r.latencies), gapMs: gap, elections: el1.reduce((a, x) => a + x, 0) - el0.reduce((a, x) => a + x, 0), retries: r.retries });
  } finally {
    await h.dispose();
  }
}

if (ONLY.includes('kill-broker')) {
  const m = mosquittoCheck();
  if (!m.run) skip('kill-broker', m.reason);
  else await killRun('mosquitto + aedes, aedes killed', async (h) => {
    const mq = await h.mosquitto();
    const a = await h.aedesChild();
    return () => ({ brokers: [mq.url, a.url] });
  }, async (h) => {
    await h.brokers.find((b) => b.kind === 'aedes')!.stop();
  });
}
if (ONLY.includes('kill-wire')) {
  if (!s.run) skip('kill-wire', s.reason);
  else await killRun('aedes + serial ring, both wires of a follower cut', async (h) => {
    const a = await h.aedesChild();
    const ring = await serialRing(h);
    return (k) => ({ brokers: [a.url], serial: ring(k) });
  }, async (h, leader) => {
    // The ring's pairs are [n1–n2, n2–n3, n3–n1]; cut both wires of one follower.
    const f = h.nodes.find((n) => n.name !== leader.name)!;
    const pairs = f.id === 1 ? [0, 2] : f.id === 2 ? [0, 1] : [1, 2];
    await Promise.all(pairs.map((i) => h.ptys[i]!.kill()));
  });
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
console.log('\n| link | clients | p50 ms | p99 ms | writes/s | fsyncs/entry leader | fsyncs/entry followers | 503 retries |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.setup} | ${r.clients} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${f(r.wps, 0)} | ${f(r.fsyncLeader, 3)} | ${f(r.fsyncFollowers, 3)} | ${r.retries} |`);
if (killRows.length > 0) {
  console.log(`\nlink loss under load (${WRITES} writes, ${CONC} clients, kill after a third)`);
  console.log('| setup | p50 ms | p99 ms | max ms | longest commit gap after the kill, ms | elections | 503 retries |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of killRows) console.log(`| ${r.setup} | ${f(r.p50, 2)} | ${f(r.p99, 2)} | ${f(r.max, 1)} | ${f(r.gapMs, 1)} | ${r.elections} | ${r.retries} |`);
}
