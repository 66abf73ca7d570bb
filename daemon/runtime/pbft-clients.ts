/**
 * Engine pbft: requests of clients that gather f + 1 signed replies themselves
 * (daemon/client/pbft.ts), and the table that makes a retried request execute once.
 *
 * ## Why
 * A PBFT client trusts a result only when f + 1 replicas signed the same one (src/pbft/
 * reply.ts). A client that gets no answer from the node it asked (the node lies, is
 * slow, or crashed) retries on another node. The engine's own duplicate filter works by
 * (origin, request number), and the origin is the node that proposed: the retried
 * request is a new request there, and a put would run twice. The paper's answer
 * (Castro & Liskov, OSDI 1999, §4.1) is a client timestamp per request and, in the
 * replicated state, the last reply sent to each client: a request whose timestamp is
 * not newer than the last executed one of that client is not executed again; the
 * recorded reply is sent instead. Here the client names itself by a random id and
 * numbers its requests (`seq`, increasing per client id).
 *
 * ## The envelope (the request's operation as it goes into the PBFT log)
 *   [PBFT_CLIENT_OP, clientId (8..32 bytes), seq (uint ≥ 1), kind, payload]
 *   kind 0 write: payload = the KV command exactly as src/kv encodeCommand gives it
 *   kind 1 read : payload = the key (text); every replica executes the read at the
 *                 same point of the sequence and signs the value it read (an ordered
 *                 read: one normal-case round, like a write)
 * The client computes the same bytes (`encodeClientOp`) and so the operation digest the
 * replies must name: a node that proposed another operation in the client's name is
 * caught. PBFT_CLIENT_OP is not a KV op code (src/kv/commands.ts), so another engine's
 * state machine would refuse the bytes as a bad command, never misread them.
 *
 * ## The table (part of the replicated state: it travels in PBFT snapshots)
 * clientId → { seq, index, result } of the newest executed write. A write with
 *   seq > last: executes, and is recorded;
 *   seq = last: does not execute again; its answer is the recorded result;
 *   seq < last: does not execute; answered 409 (the client moved on).
 * Bounded to MAX_CLIENTS: the client executed longest ago is dropped first (the order
 * of execution, the same on every replica). A client forgotten this way and retrying
 * a very old request would execute it again: 4096 other clients must have written in
 * between, far beyond one retry's few seconds. Reads are not recorded (they change
 * nothing; a retried read simply reads again).
 */
import { CborWriter, readCbor, utf8Encoder, type Cbor } from '../../src/kv/cbor.ts';
import { checkKeyLike, MAX_COMMAND_BYTES } from '../../src/kv/commands.ts';

/** First element of an envelope: outside the KV op codes (1..15 today; docs say new ones take the next free number). */
export const PBFT_CLIENT_OP = 200;
export const MIN_CLIENT_ID_BYTES = 8;
export const MAX_CLIENT_ID_BYTES = 32;
export const MAX_CLIENTS = 4096;

export type ClientOpKind = 'write' | 'read';
export interface ClientRef {
  id: Uint8Array;
  seq: number;
}
export interface ClientOp extends ClientRef {
  kind: ClientOpKind;
  /** write: the encoded KV command. */
  command?: Uint8Array;
  /** read: the key. */
  key?: string;
}

const w = new CborWriter(64);

/** Checks a client reference (from an HTTP query or the embeddable client); returns the problem or null. */
export function checkClientRef(ref: { id: unknown; seq: unknown }): string | null {
  if (!(ref.id instanceof Uint8Array) || ref.id.length < MIN_CLIENT_ID_BYTES || ref.id.length > MAX_CLIENT_ID_BYTES) {
    return `client: expected ${MIN_CLIENT_ID_BYTES}..${MAX_CLIENT_ID_BYTES} bytes of client id (hex in HTTP), got ${ref.id instanceof Uint8Array ? `${ref.id.length} bytes` : typeof ref.id}`;
  }
  if (typeof ref.seq !== 'number' || !Number.isSafeInteger(ref.seq) || ref.seq < 1) return `seq: expected an integer ≥ 1, got ${String(ref.seq)}`;
  return null;
}

/** The operation bytes of a client request (what the replicas sign the digest of). */
export function encodeClientOp(op: ClientOp): Uint8Array {
  const bad = checkClientRef(op);
  if (bad) throw new RangeError(bad);
  w.reset().array(5).uint(PBFT_CLIENT_OP).bytes(op.id).uint(op.seq);
  if (op.kind === 'write') {
    if (!(op.command instanceof Uint8Array)) throw new TypeError('encodeClientOp: a write carries the encoded KV command');
    w.uint(0).bytes(op.command);
  } else {
    const e = checkKeyLike(op.key, 'key');
    if (e) throw new RangeError(e.message);
    w.uint(1).text(op.key!);
  }
  return w.finish();
}

