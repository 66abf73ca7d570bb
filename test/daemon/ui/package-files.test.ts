/**
 * The browser code quorumd reads from its package at run time (the dashboard's
 * scripts, the simulation timeline's page script: plain .js files beside the
 * TypeScript, not bundled into dist/) is in the npm package. daemon/sim/timeline/page.js
 * was not: an installed quorumd's `sim --html` failed with ENOENT.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');

/** Every .js file under daemon/, hal/, src/ and firmware-sim/ (the sources are TypeScript: a .js there is read at run time). */
function runtimeScripts(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.c?js$/.test(e.name)) out.push(relative(root, p).split('\\').join('/'));
    }
  };
  for (const d of ['daemon', 'hal', 'src', 'firmware-sim']) walk(join(root, d));
  return out.sort();
}

describe('package files', () => {
  it('npm pack includes every script the package reads at run time', () => {
    const scripts = runtimeScripts();
    expect(scripts).toEqual(expect.arrayContaining(['daemon/sim/timeline/page.js', 'daemon/ui/dashboard.js', 'daemon/ui/lanes.js', 'daemon/ui/text.js']));
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const packed = new Set((JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
    expect(scripts.filter((f) => !packed.has(f))).toEqual([]);
  }, 90_000);
});
