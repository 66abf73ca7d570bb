/**
 * `quorumd sim --locks`: lock clients and the client-side check of what docs/api.md
 * ("Locks") promises a holder. Off by default (a run without it draws nothing here, so
 * every seed's run stays what it was).
 *
 * `clients` lock clients each, in a loop: think, acquire one of a few lock names with a
 * ttl (a fresh lease id per acquire), renew it a few times every ttl/3 (counted from
 * when it sent the previous acquire or renewal), then release it — or, for some holds,
 * let it lapse (keep counting on it to the end of its ttl, then forget it, as a client
 * that dies), so that the lease's end itself is checked. Every request goes
 * to a random live data node, through the runtime's API (lockAcquire, lockRenew,
 * lockRelease), as the workload's put/get/cas do.
 *
 * The checks, on the simulated real (virtual) time, from the clients' side:
 *   - `lock-mutual-exclusion`: a client that got 200 for an acquire or renewal it SENT
 *     at s counts on holding the lock from the answer until s + ttl (on its own clock,
 *     from when it sent), or until it sends its release. No two holds of one lock may
 *     overlap: another client's 200 for an acquire of that lock must not arrive before
 *     then. Nothing is allowed for (no margin) — except what the engine documents as
 *     its bound (`earlyEndMs`): under pbft a lease runs on the replicas' agreed time,
 *     which may end it up to P + C = 3 s early in real time (docs/engines.md "Locks:
 *     agreed time"), so a pbft client counts on s + ttl − 3 s.
 *   - `lock-bad-request`: any lock command answered 400. The clients send well-formed
 *     requests; the runtime stamps `now` itself, so a 400 is the runtime's bug (a
 *     fractional stamp was one).
 *   - `lock-token-growth`: an acquire sent after another grant of the same lock was
 *     answered (real-time order) must get a larger fencing token; a renewal answers the
 *     token of its grant.
 *   - `lock-early-expiry`: a renewal or release of a hold answered 409 (not held) before
 *     the end the holder counts on (the same end as above). The answer comes after the
 *     command was judged, so the lease had already ended then: too early, even if nobody
 *     else took the lock meanwhile (which mutual exclusion alone would not see).
 *
 * For the timeline (`--html`), `onOp` is told of every lock request (call → return,
 * with its outcome) and `onHold` of every grant: the hold object itself, whose spans
 * and end the workload keeps updating until the run ends (the recorder reads them then).
 */
import type { Rng } from '../../src/rng.ts';
import type { Scheduler } from '../../firmware-sim/scheduler.ts';
import type { NodeId } from '../../src/types.ts';
import { Status, type ClientResult, type EngineRuntime } from '../runtime/index.ts';

/** What the lock clients need of a node: the runtime's lock API. */
export type LockNode = Pick<EngineRuntime, 'id' | 'lockAcquire' | 'lockRenew' | 'lockRelease'>;

export interface LockWorkloadOptions {
  clients: number;
  names: readonly string[];
  /** A grant's ttl (ms), uniform. */
  ttlMinMs: number;
  ttlMaxMs: number;
  /** Renewals per hold, uniform. */
  renewMin: number;
  renewMax: number;
  /** Pause between a client's holds (ms), uniform. */
  thinkMinMs: number;
  thinkMaxMs: number;
  /** A client gives up on an answer after this long (ms). */
  clientTimeoutMs: number;
  /**
   * Share of holds that end without a release (as a client that dies): the lock lapses
   * at the end of its ttl, which tests the lease's end itself (a released lock does not).
   */
  lapseShare: number;
  /**
   * How much earlier in real time than `sent + ttl` the engine may end a lease, by its
   * own documentation (0: not at all). The client counts on holding until
   * `sent + ttl − earlyEndMs`; the check allows exactly that and no more.
   */
  earlyEndMs: number;
}

export const DEFAULT_LOCK_WORKLOAD: LockWorkloadOptions = {
  clients: 3,
  names: ['pump', 'valve'],
  ttlMinMs: 2000,
  ttlMaxMs: 8000,
  renewMin: 1,
  renewMax: 4,
  thinkMinMs: 20,
  thinkMaxMs: 400,
  clientTimeoutMs: 3000,
  lapseShare: 0.3,
  earlyEndMs: 0,
};

