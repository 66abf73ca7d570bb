import fc from 'fast-check';
import { decode as cborxDecode } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { CborWriter, type CborValue } from '../../../src/wire/cbor.ts';
import {
  BODY_LAYOUT,
  DROP_REASONS,
  decodeFrame,
  encodeFrame,
  encodeMessage,
  MSG_TYPES,
  WireEncodeError,
  type DecodeOptions,
} from '../../../src/wire/codec.ts';
import { EntryType, MsgType, type Message } from '../../../src/wire/messages.ts';
import { computeTag } from '../../../src/wire/tag.ts';
import { envelope, KEY_A, KEY_B, messageArb } from './arbitraries.ts';

const opts = (cluster: number, extra: Partial<DecodeOptions> = {}): DecodeOptions => ({ cluster, keyring: { current: KEY_A }, ...extra });

/** A frame from arbitrary CBOR items, correctly tagged: the hostile insider who holds the key. */
function tagged(items: CborValue[], key = KEY_A): Uint8Array {
  const body = new CborWriter().value(items).finish();
  const f = new Uint8Array(body.length + 16);
  f.set(body);
  f.set(computeTag(key, body), body.length);
  return f;
}

const hb = (over: Partial<Extract<Message, { type: MsgType.Heartbeat }>> = {}): Message => ({
  type: MsgType.Heartbeat,
  from: 1,
  to: 2,
  term: 5,
  commit: undefined,
  ctx: 0,
  ...over,
});

describe('round trip', () => {
  it('every MsgType has a layout and a generator', () => {
    expect(MSG_TYPES.length).toBeGreaterThanOrEqual(18);
    for (const t of MSG_TYPES) {
      expect(BODY_LAYOUT[t], `layout for ${MsgType[t]}`).toBeDefined();
      expect(messageArb[t], `generator for ${MsgType[t]}`).toBeDefined();
    }
  });

  for (const t of MSG_TYPES) {
    it(`${MsgType[t]} survives encode → decode, and cbor-x reads the same array`, () => {
      fc.assert(
        fc.property(messageArb[t] as fc.Arbitrary<Message>, envelope, (msg, env) => {
          const frame = encodeFrame(msg, env, KEY_A);
          const r = decodeFrame(frame, opts(env.cluster));
          if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
          expect(r.msg).toEqual(msg);
          expect(r.env).toEqual(env);
          expect(r.keyUsed).toBe('current');
          // Interop: the CBOR part is ordinary CBOR for a standard decoder.
          const arr = (cborxDecode(frame.subarray(0, frame.length - 16)) as unknown[]).map((x) => (typeof x === 'bigint' ? Number(x) : x));
          expect(arr.slice(0, 8)).toEqual([1, t, env.cluster, msg.from, msg.to, msg.term, env.bootId, env.seq]);
        }),
        { numRuns: 150, seed: 4242 + t },
      );
    });
  }
});

describe('idle heartbeat budget (docs/wire.md: ≤ 32 bytes, tag included)', () => {
  const edges = [0, 1, 23, 24, 255, 256, 65534, 65535];
  it('holds over the edges of term, bootId, seq ≤ 65535, cluster and ids ≤ 23', () => {
    let largest = 0;
    for (const term of edges)
      for (const bootId of edges)
        for (const seq of edges)
          for (const cluster of [0, 23])
            for (const [from, to] of [[1, 2], [23, 22], [1, 23]] as const) {
              const f = encodeFrame(hb({ term, from, to }), { cluster, bootId, seq }, KEY_A);
              largest = Math.max(largest, f.length);
              expect(f.length).toBeLessThanOrEqual(32);
            }
    // Tight: 1 (array) + 5 one-byte items + 3 × 3 (term, bootId, seq ≥ 256) + 1 (ctx) + 16 (tag).
    expect(largest).toBe(32);
  });
  it('a heartbeat carrying commit or a large cluster id costs more (what the budget excludes)', () => {
    const idle = encodeFrame(hb(), { cluster: 0, bootId: 0, seq: 0 }, KEY_A).length;
    expect(idle).toBe(26);
    expect(encodeFrame(hb({ commit: 1000 }), { cluster: 0, bootId: 0, seq: 0 }, KEY_A).length).toBe(idle + 3);
    expect(encodeFrame(hb(), { cluster: 24, bootId: 0, seq: 0 }, KEY_A).length).toBe(idle + 1);
  });
  it('omitted commit comes back as undefined, present commit as itself', () => {
    const a = decodeFrame(encodeFrame(hb(), { cluster: 3, bootId: 1, seq: 2 }, KEY_A), opts(3));
    expect(a.ok && a.msg.type === MsgType.Heartbeat && a.msg.commit).toBe(undefined);
    const b = decodeFrame(encodeFrame(hb({ commit: 0 }), { cluster: 3, bootId: 1, seq: 2 }, KEY_A), opts(3));
    expect(b.ok && b.msg.type === MsgType.Heartbeat && b.msg.commit).toBe(0);
  });
});

