/**
 * Service discovery: the catalog's records and their rules. The catalog lives in the
 * node's replicated KV (any log engine, or etcd/ZooKeeper for the external engines)
 * under the reserved prefix `_quorumd/svc/`:
 *
 *   _quorumd/svc/i/<name>/<instance>   an instance: address, port, tags, meta, its check,
 *                                      the node that registered it, its health
 *   _quorumd/svc/n/<node>              that node's liveness record, renewed while it owns
 *                                      instances (registry.ts)
 *   _quorumd/svc/index                 bumped after every change: its index is the
 *                                      catalog's index (blocking watches wait on it)
 *
 * Names and instances are DNS labels (a-z, 0-9, '-', at most 63, not starting or
 * ending with '-'), so every instance has a DNS name <instance>.<name>.service.<cluster>.quorumd.
 * Every input is checked here with an error that names the field and what was expected.
 */
import { isIP } from 'node:net';

export const SVC_PREFIX = '_quorumd/svc/';
export const INSTANCE_PREFIX = `${SVC_PREFIX}i/`;
export const NODE_PREFIX = `${SVC_PREFIX}n/`;
export const INDEX_KEY = `${SVC_PREFIX}index`;

export const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const MAX_TAGS = 32;
export const MAX_META = 32;
export const MAX_TAG = 64;
export const MAX_META_KEY = 64;
export const MAX_META_VALUE = 512;
export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 3_600_000;

export type Health = 'passing' | 'warning' | 'critical';

export type CheckDef =
  | { type: 'none' }
  /** A heartbeat (`PUT .../pass`) on the registering node at least every ttlMs. */
  | { type: 'ttl'; ttlMs: number }
  /** GET url from the registering node: 2xx passing, 429 warning, else critical. */
  | { type: 'http'; url: string; intervalMs: number; timeoutMs: number }
  /** A TCP connect from the registering node. */
  | { type: 'tcp'; address: string; intervalMs: number; timeoutMs: number }
  /** A program run by the registering node (argv, no shell): exit 0 passing, 1 warning, else critical. Needs services.scriptChecks and an operator credential. */
  | { type: 'script'; argv: string[]; intervalMs: number; timeoutMs: number };

export interface InstanceDef {
  name: string;
  instance: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  check: CheckDef;
}

export interface InstanceRecord extends InstanceDef {
  /** The member that registered it (runs its check; its liveness keeps it). */
  node: string;
  health: Health;
  /** Last check output (truncated). */
  output: string;
}

/** An instance as the API shows it: the record plus its KV index. */
export interface InstanceView extends InstanceRecord {
  index: number;
}

export class CatalogError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkLabel(v: unknown, field: string): string {
  if (typeof v !== 'string' || !LABEL.test(v)) throw new CatalogError(field, `expected a DNS label: 1-63 characters a-z, 0-9 and '-', not starting or ending with '-', got ${JSON.stringify(typeof v === 'string' ? v.slice(0, 70) : v)}`);
  return v;
}

/** A duration in ms from a number (ms) or a string like 500ms, 10s, 2m. */
export function durationMs(v: unknown, field: string, min = MIN_INTERVAL_MS, max = MAX_INTERVAL_MS): number {
  let ms: number;
  if (typeof v === 'number' && Number.isInteger(v)) ms = v;
  else if (typeof v === 'string') {
    const m = /^(\d{1,9})(ms|s|m|h)$/.exec(v);
    if (!m) throw new CatalogError(field, `expected a duration like 500ms, 10s or 2m, got ${JSON.stringify(v.slice(0, 40))}`);
    ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : 3_600_000);
  } else throw new CatalogError(field, 'expected a duration (ms as an integer, or a string like 10s)');
  if (ms < min || ms > max) throw new CatalogError(field, `expected a duration between ${min} ms and ${max} ms, got ${ms} ms`);
  return ms;
}

function checkAddress(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 253) throw new CatalogError(field, 'expected an IPv4/IPv6 address or a host name of at most 253 characters');
  if (isIP(v) !== 0) return v;
  if (!/^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(v)) {
    throw new CatalogError(field, `expected an IPv4/IPv6 address or a host name, got ${JSON.stringify(v.slice(0, 60))}`);
  }
  return v;
}

