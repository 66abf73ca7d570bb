/**
 * The deterministic scheduler and the trace: the heart of the simulator (docs/sim.md).
 *
 * Virtual time is an integer number of microseconds since the start of the world.
 * Events are ordered by (time, insertion sequence) in a binary min-heap, so two
 * events scheduled for the same microsecond fire in the order they were scheduled:
 * the run is a pure function of the seed and the code.
 *
 * Speed matters (the cluster simulation must run a loaded 5-node cluster far faster
 * than real time), so:
 *   - an event is one small object; a callback may take one argument (`at(t, fn, arg)`)
 *     so that hot paths pass a long-lived method plus a record instead of allocating
 *     a closure per event;
 *   - cancellation is lazy (the event is marked and skipped when it reaches the top);
 *     the heap is compacted when cancelled events outnumber live ones;
 *   - no Promises anywhere: everything runs in one synchronous loop.
 */
import { createHash } from 'node:crypto';
import type { SimObserver } from './observer.ts';

/** Formats a structured trace line (`Trace.addFields`) for `last()`; never called on the hot path. */
export type TraceFormat = (tag: string, a: number, b: number, c: number, d: number, e: number) => string;

/** A scheduled callback. `cancel()` is idempotent and harmless after the event fired. */
export class SimEvent {
  /** @internal */ fn: ((arg: any) => void) | null;
  /** @internal */ arg: unknown;
  /** @internal */ sched: Scheduler | null;
  constructor(
    /** Virtual time (µs) at which the event fires. */
    readonly t: number,
    /** Insertion sequence: breaks ties between events at the same time. */
    readonly seq: number,
    fn: (arg: any) => void,
    arg: unknown,
    sched: Scheduler,
  ) {
    this.fn = fn;
    this.arg = arg;
    this.sched = sched;
  }

  /** True once cancelled or fired. */
  get done(): boolean {
    return this.fn === null;
  }

  /** Prevents the event from firing. Twice, or after it fired, is harmless. */
  cancel(): void {
    if (this.fn === null) return;
    this.fn = null;
    this.arg = undefined;
    this.sched?.noteCancelled();
    this.sched = null;
  }
}

/** Why `runWhile` stopped. */
export type RunStop = 'predicate' | 'idle' | 'time' | 'max-events';

export interface RunResult {
  stop: RunStop;
  /** Events fired during this call. */
  events: number;
}

/**
 * The digest of a run: every trace line and every fired event, so that two runs can
 * be compared by one hex string (`quorumd sim` prints it as `trace=<sha256>`).
 *
 * Cost matters: a loaded 5-node minute records ~180k lines (~5.6 MB of text), and
 * SHA-256 over the text (plus building `<µs> <line>` strings) cost ~15 % of the
 * whole simulator. So lines are folded as they come, without concatenation or
 * UTF-8 encoding, into two 32-bit lanes, one step per symbol:
 *
 *     h ← imul(h XOR symbol, odd constant)
 *
 * Each step is a bijection on the lane for a fixed symbol and injective in the
 * symbol for a fixed lane, so two symbol streams of the same length that differ
 * anywhere end in different lane values: the first difference makes the lanes
 * differ and the bijections after it keep them apart. The symbol count is part of
 * the digest, so any two different streams give different digests (not merely
 * "probably": this is exact, though not a cryptographic commitment — nobody
 * adversarial writes the simulator's trace). The stream is an injective encoding of
 * the records: per line [time low 32 bits, time high bits] (addAt only), the UTF-16
 * code units, then SEP = 0x10000 (above every code unit). `digest()` is SHA-256 over
 * the lanes, the counts and the event fold: the same 64-hex-digit format as before,
 * but different values than before 2026-11 (determinism is what matters).
 *
 * Optionally the last `keepLast` lines are kept in a ring for debugging a failing
 * seed (formatted `<µs> <line>` lazily, in `last()`).
 */
