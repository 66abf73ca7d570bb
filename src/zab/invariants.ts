/**
 * ZAB's safety properties as a pure checker over what a harness or the simulator
 * observes: every Ready a node hands out (after it was persisted), every restart, the
 * engine's state after every step, and the reads. It keeps no clock and no
 * randomness, and holds only what it must remember (the primaries' broadcasts and
 * the delivered sequence).
 *
 * The properties are the paper's (Junqueira, Reed, Serafini 2011, §3), with
 * ⟨v, z⟩ a transaction v with zxid z; "deliver" = hand out in Ready.committed;
 * "broadcast" = the primary (the leader of the epoch) creates the transaction; ρ_e
 * the primary of epoch e:
 *   - integrity: a delivered ⟨v, z⟩ was broadcast (by the primary of z's epoch, as v);
 *   - total order and agreement: all nodes deliver prefixes of one sequence, position
 *     by position (each position is delivered as the same transaction everywhere);
 *   - local primary order: what one primary broadcast is delivered in the order it
 *     was broadcast, without gaps (within an epoch, the delivered run starts at the
 *     epoch's start entry and is contiguous);
 *   - global primary order: along the delivered sequence, epochs never decrease
 *     (so zxid order is delivery order);
 *   - primary integrity: a primary broadcasts only after delivering its initial
 *     history (commit ≥ its epoch's start), and when it is established its history
 *     holds every transaction delivered from earlier epochs.
 * The durability rules every acknowledgement rests on (checked on each Ready, whose
 * messages leave only after its records are durable):
 *   - ACK(i) only once the history up to i is durable; ACK of NEWLEADER(e) only once
 *     the history and currentEpoch = e are; ACKEPOCH(e) and NEWEPOCH(e) only once
 *     acceptedEpoch ≥ e is;
 *   - a leader is established only when a quorum of voters durably holds its epoch's
 *     start entry with currentEpoch = e ("broadcast only after a quorum synchronized").
 * And the engine's own state, checked after every step:
 *   - currentEpoch ≤ acceptedEpoch, both never decrease (in memory within a life; in
 *     the persisted hard states across lives), commit ≤ last index;
 *   - one primary per epoch (at most one node creates entries of an epoch), one
 *     established leader per epoch;
 *   - histories: every entry a node persists is the primary's broadcast at that zxid,
 *     and so is the entry before it (hence log matching by induction); a primary's
 *     first entry of its epoch is its epoch-start no-op;
 *   - fencing tokens: a token is its epoch's start index, issued by an established
 *     leader whose commit covers it; tokens of later epochs are larger;
 *   - reads: a read is answered with an index at least the highest commit any node
 *     knew when the read was asked (linearizable reads).
 *
 * Violations are collected in `violations` (the simulator counts them), or thrown at
 * once with `throwOnViolation` (a test harness: a failing seed is then a stack trace).
 */
import type { HardState, Ready } from '../engine/contract.ts';
import type { Index, NodeId, Term } from '../types.ts';
import { EntryType, MsgType, type Entry, type MemberConfig } from '../wire/messages.ts';
import type { ZabView } from './zab.ts';

export interface ZabInvariantOptions {
  /** The (fixed) membership: voters and witnesses form the quorums. */
  config: MemberConfig;
  /** Throw an Error at the first violation (default false: collect them). */
  throwOnViolation?: boolean;
  /**
   * The two rules that catch a durability or synchronization bug at its cause (an early
   * acknowledgement, an establishment without a synchronized quorum) can be switched
   * off, so that a test can show the delivery-level properties catch its effect too.
   * Both default on.
   */
  rules?: { acknowledgements?: boolean; establishment?: boolean };
}

interface Broadcast {
  key: string;
  /** The primary's epoch at index − 1 (for log matching), or -1 when unknown (compacted). */
  prevTerm: number;
}

interface Delivered {
  term: Term;
  type: EntryType;
  /** Data key; undefined when first delivered by a witness (no data). */
  data: string | undefined;
}

const hex = (b: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
};

