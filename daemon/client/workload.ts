/**
 * A Jepsen-style client workload over the HTTP API: concurrent clients doing put, get
 * and compare-and-set on a few keys through random nodes, recording a history in the
 * JSON-lines format of src/lin/history.ts, so that the project's checker (or anyone
 * else's) can decide whether the run was linearizable.
 *
 * Mapping of answers to history entries (docs/api.md):
 *   200 → completed op; 409 on cas → output "fail"; 503 (definitely not applied) and
 *   a connection refused (the request was never sent: a node down) → the op is left
 *   out (it did not happen); 504, a timeout or a connection lost after it was made →
 *   `ret: null` (it may have happened, at any time after its call). Reads that fail
 *   are left out (a read changes nothing).
 *
 * Values are unique strings (`c<client>-<seq>`), stored as their JSON text. The HTTP
 * cas is by index; a value cas {from, to} is a linearizable GET (value, index)
 * followed by PUT ?cas=index, recorded as ONE op from the GET's call to the PUT's
 * return: the PUT takes effect only if the key still has the index the GET saw, i.e.
 * still holds `from` (values are never repeated, so a changed index means a changed
 * value), and that instant lies inside the recorded window.
 */
import type { HistoryOp, Json } from '../../src/lin/history.ts';
import { call, ClientError, enc } from './http.ts';

export interface WorkloadOptions {
  nodes: string[];
  keys: string[];
  clients: number;
  /** Stop issuing new ops at this performance.now() time. */
  until: number;
  /** Per-request timeout (ms): beyond it the op is recorded as unknown. Default 1000. */
  timeoutMs?: number;
  /** Uniform [0,1) source (seeded in tests). */
  random: () => number;
  /** Called for every committed write with its return time (failover measurement). */
  onCommit?: (t: number) => void;
  /** Most ops per client (a bound besides time). Default 100000. */
  maxOpsPerClient?: number;
}

export interface WorkloadResult {
  history: HistoryOp[];
  counts: Record<string, number>;
}

function decodeValue(body: Buffer): Json {
  try {
    return JSON.parse(body.toString('utf8')) as Json;
  } catch {
    return `<raw:${body.toString('hex').slice(0, 32)}>`;
  }
}

export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const history: HistoryOp[] = [];
  const counts: Record<string, number> = {};
  const bump = (k: string) => void (counts[k] = (counts[k] ?? 0) + 1);
  const timeoutMs = o.timeoutMs ?? 1000;
  const pick = <T>(xs: T[]): T => xs[Math.floor(o.random() * xs.length)]!;
  const now = () => performance.now();

  async function client(id: number): Promise<void> {
    let seq = 0;
    const max = o.maxOpsPerClient ?? 100_000;
    for (let n = 0; n < max && now() < o.until; n++) {
      const node = pick(o.nodes);
      const key = pick(o.keys);
      const r = o.random();
      if (r < 0.4) {
        const value = `c${id}-${++seq}`;
        const t0 = now();
        try {
          const res = await call(node, 'PUT', `/v1/kv/${enc(key)}`, { body: JSON.stringify(value), timeoutMs });
          if (res.status === 200) {
            const t1 = now();
            history.push({ client: id, op: 'put', key, value, call: t0, ret: t1 });
            o.onCommit?.(t1);
            bump('put-ok');
          } else if (res.status === 503 || res.status === 400 || res.status === 413) bump(`put-${res.status}`);
          else {
            history.push({ client: id, op: 'put', key, value, call: t0, ret: null });
            bump(`put-${res.status}`);
          }
        } catch (e) {
          if (!(e instanceof ClientError)) throw e;
          // Refused at connect (a node killed or fenced): never sent, so not applied —
          // recorded as nothing, like a 503. Any other failure may have been applied.
          if (e.notSent) bump('put-refused');
          else {
            history.push({ client: id, op: 'put', key, value, call: t0, ret: null });
            bump('put-timeout');
          }
        }
      } else {
        const t0 = now();
        let got: { status: number; value: Json; index: number };
        try {
          const res = await call(node, 'GET', `/v1/kv/${enc(key)}`, { timeoutMs });
          if (res.status !== 200 && res.status !== 404) {
            bump(`get-${res.status}`);
            continue;
          }
          got = { status: res.status, value: res.status === 200 ? decodeValue(res.body) : null, index: Number(res.headers['x-quorumd-index'] ?? 0) };
        } catch (e) {
          if (!(e instanceof ClientError)) throw e;
          bump(e.notSent ? 'get-refused' : 'get-timeout');
          continue;
        }
        if (r < 0.75) {
          history.push({ client: id, op: 'get', key, output: got.value, call: t0, ret: now() });
          bump('get-ok');
          continue;
        }
        // cas from the value just read to a new one.
        const to = `c${id}-${++seq}`;
        const cas = got.status === 404 ? 0 : got.index;
        try {
          const res = await call(node, 'PUT', `/v1/kv/${enc(key)}?cas=${cas}`, { body: JSON.stringify(to), timeoutMs });
          if (res.status === 200 || res.status === 409) {
            const t1 = now();
            history.push({ client: id, op: 'cas', key, from: got.value, to, output: res.status === 200 ? 'ok' : 'fail', call: t0, ret: t1 });
            if (res.status === 200) o.onCommit?.(t1);
            bump(res.status === 200 ? 'cas-ok' : 'cas-fail');
          } else if (res.status === 503) bump('cas-503');
          else {
            history.push({ client: id, op: 'cas', key, from: got.value, to, output: null, call: t0, ret: null });
            bump(`cas-${res.status}`);
          }
        } catch (e) {
          if (!(e instanceof ClientError)) throw e;
          if (e.notSent) bump('cas-refused');
          else {
            history.push({ client: id, op: 'cas', key, from: got.value, to, output: null, call: t0, ret: null });
            bump('cas-timeout');
          }
        }
      }
    }
  }

  await Promise.all(Array.from({ length: o.clients }, (_, i) => client(i + 1)));
  return { history, counts };
}

/** The history as JSON lines (src/lin/history.ts format). */
export function historyToJsonLines(h: HistoryOp[]): string {
  return h.map((op) => JSON.stringify(op)).join('\n') + '\n';
}
