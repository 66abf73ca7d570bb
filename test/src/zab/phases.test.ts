/**
 * The paper's phases 1–3 (Junqueira, Reed, Serafini 2011 §3–4; Medeiros 2012 §4.2–4.4),
 * rule by rule: discovery (a new epoch above every accepted one; a follower accepts
 * an epoch once; a more recent follower stops the prospective leader), synchronization
 * (DIFF, TRUNC or SNAP per follower; broadcast only after a quorum acknowledged
 * NEWLEADER), broadcast (commit after a quorum of durable ACKs, in zxid order) and
 * primary order across epochs (an uncommitted transaction may be skipped, never
 * reordered).
 */
import { describe, expect, it } from 'vitest';
import { EntryType, MsgType, ZabPeerState, type Message, type ZabAckEpoch, type ZabNotification } from '../../../src/wire/messages.ts';
import type { ZabNode } from '../../../src/zab/index.ts';
import { Cluster, text } from './harness.ts';
import { drain, hist, hs, lone } from './helpers.ts';

const vote = (from: number, to: number, leader: number, o: { epoch?: number; zxidTerm?: number; zxidIndex?: number; state?: ZabPeerState } = {}): ZabNotification => ({
  type: MsgType.ZabNotification, from, to, term: 1, leader, epoch: o.epoch ?? 0, zxidTerm: o.zxidTerm ?? 0, zxidIndex: o.zxidIndex ?? 0, state: o.state ?? ZabPeerState.Looking,
});

/** Drives a lone engine of a 3-node cluster {1,2,3} until it concluded FLE for `leader`. */
function settle(z: ZabNode, leader: number, v: { epoch?: number; zxidTerm?: number; zxidIndex?: number } = {}): Message[] {
  const out: Message[] = [];
  out.push(...drain(z).messages);
  for (const from of [1, 2, 3]) if (from !== z.id) z.step(vote(from, z.id, leader, v));
  out.push(...drain(z).messages);
  for (let i = 0; i < 10 && z.zabState === 'looking'; i++) {
    z.tick();
    out.push(...drain(z).messages);
  }
  return out;
}

