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
 *     then. Nothing is allowed for (no margin).
 *   - `lock-bad-request`: any lock command answered 400. The clients send well-formed
 *     requests; the runtime stamps `now` itself, so a 400 is the runtime's bug (a
 *     fractional stamp was one).
 *   - `lock-token-growth`: an acquire sent after another grant of the same lock was
 *     answered (real-time order) must get a larger fencing token; a renewal answers the
 *     token of its grant.
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
}

/** One grant as its client sees it: the lock, who, the token, and the real-time interval it counts on. */
interface Hold {
  id: number;
  client: number;
  name: string;
  token: number;
  /** Answer time of the acquire (virtual µs). */
  grantedUs: number;
  /** Send time of the acquire. */
  sentUs: number;
  /** Intervals [from, until) it counts on holding (µs): one per 200 acquire or renewal. */
  spans: Array<{ from: number; until: number }>;
  /** When the client sent its release (it stops counting on the lock then). */
  releasedUs: number;
}

/** Pause before a renewal is tried again (ms). */
const RETRY_MS = 100;

const fmt = (us: number) => `${(us / 1000).toFixed(3)} ms`;

export class LockWorkload {
  readonly stats: LockStats = { issued: 0, grants: 0, renewals: 0, releases: 0, conflicts: 0, unavailable: 0 };
  private stopAtUs = 0;
  private inFlight = 0;
  private seq = 0;
  private holdIds = 0;
  /** Every grant so far, per lock name (in answer order). */
  private readonly holds = new Map<string, Hold[]>();
  /** How a request reaches a node's process (the cluster holds it while that process is stalled). */
  deliver: ((node: NodeId, fn: () => void) => void) | null = null;

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
   * failure (the fatal path), so the checker's throw must not start there.
   */
  private violated(invariant: string, detail: string): void {
    if (this.violation !== null) return;
    this.violation = { invariant, detail };
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
  private request(node: LockNode, what: string, fn: (node: LockNode, cb: (r: ClientResult) => void) => void, then: (r: ClientResult | undefined) => void): void {
    let done = false;
    this.inFlight++;
    this.stats.issued++;
    const timer = this.sched.after(this.opts.clientTimeoutMs * 1000, () => {
      if (done) return;
      done = true;
      this.inFlight--;
      this.stats.unavailable++;
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
        then(res);
      });
    if (this.deliver === null) call();
    else this.deliver(node.id, call);
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
    this.request(node, what, (n, cb) => n.lockAcquire(name, `c${client}`, ttlMs, lease, cb), (res) => {
      if (!res || res.status !== Status.OK) return this.think(client);
      this.stats.grants++;
      const hold: Hold = { id: ++this.holdIds, client, name, token: res.token ?? -1, grantedUs: this.sched.now, sentUs, spans: [], releasedUs: Infinity };
      this.checkToken(hold, node.id);
      this.addSpan(hold, sentUs, ttlMs, `${what} answered 200 by n${node.id} at ${fmt(this.sched.now)} (token ${hold.token})`);
      const list = this.holds.get(name);
      if (list) list.push(hold);
      else this.holds.set(name, [hold]);
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
      const endUs = lastSentUs + ttlMs * 1000;
      if (this.sched.now >= endUs) return this.release(hold, lease);
      // Lapse: keep counting on the lock to the end of the ttl, then forget it without a release.
      if (lapse && (left === 0 || this.sched.now >= this.stopAtUs)) return void this.sched.after(endUs - this.sched.now, () => this.release(hold, lease, false));
      if (left === 0 || this.sched.now >= this.stopAtUs) return this.release(hold, lease);
      const node = this.pickNode();
      if (node === undefined) return this.renewLoop(hold, lease, ttlMs, lastSentUs, left, lapse);
      const sentUs = this.sched.now;
      const what = `c${hold.client} renew ${hold.name} (token ${hold.token}, ttl ${ttlMs} ms, sent at ${fmt(sentUs)})`;
      this.request(node, what, (n, cb) => n.lockRenew(hold.name, lease, cb), (res) => {
        if (res?.status === Status.CONFLICT) return this.release(hold, lease, false);
        if (!res || res.status !== Status.OK) return this.renewLoop(hold, lease, ttlMs, lastSentUs, left, lapse);
        this.stats.renewals++;
        if (res.token !== undefined && res.token !== hold.token) {
          this.violated('lock-token-growth', `${what} answered 200 by n${node.id} with token ${res.token}, not its grant's ${hold.token}`);
        }
        this.addSpan(hold, sentUs, ttlMs, `${what} answered 200 by n${node.id} at ${fmt(this.sched.now)}`);
        this.renewLoop(hold, lease, ttlMs, sentUs, left - 1, lapse);
      });
    });
  }

  /** The client stops counting on the lock now and sends its release (`send` false: it knows it lost it). */
  private release(hold: Hold, lease: string, send = true): void {
    hold.releasedUs = Math.min(hold.releasedUs, this.sched.now);
    for (const s of hold.spans) s.until = Math.min(s.until, hold.releasedUs);
    const node = send ? this.pickNode() : undefined;
    if (node === undefined) return this.think(hold.client);
    this.request(node, `c${hold.client} release ${hold.name} (token ${hold.token})`, (n, cb) => n.lockRelease(hold.name, lease, cb), (res) => {
      if (res?.status === Status.OK) this.stats.releases++;
      this.think(hold.client);
    });
  }

  /**
   * A 200 for a command sent at `sentUs` (now = its answer): the client counts on the
   * lock from now until sentUs + ttl. No other hold of the lock may count on it at any
   * moment of that span. Spans of others end at most later by a release sent later,
   * which does not matter here: they still counted on the lock now.
   */
  private addSpan(hold: Hold, sentUs: number, ttlMs: number, what: string): void {
    const span = { from: this.sched.now, until: Math.min(sentUs + ttlMs * 1000, hold.releasedUs) };
    if (span.until <= span.from) return;
    for (const other of this.holds.get(hold.name) ?? []) {
      if (other.id === hold.id) continue;
      for (const s of other.spans) {
        if (s.from < span.until && span.from < s.until) {
          this.violated(
            'lock-mutual-exclusion',
            `${what}, while c${other.client} (token ${other.token}, granted at ${fmt(other.grantedUs)}) counts on holding ${hold.name} until ${fmt(s.until)}: ` +
              `two holders for ${((Math.min(s.until, span.until) - Math.max(s.from, span.from)) / 1000).toFixed(3)} ms`,
          );
        }
      }
    }
    hold.spans.push(span);
  }

  /** A grant whose acquire was sent after an earlier grant of the lock was answered must have a larger token. */
  private checkToken(hold: Hold, via: NodeId): void {
    for (const other of this.holds.get(hold.name) ?? []) {
      if (other.grantedUs <= hold.sentUs && hold.token <= other.token) {
        this.violated('lock-token-growth', `c${hold.client} acquire ${hold.name} sent at ${fmt(hold.sentUs)} was granted by n${via} with token ${hold.token}, not above token ${other.token} of c${other.client}'s grant answered earlier at ${fmt(other.grantedUs)}`);
      }
    }
  }
}
