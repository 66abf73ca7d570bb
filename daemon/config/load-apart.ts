/**
 * The node process's loadConfigFile (dist/node.cjs; the build points that bundle's
 * imports of ./load.ts here): reads the config with the parser from a bundle of its own
 * (dist/config.cjs: load.ts with yaml, zod and every schema, ~380 KB of source) and
 * then lets go of it.
 *
 * Why: a node reads its config once, at the start, and runs for days. In the node's own
 * bundle the parser stayed reachable for good (one script, one scope), and a read config
 * left ~2.3 MiB of heap behind (zod's and yaml's compiled code and objects, zod's global
 * registry), and its source text sat in the node's memory besides. Loaded apart, its
 * script, code and objects are garbage once the read returns (zod's two globals are
 * removed here: nothing else refers to them). The bundle goes through the same V8 code
 * cache as the node's (bin/code-cache.js): compiled afresh, the read costs a node
 * ~60 ms more CPU at every start.
 *
 * What a running node keeps calling lives in ./plain.ts (no zod); the build checks
 * that zod and yaml stay out of dist/node.cjs. Errors come from the other bundle's
 * classes: callers tell them apart by `name` (daemon/exit-codes.ts), never instanceof.
 * Sources and tests (tsx) and the ES module build use ./load.ts directly.
 */
import { join } from 'node:path';
import { startMark } from '../start-trace.ts';
import type { ResolvedConfig } from './load.ts';

export type { ResolvedConfig };

/** Globals zod sets on first use; its registry and config, nothing else refers to them. */
const ZOD_GLOBALS = ['__zod_globalRegistry', '__zod_globalConfig'];

/** Reads, checks and resolves a node's config file (as ./load.ts does), loading the parser for the read only. */
export function loadConfigFile(file: string): ResolvedConfig {
  // In dist/node.cjs __dirname is dist/; the loader is the bin's, which loaded this bundle.
  const { loadWithCodeCache } = require(join(__dirname, '..', 'bin', 'code-cache.js')) as {
    loadWithCodeCache(bundle: string): { exports: { loadConfigFile(file: string): ResolvedConfig }; cache: string };
  };
  const had = ZOD_GLOBALS.filter((g) => g in globalThis);
  try {
    const parser = loadWithCodeCache(join(__dirname, 'config.cjs'));
    startMark(`config bundle loaded (code cache ${parser.cache})`);
    return parser.exports.loadConfigFile(file);
  } finally {
    for (const g of ZOD_GLOBALS) if (!had.includes(g)) delete (globalThis as Record<string, unknown>)[g];
  }
}
