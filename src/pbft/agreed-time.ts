/**
 * Agreed time for locks under PBFT: a lock's lease is judged against a time that the
 * replicas agree on, which no single liar can set.
 *
 * ## The problem
 * A lock command carries `now`, and the state machine judges expiry against it
 * (src/kv/state-machine.ts). Under Raft the leader stamps `now`: the leader is trusted.
 * Under PBFT neither the primary (it only orders) nor the origin (the replica whose
 * client asked) is: either could stamp a time in the future and so expire every other
 * holder's lease at once, or a time in the past and so keep its own lease for ever.
 * And the state must stay deterministic: every honest replica has the same state after
 * the same sequence number, so nothing may read a replica's own clock at execution.
 *
 * ## The design: clock reports, the (f + 1)-th largest
 * The paper's treatment of non-determinism (Castro & Liskov, OSDI 1999, §4.6; TOCS 2002
 * §5.4) lets the primary propose a value that backups check, or collect values from the
 * replicas and choose among them deterministically. Here the values are ordered like
 * any request, so no message of the protocol changes:
 *   - each replica, while its state holds a live lock, proposes a *clock report* every
 *     report period: a request [PBFT_TIME_OP, ms] signed by itself as origin (the
 *     request signature says who reported; nobody can report for another);
 *   - the replicated state keeps each member's largest report, and the agreed time
 *     T = max(T, the (f + 1)-th largest of the members' reports) (a member that never
 *     reported counts as 0). T never goes back;
 *   - a lock command is executed at `now = T`: the `now` its proposer wrote is ignored
 *     (a client of pbft writes 0 there, so it can compute the request's bytes itself).
 * T is a function of the executed sequence only: honest replicas stay deterministic.
 *
 * ## Each replica's clock (LocalTimeLine)
 * Boards have no common clock (monotonic clocks start at boot; wall clocks jump at NTP
 * sync), so a replica does not report its own clock: it reports its estimate of the
 * agreed time, `T it last saw + local monotonic time elapsed since`. That time line runs
 * only while the replica's state holds a live lock (expiresAt > T): with no lock to
 * time, the agreed time pauses, and the first acquire after a quiet hour is judged at
 * the T the cluster paused at, not at an hour-stale T. A report is also capped at
 * `T last seen + cap`, and an estimate that ran more than `cap` ahead of the T it sees
 * is pulled back: one fast clock cannot drag T ahead step by step.
 *
 * ## What a liar can do (f faulty replicas among n ≥ 3f + 1), with `cap` = C and report
 *    period P
 *   - Move T forward: the (f + 1)-th largest report is at most the largest honest
 *     report (at most f reports above it are lies), and an honest report is at most C
 *     above the T that replica saw. With the liars' help T can run at the fastest
 *     honest clock's rate and jump to the fastest honest estimate: a lease ends at most
 *     C (plus the honest clocks' rate difference over the lease, ~1e-4 × TTL for crystal
 *     oscillators) earlier than the honest time line would end it. Without that help T
 *     is the (f + 1)-th largest honest estimate.
 *   - Hold T back: T is at least the (f + 1)-th largest honest report; 2f + 1 honest
 *     replicas report every P. A faulty primary may delay honest reports (it orders),
 *     but an honest replica whose request does not execute within the view-change
 *     timeout D starts a view change. So a lease ends at most P + D later than it
 *     would with honest replicas only, plus P + D − C when D > C − P (honest estimates
 *     that ran more than C ahead of the held-back T are pulled back to T + C). A liar
 *     that reports nothing, or a time in the past, changes nothing (its report is one
 *     of the f smallest). test/src/pbft/agreed-time.test.ts measures these bounds in a
 *     model of four replicas with drifting clocks.
 *   - The proposer's `now` is not used at all, and the grant's token (its sequence
 *     number) and the lease digest are as under Raft.
 *   - Honest replicas also lag: T trails the honest time lines by about one report
 *     period plus one normal-case round. A constant lag cancels (the grant and its
 *     expiry are both measured on T); a holder should renew at least P + C before its
 *     TTL runs out.
 *
 * Pure: no clock is read here; the runtime passes monotonic time in
 * (daemon/runtime/pbft-time.ts drives this).
 */
import { CborWriter, readCbor, type Cbor } from '../kv/cbor.ts';
import { MAX_NOW_MS } from '../kv/commands.ts';
import type { NodeId } from '../types.ts';

/** First element of a clock report: outside the KV op codes and the pbft client envelope (200). */
export const PBFT_TIME_OP = 201;

/** A clock report's request bytes: CBOR [201, ms]. */
export function encodeTimeReport(ms: number): Uint8Array {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_NOW_MS) throw new RangeError(`clock report: ms must be an integer in [0, ${MAX_NOW_MS}], got ${String(ms)}`);
  return new CborWriter(16).array(2).uint(PBFT_TIME_OP).uint(ms).finish();
}

/** Whether request bytes are a clock report (cheap: the first three bytes). */
export function isTimeReport(data: Uint8Array): boolean {
  // 0x82 = array of 2; 0x18 0xc9 = uint 201 (one-byte follow-up).
  return data.length >= 4 && data[0] === 0x82 && data[1] === 0x18 && data[2] === PBFT_TIME_OP;
}

/** The reported time of a clock report, or a string naming what is wrong. Never throws. */
export function decodeTimeReport(data: Uint8Array): number | string {
  if (data.length > 16) return `clock report: ${data.length} bytes, at most 16 expected`;
  const r = readCbor(data);
  if (!r.ok) return `clock report: not valid CBOR: ${r.error}`;
  const a = r.value;
  if (!Array.isArray(a) || a.length !== 2 || a[0] !== PBFT_TIME_OP) return 'clock report: expected [201, ms]';
  const ms = a[1];
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0 || ms > MAX_NOW_MS) return `clock report: ms must be an integer in [0, ${MAX_NOW_MS}]`;
  return ms;
}