describe('phase 1: discovery', () => {
  it('the prospective leader proposes max(acceptedEpoch of its quorum) + 1, durable before NEWEPOCH leaves', () => {
    const z = lone(3, [1, 2, 3], { hardState: hs(2, 2) });
    settle(z, 3, { epoch: 2 });
    expect(z.zabState).toBe('leading');
    z.step({ type: MsgType.ZabFollowerInfo, from: 1, to: 3, term: 5 });
    const rd = z.ready()!;
    expect(rd.hardState?.term).toBe(6); // acceptedEpoch = 6 persisted ...
    expect(rd.messages).toContainEqual(expect.objectContaining({ type: MsgType.ZabNewEpoch, to: 1, term: 6 })); // ... with the NEWEPOCH after it
    z.advance(rd);
    expect(z.status().phase).toBe('discovery');
  });

  it('a follower accepts a new epoch only above its acceptedEpoch; an equal one is answered as not counted (ZooKeeper -1); a lower one ends the session', () => {
    const make = () => {
      const z = lone(1, [1, 2, 3], { hardState: hs(5, 4), entries: hist([[4, ''], [4, 'a']]) });
      const sent = settle(z, 3, { epoch: 9, zxidTerm: 9, zxidIndex: 9 });
      expect(sent).toContainEqual(expect.objectContaining({ type: MsgType.ZabFollowerInfo, to: 3, term: 5 }));
      return z;
    };
    const up = make();
    up.step({ type: MsgType.ZabNewEpoch, from: 3, to: 1, term: 6 });
    const rd = up.ready()!;
    expect(rd.hardState).toMatchObject({ term: 6, vote: 4 });
    const ack = rd.messages.find((m) => m.type === MsgType.ZabAckEpoch) as ZabAckEpoch;
    expect(ack).toMatchObject({ ok: true, term: 6, currentEpoch: 4, lastIndex: 2, lastTerm: 4 });
    up.advance(rd);

    const same = make();
    same.step({ type: MsgType.ZabNewEpoch, from: 3, to: 1, term: 5 });
    const rd2 = same.ready()!;
    expect(rd2.hardState).toBeUndefined();
    expect(rd2.messages).toContainEqual(expect.objectContaining({ type: MsgType.ZabAckEpoch, ok: false, term: 5 }));
    same.advance(rd2);

    const low = make();
    low.step({ type: MsgType.ZabNewEpoch, from: 3, to: 1, term: 4 });
    drain(low);
    expect(low.zabState).toBe('looking');
    expect(low.status().acceptedEpoch).toBe(5);
  });

  it('an ACKEPOCH that does not count (already accepted) does not make a quorum', () => {
    const z = lone(3, [1, 2, 3]);
    settle(z, 3);
    z.step({ type: MsgType.ZabFollowerInfo, from: 1, to: 3, term: 0 });
    drain(z); // epoch 1 chosen and durable
    z.step({ type: MsgType.ZabAckEpoch, from: 1, to: 3, term: 1, ok: false, currentEpoch: 0, lastIndex: 0, lastTerm: 0, commit: 0 });
    drain(z);
    expect(z.status().phase).toBe('discovery');
    z.step({ type: MsgType.ZabAckEpoch, from: 2, to: 3, term: 1, ok: true, currentEpoch: 0, lastIndex: 0, lastTerm: 0, commit: 0 });
    drain(z);
    expect(z.status().phase).toBe('synchronization');
  });

  it('a follower with a more recent history (currentEpoch, zxid) stops the prospective leader: back to election', () => {
    const z = lone(3, [1, 2, 3], { hardState: hs(1, 1), entries: hist([[1, '']]) });
    settle(z, 3, { epoch: 1, zxidTerm: 1, zxidIndex: 1 });
    z.step({ type: MsgType.ZabFollowerInfo, from: 1, to: 3, term: 2 });
    drain(z);
    z.step({ type: MsgType.ZabAckEpoch, from: 1, to: 3, term: 3, ok: true, currentEpoch: 2, lastIndex: 2, lastTerm: 2, commit: 1 });
    drain(z);
    expect(z.zabState).toBe('looking');
  });

  it('the new epoch ends above every acceptedEpoch: a member that accepted a later epoch of a failed leader is brought in by a new election', () => {
    const h = hist([[1, ''], [1, 'a']]);
    const c = new Cluster({
      seed: 11,
      voters: [1, 2, 3],
      persisted: { 1: { hardState: hs(7, 1, 2), entries: h }, 2: { hardState: hs(1, 1, 2), entries: h }, 3: { hardState: hs(1, 1, 2), entries: h } },
    });
    c.runUntil(() => c.agreed() !== undefined, 400, 'all three in broadcast');
    const e = c.leader()!.z.status().epoch;
    expect(e).toBeGreaterThan(7);
    for (const id of [1, 2, 3]) expect(c.node(id).z.status()).toMatchObject({ acceptedEpoch: e, currentEpoch: e });
  });

  it('the same for an observer that accepted a later epoch: it is brought in, not left out', () => {
    const h = hist([[1, ''], [1, 'a']]);
    const c = new Cluster({
      seed: 111,
      voters: [1, 2, 3],
      observers: [4],
      down: [4],
      persisted: { 1: { hardState: hs(1, 1, 2), entries: h }, 2: { hardState: hs(1, 1, 2), entries: h }, 3: { hardState: hs(1, 1, 2), entries: h }, 4: { hardState: hs(9, 1, 2), entries: h } },
    });
    c.runUntil(() => c.agreed() !== undefined, 300, 'the voters settle first');
    expect(c.leader()!.z.status().epoch).toBeLessThan(9);
    c.restart(4);
    c.runUntil(() => c.agreed() !== undefined && c.node(4).z.status().phase === 'broadcast', 600, 'the observer in broadcast');
    expect(c.leader()!.z.status().epoch).toBeGreaterThan(9);
    c.propose('b');
    c.run(20);
    expect(c.appliedData(4)).toEqual(['a', 'b']);
  });
});

