/**
 * Byzantine behaviours of one PBFT replica, for testing only: the engine harness
 * (test/src/pbft/harness.ts), the simulator's `byzantine` fault kind
 * (daemon/sim/engine-cluster.ts) and `quorumd dev --byzantine-node` use this one
 * saboteur, so that what the tests prove is what the product's lying node does.
 *
 * A Byzantine replica runs the honest engine (it knows the protocol) but its outgoing
 * traffic goes through `outgoing()`, which holds only that replica's own signing key:
 * it equivocates, forges, withholds, corrupts digests, replays what it received, lies
 * in view changes, answers clients wrongly and sends garbage. Pure and deterministic:
 * the randomness is an injected Rng, so a simulation with a liar stays a function of
 * its seed.
 */
import type { Rng } from '../rng.ts';
import type { NodeId } from '../types.ts';
import { EntryType, MsgType, type Message } from '../wire/messages.ts';
import type { PbftAuth } from './auth.ts';
import {
  checkpointSigned, commitSigned, decodeNewView, decodeViewChange, encodeNewView, encodeRequest, encodeViewChange, NULL_DIGEST, ppSigned, prepareSigned,
  requestSigned, sha256,
} from './encoding.ts';

export type ByzKind =
  | 'silent' // sends nothing
  | 'withhold' // drops a random subset of its message types
  | 'equivocate' // as primary: a different PRE-PREPARE to every other backup
  | 'wrong-digest' // PREPAREs and COMMITs for random digests (validly signed)
  | 'forge' // messages that claim to be from another replica
  | 'replay' // re-sends old messages it received
  | 'lie-view-change' // VIEW-CHANGEs without certificates; as new primary a NEW-VIEW that drops prepared requests
  | 'wrong-reply' // signs wrong results for clients, and replies for requests it never executed
  | 'bad-state' // answers state fetches with a doctored snapshot, and commit certificates for other requests
  | 'garbage'; // malformed payloads and requests

export const BYZ_KINDS: readonly ByzKind[] = ['silent', 'withhold', 'equivocate', 'wrong-digest', 'forge', 'replay', 'lie-view-change', 'wrong-reply', 'bad-state', 'garbage'];

/** Parses `a,b,c` into behaviours; throws naming the bad entry (CLI flags, config). */
export function parseByzKinds(spec: string, what = 'byzantine mode'): ByzKind[] {
  if (typeof spec !== 'string' || spec.trim() === '') throw new TypeError(`${what}: expected a comma-separated list of ${BYZ_KINDS.join(', ')}`);
  const out: ByzKind[] = [];
  for (const raw of spec.split(',')) {
    const k = raw.trim();
    if (!(BYZ_KINDS as readonly string[]).includes(k)) throw new RangeError(`${what}: unknown behaviour ${JSON.stringify(k)}; expected some of ${BYZ_KINDS.join(', ')}`);
    if (!out.includes(k as ByzKind)) out.push(k as ByzKind);
  }
  return out;
}

/** The prefix a 'wrong-reply' liar puts before every result it signs. */
export const LIE_PREFIX = 'LIE-';

const WITHHOLDABLE = [
  MsgType.PbftPrePrepare, MsgType.PbftPrepare, MsgType.PbftCommit, MsgType.PbftCheckpoint, MsgType.PbftViewChange, MsgType.PbftNewView, MsgType.PbftStatus,
  MsgType.PbftCommitted, MsgType.PbftState,
] as const;

const enc = new TextEncoder();
const hex = (b: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
};

export interface SaboteurOptions {
  /** The liar's own signer (never another replica's). */
  auth: PbftAuth;
  members: readonly NodeId[];
  kinds: readonly ByzKind[];
  rng: Rng;
  /** Request numbers for made-up requests (shared by several liars in one harness); default a counter from 10^9. */
  nextFakeReq?: () => number;
}

export class Saboteur {
  readonly id: NodeId;
  readonly kinds: ReadonlySet<ByzKind>;
  /** Message types a 'withhold' liar never sends (drawn at construction). */
  readonly withheld = new Set<MsgType>();
  /** What it has received (for replays), at most 400. */
  readonly received: Message[] = [];
  /** Its doctored VIEW-CHANGEs: digest of the honest payload → digest of the lie it sent instead. */
  private readonly lies = new Map<string, Uint8Array>();
  private readonly auth: PbftAuth;
  private readonly members: readonly NodeId[];
  private readonly rng: Rng;
  private readonly nextFakeReq: () => number;
  /** Messages it changed, withheld or made up, and replies it falsified (for logs, status and tests). */
  tampered = 0;

  constructor(o: SaboteurOptions) {
    this.auth = o.auth;
    this.id = o.auth.id;
    this.members = o.members;
    this.kinds = new Set(o.kinds);
    this.rng = o.rng;
    let fake = 1_000_000_000;
    this.nextFakeReq = o.nextFakeReq ?? (() => fake++);
    for (const t of WITHHOLDABLE) if (this.rng.chance(0.5)) this.withheld.add(t);
  }

  has(k: ByzKind): boolean {
    return this.kinds.has(k);
  }

  /** Notes a message it received (replays pick from these). */
  receive(m: Message): void {
    if (this.kinds.has('replay') && this.received.length < 400) this.received.push(m);
  }

  /** The result it signs for a client instead of `result`. */
  replyResult(result: Uint8Array): Uint8Array {
    if (!this.kinds.has('wrong-reply')) return result;
    this.tampered++;
    const out = new Uint8Array(LIE_PREFIX.length + result.length);
    out.set(enc.encode(LIE_PREFIX), 0);
    out.set(result, LIE_PREFIX.length);
    return out;
  }

