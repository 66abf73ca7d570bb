/**
 * Service discovery, acceptance on real processes: three `quorumd start` nodes (Raft
 * over a `quorumd broker`), 50 instances registered across them, one node's process
 * killed (SIGKILL): its instances vanish within its liveness TTL and the others stay;
 * a blocking watch sees every change (each registration, one at a time, and the
 * removal); the DNS interface answers SRV and A with the healthy instances (with
 * dns-packet over TCP, truncated over UDP, and with `dig` when Debian's bind9-dnsutils
 * is installed).
 */
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../../daemon/client/http.ts';
import { ProcCluster } from '../daemon/e2e/proc-cluster.ts';
import { EtcdCluster, freePort, HAVE_ETCD, HAVE_ZK, until, ZkEnsemble } from '../engines/servers.ts';
import { ExternalProcCluster } from '../engines/proc.ts';

const NODE_TTL_MS = 3000;
const N = 50;

/**
 * One API call. A 503 is a definite "not done, try again" (an election on a loaded
 * machine, a client between connections): retried as a user would, bounded to 30 s;
 * any other answer is returned as it is.
 */
async function api(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const end = performance.now() + 30_000;
  for (let i = 0; ; i++) {
    const r = await call(url, method, path, { timeoutMs: 15_000, ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}) });
    if (r.status !== 503 || performance.now() > end || i >= 300) return { status: r.status, json: JSON.parse(r.body.toString() || '{}') as Record<string, unknown> };
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** One DNS query offering an EDNS UDP size of 4096 bytes, over UDP (the default) or TCP; the answer and its size. */
async function dnsAsk(port: number, name: string, type: 'SRV' | 'A', over: 'udp' | 'tcp' = 'udp'): Promise<{ p: dnsPacket.Packet; bytes: number }> {
  const query = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as never] });
  let close = () => undefined as void;
  try {
    return await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no DNS answer over ${over} for ${name} ${type} within 10 s`)), 10_000);
      const done = (m: Buffer) => {
        clearTimeout(t);
        resolve({ p: dnsPacket.decode(m), bytes: m.length });
      };
      if (over === 'udp') {
        const sock = createSocket('udp4');
        close = () => sock.close();
        sock.once('message', done);
        sock.send(query, port, '127.0.0.1');
      } else {
        const c = connect({ port, host: '127.0.0.1' });
        close = () => void c.destroy();
        c.on('error', reject);
        let buf = Buffer.alloc(0);
        c.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        });
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        c.write(Buffer.concat([len, query]));
      }
    });
  } finally {
    close();
  }
}
const dnsQuery = async (port: number, name: string, type: 'SRV' | 'A', over: 'udp' | 'tcp' = 'udp') => (await dnsAsk(port, name, type, over)).p;

/** Three nodes of one cluster as the scenario sees them, whatever runs them. */
interface Nodes {
  nodes: Array<{ name: string; url: string }>;
  /** The active leader (polled). */
  leader(): Promise<{ name: string; url: string }>;
  /** SIGKILL: no goodbye. */
  kill(n: { name: string; url: string }): Promise<void> | void;
  dnsPorts: number[];
  cluster: string;
  /** For the printed numbers: which engine. */
  label: string;
}

/**
 * The acceptance scenario: 50 instances registered round robin (a watch on a surviving
 * node sees each), one more critical one, ?healthy and tags, DNS SRV/A from every node
 * (and `dig` when installed), /metrics; then a non-leader's process is killed: its
 * instances vanish within its TTL, the others stay, the watch and DNS follow.
 */
async function discoveryScenario(h: Nodes): Promise<void> {
  const leader = await h.leader();
  // The victim: a node that is not the leader (its instances are reaped by the leader that stays).
  const victim = h.nodes.find((n) => n !== leader)!;
  const watcherNode = h.nodes.find((n) => n !== victim)!;
  // A watcher on a surviving node: every answer's instance count, in order.
  const seen: Array<{ index: number; count: number; at: number }> = [];
  let stopWatch = false;
  const watcher = (async () => {
    let index = 0;
    for (let i = 0; i < 10_000 && !stopWatch; i++) {
      const r = await api(watcherNode.url, 'GET', `/v1/services/web?watch=${index}&wait=2s`).catch(() => undefined);
      if (!r || r.status !== 200) {
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      const ix = r.json.index as number;
      if (ix !== index) seen.push({ index: ix, count: (r.json.instances as unknown[]).length, at: performance.now() });
      index = ix;
    }
  })();

  // Register 50 instances, round robin over the nodes, one at a time; the watch must report each.
  const owner = new Map<string, string>();
  for (let i = 0; i < N; i++) {
    const node = h.nodes[i % 3]!;
    const inst = `i${String(i).padStart(2, '0')}`;
    const r = await api(node.url, 'PUT', `/v1/services/web/${inst}`, { address: `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 8000 + i, tags: [i % 2 ? 'odd' : 'even'] });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    owner.set(inst, node.name);
    await until(`the watch saw ${i + 1} instances`, () => seen.some((s) => s.count === i + 1), 20_000);
  }
  const counts = seen.map((s) => s.count);
  for (let i = 1; i <= N; i++) expect(counts, `watch saw the state with ${i} instances`).toContain(i);

  // One more with a TTL check that never gets a heartbeat: critical, so not in ?healthy nor DNS.
  expect((await api(h.nodes[0]!.url, 'PUT', '/v1/services/web/stale', { address: '10.9.9.9', port: 9, check: { ttl: '1s' } })).status).toBe(200);
  await until('the watch saw 51', () => seen.some((s) => s.count === N + 1), 20_000);
  const healthy = await api(leader.url, 'GET', '/v1/services/web?healthy');
  expect((healthy.json.instances as Array<{ instance: string }>).map((x) => x.instance)).not.toContain('stale');
  expect((healthy.json.instances as unknown[]).length).toBe(N);
  expect(((await api(leader.url, 'GET', '/v1/services/web?healthy&tag=odd')).json.instances as unknown[]).length).toBe(N / 2);

  // DNS: SRV and A of the healthy instances, from every node's own cache. Over TCP (what
  // a resolver does after a truncated UDP answer, or `dig +tcp`): every record.
  const zone = `web.service.${h.cluster}.quorumd`;
  const ports = new Set(Array.from({ length: N }, (_, i) => 8000 + i));
  const addrs = new Set(Array.from({ length: N }, (_, i) => `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`));
  for (const port of h.dnsPorts) {
    const srv = await until('SRV answers for every healthy instance', async () => {
      const p = await dnsQuery(port, zone, 'SRV', 'tcp');
      return (p.answers ?? []).length === N ? p : undefined;
    }, 15_000, 100);
    expect((srv.answers ?? []).every((a) => a.type === 'SRV')).toBe(true);
    expect(new Set((srv.answers ?? []).map((a) => (a as { data: { port: number } }).data.port))).toEqual(ports);
    expect(srv.flags! & (1 << 9)).toBe(0);
    // Every target's address as an additional record (no size limit over TCP), and the OPT record.
    expect(new Set((srv.additionals ?? []).filter((x) => x.type === 'A').map((x) => (x as { data: string }).data))).toEqual(addrs);
    expect((srv.additionals ?? []).filter((x) => x.type === 'OPT')).toHaveLength(1);
    const a = await dnsQuery(port, zone, 'A', 'tcp');
    expect(new Set((a.answers ?? []).map((x) => (x as { data: string }).data))).toEqual(addrs);
    expect((a.answers ?? []).length).toBe(N);
    // Over UDP the answer is cut at 1232 bytes whatever size the query offers (4096 here),
    // with TC set so resolvers retry over TCP: what it carries are real records, not all.
    for (const type of ['SRV', 'A'] as const) {
      const u = await dnsAsk(port, zone, type);
      expect(u.bytes, `${type} over UDP: ${u.bytes} bytes`).toBeLessThanOrEqual(1232);
      expect(u.p.flags! & (1 << 9), `${type} over UDP: TC`).not.toBe(0);
      const got = u.p.answers ?? [];
      expect(got.length).toBeGreaterThan(0);
      expect(got.length).toBeLessThan(N);
      for (const r of got) {
        expect(r.type).toBe(type);
        if (type === 'SRV') expect(ports).toContain((r as { data: { port: number } }).data.port);
        else expect(addrs).toContain((r as { data: string }).data);
      }
    }
  }
  expect((await dnsQuery(h.dnsPorts[0]!, `i07.web.service.${h.cluster}.quorumd`, "A")).answers?.[0] as unknown).toMatchObject({ type: 'A', data: '10.1.0.8' });
  expect((await dnsQuery(h.dnsPorts[0]!, `nope.service.${h.cluster}.quorumd`, 'SRV')).flags! & 15).toBe(3); // NXDOMAIN
  expect((await dnsQuery(h.dnsPorts[0]!, 'example.com', 'A')).flags! & 15).toBe(5); // REFUSED
  // dig over UDP: the answer comes truncated and dig asks again over TCP, as a resolver does.
  const dig = spawnSync('dig', ['@127.0.0.1', '-p', String(h.dnsPorts[1]), 'SRV', zone, '+short', '+time=2', '+tries=2'], { encoding: 'utf8' });
  if (dig.error === undefined) {
    const lines = dig.stdout.trim().split('\n').filter(Boolean);
    expect(lines, dig.stdout + dig.stderr).toHaveLength(N);
    console.log(`${h.label}: dig @127.0.0.1 -p ${h.dnsPorts[1]} SRV ${zone} +short → ${lines.length} lines, e.g. ${lines[0]}`);
  } else console.log(`dig not installed (${dig.error.message}); checked with dns-packet only`);

  // /metrics counts the catalog by health.
  const metrics = (await call(leader.url, 'GET', '/metrics', { timeoutMs: 10_000 })).body.toString();
  expect(metrics).toMatch(/^quorumd_services_instances\{health="passing"\} 50$/m);
  expect(metrics).toMatch(/^quorumd_services_instances\{health="critical"\} 1$/m);

  // Kill the victim's process: no goodbye.
  const mine = [...owner].filter(([, n]) => n === victim.name).map(([i]) => i);
  const theirs = [...owner].filter(([, n]) => n !== victim.name).map(([i]) => i);
  const t0 = performance.now();
  await h.kill(victim);
  const gone = await until('the victim\'s instances vanish', async () => {
    const r = await api(watcherNode.url, 'GET', '/v1/services/web').catch(() => undefined);
    const names = ((r?.json.instances ?? []) as Array<{ instance: string }>).map((x) => x.instance);
    return mine.every((m) => !names.includes(m)) ? names : undefined;
  }, 60_000, 100);
  const vanishedMs = performance.now() - t0;
  // Within the TTL after its last renewal: kill → vanish ≤ TTL + one reaper period (the last renewal was before the kill).
  console.log(`${h.label}: killed ${victim.name} (${mine.length} instances): gone after ${vanishedMs.toFixed(0)} ms (nodeTtlMs ${NODE_TTL_MS}); watch answers: ${seen.length}`);
  expect(vanishedMs).toBeLessThan(NODE_TTL_MS + NODE_TTL_MS / 4 + 3000);
  for (const t of theirs) expect(gone).toContain(t);
  await until('the watch saw the removal', () => seen.some((s) => s.count === N + 1 - mine.length), 20_000);
  // DNS follows.
  await until('DNS without the victim\'s instances', async () => ((await dnsQuery(h.dnsPorts[h.nodes.indexOf(watcherNode)]!, zone, 'SRV', 'tcp')).answers ?? []).length === N - mine.length, 15_000, 100);
  stopWatch = true;
  await watcher;
}

