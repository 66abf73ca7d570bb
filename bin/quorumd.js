#!/bin/sh
":" /*
# The lines up to the comment's end are read by sh, which the kernel runs this file with
# when it runs as `quorumd` (npm links it onto the PATH; `npx quorumd`); node reads a
# string and a comment. sh then runs node on this same file in its own place (exec: one
# process, same pid), with the node flags the command needs.
#
# A resident process started by hand (`quorumd start`, `quorumd witness`, `quorumd
# broker`) gets the memory settings that `quorumd dev` gives its nodes (daemon/dev.ts
# NODE_FLAGS, NODE_MALLOC_TUNABLES) and the systemd unit a board's node
# (packaging/quorumd.service; docs/install-pi.md, "Memory", says why each):
#   --max-semi-space-size=4     a 4 MiB young generation instead of V8's 16 (a leader
#                               peaked at ~95 MiB under 64 writers without it, ~75 with it)
#   --heap-growing-percent=20   the old generation grows 20 % past the last full
#                               collection's survivors, not up to 4x under load
#   GLIBC_TUNABLES              two malloc arenas, large blocks from mmap (unless set)
# Every other command gets no flag at all: with any V8 flag on its command line, Node 20
# compiles its built-in modules from their source instead of loading the compiled code
# it carries (V8 refuses a code cache made under other flags): 15 -> 32 ms of CPU for
# http, net and crypto, and ~20 ms more for each CLI call such as `quorumd kv get`.
# (`quorumd dev`'s supervisor holds the same memory without them: 53-54 MiB idle, 56
# under 64 writers.) Shell built-ins only: an external command here (readlink, dirname)
# cost every call ~5-10 ms; node finds this file's real directory itself.
command=
for arg in "$@"; do
  case $arg in
    -*) ;;
    *) command=$arg; break ;;
  esac
done
case $command in
  start | witness | broker)
    GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072}
    export GLIBC_TUNABLES
    exec node --max-semi-space-size=4 --heap-growing-percent=20 "$0" "$@"
    ;;
esac
exec node "$0" "$@"
*/
// Runs the compiled daemon in dist/ (plain JavaScript built by scripts/build.mjs; `npm ci`
// builds it as the `prepare` step). Run as `node bin/quorumd.js ...`, node skips the
// lines above and the process has the flags its command line gives.
//
// CommonJS (bin/package.json says so): a node process, started as `quorumd start
// --config <file>`, then loads no ES module machinery at all (Node's ES module loader
// cost a node 1.2 MiB of resident memory and ~15 ms of CPU before this line: issue 14,
// docs/install-pi.md); the CLI's commands import the ES modules of dist/ below.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

// QUORUMD_TRACE_START=1: start-up trace points on stderr (daemon/start-trace.ts has the format).
const trace = process.env.QUORUMD_TRACE_START === '1' ? (step) => process.stderr.write(`quorumd start-trace ${step} +${performance.now().toFixed(1)} @${(performance.timeOrigin + performance.now()).toFixed(1)} cpu ${((process.cpuUsage().user + process.cpuUsage().system) / 1000).toFixed(1)}\n`) : () => {};
trace('bin');

