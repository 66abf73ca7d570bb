/**
 * MQTT links in `quorumd start`, end to end with real processes:
 *
 *   - the embedded aedes broker (hal/mqtt startBroker) with per-node accounts: the
 *     cluster elects and commits 200 writes from 16 clients with well under one fsync
 *     per entry on the leader (group commit); a client without credentials is refused; node 1's
 *     credentials cannot publish as node 2 (neither a frame whose header says node 2
 *     nor node 2's presence); a frame with a bad tag injected through the broker
 *     (a rogue client holding node 3's account but not the cluster key) is dropped
 *     and counted under reason="bad-tag" in the target's /metrics, and the cluster keeps
 *     its leader and term although the frame was a Vote for a far higher term;
 *   - two brokers, Debian's mosquitto and `quorumd broker`: killing one keeps the
 *     cluster committing; the writes after the kill went over mosquitto alone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { FrameSealer, Sender } from '../../src/wire/auth.ts';
import { MsgType } from '../../src/wire/messages.ts';
import { CALM_RAFT_YAML, Harness, metricValue, mosquittoCheck, waitFor } from './harness.ts';
import { call } from '../../daemon/client/http.ts';

const mosq = mosquittoCheck();
const harnesses: Harness[] = [];
const clients: mqtt.MqttClient[] = [];
afterAll(async () => {
  for (const c of clients) c.end(true);
  await Promise.all(harnesses.map((h) => h.dispose()));
});

const WRITES = 200;

/** Connects a raw MQTT 3.1.1 client; resolves with it once connected, or with the refusal error. */
async function rawClient(url: string, username?: string, password?: string): Promise<{ c: mqtt.MqttClient; err: Error | undefined }> {
  const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clientId: `rogue-${Math.random().toString(16).slice(2)}`, ...(username ? { username, password } : {}) });
  clients.push(c);
  let err: Error | undefined;
  c.on('error', (e) => (err = e));
  await waitFor(() => c.connected || err !== undefined, 10_000, 'raw client connect or refusal');
  return { c, err };
}

/** Publishes and waits until the broker either closes the connection (refusal) or the PUBACK arrives. */
async function publishOutcome(c: mqtt.MqttClient, topic: string, payload: Buffer): Promise<'closed' | 'accepted'> {
  let closed = false;
  let acked = false;
  c.on('close', () => (closed = true));
  c.publish(topic, payload, { qos: 1 }, (e) => {
    if (!e) acked = true;
  });
  await waitFor(() => closed || acked, 10_000, `outcome of a publish to ${topic}`);
  return closed ? 'closed' : 'accepted';
}

