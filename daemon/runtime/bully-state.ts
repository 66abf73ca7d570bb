/**
 * The bully state file `bully.state` (27 bytes, replaced atomically: write
 * `bully.state.tmp`, fsync, rename, fsync the directory):
 *   'Q' 'B' · version 1 · epoch (u64 BE) · held (u64 BE) · boot counter (u32 BE) · CRC-32 (u32 BE) of the bytes before it
 * Where the bully runtime kept its hard state {epoch, held} and the wire boot counter
 * before bully moved onto the engine runtime (engine-node.ts), which keeps them in the
 * durable log like every engine (HardState {term: epoch, vote: held}, the boot counter
 * in the metadata). A board upgraded in place still has this file: the engine runtime
 * reads it once at boot (`bullyStateOf`) and never starts below it, so an epoch that
 * was announced before the upgrade is never reused. A file that fails its CRC is real
 * corruption (a rename is atomic): the node refuses to start rather than reuse an epoch.
 */
import { crc32 } from 'node:zlib';
import type { Term } from '../../src/types.ts';
import type { Storage } from '../../hal/interfaces.ts';

export const BULLY_STATE_FILE = 'bully.state';
const STATE_BYTES = 27;

/** The persisted state file is unreadable: the node refuses to start (see the file comment). */
export class BullyStateCorruptError extends Error {
  override readonly name = 'BullyStateCorruptError';
}

export interface BullyPersisted {
  epoch: Term;
  held: Term;
  /** Wire boot counter (its low 16 bits are the bootId on the wire). */
  boot: number;
}

export function encodeBullyState(s: BullyPersisted): Uint8Array {
  const b = new Uint8Array(STATE_BYTES);
  const v = new DataView(b.buffer);
  b[0] = 0x51; // 'Q'
  b[1] = 0x42; // 'B'
  b[2] = 1;
  v.setBigUint64(3, BigInt(s.epoch));
  v.setBigUint64(11, BigInt(s.held));
  v.setUint32(19, s.boot >>> 0);
  v.setUint32(23, crc32(b.subarray(0, 23)) >>> 0);
  return b;
}

/** Decodes the state file; throws BullyStateCorruptError naming what is wrong. */
export function decodeBullyState(b: Uint8Array): BullyPersisted {
  const what = `${BULLY_STATE_FILE}: expected ${STATE_BYTES} bytes 'QB' v1 {epoch, held, boot, crc32}`;
  if (b.length !== STATE_BYTES) throw new BullyStateCorruptError(`${what}, got ${b.length} bytes; the node refuses to start rather than reuse an epoch (restore the file or wipe the data directory on purpose)`);
  if (b[0] !== 0x51 || b[1] !== 0x42 || b[2] !== 1) throw new BullyStateCorruptError(`${what}, got header ${[...b.subarray(0, 3)].join(',')}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const crc = v.getUint32(23);
  if ((crc32(b.subarray(0, 23)) >>> 0) !== crc) throw new BullyStateCorruptError(`${what}: CRC mismatch; the node refuses to start rather than reuse an epoch`);
  const epoch = Number(v.getBigUint64(3));
  const held = Number(v.getBigUint64(11));
  if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(held) || held > epoch) throw new BullyStateCorruptError(`${what}: epoch ${epoch} / held ${held} out of range`);
  return { epoch, held, boot: v.getUint32(19) };
}

/** The state file in `storage`, decoded; undefined when there is none. Throws BullyStateCorruptError. */
export function bullyStateOf(storage: Storage): BullyPersisted | undefined {
  const raw = storage.read(BULLY_STATE_FILE);
  return raw === undefined ? undefined : decodeBullyState(raw);
}
