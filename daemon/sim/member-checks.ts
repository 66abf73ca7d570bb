/**
 * Checks of the members that are not plain voters, for the simulated cluster of
 * contract engines (engine-cluster.ts): witnesses (vote, count, hold no command data,
 * never lead) and observers (the config's `learners`, ZooKeeper's observers: receive
 * the committed stream, never vote, never lead).
 *
 * After every step of every node:
 *   non-voter-leads     a witness or an observer is never leader, and no node names one
 *                       as its leader (a ZAB witness may be LOOKING — role 'candidate' —
 *                       since it votes in Fast Leader Election; it is never elected)
 * On every delivery (zab only, where an entry's (index, epoch) is its zxid on every
 * node; a Paxos entry's term is a per-node write stamp, and PaxosInvariants checks
 * choice from the durable votes already):
 *   commit-quorum       an entry delivered at (index, epoch) was durably held, at some
 *                       time before, by a quorum of VOTING members (voters + witnesses).
 *                       An engine that counted an observer's acknowledgement toward a
 *                       quorum would deliver entries that only a minority of voters hold:
 *                       this is where "observers never vote" is checked from the outside,
 *                       from what nodes persisted and delivered, not from the engine's
 *                       own bookkeeping. What a node holds durably comes from two
 *                       places: each Ready it persisted, and the log it recovered at a
 *                       (re)start — recovery fsyncs what it read back before the node
 *                       starts (hal/storage/durable-log.ts), so an entry whose Ready's
 *                       fsync failed or was cut by a crash is durable from that restart on.
 * At the end (called by the cluster once a write committed after every fault healed):
 *   observer-behind     every live observer has applied that write within a bound:
 *                       observers do receive the committed stream.
 *
 * Pure bookkeeping over what the runtime's observer hooks report; no clock.
 */
import type { Ready } from '../../src/engine/contract.ts';
import type { Index, NodeId } from '../../src/types.ts';
import type { Entry, MemberConfig } from '../../src/wire/messages.ts';

/** The minimal view of a node these checks need (an EngineRuntime satisfies it). */
export interface MemberView {
  readonly id: NodeId;
  readonly engine: { readonly isLeader: boolean; status(): { role: string; leader: NodeId } } | undefined;
}

/** The log a node recovered at its start, as the checks read it (a ZabView satisfies it). */
export interface RecoveredLog {
  readonly snapshotIndex: Index;
  readonly lastIndex: Index;
  entryAt(i: Index): Pick<Entry, 'index' | 'term'> | undefined;
}

export class MemberRoleChecks {
  private readonly nonVoters: ReadonlySet<NodeId>;
  private readonly voting: ReadonlySet<NodeId>;
  private readonly quorum: number;
  /** `${index}/${epoch}` → voting members that persisted it (deleted once its delivery was checked). */
  private readonly holders = new Map<string, Set<NodeId>>();
  /** Deliveries already checked (a later node delivering the same entry needs no second look). */
  private readonly checked = new Set<string>();
  /** Entries whose delivery was checked: how many. */
  deliveriesChecked = 0;

  constructor(
    config: MemberConfig,
    private readonly engine: 'raft' | 'paxos' | 'zab' | 'pbft',
    private readonly fail: (invariant: string, detail: string) => void,
    private readonly disabled: ReadonlySet<string> = new Set(),
  ) {
    this.nonVoters = new Set([...config.witnesses, ...config.learners]);
    this.voting = new Set([...config.voters, ...config.witnesses]);
    this.quorum = Math.floor(this.voting.size / 2) + 1;
  }

  /** Nothing to check for a cluster of voters only. */
  get active(): boolean {
    return this.nonVoters.size > 0;
  }

