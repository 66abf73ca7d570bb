/**
 * Keeps docs/wire.md honest: the layout table and the size table in the doc are
 * generated here from BODY_LAYOUT and real encodings, and the test fails when the doc
 * differs. To refresh the doc after a deliberate change:
 *   WIRE_DOC_UPDATE=1 npx vitest run test/src/wire/sizes.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BODY_LAYOUT, encodeFrame, MSG_TYPES } from '../../../src/wire/codec.ts';
import { EntryType, MsgType, ZabPeerState, type Message } from '../../../src/wire/messages.ts';
import { KEY_A } from './arbitraries.ts';
import { devEd25519Auths } from '../../../src/pbft/auth.ts';
import {
  checkpointSigned, commitSigned, encodeNewView, encodeRequest, encodeSigList, encodeViewChange, ppSigned, prepareSigned, requestSigned, sha256,
  type PreparedCert,
} from '../../../src/pbft/encoding.ts';

const DOC = join(import.meta.dirname, '..', '..', '..', 'docs', 'wire.md');

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
/** A KV put as the state machine might log it: ~40 bytes. */
const cmd = (i: number) => bytes(40, i);
const config = { voters: [1, 2, 3, 4, 5], learners: [], witnesses: [] };
const b = { from: 1, to: 3, term: 1234 };
/** A Paxos ballot of the same age: round 1234 of node 1. */
const PB = 1234 * 256 + 1;

// PBFT samples: four replicas (f = 1) with real Ed25519 signatures (64 bytes), view 3,
// sequence numbers around 123456, a 40-byte command; a VIEW-CHANGE with 4 prepared
// certificates, a NEW-VIEW re-proposing 4 requests, a 512-byte state chunk.
const auths = devEd25519Auths([1, 2, 3, 4], 'wire-doc-');
const au = (id: number) => auths.get(id)!;
const pv = 3;
const ps = 123456;
const op = cmd(7);
const reqBytes = encodeRequest({ origin: 2, reqNo: 4711, kind: EntryType.Normal, op, sig: au(2).sign(requestSigned(2, 4711, EntryType.Normal, op)) });
const dg = sha256(reqBytes);
const sigList = (ids: number[], content: (r: number) => Uint8Array) => ids.map((r) => ({ replica: r, sig: au(r).sign(content(r)) }));
const certs: PreparedCert[] = [0, 1, 2, 3].map((k) => ({
  seq: ps + k, view: pv - 1, digest: dg, ppSig: au(3).sign(ppSigned(pv - 1, ps + k, dg)),
  prepares: sigList([1, 2], (r) => prepareSigned(pv - 1, ps + k, dg, r)),
}));
const ckptDigest = sha256(new Uint8Array([1]));
const ckptProof = sigList([1, 2, 3], (r) => checkpointSigned(ps - 6, ckptDigest, r));
const vcPayload = encodeViewChange({ newView: pv, replica: 2, stable: ps - 6, stableDigest: ckptDigest, proof: ckptProof, certs });
const nvPayload = encodeNewView({
  view: pv, vcs: [1, 2, 3].map((r) => ({ replica: r, digest: sha256(vcPayload) })),
  pps: [0, 1, 2, 3].map((k) => ({ seq: ps + k, digest: dg, sig: au(4).sign(ppSigned(pv, ps + k, dg)) })),
});
const pb = { from: 1, to: 3, term: pv };

