/**
 * What every HTTP backend shares (BackendBase, KvBackendBase: members, fences, watches,
 * keys, locks, jobs, metrics parts), and the bully backend. The log engines (raft,
 * paxos, zab, pbft) are served by EngineBackend (engine-backend.ts).
 */
import { decodeCommand, KvError, type KvStateMachine } from '../../src/kv/index.ts';
import type { Entry } from '../../src/wire/messages.ts';
import type { FenceRecord } from '../../src/fence/index.ts';
import type { DropCounters } from '../../src/wire/codec.ts';
import type { FenceDeviceInfo } from '../fencing/build.ts';
import type { EngineRuntime, EngineRuntimeObserver } from '../runtime/engine-node.ts';
import type { BullyEngine } from '../../src/bully/index.ts';
import type { ClientCallback } from '../runtime/results.ts';
import type { ActivationStatus } from '../runtime/leader-fencing.ts';
import type { JobRecord } from '../../src/kv/index.ts';
import type { JobReport, JobsHost, Leadership } from '../jobs/coordinator.ts';
import type { ApiBackend, FenceAnswer, KeyView, LeaderView, LockView, StatusView } from './backend.ts';
import { COMMIT_BUCKETS, FSYNC_BUCKETS, HistogramRecorder, type MetricFamily } from './metrics.ts';

export interface MemberInfo {
  id: number;
  name: string;
  role: 'voter' | 'witness' | 'observer';
}

export interface LinkInfo {
  name: string;
  /** Link-specific stats object (MqttLink.stats, SerialLink.stats...). */
  stats?: Record<string, number>;
  /** Whether the link is usable now, when the link can tell. */
  up?: () => boolean;
  /** Counters that are errors (named keys of stats). */
  errorKeys?: string[];
}

/** A fence record as /v1/status shows it (levels counted from 1, times rounded). */
export function fenceView(r: FenceRecord, nameOf: (id: number) => string | null): Record<string, unknown> {
  return {
    id: r.id,
    target: nameOf(r.target),
    term: r.term,
    reason: r.reason,
    action: r.action,
    outcome: r.outcome,
    level: r.level === null ? null : r.level + 1,
    delayMs: r.delayMs,
    attempts: r.attempts.length,
    error: r.attempts.at(-1)?.error ?? null,
    requestedAtMs: Math.round(r.requestedAtMs),
    finishedAtMs: r.finishedAtMs === null ? null : Math.round(r.finishedAtMs),
    poweredOnAtMs: r.poweredOnAtMs === null ? null : Math.round(r.poweredOnAtMs),
    powerOnError: r.powerOnError,
  };
}

export const gauge = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'gauge', samples: [{ value }] });
export const counter = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'counter', samples: [{ value }] });

/** What the shared backend part needs of a runtime (EngineRuntime has it). */
export interface FenceableRuntime {
  fence(node: number, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void;
  confirmFenced(node: number): { ok: boolean; error?: string; alive?: boolean; notLeader?: boolean };
}

/**
 * What the Raft and the bully backend share: the members (names ↔ ids), the fence
 * endpoints (`POST /v1/fence/...` answers), the count of finished fences, and the
 * metric families that do not depend on the engine (links, fences, frames).
 */
export abstract class BackendBase<R extends FenceableRuntime> {
  protected rt: R | undefined;
  /** Fence devices from the config (set by startNode with a `fencing:` section); undefined = no fencing. */
  protected fenceDevices: FenceDeviceInfo[] | undefined;
  /** Finished fences run by this node, by outcome (for /metrics). */
  readonly fences = new Map<string, number>();

  constructor(
    protected readonly self: MemberInfo,
    protected readonly members: MemberInfo[],
    protected readonly links: LinkInfo[],
    protected readonly clusterName: string,
  ) {}

  /** A member by name (or `n<id>` / a bare id), for the fence endpoints. */
  memberId(ref: string): number | undefined {
    const m = this.members.find((x) => x.name === ref) ?? this.members.find((x) => String(x.id) === ref || `n${x.id}` === ref);
    return m?.id;
  }

