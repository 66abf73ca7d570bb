/**
 * The wire codec: Message ⇄ frame bytes (docs/wire.md).
 *
 * A frame is one CBOR array followed by the raw 16-byte tag:
 *
 *   [version, type, cluster, from, to, term, bootId, seq, ...body] ‖ tag
 *
 * The body of each type is listed in BODY_LAYOUT, in wire order. An Append's (and a
 * ZabProposal's) entries travel as [term, type, data]; the index of entry i is
 * prevIndex+1+i. The optional fields (Heartbeat/HeartbeatReply `commit`, ZabPing/ZabPong
 * `ctx`) are omitted (the array is one shorter) when undefined, which keeps an idle
 * heartbeat within 32 bytes.
 *
 * Encoding checks the message with the same rules as decoding, so a message the
 * engine builds wrongly fails loudly at the sender (WireEncodeError) instead of
 * being dropped silently by every receiver.
 */
import { CborError, CborWriter, Reader, type CborReadStats, type CborValue } from './cbor.ts';
import { EntryType, MsgType, ZabPeerState, type Entry, type MemberConfig, type Message, type PaxosSlot } from './messages.ts';
import { checkKeyring, TAG_BYTES, verifyFrameTag, writeTag, type Keyring } from './tag.ts';
import { MAX_NODE_ID } from '../types.ts';

export const WIRE_VERSION = 1;
/** Items before the body: version, type, cluster, from, to, term, bootId, seq. */
export const ENVELOPE_ITEMS = 8;
export const MAX_CLUSTER = 0xffff;
/** bootId and seq are 16-bit: see docs/wire.md "seq and bootId" and auth.ts Sender. */
export const MAX_BOOT_ID = 0xffff;
export const MAX_SEQ = 0xffff;
/** Default largest frame (tag included) accepted on MQTT (docs/wire.md: 64 KiB). */
export const DEFAULT_MAX_FRAME = 65536;
/** Largest frame on a serial link (docs/wire.md: 1 KiB): keeps a frame under ~0.1 s at 115200 baud. */
export const SERIAL_MAX_FRAME = 1024;
/** Smallest possible frame: a CBOR array head + 8 one-byte items + tag. */
export const MIN_FRAME = 1 + ENVELOPE_ITEMS + TAG_BYTES;

