/**
 * A disk that fails under a running node (an SD card at the end of its life): its fsync
 * returns EIO. The node must not acknowledge the write, must stop (exit 70, for its
 * supervisor), and must tell the operator what failed and what it means. Found by hand
 * (strace injecting EIO into a follower of `quorumd dev`): the node stopped as it
 * should, but its log said `fsync wal-…log: EIO EIO: i/o error, fdatasync` and nothing
 * about the disk. The failure is injected for real with strace (skipped where strace is
 * missing or may not trace).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { devConfig } from '../../daemon/dev.ts';
import { ensureTokenFile } from '../../daemon/config/secrets.ts';
import { call } from '../../daemon/client/http.ts';
import { EXIT } from '../../daemon/exit-codes.ts';
import { freeBasePort } from '../helpers/ports.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');
const dir = mkdtempSync(join(tmpdir(), 'quorumd-eio-'));
const children: ChildProcess[] = [];
let broker: RunningBroker | undefined;
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (broker) await new Promise<void>((r) => broker!.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

/**
 * strace is installed and may attach to a process it did not start (the node is our
 * child, not strace's: Yama's ptrace_scope 1 refuses that to a user without
 * CAP_SYS_PTRACE). Tried on a short-lived sibling: strace exits 0 once it ends.
 */
function canAttach(): boolean {
  const sib = spawn('sleep', ['0.5'], { stdio: 'ignore' });
  try {
    return spawnSync('strace', ['-qq', '-e', 'trace=none', '-p', String(sib.pid)], { timeout: 10_000, stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  } finally {
    sib.kill('SIGKILL');
  }
}
const canTrace = canAttach();

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, maxMs: number): Promise<T> {
  const end = performance.now() + maxMs;
  for (let i = 0; i < 10_000; i++) {
    const v = await Promise.resolve().then(fn).catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > end) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('quorumd start on a disk whose fsync fails (EIO)', () => {
  it.skipIf(!canTrace)('refuses the write, says the disk may be failing, exits 70', async () => {
    const key = randomBytes(32);
    broker = await startBroker({ port: 0, clusterKeys: [{ cluster: 1, keys: [key] }] });
    const keyFile = join(dir, 'cluster.key');
    const tokenFile = join(dir, 'api.token');
    const { token } = ensureTokenFile(tokenFile, 'test token');
    writeFileSync(keyFile, `${key.toString('hex')}\n`, { mode: 0o600 });
    const base = await freeBasePort(1);
    const cfg = join(dir, 'n1.yaml');
    writeFileSync(cfg, devConfig({ k: 1, n: 1, keyFile, tokenFile, brokerUrl: `mqtt://127.0.0.1:${broker.port}`, basePort: base, dir, jobs: [] }));
    const child = spawnTied(process.execPath, [bin, 'start', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const out: string[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const url = `http://127.0.0.1:${base + 1}`;
    await until('n1 leading', async () => {
      const r = await call(url, 'GET', '/v1/leader', { timeoutMs: 1000, token });
      return r.status === 200 && JSON.parse(r.body.toString()).leader ? true : undefined;
    }, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${out.join('').slice(-2000)}`);
    });
    expect((await call(url, 'PUT', '/v1/kv/before', { body: 'ok', timeoutMs: 10_000, token })).status).toBe(200);
    // Every fdatasync of the node fails from now on.
    const tracer = spawnTied('strace', ['-f', '-qq', '-p', String(child.pid), '-e', 'trace=fdatasync,fsync', '-e', 'inject=fdatasync,fsync:error=EIO', '-o', '/dev/null'], { stdio: 'ignore' });
    children.push(tracer);
    await until('strace attached', () => (/^TracerPid:\s+[1-9]/m.test(readFileSync(`/proc/${child.pid}/status`, 'utf8')) ? true : undefined), 30_000);
    const put = await call(url, 'PUT', '/v1/kv/after', { body: 'lost', timeoutMs: 30_000, token });
    const code = await Promise.race([exit, new Promise<string>((r) => setTimeout(() => r('no exit within 60 s'), 60_000))]);
    tracer.kill('SIGINT');
    const log = out.join('');
    expect(code, log.slice(-3000)).toBe(EXIT.FATAL);
    // Not acknowledged: answered with the fatal error (or the connection closed by the exit).
    expect(put.status, put.body.toString()).not.toBe(200);
    const fatal = log.split('\n').find((l) => l.includes('node stopped on a fatal error'));
    expect(fatal, log.slice(-3000)).toBeDefined();
    expect(fatal).toMatch(/storage I\/O failed: fsync wal-\d+\.log: EIO: i\/o error, fdatasync/);
    expect(fatal).not.toMatch(/EIO EIO/);
    expect(fatal).toContain('the storage device reported an I/O error: the SD card or disk may be failing, see the kernel log (dmesg)');
    expect(JSON.parse(fatal!).dataDir).toBe(join(dir, 'n1'));
  }, 150_000);
});
