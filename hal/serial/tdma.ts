/**
 * RS-485 multi-drop bus: framing and a TDMA slot scheduler that keeps two drops
 * from ever driving the bus at once.
 *
 * ## Bus frame
 * Inside the SLIP frame (src/wire/slip.ts, `payload ‖ CRC-32`), a bus frame starts
 * with a 3-byte link header, so that a drop can filter and keep time without
 * decoding CBOR:
 *
 *     [to, from, flags] ‖ payload
 *       to    1..254 = one node, 255 = everyone, 0 = nobody (a beacon: timing only)
 *       from  1..254 = the sender
 *       flags bit 0 = first frame of the sender's slot (it started at the slot start)
 *
 * ## Slots (the math)
 * With 8N1 a byte takes 10 bit times: `byteMs = 10 × 1000 / baud`. The longest frame
 * on the wire is a payload of `maxFrame` bytes, plus the 3-byte header and 4-byte CRC,
 * every byte SLIP-escaped (×2), plus the two END bytes:
 *
 *     maxWireBytes = 2 × (maxFrame + 3 + 4) + 2
 *     maxFrameMs   = maxWireBytes × 10 × 1000 / baud
 *     slotMs       = guardMs + maxFrameMs
 *     cycleMs      = slotMs × members.length
 *
 * e.g. maxFrame 1024 at 115200 baud: 2064 wire bytes → 179.2 ms; with a 10 ms guard a
 * slot is 189.2 ms and a 3-drop cycle 567.5 ms. With maxFrame 256: 55.8 ms slots (docs/serial.md has a table).
 * The slot of a node is its rank in the sorted member list (slot 0 = lowest id).
 *
 * A sender starts no later than `guardMs/2` after its slot start (a later timer skips
 * the slot) and sends frames back to back while the last byte leaves by
 * `slotEnd − guardMs/2`. Half a guard on each side absorbs: timer lateness, the
 * latency between write() and the first byte on the wire (USB adapters: 1–16 ms), the
 * RS-485 driver turn-around, and the clock drift between two resyncs (200 ppm over a
 * 1 s cycle = 0.2 ms).
 *
 * ## Keeping time (no shared clock on the boards)
 * Monotonic clocks of different boards have unrelated origins, so the schedule's
 * origin (`epochMs`, in local time) is taken from the bus:
 *   - a frame with the first-of-slot flag from node k ends at local `rxEnd`; its slot
 *     started at `rxEnd − wireMs(frame)` (less the unknown ≤ guard/2 send lateness);
 *   - a node follows the lowest-id sender it hears ("reference"); the lowest live
 *     node follows nobody and, when it has nothing to send, sends a beacon (a
 *     header-only frame, 9..16 wire bytes) at its slot start, so the others never
 *     lose time;
 *   - a node that starts listens for `listenCycles + rank` cycles before its first
 *     transmission, adopting the timing of any drop it hears; the higher the rank,
 *     the longer it listens, so that on a cold start of the whole bus the lowest id
 *     speaks first and the rest fall in line. A reference unheard for
 *     `staleCycles` cycles is given up, and the next lowest takes over.
 * Cold-start race: two drops whose listening ends within one frame time of each
 * other can both start their own schedule; the first frame either hears from the
 * other aligns it. This residual start-up window is the documented limit; once a
 * node has heard its reference, its slots cannot overlap another synchronized
 * node's (the virtual-time test asserts zero overlaps over thousands of frames).
 *
 * Token passing was the alternative; it needs a token-loss timeout, and the
 * recovery after a lost token is exactly where two drops talk at once. TDMA wastes
 * idle slots but has no recovery path that can collide.
 */
import type { Cancel, Clock } from '../interfaces.ts';
import { MAX_NODE_ID, NO_NODE, type NodeId } from '../../src/types.ts';
import { CRC_BYTES, slipEncode } from '../../src/wire/slip.ts';

export const BUS_HEADER_BYTES = 3;
export const BUS_BROADCAST = 255;
export const FLAG_FIRST_IN_SLOT = 1;

export interface BusOptions {
  /** Every drop on the bus (node ids 1..254, including this node). Required. */
  members: NodeId[];
  /**
   * Guard time per slot, ms. Default 10: covers a USB-serial adapter's latency
   * (up to ~8 ms with the usual 1–16 ms latency timer at its lowest setting) plus timer
   * jitter of a loaded Pi. Raise it on slow USB adapters.
   */
  guardMs?: number;
  /** Cycles a starting node listens before its first transmission (plus its rank). Default 2. */
  listenCycles?: number;
  /** Cycles without hearing the reference before it is given up. Default 4. */
  staleCycles?: number;
  /** Frames queued while waiting for the slot; more are dropped and counted. Default 64. */
  queueLimit?: number;
}

export interface TdmaTiming {
  byteMs: number;
  maxWireBytes: number;
  maxFrameMs: number;
  guardMs: number;
  slotMs: number;
  cycleMs: number;
}

