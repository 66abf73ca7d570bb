// Stands in for `cbor-extract` in dist/node.cjs (scripts/build.mjs, the node bundle's
// `alias`). cbor-x tries that optional native addon when it loads, and decodes strings
// in JavaScript when it is not there. Loading it cost a node ~12 ms of CPU at every start
// (`require('cbor-x')` 21 ms with it, 8.8 ms without, on x86-64: node-gyp-build's libc
// check spawns nothing but reads files and the addon is dlopen'ed) and bought nothing a
// node uses: cbor-x hands strings to it only in messages of 140 bytes or more, and a
// node decodes with cbor-x only a snapshot's membership, forwarded requests and PBFT
// envelopes. Requiring this throws, which cbor-x takes as "not installed".
'use strict';

throw new Error('quorumd: cbor-extract (the native string extractor of cbor-x) is left out of the node bundle');
