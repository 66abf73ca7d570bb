/**
 * The HTTP API's backend over an EngineRuntime (daemon/runtime/engine-node.ts): the
 * log engines `raft`, `paxos`, `zab` and `pbft`. One API for all (docs/api.md): KV
 * with linearizable get, put/delete with cas, watches (from the runtime's `applied`
 * observer), locks with fencing tokens, status, leader, keys, locks, metrics.
 *
 * "Active" (hooks, jobs, /v1/status): with a `fencing:` section, the runtime's
 * activation gate (daemon/runtime/leader-fencing.ts, as under Raft: earlier leaders
 * fenced or shown stopped, own lease), followed through its activation events; the
 * fence endpoints and the fence history work as under Raft. Without one: leader with
 * its leadership's fencing token issued. The token is the engine's `leaderToken()`, the
 * index of the leadership's first entry once committed (Paxos: its start slot; ZAB:
 * the epoch-start entry, zxid (epoch, 0)). Scheduled jobs (JobsHost) claim slots
 * through the log. /v1/leader reports the token on the leader itself; a follower reports
 * the leadership's first entry in its own log once committed there, where the engine
 * names it (EngineStatus.epochStart: Raft the term's first entry, ZAB the epoch-start
 * NEWLEADER told it); a Paxos follower reports 0 (its log does not mark the start slot:
 * the no-ops that fill gaps below it carry the same ballot).
 *
 * Raft's finer role 'pre-candidate' (status detail) is shown as the role, as Raft's API
 * always showed it; /v1/status peers carry the leader's replication progress (match,
 * state) where the engine reports it (Engine.replicaProgress); with QUORUMD_TRACE_WRITES a put
 * marks http.in/http.out (daemon/runtime/write-trace.ts).
 */
import type { Entry } from '../../src/wire/messages.ts';
import type { FenceRecord } from '../../src/fence/index.ts';
import type { FenceDeviceInfo } from '../fencing/build.ts';
import type { JobsHost, Leadership } from '../jobs/coordinator.ts';
import type { EngineRuntime, EngineRuntimeObserver } from '../runtime/engine-node.ts';
import type { ClientCallback } from '../runtime/results.ts';
import type { WriteTracer } from '../runtime/write-trace.ts';
import type { ClientRef } from '../runtime/pbft-clients.ts';
import type { PbftReply } from '../../src/pbft/reply.ts';
import type { ApiBackend, JobResetAnswer, LeaderView, LockCommand, StatusView } from './backend.ts';
import { isoUtc } from '../utc-text.ts';
import { KvBackendBase, counter, gauge, type LeadershipEvent } from './backend-base.ts';
import { FSYNC_BUCKETS, HistogramRecorder, type MetricFamily } from './metrics.ts';

export class EngineBackend extends KvBackendBase<EngineRuntime> implements ApiBackend, JobsHost {
  private activeTerm = 0;
  private lastRole = 'follower';
  private lastLeader = 0;
  elections = 0;
  leaderChanges = 0;
  readonly fsync = new HistogramRecorder(FSYNC_BUCKETS);
  /** The scheduled jobs' view (set by startNode); none = an empty list. */
  jobsView: (() => unknown[]) | undefined;
  /** Per-write trace points (daemon/runtime/write-trace.ts): set by startNode when tracing is on. */
  trace: WriteTracer | undefined;

  /** The node runs with fencing (activation gate): hooks follow the runtime's activation events. */
  setFencing(devices: FenceDeviceInfo[]): void {
    this.fenceDevices = devices;
  }

  attach(rt: EngineRuntime): void {
    this.rt = rt;
  }

  observer(): EngineRuntimeObserver {
    return {
      applied: (_rt, e: Entry) => this.onApplied(e),
      afterStep: () => this.track(),
      booted: () => this.track(),
      fenced: (_rt, rec: FenceRecord) => this.countFence(rec),
      activation: (_rt, ev) => this.followActivation(ev),
    };
  }

