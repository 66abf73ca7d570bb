// Loads the node process's bundle (dist/node.cjs) with a V8 code cache: the bytecode V8
// compiled for it in an earlier run of the same build, instead of compiling it again.
//
// Why: a node process spent ~150 ms of CPU compiling and first running its modules, and
// `quorumd dev` starts three of them at once (on a 2-core board that is most of the
// cold start). Node 20 has no cache for ES modules (module.enableCompileCache() came
// with Node 22.1); for a classic script V8 accepts the data createCachedData() made.
// So the node's code is built as one CommonJS file and compiled here with vm.Script.
//
// Where the cache lives: $QUORUMD_CODE_CACHE_DIR, else systemd's $CACHE_DIRECTORY
// (CacheDirectory= in packaging/quorumd.service), else beside the bundle in dist/. A
// process that found no usable cache writes one a few seconds after it started (by then
// it has compiled what a running node runs); a directory it cannot write to means no
// cache, nothing else. QUORUMD_CODE_CACHE=off turns it off.
//
// Trust: the cache is code. It is read only from those directories, which belong to
// whoever installed or runs quorumd (anyone who can write there can change dist/ or the
// unit as well). V8 itself refuses data from another V8 version or other flags, but it
// checks the source only by its length, so the file name carries a hash of the bundle's
// bytes: a rebuilt bundle never meets the bytecode of the old one. Nor does V8 checksum
// the bytecode, so the file carries a SHA-256 of its data (checkedPayload): a damaged
// file is compiled afresh, never run.
// Plain JavaScript: it runs before anything is built.
// CommonJS (bin/package.json): a node process loads no ES module machinery at all.
'use strict';
const { createHash } = require('node:crypto');
const { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { basename, dirname, join } = require('node:path');
const { Script } = require('node:vm');

/** How long after the start a process with no usable cache writes one (ms). */
const WRITE_AFTER_MS = 5000;

/**
 * The cache file for `bundle` (its bytes `code`) in `dir`: its name holds a hash of the
 * bundle and one of what else V8 compares (Node's version, the architecture, V8 flags).
 */
function cacheFileFor(dir, bundle, code, execArgv = process.execArgv) {
  const env = createHash('sha256').update(`${process.version} ${process.arch} ${execArgv.join(' ')}`).digest('hex').slice(0, 8);
  return join(dir, `${basename(bundle)}-${sourceHash(code)}-${env}.codecache`);
}

function sourceHash(code) {
  return createHash('sha256').update(code, 'latin1').digest('hex').slice(0, 16);
}

/**
 * How many caches of one build a directory keeps: one per set of node flags that loaded
 * it (the flags are in the name). A board's node has one set; a checkout where tests and
 * benchmarks ran with other flags collected one 430 KB file per set, for good.
 */
const CACHES_PER_BUILD = 3;

/**
 * Removes from `dir` the caches of other builds of `bundle` (whose bytes are now `code`):
 * they can never be used again. Of this build's, it keeps the CACHES_PER_BUILD used last
 * (a process that accepts a cache marks it used: touchCache), `keep` (the one just
 * written) always among them. Called when a cache is written, and by the build for dist/.
 */
function removeStaleCaches(dir, bundle, code, keep = null) {
  const current = sourceHash(code);
  const prefix = `${basename(bundle)}-`;
  try {
    const mine = [];
    for (const f of readdirSync(dir)) {
      const m = /^([0-9a-f]{16})-[0-9a-f]{8}\.codecache$/.exec(f.startsWith(prefix) ? f.slice(prefix.length) : '');
      if (m === null) continue;
      if (m[1] !== current) rmSync(join(dir, f), { force: true });
      else if (join(dir, f) !== keep) mine.push({ f, used: usedAt(join(dir, f)) });
    }
    mine.sort((a, b) => b.used - a.used);
    for (const { f } of mine.slice(keep === null ? CACHES_PER_BUILD : CACHES_PER_BUILD - 1)) rmSync(join(dir, f), { force: true });
  } catch {
    /* another process cleaned up first, or the directory is not ours to clean */
  }
}

/** When a cache file was last written or accepted (its mtime), 0 when it is gone. */
function usedAt(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** Marks an accepted cache as used (its mtime), for removeStaleCaches; a read-only directory just leaves it. */
function touchCache(file) {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    /* not ours to touch: it stays, and may be removed sooner */
  }
}

/**
 * The directory the cache goes to, or null when it is off. QUORUMD_CODE_CACHE is `on`
 * (or unset) or `off`; any other value is refused (throws) rather than guessed at.
 */
function cacheDir(bundle, env = process.env) {
  const mode = env.QUORUMD_CODE_CACHE ?? '';
  if (mode === 'off') return null;
  if (mode !== '' && mode !== 'on') throw new Error(`QUORUMD_CODE_CACHE: expected on or off, got ${JSON.stringify(mode)}`);
  if (env.QUORUMD_CODE_CACHE_DIR) return env.QUORUMD_CODE_CACHE_DIR;
  // systemd may list several directories, separated by colons.
  if (env.CACHE_DIRECTORY) return env.CACHE_DIRECTORY.split(':')[0];
  return dirname(bundle);
}

/**
 * Runs `bundle`, a CommonJS module already inside its wrapper (`(function (exports,
 * require, module, __filename, __dirname) {...})`, ASCII), as Node's own loader would and returns its exports and what became of the cache:
 * 'accepted' (used), 'rejected' (V8 refused it: written again), 'damaged' (its checksum
 * failed: written again), 'none' (none there yet), or 'off' — and `problem`, a line to
 * print when the settings could not be followed.
 */
function loadWithCodeCache(bundle, { env = process.env, writeAfterMs = WRITE_AFTER_MS, onWrite = () => {} } = {}) {
  // One string, the whole file: it holds the module wrapper already (scripts/build.mjs),
  // so V8 compiles it as read and no second copy of 1.5 MB lingers until a full GC.
  const code = readFileSync(bundle, 'latin1');
  let dir;
  let problem;
  try {
    dir = cacheDir(bundle, env);
  } catch (e) {
    // A value we do not know: the node runs, without a cache, and says why.
    dir = null;
    problem = `${e.message}; running without a code cache`;
  }
  const file = dir === null ? null : cacheFileFor(dir, bundle, code);
  let cachedData;
  let damaged = false;
  if (file !== null) {
    let stored;
    try {
      stored = readFileSync(file);
    } catch {
      /* not written yet */
    }
    if (stored !== undefined) {
      cachedData = checkedPayload(stored);
      damaged = cachedData === undefined;
    }
  }
  const script = new Script(code, { filename: bundle, cachedData });
  const cache = file === null ? 'off' : damaged ? 'damaged' : cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted';
  if (cache === 'accepted') touchCache(file);
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, dirname(bundle));
  if (cache === 'none' || cache === 'rejected' || cache === 'damaged') {
    pendingWrites++;
    setTimeout(() => {
      try {
        onWrite(writeCache(script, file, bundle, code));
      } finally {
        pendingWrites--;
        if (pendingWrites === 0) for (const fn of afterWrites.splice(0)) fn();
      }
    }, writeAfterMs).unref();
  }
  return { exports: mod.exports, cache, file, problem };
}

