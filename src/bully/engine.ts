/**
 * The bully engine behind the engine contract (src/engine/contract.ts), so that the one
 * node runtime (daemon/runtime/engine-node.ts) and the one simulated cluster host it.
 * A thin adapter around BullyNode (bully.ts), which keeps the algorithm and its own
 * Ready shape; nothing here decides anything about elections.
 *
 * Capabilities: election only (`caps.log` false). `propose` and `readIndex` refuse with
 * 'not-supported' (the runtime answers 501), as do `transferLeadership` and `compact`.
 *
 * Durable state, in the contract's one shape: `HardState.term` = the epoch (the
 * highest epoch seen or held), `HardState.vote` = `held` (the epoch of this node's own
 * latest coordinatorship, 0 if none; it may exceed 2^8, so the durable log keeps it
 * as a plain number), `commit` = 0. No entries, no snapshots. The contract keeps
 * `vote` ≤ 2^32 − 1 (the durable log stores it in 32 bits): four billion
 * coordinatorships, where the former bully.state allowed MAX_EPOCH (2^45).
 * Not reachable in practice, but a narrower bound than before: ready() throws (the
 * runtime's fatal path) rather than let a larger held epoch be truncated.
 *
 * Role, leader and term as the runtime and the API see them are the *acted* ones: the
 * soft state of the last advanced Ready, i.e. only once the epoch a coordinator
 * announces is durable (bully.ts, contract steps 1–3). The engine may already be
 * coordinator in memory while that fsync is in flight; `isLeader`, `status()` and
 * `leaderToken()` wait for it, as the bully runtime did. `node.status()` has the
 * in-memory view (the simulator's epoch checks read it).
 *
 * Members: `options.members` (BullyMember, with priorities), or, when absent, derived
 * from the MemberConfig: voters by list position (priority 1, 2, ...: the last voter is
 * the preferred coordinator), learners and witnesses with priority 0 (never coordinate).
 */
import type { Capabilities, Engine, EngineInit, EngineRole, EngineStatus, HardState, Ready, Result, SnapshotMeta } from '../engine/contract.ts';
import type { Entry, MemberConfig } from '../wire/messages.ts';
import { NO_NODE, type Index, type NodeId, type Term } from '../types.ts';
import { BullyNode, NOT_SUPPORTED_REASON, type BullyReady, type BullyRole, type BullySoftState, type BullyStatus } from './bully.ts';
import { fencingToken, type BullyMember, type BullyOptions } from './options.ts';

/** Engine options: BullyOptions plus the member list with priorities. */
export interface BullyEngineOptions extends BullyOptions {
  members: readonly BullyMember[];
}

export const BULLY_CAPS: Readonly<Capabilities> = Object.freeze({ log: false, reads: false, transfer: false, witness: true, lease: false, byzantine: false });

/** The default member list of a MemberConfig (see the file comment). */
export function bullyMembersOf(config: MemberConfig): BullyMember[] {
  return [...config.voters.map((id, i) => ({ id, priority: i + 1 })), ...config.learners.map((id) => ({ id, priority: 0 })), ...config.witnesses.map((id) => ({ id, priority: 0 }))];
}

const ROLE: Record<BullyRole, EngineRole> = { coordinator: 'leader', candidate: 'candidate', follower: 'follower' };

export class BullyEngine implements Engine {
  readonly id: NodeId;
  readonly name = 'bully' as const;
  readonly caps = BULLY_CAPS;
  readonly tickMs: number;
  /** The algorithm (its own status, drop counters and in-memory epoch). */
  readonly node: BullyNode;
  private readonly config: MemberConfig;
  private outstanding: { outer: Ready; inner: BullyReady } | undefined;
  private acted: BullySoftState;
  private durable: { epoch: Term; held: Term };

  constructor(init: EngineInit<BullyEngineOptions>) {
    if (typeof init !== 'object' || init === null) throw new TypeError('BullyEngine: expected an EngineInit object {id, config, rng, hardState?, options?}');
    // maxMsgBytes and heartbeatRounds are options the runtime gives every engine (bully's
    // messages are a few bytes; its heartbeats carry no rounds: no lease): accepted, unused.
    const { members, maxMsgBytes: _m, heartbeatRounds: _h, ...bullyOpts } = (init.options ?? {}) as Partial<BullyEngineOptions> & { maxMsgBytes?: unknown; heartbeatRounds?: unknown };
    const hs = init.hardState;
    if (hs !== undefined && (typeof hs !== 'object' || hs === null)) throw new TypeError(`BullyEngine: hardState must be {term, vote, commit}, got ${String(hs)}`);
    if (!init.config || !Array.isArray(init.config.voters)) throw new TypeError('BullyEngine: config must be a MemberConfig {voters, learners, witnesses}');
    this.config = { voters: [...init.config.voters], learners: [...(init.config.learners ?? [])], witnesses: [...(init.config.witnesses ?? [])] };
    // BullyNode validates everything else (id, members, options, the persisted epochs) and names the problem.
    this.node = new BullyNode({
      id: init.id,
      members: members ?? bullyMembersOf(this.config),
      ...(hs ? { persisted: { epoch: hs.term, held: hs.vote } } : {}),
      options: bullyOpts,
      rng: init.rng,
    });
    this.id = this.node.id;
    this.tickMs = this.node.options.tickMs;
    const s = this.node.status();
    this.durable = { epoch: s.epoch, held: hs?.vote ?? 0 };
    this.acted = { role: 'follower', leader: NO_NODE, term: s.epoch };
  }

