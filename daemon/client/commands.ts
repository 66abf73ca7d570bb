/**
 * The CLI clients: `quorumd status`, `quorumd kv get|put|del`, `quorumd lock acquire|release`,
 * `quorumd fence NODE` and `quorumd fence confirm NODE`.
 *
 * Output: results on stdout (values raw, so `quorumd kv get k > file` round-trips),
 * problems on stderr. Exit status (the one table of every command, daemon/exit-codes.ts
 * and docs/cli.md): 0 done; 1 a definite "no" (absent key, cas conflict, lock held) or
 * a failure the node named; 2 bad usage or input (also a node's 400/413); 3 not
 * applied, safe to retry (unreachable, 503, 429); 4 outcome unknown (504, or the
 * connection lost after a write was sent); 5 not allowed (401, 403).
 */
import { call, callFirstReached, ClientError, currentToken, enc, jsonOf, nodeUrl, nodeUrls, type Reply } from './http.ts';
import { EXIT } from '../exit-codes.ts';
import { shown } from './shown.ts';

export const EXIT_NO = EXIT.NO;
export const EXIT_USAGE = EXIT.USAGE;
export const EXIT_UNAVAILABLE = EXIT.UNAVAILABLE;
export const EXIT_UNKNOWN = EXIT.UNKNOWN;
export const EXIT_DENIED = EXIT.DENIED;

/** The exit status for a node's answer that is not the command's success. */
export function exitForStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT_DENIED;
  if (status === 400 || status === 413 || status === 414) return EXIT_USAGE;
  if (status === 503 || status === 429) return EXIT_UNAVAILABLE;
  if (status === 504) return EXIT_UNKNOWN;
  return EXIT_NO;
}

export interface Out {
  out(s: string | Uint8Array): void;
  err(s: string): void;
}

export const stdio: Out = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

export function failStatus(r: Reply, io: Out, what: string): number {
  let msg = r.body.toString('utf8').trim();
  try {
    const j = JSON.parse(msg) as { error?: string };
    if (j.error) msg = j.error;
  } catch {
    /* raw text */
  }
  // The node's message may quote names others chose (a lock's holder): shown, not obeyed.
  io.err(`quorumd ${what}: ${r.status}: ${shown(msg)}\n`);
  // The nodes of the --node list asked before this one: not reached, or not tried there.
  for (const p of r.passedOver ?? []) io.err(`quorumd ${what}: passed over before it: ${shown(p)}\n`);
  if (r.status === 401) {
    const t = currentToken();
    io.err(
      t.token === undefined
        ? `quorumd ${what}: no API token found (tried ${t.tried.join(', ')}); give --token-file FILE or --data-dir DIR (the node's data directory holds api.token), or export QUORUMD_API_TOKEN_FILE\n`
        : `quorumd ${what}: the node does not know the token from ${t.source}\n`,
    );
  }
  return exitForStatus(r.status);
}

export async function guarded(io: Out, what: string, write: boolean, f: () => Promise<number>): Promise<number> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof ClientError) {
      // Our own input was bad (--node, the token file): nothing was tried.
      if (err.badInput) {
        io.err(`quorumd ${what}: ${err.message}\n`);
        return EXIT_USAGE;
      }
      // Never sent (refused, no route): definitely not applied. Else a write may have happened.
      const unknown = write && !err.notSent;
      const nothing = err.untried ? ' (no node took it: nothing was done)' : ' (the node was not reached: nothing was done)';
      io.err(`quorumd ${what}: ${err.message}${unknown ? ' (outcome unknown: the write may or may not have happened)' : err.notSent ? nothing : ''}\n`);
      return unknown ? EXIT_UNKNOWN : EXIT_UNAVAILABLE;
    }
    throw err;
  }
}

function casQuery(cas: number | undefined): string {
  return cas === undefined ? '' : `?cas=${cas}`;
}

