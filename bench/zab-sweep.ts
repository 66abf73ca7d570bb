/**
 * ZAB engine sweep: the randomized runs of test/src/zab/chaos.ts over many seeds and
 * several memberships, every invariant (src/zab/invariants.ts) checked after every
 * step. Prints one line per configuration: seeds, violations (with the first seeds
 * that failed and why), transactions applied, leaders established, reads checked, and
 * wall time. A seed that fails replays exactly: `--seeds N..N --config NAME`.
 *
 *   npx tsx bench/zab-sweep.ts [--seeds 1..300] [--config all|five|three-snap|witness|full|harsh]
 *   npm run bench -- zab-sweep          (seeds 1..100)
 *
 * It prints numbers and never fails on them; `violations` must be 0.
 */
import { chaos, type ChaosOptions } from '../test/src/zab/chaos.ts';

const CONFIGS: Record<string, ChaosOptions> = {
  five: { voters: 5 },
  'three-snap': { voters: 3, snapshots: true, reads: true },
  witness: { voters: 2, witnesses: 1, observers: 1, snapshots: true, reads: true },
  full: { voters: 5, snapshots: true, reads: true },
  harsh: { voters: 5, reads: true, leaderFault: 0.01, torn: 0.02, crashMid: 0.01, net: { drop: 0.15, dup: 0.1, minDelay: 0, maxDelay: 12 } },
};

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

const range = arg('seeds', '1..100').match(/^(\d+)\.\.(\d+)$/);
if (!range) {
  console.error('zab-sweep: --seeds expects A..B (e.g. 1..300)');
  process.exit(2);
}
const [from, to] = [Number(range[1]), Number(range[2])];
const which = arg('config', 'all');
const names = which === 'all' ? Object.keys(CONFIGS) : [which];
for (const n of names) {
  if (!CONFIGS[n]) {
    console.error(`zab-sweep: unknown --config ${n} (expected all or one of ${Object.keys(CONFIGS).join(', ')})`);
    process.exit(2);
  }
}

let total = 0;
for (const name of names) {
  const started = performance.now();
  let violations = 0;
  let applied = 0;
  let establishments = 0;
  let reads = 0;
  const firsts: string[] = [];
  for (let seed = from; seed <= to; seed++) {
    try {
      const r = chaos(seed, CONFIGS[name]!);
      applied += r.applied;
      establishments += r.establishments;
      reads += r.reads;
    } catch (e) {
      violations++;
      if (firsts.length < 5) firsts.push(`seed ${seed}: ${(e as Error).message.slice(0, 200)}`);
    }
  }
  total += violations;
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${name}: seeds=${to - from + 1} violations=${violations} applied=${applied} establishments=${establishments} reads_checked=${reads} wall=${secs}s`);
  for (const f of firsts) console.log(`  ${f}`);
}
console.log(`zab-sweep: configs=${names.length} seeds=${from}..${to} violations=${total}`);