describe('service discovery on 3 quorumd processes (Raft)', () => {
  let c: ProcCluster;
  const dnsPorts: number[] = [];

  beforeAll(async () => {
    for (let k = 0; k < 3; k++) dnsPorts.push(await freePort());
    c = await ProcCluster.start(3, `services:\n  nodeTtlMs: ${NODE_TTL_MS}\n`, (k) => `  dns: { listen: "127.0.0.1:${dnsPorts[k - 1]}", ttlSec: 0 }\n`);
    await c.waitLeader(60_000);
  }, 90_000);
  afterAll(async () => {
    await c?.stop();
  });

  it('50 instances on 3 nodes; a killed node\'s instances vanish within its TTL, the others stay; a watch sees each change; DNS answers the healthy ones', async () => {
    await discoveryScenario({ nodes: c.nodes, leader: () => c.waitLeader(), kill: (n) => c.kill(n as (typeof c.nodes)[number], 'SIGKILL'), dnsPorts, cluster: 'dev', label: 'raft' });
  }, 240_000);

  it('the CLI: register with a TTL check, pass, list, watch --count, deregister, and clear errors', async () => {
    const node = c.nodes.find((n) => n.child)!;
    const { BIN } = await import('../engines/proc.ts');
    const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'services', ...args, '--node', node.url], { encoding: 'utf8', timeout: 60_000 });
    const reg = cli('register', 'db', 'main', '--address', '10.2.0.1', '--port', '5432', '--tag', 'primary', '--meta', 'zone=a', '--check-ttl', '30s');
    expect(reg.status, reg.stderr).toBe(0);
    expect(reg.stdout).toMatch(/^index=\d+ health=critical$/m);
    const pass = cli('pass', 'db', 'main', '--note', 'ready');
    expect(pass.status, pass.stderr).toBe(0);
    expect(pass.stdout.trim()).toBe('health=passing');
    const list = cli('list', 'db', '--healthy', '--tag', 'primary');
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^db\/main\t10\.2\.0\.1:5432\tpassing\tnode=n\d\ttags=primary$/m);
    expect(cli('list').stdout).toMatch(/^db\t1\/1 healthy\ttags=primary$/m);
    const watch = cli('watch', 'db', '--count', '1');
    expect(watch.status, watch.stderr).toBe(0);
    expect((JSON.parse(watch.stdout.trim()) as { instances: unknown[] }).instances).toHaveLength(1);
    // Exit statuses of docs/cli.md's one table: 2 bad input (found before sending), 5 not allowed (403).
    const bad = cli('register', 'DB', 'x', '--address', '1.2.3.4', '--port', '1');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/service name: expected a DNS label/);
    const two = cli('register', 'db', 'x', '--address', '1.2.3.4', '--port', '1', '--check-ttl', '5s', '--check-tcp', '1.2.3.4:1');
    expect(two.status).toBe(2);
    expect(two.stderr).toMatch(/give one check, not ttl and tcp/);
    const script = cli('register', 'db', 'x', '--address', '1.2.3.4', '--port', '1', '--check-script', '/bin/true');
    expect(script.status).toBe(5);
    expect(script.stderr).toMatch(/script checks are off on this node/);
    expect(cli('deregister', 'db', 'main').status).toBe(0);
    const gone = cli('deregister', 'db', 'main');
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/404: no instance main of service db/);
  }, 120_000);
});