export class Trace {
  private h1 = 0x811c9dc5;
  private h2 = 0x6a09e667;
  private symbols = 0;
  private readonly ringLines: string[] = [];
  private readonly ringTimes: number[] = [];
  /** For structured lines (`addFields`): the formatter and its numbers; null for plain lines. */
  private readonly ringFmt: Array<TraceFormat | null> = [];
  private readonly ringNums: number[] = [];
  private ringPos = 0;
  private readonly keepLast: number;
  /** Number of lines recorded so far. */
  lines = 0;
  /** A cheap 32-bit fold of every fired event's (time, seq), mixed into the digest. */
  private eventFold = 0x811c9dc5;
  private eventsFolded = 0;

  /**
   * @param opts.keepLast how many of the most recent lines to keep for `last()`
   *   (default 0: none; keeping lines costs memory and a little time).
   */
  constructor(opts: { keepLast?: number } = {}) {
    const keepLast = opts.keepLast ?? 0;
    if (!Number.isInteger(keepLast) || keepLast < 0) {
      throw new RangeError(`Trace: keepLast must be a non-negative integer, got ${String(opts.keepLast)}`);
    }
    this.keepLast = keepLast;
  }

  /** Records one line (no newline inside, by convention `<µs> <what>`). */
  add(line: string): void {
    this.record(-1, line);
  }

  /** Records `<tUs> <line>` without building that string (SimContext.log's path). */
  addAt(tUs: number, line: string): void {
    this.record(tUs, line);
  }

