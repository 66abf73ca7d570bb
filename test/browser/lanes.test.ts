/**
 * The lanes renderer (daemon/ui/lanes.js) on its own, as another page (the node
 * dashboard) would use it: uPlot and lanes.js inlined from daemon/ui/assets.ts, a model
 * made by hand. Spans and marks are drawn where the model says, hover names them, the
 * range can be set and is clamped to the data, and a bad model is refused by name.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptText, uiAssets } from '../../daemon/ui/assets.ts';
import { SKIP_BROWSER, openBrowser, type Browser } from './chromium.ts';

interface Hit {
  layer: number;
  index: number;
  text: string;
}
declare const window: {
  chart: { range(): { min: number; max: number }; setRange(a: number, b: number): void; hitAt(x: number, y: number): Hit | null; rowBox(r: number): { top: number; height: number }; posOf(ms: number): number };
  renderError: string;
  texts: string[];
};

// Made only when the tests run: skipped, the file's afterAll does not run either, and the
// directory stayed behind.
const work = SKIP_BROWSER ? '' : mkdtempSync(join(tmpdir(), 'quorumd-lanes-'));
let browser: Browser;

const PAGE = (a: ReturnType<typeof uiAssets>) => `<!doctype html><html><head><meta charset="utf-8"><style>${a.uplotCss}</style></head><body>
<div id="chart" style="width:800px"></div>
<script>${scriptText(a.uplotJs)}</script>
<script>${scriptText(a.lanesJs)}</script>
<script>
var spans = [[0, 0, 1000, 'follower'], [0, 1000, 3000, 'leader'], [1, 0, 3000, 'follower']];
window.chart = QuorumdLanes.render(document.getElementById('chart'), {
  xMin: 0, xMax: 4000, initial: null,
  rows: [{ label: 'n1', height: 30 }, { label: 'n2', height: 30 }],
  layers: [
    { kind: 'spans', n: spans.length, row: function (i) { return spans[i][0]; }, from: function (i) { return spans[i][1]; },
      to: function (i) { return spans[i][2]; }, color: function (i) { return spans[i][3] === 'leader' ? '#00aa00' : '#0000ff'; },
      text: function (i) { return 'n' + (spans[i][0] + 1) + ' ' + spans[i][3]; } },
    { kind: 'marks', shape: 'line', n: 1, row: function () { return -1; }, at: function () { return 3500; },
      color: function () { return '#ff0000'; }, text: function () { return 'election'; } },
  ],
});
try { QuorumdLanes.render(document.body, { rows: 'no' }); } catch (e) { window.renderError = e.message; }
</script></body></html>`;

/**
 * Labels: a span's label given as a list (the first that fits is drawn), and mark labels
 * of one row close together (only the later one is drawn). Every text the canvas draws
 * is kept in window.texts.
 */
const LABELS_PAGE = (a: ReturnType<typeof uiAssets>) => `<!doctype html><html><head><meta charset="utf-8"><style>${a.uplotCss}</style></head><body>
<div id="chart" style="width:800px"></div>
<script>${scriptText(a.uplotJs)}</script>
<script>${scriptText(a.lanesJs)}</script>
<script>
window.texts = [];
var fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (t) { window.texts.push(String(t)); return fillText.apply(this, arguments); };
var spans = [[0, 0, 2000, ['a long label for a wide span', 'short']], [1, 0, 300, ['a long label that cannot fit here', 'mid']]];
var marks = [[0, 2500, 'first-label'], [0, 2510, 'second'], [0, 3500, 'far']];
window.chart = QuorumdLanes.render(document.getElementById('chart'), {
  xMin: 0, xMax: 4000, initial: null,
  rows: [{ label: 'n1', height: 30 }, { label: 'n2', height: 30 }],
  layers: [
    { kind: 'spans', n: spans.length, row: function (i) { return spans[i][0]; }, from: function (i) { return spans[i][1]; },
      to: function (i) { return spans[i][2]; }, color: function () { return '#0000ff'; }, label: function (i) { return spans[i][3]; },
      text: function (i) { return 'span ' + i; } },
    { kind: 'marks', shape: 'tick', n: marks.length, top: 0.6, bottom: 1, row: function (i) { return marks[i][0]; }, at: function (i) { return marks[i][1]; },
      color: function () { return '#333333'; }, label: function (i) { return marks[i][2]; }, text: function (i) { return marks[i][2]; } },
  ],
});
</script></body></html>`;

beforeAll(async () => {
  if (SKIP_BROWSER) return;
  writeFileSync(join(work, 'lanes.html'), PAGE(uiAssets()));
  writeFileSync(join(work, 'labels.html'), LABELS_PAGE(uiAssets()));
  browser = await openBrowser({ width: 900, height: 300 });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(SKIP_BROWSER)('lanes renderer in Chromium', () => {
  it('draws and names spans and marks of a hand-made model; clamps the range; refuses a bad model', async () => {
    const { page, errors, external } = browser;
    await page.goto(pathToFileURL(join(work, 'lanes.html')).href);
    await page.waitForFunction(() => window.chart !== undefined);
    const hit = (ms: number, row: number) =>
      page.evaluate(([ms, row]) => {
        const b = window.chart.rowBox(row!);
        return window.chart.hitAt(window.chart.posOf(ms!), b.top + b.height / 2);
      }, [ms, row]);
    expect((await hit(500, 0))?.text).toBe('n1 follower');
    expect((await hit(2000, 0))?.text).toBe('n1 leader');
    expect((await hit(2000, 1))?.text).toBe('n2 follower');
    expect(await hit(3200, 1)).toBeNull(); // nothing there
    expect((await hit(3500, 1))?.text).toBe('election'); // a mark across every row
    // The tooltip follows the mouse.
    const plot = (await page.locator('[data-testid=plot]').boundingBox())!;
    const p = await page.evaluate(() => ({ x: window.chart.posOf(2000), y: window.chart.rowBox(0).top + 15 }));
    await page.mouse.move(plot.x + p.x, plot.y + p.y);
    await expect(page.locator('[data-testid=tooltip]').innerText()).resolves.toBe('n1 leader');
    // setRange is clamped to the data.
    await page.evaluate(() => window.chart.setRange(-1000, 1000));
    expect(await page.evaluate(() => window.chart.range())).toEqual({ min: 0, max: 2000 });
    await page.evaluate(() => window.chart.setRange(-5000, 50000));
    expect(await page.evaluate(() => window.chart.range())).toEqual({ min: 0, max: 4000 });
    expect(await page.evaluate(() => window.renderError)).toMatch(/QuorumdLanes\.render: expected a model \{ xMin, xMax, rows, layers \}/);
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 120_000);

  it('labels: the first of a span\'s labels that fits is drawn; of two mark labels that would overlap in a row, the later one', async () => {
    const { page, errors, external } = browser;
    await page.goto(pathToFileURL(join(work, 'labels.html')).href);
    await page.waitForFunction(() => window.chart !== undefined && window.texts.includes('far'), undefined, { timeout: 30_000 });
    const texts = await page.evaluate(() => window.texts);
    expect(texts).toContain('a long label for a wide span'); // fits: the first one
    expect(texts).not.toContain('short');
    expect(texts).toContain('mid'); // the long one does not fit in ~50 px
    expect(texts.some((t) => t.includes('cannot fit'))).toBe(false);
    expect(texts).toContain('second');
    expect(texts).toContain('far');
    expect(texts).not.toContain('first-label'); // 10 ms (~2 px) before "second": it would run into it
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 60_000);
});
