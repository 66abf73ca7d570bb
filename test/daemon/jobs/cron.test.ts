/**
 * The jobs' own cron evaluator (daemon/jobs/cron.ts) against node-cron 4's matcher,
 * whose syntax and behaviour it keeps: random expressions over every token node-cron
 * documents (lists, ranges, wrapping ranges, steps, names, L, L-n, nW, LW, dL, d#n),
 * random base times, UTC and zones with DST; then the cases that matter on their own
 * (DST gaps and repeats, day-of-month AND day-of-week, no Intl for UTC).
 */
import fc from 'fast-check';
import { createTask } from 'node-cron';
import { describe, expect, it } from 'vitest';
import { CronSchedule } from '../../../daemon/jobs/cron.ts';

/**
 * node-cron's next match after `base` (its matcher, read off a task that is never
 * started); undefined where it finds none within its hundred years (it throws then).
 */
function nodeCronNext(expr: string, tz: string, base: number): number | undefined {
  const task = createTask(expr, () => {}, { timezone: tz }) as unknown as { timeMatcher: { getNextMatch(d: Date): Date }; destroy(): unknown };
  try {
    return task.timeMatcher.getNextMatch(new Date(base)).getTime();
  } catch (err) {
    if (/Could not find next matching date/.test((err as Error).message)) return undefined;
    throw err;
  } finally {
    void task.destroy();
  }
}

const pick = <T,>(xs: readonly T[]) => fc.constantFrom(...xs);
const num = (lo: number, hi: number) => fc.integer({ min: lo, max: hi });
/** One token of a numeric field: n, a-b (also wrapping), a-b/s, * / s. */
const token = (lo: number, hi: number) =>
  fc.oneof(
    num(lo, hi).map(String),
    fc.tuple(num(lo, hi), num(lo, hi)).map(([a, b]) => `${a}-${b}`),
    fc.tuple(num(lo, hi), num(lo, hi), num(1, 7)).map(([a, b, s]) => `${a}-${b}/${s}`),
    num(1, 20).map((s) => `*/${s}`),
  );
const field = (lo: number, hi: number) => fc.oneof({ weight: 2, arbitrary: fc.constant('*') }, { weight: 3, arbitrary: fc.array(token(lo, hi), { minLength: 1, maxLength: 3 }).map((t) => t.join(',')) });
const dom = fc.oneof({ weight: 4, arbitrary: field(1, 28) }, { weight: 1, arbitrary: pick(['L', 'LW', '15W', '1W', '31W', 'L-3', '30', '31', '1,L']) });
const month = fc.oneof({ weight: 4, arbitrary: field(1, 12) }, { weight: 1, arbitrary: pick(['jan-mar', 'dec', 'feb,aug']) });
const dow = fc.oneof({ weight: 4, arbitrary: field(0, 7) }, { weight: 1, arbitrary: pick(['mon-fri', 'sun', '5L', '1#2', '0#5', '7', 'sat,sun']) });
const expression = fc.tuple(fc.boolean(), field(0, 59), field(0, 59), field(0, 23), dom, month, dow).map(([sec, s, m, h, d, mo, w]) => (sec ? [s, m, h, d, mo, w] : [m, h, d, mo, w]).join(' '));
/** 2020-01-01 .. 2031-01-01. */
const base = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2031, 0, 1) });

