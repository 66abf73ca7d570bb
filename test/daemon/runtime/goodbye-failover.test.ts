/**
 * A leader stopped on purpose whose hand-over does not finish (the node it chose is cut
 * off, or stalled: SIGSTOP, a dead SD card) stops anyway after the bound; its link
 * closes in order, so the broker drops its will and only its goodbye tells the others
 * (docs/mqtt.md, "The goodbye"). The survivors take that goodbye as the will's hint and
 * elect at once, instead of waiting out an election timeout after the last heartbeat.
 * Virtual time (firmware-sim), five boards with relays and the board timing defaults
 * (election timeout 1000..2000 ms, ZAB syncLimit 1000 ms), for every engine that hands
 * over; the control runs the same with a broker that reports no goodbye.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import type { Clock } from '../../../hal/interfaces.ts';
import { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import { handOver, type HandOverOutcome } from '../../../daemon/runtime/hand-over.ts';
import { SIM_WATCHDOG_MS, simFencing, wireFencing } from '../../../daemon/sim/fencing.ts';
import type { NodeId } from '../../../src/types.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('goodbye-failover-test').digest()) };
const IDS: NodeId[] = [1, 2, 3, 4, 5];
type Eng = 'raft' | 'paxos' | 'zab';
const ELECTION_MIN_MS = 1000;

/** The daemon's board defaults (daemon/config/schema.ts), not the engines' simulator ones. */
function engineOptions(engine: Eng): Record<string, number> {
  return engine === 'zab'
    ? { tickMs: 10, heartbeatMs: 100, syncLimitMs: ELECTION_MIN_MS, initLimitMs: 2000 }
    : { tickMs: 10, heartbeatMs: 100, electionTimeoutMinMs: ELECTION_MIN_MS, electionTimeoutMaxMs: 2 * ELECTION_MIN_MS };
}

function cluster(engine: Eng, seed: number, goodbyes: boolean) {
  const world = new World({ seed, mqtt: { goodbyes }, board: { bootDelayMs: 100, restartDelayMs: 100, watchdogTimeoutMs: SIM_WATCHDOG_MS } });
  for (const id of IDS) world.addBoard(id);
  const wiring = wireFencing(world, IDS);
  const rts = new Map<NodeId, EngineRuntime>();
  const clocks = new Map<NodeId, Clock>();
  /** Every (term, leader) any runtime reported: never two leaders of one term. */
  const leaders = new Map<number, Set<NodeId>>();
  world.onBoot((hal, board) => {
    const rt = new EngineRuntime({
      engine,
      id: hal.node,
      config: { voters: IDS, learners: [], witnesses: [] },
      cluster: 12,
      keyring: KEY,
      clock: hal.clock,
      storage: hal.storage,
      links: hal.links,
      rng: world.rng.fork(`${engine}:${hal.node}:${hal.incarnation}`),
      engineOptions: engineOptions(engine),
      fencing: simFencing(hal, wiring),
      onFatal: () => board.crashProcess(),
    });
    rts.set(hal.node, rt);
    clocks.set(hal.node, hal.clock);
    rt.start();
  });
  const live = () => [...rts.values()].filter((r) => r.state === 'running' && world.board(r.id).hal !== null);
  let maxActive = 0;
  const watch = () => {
    for (const r of live()) {
      if (!r.isLeader) continue;
      const t = r.status().term;
      const s = leaders.get(t) ?? new Set<NodeId>();
      s.add(r.id);
      leaders.set(t, s);
    }
    maxActive = Math.max(maxActive, live().filter((r) => r.active).length);
  };
  return { world, rts, clocks, live, watch, leaders, maxActive: () => maxActive };
}

/**
 * Elects, cuts off the node the leader hands over to as it starts, lets the hand-over run
 * out its bound, stops the leader (what SIGTERM does next) and returns how long after
 * that stop a survivor led.
 */
