/**
 * The MQTT link against real brokers on 127.0.0.1: the embedded aedes broker and
 * Debian's mosquitto. Every wait is a bounded poll.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { MqttLink } from '../../../hal/mqtt/link.ts';
import { FrameOpener, FrameSealer, Sender } from '../../../src/wire/auth.ts';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import {
  closeLink,
  mosquittoAvailable,
  startMosquitto,
  startProxy,
  testLink,
  waitFor,
  type Mosquitto,
  type TestLink,
} from './helpers.ts';

const CLUSTER = 7;
const KEY = new Uint8Array(32).fill(0x5a);
const hb = (from: number, to: number, term: number): Message => ({ type: MsgType.Heartbeat, from, to, term, commit: undefined, ctx: 0 });

const open: TestLink[] = [];
function link(...args: Parameters<typeof testLink>): TestLink {
  const t = testLink(...args);
  open.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => closeLink(t.link)));
});

let aedes: RunningBroker;
beforeAll(async () => {
  aedes = await startBroker({ port: 0, open: true });
});
afterAll(async () => {
  await new Promise((r) => aedes.close(r));
});
const url = (port: number) => `mqtt://127.0.0.1:${port}`;

/** Sends sealed frames 1→2 until one arrives (QoS 0 right after subscribe may race), then checks contents. */
async function roundTrip(brokerUrl: string): Promise<void> {
  const a = link({ self: 1, brokers: [brokerUrl] });
  const b = link({ self: 2, brokers: [brokerUrl] });
  await waitFor('both links up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
  expect(a.events).toEqual([{ kind: 'up' }]);
  const sealer = new FrameSealer({ cluster: CLUSTER, keyring: { current: KEY }, sender: new Sender(1) });
  const opener = new FrameOpener({ cluster: CLUSTER, keyring: { current: KEY }, self: 2 });
  const f = sealer.seal(hb(1, 2, 5)).frame;
  a.link.send(2, f);
  await waitFor('frame at node 2', () => b.frames.length >= 1);
  expect(b.frames[0]).toEqual(f);
  const r = opener.open(b.frames[0]!);
  expect(r.ok && r.msg.type === MsgType.Heartbeat && r.msg.term === 5).toBe(true);
  // and back, 2 → 1
  b.link.send(1, new Uint8Array([1, 2, 3]));
  await waitFor('frame at node 1', () => a.frames.length >= 1);
  expect(Array.from(a.frames[0]!)).toEqual([1, 2, 3]);
  // node 1 received nothing addressed to 2: it subscribes to its own inbox only
  expect(a.frames.length).toBe(1);
  expect(a.link.stats.framesSent).toBe(1);
}

describe('MqttLink through aedes', () => {
  it('round-trips frames between two nodes', async () => {
    await roundTrip(url(aedes.port));
  });

  it('sets TCP_NODELAY on its socket', async () => {
    const a = link({ self: 1, brokers: [url(aedes.port)] });
    await waitFor('up', () => a.link.connectedCount() === 1);
    const s = a.link.socketOf(0)!;
    // Node keeps the applied value under the internal symbol kSetNoDelay (lib/net.js).
    const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'kSetNoDelay');
    expect(sym).toBeDefined();
    expect((s as unknown as Record<symbol, unknown>)[sym!]).toBe(true);
  });

  it('refuses frames above maxFrame at send and drops them at receive, counted', async () => {
    const a = link({ self: 1, brokers: [url(aedes.port)], maxFrame: 100 });
    const b = link({ self: 2, brokers: [url(aedes.port)], maxFrame: 50 });
    await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
    a.link.send(2, new Uint8Array(101));
    expect(a.link.stats.refusedTooLarge).toBe(1);
    expect(a.link.stats.framesSent).toBe(0);
    a.link.send(2, new Uint8Array(80)); // fits a's limit, not b's
    a.link.send(2, new Uint8Array(10));
    await waitFor('small frame', () => b.frames.length === 1);
    await waitFor('large frame dropped', () => b.link.stats.droppedTooLarge === 1);
    expect(b.frames[0]!.length).toBe(10);
  });

  it('counts and ignores messages on unexpected topics and bad presence', async () => {
    const b = link({ self: 2, brokers: [url(aedes.port)] });
    await waitFor('up', () => b.link.connectedCount() === 1);
    const rogue = mqtt.connect(url(aedes.port), { protocolVersion: 4, reconnectPeriod: 0 });
    await waitFor('rogue connected', () => rogue.connected);
    rogue.publish(`quorumd/${CLUSTER}/presence/3`, 'not json');
    rogue.publish(`quorumd/${CLUSTER}/presence/3`, JSON.stringify({ node: 4, state: 'online', inc: 'x' })); // wrong node
    rogue.publish(`quorumd/${CLUSTER}/presence/9x`, 'x'); // matches presence/+ but not a node id
    await waitFor('bad presence counted', () => b.link.stats.badPresence === 2 && b.link.stats.unexpectedTopic === 1);
    expect(b.frames.length).toBe(0);
    rogue.end(true);
  });

  it('a rogue frame with a bad tag is delivered by the link and dropped by the FrameOpener', async () => {
    const b = link({ self: 2, brokers: [url(aedes.port)] });
    await waitFor('up', () => b.link.connectedCount() === 1);
    const opener = new FrameOpener({ cluster: CLUSTER, keyring: { current: KEY }, self: 2 });
    b.link.onFrame((f) => {
      b.frames.push(f);
      opener.open(f);
    });
    // Forge: a well-formed heartbeat from node 1 sealed with the wrong key.
    const forger = new FrameSealer({ cluster: CLUSTER, keyring: { current: new Uint8Array(32).fill(1) }, sender: new Sender(1) });
    const rogue = mqtt.connect(url(aedes.port), { protocolVersion: 4, reconnectPeriod: 0 });
    await waitFor('rogue connected', () => rogue.connected);
    for (let i = 0; i < 3; i++) rogue.publish(`quorumd/${CLUSTER}/to/2`, Buffer.from(forger.seal(hb(1, 2, 99)).frame));
    await waitFor('three forged frames', () => b.frames.length === 3);
    expect(opener.drops['bad-tag']).toBe(3);
    expect(opener.accepted).toBe(0);
    rogue.end(true);
  });

  it('drops (and counts) frames for a broker whose socket backs up, instead of buffering without bound', async () => {
    const proxy = await startProxy(aedes.port);
    try {
      const a = link({ self: 1, brokers: [url(proxy.port)], maxBufferedBytes: 100_000 });
      await waitFor('up', () => a.link.connectedCount() === 1);
      proxy.stall();
      const frame = new Uint8Array(60_000);
      for (let i = 0; i < 400 && a.link.stats.droppedBackpressure === 0; i++) {
        a.link.send(2, frame);
        await new Promise((r) => setImmediate(r)); // let the socket flush to the kernel
      }
      expect(a.link.stats.droppedBackpressure).toBeGreaterThan(0);
      const buffered = a.link.socketOf(0)!.writableLength;
      expect(buffered).toBeGreaterThan(100_000);
      expect(buffered).toBeLessThan(100_000 + 2 * 60_100); // bounded: at most a frame past the limit
    } finally {
      await proxy.close();
    }
  });

  it('validates its options and arguments with clear errors', () => {
    expect(() => new MqttLink({ keyring: { current: KEY }, cluster: 70000, self: 1, brokers: ['mqtt://127.0.0.1'] })).toThrow(/cluster must be an integer 0\.\.65535/);
    expect(() => new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 0, brokers: ['mqtt://127.0.0.1'] })).toThrow(/node id must be an integer 1\.\.254/);
    expect(() => new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 1, brokers: [] })).toThrow(/non-empty list/);
    expect(() => new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 1, brokers: ['http://x'] })).toThrow(/expected mqtt: or mqtts:/);
    expect(() => new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 1, brokers: ['nonsense'] })).toThrow(/is not a URL/);
    expect(() => new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 1, brokers: ['mqtt://u:p@h'] })).toThrow(/not in the URL/);
    expect(() => new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 1, brokers: ['mqtt://h'], keepaliveSec: 0 })).toThrow(/keepaliveSec/);
    const l = link({ self: 1, brokers: ['mqtt://127.0.0.1:1'] }).link; // nothing listens on port 1
    expect(() => l.send(255, new Uint8Array(1))).toThrow(/destination.*1\.\.254/);
    expect(() => l.send(2, 'x' as unknown as Uint8Array)).toThrow(/Uint8Array/);
    expect(() => l.publishLeader({ leader: 1, term: -1, token: 1 })).toThrow(/term/);
    l.send(2, new Uint8Array(1)); // not connected: lost, counted, no throw
    expect(l.stats.droppedDisconnected).toBe(1);
  });

  it('publishes a retained leader record that a late observer reads', async () => {
    const a = link({ self: 1, brokers: [url(aedes.port)] });
    await waitFor('up', () => a.link.connectedCount() === 1);
    const acked = await new Promise<Error | null>((r) => a.link.publishLeader({ leader: 1, term: 4, token: 2n ** 60n }, r));
    expect(acked).toBeNull();
    const obs = mqtt.connect(url(aedes.port), { protocolVersion: 4, reconnectPeriod: 0 });
    const got: string[] = [];
    obs.on('message', (_t, p, pkt) => pkt.retain && got.push(p.toString()));
    obs.subscribe(`quorumd/${CLUSTER}/leader`);
    await waitFor('retained leader', () => got.length === 1);
    expect(JSON.parse(got[0]!)).toEqual({ leader: 1, term: 4, token: (2n ** 60n).toString() });
    obs.end(true);
  });
});

