/**
 * Real-process clusters for the links acceptance tests (test/e2e) and bench/links.ts:
 * brokers (`quorumd broker` child, Debian's mosquitto child, or an in-process
 * startBroker with accounts), socat pty pairs, and N `quorumd start` children whose
 * configs list any mix of MQTT brokers and serial links.
 *
 * Every wait is a bounded poll; `dispose()` kills every child it started (SIGTERM,
 * SIGKILL after 3 s) and removes the temp directory, and is safe to call twice or
 * after a failed start. Ports are free ports on 127.0.0.1 found by binding to 0.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../../daemon/client/http.ts';
import { startBroker, type BrokerUser, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { ptyPair, socatCheck, type PtyPair } from '../hal/serial/socat.ts';
import { spawnStart } from '../daemon/e2e/proc-cluster.ts';
import { testTokenFile } from '../helpers/auth.ts';
import { freePort } from '../helpers/ports.ts';

export const root = join(import.meta.dirname, '..', '..');
export const bin = join(root, 'bin', 'quorumd.js');
export const MOSQUITTO = process.env.MOSQUITTO ?? '/usr/sbin/mosquitto';

export { socatCheck };

/** In CI a missing mosquitto fails (CI installs it); locally it is a skip with the reason printed. */
export function mosquittoCheck(): { run: boolean; reason: string } {
  const r = spawnSync(MOSQUITTO, ['-h'], { stdio: 'ignore', timeout: 5000 });
  // mosquitto -h prints usage and exits 3 on 2.x (0 on some builds); ENOENT gives no status.
  if (r.error === undefined && r.status !== null) return { run: true, reason: '' };
  const reason = `mosquitto not found at ${MOSQUITTO}: install it (apt-get install mosquitto) to run the mosquitto e2e tests`;
  if (process.env.CI) throw new Error(`CI is set and ${reason}`);
  console.warn(`SKIP: ${reason}`);
  return { run: false, reason };
}

/**
 * Raft timing for tests that assert "no election happened". Since the board defaults
 * became 1000..2000 ms / 100 ms (docs/config.md, "Timing on a board") this equals them;
 * it stays explicit so that such a test does not change meaning if the defaults move.
 */
export const CALM_RAFT_YAML = '  electionTimeoutMinMs: 1000\n  electionTimeoutMaxMs: 2000\n  heartbeatMs: 100';

