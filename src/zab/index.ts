/** Public surface of the ZAB engine (zab.ts explains the protocol and its mapping onto the engine contract). */
export { ZabNode } from './zab.ts';
export type { ZabInit, ZabPhase, ZabState, ZabStatus, ZabPeerView, ZabView } from './zab.ts';
export { DEFAULT_ZAB_OPTIONS, resolveZabOptions, MAX_EPOCH } from './options.ts';
export type { ZabOptions, ZabTicks } from './options.ts';
export { FastLeaderElection, better, NO_VOTE } from './fle.ts';
export type { Vote, Decision, FleHost } from './fle.ts';
export { ZabHistory } from './history.ts';
