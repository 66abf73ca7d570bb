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
 *
 * Anybody on the LAN can send to 5353, so: a record is multicast at most once a second
 * however many queries ask for it (RFC 6762 6), each record is answered once however
 * many questions name it, a one-shot query gets one packet, and records go out in
 * packets of at most MAX_PACKET bytes. An instance whose names do not fit DNS labels,
 * and TXT strings over 255 bytes, are left out (logged) rather than sent broken.
 */
import makeMdns from 'multicast-dns';
import { isIP } from 'node:net';
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
/** RFC 6762 6.7: the TTL of records in an answer to a one-shot (legacy unicast) query. */
const LEGACY_TTL = 10;

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
  announce(): void;
  /** `ignored`: packets dropped unread (from source port 0). */
  readonly stats: { queries: number; answered: number; ignored: number; announcements: number; skipped: number; multicastRecords: number };
  close(): Promise<void>;
}

export function startMdns(o: MdnsOptions): MdnsResponder {
  const m = makeMdns({ ...(o.interface ? { interface: o.interface } : {}), ...(o.port ? { port: o.port } : {}), ...(o.ip ? { ip: o.ip } : {}), multicast: true, loopback: true, reuseAddr: true });
  const stats = { queries: 0, answered: 0, ignored: 0, announcements: 0, skipped: 0, multicastRecords: 0 };
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
  const multicast = (rs: Answer[]): void => {
    const now = performance.now();
    const due = rs.filter((r) => now - (lastMulticast.get(keyOf(r)) ?? -Infinity) >= MULTICAST_GAP_MS);
    if (due.length === 0) return;
    if (lastMulticast.size > 2 * (memo?.all.length ?? 0) + 64) for (const [k, t] of lastMulticast) if (now - t >= MULTICAST_GAP_MS) lastMulticast.delete(k);
    for (const r of due) lastMulticast.set(keyOf(r), now);
    stats.multicastRecords += due.length;
    for (const answers of packets(due)) m.respond({ answers }, sent);
  };

  m.on('query', (q, rinfo) => {
    // No socket sends from port 0 (and Node throws on a send to it): a forged source.
    if (rinfo.port === 0) {
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
        if (all.length === 0) return;
        stats.announcements++;
        multicast(all);
      } catch (err) {
        o.log.warn({ error: (err as Error).message }, 'services mDNS: announcement not sent');
      }
    },
    close: () => new Promise<void>((r) => m.destroy(() => r())),
  };
}
