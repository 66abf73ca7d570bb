/**
 * A deterministic in-memory cluster for the PBFT engine, with Byzantine replicas.
 *
 * - Time is virtual: `tick()` advances every live replica by one engine tick, then
 *   delivers what is due. A run is a pure function of its seed.
 * - The network is seeded: loss, duplication, delay in ticks (random delays reorder),
 *   partitions (blocked directed pairs). With `wire`, every message goes through the
 *   real codec (encode + decode with a real tag), as on a board.
 * - Each replica persists exactly what its Readys ask for, in the contract's order,
 *   before its messages enter the network. A crash throws the engine and the state
 *   machine away; a restart rebuilds both from the persisted state only. A crash can
 *   tear the persist of the Ready in progress (`crash(id, {torn: true})`: a prefix of
 *   its writes is kept, none of its messages leave) — the contract allows exactly that,
 *   since nothing of a Ready is sent before all of it is durable.
 * - Byzantine replicas (src/pbft/byzantine.ts) run the honest engine (they know the protocol) but their
 *   outgoing traffic goes through a saboteur that holds only that replica's own
 *   signing key: it equivocates, forges, withholds, corrupts digests, replays what it
 *   received, lies in view changes, answers clients wrongly and sends garbage. Their
 *   state is never checked; honest replicas are checked after every delivery and tick
 *   (src/pbft/invariants.ts).
 * - Clients: `submit(node, op)` proposes at a replica (its origin); every replica that
 *   executes a request signs a reply (src/pbft/reply.ts) into a pool; a client accepts
 *   a result once f + 1 matching replies are there, and the invariants check that an
 *   honest replica executed exactly that.
 * The state machine is a small string map (`set k v` → previous value); its snapshot is
 * the JSON of its sorted entries (deterministic, as PBFT checkpoints require).
 */
import { Rng } from '../../../src/rng.ts';
import { PbftNode, type PbftInit } from '../../../src/pbft/pbft.ts';
import { SimulatedKeys, devEd25519Auths, type PbftAuth } from '../../../src/pbft/auth.ts';
import { PbftInvariants } from '../../../src/pbft/invariants.ts';
import { acceptReplies, signReply, type PbftReply } from '../../../src/pbft/reply.ts';
import { sha256 } from '../../../src/pbft/encoding.ts';
import { Saboteur, type ByzKind } from '../../../src/pbft/byzantine.ts';
import type { PbftOptions } from '../../../src/pbft/options.ts';
import { EntryType, MsgType, type Entry, type Message } from '../../../src/wire/messages.ts';
import { decodeFrame, encodeFrame, WireEncodeError } from '../../../src/wire/codec.ts';
import type { HardState, Ready, SnapshotData } from '../../../src/engine/contract.ts';
import type { Index, NodeId } from '../../../src/types.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const WIRE_KEY = new Uint8Array(32).fill(0x5a);

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export { BYZ_KINDS, type ByzKind } from '../../../src/pbft/byzantine.ts';

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

export class Replica {
  engine: PbftNode | undefined;
  store: Persisted = { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] };
  kv = new Map<string, string>();
  applied: Index = 0;
  incarnation = 0;
  tearNext = false;
  /** Observed state for the invariants (what was already reported, per seq: view and the digest object). */
  seenPrepared = new Map<Index, { view: number; digest: Uint8Array }>();
  seenCommitted = new Map<Index, { view: number; digest: Uint8Array }>();
  reads: Array<{ ctx: number; index: Index }> = [];
  failedReads: number[] = [];
  outcomes: Array<{ ref: number; index: Index }> = [];
  /** Byzantine: its saboteur (src/pbft/byzantine.ts), undefined for an honest replica. */
  byz: Saboteur | undefined;
  constructor(
    readonly id: NodeId,
    readonly auth: PbftAuth,
  ) {}
  get up(): boolean {
    return this.engine !== undefined;
  }
  get e(): PbftNode {
    if (!this.engine) throw new Error(`replica ${this.id} is down`);
    return this.engine;
  }
}

