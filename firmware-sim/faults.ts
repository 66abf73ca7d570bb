/**
 * Fault injection from the seed: `--faults partition,crash,...` turns into a
 * reproducible schedule of faults, each with its heal/repair, recorded in the trace.
 *
 * The schedule is drawn up front from the injector's own Rng fork, so it depends only
 * on the seed and the plan options — not on what the nodes do — and can be printed
 * before the run. Faults arrive as a Poisson process (exponential gaps, mean
 * `meanGapMs`) between `startMs` and `endMs`; each lasts a uniform time in
 * [minDurationMs, maxDurationMs] and is healed before `endMs` + maxDurationMs.
 *
 * Kinds:
 *   partition  random split of the boards into two sides, broker on a random side; heal.
 *              One in three is instead one board's broker connection dropped by its
 *              client (it reconnects a second later; the broker publishes its will)
 *   crash      one board's process dies; it restarts after the fault's duration
 *   power      one board's mains off; back on after the duration
 *   loss       broker loss rate raised to 5–30 %; restored
 *   reorder    broker reorder rate raised to 10–50 % (extra delay up to 50 ms); restored
 *   clock      one board's wall clock stepped by ±1–12 h (an NTP step); stepped back to true time
 *   disk       one board's fsyncs fail (EIO) or become 20× slower; repaired
 *   stall      one board's process stops for 0.1–2 s (a GC pause, SIGSTOP, a process
 *              blocked on a slow SD card): its timers, frames and completions wait and
 *              then all arrive late (Board.stall). It ends by itself. Runs that plan
 *              stalls also let the clock move between two reads inside one step
 *              (BoardOptions.readAdvanceMaxUs, set by whoever builds the world).
 *
 * At most `maxDown` boards are crashed or powered off at the same time (default: a
 * minority, ⌊(n−1)/2⌋, so that a majority can make progress), a board has at most one
 * fault of a kind at a time, and global kinds (partition, loss, reorder) do not overlap
 * with themselves.
 */
import type { NodeId } from '../src/types.ts';
import type { Rng } from '../src/rng.ts';
import { BROKER } from './mqtt.ts';
import type { World } from './world.ts';

export type FaultKind = 'partition' | 'crash' | 'power' | 'loss' | 'reorder' | 'clock' | 'disk' | 'stall';
export const FAULT_KINDS: readonly FaultKind[] = ['partition', 'crash', 'power', 'loss', 'reorder', 'clock', 'disk', 'stall'];
/** Shortest and longest stall (ms): a GC pause to a SIGSTOP/SIGCONT or a stuck SD-card write (issue 12). */
export const STALL_MIN_MS = 100;
export const STALL_MAX_MS = 2000;
/**
 * BoardOptions.readAdvanceMaxUs for runs with stalls: up to 0.2 ms per clock read (a
 * Pi-class CPU spends about that on a step), so two reads inside one step differ.
 */
export const STALL_READ_ADVANCE_MAX_US = 200;

/** Parses `partition,crash,...` (the CLI's --faults). Throws naming the bad entry. */
export function parseFaultKinds(spec: string): FaultKind[] {
  if (typeof spec !== 'string') throw new TypeError(`--faults: expected a comma-separated list, got ${typeof spec}`);
  const out: FaultKind[] = [];
  for (const raw of spec.split(',')) {
    const k = raw.trim();
    if (k === '') continue;
    if (!(FAULT_KINDS as readonly string[]).includes(k)) {
      throw new RangeError(`--faults: unknown fault kind ${JSON.stringify(k)}; expected some of ${FAULT_KINDS.join(', ')}`);
    }
    if (!out.includes(k as FaultKind)) out.push(k as FaultKind);
  }
  return out;
}

export interface FaultPlanOptions {
  /** Which kinds to draw from (an empty list plans nothing). */
  kinds: readonly FaultKind[];
  /** Window start (ms of virtual time). Default 0. */
  startMs?: number;
  /** Window end (ms): no fault starts after it. */
  endMs: number;
  /** Mean gap between fault starts (ms). Default 5000. */
  meanGapMs?: number;
  /** Shortest fault (ms). Default 500. */
  minDurationMs?: number;
  /** Longest fault (ms). Default 5000. */
  maxDurationMs?: number;
  /** Boards faults may hit. Default: every board of the world at planning time. */
  nodes?: readonly NodeId[];
  /** Most boards down (crashed or unpowered) at once. Default ⌊(n−1)/2⌋. */
  maxDown?: number;
}

export interface PlannedFault {
  kind: FaultKind;
  /** Start and heal times (ms of virtual time). */
  atMs: number;
  healMs: number;
  /** The board hit (per-board kinds). */
  node?: NodeId;
  /** Kind-specific parameters, human-readable, also written to the trace. */
  detail: string;
  /** @internal */
  groups?: NodeId[][];
  /** @internal */
  value?: number;
  /** @internal The broker rate to restore at heal (loss, reorder). */
  restore?: number;
}

