/**
 * The child of test/daemon/terminal-hangup.test.ts, run as the session leader of a pty:
 * the stdio set-up of quorumd's entries (daemon/cli.ts, daemon/node-main.ts), then a
 * program that keeps writing to its terminal after the terminal hung up, as `quorumd
 * dev` does while it stops. It handles SIGHUP (as dev and start do), stops writing
 * 500 ms later, writes "done" into the file named by its argument, and ends with
 * status 7 (a status of its own choice, to be seen unchanged).
 */
import { writeFileSync } from 'node:fs';
import { endQuietlyOnClosedOutput } from '../../daemon/exit-codes.ts';
import { releaseDeadTerminalAtExit } from '../../daemon/terminal.ts';

endQuietlyOnClosedOutput();
releaseDeadTerminalAtExit();
const done = process.argv[2]!;
const writes = setInterval(() => {
  process.stdout.write('out\n');
  process.stderr.write('err\n');
}, 10);
process.on('SIGHUP', () => {
  setTimeout(() => {
    clearInterval(writes);
    writeFileSync(done, 'done');
    process.exitCode = 7;
  }, 500);
});
process.stdout.write('READY\n');
