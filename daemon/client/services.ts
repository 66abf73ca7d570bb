/**
 * `quorumd services list|register|deregister|pass|watch`: the CLI of service discovery
 * (daemon/services; docs/api.md "Services"). Same conventions and the same exit table as
 * the other client commands (commands.ts, daemon/exit-codes.ts, docs/cli.md): results on
 * stdout, problems on stderr; 0 done; 1 a definite no (absent, not the owner, the node
 * answered 404/409/500/501); 2 bad usage or input, nothing tried (a bad option value, a
 * bad --node URL or token file, the node's 400/413); 3 not applied, safe to retry (the
 * node was not reached, 503, 429); 4 outcome unknown (504, or the connection lost after
 * a write was sent); 5 not allowed (401, 403).
 *
 *   list [NAME] [--healthy] [--tag t,u] [--json]   one line per instance (or per service)
 *   register NAME INSTANCE --address A --port P [--tag t]... [--meta k=v]...
 *            [--check-ttl 10s | --check-http URL | --check-tcp host:port | --check-script "prog args"]
 *            [--interval 10s] [--timeout 2s]
 *   deregister NAME INSTANCE
 *   pass NAME INSTANCE [--note text]                a TTL heartbeat (to the registering node)
 *   watch [NAME] [--healthy] [--count N]            prints the catalog (JSON, one line) at every change
 */
import { callFirstReached, ClientError, enc, jsonOf, nodeUrls } from './http.ts';
import { EXIT_UNAVAILABLE, EXIT_USAGE, failStatus, guarded, stdio, type Out } from './commands.ts';
import type { Reply } from './http.ts';
import { shown } from './shown.ts';
import { CatalogError, checkLabel, parseInstanceDef } from '../services/catalog.ts';

const fail = (r: Reply, io: Out, what: string): number => failStatus(r, io, `services ${what}`);

/** The shared mapping of commands.ts (ClientError: 2 for our own bad input, else 3 or 4). */
const guard = (io: Out, what: string, write: boolean, f: () => Promise<number>): Promise<number> => guarded(io, `services ${what}`, write, f);

/** A bad option value: the message on stderr, exit 2 (nothing was sent). */
function usage(io: Out, what: string, msg: string): number {
  io.err(`quorumd services ${what}: ${msg}\n`);
  return EXIT_USAGE;
}

interface Instance {
  name: string;
  instance: string;
  address: string;
  port: number;
  tags: string[];
  node: string;
  health: string;
  output: string;
}

const line = (v: Instance) => shown(`${v.name}/${v.instance}`) + `\t${shown(v.address.includes(':') ? `[${v.address}]` : v.address)}:${v.port}\t${shown(String(v.health))}\tnode=${shown(String(v.node))}${v.tags.length ? `\ttags=${shown(v.tags.join(','))}` : ''}\n`;

function filterQuery(o: { healthy?: boolean; tag?: string }, extra: string[] = []): string {
  const q = [...(o.healthy ? ['healthy'] : []), ...(o.tag ? [`tag=${encodeURIComponent(o.tag)}`] : []), ...extra];
  return q.length ? `?${q.join('&')}` : '';
}

export function servicesList(node: string, name: string | undefined, o: { healthy?: boolean; tag?: string; json?: boolean }, io: Out = stdio): Promise<number> {
  return guard(io, 'list', false, async () => {
    if (name === undefined && (o.healthy || o.tag)) {
      return usage(io, 'list', '--healthy and --tag filter the instances of one service: give its NAME');
    }
    const r = await callFirstReached(node, 'GET', name === undefined ? '/v1/services' : `/v1/services/${enc(name)}${filterQuery(o)}`);
    if (r.status !== 200) return fail(r, io, 'list');
    const j = jsonOf(r);
    if (o.json) {
      io.out(`${JSON.stringify(j)}\n`);
      return 0;
    }
    if (name === undefined) {
      for (const [n, s] of Object.entries(j.services as Record<string, { instances: number; healthy: number; tags: string[] }>)) {
        io.out(`${shown(n)}\t${s.healthy}/${s.instances} healthy${s.tags.length ? `\ttags=${shown(s.tags.join(','))}` : ''}\n`);
      }
      return 0;
    }
    for (const v of j.instances as Instance[]) io.out(line(v));
    return 0;
  });
}

/** Parses --check-* into the API's check object (or an error message). */
export function checkFrom(o: { checkTtl?: string; checkHttp?: string; checkTcp?: string; checkScript?: string; interval?: string; timeout?: string }): Record<string, unknown> | undefined | string {
  const given = [o.checkTtl && 'ttl', o.checkHttp && 'http', o.checkTcp && 'tcp', o.checkScript && 'script'].filter(Boolean);
  if (given.length > 1) return `give one check, not ${given.join(' and ')}`;
  const timing = { ...(o.interval ? { interval: o.interval } : {}), ...(o.timeout ? { timeout: o.timeout } : {}) };
  if (o.checkTtl) return Object.keys(timing).length ? '--interval/--timeout do not apply to a TTL check' : { ttl: o.checkTtl };
  if (o.checkHttp) return { http: o.checkHttp, ...timing };
  if (o.checkTcp) return { tcp: o.checkTcp, ...timing };
  if (o.checkScript) {
    const argv = o.checkScript.split(/\s+/).filter(Boolean);
    return argv.length ? { script: argv, ...timing } : '--check-script needs a program';
  }
  if (Object.keys(timing).length) return '--interval/--timeout need a --check-http, --check-tcp or --check-script';
  return undefined;
}

