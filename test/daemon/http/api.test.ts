/**
 * The HTTP API contract of docs/api.md against an in-process backend: routes, status
 * codes, error bodies, limits, watch, locks, auth, metrics.
 */
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { call, type Reply } from '../../../daemon/client/http.ts';
import { FakeBackend } from './fake-backend.ts';
import type { JobResetAnswer } from '../../../daemon/http/backend.ts';
import { testToken } from '../../helpers/auth.ts';

const TOKEN = testToken(); // QUORUMD_API_TOKEN_FILE names it: call() finds it as the CLI would

let srv: ApiServer;
let b: FakeBackend;
let base: string;
const req = (m: string, p: string, body?: string | Uint8Array): Promise<Reply> => call(base, m, p, body === undefined ? {} : { body });
const j = (r: Reply) => JSON.parse(r.body.toString()) as Record<string, unknown>;

beforeAll(async () => {
  b = new FakeBackend();
  srv = await startApiServer(b, { port: 0, maxBodyBytes: 1024, maxWatchMs: 2000, backstopMs: 300, token: TOKEN, leaseFailures: { max: 3, windowMs: 60_000 } });
  base = `http://127.0.0.1:${srv.address().port}`;
});
afterAll(() => srv.close());

describe('HTTP API (docs/api.md)', () => {
  it('put, get with X-Quorumd-Index, 404 when absent, delete', async () => {
    const p = await req('PUT', '/v1/kv/a%2Fb', 'v1');
    expect(p.status).toBe(200);
    const idx = j(p).index as number;
    expect(idx).toBeGreaterThan(0);
    const g = await req('GET', '/v1/kv/a%2Fb');
    expect(g.status).toBe(200);
    expect(g.body.toString()).toBe('v1');
    expect(g.headers['x-quorumd-index']).toBe(String(idx));
    expect((await req('GET', '/v1/kv/a/b?stale')).body.toString()).toBe('v1');
    const missing = await req('GET', '/v1/kv/nope');
    expect(missing.status).toBe(404);
    expect(j(missing)).toMatchObject({ code: 'not-found' });
    // HEAD: the GET's status and headers, no body (read scope, as GET).
    const h = await req('HEAD', '/v1/kv/a%2Fb');
    expect(h.status).toBe(200);
    expect(h.headers['content-length']).toBe('2');
    expect(h.headers['x-quorumd-index']).toBe(String(idx));
    expect(h.body.length).toBe(0);
    expect((await req('HEAD', '/v1/kv/nope')).status).toBe(404);
    const d = await req('DELETE', '/v1/kv/a/b');
    expect(d.status).toBe(200);
    expect((await req('GET', '/v1/kv/a/b')).status).toBe(404);
  });

  it('compare-and-set: cas=0 creates only, cas=<index> must match, 409 carries the index', async () => {
    const c1 = await req('PUT', '/v1/kv/c?cas=0', 'x');
    expect(c1.status).toBe(200);
    expect(j(c1)).toMatchObject({ ok: true });
    const i1 = j(c1).index as number;
    const c2 = await req('PUT', '/v1/kv/c?cas=0', 'y');
    expect(c2.status).toBe(409);
    expect(j(c2)).toMatchObject({ ok: false, index: i1 });
    const c3 = await req('PUT', `/v1/kv/c?cas=${i1}`, 'z');
    expect(j(c3)).toMatchObject({ ok: true });
    expect((await req('DELETE', `/v1/kv/c?cas=${i1}`)).status).toBe(409);
    expect((await req('GET', '/v1/kv/c')).body.toString()).toBe('z');
  });

  it('locks: grant with a token that grows and a secret lease; 409 with the holder; renew and release by lease only', async () => {
    const a = await req('POST', '/v1/locks/job?ttl=15s&owner=alice');
    expect(a.status).toBe(200);
    expect(j(a)).toMatchObject({ ttlMs: 15000 });
    const t1 = j(a).token as number;
    const lease = j(a).lease as string;
    expect(lease).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const h = await req('POST', '/v1/locks/job?ttl=15s&owner=bob');
    expect(h.status).toBe(409);
    expect(j(h)).toMatchObject({ holder: 'alice' });
    // The owner name is public: asking as "alice" without her lease is refused too.
    expect((await req('POST', '/v1/locks/job?ttl=15s&owner=alice')).status).toBe(409);
    // The public fencing token releases nothing.
    const byToken = await req('DELETE', `/v1/locks/job?token=${t1}`);
    expect(byToken.status).toBe(400);
    expect(j(byToken).error).toMatch(/lease=/);
    const renewed = await req('POST', `/v1/locks/job/renew?lease=${lease}`);
    expect(renewed.status).toBe(200);
    expect(j(renewed)).toMatchObject({ ok: true, token: t1 });
    const wrong = 'x'.repeat(22);
    expect((await req('POST', `/v1/locks/job/renew?lease=${wrong}`)).status).toBe(409);
    expect((await req('DELETE', `/v1/locks/job?lease=${wrong}`)).status).toBe(409);
    expect((await req('DELETE', `/v1/locks/job?lease=${lease}`)).status).toBe(200);
    // A client-chosen lease makes a retry the same request (same grant, same token).
    const mine = 'my-own-lease-id-0123456789';
    const c1 = await req('POST', `/v1/locks/job?ttl=30s&owner=bob&lease=${mine}`);
    const c2 = await req('POST', `/v1/locks/job?ttl=30s&owner=bob&lease=${mine}`);
    expect(j(c1).token as number).toBeGreaterThan(t1);
    expect(j(c2)).toMatchObject({ token: j(c1).token, lease: mine });
    // Guessing: after 3 distinct wrong leases (this server's limit) the client gets 429
    // without reaching the node. The same wrong lease again is not another guess (x
    // failed twice above and counts once: an application retrying a lapsed release).
    expect((await req('DELETE', `/v1/locks/job?lease=${'y'.repeat(22)}`)).status).toBe(409);
    expect((await req('DELETE', `/v1/locks/job?lease=${wrong}`)).status).toBe(409);
    expect((await req('DELETE', `/v1/locks/job?lease=${'z'.repeat(22)}`)).status).toBe(409);
    const limited = await req('DELETE', `/v1/locks/job?lease=${'w'.repeat(22)}`);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    // A lease this client was granted still works meanwhile: guesses beside the holder
    // (same address, same token, as applications on one board) do not hold it off.
    expect((await req('POST', `/v1/locks/job/renew?lease=${mine}`)).status).toBe(200);
    expect((await req('DELETE', `/v1/locks/job?lease=${mine}`)).status).toBe(200);
    // Released, it is a lease like any other again.
    expect((await req('DELETE', `/v1/locks/job?lease=${mine}`)).status).toBe(429);
  });

  it('watch blocks until the index passes, and returns at the end of wait otherwise', async () => {
    const p = await req('PUT', '/v1/kv/w', 'one');
    const i = j(p).index as number;
    const t0 = performance.now();
    const pending = req('GET', `/v1/kv/w?watch=${i}&wait=2s`);
    setTimeout(() => void req('PUT', '/v1/kv/w', 'two'), 50);
    const r = await pending;
    expect(r.body.toString()).toBe('two');
    expect(Number(r.headers['x-quorumd-index'])).toBeGreaterThan(i);
    const quiet = await req('GET', `/v1/kv/w?watch=${i + 100}&wait=100ms`);
    expect(quiet.status).toBe(200);
    expect(quiet.body.toString()).toBe('two');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((await req('GET', '/v1/kv/w?watch=1&wait=1h')).status).toBe(400);
  });

  it('bad input: 400 naming the problem, 413 for big bodies, 405, 404 for unknown paths', async () => {
    const cases: Array<[string, string, number, RegExp]> = [
      ['PUT', '/v1/kv/k?cas=abc', 400, /cas must be a non-negative integer/],
      ['PUT', '/v1/kv/k?cas=-1', 400, /cas/],
      ['GET', '/v1/kv/k?bogus=1', 400, /unknown query parameter "bogus"/],
      ['GET', '/v1/kv/%E0%A4%A', 400, /percent-encoding/],
      // Well-formed escapes of bytes that are not UTF-8: the message says UTF-8, not only "percent-encoding".
      ['GET', '/v1/kv/%C3%28', 400, /key is not valid percent-encoding of UTF-8 text/],
      ['GET', '/v1/kv/k?stale=%FF', 400, /query parameter "stale=%FF" is not valid percent-encoding of UTF-8 text/],
      ['GET', '/v1/kv/', 400, /key is empty/],
      ['GET', `/v1/kv/${'k'.repeat(300)}`, 400, /at most 256/],
      ['POST', '/v1/locks/x?owner=me', 400, /ttl/],
      ['POST', '/v1/locks/x?ttl=15parsecs&owner=me', 400, /duration/],
      ['POST', '/v1/locks/x?ttl=2d&owner=me', 400, /duration/],
      ['POST', '/v1/locks/x?ttl=15s', 400, /owner/],
      ['DELETE', '/v1/locks/x', 400, /lease/],
      ['POST', '/v1/locks/x/renew?lease=short', 400, /22 to 64 characters/],
      ['PATCH', '/v1/kv/k', 405, /PATCH is not allowed/],
      ['GET', '/v2/nothing', 404, /no such endpoint/],
    ];
    for (const [m, p, status, re] of cases) {
      const r = await req(m, p);
      expect({ p, status: r.status }).toEqual({ p, status });
      expect(j(r).error).toMatch(re);
      expect(typeof j(r).code).toBe('string');
    }
    const big = await req('PUT', '/v1/kv/big', new Uint8Array(2000));
    expect(big.status).toBe(413);
    expect(j(big)).toMatchObject({ code: 'too-large' });
    expect((await req('GET', '/v1/kv/big')).status).toBe(404);
  });

  it('503 = not applied and 504 = unknown are passed through with that meaning; a silent backend is 504', async () => {
    b.mode = 'unavailable';
    const u = await req('PUT', '/v1/kv/m', 'x');
    expect(u.status).toBe(503);
    expect(j(u)).toMatchObject({ code: 'unavailable' });
    b.mode = 'unknown';
    const k = await req('PUT', '/v1/kv/m', 'x');
    expect(k.status).toBe(504);
    expect(j(k)).toMatchObject({ code: 'outcome-unknown' });
    // Said once: added where the node's reason does not say it, not repeated where it does.
    const said = (r: typeof k) => String((j(r) as { error?: unknown }).error).match(/may or may not/g)?.length ?? 0;
    expect(said(k)).toBe(1);
    b.mode = 'unknown-said';
    const k2 = await req('PUT', '/v1/kv/m', 'x');
    expect(k2.status).toBe(504);
    expect(said(k2)).toBe(1);
    b.mode = 'silent';
    // The backstop timer armed for the calls above is still pending (it is left to fire):
    // this call's 504 still comes at its own deadline, not at theirs.
    const t0 = performance.now();
    expect((await req('DELETE', '/v1/kv/m')).status).toBe(504);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(299);
    b.mode = 'ok';
  });

  it('status, leader and Prometheus metrics', async () => {
    expect(j(await req('GET', '/v1/status'))).toMatchObject({ id: 'n1', role: 'leader' });
    expect(j(await req('GET', '/v1/leader'))).toEqual({ leader: 'n1', term: 1, token: 1 });
    // A backend without jobs (engine bully) says so; the Raft backend lists them (test/daemon/jobs-run).
    const jobs = await req('GET', '/v1/jobs');
    expect(jobs.status).toBe(501);
    expect(j(jobs)).toMatchObject({ code: 'engine-unsupported' });
    expect((await req('POST', '/v1/jobs')).status).toBe(405);
    const m = await req('GET', '/metrics');
    expect(m.headers['content-type']).toMatch(/text\/plain; version=0.0.4/);
    const text = m.body.toString();
    expect(text).toMatch(/^# TYPE quorumd_term gauge$/m);
    expect(text).toMatch(/^quorumd_http_responses_total\{code="200"\} \d+$/m);
  });
});

describe('credentials and scopes', () => {
  it('has no unauthenticated mode; 401 without a known token, 403 when the scope is too small', async () => {
    await expect(startApiServer(new FakeBackend(), { port: 0 })).rejects.toThrow(/at least one credential/);
    const s = await startApiServer(new FakeBackend(), {
      port: 0,
      credentials: [
        { name: 'ops', scope: 'operator', token: 'operator-token-0001' },
        { name: 'app', scope: 'write', token: 'write-token-000001' },
        { name: 'grafana', scope: 'read', token: 'read-token-0000001' },
      ],
    });
    const u = `http://127.0.0.1:${s.address().port}`;
    try {
      expect((await call(u, 'GET', '/v1/status', { token: '' })).status).toBe(401);
      expect((await call(u, 'GET', '/metrics', { token: '' })).status).toBe(401);
      expect((await call(u, 'GET', '/v1/status', { token: 'wrong-token-xxxxxxx' })).status).toBe(401);
      for (const t of ['operator-token-0001', 'write-token-000001', 'read-token-0000001']) {
        expect((await call(u, 'GET', '/v1/status', { token: t })).status).toBe(200);
        expect((await call(u, 'GET', '/metrics', { token: t })).status).toBe(200);
      }
      const ro = await call(u, 'PUT', '/v1/kv/a', { token: 'read-token-0000001', body: 'x' });
      expect(ro.status).toBe(403);
      expect(j(ro).error).toMatch(/"grafana" has scope read; PUT \/v1\/kv\/a needs scope write/);
      expect((await call(u, 'POST', '/v1/locks/l?ttl=1s&owner=g', { token: 'read-token-0000001' })).status).toBe(403);
      expect((await call(u, 'PUT', '/v1/kv/a', { token: 'write-token-000001', body: 'x' })).status).toBe(200);
      // Fencing is operator only (the fake backend has none: 501 means it got past auth).
      expect((await call(u, 'POST', '/v1/fence/n2', { token: 'write-token-000001' })).status).toBe(403);
      expect((await call(u, 'POST', '/v1/fence/n2/confirm', { token: 'write-token-000001' })).status).toBe(403);
      expect((await call(u, 'POST', '/v1/fence/n2', { token: 'operator-token-0001' })).status).toBe(501);
      // A job reset is operator only too ("jobs control").
      expect((await call(u, 'POST', '/v1/jobs/tick/reset', { token: 'write-token-000001' })).status).toBe(403);
      expect((await call(u, 'POST', '/v1/jobs/tick/reset', { token: 'operator-token-0001' })).status).toBe(501);
    } finally {
      await s.close();
    }
  });
});

describe('the Date header', () => {
  /** Status and raw header lines of one request (no agent: a connection of its own). */
  const raw = (path: string, headers: Record<string, string>): Promise<{ status: number; raw: string[] }> =>
    new Promise((resolve, reject) => {
      const u = new URL(path, base);
      const r = http.request({ host: u.hostname, port: u.port, path: u.pathname, headers, agent: false, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, raw: res.rawHeaders }));
      });
      r.on('timeout', () => r.destroy(new Error(`no answer to GET ${path} within 10 s`)));
      r.on('error', reject);
      r.end();
    });
  it('is on every kind of answer, once, as an HTTP-date of now', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const etag = (await raw('/ui', {})).raw;
    const tag = etag[etag.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'etag') + 1]!;
    const cases: Array<[string, Record<string, string>, number]> = [
      ['/v1/status', auth, 200],
      ['/v1/kv/no-such-key', auth, 404],
      ['/v1/status', {}, 401],
      ['/ui', { 'If-None-Match': tag }, 304],
    ];
    for (const [path, headers, status] of cases) {
      const r = await raw(path, headers);
      expect(r.status, path).toBe(status);
      const dates = r.raw.filter((h, i) => i % 2 === 1 && r.raw[i - 1]!.toLowerCase() === 'date');
      expect(dates, `${status} ${path}`).toHaveLength(1);
      expect(dates[0]).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      expect(Math.abs(Date.parse(dates[0]!) - Date.now())).toBeLessThan(60_000);
      const names = r.raw.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
      expect(new Set(names).size, `a header twice in ${names.join(', ')}`).toBe(names.length);
    }
  });
});

