/**
 * CLI clients (daemon/client/commands.ts) against an in-process API server: output
 * formats and exit statuses (0 done, 1 definite no, 3 not applied, 4 unknown; daemon/exit-codes.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../daemon/http/server.ts';
import * as cmd from '../../daemon/client/commands.ts';
import { shown } from '../../daemon/client/shown.ts';
import { FakeBackend } from './http/fake-backend.ts';
import type { JobResetAnswer } from '../../daemon/http/backend.ts';
import { testToken } from '../helpers/auth.ts';
import { call } from '../../daemon/client/http.ts';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The version package.json names: what a node of this checkout must report. */
const packageVersion = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

let srv: ApiServer;
let b: FakeBackend;
let url: string;
function cap() {
  const o = { out: '', err: '' };
  return { io: { out: (s: string | Uint8Array) => void (o.out += typeof s === 'string' ? s : Buffer.from(s).toString()), err: (s: string) => void (o.err += s) }, o };
}

beforeAll(async () => {
  b = new FakeBackend();
  srv = await startApiServer(b, { port: 0, backstopMs: 300, token: testToken() });
  url = `http://127.0.0.1:${srv.address().port}`;
});
afterAll(() => srv.close());

describe('CLI clients', () => {
  it('kv put/get/del with cas, and their exit statuses', async () => {
    let c = cap();
    expect(await cmd.kvPut(url, 'k', 'v1', {}, c.io)).toBe(0);
    expect(c.o.out).toMatch(/^index=\d+\n$/);
    const idx = Number(/index=(\d+)/.exec(c.o.out)![1]);
    c = cap();
    expect(await cmd.kvGet(url, 'k', {}, c.io)).toBe(0);
    expect(c.o.out).toBe('v1');
    c = cap();
    expect(await cmd.kvPut(url, 'k', 'v2', { cas: idx + 5 }, c.io)).toBe(cmd.EXIT_NO);
    expect(c.o.err).toMatch(/compare-and-set failed: the key's index is \d+/);
    expect(await cmd.kvDel(url, 'k', {}, cap().io)).toBe(0);
    c = cap();
    expect(await cmd.kvGet(url, 'k', {}, c.io)).toBe(cmd.EXIT_NO);
    expect(c.o.err).toMatch(/not found/);
  });

  it('503 → exit 3, 504 → exit 4, a write to a node never reached → exit 3 ("nothing was done")', async () => {
    b.mode = 'unavailable';
    expect(await cmd.kvPut(url, 'k', 'v', {}, cap().io)).toBe(cmd.EXIT_UNAVAILABLE);
    b.mode = 'unknown';
    expect(await cmd.kvPut(url, 'k', 'v', {}, cap().io)).toBe(cmd.EXIT_UNKNOWN);
    b.mode = 'ok';
    const c = cap();
    expect(await cmd.kvPut('http://127.0.0.1:1', 'k', 'v', {}, c.io)).toBe(cmd.EXIT_UNAVAILABLE);
    expect(c.o.err).toMatch(/the node was not reached: nothing was done/);
  });

  it('lock acquire/renew/release print the token and the lease, and say who holds it', async () => {
    let c = cap();
    expect(await cmd.lockAcquire(url, 'L', { ttl: '15s', owner: 'me' }, c.io)).toBe(0);
    const m = /^token=(\d+) lease=([A-Za-z0-9_-]{22}) ttlMs=15000$/m.exec(c.o.out)!;
    expect(m).not.toBeNull();
    const lease = m[2]!;
    c = cap();
    expect(await cmd.lockAcquire(url, 'L', { ttl: '15s', owner: 'you' }, c.io)).toBe(cmd.EXIT_NO);
    expect(c.o.err).toMatch(/held by "me"/);
    expect(await cmd.lockRelease(url, 'L', { lease: 'z'.repeat(22) }, cap().io)).toBe(cmd.EXIT_NO);
    c = cap();
    expect(await cmd.lockRelease(url, 'L', { lease, renew: true }, c.io)).toBe(0);
    expect(c.o.out).toMatch(new RegExp(`^renewed token=${m[1]}`));
    expect(await cmd.lockRelease(url, 'L', { lease }, cap().io)).toBe(0);
  });

  it('status prints one row per node, unreachable ones marked', async () => {
    const c = cap();
    expect(await cmd.status(`${url},http://127.0.0.1:1`, {}, c.io)).toBe(cmd.EXIT_UNAVAILABLE);
    const lines = c.o.out.trim().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+URL\s+ROLE\s+TERM\s+LEADER/);
    expect(lines[1]).toMatch(/^n1\s+http:\/\/127\.0\.0\.1:\d+\s+leader\s+1\s+n1\s+yes/);
    expect(lines[2]).toMatch(/unreachable/);
  });

  it('/v1/status says which quorumd version answers, and status shows it per node', async () => {
    const r = await call(url, 'GET', '/v1/status', { token: testToken() });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toMatchObject({ id: 'n1', version: packageVersion });
    const c = cap();
    expect(await cmd.status(url, {}, c.io)).toBe(0);
    const [head, row] = c.o.out.trim().split('\n');
    expect(head).toMatch(/\sVERSION$/);
    expect(row).toMatch(new RegExp(`^n1\\s.*\\s${packageVersion.replace(/\./g, '\\.')}$`));
    expect(c.o.out).not.toMatch(/different quorumd versions/);
  });

  it('status says so when the nodes run different versions (a node of an older build reports none)', async () => {
    // A node of a build before `version` existed: the same status, without the field.
    const { version: _v, ...old } = JSON.parse((await call(url, 'GET', '/v1/status', { token: testToken() })).body.toString()) as Record<string, unknown>;
    const older: Server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ...old, id: 'n2' }));
    });
    await new Promise<void>((r) => older.listen(0, '127.0.0.1', () => r()));
    try {
      const c = cap();
      expect(await cmd.status(`${url},http://127.0.0.1:${(older.address() as { port: number }).port}`, {}, c.io)).toBe(0);
      const lines = c.o.out.split('\n');
      expect(lines[2]).toMatch(/^n2\s.*\s-$/);
      expect(c.o.out).toContain(`the nodes run different quorumd versions: n1 ${packageVersion}, n2 an older one (no version reported)`);
    } finally {
      older.close();
    }
  });

  it('shown: control characters (C0, DEL, C1) and bidirectional overrides escaped, other text as it is', () => {
    expect(shown('a\tb\x1b[0m\x7f\u0085\u202e\u2066 ü ✓ 日本')).toBe('a\\u{9}b\\u{1b}[0m\\u{7f}\\u{85}\\u{202e}\\u{2066} ü ✓ 日本');
    // The same result on every call (no state kept between calls).
    expect([shown('\x1b'), shown('\x1b'), shown('x')]).toEqual(['\\u{1b}', '\\u{1b}', 'x']);
  });

  it('lock list and the errors that quote a holder show control characters escaped, never raw', async () => {
    // A write token chooses lock names and owners: ESC sequences and newlines included.
    const owner = '\x1b[31mroot\x1b[0m\nfake-lock  root  1  60s';
    expect(await cmd.lockAcquire(url, 'evil\u202eyek', { ttl: '15s', owner }, cap().io)).toBe(0);
    let c = cap();
    expect(await cmd.lockList(url, 'evil', {}, c.io)).toBe(0);
    expect(c.o.out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    const rows = c.o.out.trimEnd().split('\n');
    expect(rows).toHaveLength(2); // the header and one lock: no forged row
    expect(rows[1]).toContain('evil\\u{202e}yek');
    expect(rows[1]).toContain('\\u{1b}[31mroot\\u{1b}[0m\\u{a}fake-lock');
    // Another owner's acquire: the 409 names the holder.
    c = cap();
    expect(await cmd.lockAcquire(url, 'evil\u202eyek', { ttl: '15s', owner: 'bob' }, c.io)).toBe(cmd.EXIT_NO);
    expect(c.o.err).toContain('is held by "\\u001b[31mroot'); // JSON's own escape
    expect(c.o.err).toContain('evil\\u{202e}yek');
    expect(c.o.err).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u202e]/);
    // --json stays JSON (which escapes them itself) and round-trips the owner exactly.
    c = cap();
    expect(await cmd.lockList(url, 'evil', { json: true }, c.io)).toBe(0);
    expect((JSON.parse(c.o.out) as { locks: Array<{ owner: string }> }).locks[0]!.owner).toBe(owner);
  });
});

