/**
 * The exit-code table (daemon/exit-codes.ts, docs/cli.md), row by row, through the real
 * CLI: every case is a child process `node bin/quorumd.js ...` as a user runs it. The
 * nodes it talks to are API servers in this process over fake backends that answer
 * 503 or 504 on demand, a read-only credential, a socket that drops the connection
 * after the request arrived, and a port where nothing listens.
 *
 * The rows that matter most for scripts: a write to a node that was never reached is
 * 3 (not applied, safe to retry), a write whose connection was lost after sending is 4
 * (unknown: read back first), and a read never ends in 4.
 */
import { spawnTied } from '../helpers/tied.ts';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../daemon/http/server.ts';
import type { StatusView } from '../../daemon/http/backend.ts';
import { EXIT, EXIT_TABLE } from '../../daemon/exit-codes.ts';
import { FakeBackend } from './http/fake-backend.ts';
import { testToken, testTokenFile } from '../helpers/auth.ts';
import { devConfig } from '../../daemon/dev.ts';
import { ensureTokenFile } from '../../daemon/config/secrets.ts';
import { freeBasePort } from '../helpers/ports.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');
const work = mkdtempSync(join(tmpdir(), 'quorumd-exit-codes-'));

class WitnessBackend extends FakeBackend {
  override status(): StatusView {
    return { ...super.status(), witness: true, role: 'follower' };
  }
}

const servers: ApiServer[] = [];
const url: Record<'ok' | 'unavailable' | 'unknown' | 'witness', string> = {} as never;
const readOnlyToken = 'read-only-token-0123456789abcdef';
let dropper: Server;
let dropUrl = '';
// A port where nothing listens: port 1 (tcpmux, never served here; test/hal/mqtt/link.test.ts
// does the same). A port bound and closed again was taken by another test file's server now
// and then (test files run in parallel), and the request then waited out its 2 s instead of
// being refused.
const closedUrl = 'http://127.0.0.1:1';
let busyPort = 0;
let busy: Server;
// Answers 400 to every request (a node calling the request malformed, for the commands
// whose input the CLI cannot check itself, e.g. `services deregister`).
// Accepts the TCP connection and never answers: an https:// client's TLS handshake never
// ends, so its request certainly never left (the connect timeout, 5 s, passes it over).
let silent: Server;
let silentTlsUrl = '';
let malformed: HttpServer;
let malformedUrl = '';
// Answer every request as a node does once its stop has begun (daemon/http/server.ts
// drain: 503, "tried": false, Retry-After), and as a follower does to `fence confirm`
// (409 not-leader) or a node that heard the target lately (409 node-alive). A drained
// API server itself cannot stand in for the first: its listener closes within
// milliseconds, and a new connection is then refused (test/daemon/client-pass-over.test.ts
// and test/daemon/e2e/cli-stopping.test.ts meet the real one).
let canned: HttpServer[] = [];
const cannedUrl: Record<'stopping' | 'notLeader' | 'alive', string> = {} as never;
const sockets = new Set<Socket>();

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)));
}

