/**
 * `quorumd dev` stopped by SIGTERM while it still waits for its first leader (before the
 * guide is printed) stops its node processes too: none is left running behind it.
 * Found as a leak: the signal handlers were installed only after the guide.
 */
import { spawnTied } from '../helpers/tied.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from './e2e/proc-cluster.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { processesUsing } from '../helpers/procs.ts';
import { until } from '../helpers/until.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorumd-dev-early-'));
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

describe('quorumd dev stopped before its guide', () => {
  it('SIGTERM while waiting for the first leader stops every node process', async () => {
    const base = await freeBasePort(3);
    const dev = spawnTied(process.execPath, [bin, 'dev', '--nodes', '3', '--base-port', String(base), '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    dev.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => dev.once('exit', (code, signal) => r({ code, signal })));
    // The nodes are spawned before the first progress line; the guide comes ≥ 1.5 s later.
    const nodes = await until('the node processes', () => {
      const p = processesUsing(dir).filter((x) => x !== dev.pid);
      return err.includes('[dev] starting:') && p.length >= 3 ? p : undefined;
    }, 60_000, 50);
    nodes.forEach((p) => leftovers.add(p));
    dev.kill('SIGTERM');
    const how = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000))]);
    expect(how, `dev did not exit within 30 s of SIGTERM; stderr: ${err.slice(-500)}`).toEqual({ code: 0, signal: null });
    expect(out, 'the signal must come before the guide for this test to mean anything').not.toContain('running, leader');
    // Every node process is gone (bounded wait: the supervisor waited for their exits).
    const alive = nodes.filter((p) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive, `node processes left running after dev exited: ${alive.join(', ')}`).toEqual([]);
  }, 120_000);
});