/** Representative content: a five-node cluster some months into its life. */
export const SAMPLES: { [T in MsgType]: Extract<Message, { type: T }> } = {
  [MsgType.PreVote]: { ...b, type: MsgType.PreVote, term: 1235, lastIndex: 123456, lastTerm: 1234 },
  [MsgType.PreVoteReply]: { ...b, type: MsgType.PreVoteReply, granted: true },
  [MsgType.Vote]: { ...b, type: MsgType.Vote, term: 1235, lastIndex: 123456, lastTerm: 1234, transfer: false },
  [MsgType.VoteReply]: { ...b, type: MsgType.VoteReply, granted: true },
  [MsgType.Append]: {
    ...b,
    type: MsgType.Append,
    prevIndex: 123456,
    prevTerm: 1234,
    commit: 123455,
    entries: [0, 1, 2].map((i) => ({ term: 1234, index: 123457 + i, type: EntryType.Normal, data: cmd(i) })),
  },
  [MsgType.AppendReply]: { ...b, type: MsgType.AppendReply, success: true, index: 123459, conflictTerm: 0, conflictIndex: 0 },
  [MsgType.Heartbeat]: { ...b, type: MsgType.Heartbeat, commit: undefined, ctx: 0 },
  [MsgType.HeartbeatReply]: { ...b, type: MsgType.HeartbeatReply, ctx: 0 },
  [MsgType.Snapshot]: {
    ...b,
    type: MsgType.Snapshot,
    lastIndex: 120000,
    lastTerm: 1200,
    offset: 4096,
    total: 20000,
    data: bytes(512, 9),
    done: false,
    config,
  },
  [MsgType.SnapshotReply]: { ...b, type: MsgType.SnapshotReply, lastIndex: 120000, next: 4608, ok: true },
  [MsgType.TimeoutNow]: { ...b, type: MsgType.TimeoutNow },
  [MsgType.ReadIndex]: { ...b, type: MsgType.ReadIndex, ctx: 4711 },
  [MsgType.ReadIndexReply]: { ...b, type: MsgType.ReadIndexReply, ctx: 4711, index: 123459, ok: true },
  [MsgType.BullyElection]: { ...b, type: MsgType.BullyElection, term: 17, priority: 200 },
  [MsgType.BullyAnswer]: { ...b, type: MsgType.BullyAnswer, term: 17, priority: 300 },
  [MsgType.BullyCoordinator]: { ...b, type: MsgType.BullyCoordinator, term: 17, priority: 300 },
  [MsgType.ClientRequest]: { ...b, type: MsgType.ClientRequest, reqId: 98765, body: bytes(60, 1) },
  [MsgType.ClientReply]: { ...b, type: MsgType.ClientReply, reqId: 98765, status: 200, body: bytes(16, 2) },
  // Paxos ballots are round × 256 + node id: round 1234 of node 1 is 315905.
  [MsgType.PaxosPrepare]: { ...b, type: MsgType.PaxosPrepare, term: PB + 256, lo: 123457, probe: false, transfer: false },
  [MsgType.PaxosPromise]: {
    ...b,
    type: MsgType.PaxosPromise,
    term: PB + 256,
    ok: true,
    probe: false,
    commit: 123456,
    last: 123459,
    snap: 120000,
    first: 123457,
    slots: [0, 1, 2].map((i) => ({ index: 123457 + i, ballot: PB, origin: PB, type: EntryType.Normal, data: cmd(i) })),
  },
  [MsgType.PaxosAccept]: {
    ...b,
    type: MsgType.PaxosAccept,
    term: PB,
    first: 123457,
    commit: 123456,
    slots: [0, 1, 2].map((i) => ({ index: 123457 + i, ballot: PB, origin: PB, type: EntryType.Normal, data: cmd(i) })),
  },
  [MsgType.PaxosAccepted]: { ...b, type: MsgType.PaxosAccepted, term: PB, ok: true, index: 123459 },
  [MsgType.PaxosSnapshot]: {
    ...b,
    type: MsgType.PaxosSnapshot,
    term: PB,
    lastIndex: 120000,
    lastTerm: PB,
    offset: 4096,
    total: 20000,
    data: bytes(512, 9),
    done: false,
    config,
  },
  [MsgType.PaxosSnapshotReply]: { ...b, type: MsgType.PaxosSnapshotReply, term: PB, lastIndex: 120000, next: 4608, ok: true },
  // ZAB: epochs grow once per established leader, like terms; zxids travel as (epoch, index).
  [MsgType.ZabNotification]: { ...b, type: MsgType.ZabNotification, term: 57, leader: 3, epoch: 1234, zxidTerm: 1234, zxidIndex: 123456, state: ZabPeerState.Looking },
  [MsgType.ZabFollowerInfo]: { ...b, type: MsgType.ZabFollowerInfo },
  [MsgType.ZabNewEpoch]: { ...b, type: MsgType.ZabNewEpoch, term: 1235 },
  [MsgType.ZabAckEpoch]: { ...b, type: MsgType.ZabAckEpoch, term: 1235, ok: true, currentEpoch: 1234, lastIndex: 123456, lastTerm: 1234, commit: 123455 },
  [MsgType.ZabDiff]: { ...b, type: MsgType.ZabDiff, term: 1235, index: 123456, indexTerm: 1234 },
  [MsgType.ZabTrunc]: { ...b, type: MsgType.ZabTrunc, term: 1235, index: 123450, indexTerm: 1233 },
  [MsgType.ZabSnap]: {
    ...b,
    type: MsgType.ZabSnap,
    lastIndex: 120000,
    lastTerm: 1200,
    offset: 4096,
    total: 20000,
    data: bytes(512, 9),
    done: false,
    config,
  },
  [MsgType.ZabSnapAck]: { ...b, type: MsgType.ZabSnapAck, lastIndex: 120000, next: 4608, ok: true },
  [MsgType.ZabProposal]: {
    ...b,
    type: MsgType.ZabProposal,
    prevIndex: 123456,
    prevTerm: 1234,
    commit: 123455,
    entries: [0, 1, 2].map((i) => ({ term: 1234, index: 123457 + i, type: EntryType.Normal, data: cmd(i) })),
  },
  [MsgType.ZabAck]: { ...b, type: MsgType.ZabAck, index: 123459, ok: true, commit: 123456 },
  [MsgType.ZabNewLeader]: { ...b, type: MsgType.ZabNewLeader, index: 123457, start: 123457 },
  [MsgType.ZabAckNewLeader]: { ...b, type: MsgType.ZabAckNewLeader, index: 123457 },
  [MsgType.ZabCommit]: { ...b, type: MsgType.ZabCommit, index: 123459 },
  [MsgType.ZabPing]: { ...b, type: MsgType.ZabPing },
  [MsgType.ZabPong]: { ...b, type: MsgType.ZabPong },
  [MsgType.ZabSyncReq]: { ...b, type: MsgType.ZabSyncReq, ctx: 4711 },
  [MsgType.ZabSyncReply]: { ...b, type: MsgType.ZabSyncReply, ctx: 4711, index: 123459, ok: true },
  [MsgType.PbftRequest]: { ...pb, type: MsgType.PbftRequest, request: reqBytes },
  [MsgType.PbftPrePrepare]: { ...pb, from: 4, type: MsgType.PbftPrePrepare, seq: ps, digest: dg, sig: au(4).sign(ppSigned(pv, ps, dg)), request: reqBytes },
  [MsgType.PbftPrepare]: { ...pb, type: MsgType.PbftPrepare, seq: ps, digest: dg, sig: au(1).sign(prepareSigned(pv, ps, dg, 1)) },
  [MsgType.PbftCommit]: { ...pb, type: MsgType.PbftCommit, seq: ps, digest: dg, sig: au(1).sign(commitSigned(pv, ps, dg, 1)) },
  [MsgType.PbftCheckpoint]: { ...pb, type: MsgType.PbftCheckpoint, replica: 1, seq: ps - 6, digest: ckptDigest, sig: ckptProof[0]!.sig },
  [MsgType.PbftViewChange]: { ...pb, from: 2, type: MsgType.PbftViewChange, payload: vcPayload, sig: au(2).sign(vcPayload) },
  [MsgType.PbftNewView]: { ...pb, from: 4, type: MsgType.PbftNewView, payload: nvPayload, sig: au(4).sign(nvPayload) },
  [MsgType.PbftStatus]: { ...pb, type: MsgType.PbftStatus, normal: true, executed: ps, stable: ps - 6 },
  [MsgType.PbftCommitted]: {
    ...pb, type: MsgType.PbftCommitted, seq: ps, request: reqBytes, commits: encodeSigList(sigList([1, 2, 3], (r) => commitSigned(pv, ps, dg, r))),
  },
  [MsgType.PbftFetchState]: { ...pb, type: MsgType.PbftFetchState, seq: ps - 6 },
  [MsgType.PbftState]: {
    ...pb, type: MsgType.PbftState, seq: ps - 6, proof: encodeSigList(ckptProof), exec: new Uint8Array(40), offset: 4096, total: 20000, data: bytes(512, 9),
  },
  [MsgType.PbftFetchRequest]: { ...pb, type: MsgType.PbftFetchRequest, seq: ps, digest: dg },
  [MsgType.PbftSuspect]: { ...pb, type: MsgType.PbftSuspect },
};
const ENV = { cluster: 1, bootId: 300, seq: 1000 };

