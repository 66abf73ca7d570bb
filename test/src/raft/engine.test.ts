/**
 * Raft on the engine contract (src/raft/engine.ts): capabilities, the role mapping,
 * options, foreign messages, the fencing token, and the optional extensions the
 * runtime uses (dropLease, acknowledges, isCampaignRequest, proposeConfChange).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import type { Engine, Ready } from '../../../src/engine/contract.ts';
import { RaftEngine } from '../../../src/raft/index.ts';
import { EntryType, MsgType, type Message } from '../../../src/wire/messages.ts';
import type { NodeId } from '../../../src/types.ts';
import { Cluster, text } from './harness.ts';

/** A lossless in-memory loop over RaftEngines through the contract only (persisting is a no-op: nothing crashes). */
function contractCluster(ids: NodeId[], seed: number, witnesses: NodeId[] = []) {
  const config = { voters: ids, learners: [], witnesses };
  const rng = new Rng(seed);
  const engines = new Map<NodeId, Engine>();
  for (const id of [...ids, ...witnesses]) engines.set(id, new RaftEngine({ id, config, rng: rng.fork(`n${id}`), options: { preVote: true } }));
  const roles: string[] = [];
  const drain = () => {
    for (let guard = 0; guard < 1000; guard++) {
      let moved = false;
      const inflight: Message[] = [];
      for (const e of engines.values()) {
        const eager = e.takeEager?.() ?? [];
        inflight.push(...eager);
        const rd: Ready | undefined = e.ready();
        if (!rd) continue;
        moved = true;
        if (rd.softState) roles.push(`${e.id}:${rd.softState.role}${rd.softState.detail ? `/${rd.softState.detail}` : ''}`);
        inflight.push(...rd.messages);
        e.advance(rd);
      }
      for (const m of inflight) engines.get(m.to)?.step(m);
      if (!moved && inflight.length === 0) return;
    }
    throw new Error('contractCluster: no quiescence within 1000 rounds');
  };
  const tick = (n: number) => {
    for (let i = 0; i < n; i++) {
      for (const e of engines.values()) e.tick();
      drain();
    }
  };
  const leader = () => [...engines.values()].find((e) => e.isLeader);
  return { engines, tick, drain, leader, roles };
}

