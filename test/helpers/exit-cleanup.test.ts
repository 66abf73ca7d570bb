/**
 * A benchmark using the tests' helpers outside vitest leaves no API token behind, however
 * it ends: normally, by an uncaught error, by SIGINT or SIGTERM (test/helpers/exit-cleanup.ts).
 * Before, `/tmp/quorumd-test-token-*` (with a live API token) stayed after every run of
 * bench/broker-restart.ts and the other benches on test/daemon/e2e/proc-cluster.ts.
 * Real child processes (node with tsx, vitest's variables removed from their environment).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnTied } from './tied.ts';

const child = join(import.meta.dirname, 'exit-cleanup-child.ts');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));

/** Runs the stand-in; `signal` is sent once it says ready. Resolves with its token directory, output and end (bounded: 60 s). */
function run(mode: string, signal?: NodeJS.Signals): Promise<{ dir: string; out: string; code: number | null; sig: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const p = spawnTied(process.execPath, ['--import', 'tsx', child, mode], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${mode}: no end within 60 s; output ${JSON.stringify(out)}`));
    }, 60_000);
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (signal && out.includes('ready\n')) {
        p.kill(signal);
        signal = undefined;
      }
    });
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code, sig) => {
      clearTimeout(t);
      const file = /^token (.+)$/m.exec(out)?.[1];
      if (file === undefined) return reject(new Error(`${mode}: no token path printed; output ${JSON.stringify(out)}`));
      resolve({ dir: dirname(file), out, code, sig });
    });
  });
}

describe('the API token directory of a process outside vitest', () => {
  it('is removed at a normal end and after an uncaught error', async () => {
    const end = await run('end');
    expect(end.code).toBe(0);
    expect(existsSync(end.dir)).toBe(false);
    const thrown = await run('throw');
    expect(thrown.code).toBe(1);
    expect(thrown.out).toMatch(/the bench failed/);
    expect(existsSync(thrown.dir)).toBe(false);
  }, 120_000);

  it('is removed on SIGINT and SIGTERM, and the process still dies of the signal', async () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const r = await run('wait', sig);
      expect(r.sig).toBe(sig);
      expect(existsSync(r.dir)).toBe(false);
    }
  }, 120_000);

  it("a process's own SIGINT listener runs first with the token there; the directory goes at its exit", async () => {
    const r = await run('own-handler', 'SIGINT');
    expect(r.out).toMatch(/still there in the handler: true/);
    expect(r.code).toBe(130);
    expect(existsSync(r.dir)).toBe(false);
  }, 120_000);
});
