/**
 * Temp directories removed when the process ends, however it ends: normally, by an
 * error, or by SIGINT, SIGTERM or SIGHUP — for the benchmarks (bench/), which use the
 * tests' helpers outside vitest.
 *
 * Why: under vitest a file's hooks remove what it made (test/helpers/setup.ts removes the
 * API token's directory after each file). A benchmark has no such hooks: the token
 * directory of test/helpers/auth.ts (a live API token in it) and the data directory of a
 * ProcCluster (configs with the cluster key inline) stayed in /tmp whenever a bench
 * ended by an error, by Ctrl-C, or by `npm run bench`'s time limit (SIGTERM) — and the
 * token directory even when it ended well, as nothing removed it.
 *
 * How: an 'exit' listener (it runs on a normal end, on process.exit() and after an
 * uncaught error or rejection), and one for each of those signals that, when nobody else
 * listens for it, removes the directories and raises the signal again, so that the
 * process ends as it would have without us (killed by the signal); a process with its
 * own listener ends by its own means, and the 'exit' listener runs then. Under
 * vitest nothing is registered: its own hooks do the work, and a worker's signals are
 * vitest's.
 */
import { rmSync } from 'node:fs';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** Directories to remove, each with what to do just before (e.g. kill the processes writing into it). */
const pending = new Map<string, (() => void) | undefined>();
let armed = false;

/** Removes every registered directory now (once each). */
function removeAll(): void {
  for (const [dir, before] of [...pending]) {
    pending.delete(dir);
    try {
      before?.();
    } catch {
      /* best effort: the directory goes anyway */
    }
    // Retries: a child that was just killed may still be closing files in it.
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
  }
}

function arm(): void {
  if (armed) return;
  armed = true;
  process.on('exit', removeAll);
  for (const sig of SIGNALS) {
    const onSignal = (): void => {
      // The process handles the signal itself (a graceful stop that may still need the
      // token): its end runs the 'exit' listener.
      if (process.listenerCount(sig) > 1) return;
      removeAll();
      process.off(sig, onSignal);
      // End as the signal's default action would have.
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/**
 * Removes `dir` when this process ends (outside vitest; inside, does nothing). `before`
 * runs first, synchronously. Returns the call that forgets `dir` again (once removed by
 * its owner).
 */
export function removeAtExit(dir: string, before?: () => void): () => void {
  if (process.env.VITEST !== undefined) return () => undefined;
  pending.set(dir, before);
  arm();
  return () => void pending.delete(dir);
}
