/**
 * How a `quorumd dev` cluster's write latency falls while V8 compiles its write path
 * (issue 14): sequential PUTs of 16 bytes to the leader of a fresh cluster (3 nodes, the
 * embedded broker, fsync on, no scheduled job), p50 and p99 of each window of --window
 * writes, from the first write on. bench/vs-etcd.ts measures one point of this curve (its
 * 1000 writes after 3000 warm-up writes); this prints the whole curve, to see how far
 * from its end that point is and what shifts the curve.
 *
 * Variants are sets of V8 flags for the node processes (QUORUMD_DEV_NODE_FLAGS, e.g.
 * `--variant '--interrupt-budget=16384'`; the first variant is always the default, no
 * flag), run interleaved --runs times each, each run on a cluster of its own. Before the
 * counted runs, one untimed run per variant warms this process's own client code (its JIT
 * would otherwise be in the first run's numbers) and has that variant's nodes write their
 * V8 code cache (keyed by their flags); prepareBin builds dist/ first if needed.
 *
 * --idle-ms: how long the cluster idles after its leader is known before the first write
 * (default 0). vs-etcd idles ~13 s first (its idle window), so that a node has settled
 * its start-up memory (bin/settle-memory.js) before the writes; with 0 the settling
 * window falls in the first thousands of writes.
 *
 *   npm run bench -- warmup-curve
 *   npx tsx bench/warmup-curve.ts [--runs 2] [--windows 10] [--window 1000] [--idle-ms 0]
 *                                 [--variant '<node flags>']... [--link mqtt|tcp]
 *
 * Measured with this bench on the project's 2-core VM (2026-12-07, Intel Xeon, 2 runs,
 * writes from the start), p50/p99 ms per 1000 writes: 2.19/7.72, 1.70/5.91, 1.39/5.98,
 * 1.24/3.93, 1.22/3.38, 1.17/3.06, then 1.15/2.7 at writes 6,000–8,000. The leader's
 * TurboFan compilations (--trace-opt), 50–66 a second in its first 6 s, were still 14–27
 * a second at writes 3,000–4,000.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../daemon/client/http.ts';
import { freePorts, numberOption, prepareBin, userCommand } from './_proc.ts';

const WHO = 'warmup-curve';
const args = process.argv.slice(2);
const variants: string[] = [''];
const opts = new Map<string, string>();
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  const m = /^--(runs|windows|window|idle-ms|variant|link)(?:=(.*))?$/.exec(a);
  const value = m ? (m[2] ?? args[++i]) : undefined;
  if (!m || value === undefined) {
    console.error(`${WHO}: unknown option or missing value at ${JSON.stringify(a)}; expected --runs N, --windows N, --window N, --idle-ms MS, --variant '<node flags>', --link mqtt|tcp`);
    process.exit(2);
  }
  if (m[1] === 'variant') {
    // The table keeps one row per flag set: a repeat (or '' again: the default) would fold two variants' runs into one.
    if (variants.includes(value.trim())) {
      console.error(`${WHO}: --variant ${JSON.stringify(value)} is given twice (the default, no flag, is always the first); expected distinct flag sets`);
      process.exit(2);
    }
    variants.push(value.trim());
  } else opts.set(m[1]!, value);
}
/** A whole-number option (numberOption checks the range). */
const count = (name: string, dflt: string, min: number, max: number): number => {
  const v = numberOption(WHO, name, opts.get(name) ?? dflt, min, max);
  if (!Number.isInteger(v)) {
    console.error(`${WHO}: --${name} must be a whole number, got ${JSON.stringify(opts.get(name))}`);
    process.exit(2);
  }
  return v;
};
const RUNS = count('runs', '2', 1, 20);
const WINDOWS = count('windows', '10', 1, 50);
const WINDOW = count('window', '1000', 100, 100_000);
const IDLE_MS = count('idle-ms', '0', 0, 120_000);
const LINK = opts.get('link') ?? 'mqtt';
if (LINK !== 'mqtt' && LINK !== 'tcp') {
  console.error(`${WHO}: --link must be mqtt or tcp, got ${JSON.stringify(LINK)}`);
  process.exit(2);
}
const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'quorumd.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * One fresh cluster with node flags `flags`: `windows` windows of `window` sequential
 * writes; p50/p99 of each. `aliveMs`: the cluster runs at least this long after its start.
 */
