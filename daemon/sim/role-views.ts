/**
 * What the timeline (`quorumd sim --html`, timeline/recorder.ts) draws of a node of a log
 * engine after every step: its role in the engine's own words and the engine's own round
 * number. Bully's view is in bully-sim.ts (BULLY_ROLE_VIEW).
 *
 *   raft   follower, pre-candidate, candidate, leader; term
 *   paxos  follower, pre-prepare (asking whether a new ballot could win, before taking
 *          one), prepare (phase 1 with its own ballot), leader; the ballot the node
 *          promised, shown as round.node (src/paxos/ballot.ts)
 *   zab    ZooKeeper's states with the phase while it is not broadcasting: looking,
 *          leading (discovery | sync), leader, following (discovery | sync), follower,
 *          observing (…), observer; the accepted epoch
 *   pbft   primary, backup, view-change; the view. PBFT has no activation gate: a primary
 *          may act (locks, jobs) once its view's opening request executed, with that
 *          request's sequence number as its token (src/pbft/pbft.ts leaderToken), which
 *          the recorder draws as the node's activation (RoleView.token).
 *
 * Each reads the engine as it is between steps and never a clock: looking must not
 * change the run (a simulated clock read may move it, and the trace hash of a seed is
 * the same with and without --html). The recorder's state "active" (the runtime's
 * activation, with its fencing token) is drawn over the role for every engine.
 */
import type { EngineRuntime } from '../runtime/engine-node.ts';
import type { PaxosStatus } from '../../src/paxos/multi.ts';
import { BALLOT_ID_SPAN } from '../../src/paxos/ballot.ts';
import type { ZabStatus } from '../../src/zab/zab.ts';
import type { PbftNode } from '../../src/pbft/pbft.ts';
import type { RoleView } from './timeline/recorder.ts';

/** Raft (and the default for an engine without its own view): the engine's finer role where it has one, and its term. */
export const ENGINE_ROLE_VIEW: RoleView<EngineRuntime> = {
  role: (rt) => {
    const s = rt.engine?.status();
    return s === undefined ? 'starting' : (s.detail ?? s.role);
  },
  term: (rt) => rt.engine?.status().term ?? 0,
  round: { word: 'term' },
};

export const PAXOS_ROLE_VIEW: RoleView<EngineRuntime> = {
  role: (rt) => {
    const s = rt.engine?.status() as PaxosStatus | undefined;
    if (s === undefined) return 'starting';
    return s.role === 'candidate' ? (s.detail ?? 'prepare') : s.role;
  },
  term: (rt) => (rt.engine?.status() as PaxosStatus | undefined)?.promised ?? 0,
  round: { word: 'ballot', idSpan: BALLOT_ID_SPAN },
};

const ZAB_PHASE: Record<ZabStatus['phase'], string> = { election: 'election', discovery: 'discovery', synchronization: 'sync', broadcast: 'broadcast' };

export const ZAB_ROLE_VIEW: RoleView<EngineRuntime> = {
  role: (rt) => {
    const s = rt.engine?.status() as ZabStatus | undefined;
    if (s === undefined) return 'starting';
    const phase = ZAB_PHASE[s.phase] ?? s.phase;
    switch (s.state) {
      case 'looking':
        return 'looking';
      case 'leading':
        return s.role === 'leader' ? 'leader' : `leading (${phase})`;
      case 'following':
        return s.phase === 'broadcast' ? 'follower' : `following (${phase})`;
      case 'observing':
        return s.phase === 'broadcast' ? 'observer' : `observing (${phase})`;
      default:
        return String(s.state);
    }
  },
  term: (rt) => (rt.engine?.status() as ZabStatus | undefined)?.acceptedEpoch ?? 0,
  round: { word: 'epoch' },
};

export const PBFT_ROLE_VIEW: RoleView<EngineRuntime> = {
  role: (rt) => {
    const e = rt.engine as PbftNode | undefined;
    if (e === undefined) return 'starting';
    if (e.inViewChange) return 'view-change';
    return e.isLeader ? 'primary' : 'backup';
  },
  term: (rt) => (rt.engine as PbftNode | undefined)?.currentView ?? 0,
  round: { word: 'view' },
  // The runtime's own rule (engine-node.ts activeToken without a fencing option): the
  // primary's leadership token once issued. Read from the engine, not through `active`.
  token: (rt) => {
    const e = rt.engine as PbftNode | undefined;
    return e !== undefined && e.isLeader ? e.leaderToken() : 0;
  },
};

export function roleViewOf(engine: 'raft' | 'paxos' | 'zab' | 'pbft'): RoleView<EngineRuntime> {
  switch (engine) {
    case 'paxos':
      return PAXOS_ROLE_VIEW;
    case 'zab':
      return ZAB_ROLE_VIEW;
    case 'pbft':
      return PBFT_ROLE_VIEW;
    default:
      return ENGINE_ROLE_VIEW;
  }
}
