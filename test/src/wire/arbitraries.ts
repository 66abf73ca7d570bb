/**
 * fast-check generators for every message type, inside the wire ranges.
 * The mapped type makes a MsgType without a generator a compile error, and the
 * round-trip test iterates the enum at run time, so a new type cannot go untested.
 */
import fc from 'fast-check';
import { EntryType, MsgType, ZabPeerState, type Entry, type MemberConfig, type Message, type PaxosSlot } from '../../../src/wire/messages.ts';
import type { Envelope } from '../../../src/wire/codec.ts';

type Of<T extends MsgType> = Extract<Message, { type: T }>;

/** Small values most of the time (where encodings change size), any safe integer sometimes. */
export const uint = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 1, arbitrary: fc.constantFrom(23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER) },
  { weight: 1, arbitrary: fc.maxSafeNat() },
);
export const nodeId = fc.integer({ min: 1, max: 254 });
const bytes = fc.uint8Array({ maxLength: 64 });

export const envelope: fc.Arbitrary<Envelope> = fc.record({
  cluster: fc.integer({ min: 0, max: 65535 }),
  bootId: fc.integer({ min: 0, max: 65535 }),
  seq: fc.integer({ min: 0, max: 65535 }),
});

const base = fc.record({ from: nodeId, to: nodeId, term: uint });
const zabStates = [ZabPeerState.Looking, ZabPeerState.Following, ZabPeerState.Leading, ZabPeerState.Observing] as const;
/** A term and a last-log term not above it. */
const termPair = fc.tuple(uint, uint).map(([a, b]) => (a >= b ? { term: a, lastTerm: b } : { term: b, lastTerm: a }));

const config: fc.Arbitrary<MemberConfig> = fc
  .uniqueArray(nodeId, { maxLength: 9 })
  .chain((ids) =>
    fc.array(fc.integer({ min: 0, max: 2 }), { minLength: ids.length, maxLength: ids.length }).map((where) => ({
      voters: ids.filter((_, i) => where[i] === 0),
      learners: ids.filter((_, i) => where[i] === 1),
      witnesses: ids.filter((_, i) => where[i] === 2),
    })),
  );

/** Entries after (prevIndex, prevTerm) with non-decreasing terms, and a term not below them. */
const entryRun = fc
  .record({
    b: base,
    prevIndex: fc.integer({ min: 0, max: 2 ** 40 }),
    commit: uint,
    raw: fc.array(fc.record({ bump: fc.nat(3), type: fc.constantFrom(EntryType.Normal, EntryType.Noop, EntryType.Config), data: bytes }), {
      maxLength: 8,
    }),
    prevTerm: fc.nat(1000),
  })
  .map(({ b, prevIndex, commit, raw, prevTerm }) => {
    let t = prevTerm;
    const entries: Entry[] = raw.map((r, i) => {
      t += r.bump;
      return { term: t, index: prevIndex + 1 + i, type: r.type, data: r.data };
    });
    return { ...b, term: Math.max(b.term, t), prevIndex, prevTerm, commit, entries };
  });
const append: fc.Arbitrary<Of<MsgType.Append>> = entryRun.map((r) => ({ ...r, type: MsgType.Append as const }));
const zabProposal: fc.Arbitrary<Of<MsgType.ZabProposal>> = entryRun.map((r) => ({ ...r, type: MsgType.ZabProposal as const }));

const chunk = fc
  .record({ b: base, tp: termPair, lastIndex: uint, offset: fc.integer({ min: 0, max: 2 ** 40 }), data: bytes, extra: uint, done: fc.boolean(), config })
  .map(({ b, tp, lastIndex, offset, data, extra, done, config }) => ({
    ...b,
    term: tp.term,
    lastIndex,
    lastTerm: tp.lastTerm,
    offset,
    total: done ? offset + data.length : Math.min(Number.MAX_SAFE_INTEGER, offset + data.length + extra),
    data,
    done,
    config,
  }));
const snapshot: fc.Arbitrary<Of<MsgType.Snapshot>> = chunk.map((c) => ({ ...c, type: MsgType.Snapshot as const }));
const zabSnap: fc.Arbitrary<Of<MsgType.ZabSnap>> = chunk.map((c) => ({ ...c, type: MsgType.ZabSnap as const }));

