/**
 * The engine runtime with engine: bully on a simulated World (virtual time): election of
 * the highest board, failover, durable epochs (they survive power cuts; a board upgraded
 * from the former bully runtime never starts below its bully.state, and a corrupt one
 * refuses to start), persist-before-send, and the 501 answer for KV and locks.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import { EngineRuntime, ENGINE_UNSUPPORTED } from '../../../daemon/runtime/engine-node.ts';
import { BullyStateCorruptError, BULLY_STATE_FILE, decodeBullyState, encodeBullyState } from '../../../daemon/runtime/bully-state.ts';
import type { BullyEngine } from '../../../src/bully/index.ts';
import type { ClientResult } from '../../../daemon/runtime/index.ts';
import { MsgType } from '../../../src/wire/messages.ts';
import { Rng } from '../../../src/rng.ts';
import type { NodeId } from '../../../src/types.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('bully-runtime-test').digest()) };

function cluster(ids: NodeId[], seed = 1, beforeBoot?: (hal: { node: NodeId; incarnation: number; storage: import('../../../hal/interfaces.ts').Storage }) => void) {
  const world = new World({ seed, board: { bootDelayMs: 100, restartDelayMs: 100 } });
  for (const id of ids) world.addBoard(id);
  const rt = new Map<NodeId, EngineRuntime>();
  const fatals: Array<{ node: NodeId; err: Error }> = [];
  const violations: string[] = [];
  world.onBoot((hal, board) => {
    beforeBoot?.(hal);
    const r = new EngineRuntime({
      engine: 'bully', id: hal.node, config: { voters: ids, learners: [], witnesses: [] }, cluster: 3, keyring: KEY, clock: hal.clock, storage: hal.storage, links: hal.links,
      rng: world.rng.fork(`b:${hal.node}:${hal.incarnation}`),
      observer: {
        persisted: (x, rd) => {
          for (const m of rd.messages) {
            if (m.type === MsgType.BullyCoordinator && m.term > x.durableHardState.term) violations.push(`n${x.id} sent epoch ${m.term} before it was durable`);
          }
        },
      },
      onFatal: (err) => {
        fatals.push({ node: hal.node, err });
        board.crashProcess(60_000);
      },
    });
    rt.set(hal.node, r);
    r.start();
  });
  const live = () => [...rt.values()].filter((r) => r.state === 'running' && world.board(r.id).running);
  const coords = () => live().filter((r) => r.isLeader).map((r) => r.id);
  const settledOn = (id: NodeId) => () => coords().length === 1 && coords()[0] === id && live().every((r) => r.status().leader === id);
  return { world, rt, fatals, violations, live, coords, settledOn };
}

const epochOf = (r: EngineRuntime) => r.status().term;

describe('engine runtime with engine: bully on simulated boards', () => {
  it('elects the highest board, fails over to the next, and the first takes over again on return', () => {
    const c = cluster([1, 2, 3]);
    expect(c.world.runUntil(c.settledOn(3), 2000)).toBe(true);
    const s = c.rt.get(3)!.status();
    expect(s).toMatchObject({ engine: 'bully', role: 'leader', detail: 'coordinator', leader: 3, commitIndex: 0 });
    expect(s.bully?.leaderToken).toBe(s.term * 256 + 3);
    expect(s.active).toBe(true);
    expect(c.rt.get(1)!.status().bully?.leaderToken).toBe(s.term * 256 + 3);
    const t0 = c.world.nowMs;
    c.world.board(3).setMains(false);
    expect(c.world.runUntil(c.settledOn(2), 2000)).toBe(true);
    const failover = c.world.nowMs - t0;
    expect(failover).toBeLessThan(400); // failure timeout ≤ 200 ms + answer timeout 50 ms + delivery
    const e2 = epochOf(c.rt.get(2)!);
    expect(e2).toBeGreaterThan(s.term);
    c.world.board(3).setMains(true);
    expect(c.world.runUntil(c.settledOn(3), 3000)).toBe(true);
    expect(epochOf(c.rt.get(3)!)).toBeGreaterThan(e2); // epoch persisted across the power cut, then a fresh one
    expect(c.violations).toEqual([]);
    expect(c.fatals).toEqual([]);
  });

  it('peer-gone from the link starts an election at once (faster than the failure timeout)', () => {
    const c = cluster([1, 2, 3], 5);
    expect(c.world.runUntil(c.settledOn(3), 2000)).toBe(true);
    const t0 = c.world.nowMs;
    c.world.board(3).crashProcess(60_000); // the kernel closes the socket: the broker's will arrives after one latency
    expect(c.world.runUntil(c.settledOn(2), 2000)).toBe(true);
    expect(c.world.nowMs - t0).toBeLessThan(120);
  });

  it('persists {term: epoch, vote: held} in the durable log; a restart rebuilds from it; every boot has a new boot id', () => {
    const c = cluster([1, 2]);
    expect(c.world.runUntil(c.settledOn(2), 2000)).toBe(true);
    const ep = epochOf(c.rt.get(2)!);
    expect(c.rt.get(2)!.durableHardState).toEqual({ term: ep, vote: ep, commit: 0 });
    expect(c.rt.get(1)!.durableHardState).toEqual({ term: ep, vote: 0, commit: 0 });
    expect(c.world.board(2).hal!.storage.read(BULLY_STATE_FILE)).toBeUndefined();
    const boot1 = c.rt.get(2)!.status().bootId;
    c.world.board(2).crashProcess(100);
    c.world.run(500);
    expect(c.rt.get(2)!.status().bootId).toBe(boot1 + 1);
    expect(c.rt.get(2)!.bootHardState).toEqual({ term: ep, vote: ep, commit: 0 });
    expect((c.rt.get(2)!.engine as BullyEngine).bullyStatus().epoch).toBeGreaterThanOrEqual(ep);
  });

  /** Boards 1 and 2, board 2 upgraded from the former bully runtime: it coordinated at epoch 40, its boot counter was 70000. */
  const upgradedCluster = () =>
    cluster([1, 2], 1, (hal) => {
      if (hal.node !== 2 || hal.storage.read(BULLY_STATE_FILE) !== undefined) return;
      hal.storage.write(BULLY_STATE_FILE, encodeBullyState({ epoch: 40, held: 40, boot: 70_000 }));
      hal.storage.sync(BULLY_STATE_FILE, () => {});
    });

  it('a board upgraded from the former bully runtime: never starts below its bully.state (epoch, held, boot counter)', () => {
    const c = upgradedCluster();
    expect(c.world.runUntil(c.settledOn(2), 3000)).toBe(true);
    const r = c.rt.get(2)!;
    expect(r.bootHardState.term).toBeGreaterThanOrEqual(40);
    expect(r.bootHardState.vote).toBeGreaterThanOrEqual(40);
    expect(epochOf(r)).toBeGreaterThan(40); // a fresh epoch above everything announced before the upgrade
    expect(r.status().bootId).toBeGreaterThanOrEqual(70_001 & 0xffff);
    expect(c.fatals).toEqual([]);
  });

  it('a boot id taken from the metadata (a seq wrap\'s, here the upgraded bully.state\'s counter) is made durable: every later boot gets a newer one', () => {
    // Before, the id came from max(the log's bootId, metadata counter + 1) without being
    // written anywhere: the next boot computed the same id again, and receivers dropped
    // that run's frames as replays until its seq passed the previous run's.
    const c = upgradedCluster();
    expect(c.world.runUntil(c.settledOn(2), 3000)).toBe(true);
    const ids = [c.rt.get(2)!.status().bootId];
    expect(ids[0]).toBe(70_001 & 0xffff);
    for (let i = 0; i < 3; i++) {
      c.world.board(2).crashProcess(100);
      c.world.run(500);
      ids.push(c.rt.get(2)!.status().bootId);
    }
    expect(ids).toEqual([0, 1, 2, 3].map((k) => (70_001 + k) & 0xffff));
    expect(c.fatals).toEqual([]);
  });

  it('a corrupt bully.state: the node refuses to start with a clear error', () => {
    const c = cluster([1, 2]);
    expect(c.world.runUntil(c.settledOn(2), 2000)).toBe(true);
    const st = c.world.board(2).hal!.storage;
    const raw = encodeBullyState({ epoch: 3, held: 3, boot: 1 });
    raw[5] = raw[5]! ^ 0xff;
    st.write(BULLY_STATE_FILE, raw);
    st.sync(BULLY_STATE_FILE, () => {});
    c.world.board(2).crashProcess(100);
    c.world.run(500);
    expect(c.fatals.length).toBe(1);
    expect(c.fatals[0]!.err).toBeInstanceOf(BullyStateCorruptError);
    expect(c.fatals[0]!.err.message).toMatch(/bully\.state.*CRC mismatch.*refuses to start/);
  });

  it('KV and locks answer 501 naming the engines that have them', () => {
    const c = cluster([1, 2]);
    c.world.run(1000);
    const r = c.rt.get(1)!;
    const out: ClientResult[] = [];
    r.put('k', new Uint8Array([1]), {}, (x) => out.push(x));
    r.get('k', {}, (x) => out.push(x));
    r.del('k', {}, (x) => out.push(x));
    r.lockAcquire('l', 'me', 1000, 'lease-of-the-test-0000001', (x) => out.push(x));
    r.lockRenew('l', 'lease-of-the-test-0000001', (x) => out.push(x));
    r.lockRelease('l', 'lease-of-the-test-0000001', (x) => out.push(x));
    expect(out.length).toBe(6);
    for (const x of out) {
      expect(x.status).toBe(ENGINE_UNSUPPORTED);
      expect(x.error).toMatch(/\(engine: raft, paxos, zab, pbft, etcd or zookeeper\)/);
    }
  });
});

