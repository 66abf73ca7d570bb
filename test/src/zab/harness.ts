/**
 * A small deterministic in-memory cluster for the ZAB engine tests.
 *
 * - Time is virtual: `tick()` advances every live node by one engine tick, then
 *   delivers the messages that are due.
 * - The network is a queue with seeded loss, duplication, delay (in ticks; random
 *   delays reorder) and partitions (blocked directed pairs).
 * - Each node persists exactly what its Ready asks for, in the contract's order
 *   (snapshot, entries with suffix overwrite, hard state), before its messages enter
 *   the network and before it applies `committed`. A crash throws the engine and the
 *   state machine away; a restart rebuilds both from the persisted state only.
 *   `tearNext(id)` makes the node lose power while persisting its next Ready: a
 *   prefix of its records (snapshot, each entry, the hard state) is durable, nothing
 *   is sent or applied — what a disk that fsyncs per Ready and truncates a torn tail
 *   on recovery leaves behind. `crashAfterNextReady(id)` crashes it between two
 *   Readys (the window in which an acknowledgement must not have left early).
 * - The ZAB invariants (src/zab/invariants.ts) are checked on every Ready and after
 *   every delivery and tick; the first violation throws (a failing seed replays).
 * A run is a pure function of the seed.
 */
import { Rng } from '../../../src/rng.ts';
import { ZabNode, type ZabOptions } from '../../../src/zab/index.ts';
import { ZabInvariants } from '../../../src/zab/invariants.ts';
import type { HardState, Ready, ReadState, SnapshotData } from '../../../src/engine/contract.ts';
import { EntryType, MsgType, type Entry, type MemberConfig, type Message } from '../../../src/wire/messages.ts';
import { encodeMessage } from '../../../src/wire/codec.ts';
import { TAG_BYTES } from '../../../src/wire/tag.ts';
import type { Index, NodeId } from '../../../src/types.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
export const text = (s: string): Uint8Array => enc.encode(s);

export interface NetOptions {
  /** Probability that a message is lost. */
  drop: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  dup: number;
  /** Delay in ticks, uniform in [minDelay, maxDelay]; 0 = delivered within the same tick. */
  minDelay: number;
  maxDelay: number;
}

export interface Persisted {
  hardState: HardState;
  snapshot: SnapshotData | undefined;
  entries: Entry[];
}

/** Bytes of a message on the wire: codec frame with tag, worst-case envelope values. */
export function wireBytes(m: Message): number {
  return encodeMessage(m, { cluster: 0xffff, bootId: 0xffff, seq: 0xffff }).length + TAG_BYTES;
}

export class SimNode {
  engine: ZabNode | undefined;
  store: Persisted = { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] };
  /** The state machine: data of applied Normal entries, in order. */
  sm: string[] = [];
  applied: Index = 0;
  reads: ReadState[] = [];
  failedReads: number[] = [];
  incarnation = 0;
  nextCtx = 1;
  tear = false;
  crashAfterReady = false;
  constructor(readonly id: NodeId) {}
  get up(): boolean {
    return this.engine !== undefined;
  }
  get z(): ZabNode {
    if (!this.engine) throw new Error(`node ${this.id} is down`);
    return this.engine;
  }
}

export interface ClusterOptions {
  seed: number;
  voters: NodeId[];
  witnesses?: NodeId[];
  observers?: NodeId[];
  options?: Partial<ZabOptions>;
  /** Per-node options on top of `options` (e.g. a planted bug on one node). */
  nodeOptions?: Record<NodeId, Partial<ZabOptions>>;
  net?: Partial<NetOptions>;
  /** Check the invariants (default true). */
  check?: boolean;
  /** Encode every sent message with the real codec (validity and sizes). */
  wire?: boolean;
  /** Nodes that start crashed. */
  down?: NodeId[];
  /** Invariant rules to switch off (src/zab/invariants.ts `rules`). */
  rules?: { acknowledgements?: boolean; establishment?: boolean };
  /** Persisted state to start some nodes from (as if restarted from disk); its entries are assumed broadcast. */
  persisted?: Record<NodeId, { hardState: HardState; entries: Entry[]; snapshot?: SnapshotData }>;
}