/** Free ports come from one helper: below the ephemeral range (see test/helpers/ports.ts). */
export { freePort };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `f` every 25 ms until it returns true, at most `ms`. */
export async function waitFor(f: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  for (let i = 0; i < 1_000_000; i++) {
    if (await f()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(25);
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** Percentile by nearest rank (p in 0..100) of an unsorted list; NaN when empty. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Samples of one metric family from Prometheus text: labels object → value. */
export function metricSamples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const s = metricSamples(text, name).filter((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s.reduce((a, x) => a + x.value, 0);
}

export interface SerialSpec {
  path: string;
  peer?: number;
  bus?: { members: number[] };
}

export interface NodeSpec {
  /** Broker URLs (mqtt:// on 127.0.0.1); empty or absent = no mqtt section. */
  brokers?: string[];
  username?: string;
  password?: string;
  serial?: SerialSpec[];
}

export interface ProcNode {
  id: number;
  name: string;
  url: string;
  config: string;
  log: string;
  child: ChildProcess | undefined;
}

export interface ClusterOptions {
  n: number;
  /** Links of node k (1-based). */
  links: (k: number) => NodeSpec;
  /** Extra `raft:` keys (YAML lines under raft:, two-space indented). */
  raftYaml?: string;
}

export interface BrokerProc {
  url: string;
  port: number;
  kind: 'aedes' | 'mosquitto' | 'aedes-inproc';
  child?: ChildProcess;
  inproc?: RunningBroker;
  stop(): Promise<void>;
}

/** Kills a child: SIGTERM (after SIGCONT), SIGKILL after 3 s; resolves when it has exited. */
export function killChild(c: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise<void>((r) => {
    const t = setTimeout(() => c.kill('SIGKILL'), 3000);
    c.once('exit', () => {
      clearTimeout(t);
      r();
    });
    c.kill('SIGCONT');
    c.kill(sig);
  });
}

export class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), 'quorumd-links-'));
  readonly key = randomBytes(32).toString('hex');
  /** The nodes' API token file (http.tokenFile of every config; QUORUMD_API_TOKEN_FILE names it for call()). */
  readonly tokenFile = testTokenFile();
  readonly nodes: ProcNode[] = [];
  readonly brokers: BrokerProc[] = [];
  readonly ptys: PtyPair[] = [];
  private disposed = false;

  /** The cluster key as a file (mode 0600), for `quorumd broker --cluster-key-file`. */
  keyFile(): string {
    const f = join(this.dir, 'cluster.key');
    if (!existsSync(f)) writeFileSync(f, `${this.key}\n`, { mode: 0o600 });
    return f;
  }

  /** `quorumd broker` as a child process (the embedded aedes, closed: node accounts derived from the cluster key). */
  async aedesChild(port?: number): Promise<BrokerProc> {
    const p = port ?? (await freePort());
    const child = spawnTied(process.execPath, [bin, 'broker', '--port', String(p), '--cluster-key-file', this.keyFile(), '--cluster', '7'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(join(this.dir, `aedes-${p}.log`), { flags: 'a' });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const b: BrokerProc = { url: `mqtt://127.0.0.1:${p}`, port: p, kind: 'aedes', child, stop: () => killChild(b.child) };
    this.brokers.push(b);
    await waitFor(() => tcpOpen(p), 20_000, `quorumd broker on ${p}`);
    return b;
  }

  /** Debian's mosquitto as a child with a config on a free 127.0.0.1 port (anonymous, no persistence). */
  async mosquitto(opts: { noDelay?: boolean } = {}): Promise<BrokerProc> {
    const p = await freePort();
    const conf = join(this.dir, `mosquitto-${p}.conf`);
    // set_tcp_nodelay (mosquitto ≥ 1.6, default false): without it mosquitto's own
    // writes to subscribers are Nagle-delayed (~40 ms per frame measured in bench/links.ts).
    const nd = opts.noDelay === false ? '' : 'set_tcp_nodelay true\n';
    writeFileSync(conf, `listener ${p} 127.0.0.1\nallow_anonymous true\npersistence false\n${nd}log_dest stderr\nlog_type error\nlog_type warning\n`);
    const child = spawnTied(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(join(this.dir, `mosquitto-${p}.log`), { flags: 'a' });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const b: BrokerProc = { url: `mqtt://127.0.0.1:${p}`, port: p, kind: 'mosquitto', child, stop: () => killChild(b.child) };
    this.brokers.push(b);
    await waitFor(() => tcpOpen(p), 10_000, `mosquitto on ${p}`);
    return b;
  }

  /** hal/mqtt startBroker in this process, with accounts (auth on). */
  async aedesInproc(users: BrokerUser[]): Promise<BrokerProc> {
    const inproc = await startBroker({ port: 0, host: '127.0.0.1', users });
    const b: BrokerProc = {
      url: `mqtt://127.0.0.1:${inproc.port}`,
      port: inproc.port,
      kind: 'aedes-inproc',
      inproc,
      stop: () => new Promise<void>((r) => inproc.close(() => r())),
    };
    this.brokers.push(b);
    return b;
  }

  async pty(): Promise<PtyPair> {
    const p = await ptyPair();
    this.ptys.push(p);
    return p;
  }

  /** Writes node k's config (1-based) and returns its path. */
  writeConfig(k: number, n: number, spec: NodeSpec, httpPort: number, raftYaml = '', memberYaml?: string): string {
    const members = memberYaml ?? Array.from({ length: n }, (_, i) => `  - { id: ${i + 1}, name: n${i + 1} }`).join('\n');
    const lines = [
      'cluster:',
      '  name: e2e',
      '  id: 7',
      `  key: ${this.key}`,
      'members:',
      members,
      'node:',
      `  name: n${k}`,
      `  dataDir: ${JSON.stringify(join(this.dir, `n${k}`))}`,
    ];
    if (spec.brokers && spec.brokers.length > 0) {
      lines.push('mqtt:', `  brokers: [${spec.brokers.join(', ')}]`, '  keepaliveSec: 5');
      if (spec.username !== undefined) lines.push(`  username: ${JSON.stringify(spec.username)}`);
      if (spec.password !== undefined) lines.push(`  password: ${JSON.stringify(spec.password)}`);
    }
    if (spec.serial && spec.serial.length > 0) {
      lines.push('serial:');
      for (const s of spec.serial) {
        if (s.peer !== undefined) lines.push(`  - { path: ${JSON.stringify(s.path)}, peer: ${s.peer} }`);
        else lines.push(`  - { path: ${JSON.stringify(s.path)}, bus: { members: [${s.bus!.members.join(', ')}] } }`);
      }
    }
    if (raftYaml) lines.push('raft:', raftYaml);
    lines.push('http:', `  listen: 127.0.0.1:${httpPort}`, `  tokenFile: ${JSON.stringify(testTokenFile())}`, '  requestTimeoutMs: 5000', 'log:', '  level: info', '');
    const file = join(this.dir, `n${k}.yaml`);
    writeFileSync(file, lines.join('\n'), { mode: 0o600 }); // the key is inline: a secret file (also outside vitest's umask, in bench/)
    return file;
  }

  /** Writes every config and spawns every node. */
  async startCluster(o: ClusterOptions): Promise<ProcNode[]> {
    for (let k = 1; k <= o.n; k++) {
      const port = await freePort();
      const config = this.writeConfig(k, o.n, o.links(k), port, o.raftYaml);
      this.nodes.push({ id: k, name: `n${k}`, url: `http://127.0.0.1:${port}`, config, log: join(this.dir, `n${k}.log`), child: undefined });
    }
    for (const node of this.nodes) this.spawnNode(node);
    return this.nodes;
  }

  /** Adds a node from an existing config file (its HTTP port is passed to the caller's config). */
  addNode(name: string, id: number, config: string, url: string): ProcNode {
    const node: ProcNode = { id, name, url, config, log: join(this.dir, `${name}.log`), child: undefined };
    this.nodes.push(node);
    this.spawnNode(node);
    return node;
  }

  spawnNode(node: ProcNode): void {
    spawnStart(node);
  }

  logTail(node: ProcNode, lines = 20): string {
    try {
      return readFileSync(node.log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async json(node: ProcNode, path: string): Promise<Record<string, unknown> | undefined> {
    try {
      const r = await call(node.url, 'GET', path, { timeoutMs: 1000 });
      if (r.status !== 200) return undefined;
      return JSON.parse(r.body.toString()) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  async metrics(node: ProcNode): Promise<string> {
    const r = await call(node.url, 'GET', '/metrics', { timeoutMs: 2000 });
    if (r.status !== 200) throw new Error(`${node.name} /metrics: HTTP ${r.status}`);
    return r.body.toString();
  }

  /** The leader every live node agrees on (name), or undefined. */
  async leader(nodes = this.nodes.filter((x) => x.child)): Promise<ProcNode | undefined> {
    const views = await Promise.all(nodes.map((n) => this.json(n, '/v1/leader')));
    const first = views[0]?.leader;
    if (typeof first !== 'string' || !views.every((v) => v?.leader === first)) return undefined;
    return this.nodes.find((n) => n.name === first);
  }

  async waitLeader(ms = 30_000, nodes?: ProcNode[]): Promise<ProcNode> {
    let l: ProcNode | undefined;
    await waitFor(async () => (l = await this.leader(nodes)) !== undefined, ms, `a leader all live nodes agree on (logs in ${this.dir})`);
    return l!;
  }

  /**
   * `count` writes (PUT /v1/kv/<prefix><i>) through `target`, `concurrency` at a time.
   * A 503 (definitely not applied: election in progress) is retried after 20 ms, at most
   * 200 times per write. Returns each write's latency (ms, the successful attempt's
   * first try to its 200) and the wall time of the whole run; `onCommit` gets each 200's time.
   */
  async writes(target: () => ProcNode, count: number, concurrency: number, prefix = 'k', onCommit?: (at: number) => void): Promise<{ latencies: number[]; seconds: number; retries: number }> {
    const latencies: number[] = [];
    let next = 0;
    let retries = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < count) {
        const i = next++;
        const start = performance.now();
        for (let attempt = 0; ; attempt++) {
          let status = 0;
          let body = '';
          try {
            const r = await call(target().url, 'PUT', `/v1/kv/${prefix}${i}`, { body: `v${i}`, timeoutMs: 10_000 });
            status = r.status;
            body = r.body.toString();
          } catch (e) {
            body = (e as Error).message;
          }
          if (status === 200) break;
          if (status !== 503 && status !== 0) throw new Error(`write ${prefix}${i}: HTTP ${status} ${body}`);
          if (attempt >= 200) throw new Error(`write ${prefix}${i}: still failing after ${attempt} retries: ${status} ${body}`);
          retries++;
          await sleep(20);
        }
        const end = performance.now();
        latencies.push(end - start);
        onCommit?.(end);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { latencies, seconds: (performance.now() - t0) / 1000, retries };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all(this.nodes.map((n) => killChild(n.child)));
    await Promise.all(this.brokers.map((b) => b.stop().catch(() => {})));
    await Promise.all(this.ptys.map((p) => p.dispose().catch(() => {})));
    if (!process.env.KEEP_E2E_DIR) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three pty pairs wired as a ring n1–n2, n2–n3, n3–n1; returns each node's serial specs. */
export async function serialRing(h: Harness): Promise<(k: number) => SerialSpec[]> {
  const p12 = await h.pty();
  const p23 = await h.pty();
  const p31 = await h.pty();
  const map: Record<number, SerialSpec[]> = {
    1: [{ path: p12.a, peer: 2 }, { path: p31.b, peer: 3 }],
    2: [{ path: p12.b, peer: 1 }, { path: p23.a, peer: 3 }],
    3: [{ path: p23.b, peer: 2 }, { path: p31.a, peer: 1 }],
  };
  return (k) => map[k]!;
}

export { existsSync };