/** Whether log bytes are an envelope (cheap: the first two bytes). */
export function isClientOp(data: Uint8Array): boolean {
  // 0x85 = array of 5; 0x18 0xc8 = uint 200 (one-byte follow-up).
  return data.length > 3 && data[0] === 0x85 && data[1] === 0x18 && data[2] === PBFT_CLIENT_OP;
}

/** Decodes an envelope; a string names what is wrong. Never throws. */
export function decodeClientOp(data: Uint8Array): ClientOp | string {
  if (data.length > MAX_COMMAND_BYTES + 64) return `client request: ${data.length} bytes, at most ${MAX_COMMAND_BYTES + 64} expected`;
  const r = readCbor(data);
  if (!r.ok) return `client request: not valid CBOR: ${r.error}`;
  const a = r.value;
  if (!Array.isArray(a) || a.length !== 5 || a[0] !== PBFT_CLIENT_OP) return 'client request: expected [200, clientId, seq, kind, payload]';
  const [, id, seq, kind, payload] = a as [Cbor, Cbor, Cbor, Cbor, Cbor];
  const bad = checkClientRef({ id, seq });
  if (bad) return `client request: ${bad}`;
  if (kind === 0) {
    if (!(payload instanceof Uint8Array)) return 'client request: a write carries the KV command as bytes';
    return { id: id as Uint8Array, seq: seq as number, kind: 'write', command: payload };
  }
  if (kind === 1) {
    const e = checkKeyLike(payload, 'key');
    if (e) return `client request: ${e.message}`;
    return { id: id as Uint8Array, seq: seq as number, kind: 'read', key: payload as string };
  }
  return `client request: kind must be 0 (write) or 1 (read), got ${String(kind)}`;
}

export function clientKey(id: Uint8Array, seq: number): string {
  return `${Buffer.from(id).toString('hex')}/${seq}`;
}

interface Row {
  id: Uint8Array;
  seq: number;
  index: number;
  result: Uint8Array;
}

export type ClientVerdict =
  | { run: true }
  | { run: false; recorded: Uint8Array }
  | { run: false; stale: number };

/** The replicated last-write-per-client table (see the header). Deterministic: equal histories give equal bytes. */
export class ClientTable {
  /** Insertion order = execution order (a row moves to the end when it is updated). */
  private readonly rows = new Map<string, Row>();

  get size(): number {
    return this.rows.size;
  }

  /** What to do with a write of `ref` now. */
  judge(ref: ClientRef): ClientVerdict {
    const row = this.rows.get(Buffer.from(ref.id).toString('hex'));
    if (!row || ref.seq > row.seq) return { run: true };
    if (ref.seq === row.seq) return { run: false, recorded: row.result };
    return { run: false, stale: row.seq };
  }

  /** Records the write of `ref` executed at `index` with `result` (the encoded ClientResult). */
  record(ref: ClientRef, index: number, result: Uint8Array): void {
    const k = Buffer.from(ref.id).toString('hex');
    this.rows.delete(k);
    this.rows.set(k, { id: new Uint8Array(ref.id), seq: ref.seq, index, result });
    if (this.rows.size > MAX_CLIENTS) this.rows.delete(this.rows.keys().next().value!);
  }

  /** CBOR [[id, seq, index, result], ...] in execution order. */
  encode(): Uint8Array {
    let size = 16;
    for (const r of this.rows.values()) size += r.id.length + r.result.length + 32;
    const out = new CborWriter(size);
    out.array(this.rows.size);
    for (const r of this.rows.values()) out.array(4).bytes(r.id).uint(r.seq).uint(r.index).bytes(r.result);
    return out.finish();
  }

