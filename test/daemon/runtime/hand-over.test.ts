/**
 * A leader stopped on purpose (SIGTERM: daemon/start.ts) hands leadership over
 * (daemon/runtime/hand-over.ts) and its successor acts at once: the old leader answered
 * it in the new term, after the successor's claim named it — "acknowledged"
 * (docs/fencing.md) — so nobody switches its relay off and nobody waits out its lease.
 * The same code as on a board, in virtual time, for every engine that hands over: Raft,
 * Multi-Paxos and ZAB, with relays wired as `quorumd dev` wires them.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import type { Clock } from '../../../hal/interfaces.ts';
import { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import { handOver, type HandOverOutcome } from '../../../daemon/runtime/hand-over.ts';
import { SIM_WATCHDOG_MS, simFencing, wireFencing } from '../../../daemon/sim/fencing.ts';
import type { NodeId } from '../../../src/types.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('hand-over-test').digest()) };
const IDS: NodeId[] = [1, 2, 3];

function cluster(engine: 'raft' | 'paxos' | 'zab', seed: number) {
  const world = new World({ seed, board: { bootDelayMs: 100, restartDelayMs: 100, watchdogTimeoutMs: SIM_WATCHDOG_MS } });
  for (const id of IDS) world.addBoard(id);
  const wiring = wireFencing(world, IDS);
  const rts = new Map<NodeId, EngineRuntime>();
  const clocks = new Map<NodeId, Clock>();
  const events: Array<{ node: NodeId; active: boolean; atMs: number }> = [];
  world.onBoot((hal, board) => {
    const rt = new EngineRuntime({
      engine,
      id: hal.node,
      config: { voters: IDS, learners: [], witnesses: [] },
      cluster: 11,
      keyring: KEY,
      clock: hal.clock,
      storage: hal.storage,
      links: hal.links,
      rng: world.rng.fork(`${engine}:${hal.node}:${hal.incarnation}`),
      fencing: simFencing(hal, wiring),
      onFatal: () => board.crashProcess(),
    });
    rt.onActivation((ev) => events.push({ node: hal.node, active: ev.active, atMs: world.nowMs }));
    rts.set(hal.node, rt);
    clocks.set(hal.node, hal.clock);
    rt.start();
  });
  const live = () => [...rts.values()].filter((r) => r.state === 'running' && world.board(r.id).hal !== null);
  let maxActive = 0;
  const activeNow = () => {
    const a = live().filter((r) => r.active);
    maxActive = Math.max(maxActive, a.length);
    return a;
  };
  return { world, rts, clocks, events, live, activeNow, maxActive: () => maxActive };
}

describe('hand-over on a planned stop', () => {
  for (const engine of ['raft', 'paxos', 'zab'] as const) {
    for (const seed of [1, 2, 3]) {
      it(`${engine} (seed ${seed}): the leader hands over and stays until its successor is active; the successor is cleared by its acknowledgement, at once, no relay switched`, () => {
        const c = cluster(engine, seed);
        expect(c.world.runUntil(() => c.activeNow().length === 1, 15_000)).toBe(true);
        const old = c.activeNow()[0]!;
        const oldTerm = old.status().term;
        // A few writes, so that the followers are not all equally behind.
        for (let i = 0; i < 5; i++) old.put(`k${i}`, new TextEncoder().encode(`v${i}`), {}, () => undefined);
        c.world.run(200);
        const t0 = c.world.nowMs;
        const logs: string[] = [];
        let outcome: HandOverOutcome | undefined;
        handOver(old, { clock: c.clocks.get(old.id)!, voters: IDS, gone: () => false, boundMs: 2000, log: (_l, m, f) => logs.push(`${m} ${JSON.stringify(f ?? {})}`) }, (o) => (outcome = o));
        expect(c.world.runUntil(() => {
          c.activeNow();
          return outcome !== undefined;
        }, 5000)).toBe(true);
        expect(outcome, logs.join('\n')).toBe('successor-active');
        // What SIGTERM does next: stop (links closed, nothing more sent).
        old.stop();
        const stoppedAt = c.world.nowMs;
        const next = c.activeNow().find((r) => r.id !== old.id);
        expect(next, 'the successor is active when the old leader stops').toBeDefined();
        expect(next!.status().term).toBeGreaterThan(oldTerm);
        expect(next!.status().activation!.clearedBy[String(old.id)]).toBe('acknowledged');
        // Far below the lease bound (≈ 3.2 s here, ~16 s on a board by default).
        expect(stoppedAt - t0).toBeLessThan(1000);
        // The successor stays active without the old one, and no relay was switched: a fence
        // the successor started when its claim named the old leader was still in its delay
        // when the answer came, and was cancelled ('cancelled' in the history).
        c.world.run(SIM_WATCHDOG_MS + 1000);
        expect(next!.active).toBe(true);
        expect(c.maxActive()).toBe(1);
        for (const r of c.live()) expect(r.status().fences.history.filter((h) => h.target === old.id && h.outcome !== 'cancelled')).toEqual([]);
        expect(c.world.board(old.id).stats.powerLosses).toBe(0);
        // The old leader was inactive before the successor became active.
        const oldOff = c.events.find((e) => e.node === old.id && !e.active);
        const nextOn = c.events.find((e) => e.node === next!.id && e.active && e.atMs >= t0);
        expect(oldOff!.atMs).toBeLessThanOrEqual(nextOn!.atMs);
      });
    }
  }

  it('when the cluster stops as a whole it does not wait for anyone: no voter reachable → no transfer; the new leader gone → it stops at once', () => {
    const c = cluster('paxos', 4);
    expect(c.world.runUntil(() => c.activeNow().length === 1, 15_000)).toBe(true);
    const old = c.activeNow()[0]!;
    const clock = c.clocks.get(old.id)!;
    const log = () => undefined;
    let first: HandOverOutcome | undefined;
    handOver(old, { clock, voters: IDS, gone: () => true, boundMs: 2000, log }, (o) => (first = o));
    expect(first).toBe('no-target');
    expect(old.isLeader).toBe(true);
    // The node it hands over to wins, then stops too (its links say so).
    const stopped = new Set<NodeId>();
    let outcome: HandOverOutcome | undefined;
    handOver(old, { clock, voters: IDS, gone: (id) => stopped.has(id), boundMs: 2000, log }, (o) => (outcome = o));
    expect(c.world.runUntil(() => old.status().leader !== old.id && old.status().leader !== 0, 2000)).toBe(true);
    const next = c.rts.get(old.status().leader)!;
    next.stop();
    stopped.add(next.id);
    const t0 = c.world.nowMs;
    expect(c.world.runUntil(() => outcome !== undefined, 2000)).toBe(true);
    expect(outcome).toBe('abandoned');
    expect(c.world.nowMs - t0).toBeLessThan(50);
  });
});