export class ZabInvariants {
  readonly violations: string[] = [];
  private readonly throwOnViolation: boolean;
  /** epoch → the node that created entries of that epoch. */
  private readonly primary = new Map<Term, NodeId>();
  /** Epoch → the node that proposed it (sent NEWEPOCH): the only node that can start it (see checkEntry). */
  private readonly proposedEpochBy = new Map<Term, NodeId>();
  /** epoch → index of its start entry, as its primary created it. */
  private readonly epochStartOf = new Map<Term, Index>();
  /** `${epoch}/${index}` → the primary's transaction. */
  private readonly broadcasts = new Map<string, Broadcast>();
  /** index → the transaction delivered at that position (by anyone). */
  private readonly delivered = new Map<Index, Delivered>();
  private maxDelivered = 0;
  /** epoch → its established leader. */
  private readonly establishedBy = new Map<Term, NodeId>();
  /** `${node}/${epoch}` established leaderships already checked for completeness. */
  private readonly establishChecked = new Set<string>();
  /** epoch → fencing token issued. */
  private readonly tokens = new Map<Term, number>();
  /** Per node: the last persisted hard state, and the in-memory epochs of the current life. */
  private readonly durable = new Map<NodeId, HardState>();
  private readonly memory = new Map<NodeId, { accepted: Term; current: Term; commit: Index }>();
  /** Per node: the next index it should deliver (contiguity within a life). */
  private readonly nextDeliver = new Map<NodeId, Index>();
  private maxCommitSeen = 0;
  private readonly readsAsked = new Map<string, Index>();
  /** Per node: the last index of its durable history. */
  private readonly persistedLast = new Map<NodeId, Index>();
  /** `${epoch}` → voting members that persisted the epoch's start entry. */
  private readonly startHolders = new Map<Term, Set<NodeId>>();
  private readonly voting: ReadonlySet<NodeId>;
  private readonly quorum: number;
  private readonly ackRule: boolean;
  private readonly establishRule: boolean;
  /** Counters, for reports. */
  readonly counts = { readies: 0, deliveries: 0, broadcasts: 0, steps: 0, reads: 0, establishments: 0 };

  constructor(opts: ZabInvariantOptions) {
    this.throwOnViolation = opts.throwOnViolation ?? false;
    const voting = [...opts.config.voters, ...opts.config.witnesses];
    this.voting = new Set(voting);
    this.quorum = Math.floor(voting.length / 2) + 1;
    this.ackRule = opts.rules?.acknowledgements ?? true;
    this.establishRule = opts.rules?.establishment ?? true;
  }

  private fail(msg: string): void {
    this.violations.push(msg);
    if (this.throwOnViolation) throw new Error(`zab invariant: ${msg}`);
  }

  private entryKey(e: Entry, witness: boolean): string {
    return witness && e.type === EntryType.Normal ? `${e.type}:?` : `${e.type}:${hex(e.data)}`;
  }

  private sameTxn(a: string, b: string): boolean {
    if (a === b) return true;
    // A witness's copy has no data: it matches any transaction of the same type.
    const [ta, da] = [a.slice(0, a.indexOf(':')), a.slice(a.indexOf(':') + 1)];
    const [tb, db] = [b.slice(0, b.indexOf(':')), b.slice(b.indexOf(':') + 1)];
    return ta === tb && (da === '?' || db === '?');
  }

  /**
   * Transactions that existed before the observation began (a cluster started from
   * persisted state, in tests): taken as broadcast by their epochs' primaries. The
   * first entry of each epoch run must be its start no-op.
   */
  assumeBroadcast(history: readonly Entry[]): void {
    let prevTerm = -1;
    for (const e of history) {
      const k = `${e.term}/${e.index}`;
      const key = this.entryKey(e, false);
      const b = this.broadcasts.get(k);
      if (b && b.key !== key) this.fail(`assumed histories disagree at (${e.term}, ${e.index})`);
      if (!b) this.broadcasts.set(k, { key, prevTerm });
      if (e.term !== prevTerm && prevTerm >= 0) {
        if (e.type !== EntryType.Noop) this.fail(`assumed history: epoch ${e.term} begins at ${e.index} with a ${EntryType[e.type]}, not its start no-op`);
        const had = this.epochStartOf.get(e.term);
        if (had !== undefined && had !== e.index) this.fail(`assumed histories start epoch ${e.term} at ${had} and ${e.index}`);
        else this.epochStartOf.set(e.term, e.index);
      }
      prevTerm = e.term;
    }
  }

