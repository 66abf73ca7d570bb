/**
 * The NEW-VIEW timer's expiry is a complaint, not a lone move to the next view
 * (src/pbft/pbft.ts "Suspicion"; found by `quorumd sim --engine pbft` seed 46, 5 nodes,
 * test/daemon/sim/regression-seeds.test.ts). The race, rebuilt on four replicas:
 * the cluster changes to view 1, whose primary (2) is down; replica 3 reaches 2f + 1
 * VIEW-CHANGEs first, so its NEW-VIEW timer runs out first. Under the paper's rule
 * (TOCS §4.5.2: no NEW-VIEW in time → VIEW-CHANGE for v + 1) it moves to view 2 alone;
 * replica 2 then comes back, builds NEW-VIEW(1) and 1 and 4 install it. Nothing ever
 * moves them to view 2 (one VIEW-CHANGE; f + 1 are needed to pull a replica forward),
 * and nobody answers a replica in a higher view with a lower NEW-VIEW: replica 3 sits
 * out for good in an idle cluster. With the complaint it stays in view 1, and the
 * NEW-VIEW reaches it.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import { Cluster } from './harness.ts';
import { SWEEP_OPTIONS } from './sweep.ts';
import type { PbftOptions } from '../../../src/pbft/options.ts';

const T = 30; // SWEEP_OPTIONS.viewChangeTimeoutMs / tickMs; retransmission every 5 ticks

/** Runs the race; returns the cluster once replica 2 is back and 1 and 4 installed view 1, and replica 3's complaints about view 1 so far. */
function race(options: Partial<PbftOptions> = {}): { c: Cluster; complained: () => number } {
  const c = new Cluster({ seed: 46, n: 4, options: { ...SWEEP_OPTIONS, ...options }, net: { minDelay: 1, maxDelay: 1 } });
  c.run(5);
  c.crash(2); // the primary of view 1
  // View 0 stalls: its primary's PRE-PREPAREs are lost. Replica 3's VIEW-CHANGE(1)
  // reaches 1 and 4 late, so their NEW-VIEW timers start a few periods after 3's.
  let lateVC = true;
  let complaints = 0;
  c.filter = (m) => {
    if (m.type === MsgType.PbftSuspect && m.from === 3 && m.term === 1) complaints++;
    return !(m.type === MsgType.PbftPrePrepare && m.from === 1) && !(lateVC && m.type === MsgType.PbftViewChange && m.from === 3 && m.to !== 2);
  };
  expect(c.submit(3, 'set a 1')).toBeDefined();
  c.runUntil(() => [1, 3, 4].every((id) => c.replica(id).e.currentView === 1), 10 * T, 'replicas 1, 3 and 4 in the view change to view 1');
  const early = c.now; // 3 holds 2f + 1 VIEW-CHANGEs (1's, 4's, its own); 1 and 4 only two
  c.run(20);
  lateVC = false;
  // Replica 3's timer (2T after the doubling) expires before the others'.
  c.runUntil(() => c.now - early > 2 * T + 2, 4 * T);
  expect(c.replica(1).e.currentView).toBe(1);
  expect(c.replica(4).e.currentView).toBe(1);
  c.restart(2);
  c.runUntil(() => [1, 4].every((id) => !c.replica(id).e.inViewChange), 2 * T, 'replicas 1 and 4 install view 1');
  expect([c.replica(1).e.currentView, c.replica(4).e.currentView]).toEqual([1, 1]);
  return { c, complained: () => complaints };
}

describe('pbft NEW-VIEW timer', () => {
  it('a replica whose NEW-VIEW timer runs out first complains and installs the NEW-VIEW the others install', () => {
    const { c, complained } = race();
    expect(complained()).toBeGreaterThan(0); // its NEW-VIEW timer ran out: a complaint about view 1
    c.run(40 * T); // idle afterwards: nothing else would move anyone
    for (const id of [1, 2, 3, 4]) {
      const r = c.replica(id).e;
      expect([id, r.currentView, r.inViewChange, r.executedIndex]).toEqual([id, 1, false, c.replica(3).e.executedIndex]);
    }
    expect(c.inv.violations).toEqual([]);
  });

  it('planted: under the paper\'s rule (newViewTimerAlone) it moves to view 2 alone and stays out for good', () => {
    const { c, complained } = race({ testingBugs: { newViewTimerAlone: true } });
    expect(complained()).toBe(0);
    c.run(40 * T);
    const r3 = c.replica(3).e;
    expect([r3.currentView, r3.inViewChange]).toEqual([2, true]);
    for (const id of [1, 2, 4]) expect([c.replica(id).e.currentView, c.replica(id).e.inViewChange]).toEqual([1, false]);
    expect(c.inv.violations).toEqual([]); // safe, only not live
  });
});
