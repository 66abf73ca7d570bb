/**
 * After a leader's will, a survivor defers its own campaign only to a campaign that can
 * win: one whose candidate's log its vote would back, by a node other than the dead
 * leader (daemon/runtime/engine-node.ts, the peer-gone campaign loop; src/raft/engine.ts
 * isCampaignRequest). Raft on the engine runtime, a simulated broker whose wills come one
 * latency after a process crash; election timeout 3–6 s, so a new leader within 1 s can
 * only come from the will. Seen on real processes before: a survivor that missed the dead
 * leader's last entry kept retrying its pre-vote, the survivor that had the entry refused
 * each one yet deferred to each one, and the cluster waited out the whole election
 * timeout (11.4 s with a 10 s timeout); and a leader that died just after its election
 * left the survivors deferring to the campaign that had elected it.
 */
import { describe, expect, it } from 'vitest';
import { testCluster } from './helpers.ts';
import type { NodeId } from '../../../src/types.ts';

const SLOW = { engineOptions: { electionTimeoutMinMs: 3000, electionTimeoutMaxMs: 6000 } };
const BOUND_MS = 1000;

describe('campaigns after a leader\'s will', () => {
  for (const stale of ['lower', 'higher'] as const) {
    it(`a survivor that missed the dead leader's last entry (the ${stale} id of the two) does not hold back the one that has it`, () => {
      const slow: string[] = [];
      for (const seed of [1, 2, 3, 4]) {
        const c = testCluster([1, 2, 3], { seed, runtime: SLOW });
        expect(c.until(() => c.leader() !== undefined, 30_000)).toBe(true);
        c.world.run(1000);
        const old = c.leader()!;
        const [lo, hi] = [1, 2, 3].filter((i) => i !== old.id) as [NodeId, NodeId];
        const missing = stale === 'lower' ? lo : hi;
        const having = missing === lo ? hi : lo;
        // The leader's frames to `missing` are lost; a write commits on the leader and `having`.
        c.world.partition([[old.id], [missing]]);
        const w = c.call((cb) => old.put('k', new TextEncoder().encode('v'), {}, cb), 2000);
        expect(w?.status, JSON.stringify(w)).toBe(200);
        // The leader's process dies before it brings `missing` up to date.
        c.world.board(old.id).crashProcess(60_000);
        c.world.heal();
        const t0 = c.world.nowMs;
        expect(c.until(() => c.leader() !== undefined && c.leader() !== old, 20_000)).toBe(true);
        const ms = c.world.nowMs - t0;
        expect(c.leader()!.id).toBe(having);
        if (ms >= BOUND_MS) slow.push(`seed ${seed}: n${old.id} died, n${missing} lacked its last entry; n${having} led after ${ms.toFixed(0)} ms`);
      }
      expect(slow).toEqual([]);
    });
  }

  it('a leader that dies just after its election is replaced at once: its own campaign is not waited for', () => {
    const slow: string[] = [];
    for (const seed of [1, 2, 3, 4]) {
      const c = testCluster([1, 2, 3], { seed, runtime: SLOW });
      expect(c.until(() => c.leader() !== undefined, 30_000)).toBe(true);
      const old = c.leader()!;
      // Every survivor has heard of the new leader (it answers to the will only then).
      expect(c.until(() => [...c.rt.values()].every((r) => r.status().leader === old.id), 1000)).toBe(true);
      c.world.board(old.id).crashProcess(60_000);
      const t0 = c.world.nowMs;
      expect(c.until(() => c.leader() !== undefined && c.leader() !== old, 20_000)).toBe(true);
      const ms = c.world.nowMs - t0;
      if (ms >= BOUND_MS / 2) slow.push(`seed ${seed}: n${old.id} died just after its election; n${c.leader()!.id} led after ${ms.toFixed(0)} ms`);
    }
    expect(slow).toEqual([]);
  });
});
