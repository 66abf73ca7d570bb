/**
 * A small deterministic in-memory cluster for the Raft engine tests.
 *
 * - Time is virtual: `tick()` advances every live node by one engine tick and then
 *   delivers the messages that are due.
 * - The network is a queue with seeded loss, delay (in ticks; random delays reorder)
 *   and partitions (blocked directed pairs).
 * - Each node "persists" exactly what its Ready asks for, in the contract's order,
 *   before its messages enter the network; a crash throws away the engine and the
 *   state machine, a restart rebuilds both from that persisted state only.
 * - Invariant checks (optional, after every delivery and tick): election safety,
 *   log matching, leader completeness, state machine safety.
 */
import { Rng } from '../../../src/rng.ts';
import { RaftNode, type HardState, type Ready, type RaftOptions, type SnapshotData, type MemberConfig, type ReadState } from '../../../src/raft/index.ts';
import { EntryType, MsgType, type Entry, type Message } from '../../../src/wire/messages.ts';
import { encodeFrame } from '../../../src/wire/codec.ts';
import type { Index, NodeId, Term } from '../../../src/types.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface NetOptions {
  /** Probability that a message is lost. */
  drop: number;
  /** Delay in ticks, uniform in [minDelay, maxDelay]; 0 = delivered within the same tick. */
  minDelay: number;
  maxDelay: number;
}

interface Persisted {
  hardState: HardState;
  snapshot: SnapshotData | undefined;
  entries: Entry[];
}

export class SimNode {
  raft: RaftNode | undefined;
  store: Persisted = { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] };
  /** The state machine: data of applied Normal entries, in order. */
  sm: string[] = [];
  applied: Index = 0;
  reads: ReadState[] = [];
  failedReads: number[] = [];
  incarnation = 0;
  /** Highest commit index already folded into the invariant checker (this incarnation). */
  checkedCommit = 0;
  /** Pipelined harness: the highest commit handed to storage (written with the next synced batch). */
  acceptedCommit = 0;
  constructor(readonly id: NodeId, readonly bootConfig: MemberConfig) {}
  get up(): boolean {
    return this.raft !== undefined;
  }
  get r(): RaftNode {
    if (!this.raft) throw new Error(`node ${this.id} is down`);
    return this.raft;
  }
}

export interface ClusterOptions {
  seed: number;
  voters: NodeId[];
  learners?: NodeId[];
  witnesses?: NodeId[];
  options?: Partial<RaftOptions>;
  net?: Partial<NetOptions>;
  /** Check the safety invariants after every delivery and tick. */
  check?: boolean;
  /** Encode every sent message with the real wire codec (checks validity and sizes). */
  wire?: boolean;
  /** Persisted state to start some nodes from (as if restarted from disk). */
  persisted?: Record<NodeId, { hardState: HardState; entries: Entry[] }>;
  /** Nodes that start crashed. */
  down?: NodeId[];
  /**
   * As the daemon's runtime and durable log do: a leader's takeEager() messages go out
   * before its Ready is persisted, and a hard state whose only change is the commit
   * index is not persisted (so a restart may come back with an older commit index).
   */
  pipelined?: boolean;
}

