/**
 * The embedded broker's access rules and TLS, with real clients on 127.0.0.1.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { peekFrameFrom, startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { FrameSealer, Sender } from '../../../src/wire/auth.ts';
import { MsgType } from '../../../src/wire/messages.ts';
import { closeLink, makeCerts, testLink, waitFor, type Certs, type TestLink } from './helpers.ts';

const C = 7;
const users = [
  { username: 'n1', password: 'secret-one', nodeId: 1 },
  { username: 'n2', password: 'secret-two', nodeId: 2 },
  { username: 'n3', password: 'secret-three', nodeId: 3, cluster: C },
  { username: 'dash', password: 'secret-dash' },
];
const frameFrom = (from: number, to: number) =>
  Buffer.from(
    new FrameSealer({ cluster: C, keyring: { current: new Uint8Array(32) }, sender: new Sender(0) }).seal({
      type: MsgType.Heartbeat, from, to, term: 1, commit: undefined, ctx: 0,
    }).frame,
  );

let br: RunningBroker;
const url = () => `mqtt://127.0.0.1:${br.port}`;
const links: TestLink[] = [];
const clients: MqttClient[] = [];
beforeAll(async () => {
  br = await startBroker({ port: 0, users });
});
afterEach(async () => {
  await Promise.all(links.splice(0).map((t) => closeLink(t.link)));
  for (const c of clients.splice(0)) c.end(true);
});
afterAll(async () => {
  await new Promise((r) => br.close(r));
});

/** A raw client; resolves when connected or with the refusal error. */
async function raw(username?: string, password?: string): Promise<{ c: MqttClient; err?: Error }> {
  const c = mqtt.connect(url(), { protocolVersion: 4, reconnectPeriod: 0, ...(username ? { username, password } : {}) });
  clients.push(c);
  let err: Error | undefined;
  c.on('error', (e) => (err = e));
  await waitFor('connect or refusal', () => c.connected || err !== undefined);
  return err ? { c, err } : { c };
}
function sub(c: MqttClient, topic: string): Promise<number> {
  // mqtt.js 5 turns SUBACK 0x80 into an error that carries the SUBACK packet.
  return new Promise((resolve, reject) =>
    c.subscribe(topic, { qos: 0 }, (e, g) => {
      const refused = (e as { packet?: { granted?: number[] } } | null)?.packet?.granted?.[0];
      if (e) return refused === 128 ? resolve(128) : reject(e);
      resolve(g![0]!.qos);
    }),
  );
}

