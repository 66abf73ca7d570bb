/**
 * Notes for the Raft engine found while integrating it (precise, runnable).
 *
 * Witness lease on leader-gone: when the MQTT Last Will reports the leader dead, the
 * runtime makes data followers campaign at once (each campaign() also ends that
 * node's leader lease). A witness cannot campaign, and RaftNode has no way to end its
 * lease, so it keeps ignoring pre-votes until electionTimeoutMin after the leader's
 * last heartbeat (thesis §4.2.3 stickiness). In 3 data nodes + 1 witness (quorum 3
 * of 4, one down) the witness's vote is needed: failover waits ~150–300 ms more than
 * with 5 data nodes (bench/failover.ts: p50 320 ms vs 143 ms, p99 600 ms vs 367 ms).
 * Wanted: e.g. `RaftNode.leaderGone(id)` that, when `id` is the known leader, forgets
 * it (leader = 0, lease over) for any member. This test is marked `fails`: it passes
 * while the limitation exists and turns red once the engine offers a way out, as a
 * reminder to wire it into daemon/runtime/node.ts onLinkEvent.
 */
import { describe, expect, it } from 'vitest';
import { testCluster } from '../runtime/helpers.ts';

describe('raft engine notes', () => {
  it.fails('3 data nodes + witness: a new leader within 120 ms of the old leader crashing (needs the witness to drop its lease)', () => {
    const c = testCluster([1, 2, 3, 4], { seed: 42, witnesses: [4] });
    c.until(() => c.leader() !== undefined, 5000);
    c.world.run(500);
    const slow: number[] = [];
    for (let t = 0; t < 5; t++) {
      const old = c.leader()!;
      const t0 = c.world.nowMs;
      c.world.board(old.id).crashProcess(300);
      c.until(() => c.leader() !== undefined && c.leader() !== old, 5000);
      if (c.world.nowMs - t0 > 120) slow.push(Math.round(c.world.nowMs - t0));
      c.world.run(1500);
    }
    expect(slow).toEqual([]);
  });
});
