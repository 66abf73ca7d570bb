/**
 * Credentials of the HTTP API: bearer tokens, each with a name and a scope.
 *
 *   read      GET and HEAD of everything: status, leader, KV reads and watches, jobs, metrics
 *   write     read + KV writes and locks (PUT/DELETE /v1/kv, POST/DELETE /v1/locks)
 *   operator  write + fence, fence confirm, and any operator action (jobs control, transfer)
 *
 * Scopes are ordered (an operator may write, a writer may read): a monitoring system
 * gets a read token, an application a write token, a person on call the operator one.
 * Every request must carry `Authorization: Bearer <token>`, also on loopback (other
 * local users are not trusted, docs/security.md): no token or an unknown one is 401,
 * a known token whose scope is too small is 403 and names the scope needed.
 *
 * Tokens are compared as SHA-256 digests with timingSafeEqual against every
 * credential (equal-length inputs, no early exit on the first match), so the time of
 * an answer tells neither a token's prefix nor which credential matched.
 *
 * A keep-alive connection whose header matched is not hashed again while it sends the
 * very same header: the credential is remembered for that connection (the header
 * string and whom it matched; forgotten with the connection). Comparing a header with
 * the one the same connection sent before tells its client nothing it did not send
 * itself; any other header is checked in full. Under 64 writers the hash was 2–3 % of
 * the leader's busy time.
 *
 * The scope a request needs is decided from its method and path alone, before any
 * routing (`requiredScope`): an endpoint added later without a rule here needs the
 * operator scope, so a new endpoint is closed until someone decides otherwise.
 */
import { hash, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['read', 'write', 'operator'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiCredential {
  /** Shown in logs and errors (never the token). */
  name: string;
  scope: Scope;
  token: string;
}

const RANK: Record<Scope, number> = { read: 0, write: 1, operator: 2 };

export function scopeAllows(have: Scope, need: Scope): boolean {
  return RANK[have] >= RANK[need];
}

export function isScope(s: unknown): s is Scope {
  return typeof s === 'string' && (SCOPES as readonly string[]).includes(s);
}

/** The scope a request needs (see the header). */
export function requiredScope(method: string, path: string): Scope {
  if (path.startsWith('/v1/fence/') || path === '/v1/fence') return 'operator';
  if (method === 'GET' || method === 'HEAD') return 'read';
  if (path.startsWith('/v1/kv/') || path === '/v1/kv' || path.startsWith('/v1/locks/') || path === '/v1/locks' || path.startsWith('/v1/services/')) return 'write';
  return 'operator';
}

// One-shot crypto.hash (Node ≥ 20.12): the same SHA-256 as createHash().update().digest(),
// without a Hash object per request; every request hashes its token, and under 64
// writers this was 2–3 % of the leader's busy time.
const digest = (s: string) => hash('sha256', s, 'buffer');

/** Who a request is: the credential its token matched (never the token). */
export interface Caller {
  readonly name: string;
  readonly scope: Scope;
}

export class ApiAuth {
  private readonly creds: Array<Caller & { digest: Buffer }>;
  /** Per connection: the header that last matched, and whom (see the header). */
  private readonly byConnection = new WeakMap<object, { header: string; caller: Caller }>();

  constructor(credentials: ApiCredential[]) {
    if (!Array.isArray(credentials) || credentials.length === 0) throw new TypeError('HTTP API: at least one credential {name, scope, token} is needed');
    const names = new Set<string>();
    this.creds = credentials.map((c, i) => {
      if (typeof c?.name !== 'string' || c.name.length === 0) throw new TypeError(`HTTP API credential ${i}: name must be a non-empty string`);
      if (names.has(c.name)) throw new TypeError(`HTTP API credential ${i}: name ${JSON.stringify(c.name)} appears twice`);
      names.add(c.name);
      if (!isScope(c.scope)) throw new TypeError(`HTTP API credential ${c.name}: scope must be read, write or operator, got ${JSON.stringify(c.scope)}`);
      if (typeof c.token !== 'string' || c.token.length < 16) throw new TypeError(`HTTP API credential ${c.name}: token must be a string of at least 16 characters`);
      return { name: c.name, scope: c.scope, digest: digest(c.token) };
    });
  }

  /**
   * The credential an `Authorization` header names, or undefined (missing, malformed,
   * unknown). `connection`: the request's socket, whose last matching header is
   * remembered (see the header).
   */
  check(header: string | undefined, connection?: object): Caller | undefined {
    if (connection !== undefined && header !== undefined) {
      const known = this.byConnection.get(connection);
      if (known !== undefined && known.header === header) return known.caller;
    }
    const m = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
    const given = digest(m ? m[1]! : '\u0000no token');
    let found: Caller | undefined;
    // Every credential is compared, whatever matched: constant work per request.
    for (const c of this.creds) if (timingSafeEqual(given, c.digest) && m) found = c;
    if (found !== undefined && connection !== undefined) this.byConnection.set(connection, { header: header!, caller: found });
    return found;
  }
}