// No top-level await in CommonJS: the steps below run in one async function, and a
// failure nothing else caught ends the process as an uncaught exception would.
(async () => {
  // Stack traces through the source maps in dist/ (file:line of the TypeScript), read
  // when a stack is first formatted (bin/stack-maps.js says why not at load).
  if (process.env.QUORUMD_SOURCE_MAPS !== '0') {
    require('./stack-maps.js').installLazySourceMaps(join(__dirname, '..', 'dist'));
  }
  // In a git checkout (sources beside us), build first when a source changed since the
  // last build; a published package has dist/ only. `quorumd dev` checked that already
  // when it started: it sets QUORUMD_BUILD_CHECKED=1 for its node processes, which then
  // skip the walk over the sources (a stat per file; 10–130 ms of a node's start on a
  // busy machine). Removed here so that hooks and jobs of the node do not inherit it.
  const checked = process.env.QUORUMD_BUILD_CHECKED === '1';
  delete process.env.QUORUMD_BUILD_CHECKED;
  // (scripts/freshness.cjs answers without the build's own module; only a stale dist/
  // loads it.)
  if (!checked && existsSync(join(__dirname, '..', 'scripts', 'build.mjs')) && existsSync(join(__dirname, '..', 'daemon', 'cli.ts')) && !require('../scripts/freshness.cjs').isFresh()) {
    const { ensureBuilt } = await import(pathToFileURL(join(__dirname, '..', 'scripts', 'build.mjs')).href);
    await ensureBuilt();
  }
  // For daemon/dev.ts: dist/ is known fresh in this process (it passes that on to its nodes).
  globalThis.quorumdBuildChecked = true;

  // A node process, in the exact form `quorumd dev` and the systemd unit start it, runs its
  // own bundle through V8's code cache (bin/code-cache.js); every other command line goes
  // through the full CLI below (which runs the same runStart/runWitness).
  const args = process.argv.slice(2);
  const nodeCommand =
    (args[0] === 'start' || args[0] === 'witness') &&
    ((args.length === 3 && args[1] === '--config' && !args[2].startsWith('-')) || (args.length === 2 && /^--config=./.test(args[1])))
      ? { command: args[0], config: args.length === 3 ? args[2] : args[1].slice('--config='.length) }
      : null;
  const nodeBundle = join(__dirname, '..', 'dist', 'node.cjs');
  if (nodeCommand !== null && existsSync(nodeBundle)) {
    // Two V8 settings for a resident node that V8 reads when it uses them, so they are
    // set here rather than on the command line (the shell lines above, `quorumd dev`, the
    // systemd unit); a flag given there wins. Measured on `quorumd dev` (issue 14, docs/install-pi.md "Memory"):
    // --bytecode-old-age=1: V8 drops the bytecode of a function that has not run since the
    //   last full collection (its default waits for five): what ran only while the node
    //   started (module set-up, the config check, the first election) is compiled again
    //   from the source if it ever runs again, and ~2 MiB of heap stay free for good.
    // --gc-memory-reducer-start-delay-ms=4000: V8 gives start-up memory back (the young
    //   generation grown to its semi-spaces, start-up garbage: ~12 MiB) once a check finds
    //   the process idle over its last ~5 s. Its first check at 8 s often still sees the
    //   start-up and then waits 8 s more, so a node held that memory until 16 or 24 s;
    //   the first check is now at 4 s, and bin/settle-memory.js (below, once the node has
    //   started) makes that check collect whatever V8 makes of the start-up.
    const given = (name) => process.execArgv.some((a) => a.replaceAll('_', '-') === name || a.replaceAll('_', '-').startsWith(`${name}=`));
    const v8Flags = ['--bytecode-old-age=1', '--gc-memory-reducer-start-delay-ms=4000'].filter((f) => !given(f.slice(0, f.indexOf('='))));
    for (const flag of v8Flags) require('node:v8').setFlagsFromString(flag);
    trace(`v8 flags set: ${v8Flags.join(' ') || 'none'}`);
    const { loadWithCodeCache, afterCacheWrites } = require('./code-cache.js');
    const { exports: node, cache, file, problem } = loadWithCodeCache(nodeBundle, {
      onWrite: (err) => {
        // A directory this user may not write to (an install owned by root, no
        // CacheDirectory=) just means no cache: said only by the trace below.
        if (err !== null && !/EACCES|EPERM|EROFS/.test(err)) process.stderr.write(`quorumd: code cache not written (${file}): ${err}\n`);
      },
    });
    if (problem !== undefined) process.stderr.write(`quorumd: ${problem}\n`);
    trace(`node bundle loaded (code cache ${cache})`);
    await node.runNodeCommand(nodeCommand.command, nodeCommand.config);
    // Started: V8 favours memory for a while, so that the start-up memory goes back at the
    // memory reducer's next check (bin/settle-memory.js says why; a flag given wins).
    if (!given('--optimize-for-size') && !given('--no-optimize-for-size')) {
      require('./settle-memory.js').settleMemory({ afterCacheWrites, onStep: (step) => trace(`memory settle: --optimize-for-size ${step}`) });
    }
  } else {
    const { main } = await import(pathToFileURL(join(__dirname, '..', 'dist', 'cli.js')).href);
    trace('cli loaded');
    await main(process.argv);
  }
})().catch((err) => {
  process.nextTick(() => {
    throw err;
  });
});
