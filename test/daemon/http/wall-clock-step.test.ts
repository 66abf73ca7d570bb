/**
 * Durations in the API server are measured on the monotonic clock, not the wall clock.
 * A Pi has no real-time clock: it boots with the time it saved at shutdown, and NTP then
 * steps it, forward or back, by minutes to months. The hold-off for a client that
 * guesses lock leases (429 for `windowMs`) was measured with Date.now(): a step back by
 * an hour kept that client at 429 for the hour.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { call } from '../../../daemon/client/http.ts';
import { FakeBackend } from './fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';

const TOKEN = testToken();
let srv: ApiServer;
let base: string;

beforeAll(async () => {
  srv = await startApiServer(new FakeBackend(), { port: 0, maxBodyBytes: 1024, maxWatchMs: 2000, backstopMs: 300, token: TOKEN, leaseFailures: { max: 2, windowMs: 300 } });
  base = `http://127.0.0.1:${srv.address().port}`;
});
afterAll(() => srv.close());
afterEach(() => vi.restoreAllMocks());

describe('a wall-clock step', () => {
  it('back by an hour does not stretch the wrong-lease hold-off (300 ms here) to an hour', async () => {
    const got = await call(base, 'POST', '/v1/locks/step?ttl=15s&owner=me');
    expect(got.status).toBe(200);
    // Distinct wrong leases (the same one again is not another guess).
    const wrong = `/v1/locks/step?lease=${'w'.repeat(22)}`;
    expect((await call(base, 'DELETE', `/v1/locks/step?lease=${'u'.repeat(22)}`)).status).toBe(409);
    expect((await call(base, 'DELETE', `/v1/locks/step?lease=${'v'.repeat(22)}`)).status).toBe(409);
    expect((await call(base, 'DELETE', wrong)).status).toBe(429);
    const real = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => real() - 3_600_000);
    // The window (300 ms of real time) passes: a wrong lease is a 409 again, not a 429.
    const t0 = performance.now();
    let status = 429;
    for (let i = 0; i < 200 && status === 429 && performance.now() - t0 < 20_000; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await call(base, 'DELETE', wrong)).status;
    }
    expect(status, `still held off ${Math.round(performance.now() - t0)} ms after the clock stepped back`).toBe(409);
  }, 30_000);
});