describe('RaftEngine: the contract surface', () => {
  it('says what it can: a log, reads, transfer, witnesses and a lease; not Byzantine', () => {
    const e = new RaftEngine({ id: 1, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(1) });
    expect(e.name).toBe('raft');
    expect(e.caps).toEqual({ log: true, reads: true, transfer: true, witness: true, lease: true, byzantine: false });
    expect(e.tickMs).toBe(e.raft.options.tickMs);
    expect(e.status()).toMatchObject({ id: 1, engine: 'raft', role: 'follower', term: 0, leader: 0, isWitness: false, dataMissing: false, unsupported: 0 });
  });

  it('elects a leader through the contract alone; a pre-candidate is a candidate with detail "pre-candidate"', () => {
    const c = contractCluster([1, 2, 3], 5);
    c.tick(60);
    const l = c.leader();
    expect(l).toBeDefined();
    expect(c.roles.some((r) => r.endsWith(':candidate/pre-candidate'))).toBe(true);
    expect(c.roles.some((r) => r.endsWith(':leader'))).toBe(true);
    // Only contract roles ever reach the runtime.
    for (const r of c.roles) expect(r.split(':')[1]!.split('/')[0]).toMatch(/^(leader|candidate|follower)$/);
    const r = l!.propose(text('x'));
    expect(r.ok).toBe(true);
    c.tick(20);
    for (const e of c.engines.values()) expect(e.status().commitIndex).toBeGreaterThanOrEqual((r as { index: number }).index);
  });

  it('currentRole, currentLeader and currentTerm say what status() says, at every tick (pre-candidate and candidate included)', () => {
    const c = contractCluster([1, 2, 3], 5);
    const seen = new Set<string>();
    for (let i = 0; i < 80; i++) {
      c.tick(1);
      for (const e of c.engines.values()) {
        const s = e.status();
        const role = s.detail === 'pre-candidate' ? 'pre-candidate' : s.role;
        expect([e.currentRole, e.currentLeader, e.currentTerm]).toEqual([role, s.leader, s.term]);
        seen.add(role);
      }
      if (i === 60) c.leader()?.propose(text('y'));
    }
    // A lone node among silent peers campaigns and stays a (pre-)candidate: the
    // cluster above elects between two observations, so these roles are checked here.
    for (const preVote of [true, false]) {
      const e = new RaftEngine({ id: 1, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(3), options: { preVote } });
      for (let t = 0; t < 60; t++) {
        e.tick();
        for (let rd = e.ready(); rd; rd = e.ready()) e.advance(rd);
        const s = e.status();
        const role = s.detail === 'pre-candidate' ? 'pre-candidate' : s.role;
        expect([e.currentRole, e.currentLeader, e.currentTerm]).toEqual([role, s.leader, s.term]);
        seen.add(role);
      }
    }
    expect([...seen].sort()).toEqual(['candidate', 'follower', 'leader', 'pre-candidate']);
  });

  it('a pre-candidate\'s Ready, once advanced, is not handed out again (the role change is reported once)', () => {
    // Alone among silent peers, node 1 becomes a pre-candidate and stays one.
    const e = new RaftEngine({ id: 1, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(3), options: { preVote: true } });
    const soft: string[] = [];
    for (let t = 0; t < 60 && e.status().detail !== 'pre-candidate'; t++) {
      e.tick();
      for (let rd = e.ready(); rd; rd = e.ready()) {
        if (rd.softState) soft.push(`${rd.softState.role}/${rd.softState.detail ?? ''}`);
        e.advance(rd);
        if (soft.length > 10) break;
      }
    }
    expect(e.status().detail).toBe('pre-candidate');
    expect(soft).toEqual(['candidate/pre-candidate']);
    expect(e.hasReady()).toBe(false);
    expect(e.ready()).toBeUndefined();
  });

  it('maps heartbeatRounds onto leaseRead, unless leaseRead is given; other options are validated by Raft', () => {
    const config = { voters: [1, 2, 3], learners: [], witnesses: [] };
    expect(new RaftEngine({ id: 1, config, rng: new Rng(1), options: { heartbeatRounds: true } }).raft.options.leaseRead).toBe(true);
    expect(new RaftEngine({ id: 1, config, rng: new Rng(1), options: { heartbeatRounds: true, leaseRead: false } }).raft.options.leaseRead).toBe(false);
    expect(new RaftEngine({ id: 1, config, rng: new Rng(1), options: {} }).raft.options.leaseRead).toBe(false);
    expect(() => new RaftEngine({ id: 1, config, rng: new Rng(1), options: { heartbeatRounds: 'yes' as unknown as boolean } })).toThrow(/heartbeatRounds must be a boolean/);
    expect(() => new RaftEngine({ id: 1, config, rng: new Rng(1), options: { bogus: 1 } as never })).toThrow(/unknown option "bogus"/);
  });

  it('drops and counts another engine\'s message instead of throwing (RaftNode itself throws: to it that is a bug)', () => {
    const e = new RaftEngine({ id: 1, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(1) });
    const foreign = { type: MsgType.ZabPing, from: 2, to: 1, term: 1, ctx: 1 } as unknown as Message;
    expect(() => e.raft.step(foreign)).toThrow(/not a Raft message/);
    e.step(foreign);
    expect(e.status().unsupported).toBe(1);
    expect(e.status().term).toBe(0);
  });

  it('acknowledges every Raft message and no other; a (pre-)vote request for a newer term is a campaign request', () => {
    const e = new RaftEngine({ id: 1, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, rng: new Rng(1) });
    const pv = { type: MsgType.PreVote, from: 2, to: 1, term: 1, lastIndex: 0, lastTerm: 0 } as Message;
    expect(e.acknowledges(pv)).toBe(true);
    expect(e.isCampaignRequest(pv)).toBe(true);
    expect(e.isCampaignRequest({ ...pv, term: 0 } as Message)).toBe(false);
    expect(e.isCampaignRequest({ type: MsgType.Heartbeat, from: 2, to: 1, term: 5, commit: 0, ctx: 0 } as Message)).toBe(false);
    expect(e.acknowledges({ type: MsgType.ZabPing, from: 2, to: 1, term: 1, ctx: 1 } as unknown as Message)).toBe(false);
  });

  it('changes membership through proposeConfChange (the optional extension)', () => {
    const c = contractCluster([1, 2, 3], 9);
    c.tick(60);
    const l = c.leader()!;
    c.tick(2);
    const r = l.proposeConfChange!({ op: 'add-witness', node: 4 });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    c.tick(3);
    expect(l.status().config.witnesses).toEqual([4]);
    const again = l.proposeConfChange!({ op: 'add-witness', node: 4 });
    expect(again.ok).toBe(false);
  });
});

