/**
 * The logger the node runtime writes through. Injected, so that the same runtime logs
 * into the simulator's trace, into JSON lines on a board (daemon/log.ts), or nowhere in a benchmark.
 *
 * `fields` are small structured values (numbers, strings, booleans); a logger must not
 * keep a reference to them.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** Discards everything (benchmarks, tests that do not look at logs). */
export const nullLogger: Logger = () => {};

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger that forwards only messages at `min` level or above to `out`. */
export function filterLogger(min: LogLevel, out: Logger): Logger {
  if (!(min in RANK)) throw new RangeError(`filterLogger: level must be debug, info, warn or error, got ${String(min)}`);
  const floor = RANK[min];
  return (level, msg, fields) => {
    if (RANK[level] >= floor) out(level, msg, fields);
  };
}

/** `msg k=v k=v` — one line, for traces and plain-text logs. */
export function formatLine(level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  let s = `${level} ${msg}`;
  if (fields) for (const [k, v] of Object.entries(fields)) s += ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
  return s;
}
