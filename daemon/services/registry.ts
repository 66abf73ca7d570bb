/**
 * Service discovery on the replicated KV: one ServiceRegistry per node, over the
 * node's own client API (any log engine's runtime, or the etcd/ZooKeeper engine), so
 * the catalog is as consistent as the KV and the KV's quotas and API credentials
 * apply to it too. catalog.ts has the records and keys.
 *
 * Who does what:
 *  - Registering: any node takes a registration; that node owns the instance: it runs
 *    the instance's check (checks.ts) and writes the instance's health when it
 *    changes, and it takes the TTL heartbeats (`PUT .../pass`).
 *  - Liveness of the owner: a node that owns instances renews its liveness record
 *    `_quorumd/svc/n/<node>` every nodeTtlMs / 3. The active leader (only it: the one
 *    node that acts) watches those records on its own monotonic clock: a node whose
 *    record did not change for nodeTtlMs — measured from when this leader first saw
 *    it, so a new leader waits a full TTL before judging anyone, and counting only the
 *    time this process ran (notStill) — is gone, and the
 *    leader deletes its instances (each by compare-and-set on the index it saw, so an
 *    instance registered again meanwhile stays). So a crashed node's instances vanish
 *    nodeTtlMs (plus at most one renewal and one reaper period) after its last
 *    renewal, and never stay behind; a node that comes back within the TTL keeps them.
 *  - Change notification: after every change the writer bumps `_quorumd/svc/index`;
 *    blocking watches wait for its index to pass theirs (the KV watch), and every
 *    node's cache (for DNS and mDNS) re-reads on it.
 *
 * Writes are the KV's: 503/504 from the node pass through as they are (504 = may or
 * may not be applied). The record and the index bump are two writes: a watcher wakes
 * on the bump; a bump lost to a crash is made up by the next change.
 */
import type { ClientCallback, ClientResult } from '../runtime/results.ts';
import type { Leadership } from '../jobs/coordinator.ts';
import { CatalogError, decodeInstance, encodeInstance, INDEX_KEY, INSTANCE_PREFIX, instanceKey, matches, NODE_PREFIX, nodeKey, type Health, type InstanceDef, type InstanceRecord, type InstanceView } from './catalog.ts';
import { probe } from './checks.ts';

export interface ListEntry {
  key: string;
  value: Uint8Array;
  index: number;
}
export type ListCallback = (r: { status: number; entries?: ListEntry[]; error?: string }) => void;

/** What the registry needs of a node: its KV, a prefix listing, key watches, and whether it leads. */
export interface KvPort {
  get(key: string, opts: { stale: boolean }, cb: ClientCallback): void;
  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void;
  del(key: string, opts: { cas?: number }, cb: ClientCallback): void;
  list(prefix: string, opts: { stale: boolean }, cb: ListCallback): void;
  onKeyChange?(key: string, fn: () => void): () => void;
  activeLeadership(): Leadership | undefined;
}

export interface RegistryLog {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface RegistryOptions {
  /** This node's member name. */
  self: string;
  /** An owner node silent this long loses its instances, ms. */
  nodeTtlMs: number;
  /** Script checks allowed on this node (config services.scriptChecks). */
  scriptChecks: boolean;
  log: RegistryLog;
  /** Environment for script checks (QUORUMD_NODE...). */
  env?: Record<string, string>;
  /** Monotonic ms. Default performance.now(). */
  now?: () => number;
}

/** An error with the HTTP status to answer (400 bad input, 403, 404, 409, 503, 504...). */
export class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Catalog {
  index: number;
  instances: InstanceView[];
}

const enc = (s: string) => new TextEncoder().encode(s);
const pcall = (f: (cb: ClientCallback) => void): Promise<ClientResult> => new Promise((resolve) => f(resolve));

function fail(r: ClientResult, what: string): ServiceError {
  const code = r.status === 503 ? 'unavailable' : r.status === 504 ? 'outcome-unknown' : r.status === 507 ? 'quota-exceeded' : r.status === 409 ? 'conflict' : r.status === 413 ? 'too-large' : 'error';
  return new ServiceError(r.status, code, `${what}: ${r.error ?? `status ${r.status}`}`);
}

/** The check runner of one instance this node owns. */
class Owned {
  timer: NodeJS.Timeout | undefined;
  lastBeat: number;
  health: Health;
  output: string;
  probing = false;
  stopped = false;

