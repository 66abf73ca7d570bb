/**
 * `quorumd sim --engine pbft`: what the simulated cluster (engine-cluster.ts) adds for
 * PBFT, in one place.
 *
 *   - The `byzantine` fault kind: from the seed, 1..f data nodes lie for the whole run,
 *     each with a random set of the behaviours of src/pbft/byzantine.ts (the saboteur
 *     the engine harness proves things with): their PBFT traffic and the replies they
 *     sign go through it, and a 'wrong-reply' liar also lies to its own clients.
 *   - Keys: the simulator's stand-in signer (src/pbft/auth.ts SimulatedKeys), each
 *     node handed only its own, so a liar cannot sign as another node.
 *   - Checks: src/pbft/invariants.ts over the honest nodes (prepared-, commit- and
 *     execution-agreement, contiguity, checkpoint agreement, views never go back,
 *     client-safety), fed from what the runtimes persisted, executed and hold; the
 *     shared checks of engine-invariants.ts run over honest nodes only.
 *   - Clients: a result counts only with f + 1 matching signed replies from distinct
 *     nodes (src/pbft/reply.ts acceptReplies). The node a client asked answers with the
 *     request's identity (ClientResult.pbft); the client then waits for f + 1 replies
 *     in the pool every runtime's signed replies go to, and takes the status and index
 *     from those, never from the node it asked. Without f + 1 before its deadline the
 *     outcome is unknown (504). Every accepted result is checked (client-safety) to
 *     have been executed by an honest node at that index with that result. The lock
 *     clients of `--locks` (locks.ts) go through the same client: their acquire, renew
 *     and release, with `now` = 0 as every pbft client writes it (the replicas execute
 *     lock commands at their agreed time), are certified like a put, and they count on
 *     a lease only until sent + ttl − (P + C) (PBFT_LOCK_WORKLOAD).
 *   - Fencing (unless `--no-stonith`): the relays of fencing.ts (every data board's
 *     supply switched by its neighbours), each board's failure detector voting through
 *     the log (daemon/runtime/pbft-fencing.ts), and every liar also voting to fence
 *     every other board all the time. PbftFenceChecks: every fence decision an honest
 *     replica executes counts at least one honest voter whose own detector suspected
 *     the target when it proposed that vote (`pbft-fence-vote`), and no data board is
 *     off because of fencing unless a decision to fence it executed (`pbft-fence-undecided`).
 */
import { BYZ_KINDS, Saboteur, type ByzKind } from '../../src/pbft/byzantine.ts';
import { SimulatedKeys, type PbftAuth } from '../../src/pbft/auth.ts';
import { PbftInvariants } from '../../src/pbft/invariants.ts';
import { acceptReplies, type PbftReply } from '../../src/pbft/reply.ts';
import { sha256 } from '../../src/pbft/encoding.ts';
import type { PbftNode } from '../../src/pbft/pbft.ts';
import type { Ready } from '../../src/engine/contract.ts';
import type { ApplyResult } from '../../src/kv/index.ts';
import { encodeCommand } from '../../src/kv/index.ts';
import { EntryType, type Entry } from '../../src/wire/messages.ts';
import type { Index, NodeId } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Scheduler } from '../../firmware-sim/scheduler.ts';
import type { EngineRuntime } from '../runtime/engine-node.ts';
import { resultToClient } from '../runtime/results.ts';
import { Status, type ClientCallback, type ClientResult } from '../runtime/results.ts';
import { decodeResult, encodeResult } from '../runtime/pbft-host.ts';
import type { EngineChecks } from './engine-invariants.ts';
import type { FenceDecision, FenceRequest } from '../../src/pbft/actuation.ts';
import type { BoardHal } from '../../firmware-sim/board.ts';
import type { PbftFencingOptions } from '../runtime/pbft-fencing.ts';
import { simFencing, type FenceWiring } from './fencing.ts';
import type { WorkloadNode } from './workload.ts';
import type { LockNode, LockWorkloadOptions } from './locks.ts';
import { leaseDigest } from '../../src/kv/lease.ts';
import { PBFT_TIME_CAP_MS, PBFT_TIME_REPORT_MS } from '../runtime/pbft-time.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The liars of one seed: 1..f nodes, each with a random non-empty set of behaviours. */
export function pickByzantine(rng: Rng, members: readonly NodeId[]): Map<NodeId, ByzKind[]> {
  const f = Math.floor((members.length - 1) / 3);
  const out = new Map<NodeId, ByzKind[]>();
  if (f === 0) return out;
  const count = rng.int(1, f);
  const pool = [...members];
  for (let i = 0; i < count; i++) {
    const id = pool.splice(rng.int(0, pool.length - 1), 1)[0]!;
    const kinds = BYZ_KINDS.filter(() => rng.chance(0.35));
    out.set(id, kinds.length > 0 ? kinds : [rng.pick(BYZ_KINDS)]);
  }
  return out;
}

