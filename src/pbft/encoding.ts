/**
 * PBFT's byte formats: what a signature covers, the nested structures that travel as
 * byte strings inside wire messages (requests, certificates, VIEW-CHANGE and
 * NEW-VIEW contents), and what the engine persists (slot records, the execution
 * state, the snapshot's engine part). All CBOR (the project's strict subset,
 * src/wire/cbor.ts), shortest form, so equal values give equal bytes — which matters:
 * digests and signatures are computed over these bytes by every replica alike.
 *
 * Signed contents start with a domain number (the MsgType of the message kind), so a
 * signature for one kind can never be passed off as another: PRE-PREPARE [71, view,
 * seq, digest], PREPARE [72, view, seq, digest, replica], COMMIT [73, view, seq,
 * digest, replica], CHECKPOINT [74, seq, digest, replica], request [70, origin, reqNo,
 * kind, op]; a VIEW-CHANGE (75) and a NEW-VIEW (76) sign their whole payload, which
 * starts with its domain number too. Destination, envelope and sender of the frame are
 * not signed: certificates are forwarded by other replicas.
 *
 * Decoders never throw and never allocate more than their input allows (the Reader's
 * bounds); each returns the decoded value or a string naming what is wrong. A decoded
 * structure is well-formed, not yet trusted: signatures are checked by the engine.
 */
import { createHash } from 'node:crypto';
import { CborError, CborWriter, Reader } from '../wire/cbor.ts';
import { EntryType, MsgType } from '../wire/messages.ts';
import { MAX_NODE_ID, type Index, type NodeId, type Term } from '../types.ts';

export const DIGEST_BYTES = 32;
/** The null request's digest (a no-op the primary proposes, or a gap a NEW-VIEW fills): no SHA-256 output is all zeros in practice. */
export const NULL_DIGEST: Uint8Array = new Uint8Array(DIGEST_BYTES);

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/** A Map key for a digest (latin1 characters of its bytes; cheaper than hex). */
export function dkey(d: Uint8Array): string {
  return String.fromCharCode.apply(null, d as unknown as number[]);
}

export function isNullDigest(d: Uint8Array): boolean {
  if (d.length !== DIGEST_BYTES) return false;
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) return false;
  return true;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const w = new CborWriter(256);

// ---------------------------------------------------------------------------
// Signed contents

export function ppSigned(view: Term, seq: Index, digest: Uint8Array): Uint8Array {
  return w.reset().array(4).uint(MsgType.PbftPrePrepare).uint(view).uint(seq).bytes(digest).finish();
}
export function prepareSigned(view: Term, seq: Index, digest: Uint8Array, replica: NodeId): Uint8Array {
  return w.reset().array(5).uint(MsgType.PbftPrepare).uint(view).uint(seq).bytes(digest).uint(replica).finish();
}
export function commitSigned(view: Term, seq: Index, digest: Uint8Array, replica: NodeId): Uint8Array {
  return w.reset().array(5).uint(MsgType.PbftCommit).uint(view).uint(seq).bytes(digest).uint(replica).finish();
}
export function checkpointSigned(seq: Index, digest: Uint8Array, replica: NodeId): Uint8Array {
  return w.reset().array(4).uint(MsgType.PbftCheckpoint).uint(seq).bytes(digest).uint(replica).finish();
}

/**
 * The digest of a checkpoint: over the sequence number, the application's snapshot
 * (its SHA-256) and the engine's execution state (the duplicate filter), so a replica
 * that installs a checkpoint by state transfer gets exactly what 2f + 1 replicas signed.
 */
export function checkpointDigest(seq: Index, appData: Uint8Array, exec: Uint8Array): Uint8Array {
  return sha256(w.reset().array(4).uint(MsgType.PbftCheckpoint + 100).uint(seq).bytes(sha256(appData)).bytes(sha256(exec)).finish());
}

// ---------------------------------------------------------------------------
// Decoding helpers

class Bad extends Error {}

