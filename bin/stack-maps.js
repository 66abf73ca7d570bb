// Stack traces of the compiled daemon name the TypeScript file and line, through the
// source maps beside dist/'s modules — read only when a stack is first formatted.
//
// Node's own source-map support (process.setSourceMapsEnabled, --enable-source-maps)
// reads and parses the map of every module as it loads: ~30 ms of CPU at the start of
// every node process and ~1.5 MiB of map text kept in its heap for its whole life
// (issue 14: cold start and idle memory), to serve stack traces that a healthy node
// never prints. Here V8 calls Error.prepareStackTrace when a stack is formatted; frames
// in `dist` are mapped through each module's map, read once, on first use.
//
// Not with node:module's SourceMap, which decodes every segment into an array of its own
// when it is constructed: ~190-300 ms of CPU for the node bundle's 1.4 MB map on a 2-core
// x86, several times that on a Pi. The first stack formatted in a process paid it, and
// Node itself formats one whenever a stream is destroyed with an error (it reads
// err.stack to release the frames) — so a follower whose leader was killed stalled
// ~0.3 s at its first write to the dead socket, in the middle of the failover. Reading,
// parsing and walking the whole map still cost ~70-100 ms, so the build writes an index
// beside each map (mapIndex): a lookup reads a few hundred bytes of the map and decodes
// at most a few hundred segments, ~4 ms for a whole first stack. A map without an index
// of its own build is walked once and indexed in memory (mapWithoutIndex).
// Plain JavaScript: it runs before anything is built.
'use strict';
const { closeSync, openSync, readFileSync, readSync, statSync } = require('node:fs');
const { dirname, resolve } = require('node:path');
const { fileURLToPath } = require('node:url');

/** Base64 digit values of the source map VLQ alphabet; -1 for other characters. */
const B64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** Position and value of the VLQ reader below (module-level, so that reading allocates nothing). */
let vlqPos = 0;
let vlqValue = 0;

/** Reads one base64 VLQ number of `m` at `vlqPos` into `vlqValue`, advancing `vlqPos`; false at a malformed one. */
function readVlq(m) {
  let result = 0;
  let shift = 0;
  for (;;) {
    const c = m.charCodeAt(vlqPos++);
    const d = c < 128 ? B64[c] : -1;
    if (d < 0 || shift > 30) return false;
    result += (d & 31) * 2 ** shift;
    shift += 5;
    if ((d & 32) === 0) break;
  }
  vlqValue = result % 2 === 1 ? -(result - 1) / 2 : result / 2;
  return true;
}

/**
 * Decodes the segments of `m[pos, end)` from the running values in `s` ({line, col, src,
 * oline, ocol}: generated line and column, source index, original line and column;
 * updated in place: ';' starts a line, column 0). After each segment with a source it
 * calls `seg(start, colBefore)` (where the segment starts in `m`, and the generated
 * column before it) and stops when that returns false. False at a malformed segment.
 */
function walkSegments(m, pos, end, s, seg) {
  vlqPos = pos;
  while (vlqPos < end) {
    const c = m.charCodeAt(vlqPos);
    if (c === 59) {
      s.line++; // ';'
      s.col = 0;
      vlqPos++;
      continue;
    }
    if (c === 44) {
      vlqPos++; // ','
      continue;
    }
    const start = vlqPos;
    const colBefore = s.col;
    if (!readVlq(m)) return false;
    s.col += vlqValue;
    const next = m.charCodeAt(vlqPos);
    if (vlqPos < end && next !== 44 && next !== 59) {
      if (!readVlq(m)) return false;
      s.src += vlqValue;
      if (!readVlq(m)) return false;
      s.oline += vlqValue;
      if (!readVlq(m)) return false;
      s.ocol += vlqValue;
      const n5 = m.charCodeAt(vlqPos);
      if (vlqPos < end && n5 !== 44 && n5 !== 59 && !readVlq(m)) return false;
      if (!seg(start, colBefore)) return true;
    }
  }
  return true;
}

