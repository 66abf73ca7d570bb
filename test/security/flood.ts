/**
 * The flood of the security review: N well-formed frames with a bad tag (sealed with
 * a key that is not the cluster's), published as fast as one MQTT client can to the
 * leader's inbox (or to a topic no node reads), while clients keep writing through the
 * leader. Reports what the acceptance asks: term changes (0 expected), writes during
 * the flood (all succeed) and their latency percentiles, and what the leader dropped.
 *
 * Shared by test/security/open-broker.test.ts (asserts) and bench/flood.ts (prints).
 */
import mqtt from 'mqtt';
import { FrameSealer, Sender } from '../../src/wire/auth.ts';
import { MsgType } from '../../src/wire/messages.ts';
import { call } from '../../daemon/client/http.ts';
import { metricValue, type Harness, type ProcNode } from '../e2e/harness.ts';
import { maxTerm, percentile, rssMiB } from './helpers.ts';

export interface FloodOptions {
  /** Broker URL the flooder publishes through. */
  brokerUrl: string;
  /** Wire cluster id (the harness uses 7). */
  cluster: number;
  /** Frames to publish. Default 300000. */
  frames?: number;
  /** 'inbox' = the leader's inbox; 'other' = a topic no node reads. */
  target?: 'inbox' | 'other';
  /** MQTT credentials of the flooder when the broker wants some: those of node `from` (a follower the frames claim to come from). */
  credentialsOf?: (from: number) => { username: string; password: string };
  /** Concurrent writers through the leader during the flood. Default 4. */
  writers?: number;
}

export interface FloodResult {
  frames: number;
  floodSeconds: number;
  framesPerSec: number;
  termBefore: number;
  termAfter: number;
  termChanges: number;
  leaderBefore: string;
  leaderAfter: string | undefined;
  writesOk: number;
  writesFailed: number;
  failures: string[];
  p50: number;
  p99: number;
  max: number;
  badTagDropped: number;
  leaderRssMiB: { before: number; peak: number };
  flooderError: string | undefined;
}

export async function flood(h: Harness, o: FloodOptions): Promise<FloodResult> {
  const frames = o.frames ?? 300_000;
  const leader = await h.waitLeader(60_000);
  const urls = h.nodes.filter((n) => n.child).map((n) => n.url);
  const termBefore = await maxTerm(urls);
  const badTag0 = metricValue(await h.metrics(leader), 'quorumd_dropped_frames_total', { reason: 'bad-tag' });
  const pid = leader.child!.pid!;
  const rss0 = rssMiB(pid);
  let rssPeak = rss0;

  // Well-formed heartbeats "from" a peer, sealed with the wrong key: each one costs the node a decode and a tag check.
  const from = h.nodes.find((n) => n !== leader)!.id;
  const sealer = new FrameSealer({ cluster: o.cluster, keyring: { current: new Uint8Array(32).fill(0xee) }, sender: new Sender(1) });
  const pool = Array.from({ length: 1024 }, () => Buffer.from(sealer.seal({ type: MsgType.Heartbeat, from, to: leader.id, term: termBefore, commit: undefined, ctx: 0 }).frame));
  const topic = o.target === 'other' ? `quorumd/${o.cluster}/nobody-reads-this` : `quorumd/${o.cluster}/to/${leader.id}`;

  // Writers: PUTs through the leader for as long as the flood lasts (and a little after).
  let flooding = true;
  const latencies: number[] = [];
  const failures: string[] = [];
  let ok = 0;
  const writer = async (w: number) => {
    for (let i = 0; flooding && i < 1_000_000; i++) {
      const t0 = performance.now();
      try {
        const r = await call(leader.url, 'PUT', `/v1/kv/flood-${w}-${i % 50}`, { body: `v${i}`, timeoutMs: 15_000 });
        if (r.status === 200) {
          ok++;
          latencies.push(performance.now() - t0);
        } else failures.push(`HTTP ${r.status} ${r.body.toString().slice(0, 120)}`);
      } catch (e) {
        failures.push((e as Error).message.slice(0, 120));
      }
    }
  };
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, rssMiB(pid));
    } catch {
      /* gone */
    }
  }, 100);

  const c = mqtt.connect(o.brokerUrl, { protocolVersion: 4, reconnectPeriod: 0, clientId: `flooder-${process.pid}`, ...(o.credentialsOf ? o.credentialsOf(from) : {}) });
  let flooderError: string | undefined;
  c.on('error', (e) => (flooderError = e.message));
  const connected = await new Promise<boolean>((resolve) => {
    c.once('connect', () => resolve(true));
    c.once('error', () => resolve(false));
    c.once('close', () => resolve(false));
  });
  const writers = Array.from({ length: o.writers ?? 4 }, (_, w) => writer(w));
  const t0 = performance.now();
  let sent = 0;
  if (connected) {
    // Batches of 500, each awaited (its last publish written to the socket): memory stays flat.
    while (sent < frames && c.connected) {
      const n = Math.min(500, frames - sent);
      await new Promise<void>((resolve) => {
        c.once('close', () => resolve()); // cut off by the broker: the batch never completes
        for (let i = 0; i < n; i++) c.publish(topic, pool[(sent + i) % pool.length]!, { qos: 0 }, i === n - 1 ? () => resolve() : undefined);
      });
      c.removeAllListeners('close');
      sent += n;
    }
  }
  const floodSeconds = (performance.now() - t0) / 1000;
  c.end(true);
  // Let the queued frames drain through broker and node, then stop the writers.
  await new Promise((r) => setTimeout(r, 3000));
  flooding = false;
  await Promise.all(writers);
  clearInterval(sampler);
  const termAfter = await maxTerm(urls);
  const after = await h.leader().catch(() => undefined);
  const badTag = metricValue(await h.metrics(leader), 'quorumd_dropped_frames_total', { reason: 'bad-tag' }) - badTag0;
  return {
    frames: sent,
    floodSeconds,
    framesPerSec: Math.round(sent / Math.max(floodSeconds, 0.001)),
    termBefore,
    termAfter,
    termChanges: termAfter - termBefore,
    leaderBefore: leader.name,
    leaderAfter: after?.name,
    writesOk: ok,
    writesFailed: failures.length,
    failures: failures.slice(0, 5),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    badTagDropped: badTag,
    leaderRssMiB: { before: Math.round(rss0), peak: Math.round(rssPeak) },
    flooderError,
  };
}

export type { ProcNode };
