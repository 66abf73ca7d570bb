/**
 * engine: etcd against a real 3-member etcd cluster (Debian's etcd-server; started
 * and stopped here on free ports in a temp dir): the API mapping, the election and
 * its tokens, a node cut off from etcd by a black-holing TCP proxy (it must stop
 * acting before another node can lead: the gap is measured and must be > 0), etcd's
 * own leader killed, and the whole etcd cluster restarted. Quorumd processes being
 * killed are in e2e.test.ts; the 10-kill failover figures in bench/external-failover.ts.
 *
 * Every test records all nodes' activation events on one clock (harness.ts Timeline)
 * and checks: never two active leaders at once, tokens only grow across leaders.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdEngine } from '../../daemon/engines/etcd.ts';
import { EtcdCluster, HAVE_ETCD, until } from './servers.ts';
import { TcpProxy } from './tcp-proxy.ts';
import { call, checkLocks, cutScenario, quietLog, servicesScenario, str, text, Timeline } from './harness.ts';

const TTL_SEC = 2;
const KEEPALIVE_MS = 300;
const MARGIN_MS = 200;

let cluster: EtcdCluster;
let prefixN = 0;

function engine(id: number, endpoints: string[], prefix: string): EtcdEngine {
  return new EtcdEngine({ endpoints, prefix, self: { id, name: `n${id}` }, ttlSec: TTL_SEC, keepAliveMs: KEEPALIVE_MS, driftRate: 0.001, marginMs: MARGIN_MS, requestTimeoutMs: 3000, log: quietLog });
}

const fresh = () => `/quorumd-test/${process.pid}-${++prefixN}/`;

describe.skipIf(!HAVE_ETCD)('engine: etcd (3-member etcd cluster)', () => {
  beforeAll(async () => {
    cluster = await EtcdCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('maps KV, compare-and-set, watches, locks and job claims onto etcd', async () => {
    const prefix = fresh();
    const a = engine(1, cluster.endpoints, prefix);
    const b = engine(2, cluster.endpoints, prefix);
    a.start();
    await until('a leads', () => a.active, 20_000);
    b.start();
    try {
      // KV: index = mod revision; a read from the other node sees it (linearizable and stale).
      const p1 = await call((cb) => a.put('cfg/x', text('one'), {}, cb));
      expect(p1.status).toBe(200);
      const g1 = await call((cb) => b.get('cfg/x', { stale: false }, cb));
      expect(g1).toMatchObject({ status: 200, index: p1.index });
      expect(str(g1.value)).toBe('one');
      expect((await call((cb) => b.get('cfg/x', { stale: true }, cb))).index).toBe(p1.index);
      expect((await call((cb) => b.get('absent', { stale: false }, cb))).status).toBe(404);
      // cas: the current index wins, a stale one is 409 with the current index, 0 = create only.
      const c1 = await call((cb) => b.put('cfg/x', text('two'), { cas: p1.index! }, cb));
      expect(c1.status).toBe(200);
      expect(c1.index!).toBeGreaterThan(p1.index!);
      expect(await call((cb) => a.put('cfg/x', text('three'), { cas: p1.index! }, cb))).toMatchObject({ status: 409, index: c1.index });
      expect((await call((cb) => a.put('cfg/x', text('x'), { cas: 0 }, cb))).status).toBe(409);
      expect((await call((cb) => a.put('cfg/new', text('x'), { cas: 0 }, cb))).status).toBe(200);
      expect((await call((cb) => a.del('cfg/x', { cas: p1.index! }, cb))).status).toBe(409);
      expect((await call((cb) => a.del('cfg/x', { cas: c1.index! }, cb))).status).toBe(200);
      expect((await call((cb) => b.get('cfg/x', { stale: false }, cb))).status).toBe(404);
      // Bad input is refused before anything is sent, with the state machine's own errors.
      expect((await call((cb) => a.put('', text('x'), {}, cb))).status).toBe(400);
      expect((await call((cb) => a.put('k'.repeat(300), text('x'), {}, cb))).status).toBe(400);
      // Watch: the service's watch tells every change of the key.
      let fired = 0;
      const off = b.onKeyChange('w', () => fired++);
      await new Promise((r) => setTimeout(r, 200)); // the watch is created asynchronously
      for (let i = 0; i < 3; i++) await call((cb) => a.put('w', text(String(i)), {}, cb));
      await until('three watch events', () => fired >= 3, 10_000);
      off();

      // Locks: token = the grant's revision; lease ids; TTL expiry (harness.ts).
      await checkLocks(a, b);

      // Job claims: only with the current leadership; a slot once; a later slot again.
      const lead = a.activeLeadership()!;
      expect(lead.token).toBeGreaterThan(0);
      expect((await call((cb) => a.jobClaim('nightly', 1_000, lead, cb))).status).toBe(200);
      expect((await call((cb) => a.jobClaim('nightly', 1_000, lead, cb))).status).toBe(409);
      expect((await call((cb) => a.jobClaim('nightly', 2_000, lead, cb))).status).toBe(200);
      expect(a.jobRecord('nightly')?.claim.slot).toBe(2_000);
      // A stale token (an older leadership) is refused by the transaction itself.
      expect((await call((cb) => a.jobClaim('nightly', 3_000, { term: lead.term - 1, token: lead.token - 1 }, cb))).status).toBe(409);
      // The result report.
      expect((await call((cb) => b.jobDone({ job: 'nightly', slot: 2_000, outcome: 'ok', code: 0, signal: '', startedAtMs: 2_000, durationMs: 5 }, cb))).status).toBe(200);
      expect(b.jobRecord('nightly')?.result?.outcome).toBe('ok');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('stale reads never go back in time: a node\'s own write is in its next stale read, wherever that read lands', async () => {
    // Each call goes to a member picked at random; a serializable read on a follower
    // that has not applied the newest commit yet would answer the value before.
    const prefix = fresh();
    const a = engine(1, cluster.endpoints, prefix);
    const b = engine(2, cluster.endpoints, prefix);
    try {
      let behind = 0;
      let last = 0;
      for (let i = 1; i <= 300; i++) {
        const w = await call((cb) => a.put('seq', text(String(i)), {}, cb));
        expect(w.status).toBe(200);
        // Read your writes, stale: never the value before.
        const r = await call((cb) => a.get('seq', { stale: true }, cb));
        expect(r.status).toBe(200);
        if (Number(str(r.value)) < i) behind++;
        // Another node's stale reads only move forward.
        const o = await call((cb) => b.get('seq', { stale: true }, cb));
        if (o.status === 200) {
          if (Number(str(o.value)) < last) behind++;
          last = Number(str(o.value));
        }
      }
      console.log(`etcd: 300 writes, each followed by stale reads on two nodes: ${a.staleRereads + b.staleRereads} answers from lagging members read again linearizably`);
      expect(behind).toBe(0);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('service discovery on etcd: register, list, watch, deregister, and a silent node\'s instances removed by the leader', async () => {
    const prefix = fresh();
    const a = engine(1, cluster.endpoints, prefix);
    const b = engine(2, cluster.endpoints, prefix);
    a.start();
    await until('a leads', () => a.active, 30_000);
    b.start();
    try {
      const r = await servicesScenario(a, b, ['n1', 'n2']);
      console.log(`etcd: services — a silent node's instance removed ${r.reapedMs.toFixed(0)} ms after its renewals stopped (nodeTtlMs 1500)`);
      expect(r.reapedMs).toBeLessThan(1500 + 1500 / 3 + 3000);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('elects one leader; a stopped leader hands over at once to the next, whose token is larger', async () => {
    const prefix = fresh();
    const tl = new Timeline();
    const nodes = [1, 2, 3].map((i) => engine(i, cluster.endpoints, prefix));
    nodes.forEach((n, i) => tl.watch(`n${i + 1}`, n));
    try {
      for (const n of nodes) n.start();
      const first = await until('one active leader', () => nodes.find((n) => n.active), 20_000);
      await until('every node knows the leader', () => nodes.every((n) => n.status().leader === first.status().leader), 10_000);
      expect(nodes.filter((n) => n.active)).toHaveLength(1);
      const t1 = first.status().token;
      expect(first.status().leaderToken).toBe(t1);
      const t0 = performance.now();
      await first.stop();
      const second = await until('the next leader', () => nodes.find((n) => n !== first && n.active), 20_000);
      const handover = performance.now() - t0;
      expect(second.status().token).toBeGreaterThan(t1);
      // Resigning revokes the lease: no TTL to wait out.
      expect(handover).toBeLessThan(TTL_SEC * 1000 * 3);
      tl.check();
      console.log(`etcd: resign handover ${handover.toFixed(0)} ms; tokens ${t1} → ${second.status().token}`);
    } finally {
      for (const n of nodes) await n.stop();
      tl.close();
    }
  });

  it('a leader cut off from etcd stops acting before another node can lead (gap measured, > 0); it rejoins after the heal', async () => {
    const prefix = fresh();
    const proxies = await Promise.all(cluster.members.map((m) => new TcpProxy(m.clientPort).start()));
    try {
      const r = await cutScenario({ viaProxies: engine(1, proxies.map((p) => `http://${p.address}`), prefix), direct: [2, 3].map((i) => engine(i, cluster.endpoints, prefix)), proxies, heal: true });
      console.log(`etcd partition: n1 off ${r.offMs.toFixed(0)} ms after the cut (${r.offReason}), the next leader on ${r.onMs.toFixed(0)} ms after it: gap ${r.gapMs.toFixed(0)} ms; tokens ${r.tokens[0]} → ${r.tokens[1]}`);
      expect(r.gapMs).toBeGreaterThan(0);
      expect(r.tokens[1]).toBeGreaterThan(r.tokens[0]);
    } finally {
      for (const p of proxies) await p.close();
    }
  });

  it('the checks catch a planted bug: a cut-off leader that acts 3 s past its window overlaps the next leader', async () => {
    const prefix = fresh();
    const proxies = await Promise.all(cluster.members.map((m) => new TcpProxy(m.clientPort).start()));
    try {
      const planted = new EtcdEngine({ endpoints: proxies.map((p) => `http://${p.address}`), prefix, self: { id: 1, name: 'n1' }, ttlSec: TTL_SEC, keepAliveMs: KEEPALIVE_MS, driftRate: 0.001, marginMs: MARGIN_MS, requestTimeoutMs: 3000, log: quietLog, plantedExtraMs: 3000 });
      await expect(cutScenario({ viaProxies: planted, direct: [2, 3].map((i) => engine(i, cluster.endpoints, prefix)), proxies, heal: false })).rejects.toThrow(/two active leaders|still active/);
    } finally {
      for (const p of proxies) await p.close();
    }
  });

  it("etcd's own leader killed: the quorumd leader keeps its leadership (or hands it over safely) and writes go on", async () => {
    const prefix = fresh();
    const tl = new Timeline();
    const nodes = [1, 2].map((i) => engine(i, cluster.endpoints, prefix));
    nodes.forEach((n, i) => tl.watch(`n${i + 1}`, n));
    try {
      for (const n of nodes) n.start();
      await until('a leader', () => nodes.find((n) => n.active), 20_000);
      const victim = await cluster.leaderIndex();
      const t0 = performance.now();
      await cluster.kill(victim);
      // Writes through the engines reach the survivors once etcd elected a new leader.
      const w = await until('a write after the kill', async () => {
        const r = await call((cb) => nodes[1]!.put('after-kill', text('x'), {}, cb));
        return r.status === 200 ? r : undefined;
      }, 30_000, 50);
      const writeMs = performance.now() - t0;
      expect(w.index).toBeGreaterThan(0);
      await until('an active quorumd leader', () => nodes.find((n) => n.active), 30_000);
      console.log(`etcd leader (member ${victim + 1}) killed: first write after ${writeMs.toFixed(0)} ms; quorumd leader changes: ${tl.events.filter((e) => e.active).length - 1}`);
      await cluster.restart(victim);
      await cluster.waitHealthy();
      tl.check();
    } finally {
      for (const n of nodes) await n.stop();
      tl.close();
    }
  });

  it('the whole etcd cluster restarted: the leader switches off while etcd is down and leads again after', async () => {
    const prefix = fresh();
    const tl = new Timeline();
    const nodes = [1, 2].map((i) => engine(i, cluster.endpoints, prefix));
    nodes.forEach((n, i) => tl.watch(`n${i + 1}`, n));
    try {
      for (const n of nodes) n.start();
      const leader = await until('a leader', () => nodes.find((n) => n.active), 20_000);
      const tokenBefore = leader.status().token;
      await cluster.stopAll();
      const downAt = performance.now();
      await until('no active leader while etcd is down', () => nodes.every((n) => !n.active), 10_000);
      const offAfter = performance.now() - downAt;
      // The window is TTL·(1−ρ) − margin after the last answered renewal: never more.
      expect(offAfter).toBeLessThan(TTL_SEC * 1000 + 1000);
      await cluster.startAll();
      const back = await until('a leader again', () => nodes.find((n) => n.active), 60_000);
      expect(back.status().token).toBeGreaterThanOrEqual(tokenBefore);
      expect((await call((cb) => back.put('after-restart', text('x'), {}, cb))).status).toBe(200);
      console.log(`etcd restart: leader off ${offAfter.toFixed(0)} ms after the stop; after the restart ${back === leader ? 'the same node resumed' : 'another node leads'} (token ${tokenBefore} → ${back.status().token})`);
      tl.check();
    } finally {
      for (const n of nodes) await n.stop();
      tl.close();
    }
  }, 120_000);
});
