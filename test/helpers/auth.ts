/**
 * The API token of the tests' nodes, found the way a user's `quorumd` finds it.
 *
 * Every node started by a test is configured with `http.tokenFile: <this file>` (one
 * token for the test process, mode 0600), and QUORUMD_API_TOKEN_FILE names the same
 * file, so `call()` (daemon/client/http.ts) and `quorumd` children find it by
 * themselves, as a user's shell would after `export QUORUMD_API_TOKEN_FILE=...`.
 * Auth stays on: a test that forgets the token gets 401, as a user would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTokenFile } from '../../daemon/config/secrets.ts';
import { removeAtExit } from './exit-cleanup.ts';

let file: string | undefined;
let dir: string | undefined;
let token: string | undefined;
/** Forgets the directory's removal at exit (a benchmark's: see exit-cleanup.ts). */
let forget: (() => void) | undefined;

/** The token file of this test process (created on first use); sets QUORUMD_API_TOKEN_FILE. */
export function testTokenFile(): string {
  if (file === undefined) {
    dir = mkdtempSync(join(tmpdir(), 'quorumd-test-token-'));
    // Outside vitest (a benchmark), removed when the process ends, however it ends.
    forget = removeAtExit(dir);
    file = join(dir, 'api.token');
    token = ensureTokenFile(file, 'test API token').token;
  }
  process.env.QUORUMD_API_TOKEN_FILE = file;
  return file;
}

/** The token itself (for raw HTTP requests that do not go through call()). */
export function testToken(): string {
  testTokenFile();
  return token!;
}

/**
 * Removes the token file's directory (test/helpers/setup.ts, after each test file: they
 * piled up in /tmp by the hundred; a benchmark's goes when its process ends, or earlier
 * by this). A later testTokenFile() makes a new one.
 */
export function removeTestTokenDir(): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  forget?.();
  forget = undefined;
  dir = undefined;
  file = undefined;
  token = undefined;
}
