/**
 * zod without its JIT, for the config modules. By default zod compiles a parser for each
 * object schema with `new Function` the first time the schema parses. A node builds its
 * config's schema and parses one file with it once, so every one of those compilations
 * is start-up CPU and heap spent on a single call.
 *
 * zod reads the setting when a schema is built, so every module that builds schemas
 * imports this one before zod (`import { int } from './zod.ts'`, or `import './zod.ts'`):
 * ES modules run their imports in order, so the setting holds before the first schema.
 * Helpers, not a re-export of zod's namespace: that would make the bundler keep all of zod.
 */
import * as z from 'zod';

z.config({ jitless: true });

/**
 * An integer field in min..max, with one message for every way it can be wrong (not a
 * number, not an integer, out of range; the schema's `error` covers its checks too).
 * Built as z.int() with both bounds in one `.check()`: each `.int()`, `.min()` or
 * `.max()` on a zod schema clones it (a whole new schema instance each), and a config
 * has about eighty of these fields: the schema builds in 6 ms instead of 10 on a warm
 * process, and a node's start spends ~16 ms less CPU on its config (issue 14).
 */
export const int = (what: string, min: number, max: number) => {
  const error = `expected ${what}: an integer ${min}..${max}`;
  return z.int({ error }).check(z.gte(min), z.lte(max));
};
