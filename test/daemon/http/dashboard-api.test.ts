/**
 * What the dashboard needs of the HTTP API, against an in-process backend: the key
 * and lock listings (token required, parameters checked by name), and /ui itself —
 * served without a token because it holds no data, with its security headers, an
 * ETag that answers 304, and nothing else under /ui. The page in a real browser
 * against a real cluster is test/browser/dashboard.test.ts.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';

let srv: ApiServer;
let b: FakeBackend;
let port = 0;

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
const auth = () => ({ Authorization: `Bearer ${testToken()}` });

beforeAll(async () => {
  b = new FakeBackend();
  srv = await startApiServer(b, { port: 0, backstopMs: 300, token: testToken() });
  port = srv.address().port;
  const put = (k: string, v: string) => new Promise<void>((r) => b.put(k, new TextEncoder().encode(v), {}, () => r()));
  await put('app/a', 'one');
  await put('app/b', 'two!');
  await put('other', 'x');
  await new Promise<void>((r) => b.lockAcquire('backup', 'nightly', 15_000, 'L'.repeat(22), () => r()));
});
afterAll(() => srv.close());

describe('GET /v1/keys and /v1/locks', () => {
  it('lists keys by prefix with sizes and indexes, bounded by limit', async () => {
    const r = await get('/v1/keys?prefix=app%2F', auth());
    expect(r.status).toBe(200);
    const j = JSON.parse(r.body) as { index: number; keys: Array<{ key: string; size: number; modIndex: number }>; more: boolean };
    expect(j.keys.map((k) => [k.key, k.size])).toEqual([['app/a', 3], ['app/b', 4]]);
    expect(j.more).toBe(false);
    expect(j.index).toBeGreaterThan(0);
    const one = JSON.parse((await get('/v1/keys?limit=1', auth())).body) as { keys: unknown[]; more: boolean };
    expect(one.keys).toHaveLength(1);
    expect(one.more).toBe(true);
  });

  it('names a bad parameter, and needs the token', async () => {
    expect(JSON.parse((await get('/v1/keys?limit=0', auth())).body).error).toMatch(/limit must be between 1 and 10000/);
    expect(JSON.parse((await get('/v1/keys?limt=5', auth())).body).error).toMatch(/unknown query parameter "limt"/);
    expect((await get('/v1/keys')).status).toBe(401);
    expect((await get('/v1/locks')).status).toBe(401);
  });

  it('lists locks with holder, token and expiry on the lock clock, never the lease', async () => {
    const r = await get('/v1/locks', auth());
    expect(r.status).toBe(200);
    const j = JSON.parse(r.body) as { clockMs: number; exact: boolean; locks: Array<Record<string, unknown>> };
    expect(j.locks).toHaveLength(1);
    expect(j.locks[0]).toMatchObject({ name: 'backup', owner: 'nightly', ttlMs: 15_000 });
    expect((j.locks[0]!.expiresAt as number) - j.clockMs).toBe(15_000);
    expect(r.body).not.toContain('L'.repeat(22));
    expect(Object.keys(j.locks[0]!).sort()).toEqual(['expiresAt', 'name', 'owner', 'token', 'ttlMs']);
    expect(j).toMatchObject({ more: false });
  });

  it('lists locks by prefix, bounded by limit (the dashboard asks for a page, not megabytes of JSON per poll)', async () => {
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => b.lockAcquire(`page/${i}`, `owner-${i}`, 15_000, `${'P'.repeat(21)}${i}`, () => r()));
    const page = JSON.parse((await get('/v1/locks?prefix=page%2F&limit=3', auth())).body) as { locks: Array<{ name: string }>; more: boolean };
    expect(page.locks.map((l) => l.name)).toEqual(['page/0', 'page/1', 'page/2']);
    expect(page.more).toBe(true);
    const rest = JSON.parse((await get('/v1/locks?prefix=page%2F&limit=5', auth())).body) as { locks: unknown[]; more: boolean };
    expect(rest.locks).toHaveLength(5);
    expect(rest.more).toBe(false);
    // Without limit, every lock, as before (the CLI's lock list).
    expect((JSON.parse((await get('/v1/locks', auth())).body) as { locks: unknown[] }).locks).toHaveLength(6);
    const none = JSON.parse((await get('/v1/locks?prefix=nothing', auth())).body) as { locks: unknown[]; more: boolean };
    expect(none).toMatchObject({ locks: [], more: false });
    for (const [q, msg] of [
      ['limit=0', /limit must be between 1 and 10000, got 0/],
      ['limit=10001', /limit must be between 1 and 10000/],
      ['limit=ten', /limit/],
      [`prefix=${'x'.repeat(257)}`, /prefix must be well-formed text of at most 256 bytes/],
      ['prefix=%ED%A0%80', /prefix|percent/],
      ['limt=5', /unknown query parameter "limt"/],
    ] as const) {
      const r = await get(`/v1/locks?${q}`, auth());
      expect(r.status, q).toBe(400);
      expect(JSON.parse(r.body).error, q).toMatch(msg);
    }
  });
});

describe('GET /ui', () => {
  it('serves the page and its code without a token (no data in them), with strict headers', async () => {
    const r = await get('/ui');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(String(r.headers['content-security-policy'])).toMatch(/script-src 'self';.*frame-ancestors 'none'/);
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.body).toContain('<script src="/ui/dashboard.js">');
    expect(r.body).not.toMatch(/<script>(?!<)/); // no inline script: the CSP forbids it
    expect(r.body).toContain('<script src="/ui/text.js">');
    for (const f of ['/ui/dashboard.js', '/ui/lanes.js', '/ui/text.js', '/ui/uplot.js', '/ui/uplot.css', '/ui/dashboard.css']) {
      const a = await get(f);
      expect(a.status, f).toBe(200);
      expect(a.body.length, f).toBeGreaterThan(100);
    }
    // Small enough for a Pi: the page and everything it loads.
    let total = 0;
    for (const f of ['/ui', '/ui/dashboard.js', '/ui/lanes.js', '/ui/text.js', '/ui/uplot.js', '/ui/uplot.css', '/ui/dashboard.css']) total += (await get(f)).body.length;
    expect(total).toBeLessThan(200 * 1024);
  });

  it('answers 304 to a matching ETag, 404 for anything else under /ui, 405 for a POST', async () => {
    const r = await get('/ui/dashboard.js');
    const etag = String(r.headers.etag);
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect((await get('/ui/dashboard.js', { 'If-None-Match': etag })).status).toBe(304);
    // Paths are not normalised: /ui/../v1/status is a dashboard file that does not exist, never the API.
    const dots = await get('/ui/../v1/status');
    expect(dots.status).toBe(404);
    expect(dots.body).not.toContain('commitIndex');
    expect((await get('/ui/secrets.txt')).status).toBe(404);
    expect((await get('/ui', {}, 'POST')).status).toBe(405);
    // The API itself still needs the token.
    expect((await get('/v1/status')).status).toBe(401);
  });
});
