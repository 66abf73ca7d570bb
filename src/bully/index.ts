/** Public surface of the bully engine (see bully.ts for the algorithm and its limits). */
export { BullyNode, NOT_SUPPORTED_REASON } from './bully.ts';
export type {
  BullyHardState, BullySoftState, BullyReady, BullyInit, BullyRole, BullyStatus, BullyResult, BullyRejectCode,
  BullyDropCounters, BullyPhase,
} from './bully.ts';
export { DEFAULT_BULLY_OPTIONS, resolveBullyOptions, resolveMembers, fencingToken, MAX_EPOCH, MAX_PRIORITY } from './options.ts';
export type { BullyOptions, BullyMember, MemberPriority, BullyTicks } from './options.ts';
export { BullyEngine, BULLY_CAPS, bullyMembersOf, type BullyEngineOptions } from './engine.ts';