  /** A node (re)started from `durable` (what it persisted). */
  started(v: ZabView, durable: HardState): void {
    const prev = this.durable.get(v.id);
    if (prev && (durable.term < prev.term || durable.vote < prev.vote)) {
      this.fail(`node ${v.id} restarted with acceptedEpoch ${durable.term}/currentEpoch ${durable.vote} below what it had persisted (${prev.term}/${prev.vote})`);
    }
    this.durable.set(v.id, { ...durable });
    this.memory.set(v.id, { accepted: v.acceptedEpoch, current: v.currentEpoch, commit: v.commit });
    this.nextDeliver.set(v.id, v.snapshotIndex + 1);
    this.persistedLast.set(v.id, v.lastIndex);
    // A primary's own entries that it read back at this restart although the Ready that
    // carried them never became durable — its fsync failed and it stopped, or it crashed
    // first; the bytes were still there to read, and recovery made them durable
    // (hal/storage/durable-log.ts). They are its transactions all the same, and it may
    // take them into the next epoch's initial history: count them as broadcast by it.
    // (Found by the sweep: zab seed 136, 5 nodes, every fault kind: the primary of
    // epoch 4 led epoch 5 with such an entry, and its follower's copy was called
    // "never broadcast".)
    for (let i = v.snapshotIndex + 1; i <= v.lastIndex; i++) {
      const e = v.entryAt(i);
      if (!e || this.primary.get(e.term) !== v.id) continue;
      const k = `${e.term}/${e.index}`;
      const key = this.entryKey(e, v.witness);
      const b = this.broadcasts.get(k);
      if (b) {
        if (!this.sameTxn(b.key, key)) this.fail(`primary ${v.id} of epoch ${e.term} restarted with another transaction at ${e.index} than it created`);
        continue;
      }
      const prevTerm = i - 1 > v.snapshotIndex ? (v.entryAt(i - 1)?.term ?? -1) : -1;
      this.broadcasts.set(k, { key, prevTerm });
      this.counts.broadcasts++;
    }
  }

  /** A node handed out `rd` and the harness persisted it (call before advance). */
  ready(v: ZabView, rd: Ready): void {
    this.counts.readies++;
    const hs = rd.hardState;
    if (hs) {
      const prev = this.durable.get(v.id);
      if (hs.vote > hs.term) this.fail(`node ${v.id} persisted currentEpoch ${hs.vote} above acceptedEpoch ${hs.term}`);
      if (prev && (hs.term < prev.term || hs.vote < prev.vote)) {
        this.fail(`node ${v.id} persisted acceptedEpoch/currentEpoch ${hs.term}/${hs.vote} after ${prev.term}/${prev.vote}: epochs went back`);
      }
      this.durable.set(v.id, { ...hs });
    }
    if (rd.snapshot) {
      this.nextDeliver.set(v.id, rd.snapshot.meta.index + 1);
      this.persistedLast.set(v.id, rd.snapshot.meta.index);
    }
    for (const m of rd.messages) if (m.type === MsgType.ZabNewEpoch) this.proposedEpochBy.set(m.term, v.id);
    for (const e of rd.entries) this.checkEntry(v, e);
    if (rd.entries.length > 0) this.persistedLast.set(v.id, rd.entries[rd.entries.length - 1]!.index);
    for (const e of rd.entries) {
      if (e.type === EntryType.Noop && this.epochStartOf.get(e.term) === e.index && this.voting.has(v.id)) {
        let h = this.startHolders.get(e.term);
        if (!h) this.startHolders.set(e.term, (h = new Set()));
        h.add(v.id);
      }
    }
    if (this.ackRule) this.checkAcks(v, rd);
    for (const e of rd.committed) this.deliver(v, e);
  }

