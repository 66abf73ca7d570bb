/**
 * runShell (daemon/shell.ts), which runs scheduled jobs and leadership hooks, on real
 * processes.
 *
 * A run is its shell: when the shell exits the run ends with its status, and what is
 * left in its process group is stopped (SIGTERM, SIGKILL after the grace). Before, a job
 * like `sleep 300 & echo hi` — a background child keeping the shell's stdout — counted as
 * running until its timeout (10 min by default), and every later slot was skipped.
 *
 * And a run is bounded by its timeout plus the kill grace even when the command started
 * a process that left its process group and kept the run's pipes open. Before, such a
 * run never ended while that process lived: `quorumd jobs` showed it `running`, every
 * later slot of the job was skipped (overlap: skip), and stopping the node waited for it.
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
  it('a run ends although a detached process holds its output open', async () => {
    // The shell exits at once; the setsid'd sleep keeps stdout and stderr. (setsid in the
    // foreground: once it returns the sleep has left the run's group. `setsid sleep 60 &`
    // could still be in it when the shell exits, and be stopped with the group.)
    const run = runShell({ command: `setsid sh -c 'sleep 60 & echo "pid $!"'`, env: {}, timeoutMs: 30_000, killGraceMs: 100, log, fields: {}, what: 'job' });
    const t0 = performance.now();
    const r = await within(run.done, 10_000);
    expect(r, 'the run ended (the shell exited; 200 ms for its last output)').not.toBe('hung');
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(r).toMatchObject({ timedOut: false, code: 0 });
    expect(lines).toContain('job ended; its output is still held open by a process outside its process group (started with setsid or detached), which keeps running');
    expect(detached()).toHaveLength(1);
  });

  it('kill() (the node stopping) ends such a run too', async () => {
    const run = runShell({ command: `setsid sh -c 'sleep 60 & echo "pid $!"'; sleep 60`, env: {}, timeoutMs: 60_000, killGraceMs: 100, log, fields: {}, what: 'job' });
    for (let i = 0; i < 200 && detached().length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    run.kill('node stopping');
    const r = await within(run.done, 10_000);
    expect(r, 'the run ended').not.toBe('hung');
    expect(r).toMatchObject({ timedOut: false, signal: 'SIGTERM' });
  });

  it('a child inside the group still running at the timeout is killed with its shell', async () => {
    const run = runShell({ command: 'sleep 60 & echo "pid $!"; sleep 60', env: {}, timeoutMs: 300, killGraceMs: 100, log, fields: {}, what: 'job' });
    const r = await within(run.done, 10_000);
    expect(r).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    await expectKilled(detached()[0]!);
    expect(lines.some((l) => l.includes('outside its process group'))).toBe(false);
  });
});

/** Gone, or a zombie its new parent has not reaped yet. */
const state = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]!;
  } catch {
    return 'gone';
  }
};
/** Its pipes close while it exits: waits a little (bounded, 5 s). */
async function expectKilled(pid: number): Promise<void> {
  for (let i = 0; i < 250 && !['gone', 'Z'].includes(state(pid)); i++) await new Promise((r) => setTimeout(r, 20));
  expect(['gone', 'Z'], `pid ${pid} was killed`).toContain(state(pid));
}

describe('the run ends when its shell exits; what is left of its process group is stopped', () => {
  const opts = { env: {}, timeoutMs: 60_000, killGraceMs: 500, log, fields: {}, what: 'job' };

  it('a background child holding the output: the run ends with the shell, the child is killed, the output kept', async () => {
    const t0 = performance.now();
    const run = runShell({ ...opts, command: 'sleep 300 & echo "pid $!"; echo hi; exit 3' });
    const r = await within(run.done, 10_000);
    expect(r, 'the run ended with its shell, not at its 60 s timeout').not.toBe('hung');
    expect(performance.now() - t0).toBeLessThan(8_000);
    expect(r).toMatchObject({ code: 3, signal: null, timedOut: false });
    expect(lines).toContain('hi');
    expect(lines.some((l) => l.startsWith("job's shell exited; processes it started are still in its process group: SIGTERM to them"))).toBe(true);
    await expectKilled(detached()[0]!);
  });

  it('a background child with its output elsewhere is stopped too (control group)', async () => {
    const run = runShell({ ...opts, command: 'sleep 300 > /dev/null 2>&1 & echo "pid $!"' });
    const r = await within(run.done, 10_000);
    expect(r).toMatchObject({ code: 0, timedOut: false });
    await expectKilled(detached()[0]!);
  });

  it('a child that ignores SIGTERM is killed after the grace; what it wrote before is logged', async () => {
    // The child says it is ready (a line, and a file the shell waits for, at most 20 s), then ignores SIGTERM.
    const ready = `${process.env.TMPDIR ?? '/tmp'}/shell-test-ready-${process.pid}`;
    const command = `(trap '' TERM; echo "pid $(sh -c 'echo $PPID')"; echo from-child; touch ${ready}; exec sleep 300) & n=0; while [ ! -e ${ready} ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; rm -f ${ready}; echo parent-done`;
    let exitedAt = NaN;
    const timed = { ...log, warn: (f: Record<string, unknown>, m: string) => (m.startsWith("job's shell exited") && (exitedAt = performance.now()), log.warn(f, m)) };
    const run = runShell({ ...opts, log: timed, command });
    const r = await within(run.done, 30_000);
    expect(r, 'the run ended').not.toBe('hung');
    const endedAt = performance.now();
    expect(r).toMatchObject({ code: 0, timedOut: false });
    expect(lines).toContain('from-child');
    expect(lines).toContain('parent-done');
    expect(endedAt - exitedAt, 'SIGKILL only after the grace (500 ms)').toBeGreaterThanOrEqual(490);
    await expectKilled(detached()[0]!);
  });

  it('a process moved out of the group before the shell exits keeps running', async () => {
    const run = runShell({ ...opts, command: `setsid sh -c 'sleep 300 > /dev/null 2>&1 & echo "pid $!"'` });
    const r = await within(run.done, 10_000);
    expect(r).toMatchObject({ code: 0, timedOut: false });
    const pid = detached()[0]!;
    await new Promise((res) => setTimeout(res, 300));
    expect(state(pid), 'still running').toMatch(/^[RS]$/);
  });

  it('a shell with nothing left behind ends as before: no signal, no warning', async () => {
    const run = runShell({ ...opts, command: 'echo one; echo two >&2' });
    const r = await within(run.done, 10_000);
    expect(r).toMatchObject({ code: 0, signal: null, timedOut: false });
    expect(lines).toEqual(['one', 'two']);
  });
});
