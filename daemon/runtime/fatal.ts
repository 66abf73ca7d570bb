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
