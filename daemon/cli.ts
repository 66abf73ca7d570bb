/**
 * The `quorumd` command line (DESIGN §6). Each subcommand lives in its own module;
 * this file only declares the commands, their options and their help text.
 *
 * Commands that are not built yet say so at run time and exit with status 2,
 * naming the issue that brings them — they never pretend to work.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';

/** Exit status for "this command exists in the contract but is not implemented yet". */
export const EXIT_NOT_IMPLEMENTED = 2;

export class NotImplementedError extends Error {
  constructor(what: string, issue: string) {
    super(`not implemented yet: ${what} (arrives with ${issue})`);
    this.name = 'NotImplementedError';
  }
}

export function parseIntArg(name: string, min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

function notYet(what: string, issue: string): never {
  throw new NotImplementedError(what, issue);
}

export function buildProgram(): Command {
  const program = new Command('quorumd')
    .description('Consensus daemon for small Linux boards: one leader, replicated state, fenced actuators.')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('dev')
    .description('run a local cluster: embedded MQTT broker, N nodes on simulated relays, HTTP API per node')
    .option('--nodes <n>', 'number of nodes (1-7)', parseIntArg('--nodes', 1, 7), 3)
    .option('--engine <engine>', 'raft or bully', 'raft')
    .option('--base-port <port>', 'HTTP API of node nK on 127.0.0.1:<base-port + K>', parseIntArg('--base-port', 1, 65528), 7070)
    .action(async (opts) => {
      const { runDev } = await import('./dev.ts');
      await runDev(opts);
    });

  program
    .command('start')
    .description('run one node on this board')
    .requiredOption('--config <file>', 'YAML configuration file')
    .action(() => notYet('quorumd start', 'issue 5 (the daemon)'));

  program
    .command('broker')
    .description('run a standalone embedded MQTT broker')
    .option('--port <port>', 'TCP port', parseIntArg('--port', 1, 65535), 1883)
    .action(() => notYet('quorumd broker', 'issue 4/5 (MQTT link, embedded broker)'));

  program
    .command('status')
    .description('show the cluster as seen by a node')
    .option('--watch', 'refresh continuously')
    .option('--node <url>', 'node API URL', 'http://127.0.0.1:7071')
    .action(() => notYet('quorumd status', 'issue 5 (the daemon)'));

  const kv = program.command('kv').description('linearizable key-value store');
  kv.command('get <key>').action(() => notYet('quorumd kv get', 'issue 5 (the daemon)'));
  kv.command('put <key> <value>').action(() => notYet('quorumd kv put', 'issue 5 (the daemon)'));
  kv.command('del <key>').action(() => notYet('quorumd kv del', 'issue 5 (the daemon)'));

  const lock = program.command('lock').description('locks with fencing tokens');
  lock.command('acquire <name>').action(() => notYet('quorumd lock acquire', 'issue 5 (the daemon)'));
  lock.command('release <name>').action(() => notYet('quorumd lock release', 'issue 5 (the daemon)'));

  program
    .command('fence <node>')
    .description('operator: fence (power off) a node through its configured fence devices')
    .action(() => notYet('quorumd fence', 'issue 6 (STONITH)'));

  const config = program.command('config').description('configuration tools');
  config.command('validate <file>').action(() => notYet('quorumd config validate', 'issue 5 (the daemon)'));

  program
    .command('sim')
    .description('deterministic simulation of a whole cluster in virtual time')
    .option('--seed <n>', 'one seed', parseIntArg('--seed', 0, 2 ** 32 - 1))
    .option('--seeds <a..b>', 'a range of seeds, e.g. 1..300')
    .option('--nodes <n>', 'number of nodes', parseIntArg('--nodes', 1, 7), 5)
    .option('--witness', 'add a witness member')
    .option('--engine <engine>', 'raft or bully', 'raft')
    .option('--time <duration>', 'virtual time per seed, e.g. 60s', '60s')
    .option('--faults <list>', 'partition,crash,power,loss,reorder,clock,disk', '')
    .option('--no-stonith', 'disable fencing')
    .option('--json', 'one JSON object per line')
    .action(async (opts) => {
      const { runSimCommand } = await import('./sim.ts');
      process.exitCode = await runSimCommand(opts);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed.
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof NotImplementedError) {
      process.stderr.write(`quorumd: ${err.message}\n`);
      process.exitCode = EXIT_NOT_IMPLEMENTED;
      return;
    }
    process.stderr.write(`quorumd: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