/** Cache writes this process has scheduled and not yet made, and who waits for them. */
let pendingWrites = 0;
const afterWrites = [];

/**
 * Calls `fn` once this process has written every code cache it is going to write (at
 * once when none is pending). Why anyone waits: V8 stamps a cache with a hash of the V8
 * flags in force when it is written, and a flag changed at run time changes that hash
 * for good (set and cleared again, it still differs), so a cache written after such a
 * change is refused, and written again, at every later start. bin/settle-memory.js
 * changes a flag only from here. (A write that never fires, because the process ends
 * first, leaves `fn` uncalled: nothing left to settle then.)
 */
function afterCacheWrites(fn) {
  if (pendingWrites === 0) fn();
  else afterWrites.push(fn);
}

/**
 * The V8 data in a cache file (a SHA-256 of the data, then the data), or undefined when
 * the checksum fails. V8 checks its version, flags, the source's length and the data's
 * length, but not a checksum of the bytecode (not in a release build): a cache with a
 * flipped bit, which an SD card can produce, ran as wrong code in a test
 * (test/daemon/code-cache.test.ts). A damaged file is treated as no cache.
 */
function checkedPayload(stored) {
  if (stored.length <= 32) return undefined;
  const data = stored.subarray(32);
  return createHash('sha256').update(data).digest().equals(stored.subarray(0, 32)) ? data : undefined;
}

/**
 * Writes what V8 has compiled of `script` so far to `file` (whole or not at all, as
 * several nodes may write at once), and removes the caches of other builds of `bundle`
 * (bytes `code`) from its directory. Returns null when written, else why not.
 */
function writeCache(script, file, bundle, code) {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    const data = script.createCachedData();
    writeFileSync(tmp, Buffer.concat([createHash('sha256').update(data).digest(), data]), { mode: 0o644 });
    renameSync(tmp, file);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* the directory refused the file in the first place */
    }
    return e instanceof Error ? e.message : String(e);
  }
  removeStaleCaches(dirname(file), bundle, code, file);
  return null;
}

module.exports = { WRITE_AFTER_MS, CACHES_PER_BUILD, cacheFileFor, removeStaleCaches, cacheDir, loadWithCodeCache, afterCacheWrites };
