/**
 * The command prefix printed in guides (daemon/cli-path.ts) works when pasted into the
 * user's shell: a `quorumd` on the PATH counts only if it is this package's bin and the
 * PATH entry is not one that npx/npm scripts add for the command they run.
 */
import { mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliCommand, linkHint } from '../../daemon/cli-path.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorumd-clipath-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bin = cliCommand({ PATH: '' }).bin;

describe('cliCommand', () => {
  it('a PATH without quorumd: the absolute bin, and a hint how to link it', () => {
    const c = cliCommand({ PATH: '/nonexistent' });
    expect(c.onPath).toBe(false);
    expect(c.cmd).toBe(`node ${bin}`);
    expect(linkHint({ PATH: '/nonexistent' })).toMatch(/npm link/);
  });

  it('this package linked into a PATH directory (npm link): a bare quorumd', () => {
    const linked = join(dir, 'global-bin');
    mkdirSync(linked);
    symlinkSync(bin, join(linked, 'quorumd'));
    expect(cliCommand({ PATH: `/nonexistent:${linked}` })).toMatchObject({ cmd: 'quorumd', onPath: true });
    expect(linkHint({ PATH: linked })).toBe('');
  });

  it('only in a node_modules/.bin that npx put on the PATH: still the absolute bin', () => {
    const npxBin = join(dir, 'proj', 'node_modules', '.bin');
    mkdirSync(npxBin, { recursive: true });
    symlinkSync(bin, join(npxBin, 'quorumd'));
    expect(cliCommand({ PATH: npxBin }).onPath).toBe(false);
    expect(cliCommand({ PATH: `${npxBin}/` }).cmd).toBe(`node ${bin}`);
  });
});
