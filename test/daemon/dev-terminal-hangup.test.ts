/**
 * `quorumd dev` in a terminal that goes away (a window closed, an SSH session dropped).
 * The terminal here is a real pty: util-linux's `script` runs `quorumd dev` in one,
 * through a shell as a terminal session does, and is then killed, which closes the
 * pty's master side. The kernel hangs the terminal up: the shell gets SIGHUP and dies,
 * the processes of the session's foreground group get SIGHUP, and every later write to
 * the terminal fails with EIO.
 *
 * Before: the supervisor died of the SIGHUP at once (Node's default), and once it
 * handled SIGHUP, its first line on the dead terminal ("[dev] stopping...") threw EIO
 * and ended it with exit 1 before the stop had begun. Either way its temp directory
 * stayed behind. Now it stops as on Ctrl-C, down to removing the temp directory.
 *
 * The pty cases run through test/helpers/pty.ts, which also learns dev's exit status:
 * the same shell case, and `quorumd dev` itself the session leader of its terminal
 * (`ssh -t host quorumd dev`, a terminal emulator that runs it directly). Before, in
 * both: the stop finished, and then Node 20 aborted inside its own exit as it restored
 * the dead terminal's mode (SIGSEGV or SIGABRT: 10 of 10 trials through a shell, 20 of
 * 20 as session leader; daemon/terminal.ts). Now: exit 0.
 */
import { spawnTied } from '../helpers/tied.ts';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin } from './e2e/proc-cluster.ts';
import { freeBasePort } from '../helpers/ports.ts';
import { processesUsing } from '../helpers/procs.ts';
import { ptyUnavailable, runInPty, type PtySession } from '../helpers/pty.ts';
import { constants } from 'node:os';
import { until } from '../helpers/until.ts';

const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
const work = mkdtempSync(join(tmpdir(), 'quorumd-dev-hangup-'));
let devDir = '';
let term: ReturnType<typeof spawnTied> | undefined;
/** The pty sessions and temp directories of the pty cases, for afterAll. */
const ptys: PtySession[] = [];
const ptyDevDirs: string[] = [];

afterAll(() => {
  term?.kill('SIGKILL');
  for (const p of ptys) p.kill();
  for (const d of [devDir, ...ptyDevDirs].filter((x) => x !== '')) {
    for (const p of processesUsing(d)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(d, { recursive: true, force: true });
  }
  rmSync(work, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('quorumd dev when its terminal goes away', () => {
  // util-linux's script is in Debian's essential bsdutils; without it there is no pty to close.
  it.skipIf(SCRIPT === undefined)('stops as on Ctrl-C: its nodes stopped, its temp directory removed', async () => {
    const base = await freeBasePort(3);
    const typescript = join(work, 'typescript');
    // `; true`: the shell stays (no exec), as a login shell would, and dev is not the session leader.
    const cmd = `'${process.execPath}' '${bin}' dev --no-jobs --base-port ${base}; true`;
    // stdin stays an open pipe: script would pass an EOF on to the terminal.
    term = spawnTied(SCRIPT!, ['-qfec', cmd, typescript], { stdio: ['pipe', 'ignore', 'ignore'] });
    const shown = () => (existsSync(typescript) ? readFileSync(typescript, 'utf8') : '');
    devDir = await until('the guide on the terminal', () => /export QUORUMD_DATA_DIR=(\S+)/.exec(shown())?.[1], 90_000);
    expect(shown()).toMatch(/running, leader n\d/);
    const nodes = processesUsing(devDir);
    expect(nodes.length, 'its three node processes').toBeGreaterThanOrEqual(3);

    term.kill('SIGKILL'); // the terminal goes away

    // Bounded waits, generous for a loaded machine: a stop takes well under a second.
    await until('the temp directory to be removed', () => (existsSync(devDir) ? undefined : true), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${devDir} is still there (the supervisor did not finish its stop); terminal output:\n${shown().slice(-800)}`);
    });
    await until('every process of the cluster to exit', () => (nodes.some(alive) ? undefined : true), 30_000);
  }, 180_000);

  const noPty = ptyUnavailable();
  const signalName = (n: number | null) => (n === null ? null : (Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? n));

  // The first case again, with what it could not see: dev's exit status (the pty's python
  // process becomes dev's parent when the shell dies). Before: SIGSEGV, 10 of 10 trials.
  it.skipIf(noPty !== undefined)('through a shell: it exits 0 once its stop is done', async () => {
    const base = await freeBasePort(3);
    const pty = runInPty('/bin/sh', ['-c', `'${process.execPath}' '${bin}' dev --no-jobs --base-port ${base}; true`], { reap: true });
    ptys.push(pty);
    const shown = pty.output;
    const ptyDevDir = await until('the guide on the terminal', () => /export QUORUMD_DATA_DIR=(\S+)/.exec(shown())?.[1], 90_000);
    ptyDevDirs.push(ptyDevDir);
    await until("the guide's last line", () => (shown().includes('Ctrl-C stops everything.') ? true : undefined), 30_000);
    const devPid = /kill -USR2 (\d+)/.exec(shown())?.[1];
    expect(devPid, "the guide names dev's pid").toBeDefined();
    pty.hangUp();
    const end = await pty.ended(60_000);
    expect(signalName(end.signal), 'the shell dies of the hangup').toBe('SIGHUP');
    const dev = end.reaped[devPid!];
    expect(dev && { code: dev.code, signal: signalName(dev.signal) }, `dev's end (reaped: ${JSON.stringify(end.reaped)}); its terminal:\n${shown().slice(-800)}`).toEqual({ code: 0, signal: null });
    expect(existsSync(ptyDevDir), `${ptyDevDir} is still there`).toBe(false);
  }, 180_000);

  it.skipIf(noPty !== undefined)('as the session leader of its terminal: it stops as on Ctrl-C and exits 0', async () => {
    const base = await freeBasePort(3);
    const pty = runInPty(process.execPath, [bin, 'dev', '--no-jobs', '--base-port', String(base)]);
    ptys.push(pty);
    const shown = pty.output;
    const ptyDevDir = await until('the guide on the terminal', () => /export QUORUMD_DATA_DIR=(\S+)/.exec(shown())?.[1], 90_000);
    ptyDevDirs.push(ptyDevDir);
    // The guide's last line: dev is done writing, and waits.
    await until("the guide's last line", () => (shown().includes('Ctrl-C stops everything.') ? true : undefined), 30_000);
    const nodes = processesUsing(ptyDevDir);
    expect(nodes.length, 'its three node processes').toBeGreaterThanOrEqual(3);

    pty.hangUp();
    const end = await pty.ended(60_000);
    expect({ code: end.code, signal: signalName(end.signal) }, `dev's end; its terminal:\n${shown().slice(-800)}`).toEqual({ code: 0, signal: null });
    // Its stop was complete before it exited: directory removed, nodes stopped.
    expect(existsSync(ptyDevDir), `${ptyDevDir} is still there`).toBe(false);
    await until('every node process to exit', () => (nodes.some(alive) ? undefined : true), 30_000);
  }, 180_000);
});
