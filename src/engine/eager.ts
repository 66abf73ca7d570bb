/**
 * What every engine's takeEager() does with its outgoing list (src/engine/contract.ts,
 * "Optional, for pipelining"): take out, in place and in order, the messages that may
 * leave before the Ready being persisted — those of the given types in the given term —
 * and leave the rest for the Ready. Pure; no allocation when nothing matches.
 */
import type { Term } from '../types.ts';
import type { Message, MsgType } from '../wire/messages.ts';

const NONE = Object.freeze([]) as unknown as Message[];

/** Removes from `msgs` the messages of term `term` whose type is in `types`, and returns them (a shared empty list when none). */
export function takeOut(msgs: Message[], types: ReadonlySet<MsgType>, term: Term): Message[] {
  let out: Message[] | undefined;
  let kept = 0;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    if (m.term === term && types.has(m.type)) (out ??= []).push(m);
    else msgs[kept++] = m;
  }
  if (out === undefined) return NONE;
  msgs.length = kept;
  return out;
}