export class FaultInjector {
  /** Faults applied / healed so far. */
  applied = 0;
  healed = 0;
  /** Faults applied so far by kind (only kinds applied at least once appear). */
  readonly appliedByKind: Partial<Record<FaultKind, number>> = {};

  constructor(
    private readonly world: World,
    private readonly rng: Rng,
  ) {}

  /** Draws a schedule (does not schedule it). Pure in the seed and the options. */
  plan(opts: FaultPlanOptions): PlannedFault[] {
    const kinds = [...opts.kinds];
    for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new RangeError(`FaultPlanOptions.kinds: unknown kind ${JSON.stringify(k)}`);
    const startMs = opts.startMs ?? 0;
    const endMs = opts.endMs;
    const meanGap = opts.meanGapMs ?? 5000;
    const minD = opts.minDurationMs ?? 500;
    const maxD = opts.maxDurationMs ?? 5000;
    for (const [n, v] of [['startMs', startMs], ['endMs', endMs], ['meanGapMs', meanGap], ['minDurationMs', minD], ['maxDurationMs', maxD]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`FaultPlanOptions.${n}: expected a finite number of ms ≥ 0, got ${String(v)}`);
    }
    if (endMs < startMs) throw new RangeError(`FaultPlanOptions: endMs (${endMs}) < startMs (${startMs})`);
    if (maxD < minD) throw new RangeError(`FaultPlanOptions: maxDurationMs (${maxD}) < minDurationMs (${minD})`);
    if (meanGap <= 0) throw new RangeError('FaultPlanOptions.meanGapMs: expected > 0');
    const nodes = [...(opts.nodes ?? [...this.world.boards.keys()])].sort((a, b) => a - b);
    for (const n of nodes) this.world.board(n);
    const maxDown = opts.maxDown ?? Math.max(0, Math.floor((nodes.length - 1) / 2));
    if (!Number.isInteger(maxDown) || maxDown < 0) throw new RangeError(`FaultPlanOptions.maxDown: expected an integer ≥ 0, got ${String(opts.maxDown)}`);

    const out: PlannedFault[] = [];
    if (kinds.length === 0) return out;
    const rng = this.rng;
    const busy = new Map<string, number>(); // "kind" or "kind:node" → busy until (ms)
    const down: Array<[number, number]> = []; // intervals of boards down
    const downAt = (a: number, b: number) => down.filter(([s, e]) => s < b && a < e).length;
    let t = startMs;
    // Bounded: at most one candidate per drawn gap, and gaps are ≥ 1 ms.
    for (let guard = 0; guard < 100_000; guard++) {
      t += Math.max(1, Math.round(-Math.log(1 - rng.float()) * meanGap));
      if (t > endMs) break;
      const kind = rng.pick(kinds);
      const dur = kind === 'stall' ? rng.int(STALL_MIN_MS, STALL_MAX_MS) : rng.int(Math.round(minD), Math.round(maxD));
      const heal = t + dur;
      const perNode = kind === 'crash' || kind === 'power' || kind === 'clock' || kind === 'disk' || kind === 'stall';
      if (perNode && nodes.length === 0) continue;
      const node = perNode ? rng.pick(nodes) : undefined;
      const key = node === undefined ? kind : `${kind}:${node}`;
      if ((busy.get(key) ?? -1) > t) continue;
      if (kind === 'crash' || kind === 'power') {
        if ((busy.get(`crash:${node}`) ?? -1) > t || (busy.get(`power:${node}`) ?? -1) > t) continue;
        if (downAt(t, heal) >= maxDown) continue;
        down.push([t, heal]);
      }
      const f: PlannedFault = { kind, atMs: t, healMs: heal, detail: '' };
      if (node !== undefined) f.node = node;
      switch (kind) {
        case 'partition': {
          if (nodes.length < 2) continue;
          if (rng.chance(1 / 3)) {
            f.value = rng.pick(nodes);
            f.detail = `drop=${f.value}`;
            break;
          }
          const shuffled = [...nodes];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = rng.int(0, i);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          const cut = rng.int(1, shuffled.length - 1);
          const g1 = shuffled.slice(0, cut).sort((a, b) => a - b);
          const g2 = shuffled.slice(cut).sort((a, b) => a - b);
          if (rng.chance(0.5)) g1.push(BROKER);
          else g2.push(BROKER);
          f.groups = [g1, g2];
          f.detail = f.groups.map((g) => g.map((n) => (n === BROKER ? 'broker' : String(n))).join(',')).join('|');
          break;
        }
        case 'loss':
          f.value = 0.05 + rng.float() * 0.25;
          f.detail = `rate=${f.value.toFixed(3)}`;
          break;
        case 'reorder':
          f.value = 0.1 + rng.float() * 0.4;
          f.detail = `rate=${f.value.toFixed(3)}`;
          break;
        case 'clock': {
          const hours = rng.int(1, 12);
          f.value = (rng.chance(0.5) ? -1 : 1) * hours * 3_600_000;
          f.detail = `step=${f.value}ms`;
          break;
        }
        case 'disk':
          f.value = rng.chance(0.5) ? 0 : 20;
          f.detail = f.value === 0 ? 'eio' : 'slow×20';
          break;
        case 'crash':
        case 'power':
          f.detail = `node=${node}`;
          break;
        case 'stall':
          f.detail = `node=${node} ms=${dur}`;
          break;
      }
      busy.set(key, heal);
      out.push(f);
    }
    return out;
  }