export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly rng: Rng;
  private readonly netRng: Rng;
  net: NetOptions;
  now = 0;
  private seq = 0;
  /** Messages in flight, by delivery tick, in send order. */
  private queue = new Map<number, Message[]>();
  private blocked = new Set<string>();
  readonly options: Partial<RaftOptions>;
  check: boolean;
  wire: boolean;
  pipelined: boolean;
  /** Messages sent, by type name. */
  sent = new Map<string, number>();
  /** Every sent message, when `record` is on. */
  record = false;
  log: Message[] = [];
  /** Largest encoded frame seen (with `wire`), by type name. */
  maxFrame = new Map<string, number>();
  // invariant state
  private leaderOfTerm = new Map<Term, NodeId>();
  /** Committed entries seen anywhere: index -> [entry term, term of the node that saw it committed]. */
  private committed = new Map<Index, [Term, Term]>();
  private committedList: Index[] = [];
  private completenessDone = new Map<string, number>();
  private appliedAt = new Map<Index, string>();
  deliveries = 0;

  constructor(o: ClusterOptions) {
    this.rng = new Rng(o.seed);
    this.netRng = this.rng.fork('net');
    this.net = { drop: 0, minDelay: 0, maxDelay: 0, ...(o.net ?? {}) };
    this.options = o.options ?? {};
    this.check = o.check ?? true;
    this.wire = o.wire ?? false;
    this.pipelined = o.pipelined ?? false;
    const config: MemberConfig = { voters: o.voters, learners: o.learners ?? [], witnesses: o.witnesses ?? [] };
    for (const id of [...config.voters, ...config.learners, ...config.witnesses]) {
      const n = new SimNode(id, config);
      const p = o.persisted?.[id];
      if (p) n.store = { hardState: { ...p.hardState }, snapshot: undefined, entries: p.entries.map((e) => ({ ...e })) };
      this.nodes.set(id, n);
      if (!o.down?.includes(id)) this.start(n);
    }
  }

  /** Applied at send time: returns the message to deliver (possibly altered) or undefined to drop it. */
  filter: ((m: Message) => Message | undefined) | undefined;

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Adds a node that is not in the bootstrap config (it learns the config from the leader). */
  addNode(id: NodeId, bootConfig: MemberConfig): SimNode {
    const n = new SimNode(id, bootConfig);
    this.nodes.set(id, n);
    this.start(n);
    return n;
  }

  private start(n: SimNode): void {
    const s = n.store;
    n.incarnation++;
    n.checkedCommit = 0;
    n.acceptedCommit = n.store.hardState.commit;
    n.raft = new RaftNode({
      id: n.id,
      config: n.bootConfig,
      hardState: { ...s.hardState },
      snapshot: s.snapshot,
      entries: s.entries.slice(),
      options: this.options,
      rng: this.rng.fork(`node-${n.id}-${n.incarnation}`),
    });
    this.restoreSm(n, s.snapshot);
  }

  private restoreSm(n: SimNode, snap: SnapshotData | undefined): void {
    n.sm = snap && snap.data.length > 0 ? (JSON.parse(dec.decode(snap.data)) as { sm: string[] }).sm.slice() : [];
    n.applied = snap?.meta.index ?? 0;
  }

  crash(id: NodeId): void {
    const n = this.node(id);
    n.raft = undefined;
    n.sm = [];
    n.reads = [];
  }

  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.up) throw new Error(`node ${id} is up`);
    this.start(n);
  }

  // --- network -------------------------------------------------------------

  /** Blocks traffic between the two groups (both directions). */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.blocked.add(`${x}>${y}`);
      this.blocked.add(`${y}>${x}`);
    }
  }

  /** Cuts a node off from everyone. */
  isolate(id: NodeId): void {
    this.partition([id], [...this.nodes.keys()].filter((x) => x !== id));
  }

  heal(): void {
    this.blocked.clear();
  }

  private enqueue(m: Message): void {
    const name = MsgType[m.type]!;
    this.sent.set(name, (this.sent.get(name) ?? 0) + 1);
    if (this.record) this.log.push(m);
    if (this.wire) {
      const f = encodeFrame(m, { cluster: 0xffff, bootId: 0xffff, seq: 0xffff }, new Uint8Array(32));
      this.maxFrame.set(name, Math.max(this.maxFrame.get(name) ?? 0, f.length));
    }
    if (this.filter) {
      const f = this.filter(m);
      if (!f) return;
      m = f;
    }
    if (this.net.drop > 0 && this.netRng.chance(this.net.drop)) return;
    const delay = this.net.maxDelay > this.net.minDelay ? this.netRng.int(this.net.minDelay, this.net.maxDelay) : this.net.minDelay;
    const at = this.now + delay;
    const b = this.queue.get(at);
    if (b) b.push(m);
    else this.queue.set(at, [m]);
    this.seq++;
  }

  deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (!n || !n.raft || this.blocked.has(`${m.from}>${m.to}`)) return;
    n.raft.step(m);
    this.process(n);
    this.deliveries++;
    if (this.check) this.checkInvariants();
  }

  // --- the runtime loop ----------------------------------------------------

  /** Handles every Ready of a node: persist, send, apply, advance. */
  process(n: SimNode): void {
    for (let k = 0; k < 100 && n.raft; k++) {
      if (this.pipelined) {
        for (const m of n.raft.takeEager()) this.enqueue(m);
        const early = n.raft.takeCommitted();
        const witness = early.length > 0 && n.r.status().isWitness;
        for (const e of early) this.applyOne(n, e, witness);
      }
      const rd = n.raft.ready();
      if (!rd) return;
      this.persistAndSend(n, rd);
      n.raft.advance(rd);
    }
  }

  /** Persists a Ready into n's store, queues its messages and applies its committed entries (the caller advances). */
  persistAndSend(n: SimNode, rd: Ready): void {
    const s = n.store;
    if (rd.snapshot) {
      // Installing a snapshot replaces the whole log (the engine discarded it too).
      s.snapshot = rd.snapshot;
      s.entries = [];
      this.restoreSm(n, rd.snapshot);
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      const base = s.snapshot?.meta.index ?? 0;
      const keep = first - base - 1;
      if (keep < 0 || keep > s.entries.length) throw new Error(`node ${n.id}: Ready entries start at ${first}, persisted log is [${base + 1}, ${base + s.entries.length}]`);
      s.entries.length = keep; // overwrite a suffix
      for (const e of rd.entries) s.entries.push({ ...e });
    }
    if (!this.pipelined) {
      if (rd.hardState) s.hardState = { ...rd.hardState };
    } else {
      // A commit-only change is not synced; a synced batch writes the latest accepted commit.
      const h = rd.hardState;
      if (h) n.acceptedCommit = Math.max(n.acceptedCommit, h.commit);
      if (rd.snapshot) n.acceptedCommit = Math.max(n.acceptedCommit, rd.snapshot.meta.index);
      const synced = rd.snapshot !== undefined || rd.entries.length > 0 || (h !== undefined && (h.term !== s.hardState.term || h.vote !== s.hardState.vote));
      if (synced) s.hardState = { term: h?.term ?? s.hardState.term, vote: h?.vote ?? s.hardState.vote, commit: n.acceptedCommit };
    }
    for (const m of rd.messages) this.enqueue(m);
    const witness = rd.committed.length > 0 && n.r.status().isWitness;
    for (const e of rd.committed) this.applyOne(n, e, witness);
    n.reads.push(...rd.readStates);
    n.failedReads.push(...rd.failedReads);
  }

  /** Applies one committed entry to n's state machine: in order, exactly once, the same entry as every other node applied there. */
  applyOne(n: SimNode, e: Entry, witness: boolean): void {
    if (e.index !== n.applied + 1) throw new Error(`node ${n.id}: applying ${e.index} after ${n.applied} (out of order or twice)`);
    n.applied = e.index;
    if (e.type === EntryType.Normal) n.sm.push(dec.decode(e.data));
    if (!witness) {
      const key = `${e.term}/${e.type}/${dec.decode(e.data)}`;
      const prev = this.appliedAt.get(e.index);
      if (prev === undefined) this.appliedAt.set(e.index, key);
      else if (prev !== key) throw new Error(`state machine safety: node ${n.id} applied ${key} at ${e.index}, another node applied ${prev}`);
    }
  }

  tick(): void {
    this.now++;
    for (const n of this.nodes.values()) {
      if (!n.raft) continue;
      n.raft.tick();
      this.process(n);
    }
    this.deliverDue();
    if (this.check) this.checkInvariants();
  }

  private deliverDue(): void {
    for (let guard = 0; guard < 100000; guard++) {
      // Earliest due bucket first (messages sent between ticks are due at the tick they were sent in).
      let at: number | undefined;
      for (const k of this.queue.keys()) if (k <= this.now && (at === undefined || k < at)) at = k;
      if (at === undefined) return;
      const b = this.queue.get(at)!;
      const m = b.shift();
      if (b.length === 0) this.queue.delete(at);
      if (m) this.deliver(m);
    }
    throw new Error('deliverDue: more than 100000 deliveries in one tick');
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

  /** Ticks until `pred` holds; returns the ticks taken, or throws after `max`. */
  runUntil(pred: () => boolean, max: number, what = 'condition'): number {
    for (let i = 0; i <= max; i++) {
      if (pred()) return i;
      this.tick();
    }
    throw new Error(`runUntil: ${what} not reached within ${max} ticks (t=${this.now})`);
  }

  // --- helpers ---------------------------------------------------------------

  up(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** The live leader with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.up()) {
      const st = n.r.status();
      if (st.role === 'leader' && (!best || st.term > best.r.status().term)) best = n;
    }
    return best;
  }

  waitLeader(max = 300): SimNode {
    this.runUntil(() => this.leader() !== undefined, max, 'a leader');
    return this.leader()!;
  }

  /** Proposes on the current leader; returns the index, or undefined when refused. */
  propose(data: string): Index | undefined {
    const l = this.leader();
    if (!l) return undefined;
    const r = l.r.propose(enc.encode(data));
    this.process(l);
    return r.ok ? r.index : undefined;
  }

  /** Compacts a node at its applied index with its state machine as the snapshot. */
  compact(id: NodeId, padBytes = 0): void {
    const n = this.node(id);
    const data = enc.encode(JSON.stringify({ sm: n.sm, pad: 'x'.repeat(padBytes) }));
    const res = n.r.compact(n.applied, data);
    if (!res.ok) throw new Error(`compact ${id}: ${res.reason}`);
    n.store.snapshot = { meta: res.meta, data };
    n.store.entries = n.store.entries.filter((e) => e.index > res.meta.index);
  }

  appliedData(id: NodeId): string[] {
    return this.node(id).sm;
  }

  // --- invariants (Raft Figure 3) -------------------------------------------

  checkInvariants(): void {
    const up = this.up();
    for (const n of up) {
      const st = n.r.status();
      // Election safety: at most one leader per term.
      if (st.role === 'leader') {
        const prev = this.leaderOfTerm.get(st.term);
        if (prev !== undefined && prev !== n.id) throw new Error(`election safety: nodes ${prev} and ${n.id} both lead term ${st.term}`);
        this.leaderOfTerm.set(st.term, n.id);
      }
      // Committed entries never change (part of state machine safety).
      for (let i = Math.max(st.snapshotIndex + 1, n.checkedCommit + 1); i <= st.commitIndex; i++) {
        const t = n.r.termAt(i)!;
        const prev = this.committed.get(i);
        if (prev === undefined) {
          this.committed.set(i, [t, st.term]);
          this.committedList.push(i);
        }
        else if (prev[0] !== t) throw new Error(`committed entry ${i} has term ${t} on node ${n.id} but ${prev[0]} elsewhere`);
      }
      n.checkedCommit = Math.max(n.checkedCommit, st.commitIndex);
    }
    // Leader completeness: a leader holds every entry committed in an earlier term
    // (a stale leader of an older term, cut off, may of course lack newer ones).
    // Incremental: a leader never loses entries, so each (leader, term) is checked
    // against the committed entries it has not been checked against yet.
    for (const n of up) {
      const st = n.r.status();
      if (st.role !== 'leader') continue;
      const key = `${n.id}/${n.incarnation}/${st.term}`;
      for (let k = this.completenessDone.get(key) ?? 0; k < this.committedList.length; k++) {
        const i = this.committedList[k]!;
        const [t, seenIn] = this.committed.get(i)!;
        if (i <= st.snapshotIndex || seenIn >= st.term) continue;
        if (n.r.termAt(i) !== t) throw new Error(`leader completeness: leader ${n.id} (term ${st.term}) lacks committed entry ${i}/${t}`);
      }
      this.completenessDone.set(key, this.committedList.length);
    }
    // Log matching: same index and term => identical up to there.
    for (let a = 0; a < up.length; a++) {
      for (let b = a + 1; b < up.length; b++) this.checkMatching(up[a]!, up[b]!);
    }
  }

  private checkMatching(a: SimNode, b: SimNode): void {
    const sa = a.r.status();
    const sb = b.r.status();
    const lo = Math.max(sa.snapshotIndex, sb.snapshotIndex) + 1;
    const hi = Math.min(sa.lastIndex, sb.lastIndex);
    let i = hi;
    while (i >= lo && a.r.termAt(i) !== b.r.termAt(i)) i--;
    // Witnesses hold no data; a former witness re-added as a voter or learner lacks it
    // up to missingDataTo until a snapshot brings it.
    const dataToo = !sa.isWitness && !sb.isWitness;
    const dataFrom = Math.max(sa.missingDataTo, sb.missingDataTo) + 1;
    for (; i >= lo; i--) {
      const ea = a.r.entryAt(i)!;
      const eb = b.r.entryAt(i)!;
      if (ea === eb) continue; // the same object, passed along by messages
      if (ea.term !== eb.term || ea.type !== eb.type || (dataToo && i >= dataFrom && !sameBytes(ea.data, eb.data))) {
        throw new Error(`log matching: nodes ${a.id} and ${b.id} differ at ${i} below a common entry`);
      }
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const text = (s: string): Uint8Array => enc.encode(s);
