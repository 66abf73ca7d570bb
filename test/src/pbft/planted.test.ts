/**
 * Planted bugs (options.testingBugs, testing only) that the invariants must catch,
 * each in a scenario built to expose it — and the same scenario passing without it, so
 * the test shows the bug, not the scenario, is what fails.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import type { PbftOptions } from '../../../src/pbft/options.ts';
import { Cluster } from './harness.ts';
import { SWEEP_OPTIONS } from './sweep.ts';

/**
 * Commit on 2f instead of 2f + 1. Replica 4 is prepared for r at seq 2 (PREPAREs from
 * 2 and the Byzantine 3), 1 and 2 never see a PREPARE for seqs 1–2; seq 3 prepares
 * everywhere. With the bug, 4 commits r with its own COMMIT and 3's (2f = 2) and
 * executes it. 1, 2 and 3 change the view without 4's VIEW-CHANGE (it does not reach
 * the new primary 2), 3 lying that it prepared nothing: the NEW-VIEW has no certificate
 * for seq 2 and fills it with the null request, while 4 already executed r there.
 */
function commitOn2f(bug: boolean): Cluster {
  const honestOptions: Partial<PbftOptions> = bug ? { testingBugs: { commitQuorumMinusOne: true } } : {};
  const c = new Cluster({ seed: 41, n: 4, options: SWEEP_OPTIONS, honestOptions, net: { maxDelay: 1 }, byzantine: { 3: ['lie-view-change'] } });
  c.filter = (m) => {
    if (m.type === MsgType.PbftPrepare && m.term === 0 && m.seq <= 2 && (m.to === 1 || m.to === 2)) return false;
    if (m.type === MsgType.PbftViewChange && m.from === 4 && m.to === 2) return false;
    return true;
  };
  c.submit(1, 'set r 1'); // seq 2
  c.submit(1, 'set s 2'); // seq 3
  return c;
}

/**
 * A view change that drops prepared requests. All four prepare r at seq 2 but only 4
 * collects the COMMITs and executes it; then 4 is cut off. 1, 2, 3 change the view
 * with their certificates for seq 2 — which the buggy NEW-VIEW ignores (null request).
 */
function viewChangeDrops(bug: boolean): Cluster {
  const honestOptions: Partial<PbftOptions> = bug ? { testingBugs: { viewChangeDropsPrepared: true } } : {};
  const c = new Cluster({ seed: 42, n: 4, options: SWEEP_OPTIONS, honestOptions, net: { maxDelay: 1 } });
  c.filter = (m) => !(m.type === MsgType.PbftCommit && m.term === 0 && m.to !== 4);
  c.submit(2, 'set r 1');
  c.runUntil(() => c.replica(4).e.executedIndex >= 2, 200, 'replica 4 executed r');
  c.isolate(4);
  return c;
}

describe('planted bugs are caught', () => {
  it('commit on 2f instead of 2f + 1 COMMITs: an honest replica executes what the others replace', () => {
    const ok = commitOn2f(false);
    ok.run(600);
    expect(ok.replica(1).e.currentView).toBeGreaterThan(0);
    ok.filter = undefined;
    ok.stabilize(3000);
    expect(ok.inv.violations).toEqual([]);
    const bad = commitOn2f(true);
    expect(() => bad.run(600)).toThrow(/pbft invariant: (commit|execution)-agreement: .*seq 2|at index 2/);
  });

  it('a view change that drops a prepared request: the new view re-uses a committed sequence number', () => {
    const ok = viewChangeDrops(false);
    ok.run(400);
    ok.stabilize(3000);
    expect(ok.inv.violations).toEqual([]);
    const bad = viewChangeDrops(true);
    expect(() => {
      bad.run(400);
      bad.stabilize(3000);
    }).toThrow(/pbft invariant: (commit|execution)-agreement/);
  });

  it('a client that accepts f matching replies instead of f + 1 believes a liar', () => {
    const run = (clientQuorum: number) => {
      const c = new Cluster({ seed: 43, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 }, byzantine: { 4: ['wrong-reply'] }, clientQuorum });
      for (let i = 0; i < 10; i++) c.submit((i % 3) + 1, `set k v${i}`);
      c.run(300);
      return c;
    };
    expect(run(2).inv.violations).toEqual([]);
    expect(() => run(1)).toThrow(/pbft invariant: client-safety: a client accepted result "(LIE-|FAKE)/);
  });
});
