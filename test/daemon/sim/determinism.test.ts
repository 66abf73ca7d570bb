/**
 * Replay: the same seed gives the same trace hash; different seeds differ. And the
 * command's contract: option validation, output lines, exit status.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions, parseDuration, replayCommand } from '../../../daemon/sim/options.ts';
import { runSimCommand } from '../../../daemon/sim.ts';

const ALL = 'partition,crash,power,loss,reorder,clock,disk';

describe('quorumd sim determinism', () => {
  it('the same seed gives the same trace hash; two seeds differ', () => {
    const cfg = parseSimOptions({ seed: 7, nodes: 3, time: '6s', faults: ALL });
    const a = runEngineSeed(cfg, 7);
    const b = runEngineSeed(cfg, 7);
    const c = runEngineSeed(cfg, 8);
    expect(a.trace).toMatch(/^[0-9a-f]{64}$/);
    expect(b.trace).toBe(a.trace);
    expect(b.commits).toBe(a.commits);
    expect(b.ops).toBe(a.ops);
    expect(c.trace).not.toBe(a.trace);
  });

  it('with the real-time effects (stall: frozen processes, a clock that moves within a step) the same seed still replays exactly', () => {
    // Seed 1 draws two stalls in 12 s.
    const cfg = parseSimOptions({ seed: 1, nodes: 3, time: '12s', faults: `${ALL},stall` });
    const a = runEngineSeed(cfg, 1);
    const b = runEngineSeed(cfg, 1);
    expect(a.faultsByKind.stall ?? 0).toBeGreaterThan(0);
    expect(b.trace).toBe(a.trace);
    expect(b.commits).toBe(a.commits);
    expect(b.ops).toBe(a.ops);
    // The effects change the run: the same seed without them differs.
    expect(runEngineSeed(parseSimOptions({ seed: 1, nodes: 3, time: '12s', faults: ALL }), 1).trace).not.toBe(a.trace);
    expect(a.violation).toBeUndefined();
  });
});

describe('quorumd sim --locks --process-clocks determinism', () => {
  it('a run with lock clients and per-process clocks is a pure function of its seed', () => {
    const opts = { seed: 3, nodes: 3, time: '12s', faults: 'crash,partition,stall' };
    const cfg = parseSimOptions({ ...opts, locks: true, processClocks: true });
    const a = runEngineSeed(cfg, 3);
    const b = runEngineSeed(cfg, 3);
    expect(a.violation).toBeUndefined();
    expect(a.locks!.grants).toBeGreaterThan(0);
    expect(b.trace).toBe(a.trace);
    expect(b.locks).toEqual(a.locks);
    expect(b.ops).toBe(a.ops);
    expect(b.commits).toBe(a.commits);
    // Each option changes the run; off, the seed runs as it did before either existed.
    const locksOnly = runEngineSeed(parseSimOptions({ ...opts, locks: true }), 3);
    const plain = runEngineSeed(parseSimOptions(opts), 3);
    expect(locksOnly.trace).not.toBe(a.trace);
    expect(plain.trace).not.toBe(locksOnly.trace);
    expect(plain.locks).toBeUndefined();
    expect(runEngineSeed(parseSimOptions({ ...opts, locks: false, processClocks: false }), 3).trace).toBe(plain.trace);
  });
});

describe('quorumd sim options and output', () => {
  it('validates every option with a clear error', () => {
    expect(() => parseSimOptions({})).toThrow(/--seed N or --seeds A\.\.B is required/);
    expect(() => parseSimOptions({ seed: 1, seeds: '1..2' })).toThrow(/not both/);
    expect(() => parseSimOptions({ seeds: '5..1' })).toThrow(/below its start/);
    expect(() => parseSimOptions({ seeds: 'x' })).toThrow(/--seeds: expected a range/);
    expect(() => parseSimOptions({ seed: 1, nodes: 9 })).toThrow(/--nodes: expected an integer 1\.\.7/);
    expect(() => parseSimOptions({ seed: 1, nodes: 1, witness: true })).toThrow(/--witness/);
    expect(() => parseSimOptions({ seed: 1, engine: 'hotstuff' })).toThrow(/--engine: expected raft, bully, paxos, zab or pbft/);
    expect(() => parseSimOptions({ seed: 1, engine: 'pbft', nodes: 3 })).toThrow(/--nodes: engine pbft needs at least 4 nodes/);
    expect(() => parseSimOptions({ seed: 1, time: 'soon' })).toThrow(/--time: expected a duration/);
    expect(() => parseSimOptions({ seed: 1, time: '10h' })).toThrow(/--time/);
    expect(() => parseSimOptions({ seed: 1, faults: 'meteor' })).toThrow(/unknown fault kind "meteor"/);
    expect(() => parseSimOptions({ seed: 1, bogus: 1 })).toThrow(/unknown option "bogus"/);
    expect(parseDuration('1500ms', 't')).toBe(1500);
    expect(parseDuration('2m', 't')).toBe(120_000);
    const cfg = parseSimOptions({ seeds: '3..5', nodes: 3, witness: true, time: '30s', faults: 'crash, loss', stonith: false });
    expect(cfg.seeds).toEqual([3, 4, 5]);
    expect(replayCommand(cfg, 4)).toBe('quorumd sim --seed 4 --nodes 3 --witness --engine raft --time 30s --faults crash,loss --no-stonith');
    expect(replayCommand(parseSimOptions({ seed: 4, nodes: 3, time: '30s', locks: true, processClocks: true }), 4)).toBe('quorumd sim --seed 4 --nodes 3 --engine raft --time 30s --locks --process-clocks');
    expect(() => parseSimOptions({ seed: 1, engine: 'bully', locks: true })).toThrow(/--locks: engine bully only elects a coordinator: it has no replicated log and so no locks .*--locks is for engines raft, paxos, zab and pbft/);
    expect(parseSimOptions({ seed: 1, engine: 'pbft', nodes: 4, locks: true }).locks).toBe(true);
    expect(() => parseSimOptions({ seed: 1, locks: 'yes' })).toThrow(/--locks: expected a flag/);
    expect(() => parseSimOptions({ seed: 1, processClocks: 1 })).toThrow(/--process-clocks: expected a flag/);
    expect(parseSimOptions({ seed: 1 })).not.toHaveProperty('locks');
  });

  it('runs the bully engine (its own checks: test/daemon/sim/bully-sweep.test.ts)', async () => {
    const lines: string[] = [];
    expect(await runSimCommand({ seed: 1, engine: 'bully', time: '10s', faults: 'crash' }, (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toMatch(/^seed=1 ok trace=[0-9a-f]{64} /);
    expect(lines.at(-1)).toMatch(/^seeds=1 violations=0 /);
  });

  it('returns 2 with a message for bad options', async () => {
    const lines: string[] = [];
    expect(await runSimCommand({ seed: 1, nodes: 0 }, (l) => lines.push(l))).toBe(2);
    expect(lines).toEqual([]);
    // --locks with bully: said at run time, before anything runs.
    const err: string[] = [];
    expect(await runSimCommand({ seed: 1, engine: 'bully', locks: true }, (l) => lines.push(l), { err: { write: (s: string) => err.push(s) }, progress: false })).toBe(2);
    expect(lines).toEqual([]);
    expect(err.join('')).toBe('quorumd sim: --locks: engine bully only elects a coordinator: it has no replicated log and so no locks (its nodes answer lock requests 501); --locks is for engines raft, paxos, zab and pbft\n');
  });

  it('prints one line per seed with trace=<sha256> and the total line; --json gives JSON lines', async () => {
    const lines: string[] = [];
    const code = await runSimCommand({ seeds: '1..2', nodes: 3, time: '5s', faults: 'crash,loss' }, (l) => lines.push(l));
    expect(code).toBe(0);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^seed=1 ok trace=[0-9a-f]{64} leaders=\d+ commits=\d+ ops=\d+ /);
    expect(lines[1]).toMatch(/^seed=2 ok trace=[0-9a-f]{64} /);
    expect(lines[2]).toMatch(/^seeds=2 violations=0 stale_actuations=\d+ dual_active_ms=\d+ /);
    const json: string[] = [];
    await runSimCommand({ seed: 1, nodes: 3, time: '5s', faults: 'crash,loss', json: true }, (l) => json.push(l));
    const objs = json.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs[0]).toMatchObject({ type: 'seed', seed: 1 });
    expect(objs[0]!.trace).toBe(lines[0]!.match(/trace=([0-9a-f]{64})/)![1]);
    expect(objs[1]).toMatchObject({ type: 'total', seeds: 1, violations: 0 });
  });

  it('--locks: the seed line ends with the lock counts, the JSON line has them, the replay command keeps the flags', async () => {
    const lines: string[] = [];
    expect(await runSimCommand({ seed: 2, nodes: 3, time: '8s', faults: 'crash', locks: true, processClocks: true }, (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toMatch(/ speed=\d+x lock_grants=[1-9]\d* lock_renewals=\d+ lock_conflicts=\d+$/);
    const json: string[] = [];
    await runSimCommand({ seed: 2, nodes: 3, time: '8s', faults: 'crash', locks: true, processClocks: true, json: true }, (l) => json.push(l));
    const seed = JSON.parse(json[0]!) as { trace: string; locks: { grants: number } };
    expect(seed.trace).toBe(lines[0]!.match(/trace=([0-9a-f]{64})/)![1]);
    expect(seed.locks.grants).toBeGreaterThan(0);
    const plain: string[] = [];
    await runSimCommand({ seed: 2, nodes: 3, time: '8s', faults: 'crash' }, (l) => plain.push(l));
    expect(plain[0]).not.toMatch(/lock_/);
  });
});
