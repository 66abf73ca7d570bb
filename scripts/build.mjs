/**
 * The compiled daemon: bundles the TypeScript sources into plain ES modules in `dist/`
 * (esbuild, one file per entry point plus shared chunks, source maps beside them), so
 * that the `quorumd` bin and `import { startNode } from 'quorumd'` run without a
 * loader. Plain JavaScript on purpose: it must run before anything is compiled.
 *
 *   node scripts/build.mjs          build (what `npm ci` runs as the `prepare` step)
 *   node scripts/build.mjs --check  exit 1 if dist/ is missing or older than a source
 *
 * Why a bundle and not tsc's one-file-per-module output: a node process then reads
 * and compiles a handful of files instead of ~150 (start-up time of every CLI call),
 * and code only one command needs (the simulator, the dev supervisor, the broker)
 * lands in a chunk that only that command loads. Pure-JavaScript npm packages are
 * bundled as well (EXTERNAL below lists the ones loaded from node_modules).
 *
 * In a git checkout `bin/quorumd.js` asks scripts/freshness.cjs first and, when a source
 * file is newer than the last build, calls `ensureBuilt()`: it builds again (about half
 * a second), so that an edit followed by `npx quorumd dev` never runs stale code.
 * Several processes may do this at once (a test suite spawning nodes): every output file is written to a
 * temporary name and renamed into place, outputs are a pure function of the sources
 * (chunk names carry a content hash), so concurrent builds write the same bytes and a
 * reader never sees a half-written file. The stamp is written last. A published
 * package ships dist/ and no sources: there the check is skipped.
 */
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// CommonJS helpers, through require (an ES module import of a CommonJS file makes Node
// parse it for its export names first): what the build reads and writes, and whether
// dist/ is fresh (scripts/freshness.cjs, which bin/quorumd.js asks without loading this
// file); the code cache's clean-up (bin/code-cache.js).
const require = createRequire(import.meta.url);
const freshness = require('./freshness.cjs');
const { removeStaleCaches } = require('../bin/code-cache.js');
const { mapIndex } = require('../bin/stack-maps.js');

export const { ROOT, SOURCE_DIRS, ENTRIES, NODE_ENTRY, CONFIG_ENTRY, newestSourceMtime, isFresh } = freshness;
/** The CommonJS bundles a node process compiles with a V8 code cache (bin/code-cache.js). */
const CACHED_BUNDLES = [NODE_ENTRY.name, CONFIG_ENTRY.name];
const { STAMP } = freshness;
/** Packages loaded from node_modules at run time (see build()); the rest is bundled. */
// etcd3 reads its .proto files next to its own code at run time (so it cannot be
// bundled); node-zookeeper-client and cockatiel go with it: the external engines load
// them only when a node runs engine: etcd or zookeeper.
export const EXTERNAL = ['serialport', '@serialport/*', 'cbor-x', 'cbor-extract', 'node-cron', 'etcd3', 'node-zookeeper-client', 'cockatiel'];

/**
 * In the node bundle, imports of daemon/config/load.ts go to daemon/config/load-apart.ts,
 * which loads the parser from dist/config.cjs for the read and lets go of it (it says why).
 */
function configApart(root) {
  const load = join(root, 'daemon', 'config', 'load.ts');
  return {
    name: 'config-apart',
    setup(b) {
      b.onResolve({ filter: /(^|\/)load\.ts$/ }, (args) => (join(args.resolveDir, args.path) === load ? { path: join(root, 'daemon', 'config', 'load-apart.ts') } : undefined));
    },
  };
}

