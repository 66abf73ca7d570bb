/**
 * Keys in the election directory that no quorumd node wrote (another program with
 * access to the prefix or chroot, an operator's typo). Seen on three `quorumd start`
 * processes against etcd: after `etcdctl put <prefix>election/ffff intruder` and a
 * restart of the nodes, every node waited behind that key for good — it has no lease,
 * so it never expires — with nothing above debug level in the logs. Such a key is not
 * a candidate: the nodes pass it over and say so, naming it.
 */
import { Etcd3 } from 'etcd3';
import zk from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdEngine, type EngineLog } from '../../daemon/engines/etcd.ts';
import { ZkEngine } from '../../daemon/engines/zookeeper.ts';
import { EtcdCluster, HAVE_ETCD, HAVE_ZK, rawZk, until, zkCall, ZkEnsemble } from './servers.ts';
import { call, quietLog, Timeline } from './harness.ts';

function capture(): { log: EngineLog; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, log: { ...quietLog, warn: (_f: Record<string, unknown>, m: string) => void warnings.push(m) } };
}

describe.skipIf(!HAVE_ETCD)('engine: etcd, a foreign key in the election', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    await etcd?.close();
  });

  it('a key without a lease is passed over with a warning naming it; the nodes elect one leader', async () => {
    const prefix = '/quorumd-test/foreign/';
    const raw = new Etcd3({ hosts: etcd.endpoints });
    await raw.put(`${prefix}election/ffff`).value('intruder');
    const { log, warnings } = capture();
    const mk = (id: number) => new EtcdEngine({ endpoints: etcd.endpoints, prefix, self: { id, name: `n${id}` }, ttlSec: 2, keepAliveMs: 300, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log });
    const [a, b] = [mk(1), mk(2)];
    const tl = new Timeline();
    tl.watch('n1', a);
    tl.watch('n2', b);
    try {
      a.start();
      b.start();
      await until('a leader despite the foreign key', () => a.active || b.active, 20_000);
      expect(warnings.join('\n')).toContain(`${prefix}election/ffff is in the election but bound to no lease`);
      // One leader; the other waits behind it (a real candidate), not behind the foreign key.
      const [leader, other] = a.active ? [a, b] : [b, a];
      await until('the other is a candidate', () => other.status().role === 'candidate', 20_000);
      await leader.stop();
      await until('the other leads next', () => other.active, 20_000);
      tl.check();
    } finally {
      await a.stop();
      await b.stop();
      raw.close();
      tl.close();
    }
  }, 120_000);
});

describe.skipIf(!HAVE_ETCD)("engine: etcd, the leader's key taken away from outside", () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    await etcd?.close();
  });

  // Seen before the fix (keep-alive every 1 s, TTL 5 s): after `etcdctl lease revoke` of
  // the leader's lease the next leader was active 555 ms before the old one noticed (at
  // its next keep-alive); after `etcdctl del` of its election key the old leader never
  // noticed — two active leaders for good.
  for (const how of ['lease revoked', 'election key deleted'] as const) {
    it(`${how}: the leader switches off at once, not at its next keep-alive or never`, async () => {
      const prefix = `/quorumd-test/taken-${how.replace(/ /g, '-')}/`;
      const raw = new Etcd3({ hosts: etcd.endpoints });
      const mk = (id: number) => new EtcdEngine({ endpoints: etcd.endpoints, prefix, self: { id, name: `n${id}` }, ttlSec: 5, keepAliveMs: 1000, driftRate: 0.001, marginMs: 500, requestTimeoutMs: 3000, log: quietLog });
      const [a, b] = [mk(1), mk(2)];
      const tl = new Timeline();
      tl.watch('n1', a);
      tl.watch('n2', b);
      try {
        a.start();
        await until('n1 leads', () => a.active, 30_000);
        b.start();
        await until('n2 waits', () => b.status().role === 'candidate', 30_000);
        const leaseHex = a.status().session.id;
        if (how === 'lease revoked') await raw.leaseClient.leaseRevoke({ ID: BigInt(`0x${leaseHex}`).toString() });
        else await raw.delete().key(`${prefix}election/${leaseHex}`).exec();
        await until('n2 leads', () => b.active, 20_000);
        await until('n1 switched off', () => !a.active, 5_000);
        const off = tl.events.find((e) => e.node === 'n1' && !e.active)!;
        const on = tl.events.find((e) => e.node === 'n2' && e.active)!;
        const overlap = off.atMs - on.atMs;
        console.log(`${how}: n1 off ${overlap > 0 ? `${overlap.toFixed(0)} ms after` : `${(-overlap).toFixed(0)} ms before`} n2 on`);
        // Both hear of the same delete; n2 still has to read and win: n1 is off first, or
        // at worst within a watch delivery of it.
        expect(overlap, tl.dump()).toBeLessThan(200);
      } finally {
        await a.stop();
        await b.stop();
        raw.close();
        tl.close();
      }
    }, 120_000);
  }
});