export class PbftSimKeys {
  private readonly keys: SimulatedKeys;
  constructor(members: readonly NodeId[], seed: number) {
    this.keys = new SimulatedKeys(members, `sim-pbft-${seed}`);
  }
  auth(id: NodeId): PbftAuth {
    return this.keys.auth(id);
  }
}

export function saboteurFor(auth: PbftAuth, members: readonly NodeId[], kinds: readonly ByzKind[], rng: Rng): Saboteur {
  return new Saboteur({ auth, members, kinds, rng });
}

/** PBFT's own checks (src/pbft/invariants.ts) over the honest nodes. */
export class PbftChecks implements EngineChecks {
  readonly engine = 'pbft' as const;
  readonly inv: PbftInvariants;
  /** Highest view (HardState.term) each replica made durable. */
  private readonly durableView = new Map<NodeId, number>();
  private readonly seen = new Map<NodeId, { prepared: Map<Index, { view: number; digest: Uint8Array }>; committed: Map<Index, { view: number; digest: Uint8Array }> }>();

  constructor(honest: readonly NodeId[]) {
    this.inv = new PbftInvariants(honest, false);
  }
  get violations(): readonly string[] {
    return this.inv.violations;
  }
  booted(rt: EngineRuntime): void {
    this.inv.observeRestart(rt.id, rt.stateMachine.appliedIndex);
    // Views never go back below the durable one (afterStep sees the in-memory view, which a crash may undo before it is persisted and sent).
    this.inv.observeRestartView(rt.id, this.durableView.get(rt.id) ?? 0);
    this.inv.observeView(rt.id, (rt.engine as PbftNode).currentView);
    this.seen.set(rt.id, { prepared: new Map(), committed: new Map() });
  }
  persisted(rt: EngineRuntime, rd: Ready): void {
    if (rd.hardState && rd.hardState.term > (this.durableView.get(rt.id) ?? 0)) this.durableView.set(rt.id, rd.hardState.term);
    if (rd.snapshot) this.inv.observeInstalled(rt.id, rd.snapshot.meta.index);
  }
  applied(rt: EngineRuntime, e: Entry, result?: ApplyResult): void {
    const eng = rt.engine as PbftNode;
    const req = eng.executedRequest(e.index);
    const normal = e.type === EntryType.Normal;
    this.inv.observeExecuted(rt.id, e.index, {
      request: req ? `${req.origin}/${req.reqNo}/${hex(req.digest)}` : 'null',
      effect: normal ? `normal:${hex(sha256(e.data))}` : 'noop',
      ...(normal && req ? { result: hex(encodeResult(resultToClient(result))) } : {}),
    });
  }
  proposed(): void {}
  snapshotTaken(): void {}
  checkpointed(rt: EngineRuntime, index: Index): void {
    const d = (rt.engine as PbftNode).ownCheckpoint(index);
    if (d) this.inv.observeCheckpoint(rt.id, index, hex(d));
  }
  afterStep(rt: EngineRuntime): void {
    const e = rt.engine as PbftNode | undefined;
    if (!e) return;
    this.inv.observeView(rt.id, e.currentView);
    const s = this.seen.get(rt.id);
    if (!s) return;
    for (const seq of e.slotSeqs()) {
      const p = e.preparedAt(seq);
      if (p) {
        const k = s.prepared.get(seq);
        if (!k || k.view !== p.view || k.digest !== p.digest) {
          s.prepared.set(seq, p);
          this.inv.observePrepared(rt.id, p.view, seq, hex(p.digest));
        }
      }
      const c = e.committedAt(seq);
      if (c) {
        const k = s.committed.get(seq);
        if (!k || k.view !== c.view || k.digest !== c.digest) {
          s.committed.set(seq, c);
          this.inv.observeCommitted(rt.id, c.view, seq, hex(c.digest));
        }
      }
    }
    if (s.prepared.size > 512) for (const k of [...s.prepared.keys()]) if (k <= e.stableCheckpoint) s.prepared.delete(k);
    if (s.committed.size > 512) for (const k of [...s.committed.keys()]) if (k <= e.stableCheckpoint) s.committed.delete(k);
  }
}

