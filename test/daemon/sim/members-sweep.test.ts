/**
 * Witnesses (paxos, zab) and observers (zab) in the simulated cluster of contract
 * engines (daemon/sim/engine-cluster.ts, daemon/sim/member-checks.ts): small sweeps
 * with every fault kind (the full ones, 300 seeds, are in docs/engines.md), the member
 * checks on synthetic input (each can fail), and a planted bug — a ZAB leader that
 * counts observers toward its commit quorum — caught by commit-quorum.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { MemberRoleChecks, simMembers } from '../../../daemon/sim/member-checks.ts';
import { parseSimOptions, replayCommand, SimOptionError } from '../../../daemon/sim/options.ts';
import { runSimCommand } from '../../../daemon/sim.ts';

const ALL = 'partition,crash,power,loss,reorder,clock,disk';

function view(id: number, role: string, leader: number, isLeader = role === 'leader') {
  return { id, engine: { isLeader, status: () => ({ role, leader }) } };
}

describe('member checks (witness, observers)', () => {
  const config = simMembers(3, true, 2); // voters 1..3, witness 4, observers 5, 6
  const failures = () => {
    const got: string[] = [];
    return { got, fail: (inv: string, detail: string) => void got.push(`${inv}: ${detail}`) };
  };

  it('simMembers numbers voters, then the witness, then the observers', () => {
    expect(config).toEqual({ voters: [1, 2, 3], witnesses: [4], learners: [5, 6] });
    expect(simMembers(5, false, 0)).toEqual({ voters: [1, 2, 3, 4, 5], witnesses: [], learners: [] });
  });

  it('an observer or a witness that leads, or a node that follows one, is a violation', () => {
    const f = failures();
    const c = new MemberRoleChecks(config, 'zab', f.fail);
    c.afterStep(view(1, 'leader', 1));
    c.afterStep(view(4, 'candidate', 0)); // a ZAB witness is LOOKING while it votes in FLE: allowed
    c.afterStep(view(5, 'follower', 1));
    expect(f.got).toEqual([]);
    c.afterStep(view(5, 'leader', 5));
    c.afterStep(view(2, 'follower', 4));
    expect(f.got).toHaveLength(2);
    expect(f.got[0]).toMatch(/^non-voter-leads: node 5 is an observer and must never lead, but its role is leader/);
    expect(f.got[1]).toMatch(/^non-voter-leads: node 2 follows node 4, a witness/);
  });

  it('commit-quorum: a delivery needs a quorum of voting members (observers never count)', () => {
    const f = failures();
    const c = new MemberRoleChecks(config, 'zab', f.fail);
    const e = { index: 7, term: 2 };
    // Held by voter 1 and both observers: 1 of 4 voting members, quorum 3.
    for (const id of [1, 5, 6]) c.persisted({ id, engine: undefined }, { entries: [{ ...e, type: 0, data: new Uint8Array(0) }] });
    c.applied({ id: 1, engine: undefined }, e);
    expect(f.got).toHaveLength(1);
    expect(f.got[0]).toMatch(/^commit-quorum: node 1 delivered the entry at index 7 of epoch 2, which only 1 voting member/);
    // Voters 1, 2 and the witness 4: a quorum of 3 of 4.
    const g = failures();
    const d = new MemberRoleChecks(config, 'zab', g.fail);
    for (const id of [1, 2, 4]) d.persisted({ id, engine: undefined }, { entries: [{ ...e, type: 0, data: new Uint8Array(0) }] });
    d.applied({ id: 5, engine: undefined }, e);
    d.applied({ id: 6, engine: undefined }, e);
    expect(g.got).toEqual([]);
    expect(d.deliveriesChecked).toBe(1);
    // Another epoch at the same index is another entry.
    d.applied({ id: 2, engine: undefined }, { index: 7, term: 3 });
    expect(g.got[0]).toMatch(/^commit-quorum: .* index 7 of epoch 3, which only 0 voting/);
  });

  it('commit-quorum: the log a node recovered at its start counts as durable there', () => {
    const e = { index: 7, term: 2 };
    const log = (entries: Array<{ index: number; term: number }>, snapshotIndex = 0) => ({
      snapshotIndex,
      lastIndex: entries.at(-1)?.index ?? snapshotIndex,
      entryAt: (i: number) => entries.find((x) => x.index === i),
    });
    // Voter 1 persisted it in a Ready; voter 2 only read it back at its restart; witness 4 persisted it.
    const f = failures();
    const c = new MemberRoleChecks(config, 'zab', f.fail);
    for (const id of [1, 4]) c.persisted({ id, engine: undefined }, { entries: [{ ...e, type: 0, data: new Uint8Array(0) }] });
    c.recovered({ id: 2, engine: undefined }, log([{ index: 6, term: 2 }, e]));
    c.applied({ id: 1, engine: undefined }, e);
    expect(f.got).toEqual([]);
    // An observer's recovered log never counts, nor entries at or below the snapshot.
    const g = failures();
    const d = new MemberRoleChecks(config, 'zab', g.fail);
    for (const id of [1, 4]) d.persisted({ id, engine: undefined }, { entries: [{ ...e, type: 0, data: new Uint8Array(0) }] });
    d.recovered({ id: 5, engine: undefined }, log([e]));
    d.recovered({ id: 2, engine: undefined }, log([e], 7));
    d.applied({ id: 1, engine: undefined }, e);
    expect(g.got).toHaveLength(1);
    expect(g.got[0]).toMatch(/^commit-quorum: node 1 delivered the entry at index 7 of epoch 2, which only 2 voting member\(s\) \(1, 4\)/);
  });

  it('observersBehind names the live observers that did not apply the index', () => {
    const c = new MemberRoleChecks(config, 'zab', () => {});
    expect(c.observersBehind([{ id: 1, appliedIndex: 3 }, { id: 5, appliedIndex: 9 }], 9, [5, 6])).toBeNull();
    expect(c.observersBehind([{ id: 5, appliedIndex: 8 }, { id: 6, appliedIndex: 9 }], 9, [5, 6])).toMatch(/n5 \(applied 8\)/);
  });
});

describe('quorumd sim with a witness and observers', () => {
  it('--observers: zab only, 0..4, at most 8 boards; replay names it', () => {
    expect(() => parseSimOptions({ seed: 1, engine: 'paxos', observers: 1 })).toThrow(/--observers: only with --engine zab/);
    expect(() => parseSimOptions({ seed: 1, engine: 'zab', observers: 5 })).toThrow(SimOptionError);
    expect(() => parseSimOptions({ seed: 1, engine: 'zab', observers: 'two' })).toThrow(/--observers: expected an integer 0..4, got two/);
    expect(() => parseSimOptions({ seed: 1, engine: 'zab', nodes: 7, witness: true, observers: 1 })).toThrow(/at most 8 boards/);
    const cfg = parseSimOptions({ seed: 1, engine: 'zab', nodes: 3, witness: true, observers: '2' });
    expect(cfg.observers).toBe(2);
    expect(replayCommand(cfg, 1)).toMatch(/--nodes 3 --witness --observers 2 --engine zab/);
    expect(parseSimOptions({ seed: 1, engine: 'paxos', witness: true }).witness).toBe(true);
  });

  for (const [engine, extra] of [['paxos', {}], ['zab', { observers: 2 }]] as const) {
    it(`${engine} --witness${'observers' in extra ? ' --observers 2' : ''}: a small sweep with every fault kind is clean`, async () => {
      const lines: string[] = [];
      const code = await runSimCommand({ seeds: '1..3', engine, nodes: 2, witness: true, ...extra, time: '20s', faults: ALL }, (l) => lines.push(l));
      expect(code, lines.join('\n')).toBe(0);
      expect(lines.at(-1)).toMatch(/^seeds=3 violations=0 stale_actuations=0 dual_active_ms=0 /);
      for (const l of lines.slice(0, 3)) expect(l).toMatch(/ ok trace=[0-9a-f]{64} .* lin=(ok|unknown) /);
    }, 120_000);
  }

  it('planted: a ZAB leader that counts observers toward its commit quorum is caught by commit-quorum', () => {
    const cfg = parseSimOptions({ seed: 1, engine: 'zab', nodes: 3, observers: 2, time: '10s', faults: 'partition,crash,power,loss' });
    const bad = runEngineSeed(cfg, 1, { runtime: { engineOptions: { testingCountObservers: true } }, skipLin: true });
    expect(bad.violation?.invariant, JSON.stringify(bad.violation)).toBe('commit-quorum');
    const good = runEngineSeed(cfg, 1, { skipLin: true });
    expect(good.violation, JSON.stringify(good.violation)).toBeUndefined();
  }, 120_000);
});
