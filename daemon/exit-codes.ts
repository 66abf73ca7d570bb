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
   * does). 70 is EX_SOFTWARE of sysexits.h.
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
  [EXIT.FATAL, 'start: the node stopped itself on a fatal error (an internal error, logged with its stack, or a storage failure); a supervisor restarts it'],
];

/** Thrown for a bad option value found by a command's own checks (exit 2, like the parser's). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
