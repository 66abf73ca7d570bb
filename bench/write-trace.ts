/**
 * Where one write's time goes (issue 14): a `quorumd dev` cluster (3 node processes,
 * the embedded broker, fsync on) with per-write trace points on
 * (QUORUMD_TRACE_WRITES, daemon/runtime/write-trace.ts), sequential PUTs from one
 * client to the leader, then the timeline of each write put together from the three
 * processes' trace files and the client's own clock (one clock: the same machine).
 *
 * Stages (median, p90 and p99 over the writes, ms; "‖" = runs in parallel with the row above):
 *   client → leader API        the request leaves the client → the backend has it
 *                              (the leader's clock offset against the client's is
 *                              estimated as for the followers, below, and taken off
 *                              this row and "→ client")
 *   propose                    → the entry has its index
 *   → Append sent              (the leader sends before its own fsync: pipelining)
 *   hop →                      Append sent → Append received by the first acker
 *   follower: waiting for its disk
 *                              received → its write starts (a write of its own still in
 *                              flight: the next one waits for it, and takes every Append
 *                              that came meanwhile, group commit)
 *   follower write + fsync     its write starts → its Ready durable
 *   → ack sent                 durable → AppendReply sent
 *   hop ←                      ack sent → ack received by the leader
 *                              (each process has its own clock origin: the follower's
 *                              offset is estimated as NTP does and taken off the two
 *                              one-way hops; "both hops" needs no correction)
 *   ‖ leader: waiting for its disk, ‖ leader write + fsync
 *                              the leader's own persist of the entry (as for the follower)
 *   waiting for the leader fsync after the first ack
 *                              the part of it the commit waited for (0 when the first ack
 *                              found it done, or the second ack came first)
 *   → commit                   a quorum is durable (the first ack with the leader's own fsync,
 *                              or the second ack, whichever is first) → commit
 *   → applied                  commit → applied
 *   → API answer               applied → backend answer
 *   → client                   backend answer → the client has the response
 *   GC                         ms of garbage collection in the leader / first acker during the write
 *
 * Before the table: the CPU time of each node process per write (utime + stime over the
 * writes: on a shared 2-core machine a steadier measure than wall time), and each node's
 * garbage collections during the writes by kind (how many, how long, the longest).
 *
 * Then the slowest 1 % of the writes one by one: the stages that took over 0.5 ms and
 * the collections during each, and which stage was the largest how often (what makes
 * the tail).
 *
 *   npm run bench -- write-trace          (env QUORUMD_BENCH_WRITES, default 500)
 *   npx tsx bench/write-trace.ts [writes] [mqtt|tcp] [warm-up writes] [writers]
 *        (env QUORUMD_BENCH_LINK, default mqtt; QUORUMD_BENCH_WARMUP, default 3000;
 *         QUORUMD_BENCH_WRITERS, default 1)
 *
 * With more than one writer (e.g. 64, as bench/vs-etcd.ts's throughput rows) the
 * writers run side by side, each on its own key, until `writes` are answered, and the
 * same timeline is printed per write, with, before it, what says whether the disk or the
 * processors set the pace: writes/s, Readys written (one fsync each) per node per
 * write, and the share of the machine's processor time that was idle (/proc/stat) —
 * a pipeline waiting on fsyncs leaves the processors idle while writes queue at the
 * disks (the "waiting for its disk" rows), one short of processors leaves none.
 *
 * The warm-up writes go before the traced ones, as in bench/vs-etcd.ts: a node's
 * JavaScript runs unoptimized until V8 has seen it hot, and a tail measured cold is
 * mostly the compiler's (the trace is on during the warm-up too: its cost is warmed as well).
 *
 * With `tcp` the cluster runs `quorumd dev --link tcp`: the hop rows are then the
 * direct TCP hop between the nodes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../daemon/client/http.ts';
import { CLK_TCK, cpuSeconds, machineSeconds, prepareBin, userCommand } from './_proc.ts';

const WRITES = Number(process.argv[2] ?? process.env.QUORUMD_BENCH_WRITES ?? 500);
const LINK = process.argv[3] ?? process.env.QUORUMD_BENCH_LINK ?? 'mqtt';
const WARMUP = Number(process.argv[4] ?? process.env.QUORUMD_BENCH_WARMUP ?? 3000);
if (!Number.isInteger(WRITES) || WRITES < 1 || WRITES > 1_000_000) throw new Error(`write-trace: writes must be an integer 1..1000000, got ${String(process.argv[2] ?? process.env.QUORUMD_BENCH_WRITES)}`);
if (!Number.isInteger(WARMUP) || WARMUP < 1 || WARMUP > 1_000_000) throw new Error(`write-trace: warm-up writes must be an integer 1..1000000, got ${String(process.argv[4] ?? process.env.QUORUMD_BENCH_WARMUP)}`);
const WRITERS = Number(process.argv[5] ?? process.env.QUORUMD_BENCH_WRITERS ?? 1);
if (!Number.isInteger(WRITERS) || WRITERS < 1 || WRITERS > 256) throw new Error(`write-trace: writers must be an integer 1..256, got ${String(process.argv[5] ?? process.env.QUORUMD_BENCH_WRITERS)}`);
if (LINK !== 'mqtt' && LINK !== 'tcp') throw new Error(`write-trace: the link must be mqtt or tcp, got ${JSON.stringify(LINK)}`);
const root = join(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

console.log(`quorumd: ${await prepareBin(join(root, 'bin', 'quorumd.js'), 'write-trace')}`);
const dir = mkdtempSync(join(tmpdir(), 'quorumd-write-trace-'));
const traceDir = join(dir, 'trace');
// HTTP base+1..3, TCP links base+11..13; below the ephemeral range (32768+), where an outgoing connection may take a port.
const base = 20000 + Math.floor(Math.random() * 12000);
const dev = spawn(...userCommand(join(root, 'bin', 'quorumd.js'), ['dev', '--base-port', String(base), '--data-dir', join(dir, 'data'), '--link', LINK]), {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, QUORUMD_TRACE_WRITES: traceDir },
});
let out = '';
dev.stdout!.on('data', (d) => (out += d));
dev.stderr!.on('data', (d) => (out += d));
try {
  const t0 = Date.now();
  while (!/quorumd dev: \d+ nodes? running/.test(out) && Date.now() - t0 < 60_000 && dev.exitCode === null) await sleep(50);
  if (!/running/.test(out)) throw new Error(`quorumd dev did not start:\n${out}`);
  // The dev cluster's API token (operator scope).
  if (existsSync(join(dir, 'data', 'api.token'))) process.env.QUORUMD_API_TOKEN = readFileSync(join(dir, 'data', 'api.token'), 'utf8').trim();
  const urls = [1, 2, 3].map((k) => `http://127.0.0.1:${base + k}`);
  const l = JSON.parse((await call(urls[0]!, 'GET', '/v1/leader')).body.toString()) as { leader: string };
  const leaderUrl = urls[Number(l.leader.slice(1)) - 1]!;
  for (let i = 0; i < WARMUP; i++) await call(leaderUrl, 'PUT', '/v1/kv/warm', { body: 'v'.repeat(16) });
  const client = new Map<number, { sent: number; got: number }>();
  // CPU of each node process over the writes (utime + stime, /proc/<pid>/stat): the
  // trace files are named <node>-<pid>.jsonl (the warm-up above made every node write one).
  await sleep(300);
  const nodePids = readdirSync(traceDir).map((f) => /^(.+)-(\d+)\.jsonl$/.exec(f)).filter((m) => m !== null).map((m) => ({ node: m[1]!, pid: Number(m[2]) }));
  const cpuOf = (pid: number) => cpuSeconds(pid) * 1000;
  const cpu0 = nodePids.map((p) => cpuOf(p.pid));
  const self0 = process.cpuUsage();
  const machine0 = machineSeconds();
  const wall0 = now();
  // Writers side by side (one: sequential), each on its own key, until WRITES are answered.
  let started = 0;
  const writer = async (w: number) => {
    while (started < WRITES) {
      const i = started++;
      const sent = now();
      const r = await call(leaderUrl, 'PUT', WRITERS === 1 ? '/v1/kv/seq' : `/v1/kv/w${w}`, { body: 'v'.repeat(16) });
      const got = now();
      if (r.status !== 200) throw new Error(`write ${i}: ${r.status} ${r.body.toString()}`);
      client.set((JSON.parse(r.body.toString()) as { index: number }).index, { sent, got });
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  const wall1 = now();
  const machine1 = machineSeconds();
  const cpu1 = nodePids.map((p) => cpuOf(p.pid));
  const self1 = process.cpuUsage(self0);
  await sleep(500); // every node's tracer flushes within 200 ms

  // node → index → point → time (first occurrence: a range mark covers every index in it)
  const points = new Map<string, Map<number, Map<string, number>>>();
  // node → its garbage collections [start, duration] (ms)
  const gcs = new Map<string, [number, number, number][]>();
  // node → its writes to the durable log during the traced writes
  const persists = new Map<string, number>();
  // node → its acknowledgements [point, last index acknowledged, time]
  const acks = new Map<string, [string, number, number][]>();
  for (const f of readdirSync(traceDir)) {
    const node = f.split('-')[0]!;
    const byIndex = points.get(node) ?? new Map<number, Map<string, number>>();
    points.set(node, byIndex);
    const gc = gcs.get(node) ?? [];
    gcs.set(node, gc);
    for (const line of readFileSync(join(traceDir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const [point, lo, hi, t, dur, kind] = JSON.parse(line) as [string, number, number, number, number?, number?];
      if (point === 'gc') {
        gc.push([t, dur ?? 0, kind ?? 0]);
        continue;
      }
      // The node's writes (one Ready each: one fsync) started during the traced writes.
      if (point === 'persist.start' && t >= wall0 && t <= wall1) persists.set(node, (persists.get(node) ?? 0) + 1);
      if (point === 'ack.send' || point.startsWith('ack.recv<')) {
        // An AppendReply carries only the last index it acknowledges: it acknowledges every one below too (set below).
        (acks.get(node) ?? acks.set(node, []).get(node)!).push([point, hi, t]);
        continue;
      }
      for (let i = lo; i <= hi; i++) {
        if (!client.has(i)) continue;
        let m = byIndex.get(i);
        if (!m) byIndex.set(i, (m = new Map()));
        if (!m.has(point)) m.set(point, t);
      }
    }
  }
  // Each traced write's first acknowledgement of each kind: the earliest one for its index or above.
  const written = [...client.keys()].sort((a, b) => b - a);
  for (const [node, marks] of acks) {
    const byIndex = points.get(node)!;
    const byPoint = new Map<string, [number, number][]>();
    for (const [point, index, t] of marks) (byPoint.get(point) ?? byPoint.set(point, []).get(point)!).push([index, t]);
    for (const [point, ms] of byPoint) {
      ms.sort((a, b) => b[0] - a[0]);
      let k = 0;
      let first = Infinity;
      for (const i of written) {
        while (k < ms.length && ms[k]![0] >= i) first = Math.min(first, ms[k++]![1]);
        if (first === Infinity) continue;
        let m = byIndex.get(i);
        if (!m) byIndex.set(i, (m = new Map()));
        if (!m.has(point)) m.set(point, first);
      }
    }
  }
  /** ms of `node`'s collections inside [a, b]. */
  const gcIn = (node: string, a: number, b: number) => {
    let ms = 0;
    for (const [t, d] of gcs.get(node) ?? []) ms += Math.max(0, Math.min(b, t + d) - Math.max(a, t));
    return ms;
  };
  const L = points.get(l.leader)!;
  // Each process's clock is performance.timeOrigin + performance.now(), and timeOrigin
  // may be off by tens of ms between processes. The offset of each follower's clock
  // against the leader's, as NTP estimates it (half the difference of the two one-way
  // times, median over the writes); the one-way hop rows are corrected by it, the
  // round trip row needs no correction.
  const offset = new Map<string, number>();
  for (const [node, byIndex] of points) {
    if (node === l.leader) continue;
    const id = node.slice(1);
    const est: number[] = [];
    for (const [i, fp] of byIndex) {
      const lp = L.get(i);
      const t1 = lp?.get(`append.send>${id}`), t2 = fp.get('append.recv'), t3 = fp.get('ack.send'), t4 = lp?.get(`ack.recv<${id}`);
      if (t1 !== undefined && t2 !== undefined && t3 !== undefined && t4 !== undefined) est.push((t2 - t1 + (t3 - t4)) / 2);
    }
    offset.set(node, est.length > 0 ? [...est].sort((a, b) => a - b)[Math.floor(est.length / 2)]! : 0);
  }
  // The leader's clock against the client's, the same way (the request out and the
  // answer back are the two one-way times); the client's two rows are corrected by it.
  const clientEst: number[] = [];
  for (const [i, c] of client) {
    const lp = L.get(i);
    const t2 = lp?.get('http.in'), t3 = lp?.get('http.out');
    if (t2 !== undefined && t3 !== undefined) clientEst.push((t2 - c.sent + (t3 - c.got)) / 2);
  }
  const leaderOff = clientEst.length > 0 ? [...clientEst].sort((a, b) => a - b)[Math.floor(clientEst.length / 2)]! : 0;
  const stages: Record<string, number[]> = {};
  const add = (k: string, v: number | undefined) => {
    if (v === undefined || !Number.isFinite(v)) return;
    (stages[k] ??= []).push(v);
  };
  const perWrite: { index: number; total: number; parts: [string, number][]; gcLeader: number; gcAcker: number; acker: string }[] = [];
  let example: string | undefined;
  for (const [i, c] of client) {
    const lp = L.get(i);
    if (!lp) continue;
    // The first follower whose ack reached the leader.
    let first: { node: string; t: number } | undefined;
    let second = Infinity;
    for (const [p, t] of lp) {
      if (!p.startsWith('ack.recv<')) continue;
      if (!first || t < first.t) {
        if (first) second = Math.min(second, first.t);
        first = { node: `n${p.slice('ack.recv<'.length)}`, t };
      } else second = Math.min(second, t);
    }
    if (!first) continue;
    const fp = points.get(first.node)?.get(i);
    const off = offset.get(first.node) ?? 0;
    const sendTo = lp.get(`append.send>${first.node.slice(1)}`);
    const parts: [string, number][] = [
      ['client → leader API (clock offset corrected)', lp.get('http.in')! - leaderOff - c.sent],
      ['propose', lp.get('propose')! - lp.get('http.in')!],
      ['→ Append sent', sendTo! - lp.get('propose')!],
      ['hop → (clock offset corrected)', fp?.get('append.recv')! - off - sendTo!],
      ['follower: waiting for its disk', fp?.get('persist.start')! - fp?.get('append.recv')!],
      ['follower write + fsync', fp?.get('persist.done')! - fp?.get('persist.start')!],
      ['→ ack sent', fp?.get('ack.send')! - fp?.get('persist.done')!],
      ['hop ← (clock offset corrected)', first.t - (fp?.get('ack.send')! - off)],
      ['‖ leader: waiting for its disk', lp.get('persist.start')! - lp.get('propose')!],
      ['‖ leader write + fsync', lp.get('persist.done')! - lp.get('persist.start')!],
      // On the critical path only when the commit waited for it: the first ack came before
      // the leader's copy was durable, and the second ack did not come before either.
      ['waiting for the leader fsync after the first ack', Math.max(0, Math.min(lp.get('persist.done')!, second) - first.t)],
      // A leader counts its own copy only once durable; two followers make a quorum without it.
      ['→ commit', lp.get('commit')! - Math.min(Math.max(first.t, lp.get('persist.done')!), second)],
      ['→ applied', lp.get('apply')! - lp.get('commit')!],
      ['→ API answer', lp.get('http.out')! - lp.get('apply')!],
      ['→ client (clock offset corrected)', c.got - (lp.get('http.out')! - leaderOff)],
    ];
    for (const [k, v] of parts) add(k, v);
    add('both hops (Append out + ack back, no clock offset)', first.t - sendTo! - (fp?.get('ack.send')! - fp?.get('append.recv')!));
    add('total (client)', c.got - c.sent);
      const gcLeader = gcIn(l.leader, c.sent, c.got);
    const gcAcker = gcIn(first.node, c.sent + off, c.got + off);
    add('GC on the leader during the write', gcLeader);
    add('GC on the first acker during the write', gcAcker);
    perWrite.push({ index: i, total: c.got - c.sent, parts: parts.filter(([, v]) => Number.isFinite(v)), gcLeader, gcAcker, acker: first.node });
    example ??= [...lp].sort((a, b) => a[1] - b[1]).map(([p, t]) => `${p}@${(t - leaderOff - c.sent).toFixed(2)}`).join(' ') + ` | ${first.node}: ` + [...(fp ?? [])].sort((a, b) => a[1] - b[1]).map(([p, t]) => `${p}@${(t - off - leaderOff - c.sent).toFixed(2)}`).join(' ');
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))]!;
  console.log(`write-trace: ${client.size} ${WRITERS === 1 ? 'sequential writes' : `writes by ${WRITERS} writers side by side`} to the leader ${l.leader} of a 3-node quorumd dev cluster (--link ${LINK})`);
  console.log(`uptime: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
  const secs = (wall1 - wall0) / 1000;
  const idleS = machine1.idle - machine0.idle;
  const idle = idleS / (idleS + machine1.busy - machine0.busy);
  console.log(`${(client.size / secs).toFixed(0)} writes/s; Readys written (one fsync each) per write: ${[...persists].sort().map(([n, k]) => `${n}${n === l.leader ? ' (leader)' : ''} ${(k / client.size).toFixed(3)}`).join(', ')}; the machine's processors idle ${(idle * 100).toFixed(1)} % of the time (/proc/stat, ${availableParallelism()} processors)`);
  console.log(`follower clocks against the leader's (NTP estimate, median): ${[...offset].map(([n, o]) => `${n} ${o >= 0 ? '+' : ''}${o.toFixed(3)} ms`).join(', ')}; the leader's against the client's ${leaderOff >= 0 ? '+' : ''}${leaderOff.toFixed(3)} ms`);
  console.log(`CPU per write (utime + stime over the ${client.size} writes, in ${1000 / CLK_TCK} ms ticks): ${nodePids.map((p, k) => `${p.node}${p.node === l.leader ? ' (leader)' : ''} ${((cpu1[k]! - cpu0[k]!) / client.size).toFixed(3)} ms`).join(', ')}; the client ${((self1.user + self1.system) / 1000 / client.size).toFixed(3)} ms`);
  // Collections during the writes, per node: how many, how long (a long one is a write's tail).
  for (const [node, gc] of gcs) {
    const run = gc.filter(([t]) => t >= wall0 && t <= wall1);
    if (run.length === 0) continue;
    const kinds = new Map<number, number[]>();
    for (const [, d, k] of run) (kinds.get(k) ?? kinds.set(k, []).get(k)!).push(d);
    const name: Record<number, string> = { 1: 'scavenge', 2: 'mark-compact', 4: 'incremental marking', 8: 'weak callbacks' };
    const inRun = run.map(([, d]) => d);
    console.log(`GC during the writes on ${node}${node === l.leader ? ' (leader)' : ''}: ${inRun.length} collections, ${inRun.reduce((a, b) => a + b, 0).toFixed(1)} ms in all, longest ${Math.max(...inRun).toFixed(2)} ms, over 5 ms: ${inRun.filter((d) => d > 5).length} (${[...kinds].map(([k, ds]) => `${name[k] ?? `kind ${k}`} ×${ds.length} ${ds.reduce((a, b) => a + b, 0).toFixed(1)} ms, longest ${Math.max(...ds).toFixed(2)}`).join('; ')})`);
  }
  console.log('| stage | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|');
  for (const [k, v] of Object.entries(stages)) console.log(`| ${k} | ${pct(v, 50).toFixed(3)} | ${pct(v, 90).toFixed(3)} | ${pct(v, 99).toFixed(3)} |`);
  const late = stages['waiting for the leader fsync after the first ack'] ?? [];
  console.log(`\nthe commit waited for the leader's own fsync after the first ack in ${late.filter((x) => x > 0).length} of ${late.length} writes`);
  // The slowest 1 %: where their time went (the stages on the critical path; the leader's
  // fsync runs beside the follower's and counts only when the commit waited for it).
  const slow = [...perWrite].sort((a, b) => b.total - a.total).slice(0, Math.max(1, Math.ceil(perWrite.length / 100)));
  const p50 = pct(perWrite.map((w) => w.total), 50);
  console.log(`\nthe slowest 1 % (${slow.length} writes; median total ${p50.toFixed(2)} ms): stages on the critical path over 0.5 ms, GC ms during the write`);
  const blame = new Map<string, number>();
  for (const w of slow) {
    // The leader's fsync runs beside the follower's: its row "waiting for ..." says when it counted.
    const big = w.parts.filter(([k, v]) => v > 0.5 && !k.startsWith('‖')).sort((a, b) => b[1] - a[1]);
    if (big[0]) blame.set(big[0][0], (blame.get(big[0][0]) ?? 0) + 1);
    console.log(`  #${w.index} ${w.total.toFixed(2)} ms: ${big.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')} | GC leader ${w.gcLeader.toFixed(2)}, ${w.acker} ${w.gcAcker.toFixed(2)}`);
  }
  console.log(`  largest stage of a slow write: ${[...blame].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  console.log(`\none write (ms after the client sent it; the follower's times on the leader's clock): ${example}`);
} finally {
  dev.kill('SIGTERM');
  await Promise.race([new Promise((r) => dev.once('exit', r)), sleep(10_000)]);
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
