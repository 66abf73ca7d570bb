/**
 * Leadership hand-over on a planned stop (SIGTERM, SIGINT, SIGHUP: daemon/start.ts),
 * for every log engine that can transfer leadership and reports its followers'
 * progress (Engine.caps.transfer and Engine.replicaProgress: Raft, Multi-Paxos, ZAB).
 *
 * The point is the successor's activation gate (docs/fencing.md): a new leader acts on
 * the outside world only once every earlier leader is shown stopped. A leader that just
 * exits is, to its successor, a leader that may still run: it is fenced (a relay cuts a
 * board that was stopping cleanly) or waited out (lease + watchdog bound, ~16 s by
 * default). A leader that hands over instead *acknowledges* the new leadership — it
 * answers the successor in the successor's term, which it only does once it has left
 * its own leadership for good — and the successor acts at once.
 *
 * That answer counts only once the successor knows whom it replaces: its `lead.claim`
 * entry, which names the earlier leaders, must be applied on the successor first (an
 * answer from before is not counted, daemon/runtime/leader-fencing.ts). So the old
 * leader does not exit at the first sign of a new leader (its answers then may not
 * have left yet, and any that did came too early); it stays, bounded, until the
 * successor's `lead.active` entry has been applied here: the successor is then active,
 * and nothing this node does after that can hold it back. Without a `fencing:` section
 * there is no claim and no gate: it stays until the successor's first commit reached it.
 *
 * What each engine does with `transferLeadership(to)` and why the acknowledgement is
 * sound for it is written beside the engine: src/raft/raft.ts (TimeoutNow, Raft
 * thesis §3.10), src/paxos/multi.ts ("Leadership transfer"), src/zab/zab.ts
 * ("Leadership hand-over").
 *
 * Callback-driven on the runtime's Clock, so that the simulator runs the same code in
 * virtual time (test/daemon/runtime/hand-over.test.ts).
 */
import type { Cancel, Clock } from '../../hal/interfaces.ts';
import { NO_NODE, type NodeId, type Term } from '../../src/types.ts';
import type { EngineRuntime } from './engine-node.ts';

/** How a hand-over ended (logged by the caller; the tests read it). */
export type HandOverOutcome =
  /** Not leading (or no engine): nothing to hand over. */
  | 'not-leader'
  /** The engine cannot transfer, or reports no progress of its followers. */
  | 'not-supported'
  /** No voter is reachable to take over. */
  | 'no-target'
  /** The engine refused the transfer (logged with its reason). */
  | 'refused'
  /** The successor's activation was applied here (with fencing). */
  | 'successor-active'
  /** The successor's first commit reached this node (without fencing). */
  | 'successor-committed'
  /** The node it went to, or the new leader, is gone (stopping too?). */
  | 'abandoned'
  /** The bound passed first. */
  | 'timeout';

/** Polls between two requests of the same transfer while this node still leads. */
const ASK_AGAIN_POLLS = 5;

export interface HandOverOptions {
  clock: Clock;
  /** Voting members that may lead (no witnesses, learners or observers). */
  voters: readonly NodeId[];
  /** Every link says `id` is gone (its orderly "offline", its will, its TCP connection closed); false when a link cannot tell. */
  gone: (id: NodeId) => boolean;
  /** The longest the whole hand-over may take, ms. */
  boundMs: number;
  /** How often the runtime is looked at, ms (default 10). */
  pollMs?: number;
  log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Hands leadership to the most caught-up reachable voter and calls `done` once the
 * successor no longer needs this node (see the header) or the bound passed. Returns a
 * cancel (the caller stops anyway).
 */
export function handOver(runtime: EngineRuntime, o: HandOverOptions, done: (outcome: HandOverOutcome) => void): Cancel {
  const { clock, log } = o;
  const pollMs = o.pollMs ?? 10;
  let cancelled = false;
  let timer: Cancel | undefined;
  const finish = (outcome: HandOverOutcome): Cancel => {
    if (!cancelled) {
      cancelled = true;
      done(outcome);
    }
    return () => undefined;
  };
  const eng = runtime.engine;
  if (!eng || !runtime.isLeader) return finish('not-leader');
  if (!eng.caps.transfer || typeof eng.replicaProgress !== 'function') return finish('not-supported');
  const progress = eng.replicaProgress();
  const prog = progress.filter((p) => o.voters.includes(p.id) && !o.gone(p.id)).sort((x, y) => y.match - x.match);
  const to = prog[0];
  if (!to) {
    if (progress.some((p) => o.voters.includes(p.id))) log('info', 'SIGTERM: no voter is reachable to take over leadership; stopping without a transfer');
    return finish('no-target');
  }
  const self = runtime.id;
  const st0 = runtime.status();
  const oldTerm: Term = st0.term;
  // With the runtime's split-brain defenses (a `fencing:` section) the successor claims,
  // then activates, through the log; without them, its first commit is what there is.
  const gated = st0.activation !== undefined;
  const r = runtime.transferLeadership(to.id);
  if (!r.ok) {
    log('warn', 'leadership transfer not started', { to: to.id, reason: r.reason });
    return finish('refused');
  }
  log('info', 'SIGTERM: transferring leadership before exit', { to: to.id, match: to.match });
  const deadline = clock.monotonicMs() + o.boundMs;
  let successor: NodeId = NO_NODE;
  let commitFrom = 0;
  let polls = 0;
  const poll = (): void => {
    timer = undefined;
    if (cancelled) return;
    if (runtime.state !== 'running') return void finish('timeout');
    const s = runtime.status();
    if (successor === NO_NODE) {
      if (s.leader !== self && s.leader !== NO_NODE) {
        successor = s.leader;
        commitFrom = s.commitIndex;
        log('info', 'leadership transferred', { leader: s.leader, term: s.term });
      } else if (o.gone(to.id)) {
        log('info', 'leadership transfer abandoned: the node it went to is gone (stopping too?)', { to: to.id });
        return void finish('abandoned');
      } else if (runtime.isLeader && ++polls % ASK_AGAIN_POLLS === 0) {
        // Still leading: the transfer may have lapsed (Raft and Paxos drop it after an
        // election timeout, e.g. when the TimeoutNow message was lost). Asking again re-arms
        // a lapsed one and changes nothing about one in progress.
        runtime.transferLeadership(to.id);
      }
    }
    if (successor !== NO_NODE) {
      if (o.gone(successor)) {
        // The whole cluster is stopping (`quorumd dev` on Ctrl-C): nobody to wait for.
        log('info', 'the new leader is gone (stopping too?): stopping without waiting for it to become active', { leader: successor });
        return void finish('abandoned');
      }
      if (gated) {
        const a = runtime.stateMachine.activation;
        if (a !== null && a.term > oldTerm && a.node !== self) {
          log('info', 'successor active: it took this node\'s answer as its acknowledgement', { leader: a.node, term: a.term });
          return void finish('successor-active');
        }
      } else if (s.commitIndex > commitFrom) {
        return void finish('successor-committed');
      }
    }
    if (clock.monotonicMs() >= deadline) {
      log('warn', successor === NO_NODE ? 'leadership transfer did not finish in time; stopping anyway' : 'the successor did not become active in time; stopping anyway (it may fence this board or wait out its lease)', { to: to.id, ...(successor !== NO_NODE ? { leader: successor } : {}) });
      return void finish('timeout');
    }
    timer = clock.setTimer(pollMs, poll);
  };
  timer = clock.setTimer(pollMs, poll);
  return () => {
    cancelled = true;
    timer?.();
  };
}
