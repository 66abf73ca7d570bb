/**
 * The ZAB messages on the wire (MsgType 50–69): the idle ping within the 32-byte
 * heartbeat budget, and the rules between fields that any honest ZAB sender keeps
 * (src/wire/codec.ts checkRules), refused by the encoder with the field named and by
 * the decoder as bad-field. The generic round trip and fuzz tests cover these types
 * through test/src/wire/arbitraries.ts.
 */
import { describe, expect, it } from 'vitest';
import { CborWriter, type CborValue } from '../../../src/wire/cbor.ts';
import { decodeFrame, encodeFrame, encodeMessage, WireEncodeError } from '../../../src/wire/codec.ts';
import { EntryType, MsgType, ZabPeerState, type Message } from '../../../src/wire/messages.ts';
import { computeTag } from '../../../src/wire/tag.ts';
import { KEY_A } from './arbitraries.ts';

const ENV = { cluster: 7, bootId: 0, seq: 0 };
const opts = { cluster: 7, keyring: { current: KEY_A } };

function tagged(items: CborValue[]): Uint8Array {
  const body = new CborWriter().value(items).finish();
  const f = new Uint8Array(body.length + 16);
  f.set(body);
  f.set(computeTag(KEY_A, body), body.length);
  return f;
}

describe('ZAB idle ping and pong (≤ 32 bytes, tag included)', () => {
  const edges = [0, 1, 23, 24, 255, 256, 65534, 65535];
  it('hold over the edges of epoch, bootId, seq ≤ 65535, cluster and ids ≤ 23', () => {
    let largest = 0;
    for (const type of [MsgType.ZabPing, MsgType.ZabPong] as const)
      for (const term of edges)
        for (const bootId of edges)
          for (const seq of edges)
            for (const cluster of [0, 23]) {
              const f = encodeFrame({ type, from: 23, to: 1, term }, { cluster, bootId, seq }, KEY_A);
              largest = Math.max(largest, f.length);
              expect(f.length).toBeLessThanOrEqual(32);
            }
    // Tight: 1 (array) + version + 2 (type ≥ 24) + 3 one-byte items + 3 × 3 + 16 (tag).
    expect(largest).toBe(32);
  });
  it('a read round costs its ctx; omitted ctx comes back undefined', () => {
    const idle = encodeFrame({ type: MsgType.ZabPing, from: 1, to: 2, term: 3 }, ENV, KEY_A);
    const round = encodeFrame({ type: MsgType.ZabPing, from: 1, to: 2, term: 3, ctx: 1000 }, ENV, KEY_A);
    expect(round.length).toBe(idle.length + 3);
    const a = decodeFrame(idle, opts);
    expect(a.ok && a.msg.type === MsgType.ZabPing && a.msg.ctx).toBe(undefined);
    const b = decodeFrame(round, opts);
    expect(b.ok && b.msg.type === MsgType.ZabPing && b.msg.ctx).toBe(1000);
  });
});