describe('startBroker access rules', () => {
  it('refuses a client without credentials or with a wrong password', async () => {
    const anon = await raw();
    expect(anon.err?.message).toMatch(/Bad username or password|Not authorized/);
    const wrong = await raw('n1', 'secret-ONE');
    expect(wrong.err?.message).toMatch(/Bad username or password/);
    const unknown = await raw('nobody', 'secret-one');
    expect(unknown.err?.message).toMatch(/Bad username or password/);
    const ok = await raw('n1', 'secret-one');
    expect(ok.err).toBeUndefined();
  });

  it("node 2's credentials cannot subscribe to node 3's inbox, only to its own, leader and presence", async () => {
    const { c } = await raw('n2', 'secret-two');
    expect(await sub(c, `quorumd/${C}/to/3`)).toBe(128);
    expect(await sub(c, `quorumd/${C}/to/+`)).toBe(128);
    expect(await sub(c, '#')).toBe(128);
    expect(await sub(c, `quorumd/${C}/to/2`)).toBe(0);
    expect(await sub(c, `quorumd/${C}/leader`)).toBe(0);
    expect(await sub(c, `quorumd/${C}/presence/+`)).toBe(0);
  });

  it('a cluster-bound account cannot touch another cluster', async () => {
    const { c } = await raw('n3', 'secret-three');
    expect(await sub(c, `quorumd/${C + 1}/to/3`)).toBe(128);
    expect(await sub(c, `quorumd/${C}/to/3`)).toBe(0);
  });

  it('node 2 cannot publish presence as node 3, nor a frame claiming to be from node 3; it can send as itself', async () => {
    const { c: watcher } = await raw('n1', 'secret-one');
    const got: string[] = [];
    watcher.on('message', (t) => got.push(t));
    await sub(watcher, `quorumd/${C}/presence/3`);
    await sub(watcher, `quorumd/${C}/to/1`);
    const { c: evil } = await raw('n2', 'secret-two');
    let closed = false;
    evil.on('close', () => (closed = true));
    evil.publish(`quorumd/${C}/presence/3`, JSON.stringify({ node: 3, state: 'offline', reason: 'lost', inc: 'x' }));
    await waitFor('broker closes the offender', () => closed);
    const { c: evil2 } = await raw('n2', 'secret-two');
    let closed2 = false;
    evil2.on('close', () => (closed2 = true));
    evil2.publish(`quorumd/${C}/to/1`, frameFrom(3, 1));
    await waitFor('broker closes the impersonator', () => closed2);
    const { c: good } = await raw('n2', 'secret-two');
    good.publish(`quorumd/${C}/to/1`, frameFrom(2, 1));
    await waitFor('own frame delivered', () => got.length === 1);
    expect(got).toEqual([`quorumd/${C}/to/1`]); // neither forged message arrived
  });

  it('an observer may read leader and presence, nothing else', async () => {
    const { c } = await raw('dash', 'secret-dash');
    expect(await sub(c, `quorumd/${C}/leader`)).toBe(0);
    expect(await sub(c, `quorumd/${C}/presence/+`)).toBe(0);
    expect(await sub(c, `quorumd/${C}/to/1`)).toBe(128);
    let closed = false;
    c.on('close', () => (closed = true));
    c.publish(`quorumd/${C}/leader`, '{"leader":9}');
    await waitFor('observer publish refused', () => closed);
  });

  it('links with node credentials work end to end; presence and leader pass the rules', async () => {
    const a = testLink({ self: 1, brokers: [url()], username: 'n1', password: 'secret-one' });
    const b = testLink({ self: 2, brokers: [url()], username: 'n2', password: 'secret-two' });
    links.push(a, b);
    await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
    await waitFor('presence seen', () => a.link.peerState(2) === 'online' && b.link.peerState(1) === 'online');
    a.link.send(2, frameFrom(1, 2));
    await waitFor('frame', () => b.frames.length === 1);
    const err = await new Promise<Error | null>((r) => a.link.publishLeader({ leader: 1, term: 1, token: 1 }, r));
    expect(err).toBeNull();
    expect(a.link.connectedCount()).toBe(1); // not kicked for it
  });

  it('a link with the wrong account never comes up and says why', async () => {
    const bad = testLink({ self: 3, brokers: [url()], username: 'n2', password: 'secret-two' });
    const anon = testLink({ self: 1, brokers: [url()] });
    links.push(bad, anon);
    await waitFor('errors recorded', () => bad.link.status()[0]!.attempts >= 1 && anon.link.status()[0]!.attempts >= 1);
    // Node 2's account asking for node 3's client id (quorumd-7-3): refused at CONNECT.
    expect(bad.link.status()[0]!.lastError).toMatch(/Not authorized/);
    expect(anon.link.status()[0]!.lastError).toMatch(/Bad username or password|Not authorized/);
    expect(bad.events).toEqual([]);
    expect(anon.events).toEqual([]);
  });

  it('validates its options', async () => {
    await expect(startBroker({ port: 70000 })).rejects.toThrow(/port must be an integer 0\.\.65535/);
    await expect(startBroker({ host: 'example.com' })).rejects.toThrow(/host must be an IP address/);
    await expect(startBroker({ users: [{ username: 'x', password: 'short' }] })).rejects.toThrow(/at least 8 characters/);
    await expect(startBroker({ users: [{ username: 'x', password: '12345678', nodeId: 300 }] })).rejects.toThrow(/1\.\.254/);
    await expect(
      startBroker({ users: [{ username: 'x', password: '12345678' }, { username: 'x', password: '12345678' }] }),
    ).rejects.toThrow(/appears twice/);
  });

  it('peekFrameFrom reads the sender from a frame header and nothing from garbage', () => {
    expect(peekFrameFrom(frameFrom(3, 1))).toBe(3);
    expect(peekFrameFrom(frameFrom(200, 1))).toBe(200);
    expect(peekFrameFrom(new Uint8Array([]))).toBeUndefined();
    expect(peekFrameFrom(Buffer.from('hello'))).toBeUndefined();
    expect(peekFrameFrom(new Uint8Array([0x88, 1, 7]))).toBeUndefined();
  });

  it('peekFrameFrom reads every integer form of the header, and nothing from a header cut short', () => {
    // [version 1, type 256 (two bytes), cluster 7 (one byte), from 254 (two bytes, 0x19)] in a 0x98 array.
    const h = [0x98, 9, 0x01, 0x19, 0x01, 0x00, 0x18, 0x07, 0x19, 0x00, 0xfe];
    expect(peekFrameFrom(new Uint8Array([...h, 0x01, 0x02]))).toBe(254);
    expect(peekFrameFrom(new Uint8Array(h))).toBe(254);
    for (let n = 0; n < h.length; n++) expect(peekFrameFrom(new Uint8Array(h.slice(0, n))), `prefix of ${n} bytes`).toBeUndefined();
    // A real frame: every prefix that ends before `from` is complete reads nothing, every longer one reads it.
    const f = frameFrom(200, 1);
    const whole = 6; // short array head, version, type, cluster, 0x18 + from
    for (let n = 0; n <= f.length; n++) expect(peekFrameFrom(f.subarray(0, n)), `prefix of ${n} bytes`).toBe(n >= whole ? 200 : undefined);
    // Anything but an unsigned integer in the first four items: not a frame.
    expect(peekFrameFrom(new Uint8Array([0x84, 0x01, 0x02, 0x03, 0x20]))).toBeUndefined(); // negative int
    expect(peekFrameFrom(new Uint8Array([0x84, 0x01, 0x1a, 0, 0, 0, 1, 0x03, 0x04]))).toBeUndefined(); // 4-byte int
  });

  it('keeps its rules after many distinct topics (the parsed-topic memo empties and refills)', async () => {
    const { c: watcher } = await raw('n1', 'secret-one');
    const got: string[] = [];
    watcher.on('message', (t) => got.push(t));
    await sub(watcher, `quorumd/${C}/to/1`);
    // n2 is not bound to a cluster: inboxes of 254 nodes in 5 clusters are 1270 distinct allowed topics.
    const { c: n2 } = await raw('n2', 'secret-two');
    for (let cl = 100; cl < 105; cl++) for (let to = 1; to <= 254; to++) n2.publish(`quorumd/${cl}/to/${to}`, frameFrom(2, to));
    n2.publish(`quorumd/${C}/to/1`, frameFrom(2, 1));
    await waitFor('the last frame delivered', () => got.length === 1, 20_000);
    expect(n2.connected).toBe(true);
    // Still refused afterwards: another node's presence, and a frame in another's name.
    let closed = false;
    n2.on('close', () => (closed = true));
    n2.publish(`quorumd/${C}/presence/3`, 'x');
    await waitFor('refused', () => closed);
    const { c: again } = await raw('n2', 'secret-two');
    let closed2 = false;
    again.on('close', () => (closed2 = true));
    again.publish(`quorumd/${C}/to/1`, frameFrom(3, 1));
    await waitFor('refused', () => closed2);
    expect(got).toEqual([`quorumd/${C}/to/1`]);
  });

  it('an observer cannot stall the broker with subscriptions: at most 64 filters per connection, then it is closed', async () => {
    const { c: obs } = await raw('dash', 'secret-dash');
    let closed = false;
    obs.on('close', () => (closed = true));
    // 64 distinct allowed filters (presence of 64 nodes) are granted, one by one ...
    for (let n = 1; n <= 64; n++) expect(await sub(obs, `quorumd/${C}/presence/${n}`)).toBe(0);
    // ... and a filter already held again costs nothing new.
    expect(await sub(obs, `quorumd/${C}/presence/1`)).toBe(0);
    expect(obs.connected).toBe(true);
    const refusedBefore = br.stats.refusedSubscriptions;
    // The 65th closes the connection: one SUBSCRIBE of 1,500 filters, as the stall was made
    // of (under the packet size bound, which closes larger ones by itself).
    const oversizeBefore = br.stats.oversize;
    obs.subscribe(Array.from({ length: 1500 }, (_, i) => `quorumd/${C + 1}/presence/${i}`), { qos: 0 }, () => {});
    await waitFor('the observer closed', () => closed);
    expect(br.stats.refusedSubscriptions).toBeGreaterThan(refusedBefore);
    expect(br.stats.oversize).toBe(oversizeBefore);
    // The broker serves others meanwhile and afterwards.
    const { c: n1, err } = await raw('n1', 'secret-one');
    expect(err).toBeUndefined();
    expect(await sub(n1, `quorumd/${C}/to/1`)).toBe(0);
  });

  it('refuses persistent sessions (clean session 0), for nodes and observers alike', async () => {
    for (const [u, p] of [['dash', 'secret-dash'], ['n1', 'secret-one']] as const) {
      const c = mqtt.connect(url(), { protocolVersion: 4, reconnectPeriod: 0, clean: false, clientId: `persist-${u}`, username: u, password: p });
      clients.push(c);
      let err: Error | undefined;
      c.on('error', (e) => (err = e));
      await waitFor('refusal', () => err !== undefined || c.connected);
      expect(c.connected).toBe(false);
      expect(err?.message).toMatch(/Not authorized/);
    }
  });
});

