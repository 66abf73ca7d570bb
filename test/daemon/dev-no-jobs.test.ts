/**
 * `quorumd dev --no-jobs`: a cluster with no scheduled job at all — not the demo job,
 * and no jobs file to check (so no checking child before the nodes start). The default
 * (the demo job) is covered by dev.test.ts; this checks the nodes really run without one.
 */
import { spawnTied } from '../helpers/tied.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from './e2e/proc-cluster.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { killProcessesUsing } from '../helpers/procs.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorumd-dev-nojobs-'));

afterAll(() => {
  killProcessesUsing(dir);
  rmSync(dir, { recursive: true, force: true });
});

describe('quorumd dev --no-jobs', () => {
  it('runs the cluster with no scheduled job, not even the demo job', async () => {
    const base = await freeBasePort(3);
    const dev = spawnTied(process.execPath, [bin, 'dev', '--no-jobs', '--base-port', String(base), '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    dev.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => dev.once('exit', (code, signal) => r({ code, signal })));
    try {
      const end = performance.now() + 90_000;
      for (let i = 0; i < 10_000 && !out.includes('running, leader'); i++) {
        if (performance.now() > end || dev.exitCode !== null) throw new Error(`no guide from dev within 90 s (exit ${dev.exitCode}); stderr: ${err.slice(-800)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const k of [1, 2, 3]) expect(readFileSync(join(dir, `n${k}.yaml`), 'utf8'), `n${k}.yaml`).not.toMatch(/^jobs:/m);
      expect(out, 'the guide offers no jobs command when there are none').not.toMatch(/ jobs --node /);
      const token = readFileSync(join(dir, 'api.token'), 'utf8').trim();
      const r = await fetch(`http://127.0.0.1:${base + 1}/v1/jobs`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ jobs: [] });
    } finally {
      dev.kill('SIGINT');
    }
    const how = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000))]);
    expect(how, `dev did not exit within 30 s of SIGINT; stderr: ${err.slice(-500)}`).toEqual({ code: 0, signal: null });
  }, 150_000);
});
