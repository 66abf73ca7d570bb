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
 * catalog. It announces (an unsolicited response) the whole set once, then at each
 * catalog change only what changed: records that are new, each twice a second apart
 * (RFC 6762 8.3), and a goodbye (the record with TTL 0, RFC 6762 10.1) for each record
 * that went away, so that browsers drop an instance at once instead of after ttlSec.
 * Re-announcing the whole set at every
 * change sent every record of 300 instances (~1,200 records in 36 packets) to every
 * host on the LAN for each registration. Queries it cannot parse are ignored.
 *
 * mDNS is for one link (RFC 6762 11): a packet whose source address is not on a link
 * of this host (in the subnet of one of the receiving interface's addresses, or
 * link-local) is dropped unread, so a host elsewhere cannot query the responder
 * through a router with unicast to port 5353. This responder never acts on other
 * responders' responses (it does no probing or conflict resolution), so there is
 * nothing else to accept.
 *
 * Anybody on the LAN can send to 5353, so: a record is multicast at most once a second
 * however many queries ask for it (RFC 6762 6), each record is answered once however
 * many questions name it, a one-shot query gets one packet, and records go out in
 * packets of at most MAX_PACKET bytes. An instance whose names do not fit DNS labels,
 * and TXT strings over 255 bytes, are left out (logged) rather than sent broken.
 */
import makeMdns from 'multicast-dns';
import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import dnsPacket, { type Answer } from 'dns-packet';
import type { Catalog } from './registry.ts';
import type { InstanceView } from './catalog.ts';

export interface MdnsOptions {
  ttlSec: number;
  interface?: string;
  /** Tests: another port / group than 5353 / 224.0.0.251. */
  port?: number;
  ip?: string;
  catalog: () => Catalog;
  log: { warn(fields: Record<string, unknown>, msg: string): void };
  /** Tests: the host's interfaces (default os.networkInterfaces()) and a monotonic clock in ms (default performance.now()). */
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  now?: () => number;
}

/** DNS limits the records must keep to (RFC 1035 2.3.4, RFC 6763 6.1). */
const MAX_LABEL = 63;
const MAX_TXT_STRING = 255;
/**
 * Bytes of records per packet. The whole set went out as one datagram: 9.8 KB for 36
 * instances (RFC 6762 17 caps a packet at 9000 bytes; receivers drop larger ones), and
 * past 64 KB (~400 instances) nothing at all (EMSGSIZE). Packets of at most an Ethernet
 * MTU's worth are never fragmented either.
 */
export const MAX_PACKET = 1400;
/** RFC 6762 6: a record is multicast at most once a second (per interface; this responder has one). */
const MULTICAST_GAP_MS = 1000;
/** RFC 6762 8.3: a new record is announced at least twice, a second apart. */
const ANNOUNCE_SENDS = 2;
/** RFC 6762 6.7: the TTL of records in an answer to a one-shot (legacy unicast) query. */
const LEGACY_TTL = 10;
/** How long the host's interface addresses are taken as they were read (a DHCP lease may change them). */
const INTERFACES_MS = 5000;

