/**
 * Activation of an external-engine leader: active = elected by the service AND inside
 * the safety window of its lease or session (safety.ts). Both engines feed it the
 * same three facts — won with token t, lost, an answer that renewed the window — and
 * it emits `active`/`inactive` events and switches off by a timer at the exact end of
 * the window when no answer came in time (the service may then expire our lease and
 * elect someone else; we must have stopped first).
 *
 * Why "previous leader stopped" needs no fence for a process that runs (the Raft gate,
 * docs/fencing.md): a new leader is elected only after the old leader's key is gone
 * from the service, and the old leader stopped acting before the service could remove
 * it (the window ends before the lease can expire). A node that resigns deletes its key
 * only after it switched itself off. So the service's order of leaders is also the
 * order of acting, with a gap between them of at least the margin of the window.
 * A board that hangs does not run its timers: with a `fencing:` section the engine
 * passes `hold`, and the gate stays closed until every earlier leader is shown stopped
 * (fencing.ts); `recheck()` re-judges when that changes.
 */
import { LeaseWindow } from './safety.ts';
import type { ActivationEvent, ExternalStatus } from './types.ts';

export class LeadershipGate {
  private token = 0;
  private activeNow = false;
  private activeToken = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(ev: ActivationEvent) => void>();
  private stopped = false;
  /** Times the window closed on a leader that was still elected (no answer in time). */
  windowEnds = 0;

  constructor(
    readonly window: LeaseWindow,
    private readonly now: () => number = () => performance.now(),
    /** With fencing: may leadership `token` act yet (its earlier leaders shown stopped)? Default: yes. */
    private readonly hold: ((token: number) => boolean) | undefined = undefined,
  ) {}

  onActivation(fn: (ev: ActivationEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The service elected this node with fencing token `token`. */
  elected(token: number): void {
    if (!(Number.isSafeInteger(token) && token > 0)) throw new RangeError(`leadership token must be a positive safe integer, got ${token}`);
    if (this.token !== token && this.activeNow) this.set(false, 'new-epoch');
    this.token = token;
    this.evaluate('elected');
  }

  /** This node is no longer elected (key gone, resigned, session expired). */
  deposed(reason: string): void {
    this.token = 0;
    this.evaluate(reason);
  }

  /** The lease or session is gone: the window closes now. */
  leaseLost(reason: string): void {
    this.window.lost();
    this.evaluate(reason);
  }

  /** A renewal was answered (window.answered was called): re-judge and re-arm the timer. */
  renewed(): void {
    this.evaluate('renewed');
  }

  /** What `hold` answers may have changed (an earlier leader was fenced): re-judge. */
  recheck(reason: string): void {
    this.evaluate(reason);
  }

  get elected_(): boolean {
    return this.token > 0;
  }

  get electedToken(): number {
    return this.token;
  }

  /** Active at this instant (the timer may not have fired yet on a late event loop: judge now). */
  get active(): boolean {
    if (this.activeNow && !this.window.valid(this.now())) this.evaluate('window-ended');
    return this.activeNow;
  }

  /** This node's leadership while it is active now (what jobs need), else undefined. */
  leadership(): { term: number; token: number } | undefined {
    return this.active && this.token > 0 ? { term: this.token, token: this.token } : undefined;
  }

  /** The parts of an engine's status this gate knows; `sessionId` is the lease or session id. */
  view(sessionId: string): Pick<ExternalStatus, 'elected' | 'active' | 'token' | 'session'> {
    const last = this.window.lastSentAt;
    return {
      elected: this.token > 0,
      active: this.active,
      token: this.token,
      session: {
        id: sessionId,
        ttlMs: this.window.lastTtlMs,
        lastAnswerAgoMs: last === Number.NEGATIVE_INFINITY ? null : Math.round(this.now() - last),
        actForMs: Math.round(this.actForMs()),
      },
    };
  }

  /** How much longer this node may act without a new answer, ms (0 when it may not). */
  actForMs(): number {
    return Math.max(0, this.window.actUntil() - this.now());
  }

  /** Switches off for good (node stopping): emits inactive if active. */
  stop(): void {
    this.stopped = true;
    this.token = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.activeNow) this.set(false, 'stopped');
  }

  private evaluate(reason: string): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.now();
    const should = this.token > 0 && this.window.valid(now) && (this.hold?.(this.token) ?? true);
    if (should !== this.activeNow) {
      if (!should && this.activeNow && this.token > 0) this.windowEnds++;
      this.set(should, should ? reason : this.token > 0 ? 'window-ended' : reason);
    }
    if (should) {
      // Fire at the end of the window; a renewal before then re-arms it.
      const ms = Math.max(0, this.window.actUntil() - now);
      this.timer = setTimeout(() => this.evaluate('window-ended'), Math.ceil(ms));
      this.timer.unref?.();
    }
  }

  private set(active: boolean, reason: string): void {
    this.activeNow = active;
    // An inactive event names the epoch that ended (the token may already be 0).
    if (active) this.activeToken = this.token;
    const t = active ? this.token : this.activeToken;
    const ev: ActivationEvent = { active, term: t, token: t, atMs: this.now(), reason };
    for (const fn of [...this.listeners]) fn(ev);
  }
}
