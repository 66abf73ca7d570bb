/**
 * The Ready/advance contract (etcd's model; Raft Figure 2 "persist before responding").
 */
import { describe, expect, it } from 'vitest';
import { RaftNode } from '../../../src/raft/index.ts';
import { Rng } from '../../../src/rng.ts';
import { EntryType, MsgType } from '../../../src/wire/messages.ts';
import { Cluster, text } from './harness.ts';

const solo = () => new RaftNode({ id: 1, config: { voters: [1], learners: [], witnesses: [] }, rng: new Rng(1) });

describe('raft durability contract', () => {
  it('a single-node leader commits its own entries only after advance() confirms them durable', () => {
    const r = solo();
    r.campaign();
    const rd1 = r.ready()!;
    expect(rd1.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(rd1.entries.map((e) => e.type)).toEqual([EntryType.Noop]);
    expect(rd1.softState?.role).toBe('leader');
    expect(rd1.committed).toEqual([]);
    expect(r.status().commitIndex).toBe(0);
    r.propose(text('a')); // between ready and advance: goes to the next Ready
    r.advance(rd1);
    expect(r.status().commitIndex).toBe(1); // the Noop: stable now
    const rd2 = r.ready()!;
    expect(rd2.entries.map((e) => e.index)).toEqual([2]);
    expect(rd2.committed.map((e) => e.index)).toEqual([1]);
    expect(rd2.hardState?.commit).toBe(1);
    r.advance(rd2);
    const rd3 = r.ready()!;
    expect(rd3.committed.map((e) => e.index)).toEqual([2]);
    r.advance(rd3);
    expect(r.ready()).toBeUndefined();
    expect(r.status().appliedIndex).toBe(2);
  });

  it('a vote and an append ack leave in the same Ready as the state they depend on', () => {
    const r = new RaftNode({ id: 2, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(2) });
    r.step({ type: MsgType.Vote, from: 1, to: 2, term: 1, lastIndex: 0, lastTerm: 0, transfer: false });
    const rd = r.ready()!;
    expect(rd.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(rd.messages).toEqual([expect.objectContaining({ type: MsgType.VoteReply, granted: true })]);
    r.advance(rd);
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ term: 1, index: 1, type: EntryType.Noop, data: new Uint8Array(0) }] });
    const rd2 = r.ready()!;
    expect(rd2.entries).toHaveLength(1);
    expect(rd2.messages).toEqual([expect.objectContaining({ type: MsgType.AppendReply, success: true, index: 1 })]);
    r.advance(rd2);
  });

  it('Appends stepped into one Ready get one acknowledgement, the highest; a rejection is kept', () => {
    const r = new RaftNode({ id: 2, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(2) });
    const e = (index: number) => ({ term: 1, index, type: EntryType.Normal, data: text(`v${index}`) });
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [e(1), e(2)] });
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 2, prevTerm: 1, commit: 0, entries: [e(3)] });
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 3, prevTerm: 1, commit: 0, entries: [e(4), e(5)] });
    const rd = r.ready()!;
    expect(rd.entries.map((x) => x.index)).toEqual([1, 2, 3, 4, 5]);
    // The last ack covers the others: same leader and term, and the highest index.
    expect(rd.messages).toEqual([expect.objectContaining({ type: MsgType.AppendReply, to: 1, term: 1, success: true, index: 5 })]);
    r.advance(rd);
    // A gap (prevIndex 9 is unknown) is rejected; the rejection is not dropped behind a later success.
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 9, prevTerm: 1, commit: 0, entries: [e(10)] });
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 5, prevTerm: 1, commit: 0, entries: [e(6)] });
    const rd2 = r.ready()!;
    expect(rd2.messages.map((m) => m.type === MsgType.AppendReply && [m.success, m.index])).toEqual([[false, 9], [true, 6]]);
    r.advance(rd2);
    // An ack with a lower index than an earlier one in the same Ready (a duplicate) drops nothing higher.
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 6, prevTerm: 1, commit: 0, entries: [e(7)] });
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 5, prevTerm: 1, commit: 0, entries: [e(6)] });
    const rd3 = r.ready()!;
    expect(rd3.messages.map((m) => m.type === MsgType.AppendReply && [m.success, m.index])).toEqual([[true, 7], [true, 6]]);
    r.advance(rd3);
  });

  it('a node that crashes before persisting its Ready never acknowledged anything', () => {
    const c = new Cluster({ seed: 31, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    const [a, b] = [1, 2, 3].filter((x) => x !== l.id);
    const match0 = l.r.status().progress.find((p) => p.id === a)!.match;
    c.crash(b!); // only `a` can form a majority with the leader
    // Deliver the Append to `a` by hand and crash `a` with its Ready unpersisted.
    c.record = true;
    l.r.propose(text('w'));
    c.process(l);
    const app = c.log.find((m) => m.type === MsgType.Append && m.to === a)!;
    const na = c.node(a!);
    na.r.step(app);
    const rd = na.r.ready()!;
    expect(rd.messages.some((m) => m.type === MsgType.AppendReply)).toBe(true);
    c.crash(a!); // power lost before the fsync: the ack never leaves
    c.restart(a!);
    expect(na.r.status().lastIndex).toBe(match0);
    expect(l.r.status().commitIndex).toBeLessThan(match0 + 1);
    c.run(30); // the leader retries; now it commits
    expect(c.appliedData(a!)).toEqual(['w']);
  });

  it('ready() twice without advance() is refused clearly; advance() of a foreign Ready too', () => {
    const r = solo();
    r.campaign();
    const rd = r.ready()!;
    expect(() => r.ready()).toThrow(/advance/);
    expect(() => r.advance({ ...rd })).toThrow(/not the Ready/);
  });

  it('bad restart state is refused with a clear error', () => {
    const cfg = { voters: [1], learners: [], witnesses: [] };
    expect(() => new RaftNode({ id: 1, config: cfg, rng: new Rng(1), hardState: { term: 1, vote: 0, commit: 5 } })).toThrow(/commit 5 is beyond/);
    expect(() => new RaftNode({ id: 1, config: cfg, rng: new Rng(1), entries: [{ index: 2, term: 1, type: EntryType.Normal, data: new Uint8Array() }] })).toThrow(/contiguous/);
    expect(() => new RaftNode({ id: 0, config: cfg, rng: new Rng(1) })).toThrow(/id must be/);
    expect(() => new RaftNode({ id: 1, config: { voters: [], learners: [], witnesses: [] }, rng: new Rng(1) })).toThrow(/at least one voter/);
    expect(() => new RaftNode({ id: 1, config: cfg, rng: new Rng(1), options: { heartbeatMs: 500 } })).toThrow(/heartbeatMs/);
    expect(() => new RaftNode({ id: 1, config: cfg, rng: new Rng(1), options: { leaseRead: true, checkQuorum: false } })).toThrow(/leaseRead requires checkQuorum/);
    expect(() => new RaftNode({ id: 1, config: cfg, rng: new Rng(1), options: { bogus: 1 } as never })).toThrow(/unknown option "bogus"/);
  });

  it('malformed messages are refused by step() with a clear error; misaddressed ones are dropped', () => {
    const r = solo();
    expect(() => r.step({ type: 99, from: 2, to: 1, term: 1 } as never)).toThrow(/not a Raft message/);
    expect(() => r.step({ type: MsgType.Heartbeat, from: 2, to: 1, term: -1, commit: 0, ctx: 0 })).toThrow(/non-negative integers/);
    r.step({ type: MsgType.Heartbeat, from: 2, to: 7, term: 1, commit: 0, ctx: 0 });
    expect(r.dropped).toBe(1);
    expect(r.status().term).toBe(0);
  });

  it("pipelining: a leader's Appends leave before its own write (takeEager); it counts itself toward commit only after advance()", () => {
    const c = new Cluster({ seed: 41, voters: [1, 2, 3], pipelined: true });
    const l = c.waitLeader();
    c.run(20);
    const [a, b] = [1, 2, 3].filter((x) => x !== l.id) as [number, number];
    expect(c.node(a).r.takeEager()).toEqual([]); // a follower with nothing to answer: nothing
    const idx = l.r.propose(text('p'));
    expect(idx.ok).toBe(true);
    const early = l.r.takeEager();
    expect(early.filter((m) => m.type === MsgType.Append).map((m) => m.to).sort()).toEqual([a, b].sort());
    // The leader's Ready now holds the entry to persist, and no Append any more.
    const rd = l.r.ready()!;
    expect(rd.entries.map((e) => e.index)).toEqual([idx.ok ? idx.index : -1]);
    expect(rd.messages.filter((m) => m.type === MsgType.Append)).toEqual([]);
    // One follower acknowledges (its own Ready persisted) while the leader's write is still in flight:
    // with the leader not yet durable, leader + one follower make a quorum only after advance().
    const na = c.node(a);
    na.r.step(early.find((m) => m.to === a)!);
    const frd = na.r.ready()!;
    const ack = frd.messages.find((m) => m.type === MsgType.AppendReply)!;
    na.r.advance(frd);
    l.r.step(ack);
    const commitBefore = l.r.status().commitIndex;
    expect(commitBefore).toBeLessThan(idx.ok ? idx.index : 0);
    l.r.advance(rd);
    expect(l.r.status().commitIndex).toBe(idx.ok ? idx.index : -1);
  });

  it('pipelining: a leader that crashes after its Appends left and before its own fsync loses nothing acknowledged; the cluster goes on safely', () => {
    const c = new Cluster({ seed: 43, voters: [1, 2, 3], pipelined: true });
    const l = c.waitLeader();
    c.run(20);
    expect(l.r.propose(text('early')).ok).toBe(true);
    for (const m of l.r.takeEager()) c.deliver(m);
    c.crash(l.id); // its Ready (holding 'early') was never persisted
    c.run(5);
    const l2 = c.waitLeader();
    expect(l2.id).not.toBe(l.id);
    c.restart(l.id);
    c.run(100);
    // Both followers had the entry durably: the new leader commits it, the old one catches up.
    for (const n of c.up()) expect(c.appliedData(n.id)).toContain('early');
  });

  it("takeCommitted: a leader applies an entry both followers made durable while its own write is still in flight; compaction waits for its own copy", () => {
    const c = new Cluster({ seed: 47, voters: [1, 2, 3], pipelined: true });
    const l = c.waitLeader();
    c.run(20);
    const [a, b] = [1, 2, 3].filter((x) => x !== l.id) as [number, number];
    expect(l.r.takeCommitted()).toEqual([]); // all applied already
    const p = l.r.propose(text('fast'));
    if (!p.ok) throw new Error(p.reason);
    const early = l.r.takeEager();
    const rd = l.r.ready()!; // the leader's own write of the entry: "in flight" until advance(rd)
    expect(rd.entries.map((e) => e.index)).toEqual([p.index]);
    const ack = (id: number) => {
      const n = c.node(id);
      n.r.step(early.find((m) => m.to === id && m.type === MsgType.Append)!);
      const frd = n.r.ready()!;
      n.r.advance(frd);
      return frd.messages.find((m) => m.type === MsgType.AppendReply)!;
    };
    l.r.step(ack(a));
    // Leader (not durable) + one follower: not committed, nothing to apply.
    expect(l.r.commitIndex).toBeLessThan(p.index);
    expect(l.r.takeCommitted()).toEqual([]);
    l.r.step(ack(b));
    expect(l.r.commitIndex).toBe(p.index);
    // Follower a has not heard of the commit yet: nothing for it. The leader gets the entry once, in order.
    expect(c.node(a).r.takeCommitted()).toEqual([]);
    const got = l.r.takeCommitted();
    expect(got.map((e) => [e.index, new TextDecoder().decode(e.data)])).toEqual([[p.index, 'fast']]);
    expect(l.r.takeCommitted()).toEqual([]);
    // Applied but not durable here: appliedIndex (what compact() may cover) lags, compact refuses.
    expect(l.r.appliedIndex).toBe(p.index - 1);
    expect(l.r.compact(p.index, text('snap')).ok).toBe(false);
    l.r.advance(rd);
    expect(l.r.appliedIndex).toBe(p.index);
    // The next Ready does not hand the entry out again.
    const rd2 = l.r.ready();
    expect(rd2?.committed.map((e) => e.index) ?? []).toEqual([]);
    if (rd2) l.r.advance(rd2);
    expect(l.r.compact(p.index, text('snap')).ok).toBe(true);
  });

  it('takeCommitted waits while the Ready in flight holds committed entries not yet applied (they come first)', () => {
    const c = new Cluster({ seed: 49, voters: [1, 2, 3], pipelined: true });
    const l = c.waitLeader();
    c.run(20);
    const [a, b] = [1, 2, 3].filter((x) => x !== l.id) as [number, number];
    const ack = (id: number, msgs: ReturnType<typeof l.r.takeEager>) => {
      const n = c.node(id);
      for (const m of msgs) if (m.to === id && m.type === MsgType.Append) n.r.step(m);
      const frd = n.r.ready()!;
      n.r.advance(frd);
      return frd.messages.filter((m) => m.type === MsgType.AppendReply);
    };
    // Entry 1: committed by leader + a, once the leader's write is durable.
    const p1 = l.r.propose(text('one'));
    if (!p1.ok) throw new Error(p1.reason);
    const e1 = l.r.takeEager();
    const rd1 = l.r.ready()!;
    for (const m of ack(a, e1)) l.r.step(m);
    l.r.advance(rd1);
    expect(l.r.commitIndex).toBe(p1.index);
    // Entry 2 proposed; the next Ready carries entry 1 as committed and entry 2 to persist.
    const p2 = l.r.propose(text('two'));
    if (!p2.ok) throw new Error(p2.reason);
    const e2 = l.r.takeEager();
    const rd2 = l.r.ready()!;
    expect(rd2.committed.map((e) => e.index)).toEqual([p1.index]);
    for (const m of ack(a, e2)) l.r.step(m);
    for (const m of ack(b, [...e1, ...e2])) l.r.step(m);
    expect(l.r.commitIndex).toBe(p2.index);
    // Entry 2 is committed, but entry 1 (in rd2.committed) is not applied yet: nothing early.
    expect(l.r.takeCommitted()).toEqual([]);
    l.r.advance(rd2);
    const rd3 = l.r.ready()!;
    expect(rd3.committed.map((e) => e.index)).toEqual([p2.index]);
  });

  it('takeCommitted: a leader that applied an entry and crashed before its own copy was durable restarts with a shorter log and catches up; the entry survives', () => {
    const c = new Cluster({ seed: 51, voters: [1, 2, 3], pipelined: true });
    const l = c.waitLeader();
    c.run(20);
    const p = l.r.propose(text('kept'));
    if (!p.ok) throw new Error(p.reason);
    const early = l.r.takeEager();
    l.r.ready(); // never persisted
    for (const id of [1, 2, 3].filter((x) => x !== l.id)) {
      const n = c.node(id);
      n.r.step(early.find((m) => m.to === id && m.type === MsgType.Append)!);
      const frd = n.r.ready()!;
      c.persistAndSend(n, frd); // durable on the follower
      n.r.advance(frd);
      l.r.step(frd.messages.find((m) => m.type === MsgType.AppendReply)!);
    }
    const got = l.r.takeCommitted();
    expect(got.map((e) => e.index)).toEqual([p.index]); // applied and answered
    for (const e of got) c.applyOne(c.node(l.id), e, false);
    expect(c.appliedData(l.id)).toContain('kept');
    c.crash(l.id);
    c.restart(l.id);
    expect(c.node(l.id).r.lastIndex).toBeLessThan(p.index); // its own copy was lost
    c.run(150);
    for (const n of c.up()) expect(c.appliedData(n.id)).toContain('kept');
  });

  it('a follower that restarts with an older commit index (commit-only changes are not synced) catches up on an idle cluster', () => {
    const c = new Cluster({ seed: 45, voters: [1, 2, 3], pipelined: true });
    const l = c.waitLeader();
    for (let i = 0; i < 5; i++) c.propose(`w${i}`);
    c.run(60);
    const f = [1, 2, 3].find((x) => x !== l.id)!;
    const want = l.r.status().commitIndex;
    expect(c.node(f).r.status().commitIndex).toBe(want);
    // Its stored commit lags (the last commit advance was never synced).
    expect(c.node(f).store.hardState.commit).toBeLessThan(want);
    c.crash(f);
    c.restart(f);
    expect(c.node(f).r.status().commitIndex).toBeLessThan(want);
    c.run(40); // no proposals: only heartbeats can bring the commit index back
    expect(c.node(f).r.status().commitIndex).toBe(want);
    expect(c.appliedData(f)).toEqual(c.appliedData(l.id));
  });

  it('a follower answers heartbeats while its fsync is in flight (takeEager); its append acknowledgement still waits for the disk', () => {
    const r = new RaftNode({ id: 2, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(2) });
    const hb = (term: number, ctx: number) => ({ type: MsgType.Heartbeat, from: 1, to: 2, term, ctx, commit: undefined }) as const;
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ term: 1, index: 1, type: EntryType.Noop, data: new Uint8Array(0) }] });
    const rd1 = r.ready()!;
    // Term 1 is in this Ready, not durable yet: a reply now would rest on a term a
    // restart could forget (and with it the lease promise), so it waits like the ack.
    r.step(hb(1, 1));
    expect(r.takeEager()).toEqual([]);
    r.advance(rd1);
    const rd2 = r.ready()!;
    expect(rd2.messages.map((m) => m.type)).toEqual([MsgType.HeartbeatReply]);
    r.advance(rd2);
    // Term 1 durable. The next entry's write is in flight (a slow SD card): the
    // heartbeats of that time are answered at once, the entry's ack is not.
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 1, prevTerm: 1, commit: 1, entries: [{ term: 1, index: 2, type: EntryType.Normal, data: text('x') }] });
    const rd3 = r.ready()!;
    expect(rd3.messages).toEqual([expect.objectContaining({ type: MsgType.AppendReply, index: 2 })]);
    expect(r.takeEager()).toEqual([]);
    r.step(hb(1, 2));
    r.step(hb(1, 3));
    const early = r.takeEager();
    expect(early).toEqual([
      expect.objectContaining({ type: MsgType.HeartbeatReply, to: 1, term: 1, ctx: 2 }),
      expect.objectContaining({ type: MsgType.HeartbeatReply, to: 1, term: 1, ctx: 3 }),
    ]);
    expect(early.some((m) => m.type === MsgType.AppendReply)).toBe(false);
    r.advance(rd3);
    expect(r.ready()).toBeUndefined(); // nothing left behind: the replies went once
    // A heartbeat of a higher term: its reply waits until the new term is durable.
    r.step(hb(2, 1));
    expect(r.takeEager()).toEqual([]);
    const rd4 = r.ready()!;
    expect(rd4.hardState?.term).toBe(2);
    expect(rd4.messages).toEqual([expect.objectContaining({ type: MsgType.HeartbeatReply, term: 2 })]);
    r.advance(rd4);
    // A campaign, ended by the heartbeat of a leader of a higher term: follower again,
    // term 3 not durable yet, so nothing early.
    r.campaign();
    expect(r.status().role).not.toBe('follower');
    r.step(hb(3, 1));
    expect(r.status().role).toBe('follower');
    expect(r.takeEager()).toEqual([]);
  });

  it('takeCommitted: a follower applies what its leader says is committed while its own copy is still being written; each entry once', () => {
    const r = new RaftNode({ id: 2, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(2) });
    const e = (index: number) => ({ term: 1, index, type: EntryType.Normal, data: text(`v${index}`) });
    const dec = (es: { index: number; data: Uint8Array }[]) => es.map((x) => [x.index, new TextDecoder().decode(x.data)]);
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, commit: 0, entries: [e(1), e(2)] });
    const rd1 = r.ready()!; // its write "in flight" (a slow SD card)
    expect(r.takeCommitted()).toEqual([]); // nothing committed yet
    // The leader's next Append says 1..2 are committed (a quorum of other copies is durable).
    r.step({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 2, prevTerm: 1, commit: 2, entries: [e(3)] });
    expect(dec(r.takeCommitted())).toEqual([[1, 'v1'], [2, 'v2']]);
    expect(r.takeCommitted()).toEqual([]);
    // They count as applied only once durable here (compaction covers no more than that).
    expect(r.status().appliedIndex).toBe(0);
    r.advance(rd1);
    expect(r.status().appliedIndex).toBe(2);
    const rd2 = r.ready()!;
    expect(rd2.committed).toEqual([]); // not handed out twice
    expect(rd2.entries.map((x) => x.index)).toEqual([3]);
    r.advance(rd2);
  });
});
