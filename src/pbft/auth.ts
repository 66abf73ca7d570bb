/**
 * Authentication for PBFT: who said what, in a way a Byzantine member cannot fake.
 *
 * The wire's frame tag (src/wire/tag.ts) is an HMAC under one cluster-wide key that
 * every member holds, so it stops outsiders but not a member: a reflashed board can
 * seal a frame with `from` set to any other board. PBFT needs more: a PREPARE from
 * replica j must be something only j could have produced, and for the view change
 * and state transfer a third replica must be able to check it too.
 *
 * Choice: Ed25519 signatures (RFC 8032, `node:crypto`), one key pair per node.
 *   - Transferable: a prepared certificate (a PRE-PREPARE and 2f PREPAREs) convinces
 *     every replica, so the view change is the simple one of the OSDI 1999 paper
 *     (VIEW-CHANGE carries the certificates, NEW-VIEW the VIEW-CHANGEs), a lagging
 *     replica can be handed a commit certificate (2f + 1 COMMITs) instead of
 *     replaying the protocol, a checkpoint proof (2f + 1 CHECKPOINTs) certifies a
 *     state-transfer snapshot, and a client can check f + 1 signed replies it got
 *     from one node's HTTP answer.
 *   - The alternative, MAC authenticators (a vector of per-pair HMACs, TOCS 2002
 *     §3.2), is ~100× cheaper per message but not transferable: the TOCS view
 *     change then needs VIEW-CHANGE-ACKs from every replica (another O(n²) round),
 *     commit certificates cannot be forwarded, and n(n−1)/2 pair keys must be
 *     provisioned. quorumd's clusters are 4–7 boards doing coordination, not a
 *     high-rate service; bench/pbft-crypto.ts measures what signatures cost.
 *   - Deterministic: Ed25519 signs without randomness, so a simulation that uses real
 *     keys stays a pure function of its seed.
 * `node:crypto` is allowed in src/ (as for the frame tag): signing is computation.
 *
 * Keys: a node holds its own private key and every member's public key. The config
 * shape (docs/engines.md "PBFT keys") names a PEM file per node; the parsing helpers
 * here take the file's text, not a path (src/ does no I/O).
 *
 * `simulatedAuth` is a stand-in for tests and the simulator only: an HMAC under a
 * per-node secret held in one table. Unforgeable for any code that is handed only its
 * own signer (the harness's Byzantine nodes are), and ~100× faster than Ed25519 so
 * that sweeps over hundreds of seeds stay quick. Never use it on a real cluster: every
 * node would hold every secret.
 */
import { createHash, createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { computeTag } from '../wire/tag.ts';
import { MAX_NODE_ID, type NodeId } from '../types.ts';

/** What the engine needs: sign with this node's key, verify any member's signature. */
export interface PbftAuth {
  readonly id: NodeId;
  /** Length of every signature this scheme produces (and the only length verify accepts). */
  readonly sigBytes: number;
  /** A name for status and logs ('ed25519' or 'simulated'). */
  readonly scheme: string;
  sign(data: Uint8Array): Uint8Array;
  /** Never throws: any malformed input is simply not a valid signature. */
  verify(signer: NodeId, data: Uint8Array, sig: Uint8Array): boolean;
}

export const ED25519_SIG_BYTES = 64;
export const ED25519_KEY_BYTES = 32;

// DER prefixes of a PKCS#8 Ed25519 private key around its 32-byte seed and of an
// SPKI Ed25519 public key around its 32 raw bytes (RFC 8410 §7, §4).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** An Ed25519 private key from its 32-byte seed (RFC 8032 §5.1.5). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== ED25519_KEY_BYTES) {
    throw new TypeError(`ed25519 seed: expected ${ED25519_KEY_BYTES} bytes, got ${seed instanceof Uint8Array ? `${seed.length} bytes` : typeof seed}`);
  }
  return createPrivateKey({ key: Buffer.from(concat(PKCS8_PREFIX, seed)), format: 'der', type: 'pkcs8' });
}

/** An Ed25519 public key from its 32 raw bytes. */
export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (!(raw instanceof Uint8Array) || raw.length !== ED25519_KEY_BYTES) {
    throw new TypeError(`ed25519 public key: expected ${ED25519_KEY_BYTES} raw bytes, got ${raw instanceof Uint8Array ? `${raw.length} bytes` : typeof raw}`);
  }
  return createPublicKey({ key: Buffer.from(concat(SPKI_PREFIX, raw)), format: 'der', type: 'spki' });
}

/** The 32 raw bytes of an Ed25519 public key (for config files and logs). */
export function ed25519PublicKeyRaw(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw new TypeError(`expected an Ed25519 key, got ${String(pub.asymmetricKeyType)}`);
  const der = pub.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - ED25519_KEY_BYTES));
}

/**
 * Parses a private key as found in a key file: PEM ("-----BEGIN PRIVATE KEY-----",
 * PKCS#8, what `openssl genpkey -algorithm ed25519` writes) or the base64 of the
 * 32-byte seed. `what` names the input in errors (e.g. the file path).
 */
