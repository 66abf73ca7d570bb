/**
 * runShell (daemon/shell.ts), which runs scheduled jobs and leadership hooks: a run is
 * bounded by its timeout plus the kill grace even when the command started a process
 * that left its process group and kept the run's pipes open. Before, such a run never
 * ended while that process lived: `quorumd jobs` showed it `running`, every later slot
 * of the job was skipped (overlap: skip), and stopping the node waited for it.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runShell } from '../../daemon/shell.ts';

const lines: string[] = [];
const log = {
  info: (_f: Record<string, unknown>, m: string) => lines.push(m),
  warn: (_f: Record<string, unknown>, m: string) => lines.push(m),
  error: (_f: Record<string, unknown>, m: string) => lines.push(m),
};
/** The pids the commands below print ("pid <n>"): their detached sleeps are killed after each case. */
const detached = () => lines.flatMap((l) => /^pid (\d+)$/.exec(l)?.[1] ?? []).map(Number);

afterEach(() => {
  for (const pid of detached()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  lines.length = 0;
});

/** Resolves with the result, or with 'hung' after `ms`. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms).unref())]);

describe('runShell against processes that leave the process group', () => {
  it('a timed-out run ends although a detached process holds its output open', async () => {
    // The shell exits at once; the setsid'd sleep keeps stdout and stderr.
    const run = runShell({ command: 'setsid sleep 60 & echo "pid $!"', env: {}, timeoutMs: 300, killGraceMs: 100, log, fields: {}, what: 'job' });
    const t0 = performance.now();
    const r = await within(run.done, 10_000);
    expect(r, 'the run ended (timeout 300 ms + grace 100 ms + 200 ms)').not.toBe('hung');
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(r).toMatchObject({ timedOut: true, code: 0 });
    expect(lines).toContain('job ended; its output is still held open by a process outside its process group (started with setsid or detached), which keeps running');
    expect(detached()).toHaveLength(1);
  });

  it('kill() (the node stopping) ends such a run too', async () => {
    const run = runShell({ command: 'setsid sleep 60 & echo "pid $!"; sleep 60', env: {}, timeoutMs: 60_000, killGraceMs: 100, log, fields: {}, what: 'job' });
    for (let i = 0; i < 200 && detached().length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    run.kill('node stopping');
    const r = await within(run.done, 10_000);
    expect(r, 'the run ended').not.toBe('hung');
    expect(r).toMatchObject({ timedOut: false, signal: 'SIGTERM' });
  });

  it('a background child inside the group is still waited for and killed at the timeout, as before', async () => {
    const run = runShell({ command: 'sleep 60 & echo "pid $!"', env: {}, timeoutMs: 300, killGraceMs: 100, log, fields: {}, what: 'job' });
    const r = await within(run.done, 10_000);
    expect(r).toMatchObject({ timedOut: true });
    const [pid] = detached();
    // Gone, or a zombie its new parent has not reaped yet (its pipes close while it exits: wait a little).
    const state = () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]!;
      } catch {
        return 'gone';
      }
    };
    for (let i = 0; i < 100 && !['gone', 'Z'].includes(state()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(['gone', 'Z'], 'the group member was killed').toContain(state());
    expect(lines.some((l) => l.includes('outside its process group'))).toBe(false);
  });
});
