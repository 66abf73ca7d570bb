/**
 * Randomized runs: safety invariants (Raft Figure 3) checked after every delivery and
 * tick, under loss, long reordering, partitions, crashes and restarts.
 */
import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';
import { Rng } from '../../../src/rng.ts';
import type { RaftOptions } from '../../../src/raft/index.ts';

function chaos(seed: number, ticks: number, opts: { nodes: number; witness?: boolean; snapshots?: boolean; preVote?: boolean; pipelined?: boolean }) {
  const voters = Array.from({ length: opts.nodes }, (_, i) => i + 1);
  const witnesses = opts.witness ? [voters.pop()!] : [];
  const c = new Cluster({ seed, voters, witnesses, net: { drop: 0.05, minDelay: 0, maxDelay: 6 }, options: { preVote: opts.preVote ?? true }, pipelined: opts.pipelined ?? false });
  const rng = new Rng(seed).fork('chaos');
  let proposed = 0;
  const all = [...voters, ...witnesses];
  for (let t = 0; t < ticks; t++) {
    const r = rng.float();
    if (r < 0.3) {
      if (c.propose(`s${seed}-${proposed}`) !== undefined) proposed++;
    } else if (r < 0.31) {
      const down = c.up().length;
      const id = rng.pick(all);
      if (c.node(id).up && down > 1) c.crash(id);
    } else if (r < 0.33) {
      const id = rng.pick(all);
      if (!c.node(id).up) c.restart(id);
    } else if (r < 0.34) {
      const shuffled = all.slice().sort(() => rng.float() - 0.5);
      const k = rng.int(1, all.length - 1);
      c.heal();
      c.partition(shuffled.slice(0, k), shuffled.slice(k));
    } else if (r < 0.36) {
      c.heal();
    } else if (opts.snapshots && r < 0.365) {
      const n = rng.pick(c.up());
      if (n.applied > (n.r.status().snapshotIndex) && !n.r.status().isWitness) c.compact(n.id);
    }
    c.tick();
  }
  // Heal everything; the cluster must converge.
  c.heal();
  c.net = { drop: 0, minDelay: 0, maxDelay: 1 };
  for (const id of all) if (!c.node(id).up) c.restart(id);
  // A proposal made to a leader that is about to be deposed is lost (a real client
  // retries after a timeout): retry until one is applied everywhere.
  const done = () => c.up().every((n) => n.r.status().isWitness || c.appliedData(n.id).at(-1) === 'final');
  for (let k = 0; k < 20 && !done(); k++) {
    c.run(50);
    c.propose('final');
    c.run(100);
  }
  if (!done()) throw new Error(`seed ${seed}: no convergence after healing`);
  const ref = c.appliedData(voters[0]!);
  for (const id of voters) expect(c.appliedData(id)).toEqual(ref);
  return { c, proposed, applied: ref.length };
}

describe('raft randomized safety', () => {
  it('50 seeds, 5 nodes, loss + reordering + partitions + crashes: invariants hold, all converge', () => {
    let applied = 0;
    for (let seed = 1; seed <= 50; seed++) applied += chaos(seed, 400, { nodes: 5 }).applied;
    expect(applied).toBeGreaterThan(50 * 20); // progress was made, not just safety by doing nothing
  });

  it('20 seeds with snapshots (compaction at random) and 3 nodes', () => {
    for (let seed = 100; seed < 120; seed++) chaos(seed, 400, { nodes: 3, snapshots: true });
  });

  it('15 seeds without pre-vote (the Vote rules alone must keep leaders complete)', () => {
    for (let seed = 300; seed < 315; seed++) chaos(seed, 400, { nodes: 5, preVote: false });
  });

  it('30 seeds pipelined as the daemon runs (leader Appends before its own fsync, commit-only hard states not synced), with snapshots', () => {
    let applied = 0;
    for (let seed = 600; seed < 630; seed++) applied += chaos(seed, 400, { nodes: seed % 2 === 0 ? 5 : 3, snapshots: true, pipelined: true }).applied;
    expect(applied).toBeGreaterThan(30 * 20);
  });

  it('20 seeds, 2 nodes + witness', () => {
    for (let seed = 200; seed < 220; seed++) chaos(seed, 400, { nodes: 3, witness: true, snapshots: true });
  });
});

/**
 * Membership churn on top of the chaos: the leader removes a random member, adds a
 * non-member back as voter, learner or witness (a former witness re-added as a voter
 * keeps its data-less log), or promotes a learner. The safety invariants run after
 * every step; at the end the final config's data members must all apply a last write.
 */
