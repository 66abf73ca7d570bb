/**
 * zod without its JIT, for the config modules. By default zod compiles a parser for each
 * object schema with `new Function` the first time the schema parses. A node parses its
 * config once (and each section's defaults once at load), so every one of those
 * compilations is start-up CPU and heap spent on a single call.
 *
 * zod reads the setting when a schema is built, so every module that builds schemas
 * imports this one before zod (`import './zod.ts'`): ES modules run their imports in
 * order, so the setting holds before the first schema. A side-effect import and not a
 * re-export of zod's namespace: that would make the bundler keep all of zod.
 */
import { config } from 'zod';

config({ jitless: true });
