/**
 * The f + 1 client (daemon/client/pbft.ts) against four small fake pbft nodes on
 * 127.0.0.1 that sign replies with the dev-derived keys: a cluster "executes" a client
 * request once any node took it, after which every node serves its signed reply. One
 * node lies (signs another result), one refuses requests (503). The client returns the
 * result f + 1 signed, retries a refused request on the next node with the same id and
 * seq, checks the operation digest, and without f + 1 names every node and what it said.
 * (The same client against real dev nodes: dev-pbft-client.test.ts.)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PbftClient, PbftClientError } from '../../daemon/client/pbft.ts';
import { derivedPbftAuth, encodeResult } from '../../daemon/runtime/pbft-host.ts';
import { encodeClientOp } from '../../daemon/runtime/pbft-clients.ts';
import { encodeReply, signReply } from '../../src/pbft/reply.ts';
import { sha256 } from '../../src/pbft/encoding.ts';
import { encodeCommand, leaseDigest, type Command } from '../../src/kv/index.ts';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devKeySeed, ed25519Auth, ed25519PrivateKeyFromSeed, type PbftAuth } from '../../src/pbft/auth.ts';
import { good } from './config/helpers.ts';

const KEY = new Uint8Array(32).fill(9);
const MEMBERS = [1, 2, 3, 4];
type Mode = 'honest' | 'liar' | 'refuse';

interface Fake {
  id: number;
  mode: Mode;
  server: Server;
  url: string;
}

/** What the fake cluster executed: (client/seq) → { op digest, result }. */
const executed = new Map<string, { digest: Uint8Array; result: Uint8Array }>();
const requests: string[] = [];
let fakes: Fake[] = [];
/** What the fakes sign with: the keys derived from KEY (cluster 1), or per-board keys (a test sets it). */
let signer: (id: number) => PbftAuth = (id) => derivedPbftAuth(id, MEMBERS, KEY, 1);

function reply(f: Fake, key: string): string | undefined {
  const x = executed.get(key);
  if (!x) return undefined;
  const auth = signer(f.id);
  const result = f.mode === 'liar' ? new Uint8Array(Buffer.from('LIE-')) : x.result;
  return Buffer.from(encodeReply(signReply(auth, { view: 0, origin: 1, reqNo: 5, index: 9, opDigest: x.digest, result }))).toString('base64');
}

/** The lock command a real node proposes for a lock request (server.ts: `now` 0, the lease's digest). */
function lockCommand(u: URL, method: string): Command {
  const renew = u.pathname.endsWith('/renew');
  const name = decodeURIComponent(u.pathname.slice('/v1/locks/'.length, renew ? -'/renew'.length : undefined));
  const lease = leaseDigest(u.searchParams.get('lease')!);
  if (renew) return { op: 'lock.renew', name, lease, now: 0 };
  if (method === 'DELETE') return { op: 'lock.release', name, lease };
  return { op: 'lock.acquire', name, owner: u.searchParams.get('owner')!, ttlMs: Number(/^(\d+)ms$/.exec(u.searchParams.get('ttl')!)![1]), now: 0, lease };
}

async function start(id: number, mode: Mode): Promise<Fake> {
  const f = { id, mode } as Fake;
  f.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url!, 'http://x');
      const key = `${u.searchParams.get('client')}/${u.searchParams.get('seq')}`;
      if (f.mode === 'refuse') {
        if (u.pathname !== '/v1/pbft/reply') requests.push(`${id} ${req.method} ${key}`);
        res.writeHead(503);
        return res.end('{"error":"no quorum"}');
      }
      if (u.pathname === '/v1/pbft/reply') {
        const r = reply(f, key);
        res.writeHead(r ? 200 : 404, r ? { 'X-Quorumd-Reply': r } : {});
        return res.end(r ? JSON.stringify({ replica: id, reply: r }) : '{"error":"none yet"}');
      }
      requests.push(`${id} ${req.method} ${key}`);
      const id16 = Buffer.from(u.searchParams.get('client')!, 'hex');
      const seq = Number(u.searchParams.get('seq'));
      const lock = u.pathname.startsWith('/v1/locks/') ? lockCommand(u, req.method!) : undefined;
      const k = decodeURIComponent(u.pathname.slice('/v1/kv/'.length));
      const op = lock
        ? encodeClientOp({ id: id16, seq, kind: 'write', command: encodeCommand(lock) as Uint8Array })
        : req.method === 'GET'
          ? encodeClientOp({ id: id16, seq, kind: 'read', key: k })
          : encodeClientOp({ id: id16, seq, kind: 'write', command: encodeCommand({ op: 'put', key: k, value: new Uint8Array(Buffer.concat(chunks)) }) as Uint8Array });
      const result = lock ? { status: 200, token: 12, ttlMs: 5000, expiresAt: 9000 } : req.method === 'GET' ? { status: 200, index: 3, value: new Uint8Array(Buffer.from('v')) } : { status: 200, index: 7 };
      if (!executed.has(key)) executed.set(key, { digest: sha256(op), result: encodeResult(result) });
      const r = reply(f, key)!;
      res.writeHead(200, { 'X-Quorumd-Reply': r });
      res.end(req.method === 'GET' ? 'v' : '{"index":7}');
    });
  });
  await new Promise<void>((ok) => f.server.listen(0, '127.0.0.1', ok));
  f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
  return f;
}