  constructor(
    readonly key: string,
    readonly rec: InstanceRecord,
    now: number,
  ) {
    this.lastBeat = now;
    this.health = rec.health;
    this.output = rec.output;
  }
}

/** How often the active leader's reaper looks at the liveness records, ms. */
const reapPeriodMs = (nodeTtlMs: number): number => Math.max(100, Math.floor(nodeTtlMs / 4));

export class ServiceRegistry {
  private readonly own = new Map<string, Owned>();
  private readonly now: () => number;
  private renewTimer: NodeJS.Timeout | undefined;
  private reapTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly seen = new Map<string, { index: number; at: number }>();
  /** Monotonic ms of the reaper's last pass (NaN before the first). */
  private reapedAt = NaN;
  private renewals = 0;
  private stopped = false;
  private cache: Catalog = { index: 0, instances: [] };
  private readonly changeListeners = new Set<(c: Catalog) => void>();
  /** Counters for /metrics and tests; `reapPasses`: reaper passes completed (as the active leader or not). */
  readonly stats = { registered: 0, deregistered: 0, reaped: 0, healthChanges: 0, renewals: 0, reapPasses: 0 };

  constructor(
    private readonly kv: KvPort,
    private readonly o: RegistryOptions,
  ) {
    if (!(o.nodeTtlMs >= 300)) throw new RangeError(`nodeTtlMs must be ≥ 300, got ${o.nodeTtlMs}`);
    this.now = o.now ?? (() => performance.now());
  }

  // ---------------------------------------------------------------------------
  // Life cycle

  /** Resumes this node's own instances (after a restart), starts renewing, reaping and caching. */
  start(): void {
    this.unwatch = this.kv.onKeyChange?.(INDEX_KEY, () => void this.refresh());
    const tickRefresh = () => {
      if (this.stopped) return;
      void this.refresh();
      this.refreshTimer = setTimeout(tickRefresh, Math.max(1000, this.o.nodeTtlMs / 2));
      this.refreshTimer.unref?.();
    };
    tickRefresh();
    const renew = () => {
      if (this.stopped) return;
      void this.renew();
      this.renewTimer = setTimeout(renew, Math.max(100, Math.floor(this.o.nodeTtlMs / 3)));
      this.renewTimer.unref?.();
    };
    const reap = () => {
      if (this.stopped) return;
      this.notStill(reapPeriodMs(this.o.nodeTtlMs));
      void this.reap().finally(() => this.stats.reapPasses++);
      this.reapTimer = setTimeout(reap, reapPeriodMs(this.o.nodeTtlMs));
      this.reapTimer.unref?.();
    };
    void this.resume().finally(() => {
      renew();
      reap();
    });
  }

  /** Stops checks and timers. The instances stay: a restart within nodeTtlMs keeps them; otherwise the leader removes them. */
  stop(): void {
    this.stopped = true;
    for (const t of [this.renewTimer, this.reapTimer, this.refreshTimer]) if (t) clearTimeout(t);
    this.unwatch?.();
    for (const o of this.own.values()) this.stopOwned(o);
    this.own.clear();
    this.changeListeners.clear();
  }

