/**
 * Bully's activation gate (daemon/runtime/bully-fencing.ts on the engine runtime) without the simulator harness: a suspect this board
 * cannot fence keeps the new coordinator inactive (and says why) until an operator
 * confirms it down; tokens-only mode activates at once; bad operator input is named.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import type { BullyFencingOptions } from '../../../daemon/runtime/bully-fencing.ts';
import type { ActivationEvent } from '../../../daemon/runtime/activation.ts';
import { SIM_FENCER } from '../../../daemon/sim/fencing.ts';
import type { NodeId } from '../../../src/types.ts';
import type { BoardHal } from '../../../firmware-sim/board.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('bully-fencing-test').digest()) };

/** 3 boards; board 2 can fence only board 1 (relay + sense), so it cannot fence board 3. */
function cluster(fencing: (hal: BoardHal) => BullyFencingOptions | undefined) {
  const world = new World({ seed: 5, board: { bootDelayMs: 100, restartDelayMs: 100 } });
  for (const id of [1, 2, 3]) world.addBoard(id);
  world.wireRelay(2, 1);
  world.powerSense(2, 1);
  const rt = new Map<NodeId, EngineRuntime>();
  const events: Array<{ node: NodeId } & ActivationEvent> = [];
  world.onBoot((hal) => {
    const f = fencing(hal);
    const r = new EngineRuntime({
      engine: 'bully', id: hal.node, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, cluster: 9, keyring: KEY, clock: hal.clock, storage: hal.storage, links: hal.links,
      rng: world.rng.fork(`b:${hal.node}:${hal.incarnation}`),
      ...(f ? { fencing: f } : {}),
    });
    r.onActivation((ev) => events.push({ node: hal.node, ...ev }));
    rt.set(hal.node, r);
    r.start();
  });
  return { world, rt, events };
}

const stonith = (hal: BoardHal): BullyFencingOptions => ({
  relays: hal.relays,
  powerSense: hal.powerSense,
  fencer: hal.node === 2 ? { ...SIM_FENCER, targets: [{ target: 1, levels: [[{ kind: 'gpio-relay', relay: 'relay:1', sense: 'sense:1' }]], action: 'reboot', powerOnAfterMs: 3000 }] } : { ...SIM_FENCER, targets: [] },
});

describe('bully activation gate (engine runtime)', () => {
  it('a suspect without a fence device: elected, not active, says why; an operator confirmation activates it', () => {
    const c = cluster(stonith);
    const r3 = () => c.rt.get(3)!;
    expect(c.world.runUntil(() => c.rt.get(3)?.state === 'running' && r3().active, 3000)).toBe(true);
    c.world.board(3).setMains(false);
    const r2 = () => c.rt.get(2)!;
    expect(c.world.runUntil(() => r2().isLeader, 3000)).toBe(true);
    c.world.run(2000); // no lease for bully: waiting longer changes nothing
    const s = r2().status();
    expect(s).toMatchObject({ elected: true, active: false, bully: { fencingMode: 'stonith' } });
    expect(s.waitingFor).toMatch(/earlier coordinator n3 may still act: no fence device for it/);
    expect(s.bully?.knownCoordinators).toHaveProperty('n3');
    expect(c.events.filter((e) => e.node === 2)).toEqual([]);
    expect(r2().confirmFenced(0)).toMatchObject({ ok: false, error: expect.stringMatching(/node: expected a node id 1\.\.254, got 0/) });
    expect(r2().confirmFenced(3)).toEqual({ ok: true });
    expect(r2().active).toBe(true);
    expect(r2().status().bully?.clearedBy).toEqual({ n3: 'operator' });
    expect(c.events.filter((e) => e.node === 2)).toEqual([expect.objectContaining({ active: true, token: r2().activeToken })]);
    expect(r2().activeToken).toBe(r2().status().term * 256 + 2);
    expect(r2().status().fences.local.map((f) => f.outcome)).toEqual(['confirmed']);
    // An operator fence of a node without a device answers with a clear error.
    let answer: { ok: boolean; error?: string } | undefined;
    r2().fence(3, (a) => (answer = a));
    expect(answer).toEqual({ ok: false, error: 'node 2 has no fence device for n3 (fencing.fencer.targets)' });
  });

  it('tokens only (fencing without targets): active as soon as coordinator; no confirmation to give', () => {
    const c = cluster(() => ({}));
    const r3 = () => c.rt.get(3)!;
    expect(c.world.runUntil(() => c.rt.get(3)?.state === 'running' && r3().isLeader, 3000)).toBe(true);
    expect(r3().status()).toMatchObject({ bully: { fencingMode: 'tokens-only' }, active: true, waitingFor: '' });
    c.world.board(3).setMains(false);
    const r2 = () => c.rt.get(2)!;
    expect(c.world.runUntil(() => r2().isLeader, 3000)).toBe(true);
    expect(r2().active).toBe(true);
    expect(r2().confirmFenced(3)).toMatchObject({ ok: false, error: expect.stringMatching(/no activation gate/) });
  });

  it('a fencing option naming a device the board lacks is refused at boot with the name', () => {
    const world = new World({ seed: 1 });
    world.addBoard(1);
    let err: Error | undefined;
    world.onBoot((hal) => {
      const r = new EngineRuntime({
        engine: 'bully', id: 1, config: { voters: [1, 2], learners: [], witnesses: [] }, cluster: 9, keyring: KEY, clock: hal.clock, storage: hal.storage, links: hal.links, rng: world.rng.fork('x'),
        fencing: { relays: [], fencer: { targets: [{ target: 2, levels: [[{ kind: 'gpio-relay', relay: 'relay:2' }]] }] } },
        onFatal: (e) => (err = e),
      });
      r.start();
    });
    world.run(5000);
    expect(err?.message).toMatch(/fencer target 2 names device "relay:2", which this board does not have/);
  });
});