/** The same acceptance on engine: etcd (3-member etcd) and engine: zookeeper (standalone): three `quorumd start` processes. */
for (const engine of ['etcd', 'zookeeper'] as const) {
  describe.skipIf(engine === 'etcd' ? !HAVE_ETCD : !HAVE_ZK)(`service discovery on 3 quorumd processes (engine: ${engine})`, () => {
    let etcd: EtcdCluster | undefined;
    let zk: ZkEnsemble | undefined;
    let c: ExternalProcCluster | undefined;
    const dnsPorts: number[] = [];
    beforeAll(async () => {
      for (let k = 0; k < 3; k++) dnsPorts.push(await freePort());
      if (engine === 'etcd') etcd = await EtcdCluster.start(3);
      else zk = await ZkEnsemble.start(1);
      c = await ExternalProcCluster.start({
        engine,
        endpoints: etcd ? etcd.endpoints : zk!.connect.split(','),
        sectionYaml: engine === 'etcd' ? '  ttlSec: 2\n  keepAliveMs: 300\n  marginMs: 200\n' : '  sessionTimeoutMs: 3000\n  probeMs: 300\n  serverLagMs: 600\n  marginMs: 200\n',
        extraYaml: (_dir, node) => `services:\n  nodeTtlMs: ${NODE_TTL_MS}\n  dns: { listen: "127.0.0.1:${dnsPorts[Number(node.slice(1)) - 1]}", ttlSec: 0 }\n`,
      });
    }, 120_000);
    afterAll(async () => {
      await c?.close();
      c?.remove();
      await etcd?.close();
      await zk?.close();
    });

    it('50 instances on 3 nodes; a killed node\'s instances vanish within its TTL, the others stay; a watch sees each change; DNS answers the healthy ones', async () => {
      const cl = c!;
      const nodes = cl.nodes.map((n) => ({ name: n.name, url: cl.url(n) }));
      const proc = (n: { name: string }) => cl.nodes.find((x) => x.name === n.name)!;
      await discoveryScenario({
        nodes,
        leader: async () => {
          const a = await cl.activeNode();
          return nodes.find((n) => n.name === a.name)!;
        },
        kill: (n) => cl.kill(proc(n), 'SIGKILL'),
        dnsPorts,
        cluster: 'e2e',
        label: engine,
      });
    }, 240_000);
  });
}