describe('encoder refuses invalid messages with the field named', () => {
  const env = { cluster: 1, bootId: 0, seq: 0 };
  const cases: Array<[string, unknown, unknown, RegExp]> = [
    ['from 0', hb({ from: 0 }), env, /from: expected an integer 1\.\.254, got 0/],
    ['to 255', hb({ to: 255 }), env, /to: expected an integer 1\.\.254/],
    ['negative term', hb({ term: -1 }), env, /term/],
    ['fractional ctx', hb({ ctx: 1.5 }), env, /ctx/],
    ['seq 65536', hb(), { ...env, seq: 65536 }, /seq: expected an integer 0\.\.65535/],
    ['bootId -1', hb(), { ...env, bootId: -1 }, /bootId/],
    ['cluster 70000', hb(), { ...env, cluster: 70000 }, /cluster/],
    ['unknown type', { ...hb(), type: 99 }, env, /type: expected a MsgType/],
    ['extra field', { ...hb(), color: 'red' }, env, /color: field has no wire encoding/],
    [
      'entry index gap',
      { type: MsgType.Append, from: 1, to: 2, term: 3, prevIndex: 10, prevTerm: 1, commit: 0, entries: [{ term: 2, index: 12, type: 0, data: new Uint8Array() }] },
      env,
      /entries\[0\]\.index: expected prevIndex\+1\+0 = 11/,
    ],
    [
      'entry term above leader term',
      { type: MsgType.Append, from: 1, to: 2, term: 3, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ term: 4, index: 1, type: 0, data: new Uint8Array() }] },
      env,
      /exceeds the leader's term/,
    ],
    [
      'snapshot chunk past total',
      { type: MsgType.Snapshot, from: 1, to: 2, term: 3, lastIndex: 9, lastTerm: 2, offset: 5, total: 6, data: new Uint8Array(2), done: false, config: { voters: [1], learners: [], witnesses: [] } },
      env,
      /chunk ends at 7, beyond total 6/,
    ],
    [
      'duplicate member',
      { type: MsgType.Snapshot, from: 1, to: 2, term: 3, lastIndex: 9, lastTerm: 2, offset: 0, total: 0, data: new Uint8Array(), done: true, config: { voters: [1, 2], learners: [2], witnesses: [] } },
      env,
      /node 2 appears twice/,
    ],
    ['status 42', { type: MsgType.ClientReply, from: 1, to: 2, term: 0, reqId: 1, status: 42, body: new Uint8Array() }, env, /status: expected an integer 100\.\.599/],
  ];
  for (const [name, msg, e, re] of cases) {
    it(name, () => {
      expect(() => encodeMessage(msg as Message, e as never)).toThrow(WireEncodeError);
      expect(() => encodeMessage(msg as Message, e as never)).toThrow(re);
    });
  }
});

