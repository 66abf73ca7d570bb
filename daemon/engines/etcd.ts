/**
 * `engine: etcd` — leadership and replicated state through an etcd v3 cluster the site
 * already runs, with the `etcd3` client (gRPC). No quorum among the boards: etcd is
 * the quorum. What maps onto what is in types.ts; the safety rule in safety.ts.
 *
 * Leadership (etcd's concurrency.Election recipe, client/v3/concurrency/election.go,
 * written here on the raw KV/Lease/Watch calls so that we own the keep-alive timing):
 *
 *   1. grant a lease of `ttlSec`; renew it every `keepAliveMs` over a keep-alive stream,
 *      one request at a time, so that every answer pairs with the send time of its
 *      request (the window's `s`); an answer with TTL 0 means the lease is gone;
 *   2. put <prefix>election/<lease id> bound to the lease, if absent; its create
 *      revision is our place in the queue;
 *   3. wait until no election key with a lower create revision exists (watch the
 *      next lower one for its delete — not all of them: no herd);
 *   4. win by a transaction: if our election key still has our create revision, put
 *      <prefix>leader = {node, id}, bound to our lease. The fencing token is that
 *      write's revision. It grows strictly from leader to leader: a later leader's
 *      winning write happens after the earlier leader's key was deleted, and the
 *      earlier leader's own winning write needed its key, so it came before; etcd
 *      revisions grow with every write;
 *   5. hold while the lease lives. Our writes that need leadership (job claims) are
 *      transactions that also compare <prefix>leader's mod revision with the token:
 *      a write of a deposed leader cannot land after its successor's win.
 *
 * The win transaction also replaces <prefix>leader-history (not lease-bound), guarded
 * by its mod revision as read just before: who led before us, whether it resigned
 * cleanly, and whom it had not cleared yet. With a `fencing:` section those earlier
 * leaders are fenced before we act (fencing.ts has the rules and the record).
 *
 * Activation = elected and inside the window (leadership.ts). A renewal that resumes
 * after the window closed (the lease still lives: the answer's TTL > 0) re-opens it
 * with the same token: while the lease lived our key lived, so nobody else won.
 *
 * The client: no automatic retries of calls (etcd3's default retries a call three
 * times on "recoverable" errors, which for a write whose outcome is unknown would be a
 * second write), a call that could not be sent (connection refused) is retried on the
 * next endpoint within the request timeout, and every other failure of a write is an
 * unknown outcome (504), of a read or a refused write a 503 (see classify()).
 */
import { Etcd3, type IKeyValue, type IRangeResponse, type ITxnResponse, type ICompare, type IRequestOp, type Watcher, type IDuplexStream, type ILeaseKeepAliveRequest, type ILeaseKeepAliveResponse } from 'etcd3';
import { ExponentialBackoff, noop } from 'cockatiel';
import type { JobReport, Leadership } from '../jobs/coordinator.ts';
import { Status, type ClientCallback, type ClientResult } from '../runtime/results.ts';
import { answerOnce, checkCommand, type ClaimedJobRecord, decodeJobRecord, decodeLeaderRecord, decodeLockGrant, encodeJobRecord, KeyWatchers, leaseHex, Presence, PRESENCE_PERIOD_MS, sleep, within } from './common.ts';
import { LeadershipGate } from './leadership.ts';
import { decodeLeaderHistory, encodeLeaderHistory, suspectIds, type ExternalFencing, type Suspect } from './fencing.ts';
import { LeaseWindow } from './safety.ts';
import type { FloorStore } from './floor-file.ts';
import { emptyStats, type ActivationEvent, type EngineMember, type EngineStats, type ExternalEngine, type ExternalStatus } from './types.ts';
import { isoUtc } from '../utc-text.ts';

export interface EtcdEngineOptions {
  /** Client URLs, http://host:port or https://host:port (all the same scheme). */
  endpoints: string[];
  /** Key prefix of this cluster, ending in '/', e.g. /quorumd/<cluster>/. */
  prefix: string;
  self: EngineMember;
  /** Lease TTL of the election key, whole seconds (etcd's unit). */
  ttlSec: number;
  /** Renewal period, ms (well inside the window: config checks it). */
  keepAliveMs: number;
  /** ρ of the safety window. */
  driftRate: number;
  /** M of the safety window, ms. */
  marginMs: number;
  /** A request (read, write, lock...) not answered within this is answered 503/504, ms. */
  requestTimeoutMs: number;
  /** TLS (https:// endpoints): PEM contents. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** etcd user and password (etcd's auth). */
  auth?: { username: string; password: string };
  log: EngineLog;
  /** Monotonic clock, ms. Default performance.now(). */
  now?: () => number;
  /** Testing only: a planted bug, see LeaseWindowOptions.plantedExtraMs. */
  plantedExtraMs?: number;
  /** STONITH of earlier leaders before acting (a `fencing:` section); none = act once elected. */
  fencing?: ExternalFencing;
  /** The revision floor kept in the data directory (floor-file.ts); none = in memory only. */
  floor?: FloorStore;
}

export interface EngineLog {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

const enc = (s: string) => Buffer.from(s, 'utf8');

/** The smallest key greater than every key starting with `p` (etcd's prefix range end). */
export function prefixEnd(p: Buffer): Buffer {
  const b = Buffer.from(p);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]!++;
      return b.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** etcd's int64 fields arrive as decimal strings; ours must be safe integers. */
export function rev(v: string | number | undefined): number {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`etcd revision ${String(v)} is not a safe integer`);
  return n;
}

/**
 * Whether a failed call's request certainly did not reach etcd (or was refused before
 * it could be applied): then a write answers 503 (safe to retry); otherwise 504.
 */
export function notApplied(err: unknown): boolean {
  const m = String((err as Error)?.message ?? err);
  return /ECONNREFUSED|No connection established|failed to connect|Connection dropped before|etcdserver: no leader|etcdserver: not capable|etcdserver: too many requests|etcdserver: request is too large|permission denied|authentication failed|invalid auth token|user name is empty|Tried to call a .* method on etcd3, but the client was already closed|Connection pool has no hosts/i.test(m);
}

/** The service went back (see EtcdEngine.checkNotBack); `sent`: the call reached it (a write may be applied there). */
export class ServiceWentBack extends Error {
  constructor(message: string, readonly sent: boolean) {
    super(message);
  }
}

const errText = (err: unknown) => String((err as Error)?.message ?? err).replace(/ Please report this error at .*$/, '').slice(0, 300);

/**
 * What a node that refuses a service that went back says to do. With the floor on disk
 * (floor-file.ts) a restart refuses too: the operator accepts the new numbering by
 * deleting the file, after making sure nothing trusts the old tokens.
 */
