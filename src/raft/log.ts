/**
 * The in-memory Raft log: every entry after the last snapshot (docs/architecture.md, Durability — a board
 * has RAM enough when snapshots bound the log).
 *
 * Indexes are 1-based. `snapIndex`/`snapTerm` describe the last entry covered by the
 * snapshot (0/0 before any snapshot); entries[k] has index snapIndex + 1 + k.
 * The log itself knows nothing about durability; the engine tracks which prefix is
 * stable (persisted and acknowledged through `advance`).
 */
import type { Index, Term } from '../types.ts';
import type { Entry } from '../wire/messages.ts';

export class RaftLog {
  private ents: Entry[] = [];
  snapIndex: Index;
  snapTerm: Term;

  constructor(snapIndex: Index, snapTerm: Term, entries: readonly Entry[]) {
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    let prevTerm = snapTerm;
    entries.forEach((e, k) => {
      const want = snapIndex + 1 + k;
      if (e.index !== want) {
        throw new Error(`raft log: entries[${k}].index is ${e.index}, expected ${want} (entries must be contiguous after the snapshot at ${snapIndex})`);
      }
      if (e.term < prevTerm) {
        throw new Error(`raft log: entries[${k}] (index ${e.index}) has term ${e.term} below the previous term ${prevTerm}; terms in a log never decrease`);
      }
      prevTerm = e.term;
    });
    this.ents = entries.slice();
  }

  get firstIndex(): Index {
    return this.snapIndex + 1;
  }

  get lastIndex(): Index {
    return this.snapIndex + this.ents.length;
  }

  get lastTerm(): Term {
    return this.ents.length > 0 ? this.ents[this.ents.length - 1]!.term : this.snapTerm;
  }

  /** Term of the entry at `i`; undefined when compacted away (i < snapIndex) or beyond the end. */
  term(i: Index): Term | undefined {
    if (i === this.snapIndex) return this.snapTerm;
    if (i < this.snapIndex || i > this.lastIndex) return undefined;
    return this.ents[i - this.snapIndex - 1]!.term;
  }

  entry(i: Index): Entry | undefined {
    if (i <= this.snapIndex || i > this.lastIndex) return undefined;
    return this.ents[i - this.snapIndex - 1];
  }

  /** Entries with lo <= index <= hi (clamped to what is in memory). */
  slice(lo: Index, hi: Index): Entry[] {
    const a = Math.max(lo, this.firstIndex) - this.snapIndex - 1;
    const b = Math.min(hi, this.lastIndex) - this.snapIndex;
    return a < b ? this.ents.slice(a, b) : [];
  }

  matchTerm(i: Index, t: Term): boolean {
    return this.term(i) === t;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: Index, lastTerm: Term): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  append(e: Entry): void {
    if (e.index !== this.lastIndex + 1) throw new Error(`raft log: append of index ${e.index} after last ${this.lastIndex}`);
    this.ents.push(e);
  }

  /** Removes every entry with index >= i (i > snapIndex). */
  truncateFrom(i: Index): void {
    if (i <= this.snapIndex) throw new Error(`raft log: cannot truncate at ${i}, at or below the snapshot ${this.snapIndex}`);
    if (i <= this.lastIndex) this.ents.length = i - this.snapIndex - 1;
  }

  /** Drops entries up to and including `i` (which must be in the log), after a snapshot at i. */
  compactTo(i: Index): void {
    const t = this.term(i);
    if (t === undefined) throw new Error(`raft log: cannot compact to ${i}, not in the log [${this.snapIndex}, ${this.lastIndex}]`);
    this.ents = this.ents.slice(i - this.snapIndex);
    this.snapIndex = i;
    this.snapTerm = t;
  }

  /** Replaces the whole log by a snapshot (a follower installing one). */
  reset(snapIndex: Index, snapTerm: Term): void {
    this.ents = [];
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
  }

  /** First index of the run of entries with term `t` that ends at `i` (for conflict hints). */
  firstIndexOfTermAt(i: Index, t: Term): Index {
    let j = i;
    while (j - 1 > this.snapIndex && this.term(j - 1) === t) j--;
    return j;
  }

  /** Largest index <= `from` whose term is <= `t`, with its term (for the leader's backtracking). */
  lastIndexWithTermAtMost(from: Index, t: Term): { index: Index; term: Term } {
    let j = Math.min(from, this.lastIndex);
    while (j > this.snapIndex && this.term(j)! > t) j--;
    return { index: j, term: this.term(j) ?? 0 };
  }
}
