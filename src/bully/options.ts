/**
 * Bully engine options (with their defaults and why), member priorities, and the
 * fencing token derived from an epoch.
 */
import { MAX_NODE_ID, type NodeId, type Term } from '../types.ts';

export interface BullyOptions {
  /**
   * Milliseconds of monotonic time per `tick()`. Default 10, like the Raft engine, so
   * that the runtime drives both engines with the same clock. Every duration below is
   * converted to whole ticks (rounded up).
   */
  tickMs: number;
  /**
   * Period of the coordinator's re-announcement (a Coordinator message to every
   * member), ms. Default 50, the Raft heartbeat: the classic bully algorithm detects a
   * dead coordinator by a failed request; on boards that may sit idle, followers
   * instead notice that the periodic announcement stopped. Followers never reply to it,
   * so an idle cluster costs n-1 small messages per period (Raft: 2(n-1)); with fencing
   * the runtime adds each follower's report to its coordinator every 200 ms and the
   * coordinator's answer (daemon/runtime/bully-fencing.ts).
   */
  heartbeatMs: number;
  /**
   * A follower that heard no announcement from its coordinator for this long starts an
   * election, ms; drawn uniformly in [min, max) at every reset. Default [150, 200):
   * three lost heartbeats in a row before anyone reacts, and a spread that keeps the
   * followers from all starting elections in the same tick (priorities already break
   * ties, the spread only saves messages). min must be at least 2 × heartbeatMs.
   */
  failureTimeoutMinMs: number;
  failureTimeoutMaxMs: number;
  /**
   * How long a candidate waits for an Answer from a higher-priority member before it
   * declares itself coordinator, ms. Default 50: a round trip on an MQTT LAN is a few
   * ms, a 40-byte frame at 115200 baud about 4 ms each way; raise it on slow or
   * multi-hop links. Too short and a lower node announces itself before the higher
   * node's Answer arrives (it is then bullied away at once, at the cost of one extra
   * epoch and a short dual announcement).
   */
  answerTimeoutMs: number;
  /**
   * After an Answer, how long a candidate waits for the higher node's Coordinator
   * announcement before it starts a new election, ms. Default 150: the higher node
   * runs its own election (one answerTimeoutMs) and announces, with margin for a
   * lost message. Must exceed answerTimeoutMs.
   */
  coordinatorWaitMs: number;
  /**
   * Preemption. Default true: a higher-priority board that comes back (or hears a
   * lower-priority coordinator) runs an election and takes over, as in the classic
   * algorithm. false = keepalived's `nopreempt`: a returning higher-priority board
   * follows a live coordinator and only takes over once that coordinator fails, which
   * avoids a second failover (and a second round of hooks) when a flapping board
   * returns. With false, after a partition heals the coordinator with the higher
   * epoch (the more recent one) stays.
   */
  preempt: boolean;
}

export const DEFAULT_BULLY_OPTIONS: Readonly<BullyOptions> = Object.freeze({
  tickMs: 10,
  heartbeatMs: 50,
  failureTimeoutMinMs: 150,
  failureTimeoutMaxMs: 200,
  answerTimeoutMs: 50,
  coordinatorWaitMs: 150,
  preempt: true,
});

export interface BullyTicks {
  heartbeat: number;
  failureMin: number;
  failureMax: number;
  answer: number;
  coordinatorWait: number;
}

/** Validates options (every problem named) and converts durations to ticks. */
export function resolveBullyOptions(partial: Partial<BullyOptions> | undefined): { opts: BullyOptions; ticks: BullyTicks } {
  if (partial !== undefined && (typeof partial !== 'object' || partial === null || Array.isArray(partial))) {
    throw new TypeError(`bully options: expected an object, got ${partial === null ? 'null' : Array.isArray(partial) ? 'an array' : typeof partial}`);
  }
  const known = Object.keys(DEFAULT_BULLY_OPTIONS);
  for (const k of Object.keys(partial ?? {})) {
    if (!known.includes(k)) throw new TypeError(`bully options: unknown option "${k}" (known: ${known.join(', ')})`);
  }
  const o: BullyOptions = { ...DEFAULT_BULLY_OPTIONS, ...(partial ?? {}) };
  for (const k of ['tickMs', 'heartbeatMs', 'failureTimeoutMinMs', 'failureTimeoutMaxMs', 'answerTimeoutMs', 'coordinatorWaitMs'] as const) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 3_600_000) {
      throw new RangeError(`bully options: ${k} must be an integer number of milliseconds 1..3600000, got ${String(v)}`);
    }
  }
  if (typeof o.preempt !== 'boolean') throw new TypeError(`bully options: preempt must be a boolean, got ${String(o.preempt)}`);
  const t = (ms: number) => Math.max(1, Math.ceil(ms / o.tickMs));
  const ticks: BullyTicks = {
    heartbeat: t(o.heartbeatMs),
    failureMin: t(o.failureTimeoutMinMs),
    failureMax: t(o.failureTimeoutMaxMs),
    answer: t(o.answerTimeoutMs),
    coordinatorWait: t(o.coordinatorWaitMs),
  };
  if (ticks.failureMax <= ticks.failureMin) {
    throw new RangeError(`bully options: failureTimeoutMaxMs (${o.failureTimeoutMaxMs}) must exceed failureTimeoutMinMs (${o.failureTimeoutMinMs}) by at least one tick (${o.tickMs} ms)`);
  }
  if (ticks.heartbeat * 2 > ticks.failureMin) {
    throw new RangeError(`bully options: heartbeatMs (${o.heartbeatMs}) must be at most half of failureTimeoutMinMs (${o.failureTimeoutMinMs}) so that one lost announcement does not start an election`);
  }
  if (ticks.coordinatorWait <= ticks.answer) {
    throw new RangeError(`bully options: coordinatorWaitMs (${o.coordinatorWaitMs}) must exceed answerTimeoutMs (${o.answerTimeoutMs}): the answering node needs one answer timeout of its own before it announces`);
  }
  return { opts: o, ticks };
}

