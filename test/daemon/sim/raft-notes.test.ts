/**
 * Failover on the leader's Last Will (MQTT peer-gone), through the node runtime in
 * the simulator: RaftNode.leaderGone on every node (witnesses included) and a
 * campaign in id order (EngineRuntime option peerGoneStaggerMs).
 *
 * History: this file was a runnable note (`it.fails`): a witness could not end its
 * leader stickiness on leader-gone, so in 3 data nodes + 1 witness (quorum 3 of 4,
 * one down) the witness's vote came only after electionTimeoutMin since the last
 * heartbeat: failover p50 320 ms vs 143 ms with 5 data nodes (bench/failover.ts).
 * With RaftNode.leaderGone the note became these tests.
 */
import { describe, expect, it } from 'vitest';
import { testCluster, bytes } from '../runtime/helpers.ts';
import { Status } from '../../../daemon/runtime/results.ts';
import type { EngineRuntimeOptions } from '../../../daemon/runtime/engine-node.ts';
import type { Link } from '../../../hal/interfaces.ts';

/** A link that never reports a peer gone (no Last Will hint). */
function hidePeerGone(l: Link): Link {
  return {
    name: l.name,
    maxFrame: l.maxFrame,
    send: (to, f) => l.send(to, f),
    onFrame: (h) => l.onFrame(h),
    onEvent: (h) => l.onEvent((ev) => {
      if (ev.kind !== 'peer-gone') h(ev);
    }),
    close: (d) => l.close(d),
  };
}

function failovers(ids: number[], witnesses: number[], trials: number, runtime: Partial<EngineRuntimeOptions> = {}, noHint = false, seed = 42): number[] {
  const c = testCluster(ids, { seed, witnesses, runtime, ...(noHint ? { perBoot: (hal) => ({ links: hal.links.map(hidePeerGone) }) } : {}) });
  c.until(() => c.leader() !== undefined, 5000);
  c.world.run(500);
  const out: number[] = [];
  for (let t = 0; t < trials; t++) {
    const old = c.leader()!;
    const t0 = c.world.nowMs;
    c.world.board(old.id).crashProcess(300);
    c.until(() => c.leader() !== undefined && c.leader() !== old, 5000);
    out.push(Math.round(c.world.nowMs - t0));
    c.world.run(1500);
  }
  return out;
}

describe('failover on the leader\'s Last Will', () => {
  it('3 data nodes + witness: a new leader within 120 ms of the old leader crashing (the witness drops its stickiness)', () => {
    const slow = failovers([1, 2, 3, 4], [4], 5).filter((ms) => ms > 120);
    expect(slow).toEqual([]);
  });

  // These two were "every time" with seed 42 until the first election of a new cluster
  // got faster (src/raft: a term-0 node times out after 1–2 heartbeats), which shifted
  // the seed's whole timeline. Over seeds 30–59 × 10 trials, before and after that
  // change alike, 5–6 of 300 trials of 2 data nodes + witness take 180–311 ms and 3 of
  // 300 with 5 data nodes 194–245 ms: a tail of the will path that no one seed shows
  // reliably. So: 30 trials over three seeds, at most 2 slow ones.
  const threeSeeds = (ids: number[], witnesses: number[]) => [42, 43, 44].flatMap((seed) => failovers(ids, witnesses, 10, {}, false, seed));
  it('2 data nodes + witness: a new leader within 150 ms, nearly every time (a pre-vote the witness dropped before its own will arrived is retried)', () => {
    const slow = threeSeeds([1, 2, 3], [3]).filter((ms) => ms > 150);
    expect(slow.length).toBeLessThanOrEqual(2);
  });

  // The retry above is a pre-candidate's: it has taken no term, so the runtime lets it
  // campaign again while a peer may still be sticky. Over seeds 30–59 × 10 trials: 6 of
  // 300 take > 150 ms with the retry, 24 without (a pre-candidate waiting out its
  // election timeout instead).
  it('2 data nodes + witness: a pre-candidate retries its campaign (300 trials, few slow ones)', () => {
    const times = Array.from({ length: 30 }, (_, k) => failovers([1, 2, 3], [3], 10, {}, false, 30 + k)).flat();
    expect(times.filter((ms) => ms > 150).length).toBeLessThanOrEqual(12);
  }, 120_000);

  it('5 data nodes: a new leader within 120 ms, nearly every time', () => {
    const slow = threeSeeds([1, 2, 3, 4, 5], []).filter((ms) => ms > 120);
    expect(slow.length).toBeLessThanOrEqual(2);
  });

  it('with lease reads too (fencing configured): the report is acted on, 3 + witness within 120 ms every time', () => {
    const times = failovers([1, 2, 3, 4], [4], 5, { engineOptions: { leaseRead: true } });
    expect(times.filter((ms) => ms > 120)).toEqual([]);
  });

  it('control: without the hint (links that never report peer-gone) 3 + witness is slow again', () => {
    const times = failovers([1, 2, 3, 4], [4], 5, { engineOptions: { leaseRead: true } }, true);
    expect(times.filter((ms) => ms > 120).length).toBeGreaterThan(0);
  });

  it('a write forwarded to a leader that dies answers 504 (outcome unknown) at once, not at the request timeout', () => {
    const c = testCluster([1, 2, 3], { seed: 7 });
    c.until(() => c.leader() !== undefined, 5000);
    c.world.run(500);
    const old = c.leader()!;
    const f = [...c.rt.values()].find((r) => r !== old && r.state === 'running')!;
    const t0 = c.world.nowMs;
    let res: { status: number; error?: string } | undefined;
    let at = 0;
    f.put('k', bytes('v'), {}, (r) => {
      res = r;
      at = c.world.nowMs;
    });
    c.world.board(old.id).crashProcess(60_000); // dies before the forwarded request reaches it
    c.until(() => res !== undefined, 3000);
    expect(res?.status).toBe(Status.UNKNOWN);
    expect(res?.error).toMatch(/is gone/);
    expect(at - t0).toBeLessThan(50); // the request timeout is 2000 ms
  });
});
