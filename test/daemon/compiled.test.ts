/**
 * The compiled daemon (scripts/build.mjs → dist/): plain JavaScript, no loader.
 *   - an application in its own folder that only has `quorumd` in node_modules imports
 *     `startNode` with plain `node` (no tsx), starts a node against a real broker, writes
 *     and reads a key, stops;
 *   - what a client command loads: from dist/cli.js, the module graph of the `kv` /
 *     `status` commands reaches no daemon code and none of the daemon's heavy packages.
 */
import { spawnTied } from '../helpers/tied.ts';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { isFresh } from '../../scripts/build.mjs';
import { binLoaded } from '../helpers/loaded-modules.ts';

const root = join(import.meta.dirname, '..', '..');
const dist = join(root, 'dist');

/** Static and dynamic imports of one built module: relative chunk names and bare package names. */
function importsOf(file: string): { local: string[]; dynamic: string[]; packages: string[] } {
  const src = readFileSync(join(dist, file), 'utf8');
  const local = new Set<string>();
  const dynamic = new Set<string>();
  const packages = new Set<string>();
  for (const m of src.matchAll(/(?:^|[;\s}])import\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+)["']/g)) {
    const spec = m[1]!;
    if (spec.startsWith('./')) local.add(spec.slice(2));
    else packages.add(spec);
  }
  for (const m of src.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)) {
    const spec = m[1]!;
    if (spec.startsWith('./')) dynamic.add(spec.slice(2));
    else packages.add(spec);
  }
  return { local: [...local], dynamic: [...dynamic], packages: [...packages] };
}

/** Every module a module loads before it runs (static imports, transitively), and the packages they name. */
function staticClosure(file: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [file];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    const i = importsOf(f);
    i.packages.forEach((p) => packages.add(p));
    todo.push(...i.local);
  }
  return { files, packages };
}

