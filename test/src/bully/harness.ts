/**
 * A small deterministic in-memory cluster for the bully engine tests.
 *
 * - Time is virtual: `tick()` advances every live node by one engine tick, then
 *   delivers the messages due at that tick (each delivery may produce more messages,
 *   delivered no earlier than the next tick when minDelay >= 1).
 * - The network is a bucketed queue with seeded loss and delay (uniform in
 *   [minDelay, maxDelay] ticks; different delays reorder) and symmetric partitions
 *   (nodes carry a group label; a message is delivered only inside its group, checked
 *   at delivery time).
 * - Each node "persists" what its Ready asks for (the epoch) before its messages enter
 *   the network. A crash throws the engine away; a restart rebuilds it from the
 *   persisted epoch only.
 * - Checks on every Ready (they throw, naming the node, tick and values):
 *     the persisted epoch never decreases, across restarts too;
 *     no message carries an epoch above its sender's durable epoch (persist-before-send);
 *     a new coordinatorship's epoch exceeds every epoch its node ever received or held;
 *     no two coordinatorships share a fencing token.
 */
import { Rng } from '../../../src/rng.ts';
import { BullyNode, fencingToken, type BullyMember, type BullyOptions, type BullyReady, type BullyRole } from '../../../src/bully/index.ts';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import { encodeMessage } from '../../../src/wire/codec.ts';
import { TAG_BYTES } from '../../../src/wire/tag.ts';
import { NO_NODE, type NodeId, type Term } from '../../../src/types.ts';

export interface NetOptions {
  /** Probability that a message is lost. */
  drop: number;
  /** Delay in ticks, uniform in [minDelay, maxDelay]; minDelay >= 1. */
  minDelay: number;
  maxDelay: number;
}

export const RELIABLE: NetOptions = { drop: 0, minDelay: 1, maxDelay: 1 };

export interface Coordinatorship {
  tick: number;
  id: NodeId;
  epoch: Term;
}

export interface SentStats {
  messages: number;
  bytes: number;
  byType: Record<'election' | 'answer' | 'coordinator', number>;
}

interface SimNode {
  id: NodeId;
  engine: BullyNode | undefined;
  disk: { epoch: Term; held: Term };
  incarnation: number;
  /** Highest epoch this board ever received in a message or held (all incarnations). */
  maxKnown: Term;
  /** Highest fencing token this board ever held as coordinator (all incarnations). */
  maxToken: number;
  role: BullyRole;
}

export interface ClusterOptions {
  seed: number;
  members: BullyMember[];
  options?: Partial<BullyOptions>;
  net?: NetOptions;
}

const TYPE_KEY = {
  [MsgType.BullyElection]: 'election',
  [MsgType.BullyAnswer]: 'answer',
  [MsgType.BullyCoordinator]: 'coordinator',
} as Record<number, 'election' | 'answer' | 'coordinator'>;

/** Frame size of a message as the codec writes it, with worst-case envelope values and the tag. */
export function wireBytes(m: Message): number {
  return encodeMessage(m, { cluster: 0xffff, bootId: 0xffff, seq: 0xffff }).length + TAG_BYTES;
}

export class Cluster {
  readonly ids: NodeId[];
  readonly priority = new Map<NodeId, number>();
  now = 0;
  net: NetOptions;
  readonly coordinatorships: Coordinatorship[] = [];
  readonly sent: SentStats = { messages: 0, bytes: 0, byType: { election: 0, answer: 0, coordinator: 0 } };
  /** Set to false to skip byte counting (faster sweeps). */
  countBytes = true;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly rng: Rng;
  private readonly netRng: Rng;
  private readonly queue = new Map<number, Message[]>();
  private group = new Map<NodeId, number>();
  private readonly tokens = new Set<number>();

  constructor(readonly opts: ClusterOptions) {
    this.rng = new Rng(opts.seed);
    this.netRng = this.rng.fork('net');
    this.net = opts.net ?? RELIABLE;
    if (this.net.minDelay < 1) throw new RangeError('harness: minDelay must be >= 1 tick');
    // Resolve ids/priorities through a throwaway engine so the harness agrees with the engine.
    const first = opts.members[0]!;
    const probe = new BullyNode({ id: typeof first === 'number' ? first : first.id, members: opts.members, rng: new Rng(0), options: opts.options });
    this.ids = probe.status().members.map((m) => m.id);
    for (const m of probe.status().members) this.priority.set(m.id, m.priority);
    for (const id of this.ids) {
      this.nodes.set(id, { id, engine: undefined, disk: { epoch: 0, held: 0 }, incarnation: 0, maxKnown: 0, maxToken: 0, role: 'follower' });
      this.group.set(id, 0);
      this.start(id);
    }
  }

