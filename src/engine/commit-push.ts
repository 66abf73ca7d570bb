/**
 * Pushing the commit index to one peer now (Engine.notifyCommit, src/engine/contract.ts).
 *
 * A leader that tells a peer something it acts on only once it has applied an index —
 * the answer to a read it forwarded, the answer to a write it forwarded — sends it the
 * commit up to there at once instead of leaving it to the next heartbeat (a heartbeat
 * interval of waiting, measured at ~100 ms p90 on a 3-node dev cluster). A message may
 * carry a commit only as far as the peer's log is known to match ours, as every
 * heartbeat's does, so nothing about what is committed changes; if the peer's entries
 * are still on their way, its acknowledgement asks again. The decision is the same in
 * every log engine and lives here; each engine sends its own message (Raft and Paxos a
 * heartbeat with ctx 0, ZAB a COMMIT).
 */
import type { Index } from '../types.ts';

/** The per-peer field a leader keeps for this: the index the peer must apply; 0: none. */
export interface CommitWant {
  wantCommit: Index;
}

/** Notes that `p` must apply up to `index`; true when that is more than it was asked for, and the engine should then try commitToPush. */
export function wantCommit(p: CommitWant, index: Index): boolean {
  if (index <= p.wantCommit) return false;
  p.wantCommit = index;
  return true;
}

/**
 * The commit index to send `p` now, or 0 for none. `told`: the highest commit it has or
 * was sent; `holds`: the highest commit a message may carry to it now (our commit capped
 * at what its log is known to hold). None when it was told enough already (the want is
 * done), none yet when its log does not hold that far (the want stays: call again at its
 * acknowledgement).
 */
export function commitToPush(p: CommitWant, told: Index, holds: Index): Index {
  const want = p.wantCommit;
  if (told >= want) {
    p.wantCommit = 0;
    return 0;
  }
  if (holds < want) return 0;
  p.wantCommit = 0;
  return holds;
}