  /**
   * Records the line `fmt(tag, a, b, c, d, e)` stamped with `tUs`, without building it:
   * the digest takes the tag's characters and the five numbers (integers; 0 for unused
   * ones), and the text is made only if `last()` asks for it. For per-frame and
   * per-write lines, whose string building and character hashing showed in the
   * simulator's profile. `fmt` must be a pure module-level function of its arguments.
   */
  addFields(tUs: number, tag: string, fmt: TraceFormat, a: number, b: number, c: number, d: number, e: number): void {
    this.lines++;
    let h1 = this.h1;
    let h2 = this.h2;
    // x % 2^32 is a floating-point remainder (slow); for 0 ≤ x < 2^32 it is x itself and
    // the high half is 0, so that range skips it (the same halves, the same digest).
    const inRange = tUs >= 0 && tUs < 4294967296;
    const lo = inRange ? tUs : tUs % 4294967296;
    const hi = inRange ? 0 : (tUs - lo) / 4294967296;
    h1 = Math.imul(h1 ^ lo, 0x01000193);
    h2 = Math.imul(h2 ^ lo, 0x5bd1e995);
    h1 = Math.imul(h1 ^ hi, 0x01000193);
    h2 = Math.imul(h2 ^ hi, 0x5bd1e995);
    const n = tag.length;
    for (let i = 0; i < n; i++) {
      const ch = tag.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 0x01000193);
      h2 = Math.imul(h2 ^ ch, 0x5bd1e995);
    }
    // 0x10001 marks "numbers follow" (characters are ≤ 0xffff); each number as two 32-bit halves.
    h1 = Math.imul(h1 ^ 0x10001, 0x01000193);
    h2 = Math.imul(h2 ^ 0x10001, 0x5bd1e995);
    for (let k = 0; k < 5; k++) {
      const v = k === 0 ? a : k === 1 ? b : k === 2 ? c : k === 3 ? d : e;
      const small = v >= 0 && v < 4294967296;
      const vlo = small ? v : v % 4294967296;
      const vhi = small ? 0 : (v - vlo) / 4294967296;
      h1 = Math.imul(h1 ^ vlo, 0x01000193);
      h2 = Math.imul(h2 ^ vlo, 0x5bd1e995);
      h1 = Math.imul(h1 ^ vhi, 0x01000193);
      h2 = Math.imul(h2 ^ vhi, 0x5bd1e995);
    }
    h1 = Math.imul(h1 ^ 0x10000, 0x01000193);
    h2 = Math.imul(h2 ^ 0x10000, 0x5bd1e995);
    this.symbols += 2 + n + 1 + 10 + 1;
    this.h1 = h1;
    this.h2 = h2;
    if (this.keepLast > 0) {
      const pos = this.ringSlot(tag, tUs);
      this.ringFmt[pos] = fmt;
      const o = pos * 5;
      const nums = this.ringNums;
      nums[o] = a;
      nums[o + 1] = b;
      nums[o + 2] = c;
      nums[o + 3] = d;
      nums[o + 4] = e;
    }
  }

  /** Stores (line, time) in the ring; returns the slot used. */
  private ringSlot(line: string, tUs: number): number {
    const pos = this.ringPos;
    if (this.ringLines.length < this.keepLast) {
      this.ringLines.push(line);
      this.ringTimes.push(tUs);
      this.ringFmt.push(null);
    } else {
      this.ringLines[pos] = line;
      this.ringTimes[pos] = tUs;
    }
    this.ringPos = (pos + 1) % this.keepLast;
    return pos;
  }

  private record(tUs: number, line: string): void {
    this.lines++;
    let h1 = this.h1;
    let h2 = this.h2;
    if (tUs >= 0) {
      const lo = tUs % 4294967296;
      const hi = (tUs - lo) / 4294967296;
      h1 = Math.imul(h1 ^ lo, 0x01000193);
      h2 = Math.imul(h2 ^ lo, 0x5bd1e995);
      h1 = Math.imul(h1 ^ hi, 0x01000193);
      h2 = Math.imul(h2 ^ hi, 0x5bd1e995);
      this.symbols += 2;
    }
    const n = line.length;
    for (let i = 0; i < n; i++) {
      const c = line.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    h1 = Math.imul(h1 ^ 0x10000, 0x01000193);
    h2 = Math.imul(h2 ^ 0x10000, 0x5bd1e995);
    this.symbols += n + 1;
    this.h1 = h1;
    this.h2 = h2;
    if (this.keepLast > 0) this.ringFmt[this.ringSlot(line, tUs)] = null;
  }

  /** @internal Called by the scheduler for every fired event. */
  foldEvent(t: number, seq: number): void {
    let h = this.eventFold;
    h = Math.imul(h ^ (t & 0xffffffff), 0x01000193);
    h = Math.imul(h ^ (t >= 0 && t < 4294967296 ? 0 : Math.floor(t / 4294967296)), 0x01000193);
    h = Math.imul(h ^ seq, 0x01000193);
    this.eventFold = h;
    this.eventsFolded++;
  }

  /** Hex SHA-256 of everything recorded so far. The trace can keep recording afterwards. */
  digest(): string {
    return createHash('sha256')
      .update(`lines=${this.lines} symbols=${this.symbols} h=${(this.h1 >>> 0).toString(16)}.${(this.h2 >>> 0).toString(16)} `)
      .update(`events=${this.eventsFolded} fold=${(this.eventFold >>> 0).toString(16)}\n`)
      .digest('hex');
  }

  /** The last `keepLast` lines, oldest first. */
  last(): string[] {
    const fmt = (k: number) => {
      const t = this.ringTimes[k]!;
      const f = this.ringFmt[k];
      const o = k * 5;
      const nm = this.ringNums;
      const line = f ? f(this.ringLines[k]!, nm[o]!, nm[o + 1]!, nm[o + 2]!, nm[o + 3]!, nm[o + 4]!) : this.ringLines[k]!;
      return t >= 0 ? `${t} ${line}` : line;
    };
    const out: string[] = [];
    const n = this.ringLines.length;
    const from = n < this.keepLast ? 0 : this.ringPos;
    for (let i = 0; i < n; i++) out.push(fmt((from + i) % n));
    return out;
  }
}

function checkTime(what: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isInteger(v)) {
    throw new RangeError(`Scheduler.${what}: expected an integer number of microseconds, got ${String(v)}`);
  }
}

/**
 * Virtual time and the event queue.
 *
 *   const s = new Scheduler(trace);
 *   s.after(1000, () => ...);          // 1 ms from now
 *   s.at(5_000, onTick, record);       // at t = 5 ms, calls onTick(record)
 *   s.run(1_000_000);                  // runs every event up to t = 1 s, then now = 1 s
 */
