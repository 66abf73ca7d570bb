// Stack traces of the compiled daemon name the TypeScript file and line, through the
// source maps beside dist/'s modules — read only when a stack is first formatted.
//
// Node's own source-map support (process.setSourceMapsEnabled, --enable-source-maps)
// reads and parses the map of every module as it loads: ~30 ms of CPU at the start of
// every node process and ~1.5 MiB of map text kept in its heap for its whole life
// (issue 14: cold start and idle memory), to serve stack traces that a healthy node
// never prints. Here V8 calls Error.prepareStackTrace when a stack is formatted; frames
// in `dist` are mapped with node:module's SourceMap, each map read once, on first use.
// Plain JavaScript: it runs before anything is built.
'use strict';
const { readFileSync } = require('node:fs');
const { SourceMap } = require('node:module');
const { dirname, resolve } = require('node:path');
const { fileURLToPath } = require('node:url');

/** Maps stack frames in the directory `distDir` (a path or file: URL) to their sources. */
function installLazySourceMaps(distDir) {
  const dist = typeof distDir === 'string' ? distDir : fileURLToPath(distDir);
  const prefix = dist.endsWith('/') ? dist : `${dist}/`;
  /** file → its SourceMap, or null when it has none (or it does not parse). */
  const maps = new Map();
  const mapOf = (file) => {
    let m = maps.get(file);
    if (m === undefined) {
      try {
        m = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
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

module.exports = { installLazySourceMaps };
