/**
 * Planted bugs: the engine's testing-only options break one rule of the protocol
 * each, and the invariants (src/zab/invariants.ts) must catch it — at its cause (the
 * rule itself: an acknowledgement ahead of the disk, an establishment without a
 * synchronized quorum), and, with those two rules switched off, at its effect on what
 * clients see (a delivered transaction lost or replaced). In scenarios that read like
 * the rule and in randomized runs. If these tests pass with a bug uncaught, the
 * invariants have gone blind.
 *   - testingBroadcastBeforeQuorumSync: a prospective leader delivers its initial
 *     history and broadcasts before a quorum acknowledged NEWLEADER;
 *   - testingAckBeforeDurable: a follower's ACK leaves before its transaction is on
 *     disk (the entries come one Ready later), and a crash in between loses it.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import { chaos } from './chaos.ts';
import { Cluster } from './harness.ts';
import { hist, hs } from './helpers.ts';

const EFFECTS_ONLY = { acknowledgements: false, establishment: false };

describe('planted bug: broadcast before a quorum synchronized', () => {
  // Node 3 holds x, which no quorum ever acknowledged. Elected (its zxid is the
  // latest), the buggy leader delivers x at once; it dies before anyone synchronizes.
  const common = hist([[1, ''], [1, 'a']]);
  const withX = hist([[1, ''], [1, 'a'], [1, 'x']]);
  const run = (bug: boolean, rules?: typeof EFFECTS_ONLY) => {
    const c = new Cluster({
      seed: 21,
      voters: [1, 2, 3],
      options: { testingBroadcastBeforeQuorumSync: bug },
      rules,
      persisted: { 1: { hardState: hs(1, 1, 2), entries: common }, 2: { hardState: hs(1, 1, 2), entries: common }, 3: { hardState: hs(1, 1, 2), entries: withX } },
    });
    // Synchronization messages from 3 never arrive.
    c.filter = (m) => (m.from === 3 && (m.type === MsgType.ZabDiff || m.type === MsgType.ZabTrunc || m.type === MsgType.ZabProposal || m.type === MsgType.ZabNewLeader) ? undefined : m);
    c.runUntil(() => c.node(3).z.zabState === 'leading' && c.node(3).z.status().phase !== 'discovery', 300, 'node 3 synchronizing');
    c.run(5);
    c.crash(3);
    c.filter = undefined;
    c.runUntil(() => c.agreed() !== undefined, 400, 'a new leader among 1 and 2');
    c.propose('y');
    c.run(30);
    return c;
  };

  it('scenario, correct engine: x was never delivered, and is skipped', () => {
    expect(run(false).appliedData(1)).toEqual(['a', 'y']);
  });
  it('scenario, bug: caught at its cause (established with one of three synchronized)', () => {
    expect(() => run(true)).toThrow(/established epoch \d+ with 1 voter\(s\) synchronized durably, fewer than a quorum of 2/);
  });
  it('scenario, bug, cause rules off: caught at its effect (the next leader delivers another transaction where x was delivered)', () => {
    expect(() => run(true, EFFECTS_ONLY)).toThrow(/agreement|primary integrity|fencing tokens/);
  });

  it('randomized: caught in every seed at its cause, and in some seeds at its effect alone', () => {
    let cause = 0;
    let effect = 0;
    const seeds = 20;
    // The effect alone shows only when leader faults fall just so (1 to 3 seeds in 60,
    // which ones depending on every election's timing): more seeds for it than for the cause.
    const effectSeeds = 60;
    const o = { voters: 5, ticks: 400, options: { testingBroadcastBeforeQuorumSync: true }, noConverge: true };
    for (let seed = 1; seed <= seeds; seed++) {
      try {
        chaos(seed, o);
      } catch (e) {
        expect((e as Error).message).toMatch(/zab invariant/);
        cause++;
      }
    }
    for (let seed = 1; seed <= effectSeeds; seed++) {
      try {
        chaos(seed, { ...o, leaderFault: 0.03, rules: EFFECTS_ONLY });
      } catch (e) {
        expect((e as Error).message).toMatch(/zab invariant/);
        effect++;
      }
    }
    console.log(`broadcast-before-quorum-sync caught in ${cause}/${seeds} seeds at its cause, ${effect}/${effectSeeds} at its effect alone (leader faults 3 %/tick)`);
    expect(cause).toBe(seeds);
    expect(effect).toBeGreaterThan(0);
  });
});

describe('planted bug: a follower ACKs before its transaction is durable', () => {
  const run = (bug: boolean, rules?: typeof EFFECTS_ONLY) => {
    const c = new Cluster({ seed: 22, voters: [1, 2, 3], rules });
    c.runUntil(() => c.agreed() !== undefined, 200, 'agreement');
    const l = c.leader()!;
    const [a, b] = [1, 2, 3].filter((x) => x !== l.id) as [number, number];
    c.propose('before');
    c.run(20);
    // Restart a with the bug; b hears no new proposal.
    c.crash(a);
    c.nodeOptions[a] = { testingAckBeforeDurable: bug };
    c.restart(a);
    c.runUntil(() => c.agreed() === l.id, 200, 'a back');
    c.filter = (m) => (m.to === b && m.type === MsgType.ZabProposal ? undefined : m);
    c.crashAfterNextReady(a); // power lost right after its first Ready for the proposal
    c.propose('w');
    c.runUntil(() => !c.node(a).up, 20, 'a crashed');
    c.run(5); // the leader commits (and delivers) w if a's ACK reached it
    c.crash(l.id);
    c.filter = undefined;
    c.restart(a);
    c.runUntil(() => c.agreed() !== undefined, 400, 'a leader among a and b');
    c.propose('after');
    c.run(30);
    return { c, a, b };
  };

  it('scenario, correct engine: the ACK left with w on disk, so w survives both crashes', () => {
    const ok = run(false);
    expect(ok.c.appliedData(ok.b)).toEqual(['before', 'w', 'after']);
  });
  it('scenario, bug: caught at its cause (the ACK claims an index the disk does not hold)', () => {
    expect(() => run(true)).toThrow(/acknowledged index \d+ of epoch \d+ while its durable history ends at/);
  });
  it('scenario, bug, cause rules off: caught at its effect (the next leader lacks a delivered transaction)', () => {
    expect(() => run(true, EFFECTS_ONLY)).toThrow(/primary integrity|agreement/);
  });

  it('randomized: caught at its cause in nearly every seed', () => {
    let caught = 0;
    const seeds = 20;
    for (let seed = 1; seed <= seeds; seed++) {
      try {
        chaos(seed, { voters: 3, ticks: 400, options: { testingAckBeforeDurable: true }, noConverge: true });
      } catch (e) {
        expect((e as Error).message).toMatch(/zab invariant/);
        caught++;
      }
    }
    console.log(`ack-before-durable caught in ${caught}/${seeds} seeds at its cause`);
    expect(caught).toBeGreaterThanOrEqual(seeds - 3); // a seed whose faults leave no leader for long has nothing to catch
  });
});
