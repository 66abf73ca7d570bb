/**
 * `quorumd dev --engine paxos` and `--engine zab`: three real node processes on the
 * engine runtime (daemon/runtime/engine-node.ts). The printed curl lines work; writes
 * through any node, linearizable reads from another, cas and locks; SIGKILL of the
 * leader → a survivor acknowledges a write (bounded polling), the write is readable
 * from the other survivor, and the killed node, started again, catches up.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { startDev, type DevCluster } from '../../../daemon/dev.ts';
import { call } from '../../../daemon/client/http.ts';
import { freeBasePort } from '../../helpers/ports.ts';
import { devToken, killLeaderRound, restartAndSettle, waitSettled } from './dev-failover.ts';

const hasCurl = spawnSync('curl', ['--version']).status === 0;
let dev: DevCluster | undefined;
afterEach(async () => {
  await dev?.stop();
  dev = undefined;
});

for (const engine of ['paxos', 'zab'] as const) {
  describe(`quorumd dev --engine ${engine}`, () => {
    it('serves the API on 3 processes, and a new leader commits a write after SIGKILL of the old one', async () => {
      let printed = '';
      const base = await freeBasePort(3);
      // relays: false — failover without fencing here (test/daemon/fencing/dev-fence.test.ts has it with relays).
      dev = await startDev({ nodes: 3, engine, relays: false, basePort: base, handleSignals: false, out: (s) => (printed += s), progress: () => {}, readyTimeoutMs: 30_000 });
      const token = devToken(dev);
      expect(printed).toMatch(/quorumd dev: 3 nodes running, leader n\d/);
      expect(printed).toContain('relays      none');
      const st = JSON.parse((await call(dev.nodes[0]!.url, 'GET', '/v1/status', { token })).body.toString());
      expect(st.engine).toBe(engine);
      // The guide's curl lines, as printed (the watch and the metrics pipe aside).
      const authLine = printed.split('\n').map((l) => l.trim()).find((l) => l.startsWith('AUTH='))!;
      const curls = printed.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl ') && !l.includes('watch=') && !l.includes('|') && !l.includes('/v1/leader'));
      expect(curls.length).toBeGreaterThanOrEqual(6);
      if (hasCurl) {
        for (const line of curls) {
          const { stdout } = await promisify(execFile)('/bin/sh', ['-c', `${authLine}; ${line.replace(/\s+#.*$/, '')} -w ' HTTP%{http_code}' --max-time 10`], { encoding: 'utf8' });
          expect(stdout, line).toMatch(/HTTP200$/);
        }
        expect((await call(dev.nodes[1]!.url, 'GET', '/v1/kv/greeting', { token })).body.toString()).toBe('hello');
      }
      // The printed CLI lines (status, lock list) run as printed, from another directory.
      const cliLines = printed.split('\n').map((l) => l.trim()).filter((l) => /^(quorumd|node \S+quorumd\.js) (status|lock list) /.test(l));
      expect(cliLines.length).toBeGreaterThanOrEqual(2);
      for (const line of cliLines) {
        const { stdout: o } = await promisify(execFile)('/bin/sh', ['-c', line.replace(/\s+#.*$/, '')], { encoding: 'utf8', cwd: tmpdir(), env: { ...process.env, QUORUMD_DATA_DIR: dev.dir, QUORUMD_API_TOKEN_FILE: '' } });
        expect(o, line).toMatch(/NODE|LOCK|no lock is held/);
      }
      // cas through a follower and the leader: create-only twice → 200 then 409.
      const a = await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/once2?cas=0', { body: 'x', token });
      const b = await call(dev.nodes[2]!.url, 'PUT', '/v1/kv/once2?cas=0', { body: 'y', token });
      expect([a.status, b.status]).toEqual([200, 409]);
      expect((await call(dev.nodes[1]!.url, 'GET', '/v1/kv/once2', { token })).body.toString()).toBe('x');
      // A lock: granted with a token; held → 409 for another owner.
      const l1 = await call(dev.nodes[1]!.url, 'POST', '/v1/locks/job?ttl=15s&owner=a', { token });
      expect(l1.status).toBe(200);
      expect(JSON.parse(l1.body.toString()).token).toBeGreaterThan(0);
      expect((await call(dev.nodes[2]!.url, 'POST', '/v1/locks/job?ttl=15s&owner=b', { token })).status).toBe(409);

      // SIGKILL the leader: a survivor acknowledges a write (bounded: 20 s).
      const r = await killLeaderRound(dev, token, 1);
      expect(r.writeMs, JSON.stringify(r)).toBeGreaterThan(0);
      expect(r.newLeader).not.toBe(r.killed);
      const other = dev.nodes.find((n) => n.name !== r.killed && n.name !== r.via)!;
      const after = await call(other.url, 'PUT', '/v1/kv/after-kill', { body: 'committed', token });
      expect(after.status).toBe(200);
      const via = dev.nodes.find((n) => n.name === r.via)!;
      expect((await call(via.url, 'GET', '/v1/kv/after-kill', { token })).body.toString()).toBe('committed');
      // The killed node comes back and catches up (its local state has the write).
      expect(await restartAndSettle(dev, token, r.killed)).not.toBeNull();
      const back = dev.nodes.find((n) => n.name === r.killed)!;
      const deadline = Date.now() + 15_000;
      let seen = '';
      while (Date.now() < deadline && seen !== 'committed') {
        const g = await call(back.url, 'GET', '/v1/kv/after-kill?stale', { token }).catch(() => undefined);
        seen = g?.status === 200 ? g.body.toString() : '';
        if (seen !== 'committed') await new Promise((res) => setTimeout(res, 100));
      }
      expect(seen).toBe('committed');
      expect(await waitSettled(dev, token)).not.toBeNull();
      const dir = dev.dir;
      await dev.stop();
      dev = undefined;
      expect(existsSync(dir)).toBe(false);
    }, 120_000);
  });
}
