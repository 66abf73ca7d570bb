/**
 * Loads a YAML config, validates it with the zod schema, and turns every problem into
 * `<file>:<line>:<col>: <key.path>: <expected>`. The line is that of the offending
 * value; for a missing key, that of the mapping that should hold it.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isNode, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { configSchema, parseKey, parseListen, type Config } from './schema.ts';
import { jobsSchema, type JobConfig } from './jobs.ts';
import { loosePermissions, readSecretFile } from './secrets.ts';
import type { ApiCredential } from '../http/auth.ts';

export interface ConfigProblem {
  /** Dotted key path, e.g. `members.1.id`; `(file)` for the whole file. */
  key: string;
  line: number;
  col: number;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => `${file}:${p.line}:${p.col}: ${p.key}: ${p.message}`).join('\n'));
  }
}

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
  const r = parseYamlWithSchema(text, file, configSchema, 'expected a YAML mapping with cluster, members, node and a link (mqtt or serial)');
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
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
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
      // zod reports unknown keys on the parent object; point at the first of them.
      const keys = (issue as { keys: string[] }).keys;
      keyPath = [...path, keys[0]!];
      message = `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')} (check the spelling; docs/config.md lists every key)`;
    }
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
  throw new ConfigError(file, problems);
}

/** Reads a file of at most MAX_CONFIG_BYTES as text; problems are ConfigErrors. */
function readConfigText(file: string): string {
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_CONFIG_BYTES) {
      throw new ConfigError(file, [{ key: '(file)', line: 1, col: 1, message: `expected at most ${MAX_CONFIG_BYTES} bytes, got ${buf.length}` }]);
    }
    return buf.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, [{ key: '(file)', line: 0, col: 0, message: `cannot read the file: ${(err as Error).message}` }]);
  }
}

/**
 * A file holding only a `jobs:` list, as in a node config (`quorumd dev --jobs FILE`).
 * Throws ConfigError naming each bad job, key and cron expression.
 */
export function loadJobsFile(file: string): JobConfig[] {
  const schema = z.strictObject({ jobs: jobsSchema });
  return parseYamlWithSchema(readConfigText(file), file, schema, 'expected a YAML mapping with a `jobs:` list').value.jobs;
}

/** A config with its secrets and paths resolved (key files read, relative paths made absolute). */
export interface ResolvedConfig {
  config: Config;
  file: string;
  self: { id: number; name: string; role: 'voter' | 'witness' };
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
}

const noPos: Locator = () => ({ line: 0, col: 0 });

function problem(locate: Locator, key: string, message: string): ConfigProblem {
  return { key, ...locate(key.split('.')), message };
}

function resolvePath(file: string, base: string): string {
  return isAbsolute(file) ? file : resolve(base, file);
}

/** A secret file: readable, and by its owner only (daemon/config/secrets.ts). */
function readSecret(file: string, base: string, key: string, cfgFile: string, locate: Locator): string {
  try {
    return readSecretFile(resolvePath(file, base), key);
  } catch (err) {
    throw new ConfigError(cfgFile, [problem(locate, key, `expected a readable file that only its owner may read: ${(err as Error).message.replace(/^[^:]+: /, '')}`)]);
  }
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
  const { config, locate } = parseConfigWithPositions(readConfigText(file), file);
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
  const self = config.members.find((m) => m.name === config.node.name)!;
  const keyText = config.cluster.key ?? readSecret(config.cluster.keyFile!, base, 'cluster.keyFile', file, locate);
  const key = parseKey(keyText);
  if (!key) throw new ConfigError(file, [problem(locate, 'cluster.keyFile', 'expected the file to hold a key: 32-128 hex digits or base64:<16-64 bytes>')]);
  const prevText = config.cluster.previousKeyFile !== undefined ? readSecret(config.cluster.previousKeyFile, base, 'cluster.previousKeyFile', file, locate) : config.cluster.previousKey;
  const previousKey = prevText !== undefined ? parseKey(prevText) : undefined;
  if (prevText !== undefined && !previousKey) throw new ConfigError(file, [problem(locate, 'cluster.previousKeyFile', 'expected the file to hold a key: 32-128 hex digits or base64:<16-64 bytes>')]);
  const l = parseListen(config.http.listen)!;
  const dataDir = resolvePath(config.node.dataDir, base);
  let token = config.http.token;
  let tokenFile: string | undefined = config.http.token === undefined ? join(dataDir, 'api.token') : undefined;
  if (config.http.tokenFile !== undefined) {
    tokenFile = resolvePath(config.http.tokenFile, base);
    token = readSecret(config.http.tokenFile, base, 'http.tokenFile', file, locate);
    if (token.length < 16) throw new ConfigError(file, [problem(locate, 'http.tokenFile', 'expected a token of at least 16 characters in the file')]);
  }
  const credentials: ApiCredential[] = config.http.tokens.map((t, i) => {
    const secret = readSecret(t.tokenFile, base, `http.tokens.${i}.tokenFile`, file, locate);
    if (secret.length < 16) throw new ConfigError(file, [problem(locate, `http.tokens.${i}.tokenFile`, 'expected a token of at least 16 characters in the file')]);
    return { name: t.name, scope: t.scope, token: secret };
  });
  let tls: ResolvedConfig['http']['tls'];
  if (config.http.tls) {
    const t = config.http.tls;
    const pem = (f: string, key: string) => {
      try {
        return readFileSync(resolvePath(f, base), 'utf8');
      } catch (err) {
        throw new ConfigError(file, [problem(locate, key, `expected a readable PEM file: ${(err as Error).message}`)]);
      }
    };
    tls = { cert: pem(t.certFile, 'http.tls.certFile'), key: readSecret(t.keyFile, base, 'http.tls.keyFile', file, locate), ...(t.clientCaFile !== undefined ? { ca: pem(t.clientCaFile, 'http.tls.clientCaFile') } : {}) };
  }
  const mqttPassword =
    config.mqtt?.passwordFile !== undefined ? readSecret(config.mqtt.passwordFile, base, 'mqtt.passwordFile', file, locate) : config.mqtt?.password;
  const svc = config.engine === 'etcd' ? config.etcd : config.engine === 'zookeeper' ? config.zookeeper : undefined;
  const servicePassword =
    svc?.passwordFile !== undefined ? readSecret(svc.passwordFile, base, `${config.engine}.passwordFile`, file, locate) : svc?.password;
  return {
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
