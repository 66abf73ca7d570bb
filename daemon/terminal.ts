/**
 * A quorumd process whose terminal went away (an SSH session dropped, a terminal window
 * closed) must still end with the status it chose, not killed inside Node's own exit.
 *
 * Why: at exit, Node puts each of stdin, stdout and stderr that was a terminal when it
 * started back into the terminal mode it found (tcsetattr, from the atexit handler
 * ResetStdio in Node's src/node.cc). On a terminal that has hung up, tcsetattr fails
 * with EIO, and Node 20 asserts that it may fail only with EPERM: the process aborts
 * (SIGABRT, or SIGSEGV when the abort's own stack dump crashes in the half-torn-down
 * process) after its stop had finished. Node's issue 51519; fixed upstream by Node's
 * pull request 58200 ("src: remove overzealous tcsetattr error check"), which Node 20
 * does not have. Measured on Node v20.20.2, the process the session leader of a pty
 * whose master was closed: 20 of 20 `quorumd start` and 20 of 20 `quorumd dev` ended
 * by a signal, as did 20 of 20 runs of a three-line script that handles SIGHUP and
 * calls process.exit(0). Not only the session leader: what matters is that stdio is
 * still the terminal that hung up when the process exits; `quorumd dev` run through a
 * shell in that terminal ended by SIGSEGV 10 times of 10 as well.
 *
 * How: Node skips a descriptor that is closed or is no longer the file it was at start.
 * So just before the process exits (an 'exit' listener: process.exit(), the end of the
 * event loop, an uncaught error), each of descriptors 0-2 that was a terminal at start
 * and is one no more (isatty() fails on a hung-up terminal) is closed and /dev/null
 * opened in its place (the lowest free descriptor: the one just closed). Output written
 * after that is dropped, as it was by the dead terminal. A terminal still there is left
 * as it is, and Node restores its mode as before.
 */
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Tty from 'node:tty';

let installed = false;

/**
 * Registers the 'exit' listener of the header (once per process). Call it early, before
 * anything can hang the terminal up: it notes which of descriptors 0-2 are terminals now.
 * node:tty is loaded only when one of them is a character device other than /dev/null:
 * a node under systemd (stdin /dev/null, output to the journal's socket) does without it.
 */
export function releaseDeadTerminalAtExit(): void {
  if (installed) return;
  installed = true;
  let devNull = -1;
  try {
    devNull = statSync('/dev/null').rdev;
  } catch {
    /* none: every character device is a candidate */
  }
  const candidates = [0, 1, 2].filter((fd) => {
    try {
      const st = fstatSync(fd);
      return st.isCharacterDevice() && st.rdev !== devNull;
    } catch {
      return false; // closed
    }
  });
  if (candidates.length === 0) return;
  const terminals = candidates.filter((fd) => tty().isatty(fd));
  if (terminals.length === 0) return;
  process.on('exit', () => {
    for (const fd of terminals) releaseIfHungUp(fd);
  });
}

const tty = (): typeof Tty => createRequire(import.meta.url)('node:tty') as typeof Tty;

/**
 * Puts /dev/null in descriptor `fd`'s place when `fd` was a terminal and is one no more
 * (hung up; or already closed, which costs a close that fails). Returns whether it did.
 * Exported for its test.
 */
export function releaseIfHungUp(fd: number): boolean {
  if (tty().isatty(fd)) return false;
  try {
    closeSync(fd);
  } catch {
    /* already closed: Node skips it too */
  }
  try {
    const nul = openSync('/dev/null', 'r+');
    // Another thread took `fd` between the two calls (it opened a file): that file is not
    // the terminal, so Node skips it; our /dev/null is not needed.
    if (nul !== fd) closeSync(nul);
  } catch {
    /* no /dev/null (a bare chroot): `fd` stays closed, which Node skips as well */
  }
  return true;
}
