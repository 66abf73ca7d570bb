/**
 * A map from integer keys that mostly arrive in increasing order (log indexes, request
 * numbers) to values, kept in two sorted arrays instead of a `Map`.
 *
 * Why not a Map: every write passes through the runtime's tables of pending work (set
 * at propose, deleted at apply, a few milliseconds later). A long-lived V8 `Map` or
 * `Set` with that churn makes V8 (Node 20's 11.3) promote the young objects held in it
 * — each write's callback, and through it the HTTP request and response — to the old
 * generation whenever incremental marking runs, which on a busy leader is most of the
 * time (each write keeps a log entry and a value). Measured on a plain node:http
 * server, 64 clients, each request held 10 ms in a Map: ~1.9 KB promoted per request
 * against ~0.26 KB with the same request held in an array. On a `quorumd dev` leader
 * under 64 writers (after the HTTP server's own Set went, daemon/http/server.ts):
 * ~1.5 KB promoted per write with these tables as Maps, ~0.8 KB with IndexMaps — about
 * what a write legitimately keeps (its log entry and value) — and full collections
 * 8–9 → 5–6 per run. Arrays and fields of long-lived objects do not do this.
 *
 * Costs: `set` of a key above every other key, and `get`/`delete` of the smallest
 * key, are O(1) — the common case: writes are proposed in index order and applied
 * in index order. Anything else is a binary search, and `set` below the largest key
 * an O(n) insertion. A deleted slot stays as a hole until the holes at the front are
 * dropped, so memory follows the span of live keys, not their count.
 *
 * Values must not be `undefined` (it marks a hole).
 */
/** What takeWhere returns when it takes nothing: shared, never written (readonly; not frozen, as V8 loops over a frozen array more slowly). */
const NONE: readonly [number, never][] = [];

export class IndexMap<V> {
  private keys: number[] = [];
  private vals: (V | undefined)[] = [];
  /** keys[head] is the smallest slot that may be live; everything before it is a hole. */
  private head = 0;
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** The slot of `k` in [head, keys.length), or where it would be inserted. */
  private find(k: number): number {
    const keys = this.keys;
    let lo = this.head;
    if (lo < keys.length && keys[lo] === k) return lo;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  set(k: number, v: V): void {
    if (v === undefined) throw new TypeError('IndexMap: a value must not be undefined');
    const keys = this.keys;
    const n = keys.length;
    if (this.head === n || k > keys[n - 1]!) {
      keys.push(k);
      this.vals.push(v);
      this.live++;
      return;
    }
    const i = this.find(k);
    if (i < n && keys[i] === k) {
      if (this.vals[i] === undefined) this.live++;
      this.vals[i] = v;
      return;
    }
    keys.splice(i, 0, k);
    this.vals.splice(i, 0, v);
    this.live++;
  }

  get(k: number): V | undefined {
    const i = this.find(k);
    return i < this.keys.length && this.keys[i] === k ? this.vals[i] : undefined;
  }

  delete(k: number): boolean {
    const i = this.find(k);
    if (i >= this.keys.length || this.keys[i] !== k || this.vals[i] === undefined) return false;
    this.vals[i] = undefined;
    this.live--;
    if (i === this.head) this.dropFront();
    else this.maybeCompact();
    return true;
  }

  /** Holes behind a live key that stays (a write that waits for its deadline) are removed once they outnumber the live slots 3 to 1. */
  private maybeCompact(): void {
    const span = this.keys.length - this.head;
    if (span < 256 || this.live * 4 > span) return;
    let w = 0;
    for (let i = this.head; i < this.keys.length; i++) {
      const v = this.vals[i];
      if (v === undefined) continue;
      this.keys[w] = this.keys[i]!;
      this.vals[w] = v;
      w++;
    }
    this.keys.length = w;
    this.vals.length = w;
    this.head = 0;
  }

  /** Drops the holes at the front; compacts the arrays once the dead prefix is large. */
  private dropFront(): void {
    const n = this.keys.length;
    let h = this.head;
    while (h < n && this.vals[h] === undefined) h++;
    if (h === n) {
      this.keys.length = 0;
      this.vals.length = 0;
      this.head = 0;
      return;
    }
    if (h >= 64 && h * 2 >= n) {
      this.keys.splice(0, h);
      this.vals.splice(0, h);
      h = 0;
    }
    this.head = h;
  }

  clear(): void {
    this.keys.length = 0;
    this.vals.length = 0;
    this.head = 0;
    this.live = 0;
  }

  /** The live values in key order, as a copy. */
  values(): V[] {
    const out: V[] = [];
    for (let i = this.head; i < this.keys.length; i++) {
      const v = this.vals[i];
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  /**
   * Removes every entry for which `take(key, value)` is true and returns them in key
   * order. `take` must not change the map; act on what it returns instead (an answer
   * sent from inside the loop could reach code that changes this map).
   */
  takeWhere(take: (k: number, v: V) => boolean): readonly [number, V][] {
    let out: [number, V][] | undefined;
    for (let i = this.head; i < this.keys.length; i++) {
      const v = this.vals[i];
      if (v === undefined || !take(this.keys[i]!, v)) continue;
      this.vals[i] = undefined;
      this.live--;
      (out ??= []).push([this.keys[i]!, v]);
    }
    if (out === undefined) return NONE; // the common case (a timeout sweep that finds nothing): no allocation
    this.dropFront();
    this.maybeCompact();
    return out;
  }
}
