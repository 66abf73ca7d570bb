/**
 * A deterministic in-memory cluster for the Multi-Paxos engine (src/paxos/multi.ts).
 *
 * - Virtual time: `tick()` advances every live node by one engine tick, then delivers
 *   the messages that are due.
 * - A seeded network: loss, duplication, delay in ticks (random delays reorder),
 *   partitions (blocked directed pairs), and an optional per-message filter.
 * - Each node persists exactly what its Readys ask for, in the contract's order
 *   (snapshot, entries with suffix overwrite, hard state), before its messages enter
 *   the network. A crash throws the engine and the state machine away; a restart
 *   rebuilds both from the persisted state only.
 * - Torn writes (`tornRate`): a node may lose power while persisting a Ready. A prefix
 *   of its records [snapshot, entries…, hard state] survives, nothing is sent — but a
 *   Ready marked `atomic` keeps its snapshot and entries all or nothing, as the
 *   contract requires (`brokenAtomicity` drops that guarantee, to show why it exists).
 *   `crashAfterReadyRate`: a power cut right after a Ready went out.
 * - Every node applies committed commands to a real KvStateMachine (src/kv) and keeps
 *   the applied Normal payloads as text; snapshots carry both.
 * - The invariants (src/paxos/invariants.ts, PaxosInvariants) see every durable vote,
 *   snapshot and promise, every applied value, every restart and every leader's token,
 *   after every delivery and tick; with `check` (default on) the first violation throws.
 * - KV clients (`clients`): put / get / cas through the engine with call and return
 *   times, for the linearizability checker (src/lin).
 */
import { Rng } from '../../../src/rng.ts';
import { PaxosNode, PaxosInvariants, decodeDurableSlot, type PaxosOptions } from '../../../src/paxos/index.ts';
import type { HardState, Ready, ReadState, SnapshotData } from '../../../src/engine/contract.ts';
import { EntryType, MsgType, type Entry, type MemberConfig, type Message } from '../../../src/wire/messages.ts';
import { encodeFrame } from '../../../src/wire/codec.ts';
import { encodeCommand, KvError, KvStateMachine } from '../../../src/kv/index.ts';
import type { HistoryOp, Json } from '../../../src/lin/index.ts';
import type { Index, NodeId } from '../../../src/types.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface NetOptions {
  drop: number;
  dup: number;
  minDelay: number;
  maxDelay: number;
}

interface Persisted {
  hardState: HardState;
  snapshot: SnapshotData | undefined;
  entries: Entry[];
}

export class SimNode {
  engine: PaxosNode | undefined;
  store: Persisted = { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] };
  sm: string[] = [];
  kv = new KvStateMachine();
  applied: Index = 0;
  reads: ReadState[] = [];
  failedReads: number[] = [];
  incarnation = 0;
  restartAt: number | undefined;
  constructor(readonly id: NodeId, readonly bootConfig: MemberConfig) {}
  get up(): boolean {
    return this.engine !== undefined;
  }
  get e(): PaxosNode {
    if (!this.engine) throw new Error(`node ${this.id} is down`);
    return this.engine;
  }
  get witness(): boolean {
    return this.bootConfig.witnesses.includes(this.id);
  }
}

export interface ClusterOptions {
  seed: number;
  voters: NodeId[];
  learners?: NodeId[];
  witnesses?: NodeId[];
  options?: Partial<PaxosOptions>;
  /** Options for some nodes only (a planted bug in one node). */
  nodeOptions?: Record<NodeId, Partial<PaxosOptions>>;
  net?: Partial<NetOptions>;
  check?: boolean;
  /** Encode every sent message with the real wire codec (checks validity; records sizes). */
  wire?: boolean;
  tornRate?: number;
  crashAfterReadyRate?: number;
  restartDelay?: [number, number];
  /** TESTING ONLY: tear `atomic` Readys too (a runtime that ignores the contract). */
  brokenAtomicity?: boolean;
}

