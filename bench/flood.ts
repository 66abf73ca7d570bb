/**
 * The flood of the security review (issue 13), against real processes: 300k frames
 * with a bad tag published as fast as one MQTT client can to the leader's inbox (or a
 * topic no node reads), while 4 clients keep writing through the leader. Prints term
 * changes (0 is the goal), the writes during the flood with their p50/p99/max latency,
 * what the leader dropped, its RSS, and the machine's load (`uptime`): the numbers
 * depend on it, so compare runs on a quiet machine.
 *
 *   npm run bench -- flood                         anonymous mosquitto (an open broker: the worst case
 *                                                  for the node itself), default Raft timings
 *   node --import tsx bench/flood.ts [--frames 300000] [--target inbox|other]
 *        [--broker mosquitto|aedes] [--calm]
 *
 * --broker aedes: `quorumd broker --cluster-key-file` (closed); the flooder logs in with
 * a follower's derived password (a leaked node account: the worst a broker client can do)
 * and is slowed to its publish rate. --calm: election timeouts 1–2 s (as the tests).
 */
import { execFileSync } from 'node:child_process';
import { Harness, CALM_RAFT_YAML, mosquittoCheck } from '../test/e2e/harness.ts';
import { flood } from '../test/security/flood.ts';
import { nodePassword, nodeUsername } from '../hal/mqtt/credentials.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
};
const frames = Number(arg('frames', '300000'));
const target = arg('target', 'inbox') as 'inbox' | 'other';
const brokerKind = arg('broker', 'mosquitto');
const calm = process.argv.includes('--calm');

if (brokerKind === 'mosquitto' && !mosquittoCheck().run) process.exit(0);
const h = new Harness();
try {
  const b = brokerKind === 'aedes' ? await h.aedesChild() : await h.mosquitto();
  await h.startCluster({ n: 3, links: () => ({ brokers: [b.url] }), ...(calm ? { raftYaml: CALM_RAFT_YAML } : {}) });
  // A leaked node account (a follower's): the most a broker client can be.
  const creds = brokerKind === 'aedes' ? { credentialsOf: (n: number) => ({ username: nodeUsername(7, n), password: nodePassword(Buffer.from(h.key, 'hex'), 7, n) }) } : {};
  const load0 = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const r = await flood(h, { brokerUrl: b.url, cluster: 7, frames, target, ...creds });
  const load1 = execFileSync('uptime', { encoding: 'utf8' }).trim();
  console.log(`broker ${brokerKind}${brokerKind === 'aedes' ? ' (closed; flooder = a follower\'s node account)' : ' (anonymous)'}, target ${target}, raft ${calm ? 'calm (1-2 s, explicit)' : 'default (1-2 s)'}`);
  console.log(`flood: ${r.frames} frames in ${r.floodSeconds.toFixed(1)} s (${r.framesPerSec}/s)${r.flooderError ? `; flooder: ${r.flooderError}` : ''}`);
  console.log(`term ${r.termBefore} -> ${r.termAfter}: ${r.termChanges} term changes; leader ${r.leaderBefore} -> ${r.leaderAfter ?? '?'}`);
  console.log(`writes during the flood: ${r.writesOk} ok, ${r.writesFailed} failed${r.failures.length ? ` (${r.failures.join('; ')})` : ''}`);
  console.log(`write latency ms: p50 ${r.p50.toFixed(1)}  p99 ${r.p99.toFixed(1)}  max ${r.max.toFixed(1)}`);
  console.log(`leader dropped ${r.badTagDropped} bad-tag frames; leader RSS ${r.leaderRssMiB.before} -> peak ${r.leaderRssMiB.peak} MiB`);
  console.log(`load before: ${load0}\nload after:  ${load1}`);
} finally {
  await h.dispose();
}
