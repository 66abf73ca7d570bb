/**
 * The invariant checkers on their own, fed by hand: each check reports the violation
 * it exists for, names it, and stays quiet for the legal case next to it.
 */
import { describe, expect, it } from 'vitest';
import { PaxosInvariants, SynodInvariants, ballotOf } from '../../../src/paxos/index.ts';
import { EntryType } from '../../../src/wire/messages.ts';

const t = (s: string) => new TextEncoder().encode(s);
const B1 = ballotOf(1, 1);
const B2 = ballotOf(1, 2);
const B3 = ballotOf(2, 3);
const val = (origin: number, s: string | undefined, type = EntryType.Normal) => ({ origin, type, data: s === undefined ? undefined : t(s) });

describe('PaxosInvariants', () => {
  it('one-value: two values chosen in one slot at different ballots', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    inv.proposed(1, B1, t('a'));
    inv.proposed(1, B3, t('b'));
    inv.voteDurable(1, 1, B1, val(B1, 'a'));
    inv.voteDurable(2, 1, B1, val(B1, 'a'));
    expect(inv.chosen(1)).toMatchObject({ origin: B1 });
    // The same value again at a higher ballot (a re-proposal) is fine...
    inv.voteDurable(2, 1, B3, val(B1, 'a'));
    inv.voteDurable(3, 1, B3, val(B1, 'a'));
    expect(inv.violations).toEqual([]);
    // ...another value chosen there is not.
    const inv2 = new PaxosInvariants([1, 2, 3]);
    inv2.proposed(1, B1, t('a'));
    inv2.proposed(1, B3, t('b'));
    for (const n of [1, 2]) inv2.voteDurable(n, 1, B1, val(B1, 'a'));
    for (const n of [2, 3]) inv2.voteDurable(n, 1, B3, val(B3, 'b'));
    expect(inv2.violations).toEqual([expect.stringMatching(/^one-value: slot 1: origin 2\.3.* but origin 1\.1.* was chosen at ballot 1\.1/)]);
  });

  it('one-value-per-ballot: two acceptors holding different values at one (slot, ballot)', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    inv.voteDurable(1, 4, B2, val(B2, 'x'));
    inv.voteDurable(2, 4, B2, val(B2, 'y'));
    expect(inv.violations[0]).toMatch(/^one-value-per-ballot: slot 4, ballot 1\.2/);
  });

  it('a witness vote (no data) counts toward a quorum and agrees with any data', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    inv.proposed(1, B1, t('a'));
    inv.voteDurable(3, 1, B1, val(B1, undefined));
    inv.voteDurable(1, 1, B1, val(B1, 'a'));
    expect(inv.chosen(1)?.data).toEqual(t('a'));
    inv.applied(3, 1, val(B1, undefined));
    inv.applied(1, 1, val(B1, 'a'));
    expect(inv.violations).toEqual([]);
  });

  it('proposed: a chosen command nobody proposed, or other bytes than proposed; no-ops need no proposal', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    for (const n of [1, 2]) inv.voteDurable(n, 1, B1, val(B1, undefined, EntryType.Noop));
    for (const n of [1, 2]) inv.voteDurable(n, 2, B1, val(B1, 'ghost'));
    inv.proposed(3, B1, t('real'));
    for (const n of [1, 2]) inv.voteDurable(n, 3, B1, val(B1, 'fake'));
    expect(inv.violations).toEqual([
      expect.stringMatching(/^proposed: slot 2: .* no client proposed/),
      expect.stringMatching(/^proposed: slot 3: the chosen command differs/),
    ]);
  });

  it('learned-chosen and applied-prefix: applying before it is chosen, another value, out of order, twice', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    inv.applied(1, 1, val(B1, 'a'));
    expect(inv.violations[0]).toMatch(/^learned-chosen: replica 1 applied slot 1 .* before any value was chosen/);
    const inv2 = new PaxosInvariants([1, 2, 3]);
    inv2.proposed(1, B1, t('a'));
    for (const n of [1, 2]) inv2.voteDurable(n, 1, B1, val(B1, 'a'));
    inv2.applied(1, 1, val(B1, 'a'));
    inv2.applied(2, 1, val(B2, 'b'));
    inv2.applied(1, 1, val(B1, 'a'));
    inv2.applied(3, 2, val(B1, 'a'));
    expect(inv2.violations).toEqual([
      expect.stringMatching(/^learned-chosen: replica 2 applied origin 1\.2/),
      expect.stringMatching(/^applied-prefix: replica 2 applied origin 1\.2.* another replica applied origin 1\.1/),
      expect.stringMatching(/^applied-prefix: replica 1 applied slot 1 after 1/),
      expect.stringMatching(/^applied-prefix: replica 3 applied slot 2 after 0/),
      expect.stringMatching(/^learned-chosen: replica 3 applied slot 2/),
    ]);
    // After a snapshot reset, applying continues from the snapshot.
    const inv3 = new PaxosInvariants([1]);
    inv3.proposed(6, B1, t('z'));
    inv3.voteDurable(1, 6, B1, val(B1, 'z'));
    inv3.appliedReset(1, 5);
    inv3.applied(1, 6, val(B1, 'z'));
    expect(inv3.violations).toEqual([]);
  });

  it('votes-kept: a vote lowered, or missing after a restart; a snapshot of the chosen prefix may drop votes', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    inv.voteDurable(1, 1, B3, val(B3, 'a'));
    inv.voteDurable(1, 1, B1, val(B1, 'b'));
    expect(inv.violations[0]).toMatch(/^votes-kept: acceptor 1 replaced its vote at slot 1, ballot 2\.3, by a lower ballot 1\.1/);
    const inv2 = new PaxosInvariants([1, 2, 3]);
    inv2.voteDurable(2, 1, B1, val(B1, 'a'));
    inv2.voteDurable(2, 2, B1, val(B1, 'b'));
    inv2.voteDurable(2, 3, B1, val(B1, 'c'));
    inv2.snapshotDurable(2, 1);
    inv2.restarted(2, B1, 1, new Map([[2, B1]]));
    expect(inv2.violations).toEqual([expect.stringMatching(/^votes-kept: acceptor 2 restarted without its durable vote at slot 3/)]);
  });

  it('promise-kept, ballot-owner and token-grows', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    inv.promiseDurable(1, B3);
    inv.restarted(1, B1, 0, new Map());
    inv.leadership(2, B1, 0);
    inv.leadership(3, B3, 10);
    inv.leadership(3, B3, 10); // the same leadership again: fine
    inv.leadership(2, ballotOf(3, 2), 8);
    inv.leadership(2, ballotOf(3, 2), 9);
    expect(inv.violations).toEqual([
      'promise-kept: acceptor 1 restarted with promise 1.1 below its durable promise 2.3',
      'ballot-owner: node 2 leads with ballot 1.1, which belongs to node 1',
      'token-grows: leader 2 (ballot 3.2) issued token 8, not above the earlier token 10',
      'token-grows: leader 2 (ballot 3.2) changed its token from 8 to 9',
    ]);
  });

  it('a disabled check reports nothing', () => {
    const inv = new PaxosInvariants([1, 2, 3]);
    inv.disabled.add('ballot-owner');
    inv.leadership(2, B1, 0);
    expect(inv.ok).toBe(true);
  });
});

