/**
 * `quorumd dev`: nodes as child processes, the printed guide's lines work as printed
 * (run through curl when it is installed), and stop() leaves nothing behind.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE_MALLOC_TUNABLES, startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { freeBasePort } from '../helpers/ports.ts';

let dev: DevCluster | undefined;
afterAll(async () => {
  await dev?.stop();
});

const hasCurl = spawnSync('curl', ['--version']).status === 0;

describe('quorumd dev', () => {
  it('starts 3 node processes, prints a guide whose curl lines work, and cleans up', async () => {
    let printed = '';
    const progress: string[] = [];
    const base = await freeBasePort(3);
    dev = await startDev({ nodes: 3, engine: 'raft', basePort: base, handleSignals: false, out: (s) => (printed += s), progress: (line, final) => void progress.push(final ? '(done)' : line) });
    // A progress line while starting, ending once the leader was stable; the guide once, after it.
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe('(done)');
    expect(progress.at(-2)).toMatch(/^\[dev\] starting: 3\/3 nodes answer; leader: n\d \(term \d+\), stable for (1\.[5-9]|[2-9]\.\d|\d{2,}\.\d) s/);
    expect(printed.match(/quorumd dev: 3 nodes running/g)).toHaveLength(1);
    // Commands that work from any directory: no npx (it asks the registry outside the clone).
    expect(printed).not.toContain('npx quorumd');
    expect(printed).toMatch(/^  (quorumd|node \/\S+\/bin\/quorumd\.js) status --node /m);
    expect(dev.nodes.map((n) => n.url)).toEqual([1, 2, 3].map((k) => `http://127.0.0.1:${base + k}`));
    expect(new Set(dev.nodes.map((n) => n.child?.pid)).size).toBe(3);
    // Each node runs with glibc's malloc settings (NODE_MALLOC_TUNABLES), unless this environment has its own.
    if (process.platform === 'linux') {
      for (const n of dev.nodes) {
        // glibc parses the variable in place, putting a NUL where a ':' separated two settings.
        const env = `:${readFileSync(`/proc/${n.child!.pid}/environ`, 'utf8').replace(/\0/g, ':')}`;
        expect(env).toContain(`:GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? NODE_MALLOC_TUNABLES}:`);
      }
    }
    expect(printed).toMatch(/leader n\d/);
    // The guide's first lines: how the CLI (QUORUMD_DATA_DIR) and curl ($AUTH) find the token.
    const exportLine = printed.split('\n').map((l) => l.trim()).find((l) => l.startsWith('export QUORUMD_DATA_DIR='));
    const authLine = printed.split('\n').map((l) => l.trim()).find((l) => l.startsWith('AUTH='));
    expect(exportLine).toBe(`export QUORUMD_DATA_DIR=${dev.dir}`);
    expect(authLine).toBeDefined();
    delete process.env.QUORUMD_API_TOKEN_FILE;
    process.env.QUORUMD_DATA_DIR = dev.dir;
    const curls = printed.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl ') && !l.includes('watch=') && !l.includes('|'));
    expect(curls.length).toBeGreaterThanOrEqual(6);
    if (hasCurl) {
      for (const line of curls) {
        // Asynchronously: the broker runs in this process and must keep serving meanwhile.
        // A 503 is a definite "not applied, retry" (e.g. an election on a loaded machine):
        // the line is run again, as a user would, a bounded number of times.
        let out = '';
        for (let attempt = 0; attempt < 10; attempt++) {
          out = (await promisify(execFile)('/bin/sh', ['-c', `${authLine}; ${line.replace(/\s+#.*$/, '')} -w ' HTTP%{http_code}' --max-time 10`], { encoding: 'utf8' })).stdout;
          if (!/HTTP503$/.test(out)) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        expect(out, line).toMatch(/HTTP200$/);
      }
    } else {
      const r = await call(dev.nodes[0]!.url, 'PUT', '/v1/kv/greeting', { body: 'hello' });
      expect(r.status).toBe(200);
    }
    // The printed CLI lines run as printed from another directory (not the clone).
    const cliLines = printed.split('\n').map((l) => l.trim()).filter((l) => /^(quorumd|node \S+quorumd\.js) (status|lock list|jobs) /.test(l));
    expect(cliLines.length).toBeGreaterThanOrEqual(3);
    for (const line of cliLines) {
      const { stdout: o } = await promisify(execFile)('/bin/sh', ['-c', line.replace(/\s+#.*$/, '')], { encoding: 'utf8', cwd: tmpdir(), env: { ...process.env, QUORUMD_DATA_DIR: dev.dir, QUORUMD_API_TOKEN_FILE: '' } });
      expect(o, line).toMatch(/NODE|LOCK|JOB|no lock is held/);
    }
    const g = await call(dev.nodes[1]!.url, 'GET', '/v1/kv/greeting');
    expect(g.body.toString()).toBe('hello');
    const dir = dev.dir;
    await dev.stop();
    dev = undefined;
    expect(existsSync(dir)).toBe(false);
  }, 60_000);
});
