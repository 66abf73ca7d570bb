/**
 * Cuts at every I/O step of the two atomic replaces (hard state, snapshot): the
 * result is always the old or the new version, never a mix, never a fatal error.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import type { DurableLogOptions } from '../../../hal/storage/index.ts';
import { ent, ents, openNow, persistNow, show } from './helpers.ts';
import { PowerLossStorage } from './power-loss-storage.ts';

function stepsOf(run: (st: PowerLossStorage) => void): number {
  const st = new PowerLossStorage({ auto: false });
  run(st);
  let n = 0;
  while (st.step()) n++;
  return n;
}

describe('atomic replace under power cuts at every step', () => {
  it('hard state: old or new (term and vote together), for every cut point and tear', () => {
    const setup = (st: PowerLossStorage) => {
      const { log } = openNow(st, {}, () => st.runAll());
      let ok = false;
      log.persist({ hardState: { term: 3, vote: 2, commit: 0 }, entries: ents(1, 3, 3) }, (e) => (ok = e === null));
      st.runAll();
      expect(ok).toBe(true);
      return log;
    };
    const total = stepsOf((st) => setup(st).persist({ hardState: { term: 4, vote: 1, commit: 2 } }, () => {}));
    expect(total).toBeGreaterThanOrEqual(3); // WAL fsync (commit record), tmp fsync, dir fsync
    const seen = new Set<string>();
    for (let k = 0; k <= total; k++) {
      for (let seed = 1; seed <= 8; seed++) {
        const st = new PowerLossStorage({ auto: false });
        const log = setup(st);
        let acked = false;
        log.persist({ hardState: { term: 4, vote: 1, commit: 2 } }, (e) => (acked = e === null));
        for (let i = 0; i < k; i++) st.step();
        st.powerCut(new Rng(seed), seed % 2 ? 'garbage' : 'cut');
        const r = openNow(st, {}, () => st.runAll());
        const hs = r.state.hardState;
        const tv = `${hs.term}/${hs.vote}`;
        expect(['3/2', '4/1']).toContain(tv);
        if (acked) expect(tv).toBe('4/1');
        expect(show(r.state.entries)).toEqual(show(ents(1, 3, 3)));
        seen.add(tv);
      }
    }
    expect(seen).toEqual(new Set(['3/2', '4/1']));
  });

  it('snapshot install: old or new snapshot with a consistent log, for every cut point', () => {
    const setup = (st: PowerLossStorage) => {
      const { log } = openNow(st, { segmentBytes: 256 }, () => st.runAll());
      for (let i = 1; i <= 20; i++) {
        log.persist({ hardState: { term: 1, vote: 1, commit: i - 1 }, entries: [ent(i, 1, 'q'.repeat(40))] }, () => {});
        st.runAll();
      }
      log.persist({ snapshot: { index: 5, term: 1, config: ['a'], data: Uint8Array.of(5) } }, () => {});
      st.runAll();
      return log;
    };
    const snap = { index: 15, term: 1, config: ['b'], data: Uint8Array.of(15) };
    const total = stepsOf((st) => setup(st).persist({ snapshot: snap }, () => {}));
    expect(total).toBeGreaterThanOrEqual(3);
    const seen = new Set<number>();
    for (let k = 0; k <= total; k++) {
      for (let seed = 1; seed <= 6; seed++) {
        const st = new PowerLossStorage({ auto: false });
        const log = setup(st);
        const segsBefore = st.list().filter((n) => n.startsWith('wal-')).length;
        let acked = false;
        log.persist({ snapshot: snap }, (e) => (acked = e === null));
        for (let i = 0; i < k; i++) st.step();
        if (acked) expect(st.list().filter((n) => n.startsWith('wal-')).length).toBeLessThan(segsBefore);
        st.powerCut(new Rng(seed), 'cut');
        const r = openNow(st, { segmentBytes: 256 }, () => st.runAll());
        const si = r.state.snapshot!.index;
        expect([5, 15]).toContain(si);
        if (acked) expect(si).toBe(15);
        expect(r.state.snapshot!.config).toEqual(si === 5 ? ['a'] : ['b']);
        expect(r.state.entries.map((e) => e.index)).toEqual(Array.from({ length: 20 - si }, (_, i) => si + 1 + i));
        seen.add(si);
        // and the log goes on
        const again = openNow(st, { segmentBytes: 256 }, () => st.runAll());
        expect(again.state.snapshot!.index).toBe(si);
      }
    }
    expect(seen).toEqual(new Set([5, 15]));
  });

  it('a snapshot that discards a conflicting log (install from a leader) survives every cut', () => {
    const setup = (st: PowerLossStorage) => {
      const { log } = openNow(st, {}, () => st.runAll());
      log.persist({ hardState: { term: 2, vote: 0, commit: 2 }, entries: [...ents(1, 4, 1), ...ents(5, 8, 2)] }, () => {});
      st.runAll();
      return log;
    };
    // Leader's snapshot at 6 has term 3: the local entry 6 (term 2) conflicts, so 7..8 go too.
    const batch = { hardState: { term: 3, vote: 0, commit: 6 }, snapshot: { index: 6, term: 3, config: null, data: new Uint8Array() }, entries: [ent(7, 3)] };
    const total = stepsOf((st) => setup(st).persist(batch, () => {}));
    for (let k = 0; k <= total; k++) {
      const st = new PowerLossStorage({ auto: false });
      const log = setup(st);
      let acked = false;
      log.persist(batch, (e) => (acked = e === null));
      for (let i = 0; i < k; i++) st.step();
      st.powerCut(new Rng(k), 'cut');
      const r = openNow(st, {}, () => st.runAll());
      const got = `${r.state.snapshot?.index ?? 0}:${show(r.state.entries).join(',')}`;
      const old = `0:${show([...ents(1, 4, 1), ...ents(5, 8, 2)]).join(',')}`;
      const snapOnly = `6:`;
      const full = `6:${show([ent(7, 3)]).join(',')}`;
      expect([old, snapOnly, full]).toContain(got);
      if (acked) expect(got).toBe(full);
      expect(r.state.hardState.term).toBeGreaterThanOrEqual(2);
      if (r.state.snapshot) expect(r.state.hardState.term).toBe(3);
    }
  });
  it('an atomic batch (Ready.atomic) that rewrites a suffix is all or nothing for every cut and tear; so is a plain one that fits one record, and a larger plain one may keep a prefix', () => {
    // Paxos/ZAB: slots 3..8 rewritten with a higher stamp, over votes already acknowledged.
    const before = ents(1, 8, 1);
    const rewrite = ents(3, 8, 2).map((e) => ({ ...e, data: new TextEncoder().encode('x'.repeat(300)) }));
    const setup = (st: PowerLossStorage, opts: DurableLogOptions) => {
      const { log } = openNow(st, opts, () => st.runAll());
      log.persist({ hardState: { term: 1, vote: 0, commit: 2 }, entries: before }, () => {});
      st.runAll();
      return log;
    };
    const run = (atomic: boolean, opts: DurableLogOptions = {}) => {
      const kinds = new Set<string>();
      const total = stepsOf((st) => setup(st, opts).persist({ hardState: { term: 2, vote: 0, commit: 2 }, entries: rewrite, atomic }, () => {}));
      for (let k = 0; k <= total; k++) {
        for (let seed = 1; seed <= 12; seed++) {
          const st = new PowerLossStorage({ auto: false });
          const log = setup(st, opts);
          let acked = false;
          log.persist({ hardState: { term: 2, vote: 0, commit: 2 }, entries: rewrite, atomic }, (e) => (acked = e === null));
          for (let i = 0; i < k; i++) st.step();
          st.powerCut(new Rng(seed), (['cut', 'garbage', 'zeros'] as const)[seed % 3]!);
          const r = openNow(st, {}, () => st.runAll());
          const got = show(r.state.entries).join(',');
          const old = show(before).join(',');
          const full = show([...ents(1, 2, 1), ...rewrite]).join(',');
          if (acked) expect(got).toBe(full);
          kinds.add(got === old ? 'old' : got === full ? 'new' : 'prefix');
        }
      }
      return kinds;
    };
    expect(run(true)).toEqual(new Set(['old', 'new']));
    // Every flush is one record (durable-log.ts, "One record per flush"), so a plain
    // batch is all or nothing too while it fits one...
    expect(run(false)).toEqual(new Set(['old', 'new']));
    // ...but one larger than maxRecordBytes is written as several flushes and can keep
    // a prefix: what the flag is for (an atomic batch is one record whatever its size).
    expect(run(false, { maxRecordBytes: 1000 }).has('prefix')).toBe(true);
  });
});

describe('an atomic batch must fit one record', () => {
  it('one that fits maxRecordBytes exactly is written and read back; one byte more is refused with an error naming the limit, and nothing of it is kept', () => {
    // A Kind.Batch record's length field: 1 (its kind) + per entry 22 (length, kind,
    // term, index, type) + the entry's data. 1 + 3 × 22 + 933 = 1000.
    const opts: DurableLogOptions = { maxRecordBytes: 1000 };
    const three = (from: number, bytes: number[]) => bytes.map((n, i) => ent(from + i, 1, 'y'.repeat(n)));
    const st = new PowerLossStorage({ auto: true });
    const { log } = openNow(st, opts);
    expect(persistNow(log, { hardState: { term: 1, vote: 0, commit: 0 }, entries: three(1, [311, 311, 311]), atomic: true })).toBeNull();
    const err = persistNow(log, { hardState: { term: 1, vote: 0, commit: 0 }, entries: three(4, [311, 311, 312]), atomic: true });
    expect(String(err)).toMatch(/atomic batch of 3 entries is 1001 bytes as one record, above maxRecordBytes \(1000\)/);
    // The node goes on: a plain batch after it is written.
    expect(persistNow(log, { entries: [ent(4, 1)] })).toBeNull();
    const r = openNow(st, opts);
    expect(show(r.state.entries)).toEqual(show([...three(1, [311, 311, 311]), ent(4, 1)]));
  });
});

describe('voteRule', () => {
  it("'raft' (default) refuses a second vote in one term; 'number' (ZAB's currentEpoch) takes any 32-bit value", () => {
    const st = new PowerLossStorage({ auto: true });
    const { log } = openNow(st, {});
    let err: Error | null = null;
    log.persist({ hardState: { term: 2, vote: 1, commit: 0 } }, (e) => (err = e));
    log.persist({ hardState: { term: 2, vote: 3, commit: 0 } }, (e) => (err = e));
    expect(String(err)).toMatch(/would change the vote/);
    const st2 = new PowerLossStorage({ auto: true });
    const z = openNow(st2, { voteRule: 'number' }).log;
    const errs: Array<Error | null> = [];
    z.persist({ hardState: { term: 2, vote: 1, commit: 0 } }, (e) => errs.push(e));
    z.persist({ hardState: { term: 2, vote: 2, commit: 0 } }, (e) => errs.push(e));
    z.persist({ hardState: { term: 700, vote: 700, commit: 0 } }, (e) => errs.push(e));
    st2.runAll?.();
    expect(errs).toEqual([null, null, null]);
    expect(openNow(st2, { voteRule: 'number' }).state.hardState).toMatchObject({ term: 700, vote: 700 });
  });
});