  /** Plans and schedules the faults in the world. Returns the plan. */
  schedule(opts: FaultPlanOptions): PlannedFault[] {
    const plan = this.plan(opts);
    const sched = this.world.sched;
    for (const f of plan) {
      const at = Math.round(f.atMs * 1000);
      if (at < sched.now) throw new RangeError(`FaultInjector.schedule: fault at ${f.atMs} ms is in the past (now ${sched.now / 1000} ms)`);
      sched.at(at, () => this.apply(f));
      if (f.kind !== 'crash' && f.kind !== 'stall') sched.at(Math.round(f.healMs * 1000), () => this.heal(f));
    }
    return plan;
  }

  /** Applies one fault now (also usable directly, without a plan). */
  apply(f: PlannedFault): void {
    const w = this.world;
    this.applied++;
    this.appliedByKind[f.kind] = (this.appliedByKind[f.kind] ?? 0) + 1;
    w.ctx.log(`fault ${f.kind} ${f.detail}`);
    // Told here, before the kind's own code, so that every kind (also one added later,
    // however its case ends) reaches the observer; the same instant either way.
    const o = w.ctx.observer;
    if (o !== null) o.fault?.(f, 'apply');
    switch (f.kind) {
      case 'partition':
        if (f.groups) w.partition(f.groups);
        else w.broker.client(f.value ?? 0)?.dropSession();
        break;
      case 'crash':
        // The restart is the heal: it happens inside the board after the duration.
        if (w.board(f.node!).crashProcess(f.healMs - f.atMs)) this.healed++;
        break;
      case 'power':
        w.board(f.node!).setMains(false);
        break;
      case 'loss': {
        f.restore = this.swapCondition('lossRate', f.value ?? 0);
        break;
      }
      case 'reorder': {
        const prevExtra = w.broker.conditions.reorderExtraMs;
        w.broker.setConditions({ reorderExtraMs: Math.max(prevExtra, 50) });
        f.restore = this.swapCondition('reorderRate', f.value ?? 0);
        break;
      }
      case 'clock':
        w.board(f.node!).clockHw.stepWall(f.value ?? 0);
        break;
      case 'stall':
        // The resume is the heal: it happens inside the board after the duration.
        if (w.board(f.node!).stall(f.healMs - f.atMs)) this.healed++;
        break;
      case 'disk': {
        const fl = w.board(f.node!).flash;
        if (f.value === 0) fl.faults.diskError = true;
        else fl.faults.slowFactor = f.value ?? 1;
        break;
      }
    }
  }

  /** Heals one applied fault now (loss/reorder restore the rate saved by `apply`). */
  heal(f: PlannedFault): void {
    const w = this.world;
    this.healed++;
    w.ctx.log(`heal ${f.kind} ${f.detail}`);
    const o = w.ctx.observer;
    if (o !== null) o.fault?.(f, 'heal');
    switch (f.kind) {
      case 'partition':
        if (f.groups) w.heal();
        break;
      case 'crash':
      case 'stall':
        break;
      case 'power':
        w.board(f.node!).setMains(true);
        break;
      case 'loss':
        this.swapCondition('lossRate', f.restore ?? 0);
        break;
      case 'reorder':
        this.swapCondition('reorderRate', f.restore ?? 0);
        break;
      case 'clock':
        w.board(f.node!).clockHw.syncWall();
        break;
      case 'disk': {
        const fl = w.board(f.node!).flash;
        fl.faults.diskError = false;
        fl.faults.slowFactor = 1;
        break;
      }
    }
  }

  /** Sets a broker rate and returns the previous value. */
  private swapCondition(key: 'lossRate' | 'reorderRate', v: number): number {
    const prev = this.world.broker.conditions[key];
    this.world.broker.setConditions({ [key]: v });
    return prev;
  }
}
