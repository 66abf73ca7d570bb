/**
 * The HTTP API's backend over an external engine (etcd or ZooKeeper): status and
 * leader views, the client calls passed through, watches on the service's watch,
 * activation events for hooks, scheduled jobs (JobsHost), and metrics. The same
 * HTTP server, hooks and job scheduler as under Raft sit on top unchanged.
 *
 * Status: `role` is leader / candidate / connecting / stopped; `term` and `token`
 * are the leadership token (a revision or zxid: the external engines have no terms);
 * `peers` are the other members of the config (the service knows only the live
 * candidates); `links` has one entry, the service connection (`up` while the window
 * is open or the node is not leader but got an answer lately); `service` has the
 * engine's own view (session, window, endpoints, counters).
 *
 * With a `fencing:` section (setFencing): `relays` lists the fence devices, and the
 * status has what the Raft and bully status have — `elected`, `waitingFor`, `suspects`
 * (the earlier leaders this leader must show stopped, each with how it was cleared),
 * `clearedBy`, `fences: {local, history}` (this node's fences; as under bully the
 * history is this node's own finished fences, not every node's); `POST /v1/fence/<node>`
 * and `/confirm` work through the shared BackendBase.
 */
import type { ClientCallback } from '../runtime/results.ts';
import type { JobRecord } from '../../src/kv/index.ts';
import type { JobReport, JobsHost, Leadership } from '../jobs/coordinator.ts';
import type { ApiBackend, JobResetAnswer, LeaderView, StatusView } from '../http/backend.ts';
import { BackendBase, fenceView, type LeadershipEvent, type MemberInfo } from '../http/backend-base.ts';
import type { FenceDeviceInfo } from '../fencing/build.ts';
import type { FenceRecord } from '../../src/fence/index.ts';
import type { ExternalFencing } from './fencing.ts';
import type { MetricFamily } from '../http/metrics.ts';
import type { ExternalEngine } from './types.ts';

const gauge = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'gauge', samples: [{ value }] });
const counter = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'counter', samples: [{ value }] });

export class ExternalBackend extends BackendBase<ExternalFencing> implements ApiBackend, JobsHost {
  onLeadership: ((ev: LeadershipEvent) => void) | undefined;
  /** The scheduled jobs' view (set by the start code); none = an empty list. */
  jobsView: (() => unknown[]) | undefined;
  private activeNow = false;
  private activeToken = 0;
  private readonly unsubscribe: () => void;

  constructor(
    readonly engine: ExternalEngine,
    self: MemberInfo,
    members: MemberInfo[],
    clusterName: string,
  ) {
    super(self, members, [], clusterName);
    this.unsubscribe = engine.onActivation((ev) => {
      if (ev.active) {
        if (this.activeNow && ev.token !== this.activeToken) this.onLeadership?.({ event: 'inactive', term: this.activeToken, token: this.activeToken });
        if (this.activeNow && ev.token === this.activeToken) return;
        this.activeNow = true;
        this.activeToken = ev.token;
        this.onLeadership?.({ event: 'active', term: ev.token, token: ev.token });
      } else if (this.activeNow) {
        this.activeNow = false;
        this.onLeadership?.({ event: 'inactive', term: this.activeToken, token: this.activeToken });
      }
    });
  }

  /** A `fencing:` section: its devices (status) and the engines' fencing (fence endpoints, suspects). */
  setFencing(devices: FenceDeviceInfo[], fencing: ExternalFencing): void {
    this.fenceDevices = devices;
    this.rt = fencing;
    // The confirm answer's evidence: what the service showed of the member (its election key or znode).
    fencing.evidence = (id) => this.engine.heard(this.nameOf(id) ?? `n${id}`);
    fencing.activeNow = () => this.engine.active;
  }

  /** ExternalFencing's `fenced` callback: counts finished fences for /metrics. */
  fenced(rec: FenceRecord): void {
    this.countFence(rec);
  }

  detach(): void {
    this.unsubscribe();
  }

  get active(): boolean {
    return this.engine.active;
  }

  status(): StatusView & { service: ReturnType<ExternalEngine['status']> } {
    const s = this.engine.status();
    const up = s.session.lastAnswerAgoMs !== null && s.session.lastAnswerAgoMs < Math.max(1, s.session.ttlMs);
    return {
      id: this.self.name,
      engine: this.engine.name,
      role: s.role,
      term: s.leaderToken,
      leader: s.leader,
      active: s.active,
      commitIndex: 0,
      appliedIndex: 0,
      peers: this.members.filter((m) => m.id !== this.self.id).map((m) => ({ id: m.name, nodeId: m.id, role: m.role, leader: m.name === s.leader })),
      links: [{ name: `${this.engine.name}:${s.endpoints.join(',')}`, up }],
      relays: (this.fenceDevices ?? []).map((d) => ({ ...d })),
      elected: s.elected,
      token: s.active ? s.token : 0,
      ...this.fencingView(),
      service: s,
    };
  }

