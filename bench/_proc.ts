/**
 * Small helpers the process-level benches share (vs-etcd.ts, idle-cpu.ts, ...): CPU time of a
 * process from /proc, a range of free TCP ports on 127.0.0.1, how a user's `quorumd` command
 * runs, a checkout made ready for timed starts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) a process has used so far; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/**
 * The whole machine's processor time so far in seconds (all CPUs; /proc/stat's first
 * line): `busy` is user, nice, system, irq and softirq; `idle` is idle and iowait. Steal
 * (time the hypervisor gave to other guests) is in neither: it is not work of this
 * machine, and it would make a segment that met a busy host look costlier. NaN for both
 * where /proc/stat cannot be read.
 */
export function machineSeconds(): { busy: number; idle: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    return { busy: (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / CLK_TCK, idle: (f[3]! + f[4]!) / CLK_TCK };
  } catch {
    return { busy: NaN, idle: NaN };
  }
}

/** `span` free TCP ports on 127.0.0.1, from the returned one on. `who` names the bench in the error. */
export async function freePorts(span: number, who: string): Promise<number> {
  const isFree = (p: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 200; attempt++) {
    // Below Linux's ephemeral range (32768+): a port there can be taken by any outgoing
    // connection between this probe and the server's listen (it happened here: a node's
    // HTTP port, and etcd members that never elected, at load 20+).
    const base = 20000 + Math.floor(Math.random() * (32000 - 20000 - span));
    let ok = true;
    for (let k = 0; k < span && ok; k++) ok = await isFree(base + k);
    if (ok) return base;
  }
  throw new Error(`${who}: no free port range found on 127.0.0.1`);
}

/**
 * A numeric option: `raw` (from the bench's own option lookup) checked against min..max;
 * anything else ends the bench with exit 2 and a message naming the option.
 */
export function numberOption(who: string, name: string, raw: string, min: number, max: number): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    console.error(`${who}: --${name} must be a number in ${min}..${max}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return v;
}

/**
 * The pids of a `quorumd dev` cluster's node processes (`... start --config <configDir>/nK.yaml`),
 * found in /proc and written into `members` (a fenced node is started again by the supervisor with
 * a new pid, so callers look again after kills).
 */
export function findNodePids(configDir: string, members: { name: string; pid: number }[]): void {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    for (const m of members) if (cmd.includes(`${join(configDir, `${m.name}.yaml`)}\0`) && cmd.includes('\0start\0')) m.pid = Number(p);
  }
}

/**
 * How a user's `quorumd <args>` runs, for the checkout of `bin` (its bin/quorumd.js):
 * the file itself, whose first lines are a shell script that execs node with the flags
 * for the command (the same process and pid); in older checkouts, whose first line was
 * `#!/usr/bin/env -S node <flags>`, node with those flags. Returns what to spawn.
 */
export function userCommand(bin: string, args: readonly string[]): [string, string[]] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0]!;
  if (first === '#!/bin/sh') return [bin, [...args]];
  const m = /^#!\S*env -S node((?: --[^\s]+)*)\s*$/.exec(first);
  if (!m) throw new Error(`${bin}: expected a first line "#!/bin/sh" or "#!/usr/bin/env -S node [--flags]", got ${JSON.stringify(first)}`);
  return [process.execPath, [...m[1]!.split(' ').filter((f) => f !== ''), bin, ...args]];
}

/**
 * `quorumd dev`'s arguments for "no scheduled job" in the checkout of `bin` (benches
 * compare with older checkouts): `--no-jobs` where its CLI has it, else an empty jobs
 * file written into `dir` (checked by a short child process before the nodes start,
 * 0.1–0.2 s later to the first write: 623–749 against 828–874 ms in 6 interleaved starts).
 */
export function devNoJobsArgs(bin: string, dir: string): string[] {
  const cli = join(dirname(bin), '..', 'daemon', 'cli.ts');
  if (existsSync(cli) && readFileSync(cli, 'utf8').includes(`'--no-jobs'`)) return ['--no-jobs'];
  const file = join(dir, 'no-jobs.yaml');
  writeFileSync(file, 'jobs: []\n');
  return ['--jobs', file];
}

/** The nodes of prepareBin's untimed `quorumd dev` start. */
const WARM_NODES = 3;

/**
 * Gets the checkout of `bin` ready for timed starts, and says what it did. Two things a
 * developer's checkout may not have yet, which would otherwise be timed as the first
 * block's start (seen in bench/vs-etcd.ts: a first block whose cold start took 2.1–2.3 s
 * instead of 0.7–0.9 and whose supervisor held 87–94 MiB instead of ~57 were the
 * supervisor rebuilding dist/ from a source just edited):
 *   - dist/ older than the sources: `quorumd` rebuilds it when it starts in a git
 *     checkout; built here first (with the checkout's own scripts/build.mjs).
 *   - V8's code cache of the node bundles (bin/code-cache.js): the first start of a build
 *     compiles them and writes it ~5 s later; every later start loads it. One untimed
 *     `quorumd dev` start here, until its nodes say they loaded the cache or have written
 *     it (bounded), so every timed start is a start with the cache, as every start of a
 *     board after its first one. The cache's name also depends on the nodes' V8 flags: a
 *     cache written by nodes run with other flags (QUORUMD_DEV_NODE_FLAGS=--cpu-prof, say)
 *     is not theirs, which is why the nodes are asked rather than the directory listed.
 * A published package (no scripts/build.mjs) or QUORUMD_CODE_CACHE=off skips either part.
 */