  fence(node: string, cb: (r: FenceAnswer) => void): void {
    const rt = this.rt;
    const id = this.memberId(node);
    if (id === undefined) return cb({ status: 404, error: `no member ${JSON.stringify(node)} (members: ${this.members.map((m) => m.name).join(', ')})` });
    if (id === this.self.id) return cb({ status: 400, error: `${node} is this node: a node never fences itself; ask another node` });
    if (this.fenceDevices === undefined) return cb({ status: 503, error: `node ${this.self.name} runs without a fencing: section; no fence devices` });
    if (!rt) return cb({ status: 503, error: 'node is starting' });
    rt.fence(id, (r) => {
      if (r.ok) return cb({ status: 200, record: r.record });
      if (r.record) return cb({ status: 502, error: `fence of ${node} failed: ${r.error ?? r.record.outcome}`, record: r.record });
      cb({ status: 503, error: r.error ?? 'fence not started' });
    });
  }

  confirmFenced(node: string): FenceAnswer {
    const rt = this.rt;
    const id = this.memberId(node);
    if (id === undefined) return { status: 404, error: `no member ${JSON.stringify(node)} (members: ${this.members.map((m) => m.name).join(', ')})` };
    if (id === this.self.id) return { status: 400, error: `${node} is this node: a node cannot confirm itself down` };
    if (this.fenceDevices === undefined) return { status: 503, error: `node ${this.self.name} runs without a fencing: section (no activation gate to open)` };
    if (!rt) return { status: 503, error: 'node is starting' };
    const r = rt.confirmFenced(id);
    if (!r.ok) {
      if (r.alive) return { status: 409, code: 'node-alive', error: r.error ?? 'not confirmed' };
      if (r.notLeader) return { status: 409, code: 'not-leader', error: r.error ?? 'not confirmed' };
      return { status: 503, error: r.error ?? 'not confirmed' };
    }
    const { ok: _ok, error: _e, alive: _a, notLeader: _n, ...result } = r as { ok: boolean; error?: string; alive?: boolean; notLeader?: boolean } & Record<string, unknown>;
    return { status: 200, result };
  }

  protected nameOf(id: number): string | null {
    if (id === 0) return null;
    return this.members.find((m) => m.id === id)?.name ?? `n${id}`;
  }

  /** The runtime's `fenced` observer: counts finished fences by outcome. */
  protected countFence(rec: FenceRecord): void {
    if (rec.outcome !== 'pending') this.fences.set(rec.outcome, (this.fences.get(rec.outcome) ?? 0) + 1);
  }

  /** Last contact of member `id` (ms ago, overall and per link; null: never in this boot). */
  protected contactOf(id: number): { lastContactMs: number | null; linkContactMs: Record<string, number | null> } {
    const c = (this.rt as { contact?: (peer: number) => { agoMs: number | null; links: Record<string, number | null> } } | undefined)?.contact?.(id);
    const round = (v: number | null | undefined) => (v === null || v === undefined ? null : Math.round(v));
    return {
      lastContactMs: round(c?.agoMs),
      linkContactMs: Object.fromEntries(Object.entries(c?.links ?? {}).map(([k, v]) => [k, round(v)])),
    };
  }

  /** Who this node is in the member list: a witness votes, never leads and keeps no data. */
  protected get isWitness(): boolean {
    return this.self.role === 'witness';
  }

  /** The links as /v1/status shows them. */
  protected linksView(): Array<{ name: string; up?: boolean }> {
    return this.links.map((l) => ({ name: l.name, ...(l.up ? { up: l.up() } : {}) }));
  }

  /** quorumd_link_errors_total and quorumd_link_up. */
  protected linkMetrics(): [MetricFamily, MetricFamily] {
    const linkErrors: MetricFamily = { name: 'quorumd_link_errors_total', help: 'Link errors by link and kind (failed connects, frames dropped by the transport).', type: 'counter', samples: [] };
    const linkUp: MetricFamily = { name: 'quorumd_link_up', help: '1 when the link is usable.', type: 'gauge', samples: [] };
    for (const l of this.links) {
      for (const k of l.errorKeys ?? []) linkErrors.samples!.push({ labels: { link: l.name, kind: k }, value: l.stats?.[k] ?? 0 });
      if (l.up) linkUp.samples!.push({ labels: { link: l.name }, value: l.up() ? 1 : 0 });
    }
    return [linkErrors, linkUp];
  }

  /** quorumd_fences_total by outcome. */
  protected fencesMetric(): MetricFamily {
    return {
      name: 'quorumd_fences_total',
      help: 'Fences run by this node that finished, by outcome (off, already-off, failed, cancelled, confirmed).',
      type: 'counter',
      samples: ['off', 'already-off', 'failed', 'cancelled', 'confirmed'].map((o) => ({ labels: { outcome: o }, value: this.fences.get(o) ?? 0 })),
    };
  }

