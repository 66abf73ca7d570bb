/**
 * Scenarios found by independent testers (issue 12, point 3), each written as the rule
 * it checks: membership changes around a witness, a self-removal that must not leave
 * the cluster without a leader, and lease reads around a delayed TimeoutNow.
 */
import { describe, expect, it } from 'vitest';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import { Cluster, text } from './harness.ts';

describe('raft scenarios (issue 12)', () => {
  it('no lease read misses a committed write, however late the transfer\'s TimeoutNow is delivered', () => {
    const c = new Cluster({ seed: 1204, voters: [1, 2, 3], options: { leaseRead: true } });
    const l = c.waitLeader();
    c.propose('x');
    c.run(10);
    const target = l.id === 1 ? 2 : 1;
    let held: Message | undefined;
    c.filter = (m) => {
      if (m.type === MsgType.TimeoutNow) {
        held = m;
        return undefined;
      }
      return m;
    };
    expect(l.r.transferLeadership(target).ok).toBe(true);
    c.process(l);
    c.run(1);
    expect(held).toBeDefined();
    // Hold it well past the transfer's abort and any fixed blocking window (400 ms).
    c.run(40);
    expect(l.r.status().transferee).toBe(0);
    expect(c.leader()?.id).toBe(l.id);
    c.filter = undefined;
    // Delivered just as the old leader is cut off: the target wins and writes.
    c.deliver(held!);
    c.isolate(l.id);
    c.runUntil(() => c.node(target).r.isLeader, 30, 'the target leads');
    const nl = c.node(target);
    const wi = nl.r.propose(text('y'));
    expect(wi.ok).toBe(true);
    c.process(nl);
    c.runUntil(() => nl.r.commitIndex >= (wi.ok ? wi.index : 0), 30, 'the write commits');
    const idx = wi.ok ? wi.index : 0;
    // The old leader, cut off, still believes it leads within its lease window.
    expect(l.r.isLeader).toBe(true);
    expect(l.r.readIndex(99).ok).toBe(true);
    c.process(l);
    c.runUntil(() => l.reads.length > 0 || l.failedReads.includes(99), 100, 'the read is answered');
    for (const r of l.reads) expect(r.index).toBeGreaterThanOrEqual(idx);
    // Cut off, it cannot confirm leadership with a quorum round: the read fails (503).
    expect(l.failedReads).toEqual([99]);
  });
});
