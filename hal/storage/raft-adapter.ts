/**
 * Glue between the Raft engine's Ready/RaftInit shapes (src/raft) and the durable log.
 *
 *   log.persist(batchFromReady(ready), (err) => { if (!err) send(ready.messages) ... })
 *   new RaftNode({ id, config, rng, ...initFromRecovered(state) })
 */
import type { MemberConfig, Ready, SnapshotData } from '../../src/raft/index.ts';
import type { Entry } from '../../src/wire/messages.ts';
import type { HardState, SnapshotRecord } from './format.ts';
import type { PersistBatch } from './durable-log.ts';
import type { Recovered } from './recover.ts';

/** The durable part of a Ready (snapshot, entries, hard state); messages and the rest stay with the runtime. */
export function batchFromReady(ready: Pick<Ready, 'hardState' | 'entries' | 'snapshot'>): PersistBatch {
  const b: PersistBatch = {};
  if (ready.hardState) b.hardState = ready.hardState;
  if (ready.entries.length > 0) b.entries = ready.entries;
  if (ready.snapshot) {
    const s = ready.snapshot;
    b.snapshot = { index: s.meta.index, term: s.meta.term, config: s.meta.config, data: s.data };
  }
  return b;
}

/** What a RaftNode is rebuilt from after a restart. */
export function initFromRecovered(r: Recovered): { hardState: HardState; snapshot?: SnapshotData; entries: Entry[] } {
  const out: { hardState: HardState; snapshot?: SnapshotData; entries: Entry[] } = { hardState: r.hardState, entries: r.entries };
  if (r.snapshot) out.snapshot = snapshotData(r.snapshot);
  return out;
}

function snapshotData(s: SnapshotRecord): SnapshotData {
  // The config was stored as the engine's MemberConfig (CBOR round trip keeps its shape).
  return { meta: { index: s.index, term: s.term, config: s.config as MemberConfig }, data: s.data };
}
