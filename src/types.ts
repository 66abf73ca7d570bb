/**
 * Identifiers shared by every layer.
 *
 * Node ids are small integers on the wire (1..254) so that a heartbeat stays tiny;
 * configuration maps human names ("pi-kitchen") to these ids. 0 means "nobody"
 * (no leader known, no vote cast).
 */
export type NodeId = number;
export const NO_NODE: NodeId = 0;
export const MAX_NODE_ID = 254;

/** Raft term / bully epoch. Grows only. */
export type Term = number;
/** Position in the replicated log (1-based; 0 = before the first entry). */
export type Index = number;