beforeAll(async () => {
  testTokenFile(); // QUORUMD_API_TOKEN_FILE for the children: they find the token as a user's shell would
  for (const mode of ['ok', 'unavailable', 'unknown', 'witness'] as const) {
    const b = mode === 'witness' ? new WitnessBackend() : new FakeBackend();
    if (mode !== 'witness') b.mode = mode;
    const srv = await startApiServer(b, { port: 0, backstopMs: 300, credentials: [{ name: 'token', scope: 'operator', token: testToken() }, { name: 'monitor', scope: 'read', token: readOnlyToken }] });
    servers.push(srv);
    url[mode] = `http://127.0.0.1:${srv.address().port}`;
  }
  // Reads the request, then drops the connection: the request was sent, no answer came.
  dropper = createServer((s) => {
    sockets.add(s);
    s.once('data', () => s.destroy());
  });
  dropUrl = `http://127.0.0.1:${await listen(dropper)}`;
  silent = createServer((s) => void sockets.add(s));
  silentTlsUrl = `https://127.0.0.1:${await listen(silent)}`;
  busy = createServer((s) => s.destroy());
  busyPort = await listen(busy);
  malformed = createHttpServer((req, res) => {
    req.resume();
    res.writeHead(400, { 'Content-Type': 'application/json' }).end('{"error":"name: expected a DNS label"}');
  });
  malformedUrl = `http://127.0.0.1:${await listen(malformed as unknown as Server)}`;
  const answers = {
    stopping: [503, { error: 'node n7 is stopping; this request was not tried: ask another node', code: 'unavailable', tried: false }, { 'Retry-After': '1', Connection: 'close' }],
    notLeader: [409, { error: 'n7 is not the leader (n8 is): a follower hears only its leader, so it cannot tell whether n9 is alive; confirm on the leader n8', code: 'not-leader' }, {}],
    alive: [409, { error: 'n9 is alive: this node accepted an authenticated message from it 12 ms ago; confirm only a node that is powered off', code: 'node-alive' }, {}],
  } as const;
  for (const k of ['stopping', 'notLeader', 'alive'] as const) {
    const [status, body, headers] = answers[k];
    const h = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body) + '\n');
    });
    canned.push(h);
    cannedUrl[k] = `http://127.0.0.1:${await listen(h as unknown as Server)}`;
  }
  // Token files that hold no token: two lines (CR LF inside: an Authorization header
  // cannot carry it), nothing at all.
  writeFileSync(join(work, 'crlf.token'), 'abcdefghijklmnop\r\nqrstuvwxyz012345\n');
  writeFileSync(join(work, 'empty.token'), '');
  writeFileSync(join(work, 'bad.yaml'), 'cluster: { name: x, id: 1, keyFile: none.key }\nmembers: []\n');
  writeFileSync(join(work, 'cluster.key'), 'ab'.repeat(32) + '\n');
  chmodSync(join(work, 'cluster.key'), 0o600);
  // A one-node cluster (its broker is not there: the node ticks and leads alone anyway) for the fatal row.
  ensureTokenFile(join(work, 'alone.token'), 'test token');
  const httpBase = await freeBasePort(1);
  writeFileSync(join(work, 'alone.yaml'), devConfig({ k: 1, n: 1, keyFile: join(work, 'cluster.key'), tokenFile: join(work, 'alone.token'), brokerUrl: closedUrl.replace('http:', 'mqtt:'), basePort: httpBase, dir: work, jobs: [] }));
});

afterAll(async () => {
  for (const s of servers) await s.close();
  for (const s of sockets) s.destroy();
  dropper?.close();
  busy?.close();
  silent?.close();
  malformed?.close();
  for (const h of canned) h.close();
  canned = [];
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  out: string;
  err: string;
  ms: number;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const c = spawnTied(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    // 'close', not 'exit': 'exit' may come before the last of stdout and stderr is read (a
    // fresh-clone run lost a row's whole message so, and the row failed on an empty string).
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err, ms: Date.now() - t0 });
    });
  });
}

/** [what, args, env, expected exit, stderr/stdout must match] — one row per case. */
type Case = [string, () => string[], NodeJS.ProcessEnv | undefined, number, RegExp];

