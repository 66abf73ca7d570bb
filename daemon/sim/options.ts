/**
 * `quorumd sim` options (docs/sim.md): parsed and validated here, every problem named
 * with the option and what was expected.
 */
import { FAULT_KINDS, parseFaultKinds, type FaultKind } from '../../firmware-sim/faults.ts';

export class SimOptionError extends Error {
  override readonly name = 'SimOptionError';
}

export interface SimConfig {
  /** Seeds to run, in order. */
  seeds: number[];
  /** Data nodes (voters), 1..7. Default 5. */
  nodes: number;
  /** Add one witness member (votes, never leads, holds no data). Default false. */
  witness: boolean;
  /**
   * Observers (the config's `learners`, ZooKeeper's observers): members that receive
   * the committed stream but never vote and never lead. Engine zab only. Default 0.
   */
  observers?: number;
  engine: 'raft' | 'bully' | 'paxos' | 'zab' | 'pbft';
  /** Virtual time of the workload per seed, ms. Default 60 s. A liveness probe may run up to `probeMs` after it. */
  timeMs: number;
  faults: FaultKind[];
  /**
   * `--faults byzantine` (engine pbft only): 1..f data nodes lie for the whole run
   * (daemon/sim/pbft-sim.ts). Not a hardware fault, so not among `faults`.
   */
  byzantine?: boolean;
  /**
   * STONITH on (default): GPIO relays and power-sense inputs between data boards
   * (daemon/sim/fencing.ts), and a new leader fences the earlier one. `--no-stonith`:
   * no relays; a new leader waits for the lease bound (or an acknowledgement) instead.
   * The activation gate and the lease are on either way.
   */
  stonith: boolean;
  json: boolean;
  /** `--html FILE`: write the timeline page of the one seed (--seed) to FILE. */
  html: string | null;
  /** `--html-dir DIR`: write a timeline page for every failing seed, and index.html, into DIR. */
  htmlDir: string | null;
  /**
   * `--locks` (the log engines: raft, paxos, zab, pbft): lock clients too (daemon/sim/locks.ts), and the
   * client-side lock checks. Off by default: without it a seed runs as it always did.
   */
  locks?: boolean;
  /**
   * `--process-clocks`: each process incarnation's monotonic clock starts at its own
   * origin (hours, with a fraction, drawn from the seed) and restarts with the process,
   * as performance.now() does on a real node. Off by default: the board's hardware
   * monotonic clock, which does not restart with the process.
   */
  processClocks?: boolean;
}

/** Largest number of seeds in one run (a typo like 1..1e9 should not run for a week). */
export const MAX_SEEDS = 1_000_000;

