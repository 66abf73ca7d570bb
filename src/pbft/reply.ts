/**
 * Replies to clients, and how a client decides what to believe (paper §4.1: "the
 * client waits for f + 1 replies with valid signatures from different replicas, and
 * with the same timestamp and result").
 *
 * With PBFT no single node's answer can be trusted: it may be the liar. Every replica
 * that executes a request signs a reply:
 *
 *   [domain 170, replica, view, origin, reqNo, index, opDigest, result] + sig
 *
 * where (origin, reqNo) name the request (the replica whose client asked, and its
 * request number: Ready.outcomes' `ref`), `index` is where it executed, `opDigest` the
 * SHA-256 of the operation (so the client checks that its own operation ran, not one
 * the origin substituted), `result` the state machine's answer (for the KV store, the
 * HTTP answer's body and status, encoded by the runtime). A client accepts a result
 * only when f + 1 replies from distinct replicas with valid signatures agree on
 * (origin, reqNo, index, opDigest, result): at least one of them is honest, and an
 * honest replica executed the request at that index with that result. The view may
 * differ between replies (replicas may have moved on).
 *
 * The wire format of one reply (`encodeReply`) is a CBOR byte string, base64 in an HTTP
 * header (`X-Quorumd-Reply`, see docs/engines.md); a node can also hand a client the
 * replies of its peers (a "reply certificate"), which the client checks the same way:
 * signatures make them transferable.
 */
import { CborError, CborWriter, Reader } from '../wire/cbor.ts';
import { MAX_NODE_ID, type Index, type NodeId, type Term } from '../types.ts';
import type { PbftAuth } from './auth.ts';
import { bytesEqual, DIGEST_BYTES } from './encoding.ts';

export const REPLY_DOMAIN = 170;
/** Largest result a reply carries (a KV value fits: the runtime's answer body). */
export const MAX_RESULT_BYTES = 64 * 1024;

export interface ReplyFields {
  replica: NodeId;
  view: Term;
  origin: NodeId;
  reqNo: number;
  index: Index;
  opDigest: Uint8Array;
  result: Uint8Array;
}
export interface PbftReply extends ReplyFields {
  sig: Uint8Array;
}

const w = new CborWriter(128);

function signedBytes(r: ReplyFields): Uint8Array {
  return w.reset().array(8).uint(REPLY_DOMAIN).uint(r.replica).uint(r.view).uint(r.origin).uint(r.reqNo).uint(r.index).bytes(r.opDigest).bytes(r.result).finish();
}

/** The reply of replica `auth.id` (the runtime calls this as it applies an entry). */
export function signReply(auth: PbftAuth, f: Omit<ReplyFields, 'replica'>): PbftReply {
  const fields: ReplyFields = { ...f, replica: auth.id };
  return { ...fields, sig: auth.sign(signedBytes(fields)) };
}

/** A reply's signature checks out under its replica's key. */
export function verifyReply(auth: Pick<PbftAuth, 'verify'>, r: PbftReply): boolean {
  return auth.verify(r.replica, signedBytes(r), r.sig);
}

export function encodeReply(r: PbftReply): Uint8Array {
  return w.reset().array(8).uint(r.replica).uint(r.view).uint(r.origin).uint(r.reqNo).uint(r.index).bytes(r.opDigest).bytes(r.result).bytes(r.sig).finish();
}

/** Decodes one reply; never throws. */
export function decodeReply(data: Uint8Array, sigBytes: number): PbftReply | string {
  if (!(data instanceof Uint8Array)) return 'reply: expected bytes';
  const r = new Reader(data, 0, data.length);
  try {
    const n = r.arrayHead();
    if (n !== 8) return `reply: expected 8 items, got ${n}`;
    const num = (name: string, lo: number, hi: number): number => {
      const v = r.value(0);
      if (typeof v !== 'number' || v < lo || v > hi) throw new CborError('malformed', `reply ${name}: expected an integer ${lo}..${hi}`);
      return v;
    };
    const byt = (name: string, lo: number, hi: number): Uint8Array => {
      const v = r.value(0);
      if (!(v instanceof Uint8Array) || v.length < lo || v.length > hi) throw new CborError('malformed', `reply ${name}: expected ${lo}..${hi} bytes`);
      return v;
    };
    const reply: PbftReply = {
      replica: num('replica', 1, MAX_NODE_ID),
      view: num('view', 0, Number.MAX_SAFE_INTEGER),
      origin: num('origin', 1, MAX_NODE_ID),
      reqNo: num('reqNo', 1, Number.MAX_SAFE_INTEGER),
      index: num('index', 1, Number.MAX_SAFE_INTEGER),
      opDigest: byt('opDigest', DIGEST_BYTES, DIGEST_BYTES),
      result: byt('result', 0, MAX_RESULT_BYTES),
      sig: byt('sig', sigBytes, sigBytes),
    };
    if (r.pos !== data.length) return `reply: ${data.length - r.pos} bytes after the value`;
    return reply;
  } catch (e) {
    return e instanceof CborError ? (e.message.startsWith('reply') ? e.message : `reply: ${e.message}`) : `reply: ${String(e)}`;
  }
}

export type ReplyVerdict =
  | { ok: true; index: Index; result: Uint8Array; replicas: NodeId[] }
  | { ok: false; reason: string };

/**
 * What a client may believe about request (origin, reqNo) with operation digest
 * `opDigest`, given the replies it collected: a result backed by f + 1 valid replies
 * of distinct replicas, or why not (yet). Replies with bad signatures, of non-members,
 * for another request or another operation, and second replies of one replica are
 * ignored (a replica that signs two different replies is faulty; only one counts).
 */
export function acceptReplies(
  replies: readonly PbftReply[],
  want: { origin: NodeId; reqNo: number; opDigest: Uint8Array },
  group: { members: readonly NodeId[]; f: number },
  auth: Pick<PbftAuth, 'verify'>,
): ReplyVerdict {
  const byReplica = new Map<NodeId, PbftReply>();
  let bad = 0;
  for (const r of replies) {
    if (r.origin !== want.origin || r.reqNo !== want.reqNo || !bytesEqual(r.opDigest, want.opDigest)) continue;
    if (!group.members.includes(r.replica) || byReplica.has(r.replica)) continue;
    if (!verifyReply(auth, r)) {
      bad++;
      continue;
    }
    byReplica.set(r.replica, r);
  }
  // Group by (index, result); the first group with f + 1 distinct replicas wins (at
  // most one can: two would need an honest replica in each, and honest replicas agree).
  const groups: Array<{ index: Index; result: Uint8Array; replicas: NodeId[] }> = [];
  for (const r of byReplica.values()) {
    let g = groups.find((x) => x.index === r.index && bytesEqual(x.result, r.result));
    if (!g) {
      g = { index: r.index, result: r.result, replicas: [] };
      groups.push(g);
    }
    g.replicas.push(r.replica);
    if (g.replicas.length >= group.f + 1) return { ok: true, index: g.index, result: g.result, replicas: [...g.replicas].sort((a, b) => a - b) };
  }
  const best = groups.reduce((m, g) => Math.max(m, g.replicas.length), 0);
  return {
    ok: false,
    reason: `${byReplica.size} valid replies (${bad} with bad signatures), at most ${best} agreeing; ${group.f + 1} matching replies from distinct replicas are needed`,
  };
}