export interface LockStats {
  /** Lock commands sent. */
  issued: number;
  /** Acquires answered 200, renewals answered 200, releases answered 200. */
  grants: number;
  renewals: number;
  releases: number;
  /** 409 answers (held by another, not held any more). */
  conflicts: number;
  /** 503/504 or no answer. */
  unavailable: number;
  /**
   * Grants that took a lock over from a client that sent no release (its lease ran out:
   * a lapse, or a renewal refused), and the smallest time from the
   * previous holder's `sent + ttl` to the new grant's answer (ms; negative: before that
   * lease's ttl had run out in real time; null when there was none). How close the
   * engine cut it: ≥ 0 for raft, paxos and zab, ≥ −earlyEndMs for pbft.
   */
  takeovers: number;
  takeoverMinMs: number | null;
}

export type LockKind = 'acquire' | 'renew' | 'release';

/**
 * How a lock request ended, as the timeline draws it: 'granted' (acquire 200, with its
 * token), 'renewed', 'released' (200), 'held' (acquire 409: another holds it),
 * 'expired' (renew/release 409: this lease does not hold the lock any more), 'unavailable'
 * (503: not done), 'unknown' (504: may have been done), 'timeout' (no answer before the
 * client gave up), 'error' (any other status, e.g. 400: a bug).
 */
export type LockOutcome = 'granted' | 'renewed' | 'released' | 'held' | 'expired' | 'unavailable' | 'unknown' | 'timeout' | 'error';

export interface LockOpRecord {
  client: number;
  node: NodeId;
  kind: LockKind;
  name: string;
  callUs: number;
  retUs: number;
  outcome: LockOutcome;
  /** The token answered (grant, renewal, or the holder's on a 409), -1 when none. */
  token: number;
  ttlMs: number;
  /** The HTTP-like status, -1 when no answer came. */
  status: number;
}

/**
 * How a hold ended: 'released' (the client sent its release within its lease),
 * 'lapsed' (it kept counting to the end of its lease and forgot the lock, as a client
 * that dies), 'lost' (a renewal was refused: it knew it had lost it), 'overdue' (its
 * renewals got no answer before its lease ran out; it released late).
 */
export type HoldEnd = 'released' | 'lapsed' | 'lost' | 'overdue';

/** A grant as its client sees it (read-only outside this file). */
export interface LockHold {
  readonly id: number;
  readonly client: number;
  readonly name: string;
  readonly token: number;
  readonly ttlMs: number;
  /** Answer time of the acquire (virtual µs). */
  readonly grantedUs: number;
  /** Send time of the acquire. */
  readonly sentUs: number;
  /** Intervals [from, until) it counts on holding (µs): one per 200 acquire or renewal. */
  readonly spans: ReadonlyArray<{ readonly from: number; readonly until: number }>;
  /** How it ended; null while held (or still held when the run ended). */
  readonly end: HoldEnd | null;
  /** The lock check this hold took part in breaking, if any. */
  readonly violation: string | null;
}

/** One grant as its client sees it: the lock, who, the token, and the real-time interval it counts on. */
interface Hold {
  id: number;
  client: number;
  name: string;
  token: number;
  ttlMs: number;
  grantedUs: number;
  sentUs: number;
  spans: Array<{ from: number; until: number }>;
  /** When the client stopped counting on the lock (sent its release, or forgot it). */
  releasedUs: number;
  /** `sent + ttl` of its latest 200 (µs): the lease's end as the ttl says, before earlyEndMs. */
  rawEndUs: number;
  end: HoldEnd | null;
  violation: string | null;
}

/** What a request is, for its timeline record. */
interface LockRequest {
  client: number;
  kind: LockKind;
  name: string;
  ttlMs: number;
  /** Known token (renew/release: the grant's). */
  token: number;
}

/** Pause before a renewal is tried again (ms). */
const RETRY_MS = 100;

const fmt = (us: number) => `${(us / 1000).toFixed(3)} ms`;

export class LockWorkload {
  readonly stats: LockStats = { issued: 0, grants: 0, renewals: 0, releases: 0, conflicts: 0, unavailable: 0, takeovers: 0, takeoverMinMs: null };
  private stopAtUs = 0;
  private inFlight = 0;
  private seq = 0;
  private holdIds = 0;
  /** Every grant so far, per lock name (in answer order). */
  private readonly holds = new Map<string, Hold[]>();
  /** How a request reaches a node's process (the cluster holds it while that process is stalled). */
  deliver: ((node: NodeId, fn: () => void) => void) | null = null;
  /** The timeline: every lock request when it returns (or the client gives up). */
  onOp: ((op: LockOpRecord) => void) | null = null;
  /** The timeline: every grant, when it is granted (the object keeps changing until the run ends). */
  onHold: ((hold: LockHold) => void) | null = null;

