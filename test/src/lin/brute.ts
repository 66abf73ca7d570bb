/**
 * Test helpers: a brute-force linearizability oracle written straight from the
 * definition, and a generator of random histories.
 *
 * The oracle knows nothing about keys, WGL or memoization: for every subset of the
 * operations that never returned, it tries every order of (completed ops + that
 * subset) in which no operation comes before one that returned before its call,
 * (optionally, some operations that returned may also be left out,)
 * replaying a map of registers; a never-returned get reads anything and a
 * never-returned cas takes effect iff the register holds `from`.
 */
import { canonicalJson, type HistoryOp, type Json } from '../../../src/lin/index.ts';
import type { Rng } from '../../../src/rng.ts';

export function bruteForceLinearizable(ops: readonly HistoryOp[], optional: ReadonlySet<number> = new Set()): boolean {
  // `optional`: operations that returned but may be left out entirely.
  const pending = ops.map((_, i) => i).filter((i) => ops[i]!.ret === null || optional.has(i));
  const done = ops.map((_, i) => i).filter((i) => ops[i]!.ret !== null && !optional.has(i));
  if (ops.length > 10) throw new Error('brute force: at most 10 operations');
  for (let mask = 0; mask < 1 << pending.length; mask++) {
    const chosen = [...done, ...pending.filter((_, j) => mask & (1 << j))];
    if (orderExists(ops, chosen)) return true;
  }
  return false;
}

function orderExists(ops: readonly HistoryOp[], chosen: number[]): boolean {
  const placed = new Set<number>();
  const state = new Map<string, string>(); // key → canonical value; absent = "null"
  const read = (k: string) => state.get(k) ?? 'null';
  const dfs = (): boolean => {
    if (placed.size === chosen.length) return true;
    for (const i of chosen) {
      if (placed.has(i)) continue;
      const op = ops[i]!;
      // Real-time order: every chosen op that returned before op's call goes first.
      if (chosen.some((j) => !placed.has(j) && j !== i && ops[j]!.ret !== null && ops[j]!.ret! < op.call)) continue;
      const before = read(op.key);
      let after = before;
      if (op.op === 'put') after = canonicalJson(op.value);
      else if (op.op === 'get') {
        if (op.ret !== null && canonicalJson(op.output) !== before) continue;
      } else {
        const matches = canonicalJson(op.from) === before;
        if (op.ret === null) after = matches ? canonicalJson(op.to) : before;
        else if (op.output === 'ok') {
          if (!matches) continue;
          after = canonicalJson(op.to);
        } else if (matches) continue;
      }
      placed.add(i);
      state.set(op.key, after);
      const ok = dfs();
      placed.delete(i);
      state.set(op.key, before);
      if (ok) return true;
    }
    return false;
  };
  return dfs();
}

export interface GenOptions {
  clients: number;
  ops: number;
  keys: string[];
  values: Json[];
  /** Probability that an operation never returns. */
  pending: number;
  /** Longest time from call to linearization point and from there to return. */
  maxDelay: number;
  /** Longest think time of a client between operations. */
  maxGap: number;
}

/**
 * A linearizable history by construction: each operation takes effect at a random
 * instant between its call and its return, on a simulated map of registers.
 * A never-returned operation takes effect or not, at random.
 */
export function genLinearizable(rng: Rng, o: GenOptions): HistoryOp[] {
  type Draft = { op: HistoryOp; lp: number; effective: boolean };
  const drafts: Draft[] = [];
  const clock = new Array<number>(o.clients).fill(0);
  for (let n = 0; n < o.ops; n++) {
    const c = rng.int(0, o.clients - 1);
    const call = clock[c]! + rng.int(0, o.maxGap);
    const lp = call + rng.int(0, o.maxDelay);
    const ret = lp + rng.int(0, o.maxDelay);
    const pending = rng.chance(o.pending);
    clock[c] = ret + 1; // after a timeout the client goes on with its next operation
    const key = rng.pick(o.keys);
    const r = rng.int(0, 2);
    const base = { client: c + 1, key, call, ret: pending ? null : ret };
    const op: HistoryOp =
      r === 0
        ? { ...base, op: 'put', value: rng.pick(o.values) }
        : r === 1
          ? { ...base, op: 'get', output: null }
          : { ...base, op: 'cas', from: rng.chance(0.3) ? null : rng.pick(o.values), to: rng.pick(o.values), output: 'fail' };
    drafts.push({ op, lp, effective: !pending || rng.chance(0.5) });
  }
  const state = new Map<string, Json>();
  for (const d of [...drafts].sort((x, y) => x.lp - y.lp)) {
    if (!d.effective) continue;
    const op = d.op;
    const cur = state.get(op.key) ?? null;
    if (op.op === 'put') state.set(op.key, op.value);
    else if (op.op === 'get') op.output = op.ret === null ? null : cur;
    else {
      const ok = canonicalJson(cur) === canonicalJson(op.from);
      if (ok) state.set(op.key, op.to);
      op.output = op.ret === null ? null : ok ? 'ok' : 'fail';
    }
  }
  return drafts.map((d) => d.op);
}

/** A random change to one operation; the result may or may not stay linearizable. */
export function mutate(rng: Rng, ops: HistoryOp[], values: Json[]): HistoryOp[] {
  const out = ops.map((o) => ({ ...o }));
  if (out.length === 0) return out;
  const i = rng.int(0, out.length - 1);
  const op = out[i]!;
  switch (rng.int(0, 4)) {
    case 0:
      if (op.op === 'get') op.output = rng.chance(0.2) ? null : rng.pick(values);
      else if (op.op === 'put') op.value = rng.pick(values);
      else op.output = op.output === 'ok' ? 'fail' : 'ok';
      break;
    case 1: // move the call later, toward (or to) the return
      if (op.ret !== null) op.call = op.call + rng.int(0, op.ret - op.call);
      break;
    case 2: // move the return earlier
      if (op.ret !== null) op.ret = op.call + rng.int(0, op.ret - op.call);
      break;
    case 3: // a pending op claims to have returned
      if (op.ret === null) {
        op.ret = op.call + rng.int(0, 20);
        if (op.op === 'get') op.output = rng.pick(values);
        if (op.op === 'cas') op.output = rng.chance(0.5) ? 'ok' : 'fail';
      } else if (op.op === 'cas') op.from = rng.pick(values);
      break;
    default: // shift a whole op in time
      {
        const d = rng.int(-15, 15);
        op.call = Math.max(0, op.call + d);
        if (op.ret !== null) op.ret = Math.max(op.call, op.ret + d);
      }
      break;
  }
  return out;
}
