/**
 * A runtime that is not running — booting (its storage still opening, its API already
 * listening: a board just restarted in a rolling upgrade) or stopped — refuses a
 * request before proposing, forwarding or reading it: 503 with `tried: false`, which
 * the HTTP answer carries as `"tried": false` (daemon/http/server.ts NOT_TRIED), so that
 * a `--node` list goes on to the next node. A 503 of a running node without a leader
 * was tried (it looked for one) and does not carry it.
 *
 * Seen on `quorumd dev` (three nodes, one restarted by its supervisor): `kv put --node
 * <restarted>,<live>` answered `503: node 1 is not running (booting)` and ended exit 3,
 * although the live node was there.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { testCluster, bytes } from './helpers.ts';
import type { ClientResult } from '../../../daemon/runtime/index.ts';
import { notRunning, unavailable } from '../../../daemon/runtime/results.ts';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import { call } from '../../../daemon/client/http.ts';
import { FakeBackend } from '../http/fake-backend.ts';
import { testToken } from '../../helpers/auth.ts';

const servers: ApiServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('a runtime that is not running refuses untried', () => {
  it('booting and stopped: 503 tried: false, for writes and reads', () => {
    const c = testCluster([1, 2, 3], { world: { board: { bootDelayMs: 100, restartDelayMs: 100 } } });
    // The moment the runtime exists it has been started (booting): its storage opens in virtual time.
    expect(c.world.runUntil(() => c.rt.has(1), 5000)).toBe(true);
    const r1 = c.rt.get(1)!;
    const seen: Array<{ state: string; put?: ClientResult; get?: ClientResult }> = [];
    if (r1.state === 'booting') {
      const s: { state: string; put?: ClientResult; get?: ClientResult } = { state: r1.state };
      r1.put('k', bytes('v'), {}, (r) => (s.put = r));
      r1.get('k', { stale: false }, (r) => (s.get = r));
      seen.push(s);
    }
    expect(seen.map((s) => s.state), 'caught booting').toEqual(['booting']);
    expect(seen[0]!.put).toEqual({ status: 503, error: 'node 1 is not running (booting)', tried: false });
    expect(seen[0]!.get).toEqual({ status: 503, error: 'node 1 is not running (booting)', tried: false });

    expect(c.until(() => r1.state === 'running' && c.leader() !== undefined, 10_000)).toBe(true);

    r1.stop();
    let stopped: ClientResult | undefined;
    r1.put('k', bytes('v'), {}, (r) => (stopped = r));
    expect(stopped).toEqual({ status: 503, error: 'node 1 is not running (stopped)', tried: false });
  });

  it('the HTTP answer says "tried": false for it, and not for a 503 of no leader', async () => {
    class Booting extends FakeBackend {
      answer: ClientResult = notRunning(1, 'booting');
      override put(_k: string, _v: Uint8Array, _o: { cas?: number }, cb: (r: ClientResult) => void): void {
        cb(this.answer);
      }
    }
    const b = new Booting();
    const s = await startApiServer(b, { port: 0, token: testToken() });
    servers.push(s);
    const u = `http://127.0.0.1:${s.address().port}`;
    const r = await call(u, 'PUT', '/v1/kv/k', { body: 'v' });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body.toString())).toEqual({ error: 'node 1 is not running (booting) (definitely not applied; safe to retry)', code: 'unavailable', tried: false });
    b.answer = unavailable('node 1 is not the leader (leader: unknown); not proposed');
    const r2 = await call(u, 'PUT', '/v1/kv/k', { body: 'v' });
    expect(r2.status).toBe(503);
    expect(JSON.parse(r2.body.toString()).tried).toBeUndefined();
  });
});
