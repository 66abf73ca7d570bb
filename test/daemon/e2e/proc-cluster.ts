/**
 * A cluster of real processes for end-to-end tests and benchmarks: one
 * `quorumd broker` and N `quorumd start` children on 127.0.0.1, free ports, a temp
 * data directory. Every wait is bounded; stop() kills whatever is left and removes
 * the directory.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTied } from '../../helpers/tied.ts';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devConfig } from '../../../daemon/dev.ts';
import { call } from '../../../daemon/client/http.ts';
import { testTokenFile } from '../../helpers/auth.ts';
import { removeAtExit } from '../../helpers/exit-cleanup.ts';
import { freeBasePort, freePort } from '../../helpers/ports.ts';

export const bin = join(import.meta.dirname, '..', '..', '..', 'bin', 'quorumd.js');

/** Free ports come from one helper: below the ephemeral range (see test/helpers/ports.ts). */
export { freePort };


export interface ProcNode {
  name: string;
  url: string;
  config: string;
  log: string;
  child: ChildProcess | undefined;
}

/**
 * Starts `quorumd start --config <node.config>` as a real child process, its output
 * appended to `node.log`; `node.child` is cleared when it exits. Shared by the
 * end-to-end harnesses (this one and test/e2e/harness.ts).
 */
export function spawnStart(node: { config: string; log: string; child: ChildProcess | undefined }): void {
  const log = createWriteStream(node.log, { flags: 'a' });
  const child = spawnTied(process.execPath, [bin, 'start', '--config', node.config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  node.child = child;
  child.on('exit', () => {
    if (node.child === child) node.child = undefined;
  });
}

export class ProcCluster {
  broker: ChildProcess | undefined;
  brokerPort = 0;
  nodes: ProcNode[] = [];
  dir = '';
  keyFile = '';
  /**
   * Nodes that ended by themselves with a failure (an exit code other than 0, no signal).
   * Until the cluster's first leader, waitLeader fails on one: a
   * node that could not start (a port taken, a config refused) would otherwise leave a
   * cluster that still elects with the others, and the test fails later, at a call to
   * the missing node, with nothing saying why (seen: ECONNREFUSED in discovery.test.ts).
   */
  failedExits: Array<{ name: string; code: number }> = [];
  private hadLeader = false;
  /** Forgets the directory's removal at exit (a benchmark's: test/helpers/exit-cleanup.ts). */
  private forgetDir: () => void = () => undefined;

  /**
   * `extraYaml` is appended to every node's config; `perNode(k)` to node k's only.
   * `link: 'tcp'` gives the nodes direct TCP links (as `quorumd dev --link tcp`), the
   * broker then carrying presence and frames only while a TCP connection is down.
   */
  static async start(n: number, extraYaml = '', perNode: (k: number) => string = () => '', link: 'mqtt' | 'tcp' = 'mqtt'): Promise<ProcCluster> {
    const c = new ProcCluster();
    c.dir = mkdtempSync(join(tmpdir(), 'quorumd-e2e-'));
    // A benchmark that ends without stop() (an error, Ctrl-C, a time limit) leaves no
    // configs with the cluster key inline behind: its processes are killed, the directory removed.
    c.forgetDir = removeAtExit(c.dir, () => {
      for (const p of [c.broker, ...c.nodes.map((n) => n.child)]) p?.kill('SIGKILL');
    });
    c.brokerPort = await freePort();
    const key = randomBytes(32).toString('hex');
    c.keyFile = join(c.dir, 'cluster.key');
    writeFileSync(c.keyFile, `${key}\n`, { mode: 0o600 });
    await c.startBroker();
    // tcp: node k's link listens on base + 10 + k (devTcpPort), so those must be free too.
    const base = await freeBasePort(link === 'tcp' ? 10 + n : n);
    for (let k = 1; k <= n; k++) {
      const config = join(c.dir, `n${k}.yaml`);
      writeFileSync(config, devConfig({ k, n, key, tokenFile: testTokenFile(), brokerUrl: `mqtt://127.0.0.1:${c.brokerPort}`, basePort: base, dir: c.dir, link }).replace(/^hooks:[\s\S]*?^log:/m, 'log:') + extraYaml + perNode(k), { mode: 0o600 }); // the key is inline: a secret file
      c.nodes.push({ name: `n${k}`, url: `http://127.0.0.1:${base + k}`, config, log: join(c.dir, `n${k}.log`), child: undefined });
    }
    for (const node of c.nodes) c.spawn(node);
    return c;
  }

  /**
   * Starts `quorumd broker` on `brokerPort` (again, after killBroker) and resolves once
   * it accepts connections (bounded: 20 s). It is closed: the nodes log in with
   * passwords derived from the cluster key.
   */
  async startBroker(): Promise<void> {
    if (this.broker && this.broker.exitCode === null && this.broker.signalCode === null) throw new Error('ProcCluster.startBroker: the broker is running');
    const b = spawnTied(process.execPath, [bin, 'broker', '--port', String(this.brokerPort), '--cluster-key-file', this.keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.broker = b;
    const brokerLog = createWriteStream(join(this.dir, 'broker.log'), { flags: 'a' });
    b.stdout!.pipe(brokerLog);
    b.stderr!.pipe(brokerLog);
    await this.waitFor(async () => {
      if (b.exitCode !== null || b.signalCode !== null) throw new Error(`quorumd broker exited (${b.exitCode ?? b.signalCode}); see ${join(this.dir, 'broker.log')}`);
      try {
        await new Promise<void>((res, rej) => {
          const s = net.connect(this.brokerPort, '127.0.0.1', () => {
            s.destroy();
            res();
          });
          s.once('error', rej);
        });
        return true;
      } catch {
        return false;
      }
    }, 20_000, 'broker up');
  }

  /** Kills the broker process (SIGKILL) and resolves once it has exited (bounded: 10 s). */
  async killBroker(): Promise<void> {
    const b = this.broker;
    if (!b || b.exitCode !== null || b.signalCode !== null) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('ProcCluster.killBroker: the broker did not exit within 10 s of SIGKILL')), 10_000);
      b.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      b.kill('SIGKILL');
    });
  }

  spawn(node: ProcNode): void {
    spawnStart(node);
    node.child!.once('exit', (code, signal) => {
      if (signal === null && code !== null && code !== 0) this.failedExits.push({ name: node.name, code });
    });
  }

  /** Polls `f` every 50 ms until true, at most `ms`. */
  async waitFor(f: () => Promise<boolean>, ms: number, what: string): Promise<void> {
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      if (await f()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out after ${ms} ms waiting for: ${what} (logs in ${this.dir})`);
  }

  /** The leader all reachable, running nodes agree on, or undefined. */
  async leader(): Promise<ProcNode | undefined> {
    const live = this.nodes.filter((n) => n.child);
    const names = await Promise.all(
      live.map(async (n) => {
        try {
          const r = await call(n.url, 'GET', '/v1/leader', { timeoutMs: 500 });
          return (JSON.parse(r.body.toString()) as { leader: string | null }).leader;
        } catch {
          return null;
        }
      }),
    );
    const first = names[0];
    if (!first || !names.every((x) => x === first)) return undefined;
    return this.nodes.find((n) => n.name === first && n.child);
  }

  async waitLeader(ms = 20_000): Promise<ProcNode> {
    let l: ProcNode | undefined;
    await this.waitFor(
      async () => {
        if (!this.hadLeader && this.failedExits.length > 0) {
          const exits = this.failedExits.map((e) => `${e.name}: exit code ${e.code}`).join(', ');
          throw new Error(`a node exited while the cluster started (${exits}); the end of its log:\n${this.logTail(this.failedExits[0]!.name)}`);
        }
        return (l = await this.leader()) !== undefined;
      },
      ms,
      'a leader all live nodes agree on',
    );
    this.hadLeader = true;
    return l!;
  }

  /** The last lines of a node's log (for an error message). */
  logTail(name: string, lines = 15): string {
    const node = this.nodes.find((n) => n.name === name);
    try {
      return node ? readFileSync(node.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : `(no node ${name})`;
    } catch (e) {
      return `(${(e as Error).message})`;
    }
  }

  kill(node: ProcNode, sig: NodeJS.Signals): void {
    node.child?.kill(sig);
  }

  async stop(): Promise<void> {
    const all = [...this.nodes.map((n) => n.child), this.broker].filter((c): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null);
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((r) => {
            const t = setTimeout(() => c.kill('SIGKILL'), 3000);
            c.once('exit', () => {
              clearTimeout(t);
              r();
            });
            c.kill('SIGCONT');
            c.kill('SIGTERM');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
    this.forgetDir();
  }
}