export function wentBackAdvice(engine: 'etcd' | 'zookeeper', floor: number, file: string | undefined): string {
  const svc = engine === 'etcd' ? 'etcd' : 'ZooKeeper';
  const n = engine === 'etcd' ? `revision ${floor}` : `zxid 0x${floor.toString(16)}`;
  if (file === undefined) return 'this node neither leads nor serves requests until it is restarted (docs/external.md, "When the service goes back")';
  return (
    `this node neither leads nor serves requests, and a restart does not change that: it keeps the newest number it saw (${n}) in ${file}. ` +
    `If ${svc} was reset on purpose: first make sure whatever trusts these tokens (a fenced store, a device that remembers the largest token it saw) accepts numbers that start again${engine === 'etcd' ? `, or restore etcd with its revisions raised above ${floor} (etcdutl snapshot restore --bump-revision)` : ''}; ` +
    `then stop this node, delete ${file}, and start it again (docs/external.md, "When the service goes back")`
  );
}

export class EtcdEngine implements ExternalEngine {
  readonly name = 'etcd' as const;
  private readonly client: Etcd3;
  private readonly now: () => number;
  private readonly gate: LeadershipGate;
  private readonly window: LeaseWindow;
  private readonly p: { election: Buffer; leader: Buffer; history: Buffer; kv: string; locks: string; jobs: string };
  private readonly watchers: KeyWatchers;
  private readonly jobs = new Map<string, ClaimedJobRecord>();
  private readonly jobReadAt = new Map<string, number>();
  private stopped = false;
  private started = false;
  /** The newest revision any answer to this node carried: stale reads are never older (range()). */
  private revisionFloor = 0;
  /** Stale reads answered below that floor and read again linearizably (tests look). */
  staleRereads = 0;
  /** Why this node refuses for good: etcd answered below the floor (checkNotBack). */
  private wentBack: string | undefined;
  /** Keys under the prefix that no quorumd node wrote, warned about once each. */
  private readonly warnedKeys = new Set<string>();
  private leaseId = '';
  private leaseGen = 0;
  private leaseLostFlag = false;
  private wake: (() => void) | undefined;
  private role: ExternalStatus['role'] = 'connecting';
  private leaderName: string | null = null;
  private leaderToken = 0;
  private leaderWatch: Watcher | undefined;
  /** While we hold leadership: its token and lease generation (the leader watch compares the record with it). */
  private holding: { token: number; gen: number } | undefined;
  private loop: Promise<void> | undefined;
  private keepAliveStream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  readonly stats: EngineStats = emptyStats();
  private readonly presence: Presence;