describe('MQTT links in quorumd start', () => {
  it('aedes with accounts: commits; refuses anonymous and impersonation; a bad-tag frame is dropped, counted, and changes nothing', async () => {
    const h = new Harness();
    harnesses.push(h);
    const pw = (k: number) => `secret-of-node-${k}`;
    const broker = await h.aedesInproc([1, 2, 3].map((k) => ({ username: `n${k}`, password: pw(k), nodeId: k, cluster: 7 })));
    const nodes = await h.startCluster({ n: 3, links: (k) => ({ brokers: [broker.url], username: `n${k}`, password: pw(k) }), raftYaml: CALM_RAFT_YAML });
    const leader = await h.waitLeader(30_000);
    const m00 = await h.metrics(leader);
    const w = await h.writes(() => leader, WRITES, 16, 'auth');
    expect(w.latencies).toHaveLength(WRITES);
    // Group commit under load: 16 clients share fsyncs (one client costs the leader 2 per write).
    const m01 = await h.metrics(leader);
    const fsyncs = metricValue(m01, 'quorumd_fsyncs_total') - metricValue(m00, 'quorumd_fsyncs_total');
    const entries = metricValue(m01, 'quorumd_commit_index') - metricValue(m00, 'quorumd_commit_index');
    expect(entries).toBeGreaterThanOrEqual(WRITES);
    expect(fsyncs / entries, `${fsyncs} fsyncs for ${entries} entries`).toBeLessThan(0.8);

    // No credentials: CONNACK "bad username or password".
    const anon = await rawClient(broker.url);
    expect(anon.c.connected).toBe(false);
    expect(anon.err?.message).toMatch(/bad user ?name or password|not authorized/i);

    // Node 1's account publishing a frame that says it is from node 2, and node 2's presence.
    const sealer2 = new FrameSealer({ cluster: 7, keyring: { current: Buffer.from(h.key, 'hex') }, sender: new Sender(1) });
    const asTwo = Buffer.from(sealer2.seal({ type: MsgType.Heartbeat, from: 2, to: 3, term: 1, commit: undefined, ctx: 0 }).frame);
    const imp = await rawClient(broker.url, 'n1', pw(1));
    expect(imp.err).toBeUndefined();
    expect(await publishOutcome(imp.c, 'quorumd/7/to/3', asTwo)).toBe('closed');
    const imp2 = await rawClient(broker.url, 'n1', pw(1));
    expect(await publishOutcome(imp2.c, 'quorumd/7/presence/2', Buffer.from('{"state":"offline","reason":"lost"}'))).toBe('closed');

    // A rogue with node 3's account but a wrong key injects a Vote for term 1000 to the leader.
    const before = await h.json(leader, '/v1/status');
    const m0 = await h.metrics(leader);
    const wrongKey = Buffer.alloc(32, 0x5a);
    const sealer3 = new FrameSealer({ cluster: 7, keyring: { current: wrongKey }, sender: new Sender(9) });
    const rogue = await rawClient(broker.url, 'n3', pw(3));
    expect(rogue.err).toBeUndefined();
    const vote = sealer3.seal({ type: MsgType.Vote, from: 3, to: leader.id, term: 1000, lastIndex: 1_000_000, lastTerm: 999, transfer: true }).frame;
    const N = 5;
    for (let i = 0; i < N; i++) expect(await publishOutcome(rogue.c, `quorumd/7/to/${leader.id}`, Buffer.from(vote))).toBe('accepted');
    await waitFor(async () => metricValue(await h.metrics(leader), 'quorumd_dropped_frames_total', { reason: 'bad-tag' }) >= metricValue(m0, 'quorumd_dropped_frames_total', { reason: 'bad-tag' }) + N, 10_000, 'bad-tag drops counted on the leader');
    // Still committing, same leader, same term.
    const w2 = await h.writes(() => leader, 20, 2, 'after');
    expect(w2.latencies).toHaveLength(20);
    const after = await h.json(leader, '/v1/status');
    expect(after?.role).toBe('leader');
    expect(after?.term).toBe(before?.term);
    expect((await h.leader())?.name).toBe(leader.name);
    for (const n of nodes) expect(metricValue(await h.metrics(n), 'quorumd_term')).toBe(before?.term);
  });

  it.skipIf(!mosq.run)('two brokers (mosquitto + quorumd broker): killing one keeps the cluster committing over mosquitto alone', async () => {
    const h = new Harness();
    harnesses.push(h);
    const m = await h.mosquitto();
    const a = await h.aedesChild();
    const nodes = await h.startCluster({ n: 3, links: () => ({ brokers: [m.url, a.url] }), raftYaml: CALM_RAFT_YAML });
    const leader = await h.waitLeader(30_000);
    const w1 = await h.writes(() => leader, 50, 4, 'two');
    expect(w1.latencies).toHaveLength(50);
    // Two brokers: each frame arrives twice; the copies are replays.
    expect(metricValue(await h.metrics(leader), 'quorumd_dropped_frames_total', { reason: 'replay' })).toBeGreaterThan(0);

    await a.stop();
    const elections0 = await Promise.all(nodes.map(async (n) => metricValue(await h.metrics(n), 'quorumd_elections_total')));
    const w2 = await h.writes(() => leader, WRITES, 4, 'mosq');
    expect(w2.latencies).toHaveLength(WRITES);
    const elections1 = await Promise.all(nodes.map(async (n) => metricValue(await h.metrics(n), 'quorumd_elections_total')));
    expect(elections1).toEqual(elections0); // losing a broker is not a leader loss
    // And mosquitto alone carried them: every node has the last write.
    for (const n of nodes) {
      await waitFor(async () => (await fetchStale(n.url, `mosq${WRITES - 1}`)) === `v${WRITES - 1}`, 10_000, `${n.name} has the last write`);
    }
  });
});

async function fetchStale(url: string, key: string): Promise<string | undefined> {
  try {
    const r = await call(url, 'GET', `/v1/kv/${key}?stale`, { timeoutMs: 2000 });
    return r.status === 200 ? r.body.toString() : undefined;
  } catch {
    return undefined;
  }
}
