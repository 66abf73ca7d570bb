/**
 * Real etcd and ZooKeeper servers for the external-engine tests and benchmarks:
 * Debian's `etcd` (package etcd-server) and ZooKeeper (package zookeeper, run through
 * java with its jars), each member a child process on free 127.0.0.1 ports with its
 * data in a temp dir; kill, restart and "who leads" per member. Plus a TCP proxy the
 * test controls, to cut one client off from the service (tcp-proxy.ts).
 *
 * Timing: etcd with heartbeat 50 ms / election 500 ms (its minimum lease TTL is then
 * 1 s); ZooKeeper with tickTime 200 ms, syncLimit 2 (sessions of 0.4..4 s). Small
 * values so that the tests run in seconds; the engines' safety rules take them as
 * configuration, not as assumptions.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.ts';
import zk, { type Client } from 'node-zookeeper-client';

export const ETCD_BIN = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find((p) => existsSync(p));
export const ZK_JAR = '/usr/share/java/zookeeper.jar';
export const JAVA = ['/usr/bin/java'].find((p) => existsSync(p));
/** In CI a missing server fails (.ci/run installs it); locally it is a skip with the reason printed. */
function have(ok: boolean, what: string, pkg: string): boolean {
  if (ok) return true;
  const reason = `${what} is not installed (apt-get install ${pkg}): its tests are skipped`;
  if (process.env.CI) throw new Error(`CI is set and ${reason}`);
  console.warn(`SKIP: ${reason}`);
  return false;
}
export const HAVE_ETCD = have(ETCD_BIN !== undefined, 'etcd', 'etcd-server');
export const HAVE_ZK = have(existsSync(ZK_JAR) && JAVA !== undefined, 'ZooKeeper', 'zookeeper');

/** A free TCP port on 127.0.0.1 (bound and released; the small race is acceptable in tests). */
/** Free ports come from one helper: below the ephemeral range (see test/helpers/ports.ts). */
export { freePort };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it returns a value other than undefined/false, or throws after `ms`. */
export async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 30_000, everyMs = 25): Promise<T> {
  const end = performance.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

async function tcpUp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A ZooKeeper four-letter word (srvr, ruok...) answer, or '' on error. */
export async function fourLetter(port: number, word: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, 2000);
    s.once('connect', () => s.write(word));
    s.on('data', (d) => (out += d.toString()));
    s.once('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve('');
    });
  });
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  electionPort: number;
  dir: string;
  proc: ChildProcess | undefined;
  args: string[];
  log: string;
}

async function stopProc(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 5000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill(signal);
  });
}

/** An etcd cluster of `size` members (3 for the tests), each a child process. */
export class EtcdCluster {
  readonly members: Member[] = [];
  readonly dir: string;