/** Paxos slots from `first`: each 1 ≤ origin ≤ ballot ≤ term (ballot = term when `same`). */
function paxosSlots(first: number, term: number, same: boolean, maxLength: number): fc.Arbitrary<PaxosSlot[]> {
  const one = fc.record({ b: fc.integer({ min: 1, max: term }), o: fc.integer({ min: 1, max: term }), type: fc.constantFrom(EntryType.Normal, EntryType.Noop, EntryType.Config), data: bytes });
  return fc.array(one, { maxLength }).map((xs) =>
    xs.map((x, i) => {
      const ballot = same ? term : Math.max(x.b, x.o);
      return { index: first + i, ballot, origin: Math.min(x.b, x.o, ballot), type: x.type, data: x.data };
    }),
  );
}
const ballotTerm = fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 2 ** 40 }));

const paxosPromise: fc.Arbitrary<Of<MsgType.PaxosPromise>> = fc
  .record({ from: nodeId, to: nodeId, term: ballotTerm, ok: fc.boolean(), probe: fc.boolean(), snap: fc.nat(1000), c: fc.nat(1000), l: fc.nat(1000), first: fc.integer({ min: 1, max: 2 ** 40 }) })
  .chain((r) =>
    (r.ok ? paxosSlots(r.first, r.term, false, 6) : fc.constant([] as PaxosSlot[])).map((slots) => {
      const commit = r.snap + r.c;
      const last = Math.max(commit + r.l, slots.length > 0 ? r.first + slots.length - 1 : 0);
      return { from: r.from, to: r.to, term: r.term, type: MsgType.PaxosPromise as const, ok: r.ok, probe: r.probe, commit, last, snap: r.snap, first: r.first, slots };
    }),
  );

const paxosAccept: fc.Arbitrary<Of<MsgType.PaxosAccept>> = fc
  .record({ from: nodeId, to: nodeId, term: ballotTerm, first: fc.integer({ min: 1, max: 2 ** 40 }), commit: uint })
  .chain((r) => paxosSlots(r.first, r.term, true, 8).map((slots) => ({ ...r, type: MsgType.PaxosAccept as const, slots })));

const paxosSnapshot: fc.Arbitrary<Of<MsgType.PaxosSnapshot>> = snapshot.map((m) => ({ ...m, type: MsgType.PaxosSnapshot as const }));
// PBFT: sequence numbers ≥ 1, SHA-256 digests, signatures of 16..64 bytes, non-empty nested payloads.
const seq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const digest = fc.uint8Array({ minLength: 32, maxLength: 32 });
const sig = fc.uint8Array({ minLength: 16, maxLength: 64 });
const nonEmpty = fc.uint8Array({ minLength: 1, maxLength: 64 });
const pbftState: fc.Arbitrary<Of<MsgType.PbftState>> = fc
  .record({ b: base, seq, proof: nonEmpty, exec: bytes, offset: fc.integer({ min: 0, max: 2 ** 40 }), data: bytes, extra: uint })
  .map(({ b, extra, ...r }) => ({ ...b, type: MsgType.PbftState as const, ...r, total: Math.min(Number.MAX_SAFE_INTEGER, r.offset + r.data.length + extra) }));

