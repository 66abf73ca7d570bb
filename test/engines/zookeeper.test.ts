/**
 * engine: zookeeper against real ZooKeeper servers (Debian's zookeeper package, run
 * through java here on free ports in a temp dir): standalone for the API mapping and
 * the election; a 3-server ensemble for a node cut off by a black-holing TCP proxy
 * (it must stop acting before another node can lead: the gap is measured and must be
 * > 0), ZooKeeper's own leader killed, and the whole ensemble restarted.
 *
 * The ensemble runs tickTime 200 ms, syncLimit 2: serverLagMs = 2 × 200 + 200 = 600.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkEngine, znodeName } from '../../daemon/engines/zookeeper.ts';
import { HAVE_ZK, until, ZkEnsemble } from './servers.ts';
import { TcpProxy } from './tcp-proxy.ts';
import { call, checkLocks, cutScenario, quietLog, servicesScenario, str, text, Timeline } from './harness.ts';

const SESSION_MS = 3000;
const PROBE_MS = 300;
const LAG_MS = ZkEnsemble.SYNC_LIMIT * ZkEnsemble.TICK_MS + ZkEnsemble.TICK_MS;
let chrootN = 0;
const fresh = () => `/quorumd-test/p${process.pid}-${++chrootN}`;

function engine(id: number, servers: string[], chroot: string): ZkEngine {
  return new ZkEngine({ servers, chroot, self: { id, name: `n${id}` }, sessionTimeoutMs: SESSION_MS, probeMs: PROBE_MS, serverLagMs: LAG_MS, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log: quietLog });
}

describe('znode names', () => {
  it('encode any key into one znode name that is never . or .. and has no /', () => {
    expect(znodeName('a/b')).toBe('a%2Fb');
    expect(znodeName('.')).toBe('%2E');
    expect(znodeName('..')).toBe('%2E%2E');
    expect(znodeName('ä')).toBe('%C3%A4');
    expect(znodeName('')).toBe('%');
    expect(znodeName('x_y-1')).toBe('x_y-1');
    // Different keys, different names.
    expect(znodeName('%2F')).not.toBe(znodeName('/'));
  });
});

describe.skipIf(!HAVE_ZK)('engine: zookeeper (standalone server)', () => {
  let zk: ZkEnsemble;
  beforeAll(async () => {
    zk = await ZkEnsemble.start(1);
  }, 90_000);
  afterAll(async () => {
    await zk?.close();
  });

  it('maps KV (tombstoned deletes, cas on mzxid), watches, locks and job claims onto ZooKeeper', async () => {
    const root = fresh();
    const servers = zk.connect.split(',');
    const a = engine(1, servers, root);
    const b = engine(2, servers, root);
    a.start();
    await until('a leads', () => a.active, 30_000);
    b.start();
    await until('b is a candidate', () => b.status().role === 'candidate', 30_000);
    try {
      const p1 = await call((cb) => a.put('cfg/x', text('one'), {}, cb));
      expect(p1.status).toBe(200);
      const g1 = await call((cb) => b.get('cfg/x', { stale: false }, cb));
      expect(g1).toMatchObject({ status: 200, index: p1.index });
      expect(str(g1.value)).toBe('one');
      expect((await call((cb) => b.get('absent', { stale: true }, cb))).status).toBe(404);
      const c1 = await call((cb) => b.put('cfg/x', text('two'), { cas: p1.index! }, cb));
      expect(c1.status).toBe(200);
      expect(c1.index!).toBeGreaterThan(p1.index!);
      expect(await call((cb) => a.put('cfg/x', text('three'), { cas: p1.index! }, cb))).toMatchObject({ status: 409, index: c1.index });
      expect((await call((cb) => a.put('cfg/x', text('x'), { cas: 0 }, cb))).status).toBe(409);
      // Delete, then the same key again: its index is new and a cas on the old one fails (no ABA).
      expect((await call((cb) => a.del('cfg/x', { cas: c1.index! }, cb))).status).toBe(200);
      expect((await call((cb) => b.get('cfg/x', { stale: false }, cb))).status).toBe(404);
      const again = await call((cb) => a.put('cfg/x', text('four'), { cas: 0 }, cb));
      expect(again.status).toBe(200);
      expect((await call((cb) => a.put('cfg/x', text('five'), { cas: p1.index! }, cb))).status).toBe(409);
      expect((await call((cb) => a.put('', text('x'), {}, cb))).status).toBe(400);
      // Watch.
      let fired = 0;
      const off = b.onKeyChange('w', () => fired++);
      await new Promise((r) => setTimeout(r, 200));
      await call((cb) => a.put('w', text('0'), {}, cb));
      await until('a watch event', () => fired >= 1, 10_000);
      await call((cb) => a.put('w', text('1'), {}, cb));
      await until('the re-armed watch fires again', () => fired >= 2, 10_000);
      off();

      // Locks: token = the grant's czxid; lease ids; TTL expiry (harness.ts).
      await checkLocks(a, b);

      // Job claims guarded by the leader's candidate znode.
      const lead = a.activeLeadership()!;
      expect((await call((cb) => a.jobClaim('nightly', 1_000, lead, cb))).status).toBe(200);
      expect((await call((cb) => a.jobClaim('nightly', 1_000, lead, cb))).status).toBe(409);
      expect((await call((cb) => a.jobClaim('nightly', 2_000, lead, cb))).status).toBe(200);
      expect((await call((cb) => b.jobClaim('nightly', 3_000, lead, cb))).status).toBe(409); // b does not lead
      expect((await call((cb) => b.jobDone({ job: 'nightly', slot: 2_000, outcome: 'failed', code: 3, signal: '', startedAtMs: 2_000, durationMs: 5 }, cb))).status).toBe(200);
      expect(b.jobRecord('nightly')?.result).toMatchObject({ outcome: 'failed', code: 3 });
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('service discovery on zookeeper: register, list, watch, deregister, and a silent node\'s instances removed by the leader', async () => {
    const root = fresh();
    const a = engine(1, zk.connect.split(','), root);
    const b = engine(2, zk.connect.split(','), root);
    a.start();
    await until('a leads', () => a.active, 30_000);
    b.start();
    try {
      const r = await servicesScenario(a, b, ['n1', 'n2']);
      console.log(`zookeeper: services — a silent node's instance removed ${r.reapedMs.toFixed(0)} ms after its renewals stopped (nodeTtlMs 1500)`);
      expect(r.reapedMs).toBeLessThan(1500 + 1500 / 3 + 3000);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('elects the lowest candidate; a stopped leader hands over at once; tokens (czxid) grow', async () => {
    const root = fresh();
    const tl = new Timeline();
    const nodes = [1, 2, 3].map((i) => engine(i, zk.connect.split(','), root));
    nodes.forEach((n, i) => tl.watch(`n${i + 1}`, n));
    try {
      for (const n of nodes) n.start();
      const first = await until('one active leader', () => nodes.find((n) => n.active), 30_000);
      await until('every node knows the leader', () => nodes.every((n) => n.status().leader === first.status().leader), 10_000);
      const t1 = first.status().token;
      const t0 = performance.now();
      await first.stop();
      const second = await until('the next leader', () => nodes.find((n) => n !== first && n.active), 30_000);
      const handover = performance.now() - t0;
      expect(second.status().token).toBeGreaterThan(t1);
      expect(handover).toBeLessThan(SESSION_MS);
      tl.check();
      console.log(`zookeeper: close-session handover ${handover.toFixed(0)} ms; tokens ${t1} → ${second.status().token}`);
    } finally {
      for (const n of nodes) await n.stop();
      tl.close();
    }
  });
});

describe.skipIf(!HAVE_ZK)('engine: zookeeper (3-server ensemble)', () => {
  let zk: ZkEnsemble;
  beforeAll(async () => {
    zk = await ZkEnsemble.start(3);
  }, 120_000);
  afterAll(async () => {
    await zk?.close();
  });

  it('a leader cut off from the ensemble stops acting before another node can lead (gap measured, > 0)', async () => {
    const root = fresh();
    const proxies = await Promise.all(zk.members.map((m) => new TcpProxy(m.clientPort).start()));
    try {
      const r = await cutScenario({ viaProxies: engine(1, proxies.map((p) => p.address), root), direct: [2, 3].map((i) => engine(i, zk.connect.split(','), root)), proxies, heal: true });
      console.log(`zookeeper partition: n1 off ${r.offMs.toFixed(0)} ms after the cut (${r.offReason}), the next leader on ${r.onMs.toFixed(0)} ms after it: gap ${r.gapMs.toFixed(0)} ms; tokens ${r.tokens[0]} → ${r.tokens[1]}`);
      expect(r.gapMs).toBeGreaterThan(0);
      expect(r.tokens[1]).toBeGreaterThan(r.tokens[0]);
    } finally {
      for (const p of proxies) await p.close();
    }
  });

  it("ZooKeeper's own leader killed: writes go on after the ensemble re-elects; never two active quorumd leaders", async () => {
    const root = fresh();
    const tl = new Timeline();
    const nodes = [1, 2].map((i) => engine(i, zk.connect.split(','), root));
    nodes.forEach((n, i) => tl.watch(`n${i + 1}`, n));
    try {
      for (const n of nodes) n.start();
      await until('a leader', () => nodes.find((n) => n.active), 30_000);
      const victim = await zk.leaderIndex();
      const t0 = performance.now();
      await zk.kill(victim);
      const w = await until('a write after the kill', async () => {
        const r = await call((cb) => nodes[1]!.put('after-kill', text('x'), {}, cb));
        return r.status === 200 ? r : undefined;
      }, 60_000, 50);
      const writeMs = performance.now() - t0;
      expect(w.index).toBeGreaterThan(0);
      await until('an active quorumd leader', () => nodes.find((n) => n.active), 60_000);
      console.log(`ZooKeeper leader (server ${victim + 1}) killed: first write after ${writeMs.toFixed(0)} ms; quorumd activations: ${tl.events.filter((e) => e.active).length}`);
      await zk.restart(victim);
      await zk.waitServing();
      tl.check();
    } finally {
      for (const n of nodes) await n.stop();
      tl.close();
    }
  }, 120_000);

  it('the whole ensemble restarted: the leader switches off while it is down and a leader acts again after', async () => {
    const root = fresh();
    const tl = new Timeline();
    const nodes = [1, 2].map((i) => engine(i, zk.connect.split(','), root));
    nodes.forEach((n, i) => tl.watch(`n${i + 1}`, n));
    try {
      for (const n of nodes) n.start();
      await until('a leader', () => nodes.find((n) => n.active), 30_000);
      await zk.stopAll();
      const downAt = performance.now();
      await until('no active leader while ZooKeeper is down', () => nodes.every((n) => !n.active), 10_000);
      const offAfter = performance.now() - downAt;
      expect(offAfter).toBeLessThan(SESSION_MS + 1000);
      await zk.startAll();
      const back = await until('a leader again', () => nodes.find((n) => n.active), 90_000);
      expect((await call((cb) => back.put('after-restart', text('x'), {}, cb))).status).toBe(200);
      console.log(`ZooKeeper restart: leader off ${offAfter.toFixed(0)} ms after the stop; leading again after the restart (token ${back.status().token})`);
      tl.check();
    } finally {
      for (const n of nodes) await n.stop();
      tl.close();
    }
  }, 180_000);
});
