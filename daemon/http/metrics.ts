/**
 * Prometheus text exposition format 0.0.4, written by hand (prom-client is not a
 * dependency yet; the format is small: https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 *   # HELP name text
 *   # TYPE name counter|gauge|histogram
 *   name{label="value"} 1
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface Histogram {
  /** Upper bounds (ascending, excluding +Inf). */
  buckets: number[];
  /** Cumulative counts per bucket (same length as buckets). */
  counts: number[];
  count: number;
  sum: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples?: Sample[];
  histogram?: Histogram;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function escLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function fmtNum(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Record<string, string> | undefined, extra?: [string, string]): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (!NAME_RE.test(k) || k.includes(':')) throw new Error(`metrics: bad label name ${JSON.stringify(k)}`);
    parts.push(`${k}="${escLabel(v)}"`);
  }
  if (extra) parts.push(`${extra[0]}="${escLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function renderMetrics(families: MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    if (!NAME_RE.test(f.name)) throw new Error(`metrics: bad metric name ${JSON.stringify(f.name)}`);
    out += `# HELP ${f.name} ${escHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    if (f.type === 'histogram') {
      const h = f.histogram ?? { buckets: [], counts: [], count: 0, sum: 0 };
      h.buckets.forEach((b, i) => {
        out += `${f.name}_bucket${labelText(undefined, ['le', fmtNum(b)])} ${fmtNum(h.counts[i] ?? 0)}\n`;
      });
      out += `${f.name}_bucket{le="+Inf"} ${fmtNum(h.count)}\n${f.name}_sum ${fmtNum(h.sum)}\n${f.name}_count ${fmtNum(h.count)}\n`;
    } else {
      for (const s of f.samples ?? []) out += `${f.name}${labelText(s.labels)} ${fmtNum(s.value)}\n`;
    }
  }
  return out;
}

/** A fixed-bucket histogram to feed `renderMetrics` (e.g. fsync latency in seconds). */
export class HistogramRecorder {
  private readonly counts: number[];
  private count = 0;
  private sum = 0;
  constructor(readonly buckets: number[]) {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error('HistogramRecorder: buckets must be strictly ascending');
    }
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    this.count++;
    this.sum += v;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }
  snapshot(): Histogram {
    return { buckets: [...this.buckets], counts: [...this.counts], count: this.count, sum: this.sum };
  }
}

/** Default fsync latency buckets (seconds): an SD card fsync is 1-50 ms, a bad one 100s of ms. */
/** Commit latency of writes (s): a quiet LAN commits in a few ms, a busy Pi or a failover takes seconds. */
export const COMMIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const FSYNC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
