/** Durable storage for Raft: WAL, hard state, snapshots (docs/architecture.md, Durability). */
export { openDurableLog, DurableLog } from './durable-log.ts';
export type { DurableLogOptions, PersistBatch, StorageStats, Opened } from './durable-log.ts';
export { recover } from './recover.ts';
export type { Recovered, RecoveryPlan, RecoverOptions } from './recover.ts';
export type { HardState, HardStateFile, SnapshotRecord } from './format.ts';
export { StorageCorruptError, StorageInputError, StorageIoError } from './errors.ts';
export { batchFromReady, initFromRecovered } from './raft-adapter.ts';