/**
 * The f + 1 client: a WorkloadNode in front of one runtime whose answers it does not
 * trust (see the header). `pool` holds every signed reply of every node.
 */
export class ReplyPool {
  private readonly replies = new Map<string, PbftReply[]>();
  private readonly waiters = new Map<string, Array<() => void>>();
  constructor(
    private readonly members: readonly NodeId[],
    private readonly verifier: PbftAuth,
    private readonly checks: PbftChecks,
    /** Matching replies a client needs; default f + 1 (less only to show client-safety catches it). */
    private readonly quorum = Math.floor((members.length - 1) / 3) + 1,
  ) {}
  add(r: PbftReply): void {
    const key = `${r.origin}/${r.reqNo}`;
    let l = this.replies.get(key);
    if (!l) this.replies.set(key, (l = []));
    if (l.length < 4 * this.members.length) l.push(r);
    const w = this.waiters.get(key);
    if (w) {
      this.waiters.delete(key);
      for (const fn of w) fn();
    }
  }
  /** The result f + 1 matching replies certify for (origin, reqNo, op), or undefined yet. */
  accepted(origin: NodeId, reqNo: number, op: Uint8Array): { index: Index; result: Uint8Array } | undefined {
    const v = acceptReplies(this.replies.get(`${origin}/${reqNo}`) ?? [], { origin, reqNo, opDigest: sha256(op) }, { members: this.members, f: this.quorum - 1 }, this.verifier);
    if (!v.ok) return undefined;
    this.checks.inv.observeAccepted(origin, reqNo, v.index, hex(v.result));
    return { index: v.index, result: v.result };
  }
  wait(origin: NodeId, reqNo: number, fn: () => void): void {
    const key = `${origin}/${reqNo}`;
    let l = this.waiters.get(key);
    if (!l) this.waiters.set(key, (l = []));
    l.push(fn);
  }
}

/**
 * `--locks` under pbft: a lease runs on the replicas' agreed time, which docs/api.md
 * ("Locks under engine pbft") and docs/engines.md ("Locks: agreed time") say may end it
 * up to P + C (report period + cap, 3 s) earlier in real time than its ttl: a holder
 * counts on sent + ttl − 3 s and renews with at least that to spare. The ttls are longer
 * than the other engines' (6–12 s, renewed every ttl/3, so with 1–5 s to spare) so that
 * a hold still counts for 3–9 s; one or two renewals and half the holds lapsing keep
 * holds short and hand locks over by expiry often, which is what the agreed time decides.
 */
