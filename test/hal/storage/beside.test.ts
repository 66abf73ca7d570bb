/**
 * A node's own compaction is written beside the WAL (hal/storage/durable-log.ts,
 * persist): the snapshot file (the whole state machine, up to 16 MiB) no longer holds
 * up the writes that follow it, and a power cut at any point of it recovers either the
 * log without the snapshot or the log with it — never without an acknowledged entry,
 * never a recovery error.
 */
import { describe, expect, it } from 'vitest';
import type { DurableLog, PersistBatch } from '../../../hal/storage/index.ts';
import { Rng } from '../../../src/rng.ts';
import { ents, openNow, persistNow, show } from './helpers.ts';
import { PowerLossStorage, type Tail } from './power-loss-storage.ts';

const snap = (index: number, fill: number) => ({ index, term: 1, config: { voters: [1, 2, 3] }, data: new Uint8Array(2000).fill(fill) });

/** Entries 1..10 of term 1 durable and committed, on storage whose I/O the test drives. */
function tenEntries(): { st: PowerLossStorage; log: DurableLog } {
  const st = new PowerLossStorage({ auto: false });
  const { log } = openNow(st, { segmentBytes: 200 }, () => st.runAll());
  expect(persistNow(log, { hardState: { term: 1, vote: 1, commit: 10 }, entries: ents(1, 10, 1) }, st)).toBeNull();
  return { st, log };
}

/** What the test hands to persist after the ten entries: a compaction, writes, a second compaction, a write. */
const SEQUENCE: { name: string; batch: PersistBatch; last?: number; snapAt?: number }[] = [
  { name: 'compaction@6', batch: { snapshot: snap(6, 6), compaction: true }, snapAt: 6 },
  { name: 'entries 11..12', batch: { entries: ents(11, 12, 1), hardState: { term: 1, vote: 1, commit: 12 } }, last: 12 },
  { name: 'compaction@11', batch: { snapshot: snap(11, 11), compaction: true }, snapAt: 11 },
  { name: 'entries 13..14', batch: { entries: ents(13, 14, 1) }, last: 14 },
];

describe('durable log: a compaction beside the WAL', () => {
  it('does not hold up the writes after it: their done fires before the compaction\'s, which waits for its file and mark', () => {
    const { st, log } = tenEntries();
    const order: string[] = [];
    for (const s of SEQUENCE.slice(0, 2)) log.persist(s.batch, (err) => order.push(`${s.name}${err ? ` failed: ${err.message}` : ''}`));
    for (let i = 0; i < 1000 && order.length < 2; i++) if (!st.step()) break;
    expect(order).toEqual(['entries 11..12', 'compaction@6']);
    log.close();
    const r = openNow(st, { segmentBytes: 200 }, () => st.runAll());
    expect(r.state.snapshot?.index).toBe(6);
    expect(show(r.state.entries)).toEqual(show(ents(7, 12, 1)));
    expect(r.state.warnings).toEqual([]);
  });

  it('keeps snapshot files and marks in index order: a second compaction waits for the first', () => {
    const { st, log } = tenEntries();
    const order: string[] = [];
    for (const s of SEQUENCE) log.persist(s.batch, (err) => order.push(`${s.name}${err ? ` failed: ${err.message}` : ''}`));
    st.runAll();
    expect(order).toHaveLength(4);
    expect(order.filter((x) => x.includes('failed'))).toEqual([]);
    expect(order.indexOf('compaction@6')).toBeLessThan(order.indexOf('compaction@11'));
    log.close();
    const r = openNow(st, { segmentBytes: 200 }, () => st.runAll());
    expect(r.state.snapshot?.index).toBe(11);
    expect(show(r.state.entries)).toEqual(show(ents(12, 14, 1)));
    expect(r.state.warnings).toEqual([]);
  });

  for (const tail of ['cut', 'zeros', 'garbage'] as const satisfies readonly Tail[]) {
    it(`a power cut at every I/O step (tail ${tail}) recovers the log with or without each snapshot, every acknowledged entry kept`, () => {
      let cases = 0;
      let withoutSnapshot = 0;
      let withSnapshot = 0;
      for (let cut = 0; ; cut++) {
        let settled = false;
        for (let seed = 1; seed <= 6; seed++) {
          const { st, log } = tenEntries();
          const acked: string[] = [];
          for (const s of SEQUENCE) log.persist(s.batch, (err) => (err ? acked.push(`${s.name} failed: ${err.message}`) : acked.push(s.name)));
          let steps = 0;
          while (steps < cut && st.step()) steps++;
          if (steps < cut) settled = true;
          st.powerCut(new Rng(cut * 31 + seed), tail);
          let r: ReturnType<typeof openNow>;
          try {
            r = openNow(st, { segmentBytes: 200 }, () => st.runAll());
          } catch (e) {
            throw new Error(`cut after ${cut} I/O steps, seed ${seed}, acknowledged [${acked.join(', ')}]: recovery failed: ${(e as Error).message}`);
          }
          cases++;
          const at = r.state.snapshot?.index ?? 0;
          expect([0, 6, 11], `snapshot index after cut ${cut}`).toContain(at);
          if (at === 0) withoutSnapshot++;
          else withSnapshot++;
          // The recovered log is entries at+1..n of the sequence, contiguous, unchanged.
          const n = r.state.entries.at(-1)?.index ?? at;
          expect(show(r.state.entries), `entries after cut ${cut} (snapshot ${at})`).toEqual(show(ents(at + 1, n, 1)));
          if (at > 0) expect(r.state.snapshot!.data).toEqual(snap(at, at).data);
          // Nothing acknowledged is lost: its entries, and an acknowledged compaction's snapshot.
          for (const s of SEQUENCE) {
            if (!acked.includes(s.name)) continue;
            if (s.last !== undefined) expect(n, `${s.name} acknowledged, cut ${cut}`).toBeGreaterThanOrEqual(s.last);
            if (s.snapAt !== undefined) expect(at, `${s.name} acknowledged, cut ${cut}`).toBeGreaterThanOrEqual(s.snapAt);
          }
          expect(acked.filter((x) => x.includes('failed'))).toEqual([]);
          // And the recovered log takes new writes and recovers again to the same.
          expect(persistNow(r.log, { entries: ents(n + 1, n + 1, 1) }, st)).toBeNull();
          r.log.close();
          const again = openNow(st, { segmentBytes: 200 }, () => st.runAll());
          expect(again.state.snapshot?.index ?? 0).toBe(at);
          expect(show(again.state.entries)).toEqual(show(ents(at + 1, n + 1, 1)));
        }
        if (settled) break;
        if (cut > 500) throw new Error('the sequence did not settle within 500 I/O steps');
      }
      // Both outcomes of the crash window were reached.
      expect(cases).toBeGreaterThan(30);
      expect(withoutSnapshot).toBeGreaterThan(0);
      expect(withSnapshot).toBeGreaterThan(0);
    });
  }
});
