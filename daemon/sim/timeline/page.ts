/**
 * The HTML of the simulation timeline: one self-contained file per seed (the recorded
 * data, uPlot, the lanes renderer and the page script all inlined: it opens from disk
 * with no network), and the index page of `--html-dir` that links the failing seeds.
 *
 * What is drawn and how is in page.js (browser side) and daemon/ui/lanes.js (the
 * renderer the node dashboard shares); this file only assembles the document.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeHtml, jsonScriptText, packageRoot, scriptText, uiAssets } from '../../ui/assets.ts';
import type { TimelineData } from './recorder.ts';

let pageJs: string | undefined;

function pageScript(): string {
  pageJs ??= readFileSync(join(packageRoot(), 'daemon', 'sim', 'timeline', 'page.js'), 'utf8');
  return pageJs;
}

const STYLE = `
body{font:13px system-ui,sans-serif;margin:12px 16px;color:#222}
h1{font-size:17px;margin:0 0 4px}
code,.mono{font:12px ui-monospace,monospace}
.summary{color:#444;word-break:break-all;margin:4px 0}
.violation{border:2px solid #d00000;background:#fff3f3;padding:6px 10px;margin:8px 0;white-space:pre-wrap}
.violation b{color:#d00000}
.ok{border:1px solid #9c9;background:#f3fff3;padding:4px 10px;margin:8px 0}
#legend{margin:6px 0;line-height:22px}
.lg-group{margin-right:14px;display:inline-block}
.lg-item{margin-right:8px;white-space:nowrap}
.lg-item i{display:inline-block;width:12px;height:12px;margin-right:3px;vertical-align:-2px;border:1px solid #999}
#details{min-height:2.6em;white-space:pre-wrap;border-top:1px solid #ddd;margin-top:6px;padding-top:4px;color:#333}
.help{color:#666;font-size:12px}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
`;

/** A CSP source for an inline script: its SHA-256 (CSP Level 2 hash sources). */
function scriptHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The page's Content-Security-Policy, in a <meta> (the page is a file: no headers).
 * Its own inline scripts run, named by their hashes; no other script can (nothing
 * injected, no attribute handler, no javascript: URL), nothing is fetched or sent
 * (default-src 'none': a page opened from a CI artifact cannot call out), no form, no
 * base. Styles may be inline: the page's own, and the one lanes.js adds.
 */
export function timelineCsp(scripts: readonly string[]): string {
  return `default-src 'none'; script-src ${scripts.map(scriptHash).join(' ')}; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'`;
}

/** One seed's page. */
export function timelinePage(data: TimelineData): string {
  const a = uiAssets();
  const scripts = [scriptText(a.uplotJs), scriptText(a.lanesJs), scriptText(pageScript())];
  const m = data.meta;
  const title = `quorumd sim — seed ${m.seed}, ${m.engine}, ${m.nodes} node${m.nodes === 1 ? '' : 's'}${m.witness ? ' + witness' : ''}${m.observers ? ` + ${m.observers} observer${m.observers === 1 ? '' : 's'}` : ''}`;
  const v = data.violations[0];
  const status = v
    ? `<div class="violation" data-testid="violation"><b>VIOLATION ${escapeHtml(v.invariant)}</b> at ${(v.at / 1e6).toFixed(3)} s\n${escapeHtml(v.detail)}\nreplay: <code>${escapeHtml(m.replay)}</code></div>`
    : `<div class="ok">No violation. Replay: <code>${escapeHtml(m.replay)}</code></div>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(timelineCsp(scripts))}">
<title>${escapeHtml(title)}</title>
<style>${a.uplotCss}</style>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<div class="mono">virtual time ${(m.timeMs / 1000).toFixed(0)} s · faults: ${escapeHtml(m.faults.length > 0 ? m.faults.join(', ') : 'none')} · ${m.stonith ? 'STONITH relays' : 'no STONITH'} · trace ${escapeHtml(m.trace)}</div>
<div class="summary mono">${escapeHtml(m.summary)}</div>
${status}
<div id="legend"></div>
<div id="chart"></div>
<div id="details" data-testid="details"></div>
<p class="help">Drag across the chart to zoom to a range; mouse wheel zooms, shift+wheel or shift+drag pans; double-click or "reset" shows the whole run; arrow keys and +/− work too. Hover over anything for what it is; click to keep its description below the chart.</p>
<p class="help">Made by <code>quorumd sim --html</code>. Charts drawn with uPlot (MIT licence, © Leon Sorokin), included in this file.</p>
<script>${scripts[0]}</script>
<script>${scripts[1]}</script>
<script type="application/json" id="timeline-data">${jsonScriptText(data)}</script>
<script>${scripts[2]}</script>
</body>
</html>
`;
}

export interface IndexEntry {
  seed: number;
  invariant: string;
  atMs: number;
  detail: string;
  /** The page's file name, relative to the index. */
  file: string;
  /** Bytes of the page. */
  bytes: number;
}

/** The index of `--html-dir`: the run's settings and totals, and a link to each failing seed's page. */
export function indexPage(run: { title: string; settings: string; totals: string; faultKinds: string; entries: IndexEntry[] }): string {
  const rows = run.entries
    .map(
      (e) =>
        `<tr><td><a href="${escapeHtml(encodeURIComponent(e.file))}">seed ${e.seed}</a></td><td><b>${escapeHtml(e.invariant)}</b></td><td>${(e.atMs / 1000).toFixed(3)} s</td>` +
        `<td>${escapeHtml(e.detail.length > 300 ? `${e.detail.slice(0, 300)}…` : e.detail)}</td><td>${Math.round(e.bytes / 1024)} KiB</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<title>${escapeHtml(run.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(run.title)}</h1>
<div class="mono">${escapeHtml(run.settings)}</div>
<div class="summary mono">${escapeHtml(run.totals)}</div>
<div class="mono">faults injected: ${escapeHtml(run.faultKinds || 'none')}</div>
${
  run.entries.length === 0
    ? '<div class="ok" data-testid="no-violations">No seed failed: there is no timeline to show. Run one seed with <code>quorumd sim --seed N --html FILE</code> to see a clean run.</div>'
    : `<h2 style="font-size:15px">Failing seeds (${run.entries.length})</h2>\n<table data-testid="failing"><tr><th>seed</th><th>invariant</th><th>at</th><th>message</th><th>page</th></tr>\n${rows}\n</table>`
}
</body>
</html>
`;
}
