import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bootIdNewer, FrameOpener, FrameSealer, REPLAY_WINDOW, ReplayGuard, Sender } from '../../../src/wire/auth.ts';
import { encodeFrame, WireEncodeError, type DropReason, type Envelope } from '../../../src/wire/codec.ts';
import { MsgType, type Message } from '../../../src/wire/messages.ts';
import { KEY_A, KEY_B, KEY_C } from './arbitraries.ts';

const CLUSTER = 9;
const hb = (from = 1, to = 2, ctx = 0): Message => ({ type: MsgType.Heartbeat, from, to, term: 3, commit: undefined, ctx });
const frame = (env: Partial<Envelope>, key = KEY_A, msg = hb()) => encodeFrame(msg, { cluster: CLUSTER, bootId: 1, seq: 0, ...env }, key);
const opener = (keyring = { current: KEY_A } as { current: Uint8Array; previous?: Uint8Array }) =>
  new FrameOpener({ cluster: CLUSTER, keyring, self: 2 });

function expectDrop(o: FrameOpener, f: Uint8Array, reason: DropReason) {
  const before = o.drops[reason];
  const r = o.open(f);
  expect(r.ok ? 'accepted' : r.reason).toBe(reason);
  expect(o.drops[reason]).toBe(before + 1);
}

describe('FrameOpener: rejected and counted', () => {
  it('wrong tag', () => {
    const o = opener();
    const f = frame({});
    f[f.length - 1]! ^= 1;
    expectDrop(o, f, 'bad-tag');
    expectDrop(o, frame({}, KEY_B), 'bad-tag');
  });
  it('wrong cluster', () => {
    const o = opener();
    expectDrop(o, encodeFrame(hb(), { cluster: CLUSTER + 1, bootId: 1, seq: 0 }, KEY_A), 'unknown-cluster');
  });
  it('replayed seq', () => {
    const o = opener();
    expect(o.open(frame({ seq: 5 })).ok).toBe(true);
    expectDrop(o, frame({ seq: 5 }), 'replay');
    expect(o.accepted).toBe(1);
  });
  it('seq older than the window, while reordering inside it is accepted once', () => {
    const o = opener();
    expect(o.open(frame({ seq: 100 })).ok).toBe(true);
    expectDrop(o, frame({ seq: 100 - REPLAY_WINDOW }), 'replay'); // just outside
    expect(o.open(frame({ seq: 100 - REPLAY_WINDOW + 1 })).ok).toBe(true); // oldest inside
    expect(o.open(frame({ seq: 60 })).ok).toBe(true);
    expectDrop(o, frame({ seq: 60 }), 'replay');
  });
  it('older bootId is stale-boot; newer bootId resets the window', () => {
    const o = opener();
    expect(o.open(frame({ bootId: 5, seq: 900 })).ok).toBe(true);
    expectDrop(o, frame({ bootId: 4, seq: 1000 }), 'stale-boot');
    expect(o.open(frame({ bootId: 6, seq: 0 })).ok).toBe(true);
    expectDrop(o, frame({ bootId: 5, seq: 901 }), 'stale-boot');
    expectDrop(o, frame({ bootId: 6, seq: 0 }), 'replay');
  });
  it('a key older than the previous one is bad-tag; the previous key is accepted', () => {
    const o = opener({ current: KEY_C, previous: KEY_B });
    expectDrop(o, frame({ seq: 1 }, KEY_A), 'bad-tag');
    const r = o.open(frame({ seq: 2 }, KEY_B));
    expect(r.ok && r.keyUsed).toBe('previous');
    const s = o.open(frame({ seq: 3 }, KEY_C));
    expect(s.ok && s.keyUsed).toBe('current');
    expect(o.acceptedPreviousKey).toBe(1);
  });
  it('a frame for another node is not-for-me and does not touch replay state', () => {
    const o = opener();
    expectDrop(o, frame({ seq: 7 }, KEY_A, hb(1, 3)), 'not-for-me');
    expect(o.replay.newest(1)).toBeUndefined();
  });
  it('a forged frame does not advance the window', () => {
    const o = opener();
    expect(o.open(frame({ seq: 1 })).ok).toBe(true);
    expectDrop(o, frame({ bootId: 40000 - 1, seq: 65535 }, KEY_B), 'bad-tag');
    expectDrop(o, frame({ seq: 1000 }, KEY_B), 'bad-tag');
    expect(o.open(frame({ seq: 2 })).ok).toBe(true);
  });
  it('too-large before parsing, using the configured maxFrame', () => {
    const o = new FrameOpener({ cluster: CLUSTER, keyring: { current: KEY_A }, self: 2, maxFrame: 40 });
    const big: Message = { type: MsgType.ClientRequest, from: 1, to: 2, term: 1, reqId: 1, body: new Uint8Array(30) };
    expectDrop(o, encodeFrame(big, { cluster: CLUSTER, bootId: 0, seq: 0 }, KEY_A), 'too-large');
  });
  it('rotation via setKeyring: the old key keeps working only as previous', () => {
    const o = opener({ current: KEY_A });
    o.setKeyring({ current: KEY_B, previous: KEY_A });
    expect(o.open(frame({ seq: 1 }, KEY_A)).ok).toBe(true);
    o.setKeyring({ current: KEY_B });
    expectDrop(o, frame({ seq: 2 }, KEY_A), 'bad-tag');
  });
  it('bad configuration is a clear exception', () => {
    expect(() => new FrameOpener({ cluster: 1, keyring: { current: new Uint8Array(8) }, self: 1 })).toThrow(/16\.\.64 bytes/);
    expect(() => new FrameOpener({ cluster: 1, keyring: { current: KEY_A }, self: 0 })).toThrow(/self/);
  });
});

