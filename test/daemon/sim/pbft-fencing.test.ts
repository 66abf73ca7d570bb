/**
 * STONITH under engine pbft (daemon/runtime/pbft-fencing.ts, src/pbft/actuation.ts) in
 * the simulator (virtual time): relays in every data board's supply, driven by its
 * neighbours; each board's failure detector votes through the log; a fence runs only on
 * a committed decision of f + 1 distinct members, on the boards wired to the target.
 *   - a stopped process (SIGSTOP) is voted off by the others and its relay opened, then
 *     closed again after the power-on delay;
 *   - a liar that votes to fence every board all the time fences no honest board while
 *     the honest boards hear each other (a liar that withholds its own messages is
 *     unheard and may be fenced itself) — and with the planted one-vote tally it does,
 *     and the simulator's check (pbft-fence-vote) says so;
 *   - a relay opened without any decision (a board acting on its own) is caught by
 *     pbft-fence-undecided;
 *   - the codec of fence requests and the checkpointed state with the tally.
 */
import { describe, expect, it } from 'vitest';
import { runEngineSeed } from '../../../daemon/sim/engine-cluster.ts';
import { parseSimOptions } from '../../../daemon/sim/options.ts';
import { decodeFenceOp, encodeFenceOp, isFenceOp } from '../../../daemon/runtime/pbft-fencing.ts';
import { ClientTable, decodePbftState, encodePbftState, isClientOp } from '../../../daemon/runtime/pbft-clients.ts';
import { FenceTally, type FenceDecision } from '../../../src/pbft/actuation.ts';
import type { FenceRecord } from '../../../src/fence/index.ts';
import type { EngineRuntimeObserver } from '../../../daemon/runtime/engine-node.ts';
import type { NodeId } from '../../../src/types.ts';

interface Seen {
  decisions: Array<{ node: NodeId; d: FenceDecision }>;
  fences: Array<{ node: NodeId; rec: FenceRecord }>;
  votes: Array<{ node: NodeId; target: NodeId; suspects: boolean }>;
}

function watch(seen: Seen): (o: EngineRuntimeObserver) => EngineRuntimeObserver {
  return (o) => ({
    ...o,
    pbftFenceDecided: (rt, d) => {
      seen.decisions.push({ node: rt.id, d });
      o.pbftFenceDecided?.(rt, d);
    },
    pbftFenceVoted: (rt, reqNo, req, suspects) => {
      if (req.kind === 'suspect') seen.votes.push({ node: rt.id, target: req.target, suspects });
      o.pbftFenceVoted?.(rt, reqNo, req, suspects);
    },
    fenced: (rt, rec) => {
      seen.fences.push({ node: rt.id, rec });
      o.fenced?.(rt, rec);
    },
  });
}

const fresh = (): Seen => ({ decisions: [], fences: [], votes: [] });

