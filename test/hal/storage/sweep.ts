/**
 * The power-cut sweep shared by the in-memory model and the simulator's flash:
 * random valid batches, I/O progressing at random, power cut, recovery, and the
 * check that every acknowledged batch survived and the recovered log is exactly the
 * state after some prefix of the accepted writes — whole batches only: every flush is
 * one record (durable-log.ts), so a torn group contributes nothing of its entries — no
 * garbage, no holes, never a fatal error.
 */
import { expect } from 'vitest';
import type { Storage } from '../../../hal/interfaces.ts';
import type { DurableLog, PersistBatch, Recovered } from '../../../hal/storage/index.ts';
import { Rng } from '../../../src/rng.ts';
import { openNow } from './helpers.ts';
import { Model, key } from './model.ts';

/** Every log state the recovery may legitimately produce. */
export function candidates(states: Model[], batches: PersistBatch[], acked: number): Set<string> {
  const out = new Set<string>();
  const snapsAfter = (k: number) => batches.slice(k).flatMap((b) => (b.snapshot ? [b.snapshot] : []));
  for (let k = acked; k < states.length; k++) {
    const partials: Model[] = [states[k]!];
    const b = batches[k]; // batch k+1 (0-based: batches[k] leads from states[k] to states[k+1])
    if (b) {
      let p = states[k]!.clone();
      if (b.snapshot) {
        p.applySnapshot(b.snapshot);
        partials.push(p.clone());
      }
    }
    for (const p of partials) {
      out.add(key(p));
      // A snapshot file made durable before its group's WAL append (crash window).
      for (const s of snapsAfter(k)) {
        if (s.index <= p.snapIndex) continue;
        const q = p.clone();
        q.applySnapshot(s);
        out.add(key(q));
      }
    }
  }
  return out;
}

/** The durable log syncs a batch unless only its commit index moved (hal/storage/durable-log.ts). */
export function needsSync(b: PersistBatch, before: Model): boolean {
  if (b.snapshot || (b.entries?.length ?? 0) > 0 || b.meta) return true;
  return b.hardState !== undefined && (b.hardState.term !== before.term || b.hardState.vote !== before.vote);
}

/** A storage device under test: drive its I/O, cut its power. */
export interface Device {
  storage: Storage;
  /** Completes outstanding I/O (bounded). */
  settle(): void;
  /** Lets some I/O happen (one completion, or some virtual time). */
  advance(rng: Rng): void;
  powerCut(rng: Rng): void;
}

export function runSeed(seed: number, dev: Device, opts: { segmentBytes: number }): { cuts: number; acked: number; warnings: string[] } {
  const rng = new Rng(seed);
  const st = dev.storage;
  let opened = openNow(st, opts, () => dev.settle());
  let log: DurableLog = opened.log;
  let rec: Recovered = opened.state;
  let model = Model.from(rec);
  let bootId = rec.bootId;
  let totalAcked = 0;
  const warnings: string[] = [];
  const rounds = 4;
  for (let round = 0; round < rounds; round++) {
    const states: Model[] = [model.clone()];
    const batches: PersistBatch[] = [];
    let acked = 0;
    const steps = rng.int(5, 80);
    for (let s = 0; s < steps; s++) {
      if (rng.chance(0.55)) {
        const b = model.gen(rng, true);
        model.apply(b);
        states.push(model.clone());
        batches.push(b);
        const n = batches.length;
        log.persist(b, (err) => {
          if (err) throw new Error(`seed ${seed}: persist ${n} failed: ${err.message}`);
          if (n !== acked + 1) throw new Error(`seed ${seed}: done ${n} out of order (acked ${acked})`);
          acked = n;
        });
      } else {
        dev.advance(rng);
      }
    }
    dev.powerCut(rng);
    try {
      opened = openNow(st, opts, () => dev.settle());
    } catch (e) {
      throw new Error(`seed ${seed} round ${round}: recovery failed after a power cut: ${(e as Error).message}`);
    }
    log = opened.log;
    rec = opened.state;
    warnings.push(...rec.warnings);
    const got = key({ snapIndex: rec.snapshot?.index ?? 0, snapTerm: rec.snapshot?.term ?? 0, entries: rec.entries });
    const ok = candidates(states, batches, acked);
    if (!ok.has(got)) {
      throw new Error(`seed ${seed} round ${round}: recovered log is not a prefix-consistent state (acked ${acked}/${batches.length})\n got ${got.slice(0, 300)}`);
    }
    const a = states[acked]!;
    const hs = rec.hardState;
    expect(hs.term, `seed ${seed}: term`).toBeGreaterThanOrEqual(a.term);
    if (hs.term === a.term && a.vote !== 0) expect(hs.vote, `seed ${seed}: vote`).toBe(a.vote);
    // A batch that only raised the commit index is acknowledged without an fsync (its
    // record rides with the next flush): the recovered commit is at least the one the
    // newest acknowledged *synced* batch found accepted, never past the recovered log.
    let synced = 0;
    for (let i = acked; i >= 1; i--) {
      if (needsSync(batches[i - 1]!, states[i - 1]!)) {
        synced = i;
        break;
      }
    }
    expect(hs.commit, `seed ${seed}: commit`).toBeGreaterThanOrEqual(states[synced]!.commit);
    expect(hs.commit, `seed ${seed}: commit within the log`).toBeLessThanOrEqual(Math.max(rec.snapshot?.index ?? 0, rec.entries.at(-1)?.index ?? 0));
    // Committed entries never change: compare with the newest accepted state.
    const last = states[states.length - 1]!;
    for (const e of rec.entries) {
      if (e.index > hs.commit) break;
      const t = last.termAt(e.index);
      if (t !== undefined) expect(t, `seed ${seed}: committed entry ${e.index} changed`).toBe(e.term);
    }
    expect(rec.bootId).toBe(bootId + 1);
    bootId = rec.bootId;
    if (rec.snapshot) expect(rec.snapshot.config).toBeTypeOf('object');
    totalAcked += acked;
    model = Model.from(rec);
  }
  return { cuts: rounds, acked: totalAcked, warnings };
}

