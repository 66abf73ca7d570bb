/**
 * Linearizability checker for put/get/cas register histories.
 *
 * Method:
 *   - P-compositionality (Horn & Kroening 2015, "Faster linearizability checking
 *     via P-compositionality"): a history of independent registers is linearizable
 *     iff the sub-history of each key is, so each key is checked on its own.
 *   - Per key, the WGL search (Wing & Gong 1993, "Testing and verifying concurrent
 *     objects"; the list-based form of Lowe 2017, "Testing for linearizability"):
 *     call and return events sit in one time-ordered doubly linked list; the search
 *     repeatedly picks a call that precedes the first remaining return, applies the
 *     operation to the register, and unlinks its events; reaching a return whose
 *     operation is not yet linearized means backtracking. Lowe's memoization
 *     prunes a branch whose (set of linearized operations, register value) was seen
 *     before: the rest of the search depends only on that pair. The set is encoded
 *     compactly (see `search`), with a symmetry reduction for pending operations,
 *     and enabled reads are taken without branching (a partial-order reduction,
 *     argued in `search`).
 *   - Operations that never returned (ret: null) have no return event: they can be
 *     linearized anywhere after their call, or never. The search succeeds once every
 *     completed operation is linearized. A pending get carries no information and is
 *     dropped; a pending cas can take effect only when the register holds `from`.
 *   - Bounded: each key's search stops after `maxStates` memoized pairs or
 *     `maxSteps` steps with `{ok: 'unknown'}`.
 *
 * Explanations: on failure the search remembers the latest return event it ever
 * reached. The history cut there (later calls dropped, operations returning later
 * made pending) is still not linearizable. Then completed operations are relaxed,
 * in groups of halving size — a write becomes optional (it takes effect within
 * its call/return window or not at all), a read or failed cas is removed — as long
 * as the result stays non-linearizable. Relaxing only adds linearizations, so the
 * remaining completed operations are a sound core: they cannot be ordered even if
 * every other write of that key may or may not have happened.
 */
import { canonicalJson, describeOp, validateOp, type HistoryOp } from './history.ts';

export interface CheckOptions {
  /**
   * Most memoized (linearized set, value) pairs per key before giving up with
   * 'unknown'. Each is a short string (≈ 60–150 bytes with its set entry), so the
   * default 1,000,000 stays around 100 MB in the worst case. Measured on 10k
   * ops of ONE key, 8 values, 5% pending: 12 concurrent clients ≈ 18k states
   * (0.1 s); 24 clients ≈ 465k (8 s); 32 clients exceed the default (unknown).
   */
  maxStates?: number;
  /**
   * Most search steps (list moves) per key; default 100 × maxStates. Bounds the
   * time spent scanning when memoization keeps hitting, so that no input runs
   * unbounded.
   */
  maxSteps?: number;
  /** Compute a minimized explanation on failure (default true). */
  explain?: boolean;
}

export type CheckResult =
  | { ok: true; keys: number; states: number }
  | {
      ok: false;
      key: string;
      explanation: string;
      /** The operations (from the input) that cannot be ordered, by call time. */
      core: HistoryOp[];
      /** Their positions in the input array. */
      coreIndexes: number[];
    }
  | { ok: 'unknown'; reason: 'search budget exceeded'; key: string };

const DEFAULT_MAX_STATES = 1_000_000;

const enum Kind {
  Put,
  Get,
  CasOk,
  CasFail,
  CasMaybe,
}

/** One operation of one key, values interned to small integers (0 = null/absent). */
interface KOp {
  src: number;
  kind: Kind;
  /** put: value; get: output; cas: from. */
  a: number;
  /** cas: to. */
  b: number;
  call: number;
  ret: number | null;
  /**
   * May be left out although it returned (used only when minimizing an
   * explanation): it takes effect within [call, ret] or not at all.
   */
  optional?: boolean;
}

type SearchResult =
  | { verdict: 'ok'; states: number }
  | { verdict: 'fail'; states: number; cutOps: KOp[] }
  | { verdict: 'budget'; states: number };

function step(op: KOp, state: number): number {
  switch (op.kind) {
    case Kind.Put:
      return op.a;
    case Kind.Get:
      return state === op.a ? state : -1;
    case Kind.CasOk:
    case Kind.CasMaybe:
      return state === op.a ? op.b : -1;
    case Kind.CasFail:
      return state !== op.a ? state : -1;
  }
}

