/**
 * `quorumd kv put --node <stopping node>,<live node>` against real processes: the
 * stopping node's 503 "this request was not tried: ask another node" sends the write on
 * to the next node of the list, where it is applied once. Before, it ended the command
 * (exit 3), although the next node was up: a rolling restart failed every script whose
 * list began with the node being restarted, when its request met the node's stop.
 *
 * How the request is made to meet the stop: the node is stopped (SIGSTOP) and sent
 * SIGTERM, which stays pending; the CLIs connect and send their requests, which the
 * kernel holds for the node (the handshake is the kernel's); then SIGCONT. The node
 * must take the signal (and begin its stop) before it reads a CLI's request. It accepts
 * one connection per turn of its event loop and reads it in a later turn, but the
 * signal may reach one of its other threads and so its loop a few turns late: one run
 * in about a dozen, without more, had the first CLI's request read (and applied) before
 * the stop began. So 40 connections that send nothing are queued ahead of the CLIs:
 * the node accepts those first, one per turn, which gives the signal 40 turns to arrive.
 * One CLI with that node alone shows the 503 the other one passed over.
 *
 * Real processes: a `quorumd broker` and three `quorumd start`; the CLIs are
 * `node bin/quorumd.js` children. Every wait is bounded.
 */
import * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { call } from '../../../daemon/client/http.ts';
import { ESTABLISHED, tcpSocketsOn } from '../../../daemon/http/listen-backlog.ts';
import { testToken } from '../../helpers/auth.ts';
import { runCli } from '../../helpers/capture.ts';
import { ProcCluster } from './proc-cluster.ts';

let cluster: ProcCluster | undefined;
const idle: net.Socket[] = [];
afterAll(async () => {
  for (const s of idle.splice(0)) s.destroy();
  await cluster?.stop();
});

/**
 * Connections to `port` on 127.0.0.1 that the kernel completed (ESTABLISHED, on the
 * server's side) and that hold bytes the node has not read: requests sent, waiting.
 */
function requestsWaiting(port: number): number {
  return tcpSocketsOn(port).filter((x) => x.state === ESTABLISHED && x.rxQueue > 0).length;
}

describe('the CLI with a --node list during a node\'s stop (real processes)', () => {
  it('kv put --node <stopping>,<live>: the 503 not tried is passed over and the write applied once, on the live node', async () => {
    cluster = await ProcCluster.start(3);
    const c = cluster;
    const leader = await c.waitLeader(60_000);
    const target = c.nodes.find((n) => n !== leader && n.child)!;
    const port = Number(new URL(target.url).port);
    const token = testToken();
    const exited = new Promise<number | null>((r) => target.child!.once('exit', (code) => r(code)));

    c.kill(target, 'SIGSTOP');
    c.kill(target, 'SIGTERM'); // pending until SIGCONT
    // Ahead of the CLIs in the node's accept queue (see the header): connected, silent.
    await Promise.all(
      Array.from({ length: 40 }, () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve());
          s.on('error', () => undefined); // reset or closed by the stopping node: expected
          s.once('error', reject);
          idle.push(s);
        }),
      ),
    );
    const alone = runCli(['kv', 'put', 'cli503/alone', 'a', '--node', target.url], token);
    const listed = runCli(['kv', 'put', 'cli503/listed', 'b', '--node', `${target.url},${leader.url}`], token);
    // Both requests are in the kernel, waiting for the stopped node (bounded: 30 s).
    for (let i = 0; i < 600 && requestsWaiting(port) < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(requestsWaiting(port), 'both requests sent to the stopped node').toBe(2);
    c.kill(target, 'SIGCONT');

    const [a, l] = await Promise.all([alone, listed]);
    // The node alone: its answer, 503 not tried (exit 3, not applied).
    expect(a.code, `the CLI with the stopping node alone: ${a.err}${a.out}`).toBe(3);
    expect(a.err).toMatch(new RegExp(`^quorumd kv put: 503: node ${target.name} is stopping; this request was not tried: ask another node\\n$`));
    // The list: passed over to the leader, applied there.
    expect(l.code, `the CLI with the list: ${l.err}${l.out}`).toBe(0);
    expect(l.out).toMatch(/^index=\d+\n$/);
    expect(l.err).toBe('');
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('no exit within 30 s'), 30_000))])).toBe(0);

    // Applied once, through the leader; the one the stopping node refused, nowhere.
    const got = await call(leader.url, 'GET', '/v1/kv/cli503/listed', { timeoutMs: 5000 });
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe('b');
    expect((await call(leader.url, 'GET', '/v1/kv/cli503/alone', { timeoutMs: 5000 })).status).toBe(404);
  }, 180_000);
});