/** The slot math above, for a bus of `members` at `baud` carrying frames ≤ `maxFrame`. */
export function tdmaTiming(baud: number, maxFrame: number, memberCount: number, guardMs = 10): TdmaTiming {
  if (!Number.isFinite(baud) || baud < 50) throw new RangeError(`bus baudRate: expected a number >= 50, got ${String(baud)}`);
  if (!Number.isInteger(maxFrame) || maxFrame < 1) throw new RangeError(`bus maxFrame: expected a positive integer, got ${String(maxFrame)}`);
  if (!Number.isInteger(memberCount) || memberCount < 2) throw new RangeError(`bus members: expected at least 2 drops, got ${String(memberCount)}`);
  if (!Number.isFinite(guardMs) || guardMs < 0) throw new RangeError(`bus guardMs: expected a number >= 0, got ${String(guardMs)}`);
  const byteMs = 10_000 / baud;
  const maxWireBytes = 2 * (maxFrame + BUS_HEADER_BYTES + CRC_BYTES) + 2;
  const maxFrameMs = maxWireBytes * byteMs;
  const slotMs = guardMs + maxFrameMs;
  return { byteMs, maxWireBytes, maxFrameMs, guardMs, slotMs, cycleMs: slotMs * memberCount };
}

/** Builds the SLIP bytes of one bus frame. */
export function encodeBusFrame(to: NodeId, from: NodeId, flags: number, payload: Uint8Array): Uint8Array {
  const raw = new Uint8Array(BUS_HEADER_BYTES + payload.length);
  raw[0] = to;
  raw[1] = from;
  raw[2] = flags;
  raw.set(payload, BUS_HEADER_BYTES);
  return slipEncode(raw);
}

export type BusHeader = { to: number; from: number; flags: number; payload: Uint8Array };

/** Splits a CRC-checked SLIP frame into the bus header and payload; null if it is too short or the ids are out of range. */
export function decodeBusFrame(frame: Uint8Array): BusHeader | null {
  if (frame.length < BUS_HEADER_BYTES) return null;
  const to = frame[0]!;
  const from = frame[1]!;
  if (from < 1 || from > MAX_NODE_ID) return null;
  return { to, from, flags: frame[2]!, payload: frame.subarray(BUS_HEADER_BYTES) };
}

export interface TdmaStats {
  framesSent: number;
  beaconsSent: number;
  /** Frames dropped because the queue was full. */
  queueDrops: number;
  /** Own slots skipped because the timer fired more than guard/2 late. */
  lateSlots: number;
  /** Times the schedule origin was moved to follow the reference. */
  resyncs: number;
}

interface Pending {
  to: NodeId;
  payload: Uint8Array;
}

/**
 * Decides when this drop may transmit. It owns bus framing: `send` queues a payload,
 * and `transmit(bytes)` is called with ready SLIP bytes inside this node's slot.
 * Feed every CRC-valid received frame to `heard` with its local arrival time.
 */
export class TdmaScheduler {
  readonly timing: TdmaTiming;
  readonly rank: number;
  readonly members: readonly NodeId[];
  readonly stats: TdmaStats = { framesSent: 0, beaconsSent: 0, queueDrops: 0, lateSlots: 0, resyncs: 0 };
  private readonly queue: Pending[] = [];
  private readonly queueLimit: number;
  private readonly listenCycles: number;
  private readonly staleCycles: number;
  /** Local monotonic ms at which slot 0 of some cycle started. */
  private epochMs: number;
  private listeningUntil: number;
  /** The node we take time from (NO_NODE = ourselves), and when we last heard it. */
  private reference: NodeId = NO_NODE;
  private referenceHeardMs = -Infinity;
  private timer: Cancel | null = null;
  private stopped = false;
  private lastSlot = -Infinity;
  private readonly maxFrame: number;

  constructor(
    private readonly clock: Clock,
    readonly self: NodeId,
    baud: number,
    maxFrame: number,
    opts: BusOptions,
    private readonly transmit: (bytes: Uint8Array) => void,
  ) {
    if (!opts || !Array.isArray(opts.members)) throw new RangeError('bus.members: expected an array of node ids');
    for (const m of opts.members) {
      if (!Number.isInteger(m) || m < 1 || m > MAX_NODE_ID) throw new RangeError(`bus.members: node ids must be integers 1..${MAX_NODE_ID}, got ${String(m)}`);
    }
    const members = [...new Set(opts.members)].sort((a, b) => a - b);
    if (members.length !== opts.members.length) throw new RangeError(`bus.members: duplicate node id in [${opts.members.join(', ')}]`);
    if (!members.includes(self)) throw new RangeError(`bus.members: this node (${self}) is not in [${members.join(', ')}]`);
    this.members = members;
    this.maxFrame = maxFrame;
    this.rank = members.indexOf(self);
    this.timing = tdmaTiming(baud, maxFrame, members.length, opts.guardMs ?? 10);
    this.queueLimit = opts.queueLimit ?? 64;
    this.listenCycles = opts.listenCycles ?? 2;
    this.staleCycles = opts.staleCycles ?? 4;
    for (const [k, v] of [['queueLimit', this.queueLimit], ['listenCycles', this.listenCycles], ['staleCycles', this.staleCycles]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`bus.${k}: expected a positive integer, got ${String(v)}`);
    }
    const now = clock.monotonicMs();
    this.epochMs = now;
    this.listeningUntil = now + (this.listenCycles + this.rank) * this.timing.cycleMs;
    this.arm();
  }