const cases: Case[] = [
  ['--version', () => ['--version'], undefined, EXIT.OK, /0\.1\.0/],
  ['a definite no: absent key', () => ['kv', 'get', 'nothere', '--node', url.ok], undefined, EXIT.NO, /not found/],
  ['a definite no: compare-and-set conflict', () => ['kv', 'put', 'k', 'v', '--cas', '999', '--node', url.ok], undefined, EXIT.NO, /compare-and-set failed/],
  ['a failure named: broker --port in use (no hang)', () => ['broker', '--port', String(busyPort), '--cluster-key-file', join(work, 'cluster.key')], undefined, EXIT.NO, /is in use \(EADDRINUSE\)/],
  ['usage: unknown command', () => ['frobnicate'], undefined, EXIT.USAGE, /unknown command/],
  ['usage: no command at all', () => [], undefined, EXIT.USAGE, /Usage: quorumd/],
  ['usage: unknown option', () => ['kv', 'get', 'k', '--bogus'], undefined, EXIT.USAGE, /unknown option '--bogus'/],
  ['usage: missing argument', () => ['kv', 'put', 'k'], undefined, EXIT.USAGE, /missing required argument 'value'/],
  ['usage: sim option rejected by the parser', () => ['sim', '--seed', 'x'], undefined, EXIT.USAGE, /--seed must be an integer/],
  ['usage: sim option rejected by its own check', () => ['sim', '--seed', '1', '--time', '5 parsecs'], undefined, EXIT.USAGE, /--time/],
  ['usage: dev option rejected by the parser', () => ['dev', '--nodes', '9'], undefined, EXIT.USAGE, /--nodes must be between 1 and 7/],
  ['usage: dev option rejected by its own check', () => ['dev', '--engine', 'nope', '--base-port', '40000'], undefined, EXIT.USAGE, /--engine: expected raft, bully, paxos, zab, pbft or etcd/],
  ['usage: invalid config file', () => ['config', 'validate', join(work, 'bad.yaml')], undefined, EXIT.USAGE, /invalid configuration/],
  // `start|witness --config <file>` run the node's own bundle (bin/code-cache.js): they end as the CLI does.
  ['usage: start with an invalid config file (the node bundle)', () => ['start', '--config', join(work, 'bad.yaml')], undefined, EXIT.USAGE, /quorumd: invalid configuration:/],
  ['usage: witness --config=<invalid file> (the node bundle)', () => ['witness', `--config=${join(work, 'bad.yaml')}`], undefined, EXIT.USAGE, /quorumd: invalid configuration:/],
  ['usage: start with an extra argument (the full CLI)', () => ['start', '--config', join(work, 'bad.yaml'), 'extra'], undefined, EXIT.USAGE, /too many arguments|unknown command|excess/i],
  ['usage: a bad --node URL', () => ['status', '--node', 'not a url'], undefined, EXIT.USAGE, /is not a URL/],
  ['usage: the node calls the request malformed (400)', () => ['lock', 'release', 'L', '--lease', 'short', '--node', url.ok], undefined, EXIT.USAGE, /400: lease must be/],
  // A bad --node URL or token file is bad input whatever the command: nothing was sent,
  // so never 4 ("the write may have happened") nor 3.
  ['usage: a bad --node URL on a write (kv put)', () => ['kv', 'put', 'k', 'v', '--node', 'notaurl'], undefined, EXIT.USAGE, /--node "notaurl" is not a URL/],
  ['usage: a --node port out of range on a read (kv get)', () => ['kv', 'get', 'k', '--node', 'http://127.0.0.1:99999'], undefined, EXIT.USAGE, /is not a URL/],
  ['usage: an ftp:// --node on a write (lock acquire)', () => ['lock', 'acquire', 'L', '--node', 'ftp://127.0.0.1/'], undefined, EXIT.USAGE, /expected an http:\/\/ or https:\/\/ URL/],
  ['usage: QUORUMD_API_URL not a URL (kv del)', () => ['kv', 'del', 'k'], { QUORUMD_API_URL: 'garbage' }, EXIT.USAGE, /"garbage" is not a URL/],
  ['usage: the --data-dir has no token file (kv put)', () => ['kv', 'put', 'k', 'v', '--data-dir', join(work, 'nonexistent'), '--node', url.ok], { QUORUMD_API_TOKEN_FILE: '' }, EXIT.USAGE, /--data-dir: .*nonexistent\/api\.token: cannot read the API token/],
  ['usage: a bad --node URL (services register)', () => ['services', 'register', 'web', 'w1', '--address', '127.0.0.1', '--port', '80', '--node', 'notaurl'], undefined, EXIT.USAGE, /is not a URL/],
  ['usage: a bad --node URL (services watch), at once', () => ['services', 'watch', '--node', 'notaurl'], undefined, EXIT.USAGE, /is not a URL/],
  // Token files: a bounded read of one token, else bad input naming the file.
  ['usage: a token file of two lines (CR LF inside)', () => ['kv', 'put', 'k', 'v', '--token-file', join(work, 'crlf.token'), '--node', url.ok], undefined, EXIT.USAGE, /--token-file .*crlf\.token: cannot read the API token: expected an API token: one line of 16 to 512 printable ASCII characters.*, but it holds the character "\\r" \(more than one line\)/],
  ['usage: an empty token file', () => ['kv', 'get', 'k', '--token-file', join(work, 'empty.token'), '--node', url.ok], undefined, EXIT.USAGE, /empty\.token: cannot read the API token: expected an API token.*, but it is empty/],
  ['usage: --token-file /dev/zero (no endless read)', () => ['kv', 'get', 'k', '--token-file', '/dev/zero', '--node', url.ok], undefined, EXIT.USAGE, /--token-file \/dev\/zero: cannot read the API token: expected a regular file, got a character device/],
  ['usage: QUORUMD_API_TOKEN with a newline inside', () => ['kv', 'get', 'k', '--node', url.ok], { QUORUMD_API_TOKEN: 'abcdefghijklmnop\nqrstuvwxyz', QUORUMD_API_TOKEN_FILE: '' }, EXIT.USAGE, /QUORUMD_API_TOKEN: expected an API token/],
  // `quorumd services` ends by the same table as every other command.
  ['usage: services register --meta without =', () => ['services', 'register', 'web', 'w1', '--address', '127.0.0.1', '--port', '80', '--meta', 'novalue', '--node', closedUrl], undefined, EXIT.USAGE, /--meta "novalue": expected key=value/],
  ['usage: services register --check-ttl not a duration', () => ['services', 'register', 'web', 'w1', '--address', '127.0.0.1', '--port', '80', '--check-ttl', 'nope', '--node', closedUrl], undefined, EXIT.USAGE, /check\.ttl: expected a duration like 500ms.*\(--check-ttl\)/],
  ['usage: services list --healthy without NAME', () => ['services', 'list', '--healthy', '--node', url.ok], undefined, EXIT.USAGE, /give its NAME/],
  ['usage: the node calls a services request malformed (400)', () => ['services', 'deregister', 'web', 'w1', '--node', malformedUrl], undefined, EXIT.USAGE, /400: name: expected a DNS label/],
  ['not applied: services register to a port where nothing listens', () => ['services', 'register', 'web', 'w1', '--address', '127.0.0.1', '--port', '80', '--node', closedUrl], undefined, EXIT.UNAVAILABLE, /ECONNREFUSED.*nothing was done/],
  ['not allowed: unknown token (services list)', () => ['services', 'list', '--node', url.ok], { QUORUMD_API_TOKEN: 'wrong-token-0123456789', QUORUMD_API_TOKEN_FILE: '' }, EXIT.DENIED, /401/],
  ['not allowed: read scope registering (services register, 403)', () => ['services', 'register', 'web', 'w1', '--address', '127.0.0.1', '--port', '80', '--node', url.ok], { QUORUMD_API_TOKEN: readOnlyToken, QUORUMD_API_TOKEN_FILE: '' }, EXIT.DENIED, /needs scope write/],
  ['not applied: write to a port where nothing listens', () => ['kv', 'put', 'k', 'v', '--node', closedUrl], undefined, EXIT.UNAVAILABLE, /ECONNREFUSED.*nothing was done/],
  ['not applied: read from a port where nothing listens', () => ['kv', 'get', 'k', '--node', closedUrl], undefined, EXIT.UNAVAILABLE, /ECONNREFUSED/],
  ['not applied: status of a node that does not answer', () => ['status', '--node', `${url.ok},${closedUrl}`], undefined, EXIT.UNAVAILABLE, /unreachable/],
  ['not applied: 503', () => ['kv', 'put', 'k', 'v', '--node', url.unavailable], undefined, EXIT.UNAVAILABLE, /503/],
  ['unknown: 504', () => ['kv', 'put', 'k', 'v', '--node', url.unknown], undefined, EXIT.UNKNOWN, /504/],
  ['unknown: connection lost after the write was sent', () => ['kv', 'put', 'k', 'v', '--node', dropUrl], undefined, EXIT.UNKNOWN, /outcome unknown/],
  ['a read whose connection was lost is not unknown', () => ['kv', 'get', 'k', '--node', dropUrl], undefined, EXIT.UNAVAILABLE, /socket hang up|ECONNRESET/],
  ['not allowed: unknown token (status)', () => ['status', '--node', url.ok], { QUORUMD_API_TOKEN: 'wrong-token-0123456789', QUORUMD_API_TOKEN_FILE: '' }, EXIT.DENIED, /HTTP 401: unknown or malformed bearer token/],
  ['not allowed: unknown token (kv put)', () => ['kv', 'put', 'k', 'v', '--node', url.ok], { QUORUMD_API_TOKEN: 'wrong-token-0123456789', QUORUMD_API_TOKEN_FILE: '' }, EXIT.DENIED, /401/],
  // --node URL1,URL2,…: a node certainly not reached (nothing listens) is passed over for
  // the next, on every command; a node that may have received the request is not.
  ['a list: kv put passes over a node not reached', () => ['kv', 'put', 'k', 'v', '--node', `${closedUrl},${url.ok}`], undefined, EXIT.OK, /^index=\d+\n$/],
  ['a list: kv get passes over a node not reached', () => ['kv', 'get', 'nothere', '--node', `${closedUrl},${url.ok}`], undefined, EXIT.NO, /key "nothere" not found/],
  ['a list: kv del passes over a node not reached', () => ['kv', 'del', 'k', '--node', `${closedUrl}, ${url.ok}`], undefined, EXIT.OK, /^index=\d+\n$/],
  ['a list: lock acquire passes over a node not reached', () => ['lock', 'acquire', 'Lx', '--node', `${closedUrl},${url.ok}`], undefined, EXIT.OK, /^token=\d+ lease=\S+ ttlMs=\d+\n$/],
  ['a list: lock release passes over a node not reached', () => ['lock', 'release', 'Lnone', '--lease', 'AAAAAAAAAAAAAAAAAAAAAA', '--node', `${closedUrl},${url.ok}`], undefined, EXIT.NO, /not held with that lease/],
  ['a list: lock list passes over a node not reached', () => ['lock', 'list', '--node', `${closedUrl},${url.ok}`], undefined, EXIT.OK, /^(no lock is held|LOCK)/],
  ['a list: jobs passes over a node not reached', () => ['jobs', '--node', `${closedUrl},${url.ok}`], undefined, EXIT.NO, /quorumd jobs: 501: scheduled jobs need/],
  ['a list: services list passes over a node not reached', () => ['services', 'list', '--node', `${closedUrl},${url.ok}`], undefined, EXIT.NO, /quorumd services list: 501: service discovery needs/],
  ['a list: services register passes over a node not reached', () => ['services', 'register', 'web', 'w1', '--address', '127.0.0.1', '--port', '80', '--node', `${closedUrl},${malformedUrl}`], undefined, EXIT.USAGE, /services register: 400/],
  ['a list: services pass passes over a node not reached', () => ['services', 'pass', 'web', 'w1', '--node', `${closedUrl},${malformedUrl}`], undefined, EXIT.USAGE, /services pass: 400/],
  ['a list: services watch passes over a node not reached', () => ['services', 'watch', '--node', `${closedUrl},${malformedUrl}`], undefined, EXIT.USAGE, /services watch: 400/],
  ['a list: services deregister passes over a node not reached', () => ['services', 'deregister', 'web', 'w1', '--node', `${closedUrl},${malformedUrl}`], undefined, EXIT.USAGE, /400: name: expected a DNS label/],
  ['a list: fence passes over a node not reached', () => ['fence', 'n9', '--node', `${closedUrl},${malformedUrl}`], undefined, EXIT.USAGE, /quorumd fence: 400/],
  ['a list: fence confirm passes over a node not reached', () => ['fence', 'confirm', 'n9', '--node', `${closedUrl},${malformedUrl}`], undefined, EXIT.USAGE, /quorumd fence confirm: 400/],
  ['a list: jobs reset passes over a node not reached', () => ['jobs', 'reset', 'tick', '--node', `${closedUrl},${malformedUrl}`], undefined, EXIT.USAGE, /quorumd jobs reset: 400/],
  ['a list: no node reached is not applied, each named', () => ['kv', 'put', 'k', 'v', '--node', `${closedUrl},${closedUrl.replace('127.0.0.1', 'localhost')}`], undefined, EXIT.UNAVAILABLE, /no node of --node was reached: .*ECONNREFUSED.*; .*ECONNREFUSED.*nothing was done/],
  ['a list: a node whose connection never opened (TLS handshake unanswered) is passed over', () => ['kv', 'put', 'k', 'v', '--node', `${silentTlsUrl},${url.ok}`], undefined, EXIT.OK, /^index=\d+\n$/],
  ['not applied: a write whose connection never opened', () => ['kv', 'put', 'k', 'v', '--node', silentTlsUrl], undefined, EXIT.UNAVAILABLE, /no connection within 5000 ms \(the node was not reached\).*nothing was done/],
  ['a list: a write whose connection was lost is not sent again elsewhere', () => ['kv', 'put', 'k', 'v', '--node', `${dropUrl},${url.ok}`], undefined, EXIT.UNKNOWN, /outcome unknown/],
  ['a list: a 503 is an answer, not passed over', () => ['kv', 'put', 'k', 'v', '--node', `${url.unavailable},${url.ok}`], undefined, EXIT.UNAVAILABLE, /503/],
  // A stopping node's 503 says "tried": false: nothing was done there, the next node is asked.
  ['a list: kv put passes over a stopping node (503, not tried)', () => ['kv', 'put', 'k', 'v', '--node', `${cannedUrl.stopping},${url.ok}`], undefined, EXIT.OK, /^index=\d+\n$/],
  ['a list: kv get passes over a stopping node', () => ['kv', 'get', 'nothere', '--node', `${cannedUrl.stopping},${url.ok}`], undefined, EXIT.NO, /key "nothere" not found/],
  ['a list: lock acquire passes over a stopping node', () => ['lock', 'acquire', 'Ls', '--node', `${cannedUrl.stopping},${url.ok}`], undefined, EXIT.OK, /^token=\d+ lease=\S+ ttlMs=\d+\n$/],
  ['a list: services register passes over a stopping node', () => ['services', 'register', 'web', 'w1', '--address', '127.0.0.1', '--port', '80', '--node', `${cannedUrl.stopping},${malformedUrl}`], undefined, EXIT.USAGE, /services register: 400/],
  ['a list: fence passes over a stopping node', () => ['fence', 'n9', '--node', `${cannedUrl.stopping},${malformedUrl}`], undefined, EXIT.USAGE, /quorumd fence: 400/],
  ['a list: jobs reset passes over a stopping node', () => ['jobs', 'reset', 'tick', '--node', `${cannedUrl.stopping},${malformedUrl}`], undefined, EXIT.USAGE, /quorumd jobs reset: 400/],
  ['not applied: a stopping node alone (503, not tried)', () => ['kv', 'put', 'k', 'v', '--node', cannedUrl.stopping], undefined, EXIT.UNAVAILABLE, /503: node n7 is stopping; this request was not tried/],
  ['a list: every node stopping is not applied, the one passed over named', () => ['kv', 'put', 'k', 'v', '--node', `${cannedUrl.stopping},${cannedUrl.stopping}`], undefined, EXIT.UNAVAILABLE, /503: node n7 is stopping[^]*passed over before it: PUT .*503 \(not tried\)/],
  ['a list: a stopping node, then none reached: not applied, "no node took it"', () => ['kv', 'put', 'k', 'v', '--node', `${cannedUrl.stopping},${closedUrl}`], undefined, EXIT.UNAVAILABLE, /no node of --node took the request: .*503 \(not tried\).*ECONNREFUSED.*\(no node took it: nothing was done\)/],
  ['a list: a 504 is not passed over', () => ['kv', 'put', 'k', 'v', '--node', `${url.unknown},${url.ok}`], undefined, EXIT.UNKNOWN, /504/],
  // fence confirm: a follower's 409 not-leader recorded nothing; the next node may be the leader.
  ['a list: fence confirm passes over a node that is not the leader', () => ['fence', 'confirm', 'n9', '--node', `${cannedUrl.notLeader},${malformedUrl}`], undefined, EXIT.USAGE, /quorumd fence confirm: 400[^]*passed over before it: .*409 not-leader: n7 is not the leader/],
  ['a list: fence confirm ends on node-alive', () => ['fence', 'confirm', 'n9', '--node', `${cannedUrl.alive},${malformedUrl}`], undefined, EXIT.NO, /409: n9 is alive/],
  ['not leader: fence confirm of one node, or the last of the list', () => ['fence', 'confirm', 'n9', '--node', `${closedUrl},${cannedUrl.notLeader}`], undefined, EXIT.NO, /409: n7 is not the leader \(n8 is\)/],
  // A 409 that is not a compare-and-set conflict is shown with the node's message (it
  // printed "compare-and-set failed: the key's index is undefined, not undefined").
  ['a 409 other than a compare-and-set conflict: kv put shows the node\'s message', () => ['kv', 'put', 'k', 'v', '--node', cannedUrl.notLeader], undefined, EXIT.NO, /^quorumd kv put: 409: n7 is not the leader[^]*$(?<!undefined[^]*)/],
  ['the same for kv del', () => ['kv', 'del', 'k', '--node', cannedUrl.notLeader], undefined, EXIT.NO, /^quorumd kv del: 409: n7 is not the leader/],
  ['a list: only fence confirm passes over not-leader (kv get does not)', () => ['kv', 'get', 'k', '--node', `${cannedUrl.notLeader},${url.ok}`], undefined, EXIT.NO, /kv get: 409: n7 is not the leader/],
  ['usage: a bad URL anywhere in the list, before anything is sent', () => ['kv', 'put', 'k', 'v', '--node', `${url.ok},notaurl`], undefined, EXIT.USAGE, /--node "notaurl" is not a URL/],
  ['usage: a --node list with no URL', () => ['jobs', '--node', ' , '], undefined, EXIT.USAGE, /expected one URL or several, comma-separated/],
  ['fatal: start, and the engine throws (injected): the node stops, exit 70', () => ['start', '--config', join(work, 'alone.yaml')], { QUORUMD_INJECT_FAULT: 'engine-tick@1500' }, EXIT.FATAL, /internal error in engine raft tick/],
  ['not allowed: read scope writing (403)', () => ['kv', 'put', 'k', 'v', '--node', url.ok], { QUORUMD_API_TOKEN: readOnlyToken, QUORUMD_API_TOKEN_FILE: '' }, EXIT.DENIED, /needs scope write/],
];

