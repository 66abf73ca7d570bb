/**
 * Raft engine options (with their defaults and why) and cluster membership helpers.
 */
import type { Index, NodeId, Term } from '../types.ts';
import { MAX_NODE_ID } from '../types.ts';
import type { MemberConfig } from '../wire/messages.ts';

export type { MemberConfig };

export interface RaftOptions {
  /**
   * Milliseconds of monotonic time per `tick()`. Default 10: fine enough that the
   * election timeout range holds 15 distinct values, coarse enough that a Pi Zero
   * spends nothing on it. All other durations below are converted to whole ticks.
   */
  tickMs: number;
  /**
   * Election timeout, randomized uniformly in [min, max) ms each time it is reset
   * (Raft §5.2). Default [150, 300): the paper's range; it must be well above the
   * broadcast time (one heartbeat round over MQTT on a LAN is a few ms, a 1 KiB frame
   * at 115200 baud about 90 ms) and the spread keeps split votes rare.
   *
   * A node still at term 0 (a brand-new cluster where nobody has campaigned yet) uses
   * [heartbeatMs, 2 × heartbeatMs) instead, capped below the minimum: there is no leader
   * to disrupt, so the first election need not wait out a timeout sized for a loaded
   * machine. The first campaign moves everyone it reaches to term 1 and back to this range.
   */
  electionTimeoutMinMs: number;
  electionTimeoutMaxMs: number;
  /**
   * Leader heartbeat interval, ms. Default 50: a third of the minimum election timeout,
   * so two lost heartbeats in a row do not start an election.
   */
  heartbeatMs: number;
  /**
   * Pre-vote (thesis §9.6). Default on: a node returning from a partition first asks
   * whether it could win, so it neither bumps terms nor disrupts a healthy leader.
   */
  preVote: boolean;
  /**
   * Check-quorum (thesis §6.2). Default on: a leader that heard from no majority within
   * a minimum election timeout steps down, so a partitioned leader stops acting and
   * clients get a definite 503 instead of waiting on it.
   */
  checkQuorum: boolean;
  /**
   * Maximum Append messages in flight per follower in the replicate state. Default 8:
   * enough to keep an MQTT link busy, small enough that a lost burst costs little.
   */
  maxInflight: number;
  /**
   * Frame budget for one message, bytes, as given by the link (`Link.maxFrame`):
   * 1 KiB on serial, 64 KiB on MQTT. Default 65536. Appends are filled up to this
   * budget minus `MSG_OVERHEAD_BYTES`; a single proposal larger than that is refused.
   */
  maxMsgBytes: number;
  /** Maximum entries per Append. Default 64: bounds decode work per frame on a small board. */
  maxEntriesPerMsg: number;
  /**
   * Snapshot bytes per Snapshot chunk. Default 0 = derive from maxMsgBytes
   * (maxMsgBytes - SNAPSHOT_OVERHEAD_BYTES), so that every chunk fits the frame limit.
   */
  snapshotChunkBytes: number;
  /**
   * Lease reads (thesis §6.4.1). Default off: a lease relies on bounded clock drift.
   * Requires checkQuorum and `maxClockDriftRatio`.
   */
  leaseRead: boolean;
  /**
   * Upper bound of the relative rate difference between any two boards' monotonic
   * clocks (e.g. 0.01 = 1 %). Default 0.05: cheap crystals plus the simulator's drift
   * model stay well under it. Only used with leaseRead: the lease is shortened by it.
   */
  maxClockDriftRatio: number;
}

export const DEFAULT_OPTIONS: Readonly<RaftOptions> = Object.freeze({
  tickMs: 10,
  electionTimeoutMinMs: 150,
  electionTimeoutMaxMs: 300,
  heartbeatMs: 50,
  preVote: true,
  checkQuorum: true,
  maxInflight: 8,
  maxMsgBytes: 65536,
  maxEntriesPerMsg: 64,
  snapshotChunkBytes: 0,
  leaseRead: false,
  maxClockDriftRatio: 0.05,
});

/**
 * Conservative bytes an Append needs besides its entries' data: envelope
 * [version,type,cluster,from,to,term,bootId,seq] (≤ 40 B of CBOR with 32-bit values),
 * prevIndex/prevTerm/commit (≤ 15 B), array headers, and the 16-byte tag.
 */
export const MSG_OVERHEAD_BYTES = 96;
/** Conservative per-entry bytes besides data: [term, index, type, bstr header]. */
export const ENTRY_OVERHEAD_BYTES = 24;
/** Bytes a Snapshot chunk needs besides its data (envelope, fields, a membership of up to 32 nodes, tag). */
export const SNAPSHOT_OVERHEAD_BYTES = 192;

