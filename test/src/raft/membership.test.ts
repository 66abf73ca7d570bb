/**
 * Membership changes, one server at a time (thesis §4.1-§4.2), learners and witnesses.
 */
import { describe, expect, it } from 'vitest';
import { EntryType, MsgType } from '../../../src/wire/messages.ts';
import { Cluster, text } from './harness.ts';

const boot = { voters: [1, 2, 3], learners: [], witnesses: [] };

describe('raft membership', () => {
  it('a learner gets the log, does not count for commit, and is promoted only once caught up', () => {
    const c = new Cluster({ seed: 61, voters: [1, 2, 3] });
    const l = c.waitLeader();
    for (let i = 0; i < 30; i++) c.propose(`m${i}`);
    c.run(10);
    c.addNode(4, boot);
    c.crash(4); // not caught up yet
    expect(l.r.proposeConfChange({ op: 'add-learner', node: 4 }).ok).toBe(true);
    c.process(l);
    c.run(5);
    const p = l.r.proposeConfChange({ op: 'promote', node: 4 });
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.code).toBe('not-caught-up');
    // With both other voters down, the learner (which gets the entry) does not help to commit.
    const others = [1, 2, 3].filter((x) => x !== l.id);
    for (const x of others) c.crash(x);
    c.restart(4);
    c.run(10);
    expect(c.appliedData(4)).toHaveLength(30); // got the log
    const commit = l.r.status().commitIndex;
    const xi = c.propose('x')!;
    c.run(10);
    expect(c.node(4).r.status().lastIndex).toBe(xi);
    expect(l.r.status().commitIndex).toBe(commit);
    for (const x of others) c.restart(x);
    c.run(20);
    expect(c.appliedData(4).at(-1)).toBe('x');
    expect(l.r.proposeConfChange({ op: 'promote', node: 4 }).ok).toBe(true);
    c.process(l);
    c.run(20);
    expect(l.r.status().config.voters).toContain(4);
    expect(c.node(4).r.status().config.voters).toContain(4);
  });

  it('one change at a time; bad changes are refused with a reason', () => {
    const c = new Cluster({ seed: 62, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    expect(l.r.proposeConfChange({ op: 'add-learner', node: 9 }).ok).toBe(true);
    const second = l.r.proposeConfChange({ op: 'add-learner', node: 10 });
    expect(second.ok).toBe(false);
    if (!second.ok) expect(second.code).toBe('conf-pending');
    c.process(l);
    c.run(10);
    const bad = l.r.proposeConfChange({ op: 'remove', node: 77 });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.reason).toMatch(/not a member/);
    const bad2 = l.r.proposeConfChange({ op: 'add-voter', node: 300 });
    expect(bad2.ok).toBe(false);
  });

  it('a removed voter does not disrupt the cluster', () => {
    const c = new Cluster({ seed: 63, voters: [1, 2, 3, 4] });
    const l = c.waitLeader();
    c.run(10);
    const victim = [1, 2, 3, 4].find((x) => x !== l.id)!;
    expect(l.r.proposeConfChange({ op: 'remove', node: victim }).ok).toBe(true);
    c.process(l);
    c.run(20);
    const term = l.r.status().term;
    c.run(500);
    expect(c.leader()!.id).toBe(l.id);
    expect(l.r.status().term).toBe(term);
    expect(l.r.status().config.voters).not.toContain(victim);
  });

  it('a leader that removes itself steps down after the change commits; the rest elect a leader', () => {
    const c = new Cluster({ seed: 64, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    expect(l.r.proposeConfChange({ op: 'remove', node: l.id }).ok).toBe(true);
    c.process(l);
    c.runUntil(() => l.r.status().role !== 'leader', 20, 'step down');
    const nl = c.waitLeader();
    expect(nl.id).not.toBe(l.id);
    c.propose('without-old');
    c.run(20);
    expect(c.appliedData(nl.id).at(-1)).toBe('without-old');
    c.run(300);
    expect(l.r.status().role).toBe('follower'); // never campaigns again
  });

  it('2 nodes + witness: commits with one data node down; the witness never leads and stores no data', () => {
    const c = new Cluster({ seed: 65, voters: [1, 2], witnesses: [3] });
    const l = c.waitLeader();
    for (let i = 0; i < 5; i++) c.propose(`w${i}`);
    c.run(10);
    const other = l.id === 1 ? 2 : 1;
    c.crash(other);
    for (let i = 5; i < 10; i++) c.propose(`w${i}`);
    c.run(10);
    expect(c.appliedData(l.id)).toHaveLength(10); // committed by leader + witness
    // The leader dies; the other data node comes back and leads with the witness' vote.
    c.restart(other);
    c.run(20);
    c.crash(l.id);
    c.runUntil(() => c.leader()?.id === other, 300, 'other node leads');
    c.run(10);
    expect(c.appliedData(other)).toEqual(Array.from({ length: 10 }, (_, i) => `w${i}`));
    // Witness: never leader, no data in its log, store or state machine.
    const w = c.node(3);
    expect(w.r.status().role).not.toBe('leader');
    const normal = w.r.entries(1, 1000).filter((e) => e.type === EntryType.Normal);
    expect(normal.length).toBeGreaterThanOrEqual(10);
    expect(normal.every((e) => e.data.length === 0)).toBe(true);
    expect(w.store.entries.filter((e) => e.type === EntryType.Normal).every((e) => e.data.length === 0)).toBe(true);
  });

  it('a witness that fell behind gets a snapshot without data', () => {
    const c = new Cluster({ seed: 66, voters: [1, 2], witnesses: [3] });
    const l = c.waitLeader();
    c.crash(3);
    for (let i = 0; i < 10; i++) c.propose(`z${i}`);
    c.run(10);
    c.compact(l.id, 1000);
    c.record = true;
    c.restart(3);
    c.run(30);
    const snaps = c.log.filter((m) => m.type === MsgType.Snapshot && m.to === 3);
    expect(snaps.length).toBeGreaterThan(0);
    expect(snaps.every((m) => m.type === MsgType.Snapshot && m.data.length === 0 && m.total === 0)).toBe(true);
    expect(c.node(3).r.status().snapshotIndex).toBe(l.r.status().snapshotIndex);
    expect(c.node(3).store.snapshot!.data.length).toBe(0);
  });

  it('a witness can be added and then lets the cluster survive a data node loss', () => {
    const c = new Cluster({ seed: 67, voters: [1, 2] });
    const l = c.waitLeader();
    c.run(10);
    c.addNode(3, { voters: [1, 2], learners: [], witnesses: [] });
    expect(l.r.proposeConfChange({ op: 'add-witness', node: 3 }).ok).toBe(true);
    c.process(l);
    c.run(20);
    c.crash(l.id === 1 ? 2 : 1);
    expect(l.r.propose(text('still')).ok).toBe(true);
    c.process(l);
    c.run(20);
    expect(c.appliedData(l.id).at(-1)).toBe('still');
  });
});
