/**
 * The closed broker and the authenticated presence, with real clients on 127.0.0.1:
 * node accounts derived from the cluster key, a node's client id reserved for it,
 * signed presence (forged and replayed wills ignored and counted), the packet size
 * guard at the broker and at the link, and the per-client publish rate limit.
 */
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { nodePassword, nodeUsername } from '../../../hal/mqtt/credentials.ts';
import { encodePresence, readPresence } from '../../../hal/mqtt/presence.ts';
import { MqttSizeGuard } from '../../../hal/mqtt/guard.ts';
import { closeLink, testLink, TEST_LINK_KEY, waitFor, type TestLink } from './helpers.ts';

const C = 7;
const OTHER_KEY = new Uint8Array(32).fill(0x11);
let br: RunningBroker;
const url = () => `mqtt://127.0.0.1:${br.port}`;
const links: TestLink[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  br = await startBroker({ port: 0, clusterKeys: [{ cluster: C, keys: [TEST_LINK_KEY] }], users: [{ username: 'dash', password: 'secret-dash' }] });
});
afterEach(async () => {
  await Promise.all(links.splice(0).map((t) => closeLink(t.link)));
  for (const c of clients.splice(0)) c.end(true);
});
afterAll(async () => {
  await new Promise((r) => br.close(r));
});

async function raw(u: string, o: mqtt.IClientOptions = {}): Promise<{ c: MqttClient; err?: Error }> {
  const c = mqtt.connect(u, { protocolVersion: 4, reconnectPeriod: 0, ...o });
  clients.push(c);
  let err: Error | undefined;
  c.on('error', (e) => (err = e));
  await waitFor('connect or refusal', () => c.connected || err !== undefined, 5000);
  return err ? { c, err } : { c };
}

