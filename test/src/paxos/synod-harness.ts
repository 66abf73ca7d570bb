/**
 * A deterministic in-memory cluster for the Basic Paxos synod (src/paxos/synod.ts).
 *
 * - Virtual time: `tick()` advances every live node by one tick, then delivers the
 *   messages that are due.
 * - A seeded network: loss, duplication, delay in ticks (random delays reorder) and
 *   partitions (blocked directed pairs).
 * - Each node persists exactly the records its Ready lists, in order, before its
 *   messages enter the network. With `tornRate`, a node may crash in the middle of
 *   that: a random prefix of the Ready's records survives (a torn write), none of its
 *   messages leave, and the node restarts later from what survived.
 * - The invariants (src/paxos/invariants.ts, SynodInvariants) see every durable
 *   record, every learned value and every restart; with `check` (default on) the
 *   first violation throws, naming the seed's situation.
 */
import { Rng } from '../../../src/rng.ts';
import { SynodNode, type SynodDurable, type SynodMessage, type SynodOptions, type SynodReady } from '../../../src/paxos/synod.ts';
import { SynodInvariants } from '../../../src/paxos/invariants.ts';
import type { NodeId } from '../../../src/types.ts';

export interface NetOptions {
  drop: number;
  dup: number;
  minDelay: number;
  maxDelay: number;
}

export class SynodSimNode {
  node: SynodNode | undefined;
  durable: SynodDurable = { promised: 0, accepted: undefined };
  learned: string | undefined;
  incarnation = 0;
  /** Tick at which a crashed node comes back (auto restart), if scheduled. */
  restartAt: number | undefined;
  constructor(readonly id: NodeId) {}
  get up(): boolean {
    return this.node !== undefined;
  }
  get n(): SynodNode {
    if (!this.node) throw new Error(`node ${this.id} is down`);
    return this.node;
  }
}

export interface SynodClusterOptions {
  seed: number;
  members: NodeId[];
  net?: Partial<NetOptions>;
  options?: Partial<SynodOptions>;
  /** Options for some nodes only (e.g. a planted bug in one acceptor). */
  nodeOptions?: Record<NodeId, Partial<SynodOptions>>;
  /** Probability that a node crashes while persisting a Ready (torn write). */
  tornRate?: number;
  /**
   * Probability that a node crashes right after it handled a Ready (persisted, sent):
   * a power cut at the worst moment for an acceptor, its answer just gone out.
   */
  crashAfterReadyRate?: number;
  /** Ticks until a node crashed by a torn write or after a Ready restarts: uniform in [lo, hi]. */
  restartDelay?: [number, number];
  /** Throw at the first invariant violation (default true). */
  check?: boolean;
}

export class SynodCluster {
  readonly nodes = new Map<NodeId, SynodSimNode>();
  readonly inv: SynodInvariants;
  readonly rng: Rng;
  private readonly netRng: Rng;
  private readonly faultRng: Rng;
  net: NetOptions;
  now = 0;
  tornRate: number;
  crashAfterReadyRate: number;
  private readonly restartDelay: [number, number];
  private queue = new Map<number, SynodMessage[]>();
  private blocked = new Set<string>();
  readonly check: boolean;
  sent = 0;
  tornWrites = 0;
  crashes = 0;