  /** What a message in this Ready claims must be durable once the Ready is (its records go first). */
  private checkAcks(v: ZabView, rd: Ready): void {
    const last = this.persistedLast.get(v.id) ?? 0;
    const hs = this.durable.get(v.id) ?? { term: 0, vote: 0, commit: 0 };
    for (const m of rd.messages) {
      switch (m.type) {
        case MsgType.ZabAck:
          if (m.ok && m.index > last) this.fail(`node ${v.id} acknowledged index ${m.index} of epoch ${m.term} while its durable history ends at ${last}`);
          break;
        case MsgType.ZabAckNewLeader:
          if (m.index > last || hs.vote < m.term) {
            this.fail(`node ${v.id} acknowledged NEWLEADER(${m.term}) at ${m.index} with durable history to ${last} and currentEpoch ${hs.vote}`);
          }
          break;
        case MsgType.ZabAckEpoch:
          if (m.ok && hs.term < m.term) this.fail(`node ${v.id} acknowledged epoch ${m.term} with durable acceptedEpoch ${hs.term}`);
          break;
        case MsgType.ZabNewEpoch:
          if (hs.term < m.term) this.fail(`node ${v.id} proposed epoch ${m.term} with durable acceptedEpoch ${hs.term}`);
          break;
        default:
          break;
      }
    }
  }

  private checkEntry(v: ZabView, e: Entry): void {
    const k = `${e.term}/${e.index}`;
    const key = this.entryKey(e, v.witness);
    const prevTerm = e.index - 1 > v.snapshotIndex ? (v.entryAt(e.index - 1)?.term ?? -1) : -1;
    const owner = this.primary.get(e.term);
    // A prospective leader that appended its epoch's start entry and went back to
    // election before that entry's Ready was durable is no longer 'leading' when the
    // Ready is checked (found by the 300-seed sweep with fencing on, seed 289): the
    // start entry is still its own. It is the node that proposed the epoch (NEWEPOCH):
    // no other node can hold an entry of epoch e before the primary of e made one, and
    // of two nodes that proposed the same e only one gets a quorum to accept it.
    const stoppedStarter = owner === undefined && !(v.state === 'leading' && v.epoch === e.term) && e.type === EntryType.Noop && this.proposedEpochBy.get(e.term) === v.id;
    const leadingThis = (v.state === 'leading' && v.epoch === e.term) || stoppedStarter;
    if (leadingThis && owner === undefined) {
      // The first entry a primary creates in its epoch must be the epoch's start.
      this.primary.set(e.term, v.id);
      this.epochStartOf.set(e.term, e.index);
      if (e.type !== EntryType.Noop || (!stoppedStarter && e.index !== v.epochStart)) {
        this.fail(`primary ${v.id} of epoch ${e.term} began it with a ${EntryType[e.type]} at ${e.index}, not the epoch-start no-op (start ${v.epochStart})`);
      }
    } else if (leadingThis && owner !== v.id) {
      this.fail(`two primaries in epoch ${e.term}: ${owner} and ${v.id} both created its entries`);
    }
    const b = this.broadcasts.get(k);
    // The primary's own entries (also when a Ready hands them out after it stopped leading).
    if (this.primary.get(e.term) === v.id) {
      if (b && !this.sameTxn(b.key, key)) this.fail(`primary ${v.id} of epoch ${e.term} changed its transaction at ${e.index}`);
      if (!b) {
        this.broadcasts.set(k, { key, prevTerm });
        this.counts.broadcasts++;
        const start = this.epochStartOf.get(e.term) ?? 0;
        // Primary integrity: it delivered its initial history before broadcasting anything else.
        if (e.index > start && v.commit < start) {
          this.fail(`primary ${v.id} broadcast (${e.term}, ${e.index}) before delivering its initial history (commit ${v.commit} < epoch start ${start})`);
        }
      }
      return;
    }
    if (!b) {
      this.fail(`node ${v.id} persisted (${e.term}, ${e.index}) that the primary of epoch ${e.term} (${owner ?? 'none'}) never broadcast`);
      return;
    }
    if (!this.sameTxn(b.key, key)) this.fail(`node ${v.id} persisted a different transaction at zxid (${e.term}, ${e.index}) than its primary broadcast`);
    if (b.prevTerm >= 0 && prevTerm >= 0 && b.prevTerm !== prevTerm) {
      this.fail(`log matching: node ${v.id} holds (${e.term}, ${e.index}) after an entry of epoch ${prevTerm}, its primary after one of epoch ${b.prevTerm}`);
    }
  }

