/**
 * The exit status of every `quorumd` command: one table, so that a script can tell
 * "retry", "read back first" and "fix the command" apart whatever command it ran.
 * `quorumd --help` prints it; docs/cli.md explains it with examples; the test
 * test/daemon/exit-codes.test.ts runs the real CLI into each row.
 *
 * The line that matters most is between 3 and 4: 3 means nothing was applied (the
 * node was never reached, or it answered 503), so retrying cannot apply a write
 * twice; 4 means a write may have happened (504, or the connection was lost after
 * the request left), so read back before retrying. A read never ends in 4: nothing
 * can have changed.
 */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** A definite "no", or a failure the command names. */
  NO: 1,
  /** Bad usage or input: nothing was tried. */
  USAGE: 2,
  /** Not applied, safe to retry. */
  UNAVAILABLE: 3,
  /** Outcome unknown: a write may or may not have happened. */
  UNKNOWN: 4,
  /** Not allowed: the node refused the credential. */
  DENIED: 5,
  /**
   * `quorumd start`: the node stopped itself on a fatal error — an internal error (an
   * exception from the engine, the fencer or the state machine; its stack is in the
   * log) or a storage failure. Restart it (systemd Restart=on-failure; `quorumd dev`
   * does). Also a committed entry or a data file that a newer quorumd wrote and this
   * build cannot read (daemon/runtime/fatal.ts NewerEntryError): every restart meets it
   * again until the node is upgraded. 70 is EX_SOFTWARE of sysexits.h.
   */
  FATAL: 70,
} as const;

/** The table as `quorumd --help` prints it. */
export const EXIT_TABLE: ReadonlyArray<[number, string]> = [
  [EXIT.OK, 'done'],
  [EXIT.NO, 'a definite "no" (key absent, compare-and-set conflict, lock held or not held, sim found a violation) or a failure the command names (port in use, a fence failed, the node answered 404/500)'],
  [EXIT.USAGE, 'bad usage or input, nothing was tried: unknown command or option, a bad value, an invalid config file, a request the node called malformed (400/413)'],
  [EXIT.UNAVAILABLE, 'not applied, safe to retry: the node was not reached (refused, no route) or answered 503/429; a read that got no answer'],
  [EXIT.UNKNOWN, 'outcome unknown: a write may or may not have happened (504, or the connection was lost after the request was sent); read back before retrying'],
  [EXIT.DENIED, 'not allowed: no or unknown API token (401), or its scope is too small (403)'],
  [EXIT.FATAL, 'start: the node stopped itself on a fatal error (an internal error, logged with its stack, a storage failure, or an entry or file written by a newer quorumd: upgrade it); a supervisor restarts it'],
];

/** Thrown for a bad option value found by a command's own checks (exit 2, like the parser's). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit status for "this command exists in the contract but is not implemented yet" (usage: 2). */
export const EXIT_NOT_IMPLEMENTED = EXIT.USAGE;

export class NotImplementedError extends Error {
  constructor(what: string, issue: string) {
    super(`not implemented yet: ${what} (arrives with ${issue})`);
    this.name = 'NotImplementedError';
  }
}

/**
 * `quorumd … | head`: a reader that stops early must not turn the exit status into 1
 * (an EPIPE thrown from a write); the status the command decided is kept.
 *
 * A terminal that hung up (an SSH session dropped, a window closed) fails every write
 * with EIO, often before the SIGHUP that comes with it has reached its handler: that
 * output has nowhere to go and is dropped, and so is every later error of that stream;
 * the command goes on (a node or `quorumd dev` then stops on the SIGHUP, in order).
 * Thrown, the EIO ended `quorumd dev` before its stop had begun, its nodes left to notice
 * and its temp directory behind.
 */
export function endQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    let terminalGone = false;
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (terminalGone) return;
      if (e.code === 'EIO' && stream.isTTY) {
        terminalGone = true;
        return;
      }
      if (e.code !== 'EPIPE') throw e;
      process.exit(process.exitCode ?? 0);
    });
  }
}

/**
 * How a command that failed ends: its message on stderr and the exit status of the
 * table above. Shared by the command line (daemon/cli.ts) and the node process's own
 * entry (daemon/node-main.ts), so that `quorumd start` fails the same way whichever
 * build runs it.
 */
export function reportCommandError(err: unknown): void {
  if (err instanceof Error && err.name === 'ConfigError') {
    process.stderr.write(`quorumd: invalid configuration:\n${err.message}\n`);
    process.exitCode = EXIT.USAGE;
    return;
  }
  if (err instanceof Error && (err.name === 'ClientError' || err.name === 'UsageError')) {
    // A bad --node URL, an unreadable token file, a bad option value: nothing was tried.
    process.stderr.write(`quorumd: ${err.message}\n`);
    process.exitCode = EXIT.USAGE;
    return;
  }
  if (err instanceof NotImplementedError) {
    process.stderr.write(`quorumd: ${err.message}\n`);
    process.exitCode = EXIT_NOT_IMPLEMENTED;
    return;
  }
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(/^quorumd\b/.test(msg) ? `${msg}\n` : `quorumd: ${msg}\n`);
  process.exitCode = EXIT.NO;
}
