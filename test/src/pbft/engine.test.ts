/**
 * The PBFT normal-case rules, one replica at a time (Castro & Liskov §4.2): messages
 * from the other replicas are crafted and signed with their own keys, and the test
 * reads what the replica persists and sends.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/rng.ts';
import { PbftNode } from '../../../src/pbft/pbft.ts';
import { SimulatedKeys, type PbftAuth } from '../../../src/pbft/auth.ts';
import { commitSigned, decodeSlotRecord, encodeRequest, NULL_DIGEST, ppSigned, prepareSigned, requestSigned, sha256, type RequestBody } from '../../../src/pbft/encoding.ts';
import { EntryType, MsgType, type Message } from '../../../src/wire/messages.ts';
import type { Ready } from '../../../src/engine/contract.ts';
import type { PbftOptions } from '../../../src/pbft/options.ts';

const members = [1, 2, 3, 4];
const keys = new SimulatedKeys(members, 'engine-test');
const auth = (id: number): PbftAuth => keys.auth(id);
const enc = new TextEncoder();

function replica(id = 2, options: Partial<PbftOptions> = {}): PbftNode {
  return new PbftNode({ id, config: { voters: members, learners: [], witnesses: [] }, auth: auth(id), rng: new Rng(id), options });
}

function request(origin: number, reqNo: number, op: string, signer = origin): { body: RequestBody; bytes: Uint8Array; digest: Uint8Array } {
  const data = enc.encode(op);
  const body: RequestBody = { origin, reqNo, kind: EntryType.Normal, op: data, sig: auth(signer).sign(requestSigned(origin, reqNo, EntryType.Normal, data)) };
  const bytes = encodeRequest(body);
  return { body, bytes, digest: sha256(bytes) };
}

type Of<T extends MsgType> = Extract<Message, { type: T }>;

function prePrepare(seq: number, r: { bytes: Uint8Array; digest: Uint8Array } | 'null', view = 0, signer = 1, to = 2): Of<MsgType.PbftPrePrepare> {
  const digest = r === 'null' ? NULL_DIGEST : r.digest;
  return { type: MsgType.PbftPrePrepare, from: 1, to, term: view, seq, digest, sig: auth(signer).sign(ppSigned(view, seq, digest)), request: r === 'null' ? new Uint8Array(0) : r.bytes };
}
const prepare = (from: number, seq: number, digest: Uint8Array, view = 0, to = 2): Of<MsgType.PbftPrepare> => ({
  type: MsgType.PbftPrepare, from, to, term: view, seq, digest, sig: auth(from).sign(prepareSigned(view, seq, digest, from)),
});
const commit = (from: number, seq: number, digest: Uint8Array, view = 0, to = 2): Of<MsgType.PbftCommit> => ({
  type: MsgType.PbftCommit, from, to, term: view, seq, digest, sig: auth(from).sign(commitSigned(view, seq, digest, from)),
});

/** Drains every Ready (as a runtime would), returning them. */
function drain(n: PbftNode): Ready[] {
  const out: Ready[] = [];
  for (let i = 0; i < 50; i++) {
    const rd = n.ready();
    if (!rd) return out;
    out.push(rd);
    n.advance(rd);
  }
  throw new Error('too many Readys');
}
const sentOf = (rds: Ready[], type: MsgType) => rds.flatMap((r) => r.messages).filter((m) => m.type === type);

