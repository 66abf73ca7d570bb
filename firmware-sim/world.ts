/**
 * The world: one scheduler, one seed, one trace, a broker, boards, wires and relay
 * wiring. The cluster simulation (`quorumd sim`) builds on it:
 *
 *   const w = new World({ seed: 42 });
 *   for (const id of [1, 2, 3]) w.addBoard(id);
 *   w.wireRelay(1, 2); w.powerSense(1, 2);      // board 1 can fence board 2
 *   w.serialWire(1, 3, { baud: 115200 });
 *   w.onBoot((hal, board) => startNode(hal));   // at every boot of every board
 *   w.faults.schedule({ kinds: ['partition', 'crash'], endMs: 60_000 });
 *   w.run(60_000);
 *   console.log(w.traceHash());
 *
 * Randomness: the world's `Rng` is forked once per component at construction
 * ('broker', 'faults', 'board:<id>', 'wire:<a>-<b>'), so a random draw added in one
 * model does not shift the others. Construction order is part of the seed: build the
 * same world in the same order to replay it.
 */
import { MAX_NODE_ID, type NodeId } from '../src/types.ts';
import { Rng } from '../src/rng.ts';
import { Board, type BoardOptions, type BootFn } from './board.ts';
import { FaultInjector } from './faults.ts';
import { BROKER, Broker, type MqttOptions } from './mqtt.ts';
import { PowerSenseHw, RelayHw, type PowerSenseOptions, type RelayOptions } from './power.ts';
import { Scheduler, SimContext, Trace } from './scheduler.ts';
import { SerialWire, type SerialOptions } from './serial.ts';

export interface WorldOptions {
  /** The seed of everything random in the world. */
  seed: number | string;
  /** Keep this many recent trace lines for debugging a failing seed (`trace.last()`). Default 0. */
  traceKeepLast?: number;
  /** True wall time at virtual time 0 (ms since the Unix epoch). Default 1.7e12 (Nov 2023): fixed, so runs replay. */
  epochMs?: number;
  /** Board drift is drawn uniformly from ±maxDriftPpm unless a board sets its own. Default 200 (pessimistic for a crystal). */
  maxDriftPpm?: number;
  /** Defaults for every board (each `addBoard` may override). */
  board?: BoardOptions;
  /** Broker behaviour. */
  mqtt?: MqttOptions;
}

export interface AddBoardOptions extends BoardOptions {
  /** Attach the board to the MQTT broker. Default true. */
  mqtt?: boolean;
  /** Start with the mains on (the board boots after its boot delay). Default true. */
  powered?: boolean;
}

export class World {
  readonly trace: Trace;
  readonly sched: Scheduler;
  readonly ctx: SimContext;
  readonly rng: Rng;
  readonly broker: Broker;
  readonly faults: FaultInjector;
  readonly boards = new Map<NodeId, Board>();
  readonly wires: SerialWire[] = [];
  readonly relays: RelayHw[] = [];
  private readonly epochMs: number;
  private readonly maxDriftPpm: number;
  private readonly boardDefaults: BoardOptions;
  private bootFn: BootFn | null = null;
  /** Wires cut by `partition()`, repaired by `heal()`. */
  private partitionCuts: SerialWire[] = [];

  constructor(opts: WorldOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('World: expected options { seed }');
    if (typeof opts.seed !== 'number' && typeof opts.seed !== 'string') throw new TypeError(`World: seed must be a number or a string, got ${typeof opts.seed}`);
    if (typeof opts.seed === 'number' && !Number.isFinite(opts.seed)) throw new RangeError(`World: seed must be finite, got ${opts.seed}`);
    this.epochMs = opts.epochMs ?? 1_700_000_000_000;
    if (!Number.isFinite(this.epochMs)) throw new RangeError(`WorldOptions.epochMs: expected a finite number, got ${String(opts.epochMs)}`);
    this.maxDriftPpm = opts.maxDriftPpm ?? 200;
    if (!(this.maxDriftPpm >= 0 && this.maxDriftPpm <= 100_000)) throw new RangeError(`WorldOptions.maxDriftPpm: expected 0..100000, got ${String(opts.maxDriftPpm)}`);
    this.boardDefaults = opts.board ?? {};
    this.trace = new Trace({ keepLast: opts.traceKeepLast ?? 0 });
    this.sched = new Scheduler(this.trace);
    this.ctx = new SimContext(this.sched, this.trace);
    this.rng = new Rng(opts.seed);
    this.ctx.log(`world seed=${String(opts.seed)}`);
    this.broker = new Broker(this.ctx, this.rng.fork('broker'), opts.mqtt);
    this.faults = new FaultInjector(this, this.rng.fork('faults'));
  }

  /** Virtual time (µs). */
  get nowUs(): number {
    return this.sched.now;
  }
  /** Virtual time (ms, fractional). */
  get nowMs(): number {
    return this.sched.now / 1000;
  }
  /** The true wall time (ms since epoch), which board clocks approximate. */
  trueWallMs(): number {
    return this.epochMs + this.sched.now / 1000;
  }

