/**
 * A program run as the session leader of a terminal of its own, whose terminal the test
 * then hangs up: what `ssh -t host quorumd dev` does when the connection drops, or a
 * terminal emulator that runs a command directly when its window is closed.
 *
 * How: a short python3 program (its standard library has openpty, setsid and the
 * TIOCSCTTY ioctl; Node has none of them) opens a pty, forks, and in the child makes a
 * new session with the pty's slave side as its controlling terminal and stdin, stdout
 * and stderr, then execs the program: same pid, the session leader. The parent copies
 * what the program writes on its terminal to its own stdout; when the test writes a line
 * to its stdin (hangUp), it closes the master side: the kernel hangs the terminal up
 * (SIGHUP and SIGCONT to the session leader; every later read or write of the terminal
 * fails with EIO). It then waits for the program and says on stderr how it ended, as
 * `pty-end {"code":N,"signal":null,"ms":T,"reaped":{}}` (T: ms after the hangup) — which
 * the test could not learn otherwise: the program is the python process's child, not the
 * test's.
 *
 * The python process is tied to the test's worker (tied.ts); the program, in its own
 * session, is not: should the python process die first, the master closes and the
 * program gets the hangup all the same. A test still kills what is left in its afterAll.
 */
import { spawnSync } from 'node:child_process';
import { spawnTied } from './tied.ts';

const PY = String.raw`
import os, sys, fcntl, termios, select, json, time, ctypes
reap = sys.argv[1] == 'reap'
cmd = sys.argv[2:]
if reap:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
m, s = os.openpty()
pid = os.fork()
if pid == 0:
    os.close(m)
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(s, fd)
    if s > 2:
        os.close(s)
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
os.close(s)
stdin = sys.stdin.fileno()
hung = False
while not hung:
    r, _, _ = select.select([m, stdin], [], [])
    if m in r:
        try:
            d = os.read(m, 65536)
        except OSError:
            d = b''
        if not d:
            break  # every slave side closed: the program ended by itself
        os.write(1, d)
    if stdin in r:
        os.read(stdin, 4096)
        hung = True
t0 = time.monotonic()
os.close(m)
def how(st):
    return {'code': os.WEXITSTATUS(st), 'signal': None} if os.WIFEXITED(st) else {'code': None, 'signal': os.WTERMSIG(st)}
_, st = os.waitpid(pid, 0)
end = how(st)
end['ms'] = round((time.monotonic() - t0) * 1000) if hung else None
reaped = {}
while reap:
    try:
        p, st = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    reaped[p] = how(st)
end['reaped'] = reaped
sys.stderr.write('pty-end ' + json.dumps(end) + '\n')
`;

/** Why there is no pty to run in here (no python3), or undefined when there is. */
export function ptyUnavailable(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import os, fcntl, termios; os.openpty()'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? undefined : `no python3 with openpty: ${r.error?.message ?? r.stderr.trim().split('\n').pop()}`;
}

/** How the program ended: an exit code, or the number of the signal that killed it. */
export interface PtyEnd {
  code: number | null;
  signal: number | null;
  /** ms from the hangup to its end (null: it ended before any hangup). */
  ms: number | null;
  /**
   * With `reap`: how each other descendant that outlived its parent ended, by pid (the
   * pty's python process was their subreaper); else {}.
   */
  reaped: Record<string, { code: number | null; signal: number | null }>;
}

export interface PtySession {
  /** Everything the program wrote on its terminal so far. */
  output(): string;
  /** The pid of the python process (not of the program). */
  pid: number;
  /** Hangs the terminal up (closes the master side). */
  hangUp(): void;
  /** How the program ended; rejects after `maxMs` (the processes are then still there). */
  ended(maxMs: number): Promise<PtyEnd>;
  /** SIGKILL to the python process (what a test's afterAll does). */
  kill(): void;
}

/**
 * Starts `command args` as the session leader of a new pty (see the header). `reap`: the
 * python process makes itself the subreaper of what `command` starts (prctl
 * PR_SET_CHILD_SUBREAPER), so that a process whose parent died (a shell killed by the
 * hangup) is reparented to it and its end reported too (PtyEnd.reaped); ended() then
 * also waits for all of them.
 */
export function runInPty(command: string, args: string[], o: { reap?: boolean } = {}): PtySession {
  const py = spawnTied('python3', ['-c', PY, o.reap === true ? 'reap' : 'no-reap', command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  py.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  py.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => py.once('close', () => r()));
  return {
    output: () => out,
    pid: py.pid!,
    hangUp: () => void py.stdin!.write('hang up\n'),
    async ended(maxMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), maxMs)));
      const how = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (how === 'late') throw new Error(`the program in the pty did not end within ${maxMs} ms of the hangup; its terminal:\n${out.slice(-800)}`);
      const line = /^pty-end (.*)$/m.exec(err)?.[1];
      if (line === undefined) throw new Error(`the pty's python process ended without saying how the program did (exit ${py.exitCode ?? py.signalCode}); its stderr:\n${err.slice(-800)}`);
      return JSON.parse(line) as PtyEnd;
    },
    kill: () => void py.kill('SIGKILL'),
  };
}
