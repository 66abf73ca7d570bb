/**
 * `npm run bench -- engine-failover [--engine paxos|zab|raft] [--kills N] [--relays true]`: a
 * `quorumd dev` cluster of 3 real processes on 127.0.0.1 (in-process MQTT broker,
 * keepalive 5 s, engine defaults; no relays unless `--relays true`, which is what
 * `quorumd dev` runs by default: simulated relays, so fencing and lease reads on); N times (default 10): SIGKILL the
 * leader's process, then write through both survivors (one request at a time each,
 * a new one as soon as the last answered) until one write is acknowledged. Measured:
 * kill → that first acknowledged write (the time a client sees the cluster unable to
 * write). The killed node is started again and the cluster settles before the next.
 *
 * On SIGKILL the broker sees the socket close and sends the node's Last Will at once,
 * so the survivors campaign at once (campaignOnPeerGone) instead of waiting out an
 * election timeout: these are process-crash figures, not power-cut ones.
 *
 * Prints the machine load (`uptime`) before and after: on a busy machine the figures
 * mostly measure the scheduler. The build in dist/ must be current (`npm run build`).
 */
import { execSync } from 'node:child_process';
import { startDev } from '../daemon/dev.ts';
import { freeBasePort } from '../test/helpers/ports.ts';
import { devToken, killLeaderRound, restartAndSettle, waitSettled } from '../test/daemon/e2e/dev-failover.ts';
import { ensureBuilt } from '../scripts/build.mjs';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const ENGINE = arg('engine', 'paxos');
const KILLS = Number(arg('kills', '10'));
const RELAYS = arg('relays', 'false');
if (!['paxos', 'zab', 'raft'].includes(ENGINE)) {
  console.error(`--engine: expected paxos, zab or raft, got ${ENGINE}`);
  process.exit(2);
}
if (RELAYS !== 'true' && RELAYS !== 'false') {
  console.error(`--relays: expected true or false, got ${RELAYS}`);
  process.exit(2);
}
if (!Number.isInteger(KILLS) || KILLS < 1 || KILLS > 1000) {
  console.error(`--kills: expected an integer 1..1000, got ${arg('kills', '10')}`);
  process.exit(2);
}

const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

await ensureBuilt();
console.log(`load before: ${execSync('uptime').toString().trim()}`);
const dev = await startDev({ nodes: 3, engine: ENGINE, basePort: await freeBasePort(3), handleSignals: false, relays: RELAYS === 'true', out: () => {}, progress: () => {}, readyTimeoutMs: 60_000 });
const token = devToken(dev);
const ms: number[] = [];
let failed = 0;
try {
  for (let k = 1; k <= KILLS; k++) {
    const r = await killLeaderRound(dev, token, k);
    if (r.writeMs < 0) failed++;
    else ms.push(r.writeMs);
    console.log(`kill ${k}: ${r.killed} → first write acknowledged via ${r.via || '-'} after ${r.writeMs < 0 ? 'none within 20 s' : `${r.writeMs.toFixed(0)} ms`} (leader now ${r.newLeader ?? 'unknown'})`);
    if ((await restartAndSettle(dev, token, r.killed)) === null) console.log(`  (the cluster did not settle within 20 s after ${r.killed} restarted)`);
    else await waitSettled(dev, token);
  }
} finally {
  await dev.stop();
}
const s = [...ms].sort((a, b) => a - b);
console.log(
  `engine-failover ${ENGINE}, 3 processes, MQTT (in-process broker), ${RELAYS === 'true' ? 'simulated relays (fencing on)' : 'no relays'}, SIGKILL of the leader: ${s.length}/${KILLS} kills with a write within 20 s` +
    (s.length > 0 ? `; kill → first acknowledged write: median ${q(s, 50).toFixed(0)} ms, p99 ${q(s, 99).toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ${s.at(-1)!.toFixed(0)}` : '') +
    (failed > 0 ? `; ${failed} without` : ''),
);
console.log(`load after: ${execSync('uptime').toString().trim()}`);
