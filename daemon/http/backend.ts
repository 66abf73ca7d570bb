/**
 * What the HTTP API needs from a node: the runtime's client API (daemon/runtime)
 * seen through one small interface, so that the HTTP layer is tested on its own
 * (test/daemon/http) and the same server fronts a real node or an in-process one.
 *
 * Every callback is called exactly once with a `ClientResult` whose status follows
 * DESIGN §6: 200/404/409/400/413, 503 = definitely not applied, 504 = unknown.
 */
import type { ClientCallback } from '../runtime/results.ts';
import type { MetricFamily } from './metrics.ts';

export interface StatusView {
  id: string;
  engine: string;
  role: string;
  term: number;
  leader: string | null;
  active: boolean;
  commitIndex: number;
  appliedIndex: number;
  peers: Array<Record<string, unknown>>;
  links: Array<Record<string, unknown>>;
  relays: Array<Record<string, unknown>>;
}

export interface LeaderView {
  leader: string | null;
  term: number;
  /** Fencing token of the current leadership epoch (0 when no leader is known). */
  token: number;
}

export interface ApiBackend {
  status(): StatusView;
  leader(): LeaderView;
  /** Linearizable read (ReadIndex) unless `stale`. */
  get(key: string, opts: { stale: boolean }, cb: ClientCallback): void;
  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void;
  del(key: string, opts: { cas?: number }, cb: ClientCallback): void;
  lockAcquire(name: string, owner: string, ttlMs: number, cb: ClientCallback): void;
  lockRenew(name: string, token: number, cb: ClientCallback): void;
  lockRelease(name: string, token: number, cb: ClientCallback): void;
  /**
   * Calls `fn` after every applied change to `key` (local apply, any role) until the
   * returned function is called. Optional: without it, watches poll the local state.
   */
  onKeyChange?(key: string, fn: () => void): () => void;
  /** Metric families of the node (role, term, indexes, elections, links, fsync...). */
  metrics(): MetricFamily[];
}
