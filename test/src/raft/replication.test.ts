/**
 * Log replication (Raft §5.3, §5.4; thesis §3.5, §3.6, §5.3 backtracking, Figure 8).
 */
import { describe, expect, it } from 'vitest';
import { Cluster, text } from './harness.ts';
import { EntryType, MsgType, type Entry, type Message } from '../../../src/wire/messages.ts';

const ent = (index: number, term: number, data = `e${index}t${term}`): Entry => ({ index, term, type: EntryType.Normal, data: text(data) });
const run = (lo: number, hi: number, term: number): Entry[] => Array.from({ length: hi - lo + 1 }, (_, k) => ent(lo + k, term));

describe('raft replication', () => {
  it('replicates and applies proposals in order on every node', () => {
    const c = new Cluster({ seed: 11, voters: [1, 2, 3] });
    c.waitLeader();
    for (let i = 0; i < 20; i++) c.propose(`v${i}`);
    c.run(20);
    const want = Array.from({ length: 20 }, (_, i) => `v${i}`);
    for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(want);
  });

  it('agreement despite a failed follower; it catches up when back', () => {
    const c = new Cluster({ seed: 12, voters: [1, 2, 3] });
    const l = c.waitLeader();
    const f = [1, 2, 3].find((x) => x !== l.id)!;
    c.crash(f);
    for (let i = 0; i < 10; i++) c.propose(`a${i}`);
    c.run(10);
    for (const n of c.up()) expect(c.appliedData(n.id)).toHaveLength(10);
    c.restart(f);
    c.run(30);
    expect(c.appliedData(f)).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
  });

  it('no commit without a majority', () => {
    const c = new Cluster({ seed: 13, voters: [1, 2, 3, 4, 5] });
    const l = c.waitLeader();
    c.run(5);
    const commit = l.r.status().commitIndex;
    const others = [1, 2, 3, 4, 5].filter((x) => x !== l.id);
    c.partition([l.id, others[0]!], others.slice(1));
    for (let i = 0; i < 5; i++) l.r.propose(text(`x${i}`));
    c.process(l);
    c.run(10); // fewer ticks than check-quorum needs
    expect(l.r.status().lastIndex).toBe(commit + 5);
    expect(l.r.status().commitIndex).toBe(commit);
  });

  it('a partitioned old leader rejoins and its uncommitted entries are overwritten', () => {
    const c = new Cluster({ seed: 14, voters: [1, 2, 3, 4, 5] });
    const old = c.waitLeader();
    c.propose('committed');
    c.run(10);
    c.isolate(old.id);
    for (let i = 0; i < 5; i++) old.r.propose(text(`lost${i}`));
    c.process(old);
    c.runUntil(() => c.leader() !== undefined && c.leader()!.id !== old.id, 200, 'new leader');
    c.propose('new');
    c.run(10);
    c.heal();
    c.run(50);
    for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(['committed', 'new']);
    const l = c.leader()!;
    expect(old.r.status().lastIndex).toBe(l.r.status().lastIndex);
    expect(old.r.entries(1, 100).some((e) => new TextDecoder().decode(e.data).startsWith('lost'))).toBe(false);
  });

  it('backs up over hundreds of divergent entries in O(terms) round trips', () => {
    // Node 1 holds 300 entries of terms 2-4 that no one else has; 2 and 3 hold 200
    // of terms 5-6. The new leader (2 or 3) must find the match point at index 10.
    const common = run(1, 10, 1);
    const stale = [...common, ...run(11, 110, 2), ...run(111, 210, 3), ...run(211, 310, 4)];
    const good = [...common, ...run(11, 110, 5), ...run(111, 210, 6)];
    const c = new Cluster({
      seed: 15, voters: [1, 2, 3],
      persisted: {
        1: { hardState: { term: 6, vote: 0, commit: 10 }, entries: stale },
        2: { hardState: { term: 6, vote: 0, commit: 10 }, entries: good },
        3: { hardState: { term: 6, vote: 0, commit: 10 }, entries: good },
      },
    });
    c.record = true;
    const l = c.waitLeader();
    expect(l.id).not.toBe(1);
    c.runUntil(() => c.node(1).r.status().lastIndex === l.r.status().lastIndex && c.node(1).r.termAt(210) === 6, 100, 'node 1 repaired');
    const rejects = c.log.filter((m: Message) => m.type === MsgType.AppendReply && m.from === 1 && !m.success);
    expect(rejects.length).toBeGreaterThan(0);
    expect(rejects.length).toBeLessThanOrEqual(4); // one per term at most, not one per entry
    expect(c.appliedData(1)).toHaveLength(210);
  });

  it('Figure 8: an entry of an earlier term on a majority is not committed by counting', () => {
    // State of Figure 8 (c): S5 (down) led term 3 with (2,t3); S1, S2 hold (2,t2).
    const base = [ent(1, 1)];
    const c = new Cluster({
      seed: 16, voters: [1, 2, 3, 4, 5], down: [5],
      options: { maxEntriesPerMsg: 1 },
      persisted: {
        1: { hardState: { term: 3, vote: 0, commit: 1 }, entries: [...base, ent(2, 2)] },
        2: { hardState: { term: 3, vote: 0, commit: 1 }, entries: [...base, ent(2, 2)] },
        3: { hardState: { term: 3, vote: 0, commit: 1 }, entries: base },
        4: { hardState: { term: 3, vote: 0, commit: 1 }, entries: base },
        5: { hardState: { term: 3, vote: 5, commit: 1 }, entries: [...base, ent(2, 3)] },
      },
    });
    // S1 must win (only S1 and S2 can, by log); let S1 campaign first.
    // Entries of the new terms (> 3) are lost on the way: only (2,t2) travels.
    c.filter = (m) => (m.type === MsgType.Append ? { ...m, entries: m.entries.filter((e) => e.term <= 3) } : m);
    c.partition([2], [1, 3, 4]);
    c.run(16);
    c.node(1).r.campaign();
    c.process(c.node(1));
    c.runUntil(() => c.leader()?.id === 1, 60, 'S1 leads term 4+');
    c.heal();
    c.run(30);
    expect(c.node(3).r.termAt(2)).toBe(2); // (2,t2) is on S1, S2, S3: a majority
    expect(c.node(1).r.status().commitIndex).toBe(1); // ...but not committed (§5.4.2)
    // (d): S1 crashes, S5 comes back and wins with S2, S3, S4; it overwrites index 2.
    c.filter = undefined;
    c.crash(1);
    c.restart(5);
    c.run(16); // the others' leader leases run out
    for (let k = 0; k < 5 && c.leader()?.id !== 5; k++) {
      c.node(5).r.campaign(); // S5's log (last term 3) is the most up to date: S2-S4 grant
      c.process(c.node(5));
      c.run(3);
    }
    expect(c.leader()?.id).toBe(5);
    c.run(30);
    for (const id of [2, 3, 4, 5]) expect(c.node(id).r.termAt(2)).toBe(3);
  });

  it('Figure 8 (e): once the leader commits an entry of its term, older entries are committed too', () => {
    const base = [ent(1, 1)];
    const c = new Cluster({
      seed: 17, voters: [1, 2, 3, 4, 5], down: [5],
      persisted: {
        1: { hardState: { term: 3, vote: 0, commit: 1 }, entries: [...base, ent(2, 2)] },
        2: { hardState: { term: 3, vote: 0, commit: 1 }, entries: [...base, ent(2, 2)] },
        3: { hardState: { term: 3, vote: 0, commit: 1 }, entries: base },
        4: { hardState: { term: 3, vote: 0, commit: 1 }, entries: base },
        5: { hardState: { term: 3, vote: 5, commit: 1 }, entries: [...base, ent(2, 3)] },
      },
    });
    const l = c.waitLeader();
    expect([1, 2]).toContain(l.id);
    c.run(20);
    expect(l.r.status().commitIndex).toBe(3); // (2,t2) and the new leader's Noop at 3
    c.crash(l.id);
    c.restart(5);
    c.run(400);
    expect(c.leader()!.id).not.toBe(5); // S5's log is behind now: it cannot win
    expect(c.node(5).r.termAt(2)).toBe(2);
  });

  it('crashes and restarts of every node keep committed data', () => {
    const c = new Cluster({ seed: 18, voters: [1, 2, 3] });
    c.waitLeader();
    for (let i = 0; i < 10; i++) c.propose(`b${i}`);
    c.run(10);
    for (const id of [1, 2, 3]) c.crash(id);
    for (const id of [1, 2, 3]) c.restart(id);
    c.waitLeader();
    c.propose('after');
    c.run(20);
    for (const n of c.up()) expect(c.appliedData(n.id)).toEqual([...Array.from({ length: 10 }, (_, i) => `b${i}`), 'after']);
  });

  it('batches proposals into few Appends and bounds in-flight appends', () => {
    const c = new Cluster({ seed: 19, voters: [1, 2, 3], net: { minDelay: 3, maxDelay: 3 } });
    const l = c.waitLeader();
    c.run(10);
    c.record = true;
    for (let i = 0; i < 100; i++) l.r.propose(text(`p${i}`));
    c.process(l);
    const appends = c.log.filter((m) => m.type === MsgType.Append);
    // 100 proposals made between two Readies: two Appends per follower (64 + 36 entries, maxEntriesPerMsg 64).
    expect(appends.map((m) => (m.type === MsgType.Append ? m.entries.length : -1))).toEqual([64, 36, 64, 36]);
    // Pipelining: proposals while Appends are in flight go out at once, up to maxInflight.
    c.log = [];
    for (let i = 0; i < 20; i++) {
      l.r.propose(text(`q${i}`));
      c.process(l);
    }
    const per = c.log.filter((m) => m.type === MsgType.Append && m.to !== l.id).length;
    expect(per).toBe(2 * (8 - 2)); // 2 were in flight already; 8 in flight per follower, the rest waits
    for (const p of l.r.status().progress) expect(p.inflight).toBe(8);
    c.run(30);
    for (const n of c.up()) expect(c.appliedData(n.id)).toHaveLength(120);
  });

  it('an Append stays within the byte budget', () => {
    const c = new Cluster({ seed: 20, voters: [1, 2, 3], options: { maxMsgBytes: 1024 }, wire: true });
    const l = c.waitLeader();
    for (let i = 0; i < 50; i++) l.r.propose(text('y'.repeat(200)));
    c.process(l);
    c.run(50);
    for (const n of c.up()) expect(c.appliedData(n.id)).toHaveLength(50);
    expect(c.maxFrame.get('Append')!).toBeLessThanOrEqual(1024);
    expect(l.r.propose(text('z'.repeat(1000))).ok).toBe(false); // too large for one frame
  });
});