/** Snapshot bytes: the applied text list and the KV state machine's own snapshot. */
function encodeSnap(sm: string[], kv: KvStateMachine): Uint8Array {
  const a = enc.encode(JSON.stringify(sm));
  const b = kv.snapshot();
  const out = new Uint8Array(4 + a.length + b.length);
  new DataView(out.buffer).setUint32(0, a.length);
  out.set(a, 4);
  out.set(b, 4 + a.length);
  return out;
}
function decodeSnap(d: Uint8Array): { sm: string[]; kv: KvStateMachine } {
  if (d.length === 0) return { sm: [], kv: new KvStateMachine() }; // a witness's snapshot carries no data
  const n = new DataView(d.buffer, d.byteOffset).getUint32(0);
  const sm = JSON.parse(dec.decode(d.subarray(4, 4 + n))) as string[];
  const kv = KvStateMachine.restore(d.subarray(4 + n));
  if (kv instanceof KvError) throw kv;
  return { sm, kv };
}

export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly inv: PaxosInvariants;
  readonly rng: Rng;
  private readonly netRng: Rng;
  private readonly faultRng: Rng;
  net: NetOptions;
  now = 0;
  private queue = new Map<number, Message[]>();
  private blocked = new Set<string>();
  readonly config: MemberConfig;
  check: boolean;
  wire: boolean;
  tornRate: number;
  crashAfterReadyRate: number;
  restartDelay: [number, number];
  brokenAtomicity: boolean;
  sent = new Map<string, number>();
  bytesSent = 0;
  record = false;
  log: Message[] = [];
  maxFrame = new Map<string, number>();
  tornWrites = 0;
  crashes = 0;
  filter: ((m: Message) => Message | undefined) | undefined;
  /** Called for every Ready a node persisted (before its messages are sent). */
  onReady: ((n: SimNode, rd: Ready) => void) | undefined;

  constructor(private readonly o: ClusterOptions) {
    this.rng = new Rng(o.seed);
    this.netRng = this.rng.fork('net');
    this.faultRng = this.rng.fork('faults');
    this.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 0, ...(o.net ?? {}) };
    this.check = o.check ?? true;
    this.wire = o.wire ?? false;
    this.tornRate = o.tornRate ?? 0;
    this.crashAfterReadyRate = o.crashAfterReadyRate ?? 0;
    this.restartDelay = o.restartDelay ?? [5, 40];
    this.brokenAtomicity = o.brokenAtomicity ?? false;
    this.config = { voters: o.voters, learners: o.learners ?? [], witnesses: o.witnesses ?? [] };
    this.inv = new PaxosInvariants([...this.config.voters, ...this.config.witnesses]);
    for (const id of [...this.config.voters, ...this.config.witnesses, ...this.config.learners]) {
      const n = new SimNode(id, this.config);
      this.nodes.set(id, n);
      this.start(n);
    }
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private start(n: SimNode): void {
    const s = n.store;
    n.incarnation++;
    n.restartAt = undefined;
    n.engine = new PaxosNode({
      id: n.id,
      config: n.bootConfig,
      hardState: { ...s.hardState },
      snapshot: s.snapshot,
      entries: s.entries.slice(),
      options: { ...(this.o.options ?? {}), ...(this.o.nodeOptions?.[n.id] ?? {}) },
      rng: this.rng.fork(`node-${n.id}-${n.incarnation}`),
    });
    this.restoreSm(n, s.snapshot);
    const votes = new Map<number, number>();
    for (const e of s.entries) {
      const slot = decodeDurableSlot(e);
      if (typeof slot !== 'string') votes.set(slot.index, slot.ballot);
    }
    this.inv.restarted(n.id, n.engine.currentTerm, s.snapshot?.meta.index ?? 0, votes);
    this.inv.appliedReset(n.id, n.applied);
    this.assertOk();
  }

  private restoreSm(n: SimNode, snap: SnapshotData | undefined): void {
    const r = snap ? decodeSnap(snap.data) : { sm: [], kv: new KvStateMachine() };
    n.sm = r.sm.slice();
    n.kv = r.kv;
    n.applied = snap?.meta.index ?? 0;
  }

  crash(id: NodeId, restartIn?: number): void {
    const n = this.node(id);
    if (!n.engine) return;
    n.engine = undefined;
    n.reads = [];
    n.failedReads = [];
    n.restartAt = restartIn === undefined ? undefined : this.now + restartIn;
    this.crashes++;
    this.clients?.nodeCrashed(id);
  }

  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.up) throw new Error(`node ${id} is up`);
    this.start(n);
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
    if (this.record) this.log.push(m);
    if (this.wire) {
      const f = encodeFrame(m, { cluster: 1, bootId: 0xffff, seq: 0xffff }, new Uint8Array(32));
      this.bytesSent += f.length;
      this.maxFrame.set(name, Math.max(this.maxFrame.get(name) ?? 0, f.length));
    }
    if (this.filter) {
      const f = this.filter(m);
      if (!f) return;
      m = f;
    }
    const copies = this.net.dup > 0 && this.netRng.chance(this.net.dup) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      if (this.net.drop > 0 && this.netRng.chance(this.net.drop)) continue;
      const delay = this.net.maxDelay > this.net.minDelay ? this.netRng.int(this.net.minDelay, this.net.maxDelay) : this.net.minDelay;
      const at = this.now + delay;
      const b = this.queue.get(at);
      if (b) b.push(m);
      else this.queue.set(at, [m]);
    }
  }

  deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (!n || !n.engine || this.blocked.has(`${m.from}>${m.to}`)) return;
    n.engine.step(m);
    this.process(n);
    this.afterStep();
  }

  // --- the runtime loop ----------------------------------------------------

  /** Handles every Ready of a node: persist (maybe torn), send, apply, advance. */
  process(n: SimNode): void {
    for (let k = 0; k < 1000 && n.engine; k++) {
      const rd = n.engine.ready();
      if (!rd) return;
      const durable = rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined;
      if (durable && this.tornRate > 0 && this.faultRng.chance(this.tornRate)) {
        this.tornPersist(n, rd);
        return;
      }
      this.persist(n, rd, Infinity);
      this.onReady?.(n, rd);
      for (const m of rd.messages) this.enqueue(m);
      this.apply(n, rd);
      n.engine.advance(rd);
      this.clients?.afterReady(n);
      if (rd.messages.length > 0 && this.crashAfterReadyRate > 0 && this.faultRng.chance(this.crashAfterReadyRate)) {
        this.crash(n.id, this.faultRng.int(this.restartDelay[0], this.restartDelay[1]));
        return;
      }
    }
    if (n.engine) throw new Error(`node ${n.id}: more than 1000 Readys in a row`);
  }

  /** Power lost while persisting `rd`: a prefix of its records survives; nothing is sent or applied. */
  private tornPersist(n: SimNode, rd: Ready): void {
    const records = (rd.snapshot ? 1 : 0) + rd.entries.length + (rd.hardState ? 1 : 0);
    let keep = this.faultRng.int(0, Math.max(0, records - 1));
    const body = (rd.snapshot ? 1 : 0) + rd.entries.length;
    if (rd.atomic && !this.brokenAtomicity && keep < body) keep = 0; // all or nothing for snapshot + entries
    this.persist(n, rd, keep);
    this.tornWrites++;
    this.crash(n.id, this.faultRng.int(this.restartDelay[0], this.restartDelay[1]));
  }

  /** Writes the first `limit` records of the Ready (snapshot, entries…, hard state). */
  private persist(n: SimNode, rd: Ready, limit: number): void {
    const s = n.store;
    let left = limit;
    if (rd.snapshot && left > 0) {
      left--;
      s.snapshot = rd.snapshot;
      s.entries = [];
      this.inv.snapshotDurable(n.id, rd.snapshot.meta.index);
    }
    if (rd.entries.length > 0 && left > 0) {
      const first = rd.entries[0]!.index;
      const base = s.snapshot?.meta.index ?? 0;
      const keep = first - base - 1;
      if (keep < 0 || keep > s.entries.length) throw new Error(`node ${n.id}: Ready entries start at ${first}, persisted log is [${base + 1}, ${base + s.entries.length}]`);
      s.entries.length = keep; // the suffix overwrite: everything from `first` on is replaced
      let prevStamp = s.entries[s.entries.length - 1]?.term ?? 0;
      for (const e of rd.entries) {
        if (left <= 0) break;
        left--;
        if (e.term < prevStamp) throw new Error(`node ${n.id}: entry ${e.index} stamp ${e.term} below the previous ${prevStamp} (a Raft-shaped store would refuse it)`);
        prevStamp = e.term;
        s.entries.push({ ...e });
        const slot = decodeDurableSlot(e);
        if (typeof slot === 'string') throw new Error(`node ${n.id}: Ready entry ${e.index}: ${slot}`);
        const data = n.witness && slot.type === EntryType.Normal ? undefined : slot.data;
        this.inv.voteDurable(n.id, slot.index, slot.ballot, { origin: slot.origin, type: slot.type, data });
      }
    }
    if (rd.hardState && left > 0) {
      if (rd.hardState.commit > (s.snapshot?.meta.index ?? 0) + s.entries.length) throw new Error(`node ${n.id}: hard state commit ${rd.hardState.commit} beyond the durable log`);
      s.hardState = { ...rd.hardState };
      this.inv.promiseDurable(n.id, rd.hardState.term);
    }
    this.assertOk();
  }

  private apply(n: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      this.restoreSm(n, rd.snapshot);
      this.inv.appliedReset(n.id, n.applied);
    }
    for (const e of rd.committed) {
      if (e.index !== n.applied + 1) throw new Error(`node ${n.id}: applying ${e.index} after ${n.applied} (out of order or twice)`);
      n.applied = e.index;
      const witness = n.witness;
      let result: ReturnType<KvStateMachine['apply']> | undefined;
      if (e.type === EntryType.Normal && !witness) {
        n.sm.push(dec.decode(e.data));
        result = n.kv.apply(e.index, e.data);
      } else {
        n.kv.applyNoop(e.index);
      }
      this.inv.applied(n.id, e.index, { origin: e.term, type: e.type, data: witness && e.type === EntryType.Normal ? undefined : e.data });
      this.clients?.applied(n, e, result);
    }
    n.reads.push(...rd.readStates);
    n.failedReads.push(...rd.failedReads);
    this.clients?.reads(n, rd.readStates, rd.failedReads);
    this.assertOk();
  }

  /** After every delivery and tick: leaders' ballots and tokens. */
  private afterStep(): void {
    for (const n of this.nodes.values()) {
      if (n.engine?.isLeader) this.inv.leadership(n.id, n.engine.status().ballot, n.engine.leaderToken());
    }
    this.assertOk();
  }

  private assertOk(): void {
    if (this.check && !this.inv.ok) throw new Error(`invariant violated at t=${this.now}: ${this.inv.violations[0]}`);
  }

  tick(): void {
    this.now++;
    for (const n of this.nodes.values()) {
      if (!n.engine && n.restartAt !== undefined && this.now >= n.restartAt) this.start(n);
      if (!n.engine) continue;
      n.engine.tick();
      this.process(n);
    }
    this.clients?.tick();
    for (let guard = 0; guard < 200000; guard++) {
      let at: number | undefined;
      for (const k of this.queue.keys()) if (k <= this.now && (at === undefined || k < at)) at = k;
      if (at === undefined) break;
      const b = this.queue.get(at)!;
      const m = b.shift();
      if (b.length === 0) this.queue.delete(at);
      if (m) this.deliver(m);
      if (guard === 199999) throw new Error('harness: more than 200000 deliveries in one tick');
    }
    this.afterStep();
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

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

  /** The live leader with the highest ballot, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.up()) if (n.e.isLeader && (!best || n.e.currentTerm > best.e.currentTerm)) best = n;
    return best;
  }

  waitLeader(max = 400): SimNode {
    this.runUntil(() => this.leader() !== undefined, max, 'a leader');
    return this.leader()!;
  }

  /** Proposes text on the current leader; returns the slot, or undefined when refused. */
  propose(text: string): Index | undefined {
    const l = this.leader();
    if (!l) return undefined;
    const data = enc.encode(text);
    const r = l.e.propose(data);
    if (!r.ok) return undefined;
    this.inv.proposed(r.index, r.term, data);
    this.process(l);
    return r.index;
  }

  /** Proposes on a given node without processing its Ready yet (to batch several); the raw result. */
  proposeQuiet(id: NodeId, text: string): ReturnType<PaxosNode['propose']> {
    const data = enc.encode(text);
    const r = this.node(id).e.propose(data);
    if (r.ok) this.inv.proposed(r.index, r.term, data);
    return r;
  }

  /** Proposes on a given node (any role); the raw result. */
  proposeOn(id: NodeId, data: Uint8Array): ReturnType<PaxosNode['propose']> {
    const n = this.node(id);
    const r = n.e.propose(data);
    if (r.ok) this.inv.proposed(r.index, r.term, data);
    this.process(n);
    return r;
  }

  /** Compacts a node at its applied index (its state machine as the snapshot). */
  compact(id: NodeId): void {
    const n = this.node(id);
    const data = encodeSnap(n.sm, n.kv);
    const res = n.e.compact(n.applied, data);
    if (!res.ok) throw new Error(`compact ${id}: ${res.reason}`);
    n.store.snapshot = { meta: res.meta, data: n.witness ? new Uint8Array(0) : data };
    n.store.entries = n.store.entries.filter((e) => e.index > res.meta.index);
    this.inv.snapshotDurable(n.id, res.meta.index);
  }

  appliedData(id: NodeId): string[] {
    return this.node(id).sm;
  }

  // --- KV clients --------------------------------------------------------------

  clients: KvClients | undefined;
  startClients(count: number, keys: string[]): KvClients {
    this.clients = new KvClients(this, count, keys, this.rng.fork('clients'));
    return this.clients;
  }
}