describe('presence and peer-gone (aedes)', () => {
  it('a connection destroyed abruptly raises peer-gone at once; the node comes back online', async () => {
    const a = link({ self: 1, brokers: [url(aedes.port)] });
    const b = link({ self: 2, brokers: [url(aedes.port)] });
    await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
    await waitFor('a sees b online', () => a.link.peerState(2) === 'online');
    b.link.socketOf(0)!.destroy(); // like a crash: the kernel closes the socket, no DISCONNECT
    const ms = await waitFor('peer-gone', () => a.events.some((e) => e.kind === 'peer-gone' && e.peer === 2), 3000);
    expect(ms).toBeLessThan(1500); // noticed from the closed socket, not from keepalive
    expect(a.link.stats.peerGone).toBe(1);
    await waitFor('b reconnects (backoff) and is online again', () => a.link.peerState(2) === 'online', 3000);
    expect(b.link.stats.connects).toBe(2);
  });

  it('a silently dead peer (black-holed) is reported gone within 1.5 × keepalive plus margin', async () => {
    const proxy = await startProxy(aedes.port);
    try {
      const a = link({ self: 1, brokers: [url(aedes.port)] });
      const b = link({ self: 2, brokers: [url(proxy.port)], keepaliveSec: 1, reconnect: { initialMs: 5000, maxMs: 5000 } });
      await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
      await waitFor('a sees b online', () => a.link.peerState(2) === 'online');
      proxy.blackhole();
      const ms = await waitFor('peer-gone', () => a.events.some((e) => e.kind === 'peer-gone' && e.peer === 2), 6000);
      // aedes times out at 1.5 × keepalive = 1.5 s (MQTT 3.1.1 §3.1.2.10); not before
      // one keepalive, and well within 1.5 × keepalive plus scheduling slack.
      expect(ms).toBeGreaterThan(900);
      expect(ms).toBeLessThan(4500);
    } finally {
      await proxy.close();
    }
  });

  it('an orderly close is "offline", not peer-gone', async () => {
    const a = link({ self: 1, brokers: [url(aedes.port)] });
    const b = testLink({ self: 2, brokers: [url(aedes.port)] });
    const seen: string[] = [];
    a.link.onPresence((e) => seen.push(`${e.peer}:${e.state}`));
    await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
    await waitFor('a sees b online', () => a.link.peerState(2) === 'online');
    await closeLink(b.link);
    await waitFor('a sees b offline', () => a.link.peerState(2) === 'offline');
    expect(a.events.filter((e) => e.kind === 'peer-gone')).toEqual([]);
    expect(seen).toContain('2:offline');
    expect(seen).not.toContain('2:gone');
  });

  it('does not report old wills replayed from the retained store at subscribe time', async () => {
    const b = testLink({ self: 2, brokers: [url(aedes.port)] });
    await waitFor('b up', () => b.link.connectedCount() === 1);
    b.link.socketOf(0)!.destroy();
    await closeLink(b.link); // the will (crash) stays retained on the broker
    const a = link({ self: 1, brokers: [url(aedes.port)] });
    await waitFor('a up', () => a.link.connectedCount() === 1);
    await waitFor('a learned b from the retained store', () => a.link.peerState(2) !== undefined);
    expect(a.events.filter((e) => e.kind === 'peer-gone')).toEqual([]);
  });
});

