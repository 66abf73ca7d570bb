/**
 * The simulation timeline in a real browser (headless Chromium, test/browser/chromium.ts),
 * offline: the page of one failing planted-bug seed (a disk that lies about fsync), one
 * clean Raft seed with every fault kind, and one bully seed with fences.
 *
 * Checked on each: the page runs without errors and asks the network for nothing; the
 * lanes, fault bands, client bars and markers are drawn (pixels of the canvas compared
 * with the legend's colours) and hovering them shows what they are; the failing seed
 * opens on its violation; zooming works by the buttons, by dragging across the chart and
 * by the wheel, and "reset" / "violation" come back; a click keeps the description.
 *
 * Screenshots go to $QUORUMD_SCREENSHOT_DIR when set (kept), else to a temp folder that
 * is removed at the end.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { FAULT_KINDS } from '../../firmware-sim/faults.ts';
import { parseSimOptions } from '../../daemon/sim/options.ts';
import { recordSeed, timelinePage, type TimelineData } from '../../daemon/sim/timeline/index.ts';
import { lyingStorage } from '../daemon/sim/helpers.ts';
import { SKIP_BROWSER, openBrowser, type Browser } from './chromium.ts';

// page.evaluate callbacks run in the browser: just what they use of its globals
// (the project compiles without the DOM library).
interface Chart {
  range(): { min: number; max: number };
  setRange(min: number, max: number): void;
  rowBox(r: number): { top: number; height: number };
  posOf(ms: number): number;
  uplot: { bbox: { left: number; top: number }; ctx: { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } };
}
declare const window: { devicePixelRatio: number; quorumdTimeline: { chart: Chart; rows: Array<{ label: string }>; laneRow: Record<string, number>; clientRow0: number } };
declare const document: { querySelectorAll(sel: string): Iterable<{ textContent: string | null; querySelector(sel: string): unknown }> };
declare function getComputedStyle(el: unknown): { backgroundColor: string };

const ALL = FAULT_KINDS.join(',');
const keepShots = process.env.QUORUMD_SCREENSHOT_DIR;
// Made only when the tests run: skipped, the file's afterAll does not run either, and the
// directory stayed behind.
const work = SKIP_BROWSER ? '' : mkdtempSync(join(tmpdir(), 'quorumd-timeline-browser-'));
const shots = keepShots ?? join(work, 'shots');
if (!SKIP_BROWSER) mkdirSync(shots, { recursive: true });

interface Made {
  file: string;
  data: TimelineData;
}
const pages: Record<'failing' | 'clean' | 'bully', Made> = {} as never;
let browser: Browser;

function make(name: string, data: TimelineData): Made {
  const file = join(work, `${name}.html`);
  writeFileSync(file, timelinePage(data));
  return { file, data };
}

beforeAll(async () => {
  if (SKIP_BROWSER) return;
  const failCfg = parseSimOptions({ seed: 1, nodes: 3, time: '10s', faults: 'power' });
  const failing = recordSeed(failCfg, 1, { wrapStorage: lyingStorage, skipLin: true });
  expect(failing.result.violation?.invariant).toBe('durable-commit');
  pages.failing = make('failing', failing.data);
  const cleanCfg = parseSimOptions({ seed: 3, nodes: 5, time: '30s', faults: ALL });
  const clean = recordSeed(cleanCfg, 3);
  expect(clean.result.violation).toBeUndefined();
  // Two fault kinds the page has never heard of (as a kind added to the simulator later
  // would be): one on a board, one on the whole network. They must be drawn and named
  // like the others, with no change to the page.
  clean.data.faults.push(
    { kind: 'meteor', at: 21_000_000, heal: 22_500_000, planHeal: 22_500_000, node: 2, groups: null, detail: 'size=big' },
    { kind: 'solar-flare', at: 23_000_000, heal: 24_000_000, planHeal: 24_000_000, node: null, groups: null, detail: 'class=X' },
  );
  pages.clean = make('clean', clean.data);
  const bullyCfg = parseSimOptions({ seed: 3, nodes: 5, engine: 'bully', time: '60s', faults: ALL });
  const bully = recordSeed(bullyCfg, 3);
  expect(bully.result.violation).toBeUndefined();
  expect(bully.data.fences.length).toBeGreaterThan(0);
  pages.bully = make('bully', bully.data);
  browser = await openBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (keepShots) console.log(`timeline screenshots in ${keepShots}`);
  if (work) rmSync(work, { recursive: true, force: true });
});

async function load(page: Page, m: Made): Promise<void> {
  await page.goto(pathToFileURL(m.file).href);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
}

async function shot(page: Page, name: string): Promise<void> {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  expect(statSync(path).size).toBeGreaterThan(10_000);
}

/** The chart's visible range (ms). */
function range(page: Page): Promise<{ min: number; max: number }> {
  return page.evaluate(() => window.quorumdTimeline.chart.range());
}

