/**
 * The CLI clients: `quorumd status`, `quorumd kv get|put|del`, `quorumd lock acquire|release`.
 *
 * Output: results on stdout (values raw, so `quorumd kv get k > file` round-trips),
 * problems on stderr. Exit status: 0 done; 1 a definite "no" (absent key, cas
 * conflict, lock held); 3 the node could not do it (503: not applied, safe to retry);
 * 4 outcome unknown (504 or no answer: the write may or may not have happened).
 */
import { call, ClientError, enc, jsonOf, nodeUrl, type Reply } from './http.ts';

export const EXIT_NO = 1;
export const EXIT_UNAVAILABLE = 3;
export const EXIT_UNKNOWN = 4;

export interface Out {
  out(s: string | Uint8Array): void;
  err(s: string): void;
}

export const stdio: Out = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

function failStatus(r: Reply, io: Out, what: string): number {
  let msg = r.body.toString('utf8').trim();
  try {
    const j = JSON.parse(msg) as { error?: string };
    if (j.error) msg = j.error;
  } catch {
    /* raw text */
  }
  io.err(`quorumd ${what}: ${r.status}: ${msg}\n`);
  if (r.status === 503) return EXIT_UNAVAILABLE;
  if (r.status === 504) return EXIT_UNKNOWN;
  return EXIT_NO;
}

async function guarded(io: Out, what: string, write: boolean, f: () => Promise<number>): Promise<number> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof ClientError) {
      io.err(`quorumd ${what}: ${err.message}${write ? ' (outcome unknown: the write may or may not have happened)' : ''}\n`);
      return write ? EXIT_UNKNOWN : EXIT_UNAVAILABLE;
    }
    throw err;
  }
}

function casQuery(cas: number | undefined): string {
  return cas === undefined ? '' : `?cas=${cas}`;
}

export function kvGet(node: string, key: string, o: { stale?: boolean }, io: Out = stdio): Promise<number> {
  return guarded(io, 'kv get', false, async () => {
    const r = await call(node, 'GET', `/v1/kv/${enc(key)}${o.stale ? '?stale' : ''}`);
    if (r.status === 200) {
      io.out(r.body);
      if (process.stdout.isTTY && io === stdio) io.out('\n');
      return 0;
    }
    if (r.status === 404) {
      io.err(`quorumd kv get: key ${JSON.stringify(key)} not found\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'kv get');
  });
}

export function kvPut(node: string, key: string, value: string, o: { cas?: number }, io: Out = stdio): Promise<number> {
  return guarded(io, 'kv put', true, async () => {
    const r = await call(node, 'PUT', `/v1/kv/${enc(key)}${casQuery(o.cas)}`, { body: value });
    const j = r.status === 200 || r.status === 409 ? jsonOf(r) : undefined;
    if (r.status === 200) {
      io.out(`index=${String(j!.index)}\n`);
      return 0;
    }
    if (r.status === 409) {
      io.err(`quorumd kv put: compare-and-set failed: the key's index is ${String(j!.index)}, not ${o.cas}\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'kv put');
  });
}

export function kvDel(node: string, key: string, o: { cas?: number }, io: Out = stdio): Promise<number> {
  return guarded(io, 'kv del', true, async () => {
    const r = await call(node, 'DELETE', `/v1/kv/${enc(key)}${casQuery(o.cas)}`);
    const j = r.status === 200 || r.status === 409 ? jsonOf(r) : undefined;
    if (r.status === 200) {
      io.out(`index=${String(j!.index)}\n`);
      return 0;
    }
    if (r.status === 409) {
      io.err(`quorumd kv del: compare-and-set failed: the key's index is ${String(j!.index)}, not ${o.cas}\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'kv del');
  });
}

export function lockAcquire(node: string, name: string, o: { ttl: string; owner: string }, io: Out = stdio): Promise<number> {
  return guarded(io, 'lock acquire', true, async () => {
    const r = await call(node, 'POST', `/v1/locks/${enc(name)}?ttl=${enc(o.ttl)}&owner=${enc(o.owner)}`);
    if (r.status === 200) {
      const j = jsonOf(r);
      io.out(`token=${String(j.token)} ttlMs=${String(j.ttlMs)}\n`);
      return 0;
    }
    if (r.status === 409) {
      io.err(`quorumd lock acquire: lock ${JSON.stringify(name)} is held by ${JSON.stringify(jsonOf(r).holder)}\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'lock acquire');
  });
}

export function lockRelease(node: string, name: string, o: { token: number }, io: Out = stdio): Promise<number> {
  return guarded(io, 'lock release', true, async () => {
    const r = await call(node, 'DELETE', `/v1/locks/${enc(name)}?token=${o.token}`);
    if (r.status === 200) {
      io.out('released\n');
      return 0;
    }
    if (r.status === 409) {
      io.err(`quorumd lock release: lock ${JSON.stringify(name)} is not held with token ${o.token}\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'lock release');
  });
}

function pad(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** One row per node URL: what each node says about itself. */
export async function statusTable(nodes: string[]): Promise<string> {
  const rows: string[][] = [['NODE', 'URL', 'ROLE', 'TERM', 'LEADER', 'ACTIVE', 'COMMIT', 'APPLIED', 'LINKS']];
  const results = await Promise.all(
    nodes.map(async (n) => {
      try {
        const r = await call(n, 'GET', '/v1/status', { timeoutMs: 2000 });
        if (r.status !== 200) return [ '?', n, `HTTP ${r.status}`, '', '', '', '', '', '' ];
        const s = jsonOf(r);
        const links = Array.isArray(s.links) ? (s.links as Array<{ name?: string; up?: boolean }>).map((l) => `${l.name}${l.up === false ? '(down)' : ''}`).join(',') : '';
        return [String(s.id), n, String(s.role), String(s.term), String(s.leader ?? '-'), s.active ? 'yes' : 'no', String(s.commitIndex), String(s.appliedIndex), links];
      } catch (err) {
        return ['?', n, 'unreachable', '', '', '', '', '', (err as Error).message.slice(0, 40)];
      }
    }),
  );
  rows.push(...results);
  return pad(rows);
}

export async function status(nodesArg: string, o: { watch?: boolean; intervalMs?: number; maxRefreshes?: number }, io: Out = stdio): Promise<number> {
  const nodes = nodesArg.split(',').map((s) => s.trim()).filter(Boolean);
  if (nodes.length === 0) throw new ClientError('--node needs at least one URL');
  nodes.forEach(nodeUrl);
  if (!o.watch) {
    const t = await statusTable(nodes);
    io.out(t);
    return t.includes('unreachable') ? EXIT_UNAVAILABLE : 0;
  }
  // --watch: redraw every interval until Ctrl-C (maxRefreshes bounds it for tests).
  const max = o.maxRefreshes ?? Infinity;
  for (let i = 0; i < max; i++) {
    const t = await statusTable(nodes);
    io.out(`\x1b[2J\x1b[H${new Date().toISOString()}  (Ctrl-C to stop)\n${t}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 1000));
  }
  return 0;
}