  /** quorumd_dropped_frames_total and quorumd_frames_accepted_total, from the runtime's status. */
  protected frameMetrics(s: { drops: DropCounters; framesAccepted: number } | undefined): [MetricFamily, MetricFamily] {
    return [
      {
        name: 'quorumd_dropped_frames_total',
        help: 'Frames received and dropped before the engine, by reason.',
        type: 'counter',
        samples: Object.entries(s?.drops ?? {}).map(([reason, v]) => ({ labels: { reason }, value: v })),
      },
      counter('quorumd_frames_accepted_total', 'Frames authenticated and handed to the engine.', s?.framesAccepted ?? 0),
    ];
  }
}

/** What the KV part of a backend needs of a runtime (EngineRuntime has it). */
export interface KvRuntime extends FenceableRuntime {
  readonly stateMachine: KvStateMachine;
  readonly lockClockMs: number;
  readonly isLeader: boolean;
  get(key: string, opts: { stale?: boolean }, cb: ClientCallback): void;
  jobClaim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void;
  jobDone(r: JobReport, cb: ClientCallback): void;
  jobReset(job: string, cb: ClientCallback): void;
}

/**
 * What a backend of a replicated-log engine needs (EngineBackend, kept apart from
 * BackendBase so the election-only bully backend does without it): key-change watches, /v1/keys and /v1/locks from the
 * applied state, the listing service discovery reads, linearizable get, and the
 * commit-latency histogram.
 */
export abstract class KvBackendBase<R extends KvRuntime> extends BackendBase<R> {
  private readonly watchers = new Map<string, Set<() => void>>();
  /** Active leader as hooks see it, and its token (set by the backend's tracking). */
  protected activeNow = false;
  protected activeToken = 0;
  onLeadership: ((ev: LeadershipEvent) => void) | undefined;

  /** With a `fencing:` section: activity follows the runtime's activation events (hooks fire on each change). */
  protected followActivation(ev: { active: boolean; term: number; token: number }): void {
    if (this.fenceDevices === undefined) return;
    if (ev.active && !this.activeNow) {
      this.activeNow = true;
      this.activeToken = ev.token;
      this.onLeadership?.({ event: 'active', term: ev.term, token: ev.token });
    } else if (!ev.active && this.activeNow) {
      this.activeNow = false;
      this.onLeadership?.({ event: 'inactive', term: ev.term, token: this.activeToken });
    }
  }

  // JobsHost (daemon/jobs) except activeLeadership (each backend's own): claims and
  // reports go through the replicated log, records come from the applied state.
  claim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void {
    this.need(cb)?.jobClaim(job, slot, lead, this.timed(cb));
  }

  report(r: JobReport, cb: ClientCallback): void {
    this.need(cb)?.jobDone(r, this.timed(cb));
  }

  record(job: string): JobRecord | undefined {
    return this.rt?.stateMachine.job(job);
  }

  nodeName(id: number): string {
    return this.nameOf(id) ?? `n${id}`;
  }

  /** The activation and fence fields of /v1/status with a `fencing:` section (none without). */
  protected fencingView(s: ActivationStatus | undefined): Partial<StatusView> {
    if (!s || this.fenceDevices === undefined) return {};
    return {
      elected: s.elected,
      waitingFor: s.waitingFor,
      token: s.token,
      selfFencing: s.selfFencing,
      ...(s.activation ? { clearedBy: s.activation.clearedBy, suspects: this.suspectsOf(s.activation) } : {}),
      fences: {
        local: s.fences.local.map((r) => fenceView(r, (id) => this.nameOf(id))),
        history: s.fences.history.map((h) => ({ ...h, target: this.nameOf(h.target) ?? h.target, by: this.nameOf(h.by) ?? h.by })),
      },
    } as Partial<StatusView>;
  }

  /** The suspects of an elected leader: every earlier leader cleared (with how) or still to clear. */
  private suspectsOf(a: { elected: boolean; clearedBy: Record<string, string>; wantFence: number[]; suspects?: number[] }): Array<{ node: string; clearedBy: string | null }> {
    if (!a.elected) return [];
    const ids = new Set<number>([...(a.suspects ?? []), ...Object.keys(a.clearedBy).map(Number), ...a.wantFence]);
    return [...ids].sort((x, y) => x - y).map((id) => ({ node: this.nameOf(id) ?? `n${id}`, clearedBy: a.clearedBy[String(id)] ?? null }));
  }
  /** Successful writes through this node (KV, locks, job claims and reports): request to commit and apply. */
  readonly commitLatency = new HistogramRecorder(COMMIT_BUCKETS);