  constructor(
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    private readonly liveNodes: () => LockNode[],
    /** A violation: throws (the invariant checker's fail). Called from a scheduler event of its own (see violated). */
    private readonly fail: (invariant: string, detail: string) => never,
    private readonly opts: LockWorkloadOptions = DEFAULT_LOCK_WORKLOAD,
  ) {}

  get pending(): number {
    return this.inFlight;
  }

  /** The first violation seen. */
  violation: { invariant: string; detail: string } | null = null;
  /**
   * Reports a violation from an event of its own, at once in virtual time: answers come
   * from inside the runtime (its pump), which takes anything thrown there for its own
   * failure (the fatal path), so the checker's throw must not start there. `holds`: the
   * holds it concerns (marked for the timeline).
   */
  private violated(invariant: string, detail: string, ...holds: Hold[]): void {
    if (this.violation !== null) return;
    this.violation = { invariant, detail };
    for (const h of holds) h.violation = invariant;
    this.sched.after(0, () => this.fail(invariant, detail));
  }

  start(stopAtUs: number): void {
    this.stopAtUs = stopAtUs;
    for (let c = 1; c <= this.opts.clients; c++) this.think(c);
  }

  private think(client: number): void {
    this.sched.after(this.rng.int(this.opts.thinkMinMs, this.opts.thinkMaxMs) * 1000, () => this.acquire(client));
  }

  private pickNode(): LockNode | undefined {
    const nodes = this.liveNodes();
    return nodes.length === 0 ? undefined : this.rng.pick(nodes);
  }

  /** Sends `fn` to `node`; `then` gets the answer, or undefined after the client timeout. */
  private request(node: LockNode, req: LockRequest, what: string, fn: (node: LockNode, cb: (r: ClientResult) => void) => void, then: (r: ClientResult | undefined) => void): void {
    let done = false;
    this.inFlight++;
    this.stats.issued++;
    const callUs = this.sched.now;
    const timer = this.sched.after(this.opts.clientTimeoutMs * 1000, () => {
      if (done) return;
      done = true;
      this.inFlight--;
      this.stats.unavailable++;
      this.record(node, req, callUs, undefined);
      then(undefined);
    });
    const call = () =>
      fn(node, (res) => {
        if (done) return;
        done = true;
        timer.cancel();
        this.inFlight--;
        if (res.status === Status.BAD_REQUEST) this.violated('lock-bad-request', `${what} via n${node.id} answered 400: ${res.error ?? '(no message)'}`);
        if (res.status === Status.CONFLICT) this.stats.conflicts++;
        else if (res.status !== Status.OK) this.stats.unavailable++;
        this.record(node, req, callUs, res);
        then(res);
      });
    if (this.deliver === null) call();
    else this.deliver(node.id, call);
  }

  /** The timeline's record of a request that returned (`res` undefined: the client gave up). */
  private record(node: LockNode, req: LockRequest, callUs: number, res: ClientResult | undefined): void {
    if (this.onOp === null) return;
    let outcome: LockOutcome;
    if (res === undefined) outcome = 'timeout';
    else if (res.status === Status.OK) outcome = req.kind === 'acquire' ? 'granted' : req.kind === 'renew' ? 'renewed' : 'released';
    else if (res.status === Status.CONFLICT) outcome = req.kind === 'acquire' ? 'held' : 'expired';
    else if (res.status === Status.UNAVAILABLE) outcome = 'unavailable';
    else if (res.status === Status.UNKNOWN) outcome = 'unknown';
    else outcome = 'error';
    this.onOp({
      client: req.client, node: node.id, kind: req.kind, name: req.name, callUs, retUs: this.sched.now, outcome,
      token: res?.token ?? (req.kind === 'acquire' ? -1 : req.token), ttlMs: req.ttlMs, status: res?.status ?? -1,
    });
  }

