/**
 * The fencing driver of a node runtime: where a relay is switched and a power-sense
 * input read for STONITH. It owns the board's Fencer (src/fence/fencer.ts: levels,
 * verify, retries, delays, the command/result protocol) and does the HAL side of it
 * for the runtimes (node.ts for Raft; engine-node.ts through leader-fencing.ts, and
 * bully-fencing.ts for bully):
 *   - checks at setup that every device the fencer config names exists on this board;
 *   - closes relays an earlier incarnation left off (below);
 *   - executes the Fencer's commands on the HAL relays and power-sense inputs and
 *     feeds the answers back;
 *   - wakes the runtime at the Fencer's next deadline between ticks;
 *   - cancels fences still in their delay; waits (bounded) for an operator's fence.
 * *When* to fence (the activation gate, who is a suspect) stays in each runtime: the
 * rules differ (Raft's lease and replicated history, bully's known coordinators).
 */
import { Fencer, type FenceCommand, type FenceRecord, type FencerConfig } from '../../src/fence/index.ts';
import type { NodeId, Term } from '../../src/types.ts';
import type { Rng } from '../../src/rng.ts';
import type { Cancel, Clock, PowerSense, Relay } from '../../hal/interfaces.ts';
import type { Logger } from './logger.ts';

/** The devices and the fencer config a runtime's fencing options carry. */
export interface FencingDevices {
  relays?: Relay[];
  powerSense?: PowerSense[];
  fencer?: Omit<FencerConfig, 'self'>;
}

export interface FencingDriverOptions {
  /** Error message prefix: 'EngineRuntime'. */
  who: string;
  id: NodeId;
  /** Must list at least one target (the caller decides what no targets means). */
  devices: FencingDevices;
  /** The runtime's rng; the Fencer gets its own fork ('fencer'), taken in the constructor. */
  rng: Rng;
  clock: Clock;
  log: Logger;
  /** The runtime is running: device answers and wake-ups arriving later are ignored. */
  running: () => boolean;
  /** The runtime is stopped (relays left off are then not powered back on). */
  stopped: () => boolean;
  /** A device answered and the Fencer took the answer at `now`: re-evaluate activity. */
  resultFed: (now: number) => void;
  /** The Fencer's next deadline came (a timer fired): re-evaluate activity. */
  wake: () => void;
  /** A record of a fence changed (from `step`). */
  record: (r: FenceRecord, now: number) => void;
  /** Poll period of an operator's fence (the runtime's tick). */
  pollMs: number;
  /** An exception in a device answer or a wake-up (an entry point of its own): the runtime's fatal path. */
  fatal: (where: string, e: unknown) => void;
}

/** '' when `node` is a node id 1..254, else the error for the caller. */
export function badNodeArg(node: unknown): string {
  if (typeof node !== 'number' || !Number.isInteger(node) || node < 1 || node > 254) return `node: expected a node id 1..254, got ${String(node)}`;
  return '';
}

/** A finished fence that shows the target stopped. */
export function fenceSucceeded(r: FenceRecord): boolean {
  return r.outcome === 'off' || r.outcome === 'already-off' || r.outcome === 'confirmed';
}

export class FencingDriver {
  readonly fencer: Fencer;
  private readonly o: FencingDriverOptions;
  private timer: Cancel | undefined;
  /**
   * The latest time handed to the Fencer. Every call into it goes through `at()`, which
   * never passes an earlier time: a runtime step may read the clock more than once (a
   * listener, a log line, a cancel), and on a real board the clock moves between two
   * reads, so a `now` taken at the start of the step can be older than one the Fencer
   * already saw. The Fencer refuses time that goes backwards (a RangeError that once
   * escaped an MQTT handler and killed the new leader: issue 12), so the driver clamps
   * instead of trusting every caller to read the clock exactly once.
   */
  private latest = 0;

