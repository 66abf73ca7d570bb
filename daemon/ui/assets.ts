/**
 * The browser code quorumd puts into its pages, as text: uPlot (the chart library,
 * MIT, from node_modules) and our lanes renderer (lanes.js beside this file), plus the
 * helpers to inline them safely. Pages are self-contained: everything they run is in
 * the file (the simulation timeline) or served by the node itself (a dashboard), never
 * fetched from the network.
 *
 * Files are read once per process and kept. They are found from the package root (the
 * folder of quorumd's package.json above this file), so this works the same from the
 * source tree and from an installed package.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface UiAssets {
  /** uPlot's minified browser build (defines the global `uPlot`). */
  uplotJs: string;
  uplotCss: string;
  /** daemon/ui/lanes.js: defines the global `QuorumdLanes`. */
  lanesJs: string;
  /** daemon/ui/dashboard.js: the node dashboard's page code (served at /ui/dashboard.js). */
  dashboardJs: string;
  /** daemon/ui/text.js: defines the global `QuorumdText` (invisible and bidi characters shown as marked codes). */
  textJs: string;
}

let cached: UiAssets | undefined;

/** The folder holding quorumd's package.json, from this module upwards. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      let text: string;
      try {
        text = readFileSync(p, 'utf8');
      } catch (err) {
        // Unreadable is not "absent" (out of file descriptors, permissions): say which.
        throw new Error(`quorumd ui assets: cannot read ${p}: ${(err as Error).message}`);
      }
      try {
        if ((JSON.parse(text) as { name?: string }).name === 'quorumd') return dir;
      } catch {
        // not JSON, so not ours; keep going up
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`quorumd ui assets: cannot find quorumd's package.json above ${fileURLToPath(import.meta.url)}`);
}

function readAsset(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`quorumd ui assets: cannot read ${what} at ${path} (${(e as Error).message}); is the package installed completely (npm ci)?`);
  }
}

export function uiAssets(): UiAssets {
  if (cached) return cached;
  const root = packageRoot();
  const req = createRequire(join(root, 'package.json'));
  let uplotJsPath: string;
  try {
    uplotJsPath = req.resolve('uplot/dist/uPlot.iife.min.js');
  } catch (e) {
    throw new Error(`quorumd ui assets: the uplot package is missing (${(e as Error).message}); run npm ci`);
  }
  cached = {
    uplotJs: readAsset(uplotJsPath, 'uPlot'),
    uplotCss: readAsset(join(dirname(uplotJsPath), 'uPlot.min.css'), "uPlot's stylesheet"),
    lanesJs: readAsset(join(root, 'daemon', 'ui', 'lanes.js'), 'the lanes renderer'),
    dashboardJs: readAsset(join(root, 'daemon', 'ui', 'dashboard.js'), 'the dashboard'),
    textJs: readAsset(join(root, 'daemon', 'ui', 'text.js'), 'the text marking code'),
  };
  return cached;
}

/** Text for inside <script>…</script>: a literal "</script" (or "<!--") in it would end or confuse the element. */
export function scriptText(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** JSON for a <script type="application/json"> element: every "<" escaped, so nothing in the data can close the element. */
export function jsonScriptText(data: unknown): string {
  return JSON.stringify(data).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Text for HTML content or a quoted attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
