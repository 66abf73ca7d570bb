/**
 * Service discovery's parts in one process: the registry's checks (real HTTP and TCP
 * servers, real programs), TTL heartbeats and their owner rule, reaping by the active
 * leader after a node went silent, the catalog's input rules, the DNS answers (and
 * the server over UDP and TCP), the mDNS records and responder. The KV under the
 * registry here is a small in-memory one with the same contract as a node's
 * (indexes grow, cas on the index, prefix listing, key-change callbacks); the real
 * KVs are in discovery.test.ts (Raft processes) and test/engines (etcd, ZooKeeper).
 */
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceRegistry, type Catalog, type KvPort, type ListCallback } from '../../daemon/services/registry.ts';
import { CatalogError, parseInstanceDef, type InstanceView } from '../../daemon/services/catalog.ts';
import { answer, encodeWithin, startDns } from '../../daemon/services/dns.ts';
import { mdnsRecords, startMdns } from '../../daemon/services/mdns.ts';
import type { ClientCallback } from '../../daemon/runtime/results.ts';
import { freePort, until } from '../engines/servers.ts';

class MemoryKv implements KvPort {
  private index = 0;
  private readonly data = new Map<string, { value: Uint8Array; index: number }>();
  private readonly watchers = new Map<string, Set<() => void>>();
  leading = false;
  get(key: string, _o: { stale: boolean }, cb: ClientCallback): void {
    const e = this.data.get(key);
    cb(e ? { status: 200, value: e.value, index: e.index } : { status: 404, index: 0 });
  }
  put(key: string, value: Uint8Array, o: { cas?: number }, cb: ClientCallback): void {
    const cur = this.data.get(key)?.index ?? 0;
    if (o.cas !== undefined && o.cas !== cur) return cb({ status: 409, index: cur });
    this.data.set(key, { value, index: ++this.index });
    cb({ status: 200, index: this.index });
    for (const f of [...(this.watchers.get(key) ?? [])]) f();
  }
  del(key: string, o: { cas?: number }, cb: ClientCallback): void {
    const cur = this.data.get(key)?.index ?? 0;
    if (o.cas !== undefined && o.cas !== cur) return cb({ status: 409, index: cur });
    this.data.delete(key);
    cb({ status: 200, index: ++this.index });
    for (const f of [...(this.watchers.get(key) ?? [])]) f();
  }
  list(prefix: string, _o: { stale: boolean }, cb: ListCallback): void {
    cb({ status: 200, entries: [...this.data].filter(([k]) => k.startsWith(prefix)).map(([key, e]) => ({ key, value: e.value, index: e.index })) });
  }
  onKeyChange(key: string, fn: () => void): () => void {
    const s = this.watchers.get(key) ?? new Set();
    this.watchers.set(key, s);
    s.add(fn);
    return () => s.delete(fn);
  }
  activeLeadership() {
    return this.leading ? { term: 1, token: 1 } : undefined;
  }
}