  private fencingView(): Partial<StatusView> {
    const f = this.rt;
    if (!f || this.fenceDevices === undefined) return {};
    const fs = f.status();
    const name = (n: number | 'unknown') => (n === 'unknown' ? 'unknown' : (this.nameOf(n) ?? `n${n}`));
    return {
      waitingFor: fs.waitingFor,
      selfFencing: false,
      suspects: fs.suspects.map((x) => ({ node: name(x.node), clearedBy: x.clearedBy })),
      clearedBy: fs.clearedBy,
      fences: {
        local: fs.fences.map((r) => fenceView(r, (id) => this.nameOf(id))),
        history: fs.fences.filter((r) => r.outcome !== 'pending').map((r) => ({ index: r.id, target: this.nameOf(r.target) ?? r.target, outcome: r.outcome, by: this.self.name, term: r.term, level: r.level ?? -1, reason: r.reason })),
      },
    };
  }

  leader(): LeaderView {
    const s = this.engine.status();
    return { leader: s.leader, term: s.leaderToken, token: s.leaderToken };
  }

  get(key: string, opts: { stale: boolean }, cb: ClientCallback): void {
    this.engine.get(key, opts, cb);
  }
  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void {
    this.engine.put(key, value, opts, cb);
  }
  del(key: string, opts: { cas?: number }, cb: ClientCallback): void {
    this.engine.del(key, opts, cb);
  }
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    this.engine.lockAcquire(name, owner, ttlMs, lease, cb);
  }
  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    this.engine.lockRenew(name, lease, cb);
  }
  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    this.engine.lockRelease(name, lease, cb);
  }
  onKeyChange(key: string, fn: () => void): () => void {
    return this.engine.onKeyChange(key, fn);
  }
  list(prefix: string, opts: { stale: boolean }, cb: Parameters<ExternalEngine['list']>[2]): void {
    this.engine.list(prefix, opts, cb);
  }
  jobs(): unknown[] {
    return this.jobsView?.() ?? [];
  }
  /** Not offered on the external engines (their claim needs no log entry to withdraw): 501 naming the record to fix by hand. */
  jobReset(job: string, cb: (a: JobResetAnswer) => void): void {
    cb({
      status: 501,
      error: `quorumd jobs reset is not implemented for engine ${this.engine.name}: fix the leader's clock, then edit the job's record, ${this.engine.jobRecordLocation(job)} (JSON), with the service's own tool: set claim.slot to the current time in ms since the epoch, so that later slots are granted again and none at or before it (docs/jobs.md, Time)`,
    });
  }

  // JobsHost
  activeLeadership(): Leadership | undefined {
    return this.engine.activeLeadership();
  }
  claim(job: string, slot: number, lead: Leadership, cb: ClientCallback): void {
    this.engine.jobClaim(job, slot, lead, cb);
  }
  report(r: JobReport, cb: ClientCallback): void {
    this.engine.jobDone(r, cb);
  }
  record(job: string): JobRecord | undefined {
    return this.engine.jobRecord(job);
  }
  nodeName(id: number): string {
    return this.members.find((m) => m.id === id)?.name ?? `n${id}`;
  }

  metrics(): MetricFamily[] {
    const s = this.engine.status();
    const roles = ['leader', 'candidate', 'connecting', 'stopped'];
    return [
      { name: 'quorumd_role', help: 'Current role (1 for the current one).', type: 'gauge', samples: roles.map((r) => ({ labels: { role: r }, value: s.role === r ? 1 : 0 })) },
      gauge('quorumd_active', '1 while this node is the active leader (elected and inside its lease window).', s.active ? 1 : 0),
      gauge('quorumd_elected', '1 while the service says this node leads (active or not).', s.elected ? 1 : 0),
      gauge('quorumd_term', 'Leadership token of the current leader (a revision or zxid).', s.leaderToken),
      gauge('quorumd_fencing_token', "Fencing token of this node's leadership while active (0 otherwise).", s.active ? s.token : 0),
      gauge('quorumd_lease_window_seconds', 'How much longer this node may act without another answer from the service.', s.session.actForMs / 1000),
      counter('quorumd_elections_total', 'Campaigns started (one per lease or session).', s.stats.elections),
      counter('quorumd_leader_changes_total', 'Leader changes seen by this node.', s.stats.leaderChanges),
      counter('quorumd_service_wins_total', 'Times this node won the election.', s.stats.wins),
      counter('quorumd_service_leases_lost_total', 'Leases or sessions that expired on the service.', s.stats.leasesLost),
      counter('quorumd_service_window_ends_total', 'Times the lease window closed on an elected leader (no answer in time).', s.stats.windowEnds),
      counter('quorumd_service_renewals_total', 'Answered lease renewals / session probes.', s.stats.renewals),
      counter('quorumd_service_renewal_failures_total', 'Renewals or probes that failed or got no answer in time.', s.stats.renewalFailures),
      counter('quorumd_service_requests_total', 'Client requests sent to the service.', s.stats.requests),
      counter('quorumd_service_request_errors_total', 'Client requests that failed (503/504).', s.stats.requestErrors),
      ...(this.fenceDevices !== undefined ? [this.fencesMetric()] : []),
      { name: 'quorumd_info', help: 'Static node information.', type: 'gauge', samples: [{ labels: { node: this.self.name, cluster: this.clusterName, engine: this.engine.name }, value: 1 }] },
    ];
  }
}