/** A Reader with typed, range-checked reads; every problem throws Bad (caught by `decode`). */
class Dec {
  private readonly r: Reader;
  constructor(
    private readonly data: Uint8Array,
    private readonly what: string,
  ) {
    this.r = new Reader(data, 0, data.length);
  }
  arr(name: string, min: number, max: number): number {
    const n = this.r.arrayHead();
    if (n < min || n > max) throw new Bad(`${this.what} ${name}: expected ${min === max ? min : `${min}..${max}`} items, got ${n}`);
    return n;
  }
  uint(name: string, lo = 0, hi = Number.MAX_SAFE_INTEGER): number {
    const v = this.r.value(0);
    if (typeof v !== 'number' || v < lo || v > hi) throw new Bad(`${this.what} ${name}: expected an integer ${lo}..${hi}`);
    return v;
  }
  bytes(name: string, min: number, max: number): Uint8Array {
    const v = this.r.value(0);
    if (!(v instanceof Uint8Array) || v.length < min || v.length > max) {
      throw new Bad(`${this.what} ${name}: expected a byte string of ${min === max ? min : `${min}..${max}`} bytes`);
    }
    return v;
  }
  end(): void {
    if (this.r.pos !== this.data.length) throw new Bad(`${this.what}: ${this.data.length - this.r.pos} bytes after the value`);
  }
}

function decode<T>(data: unknown, what: string, f: (d: Dec) => T): T | string {
  if (!(data instanceof Uint8Array)) return `${what}: expected bytes`;
  try {
    const d = new Dec(data, what);
    const v = f(d);
    d.end();
    return v;
  } catch (e) {
    if (e instanceof Bad) return e.message;
    if (e instanceof CborError) return `${what}: ${e.message}`;
    return `${what}: internal decoder error: ${String(e)}`;
  }
}

// ---------------------------------------------------------------------------
// Requests

/** Request kinds: a command for the state machine, or a read marker (ordered, executes nothing). */
export type RequestKind = EntryType.Normal | EntryType.Noop;

export interface RequestBody {
  origin: NodeId;
  /** Per-origin request number, ≥ 1; a duplicate filter executes each (origin, reqNo) once. */
  reqNo: number;
  kind: RequestKind;
  op: Uint8Array;
  sig: Uint8Array;
}

export function requestSigned(origin: NodeId, reqNo: number, kind: RequestKind, op: Uint8Array): Uint8Array {
  return w.reset().array(5).uint(MsgType.PbftRequest).uint(origin).uint(reqNo).uint(kind).bytes(op).finish();
}

export function encodeRequest(r: RequestBody): Uint8Array {
  return w.reset().array(5).uint(r.origin).uint(r.reqNo).uint(r.kind).bytes(r.op).bytes(r.sig).finish();
}

export interface Limits {
  /** The signature length of the scheme in use. */
  sigBytes: number;
  maxOpBytes: number;
  /** Most certificates / O entries a structure may hold (the window L). */
  maxItems: number;
  /** Replicas in the group (bounds signature lists). */
  n: number;
}

export function decodeRequest(data: Uint8Array, lim: Limits): RequestBody | string {
  return decode(data, 'request', (d) => {
    d.arr('', 5, 5);
    const origin = d.uint('origin', 1, MAX_NODE_ID);
    const reqNo = d.uint('reqNo', 1);
    const kind = d.uint('kind', 0, 1) as RequestKind;
    const op = d.bytes('op', 0, lim.maxOpBytes);
    if (kind === EntryType.Noop && op.length > 0) throw new Bad('request op: a read marker carries no operation');
    const sig = d.bytes('sig', lim.sigBytes, lim.sigBytes);
    return { origin, reqNo, kind, op, sig };
  });
}

// ---------------------------------------------------------------------------
// Signature lists: flat [replica, sig, replica, sig, ...]

export interface SigOf {
  replica: NodeId;
  sig: Uint8Array;
}

/** Appends a flat [replica, sig, ...] list to the shared writer. */
function writeSigs(list: readonly SigOf[]): void {
  w.array(list.length * 2);
  for (const s of list) w.uint(s.replica).bytes(s.sig);
}

