/**
 * Scenarios found by independent testers (issue 12, point 3), each written as the rule
 * it checks: membership changes around a witness, a self-removal that must not leave
 * the cluster without a leader, and lease reads around a delayed TimeoutNow.
 */
import { describe, expect, it } from 'vitest';
import { EntryType, MsgType, type Entry, type Message } from '../../../src/wire/messages.ts';
import { encodeConfig, RaftNode, type MemberConfig } from '../../../src/raft/index.ts';
import { Rng } from '../../../src/rng.ts';
import { Cluster, text, type SimNode } from './harness.ts';

/** A witness-side voter (id 3) whose log ends with a config entry the candidate (2) lacks. */
function voterWithTrailingConfig(boot: MemberConfig, next: MemberConfig, commit: number): RaftNode {
  const entries: Entry[] = [
    { term: 1, index: 1, type: EntryType.Noop, data: new Uint8Array(0) },
    { term: 1, index: 2, type: EntryType.Normal, data: new Uint8Array(0) },
    { term: 1, index: 3, type: EntryType.Config, data: encodeConfig(next) },
  ];
  return new RaftNode({ id: 3, config: boot, hardState: { term: 1, vote: 1, commit }, entries, rng: new Rng(3) });
}

function voteFor2(r: RaftNode, lastIndex: number): boolean {
  r.step({ type: MsgType.Vote, from: 2, to: 3, term: 2, lastIndex, lastTerm: 1, transfer: false });
  const rd = r.ready()!;
  r.advance(rd);
  const reply = rd.messages.find((m) => m.type === MsgType.VoteReply);
  return reply !== undefined && reply.type === MsgType.VoteReply && reply.granted;
}

const witnessBoot = { voters: [1, 2], learners: [], witnesses: [3] };