  constructor(o: FencingDriverOptions) {
    this.o = o;
    const f = o.devices;
    const targets = f.fencer?.targets ?? [];
    const names = new Set([...(f.relays ?? []).map((r) => r.name), ...(f.powerSense ?? []).map((p) => p.name)]);
    for (const t of targets) {
      for (const lv of t.levels ?? []) {
        for (const d of lv ?? []) {
          const devs = d.kind === 'watchdog-wait' ? [d.sense] : [d.relay, d.sense];
          for (const n of devs) if (n !== undefined && !names.has(n)) throw new RangeError(`${o.who}: fencer target ${t.target} names device "${n}", which this board does not have (relays and power-sense inputs: ${[...names].join(', ') || 'none'})`);
        }
      }
    }
    this.fencer = new Fencer({ ...f.fencer!, self: o.id }, o.rng.fork('fencer'));
    // GPIO lines keep their level across a process crash: a fence of an earlier
    // incarnation may have left a 'reboot' target switched off with nobody left to
    // power it on. A fresh process has no fence running, so it powers those targets on
    // — but not at once: the relay may be off because a fence is in progress right now
    // (ours before a quick restart, or another board's on a shared relay board), and a
    // fence promises the target stays off for powerOnAfterMs. So the power-on waits
    // that long from our start (never shorter than any fence's own off time, which
    // began before we started), reads the relay again, and leaves it alone if it is on
    // by then or our own Fencer has started fencing that target meanwhile.
    for (const t of targets) {
      if ((t.action ?? 'reboot') !== 'reboot') continue;
      const waitMs = t.powerOnAfterMs ?? 10_000;
      for (const lv of t.levels) {
        for (const d of lv) {
          if (d.kind === 'watchdog-wait') continue;
          const relay = f.relays!.find((r) => r.name === d.relay)!;
          relay.read((err, on) => {
            if (err || on !== false || o.stopped()) return;
            o.log('warn', `relay ${relay.name} was left off (by an earlier incarnation, or a fence in progress): powering n${t.target} back on in ${waitMs} ms unless a fence takes it over`, { node: o.id, target: t.target });
            this.leftOff.add(relay.name);
            const cancel = o.clock.setTimer(waitMs, () => {
              this.startupTimers.delete(cancel);
              try {
                this.powerOnLeftOff(relay, t.target);
              } catch (e) {
                o.fatal('power-on of a relay left off', e);
              }
            });
            this.startupTimers.add(cancel);
          });
        }
      }
    }
  }

  /** Relays read off at start and not (yet) powered on by powerOnLeftOff (for tests and status). */
  readonly leftOff = new Set<string>();
  private readonly startupTimers = new Set<Cancel>();

  /** The end of the start-up wait for a relay read off: on, unless a fence holds it or it is on already. */
  private powerOnLeftOff(relay: Relay, target: NodeId): void {
    const o = this.o;
    if (o.stopped() || !o.running()) return;
    if (this.fencer.busy(target)) {
      o.log('info', `relay ${relay.name} left off: our fence of n${target} now runs it (it powers the target on at its end)`, { node: o.id, target });
      this.leftOff.delete(relay.name);
      return;
    }
    relay.read((err, on) => {
      if (o.stopped() || !o.running()) return;
      if (err) {
        o.log('error', `relay ${relay.name} left off: reading it again failed (${err.message}); not switching it`, { node: o.id, target });
        return;
      }
      this.leftOff.delete(relay.name);
      if (on !== false || this.fencer.busy(target)) return;
      o.log('warn', `relay ${relay.name} left off: powering n${target} back on`, { node: o.id, target });
      relay.set(true, (e) => {
        if (e) o.log('error', `relay ${relay.name} left off: power-on failed: ${e.message}`, { node: o.id, target });
      });
    });
  }

  /** The node stops: no wake-up and no start-up power-on left. */
  stop(): void {
    this.cancelTimer();
    for (const c of this.startupTimers) c();
    this.startupTimers.clear();
  }

  /**
   * Ticks the Fencer at `now`, executes its commands, hands on its changed records,
   * and arms a wake-up for its next deadline (delays, settle, timeouts) between ticks.
   */
  step(stepNow: number): void {
    const f = this.fencer;
    const now = this.at(stepNow);
    f.tick(now);
    if (f.hasOutput) {
      // Runs after every engine step: take() (three objects) only when there is something.
      const out = f.take();
      for (const c of out.commands) this.execute(c);
      for (const r of out.records) this.o.record(r, now);
    }
    const next = f.nextDeadline();
    this.cancelTimer();
    if (next !== null && this.o.running()) {
      this.timer = this.o.clock.setTimer(Math.max(0, next - now), () => {
        this.timer = undefined;
        try {
          this.o.wake();
        } catch (e) {
          this.o.fatal('fencer wake-up', e);
        }
      });
    }
  }

  /** `now`, or the latest time the Fencer already saw if that is later (see `latest`). */
  at(now: number): number {
    if (now > this.latest) this.latest = now;
    return this.latest;
  }

  /** Starts a fence of `target` (Fencer.fence at a clamped time); returns the record id. */
  fence(target: NodeId, now: number, req: Parameters<Fencer['fence']>[2]): number {
    return this.fencer.fence(target, this.at(now), req);
  }

  /** An operator confirmed `target` down (Fencer.confirm at a clamped time), taken at leadership `term`. */
  confirm(target: NodeId, now: number, o: { by?: string; term?: Term } = {}): number {
    return this.fencer.confirm(target, this.at(now), o.by, o.term);
  }

  /** Cancels the pending wake-up (node stopped). */
  cancelTimer(): void {
    this.timer?.();
    this.timer = undefined;
  }

  /** Cancels the fences still in their delay: one that switched a relay runs to its end (and powers the target back on). */
  cancelDelayed(callerNow: number, why: string): void {
    const f = this.fencer;
    const now = this.at(callerNow);
    for (const rec of f.history()) {
      if (rec.outcome === 'pending' && rec.startedAtMs === null && f.busy(rec.target)) f.cancel(rec.target, now, why);
    }
  }

