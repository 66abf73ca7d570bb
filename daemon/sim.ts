/**
 * `quorumd sim` (DESIGN §6): deterministic whole-cluster simulation. Runs seeds one
 * after another (never in parallel: a seed's output must not depend on the machine),
 * prints one line per seed and a total line; exit status 1 on any violation.
 */
import { runSeed, type SeedResult } from './sim/cluster.ts';
import { runBullySeed } from './sim/bully-cluster.ts';
import { parseSimOptions, SimOptionError } from './sim/options.ts';
import { lastLine, seedLine, totalsOf, violationText } from './sim/report.ts';

export async function runSimCommand(opts: Record<string, unknown>, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<number> {
  let cfg;
  try {
    cfg = parseSimOptions(opts);
  } catch (e) {
    if (e instanceof SimOptionError) {
      process.stderr.write(`quorumd sim: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const t0 = performance.now();
  const results: SeedResult[] = [];
  for (const seed of cfg.seeds) {
    const r = cfg.engine === 'bully' ? runBullySeed(cfg, seed) : runSeed(cfg, seed);
    results.push(r);
    out(seedLine(r, cfg));
    if (r.violation && !cfg.json) out(violationText(r, cfg));
    // Let stdout drain between seeds of a long run.
    if (results.length % 10 === 0) await new Promise((res) => setImmediate(res));
  }
  const totals = totalsOf(results, performance.now() - t0);
  out(lastLine(totals, cfg));
  return totals.violations > 0 ? 1 : 0;
}
