/**
 * The first election of a brand-new cluster (src/raft/raft.ts resetTimers, inLease):
 * a node still at term 0 times out after one to two heartbeat intervals instead of a
 * whole election timeout, and with lease reads it grants votes at once (it never
 * acknowledged a lease). Everything else — later elections, restarted nodes, a node
 * that comes back without its data beside a live leader — keeps the normal timeouts.
 *
 * Timing as on a board (daemon/config/schema.ts): tick 10 ms, heartbeat 100 ms,
 * election timeout 1000–2000 ms, pre-vote, check-quorum and lease reads on.
 */
import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';
import { EntryType } from '../../../src/wire/messages.ts';

const BOARD = { tickMs: 10, heartbeatMs: 100, electionTimeoutMinMs: 1000, electionTimeoutMaxMs: 2000, leaseRead: true, maxClockDriftRatio: 0.05 };
/** Ticks of the normal minimum election timeout. */
const ELECTION_MIN = 100;
/** The first timeout is below 2 heartbeats (20 ticks); a pre-vote and a vote round take a few more. */
const FIRST_BOUND = 30;

describe('raft first election of a brand-new cluster', () => {
  it('all up together: the lowest voter asks at once and leads within a few message delays, over many seeds', () => {
    const took: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3], options: BOARD, net: { minDelay: 1, maxDelay: 2 } });
      took.push(c.runUntil(() => c.leader() !== undefined, 3 * ELECTION_MIN, `seed ${seed}: a leader`));
      c.run(20);
      const l = c.leader()!;
      expect(l.id).toBe(1);
      for (const n of c.up()) expect(n.r.status().leader).toBe(l.id);
    }
    // One tick, then a pre-vote round and a vote round of 1–2 ticks each: over before the
    // others' first timeouts (at least one heartbeat, 10 ticks) run out.
    expect(Math.max(...took)).toBeLessThan(10);
  });

  it('five nodes too: node 1 leads, every seed within the bound', () => {
    for (let seed = 100; seed < 130; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], options: BOARD, net: { minDelay: 1, maxDelay: 2 } });
      expect(c.runUntil(() => c.leader() !== undefined, 4 * ELECTION_MIN, `seed ${seed}: a leader`)).toBeLessThan(10);
      expect(c.leader()!.id).toBe(1);
    }
  });

  it('the lowest voter down: the others elect within two heartbeat intervals (plus the vote rounds), and the first campaigner is not always the same node (still randomized)', () => {
    const took: number[] = [];
    const leaders = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], options: BOARD, down: [1], net: { minDelay: 1, maxDelay: 2 } });
      took.push(c.runUntil(() => c.leader() !== undefined, 4 * ELECTION_MIN, `seed ${seed}: a leader`));
      leaders.add(c.leader()!.id);
    }
    expect(Math.max(...took)).toBeLessThanOrEqual(FIRST_BOUND);
    expect(Math.min(...took)).toBeGreaterThanOrEqual(10); // still a timeout: at least one heartbeat interval
    expect(leaders.size).toBeGreaterThanOrEqual(3);
  });

  it('a node alone keeps asking (pre-vote) without bumping its term, and the cluster elects as soon as a quorum is up', () => {
    const c = new Cluster({ seed: 7, voters: [1, 2, 3], options: BOARD, down: [2, 3], net: { minDelay: 1, maxDelay: 2 } });
    c.run(5 * ELECTION_MIN);
    expect(c.leader()).toBeUndefined();
    expect(c.node(1).r.status().term).toBe(0); // pre-votes only: no term was burnt
    // It asked every 1–2 heartbeats (its first one-tick timeout only once), not every
    // election timeout, and not every tick: 2 peers × 500 ticks / 10–20 ticks.
    const preVotes = c.sent.get('PreVote') ?? 0;
    expect(preVotes).toBeGreaterThan(2 * 20);
    expect(preVotes).toBeLessThanOrEqual(2 * (500 / 10 + 1));
    c.restart(2);
    const t = c.runUntil(() => c.leader() !== undefined, 3 * ELECTION_MIN, 'a leader once node 2 is up');
    expect(t).toBeLessThanOrEqual(FIRST_BOUND);
  });

  it('two of three up together: campaigns that overlap do not split the vote of term 1 (the lower id goes on, the other backs it)', () => {
    const slow: number[] = [];
    for (let seed = 200; seed < 300; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3], options: BOARD, down: [seed % 3 + 1], net: { minDelay: 1, maxDelay: 2 } });
      const t = c.runUntil(() => c.leader() !== undefined, 5 * ELECTION_MIN, `seed ${seed}: a leader`);
      if (t > FIRST_BOUND) slow.push(seed);
      expect(c.leader()!.r.status().term).toBe(1);
    }
    // Without the tie-break, about 1 seed in 12 here ends in a split vote and a leader
    // only after a whole election timeout.
    expect(slow).toEqual([]);
  });

  it('a cluster restarted from disk (term ≥ 1) waits the normal election timeout', () => {
    const entries = [{ term: 1, index: 1, type: EntryType.Noop, data: new Uint8Array(0) }];
    const persisted = Object.fromEntries([1, 2, 3].map((id) => [id, { hardState: { term: 1, vote: 1, commit: 1 }, entries }]));
    for (let seed = 1; seed <= 10; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3], options: BOARD, persisted, net: { minDelay: 1, maxDelay: 2 } });
      const t = c.runUntil(() => c.leader() !== undefined, 5 * ELECTION_MIN, `seed ${seed}: a leader`);
      // Lease reads: a restarted node grants no vote in its first election timeout either.
      expect(t).toBeGreaterThanOrEqual(ELECTION_MIN);
    }
  });

  it('after the first election the followers time out normally: a leader cut off is replaced only after an election timeout', () => {
    const c = new Cluster({ seed: 3, voters: [1, 2, 3], options: BOARD, net: { minDelay: 1, maxDelay: 2 } });
    const l = c.waitLeader(3 * ELECTION_MIN);
    c.run(50);
    c.isolate(l.id);
    const t = c.runUntil(() => c.up().some((n) => n.id !== l.id && n.r.status().role === 'leader'), 5 * ELECTION_MIN, 'a new leader');
    expect(t).toBeGreaterThanOrEqual(ELECTION_MIN);
  });

  it('a node back without its data (term 0) beside a live leader does not disrupt it', () => {
    const c = new Cluster({ seed: 11, voters: [1, 2, 3], options: BOARD, net: { minDelay: 1, maxDelay: 2 } });
    const l = c.waitLeader(3 * ELECTION_MIN);
    c.propose('a');
    c.run(50);
    const term = l.r.status().term;
    const other = c.up().find((n) => n.id !== l.id)!;
    c.crash(other.id);
    other.store = { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] };
    c.restart(other.id);
    c.run(3 * ELECTION_MIN);
    expect(c.leader()?.id).toBe(l.id);
    expect(l.r.status().term).toBe(term);
    expect(other.r.status()).toMatchObject({ term, leader: l.id, role: 'follower' });
  });
});