  // ---- inputs ---------------------------------------------------------------

  tick(): void {
    this.node.tick();
  }

  step(m: Parameters<Engine['step']>[0]): void {
    this.node.step(m);
  }

  propose(_data: Uint8Array): Result {
    return { ok: false, code: 'not-supported', reason: NOT_SUPPORTED_REASON };
  }

  readIndex(_ctx: number): Result<{ term: Term }> {
    return { ok: false, code: 'not-supported', reason: NOT_SUPPORTED_REASON };
  }

  transferLeadership(_to: NodeId): Result<{ term: Term }> {
    return { ok: false, code: 'not-supported', reason: 'the bully engine has no leadership transfer: the followers notice a stopped coordinator within one failure timeout' };
  }

  campaign(): Result<{ term: Term }> {
    return this.node.campaign();
  }

  /**
   * The link reported node `id`'s connection gone (its MQTT Last Will). If it is the
   * coordinator this node follows, start an election at once (bully needs no vote, so
   * there is no split vote to stagger against: the Elections go upwards and the highest
   * survivor announces within one answer timeout). `forgot` stays false: the runtime
   * has nothing more to schedule.
   */
  leaderGone(id: NodeId): Result<{ forgot: boolean }> {
    if (id !== this.id && id !== NO_NODE && id === this.node.status().leader && this.node.eligible) this.node.campaign();
    return { ok: true, forgot: false };
  }

  compact(_index: Index, _data: Uint8Array): Result<{ meta: SnapshotMeta }> {
    return { ok: false, code: 'not-supported', reason: NOT_SUPPORTED_REASON };
  }

  // ---- Ready ----------------------------------------------------------------

  hasReady(): boolean {
    return this.node.hasReady();
  }

  ready(): Ready | undefined {
    if (this.outstanding) throw new Error('bully ready(): the previous Ready has not been advanced yet; call advance(ready) first');
    const inner = this.node.ready();
    if (!inner) return undefined;
    const outer: Ready = { entries: [], messages: inner.messages, committed: [], readStates: [], failedReads: [] };
    if (inner.hardState) {
      // Never hand the durable log a held epoch it would truncate (see the file comment).
      if (inner.hardState.held > 0xffffffff) throw new RangeError(`bully: held epoch ${inner.hardState.held} exceeds 2^32 - 1, the largest the durable hard state keeps`);
      outer.hardState = { term: inner.hardState.epoch, vote: inner.hardState.held, commit: 0 };
    }
    if (inner.softState) outer.softState = { role: ROLE[inner.softState.role], leader: inner.softState.leader, term: inner.softState.term, detail: inner.softState.role };
    this.outstanding = { outer, inner };
    return outer;
  }

  advance(rd: Ready): void {
    const o = this.outstanding;
    if (!o || o.outer !== rd) throw new Error('bully advance(): argument is not the Ready last returned by ready()');
    this.outstanding = undefined;
    this.node.advance(o.inner);
    if (o.inner.hardState) this.durable = { ...o.inner.hardState };
    if (o.inner.softState) this.acted = { ...o.inner.softState };
  }

  // ---- inspection -------------------------------------------------------------

  /** The soft state last advanced (acted on): role, leader, epoch. */
  get actedState(): Readonly<BullySoftState> {
    return this.acted;
  }

  /**
   * The acted state is a coordinatorship that the algorithm has already left in memory:
   * it stepped down (it saw a higher epoch) or began a fresh epoch, and the Ready that
   * says so waits for its epoch to be durable. Nothing may be started on the acted
   * coordinatorship meanwhile (daemon/runtime/bully-fencing.ts does not activate).
   */
  get actedLeadStale(): boolean {
    const a = this.acted;
    return a.role === 'coordinator' && (!this.node.isLeader || this.node.currentEpoch !== a.term);
  }

  /** The hard state of the last advanced Ready (or the one this engine was built from). */
  get hardState(): HardState {
    return { term: this.durable.epoch, vote: this.durable.held, commit: 0 };
  }

  /** The algorithm's own status (in-memory epoch, phase, priorities, drop counters). */
  bullyStatus(): BullyStatus {
    return this.node.status();
  }

  get isLeader(): boolean {
    return this.acted.role === 'coordinator';
  }

  /** Whether this node can ever coordinate (priority > 0). */
  get eligible(): boolean {
    return this.node.eligible;
  }

  get priority(): number {
    return this.node.priority;
  }

  priorityOf(id: NodeId): number | undefined {
    return this.node.priorityOf(id);
  }

  /** fencingToken(epoch, id) of the acted coordinatorship (its epoch durable), else 0. */
  leaderToken(): number {
    return this.isLeader ? fencingToken(this.acted.term, this.id) : 0;
  }

  status(): EngineStatus {
    const a = this.acted;
    return {
      id: this.id,
      engine: 'bully',
      role: ROLE[a.role],
      detail: a.role,
      term: a.term,
      leader: a.leader,
      commitIndex: 0,
      appliedIndex: 0,
      lastIndex: 0,
      isWitness: !this.node.eligible,
      config: { voters: [...this.config.voters], learners: [...this.config.learners], witnesses: [...this.config.witnesses] },
    };
  }

  entryAt(_i: Index): Entry | undefined {
    return undefined;
  }
}