function checkCheck(v: unknown): CheckDef {
  if (v === undefined || v === null) return { type: 'none' };
  if (!isObj(v)) throw new CatalogError('check', 'expected an object with one of ttl, http, tcp or script (or no check)');
  const kinds = ['ttl', 'http', 'tcp', 'script'].filter((k) => v[k] !== undefined);
  if (kinds.length !== 1) throw new CatalogError('check', `expected exactly one of ttl, http, tcp or script, got ${kinds.length ? kinds.join(' and ') : 'none'}`);
  for (const k of Object.keys(v)) if (!['ttl', 'http', 'tcp', 'script', 'interval', 'timeout'].includes(k)) throw new CatalogError(`check.${k}`, 'unknown field (expected ttl, http, tcp, script, interval, timeout)');
  const kind = kinds[0]!;
  if (kind === 'ttl') {
    if (v.interval !== undefined || v.timeout !== undefined) throw new CatalogError('check', 'a ttl check takes no interval or timeout (the heartbeats are its interval)');
    return { type: 'ttl', ttlMs: durationMs(v.ttl, 'check.ttl', 500) };
  }
  const intervalMs = v.interval === undefined ? 10_000 : durationMs(v.interval, 'check.interval');
  const timeoutMs = v.timeout === undefined ? Math.min(5000, intervalMs) : durationMs(v.timeout, 'check.timeout', 10, intervalMs);
  if (kind === 'http') {
    const u = v.http;
    let url: URL;
    try {
      url = new URL(String(u));
    } catch {
      throw new CatalogError('check.http', `expected an http:// or https:// URL, got ${JSON.stringify(String(u).slice(0, 60))}`);
    }
    if (typeof u !== 'string' || (url.protocol !== 'http:' && url.protocol !== 'https:') || u.length > 1024) throw new CatalogError('check.http', 'expected an http:// or https:// URL of at most 1024 characters');
    return { type: 'http', url: u, intervalMs, timeoutMs };
  }
  if (kind === 'tcp') {
    const a = v.tcp;
    const m = typeof a === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(a) : null;
    if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new CatalogError('check.tcp', `expected host:port (port 1..65535), got ${JSON.stringify(String(a).slice(0, 60))}`);
    return { type: 'tcp', address: a as string, intervalMs, timeoutMs };
  }
  const argv = v.script;
  if (!Array.isArray(argv) || argv.length === 0 || argv.length > 32 || !argv.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 1024)) {
    throw new CatalogError('check.script', 'expected the program and its arguments as a list of 1-32 non-empty strings (no shell)');
  }
  return { type: 'script', argv: argv as string[], intervalMs, timeoutMs };
}

/** Parses a registration body (`PUT /v1/services/<name>/<instance>`). */
export function parseInstanceDef(name: string, instance: string, body: unknown): InstanceDef {
  checkLabel(name, 'name');
  checkLabel(instance, 'instance');
  if (!isObj(body)) throw new CatalogError('body', 'expected a JSON object {address, port, tags?, meta?, check?}');
  for (const k of Object.keys(body)) if (!['address', 'port', 'tags', 'meta', 'check'].includes(k)) throw new CatalogError(k, 'unknown field (expected address, port, tags, meta, check)');
  const address = checkAddress(body.address, 'address');
  const port = body.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new CatalogError('port', 'expected an integer 1..65535');
  const tags = body.tags ?? [];
  if (!Array.isArray(tags) || tags.length > MAX_TAGS || !tags.every((t) => typeof t === 'string' && t.length > 0 && t.length <= MAX_TAG && !/[\s,]/.test(t))) {
    throw new CatalogError('tags', `expected a list of at most ${MAX_TAGS} tags of 1-${MAX_TAG} characters without spaces or commas`);
  }
  const meta = body.meta ?? {};
  if (!isObj(meta) || Object.keys(meta).length > MAX_META) throw new CatalogError('meta', `expected an object of at most ${MAX_META} string values`);
  for (const [k, val] of Object.entries(meta)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(k)) throw new CatalogError(`meta.${k.slice(0, 40)}`, `expected a key of 1-${MAX_META_KEY} characters A-Z a-z 0-9 _ . -`);
    if (typeof val !== 'string' || val.length > MAX_META_VALUE) throw new CatalogError(`meta.${k}`, `expected a string of at most ${MAX_META_VALUE} characters`);
  }
  return { name, instance, address, port, tags: [...new Set(tags as string[])], meta: meta as Record<string, string>, check: checkCheck(body.check) };
}

export function instanceKey(name: string, instance: string): string {
  return `${INSTANCE_PREFIX}${name}/${instance}`;
}

export function nodeKey(node: string): string {
  return `${NODE_PREFIX}${node}`;
}

/** Reads a stored instance record back (written by any node, so checked again). */
export function decodeInstance(key: string, value: Uint8Array): InstanceRecord | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(value)) as Record<string, unknown>;
    const def = parseInstanceDef(String(v.name), String(v.instance), { address: v.address, port: v.port, tags: v.tags, meta: v.meta });
    if (key !== instanceKey(def.name, def.instance)) return undefined;
    const health = v.health;
    if (health !== 'passing' && health !== 'warning' && health !== 'critical') return undefined;
    if (typeof v.node !== 'string') return undefined;
    const check = v.check as CheckDef | undefined;
    if (!check || !['none', 'ttl', 'http', 'tcp', 'script'].includes(check.type)) return undefined;
    return { ...def, check, node: v.node, health, output: typeof v.output === 'string' ? v.output : '' };
  } catch {
    return undefined;
  }
}

export function encodeInstance(r: InstanceRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(r));
}

/** Filters of `GET /v1/services/<name>`: healthy only (passing or warning), and every tag given. */
export function matches(r: InstanceRecord, f: { healthy?: boolean; tags?: string[] }): boolean {
  if (f.healthy && r.health === 'critical') return false;
  return (f.tags ?? []).every((t) => r.tags.includes(t));
}