/** Why a frame was dropped. Closed set: metrics have one counter per reason. */
export const DROP_REASONS = [
  'too-large', // longer than maxFrame, rejected before any parsing
  'truncated', // input ended inside the CBOR value, or shorter than value + tag
  'malformed', // not the CBOR subset, not an array, trailing bytes, too few items
  'bad-version', // version item is not WIRE_VERSION
  'unknown-type', // type item is not a MsgType
  'bad-field', // a field has the wrong CBOR type, is out of range, or fields contradict
  'unknown-cluster', // cluster id is not ours
  'bad-tag', // HMAC does not match the current or previous key
  'replay', // (from, bootId, seq) already seen or older than the replay window
  'stale-boot', // bootId older than the newest seen from that sender
  'not-for-me', // addressed to another node
  'other-engine', // authentic, but a type of another engine than this node's: a member with another `engine:` (counted by the runtime)
  'not-member', // authentic, but from a node this node's `members:` does not list: configurations that differ (counted by the runtime)
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** One counter per drop reason; the receive path increments, the daemon exports them. */
export type DropCounters = Record<DropReason, number>;
export function newDropCounters(): DropCounters {
  const c = {} as DropCounters;
  for (const r of DROP_REASONS) c[r] = 0;
  return c;
}

/** The per-frame protection the codec adds around a Message. */
export interface Envelope {
  cluster: number;
  bootId: number;
  seq: number;
}

export class WireEncodeError extends Error {
  override name = 'WireEncodeError';
}

/**
 * How a field travels: uint = CBOR unsigned 0..2^53-1; bool = CBOR true/false (1 byte,
 * as small as 0/1 and unambiguous); bytes = CBOR byte string; status = uint 100..599;
 * entries = array of [term, type, data]; opt-uint = uint or omitted (last field only);
 * config = [[voters], [learners], [witnesses]] of node ids; slots = array of
 * [ballot, origin, type, data], Paxos values of consecutive slots starting at the
 * message's `first` field (which must come earlier in the layout).
 */
type Kind = 'uint' | 'bool' | 'bytes' | 'status' | 'entries' | 'opt-uint' | 'config' | 'slots';
type Common = 'type' | 'from' | 'to' | 'term';
type FieldSpec<M> = readonly { name: Exclude<keyof M, Common> & string; kind: Kind }[];

const u = <N extends string>(name: N) => ({ name, kind: 'uint' as const });
const b = <N extends string>(name: N) => ({ name, kind: 'bool' as const });
const bytes = <N extends string>(name: N) => ({ name, kind: 'bytes' as const });

/**
 * Body items of every message type, in wire order. The mapped type makes a MsgType
 * without a layout a compile error; encode() refuses a message that carries a field
 * not listed here, so a field added to messages.ts cannot be dropped silently.
 */
export const BODY_LAYOUT = {
  [MsgType.PreVote]: [u('lastIndex'), u('lastTerm')],
  [MsgType.PreVoteReply]: [b('granted')],
  [MsgType.Vote]: [u('lastIndex'), u('lastTerm'), b('transfer')],
  [MsgType.VoteReply]: [b('granted')],
  [MsgType.Append]: [u('prevIndex'), u('prevTerm'), u('commit'), { name: 'entries', kind: 'entries' }],
  [MsgType.AppendReply]: [b('success'), u('index'), u('conflictTerm'), u('conflictIndex')],
  [MsgType.Heartbeat]: [u('ctx'), { name: 'commit', kind: 'opt-uint' }],
  [MsgType.HeartbeatReply]: [u('ctx'), { name: 'commit', kind: 'opt-uint' }],
  [MsgType.Snapshot]: [
    u('lastIndex'),
    u('lastTerm'),
    u('offset'),
    u('total'),
    bytes('data'),
    b('done'),
    { name: 'config', kind: 'config' },
  ],
  [MsgType.SnapshotReply]: [u('lastIndex'), u('next'), b('ok')],
  [MsgType.TimeoutNow]: [],
  [MsgType.ReadIndex]: [u('ctx')],
  [MsgType.ReadIndexReply]: [u('ctx'), u('index'), b('ok')],
  [MsgType.BullyElection]: [u('priority')],
  [MsgType.BullyAnswer]: [u('priority')],
  [MsgType.BullyCoordinator]: [u('priority')],
  [MsgType.ClientRequest]: [u('reqId'), bytes('body')],
  [MsgType.ClientReply]: [u('reqId'), { name: 'status', kind: 'status' }, bytes('body')],
  [MsgType.PaxosPrepare]: [u('lo'), b('probe'), b('transfer')],
  [MsgType.PaxosPromise]: [b('ok'), b('probe'), u('commit'), u('last'), u('snap'), u('first'), { name: 'slots', kind: 'slots' }],
  [MsgType.PaxosAccept]: [u('first'), u('commit'), { name: 'slots', kind: 'slots' }],
  [MsgType.PaxosAccepted]: [b('ok'), u('index')],
  [MsgType.PaxosSnapshot]: [
    u('lastIndex'),
    u('lastTerm'),
    u('offset'),
    u('total'),
    bytes('data'),
    b('done'),
    { name: 'config', kind: 'config' },
  ],
  [MsgType.PaxosSnapshotReply]: [u('lastIndex'), u('next'), b('ok')],
  [MsgType.ZabNotification]: [u('leader'), u('epoch'), u('zxidTerm'), u('zxidIndex'), u('state')],
  [MsgType.ZabFollowerInfo]: [],
  [MsgType.ZabNewEpoch]: [],
  [MsgType.ZabAckEpoch]: [b('ok'), u('currentEpoch'), u('lastIndex'), u('lastTerm'), u('commit')],
  [MsgType.ZabDiff]: [u('index'), u('indexTerm')],
  [MsgType.ZabTrunc]: [u('index'), u('indexTerm')],
  [MsgType.ZabSnap]: [
    u('lastIndex'),
    u('lastTerm'),
    u('offset'),
    u('total'),
    bytes('data'),
    b('done'),
    { name: 'config', kind: 'config' },
  ],
  [MsgType.ZabSnapAck]: [u('lastIndex'), u('next'), b('ok')],
  [MsgType.ZabProposal]: [u('prevIndex'), u('prevTerm'), u('commit'), { name: 'entries', kind: 'entries' }],
  [MsgType.ZabAck]: [u('index'), b('ok'), u('commit')],
  [MsgType.ZabNewLeader]: [u('index'), u('start')],
  [MsgType.ZabAckNewLeader]: [u('index')],
  [MsgType.ZabCommit]: [u('index')],
  [MsgType.ZabPing]: [{ name: 'ctx', kind: 'opt-uint' }],
  [MsgType.ZabPong]: [{ name: 'ctx', kind: 'opt-uint' }],
  [MsgType.ZabSyncReq]: [u('ctx')],
  [MsgType.ZabSyncReply]: [u('ctx'), u('index'), b('ok')],
  [MsgType.PbftRequest]: [bytes('request')],
  [MsgType.PbftPrePrepare]: [u('seq'), bytes('digest'), bytes('sig'), bytes('request')],
  [MsgType.PbftPrepare]: [u('seq'), bytes('digest'), bytes('sig')],
  [MsgType.PbftCommit]: [u('seq'), bytes('digest'), bytes('sig')],
  [MsgType.PbftCheckpoint]: [u('replica'), u('seq'), bytes('digest'), bytes('sig')],
  [MsgType.PbftViewChange]: [bytes('payload'), bytes('sig')],
  [MsgType.PbftNewView]: [bytes('payload'), bytes('sig')],
  [MsgType.PbftStatus]: [b('normal'), u('executed'), u('stable')],
  [MsgType.PbftCommitted]: [u('seq'), bytes('request'), bytes('commits')],
  [MsgType.PbftFetchState]: [u('seq')],
  [MsgType.PbftState]: [u('seq'), bytes('proof'), bytes('exec'), u('offset'), u('total'), bytes('data')],
  [MsgType.PbftFetchRequest]: [u('seq'), bytes('digest')],
  [MsgType.PbftSuspect]: [],
} as const satisfies { readonly [T in MsgType]: FieldSpec<Extract<Message, { type: T }>> };

// Compile-time completeness: a field added to a message in messages.ts but missing
// from BODY_LAYOUT makes this line a type error naming the field.
type LayoutNames<T extends MsgType> = (typeof BODY_LAYOUT)[T][number] extends { name: infer N } ? N : never;
type UnencodedFields = { [T in MsgType]: Exclude<keyof Extract<Message, { type: T }>, Common | LayoutNames<T>> }[MsgType];
const everyFieldHasALayout: [UnencodedFields] extends [never] ? true : { missing: UnencodedFields } = true;
void everyFieldHasALayout;

type AnyField = { name: string; kind: Kind };
function layoutOf(type: number): readonly AnyField[] | undefined {
  // Per frame, twice: an array indexed by small integer type first (a hasOwnProperty
  // call on the layout object otherwise); anything else takes the general lookup.
  if (typeof type === 'number' && type >= 0 && type < LAYOUT_BY_TYPE.length && Number.isInteger(type)) return LAYOUT_BY_TYPE[type];
  return Object.prototype.hasOwnProperty.call(BODY_LAYOUT, type)
    ? (BODY_LAYOUT as unknown as Record<number, readonly AnyField[]>)[type]
    : undefined;
}
const LAYOUT_BY_TYPE: (readonly AnyField[] | undefined)[] = [];
for (const t of Object.keys(BODY_LAYOUT)) LAYOUT_BY_TYPE[Number(t)] = (BODY_LAYOUT as unknown as Record<number, readonly AnyField[]>)[Number(t)];
for (let t = 0; t < LAYOUT_BY_TYPE.length; t++) LAYOUT_BY_TYPE[t] ??= undefined; // no holes

/** Per type: the field names a message may carry (common + body), built once (checkMessage runs per frame). */
const KNOWN_FIELDS = new Map<number, ReadonlySet<string>>(
  Object.keys(BODY_LAYOUT).map((t) => [Number(t), new Set(['type', 'from', 'to', 'term', ...layoutOf(Number(t))!.map((f) => f.name)])]),
);

/** Per type: body items that must be present (all but a trailing opt-uint). */
const REQUIRED_ITEMS = new Map<number, number>(
  Object.keys(BODY_LAYOUT).map((t) => [Number(t), layoutOf(Number(t))!.filter((f) => f.kind !== 'opt-uint').length]),
);

/** Every MsgType value (numeric enum members only). */
export const MSG_TYPES: readonly MsgType[] = Object.values(MsgType).filter((v): v is MsgType => typeof v === 'number');
const ENTRY_TYPES = new Set<number>(Object.values(EntryType).filter((v): v is number => typeof v === 'number'));
const ZAB_MAX_PEER_STATE = Math.max(...Object.values(ZabPeerState).filter((v): v is number => typeof v === 'number'));

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const show = (v: unknown): string =>
  v instanceof Uint8Array ? `${v.length}-byte string` : Array.isArray(v) ? `array(${v.length})` : typeof v === 'number' ? String(v) : `${typeof v} ${String(v)}`;

function checkRange(v: unknown, name: string, lo: number, hi: number): string | null {
  if (!isUint(v) || v < lo || v > hi) return `${name}: expected an integer ${lo}..${hi}, got ${show(v)}`;
  return null;
}

function checkField(kind: Kind, v: unknown, name: string): string | null {
  switch (kind) {
    case 'uint':
      return isUint(v) ? null : `${name}: expected an integer 0..2^53-1, got ${show(v)}`;
    case 'opt-uint':
      return v === undefined || isUint(v) ? null : `${name}: expected an integer 0..2^53-1 or absent, got ${show(v)}`;
    case 'bool':
      return typeof v === 'boolean' ? null : `${name}: expected a boolean, got ${show(v)}`;
    case 'bytes':
      return v instanceof Uint8Array ? null : `${name}: expected a byte string, got ${show(v)}`;
    case 'status':
      return checkRange(v, name, 100, 599);
    case 'entries':
      return Array.isArray(v) ? null : `${name}: expected an array of entries, got ${show(v)}`;
    case 'slots':
      return Array.isArray(v) ? null : `${name}: expected an array of slots, got ${show(v)}`;
    case 'config':
      return checkConfig(v, name);
  }
}

const CONFIG_LISTS = ['voters', 'learners', 'witnesses'] as const;

/** A MemberConfig: three lists of node ids 1..254, each id in at most one list, at most once. */
function checkConfig(v: unknown, name: string): string | null {
  if (v === null || typeof v !== 'object') return `${name}: expected {voters, learners, witnesses}, got ${show(v)}`;
  const c = v as Record<string, unknown>;
  const seen = new Set<number>();
  for (const list of CONFIG_LISTS) {
    const ids = c[list];
    if (!Array.isArray(ids)) return `${name}.${list}: expected an array of node ids, got ${show(ids)}`;
    for (let i = 0; i < ids.length; i++) {
      const p = checkRange(ids[i], `${name}.${list}[${i}]`, 1, MAX_NODE_ID);
      if (p) return p;
      if (seen.has(ids[i] as number)) return `${name}.${list}[${i}]: node ${ids[i]} appears twice in the configuration`;
      seen.add(ids[i] as number);
    }
  }
  for (const k of Object.keys(c)) {
    if (!(CONFIG_LISTS as readonly string[]).includes(k)) return `${name}.${k}: field has no wire encoding`;
  }
  return null;
}

/** A message carrying log entries after (prevIndex, prevTerm): Raft's Append, ZAB's Proposal. */
type EntryCarrier = { term: number; prevIndex: number; prevTerm: number; entries: Entry[] };

function checkEntries(m: EntryCarrier): string | null {
  let last = m.prevTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i] as Entry | undefined;
    // The `entries[i]` prefix is built only for a message (this runs per entry per frame).
    if (e === null || typeof e !== 'object') return `entries[${i}]: expected an entry, got ${show(e)}`;
    if (!isUint(e.term)) return checkField('uint', e.term, `entries[${i}].term`);
    if (!(e.data instanceof Uint8Array)) return checkField('bytes', e.data, `entries[${i}].data`);
    if (!ENTRY_TYPES.has(e.type)) return `entries[${i}].type: expected an EntryType (${[...ENTRY_TYPES].join(', ')}), got ${show(e.type)}`;
    if (e.index !== m.prevIndex + 1 + i) return `entries[${i}].index: expected prevIndex+1+${i} = ${m.prevIndex + 1 + i}, got ${show(e.index)}`;
    // Log terms (Raft terms, ZAB epochs) never decrease along the log and never exceed the leader's.
    if (e.term < last) return `entries[${i}].term: ${e.term} is below the previous term ${last} (log terms never decrease)`;
    if (e.term > m.term) return `entries[${i}].term: ${e.term} exceeds the leader's term ${m.term}`;
    last = e.term;
  }
  if (m.prevIndex + m.entries.length > Number.MAX_SAFE_INTEGER) return 'entries: last index exceeds 2^53-1';
  return null;
}

