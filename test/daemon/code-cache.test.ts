/**
 * bin/code-cache.js: the node process's bundle (dist/node.cjs) compiled with a V8 code
 * cache. Each case runs in a child process (plain node, as the bin does), so that V8
 * sees a fresh isolate with the bin's flags:
 *   - no cache → the bundle runs, a cache is written; the next process accepts it;
 *   - the file name carries a hash of the bundle: a changed bundle of the same length
 *     (V8 alone would take the old bytecode for it) gets a cache of its own, and
 *     writing it removes the old build's; of one build, the caches of the three flag
 *     sets used last stay;
 *   - a damaged cache is refused by V8, the bundle still runs and the cache is rewritten;
 *   - QUORUMD_CODE_CACHE=off, and a directory that cannot be written: no cache, same result;
 *   - a node process loads no ES module machinery (bin/ is CommonJS), a CLI command does;
 *   - end to end: `quorumd start --config` through the bin, twice — the second node
 *     starts from the cache the first one wrote, serves, and settles its memory
 *     (bin/settle-memory.js, tested in settle-memory.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { testTokenFile, testToken } from '../helpers/auth.ts';
import { CJS_WRAPPER } from '../../scripts/build.mjs';
import { binLoaded } from '../helpers/loaded-modules.ts';

const root = join(import.meta.dirname, '..', '..');
const loader = join(root, 'bin', 'code-cache.js');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'quorumd-codecache-'));
  dirs.push(d);
  return d;
}

/** A small CommonJS "bundle", in its module wrapper as the build writes dist/node.cjs; its answer shows which source ran. */
function bundleText(answer: string): string {
  return `${CJS_WRAPPER[0]}'use strict';\nfunction work(n) { let s = 0; for (let i = 0; i < n; i++) s += i % 7; return s; }\nexports.answer = ${JSON.stringify(answer)};\nexports.sum = work(1000);\nexports.where = __filename;\n${CJS_WRAPPER[1]}`;
}

/** Loads `bundle` in a child through bin/code-cache.js; the cache is written at once. */
function run(bundle: string, env: Record<string, string> = {}) {
  const code = `
    const { loadWithCodeCache } = await import(${JSON.stringify(loader)});
    // The loader's timer does not hold a process open (a node runs anyway): this one does.
    const alive = setTimeout(() => {}, 20_000);
    const r = loadWithCodeCache(${JSON.stringify(bundle)}, { writeAfterMs: 0, onWrite: (err) => {
      clearTimeout(alive);
      console.log(JSON.stringify({ answer: r.exports.answer, sum: r.exports.sum, cache: r.cache, file: r.file, wrote: err }));
    } });
    if (r.cache === 'accepted' || r.cache === 'off') {
      clearTimeout(alive);
      console.log(JSON.stringify({ answer: r.exports.answer, sum: r.exports.sum, cache: r.cache, file: r.file, wrote: 'not needed', problem: r.problem }));
    }`;
  // The same command line every time: the cache's name depends on the process's flags.
  return spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, QUORUMD_CODE_CACHE: '', QUORUMD_CODE_CACHE_DIR: '', CACHE_DIRECTORY: '', ...env } });
}
function load(bundle: string, env: Record<string, string> = {}): { answer: string; sum: number; cache: string; file: string | null; wrote: string | null } {
  const r = run(bundle, env);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim());
}

/** A fresh directory holding b.cjs, the bundle whose answer is "one". */
function bundleOne(): { dir: string; bundle: string } {
  const dir = tempDir();
  const bundle = join(dir, 'b.cjs');
  writeFileSync(bundle, bundleText('one'));
  return { dir, bundle };
}

/** `data` with every 97th byte from the 64th changed: bits flipped all through a cache. */
function flipBits(data: Buffer): Buffer {
  const out = Buffer.from(data);
  for (let i = 64; i < out.length; i += 97) out[i]! ^= 0x5a;
  return out;
}

const caches = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.codecache')).sort();

