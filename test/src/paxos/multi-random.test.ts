/**
 * Randomized runs of the Multi-Paxos engine: every invariant of src/paxos/invariants.ts
 * checked after every delivery and tick, under loss, duplication, long reordering,
 * partitions, crashes, torn writes and power cuts right after a Ready; then the faults
 * stop and every replica must converge on one applied sequence. With KV clients the
 * history must be linearizable. A failing seed replays exactly.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { chaos } from './chaos.ts';
import { Cluster } from './harness.ts';

describe('paxos randomized safety', () => {
  it('40 seeds, 5 nodes, loss + duplication + reordering + partitions + crashes: invariants hold, all converge', () => {
    let applied = 0;
    for (let seed = 1; seed <= 40; seed++) applied += chaos(seed, { nodes: 5 }).applied;
    expect(applied).toBeGreaterThan(40 * 30); // progress, not safety by doing nothing
  });

  it('30 seeds with torn writes and power cuts after a Ready (3–5 nodes, snapshots)', () => {
    let torn = 0;
    for (let seed = 100; seed < 130; seed++) {
      const r = chaos(seed, { nodes: 3 + (seed % 3), torn: 0.05, crashAfterReady: 0.01, snapshots: true });
      torn += r.c.tornWrites;
    }
    expect(torn).toBeGreaterThan(100);
  });

  it('25 seeds, 2 data nodes + a witness, snapshots', () => {
    for (let seed = 200; seed < 225; seed++) chaos(seed, { nodes: 3, witness: true, snapshots: true });
  });

  it('20 seeds with a learner and torn writes', () => {
    for (let seed = 300; seed < 320; seed++) chaos(seed, { nodes: 3, learner: true, torn: 0.03 });
  });

  it('15 seeds without pre-prepare (the Prepare rules alone)', () => {
    for (let seed = 400; seed < 415; seed++) chaos(seed, { nodes: 5, options: { prePrepare: false } });
  });

  it('20 seeds of KV clients (put, get at any node, cas) through crashes and torn writes: the histories are linearizable', () => {
    let ops = 0;
    for (let seed = 500; seed < 520; seed++) {
      const r = chaos(seed, { nodes: 5, clients: 4, torn: 0.02, snapshots: true });
      expect(r.lin?.ok, `seed ${seed}: ${JSON.stringify(r.lin).slice(0, 300)}`).toBe(true);
      ops += r.histories;
    }
    expect(ops).toBeGreaterThan(20 * 20);
  });

  it('10 seeds on serial-sized frames (1 KiB): every message passes the real codec and fits the frame', () => {
    const largest = new Map<string, number>();
    for (let seed = 800; seed < 810; seed++) {
      const r = chaos(seed, { nodes: 5, clients: 3, snapshots: true, wire: true, options: { maxMsgBytes: 1024, maxEntriesPerMsg: 64 } });
      for (const [k, v] of r.c.maxFrame) largest.set(k, Math.max(largest.get(k) ?? 0, v));
    }
    for (const [k, v] of largest) expect(v, k).toBeLessThanOrEqual(1024);
    expect([...largest.keys()]).toEqual(expect.arrayContaining(['PaxosPrepare', 'PaxosPromise', 'PaxosAccept', 'PaxosAccepted', 'Heartbeat', 'HeartbeatReply', 'PaxosSnapshot']));
  });

  it('the same seed replays exactly', () => {
    const sig = (seed: number) => {
      const r = chaos(seed, { nodes: 5, torn: 0.03, clients: 2 });
      return JSON.stringify([r.c.now, [...r.c.sent], r.c.appliedData(1), r.histories]);
    };
    expect(sig(7)).toBe(sig(7));
    expect(sig(7)).not.toBe(sig(8));
  });
});

describe('paxos under harsh schedules', () => {
  it('long reordering (delays up to 300 ms, beyond the election timeout) keeps safety and makes progress', () => {
    for (let seed = 600; seed < 605; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.02, dup: 0.02, minDelay: 0, maxDelay: 30 } });
      let ok = 0;
      for (let t = 0; t < 600; t++) {
        if (t % 3 === 0 && c.propose(`r${t}`) !== undefined) ok++;
        c.tick();
      }
      c.net = { drop: 0, dup: 0, minDelay: 0, maxDelay: 0 };
      c.run(300);
      const l = c.waitLeader(300);
      c.run(50);
      expect(c.appliedData(l.id).length).toBeGreaterThan(0);
      for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(c.appliedData(l.id));
      expect(ok).toBeGreaterThan(0);
    }
  });

  it('churn: a node crashes every 200–300 ms and restarts shortly after; the cluster keeps committing', () => {
    for (let seed = 700; seed < 705; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.01, dup: 0.01, minDelay: 0, maxDelay: 2 } });
      const rng = new Rng(seed).fork('churn');
      let next = 20;
      let victim: number | undefined;
      for (let t = 0; t < 1500; t++) {
        if (t === next) {
          if (victim !== undefined) c.restart(victim);
          victim = rng.int(1, 5);
          c.crash(victim);
          next = t + rng.int(20, 30);
        }
        if (t % 2 === 0) c.propose(`c${seed}-${t}`);
        c.tick();
      }
      if (victim !== undefined) c.restart(victim);
      c.run(200);
      const l = c.waitLeader();
      c.run(100);
      const applied = c.appliedData(l.id);
      expect(applied.length).toBeGreaterThan(100);
      for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(applied);
    }
  });
});
