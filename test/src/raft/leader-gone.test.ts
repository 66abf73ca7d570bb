/**
 * RaftNode.leaderGone(id): the link's report that the leader's connection died (MQTT
 * Last Will). It ends leader stickiness (thesis §4.2.3) on the node that gets it, so
 * that a campaign started at once can win without waiting out electionTimeoutMin;
 * pre-vote keeps a false report harmless where nodes still hear the leader (§9.6).
 *
 * Timing in these tests: tickMs 10, election timeout 150–300 ms = 15–30 ticks, network
 * delivery within the tick. "Fast" below means a new leader within 5 ticks of the
 * crash, which is impossible through the election timeout or the stickiness window.
 */
import { describe, expect, it } from 'vitest';
import { Cluster, type SimNode } from './harness.ts';

/** Crashes the leader; returns it and the survivors (after the leader's last messages are out). */
function crashLeader(c: Cluster): { old: SimNode; rest: SimNode[] } {
  const old = c.waitLeader();
  c.run(3); // a heartbeat round: every follower just heard the leader (full stickiness window ahead)
  c.crash(old.id);
  return { old, rest: c.up() };
}

const newLeader = (c: Cluster, old: SimNode) => {
  const l = c.leader();
  return l !== undefined && l.id !== old.id ? l : undefined;
};

