/**
 * The PBFT client: a result counts only when f + 1 replicas signed the same one
 * (Castro & Liskov, OSDI 1999, §4.1: "the client waits for f + 1 replies with valid
 * signatures from different replicas, and with the same timestamp and result"). One
 * node's HTTP answer is that node's word (docs/api.md "Engine pbft"), so this client:
 *
 *   1. names the request: a random client id (per PbftClient) and a request number
 *      `seq` that grows per request (the paper's timestamp), sent as ?client=&seq=;
 *   2. computes the operation bytes the replicas must execute (daemon/runtime/
 *      pbft-clients.ts encodeClientOp) and so their digest;
 *   3. sends the request to one node and, at the same time, asks every node for its
 *      signed reply of (client, seq) (GET /v1/pbft/reply), polling until f + 1 valid
 *      replies of distinct replicas name that digest and the same result;
 *   4. when the node it asked fails (refused, 503, 5xx) or has not answered within
 *      `retryMs`, sends the same request (same id and seq) to the next node: the
 *      replicated client table executes it once however many nodes propose it;
 *   5. gives up after `timeoutMs` with an error naming every node and what it said.
 *
 * Keys: the client verifies the replicas' Ed25519 signatures. Without per-node key files
 * the members' keys derive from the cluster key (daemon/runtime/pbft-host.ts), so the
 * client needs the cluster key, the cluster id and the member ids: `fromConfig` takes
 * them from a node's config file (any member's: they share cluster and members).
 */
import { randomBytes } from 'node:crypto';
import { loadConfigFile } from '../config/load.ts';
import { call, ClientError, enc, nodeUrl, type Reply } from './http.ts';
import { decodeReply, verifyReply, type PbftReply } from '../../src/pbft/reply.ts';
import { sha256, bytesEqual } from '../../src/pbft/encoding.ts';
import { ed25519Auth, type PbftAuth } from '../../src/pbft/auth.ts';
import { encodeCommand, KvError, leaseDigest, type Command } from '../../src/kv/index.ts';
import type { NodeId } from '../../src/types.ts';
import { encodeClientOp, type ClientOp } from '../runtime/pbft-clients.ts';
import { decodeResult, derivedPbftAuth } from '../runtime/pbft-host.ts';
import type { ClientResult } from '../runtime/results.ts';

export interface PbftClientOptions {
  /** API URLs of the nodes (all of them, or at least f + 1; 2f + 1 to survive f silent ones). */
  nodes: string[];
  /** Replica ids of the cluster's voters. */
  members: NodeId[];
  /** Checks a replica's signature (only `verify` is used). */
  verifier: Pick<PbftAuth, 'verify' | 'sigBytes'>;
  /** Bearer token for the API (default: as `call` finds it). */
  token?: string;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Send the request to the next node when the one asked has not answered within this (default 3 s). */
  retryMs?: number;
  /** Poll period of GET /v1/pbft/reply (default 50 ms; at once when the asked node answers). */
  pollMs?: number;
  /** The client id (default: 16 random bytes). A client that restarts takes a new one. */
  clientId?: Uint8Array;
}

/** A result that f + 1 replicas signed. */
export interface CertifiedResult extends ClientResult {
  /** The replicas whose matching signed replies back it. */
  replicas: NodeId[];
  seq: number;
}

export class PbftClientError extends Error {
  override readonly name = 'PbftClientError';
  constructor(
    message: string,
    /** The request may have executed (it was sent to a node): its outcome is unknown. */
    readonly sent: boolean,
  ) {
    super(message);
  }
}

interface NodeNote {
  url: string;
  /** What the node said, for the error message. */
  said: string;
}

export class PbftClient {
  readonly id: Uint8Array;
  readonly f: number;
  private seq = 0;
  private readonly o: Required<Omit<PbftClientOptions, 'token' | 'clientId'>> & { token?: string };