/** Segments with a source between two checkpoints of a map index (mapIndex). */
const INDEX_EVERY = 256;
/** Numbers per checkpoint in `points`: generated line, column before and at the segment, source, original line and column before it, where it starts in `mappings`. */
const POINT = 7;

/**
 * The checkpoints of a map's `mappings` (the format, Source Map Revision 3: one group per
 * generated line, separated by ';', of segments separated by ','; a segment is 1, 4 or 5
 * base64 VLQ numbers — generated column, source index, original line, original column,
 * name index — each relative to the previous segment's; the generated column restarts
 * on every line, the others carry over): every INDEX_EVERY-th segment with a source,
 * with the running values just before it and where it starts. A lookup starts from the
 * nearest checkpoint and decodes at most INDEX_EVERY segments.
 */
function checkpoints(m) {
  const points = [];
  const s = { line: 0, col: 0, src: 0, oline: 0, ocol: 0 };
  let src = 0;
  let oline = 0;
  let ocol = 0;
  let n = 0;
  const ok = walkSegments(m, 0, m.length, s, (at, colBefore) => {
    if (n++ % INDEX_EVERY === 0) points.push(s.line, colBefore, s.col, src, oline, ocol, at);
    src = s.src;
    oline = s.oline;
    ocol = s.ocol;
    return true;
  });
  if (!ok) throw new TypeError('malformed mappings');
  return points;
}

/**
 * The checkpoint index of a source map, written by the build beside each map as
 * `<map>-index.json` (indexedMapOf reads it): the checkpoints, and where `mappings`
 * starts in the map file (bytes). With it a lookup reads a few hundred bytes of the map
 * instead of the whole file and parses no JSON but the index's: the first stack a node
 * formatted cost it ~70-100 ms when it read, parsed and walked the ~1 MB map of
 * dist/node.cjs (whose 120 generated lines are long), ~4 ms this way. `mapText`: the map
 * file's text as written.
 */
function mapIndex(mapText) {
  const json = JSON.parse(mapText);
  const index = checkpointIndex(json);
  const key = /"mappings"\s*:\s*"/.exec(mapText);
  if (key === null) throw new TypeError('not a source map');
  const start = key.index + key[0].length;
  // The mappings alphabet needs no JSON escapes: the file holds them as they are.
  if (mapText.slice(start, start + json.mappings.length) !== json.mappings || mapText[start + json.mappings.length] !== '"') throw new TypeError('mappings not found verbatim in the map text');
  return { version: 1, mapBytes: Buffer.byteLength(mapText), mappingsAt: Buffer.byteLength(mapText.slice(0, start)), ...index };
}

/** What a lookup needs of a parsed source map (version 3): its sources and the checkpoints of its `mappings`. */
function checkpointIndex(json) {
  const m = json.mappings;
  if (typeof m !== 'string' || !Array.isArray(json.sources)) throw new TypeError('not a source map');
  return { mappingsLength: m.length, sources: json.sources, sourceRoot: typeof json.sourceRoot === 'string' ? json.sourceRoot : '', points: checkpoints(m) };
}

/**
 * A map without an index beside it (a parsed source map, version 3): the same lookup,
 * its checkpoints built in memory from one walk over `mappings`.
 */
function mapWithoutIndex(json) {
  return indexedMap(checkpointIndex(json), (from, to) => json.mappings.slice(from, to));
}

/**
 * A map looked up through its checkpoints: `findEntry(line, column)` (0-based, generated)
 * gives `{originalSource, originalLine, originalColumn}` of the last segment of that
 * generated line starting at or before the column, or undefined. `readWindow(from, to)`
 * gives `mappings[from, to)`.
 */
