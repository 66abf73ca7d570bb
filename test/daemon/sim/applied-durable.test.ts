/**
 * The simulator's "applied ⇒ durable" check (daemon/sim/raft-invariants.ts): an entry a node
 * applies before its own copy is durable (Raft's takeCommitted, on a leader or a follower) must be durable
 * on a quorum of voting members; with fewer the check fails.
 */
import { describe, expect, it } from 'vitest';
import { InvariantChecker, type RaftHost } from '../../../daemon/sim/raft-invariants.ts';
import { SimViolation } from '../../../daemon/sim/violation.ts';
import { KvStateMachine } from '../../../src/kv/index.ts';
import { RaftNode, type Ready } from '../../../src/raft/index.ts';
import { Rng } from '../../../src/rng.ts';
import { EntryType, type Entry } from '../../../src/wire/messages.ts';

const config = { voters: [1, 2, 3], learners: [], witnesses: [] };
const host = (id: number): RaftHost => ({ id, engine: new RaftNode({ id, config, rng: new Rng(id) }), stateMachine: new KvStateMachine() });
const entry: Entry = { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) };
const persistedRd = (e: Entry) => ({ entries: [e], messages: [], committed: [], readStates: [], failedReads: [] }) as unknown as Ready;

describe('sim invariant: applied ⇒ durable on a quorum', () => {
  it('an entry applied before its own copy is durable needs a quorum of durable copies elsewhere', () => {
    const ck = new InvariantChecker(() => 0, []);
    const [n1, n2, n3] = [host(1), host(2), host(3)];
    for (const h of [n1, n2, n3]) ck.booted(h);
    // Nobody persisted it: the checker never saw it.
    expect(() => ck.applied(n1, entry, undefined)).toThrow(/checker: .*never saw persisted anywhere/);
    ck.persisted(n2, persistedRd(entry));
    // One durable copy (n2) of the two a quorum of three needs; n1's own is not durable.
    expect(() => ck.applied(n1, entry, undefined)).toThrow(SimViolation);
    expect(() => ck.applied(n1, entry, undefined)).toThrow(/applied-durable: node 1 applied index 1 \(term 1\) before its own copy was durable, held durably by 1 voting member\(s\); a quorum is 2/);
    ck.persisted(n3, persistedRd(entry));
    expect(() => ck.applied(n1, entry, undefined)).not.toThrow();
    // n2 applies it from its own durable copy: the ordinary path.
    expect(() => ck.applied(n2, entry, undefined)).not.toThrow();
  });

  it('a copy compacted into a snapshot counts: a follower catching up applies entries the others let go of long ago', () => {
    const ck = new InvariantChecker(() => 0, []);
    const [n1, n2, n3] = [host(1), host(2), host(3)];
    for (const h of [n1, n2, n3]) ck.booted(h);
    const e2: Entry = { index: 2, term: 1, type: EntryType.Normal, data: new Uint8Array([4]) };
    const both = { entries: [entry, e2], messages: [], committed: [], readStates: [], failedReads: [] } as unknown as Ready;
    ck.persisted(n2, both);
    ck.persisted(n3, both);
    ck.applied(n2, entry, undefined);
    ck.applied(n2, e2, undefined);
    // n2 and n3 compact through index 2: index 1 is now only in their snapshots.
    const snap = { entries: [], messages: [], committed: [], readStates: [], failedReads: [], snapshot: { meta: { index: 2, term: 1, config }, data: new Uint8Array(0) } } as unknown as Ready;
    ck.persisted(n2, snap);
    ck.persisted(n3, snap);
    // n1, behind, applies index 1 before its own copy is durable: held by a quorum, in snapshots.
    expect(() => ck.applied(n1, entry, undefined)).not.toThrow();
  });
});
