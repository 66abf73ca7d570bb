/**
 * `npm run bench`: runs every benchmark in bench/ in turn, each in its own process
 * (so one benchmark's heap and JIT state do not colour the next), and prints their
 * numbers. `npm run bench -- NAME...` runs only the named ones (file name without .ts);
 * flags after them go to each, e.g. `npm run bench -- soak-load --minutes 2` or
 * `npm run bench -- engine-failover --engine zab --kills 10` (each file's header lists
 * its own). Benchmarks print numbers; they never pass or fail on them.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = import.meta.dirname;
// `npm run bench -- NAME... [--flag value...]`: flags (and their values) go to every chosen benchmark.
const args = process.argv.slice(2);
const wanted: string[] = [];
const flags: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (!a.startsWith('--')) {
    wanted.push(a);
    continue;
  }
  flags.push(a);
  if (args[i + 1] !== undefined && !args[i + 1]!.startsWith('--') && !a.includes('=')) flags.push(args[++i]!);
}
// A bench told to run for --minutes M gets M more minutes than the usual 20 before it is stopped.
const mIdx = flags.indexOf('--minutes');
const runMinutes = mIdx >= 0 && Number.isFinite(Number(flags[mIdx + 1])) ? Math.max(0, Number(flags[mIdx + 1])) : 0;
const all = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark(s) ${unknown.join(', ')}; expected one of: ${all.join(', ')}`);
  process.exit(2);
}
const chosen = wanted.length > 0 ? wanted : all;
let failed = 0;
for (const name of chosen) {
  console.log(`\n=== ${name} ===`);
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, `${name}.ts`), ...flags], { stdio: 'inherit', timeout: 20 * 60_000 + runMinutes * 60_000 });
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    failed++;
    console.log(`=== ${name}: exited with ${r.status ?? r.signal} after ${secs} s ===`);
  } else {
    console.log(`=== ${name}: done in ${secs} s ===`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
