import { describe, expect, it } from 'vitest';
import { checkLinearizable, HistoryError, parseHistory, type HistoryOp, type Json } from '../../../src/lin/index.ts';
import { Rng } from '../../../src/rng.ts';
import { bruteForceLinearizable, genLinearizable, mutate } from './brute.ts';

const put = (client: number, key: string, value: Json, call: number, ret: number | null): HistoryOp => ({ client, op: 'put', key, value, call, ret });
const get = (client: number, key: string, output: Json, call: number, ret: number | null): HistoryOp => ({ client, op: 'get', key, output, call, ret });
const cas = (client: number, key: string, from: Json, to: Json, output: 'ok' | 'fail' | null, call: number, ret: number | null): HistoryOp => ({
  client, op: 'cas', key, from, to, output, call, ret,
});

describe('linearizability: named cases', () => {
  it('rejects a stale read and names the operations involved', () => {
    const h = [put(1, 'x', 'a', 0, 10), put(1, 'x', 'b', 20, 30), get(2, 'x', 'a', 40, 50), get(3, 'y', null, 0, 100)];
    const r = checkLinearizable(h);
    expect(r.ok).toBe(false);
    if (r.ok !== false) return;
    expect(r.key).toBe('x');
    // The core: put(b) then get → a. Whether or not put(a) happened, it was before put(b).
    expect(r.coreIndexes).toEqual([1, 2]);
    expect(r.explanation).toMatch(/key "x": these 2 operations cannot be ordered .*even if 1 other write of the key may not have happened/);
    expect(r.explanation).toContain('op #1: client 1 put("b") [20, 30]');
    expect(r.explanation).toContain('op #2: client 2 get() → "a" [40, 50]');
    expect(r.explanation).toMatch(/writes of the values read above.*:\n    op #0: client 1 put\("a"\) \[0, 10\]/);
    console.log(r.explanation);
  });

  it('rejects a lost acknowledged write', () => {
    // put(b) was acknowledged at 30, yet a later read sees the value before it.
    const h = [put(1, 'k', 'a', 0, 5), put(2, 'k', 'b', 10, 30), get(3, 'k', 'a', 40, 45), get(3, 'k', 'a', 50, 55)];
    const r = checkLinearizable(h);
    expect(r.ok).toBe(false);
    if (r.ok === false) {
      expect(r.coreIndexes).toContain(1);
      expect(r.coreIndexes.length).toBeLessThanOrEqual(3);
    }
    // The same read before put(b) returned is fine.
    expect(checkLinearizable([put(1, 'k', 'a', 0, 5), put(2, 'k', 'b', 10, 30), get(3, 'k', 'a', 20, 25)]).ok).toBe(true);
  });

  it('rejects a double-granted cas (two cas from the same value both ok)', () => {
    const h = [put(1, 'lock', 'free', 0, 1), cas(2, 'lock', 'free', 'A', 'ok', 5, 20), cas(3, 'lock', 'free', 'B', 'ok', 6, 21)];
    const r = checkLinearizable(h);
    expect(r.ok).toBe(false);
    // The core is the two cas: even if the put of "free" may or may not have happened,
    // only one of them can have found "free".
    if (r.ok === false) {
      expect(r.coreIndexes).toEqual([1, 2]);
      expect(r.explanation).toMatch(/even if 1 other write of the key may not have happened/);
    }
    // One ok and one fail is linearizable.
    expect(checkLinearizable([h[0]!, h[1]!, cas(3, 'lock', 'free', 'B', 'fail', 6, 21)]).ok).toBe(true);
  });

  it('accepts concurrent reads that see the old or the new value', () => {
    const h = [
      put(1, 'x', 'old', 0, 5),
      put(1, 'x', 'new', 10, 50),
      get(2, 'x', 'old', 12, 20),
      get(3, 'x', 'new', 15, 25),
      get(4, 'x', 'new', 30, 40),
      get(5, 'x', 'new', 60, 70),
    ];
    expect(checkLinearizable(h)).toMatchObject({ ok: true, keys: 1 });
    // But once a read saw "new", a later read (both after it) cannot see "old" again.
    expect(checkLinearizable([...h, get(6, 'x', 'old', 41, 45)]).ok).toBe(false);
  });

  it('a pending put may or may not have happened, only after its call', () => {
    const p = put(1, 'x', 'p', 10, null);
    expect(checkLinearizable([p, get(2, 'x', null, 20, 30)]).ok).toBe(true); // did not happen (yet)
    expect(checkLinearizable([p, get(2, 'x', 'p', 20, 30), get(2, 'x', null, 40, 50)]).ok).toBe(false); // cannot un-happen
    expect(checkLinearizable([p, get(2, 'x', 'p', 1000, 1001)]).ok).toBe(true); // took effect late
    expect(checkLinearizable([get(2, 'x', 'p', 0, 5), p]).ok).toBe(false); // read before the call
    // A pending cas takes effect only if the register held `from`.
    const pc = cas(1, 'y', null, 'c', null, 0, null);
    expect(checkLinearizable([pc, get(2, 'y', 'c', 5, 6)]).ok).toBe(true);
    expect(checkLinearizable([put(3, 'y', 'z', 0, 1), pc, get(2, 'y', 'c', 5, 6)]).ok).toBe(false);
    // A pending get carries no information.
    expect(checkLinearizable([get(2, 'y', 'whatever', 0, null)]).ok).toBe(true);
  });

  it('compares JSON values structurally and treats equal times as concurrent', () => {
    expect(checkLinearizable([put(1, 'o', { a: 1, b: [2] }, 0, 1), get(2, 'o', { b: [2], a: 1 }, 2, 3)]).ok).toBe(true);
    expect(checkLinearizable([put(1, 'o', { a: 1 }, 0, 1), get(2, 'o', { a: '1' }, 2, 3)]).ok).toBe(false);
    // ret of the put == call of the get: concurrent, so the get may precede it.
    expect(checkLinearizable([put(1, 'k', 'v', 0, 10), get(2, 'k', null, 10, 12)]).ok).toBe(true);
    expect(checkLinearizable([put(1, 'k', 'v', 0, 10), get(2, 'k', null, 11, 12)]).ok).toBe(false);
  });

  it('gives up with "unknown" when the search budget is exhausted, never runs forever', () => {
    // Many fully concurrent writes of distinct values and a read no order can satisfy.
    const h: HistoryOp[] = [];
    for (let i = 0; i < 40; i++) h.push(put(i, 'k', i, 0, 100));
    h.push(get(99, 'k', 'nobody wrote this', 0, 100));
    const r = checkLinearizable(h, { maxStates: 1000 });
    expect(r).toEqual({ ok: 'unknown', reason: 'search budget exceeded', key: 'k' });
    // A definite violation on another key wins over an unknown one.
    const r2 = checkLinearizable([...h, get(1, 'j', 'x', 0, 1)], { maxStates: 1000 });
    expect(r2.ok === false && r2.key).toBe('j');
  });

  it('names the bad operation and field for malformed input given in code', () => {
    expect(() => checkLinearizable([put(1, 'k', 'v', 5, 4)])).toThrow(HistoryError);
    expect(() => checkLinearizable([put(1, 'k', 'v', 5, 4)])).toThrow(/operation #0: field "ret": expected a time ≥ call \(5\)/);
    expect(() => checkLinearizable([{ client: 1, op: 'cas', key: 'k', from: 1, to: 2, output: 'maybe', call: 0, ret: 1 } as never])).toThrow(/field "output": expected "ok" or "fail"/);
    expect(() => checkLinearizable([], { maxStates: 0 })).toThrow(/maxStates/);
  });
});

describe('linearizability: history parsing', () => {
  it('parses the JSON-lines contract', () => {
    const text = [
      '{"client":1,"op":"put","key":"k","value":"a","call":0,"ret":10}',
      '',
      '{"client":2,"op":"get","key":"k","output":"a","call":11,"ret":12}',
      '{"client":3,"op":"cas","key":"k","from":"a","to":"b","output":"ok","call":13,"ret":null}',
      '{"client":3,"op":"get","key":"k","output":null,"call":14,"ret":null,"extra":"ignored"}',
    ].join('\n');
    const r = parseHistory(text);
    if (!('ops' in r)) throw new Error(r.error);
    expect(r.ops).toHaveLength(4);
    expect(r.ops[2]).toMatchObject({ op: 'cas', from: 'a', to: 'b', output: null, ret: null, line: 4 });
    expect(checkLinearizable(r.ops).ok).toBe(true);
  });

  it('names the line and the field of bad input', () => {
    const cases: Array<[string, number, string, RegExp]> = [
      ['{"client":1,"op":"put","key":"k","value":1,"call":0,"ret":1}\n{nope', 2, 'json', /line 2: not valid JSON/],
      ['[1,2]', 1, 'op', /expected a JSON object/],
      ['{"client":"a","op":"put","key":"k","value":1,"call":0,"ret":1}', 1, 'client', /"client": expected a number, got "a"/],
      ['{"client":1,"op":"inc","key":"k","call":0,"ret":1}', 1, 'op', /"op": expected "put", "get" or "cas"/],
      ['{"client":1,"op":"put","key":7,"value":1,"call":0,"ret":1}', 1, 'key', /"key": expected a string/],
      ['{"client":1,"op":"put","key":"k","call":0,"ret":1}', 1, 'value', /"value": expected a JSON value, got nothing/],
      ['{"client":1,"op":"get","key":"k","call":0,"ret":1}', 1, 'output', /"output"/],
      ['{"client":1,"op":"get","key":"k","output":1,"call":"0","ret":1}', 1, 'call', /"call": expected a finite number/],
      ['{"client":1,"op":"get","key":"k","output":1,"call":0}', 1, 'ret', /"ret": expected a finite number \(return time\) or null, got nothing/],
      ['{"client":1,"op":"get","key":"k","output":1,"call":5,"ret":2}', 1, 'ret', /expected a time ≥ call/],
      ['{"client":1,"op":"cas","key":"k","to":1,"output":"ok","call":0,"ret":2}', 1, 'from', /"from"/],
      ['{"client":1,"op":"cas","key":"k","from":1,"output":"ok","call":0,"ret":2}', 1, 'to', /"to"/],
      ['{"client":1,"op":"cas","key":"k","from":1,"to":2,"output":true,"call":0,"ret":2}', 1, 'output', /"ok" or "fail"/],
    ];
    for (const [text, line, field, msg] of cases) {
      const r = parseHistory(text);
      expect('error' in r, text).toBe(true);
      if ('error' in r) {
        expect([r.line, r.field], text).toEqual([line, field]);
        expect(r.error).toMatch(msg);
        expect(r.error).toMatch(new RegExp(`^line ${line}: `));
      }
    }
  });
});

describe('linearizability: agrees with a brute-force oracle', () => {
  it('on thousands of small random histories, linearizable and mutated', () => {
    const rng = new Rng('lin-crosscheck');
    const values: Json[] = ['a', 'b', 'c'];
    let yes = 0;
    let no = 0;
    for (let n = 0; n < 4000; n++) {
      const h0 = genLinearizable(rng, {
        clients: rng.int(1, 4),
        ops: rng.int(1, 8),
        keys: rng.chance(0.6) ? ['x'] : ['x', 'y'],
        values,
        pending: rng.chance(0.5) ? 0.25 : 0,
        maxDelay: rng.int(0, 12),
        maxGap: rng.int(0, 8),
      });
      expect(bruteForceLinearizable(h0)).toBe(true);
      const h = rng.chance(0.8) ? mutate(rng, h0, values) : h0;
      const want = bruteForceLinearizable(h);
      const got = checkLinearizable(h);
      if (got.ok !== want) throw new Error(`verdicts differ (checker ${String(got.ok)}, brute ${want}) on\n${h.map((o) => JSON.stringify(o)).join('\n')}`);
      if (want) yes++;
      else {
        no++;
        // The explanation is sound: its core, with every other write of that key
        // allowed not to have happened (and other reads dropped), is still not
        // linearizable.
        if (got.ok !== false) throw new Error('unreachable');
        const relaxed: HistoryOp[] = [];
        const optional = new Set<number>();
        h.forEach((o, i) => {
          if (o.key !== got.key) return;
          if (got.coreIndexes.includes(i)) relaxed.push(o);
          else if (o.op === 'put' || (o.op === 'cas' && o.output !== 'fail')) {
            if (o.ret !== null) optional.add(relaxed.length);
            relaxed.push(o);
          }
        });
        expect(bruteForceLinearizable(relaxed, optional)).toBe(false);
        expect(got.core.length).toBeGreaterThan(0);
      }
    }
    console.log(`lin: cross-check agreed on ${yes} linearizable and ${no} non-linearizable histories`);
    expect(yes).toBeGreaterThan(1200);
    expect(no).toBeGreaterThan(400);
  });
});

describe('linearizability: scale', () => {
  it('checks a 10k-operation multi-key history in well under the bound', () => {
    const rng = new Rng('lin-10k');
    const h = genLinearizable(rng, {
      clients: 12,
      ops: 10_000,
      keys: Array.from({ length: 20 }, (_, i) => `key${i}`),
      values: Array.from({ length: 8 }, (_, i) => `v${i}`),
      pending: 0.02,
      maxDelay: 30,
      maxGap: 20,
    });
    const t0 = performance.now();
    const r = checkLinearizable(h);
    const ms = performance.now() - t0;
    console.log(`lin: 10k ops, 20 keys, 12 clients: ${ms.toFixed(0)} ms, ${r.ok === true ? r.states : '-'} states`);
    expect(r.ok).toBe(true);
    expect(ms).toBeLessThan(20_000);
    // All on one key, with 5% of operations never returning.
    const one = genLinearizable(new Rng('lin-10k-one'), {
      clients: 12, ops: 10_000, keys: ['k'], values: Array.from({ length: 8 }, (_, i) => `v${i}`), pending: 0.05, maxDelay: 30, maxGap: 20,
    });
    const t2 = performance.now();
    const r1 = checkLinearizable(one);
    const ms1 = performance.now() - t2;
    console.log(`lin: 10k ops, 1 key, 12 clients, 5% pending: ${ms1.toFixed(0)} ms, ${r1.ok === true ? r1.states : '-'} states`);
    expect(r1.ok).toBe(true);
    expect(ms1).toBeLessThan(20_000);
    // One stale read in the middle of it is found and pinned down.
    const bad = h.map((o) => ({ ...o }));
    const victim = bad.findIndex((o, i) => i > 5000 && o.op === 'get' && o.ret !== null && o.output !== null);
    const v = bad[victim] as HistoryOp & { op: 'get' };
    v.output = 'never-written';
    const t1 = performance.now();
    const r2 = checkLinearizable(bad);
    console.log(`lin: 10k ops with one bad read: ${(performance.now() - t1).toFixed(0)} ms`);
    expect(r2.ok).toBe(false);
    if (r2.ok === false) {
      expect(r2.key).toBe(v.key);
      expect(r2.coreIndexes).toEqual([victim]);
    }
  });
});
