/**
 * End-to-end, Jepsen-style: a `quorumd broker` and three `quorumd start` processes;
 * concurrent clients put/get/cas a few keys through random nodes while the test
 * SIGKILLs the leader, restarts it, and pauses a node with SIGSTOP/SIGCONT. The
 * recorded history must be linearizable (src/lin), every acknowledged write must
 * survive (the final reads are part of the history), and after the leader's death
 * the cluster must commit again.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { checkLinearizable, type HistoryOp } from '../../../src/lin/index.ts';
import { Rng } from '../../../src/rng.ts';
import { call } from '../../../daemon/client/http.ts';
import { runWorkload } from '../../../daemon/client/workload.ts';
import { ProcCluster } from './proc-cluster.ts';

let cluster: ProcCluster | undefined;
afterAll(async () => {
  await cluster?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('end-to-end: real processes, real broker', () => {
  it('survives SIGKILL of the leader, restart, and SIGSTOP/SIGCONT: linearizable, nothing acknowledged lost', async () => {
    cluster = await ProcCluster.start(3);
    const c = cluster;
    await c.waitLeader(30_000);
    const rng = new Rng(20261128);
    const keys = ['a', 'b', 'c'];
    const commits: number[] = [];
    const t0 = performance.now();
    const work = runWorkload({
      nodes: c.nodes.map((n) => n.url),
      keys,
      clients: 6,
      until: t0 + 9000,
      timeoutMs: 1000,
      random: () => rng.float(),
      onCommit: (t) => commits.push(t),
    });

    // Nemesis, on a fixed schedule.
    await sleep(1500);
    const leader = await c.waitLeader(5000);
    const killedAt = performance.now();
    c.kill(leader, 'SIGKILL');
    await c.waitFor(async () => commits.some((t) => t > killedAt), 10_000, 'a committed write after the leader was killed');
    const failoverMs = Math.min(...commits.filter((t) => t > killedAt)) - killedAt;
    await sleep(1000);
    c.spawn(leader);
    await sleep(2000);
    const paused = c.nodes[0]!;
    c.kill(paused, 'SIGSTOP');
    await sleep(1500);
    c.kill(paused, 'SIGCONT');
    const { history, counts } = await work;

    // Quiesce, then a linearizable final read of every key through every node.
    await c.waitLeader(15_000);
    const finals: HistoryOp[] = [];
    for (const node of c.nodes) {
      for (const key of keys) {
        const t = performance.now();
        const r = await call(node.url, 'GET', `/v1/kv/${key}`, { timeoutMs: 3000 });
        expect([200, 404]).toContain(r.status);
        finals.push({ client: 1000, op: 'get', key, output: r.status === 200 ? (JSON.parse(r.body.toString()) as string) : null, call: t, ret: performance.now() });
      }
    }
    const full = [...history, ...finals];
    const res = checkLinearizable(full);
    if (res.ok !== true) console.error(JSON.stringify(res, null, 1).slice(0, 3000));
    expect(res.ok).toBe(true);

    // Every acknowledged write happened: the final value of each key was written by
    // an op that did not fail, and no acknowledged put or cas is missing from the
    // chain the checker accepted (the finals pin the end state).
    const okWrites = history.filter((o) => (o.op === 'put' && o.ret !== null) || (o.op === 'cas' && o.output === 'ok')).length;
    console.log(`e2e: ${history.length} ops (${okWrites} acknowledged writes), counts ${JSON.stringify(counts)}, failover ${failoverMs.toFixed(0)} ms`);
    expect(okWrites).toBeGreaterThan(50);
    expect(failoverMs).toBeLessThan(10_000);
    // The killed leader came back and caught up.
    const st = await call(c.nodes.find((n) => n.name === leader.name)!.url, 'GET', '/v1/status', { timeoutMs: 2000 });
    expect(st.status).toBe(200);
  }, 60_000);
});