export const messageArb: { [T in MsgType]: fc.Arbitrary<Of<T>> } = {
  [MsgType.PbftRequest]: fc.record({ b: base, request: nonEmpty }).map(({ b, request }) => ({ ...b, type: MsgType.PbftRequest as const, request })),
  [MsgType.PbftPrePrepare]: fc
    .record({ b: base, seq, digest, sig, request: bytes })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.PbftPrePrepare as const, ...r })),
  [MsgType.PbftPrepare]: fc.record({ b: base, seq, digest, sig }).map(({ b, ...r }) => ({ ...b, type: MsgType.PbftPrepare as const, ...r })),
  [MsgType.PbftCommit]: fc.record({ b: base, seq, digest, sig }).map(({ b, ...r }) => ({ ...b, type: MsgType.PbftCommit as const, ...r })),
  [MsgType.PbftCheckpoint]: fc
    .record({ b: base, replica: nodeId, seq, digest, sig })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.PbftCheckpoint as const, ...r })),
  [MsgType.PbftViewChange]: fc.record({ b: base, payload: nonEmpty, sig }).map(({ b, ...r }) => ({ ...b, type: MsgType.PbftViewChange as const, ...r })),
  [MsgType.PbftNewView]: fc.record({ b: base, payload: nonEmpty, sig }).map(({ b, ...r }) => ({ ...b, type: MsgType.PbftNewView as const, ...r })),
  [MsgType.PbftStatus]: fc
    .record({ b: base, normal: fc.boolean(), executed: uint, stable: uint })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.PbftStatus as const, ...r })),
  [MsgType.PbftCommitted]: fc
    .record({ b: base, seq, request: bytes, commits: nonEmpty })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.PbftCommitted as const, ...r })),
  [MsgType.PbftFetchState]: fc.record({ b: base, seq }).map(({ b, seq }) => ({ ...b, type: MsgType.PbftFetchState as const, seq })),
  [MsgType.PbftState]: pbftState,
  [MsgType.PbftFetchRequest]: fc.record({ b: base, seq, digest }).map(({ b, ...r }) => ({ ...b, type: MsgType.PbftFetchRequest as const, ...r })),
  [MsgType.PbftSuspect]: base.map((b) => ({ ...b, type: MsgType.PbftSuspect as const })),
  [MsgType.PreVote]: fc.record({ b: base, tp: termPair, lastIndex: uint }).map(({ b, tp, lastIndex }) => ({ ...b, term: tp.term, type: MsgType.PreVote as const, lastIndex, lastTerm: tp.lastTerm })),
  [MsgType.PreVoteReply]: fc.record({ b: base, granted: fc.boolean() }).map(({ b, granted }) => ({ ...b, type: MsgType.PreVoteReply as const, granted })),
  [MsgType.Vote]: fc
    .record({ b: base, tp: termPair, lastIndex: uint, transfer: fc.boolean() })
    .map(({ b, tp, lastIndex, transfer }) => ({ ...b, term: tp.term, type: MsgType.Vote as const, lastIndex, lastTerm: tp.lastTerm, transfer })),
  [MsgType.VoteReply]: fc.record({ b: base, granted: fc.boolean() }).map(({ b, granted }) => ({ ...b, type: MsgType.VoteReply as const, granted })),
  [MsgType.Append]: append,
  [MsgType.AppendReply]: fc
    .record({ b: base, success: fc.boolean(), index: uint, conflictTerm: uint, conflictIndex: uint })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.AppendReply as const, ...r })),
  [MsgType.Heartbeat]: fc
    .record({ b: base, commit: fc.option(uint, { nil: undefined }), ctx: uint })
    .map(({ b, commit, ctx }) => ({ ...b, type: MsgType.Heartbeat as const, commit, ctx })),
  [MsgType.HeartbeatReply]: fc
    .record({ b: base, ctx: uint, commit: fc.option(uint, { nil: undefined }) })
    .map(({ b, ctx, commit }) => ({ ...b, type: MsgType.HeartbeatReply as const, ctx, commit })),
  [MsgType.Snapshot]: snapshot,
  [MsgType.SnapshotReply]: fc
    .record({ b: base, lastIndex: uint, next: uint, ok: fc.boolean() })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.SnapshotReply as const, ...r })),
  [MsgType.TimeoutNow]: base.map((b) => ({ ...b, type: MsgType.TimeoutNow as const })),
  [MsgType.ReadIndex]: fc.record({ b: base, ctx: uint }).map(({ b, ctx }) => ({ ...b, type: MsgType.ReadIndex as const, ctx })),
  [MsgType.ReadIndexReply]: fc
    .record({ b: base, ctx: uint, index: uint, ok: fc.boolean() })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.ReadIndexReply as const, ...r })),
  [MsgType.BullyElection]: fc.record({ b: base, priority: uint }).map(({ b, priority }) => ({ ...b, type: MsgType.BullyElection as const, priority })),
  [MsgType.BullyAnswer]: fc.record({ b: base, priority: uint }).map(({ b, priority }) => ({ ...b, type: MsgType.BullyAnswer as const, priority })),
  [MsgType.BullyCoordinator]: fc.record({ b: base, priority: uint }).map(({ b, priority }) => ({ ...b, type: MsgType.BullyCoordinator as const, priority })),
  [MsgType.ClientRequest]: fc.record({ b: base, reqId: uint, body: bytes }).map(({ b, reqId, body }) => ({ ...b, type: MsgType.ClientRequest as const, reqId, body })),
  [MsgType.ClientReply]: fc
    .record({ b: base, reqId: uint, status: fc.integer({ min: 100, max: 599 }), body: bytes })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.ClientReply as const, ...r })),
  [MsgType.PaxosPrepare]: fc
    .record({ b: base, lo: uint, probe: fc.boolean(), transfer: fc.boolean() })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.PaxosPrepare as const, ...r })),
  [MsgType.PaxosPromise]: paxosPromise,
  [MsgType.PaxosAccept]: paxosAccept,
  [MsgType.PaxosAccepted]: fc.record({ b: base, ok: fc.boolean(), index: uint }).map(({ b, ...r }) => ({ ...b, type: MsgType.PaxosAccepted as const, ...r })),
  [MsgType.PaxosSnapshot]: paxosSnapshot,
  [MsgType.PaxosSnapshotReply]: fc
    .record({ b: base, lastIndex: uint, next: uint, ok: fc.boolean() })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.PaxosSnapshotReply as const, ...r })),
  [MsgType.ZabNotification]: fc
    .record({ b: base, leader: fc.integer({ min: 0, max: 254 }), epoch: uint, zxidTerm: uint, zxidIndex: uint, state: fc.constantFrom(...zabStates) })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.ZabNotification as const, ...r })),
  [MsgType.ZabFollowerInfo]: base.map((b) => ({ ...b, type: MsgType.ZabFollowerInfo as const })),
  [MsgType.ZabNewEpoch]: base.map((b) => ({ ...b, type: MsgType.ZabNewEpoch as const })),
  [MsgType.ZabAckEpoch]: fc
    .record({ b: base, ok: fc.boolean(), tp: termPair, ce: uint, a: uint, c: uint })
    .map(({ b, ok, tp, ce, a, c }) => ({
      ...b,
      type: MsgType.ZabAckEpoch as const,
      term: tp.term,
      ok,
      currentEpoch: Math.min(ce, tp.term),
      lastTerm: tp.lastTerm,
      lastIndex: Math.max(a, c),
      commit: Math.min(a, c),
    })),
  [MsgType.ZabDiff]: fc.record({ b: base, tp: termPair, index: uint }).map(({ b, tp, index }) => ({ ...b, type: MsgType.ZabDiff as const, term: tp.term, index, indexTerm: tp.lastTerm })),
  [MsgType.ZabTrunc]: fc.record({ b: base, tp: termPair, index: uint }).map(({ b, tp, index }) => ({ ...b, type: MsgType.ZabTrunc as const, term: tp.term, index, indexTerm: tp.lastTerm })),
  [MsgType.ZabSnap]: zabSnap,
  [MsgType.ZabSnapAck]: fc
    .record({ b: base, lastIndex: uint, next: uint, ok: fc.boolean() })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.ZabSnapAck as const, ...r })),
  [MsgType.ZabProposal]: zabProposal,
  [MsgType.ZabAck]: fc
    .record({ b: base, x: uint, y: uint, ok: fc.boolean() })
    .map(({ b, x, y, ok }) => ({ ...b, type: MsgType.ZabAck as const, ok, index: ok ? Math.max(x, y) : x, commit: ok ? Math.min(x, y) : y })),
  [MsgType.ZabNewLeader]: fc
    .record({ b: base, x: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), y: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) })
    .map(({ b, x, y }) => ({ ...b, type: MsgType.ZabNewLeader as const, index: Math.max(x, y), start: Math.min(x, y) })),
  [MsgType.ZabAckNewLeader]: fc.record({ b: base, index: uint }).map(({ b, index }) => ({ ...b, type: MsgType.ZabAckNewLeader as const, index })),
  [MsgType.ZabCommit]: fc.record({ b: base, index: uint }).map(({ b, index }) => ({ ...b, type: MsgType.ZabCommit as const, index })),
  [MsgType.ZabPing]: fc.record({ b: base, ctx: fc.option(uint, { nil: undefined }) }).map(({ b, ctx }) => ({ ...b, type: MsgType.ZabPing as const, ctx })),
  [MsgType.ZabPong]: fc.record({ b: base, ctx: fc.option(uint, { nil: undefined }) }).map(({ b, ctx }) => ({ ...b, type: MsgType.ZabPong as const, ctx })),
  [MsgType.ZabSyncReq]: fc.record({ b: base, ctx: uint }).map(({ b, ctx }) => ({ ...b, type: MsgType.ZabSyncReq as const, ctx })),
  [MsgType.ZabSyncReply]: fc
    .record({ b: base, ctx: uint, index: uint, ok: fc.boolean() })
    .map(({ b, ...r }) => ({ ...b, type: MsgType.ZabSyncReply as const, ...r })),
};

export const anyMessage: fc.Arbitrary<Message> = fc.oneof(...Object.values(messageArb) as fc.Arbitrary<Message>[]);

export const KEY_A = new Uint8Array(32).fill(0xa1);
export const KEY_B = new Uint8Array(32).fill(0xb2);
export const KEY_C = new Uint8Array(32).fill(0xc3);
