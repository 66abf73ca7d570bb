/**
 * The broker's connection bound per client address under a holder of silent sockets
 * (no credentials, same address as the nodes: every local user in `quorumd dev`), with
 * real sockets on 127.0.0.1: a node still gets in, and authenticated connections are
 * never closed to make room. And failed logins: refused a second late, and said.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { makeCerts, SilentHolder, waitFor } from './helpers.ts';

const users = [
  { username: 'n1', password: 'secret-one', nodeId: 1 },
  { username: 'n2', password: 'secret-two', nodeId: 2 },
];

let br: RunningBroker | undefined;
const holders: SilentHolder[] = [];
const clients: MqttClient[] = [];
afterEach(async () => {
  for (const h of holders.splice(0)) h.stop();
  for (const c of clients.splice(0)) c.end(true);
  if (br) await new Promise((r) => br!.close(r));
  br = undefined;
});

/** A node's client, one attempt (no reconnect): resolves connected, or with why not. */
async function node(port: number, username: string, password: string): Promise<{ c: MqttClient; closes: () => number; err?: string }> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, username, password, clientId: `${username}-${Math.random().toString(16).slice(2)}` });
  clients.push(c);
  let closes = 0;
  let err: string | undefined;
  c.on('error', (e) => (err = e.message));
  c.on('close', () => closes++);
  await waitFor(`${username} connected or closed`, () => c.connected || closes > 0 || err !== undefined, 8000);
  return { c, closes: () => closes, ...(c.connected ? {} : { err: err ?? 'closed before CONNACK' }) };
}

/** Publishes from `a` to a topic `b` subscribed to; resolves when `b` has it. */
async function roundTrip(a: MqttClient, b: MqttClient, topic: string): Promise<void> {
  let got = false;
  b.on('message', (t) => {
    if (t === topic) got = true;
  });
  await new Promise<void>((resolve, reject) => b.subscribe(topic, { qos: 0 }, (e) => (e ? reject(e) : resolve())));
  a.publish(topic, 'x');
  await waitFor(`a message on ${topic}`, () => got);
}

describe('broker connections per address', () => {
  it('a node gets in while its address is full of silent sockets that are reopened as soon as they close', async () => {
    const lines: string[] = [];
    br = await startBroker({ port: 0, users, log: (l) => lines.push(l) }); // default bound: 64 per address
    const h = new SilentHolder(br.port, 64);
    holders.push(h);
    await waitFor('64 silent sockets connected', () => h.connected >= 64);
    const n1 = await node(br.port, 'n1', 'secret-one');
    expect(n1.err).toBeUndefined();
    const n2 = await node(br.port, 'n2', 'secret-two');
    expect(n2.err).toBeUndefined();
    await roundTrip(n1.c, n2.c, 'quorumd/1/leader');
    expect(br.stats.evictedConnections).toBeGreaterThanOrEqual(2);
    expect(h.reopens).toBeGreaterThanOrEqual(2); // the holder did reopen what was closed
    expect(n1.closes() + n2.closes()).toBe(0);
    // Said once at once (more only as a summary per 10 s), naming the address.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/1 connection\(s\) closed before their CONNECT .* from 127\.0\.0\.1: something holds connections/);
  });

  it('never closes an authenticated connection to make room; at the bound with all authenticated a newcomer is refused', async () => {
    br = await startBroker({ port: 0, users, maxConnectionsPerAddress: 4 });
    const first = [await node(br.port, 'n1', 'secret-one'), await node(br.port, 'n2', 'secret-two'), await node(br.port, 'n1', 'secret-one')];
    for (const f of first) expect(f.err).toBeUndefined();
    // The one slot left is fought over by silent sockets, each closed one reopened at
    // once: every newcomer closes the one before it, never an authenticated connection.
    const h = new SilentHolder(br.port, 4);
    holders.push(h);
    await waitFor('200 silent sockets closed for newer ones', () => br!.stats.evictedConnections >= 200);
    h.stop();
    for (const f of first) {
      expect(f.closes()).toBe(0);
      expect(f.c.connected).toBe(true);
    }
    await roundTrip(first[0]!.c, first[1]!.c, 'quorumd/1/leader');
    // With every slot authenticated, a newcomer is refused and nobody is closed for it.
    const fourth = await node(br.port, 'n2', 'secret-two');
    expect(fourth.err).toBeUndefined();
    const refused = br.stats.refusedConnections;
    const fifth = await node(br.port, 'n1', 'secret-one');
    expect(fifth.err).toBeDefined();
    expect(br.stats.refusedConnections).toBe(refused + 1);
    for (const f of [...first, fourth]) {
      expect(f.closes()).toBe(0);
      expect(f.c.connected).toBe(true);
    }
  });

  it('closes a socket that sends no CONNECT within connectTimeoutMs, and validates its bounds', async () => {
    br = await startBroker({ port: 0, users, connectTimeoutMs: 200 });
    const s = net.connect({ host: '127.0.0.1', port: br.port });
    let closed = false;
    s.on('error', () => {});
    s.on('close', () => (closed = true));
    const ms = await waitFor('the silent socket closed', () => closed, 3000);
    expect(ms).toBeGreaterThanOrEqual(100);
    // Under TLS the handshake, before any CONNECT, gets the same time (Node's default: 120 s).
    const certs = makeCerts();
    try {
      const tb = await startBroker({ port: 0, users, connectTimeoutMs: 200, tls: { cert: certs.serverCert, key: certs.serverKey } });
      try {
        const t = net.connect({ host: '127.0.0.1', port: tb.port });
        let tclosed = false;
        t.on('error', () => {});
        t.on('close', () => (tclosed = true));
        await waitFor('the silent socket closed in its TLS handshake', () => tclosed, 3000);
      } finally {
        await new Promise((r) => tb.close(r));
      }
    } finally {
      certs.cleanup();
    }
    await expect(startBroker({ port: 0, users, connectTimeoutMs: 0 })).rejects.toThrow(/connectTimeoutMs must be an integer 100\.\.600000/);
    await expect(startBroker({ port: 0, users, maxConnectionsPerAddress: 0 })).rejects.toThrow(/maxConnectionsPerAddress must be an integer >= 1/);
    await expect(startBroker({ port: 0, users, log: 'stderr' as unknown as () => void })).rejects.toThrow(/log must be a function/);
  });
});

describe('failed broker logins', () => {
  it('are answered a second late, on every connection at once, and said in the log; good credentials are not held up', async () => {
    const lines: string[] = [];
    br = await startBroker({ port: 0, users, log: (l) => lines.push(l) });
    const t0 = performance.now();
    // 20 guesses side by side, each on its own connection (as a guesser would parallelize).
    const guesses = await Promise.all(Array.from({ length: 20 }, (_, i) => node(br!.port, 'n1', `guess-${i}`).then((r) => ({ ...r, at: performance.now() - t0 }))));
    for (const g of guesses) {
      expect(g.err).toMatch(/Bad username or password/);
      expect(g.at).toBeGreaterThanOrEqual(950);
    }
    expect(br.stats.refusedLogins).toBe(20);
    // Said at once for the first, the rest in the summary 10 s later (not waited for here).
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^broker: 1 failed login\(s\), from 127\.0\.0\.1: bad username or password/);
    // Meanwhile a node with its password connects (no delay is added to a good login).
    const n1 = await node(br.port, 'n1', 'secret-one');
    expect(n1.err).toBeUndefined();
  });
});
