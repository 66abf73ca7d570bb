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
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

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

const cache = new Map<string, { mtimeMs: number; size: number; token: string }>();

function readTokenFile(path: string): string {
  const st = statSync(path);
  const hit = cache.get(path);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.token;
  const token = readFileSync(path, 'utf8').trim();
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
  if (env.QUORUMD_API_TOKEN) return { token: env.QUORUMD_API_TOKEN.trim(), source: 'QUORUMD_API_TOKEN', tried };
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