describe.skipIf(!HAVE_ETCD)('engine: etcd, the leader record changed by another client', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    await etcd?.close();
  });

  // Seen before the fix, after `etcdctl put <prefix>leader garbage`: the leader stayed
  // active, every node's /v1/leader showed no leader, and the leader's job claims were
  // refused (they compare the record with the token) — until the leader was restarted.
  for (const how of ['garbage', "another node's record", 'deleted'] as const) {
    it(`${how}: the rightful leader writes its record again under a new, larger token; claims work again`, async () => {
      const prefix = `/quorumd-test/leader-rec-${how.replace(/\W+/g, '-')}/`;
      const raw = new Etcd3({ hosts: etcd.endpoints });
      const { log, warnings } = capture();
      const mk = (id: number) => new EtcdEngine({ endpoints: etcd.endpoints, prefix, self: { id, name: `n${id}` }, ttlSec: 2, keepAliveMs: 300, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log });
      const [a, b] = [mk(1), mk(2)];
      const tl = new Timeline();
      tl.watch('n1', a);
      tl.watch('n2', b);
      try {
        a.start();
        await until('n1 leads', () => a.active, 30_000);
        b.start();
        await until('n2 waits and sees n1 lead', () => b.status().role === 'candidate' && b.status().leader === 'n1', 30_000);
        const before = a.activeLeadership()!;
        expect((await call((cb) => a.jobClaim('nightly', 1_000, before, cb))).status).toBe(200);
        if (how === 'garbage') await raw.put(`${prefix}leader`).value('garbage');
        else if (how === "another node's record") await raw.put(`${prefix}leader`).value('{"node":"n2","id":2}');
        else await raw.delete().key(`${prefix}leader`).exec();
        const t0 = performance.now();
        await until('n1 active again under a new token, and both nodes show n1 as leader', () => {
          const l = a.activeLeadership();
          return l && l.token > before.token && a.status().leader === 'n1' && b.status().leader === 'n1' && b.status().leaderToken === l.token;
        }, 10_000, 10);
        console.log(`etcd leader record ${how}: written again after ${(performance.now() - t0).toFixed(0)} ms`);
        const after = a.activeLeadership()!;
        expect(after.token).toBeGreaterThan(before.token);
        expect((await raw.get(`${prefix}leader`).string()) ?? '').toBe('{"node":"n1","id":1}');
        // Claims guarded by the record pass again under the new token; the old one is refused.
        expect((await call((cb) => a.jobClaim('nightly', 2_000, after, cb))).status).toBe(200);
        expect((await call((cb) => a.jobClaim('nightly', 3_000, before, cb))).status).toBe(409);
        expect(warnings.join('\n')).toContain(`${prefix}leader was overwritten or deleted by another client`);
        expect(b.active).toBe(false);
        // n1 stays the leader: n2 takes over only when n1 stops, with a larger token.
        await a.stop();
        await until('n2 leads next', () => b.active, 20_000);
        expect(b.activeLeadership()!.token).toBeGreaterThan(after.token);
        tl.check();
      } finally {
        await a.stop();
        await b.stop();
        raw.close();
        tl.close();
      }
    }, 120_000);
  }
});

