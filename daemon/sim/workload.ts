/**
 * The simulated clients: `clients` concurrent clients issuing put / get / cas on a few
 * keys, each through a random live data node, recording a history in the format of
 * src/lin (history.ts) for the linearizability check at the end.
 *
 * Values: every put writes a value no other put ever wrote ("<client>.<n>"). That
 * makes the store's modify-index CAS a value CAS: a key's modify index is the log
 * index of the put that wrote its current value, and with unique values that put is
 * identified by the value itself. So "linearizable get → (V, M); put(W, cas=M)"
 * succeeds exactly when the key still holds V at the put's linearization point —
 * it is `cas(from: V, to: W)` in the checker's model (absent = null, cas=0). The get
 * is recorded too, as an ordinary get.
 *
 * Recording (docs/api.md status rule): 200 → the op with its return time; 409 → a failed
 * cas; 503 → the op did not happen, omitted; 504 or no answer before the client's own
 * deadline (the node died) → `ret: null` (may or may not have happened). Failed or
 * timed-out gets are omitted (a read has no effect).
 */
import type { HistoryOp } from '../../src/lin/index.ts';
import type { Rng } from '../../src/rng.ts';
import { encodeCommand } from '../../src/kv/index.ts';
import type { Scheduler } from '../../firmware-sim/scheduler.ts';
import type { NodeId } from '../../src/types.ts';
import { Status, type ClientResult, type EngineRuntime } from '../runtime/index.ts';

/** What the workload needs of a node: the runtime's client API (and, for readYourWrites, its count of writes answered unapplied). */
export type WorkloadNode = Pick<EngineRuntime, 'id' | 'put' | 'get'> & Partial<Pick<EngineRuntime, 'answeredUnapplied'>>;
import { hashBytes } from './hash.ts';

export interface WorkloadOptions {
  clients: number;
  keys: readonly string[];
  /** Pause between a client's operations (ms of virtual time), uniform. */
  thinkMinMs: number;
  thinkMaxMs: number;
  /** A client gives up on an answer after this long (ms) and records it as unknown. */
  clientTimeoutMs: number;
  /**
   * Reads through ReadIndex (default) or `stale` local reads — the latter only to show
   * that the linearizability check catches stale reads (a planted bug in the tests).
   */
  staleReads?: boolean;
  /**
   * After every put answered 200, a `stale` read of the same key on the same node, at
   * once: it must see that write or a later one (docs/api.md: a node answers a write
   * once it has applied it itself). Not part of the history (a stale read is not
   * linearizable); misses are counted in `readYourWrites`. Off by default (it adds
   * requests, so the runs of a seed differ with it).
   */
  readYourWrites?: boolean;
  /** Share of operations: puts, gets; the rest are cas. */
  putShare: number;
  getShare: number;
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  clients: 4,
  keys: ['a', 'b', 'c'],
  thinkMinMs: 5,
  thinkMaxMs: 60,
  clientTimeoutMs: 3000,
  putShare: 0.35,
  getShare: 0.4,
};

export interface AckedWrite {
  index: number;
  dataHash: number;
  what: string;
}

/**
 * One client request as a recorder sees it (the timeline's client bars): sent at
 * `callUs`, answered (or given up on) at `retUs`, both virtual µs. A cas shows as its
 * get and then its conditional put (kind 'cas'). `value`: what a put wrote or a get read.
 */
export interface OpRecord {
  client: number;
  node: NodeId;
  kind: 'put' | 'get' | 'cas';
  key: string;
  callUs: number;
  retUs: number;
  outcome: OpOutcome;
  value: string | null;
}

/**
 * 'ok' (200), 'not-found' (404 get), 'conflict' (409 cas), 'unavailable' (503: did not
 * happen), 'unknown' (504: may have happened), 'timeout' (no answer before the client's
 * own deadline: may have happened), 'rejected' (any other status, e.g. 400: a bug in the
 * workload).
 */
export type OpOutcome = 'ok' | 'not-found' | 'conflict' | 'unavailable' | 'unknown' | 'timeout' | 'rejected';

export interface WorkloadStats {
  issued: number;
  ok: number;
  conflict: number;
  unavailable: number;
  unknown: number;
  noAnswer: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * UTF-8 of a value, as TextEncoder gives it. The workload's values ("<client>.<seq>")
 * are ASCII, whose UTF-8 is the char codes themselves: built here, because
 * TextEncoder.encode is a native call per short string (1.4 % of the 4-client
 * bench row). Anything else goes to TextEncoder, so the bytes are always the same.
 */
export function utf8(s: string): Uint8Array {
  const n = s.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return enc.encode(s);
    out[i] = c;
  }
  return out;
}

