/**
 * Every node of a cluster stopped at once (SIGTERM to all: `quorumd dev` on Ctrl-C, a
 * shutdown of every board). The leader starts a leadership transfer, but the followers
 * are leaving too: it must see that the node it hands over to is gone (its orderly
 * "offline" on MQTT) and stop, not wait out the transfer's whole bound (four seconds with
 * the default timeouts, the time `quorumd dev` took to stop). Real processes, a real broker.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcCluster } from './proc-cluster.ts';

let cluster: ProcCluster | undefined;
afterAll(async () => {
  await cluster?.stop();
});

describe('SIGTERM to every node at once', () => {
  it('the leader gives up its transfer when the node it went to is gone, and every node exits 0', async () => {
    cluster = await ProcCluster.start(3);
    const leader = await cluster.waitLeader(60_000);
    const exits = cluster.nodes.map((n) => new Promise<number | null>((r) => n.child!.once('exit', (code) => r(code))));
    for (const n of cluster.nodes) cluster.kill(n, 'SIGTERM');
    const codes = await Promise.race([Promise.all(exits), new Promise<string>((r) => setTimeout(() => r('not every node exited within 60 s'), 60_000))]);
    expect(codes).toEqual([0, 0, 0]);
    const log = readFileSync(leader.log, 'utf8');
    // Either the transferee won before it left, or the leader saw it go: never the bound.
    expect(log).not.toContain('leadership transfer did not finish in time');
    expect(log).toMatch(/leadership transfer abandoned: the node it went to is gone|"msg":"leadership transferred"|no voter is reachable to take over/);
  }, 150_000);
});
