/**
 * The DNS interface of service discovery (off by default; config services.dns): a UDP
 * server answering, from this node's cached catalog, for the zone
 * `service.<cluster>.quorumd`:
 *
 *   <name>.service.<cluster>.quorumd             SRV (one per healthy instance, target
 *                                               <instance>.<name>.service..., with the
 *                                               addresses as additional A/AAAA), A, AAAA
 *   <instance>.<name>.service.<cluster>.quorumd  SRV, A, AAAA of that instance
 *
 * Healthy = passing or warning. An unknown name in the zone is NXDOMAIN, a known one
 * without records of the type asked is an empty NOERROR, any other zone is REFUSED
 * (this is no recursive resolver). Answers fit the client's UDP size (512 bytes, or
 * its EDNS size up to UDP_MAX, 1232): extra records go first, then answers, with TC set
 * so the client asks again over TCP on the same port, where answers are up to 64 KB.
 * A query with an EDNS OPT record gets one back (RFC 6891 7) advertising UDP_MAX; two
 * OPT records, or one outside the additional section, are FORMERR, an EDNS version
 * above 0 is BADVERS (see answer()).
 *
 * UDP answers go to whatever source address a datagram claims, so a host that can
 * forge one can aim the answers at a victim: with EDNS sizes up to 4096 bytes a 54-byte
 * query drew a 4085-byte answer (x75). Two bounds keep that small: UDP answers are at
 * most 1232 bytes (the EDNS size DNS Flag Day 2020 settled on: it fits the IPv6
 * minimum MTU, so it is never fragmented), and each source address gets UDP_RATE full answers a second (a
 * token bucket, after BIND's response rate limiting); past that it gets a "slip": the
 * header and question with TC set and no records, about the size of its query (the
 * question is echoed; a name compressed against the header decodes at most ~10 bytes
 * longer than it was sent, and an OPT record only answers one), so a real
 * resolver asks again over TCP (which cannot be forged) and a victim gets hardly more
 * than the attacker sent. The buckets are bounded (RATE_SOURCES, least recently seen
 * forgotten first).
 *
 * Malformed packets are counted and dropped, a question that cannot be echoed is
 * FORMERR; nothing a packet holds can stop the server, and a TCP client holds at most
 * a bounded share of it (see the TCP server below).
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket as TcpSocket } from 'node:net';
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet';
import type { Catalog } from './registry.ts';
import type { InstanceView } from './catalog.ts';
import { AddressSlots } from '../../hal/address-slots.ts';

export interface DnsOptions {
  host: string;
  /** TCP bounds (tests): idle close without a completed query, connections per client address, in all. */
  tcp?: { idleMs?: number; perAddress?: number; max?: number };
  /** UDP answers per source address (config services.dns.udpRate): sustained per second, the burst above it, addresses tracked. */
  udpRate?: { perSec?: number; burst?: number; sources?: number };
  port: number;
  cluster: string;
  ttlSec: number;
  catalog: () => Catalog;
  log: { warn(fields: Record<string, unknown>, msg: string): void };
}

export interface DnsServer {
  port: number;
  readonly stats: { queries: number; malformed: number; nxdomain: number; refused: number; formerr: number; badvers: number; tcpConnections: number; slipped: number };
  close(): Promise<void>;
}

/** Bytes of answers written and not yet taken by a TCP client before its next query is read. */
const TCP_BACKLOG = 64 * 1024;
/** The largest UDP answer, whatever EDNS size a query offers (DNS Flag Day 2020). */
export const UDP_MAX = 1232;
/** Full UDP answers per second per source address, and the burst above that. */
const UDP_RATE = { perSec: 50, burst: 100 };
/** Source addresses whose rate is tracked; past that the least recently seen is forgotten. */
const RATE_SOURCES = 4096;
const AA = 1 << 10;
const TC = 1 << 9;
const RCODE = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
/** The EDNS version this server speaks (RFC 6891: 0, the only one there is). */
const EDNS_VERSION = 0;

