/**
 * Frame authentication state: keys (re-exported from tag.ts), the sender's stamp
 * allocator, the receiver's replay guard, and the sealer/opener pair that the node
 * runtime puts between an engine and a Link.
 *
 * Threat model (docs/wire.md "Authentication"): anyone on the broker or the wire can
 * record, drop, reorder, duplicate and inject frames, but does not hold the cluster
 * key. A frame is acted on only if its tag verifies under the current or previous
 * key and its (from, bootId, seq) was not seen before by this receiver.
 */
import {
  decodeFrameChecked,
  checkDecodeOptions,
  DEFAULT_MAX_FRAME,
  encodeFrame,
  MAX_BOOT_ID,
  MAX_SEQ,
  newDropCounters,
  WireEncodeError,
  type DecodeOptions,
  type DecodeResult,
  type DropCounters,
  type DropReason,
  type Envelope,
} from './codec.ts';
import type { Message } from './messages.ts';
import { checkKeyring, type Keyring } from './tag.ts';
import { MAX_NODE_ID, type NodeId } from '../types.ts';

export { checkKeyring, computeTag, verifyTag, TAG_BYTES, type Keyring } from './tag.ts';

/** Width of the anti-replay window (RFC 4303 §3.4.3 uses 32 minimum, 64 recommended). */
export const REPLAY_WINDOW = 64;

/**
 * bootId order is RFC 1982 serial-number arithmetic on 16 bits: b is newer than a
 * iff (b - a) mod 2^16 is in 1..32767. This lets bootId wrap after 65535 boot
 * epochs. It is unambiguous as long as no frame from 32768 or more epochs ago can
 * still be verified — the cluster key must rotate at least that often (at one epoch
 * per 65536 frames to one peer, 10 frames/s, an epoch lasts ~1.8 h: 6.7 years).
 */
export function bootIdNewer(b: number, a: number): boolean {
  const d = (b - a) & 0xffff;
  return d >= 1 && d < 0x8000;
}

interface PeerWindow {
  bootId: number;
  /** Highest seq accepted in this bootId. */
  top: number;
  /**
   * Bit i set = seq (top - i) accepted: bits 0..31 in `lo`, 32..63 in `hi` (two int32
   * halves rather than a BigInt: BigInt shifts allocate, and this runs per frame).
   */
  lo: number;
  hi: number;
}

/**
 * Per-receiver anti-replay state, one slot per sender id (1..254: memory is fixed).
 * Sliding window as in IPsec ESP (RFC 4303 §3.4.3): frames up to 63 behind the
 * highest seq are accepted once each (reordering), duplicates and older frames are
 * `replay`; an older bootId is `stale-boot`; a newer bootId restarts the window.
 *
 * Not persisted: after the receiver restarts, the first frame from each sender sets
 * its window (a replayed frame from an earlier epoch could be accepted once, then the
 * sender's next real frame with a newer bootId resets the window). Raft itself
 * tolerates duplicated and stale messages (terms, log matching), so this gap costs at
 * most one stale message per sender per receiver restart.
 */
export class ReplayGuard {
  private readonly peers: (PeerWindow | undefined)[] = new Array<PeerWindow | undefined>(MAX_NODE_ID + 1);

  /** What accept() would answer, without changing state. */
  check(from: NodeId, bootId: number, seq: number): DropReason | null {
    if (!Number.isInteger(from) || from < 1 || from > MAX_NODE_ID) return 'bad-field';
    if (!Number.isInteger(bootId) || bootId < 0 || bootId > MAX_BOOT_ID) return 'bad-field';
    if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) return 'bad-field';
    const p = this.peers[from];
    if (!p || bootIdNewer(bootId, p.bootId)) return null;
    if (bootId !== p.bootId) return 'stale-boot';
    if (seq > p.top) return null;
    const behind = p.top - seq;
    if (behind >= REPLAY_WINDOW) return 'replay';
    const bit = behind < 32 ? (p.lo >>> behind) & 1 : (p.hi >>> (behind - 32)) & 1;
    return bit ? 'replay' : null;
  }

  /**
   * Checks and, if acceptable, records (from, bootId, seq). Call only after the
   * frame's tag verified: a forged frame must not move the window.
   */
  accept(from: NodeId, bootId: number, seq: number): DropReason | null {
    const verdict = this.check(from, bootId, seq);
    if (verdict) return verdict;
    const p = this.peers[from];
    if (!p || bootId !== p.bootId) {
      this.peers[from] = { bootId, top: seq, lo: 1, hi: 0 };
    } else if (seq > p.top) {
      // Shift the 64-bit window left by `shift` (bits beyond 63 fall off), then mark the new top.
      const shift = seq - p.top;
      if (shift >= REPLAY_WINDOW) {
        p.hi = 0;
        p.lo = 1;
      } else if (shift >= 32) {
        p.hi = p.lo << (shift - 32);
        p.lo = 1;
      } else {
        p.hi = (p.hi << shift) | (p.lo >>> (32 - shift));
        p.lo = (p.lo << shift) | 1;
      }
      p.top = seq;
    } else {
      const behind = p.top - seq;
      if (behind < 32) p.lo |= 1 << behind;
      else p.hi |= 1 << (behind - 32);
    }
    return null;
  }

  /** The newest (bootId, seq) accepted from a sender, for status pages and tests. */
  newest(from: NodeId): { bootId: number; seq: number } | undefined {
    const p = this.peers[from];
    return p && { bootId: p.bootId, seq: p.top };
  }

  /** Forgets a sender (e.g. removed from the cluster). */
  forget(from: NodeId): void {
    if (Number.isInteger(from) && from >= 1 && from <= MAX_NODE_ID) this.peers[from] = undefined;
  }
}

