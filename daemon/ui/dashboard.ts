/**
 * The node dashboard, `GET /ui`: a page every node serves itself, with no build step
 * at run time and nothing fetched from outside. The page and its code are files of
 * the package (this module's HTML, daemon/ui/dashboard.js, daemon/ui/lanes.js,
 * daemon/ui/text.js and uPlot from node_modules, daemon/ui/assets.ts), about 110 KB in
 * all (uPlot 51 KB of it), read once.
 *
 * Credentials: the page and its code hold no cluster data, so they are served to
 * anyone who reaches the port (like the login page of any web console). Everything
 * the page shows comes from the API with the same bearer token as every other client,
 * read scope being enough: the page asks for the token in a form, keeps it in
 * sessionStorage (this tab only, gone when the tab closes) and sends it as an
 * `Authorization: Bearer` header with each request. A browser never adds such a
 * header by itself, so another site cannot make the browser act with it (no CSRF),
 * and the page does nothing but read: it has no operator actions.
 *
 * Headers: a strict Content-Security-Policy (scripts only from this node, no inline
 * script, no connections elsewhere, never framed), nosniff, no referrer. Files are
 * answered with an ETag and revalidated (`no-cache`): a node upgraded in place serves
 * its new code at the next load.
 */
import { createHash } from 'node:crypto';
import { uiAssets } from './assets.ts';

export interface UiFile {
  body: string;
  type: string;
  etag: string;
}

