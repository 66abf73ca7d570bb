/**
 * STONITH with engine: etcd and engine: zookeeper, as real processes against the real
 * services: three `quorumd start` nodes with a `fencing:` section whose relays are dev
 * rails served by this test (daemon/fencing/dev-relay.ts: switching a rail off SIGKILLs
 * that node's process and keeps it down; on starts it again). On one wall clock the
 * test records every rail switch and read-back, and every node's on-active hook.
 *
 *   - the leader SIGSTOPped (a hung board: its timers do not run, its lease expires on
 *     the service): the next leader switches the hung board's rail off and reads it back
 *     off before its on-active hook runs; its status says the suspect was `fenced`; the
 *     board is powered on again after powerOnAfterMs and rejoins as a candidate;
 *   - the leader SIGKILLed: the same (a dead board is fenced too: nobody can tell it
 *     from a hung one);
 *   - the leader SIGTERMed (a clean resign: it switches off, records `clean` in the
 *     leader history, then gives up its key): the next leader acts without touching a
 *     rail, and has no suspects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdCluster, HAVE_ETCD, HAVE_ZK, until, ZkEnsemble } from './servers.ts';
import type { ProcNode } from './proc.ts';
import { RailRig } from './rails.ts';

const SETTLE_MS = 300;

/**
 * One failure of the leader by `how`; returns the new active node. For stop/kill the
 * new leader must have switched the old one's rail off and read it back off before its
 * on-active hook ran; for term it must not have touched any rail.
 */
async function failLeader(r: RailRig, how: 'SIGSTOP' | 'SIGKILL' | 'SIGTERM', what: string): Promise<{ next: ProcNode; ms: number }> {
  const c = r.c;
  const first = await c.activeNode();
  const s1 = (await r.status(first))!;
  const railsBefore = r.railLog.length;
  const t0 = performance.now();
  const wall0 = Date.now();
  if (how === 'SIGSTOP') first.child!.kill('SIGSTOP');
  else await c.kill(first, how);
  // The stopped process still "lives" for activeNode(): its API just does not answer.
  const next = await until(`a new active leader after ${how}`, async () => {
    for (const n of c.nodes) {
      if (n === first || !c.alive(n)) continue;
      const s = await r.status(n);
      if (s?.active) return n;
    }
    return undefined;
  }, 60_000, 20);
  const ms = performance.now() - t0;
  const s2 = (await r.status(next))!;
  expect(s2.token).toBeGreaterThan(s1.token);
  const hook = await until(`${next.name}'s on-active hook`, () => r.actives().find(([t, n, tok]) => n === next.name && tok === s2.token && t >= wall0), 20_000);
  const rails = r.railLog.slice(railsBefore);
  if (how === 'SIGTERM') {
    expect(rails.filter(([, e]) => e.startsWith('rail ')), `${what}: a clean resign is not fenced`).toEqual([]);
    expect(s2.suspects ?? []).toEqual([]);
  } else {
    const off = rails.find(([, e]) => e === `rail ${first.name} off`);
    expect(off, `${what}: ${next.name} switched ${first.name}'s rail off`).toBeDefined();
    const verified = rails.find(([t, e]) => e === `read ${first.name} off` && t >= off![0]);
    expect(verified, `${what}: the rail was read back off`).toBeDefined();
    // Acted only after the verification (settleMs after the switch): the hook's time is not earlier.
    expect(hook[0], `${what}: on-active hook at ${hook[0]}, rail read back off at ${verified![0]}`).toBeGreaterThanOrEqual(verified![0]);
    expect(verified![0] - off![0]).toBeGreaterThanOrEqual(SETTLE_MS - 5);
    expect(s2.suspects).toEqual([{ node: first.name, clearedBy: 'fenced' }]);
    expect(s2.fences?.local.some((f) => f.target === first.name && f.outcome === 'off')).toBe(true);
    // Powered on again after powerOnAfterMs: the board boots a fresh process, a candidate.
    await until(`${first.name} powered on and back as a candidate`, async () => r.on.get(first.name) === true && (await r.status(first))?.role === 'candidate', 60_000, 100);
    expect((await r.status(next))?.active).toBe(true);
  }
  return { next, ms };
}

async function scenario(r: RailRig, engine: string): Promise<void> {
  const first = await r.c.activeNode();
  const s = (await r.status(first))!;
  // A fresh cluster: nobody led before, nothing to fence; the devices are listed.
  expect(s.suspects).toEqual([]);
  expect(s.relays).toHaveLength(2);
  const a = await failLeader(r, 'SIGSTOP', `${engine} SIGSTOP`);
  const b = await failLeader(r, 'SIGKILL', `${engine} SIGKILL`);
  const t = await failLeader(r, 'SIGTERM', `${engine} SIGTERM`);
  console.log(`${engine} with STONITH (dev rails, settle ${SETTLE_MS} ms): SIGSTOP → fenced, next active ${a.ms.toFixed(0)} ms; SIGKILL → fenced, next active ${b.ms.toFixed(0)} ms; SIGTERM → no fence, next active ${t.ms.toFixed(0)} ms`);
}

describe.skipIf(!HAVE_ETCD)('STONITH with engine: etcd (3 processes, dev rails, 1-member etcd)', () => {
  let etcd: EtcdCluster;
  const r = new RailRig(SETTLE_MS);
  beforeAll(async () => {
    etcd = await EtcdCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    await r.close();
    await etcd?.close();
  });

  it('a hung or killed leader is fenced before the next one acts; a clean resign is not', async () => {
    await r.start('etcd', etcd.endpoints, '  ttlSec: 2\n  keepAliveMs: 300\n  marginMs: 200\n');
    await scenario(r, 'etcd');
  }, 240_000);
});

describe.skipIf(!HAVE_ZK)('STONITH with engine: zookeeper (3 processes, dev rails, standalone ZooKeeper)', () => {
  let zk: ZkEnsemble;
  const r = new RailRig(SETTLE_MS);
  beforeAll(async () => {
    zk = await ZkEnsemble.start(1);
  }, 90_000);
  afterAll(async () => {
    await r.close();
    await zk?.close();
  });

  it('a hung or killed leader is fenced before the next one acts; a clean resign is not', async () => {
    await r.start('zookeeper', zk.connect.split(','), '  sessionTimeoutMs: 3000\n  probeMs: 300\n  serverLagMs: 600\n  marginMs: 200\n');
    await scenario(r, 'zookeeper');
  }, 240_000);
});