beforeAll(async () => {
  fakes = await Promise.all([start(1, 'refuse'), start(2, 'liar'), start(3, 'honest'), start(4, 'honest')]);
});
afterAll(async () => {
  for (const f of fakes) {
    f.server.closeAllConnections();
    await new Promise((ok) => f.server.close(ok));
  }
});

const client = (urls: string[], o: { timeoutMs?: number; retryMs?: number } = {}) =>
  new PbftClient({ nodes: urls, members: MEMBERS, verifier: derivedPbftAuth(1, MEMBERS, KEY, 1), token: 'x'.repeat(20), pollMs: 10, ...o });

describe('the f + 1 client', () => {
  it('returns what f + 1 signed, not the liar\'s word; a refused request goes to the next node with the same id and seq', async () => {
    const c = client(fakes.map((f) => f.url));
    // seq 1 goes to nodes[1] (the liar) first: it "executes" it and lies; n3, n4 agree.
    const w = await c.put('k', 'v');
    expect(w).toMatchObject({ status: 200, index: 7, seq: 1 });
    expect(w.replicas).toEqual([3, 4]);
    // seq 2 goes to nodes[2]; seq 4 to nodes[0], which refuses: retried on nodes[1] with the same seq.
    await c.put('k', 'v');
    await c.put('k', 'v');
    const before = requests.length;
    const r = await c.get('k');
    expect(r.seq).toBe(4);
    expect(new TextDecoder().decode(r.value)).toBe('v');
    const hex = Buffer.from(c.id).toString('hex');
    expect(requests.slice(before)).toEqual([`1 GET ${hex}/4`, `2 GET ${hex}/4`]);
  });

  it('a reply for another operation does not count; without f + 1 the error names every node and what it said', async () => {
    // Only the liar and the refusing node: one lie, no honest reply.
    const c = client([fakes[0]!.url, fakes[1]!.url], { timeoutMs: 1500, retryMs: 300 });
    const e = await c.put('k2', 'v').then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(PbftClientError);
    const msg = (e as PbftClientError).message;
    expect(msg).toMatch(/no f \+ 1 = 2 matching signed replies for request [0-9a-f]{32}\/1 within 1500 ms/);
    expect(msg).toContain(`${fakes[0]!.url}: answered 503`);
    expect(msg).toContain(`${fakes[1]!.url}: replica 2 signed an undecodable result`);
    expect((e as PbftClientError).sent).toBe(true);
    // Same request (k2, seq 1) executed in the cluster by then; another client's put of the
    // same key is another operation: n3's reply for this client's (id, seq) names a digest it does not expect.
    const other = client([fakes[2]!.url, fakes[3]!.url]);
    const key = `${Buffer.from(other.id).toString('hex')}/1`;
    executed.set(key, { digest: new Uint8Array(32), result: encodeResult({ status: 200, index: 1 }) });
    const e2 = await new PbftClient({ nodes: [fakes[2]!.url, fakes[3]!.url], members: MEMBERS, verifier: derivedPbftAuth(1, MEMBERS, KEY, 1), token: 'x'.repeat(20), pollMs: 10, timeoutMs: 800, clientId: other.id })
      .put('k3', 'v').then(() => undefined, (x: unknown) => x);
    expect((e2 as Error).message).toMatch(/replica 3: a reply for another operation/);
  });

  it('locks: the request names the lease the client chose, and the result is what f + 1 signed over the liar', async () => {
    const c = client(fakes.map((f) => f.url));
    await c.put('k', 'v'); // seq 1 → nodes[1], the liar; seq 2 (the acquire) → nodes[2]
    const a = await c.lockAcquire('door', 'alice', 5000);
    expect(a).toMatchObject({ status: 200, token: 12, ttlMs: 5000, seq: 2 });
    expect(a.lease).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a.replicas).toEqual([3, 4]);
    // The fake derived the command from the URL (lease digest, ttl, owner, now 0): the digests matched.
    const r = await c.lockRenew('door', a.lease); // seq 3 → nodes[3]
    expect(r).toMatchObject({ status: 200, token: 12 });
    const d = await c.lockRelease('door', a.lease); // seq 4 → nodes[0] refuses, retried on the liar
    expect(d.status).toBe(200);
    expect(d.replicas).toEqual([3, 4]);
  });

  it('refuses to start with fewer than f + 1 distinct nodes or fewer than 4 members', () => {
    expect(() => client([fakes[2]!.url, fakes[2]!.url])).toThrow(/1 node URL\(s\) given; f \+ 1 = 2 distinct nodes must answer/);
    expect(() => new PbftClient({ nodes: [fakes[2]!.url, fakes[3]!.url], members: [1, 2, 3], verifier: derivedPbftAuth(1, [1, 2, 3], KEY, 1) })).toThrow(/at least 4 members/);
    expect(() => client(['nope', fakes[3]!.url])).toThrow(/is not a URL/);
  });

  it('fromConfig with pbft.publicKeys verifies with those keys: replies signed with them count, replies signed with keys derived from the cluster key do not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qpbftclient-'));
    const priv = new Map<number, KeyObject>(MEMBERS.map((id) => [id, ed25519PrivateKeyFromSeed(devKeySeed(`pbft-client-test-file/${id}`))]));
    const pubs = new Map<number, KeyObject>(MEMBERS.map((id) => [id, createPublicKey(priv.get(id)!)]));
    const names = ['a', 'b', 'c', 'd'];
    try {
      names.forEach((n, i) => writeFileSync(join(dir, `${n}.pub`), pubs.get(i + 1)!.export({ format: 'pem', type: 'spki' })));
      writeFileSync(join(dir, 'a.key'), priv.get(1)!.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
      // The fakes' cluster: key KEY, cluster id 1 (the default), members 1–4.
      const base = good.replace(/key: [0-9a-f]+/, `key: "${Buffer.from(KEY).toString('hex')}"`).replace('{ id: 3, name: c }', '{ id: 3, name: c }\n  - { id: 4, name: d }') + 'engine: pbft\n';
      const withKeys = join(dir, 'keys.yaml');
      writeFileSync(withKeys, `${base}pbft:\n  privateKey: a.key\n  publicKeys:\n${names.map((n) => `    ${n}: ${n}.pub\n`).join('')}`, { mode: 0o600 });
      const derived = join(dir, 'derived.yaml');
      writeFileSync(derived, base, { mode: 0o600 });
      const open = (file: string) => PbftClient.fromConfig(file, [fakes[2]!.url, fakes[3]!.url], { token: 'x'.repeat(20), pollMs: 10, timeoutMs: 800, retryMs: 300 });
      // The fakes sign with the derived keys: the config without key files accepts them, the one with refuses them.
      expect((await open(derived).put('fk', 'v')).status).toBe(200);
      const e = await open(withKeys).put('fk', 'v').then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(PbftClientError);
      expect((e as Error).message).toMatch(/no f \+ 1 = 2 matching signed replies/);
      // The fakes sign with the per-board keys: now the other way round.
      signer = (id) => ed25519Auth(id, priv.get(id)!, pubs);
      const w = await open(withKeys).put('fk', 'v');
      expect(w.status).toBe(200);
      expect(w.replicas).toEqual([3, 4]);
      const e2 = await open(derived).put('fk', 'v').then(() => undefined, (x: unknown) => x);
      expect(e2).toBeInstanceOf(PbftClientError);
    } finally {
      signer = (id) => derivedPbftAuth(id, MEMBERS, KEY, 1);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