  private deliver(v: ZabView, e: Entry): void {
    this.counts.deliveries++;
    const want = this.nextDeliver.get(v.id) ?? 1;
    if (e.index !== want) this.fail(`node ${v.id} delivered index ${e.index}, expected ${want} (each exactly once, in order)`);
    this.nextDeliver.set(v.id, e.index + 1);
    if (e.index > v.commit) this.fail(`node ${v.id} delivered ${e.index} beyond its commit ${v.commit}`);
    const d: Delivered = { term: e.term, type: e.type, data: v.witness && e.type === EntryType.Normal ? undefined : hex(e.data) };
    // Integrity: it was broadcast by the primary of its epoch.
    const b = this.broadcasts.get(`${e.term}/${e.index}`);
    if (!b) this.fail(`integrity: node ${v.id} delivered (${e.term}, ${e.index}), never broadcast`);
    else if (!this.sameTxn(b.key, this.entryKey(e, v.witness))) this.fail(`integrity: node ${v.id} delivered at (${e.term}, ${e.index}) something else than the primary broadcast`);
    const prev = this.delivered.get(e.index);
    if (prev) {
      // Agreement and total order: one transaction per position.
      if (prev.term !== d.term || prev.type !== d.type || (prev.data !== undefined && d.data !== undefined && prev.data !== d.data)) {
        this.fail(`agreement: node ${v.id} delivered (${d.term}, ${e.index}) where another node delivered (${prev.term}, ${e.index}) — different transactions at one position`);
      }
      if (prev.data === undefined && d.data !== undefined) prev.data = d.data;
      return;
    }
    this.delivered.set(e.index, d);
    if (e.index > this.maxDelivered) this.maxDelivered = e.index;
    const before = this.delivered.get(e.index - 1);
    const after = this.delivered.get(e.index + 1);
    // Global primary order: epochs never decrease along the delivered sequence.
    if (before && before.term > d.term) this.fail(`global primary order: (${d.term}, ${e.index}) delivered after (${before.term}, ${e.index - 1})`);
    if (after && after.term < d.term) this.fail(`global primary order: (${after.term}, ${e.index + 1}) delivered after (${d.term}, ${e.index})`);
    // Local primary order: an epoch's delivered run starts at its start entry, without gaps.
    if (before && before.term < d.term && this.epochStartOf.get(d.term) !== e.index) {
      this.fail(`local primary order: the first delivered transaction of epoch ${d.term} is at ${e.index}, not its start ${this.epochStartOf.get(d.term) ?? '?'}`);
    }
    if (after && after.term > d.term && this.epochStartOf.get(after.term) !== e.index + 1) {
      this.fail(`local primary order: epoch ${after.term} delivered from ${e.index + 1}, not from its start ${this.epochStartOf.get(after.term) ?? '?'}`);
    }
  }

  /** After every delivery and tick, with the views of the nodes that are up. */
  step(views: readonly ZabView[]): void {
    this.counts.steps++;
    for (const v of views) {
      if (v.currentEpoch > v.acceptedEpoch) this.fail(`node ${v.id}: currentEpoch ${v.currentEpoch} above acceptedEpoch ${v.acceptedEpoch}`);
      if (v.commit > v.lastIndex) this.fail(`node ${v.id}: commit ${v.commit} beyond its last index ${v.lastIndex}`);
      if (v.epoch > v.acceptedEpoch) this.fail(`node ${v.id}: works in epoch ${v.epoch} above its acceptedEpoch ${v.acceptedEpoch}`);
      const m = this.memory.get(v.id);
      if (m) {
        if (v.acceptedEpoch < m.accepted || v.currentEpoch < m.current || v.commit < m.commit) {
          this.fail(`node ${v.id}: acceptedEpoch/currentEpoch/commit went back from ${m.accepted}/${m.current}/${m.commit} to ${v.acceptedEpoch}/${v.currentEpoch}/${v.commit}`);
        }
      }
      this.memory.set(v.id, { accepted: v.acceptedEpoch, current: v.currentEpoch, commit: v.commit });
      if (v.commit > this.maxCommitSeen) this.maxCommitSeen = v.commit;
      if (v.established) this.checkEstablished(v);
      if (v.token > 0) this.checkToken(v);
    }
  }