  private fakeRequest(label: string): { reqNo: number; bytes: Uint8Array } {
    const reqNo = this.nextFakeReq();
    const op = enc.encode(`${label}-${reqNo}`);
    const body = { origin: this.id, reqNo, kind: EntryType.Normal as const, op, sig: this.auth.sign(requestSigned(this.id, reqNo, EntryType.Normal, op)) };
    return { reqNo, bytes: encodeRequest(body) };
  }

  /** What the liar sends instead of what its (honest) engine wanted to send. */
  outgoing(msgs: readonly Message[]): Message[] {
    const k = this.kinds;
    const rng = this.rng;
    const auth = this.auth;
    if (k.has('silent')) return msgs.length > 0 ? (this.tampered++, []) : [];
    const out: Message[] = [];
    const limits = { sigBytes: auth.sigBytes, maxOpBytes: 1 << 20, maxItems: 1 << 12, n: this.members.length };
    for (let m of msgs) {
      const orig = m;
      if (k.has('withhold') && this.withheld.has(m.type)) {
        this.tampered++;
        continue;
      }
      if (k.has('equivocate') && m.type === MsgType.PbftPrePrepare && m.to % 2 === 0) {
        // A different request for the same (view, seq) to every other backup.
        const { bytes } = this.fakeRequest(`evil-${m.seq}`);
        const digest = sha256(bytes);
        m = { ...m, digest, sig: auth.sign(ppSigned(m.term, m.seq, digest)), request: bytes };
      }
      if (k.has('wrong-digest') && (m.type === MsgType.PbftPrepare || m.type === MsgType.PbftCommit) && rng.chance(0.7)) {
        const digest = sha256(enc.encode(`junk-${rng.u32()}`));
        const content = m.type === MsgType.PbftPrepare ? prepareSigned(m.term, m.seq, digest, this.id) : commitSigned(m.term, m.seq, digest, this.id);
        m = { ...m, digest, sig: auth.sign(content) };
      }
      if (k.has('lie-view-change') && m.type === MsgType.PbftViewChange) {
        const b = decodeViewChange(m.payload, limits);
        if (typeof b !== 'string' && b.replica === this.id) {
          const payload = encodeViewChange({ ...b, certs: [] }); // "I prepared nothing"
          this.lies.set(hex(sha256(m.payload)), sha256(payload));
          m = { ...m, payload, sig: auth.sign(payload) };
        }
      }
      if (k.has('lie-view-change') && m.type === MsgType.PbftNewView) {
        const b = decodeNewView(m.payload, limits);
        if (typeof b !== 'string') {
          // Names the lies it told (so the backups hold every VIEW-CHANGE it names and
          // must recompute O to see through it), then re-proposes nothing: every
          // prepared request becomes a null request.
          const vcs = b.vcs.map((v) => ({ replica: v.replica, digest: this.lies.get(hex(v.digest)) ?? v.digest }));
          const pps = b.pps.map((p) => ({ seq: p.seq, digest: NULL_DIGEST, sig: auth.sign(ppSigned(b.view, p.seq, NULL_DIGEST)) }));
          const payload = encodeNewView({ ...b, vcs, pps });
          m = { ...m, payload, sig: auth.sign(payload) };
        }
      }
      if (k.has('bad-state') && m.type === MsgType.PbftState && m.data.length > 0) {
        const data = m.data.slice();
        data[rng.int(0, data.length - 1)]! ^= 0x40;
        m = { ...m, data };
      }
      if (k.has('bad-state') && m.type === MsgType.PbftCommitted && m.request.length > 0) {
        // The same commit signatures, another request: the digest no longer matches them.
        m = { ...m, request: this.fakeRequest(`swapped-${m.seq}`).bytes };
      }
      if (k.has('forge') && rng.chance(0.3)) {
        const other = this.members.filter((x) => x !== this.id && x !== m.to);
        const who = rng.pick(other);
        if (m.type === MsgType.PbftCheckpoint) m = { ...m, replica: who };
        else m = { ...m, from: who };
        if (m.type === MsgType.PbftPrepare) m = { ...m, sig: auth.sign(prepareSigned(m.term, m.seq, m.digest, who)) };
        if (m.type === MsgType.PbftCheckpoint) m = { ...m, sig: auth.sign(checkpointSigned(m.seq, m.digest, who)) };
      }
      if (m !== orig) this.tampered++;
      out.push(m);
    }
    if (k.has('replay') && this.received.length > 0) {
      for (let i = 0; i < 3; i++) {
        const old = rng.pick(this.received);
        const to = rng.pick(this.members.filter((x) => x !== old.from));
        out.push({ ...old, to } as Message);
        this.tampered++;
      }
    }
    if (k.has('garbage') && rng.chance(0.3)) {
      const to = rng.pick(this.members.filter((x) => x !== this.id));
      const junk = Uint8Array.from({ length: rng.int(1, 40) }, () => rng.int(0, 255));
      const pick = rng.int(0, 4);
      const from = this.id;
      if (pick === 0) out.push({ type: MsgType.PbftRequest, from, to, term: 0, request: junk });
      else if (pick === 1) out.push({ type: MsgType.PbftViewChange, from, to, term: rng.int(1, 50), payload: junk, sig: junk.length >= 16 ? junk.subarray(0, 16) : new Uint8Array(16) });
      else if (pick === 2) out.push({ type: MsgType.PbftCommitted, from, to, term: rng.int(0, 5), seq: rng.int(1, 100), request: junk, commits: junk });
      else if (pick === 3) out.push({ type: MsgType.PbftState, from, to, term: 0, seq: rng.int(1, 100), proof: junk, exec: junk, offset: 0, total: junk.length, data: junk });
      else out.push({ type: MsgType.PbftNewView, from, to, term: rng.int(1, 50), payload: junk, sig: new Uint8Array(16) });
      this.tampered++;
    }
    return out;
  }
}
