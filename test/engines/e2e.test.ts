/**
 * `quorumd start` with engine: etcd and engine: zookeeper as real processes: three
 * nodes against a real service, the leader's process killed (SIGKILL: no resign, the
 * service must expire its lease/session), another node takes over with a larger
 * token and its on-active hook runs with that token; the CLI's kv commands work
 * through any node; SIGTERM hands over at once (the key is given up).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, HAVE_ETCD, HAVE_ZK, until, ZkEnsemble } from './servers.ts';
import { BIN, ExternalProcCluster } from './proc.ts';
import { freeBasePort } from '../helpers/ports.ts';

function hookYaml(dir: string): string {
  // Each node appends "<node> <event> <token>" to one file: who was active with which token.
  const f = join(dir, 'hooks.log');
  return `hooks:\n  onActive: 'echo "$QUORUMD_NODE active $QUORUMD_TOKEN" >> ${f}'\n  onInactive: 'echo "$QUORUMD_NODE inactive $QUORUMD_TOKEN" >> ${f}'\n`;
}

async function scenario(c: ExternalProcCluster, what: string): Promise<void> {
  const first = await c.activeNode();
  const s1 = (await c.status(first))!;
  expect(s1.token).toBeGreaterThan(0);
  // The CLI through another node.
  const other = c.nodes.find((n) => n !== first)!;
  const put = spawnSync(process.execPath, [BIN, 'kv', 'put', 'greeting', 'hello', '--node', c.url(other)], { encoding: 'utf8', timeout: 30_000 });
  expect(put.status, put.stderr).toBe(0);
  const get = spawnSync(process.execPath, [BIN, 'kv', 'get', 'greeting', '--node', c.url(first)], { encoding: 'utf8', timeout: 30_000 });
  expect(get.status, get.stderr).toBe(0);
  expect(get.stdout.trim()).toBe('hello');
  // Kill the leader's process: no resign.
  const t0 = performance.now();
  await c.kill(first);
  const second = await c.activeNode();
  const failover = performance.now() - t0;
  const s2 = (await c.status(second))!;
  expect(second).not.toBe(first);
  expect(s2.token).toBeGreaterThan(s1.token);
  expect(await c.put(second, 'after', 'x')).toBe(200);
  const hooks = () => (existsSync(join(c.dir, 'hooks.log')) ? readFileSync(join(c.dir, 'hooks.log'), 'utf8') : '');
  await until('the new leader ran its on-active hook with its token', () => hooks().includes(`${second.name} active ${s2.token}`), 20_000);
  // SIGTERM of the new leader: it gives up its key; the third node takes over at once.
  const t1 = performance.now();
  await c.kill(second, 'SIGTERM');
  const third = await c.activeNode();
  const handover = performance.now() - t1;
  expect(third).not.toBe(second);
  expect((await c.status(third))!.token).toBeGreaterThan(s2.token);
  await until('the stopped leader ran its on-inactive hook', () => hooks().includes(`${second.name} inactive ${s2.token}`), 20_000);
  console.log(`${what}: kill -9 of the leader → new active leader ${failover.toFixed(0)} ms; SIGTERM → next leader ${handover.toFixed(0)} ms`);
}

describe.skipIf(!HAVE_ETCD)('quorumd start, engine: etcd (3 processes, 3-member etcd)', () => {
  let etcd: EtcdCluster;
  let c: ExternalProcCluster | undefined;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await c?.close();
    c?.remove();
    await etcd?.close();
  });

  it('fails over after the leader process is killed, hands over on SIGTERM, hooks get the tokens', async () => {
    c = await ExternalProcCluster.start({ engine: 'etcd', endpoints: etcd.endpoints, sectionYaml: '  ttlSec: 2\n  keepAliveMs: 300\n  marginMs: 200\n', extraYaml: hookYaml });
    await scenario(c, 'etcd');
  }, 180_000);
});

describe.skipIf(!HAVE_ZK)('quorumd start, engine: zookeeper (3 processes, standalone ZooKeeper)', () => {
  let zk: ZkEnsemble;
  let c: ExternalProcCluster | undefined;
  beforeAll(async () => {
    zk = await ZkEnsemble.start(1);
  }, 90_000);
  afterAll(async () => {
    await c?.close();
    c?.remove();
    await zk?.close();
  });

  it('fails over after the leader process is killed, hands over on SIGTERM, hooks get the tokens', async () => {
    c = await ExternalProcCluster.start({ engine: 'zookeeper', endpoints: zk.connect.split(','), sectionYaml: '  sessionTimeoutMs: 3000\n  probeMs: 300\n  serverLagMs: 600\n  marginMs: 200\n', extraYaml: hookYaml });
    await scenario(c, 'zookeeper');
  }, 180_000);
});

describe.skipIf(!HAVE_ETCD)('quorumd dev --engine etcd', () => {
  it('starts a local etcd and nodes with simulated relays that elect through it; a killed leader is fenced and replaced; stop() stops etcd too', async () => {
    const { startDev } = await import('../../daemon/dev.ts');
    const { call: httpCall } = await import('../../daemon/client/http.ts');
    let printed = '';
    const base = await freeBasePort(3);
    const dev = await startDev({ nodes: 3, engine: 'etcd', basePort: base, handleSignals: false, out: (s) => (printed += s) });
    try {
      expect(printed).toMatch(/etcd {8}http:\/\/127\.0\.0\.1:\d+ {2}\(child pid \d+/);
      const status = async (url: string) => JSON.parse((await httpCall(url, 'GET', '/v1/status', { timeoutMs: 2000, token: (await import('node:fs')).readFileSync(dev.tokenFile, 'utf8').trim() })).body.toString()) as { id: string; active: boolean; engine: string; token: number; suspects?: Array<{ node: string; clearedBy: string | null }> };
      const leader = await until('an active leader', async () => {
        for (const n of dev.nodes) if (n.child && (await status(n.url).catch(() => undefined))?.active) return n;
        return undefined;
      }, 60_000, 50);
      expect((await status(leader.url)).engine).toBe('etcd');
      const t1 = (await status(leader.url)).token;
      leader.child!.kill('SIGKILL');
      const next = await until('another active leader', async () => {
        for (const n of dev.nodes) if (n !== leader && n.child && (await status(n.url).catch(() => undefined))?.active) return n;
        return undefined;
      }, 60_000, 50);
      const s2 = await status(next.url);
      expect(s2.token).toBeGreaterThan(t1);
      // The killed leader did not resign: the next one fenced it (dev rail off, read back) before acting.
      expect(s2.suspects).toEqual([{ node: leader.name, clearedBy: 'fenced' }]);
      expect(printed).toMatch(/relays {6}simulated/);
      const pid = Number(/child pid (\d+)/.exec(printed)![1]);
      await dev.stop();
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      expect(alive, 'etcd stopped with dev').toBe(false);
    } finally {
      await dev.stop();
    }
  }, 180_000);
});
