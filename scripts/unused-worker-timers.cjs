// Stands in for the `worker-timers` package in dist/ (scripts/build.mjs, `alias`). The
// mqtt package keeps its keep-alive timer in a Web Worker only in a browser (its
// get-timer.js picks `worker-timers` there, Node's own setInterval everywhere else); it
// requires the package at load all the same, with @babel/runtime, broker-factory and
// fast-unique-numbers behind it: ~45 KiB of JavaScript every node process read and
// compiled for nothing. Loading this stub costs nothing; calling it is a bug.
'use strict';

function unused() {
  throw new Error('quorumd: worker-timers (browser timers of the MQTT client) are not part of this build');
}

module.exports = { setInterval: unused, clearInterval: unused, setTimeout: unused, clearTimeout: unused };
