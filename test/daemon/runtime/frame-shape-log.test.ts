/**
 * A frame of a shape this build does not read — a wire version or a message type it does
 * not know, what a member of another quorumd version would send during a rolling upgrade
 * — is a warning in the node's log, at most one per reason a minute with the number left
 * out; it used to be a debug line only, so a node that could not understand a peer showed
 * it in `quorumd_dropped_frames_total` and nowhere else.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WireEndpoint } from '../../../daemon/runtime/wire-endpoint.ts';
import type { Link } from '../../../hal/interfaces.ts';
import { FrameSealer, Sender } from '../../../src/wire/auth.ts';
import { MsgType } from '../../../src/wire/messages.ts';

const KEY = { current: new Uint8Array(createHash('sha256').update('frame-shape').digest()) };

/** A WireEndpoint of node 1 in cluster 7 on one link: frames handed to `deliver`, log lines and messages taken kept, its clock `clock.now`. */
function endpoint() {
  let deliverTo: (f: Uint8Array) => void = () => {};
  const link: Link = { name: 'mqtt', maxFrame: 65536, send: () => {}, onFrame: (h) => void (deliverTo = h), onEvent: () => {}, close: () => {} };
  const lines: Array<{ level: string; msg: string; f: Record<string, unknown> }> = [];
  const clock = { now: 1000 };
  const ep = new WireEndpoint({
    id: 1,
    now: () => clock.now,
    cluster: 7,
    keyring: KEY,
    maxFrame: 65536,
    links: [link],
    bootId: 1,
    log: (level, msg, f) => void lines.push({ level, msg, f: f ?? {} }),
    running: () => true,
    fatal: (e) => {
      throw e;
    },
    persistNextBoot: (_b, done) => done(null),
  });
  const got: number[] = [];
  ep.listen((m) => void got.push(m.type), () => {});
  return { ep, lines, got, clock, deliver: (f: Uint8Array) => deliverTo(f) };
}

describe('frames of a shape this build does not read', () => {
  it('are logged as a warning naming the reason, once a minute per reason, with the count dropped meanwhile', () => {
    const { ep, lines, got, clock, deliver } = endpoint();
    const sealer = new FrameSealer({ cluster: 7, keyring: KEY, sender: new Sender(1) });
    const frame = () => sealer.seal({ type: MsgType.Heartbeat, from: 2, to: 1, term: 3, ctx: 0, commit: undefined }).frame;
    deliver(frame());
    expect(got).toEqual([MsgType.Heartbeat]); // the sound frame is taken
    // Byte 0 is the array's head, byte 1 the wire version, byte 2 the type (one-byte CBOR integers here).
    const newerVersion = () => {
      const f = frame();
      f[1] = 2;
      return f;
    };
    const unknownType = () => {
      const f = frame();
      f[2] = 23; // no message type has number 23
      return f;
    };
    const warnings = () => lines.filter((l) => l.level === 'warn');
    deliver(newerVersion());
    deliver(unknownType());
    expect(warnings().map((l) => [l.msg, l.f.reason])).toEqual([
      ['frame dropped: a shape this build does not read', 'bad-version'],
      ['frame dropped: a shape this build does not read', 'unknown-type'],
    ]);
    expect(warnings()[0]!.f.detail).toBe('version: expected 1, got 2');
    expect(String(warnings()[0]!.f.hint)).toContain('another quorumd version');
    // More of the same within the minute: counted, not logged.
    for (let i = 0; i < 5; i++) deliver(newerVersion());
    clock.now += 59_000;
    deliver(newerVersion());
    expect(warnings().length).toBe(2);
    clock.now += 2_000;
    deliver(newerVersion());
    expect(warnings().length).toBe(3);
    expect(warnings()[2]!.f).toMatchObject({ reason: 'bad-version', alsoDropped: 6 });
    expect(got).toEqual([MsgType.Heartbeat]);
    expect(ep.drops()['bad-version']).toBe(8);
    expect(ep.drops()['unknown-type']).toBe(1);
  });

  it('frames under another cluster key or id are a warning too, naming the claimed sender and what to compare', () => {
    // A member whose key file holds another key never joined, and said nothing above debug.
    const { ep, lines, got, clock, deliver } = endpoint();
    const otherKey = { current: new Uint8Array(createHash('sha256').update('another key').digest()) };
    const wrongKey = new FrameSealer({ cluster: 7, keyring: otherKey, sender: new Sender(1) });
    const wrongCluster = new FrameSealer({ cluster: 8, keyring: KEY, sender: new Sender(1) });
    const hb = { type: MsgType.Heartbeat, from: 3, to: 1, term: 3, ctx: 0, commit: undefined } as const;
    for (let i = 0; i < 4; i++) deliver(wrongKey.seal(hb).frame);
    deliver(wrongCluster.seal(hb).frame);
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings.map((l) => [l.msg, l.f.reason])).toEqual([
      ['frame dropped: not authenticated under this cluster key', 'bad-tag'],
      ['frame dropped: for another cluster id', 'unknown-cluster'],
    ]);
    expect(warnings[0]!.f.detail).toBe('tag: does not match the current or previous cluster key (the frame claims sender 3)');
    expect(String(warnings[0]!.f.hint)).toMatch(/keyFile holds another key.*sha256sum/);
    expect(String(warnings[1]!.f.hint)).toContain('cluster.id differs');
    expect(got).toEqual([]);
    expect(ep.drops()['bad-tag']).toBe(4);
    clock.now += 61_000;
    deliver(wrongKey.seal(hb).frame);
    expect(lines.filter((l) => l.level === 'warn').at(-1)!.f).toMatchObject({ reason: 'bad-tag', alsoDropped: 3 });
  });
});
