/**
 * `quorumd sim`: deterministic whole-cluster simulation. Runs seeds one after another
 * (never in parallel: a seed's output must not depend on the machine), prints one line
 * per seed and a total line; exit status 1 on any violation, 2 for bad options or a
 * timeline page that could not be written.
 *
 * Also: a progress line on stderr while a range of seeds runs, when stderr is a
 * terminal (sim/progress.ts); `--html FILE` writes the timeline page of one seed, and
 * `--html-dir DIR` one page per failing seed plus an index (sim/timeline/). The output
 * is documented for users in docs/sim.md.
 */
import { ProgressLine, type ProgressStream } from './sim/progress.ts';
import { parseSimOptions, SimOptionError, type SimConfig } from './sim/options.ts';
import { faultKindsText, lastLine, seedLine, totalsOf, violationText } from './sim/report.ts';
import type { SeedResult } from './sim/engine-cluster.ts';
import { checkHtmlFile, prepareHtmlDir, recordSeed, runAnySeed, timelinePage, writeHtmlDir, writePage } from './sim/timeline/index.ts';

export interface SimIo {
  /** Where notes and errors go (default process.stderr). */
  err?: ProgressStream;
  /** Draw the progress line on `err` (default: when stderr is a terminal). */
  progress?: boolean;
}

export async function runSimCommand(opts: Record<string, unknown>, out: (line: string) => void = (l) => process.stdout.write(l + '\n'), io: SimIo = {}): Promise<number> {
  const err: ProgressStream = io.err ?? process.stderr;
  let cfg: SimConfig;
  try {
    cfg = parseSimOptions(opts);
    if (cfg.html !== null) checkHtmlFile(cfg.html);
    if (cfg.htmlDir !== null) prepareHtmlDir(cfg.htmlDir);
  } catch (e) {
    if (e instanceof SimOptionError || (e instanceof Error && /^--html/.test(e.message))) {
      err.write(`quorumd sim: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const showProgress = io.progress ?? (process.stderr.isTTY === true && io.err === undefined);
  const progress = showProgress && cfg.seeds.length > 1 ? new ProgressLine(err, cfg.seeds.length) : null;
  const print = (line: string) => {
    progress?.clear();
    out(line);
  };
  const t0 = performance.now();
  const results: SeedResult[] = [];
  let violations = 0;
  progress?.update(0, 0);
  /** A page that could not be written: said on stderr, and the exit status is 2 (the run itself is reported as usual). */
  let writeFailed = false;
  const tryWrite = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      writeFailed = true;
      progress?.clear();
      err.write(`quorumd sim: cannot write ${what}: ${(e as Error).message}\n`);
    }
  };
  for (const seed of cfg.seeds) {
    let r: SeedResult;
    let page: string | null = null;
    if (cfg.html !== null) {
      // One seed (options.ts insists): recorded as it runs.
      const rec = recordSeed(cfg, seed);
      r = rec.result;
      page = timelinePage(rec.data);
    } else {
      r = runAnySeed(cfg, seed);
    }
    results.push(r);
    if (r.violation) violations++;
    print(seedLine(r, cfg));
    if (r.violation && !cfg.json) print(violationText(r, cfg));
    if (page !== null && cfg.html !== null) {
      const file = cfg.html;
      tryWrite(`the timeline to ${file}`, () => {
        const bytes = writePage(file, page);
        err.write(`quorumd sim: timeline of seed ${seed} written to ${file} (${Math.round(bytes / 1024)} KiB)\n`);
      });
    }
    progress?.update(results.length, violations);
    // Let stdout drain between seeds of a long run.
    if (results.length % 10 === 0) await new Promise((res) => setImmediate(res));
  }
  progress?.clear();
  const totals = totalsOf(results, performance.now() - t0);
  if (cfg.htmlDir !== null) {
    const dir = cfg.htmlDir;
    const failing = results.filter((r) => r.violation);
    if (failing.length > 0) err.write(`quorumd sim: recording the ${failing.length} failing seed${failing.length === 1 ? '' : 's'} again for --html-dir…\n`);
    tryWrite(`the timeline pages to ${dir}`, () => {
      const w = writeHtmlDir(dir, cfg, failing, { totals: lastLine(totals, { ...cfg, json: false }), faultKinds: faultKindsText(totals.faultsByKind) });
      for (const m of w.mismatches) err.write(`quorumd sim: seed ${m.seed} replayed with another trace (${m.replay}, first run ${m.first}): the simulation is not deterministic here — please report it\n`);
      err.write(`quorumd sim: ${w.pages.length} timeline page${w.pages.length === 1 ? '' : 's'} and the index written to ${w.index}\n`);
    });
  }
  out(lastLine(totals, cfg));
  if (writeFailed) return 2;
  return totals.violations > 0 ? 1 : 0;
}