describe('several brokers', () => {
  it('a peer that dies holding a connection to each broker is reported gone once (both wills count)', async () => {
    const second = await startBroker({ port: 0, open: true });
    try {
      const brokers = [url(aedes.port), url(second.port)];
      const a = link({ self: 1, brokers });
      // No reconnect within the test: its new connections' presence would race the wills.
      const b = testLink({ self: 2, brokers, reconnect: { initialMs: 60_000, maxMs: 60_000 } });
      await waitFor('both brokers up, b online', () => a.link.connectedCount() === 2 && b.link.connectedCount() === 2 && a.link.peerState(2) === 'online');
      // Its process killed: the kernel closes both sockets, each broker sends its will.
      b.link.socketOf(0)!.destroy();
      b.link.socketOf(1)!.destroy();
      await waitFor('peer-gone 2', () => a.events.some((e) => e.kind === 'peer-gone' && e.peer === 2), 5000);
      expect(a.link.peerState(2)).toBe('gone');
      await closeLink(b.link);
      expect(a.events.filter((e) => e.kind === 'peer-gone')).toEqual([{ kind: 'peer-gone', peer: 2 }]);
      // One connection to each broker at once: neither will is an older connection's.
      expect(a.link.stats.staleWills).toBe(0);
    } finally {
      await Promise.all(open.splice(0).map((t) => closeLink(t.link)));
      await new Promise((r) => second.close(r));
    }
  });

  it('frames flow through the surviving broker when one stops; the opener dedups duplicates', async () => {
    const second = await startBroker({ port: 0, open: true });
    let secondOpen = true;
    try {
      const brokers = [url(aedes.port), url(second.port)];
      const a = link({ self: 1, brokers });
      const b = link({ self: 2, brokers });
      await waitFor('both brokers up', () => a.link.connectedCount() === 2 && b.link.connectedCount() === 2);
      const sealer = new FrameSealer({ cluster: CLUSTER, keyring: { current: KEY }, sender: new Sender(1) });
      const opener = new FrameOpener({ cluster: CLUSTER, keyring: { current: KEY }, self: 2 });
      const accepted: number[] = [];
      b.link.onFrame((f) => {
        b.frames.push(f);
        const r = opener.open(f);
        if (r.ok) accepted.push(r.msg.term);
      });
      a.link.send(2, sealer.seal(hb(1, 2, 1)).frame);
      await waitFor('two copies', () => b.frames.length === 2);
      expect(accepted).toEqual([1]);
      expect(opener.drops.replay).toBe(1);
      await new Promise((r) => second.close(r));
      secondOpen = false;
      await waitFor('second broker seen down', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
      expect(a.events.filter((e) => e.kind === 'down')).toEqual([]); // one broker left: still up
      a.link.send(2, sealer.seal(hb(1, 2, 2)).frame);
      await waitFor('frame through the first broker', () => accepted.includes(2));
      // losing one broker is not a death: no peer-gone while the other still sees the peer
      expect(a.events.filter((e) => e.kind === 'peer-gone')).toEqual([]);
      expect(a.link.peerState(2)).toBe('online');
    } finally {
      if (secondOpen) await new Promise((r) => second.close(r));
    }
  });

  it('reconnects with backoff after a broker restart on the same port and says down/up', async () => {
    const br = await startBroker({ port: 0, open: true });
    const port = br.port;
    const a = link({ self: 1, brokers: [url(port)] });
    const b = link({ self: 2, brokers: [url(port)] });
    await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
    await new Promise((r) => br.close(r));
    await waitFor('down', () => a.events.some((e) => e.kind === 'down'));
    const attemptsBefore = a.link.stats.connectAttempts;
    await waitFor('some failed attempts', () => a.link.status()[0]!.attempts >= 2, 3000);
    const br2 = await startBroker({ port, open: true });
    try {
      await waitFor('up again', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1, 3000);
      expect(a.events.map((e) => e.kind)).toEqual(['up', 'session-lost', 'down', 'up']);
      expect(a.link.stats.connectAttempts).toBeGreaterThan(attemptsBefore);
      // The 'up' after an outage carries the summary the runtime logs once (no line per attempt).
      const back = a.events[3] as { kind: 'up'; outageMs?: number; attempts?: number; lastError?: string };
      expect(back.outageMs).toBeGreaterThan(0);
      expect(back.attempts).toBeGreaterThanOrEqual(2);
      expect(back.lastError).toMatch(/ECONNREFUSED|closed/);
      expect((a.events[0] as { outageMs?: number }).outageMs).toBeUndefined();
      a.link.send(2, new Uint8Array([9]));
      await waitFor('frame after restart', () => b.frames.length === 1);
    } finally {
      await Promise.all(open.splice(0).map((t) => closeLink(t.link)));
      await new Promise((r) => br2.close(r));
    }
  });

  it('default backoff: 100 ms doubling to a 1 s cap, so a node is back within 1 s of its broker and tries at most twice a second', () => {
    const lo = new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 1, brokers: ['mqtt://127.0.0.1:1'], random: () => 0 });
    const hi = new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 2, brokers: ['mqtt://127.0.0.1:1'], random: () => 0.999999 });
    try {
      expect([0, 1, 2, 3, 4, 10, 1000].map((n) => lo.backoffMs(n))).toEqual([50, 100, 200, 400, 500, 500, 500]);
      expect([0, 1, 2, 3, 4, 10, 1000].map((n) => hi.backoffMs(n))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    } finally {
      lo.close();
      hi.close();
    }
  });

  it('backoff doubles, is capped and jittered', () => {
    const l = new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 1, brokers: ['mqtt://127.0.0.1:1'], reconnect: { initialMs: 100, maxMs: 1000 }, random: () => 0 });
    try {
      expect([0, 1, 2, 3, 4, 10].map((n) => l.backoffMs(n))).toEqual([50, 100, 200, 400, 500, 500]);
      const hi = new MqttLink({ keyring: { current: KEY }, cluster: 1, self: 2, brokers: ['mqtt://127.0.0.1:1'], reconnect: { initialMs: 100, maxMs: 1000 }, random: () => 0.999999 });
      expect(hi.backoffMs(0)).toBe(100);
      expect(hi.backoffMs(10)).toBe(1000);
      hi.close();
    } finally {
      l.close();
    }
  });
});