/** An IP address as a number (v4: 32 bits, v6: 128), or undefined; an IPv4-mapped IPv6 address is its IPv4 address. */
function ipBits(addr: string): { v: 4 | 6; n: bigint } | undefined {
  let a = addr.replace(/%.*$/, ''); // fe80::1%eth0: the zone is no part of the address
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1]!;
  const fam = isIP(a);
  if (fam === 4) return { v: 4, n: a.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n) };
  if (fam !== 6) return undefined;
  // Expand "::" and a trailing dotted IPv4 part into eight 16-bit groups.
  let tail: string[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const v4 = ipBits(dotted[1]!)!.n;
    tail = [(v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16)];
    a = a.slice(0, -dotted[1]!.length);
    if (!a.endsWith('::')) a = a.slice(0, -1);
  }
  const [head = '', rest] = a.split('::');
  const hs = head ? head.split(':') : [];
  const rs = rest === undefined ? [] : rest ? rest.split(':') : [];
  const fill = rest === undefined ? [] : Array(8 - hs.length - rs.length - tail.length).fill('0');
  const groups = [...hs, ...fill, ...rs, ...tail];
  return { v: 6, n: groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/**
 * Whether `addr` is on one of the links `ifaces` are on (exported for tests): in the
 * subnet of one of their addresses (address and netmask), or link-local (169.254/16,
 * fe80::/10), which is on-link whatever the interface. RFC 6762 11's test for a packet.
 */
export function onLink(addr: string, ifaces: NetworkInterfaceInfo[]): boolean {
  const a = ipBits(addr);
  if (!a) return false;
  if (a.v === 4 && a.n >> 16n === 0xa9fen) return true;
  if (a.v === 6 && a.n >> 118n === 0x3fan) return true;
  for (const i of ifaces) {
    const net = ipBits(i.address);
    const mask = ipBits(i.netmask);
    if (!net || !mask || net.v !== a.v || mask.v !== a.v) continue;
    if ((net.n & mask.n) === (a.n & mask.n)) return true;
  }
  return false;
}

const bytes = (s: string) => Buffer.byteLength(s);

/**
 * The TXT strings of an instance, each at most 255 bytes (a longer one was written with
 * its length byte wrapped around and broke the whole packet for every receiver):
 * `tags=a,b` with the tags that fit, then each `key=value` pair that fits. What does not
 * fit is in the HTTP API and DNS only.
 */
function txtOf(v: InstanceView): string[] {
  const out: string[] = [];
  if (v.tags.length) {
    let t = 'tags=';
    for (const tag of v.tags) {
      const next = t === 'tags=' ? `${t}${tag}` : `${t},${tag}`;
      if (bytes(next) > MAX_TXT_STRING) break;
      t = next;
    }
    if (t !== 'tags=') out.push(t);
  }
  for (const [k, val] of Object.entries(v.meta)) if (bytes(`${k}=${val}`) <= MAX_TXT_STRING) out.push(`${k}=${val}`);
  return out;
}

/**
 * Every DNS-SD record of the healthy instances (exported for tests). An instance whose
 * names do not fit a DNS label — `_<name>` (name of 63 characters) or `<instance>-<name>`
 * (more than 63 together) — is left out and passed to `skipped`: its records would make
 * every packet they are in unreadable (the whole announcement, for every instance).
 */
export function mdnsRecords(c: Catalog, ttl: number, skipped?: (v: InstanceView, why: string) => void): Answer[] {
  const out: Answer[] = [];
  const types = new Set<string>();
  for (const v of c.instances) {
    if (v.health === 'critical') continue;
    const fam = isIP(v.address);
    const hostLabel = `${v.instance}-${v.name}`;
    if (bytes(`_${v.name}`) > MAX_LABEL) {
      skipped?.(v, `the service type label _${v.name} is longer than ${MAX_LABEL} bytes`);
      continue;
    }
    if (fam !== 0 && bytes(hostLabel) > MAX_LABEL) {
      skipped?.(v, `the host label ${hostLabel} is longer than ${MAX_LABEL} bytes`);
      continue;
    }
    const type = `_${v.name}._tcp.local`;
    const inst = `${v.instance}.${type}`;
    const host = `${hostLabel}.local`;
    if (!types.has(type)) {
      types.add(type);
      out.push({ type: 'PTR', name: '_services._dns-sd._udp.local', ttl, data: type });
    }
    out.push({ type: 'PTR', name: type, ttl, data: inst });
    out.push({ type: 'SRV', name: inst, ttl, data: { priority: 0, weight: 0, port: v.port, target: fam !== 0 ? host : v.address } });
    const txt = txtOf(v);
    out.push({ type: 'TXT', name: inst, ttl, data: txt.length ? txt : [''] });
    if (fam === 4) out.push({ type: 'A', name: host, ttl, data: v.address });
    if (fam === 6) out.push({ type: 'AAAA', name: host, ttl, data: v.address });
  }
  return out;
}

/** Records in packets of at most MAX_PACKET bytes of records, in order (a record larger than that alone). */
export function packets(records: Answer[]): Answer[][] {
  const out: Answer[][] = [];
  let cur: Answer[] = [];
  let size = 0;
  for (const r of records) {
    const b = dnsPacket.encodingLength({ answers: [r] }) - 12;
    if (cur.length > 0 && size + b > MAX_PACKET) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(r);
    size += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export interface MdnsResponder {
  /** Resolves once the socket is bound (queries sent before may be lost); rejects with the bind error. */
  readonly ready: Promise<void>;
  /** Announces what changed since the last announcement (the first time: everything); each new record is sent twice, a second apart. */
  announce(): void;
  /**
   * `ignored`: packets dropped unread (from source port 0, or from off the link);
   * `goodbyes`: records announced with TTL 0 because they went away;
   * `multicastPackets`/`multicastRecords`: what went out to the group.
   */
  readonly stats: { queries: number; answered: number; ignored: number; announcements: number; goodbyes: number; skipped: number; multicastRecords: number; multicastPackets: number };
  close(): Promise<void>;
}

export function startMdns(o: MdnsOptions): MdnsResponder {
  const stats = { queries: 0, answered: 0, ignored: 0, announcements: 0, goodbyes: 0, skipped: 0, multicastRecords: 0, multicastPackets: 0 };
  // The socket is bound to the wildcard address, `interface` naming where to join the
  // group and send: a UDP socket bound to a unicast address (what multicast-dns does
  // with `interface` alone) receives no datagram sent to 224.0.0.251 on Linux, so a
  // responder given an interface heard no multicast query at all. So an interface
  // address this host does not have is refused here, as its bind used to be.
  // (0.0.0.0, the wildcard itself, means no particular interface, as it always did.)
  const hostAddresses = Object.values((o.interfaces ?? networkInterfaces)()).flatMap((l) => (l ?? []).filter((i) => i.family === 'IPv4').map((i) => i.address));
  if (o.interface !== undefined && o.interface !== '0.0.0.0' && !hostAddresses.includes(o.interface)) {
    const err = Object.assign(new Error(`bind EADDRNOTAVAIL ${o.interface}: no interface of this host has that IPv4 address (it has ${hostAddresses.join(', ') || 'none'})`), { code: 'EADDRNOTAVAIL' });
    o.log.warn({ error: err.message }, 'services mDNS: socket error');
    const ready = Promise.reject(err);
    ready.catch(() => undefined);
    return { ready, stats, announce: () => undefined, close: async () => undefined };
  }
  const m = makeMdns({ ...(o.interface ? { interface: o.interface, bind: '0.0.0.0' } : {}), ...(o.port ? { port: o.port } : {}), ...(o.ip ? { ip: o.ip } : {}), multicast: true, loopback: true, reuseAddr: true });
  const now = o.now ?? (() => performance.now());
  // The addresses of the interface(s) packets arrive on: the one whose address is
  // `interface` (while no interface has that address: all of them), or every interface
  // of the host (Node does not say which one a datagram came in on). Read again after
  // INTERFACES_MS, not for every packet.
  let links: { at: number; ifaces: NetworkInterfaceInfo[] } | undefined;
  const local = (addr: string): boolean => {
    const t = now();
    if (!links || t - links.at > INTERFACES_MS) {
      const all = Object.values((o.interfaces ?? networkInterfaces)()).filter((l): l is NetworkInterfaceInfo[] => l !== undefined);
      const mine = o.interface && o.interface !== '0.0.0.0' ? all.filter((l) => l.some((i) => i.address === o.interface)) : all;
      links = { at: t, ifaces: (mine.length > 0 ? mine : all).flat() };
    }
    return onLink(addr, links.ifaces);
  };
  m.on('error', (err: Error) => o.log.warn({ error: err.message }, 'services mDNS: socket error'));
  m.on('warning', (err: Error) => o.log.warn({ error: err.message }, 'services mDNS: bad packet ignored'));
  const sent = (err: Error | null) => err && o.log.warn({ error: err.message }, 'services mDNS: packet not sent');
  const ready = new Promise<void>((resolve, reject) => {
    m.once('ready', () => resolve());
    m.once('error', reject);
  });
  // Whoever does not wait for it still hears of a bind error through the log above.
  ready.catch(() => undefined);

  // The records of the current catalog, built once per catalog (not once per query),
  // indexed by lower-case owner name; instances left out are logged once.
  const warned = new Set<string>();
  let memo: { catalog: Catalog; all: Answer[]; byName: Map<string, Answer[]>; keys: Map<Answer, string> } | undefined;
  const records = () => {
    const catalog = o.catalog();
    if (memo?.catalog === catalog) return memo;
    const all = mdnsRecords(catalog, o.ttlSec, (v, why) => {
      stats.skipped++;
      const key = `${v.name}/${v.instance}`;
      if (warned.has(key)) return;
      warned.add(key);
      o.log.warn({ service: v.name, instance: v.instance, reason: why }, 'services mDNS: instance not announced (its names do not fit DNS-SD; DNS and the HTTP API have it)');
    });
    const byName = new Map<string, Answer[]>();
    for (const r of all) {
      const k = r.name.toLowerCase();
      byName.set(k, [...(byName.get(k) ?? []), r]);
    }
    const keys = new Map(all.map((r) => [r, `${r.type} ${r.name.toLowerCase()} ${JSON.stringify((r as { data?: unknown }).data)}`]));
    memo = { catalog, all, byName, keys };
    return memo;
  };

  // When each record was last multicast (RFC 6762 6: at most once a second): a LAN host
  // that floods queries gets each record once a second, not once per query.
  // Keyed by content: a record the catalog's next version carries unchanged is the same record.
  const lastMulticast = new Map<string, number>();
  // (Computed when the records are built: dns-packet's encoder turns TXT strings into Buffers in place.)
  const keyOf = (r: Answer) => memo?.keys.get(r) ?? `${r.type} ${r.name.toLowerCase()} ${JSON.stringify((r as { data?: unknown }).data)}`;
  /** Sends records (keyed) to the group now, noting when. */
  const send = (due: Array<[string, Answer]>, t: number): void => {
    if (due.length === 0) return;
    if (lastMulticast.size > 2 * (memo?.all.length ?? 0) + 64) for (const [k, at] of lastMulticast) if (t - at >= MULTICAST_GAP_MS) lastMulticast.delete(k);
    for (const [k] of due) lastMulticast.set(k, t);
    stats.multicastRecords += due.length;
    for (const answers of packets(due.map(([, r]) => r))) {
      stats.multicastPackets++;
      m.respond({ answers }, sent);
    }
  };
  const isDue = (k: string, t: number) => t - (lastMulticast.get(k) ?? -Infinity) >= MULTICAST_GAP_MS;
  /** Answers to queries: the records multicast less than a second ago are left out (the querier just heard them). */
  const multicast = (rs: Answer[]): void => {
    const t = now();
    const due = rs.map((r) => [keyOf(r), r] as [string, Answer]).filter(([k]) => isDue(k, t));
    // An announcement waiting for its second is made by this answer (one of its sends).
    for (const [k, r] of due) {
      const p = pending.get(k);
      if (p?.r === r && --p.left === 0) pending.delete(k);
    }
    send(due, t);
  };
  // Announcements wait for their record's second instead (a goodbye then the record
  // back within a second must not leave browsers with the goodbye): the latest wish per
  // record, sent when due, as often as `left` says (a new record twice, a second
  // apart, RFC 6762 8.3, so that one lost packet does not hide it; a goodbye once).
  const pending = new Map<string, { r: Answer; left: number }>();
  let flushTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const flush = (): void => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (closed) return;
    const t = now();
    const due: Array<[string, Answer]> = [];
    for (const [k, p] of pending) {
      if (!isDue(k, t)) continue;
      due.push([k, p.r]);
      if (--p.left === 0) pending.delete(k);
    }
    send(due, t);
    let next = Infinity;
    for (const k of pending.keys()) next = Math.min(next, (lastMulticast.get(k) ?? t) + MULTICAST_GAP_MS);
    if (pending.size > 0) {
      flushTimer = setTimeout(flush, Math.max(10, next - t));
      flushTimer.unref?.();
    }
  };
  // What the last announcement said: record key -> record.
  let announced: Map<string, Answer> | undefined;

  m.on('query', (q, rinfo) => {
    // No socket sends from port 0 (and Node throws on a send to it): a forged source.
    // And mDNS is for this link only (RFC 6762 11): a source elsewhere is not answered.
    if (rinfo.port === 0 || !local(rinfo.address)) {
      stats.ignored++;
      return;
    }
    stats.queries++;
    try {
      const { all, byName } = records();
      // Each record once however often it is asked for (a packet of 1400 questions for
      // one name asked for ~46,000 answers before).
      const answers = new Set<Answer>();
      for (const question of q.questions ?? []) {
        for (const r of byName.get(question.name.toLowerCase()) ?? []) if ((question.type as string) === 'ANY' || question.type === r.type) answers.add(r);
      }
      if (answers.size === 0) return;
      // The records those answers point to, so a browser needs one round trip.
      const names = new Set([...answers].flatMap((a) => (a.type === 'PTR' ? [String(a.data)] : a.type === 'SRV' ? [(a.data as { target: string }).target] : [])));
      const additionals = all.filter((r) => names.has(r.name) && !answers.has(r));
      stats.answered++;
      if (rinfo.port !== (o.port ?? 5353)) {
        // A one-shot (legacy unicast) query, from a port other than 5353: answered
        // directly, in one packet that repeats its id and questions, TTLs at most 10 s
        // (RFC 6762 6.7); records that do not fit are left out.
        const short = (r: Answer) => ({ ...r, ttl: Math.min((r as { ttl?: number }).ttl ?? LEGACY_TTL, LEGACY_TTL) }) as Answer;
        const [first = []] = packets([...answers].map(short));
        const room = packets([...first, ...additionals.map(short)])[0] ?? first;
        const flags = first.length < answers.size ? dnsPacket.TRUNCATED_RESPONSE : 0;
        // The questions repeated once each (1400 copies of one were 29 KB).
        const questions = [...new Map((q.questions ?? []).map((x) => [`${x.type} ${x.name.toLowerCase()}`, x])).values()].slice(0, 16);
        m.respond({ id: q.id, flags, questions, answers: first, additionals: room.slice(first.length) }, rinfo, sent);
      } else multicast([...answers, ...additionals]);
    } catch (err) {
      o.log.warn({ error: (err as Error).message }, 'services mDNS: query not answered');
    }
  });
  return {
    ready,
    stats,
    announce: () => {
      try {
        const { all } = records();
        const current = new Map(all.map((r) => [keyOf(r), r]));
        const before = announced ?? new Map<string, Answer>();
        const added = [...current].filter(([k]) => !before.has(k));
        // Goodbyes: the record as it was announced, with TTL 0 (RFC 6762 10.1).
        const gone = [...before].filter(([k]) => !current.has(k)).map(([k, r]) => [k, { ...r, ttl: 0 } as Answer] as const);
        announced = current;
        if (added.length + gone.length > 0) {
          stats.announcements++;
          stats.goodbyes += gone.length;
          for (const [k, r] of gone) pending.set(k, { r, left: 1 });
          for (const [k, r] of added) pending.set(k, { r, left: ANNOUNCE_SENDS });
        }
        flush();
      } catch (err) {
        o.log.warn({ error: (err as Error).message }, 'services mDNS: announcement not sent');
      }
    },
    close: () => {
      closed = true;
      if (flushTimer) clearTimeout(flushTimer);
      return new Promise<void>((r) => m.destroy(() => r()));
    },
  };
}
