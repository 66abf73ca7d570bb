/**
 * What the engine runtime (engine-node.ts) needs to host PBFT (src/pbft), kept out of
 * the shared runtime file: signing keys, the durable-log shape, signed replies.
 *
 * ## Keys
 * PBFT authenticates every protocol message with Ed25519 (src/pbft/auth.ts explains
 * why signatures and not MAC vectors). Without configured per-node key files the
 * runtime derives each member's key pair from the cluster key:
 *
 *     seed(i) = HMAC-SHA256(cluster key, "quorumd-pbft-node-key/v1/" ‖ cluster ‖ "/" ‖ i)
 *
 * and every node computes every member's public key the same way. Why this is enough
 * for the project's model and what it does not do: whoever holds the cluster key is a
 * member (the frame tag already trusts them), so the derived keys separate *members
 * from each other* only against faults, not against an attacker. A board whose
 * software fails or was reflashed with a buggy or lying quorumd but that only uses its
 * own key (the code paths of `src/pbft/byzantine.ts`) cannot speak for another board:
 * its forged PREPAREs, VIEW-CHANGEs and replies are refused. A reflashed board whose
 * attacker reads the cluster key out of its storage can derive every member's key and
 * sign as anyone: PBFT's f-of-n bound is then void. Against that, configure per-node key
 * files (docs/engines.md "PBFT keys"): each board holds only its own private key, and
 * the cluster key then only admits frames. The derivation is used for `quorumd dev`
 * and for clusters without key files; it is logged at start.
 *
 * ## Durable log
 * The durable log (hal/storage) enforces Raft's term rules: terms ≥ 1, non-decreasing
 * along the log, never above the hard state's. PBFT's entries carry the view of their
 * PRE-PREPARE (0 in view 0, placeholders 0, and a slot re-proposed in a new view sits
 * beside older ones), so they are stored in another shape and translated back at boot:
 *   hardState.term = view + 1; entries with term 1 and the view in an 8-byte prefix of
 *   their data; a snapshot with term 1 and {config, engine, term} as its config value
 *   (the engine's SnapshotMeta.engine travels there: src/engine/contract.ts).
 */
import { createHmac } from 'node:crypto';
import { ed25519Auth, ed25519PrivateKeyFromSeed, type PbftAuth } from '../../src/pbft/auth.ts';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { HardState, SnapshotData } from '../../src/engine/contract.ts';
import type { Entry, MemberConfig } from '../../src/wire/messages.ts';
import type { NodeId } from '../../src/types.ts';
import type { Keyring } from '../../src/wire/auth.ts';
import { Rng } from '../../src/rng.ts';
import { Saboteur, parseByzKinds } from '../../src/pbft/byzantine.ts';
import type { PersistBatch, Recovered } from '../../hal/storage/index.ts';
import { encode, decode } from 'cbor-x';
import type { ClientResult } from './results.ts';
import { decodeReplyBody, encodeReplyBody } from './forward.ts';

export function derivedKeySeed(clusterKey: Uint8Array, cluster: number, id: NodeId): Uint8Array {
  return new Uint8Array(createHmac('sha256', clusterKey).update(`quorumd-pbft-node-key/v1/${cluster}/${id}`).digest());
}

/** Node `id`'s PBFT signer, every member's key derived from the cluster key (see the header). */
export function derivedPbftAuth(id: NodeId, members: readonly NodeId[], clusterKey: Uint8Array, cluster: number): PbftAuth {
  const pubs = new Map<NodeId, KeyObject>();
  let own: KeyObject | undefined;
  for (const m of members) {
    const k = ed25519PrivateKeyFromSeed(derivedKeySeed(clusterKey, cluster, m));
    pubs.set(m, createPublicKey(k));
    if (m === id) own = k;
  }
  if (!own) throw new RangeError(`pbft keys: node ${id} is not among the members ${members.join(', ')}`);
  return ed25519Auth(id, own, pubs);
}

/**
 * Per-sender frame keys: a PBFT cluster's frames are tagged with the sender's own key
 *     K(i) = HMAC-SHA256(cluster key, "quorumd-pbft-frame-key/v1/" ‖ cluster ‖ "/" ‖ i)
 * (current and previous cluster key alike, so key rotation works as before). With the
 * one cluster key a lying member could seal a frame in another member's name; the
 * receiver's replay window (per sender: bootId, seq) would then move on to the liar's
 * stamps and drop the real sender's frames as stale — one liar could cut an honest
 * node off below PBFT (found by `quorumd sim --faults byzantine`). Same trust model as
 * the derived signing keys above: it stops a lying quorumd, not a thief of the cluster
 * key. They stay derived with per-board key files too: a thief of the cluster key can
 * then forge frames tagged as another board (keep it looking heard, disturb the replay
 * window for it) but not sign its requests, PREPAREs, COMMITs, replies or fence votes.
 */
export function derivedFrameKeys(keyring: Keyring, cluster: number, members: readonly NodeId[]): (node: NodeId) => Keyring | undefined {
  const derive = (k: Uint8Array, i: NodeId) => new Uint8Array(createHmac('sha256', k).update(`quorumd-pbft-frame-key/v1/${cluster}/${i}`).digest());
  const rings = new Map<NodeId, Keyring>();
  for (const i of members) rings.set(i, { current: derive(keyring.current, i), ...(keyring.previous ? { previous: derive(keyring.previous, i) } : {}) });
  return (node) => rings.get(node);
}

