/**
 * A fence that switched a relay off is carried to its end even when its fencer cannot
 * (issue 12): the fencer is elected, fences the old leader (relay off), and crashes
 * for good before the power-on. The next active leader finds the 'off' record without
 * a 'powered-on' one in the replicated history and powers the target on; the history
 * shows the hand-over. Virtual time on a World; the relays are power rails any node may
 * switch (as `quorumd dev`'s rail server), so the next leader can reach the same rail.
 */
import { describe, expect, it } from 'vitest';
import type { World } from '../../../firmware-sim/world.ts';
import type { BoardHal } from '../../../firmware-sim/board.ts';
import type { PowerSense, Relay } from '../../../hal/interfaces.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import { SIM_FENCER, SIM_WATCHDOG_MS } from '../../../daemon/sim/fencing.ts';
import type { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import { testCluster } from './helpers.ts';

const IDS = [1, 2, 3, 4, 5];
const POWER_ON_AFTER_MS = 3000;

function rail(world: World, hal: BoardHal, target: number): { relay: Relay; sense: PowerSense } {
  const later = (fn: () => void) => world.sched.after(0, () => {
    if (hal.alive) fn();
  });
  return {
    relay: {
      name: `rail:${target}`,
      set(on: boolean, done: (err: Error | null) => void) {
        if (!hal.alive) return;
        world.board(target).setMains(on);
        later(() => done(null));
      },
      read(done: (err: Error | null, on?: boolean) => void) {
        if (!hal.alive) return;
        later(() => done(null, world.board(target).mainsOn));
      },
    } as Relay,
    sense: {
      name: `sense:${target}`,
      read(done: (err: Error | null, live?: boolean) => void) {
        if (!hal.alive) return;
        later(() => done(null, world.board(target).railLive));
      },
    } as PowerSense,
  };
}

describe('fence hand-over', () => {
  it('the fencer crashes between relay off and power on: the next active leader powers the target on and the history shows it', () => {
    const c = testCluster(IDS, {
      seed: 5,
      world: { board: { bootDelayMs: 100, restartDelayMs: 100, watchdogTimeoutMs: SIM_WATCHDOG_MS } },
      perBoot: (hal) => {
        // Only n1 (the first leader) has a rail: the fencer of n1, once crashed, can only be waited out (lease).
        const r = hal.node === 1 ? undefined : rail(c.world, hal, 1);
        return {
          fencing: {
            watchdog: hal.watchdog,
            relays: r ? [r.relay] : [],
            powerSense: r ? [r.sense] : [],
            ...(r ? { fencer: { ...SIM_FENCER, targets: [{ target: 1, levels: [[{ kind: 'gpio-relay' as const, relay: 'rail:1', sense: 'sense:1' }]], action: 'reboot' as const, powerOnAfterMs: POWER_ON_AFTER_MS }] } } : {}),
          },
        };
      },
    });
    const live = () => [...c.rt.values()].filter((r) => r.state === 'running' && c.world.board(r.id).hal !== null);
    const active = () => live().filter((r) => r.active);
    // n1 leads and acts.
    expect(c.until(() => live().length === 5, 5000)).toBe(true);
    expect(c.until(() => active().length === 1, 10_000)).toBe(true);
    if (active()[0]!.id !== 1) expect(active()[0]!.transferLeadership(1).ok).toBe(true);
    expect(c.until(() => active().length === 1 && active()[0]!.id === 1, 15_000)).toBe(true);
    // Cut n1 off: another node is elected and fences it through the rail (off, verified).
    c.world.partition([[1], [2, 3, 4, 5, BROKER]]);
    let fencer: EngineRuntime | undefined;
    expect(c.until(() => {
      fencer = live().find((r) => r.id !== 1 && r.status().fences.history.some((f) => f.target === 1 && f.outcome === 'off'));
      return fencer !== undefined && !c.world.board(1).mainsOn;
    }, 15_000)).toBe(true);
    const off = fencer!.status().fences.history.find((f) => f.target === 1 && f.outcome === 'off')!;
    // The 'off' record is committed; the fencer dies before its power-on (3 s) and stays down.
    expect(c.world.board(1).mainsOn).toBe(false);
    c.world.heal();
    c.world.board(off.by).crashProcess(120_000);
    // The next leader waits out the dead fencer's lease, becomes active, and hands the fence over.
    let next: EngineRuntime | undefined;
    expect(c.until(() => {
      next = active().find((r) => r.id !== off.by && r.id !== 1);
      return next !== undefined;
    }, 20_000)).toBe(true);
    expect(c.until(() => c.world.board(1).mainsOn, POWER_ON_AFTER_MS + 2000)).toBe(true);
    // n1 boots again and follows; the hand-over is in the replicated history of every live node.
    expect(c.until(() => live().some((r) => r.id === 1 && r.status().leader === next!.id), 15_000)).toBe(true);
    expect(c.until(() => live().every((r) => r.status().fences.history.some((f) => f.target === 1 && f.outcome === 'powered-on' && f.by === next!.id && /handed over: n\d's fence in term \d+/.test(f.reason))), 5000)).toBe(true);
    expect(c.logs.some((l) => l.includes(`fence hand-over: n1 powered back on`))).toBe(true);
    expect(c.fatals).toEqual([]);
  });
});
