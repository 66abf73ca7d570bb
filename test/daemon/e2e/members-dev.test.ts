/**
 * `quorumd dev` with members that are not plain voters, on real node processes:
 *  - `--engine zab --observers 1` (3 voters + 1 observer): writes through voters are
 *    visible on the observer by a linearizable read (it syncs with the leader) and by a
 *    `?stale` local read; a write through the observer is forwarded and committed; the
 *    observer never leads — it keeps following when the leader is killed, and a voter
 *    takes over. The printed observer curl lines work.
 *  - `--engine paxos|zab --nodes 2 --witness` (two boards + a witness run by `quorumd
 *    witness`): writes commit with the witness's vote; the witness refuses reads (it
 *    holds no data); SIGKILL of the leading board → the other board leads with the
 *    witness's vote and commits a write.
 * Bounded polling only; relays off (failover without fencing, as engine-dev.test.ts).
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { devRoles, startDev, type DevCluster } from '../../../daemon/dev.ts';
import { call } from '../../../daemon/client/http.ts';
import { freeBasePort } from '../../helpers/ports.ts';
import { devToken, killLeaderRound, waitSettled } from './dev-failover.ts';

const hasCurl = spawnSync('curl', ['--version']).status === 0;
let dev: DevCluster | undefined;
afterEach(async () => {
  await dev?.stop();
  dev = undefined;
});

/** GET until `want` (bounded), the last answer otherwise. */
async function readUntil(url: string, path: string, token: string, want: string, boundMs = 15_000): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + boundMs;
  let last = { status: 0, body: '' };
  while (Date.now() < deadline) {
    const r = await call(url, 'GET', path, { timeoutMs: 3000, token }).catch(() => undefined);
    if (r) last = { status: r.status, body: r.body.toString() };
    if (last.status === 200 && last.body === want) return last;
    await new Promise((res) => setTimeout(res, 100));
  }
  return last;
}