describe('ZAB field rules: the encoder names the field, the decoder says bad-field', () => {
  const base = { from: 1, to: 2, term: 5 };
  const e = (term: number, index: number) => ({ term, index, type: EntryType.Normal, data: new Uint8Array(1) });
  const cases: Array<[string, Message, RegExp]> = [
    ['notification leader 255', { ...base, type: MsgType.ZabNotification, leader: 255, epoch: 1, zxidTerm: 1, zxidIndex: 1, state: ZabPeerState.Looking }, /leader: expected a node id 0\.\.254/],
    ['notification state 4', { ...base, type: MsgType.ZabNotification, leader: 1, epoch: 1, zxidTerm: 1, zxidIndex: 1, state: 4 as ZabPeerState }, /state: expected a ZabPeerState 0\.\.3/],
    ['ackepoch currentEpoch above the epoch', { ...base, type: MsgType.ZabAckEpoch, ok: true, currentEpoch: 6, lastIndex: 3, lastTerm: 4, commit: 2 }, /currentEpoch: 6 exceeds the acknowledged epoch 5/],
    ['ackepoch lastTerm above the epoch', { ...base, type: MsgType.ZabAckEpoch, ok: true, currentEpoch: 4, lastIndex: 3, lastTerm: 6, commit: 2 }, /lastTerm: 6 exceeds/],
    ['ackepoch commit beyond lastIndex', { ...base, type: MsgType.ZabAckEpoch, ok: true, currentEpoch: 4, lastIndex: 3, lastTerm: 4, commit: 4 }, /commit: 4 is beyond lastIndex 3/],
    ['diff indexTerm above the epoch', { ...base, type: MsgType.ZabDiff, index: 3, indexTerm: 6 }, /indexTerm: 6 exceeds the epoch 5/],
    ['trunc indexTerm above the epoch', { ...base, type: MsgType.ZabTrunc, index: 3, indexTerm: 9 }, /indexTerm: 9 exceeds/],
    ['proposal prevTerm above the epoch', { ...base, type: MsgType.ZabProposal, prevIndex: 1, prevTerm: 6, commit: 0, entries: [] }, /prevTerm: 6 exceeds the epoch 5/],
    ['proposal entry epoch above the leader', { ...base, type: MsgType.ZabProposal, prevIndex: 1, prevTerm: 1, commit: 0, entries: [e(6, 2)] }, /exceeds the leader's term 5/],
    ['proposal entry epochs decreasing', { ...base, type: MsgType.ZabProposal, prevIndex: 1, prevTerm: 3, commit: 0, entries: [e(2, 2)] }, /below the previous term 3/],
    ['newleader start 0', { ...base, type: MsgType.ZabNewLeader, index: 4, start: 0 }, /start: expected 1\.\.index \(4\), got 0/],
    ['newleader start after index', { ...base, type: MsgType.ZabNewLeader, index: 4, start: 5 }, /start: expected 1\.\.index/],
    ['ack commit beyond the acknowledged index', { ...base, type: MsgType.ZabAck, index: 4, ok: true, commit: 5 }, /commit: 5 is beyond the acknowledged index 4/],
    ['snap chunk past total', { ...base, type: MsgType.ZabSnap, lastIndex: 9, lastTerm: 2, offset: 5, total: 6, data: new Uint8Array(2), done: false, config: { voters: [1], learners: [], witnesses: [] } }, /chunk ends at 7, beyond total 6/],
  ];
  for (const [name, msg, re] of cases) {
    it(name, () => {
      expect(() => encodeMessage(msg, ENV)).toThrow(WireEncodeError);
      expect(() => encodeMessage(msg, ENV)).toThrow(re);
      // The same message forged by an insider holding the key: dropped as bad-field, same words.
      const m = msg as unknown as Record<string, unknown>;
      const items: CborValue[] = [1, msg.type, ENV.cluster, msg.from, msg.to, msg.term, 0, 0];
      const layout: Record<number, string[]> = {
        [MsgType.ZabNotification]: ['leader', 'epoch', 'zxidTerm', 'zxidIndex', 'state'],
        [MsgType.ZabAckEpoch]: ['ok', 'currentEpoch', 'lastIndex', 'lastTerm', 'commit'],
        [MsgType.ZabDiff]: ['index', 'indexTerm'],
        [MsgType.ZabTrunc]: ['index', 'indexTerm'],
        [MsgType.ZabProposal]: ['prevIndex', 'prevTerm', 'commit', 'entries'],
        [MsgType.ZabNewLeader]: ['index', 'start'],
        [MsgType.ZabAck]: ['index', 'ok', 'commit'],
        [MsgType.ZabSnap]: ['lastIndex', 'lastTerm', 'offset', 'total', 'data', 'done', 'config'],
      };
      for (const f of layout[msg.type]!) {
        const v = m[f];
        if (f === 'entries') items.push((v as Array<{ term: number; type: number; data: Uint8Array }>).map((x) => [x.term, x.type, x.data]));
        else if (f === 'config') items.push([[1], [], []]);
        else items.push(v as CborValue);
      }
      const r = decodeFrame(tagged(items), opts);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason).toBe('bad-field');
        expect(r.detail).toMatch(re);
      }
    });
  }
  it('a notification for no candidate (leader 0) and an ok=false ack with any commit are valid', () => {
    expect(() => encodeMessage({ ...base, type: MsgType.ZabNotification, leader: 0, epoch: 0, zxidTerm: 0, zxidIndex: 0, state: ZabPeerState.Looking }, ENV)).not.toThrow();
    expect(() => encodeMessage({ ...base, type: MsgType.ZabAck, index: 0, ok: false, commit: 9 }, ENV)).not.toThrow();
  });
});
