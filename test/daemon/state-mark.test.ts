/**
 * A node whose engine directory vanished does not come back as a new member. Found by
 * hand: `rm -rf <dataDir>/raft` under a running `quorumd dev` member; it stopped at its
 * next snapshot (ENOENT) and its restart made a fresh raft/ and ran with term 0 and an
 * empty log, having forgotten its votes and what it acknowledged. The data directory
 * now keeps `raft.initialized` once raft/ held a hard state (daemon/start.ts,
 * checkStateMark), and a start that finds the mark without the hard state refuses.
 * The node needs no broker for this: it boots (and writes its hard state) before any
 * peer is reachable.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { devConfig } from '../../daemon/dev.ts';
import { ensureTokenFile } from '../../daemon/config/secrets.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { spawnTied } from '../helpers/tied.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');
const work = mkdtempSync(join(tmpdir(), 'quorumd-state-mark-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

async function until(what: string, fn: () => boolean, maxMs: number): Promise<void> {
  const end = performance.now() + maxMs;
  for (let i = 0; i < 10_000 && performance.now() < end; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a node whose engine directory is gone', () => {
  it('refuses to start as a new member, naming the directory, the mark and what to do', async () => {
    writeFileSync(join(work, 'cluster.key'), 'ab'.repeat(32) + '\n', { mode: 0o600 });
    ensureTokenFile(join(work, 'api.token'), 'test token');
    const cfg = join(work, 'n1.yaml');
    writeFileSync(cfg, devConfig({ k: 1, n: 1, keyFile: join(work, 'cluster.key'), tokenFile: join(work, 'api.token'), brokerUrl: 'mqtt://127.0.0.1:1', basePort: await freeBasePort(1), dir: work, jobs: [] }));
    const data = join(work, 'n1');
    const mark = join(data, 'raft.initialized');
    const child = spawnTied(process.execPath, [bin, 'start', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const out: string[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await until('raft.initialized', () => existsSync(mark), 60_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${out.join('').slice(-2000)}`);
    });
    expect(existsSync(join(data, 'raft', 'hardstate'))).toBe(true);
    expect(readFileSync(mark, 'utf8')).toContain('raft/');
    child.kill('SIGKILL');
    await exited;

    for (const damage of ['removed', 'emptied'] as const) {
      if (damage === 'removed') rmSync(join(data, 'raft'), { recursive: true });
      else mkdirSync(join(data, 'raft'), { mode: 0o700 }); // back, but empty
      const r = spawnSync(process.execPath, [bin, 'start', '--config', cfg], { encoding: 'utf8', timeout: 60_000 });
      expect(r.signal, `killed by the test's bound: ${r.stderr}`).toBeNull();
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain(`quorumd: data directory ${data}: ${join(data, 'raft')} ${damage === 'removed' ? 'is missing' : 'has no hard state'}, but ${mark} says this node kept its state there: its votes and log are gone`);
      expect(r.stderr).toContain(`only if you set up the whole cluster afresh, remove ${mark}`);
      expect(existsSync(join(data, 'quorumd.pid')), 'the lock of the refused start').toBe(false);
    }
  }, 120_000);
});
