/**
 * Read your writes on the node you wrote through: a follower answers a write it
 * forwarded once it has applied that write itself, so its client's next read there —
 * a local (stale) one too — sees it; and the leader sends that follower the commit
 * ahead of its answer (Engine.notifyCommit), so the answer does not wait for the next
 * heartbeat. Heartbeats here are 200 ms apart: a wait for one would show.
 */
import { describe, expect, it } from 'vitest';
import { Status } from '../../../daemon/runtime/results.ts';
import { MsgType } from '../../../src/wire/messages.ts';
import { bytes, testCluster, text } from './helpers.ts';

const HEARTBEAT_MS = 200;
const engineOptions = {
  raft: { heartbeatMs: HEARTBEAT_MS, electionTimeoutMinMs: 1500, electionTimeoutMaxMs: 3000 },
  paxos: { heartbeatMs: HEARTBEAT_MS, electionTimeoutMinMs: 1500, electionTimeoutMaxMs: 3000 },
  zab: { heartbeatMs: HEARTBEAT_MS, syncLimitMs: 3000, initLimitMs: 6000 },
} as const;

describe('a write through a follower, then a local read there (EngineRuntime)', () => {
  it.each(['raft', 'paxos', 'zab'] as const)('%s: the stale read sees the write every time, and the write is answered well within a heartbeat', (engine) => {
    const c = testCluster([1, 2, 3], { seed: 5, runtime: { engine, engineOptions: engineOptions[engine] } });
    expect(c.until(() => c.leader() !== undefined, 10_000)).toBe(true);
    c.world.run(500);
    const L = c.leader()!;
    const followers = [...c.rt.values()].filter((r) => r !== L);
    const misses: string[] = [];
    const latencies: number[] = [];
    for (let i = 0; i < 60; i++) {
      const F = followers[i % 2]!;
      const key = `k${i % 3}`;
      const t0 = c.world.nowMs;
      const w = c.call((cb) => F.put(key, bytes(`v${i}`), {}, cb), 3000);
      expect(w?.status, `write ${i}: ${w?.error}`).toBe(Status.OK);
      latencies.push(c.world.nowMs - t0);
      // In the same instant as the answer: the node's own copy, no leader involved.
      const r = c.call((cb) => F.get(key, { stale: true }, cb), 0);
      if (r?.status !== Status.OK || text(r.value) !== `v${i}`) misses.push(`write ${i} on node ${F.id}: stale read gave ${r?.status} ${text(r?.value)}`);
      // Some writes follow each other at once, some after a pause (the commit then
      // travels with nothing else).
      if (i % 4 === 0) c.world.run(37);
    }
    expect(misses).toEqual([]);
    latencies.sort((a, b) => a - b);
    const p90 = latencies[Math.floor(latencies.length * 0.9)]!;
    expect(p90, `forwarded write latencies (virtual ms): ${latencies.join(' ')}`).toBeLessThan(HEARTBEAT_MS / 4);
    expect(c.leader()).toBe(L);
    expect(c.fatals).toEqual([]);
  });

  it('raft: a follower that cannot apply the write (its leader\'s Appends lost) answers it when its request times out — with the outcome, which is known — and logs it', () => {
    // Frames into a node pass `drop` first (type and sender read from the frame's head).
    let drop: ((type: number, from: number, to: number) => boolean) | undefined;
    const c = testCluster([1, 2, 3], {
      seed: 9,
      runtime: { engineOptions: engineOptions.raft, requestTimeoutMs: 1000 },
      perBoot: (hal) => ({
        links: hal.links.map((l) => ({
          name: l.name,
          maxFrame: l.maxFrame,
          send: (to: number, f: Uint8Array) => l.send(to, f),
          onFrame: (h: (f: Uint8Array) => void) => l.onFrame((f) => {
            const head = frameHead(f);
            if (!(drop && head && drop(head.type, head.from, hal.node))) h(f);
          }),
          onEvent: (h: Parameters<typeof l.onEvent>[0]) => l.onEvent(h),
          close: (d?: Parameters<typeof l.close>[0]) => l.close(d),
        })),
      }),
    });
    expect(c.until(() => c.leader() !== undefined, 10_000)).toBe(true);
    c.world.run(500);
    const L = c.leader()!;
    const F = [...c.rt.values()].find((r) => r !== L)!;
    // From now on F hears nothing from the leader but the answers to its forwarded
    // requests: it cannot learn the commit, so it cannot apply the write.
    drop = (type, from, to) => to === F.id && from === L.id && type !== MsgType.ClientReply;
    let res: { status: number; index?: number } | undefined;
    const t0 = c.world.nowMs;
    F.put('k', bytes('v'), {}, (r) => (res = r));
    expect(c.until(() => res !== undefined, 5000)).toBe(true);
    expect(res?.status).toBe(Status.OK);
    expect(c.world.nowMs - t0).toBeGreaterThanOrEqual(1000);
    expect(F.stateMachine.appliedIndex).toBeLessThan(res!.index!);
    expect(c.logs.some((l) => l.includes('forwarded write answered before this node applied it'))).toBe(true);
    expect(c.fatals).toEqual([]);
  });
});

/** The message type and sender of a frame, read from its CBOR head: [version, type, cluster, from, ...]. */
function frameHead(f: Uint8Array): { type: number; from: number } | undefined {
  let p = f[0]! >= 0x80 && f[0]! <= 0x97 ? 1 : f[0] === 0x98 ? 2 : -1;
  if (p < 0) return undefined;
  const uint = (): number => {
    const h = f[p]!;
    if (h < 24) return (p += 1), h;
    if (h === 0x18) return (p += 2), f[p - 1]!;
    if (h === 0x19) return (p += 3), (f[p - 2]! << 8) | f[p - 1]!;
    return NaN;
  };
  uint(); // version
  const type = uint();
  uint(); // cluster
  const from = uint();
  return Number.isNaN(type) || Number.isNaN(from) ? undefined : { type, from };
}
