/**
 * SIGHUP to `quorumd dev`: the terminal it ran in went away (an SSH session dropped, a
 * window closed). Node's default ended the supervisor on the spot, its nodes left to
 * notice it gone and its data left behind. It stops as on Ctrl-C: exit 0, every node
 * stopped by it (SIGTERM: the leader hands over first), none left running; further
 * signals during that stop change nothing.
 *
 * The same real cluster also serves two CLI checks against live nodes: a `--node`
 * list whose first URL is a port where nothing listens reaches the second node, for a
 * write and a read; and `quorumd status` shows the version each node runs.
 */
import { spawnTied } from '../helpers/tied.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from './e2e/proc-cluster.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { processesUsing } from '../helpers/procs.ts';
import { until } from '../helpers/until.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorumd-dev-sighup-'));
const leftovers = new Set<number>();

afterAll(() => {
  for (const p of [...leftovers, ...processesUsing(dir)]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** The real CLI as a user runs it. */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawnTied(process.execPath, [bin, ...args], { env: { ...process.env, QUORUMD_API_TOKEN: '', QUORUMD_API_TOKEN_FILE: join(dir, 'api.token') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

describe('quorumd dev and SIGHUP', () => {
  it('a --node list whose first URL is closed reaches the live node; SIGHUP stops dev as Ctrl-C does', async () => {
    const base = await freeBasePort(3);
    const dev = spawnTied(process.execPath, [bin, 'dev', '--nodes', '3', '--no-jobs', '--base-port', String(base), '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    dev.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => dev.once('exit', (code, signal) => r({ code, signal })));
    const leader = await until('the guide', () => /running, leader (n\d)/.exec(out)?.[1], 90_000, 50);
    const nodes = processesUsing(dir).filter((x) => x !== dev.pid);
    nodes.forEach((p) => leftovers.add(p));
    expect(nodes.length).toBeGreaterThanOrEqual(3);

    // Port 1: nothing listens there (tcpmux); the connection is refused, nothing was sent.
    const list = (k: number) => `http://127.0.0.1:1,http://127.0.0.1:${base + k}`;
    const put = await cli(['kv', 'put', 'sighup-key', 'v1', '--node', list(1)]);
    expect(put, put.err).toMatchObject({ code: 0, out: expect.stringMatching(/^index=\d+\n$/) });
    const get = await cli(['kv', 'get', 'sighup-key', '--node', list(2)]);
    expect(get, get.err).toMatchObject({ code: 0, out: 'v1' });

    // Every node says which quorumd it runs: this checkout's version, in the last column.
    const version = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
    const st = await cli(['status', '--node', [1, 2, 3].map((k) => `http://127.0.0.1:${base + k}`).join(',')]);
    expect(st.code, st.out + st.err).toBe(0);
    const rows = st.out.split('\n').filter((l) => /^n\d\s/.test(l));
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r.trimEnd().endsWith(` ${version}`), r).toBe(true);
    expect(st.out).not.toContain('different quorumd versions');

    // More signals while it stops (another SIGHUP, a Ctrl-C as the terminal goes), sent as
    // soon as it says it is stopping: the one stop goes on. Before, the SIGHUP listener was
    // gone after the first one, and Node's default killed the supervisor mid-stop; and a
    // second stop signal made it exit 0 at once, before its nodes were stopped.
    let further: boolean | undefined;
    dev.stdout!.on('data', () => {
      if (further !== undefined || !out.includes('[dev] stopping...')) return;
      further = dev.exitCode === null && dev.signalCode === null && dev.kill('SIGHUP') && dev.kill('SIGINT');
    });
    dev.kill('SIGHUP');
    const how = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000))]);
    expect(how, `dev did not exit 0 within 60 s of SIGHUP; stderr: ${err.slice(-500)}`).toEqual({ code: 0, signal: null });
    expect(further, 'the further signals reached dev while it stopped').toBe(true);
    // The supervisor stopped its nodes itself (they would stop on their own once it was
    // gone, but only after it; here none outlives it).
    expect(out.split('[dev] stopping...').length - 1, 'one stop').toBe(1);
    // The leader was told to stop (SIGTERM from the supervisor) and said so in its log.
    expect(readFileSync(join(dir, `${leader}.log`), 'utf8')).toMatch(/"msg":"stopping"/);
    const alive = nodes.filter((p) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive, `node processes left running after dev exited: ${alive.join(', ')}`).toEqual([]);
  }, 240_000);
});
