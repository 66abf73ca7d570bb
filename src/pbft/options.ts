/**
 * PBFT engine options (with their defaults and why), the replica group (n, f and the
 * quorum), and the conversion of durations to ticks.
 *
 * The defaults are for 4–7 real boards on an MQTT LAN with a 10 ms tick: a request
 * normally commits in three message delays plus the signature work (an Ed25519
 * verify is ~0.1 ms on the CI machine, roughly 1 ms on a Pi Zero 2 W core, and a
 * backup verifies about 4f + 2 signatures per request: the request, the PRE-PREPARE,
 * the other backups' PREPAREs and every other replica's COMMIT), i.e. within a few
 * tens of milliseconds. Every timeout below is far above that, because a view change
 * is expensive (every replica signs and sends a certificate set; the new primary
 * checks 2f + 1 of them) and a needless one stalls the cluster for longer than the
 * slow request that caused it.
 */
import { MAX_NODE_ID, type NodeId } from '../types.ts';
import type { MemberConfig } from '../wire/messages.ts';

export interface PbftOptions {
  /** Milliseconds of monotonic time per `tick()`. Default 10, as the other engines. */
  tickMs: number;
  /**
   * How long a backup waits for a request it knows of to execute before it suspects
   * the primary and starts a view change, ms (Castro & Liskov §4.4, the view-change
   * timer). Default 1000: two orders of magnitude above a normal commit on a LAN, so
   * a busy board or a lost message (recovered by retransmission every
   * `retransmitMs`) does not change the view. The same base is the NEW-VIEW timer; each
   * view change that does not lead to a new executed request doubles both (TOCS §4.5.2:
   * "waits 2T"), up to `maxViewChangeTimeoutMs`.
   */
  viewChangeTimeoutMs: number;
  /**
   * Cap of the doubling view-change timeout, ms. Default 60000. The paper doubles
   * without bound; a cap keeps a cluster that went through many failed view changes
   * during a long partition from waiting hours after it heals. Any cap is still
   * "eventually larger than the message delay", which is all liveness needs.
   */
  maxViewChangeTimeoutMs: number;
  /**
   * Retransmission period, ms: a replica's own unexecuted requests go to every
   * replica again, the primary re-sends its unexecuted PRE-PREPAREs (backups answer a
   * duplicate with their PREPARE and COMMIT again), a replica in a view change re-sends
   * its VIEW-CHANGE. Default 200: a few round trips; the protocol's own messages are
   * not acknowledged, so this is what makes it live under message loss.
   */
  retransmitMs: number;
  /**
   * Period of the STATUS message every replica sends to every other, ms (the TOCS
   * paper's status-based retransmission, simplified): a peer that sees it is ahead
   * answers with commit certificates, its stable checkpoint proof or its NEW-VIEW, so
   * a replica that missed messages (a partition, a restart) catches up even when the
   * cluster is idle. Default 1000: n(n-1) small messages a second.
   */
  statusMs: number;
  /**
   * K: a checkpoint is taken after every K executed requests (sequence numbers that
   * are multiples of K). Default 32. Each checkpoint costs the application one
   * snapshot of its state (the runtime calls compact()) and one signed CHECKPOINT to
   * every replica; smaller K bounds the log and the VIEW-CHANGE size more tightly.
   */
  checkpointInterval: number;
  /**
   * L = checkpointInterval × windowCheckpoints: the primary assigns sequence numbers
   * only up to the last stable checkpoint + L (the high water mark), and a VIEW-CHANGE
   * carries at most L prepared certificates. Default 2 (the paper's L = 2K), so the
   * primary can run ahead while the next checkpoint becomes stable.
   */
  windowCheckpoints: number;
  /**
   * Largest encoded message, bytes, as given by the link (64 KiB on MQTT). Default
   * 65536. Bounds a request's operation (`maxOpBytes` must leave room for the
   * PRE-PREPARE around it), a state-transfer chunk, and — checked at construction —
   * the largest possible VIEW-CHANGE (L certificates of 2f prepares each).
   */
  maxMsgBytes: number;
  /** Largest operation a request may carry, bytes. Default 0 = maxMsgBytes − 1024 (room for the request's and the PRE-PREPARE's own fields and signatures). */
  maxOpBytes: number;
  /**
   * Own requests (writes and read markers) in flight at once. Default 64, which is
   * also the width of the per-origin duplicate filter: a request more than 64 behind
   * the newest executed one of its origin is considered done. More in flight would
   * let an old request be dropped as a duplicate.
   */
  maxPending: number;
  /** State-transfer chunk size, bytes. Default 0 = maxMsgBytes − 2048 (room for the checkpoint proof that rides along). */
  stateChunkBytes: number;
  /**
   * Testing only: deliberately broken rules, so that the harness can show its
   * invariants catch them. Never set outside tests.
   *   - `commitQuorumMinusOne`: committed-local with 2f COMMITs instead of 2f + 1.
   *   - `viewChangeDropsPrepared`: the NEW-VIEW computation ignores prepared
   *     certificates (every slot re-proposed as a null request).
   *   - `viewChangeAlone`: a backup whose timer expires sends its VIEW-CHANGE at once
   *     instead of complaining first (the paper's rule; pbft.ts "Suspicion" says why
   *     one spurious timeout then leaves it alone in a higher view).
   *   - `newViewTimerAlone`: a replica whose NEW-VIEW timer expires sends VIEW-CHANGE
   *     for the next view at once instead of complaining first (the paper's rule; the
   *     same race in the view change: pbft.ts "Suspicion").
   */
  testingBugs: { commitQuorumMinusOne?: boolean; viewChangeDropsPrepared?: boolean; viewChangeAlone?: boolean; newViewTimerAlone?: boolean };
}

