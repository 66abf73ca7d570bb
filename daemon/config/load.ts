/**
 * Loads a YAML config, validates it with the zod schema, and turns every problem into
 * `<file>:<line>:<col>: <key.path>: <expected>`. The line is that of the offending
 * value; for a missing key, that of the mapping that should hold it.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isNode, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import './zod.ts'; // before zod: no JIT (see there)
import * as z from 'zod';
import { FileReadError, readRegularFile } from './regular-file.ts';
import { configSchema, type Config } from './schema.ts';
import { parseKey, parseListen } from './plain.ts';
import { jobsSchema, type JobConfig } from './jobs.ts';
import { loosePermissions, readSecretFile } from './secrets.ts';
import type { ApiCredential } from '../http/auth.ts';
import { ed25519PublicKeyRaw, parseEd25519PrivateKey, parseEd25519PublicKey } from '../../src/pbft/auth.ts';
import type { KeyObject } from 'node:crypto';

/** Largest PEM file read (a certificate chain or a key): far above any real one. */
const MAX_PEM_BYTES = 1024 * 1024;

export interface ConfigProblem {
  /** Dotted key path, e.g. `members.1.id`; `(file)` for the whole file. */
  key: string;
  line: number;
  col: number;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The parsed YAML and a locator, when the file parsed but did not validate (loadConfigFile checks its files too). */
  parsed?: { raw: unknown; locate: Locator };
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => `${file}:${p.line}:${p.col}: ${p.key}: ${p.message}`).join('\n'));
  }
}

/** The YAML library's bound on alias expansion (its maxAliasCount): a config written by hand never comes near it. */
const MAX_ALIAS_COUNT = 100;

/** Largest config file read (bytes): a config is a few KiB; anything huge is a mistake. */
const MAX_CONFIG_BYTES = 1 << 20;

/** The node nearest to `path` that exists in the document, for positions. */
function nodeAt(doc: Document, path: ReadonlyArray<PropertyKey>): Node | undefined {
  let cur: unknown = doc.contents;
  let best: Node | undefined = isNode(cur) ? cur : undefined;
  for (const seg of path) {
    if (isMap(cur)) {
      const pair = cur.items.find((p) => (isNode(p.key) ? (p.key as { value?: unknown }).value : p.key) === seg);
      if (!pair) break;
      // A key whose value is missing (`key:`) points at the key itself.
      cur = pair.value ?? pair.key;
    } else if (isSeq(cur) && typeof seg === 'number') {
      cur = cur.items[seg];
    } else break;
    if (isNode(cur)) best = cur;
    else break;
  }
  return best;
}

function valueAt(v: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur = v;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

/** Line and column of a key's value in the last parsed text (for errors found after validation). */
export type Locator = (path: ReadonlyArray<PropertyKey>) => { line: number; col: number };

export function parseConfigText(text: string, file = '<config>'): Config {
  return parseConfigWithPositions(text, file).config;
}

export function parseConfigWithPositions(text: string, file = '<config>'): { config: Config; locate: Locator } {
  const r = parseYamlWithSchema(text, file, configSchema(), 'expected a YAML mapping with cluster, members, node and a link (mqtt or serial)');
  return { config: r.value, locate: r.locate };
}

/**
 * Parses YAML text and validates it with `schema`, reporting every problem as
 * `<file>:<line>:<col>: <key.path>: <expected>` (ConfigError). The root must be a mapping.
 */
export function parseYamlWithSchema<T>(text: string, file: string, schema: z.ZodType<T>, whatRoot: string): { value: T; locate: Locator } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  for (const e of [...doc.errors]) {
    const pos = lc.linePos(e.pos[0]);
    problems.push({ key: '(yaml)', line: pos.line, col: pos.col, message: `not valid YAML: ${e.message.split('\n')[0]}` });
  }
  if (problems.length) throw new ConfigError(file, problems);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The YAML library refuses aliases that would expand too far ("billion laughs") and
    // says so with a plain exception: a config problem like any other, at the first alias.
    let off = 0;
    visit(doc, {
      Alias(_key, node) {
        off = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    const pos = lc.linePos(off);
    throw new ConfigError(file, [{ key: '(yaml)', line: pos.line, col: pos.col, message: `not usable YAML: ${(err as Error).message.split('\n')[0]} (its aliases (*name) would expand it far past its size; expected a config without them, or with few)` }]);
  }
  if (raw === null || raw === undefined || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ key: '(file)', line: 1, col: 1, message: whatRoot }]);
  }
  const r = schema.safeParse(raw);
  const locate: Locator = (path) => lc.linePos(nodeAt(doc, path)?.range?.[0] ?? 0);
  if (r.success) return { value: r.data, locate };
  for (const issue of r.error.issues) {
    const path = issue.path as PropertyKey[];
    let message = issue.message;
    let keyPath = path;
    if (issue.code === 'unrecognized_keys') {
      // zod reports unknown keys on the parent object: one problem per key, each with
      // the nearest known key of that mapping when one is close (a typo).
      const known = knownKeysAt(schema, path);
      for (const k of (issue as { keys: string[] }).keys) {
        const near = nearestKey(k, known);
        const kp = [...path, k];
        const pos = lc.linePos(keyNodeAt(doc, kp)?.range?.[0] ?? nodeAt(doc, kp)?.range?.[0] ?? 0);
        problems.push({
          key: kp.map(String).join('.'),
          line: pos.line,
          col: pos.col,
          message: `unknown key "${k}"${near ? `; did you mean "${near}"?` : known.length ? ` (expected one of: ${known.join(', ')})` : ''} (docs/config.md lists every key)`,
        });
      }
      continue;
    }
    // A cross-field check that met a field already reported as malformed says nothing new.
    if (issue.code === 'custom' && crossHidden(issue.path as PropertyKey[], r.error.issues)) continue;
    const node = nodeAt(doc, keyPath);
    const missing = issue.code === 'invalid_type' && valueAt(raw, keyPath) === undefined;
    const off = node?.range?.[0] ?? 0;
    const pos = lc.linePos(off);
    problems.push({
      key: keyPath.map(String).join('.') || '(file)',
      line: pos.line,
      col: pos.col,
      message: missing ? `missing: ${message}` : message,
    });
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  const e = new ConfigError(file, problems);
  e.parsed = { raw, locate };
  throw e;
}