describe('exit codes: one table for every command', () => {
  it('--help prints the table', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const [code] of EXIT_TABLE) expect(r.out).toMatch(new RegExp(`^  ${code}  \\S`, 'm'));
  });

  it('each row, through the real CLI', async () => {
    const results: Array<{ what: string; got: number | null; want: number; text: string; ms: number }> = [];
    // Two at a time: a busy machine, and each child compiles nothing (dist/ is built).
    const queue = [...cases];
    await Promise.all(
      [0, 1].map(async () => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          const [what, args, env, want, re] = c;
          const r = await run(args(), env);
          results.push({ what, got: r.code, want, text: r.err + r.out, ms: r.ms });
          expect(r.err + r.out, what).toMatch(re);
        }
      }),
    );
    const wrong = results.filter((r) => r.got !== r.want).map((r) => `${r.what}: exit ${r.got}, expected ${r.want}\n${r.text}`);
    expect(wrong).toEqual([]);
    // Every code of the table is exercised.
    expect(new Set(cases.map((c) => c[3]))).toEqual(new Set(EXIT_TABLE.map(([c]) => c)));
  }, 240_000);

  it('status marks a witness and prints a node\'s error in full', async () => {
    const r = await run(['status', '--node', `${url.witness},${closedUrl}`]);
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.out).toMatch(/^n1\s+\S+\s+follower \(witness\)/m);
    expect(r.out).toMatch(/n1 is a witness: it votes, never leads and keeps no data/);
    // The whole message, not its first 40 characters.
    expect(r.out).toContain(`${closedUrl}: GET ${closedUrl}/v1/status: connect ECONNREFUSED ${closedUrl.replace('http://', '')}`);
  });
});