/**
 * The replicated part: every member's largest report and the agreed time T. Equal
 * sequences of report() give equal state and equal encode() bytes.
 */
export class AgreedClock {
  private readonly reports = new Map<NodeId, number>();
  private t = 0;
  private readonly members: readonly NodeId[];

  constructor(
    members: readonly NodeId[],
    /** Faulty replicas tolerated: T is the (f + 1)-th largest report. */
    readonly f: number,
  ) {
    if (!Number.isInteger(f) || f < 0 || members.length < f + 1) throw new RangeError(`AgreedClock: f must be an integer 0..${members.length - 1}, got ${String(f)}`);
    this.members = [...members].sort((a, b) => a - b);
  }

  /** The agreed time T (0 until f + 1 members reported). */
  get nowMs(): number {
    return this.t;
  }

  /** No member reported yet (the state then encodes to nothing). */
  get empty(): boolean {
    return this.reports.size === 0;
  }

  /** The largest report of `node` (0 if none). */
  reportOf(node: NodeId): number {
    return this.reports.get(node) ?? 0;
  }

  /**
   * Executes a clock report of `origin` (the request's signed origin). A report of a
   * non-member or an invalid time changes nothing (false). Returns whether T moved.
   */
  report(origin: NodeId, ms: number): boolean {
    if (!this.members.includes(origin) || !Number.isSafeInteger(ms) || ms < 0 || ms > MAX_NOW_MS) return false;
    if (ms <= (this.reports.get(origin) ?? 0)) return false;
    this.reports.set(origin, ms);
    const k = this.kth();
    if (k <= this.t) return false;
    this.t = k;
    return true;
  }

  /** The (f + 1)-th largest report over the members (0 for a member without one). */
  private kth(): number {
    const xs = this.members.map((m) => this.reports.get(m) ?? 0).sort((a, b) => b - a);
    return xs[this.f] ?? 0;
  }

  /** CBOR [T, [[node, ms], ...] by node], or undefined when empty. */
  encode(): Uint8Array | undefined {
    if (this.reports.size === 0) return undefined;
    const w = new CborWriter(16 + 12 * this.reports.size);
    const nodes = [...this.reports.keys()].sort((a, b) => a - b);
    w.array(2).uint(this.t).array(nodes.length);
    for (const n of nodes) w.array(2).uint(n).uint(this.reports.get(n)!);
    return w.finish();
  }

  /** The state from encode()'s value (already parsed CBOR), or a string naming what is wrong. */
  static decode(v: Cbor, members: readonly NodeId[], f: number): AgreedClock | string {
    const c = new AgreedClock(members, f);
    if (!Array.isArray(v) || v.length !== 2 || !Array.isArray(v[1])) return 'agreed clock: expected [T, [[node, ms], ...]]';
    const [t, rows] = v as [Cbor, Cbor[]];
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0 || t > MAX_NOW_MS) return 'agreed clock: T must be an integer ≥ 0';
    if (rows.length > members.length) return `agreed clock: ${rows.length} reports for ${members.length} members`;
    for (const row of rows) {
      if (!Array.isArray(row) || row.length !== 2) return 'agreed clock: a report is [node, ms]';
      const [n, ms] = row as [Cbor, Cbor];
      if (typeof n !== 'number' || !members.includes(n) || c.reports.has(n)) return `agreed clock: report of ${String(n)}: not a member, or twice`;
      if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0 || ms > MAX_NOW_MS) return `agreed clock: report of node ${n}: ms must be an integer ≥ 0`;
      c.reports.set(n, ms);
    }
    // T may be above the current (f + 1)-th largest (the members changed), never below it.
    if (t < c.kth()) return `agreed clock: T ${t} is below the (f + 1)-th largest report ${c.kth()}`;
    c.t = t;
    return c;
  }
}

/**
 * One replica's estimate of the agreed time (see the header): `T seen + local time since`,
 * running only while the replica's state holds a live lock, never more than `capMs`
 * ahead of the T it last saw when it reports.
 */
export class LocalTimeLine {
  /** estimate = mono + offset while running; = frozen while paused. */
  private offset = 0;
  private running = false;
  private frozen = 0;
  private seen = 0;

  constructor(readonly capMs: number) {
    if (!Number.isSafeInteger(capMs) || capMs < 1) throw new RangeError(`LocalTimeLine: capMs must be an integer ≥ 1, got ${String(capMs)}`);
  }

  /** The agreed time this replica last saw. */
  get seenMs(): number {
    return this.seen;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * After applying: the agreed time now, whether the state holds a live lock, and the
   * local monotonic time. The estimate never falls below T, is pulled back to at most
   * T + cap, and runs only while `live`.
   */
  observe(agreedMs: number, live: boolean, mono: number): void {
    if (agreedMs > this.seen) this.seen = agreedMs;
    const est = this.estimate(mono);
    const next = Math.min(Math.max(est, this.seen), this.seen + this.capMs);
    if (live) {
      this.offset = next - mono;
      this.running = true;
    } else {
      this.frozen = next;
      this.running = false;
    }
  }

  /** The estimate at monotonic time `mono`. */
  estimate(mono: number): number {
    return this.running ? Math.floor(mono + this.offset) : this.frozen;
  }

  /** What to report now: the estimate, at most cap above the T last seen. */
  reportValue(mono: number): number {
    return Math.min(this.estimate(mono), this.seen + this.capMs);
  }
}
