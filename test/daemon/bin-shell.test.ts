/**
 * bin/quorumd.js starts with a few lines of shell, which the kernel runs when the file is
 * run as a command (`quorumd` on the PATH is npm's symlink to it): they run node on the
 * same file in their place, with the memory settings for the resident commands typed by
 * hand (`start`, `witness`, `broker`: --max-semi-space-size=4 --heap-growing-percent=20
 * and GLIBC_TUNABLES unless set, as the systemd unit and `quorumd dev` give a node) and
 * no flag for any other command (a V8 flag makes Node compile its built-in modules from
 * source: ~20 ms more per CLI call; docs/install-pi.md "Memory"). Node itself reads
 * those lines as a string and a comment.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS, NODE_MALLOC_TUNABLES } from '../../daemon/dev.ts';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'quorumd.js');
const dir = mkdtempSync(join(tmpdir(), 'quorumd-bin-shell-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// As npm links a package's bin: <project>/node_modules/.bin/quorumd -> a relative path to bin/quorumd.js.
const linkDir = join(dir, 'proj', 'node_modules', '.bin');
mkdirSync(linkDir, { recursive: true });
const link = join(linkDir, 'quorumd');
symlinkSync(relative(linkDir, bin), link);

// A `node` that only says how it was started: its arguments, then GLIBC_TUNABLES, each ended by a NUL.
const fakeDir = join(dir, 'fake-node');
mkdirSync(fakeDir);
writeFileSync(join(fakeDir, 'node'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done\nprintf "GLIBC_TUNABLES=%s\\0" "${GLIBC_TUNABLES-(unset)}"\n');
chmodSync(join(fakeDir, 'node'), 0o755);

function viaShell(args: string[], env: NodeJS.ProcessEnv = {}): string[] {
  const base = { ...process.env };
  delete base.GLIBC_TUNABLES;
  const r = spawnSync(link, args, { encoding: 'utf8', timeout: 30_000, env: { ...base, PATH: `${fakeDir}${delimiter}${process.env.PATH ?? ''}`, ...env } });
  if (r.error) throw r.error;
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\0').slice(0, -1);
}

// What `quorumd dev` gives its nodes: the shell lines must give a hand-started node the same.
const MEMORY = [...NODE_FLAGS];
const TUNABLES = `GLIBC_TUNABLES=${NODE_MALLOC_TUNABLES}`;

describe('bin/quorumd.js run as a command', () => {
  it('the link npm makes resolves to this file (a relative symlink)', () => {
    expect(realpathSync(link)).toBe(realpathSync(bin));
  });

  it('a CLI call, dev, sim and --help: node on the same path, no flag, no tunables', () => {
    for (const args of [['kv', 'get', 'x'], ['dev', '--nodes', '3'], ['sim', '--seed', '1'], ['--help'], []]) {
      expect(viaShell(args)).toEqual([link, ...args, 'GLIBC_TUNABLES=(unset)']);
    }
  });

  it('start, witness and broker typed by hand: the memory settings of the unit', () => {
    for (const args of [['start', '--config', '/etc/quorumd/q.yaml'], ['witness', '--config=w.yaml'], ['broker', '--port', '1883'], ['--verbose', 'start']]) {
      expect(viaShell(args)).toEqual([...MEMORY, link, ...args, TUNABLES]);
    }
  });

  it('the systemd unit starts a node with the same flags and tunables', () => {
    const unit = readFileSync(join(root, 'packaging', 'quorumd.service'), 'utf8');
    expect(unit).toMatch(new RegExp(`^ExecStart=/usr/bin/node ${MEMORY.join(' ')} /opt/quorumd/bin/quorumd\\.js start `, 'm'));
    expect(unit).toContain(`\nEnvironment=${TUNABLES}\n`);
  });

  it('GLIBC_TUNABLES the environment has is kept', () => {
    expect(viaShell(['start', '--config', 'a.yaml'], { GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' })).toEqual([...MEMORY, link, 'start', '--config', 'a.yaml', 'GLIBC_TUNABLES=glibc.malloc.arena_max=1']);
  });

  it('arguments reach node as given: spaces, quotes, globs, $, empty, a leading dash', () => {
    const odd = ['kv', 'put', 'a key', "it's", '*', '$HOME', '', '-x', 'two\nlines'];
    expect(viaShell(odd)).toEqual([link, ...odd, 'GLIBC_TUNABLES=(unset)']);
  });

  it('with the real node: the command runs from the link (node finds dist/ beside the real file)', () => {
    const want = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    const r = spawnSync(link, ['--version'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(want);
  });

  it('with the real node: a node started by hand has the flags, a CLI call none', () => {
    // --require runs before the bin: it prints what node was started with, then the bin
    // goes on (a missing config: exit 2 for start; a usage line for `kv get` without a key).
    const probe = join(dir, 'probe.cjs');
    writeFileSync(probe, "process.stderr.write(`probe execArgv=${JSON.stringify(process.execArgv)} tunables=${process.env.GLIBC_TUNABLES ?? '(unset)'}\\n`);\n");
    const base: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--require=${probe}` };
    delete base.GLIBC_TUNABLES;
    const seen = (args: string[]) => {
      const r = spawnSync(link, args, { encoding: 'utf8', timeout: 60_000, env: base });
      const line = r.stderr.split('\n').find((l) => l.startsWith('probe '));
      expect(line, r.stderr).toBeDefined();
      return { line: line!, status: r.status, stderr: r.stderr };
    };
    const start = seen(['start', '--config', join(dir, 'missing.yaml')]);
    expect(start.line).toBe(`probe execArgv=${JSON.stringify(MEMORY)} tunables=${TUNABLES.slice('GLIBC_TUNABLES='.length)}`);
    expect(start.status, start.stderr).toBe(2);
    expect(start.stderr).toContain('missing.yaml');
    const cli = seen(['leader', '--node', 'http://127.0.0.1:9']);
    expect(cli.line).toBe('probe execArgv=[] tunables=(unset)');
  });

  it('node itself skips the shell lines: `node bin/quorumd.js` runs the same command', () => {
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
  });
});
