/**
 * Leader election (Raft §5.2, thesis §3.4, §4.2.3, §6.2, §9.6, §3.10).
 */
import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';

describe('raft election', () => {
  it('elects exactly one leader in a fresh 3-node cluster, and everyone follows it', () => {
    const c = new Cluster({ seed: 1, voters: [1, 2, 3] });
    const l = c.waitLeader(100);
    c.run(20);
    const terms = c.up().map((n) => n.r.status().term);
    expect(new Set(terms).size).toBe(1);
    for (const n of c.up()) expect(n.r.status().leader).toBe(l.id);
    expect(c.up().filter((n) => n.r.status().role === 'leader')).toHaveLength(1);
  });

  it('elects a new leader after the leader is cut off, and the old one steps down (check-quorum)', () => {
    const c = new Cluster({ seed: 2, voters: [1, 2, 3, 4, 5] });
    const old = c.waitLeader();
    const oldTerm = old.r.status().term;
    c.isolate(old.id);
    c.runUntil(() => c.up().some((n) => n.id !== old.id && n.r.status().role === 'leader'), 200, 'new leader');
    const nl = c.up().find((n) => n.id !== old.id && n.r.status().role === 'leader')!;
    expect(nl.r.status().term).toBeGreaterThan(oldTerm);
    // check-quorum: the isolated leader hears no majority within an election timeout
    c.runUntil(() => old.r.status().role !== 'leader', 40, 'old leader steps down');
  });

  it('no leader without a quorum', () => {
    const c = new Cluster({ seed: 3, voters: [1, 2, 3, 4, 5] });
    c.waitLeader();
    c.partition([1, 2], [3, 4, 5]);
    c.crash(3);
    c.crash(4);
    c.run(100); // the old leader (if in the minority) steps down by then
    c.run(500);
    expect(c.up().filter((n) => n.r.status().role === 'leader')).toEqual([]);
  });

  it('pre-vote: a node back from a partition does not disrupt the leader (term unchanged)', () => {
    const c = new Cluster({ seed: 4, voters: [1, 2, 3] });
    const l = c.waitLeader();
    const term = l.r.status().term;
    const other = [1, 2, 3].find((x) => x !== l.id)!;
    c.isolate(other);
    c.run(300); // it times out many times, but pre-vote never wins, so it never bumps its term
    expect(c.node(other).r.status().term).toBe(term);
    c.heal();
    c.run(100);
    expect(c.leader()!.id).toBe(l.id);
    for (const n of c.up()) expect(n.r.status().term).toBe(term);
  });

  it('without pre-vote the same rejoin does disrupt (the test can fail)', () => {
    const c = new Cluster({ seed: 4, voters: [1, 2, 3], options: { preVote: false, checkQuorum: false } });
    const l = c.waitLeader();
    const term = l.r.status().term;
    const other = [1, 2, 3].find((x) => x !== l.id)!;
    c.isolate(other);
    c.run(300);
    expect(c.node(other).r.status().term).toBeGreaterThan(term);
    c.heal();
    c.run(100);
    expect(c.leader()!.r.status().term).toBeGreaterThan(term);
  });

  it('leader stickiness: a campaign() by a follower that still hears the leader changes nothing', () => {
    const c = new Cluster({ seed: 5, voters: [1, 2, 3] });
    const l = c.waitLeader();
    const term = l.r.status().term;
    const f = c.up().find((n) => n.id !== l.id)!;
    expect(f.r.campaign().ok).toBe(true);
    c.process(f);
    c.run(50);
    expect(c.leader()!.id).toBe(l.id);
    expect(l.r.status().term).toBe(term);
  });

  it('campaign() when the leader is really gone elects quickly', () => {
    const c = new Cluster({ seed: 6, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.crash(l.id);
    const f = c.up()[0]!;
    c.run(16); // lease on the other follower runs out (min election timeout = 15 ticks)
    f.r.campaign();
    c.process(f);
    c.runUntil(() => c.leader() !== undefined, 10, 'quick election after campaign()');
  });

  it('witnesses and learners never campaign', () => {
    const c = new Cluster({ seed: 7, voters: [1], witnesses: [2], learners: [3] });
    c.crash(1);
    c.run(1000);
    expect(c.node(2).r.status().role).toBe('follower');
    expect(c.node(3).r.status().role).toBe('follower');
    expect(c.node(2).r.campaign().ok).toBe(false);
    expect(c.node(2).r.status().term).toBe(0);
  });

  it('leadership transfer: target becomes leader within an election timeout; proposals refused meanwhile', () => {
    const c = new Cluster({ seed: 8, voters: [1, 2, 3] });
    const l = c.waitLeader();
    for (let i = 0; i < 5; i++) c.propose(`v${i}`);
    const to = [1, 2, 3].find((x) => x !== l.id)!;
    c.crash(to); // cannot finish: target down
    expect(l.r.transferLeadership(to).ok).toBe(true);
    const rej = l.r.propose(new Uint8Array([1]));
    expect(rej.ok).toBe(false);
    if (!rej.ok) expect(rej.code).toBe('transfer-in-progress');
    c.run(20); // aborted after an election timeout (15 ticks)
    expect(l.r.status().transferee).toBe(0);
    expect(l.r.propose(new Uint8Array([1])).ok).toBe(true);
    c.restart(to);
    c.run(10);
    expect(l.r.transferLeadership(to).ok).toBe(true);
    c.process(l);
    c.runUntil(() => c.leader()?.id === to, 30, 'transfer');
    expect(c.node(to).r.status().term).toBe(l.r.status().term);
    expect(c.node(l.id).r.status().role).toBe('follower');
  });

  it('refuses transfer to a witness or learner', () => {
    const c = new Cluster({ seed: 9, voters: [1, 2], witnesses: [3], learners: [4] });
    const l = c.waitLeader();
    expect(l.r.transferLeadership(3).ok).toBe(false);
    expect(l.r.transferLeadership(4).ok).toBe(false);
  });
});