/** Parses "60s", "1500ms", "2m", "90" (seconds). Throws naming `what`. */
export function parseDuration(raw: unknown, what: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw > 0) return Math.round(raw * 1000);
  if (typeof raw !== 'string') throw new SimOptionError(`${what}: expected a duration like 60s, 1500ms or 2m, got ${String(raw)}`);
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw.trim());
  if (!m) throw new SimOptionError(`${what}: expected a duration like 60s, 1500ms or 2m, got "${raw}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = Math.round(unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000);
  if (ms < 1000 || ms > 3_600_000) throw new SimOptionError(`${what}: expected between 1s and 60m, got "${raw}"`);
  return ms;
}

export function parseSeedRange(raw: unknown): number[] {
  if (typeof raw !== 'string') throw new SimOptionError(`--seeds: expected a range A..B, got ${String(raw)}`);
  const m = /^(\d+)\.\.(\d+)$/.exec(raw.trim());
  if (!m) throw new SimOptionError(`--seeds: expected a range A..B of non-negative integers (e.g. 1..300), got "${raw}"`);
  const a = Number(m[1]);
  const b = Number(m[2]);
  if (a > 0xffffffff || b > 0xffffffff) throw new SimOptionError(`--seeds: seeds must be at most ${0xffffffff}, got "${raw}"`);
  if (b < a) throw new SimOptionError(`--seeds: the range end ${b} is below its start ${a}`);
  if (b - a + 1 > MAX_SEEDS) throw new SimOptionError(`--seeds: at most ${MAX_SEEDS} seeds per run, got ${b - a + 1}`);
  const out: number[] = [];
  for (let s = a; s <= b; s++) out.push(s);
  return out;
}

function seedOf(raw: unknown): number {
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new SimOptionError(`--seed: expected an integer 0..${0xffffffff}, got ${String(raw)}`);
  return n;
}

function pathOption(raw: unknown, flag: string, what: string): string | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string' || raw.trim() === '') throw new SimOptionError(`${flag}: expected a ${what} path, got ${JSON.stringify(raw)}`);
  return raw;
}

/** From commander's option object (or any plain object with the same names). */
export function parseSimOptions(raw: Record<string, unknown>): SimConfig {
  if (typeof raw !== 'object' || raw === null) throw new SimOptionError('sim options: expected an object');
  const known = new Set(['seed', 'seeds', 'nodes', 'witness', 'observers', 'engine', 'time', 'faults', 'stonith', 'json', 'html', 'htmlDir', 'locks', 'processClocks']);
  for (const k of Object.keys(raw)) if (!known.has(k)) throw new SimOptionError(`sim options: unknown option "${k}" (known: ${[...known].join(', ')})`);
  let seeds: number[];
  if (raw.seed !== undefined && raw.seeds !== undefined) throw new SimOptionError('give either --seed N or --seeds A..B, not both');
  if (raw.seed !== undefined) seeds = [seedOf(raw.seed)];
  else if (raw.seeds !== undefined) seeds = parseSeedRange(raw.seeds);
  else throw new SimOptionError('one of --seed N or --seeds A..B is required');
  const nodesRaw = raw.nodes ?? 5;
  const nodes = typeof nodesRaw === 'string' && /^\d+$/.test(nodesRaw) ? Number(nodesRaw) : nodesRaw;
  if (typeof nodes !== 'number' || !Number.isInteger(nodes) || nodes < 1 || nodes > 7) throw new SimOptionError(`--nodes: expected an integer 1..7, got ${String(nodesRaw)}`);
  const witness = raw.witness === undefined ? false : raw.witness;
  if (typeof witness !== 'boolean') throw new SimOptionError(`--witness: expected a flag, got ${String(raw.witness)}`);
  if (witness && nodes < 2) throw new SimOptionError('--witness: needs at least 2 data nodes (--nodes 2 or more): a witness never leads');
  if (witness && nodes + 1 > 8) throw new SimOptionError('--witness: at most 7 data nodes plus the witness');
  const engine = raw.engine ?? 'raft';
  if (engine !== 'raft' && engine !== 'bully' && engine !== 'paxos' && engine !== 'zab' && engine !== 'pbft') throw new SimOptionError(`--engine: expected raft, bully, paxos, zab or pbft, got "${String(engine)}"`);
  if (engine === 'pbft' && nodes < 4) throw new SimOptionError(`--nodes: engine pbft needs at least 4 nodes (n = 3f + 1 tolerates f liars), got ${nodes}`);
  if (witness && engine === 'pbft') throw new SimOptionError('--witness: not for engine pbft (every PBFT replica executes; a member without data cannot vouch for a result)');
  const obsRaw = raw.observers ?? 0;
  const observers = typeof obsRaw === 'string' && /^\d+$/.test(obsRaw) ? Number(obsRaw) : obsRaw;
  if (typeof observers !== 'number' || !Number.isInteger(observers) || observers < 0 || observers > 4) throw new SimOptionError(`--observers: expected an integer 0..4, got ${String(obsRaw)}`);
  if (observers > 0 && engine !== 'zab') throw new SimOptionError(`--observers: only with --engine zab (ZooKeeper's observers), got --engine ${String(engine)}`);
  if (nodes + (witness ? 1 : 0) + observers > 8) throw new SimOptionError(`--observers: at most 8 boards in all (--nodes ${nodes}${witness ? ' + the witness' : ''} + ${observers} observers)`);
  const timeMs = parseDuration(raw.time ?? '60s', '--time');
  let faults: FaultKind[];
  let byzantine = false;
  try {
    const spec = raw.faults === undefined ? '' : raw.faults;
    if (typeof spec !== 'string') throw new TypeError(`--faults: expected a comma-separated list, got ${typeof spec}`);
    const kinds = spec.split(',').map((k) => k.trim());
    byzantine = kinds.includes('byzantine');
    if (byzantine && engine !== 'pbft') throw new SimOptionError(`--faults byzantine: only engine pbft tolerates lying nodes (the others trust every member that holds the cluster key); got --engine ${String(engine)}`);
    faults = parseFaultKinds(kinds.filter((k) => k !== 'byzantine').join(','));
  } catch (e) {
    if (e instanceof SimOptionError) throw e;
    throw new SimOptionError(`${(e as Error).message} (known: ${FAULT_KINDS.join(',')}, and byzantine for engine pbft)`);
  }
  const stonith = raw.stonith ?? true;
  if (typeof stonith !== 'boolean') throw new SimOptionError(`--no-stonith: expected a flag, got ${String(raw.stonith)}`);
  const json = raw.json ?? false;
  if (typeof json !== 'boolean') throw new SimOptionError(`--json: expected a flag, got ${String(raw.json)}`);
  const html = pathOption(raw.html, '--html', 'FILE');
  const htmlDir = pathOption(raw.htmlDir, '--html-dir', 'DIR');
  if (html !== null && htmlDir !== null) throw new SimOptionError('give either --html FILE (one seed) or --html-dir DIR (the failing seeds of a range), not both');
  if (html !== null && seeds.length !== 1) throw new SimOptionError(`--html: writes the page of one seed (--seed N); for a range of ${seeds.length} seeds use --html-dir DIR (a page per failing seed plus an index)`);
  const locks = raw.locks ?? false;
  if (typeof locks !== 'boolean') throw new SimOptionError(`--locks: expected a flag, got ${String(raw.locks)}`);
  if (locks && engine === 'bully') throw new SimOptionError('--locks: engine bully only elects a coordinator: it has no replicated log and so no locks (its nodes answer lock requests 501); --locks is for engines raft, paxos, zab and pbft');
  const processClocks = raw.processClocks ?? false;
  if (typeof processClocks !== 'boolean') throw new SimOptionError(`--process-clocks: expected a flag, got ${String(raw.processClocks)}`);
  return {
    seeds, nodes, witness, ...(observers > 0 ? { observers } : {}), engine, timeMs, faults, ...(byzantine ? { byzantine } : {}), stonith, json, html, htmlDir,
    ...(locks ? { locks } : {}), ...(processClocks ? { processClocks } : {}),
  };
}

/** The command line that replays one seed with the same settings. */
export function replayCommand(cfg: SimConfig, seed: number): string {
  const parts = ['quorumd sim', `--seed ${seed}`, `--nodes ${cfg.nodes}`];
  if (cfg.witness) parts.push('--witness');
  if ((cfg.observers ?? 0) > 0) parts.push(`--observers ${cfg.observers}`);
  parts.push(`--engine ${cfg.engine}`, `--time ${cfg.timeMs % 1000 === 0 ? `${cfg.timeMs / 1000}s` : `${cfg.timeMs}ms`}`);
  const faults = [...(cfg.byzantine ? ['byzantine'] : []), ...cfg.faults];
  if (faults.length > 0) parts.push(`--faults ${faults.join(',')}`);
  if (!cfg.stonith) parts.push('--no-stonith');
  if (cfg.locks) parts.push('--locks');
  if (cfg.processClocks) parts.push('--process-clocks');
  return parts.join(' ');
}
