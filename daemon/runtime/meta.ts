/**
 * Runtime metadata kept with the hard state: [magic 'q', version, u32 wire boot
 * counter] and, from version 2, [u8 flags] (bit 0: the cluster formed once — the
 * fencing first-start rule, daemon/runtime/activation.ts), then optionally the owner:
 * ['o', u32 cluster id, u32 node id], the member whose state this is. Version 1 (6
 * bytes) is read as "not formed"; metadata without an owner (written by a build from
 * before it) is taken as this node's and given its owner at the next start. A build
 * from before the owner reads the first 7 bytes and ignores the rest.
 *
 * A version above 2 was written by a newer build: `newer` carries it, and the runtime
 * refuses to start on it (a newer build bumps the version only for something an older
 * one must not ignore; a field an older build may ignore goes after the owner, as the
 * owner went after the flags).
 *
 * Why the owner: the log, the hard state and the snapshots carry no name of their own,
 * so a data directory copied from another board (swapped SD cards, a backup restored
 * to the wrong board) or from another cluster started without a word, with another
 * member's votes and log — it could vote twice in a term, and what this member had
 * acknowledged was gone.
 */
export interface RuntimeMeta {
  boot: number;
  formed: boolean;
  /** Whose state this is; undefined when the metadata has none (an older build wrote it). */
  owner?: { cluster: number; node: number };
  /** The metadata's version when it is newer than this build reads (above 2): nothing else was read. */
  newer?: number;
}
const OWNER_MARK = 0x6f; // 'o'

export function encodeMeta(m: RuntimeMeta): Uint8Array {
  const b = new Uint8Array(m.owner ? 16 : 7);
  const dv = new DataView(b.buffer);
  b[0] = 0x71;
  b[1] = 2;
  dv.setUint32(2, m.boot >>> 0);
  b[6] = m.formed ? 1 : 0;
  if (m.owner) {
    b[7] = OWNER_MARK;
    dv.setUint32(8, m.owner.cluster >>> 0);
    dv.setUint32(12, m.owner.node >>> 0);
  }
  return b;
}
export function decodeMeta(meta: Uint8Array): RuntimeMeta {
  if (meta.length >= 2 && meta[0] === 0x71 && meta[1]! > 2) return { boot: -1, formed: false, newer: meta[1]! };
  if (meta.length < 6 || meta[0] !== 0x71 || (meta[1] !== 1 && meta[1] !== 2)) return { boot: -1, formed: false };
  const dv = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
  const boot = dv.getUint32(2);
  const out: RuntimeMeta = { boot, formed: meta[1] === 2 && meta.length >= 7 && (meta[6]! & 1) === 1 };
  if (meta[1] === 2 && meta.length >= 16 && meta[7] === OWNER_MARK) out.owner = { cluster: dv.getUint32(8), node: dv.getUint32(12) };
  return out;
}
