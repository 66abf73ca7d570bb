/**
 * Planted bugs: deliberately broken variants of the engine (options documented as
 * testing only) or of its runtime, and the invariants that catch them. Each test also
 * runs the same seeds without the bug, so the catch is the bug's doing.
 *
 *   - 'skip-reproposal': a new leader ignores the values its phase-1 quorum reported
 *     and fills every slot it does not hold itself with a no-op. Caught by one value per
 *     slot ever chosen (ground truth from durable votes), by replicas applying only the
 *     chosen value, by every applied sequence being a prefix of one sequence, and by
 *     the linearizability of KV histories — each on its own.
 *   - brokenAtomicity: a runtime that tears a Ready marked `atomic` (a rewrite of
 *     acknowledged votes). Caught by votes-kept at the first torn rewrite, and in some
 *     seeds it goes on to choose two values for one slot.
 */
import { describe, expect, it } from 'vitest';
import { MsgType } from '../../../src/wire/messages.ts';
import { chaos, type ChaosOptions } from './chaos.ts';
import { Cluster } from './harness.ts';

const ALL_CHECKS = ['one-value', 'one-value-per-ballot', 'proposed', 'learned-chosen', 'applied-prefix', 'votes-kept', 'promise-kept', 'ballot-owner', 'token-grows'];
const SKIP = { plantedBug: 'skip-reproposal' as const };

/** Seeds in [1, max] where `check` alone reports a violation, stopping after `want` of them. */
function seedsCaught(o: ChaosOptions, check: string, max: number, want: number): number[] {
  const found: number[] = [];
  for (let seed = 1; seed <= max && found.length < want; seed++) {
    const r = chaos(seed, { ...o, check: false, stopOnViolation: check !== 'lin', disabled: ALL_CHECKS.filter((x) => x !== check) });
    const bad = check === 'lin' ? r.lin !== undefined && r.lin.ok === false : r.c.inv.violations.length > 0;
    if (bad) found.push(seed);
  }
  return found;
}

describe('planted bug: a new leader that skips re-proposing an accepted value', () => {
  it('the directed schedule: a value chosen at the old ballot is replaced by a no-op, and one-value says so', () => {
    const c = new Cluster({ seed: 12, voters: [1, 2, 3, 4, 5], options: SKIP, check: false });
    const l = c.waitLeader();
    c.run(10);
    const others = [1, 2, 3, 4, 5].filter((id) => id !== l.id);
    const [a, b] = others;
    c.filter = (m) => (m.from === l.id && (m.type === MsgType.Heartbeat || (m.type === MsgType.PaxosAccept && m.to !== a && m.to !== b)) ? undefined : m);
    const s = c.propose('chosen-x')!;
    c.run(3);
    expect(c.inv.chosen(s)).toBeDefined();
    c.filter = undefined;
    c.crash(l.id);
    c.crash(a!);
    const l2 = c.waitLeader();
    c.run(10);
    expect(l2.id).not.toBe(b); // the schedule's premise: the new leader must learn the value from b's report
    expect(c.inv.violations.find((v) => v.startsWith('one-value:'))).toMatch(new RegExp(`^one-value: slot ${s}: .*type 1.* but .*type 0`));
  });

  it('random sweeps catch it, by each check on its own; the same seeds without the bug are clean', () => {
    const o: ChaosOptions = { nodes: 5, options: SKIP };
    const byCheck: Record<string, number[]> = {};
    for (const check of ['one-value', 'learned-chosen', 'applied-prefix']) {
      byCheck[check] = seedsCaught(o, check, 60, 3);
      expect(byCheck[check]!.length, check).toBeGreaterThanOrEqual(3);
    }
    for (const seed of new Set(Object.values(byCheck).flat())) {
      expect(chaos(seed, { nodes: 5 }).c.inv.violations).toEqual([]);
    }
  });

  it('with KV clients and every engine invariant switched off, the linearizability checker catches it', () => {
    const seeds = seedsCaught({ nodes: 5, clients: 4, options: SKIP }, 'lin', 80, 1);
    expect(seeds.length).toBe(1);
    const clean = chaos(seeds[0]!, { nodes: 5, clients: 4 });
    expect(clean.lin?.ok).toBe(true);
  });
});

describe('planted runtime bug: tearing a Ready that must be persisted all or nothing', () => {
  it('votes-kept catches the lost votes at once', () => {
    const seeds = seedsCaught({ nodes: 5, brokenAtomicity: true, torn: 0.1, snapshots: true }, 'votes-kept', 40, 3);
    expect(seeds.length).toBe(3);
    for (const seed of seeds) expect(chaos(seed, { nodes: 5, torn: 0.1, snapshots: true }).c.inv.violations).toEqual([]);
  });

  it('and the lost votes can let two values be chosen in one slot', () => {
    const seeds = seedsCaught({ nodes: 5, brokenAtomicity: true, torn: 0.1, snapshots: true }, 'one-value', 120, 1);
    expect(seeds.length).toBe(1);
    expect(chaos(seeds[0]!, { nodes: 5, torn: 0.1, snapshots: true }).c.inv.violations).toEqual([]);
  });
});