/**
 * Testing only: the saboteur for `quorumd dev --byzantine-node N --byzantine-mode M`.
 * dev passes the behaviours to that node's process in QUORUMD_DEV_BYZANTINE and its own
 * pid in QUORUMD_DEV_PARENT; anything else (`quorumd start` run by hand or by a
 * supervisor, another engine) is refused with an error naming why.
 */
export function devByzantine(spec: string, parent: string | undefined, ppid: number, engine: string, id: NodeId, members: readonly NodeId[], clusterKey: Uint8Array, cluster: number): Saboteur {
  if (parent === undefined || parent !== String(ppid)) {
    throw new Error('QUORUMD_DEV_BYZANTINE: a lying node is for testing only and is started by quorumd dev --byzantine-node (this process was not started by quorumd dev); refused');
  }
  if (engine !== 'pbft') throw new Error(`QUORUMD_DEV_BYZANTINE: only engine pbft tolerates a lying node; this node runs engine ${engine}; refused`);
  const kinds = parseByzKinds(spec, 'QUORUMD_DEV_BYZANTINE (--byzantine-mode)');
  return new Saboteur({ auth: derivedPbftAuth(id, members, clusterKey, cluster), members, kinds, rng: new Rng(`dev-byzantine-${id}-${ppid}`) });
}

// ---------------------------------------------------------------------------
// Durable log shape

const VIEW_PREFIX = 8;

function withView(e: Entry): Entry {
  const data = new Uint8Array(VIEW_PREFIX + e.data.length);
  new DataView(data.buffer).setFloat64(0, e.term);
  data.set(e.data, VIEW_PREFIX);
  return { index: e.index, term: 1, type: e.type, data };
}

function withoutView(e: Entry): Entry {
  if (e.data.length < VIEW_PREFIX) throw new Error(`pbft durable entry ${e.index}: ${e.data.length} bytes, expected at least the ${VIEW_PREFIX}-byte view prefix`);
  const view = new DataView(e.data.buffer, e.data.byteOffset, VIEW_PREFIX).getFloat64(0);
  if (!Number.isSafeInteger(view) || view < 0) throw new Error(`pbft durable entry ${e.index}: bad view ${view}`);
  return { index: e.index, term: view, type: e.type, data: e.data.subarray(VIEW_PREFIX) };
}

/** The engine's Ready pieces in the durable log's shape. */
export function pbftToDurable(b: { hardState?: HardState; entries?: Entry[]; snapshot?: SnapshotData }, batch: PersistBatch): void {
  if (b.hardState) batch.hardState = { term: b.hardState.term + 1, vote: b.hardState.vote, commit: b.hardState.commit };
  if (b.entries && b.entries.length > 0) batch.entries = b.entries.map(withView);
  if (b.snapshot) {
    const m = b.snapshot.meta;
    batch.snapshot = { index: m.index, term: 1, config: { config: m.config, engine: m.engine ?? new Uint8Array(0), term: m.term }, data: b.snapshot.data };
  }
}

/** What was recovered, back in the engine's shape. */
export function pbftFromDurable(st: Recovered): { hardState: HardState; entries: Entry[]; snapshot: SnapshotData | undefined } {
  const hs = st.hardState;
  const hardState = { term: Math.max(0, hs.term - 1), vote: hs.vote, commit: hs.commit };
  const entries = st.entries.map(withoutView);
  let snapshot: SnapshotData | undefined;
  if (st.snapshot) {
    const c = st.snapshot.config as { config?: MemberConfig; engine?: Uint8Array; term?: number } | null;
    if (!c || typeof c !== 'object' || !c.config || !(c.engine instanceof Uint8Array) || typeof c.term !== 'number') {
      throw new Error(`pbft snapshot at ${st.snapshot.index}: its stored config is not {config, engine, term} (written by another engine?)`);
    }
    snapshot = { meta: { index: st.snapshot.index, term: c.term, config: c.config, engine: new Uint8Array(c.engine) }, data: st.snapshot.data };
  }
  return { hardState, entries, snapshot };
}

/** A snapshot the runtime took at a checkpoint (compact), in the durable shape. */
export function pbftSnapshotRecord(s: SnapshotData): NonNullable<PersistBatch['snapshot']> {
  const batch: PersistBatch = {};
  pbftToDurable({ snapshot: s }, batch);
  return batch.snapshot!;
}

// ---------------------------------------------------------------------------
// Replies

/**
 * The result a replica signs for a client: CBOR [status, body] with body as
 * forward.ts encodes a ClientReply. A deterministic function of the applied entry, so
 * honest replicas sign equal bytes.
 */
export function encodeResult(res: ClientResult): Uint8Array {
  // An ordered read's value (pbft-clients.ts) is a third element; writes keep their two.
  const items: unknown[] = [res.status, encodeReplyBody({ ...res, error: undefined })];
  if (res.value !== undefined) items.push(Buffer.from(res.value.buffer, res.value.byteOffset, res.value.length));
  return new Uint8Array(encode(items));
}

export function decodeResult(b: Uint8Array): ClientResult | Error {
  let v: unknown;
  try {
    v = decode(b);
  } catch (e) {
    return new Error(`pbft reply result: not CBOR (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || v.length < 2 || v.length > 3 || typeof v[0] !== 'number' || !(v[1] instanceof Uint8Array)) return new Error('pbft reply result: expected [status, body] or [status, body, value]');
  if (v.length === 3 && !(v[2] instanceof Uint8Array)) return new Error('pbft reply result: the value must be bytes');
  const r = decodeReplyBody(v[0], v[1]);
  if (r instanceof Error || v.length === 2) return r;
  return { ...r, value: new Uint8Array(v[2] as Uint8Array) };
}