async function run(flags: string, windows: number, window: number, aliveMs = 0): Promise<{ p50: number; p99: number }[]> {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-warmup-curve-'));
  // HTTP base+1..3, TCP links base+11..13.
  const base = await freePorts(14, WHO);
  const dev = spawn(...userCommand(bin, ['dev', '--base-port', String(base), '--data-dir', join(dir, 'data'), '--link', LINK, '--no-jobs']), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, QUORUMD_DEV_NODE_FLAGS: flags },
  });
  let out = '';
  dev.stdout!.on('data', (d) => (out += d));
  dev.stderr!.on('data', (d) => (out += d));
  try {
    const t0 = Date.now();
    while (!/quorumd dev: \d+ nodes? running/.test(out) && Date.now() - t0 < 60_000 && dev.exitCode === null) await sleep(20);
    if (!/running/.test(out)) throw new Error(`quorumd dev did not start (node flags "${flags}"):\n${out}`);
    const token = join(dir, 'data', 'api.token');
    if (existsSync(token)) process.env.QUORUMD_API_TOKEN = readFileSync(token, 'utf8').trim();
    const urls = [1, 2, 3].map((k) => `http://127.0.0.1:${base + k}`);
    const l = JSON.parse((await call(urls[0]!, 'GET', '/v1/leader')).body.toString()) as { leader: string };
    const leader = urls[Number(l.leader.slice(1)) - 1]!;
    if (IDLE_MS > 0) await sleep(IDLE_MS);
    const result: { p50: number; p99: number }[] = [];
    for (let w = 0; w < windows; w++) {
      const lat: number[] = [];
      for (let i = 0; i < window; i++) {
        const s = performance.now();
        const r = await call(leader, 'PUT', '/v1/kv/seq', { body: 'v'.repeat(16) });
        if (r.status !== 200) throw new Error(`write ${w * window + i} answered ${r.status}: ${r.body.toString().slice(0, 200)}`);
        lat.push(performance.now() - s);
      }
      result.push({ p50: pct(lat, 50), p99: pct(lat, 99) });
    }
    await sleep(aliveMs - (performance.now() - started));
    return result;
  } finally {
    dev.kill('SIGTERM');
    await Promise.race([new Promise((r) => dev.once('exit', r)), sleep(10_000)]);
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

console.log(`quorumd: ${await prepareBin(bin, WHO)}`);
console.log(`${WHO}: ${RUNS} run(s) per variant, interleaved; ${WINDOWS} windows of ${WINDOW} sequential writes from the first on (--link ${LINK}, idle ${IDLE_MS} ms before them)`);
// Untimed, once per variant: warms this process's client code, and lets each variant's nodes
// write the V8 code cache for their flags (a cache is keyed by them, and written ~5 s after a
// node starts: bin/code-cache.js), so that no counted run starts without one.
for (const v of variants) await run(v, 1, 3000, 8000);
const curves = new Map<string, { p50: number; p99: number }[][]>(variants.map((v) => [v, []]));
for (let r = 0; r < RUNS; r++) {
  for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
    const c = await run(v, WINDOWS, WINDOW);
    curves.get(v)!.push(c);
    console.log(`  run ${r + 1}, ${v || 'default'}: ${c.map((x) => `${x.p50.toFixed(2)}/${x.p99.toFixed(2)}`).join(' ')}`);
  }
}
const header = Array.from({ length: WINDOWS }, (_, w) => `${(w * WINDOW) / 1000}k–${((w + 1) * WINDOW) / 1000}k`);
console.log(`\n| node flags: p50 / p99 ms, median of the runs | ${header.join(' | ')} |`);
console.log(`|---|${header.map(() => '---:').join('|')}|`);
for (const [v, cs] of curves) {
  const cells = header.map((_, w) => `${median(cs.map((c) => c[w]!.p50)).toFixed(2)} / ${median(cs.map((c) => c[w]!.p99)).toFixed(2)}`);
  console.log(`| ${v || 'default'} | ${cells.join(' | ')} |`);
}