  constructor(private readonly o: SynodClusterOptions) {
    this.rng = new Rng(o.seed);
    this.netRng = this.rng.fork('net');
    this.faultRng = this.rng.fork('faults');
    this.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 0, ...(o.net ?? {}) };
    this.tornRate = o.tornRate ?? 0;
    this.crashAfterReadyRate = o.crashAfterReadyRate ?? 0;
    this.restartDelay = o.restartDelay ?? [5, 30];
    this.check = o.check ?? true;
    this.inv = new SynodInvariants(o.members);
    for (const id of o.members) {
      const n = new SynodSimNode(id);
      this.nodes.set(id, n);
      this.start(n);
    }
  }

  node(id: NodeId): SynodSimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private start(n: SynodSimNode): void {
    n.incarnation++;
    n.restartAt = undefined;
    n.learned = undefined;
    n.node = new SynodNode({
      id: n.id,
      members: this.o.members,
      durable: { promised: n.durable.promised, accepted: n.durable.accepted ? { ...n.durable.accepted } : undefined },
      options: { ...(this.o.options ?? {}), ...(this.o.nodeOptions?.[n.id] ?? {}) },
      rng: this.rng.fork(`node-${n.id}-${n.incarnation}`),
    });
    this.inv.restarted(n.id, n.node.status().promised);
    this.assertOk();
  }

  crash(id: NodeId, restartIn?: number): void {
    const n = this.node(id);
    n.node = undefined;
    n.learned = undefined;
    n.restartAt = restartIn === undefined ? undefined : this.now + restartIn;
    this.crashes++;
  }

  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.up) throw new Error(`node ${id} is up`);
    this.start(n);
  }

  propose(id: NodeId, value: string): void {
    const n = this.node(id);
    if (!n.node) return;
    this.inv.proposed(value);
    const r = n.node.propose(value);
    if (!r.ok) throw new Error(r.reason);
    this.process(n);
  }

  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.blocked.add(`${x}>${y}`);
      this.blocked.add(`${y}>${x}`);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Handles every Ready of a node: persist (maybe torn), send, learn, advance. */
  process(n: SynodSimNode): void {
    for (let k = 0; k < 1000 && n.node; k++) {
      const rd = n.node.ready();
      if (!rd) return;
      if (rd.persist.length > 0 && this.tornRate > 0 && this.faultRng.chance(this.tornRate)) {
        this.tornPersist(n, rd);
        return;
      }
      for (const r of rd.persist) this.write(n, r);
      for (const m of rd.messages) this.enqueue(m);
      if (rd.chosen !== undefined) {
        n.learned = rd.chosen;
        this.inv.learned(n.id, rd.chosen);
        this.assertOk();
      }
      n.node.advance(rd);
      if (rd.messages.length > 0 && this.crashAfterReadyRate > 0 && this.faultRng.chance(this.crashAfterReadyRate)) {
        this.crash(n.id, this.faultRng.int(this.restartDelay[0], this.restartDelay[1]));
        return;
      }
    }
    if (n.node) throw new Error(`node ${n.id}: more than 1000 Readys in a row`);
  }

  /** A crash in the middle of persisting `rd`: a random prefix of its records survives, nothing is sent. */
  private tornPersist(n: SynodSimNode, rd: SynodReady): void {
    const keep = this.faultRng.int(0, rd.persist.length - 1);
    for (const r of rd.persist.slice(0, keep)) this.write(n, r);
    this.tornWrites++;
    this.crash(n.id, this.faultRng.int(this.restartDelay[0], this.restartDelay[1]));
  }

  private write(n: SynodSimNode, r: SynodReady['persist'][number]): void {
    if (r.kind === 'promise') {
      n.durable.promised = r.promised;
      this.inv.promiseDurable(n.id, r.promised);
    } else {
      n.durable.accepted = { ballot: r.ballot, value: r.value };
      this.inv.acceptDurable(n.id, r.ballot, r.value);
    }
    this.assertOk();
  }

  private assertOk(): void {
    if (this.check && !this.inv.ok) throw new Error(`invariant violated at t=${this.now}: ${this.inv.violations[0]}`);
  }

  /**
   * Messages for which this returns true are held back (in `held`) instead of entering
   * the network; `release` delivers chosen held messages. For directed schedules.
   */
  intercept: ((m: SynodMessage) => boolean) | undefined;
  held: SynodMessage[] = [];

  /** Delivers (at once, in order) the held messages that match `pred`; keeps the rest. */
  release(pred: (m: SynodMessage) => boolean): number {
    const go = this.held.filter(pred);
    this.held = this.held.filter((m) => !pred(m));
    for (const m of go) this.deliver(m);
    return go.length;
  }

  private enqueue(m: SynodMessage): void {
    this.sent++;
    if (this.intercept?.(m)) {
      this.held.push(m);
      return;
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

  private deliver(m: SynodMessage): void {
    const n = this.nodes.get(m.to);
    if (!n || !n.node || this.blocked.has(`${m.from}>${m.to}`)) return;
    n.node.step(m);
    this.process(n);
  }

  tick(): void {
    this.now++;
    for (const n of this.nodes.values()) {
      if (!n.node && n.restartAt !== undefined && this.now >= n.restartAt) this.start(n);
      if (!n.node) continue;
      n.node.tick();
      this.process(n);
    }
    for (let guard = 0; guard < 100000; guard++) {
      let at: number | undefined;
      for (const k of this.queue.keys()) if (k <= this.now && (at === undefined || k < at)) at = k;
      if (at === undefined) return;
      const b = this.queue.get(at)!;
      const m = b.shift();
      if (b.length === 0) this.queue.delete(at);
      if (m) this.deliver(m);
    }
    throw new Error('synod harness: more than 100000 deliveries in one tick');
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

  /** Every live node has learned a value. */
  allLearned(): boolean {
    return [...this.nodes.values()].every((n) => !n.up || n.learned !== undefined);
  }
}