export const DEFAULT_PBFT_OPTIONS: Readonly<PbftOptions> = Object.freeze({
  tickMs: 10,
  viewChangeTimeoutMs: 1000,
  maxViewChangeTimeoutMs: 60_000,
  retransmitMs: 200,
  statusMs: 1000,
  checkpointInterval: 32,
  windowCheckpoints: 2,
  maxMsgBytes: 65536,
  maxOpBytes: 0,
  maxPending: 64,
  stateChunkBytes: 0,
  testingBugs: Object.freeze({}),
});

export interface PbftTicks {
  viewChange: number;
  maxViewChange: number;
  retransmit: number;
  status: number;
  /** L, the window of sequence numbers above the low water mark. */
  window: number;
  maxOpBytes: number;
  stateChunkBytes: number;
}

/** Width of the per-origin duplicate filter (bits kept below the newest executed request number). */
export const DEDUP_WINDOW = 64;

const INT_OPTIONS = [
  'tickMs', 'viewChangeTimeoutMs', 'maxViewChangeTimeoutMs', 'retransmitMs', 'statusMs', 'checkpointInterval',
  'windowCheckpoints', 'maxMsgBytes', 'maxOpBytes', 'maxPending', 'stateChunkBytes',
] as const;

/** Validates options (every problem named) and converts durations to ticks. */
export function resolvePbftOptions(partial: Partial<PbftOptions> | undefined): { opts: PbftOptions; ticks: PbftTicks } {
  if (partial !== undefined && (typeof partial !== 'object' || partial === null || Array.isArray(partial))) {
    throw new TypeError(`pbft options: expected an object, got ${partial === null ? 'null' : Array.isArray(partial) ? 'an array' : typeof partial}`);
  }
  const known = Object.keys(DEFAULT_PBFT_OPTIONS);
  for (const k of Object.keys(partial ?? {})) {
    if (!known.includes(k)) throw new TypeError(`pbft options: unknown option "${k}" (known: ${known.join(', ')})`);
  }
  const o: PbftOptions = { ...DEFAULT_PBFT_OPTIONS, ...(partial ?? {}) };
  for (const k of INT_OPTIONS) {
    const v = o[k];
    const min = k === 'maxOpBytes' || k === 'stateChunkBytes' ? 0 : 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 16 * 1024 * 1024) {
      throw new RangeError(`pbft options: ${k} must be an integer ${min}..16777216, got ${String(v)}`);
    }
  }
  const tb = o.testingBugs;
  if (tb === null || typeof tb !== 'object' || Array.isArray(tb)) throw new TypeError('pbft options: testingBugs must be an object (testing only)');
  for (const [k, v] of Object.entries(tb)) {
    if (k !== 'commitQuorumMinusOne' && k !== 'viewChangeDropsPrepared' && k !== 'viewChangeAlone' && k !== 'newViewTimerAlone') throw new TypeError(`pbft options: testingBugs.${k} is not a known planted bug`);
    if (typeof v !== 'boolean') throw new TypeError(`pbft options: testingBugs.${k} must be a boolean`);
  }
  if (o.maxPending > DEDUP_WINDOW) {
    throw new RangeError(`pbft options: maxPending ${o.maxPending} exceeds the duplicate filter width ${DEDUP_WINDOW}: an older request of ours could be dropped as a duplicate`);
  }
  if (o.maxMsgBytes < 4096) throw new RangeError(`pbft options: maxMsgBytes ${o.maxMsgBytes} is below 4096; PBFT's certificates do not fit smaller frames (serial links need fragmentation first)`);
  const t = (ms: number) => Math.max(1, Math.ceil(ms / o.tickMs));
  const maxOpBytes = o.maxOpBytes === 0 ? o.maxMsgBytes - 1024 : o.maxOpBytes;
  if (maxOpBytes > o.maxMsgBytes - 1024) {
    throw new RangeError(`pbft options: maxOpBytes ${maxOpBytes} leaves no room for the PRE-PREPARE around it within maxMsgBytes ${o.maxMsgBytes} (at most ${o.maxMsgBytes - 1024})`);
  }
  const stateChunkBytes = o.stateChunkBytes === 0 ? o.maxMsgBytes - 2048 : o.stateChunkBytes;
  if (stateChunkBytes > o.maxMsgBytes - 2048) {
    throw new RangeError(`pbft options: stateChunkBytes ${stateChunkBytes} leaves no room for the checkpoint proof within maxMsgBytes ${o.maxMsgBytes} (at most ${o.maxMsgBytes - 2048})`);
  }
  const ticks: PbftTicks = {
    viewChange: t(o.viewChangeTimeoutMs),
    maxViewChange: t(o.maxViewChangeTimeoutMs),
    retransmit: t(o.retransmitMs),
    status: t(o.statusMs),
    window: o.checkpointInterval * o.windowCheckpoints,
    maxOpBytes,
    stateChunkBytes,
  };
  if (ticks.maxViewChange < ticks.viewChange) {
    throw new RangeError(`pbft options: maxViewChangeTimeoutMs (${o.maxViewChangeTimeoutMs}) must be at least viewChangeTimeoutMs (${o.viewChangeTimeoutMs})`);
  }
  if (ticks.retransmit * 2 > ticks.viewChange) {
    throw new RangeError(`pbft options: retransmitMs (${o.retransmitMs}) must be at most half of viewChangeTimeoutMs (${o.viewChangeTimeoutMs}): one lost message must be retransmitted before the primary is suspected`);
  }
  return { opts: o, ticks };
}

