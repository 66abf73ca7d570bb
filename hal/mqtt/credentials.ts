/**
 * Broker credentials of a node, derived from the cluster key so that nothing new
 * must be distributed: a node that holds the key can compute its own password, and a
 * broker given the key (`quorumd broker --cluster-key-file`) can check it; a broker
 * given only a users file (`--users`, or mosquitto's password file made with
 * `quorumd broker passwords`) never sees the key.
 *
 *   username  quorumd-<cluster>-<id>     (also the node's MQTT client id)
 *   password  base64url(HMAC-SHA256(key, "quorumd-mqtt-password" 0x00 cluster u16 ‖ id u8))
 *
 * The password is a one-way function of the key: leaking one node's password (it
 * travels in CONNECT, so use TLS beyond loopback) gives neither the key nor another
 * node's password, and only lets its holder connect as that node — whose frames it
 * still cannot forge without the key.
 */
import { createHmac } from 'node:crypto';
import type { NodeId } from '../../src/types.ts';

export function nodeUsername(cluster: number, id: NodeId): string {
  return `quorumd-${cluster}-${id}`;
}

/** The node's MQTT client id: the broker lets only that node's account use it. */
export const nodeClientId = nodeUsername;

export function nodePassword(key: Uint8Array, cluster: number, id: NodeId): string {
  const m = Buffer.alloc(3);
  m.writeUInt16BE(cluster, 0);
  m.writeUInt8(id, 2);
  return createHmac('sha256', key).update('quorumd-mqtt-password\u0000').update(m).digest('base64url');
}

/** The (cluster, node) a username or client id `quorumd-<c>-<n>` names, if it is one. */
export function parseNodeName(s: string | undefined): { cluster: number; node: NodeId } | undefined {
  const m = s === undefined ? null : /^quorumd-(0|[1-9][0-9]{0,4})-([1-9][0-9]{0,2})$/.exec(s);
  if (!m) return undefined;
  const cluster = Number(m[1]);
  const node = Number(m[2]);
  return cluster <= 0xffff && node <= 254 ? { cluster, node } : undefined;
}
