/**
 * Issue 17's actuation on real processes: `quorumd dev --engine pbft` with simulated
 * relays and node n4 lying (`--byzantine-node 4`: wrong replies, and it votes to fence
 * every other node all the time). While every honest node hears every other, the liar's
 * votes fence nobody. Then `kill -STOP` of n2: the honest nodes stop hearing it, vote
 * (signed requests through the log), and on the committed f + 1st vote the nodes wired
 * to n2's relay switch it off; the dev supervisor powers it on again after the delay.
 * Bounded polling, generous bounds (a loaded 2-core machine).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { startDev, type DevCluster } from '../../../daemon/dev.ts';
import { logLines, poll, status } from './helpers.ts';
import { call } from '../../../daemon/client/http.ts';
import { freeBasePort } from '../../helpers/ports.ts';

let dev: DevCluster | undefined;
let stopped: number | undefined;
afterAll(async () => {
  if (stopped !== undefined) {
    try {
      process.kill(stopped, 'SIGCONT');
    } catch {
      // gone already (fenced: SIGKILLed by the supervisor)
    }
  }
  const dir = dev?.dir;
  await dev?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  delete process.env.QUORUMD_API_TOKEN_FILE;
});

describe('quorumd dev --engine pbft with simulated relays', () => {
  it('a liar\'s votes fence nobody; a stopped node is fenced on f + 1 committed votes and powered on again', async () => {
    const base = await freeBasePort(4);
    const powerOnAfterMs = 3000;
    let printed = '';
    dev = await startDev({ nodes: 4, engine: 'pbft', byzantineNode: 4, byzantineMode: 'wrong-reply', basePort: base, handleSignals: false, powerOnAfterMs, out: (s) => (printed += s), progress: () => {}, readyTimeoutMs: 90_000 });
    process.env.QUORUMD_API_TOKEN_FILE = dev.tokenFile;
    expect(printed).toMatch(/relays\s+simulated/);
    const [n1, n2, n3, n4] = dev.nodes as [typeof dev.nodes[0], typeof dev.nodes[0], typeof dev.nodes[0], typeof dev.nodes[0]];

    // The liar votes against the others (its log says so), and its votes execute: nothing is fenced.
    await poll('the liar\'s false votes', 60_000, async () => (logLines(n4.logFile).some((l) => /^TESTING ONLY: lying vote to fence n\d/.test(l.msg)) ? true : undefined));
    const t0 = Date.now();
    await poll('12 s with the liar voting', 20_000, async () => (Date.now() - t0 >= 12_000 ? true : undefined));
    expect(dev.railLog.filter((e) => !e.on), JSON.stringify(dev.railLog)).toEqual([]);

    // kill -STOP n2: the others fence it.
    const pid = n2.child!.pid!;
    process.kill(pid, 'SIGSTOP');
    stopped = pid;
    const stoppedAt = Date.now();
    const off = await poll('n2\'s relay off', 90_000, async () => dev!.railLog.find((e) => e.node === n2.name && !e.on));
    expect(off.atMs).toBeGreaterThan(0);
    // An honest node's log: it voted because it had not heard n2, and the decision counted f + 1 = 2 members.
    const honestLogs = [n1, n3].map((n) => logLines(n.logFile));
    expect(honestLogs.some((ls) => ls.some((l) => l.msg.startsWith('pbft fencing: n2 not heard for')))).toBe(true);
    const decided = honestLogs.flat().map((l) => /^pbft fencing: fencing n2: committed decision at (\d+) by (.*)$/.exec(l.msg)).find((m) => m !== null);
    expect(decided, 'a node wired to n2 logged the decision').toBeDefined();
    const by = decided![2]!.split(', ');
    expect(by.length).toBeGreaterThanOrEqual(2);
    expect(by).not.toContain('n2');
    // The fence record: off (verified), on a node that drives n2's relay.
    const rec = await poll('a finished fence of n2 in a node\'s status', 30_000, async () => {
      for (const n of [n1, n3, n4]) {
        const s = await status(n.url).catch(() => undefined);
        const local = (s?.fences as { local?: Array<Record<string, unknown>> } | undefined)?.local ?? [];
        const r = local.find((x) => x.target === n2.name && x.outcome !== 'pending');
        if (r) return r;
      }
      return undefined;
    });
    expect(['off', 'already-off']).toContain(rec.outcome);
    stopped = undefined; // SIGKILLed by the supervisor when its rail went off

    // Powered on after the delay: a new process, back in the cluster.
    await poll('n2 powered on and running again', 60_000, async () => {
      if (!dev!.railLog.some((e) => e.node === n2.name && e.on)) return undefined;
      const c = n2.child;
      if (!c || c.pid === pid) return undefined;
      return status(n2.url).catch(() => undefined); // the new process answers
    });
    const onAt = dev.railLog.find((e) => e.node === n2.name && e.on)!.atMs;
    expect(onAt - off.atMs).toBeGreaterThanOrEqual(powerOnAfterMs - 50);
    expect(Date.now() - stoppedAt).toBeLessThan(150_000);
    // An operator's `quorumd fence n3` on one node is one node's word, not a decision: refused, nothing switched.
    const op = await call(n1.url, 'POST', '/v1/fence/n3', { timeoutMs: 15_000 });
    expect(op.status).toBeGreaterThanOrEqual(400);
    expect(op.body.toString()).toMatch(/engine pbft: a board is fenced only on a committed decision of f \+ 1 members/);
    // Only n2 was ever switched off.
    expect([...new Set(dev.railLog.filter((e) => !e.on).map((e) => e.node))]).toEqual([n2.name]);
  }, 300_000);
});