  // ---------------------------------------------------------------------------
  // Access

  node(id: NodeId): BullyNode {
    const n = this.nodes.get(id);
    if (!n?.engine) throw new Error(`harness: node ${id} is down`);
    return n.engine;
  }

  isUp(id: NodeId): boolean {
    return this.nodes.get(id)?.engine !== undefined;
  }

  up(): NodeId[] {
    return this.ids.filter((id) => this.isUp(id));
  }

  disk(id: NodeId): { epoch: Term; held: Term } {
    return { ...this.nodes.get(id)!.disk };
  }

  coordinators(): NodeId[] {
    return this.up().filter((id) => this.node(id).isLeader);
  }

  /** Live nodes grouped by partition label (the connected components). */
  components(): NodeId[][] {
    const by = new Map<number, NodeId[]>();
    for (const id of this.up()) {
      const g = this.group.get(id)!;
      if (!by.has(g)) by.set(g, []);
      by.get(g)!.push(id);
    }
    return [...by.values()];
  }

  /** The highest-priority live board of a component that can coordinate, or undefined. */
  highest(component: NodeId[]): NodeId | undefined {
    let best: NodeId | undefined;
    for (const id of component) {
      const p = this.priority.get(id)!;
      if (p > 0 && (best === undefined || p > this.priority.get(best)!)) best = id;
    }
    return best;
  }

