/**
 * Issue 8 acceptance: a 3-node `quorumd dev` cluster (real processes, embedded broker,
 * simulated relays) with a job every second that appends its slot, node and fencing
 * token to a file; over 60 s the active leader is SIGKILLed twice. Prints the runs,
 * duplicate slots (must be 0), missing slots inside and outside the failover windows,
 * and the time from each kill to the first run after it.
 *
 *   npx tsx bench/jobs-failover.ts [seconds=60] [kills=2]
 */
import { runJobsScenario } from '../test/daemon/e2e/jobs-harness.ts';

const seconds = Math.max(10, Number(process.argv[2] ?? 60));
const kills = Math.max(0, Number(process.argv[3] ?? 2));
const r = await runJobsScenario({ durationMs: seconds * 1000, kills, log: (s) => console.log(`  ${s}`) });
console.log(
  `jobs failover (${seconds} s, ${kills} leader kills, job every 1 s): runs=${r.runs} duplicates=${r.duplicates.length} ` +
    `missing=${r.missing.length} (in failovers ${r.missingInFailovers}, logged missed by a busy node ${r.missingLogged.length}, outside ${r.missingOutside.length}) tokens_monotonic=${r.tokensMonotonic}`,
);
for (const f of r.failovers) console.log(`  kill of ${f.killed}: first run ${f.toFirstRunMs === null ? 'never' : `${f.toFirstRunMs} ms`} after the kill`);
console.log(`  runs by node: ${JSON.stringify(r.byNode)}`);
if (r.missingOutside.length) console.log(`  missing outside failovers: ${r.missingOutside.map((s) => new Date(s).toISOString()).join(', ')}`);
if (r.duplicates.length) console.log(`  DUPLICATES: ${r.duplicates.join(', ')}`);
process.exitCode = r.duplicates.length === 0 && r.tokensMonotonic ? 0 : 1;
