/**
 * Helpers of the security acceptance tests (test/security): numbers read from real
 * processes (/proc), raw MQTT clients, and the attacks' tools. Every loop is bounded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { call } from '../../daemon/client/http.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `f` every 50 ms until true, at most `ms`; throws naming `what`. */
export async function until(f: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < 100_000; i++) {
    if (await f()) return performance.now() - t0;
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(50);
  }
  throw new Error(`gave up waiting for: ${what}`);
}

/** Resident set size of a process, MiB (VmRSS of /proc/<pid>/status). */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Open file descriptors of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function json(url: string, path: string, token?: string): Promise<Record<string, unknown>> {
  const r = await call(url, 'GET', path, { timeoutMs: 3000, ...(token !== undefined ? { token } : {}) });
  if (r.status !== 200) throw new Error(`${url}${path}: HTTP ${r.status} ${r.body.toString().slice(0, 200)}`);
  return JSON.parse(r.body.toString()) as Record<string, unknown>;
}

/** The highest term any of `urls` reports (unreachable ones skipped). */
export async function maxTerm(urls: string[]): Promise<number> {
  let t = 0;
  for (const u of urls) {
    try {
      t = Math.max(t, (await json(u, '/v1/status')).term as number);
    } catch {
      /* down */
    }
  }
  return t;
}

/** A raw MQTT client: resolves once connected, or with the refusal. */
export async function mqttClient(url: string, o: IClientOptions = {}): Promise<{ c: MqttClient; err?: Error }> {
  const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...o });
  let err: Error | undefined;
  c.on('error', (e) => (err = e));
  await until(() => c.connected || err !== undefined || c.disconnected, 10_000, `MQTT connect to ${url}`);
  return err ? { c, err } : { c };
}

/** Percentile by nearest rank. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