interface PendingWrite {
  kind: 'put' | 'cas';
  client: number;
  node: NodeId;
  incarnation: number;
  index: Index;
  term: number;
  op: HistoryOp;
}
interface PendingRead {
  client: number;
  node: NodeId;
  ctx: number;
  key: string;
  call: number;
  index?: Index;
  /** For a cas: the client reads first, then writes with the index it saw. */
  thenCas: boolean;
}

/**
 * Clients that drive KV commands through the engine, one operation at a time each,
 * and record a history for src/lin: put (unique values), get (a linearizable read,
 * ReadIndex, at any node — followers forward), cas (a read, then a put with
 * cas = the modify index it saw; with unique values that is a compare-and-set on the
 * value). Outcomes follow the runtime's rules: a write is known applied when its node
 * applies (index, term) as proposed; definitely not applied when another term is
 * applied at its index (left out of the history); unknown (ret: null) if its node
 * crashed first or the run ends. A read that fails (503) is left out.
 */
export class KvClients {
  readonly history: HistoryOp[] = [];
  private busy = new Set<number>();
  private writes: PendingWrite[] = [];
  private pendingReads: PendingRead[] = [];
  private nextCtx = 1;
  private seq = 0;
  /** Probability per client per tick of starting an operation when idle. */
  rate = 0.3;
  stopped = false;
  completed = 0;
  definiteFailures = 0;

