/** Split-brain defenses, pure parts (docs/fencing.md). */
export { NO_TOKEN, isToken, checkToken, parseToken, raftLeaderToken, raftGrantToken, bullyToken, TokenMonotonicity, type Token, type RaftLeadership } from './token.ts';
export { FencedResource, StaleTokenError, type FenceCheck, type FencedResourceOptions, type TokenStore } from './fenced-resource.ts';
export { ActivationGate, leaseSafeAtMs, type ActivationConfig, type ActivationReason, type ActivationStatus, type Elected, type PreviousLeader } from './activation.ts';
export {
  Fencer,
  checkFencerConfig,
  type FenceAttempt,
  type FenceCommand,
  type FenceCommandResult,
  type FenceDevice,
  type FenceOutcome,
  type FenceRecord,
  type FenceRequest,
  type FenceTargetConfig,
  type FencerConfig,
  type FencerReady,
  type FencerStats,
  type RelayDevice,
  type WatchdogWaitDevice,
} from './fencer.ts';
