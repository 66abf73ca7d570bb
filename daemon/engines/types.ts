/**
 * The external engines (`engine: etcd`, `engine: zookeeper`): a node that does not run
 * a quorum of its own but elects and keeps its replicated state through a
 * coordination service the site already runs. What the daemon needs of one, close to
 * the node runtime's client API (daemon/runtime/engine-node.ts: get/put/del, locks, job
 * claims, each answered once through a ClientCallback with the status rule of
 * daemon/runtime/results.ts) and its activation events, so that the HTTP backend,
 * hooks and scheduled jobs work unchanged on top (engines/backend.ts).
 *
 * What maps onto what (docs/engines.md has the user's table):
 *
 *   leadership      etcd: a key bound to our lease under <prefix>election/, the lowest
 *                   create revision leads (etcd's concurrency.Election recipe); the
 *                   winner writes <prefix>leader in a transaction guarded by its own key
 *                   and the fencing token is that write's revision.
 *                   ZooKeeper: an ephemeral sequential znode under <chroot>/election,
 *                   the lowest sequence leads, each watches its predecessor (the
 *                   ZooKeeper leader-election recipe); the token is the znode's czxid.
 *   KV              <prefix>kv/<key>; index = the key's mod revision (etcd) or mzxid
 *                   (ZooKeeper); ?cas= is a transaction on it; watches are the service's.
 *   locks           <prefix>locks/<name>, bound to a lease of the lock's TTL (etcd) or
 *                   expiring by the service's modification time (ZooKeeper); token = the
 *                   revision / zxid of the grant.
 *   job claims      <prefix>jobs/<name>, claimed by a transaction that also checks this
 *                   node's leadership (its election key / leader record) is still there.
 *
 * Tokens of both services come from one sequence that only grows (etcd revisions,
 * ZooKeeper zxids), so leadership tokens and lock tokens compare like the Raft ones.
 */
import type { ClientCallback } from '../runtime/results.ts';
import type { JobRecord } from '../../src/kv/index.ts';
import type { JobReport, Leadership } from '../jobs/coordinator.ts';

export type ExternalEngineName = 'etcd' | 'zookeeper';

export interface ActivationEvent {
  active: boolean;
  /** Leadership epoch: for the external engines the same number as the token. */
  term: number;
  token: number;
  /** performance.now() when the change happened (tests measure gaps with it). */
  atMs: number;
  /** Why, for logs: elected, renewed, window-ended, lease-lost, resigned, stopped... */
  reason: string;
}

export interface ExternalStatus {
  engine: ExternalEngineName;
  /** leader (elected), candidate (waiting behind a predecessor), connecting, stopped. */
  role: 'leader' | 'candidate' | 'connecting' | 'stopped';
  /** The current leader by the service's record (a member name), null when none is known. */
  leader: string | null;
  /** Token of the current leader's epoch (0 when none is known). */
  leaderToken: number;
  /** This node won the election and its key is still its (active or not). */
  elected: boolean;
  /** Elected and inside the safety window: this node may act. */
  active: boolean;
  /** This node's token while elected, else 0. */
  token: number;
  /** The lease (etcd) or session (ZooKeeper) as this node sees it. */
  session: {
    /** Lease id / session id (hex), '' before one was granted. */
    id: string;
    ttlMs: number;
    /** Time since the newest answered renewal was sent, ms (null before any). */
    lastAnswerAgoMs: number | null;
    /** How much longer this node may act without another answer, ms (0 when it may not). */
    actForMs: number;
  };
  /** Endpoints as configured. */
  endpoints: string[];
  /**
   * Set when this node refuses to lead or serve for good (also after a restart, while its floor file is kept: floor-file.ts), with why:
   * the service answered older than it had already shown (wiped, re-created, restored).
   */
  refused?: string;
  /** Counters. */
  stats: EngineStats;
}

export interface EngineStats {
  elections: number;
  wins: number;
  leaderChanges: number;
  leasesLost: number;
  windowEnds: number;
  /** Times this leader wrote its leader record again after another client changed it (etcd: <prefix>leader; ZooKeeper: its election znode's data). */
  leaderRewrites: number;
  renewals: number;
  renewalFailures: number;
  requests: number;
  requestErrors: number;
}

export function emptyStats(): EngineStats {
  return { elections: 0, wins: 0, leaderChanges: 0, leasesLost: 0, windowEnds: 0, leaderRewrites: 0, renewals: 0, renewalFailures: 0, requests: 0, requestErrors: 0 };
}

export interface ExternalEngine {
  readonly name: ExternalEngineName;
  /** Connects and campaigns. Safe to call once. */
  start(): void;
  /**
   * Resigns (deletes this node's election key, so another node leads at once instead
   * of after the TTL), stops every timer and watch, closes the client. Idempotent.
   */
  stop(): Promise<void>;
  status(): ExternalStatus;
  /** Active now (elected, window open), judged at this instant. */
  readonly active: boolean;
  /** This node's leadership while active now, for jobs; else undefined. */
  activeLeadership(): Leadership | undefined;
  /** Activation changes; returns the unsubscribe function. */
  onActivation(fn: (ev: ActivationEvent) => void): () => void;

  get(key: string, opts: { stale: boolean }, cb: ClientCallback): void;
  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void;
  del(key: string, opts: { cas?: number }, cb: ClientCallback): void;
  /** Locks: `lease` is the holder's secret lease id; the service keeps only its digest. */
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void;
  lockRenew(name: string, lease: string, cb: ClientCallback): void;
  lockRelease(name: string, lease: string, cb: ClientCallback): void;
  /** Claims a job slot for the leadership `lead` (200 granted, 409 not, 503 not written, 504 unknown). */
  jobClaim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void;
  jobDone(r: JobReport, cb: ClientCallback): void;
  /** The job's record as last read from the service (a cache; the claim transaction decides). */
  jobRecord(job: string): JobRecord | undefined;
  /** Where the service keeps job `job`'s record (`<prefix>jobs/<name>`, a znode path): named by `quorumd jobs reset`, which these engines do not offer. */
  jobRecordLocation(job: string): string;
  /** Every key starting with `prefix` with its value and index (service discovery's catalog). */
  list(prefix: string, opts: { stale: boolean }, cb: (r: { status: number; entries?: Array<{ key: string; value: Uint8Array; index: number }>; error?: string }) => void): void;
  /**
   * What the service showed this node of member `name`'s liveness (common.ts Presence):
   * the evidence `quorumd fence confirm` answers with.
   */
  heard(name: string): { lastHeardMs: number | null; listenedMs: number };
  /** Calls `fn` after every change of `key` the service's watch reports, until unsubscribed. */
  onKeyChange(key: string, fn: () => void): () => void;
}

/** A member as the engines name it: id for job records, name for the leader record. */
export interface EngineMember {
  id: number;
  name: string;
}
