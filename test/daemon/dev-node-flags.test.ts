/**
 * QUORUMD_DEV_NODE_FLAGS (daemon/dev.ts devNodeFlags): extra flags for the nodes of
 * `quorumd dev`, for measuring a V8 flag on a real cluster. Bad input is refused with the
 * variable named, before a broker or node is started.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { devNodeFlags, startDev } from '../../daemon/dev.ts';
import { freeBasePort } from '../helpers/ports.ts';

describe('QUORUMD_DEV_NODE_FLAGS', () => {
  const saved = process.env.QUORUMD_DEV_NODE_FLAGS;
  afterEach(() => {
    if (saved === undefined) delete process.env.QUORUMD_DEV_NODE_FLAGS;
    else process.env.QUORUMD_DEV_NODE_FLAGS = saved;
  });

  it('reads flags separated by spaces and refuses anything that is not --name or --name=value', () => {
    expect(devNodeFlags(undefined)).toEqual([]);
    expect(devNodeFlags('  ')).toEqual([]);
    expect(devNodeFlags(' --single-threaded-gc   --interrupt-budget=16384 ')).toEqual(['--single-threaded-gc', '--interrupt-budget=16384']);
    expect(() => devNodeFlags('--max-lazy single-threaded-gc')).toThrow(/QUORUMD_DEV_NODE_FLAGS: expected .*got "single-threaded-gc"/);
    expect(() => devNodeFlags('-e')).toThrow(/QUORUMD_DEV_NODE_FLAGS.*got "-e"/);
    expect(() => devNodeFlags('--')).toThrow(/QUORUMD_DEV_NODE_FLAGS.*got "--"/);
  });

  it('a flag node does not know stops quorumd dev before anything starts, with node\'s message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorumd-dev-flags-'));
    try {
      const base = await freeBasePort(3);
      process.env.QUORUMD_DEV_NODE_FLAGS = '--single-threaded-gc --no-such-v8-flag-here';
      // Should it start after all, its cluster is stopped again (and the test fails on the message).
      const started = startDev({ nodes: 3, engine: 'raft', basePort: base, dataDir: join(dir, 'd'), handleSignals: false, out: () => {} }).then(async (dev) => {
        await dev.stop();
        throw new Error('quorumd dev started with a flag node does not know');
      });
      await expect(started).rejects.toThrow(/QUORUMD_DEV_NODE_FLAGS: node does not start with "--single-threaded-gc --no-such-v8-flag-here": \S*node: bad option: --no-such-v8-flag-here/);
      // Refused before the data dir (configs, keys) was written.
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
