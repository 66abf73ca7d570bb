/**
 * The safety rule of the external engines: how long a leader may go on acting after
 * its last answer from etcd or ZooKeeper, so that it has stopped before the service
 * can hand leadership to another node.
 *
 * Leadership through an external service is a lease held *by the service*: our
 * election key lives as long as our etcd lease or ZooKeeper session, and the service
 * alone decides when that ends (it expires the lease when it stops hearing from us).
 * The next leader is elected only after that: its own key leads once ours is gone.
 * So a leader cut off from the service must stop acting before the service can
 * expire its lease — judged on the leader's own clock, without hearing from the
 * service. The rule (Gray and Cheriton's leases, 1989; Chubby's "jeopardy" period,
 * Burrows 2006):
 *
 *     act until   s + T·(1 − ρ) − L − M
 *
 *   s  our monotonic time when we *sent* the newest request whose answer came back
 *      and showed the lease/session alive (not when the answer arrived: the server
 *      renewed the lease somewhere between the two, so the send time is the safe end);
 *   T  the lease TTL (etcd: the TTL in the keep-alive answer) or the negotiated session
 *      timeout (ZooKeeper: the timeout in the connect answer);
 *   ρ  the largest rate difference between our clock and the server's (`driftRate`):
 *      T measured by the server lasts at least T·(1 − ρ) on our clock. Crystals are
 *      within 10⁻⁴; the default 10⁻³ leaves room for a board without an RTC whose
 *      clock is slewed by NTP (slewing changes the rate by at most 5·10⁻⁴);
 *   L  how much earlier than s the server may have last renewed the lease although it
 *      answered after s (`serverLagMs`). etcd: 0 — a keep-alive is answered by the
 *      lessor of the raft leader, which renews the lease when it answers; a deposed
 *      leader that still answers is covered by etcd itself, which on every leader
 *      change extends every lease by an election timeout (lessor Promote). ZooKeeper:
 *      a follower answers our requests on its own and passes our session's "touch"
 *      to the ZooKeeper leader only with its next ping answer, so a follower cut off
 *      from its leader still answers us for up to syncLimit × tickTime while the
 *      leader hears nothing; plus our own probe interval (the touch that reaches the
 *      leader may be of an earlier probe). See zookeeper.ts;
 *   M  a fixed margin (`marginMs`) for what is not time on a clock: the event loop
 *      running a timer late, a hook or job that was started just before the end and
 *      needs a moment to be told.
 *
 * With monotonic time only (docs/architecture.md, "Time"): a wall-clock jump on the board or the server
 * changes nothing here (etcd leases and ZooKeeper sessions are kept on the servers'
 * monotonic clocks too).
 *
 * Pure: time enters as arguments. The caller (leadership.ts) turns the deadline into
 * a timer that switches activation off exactly then.
 */

export interface LeaseWindowOptions {
  /** ρ: largest clock rate difference between this board and the service, e.g. 0.001. */
  driftRate: number;
  /** M: fixed margin, ms. */
  marginMs: number;
  /** L: how long before an answer the server may have last renewed the lease, ms (0 for etcd). */
  serverLagMs: number;
  /**
   * Testing only: a planted bug that lets a leader act this much longer than the rule
   * allows, so that the tests can show that their checks catch a leader acting too long.
   */
  plantedExtraMs?: number;
}

export class LeaseWindow {
  private sentAt = Number.NEGATIVE_INFINITY;
  private ttlMs = 0;
  /** Answers counted (tests and /metrics). */
  answers = 0;

  constructor(private readonly opts: LeaseWindowOptions) {
    if (!(opts.driftRate >= 0 && opts.driftRate < 0.5)) throw new RangeError(`driftRate must be in [0, 0.5), got ${opts.driftRate}`);
    if (!(opts.marginMs >= 0)) throw new RangeError(`marginMs must be ≥ 0, got ${opts.marginMs}`);
    if (!(opts.serverLagMs >= 0)) throw new RangeError(`serverLagMs must be ≥ 0, got ${opts.serverLagMs}`);
  }

  /**
   * An answer showing the lease alive arrived for a request sent at `sentAtMs` (our
   * monotonic clock), with the lease's TTL / session timeout `ttlMs` as the server
   * stated it. Answers to older requests than the newest counted one change nothing.
   */
  answered(sentAtMs: number, ttlMs: number): void {
    if (!(ttlMs > 0)) throw new RangeError(`ttlMs must be > 0, got ${ttlMs}`);
    this.answers++;
    if (sentAtMs >= this.sentAt) {
      this.sentAt = sentAtMs;
      this.ttlMs = ttlMs;
    }
  }

  /** The lease or session is gone (revoked, expired, answered TTL 0): act no more until a new one is answered. */
  lost(): void {
    this.sentAt = Number.NEGATIVE_INFINITY;
    this.ttlMs = 0;
  }

  /** The end of the window on our monotonic clock (−∞ before any answer). */
  actUntil(): number {
    if (this.sentAt === Number.NEGATIVE_INFINITY) return Number.NEGATIVE_INFINITY;
    return this.sentAt + this.ttlMs * (1 - this.opts.driftRate) - this.opts.serverLagMs - this.opts.marginMs + (this.opts.plantedExtraMs ?? 0);
  }

  /** May a leader act at `nowMs`? */
  valid(nowMs: number): boolean {
    return nowMs < this.actUntil();
  }

  /** Send time of the newest counted request (−∞ before any). */
  get lastSentAt(): number {
    return this.sentAt;
  }

  get lastTtlMs(): number {
    return this.ttlMs;
  }

  /**
   * The usable window right after an answer to a request sent `rttMs` before it:
   * T·(1 − ρ) − L − M − rtt. Config checks use it: the renewals must come well
   * inside it, or a leader would switch off between two of them.
   */
  static usableMs(ttlMs: number, o: LeaseWindowOptions, rttMs = 0): number {
    return ttlMs * (1 - o.driftRate) - o.serverLagMs - o.marginMs - rttMs;
  }
}