  constructor(o: PbftClientOptions) {
    if (!Array.isArray(o.nodes) || o.nodes.length === 0) throw new ClientError('pbft client: expected at least one node URL');
    for (const u of o.nodes) nodeUrl(u);
    if (!Array.isArray(o.members) || o.members.length < 4) throw new ClientError(`pbft client: expected the ids of at least 4 members (n = 3f + 1), got ${JSON.stringify(o.members)}`);
    this.f = Math.floor((o.members.length - 1) / 3);
    if (new Set(o.nodes).size < this.f + 1) throw new ClientError(`pbft client: ${new Set(o.nodes).size} node URL(s) given; f + 1 = ${this.f + 1} distinct nodes must answer (give all ${o.members.length})`);
    this.id = o.clientId ?? new Uint8Array(randomBytes(16));
    this.o = { timeoutMs: 10_000, retryMs: 3000, pollMs: 50, ...o, nodes: [...new Set(o.nodes)] };
  }

  /**
   * A client for the cluster of a node's config file (engine pbft; the members' keys of its
   * pbft.publicKeys, else derived from its cluster key) and the given node URLs.
   */
  static fromConfig(configFile: string, nodes: string[], o: Partial<PbftClientOptions> = {}): PbftClient {
    const rc = loadConfigFile(configFile);
    if (rc.config.engine !== 'pbft') throw new ClientError(`${configFile}: engine is ${rc.config.engine}, not pbft: the f + 1 client is for engine pbft`);
    const members = rc.config.members.filter((m) => (m.role ?? 'voter') === 'voter').map((m) => m.id);
    // With pbft.publicKeys: the members' configured public keys (the config's board's own
    // signer, of which only verify is used); without: keys derived from the cluster key.
    const verifier = rc.pbftKeys ? ed25519Auth(rc.self.id, rc.pbftKeys.privateKey, rc.pbftKeys.publicKeys) : derivedPbftAuth(members[0]!, members, rc.key, rc.config.cluster.id);
    return new PbftClient({ ...o, nodes, members, verifier });
  }

  get(key: string): Promise<CertifiedResult> {
    return this.run({ kind: 'read', key }, (seq) => ['GET', `/v1/kv/${enc(key)}?${this.q(seq)}`, undefined]);
  }

  put(key: string, value: Uint8Array | string, o: { cas?: number } = {}): Promise<CertifiedResult> {
    const v = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    const cmd: Command = o.cas === undefined ? { op: 'put', key, value: v } : { op: 'put', key, value: v, cas: o.cas };
    return this.run({ kind: 'write', command: cmd }, (seq) => ['PUT', `/v1/kv/${enc(key)}?${this.q(seq)}${o.cas !== undefined ? `&cas=${o.cas}` : ''}`, v]);
  }

  del(key: string, o: { cas?: number } = {}): Promise<CertifiedResult> {
    const cmd: Command = o.cas === undefined ? { op: 'del', key } : { op: 'del', key, cas: o.cas };
    return this.run({ kind: 'write', command: cmd }, (seq) => ['DELETE', `/v1/kv/${enc(key)}?${this.q(seq)}${o.cas !== undefined ? `&cas=${o.cas}` : ''}`, undefined]);
  }

  /**
   * Acquires lock `name` for `owner` for `ttlMs`: 200 with the fencing token, or 409
   * with the holder, as f + 1 replicas signed it. The lock executes at the replicas'
   * agreed time (daemon/runtime/pbft-time.ts); the lease id is this client's secret
   * (a fresh one unless given) and is needed to renew and release.
   */
  async lockAcquire(name: string, owner: string, ttlMs: number, lease: string = randomBytes(16).toString('base64url')): Promise<CertifiedResult & { lease: string }> {
    const cmd: Command = { op: 'lock.acquire', name, owner, ttlMs, now: 0, lease: leaseDigest(lease) };
    const r = await this.run({ kind: 'write', command: cmd }, (seq) => ['POST', `/v1/locks/${enc(name)}?ttl=${ttlMs}ms&owner=${enc(owner)}&lease=${enc(lease)}&${this.q(seq)}`, undefined]);
    return { ...r, lease };
  }

  /** Renews the grant of `lease`: 200 with the new expiry on the agreed time line, or 409. */
  lockRenew(name: string, lease: string): Promise<CertifiedResult> {
    const cmd: Command = { op: 'lock.renew', name, lease: leaseDigest(lease), now: 0 };
    return this.run({ kind: 'write', command: cmd }, (seq) => ['POST', `/v1/locks/${enc(name)}/renew?lease=${enc(lease)}&${this.q(seq)}`, undefined]);
  }

