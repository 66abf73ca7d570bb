/**
 * Several links at once, counted exactly: three `startNode()` nodes in this process
 * (the library form of `quorumd start`, so every counter can be read at one
 * synchronous instant) with MQTT through aedes AND serial wires on socat ptys —
 * n1–n2 an RS-485-mode bus of two drops, n2–n3 and n3–n1 point-to-point.
 *
 * Between two snapshots, every frame a link delivered is either accepted (handed to
 * the engine) or dropped with a reason: Δ(frames received on all links) =
 * Δaccepted + Δ(all drops). With two links most deliveries are copies, and they show
 * up as `replay` drops — so they never reached the engine.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startNode, type RunningNode } from '../../daemon/start.ts';
import { parseConfigText, resolveConfig } from '../../daemon/config/load.ts';
import { startBroker, type RunningBroker } from '../../hal/mqtt/broker.ts';
import { ptyPair, socatCheck, type PtyPair } from '../hal/serial/socat.ts';
import { waitFor } from './harness.ts';
import { testTokenFile } from '../helpers/auth.ts';

const socat = socatCheck();
const nodes: RunningNode[] = [];
const ptys: PtyPair[] = [];
let broker: RunningBroker | undefined;
const dir = mkdtempSync(join(tmpdir(), 'quorumd-dedup-'));
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
  if (broker) await new Promise((r) => broker!.close(r));
  await Promise.all(ptys.map((p) => p.dispose().catch(() => {})));
  rmSync(dir, { recursive: true, force: true });
});

interface Counts {
  received: number;
  accepted: number;
  drops: number;
  replay: number;
}

function counts(n: RunningNode): Counts {
  const s = n.runtime.status();
  const received = n.links.reduce((a, l) => a + (l.stats?.framesReceived ?? 0), 0);
  const drops = Object.values(s.drops).reduce((a, x) => a + x, 0);
  return { received, accepted: s.framesAccepted, drops, replay: s.drops.replay };
}

function put(n: RunningNode, key: string, value: string): Promise<number> {
  return new Promise((resolve) => n.runtime.put(key, new TextEncoder().encode(value), {}, (r) => resolve(r.status)));
}

describe.skipIf(!socat.run)('MQTT + serial on every node: each message acted on once', () => {
  it('copies are dropped as replays before the engine; the accounting balances exactly', async () => {
    const key = randomBytes(32).toString('hex');
    broker = await startBroker({ port: 0, clusterKeys: [{ cluster: 9, keys: [Buffer.from(key, 'hex')] }] });
    const p12 = await ptyPair();
    const p23 = await ptyPair();
    const p31 = await ptyPair();
    ptys.push(p12, p23, p31);
    const serial: Record<number, string> = {
      1: `  - { path: ${p12.a}, bus: { members: [1, 2] } }\n  - { path: ${p31.b}, peer: 3 }`,
      2: `  - { path: ${p12.b}, bus: { members: [1, 2] } }\n  - { path: ${p23.a}, peer: 3 }`,
      3: `  - { path: ${p23.b}, peer: 2 }\n  - { path: ${p31.a}, peer: 1 }`,
    };
    for (const k of [1, 2, 3]) {
      const text = `cluster: { name: dedup, id: 9, key: ${key} }
members: [{ id: 1, name: n1 }, { id: 2, name: n2 }, { id: 3, name: n3 }]
node: { name: n${k}, dataDir: ${join(dir, `n${k}`)} }
mqtt: { brokers: ["mqtt://127.0.0.1:${broker.port}"] }
serial:
${serial[k]}
http: { tokenFile: ${JSON.stringify(testTokenFile())} }
log: { level: silent }
`;
      const cfg = resolveConfig(parseConfigText(text, `n${k}.yaml`), join(dir, `n${k}.yaml`));
      nodes.push(await startNode(cfg, { httpPort: 0 }));
    }
    expect(nodes.map((n) => n.links.map((l) => l.name.split(':')[0]))).toEqual([
      ['mqtt', 'serial0', 'serial1'],
      ['mqtt', 'serial0', 'serial1'],
      ['mqtt', 'serial0', 'serial1'],
    ]);
    await waitFor(() => nodes.filter((n) => n.runtime.isLeader).length === 1 && nodes.every((n) => n.links.every((l) => l.up?.() === true)), 30_000, 'a leader and every link up').catch((e) => {
      const st = nodes.map((n) => ({ id: n.config.self.id, role: n.runtime.status().role, term: n.runtime.status().term, links: n.links.map((l) => [l.name, l.up?.()]) }));
      throw new Error(`${(e as Error).message}: ${JSON.stringify(st)}`);
    });
    const leader = nodes.find((n) => n.runtime.isLeader)!;
    // Idle followers do not talk to each other: only links that reach the leader carry
    // traffic. ends[k][i] = the nodes at the ends of node k's link i (mqtt reaches all).
    const ends: Record<number, number[][]> = { 1: [[1, 2, 3], [1, 2], [1, 3]], 2: [[1, 2, 3], [1, 2], [2, 3]], 3: [[1, 2, 3], [2, 3], [1, 3]] };
    const leaderLinks = () => nodes.flatMap((n) => n.links.filter((_, i) => ends[n.config.self.id]![i]!.includes(leader.config.self.id)));
    // The bus drops listen for (2 + rank) TDMA cycles (~0.4 s each here) before they speak.
    await waitFor(() => leaderLinks().every((l) => (l.stats?.framesReceived ?? 0) > 0), 10_000, "every link to the leader (the bus too) delivered frames").catch((e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(nodes.map((n) => n.links.map((l) => [l.name, l.stats])))}`);
    });

    const before = nodes.map(counts);
    for (let i = 0; i < 40; i++) expect(await put(leader, `d${i}`, `v${i}`)).toBe(200);
    const target = leader.runtime.status().commitIndex;
    await waitFor(() => nodes.every((n) => n.runtime.status().appliedIndex >= target), 10_000, 'every node applied the writes');
    // The TDMA bus delivers its copies up to a cycle (~0.4 s) after MQTT: wait (bounded)
    // until, on every node, most deliveries since `before` were copies dropped as replays.
    const delta = (i: number) => {
      const a = counts(nodes[i]!);
      const b = before[i]!;
      return { received: a.received - b.received, accepted: a.accepted - b.accepted, drops: a.drops - b.drops, replay: a.replay - b.replay };
    };
    await waitFor(() => nodes.every((_, i) => delta(i).replay > delta(i).accepted * 0.5), 10_000, 'the copies of the slower links arrived (as replays)').catch((e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(nodes.map((_, i) => delta(i)))}`);
    });
    // One synchronous instant: the accounting is exact.
    for (const [i, n] of nodes.entries()) {
      const d = delta(i);
      const what = `n${n.config.self.id} ${JSON.stringify(d)}`;
      expect(d.received, what).toBe(d.accepted + d.drops);
      expect(d.drops, what).toBe(d.replay); // nothing but copies were dropped
      expect(d.replay, what).toBeGreaterThan(d.accepted * 0.5);
      expect(d.accepted, what).toBeGreaterThan(40);
    }
    // The wires to the leader (the bus too, if the leader is on it) carried traffic, not only MQTT.
    for (const l of leaderLinks()) expect(l.stats?.framesReceived, l.name).toBeGreaterThan(5);
    // The runtime offers a wire only frames for its peer and a bus only frames for its drops.
    for (const n of nodes) for (const l of n.links.slice(1)) expect(l.stats?.misaddressed, l.name).toBe(0);
  });
});