describe('SynodInvariants', () => {
  it('one value chosen, proposed, learned as chosen, one value per ballot, promise kept', () => {
    const inv = new SynodInvariants([1, 2, 3]);
    inv.proposed('a');
    inv.learned(1, 'a');
    inv.acceptDurable(1, B1, 'a');
    inv.acceptDurable(2, B1, 'a');
    expect(inv.chosen).toBe('a');
    inv.acceptDurable(3, B1, 'zzz');
    inv.acceptDurable(2, B3, 'b');
    inv.acceptDurable(3, B3, 'b');
    inv.learned(2, 'b');
    inv.restarted(2, B1);
    expect(inv.violations).toEqual([
      'learned-chosen: node 1 learned "a" before any value was chosen',
      'one-value-per-ballot: acceptor 3 accepted "zzz" at ballot 1.1, others accepted "a" there',
      expect.stringMatching(/^one-value: "b" chosen at ballot 2\.3 by acceptors 2,3, but "a" was chosen at ballot 1\.1/),
      'learned-chosen: node 2 learned "b", the chosen value is "a"',
      'promise-kept: acceptor 2 restarted with promise 1.1 below its durable promise 2.3',
    ]);
    const inv2 = new SynodInvariants([1]);
    inv2.acceptDurable(1, B1, 'never-proposed');
    expect(inv2.violations).toEqual(['proposed: value "never-proposed" was chosen at ballot 1.1 but no client proposed it']);
  });
});
