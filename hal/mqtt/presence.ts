/**
 * Presence messages and Last Wills, authenticated with the cluster key.
 *
 * A node announces each MQTT connection on `quorumd/<cluster>/presence/<id>`
 * (retained): "online" when it connects, "offline/closed" when it closes in order,
 * and the broker publishes its Last Will "offline/lost" when the connection dies.
 * A "lost" for the leader makes every node forget it and campaign at once
 * (daemon/runtime), so a forged one must not be believed: anybody who can publish on
 * the broker (an open broker, a leaked observer account) could otherwise churn
 * leadership. Every presence therefore carries a MAC (HMAC-SHA256 with the cluster
 * key, truncated to 16 bytes, src/wire/tag.ts) over
 *
 *     "quorumd-presence" 0x00 ‖ cluster u16 ‖ node u8 ‖ state u8 ‖ boot u32 ‖ conn u32
 *
 * (the domain string starts with 'q' = 0x71, never the first byte of a frame, a CBOR
 * array: a presence MAC can never be taken for a frame tag or the other way round).
 *
 * Replay: `boot` is the node's durable start counter (grows at every start, kept in
 * its data directory) and `conn` counts its connections within that start, so
 * (boot, conn) orders every connection the node ever made. A receiver keeps the
 * newest (boot, conn) it saw per peer and ignores anything older: a will recorded
 * last week and published again today names an older connection than the one the
 * receiver knows online, and is ignored (and counted). The will of the connection
 * that is current can only appear when the broker publishes it, i.e. when that
 * connection really died.
 *
 * The payload stays JSON so that `mosquitto_sub` and dashboards can read it:
 *   {"node":2,"state":"online","boot":17,"conn":1,"mac":"<22 base64url chars>"}
 *   {"node":2,"state":"offline","reason":"lost","boot":17,"conn":1,"mac":"..."}
 *
 * `readPresence` is the one place that parses and authenticates; its result says
 * exactly what was received, and the link decides what an authenticated one means.
 */
import { computeTag, verifyTag, type Keyring } from '../../src/wire/tag.ts';
import { MAX_NODE_ID, type NodeId } from '../../src/types.ts';

export interface Presence {
  node: NodeId;
  state: 'online' | 'offline';
  reason?: 'lost' | 'closed';
  /** The node's start counter (durable, grows at every start). */
  boot: number;
  /** The connection within that start (1, 2, ...). */
  conn: number;
}

export type PresenceResult =
  /** Authenticated under the current or the previous cluster key. */
  | { kind: 'ok'; presence: Presence }
  /** Not a presence message at all (not JSON, fields missing or out of range, another node's topic). */
  | { kind: 'malformed'; reason: string }
  /** Well-formed but its MAC does not verify under the cluster key: forged (or another cluster's key). */
  | { kind: 'forged'; presence: Presence };

const MAX_U32 = 0xffffffff;
const DOMAIN = new TextEncoder().encode('quorumd-presence\u0000');

function stateCode(p: Presence): number {
  return p.state === 'online' ? 1 : p.reason === 'closed' ? 2 : 3;
}

function macInput(cluster: number, p: Presence): Uint8Array {
  const b = new Uint8Array(DOMAIN.length + 12);
  b.set(DOMAIN, 0);
  const v = new DataView(b.buffer);
  let o = DOMAIN.length;
  v.setUint16(o, cluster);
  v.setUint8(o + 2, p.node);
  v.setUint8(o + 3, stateCode(p));
  v.setUint32(o + 4, p.boot);
  v.setUint32(o + 8, p.conn);
  o += 12;
  return b;
}

/** The signed JSON payload of `p` (MAC under `key`, the cluster's current key). */
export function encodePresence(p: Presence, cluster: number, key: Uint8Array): Buffer {
  const mac = Buffer.from(computeTag(key, macInput(cluster, p))).toString('base64url');
  const o: Record<string, unknown> = { node: p.node, state: p.state };
  if (p.state === 'offline') o.reason = p.reason;
  o.boot = p.boot;
  o.conn = p.conn;
  o.mac = mac;
  return Buffer.from(JSON.stringify(o));
}

const uint32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_U32;

/**
 * Parses and authenticates a presence payload received on `presence/<topicNode>` of
 * `cluster`. Never throws.
 */
export function readPresence(payload: Uint8Array, o: { cluster: number; topicNode: NodeId; keyring: Keyring }): PresenceResult {
  const bad = (reason: string): PresenceResult => ({ kind: 'malformed', reason });
  if (payload.length > 512) return bad(`presence payload of ${payload.length} bytes, expected at most 512`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('utf8'));
  } catch {
    return bad('presence payload is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('presence payload is not a JSON object');
  const x = v as Record<string, unknown>;
  if (typeof x.node !== 'number' || !Number.isInteger(x.node) || x.node < 1 || x.node > MAX_NODE_ID) {
    return bad(`presence.node must be a node id 1..${MAX_NODE_ID}, got ${JSON.stringify(x.node)}`);
  }
  if (x.node !== o.topicNode) return bad(`presence.node ${x.node} on the topic of node ${o.topicNode}`);
  if (x.state !== 'online' && x.state !== 'offline') return bad(`presence.state must be "online" or "offline", got ${JSON.stringify(x.state)}`);
  if (x.state === 'offline' && x.reason !== 'lost' && x.reason !== 'closed') {
    return bad(`presence.reason must be "lost" or "closed" when offline, got ${JSON.stringify(x.reason)}`);
  }
  if (!uint32(x.boot) || !uint32(x.conn)) return bad('presence.boot and presence.conn must be integers 0..4294967295');
  if (typeof x.mac !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(x.mac)) return bad('presence.mac must be 22 base64url characters');
  const p: Presence = { node: x.node, state: x.state, boot: x.boot, conn: x.conn };
  if (x.state === 'offline') p.reason = x.reason as 'lost' | 'closed';
  const tag = new Uint8Array(Buffer.from(x.mac, 'base64url'));
  return verifyTag(o.keyring, macInput(o.cluster, p), tag) ? { kind: 'ok', presence: p } : { kind: 'forged', presence: p };
}

/** Whether connection (boot, conn) a is newer than b. */
export function newerConnection(a: { boot: number; conn: number }, b: { boot: number; conn: number }): boolean {
  return a.boot > b.boot || (a.boot === b.boot && a.conn > b.conn);
}
