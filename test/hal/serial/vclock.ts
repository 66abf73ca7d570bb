/**
 * Virtual time for the bus tests: one event queue in "true" ms, and per-node
 * `Clock`s with their own origin and drift, as on real boards.
 */
import type { Cancel, Clock } from '../../../hal/interfaces.ts';

interface Ev {
  at: number;
  seq: number;
  fn: () => void;
  dead: boolean;
}

export class VirtualTime {
  now = 0;
  private seq = 0;
  private q: Ev[] = [];

  at(t: number, fn: () => void): Cancel {
    const ev: Ev = { at: Math.max(t, this.now), seq: this.seq++, fn, dead: false };
    // Sorted insert (queues here are small: a few timers per node).
    let i = this.q.length;
    while (i > 0 && (this.q[i - 1]!.at > ev.at || (this.q[i - 1]!.at === ev.at && this.q[i - 1]!.seq > ev.seq))) i--;
    this.q.splice(i, 0, ev);
    return () => {
      ev.dead = true;
    };
  }

  /** Runs events up to `until` (true ms); at most `maxEvents`. */
  run(until: number, maxEvents = 10_000_000): number {
    let n = 0;
    while (this.q.length > 0 && this.q[0]!.at <= until) {
      if (++n > maxEvents) throw new Error(`VirtualTime: more than ${maxEvents} events before ${until} ms`);
      const ev = this.q.shift()!;
      this.now = ev.at;
      if (!ev.dead) ev.fn();
    }
    this.now = Math.max(this.now, until);
    return n;
  }

  /** A board clock: local = origin + true × (1 + ppm·1e-6). */
  clock(originMs = 0, driftPpm = 0): Clock {
    const rate = 1 + driftPpm * 1e-6;
    return {
      monotonicMs: () => originMs + this.now * rate,
      wallMs: () => 1_700_000_000_000 + this.now,
      setTimer: (ms, fn) => this.at(this.now + Math.max(0, ms) / rate, fn),
    };
  }
}