  constructor(private readonly c: Cluster, readonly count: number, readonly keys: string[], private readonly rng: Rng) {}

  tick(): void {
    if (this.stopped) return;
    for (let client = 1; client <= this.count; client++) {
      if (this.busy.has(client) || !this.rng.chance(this.rate)) continue;
      const r = this.rng.float();
      const key = this.rng.pick(this.keys);
      if (r < 0.45) this.put(client, key);
      else if (r < 0.8) this.read(client, key, false);
      else this.read(client, key, true);
    }
  }

  private put(client: number, key: string, cas?: { from: Json; index: Index }): void {
    const l = this.c.leader();
    if (!l) return; // no leader known: the client retries later (no operation recorded)
    const value = `c${client}-${++this.seq}`;
    const data = encodeCommand(cas ? { op: 'put', key, value: enc.encode(JSON.stringify(value)), cas: cas.index } : { op: 'put', key, value: enc.encode(JSON.stringify(value)) });
    if (data instanceof KvError) throw data;
    const r = l.e.propose(data);
    if (!r.ok) return;
    this.c.inv.proposed(r.index, r.term, data);
    const op: HistoryOp = cas
      ? { client, op: 'cas', key, from: cas.from, to: value, output: null, call: this.c.now, ret: null }
      : { client, op: 'put', key, value, call: this.c.now, ret: null };
    this.busy.add(client);
    this.writes.push({ kind: cas ? 'cas' : 'put', client, node: l.id, incarnation: l.incarnation, index: r.index, term: r.term, op });
    this.c.process(l);
  }

