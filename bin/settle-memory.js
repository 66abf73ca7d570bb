// After a node process has started: V8 is told to favour memory over speed for a while,
// so that it gives the start-up memory back at its next memory-reducer check.
//
// Why: a node allocates ~12 MiB while it starts (the young generation grown to its
// semi-spaces, start-up garbage) and has no use for it afterwards. V8's memory reducer
// gives such memory back with up to three full collections, 0.5 s apart, but only when
// a check (every 8 s, the first at 4 s: --gc-memory-reducer-start-delay-ms, set by
// bin/quorumd.js) judges the process idle by its recent rate of allocation against its
// speed of collection — a judgement start-up itself skews. Traced (--trace-gc-verbose,
// `quorumd dev`, 2026-12-07): the check at 4 s judged every node busy; the one at 12 s
// started the collections, and in one node of 15 the second collection was then put
// off ("high alloc") at 13 s and again at 21 s: that node held ~4 MiB more for good
// (57.0 against 53.0-54.1 MiB RSS at 16 s). With --optimize-for-size in force, V8 counts
// a check as a reason to collect whatever the rate (V8's heap: should_start_incremental_gc
// is low_allocation_rate || optimize_for_memory), so the check at 4 s starts all three
// collections and a node has settled by ~6 s.
//
// The flag is cleared again as soon as those three collections have run (2 s after the
// first when fewer follow, 16 s after it was set when none comes), because it costs a
// node under load dearly (which of V8's trades of speed for memory does that was not
// traced). With 64 writers from the first second (`quorumd dev`, mqtt, 3 starts each
// way, 2026-12-07), a window held to 16 s cost the leader 1.5-2x the CPU per write (236
// against 112 us in the first 3 s) and the cluster 3,200-4,300 against 5,200-5,800
// writes/s. Ended at the collections, the window lasted 2.1-3.3 s under that load (2.6 s
// idle), and the first 3 s wrote 4,345-5,184 against 4,155-5,361 writes/s without it:
// within the noise. Cleared, V8's usual balance of speed and memory stands (with
// --heap-growing-percent=20 and 4 MiB semi-spaces, docs/install-pi.md "Memory").
//
// The flag is changed only once this process has written the code caches it is going to
// write (bin/code-cache.js afterCacheWrites says why), and not at all when the command
// line sets it, either way.
// Plain JavaScript, CommonJS, like the rest of bin/.
'use strict';

/** How long after the process started the flag is set (ms): before the reducer's first check at 4 s. */
const SETTLE_AFTER_MS = 3000;
/** How many full collections end the window: the reducer's three. */
const SETTLE_GCS = 3;
/**
 * How long after the first full collection the window ends (ms) when fewer follow: the
 * reducer's are ~0.6 s apart (its 0.5 s timer, then the collection), and under load it
 * may stop after one.
 */
const SETTLE_AFTER_FIRST_GC_MS = 2000;
/** The longest it stays set (ms) when no full collection comes: long enough to hold a check (they are 8 s apart) and its collections. */
const SETTLE_FOR_MS = 16000;

/**
 * Calls `onFull(n)` for the n-th full (mark-compact) collection from now on, until the
 * returned function is called. Node reports each collection as a 'gc' performance entry.
 */
function watchFullCollections(onFull) {
  const { PerformanceObserver, constants } = require('node:perf_hooks');
  let seen = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) onFull(++seen);
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

/**
 * Schedules the window: --optimize-for-size from `afterMs` after the process started (at
 * once if that has passed), once no code cache write is pending (`afterCacheWrites`),
 * until `gcs` full collections have run (`fullCollections` reports each), or
 * `afterFirstGcMs` after the first of them, or `forMs` has passed without any.
 * `setFlag` sets a V8 flag (v8.setFlagsFromString); `onStep` is told 'on' and 'off'
 * (the start trace). The timers do not keep a process alive.
 */
function settleMemory({
  afterCacheWrites,
  setFlag = (flag) => require('node:v8').setFlagsFromString(flag),
  fullCollections = watchFullCollections,
  onStep = () => {},
  afterMs = SETTLE_AFTER_MS,
  gcs = SETTLE_GCS,
  afterFirstGcMs = SETTLE_AFTER_FIRST_GC_MS,
  forMs = SETTLE_FOR_MS,
  now = () => performance.now(),
}) {
  const begin = () =>
    afterCacheWrites(() => {
      setFlag('--optimize-for-size');
      onStep('on');
      let ended = false;
      let timer;
      let stopWatching = () => {};
      const end = () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        stopWatching();
        setFlag('--no-optimize-for-size');
        onStep('off');
      };
      timer = setTimeout(end, forMs).unref();
      stopWatching = fullCollections((n) => {
        if (n >= gcs) end();
        else if (n === 1) {
          clearTimeout(timer);
          timer = setTimeout(end, afterFirstGcMs).unref();
        }
      });
    });
  setTimeout(begin, Math.max(0, afterMs - now())).unref();
}

module.exports = { SETTLE_AFTER_MS, SETTLE_GCS, SETTLE_AFTER_FIRST_GC_MS, SETTLE_FOR_MS, watchFullCollections, settleMemory };
