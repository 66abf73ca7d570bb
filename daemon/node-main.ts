/**
 * The node process's own entry: `quorumd start --config <file>` and `quorumd witness
 * --config <file>`, the two commands that run for days and are started three times over
 * by `quorumd dev` (and once per boot by systemd). The build bundles this module, and
 * everything it reaches, into one CommonJS file (dist/node.cjs) that the bin compiles
 * with a V8 code cache (bin/code-cache.js, docs/install-pi.md "Start-up"); the full
 * command line (daemon/cli.ts) stays an ES module build for everything else.
 *
 * Only the exact forms above come here (the bin checks the arguments); anything else,
 * `start --help` included, goes through the full command line, which ends in the same
 * runStart/runWitness and the same error reporting.
 */
import { endQuietlyOnClosedOutput, reportCommandError } from './exit-codes.ts';
import { runStart, runWitness } from './start.ts';
import { releaseDeadTerminalAtExit } from './terminal.ts';

export async function runNodeCommand(command: 'start' | 'witness', configFile: string): Promise<void> {
  endQuietlyOnClosedOutput();
  // A terminal that hangs up must not turn the end into a crash inside Node's exit.
  releaseDeadTerminalAtExit();
  try {
    await (command === 'start' ? runStart(configFile) : runWitness(configFile));
  } catch (err) {
    reportCommandError(err);
  }
}

/**
 * The node's config reader. In dist/node.cjs this is daemon/config/load-apart.ts (the
 * parser loaded for the read and released after it); exported for its test
 * (test/daemon/config-apart.test.ts).
 */
export { loadConfigFile } from './config/load.ts';