export interface ClientRequest {
  origin: NodeId;
  reqNo: number;
  op: string;
  opDigest: Uint8Array;
  incarnation: number;
  accepted?: { index: Index; result: string };
  /** The origin reported it will never run (outcome index 0). */
  lost?: boolean;
}

export interface ClusterOptions {
  seed: number;
  n: number;
  options?: Partial<PbftOptions>;
  /** Options for honest replicas only (e.g. a planted bug). */
  honestOptions?: Partial<PbftOptions>;
  net?: Partial<NetOptions>;
  /** 'simulated' (HMAC stand-in, default: fast) or 'ed25519' (the real thing). */
  auth?: 'simulated' | 'ed25519';
  byzantine?: Record<NodeId, ByzKind[]>;
  check?: boolean;
  /** Every message through the real codec. */
  wire?: boolean;
  /** A client accepts with this many matching replies instead of f + 1 (testing the checker). */
  clientQuorum?: number;
  /** Count frame bytes of honest messages (encodes each; default true). */
  countBytes?: boolean;
}

export class Cluster {
  readonly replicas = new Map<NodeId, Replica>();
  readonly members: NodeId[];
  readonly f: number;
  readonly rng: Rng;
  private readonly netRng: Rng;
  private readonly byzRng: Rng;
  net: NetOptions;
  now = 0;
  private queue = new Map<number, Message[]>();
  private blocked = new Set<string>();
  readonly inv: PbftInvariants;
  check: boolean;
  readonly wire: boolean;
  readonly clients = new Map<string, ClientRequest>();
  readonly replies = new Map<string, PbftReply[]>();
  private readonly clientQuorum: number;
  private pendingClients = new Set<string>();
  /** Counters: messages and bytes sent by honest replicas, by type name. */
  sent = new Map<string, number>();
  sentBytes = new Map<string, number>();
  deliveries = 0;
  private readonly opts: ClusterOptions;
  private verifier: PbftAuth;
  private fakeReq = 1_000_000_000;