describe('RaftNode.leaderGone', () => {
  it('3 nodes: with the report on both survivors, a campaign at once wins within 5 ticks', () => {
    const c = new Cluster({ seed: 11, voters: [1, 2, 3] });
    const { old, rest } = crashLeader(c);
    for (const n of rest) {
      const r = n.r.leaderGone(old.id);
      expect(r).toEqual({ ok: true, forgot: true });
      expect(n.r.status().leader).toBe(0);
    }
    rest[0]!.r.campaign();
    c.process(rest[0]!);
    const ticks = c.runUntil(() => newLeader(c, old) !== undefined, 5, 'a new leader after leaderGone');
    expect(ticks).toBeLessThanOrEqual(5);
    expect(newLeader(c, old)!.id).toBe(rest[0]!.id);
  });

  it('control: without the report the same immediate campaign is refused (stickiness), so the test can fail', () => {
    const c = new Cluster({ seed: 11, voters: [1, 2, 3] });
    const { old, rest } = crashLeader(c);
    rest[0]!.r.campaign();
    c.process(rest[0]!);
    c.run(5);
    expect(newLeader(c, old)).toBeUndefined();
  });

  it('3 data nodes + witness: without the witness report the witness refuses (it is sticky), with it the election succeeds', () => {
    for (const tellWitness of [false, true]) {
      const c = new Cluster({ seed: 13, voters: [1, 2, 3], witnesses: [4] });
      const { old, rest } = crashLeader(c);
      for (const n of rest) if (n.id !== 4 || tellWitness) n.r.leaderGone(old.id);
      // One survivor campaigns at once; the other data node grants, the witness decides.
      const cand = rest.find((n) => n.id !== 4)!;
      cand.r.campaign();
      c.process(cand);
      c.run(5);
      expect(newLeader(c, old) !== undefined, `tellWitness=${tellWitness}`).toBe(tellWitness);
    }
  });

  it('a false report to one follower of a live 5-node leader changes nothing: pre-vote is refused by the others', () => {
    const c = new Cluster({ seed: 14, voters: [1, 2, 3, 4, 5] });
    const l = c.waitLeader();
    c.run(3);
    const term = l.r.status().term;
    const f = c.up().find((n) => n.id !== l.id)!;
    expect(f.r.leaderGone(l.id).ok).toBe(true);
    f.r.campaign();
    c.process(f);
    c.run(50);
    expect(c.leader()!.id).toBe(l.id);
    for (const n of c.up()) expect(n.r.status().term).toBe(term);
  });

  it('a false report to every follower costs one election but no safety (invariants checked every tick, commits survive)', () => {
    const c = new Cluster({ seed: 15, voters: [1, 2, 3] });
    const l = c.waitLeader();
    for (let i = 0; i < 5; i++) c.propose(`v${i}`);
    c.run(10);
    const term = l.r.status().term;
    const committed = [...c.appliedData(l.id)];
    expect(committed).toHaveLength(5);
    const fs = c.up().filter((n) => n.id !== l.id);
    for (const f of fs) f.r.leaderGone(l.id);
    fs[0]!.r.campaign();
    c.process(fs[0]!);
    c.runUntil(() => c.leader() !== undefined && c.leader()!.r.status().term > term, 10, 'the needless election');
    expect(l.r.status().role).toBe('follower'); // the old leader stepped down on the higher term
    c.propose('after');
    c.run(10);
    for (const n of c.up()) expect(c.appliedData(n.id)).toEqual([...committed, 'after']);
  });

  it('a heartbeat from the (alive) leader after a report restores it as leader on that follower', () => {
    const c = new Cluster({ seed: 16, voters: [1, 2, 3] });
    const l = c.waitLeader();
    const f = c.up().find((n) => n.id !== l.id)!;
    f.r.leaderGone(l.id);
    expect(f.r.status().leader).toBe(0);
    c.run(10);
    expect(f.r.status().leader).toBe(l.id);
  });

  it('reports that change nothing: about another node, on the leader itself, about itself; with lease reads the report is acted on too', () => {
    const c = new Cluster({ seed: 17, voters: [1, 2, 3] });
    const l = c.waitLeader();
    c.run(3);
    const [a, b] = c.up().filter((n) => n.id !== l.id);
    expect(a!.r.leaderGone(b!.id)).toEqual({ ok: true, forgot: false }); // not our leader
    expect(a!.r.leaderGone(a!.id)).toEqual({ ok: true, forgot: false }); // ourselves
    expect(l.r.leaderGone(l.id)).toEqual({ ok: true, forgot: false }); // the leader hears its own will (stale)
    expect(l.r.leaderGone(a!.id)).toEqual({ ok: true, forgot: false }); // a leader follows nobody
    expect(a!.r.status().leader).toBe(l.id);
    expect(l.r.status().role).toBe('leader');

    const lr = new Cluster({ seed: 17, voters: [1, 2, 3], options: { leaseRead: true } });
    const ll = lr.waitLeader();
    lr.run(3);
    const f = lr.up().find((n) => n.id !== ll.id)!;
    // The lease stays safe on the leader's side (dropLease, below), not by ignoring the hint.
    expect(f.r.leaderGone(ll.id)).toEqual({ ok: true, forgot: true });
    expect(f.r.status().leader).toBe(0);
  });

  it('dropLease: rounds sent before it hold no lease; reads go through a ReadIndex round until a newer round is acknowledged', () => {
    const c = new Cluster({ seed: 19, voters: [1, 2, 3], options: { leaseRead: true } });
    const l = c.waitLeader();
    c.run(30);
    // With a lease, a read is answered at once (same step, no round trip).
    expect(l.r.readIndex(1).ok).toBe(true);
    c.process(l);
    expect(l.reads.map((r) => r.ctx)).toContain(1);
    c.isolate(l.id); // nothing gets through any more (the session is gone)
    l.r.dropLease();
    expect(l.r.readIndex(2).ok).toBe(true);
    c.process(l);
    expect(l.reads.map((r) => r.ctx)).not.toContain(2); // not served from the old lease
    c.run(5);
    expect(l.reads.map((r) => r.ctx)).not.toContain(2);
    c.heal();
    c.run(20); // a round sent after dropLease is acknowledged: read served, lease back
    expect(l.reads.map((r) => r.ctx)).toContain(2);
    expect(l.r.readIndex(3).ok).toBe(true);
    c.process(l);
    expect(l.reads.map((r) => r.ctx)).toContain(3);
  });

  it('bad ids are a clear bad-request, never a throw', () => {
    const c = new Cluster({ seed: 18, voters: [1, 2, 3] });
    const n = c.node(1);
    for (const bad of [0, 255, -1, 1.5, NaN, '2' as unknown as number]) {
      const r = n.r.leaderGone(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe('bad-request');
        expect(r.reason).toMatch(/leaderGone: id must be a node id 1\.\.254/);
      }
    }
  });
});
