/**
 * Where the CLI (and anything built on daemon/client/http.ts) finds its API token, in
 * this order — the first that gives one wins:
 *
 *   1. `--token-file FILE`                       (a flag of every client command)
 *   2. `QUORUMD_API_TOKEN`                       (the token itself, in the environment)
 *   3. `QUORUMD_API_TOKEN_FILE`                  (a file holding it; hooks and jobs get this)
 *   4. `--data-dir DIR` or `QUORUMD_DATA_DIR`    → DIR/api.token, the file a node creates
 *                                                   at its first start (`quorumd dev`
 *                                                   prints the export line for its cluster)
 *   5. /var/lib/quorumd/api.token                (the data directory of the systemd unit)
 *
 * Never a token on the command line itself: other local users can read every
 * process's arguments (ps), and they are not trusted (docs/security.md).
 *
 * Kept small and free of daemon imports: the CLI loads it without loading a node.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularFile } from '../config/regular-file.ts';

export const TOKEN_FILE_NAME = 'api.token';
export const DEFAULT_DATA_DIR = '/var/lib/quorumd';

export interface TokenSources {
  /** `--token-file`. */
  tokenFile?: string | undefined;
  /** `--data-dir`. */
  dataDir?: string | undefined;
  /** The environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface FoundToken {
  token: string | undefined;
  /** Where it came from, or every place tried (for the error when none had one). */
  source: string;
  tried: string[];
}

/**
 * What a token may be: what the API server accepts in `Authorization: Bearer <token>`
 * (daemon/http/auth.ts: 1-512 printable ASCII characters, no space) and at least the 16
 * characters a node requires of a credential (daemon/config/schema.ts). A node makes a
 * 43-character base64url one (daemon/config/secrets.ts newToken).
 */
const TOKEN = /^[\x21-\x7e]{16,512}$/;
export const TOKEN_HELP = 'an API token: one line of 16 to 512 printable ASCII characters without spaces (a node creates a 43-character one in <data dir>/api.token)';
/** Most bytes read from a token file: the longest token with room for surrounding whitespace. */
export const MAX_TOKEN_FILE_BYTES = 1024;

/** Why `token` (already trimmed) cannot be one, or undefined when it can. */
export function tokenProblem(token: string): string | undefined {
  if (TOKEN.test(token)) return undefined;
  if (token.length === 0) return 'it is empty';
  if (token.length < 16 || token.length > 512) return `it holds ${token.length} characters`;
  const bad = [...token].find((c) => !/[\x21-\x7e]/.test(c))!;
  return `it holds the character ${JSON.stringify(bad)}${/[\r\n]/.test(bad) ? ' (more than one line)' : ''}`;
}

const cache = new Map<string, { mtimeMs: number; size: number; token: string }>();

/** The token in `path`: a regular file of at most MAX_TOKEN_FILE_BYTES holding one token (else an Error saying what was expected). */
function readTokenFile(path: string): string {
  const st = statSync(path);
  const hit = cache.get(path);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.token;
  // Bounded, and only a regular file: /dev/zero was read until memory ran out, a FIFO waited for good.
  const token = readRegularFile(path, MAX_TOKEN_FILE_BYTES).toString('utf8').trim();
  const problem = tokenProblem(token);
  if (problem !== undefined) throw new Error(`expected ${TOKEN_HELP}, but ${problem}`);
  cache.set(path, { mtimeMs: st.mtimeMs, size: st.size, token });
  return token;
}

/**
 * The token from the first source that has one. A file named explicitly (flag or
 * environment) that cannot be read is an error naming it; the default places are
 * skipped quietly when absent.
 */
export function findApiToken(o: TokenSources = {}): FoundToken {
  const env = o.env ?? process.env;
  const tried: string[] = [];
  const explicit = (path: string, what: string): FoundToken => {
    try {
      return { token: readTokenFile(path), source: `${what} ${path}`, tried };
    } catch (err) {
      throw new Error(`${what} ${path}: cannot read the API token: ${(err as Error).message}`);
    }
  };
  if (o.tokenFile) return explicit(o.tokenFile, '--token-file');
  tried.push('--token-file');
  if (env.QUORUMD_API_TOKEN) {
    const token = env.QUORUMD_API_TOKEN.trim();
    const problem = tokenProblem(token);
    if (problem !== undefined) throw new Error(`QUORUMD_API_TOKEN: expected ${TOKEN_HELP}, but ${problem}`);
    return { token, source: 'QUORUMD_API_TOKEN', tried };
  }
  tried.push('QUORUMD_API_TOKEN');
  if (env.QUORUMD_API_TOKEN_FILE) return explicit(env.QUORUMD_API_TOKEN_FILE, 'QUORUMD_API_TOKEN_FILE');
  tried.push('QUORUMD_API_TOKEN_FILE');
  const dir = o.dataDir ?? env.QUORUMD_DATA_DIR;
  if (dir) return explicit(join(dir, TOKEN_FILE_NAME), o.dataDir ? '--data-dir:' : 'QUORUMD_DATA_DIR:');
  tried.push('--data-dir / QUORUMD_DATA_DIR');
  const def = join(DEFAULT_DATA_DIR, TOKEN_FILE_NAME);
  try {
    return { token: readTokenFile(def), source: def, tried };
  } catch (err) {
    tried.push(`${def} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return { token: undefined, source: 'none', tried };
}
