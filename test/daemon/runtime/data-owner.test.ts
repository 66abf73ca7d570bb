/**
 * A member's durable state names its owner (cluster id, node id; daemon/runtime/meta.ts):
 * started as another member, or in another cluster, the node refuses with an error
 * naming the hard state and both owners. Found on real nodes: n2's raft directory
 * copied into n1's data directory (swapped SD cards, a backup restored to the wrong
 * board) started without a word, with n2's term, vote and log.
 */
import { describe, expect, it } from 'vitest';
import { Status } from '../../../daemon/runtime/results.ts';
import { decodeMeta, encodeMeta } from '../../../daemon/runtime/meta.ts';
import { bytes, testCluster, text } from './helpers.ts';
import type { BoardHal } from '../../../firmware-sim/board.ts';
import type { StorageCorruptError } from '../../../hal/storage/index.ts';
import { HARDSTATE_FILE, decodeHardState, encodeHardState } from '../../../hal/storage/format.ts';
import { parseRecord } from '../../../hal/storage/records.ts';

describe("the engine runtime on another member's state", () => {
  it('refuses the state of another node or another cluster, naming the file and both; its own state still starts, with every write', () => {
    let as = { id: 1, cluster: 7 };
    const c = testCluster([1], {
      perBoot: () => ({ id: as.id, cluster: as.cluster, config: { voters: [as.id], learners: [], witnesses: [] } }),
    });
    expect(c.until(() => c.leader() !== undefined, 5000)).toBe(true);
    expect(c.call((cb) => c.leader()!.put('k', bytes('v'), {}, cb))?.status).toBe(Status.OK);
    const board = c.world.board(1);
    const reboot = () => {
      board.setMains(false);
      c.world.run(50);
      board.setMains(true);
      c.world.run(1000);
    };
    for (const other of [{ id: 2, cluster: 7 }, { id: 1, cluster: 8 }]) {
      as = other;
      const before = c.fatals.length;
      reboot();
      expect(c.fatals.length, JSON.stringify(other)).toBeGreaterThan(before);
      const err = c.fatals[before]!.err;
      expect(err.name).toBe('StorageCorruptError');
      expect(err.message).toBe(
        `storage corrupt: hardstate: this state belongs to node 1 of cluster 7, but this is node ${other.id} of cluster ${other.cluster}: a data directory copied from another ${other.cluster === 7 ? 'member' : 'cluster'}; a member must only ever start on its own data (its votes and acknowledged entries), never on another's`,
      );
    }
    as = { id: 1, cluster: 7 };
    const before = c.fatals.length;
    board.setMains(false);
    c.world.run(50);
    board.setMains(true);
    expect(c.until(() => c.leader()?.state === 'running', 10_000)).toBe(true);
    expect(text(c.call((cb) => c.leader()!.get('k', {}, cb))?.value)).toBe('v');
    expect(c.fatals.length).toBe(before);
  });
});

describe('the engine runtime on metadata of a newer build', () => {
  it('refuses runtime metadata of a newer version as written by a newer quorumd (it was read as "nothing recorded": boot counter and formed flag lost); its own version still starts', () => {
    let plant: ((hal: BoardHal) => void) | undefined;
    const c = testCluster([1], {
      perBoot: (hal) => {
        plant?.(hal);
        plant = undefined;
        return {};
      },
    });
    expect(c.until(() => c.leader() !== undefined, 5000)).toBe(true);
    expect(c.call((cb) => c.leader()!.put('k', bytes('v'), {}, cb))?.status).toBe(Status.OK);
    const board = c.world.board(1);
    let saved: Uint8Array | undefined;
    // The hard state as it is, but with the runtime metadata's version byte set to 3.
    plant = (hal) => {
      saved = hal.storage.read(HARDSTATE_FILE)!;
      const rec = parseRecord(saved, 0, 1 << 16);
      if (!rec.ok) throw new Error(`test setup: ${rec.reason}`);
      const hs = decodeHardState(rec.payload);
      const meta = hs.meta.slice();
      expect(decodeMeta(meta).owner).toEqual({ cluster: 7, node: 1 });
      meta[1] = 3;
      hal.storage.write(HARDSTATE_FILE, encodeHardState({ ...hs, meta }));
    };
    const before = c.fatals.length;
    board.setMains(false);
    c.world.run(50);
    board.setMains(true);
    c.world.run(1000);
    expect(c.fatals.length).toBeGreaterThan(before);
    const err = c.fatals[before]!.err as StorageCorruptError;
    expect(err.name).toBe('StorageCorruptError');
    expect(err.newer).toBe(true);
    expect(err.message).toBe('storage written by a newer quorumd: hardstate: runtime metadata version 3, newer than this build reads (1 to 2): upgrade this node to the quorumd that wrote it');
    // Put back as this build wrote it (what running the newer build again amounts to here): it starts, with its write.
    plant = (hal) => hal.storage.write(HARDSTATE_FILE, saved!);
    board.setMains(false);
    c.world.run(50);
    board.setMains(true);
    expect(c.until(() => c.leader()?.state === 'running', 10_000)).toBe(true);
    expect(text(c.call((cb) => c.leader()!.get('k', {}, cb))?.value)).toBe('v');
  });
});

describe('runtime metadata', () => {
  it('round-trips the owner; reads metadata without one (an older build) as ownerless; an older reader sees the same first 7 bytes', () => {
    const m = encodeMeta({ boot: 5, formed: true, owner: { cluster: 7, node: 3 } });
    expect(decodeMeta(m)).toEqual({ boot: 5, formed: true, owner: { cluster: 7, node: 3 } });
    const old = encodeMeta({ boot: 5, formed: true });
    expect(old.length).toBe(7);
    expect(decodeMeta(old)).toEqual({ boot: 5, formed: true });
    expect([...m.subarray(0, 7)]).toEqual([...old]);
  });
});
