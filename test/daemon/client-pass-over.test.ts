/**
 * `--node URL1,URL2,…`: which answers send a request on to the next node of the list
 * (daemon/client/http.ts passOverReason, callFirstReached).
 *
 * Before, only a node that certainly never received the request (refused, no route, no
 * connection) was passed over: a stopping node's 503 "this request was not tried: ask
 * another node" ended the command with exit 3, although the next node of the list was
 * up — every script with a list failed on the node being restarted in a rolling
 * upgrade. Now that 503 says so in its body (`"tried": false`), and a node that says so
 * is passed over like one not reached. Every other 503 (no leader: tried, and the
 * other nodes share it), a 504, a 503 without the field (an older node), and a field of
 * the wrong type still end it: sending a write on after an answer that does not
 * certainly mean "not tried" could apply it twice.
 *
 * The decision per answer, then real API servers in this process: one stopping (its
 * drain begun, reached on a kept-alive connection as a client that just used it), one
 * that has no leader, one whose write's outcome is unknown, and one that works.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../daemon/http/server.ts';
import { call, callFirstReached, passOverReason, type Reply } from '../../daemon/client/http.ts';
import * as cmd from '../../daemon/client/commands.ts';
import { FakeBackend } from './http/fake-backend.ts';
import { testToken } from '../helpers/auth.ts';
import { capture } from '../helpers/capture.ts';

const reply = (status: number, body: unknown): Reply => ({ status, headers: {}, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) });
const stopping = { error: 'node n1 is stopping; this request was not tried: ask another node', code: 'unavailable', tried: false };

describe('passOverReason: the decision per answer', () => {
  it('503 with "tried": false is passed over; it names the status and what the node said', () => {
    expect(passOverReason(reply(503, stopping))).toBe('503 (not tried): node n1 is stopping; this request was not tried: ask another node');
    // Refused at the door for the node's own reasons (its watches, the pipeline): the same.
    expect(passOverReason(reply(503, { error: 'too many watches open (1024); retry later', code: 'unavailable', tried: false }))).toMatch(/^503 \(not tried\): too many watches/);
  });

  it('any other 503, a 504 and other statuses end it, with or without the field', () => {
    const cases: Array<[number, unknown]> = [
      [503, { error: 'no leader (definitely not applied; safe to retry)', code: 'unavailable' }],
      [503, { error: 'node n1 is stopping; the request was not answered before it stopped (a read: nothing was changed): ask another node', code: 'unavailable' }],
      [504, { error: 'the leader is gone; the write may or may not be applied', code: 'outcome-unknown' }],
      // The field only counts on a 503: a 504 or a 409 carrying it is not "not tried".
      [504, { error: 'x', code: 'outcome-unknown', tried: false }],
      [409, { error: 'x', code: 'cas-failed', tried: false }],
      [429, { error: 'x', code: 'too-many-watches', tried: false }],
      [500, { error: 'x', tried: false }],
      [200, { index: 3, tried: false }],
      // Of the wrong type, or not JSON at all: not the marker.
      [503, { error: 'x', code: 'unavailable', tried: 'false' }],
      [503, { error: 'x', code: 'unavailable', tried: 0 }],
      [503, { error: 'x', code: 'unavailable', tried: null }],
      [503, [{ tried: false }]],
      [503, 'Service Unavailable'],
      [503, ''],
      [503, '{"tried":false'],
    ];
    for (const [status, body] of cases) expect(passOverReason(reply(status, body)), `${status} ${JSON.stringify(body)}`).toBeUndefined();
  });

  it('a code the command names is passed over (fence confirm: 409 not-leader), no other code, and only when named', () => {
    const notLeader = { error: 'n2 is not the leader (n3 is): a follower hears only its leader, so it cannot tell whether n1 is alive; confirm on the leader n3', code: 'not-leader' };
    expect(passOverReason(reply(409, notLeader), ['not-leader'])).toBe(`409 not-leader: ${notLeader.error}`);
    expect(passOverReason(reply(409, notLeader))).toBeUndefined();
    expect(passOverReason(reply(409, { error: 'n1 is alive: this node accepted an authenticated message from it 20 ms ago', code: 'node-alive' }), ['not-leader'])).toBeUndefined();
    expect(passOverReason(reply(503, { error: 'n3 leads since 200 ms only', code: 'unavailable' }), ['not-leader'])).toBeUndefined();
  });
});

describe('callFirstReached and the commands over real API servers', () => {
  const servers: ApiServer[] = [];
  let live: FakeBackend;
  let liveUrl: string;
  let down: FakeBackend;
  let downSrv: ApiServer;
  let downUrl: string;

  async function server(b: FakeBackend): Promise<[ApiServer, string]> {
    const s = await startApiServer(b, { port: 0, backstopMs: 300, token: testToken() });
    servers.push(s);
    return [s, `http://127.0.0.1:${s.address().port}`];
  }

  beforeEach(async () => {
    live = new FakeBackend();
    [, liveUrl] = await server(live);
    down = new FakeBackend();
    [downSrv, downUrl] = await server(down);
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  afterAll(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  /**
   * The client's kept-alive connection to `downUrl` is open (it just used it), and the
   * node's stop begins: the next request on that connection is answered 503 not tried
   * (a new connection would be refused, which was passed over already).
   */
  async function stopDown(): Promise<void> {
    expect((await call(downUrl, 'GET', '/v1/status')).status).toBe(200);
    downSrv.drain('node n1 is stopping');
  }

  it('a stopping node is passed over: the write is applied once, on the next node; the first applied nothing', async () => {
    await stopDown();
    const r = await callFirstReached(`${downUrl},${liveUrl}`, 'PUT', '/v1/kv/k', { body: 'v' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toEqual({ index: 1 });
    expect(r.passedOver).toEqual([expect.stringMatching(new RegExp(`^PUT ${downUrl}/v1/kv/k: 503 \\(not tried\\): node n1 is stopping; this request was not tried`))]);
    expect(Buffer.from(live.kv.get('k')!.value).toString()).toBe('v');
    expect(down.kv.get('k')).toBeUndefined();
  });

  it('kv put through the CLI command: exit 0 and the index, as if the list began at the live node', async () => {
    await stopDown();
    const c = capture();
    expect(await cmd.kvPut(`${downUrl},${liveUrl}`, 'k', 'v', {}, c.io)).toBe(0);
    expect(c.out).toBe('index=1\n');
    expect(c.err).toBe('');
  });

  it('one URL: the stopping node\'s 503 is the answer (exit 3), as before', async () => {
    await stopDown();
    const c = capture();
    expect(await cmd.kvPut(downUrl, 'k', 'v', {}, c.io)).toBe(cmd.EXIT_UNAVAILABLE);
    expect(c.err).toMatch(/^quorumd kv put: 503: node n1 is stopping; this request was not tried: ask another node\n$/);
  });

  it('the last node of the list stopping too: its answer ends it (exit 3), and the one passed over before is named', async () => {
    const [other, otherUrl] = await server(new FakeBackend());
    expect((await call(otherUrl, 'GET', '/v1/status')).status).toBe(200);
    await stopDown();
    other.drain('node n2 is stopping');
    const c = capture();
    expect(await cmd.kvPut(`${downUrl},${otherUrl}`, 'k', 'v', {}, c.io)).toBe(cmd.EXIT_UNAVAILABLE);
    expect(c.err).toMatch(/^quorumd kv put: 503: node n2 is stopping; this request was not tried: ask another node\n/);
    expect(c.err).toMatch(/quorumd kv put: passed over before it: PUT http:\/\/127\.0\.0\.1:\d+\/v1\/kv\/k: 503 \(not tried\): node n1 is stopping/);
  });

  it('a stopping node and then one not reached: not applied (exit 3), each named, "no node took it"', async () => {
    await stopDown();
    const c = capture();
    expect(await cmd.kvPut(`${downUrl},http://127.0.0.1:1`, 'k', 'v', {}, c.io)).toBe(cmd.EXIT_UNAVAILABLE);
    expect(c.err).toMatch(/no node of --node took the request: PUT .*: 503 \(not tried\): node n1 is stopping.*; PUT http:\/\/127\.0\.0\.1:1\/v1\/kv\/k: connect ECONNREFUSED.* \(no node took it: nothing was done\)\n$/);
  });

  it('a 503 of the cluster (no leader) is not passed over: exit 3, the next node not written', async () => {
    down.mode = 'unavailable';
    const c = capture();
    expect(await cmd.kvPut(`${downUrl},${liveUrl}`, 'k', 'v', {}, c.io)).toBe(cmd.EXIT_UNAVAILABLE);
    expect(c.err).toMatch(/503: no leader/);
    expect(live.kv.get('k')).toBeUndefined();
  });

  it('a 504 is not passed over: exit 4, the next node not written', async () => {
    down.mode = 'unknown';
    const c = capture();
    expect(await cmd.kvPut(`${downUrl},${liveUrl}`, 'k', 'v', {}, c.io)).toBe(cmd.EXIT_UNKNOWN);
    expect(live.kv.get('k')).toBeUndefined();
  });

  it('a read and a lock acquire pass over a stopping node too', async () => {
    await stopDown();
    await new Promise<void>((r) => live.put('k', Buffer.from('there'), {}, () => r()));
    const g = capture();
    expect(await cmd.kvGet(`${downUrl},${liveUrl}`, 'k', {}, g.io)).toBe(0);
    expect(g.out).toBe('there');
    // The stopping node's kept-alive connection was closed after its answer: a new one to it is refused or answered 503 untried.
    const l = capture();
    expect(await cmd.lockAcquire(`${downUrl},${liveUrl}`, 'door', { ttl: '15s', owner: 'me' }, l.io)).toBe(0);
    expect(l.out).toMatch(/^token=\d+ lease=\S+ ttlMs=15000\n$/);
  });
});
