/**
 * SIGHUP: `quorumd start` run from a terminal whose session ends (an SSH connection that
 * drops, without nohup or systemd). Node's default ended the process at once: a leader
 * gone without handing over, its job runs left going. It stops as on SIGTERM: exit 0,
 * leadership handed over first. Real processes, a real broker.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcCluster } from './proc-cluster.ts';

let cluster: ProcCluster | undefined;
afterAll(async () => {
  await cluster?.stop();
});

describe('SIGHUP to a node', () => {
  it('the leader stops as on SIGTERM: it hands over, logs why, and exits 0', async () => {
    cluster = await ProcCluster.start(3);
    const leader = await cluster.waitLeader(60_000);
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => leader.child!.once('exit', (code, signal) => r({ code, signal })));
    cluster.kill(leader, 'SIGHUP');
    const how = await Promise.race([exit, new Promise<string>((r) => setTimeout(() => r('the leader did not exit within 60 s'), 60_000))]);
    expect(how).toEqual({ code: 0, signal: null });
    const stopping = readFileSync(leader.log, 'utf8').split('\n').find((l) => l.includes('"msg":"stopping"'));
    expect(stopping && JSON.parse(stopping)).toMatchObject({ signal: 'SIGHUP' });
    // Another node leads (handed over, or elected at once on the will).
    const next = await cluster.waitLeader(60_000);
    expect(next.name).not.toBe(leader.name);
  }, 180_000);
});
