/**
 * When a job's next slot is: a cron expression's fields (node-cron's `parse`, so the
 * syntax and the validation messages are node-cron 4's — docs/jobs.md) evaluated here
 * on plain UTC calendar arithmetic.
 *
 * Why not node-cron's own matcher: it reads every candidate time through
 * `Intl.DateTimeFormat`, also for UTC, and the first `Intl.DateTimeFormat` of a process
 * maps ICU's locale and zone data: ~8 MiB more resident per node (6 MiB of the node
 * binary's pages, 2 MiB of heap) for a `*\/10 * * * * *` job in UTC, on boards where
 * a node is meant to fit in 55 MiB (issue 14). Here a job in UTC (the default) never
 * touches `Intl`; a job that names another zone creates one formatter for that zone
 * when the job is built.
 *
 * Semantics kept from node-cron 4 (what `quorumd jobs` promised so far): every field
 * must match, day of month AND day of week (not Vixie cron's OR when both are
 * restricted); day-of-month tokens `L` (last day), `L-n`, `nW` / `LW` (nearest weekday
 * within the month); day-of-week tokens `dL` (last such weekday of the month) and `d#n`
 * (n-th such weekday); a wall time that a DST change skips does not fire, and a wall
 * time that it repeats fires once (its first instant).
 */
import { cronRangeProblem, nodeCron } from './node-cron.ts';

/** How far ahead a next slot is searched (node-cron searches as far): beyond it, none. */
const MAX_DAYS = 366 * 100;

type DayOfMonth = { kind: 'day'; day: number } | { kind: 'last'; minus: number } | { kind: 'weekday'; day: number | 'L' };
type DayOfWeek = { kind: 'dow'; dow: number } | { kind: 'last'; dow: number } | { kind: 'nth'; dow: number; nth: number };

/** Wall-clock parts in the schedule's zone. */
interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const sortedUnique = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const weekdayOf = (year: number, month: number, day: number) => new Date(Date.UTC(year, month - 1, day)).getUTCDay();

/** The weekday (Mon–Fri) nearest to `target` without leaving the month; -1 if `target` is not in the month. */
function nearestWeekday(year: number, month: number, target: number): number {
  const last = daysIn(year, month);
  if (target < 1 || target > last) return -1;
  const wd = weekdayOf(year, month, target);
  if (wd === 6) return target === 1 ? 3 : target - 1; // Saturday: Friday before, or Monday the 3rd
  if (wd === 0) return target === last ? target - 2 : target + 1; // Sunday: Monday after, or Friday before the last
  return target;
}

function domRule(v: number | string, expr: string): DayOfMonth {
  if (typeof v === 'number') return { kind: 'day', day: v };
  if (v === 'L') return { kind: 'last', minus: 0 };
  let m = /^L-(\d{1,2})$/.exec(v);
  if (m) return { kind: 'last', minus: Number(m[1]) };
  m = /^(\d{1,2}|L)W$/.exec(v);
  if (m) return { kind: 'weekday', day: m[1] === 'L' ? 'L' : Number(m[1]) };
  throw new Error(`cron ${JSON.stringify(expr)}: day-of-month token ${JSON.stringify(v)} not understood`);
}

function dowRule(v: number | string, expr: string): DayOfWeek {
  if (typeof v === 'number') return { kind: 'dow', dow: v % 7 };
  let m = /^([0-7])L$/.exec(v);
  if (m) return { kind: 'last', dow: Number(m[1]) % 7 };
  m = /^([0-7])#([1-5])$/.exec(v);
  if (m) return { kind: 'nth', dow: Number(m[1]) % 7, nth: Number(m[2]) };
  throw new Error(`cron ${JSON.stringify(expr)}: day-of-week token ${JSON.stringify(v)} not understood`);
}

/**
 * Converts between instants and wall-clock parts of one IANA zone. UTC needs no table;
 * another zone reads its offsets through one `Intl.DateTimeFormat`, created here (the
 * only place of the daemon that does, and only for such a job).
 */
interface Zone {
  wall(ms: number): Wall;
  /** The instants (ascending) at which the zone's clocks read `w` (0: skipped by a DST change, 2: repeated). */
  instants(w: Wall): number[];
}

const utcWall = (ms: number): Wall => {
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
};
const wallUtcMs = (w: Wall) => Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);

const UTC_ZONE: Zone = { wall: utcWall, instants: (w) => [wallUtcMs(w)] };

