/**
 * Runtime metadata kept with the hard state: [magic 'q', version, u32 wire boot
 * counter] and, from version 2, [u8 flags] (bit 0: the cluster formed once — the
 * fencing first-start rule, daemon/runtime/activation.ts). Version 1 (6 bytes) is read
 * as "not formed".
 */
export interface RuntimeMeta {
  boot: number;
  formed: boolean;
}
export function encodeMeta(m: RuntimeMeta): Uint8Array {
  const b = new Uint8Array(7);
  b[0] = 0x71;
  b[1] = 2;
  new DataView(b.buffer).setUint32(2, m.boot >>> 0);
  b[6] = m.formed ? 1 : 0;
  return b;
}
export function decodeMeta(meta: Uint8Array): RuntimeMeta {
  if (meta.length < 6 || meta[0] !== 0x71 || (meta[1] !== 1 && meta[1] !== 2)) return { boot: -1, formed: false };
  const boot = new DataView(meta.buffer, meta.byteOffset, meta.byteLength).getUint32(2);
  return { boot, formed: meta[1] === 2 && meta.length >= 7 && (meta[6]! & 1) === 1 };
}