describe.skipIf(!HAVE_ZK)("engine: zookeeper, the leader's election znode data set by another client", () => {
  let ens: ZkEnsemble;
  beforeAll(async () => {
    ens = await ZkEnsemble.start(1);
  }, 90_000);
  afterAll(async () => {
    await ens?.close();
  });

  // ZooKeeper has no separate leader record: every node shows the data of the lowest
  // candidate znode. Seen before the fix, after `zkCli.sh set` on it: every node showed
  // no leader (garbage) or the wrong one (another node's record) until the next leader
  // change. The token (the znode's czxid) and job claims (a check of the znode) were
  // not affected, and are not now.
  for (const how of ['garbage', "another node's record"] as const) {
    it(`${how}: the leader writes its record back; every node shows it again, token unchanged`, async () => {
      const root = `/quorumd-test/leader-data-${how === 'garbage' ? 'g' : 'o'}${process.pid}`;
      const raw = await rawZk(ens.connect);
      const { log, warnings } = capture();
      const mk = (id: number) => new ZkEngine({ servers: ens.connect.split(','), chroot: root, self: { id, name: `n${id}` }, sessionTimeoutMs: 3000, probeMs: 300, serverLagMs: 600, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log });
      const [a, b] = [mk(1), mk(2)];
      const tl = new Timeline();
      tl.watch('n1', a);
      tl.watch('n2', b);
      try {
        a.start();
        await until('n1 leads', () => a.active, 30_000);
        b.start();
        await until('n2 waits and sees n1 lead', () => b.status().role === 'candidate' && b.status().leader === 'n1', 30_000);
        const token = a.activeLeadership()!.token;
        const kids = await zkCall<string[]>((cb) => raw.getChildren(`${root}/election`, undefined, cb));
        const lowest = kids.sort((x, y) => x.slice(-10).localeCompare(y.slice(-10)))[0]!;
        await zkCall<unknown>((cb) => raw.setData(`${root}/election/${lowest}`, Buffer.from(how === 'garbage' ? 'garbage' : '{"node":"n2","id":2}'), -1, cb));
        const t0 = performance.now();
        await until('n1 noticed and wrote its record back', () => warnings.some((w) => w.includes(`our election znode ${root}/election/${lowest} was changed by another client`)), 10_000, 5);
        const noticed = performance.now() - t0;
        await until('both nodes show n1 as leader again', () => a.status().leader === 'n1' && b.status().leader === 'n1' && b.status().leaderToken === token, 10_000, 10);
        console.log(`zookeeper leader znode data ${how}: written back after ${noticed.toFixed(0)} ms, both nodes show n1 after ${(performance.now() - t0).toFixed(0)} ms`);
        const [data] = await new Promise<[Buffer]>((res, rej) => raw.getData(`${root}/election/${lowest}`, undefined, (err, d) => (err ? rej(err) : res([d]))));
        expect(data.toString()).toBe('{"node":"n1","id":1}');
        expect(warnings.join('\n')).toContain(`our election znode ${root}/election/${lowest} was changed by another client`);
        expect(a.activeLeadership()?.token).toBe(token);
        expect((await call((cb) => a.jobClaim('nightly', 1_000, a.activeLeadership()!, cb))).status).toBe(200);
        expect(b.active).toBe(false);
        tl.check();
      } finally {
        await a.stop();
        await b.stop();
        raw.close();
        tl.close();
      }
    }, 120_000);
  }
});

describe.skipIf(!HAVE_ZK)('engine: zookeeper, foreign znodes in the election', () => {
  let ens: ZkEnsemble;
  beforeAll(async () => {
    ens = await ZkEnsemble.start(1);
  }, 90_000);
  afterAll(async () => {
    await ens?.close();
  });

  it('a persistent znode named like a candidate, and one named otherwise, are passed over with warnings; the nodes elect one leader', async () => {
    const root = `/quorumd-test/foreign${process.pid}`;
    const raw = await rawZk(ens.connect);
    await zkCall<string>((cb) => raw.mkdirp(`${root}/election`, null, zk.ACL.OPEN_ACL_UNSAFE, zk.CreateMode.PERSISTENT, cb));
    // Sorts before every real candidate (sequence 0), and never goes away.
    await zkCall<string>((cb) => raw.create(`${root}/election/n-0-0000000000`, Buffer.from('{"node":"ghost","id":9}'), zk.ACL.OPEN_ACL_UNSAFE, zk.CreateMode.PERSISTENT, cb));
    await zkCall<string>((cb) => raw.create(`${root}/election/garbage`, Buffer.from('x'), zk.ACL.OPEN_ACL_UNSAFE, zk.CreateMode.PERSISTENT, cb));
    const { log, warnings } = capture();
    const mk = (id: number) => new ZkEngine({ servers: ens.connect.split(','), chroot: root, self: { id, name: `n${id}` }, sessionTimeoutMs: 3000, probeMs: 300, serverLagMs: 600, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log });
    const [a, b] = [mk(1), mk(2)];
    const tl = new Timeline();
    tl.watch('n1', a);
    tl.watch('n2', b);
    try {
      a.start();
      b.start();
      await until('a leader despite the foreign znodes', () => a.active || b.active, 20_000);
      const [leader, other] = a.active ? [a, b] : [b, a];
      expect(warnings.join('\n')).toContain(`${root}/election/n-0-0000000000 is in the election but it is not ephemeral`);
      expect(warnings.join('\n')).toContain(`${root}/election/garbage is in the election but its name is not n-<session>-<sequence>`);
      // /v1/leader names the real leader, not the ghost.
      await until('the other sees the leader', () => other.status().leader === leader.status().leader && other.status().leader !== null, 20_000);
      expect(other.status().leader).toMatch(/^n[12]$/);
      await leader.stop();
      await until('the other leads next', () => other.active, 20_000);
      tl.check();
    } finally {
      await a.stop();
      await b.stop();
      raw.close();
      tl.close();
    }
  }, 120_000);
});
