/**
 * PBFT's safety and liveness properties as a pure checker over observed events, so
 * that the engine harness (test/src/pbft/harness.ts) uses it now and the one
 * simulated cluster can plug it in later unchanged. It sees only what an observer
 * outside the replicas can know for sure: which replicas are honest (the simulator
 * knows whom it made Byzantine), and what honest replicas did. Byzantine replicas
 * are never observed: they may do anything.
 *
 * Properties (Castro & Liskov §4.5, "Safety" and "Liveness"):
 *   - prepared-agreement: no two honest replicas are prepared for different requests
 *     at the same (view, seq) — the lemma the normal case rests on;
 *   - commit-agreement: no two honest replicas commit (committed-local) different
 *     requests at the same sequence number, in any views;
 *   - execution-agreement: honest replicas execute the same request at each sequence
 *     number (they execute the same sequence: each executes in order from 1 or from
 *     an installed checkpoint, so every honest history is a prefix of one sequence);
 *   - contiguity: an honest replica executes sequence numbers one after another, or
 *     jumps only to a checkpoint it installs (state transfer);
 *   - checkpoint-agreement: honest replicas' checkpoint digests at one seq agree;
 *   - view-monotonic: an honest replica's view never decreases, across restarts too;
 *   - client-safety: every result a client accepted (f + 1 matching replies) was
 *     executed by an honest replica, at that index, with that result;
 *   - liveness (checkLiveness): once the network is synchronous and at most f replicas
 *     are faulty, every request an honest origin keeps retransmitting executes at
 *     every honest replica, and the honest replicas reach the same executed index.
 * Each violation is recorded (with the first one thrown when `throwOnViolation`),
 * naming replicas, indexes and the conflicting values: a failing seed is a bug report.
 */
import type { Index, NodeId, Term } from '../types.ts';

/** What an honest replica executed at one index: the request's identity and (for requests) its result. */
export interface Execution {
  /** A stable name of the request: 'null', or `${origin}/${reqNo}/${digestHex}`. */
  request: string;
  /** What the entry did: e.g. 'normal:<op>' / 'noop' (a duplicate runs as a no-op). */
  effect: string;
  /** The state machine's result, if the request was a command that ran. */
  result?: string;
}

export class PbftInvariants {
  readonly violations: string[] = [];
  private readonly honest: ReadonlySet<NodeId>;
  private readonly prepared = new Map<string, { digest: string; replica: NodeId }>();
  private readonly committed = new Map<Index, { digest: string; replica: NodeId }>();
  private readonly executed = new Map<Index, { e: Execution; replica: NodeId }>();
  private readonly last = new Map<NodeId, Index>();
  private readonly views = new Map<NodeId, Term>();
  private readonly checkpoints = new Map<Index, { digest: string; replica: NodeId }>();
  /** (origin/reqNo) → index and result of its (first) honest execution. */
  private readonly ran = new Map<string, Array<{ index: Index; result: string | undefined; replica: NodeId }>>();
  accepted = 0;

  constructor(
    honest: Iterable<NodeId>,
    private readonly throwOnViolation = true,
  ) {
    this.honest = new Set(honest);
  }

  isHonest(id: NodeId): boolean {
    return this.honest.has(id);
  }

  private fail(msg: string): void {
    this.violations.push(msg);
    if (this.throwOnViolation) throw new Error(`pbft invariant: ${msg}`);
  }

  observePrepared(replica: NodeId, view: Term, seq: Index, digest: string): void {
    if (!this.honest.has(replica)) return;
    const key = `${view}/${seq}`;
    const p = this.prepared.get(key);
    if (!p) this.prepared.set(key, { digest, replica });
    else if (p.digest !== digest) this.fail(`prepared-agreement: replicas ${p.replica} and ${replica} are prepared for different requests at view ${view} seq ${seq} (${p.digest.slice(0, 12)} vs ${digest.slice(0, 12)})`);
  }

  observeCommitted(replica: NodeId, view: Term, seq: Index, digest: string): void {
    if (!this.honest.has(replica)) return;
    const c = this.committed.get(seq);
    if (!c) this.committed.set(seq, { digest, replica });
    else if (c.digest !== digest) this.fail(`commit-agreement: replicas ${c.replica} and ${replica} committed different requests at seq ${seq} (${c.digest.slice(0, 12)} vs ${digest.slice(0, 12)}, the latter in view ${view})`);
  }