const haveMosquitto = mosquittoAvailable();
describe.skipIf(!haveMosquitto)('MqttLink through mosquitto', () => {
  let mosq: Mosquitto;
  beforeAll(async () => {
    mosq = await startMosquitto();
  });
  afterAll(async () => {
    await mosq?.stop();
  });

  it('round-trips frames between two nodes', async () => {
    await roundTrip(url(mosq.port));
  });

  it('peer-gone when the peer connection dies; none on orderly close', async () => {
    const a = link({ self: 1, brokers: [url(mosq.port)] });
    const b = testLink({ self: 2, brokers: [url(mosq.port)] });
    const c = link({ self: 3, brokers: [url(mosq.port)] });
    await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1 && c.link.connectedCount() === 1);
    await waitFor('a sees b and c', () => a.link.peerState(2) === 'online' && a.link.peerState(3) === 'online');
    c.link.socketOf(0)!.destroy();
    await waitFor('peer-gone 3', () => a.events.some((e) => e.kind === 'peer-gone' && e.peer === 3), 3000);
    await closeLink(b.link);
    await waitFor('b offline', () => a.link.peerState(2) === 'offline');
    expect(a.events.filter((e) => e.kind === 'peer-gone').map((e) => (e as { peer: number }).peer)).toEqual([3]);
  });

  it('survives a mosquitto restart (process killed) with backoff', async () => {
    const m = await startMosquitto();
    const port = m.port;
    const a = link({ self: 1, brokers: [url(port)] });
    const b = link({ self: 2, brokers: [url(port)] });
    let m2: Mosquitto | undefined;
    try {
      await waitFor('up', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1);
      await m.stop();
      await waitFor('down', () => a.events.some((e) => e.kind === 'down'));
      m2 = await startMosquitto(port);
      await waitFor('up again', () => a.link.connectedCount() === 1 && b.link.connectedCount() === 1, 3000);
      b.link.send(1, new Uint8Array([4, 2]));
      await waitFor('frame', () => a.frames.length === 1);
    } finally {
      await Promise.all(open.splice(0).map((t) => closeLink(t.link)));
      await m2?.stop();
    }
  });
});
