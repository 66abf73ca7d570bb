/**
 * `FencedResource`: the check every outside system must make (docs/fencing.md).
 *
 * The resource (a pump controller, a storage service, a file on a NAS) remembers the
 * newest fencing token it has seen and refuses any command carrying an older one.
 * A token equal to the newest is accepted: one leadership epoch or one lock grant
 * sends many commands. A newer token is accepted and becomes the newest; from then on
 * the holder of the older token is locked out, even if it still believes it leads
 * (a paused process, a partitioned board whose lease check raced its action).
 *
 * Persistence hook: a resource that restarts must not forget the newest token, or a
 * stale holder could slip in right after the restart. `store.save(token)` is called
 * *before* a newer token is accepted (write-ahead); if it throws, the command is
 * rejected and the newest token is unchanged. `store.load()` at construction
 * restores it. Without a store, the newest token lives in memory only (say so in the
 * resource's own docs).
 *
 * Pure and synchronous; for an asynchronous store, persist before calling the
 * actuator, as docs/fencing.md shows.
 */
import { checkToken, describe, NO_TOKEN, type Token } from './token.ts';

export interface TokenStore {
  /** The newest token saved, or undefined if none yet. */
  load(): Token | undefined;
  /** Durably records `token` as the newest; throws if it cannot. */
  save(token: Token): void;
}

export type FenceCheck =
  | { ok: true; token: Token; newest: Token }
  | { ok: false; token: Token; newest: Token; reason: string };

/** Thrown by `FencedResource.run` for a stale token. */
export class StaleTokenError extends Error {
  constructor(
    readonly resource: string,
    readonly token: Token,
    readonly newest: Token,
  ) {
    super(`${resource}: fencing token ${token} is stale (newest seen: ${newest}); the command was rejected`);
    this.name = 'StaleTokenError';
  }
}

export interface FencedResourceOptions {
  /** Name in error messages. Required. */
  name: string;
  /** Persistence hook (see the file comment). Default none: memory only. */
  store?: TokenStore;
}

export class FencedResource {
  readonly name: string;
  private newestValue: Token;
  private readonly store: TokenStore | undefined;
  /** Commands rejected as stale so far. */
  rejected = 0;

  constructor(opts: FencedResourceOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError(`FencedResource: expected options { name, store? }, got ${describe(opts)}`);
    if (typeof opts.name !== 'string' || opts.name.length === 0) throw new TypeError(`FencedResource name: expected a non-empty string, got ${describe(opts.name)}`);
    this.name = opts.name;
    this.store = opts.store;
    if (this.store !== undefined && (typeof this.store.load !== 'function' || typeof this.store.save !== 'function')) {
      throw new TypeError(`FencedResource ${this.name} store: expected { load(), save(token) }`);
    }
    const loaded = this.store?.load();
    this.newestValue = loaded === undefined ? NO_TOKEN : checkToken(loaded, `FencedResource ${this.name}: token loaded from the store`);
  }

  /** The newest token accepted so far (0 if none). */
  get newest(): Token {
    return this.newestValue;
  }

  /** Whether `token` would be accepted, without recording anything. */
  check(token: Token): FenceCheck {
    checkToken(token, `FencedResource ${this.name} token`);
    if (token < this.newestValue) {
      return { ok: false, token, newest: this.newestValue, reason: `token ${token} is older than the newest seen (${this.newestValue})` };
    }
    return { ok: true, token, newest: this.newestValue };
  }

  /**
   * Accepts or rejects a command carrying `token`. On acceptance of a newer token it
   * is persisted first, then becomes the newest. Throws only for a malformed token.
   */
  admit(token: Token): FenceCheck {
    const c = this.check(token);
    if (!c.ok) {
      this.rejected++;
      return c;
    }
    if (token > this.newestValue) {
      if (this.store !== undefined) {
        try {
          this.store.save(token);
        } catch (e) {
          this.rejected++;
          return { ok: false, token, newest: this.newestValue, reason: `could not persist token ${token}: ${e instanceof Error ? e.message : String(e)}` };
        }
      }
      this.newestValue = token;
    }
    return { ok: true, token, newest: this.newestValue };
  }

  /** Runs `command` only if `token` is admitted; throws `StaleTokenError` for a stale token, an Error if it could not be persisted. */
  run<T>(token: Token, command: () => T): T {
    const c = this.admit(token);
    if (!c.ok) {
      if (token < c.newest) throw new StaleTokenError(this.name, token, c.newest);
      throw new Error(`${this.name}: command with token ${token} rejected: ${c.reason}`);
    }
    return command();
  }
}
