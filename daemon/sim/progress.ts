/**
 * The progress line of a long `quorumd sim --seeds A..B` run, on stderr when stderr is
 * a terminal: seeds done of the total, violations so far, time spent and the time left
 * (ETA, from the mean wall time per seed so far). One line, redrawn in place with a
 * carriage return, never wider than the terminal (a wrapped line cannot be redrawn).
 *
 * stdout keeps its contract (one line per seed, the total line): before a stdout line
 * the caller calls `clear()`, so the two never mix on a terminal that shows both. When
 * stderr is not a terminal (a file, a pipe, CI) nothing is written at all.
 */

export interface ProgressStream {
  write(s: string): unknown;
  /** Width of the terminal, if known. */
  columns?: number;
}

/** "3.2 s", "4 min 05 s", "1 h 02 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** The text of the line (without the carriage return and erase). */
export function progressText(done: number, total: number, violations: number, elapsedMs: number): string {
  const pct = total > 0 ? ((100 * done) / total).toFixed(1) : '100.0';
  const eta = done > 0 ? formatDuration((elapsedMs / done) * (total - done)) : '…';
  return `sim: ${done}/${total} seeds (${pct}%) · violations ${violations} · ${formatDuration(elapsedMs)} elapsed · ETA ${eta}`;
}

export class ProgressLine {
  private drawn = false;
  private lastDrawMs = -Infinity;

  constructor(
    private readonly stream: ProgressStream,
    private readonly total: number,
    private readonly now: () => number = () => performance.now(),
    /** Redraw at most this often (ms), unless the line was cleared. */
    private readonly minIntervalMs = 250,
    private readonly startMs = now(),
  ) {}

  /** After a seed: redraws the line (at most every minIntervalMs while it stays on screen). */
  update(done: number, violations: number): void {
    const t = this.now();
    if (this.drawn && t - this.lastDrawMs < this.minIntervalMs && done < this.total) return;
    let text = progressText(done, this.total, violations, t - this.startMs);
    const cols = this.stream.columns;
    if (cols !== undefined && cols > 10 && text.length > cols - 1) text = text.slice(0, cols - 2) + '…';
    this.stream.write(`\r\x1b[K${text}`);
    this.drawn = true;
    this.lastDrawMs = t;
  }

  /** Erases the line (before a stdout line, and at the end). */
  clear(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
