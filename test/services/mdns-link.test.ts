/**
 * The mDNS responder keeps to its link (RFC 6762 11) and announces changes, not the
 * whole catalog: a query from a source off the link is dropped unread; a catalog change
 * multicasts the new records and a goodbye (TTL 0) for each record that went away;
 * an announcement waits for its record's second (RFC 6762 6) rather than being lost.
 * What goes out to the group is read off the responder's socket sends.
 */
import { createSocket, Socket as DgramSocket } from 'node:dgram';
import type { NetworkInterfaceInfo } from 'node:os';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Catalog } from '../../daemon/services/registry.ts';
import type { InstanceView } from '../../daemon/services/catalog.ts';
import { mdnsRecords, onLink, packets, startMdns } from '../../daemon/services/mdns.ts';
import { freePort } from '../helpers/ports.ts';
import { udpAsk } from './udp-ask.ts';

const log = { warn: () => undefined };

const inst = (i: number, f: Partial<InstanceView> = {}): InstanceView => ({ name: 'web', instance: `i${i}`, address: `10.0.${i >> 8}.${i & 255}`, port: 80, tags: [], meta: {}, check: { type: 'none' }, node: 'n1', health: 'passing', output: '', index: i + 1, ...f });
const catalog = (instances: InstanceView[], index = 1): Catalog => ({ index, instances });

