/**
 * Multi-Paxos engine options (with their defaults and why) and message size budgets.
 * Durations are in milliseconds of monotonic time and are converted to whole ticks.
 */
export interface PaxosOptions {
  /** Milliseconds per tick() (the runtime's tick period). Default 10, as Raft. */
  tickMs: number;
  /**
   * A follower that hears no leader for a random time in [min, max) ms campaigns
   * (phase 1 with a new ballot). Default [150, 300), Raft's range: well above one
   * heartbeat round on MQTT, and the spread keeps two candidates from dueling; a
   * candidate whose phase 1 did not finish retries after a fresh random timeout.
   */
  electionTimeoutMinMs: number;
  electionTimeoutMaxMs: number;
  /** Leader heartbeat interval, ms. Default 50: a third of the minimum election timeout. */
  heartbeatMs: number;
  /**
   * Pre-prepare (the Paxos form of Raft's pre-vote, thesis §9.6). Default on: a
   * candidate first asks whether a quorum would promise its next ballot — nobody
   * changes state — and only then runs phase 1. A node cut off by a partition keeps
   * failing the probe instead of raising ballots, so when it returns its promise is
   * not above the live leader's and it does not force a new election.
   */
  prePrepare: boolean;
  /**
   * Check-quorum. Default on: a leader that heard from no quorum within a minimum
   * election timeout steps down, so a cut-off leader stops and clients get a
   * definite 503 rather than waiting on it.
   */
  checkQuorum: boolean;
  /** Accept messages in flight per follower while it keeps up. Default 8, as Raft. */
  maxInflight: number;
  /**
   * Frame budget for one message, bytes (`Link.maxFrame`): 1 KiB on serial, 64 KiB on
   * MQTT. Default 65536. Accepts and promise pages are filled up to this budget; a
   * single proposal larger than one slot's share is refused.
   */
  maxMsgBytes: number;
  /** Most slots in one Accept or Promise page. Default 64: bounds decode work per frame. */
  maxEntriesPerMsg: number;
  /** Snapshot bytes per chunk; default 0 = derive from maxMsgBytes. */
  snapshotChunkBytes: number;
  /**
   * Every leader heartbeat carries a round number (`ctx`) that followers echo, not
   * only the rounds that confirm reads. Default off. The runtime's activation lease
   * (daemon/runtime/activation.ts: "a heartbeat round acknowledged by a quorum in this
   * ballot") counts these rounds, so fencing turns it on. Reads stay as they are: a
   * read waits for a round sent after it arrived, whichever asked for that round.
   */
  heartbeatRounds: boolean;
  /**
   * TESTING ONLY — a deliberately broken engine, so that the tests can show the
   * invariants catch it. 'skip-reproposal': a new leader ignores the values its
   * quorum reported in phase 1 and fills every slot it does not hold itself with a
   * no-op, instead of proposing the reported value again. Never set outside tests.
   */
  plantedBug: 'none' | 'skip-reproposal';
}

export const DEFAULT_PAXOS_OPTIONS: Readonly<PaxosOptions> = Object.freeze({
  tickMs: 10,
  electionTimeoutMinMs: 150,
  electionTimeoutMaxMs: 300,
  heartbeatMs: 50,
  prePrepare: true,
  checkQuorum: true,
  maxInflight: 8,
  maxMsgBytes: 65536,
  maxEntriesPerMsg: 64,
  snapshotChunkBytes: 0,
  heartbeatRounds: false,
  plantedBug: 'none',
});

/**
 * Conservative bytes an Accept or Promise needs besides its slots' data: the envelope
 * (≤ 40 B of CBOR), up to six integer fields (≤ 54 B), array heads and the 16-byte tag.
 */
