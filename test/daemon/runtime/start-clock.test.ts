/**
 * EngineRuntimeOptions.startClockWhen (issue 14, cold start): the engine's clock starts
 * once a peer is reachable or after maxWaitMs, so that a node whose links or peers are
 * still coming up does not campaign into the void; a one-member cluster starts at once.
 * Virtual time (the simulator's World): no sleeping.
 */
import { describe, expect, it } from 'vitest';
import { testCluster } from './helpers.ts';

describe('the engine clock waits for a reachable peer at start', () => {
  it('no campaign while no peer is reachable; an election soon after one is', () => {
    let reachable = false;
    const tc = testCluster([1, 2, 3], { runtime: { startClockWhen: { reachable: () => reachable, maxWaitMs: 60_000 } } });
    // Ten times the engine's longest election timeout (sim defaults: 150..300 ms).
    expect(tc.until(() => tc.leader() !== undefined, 3000)).toBe(false);
    expect(tc.logs.filter((l) => /candidate/.test(l))).toEqual([]);
    expect(tc.logs.filter((l) => /engine clock started/.test(l))).toEqual([]);
    const t0 = tc.world.nowMs;
    reachable = true;
    expect(tc.until(() => tc.leader() !== undefined, 5000)).toBe(true);
    // A fresh first-election timeout after the clock starts, not one long overdue at once.
    expect(tc.world.nowMs - t0).toBeGreaterThan(10);
    expect(tc.logs.filter((l) => /engine clock started.*"peerReachable":true/.test(l))).toHaveLength(3);
    expect(tc.fatals).toEqual([]);
  });

  it('starts anyway after maxWaitMs when no peer ever shows', () => {
    const tc = testCluster([1, 2, 3], { runtime: { startClockWhen: { reachable: () => false, maxWaitMs: 1000 } } });
    expect(tc.until(() => tc.leader() !== undefined, 800)).toBe(false);
    expect(tc.until(() => tc.leader() !== undefined, 5000)).toBe(true);
    expect(tc.logs.filter((l) => /engine clock started.*"peerReachable":false/.test(l)).length).toBeGreaterThanOrEqual(2);
  });

  it('a one-member cluster does not wait', () => {
    const tc = testCluster([1], { runtime: { startClockWhen: { reachable: () => false, maxWaitMs: 60_000 } } });
    expect(tc.until(() => tc.leader() !== undefined, 2000)).toBe(true);
    expect(tc.logs.filter((l) => /engine clock started/.test(l))).toEqual([]);
  });
});
