/**
 * POST /v1/fence/<node>[/confirm] over a small backend, and the dev relay against its
 * rail server (and against servers that misbehave).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../daemon/http/server.ts';
import type { ApiBackend, FenceAnswer } from '../../../daemon/http/backend.ts';
import { call, jsonOf } from '../../../daemon/client/http.ts';
import { DevRelay, startRailServer } from '../../../daemon/fencing/dev-relay.ts';
import { BackendBase, type FenceableRuntime } from '../../../daemon/http/backend-base.ts';
import { testToken } from '../../helpers/auth.ts';
import { freePort } from '../../helpers/ports.ts';
import { capture } from '../../helpers/capture.ts';
import { fenceConfirm } from '../../../daemon/client/commands.ts';

const servers: Array<{ close(): Promise<void> | void }> = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

function backend(over: Partial<ApiBackend>): ApiBackend {
  const no = (cb: (r: { status: number; error: string }) => void) => cb({ status: 503, error: 'no' });
  return {
    status: () => ({ id: 'n1', engine: 'raft', role: 'leader', term: 1, leader: 'n1', active: true, commitIndex: 1, appliedIndex: 1, peers: [], links: [], relays: [] }),
    leader: () => ({ leader: 'n1', term: 1, token: 1 }),
    get: (_k, _o, cb) => no(cb),
    put: (_k, _v, _o, cb) => no(cb),
    del: (_k, _o, cb) => no(cb),
    lockAcquire: (_n, _o, _t, _l, cb) => no(cb),
    lockRenew: (_n, _t, cb) => no(cb),
    lockRelease: (_n, _t, cb) => no(cb),
    metrics: () => [],
    ...over,
  };
}

async function serve(b: ApiBackend, fenceTimeoutMs = 2000): Promise<string> {
  const s: ApiServer = await startApiServer(b, { port: 0, fenceTimeoutMs, token: testToken() });
  servers.push(s);
  return `http://127.0.0.1:${s.address().port}`;
}

describe('fence endpoints', () => {
  it('POST /v1/fence/<node>: 200 with the record, 502 with it when the fence failed, errors named', async () => {
    const asked: string[] = [];
    const u = await serve(
      backend({
        fence: (node: string, cb: (r: FenceAnswer) => void) => {
          asked.push(node);
          if (node === 'n2') return setTimeout(() => cb({ status: 200, record: { outcome: 'off', level: 0 } }), 20);
          if (node === 'n3') return cb({ status: 502, error: 'fence of n3 failed: relay read-back on', record: { outcome: 'failed' } });
          return cb({ status: 404, error: `no member "${node}"` });
        },
        confirmFenced: (node: string) => (node === 'n2' ? { status: 200, result: { superseded: true, active: true, waitingFor: '' } } : { status: 503, error: 'not running with fencing' }),
      }),
    );
    const ok = await call(u, 'POST', '/v1/fence/n2');
    expect(ok.status).toBe(200);
    expect(jsonOf(ok)).toMatchObject({ ok: true, node: 'n2', record: { outcome: 'off' } });
    const failed = await call(u, 'POST', '/v1/fence/n3');
    expect(failed.status).toBe(502);
    expect(jsonOf(failed)).toMatchObject({ code: 'fence-failed', record: { outcome: 'failed' } });
    expect(jsonOf(failed).error).toMatch(/read-back on/);
    expect((await call(u, 'POST', '/v1/fence/n9')).status).toBe(404);
    const get = await call(u, 'GET', '/v1/fence/n2');
    expect(get.status).toBe(405);
    const badName = await call(u, 'POST', '/v1/fence/N%20X');
    expect(badName.status).toBe(400);
    expect(jsonOf(badName).error).toMatch(/node must be a member name/);
    expect((await call(u, 'POST', '/v1/fence/n2?now=1')).status).toBe(400);
    expect(asked).toEqual(['n2', 'n3', 'n9']);
    const conf = await call(u, 'POST', '/v1/fence/n2/confirm');
    expect(conf.status).toBe(200);
    // What the confirmation did, not only that it was taken.
    expect(jsonOf(conf)).toEqual({ ok: true, node: 'n2', superseded: true, active: true, waitingFor: '' });
    const notConf = await call(u, 'POST', '/v1/fence/n3/confirm');
    expect(notConf.status).toBe(503);
    expect(jsonOf(notConf).error).toMatch(/not running with fencing/);
  });

  it('POST /v1/fence/<node>/confirm: a runtime that refuses as not the leader answers 409 not-leader; alive stays 409 node-alive', async () => {
    // The runtime's answers as leader-fencing.ts gives them (a follower cannot judge n3, n2 is its leader).
    const rt: FenceableRuntime = {
      fence: (_n, cb) => cb({ ok: false, error: 'unused' }),
      confirmFenced: (node) =>
        node === 2
          ? { ok: false, alive: true, error: 'n2 is the leader this node follows; confirm only a node that is powered off' }
          : node === 3
            ? { ok: false, notLeader: true, error: 'n1 is not the leader (n2 is): a follower hears only its leader, so it cannot tell whether n3 is alive; confirm on the leader n2' }
            : { ok: false, error: 'n1 leads since 200 ms only: it cannot tell yet whether n4 has been silent for 1000 ms; retry in 800 ms' },
    };
    class Base extends BackendBase<FenceableRuntime> {
      constructor() {
        super({ id: 1, name: 'n1', role: 'voter' }, [1, 2, 3, 4].map((id) => ({ id, name: `n${id}`, role: 'voter' as const })), [], 'test');
        this.fenceDevices = [];
        this.rt = rt;
      }
    }
    const b = new Base();
    const port = await freePort();
    const s = await startApiServer(backend({ confirmFenced: (n: string) => b.confirmFenced(n) }), { host: '127.0.0.1', port, token: testToken() });
    servers.push(s);
    const u = `http://127.0.0.1:${port}`;
    const notLeader = await call(u, 'POST', '/v1/fence/n3/confirm');
    expect(notLeader.status).toBe(409);
    expect(jsonOf(notLeader)).toMatchObject({ code: 'not-leader', error: expect.stringMatching(/confirm on the leader n2$/) });
    const alive = await call(u, 'POST', '/v1/fence/n2/confirm');
    expect(alive.status).toBe(409);
    expect(jsonOf(alive)).toMatchObject({ code: 'node-alive' });
    const early = await call(u, 'POST', '/v1/fence/n4/confirm');
    expect(early.status).toBe(503);
    expect(jsonOf(early)).toMatchObject({ code: 'unavailable', error: expect.stringMatching(/retry in 800 ms/) });
  });

  it('quorumd fence confirm prints what the node asked knew (bully) and what it still waits for; a refusal names the node to ask', async () => {
    const u = await serve(
      backend({
        confirmFenced: (node: string): FenceAnswer =>
          node === 'n2'
            ? { status: 200, result: { superseded: true, active: false, waitingFor: 'earlier coordinator n4 may still act: no fence device for it on this board', lastHeardMs: null, listenedMs: 12_345 } }
            : node === 'n3'
              ? { status: 200, result: { superseded: false, active: true, waitingFor: '', lastHeardMs: 1765, listenedMs: 11_693 } }
              : { status: 409, code: 'not-leader', error: 'n1 is not the coordinator (n3 is): a bully follower hears only its coordinator, so it cannot tell whether n4 is alive; confirm on the coordinator n3' },
      }),
    );
    let c = capture();
    expect(await fenceConfirm(u, 'n2', c.io)).toBe(0);
    expect(c.out).toBe(
      'confirmed: n2 is recorded as safely down\n' +
        '  the node asked had heard nothing from n2 since it started; it had been listening for 12.3 s\n' +
        '  a fence of n2 that was still under way on the node asked was stopped\n' +
        '  the node asked is not active yet: earlier coordinator n4 may still act: no fence device for it on this board\n',
    );
    c = capture();
    expect(await fenceConfirm(u, 'n3', c.io)).toBe(0);
    expect(c.out).toBe('confirmed: n3 is recorded as safely down\n  the node asked last heard n3 1.8 s ago; it had been listening for 11.7 s\n');
    c = capture();
    expect(await fenceConfirm(u, 'n4', c.io)).toBe(1);
    expect(c.err).toMatch(/^quorumd fence confirm: 409: n1 is not the coordinator \(n3 is\): .*; confirm on the coordinator n3\n$/);
  });

  it('fence confirm with a --node list: a follower\'s 409 not-leader goes on to the next node, which judges; node-alive and 503 end it', async () => {
    // The runtimes' answers as leader-fencing.ts gives them: followers refuse before
    // anything is recorded; the leader n3 judges (n4 silent: confirmed; n2 heard: alive).
    const recorded: string[] = [];
    const asked: string[] = [];
    const node = (self: string, answer: (n: string) => FenceAnswer) =>
      serve(
        backend({
          confirmFenced: (n: string) => {
            asked.push(`${self}:${n}`);
            return answer(n);
          },
        }),
      );
    const follower = (self: string) => node(self, (n) => ({ status: 409, code: 'not-leader', error: `${self} is not the leader (n3 is): a follower hears only its leader, so it cannot tell whether ${n} is alive; confirm on the leader n3` }));
    const f1 = await follower('n1');
    const f2 = await follower('n2');
    const leader = await node('n3', (n) => {
      if (n === 'n2') return { status: 409, code: 'node-alive', error: 'n2 is alive: this node accepted an authenticated message from it 20 ms ago; confirm only a node that is powered off (it must have been silent for 1000 ms)' };
      recorded.push(n);
      return { status: 200, result: { superseded: false, active: true, waitingFor: '', lastHeardMs: 4200, listenedMs: 30_000 } };
    });
    const young = await node('n5', () => ({ status: 503, error: 'n5 leads since 200 ms only: it cannot tell yet whether n4 has been silent for 1000 ms; retry in 800 ms' }));

    // The leader last in the list: both followers passed over, the leader confirms, once.
    let c = capture();
    expect(await fenceConfirm(`${f1},${f2},${leader}`, 'n4', c.io)).toBe(0);
    expect(c.out).toMatch(/^confirmed: n4 is recorded as safely down\n  the node asked last heard n4 4\.2 s ago/);
    expect(c.err).toBe('');
    expect(asked).toEqual(['n1:n4', 'n2:n4', 'n3:n4']);
    expect(recorded).toEqual(['n4']);

    // A live node: the leader's node-alive ends it (exit 1); nothing recorded.
    asked.length = 0;
    c = capture();
    expect(await fenceConfirm(`${f1},${leader},${f2}`, 'n2', c.io)).toBe(1);
    expect(c.err).toMatch(/^quorumd fence confirm: 409: n2 is alive: /);
    expect(c.err).toMatch(/passed over before it: POST http:\/\/127\.0\.0\.1:\d+\/v1\/fence\/n2\/confirm: 409 not-leader: n1 is not the leader/);
    expect(asked).toEqual(['n1:n2', 'n3:n2']);
    expect(recorded).toEqual(['n4']);

    // Only followers: the last one's not-leader is the answer (exit 1), the others named.
    c = capture();
    expect(await fenceConfirm(`${f1},${f2}`, 'n4', c.io)).toBe(1);
    expect(c.err).toMatch(/^quorumd fence confirm: 409: n2 is not the leader \(n3 is\).*\n.*passed over before it: .*409 not-leader: n1 is not the leader/);

    // A young leader's 503 (retry later) is not passed over: the next node is not asked.
    asked.length = 0;
    c = capture();
    expect(await fenceConfirm(`${young},${leader}`, 'n4', c.io)).toBe(3);
    expect(asked).toEqual(['n5:n4']);
    expect(recorded).toEqual(['n4']);
  });

  it('a backend without fencing answers 501; a fence that never finishes answers 504 (outcome unknown)', async () => {
    const u1 = await serve(backend({}));
    expect((await call(u1, 'POST', '/v1/fence/n2')).status).toBe(501);
    expect((await call(u1, 'POST', '/v1/fence/n2/confirm')).status).toBe(501);
    const u2 = await serve(backend({ fence: () => {} }), 200);
    const r = await call(u2, 'POST', '/v1/fence/n2');
    expect(r.status).toBe(504);
    expect(jsonOf(r).error).toMatch(/did not finish within 200 ms/);
  });
});

describe('dev relay and rail server', () => {
  const readP = (r: DevRelay) => new Promise<{ err: Error | null; v?: boolean }>((res) => r.read((err, v) => res({ err, v })));
  const setP = (r: DevRelay, on: boolean) => new Promise<Error | null>((res) => r.set(on, res));

  it('switches and reads back a rail; unknown nodes and wrong answers are clear errors', async () => {
    const rails = new Map([['n2', true]]);
    const sw: string[] = [];
    const token = 'dev-cluster-token-0123';
    const srv = await startRailServer({ token, get: (n) => rails.get(n), set: (n, on) => (rails.has(n) ? (sw.push(`${n}:${on}`), rails.set(n, on), on) : undefined) });
    servers.push(srv);
    // Without the dev cluster's token (or with another) the rails do not move.
    expect((await setP(new DevRelay({ url: srv.url, node: 'n2' }), false))?.message).toMatch(/answered 401: .*dev cluster's token/);
    expect((await setP(new DevRelay({ url: srv.url, node: 'n2', token: 'another-token-0123456' }), false))?.message).toMatch(/answered 401/);
    expect(sw).toEqual([]);
    const r = new DevRelay({ url: srv.url, node: 'n2', token });
    expect(r.name).toBe('dev-relay:n2');
    expect(await readP(r)).toEqual({ err: null, v: true });
    expect(await setP(r, false)).toBeNull();
    expect(await readP(r)).toEqual({ err: null, v: false });
    expect(sw).toEqual(['n2:false']);
    const none = await readP(new DevRelay({ url: srv.url, node: 'n7', token }));
    expect(none.err?.message).toMatch(/answered 404: .*no node n7/);
    // A rail that does not follow the command: set() fails (verify catches it too).
    const stuck = await startRailServer({ token, get: () => true, set: () => true });
    servers.push(stuck);
    expect((await setP(new DevRelay({ url: stuck.url, node: 'n2', token }), false))?.message).toMatch(/asked off, the rail reports on/);
  });

  it('garbled answers and silence are errors, never a value', async () => {
    const garbled = createServer((_q, s) => s.end('CH1:ON'));
    const silent = createServer(() => {});
    for (const s of [garbled, silent]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    servers.push({ close: () => new Promise<void>((r) => { garbled.closeAllConnections(); garbled.close(() => r()); }) });
    servers.push({ close: () => new Promise<void>((r) => { silent.closeAllConnections(); silent.close(() => r()); }) });
    const g = await readP(new DevRelay({ url: `http://127.0.0.1:${(garbled.address() as AddressInfo).port}`, node: 'n2' }));
    expect(g.err?.message).toMatch(/garbled answer from the rail server.*CH1:ON/);
    const t = await readP(new DevRelay({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, node: 'n2', timeoutMs: 150 }));
    expect(t.err?.message).toMatch(/no answer from http:\/\/127\.0\.0\.1:\d+ within 150 ms/);
    expect(() => new DevRelay({ url: 'http://10.1.1.1:80', node: 'n2' })).toThrow(/loopback/);
    expect(() => new DevRelay({ url: 'http://127.0.0.1:80', node: 'N 2' })).toThrow(/member name/);
  });
});