  private onApplied(e: Entry): void {
    this.notifyWatchers(e);
    // Per applied entry only what applying can change: the activation (without fencing a
    // leader becomes active when its term's first entry applies). Role and leader change
    // in steps, and every step ends in afterStep → track(). A full track() here read
    // status() per entry (a copy of the configuration and of the progress table): under
    // 64 writers that was an allocation per write on the leader.
    this.trackActivation(undefined);
  }

  private track(): void {
    const rt = this.rt;
    if (!rt || !rt.engine) return;
    // After every step (every propose on a leader, every message on any node): the three
    // getters where the engine has them, not an EngineStatus object each time.
    const e = rt.engine;
    let role = e.currentRole;
    let leader = e.currentLeader;
    let term = e.currentTerm;
    if (role === undefined || leader === undefined || term === undefined) {
      const s = e.status();
      role = roleName(s);
      leader = s.leader;
      term = s.term;
    }
    if (role !== this.lastRole) {
      if (role === 'candidate') this.elections++;
      this.lastRole = role;
    }
    if (leader !== this.lastLeader) {
      if (leader !== 0) this.leaderChanges++;
      this.lastLeader = leader;
    }
    this.trackActivation(term);
  }

  /** Follows the active token (hooks' leadership events); `term`: the engine's, or undefined to read it only when an event is due. */
  private trackActivation(term: number | undefined): void {
    const rt = this.rt;
    if (!rt || !rt.engine) return;
    if (this.fenceDevices !== undefined) return; // activation events come from the runtime
    const token = rt.activeToken;
    if (token > 0 && (!this.activeNow || token !== this.activeToken)) {
      const t = term ?? rt.engine.status().term;
      if (this.activeNow) this.onLeadership?.({ event: 'inactive', term: this.activeTerm, token: this.activeToken });
      this.activeNow = true;
      this.activeToken = token;
      this.activeTerm = t;
      this.onLeadership?.({ event: 'active', term: t, token });
    } else if (token === 0 && this.activeNow) {
      this.activeNow = false;
      this.onLeadership?.({ event: 'inactive', term: term ?? rt.engine.status().term, token: this.activeToken });
    }
  }

  get active(): boolean {
    return this.activeNow;
  }

  /**
   * This node's leadership while it is the active leader now (service discovery reaps
   * with it; jobs claim slots for it). With fencing: the activation gate judged at this
   * instant (lease included).
   */
  activeLeadership(): Leadership | undefined {
    const rt = this.rt;
    if (!rt || !rt.engine) return undefined;
    const token = rt.activeToken;
    return token > 0 ? { term: rt.engine.status().term, token } : undefined;
  }

  status(): StatusView {
    const s = this.rt?.status();
    const progress = new Map((this.rt?.engine?.replicaProgress?.() ?? []).map((p) => [p.id, p]));
    return {
      id: this.self.name,
      engine: this.rt?.engineName ?? 'paxos',
      role: s ? roleName(s) : 'down',
      ...(s?.detail && s.detail !== roleName(s) ? { detail: s.detail } : {}),
      term: s?.term ?? 0,
      leader: this.nameOf(s?.leader ?? 0),
      active: this.activeNow,
      commitIndex: s?.commitIndex ?? 0,
      appliedIndex: s?.appliedIndex ?? 0,
      peers: this.members.filter((m) => m.id !== this.self.id).map((m) => {
        const p = progress.get(m.id);
        return { id: m.name, nodeId: m.id, role: m.role, ...this.contactOf(m.id), ...(p ? { match: p.match, state: p.state } : {}) };
      }),
      links: this.linksView(),
      relays: (this.fenceDevices ?? []).map((d) => ({ ...d })),
      witness: this.isWitness,
      ...this.fencingView(s),
    };
  }

  leader(): LeaderView {
    const s = this.rt?.status();
    const leaderId = s?.leader ?? 0;
    const token = leaderId === 0 ? 0 : leaderId === this.self.id ? (s?.token ?? 0) : this.followerToken();
    return { leader: this.nameOf(leaderId), term: s?.term ?? 0, token };
  }

