/**
 * test/helpers/tied.ts: a child started with spawnTied dies when the process that
 * started it dies (SIGKILL, no hooks run), and is otherwise the program itself: its own
 * pid, its stdio, its exit status. A child started with plain spawn beside it outlives
 * the same death: the control that shows the check can tell the two apart.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnTied } from './tied.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorumd-tied-'));
const strays: number[] = [];
afterAll(() => {
  for (const pid of strays) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Alive: the pid exists and is not a zombie (a killed orphan may wait a while for init to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** Bounded polling: until `cond` or `ms`. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('spawnTied (test/helpers/tied.ts)', () => {
  it('the tied child dies with its parent; an untied one beside it does not', async () => {
    const script = join(dir, 'parent.mts');
    writeFileSync(
      script,
      [
        `import { spawn } from 'node:child_process';`,
        `import { spawnTied } from ${JSON.stringify(join(import.meta.dirname, 'tied.ts'))};`,
        `const tied = spawnTied('sleep', ['120'], { stdio: 'ignore' });`,
        `const untied = spawn('sleep', ['121'], { stdio: 'ignore' });`,
        `console.log(JSON.stringify({ tied: tied.pid, untied: untied.pid }));`,
        `setInterval(() => {}, 1000);`,
      ].join('\n'),
    );
    const parent = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      expect(await until(() => out.includes('\n'), 30_000), 'the parent printed its children').toBe(true);
      const { tied, untied } = JSON.parse(out) as { tied: number; untied: number };
      strays.push(tied, untied);
      // setpriv execs the program: same pid, the program's own command line.
      expect(await until(() => cmdline(tied) === 'sleep 120', 10_000), `pid ${tied} became "sleep 120" (was "${cmdline(tied)}")`).toBe(true);
      expect(alive(untied)).toBe(true);
      parent.kill('SIGKILL');
      expect(await until(() => !alive(tied), 10_000), 'the tied child died with its parent').toBe(true);
      expect(alive(untied), 'the untied child outlived its parent (the control)').toBe(true);
    } finally {
      if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
    }
  });

  it('is the program itself to the caller: stdio and exit status pass through', async () => {
    const c = spawnTied('sh', ['-c', 'read line; echo "got $line"; exit 7'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stdin.end('hello\n');
    const code = await new Promise<number | null>((r) => c.on('close', (k) => r(k)));
    expect(code).toBe(7);
    expect(out).toBe('got hello\n');
  });
});