  constructor(o: ClusterOptions) {
    this.opts = o;
    this.rng = new Rng(o.seed);
    this.netRng = this.rng.fork('net');
    this.byzRng = this.rng.fork('byz');
    this.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 0, ...(o.net ?? {}) };
    this.check = o.check ?? true;
    this.wire = o.wire ?? false;
    this.members = Array.from({ length: o.n }, (_, i) => i + 1);
    this.f = Math.floor((o.n - 1) / 3);
    this.clientQuorum = o.clientQuorum ?? this.f + 1;
    const auths = o.auth === 'ed25519' ? devEd25519Auths(this.members, `seed${o.seed}-`) : simulatedAuths(this.members, o.seed);
    this.verifier = auths.get(1)!;
    const byz = o.byzantine ?? {};
    this.inv = new PbftInvariants(this.members.filter((id) => byz[id] === undefined));
    for (const id of this.members) {
      const r = new Replica(id, auths.get(id)!);
      const kinds = byz[id];
      if (kinds) r.byz = new Saboteur({ auth: r.auth, members: this.members, kinds, rng: this.byzRng, nextFakeReq: () => this.fakeReq++ });
      this.replicas.set(id, r);
      this.start(r);
    }
  }

  replica(id: NodeId): Replica {
    const r = this.replicas.get(id);
    if (!r) throw new Error(`no replica ${id}`);
    return r;
  }

  honest(): Replica[] {
    return [...this.replicas.values()].filter((r) => !r.byz);
  }

  private start(r: Replica): void {
    const s = r.store;
    r.incarnation++;
    const options = { ...(this.opts.options ?? {}), ...(r.byz ? {} : this.opts.honestOptions ?? {}) };
    const init: PbftInit = {
      id: r.id,
      config: { voters: this.members, learners: [], witnesses: [] },
      hardState: { ...s.hardState },
      snapshot: s.snapshot,
      entries: s.entries.slice(),
      options,
      auth: r.auth,
      rng: this.rng.fork(`replica-${r.id}-${r.incarnation}`),
    };
    r.engine = new PbftNode(init);
    this.restoreApp(r, s.snapshot);
    r.seenPrepared.clear();
    r.seenCommitted.clear();
    this.inv.observeRestart(r.id, r.applied);
    this.inv.observeView(r.id, r.engine.currentView);
    this.process(r);
  }

  private restoreApp(r: Replica, snap: SnapshotData | undefined): void {
    r.kv = new Map(snap && snap.data.length > 0 ? (JSON.parse(dec.decode(snap.data)) as Array<[string, string]>) : []);
    r.applied = snap?.meta.index ?? 0;
  }

  /** Crashes a replica; with `torn`, it dies during its next persist instead (a prefix of that Ready's writes survives). */
  crash(id: NodeId, o: { torn?: boolean } = {}): void {
    const r = this.replica(id);
    if (!r.up) return;
    if (o.torn) {
      r.tearNext = true;
      return;
    }
    this.kill(r);
  }

  private kill(r: Replica): void {
    r.engine = undefined;
    r.kv = new Map();
    r.tearNext = false;
    for (const c of this.clients.values()) if (c.origin === r.id && !c.accepted) c.incarnation = -1; // its retransmissions stop
  }

  restart(id: NodeId): void {
    const r = this.replica(id);
    if (r.up) return;
    this.start(r);
  }

  // --- network -------------------------------------------------------------

  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.blocked.add(`${x}>${y}`);
      this.blocked.add(`${y}>${x}`);
    }
  }

  isolate(id: NodeId): void {
    this.partition([id], this.members.filter((x) => x !== id));
  }

  heal(): void {
    this.blocked.clear();
  }

  private enqueue(m: Message, honest: boolean): void {
    if (honest) {
      const name = MsgType[m.type]!;
      this.sent.set(name, (this.sent.get(name) ?? 0) + 1);
      if (this.opts.countBytes !== false) {
        const f = encodeFrame(m, { cluster: 1, bootId: 300, seq: 1000 }, WIRE_KEY);
        this.sentBytes.set(name, (this.sentBytes.get(name) ?? 0) + f.length);
      }
    }
    if (this.wire) {
      let frame: Uint8Array;
      try {
        frame = encodeFrame(m, { cluster: 7, bootId: 1, seq: 1 }, WIRE_KEY);
      } catch (e) {
        if (honest || !(e instanceof WireEncodeError)) throw e;
        return; // a saboteur's message the codec refuses never leaves a real board
      }
      const d = decodeFrame(frame, { cluster: 7, keyring: { current: WIRE_KEY } });
      if (!d.ok) throw new Error(`wire: a frame the codec encoded does not decode: ${d.reason} ${d.detail}`);
      m = d.msg;
    }
    if (this.filter && !this.filter(m)) return;
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

  /** A running hash of every delivery (type, from, to, view, seq) and the tick it happened in: equal seeds, equal traces. */
  trace = 0x811c9dc5;
  private mix(x: number): void {
    this.trace = Math.imul(this.trace ^ (x >>> 0), 0x01000193) >>> 0;
  }

  private deliver(m: Message): void {
    const r = this.replicas.get(m.to);
    if (!r || !r.engine || this.blocked.has(`${m.from}>${m.to}`)) return;
    this.mix(this.now);
    this.mix(m.type * 65536 + m.from * 256 + m.to);
    this.mix(m.term);
    if ('seq' in m) this.mix(m.seq);
    r.byz?.receive(m);
    r.engine.step(m);
    this.process(r);
    this.deliveries++;
    if (this.check) this.observe(r);
  }

  // --- the runtime loop ----------------------------------------------------

  process(r: Replica): void {
    for (let k = 0; k < 1000 && r.engine; k++) {
      const rd = r.engine.ready();
      if (!rd) return;
      if (r.tearNext) {
        this.tear(r, rd);
        return;
      }
      this.persist(r, rd);
      const out = r.byz ? r.byz.outgoing(rd.messages) : rd.messages;
      for (const m of out) this.enqueue(m, !r.byz);
      this.apply(r, rd);
      r.engine.advance(rd);
      if (rd.checkpoint !== undefined) this.checkpoint(r, rd.checkpoint);
    }
    if (r.engine) throw new Error(`replica ${r.id}: more than 1000 Readys in a row`);
  }

  private persist(r: Replica, rd: Ready): void {
    const s = r.store;
    if (rd.snapshot) {
      s.snapshot = rd.snapshot;
      s.entries = [];
    }
    for (const e of rd.entries) this.persistEntry(r, e);
    if (rd.hardState) {
      // The contract (and the daemon's durable log, which refuses such a write and stops
      // the node): the executed index never runs ahead of the log that holds it.
      const last = (s.snapshot?.meta.index ?? 0) + s.entries.length;
      if (rd.hardState.commit > last) throw new Error(`replica ${r.id}: Ready hardState.commit ${rd.hardState.commit} is beyond the last persisted index ${last}`);
      s.hardState = { ...rd.hardState };
    }
  }

  private persistEntry(r: Replica, e: Entry): void {
    const s = r.store;
    const base = s.snapshot?.meta.index ?? 0;
    const keep = e.index - base - 1;
    if (keep < 0 || keep > s.entries.length) throw new Error(`replica ${r.id}: Ready entry ${e.index}, persisted log is [${base + 1}, ${base + s.entries.length}]`);
    s.entries.length = keep;
    s.entries.push({ ...e });
  }

  /**
   * Dies in the middle of persisting rd: a prefix of [snapshot, entries..., hardState] is
   * durable, nothing is sent or applied. An `atomic` Ready's snapshot and entries land
   * all or nothing (the contract's promise; the hard state after them may still be lost).
   */
  private tear(r: Replica, rd: Ready): void {
    const writes: Array<() => void> = [];
    const s = r.store;
    if (rd.snapshot) writes.push(() => {
      s.snapshot = rd.snapshot;
      s.entries = [];
    });
    for (const e of rd.entries) writes.push(() => this.persistEntry(r, e));
    const body = writes.length;
    if (rd.hardState) {
      const hs = rd.hardState;
      writes.push(() => (s.hardState = { ...hs }));
    }
    let keep = writes.length === 0 ? 0 : this.rng.int(0, writes.length - 1);
    if (rd.atomic && keep > 0 && keep < body) keep = this.rng.chance(0.5) ? 0 : body;
    for (let i = 0; i < keep; i++) writes[i]!();
    this.kill(r);
  }

  private apply(r: Replica, rd: Ready): void {
    if (rd.snapshot) {
      this.restoreApp(r, rd.snapshot);
      this.inv.observeInstalled(r.id, rd.snapshot.meta.index);
    }
    for (const e of rd.committed) {
      if (e.index !== r.applied + 1) throw new Error(`replica ${r.id}: applying ${e.index} after ${r.applied}`);
      r.applied = e.index;
      const req = r.e.executedRequest(e.index);
      let result: string | undefined;
      if (e.type === EntryType.Normal) {
        const op = dec.decode(e.data);
        result = applyOp(r.kv, op);
      }
      this.inv.observeExecuted(r.id, e.index, {
        request: req ? `${req.origin}/${req.reqNo}/${hex(req.digest)}` : 'null',
        effect: e.type === EntryType.Normal ? `normal:${dec.decode(e.data)}` : 'noop',
        result,
      });
      if (req && e.type === EntryType.Normal && result !== undefined) {
        const view = r.e.currentView;
        const res = enc.encode(result);
        const rep = signReply(r.auth, { view, origin: req.origin, reqNo: req.reqNo, index: e.index, opDigest: sha256(e.data), result: r.byz ? r.byz.replyResult(res) : res });
        this.addReply(rep);
      }
    }
    if (r.byz?.has('wrong-reply')) {
      // Replies for requests it never executed, at made-up indexes.
      for (const c of this.pendingClients) {
        const cl = this.clients.get(c)!;
        if (this.byzRng.chance(0.2)) {
          this.addReply(signReply(r.auth, { view: 0, origin: cl.origin, reqNo: cl.reqNo, index: this.byzRng.int(1, 50), opDigest: cl.opDigest, result: enc.encode('FAKE') }));
        }
      }
    }
    for (const o of rd.outcomes ?? []) {
      r.outcomes.push(o);
      if (o.index === 0) {
        const c = this.clients.get(`${r.id}/${o.ref}`);
        if (c) c.lost = true;
      }
    }
    r.reads.push(...rd.readStates);
    r.failedReads.push(...rd.failedReads);
  }

  private addReply(rep: PbftReply): void {
    const key = `${rep.origin}/${rep.reqNo}`;
    let l = this.replies.get(key);
    if (!l) this.replies.set(key, (l = []));
    if (l.length < 4 * this.members.length) l.push(rep);
  }

  /** The runtime's side of Ready.checkpoint: snapshot the state machine, compact, store. */
  private checkpoint(r: Replica, c: Index): void {
    if (!r.engine) return;
    if (r.applied !== c) throw new Error(`replica ${r.id}: checkpoint ${c} wanted but the state machine is at ${r.applied}`);
    const data = enc.encode(JSON.stringify([...r.kv].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))));
    const res = r.engine.compact(c, data);
    if (!res.ok) throw new Error(`replica ${r.id}: compact(${c}) refused: ${res.reason}`);
    r.store.snapshot = { meta: res.meta, data };
    r.store.entries = r.store.entries.filter((e) => e.index > c);
    const d = r.engine.ownCheckpoint(c);
    if (d) this.inv.observeCheckpoint(r.id, c, hex(d));
  }

  tick(): void {
    this.now++;
    for (const r of this.replicas.values()) {
      if (!r.engine) continue;
      r.engine.tick();
      this.process(r);
    }
    this.deliverDue();
    this.checkClients();
    if (this.check) this.observe();
    this.onTick?.(this);
  }

  /** Called after every tick (debugging a seed). */
  onTick: ((c: Cluster) => void) | undefined;
  /** Applied to every message at send time: false drops it (targeted scenarios). */
  filter: ((m: Message) => boolean) | undefined;

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

  runUntil(pred: () => boolean, max: number, what: string | (() => string) = 'condition'): number {
    for (let i = 0; i <= max; i++) {
      if (pred()) return i;
      this.tick();
    }
    throw new Error(`runUntil: ${typeof what === 'string' ? what : what()} not reached within ${max} ticks (t=${this.now}); ${this.describe()}`);
  }

  describe(): string {
    return [...this.replicas.values()]
      .map((r) => (r.engine ? `${r.id}${r.byz ? '(byz)' : ''}: v${r.e.currentView}${r.e.inViewChange ? '*' : ''} exec ${r.e.executedIndex} low ${r.e.stableCheckpoint}` : `${r.id}: down`))
      .join('; ');
  }

  // --- clients ---------------------------------------------------------------

  /** Proposes `op` at replica `origin`; returns the request key, or undefined when refused. */
  submit(origin: NodeId, op: string): string | undefined {
    const r = this.replica(origin);
    if (!r.engine) return undefined;
    const data = enc.encode(op);
    const res = r.engine.propose(data);
    this.process(r);
    if (!res.ok || res.ref === undefined) return undefined;
    const key = `${origin}/${res.ref}`;
    this.clients.set(key, { origin, reqNo: res.ref, op, opDigest: sha256(data), incarnation: r.incarnation });
    this.pendingClients.add(key);
    return key;
  }

  private checkClients(): void {
    for (const key of [...this.pendingClients]) {
      const c = this.clients.get(key)!;
      const reps = this.replies.get(key);
      if (!reps) continue;
      const v = acceptReplies(reps, { origin: c.origin, reqNo: c.reqNo, opDigest: c.opDigest }, { members: this.members, f: this.clientQuorum - 1 }, this.verifier);
      if (!v.ok) continue;
      const result = dec.decode(v.result);
      c.accepted = { index: v.index, result };
      this.pendingClients.delete(key);
      this.inv.observeAccepted(c.origin, c.reqNo, v.index, result);
    }
  }

  /** Requests that must execute once the cluster is stable: honest origins, still retransmitting, not reported lost. */
  requiredRequests(): string[] {
    const out: string[] = [];
    for (const [key, c] of this.clients) {
      const r = this.replica(c.origin);
      if (r.byz || c.lost || c.incarnation !== r.incarnation || !r.up) continue;
      out.push(key);
    }
    return out;
  }

  // --- invariants ------------------------------------------------------------

  /** Feeds the invariants what honest replicas are prepared for and committed (only what changed since last time). */
  observe(only?: Replica): void {
    for (const r of only ? [only] : this.replicas.values()) {
      if (!r.engine || r.byz) continue;
      const e = r.engine;
      this.inv.observeView(r.id, e.currentView);
      for (const seq of e.slotSeqs()) {
        const p = e.preparedAt(seq);
        if (p) {
          const k = r.seenPrepared.get(seq);
          if (!k || k.view !== p.view || k.digest !== p.digest) {
            r.seenPrepared.set(seq, p);
            this.inv.observePrepared(r.id, p.view, seq, hex(p.digest));
          }
        }
        const c = e.committedAt(seq);
        if (c) {
          const k = r.seenCommitted.get(seq);
          if (!k || k.view !== c.view || k.digest !== c.digest) {
            r.seenCommitted.set(seq, c);
            this.inv.observeCommitted(r.id, c.view, seq, hex(c.digest));
          }
        }
      }
      if (r.seenPrepared.size > 512) for (const k of [...r.seenPrepared.keys()]) if (k <= e.stableCheckpoint) r.seenPrepared.delete(k);
      if (r.seenCommitted.size > 512) for (const k of [...r.seenCommitted.keys()]) if (k <= e.stableCheckpoint) r.seenCommitted.delete(k);
    }
  }

  /**
   * Liveness: heal the network, restart every replica, then every required request
   * must execute everywhere honest and the honest replicas must agree on the executed
   * index, within `max` ticks.
   */
  stabilize(max: number): number {
    this.heal();
    this.net = { drop: 0, dup: 0, minDelay: 1, maxDelay: 1 };
    for (const id of this.members) this.restart(id);
    const required = this.requiredRequests();
    const honestIds = this.honest().map((r) => r.id);
    return this.runUntil(() => this.inv.checkLiveness(required, honestIds).length === 0, max, () => `liveness (${this.inv.checkLiveness(required, honestIds).slice(0, 3).join('; ')})`);
  }
}

/** The state machine: `set k v` stores v and answers the previous value ('' if none). */
export function applyOp(kv: Map<string, string>, op: string): string {
  const m = /^set (\S+) (.*)$/.exec(op);
  if (!m) return 'bad-op';
  const prev = kv.get(m[1]!) ?? '';
  kv.set(m[1]!, m[2]!);
  return prev;
}

function simulatedAuths(members: NodeId[], seed: number): Map<NodeId, PbftAuth> {
  const keys = new SimulatedKeys(members, `seed-${seed}`);
  return new Map(members.map((id) => [id, keys.auth(id)]));
}

export const text = (s: string): Uint8Array => enc.encode(s);