describe('RaftNode.leaderToken (the contract fencing token)', () => {
  it('is the index of the leadership\'s no-op, issued once committed, and grows with every new leader', () => {
    const c = new Cluster({ seed: 73, voters: [1, 2, 3, 4, 5] });
    const tokens: number[] = [];
    let lastCommitted = 0;
    for (let round = 0; round < 6; round++) {
      const l = c.waitLeader();
      c.runUntil(() => l.r.leaderToken() > 0, 100, `token ${round}`);
      const token = l.r.leaderToken();
      expect(l.r.entryAt(token)).toMatchObject({ type: EntryType.Noop, term: l.r.currentTerm });
      expect(token).toBeGreaterThan(lastCommitted);
      for (const n of c.up()) if (n !== l) expect(n.r.leaderToken()).toBe(0);
      tokens.push(token);
      for (let i = 0; i < 3; i++) c.propose(`r${round}-${i}`);
      c.run(20);
      lastCommitted = l.r.commitIndex;
      c.crash(l.id);
      c.run(1);
      for (const n of c.nodes.values()) if (!n.up && n.id !== l.id) c.restart(n.id);
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  });

  it('is 0 while the no-op is not durable and committed, and on every non-leader', () => {
    const e = new RaftEngine({ id: 1, config: { voters: [1], learners: [], witnesses: [] }, rng: new Rng(3) });
    expect(e.leaderToken()).toBe(0);
    expect(e.campaign().ok).toBe(true);
    for (let i = 0; i < 5 && !e.isLeader; i++) {
      const rd = e.ready();
      if (rd) e.advance(rd);
    }
    expect(e.isLeader).toBe(true);
    // Elected, the no-op appended but not yet durable: a single node counts itself only after advance().
    expect(e.entryAt(e.status().lastIndex)?.type).toBe(EntryType.Noop);
    const noop = e.status().lastIndex;
    expect(e.status().commitIndex).toBeLessThan(noop);
    expect(e.leaderToken()).toBe(0);
    for (let i = 0; i < 5 && e.leaderToken() === 0; i++) {
      const rd = e.ready();
      if (rd) e.advance(rd);
    }
    expect(e.leaderToken()).toBe(noop);
  });
});

describe('RaftEngine.quietTicks: the ticks that only count', () => {
  /** Messages and role changes the engine has after its inputs so far (consumed). */
  const output = (e: Engine): { msgs: number; soft: boolean } => {
    const eager = e.takeEager?.() ?? [];
    const rd = e.ready();
    if (rd) e.advance(rd);
    return { msgs: eager.length + (rd?.messages.length ?? 0), soft: rd?.softState !== undefined };
  };

  it('leader: quiet until its next heartbeat, which the tick after them sends; follower: quiet until its election timeout, then it campaigns', () => {
    const c = contractCluster([1, 2, 3], 9);
    c.tick(200);
    const l = c.leader()!;
    expect(l).toBeDefined();
    c.drain();
    for (const e of c.engines.values()) {
      const q = e.quietTicks!();
      expect(q, `n${e.id}`).toBeGreaterThanOrEqual(0);
      for (let i = 0; i < q; i++) {
        e.tick();
        expect(output(e), `n${e.id} quiet tick ${i + 1} of ${q}`).toEqual({ msgs: 0, soft: false });
      }
      e.tick();
      const acted = output(e);
      expect(acted.msgs, `n${e.id}: the tick after ${q} quiet ones`).toBeGreaterThan(0);
      if (e !== l) expect(acted.soft).toBe(true); // a follower became a (pre-)candidate
    }
  });

  it('a witness never campaigns: every tick of its own is quiet', () => {
    const c = contractCluster([1, 2], 3, [3]);
    c.tick(200);
    expect(c.engines.get(3)!.quietTicks!()).toBe(Number.MAX_SAFE_INTEGER);
  });
});