/** WGL search with memoization over one key's operations. */
function search(ops: readonly KOp[], maxStates: number, maxSteps: number): SearchResult {
  const n = ops.length;
  // Events: call of op i, and return of op i when it returned. Sorted by time, calls
  // before returns at equal times (equal times are concurrent), then by op order.
  const ev: Array<{ t: number; ret: boolean; op: number }> = [];
  for (let i = 0; i < n; i++) {
    ev.push({ t: ops[i]!.call, ret: false, op: i });
    if (ops[i]!.ret !== null) ev.push({ t: ops[i]!.ret!, ret: true, op: i });
  }
  ev.sort((x, y) => x.t - y.t || Number(x.ret) - Number(y.ret) || x.op - y.op);
  const E = ev.length;
  // Nodes 1..E are events, 0 is the head sentinel, E+1 the tail sentinel.
  const next = new Int32Array(E + 2);
  const prev = new Int32Array(E + 2);
  const evOp = new Int32Array(E + 2);
  const isRet = new Uint8Array(E + 2);
  const callNode = new Int32Array(n);
  const retNode = new Int32Array(n).fill(-1);
  for (let k = 0; k <= E + 1; k++) {
    next[k] = k + 1;
    prev[k] = k - 1;
  }
  for (let k = 0; k < E; k++) {
    const e = ev[k]!;
    evOp[k + 1] = e.op;
    isRet[k + 1] = e.ret ? 1 : 0;
    if (e.ret) retNode[e.op] = k + 1;
    else callNode[e.op] = k + 1;
  }
  const TAIL = E + 1;
  const unlink = (k: number) => {
    next[prev[k]!] = next[k]!;
    prev[next[k]!] = prev[k]!;
  };
  const relink = (k: number) => {
    next[prev[k]!] = k;
    prev[next[k]!] = k;
  };

  // Memo key of (linearized set, value), kept short so that memory does not grow
  // with the length of the history:
  //   - completed ops, ranked by call time: the lowest unlinearized rank `low`,
  //     then the linearized ranks above it (a window about as wide as the
  //     concurrency);
  //   - ops that never returned: identical ones (same kind and values) are
  //     interchangeable and the earliest-called one can stand wherever a later
  //     one can, so they are linearized in call order and a count per class
  //     describes which are done (a symmetry reduction; it also keeps `low` from
  //     sticking at the first pending op forever).
  const rank = new Int32Array(n).fill(-1);
  const cls = new Int32Array(n).fill(-1);
  const done: number[] = [];
  const classOf = new Map<string, number>();
  const classMembers: number[][] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    if (op.ret !== null) {
      done.push(i);
      continue;
    }
    const ck = `${op.kind}:${op.a}:${op.b}`;
    let c = classOf.get(ck);
    if (c === undefined) {
      c = classMembers.length;
      classOf.set(ck, c);
      classMembers.push([]);
    }
    cls[i] = c;
    classMembers[c]!.push(i);
  }
  const byCall = (x: number, y: number) => ops[x]!.call - ops[y]!.call || x - y;
  done.sort(byCall).forEach((i, r) => (rank[i] = r));
  for (const m of classMembers) m.sort(byCall).forEach((i, r) => (rank[i] = r));
  const flags = new Uint8Array(done.length);
  let low = 0;
  let high = -1;
  const count = new Int32Array(classMembers.length);
  const mark = (i: number) => {
    if (cls[i]! >= 0) {
      count[cls[i]!]!++;
      return;
    }
    const r = rank[i]!;
    flags[r] = 1;
    if (r > high) high = r;
    while (low < flags.length && flags[low]) low++;
  };
  const unmark = (i: number) => {
    if (cls[i]! >= 0) {
      count[cls[i]!]!--;
      return;
    }
    const r = rank[i]!;
    flags[r] = 0;
    if (r < low) low = r;
    while (high >= 0 && !flags[high]) high--;
  };
  const seen = new Set<string>();
  let states = 0;
  const remember = (state: number): boolean => {
    let k = `${state}/${low}`;
    for (let r = low + 1; r <= high; r++) if (flags[r]) k += `,${r - low}`;
    if (count.length > 0) k += `/${count.join(',')}`;
    if (seen.has(k)) return false;
    seen.add(k);
    states++;
    return true;
  };
  /** A pending op may go only after every earlier-called op of its class. */
  const eligible = (i: number) => cls[i]! < 0 || count[cls[i]!] === rank[i];

  // Reads first (a partial-order reduction): a get or failed cas that can take
  // effect now leaves the value unchanged, and every op that had to precede it is
  // already linearized, so any linearization from here can be rearranged to take
  // it now. Hence in each configuration the search first looks for such a read
  // (phase 0) and commits to it: if its branch fails (or was seen before and
  // failed), the whole configuration fails and the search backs up past it.
  // Only when no read can go does it branch over writes (phase 1).
  const readOnly = (op: KOp) => (op.kind === Kind.Get || op.kind === Kind.CasFail) && !op.optional;
  const stackOp: number[] = [];
  const stackState: number[] = [];
  const stackAlt: number[] = [];
  let state = 0;
  let entry = next[0]!;
  let phase = 0;
  // Alternatives at a call: 0 = take effect; 1 = leave out (optional ops only).
  let alt = 0;
  let deepest = 0; // latest return node at which the search had to stop
  let steps = 0;
  search: for (;;) {
    if (++steps > maxSteps || states > maxStates) return { verdict: 'budget', states };
    if (entry === TAIL) return { verdict: 'ok', states };
    let backtrack = false;
    if (!isRet[entry]) {
      const i = evOp[entry]!;
      const op = ops[i]!;
      const ro = readOnly(op);
      if (phase === 0 && ro) {
        if (step(op, state) >= 0) {
          mark(i);
          if (remember(state)) {
            stackOp.push(i);
            stackState.push(state);
            stackAlt.push(0);
            unlink(callNode[i]!);
            unlink(retNode[i]!);
            entry = next[0]!;
            continue search;
          }
          unmark(i);
          backtrack = true; // seen before, and it failed then
        }
      } else if (phase === 1 && !ro) {
        for (let a = alt; a <= (op.optional ? 1 : 0) && eligible(i); a++) {
          const s2 = a === 0 ? step(op, state) : state;
          if (s2 < 0) continue;
          mark(i);
          if (remember(s2)) {
            stackOp.push(i);
            stackState.push(state);
            stackAlt.push(a);
            state = s2;
            unlink(callNode[i]!);
            if (retNode[i]! >= 0) unlink(retNode[i]!);
            entry = next[0]!;
            alt = 0;
            phase = 0;
            continue search;
          }
          unmark(i);
        }
        alt = 0;
      }
      if (!backtrack) {
        entry = next[entry]!;
        continue;
      }
    } else if (phase === 0) {
      phase = 1;
      entry = next[0]!;
      continue;
    } else if (entry > deepest) deepest = entry;
    // Back up: undo the latest choice; a committed read fails its parent too.
    for (;;) {
      if (stackOp.length === 0) break search;
      const i = stackOp.pop()!;
      state = stackState.pop()!;
      const a = stackAlt.pop()!;
      unmark(i);
      if (retNode[i]! >= 0) relink(retNode[i]!);
      relink(callNode[i]!);
      if (readOnly(ops[i]!)) continue;
      phase = 1;
      if (a === 0 && ops[i]!.optional) {
        entry = callNode[i]!; // try leaving it out
        alt = 1;
      } else entry = next[callNode[i]!]!;
      break;
    }
  }
  // The cut at the latest return reached: node positions are time order.
  const cutOps: KOp[] = [];
  for (let i = 0; i < n; i++) {
    if (callNode[i]! > deepest) continue;
    const op = ops[i]!;
    if (retNode[i]! >= 0 && retNode[i]! <= deepest) cutOps.push(op);
    else {
      const r = relax(op, false);
      if (r) cutOps.push(r);
    }
  }
  return { verdict: 'fail', states, cutOps };
}