/**
 * The replica group: the members in a fixed order (the primary of view v is
 * members[v mod n]), f = ⌊(n − 1)/3⌋ Byzantine members tolerated, and the quorum
 * q = ⌈(n + f + 1)/2⌉ (= 2f + 1 when n = 3f + 1): any two quorums share at least
 * f + 1 members, one of them honest — the intersection every certificate rests on.
 */
export interface ReplicaGroup {
  members: readonly NodeId[];
  n: number;
  f: number;
  q: number;
}

export function replicaGroup(config: MemberConfig, what = 'pbft config'): ReplicaGroup {
  if (config === null || typeof config !== 'object') throw new TypeError(`${what}: expected {voters, learners, witnesses}`);
  const { voters, learners, witnesses } = config;
  if (!Array.isArray(voters) || !Array.isArray(learners ?? []) || !Array.isArray(witnesses ?? [])) {
    throw new TypeError(`${what}: voters, learners and witnesses must be arrays of node ids`);
  }
  if ((learners ?? []).length > 0 || (witnesses ?? []).length > 0) {
    throw new RangeError(`${what}: PBFT has no learners or witnesses (every member is a full replica that executes and signs); got learners [${String(learners)}], witnesses [${String(witnesses)}]`);
  }
  const seen = new Set<number>();
  for (const id of voters) {
    if (!Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) throw new RangeError(`${what}: voter ${String(id)} is not a node id 1..${MAX_NODE_ID}`);
    if (seen.has(id)) throw new RangeError(`${what}: voter ${id} appears twice`);
    seen.add(id);
  }
  const n = voters.length;
  if (n < 4) throw new RangeError(`${what}: PBFT needs at least 4 replicas (n = 3f + 1 with f ≥ 1), got ${n}`);
  const members = [...voters].sort((a, b) => a - b);
  const f = Math.floor((n - 1) / 3);
  const q = Math.ceil((n + f + 1) / 2);
  return { members: Object.freeze(members), n, f, q };
}

/** The primary of view v: members[v mod n] (Castro & Liskov §4.1). */
export function primaryOf(g: ReplicaGroup, view: number): NodeId {
  return g.members[view % g.n]!;
}