  /** Calls the watchers of the key an applied put or delete changed. */
  protected notifyWatchers(e: Entry): void {
    if (this.watchers.size > 0 && e.data.length > 0) {
      const cmd = decodeCommand(e.data);
      if (!(cmd instanceof KvError) && (cmd.op === 'put' || cmd.op === 'del')) {
        const set = this.watchers.get(cmd.key);
        if (set) for (const fn of [...set]) fn();
      }
    }
  }

  keys(prefix: string, limit: number): { index: number; keys: KeyView[]; more: boolean } {
    const sm = this.rt?.stateMachine;
    if (!sm) return { index: 0, keys: [], more: false };
    const all = sm.keys(prefix);
    const keys = all.slice(0, limit).map((key) => {
      const e = sm.get(key)!;
      return { key, size: e.value.length, createIndex: e.createIndex, modIndex: e.modIndex };
    });
    return { index: sm.appliedIndex, keys, more: all.length > limit };
  }

  locks(prefix: string, limit: number): { index: number; clockMs: number; exact: boolean; locks: LockView[]; more: boolean } {
    const rt = this.rt;
    if (!rt) return { index: 0, clockMs: 0, exact: false, locks: [], more: false };
    const clockMs = rt.lockClockMs;
    const all = rt.stateMachine.lockList(clockMs, prefix);
    const locks = all.slice(0, limit).map((l) => ({ name: l.name, owner: l.owner, token: l.token, ttlMs: l.ttlMs, expiresAt: l.expiresAt }));
    return { index: rt.stateMachine.appliedIndex, clockMs, exact: rt.isLeader, locks, more: all.length > limit };
  }

  /** Times a successful write through this node (request to commit and apply), for quorumd_commit_seconds. */
  protected timed(cb: ClientCallback): ClientCallback {
    const t0 = performance.now();
    return (r) => {
      if (r.status === 200) this.commitLatency.observe((performance.now() - t0) / 1000);
      cb(r);
    };
  }

  protected need(cb: ClientCallback): R | undefined {
    if (!this.rt) {
      cb({ status: 503, error: 'node is starting' });
      return undefined;
    }
    return this.rt;
  }

  get(key: string, opts: { stale: boolean }, cb: ClientCallback): void {
    this.need(cb)?.get(key, opts, cb);
  }
  /**
   * Every key starting with `prefix`, from this node's applied state (service
   * discovery's catalog). Not stale: a linearizable read first (ReadIndex), after
   * which this node has applied everything committed before the listing began.
   */
  list(prefix: string, opts: { stale: boolean }, cb: (r: { status: number; entries?: Array<{ key: string; value: Uint8Array; index: number }>; error?: string }) => void): void {
    const rt = this.rt;
    if (!rt) return cb({ status: 503, error: 'node is starting' });
    const scan = () => {
      const sm = rt.stateMachine;
      cb({ status: 200, entries: sm.keys(prefix).map((k) => ({ key: k, value: sm.get(k)!.value, index: sm.get(k)!.modIndex })) });
    };
    if (opts.stale) return scan();
    rt.get(prefix, { stale: false }, (r) => (r.status === 200 || r.status === 404 ? scan() : cb({ status: r.status, ...(r.error ? { error: r.error } : {}) })));
  }