export class Scheduler {
  private heap: SimEvent[] = [];
  private seq = 0;
  private nowUs = 0;
  private cancelled = 0;
  /** Total events fired since creation. */
  fired = 0;

  /** @param trace if given, every fired event's (time, seq) is folded into its digest. */
  constructor(readonly trace?: Trace) {}

  /** Current virtual time in µs. */
  get now(): number {
    return this.nowUs;
  }

  /** Live (not cancelled) events waiting. */
  get pending(): number {
    return this.heap.length - this.cancelled;
  }

  /** Time of the next live event, or undefined when idle. */
  peekTime(): number | undefined {
    this.dropCancelledTop();
    return this.heap[0]?.t;
  }

  /** Schedules `fn(arg)` at absolute virtual time `t` µs (t ≥ now, integer). */
  at<A>(t: number, fn: (arg: A) => void, arg?: A): SimEvent {
    checkTime('at', t);
    if (t < this.nowUs) throw new RangeError(`Scheduler.at: time ${t} µs is in the past (now ${this.nowUs} µs)`);
    if (typeof fn !== 'function') throw new TypeError('Scheduler.at: expected a function');
    const ev = new SimEvent(t, this.seq++, fn, arg, this);
    this.push(ev);
    return ev;
  }

  /** Schedules `fn(arg)` after `dt` µs (integer ≥ 0). */
  after<A>(dt: number, fn: (arg: A) => void, arg?: A): SimEvent {
    checkTime('after', dt);
    if (dt < 0) throw new RangeError(`Scheduler.after: delay must be ≥ 0 µs, got ${dt}`);
    return this.at(this.nowUs + dt, fn, arg);
  }

  /** Fires the next live event, advancing time to it. Returns false when idle. */
  step(): boolean {
    const ev = this.pop();
    if (ev === undefined) return false;
    this.fire(ev);
    return true;
  }

  /**
   * Fires every event with time ≤ `untilUs`, then sets now = untilUs (if later than now).
   * Returns the number of events fired. Bounded by construction as long as events do
   * not keep scheduling at the same instant forever; `maxEvents` (default 1e9) guards that.
   */
  run(untilUs: number, maxEvents = 1e9): number {
    checkTime('run', untilUs);
    let n = 0;
    const heap = this.heap;
    while (heap.length > 0) {
      const top = heap[0]!;
      if (top.fn === null) {
        this.popTop();
        this.cancelled--;
        continue;
      }
      if (top.t > untilUs) break;
      if (n >= maxEvents) throw new Error(`Scheduler.run: more than ${maxEvents} events before t=${untilUs} µs (livelock?)`);
      this.popTop();
      this.fire(top);
      n++;
    }
    if (untilUs > this.nowUs) this.nowUs = untilUs;
    return n;
  }

  /**
   * Runs while `pred()` holds (checked before each event), bounded by `untilUs` and
   * `maxEvents`. Time is left at the last fired event (not advanced to `untilUs`),
   * except that it is advanced to `untilUs` when the queue runs dry or only later
   * events remain.
   */
  runWhile(pred: () => boolean, opts: { untilUs: number; maxEvents?: number }): RunResult {
    checkTime('runWhile', opts.untilUs);
    const maxEvents = opts.maxEvents ?? 10_000_000;
    let events = 0;
    for (;;) {
      if (!pred()) return { stop: 'predicate', events };
      if (events >= maxEvents) return { stop: 'max-events', events };
      const t = this.peekTime();
      if (t === undefined) {
        if (opts.untilUs > this.nowUs) this.nowUs = opts.untilUs;
        return { stop: 'idle', events };
      }
      if (t > opts.untilUs) {
        if (opts.untilUs > this.nowUs) this.nowUs = opts.untilUs;
        return { stop: 'time', events };
      }
      this.step();
      events++;
    }
  }