/** Page coordinates of (time ms, row, fraction of the row's height), and the canvas pixel there. */
async function at(page: Page, ms: number, row: number, frac: number): Promise<{ x: number; y: number; rgb: [number, number, number] }> {
  const plot = (await page.locator('[data-testid=plot]').boundingBox())!;
  const p = await page.evaluate(
    ([ms, row, frac]) => {
      const t = window.quorumdTimeline;
      const b = t.chart.rowBox(row);
      const x = t.chart.posOf(ms);
      const y = b.top + b.height * frac;
      const u = t.chart.uplot;
      const dpr = window.devicePixelRatio;
      const d = u.ctx.getImageData(Math.round(u.bbox.left + x * dpr), Math.round(u.bbox.top + y * dpr), 1, 1).data;
      return { x, y, rgb: [d[0], d[1], d[2]] as [number, number, number] };
    },
    [ms, row, frac] as const,
  );
  return { x: plot.x + p.x, y: plot.y + p.y, rgb: p.rgb };
}

/** Moves the mouse there and returns the tooltip's text ('' when none shows). */
async function hover(page: Page, x: number, y: number): Promise<string> {
  await page.mouse.move(x, y);
  const tip = page.locator('[data-testid=tooltip]');
  if (!(await tip.isVisible())) return '';
  return tip.innerText();
}

/** The legend swatch colour of `name` as rgb. */
async function legendColor(page: Page, name: string): Promise<[number, number, number]> {
  const css = await page.evaluate((n) => {
    for (const item of document.querySelectorAll('#legend .lg-item')) {
      if (item.textContent === n) return getComputedStyle(item.querySelector('i')).backgroundColor;
    }
    return '';
  }, name);
  const m = /rgb\((\d+), (\d+), (\d+)\)/.exec(css);
  expect(m, `legend entry "${name}"`).not.toBeNull();
  return [Number(m![1]), Number(m![2]), Number(m![3])];
}

/** Row index of the lanes and clients, as the page laid them out. */
function layout(page: Page): Promise<{ labels: string[]; laneRow: Record<string, number>; clientRow0: number }> {
  return page.evaluate(() => {
    const t = window.quorumdTimeline;
    return { labels: t.rows.map((r) => r.label), laneRow: t.laneRow, clientRow0: t.clientRow0 };
  });
}

/** A lane's state spans clipped to [min, max] (ms), with the state's name. */
function visibleSpans(d: TimelineData, laneIdx: number, min: number, max: number): Array<{ from: number; to: number; state: string }> {
  const s = d.spans[laneIdx]!;
  const out = [];
  for (let i = 0; i < s.length; i += 3) {
    const from = Math.max(min, s[i]! / 1000);
    const to = Math.min(max, (i + 3 < s.length ? s[i + 3]! : d.end) / 1000);
    if (to > from) out.push({ from, to, state: d.states[s[i + 1]!]! });
  }
  return out;
}