describe('code cache (bin/code-cache.js)', () => {
  it('written by the first process, accepted by the next, beside the bundle by default', () => {
    const { dir, bundle } = bundleOne();
    const first = load(bundle);
    expect(first).toMatchObject({ answer: 'one', sum: 2997, cache: 'none', wrote: null });
    expect(first.file).toMatch(new RegExp(`^${dir}/b\\.cjs-[0-9a-f]{16}-[0-9a-f]{8}\\.codecache$`));
    expect(caches(dir)).toHaveLength(1);
    const second = load(bundle);
    expect(second).toMatchObject({ answer: 'one', sum: 2997, cache: 'accepted', file: first.file });
  });

  it('a changed bundle of the same length gets its own cache (V8 checks only the length); the old one is removed', () => {
    const { dir, bundle } = bundleOne();
    const old = load(bundle);
    writeFileSync(bundle, bundleText('two'));
    const changed = load(bundle);
    expect(changed).toMatchObject({ answer: 'two', cache: 'none', wrote: null });
    expect(changed.file).not.toBe(old.file);
    expect(caches(dir)).toEqual([changed.file!.slice(dir.length + 1)]);
    // Why the name matters: V8 accepts the data of "two" for the source of "one" (same
    // length) and runs the old build's code.
    writeFileSync(old.file!, readFileSync(changed.file!));
    writeFileSync(bundle, bundleText('one'));
    expect(load(bundle)).toMatchObject({ answer: 'two', cache: 'accepted' });
  });

  it("one build's caches: those of the three flag sets used last stay (a checkout collected one per set for good)", () => {
    const { dir, bundle } = bundleOne();
    const { file } = load(bundle);
    const F = file!.slice(dir.length + 1);
    // Caches of the same build written under other node flags (the flags' hash is the
    // name's last part), each used at another moment; ours the longest ago.
    const now = Date.now() / 1000;
    const other = (k: number) => F.replace(/-[0-9a-f]{8}\.codecache$/, `-0000000${k}.codecache`);
    const usedAt = (f: string, secondsAgo: number) => utimesSync(join(dir, f), now - secondsAgo, now - secondsAgo);
    for (const k of [1, 2, 3, 4]) {
      writeFileSync(join(dir, other(k)), 'x');
      usedAt(other(k), 50 - k * 10);
    }
    usedAt(F, 100);
    // Accepted: marked used, so it is among the three kept.
    expect(load(bundle)).toMatchObject({ cache: 'accepted' });
    expect(statSync(file!).mtimeMs / 1000).toBeGreaterThan(now - 5);
    const { removeStaleCaches, CACHES_PER_BUILD } = createRequire(import.meta.url)(loader);
    expect(CACHES_PER_BUILD).toBe(3);
    removeStaleCaches(dir, bundle, readFileSync(bundle, 'latin1'));
    expect(caches(dir)).toEqual([F, other(3), other(4)].sort());
    // A cache just written stays whatever its neighbours' times: here it is rewritten
    // (damaged) while three others carry later times (a clock set back since).
    for (const k of [5, 6]) {
      writeFileSync(join(dir, other(k)), 'x');
      usedAt(other(k), -60 * k);
    }
    usedAt(other(4), -30);
    writeFileSync(file!, 'damaged');
    usedAt(F, 100);
    expect(load(bundle)).toMatchObject({ cache: 'damaged', wrote: null });
    expect(caches(dir)).toEqual([F, other(5), other(6)].sort());
  });

  it('a damaged cache is refused: the bundle runs from its source and the cache is written again', () => {
    const { dir, bundle } = bundleOne();
    const { file } = load(bundle);
    const good = readFileSync(file!);
    // Cut short: damaged (the checksum), and V8 refuses it too (its length check).
    writeFileSync(file!, good.subarray(0, good.length >> 1));
    expect(load(bundle)).toMatchObject({ answer: 'one', sum: 2997, cache: 'damaged', wrote: null });
    expect(load(bundle)).toMatchObject({ answer: 'one', cache: 'accepted' });
    // Bits flipped in the bytecode: V8 alone runs it (a wrong sum, see below); the checksum stops it.
    writeFileSync(file!, flipBits(good));
    expect(load(bundle)).toMatchObject({ answer: 'one', sum: 2997, cache: 'damaged', wrote: null });
    expect(load(bundle)).toMatchObject({ answer: 'one', sum: 2997, cache: 'accepted' });
    // Whole, but V8 refuses it (here: made for a source of another length): rejected.
    const other = join(dir, 'other.cjs');
    writeFileSync(other, bundleText('three'));
    const o = load(other);
    writeFileSync(o.file!, readFileSync(file!));
    expect(load(other)).toMatchObject({ answer: 'three', sum: 2997, cache: 'rejected', wrote: null });
    expect(load(other)).toMatchObject({ answer: 'three', cache: 'accepted' });
  });

  it('why the checksum: V8 by itself runs a cache with flipped bits (if this fails, V8 checks now)', () => {
    const { bundle } = bundleOne();
    const { file } = load(bundle);
    const data = flipBits(readFileSync(file!).subarray(32));
    writeFileSync(file!, Buffer.concat([createHash('sha256').update(data).digest(), data]));
    const r = run(bundle);
    // Accepted by V8, and then either a wrong result or a crash: never the right sum.
    const ran = r.status === 0 ? (JSON.parse(r.stdout.trim()) as { cache: string; sum: number }) : undefined;
    if (ran !== undefined) expect(ran.cache).toBe('accepted');
    expect(ran?.sum).not.toBe(2997);
  });

  it('off, elsewhere, or nowhere writable: the bundle runs the same', () => {
    const { dir, bundle } = bundleOne();
    expect(load(bundle, { QUORUMD_CODE_CACHE: 'off' })).toMatchObject({ answer: 'one', cache: 'off', file: null });
    expect(caches(dir)).toEqual([]);
    // A value it does not know is not guessed at: no cache, and a line that says why.
    const odd = run(bundle, { QUORUMD_CODE_CACHE: '0' });
    expect(odd.status, odd.stderr).toBe(0);
    expect(JSON.parse(odd.stdout.trim())).toMatchObject({ answer: 'one', cache: 'off', problem: 'QUORUMD_CODE_CACHE: expected on or off, got "0"; running without a code cache' });
    expect(caches(dir)).toEqual([]);
    expect(load(bundle, { QUORUMD_CODE_CACHE: 'on' })).toMatchObject({ cache: 'none', wrote: null });
    rmSync(join(dir, caches(dir)[0]!));
    // systemd's CacheDirectory= (the first of a list), and an explicit directory before it.
    const sys = join(dir, 'sys');
    mkdirSync(sys);
    expect(load(bundle, { CACHE_DIRECTORY: `${sys}:/elsewhere` })).toMatchObject({ cache: 'none', wrote: null });
    expect(caches(sys)).toHaveLength(1);
    const mine = join(dir, 'mine', 'deeper');
    expect(load(bundle, { QUORUMD_CODE_CACHE_DIR: mine, CACHE_DIRECTORY: sys })).toMatchObject({ cache: 'none', wrote: null });
    expect(caches(mine)).toHaveLength(1);
    // A directory this process cannot write to (root ignores modes: a file in the way instead).
    const blocked = join(dir, 'blocked');
    writeFileSync(blocked, 'a file where the directory would be');
    const r = load(bundle, { QUORUMD_CODE_CACHE_DIR: join(blocked, 'cache') });
    expect(r).toMatchObject({ answer: 'one', sum: 2997, cache: 'none' });
    expect(r.wrote).toMatch(/EEXIST|ENOTDIR/);
  });

  it('npm pack leaves code caches out of the package (each machine writes its own)', () => {
    // A name no loader or build removes meanwhile (not node.cjs-<hash>-<hash>.codecache).
    const planted = join(root, 'dist', `zz-pack-test-${process.pid}.codecache`);
    writeFileSync(planted, 'not a cache');
    try {
      const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const files = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
      expect(files).toContain('dist/node.cjs');
      expect(files).toContain('bin/code-cache.js');
      expect(files.filter((f) => f.endsWith('.codecache'))).toEqual([]);
    } finally {
      rmSync(planted, { force: true });
    }
  });

  it('a node process runs without ES modules (bin/ is CommonJS); a CLI command loads them', () => {
    // A node (its config missing: it ends at once, with the CLI's message, through its bundle).
    const node = binLoaded(['start', '--config', join(tempDir(), 'missing.yaml')], { QUORUMD_BUILD_CHECKED: '1' }).builtins;
    expect(node).toContain('NativeModule vm');
    expect(node.filter((m) => m.startsWith('NativeModule internal/modules/esm/') && !/\/(utils|assert|loader)$/.test(m))).toEqual([]);
    // The same check on a CLI command, which imports dist/'s ES modules: it can fail.
    const cli = binLoaded(['--version'], { QUORUMD_BUILD_CHECKED: '1' }).builtins;
    expect(cli).toContain('NativeModule internal/modules/esm/module_job');
  });

  it('a node through the bin: the first start writes the cache, the second starts from it and serves', async () => {
    const dir = tempDir();
    const cacheDir = join(dir, 'cache');
    const broker: RunningBroker = await startBroker({ port: 0, host: '127.0.0.1', open: true });
    try {
      const cfg = join(dir, 'n1.yaml');
      writeFileSync(
        cfg,
        `cluster: { name: cc, id: 9, key: ${'ab'.repeat(32)} }
members:
  - { id: 1, name: n1 }
node: { name: n1, dataDir: ${JSON.stringify(join(dir, 'data'))} }
mqtt: { brokers: [mqtt://127.0.0.1:${broker.port}] }
http: { listen: 127.0.0.1:0, tokenFile: ${JSON.stringify(testTokenFile())} }
log: { level: info }
`,
      );
      const runNode = async (waitForCache: boolean): Promise<{ trace: string; status: unknown }> => {
        const child = spawnTied(process.execPath, [join(root, 'bin', 'quorumd.js'), 'start', '--config', cfg], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, QUORUMD_TRACE_START: '1', QUORUMD_CODE_CACHE_DIR: cacheDir, QUORUMD_CODE_CACHE: '' },
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<void>((r) => child.on('exit', () => r()));
        try {
          const deadline = Date.now() + 60_000;
          let url: string | undefined;
          while (url === undefined && Date.now() < deadline) {
            url = /"http":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1];
            if (url === undefined) await new Promise((r) => setTimeout(r, 50));
          }
          expect(url, out).toBeDefined();
          let status: unknown;
          while (Date.now() < deadline) {
            const res = await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${testToken()}` } }).catch(() => undefined);
            if (res?.ok) {
              status = await res.json();
              if ((status as { role?: string }).role === 'leader') break;
            }
            await new Promise((r) => setTimeout(r, 50));
          }
          // Both bundles' caches: the node's and its config parser's (dist/config.cjs).
          while (waitForCache && Date.now() < deadline && !(existsSync(cacheDir) && caches(cacheDir).length >= 2)) await new Promise((r) => setTimeout(r, 100));
          // A started node favours memory for a while, from 3 s after its start (bin/settle-memory.js).
          while (!waitForCache && Date.now() < deadline && !out.includes('memory settle: --optimize-for-size on')) await new Promise((r) => setTimeout(r, 100));
          return { trace: out, status };
        } finally {
          child.kill('SIGTERM');
          await exited;
        }
      };
      const first = await runNode(true);
      expect(first.trace).toContain('node bundle loaded (code cache none)');
      expect(first.trace).toContain('config bundle loaded (code cache none)');
      expect(first.status).toMatchObject({ role: 'leader' });
      expect(caches(cacheDir).map((f) => f.split('-')[0])).toEqual(['config.cjs', 'node.cjs']);
      const second = await runNode(false);
      expect(second.trace).toContain('node bundle loaded (code cache accepted)');
      expect(second.trace).toContain('config bundle loaded (code cache accepted)');
      expect(second.status).toMatchObject({ role: 'leader' });
      expect(second.trace).toContain('memory settle: --optimize-for-size on');
    } finally {
      await new Promise<void>((r) => broker.close(() => r()));
    }
  }, 150_000);
});