function intlZone(timeZone: string): Zone {
  const fmt = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
  const wall = (ms: number): Wall => {
    const p: Record<string, number> = {};
    for (const part of fmt.formatToParts(ms)) if (part.type !== 'literal') p[part.type] = Number(part.value);
    return { year: p.year!, month: p.month!, day: p.day!, hour: p.hour! % 24, minute: p.minute!, second: p.second! };
  };
  /** Offset of the zone from UTC at `ms`, ms (whole seconds: `ms` is taken to its second). */
  const offset = (ms: number) => {
    const s = Math.floor(ms / 1000) * 1000;
    return wallUtcMs(wall(s)) - s;
  };
  const same = (a: Wall, b: Wall) => a.year === b.year && a.month === b.month && a.day === b.day && a.hour === b.hour && a.minute === b.minute && a.second === b.second;
  return {
    wall,
    instants(w) {
      const guess = wallUtcMs(w);
      // Offsets in force a day either side cover any DST change near the wall time.
      const out = new Set<number>();
      for (const o of [offset(guess - 86_400_000), offset(guess), offset(guess + 86_400_000)]) {
        const t = guess - o;
        if (same(wall(t), w)) out.add(t);
      }
      return [...out].sort((a, b) => a - b);
    },
  };
}

/** A job's schedule: `next(after)` is its first slot after `after`. */
export class CronSchedule {
  private readonly seconds: number[];
  private readonly minutes: number[];
  private readonly hours: number[];
  private readonly months: Set<number>;
  private readonly dom: DayOfMonth[];
  private readonly dow: DayOfWeek[];
  private readonly zone: Zone;

  /** Throws with node-cron's message if `expr` is not a cron expression, or if `timeZone` is not known. */
  constructor(
    readonly expr: string,
    readonly timeZone = 'UTC',
  ) {
    const range = cronRangeProblem(expr);
    if (range !== undefined) throw new Error(`cron ${JSON.stringify(expr)}: ${range}`);
    const f = nodeCron().parse(expr);
    this.seconds = sortedUnique(f.second);
    this.minutes = sortedUnique(f.minute);
    this.hours = sortedUnique(f.hour);
    this.months = new Set(f.month);
    this.dom = f.dayOfMonth.map((v) => domRule(v, expr));
    this.dow = f.dayOfWeek.map((v) => dowRule(v, expr));
    this.zone = timeZone === 'UTC' || timeZone === 'Etc/UTC' ? UTC_ZONE : intlZone(timeZone);
  }

  /** Does the calendar day match the day-of-month, month and day-of-week fields? */
  private dayMatches(year: number, month: number, day: number): boolean {
    if (!this.months.has(month)) return false;
    const last = daysIn(year, month);
    const domOk = this.dom.some((r) =>
      r.kind === 'day' ? r.day === day : r.kind === 'last' ? last - r.minus >= 1 && last - r.minus === day : nearestWeekday(year, month, r.day === 'L' ? last : r.day) === day,
    );
    if (!domOk) return false;
    const wd = weekdayOf(year, month, day);
    return this.dow.some((r) => r.dow === wd && (r.kind === 'dow' || (r.kind === 'last' ? day + 7 > last : Math.floor((day - 1) / 7) + 1 === r.nth)));
  }

  /**
   * The first slot (ms since the epoch, a whole second) strictly after the second that
   * holds `afterMs`; undefined if none comes within a hundred years.
   */
  next(afterMs: number): number | undefined {
    const base = Math.floor(afterMs / 1000) * 1000;
    const b = this.zone.wall(base);
    let { year, month, day } = b;
    for (let i = 0; i < MAX_DAYS; i++) {
      if (this.dayMatches(year, month, day)) {
        const t = this.firstOnDay(year, month, day, i === 0 ? b : undefined, base);
        if (t !== undefined) return t;
      }
      const d = new Date(Date.UTC(year, month - 1, day + 1));
      year = d.getUTCFullYear();
      month = d.getUTCMonth() + 1;
      day = d.getUTCDate();
    }
    return undefined;
  }

  /** The first matching time of a matching day after the wall time `from` (if given) and after `base`. */
  private firstOnDay(year: number, month: number, day: number, from: Wall | undefined, base: number): number | undefined {
    for (const hour of this.hours) {
      if (from && hour < from.hour) continue;
      for (const minute of this.minutes) {
        if (from && hour === from.hour && minute < from.minute) continue;
        for (const second of this.seconds) {
          if (from && hour === from.hour && minute === from.minute && second <= from.second) continue;
          // The first instant of that wall time after `base` (none: a DST change skips it).
          const t = this.zone.instants({ year, month, day, hour, minute, second }).find((x) => x > base);
          if (t !== undefined) return t;
        }
      }
    }
    return undefined;
  }
}
