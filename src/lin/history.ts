/**
 * Client histories for the linearizability checker: the operation type and the
 * parser of the JSON-lines contract.
 *
 * One JSON object per line (blank lines are skipped; other fields are ignored):
 *   {"client":1,"op":"put","key":"k","value":V,"call":t0,"ret":t1|null}
 *   {"client":1,"op":"get","key":"k","output":V|null,"call":t0,"ret":t1|null}
 *   {"client":1,"op":"cas","key":"k","from":V|null,"to":V,"output":"ok"|"fail","call":t0,"ret":t1|null}
 * Values are any JSON values, compared structurally (object key order does not
 * matter). Every key starts as null; a get that returns null saw the key absent.
 * `ret: null` means the operation never returned (timeout, crash, HTTP 504): it may
 * or may not have taken effect, at any time after its call; its `output` is ignored.
 * Times are numbers on one time line; an operation A precedes B iff A.ret < B.call
 * (equal times count as concurrent).
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface OpBase {
  client: number;
  key: string;
  call: number;
  ret: number | null;
  /** Line in the parsed text (1-based), for messages. */
  line?: number;
}

export type PutOp = OpBase & { op: 'put'; value: Json };
export type GetOp = OpBase & { op: 'get'; output: Json };
export type CasOp = OpBase & { op: 'cas'; from: Json; to: Json; output: 'ok' | 'fail' | null };
export type HistoryOp = PutOp | GetOp | CasOp;

export type ParseResult = { ops: HistoryOp[] } | { error: string; line: number; field: string };

/** Thrown by `validateOp` for a malformed operation given in code (not parsed from text). */
export class HistoryError extends TypeError {
  override readonly name = 'HistoryError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function isJson(v: unknown, depth = 0): v is Json {
  if (depth > 64) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1));
  if (typeof v === 'object') return Object.values(v as object).every((x) => isJson(x, depth + 1));
  return false;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? s.slice(0, 40) + '…' : s;
}

/**
 * Checks one operation object and returns it typed; throws HistoryError naming the
 * field and what was expected. Shared by the parser and `checkLinearizable`.
 */
export function validateOp(o: unknown): HistoryOp {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new HistoryError('op', `expected a JSON object, got ${show(o)}`);
  const r = o as Record<string, unknown>;
  const fail = (field: string, expected: string): never => {
    throw new HistoryError(field, `field "${field}": expected ${expected}, got ${show(r[field])}`);
  };
  if (typeof r.client !== 'number' || !Number.isFinite(r.client)) fail('client', 'a number');
  if (r.op !== 'put' && r.op !== 'get' && r.op !== 'cas') fail('op', '"put", "get" or "cas"');
  if (typeof r.key !== 'string') fail('key', 'a string');
  if (typeof r.call !== 'number' || !Number.isFinite(r.call)) fail('call', 'a finite number (call time)');
  if (r.ret !== null && (typeof r.ret !== 'number' || !Number.isFinite(r.ret))) fail('ret', 'a finite number (return time) or null');
  if (r.ret !== null && (r.ret as number) < (r.call as number)) fail('ret', `a time ≥ call (${String(r.call)})`);
  const base: OpBase = { client: r.client as number, key: r.key as string, call: r.call as number, ret: r.ret as number | null };
  if (typeof r.line === 'number') base.line = r.line;
  const pending = r.ret === null;
  switch (r.op) {
    case 'put':
      if (!('value' in r) || !isJson(r.value)) fail('value', 'a JSON value');
      return { ...base, op: 'put', value: r.value as Json };
    case 'get':
      if (pending) return { ...base, op: 'get', output: null };
      if (!('output' in r) || !isJson(r.output)) fail('output', 'the value read (JSON, null when absent)');
      return { ...base, op: 'get', output: r.output as Json };
    default:
      if (!('from' in r) || !isJson(r.from)) fail('from', 'the expected JSON value (null = absent)');
      if (!('to' in r) || !isJson(r.to)) fail('to', 'the new JSON value');
      if (!pending && r.output !== 'ok' && r.output !== 'fail') fail('output', '"ok" or "fail"');
      return { ...base, op: 'cas', from: r.from as Json, to: r.to as Json, output: pending ? null : (r.output as 'ok' | 'fail') };
  }
}

/** Parses a JSON-lines history. Pure; never throws. */
export function parseHistory(text: string): ParseResult {
  if (typeof text !== 'string') return { error: `history: expected text, got ${typeof text}`, line: 0, field: 'text' };
  const ops: HistoryOp[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const src = lines[i]!.trim();
    if (src === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(src);
    } catch (e) {
      return { error: `line ${i + 1}: not valid JSON (${(e as Error).message})`, line: i + 1, field: 'json' };
    }
    try {
      const op = validateOp(o);
      op.line = i + 1;
      ops.push(op);
    } catch (e) {
      if (e instanceof HistoryError) return { error: `line ${i + 1}: ${e.message}`, line: i + 1, field: e.field };
      throw e;
    }
  }
  return { ops };
}

/** Structural identity of a JSON value: object keys sorted, so {a,b} equals {b,a}. */
export function canonicalJson(v: Json): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k]!)}`).join(',')}}`;
}

/** A short human description of an operation, for explanations. */
export function describeOp(op: HistoryOp, index?: number): string {
  const where = op.line !== undefined ? `line ${op.line}` : index !== undefined ? `op #${index}` : 'op';
  const when = `[${op.call}, ${op.ret === null ? 'never returned' : op.ret}]`;
  let what: string;
  if (op.op === 'put') what = `put(${show(op.value)})`;
  else if (op.op === 'get') what = op.ret === null ? 'get() → ?' : `get() → ${show(op.output)}`;
  else what = `cas(${show(op.from)} → ${show(op.to)}) → ${op.ret === null ? '?' : op.output}`;
  return `${where}: client ${op.client} ${what} ${when}`;
}
