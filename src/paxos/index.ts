/** Public surface of the Paxos engines: Basic Paxos (synod) and Multi-Paxos (the `paxos` engine). */
export { PaxosNode, PAXOS_CAPS } from './multi.ts';
export type { PaxosInit, PaxosStatus, PaxosProgressView, PaxosDropCounters, PaxosDetail, ProgressState } from './multi.ts';
export { DEFAULT_PAXOS_OPTIONS, resolvePaxosOptions, PAXOS_MSG_OVERHEAD_BYTES, PAXOS_SLOT_OVERHEAD_BYTES, PAXOS_SNAPSHOT_OVERHEAD_BYTES } from './options.ts';
export type { PaxosOptions } from './options.ts';
export { SlotLog, encodeDurableSlot, decodeDurableSlot, DURABLE_SLOT_HEADER } from './slots.ts';
export { ballotOf, nextBallot, ownerOf, roundOf, showBallot, BALLOT_ID_SPAN, MAX_ROUND } from './ballot.ts';
export type { Ballot } from './ballot.ts';
export { SynodNode, SYNOD_DEFAULTS } from './synod.ts';
export type { SynodInit, SynodMessage, SynodReady, SynodRecord, SynodDurable, SynodOptions, SynodStatus, Proposal } from './synod.ts';
export { SynodInvariants, PaxosInvariants, Violations } from './invariants.ts';
export type { ObservedValue } from './invariants.ts';
