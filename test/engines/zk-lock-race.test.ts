/**
 * Locks on engine: zookeeper when two acquirers race for a lapsed grant, against a
 * real ZooKeeper server. The interleaving is made exact by holding one engine's call
 * right after it read the lock's znode (its private read, wrapped): the other engine
 * takes the lock meanwhile, then the held call goes on with what it read.
 *
 * Seen on real processes before the fix (three `quorumd start`, two clients
 * contending for one lock through different nodes): a grant was taken over 60 ms
 * after it was given, by a second acquirer that had read the previous, lapsed znode —
 * the lock znode was removed and re-created on every take-over, so its version
 * restarted and the second acquirer's version check matched the new grant.
 */
import zk from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkEngine } from '../../daemon/engines/zookeeper.ts';
import { HAVE_ZK, rawZk, until, zkCall, ZkEnsemble } from './servers.ts';
import { call, lease, quietLog } from './harness.ts';

function engine(id: number, servers: string[], chroot: string): ZkEngine {
  return new ZkEngine({ servers, chroot, self: { id, name: `n${id}` }, sessionTimeoutMs: 3000, probeMs: 300, serverLagMs: 600, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 5000, log: quietLog });
}

/** Holds `e`'s next read of a path ending in `suffix` right after it returned; `release()` lets it go on. */
function holdAfterRead(e: ZkEngine, suffix: string): { reached: Promise<void>; release: () => void } {
  const inner = e as unknown as { read: (c: unknown, path: string) => Promise<unknown> };
  const orig = inner.read.bind(e);
  let reached!: () => void;
  let release!: () => void;
  const r = new Promise<void>((res) => (reached = res));
  const gate = new Promise<void>((res) => (release = res));
  let armed = true;
  inner.read = async (c, path) => {
    const v = await orig(c, path);
    if (armed && path.endsWith(suffix)) {
      armed = false;
      reached();
      await gate;
    }
    return v;
  };
  return { reached: r, release };
}


describe.skipIf(!HAVE_ZK)('engine: zookeeper locks: racing acquirers (standalone server)', () => {
  let ens: ZkEnsemble;
  beforeAll(async () => {
    ens = await ZkEnsemble.start(1);
  }, 90_000);
  afterAll(async () => {
    await ens?.close();
  });

  it('a second acquirer that read a lapsed lock cannot take a grant made after its read; the token grows', async () => {
    const root = `/quorumd-test/race${process.pid}`;
    const servers = ens.connect.split(',');
    const b = engine(1, servers, root);
    const c = engine(2, servers, root);
    const z = await rawZk(ens.connect);
    b.start();
    c.start();
    try {
      await until('both sessions up', () => b.status().role !== 'connecting' && c.status().role !== 'connecting', 30_000);
      // A lapsed grant: a record no quorumd wrote counts as free at once (written like a grant, version 1).
      await zkCall<string>((cb) => z.create(`${root}/locks/L`, Buffer.alloc(0), zk.ACL.OPEN_ACL_UNSAFE, zk.CreateMode.PERSISTENT, cb));
      await zkCall<unknown>((cb) => z.setData(`${root}/locks/L`, Buffer.from('{"owner":"gone"'), 0, cb));
      const [LB, LC] = [lease(), lease()];
      const held = holdAfterRead(c, '/locks/L');
      const cGets = call((cb) => c.lockAcquire('L', 'c', 10_000, LC, cb));
      await held.reached;
      // c has read the free znode; b takes the lock now.
      const gb = await call((cb) => b.lockAcquire('L', 'b', 10_000, LB, cb));
      expect(gb.status).toBe(200);
      held.release();
      const gc = await cGets;
      // b's grant is 10 s long: c must be refused, and b must still hold it.
      expect(gc, 'c was granted a lock that b holds').toMatchObject({ status: 409, holder: 'b', token: gb.token });
      expect(await call((cb) => b.lockRenew('L', LB, cb))).toMatchObject({ status: 200, token: gb.token });
      // Released, then taken again: a larger token; the released holder's renewal is refused.
      expect((await call((cb) => b.lockRelease('L', LB, cb))).status).toBe(200);
      const gc2 = await call((cb) => c.lockAcquire('L', 'c', 10_000, LC, cb));
      expect(gc2.status).toBe(200);
      expect(gc2.token!).toBeGreaterThan(gb.token!);
      expect((await call((cb) => b.lockRenew('L', LB, cb))).status).toBe(409);
      // The token stays the grant's across renewals (a renewal rewrites the record).
      expect(await call((cb) => c.lockRenew('L', LC, cb))).toMatchObject({ status: 200, token: gc2.token });
      expect(await call((cb) => c.lockRenew('L', LC, cb))).toMatchObject({ status: 200, token: gc2.token });
      expect(await call((cb) => b.lockAcquire('L', 'b', 1000, LB, cb))).toMatchObject({ status: 409, holder: 'c', token: gc2.token });
    } finally {
      z.close();
      await b.stop();
      await c.stop();
    }
  }, 120_000);

  it("a holder's renewal that read its grant cannot rewrite a grant made after its read (released meanwhile, taken by another)", async () => {
    const root = `/quorumd-test/renew${process.pid}`;
    const servers = ens.connect.split(',');
    const b = engine(1, servers, root);
    const c = engine(2, servers, root);
    b.start();
    c.start();
    try {
      await until('both sessions up', () => b.status().role !== 'connecting' && c.status().role !== 'connecting', 30_000);
      const [LB, LC] = [lease(), lease()];
      const g1 = await call((cb) => b.lockAcquire('L', 'b', 10_000, LB, cb));
      expect(g1.status).toBe(200);
      // b renews (a retry of a renewal, say) and is held after reading its grant...
      const held = holdAfterRead(b, '/locks/L');
      const renewing = call((cb) => b.lockRenew('L', LB, cb));
      await held.reached;
      // ...while its release goes through and c takes the lock.
      expect((await call((cb) => c.lockRelease('L', LB, cb))).status).toBe(200);
      const g2 = await call((cb) => c.lockAcquire('L', 'c', 10_000, LC, cb));
      expect(g2.status).toBe(200);
      held.release();
      expect((await renewing).status, 'the stale renewal wrote over c\'s grant').toBe(409);
      expect(await call((cb) => c.lockRenew('L', LC, cb))).toMatchObject({ status: 200, token: g2.token });
    } finally {
      await b.stop();
      await c.stop();
    }
  }, 120_000);
});
