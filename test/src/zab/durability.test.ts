/**
 * What is durable and when (the contract's Ready order: snapshot, entries, hard state,
 * fsync, then messages): the mapping of acceptedEpoch/currentEpoch onto HardState, a
 * power cut at every record of a Ready, and refusing a durable state no correct run
 * can leave behind.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { ZabNode } from '../../../src/zab/index.ts';
import { EntryType, MsgType } from '../../../src/wire/messages.ts';
import { Cluster } from './harness.ts';
import { drain, hist, hs, lone } from './helpers.ts';

const cfg = { voters: [1, 2, 3], learners: [], witnesses: [] };

describe('durable state', () => {
  it('HardState is {term: acceptedEpoch, vote: currentEpoch, commit}; an established cluster has both epochs equal everywhere', () => {
    const c = new Cluster({ seed: 51, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    c.propose('a');
    c.run(20);
    const e = c.leader()!.z.status().epoch;
    for (const id of [1, 2, 3]) {
      const st = c.node(id).store.hardState;
      expect(st.term).toBe(e);
      expect(st.vote).toBe(e);
      expect(st.commit).toBeGreaterThanOrEqual(1);
    }
  });

  it('a power cut at any record of any Ready leaves a state the node restarts from, and the cluster stays safe and converges', () => {
    for (let seed = 60; seed < 72; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.02, dup: 0.02, minDelay: 0, maxDelay: 3 } });
      const rng = new Rng(seed).fork('cuts');
      for (let t = 0; t < 300; t++) {
        if (t % 2 === 0) c.propose(`p${seed}-${t}`);
        if (t % 13 === 0) {
          const n = c.node(rng.int(1, 5));
          if (n.up) c.tearNext(n.id);
        }
        if (t % 13 === 6) for (const n of c.nodes.values()) if (!n.up) c.restart(n.id);
        c.tick();
      }
      for (const n of c.nodes.values()) {
        n.tear = false;
        if (!n.up) c.restart(n.id);
      }
      c.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 1 };
      c.runUntil(() => c.agreed() !== undefined, 500, `seed ${seed}: agreement`);
      c.propose('end');
      c.runUntil(() => [1, 2, 3, 4, 5].every((id) => c.appliedData(id).at(-1) === 'end'), 200, `seed ${seed}: convergence`);
      for (const id of [2, 3, 4, 5]) expect(c.appliedData(id)).toEqual(c.appliedData(1));
    }
  });

  it('refuses a durable state no correct run leaves: currentEpoch above acceptedEpoch, an entry of a later epoch than accepted, commit past the history', () => {
    const mk = (hardState: ReturnType<typeof hs>, entries = hist([[1, ''], [1, 'a']])) => () => new ZabNode({ id: 1, config: cfg, hardState, entries, rng: new Rng(1) });
    expect(mk(hs(1, 2))).toThrow(/currentEpoch \(vote 2\) must not exceed acceptedEpoch \(term 1\)/);
    expect(mk(hs(1, 1), hist([[1, ''], [2, '']]))).toThrow(/ends in epoch 2, above acceptedEpoch 1/);
    expect(mk(hs(1, 1, 3))).toThrow(/commit 3 is beyond the last durable index 2/);
    expect(mk(hs(2 ** 32, 1))).toThrow(/must be ≤ 4294967295/);
    expect(() => new ZabNode({ id: 1, config: cfg, hardState: hs(2, 2), entries: hist([[2, ''], [1, 'a']]), rng: new Rng(1) })).toThrow(/epoch 1 below the previous 2/);
    expect(() => new ZabNode({ id: 1, config: cfg, entries: [{ term: 0, index: 1, type: 2, data: new Uint8Array([1, 1, 0, 0]) }], rng: new Rng(1) })).toThrow(/Config entry/);
    expect(() => new ZabNode({ id: 9, config: cfg, rng: new Rng(1) })).toThrow(/not in the configuration/);
    expect(mk(hs(1, 1, 2))).not.toThrow();
  });

  it('the commit it persists never points past what the same Ready makes durable', () => {
    const c = new Cluster({ seed: 52, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    for (let i = 0; i < 30; i++) {
      c.propose(`x${i}`);
      c.tick();
      for (const n of c.up()) {
        const s = n.store;
        const last = (s.snapshot?.meta.index ?? 0) + s.entries.length;
        expect(s.hardState.commit).toBeLessThanOrEqual(last);
      }
    }
  });

  it('shortening the history with nothing written after it re-writes the last entry kept, all or nothing (Ready.atomic)', () => {
    // A state a correct leader never asks for (its own entry after its start), built to
    // reach the mechanism: the follower's tail beyond the leader's NEWLEADER point goes.
    const z = lone(1, [1, 2, 3], { hardState: hs(2, 1), entries: hist([[1, ''], [1, 'a'], [2, ''], [2, 'q']]) });
    drain(z);
    for (const from of [2, 3]) z.step({ type: MsgType.ZabNotification, from, to: 1, term: 1, leader: 3, epoch: 9, zxidTerm: 9, zxidIndex: 9, state: 0 });
    for (let i = 0; i < 5; i++) {
      z.tick();
      drain(z);
    }
    expect(z.zabState).toBe('following');
    z.step({ type: MsgType.ZabNewEpoch, from: 3, to: 1, term: 2 });
    z.step({ type: MsgType.ZabTrunc, from: 3, to: 1, term: 2, index: 3, indexTerm: 2 });
    drain(z);
    z.step({ type: MsgType.ZabNewLeader, from: 3, to: 1, term: 2, index: 3, start: 3 });
    const rd = z.ready()!;
    expect(rd.atomic).toBe(true);
    expect(rd.entries.map((e) => [e.term, e.index])).toEqual([[2, 3]]); // the runtime truncates after 3 and writes 3 again
    expect(rd.hardState).toMatchObject({ vote: 2 });
    expect(rd.messages).toContainEqual(expect.objectContaining({ type: MsgType.ZabAckNewLeader, index: 3 }));
    z.advance(rd);
    expect(z.status().lastIndex).toBe(3);
  });

  it('a follower answers pings at once while its write is in flight (takeEager): a PONG rests on its durable epochs, its ACK waits for the disk', () => {
    const c = new Cluster({ seed: 51, voters: [1, 2, 3] });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    c.propose('a');
    c.run(20);
    const L = c.leader()!;
    const e = L.z.status().epoch;
    const fid = [1, 2, 3].find((id) => id !== L.id)!;
    const f = c.node(fid).z;
    expect(f.takeEager()).toEqual([]);
    const last = c.node(fid).store.entries.at(-1)!;
    f.step({ type: MsgType.ZabProposal, from: L.id, to: fid, term: e, prevIndex: last.index, prevTerm: last.term, commit: 0, entries: [{ term: e, index: last.index + 1, type: EntryType.Normal, data: new TextEncoder().encode('b') }] });
    const rd = f.ready()!; // "in flight": not advanced
    expect(rd.entries.map((x) => x.index)).toEqual([last.index + 1]);
    expect(rd.messages).toEqual([expect.objectContaining({ type: MsgType.ZabAck, index: last.index + 1 })]);
    f.step({ type: MsgType.ZabPing, from: L.id, to: fid, term: e, ctx: 7 });
    expect(f.takeEager()).toEqual([expect.objectContaining({ type: MsgType.ZabPong, to: L.id, term: e, ctx: 7 })]);
    f.advance(rd);
    expect(f.ready()).toBeUndefined(); // the PONG went once
  });
});