describe('bully state file format', () => {
  it('round-trips and rejects every damaged form with a named error', () => {
    const s = { epoch: 2 ** 40 + 3, held: 2 ** 40, boot: 70_000 };
    expect(decodeBullyState(encodeBullyState(s))).toEqual(s);
    const good = encodeBullyState(s);
    expect(() => decodeBullyState(good.subarray(0, 26))).toThrow(/expected 27 bytes.*got 26/);
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(() => decodeBullyState(badMagic)).toThrow(/header/);
    const badHeld = encodeBullyState({ epoch: 1, held: 2, boot: 0 });
    expect(() => decodeBullyState(badHeld)).toThrow(/held 2 out of range/);
  });

  it('rejects bad options: the id at construction, members and engine options at boot (fatal, named)', () => {
    const base = { engine: 'bully' as const, id: 1, config: { voters: [1, 2], learners: [], witnesses: [] }, cluster: 1, keyring: KEY, clock: { monotonicMs: () => 0, wallMs: () => 0, setTimer: () => () => {} }, storage: { sync() {} } as never, links: [], rng: new Rng(1) };
    expect(() => new EngineRuntime({ ...base, id: 300 })).toThrow(/id must be a node id/);
    for (const [engineOptions, msg] of [[{ members: [2, 3] }, /this node \(1\) is not in the list/], [{ heartbeatMs: 500 }, /heartbeatMs/]] as const) {
      const world = new World({ seed: 1, board: { bootDelayMs: 10 } });
      world.addBoard(1);
      const fatals: Error[] = [];
      world.onBoot((hal, board) => {
        new EngineRuntime({ ...base, clock: hal.clock, storage: hal.storage, links: hal.links, engineOptions: { ...engineOptions }, onFatal: (e) => {
          fatals.push(e);
          board.crashProcess(600_000);
        } }).start();
      });
      world.run(200);
      expect(fatals.map((e) => e.message)).toEqual([expect.stringMatching(msg)]);
    }
  });
});