  /**
   * Answers `cb` when the fence `id` (started by an operator) finished: ok for off or
   * already-off, with the record. Bounded: the Fencer times out every command.
   */
  waitFor(id: number, cb: (r: { ok: boolean; record?: FenceRecord; error?: string }) => void): void {
    const poll = (n: number) => {
      if (!this.o.running()) return cb({ ok: false, error: 'node stopped' });
      const rec = this.fencer.history().find((r) => r.id === id);
      if (rec && rec.outcome !== 'pending') return cb({ ok: rec.outcome === 'off' || rec.outcome === 'already-off', record: rec, ...(rec.outcome === 'failed' ? { error: rec.attempts.at(-1)?.error ?? 'failed' } : {}) });
      if (n > 100_000) return cb({ ok: false, error: 'fence did not finish' });
      this.o.clock.setTimer(this.o.pollMs, () => poll(n + 1));
    };
    poll(0);
  }

  /**
   * How this board would end a 'reboot' fence of `target`: the power-on delay and the
   * relays of its levels. Undefined when `target` is not a 'reboot' target here (or has
   * no relay: a watchdog-wait level switches nothing).
   */
  rebootPlan(target: NodeId): { powerOnAfterMs: number; relays: Relay[] } | undefined {
    const t = this.o.devices.fencer?.targets?.find((x) => x.target === target);
    if (!t || (t.action ?? 'reboot') !== 'reboot') return undefined;
    const names = new Set<string>();
    for (const lv of t.levels) for (const d of lv) if (d.kind !== 'watchdog-wait') names.add(d.relay);
    const relays = (this.o.devices.relays ?? []).filter((r) => names.has(r.name));
    if (relays.length === 0) return undefined;
    return { powerOnAfterMs: t.powerOnAfterMs ?? 10_000, relays };
  }

  /**
   * Switches every relay of `target`'s levels on (the end of a 'reboot' fence that
   * another node — or this one before a restart — started and could not finish).
   * `done` once, with the first error or null; nothing after the runtime stopped.
   */
  powerOn(target: NodeId, done: (err: string | null) => void): void {
    const plan = this.rebootPlan(target);
    if (!plan) return done(`n${target} is not a reboot target with a relay on this board`);
    let left = plan.relays.length;
    let first: string | null = null;
    for (const relay of plan.relays) {
      this.o.log('warn', `fence hand-over: relay ${relay.name} on`, { node: this.o.id, target });
      relay.set(true, (err) => {
        if (err && first === null) first = `${relay.name}: ${err.message}`;
        if (--left === 0 && this.o.running()) {
          try {
            done(first);
          } catch (e) {
            this.o.fatal('fence hand-over power-on', e);
          }
        }
      });
    }
  }

  /** Logs a finished fence (warn when the target is shown stopped, error otherwise). */
  logFinished(r: FenceRecord, ok: boolean): void {
    this.o.log(ok ? 'warn' : 'error', `fence of n${r.target}: ${r.outcome}`, { node: this.o.id, target: r.target, level: r.level ?? -1, attempts: r.attempts.length, error: r.attempts.at(-1)?.error ?? '' });
  }

  /** Logs the power-on that ends a 'reboot' fence (or its error). */
  logPowerOn(r: FenceRecord): void {
    this.o.log('info', `fence of n${r.target}: ${r.poweredOnAtMs !== null ? 'powered back on' : `power-on: ${r.powerOnError}`}`, { node: this.o.id, target: r.target });
  }

  /** Executes one Fencer command on the HAL: relay switch or read, power-sense read. */
  private execute(c: FenceCommand): void {
    const o = this.o;
    const f = o.devices;
    const back = (r: { ok: true; value?: boolean } | { ok: false; error: string }) => {
      if (!o.running()) return;
      try {
        const now = this.at(o.clock.monotonicMs());
        this.fencer.result(c.id, now, r);
        o.resultFed(now);
      } catch (e) {
        o.fatal(`fence device answer (${c.op} ${c.device})`, e);
      }
    };
    try {
      if (c.op === 'sense-read') {
        const ps = (f.powerSense ?? []).find((p) => p.name === c.device);
        if (!ps) return back({ ok: false, error: `no power-sense input named ${c.device}` });
        ps.read((err, v) => back(err ? { ok: false, error: err.message } : { ok: true, value: v === true }));
        return;
      }
      const relay = (f.relays ?? []).find((r) => r.name === c.device);
      if (!relay) return back({ ok: false, error: `no relay named ${c.device}` });
      if (c.op === 'relay-read') relay.read((err, v) => back(err ? { ok: false, error: err.message } : { ok: true, value: v === true }));
      else {
        o.log('warn', `fence: relay ${c.device} ${c.on ? 'on' : 'off'}`, { node: o.id, target: c.target });
        relay.set(c.on, (err) => back(err ? { ok: false, error: err.message } : { ok: true }));
      }
    } catch (e) {
      back({ ok: false, error: (e as Error).message });
    }
  }
}