export function encodeSigList(list: readonly SigOf[]): Uint8Array {
  w.reset();
  writeSigs(list);
  return w.finish();
}

function readSigList(d: Dec, name: string, lim: Limits): SigOf[] {
  const k = d.arr(name, 0, lim.n * 2);
  if (k % 2 !== 0) throw new Bad(`${name}: expected [replica, sig] pairs, got ${k} items`);
  const out: SigOf[] = [];
  for (let i = 0; i < k; i += 2) out.push({ replica: d.uint(`${name} replica`, 1, MAX_NODE_ID), sig: d.bytes(`${name} sig`, lim.sigBytes, lim.sigBytes) });
  return out;
}

export function decodeSigList(data: Uint8Array, lim: Limits, what = 'signature list'): SigOf[] | string {
  return decode(data, what, (d) => readSigList(d, 'signatures', lim));
}

// ---------------------------------------------------------------------------
// Prepared certificates: a PRE-PREPARE (its signature) and 2f matching PREPAREs

export interface PreparedCert {
  seq: Index;
  view: Term;
  digest: Uint8Array;
  ppSig: Uint8Array;
  prepares: SigOf[];
}

function writeCert(c: PreparedCert): void {
  w.array(5).uint(c.seq).uint(c.view).bytes(c.digest).bytes(c.ppSig);
  writeSigs(c.prepares);
}

function readCert(d: Dec, lim: Limits): PreparedCert {
  d.arr('certificate', 5, 5);
  const seq = d.uint('certificate seq', 1);
  const view = d.uint('certificate view');
  const digest = d.bytes('certificate digest', DIGEST_BYTES, DIGEST_BYTES);
  const ppSig = d.bytes('certificate ppSig', lim.sigBytes, lim.sigBytes);
  const prepares = readSigList(d, 'certificate prepares', lim);
  return { seq, view, digest, ppSig, prepares };
}

// ---------------------------------------------------------------------------
// VIEW-CHANGE: [75, newView, replica, stable, stableDigest, proof, [certificates]]

export interface ViewChangeBody {
  newView: Term;
  replica: NodeId;
  /** The replica's last stable checkpoint (0 = none) and its digest (NULL_DIGEST when 0). */
  stable: Index;
  stableDigest: Uint8Array;
  /** 2f + 1 CHECKPOINT signatures for (stable, stableDigest); empty when stable = 0. */
  proof: SigOf[];
  /** The highest-view prepared certificate for each sequence number above `stable`. */
  certs: PreparedCert[];
}

export function encodeViewChange(b: ViewChangeBody): Uint8Array {
  w.reset().array(7).uint(MsgType.PbftViewChange).uint(b.newView).uint(b.replica).uint(b.stable).bytes(b.stableDigest);
  writeSigs(b.proof);
  w.array(b.certs.length);
  for (const c of b.certs) writeCert(c);
  return w.finish();
}

export function decodeViewChange(data: Uint8Array, lim: Limits): ViewChangeBody | string {
  return decode(data, 'view-change', (d) => {
    d.arr('', 7, 7);
    d.uint('domain', MsgType.PbftViewChange, MsgType.PbftViewChange);
    const newView = d.uint('newView', 1);
    const replica = d.uint('replica', 1, MAX_NODE_ID);
    const stable = d.uint('stable');
    const stableDigest = d.bytes('stableDigest', DIGEST_BYTES, DIGEST_BYTES);
    const proof = readSigList(d, 'proof', lim);
    const k = d.arr('certificates', 0, lim.maxItems);
    const certs: PreparedCert[] = [];
    for (let i = 0; i < k; i++) certs.push(readCert(d, lim));
    return { newView, replica, stable, stableDigest, proof, certs };
  });
}

// ---------------------------------------------------------------------------
// NEW-VIEW: [76, view, [replica, vcDigest, ...], [seq, digest, ppSig, ...]]

