/**
 * Virtual null-modem cables for tests: `socat` connects two ptys, and real
 * `serialport` opens them. Without socat the tests skip locally with a clear message,
 * but with CI set a missing socat fails the run (the brief: CI installs it via apt).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { spawnTied } from '../../helpers/tied.ts';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOCAT = process.env.SOCAT ?? '/usr/bin/socat';

export function socatAvailable(): boolean {
  const r = spawnSync(SOCAT, ['-V'], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

/** In CI a missing socat is an error; locally a skip reason. */
export function socatCheck(): { run: boolean; reason: string } {
  if (socatAvailable()) return { run: true, reason: '' };
  const reason = `socat not found at ${SOCAT}: install it (apt-get install socat) to run the real-pty serial tests`;
  if (process.env.CI) throw new Error(`CI is set and ${reason}`);
  console.warn(`SKIP: ${reason}`);
  return { run: false, reason };
}

export interface PtyPair {
  a: string;
  b: string;
  dir: string;
  proc: ChildProcess;
  /** Kills socat (the ptys vanish: both ends see a disconnect). */
  kill(): Promise<void>;
  /** Starts socat again on the same link names (after kill). */
  restart(): Promise<void>;
  dispose(): Promise<void>;
}

/** Polls `cond` every 10 ms, at most `ms` in total. */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 100_000; i++) {
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

function startSocat(a: string, b: string): ChildProcess {
  return spawnTied(SOCAT, ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export async function ptyPair(): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'quorumd-pty-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const pair: PtyPair = {
    a,
    b,
    dir,
    proc: startSocat(a, b),
    async kill() {
      const p = pair.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGTERM');
      await exited;
      await waitFor(() => !existsSync(a) && !existsSync(b), 15_000, 'socat links to disappear');
    },
    async restart() {
      pair.proc = startSocat(a, b);
      await waitFor(() => existsSync(a) && existsSync(b), 15_000, `socat ptys ${a}, ${b}`);
    },
    async dispose() {
      await pair.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitFor(() => existsSync(a) && existsSync(b), 15_000, `socat ptys ${a}, ${b}`);
  return pair;
}
