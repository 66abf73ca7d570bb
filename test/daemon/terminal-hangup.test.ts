/**
 * A process whose terminal hangs up (daemon/terminal.ts, daemon/exit-codes.ts): writes
 * to the dead terminal fail with EIO, often before the SIGHUP has reached its handler.
 * They are dropped, the process goes on, and it ends with the status it chose, not
 * killed inside Node's exit. Before: the first EIO was thrown (an uncaught exception:
 * `quorumd dev` ended before its stop had begun), and the exit aborted in Node's
 * terminal reset (SIGABRT or SIGSEGV).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ptyUnavailable, runInPty, type PtySession } from '../helpers/pty.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorumd-terminal-'));
let pty: PtySession | undefined;
afterAll(() => {
  pty?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const noPty = ptyUnavailable();
describe.skipIf(noPty !== undefined)('a terminal that hangs up while the process writes to it', () => {
  it('the writes are dropped, the process finishes its work and ends with its own status', async () => {
    const done = join(dir, 'done');
    pty = runInPty(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'terminal-hangup-child.ts'), done]);
    const end = performance.now() + 60_000;
    while (!pty.output().includes('READY') && performance.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(pty.output(), 'the child started').toContain('READY');
    pty.hangUp();
    const e = await pty.ended(30_000);
    const signal = e.signal === null ? null : (Object.entries(constants.signals).find(([, n]) => n === e.signal)?.[0] ?? e.signal);
    expect({ code: e.code, signal }, `its terminal:\n${pty.output().slice(-600)}`).toEqual({ code: 7, signal: null });
    expect(existsSync(done) && readFileSync(done, 'utf8'), 'it got to the end of its work').toBe('done');
  }, 120_000);
});