describe('compiled daemon (dist/)', () => {
  let broker: RunningBroker | undefined;
  const dirs: string[] = [];
  afterAll(async () => {
    if (broker) await new Promise<void>((r) => broker!.close(() => r()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('is built and up to date (vitest globalSetup builds it)', () => {
    expect(isFresh(root)).toBe(true);
    expect(readdirSync(dist)).toEqual(expect.arrayContaining(['cli.js', 'index.js', 'cli.js.map', 'index.js.map']));
    // No TypeScript is imported at run time.
    for (const f of readdirSync(dist).filter((n) => n.endsWith('.js'))) {
      const i = importsOf(f);
      expect([...i.local, ...i.dynamic, ...i.packages].filter((s) => s.endsWith('.ts')), f).toEqual([]);
    }
  });

  it('leaves out what a node never runs: the MQTT client\'s browser timers and the userland copy of Node\'s streams', () => {
    // scripts/build.mjs aliases them (readable-stream → node:stream, worker-timers → a stub).
    const built = (JSON.parse(readFileSync(join(dist, '.build-stamp.json'), 'utf8')) as { files: string[] }).files.filter((f) => f.endsWith('.js'));
    const text = built.map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    for (const pkg of ['readable-stream', 'worker-timers', '@babel/runtime', 'broker-factory']) expect(text.includes(`node_modules/${pkg}/`), pkg).toBe(false);
    // The mqtt client is still in (the stub keeps its browser-only branch).
    expect(text.includes('node_modules/mqtt/')).toBe(true);
  });

  it('a client command loads neither the daemon nor its heavy packages', () => {
    const cli = importsOf('cli.js');
    // The commander program itself: node built-ins only (commander is bundled).
    for (const p of staticClosure('cli.js').packages) expect(p.startsWith('node:'), p).toBe(true);
    const commands = cli.dynamic.filter((f) => f.startsWith('commands-'));
    expect(commands).toHaveLength(1);
    const { files, packages } = staticClosure(commands[0]!);
    for (const heavy of ['mqtt', 'aedes', 'serialport', 'pino', 'zod', 'yaml', 'cbor-x', 'node-cron', 'mqtt-packet']) expect(packages.has(heavy), heavy).toBe(false);
    // Nor bundled into what it loads: none of the daemon's modules, none of the
    // packages the build inlines (mqtt, aedes, zod, pino, yaml), and little code at all.
    const text = [...files].map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    for (const marker of ['class EngineRuntime', 'class RaftNode', 'class MqttLink', 'class DurableLog', 'MqttClient', 'Aedes', 'ZodError', 'pino', 'YAMLParseError']) expect(text.includes(marker), marker).toBe(false);
    const cliText = [...staticClosure('cli.js').files].map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    expect(text.length + cliText.length).toBeLessThan(300_000);
  });

  it('a CLI call loads no crypto: `kv get` against a node that is not there', () => {
    // Node's crypto module costs a call ~4 ms; only `lock acquire` needs random bytes (a
    // lease id), and takes them from Web Crypto's global, which loads it on first use.
    const r = binLoaded(['kv', 'get', 'x', '--node', 'http://127.0.0.1:9'], { QUORUMD_BUILD_CHECKED: '1' });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toContain('ECONNREFUSED');
    expect(r.builtins).toContain('NativeModule http');
    expect(r.builtins.filter((m) => /^NativeModule (internal\/)?crypto/.test(m))).toEqual([]);
  });

  it('the dev supervisor loads no YAML parser, zod or node-cron (a jobs file is checked by a child), and no engine', () => {
    // What `quorumd dev` loads before and while it runs: cli.js, the dev module and what it
    // imports statically, and the module that checks a --jobs file in a child process.
    const cli = importsOf('cli.js');
    const entry = [...cli.dynamic.filter((f) => f.startsWith('dev-') || f.startsWith('jobs-file-'))];
    expect(entry.filter((f) => f.startsWith('dev-'))).toHaveLength(1);
    const files = new Set<string>();
    const packages = new Set<string>();
    for (const e of entry) {
      const c = staticClosure(e);
      c.files.forEach((f) => files.add(f));
      c.packages.forEach((p) => packages.add(p));
    }
    for (const heavy of ['zod', 'yaml', 'node-cron', 'serialport', 'pino']) expect(packages.has(heavy), heavy).toBe(false);
    const text = [...files].map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    for (const marker of ['ZodError', 'YAMLParseError', 'class RaftNode', 'class PbftNode', 'class EngineRuntime']) expect(text.includes(marker), marker).toBe(false);
  });

  it('the node process runs a bundle of its own (dist/node.cjs): CommonJS for the code cache, without the command line, dev, sim or broker', () => {
    const built = (JSON.parse(readFileSync(join(dist, '.build-stamp.json'), 'utf8')) as { files: string[] }).files;
    expect(built).toEqual(expect.arrayContaining(['node.cjs', 'node.cjs.map']));
    const node = readFileSync(join(dist, 'node.cjs'), 'utf8');
    const esm = built.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(dist, f), 'utf8')).join('\n');
    for (const marker of ['CommanderError', 'function startDev', 'function runSim', 'function runBroker']) {
      expect(esm.includes(marker), marker).toBe(true);
      expect(node.includes(marker), marker).toBe(false);
    }
    expect(node).toContain('function runNodeCommand');
    // bin/code-cache.js compiles it with vm.Script, which has no loader for import():
    // the modules a node loads lazily are inlined (and run on first use).
    expect(node).not.toMatch(/\bimport\(/);
    // What it requires: Node's modules and the packages the build keeps external, no
    // TypeScript; cbor-x is inside (in the code cache), without its native extractor.
    const EXTERNAL = ['serialport', 'node-cron', 'etcd3', 'node-zookeeper-client', 'cockatiel'];
    expect(node).toContain('left out of the node bundle');
    const required = new Set([...node.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!));
    for (const r of required) expect(r.startsWith('node:') || builtinModules.includes(r) || EXTERNAL.includes(r) || r.startsWith('@serialport/'), r).toBe(true);
  });

  it('no built module imports node:tls, node:https or node-cron up front: only a process with TLS configured, or with jobs, loads them (hal/lazy-builtins.ts, daemon/jobs/node-cron.ts)', () => {
    const built = (JSON.parse(readFileSync(join(dist, '.build-stamp.json'), 'utf8')) as { files: string[] }).files.filter((f) => f.endsWith('.js'));
    for (const f of built) {
      const p = importsOf(f).packages;
      expect(p.filter((x) => /^((node:)?(tls|https)|node-cron)$/.test(x)), f).toEqual([]);
    }
  });

  it('embeds with plain node: import { startNode } from "quorumd" in an application folder', async () => {
    broker = await startBroker({ port: 0, host: '127.0.0.1', open: true });
    const app = mkdtempSync(join(tmpdir(), 'quorumd-embed-'));
    dirs.push(app);
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(root, join(app, 'node_modules', 'quorumd'), 'dir');
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pump-controller', type: 'module', private: true }));
    writeFileSync(
      join(app, 'node.yaml'),
      `cluster: { name: embed, id: 9, key: ${'ab'.repeat(32)} }
members:
  - { id: 1, name: n1 }
node: { name: n1, dataDir: ${JSON.stringify(join(app, 'data'))} }
mqtt: { brokers: [mqtt://127.0.0.1:${broker.port}] }
http: { listen: 127.0.0.1:0 }
log: { level: warn }
`,
      { mode: 0o600 }, // it holds the cluster key inline
    );
    writeFileSync(
      join(app, 'app.mjs'),
      `import { startNode } from 'quorumd';
const node = await startNode(new URL('./node.yaml', import.meta.url).pathname, { httpPort: 0 });
const deadline = Date.now() + 20000;
while (!node.runtime.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const put = await new Promise((r) => node.runtime.put('pump/state', new TextEncoder().encode('on'), {}, r));
const token = (await import('node:fs')).readFileSync(new URL('./data/api.token', import.meta.url), 'utf8').trim();
const res = await fetch(node.url + '/v1/kv/pump/state', { headers: { authorization: 'Bearer ' + token } });
console.log(JSON.stringify({ put: put.status, index: put.index, get: res.status, value: await res.text(), loaders: process.execArgv }));
await node.stop();
`,
    );
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawnTied(process.execPath, ['app.mjs'], { cwd: app, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      const t = setTimeout(() => p.kill('SIGKILL'), 40_000);
      // 'close', not 'exit': 'exit' may come before the last of stdout is read, and the
      // app's answer is its last line.
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code, stdout, stderr });
      });
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const r = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as { put: number; index: number; get: number; value: string; loaders: string[] };
    expect(r).toMatchObject({ put: 200, get: 200, value: 'on', loaders: [] });
    expect(r.index).toBeGreaterThan(0);
  });
});