  /** Queues a payload for `to` (1..254, or 255 for all). Returns false (and counts) when the queue is full. */
  send(to: NodeId, payload: Uint8Array): boolean {
    if (!(payload instanceof Uint8Array)) throw new TypeError(`bus send: payload must be a Uint8Array, got ${typeof payload}`);
    if (payload.length > this.maxFrame) throw new RangeError(`bus send: payload of ${payload.length} bytes exceeds maxFrame ${this.maxFrame}`);
    if (!Number.isInteger(to) || to < 1 || to > BUS_BROADCAST) throw new RangeError(`bus send: 'to' must be 1..${MAX_NODE_ID} or ${BUS_BROADCAST} (all), got ${String(to)}`);
    if (this.stopped) return false;
    if (this.queue.length >= this.queueLimit) {
      this.stats.queueDrops++;
      return false;
    }
    this.queue.push({ to, payload });
    return true;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** The reference node currently followed (0 = none: this node keeps its own time). */
  get following(): NodeId {
    return this.reference;
  }

  /** Local start time of this node's next slot at or after `t`. */
  nextSlotStart(t: number): number {
    const { cycleMs, slotMs } = this.timing;
    const offset = this.epochMs + this.rank * slotMs;
    const n = Math.ceil((t - offset) / cycleMs);
    return offset + n * cycleMs;
  }

  /**
   * A valid bus frame from `from` finished arriving at local time `rxEndMs`;
   * `wireBytes` is its size on the wire (SLIP-escaped, with both ENDs).
   */
  heard(from: NodeId, flags: number, wireBytes: number, rxEndMs: number): void {
    if (this.stopped || from === this.self) return;
    const rank = this.members.indexOf(from);
    if (rank < 0) return;
    const now = rxEndMs;
    const listening = now < this.listeningUntil;
    const stale = now - this.referenceHeardMs > this.staleCycles * this.timing.cycleMs;
    const refValid = this.reference !== NO_NODE && !stale;
    // Follow: while listening, anyone; afterwards, the lowest id below ours.
    let follow = false;
    if (listening) follow = !refValid || from <= this.reference;
    else if (from < this.self) follow = !refValid || from <= this.reference;
    if (!follow) return;
    this.reference = from;
    this.referenceHeardMs = now;
    if ((flags & FLAG_FIRST_IN_SLOT) === 0) return;
    const slotStart = rxEndMs - wireBytes * this.timing.byteMs;
    const epoch = slotStart - rank * this.timing.slotMs;
    if (Math.abs(epoch - this.epochMs) > 1e-9) {
      this.epochMs = epoch;
      this.stats.resyncs++;
      this.arm();
    }
  }

  stop(): void {
    this.stopped = true;
    this.timer?.();
    this.timer = null;
    this.queue.length = 0;
  }

  private arm(): void {
    this.timer?.();
    this.timer = null;
    if (this.stopped) return;
    const now = this.clock.monotonicMs();
    const from = Math.max(now, this.listeningUntil);
    let start = this.nextSlotStart(from);
    // If we are already inside our slot (within guard/2 of its start), use it.
    const cur = start - this.timing.cycleMs;
    if (cur >= this.listeningUntil && now - cur <= this.timing.guardMs / 2 && cur > this.lastSlot + this.timing.cycleMs / 2) start = cur;
    if (start <= this.lastSlot + this.timing.cycleMs / 2) start += this.timing.cycleMs;
    this.timer = this.clock.setTimer(Math.max(0, start - now), () => this.slot(start));
  }

  private slot(start: number): void {
    this.timer = null;
    if (this.stopped) return;
    this.lastSlot = start;
    const { guardMs, slotMs, byteMs } = this.timing;
    const now = this.clock.monotonicMs();
    if (now - start > guardMs / 2) {
      this.stats.lateSlots++;
    } else {
      const deadline = start + slotMs - guardMs / 2;
      let t = now;
      let first = true;
      const refStale = now - this.referenceHeardMs > this.staleCycles * this.timing.cycleMs;
      if (this.reference !== NO_NODE && refStale) this.reference = NO_NODE;
      if (this.queue.length === 0 && this.reference === NO_NODE) {
        // We keep the bus time: a beacon lets the others stay aligned.
        const bytes = encodeBusFrame(NO_NODE, this.self, FLAG_FIRST_IN_SLOT, new Uint8Array(0));
        this.transmit(bytes);
        this.stats.beaconsSent++;
      }
      while (this.queue.length > 0) {
        const p = this.queue[0]!;
        const bytes = encodeBusFrame(p.to, this.self, first ? FLAG_FIRST_IN_SLOT : 0, p.payload);
        const end = t + bytes.length * byteMs;
        if (end > deadline + 1e-9) break;
        this.queue.shift();
        this.transmit(bytes);
        this.stats.framesSent++;
        t = end;
        first = false;
        if (this.stopped) return;
      }
    }
    this.arm();
  }
}