  private async resume(): Promise<void> {
    for (let attempt = 0; attempt < 50 && !this.stopped; attempt++) {
      try {
        const c = await this.list({ stale: false });
        for (const v of c.instances) if (v.node === this.o.self && !this.own.has(instanceKey(v.name, v.instance))) this.adopt(v);
        if (this.own.size) this.o.log.info({ instances: this.own.size }, 'services: resumed the checks of this node\'s instances');
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200).unref?.());
      }
    }
  }

  // ---------------------------------------------------------------------------
  // Reads

  /** The catalog: every instance with its index, and the catalog's index (read first, so a watch from it misses nothing). */
  async list(opts: { stale: boolean }): Promise<Catalog> {
    const ix = await pcall((cb) => this.kv.get(INDEX_KEY, opts, cb));
    if (ix.status !== 200 && ix.status !== 404) throw fail(ix, 'services');
    const entries = await new Promise<ListEntry[]>((resolve, reject) =>
      this.kv.list(INSTANCE_PREFIX, opts, (r) => (r.status === 200 ? resolve(r.entries ?? []) : reject(fail({ status: r.status, ...(r.error ? { error: r.error } : {}) }, 'services')))),
    );
    const instances: InstanceView[] = [];
    for (const e of entries) {
      const rec = decodeInstance(e.key, e.value);
      if (rec) instances.push({ ...rec, index: e.index });
    }
    instances.sort((a, b) => a.name.localeCompare(b.name) || a.instance.localeCompare(b.instance));
    return { index: ix.index ?? 0, instances };
  }

  /**
   * Blocks until the catalog's index passes `after` (or `waitMs` passed), then lists.
   * `signal` ends the wait early (the client went away): the first listing comes back
   * at once, and the key-change listener and timers are gone by then.
   */
  async watch(after: number, waitMs: number, opts: { stale: boolean; signal?: AbortSignal } = { stale: true }): Promise<Catalog> {
    const { signal, ...listOpts } = opts;
    const first = await this.list(listOpts);
    if (first.index > after || signal?.aborted) return first;
    const deadline = this.now() + waitMs;
    return new Promise<Catalog>((resolve) => {
      let done = false;
      let poll: NodeJS.Timeout | undefined;
      let unsub: (() => void) | undefined;
      const aborted = () => finish(first);
      const finish = (c: Catalog) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (poll) clearTimeout(poll);
        unsub?.();
        signal?.removeEventListener('abort', aborted);
        resolve(c);
      };
      const timer = setTimeout(() => void this.list(listOpts).then(finish, () => finish(first)), waitMs);
      signal?.addEventListener('abort', aborted, { once: true });
      const check = () => {
        if (done) return;
        void this.list(listOpts).then((c) => {
          if (c.index > after) finish(c);
        }, () => undefined);
      };
      unsub = this.kv.onKeyChange?.(INDEX_KEY, check);
      // Backstop for a watch lost in a reconnect: look again now and then.
      const tick = () => {
        if (done || this.now() >= deadline) return;
        check();
        poll = setTimeout(tick, unsub ? 2000 : 100);
      };
      poll = setTimeout(tick, unsub ? 2000 : 100);
    });
  }

  /** The last catalog this node read (DNS and mDNS answer from it). */
  cached(): Catalog {
    return this.cache;
  }

  /** Calls `fn` with the catalog after every change this node notices. */
  onChange(fn: (c: Catalog) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  async refresh(): Promise<void> {
    try {
      const c = await this.list({ stale: true });
      if (c.index === this.cache.index && c.instances.length === this.cache.instances.length && c.instances.every((v, i) => v.index === this.cache.instances[i]!.index)) return;
      this.cache = c;
      for (const fn of [...this.changeListeners]) fn(c);
    } catch {
      /* the next change or tick tries again */
    }
  }

  // ---------------------------------------------------------------------------
  // Writes

  private async bump(): Promise<void> {
    const r = await pcall((cb) => this.kv.put(INDEX_KEY, enc(String(++this.renewals)), {}, cb));
    if (r.status !== 200) throw fail(r, 'services: announcing the change');
  }

  /**
   * Registers (or replaces) an instance, owned by this node. A probing check runs
   * once first, so the instance enters with its real health; a TTL check starts
   * critical until its first heartbeat.
   */
  async register(def: InstanceDef, who: { operator: boolean }): Promise<{ index: number; health: Health }> {
    if (def.check.type === 'script') {
      if (!this.o.scriptChecks) throw new ServiceError(403, 'script-checks-off', 'check.script: script checks are off on this node (services.scriptChecks: true in its config turns them on)');
      if (!who.operator) throw new ServiceError(403, 'forbidden', 'check.script: a script check runs a program on this node: it needs a credential of scope operator');
    }
    let health: Health = def.check.type === 'none' ? 'passing' : 'critical';
    let output = def.check.type === 'ttl' ? 'TTL check: waiting for the first heartbeat' : '';
    const first = probe(def.check, this.o.env);
    if (first) ({ health, output } = await first);
    const rec: InstanceRecord = { ...def, node: this.o.self, health, output };
    const key = instanceKey(def.name, def.instance);
    const r = await pcall((cb) => this.kv.put(key, encodeInstance(rec), {}, cb));
    if (r.status !== 200) throw fail(r, `register ${def.name}/${def.instance}`);
    const old = this.own.get(key);
    if (old) this.stopOwned(old);
    this.adopt({ ...rec, index: r.index ?? 0 });
    this.stats.registered++;
    // The owner's liveness record must exist before a leader could judge it (at once, not at the next renewal).
    if (this.own.size === 1) await this.renew();
    await this.bump();
    return { index: r.index ?? 0, health };
  }

  async deregister(name: string, instance: string): Promise<{ index: number }> {
    const key = instanceKey(name, instance);
    const cur = await pcall((cb) => this.kv.get(key, { stale: false }, cb));
    if (cur.status === 404) throw new ServiceError(404, 'not-found', `no instance ${instance} of service ${name}`);
    if (cur.status !== 200) throw fail(cur, `deregister ${name}/${instance}`);
    const r = await pcall((cb) => this.kv.del(key, {}, cb));
    if (r.status !== 200) throw fail(r, `deregister ${name}/${instance}`);
    const o = this.own.get(key);
    if (o) {
      this.stopOwned(o);
      this.own.delete(key);
    }
    this.stats.deregistered++;
    await this.bump();
    return { index: r.index ?? 0 };
  }

  /** A TTL heartbeat: only on the owning node (it keeps the heartbeat's time on its own clock). */
  async pass(name: string, instance: string, note = ''): Promise<{ health: Health }> {
    const key = instanceKey(name, instance);
    const o = this.own.get(key);
    if (!o) {
      const cur = await pcall((cb) => this.kv.get(key, { stale: true }, cb));
      const rec = cur.status === 200 && cur.value ? decodeInstance(key, cur.value) : undefined;
      if (!rec) throw new ServiceError(404, 'not-found', `no instance ${instance} of service ${name}`);
      throw new ServiceError(409, 'not-owner', `instance ${name}/${instance} was registered on node ${rec.node}: send its heartbeats there`);
    }
    if (o.rec.check.type !== 'ttl') throw new ServiceError(409, 'not-ttl', `instance ${name}/${instance} has a ${o.rec.check.type} check, not a ttl check`);
    o.lastBeat = this.now();
    await this.setHealth(o, 'passing', note.slice(0, 300) || 'TTL check: heartbeat');
    return { health: o.health };
  }

  private adopt(v: InstanceRecord & { index?: number }): void {
    const key = instanceKey(v.name, v.instance);
    const o = new Owned(key, v, this.now());
    this.own.set(key, o);
    const c = v.check;
    if (c.type === 'none') return;
    if (c.type === 'ttl') {
      const period = Math.max(50, Math.min(1000, Math.floor(c.ttlMs / 4)));
      let tickedAt = NaN;
      const tick = () => {
        if (o.stopped) return;
        const now = this.now();
        // The TTL counts this process's running time: a tick more than a period late is
        // a process that stood still (SIGSTOP, a starved board), with the heartbeats sent
        // meanwhile still unread (HTTP requests read after the timers). That time counts
        // as no one's silence; counted, the instance flapped to critical and back.
        const late = now - tickedAt - period;
        if (late > period) o.lastBeat += late;
        tickedAt = now;
        if (o.health !== 'critical' && now - o.lastBeat > c.ttlMs) {
          void this.setHealth(o, 'critical', `TTL check: no heartbeat for ${c.ttlMs} ms`);
        }
        o.timer = setTimeout(tick, period);
        o.timer.unref?.();
      };
      tick();
      return;
    }
    const run = () => {
      if (o.stopped) return;
      o.timer = setTimeout(run, c.intervalMs);
      o.timer.unref?.();
      if (o.probing) return;
      o.probing = true;
      void probe(c, this.o.env)!.then((r) => {
        o.probing = false;
        if (!o.stopped) return this.setHealth(o, r.health, r.output);
      }).catch(() => {
        o.probing = false;
      });
    };
    o.timer = setTimeout(run, c.intervalMs);
    o.timer.unref?.();
  }

  private stopOwned(o: Owned): void {
    o.stopped = true;
    if (o.timer) clearTimeout(o.timer);
  }

  /** Writes a changed health (compare-and-set on the record, so a deregistration elsewhere wins). */
  private async setHealth(o: Owned, health: Health, output: string): Promise<void> {
    if (health === o.health) {
      o.output = output;
      return;
    }
    for (let i = 0; i < 3 && !o.stopped; i++) {
      const cur = await pcall((cb) => this.kv.get(o.key, { stale: false }, cb));
      if (cur.status === 404) {
        // Deregistered (or reaped) elsewhere: stop checking it.
        this.stopOwned(o);
        this.own.delete(o.key);
        return;
      }
      if (cur.status !== 200 || !cur.value) return;
      const rec = decodeInstance(o.key, cur.value);
      if (!rec || rec.node !== this.o.self) {
        this.stopOwned(o);
        this.own.delete(o.key);
        return;
      }
      const next: InstanceRecord = { ...rec, health, output };
      const w = await pcall((cb) => this.kv.put(o.key, encodeInstance(next), { cas: cur.index ?? 0 }, cb));
      if (w.status === 200) {
        o.health = health;
        o.output = output;
        this.stats.healthChanges++;
        this.o.log.info({ service: rec.name, instance: rec.instance, health, output }, 'services: health changed');
        await this.bump().catch(() => undefined);
        return;
      }
      if (w.status !== 409) return;
    }
  }

  // ---------------------------------------------------------------------------
  // Liveness: renewals by owners, reaping by the active leader

  private async renew(): Promise<void> {
    if (this.own.size === 0) return;
    const r = await pcall((cb) => this.kv.put(nodeKey(this.o.self), enc(JSON.stringify({ node: this.o.self, n: ++this.renewals })), {}, cb));
    if (r.status === 200) this.stats.renewals++;
    else this.o.log.debug({ status: r.status, error: r.error }, 'services: liveness renewal failed');
  }

  /**
   * Silence is counted in this process's running time: a reaper pass more than a period
   * late means this process stood still (SIGSTOP, a GC pause, a starved board), and the
   * renewals sent meanwhile are still unread — a follower's renewal is a write through
   * the leader, which did not run. That time counts for nobody (every seen record moves
   * on by it). Counted, a leader that stood still for a TTL removed the instances of
   * every live node at its first pass after it (test/services/registry.test.ts).
   */
  private notStill(periodMs: number): void {
    const now = this.now();
    const late = now - this.reapedAt - periodMs;
    if (late > periodMs) for (const s of this.seen.values()) s.at += late;
    this.reapedAt = now;
  }

  private async reap(): Promise<void> {
    const lead = this.kv.activeLeadership();
    if (!lead) {
      this.seen.clear();
      return;
    }
    let cat: Catalog;
    let nodes: ListEntry[];
    try {
      cat = await this.list({ stale: true });
      nodes = await new Promise<ListEntry[]>((resolve, reject) => this.kv.list(NODE_PREFIX, { stale: true }, (r) => (r.status === 200 ? resolve(r.entries ?? []) : reject(new Error(r.error)))));
    } catch {
      return;
    }
    const now = this.now();
    const nodeIndex = new Map(nodes.map((e) => [e.key.slice(NODE_PREFIX.length), e.index]));
    const byNode = new Map<string, InstanceView[]>();
    for (const v of cat.instances) byNode.set(v.node, [...(byNode.get(v.node) ?? []), v]);
    for (const [node, list] of byNode) {
      const index = nodeIndex.get(node) ?? 0;
      const s = this.seen.get(node);
      if (!s || s.index !== index) {
        this.seen.set(node, { index, at: now });
        continue;
      }
      if (now - s.at <= this.o.nodeTtlMs) continue;
      if (this.kv.activeLeadership()?.token !== lead.token) return;
      this.o.log.warn({ node, instances: list.length, silentMs: Math.round(now - s.at) }, 'services: node silent for longer than nodeTtlMs; removing its instances');
      let removed = 0;
      for (const v of list) {
        const r = await pcall((cb) => this.kv.del(instanceKey(v.name, v.instance), { cas: v.index }, cb));
        if (r.status === 200) removed++;
      }
      await pcall((cb) => this.kv.del(nodeKey(node), { cas: index || 0 }, cb));
      this.seen.delete(node);
      this.stats.reaped += removed;
      if (removed > 0) await this.bump().catch(() => undefined);
    }
    for (const node of [...this.seen.keys()]) if (!byNode.has(node)) this.seen.delete(node);
  }

  /** Filters a catalog the way GET /v1/services/<name> does. */
  static select(c: Catalog, name: string, f: { healthy?: boolean; tags?: string[] }): InstanceView[] {
    return c.instances.filter((v) => v.name === name && matches(v, f));
  }
}

export { CatalogError };
