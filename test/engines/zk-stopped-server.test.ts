/**
 * A ZooKeeper server that accepts connections and never answers — what a server whose
 * process is stopped (SIGSTOP, a hung JVM) looks like from outside: the kernel still
 * completes TCP connects into its listen queue. node-zookeeper-client times out only
 * the TCP connect, not the answer to its connect request, so a node whose client
 * picked that server (servers are tried in a shuffled order) waited on it for good and
 * never got a session, though a live server was next in its list. Here a black-hole
 * listener stands for the stopped server, beside a real standalone ZooKeeper.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkEngine } from '../../daemon/engines/zookeeper.ts';
import { freePort, HAVE_ZK, until, ZkEnsemble } from './servers.ts';
import { quietLog } from './harness.ts';

describe.skipIf(!HAVE_ZK)('engine: zookeeper, a server that accepts and never answers', () => {
  let ens: ZkEnsemble;
  let hole: Server;
  let port = 0;
  const held: Socket[] = [];
  beforeAll(async () => {
    ens = await ZkEnsemble.start(1);
    port = await freePort();
    hole = createServer((s) => void held.push(s));
    await new Promise<void>((res) => hole.listen(port, '127.0.0.1', () => res()));
  }, 90_000);
  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise((res) => hole?.close(res));
    await ens?.close();
  });

  it('every node gets a session from the live server (8 nodes: each tries the silent one first with odds 1/2)', async () => {
    const servers = [`127.0.0.1:${port}`, ens.connect];
    const es = Array.from({ length: 8 }, (_, i) => new ZkEngine({ servers, chroot: '/quorumd-test/hole', self: { id: i + 1, name: `n${i + 1}` }, sessionTimeoutMs: 3000, probeMs: 300, serverLagMs: 600, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log: quietLog }));
    try {
      for (const e of es) e.start();
      await until('every node has a session', () => es.every((e) => e.status().role !== 'connecting'), 30_000, 100).catch((err: Error) => {
        throw new Error(`${err.message}; roles: ${es.map((e) => e.status().role).join(', ')}; ${held.length} connections held by the silent server`);
      });
      await until('one leader', () => es.filter((e) => e.active).length === 1, 30_000);
      expect(es.filter((e) => e.status().role === 'candidate')).toHaveLength(7);
    } finally {
      await Promise.all(es.map((e) => e.stop()));
    }
  }, 120_000);
});