  /** Releases the grant of `lease`: 200, or 409 when `lease` does not hold it. */
  lockRelease(name: string, lease: string): Promise<CertifiedResult> {
    const cmd: Command = { op: 'lock.release', name, lease: leaseDigest(lease) };
    return this.run({ kind: 'write', command: cmd }, (seq) => ['DELETE', `/v1/locks/${enc(name)}?lease=${enc(lease)}&${this.q(seq)}`, undefined]);
  }

  private q(seq: number): string {
    return `client=${Buffer.from(this.id).toString('hex')}&seq=${seq}`;
  }

  private async run(what: { kind: 'read'; key: string } | { kind: 'write'; command: Command }, request: (seq: number) => [string, string, Uint8Array | undefined]): Promise<CertifiedResult> {
    const seq = ++this.seq;
    let op: ClientOp;
    if (what.kind === 'write') {
      const c = encodeCommand(what.command);
      if (c instanceof KvError) throw new ClientError(c.message, { notSent: true });
      op = { id: this.id, seq, kind: 'write', command: c };
    } else op = { id: this.id, seq, kind: 'read', key: what.key };
    const digest = sha256(encodeClientOp(op));
    const nodes = this.o.nodes;
    const notes = new Map<string, NodeNote>(nodes.map((u) => [u, { url: u, said: 'no answer yet' }]));
    const replies = new Map<string, PbftReply>(); // by node URL: the newest reply it gave
    const deadline = performance.now() + this.o.timeoutMs;
    const [method, path, body] = request(seq);
    let sent = false;
    // The node asked first: spread requests over the nodes.
    let next = seq % nodes.length;
    let asked = 0;
    let askedAt = 0;
    let inFlight = false;
    // Nodes whose note is their answer to the request itself: a later failed poll does not hide it.
    const answered = new Set<string>();
    // The asked node's answer comes once it executed the request: the others likely did too, so poll at once.
    let wake: (() => void) | undefined;

    const take = (url: string, r: Reply): void => {
      const h = r.headers['x-quorumd-reply'];
      const b64 = typeof h === 'string' ? h : undefined;
      if (!b64) return;
      const rep = decodeReply(new Uint8Array(Buffer.from(b64, 'base64')), this.o.verifier.sigBytes);
      if (typeof rep === 'string') {
        notes.get(url)!.said = `an undecodable reply (${rep})`;
        return;
      }
      replies.set(url, rep);
    };
    const ask = (): void => {
      const url = nodes[next % nodes.length]!;
      next++;
      asked++;
      askedAt = performance.now();
      inFlight = true;
      const timeoutMs = Math.max(1, Math.min(this.o.retryMs, deadline - performance.now()));
      call(url, method, path, { ...(body ? { body } : {}), ...(this.o.token ? { token: this.o.token } : {}), timeoutMs })
        .then((r) => {
          sent = true;
          take(url, r);
          if (r.status !== 200 && r.status !== 404 && r.status !== 409) {
            notes.get(url)!.said = `answered ${r.status} to the request: ${errorText(r)}`;
            answered.add(url);
            askedAt = 0; // try the next node now
          }
        })
        .catch((e: unknown) => {
          if (!(e instanceof ClientError && e.notSent)) sent = true;
          notes.get(url)!.said = `request failed: ${(e as Error).message}`;
          answered.add(url);
          askedAt = 0;
        })
        .finally(() => {
          inFlight = false;
          wake?.();
        });
    };
    const poll = async (url: string): Promise<void> => {
      try {
        const r = await call(url, 'GET', `/v1/pbft/reply?${this.q(seq)}`, { ...(this.o.token ? { token: this.o.token } : {}), timeoutMs: Math.max(1, Math.min(2000, deadline - performance.now())) });
        if (r.status === 200) take(url, r);
        else if (!replies.has(url) && !answered.has(url)) notes.get(url)!.said = r.status === 404 ? 'no signed reply yet' : `answered ${r.status} for its reply: ${errorText(r)}`;
      } catch (e) {
        if (!replies.has(url) && !answered.has(url)) notes.get(url)!.said = `reply poll failed: ${(e as Error).message}`;
      }
    };

    ask();
    for (let round = 0; performance.now() < deadline && round < 100_000; round++) {
      const verdict = this.judge([...replies.entries()], digest, notes);
      if (verdict) {
        const res = decodeResult(verdict.result);
        if (res instanceof Error) throw new PbftClientError(`f + 1 replicas (${verdict.replicas.join(', ')}) signed a result this client cannot decode: ${res.message}`, true);
        return { ...res, replicas: verdict.replicas, seq };
      }
      // The asked node failed or is slow: the same request (same id and seq) to the next one.
      if (!inFlight && (askedAt === 0 || performance.now() - askedAt >= this.o.retryMs) && asked < nodes.length * 3) ask();
      if (deadline - performance.now() < 50) break; // a poll this short would only overwrite what the nodes said with a timeout
      await Promise.all(nodes.map((u) => poll(u)));
      if (this.judge([...replies.entries()], digest, notes)) continue;
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.o.pollMs);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      wake = undefined;
    }
    this.judge([...replies.entries()], digest, notes); // fills the notes
    const lines = [...notes.values()].map((n) => `  ${n.url}: ${n.said}`).join('\n');
    throw new PbftClientError(
      `no f + 1 = ${this.f + 1} matching signed replies for request ${Buffer.from(this.id).toString('hex')}/${seq} within ${this.o.timeoutMs} ms (${asked} node(s) asked); what each node said:\n${lines}`,
      sent,
    );
  }

  /**
   * f + 1 valid replies of distinct replicas for this operation digest with equal
   * results, or undefined; writes what each node's reply was into `notes`.
   */
  private judge(replies: Array<[string, PbftReply]>, digest: Uint8Array, notes: Map<string, NodeNote>): { result: Uint8Array; replicas: NodeId[] } | undefined {
    const groups: Array<{ result: Uint8Array; replicas: Set<NodeId> }> = [];
    for (const [url, r] of replies) {
      const note = notes.get(url)!;
      if (!this.o.members.includes(r.replica)) {
        note.said = `a reply signed as ${r.replica}, not a member`;
        continue;
      }
      if (!bytesEqual(r.opDigest, digest)) {
        note.said = `replica ${r.replica}: a reply for another operation (digest ${hex8(r.opDigest)}, expected ${hex8(digest)})`;
        continue;
      }
      if (!verifyReply(this.o.verifier, r)) {
        note.said = `replica ${r.replica}: a reply whose signature does not verify`;
        continue;
      }
      note.said = `replica ${r.replica} signed ${describeResult(r.result)} (index ${r.index}, request ${r.origin}/${r.reqNo})`;
      let g = groups.find((x) => bytesEqual(x.result, r.result));
      if (!g) groups.push((g = { result: r.result, replicas: new Set() }));
      g.replicas.add(r.replica);
      if (g.replicas.size >= this.f + 1) return { result: g.result, replicas: [...g.replicas].sort((a, b) => a - b) };
    }
    if (groups.length > 1) for (const n of notes.values()) if (n.said.startsWith('replica ')) n.said += ' — replies disagree';
    return undefined;
  }
}

function hex8(b: Uint8Array): string {
  return Buffer.from(b.subarray(0, 4)).toString('hex');
}

function errorText(r: Reply): string {
  const t = r.body.toString('utf8').trim();
  try {
    const j = JSON.parse(t) as { error?: string };
    if (j.error) return j.error;
  } catch {
    /* raw */
  }
  return t.slice(0, 200);
}

/** A signed result for humans: status, index, value (or "an undecodable result" for a liar's bytes). */
export function describeResult(b: Uint8Array): string {
  const r = decodeResult(b);
  if (r instanceof Error) return `an undecodable result (${JSON.stringify(Buffer.from(b.subarray(0, 24)).toString('latin1'))}…)`;
  const v = r.value !== undefined ? ` value ${JSON.stringify(Buffer.from(r.value.subarray(0, 40)).toString('utf8'))}` : '';
  return `status ${r.status}${r.index !== undefined ? ` index ${r.index}` : ''}${v}`;
}
