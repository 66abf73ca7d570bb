/**
 * Phase 2 and what surrounds it: batching and pipelining, a follower catching up,
 * snapshot catch-up, commit learning, and the Ready/durability contract (what is
 * persisted before which message, the durable slot format, `atomic`, restarts).
 */
import { describe, expect, it } from 'vitest';
import { PaxosNode, decodeDurableSlot, encodeDurableSlot, ballotOf } from '../../../src/paxos/index.ts';
import { Rng } from '../../../src/rng.ts';
import { EntryType, MsgType, type Message, type PaxosSlot } from '../../../src/wire/messages.ts';
import type { Ready } from '../../../src/engine/contract.ts';
import { Cluster, text } from './harness.ts';

const cfg = (voters: number[], witnesses: number[] = []) => ({ voters, learners: [], witnesses });
const accept = (from: number, to: number, b: number, first: number, values: string[], commit = 0): Message => ({
  type: MsgType.PaxosAccept, from, to, term: b, first, commit,
  slots: values.map((v, i): PaxosSlot => ({ index: first + i, ballot: b, origin: b, type: EntryType.Normal, data: text(v) })),
});
function drain(p: PaxosNode): Ready[] {
  const out: Ready[] = [];
  for (let rd = p.ready(); rd; rd = p.ready()) {
    out.push(rd);
    p.advance(rd);
  }
  return out;
}