describe('decoder rejects with a reason from the closed set', () => {
  const env = [1, MsgType.Heartbeat, 7, 1, 2, 5, 0, 0];
  const cases: Array<[string, Uint8Array, (typeof DROP_REASONS)[number], RegExp?]> = [
    ['too short', new Uint8Array(10), 'truncated'],
    ['not an array', tagged(new Uint8Array(12) as never), 'malformed', /expected an array/],
    ['too few items', tagged([1, 7, 7, 1, 2, new Uint8Array(9)]), 'malformed', /at least 8/],
    ['version 2', tagged([2, ...env.slice(1), 0]), 'bad-version'],
    ['type 99', tagged([1, 99, ...env.slice(2), 0]), 'unknown-type'],
    ['type as bytes', tagged([1, new Uint8Array(1), ...env.slice(2), 0]), 'unknown-type'],
    ['other cluster', tagged([1, 7, 8, 1, 2, 5, 0, 0, 0]), 'unknown-cluster'],
    ['cluster 65536', tagged([1, 7, 65536, 1, 2, 5, 0, 0, 0]), 'bad-field'],
    ['from 0', tagged([...env.slice(0, 3), 0, 2, 5, 0, 0, 0]), 'bad-field', /from/],
    ['to 255', tagged([...env.slice(0, 4), 255, 5, 0, 0, 0]), 'bad-field', /to/],
    ['seq 65536', tagged([...env.slice(0, 7), 65536, 0]), 'bad-field', /seq/],
    ['missing ctx', tagged(env), 'bad-field', /1\.\.2 items, got 0/],
    ['too many items', tagged([...env, 0, 1, 2]), 'bad-field', /got 3/],
    ['ctx as bool', tagged([...env, true]), 'bad-field', /ctx: expected an integer/],
    ['explicit undefined commit', tagged([...env, 0, undefined]), 'bad-field', /present but undefined/],
    ['null commit', tagged([...env, 0, null]), 'bad-field', /commit/],
    ['bool as 1', tagged([1, MsgType.VoteReply, 7, 1, 2, 5, 0, 0, 1]), 'bad-field', /granted: expected a boolean/],
    ['entry not a triple', tagged([1, MsgType.Append, 7, 1, 2, 5, 0, 0, 0, 0, 0, [[1, 0]]]), 'bad-field', /entries\[0\]/],
    ['entry type 9', tagged([1, MsgType.Append, 7, 1, 2, 5, 0, 0, 0, 0, 0, [[1, 9, new Uint8Array()]]]), 'bad-field', /EntryType/],
    ['wrong key', tagged([...env, 0], KEY_B), 'bad-tag'],
    // PBFT: the rules any honest sender keeps
    ['pbft seq 0', tagged([1, MsgType.PbftPrepare, 7, 1, 2, 5, 0, 0, 0, new Uint8Array(32), new Uint8Array(64)]), 'bad-field', /seq: expected a sequence number ≥ 1/],
    ['pbft digest of 31 bytes', tagged([1, MsgType.PbftCommit, 7, 1, 2, 5, 0, 0, 9, new Uint8Array(31), new Uint8Array(64)]), 'bad-field', /digest: expected 32 bytes/],
    ['pbft signature of 8 bytes', tagged([1, MsgType.PbftPrepare, 7, 1, 2, 5, 0, 0, 9, new Uint8Array(32), new Uint8Array(8)]), 'bad-field', /sig: expected 16\.\.64 bytes/],
    ['pbft signature of 65 bytes', tagged([1, MsgType.PbftPrePrepare, 7, 1, 2, 5, 0, 0, 9, new Uint8Array(32), new Uint8Array(65), new Uint8Array(0)]), 'bad-field', /sig/],
    ['pbft checkpoint replica 0', tagged([1, MsgType.PbftCheckpoint, 7, 1, 2, 5, 0, 0, 0, 8, new Uint8Array(32), new Uint8Array(64)]), 'bad-field', /replica/],
    ['pbft empty request', tagged([1, MsgType.PbftRequest, 7, 1, 2, 5, 0, 0, new Uint8Array(0)]), 'bad-field', /request: expected an encoded request/],
    ['pbft empty view-change payload', tagged([1, MsgType.PbftViewChange, 7, 1, 2, 5, 0, 0, new Uint8Array(0), new Uint8Array(64)]), 'bad-field', /payload/],
    ['pbft state chunk beyond total', tagged([1, MsgType.PbftState, 7, 1, 2, 5, 0, 0, 8, new Uint8Array(5), new Uint8Array(0), 10, 12, new Uint8Array(4)]), 'bad-field', /beyond total/],
    ['pbft status normal as 1', tagged([1, MsgType.PbftStatus, 7, 1, 2, 5, 0, 0, 1, 3, 2]), 'bad-field', /normal: expected a boolean/],
  ];
  for (const [name, frame, reason, re] of cases) {
    it(name, () => {
      const r = decodeFrame(frame, opts(7));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.reason).toBe(reason);
      if (re) expect(r.detail).toMatch(re);
    });
  }
  it('a frame above maxFrame is too-large before parsing (even if valid)', () => {
    const f = tagged([...env, 0]);
    expect(decodeFrame(f, opts(7, { maxFrame: f.length })).ok).toBe(true);
    const r = decodeFrame(f, opts(7, { maxFrame: f.length - 1 }));
    expect(!r.ok && r.reason).toBe('too-large');
  });
  it('trailing bytes between the value and the tag are malformed', () => {
    const body = new CborWriter().value([...env, 0]).finish();
    const withJunk = new Uint8Array([...body, 0]);
    const f = new Uint8Array([...withJunk, ...computeTag(KEY_A, withJunk)]);
    const r = decodeFrame(f, opts(7));
    expect(!r.ok && r.reason).toBe('malformed');
  });
  it('non-shortest integers are malformed (one encoding per message)', () => {
    const body = new CborWriter().value([...env, 0]).finish();
    const long = new Uint8Array([body[0]!, 0x18, 0x01, ...body.subarray(2)]); // version as 0x18 0x01
    const f = new Uint8Array([...long, ...computeTag(KEY_A, long)]);
    const r = decodeFrame(f, opts(7));
    expect(!r.ok && r.reason).toBe('malformed');
  });
  it('not-for-me when self is set and differs', () => {
    const f = tagged([...env, 0]);
    expect(decodeFrame(f, opts(7, { self: 2 })).ok).toBe(true);
    const r = decodeFrame(f, opts(7, { self: 3 }));
    expect(!r.ok && r.reason).toBe('not-for-me');
  });
  it('never throws for inputs that are not byte arrays', () => {
    for (const x of [null, undefined, 'frame', 42, [1, 2, 3], {}, new ArrayBuffer(40)]) {
      const r = decodeFrame(x as never, opts(7));
      expect(!r.ok && r.reason).toBe('malformed');
    }
  });
  it('invalid options are a clear exception, not a silent drop', () => {
    expect(() => decodeFrame(new Uint8Array(30), { cluster: 1, keyring: { current: new Uint8Array(4) } })).toThrow(/keyring.current: expected a key of 16\.\.64 bytes, got 4/);
    expect(() => decodeFrame(new Uint8Array(30), { cluster: -1, keyring: { current: KEY_A } })).toThrow(/cluster/);
  });
  it('entry indexes are reconstructed from prevIndex', () => {
    const m: Message = {
      type: MsgType.Append, from: 1, to: 2, term: 4, prevIndex: 41, prevTerm: 3, commit: 40,
      entries: [
        { term: 3, index: 42, type: EntryType.Normal, data: new Uint8Array([1]) },
        { term: 4, index: 43, type: EntryType.Noop, data: new Uint8Array() },
      ],
    };
    const r = decodeFrame(encodeFrame(m, { cluster: 7, bootId: 0, seq: 0 }, KEY_A), opts(7));
    expect(r.ok && r.msg).toEqual(m);
  });
});