  constructor(private readonly o: EtcdEngineOptions) {
    if (o.endpoints.length === 0) throw new Error('etcd: no endpoints');
    if (!o.prefix.endsWith('/')) throw new Error(`etcd: prefix must end in '/', got ${JSON.stringify(o.prefix)}`);
    this.now = o.now ?? (() => performance.now());
    this.presence = new Presence(this.now);
    this.revisionFloor = o.floor?.initial ?? 0;
    this.window = new LeaseWindow({ driftRate: o.driftRate, marginMs: o.marginMs, serverLagMs: 0, ...(o.plantedExtraMs ? { plantedExtraMs: o.plantedExtraMs } : {}) });
    const fencing = o.fencing;
    this.gate = new LeadershipGate(this.window, this.now, fencing ? (t) => fencing.clear(t) : undefined);
    if (fencing) {
      fencing.onChange = () => this.gate.recheck('earlier-leaders-stopped');
      // Once every earlier leader is shown stopped, the record says so (a later leader need not fence them again).
      this.gate.onActivation((ev) => {
        if (ev.active && fencing.hadSuspects(ev.token)) void this.writeHistory(ev.token, false, []).catch(() => undefined);
      });
    }
    this.p = {
      election: enc(`${o.prefix}election/`),
      leader: enc(`${o.prefix}leader`),
      history: enc(`${o.prefix}leader-history`),
      kv: `${o.prefix}kv/`,
      locks: `${o.prefix}locks/`,
      jobs: `${o.prefix}jobs/`,
    };
    this.client = new Etcd3({
      hosts: o.endpoints,
      ...(o.tls?.ca || o.tls?.cert ? { credentials: { rootCertificate: o.tls.ca ?? Buffer.alloc(0), ...(o.tls.key ? { privateKey: o.tls.key } : {}), ...(o.tls.cert ? { certChain: o.tls.cert } : {}) } } : {}),
      ...(o.auth ? { auth: { username: o.auth.username, password: o.auth.password } } : {}),
      // No automatic retries (see the header); watches reconnect quickly.
      faultHandling: { host: () => noop, global: noop, watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }).next() },
    });
    this.watchers = new KeyWatchers((key, fire) => this.openWatch(enc(this.p.kv + key), fire));
  }

  // ---------------------------------------------------------------------------
  // Life cycle

  start(): void {
    if (this.started) return;
    this.started = true;
    this.loop = this.campaignLoop();
    void this.observeLeader();
    void this.presenceLoop();
  }

  heard(name: string): { lastHeardMs: number | null; listenedMs: number } {
    return this.presence.evidence(name);
  }

  /**
   * Reads the election keys about once a second: which members' leases the service
   * holds (common.ts Presence). Keys without a lease are no candidate's (campaignOnce).
   */
  private async presenceLoop(): Promise<void> {
    while (!this.stopped) {
      const t = this.now();
      if (!this.wentBack) {
        try {
          const r = await within(this.lrange({ key: this.p.election, range_end: prefixEnd(this.p.election) }), this.o.requestTimeoutMs);
          if (r && !this.stopped) this.presence.saw(r.kvs.filter((kv) => String(kv.lease) !== '0').map((kv) => kv.value.toString('utf8')));
        } catch {
          /* not answered: the next round reads again */
        }
      }
      const rest = t + PRESENCE_PERIOD_MS - this.now();
      if (rest > 0 && !this.stopped) await sleep(rest);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Off first, then say so in the leader history, then give up the key: the next
    // leader may act only after we stopped, and need not fence us.
    const token = this.gate.electedToken;
    const pending = this.o.fencing?.pending() ?? [];
    this.gate.stop();
    this.o.fencing?.stop();
    if (token > 0) {
      try {
        const ok = await within(this.writeHistory(token, true, pending), Math.min(2000, this.o.requestTimeoutMs));
        if (!ok) this.o.log.warn({ token }, 'etcd: could not record the clean resign; the next leader will fence this node');
      } catch (err) {
        this.o.log.warn({ error: errText(err) }, 'etcd: could not record the clean resign; the next leader will fence this node');
      }
    }
    this.role = 'stopped';
    this.wake?.();
    this.keepAliveStream?.cancel();
    const id = this.leaseId;
    if (id) {
      try {
        await within(this.client.leaseClient.leaseRevoke({ ID: id }), Math.min(2000, this.o.requestTimeoutMs));
      } catch (err) {
        this.o.log.warn({ error: errText(err) }, 'etcd: revoking the election lease failed; the next leader waits for its TTL');
      }
    }
    this.watchers.closeAll();
    // Bounded: cancelling a watch on a dead (black-holed) connection never gets an answer.
    await within(this.leaderWatch?.cancel().catch(() => undefined) ?? Promise.resolve(), 1000);
    await within(this.loop ?? Promise.resolve(), 2000);
    this.client.close();
    // The newest revision seen, on disk before the process ends (bounded: a hung card does not hold the stop).
    await within(this.o.floor?.flush() ?? Promise.resolve(), 2000);
    this.o.floor?.close();
  }

  get active(): boolean {
    return this.gate.active;
  }

  activeLeadership(): Leadership | undefined {
    return this.gate.leadership();
  }

  onActivation(fn: (ev: ActivationEvent) => void): () => void {
    return this.gate.onActivation(fn);
  }

  status(): ExternalStatus {
    return {
      engine: 'etcd',
      role: this.stopped ? 'stopped' : this.role,
      leader: this.leaderName,
      leaderToken: this.leaderToken,
      ...this.gate.view(this.leaseId ? BigInt(this.leaseId).toString(16) : ''),
      endpoints: [...this.o.endpoints],
      ...(this.wentBack ? { refused: this.wentBack } : {}),
      stats: { ...this.stats, windowEnds: this.gate.windowEnds },
    };
  }

  // ---------------------------------------------------------------------------
  // Leadership

  private async campaignLoop(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      if (this.wentBack) {
        // No campaign on a service that went back (the reason is logged and in the status).
        this.role = 'connecting';
        await sleep(1000);
        continue;
      }
      try {
        await this.campaignOnce();
        backoff = 100;
      } catch (err) {
        if (this.stopped) break;
        this.o.log.warn({ error: errText(err) }, 'etcd: campaign interrupted; starting again');
      }
      this.gate.deposed('lease-lost');
      this.o.fencing?.deposed();
      this.role = 'connecting';
      if (this.stopped) break;
      await sleep(backoff);
      backoff = Math.min(1000, backoff * 2);
    }
  }

  /** A retry loop for one step of the campaign: until it succeeds, the lease is lost, or we stop. */
  private async step<T>(what: string, fn: () => Promise<T>, gen: number): Promise<T> {
    let delay = 50;
    for (;;) {
      if (this.stopped) throw new Error('stopped');
      if (this.wentBack) throw new ServiceWentBack(this.wentBack, false);
      if (this.leaseLostFlag || gen !== this.leaseGen) throw new Error('lease lost');
      try {
        const r = await within(fn(), this.o.requestTimeoutMs);
        if (r !== undefined) return r;
        this.o.log.debug({ what }, 'etcd: campaign step timed out; retrying');
      } catch (err) {
        this.o.log.debug({ what, error: errText(err) }, 'etcd: campaign step failed; retrying');
      }
      await sleep(delay);
      delay = Math.min(500, delay * 2);
    }
  }

  private async campaignOnce(): Promise<void> {
    this.stats.elections++;
    this.leaseLostFlag = false;
    const gen = ++this.leaseGen;
    // 1. The lease; its grant answer opens the window (sent at t0).
    const t0 = this.now();
    const grant = await this.step('lease grant', () => this.grantLease(this.o.ttlSec), gen);
    const ttl = rev(grant.TTL);
    if (ttl <= 0) throw new Error('lease granted with TTL 0');
    this.leaseId = grant.ID;
    this.window.answered(t0, ttl * 1000);
    const keepAlive = this.keepAliveLoop(gen);
    let ownWatch: Promise<Watcher> | undefined;
    try {
      // 2. Our election key.
      const myKey = Buffer.concat([this.p.election, enc(BigInt(grant.ID).toString(16))]);
      const put = await this.step('election key', () =>
        this.txn({
          compare: [{ key: myKey, target: 'Create', result: 'Equal', create_revision: 0 }],
          success: [{ request_put: { key: myKey, value: enc(this.o.self.name), lease: grant.ID } }],
          failure: [{ request_range: { key: myKey } }],
        }), gen);
      const myRev = put.succeeded ? rev(put.header.revision) : rev(put.responses[0]!.response_range.kvs[0]?.create_revision);
      if (myRev === 0) throw new Error('election key vanished while it was created');
      this.role = 'candidate';
      // 3. Wait for every earlier candidate to go. A key without a lease is not one: every
      // candidate's key is bound to its lease (step 2); one without would never expire and
      // would keep every node behind it from leading (another program's put, an etcdctl
      // typo). It is passed over, with a warning naming it.
      for (let below = myRev - 1; below > 0; ) {
        const r = await this.step('predecessor', () =>
          this.lrange({ key: this.p.election, range_end: prefixEnd(this.p.election), max_create_revision: below, sort_order: 'Descend', sort_target: 'Create', limit: 1 } as never), gen);
        const pred = r.kvs[0];
        if (!pred) break;
        if (String(pred.lease) === '0') {
          const name = pred.key.toString('utf8');
          if (!this.warnedKeys.has(name)) {
            this.warnedKeys.add(name);
            this.o.log.warn({ key: name }, `etcd: ${name} is in the election but bound to no lease, so no quorumd node wrote it (they all bind theirs): it is not counted as a candidate; delete it (etcdctl del ${name})`);
          }
          below = rev(pred.create_revision) - 1;
          continue;
        }
        this.o.log.debug({ waitingFor: pred.value.toString() }, 'etcd: waiting for the earlier candidate');
        await this.waitDeleted(pred.key, rev(r.header.revision) + 1, gen);
        if (this.leaseLostFlag || this.stopped || gen !== this.leaseGen) throw new Error('lease lost');
      }
      // 4. Win: the leader record, guarded by our key, bound to our lease; and the leader
      // history replaced, guarded by its mod revision as we read it (fencing.ts).
      let win: ITxnResponse | undefined;
      let suspects: Suspect[] = [];
      for (let round = 0; !win; round++) {
        const h = await this.step('leader history', () => this.lrange({ key: this.p.history }), gen);
        const prevKv = h.kvs[0];
        const prev = prevKv ? decodeLeaderHistory(prevKv.value.toString('utf8')) : undefined;
        if (typeof prev === 'string') this.o.log.warn({ error: prev }, 'etcd: the leader history is unreadable: the previous leader is unknown');
        suspects = this.o.fencing?.suspectsAfter(prev) ?? [];
        const record = encodeLeaderHistory({ node: this.o.self.name, id: this.o.self.id, clean: false, suspects: suspectIds(suspects) });
        const r = await this.step('win', () =>
          this.txn({
            compare: [
              { key: myKey, target: 'Create', result: 'Equal', create_revision: myRev },
              prevKv ? { key: this.p.history, target: 'Mod', result: 'Equal', mod_revision: prevKv.mod_revision } : { key: this.p.history, target: 'Create', result: 'Equal', create_revision: 0 },
            ],
            success: [
              { request_put: { key: this.p.leader, value: enc(JSON.stringify({ node: this.o.self.name, id: this.o.self.id })), lease: grant.ID } },
              { request_put: { key: this.p.history, value: enc(record) } },
            ],
            failure: [{ request_range: { key: myKey } }],
          }), gen);
        if (r.succeeded) win = r;
        else if (rev(r.responses[0]?.response_range.kvs[0]?.create_revision) !== myRev) throw new Error('our election key is gone (lease expired)');
        else if (round >= 5) throw new Error('the leader history kept changing while we won');
      }
      let token = rev(win.header.revision);
      this.o.floor?.note(token, 'now');
      this.stats.wins++;
      this.role = 'leader';
      this.noteLeader(this.o.self.name, token);
      this.o.log.info({ token, lease: BigInt(grant.ID).toString(16) }, 'etcd: elected');
      // Our key gone while we hold (the lease revoked or the key deleted from outside: an
      // etcdctl by hand) ends our leadership at once: the next candidate's watch sees
      // the same delete and it may win right away. Watched from the win on, so no
      // delete is missed while the watch is being set up; read again every second in case
      // the watch is lost. Before, a revoke was noticed only at the next keep-alive and a
      // deleted key never (two active leaders until a restart).
      const ownKeyGone = (how: string) => {
        if (this.leaseLostFlag || gen !== this.leaseGen || this.stopped) return;
        this.stats.leasesLost++;
        this.o.log.warn({ key: myKey.toString('utf8'), how }, 'etcd: our election key was deleted (lease revoked or key deleted by another client); switching off and campaigning again');
        this.leaseLostFlag = true;
        this.gate.leaseLost('key-deleted');
        this.wake?.();
      };
      ownWatch = this.client.watch().key(myKey).startRevision(String(token + 1)).only('delete').create();
      ownWatch.then((w) => w.on('delete', () => ownKeyGone('watch')), () => undefined);
      this.o.fencing?.elected(token, suspects);
      this.gate.elected(token);
      // 5. Hold until the lease is lost (keep-alive answers TTL 0), our key is gone, or we
      // stop. Every second (and at once when the leader watch of observeLeader() sees
      // <prefix>leader change under us) read our key and the leader record.
      this.holding = { token, gen };
      while (!this.leaseLostFlag && !this.stopped && gen === this.leaseGen) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 1000).unref?.();
        });
        if (this.leaseLostFlag || this.stopped || gen !== this.leaseGen) break;
        await this.lrange({ key: myKey, count_only: true } as never).then((r) => {
          if (rev(r.count) === 0) ownKeyGone('read');
        }, () => undefined);
        if (this.leaseLostFlag || this.stopped || gen !== this.leaseGen) break;
        token = await this.keepLeaderRecord(myKey, myRev, grant.ID, token, gen, () => ownKeyGone('leader record rewrite'));
        this.holding = { token, gen };
      }
      this.wake = undefined;
    } finally {
      this.holding = undefined;
      void ownWatch?.then((w) => w.cancel(), () => undefined).catch(() => undefined);
      if (gen === this.leaseGen) this.leaseGen++;
      this.keepAliveStream?.cancel();
      await keepAlive;
    }
  }

  /**
   * Renews the lease every keepAliveMs, one request at a time on one stream; each
   * answer pairs with its send time. No answer within keepAliveMs: the stream is
   * cancelled (etcd3 then drops the connection, so a black-holed one is replaced).
   */
  private async keepAliveLoop(gen: number): Promise<void> {
    const id = this.leaseId;
    let pending: ((r: ILeaseKeepAliveResponse | Error) => void) | undefined;
    while (!this.stopped && gen === this.leaseGen && !this.leaseLostFlag) {
      const t = this.now();
      let stream = this.keepAliveStream;
      try {
        if (!stream) {
          const s = await within(this.client.leaseClient.leaseKeepAlive(), this.o.keepAliveMs);
          if (!s) throw new Error('keep-alive stream not opened in time');
          stream = s;
          this.keepAliveStream = s;
          s.on('data', (res) => pending?.(res));
          s.on('error', (err) => {
            pending?.(err);
            if (this.keepAliveStream === s) this.keepAliveStream = undefined;
          });
          s.on('end', () => {
            if (this.keepAliveStream === s) this.keepAliveStream = undefined;
          });
        }
        const answer = await new Promise<ILeaseKeepAliveResponse | Error | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), this.o.keepAliveMs);
          timer.unref?.();
          pending = (r) => {
            clearTimeout(timer);
            resolve(r);
          };
          stream!.write({ ID: id });
        });
        pending = undefined;
        if (answer === undefined || answer instanceof Error) {
          this.stats.renewalFailures++;
          if (this.keepAliveStream === stream) this.keepAliveStream = undefined;
          stream.cancel();
          this.o.log.debug({ error: answer ? errText(answer) : 'no answer in time' }, 'etcd: lease renewal failed');
        } else if (rev(answer.TTL) <= 0) {
          this.stats.leasesLost++;
          this.o.log.warn({ lease: BigInt(id).toString(16) }, 'etcd: the lease expired on the server; campaigning again');
          this.leaseLostFlag = true;
          this.gate.leaseLost('lease-lost');
          this.wake?.();
          break;
        } else {
          this.stats.renewals++;
          this.window.answered(t, rev(answer.TTL) * 1000);
          this.gate.renewed();
        }
      } catch (err) {
        this.stats.renewalFailures++;
        this.o.log.debug({ error: errText(err) }, 'etcd: lease renewal failed');
      }
      const rest = t + this.o.keepAliveMs - this.now();
      if (rest > 0) await sleep(rest);
    }
  }

  /** Resolves when `key` is deleted (watch from `fromRev`), the lease is lost, we stop, or after a re-check period. */
  private async waitDeleted(key: Buffer, fromRev: number, gen: number): Promise<void> {
    let w: Watcher | undefined;
    try {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // Re-check now and then even if the watch says nothing (a watch lost during a reconnect).
        setTimeout(resolve, Math.max(500, this.o.keepAliveMs * 2)).unref?.();
        this.client
          .watch()
          .key(key)
          .startRevision(String(fromRev))
          .only('delete')
          .create()
          .then(
            (watcher) => {
              w = watcher;
              if (this.stopped || gen !== this.leaseGen) return resolve();
              watcher.on('delete', () => resolve());
              watcher.on('error', () => resolve());
            },
            () => resolve(),
          );
      });
    } finally {
      this.wake = undefined;
      void w?.cancel().catch(() => undefined);
    }
  }

  private noteLeader(name: string | null, token: number): void {
    if (name !== this.leaderName || token !== this.leaderToken) {
      if (name !== null && token !== this.leaderToken) this.stats.leaderChanges++;
      this.leaderName = name;
      this.leaderToken = token;
    }
  }

  /**
   * <prefix>leader as our win (or our last rewrite) left it — its mod revision is still
   * our token — or else written again. Another client may overwrite or delete it
   * (`etcdctl put <prefix>leader garbage`, a script with the wrong prefix, another
   * node's record pasted by hand). Before, the leader went on as if nothing happened:
   * every node's /v1/leader showed no leader (or the wrong one) and this leader's job
   * claims, which compare the record's mod revision with the token, were all refused —
   * until a restart.
   *
   * Why rewriting is safe, rather than switching off: leadership is our election key,
   * not the record. The record is only written by a transaction that compares our key
   * with the create revision it won with (as the win itself), so it succeeds only while
   * our key — and so our lease, and our place as the oldest candidate — still exists:
   * no other node can be elected while it does (a later candidate's key has a larger
   * create revision and waits for ours to go). The rewrite's revision is our new token:
   * it is larger than the old one (revisions only grow) and smaller than any later
   * leader's (whose win comes after our key is gone, so after this write). Tokens still
   * only grow, and a write guarded by the old token (a job claim under way) is refused,
   * as it would be after any leader change. The gate goes inactive with the old token
   * and active with the new one, so hooks and jobs learn the new token. Switching off
   * instead would also be safe (off first, then give up the key, as a stop does), but it
   * moves leadership to another board for a fault that is not this board's — with
   * STONITH it would even be fenced, since its clean resign is guarded by the very
   * record that was overwritten.
   *
   * Resolves with the token now held (the old one when nothing was rewritten or the read
   * failed: tried again next round).
   */
  private async keepLeaderRecord(myKey: Buffer, myRev: number, leaseId: string, token: number, gen: number, keyGone: () => void): Promise<number> {
    let cur: IKeyValue | undefined;
    try {
      cur = (await this.lrange({ key: this.p.leader })).kvs[0];
    } catch {
      return token;
    }
    if (cur && rev(cur.mod_revision) === token) return token;
    if (this.leaseLostFlag || this.stopped || gen !== this.leaseGen) return token;
    const found = cur ? JSON.stringify(cur.value.toString('utf8').slice(0, 80)) : 'nothing (deleted)';
    let r: ITxnResponse;
    try {
      r = await this.txn({
        compare: [{ key: myKey, target: 'Create', result: 'Equal', create_revision: myRev }],
        success: [{ request_put: { key: this.p.leader, value: enc(JSON.stringify({ node: this.o.self.name, id: this.o.self.id })), lease: leaseId } }],
        failure: [],
      });
    } catch (err) {
      this.o.log.warn({ error: errText(err) }, `etcd: ${this.p.leader.toString('utf8')} was changed by another client; rewriting it failed, trying again`);
      return token;
    }
    if (!r.succeeded) {
      keyGone();
      return token;
    }
    const next = rev(r.header.revision);
    this.o.log.warn(
      { key: this.p.leader.toString('utf8'), found, token: next, was: token },
      `etcd: ${this.p.leader.toString('utf8')} was overwritten or deleted by another client (it held ${found}); this node still holds the oldest election key, so it wrote its leader record again: new token ${next} (was ${token}). Only quorumd should write under ${this.o.prefix}`,
    );
    this.stats.leaderRewrites++;
    this.o.floor?.note(next, 'now');
    this.o.fencing?.retoken(token, next);
    this.noteLeader(this.o.self.name, next);
    this.gate.elected(next);
    return next;
  }

  /**
   * Rewrites the leader history as leader `token`: `clean` on a resign, and the suspects
   * not cleared yet. Guarded by our leadership (<prefix>leader still has our token as its
   * mod revision): once we lost it, nothing is written. Resolves true when written.
   */
  private async writeHistory(token: number, clean: boolean, suspects: Suspect[]): Promise<boolean> {
    const record = encodeLeaderHistory({ node: this.o.self.name, id: this.o.self.id, clean, suspects: suspectIds(suspects) });
    const r = await this.txn({
      compare: [{ key: this.p.leader, target: 'Mod', result: 'Equal', mod_revision: token }],
      success: [{ request_put: { key: this.p.history, value: enc(record) } }],
      failure: [],
    });
    if (r.succeeded) this.o.log.info({ token, clean, suspects: suspectIds(suspects).join(',') }, 'etcd: leader history written');
    return r.succeeded;
  }

  /** Every node follows <prefix>leader for /v1/leader (the watch reconnects by itself). */
  private async observeLeader(): Promise<void> {
    let delay = 100;
    while (!this.stopped) {
      try {
        const r = await this.lrange({ key: this.p.leader });
        const kv = r.kvs[0];
        this.setLeaderFrom(kv);
        const w = await this.client.watch().key(this.p.leader).startRevision(String(rev(r.header.revision) + 1)).create();
        this.leaderWatch = w;
        if (this.stopped) {
          await w.cancel();
          return;
        }
        w.on('put', (kv) => {
          this.setLeaderFrom(kv);
          this.leaderRecordChanged(rev(kv.mod_revision));
        });
        w.on('delete', () => {
          this.noteLeader(null, 0);
          this.leaderRecordChanged(0);
        });
        w.on('connected', () => {
          // After a reconnect the watch resumes from its last revision; a read keeps the view honest anyway.
          void this.lrange({ key: this.p.leader }).then((x) => this.setLeaderFrom(x.kvs[0]), () => undefined);
        });
        return;
      } catch (err) {
        if (this.stopped) return;
        this.o.log.debug({ error: errText(err) }, 'etcd: reading the leader record failed; retrying');
        await sleep(delay);
        delay = Math.min(2000, delay * 2);
      }
    }
  }

  /** The leader record changed to mod revision `modRev` (0: deleted): while we hold, one not ours wakes the hold loop (keepLeaderRecord). */
  private leaderRecordChanged(modRev: number): void {
    const h = this.holding;
    if (h && h.gen === this.leaseGen && modRev !== h.token) this.wake?.();
  }

  private setLeaderFrom(kv: IKeyValue | undefined): void {
    if (!kv) return this.noteLeader(null, 0);
    const rec = decodeLeaderRecord(kv.value.toString('utf8'));
    this.noteLeader(rec?.node ?? null, rec ? rev(kv.mod_revision) : 0);
  }

  // ---------------------------------------------------------------------------
  // Requests

  /**
   * Runs `fn` with the request timeout; a call that was not sent is retried (bounded)
   * on the next endpoint. Errors become 503 (not applied) or, for writes, 504.
   */
  private run<T>(write: boolean, what: string, cb: ClientCallback, fn: () => Promise<T>, then: (v: T) => ClientResult | Promise<ClientResult>): void {
    this.stats.requests++;
    if (this.stopped) return cb({ status: Status.UNAVAILABLE, error: 'node is stopping' });
    if (this.wentBack) return cb({ status: Status.UNAVAILABLE, error: `${what}: refused: ${this.wentBack}` });
    const answer = answerOnce(cb, this.o.requestTimeoutMs, () => {
      this.stats.requestErrors++;
      return write
        ? { status: Status.UNKNOWN, error: `${what}: etcd did not answer within ${this.o.requestTimeoutMs} ms; the write may or may not be applied` }
        : { status: Status.UNAVAILABLE, error: `${what}: etcd did not answer within ${this.o.requestTimeoutMs} ms` };
    });
    const attempt = async (left: number): Promise<void> => {
      try {
        const v = await fn();
        answer(await then(v));
      } catch (err) {
        if (err instanceof ServiceWentBack) {
          this.stats.requestErrors++;
          if (write && err.sent) return answer({ status: Status.UNKNOWN, error: `${what}: refused: ${err.message}. This write reached that etcd and may be applied there` });
          return answer({ status: Status.UNAVAILABLE, error: `${what}: refused: ${err.message}` });
        }
        if (notApplied(err) && left > 0 && !this.stopped && /ECONNREFUSED|No connection established|failed to connect/i.test(errText(err))) {
          await sleep(20);
          return attempt(left - 1);
        }
        this.stats.requestErrors++;
        if (!write || notApplied(err)) answer({ status: Status.UNAVAILABLE, error: `${what}: etcd: ${errText(err)}` });
        else answer({ status: Status.UNKNOWN, error: `${what}: etcd: ${errText(err)}; the write may or may not be applied` });
      }
    };
    void attempt(this.o.endpoints.length * 2);
  }

  private kvKey(key: string): Buffer {
    return enc(this.p.kv + key);
  }

  /**
   * A range, serializable when `stale` — but never older than what this node already
   * saw. Each call goes to a member picked at random, and a serializable range is
   * answered from that member's own copy, which may not have applied the newest
   * writes yet: two stale reads in a row could go back in time, and a node's own
   * write could be missing from its next stale read. A node's service catalog reads
   * the change index and then the instances (services/registry.ts): from a lagging
   * member the instances could miss a change the index already counts, and a blocking
   * watch from that index would then wait for the next change instead of reporting
   * this one. So every answer's header revision raises a floor, and a serializable
   * answer below the floor is read again linearizably (a linearizable range is at
   * least as new as every answer before it) — stale reads stay local in the common
   * case and are monotonic always.
   */
  private async range(req: Parameters<Etcd3['kv']['range']>[0], stale: boolean): Promise<IRangeResponse> {
    if (!stale) return this.lrange(req);
    this.refuseIfWentBack();
    const floor = this.revisionFloor;
    const r = await this.client.kv.range({ ...req, serializable: true });
    if (rev(r.header.revision) < floor) {
      this.staleRereads++;
      return this.lrange(req);
    }
    return this.noteRevision(r);
  }

  /*
   * Linearizable calls, checked against the revision floor. A linearizable range, a
   * transaction and a lease grant are answered with a header revision at least as new
   * as everything committed before the call was sent — so at least the floor as it was
   * then (every revision that raised it had been committed when its answer or watch
   * event reached us). An answer below that means the service went back: wiped and
   * created anew, or restored from an older backup. Its revisions, and so leader
   * tokens, lock tokens and KV indexes, would then repeat ones given out before.
   */

  private async txn(req: Parameters<Etcd3['kv']['txn']>[0]): Promise<ITxnResponse> {
    this.refuseIfWentBack();
    const floor = this.revisionFloor;
    return this.checkNotBack(floor, await this.client.kv.txn(req));
  }

  private async lrange(req: Parameters<Etcd3['kv']['range']>[0]): Promise<IRangeResponse> {
    this.refuseIfWentBack();
    const floor = this.revisionFloor;
    return this.checkNotBack(floor, await this.client.kv.range({ ...req, serializable: false }));
  }

  private async grantLease(ttlSec: number): Promise<Awaited<ReturnType<Etcd3['leaseClient']['leaseGrant']>>> {
    this.refuseIfWentBack();
    const floor = this.revisionFloor;
    return this.checkNotBack(floor, await this.client.leaseClient.leaseGrant({ TTL: ttlSec }));
  }

  private checkNotBack<T extends { header: { revision: string } }>(floor: number, r: T): T {
    const got = rev(r.header.revision);
    if (got < floor) this.wentBackTo(floor, got);
    this.raiseFloor(got);
    return r;
  }

  /** Nothing more is sent to a service that went back (its reason, 503). */
  private refuseIfWentBack(): void {
    if (this.wentBack) throw new ServiceWentBack(this.wentBack, false);
  }

  /** The service answered revision `got` after showing `floor`: stop leading and serving, for good (a restart too, while the floor file is kept). */
  private wentBackTo(floor: number, got: number): never {
    if (!this.wentBack) {
      this.wentBack =
        `etcd answered with revision ${got} after it had shown this node revision ${floor}: the etcd cluster at ${this.o.endpoints.join(', ')} was wiped and created anew or restored from an older backup. ` +
        `Its revisions now repeat ones it gave out before, so leader tokens, lock tokens and KV indexes from it could go backwards: ${wentBackAdvice('etcd', floor, this.o.floor?.file)}`;
      this.o.log.error({ floor, revision: got, ...(this.o.floor ? { file: this.o.floor.file } : {}) }, this.wentBack);
      // A restart must refuse just the same: the floor this answer was checked against is written now.
      this.o.floor?.note(this.revisionFloor, 'now');
      void this.o.floor?.flush();
      this.leaseLostFlag = true;
      this.gate.leaseLost('service-went-back');
      this.gate.deposed('service-went-back');
      this.o.fencing?.deposed();
      this.wake?.();
    }
    throw new ServiceWentBack(this.wentBack, true);
  }

  /** Raises the revision floor of stale reads to an answer's header revision. */
  private noteRevision<T extends { header: { revision: string } }>(r: T): T {
    this.raiseFloor(rev(r.header.revision));
    return r;
  }

  private raiseFloor(revision: number): void {
    if (revision > this.revisionFloor) {
      this.revisionFloor = revision;
      this.o.floor?.note(revision, 'later');
    }
  }

  get(key: string, opts: { stale: boolean }, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'del', key });
    if (bad) return cb(bad);
    this.run(false, 'get', cb, () => this.range({ key: this.kvKey(key) }, opts.stale), (r: IRangeResponse) => {
      const kv = r.kvs[0];
      if (!kv) return { status: Status.NOT_FOUND, index: 0, error: `key ${JSON.stringify(key)} not found` };
      return { status: Status.OK, value: new Uint8Array(kv.value), index: rev(kv.mod_revision) };
    });
  }

  list(prefix: string, opts: { stale: boolean }, cb: (r: { status: number; entries?: Array<{ key: string; value: Uint8Array; index: number }>; error?: string }) => void): void {
    const from = this.kvKey(prefix);
    this.run(false, 'list', (r) => cb(r as never), () => this.range({ key: from, range_end: prefixEnd(from) }, opts.stale), (r: IRangeResponse) => {
      const entries = r.kvs.map((kv) => ({ key: kv.key.toString('utf8').slice(this.p.kv.length), value: new Uint8Array(kv.value), index: rev(kv.mod_revision) }));
      return { status: Status.OK, entries } as ClientResult;
    });
  }

  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'put', key, value, ...(opts.cas !== undefined ? { cas: opts.cas } : {}) });
    if (bad) return cb(bad);
    this.casWrite('put', key, opts.cas, { request_put: { key: this.kvKey(key), value: Buffer.from(value) } }, cb);
  }

  del(key: string, opts: { cas?: number }, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'del', key, ...(opts.cas !== undefined ? { cas: opts.cas } : {}) });
    if (bad) return cb(bad);
    this.casWrite('delete', key, opts.cas, { request_delete_range: { key: this.kvKey(key) } }, cb);
  }

  /** put/delete, unconditionally or as a transaction on the key's mod revision (cas 0 = absent). */
  private casWrite(what: string, key: string, cas: number | undefined, op: IRequestOp, cb: ClientCallback): void {
    const k = this.kvKey(key);
    const compare: ICompare[] = cas === undefined ? [] : cas === 0 ? [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }] : [{ key: k, target: 'Mod', result: 'Equal', mod_revision: cas }];
    this.run(true, what, cb, () => this.txn({ compare, success: [op], failure: [{ request_range: { key: k } }] }), (r: ITxnResponse) => {
      if (r.succeeded) return { status: Status.OK, index: rev(r.header.revision) };
      const cur = r.responses[0]?.response_range.kvs[0];
      const index = cur ? rev(cur.mod_revision) : 0;
      return { status: Status.CONFLICT, index, error: `${what}: compare-and-set failed: the key's index is ${index}, not ${cas}` };
    });
  }

  // Locks: <prefix>locks/<name> = {owner, ttlMs, digest, etcdLease}, bound to an etcd lease of the lock's TTL.

  private lockKey(name: string): Buffer {
    return enc(this.p.locks + name);
  }

  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'lock.acquire', name, owner, ttlMs, now: 0 });
    if (bad) return cb(bad);
    const digest = leaseHex(lease);
    if (typeof digest !== 'string') return cb(digest);
    const ttlSec = Math.max(1, Math.ceil(ttlMs / 1000));
    const k = this.lockKey(name);
    let granted = '';
    this.run(true, 'lock acquire', cb, async () => {
      const g = await this.grantLease(ttlSec);
      granted = g.ID;
      return this.txn({
        compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: k, value: enc(JSON.stringify({ owner, ttlMs: rev(g.TTL) * 1000, digest, etcdLease: g.ID })), lease: g.ID } }],
        failure: [{ request_range: { key: k } }],
      });
    }, async (r: ITxnResponse) => {
      if (r.succeeded) {
        // A new grant's token is the newest revision: kept on disk soon (floor-file.ts).
        this.o.floor?.note(rev(r.header.revision), 'soon');
        return { status: Status.OK, token: rev(r.header.revision), ttlMs: ttlSec * 1000 };
      }
      // Not ours: the fresh lease is not needed (it would expire by itself anyway).
      void this.client.leaseClient.leaseRevoke({ ID: granted }).catch(() => undefined);
      const cur = r.responses[0]?.response_range.kvs[0];
      if (!cur) return { status: Status.CONFLICT, error: `lock ${name}: changed while acquiring; try again` };
      const g = decodeLockGrant(name, cur.value.toString('utf8'));
      if (typeof g === 'string') return { status: Status.CONFLICT, error: g };
      const token = rev(cur.create_revision);
      // Only the same lease id (a retry of the same request after a 504) is the holder asking again.
      if (g.owner !== owner || g.digest !== digest) return { status: Status.CONFLICT, holder: g.owner, token, error: `lock ${name} is held by ${g.owner}` };
      const ttl = await this.keepAliveOnce(g.etcdLease ?? '0');
      if (ttl <= 0) return { status: Status.CONFLICT, error: `lock ${name}: the grant's lease just expired; try again` };
      return { status: Status.OK, token, ttlMs: ttl * 1000 };
    });
  }

  /** One keep-alive of a lock's lease: its TTL in seconds, 0 if the lease is gone. */
  private async keepAliveOnce(id: string): Promise<number> {
    const s = await this.client.leaseClient.leaseKeepAlive();
    try {
      const res = await new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
        s.on('data', resolve);
        s.on('error', reject);
        s.write({ ID: id });
      });
      return rev(res.TTL);
    } finally {
      s.end();
    }
  }

  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'lock.renew', name, token: 1, now: 0 });
    if (bad) return cb(bad);
    const digest = leaseHex(lease);
    if (typeof digest !== 'string') return cb(digest);
    this.run(true, 'lock renew', cb, () => this.lrange({ key: this.lockKey(name) }), async (r: IRangeResponse) => {
      const cur = r.kvs[0];
      const g = cur ? decodeLockGrant(name, cur.value.toString('utf8')) : undefined;
      if (!cur || g === undefined || typeof g === 'string' || g.digest !== digest) return { status: Status.CONFLICT, error: `lock ${name} is not held with that lease` };
      const ttl = await this.keepAliveOnce(g.etcdLease ?? '0');
      if (ttl <= 0) return { status: Status.CONFLICT, error: `lock ${name} is not held with that lease (it expired)` };
      return { status: Status.OK, token: rev(cur.create_revision), ttlMs: ttl * 1000 };
    });
  }

  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'lock.release', name, token: 1 });
    if (bad) return cb(bad);
    const digest = leaseHex(lease);
    if (typeof digest !== 'string') return cb(digest);
    const k = this.lockKey(name);
    this.run(true, 'lock release', cb, async () => {
      const r = await this.lrange({ key: k });
      const cur = r.kvs[0];
      const g = cur ? decodeLockGrant(name, cur.value.toString('utf8')) : undefined;
      if (!cur || g === undefined || typeof g === 'string' || g.digest !== digest) return { status: Status.CONFLICT, error: `lock ${name} is not held with that lease` } as ClientResult;
      // Delete only this grant (its create revision), not a later one made meanwhile.
      const t = await this.txn({
        compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: cur.create_revision }],
        success: [{ request_delete_range: { key: k } }],
        failure: [],
      });
      if (!t.succeeded) return { status: Status.CONFLICT, error: `lock ${name} is not held with that lease` } as ClientResult;
      if (g.etcdLease) void this.client.leaseClient.leaseRevoke({ ID: g.etcdLease }).catch(() => undefined);
      return { status: Status.OK } as ClientResult;
    }, (r) => r);
  }

  // Jobs: <prefix>jobs/<name> = {claim, result}.

  jobRecordLocation(job: string): string {
    return `etcd key ${this.p.jobs + job}`;
  }

  private jobKey(job: string): Buffer {
    return enc(this.p.jobs + job);
  }

  private readJob(job: string, kv: IKeyValue | undefined): ClaimedJobRecord | undefined | string {
    if (!kv) return undefined;
    const rec = decodeJobRecord(job, kv.value.toString('utf8'));
    if (typeof rec !== 'string') this.jobs.set(job, rec);
    return rec;
  }

  jobClaim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'job.claim', job, slot, node: this.o.self.id, term: Math.max(1, lead.term), token: Math.max(1, lead.token) });
    if (bad) return cb(bad);
    const k = this.jobKey(job);
    this.run(true, 'job claim', cb, async () => {
      // Read, then write if unchanged and we still lead with this token (bounded retries on a concurrent change).
      for (let i = 0; i < 3; i++) {
        const r = await this.lrange({ key: k });
        const cur = this.readJob(job, r.kvs[0]);
        if (typeof cur === 'string') return { status: Status.CONFLICT, error: cur } as ClientResult;
        if (cur && cur.claim.slot >= slot) return { status: Status.CONFLICT, holder: String(cur.claim.node), error: `slot already claimed (slot ${isoUtc(cur.claim.slot)}, token ${cur.claim.token})` } as ClientResult;
        const modRev = r.kvs[0] ? rev(r.kvs[0].mod_revision) : 0;
        const next = (index: number): ClaimedJobRecord => ({ name: job, claim: { slot, node: this.o.self.id, term: lead.term, token: lead.token, index }, result: cur?.result ?? null });
        // The claim's index is the revision of this write; the stored copy names the leader token instead (known before the write).
        const t = await this.txn({
          compare: [
            modRev === 0 ? { key: k, target: 'Create', result: 'Equal', create_revision: 0 } : { key: k, target: 'Mod', result: 'Equal', mod_revision: modRev },
            { key: this.p.leader, target: 'Mod', result: 'Equal', mod_revision: lead.token },
          ],
          success: [{ request_put: { key: k, value: enc(encodeJobRecord(next(lead.token))) } }],
          failure: [{ request_range: { key: this.p.leader } }],
        });
        if (t.succeeded) {
          this.jobs.set(job, next(rev(t.header.revision)));
          return { status: Status.OK, index: rev(t.header.revision) } as ClientResult;
        }
        const leader = t.responses[0]?.response_range.kvs[0];
        if (!leader || rev(leader.mod_revision) !== lead.token) {
          return { status: Status.CONFLICT, error: `not granted: this node no longer leads with token ${lead.token}` } as ClientResult;
        }
      }
      return { status: Status.CONFLICT, error: 'not granted: the job record kept changing' } as ClientResult;
    }, (r) => r);
  }

  jobDone(rep: JobReport, cb: ClientCallback): void {
    const bad = checkCommand({ op: 'job.done', job: rep.job, slot: rep.slot, node: this.o.self.id, outcome: rep.outcome, code: rep.code, signal: rep.signal, startedAtMs: rep.startedAtMs, durationMs: rep.durationMs });
    if (bad) return cb(bad);
    const k = this.jobKey(rep.job);
    this.run(true, 'job done', cb, async () => {
      for (let i = 0; i < 3; i++) {
        const r = await this.lrange({ key: k });
        const cur = this.readJob(rep.job, r.kvs[0]);
        if (cur === undefined || typeof cur === 'string') return { status: Status.CONFLICT, error: typeof cur === 'string' ? cur : `job ${rep.job} has no claim` } as ClientResult;
        if (cur.claim.slot !== rep.slot) return { status: Status.CONFLICT, error: `job ${rep.job}: the claimed slot is another one` } as ClientResult;
        const modRev = rev(r.kvs[0]!.mod_revision);
        const rec: ClaimedJobRecord = { ...cur, result: { slot: rep.slot, node: this.o.self.id, outcome: rep.outcome, code: rep.code, signal: rep.signal, startedAtMs: rep.startedAtMs, durationMs: rep.durationMs, index: modRev + 1 } };
        const t = await this.txn({
          compare: [{ key: k, target: 'Mod', result: 'Equal', mod_revision: modRev }],
          success: [{ request_put: { key: k, value: enc(encodeJobRecord(rec)) } }],
          failure: [],
        });
        if (t.succeeded) {
          this.jobs.set(rep.job, rec);
          return { status: Status.OK, index: rev(t.header.revision) } as ClientResult;
        }
      }
      return { status: Status.CONFLICT, error: `job ${rep.job}: the record kept changing` } as ClientResult;
    }, (r) => r);
  }

  /** The cached record; a read of it goes out (at most once a second per job), so the next call has the service's copy. */
  jobRecord(job: string): ClaimedJobRecord | undefined {
    const now = this.now();
    if (!this.stopped && !this.wentBack && now - (this.jobReadAt.get(job) ?? -Infinity) >= 1000) {
      this.jobReadAt.set(job, now);
      this.client.kv.range({ key: this.jobKey(job), serializable: true }).then((r) => void this.readJob(job, r.kvs[0]), () => undefined);
    }
    return this.jobs.get(job);
  }

  // Watches: one etcd watch per watched key, shared by its listeners.

  onKeyChange(key: string, fn: () => void): () => void {
    return this.watchers.add(key, fn);
  }

  private openWatch(key: Buffer, fire: () => void): () => void {
    let closed = false;
    let w: Watcher | undefined;
    this.client
      .watch()
      .key(key)
      .create()
      .then(
        (watcher) => {
          if (closed) return void watcher.cancel().catch(() => undefined);
          w = watcher;
          // A change seen here is a revision our next stale read must not be older than.
          watcher.on('put', (kv) => {
            this.raiseFloor(rev(kv.mod_revision));
            fire();
          });
          watcher.on('delete', (kv) => {
            this.raiseFloor(rev(kv.mod_revision));
            fire();
          });
          // Reconnected after a gap: the key may have changed meanwhile.
          watcher.on('connected', () => fire());
        },
        (err) => this.o.log.debug({ error: errText(err) }, 'etcd: watch not created'),
      );
    return () => {
      closed = true;
      void w?.cancel().catch(() => undefined);
    };
  }
}
