/**
 * The HTTP endpoints of service discovery (docs/api.md, "Services"), mounted by the
 * node's API server (daemon/http/server.ts) under /v1/services:
 *
 *   GET    /v1/services[?watch=<i>&wait=30s][&stale]        → {index, services: {<name>: {instances, healthy, tags}}}
 *   GET    /v1/services/<name>[?healthy][&tag=a,b][&watch=<i>&wait=30s][&stale]
 *                                                          → {index, name, instances: [...]}
 *   GET    /v1/services/<name>/<instance>                  → the instance, 404 absent
 *   PUT    /v1/services/<name>/<instance>   {address, port, tags?, meta?, check?}
 *                                                          → {index, health}
 *   DELETE /v1/services/<name>/<instance>                  → {index}
 *   PUT    /v1/services/<name>/<instance>/pass  [note]     → {health} (TTL heartbeat, on the registering node)
 *
 * Reads need scope read, writes scope write, a script check scope operator. Every
 * answer carries X-Quorumd-Index (the catalog's index) where it has one; a watch
 * returns when the catalog's index passes the given one (or the wait ends: then the
 * same index comes back and the client asks again).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CatalogError, checkLabel, parseInstanceDef } from './catalog.ts';
import { ServiceError, ServiceRegistry, type Catalog } from './registry.ts';

/** What the API server lends this module (its parsing, answering and limits). */
export interface HttpTools {
  json(res: ServerResponse, status: number, v: unknown, headers?: Record<string, string | number>): void;
  readBody(req: IncomingMessage, limit: number): Promise<Uint8Array>;
  rejectBodyIfAny(req: IncomingMessage): void;
  parseQuery(search: string, allowed: readonly string[]): ReadonlyMap<string, string>;
  parseDuration(raw: string, what: string): number;
  /** An error for the server's error path: {error, code} with this status. */
  error(status: number, code: string, message: string): Error;
  maxWatchMs: number;
  defaultWatchMs: number;
  /**
   * Takes one of the server's watch slots for the request (503 when none is left); `gone`
   * aborts when the client goes away (also if it already has) or the node stops, when
   * `stopped()` is the watch's last answer (503, "ask another node"); `done()` gives the slot back.
   */
  openWatch(req: IncomingMessage, res: ServerResponse): { gone: AbortSignal; stopped: () => Error | undefined; done: () => void };
}

const flag = (q: ReadonlyMap<string, string>, k: string, t: HttpTools): boolean => {
  const v = q.get(k);
  if (v === undefined) return false;
  if (v !== '' && v !== 'true' && v !== '1') throw t.error(400, 'bad-request', `${k} takes no value (or true/1), got ${JSON.stringify(v.slice(0, 40))}`);
  return true;
};

function summary(c: Catalog): Record<string, { instances: number; healthy: number; tags: string[] }> {
  const out: Record<string, { instances: number; healthy: number; tags: string[] }> = {};
  for (const v of c.instances) {
    const s = (out[v.name] ??= { instances: 0, healthy: 0, tags: [] });
    s.instances++;
    if (v.health !== 'critical') s.healthy++;
    for (const t of v.tags) if (!s.tags.includes(t)) s.tags.push(t);
  }
  for (const s of Object.values(out)) s.tags.sort();
  return out;
}

