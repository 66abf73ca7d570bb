/**
 * UTC instants as text without Date's string methods (daemon/utc-text.ts): the same text
 * as toISOString / toUTCString for every instant, and the node's log and HTTP servers
 * use it (a Date-to-text conversion loads ICU's zone names, ~1 MiB per process).
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { httpDate, httpDateNow, isoUtc } from '../../daemon/utc-text.ts';
import { createNodeLog } from '../../daemon/log.ts';
import { startApiServer } from '../../daemon/http/server.ts';
import { startRailServer } from '../../daemon/fencing/dev-relay.ts';
import { FakeBackend } from './http/fake-backend.ts';
import { testToken } from '../helpers/auth.ts';

/** mulberry32: the same instants on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DAY = 86_400_000;
const Y10000 = 253_402_300_800_000;

/** Where isoUtc / httpDate write other text than Date for the instants of `each` (first 5). */
function differences(each: (check: (ms: number) => void) => void): string[] {
  const out: string[] = [];
  each((ms) => {
    if (out.length >= 5) return;
    const iso = new Date(ms).toISOString();
    const http = new Date(ms).toUTCString();
    if (isoUtc(ms) !== iso) out.push(`isoUtc(${ms}) = ${isoUtc(ms)}, Date: ${iso}`);
    if (httpDate(ms) !== http) out.push(`httpDate(${ms}) = ${httpDate(ms)}, Date: ${http}`);
  });
  return out;
}

describe('isoUtc and httpDate', () => {
  it('write what Date writes at the edges of days, months, leap years and the range', () => {
    const edges = [
      0, 1, 999, 1000, DAY - 1, DAY,
      Date.UTC(1972, 1, 29), Date.UTC(1972, 2, 1) - 1, // a leap day
      Date.UTC(2000, 1, 29, 12), Date.UTC(2000, 2, 1) - 1, // divisible by 400: leap
      Date.UTC(2100, 1, 28, 23, 59, 59, 999), Date.UTC(2100, 2, 1), // divisible by 100: not
      Date.UTC(2026, 11, 6, 8, 49, 37, 123), Date.UTC(2038, 0, 19, 3, 14, 8), // 2^31 s
      Y10000 - 1, // 9999-12-31T23:59:59.999Z, the last in the common range
      1.7, 1_700_000_000_000.9, // fractions of a millisecond: truncated, as Date does
      Y10000, Y10000 + DAY * 400, -1, -DAY * 365 * 2000, 8.64e15, -8.64e15, // Date's own path
    ];
    expect(differences((check) => edges.forEach(check))).toEqual([]);
  });

  it('write what Date writes on every day from 1968 to 2430, at its first and last millisecond', () => {
    const days = (check: (ms: number) => void) => {
      for (let d = Math.floor(Date.UTC(1968, 0, 1) / DAY); d < Date.UTC(2430, 0, 1) / DAY; d++) {
        check(d * DAY);
        check(d * DAY + DAY - 1);
      }
    };
    expect(differences(days)).toEqual([]);
  });

  it('write what Date writes for 50,000 instants spread over 1970–9999', () => {
    const r = rng(14);
    expect(differences((check) => {
      for (let i = 0; i < 50_000; i++) check(Math.floor(r() * Y10000));
    })).toEqual([]);
  });

  it('throw the RangeError Date throws for a time that is no time', () => {
    for (const bad of [NaN, Infinity, -Infinity, 8.64e15 + 1]) {
      expect(() => isoUtc(bad)).toThrow(RangeError);
      expect(httpDate(bad)).toBe(new Date(bad).toUTCString()); // "Invalid Date", as Node would send it
    }
  });
});

describe("the node's log and HTTP answers", () => {
  const dateToText = ['toISOString', 'toUTCString', 'toString', 'toJSON', 'toLocaleString'] as const;
  afterEach(() => vi.restoreAllMocks());
  const spyAll = () => dateToText.map((m) => vi.spyOn(Date.prototype, m));
  const calls = (spies: ReturnType<typeof spyAll>) => spies.map((s, i) => `${dateToText[i]}: ${s.mock.calls.length}`).join(', ');

  it('time-stamp log lines without converting a Date to text', () => {
    const spies = spyAll();
    const lines: string[] = [];
    const log = createNodeLog('info', { node: 'n1' }, (l) => void lines.push(l));
    const before = Date.now();
    log.info('node started');
    const after = Date.now();
    expect(calls(spies)).toBe(dateToText.map((m) => `${m}: 0`).join(', '));
    const time = Date.parse((JSON.parse(lines[0]!) as { time: string }).time);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);
  });

  it('send a Date header of the current second, written without Date, from the API and the rail server', async () => {
    const token = testToken();
    const api = await startApiServer(new FakeBackend(), { port: 0, token });
    const rails = await startRailServer({ token, get: () => true, set: (_n, on) => on });
    try {
      const spies = spyAll();
      const dateOf = (port: number, path: string) =>
        new Promise<string | undefined>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path, headers: { Authorization: `Bearer ${token}` } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.headers.date));
          });
          req.on('error', reject);
          req.setTimeout(30_000, () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${path} within 30 s`)));
          req.end();
        });
      for (const [port, path] of [[api.address().port, '/v1/leader'], [api.address().port, '/no/such/path'], [rails.port, '/rail/n1']] as const) {
        const before = Math.floor(Date.now() / 1000) * 1000;
        const date = await dateOf(port, path);
        const after = Date.now();
        expect(date, `Date header from ${path}`).toMatch(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/);
        const at = Date.parse(date!);
        expect(at).toBeGreaterThanOrEqual(before);
        expect(at).toBeLessThanOrEqual(after);
      }
      // A request Node cannot parse is answered by the server's own 400, with a Date too.
      const raw = await new Promise<string>((resolve, reject) => {
        let got = '';
        const s = connect(api.address().port, '127.0.0.1', () => s.write('NOT HTTP AT ALL\r\n\r\n'));
        s.setTimeout(30_000, () => s.destroy(new Error('no answer to a malformed request within 30 s')));
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        s.on('error', reject);
        s.on('close', () => resolve(got));
      });
      expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
      expect(raw).toMatch(/\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/);
      expect(calls(spies)).toBe(dateToText.map((m) => `${m}: 0`).join(', '));
      // and the cached text follows the clock
      const a = httpDateNow();
      const b = httpDate(Date.now());
      const c = httpDateNow();
      expect([a, c]).toContain(b);
    } finally {
      await api.close();
      await rails.close();
    }
  });
});