describe('node accounts derived from the cluster key', () => {
  it('a link without configured credentials logs in as its node; another key or anonymous is refused', async () => {
    const a = testLink({ self: 1, brokers: [url()] });
    const b = testLink({ self: 2, brokers: [url()] });
    links.push(a, b);
    await waitFor('both up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1, 5000);
    a.link.send(2, new Uint8Array([0x84, 1, 7, 7, 1])); // header [version, type, cluster, from 1]: the broker checks `from`
    await waitFor('frame', () => b.frames.length === 1, 5000);
    const wrong = testLink({ self: 3, brokers: [url()], keyring: { current: OTHER_KEY } });
    links.push(wrong);
    await waitFor('refused', () => wrong.link.status()[0]!.attempts >= 1, 5000);
    expect(wrong.link.status()[0]!.lastError).toMatch(/Bad username or password/);
    const anon = await raw(url());
    expect(anon.err?.message).toMatch(/Bad username or password|Not authorized/);
    // The derived password is what `quorumd broker passwords` prints for mosquitto.
    const ok = await raw(url(), { clientId: 'tool-1', username: nodeUsername(C, 3), password: nodePassword(TEST_LINK_KEY, C, 3) });
    expect(ok.err).toBeUndefined();
  });

  it("nobody else may take a node's client id: the node stays connected", async () => {
    const a = testLink({ self: 1, brokers: [url()] });
    links.push(a);
    await waitFor('up', () => a.link.connectedCount() === 1, 5000);
    const connects = a.link.stats.connects;
    for (let i = 0; i < 16; i++) {
      const r = await raw(url(), { clientId: `quorumd-${C}-1`, username: 'dash', password: 'secret-dash' });
      expect(r.err?.message).toMatch(/Not authorized/);
    }
    const other = await raw(url(), { clientId: `quorumd-${C}-1`, username: nodeUsername(C, 2), password: nodePassword(TEST_LINK_KEY, C, 2) });
    expect(other.err?.message).toMatch(/Not authorized/);
    expect(a.link.connectedCount()).toBe(1);
    expect(a.link.stats.connects).toBe(connects);
    expect(br.stats.refusedClientIds).toBeGreaterThanOrEqual(17);
  });
});

describe('signed presence', () => {
  it('round-trips, and refuses another key, another cluster, and a changed field', () => {
    const p = { node: 2, state: 'offline' as const, reason: 'lost' as const, boot: 17, conn: 3 };
    const payload = encodePresence(p, C, TEST_LINK_KEY);
    expect(readPresence(payload, { cluster: C, topicNode: 2, keyring: { current: TEST_LINK_KEY } })).toEqual({ kind: 'ok', presence: p });
    expect(readPresence(payload, { cluster: C, topicNode: 2, keyring: { current: OTHER_KEY, previous: TEST_LINK_KEY } }).kind).toBe('ok');
    expect(readPresence(payload, { cluster: C, topicNode: 2, keyring: { current: OTHER_KEY } }).kind).toBe('forged');
    expect(readPresence(payload, { cluster: C + 1, topicNode: 2, keyring: { current: TEST_LINK_KEY } }).kind).toBe('forged');
    const j = JSON.parse(payload.toString()) as Record<string, unknown>;
    expect(readPresence(Buffer.from(JSON.stringify({ ...j, conn: 4 })), { cluster: C, topicNode: 2, keyring: { current: TEST_LINK_KEY } }).kind).toBe('forged');
    expect(readPresence(payload, { cluster: C, topicNode: 3, keyring: { current: TEST_LINK_KEY } }).kind).toBe('malformed');
    expect(readPresence(Buffer.from('{"node":2,"state":"offline","reason":"lost","inc":"x"}'), { cluster: C, topicNode: 2, keyring: { current: TEST_LINK_KEY } }).kind).toBe('malformed');
  });

  it('a forged "lost" is ignored and counted, a replayed old will too; the real will still raises peer-gone', async () => {
    const open = await startBroker({ port: 0, open: true });
    try {
      const u = `mqtt://127.0.0.1:${open.port}`;
      const a = testLink({ self: 1, brokers: [u] });
      const b = testLink({ self: 2, brokers: [u], boot: 500 });
      links.push(a);
      await waitFor('up, b online', () => a.link.peerState(2) === 'online', 5000);
      const rogue = (await raw(u)).c;
      // 1. Forged: the right shape, no key.
      rogue.publish(`quorumd/${C}/presence/2`, encodePresence({ node: 2, state: 'offline', reason: 'lost', boot: 500, conn: 1 }, C, OTHER_KEY));
      // 2. Replayed: a genuine will of an older start of node 2 (recorded last week, say).
      rogue.publish(`quorumd/${C}/presence/2`, encodePresence({ node: 2, state: 'offline', reason: 'lost', boot: 499, conn: 9 }, C, TEST_LINK_KEY));
      // 3. Unsigned, the old format.
      rogue.publish(`quorumd/${C}/presence/2`, JSON.stringify({ node: 2, state: 'offline', reason: 'lost', inc: 'x' }));
      await waitFor('all three counted', () => a.link.stats.forgedPresence === 1 && a.link.stats.staleWills === 1 && a.link.stats.badPresence === 1, 5000);
      expect(a.events.filter((e) => e.kind === 'peer-gone')).toEqual([]);
      expect(a.link.peerState(2)).toBe('online');
      // The real death of b's connection is still believed.
      b.link.socketOf(0)!.destroy();
      await waitFor('peer-gone', () => a.events.some((e) => e.kind === 'peer-gone' && e.peer === 2), 5000);
      await closeLink(b.link);
    } finally {
      await new Promise((r) => open.close(r));
    }
  });
});

describe('bounded packets and rates', () => {
  it('the broker closes a connection whose packet announces more than maxPacketBytes, before its body', async () => {
    const before = br.stats.oversize;
    const s = net.connect(br.port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    let closed = false;
    s.on('close', () => (closed = true));
    s.on('error', () => {});
    // PUBLISH with remaining length 200 MB (varint 0x80 0x80 0xaf 0x5f ≈ 200e6), then a little body.
    s.write(Buffer.from([0x30, 0x80, 0x84, 0xaf, 0x5f]));
    s.write(Buffer.alloc(4096));
    await waitFor('closed by the broker', () => closed, 5000);
    expect(br.stats.oversize).toBe(before + 1);
  });

  it('the link drops a broker connection that sends a packet larger than maxFrame + 1 KiB, at its header', async () => {
    // A fake broker: CONNACK, SUBACK, then a PUBLISH announcing 10 MB.
    const srv = net.createServer((sock) => {
      sock.on('error', () => {});
      let sent = false;
      sock.on('data', (d: Buffer) => {
        if (d[0] === 0x10) sock.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
        if ((d[0]! & 0xf0) === 0x80 && !sent) {
          sent = true;
          const id = d.readUInt16BE(2);
          sock.write(Buffer.from([0x90, 0x04, id >> 8, id & 0xff, 0x00, 0x01]));
          sock.write(Buffer.from([0x30, 0x80, 0xad, 0xe2, 0x04])); // 10,000,000 bytes announced
          sock.write(Buffer.alloc(8192));
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const l = testLink({ self: 1, brokers: [`mqtt://127.0.0.1:${port}`], maxFrame: 4096 });
      links.push(l);
      await waitFor('oversize counted', () => l.link.stats.droppedOversizePackets >= 1, 5000);
      expect(l.frames.length).toBe(0);
    } finally {
      srv.close();
    }
  });

  it('MqttSizeGuard follows packet boundaries across chunks and trips only on the big one', () => {
    const seen: number[] = [];
    const g = new MqttSizeGuard(100, (n) => seen.push(n));
    const pkt = (len: number) => Buffer.concat([Buffer.from([0x30, len]), Buffer.alloc(len)]);
    const stream = Buffer.concat([pkt(10), pkt(100), pkt(0), pkt(99)]);
    for (let i = 0; i < stream.length; i += 7) g.feed(stream.subarray(i, i + 7));
    expect(seen).toEqual([]);
    g.feed(Buffer.from([0x30, 0xe5, 0x00])); // 101
    expect(seen).toEqual([101]);
  });

  it('a client publishing above its rate is slowed down, not served at once', async () => {
    const slow = await startBroker({ port: 0, open: true, rate: { messagesPerSec: 200, messageBurst: 50 } });
    try {
      const u = `mqtt://127.0.0.1:${slow.port}`;
      const sub = (await raw(u)).c;
      let got = 0;
      sub.on('message', () => got++);
      await new Promise<void>((r) => sub.subscribe('t', { qos: 0 }, () => r()));
      const pub = (await raw(u)).c;
      const t0 = performance.now();
      for (let i = 0; i < 250; i++) pub.publish('t', 'x');
      await waitFor('all 250 delivered', () => got === 250, 20_000, 10);
      // 50 at once, then 200 at 200/s: at least ~1 s (a busier machine only makes it slower).
      expect(performance.now() - t0).toBeGreaterThan(900);
      expect(slow.stats.rateDelayed).toBeGreaterThan(150);
    } finally {
      await new Promise((r) => slow.close(r));
    }
  });
});