/** The option behind a field of the registration body, for the error that names it. */
const OPTION_OF: Record<string, string> = {
  'service name': 'NAME',
  instance: 'INSTANCE',
  address: '--address',
  port: '--port',
  tags: '--tag',
  meta: '--meta',
  'check.ttl': '--check-ttl',
  'check.http': '--check-http',
  'check.tcp': '--check-tcp',
  'check.script': '--check-script',
  'check.interval': '--interval',
  'check.timeout': '--timeout',
};

export function servicesRegister(
  node: string,
  name: string,
  instance: string,
  o: { address: string; port: number; tag?: string[]; meta?: string[]; checkTtl?: string; checkHttp?: string; checkTcp?: string; checkScript?: string; interval?: string; timeout?: string },
  io: Out = stdio,
): Promise<number> {
  return guard(io, 'register', true, async () => {
    const check = checkFrom(o);
    if (typeof check === 'string') return usage(io, 'register', check);
    const meta: Record<string, string> = {};
    for (const m of o.meta ?? []) {
      const i = m.indexOf('=');
      if (i <= 0) return usage(io, 'register', `--meta ${JSON.stringify(m)}: expected key=value`);
      meta[m.slice(0, i)] = m.slice(i + 1);
    }
    const body = { address: o.address, port: o.port, tags: o.tag ?? [], meta, ...(check ? { check } : {}) };
    // The node's own checks, here first: a bad value (--check-ttl nope) is bad input
    // found before anything is sent, not a 400 after a round trip (or a 3 without a node).
    try {
      checkLabel(name, 'service name'); // named as the node names it (daemon/services/http.ts)
      parseInstanceDef(name, instance, body);
    } catch (err) {
      if (!(err instanceof CatalogError)) throw err;
      return usage(io, 'register', `${err.message}${OPTION_OF[err.field] ? ` (${OPTION_OF[err.field]})` : ''}`);
    }
    const r = await callFirstReached(node, 'PUT', `/v1/services/${enc(name)}/${enc(instance)}`, { body: JSON.stringify(body) });
    if (r.status !== 200) return fail(r, io, 'register');
    const j = jsonOf(r);
    io.out(`index=${String(j.index)} health=${String(j.health)}\n`);
    return 0;
  });
}

export function servicesDeregister(node: string, name: string, instance: string, io: Out = stdio): Promise<number> {
  return guard(io, 'deregister', true, async () => {
    const r = await callFirstReached(node, 'DELETE', `/v1/services/${enc(name)}/${enc(instance)}`);
    if (r.status !== 200) return fail(r, io, 'deregister');
    io.out(`index=${String(jsonOf(r).index)}\n`);
    return 0;
  });
}

export function servicesPass(node: string, name: string, instance: string, o: { note?: string }, io: Out = stdio): Promise<number> {
  return guard(io, 'pass', true, async () => {
    const r = await callFirstReached(node, 'PUT', `/v1/services/${enc(name)}/${enc(instance)}/pass`, { body: o.note ?? '' });
    if (r.status !== 200) return fail(r, io, 'pass');
    io.out(`health=${String(jsonOf(r).health)}\n`);
    return 0;
  });
}

/** Prints the catalog (or one service's instances) as one JSON line at the start and after every change; --count N stops after N lines. */
export async function servicesWatch(node: string, name: string | undefined, o: { healthy?: boolean; tag?: string; count?: number; waitSec?: number }, io: Out = stdio): Promise<number> {
  let index = 0;
  let printed = 0;
  let failures = 0;
  const wait = o.waitSec ?? 60;
  try {
    nodeUrls(node);
  } catch (err) {
    if (!(err instanceof ClientError)) throw err;
    return usage(io, 'watch', err.message);
  }
  for (;;) {
    const path = name === undefined ? `/v1/services?watch=${index}&wait=${wait}s` : `/v1/services/${enc(name)}${filterQuery(o, [`watch=${index}`, `wait=${wait}s`])}`;
    let r: Reply;
    try {
      r = await callFirstReached(node, 'GET', path, { timeoutMs: (wait + 15) * 1000 });
    } catch (err) {
      // Our own bad input (the token file) does not get better with retrying.
      if (err instanceof ClientError && err.badInput) return usage(io, 'watch', err.message);
      if (++failures > 10) {
        io.err(`quorumd services watch: ${(err as Error).message}; giving up after 10 failures in a row\n`);
        return EXIT_UNAVAILABLE;
      }
      await new Promise((res) => setTimeout(res, Math.min(5000, 200 * 2 ** failures)));
      continue;
    }
    if (r.status !== 200) {
      // 503: no leader yet, or the node's watches all taken; 429: this address's
      // (http.maxWatchesPerAddress). Both pass; anything else is an answer.
      if ((r.status !== 503 && r.status !== 429) || ++failures > 10) return fail(r, io, 'watch');
      await new Promise((res) => setTimeout(res, 500));
      continue;
    }
    failures = 0;
    const j = jsonOf(r);
    const ix = Number(j.index);
    if (ix !== index || printed === 0) {
      io.out(`${JSON.stringify(j)}\n`);
      printed++;
      if (o.count !== undefined && printed >= o.count) return 0;
    }
    index = ix;
  }
}
