/**
 * vitest globalSetup: the tests that start real processes run `bin/quorumd.js`, which
 * runs the compiled daemon in dist/. Build it once here when a source changed, rather
 * than in whichever test process spawns a node first (several at once would each build).
 */
import { ensureBuilt } from '../scripts/build.mjs';

export async function setup(): Promise<void> {
  await ensureBuilt();
}