/**
 * This server's OPT record (RFC 6891 6.1.2): the UDP size it takes, version 0, and the
 * upper 8 bits of a 12-bit RCODE (BADVERS = 16 is 1 here and 0 in the header).
 */
function ourOpt(rcode = 0): Answer {
  return { type: 'OPT', name: '.', udpPayloadSize: UDP_MAX, extendedRcode: rcode >> 4, ednsVersion: EDNS_VERSION, flags: 0, options: [] } as unknown as Answer;
}

/**
 * Whether a decoded name encodes back to what was asked. dns-packet decodes a label's
 * bytes as UTF-8, so bytes that are not UTF-8 come back as U+FFFD (3 bytes each): 63
 * bytes 0xff turned into a 189-byte "label" whose length byte no resolver can read, and
 * a 271-byte question into a 771-byte answer.
 */
function reEncodable(name: string): boolean {
  if (name.includes('\uFFFD')) return false;
  return name.replace(/\.$/, '').split('.').every((l) => Buffer.byteLength(l) <= 63) && Buffer.byteLength(name) <= 255;
}

/**
 * The answer to one query packet (exported for tests without sockets); `rcode` is the
 * whole RCODE (16 for BADVERS, whose upper bits travel in the OPT record).
 *
 * EDNS (RFC 6891): a query with an OPT record gets this server's OPT back (6.1.1). A
 * query with more than one OPT record, or one outside the additional section (where
 * 6.1.1 puts it), is FORMERR; an OPT record of a version above 0 is BADVERS (6.1.3),
 * with no records, so that the client falls back to version 0. Both error answers
 * carry an OPT record of version 0 (section 7: a client then tells a server that
 * knows EDNS from one that does not).
 */
export function answer(query: Packet, o: { cluster: string; ttlSec: number; catalog: Catalog }): { packet: Packet; rcode: number } {
  const zone = `service.${o.cluster}.quorumd`;
  const q = (query.questions ?? [])[0] as Question | undefined;
  const isOpt = (r: Answer) => r.type === 'OPT';
  const opts = (query.additionals ?? []).filter(isOpt) as Array<Answer & { ednsVersion?: number }>;
  const misplaced = [...(query.answers ?? []), ...(query.authorities ?? [])].some(isOpt);
  const edns = opts.length > 0 || misplaced;
  const echoed = q && reEncodable(q.name) ? [q] : [];
  const fail = (rcode: number): { packet: Packet; rcode: number } => ({ packet: { type: 'response', id: query.id ?? 0, questions: echoed, flags: rcode & 0xf, answers: [], additionals: edns ? [ourOpt(rcode)] : [] }, rcode });
  if (misplaced || opts.length > 1) return fail(RCODE.FORMERR);
  if ((opts[0]?.ednsVersion ?? 0) > EDNS_VERSION) return fail(RCODE.BADVERS);
  const r = answerRecords(query, q, zone, o);
  if (edns) r.packet.additionals = [...(r.packet.additionals ?? []), ourOpt(r.rcode)];
  return r;
}