export interface Stamp {
  bootId: number;
  seq: number;
  /**
   * True when this stamp starts a new bootId (seq wrapped). The runtime must make
   * the new bootId durable before it sends the frame: after a crash it boots with
   * stored bootId + 1, and that must be newer than anything already sent.
   */
  persistBootId: boolean;
}

/**
 * Allocates (bootId, seq) stamps. seq counts per destination (the replay guard is per
 * receiver, and `to` is authenticated, so a frame cannot be replayed to another
 * node) from 0 to 65535; when a destination's seq would pass 65535, bootId moves to
 * bootId+1 (mod 2^16, see bootIdNewer) and every destination restarts at 0.
 *
 * The runtime at boot reads the stored bootId b, persists b+1 and constructs
 * `new Sender(b + 1)` (mod 65536) before sending anything.
 */
export class Sender {
  private boot: number;
  private readonly seqs = new Uint32Array(MAX_NODE_ID + 1);

  constructor(bootId: number) {
    if (!Number.isInteger(bootId) || bootId < 0 || bootId > MAX_BOOT_ID) {
      throw new RangeError(`Sender: bootId must be an integer 0..${MAX_BOOT_ID}, got ${String(bootId)}`);
    }
    this.boot = bootId;
  }

  get bootId(): number {
    return this.boot;
  }

  /** The next stamp for a frame to `to` (1..254). */
  next(to: NodeId): Stamp {
    const s = this.peek(to);
    this.consume(to);
    return s;
  }

  /** The stamp next(to) would return, without consuming it (the sealer checks the frame first). */
  peek(to: NodeId): Stamp {
    const seq = this.peekSeq(to);
    if (seq < 0) return { bootId: (this.boot + 1) & MAX_BOOT_ID, seq: 0, persistBootId: true };
    return { bootId: this.boot, seq, persistBootId: false };
  }

  /**
   * @internal The seq next(to) would use, or -1 when next(to) starts a new bootId (seq 0,
   * bootId + 1): peek() without the object (FrameSealer.seal, per frame).
   */
  peekSeq(to: NodeId): number {
    if (!Number.isInteger(to) || to < 1 || to > MAX_NODE_ID) {
      throw new RangeError(`Sender.next: destination must be a node id 1..${MAX_NODE_ID}, got ${String(to)}`);
    }
    const seq = this.seqs[to]!;
    return seq > MAX_SEQ ? -1 : seq;
  }

  /** @internal Consumes the stamp peek(to) describes (next() without the object). */
  consume(to: NodeId): void {
    const seq = this.peekSeq(to);
    if (seq < 0) {
      this.boot = (this.boot + 1) & MAX_BOOT_ID;
      this.seqs.fill(0);
      this.seqs[to] = 1;
    } else {
      this.seqs[to] = seq + 1;
    }
  }
}

/** CBOR bytes of an unsigned integer 0..0xffff (RFC 8949 preferred serialization). */
const uintBytes = (v: number): number => (v < 24 ? 1 : v < 256 ? 2 : 3);

export interface SealerOptions {
  cluster: number;
  keyring: Keyring;
  sender: Sender;
  /** Largest frame the link carries (Link.maxFrame); larger messages are refused at the sender. */
  maxFrame?: number;
}

/** Encode + stamp + tag, with the current key. */
export class FrameSealer {
  private keyring: Keyring;
  private readonly maxFrame: number;

