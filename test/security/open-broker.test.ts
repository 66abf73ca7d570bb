/**
 * Security acceptance on an open broker (Debian's mosquitto with anonymous access: a
 * user's own broker without the ACLs of examples/mosquitto): whatever the broker lets
 * through, the nodes themselves must hold. Three `quorumd start` processes.
 *
 *   - a forged "peer gone" (Last Will) for the leader: ignored and counted, no election
 *   - 300k bad-tag frames flooding the leader's inbox: 0 term changes, writes succeed
 *     (the p99 during the flood is printed; bench/flood.ts measures it on its own)
 *   - one 100 MB publish to the leader's inbox: the node cuts it at the header. (mosquitto
 *     does not pass a 100 MB packet on in time, so a second, permissive broker — aedes
 *     in this process with no packet limit — carries it; every node uses both brokers.)
 *
 * Raft timings as the other e2e tests on this shared machine (CALM_RAFT_YAML); the
 * benchmark runs the defaults.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../../daemon/client/http.ts';
import { encodePresence } from '../../hal/mqtt/presence.ts';
import { CALM_RAFT_YAML, Harness, metricValue, mosquittoCheck, type BrokerProc } from '../e2e/harness.ts';
import { flood } from './flood.ts';
import { startBroker, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { maxTerm, mqttClient, rssMiB, sleep, until } from './helpers.ts';

const mosq = mosquittoCheck();
let h: Harness;
let broker: BrokerProc;
let permissive: RunningBroker;

beforeAll(async () => {
  if (!mosq.run) return;
  h = new Harness();
  broker = await h.mosquitto();
  permissive = await startBroker({ port: 0, open: true, maxPacketBytes: 256 * 1024 * 1024 });
  await h.startCluster({ n: 3, links: () => ({ brokers: [broker.url, `mqtt://127.0.0.1:${permissive.port}`] }), raftYaml: CALM_RAFT_YAML });
  await h.waitLeader(60_000);
}, 120_000);
afterAll(async () => {
  await h?.dispose();
  if (permissive) await new Promise((r) => permissive.close(r));
});

const urls = () => h.nodes.filter((n) => n.child).map((n) => n.url);
const sumMetric = async (name: string, labels: Record<string, string>) => {
  let v = 0;
  for (const n of h.nodes) v += metricValue(await h.metrics(n), name, labels);
  return v;
};

describe.skipIf(!mosq.run)('nodes on an open broker', () => {
  it('a forged Last Will ("lost") of the leader is ignored and counted; nobody campaigns', async () => {
    const leader = await h.waitLeader();
    const term0 = await maxTerm(urls());
    const forged0 = await sumMetric('quorumd_link_errors_total', { kind: 'forgedPresence' });
    const bad0 = await sumMetric('quorumd_link_errors_total', { kind: 'badPresence' });
    const { c } = await mqttClient(broker.url);
    const topic = `quorumd/7/presence/${leader.id}`;
    // The reported attack (the old, unsigned format), and the new format signed with a wrong key.
    c.publish(topic, JSON.stringify({ node: leader.id, state: 'offline', reason: 'lost', inc: 'deadbeef.1' }));
    c.publish(topic, encodePresence({ node: leader.id, state: 'offline', reason: 'lost', boot: 0xfffffff0, conn: 1 }, 7, new Uint8Array(32).fill(9)));
    await until(async () => (await sumMetric('quorumd_link_errors_total', { kind: 'forgedPresence' })) - forged0 >= 2, 10_000, 'forged presence counted by the followers');
    expect((await sumMetric('quorumd_link_errors_total', { kind: 'badPresence' })) - bad0).toBeGreaterThanOrEqual(2);
    c.end(true);
    // A write forwarded through a follower still reaches the leader (the report got 504s).
    const follower = h.nodes.find((n) => n !== leader)!;
    const w = await call(follower.url, 'PUT', '/v1/kv/after-forgery', { body: 'x', timeoutMs: 10_000 });
    expect(w.status).toBe(200);
    await sleep(2500); // longer than an election timeout: a campaign would have shown by now
    expect(await maxTerm(urls())).toBe(term0);
    expect((await h.leader())?.name).toBe(leader.name);
  }, 60_000);

  it('300k bad-tag frames to the leader\'s inbox: 0 term changes, every write succeeds', async () => {
    const r = await flood(h, { brokerUrl: broker.url, cluster: 7, frames: 300_000 });
    console.log(`flood on an open mosquitto: ${r.frames} frames in ${r.floodSeconds.toFixed(1)} s; terms ${r.termBefore}->${r.termAfter}; writes ${r.writesOk} ok / ${r.writesFailed} failed; latency p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms max ${r.max.toFixed(1)} ms; leader dropped ${r.badTagDropped} bad-tag; RSS ${r.leaderRssMiB.before}->${r.leaderRssMiB.peak} MiB`);
    expect(r.frames).toBe(300_000);
    expect(r.termChanges).toBe(0);
    expect(r.leaderAfter).toBe(r.leaderBefore);
    expect(r.writesFailed, r.failures.join('; ')).toBe(0);
    expect(r.writesOk).toBeGreaterThan(0);
    expect(r.badTagDropped).toBeGreaterThan(0);
  }, 240_000);

  it('one 100 MB publish to the leader\'s inbox: cut at its header, the node does not grow by it', async () => {
    const leader = await h.waitLeader();
    const pid = leader.child!.pid!;
    const rss0 = rssMiB(pid);
    let peak = rss0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssMiB(pid));
      } catch {
        /* restarting */
      }
    }, 100);
    const over0 = metricValue(await h.metrics(leader), 'quorumd_link_errors_total', { kind: 'droppedOversizePackets' });
    const c = mqtt.connect(`mqtt://127.0.0.1:${permissive.port}`, { protocolVersion: 4, reconnectPeriod: 0 });
    await until(() => c.connected, 10_000, 'publisher connected');
    await new Promise<void>((resolve) => c.publish(`quorumd/7/to/${leader.id}`, Buffer.alloc(100 * 1000 * 1000, 0x42), { qos: 0 }, () => resolve()));
    try {
      // This process is busy pushing 100 MB through its broker meanwhile: a slow /metrics is retried.
      await until(async () => metricValue(await h.metrics(leader).catch(() => ''), 'quorumd_link_errors_total', { kind: 'droppedOversizePackets' }) > over0, 90_000, 'the leader cut the oversized packet');
    } finally {
      clearInterval(sampler);
      c.end(true);
    }
    expect(peak - rss0).toBeLessThan(64);
    // The node reconnects and the cluster keeps working.
    const w = await h.writes(() => leader, 5, 1, 'after-big');
    expect(w.latencies).toHaveLength(5);
  }, 120_000);
});
