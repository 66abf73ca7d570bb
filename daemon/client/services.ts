/**
 * `quorumd services list|register|deregister|pass|watch`: the CLI of service discovery
 * (daemon/services; docs/api.md "Services"). Same conventions as the other client
 * commands (commands.ts): results on stdout, problems on stderr, exit 0 done, 1 a
 * definite no (bad input, absent, not the owner), 3 not applied (503), 4 unknown (504).
 *
 *   list [NAME] [--healthy] [--tag t,u] [--json]   one line per instance (or per service)
 *   register NAME INSTANCE --address A --port P [--tag t]... [--meta k=v]...
 *            [--check-ttl 10s | --check-http URL | --check-tcp host:port | --check-script "prog args"]
 *            [--interval 10s] [--timeout 2s]
 *   deregister NAME INSTANCE
 *   pass NAME INSTANCE [--note text]                a TTL heartbeat (to the registering node)
 *   watch [NAME] [--healthy] [--count N]            prints the catalog (JSON, one line) at every change
 */
import { call, enc, jsonOf } from './http.ts';
import { EXIT_NO, EXIT_UNAVAILABLE, EXIT_UNKNOWN, stdio, type Out } from './commands.ts';
import type { Reply } from './http.ts';

function fail(r: Reply, io: Out, what: string): number {
  let msg = r.body.toString('utf8').trim();
  try {
    const j = JSON.parse(msg) as { error?: string };
    if (j.error) msg = j.error;
  } catch {
    /* raw */
  }
  io.err(`quorumd services ${what}: ${r.status}: ${msg}\n`);
  return r.status === 503 ? EXIT_UNAVAILABLE : r.status === 504 ? EXIT_UNKNOWN : EXIT_NO;
}

async function guard(io: Out, what: string, write: boolean, f: () => Promise<number>): Promise<number> {
  try {
    return await f();
  } catch (err) {
    io.err(`quorumd services ${what}: ${(err as Error).message}${write ? ' (outcome unknown: the change may or may not have happened)' : ''}\n`);
    return write ? EXIT_UNKNOWN : EXIT_UNAVAILABLE;
  }
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

const line = (v: Instance) => `${v.name}/${v.instance}\t${v.address.includes(':') ? `[${v.address}]` : v.address}:${v.port}\t${v.health}\tnode=${v.node}${v.tags.length ? `\ttags=${v.tags.join(',')}` : ''}\n`;

function filterQuery(o: { healthy?: boolean; tag?: string }, extra: string[] = []): string {
  const q = [...(o.healthy ? ['healthy'] : []), ...(o.tag ? [`tag=${encodeURIComponent(o.tag)}`] : []), ...extra];
  return q.length ? `?${q.join('&')}` : '';
}

export function servicesList(node: string, name: string | undefined, o: { healthy?: boolean; tag?: string; json?: boolean }, io: Out = stdio): Promise<number> {
  return guard(io, 'list', false, async () => {
    if (name === undefined && (o.healthy || o.tag)) {
      io.err('quorumd services list: --healthy and --tag filter the instances of one service: give its NAME\n');
      return EXIT_NO;
    }
    const r = await call(node, 'GET', name === undefined ? '/v1/services' : `/v1/services/${enc(name)}${filterQuery(o)}`);
    if (r.status !== 200) return fail(r, io, 'list');
    const j = jsonOf(r);
    if (o.json) {
      io.out(`${JSON.stringify(j)}\n`);
      return 0;
    }
    if (name === undefined) {
      for (const [n, s] of Object.entries(j.services as Record<string, { instances: number; healthy: number; tags: string[] }>)) {
        io.out(`${n}\t${s.healthy}/${s.instances} healthy${s.tags.length ? `\ttags=${s.tags.join(',')}` : ''}\n`);
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

export function servicesRegister(
  node: string,
  name: string,
  instance: string,
  o: { address: string; port: number; tag?: string[]; meta?: string[]; checkTtl?: string; checkHttp?: string; checkTcp?: string; checkScript?: string; interval?: string; timeout?: string },
  io: Out = stdio,
): Promise<number> {
  return guard(io, 'register', true, async () => {
    const check = checkFrom(o);
    if (typeof check === 'string') {
      io.err(`quorumd services register: ${check}\n`);
      return EXIT_NO;
    }
    const meta: Record<string, string> = {};
    for (const m of o.meta ?? []) {
      const i = m.indexOf('=');
      if (i <= 0) {
        io.err(`quorumd services register: --meta ${JSON.stringify(m)}: expected key=value\n`);
        return EXIT_NO;
      }
      meta[m.slice(0, i)] = m.slice(i + 1);
    }
    const body = { address: o.address, port: o.port, tags: o.tag ?? [], meta, ...(check ? { check } : {}) };
    const r = await call(node, 'PUT', `/v1/services/${enc(name)}/${enc(instance)}`, { body: JSON.stringify(body) });
    if (r.status !== 200) return fail(r, io, 'register');
    const j = jsonOf(r);
    io.out(`index=${String(j.index)} health=${String(j.health)}\n`);
    return 0;
  });
}

export function servicesDeregister(node: string, name: string, instance: string, io: Out = stdio): Promise<number> {
  return guard(io, 'deregister', true, async () => {
    const r = await call(node, 'DELETE', `/v1/services/${enc(name)}/${enc(instance)}`);
    if (r.status !== 200) return fail(r, io, 'deregister');
    io.out(`index=${String(jsonOf(r).index)}\n`);
    return 0;
  });
}

export function servicesPass(node: string, name: string, instance: string, o: { note?: string }, io: Out = stdio): Promise<number> {
  return guard(io, 'pass', true, async () => {
    const r = await call(node, 'PUT', `/v1/services/${enc(name)}/${enc(instance)}/pass`, { body: o.note ?? '' });
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
  for (;;) {
    const path = name === undefined ? `/v1/services?watch=${index}&wait=${wait}s` : `/v1/services/${enc(name)}${filterQuery(o, [`watch=${index}`, `wait=${wait}s`])}`;
    let r: Reply;
    try {
      r = await call(node, 'GET', path, { timeoutMs: (wait + 15) * 1000 });
    } catch (err) {
      if (++failures > 10) {
        io.err(`quorumd services watch: ${(err as Error).message}; giving up after 10 failures in a row\n`);
        return EXIT_UNAVAILABLE;
      }
      await new Promise((res) => setTimeout(res, Math.min(5000, 200 * 2 ** failures)));
      continue;
    }
    if (r.status !== 200) {
      if (r.status !== 503 || ++failures > 10) return fail(r, io, 'watch');
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
