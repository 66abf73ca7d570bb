/**
 * A ZAB history in memory: the transactions after the last snapshot, in zxid order.
 *
 * Positions are 1-based log indexes, contiguous across epochs; an Entry's `term` is
 * the epoch of its zxid. The zxid of the entry at index i of epoch e is
 * (e, i − s_e), where s_e is the index of e's epoch-start entry: the no-op the leader
 * of e puts at the end of its initial history (zxid (e, 0), ZooKeeper's NEWLEADER
 * zxid). Within an epoch the counter and the index grow together, and epochs never
 * decrease along a history, so comparing (epoch, index) orders zxids exactly as
 * comparing (epoch, counter) — which is why messages carry indexes.
 *
 * Every run of entries of one epoch begins with that epoch's start entry (only the
 * leader of e creates entries of epoch e, and its first is the start entry), unless
 * a snapshot cut the run. `runEnd(e)` finds where a run ends by binary search: the
 * epochs along a history are non-decreasing.
 *
 * Durability is not this class's business: the engine tracks the stable prefix.
 */
import type { Index, Term } from '../types.ts';
import type { Entry } from '../wire/messages.ts';

export class ZabHistory {
  private ents: Entry[] = [];
  snapIndex: Index;
  snapTerm: Term;

  constructor(snapIndex: Index, snapTerm: Term, entries: readonly Entry[]) {
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    let prev = snapTerm;
    entries.forEach((e, k) => {
      const want = snapIndex + 1 + k;
      if (e.index !== want) throw new RangeError(`zab history: entries[${k}].index is ${e.index}, expected ${want} (contiguous after the snapshot at ${snapIndex})`);
      if (e.term < prev) throw new RangeError(`zab history: entries[${k}] (index ${e.index}) has epoch ${e.term} below the previous ${prev}; epochs never decrease along a history`);
      prev = e.term;
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

  /** Epoch of the entry at `i` (the snapshot's at its index); undefined when compacted away or beyond the end. */
  term(i: Index): Term | undefined {
    if (i === this.snapIndex) return this.snapTerm;
    if (i < this.snapIndex || i > this.lastIndex) return undefined;
    return this.ents[i - this.snapIndex - 1]!.term;
  }

  entry(i: Index): Entry | undefined {
    if (i <= this.snapIndex || i > this.lastIndex) return undefined;
    return this.ents[i - this.snapIndex - 1];
  }

  /** Entries lo..hi inclusive that are in memory. */
  slice(lo: Index, hi: Index): Entry[] {
    const a = Math.max(lo, this.firstIndex) - this.snapIndex - 1;
    const b = Math.min(hi, this.lastIndex) - this.snapIndex;
    return a < b ? this.ents.slice(a, b) : [];
  }

  append(e: Entry): void {
    if (e.index !== this.lastIndex + 1) throw new RangeError(`zab history: append of index ${e.index} after last ${this.lastIndex}`);
    if (e.term < this.lastTerm) throw new RangeError(`zab history: append of epoch ${e.term} after epoch ${this.lastTerm}`);
    this.ents.push(e);
  }

  /** Removes every entry with index >= i (i > snapIndex). */
  truncateFrom(i: Index): void {
    if (i <= this.snapIndex) throw new RangeError(`zab history: cannot truncate at ${i}, at or below the snapshot ${this.snapIndex}`);
    if (i <= this.lastIndex) this.ents.length = i - this.snapIndex - 1;
  }

  /** Drops entries up to and including `i` (which must be in the history), after a snapshot at i. */
  compactTo(i: Index): void {
    const t = this.term(i);
    if (t === undefined) throw new RangeError(`zab history: cannot compact to ${i}, not in [${this.snapIndex}, ${this.lastIndex}]`);
    this.ents = this.ents.slice(i - this.snapIndex);
    this.snapIndex = i;
    this.snapTerm = t;
  }

  /** Replaces the whole history by a snapshot (a follower installing one). */
  reset(snapIndex: Index, snapTerm: Term): void {
    this.ents = [];
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
  }

  /**
   * The last index (≥ snapIndex) whose epoch is ≤ `t`, or snapIndex − 1 when even the
   * snapshot's epoch is above `t` (binary search: epochs are non-decreasing).
   */
  lastIndexAtOrBelow(t: Term): Index {
    if (this.snapTerm > t) return this.snapIndex - 1;
    let lo = this.snapIndex; // term(lo) ≤ t
    let hi = this.lastIndex;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.term(mid)! <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The last index holding an entry of epoch `t` (the snapshot's counts), or undefined when the history has none in memory. */
  runEnd(t: Term): Index | undefined {
    const i = this.lastIndexAtOrBelow(t);
    return i >= this.snapIndex && this.term(i) === t ? i : undefined;
  }
}
