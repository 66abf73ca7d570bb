/**
 * A watcher of the simulated hardware: told when a board changes state, a relay
 * contact moves, or the fault injector applies or heals a fault.
 *
 * This is how a recorder (the HTML timeline of `quorumd sim --html`) sees the world
 * without changing it. The rules that keep a run a pure function of its seed:
 *   - the world calls an observer with plain values: after a board or relay changed,
 *     and as a fault is applied or healed (in the same instant);
 *   - an observer only reads: it must not schedule events, draw random numbers, write
 *     to the trace or touch a board; a run with an observer has the same trace hash as
 *     one without (test/daemon/sim/timeline.test.ts checks it);
 *   - no observer installed (the default) costs one null check at each of these
 *     events, which are rare (a boot, a relay switch, a fault), never per message.
 *
 * Every method is optional, so a watcher takes only what it needs and a new kind of
 * event can be added without touching the others.
 */
import type { NodeId } from '../src/types.ts';
import type { BoardState } from './board.ts';
import type { PlannedFault } from './faults.ts';

/** Why a board left 'running' or came back (for a person reading the timeline). */
export type BoardChangeCause = 'power-on' | 'mains-off' | 'relay-open' | 'watchdog' | 'crash' | 'boot';

export interface SimObserver {
  /** Board `node` is now in `state` (off, booting, running, restarting). */
  boardState?(node: NodeId, state: BoardState, cause: BoardChangeCause): void;
  /** The contact of the relay driven by `from` in the supply of `to` moved: closed = `to` is fed. */
  relayContact?(from: NodeId, to: NodeId, closed: boolean): void;
  /** The fault injector applies a fault (`phase` 'apply') or heals it ('heal'), any kind. A crash has no heal call: the board restarts by itself. */
  fault?(f: Readonly<PlannedFault>, phase: 'apply' | 'heal'): void;
}
