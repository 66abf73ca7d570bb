/**
 * Helpers for the MQTT link tests: bounded polling, a mosquitto child process on a
 * free 127.0.0.1 port, a TCP proxy that can black-hole a connection, and a throwaway
 * CA + certificates made with the openssl CLI.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { spawnTied } from '../../helpers/tied.ts';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LinkEvent } from '../../../hal/interfaces.ts';
import { MqttLink, type MqttLinkOptions } from '../../../hal/mqtt/link.ts';
import { freePort } from '../../helpers/ports.ts';

/** Polls `pred` every `stepMs` until true; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, pred: () => boolean, timeoutMs = 5000, stepMs = 5): Promise<number> {
  const t0 = performance.now();
  const maxSteps = Math.ceil(timeoutMs / stepMs) + 1;
  for (let i = 0; i < maxSteps; i++) {
    if (pred()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) break;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  if (pred()) return performance.now() - t0;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * `count` connections to 127.0.0.1:`port` that never send a byte (a holder of a
 * server's connection slots); each one the server closes is opened again at once, up to
 * `maxReopens` in all (bounded), until stop(). `localAddress` (another loopback address
 * such as 127.0.0.2) makes them come from another client address.
 */
export class SilentHolder {
  readonly open = new Set<net.Socket>();
  connected = 0;
  reopens = 0;
  private stopped = false;
  constructor(
    private readonly port: number,
    count: number,
    private readonly o: { maxReopens?: number; localAddress?: string } = {},
  ) {
    for (let i = 0; i < count; i++) this.dial();
  }
  private dial(): void {
    const s = net.connect({ host: '127.0.0.1', port: this.port, ...(this.o.localAddress ? { localAddress: this.o.localAddress } : {}) });
    this.open.add(s);
    s.on('connect', () => this.connected++);
    s.on('error', () => {});
    s.resume(); // reads (and drops) what the server sends, so that its close is seen
    s.on('close', () => {
      this.open.delete(s);
      if (this.stopped || this.reopens >= (this.o.maxReopens ?? 50_000)) return;
      this.reopens++;
      this.dial();
    });
  }
  stop(): void {
    this.stopped = true;
    for (const s of this.open) s.destroy();
    this.open.clear();
  }
}

/** Free ports come from one helper: below the ephemeral range (see test/helpers/ports.ts). */
export { freePort };

export const MOSQUITTO = '/usr/sbin/mosquitto';

/** Whether mosquitto tests run; when CI is set a missing binary is a failure, not a skip. */
export function mosquittoAvailable(): boolean {
  if (existsSync(MOSQUITTO)) return true;
  if (process.env.CI) throw new Error(`${MOSQUITTO} is missing but CI is set: install the mosquitto package`);
  console.warn(`skipping mosquitto tests: ${MOSQUITTO} not found (apt install mosquitto)`);
  return false;
}

export interface Mosquitto {
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts mosquitto with a generated config, listening on 127.0.0.1 only; waits until it accepts TCP. */
export async function startMosquitto(port?: number): Promise<Mosquitto> {
  const p = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-mosq-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${p} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest none', ''].join('\n'));
  const proc = spawnTied(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  proc.on('exit', () => (exited = true));
  let ok = false;
  for (let i = 0; i < 200 && !ok && !exited; i++) {
    ok = await new Promise<boolean>((resolve) => {
      const s = net.createConnection({ host: '127.0.0.1', port: p });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (!ok) await new Promise((r) => setTimeout(r, 10));
  }
  if (!ok) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mosquitto did not start on port ${p}: ${stderr}`);
  }
  return {
    port: p,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (exited) return done();
        proc.once('exit', done);
        proc.kill('SIGKILL');
      }),
  };
}

/** The cluster key of testLink() links (presence is signed with it). */
export const TEST_LINK_KEY = new Uint8Array(32).fill(0x5a);

/** A link with fast test timings and recorded events/frames. */
export interface TestLink {
  link: MqttLink;
  frames: Uint8Array[];
  events: LinkEvent[];
}

export function testLink(opts: Partial<MqttLinkOptions> & Pick<MqttLinkOptions, 'self' | 'brokers'>): TestLink {
  const link = new MqttLink({
    cluster: 7,
    keyring: { current: TEST_LINK_KEY },
    keepaliveSec: 1,
    connectTimeoutMs: 2000,
    reconnect: { initialMs: 20, maxMs: 200 },
    ...opts,
  });
  const t: TestLink = { link, frames: [], events: [] };
  link.onFrame((f) => t.frames.push(Uint8Array.from(f)));
  link.onEvent((e) => t.events.push(e));
  return t;
}

export function closeLink(l: MqttLink): Promise<void> {
  return new Promise((resolve, reject) => l.close((err) => (err ? reject(err) : resolve())));
}

/**
 * A TCP proxy between a client and a broker. `blackhole()` stops forwarding in both
 * directions without closing anything: to the broker the client looks silently dead
 * (power cut, cable pulled), so only its keepalive timeout can notice.
 */
export interface Proxy {
  port: number;
  blackhole(): void;
  /** Stops reading from the clients: their sends back up (TCP flow control). */
  stall(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const pairs: Array<[net.Socket, net.Socket]> = [];
  let holed = false;
  const server = net.createServer({ noDelay: true }, (c) => {
    const u = net.createConnection({ host: '127.0.0.1', port: targetPort, noDelay: true });
    pairs.push([c, u]);
    c.on('data', (d) => {
      if (!holed) u.write(d);
    });
    u.on('data', (d) => {
      if (!holed) c.write(d);
    });
    const end = () => {
      if (holed) return; // a silent death: do not propagate FIN/RST
      c.destroy();
      u.destroy();
    };
    c.on('close', end);
    u.on('close', end);
    c.on('error', () => {});
    u.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    blackhole: () => {
      holed = true;
    },
    stall: () => {
      for (const [c] of pairs) c.pause();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

export interface Certs {
  dir: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  cleanup(): void;
}

/** A self-signed CA, a server certificate for 127.0.0.1 and a client certificate, via the openssl CLI. */
export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-tls-'));
  const o = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  o('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=quorumd test CA');
  for (const name of ['server', 'client']) {
    o('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`,
      '-subj', `/CN=quorumd test ${name}`);
    writeFileSync(join(dir, `${name}.ext`), name === 'server'
      ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
      : 'extendedKeyUsage=clientAuth\n');
    o('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`,
      '-days', '2', '-extfile', `${name}.ext`);
  }
  const r = (f: string) => readFileSync(join(dir, f));
  return {
    dir,
    ca: r('ca.pem'),
    serverCert: r('server.pem'),
    serverKey: r('server.key'),
    clientCert: r('client.pem'),
    clientKey: r('client.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
