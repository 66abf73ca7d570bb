/**
 * The one fatal path on a real process (issue 12): an exception thrown by the engine
 * inside a timer or a link callback is logged with its stack, the request still waiting
 * is answered (503 naming the fatal error, not a dropped connection), the links close
 * and `quorumd start` exits 70 (EXIT.FATAL) — instead of Node's exit 1 from inside an
 * MQTT handler. The exception is injected with QUORUMD_INJECT_FAULT (daemon/start.ts),
 * armed by SIGUSR2 once the node leads, so that the test decides when it happens.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
const dir = mkdtempSync(join(tmpdir(), 'quorumd-fatal-'));
let broker: RunningBroker | undefined;
const children: ChildProcess[] = [];
/** One cluster key for the one broker of both cases. */
const key = randomBytes(32);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (broker) await new Promise<void>((r) => broker!.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, fn: () => Promise<T | undefined>, maxMs: number): Promise<T> {
  const end = performance.now() + maxMs;
  for (let i = 0; i < 10_000; i++) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > end) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('fatal path of quorumd start', () => {
  for (const kind of ['engine-tick', 'engine-step', 'uncaught'] as const) {
    it(`${kind}: stack in the log, the pending request answered 503, links closed, exit 70`, async () => {
      broker ??= await startBroker({ port: 0, clusterKeys: [{ cluster: 1, keys: [key] }] });
      const sub = join(dir, kind);
      const keyFile = join(sub, 'cluster.key');
      const tokenFile = join(sub, 'api.token');
      const { token } = ensureTokenFile(tokenFile, 'test token');
      writeFileSync(keyFile, `${key.toString('hex')}\n`, { mode: 0o600 });
      // engine-tick: one member alone leads and ticks. engine-step: a second member sends
      // n1 messages (the link-callback entry point, where issue 12's RangeError escaped).
      const n = kind === 'engine-step' ? 2 : 1;
      const base = await freeBasePort(n);
      const procs: Array<{ child: ChildProcess; out: string[]; exit: Promise<number | null> }> = [];
      for (let k = 1; k <= n; k++) {
        const cfg = join(sub, `n${k}.yaml`);
        writeFileSync(cfg, devConfig({ k, n, keyFile, tokenFile, brokerUrl: `mqtt://127.0.0.1:${broker.port}`, basePort: base, dir: sub, jobs: [] }));
        const child = spawnTied(process.execPath, [bin, 'start', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(k === 1 ? { QUORUMD_INJECT_FAULT: `${kind}@SIGUSR2` } : {}) } });
        children.push(child);
        const out: string[] = [];
        child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
        child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
        procs.push({ child, out, exit: new Promise((r) => child.once('exit', (code) => r(code))) });
      }
      const url = `http://127.0.0.1:${base + 1}`;
      // n1 is up and a leader is known (itself, or n2).
      await until('a leader', async () => {
        const r = await call(url, 'GET', '/v1/leader', { timeoutMs: 1000, token });
        return r.status === 200 && JSON.parse(r.body.toString()).leader ? true : undefined;
      }, 60_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${procs.map((p, i) => `n${i + 1}: ${p.out.join('').slice(-1500)}`).join('\n')}`);
      });
      // A request that waits (a watch for an index far ahead): pending when the fault comes.
      const watch = call(url, 'GET', '/v1/kv/never?watch=1000000&wait=60s', { timeoutMs: 90_000, token });
      await new Promise((r) => setTimeout(r, 300));
      procs[0]!.child.kill('SIGUSR2');
      const code = await Promise.race([procs[0]!.exit, new Promise<string>((r) => setTimeout(() => r('no exit within 60 s'), 60_000))]);
      const res = await watch;
      const log = procs[0]!.out.join('');
      expect(code, log.slice(-3000)).toBe(EXIT.FATAL);
      expect(res.status).toBe(503);
      if (kind === 'uncaught') {
        // Not Node's default (print, exit 1): the fatal path, with the thrower's stack.
        expect(res.body.toString()).toMatch(/stopped on a fatal error.*internal error in an event handler outside the engine: RangeError: injected fault/);
        expect(log).toContain('fatal: uncaught exception outside the engine; node stops so that the supervisor restarts it');
        expect(log).toMatch(/"stack":"RangeError: injected fault: an uncaught exception[^"]*\\n\s+at /);
      } else {
        expect(res.body.toString()).toMatch(/stopped on a fatal error.*internal error in engine raft (tick|step \w+)/);
        // The stack is in the log (pino JSON: "stack":"InternalError: ...\n    at ...").
        expect(log).toMatch(/"stack":"InternalError: internal error in engine raft (tick|step \w+ from n\d+): Error: injected fault: RaftNode\.(tick|step) throws[^"]*\\n\s+at /);
      }
      expect(log).toContain('node stopped on a fatal error; exiting so that the supervisor restarts it');
      // Its frames name the TypeScript sources (bin/stack-maps.js, through the map of the
      // node's bundle dist/node.cjs), not the bundle.
      expect(log).toMatch(/"stack":"[^"]*\\n\s+at [^"]*\/(daemon|src|hal)\/[\w/-]+\.ts:\d+:\d+/);
      expect(log).not.toMatch(/dist\/node\.cjs:\d+/);
      if (n === 2) {
        // n1 closed its link (an orderly "offline"): n2 hears at once that n1 is gone.
        await until('n2 hearing that n1 is gone', async () => (/"msg":"peer gone"[^\n]*|"peer":1[^\n]*"msg":"peer gone"/.test(procs[1]!.out.join('')) ? true : undefined), 20_000);
      }
      for (const p of procs.slice(1)) p.child.kill('SIGTERM');
      await Promise.all(procs.slice(1).map((p) => p.exit));
    }, 150_000);
  }
});
