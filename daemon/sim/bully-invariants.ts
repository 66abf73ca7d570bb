/**
 * The invariants of `quorumd sim --engine bully`, checked after every step of every
 * node (every delivered message, tick, campaign and handled Ready):
 *
 *   epochs only grow     a board's epoch never decreases, within a life or across a
 *                        restart (the persisted {epoch, held} is what it rebuilds from)
 *   persist before send  every Coordinator message leaves with an epoch that is already
 *                        durable on its sender (src/bully contract, step 1 before 2)
 *   tokens unique, grow  a coordinatorship's fencing token (epoch × 256 + id) is begun
 *                        at most once in the whole run — a board that restarted never
 *                        reuses an epoch it announced — and each board's successive
 *                        coordinatorships have growing tokens
 *
 * and, whenever the world has been quiet for `settleMs` (no fault applied, healed or in
 * force, no board booted or died), per connected component of live boards:
 *
 *   one coordinator      exactly one coordinator, the component's highest-priority
 *                        eligible live board, and every live member follows it
 *                        (none when the component has no eligible member)
 *
 * With STONITH (the default of `quorumd sim`), the split-brain checks of the activation
 * gate, after every step:
 *
 *   token-growth         a board's activations carry growing tokens (within a life and
 *                        across restarts), and an activation's token is above every
 *                        coordinator token its process had heard before it activated
 *                        (epoch = max seen + 1)
 *   dual-active          never two active coordinators X, Y where Y's process heard X's
 *                        current coordinatorship (its announcement, or followed it)
 *                        before Y activated: the gate must have shown X stopped first.
 *                        Two active coordinators that never heard of each other (two
 *                        sides of a partition) are what bully allows: measured
 *                        (dual_active_ms), not a violation
 *   fenced-all-off       (bully-sim.ts) never every data board off because of fencing
 *
 * The last check is the one bully promises (Garcia-Molina 1982: "the highest-priority
 * live node becomes coordinator"); what it does NOT promise — one coordinator across a
 * partition — is measured instead (dual_active_ms, stale_actuations in bully-sim.ts).
 */
import { fencingToken, type BullyEngine } from '../../src/bully/index.ts';
import type { Ready } from '../../src/engine/contract.ts';
import { MsgType, type Message } from '../../src/wire/messages.ts';
import type { NodeId, Term } from '../../src/types.ts';
import type { EngineRuntime, EngineRuntimeObserver } from '../runtime/engine-node.ts';
import { SimViolation } from './violation.ts';

/** A runtime that hosts the bully engine (engine-node.ts with engine: bully). */
type BullyRuntime = EngineRuntime;
/** Its engine, the contract adapter (src/bully/engine.ts). */
export function bullyOf(rt: BullyRuntime): BullyEngine {
  return rt.engine as BullyEngine;
}

interface Track {
  /** Highest epoch seen on this board in its current life (an adopted epoch not yet durable may be lost in a crash). */
  epoch: Term;
  /** Highest epoch made durable (any life). */
  durable: Term;
  /** Token of this board's latest coordinatorship. */
  lastToken: number;
  wasLeader: boolean;
}

export class BullyInvariantChecker implements EngineRuntimeObserver {
  private readonly nodes = new Map<NodeId, Track>();
  /** Every coordinatorship token begun in the run. */
  private readonly tokens = new Set<number>();
  /** Highest token of any coordinatorship begun so far (ground truth for stale actuations). */
  newestToken = 0;
  /** Coordinatorships begun. */
  coordinatorships = 0;
  /** Quiet-period checks made (a test asserts they ran). */
  settledChecks = 0;
  /** Invariant names not to check (planted-bug tests show the others catch the bug too). */
  readonly skip = new Set<string>();
  /** Coordinator tokens each process (runtime instance) heard, from the messages it received. */
  private readonly heardBy = new WeakMap<BullyRuntime, Set<number>>();
  /** What a process had heard when it last activated, and that activation's token. */
  private readonly atActivation = new WeakMap<BullyRuntime, { token: number; heard: Set<number> }>();
  /** Highest activation token per board (any life). */
  private readonly lastActivation = new Map<NodeId, number>();
  /** Activations seen. */
  activations = 0;

  constructor(
    private readonly now: () => number,
    private readonly onViolation: (v: SimViolation) => void,
    private readonly onCoordinator?: (rt: BullyRuntime, token: number) => void,
  ) {}

  fail(invariant: string, detail: string): never {
    const v = new SimViolation(invariant, detail, this.now());
    this.onViolation(v);
    throw v;
  }

  private track(id: NodeId): Track {
    let t = this.nodes.get(id);
    if (!t) this.nodes.set(id, (t = { epoch: 0, durable: 0, lastToken: 0, wasLeader: false }));
    return t;
  }

  booted(rt: BullyRuntime): void {
    const t = this.track(rt.id);
    const ep = bullyOf(rt).bullyStatus().epoch;
    if (ep < t.durable && !this.skip.has('epoch-durable')) this.fail('epoch-durable', `node ${rt.id} rebooted at epoch ${ep}, below the epoch ${t.durable} it had made durable`);
    t.wasLeader = false;
    t.epoch = ep;
    this.afterStep(rt);
  }

  afterStep(rt: BullyRuntime): void {
    if (!rt.engine || rt.state !== 'running') return;
    const t = this.track(rt.id);
    const s = bullyOf(rt).bullyStatus();
    // Within a life the epoch never decreases; across lives the durable one holds (booted()).
    if (s.epoch < t.epoch && !this.skip.has('epoch-monotonic')) this.fail('epoch-monotonic', `node ${rt.id}: epoch went from ${t.epoch} to ${s.epoch}`);
    t.epoch = s.epoch;
    t.durable = Math.max(t.durable, rt.durableHardState.term);
  }

