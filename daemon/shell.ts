/**
 * Runs one shell command for the daemon — leadership hooks (daemon/hooks.ts) and
 * scheduled jobs (daemon/jobs) — with the same rules for both:
 *
 * - `/bin/sh -c <command>` in its own process group, so that a timeout or a stop
 *   reaches the script's children too (a `sleep` under sh would otherwise keep the
 *   pipes, and the run, alive);
 * - the run is its shell: when the shell exits, its exit status is the run's, and
 *   whatever is left in its process group (`sleep 300 &`) gets SIGTERM, SIGKILL
 *   `killGraceMs` later — systemd's KillMode=control-group for a unit's main process.
 *   Before, a background child that kept the shell's stdout (`sleep 300 & echo hi`)
 *   held the run open until its timeout (10 min for a job), and every slot of the job
 *   meanwhile was skipped;
 * - still running after `timeoutMs`: SIGTERM to the group, SIGKILL `killGraceMs` later;
 * - either way the run ends even if a process that left the group (setsid) holds its
 *   pipes: they are closed once the shell is gone and the group killed;
 * - stdout and stderr logged line by line, at most `maxOutputBytes` per run (then
 *   truncated, so that a chatty script cannot fill the disk with logs);
 * - never throws: a command that cannot be started is a result with `spawnError`.
 */
import { spawn } from 'node:child_process';

export interface ShellLog {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

export interface ShellRun {
  /** The command line, run by /bin/sh -c. */
  command: string;
  /** Extra environment (added to the daemon's). */
  env: Record<string, string>;
  timeoutMs: number;
  /** Grace between SIGTERM and SIGKILL (on timeout or `kill`). Default 2000. */
  killGraceMs?: number;
  /** Output logged per run, bytes. Default 64 KiB. */
  maxOutputBytes?: number;
  log: ShellLog;
  /** Fields added to every log line of this run (e.g. hook / job name). */
  fields: Record<string, unknown>;
  /** What the log lines call it ("hook", "job"). */
  what: string;
}

export interface ShellResult {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Set when the command could not be started at all. */
  spawnError?: string;
  /** How long the shell ran (until its exit, not until the rest of its group was gone). */
  ms: number;
}

export interface RunningShell {
  /**
   * Resolves once the shell has exited and its pipes are closed: at once when nothing
   * else holds them, else once the rest of its process group is killed (at most
   * `killGraceMs` and a few hundred ms after the shell's exit).
   */
  done: Promise<ShellResult>;
  /** Ends the run now: SIGTERM to the group, SIGKILL after the grace. Idempotent. */
  kill(reason: string): void;
}

const DEFAULT_MAX_OUTPUT = 64 * 1024;

export function runShell(o: ShellRun): RunningShell {
  const { log, fields, what } = o;
  const t0 = performance.now();
  const maxOut = o.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const grace = o.killGraceMs ?? 2000;
  let child;
  try {
    child = spawn('/bin/sh', ['-c', o.command], {
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
  } catch (err) {
    const msg = (err as Error).message;
    log.error({ ...fields, error: msg }, `${what} could not start`);
    return { done: Promise.resolve({ code: null, signal: null, timedOut: false, spawnError: msg, ms: 0 }), kill: () => {} };
  }
  const c = child;
  let out = 0;
  let truncated = false;
  const pipe = (stream: NodeJS.ReadableStream | null, name: string) => {
    let buf = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (s: string) => {
      if (out >= maxOut) {
        if (!truncated) log.warn(fields, `${what} output truncated after ${maxOut} bytes`);
        truncated = true;
        return;
      }
      out += s.length;
      buf += s;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        log.info({ ...fields, stream: name }, buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    stream?.on('end', () => {
      if (buf) log.info({ ...fields, stream: name }, buf);
    });
  };
  pipe(c.stdout, 'stdout');
  pipe(c.stderr, 'stderr');
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-c.pid!, sig);
    } catch {
      try {
        c.kill(sig);
      } catch {
        /* already gone */
      }
    }
  };
  /** Anything left in the run's process group (the shell's own pid is its id)? */
  const groupAlive = () => {
    try {
      process.kill(-c.pid!, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let exited = false;
  let exitedAt: number | undefined;
  /**
   * After the SIGKILL: a process that left the group (`setsid cmd &`, a daemon that
   * detaches) but kept the job's stdout or stderr open would hold the run open, and
   * with it every later slot of the job (overlap: skip) and the node's shutdown, for
   * as long as it lives. Once the shell itself is gone its pipes are closed here and
   * the run ends; the detached process is not ours to kill (it left the group).
   */
  const release = () => {
    if (closed) return;
    if (!exited) {
      killTimer = setTimeout(release, 100);
      return;
    }
    log.warn(fields, `${what} ended; its output is still held open by a process outside its process group (started with setsid or detached), which keeps running`);
    c.stdout?.destroy();
    c.stderr?.destroy();
  };
  const terminate = () => {
    if (closed || killTimer) return;
    killGroup('SIGTERM');
    killTimer = setTimeout(() => {
      killGroup('SIGKILL');
      killTimer = setTimeout(release, 200);
    }, grace);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    log.error({ ...fields, timeoutMs: o.timeoutMs }, `${what} timed out: SIGTERM`);
    terminate();
  }, o.timeoutMs);
  /**
   * The shell exited: the run is over, with the shell's status. Its pipes close at once
   * unless something still holds them: what is left of its process group is stopped
   * (SIGTERM, SIGKILL after the grace; it may have written output meanwhile, which is
   * read and logged until the pipes close), and a process outside the group cannot be,
   * so the pipes are closed on our side (release) once the group is gone.
   */
  c.on('exit', (code, signal) => {
    exited = true;
    exitedAt = performance.now();
    if (closed) return;
    clearTimeout(timer);
    if (killTimer) return; // (a timeout or kill() is under way: it goes on)
    if (groupAlive()) {
      log.warn({ ...fields, code, signal }, `${what}'s shell exited; processes it started are still in its process group: SIGTERM to them, SIGKILL ${grace} ms later`);
      terminate();
    } else killTimer = setTimeout(release, 200);
  });
  let spawnError: string | undefined;
  const done = new Promise<ShellResult>((resolve) => {
    c.on('error', (err) => {
      spawnError = err.message;
      log.error({ ...fields, error: err.message }, `${what} error`);
    });
    c.on('close', (code, signal) => {
      closed = true;
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      const ms = Math.round((exitedAt ?? performance.now()) - t0);
      resolve({ code, signal, timedOut, ms, ...(spawnError !== undefined && code === null && signal === null ? { spawnError } : {}) });
    });
  });
  return {
    done,
    kill: (reason: string) => {
      if (closed) return;
      log.warn({ ...fields, reason }, `${what} stopped: SIGTERM`);
      terminate();
    },
  };
}