function stopWithFailedHandOver(engine: Eng, seed: number, goodbyes: boolean) {
  const c = cluster(engine, seed, goodbyes);
  expect(c.world.runUntil(() => c.live().filter((r) => r.active).length === 1, 20_000)).toBe(true);
  const old = c.live().find((r) => r.active)!;
  for (let i = 0; i < 5; i++) old.put(`k${i}`, new TextEncoder().encode(`v${i}`), {}, () => undefined);
  c.world.run(500);
  // One more write, and the stop at the same instant: no follower has it yet, so none is
  // caught up and the hand-over must wait for the one it chose (a ZAB leader that finds
  // its transferee caught up retires into election at once, whatever becomes of it).
  old.put('last', new TextEncoder().encode('v'), {}, () => undefined);
  const logs: string[] = [];
  let to: NodeId | undefined;
  let outcome: HandOverOutcome | undefined;
  handOver(
    old,
    {
      clock: c.clocks.get(old.id)!,
      voters: IDS,
      gone: () => false,
      boundMs: 4000,
      log: (_l, m, f) => {
        logs.push(`${m} ${JSON.stringify(f ?? {})}`);
        if (typeof f?.to === 'number' && to === undefined) to = f.to;
      },
    },
    (o) => (outcome = o),
  );
  expect(to, logs.join('\n')).toBeDefined();
  // The chosen node is cut off for the rest of the test (a stall would do the same until
  // its board's watchdog reset it): whatever was sent to it is lost.
  c.world.partition([[to!], [...IDS.filter((id) => id !== to), BROKER]]);
  expect(c.world.runUntil(() => {
    c.watch();
    return outcome !== undefined;
  }, 6000)).toBe(true);
  expect(outcome, logs.join('\n')).toBe('timeout');
  old.stop();
  const stoppedAt = c.world.nowMs;
  const survivors = c.live().filter((r) => r.id !== old.id && r.id !== to);
  // When every survivor has let go of the old leader (the hint's own effect), and when
  // one of them leads.
  let forgotMs = -1;
  const led = c.world.runUntil(() => {
    c.watch();
    if (forgotMs < 0 && survivors.every((r) => r.status().leader !== old.id)) forgotMs = c.world.nowMs - stoppedAt;
    return survivors.some((r) => r.isLeader);
  }, 8000);
  const afterMs = c.world.nowMs - stoppedAt;
  // Let the new leader become active (it fences the old board: no acknowledgement came).
  c.world.run(SIM_WATCHDOG_MS + 2000);
  c.watch();
  return { c, led, afterMs, forgotMs, to: to!, old: old.id };
}

describe('a planned stop whose hand-over did not finish: the goodbye is the hint', () => {
  for (const engine of ['raft', 'paxos', 'zab'] as const) {
    for (const seed of [1, 2]) {
      it(`${engine} (seed ${seed}): the survivors let go of the old leader at its goodbye${engine === 'zab' ? '' : ' and one leads within 300 ms'}, not an election timeout later`, () => {
        const r = stopWithFailedHandOver(engine, seed, true);
        expect(r.led).toBe(true);
        // The goodbye takes one broker latency (≤ 5 ms here).
        expect(r.forgotMs).toBeGreaterThanOrEqual(0);
        expect(r.forgotMs).toBeLessThan(50);
        // ZAB's election and discovery with one voter cut off took 1.3-1.5 s after that
        // in these seeds (FLE, not the hint: the survivors were LOOKING at once).
        if (engine !== 'zab') expect(r.afterMs).toBeLessThan(300);
        // Only who campaigns when changed: one leader per term, one active leader at a time.
        for (const [term, s] of r.c.leaders) expect([...s], `term ${term}`).toHaveLength(1);
        expect(r.c.maxActive()).toBeLessThanOrEqual(1);
        expect(r.c.live().filter((x) => x.active)).toHaveLength(1);
      });
    }
    it(`${engine}: control — a broker that reports no goodbye leaves the survivors to their election timeout`, () => {
      const r = stopWithFailedHandOver(engine, 1, false);
      expect(r.led).toBe(true);
      // The last heartbeat left at most heartbeatMs before the stop.
      expect(r.forgotMs).toBeGreaterThan(ELECTION_MIN_MS - 100);
      expect(r.afterMs).toBeGreaterThan(ELECTION_MIN_MS - 100);
    });
  }
});