describe('quorumd dev: observers and witnesses', () => {
  it('devRoles: voters, then the witness, then the observers; dev refuses what an engine lacks', async () => {
    expect(devRoles(3, false, 1)).toEqual(['voter', 'voter', 'voter', 'observer']);
    expect(devRoles(2, true, 2)).toEqual(['voter', 'voter', 'witness', 'observer', 'observer']);
    await expect(startDev({ nodes: 3, engine: 'paxos', observers: 1, basePort: 1, handleSignals: false, out: () => {} })).rejects.toThrow(/--observers: ZooKeeper's observers need --engine zab/);
    await expect(startDev({ nodes: 3, engine: 'bully', witness: true, basePort: 1, handleSignals: false, out: () => {} })).rejects.toThrow(/--witness: needs --engine raft, paxos or zab/);
    await expect(startDev({ nodes: 5, engine: 'zab', witness: true, observers: 2, basePort: 1, handleSignals: false, out: () => {} })).rejects.toThrow(/at most 7 members/);
  });

  it('zab, 3 voters + 1 observer: writes are visible on the observer (linearizable and ?stale); it never leads', async () => {
    let printed = '';
    const base = await freeBasePort(4);
    dev = await startDev({ nodes: 3, engine: 'zab', observers: 1, relays: false, basePort: base, handleSignals: false, out: (s) => (printed += s), progress: () => {}, readyTimeoutMs: 40_000 });
    const token = devToken(dev);
    expect(printed).toMatch(/quorumd dev: 4 nodes running, leader n[123]\b/);
    expect(printed).toMatch(/n4 .*\(observer: applies every write/);
    const obs = dev.nodes[3]!;
    expect(obs.role).toBe('observer');
    const st = JSON.parse((await call(obs.url, 'GET', '/v1/status', { token })).body.toString());
    expect(st.role).not.toBe('leader');
    expect(st.peers.map((p: { role: string }) => p.role)).toEqual(['voter', 'voter', 'voter']);
    // A write through a voter: the observer serves it by a linearizable read (it asks the
    // leader for its commit point first), and by ?stale once applied.
    expect((await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/seen', { body: 'by-all', token })).status).toBe(200);
    expect(await readUntil(obs.url, '/v1/kv/seen', token, 'by-all')).toEqual({ status: 200, body: 'by-all' });
    expect(await readUntil(obs.url, '/v1/kv/seen?stale', token, 'by-all')).toEqual({ status: 200, body: 'by-all' });
    // A write through the observer: forwarded to the leader, committed by the voters.
    const w = await call(obs.url, 'PUT', '/v1/kv/from-observer', { body: 'fwd', token });
    expect(w.status, w.body.toString()).toBe(200);
    expect((await call(dev.nodes[1]!.url, 'GET', '/v1/kv/from-observer', { token })).body.toString()).toBe('fwd');
    // The printed observer lines, as printed.
    const authLine = printed.split('\n').map((l) => l.trim()).find((l) => l.startsWith('AUTH='))!;
    const obsCurls = printed.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl ') && l.includes(obs.url));
    expect(obsCurls).toHaveLength(2);
    if (hasCurl) {
      // The guide's greeting comes from its own first PUT line; write it here.
      expect((await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/greeting', { body: 'hello', token })).status).toBe(200);
      await readUntil(obs.url, '/v1/kv/greeting?stale', token, 'hello');
      for (const line of obsCurls) {
        // Bounded retries: on a loaded machine ZAB's 150 ms syncLimit (the engine default)
        // can send a member back to election for a moment, and a read then gets a 503.
        let stdout = '';
        for (let i = 0; i < 20 && stdout !== 'hello HTTP200'; i++) {
          if (i > 0) await new Promise((res) => setTimeout(res, 250));
          stdout = (await promisify(execFile)('/bin/sh', ['-c', `${authLine}; ${line.replace(/\s+#.*$/, '')} -w ' HTTP%{http_code}' --max-time 10`], { encoding: 'utf8' })).stdout;
        }
        expect(stdout, line).toBe('hello HTTP200');
      }
    }
    // Kill the leader (a voter): a voter takes over, the observer follows it and keeps serving.
    const r = await killLeaderRound(dev, token, 1);
    expect(r.writeMs, JSON.stringify(r)).toBeGreaterThan(0);
    expect(r.killed).not.toBe(obs.name);
    expect(r.newLeader).toMatch(/^n[123]$/);
    // (The round's other in-flight writes may land after its first 200: write once more.)
    const newLeader = dev.nodes.find((n) => n.name === r.newLeader)!;
    expect((await call(newLeader.url, 'PUT', '/v1/kv/after-kill', { body: 'new-epoch', token })).status).toBe(200);
    expect(await readUntil(obs.url, '/v1/kv/after-kill', token, 'new-epoch')).toEqual({ status: 200, body: 'new-epoch' });
    const ol = JSON.parse((await call(obs.url, 'GET', '/v1/leader', { token })).body.toString());
    expect(ol.leader).not.toBe(obs.name);
  }, 180_000);

  for (const engine of ['paxos', 'zab'] as const) {
    it(`${engine}, 2 boards + a witness: writes commit, the witness keeps no data, the other board takes over after SIGKILL`, async () => {
      let printed = '';
      const base = await freeBasePort(3);
      dev = await startDev({ nodes: 2, engine, witness: true, relays: false, basePort: base, handleSignals: false, out: (s) => (printed += s), progress: () => {}, readyTimeoutMs: 40_000 });
      const token = devToken(dev);
      expect(printed).toMatch(/quorumd dev: 3 nodes running, leader n[12]\b/);
      expect(printed).toMatch(/n3 .*\(witness: votes, never leads, keeps no data\)/);
      const wit = dev.nodes[2]!;
      const st = JSON.parse((await call(wit.url, 'GET', '/v1/status', { token })).body.toString());
      expect(st.witness).toBe(true);
      expect((await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/k', { body: 'v', token })).status).toBe(200);
      expect((await call(dev.nodes[1]!.url, 'GET', '/v1/kv/k', { token })).body.toString()).toBe('v');
      const wr = await call(wit.url, 'GET', '/v1/kv/k?stale', { token });
      expect(wr.status).toBe(503);
      expect(wr.body.toString()).toMatch(/witness and holds no data/);
      // SIGKILL the leading board: the other one leads with the witness's vote.
      const r = await killLeaderRound(dev, token, 1);
      expect(r.writeMs, JSON.stringify(r)).toBeGreaterThan(0);
      expect(r.killed).not.toBe(wit.name);
      const other = dev.nodes.find((n) => n.name !== r.killed && n !== wit)!;
      expect(r.newLeader).toBe(other.name);
      // (The round's other in-flight writes may land after its first 200: write once more.)
      expect((await call(other.url, 'PUT', '/v1/kv/after-kill', { body: 'two-of-three', token })).status).toBe(200);
      expect(await readUntil(other.url, '/v1/kv/after-kill', token, 'two-of-three')).toEqual({ status: 200, body: 'two-of-three' });
      expect(await waitSettled({ ...dev, nodes: dev.nodes.filter((n) => n.name !== r.killed) }, token)).toBe(other.name);
    }, 180_000);
  }
});
