/**
 * A UTC instant as text — ISO 8601 for log lines and job slots, the HTTP date for the
 * `Date` header — written out from the number, without Date's string methods.
 *
 * Why not `new Date(ms).toISOString()`: in the V8 of Node 20 every Date-to-text
 * conversion (toISOString and toUTCString included, which print no zone) first asks ICU
 * for the local time zone's *display name*, and ICU then reads its zone-name tables
 * (zone/pool.res, metaZones.res, a locale's zone names) from the data built into the
 * `node` binary. Those pages stay mapped in the process for good: ~1 MiB more resident
 * memory per process for the first timestamp (an empty `node` process: 40.5 MiB, after
 * one `new Date().toISOString()` 41.4 MiB), in every node, because every node writes a
 * log line at its start and answers HTTP with a `Date` header. UTC fields from
 * arithmetic need none of it. (`getUTC*` getters do not touch ICU either; local-time
 * getters and `Date.prototype.toString` do.)
 *
 * The calendar: days since 1970-01-01 to a proleptic Gregorian year/month/day by
 * Howard Hinnant's `civil_from_days` ("chrono-Compatible Low-Level Date Algorithms"),
 * which counts in 400-year eras of 146,097 days from 0000-03-01 so that a leap day is
 * the era-year's last.
 *
 * Same text as toISOString / toUTCString for every instant (test/daemon/utc-text.test.ts
 * compares them); outside 1970–9999 these hand over to Date itself (rare: only a
 * mistaken input gets there), which also throws the same RangeError for a non-finite
 * time.
 */

const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00Z: from here on toISOString writes a six-digit year with a sign. */
const YEAR_10000_MS = 253_402_300_800_000;
const WEEKDAYS = ['Thu', 'Fri', 'Sat', 'Sun', 'Mon', 'Tue', 'Wed']; // 1970-01-01 was a Thursday
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

interface Utc {
  days: number;
  year: number;
  month: number; // 1–12
  day: number;
  hour: number;
  minute: number;
  second: number;
  milli: number;
}

/** `ms` (an integer ≥ 0) as UTC fields. */
function utcFields(ms: number): Utc {
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  // civil_from_days: shift the epoch to 0000-03-01, split into 400-year eras.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097; // day of era, 0–146096
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365); // 0–399
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100)); // day of the year from March 1, 0–365
  const mp = Math.floor((5 * doy + 2) / 153); // month from March, 0–11
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return { days, year, month, day, hour, minute, second, milli };
}

const p2 = (n: number) => (n < 10 ? '0' : '') + n;
const p3 = (n: number) => (n < 10 ? '00' : n < 100 ? '0' : '') + n;

/**
 * 1970-01-01 to 9999-12-31: a year of four digits, no sign, written as it is. Outside
 * (and for NaN) Date itself answers.
 */
const inRange = (ms: number) => ms >= 0 && ms < YEAR_10000_MS;

/** `new Date(ms).toISOString()`: `2026-12-06T08:49:37.123Z`. */
export function isoUtc(ms: number): string {
  if (!inRange(ms)) return new Date(ms).toISOString();
  const t = utcFields(Math.trunc(ms));
  return `${t.year}-${p2(t.month)}-${p2(t.day)}T${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)}.${p3(t.milli)}Z`;
}

/** `new Date(ms).toUTCString()`, the HTTP date (IMF-fixdate, RFC 9110): `Sun, 06 Dec 2026 08:49:37 GMT`. */
export function httpDate(ms: number): string {
  if (!inRange(ms)) return new Date(ms).toUTCString();
  const t = utcFields(Math.trunc(ms));
  return `${WEEKDAYS[t.days % 7]}, ${p2(t.day)} ${MONTHS[t.month - 1]} ${t.year} ${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)} GMT`;
}

let cachedSecond = -1;
let cachedDate = '';
/**
 * The `Date` header for an answer sent now (one text per second, as Node's own server
 * keeps it; an HTTP date has whole seconds).
 */
export function httpDateNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedDate = httpDate(now);
    cachedSecond = second;
  }
  return cachedDate;
}
