/**
 * Bully's activation gate (daemon/runtime/bully-fencing.ts on the engine runtime) without the simulator harness: a suspect this board
 * cannot fence keeps the new coordinator inactive (and says why) until an operator
 * confirms it down; tokens-only mode activates at once; bad operator input is named.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import { EngineRuntime } from '../../../daemon/runtime/engine-node.ts';
import { BullyFencing, type BullyFencingOptions } from '../../../daemon/runtime/bully-fencing.ts';
import type { ActivationEvent } from '../../../daemon/runtime/activation.ts';
import { SIM_FENCER } from '../../../daemon/sim/fencing.ts';
import { ALIVE_WINDOW_MS } from '../../../daemon/runtime/leader-fencing.ts';
import type { NodeId } from '../../../src/types.ts';
import { BullyEngine } from '../../../src/bully/index.ts';
import { Rng } from '../../../src/rng.ts';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import type { Clock } from '../../../hal/interfaces.ts';
import type { BoardHal } from '../../../firmware-sim/board.ts';
import { BROKER } from '../../../firmware-sim/mqtt.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('bully-fencing-test').digest()) };

/** 3 boards; board 2 can fence only board 1 (relay + sense), so it cannot fence board 3. */
function cluster(fencing: (hal: BoardHal) => BullyFencingOptions | undefined, engineOptions?: Record<string, unknown>) {
  const world = new World({ seed: 5, board: { bootDelayMs: 100, restartDelayMs: 100 } });
  for (const id of [1, 2, 3]) world.addBoard(id);
  world.wireRelay(2, 1);
  world.powerSense(2, 1);
  world.wireRelay(3, 1);
  world.powerSense(3, 1);
  const rt = new Map<NodeId, EngineRuntime>();
  const events: Array<{ node: NodeId } & ActivationEvent> = [];
  world.onBoot((hal) => {
    const f = fencing(hal);
    const r = new EngineRuntime({
      engine: 'bully', id: hal.node, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, cluster: 9, keyring: KEY, clock: hal.clock, storage: hal.storage, links: hal.links,
      rng: world.rng.fork(`b:${hal.node}:${hal.incarnation}`),
      ...(f ? { fencing: f } : {}),
      ...(engineOptions ? { engineOptions } : {}),
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

/** As `stonith`, and board 3 (the preferred coordinator) can fence board 1: both judge as coordinators with a gate. */
const stonith3 = (hal: BoardHal): BullyFencingOptions =>
  hal.node === 3 ? { relays: hal.relays, powerSense: hal.powerSense, fencer: { ...SIM_FENCER, targets: [{ target: 1, levels: [[{ kind: 'gpio-relay', relay: 'relay:1', sense: 'sense:1' }]], action: 'reboot', powerOnAfterMs: 3000 }] } } : stonith(hal);

describe('bully activation gate (engine runtime)', () => {
  it('a suspect without a fence device: elected, not active, says why; an operator confirmation activates it', () => {
    const c = cluster(stonith);
    const r3 = () => c.rt.get(3)!;
    expect(c.world.runUntil(() => c.rt.get(3)?.state === 'running' && r3().active, 3000)).toBe(true);
    c.world.board(3).setMains(false);
    const cutAt = c.world.nowMs;
    const r2 = () => c.rt.get(2)!;
    expect(c.world.runUntil(() => r2().isLeader, 3000)).toBe(true);
    const electedAt = c.world.nowMs;
    // Heard a moment ago: alive.
    expect(r2().confirmFenced(3)).toMatchObject({ ok: false, alive: true, error: expect.stringMatching(/^n3 is alive: this node accepted an authenticated message from it \d+ ms ago/) });
    // Silent for the window now, but n2 has not coordinated (listened to the members'
    // reports) for the window yet: it cannot tell, and says when to ask again.
    c.world.run(Math.max(0, cutAt + ALIVE_WINDOW_MS + 50 - c.world.nowMs));
    expect(c.world.nowMs - electedAt).toBeLessThan(ALIVE_WINDOW_MS - 100);
    const early = r2().confirmFenced(3);
    expect(early).toMatchObject({ ok: false, error: expect.stringMatching(/^n2 coordinates since \d+ ms only \(it last heard n3 \d+ ms ago\): every live member reports to its coordinator every 200 ms, so it cannot tell yet whether n3 has been silent for 1000 ms; retry in \d+ ms$/) });
    expect(early.alive ?? early.notLeader).toBeUndefined();
    c.world.run(2000); // no lease for bully: waiting longer changes nothing
    const s = r2().status();
    expect(s).toMatchObject({ elected: true, active: false, bully: { fencingMode: 'stonith' } });
    expect(s.waitingFor).toMatch(/earlier coordinator n3 may still act: no fence device for it/);
    expect(s.bully?.knownCoordinators).toHaveProperty('n3');
    expect(c.events.filter((e) => e.node === 2)).toEqual([]);
    expect(r2().confirmFenced(0)).toMatchObject({ ok: false, error: expect.stringMatching(/node: expected a node id 1\.\.254, got 0/) });
    const ok = r2().confirmFenced(3);
    // What n2 knew: n3 silent since the cut, n2 coordinating since its election.
    expect(ok).toEqual({ ok: true, superseded: false, active: true, waitingFor: '', lastHeardMs: expect.any(Number), listenedMs: expect.any(Number) });
    expect(ok.lastHeardMs).toBeGreaterThanOrEqual(c.world.nowMs - cutAt - 50);
    expect(ok.listenedMs).toBeGreaterThanOrEqual(2000);
    expect(r2().active).toBe(true);
    expect(r2().status().bully?.clearedBy).toEqual({ n3: 'operator' });
    expect(c.events.filter((e) => e.node === 2)).toEqual([expect.objectContaining({ active: true, token: r2().activeToken })]);
    expect(r2().activeToken).toBe(r2().status().term * 256 + 2);
    expect(r2().status().fences.local.map((f) => f.outcome)).toEqual(['confirmed']);
    // With the coordinator's epoch, as its fences carry (it was 0: `quorumd status` showed term 0).
    expect(r2().status().fences.local[0]!.term).toBe(r2().status().term);
    expect(r2().status().term).toBeGreaterThan(0);
    // An operator fence of a node without a device answers with a clear error.
    let answer: { ok: boolean; error?: string } | undefined;
    r2().fence(3, (a) => (answer = a));
    expect(answer).toEqual({ ok: false, error: 'node 2 has no fence device for n3 (fencing.fencer.targets)' });
  });

  it('fence confirm of a running member: the coordinator hears its reports and refuses (alive); a follower cannot judge and names the coordinator; nothing is recorded', () => {
    const c = cluster(stonith3);
    const r = (id: NodeId) => c.rt.get(id)!;
    expect(c.world.runUntil(() => c.rt.get(3)?.state === 'running' && r(3).active, 3000)).toBe(true);
    c.world.run(3 * ALIVE_WINDOW_MS); // long past the window: n3 has listened all that time
    expect([1, 2].map((id) => r(id).status().leader)).toEqual([3, 3]);
    // Followers report to their coordinator: n3 heard n1 and n2 a moment ago.
    for (const id of [1, 2] as const) expect(r(3).contact(id).agoMs).toBeLessThan(250);
    const viaCoordinator = r(3).confirmFenced(1);
    expect(viaCoordinator).toMatchObject({ ok: false, alive: true, error: expect.stringMatching(/^n1 is alive: this node accepted an authenticated message from it \d+ ms ago/) });
    // n2 hears only n3's announcements: n1 looks silent to it, running or not.
    const viaFollower = r(2).confirmFenced(1);
    expect(viaFollower).toEqual({ ok: false, notLeader: true, error: 'n2 is not the coordinator (n3 is): a bully follower hears only its coordinator, so it cannot tell whether n1 is alive; confirm on the coordinator n3' });
    expect(r(2).confirmFenced(3)).toMatchObject({ ok: false, alive: true });
    expect(r(2).confirmFenced(2)).toEqual({ ok: false, error: 'a node cannot confirm itself down' });
    for (const id of [1, 2, 3] as const) expect(r(id).status().fences.local).toEqual([]);
    expect(r(3).status().bully?.clearedBy).toEqual({});
    // The reports cost one Election and one answering announcement per follower every
    // 200 ms: n3 takes them without counting a drop.
    expect((r(3).engine as BullyEngine).bullyStatus().dropped).toMatchObject({ notLower: 0 });
  });

  it('a coordinator that just booted says what it knows: it cannot tell yet (heard nothing since it started), then the member is alive', () => {
    const c = cluster(stonith3);
    const r = (id: NodeId) => c.rt.get(id)!;
    expect(c.world.runUntil(() => c.rt.get(3)?.state === 'running' && r(3).active, 3000)).toBe(true);
    const firstBoot = r(3);
    // n3 restarts (a reset): it comes back, takes over again (preempt), and n2's report
    // acknowledges n2's coordinatorship meanwhile, so n3 is active without a fence.
    c.world.board(3).setMains(false);
    c.world.run(300);
    c.world.board(3).setMains(true);
    expect(c.world.runUntil(() => c.rt.get(3) !== firstBoot && r(3).state === 'running' && r(3).isLeader, 5000)).toBe(true);
    const early = r(3).confirmFenced(1);
    expect(early.ok).toBe(false);
    expect(early.alive ?? early.notLeader).toBeUndefined();
    expect(early.error).toMatch(/^n3 coordinates since \d+ ms only \((it has heard nothing from n1 since it started \d+ ms ago|it last heard n1 \d+ ms ago)\): every live member reports to its coordinator every 200 ms, so it cannot tell yet whether n1 has been silent for 1000 ms; retry in \d+ ms$/);
    c.world.run(ALIVE_WINDOW_MS + 100);
    expect(r(3).active).toBe(true);
    expect(r(3).confirmFenced(1)).toMatchObject({ ok: false, alive: true });
    expect(r(3).status().fences.local.filter((f) => f.outcome === 'confirmed')).toEqual([]);
  });

  it('nopreempt, a partition heals: the old coordinator follows the new one and its reports acknowledge it (no operator, no fence); confirming it is refused', () => {
    const c = cluster(stonith3, { preempt: false });
    const r = (id: NodeId) => c.rt.get(id)!;
    expect(c.world.runUntil(() => c.rt.get(3)?.state === 'running' && r(3).active, 3000)).toBe(true);
    expect(c.world.runUntil(() => r(2).status().leader === 3 && r(1).status().leader === 3, 3000)).toBe(true);
    c.world.partition([[3], [1, 2, BROKER]]);
    expect(c.world.runUntil(() => r(2).isLeader, 3000)).toBe(true);
    c.world.run(1000);
    // n2 cannot fence n3 (no device for it on n2): it waits, and says for what.
    expect(r(2).active).toBe(false);
    expect(r(2).status().waitingFor).toMatch(/earlier coordinator n3 may still act: no fence device for it/);
    c.world.heal();
    // n3 hears the newer epoch, steps down and (nopreempt) follows n2, below it in
    // priority: its first report is the step-down acknowledgement.
    expect(c.world.runUntil(() => r(2).active, 5000)).toBe(true);
    expect(r(3).status()).toMatchObject({ leader: 2, active: false });
    expect(r(2).status().bully?.clearedBy).toEqual({ n3: 'acknowledged' });
    c.world.run(2 * ALIVE_WINDOW_MS);
    expect(r(2).confirmFenced(3)).toMatchObject({ ok: false, alive: true });
    expect(r(2).status().fences.local).toEqual([]);
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

/**
 * BullyFencing alone, on a real BullyEngine whose Readies this test makes durable (or
 * holds back, as a slow fsync would): the runtime's order of calls, without a network.
 */
function alone(id: NodeId, fencing: BullyFencingOptions | undefined) {
  let nowMs = 0;
  const sent: Message[] = [];
  const activations: ActivationEvent[] = [];
  const heardAt = new Map<NodeId, number>();
  const eng = new BullyEngine({ id, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(7) });
  const clock: Clock = { monotonicMs: () => nowMs, wallMs: () => nowMs, setTimer: () => () => {} };
  const f = new BullyFencing({
    who: 'test', id, clock, log: () => {}, rng: new Rng(8), tickMs: eng.tickMs,
    running: () => true, stopped: () => false, engine: () => eng, send: (m) => sent.push(m),
    heardAgoMs: (n) => (heardAt.has(n) ? nowMs - heardAt.get(n)! : undefined),
    crash: (where, e) => { throw new Error(`${where}: ${String(e)}`); },
    activationChanged: (ev) => activations.push(ev), fenced: () => {},
  }, fencing);
  f.booted(0);
  /** The Ready's epoch is durable now: the runtime acts on it (and sends its messages). */
  const durable = () => {
    for (let rd = eng.ready(); rd; rd = eng.ready()) {
      sent.push(...rd.messages);
      eng.advance(rd);
      f.step();
    }
  };
  const deliver = (m: Message) => {
    heardAt.set(m.from, nowMs);
    f.heard(m);
    eng.step(m);
    f.step();
  };
  const tick = (n = 1) => {
    for (let i = 0; i < n; i++) {
      nowMs += eng.tickMs;
      eng.tick();
      f.step();
      f.tick(); // the runtime's tick ends with it
    }
  };
  return { eng, f, sent, activations, deliver, durable, tick, now: () => nowMs };
}

describe('bully activation on a stale Ready', () => {
  it('a coordinator that stepped down in memory (its Ready waits for the fsync) never activates, even when the newer coordinator then steps down itself', () => {
    // sim seed 74 (5 boards, every fault) found it: n1 activated with token 769 after it
    // had heard n2's 1026, because n2's Answer (n2 had stepped down for n3) erased n2 from
    // the coordinators n1 knew, while n1's own step-down still waited for its fsync.
    const a = alone(3, {});
    a.tick(30); // no higher member: coordinator at epoch 1 after its failure timeout
    a.durable();
    expect(a.eng.actedState).toMatchObject({ role: 'coordinator', term: 1 });
    expect(a.f.active).toBe(true);
    // n2 announces epoch 2 (it coordinated while cut off from n3): n3 steps down in
    // memory and, outranking n2, starts a fresh epoch — its Ready is not durable yet.
    a.deliver({ type: MsgType.BullyCoordinator, from: 2, to: 3, term: 2, priority: 2 });
    a.tick();
    expect(a.f.active).toBe(false);
    expect(a.eng.isLeader).toBe(true); // the acted state: still epoch 1
    expect(a.eng.bullyStatus().epoch).toBe(3);
    // n2 hears a higher epoch elsewhere and answers n3 at epoch 2: its coordinatorship ended.
    a.deliver({ type: MsgType.BullyAnswer, from: 2, to: 3, term: 2, priority: 2 });
    a.tick();
    expect(a.f.status().knownCoordinators).toEqual({});
    // Still the stale Ready of epoch 1: not active (token 259 is below n2's 514, heard).
    expect(a.f.active).toBe(false);
    expect(a.activations.filter((e) => e.active).map((e) => e.token)).toEqual([259]);
    // Durable: the fresh coordinatorship (epoch 3, token 771) activates.
    a.durable();
    a.tick();
    expect(a.eng.actedState).toMatchObject({ role: 'coordinator', term: 3 });
    expect(a.f.active).toBe(true);
    expect(a.activations.filter((e) => e.active).map((e) => e.token)).toEqual([259, 771]);
  });
});