  private acquire(client: number): void {
    if (this.sched.now >= this.stopAtUs) return;
    const node = this.pickNode();
    if (node === undefined) return this.think(client);
    const name = this.rng.pick(this.opts.names);
    const ttlMs = this.rng.int(this.opts.ttlMinMs, this.opts.ttlMaxMs);
    const lease = `sim-lease-c${client}-${String(++this.seq).padStart(10, '0')}`;
    const sentUs = this.sched.now;
    const what = `c${client} acquire ${name} (ttl ${ttlMs} ms, sent at ${fmt(sentUs)})`;
    this.request(node, { client, kind: 'acquire', name, ttlMs, token: -1 }, what, (n, cb) => n.lockAcquire(name, `c${client}`, ttlMs, lease, cb), (res) => {
      if (!res || res.status !== Status.OK) return this.think(client);
      this.stats.grants++;
      const hold: Hold = {
        id: ++this.holdIds, client, name, token: res.token ?? -1, ttlMs, grantedUs: this.sched.now, sentUs, spans: [], releasedUs: Infinity,
        rawEndUs: sentUs + ttlMs * 1000, end: null, violation: null,
      };
      this.checkToken(hold, node.id);
      this.takeover(hold);
      this.addSpan(hold, sentUs, ttlMs, `${what} answered 200 by n${node.id} at ${fmt(this.sched.now)} (token ${hold.token})`);
      const list = this.holds.get(name);
      if (list) list.push(hold);
      else this.holds.set(name, [hold]);
      this.onHold?.(hold);
      const renewals = this.rng.int(this.opts.renewMin, this.opts.renewMax);
      const lapse = this.rng.float() < this.opts.lapseShare;
      this.renewLoop(hold, lease, ttlMs, sentUs, renewals, lapse);
    });
  }

  /** The next renewal ttl/3 after the last 200 acquire/renewal was sent, `left` times; then the release. */
  private renewLoop(hold: Hold, lease: string, ttlMs: number, lastSentUs: number, left: number, lapse: boolean): void {
    // A retry (no live node, no answer, 503) comes RETRY_MS after the failed try.
    const at = Math.max(lastSentUs + Math.floor(ttlMs / 3) * 1000, this.sched.now + (this.sched.now > lastSentUs ? RETRY_MS * 1000 : 0));
    this.sched.after(at - this.sched.now, () => {
      // Past the end of its counted lease (answers were slow): it has lost the lock.
      const endUs = lastSentUs + (ttlMs - this.opts.earlyEndMs) * 1000;
      if (this.sched.now >= endUs) return this.release(hold, lease, true, 'overdue');
      // Lapse: keep counting on the lock to the end of the ttl, then forget it without a release.
      if (lapse && (left === 0 || this.sched.now >= this.stopAtUs)) return void this.sched.after(endUs - this.sched.now, () => this.release(hold, lease, false, 'lapsed'));
      if (left === 0 || this.sched.now >= this.stopAtUs) return this.release(hold, lease, true, 'released');
      const node = this.pickNode();
      if (node === undefined) return this.renewLoop(hold, lease, ttlMs, lastSentUs, left, lapse);
      const sentUs = this.sched.now;
      const what = `c${hold.client} renew ${hold.name} (token ${hold.token}, ttl ${ttlMs} ms, sent at ${fmt(sentUs)})`;
      this.request(node, { client: hold.client, kind: 'renew', name: hold.name, ttlMs, token: hold.token }, what, (n, cb) => n.lockRenew(hold.name, lease, cb), (res) => {
        if (res?.status === Status.CONFLICT) {
          this.checkNotEarly(hold, `${what} answered 409 by n${node.id} at ${fmt(this.sched.now)} (${res.error ?? 'not held'})`);
          return this.release(hold, lease, false, 'lost');
        }
        if (!res || res.status !== Status.OK) return this.renewLoop(hold, lease, ttlMs, lastSentUs, left, lapse);
        this.stats.renewals++;
        if (res.token !== undefined && res.token !== hold.token) {
          this.violated('lock-token-growth', `${what} answered 200 by n${node.id} with token ${res.token}, not its grant's ${hold.token}`, hold);
        }
        hold.rawEndUs = Math.max(hold.rawEndUs, sentUs + ttlMs * 1000);
        this.addSpan(hold, sentUs, ttlMs, `${what} answered 200 by n${node.id} at ${fmt(this.sched.now)}`);
        this.renewLoop(hold, lease, ttlMs, sentUs, left - 1, lapse);
      });
    });
  }

