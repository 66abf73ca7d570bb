import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FencedResource, StaleTokenError, type TokenStore } from '../../../src/fence/fenced-resource.ts';
import { bullyToken, checkToken, parseToken, raftGrantToken, raftLeaderToken, TokenMonotonicity } from '../../../src/fence/token.ts';

describe('tokens', () => {
  it('a Raft leader has a token only once its no-op is committed; the token is the no-op index', () => {
    expect(raftLeaderToken({ term: 3, noopIndex: 17, commitIndex: 16 })).toBe(0);
    expect(raftLeaderToken({ term: 3, noopIndex: 17, commitIndex: 17 })).toBe(17);
    expect(raftLeaderToken({ term: 3, noopIndex: 17, commitIndex: 40 })).toBe(17);
    expect(raftGrantToken(41)).toBe(41);
    expect(bullyToken(5, 3)).toBe(5 * 256 + 3);
    expect(bullyToken(5, 3)).toBeLessThan(bullyToken(6, 1));
    expect(bullyToken(5, 2)).toBeLessThan(bullyToken(5, 3));
  });

  it('leader tokens grow across leaders whenever each leader holds every committed entry (Leader Completeness)', () => {
    // Model: a log of committed indices; each new leader's log holds at least the
    // committed prefix and maybe some uncommitted tail; its no-op goes after its log.
    fc.assert(
      fc.property(fc.array(fc.record({ extra: fc.nat(5), commits: fc.boolean(), more: fc.nat(10) }), { minLength: 1, maxLength: 30 }), (leaders) => {
        let committed = 0;
        const mon = new TokenMonotonicity();
        leaders.forEach((l, i) => {
          const noop = committed + l.extra + 1; // log length ≥ committed
          const commitIndex = l.commits ? noop + l.more : committed;
          const t = raftLeaderToken({ term: i + 1, noopIndex: noop, commitIndex: Math.max(commitIndex, 0) });
          if (t !== 0) expect(mon.observe(t)).toBe(true);
          if (l.commits) committed = commitIndex;
        });
        expect(mon.violations).toEqual([]);
      }),
      { numRuns: 300, seed: 6 },
    );
  });

  it('the monotonicity checker reports a token that went down', () => {
    const m = new TokenMonotonicity();
    m.observe(5);
    m.observe(5);
    expect(m.observe(4, 'n2 term 3')).toBe(false);
    expect(m.violations).toEqual(['token 4 issued after 5 (n2 term 3)']);
  });

  it('parses and checks tokens with clear errors', () => {
    expect(parseToken('123')).toBe(123);
    expect(() => parseToken('0123')).toThrow(/token: expected a decimal integer/);
    expect(() => parseToken('-1', 'query token')).toThrow(/query token/);
    expect(() => parseToken('1e3')).toThrow(/decimal/);
    expect(() => parseToken('99999999999999999')).toThrow(/decimal|fencing token/);
    expect(() => parseToken(12 as never)).toThrow(/expected a decimal string, got 12/);
    expect(() => checkToken(0)).toThrow(/expected a fencing token/);
    expect(() => checkToken(1.5)).toThrow(/got 1.5/);
    expect(() => raftLeaderToken({ term: 1, noopIndex: 0, commitIndex: 0 })).toThrow(/noopIndex/);
  });
});

describe('FencedResource', () => {
  it('accepts equal and newer tokens, rejects older ones', () => {
    const r = new FencedResource({ name: 'pump' });
    expect(r.admit(5).ok).toBe(true);
    expect(r.admit(5).ok).toBe(true);
    expect(r.admit(9).ok).toBe(true);
    const stale = r.admit(5);
    expect(stale.ok).toBe(false);
    expect(!stale.ok && stale.reason).toMatch(/older than the newest seen \(9\)/);
    expect(r.newest).toBe(9);
    expect(r.rejected).toBe(1);
    expect(r.check(3).ok).toBe(false);
    expect(r.rejected).toBe(1); // check records nothing
  });

  it('run() executes only fresh commands', () => {
    const r = new FencedResource({ name: 'valve' });
    const done: number[] = [];
    r.run(10, () => done.push(10));
    expect(() => r.run(7, () => done.push(7))).toThrow(StaleTokenError);
    expect(() => r.run(7, () => 0)).toThrow(/valve: fencing token 7 is stale \(newest seen: 10\)/);
    expect(done).toEqual([10]);
  });

  it('persists before accepting and survives a restart', () => {
    let saved: number | undefined;
    const store: TokenStore = { load: () => saved, save: (t) => void (saved = t) };
    const a = new FencedResource({ name: 'nas', store });
    a.admit(12);
    expect(saved).toBe(12);
    const b = new FencedResource({ name: 'nas', store });
    expect(b.newest).toBe(12);
    expect(b.admit(11).ok).toBe(false);
  });

  it('a failing store rejects the command and keeps the newest token', () => {
    const store: TokenStore = {
      load: () => undefined,
      save: () => {
        throw new Error('disk full');
      },
    };
    const r = new FencedResource({ name: 'db', store });
    const c = r.admit(3);
    expect(c.ok).toBe(false);
    expect(!c.ok && c.reason).toMatch(/could not persist token 3: disk full/);
    expect(r.newest).toBe(0);
    expect(() => r.run(3, () => 1)).toThrow(/db: command with token 3 rejected: could not persist/);
  });

  it('any interleaving of two writers: no command with a token below an earlier accepted one is executed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 60 }), (tokens) => {
        const r = new FencedResource({ name: 'x' });
        let max = 0;
        for (const t of tokens) {
          const ok = r.admit(t).ok;
          expect(ok).toBe(t >= max);
          if (ok) max = t;
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('bad input is named', () => {
    expect(() => new FencedResource({ name: '' })).toThrow(/name: expected a non-empty string/);
    expect(() => new FencedResource({ name: 'x', store: { load: () => -4, save: () => {} } })).toThrow(/token loaded from the store/);
    expect(() => new FencedResource({ name: 'x' }).admit('7' as never)).toThrow(/FencedResource x token: expected a fencing token/);
  });
});