describe('paxos replication', () => {
  it('batching: fifty proposals made together travel in one Accept per follower', () => {
    const c = new Cluster({ seed: 21, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    c.record = true;
    for (let i = 0; i < 50; i++) expect(c.proposeQuiet(l.id, `b${i}`).ok).toBe(true);
    c.process(l);
    const accepts = c.log.filter((m) => m.type === MsgType.PaxosAccept);
    expect(accepts).toHaveLength(2);
    for (const m of accepts) expect(m.type === MsgType.PaxosAccept && m.slots.length).toBe(50);
    c.run(5);
    for (const n of c.up()) expect(c.appliedData(n.id)).toHaveLength(50);
  });

  it('notifyCommit (the runtime answering a write a replica forwarded): the replica gets the commit at once by a heartbeat, or at its PaxosAccepted when its slot is still on the way', () => {
    const c = new Cluster({ seed: 24, voters: [1, 2, 3], options: { heartbeatMs: 500, electionTimeoutMinMs: 1500, electionTimeoutMaxMs: 3000 } });
    const l = c.waitLeader(1000);
    c.run(60);
    const f = c.up().find((n) => n.id !== l.id)!;
    const heartbeatsTo = (id: number) => c.log.filter((m) => m.type === MsgType.Heartbeat && m.to === id).map((m) => (m as { ctx: number }).ctx);
    c.record = true;
    const w = c.propose('w')!;
    c.runUntil(() => l.e.status().commitIndex >= w, 20, 'the write chosen');
    expect(f.e.status().commitIndex).toBeLessThan(w); // nothing followed the write to carry the commit
    c.log = [];
    l.e.notifyCommit(f.id, w);
    c.process(l);
    c.runUntil(() => f.applied >= w, 5, 'the replica applied the write');
    expect(heartbeatsTo(f.id)).toEqual([0]); // one heartbeat, no read round
    c.log = [];
    l.e.notifyCommit(f.id, w);
    c.process(l);
    c.run(3);
    expect(heartbeatsTo(f.id)).toEqual([]); // told already
    // f's Accept for the next write is held back: the commit cannot reach it before the slot.
    const held: Message[] = [];
    c.filter = (m) => (m.type === MsgType.PaxosAccept && m.to === f.id ? void held.push(m) : m);
    const w2 = c.propose('w2')!;
    c.runUntil(() => l.e.status().commitIndex >= w2, 20, 'the second write chosen');
    c.log = [];
    l.e.notifyCommit(f.id, w2);
    c.process(l);
    c.run(3);
    expect(heartbeatsTo(f.id)).toEqual([]);
    expect(f.e.status().commitIndex).toBeLessThan(w2);
    c.filter = undefined;
    for (const m of held) c.deliver(m);
    c.runUntil(() => f.applied >= w2, 5, 'the replica applied the second write');
    expect(heartbeatsTo(f.id)).toEqual([0]);
  });

  it('pipelining: many Accepts in flight per follower before the first answer', () => {
    const c = new Cluster({ seed: 22, voters: [1, 2, 3], net: { minDelay: 3, maxDelay: 3 } });
    const l = c.waitLeader();
    c.run(20);
    for (let k = 0; k < 6; k++) {
      c.proposeQuiet(l.id, `p${k}`);
      c.process(l);
    }
    const inflight = Math.max(...l.e.status().progress.map((p) => p.inflight));
    expect(inflight).toBeGreaterThanOrEqual(5);
    c.run(20);
    for (const n of c.up()) expect(c.appliedData(n.id)).toHaveLength(6);
  });

  it('a follower that was down catches up: its answer says where it stands and the new leader backs up', () => {
    const c = new Cluster({ seed: 23, voters: [1, 2, 3, 4, 5] });
    const l = c.waitLeader();
    c.run(10);
    const f = [1, 2, 3, 4, 5].find((id) => id !== l.id)!;
    c.crash(f);
    for (let i = 0; i < 30; i++) c.propose(`c${i}`);
    c.run(10);
    // A new leader starts every follower at its own commit + 1; f is 30 slots behind that.
    c.crash(l.id);
    const l2 = c.waitLeader();
    c.run(10);
    c.record = true;
    c.restart(f);
    c.run(30);
    const reject = c.log.find((m) => m.type === MsgType.PaxosAccepted && m.from === f && !m.ok);
    expect(reject).toMatchObject({ to: l2.id, ok: false });
    expect((reject as { index: number }).index).toBeLessThan(30); // where f stands: far below the new leader’s commit
    expect(c.appliedData(f)).toEqual(c.appliedData(l2.id));
    expect(c.appliedData(f)).toHaveLength(30);
  });

  it('snapshot catch-up: a replica behind the leader’s compacted log gets the snapshot in chunks and the same state', () => {
    const c = new Cluster({ seed: 24, voters: [1, 2, 3], options: { maxMsgBytes: 1024 } });
    const l = c.waitLeader();
    c.run(10);
    const f = [1, 2, 3].find((id) => id !== l.id)!;
    c.crash(f);
    for (let i = 0; i < 40; i++) c.propose(`s${i}-${'x'.repeat(40)}`);
    c.run(10);
    for (const n of c.up()) c.compact(n.id);
    c.propose('after');
    c.run(5);
    c.record = true;
    c.restart(f);
    c.run(60);
    const chunks = c.log.filter((m) => m.type === MsgType.PaxosSnapshot && m.to === f);
    expect(chunks.length).toBeGreaterThan(2); // 1 KiB frames: several chunks
    expect(c.appliedData(f)).toEqual(c.appliedData(l.id));
    expect(c.node(f).e.status().snapshotIndex).toBeGreaterThanOrEqual(40);
  });

  it('commit learning: followers learn the commit index from heartbeats when no Accept follows', () => {
    const c = new Cluster({ seed: 25, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    c.propose('only');
    c.run(1); // the Accept round: the leader commits; followers have not heard it yet
    const target = l.e.commitIndex;
    c.run(8); // one heartbeat interval
    for (const n of c.up()) expect(n.e.commitIndex).toBe(target);
  });

  it('the largest proposal a 1 KiB link allows fits one frame in an Accept and in a Promise page', () => {
    const c = new Cluster({ seed: 28, voters: [1, 2, 3], wire: true, options: { maxMsgBytes: 1024 } });
    const l = c.waitLeader();
    c.run(10);
    const limit = 1024 - 128 - 32;
    const [a, b] = [1, 2, 3].filter((id) => id !== l.id) as [number, number];
    c.isolate(b); // b misses the big slots: when it leads, a reports them in Promise pages
    expect(l.e.propose(new Uint8Array(limit + 1))).toMatchObject({ ok: false, code: 'too-large' });
    for (let i = 0; i < 3; i++) expect(c.proposeOn(l.id, new Uint8Array(limit).fill(i)).ok).toBe(true);
    c.run(10);
    c.crash(l.id);
    c.heal();
    for (const id of [a, b]) c.node(id).e.leaderGone(l.id);
    c.node(b).e.campaign();
    c.process(c.node(b));
    c.runUntil(() => c.node(b).e.isLeader, 60, 'b leads');
    c.run(10);
    expect(c.node(b).kv.appliedIndex).toBeGreaterThanOrEqual(4);
    expect(c.maxFrame.get('PaxosAccept')).toBeGreaterThan(limit);
    expect(c.maxFrame.get('PaxosAccept')).toBeLessThanOrEqual(1024);
    expect(c.maxFrame.get('PaxosPromise')).toBeGreaterThan(limit);
    expect(c.maxFrame.get('PaxosPromise')).toBeLessThanOrEqual(1024);
  });

  it('a learner receives and applies everything but never counts toward a quorum', () => {
    const c = new Cluster({ seed: 26, voters: [1, 2, 3], learners: [4] });
    const l = c.waitLeader();
    c.run(10);
    const others = [1, 2, 3].filter((id) => id !== l.id);
    c.crash(others[0]!);
    c.crash(others[1]!);
    c.propose('not-chosen');
    c.run(20);
    expect(l.e.commitIndex).toBeLessThan(l.e.status().lastIndex); // leader + learner is no quorum
    c.restart(others[0]!);
    c.runUntil(() => c.appliedData(4).length === 1, 200, 'the learner applies it once a quorum is back');
    expect(c.appliedData(4)).toEqual(['not-chosen']);
  });
});

describe('paxos durability contract', () => {
  it('an acceptor’s Accepted leaves in the same Ready as the values and the promise it rests on', () => {
    const p = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(1) });
    const b = ballotOf(1, 1);
    p.step(accept(1, 2, b, 1, ['x', 'y']));
    const rd = p.ready()!;
    expect(rd.hardState).toEqual({ term: b, vote: 0, commit: 0 });
    expect(rd.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.messages).toEqual([expect.objectContaining({ type: MsgType.PaxosAccepted, ok: true, index: 2, term: b })]);
    expect(rd.atomic).toBeUndefined(); // appending only: a torn prefix would lose nothing acknowledged
    p.advance(rd);
  });

  it('a follower answers heartbeats at once while its write is in flight, once its promise is durable (takeEager); its Accepted waits for the disk', () => {
    const p = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(1) });
    const b = ballotOf(1, 1);
    const hb = (ctx: number) => ({ type: MsgType.Heartbeat, from: 1, to: 2, term: b, ctx, commit: undefined }) as const;
    p.step(accept(1, 2, b, 1, ['x']));
    const rd1 = p.ready()!;
    expect(rd1.hardState?.term).toBe(b);
    // The promise of ballot b is in that Ready, not durable yet: the reply waits too.
    p.step(hb(1));
    expect(p.takeEager()).toEqual([]);
    p.advance(rd1);
    const rd2 = p.ready()!;
    expect(rd2.messages).toEqual([expect.objectContaining({ type: MsgType.HeartbeatReply, ctx: 1 })]);
    p.advance(rd2);
    // Promise durable; the next values' write in flight (a slow SD card): heartbeats are
    // answered at once, the Accepted is not.
    p.step(accept(1, 2, b, 2, ['y']));
    const rd3 = p.ready()!;
    expect(rd3.messages).toEqual([expect.objectContaining({ type: MsgType.PaxosAccepted, ok: true, index: 2 })]);
    p.step(hb(2));
    expect(p.takeEager()).toEqual([expect.objectContaining({ type: MsgType.HeartbeatReply, to: 1, term: b, ctx: 2 })]);
    p.advance(rd3);
    expect(p.ready()).toBeUndefined();
    // A heartbeat of a higher ballot raises the promise: its reply waits for the disk.
    p.step({ ...hb(3), term: ballotOf(2, 1) });
    expect(p.takeEager()).toEqual([]);
  });

  it('durable slots: ballot and origin in a header, stamps never decreasing, and a restart from them gives the same log', () => {
    const p = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(1) });
    const b1 = ballotOf(1, 1);
    const b3 = ballotOf(3, 3);
    p.step(accept(1, 2, b1, 1, ['a', 'b', 'c']));
    const [rd1] = drain(p);
    // A higher ballot replaces slot 1 only: the Ready rewrites 1..3 with the new stamp.
    p.step({ type: MsgType.PaxosAccept, from: 3, to: 2, term: b3, first: 1, commit: 0, slots: [{ index: 1, ballot: b3, origin: b1, type: EntryType.Normal, data: text('a') }] });
    const [rd2] = drain(p);
    expect(rd2!.atomic).toBe(true); // it rewrites acknowledged votes: all or nothing
    expect(rd2!.entries.map((e) => [e.index, e.term])).toEqual([[1, b3], [2, b3], [3, b3]]);
    const slots = rd2!.entries.map((e) => decodeDurableSlot(e) as PaxosSlot);
    expect(slots.map((s) => [s.ballot, s.origin, new TextDecoder().decode(s.data)])).toEqual([[b3, b1, 'a'], [b1, b1, 'b'], [b1, b1, 'c']]);
    const q = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(2), hardState: rd2!.hardState ?? rd1!.hardState!, entries: rd2!.entries });
    for (const i of [1, 2, 3]) expect(q.slotAt(i)).toEqual(p.slotAt(i));
    expect(q.currentTerm).toBe(b3);
  });

  it('a torn Ready that kept its entries but lost its hard state: the promise comes back from the write stamps', () => {
    const p = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(1) });
    const b = ballotOf(4, 1);
    p.step(accept(1, 2, b, 1, ['x']));
    const rd = p.ready()!;
    const q = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(2), hardState: { term: 0, vote: 0, commit: 0 }, entries: rd.entries });
    expect(q.currentTerm).toBe(b);
  });

  it('an unsent Accepted never claims a vote that a higher ballot replaced before the Ready', () => {
    const p = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(1) });
    const b1 = ballotOf(1, 1);
    const b3 = ballotOf(2, 3);
    p.step(accept(1, 2, b1, 1, ['x']));
    p.step(accept(3, 2, b3, 1, ['y'])); // same slot, higher ballot, before any Ready
    const rd = p.ready()!;
    const acks = rd.messages.filter((m) => m.type === MsgType.PaxosAccepted);
    expect(acks).toEqual([expect.objectContaining({ to: 3, term: b3, ok: true, index: 1 })]);
  });

  it('installing a snapshot keeps the votes after it, written again behind the snapshot, all or nothing', () => {
    const c = new Cluster({ seed: 27, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    const f = [1, 2, 3].find((id) => id !== l.id)!;
    c.crash(f);
    for (let i = 0; i < 10; i++) c.propose(`x${i}`);
    c.run(5);
    c.compact(l.id);
    let snapReady: Ready | undefined;
    c.onReady = (n, rd) => {
      if (n.id === f && rd.snapshot) snapReady = rd;
    };
    c.restart(f);
    c.run(30);
    expect(snapReady?.atomic).toBe(true);
    expect(c.appliedData(f)).toEqual(c.appliedData(l.id));
  });

  it('bad persisted state and bad options are refused with a clear error', () => {
    const rng = new Rng(1);
    const raftEntry = { index: 1, term: 1, type: EntryType.Normal, data: text('raft') };
    expect(() => new PaxosNode({ id: 1, config: cfg([1]), rng, entries: [raftEntry] })).toThrow(/entries\[0\]: data does not start with the Paxos slot header .* not written by the Paxos engine/);
    const good = encodeDurableSlot({ index: 1, ballot: 257, origin: 257, type: EntryType.Normal, data: text('a') }, 257);
    expect(() => new PaxosNode({ id: 1, config: cfg([1]), rng, entries: [good], hardState: { term: 257, vote: 0, commit: 2 } })).toThrow(/commit 2 is beyond the last durable slot 1/);
    expect(() => new PaxosNode({ id: 1, config: cfg([1]), rng, options: { heartbeatMs: 500 } })).toThrow(/heartbeatMs \(500\) must be below electionTimeoutMinMs/);
    expect(() => new PaxosNode({ id: 1, config: cfg([1]), rng, options: { bogus: 1 } as never })).toThrow(/unknown option "bogus"/);
    expect(() => new PaxosNode({ id: 1, config: cfg([1]), rng, options: { plantedBug: 'other' } as never })).toThrow(/plantedBug/);
    expect(() => new PaxosNode({ id: 0, config: cfg([1]), rng })).toThrow(/id must be a node id/);
  });

  it('propose, compact and readIndex refuse bad input with a code and a reason', () => {
    const p = new PaxosNode({ id: 1, config: cfg([1]), rng: new Rng(1), options: { maxMsgBytes: 1024 } });
    expect(p.propose(text('x'))).toMatchObject({ ok: false, code: 'no-leader' });
    p.campaign();
    drain(p);
    expect(p.propose('x' as unknown as Uint8Array)).toMatchObject({ ok: false, code: 'bad-request' });
    expect(p.propose(new Uint8Array(2000))).toMatchObject({ ok: false, code: 'too-large', reason: expect.stringMatching(/limit of one slot/) });
    expect(p.compact(5, new Uint8Array(0))).toMatchObject({ ok: false, reason: expect.stringMatching(/beyond the applied index/) });
    expect(p.readIndex(0)).toMatchObject({ ok: false, code: 'bad-request' });
    const f = new PaxosNode({ id: 2, config: cfg([1, 2, 3]), rng: new Rng(1) });
    expect(f.readIndex(1)).toMatchObject({ ok: false, code: 'no-leader' });
  });
});
