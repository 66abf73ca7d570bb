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
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--nodes must be an integer');
  });

  it('fence and fence confirm ask the node given by --node; a node never reached = nothing done (exit 3)', () => {
    const r = run('fence', 'n2', '--node', 'http://127.0.0.1:1');
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('POST http://127.0.0.1:1/v1/fence/n2');
    expect(r.stderr).toContain('the node was not reached: nothing was done');
    const c = run('fence', 'confirm', 'n2', '--node', 'http://127.0.0.1:1');
    expect(c.status).toBe(3);
    expect(c.stderr).toContain('POST http://127.0.0.1:1/v1/fence/n2/confirm');
  });

  it('fence rejects a bad --node URL naming it', () => {
    const r = run('fence', 'n2', '--node', 'not a url');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--node "not a url" is not a URL');
  });
});