function indexedMap(index, readWindow) {
  const p = index.points;
  const n = p.length / POINT;
  const sources = index.sources;
  const root = index.sourceRoot !== '' ? index.sourceRoot.replace(/\/?$/, '/') : '';
  return {
    findEntry(line, column) {
      if (!Number.isInteger(line) || line < 0) return undefined;
      // The last checkpoint whose segment is at or before (line, column).
      let lo = 0;
      let hi = n - 1;
      let i = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const l = p[mid * POINT];
        if (l < line || (l === line && p[mid * POINT + 2] <= column)) {
          i = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      // The answer lies before the next checkpoint's segment, which is past (line, column).
      const from = i < 0 ? 0 : p[i * POINT + 6];
      const to = i + 1 < n ? p[(i + 1) * POINT + 6] : index.mappingsLength;
      const s = i < 0 ? { line: 0, col: 0, src: 0, oline: 0, ocol: 0 } : { line: p[i * POINT], col: p[i * POINT + 1], src: p[i * POINT + 3], oline: p[i * POINT + 4], ocol: p[i * POINT + 5] };
      const m = readWindow(from, to);
      let found;
      const ok = walkSegments(m, 0, m.length, s, () => {
        if (s.line > line || (s.line === line && s.col > column)) return false;
        if (s.line === line) found = [s.src, s.oline, s.ocol];
        return true;
      });
      if (!ok || found === undefined || typeof sources[found[0]] !== 'string') return undefined;
      return { originalSource: root + sources[found[0]], originalLine: found[1], originalColumn: found[2] };
    },
  };
}

/**
 * The indexed map of `file` (its `<file>.map` and `<file>.map-index.json`), or null when
 * there is no index or it does not belong to the map beside it (another build): then
 * the caller reads the whole map.
 */
function indexedMapOf(file) {
  let index;
  try {
    index = JSON.parse(readFileSync(`${file}.map-index.json`, 'utf8'));
  } catch {
    return null;
  }
  if (index?.version !== 1 || !Array.isArray(index.points) || !Array.isArray(index.sources)) return null;
  const map = `${file}.map`;
  const read = (from, to) => {
    const fd = openSync(map, 'r');
    try {
      const buf = Buffer.alloc(to - from);
      const got = readSync(fd, buf, 0, buf.length, index.mappingsAt + from);
      return buf.toString('latin1', 0, got);
    } finally {
      closeSync(fd);
    }
  };
  try {
    // The map it was built from: same size, and `mappings` where the index says.
    if (statSync(map).size !== index.mapBytes) return null;
    if (read(-1, 0) !== '"' || read(index.mappingsLength, index.mappingsLength + 1) !== '"') return null;
  } catch {
    return null;
  }
  return indexedMap(index, read);
}

/** Maps stack frames in the directory `distDir` (a path or file: URL) to their sources. */
function installLazySourceMaps(distDir) {
  const dist = typeof distDir === 'string' ? distDir : fileURLToPath(distDir);
  const prefix = dist.endsWith('/') ? dist : `${dist}/`;
  /** file → its map (indexed or not), or null when it has none (or it does not parse). */
  const maps = new Map();
  const mapOf = (file) => {
    let m = maps.get(file);
    if (m === undefined) {
      try {
        m = indexedMapOf(file) ?? mapWithoutIndex(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
      } catch {
        m = null;
      }
      maps.set(file, m);
    }
    return m;
  };
  const frame = (f) => {
    const text = String(f);
    try {
      const name = f.getFileName();
      if (!name) return text;
      const file = name.startsWith('file://') ? fileURLToPath(name) : name;
      if (!file.startsWith(prefix)) return text;
      const line = f.getLineNumber();
      const col = f.getColumnNumber();
      const e = mapOf(file)?.findEntry(line - 1, col - 1);
      if (!e || typeof e.originalSource !== 'string' || typeof e.originalLine !== 'number') return text;
      const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : resolve(dirname(file), e.originalSource);
      return text.replace(`${name}:${line}:${col}`, `${src}:${e.originalLine + 1}:${e.originalColumn + 1}`);
    } catch {
      return text; // a stack trace must never fail because of its map
    }
  };
  Error.prepareStackTrace = (err, frames) => {
    let head;
    try {
      head = Error.prototype.toString.call(err);
    } catch {
      head = '<error>';
    }
    return head + frames.map((f) => `\n    at ${frame(f)}`).join('');
  };
}

module.exports = { installLazySourceMaps, mapIndex, mapWithoutIndex, indexedMapOf };
