/**
 * ZAB engine options, their defaults and why, and their conversion to ticks.
 *
 * ZooKeeper counts its timeouts in `tickTime` units (default 2 s): `initLimit` ticks
 * for a follower to connect and synchronize, `syncLimit` ticks for it to answer.
 * Those defaults are for servers in a data centre with gigabytes of state; here the
 * boards sit on a LAN broker with small state, and failover should be comparable to
 * the Raft engine's (election timeout 150–300 ms). The durations below are in ms and
 * are converted to whole engine ticks (`tickMs`).
 */
import { MSG_OVERHEAD_BYTES, ENTRY_OVERHEAD_BYTES, SNAPSHOT_OVERHEAD_BYTES } from '../raft/config.ts';

export interface ZabOptions {
  /** Milliseconds of monotonic time per `tick()`. Default 10, as for Raft. */
  tickMs: number;
  /**
   * Leader PING period, ms; also how often a follower re-sends an unanswered discovery
   * message and the leader re-sends unacknowledged synchronization or proposals.
   * Default 50: a third of syncLimit, so two lost pings in a row do not end a leadership.
   */
  heartbeatMs: number;
  /**
   * ZooKeeper's syncLimit, ms. A follower that hears nothing from its established
   * leader for this long goes back to leader election; a leader that has not heard
   * from a quorum of synchronized followers within it gives up its leadership.
   * Default 150: the Raft engine's minimum election timeout — failure detection costs
   * the same in both engines (with the link's Last Will, `leaderGone`, it is immediate).
   */
  syncLimitMs: number;
  /**
   * ZooKeeper's initLimit, ms: from the end of leader election to an established
   * leader (discovery and synchronization). A prospective leader that does not get a
   * quorum synchronized in time, or a follower not synchronized in time, goes back to
   * election. Default 1000: many round trips on MQTT; raise it on serial links or with
   * large snapshots (a snapshot travels during synchronization).
   */
  initLimitMs: number;
  /**
   * How long a LOOKING node waits before re-sending its vote when nothing changed,
   * ms; doubled at every re-send up to `electionResendMaxMs` (ZooKeeper's notTimeout
   * backoff). Default 50 / 400: votes lost on the link are re-sent quickly, and a node
   * cut off from everyone sends a few messages a second, not a stream.
   */
  electionResendMs: number;
  electionResendMaxMs: number;
  /**
   * ZooKeeper's finalizeWait, ms: once a quorum agrees with a LOOKING node's vote, it
   * waits this long for a better vote still in flight before concluding. Default 30:
   * a few broker latencies. Too short costs a failed discovery (a better-placed node
   * turns up and the new leader steps back); never safety.
   */
  finalizeWaitMs: number;
  /** Proposal messages in flight per follower before acknowledgements. Default 8, as for Raft. */
  maxInflight: number;
  /**
   * Frame budget for one message, bytes, as given by the link (1 KiB serial, 64 KiB
   * MQTT). Default 65536. Proposals are filled up to it; a larger command is refused.
   */
  maxMsgBytes: number;
  /** Maximum transactions per Proposal message. Default 64. */
  maxEntriesPerMsg: number;
  /** Snapshot bytes per ZabSnap chunk; 0 = derived from maxMsgBytes. */
  snapshotChunkBytes: number;
  /**
   * Every PING of the broadcast phase carries a round number (`ctx`) that followers
   * echo in their PONG, not only the rounds that confirm reads. Default off. The
   * runtime's activation lease (daemon/runtime/activation.ts: "a heartbeat round
   * acknowledged by a quorum in this epoch") counts these rounds, so fencing turns it
   * on. Reads stay as they are: a read waits for a round sent after it arrived.
   */
  heartbeatRounds: boolean;
  /**
   * TESTING ONLY — a planted bug. The prospective leader treats itself as established
   * as soon as its own history is durable, without waiting for a quorum of followers to
   * acknowledge NEWLEADER: it delivers its initial history and starts broadcasting
   * alone. The invariants must catch it (test/src/zab/planted.test.ts). Never set it.
   */
  testingBroadcastBeforeQuorumSync: boolean;
  /**
   * TESTING ONLY — a planted bug. Transactions a Ready asks to persist are handed out
   * one Ready late, while the acknowledgements that depend on them go out at once: a
   * follower ACKs before its transaction log is durable, and a crash between the two
   * Readys loses an acknowledged transaction. The invariants must catch it. Never set it.
   */
  testingAckBeforeDurable: boolean;
  /**
   * TESTING ONLY — a planted bug. The leader counts the observers' (learners')
   * acknowledgements toward the commit quorum, as if they voted: it can commit a
   * transaction that only a minority of voters holds. The simulator's member checks
   * must catch it (daemon/sim/member-checks.ts, commit-quorum). Never set it.
   */
  testingCountObservers: boolean;
}