export async function prepareBin(bin: string, who: string): Promise<string> {
  const root = join(dirname(bin), '..');
  const said: string[] = [];
  const build = join(root, 'scripts', 'build.mjs');
  if (existsSync(build)) {
    const check = spawnSync(process.execPath, [build, '--check'], { encoding: 'utf8' });
    if (check.status !== 0) {
      const r = spawnSync(process.execPath, [build], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${who}: building ${root} failed:\n${r.stderr}${r.stdout}`);
      said.push('built dist/ first (older than the sources)');
    }
  }
  // Where that checkout's bin looks for the cache, and the name it gives the cache of this
  // very bundle (its bytes' hash; the part after it depends on the nodes' V8 flags).
  const bundle = join(root, 'dist', 'node.cjs');
  const codeCache = createRequire(bin)('./code-cache.js') as { cacheDir: (bundle: string) => string | null; cacheFileFor: (dir: string, bundle: string, code: string) => string };
  const cacheDir = codeCache.cacheDir(bundle);
  if (cacheDir === null) return [...said, 'no code cache (QUORUMD_CODE_CACHE=off)'].join('; ');
  const prefix = basename(codeCache.cacheFileFor(cacheDir, bundle, readFileSync(bundle, 'latin1'))).replace(/[0-9a-f]{8}\.codecache$/, '');
  const cached = () => {
    try {
      return readdirSync(cacheDir).some((f) => f.startsWith(prefix) && f.endsWith('.codecache'));
    } catch {
      return false;
    }
  };
  // A cache already there is removed first, so that every run measures one written the
  // same way: by this idle start, 5 s in. A cache is what its writer had compiled by then,
  // and the bytecode it holds is loaded at every start: one written by a test's nodes
  // (writes, forwarding, failovers in their first seconds) made the idle RSS rows
  // 57.1 / 57.8 MiB (private memory 16.2 / 16.7) where a cache written here gives 53.5
  // (12.4) — on the same build, the same day.
  try {
    for (const f of readdirSync(cacheDir)) if (f.startsWith(prefix) && f.endsWith('.codecache')) rmSync(join(cacheDir, f), { force: true });
  } catch {
    /* no directory yet: nothing to remove */
  }
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-bench-warm-'));
  const t0 = Date.now();
  // What each node said of its cache when it loaded its bundle (daemon/start-trace.ts); a
  // checkout whose nodes do not say it falls back to "some cache of this bundle".
  const nodeSays = (): string[] | undefined => {
    const states: string[] = [];
    for (const f of readdirSync(join(dir, 'd'), { withFileTypes: true })) {
      if (!/^n\d+\.log$/.test(f.name)) continue;
      const m = /^quorumd start-trace node bundle loaded \(code cache (\w+)\)/m.exec(readFileSync(join(dir, 'd', f.name), 'utf8'));
      if (m) states.push(m[1]!);
    }
    return states.length > 0 ? states : undefined;
  };
  const writtenSince = (since: number) => {
    try {
      return readdirSync(cacheDir).some((f) => f.startsWith(prefix) && f.endsWith('.codecache') && statSync(join(cacheDir, f)).mtimeMs >= since);
    } catch {
      return false;
    }
  };
  let verdict: 'present' | 'written' | undefined;
  const ready = (): boolean => {
    const says = existsSync(join(dir, 'd')) ? nodeSays() : undefined;
    if (says !== undefined && says.length === WARM_NODES && says.every((x) => x === 'accepted')) verdict = 'present';
    else if (writtenSince(t0 - 1000)) verdict = 'written';
    else if (says === undefined && Date.now() - t0 > 15_000 && cached()) verdict = 'present';
    return verdict !== undefined;
  };
  const dev = spawn(...userCommand(bin, ['dev', '--nodes', String(WARM_NODES), '--base-port', String(await freePorts(14, who)), '--data-dir', join(dir, 'd'), ...devNoJobsArgs(bin, dir)]), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, QUORUMD_TRACE_START: '1' } });
  let out = '';
  dev.stdout!.on('data', (d) => (out += d));
  dev.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => dev.once('exit', () => resolve()));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    while (!ready() && dev.exitCode === null && Date.now() - t0 < 30_000) await sleep(100);
  } finally {
    dev.kill('SIGINT');
    await Promise.race([exited, sleep(10_000)]);
    if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
  if (verdict === undefined) throw new Error(`${who}: in one untimed \`quorumd dev\` start the nodes neither loaded nor wrote a code cache in ${cacheDir} within 30 s:\n${out.slice(-2000)}`);
  return [...said, verdict === 'present' ? `code cache present (the nodes of one untimed start loaded it, ${((Date.now() - t0) / 1000).toFixed(1)} s)` : `one untimed start wrote the code cache (${((Date.now() - t0) / 1000).toFixed(1)} s)`].join('; ');
}
