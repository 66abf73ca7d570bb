/**
 * The HTTP API over TLS (http.tls): HTTPS with the node's certificate, optionally
 * client certificates (clientCaFile), and the bearer token still required on top.
 * The CLI's client trusts QUORUMD_API_CA_FILE and presents QUORUMD_API_CERT_FILE /
 * QUORUMD_API_KEY_FILE (daemon/client/http.ts).
 */
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { call } from '../../../daemon/client/http.ts';
import { makeCerts, type Certs } from '../../hal/mqtt/helpers.ts';
import { FakeBackend } from './fake-backend.ts';

const TOKEN = 'tls-test-token-000000';
let certs: Certs;
let plain: ApiServer;
let mutual: ApiServer;

beforeAll(async () => {
  certs = makeCerts();
  // The client side reads these once, at its first https request.
  process.env.QUORUMD_API_CA_FILE = join(certs.dir, 'ca.pem');
  process.env.QUORUMD_API_CERT_FILE = join(certs.dir, 'client.pem');
  process.env.QUORUMD_API_KEY_FILE = join(certs.dir, 'client.key');
  plain = await startApiServer(new FakeBackend(), { port: 0, token: TOKEN, tls: { cert: certs.serverCert, key: certs.serverKey } });
  mutual = await startApiServer(new FakeBackend(), { port: 0, token: TOKEN, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
});
afterAll(async () => {
  await plain?.close();
  await mutual?.close();
  certs?.cleanup();
});

describe('HTTP API over TLS', () => {
  it('answers https with the token, 401 without; plain http to it fails', async () => {
    const u = `https://127.0.0.1:${plain.address().port}`;
    expect((await call(u, 'GET', '/v1/status', { token: TOKEN })).status).toBe(200);
    expect((await call(u, 'GET', '/v1/status', { token: '' })).status).toBe(401);
    await expect(call(`http://127.0.0.1:${plain.address().port}`, 'GET', '/v1/status', { token: TOKEN, timeoutMs: 3000 })).rejects.toThrow();
  });

  it('with a client CA: a client certificate signed by it gets in (the token is still needed)', async () => {
    const u = `https://127.0.0.1:${mutual.address().port}`;
    expect((await call(u, 'GET', '/v1/status', { token: TOKEN })).status).toBe(200);
    expect((await call(u, 'GET', '/v1/status', { token: '' })).status).toBe(401);
    // Without a client certificate the TLS handshake itself is refused.
    const err = await new Promise<Error | undefined>((resolve) => {
      const r = request({ host: '127.0.0.1', port: mutual.address().port, path: '/v1/status', ca: certs.ca, headers: { Authorization: `Bearer ${TOKEN}` } }, (res) => {
        res.resume();
        resolve(undefined);
      });
      r.on('error', (e) => resolve(e));
      r.end();
    });
    expect(err).toBeDefined();
  });
});
