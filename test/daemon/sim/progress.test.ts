/**
 * Long runs show progress: `quorumd sim --seeds A..B` draws a progress line (seeds
 * done, violations so far, ETA) on stderr when stderr is a terminal — checked on a
 * real pseudo-terminal with util-linux `script` — and nothing when it is not; the
 * total line (and --json) counts the faults injected by kind.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProgressLine, formatDuration, progressText } from '../../../daemon/sim/progress.ts';
import { faultKindsText, sumFaultKinds } from '../../../daemon/sim/report.ts';
import { runSimCommand } from '../../../daemon/sim.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const bin = join(root, 'bin', 'quorumd.js');

describe('sim progress line', () => {
  it('formats seeds done, violations, elapsed time and ETA', () => {
    expect(progressText(0, 1000, 0, 0)).toBe('sim: 0/1000 seeds (0.0%) · violations 0 · 0.0 s elapsed · ETA …');
    expect(progressText(250, 1000, 3, 60_000)).toBe('sim: 250/1000 seeds (25.0%) · violations 3 · 1 min 00 s elapsed · ETA 3 min 00 s');
    expect(formatDuration(3_250)).toBe('3.3 s');
    expect(formatDuration(42_000)).toBe('42 s');
    expect(formatDuration(3_723_000)).toBe('1 h 02 min');
    expect(formatDuration(NaN)).toBe('?');
  });

  it('redraws in place, at most every interval, never wider than the terminal, and erases itself', () => {
    const writes: string[] = [];
    let t = 0;
    const p = new ProgressLine({ write: (s: string) => writes.push(s), columns: 40 }, 10, () => t, 250);
    p.update(1, 0);
    t = 100;
    p.update(2, 0); // too soon: not drawn
    t = 400;
    p.update(3, 1);
    expect(writes).toHaveLength(2);
    for (const w of writes) {
      expect(w.startsWith('\r\x1b[K')).toBe(true);
      expect(w.length - 4).toBeLessThanOrEqual(39);
    }
    p.clear();
    expect(writes.at(-1)).toBe('\r\x1b[K');
    p.clear(); // nothing drawn: nothing to erase
    expect(writes).toHaveLength(3);
    t = 450;
    p.update(10, 1); // the last seed is always drawn
    expect(writes).toHaveLength(4);
  });

  it('on a terminal: the line shows on stderr between the seed lines; in a pipe: nothing but the seed lines', () => {
    const cmd = `node ${bin} sim --seeds 1..3 --nodes 3 --time 5s --faults crash,loss`;
    // util-linux script runs the command on a new pseudo-terminal (stdout and stderr both on it).
    const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: root, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
    if (tty.error && (tty.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('`script` (util-linux, Debian package bsdutils) is needed for this test');
    expect(tty.status, tty.stderr).toBe(0);
    const screen = tty.stdout;
    expect(screen).toMatch(/\r\x1b\[Ksim: 0\/3 seeds \(0\.0%\) · violations 0 · [\d.]+ s elapsed · ETA …/);
    expect(screen).toMatch(/\r\x1b\[Ksim: 1\/3 seeds \(33\.3%\) · violations 0 · .* elapsed · ETA \d/);
    expect(screen).toMatch(/\r\x1b\[Ksim: 3\/3 seeds \(100\.0%\) · violations 0 · .* ETA 0\.0 s/);
    // Every seed line and the total line are whole lines of their own.
    const lines = screen.replace(/\r\x1b\[K(sim: [^\r\n]*)?/g, '').split(/\r?\n/).filter((l) => l.trim() !== '');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['seed=1', 'seed=2', 'seed=3', 'seeds=3']);

    const piped = spawnSync('node', [bin, 'sim', '--seeds', '1..3', '--nodes', '3', '--time', '5s', '--faults', 'crash,loss'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(piped.status).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).not.toContain('\x1b');
    expect(piped.stdout.trim().split('\n').map((l) => l.split(' ')[0])).toEqual(['seed=1', 'seed=2', 'seed=3', 'seeds=3']);
  }, 180_000);

  it('the total line and --json count the faults injected, by kind', async () => {
    const lines: string[] = [];
    const opts = { seeds: '1..3', nodes: 5, time: '20s', faults: 'partition,crash,power,loss' };
    expect(await runSimCommand(opts, (l) => lines.push(l), { progress: false })).toBe(0);
    const last = lines.at(-1)!;
    const m = / faults=(\d+) fault_kinds=(\S+) /.exec(last);
    expect(m, last).not.toBeNull();
    const perSeed = lines.slice(0, 3).map((l) => Number(/ faults=(\d+) /.exec(l)![1]));
    expect(Number(m![1])).toBe(perSeed.reduce((a, b) => a + b, 0));
    const kinds = Object.fromEntries(m![2]!.split(',').map((kv) => [kv.split(':')[0]!, Number(kv.split(':')[1])]));
    expect(Object.values(kinds).reduce((a, b) => a + b, 0)).toBe(Number(m![1]));
    for (const k of Object.keys(kinds)) expect(['partition', 'crash', 'power', 'loss']).toContain(k);

    const json: string[] = [];
    await runSimCommand({ ...opts, json: true }, (l) => json.push(l), { progress: false });
    const objs = json.map((l) => JSON.parse(l) as { type: string; faults: number; faultsByKind: Record<string, number> });
    const total = objs.at(-1)!;
    expect(total.type).toBe('total');
    expect(total.faultsByKind).toEqual(kinds);
    expect(total.faults).toBe(Number(m![1]));
    for (const o of objs.slice(0, -1)) expect(Object.values(o.faultsByKind).reduce((a, b) => a + b, 0)).toBe(o.faults);
  }, 120_000);

  it('adds kinds in the injector order (a kind it does not list comes last, by name) and says none for none', () => {
    const sum = sumFaultKinds([{ faultsByKind: { loss: 1, zeta: 2 } }, { faultsByKind: { partition: 2, loss: 3, alpha: 1 } }]);
    expect(Object.entries(sum)).toEqual([['partition', 2], ['loss', 4], ['alpha', 1], ['zeta', 2]]);
    expect(faultKindsText(sum)).toBe('partition:2,loss:4,alpha:1,zeta:2');
    expect(faultKindsText({})).toBe('none');
  });
});
