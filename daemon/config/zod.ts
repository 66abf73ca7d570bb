/**
 * zod as the config modules use it: without its JIT. By default zod compiles a parser
 * for each object schema with `new Function` the first time the schema parses. A node
 * parses its config once (and each schema's defaults once at load), so every one of
 * those compilations is start-up CPU and heap spent for a single call. Set here, in the
 * module every schema file imports zod through, so that it holds before any schema is
 * built (zod reads the setting when a schema is constructed).
 */
import * as z from 'zod';

z.config({ jitless: true });

export { z };