describe.skipIf(SKIP_BROWSER)('simulation timeline in Chromium', () => {
  it('a failing planted-bug seed opens on its violation; lanes and requests are drawn and hoverable; zoom, pan and reset work', async () => {
    const { page, external, errors } = browser;
    const { data } = pages.failing;
    await load(page, pages.failing);
    const v = data.violations[0]!;
    const vMs = v.at / 1000;
    await expect(page.locator('[data-testid=violation]').innerText()).resolves.toContain('VIOLATION durable-commit');

    // Opens on the violation: a window around it, not the whole run.
    const r0 = await range(page);
    expect(r0.min).toBeLessThan(vMs);
    expect(r0.max).toBeGreaterThan(vMs);
    expect(r0.max - r0.min).toBeLessThan(data.end / 1000 - 1);

    const lay = await layout(page);
    expect(lay.labels).toEqual(expect.arrayContaining(['n1', 'n2', 'n3', 'client 1', 'client 4']));

    // The violation line is red and says what broke.
    const vx = await at(page, vMs, lay.laneRow['1']!, 0.5);
    expect(vx.rgb[0]).toBeGreaterThan(180);
    expect(vx.rgb[1]).toBeLessThan(60);
    const vTip = await hover(page, vx.x, vx.y);
    expect(vTip).toContain('VIOLATION: durable-commit');
    expect(vTip).toContain(v.detail);
    await shot(page, 'failing-violation-hover');

    // Every state span wide enough to aim at is drawn in its legend colour and hovers with its name.
    let checked = 0;
    const pxPerMs = await page.evaluate(() => {
      const c = window.quorumdTimeline.chart;
      const r = c.range();
      return (c.posOf(r.max) - c.posOf(r.min)) / (r.max - r.min);
    });
    for (const [idx, lane] of data.lanes.entries()) {
      for (const s of visibleSpans(data, idx, r0.min, r0.max)) {
        const mid = (s.from + s.to) / 2;
        if ((s.to - s.from) * pxPerMs < 10 || Math.abs(mid - vMs) * pxPerMs < 8) continue;
        // Above the span's label (drawn across its middle).
        const p = await at(page, mid, lay.laneRow[String(lane.id)]!, 0.42);
        expect(p.rgb, `n${lane.id} ${s.state} at ${mid} ms`).toEqual(await legendColor(page, s.state));
        expect(await hover(page, p.x, p.y)).toMatch(new RegExp(`^n${lane.id}: ${s.state.replace(/[()]/g, '\\$&')}`));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(6);

    // A client request bar: hover tells its operation and outcome.
    const cols = data.ops.cols;
    let k = -1;
    for (let i = 0; i < cols.length; i += 7) {
      if (cols[i]! / 1000 > r0.min && cols[i + 1]! / 1000 < r0.max && cols[i + 1]! - cols[i]! > 20_000) {
        k = i;
        break;
      }
    }
    expect(k).toBeGreaterThanOrEqual(0);
    const op = await at(page, (cols[k]! + cols[k + 1]!) / 2000, lay.clientRow0 + cols[k + 2]! - 1, 0.5);
    expect(op.rgb).toEqual(await legendColor(page, data.ops.outcomes[cols[k + 6]!]!));
    expect(await hover(page, op.x, op.y)).toMatch(new RegExp(`^client ${cols[k + 2]}: (put|get|cas) `));

    // A click keeps the description under the chart.
    await page.mouse.click(op.x, op.y);
    await expect(page.locator('[data-testid=details]').innerText()).resolves.toMatch(new RegExp(`^client ${cols[k + 2]}: `));

    // Zoom: the whole run, then the + button halves the range, a drag zooms to what it covers, the wheel zooms in.
    await page.click('button[data-action="show everything"]');
    const all = await range(page);
    expect(all.min).toBeCloseTo(0, 3);
    expect(all.max).toBeCloseTo(data.end / 1000, 3);
    await shot(page, 'failing-whole-run');
    await page.click('button[data-action="zoom in"]');
    const half = await range(page);
    expect(half.max - half.min).toBeCloseTo((all.max - all.min) / 2, 0);
    await page.click('button[data-action="show everything"]');
    const a = await at(page, 3000, lay.laneRow['1']!, 0.5);
    const b = await at(page, 5000, lay.laneRow['2']!, 0.5);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: 8 });
    await page.mouse.up();
    const dragged = await range(page);
    expect(dragged.min).toBeGreaterThan(2900);
    expect(dragged.min).toBeLessThan(3100);
    expect(dragged.max).toBeGreaterThan(4900);
    expect(dragged.max).toBeLessThan(5100);
    await shot(page, 'failing-dragged-3-5s');
    await page.mouse.move(b.x - 50, b.y);
    await page.mouse.wheel(0, -300);
    await expect.poll(async () => { const r = await range(page); return r.max - r.min; }, { timeout: 10_000 }).toBeLessThan(dragged.max - dragged.min - 1);
    // Pan: the ▶ button moves the window right by a quarter of its width.
    const before = await range(page);
    await page.click('button[data-action="pan right"]');
    const after = await range(page);
    expect(after.min - before.min).toBeCloseTo((before.max - before.min) / 4, 0);
    // Back to the violation.
    await page.click('button[data-action="go to the violation"]');
    expect(await range(page)).toEqual(r0);

    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 180_000);

  it('a clean seed with every fault kind: every fault band is drawn and hovers as that fault; no violation marker', async () => {
    const { page, external, errors } = browser;
    const { data } = pages.clean;
    await load(page, pages.clean);
    expect(await page.locator('[data-testid=violation]').count()).toBe(0);
    const r0 = await range(page);
    expect(r0.min).toBeCloseTo(0, 3);
    expect(r0.max).toBeCloseTo(data.end / 1000, 3);
    const lay = await layout(page);
    const kinds = [...new Set(data.faults.map((f) => f.kind))];
    expect(kinds.length).toBeGreaterThanOrEqual(6);
    expect(kinds).toEqual(expect.arrayContaining(['meteor', 'solar-flare']));
    await shot(page, 'clean-whole-run');
    for (const kind of kinds) {
      const f = data.faults.find((x) => x.kind === kind)!;
      const from = f.at / 1000;
      const to = (f.heal ?? f.planHeal) / 1000;
      // Zoom onto the fault so that even a short one is wide enough to aim at.
      await page.evaluate(([a, b]) => window.quorumdTimeline.chart.setRange(a!, b!), [from - 200, to + 200]);
      const row = f.node !== null ? lay.laneRow[String(f.node)]! : lay.labels.indexOf(kind);
      expect(row, `row of ${kind}`).toBeGreaterThanOrEqual(0);
      const p = await at(page, (from + to) / 2, row, f.node !== null ? 0.2 : 0.5);
      expect(p.rgb, `${kind} band colour`).toEqual(await legendColor(page, kind));
      const tip = await hover(page, p.x, p.y);
      expect(tip, kind).toMatch(/^fault: /);
      expect(tip).toContain(f.detail);
      if (kind === 'partition') {
        expect(tip).toContain('sides: {');
        // Each board's side, in the thin strip at the top of its lane.
        for (const g of f.groups!) {
          for (const n of g) {
            if (n === 'broker') continue;
            const q = await at(page, (from + to) / 2, lay.laneRow[String(n)]!, 0.08);
            expect(q.rgb, `n${n}'s side`).toEqual(await legendColor(page, g.includes('broker') ? 'side with the broker' : 'side without it'));
            expect(await hover(page, q.x, q.y)).toContain(g.includes('broker') ? ', with the broker' : ', cut off from the broker');
          }
        }
      }
    }
    await page.click('button[data-action="show everything"]');
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 180_000);

  it('--engine bully: coordinators, epochs and fences on the lanes', async () => {
    const { page, external, errors } = browser;
    const { data } = pages.bully;
    await load(page, pages.bully);
    const lay = await layout(page);
    const f = data.fences[0]!;
    const fMs = f.at / 1000;
    await page.evaluate(([a, b]) => window.quorumdTimeline.chart.setRange(a!, b!), [fMs - 3000, fMs + 3000]);
    await shot(page, 'bully-fence');
    const p = await at(page, fMs, lay.laneRow[String(f.by)]!, 0.55);
    const tip = await hover(page, p.x, p.y);
    expect(tip).toContain(`fence: n${f.by} fenced n${f.target} → ${f.outcome}`);
    await expect(page.locator('#legend').innerText()).resolves.toContain('coordinator');
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 120_000);
});
