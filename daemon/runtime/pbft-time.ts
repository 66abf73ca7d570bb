/**
 * Engine pbft: the agreed lock time (src/pbft/agreed-time.ts explains the design and
 * what a liar can do) wired into one node's runtime, kept out of engine-node.ts.
 *
 *   - executes clock reports (the request's origin is the reporter) and keeps the
 *     replicated AgreedClock, which travels in PBFT snapshots (pbft-clients.ts);
 *   - stamps every executed lock.acquire / lock.renew with `now = T` (the proposer's
 *     `now` is ignored: a pbft client writes 0 there);
 *   - after each batch of executions, tells the local time line whether the state holds
 *     a live lock (the line runs only then);
 *   - says when this node's next report is due (every REPORT_MS while the line runs).
 */
import { AgreedClock, decodeTimeReport, encodeTimeReport, LocalTimeLine } from '../../src/pbft/agreed-time.ts';
import { decodeCommand, encodeCommand, KvError, OpCode, type KvStateMachine } from '../../src/kv/index.ts';
import { readCbor } from '../../src/kv/cbor.ts';
import type { NodeId } from '../../src/types.ts';

/** Report period P while a lock is live. */
export const PBFT_TIME_REPORT_MS = 1000;
/** Cap C: a report is at most this far above the agreed time its reporter saw (2P: room for one lost report). */
export const PBFT_TIME_CAP_MS = 2000;

export interface PbftTimeOptions {
  reportMs?: number;
  capMs?: number;
  /** Tests only (EngineRuntimeOptions.plantedLockClock 'own-clock-report'): report the board's own monotonic clock. */
  plantedOwnClock?: boolean;
}

export class PbftTime {
  clock: AgreedClock;
  readonly line: LocalTimeLine;
  readonly reportMs: number;
  private readonly plantedOwnClock: boolean;
  private lastReportAt = -Infinity;
  private inFlight = false;
  /** Reports executed (any origin) and refused (not a member, bad bytes): status and tests. */
  executedReports = 0;
  badReports = 0;

  constructor(
    private readonly members: readonly NodeId[],
    private readonly f: number,
    o: PbftTimeOptions = {},
  ) {
    this.clock = new AgreedClock(members, f);
    this.reportMs = o.reportMs ?? PBFT_TIME_REPORT_MS;
    this.plantedOwnClock = o.plantedOwnClock === true;
    this.line = new LocalTimeLine(o.capMs ?? PBFT_TIME_CAP_MS);
  }

  get nowMs(): number {
    return this.clock.nowMs;
  }

  /** Executes the clock report `data` of `origin` (undefined: the origin is not known here; nothing changes). */
  applyReport(origin: NodeId | undefined, data: Uint8Array): void {
    const ms = decodeTimeReport(data);
    if (typeof ms === 'string' || origin === undefined) {
      this.badReports++;
      return;
    }
    this.executedReports++;
    this.clock.report(origin, ms);
  }

  /** A lock.acquire / lock.renew command with `now` replaced by the agreed time; other bytes as they are. */
  stamp(data: Uint8Array): Uint8Array {
    // [3|4|14, ...]: an array head (0x80..0x97), then the op code as a one-byte uint.
    const op = data.length > 1 ? data[1] : -1;
    if (op !== OpCode.LockAcquire && op !== OpCode.LockRenew && op !== OpCode.LockRenewLease) return data;
    const cmd = decodeCommand(data);
    if (cmd instanceof KvError || (cmd.op !== 'lock.acquire' && cmd.op !== 'lock.renew')) return data;
    const out = encodeCommand({ ...cmd, now: this.clock.nowMs });
    return out instanceof KvError ? data : out;
  }

  /** After executing a batch (or restoring a snapshot): the time line runs while a lock is live at T. */
  afterApply(kv: KvStateMachine, mono: number): void {
    const t = this.clock.nowMs;
    this.line.observe(t, kv.lockList(t).length > 0, mono);
  }

  /** The report to propose now, or undefined (the line is paused, not due, or one is still in flight). */
  due(mono: number): Uint8Array | undefined {
    if (!this.line.isRunning || this.inFlight || mono - this.lastReportAt < this.reportMs) return undefined;
    const v = this.plantedOwnClock ? Math.floor(mono) : this.line.reportValue(mono);
    if (v <= this.clock.nowMs) return undefined;
    this.lastReportAt = mono;
    this.inFlight = true;
    return encodeTimeReport(v);
  }

  /** The proposed report settled (executed, refused or timed out): the next may go. */
  settled(): void {
    this.inFlight = false;
  }

  /** The replicated part for a snapshot (undefined while no member reported). */
  encode(): Uint8Array | undefined {
    return this.clock.encode();
  }

  /** The replicated part from a snapshot (encode()'s bytes; undefined: none recorded), or a string naming what is wrong. */
  restore(bytes: Uint8Array | undefined): string | undefined {
    if (bytes === undefined) {
      this.clock = new AgreedClock(this.members, this.f);
      return undefined;
    }
    const r = readCbor(bytes);
    if (!r.ok) return `agreed clock: not valid CBOR: ${r.error}`;
    const c = AgreedClock.decode(r.value, this.members, this.f);
    if (typeof c === 'string') return c;
    this.clock = c;
    return undefined;
  }
}