describe('CronSchedule', () => {
  it('finds the same next slot as node-cron, in UTC', () => {
    fc.assert(
      fc.property(expression, base, (expr, b) => {
        let mine: number | undefined;
        try {
          mine = new CronSchedule(expr, 'UTC').next(b);
        } catch {
          return; // not a valid expression for node-cron either (parse threw)
        }
        expect(mine, `${expr} after ${new Date(b).toISOString()}`).toBe(nodeCronNext(expr, 'UTC', b));
      }),
      { numRuns: 400, seed: 14 },
    );
  });

  it('finds the same next slot as node-cron in zones with DST or odd offsets', () => {
    // Away from the DST changes themselves, where node-cron and this evaluator agree as
    // well but choose differently in an hour that repeats (the next test pins ours).
    const zones = ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham'];
    fc.assert(
      fc.property(expression, base, pick(zones), (expr, b, tz) => {
        let s: CronSchedule;
        try {
          s = new CronSchedule(expr, tz);
        } catch {
          return;
        }
        const mine = s.next(b);
        const theirs = nodeCronNext(expr, tz, b);
        // Both well away from a change of the zone's offset: the same slot.
        const off = (t: number) => new Date(t).toLocaleString('en-US', { timeZone: tz, timeZoneName: 'longOffset' }).split(' ').pop();
        if (mine !== undefined && off(mine - 86_400_000) === off(mine + 86_400_000) && off(b) === off(mine)) expect(mine, `${expr} in ${tz} after ${new Date(b).toISOString()}`).toBe(theirs);
      }),
      { numRuns: 150, seed: 15 },
    );
  });

  it('DST: a skipped wall time does not fire, a repeated one fires once (its first instant)', () => {
    const berlin = new CronSchedule('30 2 * * *', 'Europe/Berlin');
    // 2026-03-29: clocks go 02:00 → 03:00 CEST; 02:30 does not exist that day.
    expect(new Date(berlin.next(Date.UTC(2026, 2, 28, 12))!).toISOString()).toBe('2026-03-30T00:30:00.000Z');
    // 2026-10-25: clocks go 03:00 CEST → 02:00 CET; 02:30 comes twice, runs at the first.
    const first = berlin.next(Date.UTC(2026, 9, 24, 12))!;
    expect(new Date(first).toISOString()).toBe('2026-10-25T00:30:00.000Z');
    expect(new Date(berlin.next(first)!).toISOString()).toBe('2026-10-26T01:30:00.000Z');
    // Every minute across the repeated hour: each wall minute once.
    const m = new CronSchedule('* * * * *', 'Europe/Berlin');
    let t = Date.UTC(2026, 9, 24, 23, 59);
    const seen = new Set<string>();
    for (let i = 0; i < 180; i++) {
      t = m.next(t)!;
      const wall = new Date(t).toLocaleString('en-GB', { timeZone: 'Europe/Berlin' });
      expect(seen.has(wall), wall).toBe(false);
      seen.add(wall);
    }
  });

  it('day of month AND day of week (node-cron, not Vixie cron): "0 0 13 * fri" is Friday the 13th only', () => {
    const s = new CronSchedule('0 0 13 * fri');
    expect(new Date(s.next(Date.UTC(2026, 0, 1))!).toISOString()).toBe('2026-02-13T00:00:00.000Z');
    expect(new Date(s.next(Date.UTC(2026, 1, 14))!).toISOString()).toBe('2026-03-13T00:00:00.000Z');
    expect(new Date(s.next(Date.UTC(2026, 2, 14))!).toISOString()).toBe('2026-11-13T00:00:00.000Z');
  });

  it('the dev demo job: every 10 s on the second; next is strictly after the given second', () => {
    const s = new CronSchedule('*/10 * * * * *');
    expect(s.next(Date.UTC(2026, 11, 3, 18, 0, 0, 0))).toBe(Date.UTC(2026, 11, 3, 18, 0, 10));
    expect(s.next(Date.UTC(2026, 11, 3, 18, 0, 0, 999))).toBe(Date.UTC(2026, 11, 3, 18, 0, 10));
    expect(s.next(Date.UTC(2026, 11, 3, 23, 59, 55))).toBe(Date.UTC(2026, 11, 4, 0, 0, 0));
    expect(new CronSchedule('0 0 29 2 *').next(Date.UTC(2026, 0, 1))).toBe(Date.UTC(2028, 1, 29));
  });

  it('a job in UTC never creates an Intl.DateTimeFormat (ICU data: ~8 MiB per node); another zone does', () => {
    const Real = Intl.DateTimeFormat;
    let created = 0;
    Intl.DateTimeFormat = function (...a: ConstructorParameters<typeof Real>) {
      created++;
      return new Real(...a);
    } as unknown as typeof Real;
    try {
      const s = new CronSchedule('*/10 * * * * *', 'UTC');
      for (let i = 0, t = Date.UTC(2026, 0, 1); i < 100; i++) t = s.next(t)!;
      expect(created).toBe(0);
      new CronSchedule('0 2 * * *', 'Europe/Berlin').next(Date.UTC(2026, 0, 1));
      expect(created).toBe(1);
    } finally {
      Intl.DateTimeFormat = Real;
    }
  });

  it('a bad expression throws node-cron\'s message', () => {
    expect(() => new CronSchedule('0 25 * * *')).toThrow(/25 is a invalid expression for hour/);
  });

  it('a range with a huge bound throws at once, naming the range (node-cron expanded it: 19 s, 2 GB)', () => {
    const t0 = performance.now();
    expect(() => new CronSchedule('1-10000000 * * * *')).toThrow(/cron "1-10000000 \* \* \* \*": the range 1-10000000 is out of every field's bounds/);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