  private beginCoordinatorship(rt: BullyRuntime, epoch: Term, t: Track): void {
    const token = fencingToken(epoch, rt.id);
    if (this.tokens.has(token) && !this.skip.has('token-unique')) this.fail('token-unique', `node ${rt.id} became coordinator at epoch ${epoch} (token ${token}) a second time: the epoch was reused`);
    if (token <= t.lastToken && !this.skip.has('token-grows')) this.fail('token-grows', `node ${rt.id}: coordinatorship token ${token} not above its previous ${t.lastToken}`);
    this.tokens.add(token);
    t.lastToken = token;
    this.coordinatorships++;
    this.newestToken = Math.max(this.newestToken, token);
    this.onCoordinator?.(rt, token);
  }

  persisted(rt: BullyRuntime, rd: Ready): void {
    const t = this.track(rt.id);
    const durable = rt.durableHardState.term;
    if (this.skip.has('persist-before-send')) {
      // fall through to the coordinatorship tracking only
    } else if (rd.hardState && rd.hardState.term > durable) this.fail('persist-before-send', `node ${rt.id}: Ready with epoch ${rd.hardState.term} handled while only ${durable} is durable`);
    // The runtime acts on a soft state once its Ready is durable: a coordinatorship
    // begins here (a fresh epoch without stepping down is a new one too).
    const ss = rd.softState;
    if (ss) {
      const leads = ss.role === 'leader';
      if (leads && (!t.wasLeader || fencingToken(ss.term, rt.id) !== t.lastToken)) this.beginCoordinatorship(rt, ss.term, t);
      t.wasLeader = leads;
    }
    for (const m of rd.messages) {
      if (m.type === MsgType.BullyCoordinator && m.term > durable && !this.skip.has('persist-before-send')) {
        this.fail('persist-before-send', `node ${rt.id} announces epoch ${m.term} to ${m.to} while only epoch ${durable} is durable`);
      }
    }
  }

  /** A message the runtime accepted (observer `received`): ground truth of what it heard. */
  received(rt: BullyRuntime, m: Message): void {
    if (m.type !== MsgType.BullyCoordinator) return;
    this.heard(rt).add(fencingToken(m.term, m.from));
  }

  private heard(rt: BullyRuntime): Set<number> {
    let h = this.heardBy.get(rt);
    if (!h) this.heardBy.set(rt, (h = new Set()));
    return h;
  }

  /** The runtime became active with `token` (observer `activation`). */
  activated(rt: BullyRuntime, token: number): void {
    this.activations++;
    const h = this.heard(rt);
    // A followed leader's token was heard (its announcement) as well: nothing else to add.
    const prev = this.lastActivation.get(rt.id) ?? 0;
    if (token <= prev && !this.skip.has('token-growth')) this.fail('token-growth', `node ${rt.id} activated with token ${token}, not above its previous activation ${prev}`);
    for (const t of h) {
      if (t >= token && !this.skip.has('token-growth')) this.fail('token-growth', `node ${rt.id} activated with token ${token} although it had heard coordinator token ${t}`);
    }
    this.lastActivation.set(rt.id, token);
    this.atActivation.set(rt, { token, heard: new Set(h) });
  }

  /**
   * No two active coordinators where the newer one had heard of the other's current
   * coordinatorship before it activated (see the file comment). `active`: live, active runtimes.
   */
  checkDualActive(active: readonly BullyRuntime[]): void {
    if (active.length < 2 || this.skip.has('dual-active')) return;
    for (const y of active) {
      const a = this.atActivation.get(y);
      if (!a || a.token !== y.activeToken) continue;
      for (const x of active) {
        if (x === y) continue;
        const tx = x.activeToken;
        if (a.heard.has(tx)) this.fail('dual-active', `n${y.id} (token ${a.token}) is active while n${x.id} still acts with token ${tx}, a coordinatorship n${y.id} had heard of before it activated (the gate should have fenced it first)`);
      }
    }
  }

  engineError(rt: BullyRuntime, err: Error): void {
    this.fail('engine-error', `node ${rt.id}: ${err.message}`);
  }

  /**
   * One coordinator per connected component, the highest-priority eligible live member,
   * followed by every live member. `components` are lists of live runtimes.
   */
  checkComponents(components: BullyRuntime[][], context: string): void {
    this.settledChecks++;
    const problem = settledProblem(components);
    if (problem) this.fail('one-coordinator', `${context}: ${problem}`);
  }
}

/** What is wrong with the components' leadership, or undefined if they are settled. */
export function settledProblem(components: BullyRuntime[][]): string | undefined {
  for (const comp of components) {
    const ids = comp.map((r) => r.id).join(',');
    let best: BullyRuntime | undefined;
    for (const r of comp) {
      const p = bullyOf(r).priority;
      if (p > 0 && (!best || p > bullyOf(best).priority)) best = r;
    }
    const coords = comp.filter((r) => r.isLeader).map((r) => r.id);
    if (!best) {
      if (coords.length > 0) return `component {${ids}} has no eligible member but coordinators ${coords.join(',')}`;
      continue;
    }
    if (coords.length !== 1 || coords[0] !== best.id) {
      return `component {${ids}}: expected exactly one coordinator, node ${best.id} (highest priority ${bullyOf(best).priority}), got [${coords.join(',')}]`;
    }
    for (const r of comp) {
      const l = bullyOf(r).actedState.leader;
      if (l !== best.id) return `component {${ids}}: node ${r.id} follows ${l || 'nobody'} instead of ${best.id}`;
    }
  }
  return undefined;
}
