/**
 * N `quorumd start` child processes with engine: etcd or engine: zookeeper, for the
 * end-to-end test (e2e.test.ts) and bench/external-failover.ts: configs written to a
 * temp dir (mode 0600: they hold the cluster key), logs per node, SIGKILL and restart
 * by node, the HTTP API on free ports. Every wait is a bounded poll.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, until } from './servers.ts';
import { testToken, testTokenFile } from '../helpers/auth.ts';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');

export interface ProcNode {
  name: string;
  config: string;
  log: string;
  port: number;
  child: ChildProcess | undefined;
}

export interface ExternalProcOptions {
  engine: 'etcd' | 'zookeeper';
  /** etcd endpoints (URLs) or ZooKeeper servers (host:port). */
  endpoints: string[];
  nodes?: number;
  /** YAML lines inside the engine's section besides endpoints/servers. */
  sectionYaml?: string;
  /** Extra top-level YAML (hooks, jobs...), or a function of the cluster's temp dir (and the node's name) giving it. */
  extraYaml?: string | ((dir: string, node: string) => string);
}

export class ExternalProcCluster {
  readonly nodes: ProcNode[] = [];
  readonly dir: string;

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'i18-proc-'));
  }

  static async start(o: ExternalProcOptions): Promise<ExternalProcCluster> {
    const c = new ExternalProcCluster();
    const n = o.nodes ?? 3;
    const key = randomBytes(32).toString('hex');
    const members = Array.from({ length: n }, (_, i) => `  - { id: ${i + 1}, name: q${i + 1} }`).join('\n');
    const section =
      o.engine === 'etcd'
        ? `etcd:\n  endpoints: [${o.endpoints.join(', ')}]\n  prefix: /quorumd-e2e/${process.pid}-${Date.now()}/\n${o.sectionYaml ?? ''}`
        : `zookeeper:\n  servers: [${o.endpoints.join(', ')}]\n  chroot: /quorumd-e2e/p${process.pid}-${Date.now()}\n${o.sectionYaml ?? ''}`;
    for (let i = 1; i <= n; i++) {
      const port = await freePort();
      const file = join(c.dir, `q${i}.yaml`);
      writeFileSync(
        file,
        [
          `cluster: { name: e2e, key: "${key}" }`,
          `members:\n${members}`,
          `node: { name: q${i}, dataDir: ${join(c.dir, `q${i}`)} }`,
          `engine: ${o.engine}`,
          section,
          `http: { listen: "127.0.0.1:${port}", tokenFile: ${JSON.stringify(testTokenFile())}, requestTimeoutMs: 3000 }`,
          'log: { level: info }',
          typeof o.extraYaml === 'function' ? o.extraYaml(c.dir, `q${i}`) : (o.extraYaml ?? ''),
        ].join('\n'),
        { mode: 0o600 },
      );
      c.nodes.push({ name: `q${i}`, config: file, log: join(c.dir, `q${i}.log`), port, child: undefined });
    }
    for (const node of c.nodes) c.spawn(node);
    await Promise.all(c.nodes.map((node) => until(`${node.name} HTTP up`, () => c.status(node).then((s) => s !== undefined), 60_000, 100)));
    return c;
  }

  spawn(node: ProcNode): void {
    const log = createWriteStream(node.log, { flags: 'a' });
    const child = spawnTied(process.execPath, [BIN, 'start', '--config', node.config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    node.child = child;
    child.on('exit', () => {
      if (node.child === child) node.child = undefined;
    });
  }

  /** The API credential every node of the tests uses (test/helpers/auth.ts; the CLI finds it through QUORUMD_API_TOKEN_FILE). */
  auth(): Record<string, string> {
    return { Authorization: `Bearer ${testToken()}` };
  }

  url(node: ProcNode): string {
    return `http://127.0.0.1:${node.port}`;
  }

  async status(node: ProcNode): Promise<{ role: string; active: boolean; leader: string | null; token: number; term: number } | undefined> {
    try {
      const r = await fetch(`${this.url(node)}/v1/status`, { headers: this.auth(), signal: AbortSignal.timeout(1000) });
      if (!r.ok) return undefined;
      return (await r.json()) as { role: string; active: boolean; leader: string | null; token: number; term: number };
    } catch {
      return undefined;
    }
  }

  async put(node: ProcNode, key: string, value: string): Promise<number> {
    try {
      const r = await fetch(`${this.url(node)}/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value, headers: this.auth(), signal: AbortSignal.timeout(5000) });
      return r.status;
    } catch {
      return 0;
    }
  }

  alive(node: ProcNode): boolean {
    return node.child !== undefined && node.child.exitCode === null && node.child.signalCode === null;
  }

  /** The node whose /v1/status says active (polled until exactly one of the running ones is). */
  async activeNode(ms = 60_000): Promise<ProcNode> {
    return until('one active quorumd node', async () => {
      const st = await Promise.all(this.nodes.map(async (n) => (this.alive(n) ? await this.status(n) : undefined)));
      const act = this.nodes.filter((_, i) => st[i]?.active === true);
      return act.length === 1 ? act[0] : undefined;
    }, ms, 20);
  }

  async kill(node: ProcNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const ch = node.child;
    if (!ch || ch.exitCode !== null || ch.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 10_000);
      ch.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      ch.kill(signal);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n, 'SIGTERM')));
    await Promise.all(this.nodes.map((n) => this.kill(n, 'SIGKILL')));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