/** The schema inside optional/default/pipe wrappers. */
function unwrapSchema(t: unknown): unknown {
  for (let i = 0; i < 10; i++) {
    const def = (t as { _zod?: { def?: { type?: string; innerType?: unknown; in?: unknown } } })?._zod?.def;
    if (!def) return t;
    if (['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(def.type ?? '')) t = def.innerType;
    else if (def.type === 'pipe') t = def.in;
    else return t;
  }
  return t;
}

/** The keys a mapping at `path` of `schema` may have (empty when not a known mapping). */
export function knownKeysAt(schema: unknown, path: ReadonlyArray<PropertyKey>): string[] {
  let t = unwrapSchema(schema);
  for (const seg of path) {
    const def = (t as { _zod?: { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown } } })?._zod?.def;
    if (def?.type === 'object' && typeof seg === 'string' && def.shape) t = unwrapSchema(def.shape[seg]);
    else if (def?.type === 'array' && typeof seg === 'number') t = unwrapSchema(def.element);
    else return [];
  }
  const def = (t as { _zod?: { def?: { type?: string; shape?: Record<string, unknown> } } })?._zod?.def;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** Edit distance (insertions, deletions, substitutions, transpositions), case-insensitive. */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key nearest to a mistyped one, when it is near enough to be what was meant. */
export function nearestKey(typed: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dd = distance(typed, k);
    if (dd < bestD) {
      bestD = dd;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(typed.length / 3)) ? best : undefined;
}

/** The key node (not the value) of `path`'s last segment, for pointing at an unknown key. */
function keyNodeAt(doc: Document, path: ReadonlyArray<PropertyKey>): Node | undefined {
  const parent = nodeAt(doc, path.slice(0, -1));
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => (isNode(p.key) ? (p.key as { value?: unknown }).value : p.key) === path[path.length - 1]);
  return pair && isNode(pair.key) ? pair.key : undefined;
}

/**
 * A cross-field check (a `custom` issue) is hidden when a field it reads was already
 * reported malformed: the cross checks run on every config (zod `when`), also one with
 * bad fields, so that all problems of a file come in one pass.
 */
function crossHidden(path: PropertyKey[], issues: ReadonlyArray<{ code: string; path: PropertyKey[] }>): boolean {
  const p = path.map(String).join('.');
  return issues.some((i) => {
    if (i.code === 'custom' || i.code === 'unrecognized_keys') return false;
    const q = i.path.map(String).join('.');
    return q === p || q.startsWith(`${p}.`) || p.startsWith(`${q}.`);
  });
}

/**
 * Reads a file of at most MAX_CONFIG_BYTES as text; problems are ConfigErrors. Only a
 * regular file is read, never past the limit (daemon/config/regular-file.ts says why).
 */
function readConfigText(file: string): string {
  try {
    return readRegularFile(file, MAX_CONFIG_BYTES).toString('utf8');
  } catch (err) {
    const e = err as FileReadError;
    const at = e.reason === 'too-large' ? 1 : 0;
    throw new ConfigError(file, [{ key: '(file)', line: at, col: at, message: e.reason === 'io' ? `cannot read the file: ${e.message}` : e.message }]);
  }
}

/**
 * A file holding only a `jobs:` list, as in a node config (`quorumd dev --jobs FILE`).
 * Throws ConfigError naming each bad job, key and cron expression.
 */
export function loadJobsFile(file: string): JobConfig[] {
  const schema = z.strictObject({ jobs: jobsSchema() });
  return parseYamlWithSchema(readConfigText(file), file, schema, 'expected a YAML mapping with a `jobs:` list').value.jobs;
}

/** A config with its secrets and paths resolved (key files read, relative paths made absolute). */
export interface ResolvedConfig {
  config: Config;
  file: string;
  self: { id: number; name: string; role: 'voter' | 'witness' | 'observer' };
  key: Uint8Array;
  previousKey: Uint8Array | undefined;
  dataDir: string;
  http: {
    host: string;
    port: number;
    /** The operator token when configured (http.token / http.tokenFile); undefined: startNode uses tokenFile, creating it at the first start. */
    token: string | undefined;
    /** Where the operator token lives: http.tokenFile, or <dataDir>/api.token (undefined for an inline http.token). */
    tokenFile: string | undefined;
    /** The narrower credentials of http.tokens, read and checked. */
    credentials: ApiCredential[];
    /** HTTPS material (PEM), when http.tls is set. */
    tls: { cert: string; key: string; ca?: string } | undefined;
  };
  mqttPassword: string | undefined;
  /** engine: etcd / zookeeper: the service password (password or passwordFile of its section). */
  servicePassword?: string | undefined;
  /**
   * engine: pbft with pbft.privateKey and pbft.publicKeys: this board's private key and
   * every member's public key by member id, read and checked (the own public key matches
   * the private key). Undefined: keys derived from the cluster key.
   */
  pbftKeys?: { privateKey: KeyObject; publicKeys: Map<number, KeyObject> } | undefined;
}

const noPos: Locator = () => ({ line: 0, col: 0 });

function problem(locate: Locator, key: string, message: string): ConfigProblem {
  return { key, ...locate(key.split('.')), message };
}

function resolvePath(file: string, base: string): string {
  return isAbsolute(file) ? file : resolve(base, file);
}

/** How to make a missing secret file, by the key that names it. */
function createHint(key: string, path: string): string {
  if (/^cluster\.(previousKeyFile|keyFile)$/.test(key)) {
    return `; create it once with  (umask 077; openssl rand -hex 32 > ${path})  and copy the same file to every member (mode 0600; docs/security.md)`;
  }
  if (key === 'http.tokenFile' || /^http\.tokens\.\d+\.tokenFile$/.test(key)) {
    return `; create it with  (umask 077; openssl rand -base64 32 > ${path})${key === 'http.tokenFile' ? ', or drop http.tokenFile: the node then creates <node.dataDir>/api.token at its first start' : ''}`;
  }
  if (key === 'mqtt.passwordFile') {
    return `; write this node's password of its broker account (mqtt.username) into it, mode 0600; or drop mqtt.username and mqtt.passwordFile: the node then logs in as quorumd-<cluster.id>-<member id> with a password derived from the cluster key, which \`quorumd broker --cluster-key-file\` accepts and \`quorumd broker passwords\` prints for mosquitto (docs/mqtt.md)`;
  }
  return '';
}

/** A secret file: readable, and by its owner only (daemon/config/secrets.ts). */
function readSecret(file: string, base: string, key: string, cfgFile: string, locate: Locator): string {
  const path = resolvePath(file, base);
  try {
    return readSecretFile(path, key);
  } catch (err) {
    if (!existsSync(path)) throw new ConfigError(cfgFile, [problem(locate, key, `${path} does not exist${createHint(key, path)}`)]);
    throw new ConfigError(cfgFile, [problem(locate, key, `expected a readable file that only its owner may read: ${(err as Error).message.replace(/^[^:]+: /, '')}`)]);
  }
}

/**
 * The problems of the files a config names (secrets and PEM files), read from the
 * parsed YAML even when it did not validate, so that one pass reports them too.
 */
function fileProblems(raw: unknown, file: string, locate: Locator, skip: Set<string>): ConfigProblem[] {
  const base = dirname(resolve(file));
  const out: ConfigProblem[] = [];
  const at = (path: PropertyKey[]) => valueAt(raw, path);
  const check = (path: PropertyKey[], secret: boolean) => {
    const v = at(path);
    const key = path.map(String).join('.');
    if (typeof v !== 'string' || v === '' || skip.has(key)) return;
    try {
      if (secret) readSecret(v, base, key, file, locate);
      else readRegularFile(resolvePath(v, base), MAX_PEM_BYTES);
    } catch (err) {
      if (err instanceof ConfigError) out.push(...err.problems);
      else out.push(problem(locate, key, `expected a readable PEM file: ${(err as Error).message}`));
    }
  };
  check(['cluster', 'keyFile'], true);
  check(['cluster', 'previousKeyFile'], true);
  check(['mqtt', 'passwordFile'], true);
  check(['http', 'tokenFile'], true);
  const tokens = at(['http', 'tokens']);
  if (Array.isArray(tokens)) tokens.forEach((_, i) => check(['http', 'tokens', i, 'tokenFile'], true));
  check(['http', 'tls', 'certFile'], false);
  check(['http', 'tls', 'keyFile'], true);
  check(['http', 'tls', 'clientCaFile'], false);
  return out;
}

/** Keys that put a secret into the config file itself. */
function inlineSecrets(c: Config): string[] {
  return [
    c.cluster.key !== undefined ? 'cluster.key' : '',
    c.cluster.previousKey !== undefined ? 'cluster.previousKey' : '',
    c.http.token !== undefined ? 'http.token' : '',
    c.mqtt?.password !== undefined ? 'mqtt.password' : '',
  ].filter(Boolean);
}

/** Reads, validates and resolves a config file. Throws ConfigError (never anything else for bad input). */
export function loadConfigFile(file: string): ResolvedConfig {
  let parsed: { config: Config; locate: Locator };
  try {
    parsed = parseConfigWithPositions(readConfigText(file), file);
  } catch (err) {
    // Every problem of the file in one pass: the files it names are checked too.
    if (err instanceof ConfigError && err.parsed) {
      const reported = new Set(err.problems.map((p) => p.key));
      const more = fileProblems(err.parsed.raw, file, err.parsed.locate, reported);
      if (more.length > 0) throw new ConfigError(file, [...err.problems, ...more].sort((a, b) => a.line - b.line || a.col - b.col));
    }
    throw err;
  }
  const { config, locate } = parsed;
  // A config with a secret inline is itself a secret file.
  const inline = inlineSecrets(config);
  const loose = inline.length > 0 ? loosePermissions(file, 'config') : undefined;
  if (loose) {
    throw new ConfigError(file, [problem(locate, inline[0]!, `${inline.join(', ')} inline makes the config a secret file: ${loose.replace(/^config: /, '')}; or move the secret into a file (${inline[0]!.replace(/(key|token|password)$/i, (m) => `${m}File`)})`)]);
  }
  return resolveConfig(config, file, locate);
}

export function resolveConfig(config: Config, file: string, locate: Locator = noPos): ResolvedConfig {
  const base = dirname(resolve(file));
  // Every file problem at once: a read that fails is recorded and the others go on.
  const problems: ConfigProblem[] = [];
  const fail = (key: string, message: string) => void problems.push(problem(locate, key, message));
  const secret = (f: string, key: string): string | undefined => {
    try {
      return readSecret(f, base, key, file, locate);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };
  const self = config.members.find((m) => m.name === config.node.name)!;
  const keyText = config.cluster.key ?? secret(config.cluster.keyFile!, 'cluster.keyFile');
  const key = keyText !== undefined ? parseKey(keyText) : undefined;
  if (keyText !== undefined && !key) fail(config.cluster.key !== undefined ? 'cluster.key' : 'cluster.keyFile', 'expected the file to hold a key: 32-128 hex digits or base64:<16-64 bytes>');
  const prevText = config.cluster.previousKeyFile !== undefined ? secret(config.cluster.previousKeyFile, 'cluster.previousKeyFile') : config.cluster.previousKey;
  const previousKey = prevText !== undefined ? parseKey(prevText) : undefined;
  if (prevText !== undefined && !previousKey) fail('cluster.previousKeyFile', 'expected the file to hold a key: 32-128 hex digits or base64:<16-64 bytes>');
  const l = parseListen(config.http.listen)!;
  const dataDir = resolvePath(config.node.dataDir, base);
  let token = config.http.token;
  let tokenFile: string | undefined = config.http.token === undefined ? join(dataDir, 'api.token') : undefined;
  if (config.http.tokenFile !== undefined) {
    tokenFile = resolvePath(config.http.tokenFile, base);
    token = secret(config.http.tokenFile, 'http.tokenFile');
    if (token !== undefined && token.length < 16) fail('http.tokenFile', 'expected a token of at least 16 characters in the file');
  }
  const credentials: ApiCredential[] = [];
  config.http.tokens.forEach((t, i) => {
    const s = secret(t.tokenFile, `http.tokens.${i}.tokenFile`);
    if (s !== undefined && s.length < 16) fail(`http.tokens.${i}.tokenFile`, 'expected a token of at least 16 characters in the file');
    credentials.push({ name: t.name, scope: t.scope, token: s ?? '' });
  });
  let tls: ResolvedConfig['http']['tls'];
  if (config.http.tls) {
    const t = config.http.tls;
    const pem = (f: string, k: string) => {
      try {
        return readRegularFile(resolvePath(f, base), MAX_PEM_BYTES).toString('utf8');
      } catch (err) {
        fail(k, `expected a readable PEM file: ${(err as Error).message}`);
        return '';
      }
    };
    const cert = pem(t.certFile, 'http.tls.certFile');
    const tlsKey = secret(t.keyFile, 'http.tls.keyFile') ?? '';
    tls = { cert, key: tlsKey, ...(t.clientCaFile !== undefined ? { ca: pem(t.clientCaFile, 'http.tls.clientCaFile') } : {}) };
  }
  const mqttPassword = config.mqtt?.passwordFile !== undefined ? secret(config.mqtt.passwordFile, 'mqtt.passwordFile') : config.mqtt?.password;
  const svc = config.engine === 'etcd' ? config.etcd : config.engine === 'zookeeper' ? config.zookeeper : undefined;
  const servicePassword = svc?.passwordFile !== undefined ? secret(svc.passwordFile, `${config.engine}.passwordFile`) : svc?.password;
  const pbftKeys = config.engine === 'pbft' ? readPbftKeys(config, base, secret, fail) : undefined;
  if (problems.length > 0 || !key) throw new ConfigError(file, problems.sort((a, b) => a.line - b.line || a.col - b.col));
  return {
    ...(pbftKeys ? { pbftKeys } : {}),
    config,
    file,
    self,
    servicePassword,
    key,
    previousKey,
    dataDir,
    http: { host: l.host, port: l.port, token, tokenFile, credentials, tls },
    mqttPassword,
  };
}

/**
 * pbft.privateKey and pbft.publicKeys read and parsed (the schema checked that both or
 * neither are set and that they name every member once). The private key is a secret
 * file (owner-only, like the cluster key); the public keys are not secrets. A public
 * key of this board that does not belong to its private key is refused: every peer
 * would refuse this board's signatures, and the operator should hear why at start.
 */
function readPbftKeys(config: Config, base: string, secret: (f: string, key: string) => string | undefined, fail: (key: string, message: string) => void): ResolvedConfig['pbftKeys'] {
  const p = config.pbft;
  if (p.privateKey === undefined || p.publicKeys === undefined) return undefined;
  let ok = true;
  let privateKey: KeyObject | undefined;
  const privText = secret(p.privateKey, 'pbft.privateKey');
  if (privText === undefined) ok = false;
  else {
    try {
      privateKey = parseEd25519PrivateKey(privText, resolvePath(p.privateKey, base));
    } catch (err) {
      fail('pbft.privateKey', (err as Error).message);
      ok = false;
    }
  }
  const publicKeys = new Map<number, KeyObject>();
  for (const m of config.members) {
    const f = p.publicKeys[m.name];
    if (f === undefined) return undefined; // the schema reported it
    const path = resolvePath(f, base);
    const k = `pbft.publicKeys.${m.name}`;
    try {
      publicKeys.set(m.id, parseEd25519PublicKey(readRegularFile(path, MAX_PEM_BYTES).toString('utf8'), path));
    } catch (err) {
      fail(k, err instanceof FileReadError ? `expected a readable public key file: ${path}: ${err.message}` : (err as Error).message);
      ok = false;
    }
  }
  if (!ok || !privateKey) return undefined;
  const self = config.members.find((m) => m.name === config.node.name)!;
  const own = publicKeys.get(self.id)!;
  if (Buffer.compare(Buffer.from(ed25519PublicKeyRaw(privateKey)), Buffer.from(ed25519PublicKeyRaw(own))) !== 0) {
    fail(`pbft.publicKeys.${self.name}`, `expected the public key of this board's private key (${resolvePath(p.privateKey, base)}); ${resolvePath(p.publicKeys[self.name]!, base)} holds another key: derive it with  openssl pkey -in ${resolvePath(p.privateKey, base)} -pubout`);
    return undefined;
  }
  return { privateKey, publicKeys };
}