/**
 * Paxos slots: consecutive from `first`, each with 1 ≤ origin ≤ ballot ≤ the message's
 * term (a value is proposed into a slot no later than the ballot that accepted it, and
 * no acceptor holds a ballot above its promise); in an Accept every ballot is the term.
 */
function checkSlots(m: Extract<Message, { type: MsgType.PaxosAccept | MsgType.PaxosPromise }>, sameBallot: boolean): string | null {
  if (m.first < 1) return `first: expected a slot ≥ 1, got ${m.first}`;
  for (let i = 0; i < m.slots.length; i++) {
    const e = m.slots[i] as PaxosSlot | undefined;
    if (e === null || typeof e !== 'object') return `slots[${i}]: expected a slot, got ${show(e)}`;
    if (!isUint(e.ballot)) return checkField('uint', e.ballot, `slots[${i}].ballot`);
    if (!isUint(e.origin)) return checkField('uint', e.origin, `slots[${i}].origin`);
    if (!(e.data instanceof Uint8Array)) return checkField('bytes', e.data, `slots[${i}].data`);
    if (!ENTRY_TYPES.has(e.type)) return `slots[${i}].type: expected an EntryType (${[...ENTRY_TYPES].join(', ')}), got ${show(e.type)}`;
    if (e.index !== m.first + i) return `slots[${i}].index: expected first+${i} = ${m.first + i}, got ${show(e.index)}`;
    if (e.origin < 1 || e.origin > e.ballot) return `slots[${i}].origin: expected 1..ballot (${e.ballot}), got ${e.origin}`;
    if (sameBallot ? e.ballot !== m.term : e.ballot > m.term) {
      return `slots[${i}].ballot: ${e.ballot} ${sameBallot ? 'differs from' : 'exceeds'} the message's ballot ${m.term}`;
    }
  }
  if (m.first + m.slots.length > Number.MAX_SAFE_INTEGER) return 'slots: last index exceeds 2^53-1';
  return null;
}