  private read(client: number, key: string, thenCas: boolean): void {
    const ups = this.c.up();
    if (ups.length === 0) return;
    const n = this.rng.pick(ups);
    const ctx = this.nextCtx++;
    if (!n.e.readIndex(ctx).ok) return;
    this.busy.add(client);
    this.pendingReads.push({ client, node: n.id, ctx, key, call: this.c.now, thenCas });
    this.c.process(n);
  }

  /** A node applied entry e (result = the KV result for a Normal entry on a data node). */
  applied(n: SimNode, e: Entry, result: ReturnType<KvStateMachine['apply']> | undefined): void {
    for (let i = 0; i < this.writes.length; i++) {
      const w = this.writes[i]!;
      if (w.node !== n.id || w.incarnation !== n.incarnation || w.index !== e.index) continue;
      this.writes.splice(i, 1);
      this.busy.delete(w.client);
      if (e.term !== w.term) {
        this.definiteFailures++; // another value was chosen there: ours never takes effect
        return;
      }
      w.op.ret = this.c.now;
      if (w.op.op === 'cas') w.op.output = result && result.op === 'put' && result.ok ? 'ok' : 'fail';
      this.history.push(w.op);
      this.completed++;
      return;
    }
  }

  reads(n: SimNode, states: readonly ReadState[], failed: readonly number[]): void {
    for (const ctx of failed) {
      const k = this.pendingReads.findIndex((r) => r.node === n.id && r.ctx === ctx);
      if (k >= 0) {
        this.busy.delete(this.pendingReads[k]!.client);
        this.pendingReads.splice(k, 1);
      }
    }
    for (const s of states) {
      const r = this.pendingReads.find((x) => x.node === n.id && x.ctx === s.ctx);
      if (r) r.index = s.index;
    }
  }

