/**
 * The CLI as a user meets it: a real child process through bin/quorumd.js.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });

describe('quorumd CLI', () => {
  it('--help lists every contract command', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    for (const cmd of ['dev', 'start', 'broker', 'status', 'kv', 'lock', 'fence', 'config', 'sim']) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
    }
  });

  it('rejects a bad argument with a message naming it', () => {
    const r = run('dev', '--nodes', 'many');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('--nodes must be an integer');
  });

  it('a command that is not built yet says so and exits 2', () => {
    const r = run('fence', 'n2');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('not implemented yet: quorumd fence');
  });
});