const iface = (address: string, netmask: string, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo =>
  ({ address, netmask, family, mac: '00:00:00:00:00:00', internal: false, cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo;

/** Every datagram sent to the group port `port` from now on, decoded, with when it was sent. */
function captureSends(port: number) {
  const sent: Array<{ at: number; p: dnsPacket.Packet }> = [];
  const real = DgramSocket.prototype.send;
  const spy = vi.spyOn(DgramSocket.prototype, 'send').mockImplementation(function (this: DgramSocket, ...args: unknown[]) {
    // multicast-dns calls send(buffer, offset, length, port, address, cb).
    if (Buffer.isBuffer(args[0]) && args[3] === port) sent.push({ at: performance.now(), p: dnsPacket.decode(args[0] as Buffer) });
    return (real as (...a: unknown[]) => void).apply(this, args);
  });
  return { sent, restore: () => spy.mockRestore() };
}
const restores: Array<() => void> = [];
afterEach(() => {
  for (const r of restores.splice(0)) r();
});

const until = async (what: string, f: () => boolean, ms = 15_000) => {
  const end = performance.now() + ms;
  for (let i = 0; i < 100_000 && !f(); i++) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('mDNS: the local link only (RFC 6762 11)', () => {
  it('onLink: in a subnet of an interface address, or link-local; IPv4, IPv6 in any spelling, IPv4-mapped', () => {
    const ifs = [iface('192.168.1.5', '255.255.255.0'), iface('10.1.2.3', '255.255.0.0'), iface('fd00::2', 'ffff:ffff:ffff:ffff::', 'IPv6'), iface('127.0.0.1', '255.0.0.0')];
    const yes = ['192.168.1.1', '192.168.1.254', '10.1.200.9', '127.8.8.8', '169.254.10.20', 'fd00::99', 'fd00:0:0:0:ffff::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', '::ffff:192.168.1.9', 'fd00::192.168.1.1'];
    const no = ['192.168.2.1', '10.2.0.1', '8.8.8.8', '169.255.0.1', 'fd01::1', 'fec0::1', '2001:db8::1', '::1', '::ffff:8.8.8.8', 'not an address', '', '1.2.3'];
    for (const a of yes) expect(onLink(a, ifs), a).toBe(true);
    for (const a of no) expect(onLink(a, ifs), a).toBe(false);
    // No interfaces: only link-local addresses are on a link.
    expect(onLink('192.168.1.1', [])).toBe(false);
    expect(onLink('169.254.0.1', [])).toBe(true);
  });

  it('a query from a source off the receiving interface\'s subnets is dropped unread; one from on it is answered', async () => {
    const port = await freePort();
    // This host as the responder sees it: lo holds 127.0.0.1/32 only, another interface 127.0.0.0/8.
    const interfaces = () => ({ lo: [iface('127.0.0.1', '255.255.255.255')], eth9: [iface('127.0.0.9', '255.0.0.0')] });
    const q = dnsPacket.encode({ type: 'query', id: 9, questions: [{ name: '_web._tcp.local', type: 'PTR' }] });
    // Bound to lo's address: only lo's subnets are on its link; 127.0.0.2 is not.
    const m = startMdns({ ttlSec: 120, port, interface: '127.0.0.1', interfaces, catalog: () => catalog([inst(1)]), log });
    try {
      await m.ready;
      const off = createSocket('udp4');
      const heard: Buffer[] = [];
      off.on('message', (b) => heard.push(b));
      try {
        await new Promise<void>((r) => off.bind(0, '127.0.0.2', () => r()));
        await new Promise<void>((r, j) => off.send(q, port, '127.0.0.1', (e) => (e ? j(e) : r())));
        // A later query from on the link, answered: the responder read the earlier one first
        // (and an answer to it would have been sent first).
        const on = await udpAsk(port, q, 5000, '127.0.0.1');
        expect(on && dnsPacket.decode(on).answers!.map((a) => (a as { data: string }).data)).toEqual(['i1._web._tcp.local']);
        expect(m.stats).toMatchObject({ ignored: 1, queries: 1, answered: 1 });
        expect(heard, 'no answer off the link').toHaveLength(0);
      } finally {
        off.close();
      }
    } finally {
      await m.close();
    }
    // Without a configured interface every interface of the host counts: eth9's 127.0.0.0/8 has 127.0.0.2.
    const port2 = await freePort();
    const all = startMdns({ ttlSec: 120, port: port2, interfaces, catalog: () => catalog([inst(1)]), log });
    try {
      await all.ready;
      const r = await udpAsk(port2, q, 5000, '127.0.0.2');
      expect(r && dnsPacket.decode(r).answers).toHaveLength(1);
      expect(all.stats.ignored).toBe(0);
    } finally {
      await all.close();
    }
  });
});

describe('mDNS: a configured interface', () => {
  it('a responder given an interface hears queries multicast to the group on it', async () => {
    // Bound to the interface's own address (as before) a Linux socket receives nothing
    // sent to 224.0.0.251: this responder never saw a multicast query.
    const port = await freePort();
    const m = startMdns({ ttlSec: 120, port, interface: '127.0.0.1', catalog: () => catalog([inst(1)]), log });
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    try {
      await m.ready;
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      s.setMulticastInterface('127.0.0.1');
      s.setMulticastLoopback(true);
      await new Promise<void>((r, j) => s.send(dnsPacket.encode({ type: 'query', id: 0, questions: [{ name: '_web._tcp.local', type: 'PTR' }] }), port, '224.0.0.251', (e) => (e ? j(e) : r())));
      await until('the multicast query answered', () => m.stats.answered === 1, 10_000);
      expect(m.stats).toMatchObject({ queries: 1, ignored: 0 });
    } finally {
      s.close();
      await m.close();
    }
  });

  it('an interface address this host does not have is refused at start, naming the addresses it has; 0.0.0.0 means any', async () => {
    const interfaces = () => ({ lo: [iface('127.0.0.1', '255.0.0.0')], eth0: [iface('192.168.1.5', '255.255.255.0'), iface('fe80::1', 'ffff:ffff:ffff:ffff::', 'IPv6')] });
    const warned: string[] = [];
    const bad = startMdns({ ttlSec: 120, port: await freePort(), interface: 'eth0', interfaces, catalog: () => catalog([inst(1)]), log: { warn: (f) => warned.push(String(f.error)) } });
    await expect(bad.ready).rejects.toThrow('bind EADDRNOTAVAIL eth0: no interface of this host has that IPv4 address (it has 127.0.0.1, 192.168.1.5)');
    expect(warned).toHaveLength(1);
    bad.announce();
    await bad.close();
    const any = startMdns({ ttlSec: 120, port: await freePort(), interface: '0.0.0.0', interfaces, catalog: () => catalog([inst(1)]), log });
    try {
      await expect(any.ready).resolves.toBeUndefined();
    } finally {
      await any.close();
    }
  });
});

describe('mDNS: announcements of what changed', () => {
  const key = (r: dnsPacket.Answer) => `${r.type} ${r.name} ${JSON.stringify((r as { data?: unknown }).data)}`;

  it('300 instances: the first announcement has every record; a change only its new records and goodbyes (TTL 0) for what went away; new records go twice, a second apart', async () => {
    const port = await freePort();
    const cap = captureSends(port);
    restores.push(cap.restore);
    let t = 0;
    let cur = catalog(Array.from({ length: 300 }, (_, i) => inst(i)));
    const m = startMdns({ ttlSec: 120, port, interface: '127.0.0.1', now: () => t, catalog: () => cur, log });
    try {
      await m.ready;
      m.announce();
      const whole = mdnsRecords(cur, 120);
      await until('the first announcement sent', () => cap.sent.length === m.stats.multicastPackets && m.stats.multicastPackets > 0);
      expect(m.stats.multicastRecords).toBe(whole.length);
      const onePass = cap.sent.length;
      expect(onePass).toBe(packets(whole).length);
      // A second later (the responder's clock), the same again (RFC 6762 8.3: twice); then nothing.
      t += 1000;
      m.announce();
      await until('the second announcement sent', () => cap.sent.length === m.stats.multicastPackets && m.stats.multicastPackets === 2 * onePass);
      expect(m.stats.multicastRecords).toBe(2 * whole.length);
      t += 1000;
      m.announce();
      expect(m.stats.multicastPackets).toBe(2 * onePass);
      const firstPackets = cap.sent.length;
      // i5 deregistered, i7 critical, i9 moved to port 81, i300 registered.
      t += 1000;
      cur = catalog([...cur.instances.filter((v) => v.instance !== 'i5').map((v) => (v.instance === 'i7' ? { ...v, health: 'critical' as const } : v.instance === 'i9' ? { ...v, port: 81 } : v)), inst(300)], 2);
      const records0 = m.stats.multicastRecords;
      m.announce();
      await until('the change announced', () => cap.sent.length === m.stats.multicastPackets && m.stats.multicastPackets > firstPackets);
      const change = cap.sent.slice(firstPackets).flatMap((s) => s.p.answers!);
      const packetsPerChange = cap.sent.length - firstPackets;
      console.log(`300 instances (${whole.length} records, ${onePass} packets): one change of 4 instances -> ${packetsPerChange} packet(s), ${change.length} records (and 1 packet of the new ones a second later) (re-announcing the whole set: ${packets(mdnsRecords(cur, 120)).length} packets, ${mdnsRecords(cur, 120).length} records)`);
      expect(packetsPerChange).toBe(1);
      expect(m.stats.multicastRecords - records0).toBe(change.length);
      const bye = change.filter((r) => (r as { ttl: number }).ttl === 0).map((r) => `${r.type} ${r.name}`).sort();
      const hello = change.filter((r) => (r as { ttl: number }).ttl === 120).map((r) => `${r.type} ${r.name}`).sort();
      expect(bye).toEqual(['A i5-web.local', 'A i7-web.local', 'PTR _web._tcp.local', 'PTR _web._tcp.local', 'SRV i5._web._tcp.local', 'SRV i7._web._tcp.local', 'SRV i9._web._tcp.local', 'TXT i5._web._tcp.local', 'TXT i7._web._tcp.local']);
      expect(hello).toEqual(['A i300-web.local', 'PTR _web._tcp.local', 'SRV i300._web._tcp.local', 'SRV i9._web._tcp.local', 'TXT i300._web._tcp.local']);
      expect(change.find((r) => r.type === 'SRV' && r.name === 'i9._web._tcp.local' && (r as { ttl: number }).ttl === 0)).toMatchObject({ data: { port: 80 } });
      expect(change.find((r) => r.type === 'SRV' && r.name === 'i9._web._tcp.local' && (r as { ttl: number }).ttl === 120)).toMatchObject({ data: { port: 81 } });
      expect(m.stats.goodbyes).toBe(9);
      // A second later the new records again (not the goodbyes); then nothing.
      t += 1000;
      m.announce();
      await until('the change repeated', () => cap.sent.length === m.stats.multicastPackets && m.stats.multicastPackets === firstPackets + 2);
      const again = cap.sent.at(-1)!.p.answers!;
      expect(again.map((r) => `${r.type} ${r.name}`).sort()).toEqual(hello);
      expect(again.every((r) => (r as { ttl: number }).ttl === 120)).toBe(true);
      t += 5000;
      m.announce();
      expect(m.stats.multicastPackets).toBe(firstPackets + 2);
    } finally {
      await m.close();
    }
  });

  it('a goodbye for a record multicast less than a second ago waits for its second (not lost); a record back again the same', async () => {
    const port = await freePort();
    const cap = captureSends(port);
    restores.push(cap.restore);
    let cur = catalog([inst(1), inst(2)]);
    const m = startMdns({ ttlSec: 120, port, interface: '127.0.0.1', catalog: () => cur, log });
    const i2 = (ttl: number) => (s: { p: dnsPacket.Packet }) => s.p.answers!.some((r) => r.name === 'i2._web._tcp.local' && r.type === 'SRV' && (r as { ttl: number }).ttl === ttl);
    try {
      await m.ready;
      m.announce();
      await until('the first announcement', () => cap.sent.some(i2(120)));
      const hello = cap.sent.find(i2(120))!.at;
      // i2 goes away at once: its goodbye is due a second after its announcement.
      cur = catalog([inst(1)], 2);
      m.announce();
      await until('the goodbye of i2', () => cap.sent.some(i2(0)), 10_000);
      const bye = cap.sent.find(i2(0))!.at;
      expect(bye - hello, 'the goodbye waited for the record\'s second').toBeGreaterThanOrEqual(900);
      // i2 is back at once: announced again a second after its goodbye.
      cur = catalog([inst(1), inst(2)], 3);
      m.announce();
      await until('i2 announced again', () => cap.sent.filter(i2(120)).length === 2, 10_000);
      expect(cap.sent.filter(i2(120))[1]!.at - bye).toBeGreaterThanOrEqual(900);
      // No record went out twice within a second (RFC 6762 6), goodbyes included.
      const last = new Map<string, number>();
      for (const s of cap.sent)
        for (const r of s.p.answers!) {
          const k = key(r);
          if (last.has(k)) expect(s.at - last.get(k)!, k).toBeGreaterThanOrEqual(900);
          last.set(k, s.at);
        }
    } finally {
      await m.close();
    }
  });
});
