/**
 * Raft on the engine contract (src/engine/contract.ts): a thin adapter around RaftNode,
 * so that the one runtime (daemon/runtime/engine-node.ts) and the one simulated cluster
 * (daemon/sim/engine-cluster.ts) run Raft as they run Paxos and ZAB.
 *
 * Capabilities: a replicated log, linearizable reads (ReadIndex, thesis §6.4, or lease
 * reads with `leaseRead`), leadership transfer (TimeoutNow, thesis §3.10), witness
 * members, and a quorum-acknowledged lease (check-quorum + heartbeat rounds). The
 * contract's optional extensions Raft has: membership changes (proposeConfChange),
 * dropLease, quietTicks, acknowledges, isCampaignRequest, replicaProgress, status().dataMissing,
 * .unsupported and .epochStart.
 *
 * What maps how:
 *   - role: 'pre-candidate' is the contract's 'candidate' with detail 'pre-candidate'
 *     (in status() and in every Ready's softState);
 *   - HardState {term, vote, commit} is Raft's own; entries are Raft's log entries;
 *   - leaderToken(): the index of the leadership's no-op once committed (RaftNode);
 *   - option `heartbeatRounds` (what the runtime sets when its activation gate counts
 *     heartbeat rounds) is Raft's `leaseRead` unless that is given; every other option
 *     is RaftOptions (src/raft/config.ts validates each);
 *   - step(): a message of another engine's type is dropped and counted, as the other
 *     engines do, not thrown at (RaftNode.step throws: to RaftNode it is a bug).
 */
import type { Capabilities, Engine, EngineInit, EngineStatus, MemberChange, ReadState, Ready as EngineReady, ReplicaProgress, Result } from '../engine/contract.ts';
import type { Index, NodeId, Term } from '../types.ts';
import { MsgType, type Entry, type Message } from '../wire/messages.ts';
import type { RaftOptions, SnapshotMeta } from './config.ts';
import { RaftNode, type Ready as RaftReady } from './raft.ts';

export const RAFT_CAPS: Readonly<Capabilities> = Object.freeze({ log: true, reads: true, transfer: true, witness: true, lease: true, byzantine: false });

/** Raft's options on the contract: RaftOptions plus the runtime's `heartbeatRounds` (= leaseRead). */
export type RaftEngineOptions = RaftOptions & { heartbeatRounds: boolean };

/** The message types Raft steps (anything else is another engine's). */
const RAFT_TYPES = new Set<MsgType>([
  MsgType.PreVote, MsgType.PreVoteReply, MsgType.Vote, MsgType.VoteReply, MsgType.Append, MsgType.AppendReply,
  MsgType.Heartbeat, MsgType.HeartbeatReply, MsgType.Snapshot, MsgType.SnapshotReply, MsgType.TimeoutNow,
  MsgType.ReadIndex, MsgType.ReadIndexReply,
]);

export function isRaftMessage(m: Message): boolean {
  return RAFT_TYPES.has(m.type);
}

export class RaftEngine implements Engine {
  readonly name = 'raft' as const;
  readonly caps = RAFT_CAPS;
  readonly id: NodeId;
  readonly tickMs: number;
  /** The Raft node itself (Raft-specific views: progress, termAt, options). */
  readonly raft: RaftNode;
  /** Messages of other engines' types, dropped. */
  unsupported = 0;
  /** status().epochStart, cached per term (found once, by a bounded scan back from the last index). */
  private epochTerm = 0;
  private epochStartIdx = 0;

  constructor(init: EngineInit<RaftEngineOptions>) {
    if (typeof init !== 'object' || init === null) throw new TypeError('RaftEngine: expected an init object {id, config, rng, ...}');
    let options: Partial<RaftOptions> | undefined;
    if (init.options !== undefined) {
      if (typeof init.options !== 'object' || init.options === null) throw new TypeError(`raft options: expected an object, got ${typeof init.options}`);
      const { heartbeatRounds, ...rest } = init.options;
      if (heartbeatRounds !== undefined && typeof heartbeatRounds !== 'boolean') throw new TypeError(`raft options: heartbeatRounds must be a boolean, got ${String(heartbeatRounds)}`);
      options = heartbeatRounds && rest.leaseRead === undefined ? { ...rest, leaseRead: true } : rest;
    }
    const { options: _o, ...base } = init;
    this.raft = new RaftNode({ ...base, ...(options ? { options } : {}) });
    this.id = this.raft.id;
    this.tickMs = this.raft.options.tickMs;
  }

  tick(): void {
    this.raft.tick();
  }

  step(m: Message): void {
    if (typeof m === 'object' && m !== null && !RAFT_TYPES.has(m.type)) {
      this.unsupported++;
      return;
    }
    this.raft.step(m);
  }

  propose(data: Uint8Array): Result {
    return this.raft.propose(data);
  }

  readIndex(ctx: number): Result<{ term: Term }> {
    return this.raft.readIndex(ctx);
  }

  transferLeadership(to: NodeId): Result<{ term: Term }> {
    return this.raft.transferLeadership(to);
  }

  campaign(): Result<{ term: Term }> {
    return this.raft.campaign();
  }

  leaderGone(id: NodeId): Result<{ forgot: boolean }> {
    return this.raft.leaderGone(id);
  }

  compact(index: Index, data: Uint8Array): Result<{ meta: SnapshotMeta }> {
    return this.raft.compact(index, data);
  }