describe('TLS', () => {
  let certs: Certs;
  let tb: RunningBroker;
  beforeAll(async () => {
    certs = makeCerts();
    tb = await startBroker({ port: 0, open: true, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true } });
  });
  afterAll(async () => {
    await new Promise((r) => tb.close(r));
    certs.cleanup();
  });
  const turl = () => `mqtts://127.0.0.1:${tb.port}`;

  it('round-trips with the test CA and client certificates; noDelay on the TCP socket under TLS', async () => {
    const tlsOpts = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    const a = testLink({ self: 1, brokers: [turl()], tls: tlsOpts });
    const b = testLink({ self: 2, brokers: [turl()], tls: tlsOpts });
    links.push(a, b);
    await waitFor('up over TLS', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
    a.link.send(2, new Uint8Array([1, 2, 3]));
    await waitFor('frame over TLS', () => b.frames.length === 1);
    const s = a.link.socketOf(0)!;
    const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'kSetNoDelay')!;
    expect((s as unknown as Record<symbol, unknown>)[sym]).toBe(true);
  });

  it('refuses a broker whose certificate does not chain to the configured CA, and a client without a certificate', async () => {
    const other = makeCerts();
    try {
      const wrongCa = testLink({ self: 1, brokers: [turl()], tls: { ca: other.ca, cert: certs.clientCert, key: certs.clientKey } });
      const noCert = testLink({ self: 2, brokers: [turl()], tls: { ca: certs.ca } });
      links.push(wrongCa, noCert);
      await waitFor('both failed', () => wrongCa.link.status()[0]!.attempts >= 1 && noCert.link.status()[0]!.attempts >= 1, 5000);
      expect(wrongCa.link.status()[0]!.lastError).toMatch(/certificate|self.signed|unable to verify/i);
      expect(wrongCa.link.connectedCount() + noCert.link.connectedCount()).toBe(0);
      expect(wrongCa.events).toEqual([]);
      expect(noCert.events).toEqual([]);
    } finally {
      other.cleanup();
    }
  });
});
