/**
 * How to write a `quorumd` command in text we print (the `quorumd dev` guide, hints),
 * so that it works when pasted from any directory: `npx quorumd` only works inside
 * the clone (elsewhere npx asks the registry for a package of that name), and a bare
 * `quorumd` only when it is on the PATH.
 *
 *   `quorumd`                             when the `quorumd` on the PATH is this one (not
 *                                         a node_modules/.bin that npx put there)
 *   `node /abs/path/bin/quorumd.js`       otherwise (plus, once, how to link it)
 */
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { packageRoot } from './ui/assets.ts';

let cached: { cmd: string; onPath: boolean; bin: string } | undefined;

function real(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** The command prefix to print, whether it is the PATH's `quorumd`, and this package's bin. */
export function cliCommand(env: NodeJS.ProcessEnv = process.env): { cmd: string; onPath: boolean; bin: string } {
  if (cached && env === process.env) return cached;
  const bin = join(packageRoot(), 'bin', 'quorumd.js');
  const mine = real(bin);
  let onPath = false;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    // npx and npm scripts put <project>/node_modules/.bin on the PATH of what they run,
    // not on the user's shell: a bare `quorumd` found only there fails when pasted.
    if (!dir || /(^|[\\/])node_modules[\\/]\.bin[\\/]?$/.test(dir)) continue;
    const p = join(dir, 'quorumd');
    if (existsSync(p) && mine !== undefined && real(p) === mine) {
      onPath = true;
      break;
    }
  }
  const q = (s: string) => (/^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const r = { cmd: onPath ? 'quorumd' : `node ${q(bin)}`, onPath, bin };
  if (env === process.env) cached = r;
  return r;
}

/** One line for a guide: how to get a plain `quorumd` on the PATH ('' when it is there). */
export function linkHint(env: NodeJS.ProcessEnv = process.env): string {
  const c = cliCommand(env);
  if (c.onPath) return '';
  return `(the commands below run this checkout's quorumd from any directory; \`npm link\` in ${packageRoot()} puts a plain \`quorumd\` on your PATH)`;
}