describe('pbft fencing in quorumd sim', () => {
  it('a stopped board is voted off by f + 1 others; the boards wired to it open its relay, then close it', () => {
    // No faults but one: n2's process stops at 3 s for 30 s (SIGSTOP). Its neighbours n1 and n3 switch its supply.
    const cfg = parseSimOptions({ seed: 5, engine: 'pbft', nodes: 4, time: '25s', faults: '' });
    const seen = fresh();
    let offAt = -1;
    let railSeen = true;
    const r = runEngineSeed(cfg, 5, {
      skipLin: true,
      wrapObserver: watch(seen),
      setup: ({ world }) => {
        world.sched.after(3_000_000, () => world.board(2).stall(30_000));
        const poll = () => {
          if (offAt < 0 && !world.board(2).railLive) offAt = world.nowMs;
          if (offAt >= 0 && world.board(2).railLive) railSeen = true;
          else if (offAt >= 0) railSeen = false;
          if (world.nowMs < 24_000) world.sched.after(50_000, poll);
        };
        poll();
      },
    });
    expect(r.violation, JSON.stringify(r.violation)).toBeUndefined();
    const about2 = seen.decisions.filter((x) => x.d.target === 2);
    expect(about2.length).toBeGreaterThan(0);
    const first = about2[0]!.d;
    expect(first.by.length).toBeGreaterThanOrEqual(2); // f + 1 with f = 1
    expect(first.by).not.toContain(2);
    // Every replica that executed it decided the same, at the same sequence number.
    for (const x of about2.filter((y) => y.d.round === first.round)) expect([x.d.index, x.d.by]).toEqual([first.index, first.by]);
    // Its voters' detectors suspected it.
    for (const v of seen.votes.filter((x) => x.target === 2 && first.by.includes(x.node))) expect(v.suspects).toBe(true);
    // n1 and n3 (wired to n2) fenced it: off, and verified by the power-sense input.
    const fencers = [...new Set(seen.fences.filter((f) => f.rec.target === 2 && (f.rec.outcome === 'off' || f.rec.outcome === 'already-off')).map((f) => f.node))].sort();
    expect(fencers.length).toBeGreaterThan(0);
    for (const n of fencers) expect([1, 3]).toContain(n);
    expect(offAt).toBeGreaterThan(3000 + 4000); // not before the detector's 4 s
    expect(railSeen).toBe(true); // powered on again ('reboot' after 3 s)
    // Nobody else was fenced.
    expect(seen.decisions.every((x) => x.d.target === 2)).toBe(true);
  }, 120_000);

  it('a liar voting to fence everyone all the time fences no honest board; with a one-vote tally it would, and pbft-fence-vote catches it', () => {
    // Liars only (no network faults): every honest board hears every other, so only liars vote.
    let caught: { seed: number; detail: string } | undefined;
    for (let seed = 1; seed <= 8 && !caught; seed++) {
      const cfg = parseSimOptions({ seed, engine: 'pbft', nodes: 4, time: '10s', faults: 'byzantine' });
      const seen = fresh();
      const liars = new Set<NodeId>();
      const r = runEngineSeed(cfg, seed, { skipLin: true, wrapObserver: watch(seen), onRuntime: (rt) => rt.byzantine && liars.add(rt.id) });
      expect(r.violation, `seed ${seed}: ${JSON.stringify(r.violation)}`).toBeUndefined();
      expect(liars.size).toBe(1);
      // A liar that withholds its messages goes unheard and may be fenced (that is the point); an honest board never.
      for (const x of seen.decisions) expect(liars.has(x.d.target), `seed ${seed}: n${x.d.target} fenced by ${x.d.by}`).toBe(true);
      for (const f of seen.fences) expect(liars.has(f.rec.target)).toBe(true);
      expect(seen.votes.some((v) => liars.has(v.node) && !v.suspects)).toBe(true); // the liar did vote, against boards it hears
      const bad = runEngineSeed(cfg, seed, { skipLin: true, pbftPlantedTally: 'one-vote' });
      if (bad.violation) {
        expect(bad.violation.invariant).toBe('pbft-fence-vote');
        caught = { seed, detail: bad.violation.detail };
      }
    }
    expect(caught, 'the planted one-vote tally was not caught in seeds 1..8').toBeDefined();
    expect(caught!.detail).toMatch(/none is an honest board's vote/);
  }, 240_000);

  it('a relay switched off without a decision is caught (pbft-fence-undecided)', () => {
    // A board that switches a neighbour off on its own (as a bug or a liar wired to a relay could): n1 opens n2's relay at 3 s.
    const cfg = parseSimOptions({ seed: 7, engine: 'pbft', nodes: 4, time: '8s', faults: '' });
    const r = runEngineSeed(cfg, 7, {
      skipLin: true,
      setup: ({ world }) => world.sched.after(3_000_000, () => world.board(1).hal!.relays.find((x) => x.name === 'relay:2')!.set(false, () => {})),
    });
    expect(r.violation?.invariant).toBe('pbft-fence-undecided');
    expect(r.violation?.detail).toMatch(/n2 is off because of fencing .* but no replica executed a decision to fence it/);
    // The same seed without it: no violation, no fence.
    const clean = runEngineSeed(cfg, 7, { skipLin: true });
    expect(clean.violation).toBeUndefined();
    expect(clean.fences).toBe(0);
  }, 120_000);

  it('fence requests: codec; the checkpointed state carries the tally beside the client table', () => {
    const s = encodeFenceOp({ kind: 'suspect', target: 3, round: 2 });
    expect(isFenceOp(s)).toBe(true);
    expect(isClientOp(s)).toBe(false);
    expect(decodeFenceOp(s)).toEqual({ kind: 'suspect', target: 3, round: 2 });
    expect(decodeFenceOp(encodeFenceOp({ kind: 'clear', target: 9 }))).toEqual({ kind: 'clear', target: 9 });
    expect(decodeFenceOp(new Uint8Array([0x84, 0x18, 220, 0x02, 0x03, 0x00]))).toMatch(/kind must be 0/);
    expect(decodeFenceOp(new Uint8Array([0x84, 0x18, 220, 0x00, 0x00, 0x00]))).toMatch(/target must be a node id/);
    expect(decodeFenceOp(new Uint8Array([0x84, 0x18, 220]))).toMatch(/not valid CBOR/);

    const kv = new Uint8Array([1, 2, 3]);
    expect(encodePbftState(kv, new ClientTable())).toEqual(kv); // no clients, no votes: the KV snapshot as before
    const t = new FenceTally({ members: [1, 2, 3, 4], f: 1 });
    t.apply({ index: 1, origin: 2, reqNo: 1, request: { kind: 'suspect', target: 4, round: 0 } });
    const st = decodePbftState(encodePbftState(kv, new ClientTable(), t.encode()));
    if (typeof st === 'string') throw new Error(st);
    expect(st.kv).toEqual(kv);
    expect(st.table.size).toBe(0);
    const back = FenceTally.decode({ members: [1, 2, 3, 4], f: 1 }, st.fences!);
    expect(typeof back === 'string' ? back : back.voters(4)).toEqual([2]);
  });
});