export function kvGet(node: string, key: string, o: { stale?: boolean }, io: Out = stdio): Promise<number> {
  return guarded(io, 'kv get', false, async () => {
    const r = await callFirstReached(node, 'GET', `/v1/kv/${enc(key)}${o.stale ? '?stale' : ''}`);
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
    const r = await callFirstReached(node, 'PUT', `/v1/kv/${enc(key)}${casQuery(o.cas)}`, { body: value });
    const j = r.status === 200 || r.status === 409 ? jsonOf(r) : undefined;
    if (r.status === 200) {
      io.out(`index=${String(j!.index)}\n`);
      return 0;
    }
    // A compare-and-set conflict says the key's index; any other 409 (a request the
    // node refused for another reason) is shown with the node's own message.
    if (r.status === 409 && o.cas !== undefined && typeof j?.index === 'number') {
      io.err(`quorumd kv put: compare-and-set failed: the key's index is ${String(j.index)}, not ${o.cas}\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'kv put');
  });
}

export function kvDel(node: string, key: string, o: { cas?: number }, io: Out = stdio): Promise<number> {
  return guarded(io, 'kv del', true, async () => {
    const r = await callFirstReached(node, 'DELETE', `/v1/kv/${enc(key)}${casQuery(o.cas)}`);
    const j = r.status === 200 || r.status === 409 ? jsonOf(r) : undefined;
    if (r.status === 200) {
      io.out(`index=${String(j!.index)}\n`);
      return 0;
    }
    // A compare-and-set conflict says the key's index; any other 409 (a request the
    // node refused for another reason) is shown with the node's own message.
    if (r.status === 409 && o.cas !== undefined && typeof j?.index === 'number') {
      io.err(`quorumd kv del: compare-and-set failed: the key's index is ${String(j.index)}, not ${o.cas}\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'kv del');
  });
}

/**
 * `quorumd lock acquire NAME`: prints `token=<fencing token> lease=<lease id> ttlMs=<n>`.
 * The lease id is chosen here (16 random bytes) and sent with the request, so that a
 * retry after an unknown outcome is the same request; it is the secret that renews and
 * releases the lock: keep it like a password, hand the token to what the lock guards.
 */
export function lockAcquire(node: string, name: string, o: { ttl: string; owner: string; lease?: string }, io: Out = stdio): Promise<number> {
  return guarded(io, 'lock acquire', true, async () => {
    // 16 random bytes from Web Crypto's global, which loads Node's crypto module when first
    // used: a CLI call that takes no lock (`quorumd kv get`) does not load it (~4 ms).
    const lease = o.lease ?? Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
    const r = await callFirstReached(node, 'POST', `/v1/locks/${enc(name)}?ttl=${enc(o.ttl)}&owner=${enc(o.owner)}&lease=${enc(lease)}`);
    if (r.status === 200) {
      const j = jsonOf(r);
      io.out(`token=${String(j.token)} lease=${String(j.lease)} ttlMs=${String(j.ttlMs)}\n`);
      return 0;
    }
    if (r.status === 409) {
      io.err(`quorumd lock acquire: lock ${shown(JSON.stringify(name))} is held by ${shown(JSON.stringify(jsonOf(r).holder))}\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, 'lock acquire');
  });
}

/** `quorumd lock release NAME --lease ID` and `quorumd lock renew NAME --lease ID`. */
export function lockRelease(node: string, name: string, o: { lease: string; renew?: boolean }, io: Out = stdio): Promise<number> {
  const what = o.renew ? 'lock renew' : 'lock release';
  return guarded(io, what, true, async () => {
    const r = o.renew
      ? await callFirstReached(node, 'POST', `/v1/locks/${enc(name)}/renew?lease=${enc(o.lease)}`)
      : await callFirstReached(node, 'DELETE', `/v1/locks/${enc(name)}?lease=${enc(o.lease)}`);
    if (r.status === 200) {
      const j = jsonOf(r);
      // ttlMs: the grant now runs that long from the renewal (expiresAt is on the lock clock, not a wall-clock time).
      io.out(o.renew ? `renewed token=${String(j.token)}${j.ttlMs !== undefined ? ` ttlMs=${String(j.ttlMs)}` : ''}\n` : 'released\n');
      return 0;
    }
    if (r.status === 409) {
      io.err(`quorumd ${what}: lock ${JSON.stringify(name)} is not held with that lease\n`);
      return EXIT_NO;
    }
    return failStatus(r, io, what);
  });
}

/**
 * `quorumd lock list [PREFIX]`: who holds which lock, as the node asked has applied it
 * (a local read). EXPIRES IN is judged on the lock clock of that node: exact on the
 * leader, an upper bound elsewhere (docs/api.md, Locks). The lease id is never shown:
 * it is the holder's secret, and the node does not keep it.
 */
export function lockList(node: string, prefix: string, o: { json?: boolean }, io: Out = stdio): Promise<number> {
  nodeUrls(node);
  return guarded(io, 'lock list', false, async () => {
    const r = await callFirstReached(node, 'GET', '/v1/locks');
    if (r.status !== 200) return failStatus(r, io, 'lock list');
    const j = jsonOf(r) as { clockMs: number; exact?: boolean; locks: Array<{ name: string; owner: string; token: number; ttlMs: number; expiresAt: number }> };
    const locks = j.locks.filter((l) => l.name.startsWith(prefix));
    if (o.json) {
      io.out(JSON.stringify({ ...j, locks }, null, 2) + '\n');
      return 0;
    }
    if (locks.length === 0) {
      io.out(prefix ? `no lock starting with ${JSON.stringify(prefix)} is held\n` : 'no lock is held\n');
      return 0;
    }
    // Asked of a follower, the lock clock lags (the newest applied lock command's time): at most.
    const rows = [['LOCK', 'HOLDER', 'TOKEN', 'TTL', j.exact ? 'EXPIRES IN' : 'EXPIRES IN (at most)']];
    for (const l of locks) rows.push([shown(l.name), shown(l.owner), String(l.token), `${l.ttlMs}ms`, `${Math.max(0, l.expiresAt - j.clockMs)}ms`]);
    io.out(pad(rows));
    if (!j.exact) io.out('(asked of a follower: its lock clock lags; ask the leader for the exact time left)\n');
    return 0;
  });
}

function pad(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

interface FenceHist {
  index?: number;
  target?: unknown;
  by?: unknown;
  term?: number;
  outcome?: string;
  level?: number;
  reason?: string;
}

/**
 * One row per node URL: what each node says about itself. ACTIVE is `yes` (elected and
 * allowed to act), `elected` (elected, waiting: the reason follows below the table) or
 * `no`. Below: the fence history (newest last, at most 10), merged from every node
 * that answered: with Raft it is replicated, so every node reports the same records;
 * with bully each node keeps only the fences it ran itself, so the union is the
 * cluster's history and one node alone would show only part of it.
 */
export async function statusTable(nodes: string[]): Promise<string> {
  return (await statusReport(nodes)).text;
}

/**
 * The status table and the exit status it means: 0 when every node answered; else 5
 * when a node refused the token (401/403), 3 when a node did not answer, 1 for any
 * other error answer. A node's problem is printed in full below the table, never cut.
 */
export async function statusReport(nodes: string[]): Promise<{ text: string; exit: number }> {
  const rows: string[][] = [['NODE', 'URL', 'ROLE', 'TERM', 'LEADER', 'ACTIVE', 'COMMIT', 'APPLIED', 'LINKS', 'VERSION']];
  // Which quorumd each node runs (a node of a build before the field existed does not say: "-").
  const versions = new Map<string, string>();
  const notes: string[] = [];
  const problems: string[] = [];
  const exits: number[] = [];
  let history: Map<string, FenceHist> | undefined;
  let replicated = true;
  const results = await Promise.all(
    nodes.map(async (n) => {
      try {
        const r = await call(n, 'GET', '/v1/status', { timeoutMs: 2000 });
        if (r.status !== 200) {
          let msg = r.body.toString('utf8').trim();
          try {
            msg = (JSON.parse(msg) as { error?: string }).error ?? msg;
          } catch {
            /* raw text */
          }
          if (r.status === 401) {
            const t = currentToken();
            msg += t.token === undefined ? ` — no API token found (tried ${t.tried.join(', ')}); give --token-file FILE or --data-dir DIR, or export QUORUMD_DATA_DIR` : ` — the node does not know the token from ${t.source}`;
          }
          problems.push(`${n}: HTTP ${r.status}: ${msg}`);
          exits.push(exitForStatus(r.status));
          return ['?', n, `HTTP ${r.status}`, '', '', '', '', '', '', ''];
        }
        const s = jsonOf(r);
        const links = Array.isArray(s.links) ? (s.links as Array<{ name?: string; up?: boolean }>).map((l) => `${l.name}${l.up === false ? '(down)' : ''}`).join(',') : '';
        const elected = s.elected === true && !s.active;
        if (elected && typeof s.waitingFor === 'string' && s.waitingFor) notes.push(`${String(s.id)} elected, not active yet: waiting for ${s.waitingFor}`);
        if (s.active && typeof s.token === 'number' && s.token > 0) notes.push(`${String(s.id)} active with fencing token ${s.token}`);
        if (s.selfFencing === true) notes.push(`${String(s.id)} SELF-FENCING: stopped feeding its watchdog (lost its lease after being active)`);
        const f = s.fences as { history?: FenceHist[] } | undefined;
        if (f && Array.isArray(f.history)) {
          history ??= new Map();
          for (const h of f.history) history.set(JSON.stringify(h), h);
          if (s.engine !== 'raft') replicated = false;
        }
        // A witness votes but never leads and keeps no data: its commit/applied are not a replica's.
        const role = s.witness === true ? `${String(s.role)} (witness)` : String(s.role);
        if (s.witness === true) notes.push(`${String(s.id)} is a witness: it votes, never leads and keeps no data`);
        const version = typeof s.version === 'string' && s.version !== '' ? shown(s.version) : '-';
        versions.set(String(s.id), version);
        return [String(s.id), n, role, String(s.term), String(s.leader ?? '-'), s.active ? 'yes' : elected ? 'elected' : 'no', String(s.commitIndex), String(s.appliedIndex), links, version];
      } catch (err) {
        // Bad input of our own (the token file): not a node's problem, and exit 2 for all.
        if (!(err instanceof ClientError) || err.badInput) throw err;
        problems.push(`${n}: ${err.message}`);
        exits.push(EXIT_UNAVAILABLE);
        return ['?', n, 'unreachable', '', '', '', '', '', '', ''];
      }
    }),
  );
  rows.push(...results);
  let out = pad(rows);
  if (problems.length) out += '\n' + problems.map((x) => `  ${x}`).join('\n') + '\n';
  // A rolling upgrade under way (or one forgotten): say so, once, with who runs what.
  if (new Set(versions.values()).size > 1) notes.push(`the nodes run different quorumd versions: ${[...versions].map(([id, v]) => `${id} ${v === '-' ? 'an older one (no version reported)' : v}`).join(', ')}`);
  if (notes.length) out += '\n' + notes.map((x) => `  ${x}`).join('\n') + '\n';
  if (history !== undefined) {
    const all = [...history.values()];
    if (all.every((h) => typeof h.index === 'number')) all.sort((a, b) => (a.index as number) - (b.index as number));
    const what = replicated ? 'replicated' : 'merged from the nodes that answered';
    out += `\nfence history (${what}${all.length > 10 ? `, last 10 of ${all.length}` : ''}):\n`;
    if (all.length === 0) out += '  none\n';
    for (const h of all.slice(-10)) {
      out += `  #${h.index ?? '?'} ${String(h.target)} ${h.outcome ?? '?'} by ${String(h.by)} in term ${h.term ?? '?'}${typeof h.level === 'number' && h.level >= 0 ? ` (level ${h.level + 1})` : ''}${h.reason ? `: ${h.reason}` : ''}\n`;
    }
  }
  const exit = exits.length === 0 ? 0 : exits.includes(EXIT_DENIED) ? EXIT_DENIED : exits.includes(EXIT_UNAVAILABLE) ? EXIT_UNAVAILABLE : Math.max(...exits);
  return { text: out, exit };
}

/** `quorumd fence NODE`: fence a member now through the configured devices of the node asked. */
export function fence(node: string, target: string, io: Out = stdio): Promise<number> {
  nodeUrls(node); // a bad URL is a usage error (exit 2), not an unknown outcome
  return guarded(io, 'fence', true, async () => {
    // Delays, settle time and retries: a fence may take a while (the node bounds it at 120 s).
    const r = await callFirstReached(node, 'POST', `/v1/fence/${enc(target)}`, { timeoutMs: 130_000 });
    if (r.status === 200) {
      const rec = (jsonOf(r).record ?? {}) as { outcome?: string; level?: number | null; attempts?: unknown[]; action?: string };
      io.out(`fenced ${target}: ${rec.outcome ?? 'off'}${typeof rec.level === 'number' ? ` at level ${rec.level + 1}` : ''}${rec.action === 'reboot' ? ' (it is powered back on after its powerOnAfterMs)' : ''}\n`);
      return 0;
    }
    return failStatus(r, io, 'fence');
  });
}

/**
 * `quorumd fence confirm NODE`: an operator declares a member safely down.
 *
 * Only the leader (bully: the coordinator) judges a confirmation, and a confirmation is
 * not forwarded: another node answers 409 `not-leader`, having recorded nothing (it
 * refuses before anything is written: daemon/runtime/leader-fencing.ts, bully-fencing.ts).
 * With a `--node` list that answer goes on to the next node, as an unreached one does,
 * so that a list of every node reaches the leader wherever it stands in it. The leader
 * it names is not followed directly: the answer names a member, and which URL serves
 * that member is not known here. Every other answer ends it (409 `node-alive` above all:
 * a node that heard NODE lately is never asked past).
 */
export function fenceConfirm(node: string, target: string, io: Out = stdio): Promise<number> {
  nodeUrls(node);
  return guarded(io, 'fence confirm', true, async () => {
    const r = await callFirstReached(node, 'POST', `/v1/fence/${enc(target)}/confirm`, { passOverCodes: ['not-leader'] });
    if (r.status === 200) {
      io.out(`confirmed: ${target} is recorded as safely down\n`);
      const j = jsonOf(r) as { superseded?: unknown; active?: unknown; waitingFor?: unknown; lastHeardMs?: unknown; listenedMs?: unknown };
      // What the node asked (the leader; bully: the coordinator) knew, docs/fencing.md, and
      // what the confirmation did. Every engine's answer says it the same way; "listening"
      // is hearing every member as the leader, or reading the election (etcd, ZooKeeper:
      // any node, leader or not), so the line does not say "led".
      const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      if (typeof j.listenedMs === 'number' && (j.lastHeardMs === null || typeof j.lastHeardMs === 'number')) {
        const heard = j.lastHeardMs === null ? `had heard nothing from ${target} since it started` : `last heard ${target} ${s(j.lastHeardMs)} ago`;
        io.out(`  the node asked ${heard}; it had been listening for ${s(j.listenedMs)}\n`);
      }
      if (j.superseded === true) io.out(`  a fence of ${target} that was still under way on the node asked was stopped\n`);
      if (j.active === false && typeof j.waitingFor === 'string' && j.waitingFor !== '') io.out(`  the node asked is not active yet: ${shown(j.waitingFor)}\n`);
      return 0;
    }
    return failStatus(r, io, 'fence confirm');
  });
}

export async function status(nodesArg: string, o: { watch?: boolean; intervalMs?: number; maxRefreshes?: number }, io: Out = stdio): Promise<number> {
  const nodes = nodesArg.split(',').map((s) => s.trim()).filter(Boolean);
  if (nodes.length === 0) throw new ClientError('--node needs at least one URL');
  nodes.forEach(nodeUrl);
  if (!o.watch) {
    const r = await statusReport(nodes);
    io.out(r.text);
    return r.exit;
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

interface JobRow {
  name: string;
  cron: string;
  timezone: string;
  nextRun: string | null;
  runningHere: number;
  last: { slot: string; node: string; term: number; token: number; result: string; exitCode: number | null; signal: string | null; durationMs: number | null } | null;
  /** The newest `quorumd jobs reset` (absent from nodes of builds before it). */
  reset?: { at: string; floor: string; node: string; term: number; withdrawn: { slot: string; node: string; term: number } } | null;
}

/**
 * `quorumd jobs`: the scheduled jobs as one node sees them — the last granted slot and
 * how it ended (replicated: the same on every node), the node that ran it, and the
 * next fire time. `--json` prints `/v1/jobs` as is.
 */
export function jobs(node: string, o: { json?: boolean }, io: Out = stdio): Promise<number> {
  nodeUrls(node);
  return guarded(io, 'jobs', false, async () => {
    const r = await callFirstReached(node, 'GET', '/v1/jobs');
    if (r.status !== 200) return failStatus(r, io, 'jobs');
    const list = (jsonOf(r).jobs ?? []) as JobRow[];
    if (o.json) {
      io.out(JSON.stringify({ jobs: list }, null, 2) + '\n');
      return 0;
    }
    if (list.length === 0) {
      io.out('no jobs configured (a `jobs:` list in the node config; docs/jobs.md)\n');
      return 0;
    }
    const rows: string[][] = [['JOB', 'CRON', 'LAST SLOT', 'NODE', 'RESULT', 'TOOK', 'NEXT RUN']];
    const notes: string[] = [];
    for (const j of list) {
      const l = j.last;
      // Withdrawn by a reset and no slot granted since: say so, not "never" (slots did run before it).
      const z = l === null && j.reset ? j.reset : null;
      if (z) notes.push(`${shown(j.name)}: reset at ${shown(z.at)} by ${shown(z.node)}: withdrew slot ${shown(z.withdrawn.slot)} (claimed by ${shown(z.withdrawn.node)}, term ${z.withdrawn.term}); slots after ${shown(z.floor)} run\n`);
      const result = l === null ? (z ? 'reset' : '-') : l.result === 'failed' ? `failed(${l.exitCode ?? l.signal ?? '?'})` : l.result;
      rows.push([
        shown(j.name),
        shown(j.timezone === 'UTC' ? j.cron : `${j.cron} (${j.timezone})`),
        l?.slot ?? (z ? 'none since reset' : 'never'),
        shown(l?.node ?? '-'),
        result,
        l?.durationMs !== null && l?.durationMs !== undefined ? `${l.durationMs}ms` : '-',
        j.nextRun ?? '-',
      ]);
    }
    io.out(pad(rows) + notes.join(''));
    return 0;
  });
}

/**
 * `quorumd jobs reset NAME`: withdraw the job's latest claim if it lies after the active
 * leader's clock (a leader whose clock was ahead claimed it; docs/jobs.md, Time). Any
 * node: a follower forwards it. 0 withdrawn; 409 (nothing to withdraw) and every other
 * failure print the node's reason and exit as for any write (exit-codes.ts).
 */
export function jobReset(node: string, name: string, io: Out = stdio): Promise<number> {
  nodeUrls(node);
  return guarded(io, 'jobs reset', true, async () => {
    const r = await callFirstReached(node, 'POST', `/v1/jobs/${enc(name)}/reset`);
    if (r.status !== 200) return failStatus(r, io, 'jobs reset');
    const j = jsonOf(r) as { withdrawn?: { slot?: unknown; node?: unknown; term?: unknown } | null; floor?: unknown };
    const w = j.withdrawn;
    if (w && typeof w.slot === 'string' && typeof w.node === 'string' && typeof j.floor === 'string') {
      io.out(`reset: job ${shown(name)}: withdrew slot ${shown(w.slot)} (claimed by ${shown(w.node)}, term ${String(w.term)}); the next slot after ${shown(j.floor)} runs\n`);
    } else {
      io.out(`reset: job ${shown(name)}: its claim was withdrawn (see quorumd jobs)\n`);
    }
    return 0;
  });
}

/**
 * Opens the f + 1 client of a `--pbft` command, runs `run` with it and maps its errors
 * to the command's exit code: a bad --node/config is a usage error; no f + 1 agreement
 * is "unavailable", or "unknown" (with `unknown` printed) once a request that changes
 * state may have reached a replica.
 */
async function withPbftClient(nodes: string, configFile: string, o: { timeoutMs?: number }, what: string, unknown: string | null, io: Out, run: (client: import('./pbft.ts').PbftClient) => Promise<number>): Promise<number> {
  const { PbftClient, PbftClientError } = await import('./pbft.ts');
  let client;
  try {
    client = PbftClient.fromConfig(configFile, nodes.split(',').map((s) => s.trim()).filter((s) => s !== ''), o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {});
  } catch (err) {
    io.err(`quorumd ${what} --pbft: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  try {
    return await run(client);
  } catch (err) {
    if (err instanceof PbftClientError) {
      const maybe = unknown !== null && err.sent;
      io.err(`quorumd ${what}: ${err.message}\n${maybe ? `quorumd ${what}: outcome unknown: ${unknown}\n` : ''}`);
      return maybe ? EXIT_UNKNOWN : EXIT_UNAVAILABLE;
    }
    if (err instanceof ClientError) {
      io.err(`quorumd ${what}: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

/**
 * `quorumd kv get|put|del --pbft CONFIG`: engine pbft, the result only with f + 1
 * matching signed replies from the --node URLs (daemon/client/pbft.ts). The output is
 * the same as without --pbft; failures name every node and what it said.
 */
export async function kvPbft(nodes: string, configFile: string, op: { kind: 'get'; key: string } | { kind: 'put'; key: string; value: string; cas?: number } | { kind: 'del'; key: string; cas?: number }, o: { timeoutMs?: number } = {}, io: Out = stdio): Promise<number> {
  const what = `kv ${op.kind}`;
  return withPbftClient(nodes, configFile, o, what, op.kind === 'get' ? null : 'the write may or may not have happened', io, async (client) => {
    const r = op.kind === 'get' ? await client.get(op.key) : op.kind === 'put' ? await client.put(op.key, op.value, { cas: op.cas }) : await client.del(op.key, { cas: op.cas });
    if (op.kind === 'get') {
      if (r.status === 200) {
        io.out(r.value ?? new Uint8Array(0));
        if (process.stdout.isTTY && io === stdio) io.out('\n');
        return 0;
      }
      if (r.status === 404) {
        io.err(`quorumd kv get: key ${JSON.stringify(op.key)} not found (f + 1 replicas agree: ${r.replicas.join(', ')})\n`);
        return EXIT_NO;
      }
    } else {
      if (r.status === 200) {
        io.out(`index=${String(r.index ?? 0)}\n`);
        return 0;
      }
      if (r.status === 409) {
        io.err(`quorumd ${what}: ${op.cas !== undefined ? `compare-and-set failed: the key's index is ${String(r.index ?? 0)}, not ${op.cas}` : 'refused (409): an older request of this client'}\n`);
        return EXIT_NO;
      }
    }
    io.err(`quorumd ${what}: ${r.status}${r.error ? `: ${r.error}` : ''} (f + 1 replicas agree: ${r.replicas.join(', ')})\n`);
    return exitForStatus(r.status);
  });
}

/**
 * `quorumd lock acquire|renew|release NAME --pbft <config> --node <urls>`: the lock
 * command through the f + 1 client (daemon/client/pbft.ts); prints as the one-node
 * commands do, once f + 1 replicas signed the same result. The lock executes at the
 * replicas' agreed time (daemon/runtime/pbft-time.ts).
 */
export async function lockPbft(
  nodes: string,
  configFile: string,
  op: { kind: 'acquire'; name: string; ttl: string; owner: string; lease?: string } | { kind: 'renew' | 'release'; name: string; lease: string },
  o: { timeoutMs?: number } = {},
  io: Out = stdio,
): Promise<number> {
  const what = `lock ${op.kind}`;
  let ttlMs = 0;
  if (op.kind === 'acquire') {
    const m = /^(\d{1,9})(ms|s|m|h)?$/.exec(op.ttl);
    if (!m) {
      io.err(`quorumd ${what}: --ttl must be a duration like 500ms, 15s, 2m or 1h, got ${JSON.stringify(op.ttl.slice(0, 40))}\n`);
      return EXIT_USAGE;
    }
    ttlMs = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  }
  return withPbftClient(nodes, configFile, o, what, 'the lock command may or may not have executed', io, async (client) => {
    if (op.kind === 'acquire') {
      const r = await client.lockAcquire(op.name, op.owner, ttlMs, op.lease);
      if (r.status === 200) {
        io.out(`token=${String(r.token)} lease=${r.lease} ttlMs=${String(r.ttlMs ?? ttlMs)}\n`);
        return 0;
      }
      if (r.status === 409) {
        io.err(`quorumd lock acquire: lock ${shown(JSON.stringify(op.name))} is held by ${shown(JSON.stringify(r.holder ?? null))} (f + 1 replicas agree: ${r.replicas.join(', ')})\n`);
        return EXIT_NO;
      }
      io.err(`quorumd ${what}: ${r.status}${r.error ? `: ${r.error}` : ''} (f + 1 replicas agree: ${r.replicas.join(', ')})\n`);
      return exitForStatus(r.status);
    }
    const r = op.kind === 'renew' ? await client.lockRenew(op.name, op.lease) : await client.lockRelease(op.name, op.lease);
    if (r.status === 200) {
      io.out(op.kind === 'renew' ? `renewed token=${String(r.token)}${r.ttlMs !== undefined ? ` ttlMs=${String(r.ttlMs)}` : ''}\n` : 'released\n');
      return 0;
    }
    if (r.status === 409) {
      io.err(`quorumd ${what}: lock ${JSON.stringify(op.name)} is not held with that lease (f + 1 replicas agree: ${r.replicas.join(', ')})\n`);
      return EXIT_NO;
    }
    io.err(`quorumd ${what}: ${r.status}${r.error ? `: ${r.error}` : ''} (f + 1 replicas agree: ${r.replicas.join(', ')})\n`);
    return exitForStatus(r.status);
  });
}