export const PBFT_LOCK_WORKLOAD: Partial<LockWorkloadOptions> = {
  ttlMinMs: 6000,
  ttlMaxMs: 12_000,
  renewMin: 1,
  renewMax: 2,
  lapseShare: 0.5,
  earlyEndMs: PBFT_TIME_REPORT_MS + PBFT_TIME_CAP_MS,
};

export class PbftClientNode implements WorkloadNode, LockNode {
  constructor(
    readonly rt: EngineRuntime,
    private readonly pool: ReplyPool,
    private readonly sched: Scheduler,
    private readonly waitMs: number,
  ) {}
  get id(): NodeId {
    return this.rt.id;
  }

  put(key: string, value: Uint8Array, opts: { cas?: number }, cb: ClientCallback): void {
    const op = encodeCommand(opts.cas !== undefined ? { op: 'put', key, value, cas: opts.cas } : { op: 'put', key, value });
    this.rt.put(key, value, opts, (res) => this.certify(res, op instanceof Uint8Array ? op : undefined, cb));
  }

  /** Lock commands as the node proposes them (`now` 0, the lease's digest), certified like a put. */
  lockAcquire(name: string, owner: string, ttlMs: number, lease: string, cb: ClientCallback): void {
    const op = encodeCommand({ op: 'lock.acquire', name, owner, ttlMs, now: 0, lease: leaseDigest(lease) });
    this.rt.lockAcquire(name, owner, ttlMs, lease, (res) => this.certify(res, op instanceof Uint8Array ? op : undefined, cb));
  }

  lockRenew(name: string, lease: string, cb: ClientCallback): void {
    const op = encodeCommand({ op: 'lock.renew', name, lease: leaseDigest(lease), now: 0 });
    this.rt.lockRenew(name, lease, (res) => this.certify(res, op instanceof Uint8Array ? op : undefined, cb));
  }

  lockRelease(name: string, lease: string, cb: ClientCallback): void {
    const op = encodeCommand({ op: 'lock.release', name, lease: leaseDigest(lease) });
    this.rt.lockRelease(name, lease, (res) => this.certify(res, op instanceof Uint8Array ? op : undefined, cb));
  }

  get(key: string, opts: { stale?: boolean }, cb: ClientCallback): void {
    // A read served by one node is that node's word: only the f + 1 write path is
    // certified here (reads through the log with f + 1 replies are not built yet).
    this.rt.get(key, opts, cb);
  }

  private certify(res: ClientResult, op: Uint8Array | undefined, cb: ClientCallback): void {
    if (!res.pbft || !op) return cb(res.status === Status.OK || res.status === Status.CONFLICT ? { status: Status.UNKNOWN, error: 'an answer without a request identity cannot be certified' } : res);
    const { origin, reqNo } = res.pbft;
    let done = false;
    const tryAccept = (): boolean => {
      const a = this.pool.accepted(origin, reqNo, op);
      if (!a) return false;
      const r = decodeResult(a.result);
      done = true;
      cb(r instanceof Error ? { status: Status.UNKNOWN, error: r.message } : r);
      return true;
    };
    if (tryAccept()) return;
    const again = () => {
      if (done) return;
      if (!tryAccept()) this.pool.wait(origin, reqNo, again);
    };
    this.pool.wait(origin, reqNo, again);
    this.sched.after(this.waitMs * 1000, () => {
      if (done) return;
      done = true;
      cb({ status: Status.UNKNOWN, error: `fewer than f + 1 matching replies for request ${origin}/${reqNo} within ${this.waitMs} ms` });
    });
  }
}

/** Virtual ms the honest replicas get, after the post-heal probe committed, to settle (pbftUnsettled). */
export const PBFT_SETTLE_MS = 30_000;