/** Security headers of every dashboard answer. */
export const UI_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** Paths handled by the dashboard (before the token check). */
export function isUiPath(path: string): boolean {
  return path === '/ui' || path.startsWith('/ui/');
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quorumd</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/uplot.css">
<link rel="stylesheet" href="/ui/dashboard.css">
</head>
<body>
<header><h1>quorumd</h1><span id="node-title" data-testid="node-title"></span><span id="updated" data-testid="updated"></span>
<button id="signout" data-testid="signout" hidden>sign out</button></header>
<main id="login" data-testid="login" hidden>
  <form id="login-form">
    <p>This node's API token (read scope is enough). It stays in this tab only (sessionStorage) and is sent as an
    <code>Authorization: Bearer</code> header; the <code>quorumd dev</code> guide and docs/security.md say where to find it.</p>
    <label>API token <input id="token" data-testid="token" type="password" autocomplete="off" size="50"></label>
    <button type="submit" data-testid="login-submit">show the cluster</button>
    <p id="login-error" data-testid="login-error" class="error"></p>
  </form>
</main>
<main id="app" data-testid="app" hidden>
  <section id="summary" data-testid="summary"></section>
  <p id="error" data-testid="error" class="error"></p>
  <section><h2>Members <small>as this node sees them</small></h2><table id="members" data-testid="members"></table></section>
  <section><h2>Roles over time <small>seen from this node since the page opened; hover or click</small></h2>
    <div id="lanes" data-testid="lanes"></div>
    <p class="legend"><span class="pill leader">leader</span> <span class="pill follower">follower</span> <span class="pill candidate">candidate</span>
    <span class="pill witness">witness</span> <span class="pill heard">heard</span> a message from it arrived within 3 s (its role is not known here: followers talk to the leader only)
    <span class="pill not-heard">not heard</span> <span class="pill fenced">fenced</span> a fence cut its power (or an operator confirmed it down) and nothing was heard from it since
    <span class="pill unreachable">unreachable</span> this page cannot reach this node <span class="pill unknown">unknown</span> what this node sees of the others, meanwhile;
    orange lines: term changes, red: fences</p>
    <pre id="lane-details" data-testid="lane-details"></pre></section>
  <section><h2>Commit latency and elections <small>from /metrics</small></h2><div id="chart" data-testid="chart"></div></section>
  <section><h2>Links</h2><table id="links" data-testid="links"></table></section>
  <section><h2>Fence history <small id="fence-scope" data-testid="fence-scope"></small></h2><table id="fences" data-testid="fences"></table></section>
  <section><h2>Keys</h2>
    <form id="kv-form"><label>prefix <input id="kv-prefix" data-testid="kv-prefix" size="30"></label> <button type="submit">list</button></form>
    <table id="keys" data-testid="keys"></table>
    <div id="kv-value" data-testid="kv-value" hidden><h3 id="kv-key"></h3>
      <label><input type="checkbox" id="kv-watch" data-testid="kv-watch"> watch (shows every change as it is applied)</label>
      <pre id="kv-text" data-testid="kv-text"></pre><ol id="kv-log" data-testid="kv-log"></ol></div>
  </section>
  <section><h2>Locks</h2>
    <form id="lock-form"><label>prefix <input id="lock-prefix" data-testid="lock-prefix" size="30"></label> <button type="submit">list</button></form>
    <table id="locks" data-testid="locks"></table></section>
  <section><h2>Scheduled jobs</h2><table id="jobs" data-testid="jobs"></table></section>
</main>
<script src="/ui/uplot.js"></script>
<script src="/ui/lanes.js"></script>
<script src="/ui/text.js"></script>
<script src="/ui/dashboard.js"></script>
</body>
</html>
`;

const CSS = `body{font:14px system-ui,sans-serif;margin:0 16px 32px;color:#222}
header{display:flex;flex-wrap:wrap;gap:0 16px;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:8px}
#signout{white-space:nowrap}
header h1{font-size:20px;margin:8px 0}
#updated{color:#777;font-size:12px;margin-left:auto}#updated.error{color:#b00020}
h2{font-size:16px;margin:20px 0 6px}h2 small{font-weight:normal;color:#777}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;display:block;max-width:100%;overflow-x:auto}
th,td{text-align:left;padding:3px 10px 3px 0;border-bottom:1px solid #eee;vertical-align:top}
th{color:#555;font-weight:600}
.error{color:#b00020;white-space:pre-wrap}
.pill{display:inline-block;padding:0 6px;border-radius:8px;background:#eee;white-space:nowrap}
.leader,.coordinator{background:#2e7d32;color:#fff}.candidate,.pre-candidate{background:#f9a825}
.follower{background:#1565c0;color:#fff}.heard{background:#90caf9}.not-heard{background:#bdbdbd}.unreachable,.down{background:#616161;color:#fff}.witness{background:#6a1b9a;color:#fff}
.fenced{background:#212121;color:#fff}.unknown{background:#eee;color:#555;border:1px dashed #999}
.legend{font-size:12px;color:#555}
.up{color:#2e7d32}.dn{color:#b00020}
#summary{display:flex;flex-wrap:wrap;gap:8px 24px;margin:8px 0}
#summary div b{display:block;font-size:12px;color:#777;font-weight:normal}
#keys tr[data-key]{cursor:pointer}#keys tr[data-key]:hover{background:#f4f4ff}
#kv-text{background:#f7f7f7;padding:6px;max-height:200px;overflow:auto}
#lane-details{min-height:1.2em;color:#333}
.qt-mark{display:inline-block;font:11px ui-monospace,monospace;line-height:1.2;color:#b00020;border:1px solid #b00020;border-radius:3px;padding:0 2px;margin:0 1px;vertical-align:baseline}
#keys td:first-child,#locks td:nth-child(-n+2),#jobs td:first-child{overflow-wrap:anywhere;max-width:40em;min-width:7em}
#jobs td:nth-child(n+2):not(:nth-child(5)),#locks td:nth-child(n+3){white-space:nowrap}
tr.note td{color:#555;font-size:12px;white-space:normal}
.warn{color:#8a4b00}.warn small{display:block;white-space:normal;min-width:16em;max-width:32em}
#app.stale #summary,#app.stale table,#app.stale #chart{opacity:.45}
#kv-key,#kv-text{overflow-wrap:anywhere;white-space:pre-wrap}
#kv-log li{white-space:pre-wrap;overflow-wrap:anywhere;max-height:6em;overflow:auto}
`;

let files: Map<string, UiFile> | undefined;

function file(body: string, type: string): UiFile {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** The dashboard file at `path`, or undefined. Reads the assets once per process. */
export function uiFile(path: string): UiFile | undefined {
  if (!files) {
    const a = uiAssets();
    const js = 'text/javascript; charset=utf-8';
    files = new Map([
      ['/ui', file(PAGE, 'text/html; charset=utf-8')],
      ['/ui/', file(PAGE, 'text/html; charset=utf-8')],
      ['/ui/dashboard.css', file(CSS, 'text/css; charset=utf-8')],
      ['/ui/uplot.css', file(a.uplotCss, 'text/css; charset=utf-8')],
      ['/ui/uplot.js', file(a.uplotJs, js)],
      ['/ui/lanes.js', file(a.lanesJs, js)],
      ['/ui/text.js', file(a.textJs, js)],
      ['/ui/dashboard.js', file(a.dashboardJs, js)],
    ]);
  }
  return files.get(path);
}
