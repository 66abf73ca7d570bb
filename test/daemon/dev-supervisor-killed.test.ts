/**
 * `quorumd dev` killed with SIGKILL (the OOM killer, `kill -9`): it can neither stop its
 * nodes nor remove anything, so the nodes must notice by themselves and stop. Found by
 * hand: three node processes still running 10 s after the supervisor was killed, without
 * the broker and relays it held, on their ports, for good. Real processes: the bin's
 * supervisor and its nodes.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from './e2e/proc-cluster.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { killProcessesUsing, processesUsing, waitUntilNoneUsing } from '../helpers/procs.ts';

const root = mkdtempSync(join(tmpdir(), 'quorumd-dev-killed-'));

afterAll(() => {
  killProcessesUsing(root);
  rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `quorumd dev` (no jobs) on `data`; `output()` is what it printed so far. */
async function startDev(data: string): Promise<{ dev: ChildProcess; output: () => string; nodes: () => number[] }> {
  const base = await freeBasePort(3);
  const dev = spawnTied(process.execPath, [bin, 'dev', '--base-port', String(base), '--data-dir', data, '--no-jobs'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  dev.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  // Its node processes: those naming a node's config file (<data>/n1.yaml, ...). Not every
  // process naming the data dir: a child between the supervisor's fork and its exec shows
  // the supervisor's own command line.
  return { dev, output: () => out, nodes: () => processesUsing(join(data, 'n')) };
}

/** SIGKILL to the supervisor, then the node processes still running once none is left or 30 s passed. */
async function killAndWait(dev: ChildProcess, data: string): Promise<number[]> {
  const exited = new Promise<void>((r) => (dev.exitCode !== null || dev.signalCode !== null ? r() : dev.once('exit', () => r())));
  dev.kill('SIGKILL');
  await exited;
  // A node looks twice a second; its stop (leadership transfer, storage closed) is bounded by seconds.
  return waitUntilNoneUsing(data, 30_000);
}

describe('quorumd dev killed with SIGKILL', () => {
  it('leaves no node running: each stops once its supervisor is gone', async () => {
    const data = join(root, 'data');
    const { dev, output, nodes } = await startDev(data);
    const startEnd = performance.now() + 90_000;
    while (!/quorumd dev: \d+ nodes running/.test(output()) && dev.exitCode === null && performance.now() < startEnd) await sleep(50);
    expect(output(), 'dev did not start within 90 s').toMatch(/quorumd dev: 3 nodes running/);
    expect(nodes().length).toBe(3);
    expect(await killAndWait(dev, data), 'node processes still running 30 s after their supervisor was killed').toEqual([]);
  }, 180_000);

  it('also while its nodes are still starting', async () => {
    const data = join(root, 'starting');
    const { dev, output, nodes } = await startDev(data);
    // The first node process appears (a node loads for a few hundred ms before it serves).
    // What the loop saw is kept: a node caught in its exec reads as no process at all on
    // the next look.
    const spawnEnd = performance.now() + 60_000;
    let seen: number[] = [];
    while ((seen = nodes()).length === 0 && dev.exitCode === null && dev.signalCode === null && performance.now() < spawnEnd) await sleep(5);
    expect(seen.length, `no node process appeared within 60 s:\n${output()}`).toBeGreaterThan(0);
    const left = await killAndWait(dev, data);
    expect(output(), 'the supervisor was to be killed before its nodes were running').not.toMatch(/nodes running/);
    expect(left, 'node processes still running 30 s after their supervisor was killed during their start').toEqual([]);
  }, 180_000);
});