/** Blocks this thread for `ms`: the process stands still (SIGSTOP, a starved board). */
function standStill(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const log = { debug: () => undefined, info: () => undefined, warn: () => undefined };
const regs: ServiceRegistry[] = [];
function registry(kv: KvPort, self: string, o: { nodeTtlMs?: number; scriptChecks?: boolean } = {}): ServiceRegistry {
  const r = new ServiceRegistry(kv, { self, nodeTtlMs: o.nodeTtlMs ?? 600, scriptChecks: o.scriptChecks ?? false, log });
  r.start();
  regs.push(r);
  return r;
}
/** Waits (bounded) until `r`'s reaper has completed `n` more passes from now. */
async function passes(r: ServiceRegistry, n: number): Promise<void> {
  const from = r.stats.reapPasses;
  await until(`${n} reaper passes`, async () => r.stats.reapPasses >= from + n, 30_000);
}
const def = (instance: string, extra: Record<string, unknown> = {}) => parseInstanceDef('web', instance, { address: '10.0.0.1', port: 80, ...extra });
const healthOf = async (r: ServiceRegistry, instance: string) => (await r.list({ stale: true })).instances.find((v) => v.instance === instance)?.health;

afterEach(() => {
  for (const r of regs.splice(0)) r.stop();
});

describe('service checks run by the registering node', () => {
  it('http: 2xx passing, 429 warning, 500 critical, no answer critical', async () => {
    let code = 200;
    const srv = createHttp((_q, res) => {
      res.statusCode = code;
      res.end('ok');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const kv = new MemoryKv();
      const r = registry(kv, 'a');
      // Timeout 1 s, not 200 ms: the first fetch() of a process loads undici, which takes
      // longer than 200 ms on a loaded machine and made the first probe 'critical'.
      expect((await r.register(def('h1', { check: { http: `http://127.0.0.1:${port}/health`, interval: '1s', timeout: '1s' } }), { operator: false })).health).toBe('passing');
      code = 429;
      await until('warning', async () => (await healthOf(r, 'h1')) === 'warning', 10_000);
      code = 500;
      await until('critical', async () => (await healthOf(r, 'h1')) === 'critical', 10_000);
      const v = (await r.list({ stale: true })).instances[0]!;
      expect(v.output).toMatch(/500/);
      code = 200;
      await until('passing again', async () => (await healthOf(r, 'h1')) === 'passing', 10_000);
    } finally {
      srv.close();
    }
  });

  it('tcp: a listener passes, a closed port is critical', async () => {
    const srv = createTcp((s) => s.destroy());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const closed = await freePort();
    const kv = new MemoryKv();
    const r = registry(kv, 'a');
    expect((await r.register(def('t1', { check: { tcp: `127.0.0.1:${port}`, interval: '100ms' } }), { operator: false })).health).toBe('passing');
    expect((await r.register(def('t2', { check: { tcp: `127.0.0.1:${closed}`, interval: '100ms' } }), { operator: false })).health).toBe('critical');
    srv.close();
    // The listener closed: the next probes fail.
    await until('t1 critical after the listener closed', async () => (await healthOf(r, 't1')) === 'critical', 10_000);
  });

  it('script: off unless configured, operator only; exit 0 passing, 1 warning, other critical, killed at the timeout', async () => {
    const kv = new MemoryKv();
    const off = registry(kv, 'a');
    await expect(off.register(def('s0', { check: { script: ['/bin/true'] } }), { operator: true })).rejects.toMatchObject({ status: 403, code: 'script-checks-off' });
    const on = registry(kv, 'b', { scriptChecks: true });
    await expect(on.register(def('s0', { check: { script: ['/bin/true'] } }), { operator: false })).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    expect((await on.register(def('s1', { check: { script: ['/bin/sh', '-c', 'echo fine'] } }), { operator: true })).health).toBe('passing');
    expect((await on.register(def('s2', { check: { script: ['/bin/sh', '-c', 'echo slow; exit 1'] } }), { operator: true })).health).toBe('warning');
    expect((await on.register(def('s3', { check: { script: ['/bin/sh', '-c', 'exit 2'] } }), { operator: true })).health).toBe('critical');
    expect((await on.register(def('s4', { check: { script: ['/bin/sleep', '5'], interval: '10s', timeout: '200ms' } }), { operator: true })).health).toBe('critical');
    const out = (await on.list({ stale: true })).instances;
    expect(out.find((v) => v.instance === 's1')!.output).toBe('fine');
    expect(out.find((v) => v.instance === 's4')!.output).toMatch(/killed after 200 ms/);
    expect((await on.register(def('s5', { check: { script: ['/no/such/program'] } }), { operator: true })).health).toBe('critical');
  });

  it('ttl: critical until the first heartbeat; critical again without one; heartbeats only on the owner', async () => {
    const kv = new MemoryKv();
    const a = registry(kv, 'a');
    const b = registry(kv, 'b');
    expect((await a.register(def('x', { check: { ttl: '500ms' } }), { operator: false })).health).toBe('critical');
    expect((await a.pass('web', 'x', 'ok')).health).toBe('passing');
    await expect(b.pass('web', 'x')).rejects.toMatchObject({ status: 409, code: 'not-owner' });
    await expect(a.pass('web', 'nope')).rejects.toMatchObject({ status: 404 });
    await until('critical without heartbeats', async () => (await healthOf(a, 'x')) === 'critical', 10_000);
    expect((await a.pass('web', 'x')).health).toBe('passing');
    await a.register(def('y'), { operator: false });
    await expect(a.pass('web', 'y')).rejects.toMatchObject({ status: 409, code: 'not-ttl' });
  });

  it('ttl: an owner that stood still longer than the TTL does not mark critical an instance whose heartbeats were waiting for it', async () => {
    // The owner judges the heartbeats on its own clock. A process that stood still
    // (SIGSTOP, a starved board) came back with that time counted as no heartbeat, and
    // its check ran (a timer) before the heartbeats sent meanwhile were read (an HTTP
    // request each): the instance flapped to critical and back, for every watcher and
    // DNS. Here the heartbeats arrive as a message does, after the timers (setImmediate).
    const kv = new MemoryKv();
    const a = registry(kv, 'a');
    await a.register(def('beat', { check: { ttl: '500ms' } }), { operator: false });
    await a.pass('web', 'beat');
    const beats = setInterval(() => setImmediate(() => void a.pass('web', 'beat').catch(() => undefined)), 100);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const changes = a.stats.healthChanges;
      // The process stands still for 3 TTLs — in a check phase, after the heartbeats
      // already delivered: the first timers after it see none newer than before it.
      await new Promise<void>((r) => setImmediate(() => (standStill(1500), r())));
      await new Promise((r) => setTimeout(r, 1000)); // then runs on for 2 TTLs, with heartbeats
      expect(await healthOf(a, 'beat')).toBe('passing');
      expect(a.stats.healthChanges, 'health changes of the instance after the stand-still').toBe(changes);
    } finally {
      clearInterval(beats);
    }
    // Without heartbeats while it runs, it still goes critical.
    await until('critical without heartbeats', async () => (await healthOf(a, 'beat')) === 'critical', 10_000);
  });
});

describe('liveness of the registering node', () => {
  it('the active leader removes the instances of a node that went silent for nodeTtlMs, and only those', async () => {
    const kv = new MemoryKv();
    const a = registry(kv, 'a', { nodeTtlMs: 600 });
    const b = registry(kv, 'b', { nodeTtlMs: 600 });
    await a.register(def('a1'), { operator: false });
    await a.register(def('a2'), { operator: false });
    await b.register(def('b1'), { operator: false });
    kv.leading = true; // b's KV says "active leader" (both share it; only b reaps since a stops)
    // a keeps renewing: nothing is removed over several TTLs. Proven by b's reaper: passes
    // are at least 150 ms apart (TTL / 4), so 10 passes after this point span over two
    // TTLs, in which a silent node would have been removed (by the third pass after its TTL).
    await passes(b, 10);
    expect((await b.list({ stale: true })).instances.map((v) => v.instance)).toEqual(['a1', 'a2', 'b1']);
    // a "crashes": its renewals stop.
    a.stop();
    const t0 = performance.now();
    await until('a1 and a2 removed', async () => (await b.list({ stale: true })).instances.length === 1, 10_000);
    const ms = performance.now() - t0;
    expect((await b.list({ stale: true })).instances.map((v) => v.instance)).toEqual(['b1']);
    expect(ms).toBeGreaterThan(600 - 600 / 3 - 50); // not before the TTL after its last renewal
    expect(b.stats.reaped).toBe(2);
  });

  it('a leader that stood still longer than nodeTtlMs removes nobody for that time', async () => {
    // The leader's reaper judges a node silent on its own monotonic clock. A leader
    // process that stood still (SIGSTOP, a starved board) came back with that time
    // counted as every node's silence, and its reaper ran before the renewals that
    // waited for it (a follower's renewal goes through the leader) were read: it removed
    // the instances of every live node. Here `a` renews through a KV whose writes
    // arrive a moment later (setImmediate: a message read after the timers), and the
    // process stands still for 2.5 TTLs.
    const kv = new MemoryKv();
    const later: KvPort = {
      get: (k, o, cb) => kv.get(k, o, cb),
      list: (p, o, cb) => kv.list(p, o, cb),
      put: (k, v, o, cb) => void setImmediate(() => kv.put(k, v, o, cb)),
      del: (k, o, cb) => void setImmediate(() => kv.del(k, o, cb)),
      onKeyChange: (k, fn) => kv.onKeyChange(k, fn),
      activeLeadership: () => undefined,
    };
    const a = registry(later, 'a', { nodeTtlMs: 600 });
    const b = registry(kv, 'b', { nodeTtlMs: 600 });
    await a.register(def('a1'), { operator: false });
    kv.leading = true;
    await passes(b, 3); // b has seen a's liveness record
    // The process stands still (in a check phase, after the renewals already delivered).
    await new Promise<void>((r) => setImmediate(() => (standStill(1500), r())));
    // Then runs on for over two TTLs, in which a silent node would be removed.
    await passes(b, 10);
    expect((await b.list({ stale: true })).instances.map((v) => v.instance)).toEqual(['a1']);
    expect(b.stats.reaped).toBe(0);
    // Silence while it runs still counts: a stops, and its instance goes.
    a.stop();
    await until('a1 removed', async () => (await b.list({ stale: true })).instances.length === 0, 10_000);
  });

  it('a node that is not the active leader removes nothing', async () => {
    const kv = new MemoryKv();
    const a = registry(kv, 'a', { nodeTtlMs: 400 });
    const b = registry(kv, 'b', { nodeTtlMs: 400 });
    await a.register(def('a1'), { operator: false });
    a.stop();
    // 10 of b's reaper passes (at least 100 ms apart): over two TTLs of a's silence, in
    // which an active leader would have removed a1.
    await passes(b, 10);
    expect((await b.list({ stale: true })).instances).toHaveLength(1);
    expect(b.stats.reaped).toBe(0);
  });

  it('a watch returns at the next change, with the new index', async () => {
    const kv = new MemoryKv();
    const a = registry(kv, 'a');
    const first = await a.list({ stale: true });
    const w = a.watch(first.index, 10_000);
    await a.register(def('w1'), { operator: false });
    const c = await w;
    expect(c.index).toBeGreaterThan(first.index);
    expect(c.instances.map((v: InstanceView) => v.instance)).toEqual(['w1']);
    // Nothing changes: the wait ends with the same index.
    const t0 = performance.now();
    expect((await a.watch(c.index, 300)).index).toBe(c.index);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
  });
});

describe('catalog input rules', () => {
  it('names every bad field', () => {
    const bad = (name: string, instance: string, body: unknown) => {
      try {
        parseInstanceDef(name, instance, body);
        return 'accepted';
      } catch (err) {
        return (err as CatalogError).message;
      }
    };
    expect(bad('Web', 'a', { address: '1.2.3.4', port: 1 })).toMatch(/^name: expected a DNS label/);
    expect(bad('web', '-a', { address: '1.2.3.4', port: 1 })).toMatch(/^instance: expected a DNS label/);
    expect(bad('web', 'a', { address: 'bad host!', port: 1 })).toMatch(/^address: /);
    expect(bad('web', 'a', { address: '::1', port: 70000 })).toMatch(/^port: expected an integer 1..65535/);
    expect(bad('web', 'a', { address: 'h.local', port: 1, tags: ['a b'] })).toMatch(/^tags: /);
    expect(bad('web', 'a', { address: 'h', port: 1, meta: { 'k!': 'v' } })).toMatch(/^meta\.k!: /);
    expect(bad('web', 'a', { address: 'h', port: 1, check: { ttl: '1s', http: 'http://x' } })).toMatch(/exactly one of ttl, http, tcp or script/);
    expect(bad('web', 'a', { address: 'h', port: 1, check: { http: 'ftp://x' } })).toMatch(/^check\.http: /);
    expect(bad('web', 'a', { address: 'h', port: 1, check: { tcp: 'x' } })).toMatch(/^check\.tcp: /);
    expect(bad('web', 'a', { address: 'h', port: 1, check: { script: 'rm -rf /' } })).toMatch(/^check\.script: expected the program and its arguments as a list/);
    expect(bad('web', 'a', { address: 'h', port: 1, check: { ttl: '1s', interval: '1s' } })).toMatch(/takes no interval/);
    expect(bad('web', 'a', { address: 'h', port: 1, check: { http: 'http://x', interval: '10' } })).toMatch(/^check\.interval: expected a duration/);
    expect(bad('web', 'a', { address: 'h', port: 1, extra: 1 })).toMatch(/^extra: unknown field/);
    expect(bad('web', 'a', { address: 'h', port: 1 })).toBe('accepted');
  });
});

describe('DNS interface', () => {
  const cat = (instances: Array<Partial<InstanceView>>) => ({
    index: 9,
    instances: instances.map((v, i) => ({ name: 'web', instance: `i${i}`, address: '10.0.0.1', port: 80, tags: [], meta: {}, check: { type: 'none' as const }, node: 'n1', health: 'passing' as const, output: '', index: i + 1, ...v })),
  });
  const q = (name: string, type: string) => ({ type: 'query' as const, id: 1, questions: [{ name, type: type as 'A' }] });

  it('answers SRV/A/AAAA for healthy instances, NXDOMAIN, empty NOERROR and REFUSED', () => {
    const c = cat([{ address: '10.0.0.1', port: 81 }, { address: 'fd00::2', port: 82 }, { address: 'db.example', port: 83 }, { address: '10.0.0.4', health: 'critical' }]);
    const o = { cluster: 'plant', ttlSec: 5, catalog: c };
    const srv = answer(q('WEB.service.plant.quorumd.', 'SRV'), o);
    expect(srv.rcode).toBe(0);
    expect(srv.packet.answers!.map((a) => (a as { data: { port: number; target: string } }).data)).toEqual([
      { priority: 1, weight: 1, port: 81, target: 'i0.web.service.plant.quorumd' },
      { priority: 1, weight: 1, port: 82, target: 'i1.web.service.plant.quorumd' },
      { priority: 1, weight: 1, port: 83, target: 'db.example' },
    ]);
    expect(srv.packet.additionals!.map((a) => a.type)).toEqual(['A', 'AAAA']);
    expect(answer(q('web.service.plant.quorumd', 'A'), o).packet.answers!.map((a) => (a as { data: string }).data)).toEqual(['10.0.0.1']);
    expect(answer(q('web.service.plant.quorumd', 'AAAA'), o).packet.answers!.map((a) => (a as { data: string }).data)).toEqual(['fd00::2']);
    expect(answer(q('i0.web.service.plant.quorumd', 'A'), o).packet.answers).toHaveLength(1);
    // The critical instance exists (empty NOERROR), an unknown one does not (NXDOMAIN).
    expect(answer(q('i3.web.service.plant.quorumd', 'A'), o)).toMatchObject({ rcode: 0, packet: { answers: [] } });
    expect(answer(q('other.service.plant.quorumd', 'SRV'), o).rcode).toBe(3);
    expect(answer(q('web.service.other.quorumd', 'SRV'), o).rcode).toBe(5);
    expect(answer({ type: 'query', id: 1, questions: [] }, o).rcode).toBe(1);
  });

  it('fits UDP sizes: the optional records go first without TC, answers then with TC', () => {
    const many = cat(Array.from({ length: 60 }, () => ({})));
    const p = answer(q('web.service.plant.quorumd', 'SRV'), { cluster: 'plant', ttlSec: 5, catalog: many }).packet;
    const full = dnsPacket.encode(p);
    expect(full.length).toBeGreaterThan(512);
    const small = dnsPacket.decode(encodeWithin(p, 512));
    expect(small.flags! & (1 << 9)).not.toBe(0); // TC
    expect(encodeWithin(p, 512).length).toBeLessThanOrEqual(512);
    const noAdds = dnsPacket.encode({ ...p, additionals: [] });
    const mid = dnsPacket.decode(encodeWithin(p, noAdds.length));
    expect(mid.answers).toHaveLength(60);
    expect(mid.flags! & (1 << 9)).toBe(0);
  });

  it('serves UDP and TCP on one port; garbage is counted, not fatal', async () => {
    const c = cat(Array.from({ length: 40 }, (_, i) => ({ port: 9000 + i })));
    const dns = await startDns({ host: '127.0.0.1', port: 0, cluster: 'plant', ttlSec: 0, catalog: () => c, log });
    try {
      const udp = createSocket('udp4');
      const got = new Promise<Buffer>((r) => udp.once('message', r));
      udp.send(Buffer.from('garbage'), dns.port, '127.0.0.1');
      udp.send(dnsPacket.encode(q('web.service.plant.quorumd', 'SRV')), dns.port, '127.0.0.1');
      const reply = dnsPacket.decode(await got);
      udp.close();
      expect(reply.flags! & (1 << 9)).not.toBe(0); // 40 SRV do not fit 512 bytes
      const s = connect(dns.port, '127.0.0.1');
      const msg = dnsPacket.encode(q('web.service.plant.quorumd', 'SRV'));
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      s.write(Buffer.concat([len, msg]));
      const tcp = await new Promise<Buffer>((resolve) => {
        let buf = Buffer.alloc(0);
        s.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        });
      });
      s.destroy();
      expect(dnsPacket.decode(tcp).answers).toHaveLength(40);
      expect(dns.stats.malformed).toBe(1);
    } finally {
      await dns.close();
    }
  });
});

