/**
 * `quorumd dev --nodes 5`, real processes: a leader SIGTERMed while the node it hands
 * over to is SIGSTOPped cannot finish its hand-over; after the bound it stops anyway,
 * closing its broker connection in order (its signed goodbye, then DISCONNECT: no will).
 * The survivors take that goodbye as the hint a will is (docs/mqtt.md, "The goodbye") —
 * the 'peer gone' line with how "goodbye" — instead of waiting out an election timeout.
 * Every wait is a bounded poll; the stopped node is resumed before the cluster stops.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster, type DevNode } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { devToken, waitSettled } from './e2e/dev-failover.ts';

let dev: DevCluster | undefined;
let stopped: DevNode | undefined;
afterAll(async () => {
  stopped?.child?.kill('SIGCONT');
  await dev?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logLines(n: DevNode): Array<Record<string, unknown>> {
  let text = '';
  try {
    text = readFileSync(n.logFile, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return {};
    }
  });
}

describe('quorumd dev: a leader whose hand-over did not finish says goodbye, and the survivors act on it', () => {
  it('raft, 5 nodes: the transferee SIGSTOPped, the leader SIGTERMed: every running survivor logs the goodbye as peer gone', async () => {
    const base = await freeBasePort(5);
    dev = await startDev({ nodes: 5, engine: 'raft', basePort: base, jobs: [], handleSignals: false, out: () => {}, progress: () => {} });
    const token = devToken(dev);
    const leaderName = await waitSettled(dev, token, 30_000);
    expect(leaderName).not.toBeNull();
    const leader = dev.nodes.find((n) => n.name === leaderName)!;
    // Settled: every follower holds the leader's whole log (no writes since the election;
    // the leader's status shows each one's match), so the leader hands over to the
    // lowest-numbered one (the first of its equals). Polled, not slept: on a busy machine
    // a follower can lag, and the leader would then pick another.
    let caughtUp = false;
    for (let i = 0; i < 300 && !caughtUp; i++) {
      const r = await call(leader.url, 'GET', '/v1/status', { timeoutMs: 2000, token }).catch(() => undefined);
      const st = r?.status === 200 ? (JSON.parse(r.body.toString()) as { commitIndex: number; peers: Array<{ match?: number }> }) : undefined;
      caughtUp = st !== undefined && st.commitIndex > 0 && st.peers.length === 4 && st.peers.every((p) => p.match === st.commitIndex);
      if (!caughtUp) await sleep(100);
    }
    expect(caughtUp, 'every follower holds the leader\'s whole log').toBe(true);
    const followers = dev.nodes.filter((n) => n !== leader);
    const target = followers[0]!;
    const survivors = followers.slice(1);
    stopped = target;
    expect(target.child!.kill('SIGSTOP')).toBe(true);
    await sleep(300);
    const child = leader.child!;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    expect(child.kill('SIGTERM')).toBe(true);
    // The bound of the hand-over (4 s in dev) and the stop: generous.
    await Promise.race([exited, sleep(30_000)]);
    expect(child.exitCode ?? child.signalCode, 'the leader exited').not.toBeNull();
    const ll = logLines(leader);
    const handed = ll.find((l) => l.msg === 'SIGTERM: transferring leadership before exit');
    expect(handed?.to, 'the leader handed over to the stopped node').toBe(target.id);
    expect(ll.some((l) => l.msg === 'leadership transfer did not finish in time; stopping anyway'), JSON.stringify(ll.slice(-10))).toBe(true);
    // Every running survivor heard the goodbye and let go of the leader on it.
    for (const n of survivors) {
      let seen: Record<string, unknown> | undefined;
      for (let i = 0; i < 100 && !seen; i++) {
        seen = logLines(n).find((l) => l.msg === 'peer gone' && l.peer === leader.id);
        if (!seen) await sleep(50);
      }
      expect(seen, `${n.name}: ${JSON.stringify(logLines(n).slice(-8))}`).toBeDefined();
      expect(seen!.how, n.name).toBe('goodbye');
      expect(seen!.leader, n.name).toBe(leader.id);
    }
    // And a write commits through a survivor (bounded; the log lines above are the check
    // that holds on a busy machine).
    let put = await call(survivors.at(-1)!.url, 'PUT', '/v1/kv/after-goodbye', { body: 'yes', timeoutMs: 3000, token }).catch(() => undefined);
    for (let i = 0; i < 40 && put?.status !== 200; i++) {
      await sleep(250);
      put = await call(survivors.at(-1)!.url, 'PUT', '/v1/kv/after-goodbye', { body: 'yes', timeoutMs: 3000, token }).catch(() => undefined);
    }
    expect(put?.status).toBe(200);
    // The stop waited for its links' orderly close: the broker dropped the will, so no
    // survivor also heard one (under load the process used to exit before the goodbye's
    // PUBACK, and the will followed in about one planned stop in five).
    for (const n of survivors) expect(logLines(n).filter((l) => l.msg === 'peer gone' && l.peer === leader.id && l.how === 'will'), n.name).toEqual([]);
    target.child!.kill('SIGCONT');
    stopped = undefined;
    await dev.stop();
    dev = undefined;
  }, 120_000);
});