/**
 * Checks a message object against the wire rules; returns what is wrong, or null.
 * Used by the encoder (sender-side bug → exception); the decoder applies the same rules
 * in the same order (kinds as it builds the message, then checkRules) → bad-field.
 */
export function checkMessage(msg: unknown): string | null {
  if (msg === null || typeof msg !== 'object') return `message: expected an object, got ${show(msg)}`;
  const m = msg as Record<string, unknown>;
  const layout = layoutOf(m.type as number);
  if (!layout) return `type: expected a MsgType (${MSG_TYPES.join(', ')}), got ${show(m.type)}`;
  const p =
    checkRange(m.from, 'from', 1, MAX_NODE_ID) ??
    checkRange(m.to, 'to', 1, MAX_NODE_ID) ??
    checkField('uint', m.term, 'term');
  if (p) return p;
  for (let i = 0; i < layout.length; i++) {
    const f = layout[i]!;
    const q = checkField(f.kind, m[f.name], f.name);
    if (q) return q;
  }
  const known = KNOWN_FIELDS.get(m.type as number)!;
  for (const k in m) {
    if (!known.has(k) && Object.prototype.hasOwnProperty.call(m, k)) {
      return `${k}: field has no wire encoding for MsgType ${MsgType[m.type as MsgType]} (add it to BODY_LAYOUT)`;
    }
  }
  return checkRules(msg as Message);
}

