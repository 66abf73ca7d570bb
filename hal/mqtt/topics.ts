/**
 * MQTT topic names (DESIGN §2, docs/mqtt.md), shared by the
 * link (hal/mqtt/link.ts) and the embedded broker's access rules (hal/mqtt/broker.ts).
 *
 *   quorumd/<cluster>/to/<id>        directed frames, QoS 0, never retained
 *   quorumd/<cluster>/leader         retained JSON {leader, term, token}, QoS 1
 *   quorumd/<cluster>/presence/<id>  retained JSON presence, QoS 1; also the Last Will
 *
 * <cluster> is the wire cluster id (0..65535, src/wire/codec.ts) in decimal, <id> a
 * node id 1..254 in decimal without leading zeros, so that every node and the broker
 * spell a topic the same way (MQTT topic matching is byte-exact).
 */
import { MAX_NODE_ID, type NodeId } from '../../src/types.ts';

export const TOPIC_ROOT = 'quorumd';
export const MAX_CLUSTER_ID = 0xffff;

export function checkCluster(cluster: unknown, what: string): number {
  if (typeof cluster !== 'number' || !Number.isInteger(cluster) || cluster < 0 || cluster > MAX_CLUSTER_ID) {
    throw new RangeError(`${what}: cluster must be an integer 0..${MAX_CLUSTER_ID}, got ${String(cluster)}`);
  }
  return cluster;
}

export function checkNodeId(id: unknown, what: string): NodeId {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) {
    throw new RangeError(`${what}: node id must be an integer 1..${MAX_NODE_ID}, got ${String(id)}`);
  }
  return id;
}

export const inboxTopic = (cluster: number, id: NodeId): string => `${TOPIC_ROOT}/${cluster}/to/${id}`;
export const leaderTopic = (cluster: number): string => `${TOPIC_ROOT}/${cluster}/leader`;
export const presenceTopic = (cluster: number, id: NodeId): string => `${TOPIC_ROOT}/${cluster}/presence/${id}`;
export const presenceFilter = (cluster: number): string => `${TOPIC_ROOT}/${cluster}/presence/+`;

/** A decimal id as the topics spell it: no sign, no leading zero, in range. */
function parseDecimal(s: string | undefined, max: number, min: number): number | undefined {
  if (s === undefined || !/^(0|[1-9][0-9]{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n >= min && n <= max ? n : undefined;
}

export type ParsedTopic =
  | { kind: 'inbox'; cluster: number; node: NodeId }
  | { kind: 'leader'; cluster: number }
  | { kind: 'presence'; cluster: number; node: NodeId }
  /** One of ours with a wildcard in the node position (subscriptions only). */
  | { kind: 'presence-all'; cluster: number };

/** Parses a quorumd topic (or subscription filter); undefined for anything else. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts[0] !== TOPIC_ROOT) return undefined;
  const cluster = parseDecimal(parts[1], MAX_CLUSTER_ID, 0);
  if (cluster === undefined) return undefined;
  if (parts.length === 3 && parts[2] === 'leader') return { kind: 'leader', cluster };
  if (parts.length !== 4) return undefined;
  if (parts[2] === 'presence' && parts[3] === '+') return { kind: 'presence-all', cluster };
  const node = parseDecimal(parts[3], MAX_NODE_ID, 1);
  if (node === undefined) return undefined;
  if (parts[2] === 'to') return { kind: 'inbox', cluster, node };
  if (parts[2] === 'presence') return { kind: 'presence', cluster, node };
  return undefined;
}

// Presence payloads (signed with the cluster key) are in ./presence.ts.