  /** @internal */
  noteCancelled(): void {
    this.cancelled++;
    // Lazy deletion keeps cancel O(1); rebuild when the dead outnumber the living so
    // that a node that re-arms its election timer on every heartbeat cannot grow the heap.
    // The floor is low on purpose: a loaded 5-node cluster has ~20 live events, and with
    // a floor of 1024 its heap held ~530 dead ones (96 %), so every push and pop sifted
    // through twice the levels. With 64: 116 instead of 193 heap comparisons per client
    // operation, compaction included (4-client bench row). Compaction drops only
    // cancelled events and (time, seq) is a total order: the same events fire in the
    // same order.
    if (this.cancelled > 64 && this.cancelled * 2 > this.heap.length) this.compact();
  }

  private fire(ev: SimEvent): void {
    this.nowUs = ev.t;
    const fn = ev.fn!;
    const arg = ev.arg;
    ev.fn = null;
    ev.arg = undefined;
    ev.sched = null;
    this.fired++;
    this.trace?.foldEvent(ev.t, ev.seq);
    fn(arg);
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && this.heap[0]!.fn === null) {
      this.popTop();
      this.cancelled--;
    }
  }

  private pop(): SimEvent | undefined {
    this.dropCancelledTop();
    if (this.heap.length === 0) return undefined;
    const ev = this.heap[0]!;
    this.popTop();
    return ev;
  }

  private compact(): void {
    // In place: run() holds a reference to the array.
    const heap = this.heap;
    let w = 0;
    for (let r = 0; r < heap.length; r++) {
      const e = heap[r]!;
      if (e.fn !== null) heap[w++] = e;
    }
    heap.length = w;
    this.cancelled = 0;
    for (let i = (w - 2) >> 2; i >= 0; i--) this.siftDown(i);
  }

  // A 4-ary min-heap (children of i: 4i+1 … 4i+4): half the levels of a binary heap,
  // so fewer moves per push and pop. (time, seq) is a total order: the same pops.
  private push(ev: SimEvent): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pe = heap[p]!;
      if (pe.t < ev.t || (pe.t === ev.t && pe.seq < ev.seq)) break;
      heap[i] = pe;
      i = p;
    }
    heap[i] = ev;
  }

  private popTop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const ev = heap[i]!;
    for (;;) {
      let c = 4 * i + 1;
      if (c >= n) break;
      let ce = heap[c]!;
      const end = Math.min(c + 4, n);
      for (let r = c + 1; r < end; r++) {
        const re = heap[r]!;
        if (re.t < ce.t || (re.t === ce.t && re.seq < ce.seq)) {
          c = r;
          ce = re;
        }
      }
      if (ev.t < ce.t || (ev.t === ce.t && ev.seq < ce.seq)) break;
      heap[i] = ce;
      i = c;
    }
    heap[i] = ev;
  }
}

/** Milliseconds (may be fractional) to whole virtual microseconds, rounding up. */
export function msToUs(ms: number): number {
  return Math.ceil(ms * 1000);
}

/**
 * What every simulated component gets: the scheduler and the trace, plus `log` that
 * stamps a line with the current virtual time before adding it to the trace.
 */
export class SimContext {
  /**
   * Who watches the hardware (observer.ts): told of board states, relay contacts and
   * faults, after the fact. Null (the default) when nobody records; an observer only
   * reads, so the trace is the same with or without one.
   */
  observer: SimObserver | null = null;
  /**
   * > 0 while the simulator itself looks at the nodes (World.observe): a process's clock
   * read then does not move that clock (BoardOptions.readAdvanceMaxUs), so what the
   * checks look at, and how often, does not change the run.
   */
  observing = 0;

  constructor(
    readonly sched: Scheduler,
    readonly trace: Trace,
  ) {}

  /** Records `<now µs> <line>` in the trace. */
  log(line: string): void {
    this.trace.addAt(this.sched.now, line);
  }

  /** Records the structured line `fmt(tag, a, b, c, d, e)` at the current time without building it (`Trace.addFields`). */
  logFields(tag: string, fmt: TraceFormat, a: number, b = 0, c = 0, d = 0, e = 0): void {
    this.trace.addFields(this.sched.now, tag, fmt, a, b, c, d, e);
  }
}
