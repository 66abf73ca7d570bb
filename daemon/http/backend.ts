/**
 * What the HTTP API needs from a node: the runtime's client API (daemon/runtime)
 * seen through one small interface, so that the HTTP layer is tested on its own
 * (test/daemon/http) and the same server fronts a real node or an in-process one.
 *
 * Every callback is called exactly once with a `ClientResult` whose status follows
 * docs/api.md: 200/404/409/400/413, 503 = definitely not applied, 504 = unknown.
 */
import type { ClientCallback } from '../runtime/results.ts';
import type { MetricFamily } from './metrics.ts';
import type { PbftReply } from '../../src/pbft/reply.ts';
import type { ClientRef as PbftClientRef } from '../runtime/pbft-clients.ts';
import type { LockAcquireCommand, LockReleaseCommand, LockRenewCommand } from '../../src/kv/index.ts';

/** A lock command as the pbft client sends it (daemon/client/pbft.ts). */
export type LockCommand = LockAcquireCommand | LockRenewCommand | LockReleaseCommand;

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
  /** Fence devices configured on this node (`fencing.targets`): name, type, target, level, detail. */
  relays: Array<Record<string, unknown>>;
  /** With a `fencing:` section only: elected leader (active or not), why it waits, its token, fences. */
  elected?: boolean;
  waitingFor?: string;
  token?: number;
  selfFencing?: boolean;
  clearedBy?: Record<string, string>;
  /** Fences this node ran in this boot (`local`) and the replicated history (`history`, every node's). */
  fences?: { local: Array<Record<string, unknown>>; history: Array<Record<string, unknown>> };
  /** This node is a witness member (votes, never leads, keeps no data). */
  witness?: boolean;
  /**
   * With a `fencing:` section, while elected: the earlier leaders this leader must
   * show stopped before it acts, each with how it was cleared (null: not yet).
   */
  suspects?: Array<{ node: string; clearedBy: string | null }>;
}

/** One key of `GET /v1/keys`: its size and indexes (the value itself is read with GET /v1/kv/<key>). */
export interface KeyView {
  key: string;
  size: number;
  createIndex: number;
  modIndex: number;
}

/** One granted lock of `GET /v1/locks` (never the lease id: it is the holder's secret). */
export interface LockView {
  name: string;
  owner: string;
  token: number;
  ttlMs: number;
  /** On the cluster's lock clock (see docs/api.md, Locks); compare with `clockMs` of the answer. */
  expiresAt: number;
}

export interface LeaderView {
  leader: string | null;
  term: number;
  /** Fencing token of the current leadership epoch (0 when no leader is known). */
  token: number;
}

/** Answer of the fence endpoints: 200 done; 400/404 bad node; 502 the fence failed; 503 not possible here. */
export interface FenceAnswer {
  status: 200 | 400 | 404 | 409 | 502 | 503;
  error?: string;
  /** The error's code when the status alone does not name it (409: 'node-alive' or 'not-leader'). */
  code?: string;
  /** The fence record (src/fence FenceRecord) when a fence ran. */
  record?: unknown;
  /** Confirm: what the confirmation did (superseded fence, active now, what it still waits for). */
  result?: Record<string, unknown>;
}

/**
 * Answer of `POST /v1/jobs/<name>/reset`: 200 withdrawn; 404 no such job configured; 409
 * nothing to withdraw (the reason); 501 the engine cannot; 503 not proposed; 504 unknown.
 */
export interface JobResetAnswer {
  status: number;
  error?: string;
  /** 200: the claim withdrawn (slot ISO, claimer's name, term) and the floor later slots must be after (ISO); null if the record moved on before this node read it. */
  withdrawn?: { slot: string; node: string; term: number } | null;
  floor?: string | null;
}

export interface ApiBackend {
  status(): StatusView;
  leader(): LeaderView;
  /** Linearizable read (ReadIndex) unless `stale`. */
  /** `pbftClient` (engine pbft; others ignore it): the client request's identity, daemon/runtime/pbft-clients.ts. */
  get(key: string, opts: { stale: boolean; pbftClient?: PbftClientRef }, cb: ClientCallback): void;
  put(key: string, value: Uint8Array, opts: { cas?: number; pbftClient?: PbftClientRef }, cb: ClientCallback): void;
  del(key: string, opts: { cas?: number; pbftClient?: PbftClientRef }, cb: ClientCallback): void;
  /** Engine pbft: this node's signed reply for client request (id, seq), while it holds it. */
  pbftClientReply?(id: Uint8Array, seq: number): PbftReply | undefined;
  /** Engine pbft: a lock command in a client's envelope (`now` is the agreed time: daemon/runtime/pbft-time.ts). */
  pbftLock?(cmd: LockCommand, ref: PbftClientRef, cb: ClientCallback): void;
  /**
   * Locks: `lease` is the holder's secret lease id (docs/api.md); renew and release
   * name the grant by it, never by the public fencing token.
   */
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void;
  lockRenew(name: string, lease: string, cb: ClientCallback): void;
  lockRelease(name: string, lease: string, cb: ClientCallback): void;
  /**
   * Calls `fn` after every applied change to `key` (local apply, any role) until the
   * returned function is called. Optional: without it, watches poll the local state.
   */
  onKeyChange?(key: string, fn: () => void): () => void;
  /**
   * Operator: fence member `node` (a name) now through this node's fence devices;
   * answers when the fence finished (off and verified, or failed). Optional: without
   * it the endpoint answers 501.
   */
  fence?(node: string, cb: (r: FenceAnswer) => void): void;
  /** Operator: member `node` is declared safely down (`quorumd fence confirm`). Optional. */
  confirmFenced?(node: string): FenceAnswer;
  /**
   * Scheduled jobs (daemon/jobs JobView: last run from the replicated table, next run
   * on this node's clock); an empty list when none are configured. Optional: without
   * it (engine: bully) `GET /v1/jobs` answers 501.
   */
  jobs?(): unknown[];
  /**
   * Operator: `POST /v1/jobs/<name>/reset` — withdraw the job's future claim (docs/jobs.md,
   * Time). Optional: without it (engine: bully) the endpoint answers 501.
   */
  jobReset?(job: string, cb: (a: JobResetAnswer) => void): void;
  /**
   * Keys of this node's applied state starting with `prefix`, sorted, at most `limit`
   * (a local read, like `?stale`). Optional: without it `GET /v1/keys` answers 501.
   */
  keys?(prefix: string, limit: number): { index: number; keys: KeyView[]; more: boolean };
  /**
   * Locks granted and not lapsed in this node's applied state (a local read), with the
   * lock clock they were judged at; `exact`: this node leads, so `expiresAt - clockMs` is
   * the time left (elsewhere the clock lags: an upper bound). Those whose name starts
   * with `prefix`, the first `limit` by name; `more`: there were others. Optional:
   * without it `GET /v1/locks` answers 501.
   */
  locks?(prefix: string, limit: number): { index: number; clockMs: number; exact: boolean; locks: LockView[]; more: boolean };
  /** Metric families of the node (role, term, indexes, elections, links, fsync...). */
  metrics(): MetricFamily[];
}
