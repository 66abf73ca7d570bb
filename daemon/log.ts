/**
 * Structured logs of a real node: one JSON object per line on stdout, in pino's format
 * (journald keeps them; `journalctl -u quorumd -o cat | npx pino-pretty` reads them):
 *
 *   {"level":30,"time":"2026-12-05T21:31:33.675Z","node":"n1","cluster":"dev","link":"mqtt","msg":"link up"}
 *
 * `level` is pino's number (10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal),
 * `time` ISO 8601 UTC, then the node's own fields, the line's fields, and `msg`.
 *
 * Why not pino itself, which wrote these lines until now: a node logs a few lines a
 * minute (roles, elections, hooks, errors; no per-request lines), and pino with its
 * stream and transport machinery cost each node process ~0.5 MiB of resident memory
 * (its code and objects, and the worker_threads, assert and os modules it loads): idle
 * RSS of a `quorumd dev --no-jobs` node 55.9 MiB typical with pino against 55.4
 * without, the largest of three nodes 25–40 s after the start, 4 interleaved starts
 * each (one start of each kept ~58.5, V8's memory reducer). An embedder may still pass a pino
 * logger (startNode's `pino` option): it has the methods of NodeLog.
 *
 * The runtime logs through its injected `Logger` (daemon/runtime/logger.ts);
 * runtimeLogger adapts it to a NodeLog.
 */
import { fstatSync, writeSync } from 'node:fs';
import type { Logger } from './runtime/logger.ts';
import { isoUtc } from './utc-text.ts';

export type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** One level's method: a message, or fields and a message (pino's argument order). */
export interface LogFn {
  (msg: string): void;
  (fields: object, msg?: string): void;
}

/** What quorumd calls on a node's logger. A pino Logger has all of it. */
export interface NodeLog {
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
}

/** pino's level numbers (readers such as pino-pretty rely on them). */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type Level = keyof typeof LEVELS;

/** Where the lines go: a file descriptor (stdout, 1), or a function (tests). */
export type LogSink = number | ((line: string) => void);

/**
 * A logger writing JSON lines at `level` and above to `sink` (stdout by default), each
 * line with the fields of `base` after level and time. Writes are synchronous, so that
 * nothing is lost when the process exits right after a fatal line. A value JSON cannot
 * hold does not make a log call throw (it is written as text), nor does a descriptor
 * that fails (stdout closed: the line is dropped); a function sink's own errors reach
 * the caller.
 */
export function createNodeLog(level: LevelName, base: Record<string, unknown> = {}, sink: LogSink = 1): NodeLog {
  const min = level === 'silent' ? Infinity : LEVELS[level];
  if (min === undefined) throw new RangeError(`log level: expected one of fatal, error, warn, info, debug, trace, silent, got ${JSON.stringify(level)}`);
  // The base fields, encoded once: `,"node":"n1","cluster":"dev"` (empty without any).
  const baseText = encodeFields(base);
  if (typeof sink === 'number') nonBlocking(sink);
  const write = typeof sink === 'number' ? (line: string) => writeFd(sink, line) : sink;
  const method = (name: Level): LogFn => {
    const n = LEVELS[name];
    if (n < min) return () => {};
    return (a: string | object, msg?: string) => {
      let fields = '';
      let text: string | undefined;
      if (typeof a === 'string') text = a;
      else {
        fields = encodeFields(a as Record<string, unknown>);
        // As pino: without a message argument, a `msg` among the fields is the message.
        text = msg ?? (typeof (a as { msg?: unknown } | null)?.msg === 'string' ? (a as { msg: string }).msg : undefined);
      }
      const tail = text === undefined ? '' : `,"msg":${JSON.stringify(String(text))}`;
      write(`{"level":${n},"time":"${isoUtc(Date.now())}"${baseText}${fields}${tail}}\n`);
    };
  };
  return { fatal: method('fatal'), error: method('error'), warn: method('warn'), info: method('info'), debug: method('debug'), trace: method('trace') };
}

/**
 * `fields` as the members of a JSON object, each preceded by a comma (`,"a":1,"b":"x"`),
 * keys in insertion order; `level`, `time` and `msg` are the line's own and are left out.
 * An Error becomes {type, message, stack} (JSON.stringify would make it {}), a bigint its
 * digits, and an object JSON cannot encode (a cycle) the text of String(value).
 */
