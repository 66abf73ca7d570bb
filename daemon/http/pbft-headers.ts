/**
 * Engine pbft in the HTTP API (docs/api.md "Engine pbft: one node's word"): the headers
 * of a pbft node's KV answers and the query parameters of a client that gathers f + 1
 * signed replies itself (daemon/client/pbft.ts).
 *
 *   X-Quorumd-Trust: one-node; f=<f>; need=<f + 1>
 *       on every KV answer of a pbft node: this answer is that node's word only.
 *   X-Quorumd-Reply: <base64 of the signed reply>   (src/pbft/reply.ts encodeReply)
 *   X-Quorumd-Request: <origin>/<reqNo>
 *       on answers to requests this node proposed and executed: its signature over
 *       (replica, view, origin, reqNo, index, operation digest, result).
 *   ?client=<hex id, 8..32 bytes>&seq=<n ≥ 1>
 *       on GET/PUT/DELETE /v1/kv/<key>: the request's identity (pbft-clients.ts): a
 *       retry with the same pair on any node executes once; a GET becomes an ordered,
 *       signed read. Ignored by the other engines.
 *   GET /v1/pbft/reply?client=<hex>&seq=<n>
 *       this node's signed reply for that client request: 200 {replica, reply} (and the
 *       X-Quorumd-Reply header), 404 while it holds none.
 */
import type { PbftReply } from '../../src/pbft/reply.ts';
import { encodeReply } from '../../src/pbft/reply.ts';
import { checkClientRef, MAX_CLIENT_ID_BYTES, MIN_CLIENT_ID_BYTES, type ClientRef } from '../runtime/pbft-clients.ts';
import type { ClientResult } from '../runtime/results.ts';

export const TRUST_HEADER = 'X-Quorumd-Trust';
export const REPLY_HEADER = 'X-Quorumd-Reply';
export const REQUEST_HEADER = 'X-Quorumd-Request';

/** The headers a pbft answer carries (none for other engines). */
export function pbftHeaders(r: ClientResult): Record<string, string> {
  if (r.pbftF === undefined) return {};
  const h: Record<string, string> = { [TRUST_HEADER]: `one-node; f=${r.pbftF}; need=${r.pbftF + 1}` };
  if (r.pbft) {
    h[REQUEST_HEADER] = `${r.pbft.origin}/${r.pbft.reqNo}`;
    if (r.pbft.reply) h[REPLY_HEADER] = replyHeaderValue(r.pbft.reply);
  }
  return h;
}

export function replyHeaderValue(r: PbftReply): string {
  return Buffer.from(encodeReply(r)).toString('base64');
}

/**
 * The client reference of a query (`client` and `seq` together or neither); a string
 * names what is wrong (the server answers 400 with it).
 */
export function clientRefOf(client: string | undefined, seq: string | undefined): ClientRef | undefined | string {
  if (client === undefined && seq === undefined) return undefined;
  if (client === undefined || seq === undefined) return 'client and seq go together: client=<hex id>&seq=<request number>';
  if (!/^[0-9a-f]+$/.test(client) || client.length % 2 !== 0 || client.length < 2 * MIN_CLIENT_ID_BYTES || client.length > 2 * MAX_CLIENT_ID_BYTES) {
    return `client must be ${MIN_CLIENT_ID_BYTES}..${MAX_CLIENT_ID_BYTES} bytes in lowercase hex, got ${JSON.stringify(client.slice(0, 70))}`;
  }
  if (!/^\d{1,16}$/.test(seq)) return `seq must be an integer ≥ 1, got ${JSON.stringify(seq.slice(0, 40))}`;
  const ref = { id: new Uint8Array(Buffer.from(client, 'hex')), seq: Number(seq) };
  const bad = checkClientRef(ref);
  return bad ?? ref;
}