/**
 * PBFT's liveness beyond "some write commits" (the probe): once the network is
 * synchronous and at most f replicas are faulty, every honest replica takes part again
 * — it is in the normal mode of the one view the others are in and has executed as far
 * (Castro & Liskov §4.5.2: liveness is the honest replicas' progress, and an honest
 * replica left alone in another view counts against f). Null when settled, else what
 * differs. Run after the workload stopped, so the executed indexes come to rest.
 */
export function pbftUnsettled(honest: readonly EngineRuntime[]): string | null {
  if (honest.length === 0) return null;
  const st = honest.map((rt) => {
    const e = rt.engine as PbftNode | undefined;
    return { id: rt.id, view: e?.currentView ?? -1, normal: e ? !e.inViewChange : false, executed: e?.executedIndex ?? -1 };
  });
  const view = Math.max(...st.map((s) => s.view));
  const executed = Math.max(...st.map((s) => s.executed));
  if (st.every((s) => s.view === view && s.normal && s.executed === executed)) return null;
  return `honest replicas did not settle within ${PBFT_SETTLE_MS} ms of the post-heal write: ${st.map((s) => `n${s.id} view ${s.view}${s.normal ? '' : ' (view change)'} executed ${s.executed}`).join(', ')}`;
}

/** A fenced board is held as heard this long after a decision (ms): the simulated power-on (3 s) and boot fit well inside. */
export const SIM_PBFT_HOLD_MS = 10_000;

/** One boot's pbftFencing options: the board's relays (fencing.ts wiring), and the liar's false votes. */
export function simPbftFencing(hal: BoardHal, wiring: FenceWiring | null, liar: boolean, planted?: PbftFencingOptions['plantedTally']): PbftFencingOptions {
  const f = simFencing(hal, wiring);
  return {
    ...(f.relays ? { relays: f.relays } : {}),
    ...(f.powerSense ? { powerSense: f.powerSense } : {}),
    ...(f.fencer ? { fencer: f.fencer } : {}),
    holdAfterFenceMs: SIM_PBFT_HOLD_MS,
    ...(liar ? { lieSuspectAll: true } : {}),
    ...(planted ? { plantedTally: planted } : {}),
  };
}

/**
 * PBFT fencing's checks (see the header). The simulator knows who is honest; an honest
 * board's vote is recorded with its detector's view at the moment it proposed it.
 */
export class PbftFenceChecks {
  /** origin/reqNo of honest suspect votes proposed while the proposer's detector suspected the target. */
  private readonly honestSuspicions = new Set<string>();
  /** Targets some replica executed a fence decision about (any replica: a liar runs the same sequence and may switch first). */
  private readonly decidedTargets = new Set<NodeId>();
  decisions = 0;
  constructor(private readonly honest: ReadonlySet<NodeId>, private readonly fail: (invariant: string, detail: string) => void) {}

  voted(node: NodeId, reqNo: number, req: FenceRequest, detectorSuspects: boolean): void {
    if (this.honest.has(node) && req.kind === 'suspect' && detectorSuspects) this.honestSuspicions.add(`${node}/${reqNo}`);
  }

  decided(node: NodeId, d: FenceDecision): void {
    this.decidedTargets.add(d.target);
    if (!this.honest.has(node)) return;
    this.decisions++;
    if (!d.votes.some((v) => this.honestSuspicions.has(`${v.origin}/${v.reqNo}`))) {
      this.fail('pbft-fence-vote', `n${node} executed a fence of n${d.target} at ${d.index} (round ${d.round}) with votes ${d.votes.map((v) => `n${v.origin}/${v.reqNo}`).join(', ')}: none is an honest board's vote cast while its own detector suspected n${d.target}`);
    }
  }

  /** After a step, with the data boards that are off because of fencing (mains on, rail dead). */
  fencedOff(ids: readonly NodeId[]): void {
    for (const id of ids) {
      if (!this.decidedTargets.has(id)) this.fail('pbft-fence-undecided', `n${id} is off because of fencing (mains on, rail dead) but no replica executed a decision to fence it`);
    }
  }
}