function membershipChaos(seed: number, ticks: number, voters: number[], witnesses: number[], options?: Partial<RaftOptions>) {
  const c = new Cluster({ seed, voters, witnesses, net: { drop: 0.03, minDelay: 0, maxDelay: 4 }, options });
  const rng = new Rng(seed).fork('membership');
  const all = [...voters, ...witnesses];
  let changes = 0;
  for (let t = 0; t < ticks; t++) {
    const r = rng.float();
    if (r < 0.3) {
      c.propose(`m${seed}-${t}`);
    } else if (r < 0.33) {
      const l = c.leader();
      if (l) {
        const cfg = l.r.status().config;
        const members = [...cfg.voters, ...cfg.learners, ...cfg.witnesses];
        const outside = all.filter((x) => !members.includes(x));
        const q = rng.float();
        let res;
        if (q < 0.4 && members.length > 2) res = l.r.proposeConfChange({ op: 'remove', node: rng.pick(members) });
        else if (q < 0.8 && outside.length > 0) res = l.r.proposeConfChange({ op: rng.pick(['add-voter', 'add-learner', 'add-witness'] as const), node: rng.pick(outside) });
        else if (cfg.learners.length > 0) res = l.r.proposeConfChange({ op: 'promote', node: rng.pick(cfg.learners) });
        if (res?.ok) changes++;
        c.process(l);
      }
    } else if (r < 0.34) {
      const id = rng.pick(all);
      if (c.node(id).up && c.up().length > 1) c.crash(id);
    } else if (r < 0.36) {
      const id = rng.pick(all);
      if (!c.node(id).up) c.restart(id);
    } else if (r < 0.37) {
      const shuffled = all.slice().sort(() => rng.float() - 0.5);
      const k = rng.int(1, all.length - 1);
      c.heal();
      c.partition(shuffled.slice(0, k), shuffled.slice(k));
    } else if (r < 0.39) {
      c.heal();
    } else if (r < 0.395) {
      const n = rng.pick(c.up());
      const st = n.r.status();
      if (n.applied > st.snapshotIndex && !st.isWitness && st.missingDataTo === 0) c.compact(n.id);
    }
    c.tick();
  }
  c.heal();
  c.net = { drop: 0, minDelay: 0, maxDelay: 1 };
  for (const id of all) if (!c.node(id).up) c.restart(id);
  const done = () => {
    const l = c.leader();
    if (!l) return false;
    const cfg = l.r.status().config;
    return [...cfg.voters, ...cfg.learners].every((id) => c.appliedData(id).at(-1) === 'final');
  };
  for (let k = 0; k < 20 && !done(); k++) {
    c.run(50);
    c.propose('final');
    c.run(50);
    // A re-added former witness waits for a snapshot that covers its gap.
    const l = c.leader();
    if (l && l.applied > l.r.status().snapshotIndex) c.compact(l.id);
    c.run(50);
  }
  if (!done()) throw new Error(`seed ${seed}: no convergence after healing (config ${JSON.stringify(c.leader()?.r.status().config)})`);
  const cfg = c.leader()!.r.status().config;
  const ref = c.appliedData(c.leader()!.id);
  for (const id of [...cfg.voters, ...cfg.learners]) {
    expect(c.appliedData(id)).toEqual(ref);
    expect(c.appliedData(id).every((v) => v.length > 0)).toBe(true);
  }
  return changes;
}

describe('raft randomized membership changes', () => {
  it('20 seeds, 2 nodes + witness, members removed and re-added in any role: invariants hold, all converge', () => {
    let changes = 0;
    for (let seed = 700; seed < 720; seed++) changes += membershipChaos(seed, 500, [1, 2], [3]);
    // The chaos did change the membership, often: over blocks of 20 seeds the count
    // ranges about 34–61 (it depends on the seed's whole timeline, e.g. on when the first
    // election happens), so the bound is well below that, not tuned to one block.
    expect(changes).toBeGreaterThan(20 * 1.5);
  });

  it('10 seeds, 4 nodes + witness', () => {
    let changes = 0;
    for (let seed = 720; seed < 730; seed++) changes += membershipChaos(seed, 500, [1, 2, 3, 4], [5]);
    expect(changes).toBeGreaterThan(10 * 3);
  });

  it('10 seeds, 2 nodes + witness, without pre-vote and check-quorum (a removed leader that still campaigns must learn newer terms)', () => {
    for (let seed = 730; seed < 740; seed++) membershipChaos(seed, 500, [1, 2], [3], { preVote: false, checkQuorum: false });
  });
});

describe('raft under harsh schedules', () => {
  it('long reordering (delays up to 300 ms, beyond the election timeout) keeps safety and makes progress', () => {
    let acceptedInStorm = 0;
    let committedInStorm = 0;
    for (let seed = 400; seed < 410; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.02, minDelay: 0, maxDelay: 30 } });
      let ok = 0;
      for (let t = 0; t < 600; t++) {
        if (t % 3 === 0 && c.propose(`r${t}`) !== undefined) ok++;
        c.tick();
      }
      if (ok > 0) acceptedInStorm++;
      c.net = { drop: 0, minDelay: 0, maxDelay: 0 };
      c.run(300);
      const l = c.waitLeader(300);
      if (c.appliedData(l.id).length > 0) committedInStorm++;
      // Once the network is calm, a write commits, and every node applied the same.
      expect(c.propose('calm')).toBeDefined();
      c.run(50);
      expect(c.appliedData(l.id).at(-1)).toBe('calm');
      for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(c.appliedData(l.id));
    }
    // During the storm a leader is elected and commits writes in most seeds, not in every
    // one: with delays beyond the election timeout a seed may see no leader at all for its
    // 600 ticks (liveness needs a calm network; safety is checked after every step). Over
    // seeds 400-479 that happened in 2-3 of 80, which ones depending on details of the
    // election timing; seeds 400-404 alone were once all lucky.
    expect(acceptedInStorm).toBeGreaterThanOrEqual(8);
    expect(committedInStorm).toBeGreaterThanOrEqual(8);
  });

  it('churn: a node crashes every 200-300 ms and restarts shortly after; the cluster keeps committing', () => {
    for (let seed = 500; seed < 505; seed++) {
      const c = new Cluster({ seed, voters: [1, 2, 3, 4, 5], net: { drop: 0.01, minDelay: 0, maxDelay: 2 } });
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
      expect(applied.length).toBeGreaterThan(100); // it kept committing through the churn
      for (const n of c.up()) expect(c.appliedData(n.id)).toEqual(applied);
    }
  });
});