const json = (m: Message) =>
  Buffer.byteLength(JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));

function layoutTable(): string {
  const rows = MSG_TYPES.map((t) => {
    const body = (BODY_LAYOUT[t] as readonly { name: string; kind: string }[]).map((f) => (f.kind === 'opt-uint' ? `${f.name}?` : f.name));
    return `| ${t} | ${MsgType[t]} | ${body.length ? body.join(', ') : '—'} |`;
  });
  return ['| type | name | body items after the 8 envelope items |', '|---:|---|---|', ...rows].join('\n');
}

function sizeTable(): string {
  const rows = MSG_TYPES.map((t) => {
    const m = SAMPLES[t] as Message;
    const wire = encodeFrame(m, ENV, KEY_A).length;
    const j = json(m);
    return `| ${MsgType[t]} | ${wire} | ${j} | ${(wire / j).toFixed(2)} |`;
  });
  return ['| message | frame bytes (tag incl.) | JSON bytes | ratio |', '|---|---:|---:|---:|', ...rows].join('\n');
}

function replaceBlock(doc: string, name: string, content: string): string {
  const begin = `<!-- generated:${name}:begin -->`;
  const end = `<!-- generated:${name}:end -->`;
  const a = doc.indexOf(begin);
  const z = doc.indexOf(end);
  if (a < 0 || z < a) throw new Error(`docs/wire.md: markers ${begin} … ${end} not found`);
  return doc.slice(0, a + begin.length) + '\n' + content + '\n' + doc.slice(z);
}

describe('docs/wire.md tables', () => {
  it('match the codec (set WIRE_DOC_UPDATE=1 to regenerate)', () => {
    const doc = readFileSync(DOC, 'utf8');
    const want = replaceBlock(replaceBlock(doc, 'layout', layoutTable()), 'sizes', sizeTable());
    if (process.env.WIRE_DOC_UPDATE === '1' && want !== doc) writeFileSync(DOC, want);
    else expect(doc).toBe(want);
  });
  it('every sample is smaller on the wire than as JSON', () => {
    for (const t of MSG_TYPES) {
      const m = SAMPLES[t] as Message;
      expect(encodeFrame(m, ENV, KEY_A).length, MsgType[t]).toBeLessThan(json(m));
    }
  });
});
