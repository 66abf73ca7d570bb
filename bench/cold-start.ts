/**
 * Where a `quorumd dev` cold start goes (issue 14): spawns `quorumd dev` (3 nodes, the
 * compiled bin, fsync on) and, from the spawn on, tries a PUT on every node every 10 ms
 * (as bench/vs-etcd.ts does for etcd) while it watches what the supervisor and the
 * nodes print. One line per round with the time from the spawn to:
 *
 *   http      the first node's HTTP API answers at all (process spawn + module loading
 *             + config + storage + links + listen)
 *   leader    the first node names a leader (/v1/leader)
 *   write     the first PUT answered 200 (committed)
 *   guide     the supervisor printed its guide (`quorumd dev: 3 nodes running`): it
 *             waits until every node agrees on the leader and serves a linearizable read
 *             and that has held for a while, so that the first command of the guide
 *             never meets an election
 *
 * and the medians over the rounds. Each round waits (bounded) for the 1-minute load to
 * drop below --max-load and prints the load it started at.
 *
 * Trace points: the supervisor and the nodes run with QUORUMD_TRACE_START=1
 * (daemon/start-trace.ts) and the round prints, for each start-up step, the time from
 * the spawn (median over the nodes, and the last node) and the CPU the process had
 * used by then: where a cold start goes, step by step (process start, module load,
 * config, links, storage open and the first engine step, peer reachable, leader).
 *
 *   npm run bench -- cold-start [--rounds 5] [--nodes 3] [--max-load 2]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../daemon/client/http.ts';
import { freeBasePort } from '../test/helpers/ports.ts';
import { prepareBin, userCommand } from './_proc.ts';

function num(name: string, dflt: number, min: number, max: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : undefined;
  const v = raw === undefined ? dflt : Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    console.error(`cold-start: --${name} must be a number in ${min}..${max}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return v;
}
const ROUNDS = num('rounds', 5, 1, 50);
const NODES = num('nodes', 3, 1, 7);
const MAX_LOAD = num('max-load', 2, 0.1, 100);
const root = join(import.meta.dirname, '..');
const bin = join(root, 'bin', 'quorumd.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

/** Start-up steps seen: step → per process, [ms from the spawn, CPU ms so far]. */
type Steps = Map<string, Array<[number, number]>>;

/** The start-trace lines of `text` (daemon/start-trace.ts), into `steps`, timed from `t0Wall` (epoch ms). */
function readSteps(text: string, t0Wall: number, steps: Steps, prefix: string): void {
  for (const m of text.matchAll(/^quorumd start-trace (.+) \+[\d.]+ @([\d.]+) cpu ([\d.]+)$/gm)) {
    const k = `${prefix}${m[1]!}`;
    if (!steps.has(k)) steps.set(k, []);
    steps.get(k)!.push([Number(m[2]) - t0Wall, Number(m[3])]);
  }
}

interface Round {
  steps: Steps;
  load: number;
  http: number;
  leader: number;
  write: number;
  guide: number;
}

async function round(): Promise<Round> {
  const t00 = Date.now();
  while (loadavg()[0]! >= MAX_LOAD && Date.now() - t00 < 120_000) await sleep(2000);
  const load = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-cold-start-'));
  const base = await freeBasePort(NODES);
  const urls = Array.from({ length: NODES }, (_, k) => `http://127.0.0.1:${base + k + 1}`);
  const t0 = performance.now();
  const t0Wall = performance.timeOrigin + t0;
  const dev = spawn(...userCommand(bin, ['dev', '--nodes', String(NODES), '--base-port', String(base), '--data-dir', dir]), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, QUORUMD_TRACE_START: '1' } });
  let out = '';
  const r: Round = { steps: new Map(), load, http: NaN, leader: NaN, write: NaN, guide: NaN };
  dev.stdout!.on('data', (d) => {
    out += d;
    if (Number.isNaN(r.guide) && /quorumd dev: \d+ nodes? running/.test(out)) r.guide = performance.now() - t0;
  });
  dev.stderr!.on('data', (d) => (out += d));
  let token: string | undefined;
  try {
    let i = 0;
    while (performance.now() - t0 < 60_000 && (Number.isNaN(r.write) || Number.isNaN(r.guide)) && dev.exitCode === null) {
      if (token === undefined && existsSync(join(dir, 'api.token'))) token = readFileSync(join(dir, 'api.token'), 'utf8').trim() || undefined;
      if (token !== undefined && Number.isNaN(r.write)) {
        const url = urls[i++ % urls.length]!;
        const rep = await call(url, 'PUT', '/v1/kv/coldstart', { body: 'x', timeoutMs: 500, token }).catch(() => undefined);
        const now = performance.now() - t0;
        if (rep && Number.isNaN(r.http)) r.http = now;
        if (rep?.status === 200) r.write = now;
        if (rep && Number.isNaN(r.leader)) {
          const l = await call(url, 'GET', '/v1/leader', { timeoutMs: 500, token }).catch(() => undefined);
          if (l?.status === 200 && (JSON.parse(l.body.toString()) as { leader: string | null }).leader) r.leader = performance.now() - t0;
        }
      }
      await sleep(10);
    }
    if (dev.exitCode !== null) throw new Error(`quorumd dev exited (${dev.exitCode}):\n${out.slice(-2000)}`);
  } finally {
    dev.kill('SIGTERM');
    await Promise.race([new Promise((res) => dev.once('exit', res)), sleep(15_000)]);
    if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGKILL');
    // A supervisor that had to be killed leaves its node processes behind: stop them by pid
    // (`... start --config <dir>/nK.yaml`).
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmd.includes('\0start\0') && cmd.includes(`${dir}/n`)) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    readSteps(out, t0Wall, r.steps, 'supervisor: ');
    for (let k = 1; k <= NODES; k++) {
      try {
        readSteps(readFileSync(join(dir, `n${k}.log`), 'utf8'), t0Wall, r.steps, 'node: ');
      } catch {
        /* no log */
      }
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
  return r;
}

// Not timed: a stale dist/ or a missing code cache would be the first round's start (_proc.ts prepareBin).
console.log(`quorumd: ${await prepareBin(bin, 'cold-start')}`);
const f = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : '–');
const rounds: Round[] = [];
for (let k = 0; k < ROUNDS; k++) {
  const r = await round();
  rounds.push(r);
  console.log(`round ${k + 1}: load ${r.load.toFixed(2)}  http ${f(r.http)}  leader ${f(r.leader)}  write ${f(r.write)}  guide ${f(r.guide)}`);
  for (const [step, xs] of r.steps) {
    const ms = xs.map((x) => x[0]);
    const cpu = xs.map((x) => x[1]);
    console.log(`    ${step.padEnd(52)} ${xs.length > 1 ? `median ${f(median(ms)).padStart(8)}, last ${f(Math.max(...ms)).padStart(8)}` : f(ms[0]!).padStart(8)} from the spawn; CPU ${Math.round(median(cpu))} ms`);
  }
}
console.log(`median of ${ROUNDS}: http ${f(median(rounds.map((r) => r.http)))}  leader ${f(median(rounds.map((r) => r.leader)))}  write ${f(median(rounds.map((r) => r.write)))}  guide ${f(median(rounds.map((r) => r.guide)))}`);
process.exit(0);
