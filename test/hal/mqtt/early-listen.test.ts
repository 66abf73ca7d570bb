/**
 * A broker port bound before the broker (hal/mqtt/early-listen.ts, as `quorumd dev` does):
 * a client that connects while nobody serves the port yet is served once the broker
 * takes it over, as are later ones; a client gone meanwhile is dropped; closing without a
 * broker frees the port.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { listenEarly, type EarlyListener } from '../../../hal/mqtt/early-listen.ts';
import { waitFor } from './helpers.ts';

const clients: MqttClient[] = [];
let broker: RunningBroker | undefined;
let early: EarlyListener | undefined;
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  if (broker) await new Promise<void>((r) => broker!.close(() => r()));
  else early?.close();
  broker = undefined;
  early = undefined;
});

function connect(port: number): MqttClient {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000 });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

describe('a broker port bound early', () => {
  it('a client that connected before the broker existed is served once it starts, and so is a later one', async () => {
    early = await listenEarly('127.0.0.1', 0);
    let accepted = 0;
    early.server.on('connection', () => accepted++);
    const first = connect(early.port);
    // Its TCP connection is accepted and waits: no CONNACK while nobody serves the port.
    await waitFor('the first connection accepted', () => accepted > 0, 10_000);
    expect(first.connected).toBe(false);
    broker = await startBroker({ listening: early, open: true });
    expect(broker.port).toBe(early.port);
    await waitFor('the early client connected', () => first.connected, 10_000);
    const later = connect(early.port);
    await waitFor('the later client connected', () => later.connected, 10_000);
    // And they talk through it.
    const got: string[] = [];
    later.on('message', (_t, m) => got.push(m.toString()));
    await new Promise<void>((res, rej) => later.subscribe('t', (e) => (e ? rej(e) : res())));
    first.publish('t', 'hello');
    await waitFor('the message through the broker', () => got.length > 0, 10_000);
    expect(got).toEqual(['hello']);
  });

  it('take() hands over the connections that still wait, not those closed meanwhile', async () => {
    early = await listenEarly('127.0.0.1', 0);
    let open = 0;
    early.server.on('connection', (sock: net.Socket) => {
      open++;
      sock.once('close', () => open--);
    });
    const gone = net.connect(early.port, '127.0.0.1');
    const stays = net.connect(early.port, '127.0.0.1');
    stays.on('error', () => {});
    await waitFor('both connections accepted', () => open === 2, 10_000);
    gone.destroy();
    await waitFor('the close of one seen by the server', () => open === 1, 10_000);
    const handed: net.Socket[] = [];
    early.take((sock) => handed.push(sock));
    expect(handed.length).toBe(1);
    expect(handed[0]!.destroyed).toBe(false);
    // Later connections go straight to the handler.
    const later = net.connect(early.port, '127.0.0.1');
    later.on('error', () => {});
    await waitFor('a later connection handed over', () => handed.length === 2, 10_000);
    for (const x of [stays, later, ...handed]) x.destroy();
  });

  it('closed without a broker, the port is free again; take() works once', async () => {
    early = await listenEarly('127.0.0.1', 0);
    const port = early.port;
    early.take(() => {});
    expect(() => early!.take(() => {})).toThrow(/already taken/);
    early.close();
    early = undefined;
    const again = await listenEarly('127.0.0.1', port);
    again.close();
  });

  it('an early port alone does not keep a process alive (a caller that fails before the broker starts exits)', () => {
    const root = join(import.meta.dirname, '..', '..', '..');
    const script = `import { listenEarly } from ${JSON.stringify(join(root, 'hal/mqtt/early-listen.ts'))}; const e = await listenEarly('127.0.0.1', 0); process.stdout.write(String(e.port));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.error).toBeUndefined(); // not killed by the timeout
    expect(r.status).toBe(0);
    expect(Number(r.stdout)).toBeGreaterThan(0);
  });

  it('a TLS broker refuses an early plain port', async () => {
    early = await listenEarly('127.0.0.1', 0);
    await expect(startBroker({ listening: early, open: true, tls: { cert: 'x', key: 'y' } })).rejects.toThrow(/plain TCP/);
  });
});
