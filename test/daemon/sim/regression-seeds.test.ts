/**
 * Seeds that once failed a sweep, kept as they were found (5 nodes, every fault kind,
 * 30 s). Each is a bug report: the run must stay clean. Later changes move what a seed
 * exercises, so each fix also has a test of its own; these keep the original runs.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';
import { RaftEngine } from '../../../src/raft/engine.ts';

const ALL = 'partition,crash,power,loss,reorder,clock,disk,stall';

describe('regression seeds', () => {
  it.each([
    // An acceptor whose WAL fsync failed restarted, read its vote back from the page
    // cache, and lost it at the next power cut (votes-kept): recovery now fsyncs what it
    // read (hal/storage/durable-log.ts start; test/hal/storage/durable-log.test.ts).
    ['paxos', 154],
    // The primary of epoch 4 read back an entry whose fsync had failed and led epoch 5
    // with it; the ZAB checks called its follower's copy "never broadcast"
    // (src/zab/invariants.ts started; test/src/zab).
    ['zab', 136],
    // The leader of term 4 was stalled right after its election; term 5 began and issued
    // its token meanwhile; resumed, the old leader learned that its term's start had
    // committed and issued its own, smaller token. Tokens grow with the leadership, not
    // with the moment of issue: the check was stricter than the property
    // (daemon/sim/engine-invariants.ts; the planted run below shows it still fails).
    ['raft', 112],
    // n2 restarted while the others changed to view 4, whose primary n5 was down; n2's
    // NEW-VIEW timer ran out first and it moved to view 5 alone; n5 came back and the
    // others installed NEW-VIEW(4); one VIEW-CHANGE(5) pulls nobody forward, so n2 sat
    // out for good (pbft-liveness). The NEW-VIEW timer now complains first, as the
    // normal-mode timer does (src/pbft/pbft.ts "Suspicion"; test/src/pbft/newview-timer.test.ts).
    ['pbft', 46],
    // n4 complained once and executed again 50 ms later; n5, cut off from progress for a
    // second, counted that complaint with its own and went to view 1 alone, for good
    // (pbft-liveness). Only other replicas' complaints count now (src/pbft/pbft.ts
    // "Suspicion"; test/src/pbft/suspect.test.ts).
    ['pbft', 188],
  ] as const)('%s seed %i', (engine, seed) => {
    const cfg = parseSimOptions({ seed, nodes: 5, time: '30s', faults: ALL, engine });
    const r = runEngineSeed(cfg, seed);
    expect(r.violation, `${r.violation?.invariant}: ${r.violation?.detail}`).toBeUndefined();
    expect(r.lin).toBe('ok');
  }, 120_000);

  // The paper's NEW-VIEW timer planted back (testingBugs.newViewTimerAlone) once failed
  // seed 27 here (pbft-liveness: n4 alone in view 6). It needs one replica's NEW-VIEW
  // timer to run out well before the others'; in seed 46 that came from an old view's
  // certificate, caught up on during the view change, resetting the replica's doubled
  // timeout. Since that no longer happens (test/src/pbft/backoff.test.ts), no seed of
  // 1..720 (5 nodes), 1..150 (4) or 1..80 (7) shows the planted rule (searched
  // 2026-12-07). The race is rebuilt on purpose instead, and the planted rule caught by
  // pbft-liveness there: test/daemon/sim/pbft-liveness.test.ts (five boards, a partition
  // and a stall) and test/src/pbft/newview-timer.test.ts (the engines alone).

  it('planted: tokens that shrink as terms grow fail token-growth', () => {
    const orig = RaftEngine.prototype.leaderToken;
    RaftEngine.prototype.leaderToken = function (this: RaftEngine): number {
      return orig.call(this) > 0 ? 1_000_000 - this.status().term : 0;
    };
    try {
      const cfg = parseSimOptions({ seed: 112, nodes: 5, time: '30s', faults: ALL, engine: 'raft' });
      const r = runEngineSeed(cfg, 112);
      expect(r.violation?.invariant).toBe('token-growth');
      expect(r.violation?.detail).toMatch(/not above token \d+ of node \d+'s earlier term/);
    } finally {
      RaftEngine.prototype.leaderToken = orig;
    }
  }, 120_000);
});
