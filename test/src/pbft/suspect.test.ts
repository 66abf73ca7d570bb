/**
 * Complaints before a view change (src/pbft/pbft.ts "Suspicion"), on one replica fed
 * messages by hand: its own expired timer is a complaint, not a VIEW-CHANGE, and not a
 * vote of its own; f + 1 fresh complaints of other replicas (or VIEW-CHANGEs for a later
 * view) start the view change; a stale complaint, one for another view, or f
 * complaints alone do not — not even with its own timer expired (one liar could
 * otherwise pull it into a view nobody else follows).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { PbftNode } from '../../../src/pbft/pbft.ts';
import { SimulatedKeys } from '../../../src/pbft/auth.ts';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import { Cluster } from './harness.ts';

const members = [1, 2, 3, 4];
const keys = new SimulatedKeys(members, 'suspect-test');
// retransmitMs 200 = 20 ticks: a complaint counts for 60 ticks.
const node = (id: number) => new PbftNode({ id, config: { voters: members, learners: [], witnesses: [] }, auth: keys.auth(id), rng: new Rng(id), options: { viewChangeTimeoutMs: 1000 } });
const suspect = (from: number, to: number, view = 0): Message => ({ type: MsgType.PbftSuspect, from, to, term: view });

function drain(n: PbftNode): Message[] {
  const out: Message[] = [];
  for (let rd = n.ready(); rd; rd = n.ready()) {
    out.push(...rd.messages);
    n.advance(rd);
  }
  return out;
}
const ticks = (n: PbftNode, k: number): Message[] => {
  const out: Message[] = [];
  for (let i = 0; i < k; i++) {
    n.tick();
    out.push(...drain(n));
  }
  return out;
};

describe('pbft complaints', () => {
  it('an expired timer sends SUSPECT and keeps the replica in its view; f + 1 other replicas complaining change it', () => {
    const n = node(2);
    drain(n);
    expect(n.propose(new Uint8Array([1])).ok).toBe(true); // a request of ours the primary (1, silent here) never orders
    drain(n);
    const sent = ticks(n, 100); // 1000 ms
    expect(sent.some((m) => m.type === MsgType.PbftSuspect && m.term === 0)).toBe(true);
    expect(sent.some((m) => m.type === MsgType.PbftViewChange)).toBe(false);
    expect([n.currentView, n.inViewChange, n.status().suspicions]).toEqual([0, false, 1]);
    // resent every retransmission period while the timer stays expired
    expect(ticks(n, 20).filter((m) => m.type === MsgType.PbftSuspect).length).toBeGreaterThanOrEqual(3);
    n.step(suspect(3, 2, 1)); // about another view: ignored
    expect(n.inViewChange).toBe(false);
    n.step(suspect(3, 2)); // one other (f = 1): our own complaint does not make it f + 1
    expect(n.inViewChange).toBe(false);
    n.step(suspect(4, 2)); // f + 1 = 2 others
    expect([n.currentView, n.inViewChange]).toEqual([1, true]);
    expect(drain(n).some((m) => m.type === MsgType.PbftViewChange && m.term === 1)).toBe(true);
  });

  it('pbft seed 188: one complaint withdrawn a moment later (or a liar\'s) does not move a replica whose own timer expired', () => {
    const n = node(2);
    drain(n);
    expect(n.propose(new Uint8Array([1])).ok).toBe(true);
    drain(n);
    ticks(n, 40);
    n.step(suspect(4, 2)); // 4 complains once, then makes progress and stops
    const sent = ticks(n, 60); // our timer expires while 4's complaint is still fresh
    expect(sent.some((m) => m.type === MsgType.PbftSuspect && m.term === 0)).toBe(true);
    expect(sent.some((m) => m.type === MsgType.PbftViewChange)).toBe(false);
    expect([n.currentView, n.inViewChange]).toEqual([0, false]);
  });

  it('f complaints of others alone never change the view; f + 1 fresh ones do, stale ones do not count', () => {
    const n = node(2);
    drain(n);
    n.step(suspect(3, 2));
    ticks(n, 200);
    n.step(suspect(3, 2)); // one replica, however often: f = 1
    expect(n.inViewChange).toBe(false);
    ticks(n, 61); // 3's complaint is now stale
    n.step(suspect(4, 2));
    expect(n.inViewChange).toBe(false);
    n.step(suspect(3, 2)); // 3 and 4 fresh: f + 1
    expect([n.currentView, n.inViewChange]).toEqual([1, true]);
  });
});

describe('pbft complaints in a view change (the NEW-VIEW timer)', () => {
  /** Replica 3 in the view change to view 1 with 2f + 1 VIEW-CHANGEs: its NEW-VIEW timer runs (the primary of view 1, 2, stays silent). */
  function inViewChange(): { n: PbftNode; ticks: number } {
    const others = [1, 4].map((id) => node(id));
    const vcs: Message[] = [];
    for (const o of others) {
      drain(o);
      o.step(suspect(o.id === 1 ? 2 : 1, o.id)); // two complaints each: f + 1
      o.step(suspect(3, o.id));
      expect(o.currentView).toBe(1);
      vcs.push(...drain(o).filter((m) => m.type === MsgType.PbftViewChange && m.to === 3));
    }
    const n = node(3);
    drain(n);
    for (const m of vcs) n.step(m); // f + 1 VIEW-CHANGEs for view 1: it joins, 2f + 1 with its own
    expect([n.currentView, n.inViewChange]).toEqual([1, true]);
    drain(n);
    // viewChangeTimeoutMs 1000 = 100 ticks, doubled by the view change: 200 ticks.
    return { n, ticks: 200 };
  }

  it('the expired NEW-VIEW timer complains and keeps waiting in the view; f + 1 complaints move on', () => {
    const { n, ticks: t } = inViewChange();
    const sent = ticks(n, t);
    expect(sent.some((m) => m.type === MsgType.PbftSuspect && m.term === 1)).toBe(true);
    expect(sent.some((m) => m.type === MsgType.PbftViewChange && m.term === 2)).toBe(false);
    expect([n.currentView, n.inViewChange]).toEqual([1, true]);
    expect(ticks(n, 5 * t).some((m) => m.type === MsgType.PbftViewChange && m.term === 2)).toBe(false); // alone, never
    expect(n.currentView).toBe(1);
    n.step(suspect(4, 3, 1)); // one other replica gave up on view 1 too: f, with our own not counted
    expect([n.currentView, n.inViewChange]).toEqual([1, true]);
    n.step(suspect(1, 3, 1)); // f + 1 others
    expect([n.currentView, n.inViewChange]).toEqual([2, true]);
    expect(drain(n).some((m) => m.type === MsgType.PbftViewChange && m.term === 2)).toBe(true);
  });

  it('f complaints of others alone do not move a replica in a view change', () => {
    const { n, ticks: t } = inViewChange();
    n.step(suspect(4, 3, 1)); // one liar (f = 1) complaining about view 1
    ticks(n, t - 10);
    n.step(suspect(4, 3, 1));
    expect([n.currentView, n.inViewChange]).toEqual([1, true]);
  });
});