  /** An honest replica restarted from durable state that reaches `from` (its snapshot index). */
  observeRestart(replica: NodeId, from: Index): void {
    if (!this.honest.has(replica)) return;
    this.last.set(replica, from);
  }

  /** An honest replica installed a checkpoint at `seq` by state transfer (its execution jumps there). */
  observeInstalled(replica: NodeId, seq: Index): void {
    if (!this.honest.has(replica)) return;
    const l = this.last.get(replica) ?? 0;
    if (seq < l) this.fail(`contiguity: replica ${replica} installed checkpoint ${seq} below its executed index ${l}`);
    this.last.set(replica, seq);
  }

  observeExecuted(replica: NodeId, index: Index, e: Execution): void {
    if (!this.honest.has(replica)) return;
    const l = this.last.get(replica) ?? 0;
    if (index > l + 1) this.fail(`contiguity: replica ${replica} executed ${index} after ${l}`);
    if (index > l) this.last.set(replica, index);
    const x = this.executed.get(index);
    if (!x) this.executed.set(index, { e, replica });
    else if (x.e.request !== e.request || x.e.effect !== e.effect || (x.e.result !== undefined && e.result !== undefined && x.e.result !== e.result)) {
      this.fail(`execution-agreement: at index ${index} replica ${x.replica} executed ${x.e.request} (${x.e.effect}, result ${x.e.result}) but replica ${replica} executed ${e.request} (${e.effect}, result ${e.result})`);
    }
    if (e.request !== 'null') {
      const id = e.request.split('/').slice(0, 2).join('/');
      let list = this.ran.get(id);
      if (!list) this.ran.set(id, (list = []));
      if (!list.some((r) => r.index === index && r.result === e.result)) list.push({ index, result: e.result, replica });
    }
  }

  observeCheckpoint(replica: NodeId, seq: Index, digest: string): void {
    if (!this.honest.has(replica)) return;
    const c = this.checkpoints.get(seq);
    if (!c) this.checkpoints.set(seq, { digest, replica });
    else if (c.digest !== digest) this.fail(`checkpoint-agreement: replicas ${c.replica} and ${replica} have different checkpoint digests at ${seq}`);
  }

  /**
   * An honest replica restarted: its view may fall back to the last one it made durable
   * (a view it entered and crashed in before persisting it: nothing of that view left
   * it, since a replica persists before it sends), never below that.
   */
  observeRestartView(replica: NodeId, durableView: Term): void {
    if (!this.honest.has(replica)) return;
    this.views.set(replica, durableView);
  }

  observeView(replica: NodeId, view: Term): void {
    if (!this.honest.has(replica)) return;
    const v = this.views.get(replica) ?? 0;
    if (view < v) this.fail(`view-monotonic: replica ${replica} went from view ${v} back to ${view}`);
    else this.views.set(replica, view);
  }

  /** A client accepted `result` for request origin/reqNo at `index` (f + 1 matching replies). */
  observeAccepted(origin: NodeId, reqNo: number, index: Index, result: string): void {
    this.accepted++;
    const runs = this.ran.get(`${origin}/${reqNo}`) ?? [];
    if (!runs.some((r) => r.index === index && r.result === result)) {
      const seen = runs.map((r) => `${r.index}:${r.result} at ${r.replica}`).join(', ') || 'never executed by an honest replica';
      this.fail(`client-safety: a client accepted result ${JSON.stringify(result)} at index ${index} for request ${origin}/${reqNo}, but honest replicas executed: ${seen}`);
    }
  }

  /** Highest index each honest replica executed (as observed). */
  executedBy(replica: NodeId): Index {
    return this.last.get(replica) ?? 0;
  }

  /**
   * Liveness after stabilization: every request in `required` (origin/reqNo, from honest
   * origins) executed, and all honest replicas reached the same executed index.
   * Returns what is missing (empty = live).
   */
  checkLiveness(required: Iterable<string>, honestUp: readonly NodeId[]): string[] {
    const missing: string[] = [];
    for (const r of required) if (!this.ran.has(r)) missing.push(`request ${r} never executed`);
    const idx = honestUp.map((id) => this.executedBy(id));
    if (idx.length > 0 && Math.min(...idx) !== Math.max(...idx)) missing.push(`honest replicas executed up to different indexes: ${honestUp.map((id, k) => `${id}:${idx[k]}`).join(' ')}`);
    return missing;
  }
}
