/**
 * BullyRuntime on a simulated World (virtual time): election of the highest board,
 * failover, the durable state file (epoch survives power cuts; corruption refuses to
 * start), persist-before-send, and the 501 answer for KV and locks.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { World } from '../../../firmware-sim/world.ts';
import {
  BullyRuntime, BullyStateCorruptError, BULLY_STATE_FILE, ENGINE_UNSUPPORTED, decodeBullyState, encodeBullyState,
} from '../../../daemon/runtime/bully-node.ts';
import type { ClientResult } from '../../../daemon/runtime/index.ts';
import { MsgType } from '../../../src/wire/messages.ts';
import { Rng } from '../../../src/rng.ts';
import type { NodeId } from '../../../src/types.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('bully-runtime-test').digest()) };

function cluster(ids: NodeId[], seed = 1) {
  const world = new World({ seed, board: { bootDelayMs: 100, restartDelayMs: 100 } });
  for (const id of ids) world.addBoard(id);
  const rt = new Map<NodeId, BullyRuntime>();
  const fatals: Array<{ node: NodeId; err: Error }> = [];
  const violations: string[] = [];
  world.onBoot((hal, board) => {
    const r = new BullyRuntime({
      id: hal.node, members: ids, cluster: 3, keyring: KEY, clock: hal.clock, storage: hal.storage, links: hal.links,
      rng: world.rng.fork(`b:${hal.node}:${hal.incarnation}`),
      observer: {
        persisted: (x, rd) => {
          for (const m of rd.messages) {
            if (m.type === MsgType.BullyCoordinator && m.term > x.durableState.epoch) violations.push(`n${x.id} sent epoch ${m.term} before it was durable`);
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

describe('BullyRuntime on simulated boards', () => {
  it('elects the highest board, fails over to the next, and the first takes over again on return', () => {
    const c = cluster([1, 2, 3]);
    expect(c.world.runUntil(c.settledOn(3), 2000)).toBe(true);
    const s = c.rt.get(3)!.status();
    expect(s).toMatchObject({ engine: 'bully', role: 'coordinator', leader: 3, commitIndex: 0 });
    expect(s.token).toBe(s.epoch * 256 + 3);
    const t0 = c.world.nowMs;
    c.world.board(3).setMains(false);
    expect(c.world.runUntil(c.settledOn(2), 2000)).toBe(true);
    const failover = c.world.nowMs - t0;
    expect(failover).toBeLessThan(400); // failure timeout ≤ 200 ms + answer timeout 50 ms + delivery
    const e2 = c.rt.get(2)!.status().epoch;
    expect(e2).toBeGreaterThan(s.epoch);
    c.world.board(3).setMains(true);
    expect(c.world.runUntil(c.settledOn(3), 3000)).toBe(true);
    expect(c.rt.get(3)!.status().epoch).toBeGreaterThan(e2); // epoch persisted across the power cut, then a fresh one
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

  it('persists {epoch, held, boot} in bully.state; every boot has a new boot id', () => {
    const c = cluster([1, 2]);
    expect(c.world.runUntil(c.settledOn(2), 2000)).toBe(true);
    const raw = c.world.board(2).hal!.storage.read(BULLY_STATE_FILE)!;
    const st = decodeBullyState(raw);
    expect(st.epoch).toBe(c.rt.get(2)!.status().epoch);
    expect(st.held).toBe(st.epoch);
    const boot1 = c.rt.get(2)!.status().bootId;
    c.world.board(2).crashProcess(100);
    c.world.run(500);
    expect(c.rt.get(2)!.status().bootId).toBe(boot1 + 1);
  });

  it('a corrupt state file: the node refuses to start with a clear error', () => {
    const c = cluster([1, 2]);
    expect(c.world.runUntil(c.settledOn(2), 2000)).toBe(true);
    const st = c.world.board(2).hal!.storage;
    const raw = st.read(BULLY_STATE_FILE)!.slice();
    raw[5] = raw[5]! ^ 0xff;
    st.write(BULLY_STATE_FILE, raw);
    st.sync(BULLY_STATE_FILE, () => {});
    c.world.board(2).crashProcess(100);
    c.world.run(500);
    expect(c.fatals.length).toBe(1);
    expect(c.fatals[0]!.err).toBeInstanceOf(BullyStateCorruptError);
    expect(c.fatals[0]!.err.message).toMatch(/bully\.state.*CRC mismatch.*refuses to start/);
  });

  it('KV and locks answer 501 naming the Raft engine', () => {
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
      expect(x.error).toMatch(/needs? the Raft engine \(engine: raft\)/);
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

  it('rejects bad options at construction', () => {
    const world = new World({ seed: 1 });
    world.addBoard(1);
    const base = { id: 1, members: [1, 2], cluster: 1, keyring: KEY, clock: { monotonicMs: () => 0, wallMs: () => 0, setTimer: () => () => {} }, storage: { sync() {} } as never, links: [], rng: new Rng(1) };
    expect(() => new BullyRuntime({ ...base, id: 300 })).toThrow(/id must be a node id/);
    expect(() => new BullyRuntime({ ...base, members: [2, 3] })).toThrow(/this node \(1\) is not in the list/);
    expect(() => new BullyRuntime({ ...base, bully: { heartbeatMs: 500 } })).toThrow(/heartbeatMs/);
    expect(() => new BullyRuntime({ ...base, campaignOnPeerGone: 'yes' as never })).toThrow(/campaignOnPeerGone must be a boolean/);
  });
});
