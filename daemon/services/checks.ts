/**
 * Health checks of service instances, run by the node that registered them (the
 * registering node is the one next to the service, as a Consul agent is):
 *
 *   http    GET the URL with a timeout: 2xx passing, 429 warning, anything else critical
 *   tcp     a TCP connect with a timeout: connected passing, else critical
 *   script  the program (argv, no shell) with a timeout, killed when it overruns:
 *           exit 0 passing, 1 warning, anything else critical (Consul's convention)
 *   ttl     no probe: the service sends heartbeats (PUT .../pass); none for ttl → critical
 *
 * Each probe's outcome is a health and a short output (the status line, the error,
 * the first bytes of the program's output). Bounded: one probe of an instance at a
 * time, a timeout on each, output truncated.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { CheckDef, Health } from './catalog.ts';

export interface CheckResult {
  health: Health;
  output: string;
}

const MAX_OUTPUT = 300;
const clip = (s: string) => (s.length > MAX_OUTPUT ? `${s.slice(0, MAX_OUTPUT - 1)}…` : s);

export async function probeHttp(url: string, timeoutMs: number): Promise<CheckResult> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await r.body?.cancel().catch(() => undefined);
    const line = `HTTP GET ${url}: ${r.status} ${r.statusText}`;
    if (r.status >= 200 && r.status < 300) return { health: 'passing', output: clip(line) };
    return { health: r.status === 429 ? 'warning' : 'critical', output: clip(line) };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { health: 'critical', output: clip(`HTTP GET ${url}: ${e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message)}`) };
  }
}

export function probeTcp(address: string, timeoutMs: number): Promise<CheckResult> {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(address)!;
  const host = (m[1] ?? m[2])!;
  const port = Number(m[3]);
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve({ health: 'critical', output: `TCP connect ${address}: no answer within ${timeoutMs} ms` });
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve({ health: 'passing', output: `TCP connect ${address}: success` });
    });
    s.once('error', (err) => {
      clearTimeout(t);
      resolve({ health: 'critical', output: clip(`TCP connect ${address}: ${(err as NodeJS.ErrnoException).code ?? err.message}`) });
    });
  });
}

export function probeScript(argv: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<CheckResult> {
  return new Promise((resolve) => {
    let out = '';
    let done = false;
    const finish = (r: CheckResult) => {
      if (done) return;
      done = true;
      resolve({ health: r.health, output: clip(r.output) });
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    } catch (err) {
      return finish({ health: 'critical', output: `${argv[0]}: ${(err as Error).message}` });
    }
    const take = (d: Buffer) => {
      if (out.length < MAX_OUTPUT) out += d.toString('utf8');
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ health: 'critical', output: `${argv[0]}: killed after ${timeoutMs} ms` });
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(t);
      finish({ health: 'critical', output: `${argv[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(t);
      const text = out.trim() || (signal ? `killed by ${signal}` : `exit ${code}`);
      finish({ health: code === 0 ? 'passing' : code === 1 ? 'warning' : 'critical', output: text });
    });
  });
}

/** One probe of a check that probes (http, tcp, script). */
export function probe(check: CheckDef, env: Record<string, string> = {}): Promise<CheckResult> | undefined {
  switch (check.type) {
    case 'http':
      return probeHttp(check.url, check.timeoutMs);
    case 'tcp':
      return probeTcp(check.address, check.timeoutMs);
    case 'script':
      return probeScript(check.argv, check.timeoutMs, env);
    default:
      return undefined;
  }
}