/** The rules between fields (after every field has its kind): terms, entries, snapshot chunks. */
function checkRules(x: Message): string | null {
  switch (x.type) {
    case MsgType.PreVote:
    case MsgType.Vote:
      if (x.lastTerm > x.term) return `lastTerm: ${x.lastTerm} exceeds term ${x.term}`;
      return null;
    case MsgType.Append:
      if (x.prevTerm > x.term) return `prevTerm: ${x.prevTerm} exceeds term ${x.term}`;
      return checkEntries(x);
    case MsgType.PaxosAccept:
      return checkSlots(x, true);
    case MsgType.PaxosPromise:
      if (!(x.snap <= x.commit && x.commit <= x.last)) return `commit: expected snap (${x.snap}) ≤ commit (${x.commit}) ≤ last (${x.last})`;
      if (!x.ok && x.slots.length > 0) return `slots: a refusal carries no slots, got ${x.slots.length}`;
      if (x.slots.length > 0 && x.first + x.slots.length - 1 > x.last) return `slots: end at ${x.first + x.slots.length - 1}, beyond last ${x.last}`;
      return checkSlots(x, false);
    case MsgType.Snapshot:
    case MsgType.PaxosSnapshot:
    case MsgType.ZabSnap: {
      if (x.lastTerm > x.term) return `lastTerm: ${x.lastTerm} exceeds term ${x.term}`;
      const end = x.offset + x.data.length;
      if (end > x.total) return `data: chunk ends at ${end}, beyond total ${x.total}`;
      if (x.done && end !== x.total) return `done: last chunk ends at ${end}, expected total ${x.total}`;
      return null;
    }
    // ZAB: what holds for any honest sender (src/zab/zab.ts).
    case MsgType.ZabNotification:
      if (x.leader > MAX_NODE_ID) return `leader: expected a node id 0..${MAX_NODE_ID} (0 = no candidate), got ${x.leader}`;
      if (x.state > ZAB_MAX_PEER_STATE) return `state: expected a ZabPeerState 0..${ZAB_MAX_PEER_STATE}, got ${x.state}`;
      return null;
    case MsgType.ZabAckEpoch:
      // A follower accepts an epoch only above its currentEpoch, and holds no entry of a later epoch.
      if (x.currentEpoch > x.term) return `currentEpoch: ${x.currentEpoch} exceeds the acknowledged epoch ${x.term}`;
      if (x.lastTerm > x.term) return `lastTerm: ${x.lastTerm} exceeds the acknowledged epoch ${x.term}`;
      if (x.commit > x.lastIndex) return `commit: ${x.commit} is beyond lastIndex ${x.lastIndex}`;
      return null;
    case MsgType.ZabDiff:
    case MsgType.ZabTrunc:
      if (x.indexTerm > x.term) return `indexTerm: ${x.indexTerm} exceeds the epoch ${x.term}`;
      return null;
    case MsgType.ZabProposal:
      if (x.prevTerm > x.term) return `prevTerm: ${x.prevTerm} exceeds the epoch ${x.term}`;
      return checkEntries(x);
    case MsgType.ZabAck:
      if (x.ok && x.commit > x.index) return `commit: ${x.commit} is beyond the acknowledged index ${x.index}`;
      return null;
    case MsgType.ZabNewLeader:
      // The epoch's start entry is the first of the epoch; the history sent ends at or after it.
      if (x.start < 1 || x.start > x.index) return `start: expected 1..index (${x.index}), got ${x.start}`;
      return null;
    case MsgType.PbftRequest:
      return x.request.length === 0 ? 'request: expected an encoded request, got 0 bytes' : null;
    case MsgType.PbftPrePrepare:
    case MsgType.PbftPrepare:
    case MsgType.PbftCommit:
      return checkSeq(x.seq) ?? checkDigest(x.digest) ?? checkSig(x.sig);
    case MsgType.PbftCheckpoint:
      return checkRange(x.replica, 'replica', 1, MAX_NODE_ID) ?? checkSeq(x.seq) ?? checkDigest(x.digest) ?? checkSig(x.sig);
    case MsgType.PbftViewChange:
    case MsgType.PbftNewView:
      return x.payload.length === 0 ? 'payload: expected an encoded payload, got 0 bytes' : checkSig(x.sig);
    case MsgType.PbftCommitted:
      return checkSeq(x.seq) ?? (x.commits.length === 0 ? 'commits: expected encoded commit signatures, got 0 bytes' : null);
    case MsgType.PbftFetchState:
      return checkSeq(x.seq);
    case MsgType.PbftFetchRequest:
      return checkSeq(x.seq) ?? checkDigest(x.digest);
    case MsgType.PbftState: {
      const end = x.offset + x.data.length;
      if (end > x.total) return `data: chunk ends at ${end}, beyond total ${x.total}`;
      return checkSeq(x.seq) ?? (x.proof.length === 0 ? 'proof: expected encoded checkpoint signatures, got 0 bytes' : null);
    }
    default:
      return null;
  }
}

/** PBFT: sequence numbers start at 1 (0 is "before the first request"). */
function checkSeq(seq: number): string | null {
  return seq >= 1 ? null : `seq: expected a sequence number ≥ 1, got ${seq}`;
}

/** PBFT digests are SHA-256: 32 bytes (the null request's is 32 zero bytes). */
export const PBFT_DIGEST_BYTES = 32;
function checkDigest(d: Uint8Array): string | null {
  return d.length === PBFT_DIGEST_BYTES ? null : `digest: expected ${PBFT_DIGEST_BYTES} bytes, got ${d.length}`;
}

