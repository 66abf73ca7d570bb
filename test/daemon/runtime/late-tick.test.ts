/**
 * A tick that fires late (the process was stalled: GC, SIGSTOP, a busy core) is put off
 * by one 0 ms timer, so that the input that arrived meanwhile reaches the engine before
 * the tick that could run its election timer out (Node runs timers before it polls
 * sockets). A tick on time runs at once. Raft and bully runtimes alike.
 */
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import { Rng } from '../../../src/rng.ts';
import { KEY, stallableClock, testCluster } from './helpers.ts';


describe('a late tick lets waiting input in first', () => {
  it('raft runtime: on time → next tick armed at tickMs; late → one 0 ms timer, then the tick', () => {
    const clocks = new Map<number, ReturnType<typeof stallableClock>>();
    const tc = testCluster([1, 2, 3], {
      perBoot: (hal) => {
        const c = stallableClock(hal.clock);
        clocks.set(hal.node, c);
        return { clock: c.clock };
      },
    });
    expect(tc.until(() => tc.leader() !== undefined, 10_000)).toBe(true);
    const follower = [...tc.rt.values()].find((r) => !r.isLeader)!;
    const c = clocks.get(follower.id)!;
    c.delays.length = 0;
    tc.world.run(100);
    // On time: every timer the runtime armed in 100 ms is a tick (10 ms), none is 0 ms.
    expect(c.delays.length).toBeGreaterThanOrEqual(5);
    expect(c.delays.filter((d) => d === 0)).toEqual([]);
    c.delays.length = 0;
    c.jump(500); // the next tick finds its due time 500 ms in the past
    tc.world.run(30);
    const firstZero = c.delays.indexOf(0);
    expect(firstZero).toBeGreaterThanOrEqual(0);
    // Exactly one deferral, followed by ticks at tickMs again.
    expect(c.delays.filter((d) => d === 0)).toHaveLength(1);
    expect(c.delays.slice(firstZero + 1).length).toBeGreaterThanOrEqual(1);
    expect(c.delays.slice(firstZero + 1).every((d) => d === 10)).toBe(true);
    // The cluster keeps its leader through it.
    expect(tc.leaders()).toHaveLength(1);
  });

  it('engine runtime (engine: bully): the same', () => {
    const world = new World({ seed: 3, board: { bootDelayMs: 10, restartDelayMs: 10 } });
    world.addBoard(1);
    const clocks: Array<ReturnType<typeof stallableClock>> = [];
    world.onBoot((hal) => {
      const c = stallableClock(hal.clock);
      clocks.push(c);
      new EngineRuntime({ engine: 'bully', id: hal.node, config: { voters: [1], learners: [], witnesses: [] }, cluster: 3, keyring: KEY, clock: c.clock, storage: hal.storage, links: hal.links, rng: new Rng(1) }).start();
    });
    world.run(500);
    const c = clocks[0]!;
    c.delays.length = 0;
    world.run(100);
    expect(c.delays.filter((d) => d === 0)).toEqual([]);
    c.delays.length = 0;
    c.jump(500);
    world.run(30);
    expect(c.delays.filter((d) => d === 0)).toHaveLength(1);
    expect(c.delays.at(-1)).toBe(10);
  });
});
