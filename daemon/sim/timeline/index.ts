/**
 * The simulation timeline (`quorumd sim --html FILE`, `--html-dir DIR`): run a seed
 * with the recorder (recorder.ts) and write its self-contained page (page.ts).
 *
 * --html-dir runs every seed *without* recording, then replays each failing seed with
 * the recorder: a run is a pure function of its seed, so the replay is the same run
 * (its trace hash is compared, and a mismatch is reported, never hidden), and the
 * seeds that pass cost nothing extra.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { SeedResult } from '../engine-cluster.ts';
import type { BullySeedHooks } from '../bully-sim.ts';
import { runEngineSeed, type EngineSeedHooks } from '../engine-cluster.ts';
import { replayCommand, type SimConfig } from '../options.ts';
import { seedLine } from '../report.ts';
import { TimelineRecorder, type TimelineData, type TimelineMeta } from './recorder.ts';
import { indexPage, timelinePage, type IndexEntry } from './page.ts';

export { TimelineRecorder, type TimelineData } from './recorder.ts';
export { timelinePage, indexPage } from './page.ts';

/** Runs one seed of any engine (hooks as runEngineSeed takes them; `timeline` set by recordSeed). */
export function runAnySeed(cfg: SimConfig, seed: number, hooks: EngineSeedHooks | BullySeedHooks = {}): SeedResult {
  return runEngineSeed(cfg, seed, hooks);
}

export function timelineMeta(cfg: SimConfig, r: SeedResult): TimelineMeta {
  return {
    engine: cfg.engine,
    seed: r.seed,
    nodes: cfg.nodes,
    witness: cfg.witness,
    ...((cfg.observers ?? 0) > 0 ? { observers: cfg.observers } : {}),
    timeMs: cfg.timeMs,
    // PBFT's lying boards are not a hardware fault (not among cfg.faults), but the page names them with the rest.
    faults: [...(cfg.byzantine ? ['byzantine'] : []), ...cfg.faults],
    stonith: cfg.stonith,
    replay: replayCommand(cfg, r.seed),
    // Without wall_ms and speed: the page of a seed is the same file on every run.
    summary: seedLine(r, { ...cfg, json: false }, { wall: false }),
    trace: r.trace,
  };
}

/** Runs `seed` with the recorder: its result and the page's data. */
export function recordSeed(cfg: SimConfig, seed: number, hooks: Omit<EngineSeedHooks, 'timeline'> | Omit<BullySeedHooks, 'timeline'> = {}): { result: SeedResult; data: TimelineData } {
  const rec = new TimelineRecorder();
  const result = runAnySeed(cfg, seed, { ...hooks, timeline: rec });
  return { result, data: rec.finish(timelineMeta(cfg, result), result.violation) };
}

/** Checks up front that FILE can be written (its folder exists), so a long run does not fail at the end. */
export function checkHtmlFile(file: string): void {
  const dir = dirname(resolve(file));
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new Error(`--html: the folder ${dir} of ${file} does not exist`);
  }
  if (!st.isDirectory()) throw new Error(`--html: ${dir} is not a folder`);
  try {
    if (statSync(file).isDirectory()) throw new Error(`--html: ${file} is a folder; give a file name (e.g. ${join(file, 'run.html')})`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Creates DIR (and its parents) up front. */
export function prepareHtmlDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new Error(`--html-dir: cannot create ${dir}: ${(e as Error).message}`);
  }
  if (!statSync(dir).isDirectory()) throw new Error(`--html-dir: ${dir} is not a folder`);
}

/** Writes a page; returns its size in bytes. */
export function writePage(file: string, html: string): number {
  writeFileSync(file, html);
  return Buffer.byteLength(html);
}

export interface HtmlDirResult {
  index: string;
  pages: Array<{ seed: number; file: string; bytes: number }>;
  /** Seeds whose replay gave another trace hash than the first run (should never happen). */
  mismatches: Array<{ seed: number; first: string; replay: string }>;
}

/**
 * --html-dir: replays each failing seed with the recorder, writes `seed-<n>.html` for
 * each and `index.html` listing them with the run's totals.
 */
export function writeHtmlDir(
  dir: string,
  cfg: SimConfig,
  failing: readonly SeedResult[],
  summary: { totals: string; faultKinds: string },
  hooks: Omit<EngineSeedHooks, 'timeline'> | Omit<BullySeedHooks, 'timeline'> = {},
): HtmlDirResult {
  prepareHtmlDir(dir);
  const entries: IndexEntry[] = [];
  const pages: HtmlDirResult['pages'] = [];
  const mismatches: HtmlDirResult['mismatches'] = [];
  for (const first of failing) {
    const { result, data } = recordSeed(cfg, first.seed, hooks);
    if (result.trace !== first.trace) mismatches.push({ seed: first.seed, first: first.trace, replay: result.trace });
    const file = `seed-${first.seed}.html`;
    const bytes = writePage(join(dir, file), timelinePage(data));
    pages.push({ seed: first.seed, file, bytes });
    const v = result.violation ?? first.violation;
    entries.push({ seed: first.seed, invariant: v?.invariant ?? '(no violation on replay)', atMs: v?.atMs ?? 0, detail: v?.detail ?? '', file, bytes });
  }
  const seeds = cfg.seeds;
  const range = seeds.length === 1 ? `seed ${seeds[0]}` : `seeds ${seeds[0]}..${seeds[seeds.length - 1]}`;
  const index = join(dir, 'index.html');
  writePage(
    index,
    indexPage({
      title: `quorumd sim — ${range}, ${cfg.engine}: ${failing.length} failing`,
      settings: `${replayCommand(cfg, seeds[0]!).replace(/--seed \d+/, seeds.length === 1 ? `--seed ${seeds[0]}` : `--seeds ${seeds[0]}..${seeds[seeds.length - 1]}`)}`,
      totals: summary.totals,
      faultKinds: summary.faultKinds,
      entries,
    }),
  );
  return { index, pages, mismatches };
}
