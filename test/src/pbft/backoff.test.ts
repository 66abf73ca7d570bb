/**
 * The doubling of the view-change timeout ends with a request executed in the view
 * that came out of the view change (TOCS §4.5.2: the timer waits 2T, 4T, … "before it
 * executes a request in the new view that it had not executed previously"), not with
 * an old view's certificate that a replica in the middle of a view change catches up
 * on (COMMITTED, answered to its STATUS). Such a catch-up said nothing about the new
 * primary, yet it reset the timeout to T: seen in `quorumd sim --engine pbft` seed 46,
 * where n2's NEW-VIEW timer ran out before the others'.
 *
 * Rebuilt on four replicas: replica 4 hears no COMMIT of view 0, so the request stays
 * unexecuted there; the primary of view 0 stops; the view changes to 1 (primary 2),
 * whose NEW-VIEW never reaches 4. Then 4 catches up on view 0's certificate while
 * still in the view change: its timeout stays doubled (2T). Once NEW-VIEW(1) reaches it
 * and it executes in view 1, the doubling ends (T).
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import { Cluster } from './harness.ts';
import { SWEEP_OPTIONS } from './sweep.ts';

const T = 30; // SWEEP_OPTIONS.viewChangeTimeoutMs / tickMs (10 ms)
const T_MS = SWEEP_OPTIONS.viewChangeTimeoutMs!;

describe('pbft view-change timeout doubling', () => {
  it('an old view\'s certificate caught up on during a view change keeps the timeout doubled; an execution in the new view ends the doubling', () => {
    const c = new Cluster({ seed: 7, n: 4, options: SWEEP_OPTIONS, net: { minDelay: 1, maxDelay: 1 } });
    c.run(5);
    let commitsTo4 = false;
    let newViewTo4 = false;
    c.filter = (m) => {
      if (m.to === 4 && (m.type === MsgType.PbftCommit || m.type === MsgType.PbftCommitted)) return commitsTo4;
      if (m.to === 4 && m.type === MsgType.PbftNewView) return newViewTo4;
      return true;
    };
    const r4 = () => c.replica(4).e;
    expect(c.submit(1, 'set a 1')).toBeDefined();
    c.runUntil(() => [1, 2, 3].every((id) => c.replica(id).e.executedIndex > r4().executedIndex), 10 * T, 'replicas 1-3 execute what 4 cannot');
    const behind = r4().executedIndex;
    const target = c.replica(2).e.executedIndex;
    expect(r4().status().viewChangeTimeoutMs).toBe(T_MS);

    // The primary of view 0 stops; a request known to all but it runs the others' timers.
    c.crash(1);
    expect(c.submit(3, 'set b 2')).toBeDefined();
    c.runUntil(() => c.replica(2).e.currentView === 1 && !c.replica(2).e.inViewChange && r4().inViewChange && r4().currentView === 1, 20 * T, 'view 1 installed at 2, replica 4 still in the change to it');
    expect(r4().executedIndex).toBe(behind);
    expect(r4().status().viewChangeTimeoutMs).toBe(2 * T_MS);

    // View 0's certificate reaches 4 (COMMITTED, answering its STATUS) while it waits for NEW-VIEW(1).
    commitsTo4 = true;
    c.runUntil(() => r4().executedIndex >= target, 10 * T, 'replica 4 catches up on view 0');
    expect(r4().inViewChange).toBe(true);
    expect(r4().currentView).toBe(1);
    expect(r4().status().viewChangeTimeoutMs, 'the timeout after an old-view catch-up').toBe(2 * T_MS);

    // NEW-VIEW(1) reaches 4; it executes in view 1: the doubling ends.
    newViewTo4 = true;
    c.runUntil(() => !r4().inViewChange && r4().executedIndex === c.replica(2).e.executedIndex && r4().executedIndex > target, 20 * T, 'replica 4 installs view 1 and executes in it');
    expect(r4().currentView).toBe(1);
    expect(r4().status().viewChangeTimeoutMs).toBe(T_MS);
    expect(c.inv.violations).toEqual([]);
  });
});