  private checkEstablished(v: ZabView): void {
    const prev = this.establishedBy.get(v.epoch);
    if (prev !== undefined && prev !== v.id) this.fail(`two established leaders in epoch ${v.epoch}: ${prev} and ${v.id}`);
    this.establishedBy.set(v.epoch, v.id);
    const key = `${v.id}/${v.epoch}`;
    if (this.establishChecked.has(key)) return;
    this.establishChecked.add(key);
    this.counts.establishments++;
    if (v.currentEpoch !== v.epoch) this.fail(`leader ${v.id} established in epoch ${v.epoch} with currentEpoch ${v.currentEpoch}`);
    // Broadcast only after a quorum synchronized: a quorum durably holds the epoch's start with currentEpoch = epoch.
    let synced = 0;
    for (const x of this.startHolders.get(v.epoch) ?? []) if ((this.durable.get(x)?.vote ?? 0) >= v.epoch) synced++;
    if (this.establishRule && synced < this.quorum) {
      this.fail(`leader ${v.id} established epoch ${v.epoch} with ${synced} voter(s) synchronized durably, fewer than a quorum of ${this.quorum}`);
    }
    // Primary integrity: the new primary holds everything delivered from earlier epochs.
    for (let i = v.snapshotIndex + 1; i <= this.maxDelivered; i++) {
      const d = this.delivered.get(i);
      if (!d || d.term >= v.epoch) continue;
      const e = v.entryAt(i);
      if (!e || e.term !== d.term || e.type !== d.type || (!v.witness && d.data !== undefined && hex(e.data) !== d.data)) {
        this.fail(`primary integrity: leader ${v.id} of epoch ${v.epoch} lacks (${d.term}, ${i}), delivered before`);
        return;
      }
    }
  }

  private checkToken(v: ZabView): void {
    if (!v.established) this.fail(`node ${v.id} holds token ${v.token} without being an established leader`);
    if (v.token !== v.epochStart) this.fail(`node ${v.id}: token ${v.token} is not its epoch start ${v.epochStart}`);
    if (v.commit < v.token) this.fail(`node ${v.id}: token ${v.token} issued before it was committed (commit ${v.commit})`);
    if (!Number.isSafeInteger(v.token) || v.token < 1) this.fail(`node ${v.id}: token ${v.token} is not a positive safe integer`);
    const had = this.tokens.get(v.epoch);
    if (had !== undefined) {
      if (had !== v.token) this.fail(`epoch ${v.epoch} issued tokens ${had} and ${v.token}`);
      return;
    }
    for (const [e, t] of this.tokens) {
      if ((e < v.epoch && t >= v.token) || (e > v.epoch && t <= v.token)) {
        this.fail(`fencing tokens do not grow with epochs: epoch ${e} has ${t}, epoch ${v.epoch} has ${v.token}`);
      }
    }
    this.tokens.set(v.epoch, v.token);
  }

  /** A read was asked at node `node` with context `ctx` (readIndex returned ok). */
  readStarted(node: NodeId, ctx: number): void {
    this.readsAsked.set(`${node}/${ctx}`, Math.max(this.maxCommitSeen, this.maxDelivered));
  }

  /** The read was answered with `index` (a ReadState): it must not miss anything committed before it was asked. */
  readServed(node: NodeId, ctx: number, index: Index): void {
    this.counts.reads++;
    const k = `${node}/${ctx}`;
    const floor = this.readsAsked.get(k);
    if (floor === undefined) return this.fail(`node ${node} answered read ${ctx}, never asked`);
    this.readsAsked.delete(k);
    if (index < floor) this.fail(`linearizable read: node ${node} read ${ctx} at index ${index}, but ${floor} was committed before it was asked`);
  }

  /** Highest position delivered anywhere. */
  get deliveredUpTo(): Index {
    return this.maxDelivered;
  }

  /** The delivered transaction at a position (for tests). */
  deliveredAt(i: Index): Readonly<Delivered> | undefined {
    return this.delivered.get(i);
  }
}