export async function handleServices(reg: ServiceRegistry, req: IncomingMessage, res: ServerResponse, path: string, search: string, scope: string, t: HttpTools): Promise<void> {
  const method = req.method ?? '';
  const parts = path === '/v1/services' ? [] : path.slice('/v1/services/'.length).split('/');
  try {
    if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) {
      if (method !== 'GET' && method !== 'HEAD') throw t.error(405, 'method-not-allowed', `${method} is not allowed on /v1/services; expected GET`);
      t.rejectBodyIfAny(req);
      const q = t.parseQuery(search, ['watch', 'wait', 'stale']);
      const c = await readCatalog(reg, q, t, req, res);
      if (!c) return;
      return t.json(res, 200, { index: c.index, services: summary(c) }, { 'X-Quorumd-Index': c.index });
    }
    const name = checkLabel(parts[0], 'service name');
    if (parts.length === 1) {
      if (method !== 'GET' && method !== 'HEAD') throw t.error(405, 'method-not-allowed', `${method} is not allowed on /v1/services/<name>; expected GET (register with PUT /v1/services/<name>/<instance>)`);
      t.rejectBodyIfAny(req);
      const q = t.parseQuery(search, ['healthy', 'tag', 'watch', 'wait', 'stale']);
      const healthy = flag(q, 'healthy', t);
      const tagRaw = q.get('tag');
      const tags = tagRaw === undefined ? [] : tagRaw.split(',').filter((x) => x !== '');
      const c = await readCatalog(reg, q, t, req, res);
      if (!c) return;
      return t.json(res, 200, { index: c.index, name, instances: ServiceRegistry.select(c, name, { healthy, tags }) }, { 'X-Quorumd-Index': c.index });
    }
    const instance = checkLabel(parts[1], 'instance');
    if (parts.length === 3 && parts[2] === 'pass') {
      if (method !== 'PUT' && method !== 'POST') throw t.error(405, 'method-not-allowed', `${method} is not allowed on .../pass; expected PUT`);
      t.parseQuery(search, []);
      const note = new TextDecoder().decode(await t.readBody(req, 1024));
      const r = await reg.pass(name, instance, note);
      return t.json(res, 200, r);
    }
    if (parts.length !== 2) throw t.error(404, 'not-found', `no such endpoint: ${path.slice(0, 80)} (see /v1/services, /v1/services/<name>, /v1/services/<name>/<instance>[/pass])`);
    if (method === 'GET' || method === 'HEAD') {
      t.rejectBodyIfAny(req);
      const q = t.parseQuery(search, ['stale']);
      const c = await reg.list({ stale: flag(q, 'stale', t) });
      const v = c.instances.find((x) => x.name === name && x.instance === instance);
      if (!v) throw t.error(404, 'not-found', `no instance ${instance} of service ${name}`);
      return t.json(res, 200, v, { 'X-Quorumd-Index': c.index });
    }
    if (method === 'PUT') {
      t.parseQuery(search, []);
      const body = await t.readBody(req, 16 * 1024);
      let parsed: unknown;
      try {
        parsed = JSON.parse(new TextDecoder().decode(body));
      } catch {
        throw t.error(400, 'bad-request', 'body: expected JSON {address, port, tags?, meta?, check?}');
      }
      const def = parseInstanceDef(name, instance, parsed);
      const r = await reg.register(def, { operator: scope === 'operator' });
      return t.json(res, 200, r);
    }
    if (method === 'DELETE') {
      t.rejectBodyIfAny(req);
      t.parseQuery(search, []);
      return t.json(res, 200, await reg.deregister(name, instance));
    }
    throw t.error(405, 'method-not-allowed', `${method} is not allowed on /v1/services/<name>/<instance>; expected GET, PUT or DELETE`);
  } catch (err) {
    if (err instanceof CatalogError) throw t.error(400, 'bad-request', err.message);
    if (err instanceof ServiceError) throw t.error(err.status, err.code, err.message);
    throw err;
  }
}

/**
 * The catalog to answer with; with watch=<i>, after its index passed i or the wait
 * ended. Undefined when the client closed its connection during the wait: the watch
 * gave its slot back then (a client that resets at once must not hold one for the
 * whole wait), and there is nobody left to answer.
 */
async function readCatalog(reg: ServiceRegistry, q: ReadonlyMap<string, string>, t: HttpTools, req: IncomingMessage, res: ServerResponse): Promise<Catalog | undefined> {
  const stale = flag(q, 'stale', t);
  const w = q.get('watch');
  if (w === undefined) {
    if (q.has('wait')) throw t.error(400, 'bad-request', 'wait is only meaningful with watch=<index>');
    return reg.list({ stale });
  }
  if (!/^\d{1,16}$/.test(w) || !Number.isSafeInteger(Number(w))) throw t.error(400, 'bad-request', `watch must be a non-negative integer (the X-Quorumd-Index of the last answer), got ${JSON.stringify(w.slice(0, 40))}`);
  const waitRaw = q.get('wait');
  const waitMs = waitRaw === undefined ? t.defaultWatchMs : t.parseDuration(waitRaw, 'wait');
  if (waitMs > t.maxWatchMs) throw t.error(400, 'bad-request', `wait must be at most ${t.maxWatchMs} ms, got ${waitMs} ms`);
  const open = t.openWatch(req, res);
  try {
    const c = await reg.watch(Number(w), waitMs, { stale: true, signal: open.gone });
    if (!open.gone.aborted) return c;
    const e = open.stopped();
    if (e) throw e;
    return undefined;
  } finally {
    open.done();
  }
}
