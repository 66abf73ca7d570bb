/**
 * `quorumd broker`: a standalone embedded aedes broker (hal/mqtt/broker.ts) for boards
 * without mosquitto, closed by default:
 *
 *   quorumd broker --cluster-key-file /etc/quorumd/cluster.key [--cluster 1]
 *       node accounts derived from the cluster key: nothing new to distribute (the
 *       nodes derive the same passwords); the broker then holds the key, so run it
 *       where a node could run
 *   quorumd broker --users /etc/quorumd/broker-users.yaml
 *       accounts from a file (mode 0600): observers, or node passwords printed by
 *       `quorumd broker passwords` — the broker never sees the cluster key
 *   --tls-cert FILE --tls-key FILE [--tls-ca FILE]   mqtts (with --tls-ca: client certificates required)
 *
 * Without accounts it refuses to start; a non-loopback --host is refused without
 * accounts too (startBroker). `quorumd broker passwords` prints `username:password`
 * lines of node accounts, for `mosquitto_passwd -U` (docs/mqtt.md).
 */
import { readFileSync } from 'node:fs';
import './config/zod.ts'; // before zod: no JIT (see there)
import * as z from 'zod';
import { startBroker, type BrokerUser, type RunningBroker } from '../hal/mqtt/broker.ts';
import { nodePassword, nodeUsername } from '../hal/mqtt/credentials.ts';
import { readSecretFile } from './config/secrets.ts';
import { parseKey } from './config/plain.ts';
import { parseYamlWithSchema } from './config/load.ts';

export interface BrokerCmdOptions {
  port: number;
  host?: string;
  users?: string;
  clusterKeyFile?: string;
  /** Wire cluster id of the derived node accounts. Default 1. */
  cluster?: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

const usersFile = z.strictObject({
  users: z
    .array(
      z.strictObject({
        username: z.string({ error: 'expected a user name' }).min(1),
        password: z.string({ error: 'expected a password of at least 8 characters' }).min(8, { error: 'expected a password of at least 8 characters' }),
        /** The node this account speaks for; absent = observer (reads leader and presence only). */
        nodeId: z.number({ error: 'expected a node id 1..254' }).int().min(1).max(254).optional(),
        cluster: z.number({ error: 'expected a cluster id 0..65535' }).int().min(0).max(65535).optional(),
      }),
      { error: 'expected a list of {username, password, nodeId?, cluster?}' },
    )
    .min(1, { error: 'expected at least one user' }),
});

/** Reads a users file (YAML `users: [...]`, mode 0600). Errors name the file and the key. */
export function loadUsersFile(file: string): BrokerUser[] {
  const text = readSecretFile(file, '--users');
  return parseYamlWithSchema(text, file, usersFile, 'expected a YAML mapping with a `users:` list').value.users.map((u) => ({
    username: u.username,
    password: u.password,
    ...(u.nodeId !== undefined ? { nodeId: u.nodeId } : {}),
    ...(u.cluster !== undefined ? { cluster: u.cluster } : {}),
  }));
}

function readKey(file: string, what: string): Uint8Array {
  const k = parseKey(readSecretFile(file, what));
  if (!k) throw new Error(`${what} ${file}: expected a key: 32-128 hex digits or base64:<16-64 bytes>`);
  return k;
}

export async function runBroker(opts: BrokerCmdOptions): Promise<RunningBroker> {
  const host = opts.host ?? '127.0.0.1';
  const users = opts.users !== undefined ? loadUsersFile(opts.users) : [];
  const cluster = opts.cluster ?? 1;
  const clusterKeys = opts.clusterKeyFile !== undefined ? [{ cluster, keys: [readKey(opts.clusterKeyFile, '--cluster-key-file')] }] : [];
  if (users.length === 0 && clusterKeys.length === 0) {
    throw new Error('quorumd broker: no accounts: give --cluster-key-file FILE (node accounts derived from the cluster key) and/or --users FILE; the broker is never open');
  }
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new Error('quorumd broker: --tls-cert and --tls-key go together');
  const tls = opts.tlsCert !== undefined
    ? { cert: readFileSync(opts.tlsCert), key: readSecretFile(opts.tlsKey!, '--tls-key'), ...(opts.tlsCa !== undefined ? { ca: readFileSync(opts.tlsCa), requestCert: true } : {}) }
    : undefined;
  let b: RunningBroker;
  try {
    b = await startBroker({ port: opts.port, host, users, clusterKeys, ...(tls ? { tls } : {}), log: (line) => void process.stderr.write(`quorumd ${line}\n`) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new Error(`quorumd broker: port ${opts.port} on ${host} is in use (EADDRINUSE); stop what uses it (ss -ltnp 'sport = :${opts.port}') or pick another --port`);
    if (code === 'EACCES') throw new Error(`quorumd broker: not allowed to listen on port ${opts.port} of ${host} (EACCES): ports below 1024 need privileges; pick --port 1024 or above`);
    if (code === 'EADDRNOTAVAIL') throw new Error(`quorumd broker: ${host} is not an address of this machine (EADDRNOTAVAIL); give --host one of its addresses`);
    throw err;
  }
  const who = [clusterKeys.length ? `node accounts of cluster ${cluster} (derived from the key)` : '', users.length ? `${users.length} account(s) from ${opts.users}` : ''].filter(Boolean).join(' + ');
  process.stdout.write(`quorumd broker: listening on ${tls ? 'mqtts' : 'mqtt'}://${b.host}:${b.port}; accounts: ${who} (Ctrl-C stops it)\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    b.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The terminal it was started from went away (an SSH session dropped, a window closed):
  // close as on Ctrl-C and exit 0, not killed by Node's default for SIGHUP. `on`, not
  // `once`: a further SIGHUP during the close is ignored rather than fatal.
  process.on('SIGHUP', stop);
  return b;
}

/** `quorumd broker passwords`: `username:password` of node accounts, for mosquitto_passwd -U. */
export function brokerPasswords(o: { clusterKeyFile: string; cluster: number; nodes: string }): string {
  const key = readKey(o.clusterKeyFile, '--cluster-key-file');
  const m = /^(\d{1,3})(?:(?:-|\.\.)(\d{1,3}))?$/.exec(o.nodes);
  const ids = m ? Array.from({ length: Number(m[2] ?? m[1]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i) : [];
  if (!m || ids.length === 0 || ids[0]! < 1 || ids.at(-1)! > 254) throw new Error(`--nodes: expected an id or a range such as 1-5 within 1..254, got ${JSON.stringify(o.nodes)}`);
  return ids.map((id) => `${nodeUsername(o.cluster, id)}:${nodePassword(key, o.cluster, id)}\n`).join('');
}
