/**
 * The Multi-Paxos slot log in memory, and how one slot is stored in the runtime's
 * durable log.
 *
 * ## In memory
 * Every slot after the last snapshot, contiguous (an acceptor takes a leader's slots
 * only in order, see multi.ts), each a PaxosSlot {index, ballot it was accepted at,
 * origin, type, data}. `snapIndex`/`snapOrigin` describe the last slot the snapshot
 * covers. Unlike a Raft log, a slot in the middle may change (a higher ballot's value
 * replaces an older vote), and the ballots along the log need not grow.
 *
 * ## On disk: one contract Entry per slot
 * The contract's durable log (src/engine/contract.ts) stores Entry {index, term, type,
 * data} with suffix-overwrite semantics. A Paxos slot needs two numbers besides its
 * value — the ballot that accepted it and its origin — and the ballots along the log
 * may go down, which a Raft-shaped store rightly rejects. So the durable Entry is:
 *
 *   index = the slot,
 *   term  = the acceptor's promise when the Entry was written (a "write stamp"). Every
 *           Ready rewrites the log from its first changed slot to the end with the
 *           current promise, and promises only grow, so stamps never decrease along
 *           the log and never exceed the hard state's term;
 *   type  = the slot's type,
 *   data  = HEADER ‖ varint(ballot) ‖ varint(origin) ‖ the command bytes.
 *
 * HEADER (0xA5, "Paxos slot, format 1") makes a log written by another engine fail
 * loudly at start instead of being misread. The runtime stores these entries and gives
 * them back at restart unchanged; it never applies them (it applies the Ready's
 * `committed`, which carry the plain command bytes).
 */
import type { Index, Term } from '../types.ts';
import { EntryType, type Entry, type PaxosSlot } from '../wire/messages.ts';

export const DURABLE_SLOT_HEADER = 0xa5;

/** Unsigned LEB128 of a safe integer (no 32-bit operators: ballots may exceed 2^32). */
function writeVarint(out: number[], v: number): void {
  let x = v;
  while (x >= 0x80) {
    out.push((x % 0x80) | 0x80);
    x = Math.floor(x / 0x80);
  }
  out.push(x);
}

function readVarint(b: Uint8Array, pos: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let p = pos; p < b.length && p < pos + 8; p++) {
    const byte = b[p]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return Number.isSafeInteger(value) ? { value, next: p + 1 } : undefined;
    scale *= 0x80;
  }
  return undefined;
}

/** The durable Entry of `s`, stamped with the writer's current promise. */
export function encodeDurableSlot(s: PaxosSlot, stamp: Term): Entry {
  const head: number[] = [DURABLE_SLOT_HEADER];
  writeVarint(head, s.ballot);
  writeVarint(head, s.origin);
  const data = new Uint8Array(head.length + s.data.length);
  data.set(head, 0);
  data.set(s.data, head.length);
  return { index: s.index, term: stamp, type: s.type, data };
}

/** The slot stored in a durable Entry, or a sentence saying why it is not one. */
export function decodeDurableSlot(e: Entry): PaxosSlot | string {
  if (!e || typeof e !== 'object') return 'expected an Entry object';
  if (!Number.isSafeInteger(e.index) || e.index < 1) return `index must be a slot ≥ 1, got ${String(e.index)}`;
  if (!Number.isSafeInteger(e.term) || e.term < 0) return `term (the write stamp) must be a non-negative integer, got ${String(e.term)}`;
  if (!(e.type in EntryType)) return `type must be an EntryType, got ${String(e.type)}`;
  if (!(e.data instanceof Uint8Array)) return 'data must be a Uint8Array';
  if (e.data[0] !== DURABLE_SLOT_HEADER) {
    return `data does not start with the Paxos slot header 0x${DURABLE_SLOT_HEADER.toString(16)} (got ${e.data.length === 0 ? 'no bytes' : `0x${e.data[0]!.toString(16)}`}): this log was not written by the Paxos engine`;
  }
  const b = readVarint(e.data, 1);
  const o = b && readVarint(e.data, b.next);
  if (!b || !o) return 'truncated or oversized ballot/origin header';
  if (o.value < 1 || o.value > b.value) return `origin ${o.value} must be 1..ballot (${b.value})`;
  if (b.value > e.term) return `ballot ${b.value} exceeds the write stamp ${e.term}`;
  return { index: e.index, ballot: b.value, origin: o.value, type: e.type, data: e.data.subarray(o.next) };
}

export class SlotLog {
  private ents: PaxosSlot[] = [];
  snapIndex: Index;
  /** Origin of the slot at snapIndex (the snapshot's `term`); 0 before any snapshot. */
  snapOrigin: Term;

  constructor(snapIndex: Index, snapOrigin: Term, slots: readonly PaxosSlot[]) {
    this.snapIndex = snapIndex;
    this.snapOrigin = snapOrigin;
    slots.forEach((s, k) => {
      const want = snapIndex + 1 + k;
      if (s.index !== want) throw new Error(`paxos log: slot ${k} has index ${s.index}, expected ${want} (slots must be contiguous after the snapshot at ${snapIndex})`);
    });
    this.ents = slots.slice();
  }

  get firstIndex(): Index {
    return this.snapIndex + 1;
  }

  get lastIndex(): Index {
    return this.snapIndex + this.ents.length;
  }

  get(i: Index): PaxosSlot | undefined {
    if (i <= this.snapIndex || i > this.lastIndex) return undefined;
    return this.ents[i - this.snapIndex - 1];
  }

  /** Origin of the slot at `i` (the snapshot's at its index); undefined if compacted or absent. */
  origin(i: Index): Term | undefined {
    if (i === this.snapIndex) return this.snapOrigin;
    return this.get(i)?.origin;
  }

  /** Slots lo..hi inclusive that are in memory. */
  slice(lo: Index, hi: Index): PaxosSlot[] {
    const a = Math.max(lo, this.firstIndex) - this.snapIndex - 1;
    const b = Math.min(hi, this.lastIndex) - this.snapIndex;
    return a < b ? this.ents.slice(a, b) : [];
  }

  /** Replaces slot s.index (in memory) or appends it right after the last. */
  set(s: PaxosSlot): void {
    if (s.index <= this.snapIndex || s.index > this.lastIndex + 1) {
      throw new Error(`paxos log: cannot set slot ${s.index}, the log holds ${this.firstIndex}..${this.lastIndex}`);
    }
    if (s.index === this.lastIndex + 1) this.ents.push(s);
    else this.ents[s.index - this.snapIndex - 1] = s;
  }

  /** Drops slots up to and including `i` (in the log), after a snapshot at i. */
  compactTo(i: Index): void {
    const o = this.origin(i);
    if (o === undefined) throw new Error(`paxos log: cannot compact to ${i}, not in the log [${this.snapIndex}, ${this.lastIndex}]`);
    this.ents = this.ents.slice(i - this.snapIndex);
    this.snapIndex = i;
    this.snapOrigin = o;
  }

  /** Installs a snapshot at `i`: slots up to i go, later slots stay (they are this acceptor's votes). */
  installSnapshot(i: Index, origin: Term): void {
    if (i <= this.snapIndex) throw new Error(`paxos log: snapshot ${i} is not after the current one ${this.snapIndex}`);
    this.ents = i < this.lastIndex ? this.ents.slice(i - this.snapIndex) : [];
    this.snapIndex = i;
    this.snapOrigin = origin;
  }
}