function answerRecords(query: Packet, q: Question | undefined, zone: string, o: { ttlSec: number; catalog: Catalog }): { packet: Packet; rcode: number } {
  const base = { type: 'response' as const, id: query.id ?? 0, questions: q ? [q] : [] };
  if (!q || !reEncodable(q.name)) return { packet: { ...base, questions: [], flags: RCODE.FORMERR }, rcode: RCODE.FORMERR };
  // Only standard queries (opcode 0); NOTIFY, UPDATE and the rest are not implemented (RFC 1035 4.1.1).
  const opcode = ((query.flags ?? 0) >> 11) & 0xf;
  if (opcode !== 0) return { packet: { ...base, flags: (opcode << 11) | RCODE.NOTIMP }, rcode: RCODE.NOTIMP };
  const name = q.name.toLowerCase().replace(/\.$/, '');
  if (name !== zone && !name.endsWith(`.${zone}`)) return { packet: { ...base, flags: RCODE.REFUSED }, rcode: RCODE.REFUSED };
  const labels = name === zone ? [] : name.slice(0, -(zone.length + 1)).split('.');
  const healthy = o.catalog.instances.filter((v) => v.health !== 'critical');
  let set: InstanceView[];
  if (labels.length === 1) set = healthy.filter((v) => v.name === labels[0]);
  else if (labels.length === 2) set = healthy.filter((v) => v.name === labels[1] && v.instance === labels[0]);
  else set = [];
  const known = labels.length === 1 ? o.catalog.instances.some((v) => v.name === labels[0]) : labels.length === 2 ? o.catalog.instances.some((v) => v.name === labels[1] && v.instance === labels[0]) : labels.length === 0;
  if (!known) return { packet: { ...base, flags: AA | RCODE.NXDOMAIN }, rcode: RCODE.NXDOMAIN };
  const ttl = o.ttlSec;
  const target = (v: InstanceView) => (isIP(v.address) ? `${v.instance}.${v.name}.${zone}` : v.address.replace(/\.$/, ''));
  const addr = (v: InstanceView, owner: string): Answer[] => {
    const fam = isIP(v.address);
    if (fam === 4) return [{ type: 'A', name: owner, ttl, class: 'IN', data: v.address }];
    if (fam === 6) return [{ type: 'AAAA', name: owner, ttl, class: 'IN', data: v.address }];
    return [];
  };
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  // dns-packet's types leave out ANY (QTYPE 255), which it decodes as 'ANY'.
  const any = (q.type as string) === 'ANY';
  const wantSrv = q.type === 'SRV' || any;
  const wantA = q.type === 'A' || any;
  const wantAAAA = q.type === 'AAAA' || any;
  for (const v of set) {
    if (wantSrv) {
      answers.push({ type: 'SRV', name: q.name, ttl, class: 'IN', data: { priority: 1, weight: 1, port: v.port, target: target(v) } });
      additionals.push(...addr(v, target(v)));
    }
    for (const a of addr(v, q.name)) if ((a.type === 'A' && wantA) || (a.type === 'AAAA' && wantAAAA)) answers.push(a);
  }
  return { packet: { ...base, flags: AA | RCODE.NOERROR, answers, additionals }, rcode: RCODE.NOERROR };
}

/**
 * Encodes within `limit` bytes: additionals dropped first (no TC), then answers (TC set).
 * dns-packet does not compress names, so a message's size is its header and questions
 * plus the sum of its records' sizes: each record is measured once and the message is
 * encoded once. (Re-encoding after every dropped record cost O(n²): 1.1 s of event loop
 * per 43-byte UDP query with 300 instances, 13 s with 1000.)
 */
export function encodeWithin(p: Packet, limit: number): Buffer {
  const size = (r: Answer) => dnsPacket.encodingLength({ answers: [r] }) - 12;
  /** The longest prefix of `rs` that fits in `room` bytes (each record measured at most once). */
  const fit = (rs: Answer[], room: number): { n: number; bytes: number } => {
    let bytes = 0;
    for (let i = 0; i < rs.length; i++) {
      const b = size(rs[i]!);
      if (bytes + b > room) return { n: i, bytes };
      bytes += b;
    }
    return { n: rs.length, bytes };
  };
  // An OPT record (EDNS) is part of the header's share: always kept, never dropped.
  const opt = (p.additionals ?? []).filter((r) => r.type === 'OPT');
  const adds = (p.additionals ?? []).filter((r) => r.type !== 'OPT');
  const base = dnsPacket.encodingLength({ ...p, answers: [], additionals: opt, authorities: [] });
  const answers = p.answers ?? [];
  const a = fit(answers, limit - base);
  if (a.n < answers.length) return dnsPacket.encode({ ...p, flags: (p.flags ?? 0) | TC, answers: answers.slice(0, a.n), additionals: opt });
  const b = fit(adds, limit - base - a.bytes);
  return dnsPacket.encode({ ...p, answers, additionals: [...adds.slice(0, b.n), ...opt] });
}