export const PAXOS_MSG_OVERHEAD_BYTES = 128;
/** Conservative bytes per slot besides its data: [ballot, origin, type, bstr head] with 9-byte integers. */
export const PAXOS_SLOT_OVERHEAD_BYTES = 32;
/** Bytes a snapshot chunk needs besides its data (envelope, fields, a membership of up to 32 nodes, tag). */
export const PAXOS_SNAPSHOT_OVERHEAD_BYTES = 192;

export interface PaxosTicks {
  electionMin: number;
  electionMax: number;
  heartbeat: number;
  chunkBytes: number;
  maxEntryBytes: number;
}

/** Validates options (every problem named) and converts durations to ticks. */
export function resolvePaxosOptions(partial: Partial<PaxosOptions> | undefined): { opts: PaxosOptions; ticks: PaxosTicks } {
  if (partial !== undefined && (typeof partial !== 'object' || partial === null)) {
    throw new TypeError(`paxos options: expected an object, got ${typeof partial}`);
  }
  const known = new Set(Object.keys(DEFAULT_PAXOS_OPTIONS));
  for (const k of Object.keys(partial ?? {})) {
    if (!known.has(k)) throw new TypeError(`paxos options: unknown option "${k}" (known: ${[...known].join(', ')})`);
  }
  const o: PaxosOptions = { ...DEFAULT_PAXOS_OPTIONS, ...(partial ?? {}) };
  const posInt = (name: keyof PaxosOptions, min = 1) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`paxos options: ${name} must be an integer >= ${min}, got ${String(v)}`);
  };
  const bool = (name: keyof PaxosOptions) => {
    if (typeof o[name] !== 'boolean') throw new TypeError(`paxos options: ${name} must be a boolean, got ${String(o[name])}`);
  };
  posInt('tickMs');
  posInt('electionTimeoutMinMs');
  posInt('electionTimeoutMaxMs');
  posInt('heartbeatMs');
  posInt('maxInflight');
  posInt('maxMsgBytes', 512);
  posInt('maxEntriesPerMsg');
  posInt('snapshotChunkBytes', 0);
  bool('prePrepare');
  bool('checkQuorum');
  bool('heartbeatRounds');
  if (o.plantedBug !== 'none' && o.plantedBug !== 'skip-reproposal') {
    throw new RangeError(`paxos options: plantedBug must be 'none' or 'skip-reproposal' (testing only), got ${String(o.plantedBug)}`);
  }
  const electionMin = Math.ceil(o.electionTimeoutMinMs / o.tickMs);
  const electionMax = Math.ceil(o.electionTimeoutMaxMs / o.tickMs);
  const heartbeat = Math.max(1, Math.round(o.heartbeatMs / o.tickMs));
  if (electionMax <= electionMin) {
    throw new RangeError(`paxos options: electionTimeoutMaxMs (${o.electionTimeoutMaxMs}) must exceed electionTimeoutMinMs (${o.electionTimeoutMinMs}) by at least one tick (${o.tickMs} ms)`);
  }
  if (heartbeat >= electionMin) throw new RangeError(`paxos options: heartbeatMs (${o.heartbeatMs}) must be below electionTimeoutMinMs (${o.electionTimeoutMinMs})`);
  const chunkBytes = o.snapshotChunkBytes > 0 ? o.snapshotChunkBytes : o.maxMsgBytes - PAXOS_SNAPSHOT_OVERHEAD_BYTES;
  if (chunkBytes + PAXOS_SNAPSHOT_OVERHEAD_BYTES > o.maxMsgBytes) {
    throw new RangeError(`paxos options: snapshotChunkBytes (${chunkBytes}) + ${PAXOS_SNAPSHOT_OVERHEAD_BYTES} overhead exceeds maxMsgBytes (${o.maxMsgBytes})`);
  }
  const maxEntryBytes = o.maxMsgBytes - PAXOS_MSG_OVERHEAD_BYTES - PAXOS_SLOT_OVERHEAD_BYTES;
  return { opts: o, ticks: { electionMin, electionMax, heartbeat, chunkBytes, maxEntryBytes } };
}