// ---------------------------------------------------------------------------
// Members and priorities

/**
 * A member as given to the engine: a bare node id, or `{id, priority}`.
 *
 * Priority: a higher number wins. Default: the member's 1-based position in the list,
 * so with `[1, 2, 3]` node 3 has priority 3 and is the preferred coordinator — the
 * classic bully order (highest wins) when members are listed by id. Priority 0 means
 * "never coordinates" (a witness-like member that follows and can wake others up).
 * Priorities of members that can coordinate must be distinct: the bully order must be
 * total. Every node must be given the same list (the engine drops messages whose
 * priority disagrees with its own view of the sender and counts them).
 */
export type BullyMember = NodeId | { id: NodeId; priority?: number };

export interface MemberPriority {
  id: NodeId;
  priority: number;
}

/** Largest priority: the codec carries any uint, but 32 bits keep frames small and comparisons exact. */
export const MAX_PRIORITY = 0xffffffff;

export function resolveMembers(members: unknown, self: NodeId): MemberPriority[] {
  const what = 'bully members';
  if (!Array.isArray(members)) throw new TypeError(`${what}: expected an array of node ids or {id, priority}, got ${members === null ? 'null' : typeof members}`);
  if (members.length === 0) throw new RangeError(`${what}: expected at least one member`);
  if (members.length > MAX_NODE_ID) throw new RangeError(`${what}: expected at most ${MAX_NODE_ID} members, got ${members.length}`);
  const out: MemberPriority[] = [];
  const ids = new Set<number>();
  const byPriority = new Map<number, NodeId>();
  members.forEach((m: unknown, i: number) => {
    let id: unknown;
    let priority: unknown = i + 1;
    if (typeof m === 'number') id = m;
    else if (typeof m === 'object' && m !== null && !Array.isArray(m)) {
      const r = m as Record<string, unknown>;
      for (const k of Object.keys(r)) {
        if (k !== 'id' && k !== 'priority') throw new TypeError(`${what}[${i}]: unknown key "${k}" (expected id, priority)`);
      }
      id = r.id;
      if (r.priority !== undefined) priority = r.priority;
    } else {
      throw new TypeError(`${what}[${i}]: expected a node id or {id, priority}, got ${m === null ? 'null' : typeof m}`);
    }
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) {
      throw new RangeError(`${what}[${i}].id: expected a node id 1..${MAX_NODE_ID}, got ${String(id)}`);
    }
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
      throw new RangeError(`${what}[${i}].priority: expected an integer 0..${MAX_PRIORITY} (0 = never coordinates), got ${String(priority)}`);
    }
    if (ids.has(id)) throw new RangeError(`${what}: node ${id} appears more than once`);
    ids.add(id);
    if (priority > 0) {
      const other = byPriority.get(priority);
      if (other !== undefined) throw new RangeError(`${what}: nodes ${other} and ${id} both have priority ${priority}; priorities of members that can coordinate must be distinct`);
      byPriority.set(priority, id);
    }
    out.push({ id, priority });
  });
  if (!ids.has(self)) throw new RangeError(`${what}: this node (${self}) is not in the list (${[...ids].join(', ')})`);
  return out;
}

// ---------------------------------------------------------------------------
// Epochs and fencing tokens

/**
 * Largest epoch: fencingToken(MAX_EPOCH, 254) stays a safe integer. At one election
 * per second that is a million years.
 */
export const MAX_EPOCH: Term = Math.floor(Number.MAX_SAFE_INTEGER / 256) - 1;

/**
 * The fencing token of a coordinatorship: epoch × 256 + coordinator id.
 *
 * A new coordinator picks epoch = max(seen) + 1, so its token exceeds every token it
 * could know of. Two boards in different partition components can both pick the same
 * max + 1; the id in the low byte keeps their tokens distinct, so an outside resource
 * that accepts only tokens above the highest it has seen is driven by at most one of
 * them (Kleppmann, "How to do distributed locking", 2016: a fencing token must be
 * unique and increase).
 */
export function fencingToken(epoch: Term, coordinator: NodeId): number {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) throw new RangeError(`fencingToken: epoch must be an integer 0..${MAX_EPOCH}, got ${String(epoch)}`);
  if (!Number.isInteger(coordinator) || coordinator < 0 || coordinator > MAX_NODE_ID) throw new RangeError(`fencingToken: coordinator must be a node id 0..${MAX_NODE_ID}, got ${String(coordinator)}`);
  return epoch * 256 + coordinator;
}