describe('POST /v1/jobs/<name>/reset', () => {
  /** A backend with jobs: its jobReset answers what the test sets. */
  class JobsBackend extends FakeBackend {
    answer: JobResetAnswer = { status: 200, withdrawn: { slot: '2036-01-01T00:00:00.000Z', node: 'n2', term: 3 }, floor: '2026-12-08T00:00:00.000Z' };
    asked: string[] = [];
    jobs(): unknown[] {
      return [];
    }
    jobReset(job: string, cb: (a: JobResetAnswer) => void): void {
      this.asked.push(job);
      cb(this.answer);
    }
  }

  it('answers the withdrawal, 409 nothing to withdraw, 404, 503, and refuses a bad name, method or path before asking', async () => {
    const b = new JobsBackend();
    const s = await startApiServer(b, { port: 0, token: TOKEN });
    const u = `http://127.0.0.1:${s.address().port}`;
    const post = (p: string) => call(u, 'POST', p);
    try {
      const ok = await post('/v1/jobs/read-meters/reset');
      expect(ok.status).toBe(200);
      expect(j(ok)).toEqual({ ok: true, job: 'read-meters', withdrawn: { slot: '2036-01-01T00:00:00.000Z', node: 'n2', term: 3 }, floor: '2026-12-08T00:00:00.000Z' });
      b.answer = { status: 409, error: 'nothing to withdraw: the latest claim 2026-12-07T23:59:55.000Z is not after the leader\'s clock 2026-12-08T00:00:00.000Z; if the leader\'s clock is the wrong one, fix it first' };
      const none = await post('/v1/jobs/read-meters/reset');
      expect(none.status).toBe(409);
      expect(j(none)).toEqual({ ok: false, job: 'read-meters', code: 'nothing-to-withdraw', error: b.answer.error });
      b.answer = { status: 404, error: 'no job named "x" in this node\'s jobs: list (configured: read-meters)' };
      expect(j(await post('/v1/jobs/x/reset'))).toMatchObject({ code: 'not-found', error: b.answer.error });
      b.answer = { status: 503, error: 'leader 1 is not active (fence n2); the job reset was not proposed' };
      const busy = await post('/v1/jobs/x/reset');
      expect(busy.status).toBe(503);
      expect(j(busy).error).toBe('leader 1 is not active (fence n2); the job reset was not proposed (definitely not applied; safe to retry)');
      expect(b.asked).toEqual(['read-meters', 'read-meters', 'x', 'x']);
      // Bad input never reaches the backend.
      const badName = await post('/v1/jobs/Read%20Meters/reset');
      expect(badName.status).toBe(400);
      expect(j(badName)).toMatchObject({ code: 'bad-job', error: 'job name: expected 1-48 characters a-z, 0-9, \'-\' and \'_\', starting with a letter or digit, got "Read%20Meters"' });
      expect((await post(`/v1/jobs/${'a'.repeat(49)}/reset`)).status).toBe(400);
      expect((await post('/v1/jobs//reset')).status).toBe(400);
      expect((await call(u, 'GET', '/v1/jobs/x/reset')).status).toBe(405);
      expect((await post('/v1/jobs/x/reset?now=1')).status).toBe(400);
      expect((await post('/v1/jobs/x/reset', )).status).toBe(503);
      const other = await post('/v1/jobs/x/rerun');
      expect(other.status).toBe(404);
      expect(j(other).error).toMatch(/jobs: GET \/v1\/jobs, POST \/v1\/jobs\/<name>\/reset/);
      expect(b.asked).toHaveLength(5);
    } finally {
      await s.close();
    }
  });
});
