/**
 * Checkpoints, garbage collection and state transfer (Castro & Liskov §4.3), and what
 * survives a crash (the Ready order: persist, then send).
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { PbftNode, REQ_BLOCK } from '../../../src/pbft/pbft.ts';
import { SimulatedKeys } from '../../../src/pbft/auth.ts';
import { EntryType, MsgType, type Message } from '../../../src/wire/messages.ts';
import type { Ready } from '../../../src/engine/contract.ts';
import {
  checkpointDigest, checkpointSigned, decodeViewChange, encodeEngineMeta, encodeExecState, encodeSlotRecord, ppSigned, prepareSigned, sha256,
} from '../../../src/pbft/encoding.ts';
import { Cluster } from './harness.ts';
import { SWEEP_OPTIONS } from './sweep.ts';

const K = 8; // SWEEP_OPTIONS.checkpointInterval
const L = 16;

function load(c: Cluster, count: number, origins = [1, 2, 3, 4], max = 4000): void {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const k = c.submit(origins[i % origins.length]!, `set k${i % 5} v${c.now}-${i}`);
    if (k) keys.push(k);
    c.run(2);
  }
  c.runUntil(() => keys.every((k) => c.clients.get(k)!.accepted), max, `${keys.length} requests accepted`);
}

describe('PBFT checkpoints', () => {
  it('every K requests: a snapshot, 2f + 1 matching CHECKPOINTs, a stable checkpoint, and the log below it is gone', () => {
    const c = new Cluster({ seed: 21, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    load(c, 3 * K);
    c.run(50);
    for (const r of c.honest()) {
      const e = r.e;
      expect(e.stableCheckpoint).toBeGreaterThanOrEqual(2 * K);
      expect(e.stableCheckpoint % K).toBe(0);
      expect(Math.min(...e.slotSeqs())).toBeGreaterThan(e.stableCheckpoint);
      // the durable log starts right after the stored snapshot, and is contiguous
      const base = r.store.snapshot!.meta.index;
      expect(base % K).toBe(0);
      r.store.entries.forEach((x, i) => expect(x.index).toBe(base + 1 + i));
      expect(r.store.snapshot!.meta.engine).toBeInstanceOf(Uint8Array);
    }
    expect(c.inv.violations).toEqual([]);
  });

  it('the primary never runs more than L ahead of the last stable checkpoint', () => {
    const c = new Cluster({ seed: 22, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    c.run(3);
    c.isolate(3);
    c.isolate(4); // no quorum: nothing commits, no checkpoint becomes stable
    for (let i = 0; i < 40; i++) c.submit(1, `set a ${i}`);
    c.run(100);
    expect(Math.max(...c.replica(1).e.slotSeqs())).toBe(L);
    c.heal();
    c.runUntil(() => c.honest().every((r) => r.e.executedIndex >= 41), 3000, 'the backlog drains once checkpoints become stable again');
    expect(c.inv.violations).toEqual([]);
  });

  it('a replica cut off beyond the window catches up by state transfer, and ends with the same state', () => {
    const c = new Cluster({ seed: 23, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    load(c, 4);
    c.isolate(4);
    load(c, 4 * K, [1, 2, 3]);
    const lagging = c.replica(4).e.executedIndex;
    expect(c.replica(1).e.stableCheckpoint).toBeGreaterThan(lagging + L);
    c.heal();
    c.runUntil(() => c.replica(4).e.executedIndex === c.replica(1).e.executedIndex, 2000, 'replica 4 caught up');
    expect(c.replica(4).e.status().stateTransfers).toBeGreaterThanOrEqual(1);
    expect([...c.replica(4).kv].sort()).toEqual([...c.replica(1).kv].sort());
    load(c, 3, [4]); // and it takes part again
    expect(c.inv.violations).toEqual([]);
  });

  it('a replica a little behind catches up by commit certificates, without a state transfer', () => {
    const c = new Cluster({ seed: 24, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    load(c, 2);
    c.isolate(4);
    load(c, 3, [1, 2, 3]);
    c.heal();
    c.runUntil(() => c.replica(4).e.executedIndex === c.replica(1).e.executedIndex, 500, 'replica 4 caught up');
    expect(c.replica(4).e.status().stateTransfers).toBe(0);
    expect(c.inv.violations).toEqual([]);
  });

  it('a checkpoint others proved stable while this replica executed up to it, before one Ready: the executed slots still reach the log', () => {
    // On a board the runtime steps every message that arrives while a Ready is being
    // written (an fsync in flight) and asks for the next Ready only afterwards. A replica
    // that was paused (SIGSTOP) gets the COMMITs up to a checkpoint and the others'
    // CHECKPOINTs for it in one such batch: it executed the slots, and the CHECKPOINTs
    // made it stable before any Ready wrote them. Dropping those slots then left the
    // next Ready's hardState.commit (the checkpoint) beyond its durable log, which the
    // durable log refuses: "persist: hardState.commit 4736 is beyond the last index 4735",
    // and the node stopped (bench/chaos-soak.ts, pbft, stop-follower-long).
    const c = new Cluster({ seed: 25, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    const held: Message[] = [];
    c.filter = (m) => {
      if (m.to !== 4) return true;
      held.push(m);
      return false;
    };
    // The primary's opening null request and K - 1 others: the checkpoint is the last slot.
    load(c, K - 1, [1, 2, 3]);
    c.runUntil(() => [1, 2, 3].every((id) => c.replica(id).e.stableCheckpoint >= K), 500, 'checkpoint K stable at 1..3');
    expect(c.replica(1).e.executedIndex).toBe(K);
    expect(c.replica(4).e.executedIndex).toBe(0);
    c.filter = undefined;
    const r4 = c.replica(4);
    // All of it before the next Ready, as on a board whose previous write is in flight.
    for (const m of held) r4.e.step(m);
    expect(r4.e.executedIndex).toBe(K);
    const engine = r4.e;
    const readys: Ready[] = [];
    const ready = engine.ready.bind(engine);
    engine.ready = () => {
      const rd = ready();
      if (rd) readys.push(rd);
      return rd;
    };
    // The harness refuses a Ready whose hardState.commit is beyond the log, as the durable log does.
    c.process(r4);
    // The first Ready writes every executed slot's own record (not an empty placeholder) with the commit.
    const first = readys[0]!;
    expect(first.hardState?.commit).toBe(K);
    expect(first.entries.map((e) => e.index)).toEqual(Array.from({ length: K }, (_, i) => i + 1));
    for (const e of first.entries) expect(e.data.length, `slot ${e.index}`).toBeGreaterThan(0);
    // And it goes on with the others (its own CHECKPOINT makes K stable here too).
    c.runUntil(() => r4.e.stableCheckpoint >= K && r4.e.executedIndex === c.replica(1).e.executedIndex, 500, 'replica 4 caught up, K stable');
    expect(Math.min(...r4.e.slotSeqs(), Infinity)).toBeGreaterThan(r4.e.stableCheckpoint);
    expect(c.inv.violations).toEqual([]);
  });

  it('lost CHECKPOINTs and restarts do not leave a checkpoint short of votes (the window would stay full)', () => {
    // Every CHECKPOINT is lost while the window (0, 16] fills; then 2 and 4 restart (their
    // own checkpoint records are gone). Votes are re-sent with each STATUS, and a
    // restarted replica signs the checkpoint of its stored snapshot again: 16 becomes
    // stable and requests beyond the window execute.
    const c = new Cluster({ seed: 26, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    c.filter = (m) => m.type !== MsgType.PbftCheckpoint;
    load(c, L - 1);
    c.runUntil(() => c.honest().every((r) => r.e.executedIndex === L), 200, 'the window executed everywhere');
    for (const r of c.honest()) expect(r.e.stableCheckpoint).toBe(0);
    for (const id of [2, 4]) {
      c.crash(id);
      c.restart(id);
    }
    c.filter = undefined;
    load(c, K);
    c.runUntil(() => c.honest().every((r) => r.e.stableCheckpoint >= L), 500, 'checkpoint 16 stable everywhere');
    expect(c.inv.violations).toEqual([]);
  });

  it('a state transfer is checked against the 2f + 1 signed digest: a Byzantine peer cannot feed a wrong snapshot', () => {
    // Replica 2 is Byzantine: it takes part honestly but answers state fetches with a
    // doctored snapshot, and hands out commit certificates with a swapped request.
    const c = new Cluster({ seed: 25, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 }, byzantine: { 2: ['bad-state'] } });
    load(c, 2, [1, 3]);
    c.isolate(4);
    load(c, 4 * K, [1, 3]);
    // Its first fetches can only reach the liar.
    c.filter = (m) => !(m.from === 4 && m.to !== 2 && m.type === MsgType.PbftFetchState);
    c.heal();
    c.runUntil(() => c.replica(4).e.status().dropped.badSignature > 0, 1000, 'replica 4 refused a doctored snapshot');
    expect(c.replica(4).e.status().stateTransfers).toBe(0);
    c.filter = undefined;
    c.runUntil(() => c.replica(4).e.executedIndex === c.replica(1).e.executedIndex, 3000, 'replica 4 caught up');
    expect([...c.replica(4).kv].sort()).toEqual([...c.replica(1).kv].sort());
    expect(c.inv.violations).toEqual([]);
  });
});

describe('PBFT durability', () => {
  it('crashes that tear the last persist, again and again, lose nothing an honest replica acknowledged', () => {
    const c = new Cluster({ seed: 31, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 2 } });
    const rng = new Rng(31);
    for (let round = 0; round < 25; round++) {
      const id = rng.int(1, 4);
      c.crash(id, { torn: true });
      for (let i = 0; i < 3; i++) c.submit(rng.pick([1, 2, 3, 4]), `set r${round} ${i}`);
      c.run(rng.int(5, 40));
      c.restart(id);
      c.run(rng.int(5, 40));
    }
    c.stabilize(6000);
    expect(c.inv.violations).toEqual([]);
    expect(c.inv.accepted).toBeGreaterThan(30);
  });

  it('a restarted origin never reuses a request number (they are reserved durably in blocks)', () => {
    const c = new Cluster({ seed: 32, n: 4, options: SWEEP_OPTIONS, net: { maxDelay: 1 } });
    const a = c.submit(2, 'set a 1')!;
    c.run(20);
    c.crash(2);
    c.restart(2);
    const b = c.submit(2, 'set a 2')!;
    const [, ra] = a.split('/').map(Number);
    const [, rb] = b.split('/').map(Number);
    expect(ra).toBe(1);
    expect(rb).toBe(REQ_BLOCK + 1);
    expect(c.replica(2).store.hardState.vote).toBe(2);
  });

  it('a replica restarted with an older checkpoint proof than its certificates need holds its VIEW-CHANGE back until it has a newer one', () => {
    // Regression (found by the sweep): the snapshot at 16 was stored while checkpoint 8
    // was the stable one, then 16 became stable and the replica prepared seq 26 (window
    // (16, 32]). After a restart its proof says 8: a VIEW-CHANGE can carry certificates
    // up to 8 + L = 24 only, and one without seq 26 let a NEW-VIEW reuse a committed seq.
    const members = [1, 2, 3, 4];
    const keys = new SimulatedKeys(members, 'stale');
    const auth = (id: number) => keys.auth(id);
    const lim = { sigBytes: 16, maxOpBytes: 1 << 16, maxItems: 64, n: 4 };
    void lim;
    const exec = encodeExecState(new Map());
    const ck = (seq: number) => checkpointDigest(seq, new Uint8Array([seq]), exec);
    const proof = (seq: number) => [1, 2, 3].map((r) => ({ replica: r, sig: auth(r).sign(checkpointSigned(seq, ck(seq), r)) }));
    const meta = encodeEngineMeta({ exec, stable: 8, stableDigest: ck(8), proof: proof(8), certs: [] });
    const config = { voters: members, learners: [], witnesses: [] };
    const entries = [];
    for (let seq = 17; seq <= 26; seq++) {
      const d = sha256(new Uint8Array([seq]));
      const ppSig = auth(1).sign(ppSigned(0, seq, d));
      const cert = { seq, view: 0, digest: d, ppSig, prepares: [2, 3].map((r) => ({ replica: r, sig: auth(r).sign(prepareSigned(0, seq, d, r)) })) };
      entries.push({ term: 0, index: seq, type: EntryType.Normal, data: encodeSlotRecord(seq, { ppView: 0, ppDigest: d, ppSig, request: new Uint8Array(0), cert }) });
    }
    const r = new PbftNode({
      id: 4, config, auth: auth(4), rng: new Rng(4), options: SWEEP_OPTIONS, hardState: { term: 1, vote: 0, commit: 16 },
      snapshot: { meta: { index: 16, term: 0, config, engine: meta }, data: new Uint8Array([16]) }, entries,
    });
    const sent = () => {
      const out: Message[] = [];
      for (let rd = r.ready(); rd; rd = r.ready()) {
        out.push(...rd.messages);
        r.advance(rd);
      }
      return out;
    };
    expect(sent().filter((m) => m.type === MsgType.PbftViewChange)).toEqual([]);
    expect(r.status().deferredViewChanges).toBe(1);
    // A peer answers its STATUS with the proof of 16 (its own old signature included).
    for (const p of proof(16)) r.step({ type: MsgType.PbftCheckpoint, from: 1, to: 4, term: 1, replica: p.replica, seq: 16, digest: ck(16), sig: p.sig });
    expect(r.stableCheckpoint).toBe(16);
    const vcs = sent().filter((m): m is Extract<Message, { type: MsgType.PbftViewChange }> => m.type === MsgType.PbftViewChange);
    expect(vcs.length).toBe(3);
    const body = decodeViewChange(vcs[0]!.payload, lim);
    expect(typeof body !== 'string' && body.certs.map((c) => c.seq)).toEqual([17, 18, 19, 20, 21, 22, 23, 24, 25, 26]);
    expect(typeof body !== 'string' && body.stable).toBe(16);
  });

  it('refuses to start from storage that contradicts itself, naming what is wrong', () => {
    const keys = new SimulatedKeys([1, 2, 3, 4], 'd');
    const base = { id: 2, config: { voters: [1, 2, 3, 4], learners: [], witnesses: [] }, auth: keys.auth(2), rng: new Rng(1) };
    expect(() => new PbftNode({ ...base, hardState: { term: 0, vote: 0, commit: 3 } })).toThrow(/commit 3 is beyond the last durable log index 0/);
    expect(() => new PbftNode({ ...base, entries: [{ term: 0, index: 2, type: EntryType.Noop, data: new Uint8Array() }] })).toThrow(/index 2, expected 1/);
    expect(() => new PbftNode({ ...base, entries: [{ term: 0, index: 1, type: EntryType.Normal, data: new Uint8Array([1, 2]) }] })).toThrow(/entries\[0\]: slot record 1/);
    expect(() => new PbftNode({ ...base, snapshot: { meta: { index: 8, term: 0, config: base.config }, data: new Uint8Array() } })).toThrow(/meta\.engine/);
  });
});