export interface NewViewBody {
  view: Term;
  /** The 2f + 1 VIEW-CHANGEs it rests on, by author and SHA-256 of their payload. */
  vcs: Array<{ replica: NodeId; digest: Uint8Array }>;
  /** O: the PRE-PREPAREs of the new view for every sequence number in (min-s, max-s], each signed by the new primary. */
  pps: Array<{ seq: Index; digest: Uint8Array; sig: Uint8Array }>;
}

export function encodeNewView(b: NewViewBody): Uint8Array {
  w.reset().array(4).uint(MsgType.PbftNewView).uint(b.view).array(b.vcs.length * 2);
  for (const v of b.vcs) w.uint(v.replica).bytes(v.digest);
  w.array(b.pps.length * 3);
  for (const p of b.pps) w.uint(p.seq).bytes(p.digest).bytes(p.sig);
  return w.finish();
}

export function decodeNewView(data: Uint8Array, lim: Limits): NewViewBody | string {
  return decode(data, 'new-view', (d) => {
    d.arr('', 4, 4);
    d.uint('domain', MsgType.PbftNewView, MsgType.PbftNewView);
    const view = d.uint('view', 1);
    const kv = d.arr('view-changes', 0, lim.n * 2);
    if (kv % 2 !== 0) throw new Bad(`new-view view-changes: expected [replica, digest] pairs, got ${kv} items`);
    const vcs: NewViewBody['vcs'] = [];
    for (let i = 0; i < kv; i += 2) vcs.push({ replica: d.uint('view-change replica', 1, MAX_NODE_ID), digest: d.bytes('view-change digest', DIGEST_BYTES, DIGEST_BYTES) });
    const kp = d.arr('pre-prepares', 0, lim.maxItems * 3);
    if (kp % 3 !== 0) throw new Bad(`new-view pre-prepares: expected [seq, digest, sig] triples, got ${kp} items`);
    const pps: NewViewBody['pps'] = [];
    for (let i = 0; i < kp; i += 3) {
      pps.push({ seq: d.uint('pre-prepare seq', 1), digest: d.bytes('pre-prepare digest', DIGEST_BYTES, DIGEST_BYTES), sig: d.bytes('pre-prepare sig', lim.sigBytes, lim.sigBytes) });
    }
    return { view, vcs, pps };
  });
}

// ---------------------------------------------------------------------------
// Durable slot records (the `data` of a persisted Entry; index = seq, term = ppView)
//
// [ppView, ppDigest, ppSig, request, certView, certDigest, certPpSig, [replica, sig, ...]]
// An empty byte string as the whole record is a placeholder (no slot at that
// sequence number: the durable log must be contiguous, PBFT's slots need not be).
// ppDigest empty = no PRE-PREPARE (only a certificate of an older view); ppSig empty =
// the slot was learned from a commit certificate; certDigest empty = no prepared
// certificate; request empty = no body (the null request, or not known yet).

export interface SlotRecord {
  ppView: Term;
  /** Undefined: no PRE-PREPARE accepted (the record keeps a certificate only). */
  ppDigest: Uint8Array | undefined;
  ppSig: Uint8Array;
  request: Uint8Array;
  cert: PreparedCert | undefined;
}

export function encodeSlotRecord(seq: Index, r: SlotRecord): Uint8Array {
  const c = r.cert;
  w.reset().array(8).uint(r.ppView).bytes(r.ppDigest ?? new Uint8Array(0)).bytes(r.ppSig).bytes(r.request);
  if (c) {
    w.uint(c.view).bytes(c.digest).bytes(c.ppSig);
    writeSigs(c.prepares);
  } else {
    w.uint(0).bytes(new Uint8Array(0)).bytes(new Uint8Array(0)).array(0);
  }
  void seq;
  return w.finish();
}

