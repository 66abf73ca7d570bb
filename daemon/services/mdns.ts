/**
 * mDNS/DNS-SD announcement of healthy instances (off by default; config services.mdns),
 * for devices on the LAN that only speak Bonjour (RFC 6762 multicast DNS, RFC 6763
 * DNS-based service discovery), with `multicast-dns`:
 *
 *   _services._dns-sd._udp.local  PTR  _<name>._tcp.local         (service type browsing)
 *   _<name>._tcp.local            PTR  <instance>._<name>._tcp.local
 *   <instance>._<name>._tcp.local SRV  <port> <instance>-<name>.local
 *                                 TXT  tags=a,b and meta key=value pairs
 *   <instance>-<name>.local       A / AAAA  the instance's address (IP addresses only)
 *
 * Every node with mdns on answers queries for the healthy instances of its cached
 * catalog and announces the whole set when the catalog changes (an unsolicited
 * response). Instances that went away are not "goodbye"-announced: their records age
 * out after ttlSec. Queries it cannot parse are ignored.
 */
import makeMdns from 'multicast-dns';
import { isIP } from 'node:net';
import type { Answer } from 'dns-packet';
import type { Catalog } from './registry.ts';

export interface MdnsOptions {
  ttlSec: number;
  interface?: string;
  /** Tests: another port / group than 5353 / 224.0.0.251. */
  port?: number;
  ip?: string;
  catalog: () => Catalog;
  log: { warn(fields: Record<string, unknown>, msg: string): void };
}

/** Every DNS-SD record of the healthy instances (exported for tests). */
export function mdnsRecords(c: Catalog, ttl: number): Answer[] {
  const out: Answer[] = [];
  const types = new Set<string>();
  for (const v of c.instances) {
    if (v.health === 'critical') continue;
    const type = `_${v.name}._tcp.local`;
    const inst = `${v.instance}.${type}`;
    const host = `${v.instance}-${v.name}.local`;
    if (!types.has(type)) {
      types.add(type);
      out.push({ type: 'PTR', name: '_services._dns-sd._udp.local', ttl, data: type });
    }
    out.push({ type: 'PTR', name: type, ttl, data: inst });
    out.push({ type: 'SRV', name: inst, ttl, data: { priority: 0, weight: 0, port: v.port, target: isIP(v.address) ? host : v.address } });
    const txt = [...(v.tags.length ? [`tags=${v.tags.join(',')}`] : []), ...Object.entries(v.meta).map(([k, val]) => `${k}=${val}`)];
    out.push({ type: 'TXT', name: inst, ttl, data: txt.length ? txt : [''] });
    const fam = isIP(v.address);
    if (fam === 4) out.push({ type: 'A', name: host, ttl, data: v.address });
    if (fam === 6) out.push({ type: 'AAAA', name: host, ttl, data: v.address });
  }
  return out;
}

export interface MdnsResponder {
  announce(): void;
  readonly stats: { queries: number; answered: number; announcements: number };
  close(): Promise<void>;
}

export function startMdns(o: MdnsOptions): MdnsResponder {
  const m = makeMdns({ ...(o.interface ? { interface: o.interface } : {}), ...(o.port ? { port: o.port } : {}), ...(o.ip ? { ip: o.ip } : {}), multicast: true, loopback: true, reuseAddr: true });
  const stats = { queries: 0, answered: 0, announcements: 0 };
  m.on('error', (err: Error) => o.log.warn({ error: err.message }, 'services mDNS: socket error'));
  m.on('warning', (err: Error) => o.log.warn({ error: err.message }, 'services mDNS: bad packet ignored'));
  m.on('query', (q, rinfo) => {
    // No socket sends from port 0 (and Node throws on a send to it): a forged source.
    if (rinfo.port === 0) return;
    stats.queries++;
    const all = mdnsRecords(o.catalog(), o.ttlSec);
    const answers: Answer[] = [];
    for (const question of q.questions ?? []) {
      const name = question.name.toLowerCase();
      for (const r of all) if (r.name.toLowerCase() === name && ((question.type as string) === 'ANY' || question.type === r.type)) answers.push(r);
    }
    if (answers.length === 0) return;
    // The records those answers point to, so a browser needs one round trip.
    const names = new Set(answers.flatMap((a) => (a.type === 'PTR' ? [String(a.data)] : a.type === 'SRV' ? [(a.data as { target: string }).target] : [])));
    const additionals = all.filter((r) => names.has(r.name) && !answers.includes(r));
    stats.answered++;
    // A query from a port other than 5353 is a one-shot (legacy unicast) query: answer it directly.
    const sent = (err: Error | null) => err && o.log.warn({ error: err.message }, 'services mDNS: answer not sent');
    if (rinfo.port !== (o.port ?? 5353)) m.respond({ answers, additionals }, rinfo, sent);
    else m.respond({ answers, additionals }, sent);
  });
  return {
    stats,
    announce: () => {
      const all = mdnsRecords(o.catalog(), o.ttlSec);
      if (all.length === 0) return;
      stats.announcements++;
      m.respond({ answers: all });
    },
    close: () => new Promise<void>((r) => m.destroy(() => r())),
  };
}