  /** Adds a board. It boots `bootDelayMs` after now unless `powered: false`. */
  addBoard(id: NodeId, opts: AddBoardOptions = {}): Board {
    if (!Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) throw new RangeError(`World.addBoard: id must be an integer 1..${MAX_NODE_ID}, got ${String(id)}`);
    if (this.boards.has(id)) throw new Error(`World.addBoard: board ${id} already exists`);
    const rng = this.rng.fork(`board:${id}`);
    const merged: BoardOptions = { ...this.boardDefaults, ...opts };
    const driftDraw = (rng.float() * 2 - 1) * this.maxDriftPpm;
    merged.clock = { driftPpm: driftDraw, ...this.boardDefaults.clock, ...opts.clock };
    const board = new Board(this.ctx, rng, id, () => this.trueWallMs(), merged);
    this.boards.set(id, board);
    if (opts.mqtt ?? true) board.addPort(this.broker.attach(id));
    if (this.bootFn !== null) board.setBoot(this.bootFn);
    this.ctx.log(`world board ${id} drift=${board.clockHw.driftPpm.toFixed(3)}`);
    if (opts.powered ?? true) board.updateRail();
    else board.setMains(false);
    return board;
  }

  board(id: NodeId): Board {
    const b = this.boards.get(id);
    if (b === undefined) throw new RangeError(`World: no board ${String(id)} (boards: ${[...this.boards.keys()].join(', ') || 'none'})`);
    return b;
  }

  /** Installs the software on every board, present and future. */
  onBoot(fn: BootFn): this {
    if (typeof fn !== 'function') throw new TypeError('World.onBoot: expected a function');
    this.bootFn = fn;
    for (const b of this.boards.values()) b.setBoot(fn);
    return this;
  }

  /**
   * Puts a relay driven by a GPIO of `from` into the supply of `to` (STONITH).
   * Like every piece of wiring (relays, senses, wires), it appears in the HAL of
   * processes booted after this call: wire the world before running it.
   */
  wireRelay(from: NodeId, to: NodeId, opts?: RelayOptions): RelayHw {
    const a = this.board(from);
    const b = this.board(to);
    if (from === to) throw new RangeError(`World.wireRelay: a board cannot switch its own power (${from})`);
    const r = new RelayHw(this.ctx, a, b, opts);
    a.addRelayOutput(r);
    b.addFeed(r);
    this.relays.push(r);
    b.updateRail();
    return r;
  }

  /** An input on `from` that reads whether `to`'s rail is live. */
  powerSense(from: NodeId, to: NodeId, opts?: PowerSenseOptions): PowerSenseHw {
    const a = this.board(from);
    const s = new PowerSenseHw(this.ctx, a, this.board(to), opts);
    a.addSense(s);
    return s;
  }

  /** A serial cable between boards `a` and `b` (each board's HAL gets a 'serial' Link with `peer`). */
  serialWire(a: NodeId, b: NodeId, opts?: SerialOptions): SerialWire {
    const ba = this.board(a);
    const bb = this.board(b);
    const w = new SerialWire(this.ctx, this.rng.fork(`wire:${a}-${b}`), a, b, opts);
    ba.addPort(w.a);
    bb.addPort(w.b);
    this.wires.push(w);
    return w;
  }

  /**
   * A network partition: the broker drops frames between groups (`BROKER` may be put
   * in a group; boards outside it then lose their connection), and serial wires whose
   * ends are in different groups are cut. Replaces an earlier partition.
   */
  partition(groups: NodeId[][]): void {
    this.healWires();
    this.broker.partition(groups);
    const g = new Map<NodeId, number>();
    groups.forEach((grp, i) => grp.forEach((n) => g.set(n, i)));
    for (const w of this.wires) {
      const ga = g.get(w.a.node);
      const gb = g.get(w.b.node);
      if (ga !== undefined && gb !== undefined && ga !== gb && !w.cutNow) {
        w.cut();
        this.partitionCuts.push(w);
      }
    }
  }

  /** Ends the partition (wires cut by it are repaired; others stay as they are). */
  heal(): void {
    this.broker.heal();
    this.healWires();
  }

  private healWires(): void {
    for (const w of this.partitionCuts) w.repair();
    this.partitionCuts = [];
  }

  /**
   * Runs `fn` as the simulator looking at the nodes, not as their processes working: a
   * process clock read inside (a runtime's `active` judging its lease now) does not move
   * that clock ahead (BoardOptions.readAdvanceMaxUs), so checks and measurements may
   * look as often as they like without changing the run. Returns what `fn` returns.
   */
  observe<T>(fn: () => T): T {
    this.ctx.observing++;
    try {
      return fn();
    } finally {
      this.ctx.observing--;
    }
  }

  /** Runs `ms` of virtual time from now. Returns the events fired. */
  run(ms: number): number {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new RangeError(`World.run: expected a finite number of ms ≥ 0, got ${String(ms)}`);
    return this.sched.run(this.sched.now + Math.round(ms * 1000));
  }

  /** Runs until `pred()` holds or `maxMs` of virtual time pass. Returns whether `pred()` held. */
  runUntil(pred: () => boolean, maxMs: number): boolean {
    if (typeof maxMs !== 'number' || !Number.isFinite(maxMs) || maxMs < 0) throw new RangeError(`World.runUntil: expected a finite maxMs ≥ 0, got ${String(maxMs)}`);
    const r = this.sched.runWhile(() => !pred(), { untilUs: this.sched.now + Math.round(maxMs * 1000) });
    return r.stop === 'predicate';
  }

  /** SHA-256 (hex) of the trace so far. */
  traceHash(): string {
    return this.trace.digest();
  }
}

export { BROKER };
