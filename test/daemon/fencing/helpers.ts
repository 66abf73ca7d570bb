/**
 * Setup shared by the fencing end-to-end tests (real processes over HTTP): bounded
 * polling, a node's /v1/status, and the pino lines of a node's log file.
 */
import { readFileSync } from 'node:fs';
import { call, jsonOf } from '../../../daemon/client/http.ts';

/**
 * Calls `f` every 100 ms until it returns something other than undefined, for at most
 * `ms` (and at most 10 000 tries); then throws naming `what` and the last error `f` threw.
 */
export async function poll<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** GET /v1/status of the node at `url` (1.5 s timeout), as JSON. */
export const status = async (url: string) => jsonOf(await call(url, 'GET', '/v1/status', { timeoutMs: 1500 }));

/** pino JSON lines of a node's log file. */
export function logLines(file: string): Array<{ msg: string; [k: string]: unknown }> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string });
}