/** The text of UTF-8 bytes, as TextDecoder gives it: ASCII (every byte < 0x80) by char codes, anything else (or long) by TextDecoder. */
export function text(b: Uint8Array): string {
  const n = b.length;
  if (n > 64) return dec.decode(b);
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c > 0x7f) return dec.decode(b);
    s += String.fromCharCode(c);
  }
  return s;
}

function outcomeOf(res: ClientResult): OpOutcome {
  switch (res.status) {
    case Status.OK:
      return 'ok';
    case Status.NOT_FOUND:
      return 'not-found';
    case Status.CONFLICT:
      return 'conflict';
    case Status.UNAVAILABLE:
      return 'unavailable';
    case Status.UNKNOWN:
      return 'unknown';
    default:
      return 'rejected';
  }
}

function readValue(res: ClientResult): string | null {
  return res.status === Status.OK && res.value ? text(res.value) : null;
}

export class Workload {
  readonly history: HistoryOp[] = [];
  readonly acked: AckedWrite[] = [];
  readonly stats: WorkloadStats = { issued: 0, ok: 0, conflict: 0, unavailable: 0, unknown: 0, noAnswer: 0 };
  /** With opts.readYourWrites: the reads made, those skipped (see checkOwnWrite), those that did not see the write just answered, and the first 20 of these. */
  readonly readYourWrites = { checked: 0, skipped: 0, missed: 0, misses: [] as string[] };
  private stopAtUs = 0;
  private seq = 0;
  private inFlight = 0;
  /**
   * Told of every finished request (the simulation timeline, daemon/sim/timeline).
   * Only reads: the history, the stats and every random draw are the same without it.
   */
  onOp: ((op: OpRecord) => void) | null = null;
  /**
   * How a request reaches node `node`'s process: at once by default. The cluster holds
   * it while that process is stalled (firmware-sim Board.stall), as a request waits in
   * the socket of a stopped process: it is handled when the process resumes.
   */
  deliver: ((node: NodeId, fn: () => void) => void) | null = null;

  constructor(
    private readonly sched: Scheduler,
    private readonly rng: Rng,
    /** Live data nodes (current incarnation, running) to send requests to. */
    private readonly liveNodes: () => WorkloadNode[],
    private readonly opts: WorkloadOptions = DEFAULT_WORKLOAD,
  ) {}

  get pending(): number {
    return this.inFlight;
  }

  /** Starts every client; no new operation starts at or after `stopAtUs`. */
  start(stopAtUs: number): void {
    this.stopAtUs = stopAtUs;
    for (let c = 1; c <= this.opts.clients; c++) this.next(c);
  }

  private next(client: number): void {
    const think = this.rng.int(this.opts.thinkMinMs, this.opts.thinkMaxMs);
    this.sched.after(think * 1000, () => this.runOne(client));
  }

  private runOne(client: number): void {
    if (this.sched.now >= this.stopAtUs) return;
    const nodes = this.liveNodes();
    if (nodes.length === 0) return this.next(client);
    const node = this.rng.pick(nodes);
    const key = this.rng.pick(this.opts.keys);
    const r = this.rng.float();
    if (r < this.opts.putShare) this.put(client, node, key, undefined, () => this.next(client));
    else if (r < this.opts.putShare + this.opts.getShare) this.get(client, node, key, () => this.next(client));
    else this.cas(client, node, key, () => this.next(client));
  }

  /**
   * Calls `fn` with a callback that fires at most once: with the node's answer, or
   * undefined after the client timeout. client/node/kind/key/value only describe the
   * request to `onOp`.
   */
  private request(
    client: number,
    node: NodeId,
    kind: OpRecord['kind'],
    key: string,
    value: string | null,
    fn: (cb: (r: ClientResult) => void) => void,
    then: (r: ClientResult | undefined) => void,
  ): void {
    let done = false;
    this.inFlight++;
    this.stats.issued++;
    const callUs = this.sched.now;
    const timer = this.sched.after(this.opts.clientTimeoutMs * 1000, () => {
      if (done) return;
      done = true;
      this.inFlight--;
      this.stats.noAnswer++;
      if (this.onOp !== null) this.onOp({ client, node, kind, key, callUs, retUs: this.sched.now, outcome: 'timeout', value });
      then(undefined);
    });
    // The answer callback is written inline as an argument, not bound to a name: under
    // tsx (how the bench and the tests run the simulator) esbuild's keepNames wraps every
    // named function value in an Object.defineProperty call (~0.3 µs), once per request.
    this.send(node, fn, (res: ClientResult) => {
      if (done) return;
      done = true;
      timer.cancel();
      this.inFlight--;
      if (res.status === Status.OK || res.status === Status.NOT_FOUND) this.stats.ok++;
      else if (res.status === Status.CONFLICT) this.stats.conflict++;
      else if (res.status === Status.UNAVAILABLE) this.stats.unavailable++;
      else this.stats.unknown++;
      if (this.onOp !== null) this.onOp({ client, node, kind, key, callUs, retUs: this.sched.now, outcome: outcomeOf(res), value: kind === 'get' ? readValue(res) : value });
      then(res);
    });
  }