describe('mDNS/DNS-SD', () => {
  const c: Catalog = {
    index: 3,
    instances: [
      { name: 'web', instance: 'a', address: '192.168.1.5', port: 8080, tags: ['v2'], meta: { path: '/x' }, check: { type: 'none' as const }, node: 'n1', health: 'passing' as const, output: '', index: 1 },
      { name: 'web', instance: 'b', address: '192.168.1.6', port: 8080, tags: [], meta: {}, check: { type: 'none' as const }, node: 'n1', health: 'critical' as const, output: '', index: 2 },
    ],
  };

  it('describes healthy instances as DNS-SD records', () => {
    const r = mdnsRecords(c, 120);
    expect(r.map((x) => `${x.type} ${x.name}`)).toEqual([
      'PTR _services._dns-sd._udp.local',
      'PTR _web._tcp.local',
      'SRV a._web._tcp.local',
      'TXT a._web._tcp.local',
      'A a-web.local',
    ]);
    expect((r[3] as { data: string[] }).data).toEqual(['tags=v2', 'path=/x']);
  });

  it('answers a one-shot query sent to it directly', async () => {
    const port = await freePort();
    const m = startMdns({ ttlSec: 120, port, interface: '127.0.0.1', catalog: () => c, log });
    const sock = createSocket('udp4');
    try {
      await m.ready;
      const got = new Promise<dnsPacket.Packet>((resolve) => sock.on('message', (msg) => resolve(dnsPacket.decode(msg))));
      sock.send(dnsPacket.encode({ type: 'query', id: 0, questions: [{ name: '_web._tcp.local', type: 'PTR' }] }), port, '127.0.0.1');
      const p = await Promise.race([got, new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000))]);
      expect(p, 'an answer from the responder').toBeDefined();
      expect(p!.answers!.map((a) => (a as { data: string }).data)).toEqual(['a._web._tcp.local']);
      expect(p!.additionals!.map((a) => a.type)).toEqual(expect.arrayContaining(['SRV', 'TXT']));
      expect(m.stats.answered).toBe(1);
    } finally {
      sock.close();
      await m.close();
    }
  });
});
