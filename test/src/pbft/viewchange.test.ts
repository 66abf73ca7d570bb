/**
 * The view change as the paper states it (Castro & Liskov §4.4–4.5), on whole
 * clusters: a failed primary is replaced by members[v mod n]; a request prepared
 * before keeps its sequence number; one suspicious backup cannot change the view,
 * f + 1 can; timeouts double; a NEW-VIEW that drops a prepared request is refused.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import { Cluster, hex } from './harness.ts';
import { SWEEP_OPTIONS } from './sweep.ts';

const T = 30; // SWEEP_OPTIONS.viewChangeTimeoutMs / tickMs

function accepted(c: Cluster, key: string | undefined, max = 2000): void {
  if (!key) throw new Error('request refused');
  c.runUntil(() => c.clients.get(key)!.accepted !== undefined, max, `request ${key} accepted`);
}

describe('PBFT view change', () => {
  it('a failed primary is replaced by the primary of the next view, members[1]', () => {
    const c = new Cluster({ seed: 11, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    accepted(c, c.submit(2, 'set a 1'));
    c.crash(1);
    const before = c.now;
    accepted(c, c.submit(3, 'set b 2'));
    for (const id of [2, 3, 4]) {
      const st = c.replica(id).e.status();
      expect([st.view, st.mode, st.leader]).toEqual([1, 'normal', 2]);
    }
    expect(c.replica(2).e.isLeader).toBe(true);
    // request timer (T), the view change, the new primary's null request and ours
    expect(c.now - before).toBeLessThan(3 * T);
    expect(c.inv.violations).toEqual([]);
  });

  it('a request prepared before the primary failed keeps its sequence number in the new view', () => {
    const c = new Cluster({ seed: 12, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    c.filter = (m) => m.type !== MsgType.PbftCommit; // nothing commits: everything stays prepared
    const key = c.submit(3, 'set x 1')!;
    c.runUntil(() => [2, 3, 4].every((id) => c.replica(id).e.preparedAt(2) !== undefined), 200, 'prepared at seq 2');
    const digest = c.replica(2).e.preparedAt(2)!.digest;
    c.crash(1);
    c.filter = undefined;
    accepted(c, key);
    // f + 1 replies accept it; the third replica may execute it a moment later.
    c.runUntil(() => [2, 3, 4].every((id) => c.replica(id).e.executedIndex >= 2), 200, 'seq 2 executed by 2, 3 and 4');
    for (const id of [2, 3, 4]) {
      const r = c.replica(id).e;
      expect(r.currentView).toBe(1);
      expect(hex(r.committedAt(2)!.digest)).toBe(hex(digest));
      expect(r.entryAt(1)?.type).toBe(1); // the old primary's opening null request, re-proposed as null
    }
    expect(c.clients.get(key)!.accepted!.index).toBe(2);
  });

  it('one suspicious backup alone does not change the view, nor leave it; f + 1 of them do', () => {
    // STATUS slowed down: otherwise the cut-off backup catches up by commit certificates
    // from the others before its timer fires (and rightly never suspects anyone).
    const c = new Cluster({ seed: 13, n: 4, options: { ...SWEEP_OPTIONS, statusMs: 60_000 }, net: { maxDelay: 1 } });
    c.run(5);
    c.partition([1], [4]); // 4 hears everyone but the primary
    accepted(c, c.submit(4, 'set a 1'));
    c.run(6 * T);
    // 4's timer expired: it complains (SUSPECT) but stays in view 0, a member of its quorums.
    expect(c.replica(4).e.status().suspicions).toBeGreaterThan(0);
    for (const id of [1, 2, 3, 4]) expect([c.replica(id).e.currentView, c.replica(id).e.inViewChange]).toEqual([0, false]);
    accepted(c, c.submit(2, 'set b 2')); // view 0 still works
    // A second backup loses the primary: now f + 1 = 2 ask for view 1, and 2 (primary of view 1) joins.
    c.partition([1], [3]);
    accepted(c, c.submit(3, 'set c 3'));
    for (const id of [2, 3, 4]) expect([c.replica(id).e.currentView, c.replica(id).e.inViewChange]).toEqual([1, false]);
    c.heal();
    c.runUntil(() => c.replica(1).e.currentView === 1 && !c.replica(1).e.inViewChange, 20 * T, 'the old primary follows (STATUS → NEW-VIEW)');
    expect(c.inv.violations).toEqual([]);
  });

  it('the view-change timeout doubles while view changes bring no progress, and resets after one does', () => {
    const c = new Cluster({ seed: 14, n: 7, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    c.run(5);
    c.crash(1);
    c.crash(2); // primaries of views 0 and 1
    const entered = new Map<number, number>();
    c.onTick = (x) => {
      for (const r of x.honest()) if (r.up && !entered.has(r.e.currentView)) entered.set(r.e.currentView, x.now);
    };
    const t0 = c.now;
    accepted(c, c.submit(4, 'set a 1'));
    const t1 = entered.get(1)!;
    const t2 = entered.get(2)!;
    expect(t1 - t0).toBeGreaterThanOrEqual(T);
    expect(t1 - t0).toBeLessThan(T + 10);
    expect(t2 - t1).toBeGreaterThanOrEqual(2 * T); // view 1's primary is dead: its NEW-VIEW never comes
    expect(t2 - t1).toBeLessThan(2 * T + 15);
    expect(c.replica(3).e.isLeader).toBe(true);
    // Progress in view 2 reset the doubling: the next failure costs T again (with 1 and
    // 2 back: three replicas down would be more than f = 2).
    c.restart(1);
    c.restart(2);
    c.runUntil(() => [1, 2].every((id) => !c.replica(id).e.inViewChange && c.replica(id).e.currentView === 2), 20 * T, '1 and 2 back in view 2');
    c.crash(3);
    const t3 = c.now;
    accepted(c, c.submit(5, 'set b 2'));
    expect(entered.get(3)! - t3).toBeLessThan(T + 10);
    expect(c.inv.violations).toEqual([]);
  });

  it('backups refuse a NEW-VIEW whose O drops a prepared request, and the next view keeps it', () => {
    const c = new Cluster({ seed: 15, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 }, byzantine: { 2: ['lie-view-change'] } });
    c.filter = (m) => m.type !== MsgType.PbftCommit;
    c.submit(3, 'set x 1');
    c.runUntil(() => [3, 4].every((id) => c.replica(id).e.preparedAt(2) !== undefined), 200, 'prepared at seq 2');
    const digest = c.replica(3).e.preparedAt(2)!.digest;
    // The primary is cut off (not crashed: with the liar that would be two faults).
    c.isolate(1);
    c.filter = undefined;
    c.runUntil(() => [3, 4].every((id) => c.replica(id).e.currentView >= 2), 40 * T, 'view 2 reached');
    c.heal();
    c.runUntil(() => [1, 3, 4].every((id) => c.replica(id).e.executedIndex >= 2), 40 * T, 'seq 2 executed at the honest replicas');
    for (const id of [3, 4]) {
      const r = c.replica(id).e;
      expect(r.status().dropped.badNewView).toBeGreaterThan(0); // the liar's NEW-VIEW for view 1
      expect(r.currentView).toBeGreaterThanOrEqual(2);
      expect(hex(r.committedAt(2)!.digest)).toBe(hex(digest));
    }
    expect(c.inv.violations).toEqual([]);
  });

  it('a restarted replica waits in its view change until a peer relays the installed NEW-VIEW', () => {
    const c = new Cluster({ seed: 16, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    accepted(c, c.submit(2, 'set a 1'));
    c.crash(1);
    accepted(c, c.submit(3, 'set b 2'));
    c.crash(4);
    c.restart(4);
    expect(c.replica(4).e.inViewChange).toBe(true);
    expect(c.replica(4).e.currentView).toBe(1);
    c.runUntil(() => !c.replica(4).e.inViewChange, 10 * T, 'replica 4 installs view 1 again');
    accepted(c, c.submit(4, 'set c 3'));
    expect(c.replica(4).e.currentView).toBe(1);
    expect(c.inv.violations).toEqual([]);
  });
});
