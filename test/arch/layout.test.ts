/**
 * The layout rules of docs/architecture.md, checked on every test run rather than by eye:
 *   - src/ is pure: no timers, wall clock, randomness, process or I/O modules;
 *   - imports point one way: daemon → firmware-sim → hal → src.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Strips comments so that prose about `Date.now` in a doc comment is not a violation. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const impure: Array<[RegExp, string]> = [
  [/\bDate\.now\b|\bnew Date\s*\(/, 'wall clock'],
  [/\bMath\.random\b/, 'unseeded randomness'],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\s*\(/, 'timers'],
  [/\bperformance\.now\b|\bprocess\b\s*\./, 'process / monotonic clock'],
  [/from\s+['"](node:)?(fs|fs\/promises|net|dgram|child_process|http|https|http2|os|tls|worker_threads|cluster|readline)['"]/, 'I/O module'],
  [/\bimport\s*\(/, 'dynamic import'],
  [/\brequire\s*\(/, 'require'],
];

describe('layout rules (docs/architecture.md)', () => {
  it('src/ is pure and deterministic', () => {
    const problems: string[] = [];
    for (const f of tsFiles(join(root, 'src'))) {
      const lines = code(readFileSync(f, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        for (const [re, what] of impure) {
          if (re.test(line)) problems.push(`${relative(root, f)}:${i + 1}: ${what}: ${line.trim()}`);
        }
      });
    }
    expect(problems).toEqual([]);
  });

  const forbidden: Record<string, string[]> = {
    src: ['hal', 'firmware-sim', 'daemon', 'test', 'bench'],
    hal: ['firmware-sim', 'daemon', 'test', 'bench'],
    'firmware-sim': ['daemon', 'test', 'bench'],
    daemon: ['test', 'bench'],
  };
  for (const [dir, bad] of Object.entries(forbidden)) {
    it(`${dir}/ imports only what it may`, () => {
      const problems: string[] = [];
      for (const f of tsFiles(join(root, dir))) {
        const text = code(readFileSync(f, 'utf8'));
        for (const m of text.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
          const spec = m[1]!;
          if (!spec.startsWith('.')) continue;
          const target = relative(root, join(f, '..', spec)).split('/')[0]!;
          if (bad.includes(target)) problems.push(`${relative(root, f)} imports ${spec}`);
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('the checker itself catches a violation', () => {
    const sample = code('const t = Date.now(); // fine comment Math.random\n');
    expect(impure.some(([re]) => re.test(sample))).toBe(true);
    expect(impure.some(([re]) => re.test(code('// Date.now() only in a comment')))).toBe(false);
  });
});
