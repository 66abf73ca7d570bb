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
 *     have been executed by an honest node at that index with that result.
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
import type { WorkloadNode } from './workload.ts';

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

export class PbftClientNode implements WorkloadNode {
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
