/**
 * `quorumd dev` that cannot create a node's process (here: out of file descriptors)
 * says so and tries again; it does not die of an unhandled 'error' event leaving the
 * nodes it did start running without a supervisor. Found by hand at `ulimit -n 34`:
 * "Error: spawn /usr/bin/node EMFILE", the supervisor gone, two nodes left behind.
 *
 * Which limit makes the spawn itself fail (rather than the supervisor's own start, or
 * nothing) depends on how many descriptors the supervisor holds at that moment, so the
 * test walks the limit up from where nothing starts until a spawn failed, and checks
 * every step on the way; reaching a running cluster first is a failure (the case was
 * never exercised).
 */
import { spawnTied } from '../helpers/tied.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from './e2e/proc-cluster.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { killProcessesUsing, waitUntilNoneUsing } from '../helpers/procs.ts';

const root = mkdtempSync(join(tmpdir(), 'quorumd-dev-spawnfail-'));

afterAll(() => {
  killProcessesUsing(root);
  rmSync(root, { recursive: true, force: true });
});

type Outcome = 'no start' | 'spawn failed' | 'running' | 'undecided';

/** dev under `ulimit -n limit`: what happened, once it is clear (then stopped with SIGTERM). */
async function devAt(limit: number): Promise<{ outcome: Outcome; out: string; leftover: number[] }> {
  const data = join(root, `fd${limit}`);
  const base = await freeBasePort(3);
  const cmd = `ulimit -n ${limit} && exec "$0" "$@"`;
  const dev = spawnTied('/bin/sh', ['-c', cmd, process.execPath, bin, 'dev', '--base-port', String(base), '--data-dir', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  dev.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => dev.on('exit', () => r()));
  const end = performance.now() + 20_000;
  let outcome: Outcome | undefined;
  while (outcome === undefined && performance.now() < end) {
    if (/could not start n\d/.test(out)) outcome = 'spawn failed';
    else if (/quorumd dev: \d+ nodes running/.test(out)) outcome = 'running';
    else if (dev.exitCode !== null || dev.signalCode !== null) outcome = 'no start';
    else await new Promise((r) => setTimeout(r, 50));
  }
  // Neither within 20 s: a start that fails later (out of descriptors for its HTTP polls,
  // it waits for a stable leader up to its own timeout); still one that must stop cleanly.
  outcome ??= 'undecided';
  dev.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  if (dev.exitCode === null && dev.signalCode === null) throw new Error(`ulimit -n ${limit}: dev did not stop within 30 s of SIGTERM:\n${out}`);
  // Its nodes get SIGTERM from it and are waited for; a process still naming the dir is one left behind.
  const leftover = await waitUntilNoneUsing(data, 10_000);
  return { outcome, out, leftover };
}

describe('quorumd dev: a node process that cannot be created', () => {
  it('is said and retried; the supervisor neither dies nor leaves nodes behind, at each descriptor limit up to there', async () => {
    const seen: string[] = [];
    let spawnFailed = 0;
    for (let limit = 24; limit <= 64; limit++) {
      const r = await devAt(limit);
      seen.push(`${limit}: ${r.outcome}`);
      expect(r.out, `ulimit -n ${limit}: ${r.out}`).not.toMatch(/Unhandled 'error' event/);
      expect(r.leftover, `ulimit -n ${limit}: node processes left running:\n${r.out}`).toEqual([]);
      if (r.outcome === 'spawn failed') {
        spawnFailed++;
        expect(r.out, `ulimit -n ${limit}`).toMatch(/\[dev\] could not start n\d: spawn \S+ EMFILE/);
        expect(r.out, `ulimit -n ${limit}`).toMatch(/\[dev\] restarting n\d in \d+ ms/);
      }
      if (r.outcome === 'running' || spawnFailed > 0) break;
    }
    expect(spawnFailed, `no limit made the spawn itself fail:\n${seen.join('\n')}`).toBeGreaterThan(0);
  }, 600_000);
});