describe('phase 2: synchronization', () => {
  it('DIFF to a follower behind, TRUNC to one with transactions the leader lacks; afterwards all histories are the leader\'s', () => {
    // The leader-to-be (3) is the most recent: currentEpoch 2. Node 2 is a prefix of it
    // (DIFF); node 1 holds an uncommitted (1, 4) that the epoch-2 leader never had (TRUNC).
    const leader = hist([[1, ''], [1, 'a'], [1, 'b'], [2, ''], [2, 'c']]);
    const behind = hist([[1, ''], [1, 'a']]);
    const extra = hist([[1, ''], [1, 'a'], [1, 'b'], [1, 'z']]);
    const c = new Cluster({
      seed: 12,
      voters: [1, 2, 3],
      persisted: { 1: { hardState: hs(1, 1, 2), entries: extra }, 2: { hardState: hs(2, 1, 2), entries: behind }, 3: { hardState: hs(2, 2, 5), entries: leader } },
    });
    c.record = true;
    c.runUntil(() => c.agreed() === 3, 300, 'node 3 leads everyone');
    const starts = c.log.filter((m) => m.type === MsgType.ZabDiff || m.type === MsgType.ZabTrunc);
    expect(starts).toContainEqual(expect.objectContaining({ type: MsgType.ZabDiff, to: 2, index: 2, indexTerm: 1 }));
    expect(starts).toContainEqual(expect.objectContaining({ type: MsgType.ZabTrunc, to: 1, index: 3, indexTerm: 1 }));
    const want = c.node(3).z.status().lastIndex;
    for (const id of [1, 2]) {
      const z = c.node(id).z;
      expect(z.status().lastIndex).toBe(want);
      for (let i = 1; i <= want; i++) expect(z.termAt(i), `node ${id} index ${i}`).toBe(c.node(3).z.termAt(i));
    }
    expect(c.appliedData(1)).toEqual(['a', 'b', 'c']); // the z was never committed: skipped
  });

  it('TRUNC when the leader holds none of the follower\'s last epoch: back to its commit, keeping every entry that matches', () => {
    // Node 1 synchronized with a leader of epoch 2 that failed (its start entry and a
    // transaction reached node 1 only); the epoch-3 leader (3) never saw epoch 2.
    const leader = hist([[1, ''], [1, 'a'], [1, 'b'], [3, '']]);
    const stale = hist([[1, ''], [1, 'a'], [1, 'b'], [2, ''], [2, 'q']]);
    const c = new Cluster({
      seed: 13,
      voters: [1, 2, 3],
      persisted: { 1: { hardState: hs(2, 1, 2), entries: stale }, 2: { hardState: hs(3, 3, 3), entries: leader }, 3: { hardState: hs(3, 3, 3), entries: leader } },
    });
    c.record = true;
    c.runUntil(() => c.agreed() === 3, 300, 'node 3 leads everyone');
    expect(c.log).toContainEqual(expect.objectContaining({ type: MsgType.ZabTrunc, to: 1, index: 2, indexTerm: 1 }));
    expect(c.node(1).z.termAt(4)).toBe(3);
    expect(c.appliedData(1)).toEqual(['a', 'b']);
  });

  it('SNAP to a follower that needs what the leader compacted; it installs the snapshot and follows', () => {
    const c = new Cluster({ seed: 14, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    const l = c.leader()!;
    const f = [1, 2, 3].find((x) => x !== l.id)!;
    c.crash(f);
    for (let i = 0; i < 20; i++) c.propose(`w${i}`);
    c.run(20);
    c.compact(l.id);
    c.record = true;
    c.restart(f);
    c.runUntil(() => c.agreed() === l.id, 200, 'the follower back');
    expect(c.log.some((m) => m.type === MsgType.ZabSnap && m.to === f)).toBe(true);
    expect(l.z.status().peers.find((p) => p.id === f)?.mode).toBe('snap');
    c.run(10);
    expect(c.appliedData(f)).toEqual(c.appliedData(l.id));
  });

  it('no broadcast before a quorum acknowledged NEWLEADER: proposals are refused and nothing commits', () => {
    const c = new Cluster({ seed: 15, voters: [1, 2, 3] });
    c.filter = (m) => (m.type === MsgType.ZabAckNewLeader ? undefined : m);
    c.record = true;
    c.runUntil(() => c.up().some((n) => n.z.status().phase === 'synchronization' && n.z.zabState === 'leading'), 200, 'a prospective leader synchronizing');
    const l = c.up().find((n) => n.z.zabState === 'leading')!;
    c.run(20);
    expect(l.z.isLeader).toBe(false);
    expect(l.z.propose(text('early'))).toMatchObject({ ok: false, code: 'no-leader' });
    expect(l.z.readIndex(1)).toMatchObject({ ok: false, code: 'no-leader' });
    expect(l.z.leaderToken()).toBe(0);
    expect(l.z.commitIndex).toBe(0); // not even its epoch's start is committed
    expect(c.log.some((m) => m.type === MsgType.ZabCommit)).toBe(false);
    c.filter = undefined;
    c.runUntil(() => c.agreed() !== undefined, 300, 'established once acknowledgements flow');
  });

  it('the follower persists the history and currentEpoch before acknowledging NEWLEADER', () => {
    const z = lone(1, [1, 2, 3]);
    settle(z, 3);
    z.step({ type: MsgType.ZabNewEpoch, from: 3, to: 1, term: 1 });
    drain(z);
    z.step({ type: MsgType.ZabDiff, from: 3, to: 1, term: 1, index: 0, indexTerm: 0 });
    z.step({ type: MsgType.ZabProposal, from: 3, to: 1, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ term: 1, index: 1, type: EntryType.Noop, data: new Uint8Array(0) }] });
    z.step({ type: MsgType.ZabNewLeader, from: 3, to: 1, term: 1, index: 1, start: 1 });
    const rd = z.ready()!;
    expect(rd.entries.map((e) => e.index)).toEqual([1]);
    expect(rd.hardState).toMatchObject({ term: 1, vote: 1 });
    expect(rd.messages).toContainEqual(expect.objectContaining({ type: MsgType.ZabAckNewLeader, index: 1 }));
    z.advance(rd);
    expect(z.status().phase).toBe('synchronization'); // until the leader's first COMMIT (UPTODATE)
    z.step({ type: MsgType.ZabCommit, from: 3, to: 1, term: 1, index: 1 });
    drain(z);
    expect(z.status().phase).toBe('broadcast');
    expect(z.status().leader).toBe(3);
  });
});