  onKeyChange(key: string, fn: () => void): () => void {
    let set = this.watchers.get(key);
    if (!set) this.watchers.set(key, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.watchers.delete(key);
    };
  }

}

export interface LeadershipEvent {
  event: 'active' | 'inactive';
  term: number;
  token: number;
}

/**
 * The HTTP API's backend over the engine runtime with engine: bully (election only,
 * daemon/runtime/engine-node.ts + bully-fencing.ts): status and leader views,
 * activation tracking for hooks, the fence endpoints, metrics. KV and lock requests
 * answer 501 `engine-unsupported` ("... need(s) an engine with a replicated log (engine: raft, paxos, zab, pbft, etcd or zookeeper)"): the
 * bully engine has no replicated log. Watches have nothing to watch (no onKeyChange).
 *
 * "Active" is the runtime's (EngineRuntime.active / activeToken / onActivation,
 * docs/fencing.md): with a `fencing:` section (STONITH), a coordinator is active only once every
 * earlier coordinator it knows of is fenced, acknowledged its step-down or was
 * confirmed down by an operator; tokens only (no targets or `stonith: false`) and
 * without a `fencing:` section, as soon as its epoch is durable and no higher
 * coordinator was heard. Hooks get the token of the activation (epoch × 256 + id,
 * src/bully/options.ts), which outside resources must check.
 *
 * Bully has no replicated log, so `fences.history` is this node's own finished fences
 * (not every node's, as under Raft), with `index` = the fence record's id.
 */
export class BullyBackend extends BackendBase<EngineRuntime> implements ApiBackend {
  private activeNow = false;
  private activeToken = 0;
  private lastRole = 'follower';
  private lastLeader = 0;
  elections = 0;
  leaderChanges = 0;
  /** Durable writes of the hard state {epoch, held}. */
  stateWrites = 0;
  readonly fsync = new HistogramRecorder(FSYNC_BUCKETS);
  onLeadership: ((ev: LeadershipEvent) => void) | undefined;
  private unsubscribe: (() => void) | undefined;

  /** The node runs with a `fencing:` section: its devices for status, the fence endpoints on. */
  setFencing(devices: FenceDeviceInfo[]): void {
    this.fenceDevices = devices;
  }

  attach(rt: EngineRuntime): void {
    this.unsubscribe?.();
    this.rt = rt;
    this.unsubscribe = rt.onActivation((ev) => {
      if (ev.active) {
        // A fresh epoch while active (a same-epoch conflict) arrives as inactive, then active.
        if (this.activeNow && ev.token !== this.activeToken) this.onLeadership?.({ event: 'inactive', term: ev.term, token: this.activeToken });
        if (this.activeNow && ev.token === this.activeToken) return;
        this.activeNow = true;
        this.activeToken = ev.token;
        this.onLeadership?.({ event: 'active', term: ev.term, token: ev.token });
      } else if (this.activeNow) {
        this.activeNow = false;
        this.onLeadership?.({ event: 'inactive', term: ev.term, token: this.activeToken });
      }
    });
  }

  observer(): EngineRuntimeObserver {
    return {
      afterStep: () => this.track(),
      booted: () => this.track(),
      fenced: (_rt, rec: FenceRecord) => this.countFence(rec),
      persisted: (_rt, rd) => {
        if (rd.hardState) this.stateWrites++;
      },
    };
  }

  private get bully(): BullyEngine | undefined {
    return this.rt?.engine as BullyEngine | undefined;
  }


  /** Elections and leader changes for /metrics; activity comes from onActivation. */
  private track(): void {
    const rt = this.rt;
    if (!rt || !rt.engine) return;
    const s = rt.status();
    const es = this.bully!.bullyStatus();
    if (es.electionsStarted > this.elections) this.elections = es.electionsStarted;
    if (s.role !== this.lastRole) this.lastRole = s.role;
    if (s.leader !== this.lastLeader) {
      if (s.leader !== 0) this.leaderChanges++;
      this.lastLeader = s.leader;
    }
  }

  get active(): boolean {
    return this.activeNow;
  }

  /** `n<id>` keys of the runtime's maps → the node id as a string, as the Raft backend's clearedBy has them. */
  private byId<T>(m: Record<string, T>): Record<string, T> {
    return Object.fromEntries(Object.entries(m).map(([k, v]) => [k.replace(/^n/, ''), v]));
  }

  status(): StatusView {
    const s = this.rt?.status();
    const local = s?.fences.local ?? [];
    const done = local.filter((r) => r.outcome !== 'pending');
    return {
      id: this.self.name,
      engine: 'bully',
      role: this.roleName(s?.role),
      term: s?.term ?? 0,
      leader: this.nameOf(s?.leader ?? 0),
      active: this.activeNow,
      commitIndex: 0,
      appliedIndex: 0,
      peers: this.members
        .filter((m) => m.id !== this.self.id)
        .map((m) => ({ id: m.name, nodeId: m.id, role: m.role, priority: this.bully?.priorityOf(m.id) ?? null, ...this.contactOf(m.id) })),
      links: this.linksView(),
      relays: (this.fenceDevices ?? []).map((d) => ({ ...d })),
      witness: this.isWitness,
      ...(s && s.bully && this.fenceDevices !== undefined
        ? {
            elected: s.elected,
            waitingFor: s.waitingFor,
            // This node's own token while active (0 otherwise), as under Raft; /v1/leader has the coordinator's.
            token: this.activeNow ? this.activeToken : 0,
            selfFencing: false,
            fencingMode: s.bully.fencingMode,
            knownCoordinators: this.byId(s.bully.knownCoordinators),
            clearedBy: this.byId(s.bully.clearedBy),
            fences: {
              local: local.map((r) => fenceView(r, (id) => this.nameOf(id))),
              history: done.map((r) => ({ index: r.id, target: this.nameOf(r.target) ?? r.target, outcome: r.outcome, by: this.self.name, term: r.term, level: r.level ?? -1, reason: r.reason })),
            },
          }
        : {}),
    };
  }