  afterStep(rt: MemberView): void {
    if (this.disabled.has('non-voter-leads')) return;
    const eng = rt.engine;
    if (!eng) return;
    const st = eng.status();
    if (this.nonVoters.has(rt.id) && (eng.isLeader || st.role === 'leader')) {
      this.fail('non-voter-leads', `node ${rt.id} is ${this.kind(rt.id)} and must never lead, but its role is ${st.role}${eng.isLeader ? ' (isLeader)' : ''}`);
    }
    if (st.leader !== rt.id && this.nonVoters.has(st.leader)) {
      this.fail('non-voter-leads', `node ${rt.id} follows node ${st.leader}, ${this.kind(st.leader)}, as its leader`);
    }
  }

  persisted(rt: MemberView, rd: Pick<Ready, 'entries'>): void {
    if (this.engine !== 'zab' || !this.voting.has(rt.id)) return;
    for (const e of rd.entries) {
      const k = `${e.index}/${e.term}`;
      if (this.checked.has(k)) continue;
      let s = this.holders.get(k);
      if (!s) this.holders.set(k, (s = new Set()));
      s.add(rt.id);
    }
  }

  /**
   * A node (re)started with this log: every entry in it is durable there (recovery
   * fsynced what it read back before the node started). Without this, an entry whose
   * Ready never became durable — the fsync failed (EIO) and the process stopped, then
   * recovery made the bytes it read back durable — was missing from its holders, and a
   * later leader that counted that node's acknowledgement (which covered its whole log)
   * looked as if it delivered without a quorum (zab seed 13, 3 nodes and a witness:
   * node 1's copy of index 189).
   */
  recovered(rt: MemberView, log: RecoveredLog): void {
    if (this.engine !== 'zab' || !this.voting.has(rt.id)) return;
    for (let i = log.snapshotIndex + 1; i <= log.lastIndex; i++) {
      const e = log.entryAt(i);
      if (!e) continue;
      const k = `${e.index}/${e.term}`;
      if (this.checked.has(k)) continue;
      let s = this.holders.get(k);
      if (!s) this.holders.set(k, (s = new Set()));
      s.add(rt.id);
    }
  }

  applied(rt: MemberView, e: Pick<Entry, 'index' | 'term'>): void {
    if (this.engine !== 'zab' || this.disabled.has('commit-quorum')) return;
    const k = `${e.index}/${e.term}`;
    if (this.checked.has(k)) return;
    const s = this.holders.get(k);
    const n = s?.size ?? 0;
    if (n < this.quorum) {
      this.fail('commit-quorum', `node ${rt.id} delivered the entry at index ${e.index} of epoch ${e.term}, which only ${n} voting member(s) ${s && n > 0 ? `(${[...s].join(', ')}) ` : ''}had made durable; a quorum is ${this.quorum} of ${[...this.voting].join(', ')} (observers never count)`);
    }
    this.checked.add(k);
    this.holders.delete(k);
    this.deliveriesChecked++;
  }

  /** Every live observer applied `index` (a write acknowledged after every fault healed). */
  observersBehind(live: ReadonlyArray<{ id: NodeId; appliedIndex: Index }>, index: Index, learners: readonly NodeId[]): string | null {
    const behind = live.filter((r) => learners.includes(r.id) && r.appliedIndex < index);
    if (behind.length === 0) return null;
    return `observer(s) ${behind.map((r) => `n${r.id} (applied ${r.appliedIndex})`).join(', ')} did not apply index ${index}, committed after every fault healed`;
  }

  private kind(id: NodeId): string {
    return this.voting.has(id) ? 'a witness' : 'an observer';
  }
}

/** The ids of a simulated cluster: voters 1..nodes, then the witness, then the observers. */
export function simMembers(nodes: number, witness: boolean, observers: number): MemberConfig {
  const voters: NodeId[] = [];
  for (let i = 1; i <= nodes; i++) voters.push(i);
  const witnesses: NodeId[] = witness ? [nodes + 1] : [];
  const learners: NodeId[] = [];
  for (let i = 0; i < observers; i++) learners.push(nodes + witnesses.length + 1 + i);
  return { voters, learners, witnesses };
}
