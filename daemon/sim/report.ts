/**
 * Output of `quorumd sim` (documented for users, field by field, in docs/sim.md): one summary line per seed with `trace=<sha256>`,
 * and a last line `seeds=<n> violations=<n> stale_actuations=<n> dual_active_ms=<n> ...`;
 * with --json the same as one JSON object per line.
 *
 * stale_actuations / dual_active_ms are measured on *active* leaders (every active
 * leader drives the simulated actuator every 100 ms with its fencing token; the
 * activation gate of daemon/runtime/activation.ts decides who is active): for Raft both
 * must be 0. failover_p50_ms / failover_p99_ms: time without an active leader after
 * there had been one (fencing.ts), over every seed — compare with and without
 * --no-stonith.
 */
import type { SeedResult } from './engine-cluster.ts';
import { replayCommand, type SimConfig } from './options.ts';
import { percentile } from './fencing.ts';
import { FAULT_KINDS } from '../../firmware-sim/faults.ts';

export const GATE_NOTE = 'stale_actuations/dual_active_ms measure active leaders (the activation gate: docs/fencing.md)';

/**
 * The seed's line. `wall: false` leaves out `wall_ms` and `speed` (they measure the
 * machine, not the run): the timeline page quotes the line so, and so is the same file
 * for the same seed on every run.
 */
export function seedLine(r: SeedResult, cfg: SimConfig, o: { wall?: boolean } = {}): string {
  if (cfg.json) {
    const { violation, ...rest } = r;
    return JSON.stringify({ type: 'seed', ...rest, ...(violation ? { violation: { ...violation, replay: replayCommand(cfg, r.seed) } } : {}) });
  }
  const ratio = r.wallMs > 0 ? Math.round(r.virtualMs / r.wallMs) : 0;
  return (
    `seed=${r.seed} ${r.violation ? 'VIOLATION' : 'ok'} trace=${r.trace} leaders=${r.leaders} commits=${r.commits} ` +
    `ops=${r.ops} ops_ok=${r.opsOk} ops_unknown=${r.opsUnknown} history=${r.historyOps} lin=${r.lin} faults=${r.faults} ` +
    `probe_ms=${r.probeMs} stale_actuations=${r.staleActuations} dual_active_ms=${r.dualActiveMs} fences=${r.fences ?? 0} ` +
    `virtual_ms=${r.virtualMs}` + (o.wall === false ? '' : ` wall_ms=${r.wallMs} speed=${ratio}x`) +
    (r.locks ? ` lock_grants=${r.locks.grants} lock_renewals=${r.locks.renewals} lock_conflicts=${r.locks.conflicts}` : '')
  );
}

export function violationText(r: SeedResult, cfg: SimConfig): string {
  const v = r.violation!;
  return [
    `VIOLATION seed=${r.seed} invariant=${v.invariant} at=${v.atMs.toFixed(3)}ms`,
    `  ${v.detail}`,
    `  replay: ${replayCommand(cfg, r.seed)}`,
    '  last trace lines:',
    ...v.lastTrace.map((l) => `    ${l}`),
  ].join('\n');
}

export interface Totals {
  seeds: number;
  violations: number;
  staleActuations: number;
  dualActiveMs: number;
  ops: number;
  leaders: number;
  linUnknown: number;
  wallMs: number;
  violatingSeeds: number[];
  fences: number;
  fencesFailed: number;
  failovers: number;
  failoverP50Ms: number;
  failoverP99Ms: number;
  /** Faults applied over every seed, and by kind (in FAULT_KINDS order, then any other kind by name). */
  faults: number;
  faultsByKind: Record<string, number>;
}

/** Adds up per-kind fault counts, ordered as FAULT_KINDS (then any kind not listed there, by name). */
export function sumFaultKinds(results: readonly Pick<SeedResult, 'faultsByKind'>[]): Record<string, number> {
  const sum = new Map<string, number>();
  for (const r of results) for (const [k, n] of Object.entries(r.faultsByKind)) sum.set(k, (sum.get(k) ?? 0) + n);
  const known = FAULT_KINDS as readonly string[];
  const order = [...known.filter((k) => sum.has(k)), ...[...sum.keys()].filter((k) => !known.includes(k)).sort()];
  const out: Record<string, number> = {};
  for (const k of order) out[k] = sum.get(k)!;
  return out;
}

/** `partition:3,crash:2` (or `none`). */
export function faultKindsText(byKind: Record<string, number>): string {
  const parts = Object.entries(byKind).map(([k, n]) => `${k}:${n}`);
  return parts.length > 0 ? parts.join(',') : 'none';
}

export function totalsOf(results: SeedResult[], wallMs: number): Totals {
  return {
    seeds: results.length,
    violations: results.filter((r) => r.violation).length,
    staleActuations: results.reduce((a, r) => a + r.staleActuations, 0),
    dualActiveMs: results.reduce((a, r) => a + r.dualActiveMs, 0),
    ops: results.reduce((a, r) => a + r.ops, 0),
    leaders: results.reduce((a, r) => a + r.leaders, 0),
    linUnknown: results.filter((r) => r.lin === 'unknown').length,
    wallMs: Math.round(wallMs),
    violatingSeeds: results.filter((r) => r.violation).map((r) => r.seed),
    fences: results.reduce((a, r) => a + (r.fences ?? 0), 0),
    fencesFailed: results.reduce((a, r) => a + (r.fencesFailed ?? 0), 0),
    failovers: results.reduce((a, r) => a + (r.failoversMs?.length ?? 0), 0),
    failoverP50Ms: percentile(results.flatMap((r) => r.failoversMs ?? []), 50),
    failoverP99Ms: percentile(results.flatMap((r) => r.failoversMs ?? []), 99),
    faults: results.reduce((a, r) => a + r.faults, 0),
    faultsByKind: sumFaultKinds(results),
  };
}

export function lastLine(t: Totals, cfg: SimConfig): string {
  if (cfg.json) return JSON.stringify({ type: 'total', ...t, note: GATE_NOTE });
  return (
    `seeds=${t.seeds} violations=${t.violations} stale_actuations=${t.staleActuations} dual_active_ms=${t.dualActiveMs} ` +
    `ops=${t.ops} leaders=${t.leaders} lin_unknown=${t.linUnknown} fences=${t.fences} fences_failed=${t.fencesFailed} ` +
    `failovers=${t.failovers} failover_p50_ms=${t.failoverP50Ms} failover_p99_ms=${t.failoverP99Ms} ` +
    `faults=${t.faults} fault_kinds=${faultKindsText(t.faultsByKind)} wall_ms=${t.wallMs}` +
    (t.violatingSeeds.length > 0 ? ` violating_seeds=${t.violatingSeeds.slice(0, 20).join(',')}` : '') +
    ` note="${GATE_NOTE}"`
  );
}
