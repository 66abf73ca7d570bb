/**
 * `quorumd dev` whose start fails after it has started something (the broker's port,
 * the simulated relays' server) ends with the error: it does not stay up, and a temp
 * dir of its own is not left behind. Found by hand: a node config that could not be
 * written printed its error and then hung for good, the relays' server still listening.
 */
import { spawnTied } from '../helpers/tied.ts';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from './e2e/proc-cluster.ts';
import { freeBasePort } from '../helpers/ports.ts';

const root = mkdtempSync(join(tmpdir(), 'quorumd-dev-startfail-'));
const started: ReturnType<typeof spawnTied>[] = [];

afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** Runs `quorumd dev ...args`; resolves with its exit and output, or with `hung` once `maxMs` passed (then kills it). */
function runDev(args: string[], env: NodeJS.ProcessEnv, maxMs: number): Promise<{ code: number | null; hung: boolean; err: string }> {
  const dev = spawnTied(process.execPath, [bin, 'dev', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  started.push(dev);
  let err = '';
  let errEnded = false;
  dev.stdout!.resume();
  dev.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  dev.stderr!.on('end', () => (errEnded = true));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      dev.kill('SIGKILL');
      resolve({ code: null, hung: true, err });
    }, maxMs);
    // 'exit' may come before the last of stderr is read: wait for its end too, but not for
    // 'close' (a node child still holding the pipe would make an exited dev look hung),
    // and at most 5 s.
    dev.on('exit', (code) => {
      clearTimeout(timer);
      if (errEnded) return resolve({ code, hung: false, err });
      const cap = setTimeout(() => resolve({ code, hung: false, err }), 5000);
      dev.stderr!.once('end', () => {
        clearTimeout(cap);
        resolve({ code, hung: false, err });
      });
    });
  });
}

describe('quorumd dev: a start that fails half-way', () => {
  it('a node config it cannot write: the error, then the process ends (the relays\' server is closed)', async () => {
    const data = join(root, 'data');
    mkdirSync(join(data, 'n1.yaml'), { recursive: true }); // a directory where n1's config goes
    const base = await freeBasePort(3);
    // 60 s: a start on a loaded machine takes a few; a hang never ends.
    const r = await runDev(['--base-port', String(base), '--data-dir', data], {}, 60_000);
    expect(r.hung, `dev did not exit after its error:\n${r.err}`).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/EISDIR.*n1\.yaml/);
  }, 90_000);

  it('a broker port in use: the error, and its own temp dir is removed', async () => {
    const tmp = join(root, 'tmp');
    mkdirSync(tmp);
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const base = await freeBasePort(3);
      const r = await runDev(['--base-port', String(base), '--broker-port', String(port)], { TMPDIR: tmp }, 60_000);
      expect(r.hung, `dev did not exit after its error:\n${r.err}`).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(new RegExp(`EADDRINUSE.*${port}`));
      expect(readdirSync(tmp).filter((f) => f.startsWith('quorumd-dev-'))).toEqual([]);
    } finally {
      busy.close();
    }
  }, 90_000);
});