  /** The client stops counting on the lock now and sends its release (`send` false: it knows it lost it, or it forgets it). */
  private release(hold: Hold, lease: string, send: boolean, end: HoldEnd): void {
    hold.releasedUs = Math.min(hold.releasedUs, this.sched.now);
    hold.end ??= end;
    for (const s of hold.spans) s.until = Math.min(s.until, hold.releasedUs);
    const node = send ? this.pickNode() : undefined;
    if (node === undefined) return this.think(hold.client);
    const what = `c${hold.client} release ${hold.name} (token ${hold.token}, sent at ${fmt(this.sched.now)})`;
    this.request(node, { client: hold.client, kind: 'release', name: hold.name, ttlMs: hold.ttlMs, token: hold.token }, what, (n, cb) => n.lockRelease(hold.name, lease, cb), (res) => {
      if (res?.status === Status.OK) this.stats.releases++;
      else if (res?.status === Status.CONFLICT) this.checkNotEarly(hold, `${what} answered 409 by n${node.id} at ${fmt(this.sched.now)} (${res.error ?? 'not held'})`);
      this.think(hold.client);
    });
  }

  /**
   * A 200 for a command sent at `sentUs` (now = its answer): the client counts on the
   * lock from now until sentUs + ttl − earlyEndMs. No other hold of the lock may count
   * on it at any moment of that span. Spans of others end at most later by a release
   * sent later, which does not matter here: they still counted on the lock now.
   */
  private addSpan(hold: Hold, sentUs: number, ttlMs: number, what: string): void {
    const span = { from: this.sched.now, until: Math.min(sentUs + (ttlMs - this.opts.earlyEndMs) * 1000, hold.releasedUs) };
    if (span.until <= span.from) return;
    const margin = this.opts.earlyEndMs > 0 ? ` (the lease's ttl less the ${this.opts.earlyEndMs} ms the engine may end it early)` : '';
    for (const other of this.holds.get(hold.name) ?? []) {
      if (other.id === hold.id) continue;
      for (const s of other.spans) {
        if (s.from < span.until && span.from < s.until) {
          this.violated(
            'lock-mutual-exclusion',
            `${what}, while c${other.client} (token ${other.token}, granted at ${fmt(other.grantedUs)}) counts on holding ${hold.name} until ${fmt(s.until)}${margin}: ` +
              `two holders for ${((Math.min(s.until, span.until) - Math.max(s.from, span.from)) / 1000).toFixed(3)} ms`,
            hold,
            other,
          );
        }
      }
    }
    hold.spans.push(span);
  }

  /**
   * A new grant after the previous holder of the lock sent no release (its lease ran
   * out, or is running out: it lapsed, lost it, or still counts on it): the time from
   * that hold's `sent + ttl` to this answer, for the stats. A hold that ended 'overdue'
   * sent a release too (late), which may have freed the lock before its lease ran out.
   */
  private takeover(hold: Hold): void {
    const prev = this.holds.get(hold.name)?.at(-1);
    if (prev === undefined || prev.end === 'released' || prev.end === 'overdue') return;
    this.stats.takeovers++;
    const gapMs = Math.round(hold.grantedUs - prev.rawEndUs) / 1000;
    if (this.stats.takeoverMinMs === null || gapMs < this.stats.takeoverMinMs) this.stats.takeoverMinMs = gapMs;
  }

  /** A "not held" answer for `hold` now: the lease must not have ended before the end its client counts on. */
  private checkNotEarly(hold: Hold, what: string): void {
    const promisedUs = hold.rawEndUs - this.opts.earlyEndMs * 1000;
    if (this.sched.now >= promisedUs) return;
    const margin = this.opts.earlyEndMs > 0 ? ` (sent + ttl of its last 200, less the ${this.opts.earlyEndMs} ms the engine may end it early)` : ' (sent + ttl of its last 200)';
    this.violated('lock-early-expiry', `${what}: the lease ended before ${fmt(promisedUs)}, the end its holder counts on${margin}, ${((promisedUs - this.sched.now) / 1000).toFixed(3)} ms early at least`, hold);
  }

  /** A grant whose acquire was sent after an earlier grant of the lock was answered must have a larger token. */
  private checkToken(hold: Hold, via: NodeId): void {
    for (const other of this.holds.get(hold.name) ?? []) {
      if (other.grantedUs <= hold.sentUs && hold.token <= other.token) {
        this.violated('lock-token-growth', `c${hold.client} acquire ${hold.name} sent at ${fmt(hold.sentUs)} was granted by n${via} with token ${hold.token}, not above token ${other.token} of c${other.client}'s grant answered earlier at ${fmt(other.grantedUs)}`, hold, other);
      }
    }
  }
}
