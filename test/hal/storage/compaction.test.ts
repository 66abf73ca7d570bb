/**
 * A node's own compaction (PersistBatch.compaction) keeps the entries after the
 * snapshot even when the snapshot's term is not the term the log holds at its index —
 * a Paxos snapshot carries the slot's origin ballot, the log the entry's write stamp.
 * Without the flag the Raft rule applies (a received snapshot whose term differs drops
 * the whole log). Found by `quorumd sim --engine paxos --nodes 4 --witness --seed 170`:
 * a compaction dropped durable votes after it.
 */
import { describe, expect, it } from 'vitest';
import { ents, openNow, persistNow, show } from './helpers.ts';
import { PowerLossStorage } from './power-loss-storage.ts';

describe('durable log: a local compaction keeps its tail', () => {
  for (const compaction of [true, false]) {
    it(`snapshot at 2 with term 3 over entries 1..4 of term 5, compaction ${compaction}`, () => {
      const st = new PowerLossStorage();
      const { log } = openNow(st);
      expect(persistNow(log, { hardState: { term: 5, vote: 0, commit: 2 }, entries: ents(1, 4, 5) })).toBeNull();
      const err = persistNow(log, { snapshot: { index: 2, term: 3, config: null, data: new Uint8Array([1]) }, ...(compaction ? { compaction: true } : {}) });
      expect(err).toBeNull();
      expect(log.lastIndex).toBe(compaction ? 4 : 2);
      log.close();
      const r = openNow(st);
      expect(r.state.snapshot?.index).toBe(2);
      expect(r.state.snapshot?.term).toBe(3);
      expect(show(r.state.entries)).toEqual(compaction ? show(ents(3, 4, 5)) : []);
    });
  }
});