/** Writes `data` to `file` so that readers see the old file or the whole new one. */
function writeAtomic(file, data) {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Builds dist/ from the sources (the bin awaits it before importing dist/).
 * Returns what was written. Throws with esbuild's messages on a syntax error.
 */
export async function build(root = ROOT, log = (s) => process.stderr.write(s)) {
  const t0 = performance.now();
  const mtime = newestSourceMtime(root);
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (e) {
    throw new Error(`building dist/ needs esbuild (a devDependency): run \`npm ci\` in ${root} (${e.message})`);
  }
  const out = join(root, 'dist');
  // Shared by both builds below.
  const common = {
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    target: 'node20',
    // Pure-JavaScript packages are bundled too: a node process then reads a handful of
    // files instead of several hundred (mqtt, aedes, zod, yaml and their
    // dependencies), which was most of its start-up CPU. Kept external: native code
    // (serialport, cbor-x with its optional native extractor) and node-cron (it starts
    // worker processes from its own files).
    external: EXTERNAL,
    // Transports of the mqtt package that quorumd never uses (scripts/unused-transport.cjs);
    // `debug` without an array per call while its output is off (scripts/quiet-debug.cjs);
    // the mqtt package's browser timers (scripts/unused-worker-timers.cjs). And
    // `readable-stream` (mqtt, mqtt-packet's `bl`) is Node's own `stream`: the package is
    // a copy of Node's stream code for browsers and old Node versions (~140 KiB with its
    // helpers); a node process already has Node's loaded for its sockets, and the copy
    // was compiled, and held in the heap, a second time.
    alias: {
      ws: './scripts/unused-transport.cjs',
      socks: './scripts/unused-transport.cjs',
      debug: './scripts/quiet-debug.cjs',
      'worker-timers': './scripts/unused-worker-timers.cjs',
      'readable-stream': 'node:stream',
    },
    sourcemap: 'linked',
    // Stack traces name the TypeScript file and line through the maps; the sources'
    // text is not copied into them (a node would keep ~1.5 MiB of it in its heap).
    sourcesContent: false,
    // Only whitespace: names stay readable in stack traces without the maps.
    minifyWhitespace: true,
    legalComments: 'none',
    outdir: out,
    write: false,
    logLevel: 'silent',
    metafile: false,
  };
  let r;
  try {
    // The command line and the library: ES modules, one file per entry point and shared
    // chunks, so that a command loads only what it runs.
    const esm = esbuild.buildSync({
      ...common,
      entryPoints: ENTRIES,
      splitting: true,
      format: 'esm',
      // Bundled CommonJS packages require() Node's built-in modules: give every ES module
      // of the build a require of its own.
      banner: { js: "import { createRequire as __quorumdCreateRequire } from 'node:module'; const require = __quorumdCreateRequire(import.meta.url);" },
    });
    // The node process (`start`, `witness`): one CommonJS file, because V8 can cache the
    // compiled code of a classic script and Node 20 offers no cache for ES modules
    // (bin/code-cache.js). Modules the node imports lazily (engines, TLS, jobs) stay
    // lazy: esbuild wraps each in a function that runs on first import.
    const nodeCjs = {
      ...common,
      // cbor-x goes into the bundle (and so into the code cache) instead of loading from
      // node_modules, without its optional native extractor (scripts/no-cbor-extract.cjs).
      external: EXTERNAL.filter((p) => p !== 'cbor-x' && p !== 'cbor-extract'),
      alias: { ...common.alias, 'cbor-extract': './scripts/no-cbor-extract.cjs' },
      outExtension: { '.js': '.cjs' },
      format: 'cjs',
      // import.meta does not exist in a CommonJS file: the few modules that locate files
      // next to themselves (ui assets, createRequire for externals) get the bundle's own.
      define: { 'import.meta.url': '__quorumdImportMetaUrl', 'import.meta.dirname': '__dirname' },
      banner: { js: "const __quorumdImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    };
    // (A plugin needs esbuild's asynchronous API.)
    const cjs = await esbuild.build({ ...nodeCjs, entryPoints: { [NODE_ENTRY.name]: NODE_ENTRY.source }, plugins: [configApart(root)] });
    // The node's config parser, a bundle of its own (daemon/config/load-apart.ts says why).
    const config = esbuild.buildSync({ ...nodeCjs, entryPoints: { [CONFIG_ENTRY.name]: CONFIG_ENTRY.source } });
    r = { errors: [...esm.errors, ...cjs.errors, ...config.errors], outputFiles: [...esm.outputFiles, ...cjs.outputFiles, ...config.outputFiles] };
    // What a node keeps must not keep the parser: zod or yaml in dist/node.cjs means a
    // module the node reaches imports daemon/config/load.ts or a schema (daemon/config/plain.ts has the helpers a node needs).
    const nodeOut = cjs.outputFiles.find((f) => f.path.endsWith(`${NODE_ENTRY.name}.cjs`));
    const leaked = nodeOut === undefined ? [] : ['$ZodType', 'LineCounter'].filter((marker) => nodeOut.text.includes(marker));
    if (leaked.length > 0) r.errors.push({ text: `dist/${NODE_ENTRY.name}.cjs contains the config parser (${leaked.join(', ')}): a module of the node imports daemon/config/load.ts or a zod schema instead of daemon/config/plain.ts` });
  } finally {
    // buildSync runs esbuild in a worker thread with a long-lived esbuild child process
    // (~130 MiB resident); without stop() both stayed for the life of the process that
    // built — a `quorumd dev` supervisor started after an edit kept them all along.
    await esbuild.stop?.();
  }
  if (r.errors.length > 0) throw new Error(`build failed:\n${r.errors.map((e) => `  ${e.location?.file ?? ''}:${e.location?.line ?? ''} ${e.text}`).join('\n')}`);
  mkdirSync(out, { recursive: true });
  // Chunks and maps first, the entry points after them (an entry names its chunks).
  const files = [...r.outputFiles].sort((a, b) => rank(a.path) - rank(b.path));
  const keep = new Set([STAMP]);
  for (const f of files) {
    writeAtomic(f.path, CACHED_BUNDLES.some((b) => f.path === join(out, `${b}.cjs`)) ? wrapForCodeCache(f.contents) : f.contents);
    keep.add(relative(out, f.path));
    // Each map's checkpoint index, for the first stack trace a process formats (bin/stack-maps.js mapIndex).
    if (f.path.endsWith('.map')) {
      writeAtomic(`${f.path}-index.json`, JSON.stringify(mapIndex(f.text)));
      keep.add(relative(out, `${f.path}-index.json`));
    }
  }
  writeAtomic(join(out, STAMP), JSON.stringify({ sourceMtimeMs: mtime, builtAt: new Date().toISOString(), files: [...keep].sort() }, null, 1) + '\n');
  // V8 code caches of the node bundles' earlier builds (bin/code-cache.js): useless now.
  for (const b of CACHED_BUNDLES) {
    const bundle = join(out, `${b}.cjs`);
    removeStaleCaches(out, bundle, readFileSync(bundle, 'latin1'));
  }
  // Chunks of earlier builds: removed once they are an hour old (a process started
  // before this build may still import one of them lazily). The current build's code
  // caches stay (they are written after the build, by the processes that run it).
  for (const name of readdirSync(out)) {
    if (keep.has(name) || name.endsWith('.codecache')) continue;
    const p = join(out, name);
    try {
      if (Date.now() - statSync(p).mtimeMs > 3_600_000) rmSync(p, { force: true });
    } catch {
      /* raced with another build */
    }
  }
  const bytes = files.filter((f) => /\.c?js$/.test(f.path)).reduce((n, f) => n + f.contents.length, 0);
  log(`quorumd: built dist/ (${files.filter((f) => /\.c?js$/.test(f.path)).length} modules, ${(bytes / 1024).toFixed(0)} KiB of JavaScript) in ${Math.round(performance.now() - t0)} ms\n`);
  return files.map((f) => f.path);
}

/**
 * dist/node.cjs as bin/code-cache.js compiles it: the CommonJS module wrapper is in the
 * file, so the loader hands V8 the file's text as it reads it (one string) instead of
 * building a second 1.5 MB copy around it, which stayed in the heap until the first full
 * collection. The wrapper stays on the first line (the banner's), so the source map's
 * lines still match. ASCII only (esbuild's default charset): the loader reads it as latin1.
 */
function wrapForCodeCache(contents) {
  if (contents.some((b) => b > 0x7f)) throw new Error('build: dist/node.cjs must be ASCII (bin/code-cache.js reads it as latin1)');
  return Buffer.concat([Buffer.from(CJS_WRAPPER[0]), contents, Buffer.from(CJS_WRAPPER[1])]);
}
/** The CommonJS module wrapper around dist/node.cjs (bin/code-cache.js calls the function). */
export const CJS_WRAPPER = ['(function (exports, require, module, __filename, __dirname) {', '\n})\n'];

function rank(p) {
  const base = p.slice(p.lastIndexOf('/') + 1);
  if (base.endsWith('.map')) return 0;
  // dist/config.cjs ranks with the chunks: written before dist/node.cjs, which loads it.
  return Object.keys(ENTRIES).some((e) => base === `${e}.js`) || base === `${NODE_ENTRY.name}.cjs` ? 2 : 1;
}

/** Builds when dist/ is missing or older than the sources (a git checkout); no-op otherwise. */
export async function ensureBuilt(root = ROOT) {
  if (isFresh(root)) return false;
  await build(root);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--check')) {
    const fresh = isFresh();
    process.stdout.write(fresh ? 'dist/ is up to date\n' : 'dist/ is missing or older than the sources: run `npm run build`\n');
    process.exitCode = fresh ? 0 : 1;
  } else {
    try {
      await build();
    } catch (e) {
      // `npm ci --omit=dev` has no esbuild: fine when dist/ came with the package.
      if (/needs esbuild/.test(e.message) && isFresh()) process.stdout.write('quorumd: dist/ is up to date (esbuild not installed: not rebuilt)\n');
      else {
        process.stderr.write(`${e.message}\n`);
        process.exitCode = 1;
      }
    }
  }
}