  static decode(v: Cbor): ClientTable | string {
    if (!Array.isArray(v) || v.length > MAX_CLIENTS) return `client table: expected an array of at most ${MAX_CLIENTS} rows`;
    const t = new ClientTable();
    let prev = 0;
    for (let i = 0; i < v.length; i++) {
      const row = v[i];
      if (!Array.isArray(row) || row.length !== 4) return `client table row ${i}: expected [id, seq, index, result]`;
      const [id, seq, index, result] = row as [Cbor, Cbor, Cbor, Cbor];
      const bad = checkClientRef({ id, seq });
      if (bad) return `client table row ${i}: ${bad}`;
      if (typeof index !== 'number' || index < prev || !(result instanceof Uint8Array)) return `client table row ${i}: expected a non-decreasing index and result bytes`;
      prev = index;
      const k = Buffer.from(id as Uint8Array).toString('hex');
      if (t.rows.has(k)) return `client table row ${i}: client ${k} twice`;
      t.rows.set(k, { id: id as Uint8Array, seq: seq as number, index, result });
    }
    return t;
  }
}

// ---------------------------------------------------------------------------
// PBFT snapshots: the KV state and the client table

const SNAP_MAGIC = 'quorumd-pbft-state';

/**
 * The application state a PBFT checkpoint covers. Without clients recorded, without
 * fence votes and without clock reports it is the KV snapshot itself (byte for byte as
 * before); with clients only, [magic, 1, kv snapshot, table]; with fence votes
 * (daemon/runtime/pbft-fencing.ts, the tally's own CBOR bytes), [magic, 2, kv snapshot,
 * table, tally bytes]; with the agreed lock clock (pbft-time.ts, its own CBOR bytes),
 * [magic, 3, kv snapshot, table, tally bytes or null, clock bytes].
 */
export function encodePbftState(kvSnapshot: Uint8Array, table: ClientTable, fences?: Uint8Array, clock?: Uint8Array): Uint8Array {
  if (table.size === 0 && fences === undefined && clock === undefined) return kvSnapshot;
  const t = table.encode();
  const version = clock ? 3 : fences ? 2 : 1;
  const out = new CborWriter(kvSnapshot.length + t.length + 32);
  out.array(version + 3).text(SNAP_MAGIC).uint(version).bytes(kvSnapshot);
  const head = out.finish();
  // The table is already CBOR: append it as the 4th element (and the tally, the clock as bytes after it).
  const after = new CborWriter((fences?.length ?? 0) + (clock?.length ?? 0) + 32);
  if (fences) after.bytes(fences);
  else if (clock) after.null();
  if (clock) after.bytes(clock);
  const tail = version > 1 ? after.finish() : new Uint8Array(0);
  const all = new Uint8Array(head.length + t.length + tail.length);
  all.set(head, 0);
  all.set(t, head.length);
  all.set(tail, head.length + t.length);
  return all;
}

const MAGIC_BYTES = utf8Encoder.encode(SNAP_MAGIC);

/** Splits a PBFT snapshot into the KV snapshot, the client table, the fence tally's and the agreed clock's bytes (if any); a string names what is wrong. */
export function decodePbftState(data: Uint8Array): { kv: Uint8Array; table: ClientTable; fences?: Uint8Array; clock?: Uint8Array } | string {
  // 0x84 / 0x85 / 0x86 (array of 4 / 5 / 6), then the magic as text (0x72 = text of 18 bytes).
  const wrapped = data.length > 2 + MAGIC_BYTES.length && (data[0] === 0x84 || data[0] === 0x85 || data[0] === 0x86) && data[1] === 0x60 + MAGIC_BYTES.length && MAGIC_BYTES.every((b, i) => data[2 + i] === b);
  if (!wrapped) return { kv: data, table: new ClientTable() };
  const r = readCbor(data);
  if (!r.ok) return `pbft snapshot: not valid CBOR: ${r.error}`;
  const a = r.value;
  const ok =
    Array.isArray(a) &&
    a[2] instanceof Uint8Array &&
    ((a.length === 4 && a[1] === 1) ||
      (a.length === 5 && a[1] === 2 && a[4] instanceof Uint8Array) ||
      (a.length === 6 && a[1] === 3 && (a[4] === null || a[4] instanceof Uint8Array) && a[5] instanceof Uint8Array));
  if (!ok) return 'pbft snapshot: expected [magic, 1, kv snapshot, client table], [magic, 2, kv snapshot, client table, fence tally] or [magic, 3, kv snapshot, client table, fence tally or null, clock]';
  const t = ClientTable.decode(a[3]!);
  if (typeof t === 'string') return `pbft snapshot: ${t}`;
  const fences = a.length >= 5 && a[4] instanceof Uint8Array ? a[4] : undefined;
  const clock = a.length === 6 ? (a[5] as Uint8Array) : undefined;
  return { kv: a[2] as Uint8Array, table: t, ...(fences ? { fences } : {}), ...(clock ? { clock } : {}) };
}