function startDnsOnce(o: DnsOptions): Promise<DnsServer> {
  const sock: Socket = createSocket({ type: isIP(o.host) === 6 ? 'udp6' : 'udp4' });
  const stats = { queries: 0, malformed: 0, nxdomain: 0, refused: 0, formerr: 0, badvers: 0, tcpConnections: 0, slipped: 0 };
  // Full UDP answers per source address: a token bucket each, in least-recently-seen order.
  const rate = { perSec: o.udpRate?.perSec ?? UDP_RATE.perSec, burst: o.udpRate?.burst ?? UDP_RATE.burst, sources: o.udpRate?.sources ?? RATE_SOURCES };
  const buckets = new Map<string, { tokens: number; at: number }>();
  const take = (from: string): boolean => {
    const now = performance.now();
    const b = buckets.get(from);
    let tokens = rate.burst;
    if (b) {
      buckets.delete(from);
      tokens = Math.min(rate.burst, b.tokens + ((now - b.at) / 1000) * rate.perSec);
    } else if (buckets.size >= rate.sources) buckets.delete(buckets.keys().next().value!);
    const ok = tokens >= 1;
    buckets.set(from, { tokens: ok ? tokens - 1 : tokens, at: now });
    return ok;
  };
  /**
   * The encoded answer to one query message (undefined: dropped): over TCP up to 64 KB;
   * over UDP within the size the query offers (at most UDP_MAX), or a slip once `from`
   * is over its rate.
   */
  const respond = (msg: Buffer, udpFrom?: string): Buffer | undefined => {
    let query: Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      stats.malformed++;
      return undefined;
    }
    if (query.type !== 'query') {
      stats.malformed++;
      return undefined;
    }
    stats.queries++;
    try {
      const { packet, rcode } = answer(query, { cluster: o.cluster, ttlSec: o.ttlSec, catalog: o.catalog() });
      if (rcode === RCODE.NXDOMAIN) stats.nxdomain++;
      if (rcode === RCODE.REFUSED) stats.refused++;
      if (rcode === RCODE.FORMERR) stats.formerr++;
      if (rcode === RCODE.BADVERS) stats.badvers++;
      // EDNS (RFC 6891): answer() added this server's OPT record for a query with one.
      const asked = (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
      const opt = (packet.additionals ?? []).filter((a) => a.type === 'OPT');
      if (udpFrom === undefined) return encodeWithin(packet, 65_535);
      if (!take(udpFrom)) {
        // The slip: no records, TC set; its question is the query's, re-encoded no longer.
        stats.slipped++;
        return dnsPacket.encode({ ...packet, flags: (packet.flags ?? 0) | TC, answers: [], authorities: [], additionals: opt });
      }
      return encodeWithin(packet, Math.max(512, Math.min(UDP_MAX, asked?.udpPayloadSize ?? 512)));
    } catch (err) {
      stats.malformed++;
      o.log.warn({ error: (err as Error).message }, 'services DNS: query not answered');
      return undefined;
    }
  };
  sock.on('message', (msg, rinfo) => {
    if (rinfo.port === 0) {
      stats.malformed++;
      return;
    }
    const out = respond(msg, rinfo.address);
    // Node throws on a send to port 0; a datagram "from" port 0 is forged anyway (no
    // socket sends from it), so it is dropped like any other malformed packet.
    if (out) sock.send(out, rinfo.port, rinfo.address, (err) => err && o.log.warn({ error: err.message, to: `${rinfo.address}:${rinfo.port}` }, 'services DNS: answer not sent'));
  });
  // DNS over TCP (RFC 1035 4.2.2, RFC 7766): messages with a 2-byte length; for answers
  // that do not fit UDP. Anybody who can reach the port can connect, so each connection
  // is bounded: queries are read only while the answers already written are under
  // TCP_BACKLOG bytes (a client that asks and never reads stalls itself, not the node's
  // memory: it grew by ~280 MB in 25 s before), a connection that completes no query
  // within idleMs is closed however many bytes it dribbles (a byte every few seconds
  // held one open forever), and connections are bounded per client address and in all,
  // the oldest closed to make room (RFC 7766 6.2.2 lets a server close idle ones).
  const conns = new Set<TcpSocket>();
  const t = { idleMs: o.tcp?.idleMs ?? 10_000, perAddress: o.tcp?.perAddress ?? 16, max: o.tcp?.max ?? 64 };
  const slots = new AddressSlots<TcpSocket>(t.perAddress);
  const tcp: Server = createServer((c) => {
    if (conns.size >= t.max) {
      const oldest = conns.values().next().value!;
      conns.delete(oldest);
      slots.release(oldest);
      oldest.destroy();
    }
    // Nobody authenticates here, so admission never refuses: at the bound it names the
    // address's oldest connection to close.
    const adm = slots.admit(c, c.remoteAddress ?? '');
    if (adm.refused) return c.destroy();
    if (adm.evict) {
      conns.delete(adm.evict);
      adm.evict.destroy();
    }
    conns.add(c);
    stats.tcpConnections++;
    let buf = Buffer.alloc(0);
    const idle = setTimeout(() => c.destroy(), t.idleMs);
    c.on('error', () => undefined);
    c.on('close', () => {
      clearTimeout(idle);
      if (later) clearImmediate(later);
      conns.delete(c);
      slots.release(c);
    });
    // At most 32 queries per turn of the event loop, so that one connection's pipeline
    // of 70 KB of small queries does not hold everything else up.
    let later: NodeJS.Immediate | undefined;
    const work = () => {
      later = undefined;
      for (let k = 0; buf.length >= 2 && c.writableLength < TCP_BACKLOG && !c.destroyed; k++) {
        if (k === 32) {
          c.pause();
          later = setImmediate(work);
          return;
        }
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) break;
        const out = respond(buf.subarray(2, 2 + n));
        buf = buf.subarray(2 + n);
        idle.refresh();
        if (out) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          c.write(Buffer.concat([len, out]));
        }
      }
      // Read on only when the answers so far are on their way ('drain' calls work again).
      if (c.writableLength >= TCP_BACKLOG) c.pause();
      else c.resume();
    };
    c.on('drain', () => {
      if (!later) work();
    });
    c.on('data', (d) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (buf.length > 70_000) return c.destroy();
      if (!later) work();
    });
  });
  const close = async () => {
    for (const c of conns) c.destroy();
    await Promise.all([new Promise<void>((r) => sock.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
  };
  return new Promise((resolve, reject) => {
    const bindFailed = (err: Error) => {
      sock.close();
      reject(err);
    };
    sock.once('error', bindFailed);
    sock.bind(o.port, o.host, () => {
      sock.off('error', bindFailed);
      sock.on('error', (err) => o.log.warn({ error: err.message }, 'services DNS: socket error'));
      const port = sock.address().port;
      tcp.once('error', (err) => {
        sock.close();
        reject(err);
      });
      tcp.listen(port, o.host, () => {
        tcp.on('error', (err) => o.log.warn({ error: err.message }, 'services DNS: TCP error'));
        resolve({ port, stats, close });
      });
    });
  });
}

/** Attempts at a UDP and TCP pair on one port number when `port` is 0 (any free one). */
export const PORT0_ATTEMPTS = 16;

/**
 * Starts the DNS interface: UDP and TCP on `o.port`. With port 0 the kernel picks a
 * free UDP port, and TCP must then listen on the same number, which something else may
 * hold (the two protocols' ports are separate): then both are closed and another pair
 * is tried, up to PORT0_ATTEMPTS times. A given port that is taken is an error at once.
 */
export async function startDns(o: DnsOptions): Promise<DnsServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDnsOnce(o);
    } catch (err) {
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (o.port !== 0 || !inUse || attempt >= PORT0_ATTEMPTS) {
        if (o.port === 0 && inUse) throw new Error(`services DNS: no port free for both UDP and TCP on ${o.host} after ${attempt} attempts (last: ${(err as Error).message})`);
        throw err;
      }
    }
  }
}
