/**
 * A snapshot file that could not be written (a full disk) or synced is removed again.
 * Found on real nodes with 4 MiB data directories under a writer: the disk filled
 * while a node wrote its compaction snapshot; the node stopped (as it should), but the
 * half-written `snap-….snap.tmp` (1.3 MB, as large as the state) kept the disk full, so
 * every restart failed on its first small file and the node never came back by itself,
 * although recovery would have removed that tmp as its first step.
 */
import { describe, expect, it } from 'vitest';
import type { DurableLog } from '../../../hal/storage/index.ts';
import { Rng } from '../../../src/rng.ts';
import { ents, openNow, persistNow, show } from './helpers.ts';
import { PowerLossStorage } from './power-loss-storage.ts';

const snap = (index: number) => ({ index, term: 1, config: { voters: [1, 2, 3] }, data: new Uint8Array(4000).fill(index) });

function tenEntries(): { st: PowerLossStorage; log: DurableLog } {
  const st = new PowerLossStorage({ auto: false });
  const { log } = openNow(st, { segmentBytes: 200 }, () => st.runAll());
  expect(persistNow(log, { hardState: { term: 1, vote: 1, commit: 10 }, entries: ents(1, 10, 1) }, st)).toBeNull();
  return { st, log };
}

const tmps = (st: PowerLossStorage) => st.list().filter((n) => n.endsWith('.tmp'));

describe('durable log: a snapshot file that cannot be written leaves no tmp behind', () => {
  const cases: Array<{ name: string; inject: (st: PowerLossStorage) => void; expected: RegExp }> = [
    { name: 'its first write fails (ENOSPC)', inject: (st) => (st.failWrite = (n) => n.endsWith('.snap.tmp')), expected: /write snap-.*\.snap\.tmp: ENOSPC/ },
    {
      name: 'the append of the state fails (ENOSPC)',
      inject: (st) => {
        const orig = st.append.bind(st);
        st.append = (n, d) => (n.endsWith('.snap.tmp') ? (() => { throw Object.assign(new Error(`append to ${n}: ENOSPC (injected)`), { code: 'ENOSPC' }); })() : orig(n, d));
      },
      expected: /append to snap-.*\.snap\.tmp: ENOSPC/,
    },
    { name: 'its fsync fails (EIO)', inject: (st) => (st.failSync = (n) => n.endsWith('.snap.tmp')), expected: /sync snap-.*\.snap\.tmp: EIO/ },
  ];
  for (const c of cases) {
    for (const how of ['a compaction beside the WAL', 'a snapshot in the queue (from a leader)'] as const) {
      it(`${c.name}, ${how}: the error names the file, the log fails, the tmp is gone, and a restart recovers every entry`, () => {
        const { st, log } = tenEntries();
        c.inject(st);
        const batch = how === 'a compaction beside the WAL' ? { snapshot: snap(6), compaction: true } : { snapshot: snap(6), entries: ents(11, 11, 1) };
        const err = persistNow(log, batch, st);
        expect(err?.name).toBe('StorageIoError');
        expect(err?.message).toMatch(c.expected);
        expect(tmps(st)).toEqual([]);
        // Failed for good: later persists get the same error.
        expect(persistNow(log, { entries: ents(11, 11, 1) }, st)?.message).toBe(err?.message);
        log.close();
        st.failWrite = undefined;
        st.failSync = undefined;
        st.powerCut(new Rng(1));
        const r = openNow(st, { segmentBytes: 200 }, () => st.runAll());
        expect(r.state.snapshot).toBeUndefined();
        expect(show(r.state.entries)).toEqual(show(ents(1, 10, 1)));
        expect(r.state.warnings.filter((w) => w.includes('leftover'))).toEqual([]);
      });
    }
  }
});
