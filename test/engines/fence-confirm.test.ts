/**
 * `quorumd fence confirm` on the external engines: the answer carries the evidence the
 * Raft, Paxos, ZAB and bully answers carry — `lastHeardMs` (how long ago the service last
 * showed the node alive: its election key or ephemeral znode, which lives only with its
 * lease or session) and `listenedMs` (how long the node asked had been reading the
 * election without a gap) — besides `superseded`, `active` and `waitingFor`. Before, the
 * external engines answered `{ok: true}` and nothing else, so `quorumd fence confirm`
 * printed no evidence there.
 *
 * On a real etcd and a real ZooKeeper, three engines with the ExternalBackend and an
 * ExternalFencing without fence devices (the new leader then waits for the watchdog
 * bound, set long here): the leader is cut off by a black-holing proxy, its lease or
 * session expires, the next leader waits for it as a suspect, and the operator confirms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EtcdEngine } from '../../daemon/engines/etcd.ts';
import { ZkEngine } from '../../daemon/engines/zookeeper.ts';
import { ExternalBackend } from '../../daemon/engines/backend.ts';
import { ExternalFencing } from '../../daemon/engines/fencing.ts';
import type { ExternalEngine } from '../../daemon/engines/types.ts';
import { systemClock } from '../../hal/clock.ts';
import { Rng } from '../../src/rng.ts';
import { EtcdCluster, HAVE_ETCD, HAVE_ZK, until, ZkEnsemble } from './servers.ts';
import { TcpProxy } from './tcp-proxy.ts';
import { quietLog, Timeline } from './harness.ts';

const members = [1, 2, 3].map((id) => ({ id, name: `n${id}`, role: 'voter' as const }));

function fencingFor(id: number): ExternalFencing {
  return new ExternalFencing({
    self: id,
    members: new Set([1, 2, 3]),
    devices: { relays: [], fencer: { targets: [], settleMs: 100, retries: 0 } },
    // Long: the suspect must still be waited for when the operator confirms.
    watchdogTimeoutMs: 600_000,
    marginMs: 200,
    clock: systemClock(),
    rng: new Rng(randomBytes(4).readUInt32LE(0)),
    log: () => undefined,
  });
}

async function scenario(mk: (id: number, fencing: ExternalFencing) => ExternalEngine, proxy: TcpProxy, what: string): Promise<void> {
  const fs = [1, 2, 3].map(fencingFor);
  const engines = [1, 2, 3].map((id) => mk(id, fs[id - 1]!));
  const backends = engines.map((e, i) => {
    const b = new ExternalBackend(e, members[i]!, members, 'c');
    b.setFencing([], fs[i]!);
    return b;
  });
  const [a, b, c] = engines as [ExternalEngine, ExternalEngine, ExternalEngine];
  const tl = new Timeline();
  engines.forEach((e, i) => tl.watch(`n${i + 1}`, e));
  try {
    a.start();
    await until('n1 leads', () => a.active, 30_000);
    const startedAt = performance.now();
    b.start();
    c.start();
    await until('n2 and n3 wait', () => b.status().role === 'candidate' && c.status().role === 'candidate', 30_000);
    // Let n2 and n3 read the election a few times while n1 holds its key.
    await until('n2 and n3 saw n1 alive', () => [b, c].every((e) => e.heard('n1').lastHeardMs !== null && e.heard('n1').listenedMs >= 1500), 20_000, 50);
    const cutAt = performance.now();
    proxy.cut();
    // The next leader (n2 or n3, whichever key is older) waits for n1: a suspect, it did not resign cleanly.
    const nextIdx = await until('the next leader elected, waiting for n1', () => [1, 2].find((i) => engines[i]!.status().elected && !engines[i]!.active), 30_000, 20);
    const electedAt = performance.now();
    const next = engines[nextIdx]!;
    const otherName = nextIdx === 1 ? 'n3' : 'n2';
    expect(next.active).toBe(false);
    const ans = backends[nextIdx]!.confirmFenced('n1');
    const now = performance.now();
    expect(ans.status, JSON.stringify(ans)).toBe(200);
    const r = ans.result as { superseded: boolean; active: boolean; waitingFor: string; lastHeardMs: number | null; listenedMs: number };
    console.log(`${what}: confirm n1 on the new leader n${nextIdx + 1}: ${JSON.stringify(r)} (cut ${Math.round(now - cutAt)} ms ago, elected ${Math.round(now - electedAt)} ms ago)`);
    expect(r).toMatchObject({ superseded: false, active: true, waitingFor: '' });
    expect(next.active).toBe(true);
    // n1's key was gone before the next leader won, and present when it was cut (until its
    // lease or session expired): the service last showed it between the two.
    expect(r.lastHeardMs).toEqual(expect.any(Number));
    expect(r.lastHeardMs!).toBeGreaterThanOrEqual(now - electedAt - 200);
    expect(r.lastHeardMs!).toBeLessThanOrEqual(now - cutAt + 3000);
    // It has read the election since it started (it was a candidate then), not longer.
    expect(r.listenedMs).toBeGreaterThanOrEqual(1500);
    expect(r.listenedMs).toBeLessThanOrEqual(now - startedAt + 100);
    // A member whose lease or session lives (the other candidate) was shown alive within about a read period.
    const live = backends[nextIdx]!.confirmFenced(otherName);
    expect((live.result as { lastHeardMs: number }).lastHeardMs).toBeLessThan(5000);
    tl.check();
  } finally {
    for (const e of engines) await e.stop();
    for (const f of fs) f.stop();
    for (const x of backends) x.detach();
    tl.close();
  }
}

describe.skipIf(!HAVE_ETCD)('fence confirm evidence, engine: etcd', () => {
  let etcd: EtcdCluster;
  let proxy: TcpProxy;
  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
    proxy = await new TcpProxy(etcd.members[0]!.clientPort).start();
  }, 60_000);
  afterAll(async () => {
    await proxy?.close();
    await etcd?.close();
  });

  it('the new leader answers with when etcd last showed the cut-off leader alive, and how long it had been reading', async () => {
    const prefix = `/quorumd-test/confirm-${process.pid}/`;
    await scenario(
      (id, fencing) => new EtcdEngine({ endpoints: id === 1 ? [`http://127.0.0.1:${proxy.port}`] : etcd.endpoints, prefix, self: { id, name: `n${id}` }, ttlSec: 2, keepAliveMs: 300, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log: quietLog, fencing }),
      proxy,
      'etcd',
    );
  }, 120_000);
});

describe.skipIf(!HAVE_ZK)('fence confirm evidence, engine: zookeeper', () => {
  let ens: ZkEnsemble;
  let proxy: TcpProxy;
  beforeAll(async () => {
    ens = await ZkEnsemble.start(1);
    proxy = await new TcpProxy(Number(ens.connect.split(',')[0]!.split(':')[1])).start();
  }, 90_000);
  afterAll(async () => {
    await proxy?.close();
    await ens?.close();
  });

  it('the new leader answers with when ZooKeeper last showed the cut-off leader alive, and how long it had been reading', async () => {
    const root = `/quorumd-test/confirm${process.pid}`;
    await scenario(
      (id, fencing) => new ZkEngine({ servers: id === 1 ? [`127.0.0.1:${proxy.port}`] : ens.connect.split(','), chroot: root, self: { id, name: `n${id}` }, sessionTimeoutMs: 3000, probeMs: 300, serverLagMs: 600, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log: quietLog, fencing }),
      proxy,
      'zookeeper',
    );
  }, 120_000);
});
