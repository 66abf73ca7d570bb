/**
 * `npm run bench -- external-failover`: failover figures of engine: etcd and engine:
 * zookeeper against real services (Debian's etcd-server, 3 members; zookeeper, a
 * 3-server ensemble), started here on free 127.0.0.1 ports.
 *
 *   1. kills: three `quorumd start` processes; the active leader's process gets
 *      SIGKILL; measured: kill → a survivor's /v1/status says active, and kill → the
 *      first write acknowledged through that new leader (PUT /v1/kv, sent as soon as
 *      it is active). The killed node is started again before the next round.
 *   3. kills with STONITH (--stonith N rounds): the same three processes with a
 *      `fencing:` section whose relays are dev rails served here (test/engines/rails.ts,
 *      settleMs 200): the new leader switches the killed one's rail off and reads it
 *      back off before it acts. Measured: kill → active, kill → first write, and the
 *      rail's off → read-back-off (what the fence adds). The rail powers the killed
 *      node on again after 1 s.
 *   2. cuts: three engines in this process, the leader reaching the service through
 *      black-holing TCP proxies; measured: the gap between the cut-off leader
 *      switching itself off and the next leader switching on (must be > 0), and how
 *      long after the cut each happened.
 *
 * The service timing is the test servers' (etcd heartbeat 50 ms / election 500 ms;
 * ZooKeeper tickTime 200 ms, syncLimit 2) and the nodes' the tests' (etcd ttlSec 2,
 * keepAliveMs 300, marginMs 200; ZooKeeper session 3000 ms, probe 300 ms, serverLag
 * 600 ms, margin 200 ms): failover after a kill is bounded below by the TTL / session
 * timeout, so the figures scale with those settings. Options:
 *
 *   --kills N      rounds of SIGKILL per engine (default 10)
 *   --cuts N       partition rounds per engine (default 5)
 *   --stonith N    rounds of SIGKILL with STONITH per engine (default 10; 0 = none)
 *   --engine E     etcd, zookeeper or both (default both)
 *
 * Prints the machine load (`uptime`) before and after: the numbers mean little on a
 * busy machine.
 */
import { execSync } from 'node:child_process';
import { EtcdEngine } from '../daemon/engines/etcd.ts';
import { ZkEngine } from '../daemon/engines/zookeeper.ts';
import type { ExternalEngine } from '../daemon/engines/types.ts';
import { EtcdCluster, HAVE_ETCD, HAVE_ZK, until, ZkEnsemble } from '../test/engines/servers.ts';
import { ExternalProcCluster } from '../test/engines/proc.ts';
import { TcpProxy } from '../test/engines/tcp-proxy.ts';
import { cutScenario, quietLog } from '../test/engines/harness.ts';
import { RailRig } from '../test/engines/rails.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const KILLS = Number(arg('kills', '10'));
const CUTS = Number(arg('cuts', '5'));
const WHICH = arg('engine', 'both');
const STONITH = Number(arg('stonith', '10'));

const load = () => execSync('uptime').toString().trim();
function stats(xs: number[]): string {
  if (xs.length === 0) return 'n/a';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
  return `median ${q(50).toFixed(0)} ms, p90 ${q(90).toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ${s.at(-1)!.toFixed(0)} (n=${s.length})`;
}

const SECTION = {
  etcd: '  ttlSec: 2\n  keepAliveMs: 300\n  marginMs: 200\n',
  zookeeper: '  sessionTimeoutMs: 3000\n  probeMs: 300\n  serverLagMs: 600\n  marginMs: 200\n',
};

async function kills(engine: 'etcd' | 'zookeeper', endpoints: string[]): Promise<void> {
  const c = await ExternalProcCluster.start({ engine, endpoints, sectionYaml: SECTION[engine] });
  const toActive: number[] = [];
  const toWrite: number[] = [];
  try {
    for (let round = 1; round <= KILLS; round++) {
      const leader = await c.activeNode();
      const t0 = performance.now();
      await c.kill(leader);
      const next = await c.activeNode();
      const a = performance.now() - t0;
      let w = NaN;
      for (let i = 0; i < 200; i++) {
        if ((await c.put(next, `bench-${round}`, 'x')) === 200) {
          w = performance.now() - t0;
          break;
        }
      }
      toActive.push(a);
      if (!Number.isNaN(w)) toWrite.push(w);
      console.log(`  ${engine} kill ${round}: ${leader.name} killed → ${next.name} active after ${a.toFixed(0)} ms, first write after ${w.toFixed(0)} ms`);
      c.spawn(leader);
      await until(`${leader.name} back`, async () => (await c.status(leader)) !== undefined, 60_000, 100);
    }
  } finally {
    await c.close();
    c.remove();
  }
  console.log(`${engine}: kill → new active leader: ${stats(toActive)}`);
  console.log(`${engine}: kill → first write through it: ${stats(toWrite)}`);
}