export const DEFAULT_ZAB_OPTIONS: Readonly<ZabOptions> = Object.freeze({
  tickMs: 10,
  heartbeatMs: 50,
  syncLimitMs: 150,
  initLimitMs: 1000,
  electionResendMs: 50,
  electionResendMaxMs: 400,
  finalizeWaitMs: 30,
  maxInflight: 8,
  maxMsgBytes: 65536,
  maxEntriesPerMsg: 64,
  snapshotChunkBytes: 0,
  heartbeatRounds: false,
  testingBroadcastBeforeQuorumSync: false,
  testingAckBeforeDurable: false,
  testingCountObservers: false,
});

/** The options in engine ticks. */
export interface ZabTicks {
  heartbeat: number;
  syncLimit: number;
  initLimit: number;
  resendMin: number;
  resendMax: number;
  finalizeWait: number;
  chunkBytes: number;
  maxEntryBytes: number;
}

/** Validates options (every problem named) and converts durations to ticks. */
export function resolveZabOptions(partial: Partial<ZabOptions> | undefined): { opts: ZabOptions; ticks: ZabTicks } {
  if (partial !== undefined && (typeof partial !== 'object' || partial === null)) {
    throw new TypeError(`zab options: expected an object, got ${typeof partial}`);
  }
  const known = new Set(Object.keys(DEFAULT_ZAB_OPTIONS));
  for (const k of Object.keys(partial ?? {})) {
    if (!known.has(k)) throw new TypeError(`zab options: unknown option "${k}" (known: ${[...known].join(', ')})`);
  }
  const o: ZabOptions = { ...DEFAULT_ZAB_OPTIONS, ...(partial ?? {}) };
  const int = (name: keyof ZabOptions, min: number) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`zab options: ${name} must be an integer >= ${min}, got ${String(v)}`);
  };
  const bool = (name: keyof ZabOptions) => {
    if (typeof o[name] !== 'boolean') throw new TypeError(`zab options: ${name} must be a boolean, got ${String(o[name])}`);
  };
  int('tickMs', 1);
  int('heartbeatMs', 1);
  int('syncLimitMs', 1);
  int('initLimitMs', 1);
  int('electionResendMs', 1);
  int('electionResendMaxMs', 1);
  int('finalizeWaitMs', 0);
  int('maxInflight', 1);
  int('maxMsgBytes', 256);
  int('maxEntriesPerMsg', 1);
  int('snapshotChunkBytes', 0);
  bool('heartbeatRounds');
  bool('testingBroadcastBeforeQuorumSync');
  bool('testingAckBeforeDurable');
  bool('testingCountObservers');
  const toTicks = (ms: number) => Math.max(1, Math.ceil(ms / o.tickMs));
  const heartbeat = Math.max(1, Math.round(o.heartbeatMs / o.tickMs));
  const syncLimit = toTicks(o.syncLimitMs);
  const initLimit = toTicks(o.initLimitMs);
  if (heartbeat >= syncLimit) {
    throw new RangeError(`zab options: heartbeatMs (${o.heartbeatMs}) must be below syncLimitMs (${o.syncLimitMs}): a follower would give up between two pings`);
  }
  if (initLimit < syncLimit) {
    throw new RangeError(`zab options: initLimitMs (${o.initLimitMs}) must be at least syncLimitMs (${o.syncLimitMs}): synchronization takes several round trips`);
  }
  if (o.electionResendMaxMs < o.electionResendMs) {
    throw new RangeError(`zab options: electionResendMaxMs (${o.electionResendMaxMs}) must be at least electionResendMs (${o.electionResendMs})`);
  }
  const chunkBytes = o.snapshotChunkBytes > 0 ? o.snapshotChunkBytes : o.maxMsgBytes - SNAPSHOT_OVERHEAD_BYTES;
  if (chunkBytes < 1 || chunkBytes + SNAPSHOT_OVERHEAD_BYTES > o.maxMsgBytes) {
    throw new RangeError(`zab options: snapshotChunkBytes (${chunkBytes}) + ${SNAPSHOT_OVERHEAD_BYTES} overhead exceeds maxMsgBytes (${o.maxMsgBytes})`);
  }
  return {
    opts: o,
    ticks: {
      heartbeat,
      syncLimit,
      initLimit,
      resendMin: toTicks(o.electionResendMs),
      resendMax: toTicks(o.electionResendMaxMs),
      finalizeWait: o.finalizeWaitMs === 0 ? 0 : toTicks(o.finalizeWaitMs),
      chunkBytes,
      maxEntryBytes: o.maxMsgBytes - MSG_OVERHEAD_BYTES - ENTRY_OVERHEAD_BYTES,
    },
  };
}

/** Epochs are 32-bit, as ZooKeeper's (the high half of a zxid) and as HardState.vote allows. */
export const MAX_EPOCH = 0xffffffff;
