import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.ts';
import { Scheduler, Trace } from '../../firmware-sim/scheduler.ts';

describe('Scheduler', () => {
  it('fires events in (time, insertion) order and advances virtual time', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.at(30, () => seen.push(`c@${s.now}`));
    s.at(10, () => seen.push(`a@${s.now}`));
    s.at(10, () => seen.push(`b@${s.now}`));
    s.after(20, (x: string) => seen.push(`${x}@${s.now}`), 'm');
    expect(s.run(25)).toBe(3);
    expect(seen).toEqual(['a@10', 'b@10', 'm@20']);
    expect(s.now).toBe(25);
    s.run(100);
    expect(seen).toEqual(['a@10', 'b@10', 'm@20', 'c@30']);
    expect(s.now).toBe(100);
  });

  it('matches a sorted reference on a random workload with cancellations (compaction included)', () => {
    const rng = new Rng(7);
    const s = new Scheduler();
    const fired: number[] = [];
    const expected: Array<{ t: number; id: number }> = [];
    const evs = [];
    for (let id = 0; id < 5000; id++) {
      const t = rng.int(0, 1000);
      evs.push({ ev: s.at(t, (i: number) => fired.push(i), id), t, id });
    }
    for (const e of evs) {
      if (rng.chance(0.7)) {
        e.ev.cancel();
        e.ev.cancel(); // twice is harmless
      } else expected.push({ t: e.t, id: e.id });
    }
    expected.sort((a, b) => a.t - b.t || a.id - b.id);
    expect(s.pending).toBe(expected.length);
    s.run(1000);
    expect(fired).toEqual(expected.map((e) => e.id));
    expect(s.pending).toBe(0);
  });

  it('events scheduled from events, at the current instant, run after earlier-inserted ones', () => {
    const s = new Scheduler();
    const seen: string[] = [];
    s.at(5, () => {
      seen.push('first');
      s.after(0, () => seen.push('nested'));
    });
    s.at(5, () => seen.push('second'));
    s.run(10);
    expect(seen).toEqual(['first', 'second', 'nested']);
  });

  it('rejects bad times with clear errors', () => {
    const s = new Scheduler();
    s.run(100);
    expect(() => s.at(50, () => {})).toThrow(/in the past/);
    expect(() => s.after(-1, () => {})).toThrow(/≥ 0/);
    expect(() => s.at(1.5 as number, () => {})).toThrow(/integer number of microseconds/);
    expect(() => s.at(Number.NaN, () => {})).toThrow(/integer/);
  });

  it('step() and runWhile() are bounded and report why they stopped', () => {
    const s = new Scheduler();
    let n = 0;
    const tick = () => {
      n++;
      s.after(10, tick);
    };
    s.after(10, tick);
    expect(s.step()).toBe(true);
    expect(n).toBe(1);
    expect(s.runWhile(() => n < 5, { untilUs: 1_000_000 })).toEqual({ stop: 'predicate', events: 4 });
    expect(s.runWhile(() => true, { untilUs: 1_000_000, maxEvents: 3 })).toEqual({ stop: 'max-events', events: 3 });
    const r = s.runWhile(() => true, { untilUs: 200 });
    expect(r.stop).toBe('time');
    expect(s.now).toBe(200);
    const idle = new Scheduler();
    expect(idle.step()).toBe(false);
    expect(idle.runWhile(() => true, { untilUs: 50 }).stop).toBe('idle');
    expect(idle.now).toBe(50);
  });

  it('run() refuses to spin forever at one instant', () => {
    const s = new Scheduler();
    const spin = () => s.after(0, spin);
    s.after(0, spin);
    expect(() => s.run(10, 1000)).toThrow(/livelock/);
  });
});

describe('Trace', () => {
  it('same lines give the same digest, a different line a different one', () => {
    const a = new Trace();
    const b = new Trace();
    const c = new Trace();
    for (let i = 0; i < 10_000; i++) {
      a.add(`${i} x`);
      b.add(`${i} x`);
      c.add(i === 9_999 ? `${i} y` : `${i} x`);
    }
    expect(a.digest()).toMatch(/^[0-9a-f]{64}$/);
    expect(a.digest()).toBe(b.digest());
    expect(a.digest()).not.toBe(c.digest());
    expect(a.lines).toBe(10_000);
  });

  it('folds fired events: same lines but different event timing differ', () => {
    const t1 = new Trace();
    const t2 = new Trace();
    const s1 = new Scheduler(t1);
    const s2 = new Scheduler(t2);
    s1.at(10, () => {});
    s2.at(11, () => {});
    s1.run(20);
    s2.run(20);
    expect(t1.digest()).not.toBe(t2.digest());
  });

  it('keeps the last N lines in order', () => {
    const t = new Trace({ keepLast: 3 });
    for (let i = 0; i < 7; i++) t.add(`l${i}`);
    expect(t.last()).toEqual(['l4', 'l5', 'l6']);
    expect(() => new Trace({ keepLast: -1 })).toThrow(/keepLast/);
  });
});
