/**
 * A reference model of the durable log for the power-cut sweeps: plain arrays, the
 * same rules as DurableLog (Raft paper Fig. 2, Fig. 13), and a generator of valid
 * Raft-like batches.
 */
import type { PersistBatch, Recovered, SnapshotRecord } from '../../../hal/storage/index.ts';
import type { Rng } from '../../../src/rng.ts';
import { EntryType, type Entry } from '../../../src/wire/messages.ts';

export interface LogState {
  snapIndex: number;
  snapTerm: number;
  entries: Entry[];
}

export class Model implements LogState {
  term = 0;
  vote = 0;
  commit = 0;
  snapIndex = 0;
  snapTerm = 0;
  entries: Entry[] = [];

  static from(r: Recovered): Model {
    const m = new Model();
    m.term = r.hardState.term;
    m.vote = r.hardState.vote;
    m.commit = r.hardState.commit;
    m.snapIndex = r.snapshot?.index ?? 0;
    m.snapTerm = r.snapshot?.term ?? 0;
    m.entries = r.entries.slice();
    return m;
  }
  clone(): Model {
    const m = new Model();
    Object.assign(m, this);
    m.entries = this.entries.slice();
    return m;
  }
  get lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }
  termAt(i: number): number | undefined {
    if (i === 0) return 0;
    if (i === this.snapIndex) return this.snapTerm;
    if (i > this.snapIndex && i <= this.lastIndex) return this.entries[i - this.snapIndex - 1]!.term;
    return undefined;
  }
  applySnapshot(s: { index: number; term: number }): void {
    const keep = this.termAt(s.index) === s.term;
    this.entries = keep ? this.entries.slice(s.index - this.snapIndex) : [];
    this.snapIndex = s.index;
    this.snapTerm = s.term;
    this.commit = Math.max(this.commit, s.index);
  }
  appendEntries(es: Entry[]): void {
    if (es.length === 0) return;
    this.entries.length = es[0]!.index - this.snapIndex - 1;
    this.entries.push(...es);
  }
  apply(b: PersistBatch): void {
    if (b.snapshot) this.applySnapshot(b.snapshot);
    this.appendEntries(b.entries ?? []);
    if (b.hardState) {
      this.term = b.hardState.term;
      this.vote = b.hardState.vote;
      this.commit = Math.max(this.commit, b.hardState.commit);
    }
  }

  /** A random valid batch (does not apply it). */
  gen(rng: Rng, bigData: boolean): PersistBatch {
    const b: PersistBatch = {};
    let term = this.term;
    let vote = this.vote;
    if (term === 0 || rng.chance(0.12)) {
      term++;
      vote = rng.int(0, 3);
    } else if (vote === 0 && rng.chance(0.2)) {
      vote = rng.int(1, 3);
    }
    const sim = this.clone();
    sim.term = term;
    if (rng.chance(0.06)) {
      let snap: SnapshotRecord;
      if (sim.commit > sim.snapIndex && rng.chance(0.6)) {
        const index = rng.int(sim.snapIndex + 1, sim.commit);
        snap = { index, term: sim.termAt(index)!, config: { voters: [1, 2, 3] }, data: bytes(rng, rng.int(0, 300)) };
      } else {
        const index = sim.lastIndex + rng.int(1, 3);
        snap = { index, term, config: { voters: [1, 2, 3], learners: [] }, data: bytes(rng, rng.int(0, 300)) };
      }
      b.snapshot = snap;
      sim.applySnapshot(snap);
    }
    if (rng.chance(0.65)) {
      const floor = Math.max(sim.commit, sim.snapIndex);
      const start = sim.lastIndex > floor && rng.chance(0.25) ? rng.int(floor + 1, sim.lastIndex) : sim.lastIndex + 1;
      const n = rng.int(1, 5);
      const es: Entry[] = [];
      for (let i = 0; i < n; i++) {
        const len = bigData && rng.chance(0.2) ? rng.int(200, 700) : rng.int(0, 40);
        es.push({ index: start + i, term, type: rng.pick([EntryType.Normal, EntryType.Noop, EntryType.Config]), data: bytes(rng, len) });
      }
      b.entries = es;
      sim.appendEntries(es);
    }
    let commit = sim.commit;
    if (rng.chance(0.5)) commit = rng.int(sim.commit, sim.lastIndex);
    if (term !== this.term || vote !== this.vote || commit !== this.commit || rng.chance(0.5)) {
      b.hardState = { term, vote, commit };
    }
    return b;
  }
}

function bytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 255);
  return b;
}

export function key(s: LogState): string {
  const es = s.entries.map((e) => `${e.index}:${e.term}:${e.type}:${Buffer.from(e.data).toString('base64')}`);
  return `${s.snapIndex}/${s.snapTerm}|${es.join(',')}`;
}