  /**
   * The leader's token as a follower knows it: the index of the leadership's first
   * entry in its log (EngineStatus.epochStart: Raft the term's first entry, ZAB the
   * epoch-start zxid (e, 0) NEWLEADER told it), once committed here; 0 before, and 0
   * for engines that do not name it (Paxos, see the header).
   */
  private followerToken(): number {
    const st = this.rt?.engine?.status();
    const start = st?.epochStart ?? 0;
    return start > 0 && st!.commitIndex >= start ? start : 0;
  }

  put(key: string, value: Uint8Array, opts: { cas?: number; pbftClient?: ClientRef }, cb: ClientCallback): void {
    const tr = this.trace;
    if (tr) {
      // http.in happened before the index was known: recorded with its own time.
      const t0 = tr.now();
      const inner = cb;
      cb = (r) => {
        if (r.index !== undefined) {
          tr.markAt('http.in', r.index, r.index, t0);
          tr.mark('http.out', r.index);
        }
        inner(r);
      };
    }
    this.need(cb)?.put(key, value, opts, this.timed(cb));
  }
  del(key: string, opts: { cas?: number; pbftClient?: ClientRef }, cb: ClientCallback): void {
    this.need(cb)?.del(key, opts, this.timed(cb));
  }
  /** Engine pbft: the reply this node signed for a client request (pbft-clients.ts). */
  pbftClientReply(id: Uint8Array, seq: number): PbftReply | undefined {
    return this.rt?.engineName === 'pbft' ? this.rt.pbftClientReply(id, seq) : undefined;
  }
  /** Engine pbft: a lock command of a client that gathers f + 1 signed replies (daemon/client/pbft.ts). */
  pbftLock(cmd: LockCommand, ref: ClientRef, cb: ClientCallback): void {
    if (this.rt && this.rt.engineName !== 'pbft') return cb({ status: 400, error: `client/seq on a lock request are for engine pbft; this node runs ${this.rt.engineName}` });
    this.need(cb)?.pbftLock(cmd, ref, this.timed(cb));
  }
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    this.need(cb)?.lockAcquire(name, owner, ttlMs, lease, this.timed(cb));
  }
  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    this.need(cb)?.lockRenew(name, lease, this.timed(cb));
  }
  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    this.need(cb)?.lockRelease(name, lease, this.timed(cb));
  }

  jobs(): unknown[] {
    return this.jobsView?.() ?? [];
  }

  /**
   * `POST /v1/jobs/<name>/reset`: a job that is not in this node's `jobs:` list is a 404
   * (the list is the same on every node; a name not in it is a typo, and no slot of it is
   * ever claimed here); else the runtime proposes job.reset through the active leader.
   * Its 200 carries the reset's log index only (it may have been forwarded): what was
   * withdrawn is read from the record this node applied, which holds it by then.
   */
  jobReset(job: string, cb: (a: JobResetAnswer) => void): void {
    if (this.rt?.engineName === 'pbft') return cb({ status: 501, error: 'jobs are not offered under engine pbft (they need a trusted leader): there is nothing to reset' });
    const names = ((this.jobsView?.() ?? []) as Array<{ name: string }>).map((j) => j.name);
    if (!names.includes(job)) {
      return cb({ status: 404, error: `no job named ${JSON.stringify(job)} in this node's jobs: list (${names.length === 0 ? 'no jobs configured' : `configured: ${names.join(', ')}`})` });
    }
    const rt = this.need(cb);
    if (!rt) return;
    rt.jobReset(job, (r) => {
      if (r.status !== 200) return cb({ status: r.status, ...(r.error !== undefined ? { error: r.error } : {}) });
      const z = rt.stateMachine.job(job)?.reset;
      if (!z || z.index !== r.index) return cb({ status: 200, withdrawn: null, floor: null });
      const name = (id: number) => this.nameOf(id) ?? `n${id}`;
      cb({ status: 200, withdrawn: { slot: isoUtc(z.withdrawn.slot), node: name(z.withdrawn.node), term: z.withdrawn.term }, floor: isoUtc(z.floor) });
    });
  }

  metrics(): MetricFamily[] {
    const s = this.rt?.status();
    const engine = this.rt?.engineName ?? 'paxos';
    const roles = engine === 'raft' ? ['follower', 'pre-candidate', 'candidate', 'leader', 'down'] : ['follower', 'candidate', 'leader', 'down'];
    const role = s ? roleName(s) : 'down';
    const g = gauge;
    const c = counter;
    return [
      { name: 'quorumd_role', help: 'Current role (1 for the current one).', type: 'gauge', samples: roles.map((r) => ({ labels: { role: r }, value: role === r ? 1 : 0 })) },
      g('quorumd_active', '1 while this node is the active leader (its leadership\'s fencing token issued).', this.activeNow ? 1 : 0),
      g('quorumd_term', `Current term${TERM_MEANS[engine] ? ` (${engine}: ${TERM_MEANS[engine]})` : ''}.`, s?.term ?? 0),
      g('quorumd_commit_index', 'Highest log index known committed.', s?.commitIndex ?? 0),
      g('quorumd_apply_index', 'Highest log index applied to the state machine.', s?.appliedIndex ?? 0),
      g('quorumd_last_index', 'Last log index.', s?.lastIndex ?? 0),
      c('quorumd_elections_total', 'Elections this node started (became candidate).', this.elections),
      c('quorumd_leader_changes_total', 'Leader changes seen by this node.', this.leaderChanges),
      g('quorumd_fencing_token', 'Fencing token of this node\'s leadership while active (0 otherwise).', this.activeNow ? this.activeToken : 0),
      g('quorumd_elected', '1 while this node is the elected leader (active or not).', s?.elected ? 1 : 0),
      g('quorumd_self_fencing', '1 when this node stopped feeding its watchdog (it lost its lease after being active).', s?.selfFencing ? 1 : 0),
      ...this.linkMetrics(),
      this.fencesMetric(),
      ...this.frameMetrics(s),
      c('quorumd_fsyncs_total', 'fsync calls (files and directory).', s?.storage?.syncs ?? 0),
      { name: 'quorumd_fsync_seconds', help: 'fsync latency.', type: 'histogram', histogram: this.fsync.snapshot() },
      { name: 'quorumd_commit_seconds', help: 'Writes through this node that succeeded: from the request to its commit and apply, forwarding included.', type: 'histogram', histogram: this.commitLatency.snapshot() },
      g('quorumd_pending_writes', 'Client writes waiting for commit.', s?.pending.writes ?? 0),
      g('quorumd_pending_reads', 'Client reads waiting for their read index.', s?.pending.reads ?? 0),
      g('quorumd_kv_keys', 'Keys and lock records in the replicated state (what kv.maxKeys bounds).', this.rt?.stateMachine.usage().keys ?? 0),
      g('quorumd_kv_bytes', 'Bytes of keys, values, lock names and owners in the replicated state (what kv.maxBytes bounds).', this.rt?.stateMachine.usage().bytes ?? 0),
      c('quorumd_quota_refusals_total', 'Writes this node refused as leader because a kv quota was full (507).', this.rt?.quotaRefusals ?? 0),
      c('quorumd_lock_refusals_total', 'Lock renewals/releases this node refused as leader without writing (wrong lease, not held).', this.rt?.lockRefusals ?? 0),
      c('quorumd_forwarded_answered_unapplied_total', 'Writes this node forwarded and answered at their request timeout before it had applied them (cut off from its leader or far behind): a ?stale read here right after may not have seen them.', this.rt?.answeredUnapplied ?? 0),
      { name: 'quorumd_info', help: 'Static node information.', type: 'gauge', samples: [{ labels: { node: this.self.name, cluster: this.clusterName, engine }, value: 1 }] },
    ];
  }
}

/** What `quorumd_term` counts, for engines whose leadership number is not a term. */
const TERM_MEANS: Record<string, string> = { paxos: 'promised ballot', zab: 'epoch', pbft: 'view' };

/**
 * The role as the API shows it: the contract's role, except Raft's pre-candidate
 * (role 'candidate', detail 'pre-candidate'), which Raft's API has always shown as a
 * role of its own (it has not started an election: it asks whether it could win one).
 */
function roleName(s: { role: string; detail?: string | undefined }): string {
  return s.detail === 'pre-candidate' ? 'pre-candidate' : s.role;
}