  private constructor(readonly size: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'i18-etcd-'));
  }

  static async start(size = 3): Promise<EtcdCluster> {
    if (!ETCD_BIN) throw new Error('etcd is not installed (Debian package etcd-server)');
    const c = new EtcdCluster(size);
    for (let i = 1; i <= size; i++) {
      c.members.push({ name: `e${i}`, clientPort: await freePort(), peerPort: await freePort(), electionPort: 0, dir: join(c.dir, `e${i}`), proc: undefined, args: [], log: join(c.dir, `e${i}.log`) });
    }
    const initial = c.members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    for (const m of c.members) {
      m.args = [
        '--name', m.name, '--data-dir', m.dir,
        '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `i18-${process.pid}`,
        '--heartbeat-interval', '50', '--election-timeout', '500',
        '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
      ];
      c.spawn(m);
    }
    await c.waitHealthy();
    return c;
  }

  private spawn(m: Member): void {
    const out = createWriteStream(m.log, { flags: 'a' });
    const p = spawnTied(ETCD_BIN!, m.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.pipe(out);
    p.stderr!.pipe(out);
    m.proc = p;
  }

  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  endpoint(i: number): string {
    return `http://127.0.0.1:${this.members[i]!.clientPort}`;
  }

  /** The member status (leader id, raft term) as etcd reports it over its HTTP gateway. */
  async memberStatus(i: number): Promise<{ leader: string; member: string } | undefined> {
    try {
      const r = await fetch(`${this.endpoint(i)}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
      if (!r.ok) return undefined;
      const j = (await r.json()) as { leader?: string; header?: { member_id?: string } };
      return j.leader && j.header?.member_id ? { leader: j.leader, member: j.header.member_id } : undefined;
    } catch {
      return undefined;
    }
  }

  /** Index of the member that is etcd's raft leader now. */
  async leaderIndex(): Promise<number> {
    return until('an etcd leader', async () => {
      for (let i = 0; i < this.members.length; i++) {
        if (!this.running(i)) continue;
        const s = await this.memberStatus(i);
        if (s && s.leader === s.member) return i + 1;
      }
      return undefined;
    }).then((x) => x - 1);
  }

  running(i: number): boolean {
    const p = this.members[i]!.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  async waitHealthy(ms = 30_000): Promise<void> {
    await until('etcd members healthy', async () => {
      for (let i = 0; i < this.members.length; i++) {
        if (!this.running(i)) continue;
        const r = await fetch(`${this.endpoint(i)}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        if (!r?.ok) return false;
        const j = (await r.json()) as { health?: string };
        if (j.health !== 'true') return false;
      }
      return true;
    }, ms, 100);
  }

  async kill(i: number): Promise<void> {
    await stopProc(this.members[i]!.proc);
  }

  async restart(i: number): Promise<void> {
    const m = this.members[i]!;
    await stopProc(m.proc);
    this.spawn(m);
    await until(`etcd ${m.name} listening`, () => tcpUp(m.clientPort), 20_000, 50);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => stopProc(m.proc)));
  }

  async startAll(): Promise<void> {
    for (const m of this.members) if (!m.proc || m.proc.exitCode !== null || m.proc.signalCode !== null) this.spawn(m);
    await this.waitHealthy();
  }

  /** Every member stopped, its data deleted, started again: a new, empty cluster whose revisions restart at 1. */
  async wipe(): Promise<void> {
    await this.stopAll();
    for (const m of this.members) rmSync(m.dir, { recursive: true, force: true });
    await this.startAll();
  }

  async close(): Promise<void> {
    await this.stopAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A ZooKeeper ensemble of `size` servers (1 = standalone), each `java ... QuorumPeerMain
 * zoo.cfg` as a child process with slf4j-simple logging to a file.
 */
export class ZkEnsemble {
  readonly members: Member[] = [];
  readonly dir: string;
  static readonly TICK_MS = 200;
  static readonly SYNC_LIMIT = 2;

  private constructor(readonly size: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'i18-zk-'));
  }

  static async start(size = 1): Promise<ZkEnsemble> {
    if (!HAVE_ZK) throw new Error('ZooKeeper is not installed (Debian package zookeeper)');
    const z = new ZkEnsemble(size);
    for (let i = 1; i <= size; i++) {
      z.members.push({ name: `z${i}`, clientPort: await freePort(), peerPort: size > 1 ? await freePort() : 0, electionPort: size > 1 ? await freePort() : 0, dir: join(z.dir, `z${i}`), proc: undefined, args: [], log: join(z.dir, `z${i}.log`) });
    }
    for (const [i, m] of z.members.entries()) {
      mkdirSync(join(m.dir, 'data'), { recursive: true });
      const lines = [
        `tickTime=${ZkEnsemble.TICK_MS}`, 'initLimit=20', `syncLimit=${ZkEnsemble.SYNC_LIMIT}`,
        `dataDir=${join(m.dir, 'data')}`, `clientPort=${m.clientPort}`, 'clientPortAddress=127.0.0.1',
        'admin.enableServer=false', '4lw.commands.whitelist=srvr,ruok,stat,mntr', 'maxClientCnxns=0',
        // The test cluster's fsync is not what is tested; keep a loaded disk from stalling it.
        'forceSync=no',
      ];
      if (size > 1) {
        for (const [j, o] of z.members.entries()) lines.push(`server.${j + 1}=127.0.0.1:${o.peerPort}:${o.electionPort}`);
        writeFileSync(join(m.dir, 'data', 'myid'), `${i + 1}\n`);
      }
      writeFileSync(join(m.dir, 'zoo.cfg'), lines.join('\n') + '\n');
      const jars = [ZK_JAR, '/usr/share/java/slf4j-simple.jar'].filter((p) => existsSync(p)).join(':');
      m.args = ['-Xmx96m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Dzookeeper.admin.enableServer=false', '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn', '-cp', jars, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(m.dir, 'zoo.cfg')];
      z.spawn(m);
    }
    await z.waitServing();
    return z;
  }

  private spawn(m: Member): void {
    const out = createWriteStream(m.log, { flags: 'a' });
    const p = spawnTied(JAVA!, m.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.pipe(out);
    p.stderr!.pipe(out);
    m.proc = p;
  }

  /** The connect string host:port,... */
  get connect(): string {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',');
  }

  running(i: number): boolean {
    const p = this.members[i]!.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  async mode(i: number): Promise<string | undefined> {
    const s = await fourLetter(this.members[i]!.clientPort, 'srvr');
    return /Mode: (\w+)/.exec(s)?.[1];
  }

  /** Every running server serves (standalone, leader or follower). */
  async waitServing(ms = 60_000): Promise<void> {
    await until('ZooKeeper serving', async () => {
      for (let i = 0; i < this.members.length; i++) {
        if (!this.running(i)) continue;
        const m = await this.mode(i);
        if (m !== 'standalone' && m !== 'leader' && m !== 'follower') return false;
      }
      return true;
    }, ms, 100);
  }

  async leaderIndex(): Promise<number> {
    return until('a ZooKeeper leader', async () => {
      for (let i = 0; i < this.members.length; i++) {
        if (this.running(i) && (await this.mode(i)) === 'leader') return i + 1;
      }
      return undefined;
    }, 60_000, 100).then((x) => x - 1);
  }

  async kill(i: number): Promise<void> {
    await stopProc(this.members[i]!.proc);
  }

  async restart(i: number): Promise<void> {
    await stopProc(this.members[i]!.proc);
    this.spawn(this.members[i]!);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => stopProc(m.proc)));
  }

  async startAll(): Promise<void> {
    for (const [i, m] of this.members.entries()) if (!this.running(i)) this.spawn(m);
    await this.waitServing();
  }

  /** Every server stopped, its snapshots and logs deleted (myid kept), started again: zxids restart. */
  async wipe(): Promise<void> {
    await this.stopAll();
    for (const m of this.members) rmSync(join(m.dir, 'data', 'version-2'), { recursive: true, force: true });
    await this.startAll();
  }

  async close(): Promise<void> {
    await this.stopAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Whether a binary runs at all here (e.g. java present but broken). */
export function runs(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
  return r.status === 0;
}

/** A plain ZooKeeper client on `connect`, connected: what another program with access to the chroot can do. */
export async function rawZk(connect: string): Promise<Client> {
  const c = zk.createClient(connect, { sessionTimeout: 3000, retries: 0 });
  await new Promise<void>((res) => {
    c.once('connected', () => res());
    c.connect();
  });
  return c;
}

/** A node-zookeeper-client call as a promise. */
export const zkCall = <T>(f: (cb: (err: Error | null, v: T) => void) => void) => new Promise<T>((res, rej) => f((err, v) => (err ? rej(err) : res(v))));