  /**
   * Undefined when every component has exactly one coordinator, everyone in it follows
   * that coordinator at its epoch, and (with `highestWins`) it is the component's
   * highest-priority live board; otherwise a description of what is wrong.
   */
  settledProblem(highestWins = true): string | undefined {
    for (const comp of this.components()) {
      const coords = comp.filter((id) => this.node(id).isLeader);
      const want = this.highest(comp);
      if (want === undefined) {
        if (coords.length > 0) return `component [${comp}] has coordinators [${coords}] but no eligible board`;
        continue;
      }
      if (coords.length !== 1) return `component [${comp}] has coordinators [${coords}]`;
      const c = coords[0]!;
      if (highestWins && c !== want) return `component [${comp}] is led by ${c}, not by its highest board ${want}`;
      const epoch = this.node(c).status().epoch;
      const token = fencingToken(epoch, c);
      for (const id of comp) {
        const held = this.nodes.get(id)!.maxToken;
        if (held > token) return `coordinator ${c} of [${comp}] has token ${token} below the ${held} that node ${id} once held`;
      }
      for (const id of comp) {
        if (id === c) continue;
        const s = this.node(id).status();
        if (s.role !== 'follower' || s.leader !== c || s.epoch !== epoch) {
          return `node ${id} in [${comp}] is ${s.role} of ${s.leader} at epoch ${s.epoch}, expected follower of ${c} at ${epoch}`;
        }
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------
  // Faults

  crash(id: NodeId): void {
    const n = this.nodes.get(id)!;
    n.engine = undefined;
    n.role = 'follower';
  }

  /** Boots the board from its persisted epoch only. */
  restart(id: NodeId): void {
    if (this.isUp(id)) throw new Error(`harness: node ${id} is already up`);
    this.start(id);
  }

  /** Symmetric partition: nodes in different lists cannot talk; unlisted nodes form one more group. */
  partition(...groups: NodeId[][]): void {
    const g = new Map<NodeId, number>();
    for (const id of this.ids) g.set(id, groups.length);
    groups.forEach((list, k) => list.forEach((id) => g.set(id, k)));
    this.group = g;
  }

  heal(): void {
    for (const id of this.ids) this.group.set(id, 0);
  }

  // ---------------------------------------------------------------------------
  // Time

  tick(): void {
    this.now++;
    for (const id of this.ids) {
      const e = this.nodes.get(id)!.engine;
      if (!e) continue;
      e.tick();
      this.handleReady(id);
    }
    const due = this.queue.get(this.now);
    if (!due) return;
    this.queue.delete(this.now);
    for (const m of due) {
      const n = this.nodes.get(m.to);
      if (!n?.engine) continue;
      if (this.group.get(m.from) !== this.group.get(m.to)) continue;
      n.maxKnown = Math.max(n.maxKnown, m.term);
      n.engine.step(m);
      this.handleReady(m.to);
    }
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

  /** Ticks until `pred` holds (checked after every tick); throws after `max` ticks. */
  runUntil(pred: () => boolean, max: number, what = 'condition'): number {
    for (let i = 0; i <= max; i++) {
      if (pred()) return i;
      this.tick();
    }
    throw new Error(`harness: ${what} not reached within ${max} ticks (tick ${this.now}); ${this.settledProblem() ?? 'settled'}`);
  }

  /** Ticks until settled (see settledProblem); throws with the problem after `max`. */
  settle(max: number, highestWins = true): number {
    for (let i = 0; i <= max; i++) {
      if (this.settledProblem(highestWins) === undefined) return i;
      this.tick();
    }
    throw new Error(`harness: not settled within ${max} ticks (tick ${this.now}): ${this.settledProblem(highestWins)}`);
  }

  resetStats(): void {
    this.sent.messages = 0;
    this.sent.bytes = 0;
    this.sent.byType = { election: 0, answer: 0, coordinator: 0 };
  }

  // ---------------------------------------------------------------------------

  private start(id: NodeId): void {
    const n = this.nodes.get(id)!;
    n.incarnation++;
    n.engine = new BullyNode({
      id, members: this.opts.members, persisted: { ...n.disk }, options: this.opts.options,
      rng: this.rng.fork(`node ${id}#${n.incarnation}`),
    });
    n.role = 'follower';
    this.handleReady(id);
  }

  private handleReady(id: NodeId): void {
    const n = this.nodes.get(id)!;
    const e = n.engine!;
    // Bounded: one Ready holds everything produced so far; a second is empty.
    for (let k = 0; k < 2; k++) {
      const rd: BullyReady | undefined = e.ready();
      if (!rd) return;
      this.process(n, rd);
      e.advance(rd);
    }
    if (e.hasReady()) throw new Error(`harness: node ${id} still has a Ready after advancing`);
  }

  private process(n: SimNode, rd: BullyReady): void {
    const where = `node ${n.id} at tick ${this.now}`;
    if (rd.hardState) {
      if (rd.hardState.epoch < n.disk.epoch) throw new Error(`${where}: persisted epoch would go back from ${n.disk.epoch} to ${rd.hardState.epoch}`);
      if (rd.hardState.held < n.disk.held) throw new Error(`${where}: persisted held epoch would go back from ${n.disk.held} to ${rd.hardState.held}`);
      n.disk = { ...rd.hardState };
    }
    if (rd.softState) {
      const s = rd.softState;
      if (s.role === 'coordinator') {
        if (s.leader !== n.id) throw new Error(`${where}: coordinator whose leader is ${s.leader}`);
        const token = fencingToken(s.term, n.id);
        if (this.tokens.has(token)) throw new Error(`${where}: fencing token ${token} (epoch ${s.term}) used twice`);
        if (s.term <= n.maxKnown) throw new Error(`${where}: new coordinatorship at epoch ${s.term} does not exceed the highest epoch this board knew (${n.maxKnown})`);
        this.tokens.add(token);
        n.maxToken = Math.max(n.maxToken, token);
        this.coordinatorships.push({ tick: this.now, id: n.id, epoch: s.term });
      }
      n.role = s.role;
      if (s.role !== 'follower' && s.role !== 'candidate' && s.role !== 'coordinator') throw new Error(`${where}: bad role ${String(s.role)}`);
    }
    n.maxKnown = Math.max(n.maxKnown, n.disk.epoch);
    for (const m of rd.messages) {
      if (m.term > n.disk.epoch) throw new Error(`${where}: ${MsgType[m.type]} carries epoch ${m.term} above the durable ${n.disk.epoch}`);
      if (m.from !== n.id) throw new Error(`${where}: message from ${m.from}`);
      this.sent.messages++;
      const key = TYPE_KEY[m.type];
      if (!key) throw new Error(`${where}: non-bully message ${MsgType[m.type]}`);
      this.sent.byType[key]++;
      if (this.countBytes) this.sent.bytes += wireBytes(m);
      if (this.netRng.chance(this.net.drop)) continue;
      const at = this.now + this.netRng.int(this.net.minDelay, this.net.maxDelay);
      let q = this.queue.get(at);
      if (!q) this.queue.set(at, (q = []));
      q.push(m);
    }
  }
}

export { NO_NODE };
