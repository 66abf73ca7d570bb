/**
 * The one fatal path of a node runtime (issue 12). A storage failure always took it;
 * an exception thrown by the engine, the Fencer or the state machine inside a link
 * callback or a timer used to escape into the event loop (Node then exits 1 from
 * inside an MQTT handler, with nothing answered and nothing closed). Now every such
 * entry point catches it and calls the runtime's `fatal` with an `InternalError`:
 * logged with its stack, pending requests answered, the node stopped, `onFatal`
 * called — and `quorumd start` exits with EXIT.FATAL so that the supervisor restarts it.
 */

import type { Link, LinkEvent } from '../../hal/interfaces.ts';
import { MsgType, type Message } from '../../src/wire/messages.ts';

/** An exception from inside the node (a bug, never bad input): `where` names the entry point. */
export class InternalError extends Error {
  override readonly name = 'InternalError';
  readonly where: string;
  constructor(where: string, cause: unknown) {
    const c = cause instanceof Error ? cause : new Error(String(cause));
    super(`internal error in ${where}: ${c.name}: ${c.message}`, { cause: c });
    this.where = where;
    // The stack that matters is the thrower's, not this constructor's.
    this.stack = `${this.name}: ${this.message}\n${(c.stack ?? '').split('\n').slice(1).join('\n')}`;
  }
}

/**
 * A committed entry this build cannot apply: a command it cannot decode, or an entry
 * type it does not know. Under Raft, Paxos and ZAB the leader proposes only commands
 * its own build validated, the log and snapshots carry CRCs and frames an HMAC, so such
 * an entry was written by a newer quorumd (a leader that knows a command this build
 * does not) — or by a bug. Either way the node must not skip it: the members that know
 * it apply it, and this replica's state would silently differ from theirs from that
 * index on. So the node stops, and says which entry and what to do; every start
 * replays the same entry and stops again until the node runs a build that knows it.
 * (PBFT is different: a lying replica may get garbage ordered, and every replica
 * skips it alike: src/kv/state-machine.ts `apply`.)
 */
export class NewerEntryError extends Error {
  override readonly name = 'NewerEntryError';
  constructor(
    readonly index: number,
    readonly term: number,
    /** What is wrong with it, e.g. "command bytes: unknown op code 99". */
    readonly detail: string,
  ) {
    super(
      `committed entry at index ${index} (term ${term}) cannot be applied by this build: ${detail}. ` +
        'It was written by a newer quorumd, which knows commands this one does not: upgrade this node to the version the other members run ' +
        '(docs/install-pi.md, "Upgrading"). The node stops rather than skip an entry the other members apply',
    );
  }
}

/** An Error for `e` (a thrown non-Error becomes one). */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * The two link callbacks of a runtime (`WireEndpoint.listen`), each an entry point: an
 * exception in either goes to `crash(where, e)` (the runtime's fatal path) instead of
 * escaping into the MQTT or serial library's handler.
 */
export function guardedLinkCallbacks(
  crash: (where: string, e: unknown) => void,
  onMessage: (m: Message) => void,
  onLinkEvent: (link: Link, ev: LinkEvent) => void,
): [(m: Message) => void, (link: Link, ev: LinkEvent) => void] {
  return [
    (m) => {
      try {
        onMessage(m);
      } catch (e) {
        crash(`handling ${MsgType[m.type] ?? m.type} from n${m.from}`, e);
      }
    },
    (link, ev) => {
      try {
        onLinkEvent(link, ev);
      } catch (e) {
        crash(`link event ${ev.kind} on ${link.name}`, e);
      }
    },
  ];
}