describe('quorumd jobs reset, and quorumd jobs after a reset', () => {
  it('prints what was withdrawn; nothing to withdraw is exit 1 with the reason; the table shows a reset with no slot since', async () => {
    const reset = { at: '2026-12-08T00:10:12.000Z', floor: '2026-12-08T00:10:12.000Z', node: 'n1', term: 4, withdrawn: { slot: '2036-12-08T00:10:05.000Z', node: 'n2', term: 3 } };
    let answer: JobResetAnswer = { status: 200, withdrawn: reset.withdrawn, floor: reset.floor };
    class Jobs extends FakeBackend {
      jobs(): unknown[] {
        return [{ name: 'tick', cron: '*/5 * * * * *', timezone: 'UTC', overlap: 'skip', timeoutMs: 1000, command: 'true', nextRun: '2026-12-08T00:10:15.000Z', runningHere: 0, last: null, reset }];
      }
      jobReset(_job: string, cb: (a: JobResetAnswer) => void): void {
        cb(answer);
      }
    }
    const s = await startApiServer(new Jobs(), { port: 0, token: testToken() });
    const u = `http://127.0.0.1:${s.address().port}`;
    try {
      let c = cap();
      expect(await cmd.jobReset(u, 'tick', c.io)).toBe(0);
      expect(c.o.out).toBe('reset: job tick: withdrew slot 2036-12-08T00:10:05.000Z (claimed by n2, term 3); the next slot after 2026-12-08T00:10:12.000Z runs\n');
      answer = { status: 409, error: "nothing to withdraw: the latest claim 2026-12-08T00:10:10.000Z is not after the leader's clock 2026-12-08T00:10:12.000Z; if the leader's clock is the wrong one, fix it first" };
      c = cap();
      expect(await cmd.jobReset(u, 'tick', c.io)).toBe(cmd.EXIT_NO);
      expect(c.o.err).toBe(`quorumd jobs reset: 409: ${answer.error}\n`);
      answer = { status: 503, error: 'no leader' };
      expect(await cmd.jobReset(u, 'tick', cap().io)).toBe(cmd.EXIT_UNAVAILABLE);
      c = cap();
      expect(await cmd.jobs(u, {}, c.io)).toBe(0);
      expect(c.o.out).toMatch(/^tick\s+\*\/5 \* \* \* \* \*\s+none since reset\s+-\s+reset\s+-\s+2026-12-08T00:10:15\.000Z$/m);
      expect(c.o.out).toContain('tick: reset at 2026-12-08T00:10:12.000Z by n1: withdrew slot 2036-12-08T00:10:05.000Z (claimed by n2, term 3); slots after 2026-12-08T00:10:12.000Z run\n');
    } finally {
      await s.close();
    }
  });
});
