/**
 * Snapshots (Raft §7, thesis §5): compaction, chunked install to lagging followers.
 */
import { describe, expect, it } from 'vitest';
import { EntryType, MsgType, type Snapshot } from '../../../src/wire/messages.ts';
import { RaftNode } from '../../../src/raft/index.ts';
import { Rng } from '../../../src/rng.ts';
import { Cluster } from './harness.ts';

const SERIAL = 1024;

function lagged(seed: number, how: 'crash' | 'partition', drop = 0) {
  const c = new Cluster({ seed, voters: [1, 2, 3], options: { maxMsgBytes: SERIAL }, wire: true });
  const l = c.waitLeader();
  const f = [1, 2, 3].find((x) => x !== l.id)!;
  if (how === 'crash') c.crash(f);
  else c.isolate(f);
  for (let i = 0; i < 60; i++) c.propose(`k${i}`);
  c.run(20);
  c.compact(l.id, 6000); // a snapshot of ~7 KB: several serial frames
  const snapIndex = l.r.status().snapshotIndex;
  expect(snapIndex).toBeGreaterThan(60);
  c.record = true;
  c.net.drop = drop;
  if (how === 'crash') c.restart(f);
  else c.heal();
  c.runUntil(() => c.appliedData(f).length === 60, 800, 'follower caught up');
  return { c, l, f, snapIndex };
}

describe('raft snapshots', () => {
  it('a crashed follower that fell behind the leader’s log gets the snapshot in frames that fit 1 KiB', () => {
    const { c, f, snapIndex } = lagged(51, 'crash');
    const chunks = c.log.filter((m): m is Snapshot => m.type === MsgType.Snapshot && m.to === f);
    expect(chunks.length).toBeGreaterThanOrEqual(7);
    expect(c.maxFrame.get('Snapshot')!).toBeLessThanOrEqual(SERIAL);
    expect(c.node(f).store.snapshot?.meta.index).toBe(snapIndex);
    expect(c.node(f).r.status().snapshotIndex).toBe(snapIndex);
    // replication resumes after the snapshot
    c.propose('after');
    c.run(20);
    expect(c.appliedData(f).at(-1)).toBe('after');
    // and it restarts from its own snapshot
    c.crash(f);
    c.restart(f);
    expect(c.node(f).applied).toBe(snapIndex);
    c.run(20);
    expect(c.appliedData(f)).toHaveLength(61);
  });

  it('a partitioned (live) follower gets the snapshot too, despite 20% chunk loss', () => {
    const { c, f } = lagged(52, 'partition', 0.2);
    expect(c.maxFrame.get('Snapshot')!).toBeLessThanOrEqual(SERIAL);
    expect(c.appliedData(f)).toEqual(Array.from({ length: 60 }, (_, i) => `k${i}`));
  });

  it('a snapshot whose last entry the follower already holds keeps the follower’s log (it may have acked more)', () => {
    const cfg = { voters: [1, 2, 3], learners: [], witnesses: [] };
    const log = [1, 2, 3, 4, 5].map((i) => ({ index: i, term: 1, type: EntryType.Normal, data: new Uint8Array([i]) }));
    const snap = (lastTerm: number) => ({ type: MsgType.Snapshot, from: 1, to: 2, term: 2, lastIndex: 4, lastTerm, offset: 0, total: 3, data: new Uint8Array([7, 7, 7]), done: true, config: cfg }) as Snapshot;
    const keep = new RaftNode({ id: 2, config: cfg, rng: new Rng(1), hardState: { term: 1, vote: 0, commit: 2 }, entries: log });
    keep.step(snap(1));
    const rd = keep.ready()!;
    expect(rd.snapshot).toBeUndefined();
    expect(keep.status().lastIndex).toBe(5);
    expect(keep.status().commitIndex).toBe(4);
    expect(rd.messages).toEqual([expect.objectContaining({ type: MsgType.SnapshotReply, next: 3, ok: true })]);
    // A conflicting last entry: install, discarding the whole log.
    const inst = new RaftNode({ id: 2, config: cfg, rng: new Rng(1), hardState: { term: 1, vote: 0, commit: 2 }, entries: log });
    inst.step(snap(2));
    const rd2 = inst.ready()!;
    expect(rd2.snapshot?.meta).toEqual({ index: 4, term: 2, config: cfg });
    expect(rd2.snapshot?.data).toEqual(new Uint8Array([7, 7, 7]));
    expect(rd2.committed).toEqual([]);
    inst.advance(rd2);
    expect(inst.status()).toMatchObject({ lastIndex: 4, snapshotIndex: 4, appliedIndex: 4, commitIndex: 4 });
  });

  it('compaction input is validated', () => {
    const c = new Cluster({ seed: 53, voters: [1] });
    const l = c.waitLeader();
    c.propose('a');
    c.run(2);
    expect(l.r.compact(99, new Uint8Array()).ok).toBe(false); // beyond applied
    expect(l.r.compact(-1, new Uint8Array()).ok).toBe(false);
    expect(l.r.compact(1, 'x' as never).ok).toBe(false);
    expect(l.r.compact(l.applied, new Uint8Array([1])).ok).toBe(true);
    expect(l.r.compact(l.applied, new Uint8Array([1])).ok).toBe(false); // not after the current snapshot
  });
});

describe('read-only getters', () => {
  it('currentTerm, currentRole, leaderId, commitIndex, lastIndex, snapshotIndex equal status() at every tick (elections, crashes, compaction)', () => {
    const c = new Cluster({ seed: 77, voters: [1, 2, 3], wire: true });
    let compared = 0;
    const same = () => {
      for (const n of c.up()) {
        const s = n.r.status();
        expect([n.r.currentTerm, n.r.currentRole, n.r.leaderId, n.r.commitIndex, n.r.lastIndex, n.r.snapshotIndex]).toEqual([
          s.term, s.role, s.leader, s.commitIndex, s.lastIndex, s.snapshotIndex,
        ]);
        compared++;
      }
    };
    for (let round = 0; round < 4; round++) {
      const l = c.waitLeader();
      for (let i = 0; i < 10; i++) {
        c.propose(`r${round}k${i}`);
        c.tick();
        same();
      }
      c.compact(l.id);
      c.crash(l.id);
      for (let t = 0; t < 40; t++) {
        c.tick();
        same();
      }
      c.restart(l.id);
    }
    expect(compared).toBeGreaterThan(300);
    expect(Math.max(...c.up().map((n) => n.r.snapshotIndex))).toBeGreaterThan(0);
  });
});
