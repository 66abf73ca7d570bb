/**
 * Engine pbft, requests of clients that gather f + 1 replies (daemon/runtime/pbft-clients.ts):
 * the envelope and the replicated last-write-per-client table, and on four simulated
 * boards (virtual time): a write retried on another node executes once, an ordered read
 * is signed by every replica, and the table survives a snapshot.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pbftWorld } from '../../helpers/pbft-world.ts';
import type { ClientResult } from '../../../daemon/runtime/results.ts';
import { ClientTable, decodeClientOp, decodePbftState, encodeClientOp, encodePbftState, isClientOp, MAX_CLIENTS } from '../../../daemon/runtime/pbft-clients.ts';
import { decodeResult, derivedPbftAuth } from '../../../daemon/runtime/pbft-host.ts';
import { acceptReplies, type PbftReply } from '../../../src/pbft/reply.ts';
import { encodeCommand, KvStateMachine } from '../../../src/kv/index.ts';
import { sha256 } from '../../../src/pbft/encoding.ts';
import type { NodeId } from '../../../src/types.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('pbft-clients-test').digest()) };
const IDS: NodeId[] = [1, 2, 3, 4];
const enc = (s: string) => new TextEncoder().encode(s);
const id8 = (b: number) => new Uint8Array(16).fill(b);

describe('pbft client envelope and table', () => {
  it('encodes and decodes writes and reads; refuses bad ids, seqs and kinds', () => {
    const cmd = encodeCommand({ op: 'put', key: 'k', value: enc('v') }) as Uint8Array;
    const w = encodeClientOp({ id: id8(1), seq: 7, kind: 'write', command: cmd });
    expect(isClientOp(w)).toBe(true);
    expect(isClientOp(cmd)).toBe(false);
    expect(decodeClientOp(w)).toEqual({ id: id8(1), seq: 7, kind: 'write', command: cmd });
    const r = encodeClientOp({ id: id8(2), seq: 1, kind: 'read', key: 'a/b' });
    expect(decodeClientOp(r)).toEqual({ id: id8(2), seq: 1, kind: 'read', key: 'a/b' });
    expect(() => encodeClientOp({ id: new Uint8Array(3), seq: 1, kind: 'read', key: 'k' })).toThrow(/client: expected 8\.\.32 bytes/);
    expect(() => encodeClientOp({ id: id8(1), seq: 0, kind: 'read', key: 'k' })).toThrow(/seq: expected an integer ≥ 1/);
    const bad = Uint8Array.from(r);
    bad[bad.length - 4] = 9; // the kind byte
    expect(typeof decodeClientOp(bad)).toBe('string');
  });

  it('a client request executes once: the same seq answers the recorded result, an older one is refused; bounded; survives encoding', () => {
    const t = new ClientTable();
    expect(t.judge({ id: id8(1), seq: 1 })).toEqual({ run: true });
    t.record({ id: id8(1), seq: 1 }, 5, enc('r1'));
    expect(t.judge({ id: id8(1), seq: 1 })).toEqual({ run: false, recorded: enc('r1') });
    expect(t.judge({ id: id8(1), seq: 2 })).toEqual({ run: true });
    t.record({ id: id8(1), seq: 3 }, 6, enc('r3'));
    expect(t.judge({ id: id8(1), seq: 2 })).toEqual({ run: false, stale: 3 });
    const kv = new KvStateMachine().snapshot();
    expect(encodePbftState(kv, new ClientTable())).toBe(kv); // without clients: the KV snapshot as before
    const both = encodePbftState(kv, t);
    const back = decodePbftState(both);
    if (typeof back === 'string') throw new Error(back);
    expect(back.kv).toEqual(kv);
    expect(back.table.judge({ id: id8(1), seq: 3 })).toEqual({ run: false, recorded: enc('r3') });
    expect(encodePbftState(kv, back.table)).toEqual(both); // deterministic
    for (let i = 0; i < MAX_CLIENTS + 1; i++) t.record({ id: Uint8Array.from(createHash('sha256').update(String(i)).digest()), seq: 1 }, 10 + i, enc('x'));
    expect(t.size).toBe(MAX_CLIENTS);
    expect(t.judge({ id: id8(1), seq: 3 })).toEqual({ run: true }); // the oldest went first
  });
});

function cluster() {
  const c = pbftWorld({ seed: 5, keyText: 'pbft-clients-test', ids: IDS });
  const verifier = derivedPbftAuth(1, IDS, KEY.current, 3);
  const replies = (id: Uint8Array, seq: number): PbftReply[] => IDS.map((n) => c.rt.get(n)!.pbftClientReply(id, seq)).filter((x): x is PbftReply => x !== undefined);
  return { ...c, verifier, replies };
}

describe('pbft client requests on four simulated boards', () => {
  it('a write retried on another node executes once; every replica signs the same reply; ordered reads are signed too', () => {
    const c = cluster();
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)?.state === 'running'), 5000);
    const client = { id: id8(7), seq: 1 };
    const first = c.call((cb) => c.rt.get(1)!.put('k', enc('v1'), { pbftClient: client }, cb));
    expect(first?.status, first?.error).toBe(200);
    expect(first?.pbftF).toBe(1);
    expect(first?.pbft?.reply).toBeDefined();
    const index = first!.index!;
    // The client heard nothing (say) and retries on node 2: same id and seq.
    const retry = c.call((cb) => c.rt.get(2)!.put('k', enc('v1'), { pbftClient: client }, cb));
    expect(retry?.status, retry?.error).toBe(200);
    expect(retry?.index).toBe(index); // the recorded answer: not executed again
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)!.stateMachine.appliedIndex >= c.rt.get(2)!.stateMachine.appliedIndex), 5000);
    for (const n of IDS) expect(c.rt.get(n)!.stateMachine.get('k')?.modIndex).toBe(index);
    // Without the client reference the same put is a new request: it runs again (the test can fail).
    const plain = c.call((cb) => c.rt.get(3)!.put('k', enc('v1'), {}, cb));
    expect(plain?.index).toBeGreaterThan(index);

    // f + 1 (here all four) replicas signed the first execution's reply for (client, 1).
    c.world.runUntil(() => c.replies(client.id, 1).length === 4, 5000);
    const op = encodeClientOp({ ...client, kind: 'write', command: encodeCommand({ op: 'put', key: 'k', value: enc('v1') }) as Uint8Array });
    const rs = c.replies(client.id, 1);
    expect(new Set(rs.map((r) => r.replica)).size).toBe(4);
    const v = acceptReplies(rs, { origin: rs[0]!.origin, reqNo: rs[0]!.reqNo, opDigest: sha256(op) }, { members: IDS, f: 1 }, c.verifier);
    expect(v.ok).toBe(true);
    if (v.ok) expect((decodeResult(v.result) as ClientResult).index).toBe(index);

    // An ordered read: every replica executes it at one point and signs the value.
    const reader = { id: id8(8), seq: 1 };
    const got = c.call((cb) => c.rt.get(4)!.get('k', { pbftClient: reader }, cb));
    expect(got?.status).toBe(200);
    expect(new TextDecoder().decode(got!.value)).toBe('v1');
    c.world.runUntil(() => c.replies(reader.id, 1).length === 4, 5000);
    const values = c.replies(reader.id, 1).map((r) => decodeResult(r.result) as ClientResult);
    for (const x of values) expect(new TextDecoder().decode(x.value)).toBe('v1');
    // A plain read says it is one node's word.
    expect(c.call((cb) => c.rt.get(2)!.get('k', {}, cb))?.pbftF).toBe(1);
    expect(c.fatals).toEqual([]);
  }, 60_000);

  it('the client table is in the checkpointed state: a replica that caught up by state transfer still answers a retry once', () => {
    const c = cluster();
    c.world.runUntil(() => IDS.every((n) => c.rt.get(n)?.state === 'running'), 5000);
    // Node 4 is cut off; the others execute the client's write and go past stable checkpoints.
    c.world.partition([[1, 2, 3], [4]]);
    const client = { id: id8(9), seq: 3 };
    const first = c.call((cb) => c.rt.get(1)!.put('a', enc('x'), { pbftClient: client }, cb));
    expect(first?.status).toBe(200);
    for (let i = 0; i < 40; i++) expect(c.call((cb) => c.rt.get(2)!.put(`b${i}`, enc('y'), {}, cb))?.status).toBe(200);
    c.world.heal();
    // Node 4 catches up: its state comes (at least partly) from a snapshot of the others.
    expect(c.world.runUntil(() => c.rt.get(4)!.stateMachine.appliedIndex >= c.rt.get(1)!.stateMachine.appliedIndex, 30_000)).toBe(true);
    expect(c.rt.get(4)!.snapshotIndex).toBeGreaterThan(first!.index!);
    expect(c.rt.get(4)!.pbftClientReply(client.id, client.seq)).toBeUndefined(); // it never executed the write itself
    const retry = c.call((cb) => c.rt.get(4)!.put('a', enc('x'), { pbftClient: client }, cb));
    expect(retry?.status, retry?.error).toBe(200);
    expect(retry?.index).toBe(first!.index);
    const older = c.call((cb) => c.rt.get(4)!.put('a', enc('z'), { pbftClient: { ...client, seq: 2 } }, cb));
    expect(older?.status).toBe(409);
    for (const n of IDS) expect(c.rt.get(n)!.stateMachine.get('a')?.modIndex).toBe(first!.index);
    expect(c.fatals).toEqual([]);
  }, 60_000);
});