export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly config: MemberConfig;
  readonly rng: Rng;
  private readonly netRng: Rng;
  private readonly faultRng: Rng;
  net: NetOptions;
  now = 0;
  private queue = new Map<number, Message[]>();
  private blocked = new Set<string>();
  readonly options: Partial<ZabOptions>;
  readonly nodeOptions: Record<NodeId, Partial<ZabOptions>>;
  readonly inv: ZabInvariants;
  check: boolean;
  wire: boolean;
  /** Messages sent, by type name. */
  sent = new Map<string, number>();
  sentMessages = 0;
  sentBytes = 0;
  /** Largest frame sent (tag included), when counting bytes or checking with the codec. */
  maxFrame = 0;
  /** Count wire bytes (slower). */
  countBytes = false;
  record = false;
  log: Message[] = [];
  /** Applied at send time: return the message to deliver (possibly altered) or undefined to drop it. */
  filter: ((m: Message) => Message | undefined) | undefined;

  constructor(o: ClusterOptions) {
    this.rng = new Rng(o.seed);
    this.netRng = this.rng.fork('net');
    this.faultRng = this.rng.fork('faults');
    this.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 0, ...(o.net ?? {}) };
    this.options = o.options ?? {};
    this.nodeOptions = o.nodeOptions ?? {};
    this.check = o.check ?? true;
    this.wire = o.wire ?? false;
    this.config = { voters: o.voters, learners: o.observers ?? [], witnesses: o.witnesses ?? [] };
    this.inv = new ZabInvariants({ config: this.config, throwOnViolation: true, rules: o.rules });
    for (const id of [...this.config.voters, ...this.config.witnesses, ...this.config.learners]) {
      const n = new SimNode(id);
      const p = o.persisted?.[id];
      if (p) {
        n.store = { hardState: { ...p.hardState }, snapshot: p.snapshot, entries: p.entries.map((e) => ({ ...e })) };
        this.inv.assumeBroadcast(p.entries);
      }
      this.nodes.set(id, n);
    }
    for (const n of this.nodes.values()) if (!o.down?.includes(n.id)) this.start(n);
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private start(n: SimNode): void {
    const s = n.store;
    n.incarnation++;
    n.tear = false;
    n.crashAfterReady = false;
    n.engine = new ZabNode({
      id: n.id,
      config: this.config,
      hardState: { ...s.hardState },
      snapshot: s.snapshot,
      entries: s.entries.slice(),
      options: { ...this.options, ...(this.nodeOptions[n.id] ?? {}) },
      rng: this.rng.fork(`node-${n.id}-${n.incarnation}`),
    });
    n.sm = s.snapshot && s.snapshot.data.length > 0 ? (JSON.parse(dec.decode(s.snapshot.data)) as { sm: string[] }).sm.slice() : [];
    n.applied = s.snapshot?.meta.index ?? 0;
    n.reads = [];
    n.failedReads = [];
    if (this.check) this.inv.started(n.engine.view(), s.hardState);
    this.process(n);
  }

  crash(id: NodeId): void {
    const n = this.node(id);
    n.engine = undefined;
    n.sm = [];
  }

  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.up) throw new Error(`node ${id} is up`);
    this.start(n);
  }

  /** The node loses power while persisting its next Ready (a prefix of its records survives). */
  tearNext(id: NodeId): void {
    this.node(id).tear = true;
  }

  /** The node crashes right after its next Ready, before the one after it. */
  crashAfterNextReady(id: NodeId): void {
    this.node(id).crashAfterReady = true;
  }

  // --- network -------------------------------------------------------------

  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.blocked.add(`${x}>${y}`);
      this.blocked.add(`${y}>${x}`);
    }
  }

  isolate(id: NodeId): void {
    this.partition([id], [...this.nodes.keys()].filter((x) => x !== id));
  }

  heal(): void {
    this.blocked.clear();
  }

  private enqueue(m: Message): void {
    const name = MsgType[m.type]!;
    this.sent.set(name, (this.sent.get(name) ?? 0) + 1);
    this.sentMessages++;
    if (this.countBytes || this.wire) {
      const n = wireBytes(m); // throws WireEncodeError for a message the codec refuses
      if (this.countBytes) this.sentBytes += n;
      if (n > this.maxFrame) this.maxFrame = n;
    }
    if (this.record) this.log.push(m);
    if (this.filter) {
      const f = this.filter(m);
      if (!f) return;
      m = f;
    }
    if (this.net.drop > 0 && this.netRng.chance(this.net.drop)) return;
    const copies = this.net.dup > 0 && this.netRng.chance(this.net.dup) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const delay = this.net.maxDelay > this.net.minDelay ? this.netRng.int(this.net.minDelay, this.net.maxDelay) : this.net.minDelay;
      const at = this.now + delay;
      const b = this.queue.get(at);
      if (b) b.push(m);
      else this.queue.set(at, [m]);
    }
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (!n || !n.engine || this.blocked.has(`${m.from}>${m.to}`)) return;
    n.engine.step(m);
    this.process(n);
    if (this.check) this.checkAll();
  }

  // --- the runtime loop ----------------------------------------------------

  /** Handles every Ready of a node: persist, send, apply, advance. */
  process(n: SimNode): void {
    for (let k = 0; k < 100 && n.engine; k++) {
      const rd = n.engine.ready();
      if (!rd) return;
      if (n.tear) {
        const partial = this.persistTorn(n, rd);
        // What did reach the disk exists from now on: a primary's entries among it are its broadcasts.
        if (this.check) this.inv.ready(n.engine.view(), partial);
        this.crash(n.id);
        return;
      }
      this.persist(n, rd);
      if (this.check) this.inv.ready(n.engine.view(), rd);
      for (const m of rd.messages) this.enqueue(m);
      this.apply(n, rd);
      n.engine.advance(rd);
      if (n.crashAfterReady) {
        this.crash(n.id);
        return;
      }
    }
  }

  private persist(n: SimNode, rd: Ready): void {
    const s = n.store;
    if (rd.snapshot) {
      s.snapshot = rd.snapshot;
      s.entries = [];
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      const base = s.snapshot?.meta.index ?? 0;
      const keep = first - base - 1;
      if (keep < 0 || keep > s.entries.length) throw new Error(`node ${n.id}: Ready entries start at ${first}, persisted log is [${base + 1}, ${base + s.entries.length}]`);
      s.entries.length = keep;
      for (const e of rd.entries) s.entries.push({ ...e });
    }
    if (rd.hardState) s.hardState = { ...rd.hardState };
  }

  /**
   * A power cut during the write: a strict prefix of the Ready's records is durable —
   * for an atomic Ready (the contract's `atomic`) none of its snapshot and entries, or
   * all of them (the hard state may still be lost).
   */
  private persistTorn(n: SimNode, rd: Ready): Ready {
    const records = (rd.snapshot ? 1 : 0) + rd.entries.length + (rd.hardState ? 1 : 0);
    let keep = records === 0 ? 0 : this.faultRng.int(0, records - 1);
    if (rd.atomic) {
      const body = (rd.snapshot ? 1 : 0) + rd.entries.length;
      keep = keep < body ? 0 : keep;
    }
    let left = keep;
    const partial: Ready = { ...rd, snapshot: undefined, entries: [], hardState: undefined, messages: [], committed: [], readStates: [], failedReads: [] };
    if (rd.snapshot && left > 0) {
      partial.snapshot = rd.snapshot;
      left--;
    }
    if (!rd.snapshot || partial.snapshot) {
      partial.entries = rd.entries.slice(0, left);
      left -= partial.entries.length;
      if (rd.hardState && left > 0) partial.hardState = rd.hardState;
    }
    this.persist(n, partial);
    return partial;
  }

  private apply(n: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      n.sm = rd.snapshot.data.length > 0 ? (JSON.parse(dec.decode(rd.snapshot.data)) as { sm: string[] }).sm.slice() : [];
      n.applied = rd.snapshot.meta.index;
    }
    for (const e of rd.committed) {
      if (e.index !== n.applied + 1) throw new Error(`node ${n.id}: applying ${e.index} after ${n.applied} (out of order or twice)`);
      n.applied = e.index;
      if (e.type === EntryType.Normal) n.sm.push(dec.decode(e.data));
    }
    for (const r of rd.readStates) {
      n.reads.push(r);
      if (this.check) this.inv.readServed(n.id, r.ctx, r.index);
    }
    n.failedReads.push(...rd.failedReads);
  }

  private checkAll(): void {
    const views = [];
    for (const n of this.nodes.values()) if (n.engine) views.push(n.engine.view());
    this.inv.step(views);
  }

  tick(): void {
    this.now++;
    for (const n of this.nodes.values()) {
      if (!n.engine) continue;
      n.engine.tick();
      this.process(n);
    }
    this.deliverDue();
    if (this.check) this.checkAll();
  }

  private deliverDue(): void {
    for (let guard = 0; guard < 200000; guard++) {
      let at: number | undefined;
      for (const k of this.queue.keys()) if (k <= this.now && (at === undefined || k < at)) at = k;
      if (at === undefined) return;
      const b = this.queue.get(at)!;
      const m = b.shift();
      if (b.length === 0) this.queue.delete(at);
      if (m) this.deliver(m);
    }
    throw new Error('deliverDue: more than 200000 deliveries in one tick');
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

  // --- helpers -------------------------------------------------------------

  up(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** The established leader with the highest epoch, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.up()) if (n.z.isLeader && (!best || n.z.status().epoch > best.z.status().epoch)) best = n;
    return best;
  }

  /** An established leader that every live node follows in broadcast. */
  agreed(): NodeId | undefined {
    const l = this.leader();
    if (!l) return undefined;
    for (const n of this.up()) {
      if (n === l) continue;
      const st = n.z.status();
      if (st.phase !== 'broadcast' || st.leader !== l.id) return undefined;
    }
    return l.id;
  }

  waitLeader(max = 300): SimNode {
    this.runUntil(() => this.leader() !== undefined, max, 'an established leader');
    return this.leader()!;
  }

  /** Proposes on the current leader; returns the index, or undefined when refused. */
  propose(data: string): Index | undefined {
    const l = this.leader();
    if (!l) return undefined;
    const r = l.z.propose(enc.encode(data));
    this.process(l);
    return r.ok ? r.index : undefined;
  }

  /** Asks node `id` for a linearizable read; returns its ctx, or undefined when refused. */
  read(id: NodeId): number | undefined {
    const n = this.node(id);
    const ctx = n.nextCtx++;
    const r = n.z.readIndex(ctx);
    if (!r.ok) return undefined;
    if (this.check) this.inv.readStarted(id, ctx);
    this.process(n);
    return ctx;
  }

  /** Compacts a node at its applied index with its state machine as the snapshot. */
  compact(id: NodeId): void {
    const n = this.node(id);
    const data = enc.encode(JSON.stringify({ sm: n.sm }));
    const res = n.z.compact(n.applied, data);
    if (!res.ok) throw new Error(`compact ${id}: ${res.reason}`);
    n.store.snapshot = { meta: res.meta, data: n.z.witness ? new Uint8Array(0) : data };
    n.store.entries = n.store.entries.filter((e) => e.index > res.meta.index);
  }

  appliedData(id: NodeId): string[] {
    return this.node(id).sm;
  }
}