  /** Serves reads whose index the node has applied. */
  afterReady(n: SimNode): void {
    for (let i = 0; i < this.pendingReads.length; i++) {
      const r = this.pendingReads[i]!;
      if (r.node !== n.id || r.index === undefined || n.applied < r.index) continue;
      this.pendingReads.splice(i--, 1);
      this.busy.delete(r.client);
      const cur = n.kv.get(r.key);
      const output: Json = cur ? (JSON.parse(dec.decode(cur.value)) as Json) : null;
      this.history.push({ client: r.client, op: 'get', key: r.key, output, call: r.call, ret: this.c.now });
      this.completed++;
      if (r.thenCas && !this.stopped) this.put(r.client, r.key, { from: output, index: cur?.modIndex ?? 0 });
    }
  }

  nodeCrashed(id: NodeId): void {
    for (const w of this.writes.filter((x) => x.node === id)) {
      this.history.push(w.op); // ret: null — it may or may not have taken effect
      this.busy.delete(w.client);
    }
    this.writes = this.writes.filter((x) => x.node !== id);
    for (const r of this.pendingReads.filter((x) => x.node === id)) this.busy.delete(r.client);
    this.pendingReads = this.pendingReads.filter((x) => x.node !== id);
  }

  /** Ends the run: unanswered writes are unknown (ret: null). */
  finish(): HistoryOp[] {
    this.stopped = true;
    for (const w of this.writes) this.history.push(w.op);
    this.writes = [];
    return this.history;
  }

  /** Ops still waiting for an outcome. */
  get outstanding(): number {
    return this.writes.length + this.pendingReads.length;
  }
}

export const text = (s: string): Uint8Array => enc.encode(s);
