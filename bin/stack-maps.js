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
// The map is decoded only as far as a frame needs (lazyMap below), not with
// node:module's SourceMap, which decodes every segment into an array of its own when it
// is constructed: ~190-300 ms of CPU for the node bundle's 1.4 MB map on a 2-core x86,
// several times that on a Pi. The first stack formatted in a process paid it, and Node
// itself formats one whenever a stream is destroyed with an error (it reads err.stack
// to release the frames) — so a follower whose leader was killed stalled ~0.3 s at its
// first write to the dead socket, in the middle of the failover.
// Plain JavaScript: it runs before anything is built.
'use strict';
const { readFileSync } = require('node:fs');
const { dirname, resolve } = require('node:path');
const { fileURLToPath } = require('node:url');

/** Base64 digit values of the source map VLQ alphabet; -1 for other characters. */
const B64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/**
 * A source map (version 3) looked up without decoding it all: `findEntry(line, column)`
 * (0-based, generated) gives `{originalSource, originalLine, originalColumn}` of the
 * last segment of that generated line starting at or before the column, or undefined.
 *
 * The format's facts this rests on (Source Map Revision 3): `mappings` holds one group
 * per generated line, separated by ';', of segments separated by ','; a segment is 1, 4
 * or 5 base64 VLQ numbers — generated column, source index, original line, original
 * column, name index — each relative to the previous segment's; the generated column
 * restarts at 0 on every line, the other four carry over from line to line. So a line
 * is decoded from the running values at its start, which are kept per line as the
 * lines are first walked (numbers only, no object per segment).
 */
function lazyMap(json) {
  const m = json.mappings;
  const sources = json.sources;
  const root = typeof json.sourceRoot === 'string' && json.sourceRoot !== '' ? json.sourceRoot.replace(/\/?$/, '/') : '';
  if (typeof m !== 'string' || !Array.isArray(sources)) throw new TypeError('not a source map');
  // Where each generated line's group starts in `m`, and the running source, original
  // line and original column there (3 numbers per line, for the lines walked so far).
  const at = [0];
  const carry = [0, 0, 0];
  let walked = 0;
  let pos = 0;
  let value = 0;
  /** Reads one VLQ number at `pos` into `value`; false at a malformed one. */
  const read = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const c = m.charCodeAt(pos++);
      const d = c < 128 ? B64[c] : -1;
      if (d < 0 || shift > 30) return false;
      result += (d & 31) * 2 ** shift;
      shift += 5;
      if ((d & 32) === 0) break;
    }
    value = result % 2 === 1 ? -(result - 1) / 2 : result / 2;
    return true;
  };
  /**
   * Walks the segments of line `line` from the running values in `st` (source, line,
   * column; updated in place); calls `seg(column)` after each segment that has a source
   * and stops when it returns false. False at a malformed group.
   */
  const walk = (line, st, seg) => {
    pos = at[line];
    let col = 0;
    while (pos < m.length) {
      const c = m.charCodeAt(pos);
      if (c === 59) return true; // ';': the line's end
      if (c === 44) {
        pos++; // ','
        continue;
      }
      if (!read()) return false;
      col += value;
      const next = m.charCodeAt(pos);
      if (pos < m.length && next !== 44 && next !== 59) {
        if (!read()) return false;
        st[0] += value;
        if (!read()) return false;
        st[1] += value;
        if (!read()) return false;
        st[2] += value;
        const n5 = m.charCodeAt(pos);
        if (pos < m.length && n5 !== 44 && n5 !== 59 && !read()) return false;
        if (seg !== undefined && !seg(col)) return true;
      }
    }
    return true;
  };
  return {
    findEntry(line, column) {
      if (!Number.isInteger(line) || line < 0) return undefined;
      // Walk the lines before it once, keeping the running values at each line's start.
      while (walked < line) {
        const st = carry.slice(walked * 3, walked * 3 + 3);
        if (!walk(walked, st)) return undefined;
        if (pos >= m.length) return undefined; // the map has fewer lines
        at.push(pos + 1);
        carry.push(st[0], st[1], st[2]);
        walked++;
      }
      const st = carry.slice(line * 3, line * 3 + 3);
      let found;
      const ok = walk(line, st, (col) => {
        if (col > column) return false;
        found = [st[0], st[1], st[2]];
        return true;
      });
      if (!ok || found === undefined || typeof sources[found[0]] !== 'string') return undefined;
      return { originalSource: root + sources[found[0]], originalLine: found[1], originalColumn: found[2] };
    },
  };
}

/** Maps stack frames in the directory `distDir` (a path or file: URL) to their sources. */
function installLazySourceMaps(distDir) {
  const dist = typeof distDir === 'string' ? distDir : fileURLToPath(distDir);
  const prefix = dist.endsWith('/') ? dist : `${dist}/`;
  /** file → its map (lazyMap), or null when it has none (or it does not parse). */
  const maps = new Map();
  const mapOf = (file) => {
    let m = maps.get(file);
    if (m === undefined) {
      try {
        m = lazyMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
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

module.exports = { installLazySourceMaps, lazyMap };
