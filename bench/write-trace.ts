/**
 * Where one write's time goes (issue 14): a `quorumd dev` cluster (3 node processes,
 * the embedded broker, fsync on) with per-write trace points on
 * (QUORUMD_TRACE_WRITES, daemon/runtime/write-trace.ts), sequential PUTs from one
 * client to the leader, then the timeline of each write put together from the three
 * processes' trace files and the client's own clock (one clock: the same machine).
 *
 * Stages (median, p90 and p99 over the writes, ms; "‖" = runs in parallel with the row above):
 *   client → leader API        the request leaves the client → the backend has it
 *   propose                    → the entry has its index
 *   → Append sent              (the leader sends before its own fsync: pipelining)
 *   broker hop →               Append sent → Append received by the first acker
 *   follower fsync             received → its Ready durable
 *   → ack sent                 durable → AppendReply sent
 *   broker hop ←               ack sent → ack received by the leader
 *   ‖ leader fsync             the leader's own persist of the entry
 *   → commit                   a quorum is durable (the first ack with the leader's own fsync,
 *                              or the second ack, whichever is first) → commit
 *   → applied                  commit → applied
 *   → API answer               applied → backend answer
 *   → client                   backend answer → the client has the response
 *
 *   npm run bench -- write-trace          (env QUORUMD_BENCH_WRITES, default 500)
 *   npx tsx bench/write-trace.ts [writes] [mqtt|tcp]   (env QUORUMD_BENCH_LINK; default mqtt)
 *
 * With `tcp` the cluster runs `quorumd dev --link tcp`: the "broker hop" rows are then
 * the direct TCP hop between the nodes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../daemon/client/http.ts';

const WRITES = Number(process.argv[2] ?? process.env.QUORUMD_BENCH_WRITES ?? 500);
const LINK = process.argv[3] ?? process.env.QUORUMD_BENCH_LINK ?? 'mqtt';
if (LINK !== 'mqtt' && LINK !== 'tcp') throw new Error(`write-trace: the link must be mqtt or tcp, got ${JSON.stringify(LINK)}`);
const root = join(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();

const dir = mkdtempSync(join(tmpdir(), 'quorumd-write-trace-'));
const traceDir = join(dir, 'trace');
// HTTP base+1..3, TCP links base+11..13; below the ephemeral range (32768+), where an outgoing connection may take a port.
const base = 20000 + Math.floor(Math.random() * 12000);
const dev = spawn(process.execPath, ['--max-semi-space-size=1', join(root, 'bin', 'quorumd.js'), 'dev', '--base-port', String(base), '--data-dir', join(dir, 'data'), '--link', LINK], {
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
  for (let i = 0; i < 50; i++) await call(leaderUrl, 'PUT', '/v1/kv/warm', { body: 'x' });
  const client = new Map<number, { sent: number; got: number }>();
  for (let i = 0; i < WRITES; i++) {
    const sent = now();
    const r = await call(leaderUrl, 'PUT', '/v1/kv/seq', { body: 'v'.repeat(16) });
    const got = now();
    if (r.status !== 200) throw new Error(`write ${i}: ${r.status} ${r.body.toString()}`);
    client.set((JSON.parse(r.body.toString()) as { index: number }).index, { sent, got });
  }
  await sleep(500); // every node's tracer flushes within 200 ms

  // node → index → point → time (first occurrence: a range mark covers every index in it)
  const points = new Map<string, Map<number, Map<string, number>>>();
  for (const f of readdirSync(traceDir)) {
    const node = f.split('-')[0]!;
    const byIndex = points.get(node) ?? new Map<number, Map<string, number>>();
    points.set(node, byIndex);
    for (const line of readFileSync(join(traceDir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const [point, lo, hi, t] = JSON.parse(line) as [string, number, number, number];
      for (let i = lo; i <= hi; i++) {
        if (!client.has(i)) continue;
        let m = byIndex.get(i);
        if (!m) byIndex.set(i, (m = new Map()));
        if (!m.has(point)) m.set(point, t);
      }
    }
  }
  const L = points.get(l.leader)!;
  const stages: Record<string, number[]> = {};
  const add = (k: string, v: number | undefined) => {
    if (v === undefined || !Number.isFinite(v)) return;
    (stages[k] ??= []).push(v);
  };
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
    const sendTo = lp.get(`append.send>${first.node.slice(1)}`);
    add('client → leader API', lp.get('http.in')! - c.sent);
    add('propose', lp.get('propose')! - lp.get('http.in')!);
    add('→ Append sent', sendTo! - lp.get('propose')!);
    add('broker hop →', fp?.get('append.recv')! - sendTo!);
    add('follower fsync', fp?.get('persist.done')! - fp?.get('append.recv')!);
    add('→ ack sent', fp?.get('ack.send')! - fp?.get('persist.done')!);
    add('broker hop ←', first.t - fp?.get('ack.send')!);
    add('‖ leader fsync', lp.get('persist.done')! - lp.get('persist.start')!);
    // A leader counts its own copy only once durable; two followers make a quorum without it.
    add('→ commit', lp.get('commit')! - Math.min(Math.max(first.t, lp.get('persist.done')!), second));
    add('→ applied', lp.get('apply')! - lp.get('commit')!);
    add('→ API answer', lp.get('http.out')! - lp.get('apply')!);
    add('→ client', c.got - lp.get('http.out')!);
    add('total (client)', c.got - c.sent);
    add('leader fsync finished after the ack (ms, 0 if before)', Math.max(0, lp.get('persist.done')! - first.t));
    example ??= [...lp].sort((a, b) => a[1] - b[1]).map(([p, t]) => `${p}@${(t - c.sent).toFixed(2)}`).join(' ') + ` | ${first.node}: ` + [...(fp ?? [])].sort((a, b) => a[1] - b[1]).map(([p, t]) => `${p}@${(t - c.sent).toFixed(2)}`).join(' ');
  }
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))]!;
  console.log(`write-trace: ${client.size} sequential writes to the leader ${l.leader} of a 3-node quorumd dev cluster (--link ${LINK})`);
  console.log(`uptime: ${(await import('node:child_process')).spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
  console.log('| stage | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|');
  for (const [k, v] of Object.entries(stages)) console.log(`| ${k} | ${pct(v, 50).toFixed(3)} | ${pct(v, 90).toFixed(3)} | ${pct(v, 99).toFixed(3)} |`);
  const late = stages['leader fsync finished after the ack (ms, 0 if before)'] ?? [];
  console.log(`\nthe leader's own fsync finished after the first ack in ${late.filter((x) => x > 0).length} of ${late.length} writes`);
  console.log(`\none write (ms after the client sent it): ${example}`);
} finally {
  dev.kill('SIGTERM');
  await Promise.race([new Promise((r) => dev.once('exit', r)), sleep(10_000)]);
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
