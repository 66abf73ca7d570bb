/**
 * Processes a test starts die with the test's worker process.
 *
 * Why: a test stops what it starts in its own hooks, but when the run itself is cut short
 * — SIGTERM to vitest from a CI timeout or `kill`, a worker that dies — those hooks
 * never run, and what they started runs on for good, reparented to init (seen: etcd,
 * ZooKeeper and quorumd nodes after a killed `npm test`; on 2026-12-07 SIGTERM to `vitest
 * run test/engines` left a ZooKeeper member behind: the worker finished its file within
 * ~40 s and exited, the JVM did not). Ctrl-C in a terminal does not show it: the
 * whole process group gets the signal there.
 *
 * How: the child is started through util-linux's `setpriv --pdeathsig KILL`, which asks
 * the kernel (prctl PR_SET_PDEATHSIG) to SIGKILL it when the thread that started it
 * exits, and then execs the real program: same pid, same stdio, same exit status, so a
 * test that signals or waits for the child sees no difference. The death signal
 * survives that exec (not one into a set-user-ID program; nothing here is one). vitest
 * runs test files on the main thread of its worker processes (pool: forks), so "the
 * thread" is the worker process.
 *
 * Only for programs that exist: a missing program is setpriv's failure (exit 127 and a
 * message), not an ENOENT 'error' event. Without setpriv (util-linux is part of every
 * Debian), children are started as they are, untied.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * `spawn(command, args, options)`, with the child tied to this process's life (see the
 * header). Typed as node's spawn, so that piped stdio stays non-null for the caller.
 */
export const spawnTied = ((command: string, args: readonly string[], options: SpawnOptions = {}) =>
  SETPRIV === undefined ? spawn(command, args, options) : spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args], options)) as typeof spawn;
