/**
 * The invariant checker on hand-made observations: each property accepts what a
 * correct run shows and names the violation when fed one. (The harness runs it on
 * real engines; these make sure every rule can fail.)
 */
import { describe, expect, it } from 'vitest';
import type { Ready } from '../../../src/engine/contract.ts';
import { EntryType, MsgType, type Entry, type Message } from '../../../src/wire/messages.ts';
import { ZabInvariants } from '../../../src/zab/invariants.ts';
import type { ZabView } from '../../../src/zab/index.ts';
import { text } from './harness.ts';

const config = { voters: [1, 2, 3], learners: [], witnesses: [] };
const noop = (term: number, index: number): Entry => ({ term, index, type: EntryType.Noop, data: new Uint8Array(0) });
const cmd = (term: number, index: number, d: string): Entry => ({ term, index, type: EntryType.Normal, data: text(d) });

function view(id: number, o: Partial<ZabView> & { log?: Entry[] } = {}): ZabView {
  const log = o.log ?? [];
  return {
    id, state: 'following', phase: 'broadcast', acceptedEpoch: 1, currentEpoch: 1, epoch: 1, epochStart: 1, established: false,
    commit: 0, lastIndex: log.length, snapshotIndex: 0, witness: false, token: 0,
    entryAt: (i) => log[i - 1],
    ...o,
  };
}
const rd = (o: Partial<Ready>): Ready => ({ entries: [], messages: [], committed: [], readStates: [], failedReads: [], ...o });
const hard = (term: number, vote: number, commit = 0) => ({ term, vote, commit });

/** Epoch 1 led by node 1: start at 1, then a, b; nodes 2 and 3 persist them. */
function epoch1(inv: ZabInvariants): Entry[] {
  const log = [noop(1, 1), cmd(1, 2, 'a'), cmd(1, 3, 'b')];
  inv.started(view(1), hard(0, 0));
  inv.started(view(2), hard(0, 0));
  inv.started(view(3), hard(0, 0));
  const leader = view(1, { state: 'leading', phase: 'synchronization', log: log.slice(0, 1) });
  inv.ready(leader, rd({ entries: log.slice(0, 1), hardState: hard(1, 1) }));
  for (const id of [2, 3]) inv.ready(view(id, { log: log.slice(0, 1), phase: 'synchronization' }), rd({ entries: log.slice(0, 1), hardState: hard(1, 1) }));
  const est = view(1, { state: 'leading', established: true, commit: 1, log, token: 1 });
  inv.step([est]);
  inv.ready(est, rd({ entries: log.slice(1) }));
  return log;
}