describe('phase 3: broadcast', () => {
  it('a transaction commits only with durable ACKs from a quorum, then in zxid order everywhere', () => {
    const c = new Cluster({ seed: 16, voters: [1, 2, 3, 4, 5] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    const l = c.leader()!;
    const commit0 = l.z.commitIndex;
    const others = [1, 2, 3, 4, 5].filter((x) => x !== l.id);
    // Only one follower's ACKs reach the leader: 2 of 5 is no quorum.
    c.filter = (m) => (m.type === MsgType.ZabAck && m.from !== others[0] ? undefined : m);
    const i = c.propose('x')!;
    c.run(30);
    expect(l.z.commitIndex).toBe(commit0);
    c.filter = (m) => (m.type === MsgType.ZabAck && m.from !== others[0] && m.from !== others[1] ? undefined : m);
    c.propose('y');
    c.run(30);
    expect(l.z.commitIndex).toBe(i + 1);
    c.filter = undefined;
    c.run(20);
    for (const id of [1, 2, 3, 4, 5]) expect(c.appliedData(id)).toEqual(['x', 'y']);
  });

  it('a follower that crashes before its Ready is durable never acknowledged the transaction', () => {
    const c = new Cluster({ seed: 17, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    const l = c.leader()!;
    const [a, b] = [1, 2, 3].filter((x) => x !== l.id) as [number, number];
    c.crash(b);
    c.record = true;
    const idx = c.propose('w')!;
    const prop = c.log.find((m) => m.type === MsgType.ZabProposal && m.to === a)!;
    const na = c.node(a);
    c.filter = (m) => (m.to === a || m.from === a ? undefined : m); // hold everything else of a's
    na.z.step(prop);
    const rd = na.z.ready()!;
    expect(rd.entries.map((e) => e.index)).toContain(idx);
    expect(rd.messages).toContainEqual(expect.objectContaining({ type: MsgType.ZabAck, index: idx })); // the ACK rides with its entries
    c.crash(a); // power lost before the fsync: the ACK never leaves
    c.filter = undefined;
    c.restart(a);
    expect(na.z.status().lastIndex).toBeLessThan(idx);
    expect(l.z.commitIndex).toBeLessThan(idx);
    c.run(40); // the leader re-sends; now it commits
    expect(c.appliedData(a)).toEqual(['w']);
  });
});

describe('primary order across epochs', () => {
  it('a transaction only the failed leader held is skipped, never delivered after the next epoch\'s', () => {
    const c = new Cluster({ seed: 18, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    const l = c.leader()!;
    c.propose('kept');
    c.run(20);
    c.filter = (m) => (m.type === MsgType.ZabProposal && m.from === l.id ? undefined : m);
    c.propose('lost');
    c.run(3);
    c.filter = undefined;
    c.crash(l.id);
    c.runUntil(() => c.agreed() !== undefined, 300, 'a new leader');
    c.propose('next');
    c.run(20);
    c.restart(l.id);
    c.runUntil(() => c.agreed() !== undefined && c.node(l.id).z.status().phase === 'broadcast', 300, 'the old leader back as a follower');
    c.run(20);
    for (const id of [1, 2, 3]) expect(c.appliedData(id)).toEqual(['kept', 'next']);
  });

  it('a transaction a follower holds durably survives the leader: the next leader (most recent zxid) commits it first', () => {
    const c = new Cluster({ seed: 19, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    const l = c.leader()!;
    const [a, b] = [1, 2, 3].filter((x) => x !== l.id) as [number, number];
    // Proposals reach a only, and no ACK comes back: a holds it, nothing is committed.
    c.filter = (m) => ((m.type === MsgType.ZabProposal && m.to === b) || m.type === MsgType.ZabAck ? undefined : m);
    c.propose('held');
    c.run(3);
    c.filter = undefined;
    c.crash(l.id);
    c.runUntil(() => c.agreed() !== undefined, 300, 'a new leader');
    expect(c.leader()!.id).toBe(a); // FLE: its zxid is the latest
    c.propose('after');
    c.run(20);
    expect(c.appliedData(a)).toEqual(['held', 'after']);
    expect(c.appliedData(b)).toEqual(['held', 'after']);
  });
});
