import { describe, expect, it } from 'vitest';
import { batchFromReady, initFromRecovered } from '../../../hal/storage/index.ts';
import { ents, openNow, persistNow } from './helpers.ts';
import { PowerLossStorage } from './power-loss-storage.ts';

describe('raft adapter', () => {
  it('a Ready with a snapshot round-trips into a RaftInit-shaped state, config included', () => {
    const st = new PowerLossStorage();
    const { log } = openNow(st);
    const config = { voters: [1, 2, 3], learners: [4], witnesses: [] as number[] };
    const ready = {
      hardState: { term: 3, vote: 2, commit: 7 },
      entries: ents(8, 9, 3),
      snapshot: { meta: { index: 7, term: 3, config }, data: Uint8Array.of(9, 9) },
    };
    expect(persistNow(log, batchFromReady(ready))).toBeNull();
    expect(batchFromReady({ entries: [] })).toEqual({});
    const init = initFromRecovered(openNow(st).state);
    expect(init.hardState).toEqual({ term: 3, vote: 2, commit: 7 });
    expect(init.snapshot?.meta).toEqual({ index: 7, term: 3, config });
    expect([...init.snapshot!.data]).toEqual([9, 9]);
    expect(init.entries.map((e) => e.index)).toEqual([8, 9]);
  });
});
