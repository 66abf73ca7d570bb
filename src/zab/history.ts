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
 * a snapshot cut the run.
 *
 * The container is the Raft engine's in-memory log (same shape: entries after a
 * snapshot, suffix truncation, compaction); this class adds what ZAB asks of it:
 * epochs never decrease on append, and where the run of an epoch ends (binary
 * search, the epochs along a history being non-decreasing). Durability is not this
 * class's business: the engine tracks the stable prefix.
 */
import { RaftLog } from '../raft/log.ts';
import type { Index, Term } from '../types.ts';
import type { Entry } from '../wire/messages.ts';

export class ZabHistory extends RaftLog {
  override append(e: Entry): void {
    if (e.term < this.lastTerm) throw new RangeError(`zab history: append of epoch ${e.term} after epoch ${this.lastTerm}`);
    super.append(e);
  }

  /**
   * The last index (≥ snapIndex) whose epoch is ≤ `t`, or snapIndex − 1 when even the
   * snapshot's epoch is above `t`.
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
