/**
 * The version of quorumd this process runs: the `version` of its package.json, bundled
 * into the build (esbuild inlines the one field), so that it costs no file read or
 * git call at run time. `GET /v1/status` and `quorumd status` show it (a rolling
 * upgrade: which board runs what, docs/install-pi.md "Upgrading"); `quorumd --version`
 * prints it.
 */
import pkg from '../package.json' with { type: 'json' };

export const QUORUMD_VERSION: string = pkg.version;
