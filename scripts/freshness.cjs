// Is dist/ built from the sources as they are now? The one check every `quorumd`
// process makes in a git checkout (bin/quorumd.js), before anything else runs: it
// lives apart from scripts/build.mjs so that a fresh build costs a process a directory
// walk and no more — no ES module to load, no bundler code to compile (~10-15 ms of
// every CLI call in a checkout; an installed package has no sources and skips it).
// scripts/build.mjs takes its inputs and outputs from here. CommonJS, plain JavaScript:
// it runs before anything is built.
'use strict';
const { readdirSync, readFileSync, statSync } = require('node:fs');

/** The repository root (this file is in scripts/). */
const ROOT = require('node:path').join(__dirname, '..');
/** Folders whose files go into the build (bench/ and test/ never do). */
const SOURCE_DIRS = ['daemon', 'hal', 'src', 'firmware-sim'];
/** Other files the build reads: a change to any of them means a new build. */
const BUILD_INPUTS = ['package.json', 'scripts/build.mjs', 'scripts/freshness.cjs', 'scripts/unused-transport.cjs', 'scripts/quiet-debug.cjs', 'scripts/unused-worker-timers.cjs', 'scripts/no-cbor-extract.cjs'];
/** Entry points: dist/<name>.js. */
const ENTRIES = { cli: 'daemon/cli.ts', index: 'daemon/index.ts' };
/** The node process's entry (`start`, `witness`): dist/node.cjs, a CommonJS bundle (scripts/build.mjs). */
const NODE_ENTRY = { name: 'node', source: 'daemon/node-main.ts' };
/** The node's config parser, loaded for the read and let go (daemon/config/load-apart.ts): dist/config.cjs. */
const CONFIG_ENTRY = { name: 'config', source: 'daemon/config/load.ts' };
/** The files in dist/ that a build must have written (besides chunks and maps). */
const OUTPUT_FILES = [...Object.keys(ENTRIES).map((n) => `${n}.js`), `${NODE_ENTRY.name}.cjs`, `${CONFIG_ENTRY.name}.cjs`];
/** The build's stamp in dist/: the newest source time it covers, and its files. */
const STAMP = '.build-stamp.json';

/** Newest modification time (ms) of any file the build reads: sources, package.json, the build scripts. */
function newestSourceMtime(root = ROOT) {
  let newest = 0;
  // Paths joined by hand: path.join normalizes every one, and this walks every source.
  const walk = (dir) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = `${dir}/${d.name}`;
      if (d.isDirectory()) walk(p);
      else if (d.isFile()) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) walk(`${root}/${d}`);
  for (const f of BUILD_INPUTS) newest = Math.max(newest, statSync(`${root}/${f}`).mtimeMs);
  return newest;
}

/** The build in dist/ is there and covers every source as it is now. */
function isFresh(root = ROOT) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(`${root}/dist/${STAMP}`, 'utf8'));
  } catch {
    return false;
  }
  if (typeof stamp?.sourceMtimeMs !== 'number') return false;
  for (const file of OUTPUT_FILES) {
    try {
      statSync(`${root}/dist/${file}`);
    } catch {
      return false;
    }
  }
  return newestSourceMtime(root) <= stamp.sourceMtimeMs;
}

module.exports = { ROOT, SOURCE_DIRS, BUILD_INPUTS, ENTRIES, NODE_ENTRY, CONFIG_ENTRY, OUTPUT_FILES, STAMP, newestSourceMtime, isFresh };