export interface Ticks {
  electionMin: number;
  electionMax: number;
  /**
   * The election timeout of a node still at term 0 (a brand-new cluster: nobody ever
   * campaigned), [heartbeat, 2 × heartbeat) capped below electionMin, at least 1 tick.
   */
  firstElectionMin: number;
  firstElectionMax: number;
  heartbeat: number;
  chunkBytes: number;
  maxEntryBytes: number;
}

/** Validates options (every problem named) and converts durations to ticks. */
export function resolveOptions(partial: Partial<RaftOptions> | undefined): { opts: RaftOptions; ticks: Ticks } {
  if (partial !== undefined && (typeof partial !== 'object' || partial === null)) {
    throw new TypeError(`raft options: expected an object, got ${typeof partial}`);
  }
  const known = new Set(Object.keys(DEFAULT_OPTIONS));
  for (const k of Object.keys(partial ?? {})) {
    if (!known.has(k)) throw new TypeError(`raft options: unknown option "${k}" (known: ${[...known].join(', ')})`);
  }
  const o: RaftOptions = { ...DEFAULT_OPTIONS, ...(partial ?? {}) };
  const posInt = (name: keyof RaftOptions, min = 1) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new RangeError(`raft options: ${name} must be an integer >= ${min}, got ${String(v)}`);
    }
  };
  const bool = (name: keyof RaftOptions) => {
    if (typeof o[name] !== 'boolean') throw new TypeError(`raft options: ${name} must be a boolean, got ${String(o[name])}`);
  };
  posInt('tickMs');
  posInt('electionTimeoutMinMs');
  posInt('electionTimeoutMaxMs');
  posInt('heartbeatMs');
  posInt('maxInflight');
  posInt('maxMsgBytes', 256);
  posInt('maxEntriesPerMsg');
  posInt('snapshotChunkBytes', 0);
  bool('preVote');
  bool('checkQuorum');
  bool('leaseRead');
  if (typeof o.maxClockDriftRatio !== 'number' || !(o.maxClockDriftRatio >= 0 && o.maxClockDriftRatio < 0.5)) {
    throw new RangeError(`raft options: maxClockDriftRatio must be a number in [0, 0.5), got ${String(o.maxClockDriftRatio)}`);
  }
  const electionMin = Math.ceil(o.electionTimeoutMinMs / o.tickMs);
  const electionMax = Math.ceil(o.electionTimeoutMaxMs / o.tickMs);
  const heartbeat = Math.max(1, Math.round(o.heartbeatMs / o.tickMs));
  if (electionMax <= electionMin) {
    throw new RangeError(`raft options: electionTimeoutMaxMs (${o.electionTimeoutMaxMs}) must exceed electionTimeoutMinMs (${o.electionTimeoutMinMs}) by at least one tick (${o.tickMs} ms)`);
  }
  if (heartbeat >= electionMin) {
    throw new RangeError(`raft options: heartbeatMs (${o.heartbeatMs}) must be below electionTimeoutMinMs (${o.electionTimeoutMinMs})`);
  }
  if (o.leaseRead && !o.checkQuorum) {
    throw new RangeError('raft options: leaseRead requires checkQuorum (a leader must step down when it loses its quorum before its lease can be trusted)');
  }
  const chunkBytes = o.snapshotChunkBytes > 0 ? o.snapshotChunkBytes : o.maxMsgBytes - SNAPSHOT_OVERHEAD_BYTES;
  if (chunkBytes + SNAPSHOT_OVERHEAD_BYTES > o.maxMsgBytes) {
    throw new RangeError(`raft options: snapshotChunkBytes (${chunkBytes}) + ${SNAPSHOT_OVERHEAD_BYTES} overhead exceeds maxMsgBytes (${o.maxMsgBytes})`);
  }
  const maxEntryBytes = o.maxMsgBytes - MSG_OVERHEAD_BYTES - ENTRY_OVERHEAD_BYTES;
  const firstElectionMax = Math.max(2, Math.min(2 * heartbeat, electionMin));
  const firstElectionMin = Math.max(1, Math.min(heartbeat, firstElectionMax - 1));
  return { opts: o, ticks: { electionMin, electionMax, firstElectionMin, firstElectionMax, heartbeat, chunkBytes, maxEntryBytes } };
}

// ---------------------------------------------------------------------------
// Membership

