/**
 * Node's TLS modules, loaded at their first use instead of at start-up.
 *
 * Most clusters run without TLS (a board's MQTT and API on a private network), yet a
 * static `import ... from 'node:tls'` / `'node:https'` makes every node, the dev
 * supervisor and each CLI call load and compile tls, _tls_wrap, _tls_common, https and
 * their helpers (~0.3 MiB resident, and start-up CPU; issue 14). The modules that use
 * TLS only when it is configured get it from here, synchronously (their call sites are
 * synchronous: a stream factory, a server constructor): a CommonJS require of a
 * built-in module is cheap and cached, and works the same from the sources and from
 * the bundle in dist/. Types come from `import type`, which loads nothing.
 */
import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';
import type * as Https from 'node:https';

const loadBuiltin = createRequire(import.meta.url);

/** node:tls, loaded on the first call. */
export function nodeTls(): typeof Tls {
  return loadBuiltin('node:tls') as typeof Tls;
}

/** node:https, loaded on the first call. */
export function nodeHttps(): typeof Https {
  return loadBuiltin('node:https') as typeof Https;
}