/** PBFT signatures: 16 (the simulation's stand-in) to 64 bytes (Ed25519); the engine checks the exact length of its scheme. */
export const PBFT_MIN_SIG_BYTES = 16;
export const PBFT_MAX_SIG_BYTES = 64;
function checkSig(sig: Uint8Array): string | null {
  return sig.length >= PBFT_MIN_SIG_BYTES && sig.length <= PBFT_MAX_SIG_BYTES ? null : `sig: expected ${PBFT_MIN_SIG_BYTES}..${PBFT_MAX_SIG_BYTES} bytes, got ${sig.length}`;
}

function checkEnvelope(env: Envelope): string | null {
  if (env === null || typeof env !== 'object') return `envelope: expected {cluster, bootId, seq}, got ${show(env)}`;
  return (
    checkRange(env.cluster, 'cluster', 0, MAX_CLUSTER) ??
    checkRange(env.bootId, 'bootId', 0, MAX_BOOT_ID) ??
    checkRange(env.seq, 'seq', 0, MAX_SEQ)
  );
}

/** The CBOR bytes of a message (no tag). Throws WireEncodeError naming the bad field. */
export function encodeMessage(msg: Message, env: Envelope): Uint8Array {
  return encodeBody(msg, env).finish();
}

/**
 * The one writer the encoder reuses (encoding is synchronous and never re-entered):
 * a fresh CborWriter and its buffer per frame were a measurable share of the
 * simulator's garbage. Callers copy its bytes out before the next encode.
 */
const SHARED_WRITER = new CborWriter(256);

/** Checks and encodes `msg` into SHARED_WRITER (valid until the next call). */
function encodeBody(msg: Message, env: Envelope): CborWriter {
  const problem = checkMessage(msg) ?? checkEnvelope(env);
  if (problem) throw new WireEncodeError(`cannot encode ${MsgType[msg?.type] ?? 'message'}: ${problem}`);
  const layout = layoutOf(msg.type)!;
  const m = msg as unknown as Record<string, unknown>;
  let n = layout.length;
  const lastField = layout[n - 1];
  if (lastField?.kind === 'opt-uint' && m[lastField.name] === undefined) n--;
  const w = SHARED_WRITER.reset();
  w.array(ENVELOPE_ITEMS + n)
    .uint(WIRE_VERSION)
    .uint(msg.type)
    .uint(env.cluster)
    .uint(msg.from)
    .uint(msg.to)
    .uint(msg.term)
    .uint(env.bootId)
    .uint(env.seq);
  for (let i = 0; i < n; i++) {
    const f = layout[i]!;
    const v = m[f.name];
    switch (f.kind) {
      case 'uint':
      case 'opt-uint':
      case 'status':
        w.uint(v as number);
        break;
      case 'bool':
        w.bool(v as boolean);
        break;
      case 'bytes':
        w.bytes(v as Uint8Array);
        break;
      case 'entries': {
        const es = v as Entry[];
        w.array(es.length);
        for (const e of es) w.array(3).uint(e.term).uint(e.type).bytes(e.data);
        break;
      }
      case 'slots': {
        const es = v as PaxosSlot[];
        w.array(es.length);
        for (const e of es) w.array(4).uint(e.ballot).uint(e.origin).uint(e.type).bytes(e.data);
        break;
      }
      case 'config': {
        const c = v as MemberConfig;
        w.array(CONFIG_LISTS.length);
        for (const list of CONFIG_LISTS) {
          w.array(c[list].length);
          for (const id of c[list]) w.uint(id);
        }
        break;
      }
    }
  }
  return w;
}

/**
 * Frames are carved from a shared 16 KiB slab (the way Node's Buffer pool works):
 * `new Uint8Array(n)` costs ~0.3 us (a backing store per frame, ~12% of encodeFrame),
 * a view on an existing ArrayBuffer a small fraction of that. Each frame is its own
 * non-overlapping region, handed out once and never written again by the encoder, so
 * frames stay independent; a slab is never reused, only replaced when full, so a frame
 * stays valid as long as it is referenced. The cost: a frame kept alive keeps its slab
 * (at most 16 KiB) alive. Users of `frame.buffer` must honour byteOffset/byteLength
 * (every one in hal/ does). Frames above a quarter slab get their own buffer.
 */
const FRAME_SLAB_BYTES = 16 * 1024;
let frameSlab = new ArrayBuffer(FRAME_SLAB_BYTES);
let frameSlabUsed = 0;

function allocFrame(n: number): Uint8Array {
  if (n > FRAME_SLAB_BYTES / 4) return new Uint8Array(n);
  if (frameSlabUsed + n > FRAME_SLAB_BYTES) {
    frameSlab = new ArrayBuffer(FRAME_SLAB_BYTES);
    frameSlabUsed = 0;
  }
  const f = new Uint8Array(frameSlab, frameSlabUsed, n);
  frameSlabUsed += n;
  return f;
}

/** encodeMessage followed by the tag under `key`. */
export function encodeFrame(msg: Message, env: Envelope, key: Uint8Array): Uint8Array {
  const w = encodeBody(msg, env);
  const n = w.length;
  const frame = allocFrame(n + TAG_BYTES);
  w.copyTo(frame, 0);
  writeTag(key, frame, frame, n, n);
  return frame;
}

