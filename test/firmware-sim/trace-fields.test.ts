import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.ts';
import { Flash } from '../../firmware-sim/flash.ts';
import { Scheduler, SimContext, Trace, type TraceFormat } from '../../firmware-sim/scheduler.ts';

const fmtPair: TraceFormat = (tag, a, b) => `${tag} ${a}>${b}`;

describe('Trace.addFields: structured lines (hashed as numbers, text only for last())', () => {
  it('last() shows structured and plain lines in order with their times', () => {
    const t = new Trace({ keepLast: 3 });
    t.addAt(5, 'plain one');
    t.addFields(7, 'pair', fmtPair, 1, 2, 0, 0, 0);
    t.add('no time');
    t.addFields(9, 'pair', fmtPair, 3, 4, 0, 0, 0); // overwrites the oldest slot
    expect(t.last()).toEqual(['7 pair 1>2', 'no time', '9 pair 3>4']);
    expect(t.lines).toBe(4);
  });

  it('every number and the tag reach the digest', () => {
    const digest = (tag: string, nums: number[]) => {
      const t = new Trace();
      t.addFields(1, tag, fmtPair, nums[0]!, nums[1]!, nums[2]!, nums[3]!, nums[4]!);
      return t.digest();
    };
    const base = digest('x', [1, 2, 3, 4, 5]);
    expect(digest('x', [1, 2, 3, 4, 5])).toBe(base);
    for (let k = 0; k < 5; k++) {
      const n = [1, 2, 3, 4, 5];
      n[k]! += 1;
      expect(digest('x', n)).not.toBe(base);
    }
    expect(digest('y', [1, 2, 3, 4, 5])).not.toBe(base);
    expect(digest('x', [1, 2, 3, 4, 5 + 2 ** 40])).not.toBe(base); // high halves count too
  });

  it('flash write and synced lines read as before in last()', () => {
    const sched = new Scheduler();
    const trace = new Trace({ keepLast: 10 });
    const flash = new Flash(new SimContext(sched, trace), new Rng(1), 'n1', { fsyncMinMs: 1, fsyncMaxMs: 1 });
    flash.write('f', new Uint8Array(3));
    flash.append('f', new Uint8Array(2));
    let done = false;
    flash.sync('f', () => (done = true));
    sched.run(10_000);
    expect(done).toBe(true);
    const lines = trace.last();
    expect(lines).toContain('0 flash n1 write 1 0+3');
    expect(lines).toContain('0 flash n1 append 1 3+2');
    expect(lines).toContain('1000 flash n1 synced f 5');
  });
});