  leader(): LeaderView {
    const s = this.rt?.status();
    return { leader: this.nameOf(s?.leader ?? 0), term: s?.term ?? 0, token: s?.bully?.leaderToken ?? 0 };
  }

  /** Bully's names for the roles (the engine runtime says leader for a coordinator). */
  private roleName(role: string | undefined): string {
    return role === undefined ? 'down' : role === 'leader' ? 'coordinator' : role;
  }

  private unsupported(what: string, cb: ClientCallback): void {
    if (!this.rt) return cb({ status: 503, error: 'node is starting' });
    switch (what) {
      case 'get': return this.rt.get('', {}, cb);
      case 'put': return this.rt.put('', new Uint8Array(), {}, cb);
      case 'del': return this.rt.del('', {}, cb);
      case 'acquire': return this.rt.lockAcquire('', '', 0, '', cb);
      case 'renew': return this.rt.lockRenew('', '', cb);
      default: return this.rt.lockRelease('', '', cb);
    }
  }
  get(_key: string, _opts: { stale: boolean }, cb: ClientCallback): void {
    this.unsupported('get', cb);
  }
  put(_key: string, _value: Uint8Array, _opts: { cas?: number }, cb: ClientCallback): void {
    this.unsupported('put', cb);
  }
  del(_key: string, _opts: { cas?: number }, cb: ClientCallback): void {
    this.unsupported('del', cb);
  }
  lockAcquire(_name: string, _owner: string, _ttlMs: number, _lease: string, cb: ClientCallback): void {
    this.unsupported('acquire', cb);
  }
  lockRenew(_name: string, _lease: string, cb: ClientCallback): void {
    this.unsupported('renew', cb);
  }
  lockRelease(_name: string, _lease: string, cb: ClientCallback): void {
    this.unsupported('release', cb);
  }

  metrics(): MetricFamily[] {
    const s = this.rt?.status();
    const role = this.roleName(s?.role);
    const roles = ['follower', 'candidate', 'coordinator', 'down'];
    const g = gauge;
    const c = counter;
    return [
      { name: 'quorumd_role', help: 'Current role (1 for the current one).', type: 'gauge', samples: roles.map((r) => ({ labels: { role: r }, value: role === r ? 1 : 0 })) },
      g('quorumd_active', '1 while this node is the active coordinator (elected, and every earlier coordinator it knows of shown stopped).', this.activeNow ? 1 : 0),
      g('quorumd_elected', '1 while this node is the coordinator (its epoch durable), active or not.', s?.elected ? 1 : 0),
      g('quorumd_term', 'Current term (bully: epoch).', s?.term ?? 0),
      g('quorumd_fencing_token', 'Fencing token of the known coordinator (epoch × 256 + id; 0 when none).', s?.bully?.leaderToken ?? 0),
      g('quorumd_active_token', 'Fencing token of this node\'s coordinatorship while active (0 otherwise).', this.activeNow ? this.activeToken : 0),
      this.fencesMetric(),
      c('quorumd_elections_total', 'Elections this node started.', this.elections),
      c('quorumd_leader_changes_total', 'Leader changes seen by this node.', this.leaderChanges),
      ...this.linkMetrics(),
      ...this.frameMetrics(s),
      c('quorumd_state_writes_total', 'Durable writes of the bully hard state (epoch, held) to the durable log.', this.stateWrites),
      { name: 'quorumd_fsync_seconds', help: 'fsync latency.', type: 'histogram', histogram: this.fsync.snapshot() },
      { name: 'quorumd_info', help: 'Static node information.', type: 'gauge', samples: [{ labels: { node: this.self.name, cluster: this.clusterName, engine: 'bully' }, value: 1 }] },
    ];
  }
}