describe('PBFT normal case, one backup', () => {
  it('accepts a PRE-PREPARE signed by the primary: persists it, then sends PREPARE to everyone in the same Ready', () => {
    const b = replica(2);
    drain(b);
    const r = request(3, 1, 'set a 1');
    b.step(prePrepare(1, r));
    const rds = drain(b);
    expect(rds.length).toBe(1);
    const rd = rds[0]!;
    expect(rd.entries.map((e) => e.index)).toEqual([1]);
    const rec = decodeSlotRecord(1, rd.entries[0]!.data, { sigBytes: 16, maxOpBytes: 1 << 16, maxItems: 64, n: 4 });
    expect(typeof rec).not.toBe('string');
    if (typeof rec !== 'string') expect(rec.ppDigest).toEqual(r.digest);
    const prepares = rd.messages.filter((m) => m.type === MsgType.PbftPrepare);
    expect(prepares.map((m) => m.to).sort()).toEqual([1, 3, 4]);
  });

  it('drops a PRE-PREPARE not signed by the primary, or with a forged or mismatched request', () => {
    const b = replica(2);
    drain(b);
    const r = request(3, 1, 'set a 1');
    b.step(prePrepare(1, r, 0, 4)); // signed by backup 4, claims to be from the primary
    expect(b.status().dropped.badSignature).toBe(1);
    const forged = request(3, 2, 'set a 2', 4); // request "from 3" signed by 4
    b.step(prePrepare(2, forged));
    expect(b.status().dropped.badSignature).toBe(2);
    const other = request(3, 3, 'set a 3');
    b.step({ ...prePrepare(3, other), request: r.bytes }); // digest of one request, body of another
    expect(b.status().dropped.malformed).toBe(1);
    expect(sentOf(drain(b), MsgType.PbftPrepare)).toEqual([]);
  });

  it('never accepts two different PRE-PREPAREs for one (view, seq) — not even after a restart', () => {
    const b = replica(2);
    drain(b);
    const a1 = request(3, 1, 'set a 1');
    const a2 = request(4, 1, 'set a 2');
    b.step(prePrepare(1, a1));
    const first = drain(b);
    b.step(prePrepare(1, a2));
    expect(b.status().dropped.conflict).toBe(1);
    expect(sentOf(drain(b), MsgType.PbftPrepare)).toEqual([]);
    // Restart from exactly what was persisted: the PRE-PREPARE survived.
    const hs = first.find((r) => r.hardState)?.hardState;
    const again = new PbftNode({ id: 2, config: { voters: members, learners: [], witnesses: [] }, auth: auth(2), rng: new Rng(9), hardState: hs, entries: first.flatMap((r) => r.entries) });
    drain(again);
    again.step(prePrepare(1, a2));
    expect(again.status().dropped.conflict).toBe(1);
    expect(sentOf(drain(again), MsgType.PbftPrepare)).toEqual([]);
  });

  it('drops a PRE-PREPARE outside the window (h, h + L] and one for another view', () => {
    const b = replica(2, { checkpointInterval: 4, windowCheckpoints: 2 });
    drain(b);
    b.step(prePrepare(9, request(3, 1, 'x')));
    expect(b.status().dropped.outOfWindow).toBe(1);
    b.step(prePrepare(1, request(3, 2, 'y'), 1, 2)); // view 1 while in view 0 (primary of view 1 is 2 itself)
    expect(b.status().dropped.wrongView).toBe(1);
  });

  it('is prepared only with 2f matching PREPAREs from distinct backups, then persists the certificate before its COMMIT', () => {
    const b = replica(2);
    drain(b);
    const r = request(3, 1, 'set a 1');
    b.step(prePrepare(1, r));
    drain(b);
    b.step(prepare(3, 1, sha256(enc.encode('wrong')))); // a different digest does not count
    b.step(prepare(3, 1, r.digest)); // nor a second PREPARE of the same replica
    b.step({ ...prepare(4, 1, r.digest), sig: auth(3).sign(prepareSigned(0, 1, r.digest, 4)) }); // forged for 4
    expect(b.preparedAt(1)).toBeUndefined();
    expect(sentOf(drain(b), MsgType.PbftCommit)).toEqual([]);
    // the primary's PREPARE never counts
    b.step({ ...prepare(1, 1, r.digest) });
    expect(b.status().dropped.wrongRole).toBe(1);
    b.step(prepare(4, 1, r.digest));
    expect(b.preparedAt(1)?.digest).toEqual(r.digest);
    const rds = drain(b);
    const rd = rds.find((x) => x.messages.some((m) => m.type === MsgType.PbftCommit))!;
    const rec = decodeSlotRecord(1, rd.entries.find((e) => e.index === 1)!.data, { sigBytes: 16, maxOpBytes: 1 << 16, maxItems: 64, n: 4 });
    expect(typeof rec !== 'string' && rec.cert?.prepares.map((p) => p.replica)).toEqual([2, 4]);
  });

  it('appends plainly, but a Ready that rewrites durable records (whose PREPAREs already left) is atomic', () => {
    const b = replica(2);
    drain(b);
    const r1 = request(3, 1, 'set a 1');
    const r2 = request(4, 1, 'set b 2');
    b.step(prePrepare(1, r1));
    b.step(prePrepare(2, r2));
    const appends = drain(b);
    expect(appends.flatMap((x) => x.entries.map((e) => e.index))).toEqual([1, 2]);
    expect(appends.some((x) => x.atomic)).toBe(false);
    b.step(prepare(3, 1, r1.digest));
    b.step(prepare(4, 1, r1.digest)); // seq 1 prepared: its record changes, seq 2's is written again
    const rewrite = drain(b).find((x) => x.entries.length > 0)!;
    expect(rewrite.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(rewrite.atomic).toBe(true);
  });

  it('commits with 2f + 1 matching COMMITs (its own included) and executes in sequence order', () => {
    const b = replica(2);
    drain(b);
    const r1 = request(3, 1, 'set a 1');
    const r2 = request(4, 1, 'set b 2');
    for (const [seq, r] of [[2, r2], [1, r1]] as const) {
      b.step(prePrepare(seq, r));
      b.step(prepare(3, seq, r.digest));
      b.step(prepare(4, seq, r.digest));
    }
    drain(b);
    // seq 2 commits first, but waits for seq 1
    b.step(commit(1, 2, r2.digest));
    expect(b.committedAt(2)).toBeUndefined(); // own + 1 = 2 < 3
    b.step(commit(3, 2, r2.digest));
    expect(b.committedAt(2)).toBeDefined();
    expect(drain(b).flatMap((x) => x.committed)).toEqual([]);
    b.step(commit(1, 1, r1.digest));
    b.step(commit(4, 1, r1.digest));
    const applied = drain(b).flatMap((x) => x.committed);
    expect(applied.map((e) => [e.index, e.type, new TextDecoder().decode(e.data)])).toEqual([
      [1, EntryType.Normal, 'set a 1'],
      [2, EntryType.Normal, 'set b 2'],
    ]);
    expect(b.executedIndex).toBe(2);
  });

  it('executes a request committed twice (at two sequence numbers) only once: the second is a no-op', () => {
    const b = replica(2);
    drain(b);
    const r = request(3, 1, 'set a 1');
    for (const seq of [1, 2]) {
      b.step(prePrepare(seq, r));
      b.step(prepare(3, seq, r.digest));
      b.step(prepare(4, seq, r.digest));
      b.step(commit(1, seq, r.digest));
      b.step(commit(3, seq, r.digest));
    }
    const applied = drain(b).flatMap((x) => x.committed);
    expect(applied.map((e) => e.type)).toEqual([EntryType.Normal, EntryType.Noop]);
    expect(applied[1]!.data.length).toBe(0);
  });

  it('a proposal at a backup goes to the primary, and its outcome comes back with the Ready that applies it', () => {
    const b = replica(2);
    drain(b);
    const res = b.propose(enc.encode('set z 9'));
    expect(res.ok && res.index === 0 && res.ref).toBeTruthy();
    const rds = drain(b);
    const reqMsg = sentOf(rds, MsgType.PbftRequest);
    expect(reqMsg.map((m) => m.to)).toEqual([1]);
    expect(rds.some((x) => x.hardState && x.hardState.vote === 1)).toBe(true); // request numbers reserved before it left
    const bytes = (reqMsg[0] as Extract<Message, { type: MsgType.PbftRequest }>).request;
    const digest = sha256(bytes);
    b.step(prePrepare(1, { bytes, digest }));
    b.step(prepare(3, 1, digest));
    b.step(prepare(4, 1, digest));
    b.step(commit(1, 1, digest));
    b.step(commit(3, 1, digest));
    const out = drain(b);
    const withOutcome = out.find((x) => x.outcomes)!;
    expect(withOutcome.outcomes).toEqual([{ ref: res.ok ? res.ref : -1, index: 1 }]);
    expect(withOutcome.committed.map((e) => e.index)).toEqual([1]);
  });

  it('the null request executes as a no-op entry', () => {
    const b = replica(2);
    drain(b);
    b.step(prePrepare(1, 'null'));
    b.step(prepare(3, 1, NULL_DIGEST));
    b.step(prepare(4, 1, NULL_DIGEST));
    b.step(commit(1, 1, NULL_DIGEST));
    b.step(commit(3, 1, NULL_DIGEST));
    expect(drain(b).flatMap((x) => x.committed).map((e) => e.type)).toEqual([EntryType.Noop]);
  });

  it('never throws on hostile input: messages of other engines, non-members, garbage payloads', () => {
    const b = replica(2);
    drain(b);
    b.step({ type: MsgType.Heartbeat, from: 1, to: 2, term: 0, commit: undefined, ctx: 0 });
    b.step({ type: MsgType.PbftPrepare, from: 9, to: 2, term: 0, seq: 1, digest: NULL_DIGEST, sig: new Uint8Array(16) });
    b.step({ type: MsgType.PbftViewChange, from: 3, to: 2, term: 1, payload: new Uint8Array([0x9f, 0xff]), sig: new Uint8Array(16) });
    b.step({ type: MsgType.PbftNewView, from: 3, to: 2, term: 1, payload: new Uint8Array([0x84, 1, 2, 3, 4]), sig: new Uint8Array(16) });
    b.step({ type: MsgType.PbftCommitted, from: 3, to: 2, term: 0, seq: 1, request: new Uint8Array([1, 2, 3]), commits: new Uint8Array([0x80]) });
    b.step({ type: MsgType.PbftRequest, from: 3, to: 2, term: 0, request: new Uint8Array([0x85, 3, 1, 0, 0x40, 0x40]) });
    const st = b.status().dropped;
    expect(st.foreignType + st.notForMe + st.malformed).toBeGreaterThanOrEqual(5);
  });

  it('refuses what it cannot do, naming why', () => {
    const b = replica(2);
    expect(b.campaign()).toMatchObject({ ok: false, code: 'not-supported' });
    expect(b.transferLeadership(3)).toMatchObject({ ok: false, code: 'not-supported' });
    expect(b.compact(5, new Uint8Array(0))).toMatchObject({ ok: false, code: 'bad-request' });
    expect(b.propose(new Uint8Array(70_000))).toMatchObject({ ok: false, code: 'too-large' });
    const busy = replica(3, { maxPending: 2 });
    busy.propose(enc.encode('a'));
    busy.propose(enc.encode('b'));
    expect(busy.propose(enc.encode('c'))).toMatchObject({ ok: false, code: 'busy' });
    expect(() => replica(2, { checkpointInterval: 2000 })).toThrow(/VIEW-CHANGE may need/);
    expect(() => new PbftNode({ id: 2, config: { voters: [1, 2, 3], learners: [], witnesses: [] }, auth: auth(2), rng: new Rng(1) })).toThrow(/at least 4 replicas/);
    expect(() => new PbftNode({ id: 2, config: { voters: members, learners: [], witnesses: [] }, auth: auth(3), rng: new Rng(1) })).toThrow(/signs for node 3/);
  });
});