describe('pbft: the primary reported gone (leaderGone)', () => {
  // Backups keep proposing; the primary crashes with requests in flight; the link
  // tells every backup it is gone. Its last PRE-PREPAREs still commit among the three
  // backups right after — which used to end the hint, so the view change waited the
  // full view-change timeout (4 s; 4-15 s on real processes after a SIGTERM of the
  // primary, bench/chaos-soak.ts) instead of about one retransmission period.
  const opts = { tickMs: 10, viewChangeTimeoutMs: 4000, maxViewChangeTimeoutMs: 60_000, retransmitMs: 200, statusMs: 1000, checkpointInterval: 32 };
  function failover(seed: number, hint: boolean): number {
    const c = new Cluster({ seed, n: 4, options: opts, net: { maxDelay: 3 } });
    let i = 0;
    const load = () => {
      for (const o of [2, 3, 4]) c.submit(o, `set k${o} v${i++}`);
    };
    for (let t = 0; t < 100; t++) {
      if (t % 5 === 0) load();
      c.tick();
    }
    expect(c.replica(2).e.executedIndex).toBeGreaterThan(20);
    c.crash(1);
    if (hint) for (const b of [2, 3, 4]) expect(c.replica(b).e.leaderGone(1)).toEqual({ ok: true, forgot: true });
    for (let t = 1; t <= 1000; t++) {
      if (t % 5 === 0) load();
      c.tick();
      if ([2, 3, 4].every((b) => c.replica(b).e.currentView >= 1 && c.replica(b).e.status().detail === 'normal')) {
        expect(c.inv.violations).toEqual([]);
        return t * opts.tickMs;
      }
    }
    throw new Error(`seed ${seed}: no new view within 10 s`);
  }

  it('the backups move to the next view within about one retransmission period, though the dead primary\'s last requests execute after the report', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const withHint = failover(seed, true);
      expect(withHint, `seed ${seed}`).toBeLessThan(1000);
      // Without the report the view-change timeout decides: the hint is what makes it fast.
      expect(failover(seed, false), `seed ${seed}`).toBeGreaterThanOrEqual(4000);
    }
  });
});