describe('ZAB invariants', () => {
  it('a correct run passes', () => {
    const inv = new ZabInvariants({ config });
    const log = epoch1(inv);
    for (const id of [2, 3]) inv.ready(view(id, { log }), rd({ entries: log.slice(1), messages: [{ type: MsgType.ZabAck, from: id, to: 1, term: 1, index: 3, ok: true, commit: 0 }] }));
    for (const id of [1, 2, 3]) inv.ready(view(id, { log, commit: 3 }), rd({ committed: log }));
    expect(inv.violations).toEqual([]);
    expect(inv.deliveredUpTo).toBe(3);
  });

  it("a primary's own entry read back at its restart (its Ready never became durable) counts as broadcast by it; another node's does not, nor a changed one", () => {
    const inv = new ZabInvariants({ config });
    const log = epoch1(inv);
    // Node 1 appended c at 4; the Ready's fsync failed and it stopped. Restarted, it read c back.
    const withC = [...log, cmd(1, 4, 'c')];
    inv.started(view(1, { log: withC }), hard(1, 1));
    // A follower synced from it (node 1 leading the next epoch) persists c: no violation.
    inv.ready(view(2, { log: withC }), rd({ entries: [cmd(1, 4, 'c')] }));
    expect(inv.violations).toEqual([]);
    // A node that was not the primary of epoch 1 restarting with an entry of epoch 1 at 5
    // does not make it broadcast: a copy of it elsewhere is still caught.
    inv.started(view(3, { log: [...withC, cmd(1, 5, 'd')] }), hard(1, 1));
    inv.ready(view(2, { log: [...withC, cmd(1, 5, 'd')] }), rd({ entries: [cmd(1, 5, 'd')] }));
    expect(inv.violations.join('\n')).toMatch(/node 2 persisted \(1, 5\) that the primary of epoch 1 \(1\) never broadcast/);
    // The primary restarting with another transaction where it had broadcast one.
    const inv2 = new ZabInvariants({ config });
    const log2 = epoch1(inv2);
    inv2.started(view(1, { log: [...log2.slice(0, 2), cmd(1, 3, 'B')] }), hard(1, 1));
    expect(inv2.violations.join('\n')).toMatch(/primary 1 of epoch 1 restarted with another transaction at 3/);
  });

  it('integrity: delivering what no primary broadcast', () => {
    const inv = new ZabInvariants({ config });
    epoch1(inv);
    inv.ready(view(2, { commit: 3 }), rd({ committed: [noop(1, 1), cmd(1, 2, 'a'), cmd(1, 3, 'FORGED')] }));
    expect(inv.violations.join('\n')).toMatch(/integrity: node 2 delivered at \(1, 3\) something else/);
  });

  it('agreement / total order: two transactions at one position', () => {
    const inv = new ZabInvariants({ config });
    inv.assumeBroadcast([noop(1, 1), cmd(1, 2, 'a')]);
    inv.assumeBroadcast([noop(1, 1), noop(2, 2)]);
    for (const id of [1, 2]) inv.started(view(id), hard(2, 1));
    inv.ready(view(1, { commit: 2 }), rd({ committed: [noop(1, 1), cmd(1, 2, 'a')] }));
    inv.ready(view(2, { commit: 2 }), rd({ committed: [noop(1, 1), noop(2, 2)] }));
    expect(inv.violations.join('\n')).toMatch(/agreement: node 2 delivered \(2, 2\) where another node delivered \(1, 2\)/);
  });

  it('global primary order: an earlier epoch delivered after a later one', () => {
    const inv = new ZabInvariants({ config });
    inv.assumeBroadcast([noop(1, 1), noop(3, 2)]);
    inv.assumeBroadcast([noop(1, 1), noop(3, 2), cmd(2, 3, 'late')]); // an impossible history: epochs decrease
    expect(inv.violations.join('\n')).toMatch(/epoch 2 begins at 3 with a Normal/);
    inv.started(view(1), hard(3, 3));
    inv.ready(view(1, { commit: 3 }), rd({ committed: [noop(1, 1), noop(3, 2), cmd(2, 3, 'late')] }));
    expect(inv.violations.join('\n')).toMatch(/global primary order: \(2, 3\) delivered after \(3, 2\)/);
  });

  it('local primary order: an epoch delivered from the middle (its start skipped)', () => {
    const inv = new ZabInvariants({ config });
    inv.assumeBroadcast([noop(1, 1), noop(2, 2), cmd(2, 3, 'x')]);
    inv.assumeBroadcast([noop(1, 1), cmd(1, 2, 'y'), cmd(2, 3, 'x')]); // (2, 3) after (1, 2): epoch 2 without its start
    inv.started(view(1), hard(2, 2));
    inv.ready(view(1, { commit: 3 }), rd({ committed: [noop(1, 1), cmd(1, 2, 'y'), cmd(2, 3, 'x')] }));
    expect(inv.violations.join('\n')).toMatch(/local primary order: the first delivered transaction of epoch 2 is at 3, not its start 2/);
  });

  it('primary integrity: a new leader lacking a delivered transaction; a primary broadcasting before delivering its initial history', () => {
    const inv = new ZabInvariants({ config });
    const log = epoch1(inv);
    inv.ready(view(2, { log, commit: 3 }), rd({ committed: log }));
    // Node 3 leads epoch 2 with a history that lacks (1, 3).
    const h3 = [noop(1, 1), cmd(1, 2, 'a'), noop(2, 3)];
    inv.ready(view(3, { state: 'leading', epoch: 2, epochStart: 3, phase: 'synchronization', acceptedEpoch: 2, currentEpoch: 2, log: h3 }), rd({ entries: [noop(2, 3)], hardState: hard(2, 2) }));
    inv.step([view(3, { state: 'leading', epoch: 2, epochStart: 3, established: true, acceptedEpoch: 2, currentEpoch: 2, commit: 3, log: h3, token: 3 })]);
    const all = inv.violations.join('\n');
    expect(all).toMatch(/primary integrity: leader 3 of epoch 2 lacks \(1, 3\)/);
    expect(all).toMatch(/leader 3 established epoch 2 with 1 voter\(s\) synchronized durably/);
    const inv2 = new ZabInvariants({ config });
    inv2.started(view(1), hard(1, 1));
    const early = view(1, { state: 'leading', phase: 'synchronization', commit: 0, log: [noop(1, 1), cmd(1, 2, 'x')] });
    inv2.ready(early, rd({ entries: [noop(1, 1), cmd(1, 2, 'x')] }));
    expect(inv2.violations.join('\n')).toMatch(/primary 1 broadcast \(1, 2\) before delivering its initial history/);
  });

  it('one primary per epoch, epoch start first, and histories hold only broadcast transactions with matching predecessors', () => {
    const inv = new ZabInvariants({ config });
    for (const id of [1, 2, 3]) inv.started(view(id), hard(0, 0));
    inv.ready(view(1, { state: 'leading', epoch: 1, log: [cmd(1, 1, 'x')] }), rd({ entries: [cmd(1, 1, 'x')] }));
    expect(inv.violations.join('\n')).toMatch(/began it with a Normal at 1, not the epoch-start no-op/);
    inv.ready(view(2, { state: 'leading', epoch: 1, log: [noop(1, 1)] }), rd({ entries: [noop(1, 1)] }));
    expect(inv.violations.join('\n')).toMatch(/two primaries in epoch 1: 1 and 2/);
    inv.ready(view(3, { log: [noop(4, 1)] }), rd({ entries: [noop(4, 1)] }));
    expect(inv.violations.join('\n')).toMatch(/node 3 persisted \(4, 1\) that the primary of epoch 4 \(none\) never broadcast/);
  });

  it('acknowledgements must not run ahead of the disk', () => {
    const inv = new ZabInvariants({ config });
    epoch1(inv);
    const ack = (index: number): Message => ({ type: MsgType.ZabAck, from: 2, to: 1, term: 1, index, ok: true, commit: 0 });
    inv.ready(view(2), rd({ messages: [ack(3)] })); // its durable history ends at 1
    expect(inv.violations.join('\n')).toMatch(/node 2 acknowledged index 3 of epoch 1 while its durable history ends at 1/);
    const inv2 = new ZabInvariants({ config });
    inv2.started(view(2), hard(0, 0));
    inv2.ready(view(2), rd({ messages: [{ type: MsgType.ZabAckEpoch, from: 2, to: 1, term: 4, ok: true, currentEpoch: 0, lastIndex: 0, lastTerm: 0, commit: 0 }] }));
    inv2.ready(view(2), rd({ messages: [{ type: MsgType.ZabAckNewLeader, from: 2, to: 1, term: 4, index: 0 }] }));
    const all = inv2.violations.join('\n');
    expect(all).toMatch(/acknowledged epoch 4 with durable acceptedEpoch 0/);
    expect(all).toMatch(/acknowledged NEWLEADER\(4\) at 0 with durable history to 0 and currentEpoch 0/);
  });

  it('epochs never go back, currentEpoch never above acceptedEpoch, commit within the history', () => {
    const inv = new ZabInvariants({ config });
    inv.started(view(1, { acceptedEpoch: 3, currentEpoch: 3 }), hard(3, 3));
    inv.step([view(1, { acceptedEpoch: 2, currentEpoch: 2 })]);
    inv.step([view(1, { acceptedEpoch: 2, currentEpoch: 3, commit: 5 })]);
    inv.ready(view(1), rd({ hardState: hard(2, 2) }));
    inv.started(view(1), hard(1, 1));
    const all = inv.violations.join('\n');
    expect(all).toMatch(/acceptedEpoch\/currentEpoch\/commit went back/);
    expect(all).toMatch(/currentEpoch 3 above acceptedEpoch 2/);
    expect(all).toMatch(/commit 5 beyond its last index 0/);
    expect(all).toMatch(/persisted acceptedEpoch\/currentEpoch 2\/2 after 3\/3: epochs went back/);
    expect(all).toMatch(/restarted with acceptedEpoch 1\/currentEpoch 1 below what it had persisted/);
  });

  it('reads: an answer below what was committed when it was asked', () => {
    const inv = new ZabInvariants({ config });
    inv.started(view(1), hard(1, 1));
    inv.step([view(1, { commit: 7, lastIndex: 9 })]);
    inv.readStarted(1, 5);
    inv.readServed(1, 5, 6);
    inv.readServed(1, 6, 8);
    const all = inv.violations.join('\n');
    expect(all).toMatch(/linearizable read: node 1 read 5 at index 6, but 7 was committed before it was asked/);
    expect(all).toMatch(/answered read 6, never asked/);
  });

  it('fencing tokens: not the epoch start, not committed, or not growing with epochs', () => {
    const inv = new ZabInvariants({ config });
    const lead = (epoch: number, token: number, commit: number) =>
      view(1, { state: 'leading', established: true, epoch, acceptedEpoch: epoch, currentEpoch: epoch, epochStart: token, token, commit, lastIndex: 20 });
    inv.started(view(1), hard(5, 5));
    inv.step([lead(5, 10, 10)]);
    inv.step([lead(6, 8, 8)]); // a later epoch with a smaller token
    inv.step([lead(7, 12, 11)]); // issued before committed
    inv.step([view(2, { token: 4, epochStart: 5 })]);
    const all = inv.violations.join('\n');
    expect(all).toMatch(/fencing tokens do not grow with epochs: epoch 5 has 10, epoch 6 has 8/);
    expect(all).toMatch(/token 12 issued before it was committed \(commit 11\)/);
    expect(all).toMatch(/node 2 holds token 4 without being an established leader/);
    expect(all).toMatch(/node 2: token 4 is not its epoch start 5/);
  });

  it('throwOnViolation throws at the first one', () => {
    const inv = new ZabInvariants({ config, throwOnViolation: true });
    inv.started(view(1), hard(1, 1));
    expect(() => inv.step([view(1, { acceptedEpoch: 1, currentEpoch: 2 })])).toThrow(/zab invariant: node 1: currentEpoch 2 above acceptedEpoch 1/);
  });
});
