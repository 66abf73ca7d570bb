/**
 * Engine pbft in the HTTP API (daemon/http/pbft-headers.ts, docs/api.md "Engine pbft"):
 * the client/seq parameters are checked and named when wrong, the trust and reply
 * headers are set only for pbft answers, and the reply endpoint is refused (501) by a
 * node of another engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { call } from '../../../daemon/client/http.ts';
import { clientRefOf, pbftHeaders } from '../../../daemon/http/pbft-headers.ts';
import { decodeReply, signReply } from '../../../src/pbft/reply.ts';
import { devEd25519Auths } from '../../../src/pbft/auth.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';

const TOKEN = testToken();
let srv: ApiServer;
let base: string;
beforeAll(async () => {
  srv = await startApiServer(new FakeBackend(), { port: 0, token: TOKEN });
  base = `http://127.0.0.1:${srv.address().port}`;
});
afterAll(() => srv.close());

describe('pbft in the HTTP API', () => {
  it('client and seq: together, hex of 8..32 bytes, seq ≥ 1; named when wrong', () => {
    expect(clientRefOf(undefined, undefined)).toBeUndefined();
    expect(clientRefOf('ab'.repeat(8), '3')).toEqual({ id: new Uint8Array(8).fill(0xab), seq: 3 });
    expect(clientRefOf('ab'.repeat(8), undefined)).toMatch(/client and seq go together/);
    expect(clientRefOf('AB'.repeat(8), '1')).toMatch(/client must be 8\.\.32 bytes in lowercase hex/);
    expect(clientRefOf('ab'.repeat(4), '1')).toMatch(/client must be 8\.\.32 bytes/);
    expect(clientRefOf('ab'.repeat(8), '0')).toMatch(/seq: expected an integer ≥ 1/);
    expect(clientRefOf('ab'.repeat(8), '-1')).toMatch(/seq must be an integer ≥ 1/);
  });

  it('headers: none for other engines; trust on every pbft answer; the signed reply when there is one', () => {
    expect(pbftHeaders({ status: 200, index: 3 })).toEqual({});
    expect(pbftHeaders({ status: 404, pbftF: 2 })).toEqual({ 'X-Quorumd-Trust': 'one-node; f=2; need=3' });
    const auth = devEd25519Auths([1, 2, 3, 4]).get(2)!;
    const rep = signReply(auth, { view: 0, origin: 2, reqNo: 9, index: 5, opDigest: new Uint8Array(32), result: new Uint8Array([1]) });
    const h = pbftHeaders({ status: 200, pbftF: 1, pbft: { origin: 2, reqNo: 9, reply: rep } });
    expect(h['X-Quorumd-Request']).toBe('2/9');
    expect(decodeReply(new Uint8Array(Buffer.from(h['X-Quorumd-Reply']!, 'base64')), 64)).toEqual(rep);
  });

  it('bad client/seq on /v1/kv are 400s naming them; /v1/pbft/reply is 501 on another engine', async () => {
    const bad = await call(base, 'PUT', `/v1/kv/k?client=zz&seq=1`, { body: 'v', token: TOKEN });
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).toMatch(/client must be 8\.\.32 bytes in lowercase hex/);
    const mix = await call(base, 'GET', `/v1/kv/k?client=${'ab'.repeat(8)}&seq=1&stale`, { token: TOKEN });
    expect(mix.status).toBe(400);
    expect(mix.body.toString()).toMatch(/do not combine with watch or stale/);
    const r = await call(base, 'GET', `/v1/pbft/reply?client=${'ab'.repeat(8)}&seq=1`, { token: TOKEN });
    expect(r.status).toBe(501);
    // Another engine ignores the pair: the put is an ordinary one (no trust header).
    const ok = await call(base, 'PUT', `/v1/kv/k?client=${'ab'.repeat(8)}&seq=1`, { body: 'v', token: TOKEN });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-quorumd-trust']).toBeUndefined();
  });
});
