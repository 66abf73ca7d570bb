/**
 * The checker itself: every property fires on a crafted violation, ignores Byzantine
 * replicas, and stays quiet on consistent histories.
 */
import { describe, expect, it } from 'vitest';
import { PbftInvariants } from '../../../src/pbft/invariants.ts';

const ex = (request: string, result?: string) => ({ request, effect: request === 'null' ? 'noop' : `normal:${request}`, result });
const inv = () => new PbftInvariants([1, 2, 3], false); // replica 4 is Byzantine

describe('PBFT invariants', () => {
  it('are quiet on a consistent history, and ignore Byzantine replicas entirely', () => {
    const i = inv();
    for (const r of [1, 2, 3]) {
      i.observePrepared(r, 0, 1, 'd1');
      i.observeCommitted(r, 0, 1, 'd1');
      i.observeExecuted(r, 1, ex('2/1/d1', 'old'));
      i.observeView(r, 0);
    }
    i.observePrepared(4, 0, 1, 'other');
    i.observeCommitted(4, 0, 1, 'other');
    i.observeExecuted(4, 1, ex('4/1/x', 'lie'));
    i.observeView(4, 9);
    i.observeView(4, 2);
    i.observeAccepted(2, 1, 1, 'old');
    expect(i.violations).toEqual([]);
    expect(i.checkLiveness(['2/1'], [1, 2, 3])).toEqual([]);
  });
  it('prepared-agreement: two digests prepared at one (view, seq)', () => {
    const i = inv();
    i.observePrepared(1, 2, 5, 'a');
    i.observePrepared(1, 3, 5, 'b'); // another view: fine
    i.observePrepared(2, 2, 5, 'b');
    expect(i.violations).toEqual([expect.stringMatching(/^prepared-agreement: replicas 1 and 2 .* view 2 seq 5/)]);
  });
  it('commit-agreement: two digests committed at one seq, even in different views', () => {
    const i = inv();
    i.observeCommitted(1, 0, 5, 'a');
    i.observeCommitted(3, 1, 5, 'b');
    expect(i.violations).toEqual([expect.stringMatching(/^commit-agreement: replicas 1 and 3 committed different requests at seq 5/)]);
  });
  it('execution-agreement: different requests, effects or results at one index', () => {
    const i = inv();
    i.observeExecuted(1, 1, ex('2/1/d', 'x'));
    i.observeExecuted(2, 1, ex('null'));
    i.observeExecuted(1, 2, ex('2/2/e', 'x'));
    i.observeExecuted(3, 1, ex('2/1/d', 'x'));
    i.observeExecuted(3, 2, ex('2/2/e', 'y'));
    expect(i.violations).toHaveLength(2);
    expect(i.violations[0]).toMatch(/^execution-agreement: at index 1/);
    expect(i.violations[1]).toMatch(/result x\).*result y\)/);
  });
  it('contiguity: no gap unless a checkpoint was installed; restarts re-execute from their snapshot', () => {
    const i = inv();
    i.observeExecuted(1, 1, ex('null'));
    i.observeExecuted(1, 3, ex('null'));
    expect(i.violations).toEqual([expect.stringMatching(/^contiguity: replica 1 executed 3 after 1/)]);
    const j = inv();
    j.observeExecuted(1, 1, ex('null'));
    j.observeInstalled(1, 16);
    j.observeExecuted(1, 17, ex('null'));
    j.observeRestart(1, 16);
    j.observeExecuted(1, 17, ex('null'));
    expect(j.violations).toEqual([]);
    j.observeInstalled(1, 8);
    expect(j.violations).toEqual([expect.stringMatching(/installed checkpoint 8 below its executed index 17/)]);
  });
  it('checkpoint-agreement and view-monotonic', () => {
    const i = inv();
    i.observeCheckpoint(1, 32, 'c');
    i.observeCheckpoint(2, 32, 'd');
    i.observeView(3, 5);
    i.observeView(3, 4);
    expect(i.violations).toEqual([expect.stringMatching(/^checkpoint-agreement/), expect.stringMatching(/^view-monotonic: replica 3 went from view 5 back to 4/)]);
  });
  it('view-monotonic across a restart: back to the durable view is fine, below it is not', () => {
    const i = inv();
    i.observeView(2, 3); // entered view 3 in memory, crashed before persisting it (durable: 2)
    i.observeRestartView(2, 2);
    i.observeView(2, 2);
    expect(i.violations).toEqual([]);
    i.observeRestartView(2, 2);
    i.observeView(2, 1);
    expect(i.violations).toEqual([expect.stringMatching(/^view-monotonic: replica 2 went from view 2 back to 1/)]);
  });
  it('client-safety: an accepted result must be one an honest replica produced, at that index', () => {
    const i = inv();
    i.observeRestart(1, 6); // restarted from a snapshot at 6
    i.observeExecuted(1, 7, ex('2/1/d', 'v1'));
    i.observeAccepted(2, 1, 7, 'v1');
    i.observeAccepted(2, 1, 7, 'LIE');
    i.observeAccepted(2, 1, 8, 'v1');
    i.observeAccepted(3, 9, 1, 'x');
    expect(i.violations.map((v) => v.split(':')[0])).toEqual(['client-safety', 'client-safety', 'client-safety']);
    expect(i.violations[2]).toMatch(/never executed by an honest replica/);
  });
  it('liveness: reports requests that never ran and honest replicas that disagree on progress', () => {
    const i = inv();
    i.observeExecuted(1, 1, ex('2/1/d', ''));
    i.observeExecuted(2, 1, ex('2/1/d', ''));
    expect(i.checkLiveness(['2/1', '3/4'], [1, 2, 3])).toEqual(['request 3/4 never executed', 'honest replicas executed up to different indexes: 1:1 2:1 3:0']);
  });
  it('throws at the first violation when asked to (the harness does: a failing seed stops where it fails)', () => {
    const i = new PbftInvariants([1, 2], true);
    i.observeCommitted(1, 0, 1, 'a');
    expect(() => i.observeCommitted(2, 0, 1, 'b')).toThrow(/pbft invariant: commit-agreement/);
  });
});
