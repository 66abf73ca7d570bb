/**
 * The `quorumd` command line (docs/cli.md). Each subcommand lives in its own module;
 * this file only declares the commands, their options and their help text.
 *
 * Commands that are not built yet say so at run time and exit with status 2,
 * naming the issue that brings them — they never pretend to work.
 */
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { QUORUMD_VERSION } from './version.ts';
import { EXIT, EXIT_TABLE, endQuietlyOnClosedOutput, NotImplementedError, reportCommandError, UsageError } from './exit-codes.ts';
import { releaseDeadTerminalAtExit } from './terminal.ts';

export { EXIT_NOT_IMPLEMENTED, NotImplementedError } from './exit-codes.ts';

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
    .version(QUORUMD_VERSION)
    .showHelpAfterError()
    .exitOverride()
    .addHelpText('after', `\nExit status (every command; docs/cli.md):\n${EXIT_TABLE.map(([c, m]) => `  ${c}  ${m}`).join('\n')}\n`);

  program
    .command('dev')
    .description('run a local cluster: embedded MQTT broker, N nodes on simulated relays, HTTP API per node')
    .option('--nodes <n>', 'number of nodes (1-7; default 3, 4 for pbft)', parseIntArg('--nodes', 1, 7))
    .option('--engine <engine>', 'raft, bully, paxos, zab, pbft, or etcd (starts a local etcd from Debian\'s etcd-server; the nodes elect through it)', 'raft')
    .option('--witness', 'add a witness member after the nodes (raft, paxos, zab): votes, never leads, keeps no data')
    .option('--observers <n>', 'add observers after the nodes (zab: ZooKeeper\'s non-voting members; 7 members in all at most)', parseIntArg('--observers', 0, 6), 0)
    .option('--byzantine-node <k>', 'TESTING ONLY, engine pbft: node nK runs as a lying replica', parseIntArg('--byzantine-node', 1, 7))
    .option('--byzantine-mode <list>', 'TESTING ONLY: what the lying node does (src/pbft/byzantine.ts: wrong-reply, equivocate, forge, silent, ...); default wrong-reply')
    .option('--base-port <port>', 'HTTP API of node nK on 127.0.0.1:<base-port + K>', parseIntArg('--base-port', 1, 65528), 7070)
    .option('--broker-port <port>', 'port of the in-process MQTT broker (0 = any free port)', parseIntArg('--broker-port', 0, 65535), 0)
    .option('--link <link>', 'mqtt (through the in-process broker; its Last Will speeds up failover) or tcp (direct between the nodes, n<K> on 127.0.0.1:<base-port + 10 + K>; fewer hops per write)', 'mqtt')
    .option('--data-dir <dir>', 'where node data goes (default: a fresh temp directory, removed at exit)')
    .option('--jobs <file>', 'YAML file with a `jobs:` list for every node (default: one demo job, heartbeat, every 10 s)')
    .option('--no-jobs', 'no scheduled job at all, not even the demo job')
    .action(async (opts) => {
      const { runDev } = await import('./dev.ts');
      opts.nodes ??= opts.engine === 'pbft' ? 4 : 3;
      // --no-jobs: an empty list, with no file to check (and so no checking child).
      if (opts.jobs === false) opts.jobs = [];
      else if (opts.jobs !== undefined) {
        // Checked by a short-lived child: the YAML parser, zod and node-cron would stay
        // in the supervisor for the whole session (daemon/config/jobs-file.ts).
        const { loadJobsFileApart } = await import('./config/jobs-file.ts');
        opts.jobs = await loadJobsFileApart(opts.jobs);
      }
      await runDev(opts);
    });

  program
    .command('start')
    .description('run one node on this board')
    .requiredOption('--config <file>', 'YAML configuration file')
    .action(async (opts: { config: string }) => {
      const { runStart } = await import('./start.ts');
      await runStart(opts.config);
    });

  const broker = program
    .command('broker')
    .description('run a standalone embedded MQTT broker, closed: node accounts derived from the cluster key and/or a users file')
    .option('--port <port>', 'TCP port', parseIntArg('--port', 0, 65535), 1883)
    .option('--host <address>', 'listen address (default 127.0.0.1; the LAN needs an explicit address)', '127.0.0.1')
    .option('--cluster-key-file <file>', 'accept node N as quorumd-<cluster>-<N> with the password derived from this key (mode 0600)')
    .option('--cluster <id>', 'wire cluster id of those node accounts', parseIntArg('--cluster', 0, 65535), 1)
    .option('--users <file>', 'YAML `users: [{username, password, nodeId?, cluster?}]` (mode 0600)')
    .option('--tls-cert <file>', 'serve mqtts with this certificate (PEM)')
    .option('--tls-key <file>', 'its private key (PEM, mode 0600)')
    .option('--tls-ca <file>', 'require client certificates signed by this CA')
    .action(async (opts: { port: number; host: string; clusterKeyFile?: string; cluster: number; users?: string; tlsCert?: string; tlsKey?: string; tlsCa?: string }) => {
      const { runBroker } = await import('./broker-cmd.ts');
      await runBroker(opts);
    });
  broker
    .command('passwords')
    .description('print username:password of node accounts derived from the cluster key (for mosquitto_passwd -U); takes --cluster-key-file and --cluster')
    .option('--nodes <range>', 'node ids, e.g. 1-5', '1-7')
    .action(async (opts: { nodes: string }) => {
      // --cluster-key-file and --cluster are the parent's options (commander parses them there).
      const p = broker.opts() as { clusterKeyFile?: string; cluster: number };
      if (p.clusterKeyFile === undefined) throw new Error('quorumd broker passwords: --cluster-key-file FILE is required');
      const { brokerPasswords } = await import('./broker-cmd.ts');
      process.stdout.write(brokerPasswords({ clusterKeyFile: p.clusterKeyFile, cluster: p.cluster, nodes: opts.nodes }));
    });

  // QUORUMD_API_URL, not QUORUMD_NODE: hooks and jobs get QUORUMD_NODE = the node's *name*
  // (and QUORUMD_API_URL = its API), so `quorumd kv put` inside a job reaches its own node.
  // A list: the command goes to the first node that can be reached; the next is tried
  // only when the request certainly did not arrive (daemon/client/http.ts callFirstReached).
  const nodeOpt = ['--node <url>', 'node API URL, or several comma-separated: the next one is tried only when a node was certainly not reached (refused, no route, unknown host, no connection within 5 s), never once the request may have arrived (env QUORUMD_API_URL)', process.env.QUORUMD_API_URL ?? 'http://127.0.0.1:7071'] as const;
  // Engine pbft: gather f + 1 matching signed replies from every --node (daemon/client/pbft.ts).
  const pbftOpt = ['--pbft <config>', 'engine pbft: trust a result only when f + 1 nodes signed it; asks every --node URL; keys from this node config file (env QUORUMD_PBFT_CONFIG)', process.env.QUORUMD_PBFT_CONFIG] as const;
  // The API token: --token-file, QUORUMD_API_TOKEN(_FILE), --data-dir / QUORUMD_DATA_DIR, /var/lib/quorumd (daemon/client/token.ts).
  // Client commands find the API token (daemon/client/token.ts): --token-file,
  // QUORUMD_API_TOKEN(_FILE), --data-dir / QUORUMD_DATA_DIR, /var/lib/quorumd.
  const tokenOpts = (cmd: Command): Command =>
    cmd
      .option('--token-file <file>', 'API token file (else QUORUMD_API_TOKEN, QUORUMD_API_TOKEN_FILE, <data dir>/api.token)')
      .option('--data-dir <dir>', 'a node\'s data directory: its api.token is used (env QUORUMD_DATA_DIR; default /var/lib/quorumd)')
      .hook('preAction', async (_this, action) => {
        // `fence confirm` takes them from `fence` (its parent) like --node.
        const o = { ...(action.parent?.opts() ?? {}), ...action.opts() } as { tokenFile?: string; dataDir?: string };
        const { setTokenSources } = await import('./client/http.ts');
        setTokenSources({ tokenFile: o.tokenFile, dataDir: o.dataDir });
      });

  tokenOpts(program
    .command('status')
    .description('show the cluster as seen by a node (one row per --node URL)')
    .option('--watch', 'refresh every second until Ctrl-C')
    .option('--node <url>', 'node API URL, or several comma-separated: one row each (env QUORUMD_API_URL)', nodeOpt[2])
    .action(async (opts: { watch?: boolean; node: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = await c.status(opts.node, { watch: opts.watch === true });
    }));

  const kv = program.command('kv').description('linearizable key-value store');
  tokenOpts(kv.command('get <key>')
    .description('print the value (raw) of a key; exit 1 if absent')
    .option('--stale', 'read the node\'s local state (not linearizable, works without a leader)')
    .option(...nodeOpt)
    .option(...pbftOpt)
    .action(async (key: string, opts: { stale?: boolean; node: string; pbft?: string }) => {
      const c = await import('./client/commands.ts');
      if (opts.pbft !== undefined && opts.stale) throw new UsageError('quorumd kv get: --stale and --pbft do not go together (a --pbft read is ordered and signed)');
      process.exitCode = opts.pbft !== undefined ? await c.kvPbft(opts.node, opts.pbft, { kind: 'get', key }) : await c.kvGet(opts.node, key, { stale: opts.stale === true });
    }));
  tokenOpts(kv.command('put <key> <value>')
    .description('write a value; prints index=<n>')
    .option('--cas <index>', 'only if the key\'s index is <index> (0 = only if absent)', parseIntArg('--cas', 0, Number.MAX_SAFE_INTEGER))
    .option(...nodeOpt)
    .option(...pbftOpt)
    .action(async (key: string, value: string, opts: { cas?: number; node: string; pbft?: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = opts.pbft !== undefined ? await c.kvPbft(opts.node, opts.pbft, { kind: 'put', key, value, ...(opts.cas !== undefined ? { cas: opts.cas } : {}) }) : await c.kvPut(opts.node, key, value, { cas: opts.cas });
    }));
  tokenOpts(kv.command('del <key>')
    .description('delete a key; prints index=<n>')
    .option('--cas <index>', 'only if the key\'s index is <index>', parseIntArg('--cas', 0, Number.MAX_SAFE_INTEGER))
    .option(...nodeOpt)
    .option(...pbftOpt)
    .action(async (key: string, opts: { cas?: number; node: string; pbft?: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = opts.pbft !== undefined ? await c.kvPbft(opts.node, opts.pbft, { kind: 'del', key, ...(opts.cas !== undefined ? { cas: opts.cas } : {}) }) : await c.kvDel(opts.node, key, { cas: opts.cas });
    }));

  // `jobs` runs the action; `jobs reset NAME` is a subcommand (as `fence confirm`).
  const jobsCmd = tokenOpts(program
    .command('jobs')
    .description('scheduled jobs: last run (slot, node, result), next run; `jobs reset NAME` withdraws a future claim')
    .option('--json', 'print /v1/jobs as JSON')
    .option(...nodeOpt)
    .action(async (opts: { json?: boolean; node: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = await c.jobs(opts.node, { json: opts.json === true });
    }));
  jobsCmd
    .command('reset <name>')
    .description('operator: withdraw the job\'s latest claim if it is after the active leader\'s clock (claimed by a leader whose clock was ahead), so that its next slot runs (--node as for jobs)')
    .action(async (name: string) => {
      // --node is parsed by the parent `jobs` command wherever it appears.
      const c = await import('./client/commands.ts');
      process.exitCode = await c.jobReset((jobsCmd.opts() as { node: string }).node, name, c.stdio);
    });

  const svc = program.command('services').description('service discovery: instances with health checks, tied to their node\'s liveness');
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  tokenOpts(svc.command('list [name]')
    .description('services (with healthy/total), or the instances of NAME: name/instance address:port health node tags')
    .option('--healthy', 'only passing or warning instances')
    .option('--tag <tags>', 'only instances with every tag (comma-separated)')
    .option('--json', 'print the API answer as JSON')
    .option(...nodeOpt)
    .action(async (name: string | undefined, opts: { healthy?: boolean; tag?: string; json?: boolean; node: string }) => {
      const c = await import('./client/services.ts');
      process.exitCode = await c.servicesList(opts.node, name, opts);
    }));
  tokenOpts(svc.command('register <name> <instance>')
    .description('register an instance on the node asked (it runs the check; its liveness keeps the instance); prints index=<n> health=<h>')
    .requiredOption('--address <addr>', 'IP address or host name of the instance')
    .requiredOption('--port <port>', 'its port', parseIntArg('--port', 1, 65535))
    .option('--tag <tag>', 'a tag (repeat for more)', collect)
    .option('--meta <k=v>', 'a metadata pair (repeat for more)', collect)
    .option('--check-ttl <duration>', 'TTL check: `quorumd services pass` at least this often')
    .option('--check-http <url>', 'HTTP check: GET from the node, 2xx passing')
    .option('--check-tcp <host:port>', 'TCP check: a connect from the node')
    .option('--check-script <command>', 'script check: program and arguments (no shell), exit 0 passing, 1 warning (needs services.scriptChecks and an operator token)')
    .option('--interval <duration>', 'how often to run the check (default 10s)')
    .option('--timeout <duration>', 'how long one check may take')
    .option(...nodeOpt)
    .action(async (name: string, instance: string, opts: { address: string; port: number; node: string }) => {
      const c = await import('./client/services.ts');
      process.exitCode = await c.servicesRegister(opts.node, name, instance, opts);
    }));
  tokenOpts(svc.command('deregister <name> <instance>')
    .description('remove an instance; prints index=<n>')
    .option(...nodeOpt)
    .action(async (name: string, instance: string, opts: { node: string }) => {
      const c = await import('./client/services.ts');
      process.exitCode = await c.servicesDeregister(opts.node, name, instance);
    }));
  tokenOpts(svc.command('pass <name> <instance>')
    .description('TTL heartbeat of an instance (ask the node that registered it)')
    .option('--note <text>', 'a note kept as the check output')
    .option(...nodeOpt)
    .action(async (name: string, instance: string, opts: { note?: string; node: string }) => {
      const c = await import('./client/services.ts');
      process.exitCode = await c.servicesPass(opts.node, name, instance, opts);
    }));
  tokenOpts(svc.command('watch [name]')
    .description('print the catalog (or NAME\'s instances) as a JSON line now and at every change, until Ctrl-C')
    .option('--healthy', 'only passing or warning instances')
    .option('--tag <tags>', 'only instances with every tag (comma-separated)')
    .option('--count <n>', 'stop after n lines', parseIntArg('--count', 1, 1_000_000))
    .option(...nodeOpt)
    .action(async (name: string | undefined, opts: { healthy?: boolean; tag?: string; count?: number; node: string }) => {
      const c = await import('./client/services.ts');
      process.exitCode = await c.servicesWatch(opts.node, name, opts);
    }));

  const lock = program.command('lock').description('locks with fencing tokens');
  tokenOpts(lock.command('acquire <name>')
    .description('acquire a lock; prints token=<fencing token> lease=<secret lease id> ttlMs=<n>; exit 1 if held')
    .option('--ttl <duration>', 'lease, e.g. 15s, 500ms, 2m', '15s')
    .option('--owner <owner>', 'who holds it', `${process.env.USER ?? 'cli'}@${process.pid}`)
    .option(...nodeOpt)
    .option(...pbftOpt)
    .action(async (name: string, opts: { ttl: string; owner: string; node: string; pbft?: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = opts.pbft !== undefined ? await c.lockPbft(opts.node, opts.pbft, { kind: 'acquire', name, ttl: opts.ttl, owner: opts.owner }) : await c.lockAcquire(opts.node, name, opts);
    }));
  tokenOpts(lock.command('release <name>')
    .description('release a lock: --lease is the lease id the acquire printed (the fencing token releases nothing)')
    .requiredOption('--lease <id>', 'the secret lease id of the grant')
    .option(...nodeOpt)
    .option(...pbftOpt)
    .action(async (name: string, opts: { lease: string; node: string; pbft?: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = opts.pbft !== undefined ? await c.lockPbft(opts.node, opts.pbft, { kind: 'release', name, lease: opts.lease }) : await c.lockRelease(opts.node, name, opts);
    }));
  tokenOpts(lock.command('list [prefix]')
    .description('who holds which lock: holder, fencing token, ttl, time left (as the node asked has applied it)')
    .option('--json', 'print /v1/locks as JSON')
    .option(...nodeOpt)
    .action(async (prefix: string | undefined, opts: { json?: boolean; node: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = await c.lockList(opts.node, prefix ?? '', { json: opts.json === true });
    }));
  tokenOpts(lock.command('renew <name>')
    .description('renew a lock: it runs its ttl again from now; --lease is the lease id the acquire printed; prints renewed token=<t> ttlMs=<n>')
    .requiredOption('--lease <id>', 'the secret lease id of the grant')
    .option(...nodeOpt)
    .option(...pbftOpt)
    .action(async (name: string, opts: { lease: string; node: string; pbft?: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = opts.pbft !== undefined ? await c.lockPbft(opts.node, opts.pbft, { kind: 'renew', name, lease: opts.lease }) : await c.lockRelease(opts.node, name, { lease: opts.lease, renew: true });
    }));

  // `fence NODE` runs the action; `fence confirm NODE` is a subcommand (commander
  // dispatches to it when the first word is "confirm").
  const fence = tokenOpts(program
    .command('fence')
    .description('operator: fence (power off, verify) a node through the fence devices of the node asked; `fence confirm NODE` declares it safely down')
    .argument('<node>', 'member name of the node to fence')
    .option(...nodeOpt)
    .action(async (target: string, opts: { node: string }) => {
      const c = await import('./client/commands.ts');
      process.exitCode = await c.fence(opts.node, target, c.stdio);
    }));
  fence
    .command('confirm <node>')
    .description('operator: declare NODE safely down (powered off by hand): a leader waiting for it may become active (--node as for fence)')
    .action(async (target: string) => {
      // --node is parsed by the parent `fence` command wherever it appears.
      const c = await import('./client/commands.ts');
      process.exitCode = await c.fenceConfirm((fence.opts() as { node: string }).node, target, c.stdio);
    });

  program
    .command('witness')
    .description('run the witness member of a cluster (votes, never leads, keeps no data): two boards + a witness')
    .requiredOption('--config <file>', 'YAML configuration file whose node is a member with role: witness')
    .action(async (opts: { config: string }) => {
      const { runWitness } = await import('./start.ts');
      await runWitness(opts.config);
    });

  const config = program.command('config').description('configuration tools');
  config
    .command('validate <file>')
    .description('check a configuration file without starting; exit 2 with every problem (key, line, expected)')
    .action(async (file: string) => {
      const { loadConfigFile } = await import('./config/load.ts');
      const r = loadConfigFile(file);
      const c = r.config;
      process.stdout.write(
        `${file}: ok — node ${r.self.name} (id ${r.self.id}) of cluster ${c.cluster.name} (${c.members.length} members), ` +
          `engine ${c.engine}, links: ${[c.mqtt ? `mqtt(${c.mqtt.brokers.join(',')})` : '', ...(c.serial ?? []).map((s) => `serial(${s.path}→${s.peer})`)].filter(Boolean).join(' ')}, ` +
          `HTTP ${c.http.listen}${c.http.tls ? ' (https)' : ''}, API token ${r.http.tokenFile ?? '(inline)'}${r.http.credentials.length ? ` + ${r.http.credentials.length} scoped` : ''}, data ${r.dataDir}\n`,
      );
    });

  config
    .command('validate-jobs <file>')
    .description('check a file with only a `jobs:` list (what `quorumd dev --jobs` takes); exit 2 with every problem')
    .option('--json', 'print the checked jobs, defaults filled in, as a JSON array')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { loadJobsFile } = await import('./config/load.ts');
      const jobs = loadJobsFile(file);
      process.stdout.write(opts.json ? `${JSON.stringify(jobs)}\n` : `${file}: ok — ${jobs.length} job${jobs.length === 1 ? '' : 's'}${jobs.map((j, i) => `${i === 0 ? ': ' : ', '}${j.name} (${j.cron})`).join('')}\n`);
    });

  program
    .command('sim')
    .description('deterministic simulation of a whole cluster in virtual time')
    .option('--seed <n>', 'one seed', parseIntArg('--seed', 0, 2 ** 32 - 1))
    .option('--seeds <a..b>', 'a range of seeds, e.g. 1..300')
    .option('--nodes <n>', 'number of nodes', parseIntArg('--nodes', 1, 7), 5)
    .option('--witness', 'add a witness member')
    .option('--observers <n>', 'add observers (engine zab: ZooKeeper\'s non-voting members), 0-4')
    .option('--engine <engine>', 'raft, bully, paxos, zab or pbft', 'raft')
    .option('--time <duration>', 'virtual time per seed, e.g. 60s', '60s')
    .option('--faults <list>', 'partition,crash,power,loss,reorder,clock,disk,stall (and byzantine for engine pbft)', '')
    .option('--no-stonith', 'disable fencing')
    .option('--locks', 'lock clients too, with the client-side lock checks (raft, paxos, zab, pbft; bully has no locks)')
    .option('--process-clocks', 'each process\'s monotonic clock starts at its own origin, with a fraction, at every process start (as performance.now())')
    .option('--json', 'one JSON object per line')
    .option('--html <file>', 'write the timeline of the seed (--seed) as a self-contained HTML page')
    .option('--html-dir <dir>', 'write a timeline page for every failing seed, and index.html, into this folder')
    .action(async (opts) => {
      const { runSimCommand } = await import('./sim.ts');
      process.exitCode = await runSimCommand(opts);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  endQuietlyOnClosedOutput();
  // A terminal that hangs up must not turn the end into a crash inside Node's exit.
  releaseDeadTerminalAtExit();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors (already printed)
      // are 2 like every other bad input, whoever found them (docs/cli.md).
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    reportCommandError(err);
  }
}

// Run directly (`npx tsx daemon/cli.ts sim ...`, from the sources): the same as the bin.
// In the compiled build the bin imports this module and calls main() itself.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv);
