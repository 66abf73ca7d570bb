/** Public surface of the Raft engine. */
export { RaftNode } from './raft.ts';
export type { HardState, SoftState, ReadState, SnapshotData, Ready, Result, RejectCode, RaftInit, RaftStatus, ProgressView, ProgressState, Role } from './raft.ts';
export { DEFAULT_OPTIONS, resolveOptions, applyConfChange, encodeConfig, decodeConfig, quorumSize, votingMembers, MSG_OVERHEAD_BYTES, SNAPSHOT_OVERHEAD_BYTES, ENTRY_OVERHEAD_BYTES } from './config.ts';
export type { RaftOptions, ConfChange, MemberConfig, SnapshotMeta } from './config.ts';
export { RaftLog } from './log.ts';
export { RaftEngine, RAFT_CAPS, isRaftMessage } from './engine.ts';
export type { RaftEngineOptions } from './engine.ts';