describe('ReplayGuard against a reference model', () => {
  it('agrees with a set-based model on random (bootId, seq) streams', () => {
    const step = fc.record({ from: fc.integer({ min: 1, max: 3 }), dBoot: fc.constantFrom(0, 0, 0, 0, 1, -1), seq: fc.nat(300) });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
        const g = new ReplayGuard();
        const model = new Map<number, { boot: number; top: number; seen: Set<number> }>();
        const boots = new Map<number, number>();
        for (const s of steps) {
          const boot = ((boots.get(s.from) ?? 100) + s.dBoot) & 0xffff;
          boots.set(s.from, boot);
          const st = model.get(s.from);
          let want: DropReason | null;
          if (!st || bootIdNewer(boot, st.boot)) want = null;
          else if (boot !== st.boot) want = 'stale-boot';
          else if (s.seq > st.top) want = null;
          else if (st.top - s.seq >= REPLAY_WINDOW || st.seen.has(s.seq)) want = 'replay';
          else want = null;
          expect(g.accept(s.from, boot, s.seq)).toBe(want);
          if (want === null) {
            if (!st || boot !== st.boot) model.set(s.from, { boot, top: s.seq, seen: new Set([s.seq]) });
            else {
              st.seen.add(s.seq);
              st.top = Math.max(st.top, s.seq);
            }
          }
        }
      }),
      { numRuns: 300, seed: 11 },
    );
  });
  it('bootId wraps with serial-number order (RFC 1982)', () => {
    expect(bootIdNewer(0, 65535)).toBe(true);
    expect(bootIdNewer(65535, 0)).toBe(false);
    expect(bootIdNewer(5, 5)).toBe(false);
    expect(bootIdNewer(32767, 0)).toBe(true);
    expect(bootIdNewer(32768, 0)).toBe(false);
    const g = new ReplayGuard();
    expect(g.accept(4, 65535, 10)).toBeNull();
    expect(g.accept(4, 0, 0)).toBeNull();
    expect(g.accept(4, 65535, 11)).toBe('stale-boot');
  });
  it('out-of-range input is bad-field, not an exception', () => {
    const g = new ReplayGuard();
    expect(g.accept(0, 1, 1)).toBe('bad-field');
    expect(g.accept(255, 1, 1)).toBe('bad-field');
    expect(g.accept(1, 70000, 1)).toBe('bad-field');
    expect(g.accept(1, 1, -1)).toBe('bad-field');
  });
});

describe('Sender and FrameSealer', () => {
  it('seq counts per destination; wrapping moves to bootId+1 and asks to persist it once', () => {
    const s = new Sender(7);
    expect(s.next(2)).toEqual({ bootId: 7, seq: 0, persistBootId: false });
    expect(s.next(3)).toEqual({ bootId: 7, seq: 0, persistBootId: false });
    let last = s.next(2);
    for (let i = 0; i < 65534; i++) last = s.next(2);
    expect(last).toEqual({ bootId: 7, seq: 65535, persistBootId: false });
    expect(s.next(2)).toEqual({ bootId: 8, seq: 0, persistBootId: true });
    expect(s.next(3)).toEqual({ bootId: 8, seq: 0, persistBootId: false });
    expect(s.bootId).toBe(8);
  });
  it('bootId 65535 wraps to 0, which receivers take as newer', () => {
    const s = new Sender(65535);
    for (let i = 0; i <= 65535; i++) s.next(1);
    const st = s.next(1);
    expect(st).toEqual({ bootId: 0, seq: 0, persistBootId: true });
    expect(bootIdNewer(0, 65535)).toBe(true);
  });
  it('sealed frames open; the receiver sees increasing stamps', () => {
    const sealer = new FrameSealer({ cluster: CLUSTER, keyring: { current: KEY_A }, sender: new Sender(3) });
    const o = opener();
    for (let i = 0; i < 5; i++) {
      const { frame: f, env } = sealer.seal(hb(1, 2, i));
      expect(env).toEqual({ cluster: CLUSTER, bootId: 3, seq: i });
      const r = o.open(f);
      expect(r.ok && r.msg).toEqual(hb(1, 2, i));
    }
    expect(o.replay.newest(1)).toEqual({ bootId: 3, seq: 4 });
  });
  it('refuses a message above maxFrame without consuming a stamp', () => {
    const sender = new Sender(0);
    const sealer = new FrameSealer({ cluster: CLUSTER, keyring: { current: KEY_A }, sender, maxFrame: 64 });
    const big: Message = { type: MsgType.ClientRequest, from: 1, to: 2, term: 1, reqId: 1, body: new Uint8Array(100) };
    expect(() => sealer.seal(big)).toThrow(WireEncodeError);
    expect(() => sealer.seal(big)).toThrow(/above maxFrame 64/);
    expect(sealer.seal(hb()).env.seq).toBe(0);
  });
  it('invalid arguments are clear exceptions', () => {
    expect(() => new Sender(65536)).toThrow(/bootId must be an integer 0\.\.65535/);
    expect(() => new Sender(0).next(0)).toThrow(/destination must be a node id/);
  });
});