export function validateConfig(c: unknown, what: string): MemberConfig {
  if (typeof c !== 'object' || c === null) throw new TypeError(`${what}: expected {voters, learners, witnesses}, got ${String(c)}`);
  const o = c as Record<string, unknown>;
  const seen = new Set<number>();
  const list = (k: 'voters' | 'learners' | 'witnesses'): NodeId[] => {
    const v = o[k] ?? [];
    if (!Array.isArray(v)) throw new TypeError(`${what}.${k}: expected an array of node ids, got ${typeof v}`);
    return v.map((id, i) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) {
        throw new RangeError(`${what}.${k}[${i}]: expected a node id 1..${MAX_NODE_ID}, got ${String(id)}`);
      }
      if (seen.has(id)) throw new RangeError(`${what}: node ${id} appears more than once`);
      seen.add(id);
      return id;
    });
  };
  const out = { voters: list('voters'), learners: list('learners'), witnesses: list('witnesses') };
  if (out.voters.length === 0) throw new RangeError(`${what}: at least one voter (a node that can lead) is required`);
  return out;
}

export function copyConfig(c: MemberConfig): MemberConfig {
  return { voters: [...c.voters], learners: [...c.learners], witnesses: [...c.witnesses] };
}

/** Members that vote and count toward quorums: voters and witnesses. */
export function votingMembers(c: MemberConfig): NodeId[] {
  return [...c.voters, ...c.witnesses];
}

export function allMembers(c: MemberConfig): NodeId[] {
  return [...c.voters, ...c.witnesses, ...c.learners];
}

export function quorumSize(c: MemberConfig): number {
  return Math.floor(votingMembers(c).length / 2) + 1;
}

/** A membership change, one server at a time (thesis §4.1). */
export type ConfChange =
  | { op: 'add-learner'; node: NodeId }
  /** Learner → voter; refused unless the learner has caught up (match >= leader commit). */
  | { op: 'promote'; node: NodeId }
  /** Adds a voter directly. Prefer add-learner + promote (thesis §4.2.1: catch up before voting). */
  | { op: 'add-voter'; node: NodeId }
  | { op: 'add-witness'; node: NodeId }
  /** Removes a voter, learner or witness. */
  | { op: 'remove'; node: NodeId };

export function applyConfChange(c: MemberConfig, ch: ConfChange): MemberConfig {
  if (typeof ch !== 'object' || ch === null) throw new TypeError(`conf change: expected {op, node}, got ${String(ch)}`);
  const id = ch.node;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) {
    throw new RangeError(`conf change: node must be an id 1..${MAX_NODE_ID}, got ${String(id)}`);
  }
  const n = copyConfig(c);
  const has = allMembers(c).includes(id);
  const drop = (l: NodeId[]) => l.filter((x) => x !== id);
  switch (ch.op) {
    case 'add-learner':
    case 'add-voter':
    case 'add-witness':
      if (has) throw new RangeError(`conf change ${ch.op}: node ${id} is already a member`);
      (ch.op === 'add-learner' ? n.learners : ch.op === 'add-voter' ? n.voters : n.witnesses).push(id);
      return n;
    case 'promote':
      if (!c.learners.includes(id)) throw new RangeError(`conf change promote: node ${id} is not a learner`);
      n.learners = drop(n.learners);
      n.voters.push(id);
      return n;
    case 'remove':
      if (!has) throw new RangeError(`conf change remove: node ${id} is not a member`);
      n.voters = drop(n.voters);
      n.learners = drop(n.learners);
      n.witnesses = drop(n.witnesses);
      if (n.voters.length === 0) throw new RangeError(`conf change remove: node ${id} is the last voter`);
      return n;
    default:
      throw new RangeError(`conf change: unknown op "${String((ch as { op: unknown }).op)}" (expected add-learner, promote, add-voter, add-witness, remove)`);
  }
}

/**
 * Config entries carry the whole new membership (not the delta), so that a log
 * suffix alone tells the configuration: [nVoters, ...voters, nLearners, ...,
 * nWitnesses, ...], one byte each (ids are 1..254, at most 254 members).
 */
export function encodeConfig(c: MemberConfig): Uint8Array {
  const out = [c.voters.length, ...c.voters, c.learners.length, ...c.learners, c.witnesses.length, ...c.witnesses];
  return Uint8Array.from(out);
}

export function decodeConfig(b: Uint8Array, where: string): MemberConfig {
  let p = 0;
  const list = (name: string): NodeId[] => {
    if (p >= b.length) throw new RangeError(`${where}: config entry truncated before ${name}`);
    const n = b[p++]!;
    if (p + n > b.length) throw new RangeError(`${where}: config entry truncated in ${name}`);
    const ids = Array.from(b.subarray(p, p + n));
    p += n;
    return ids;
  };
  const c = { voters: list('voters'), learners: list('learners'), witnesses: list('witnesses') };
  if (p !== b.length) throw new RangeError(`${where}: config entry has ${b.length - p} trailing bytes`);
  return validateConfig(c, where);
}

export interface SnapshotMeta {
  index: Index;
  term: Term;
  config: MemberConfig;
}
