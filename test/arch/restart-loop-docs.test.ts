/**
 * The stops a restart cannot cure share their exit code with those it does (70: a bug's
 * exception and a newer quorumd's committed entry alike; daemon/exit-codes.ts), so the
 * shipped systemd unit (`Restart=on-failure`) restarts them in a loop. That is not
 * fixed by a new exit code (the table is a contract: these stops are documented as 70
 * and 1); it is explained instead, and this test keeps the explanation true:
 *
 * - the unit points to the section of docs/install-pi.md that shows the loop;
 * - that section lists each such stop with the exit code the table gives it, quoting a
 *   message the sources still print (a reworded message would leave the operator
 *   grepping the journal for text that no longer appears).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../daemon/exit-codes.ts';

const root = join(import.meta.dirname, '..', '..');
const unit = readFileSync(join(root, 'packaging', 'quorumd.service'), 'utf8');
const guide = readFileSync(join(root, 'docs', 'install-pi.md'), 'utf8');
const SECTION = 'When a restart cannot help';

/** Every TypeScript source of the daemon and the HAL, concatenated (where the messages live). */
function sources(): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts')) out.push(readFileSync(p, 'utf8'));
    }
  };
  walk(join(root, 'daemon'));
  walk(join(root, 'hal'));
  return out.join('\n');
}

/** [a piece of the message the node prints, the exit code it ends with]. */
const STOPS: Array<[string, number]> = [
  ['cannot be applied by this build', EXIT.FATAL],
  ['storage written by a newer quorumd', EXIT.FATAL],
  ['storage corrupt', EXIT.FATAL],
  ['says this node kept its state there', EXIT.NO],
  ['cannot write', EXIT.NO],
  ['invalid configuration', EXIT.USAGE],
];

describe('the restart loop of stops a restart cannot cure', () => {
  it('the shipped unit restarts on failure and names the section that explains the loop', () => {
    expect(unit).toMatch(/^Restart=on-failure$/m);
    const comment = unit.split('\n').filter((l) => l.startsWith('#')).join(' ');
    expect(comment).toContain(`"${SECTION}"`);
    // Every exit code the unit's comments name is one of the table's.
    const named = [...comment.matchAll(/\bexits? (\d+)/g)].map((m) => Number(m[1]));
    expect(named.length).toBeGreaterThan(0);
    for (const n of named) expect(Object.values(EXIT)).toContain(n);
  });

  it('install-pi.md lists each such stop with its exit code and a message the sources print', () => {
    const start = guide.indexOf(`### ${SECTION}`);
    expect(start, `docs/install-pi.md has no "### ${SECTION}" section`).toBeGreaterThan(0);
    const section = guide.slice(start, guide.indexOf('\n## ', start));
    const rows = section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('|---'));
    const src = sources();
    for (const [piece, code] of STOPS) {
      const row = rows.find((r) => r.includes(piece));
      expect(row, `no row of "${SECTION}" quotes "${piece}"`).toBeDefined();
      expect(row!.split('|').map((c) => c.trim())).toContain(String(code));
      expect(src, `no source of daemon/ or hal/ prints "${piece}" any more`).toContain(piece);
    }
    // How to see the loop: the journal (the node's fatal lines are pino's level 60) and systemd's restart counter.
    expect(section).toMatch(/journalctl -u quorumd/);
    expect(section).toContain('"level":60');
    expect(src).toMatch(/fatal: 60/);
    expect(section).toMatch(/NRestarts/);
  });
});