async function stonithKills(engine: 'etcd' | 'zookeeper', endpoints: string[]): Promise<void> {
  if (STONITH <= 0) return;
  const r = new RailRig(200);
  const toActive: number[] = [];
  const toWrite: number[] = [];
  const fence: number[] = [];
  try {
    await r.start(engine, endpoints, SECTION[engine]);
    const c = r.c;
    for (let round = 1; round <= STONITH; round++) {
      const leader = await c.activeNode();
      const logFrom = r.railLog.length;
      const t0 = performance.now();
      await c.kill(leader);
      const next = await c.activeNode();
      const a = performance.now() - t0;
      let w = NaN;
      for (let i = 0; i < 200; i++) {
        if ((await c.put(next, `bench-${round}`, 'x')) === 200) {
          w = performance.now() - t0;
          break;
        }
      }
      const log = r.railLog.slice(logFrom);
      const off = log.find(([, e]) => e === `rail ${leader.name} off`);
      const back = off && log.find(([t, e]) => e === `read ${leader.name} off` && t >= off[0]);
      toActive.push(a);
      if (!Number.isNaN(w)) toWrite.push(w);
      if (off && back) fence.push(back[0] - off[0]);
      console.log(`  ${engine} stonith kill ${round}: ${leader.name} killed → fenced (${off && back ? `rail off → read back off ${back[0] - off[0]} ms` : 'NOT FENCED'}) → ${next.name} active after ${a.toFixed(0)} ms, first write after ${w.toFixed(0)} ms`);
      await until(`${leader.name} powered on and back`, async () => r.on.get(leader.name) === true && (await r.status(leader))?.role === 'candidate', 60_000, 100);
    }
  } finally {
    await r.close();
  }
  console.log(`${engine} with STONITH: kill → new active leader: ${stats(toActive)}`);
  console.log(`${engine} with STONITH: kill → first write through it: ${stats(toWrite)}`);
  console.log(`${engine} with STONITH: rail off → read back off (settleMs 200): ${stats(fence)}`);
}

async function cuts(engine: 'etcd' | 'zookeeper', ports: number[], direct: string[]): Promise<void> {
  const gaps: number[] = [];
  const offs: number[] = [];
  const ons: number[] = [];
  for (let round = 1; round <= CUTS; round++) {
    const proxies = await Promise.all(ports.map((p) => new TcpProxy(p).start()));
    const via = engine === 'etcd' ? proxies.map((p) => `http://${p.address}`) : proxies.map((p) => p.address);
    const prefix = `/quorumd-bench/${process.pid}-${engine}-${round}`;
    const mk = (id: number, eps: string[]): ExternalEngine =>
      engine === 'etcd'
        ? new EtcdEngine({ endpoints: eps, prefix: `${prefix}/`, self: { id, name: `n${id}` }, ttlSec: 2, keepAliveMs: 300, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log: quietLog })
        : new ZkEngine({ servers: eps, chroot: prefix, self: { id, name: `n${id}` }, sessionTimeoutMs: 3000, probeMs: 300, serverLagMs: 600, driftRate: 0.001, marginMs: 200, requestTimeoutMs: 3000, log: quietLog });
    try {
      const r = await cutScenario({ viaProxies: mk(1, via), direct: [mk(2, direct), mk(3, direct)], proxies, heal: false });
      gaps.push(r.gapMs);
      offs.push(r.offMs);
      ons.push(r.onMs);
      console.log(`  ${engine} cut ${round}: leader off ${r.offMs.toFixed(0)} ms after the cut, next on ${r.onMs.toFixed(0)} ms: gap ${r.gapMs.toFixed(0)} ms`);
    } finally {
      for (const p of proxies) await p.close();
    }
  }
  console.log(`${engine}: cut → cut-off leader off: ${stats(offs)}`);
  console.log(`${engine}: cut → next leader on: ${stats(ons)}`);
  console.log(`${engine}: gap between them (must be > 0): ${stats(gaps)}`);
}

console.log(`load before: ${load()}`);
if ((WHICH === 'both' || WHICH === 'etcd') && HAVE_ETCD) {
  const etcd = await EtcdCluster.start(3);
  try {
    await kills('etcd', etcd.endpoints);
    await stonithKills('etcd', etcd.endpoints);
    await cuts('etcd', etcd.members.map((m) => m.clientPort), etcd.endpoints);
  } finally {
    await etcd.close();
  }
} else if (WHICH !== 'zookeeper') console.log('etcd: not installed (apt-get install etcd-server); skipped');
if ((WHICH === 'both' || WHICH === 'zookeeper') && HAVE_ZK) {
  const zk = await ZkEnsemble.start(3);
  try {
    await kills('zookeeper', zk.connect.split(','));
    await stonithKills('zookeeper', zk.connect.split(','));
    await cuts('zookeeper', zk.members.map((m) => m.clientPort), zk.connect.split(','));
  } finally {
    await zk.close();
  }
} else if (WHICH !== 'etcd') console.log('zookeeper: not installed (apt-get install zookeeper); skipped');
console.log(`load after: ${load()}`);
