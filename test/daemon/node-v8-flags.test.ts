/**
 * bin/quorumd.js sets two V8 flags for a node process (`start`/`witness --config FILE`, as
 * `quorumd dev` and the systemd unit start one) before it loads the node's bundle:
 * --bytecode-old-age=1 and --gc-memory-reducer-start-delay-ms=4000 (why: the comment
 * there, and docs/install-pi.md "Memory"). A flag the command line gives wins; other
 * commands (the CLI) get neither. The start trace (QUORUMD_TRACE_START=1) says which
 * were set; what they do to a node's memory is measured by `npm run bench -- vs-etcd`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'quorumd-v8-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the bin (a missing config: a node process that ends at once) and returns its start trace lines about V8 flags. */
function flagsTrace(nodeFlags: string[], args: string[]): { lines: string[]; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [...nodeFlags, join(root, 'bin', 'quorumd.js'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, QUORUMD_TRACE_START: '1', QUORUMD_BUILD_CHECKED: '1' },
  });
  if (r.error) throw r.error;
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('quorumd start-trace v8 flags set:')).map((l) => l.replace(/ \+[\d.]+ @.*$/, ''));
  return { lines, stderr: r.stderr, status: r.status };
}

describe('V8 flags of a node process', () => {
  const missing = join(dir, 'missing.yaml');

  it('a node started as dev and the unit start it gets both', () => {
    for (const args of [['start', '--config', missing], ['witness', `--config=${missing}`]]) {
      const r = flagsTrace([], args);
      expect(r.lines, r.stderr).toEqual(['quorumd start-trace v8 flags set: --bytecode-old-age=1 --gc-memory-reducer-start-delay-ms=4000']);
      // It still ends as a node with a missing config does: exit 2, the file named.
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(missing);
    }
  });

  it('a flag on the command line wins (either spelling)', () => {
    expect(flagsTrace(['--bytecode-old-age=3'], ['start', '--config', missing]).lines).toEqual(['quorumd start-trace v8 flags set: --gc-memory-reducer-start-delay-ms=4000']);
    expect(flagsTrace(['--bytecode_old_age=3', '--gc_memory_reducer_start_delay_ms=8000'], ['start', '--config', missing]).lines).toEqual(['quorumd start-trace v8 flags set: none']);
  });

  it('the CLI gets neither', () => {
    const r = flagsTrace([], ['--version']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.lines).toEqual([]);
  });
});