describe('the encoder reuses one writer', () => {
  it('a frame after a large frame and after a refused message is the same bytes as before', () => {
    const env = { cluster: 1, bootId: 2, seq: 3 };
    const small = hb({ commit: 7 });
    const first = encodeFrame(small, env, KEY_A);
    const firstBody = encodeMessage(small, env);
    expect(Array.from(first.subarray(0, firstBody.length))).toEqual(Array.from(firstBody));
    // A large frame (grows the writer past its kept size), then one refused by checkMessage, then the small one again.
    const big: Message = { type: MsgType.Append, from: 1, to: 2, term: 5, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ term: 5, index: 1, type: EntryType.Normal, data: new Uint8Array(100_000).fill(9) }] } as Message;
    const bigFrame = encodeFrame(big, env, KEY_A);
    expect(bigFrame.length).toBeGreaterThan(100_000);
    const r = decodeFrame(bigFrame, { ...opts(1), maxFrame: 1 << 20 });
    if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
    expect(r.msg).toEqual(big);
    expect(() => encodeFrame(hb({ from: 0 }), env, KEY_A)).toThrow(WireEncodeError);
    const again = encodeFrame(small, env, KEY_A);
    expect(Array.from(again)).toEqual(Array.from(first));
    expect(again).not.toBe(first);
    // The returned frames are independent: the next encode does not overwrite them.
    encodeFrame(hb({ commit: 999_999 }), env, KEY_A);
    expect(Array.from(again)).toEqual(Array.from(first));
    expect(Array.from(encodeMessage(small, env))).toEqual(Array.from(firstBody));
  });

  it('frames share slabs but never bytes: writing into one frame changes no other, across slab boundaries', () => {
    const env = { cluster: 1, bootId: 2, seq: 3 };
    const frames: Uint8Array[] = [];
    const copies: number[][] = [];
    for (let i = 0; i < 600; i++) {
      // Varying sizes, some above a quarter slab (own buffer), enough to fill several slabs.
      const size = i % 50 === 0 ? 5000 : (i * 37) % 300;
      const m = { type: MsgType.Append, from: 1, to: 2, term: 5, prevIndex: 0, prevTerm: 0, commit: 0, entries: [{ term: 5, index: 1, type: EntryType.Normal, data: new Uint8Array(size).fill(i & 0xff) }] } as Message;
      const f = encodeFrame(m, { ...env, seq: i }, KEY_A);
      frames.push(f);
      copies.push(Array.from(f));
    }
    // Before any scribbling every frame still holds its own bytes, then each receiver
    // scribbles its own mark over its frame: with any overlap a later mark would show.
    for (let i = 0; i < frames.length; i++) expect(Array.from(frames[i]!)).toEqual(copies[i]);
    frames.forEach((f, i) => f.fill(i % 251));
    for (let i = 0; i < frames.length; i++) {
      expect(frames[i]!.length).toBe(copies[i]!.length);
      expect(frames[i]!.every((b) => b === i % 251)).toBe(true);
    }
    // And nothing the encoder hands out later overlaps a frame still held.
    const held = encodeFrame(hb(), env, KEY_A);
    const heldCopy = Array.from(held);
    for (let i = 0; i < 400; i++) encodeFrame(hb({ commit: i }), { ...env, seq: i }, KEY_A);
    expect(Array.from(held)).toEqual(heldCopy);
    const r = decodeFrame(held, opts(1));
    expect(r.ok).toBe(true);
  });
});