export interface DecodeOptions {
  /** Our cluster id; a frame for another cluster is `unknown-cluster`. */
  cluster: number;
  keyring: Keyring;
  /**
   * Per-sender frame keys (engine pbft, daemon/runtime/pbft-host.ts): the tag is checked
   * under the keyring of the frame's `from` instead of `keyring`, so a member cannot
   * seal a frame in another member's name (and poison its replay window). Undefined for
   * a sender = not a member: `bad-tag`.
   */
  senderKeyring?: (from: number) => Keyring | undefined;
  /** Largest accepted frame, tag included. Default DEFAULT_MAX_FRAME (64 KiB); use SERIAL_MAX_FRAME on serial. */
  maxFrame?: number;
  /** If set, a frame whose `to` differs is `not-for-me`. */
  self?: number;
  /** Test instrumentation: filled with the largest lengths the CBOR reader materialized. */
  stats?: CborReadStats;
}

export type DecodeResult =
  | { ok: true; msg: Message; env: Envelope; keyUsed: 'current' | 'previous' }
  | { ok: false; reason: DropReason; detail: string; /** Set for an authenticated frame dropped as a replay: its sender. */ from?: number };

const fail = (reason: DropReason, detail: string): DecodeResult => ({ ok: false, reason, detail });

/** Throws a clear error for unusable decoder options (a start-up/config bug, never a frame problem). */
export function checkDecodeOptions(opts: DecodeOptions): void {
  if (opts === null || typeof opts !== 'object') throw new TypeError('decode options: expected an object');
  const p = checkRange(opts.cluster, 'decode options: cluster', 0, MAX_CLUSTER);
  if (p) throw new RangeError(p);
  checkKeyring(opts.keyring, 'decode options: keyring');
  if (opts.maxFrame !== undefined) {
    const q = checkRange(opts.maxFrame, 'decode options: maxFrame', MIN_FRAME, 16 * 1024 * 1024);
    if (q) throw new RangeError(q);
  }
  if (opts.self !== undefined) {
    const q = checkRange(opts.self, 'decode options: self', 1, MAX_NODE_ID);
    if (q) throw new RangeError(q);
  }
}

/**
 * Validates and authenticates one frame. Never throws for any input bytes (it throws
 * only for invalid options, see checkDecodeOptions); reads and allocates O(frame
 * length). Order: size → CBOR structure and version → type → cluster → tag → fields
 * → destination. Fields are interpreted only after the tag matched.
 * Replay protection is stateful and lives in FrameOpener/ReplayGuard (auth.ts).
 */
export function decodeFrame(bytes: Uint8Array, opts: DecodeOptions): DecodeResult {
  checkDecodeOptions(opts);
  return decodeFrameChecked(bytes, opts);
}

/**
 * decodeFrame for options that already passed checkDecodeOptions (FrameOpener checks
 * them once at construction and on setKeyring instead of once per frame).
 */
