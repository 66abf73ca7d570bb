/**
 * The Multi-Paxos messages (types 40–47) and their `slots` field kind: what the
 * encoder refuses and the decoder drops as bad-field, beyond the generic round trip
 * (codec.test.ts runs that for every MsgType, these included).
 */
import { describe, expect, it } from 'vitest';
import { CborWriter, type CborValue } from '../../../src/wire/cbor.ts';
import { decodeFrame, encodeFrame, encodeMessage, WireEncodeError } from '../../../src/wire/codec.ts';
import { EntryType, MsgType, type Message } from '../../../src/wire/messages.ts';
import { computeTag } from '../../../src/wire/tag.ts';
import { KEY_A } from './arbitraries.ts';

const env = { cluster: 7, bootId: 0, seq: 0 };
const opts = { cluster: 7, keyring: { current: KEY_A } };
const B = 3 * 256 + 1; // round 3 of node 1
const slot = (index: number, over: Record<string, unknown> = {}) => ({ index, ballot: B, origin: B, type: EntryType.Normal, data: new Uint8Array([1, 2]), ...over });
const accept = (over: Record<string, unknown> = {}) => ({ type: MsgType.PaxosAccept, from: 1, to: 2, term: B, first: 5, commit: 4, slots: [slot(5), slot(6)], ...over });
const promise = (over: Record<string, unknown> = {}) => ({
  type: MsgType.PaxosPromise, from: 2, to: 1, term: B + 256, ok: true, probe: false, commit: 4, last: 6, snap: 0, first: 5, slots: [slot(5), slot(6)], ...over,
});

function tagged(items: CborValue[]): Uint8Array {
  const body = new CborWriter().value(items).finish();
  const f = new Uint8Array(body.length + 16);
  f.set(body);
  f.set(computeTag(KEY_A, body), body.length);
  return f;
}
const envItems = (type: MsgType, term: number) => [1, type, 7, 1, 2, term, 0, 0];

describe('paxos messages: the encoder refuses with the field named', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['accept slot at another ballot', accept({ slots: [slot(5), slot(6, { ballot: B - 256, origin: B - 256 })] }), /slots\[1\]\.ballot: .* differs from the message's ballot/],
    ['slot origin above its ballot', promise({ slots: [slot(5, { origin: B + 1 })] }), /slots\[0\]\.origin: expected 1\.\.ballot/],
    ['slot origin 0', accept({ slots: [slot(5, { origin: 0 })] }), /slots\[0\]\.origin/],
    ['slot index gap', accept({ slots: [slot(5), slot(7)] }), /slots\[1\]\.index: expected first\+1 = 6/],
    ['first 0', accept({ first: 0, slots: [] }), /first: expected a slot ≥ 1/],
    ['promise slot ballot above the promise', promise({ term: B - 1 }), /slots\[0\]\.ballot: .* exceeds/],
    ['promise commit beyond last', promise({ commit: 9 }), /snap \(0\) ≤ commit \(9\) ≤ last \(6\)/],
    ['promise snapshot beyond commit', promise({ snap: 5 }), /snap \(5\) ≤ commit/],
    ['refusal with slots', promise({ ok: false }), /a refusal carries no slots/],
    ['slots beyond last', promise({ last: 5, commit: 4 }), /end at 6, beyond last 5/],
    ['slot data not bytes', accept({ slots: [slot(5, { data: 'x' })] }), /slots\[0\]\.data/],
    ['slot type 7', accept({ slots: [slot(5, { type: 7 })] }), /slots\[0\]\.type: expected an EntryType/],
  ];
  for (const [name, msg, re] of cases) {
    it(name, () => {
      expect(() => encodeMessage(msg as Message, env)).toThrow(WireEncodeError);
      expect(() => encodeMessage(msg as Message, env)).toThrow(re);
    });
  }
});

describe('paxos messages: the decoder drops bad slots as bad-field', () => {
  const acc = (slots: CborValue[], term = B) => tagged([...envItems(MsgType.PaxosAccept, term), 5, 4, slots]);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['slot not a 4-tuple', acc([[B, B, 0]]), /slots\[0\]: expected \[ballot, origin, type, data\]/],
    ['slot type 9', acc([[B, B, 9, new Uint8Array()]]), /EntryType/],
    ['slot ballot as bytes', acc([[new Uint8Array(1), B, 0, new Uint8Array()]]), /slots\[0\]\.ballot/],
    ['origin above ballot', acc([[B, B + 5, 0, new Uint8Array()]]), /origin/],
    ['accept slot at another ballot', acc([[B, B, 0, new Uint8Array()]], B + 256), /differs from the message's ballot/],
    ['slots not an array', acc(7 as unknown as CborValue[]), /slots: expected an array of slots/],
    ['first as bool', tagged([...envItems(MsgType.PaxosAccept, B), true, 4, []]), /first/],
  ];
  for (const [name, frame, re] of cases) {
    it(name, () => {
      const r = decodeFrame(frame, opts);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason).toBe('bad-field');
        expect(r.detail).toMatch(re);
      }
    });
  }

  it('slot indexes are rebuilt from first; ballots and origins come back as sent', () => {
    const m = promise({ slots: [slot(5, { ballot: B, origin: B - 256 }), slot(6, { type: EntryType.Noop, data: new Uint8Array() })] });
    const r = decodeFrame(encodeFrame(m as Message, env, KEY_A), opts);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.msg).toEqual(m);
  });
});

describe('paxos idle heartbeat (the shared Heartbeat, type 7)', () => {
  it('fits the 32-byte budget while the ballot is below 65536 (the first 255 rounds), 2 bytes more after', () => {
    const hb = (term: number): Message => ({ type: MsgType.Heartbeat, from: 23, to: 22, term, ctx: 0, commit: undefined });
    const e = { cluster: 23, bootId: 65535, seq: 65535 };
    expect(encodeFrame(hb(255 * 256 + 254), e, KEY_A).length).toBeLessThanOrEqual(32);
    expect(encodeFrame(hb(256 * 256 + 1), e, KEY_A).length).toBe(34);
  });
});
