/**
 * Round-trip latency of the MQTT link (node 1 → broker → node 2 → broker → node 1,
 * two QoS 0 PUBLISHes) through the embedded aedes broker and through mosquitto, plus
 * a QoS 1 publish→PUBACK + echo round trip with and without TCP_NODELAY, which shows why the
 * link sets it. Run: `npx tsx bench/mqtt-rtt.ts [rounds]` (default 500).
 */
import net from 'node:net';
import { MqttClient } from 'mqtt';
import { startBroker } from '../hal/mqtt/broker.ts';
import { MqttLink } from '../hal/mqtt/link.ts';
import { mosquittoAvailable, startMosquitto, waitFor } from '../test/hal/mqtt/helpers.ts';

const rounds = Number(process.argv[2] ?? 500);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const fmt = (xs: number[]) => `p50=${pct(xs, 50).toFixed(3)} ms p99=${pct(xs, 99).toFixed(3)} ms max=${pct(xs, 100).toFixed(3)} ms`;

async function linkRtt(url: string): Promise<number[]> {
  const mk = (self: number) => new MqttLink({ cluster: 1, self, brokers: [url], keepaliveSec: 5, keyring: { current: new Uint8Array(32).fill(7) } });
  const a = mk(1);
  const b = mk(2);
  await waitFor('links up', () => a.connectedCount() === 1 && b.connectedCount() === 1);
  b.onFrame((f) => b.send(1, f));
  const out: number[] = [];
  const frame = new Uint8Array(32); // an idle heartbeat's size (DESIGN §2)
  for (let i = 0; i < rounds + 20; i++) {
    const t0 = performance.now();
    const back = new Promise<void>((r) => a.onFrame(() => r()));
    a.send(2, frame);
    await Promise.race([back, new Promise((r) => setTimeout(r, 1000))]);
    if (i >= 20) out.push(performance.now() - t0); // first 20 warm up
  }
  await new Promise((r) => a.close(r));
  await new Promise((r) => b.close(r));
  return out;
}

async function qos1Rtt(port: number, noDelay: boolean): Promise<number[]> {
  const c = new MqttClient(() => net.createConnection({ host: '127.0.0.1', port, noDelay }), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    clientId: `bench-${noDelay}`,
  });
  await waitFor('connected', () => c.connected);
  // Subscribed to its own topic: the broker answers each PUBLISH with a PUBACK and a
  // PUBLISH back (two small writes), the client then PUBACKs: the pattern Nagle stalls.
  await new Promise<void>((r) => c.subscribe('bench/q1', { qos: 1 }, () => r()));
  let got: (() => void) | undefined;
  c.on('message', () => got?.());
  const out: number[] = [];
  const n = Math.min(rounds, 100); // each may stall ~40–90 ms without noDelay
  for (let i = 0; i < n + 5; i++) {
    const t0 = performance.now();
    const echo = new Promise<void>((r) => (got = r));
    await new Promise<void>((r) => c.publish('bench/q1', Buffer.alloc(32), { qos: 1 }, () => r()));
    await Promise.race([echo, new Promise((r) => setTimeout(r, 1000))]);
    if (i >= 5) out.push(performance.now() - t0);
  }
  c.end(true);
  return out;
}

const aedes = await startBroker({ port: 0, open: true });
console.log(`rounds=${rounds}`);
console.log(`aedes     link RTT (2 × QoS 0): ${fmt(await linkRtt(`mqtt://127.0.0.1:${aedes.port}`))}`);
console.log(`aedes     QoS1 echo   noDelay=on : ${fmt(await qos1Rtt(aedes.port, true))}`);
console.log(`aedes     QoS1 echo   noDelay=off: ${fmt(await qos1Rtt(aedes.port, false))}`);
await new Promise((r) => aedes.close(r));
if (mosquittoAvailable()) {
  const m = await startMosquitto();
  console.log(`mosquitto link RTT (2 × QoS 0): ${fmt(await linkRtt(`mqtt://127.0.0.1:${m.port}`))}`);
  console.log(`mosquitto QoS1 echo   noDelay=on : ${fmt(await qos1Rtt(m.port, true))}`);
  console.log(`mosquitto QoS1 echo   noDelay=off: ${fmt(await qos1Rtt(m.port, false))}`);
  await m.stop();
}