export function decodeFrameChecked(bytes: Uint8Array, opts: DecodeOptions): DecodeResult {
  try {
    return decodeChecked(bytes, opts);
  } catch (e) {
    // Defensive: decodeChecked is written not to throw; if it ever does, the frame is dropped, not the node.
    return fail('malformed', `internal decoder error: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The items of the frame's top-level array, or why they cannot be read. */
function parseItems(bytes: Uint8Array, bodyEnd: number, stats: CborReadStats | undefined): CborValue[] | DecodeResult {
  const r = new Reader(bytes, 0, bodyEnd, stats);
  try {
    const count = r.arrayHead();
    if (count < ENVELOPE_ITEMS) return fail('malformed', `frame: array of ${count} items, expected at least ${ENVELOPE_ITEMS}`);
    r.owe(count); // an item's own claims leave a byte for each later item
    // The version is checked before the rest is parsed: a future version may use other CBOR.
    r.nextItem();
    const version = r.value(1);
    if (version !== WIRE_VERSION) return fail('bad-version', `version: expected ${WIRE_VERSION}, got ${show(version)}`);
    // Sized once (count ≤ the bytes left, checked by arrayHead) rather than grown by push.
    const items: CborValue[] = new Array<CborValue>(count);
    items[0] = version;
    for (let i = 1; i < count; i++) {
      r.nextItem();
      items[i] = r.value(1);
    }
    if (r.pos !== bodyEnd) return fail('malformed', `frame: ${bodyEnd - r.pos} unexpected bytes between the CBOR value and the tag`);
    return items;
  } catch (e) {
    if (e instanceof CborError) return fail(e.reason, e.message);
    throw e;
  }
}

function decodeChecked(bytes: Uint8Array, opts: DecodeOptions): DecodeResult {
  if (!(bytes instanceof Uint8Array)) return fail('malformed', `frame: expected a Uint8Array, got ${show(bytes)}`);
  const maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
  if (bytes.length > maxFrame) return fail('too-large', `frame: ${bytes.length} bytes exceeds maxFrame ${maxFrame}`);
  if (bytes.length < MIN_FRAME) return fail('truncated', `frame: ${bytes.length} bytes is shorter than the minimum ${MIN_FRAME}`);

  const bodyEnd = bytes.length - TAG_BYTES;
  const items = parseItems(bytes, bodyEnd, opts.stats);
  if (!Array.isArray(items)) return items;

  // Indexed, not destructured: array destructuring goes through the iterator protocol (per frame).
  const type = items[1];
  const cluster = items[2];
  const from = items[3];
  const to = items[4];
  const term = items[5];
  const bootId = items[6];
  const seq = items[7];
  const layout = layoutOf(type as number);
  if (!isUint(type) || !layout) return fail('unknown-type', `type: expected a MsgType (${MSG_TYPES.join(', ')}), got ${show(type)}`);
  const cp = checkRange(cluster, 'cluster', 0, MAX_CLUSTER);
  if (cp) return fail('bad-field', cp);
  if (cluster !== opts.cluster) return fail('unknown-cluster', `cluster: ${show(cluster)}, expected ${opts.cluster}`);

  let ring: Keyring | undefined = opts.keyring;
  if (opts.senderKeyring) ring = typeof from === 'number' && from >= 1 && from <= MAX_NODE_ID ? opts.senderKeyring(from) : undefined;
  const keyUsed = ring ? verifyFrameTag(ring, bytes, bodyEnd) : false;
  if (!keyUsed) return fail('bad-tag', opts.senderKeyring ? `tag: does not match sender ${show(from)}'s current or previous frame key` : `tag: does not match the current or previous cluster key (the frame claims sender ${show(from)})`);

  const ep = checkRange(bootId, 'bootId', 0, MAX_BOOT_ID) ?? checkRange(seq, 'seq', 0, MAX_SEQ);
  if (ep) return fail('bad-field', ep);

  const bodyLength = items.length - ENVELOPE_ITEMS;
  const required = REQUIRED_ITEMS.get(type)!;
  if (bodyLength < required || bodyLength > layout.length) {
    const want = required === layout.length ? `${required}` : `${required}..${layout.length}`;
    return fail('bad-field', `body: ${MsgType[type]} has ${want} items, got ${bodyLength}`);
  }
  const m: Record<string, unknown> = { type, from, to, term };
  // Each field's kind is checked here, from the item (an array read), rather than by
  // checkMessage reading every field back by its name (a megamorphic load per field per
  // frame). The first such problem is reported where checkMessage would report it:
  // after the structural problems of this loop and after from/to/term.
  let kindProblem: string | null = null;
  for (let i = 0; i < layout.length; i++) {
    const f = layout[i]!;
    const v = items[ENVELOPE_ITEMS + i];
    if (f.kind === 'opt-uint' && i < bodyLength && v === undefined) {
      return fail('bad-field', `${f.name}: present but undefined; an absent value is encoded by omitting the item`);
    }
    if (f.kind === 'config') {
      if (!Array.isArray(v) || v.length !== CONFIG_LISTS.length) {
        return fail('bad-field', `${f.name}: expected [voters, learners, witnesses], got ${show(v)}`);
      }
      const c: Record<string, unknown> = {};
      CONFIG_LISTS.forEach((list, k) => (c[list] = v[k]));
      m[f.name] = c;
      kindProblem ??= checkField('config', c, f.name);
      continue;
    }
    if (f.kind === 'slots') {
      const problem = checkField('slots', v, f.name);
      if (problem) return fail('bad-field', problem);
      const first = m.first;
      if (!isUint(first)) return fail('bad-field', checkField('uint', first, 'first')!);
      const list = v as CborValue[];
      const slots: PaxosSlot[] = [];
      for (let j = 0; j < list.length; j++) {
        const e = list[j];
        if (!Array.isArray(e) || e.length !== 4) return fail('bad-field', `slots[${j}]: expected [ballot, origin, type, data], got ${show(e)}`);
        slots.push({ index: first + j, ballot: e[0] as number, origin: e[1] as number, type: e[2] as EntryType, data: e[3] as Uint8Array });
      }
      m[f.name] = slots; // checkRules checks every slot
      continue;
    }
    if (f.kind !== 'entries') {
      m[f.name] = v;
      kindProblem ??= checkField(f.kind, v, f.name);
      continue;
    }
    const problem = checkField('entries', v, f.name);
    if (problem) return fail('bad-field', problem);
    const prevIndex = m.prevIndex;
    if (!isUint(prevIndex)) return fail('bad-field', checkField('uint', prevIndex, 'prevIndex')!);
    const list = v as CborValue[];
    const entries: Entry[] = [];
    for (let j = 0; j < list.length; j++) {
      const e = list[j];
      if (!Array.isArray(e) || e.length !== 3) return fail('bad-field', `entries[${j}]: expected [term, type, data], got ${show(e)}`);
      entries.push({ term: e[0] as number, index: prevIndex + 1 + j, type: e[1] as EntryType, data: e[2] as Uint8Array });
    }
    m[f.name] = entries; // an array: its kind check ('entries') passes; checkRules checks the entries
  }
  const problem =
    checkRange(from, 'from', 1, MAX_NODE_ID) ??
    checkRange(to, 'to', 1, MAX_NODE_ID) ??
    checkField('uint', term, 'term') ??
    kindProblem ??
    checkRules(m as unknown as Message);
  if (problem) return fail('bad-field', problem);
  if (opts.self !== undefined && to !== opts.self) return fail('not-for-me', `to: ${show(to)}, this node is ${opts.self}`);
  return { ok: true, msg: m as unknown as Message, env: { cluster: cluster as number, bootId: bootId as number, seq: seq as number }, keyUsed };
}