  proposeConfChange(change: MemberChange): Result {
    return this.raft.proposeConfChange(change);
  }

  dropLease(): void {
    this.raft.dropLease();
  }

  quietTicks(): number {
    return this.raft.quietTicks();
  }

  /**
   * Any Raft message in a term shows its sender is in that term, so it does not lead
   * an earlier one (a Raft node never goes back to a lower term) — the rule the Raft
   * runtime always had.
   */
  acknowledges(m: Message): boolean {
    return RAFT_TYPES.has(m.type);
  }

  /**
   * A vote or pre-vote request for a newer term from a candidate whose log this node's
   * vote would back. One whose log is behind ours cannot win with our vote, so deferring
   * to it only delays our own campaign: after a leader's will, a survivor that lacked the
   * dead leader's last entry kept retrying its pre-vote, the survivor that had it refused
   * each one and deferred to each one, and the cluster waited out a whole election
   * timeout (seen on real processes: 11 s with a 10 s timeout).
   */
  isCampaignRequest(m: Message): boolean {
    return (m.type === MsgType.PreVote || m.type === MsgType.Vote) && m.term > this.raft.currentTerm && this.raft.wouldBackLog(m.from, m.lastIndex, m.lastTerm);
  }

  hasReady(): boolean {
    return this.raft.hasReady();
  }

  takeEager(): Message[] {
    return this.raft.takeEager();
  }

  notifyCommit(to: NodeId, index: Index): void {
    this.raft.notifyCommit(to, index);
  }

  takeCommitted(): Entry[] {
    return this.raft.takeCommitted();
  }

  takeReadStates(): ReadState[] {
    return this.raft.takeReadStates();
  }

  /**
   * Raft's Ready (the same object: RaftNode.advance checks its identity), its
   * softState's role mapped onto the contract's.
   */
  ready(): EngineReady | undefined {
    const rd = this.raft.ready();
    if (rd === undefined) return undefined;
    const ss = rd.softState;
    if (ss !== undefined && ss.role === 'pre-candidate') (rd as unknown as EngineReady).softState = { role: 'candidate', leader: ss.leader, term: ss.term, detail: 'pre-candidate' };
    return rd as unknown as EngineReady;
  }

  /**
   * Maps a pre-candidate's softState back before RaftNode sees it: RaftNode remembers
   * the role it last reported from the advanced Ready, and 'candidate' there would
   * differ from its own 'pre-candidate' forever — every ready() would report the role
   * again and hasReady() would never turn false while it is a pre-candidate.
   */
  advance(rd: EngineReady): void {
    const ss = rd.softState;
    if (ss !== undefined && ss.detail === 'pre-candidate') (rd as unknown as RaftReady).softState = { role: 'pre-candidate', leader: ss.leader, term: ss.term };
    this.raft.advance(rd as unknown as RaftReady);
  }

  /** Cheap: no copy of the progress table (RaftNode.status() has it, for the Raft status API). */
  status(): EngineStatus {
    const r = this.raft;
    const role = r.currentRole;
    const s: EngineStatus = {
      id: r.id,
      engine: 'raft',
      role: role === 'pre-candidate' ? 'candidate' : role,
      term: r.currentTerm,
      leader: r.leaderId,
      commitIndex: r.commitIndex,
      appliedIndex: r.appliedIndex,
      lastIndex: r.lastIndex,
      isWitness: r.witness,
      config: r.memberConfig,
      dataMissing: r.missingData,
      unsupported: this.unsupported,
    };
    if (role === 'pre-candidate') s.detail = role;
    const start = this.epochStart();
    if (start > 0) s.epochStart = start;
    return s;
  }

  /**
   * The first index of the current term in this log (0 while the log holds no entry of
   * it): the term's no-op on its leader (Raft §8), whose index is the leadership's
   * fencing token once committed (RaftNode.leaderToken). Cached per term; the scan back
   * runs only while not found and stops at the snapshot.
   */
  private epochStart(): Index {
    const r = this.raft;
    const term = r.currentTerm;
    if (term !== this.epochTerm) {
      this.epochTerm = term;
      this.epochStartIdx = 0;
    }
    if (this.epochStartIdx === 0) {
      let i = r.lastIndex;
      if (i === 0 || r.termAt(i) !== term) return 0;
      const floor = r.snapshotIndex + 1;
      while (i > floor && r.termAt(i - 1) === term) i--;
      this.epochStartIdx = i;
    }
    return this.epochStartIdx;
  }

  /** The leader's replication progress per other member (empty on a follower). */
  replicaProgress(): ReplicaProgress[] {
    if (!this.raft.isLeader) return [];
    return this.raft.status().progress.map((p) => ({ id: p.id, match: p.match, state: p.state }));
  }

  get isLeader(): boolean {
    return this.raft.isLeader;
  }
  /** status().leader, read after every step by the runtime (Engine.currentLeader). */
  get currentLeader(): NodeId {
    return this.raft.leaderId;
  }

  /** The term now (cheaper than status().term). */
  get currentTerm(): Term {
    return this.raft.currentTerm;
  }

  /** status().role, 'pre-candidate' included (Engine.currentRole). */
  get currentRole(): string {
    return this.raft.currentRole;
  }

  leaderToken(): number {
    return this.raft.leaderToken();
  }

  entryAt(i: Index): Entry | undefined {
    return this.raft.entryAt(i);
  }
}
