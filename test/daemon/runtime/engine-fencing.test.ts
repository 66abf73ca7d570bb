/**
 * The engine runtime's split-brain defenses (daemon/runtime/leader-fencing.ts, shared
 * with the Raft runtime) for Multi-Paxos and ZAB, in virtual time: the active leader is
 * cut off; it stops acting on its own lease, another node is elected, fences it through
 * its relay (off, verified) and only then becomes active, with a higher token; never two
 * active at once. Without devices the operator endpoints answer as under Raft.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';
import { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import { SIM_WATCHDOG_MS, simFencing, wireFencing } from '../../../daemon/sim/fencing.ts';
import type { NodeId } from '../../../src/types.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('engine-fencing-test').digest()) };
const IDS: NodeId[] = [1, 2, 3];

function cluster(engine: 'paxos' | 'zab', seed: number, withRelays: boolean) {
  const world = new World({ seed, board: { bootDelayMs: 100, restartDelayMs: 100, watchdogTimeoutMs: SIM_WATCHDOG_MS } });
  for (const id of IDS) world.addBoard(id);
  const wiring = withRelays ? wireFencing(world, IDS) : null;
  const rts = new Map<NodeId, EngineRuntime>();
  const events: Array<{ node: NodeId; active: boolean; token: number; atMs: number }> = [];
  world.onBoot((hal, board) => {
    const rt = new EngineRuntime({
      engine,
      id: hal.node,
      config: { voters: IDS, learners: [], witnesses: [] },
      cluster: 9,
      keyring: KEY,
      clock: hal.clock,
      storage: hal.storage,
      links: hal.links,
      rng: world.rng.fork(`${engine}:${hal.node}:${hal.incarnation}`),
      fencing: simFencing(hal, wiring),
      onFatal: () => board.crashProcess(),
    });
    rt.onActivation((ev) => events.push({ node: hal.node, active: ev.active, token: ev.token, atMs: world.nowMs }));
    rts.set(hal.node, rt);
    rt.start();
  });
  const live = () => [...rts.values()].filter((r) => r.state === 'running' && world.board(r.id).hal !== null);
  let maxActive = 0;
  const activeNow = () => {
    const a = live().filter((r) => r.active);
    maxActive = Math.max(maxActive, a.length);
    return a;
  };
  return { world, rts, events, live, activeNow, maxActive: () => maxActive };
}

describe('engine runtime: activation gate and STONITH (paxos, zab)', () => {
  for (const engine of ['paxos', 'zab'] as const) {
    it(`${engine}: a cut-off active leader stops on its lease; the next one fences it before it is active`, () => {
      const c = cluster(engine, 3, true);
      expect(c.world.runUntil(() => c.activeNow().length === 1, 15_000)).toBe(true);
      const old = c.activeNow()[0]!;
      const oldToken = old.activeToken;
      expect(oldToken).toBeGreaterThan(0);
      expect(old.status().activation?.elected).toBe(true);
      c.world.partition([[old.id], [...IDS.filter((i) => i !== old.id), BROKER]]);
      let neu: EngineRuntime | undefined;
      expect(c.world.runUntil(() => {
        neu = c.activeNow().find((r) => r.id !== old.id);
        return neu !== undefined;
      }, 20_000)).toBe(true);
      expect(c.maxActive()).toBe(1);
      const st = neu!.status();
      expect(st.activation?.clearedBy[String(old.id)]).toBe('fenced');
      expect(st.fences.local.some((r) => r.target === old.id && r.outcome === 'off')).toBe(true);
      expect(neu!.activeToken).toBeGreaterThan(oldToken);
      // The old leader's activity ended (its own lease) before the new one began.
      const oldOff = c.events.find((e) => e.node === old.id && !e.active);
      const neuOn = c.events.find((e) => e.node === neu!.id && e.active);
      expect(oldOff, JSON.stringify(c.events)).toBeDefined();
      expect(oldOff!.atMs).toBeLessThan(neuOn!.atMs);
      // The fence is in the replicated history once the new leader recorded it.
      expect(c.world.runUntil(() => neu!.status().fences.history.some((h) => h.target === old.id && h.outcome === 'off' && h.by === neu!.id), 5000)).toBe(true);
      c.world.heal();
      for (const r of c.live()) r.stop();
    }, 60_000);
  }

  it('without fence devices: fence answers that there is no device, confirm refuses self and a live node, and the gate clears by the lease bound', () => {
    const c = cluster('zab', 4, false);
    expect(c.world.runUntil(() => c.activeNow().length === 1, 15_000)).toBe(true);
    const leader = c.activeNow()[0]!;
    const other = IDS.find((i) => i !== leader.id)!;
    let answer: { ok: boolean; error?: string } | undefined;
    leader.fence(other, (r) => (answer = r));
    expect(answer?.ok).toBe(false);
    expect(answer?.error).toMatch(/no fence device/);
    leader.fence(999 as NodeId, (r) => (answer = r));
    expect(answer?.error).toMatch(/node: expected a node id 1\.\.254/);
    expect(leader.confirmFenced(leader.id).error).toMatch(/cannot confirm itself/);
    const live = leader.confirmFenced(other);
    expect(live.ok).toBe(false);
    expect(live.alive).toBe(true);
    c.world.partition([[leader.id], [...IDS.filter((i) => i !== leader.id), BROKER]]);
    let neu: EngineRuntime | undefined;
    expect(c.world.runUntil(() => {
      neu = c.activeNow().find((r) => r.id !== leader.id);
      return neu !== undefined;
    }, 20_000)).toBe(true);
    expect(c.maxActive()).toBe(1);
    expect(neu!.status().activation?.clearedBy[String(leader.id)]).toBe('lease-expired');
    c.world.heal();
    for (const r of c.live()) r.stop();
  }, 60_000);
});
