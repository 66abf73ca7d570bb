/**
 * Per-write trace points (issue 14): where one write's time goes, measured, not
 * guessed. Off unless the node is started with QUORUMD_TRACE_WRITES=<directory>; then
 * every node process appends JSON lines `[point, lo, hi, tMs]` to
 * `<directory>/<node>-<pid>.jsonl`, `tMs` being wall-clock milliseconds with
 * microsecond resolution (performance.timeOrigin + performance.now(): one clock for
 * all processes of a machine, so the lines of a leader and its followers line up).
 *
 * The points, by log index (lo..hi for a range of entries):
 *   http.in / http.out     the API backend took the request / has the answer (leader)
 *   propose                the entry got its index
 *   append.send>N          an Append carrying the entries left for node N (leader)
 *   append.recv            an Append carrying them arrived (follower)
 *   persist.start / .done  the Ready holding them went to the durable log / is durable
 *   ack.send               the follower's AppendReply for them left (after its fsync)
 *   ack.recv<N             the leader got node N's AppendReply
 *   commit                 the commit index passed them
 *   apply                  applied to the state machine
 * and, with no index (lo = hi = 0): `gc` lines `["gc", 0, 0, startMs, durationMs, kind]`
 * (kind: node:perf_hooks' NODE_PERFORMANCE_GC_* — 1 scavenge, 2 mark-compact, 4
 * incremental marking, 8 weak callbacks), one per garbage collection of the process,
 * so that a slow write can be matched with the collections that ran during it.
 * bench/write-trace.ts starts a dev cluster with it, writes, and prints the timeline.
 *
 * The simulator never passes a tracer: it only records, it never changes behaviour.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { MsgType, type Message } from '../../src/wire/messages.ts';

export interface WriteTracer {
  /** `point` happened now for log indexes lo..hi (hi defaults to lo). */
  mark(point: string, lo: number, hi?: number): void;
  /** `point` happened at `tMs` (a time from now()). */
  markAt(point: string, lo: number, hi: number, tMs: number): void;
  /** The tracer's clock: wall-clock ms with µs resolution. */
  now(): number;
  /** Writes what is buffered (also every 200 ms and at process exit). */
  flush(): void;
}

/** The tracer QUORUMD_TRACE_WRITES asks for, or undefined (the default: no tracing). */
export function writeTracerFromEnv(node: string, env: NodeJS.ProcessEnv = process.env): WriteTracer | undefined {
  const dir = env.QUORUMD_TRACE_WRITES;
  if (dir === undefined || dir === '') return undefined;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${node.replace(/[^\w.-]/g, '_')}-${process.pid}.jsonl`);
  let buf: string[] = [];
  const flush = () => {
    if (buf.length === 0) return;
    const out = buf.join('');
    buf = [];
    appendFileSync(file, out);
  };
  setInterval(flush, 200).unref();
  process.once('exit', flush);
  const origin = performance.timeOrigin;
  const now = () => origin + performance.now();
  const markAt = (point: string, lo: number, hi: number, t: number) => {
    buf.push(`${JSON.stringify([point, lo, hi, Math.round(t * 1000) / 1000])}\n`);
    if (buf.length >= 4096) flush();
  };
  // Collections: entry.startTime is on the same clock as now() (ms after timeOrigin).
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) buf.push(`${JSON.stringify(['gc', 0, 0, Math.round((origin + e.startTime) * 1000) / 1000, Math.round(e.duration * 1000) / 1000, (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0])}\n`);
  }).observe({ entryTypes: ['gc'] });
  return {
    mark: (point, lo, hi = lo) => markAt(point, lo, hi, now()),
    markAt,
    now,
    flush,
  };
}

/**
 * The trace points a replication message carries (append.send>N / append.recv for an
 * Append with entries, ack.send / ack.recv<N for a successful AppendReply): Raft's
 * replication messages; other engines' messages mark nothing.
 */
export function traceMessage(tr: WriteTracer, m: Message, dir: 'send' | 'recv'): void {
  if (m.type === MsgType.Append && m.entries.length > 0) {
    const lo = m.entries[0]!.index;
    const hi = m.entries[m.entries.length - 1]!.index;
    if (dir === 'send') tr.mark(`append.send>${m.to}`, lo, hi);
    else tr.mark('append.recv', lo, hi);
  } else if (m.type === MsgType.AppendReply && m.success) {
    if (dir === 'send') tr.mark('ack.send', m.index);
    else tr.mark(`ack.recv<${m.from}`, m.index);
  }
}
