/** Small builders for ZAB scenario tests. */
import { Rng } from '../../../src/rng.ts';
import { ZabNode, type ZabOptions } from '../../../src/zab/index.ts';
import type { HardState, Ready } from '../../../src/engine/contract.ts';
import { EntryType, type Entry, type Message } from '../../../src/wire/messages.ts';
import type { NodeId, Term } from '../../../src/types.ts';
import { text } from './harness.ts';

/**
 * A history from (epoch, data) pairs; data '' is the epoch's start no-op, anything
 * else a command. Indexes are 1.. in order.
 */
export function hist(spec: Array<[Term, string]>): Entry[] {
  return spec.map(([term, d], i) => ({ term, index: i + 1, type: d === '' ? EntryType.Noop : EntryType.Normal, data: d === '' ? new Uint8Array(0) : text(d) }));
}

export const hs = (acceptedEpoch: Term, currentEpoch: Term, commit = 0): HardState => ({ term: acceptedEpoch, vote: currentEpoch, commit });

/** A single engine outside any cluster, for rule-level tests. */
export function lone(id: NodeId, voters: NodeId[], o: { hardState?: HardState; entries?: Entry[]; options?: Partial<ZabOptions>; witnesses?: NodeId[]; observers?: NodeId[] } = {}): ZabNode {
  return new ZabNode({
    id,
    config: { voters, learners: o.observers ?? [], witnesses: o.witnesses ?? [] },
    hardState: o.hardState,
    entries: o.entries,
    options: o.options,
    rng: new Rng(id),
  });
}

/** Handles every Ready (as a runtime whose disk always succeeds) and returns what was sent. */
export function drain(z: ZabNode): { messages: Message[]; readies: Ready[] } {
  const messages: Message[] = [];
  const readies: Ready[] = [];
  for (let k = 0; k < 50; k++) {
    const rd = z.ready();
    if (!rd) break;
    readies.push(rd);
    messages.push(...rd.messages);
    z.advance(rd);
  }
  return { messages, readies };
}