describe('raft scenarios (issue 12)', () => {
  it('a former witness re-added as a voter neither leads nor applies until a snapshot gives it the data; a learner it then feeds applies the real values', () => {
    const c = new Cluster({ seed: 1201, voters: [1, 2], witnesses: [3] });
    const l = c.waitLeader();
    for (const v of ['a', 'b', 'c']) c.propose(v);
    c.run(10);
    expect(l.r.proposeConfChange({ op: 'remove', node: 3 }).ok).toBe(true);
    c.process(l);
    c.run(20);
    expect(l.r.proposeConfChange({ op: 'add-voter', node: 3 }).ok).toBe(true);
    c.process(l);
    c.run(30);
    const w = c.node(3);
    expect(w.r.status().config.voters).toContain(3);
    // Its log holds the real indexes and terms but no data: it must not lead or apply.
    expect(w.r.status().missingDataTo).toBeGreaterThan(0);
    const appliedBefore = w.r.status().appliedIndex;
    expect(l.r.transferLeadership(3).ok).toBe(true);
    c.process(l);
    c.run(60);
    expect(c.leader()?.id).toBe(l.id);
    expect(w.r.status().role).toBe('follower');
    expect(w.r.status().appliedIndex).toBe(appliedBefore);
    // Not forgotten over a restart (the empty entries in its durable log say it).
    c.crash(3);
    c.restart(3);
    expect(c.node(3).r.status().missingDataTo).toBeGreaterThan(0);
    // The leader's next snapshot carries the data.
    c.propose('d');
    c.run(10);
    c.compact(l.id);
    c.runUntil(() => c.node(3).r.status().missingDataTo === 0, 100, 'node 3 gets the data');
    c.run(10);
    expect(c.appliedData(3)).toEqual(['a', 'b', 'c', 'd']);
    // Now it may lead, and what it hands a new learner is the real data.
    expect(l.r.transferLeadership(3).ok).toBe(true);
    c.process(l);
    c.runUntil(() => c.leader()?.id === 3, 100, 'node 3 leads');
    c.run(10);
    const nl = c.node(3);
    expect(nl.r.proposeConfChange({ op: 'add-learner', node: 4 }).ok).toBe(true);
    c.process(nl);
    c.addNode(4, witnessBoot);
    c.propose('e');
    c.runUntil(() => c.appliedData(4).length >= 5, 200, 'learner 4 catches up');
    expect(c.appliedData(4)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a former witness re-added as a learner drops a snapshot older than its gap and installs the next one; it applies no empty value', () => {
    const c = new Cluster({ seed: 1205, voters: [1, 2], witnesses: [3] });
    const l = c.waitLeader();
    c.propose('a');
    c.propose('b');
    c.run(10);
    c.compact(l.id); // a snapshot below what the witness will hold
    c.propose('c');
    c.run(10);
    expect(l.r.proposeConfChange({ op: 'remove', node: 3 }).ok).toBe(true);
    c.process(l);
    c.run(20);
    c.record = true;
    expect(l.r.proposeConfChange({ op: 'add-learner', node: 3 }).ok).toBe(true);
    c.process(l);
    c.run(60);
    const w = c.node(3);
    const gap = w.r.status().missingDataTo;
    expect(gap).toBeGreaterThan(l.r.status().snapshotIndex);
    // The old snapshot was offered and not taken.
    expect(c.log.some((m) => m.type === MsgType.Snapshot && m.to === 3)).toBe(true);
    expect(w.r.status().snapshotIndex).toBe(0);
    const applied = w.r.status().appliedIndex;
    c.propose('d');
    c.run(10);
    expect(w.r.status().appliedIndex).toBe(applied);
    c.compact(l.id);
    c.runUntil(() => w.r.status().missingDataTo === 0, 100, 'node 3 gets the newer snapshot');
    c.propose('e');
    c.run(10);
    expect(c.appliedData(3)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('propose refuses empty data, so that an entry without data always means "data not held here"', () => {
    const r = new RaftNode({ id: 1, config: { voters: [1], learners: [], witnesses: [] }, rng: new Rng(1) });
    r.campaign();
    r.advance(r.ready()!);
    const res = r.propose(new Uint8Array(0));
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.code).toBe('bad-request');
      expect(res.reason).toMatch(/data is empty/);
    }
    expect(r.propose(text('x')).ok).toBe(true);
  });

  it('2 data + witness: after the leader proposes its own removal and steps down, the cluster elects again once a majority of the newest config can talk', () => {
    const c = new Cluster({ seed: 1202, voters: [1, 2], witnesses: [3] });
    const l = c.waitLeader();
    const f = l.id === 1 ? 2 : 1;
    c.propose('before');
    c.run(10);
    c.isolate(f);
    expect(l.r.proposeConfChange({ op: 'remove', node: l.id }).ok).toBe(true);
    c.process(l);
    c.runUntil(() => l.r.status().role !== 'leader', 100, 'the removed leader steps down (check-quorum)');
    // The removal reached only the witness.
    expect(c.node(3).r.status().lastIndex).toBe(l.r.status().lastIndex);
    expect(c.node(f).r.status().lastIndex).toBeLessThan(l.r.status().lastIndex);
    c.heal();
    const nl = c.waitLeader(1000);
    expect(nl.id).not.toBe(3);
    const i = c.propose('after');
    expect(i).toBeDefined();
    c.run(20);
    expect(c.appliedData(nl.id).at(-1)).toBe('after');
  });

  it('2 data + witness, check-quorum off: after the leader proposes its own removal and crashes, the follower and the witness elect again', () => {
    const c = new Cluster({ seed: 1203, voters: [1, 2], witnesses: [3], options: { checkQuorum: false } });
    const l = c.waitLeader();
    const f = l.id === 1 ? 2 : 1;
    c.propose('before');
    c.run(10);
    c.isolate(f);
    expect(l.r.proposeConfChange({ op: 'remove', node: l.id }).ok).toBe(true);
    c.process(l);
    c.run(5);
    expect(c.node(3).r.status().lastIndex).toBe(l.r.status().lastIndex);
    c.crash(l.id);
    c.heal();
    const nl = c.waitLeader(1000);
    expect(nl.id).toBe(f);
    c.propose('after');
    c.run(20);
    expect(c.appliedData(f)).toEqual(['before', 'after']);
    // The old leader comes back; its uncommitted removal is overwritten and it follows.
    c.restart(l.id);
    c.run(50);
    expect(c.appliedData(l.id)).toEqual(['before', 'after']);
    expect(c.leader()?.id).toBe(f);
  });

  it('a voter grants a shorter log only when the entries it lacks fall under a config in which every quorum holds the candidate, and none is known committed', () => {
    const boot = { voters: [1, 2], learners: [], witnesses: [3] };
    const newest = { voters: [2], learners: [], witnesses: [3] };
    // Candidate 2 ends at index 2; the voter's entry 3 is C = {2, witness 3}: granted.
    expect(voteFor2(voterWithTrailingConfig(boot, newest, 2), 2)).toBe(true);
    // The voter knows index 3 committed: never for a log that lacks it.
    expect(voteFor2(voterWithTrailingConfig(boot, newest, 3), 2)).toBe(false);
    // The candidate lacks a Normal entry too (ends at 1): that one may be committed.
    expect(voteFor2(voterWithTrailingConfig(boot, newest, 1), 1)).toBe(false);
    // Three voting members in C: a quorum of C without the candidate exists.
    const boot4 = { voters: [1, 2, 4], learners: [], witnesses: [3] };
    const three = { voters: [2, 4], learners: [], witnesses: [3] };
    expect(voteFor2(voterWithTrailingConfig(boot4, three, 2), 2)).toBe(false);
    // The candidate is not a voting member of C.
    const without2 = { voters: [1], learners: [], witnesses: [3] };
    expect(voteFor2(voterWithTrailingConfig(boot, without2, 2), 2)).toBe(false);
    // (b) No config after the candidate's log, and in its config {2, witness 3} every
    // quorum holds it: the Normal entries it lacks cannot be committed.
    const after = (cfg: MemberConfig) => new RaftNode({
      id: 3, config: boot, hardState: { term: 1, vote: 1, commit: 2 }, rng: new Rng(3),
      entries: [
        { term: 1, index: 1, type: EntryType.Noop, data: new Uint8Array(0) },
        { term: 1, index: 2, type: EntryType.Config, data: encodeConfig(cfg) },
        { term: 1, index: 3, type: EntryType.Normal, data: new Uint8Array(0) },
        { term: 1, index: 4, type: EntryType.Normal, data: new Uint8Array(0) },
      ],
    });
    expect(voteFor2(after(newest), 2)).toBe(true);
    expect(voteFor2(after(three), 2)).toBe(false);
  });

  it('a leader that proposed its own removal and lost its quorum before it committed campaigns again and finishes the change (thesis §4.2.2)', () => {
    const c = new Cluster({ seed: 1206, voters: [1, 2], witnesses: [3] });
    const l = c.waitLeader();
    const f = l.id === 1 ? 2 : 1;
    c.propose('both');
    c.run(10);
    c.isolate(f);
    c.propose('only-leader'); // committed by the leader and the witness: f lacks it
    c.run(10);
    expect(c.appliedData(l.id).at(-1)).toBe('only-leader');
    expect(l.r.proposeConfChange({ op: 'remove', node: l.id }).ok).toBe(true);
    c.process(l);
    c.runUntil(() => l.r.status().role !== 'leader', 100, 'the removed leader steps down (check-quorum)');
    c.heal();
    // f may not lead (it lacks a committed entry); the removed leader must come back,
    // commit its removal with f and the witness, and step down; then f leads.
    c.runUntil(() => c.leader()?.id === f, 1000, 'f leads');
    expect(c.appliedData(f)).toEqual(['both', 'only-leader']);
    expect(c.node(f).r.status().config.voters).toEqual([f]);
    c.propose('after');
    c.run(20);
    expect(c.appliedData(f)).toEqual(['both', 'only-leader', 'after']);
    c.run(300);
    expect(l.r.status().role).toBe('follower'); // removal committed: it never campaigns again
  });

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

  it('randomized: no read returns an index below a write committed before it was issued, with TimeoutNow held up to 1 s, transfers, partitions and crashes', () => {
    let served = 0;
    let leaseServed = 0;
    for (let seed = 1300; seed < 1330; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3], options: { leaseRead: true }, net: { drop: 0.02, minDelay: 0, maxDelay: 3 } });
      const rng = new Rng(seed).fork('reads');
      const held: Array<{ at: number; m: Message }> = [];
      c.filter = (m) => {
        if (m.type !== MsgType.TimeoutNow) return m;
        held.push({ at: c.now + (rng.chance(0.5) ? rng.int(0, 10) : rng.int(30, 100)), m });
        return undefined;
      };
      const issued = new Map<number, { node: SimNode; floor: number }>();
      let ctx = 0;
      const commitNow = () => Math.max(...c.up().map((n) => n.r.commitIndex));
      for (let t = 0; t < 800; t++) {
        const r = rng.float();
        const l = c.leader();
        // Reads go to any node that believes it leads, a deposed one included.
        const believers = c.up().filter((n) => n.r.isLeader);
        const rl = believers.length > 0 ? rng.pick(believers) : undefined;
        if (r < 0.2) c.propose(`w${t}`);
        else if (r < 0.45 && rl) {
          ctx++;
          issued.set(ctx, { node: rl, floor: commitNow() });
          const before = rl.reads.length;
          rl.r.readIndex(ctx);
          c.process(rl);
          if (rl.reads.length > before) leaseServed++; // answered at once: from the lease
        } else if (r < 0.47 && l) {
          l.r.transferLeadership(rng.pick([1, 2, 3].filter((x) => x !== l.id)));
          c.process(l);
        } else if (r < 0.48) {
          c.heal();
          c.isolate(rng.pick([1, 2, 3]));
        } else if (r < 0.5) {
          c.heal();
        } else if (r < 0.505) {
          const id = rng.pick([1, 2, 3]);
          if (c.node(id).up && c.up().length === 3) c.crash(id);
        } else if (r < 0.52) {
          for (const id of [1, 2, 3]) if (!c.node(id).up) c.restart(id);
        }
        for (let k = held.length - 1; k >= 0; k--) {
          if (held[k]!.at <= c.now) {
            const h = held.splice(k, 1)[0]!;
            c.deliver(h.m);
            // Often just as its sender is cut off (the reported schedule).
            if (rng.chance(0.5)) {
              c.heal();
              c.isolate(h.m.from);
            }
          }
        }
        c.tick();
        for (const n of c.up()) {
          for (const rs of n.reads) {
            const q = issued.get(rs.ctx);
            if (!q || q.node !== n) continue;
            issued.delete(rs.ctx);
            served++;
            if (rs.index < q.floor) throw new Error(`seed ${seed}: read ${rs.ctx} on node ${n.id} served at index ${rs.index}, below ${q.floor} committed before it was issued (t=${c.now})`);
          }
          n.reads = [];
        }
      }
    }
    expect(served).toBeGreaterThan(1000);
    expect(leaseServed).toBeGreaterThan(100); // lease reads did happen
  });
});