/**
 * The op as "may or may not have happened" — anywhere after its call (`window`
 * false), or within its [call, ret] (`window` true) — or null if it then carries
 * no information.
 */
function relax(op: KOp, window: boolean): KOp | null {
  switch (op.kind) {
    case Kind.Put:
    case Kind.CasOk:
    case Kind.CasMaybe: {
      const kind = op.kind === Kind.Put ? Kind.Put : Kind.CasMaybe;
      return op.ret === null ? op : window ? { ...op, kind, optional: true } : { ...op, kind, ret: null };
    }
    case Kind.Get:
    case Kind.CasFail:
      return null;
  }
}

/** Most sub-searches spent on minimizing one explanation, and the budget of each. */
const MINIMIZE_CHECKS = 400;
const MINIMIZE_STATES = 20_000;

/**
 * Shrinks a non-linearizable cut to a small core by relaxing groups of completed
 * operations, halving the group size each round (in the manner of Zeller's ddmin):
 * a single culprit in thousands of operations takes O(log n) sub-searches.
 */
function minimize(cut: KOp[]): KOp[] {
  let cur = cut;
  let candidates = cur.filter((op) => op.ret !== null && !op.optional).sort((x, y) => x.call - y.call || x.src - y.src);
  let checks = 0;
  let chunk = Math.max(1, Math.ceil(candidates.length / 2));
  while (checks < MINIMIZE_CHECKS && candidates.length > 0) {
    let i = 0;
    while (i < candidates.length && checks < MINIMIZE_CHECKS) {
      const group = new Set(candidates.slice(i, i + chunk));
      const trial: KOp[] = [];
      for (const op of cur) {
        if (!group.has(op)) trial.push(op);
        else {
          const r = relax(op, true);
          if (r) trial.push(r);
        }
      }
      checks++;
      if (search(trial, MINIMIZE_STATES, MINIMIZE_STATES * 100).verdict === 'fail') {
        cur = trial;
        candidates = candidates.filter((op) => !group.has(op));
      } else i += chunk;
    }
    if (chunk === 1) break;
    chunk = Math.ceil(chunk / 2);
  }
  return cur;
}

