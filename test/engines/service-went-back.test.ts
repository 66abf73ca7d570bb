/**
 * The service goes back under running nodes: etcd wiped and created anew (its
 * revisions restart at 1), the way a restore from an older backup or a re-installed
 * server would. Before, the nodes simply campaigned again on the new cluster: seen on
 * three `quorumd start` processes with two clients taking turns on one lock, lock
 * tokens went 114, 124, 132, then 3, 12, 17 after the wipe (and leader tokens and KV
 * indexes restart the same way). A node that has seen the service further ahead must
 * refuse, and say why, instead of handing out tokens that go backwards.
 *
 * ZooKeeper the same (zxids restart at epoch 1); there the node's client also never
 * got back in before: a server refuses a session that has seen a newer zxid than its
 * own ("client must try another server"), and the client tried for good, silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdEngine } from '../../daemon/engines/etcd.ts';
import { ZkEngine } from '../../daemon/engines/zookeeper.ts';
import { EtcdCluster, HAVE_ETCD, HAVE_ZK, until, ZkEnsemble } from './servers.ts';
import { call, lease, quietLog, text, Timeline } from './harness.ts';

describe.skipIf(!HAVE_ETCD)('engine: etcd, the etcd cluster wiped under a running node', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    await etcd?.close();
  });

  it('the node refuses to lead or serve, and says why, instead of handing out tokens that go backwards', async () => {
    const errors: string[] = [];
    const log = { ...quietLog, error: (_f: Record<string, unknown>, m: string) => void errors.push(m) };
    const a = new EtcdEngine({ endpoints: etcd.endpoints, prefix: '/quorumd-test/back/', self: { id: 1, name: 'n1' }, ttlSec: 2, keepAliveMs: 300, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log });
    const tl = new Timeline();
    tl.watch('n1', a);
    a.start();
    try {
      await until('n1 leads', () => a.active, 30_000);
      // Some history: revisions well above what a new cluster starts with.
      let lastIndex = 0;
      for (let i = 0; i < 20; i++) lastIndex = (await call((cb) => a.put(`k${i}`, text('v'), {}, cb))).index!;
      const lock = await call((cb) => a.lockAcquire('L', 'o', 60_000, lease(), cb));
      expect(lock.status).toBe(200);
      const tokenBefore = a.status().token;
      await etcd.wipe();
      await until('n1 refuses, saying why', () => a.status().refused, 60_000, 50);
      expect(a.status().refused).toMatch(/answered with revision \d+ after it had shown this node revision \d+: .*wiped .* restored from an older backup/);
      expect(errors.join('\n')).toContain('wiped and created anew');
      expect(a.active).toBe(false);
      // Requests are refused with the reason, nothing is handed out.
      const put = await call((cb) => a.put('after', text('x'), {}, cb));
      expect(put).toMatchObject({ status: 503 });
      expect(put.error).toMatch(/refused: etcd answered with revision/);
      const l2 = await call((cb) => a.lockAcquire('L2', 'o', 60_000, lease(), cb));
      expect(l2.status).toBe(503);
      expect((await call((cb) => a.get('k1', { stale: true }, cb))).status).toBe(503);
      // It stays off: it does not campaign on the new cluster (bounded look: 20 keep-alive periods).
      for (let i = 0; i < 20; i++) {
        expect(a.active).toBe(false);
        await new Promise((r) => setTimeout(r, 300));
      }
      const activeAfter = tl.events.filter((e) => e.active && e.token !== tokenBefore);
      expect(activeAfter, `n1 led again on the new cluster (index before the wipe ${lastIndex}, lock token ${lock.token}):\n${tl.dump()}`).toEqual([]);
    } finally {
      await a.stop();
      tl.close();
    }
  }, 180_000);
});

describe.skipIf(!HAVE_ZK)('engine: zookeeper, the ensemble wiped under a running node', () => {
  let ens: ZkEnsemble;
  beforeAll(async () => {
    ens = await ZkEnsemble.start(1);
  }, 90_000);
  afterAll(async () => {
    await ens?.close();
  });

  it('the node refuses to lead or serve, and says why, instead of handing out tokens that go backwards', async () => {
    const errors: string[] = [];
    const log = { ...quietLog, error: (_f: Record<string, unknown>, m: string) => void errors.push(m) };
    const a = new ZkEngine({ servers: ens.connect.split(','), chroot: '/quorumd-test/back', self: { id: 1, name: 'n1' }, sessionTimeoutMs: 3000, probeMs: 300, serverLagMs: 600, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log });
    const tl = new Timeline();
    tl.watch('n1', a);
    a.start();
    try {
      await until('n1 leads', () => a.active, 30_000);
      for (let i = 0; i < 20; i++) expect((await call((cb) => a.put(`k${i}`, text('v'), {}, cb))).status).toBe(200);
      const lock = await call((cb) => a.lockAcquire('L', 'o', 60_000, lease(), cb));
      expect(lock.status).toBe(200);
      const tokenBefore = a.status().token;
      await ens.wipe();
      await until('n1 refuses, saying why', () => a.status().refused, 60_000, 50);
      expect(a.status().refused).toMatch(/ZooKeeper gave .* zxid 0x[0-9a-f]+ after it had shown this node zxid 0x[0-9a-f]+: .*wiped .* restored from an older snapshot/);
      expect(errors.join('\n')).toContain('wiped and set up anew');
      expect(a.active).toBe(false);
      const put = await call((cb) => a.put('after', text('x'), {}, cb));
      expect(put).toMatchObject({ status: 503 });
      expect(put.error).toMatch(/refused: ZooKeeper gave/);
      expect((await call((cb) => a.lockAcquire('L2', 'o', 60_000, lease(), cb))).status).toBe(503);
      for (let i = 0; i < 20; i++) {
        expect(a.active).toBe(false);
        await new Promise((r) => setTimeout(r, 300));
      }
      const activeAfter = tl.events.filter((e) => e.active && e.token !== tokenBefore);
      expect(activeAfter, `n1 led again on the new ensemble (lock token before the wipe ${lock.token}):\n${tl.dump()}`).toEqual([]);
    } finally {
      await a.stop();
      tl.close();
    }
  }, 180_000);
});
