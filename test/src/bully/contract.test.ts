/**
 * The bully engine behind the engine contract (src/bully/engine.ts): hard state mapping
 * (term = epoch, vote = held), acted role only after advance, refusals of what needs a
 * log, restart from the persisted hard state, and a small cluster that elects the
 * highest board through the contract's Ready loop alone.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { BullyEngine, fencingToken } from '../../../src/bully/index.ts';
import type { HardState, Ready } from '../../../src/engine/contract.ts';
import type { Message } from '../../../src/wire/messages.ts';

const config = { voters: [1, 2, 3], learners: [], witnesses: [] };
const make = (id: number, hardState?: HardState) => new BullyEngine({ id, config, rng: new Rng(id), ...(hardState ? { hardState } : {}) });

/** Runs engines in lock step: persist (record), deliver, advance; returns the durable hard states. */
function run(engines: BullyEngine[], ticks: number, durable: Map<number, HardState>): void {
  const byId = new Map(engines.map((e) => [e.id, e]));
  let inflight: Message[] = [];
  for (let t = 0; t < ticks; t++) {
    for (const e of engines) e.tick();
    const next: Message[] = [];
    for (const m of inflight) byId.get(m.to)?.step(m);
    for (const e of engines) {
      for (let rd: Ready | undefined = e.ready(); rd; rd = e.ready()) {
        if (rd.hardState) durable.set(e.id, rd.hardState);
        for (const m of rd.messages) expect(m.term).toBeLessThanOrEqual(durable.get(e.id)?.term ?? 0);
        next.push(...rd.messages);
        e.advance(rd);
      }
    }
    inflight = next;
  }
}

describe('BullyEngine (engine contract)', () => {
  it('is election only: caps.log false; propose, readIndex, transfer and compact refuse with not-supported', () => {
    const e = make(1);
    expect(e.caps.log).toBe(false);
    expect(e.caps.reads).toBe(false);
    for (const r of [e.propose(new Uint8Array([1])), e.readIndex(7), e.transferLeadership(2), e.compact(1, new Uint8Array())]) {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.code).toBe('not-supported');
    }
    expect(e.entryAt(1)).toBeUndefined();
    expect(e.name).toBe('bully');
    expect(e.tickMs).toBe(10);
  });

  it('the highest voter wins; hard state is {term: epoch, vote: held}; the role is acted only after advance', () => {
    const es = [make(1), make(2), make(3)];
    const durable = new Map<number, HardState>();
    run(es, 60, durable);
    const [a, b, c] = es as [BullyEngine, BullyEngine, BullyEngine];
    expect(c.isLeader).toBe(true);
    expect(a.isLeader || b.isLeader).toBe(false);
    const ep = c.status().term;
    expect(ep).toBeGreaterThan(0);
    expect(durable.get(3)).toEqual({ term: ep, vote: ep, commit: 0 });
    expect(durable.get(1)?.vote).toBe(0);
    expect(c.leaderToken()).toBe(fencingToken(ep, 3));
    expect(a.leaderToken()).toBe(0);
    expect(a.status().leader).toBe(3);
    expect(a.status().role).toBe('follower');
    expect(c.status().role).toBe('leader');

    // Node 3 coordinates in memory before its epoch is durable: not acted yet.
    const fresh = make(3, { term: 5, vote: 2, commit: 0 });
    expect(fresh.campaign().ok).toBe(true);
    expect(fresh.bullyStatus().role).toBe('coordinator');
    expect(fresh.isLeader).toBe(false);
    expect(fresh.leaderToken()).toBe(0);
    const rd = fresh.ready()!;
    expect(rd.hardState).toEqual({ term: 6, vote: 6, commit: 0 });
    expect(rd.softState).toMatchObject({ role: 'leader', leader: 3, term: 6 });
    expect(() => fresh.ready()).toThrow(/advance/);
    fresh.advance(rd);
    expect(fresh.isLeader).toBe(true);
    expect(fresh.leaderToken()).toBe(fencingToken(6, 3));
  });

  it('restarts from the persisted hard state: never reuses an epoch; leaderGone of the coordinator starts an election', () => {
    const e = make(2, { term: 9, vote: 4, commit: 0 });
    expect(e.bullyStatus().epoch).toBe(9);
    expect(e.hardState).toEqual({ term: 9, vote: 4, commit: 0 });
    e.step({ type: 22, from: 3, to: 2, term: 10, priority: 3 } as Message);
    let rd = e.ready()!;
    e.advance(rd);
    expect(e.status().leader).toBe(3);
    expect(e.leaderGone(3)).toEqual({ ok: true, forgot: false });
    rd = e.ready()!;
    // Node 2 is below 3 only: it has nobody higher alive to ask but 3 → it sends Election to 3.
    expect(rd.messages.map((m) => m.to)).toEqual([3]);
    e.advance(rd);
    expect(() => make(1, { term: 3, vote: 4, commit: 0 })).toThrow(/held/);
  });

  it('a witness (priority 0) never leads', () => {
    const w = new BullyEngine({ id: 4, config: { voters: [1, 2], learners: [], witnesses: [4] }, rng: new Rng(4) });
    expect(w.campaign().ok).toBe(false);
    expect(w.status().isWitness).toBe(true);
  });
});
