/**
 * What a new leader does with phase 1 (Paxos Made Simple §2.2 P2c and §3): it learns
 * the values of all open slots from a quorum, proposes them again — keeping each
 * value's origin — with the highest ballot's value winning, adopts what its quorum
 * knows chosen, and starts its own slots after everything reported. Also: phase-1
 * pages, a candidate behind a compacted acceptor, and witness reports without data.
 */
import { describe, expect, it } from 'vitest';
import { MsgType, EntryType, type Message } from '../../../src/wire/messages.ts';
import { Cluster } from './harness.ts';

const dec = new TextDecoder();
const isAccept = (m: Message) => m.type === MsgType.PaxosAccept;
/** The value a node holds at slot s, readable. */
const at = (c: Cluster, id: number, s: number) => {
  const v = c.node(id).e.slotAt(s);
  return v && { ballot: v.ballot, origin: v.origin, type: v.type, text: dec.decode(v.data) };
};

describe('phase 1: a new leader proposes accepted values again', () => {
  it('a value accepted by a minority only (not chosen) is proposed again at its slot, keeping its origin', () => {
    const c = new Cluster({ seed: 11, voters: [1, 2, 3, 4, 5] });
    const l = c.waitLeader();
    c.run(10);
    const [a, , , d] = [1, 2, 3, 4, 5].filter((id) => id !== l.id);
    // The leader's Accepts reach only node `a`.
    c.filter = (m) => (isAccept(m) && m.to !== a ? undefined : m);
    const s = c.propose('x')!;
    c.run(3);
    const origin = l.e.status().ballot;
    expect(at(c, a!, s)).toMatchObject({ text: 'x', ballot: origin });
    expect(c.inv.chosen(s)).toBeUndefined();
    c.filter = undefined;
    // Leader and one more gone: the remaining three must all promise, `a` included.
    c.crash(l.id);
    c.crash(d!);
    const l2 = c.waitLeader();
    c.run(10);
    const v = at(c, l2.id, s)!;
    expect(v).toMatchObject({ text: 'x', origin }); // the same value, its origin kept...
    expect(v.ballot).toBe(l2.e.status().ballot); // ...accepted again at the new ballot
    expect(c.inv.chosen(s)).toMatchObject({ origin });
    expect(c.appliedData(l2.id)).toEqual(['x']);
  });

  it('a value chosen at an old ballot survives although no replica but its acceptors knew it was chosen', () => {
    const c = new Cluster({ seed: 12, voters: [1, 2, 3, 4, 5] });
    const l = c.waitLeader();
    c.run(10);
    const others = [1, 2, 3, 4, 5].filter((id) => id !== l.id);
    const [a, b] = others;
    // Accepts reach a and b only, and nobody ever hears the commit.
    c.filter = (m) => (m.from === l.id && (m.type === MsgType.Heartbeat || (isAccept(m) && m.to !== a && m.to !== b)) ? undefined : m);
    const s = c.propose('chosen-x')!;
    c.run(3);
    expect(c.inv.chosen(s)).toBeDefined(); // ground truth: {leader, a, b} hold it
    expect(others.every((id) => c.node(id).e.commitIndex < s)).toBe(true);
    c.filter = undefined;
    c.crash(l.id);
    c.crash(a!); // only b of the three acceptors is left, and the new quorum must include it
    const l2 = c.waitLeader();
    c.run(10);
    expect(at(c, l2.id, s)).toMatchObject({ text: 'chosen-x' });
    expect(c.appliedData(l2.id)).toEqual(['chosen-x']);
  });

  it('of two values reported for one slot, the one accepted at the higher ballot wins', () => {
    // Slot s: 'old' accepted at ballot b1 by node A only; then a second leader puts its
    // start no-op at s (it never saw 'old') accepted at b2 > b1 by node B only. A third
    // leader whose quorum holds both must propose B's no-op, not 'old'.
    const c = new Cluster({ seed: 13, voters: [1, 2, 3, 4, 5] });
    const l1 = c.waitLeader();
    c.run(10);
    const rest = [1, 2, 3, 4, 5].filter((id) => id !== l1.id);
    const [A, B, C, D] = rest as [number, number, number, number];
    c.filter = (m) => (isAccept(m) && m.from === l1.id && m.to !== A ? undefined : m);
    const s = c.propose('old')!;
    c.run(3);
    const b1 = l1.e.status().ballot;
    expect(at(c, A, s)).toMatchObject({ text: 'old', ballot: b1 });
    // l1 and A go away; the next leader (quorum {B, C, D}) never hears of 'old'.
    c.crash(l1.id);
    c.crash(A);
    c.filter = (m) => (isAccept(m) && m.from !== l1.id && m.to !== B ? undefined : m);
    const l2 = c.waitLeader();
    c.run(3);
    const b2 = l2.e.status().ballot;
    expect(b2).toBeGreaterThan(b1);
    // l2's start slot is s: its no-op at b2 reached B only (and l2 itself).
    const atB = at(c, B, s)!;
    expect(atB).toMatchObject({ type: EntryType.Noop, ballot: b2 });
    expect(c.inv.chosen(s)).toBeUndefined();
    // l2 goes; A comes back: exactly three are alive (A, B and whichever of C, D did
    // not lead), so the next leader's quorum holds both values.
    c.crash(l2.id);
    c.filter = undefined;
    c.restart(A);
    expect(c.up().map((n) => n.id).sort()).toEqual([A, B, l2.id === C ? D : C].sort());
    const l3 = c.waitLeader();
    c.run(10);
    expect(at(c, l3.id, s)).toMatchObject({ type: EntryType.Noop, origin: atB.origin });
    expect(c.inv.chosen(s)).toMatchObject({ type: EntryType.Noop, origin: atB.origin });
  });

  it('the new leader adopts the commit index its quorum reported and starts its own slots after everything reported', () => {
    const c = new Cluster({ seed: 14, voters: [1, 2, 3] });
    const l = c.waitLeader();
    for (let i = 0; i < 6; i++) c.propose(`v${i}`);
    c.run(10);
    const last = l.e.status().lastIndex;
    c.crash(l.id);
    const l2 = c.waitLeader();
    expect(l2.e.status().startSlot).toBe(last + 1);
    c.run(10);
    expect(l2.e.leaderToken()).toBe(last + 1);
  });

  it('phase 1 in pages: a candidate gets a long open log from an acceptor in several Promise messages', () => {
    const c = new Cluster({ seed: 15, voters: [1, 2, 3], options: { maxEntriesPerMsg: 4 } });
    const l = c.waitLeader();
    c.run(10);
    const [a, b] = [1, 2, 3].filter((id) => id !== l.id) as [number, number];
    // 20 slots accepted by the leader and `a` only; `b` hears nothing (not even commits).
    c.filter = (m) => (m.from === l.id && m.to === b ? undefined : m);
    for (let i = 0; i < 20; i++) c.propose(`p${i}`);
    c.run(10);
    c.filter = (m) => (m.from === l.id ? undefined : m); // the leader goes silent
    c.crash(l.id);
    c.filter = undefined;
    c.record = true;
    // b campaigns (it is behind by 20 slots): a's report comes in pages of 4.
    const nb = c.node(b);
    nb.e.leaderGone(l.id);
    c.node(a).e.leaderGone(l.id);
    nb.e.campaign();
    c.process(nb);
    c.runUntil(() => nb.e.isLeader, 50, 'b leads');
    const pages = c.log.filter((m) => m.type === MsgType.PaxosPromise && m.from === a && m.to === b && !m.probe);
    expect(pages.length).toBeGreaterThanOrEqual(5);
    c.run(10);
    expect(c.appliedData(b)).toEqual(Array.from({ length: 20 }, (_, i) => `p${i}`));
  });

  it('a candidate behind a compacted acceptor is refused and gets its snapshot instead', () => {
    const c = new Cluster({ seed: 16, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(10);
    const [a, b] = [1, 2, 3].filter((id) => id !== l.id) as [number, number];
    c.isolate(b);
    for (let i = 0; i < 10; i++) c.propose(`q${i}`);
    c.run(10);
    c.compact(a);
    c.compact(l.id);
    c.crash(l.id);
    c.heal();
    c.record = true;
    c.node(b).e.leaderGone(l.id);
    c.node(a).e.leaderGone(l.id);
    c.node(b).e.campaign();
    c.process(c.node(b));
    c.run(5);
    const refusal = c.log.find((m) => m.type === MsgType.PaxosPromise && m.from === a && !m.probe);
    expect(refusal).toMatchObject({ ok: false, snap: 11 });
    expect(c.log.some((m) => m.type === MsgType.PaxosSnapshot && m.from === a && m.to === b)).toBe(true);
    c.waitLeader();
    c.run(20);
    expect(c.appliedData(b)).toEqual(Array.from({ length: 10 }, (_, i) => `q${i}`));
  });

  it('witness: a value only a witness and a crashed data node hold keeps the other data node from leading until that node returns', () => {
    const c = new Cluster({ seed: 17, voters: [1, 2], witnesses: [3] });
    const l = c.waitLeader();
    c.run(10);
    const other = l.id === 1 ? 2 : 1;
    c.isolate(other);
    const s = c.propose('only-on-leader-and-witness')!;
    c.run(5);
    expect(c.inv.chosen(s)).toBeDefined();
    expect(c.node(3).e.slotAt(s)!.data.length).toBe(0); // the witness keeps no command data
    c.crash(l.id);
    c.heal();
    c.run(150);
    const o = c.node(other).e.status();
    expect(o.role).not.toBe('leader');
    expect(o.missingData).toContain(s); // it knows what it waits for
    c.restart(l.id);
    c.waitLeader(400);
    c.run(20);
    for (const id of [1, 2]) expect(c.appliedData(id)).toEqual(['only-on-leader-and-witness']);
  });
});