/**
 * Checks a history of put/get/cas operations for linearizability. Malformed
 * operations throw a HistoryError naming the operation and the field; the result
 * itself is always one of the three verdicts.
 */
export function checkLinearizable(ops: readonly HistoryOp[], opts: CheckOptions = {}): CheckResult {
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  const maxSteps = opts.maxSteps ?? maxStates * 100;
  if (!Number.isSafeInteger(maxStates) || maxStates < 1) throw new RangeError(`maxStates: expected a positive integer, got ${String(opts.maxStates)}`);
  if (!Number.isSafeInteger(maxSteps) || maxSteps < 1) throw new RangeError(`maxSteps: expected a positive integer, got ${String(opts.maxSteps)}`);
  if (!Array.isArray(ops)) throw new TypeError(`history: expected an array of operations, got ${typeof ops}`);

  const byKey = new Map<string, { ops: KOp[]; values: Map<string, number> }>();
  for (let i = 0; i < ops.length; i++) {
    let op: HistoryOp;
    try {
      op = validateOp(ops[i]);
    } catch (e) {
      (e as Error).message = `operation #${i}${(ops[i] as HistoryOp | undefined)?.line !== undefined ? ` (line ${(ops[i] as HistoryOp).line})` : ''}: ${(e as Error).message}`;
      throw e;
    }
    let part = byKey.get(op.key);
    if (!part) {
      part = { ops: [], values: new Map([['null', 0]]) };
      byKey.set(op.key, part);
    }
    const values = part.values;
    const id = (v: unknown): number => {
      const c = canonicalJson(v as never);
      let x = values.get(c);
      if (x === undefined) {
        x = values.size;
        values.set(c, x);
      }
      return x;
    };
    const pending = op.ret === null;
    if (op.op === 'put') part.ops.push({ src: i, kind: Kind.Put, a: id(op.value), b: 0, call: op.call, ret: op.ret });
    else if (op.op === 'get') {
      if (!pending) part.ops.push({ src: i, kind: Kind.Get, a: id(op.output), b: 0, call: op.call, ret: op.ret });
    } else {
      const kind = pending ? Kind.CasMaybe : op.output === 'ok' ? Kind.CasOk : Kind.CasFail;
      part.ops.push({ src: i, kind, a: id(op.from), b: id(op.to), call: op.call, ret: op.ret });
    }
  }

  const keys = [...byKey.keys()].sort();
  let total = 0;
  let unknown: string | undefined;
  for (const key of keys) {
    const part = byKey.get(key)!;
    const r = search(part.ops, maxStates, maxSteps);
    total += r.states;
    if (r.verdict === 'budget') {
      unknown ??= key;
      continue;
    }
    if (r.verdict === 'ok') continue;
    // A definite violation outranks an unknown verdict on another key.
    const core = opts.explain === false ? part.ops.filter((o) => o.ret !== null) : minimize(r.cutOps);
    const completed = core.filter((o) => o.ret !== null && !o.optional).sort((x, y) => x.call - y.call || x.src - y.src);
    const maybe = core.length - completed.length;
    const coreIndexes = completed.map((o) => o.src);
    const lines = coreIndexes.map((i) => `  ${describeOp(ops[i]!, i)}`);
    // For the reader: the other writes of a value the core reads or compares
    // (e.g. the put a stale read saw), at most a few.
    const readValues = new Set(completed.filter((o) => o.kind !== Kind.Put).map((o) => o.a));
    const related = core.filter((o) => (o.ret === null || o.optional) && o.kind !== Kind.Get && readValues.has(o.kind === Kind.Put ? o.a : o.b));
    const MAX_RELATED = 5;
    if (related.length > 0) {
      lines.push(`  writes of the values read above, which may not have happened${related.length > MAX_RELATED ? ` (first ${MAX_RELATED} of ${related.length})` : ''}:`);
      for (const o of related.slice(0, MAX_RELATED)) lines.push(`    ${describeOp(ops[o.src]!, o.src)}`);
    }
    const explanation =
      `key ${JSON.stringify(key)}: these ${completed.length} operations cannot be ordered consistently with ` +
      `their real-time order and a register starting at null` +
      (maybe > 0 ? ` (even if ${maybe} other write${maybe === 1 ? '' : 's'} of the key may not have happened)` : '') +
      `:\n${lines.join('\n')}`;
    return { ok: false, key, explanation, core: coreIndexes.map((i) => ops[i]!), coreIndexes };
  }
  if (unknown !== undefined) return { ok: 'unknown', reason: 'search budget exceeded', key: unknown };
  return { ok: true, keys: keys.length, states: total };
}