  constructor(private readonly opts: SealerOptions) {
    checkKeyring(opts.keyring, 'FrameSealer keyring');
    if (!Number.isInteger(opts.cluster) || opts.cluster < 0 || opts.cluster > 0xffff) {
      throw new RangeError(`FrameSealer: cluster must be an integer 0..65535, got ${String(opts.cluster)}`);
    }
    this.keyring = opts.keyring;
    this.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
  }

  setKeyring(k: Keyring): void {
    checkKeyring(k, 'FrameSealer keyring');
    this.keyring = k;
  }

  /**
   * The frame for `msg`. `persistBootId` as in Stamp. Throws WireEncodeError if the
   * message is invalid or the frame exceeds maxFrame (the engine must split entries
   * or snapshot chunks to fit the link); no stamp is consumed in that case.
   */
  seal(msg: Message): { frame: Uint8Array; env: Envelope; persistBootId: boolean } {
    // Encoded once, with the stamp the sender would hand out next; the stamp is
    // consumed only once the frame is known valid and within maxFrame. (Until
    // 2026-11 this encoded twice — once with the largest stamp as a size probe — which
    // cost ~8 % of the simulator's time; the size check is now on the real frame.)
    if (msg === null || typeof msg !== 'object') throw new WireEncodeError(`cannot seal: expected a Message object, got ${String(msg)}`);
    // The stamp as numbers (Sender.peekSeq/consume): no Stamp objects per frame.
    const sender = this.opts.sender;
    const next = sender.peekSeq(msg.to);
    const persistBootId = next < 0;
    const env = { cluster: this.opts.cluster, bootId: persistBootId ? (sender.bootId + 1) & MAX_BOOT_ID : sender.bootId, seq: persistBootId ? 0 : next };
    const frame = encodeFrame(msg, env, this.keyring.current);
    // As before, the limit applies to the largest stamp (bootId and seq 0xffff take 3
    // CBOR bytes each), so whether a message fits never depends on its seq.
    const worst = frame.length + (3 - uintBytes(env.bootId)) + (3 - uintBytes(env.seq));
    if (worst > this.maxFrame) {
      throw new WireEncodeError(`frame for message type ${msg.type} to ${msg.to} is up to ${worst} bytes, above maxFrame ${this.maxFrame}`);
    }
    sender.consume(msg.to);
    return { frame, env, persistBootId };
  }
}

export interface OpenerOptions {
  cluster: number;
  keyring: Keyring;
  /** This node's id: frames to others are `not-for-me` (and never touch replay state). */
  self: NodeId;
  /** Largest accepted frame; default 64 KiB, SERIAL_MAX_FRAME (1 KiB) on serial. */
  maxFrame?: number;
  /** Per-sender frame keys (DecodeOptions.senderKeyring; engine pbft). */
  senderKeyring?: (from: number) => Keyring | undefined;
}

/**
 * The receive path: size → decode → cluster → tag (current, then previous key) →
 * fields → destination → replay. Every drop increments `drops[reason]`.
 */
export class FrameOpener {
  readonly drops: DropCounters = newDropCounters();
  /** Frames accepted, and how many of them verified under the previous key (rotation progress). */
  accepted = 0;
  acceptedPreviousKey = 0;
  readonly replay = new ReplayGuard();
  /** Decoder options, checked once here and on setKeyring (not per frame). */
  private decodeOpts: DecodeOptions;

  constructor(private readonly opts: OpenerOptions) {
    this.decodeOpts = { cluster: opts.cluster, keyring: opts.keyring, self: opts.self, maxFrame: opts.maxFrame, ...(opts.senderKeyring ? { senderKeyring: opts.senderKeyring } : {}) };
    checkDecodeOptions(this.decodeOpts);
  }

  setKeyring(k: Keyring): void {
    checkKeyring(k, 'FrameOpener keyring');
    this.decodeOpts = { ...this.decodeOpts, keyring: k };
  }

  open(frame: Uint8Array): DecodeResult {
    const r = decodeFrameChecked(frame, this.decodeOpts);
    if (!r.ok) {
      this.drops[r.reason]++;
      return r;
    }
    const verdict = this.replay.accept(r.msg.from, r.env.bootId, r.env.seq);
    if (verdict) {
      this.drops[verdict]++;
      const newest = this.replay.newest(r.msg.from);
      return {
        ok: false,
        reason: verdict,
        // Authenticated: a copy that came on another link tells that link carries the sender.
        from: r.msg.from,
        detail: `(from ${r.msg.from}, bootId ${r.env.bootId}, seq ${r.env.seq}): ${verdict}; newest accepted is ${
          newest ? `(bootId ${newest.bootId}, seq ${newest.seq})` : 'none'
        }`,
      };
    }
    this.accepted++;
    if (r.keyUsed === 'previous') this.acceptedPreviousKey++;
    return r;
  }
}
