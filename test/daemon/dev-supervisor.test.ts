/**
 * `quorumd dev` as a supervisor (issue 12 points 1 and 7): a node process that crashes
 * (here: its engine throws, injected by QUORUMD_INJECT_FAULT and armed by SIGUSR2, so
 * it takes the fatal path and exits 70) is restarted after a backoff, the crash and the
 * restart are printed with the log file, the log holds the stack, and at exit the temp
 * directory is kept (and said so) instead of deleted.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startDev, type DevCluster } from '../../daemon/dev.ts';
import { call } from '../../daemon/client/http.ts';
import { freeBasePort } from '../helpers/ports.ts';

let dev: DevCluster | undefined;
afterAll(async () => {
  await dev?.stop();
  if (dev) rmSync(dev.dir, { recursive: true, force: true });
});

async function until(what: string, pred: () => boolean | Promise<boolean>, maxMs: number): Promise<void> {
  const end = performance.now() + maxMs;
  for (let i = 0; i < 100_000; i++) {
    if (await pred()) return;
    if (performance.now() > end) throw new Error(`timed out (${maxMs} ms) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('quorumd dev supervisor', () => {
  it('restarts a crashed node, prints where its log is, keeps the log with the stack and the temp dir at exit', async () => {
    let printed = '';
    const base = await freeBasePort(3);
    const prev = process.env.QUORUMD_INJECT_FAULT;
    process.env.QUORUMD_INJECT_FAULT = 'engine-tick@SIGUSR2'; // inherited by the node processes
    try {
      dev = await startDev({ nodes: 3, engine: 'raft', basePort: base, handleSignals: false, jobs: [], out: (s) => (printed += s), progress: () => {} });
    } finally {
      if (prev === undefined) delete process.env.QUORUMD_INJECT_FAULT;
      else process.env.QUORUMD_INJECT_FAULT = prev;
    }
    const token = readFileSync(dev.tokenFile, 'utf8').trim();
    // A follower crashes (a follower: no fence of it, the supervisor alone brings it back).
    const leader = JSON.parse((await call(dev.nodes[0]!.url, 'GET', '/v1/leader', { token })).body.toString()).leader as string;
    const victim = dev.nodes.find((n) => n.name !== leader)!;
    const oldPid = victim.child!.pid!;
    process.kill(oldPid, 'SIGUSR2');
    await until('the crash to be printed', () => printed.includes(`[dev] ${victim.name} (pid ${oldPid}) crashed (exit code 70: a fatal error)`), 30_000);
    expect(printed).toContain(`Its log is kept: ${victim.logFile}`);
    expect(printed).toMatch(new RegExp(`\\[dev\\] restarting ${victim.name} in 500 ms \\(restart 1 of at most 5 per 60 s\\)`));
    await until('the restart', () => printed.includes(`[dev] restarted ${victim.name} (pid `), 30_000);
    expect(victim.child?.pid).not.toBe(oldPid);
    // The restarted node serves again and follows the leader.
    await until('the restarted node to answer', async () => {
      const r = await call(victim.url, 'GET', '/v1/leader', { token, timeoutMs: 1000 }).catch(() => undefined);
      return r?.status === 200 && JSON.parse(r.body.toString()).leader !== null;
    }, 60_000);
    expect(dev.crashes).toMatchObject([{ node: victim.name, pid: oldPid, code: 70, restartInMs: 500 }]);
    // The crash stack is in the node's log file.
    const log = readFileSync(victim.logFile, 'utf8');
    expect(log).toMatch(/"stack":"InternalError: internal error in engine raft tick: Error: injected fault: RaftNode\.tick throws[^"]*\\n\s+at /);
    // At exit the temp dir (configs, data, logs) is kept and said so.
    await dev.stop();
    expect(printed).toContain(`[dev] kept ${dev.dir}: ${victim.name} crashed during this run; logs: ${victim.logFile}`);
    expect(existsSync(victim.logFile)).toBe(true);
  }, 180_000);
});
