/**
 * HTTP fuzz against a live node (real runtime, FsStorage, MQTT link to an in-process
 * broker): 10,000 seeded requests with random methods, paths, percent-encodings,
 * query parameters, bodies and headers, plus raw malformed HTTP on sockets. The node
 * must answer every request (no crash, no hang: each has a deadline), every answer
 * must be a known status with a `{error, code}` body when it is an error, and the
 * replicated state must be exactly what the accepted writes made it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startBroker, type RunningBroker } from '../../../hal/mqtt/broker.ts';
import { parseConfigWithPositions, resolveConfig } from '../../../daemon/config/load.ts';
import { startNode, type RunningNode } from '../../../daemon/start.ts';
import { call } from '../../../daemon/client/http.ts';
import { Rng } from '../../../src/rng.ts';
import { testTokenFile } from '../../helpers/auth.ts';

const N = Number(process.env.QUORUMD_FUZZ_N ?? 10_000);
let broker: RunningBroker;
let node: RunningNode;
let dir: string;
let base: string;

beforeAll(async () => {
  broker = await startBroker({ port: 0, clusterKeys: [{ cluster: 1, keys: [Buffer.from('ab'.repeat(32), 'hex')] }] });
  dir = mkdtempSync(join(tmpdir(), 'quorumd-fuzz-'));
  const text = `cluster: { name: fuzz, key: ${'ab'.repeat(32)} }
members: [ { id: 1, name: solo } ]
node: { name: solo, dataDir: ${JSON.stringify(join(dir, 'data'))} }
mqtt: { brokers: [ "mqtt://127.0.0.1:${broker.port}" ] }
http: { listen: "127.0.0.1:0", maxBodyBytes: 4096, maxWatchMs: 20, tokenFile: ${JSON.stringify(testTokenFile())} }
`;
  const { config, locate } = parseConfigWithPositions(text, 'fuzz.yaml');
  node = await startNode(resolveConfig(config, join(dir, 'fuzz.yaml'), locate), { pino: pino({ level: 'silent' }) });
  base = node.url;
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline && !node.runtime.isLeader) await new Promise((r) => setTimeout(r, 20));
  expect(node.runtime.isLeader).toBe(true);
});

afterAll(async () => {
  await node?.stop();
  await new Promise<void>((r) => (broker ? broker.close(() => r()) : r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => s.destroy(), 2000);
    s.on('connect', () => s.end(bytes));
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', () => undefined);
  });
}

describe('HTTP fuzz', () => {
  it(`${N} seeded random requests: never a crash or hang, errors well-formed, state = accepted writes`, async () => {
    const rng = new Rng(5150);
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)]!;
    const methods = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND'];
    const keys = ['k1', 'k2', 'a%2Fb', 'x/y/z', '%', '%zz', '%E0%A4%A', '%ED%A0%80', '', 'é', 'k'.repeat(257), '..', '%00', 'sp%20ace'];
    const prefixes = ['/v1/kv/', '/v1/locks/', '/v1/status', '/v1/leader', '/metrics', '/v1/', '/', '/v1/kv', '/v1/locks/l/renew', '//v1/kv/k1', '/v1/kv/k1/../k2'];
    const params = ['cas', 'stale', 'watch', 'wait', 'ttl', 'owner', 'token', 'bogus', '', '%'];
    const values = ['0', '1', '-1', 'abc', '1e3', '99999999999999999999', '15s', '500ms', '2h', '25h', '', '%', 'true', '0x10'];
    const expectedKeys = new Map<string, string | null>(); // key → last accepted value (null = deleted)
    const statuses = new Map<number, number>();
    let raw = 0;
    for (let i = 0; i < N; i++) {
      if (rng.chance(0.02)) {
        raw++;
        const junk = pick([
          'GARBAGE\r\n\r\n',
          'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
          'PUT /v1/kv/k1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
          `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
          'GET /v1/status HTTP/1.1\r\n' + 'X: y\r\n'.repeat(3000) + '\r\n',
          '\x00\x01\x02\x03',
        ]);
        const out = await rawRequest(Number(new URL(base).port), junk);
        if (out) expect(out).toMatch(/^HTTP\/1\.1 (4\d\d)/);
        continue;
      }
      const method = pick(methods);
      let path = pick(prefixes);
      if (path.endsWith('/') && path.length > 4) path += pick(keys);
      const q: string[] = [];
      for (let j = rng.int(0, 3); j > 0; j--) q.push(rng.chance(0.2) ? pick(params) : `${pick(params)}=${pick(values)}`);
      if (q.length) path += '?' + q.join('&');
      const bodyLen = rng.chance(0.5) ? 0 : rng.chance(0.9) ? rng.int(1, 64) : rng.int(4000, 9000);
      // No body on HEAD: the HEAD answer has no body either, so a client cannot tell where it ends.
      const body = bodyLen && method !== 'HEAD' ? Buffer.alloc(bodyLen, rng.int(0, 255)) : undefined;
      const res = await call(base, method, path, { ...(body ? { body } : {}), timeoutMs: 5000, token: rng.chance(0.05) ? 'junk' : '' });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect([200, 400, 401, 404, 405, 409, 413, 414]).toContain(res.status);
      if (res.status >= 400 && method !== 'HEAD') {
        const j = JSON.parse(res.body.toString()) as { error?: unknown; code?: unknown };
        expect(typeof j.error).toBe('string');
        expect(typeof j.code).toBe('string');
      }
      // Model of accepted writes (requests are sequential, so the last accepted wins).
      const m = /^\/v1\/kv\/([^?]+)/.exec(path);
      if (res.status === 200 && m && (method === 'PUT' || method === 'DELETE')) {
        const key = decodeURIComponent(m[1]!);
        expectedKeys.set(key, method === 'PUT' ? (body ?? Buffer.alloc(0)).toString('hex') : null);
      }
    }
    // The node is alive and its state is exactly the accepted writes.
    expect((await call(base, 'GET', '/v1/status')).status).toBe(200);
    const sm = node.runtime.stateMachine; // engine: raft in this test
    const present = [...expectedKeys].filter(([, v]) => v !== null).map(([k]) => k).sort();
    expect(sm.keys()).toEqual(present);
    for (const k of present) expect(Buffer.from(sm.get(k)!.value).toString('hex')).toBe(expectedKeys.get(k));
    console.log(`fuzz: ${N} requests (${raw} raw), statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${present.length} keys written`);
  }, 600_000); // bounded by N requests; a loaded 2-core machine needs minutes for 10 000
});