export function decodeSlotRecord(seq: Index, data: Uint8Array, lim: Limits): SlotRecord | string {
  return decode(data, `slot record ${seq}`, (d) => {
    d.arr('', 8, 8);
    const ppView = d.uint('ppView');
    const pd = d.bytes('ppDigest', 0, DIGEST_BYTES);
    if (pd.length !== 0 && pd.length !== DIGEST_BYTES) throw new Bad(`slot record ${seq} ppDigest: expected 0 or ${DIGEST_BYTES} bytes`);
    const ppDigest = pd.length === 0 ? undefined : pd;
    const ppSig = d.bytes('ppSig', 0, 64);
    const request = d.bytes('request', 0, lim.maxOpBytes + 1024);
    const certView = d.uint('certView');
    const certDigest = d.bytes('certDigest', 0, DIGEST_BYTES);
    const certPpSig = d.bytes('certPpSig', 0, 64);
    const prepares = readSigList(d, 'cert prepares', lim);
    const cert = certDigest.length === DIGEST_BYTES ? { seq, view: certView, digest: certDigest, ppSig: certPpSig, prepares } : undefined;
    return { ppView, ppDigest, ppSig, request, cert };
  });
}

// ---------------------------------------------------------------------------
// Execution state: the per-origin duplicate filter, [[origin, top, lo, hi], ...] by origin.
// Part of every checkpoint (the paper's "last reply per client").

export interface OriginWindow {
  /** Highest request number executed from this origin (0 = none). */
  top: number;
  /** Bit i set = request (top − i) executed, i in 0..31 (lo) and 32..63 (hi). */
  lo: number;
  hi: number;
}

export function encodeExecState(windows: ReadonlyMap<NodeId, OriginWindow>): Uint8Array {
  const ids = [...windows.keys()].sort((a, b) => a - b);
  w.reset().array(ids.length);
  for (const id of ids) {
    const x = windows.get(id)!;
    w.array(4).uint(id).uint(x.top).uint(x.lo >>> 0).uint(x.hi >>> 0);
  }
  return w.finish();
}

export function decodeExecState(data: Uint8Array): Map<NodeId, OriginWindow> | string {
  return decode(data, 'execution state', (d) => {
    const k = d.arr('origins', 0, MAX_NODE_ID);
    const out = new Map<NodeId, OriginWindow>();
    let last = 0;
    for (let i = 0; i < k; i++) {
      d.arr('origin', 4, 4);
      const id = d.uint('origin id', 1, MAX_NODE_ID);
      if (id <= last) throw new Bad('execution state: origins must be in increasing order');
      last = id;
      out.set(id, { top: d.uint('top'), lo: d.uint('lo', 0, 0xffffffff) | 0, hi: d.uint('hi', 0, 0xffffffff) | 0 });
    }
    return out;
  });
}

// ---------------------------------------------------------------------------
// The engine's part of a snapshot (SnapshotMeta.engine):
// [1, exec, stable, stableDigest, proof, [certificates above stable, up to the snapshot]]
// A checkpoint becomes stable only after the runtime stored the snapshot, so the
// prepared certificates between the last stable checkpoint and the snapshot — which
// the runtime drops from the durable log with the snapshot — ride along here: a
// restarted replica still reports them in a VIEW-CHANGE.

export interface EngineMeta {
  exec: Uint8Array;
  stable: Index;
  stableDigest: Uint8Array;
  proof: SigOf[];
  certs: PreparedCert[];
}

export function encodeEngineMeta(m: EngineMeta): Uint8Array {
  w.reset().array(6).uint(1).bytes(m.exec).uint(m.stable).bytes(m.stableDigest);
  writeSigs(m.proof);
  w.array(m.certs.length);
  for (const c of m.certs) writeCert(c);
  return w.finish();
}

export function decodeEngineMeta(data: Uint8Array, lim: Limits): EngineMeta | string {
  return decode(data, 'snapshot engine state', (d) => {
    d.arr('', 6, 6);
    d.uint('version', 1, 1);
    const exec = d.bytes('exec', 0, 64 * 1024);
    const stable = d.uint('stable');
    const stableDigest = d.bytes('stableDigest', DIGEST_BYTES, DIGEST_BYTES);
    const proof = readSigList(d, 'proof', lim);
    const k = d.arr('certificates', 0, lim.maxItems * 2);
    const certs: PreparedCert[] = [];
    for (let i = 0; i < k; i++) certs.push(readCert(d, lim));
    return { exec, stable, stableDigest, proof, certs };
  });
}