function encodeFields(fields: Record<string, unknown> | null | undefined): string {
  if (fields === null || typeof fields !== 'object') return '';
  let out = '';
  for (const k of Object.keys(fields)) {
    if (k === 'level' || k === 'time' || k === 'msg') continue;
    const v = fields[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out += `,${JSON.stringify(k)}:${encodeValue(v)}`;
  }
  return out;
}

function encodeValue(v: unknown): string {
  try {
    return JSON.stringify(v, replacer) ?? 'null';
  } catch {
    return JSON.stringify(String(v));
  }
}

function replacer(_key: string, v: unknown): unknown {
  if (v instanceof Error) return { type: v.name, message: v.message, stack: v.stack };
  if (typeof v === 'bigint') return v.toString();
  return v;
}

/**
 * Makes stdout or stderr non-blocking when it is a pipe or a socket, so that writeFd's
 * bound holds. A process inherits them blocking (systemd's journal socket, `quorumd start
 * | tee …`), and a blocking write to a full pipe waits until the reader reads: with the
 * reader stopped (a stalled journald, a pager left open) the node would stand still at
 * its next ~64 KiB of lines — heartbeats, elections, HTTP — for as long as the reader does
 * (2,000 lines into a pipe nobody read: blocked until the reader exited). `quorumd start`
 * got non-blocking descriptors only by accident (node-main's EPIPE handler creates Node's
 * streams); an embedder's process (startNode) did not. Node's own stream for the
 * descriptor, once created, sets it non-blocking (libuv); nothing is written through it
 * here. A terminal is left as it is (its mode is the shell's too).
 */
function nonBlocking(fd: number): void {
  if (fd !== 1 && fd !== 2) return;
  try {
    const st = fstatSync(fd);
    if (!st.isFIFO() && !st.isSocket()) return;
  } catch {
    return; // not open: writeFd drops the lines
  }
  void (fd === 1 ? process.stdout : process.stderr);
}

/** A shared word to sleep on (Atomics.wait) between retries of a write that would block. */
let sleeper: Int32Array | undefined;
/** Descriptors whose reader stopped reading: a line already waited a second in vain. */
const stalled = new Set<number>();
/** Descriptors where a dropped line was cut short: the next line starts on a new one. */
const cut = new Set<number>();

/**
 * Writes `line` to `fd` whole. stdout may be a non-blocking pipe or socket: a full pipe
 * answers EAGAIN, and the write is retried after 1 ms, at most 1000 times (a second).
 * A line that waited that long in vain is dropped, and so are the next ones at their
 * first EAGAIN until a write gets through again: a reader that stopped reading must not
 * hold up the node a second per line (its heartbeats run on this thread). Any other
 * error (stdout closed) drops what is left of the line. After a line cut short, the
 * next one starts on a line of its own, so that every whole line still parses.
 */
function writeFd(fd: number, line: string): void {
  const buf = Buffer.from(cut.has(fd) ? `\n${line}` : line, 'utf8');
  let off = 0;
  let waits = 0;
  while (off < buf.length) {
    try {
      const n = writeSync(fd, buf, off, buf.length - off);
      // No progress without an error (not seen, but it would spin): treated as EAGAIN.
      if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EAGAIN' });
      off += n;
      stalled.delete(fd);
      cut.delete(fd);
    } catch (e) {
      if (off > 0) cut.add(fd);
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      if (stalled.has(fd) || waits++ >= 1000) {
        stalled.add(fd);
        return;
      }
      sleeper ??= new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
}

/** The runtime's Logger over a NodeLog. */
export function runtimeLogger(p: NodeLog): Logger {
  return (level, msg, fields) => {
    if (!fields) return p[level](msg);
    // The runtime names its own node by number (`node: 2`: the simulator's trace has
    // many nodes in one log); this process's logger already carries the node's name
    // under `node`, and a second `node` key in the same JSON line replaced the name for
    // most readers (jq, JSON.parse keep the last one).
    if (typeof fields.node === 'number') {
      const { node: _own, ...rest } = fields;
      p[level](rest, msg);
    } else p[level](fields, msg);
  };
}
