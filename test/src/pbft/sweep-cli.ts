/**
 * The PBFT sweep from the command line (until `quorumd sim --engine pbft` hosts the
 * engine in the whole-cluster simulator):
 *
 *   npx tsx test/src/pbft/sweep-cli.ts --seeds 1..300 --nodes 4 [--faults byzantine,partition,crash,loss,reorder]
 *       [--bug commitQuorumMinusOne|viewChangeDropsPrepared] [--ed25519] [--wire] [--json]
 *
 * One line per seed (trace hash included: the same seed gives the same trace), then
 * `seeds=<n> violations=<n> liveness_failures=<n> ...`. Exits 1 if any seed failed.
 */
import { ALL_FAULTS, runSeed, type SweepOptions } from './sweep.ts';

const args = process.argv.slice(2);
const get = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const seedsArg = get('--seeds') ?? '1..20';
const m = /^(\d+)(?:\.\.(\d+))?$/.exec(seedsArg);
if (!m) {
  console.error(`--seeds: expected N or A..B, got ${JSON.stringify(seedsArg)}`);
  process.exit(2);
}
const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
const n = Number(get('--nodes') ?? 4);
if (!Number.isInteger(n) || n < 4 || n > 20) {
  console.error(`--nodes: expected an integer 4..20, got ${get('--nodes')}`);
  process.exit(2);
}
const faultNames = (get('--faults') ?? [...ALL_FAULTS].join(',')).split(',').filter(Boolean);
for (const f of faultNames) {
  if (!ALL_FAULTS.has(f as never)) {
    console.error(`--faults: unknown fault ${JSON.stringify(f)}; expected some of ${[...ALL_FAULTS].join(',')}`);
    process.exit(2);
  }
}
const bug = get('--bug');
if (bug !== undefined && bug !== 'commitQuorumMinusOne' && bug !== 'viewChangeDropsPrepared') {
  console.error(`--bug: expected commitQuorumMinusOne or viewChangeDropsPrepared, got ${JSON.stringify(bug)}`);
  process.exit(2);
}
const o: SweepOptions = {
  n,
  faults: new Set(faultNames) as SweepOptions['faults'],
  honestOptions: bug ? { testingBugs: { [bug]: true } } : undefined,
  auth: args.includes('--ed25519') ? 'ed25519' : 'simulated',
  wire: args.includes('--wire'),
};
let violations = 0;
let liveness = 0;
let accepted = 0;
let viewChanges = 0;
let transfers = 0;
const t0 = performance.now();
for (let seed = a; seed <= b; seed++) {
  try {
    const r = runSeed(seed, o);
    accepted += r.accepted;
    viewChanges += r.viewChanges;
    transfers += r.stateTransfers;
    const byz = Object.entries(r.byzantine).map(([id, k]) => `${id}:${k.join('+')}`).join(' ') || 'none';
    if (args.includes('--json')) console.log(JSON.stringify(r));
    else console.log(`seed=${seed} ok executed=${r.executed} accepted=${r.accepted}/${r.submitted} view_changes=${r.viewChanges} state_transfers=${r.stateTransfers} live_after=${r.liveAfter} byzantine=${byz} trace=${r.trace}`);
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.includes('pbft invariant')) violations++;
    else liveness++;
    console.log(`seed=${seed} FAILED ${msg.slice(0, 400)}`);
  }
}
console.log(`seeds=${b - a + 1} nodes=${n} violations=${violations} liveness_failures=${liveness} accepted=${accepted} view_changes=${viewChanges} state_transfers=${transfers} wall_s=${((performance.now() - t0) / 1000).toFixed(1)}`);
process.exitCode = violations + liveness > 0 ? 1 : 0;