  /** Calls `fn(answer)` now, or through `deliver` (a stalled process gets it when it runs again). */
  private send(node: NodeId, fn: (cb: (r: ClientResult) => void) => void, answer: (r: ClientResult) => void): void {
    if (this.deliver === null) fn(answer);
    else this.deliver(node, () => fn(answer));
  }

  private newValue(client: number): string {
    return `${client}.${++this.seq}`;
  }

  /** A put (cas undefined) or the write half of a cas (cas = expected modify index, from = expected value). */
  put(client: number, node: WorkloadNode, key: string, cas: { index: number; from: string | null } | undefined, after: () => void): void {
    const value = this.newValue(client);
    const call = this.sched.now;
    const bytes = utf8(value);
    const data = encodeCommand(cas ? { op: 'put', key, value: bytes, cas: cas.index } : { op: 'put', key, value: bytes });
    const dataHash = data instanceof Uint8Array ? hashBytes(data) : 0;
    const unapplied0 = node.answeredUnapplied ?? 0;
    this.request(
      client,
      node.id,
      cas ? 'cas' : 'put',
      key,
      value,
      (cb) => node.put(key, bytes, cas ? { cas: cas.index } : {}, cb),
      (res) => {
        const ret = res && res.status !== Status.UNKNOWN ? this.sched.now : null;
        if (res && res.status !== Status.OK && res.status !== Status.CONFLICT && res.status !== Status.UNKNOWN) {
          // 503 (or a definite error): did not happen.
          return after();
        }
        if (res && res.status === Status.OK && res.index !== undefined) {
          this.acked.push({ index: res.index, dataHash, what: `put ${key}=${value} via node ${node.id}` });
          if (this.opts.readYourWrites) this.checkOwnWrite(node, key, value, res.index, unapplied0);
        }
        if (cas) {
          const output = ret === null ? null : res!.status === Status.OK ? 'ok' : 'fail';
          this.history.push({ client, op: 'cas', key, from: cas.from, to: value, output, call, ret });
        } else {
          if (res && res.status === Status.CONFLICT) return after(); // impossible without cas; nothing to record
          this.history.push({ client, op: 'put', key, value, call, ret });
        }
        after();
      },
    );
  }

  /** readYourWrites: a stale read of `key` on `node` right after it answered the put of `value` at `index`. */
  private checkOwnWrite(node: WorkloadNode, key: string, value: string, index: number, unapplied0: number): void {
    // The node answered a forwarded write before applying it (its request deadline
    // passed first; it logs so): the one documented exception.
    if ((node.answeredUnapplied ?? 0) !== unapplied0) {
      this.readYourWrites.skipped++;
      return;
    }
    this.send(node.id, (cb) => node.get(key, { stale: true }, cb), (r: ClientResult) => {
      this.readYourWrites.checked++;
      const seen = r.status === Status.OK ? (r.index ?? 0) : -1;
      if (seen >= index) return;
      this.readYourWrites.missed++;
      if (this.readYourWrites.misses.length < 20) {
        this.readYourWrites.misses.push(`at ${(this.sched.now / 1000).toFixed(1)} ms node ${node.id} answered put ${key}=${value} (index ${index}); a stale read there right after gave ${r.status}${r.status === Status.OK ? ` ${readValue(r)} (index ${seen})` : ''}`);
      }
    });
  }

  get(client: number, node: WorkloadNode, key: string, after: (r: { value: string | null; index: number } | undefined) => void): void {
    const call = this.sched.now;
    this.request(
      client,
      node.id,
      'get',
      key,
      null,
      (cb) => node.get(key, this.opts.staleReads ? { stale: true } : {}, cb),
      (res) => {
        if (!res || (res.status !== Status.OK && res.status !== Status.NOT_FOUND)) return after(undefined);
        const value = res.status === Status.OK && res.value ? text(res.value) : null;
        this.history.push({ client, op: 'get', key, output: value, call, ret: this.sched.now });
        after({ value, index: res.status === Status.OK ? (res.index ?? 0) : 0 });
      },
    );
  }

  cas(client: number, node: WorkloadNode, key: string, after: () => void): void {
    this.get(client, node, key, (r) => {
      if (!r) return after();
      // The write goes through the same node if it is still alive, else another live one.
      const nodes = this.liveNodes();
      if (nodes.length === 0) return after();
      const target = nodes.includes(node) ? node : this.rng.pick(nodes);
      this.put(client, target, key, { index: r.index, from: r.value }, after);
    });
  }
}