export function parseEd25519PrivateKey(text: string, what = 'private key'): KeyObject {
  if (typeof text !== 'string') throw new TypeError(`${what}: expected the key file's text, got ${typeof text}`);
  const t = text.trim();
  let key: KeyObject;
  try {
    key = t.startsWith('-----BEGIN') ? createPrivateKey(t) : ed25519PrivateKeyFromSeed(strictBase64(t, what));
  } catch (e) {
    throw new TypeError(`${what}: not an Ed25519 private key (PEM PKCS#8 or base64 of a 32-byte seed): ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError(`${what}: expected an Ed25519 key, got a ${String(key.asymmetricKeyType)} key`);
  return key;
}

/** Parses a public key: PEM ("-----BEGIN PUBLIC KEY-----", SPKI) or the base64 of its 32 raw bytes. */
export function parseEd25519PublicKey(text: string, what = 'public key'): KeyObject {
  if (typeof text !== 'string') throw new TypeError(`${what}: expected the key's text, got ${typeof text}`);
  const t = text.trim();
  let key: KeyObject;
  try {
    key = t.startsWith('-----BEGIN') ? createPublicKey(t) : ed25519PublicKeyFromRaw(strictBase64(t, what));
  } catch (e) {
    throw new TypeError(`${what}: not an Ed25519 public key (PEM SPKI or base64 of 32 raw bytes): ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError(`${what}: expected an Ed25519 key, got a ${String(key.asymmetricKeyType)} key`);
  return key;
}

function strictBase64(t: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) throw new TypeError(`${what}: expected PEM or base64 text`);
  return new Uint8Array(Buffer.from(t, 'base64'));
}

/**
 * A development key pair derived from a label (SHA-256 of it as the seed), so that
 * `quorumd dev` and tests get stable keys without files. Anyone who knows the label
 * can sign as that node: never for a real cluster.
 */
export function devKeySeed(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`quorumd-dev-key:${label}`).digest());
}

/** Ed25519 authentication for node `id`: its private key and every member's public key (its own included). */
export function ed25519Auth(id: NodeId, privateKey: KeyObject, publicKeys: ReadonlyMap<NodeId, KeyObject>): PbftAuth {
  checkId(id, 'ed25519Auth id');
  if (privateKey?.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('ed25519Auth: privateKey must be an Ed25519 private KeyObject');
  const pubs: (KeyObject | undefined)[] = new Array<KeyObject | undefined>(MAX_NODE_ID + 1);
  for (const [k, v] of publicKeys) {
    checkId(k, 'ed25519Auth publicKeys key');
    if (v?.type !== 'public' || v.asymmetricKeyType !== 'ed25519') throw new TypeError(`ed25519Auth: public key of node ${k} must be an Ed25519 public KeyObject`);
    pubs[k] = v;
  }
  const own = pubs[id];
  if (!own) throw new RangeError(`ed25519Auth: no public key for this node (${id}) among the members' keys`);
  if (!sameBytes(ed25519PublicKeyRaw(own), ed25519PublicKeyRaw(privateKey))) {
    throw new RangeError(`ed25519Auth: the configured public key of node ${id} does not belong to its private key`);
  }
  return {
    id,
    sigBytes: ED25519_SIG_BYTES,
    scheme: 'ed25519',
    sign: (data) => new Uint8Array(edSign(null, data, privateKey)),
    verify: (signer, data, sig) => {
      const pub = Number.isInteger(signer) && signer >= 1 && signer <= MAX_NODE_ID ? pubs[signer] : undefined;
      if (!pub || !(sig instanceof Uint8Array) || sig.length !== ED25519_SIG_BYTES || !(data instanceof Uint8Array)) return false;
      try {
        return edVerify(null, data, pub, sig);
      } catch {
        return false;
      }
    },
  };
}

/** Ed25519 auth for every member from dev seeds (`devKeySeed(prefix + id)`): tests, benches and `quorumd dev` only. */
export function devEd25519Auths(members: readonly NodeId[], prefix = 'node-'): Map<NodeId, PbftAuth> {
  const priv = new Map<NodeId, KeyObject>();
  const pub = new Map<NodeId, KeyObject>();
  for (const id of members) {
    const k = ed25519PrivateKeyFromSeed(devKeySeed(`${prefix}${id}`));
    priv.set(id, k);
    pub.set(id, createPublicKey(k));
  }
  return new Map(members.map((id) => [id, ed25519Auth(id, priv.get(id)!, pub)]));
}

// ---------------------------------------------------------------------------
// Simulation-only stand-in

export const SIMULATED_SIG_BYTES = 16;

/** One secret per node, for `simulatedAuth`. Hand each node only its own `simulatedAuth`. */
export class SimulatedKeys {
  private readonly secrets = new Map<NodeId, Uint8Array>();
  constructor(members: readonly NodeId[], label = 'sim') {
    for (const id of members) {
      checkId(id, 'SimulatedKeys member');
      this.secrets.set(id, devKeySeed(`${label}/${id}`));
    }
  }
  /** The auth object for node `id`: signs with id's secret, verifies everyone's. */
  auth(id: NodeId): PbftAuth {
    const mine = this.secrets.get(id);
    if (!mine) throw new RangeError(`SimulatedKeys: node ${id} has no key`);
    const secrets = this.secrets;
    return {
      id,
      sigBytes: SIMULATED_SIG_BYTES,
      scheme: 'simulated',
      sign: (data) => computeTag(mine, data),
      verify: (signer, data, sig) => {
        const s = secrets.get(signer);
        if (!s || !(sig instanceof Uint8Array) || sig.length !== SIMULATED_SIG_BYTES || !(data instanceof Uint8Array)) return false;
        return sameBytes(computeTag(s, data), sig);
      },
    };
  }
}

function checkId(id: unknown, what: string): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) throw new RangeError(`${what}: expected a node id 1..${MAX_NODE_ID}, got ${String(id)}`);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
