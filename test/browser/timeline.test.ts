/**
 * The simulation timeline in a real browser (headless Chromium, test/browser/chromium.ts),
 * offline: the page of one failing planted-bug seed (a disk that lies about fsync), one
 * clean Raft seed with every fault kind, one bully seed with fences, and one --locks seed
 * whose lock clock has the old rule planted (a lock-mutual-exclusion violation).
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
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
declare const window: { devicePixelRatio: number; quorumdTimeline: { chart: Chart; rows: Array<{ label: string }>; laneRow: Record<string, number>; clientRow0: number; lockRow0: number } };
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
const pages: Record<'failing' | 'clean' | 'bully' | 'locks' | 'paxos' | 'zab' | 'pbft', Made> = {} as never;
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
  const locksCfg = parseSimOptions({ seed: 8, nodes: 3, time: '12s', faults: 'crash,partition,stall', locks: true, processClocks: true });
  const locks = recordSeed(locksCfg, 8, { runtime: { plantedLockClock: 'clamped-offset' }, skipLin: true });
  expect(locks.result.violation?.invariant).toBe('lock-mutual-exclusion');
  pages.locks = make('locks', locks.data);
  for (const [engine, o] of [
    ['paxos', { seed: 4, nodes: 5, time: '30s', faults: 'crash,power,partition' }],
    ['zab', { seed: 1, nodes: 5, observers: 2, time: '60s', faults: ALL }],
    ['pbft', { seed: 1, nodes: 5, time: '60s', faults: `byzantine,${ALL}` }],
  ] as const) {
    const cfg = parseSimOptions({ ...o, engine });
    const r = recordSeed(cfg, cfg.seeds[0]!);
    expect(r.result.violation).toBeUndefined();
    pages[engine] = make(engine, r.data);
  }
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
function layout(page: Page): Promise<{ labels: string[]; laneRow: Record<string, number>; clientRow0: number; lockRow0: number }> {
  return page.evaluate(() => {
    const t = window.quorumdTimeline;
    return { labels: t.rows.map((r) => r.label), laneRow: t.laneRow, clientRow0: t.clientRow0, lockRow0: t.lockRow0 };
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

  it('--locks: lock requests on the lock clients\' rows coloured by outcome, grants with their token, what each client counts on holding, and the holds in a lock violation marked', async () => {
    const { page, external, errors } = browser;
    const { data } = pages.locks;
    const L = data.locks!;
    await load(page, pages.locks);
    await expect(page.locator('[data-testid=violation]').innerText()).resolves.toContain('VIOLATION lock-mutual-exclusion');
    const lay = await layout(page);
    expect(lay.labels).toEqual(expect.arrayContaining(['client 4', 'lock client 1', 'lock client 2', 'lock client 3']));
    expect(lay.lockRow0).toBe(lay.labels.indexOf('lock client 1'));
    const lockRow = (client: number) => lay.lockRow0 + client - 1;
    const zoom = (a: number, b: number) => page.evaluate(([x, y]) => window.quorumdTimeline.chart.setRange(x!, y!), [a, b]);

    // A granted acquire: its bar in the legend's colour, its hover names the request, the outcome and the token.
    let g = -1;
    for (let i = 0; i < L.cols.length; i += 10) if (L.outcomes[L.cols[i + 6]!] === 'granted') { g = i; break; }
    expect(g).toBeGreaterThanOrEqual(0);
    const [call, ret] = [L.cols[g]! / 1000, L.cols[g + 1]! / 1000];
    await zoom(call - (ret - call), ret + (ret - call));
    const bar = await at(page, (call + ret) / 2, lockRow(L.cols[g + 2]!), 0.15);
    expect(bar.rgb).toEqual(await legendColor(page, 'granted'));
    const barTip = await hover(page, bar.x, bar.y);
    expect(barTip).toMatch(new RegExp(`^lock client ${L.cols[g + 2]}: acquire ${L.names[L.cols[g + 5]!]} \\(ttl [\\d.]+ s\\) via n${L.cols[g + 3]}\n`));
    expect(barTip).toContain('granted (200, with its fencing token)');
    expect(barTip).toContain(`fencing token ${L.cols[g + 7]}`);
    await shot(page, 'locks-granted-bar');

    // A refused acquire (409 held), where there is one wide enough to aim at.
    let h = -1;
    for (let i = 0; i < L.cols.length; i += 10) if (L.outcomes[L.cols[i + 6]!] === 'held' && L.cols[i + 1]! - L.cols[i]! > 5000) { h = i; break; }
    if (h >= 0) {
      const [c2, r2] = [L.cols[h]! / 1000, L.cols[h + 1]! / 1000];
      await zoom(c2 - (r2 - c2), r2 + (r2 - c2));
      const p = await at(page, (c2 + r2) / 2, lockRow(L.cols[h + 2]!), 0.15);
      expect(p.rgb).toEqual(await legendColor(page, 'held'));
      expect(await hover(page, p.x, p.y)).toContain('held by another client (409)');
    }

    // Holds: a band under the bars, in the lock's colour; the two in the violation in its colour, saying so.
    let plain = -1;
    const inViolation: number[] = [];
    for (let i = 0; i < L.spans.length; i += 3) {
      const k = L.spans[i + 2]! * 7;
      if (L.holds[k + 6] === 1) inViolation.push(i);
      else if (plain < 0 && Math.min(data.end, L.spans[i + 1]!) - L.spans[i]! > 200_000) plain = i;
    }
    expect(plain).toBeGreaterThanOrEqual(0);
    expect(inViolation.length).toBeGreaterThanOrEqual(2);
    // The grant that broke the check is answered at the violation, where the run stops: only the hold it overlapped is wide enough to aim at.
    const drawn = inViolation.filter((i) => Math.min(data.end, L.spans[i + 1]!) - L.spans[i]! > 50_000);
    expect(drawn.length).toBeGreaterThanOrEqual(1);
    // A hold may run on past the end of the run (the client still counted on it then): aim within the run.
    const endMs = data.end / 1000;
    const holdAt = async (i: number) => {
      const [from, to] = [L.spans[i]! / 1000, Math.min(endMs, L.spans[i + 1]! / 1000)];
      await zoom(from - 100, to + 100);
      // Away from the violation line and the lock's label, within the band.
      const k = L.spans[i + 2]! * 7;
      return at(page, from + (to - from) * 0.8, lockRow(L.holds[k + 1]!), 0.7);
    };
    const ph = await holdAt(plain);
    const pk = L.spans[plain + 2]! * 7;
    expect(ph.rgb).toEqual(await legendColor(page, `held: ${L.names[L.holds[pk + 2]!]}`));
    const holdTip = await hover(page, ph.x, ph.y);
    expect(holdTip).toMatch(new RegExp(`^lock client ${L.holds[pk + 1]} holds ${L.names[L.holds[pk + 2]!]} \\(token ${L.holds[pk + 3]}, ttl `));
    expect(holdTip).toContain('counts on it ');
    const vMs = data.violations[0]!.at / 1000;
    for (const i of drawn) {
      const k = L.spans[i + 2]! * 7;
      const [from, to] = [L.spans[i]! / 1000, Math.min(endMs, L.spans[i + 1]! / 1000)];
      // A point of the band away from the violation's red line.
      const x = vMs - from > to - vMs ? (from + Math.min(vMs, to)) / 2 : (Math.max(vMs, from) + to) / 2;
      await zoom(from - 100, to + 100);
      const p = await at(page, x, lockRow(L.holds[k + 1]!), 0.7);
      expect(p.rgb, `hold of lock client ${L.holds[k + 1]} token ${L.holds[k + 3]}`).toEqual(await legendColor(page, 'hold in the violation'));
      expect(await hover(page, p.x, p.y)).toContain("VIOLATION: this hold is one of lock-mutual-exclusion's (the red line)");
    }
    // The violation line across the lock rows too, named.
    await page.click('button[data-action="go to the violation"]');
    const vl = await at(page, vMs, lockRow(1), 0.3);
    expect(vl.rgb[0]).toBeGreaterThan(180);
    expect(vl.rgb[1]).toBeLessThan(60);
    expect(await hover(page, vl.x, vl.y)).toContain('VIOLATION: lock-mutual-exclusion');
    await shot(page, 'locks-violation');
    await expect(page.locator('#legend').innerText()).resolves.toMatch(/lock requests:[\s\S]*granted[\s\S]*locks:[\s\S]*held: (pump|valve)[\s\S]*hold in the violation/);
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
  }, 180_000);

  it('the page\'s Content-Security-Policy: its own scripts run, a script or handler that got into the file does not, nothing is fetched', async () => {
    const { page, external, errors } = browser;
    const html = readFileSync(pages.clean.file, 'utf8');
    const planted = '<script>window.__pwned=1</script><img src="x.png" onerror="window.__pwned=2"><iframe src="javascript:parent.__pwned=3"></iframe><a id="jsurl" href="javascript:window.__pwned=4">x</a>';
    const file = join(work, 'planted.html');
    writeFileSync(file, html.replace('<div id="legend">', `${planted}<div id="legend">`));
    const before = errors.length;
    await load(page, { file, data: pages.clean.data });
    await page.click('#jsurl');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    // Chromium says what it refused (console errors of the page), and nothing left the machine.
    const refused = errors.splice(before);
    expect(refused.join('\n')).toMatch(/Content Security Policy/);
    expect(external).toEqual([]);
    // The page itself drew its chart.
    expect(await page.evaluate(() => window.quorumdTimeline.rows.length)).toBeGreaterThan(3);
  }, 60_000);

  /** Every text the chart's canvas drew on a full redraw: [text, left x, y, width] (canvas px). */
  function drawnTexts(page: Page): Promise<Array<[string, number, number, number]>> {
    return page.evaluate(async () => {
      type Ctx = { fillText(t: string, x: number, y: number): void; measureText(t: string): { width: number }; textAlign: string };
      const proto = (globalThis as unknown as { CanvasRenderingContext2D: { prototype: Ctx } }).CanvasRenderingContext2D.prototype;
      const orig = proto.fillText;
      const out: Array<[string, number, number, number]> = [];
      proto.fillText = function (this: Ctx, t: string, x: number, y: number) {
        const w = this.measureText(t).width;
        // Where the text starts: the axes' labels are drawn right-aligned or centred on x.
        const left = this.textAlign === 'right' || this.textAlign === 'end' ? x - w : this.textAlign === 'center' ? x - w / 2 : x;
        out.push([t, left, y, w]);
        orig.call(this, t, x, y);
      };
      const frame = () => new Promise<void>((res) => (globalThis as unknown as { requestAnimationFrame(f: () => void): void }).requestAnimationFrame(() => res()));
      try {
        // The chart redraws on the next frame after a range change: move it by a hair and wait.
        const c = window.quorumdTimeline.chart;
        const r = c.range();
        c.setRange(r.min, r.max + 1e-3);
        await frame();
        await frame();
      } finally {
        proto.fillText = orig;
      }
      return out;
    });
  }

  /** No two texts drawn on one line of the canvas overlap (labels of spans, ticks, marks, axis). */
  function expectNoOverlap(texts: Array<[string, number, number, number]>, what: string): void {
    const byLine = new Map<number, Array<[string, number, number]>>();
    for (const [t, x, y, w] of texts) {
      const k = Math.round(y);
      if (!byLine.has(k)) byLine.set(k, []);
      byLine.get(k)!.push([t, x, x + w]);
    }
    for (const items of byLine.values()) {
      items.sort((a, b) => a[1] - b[1]);
      for (let i = 1; i < items.length; i++) expect(items[i]![1], `${what}: "${items[i - 1]![0]}" and "${items[i]![0]}" overlap`).toBeGreaterThanOrEqual(items[i - 1]![2]);
    }
  }

  for (const [engine, round, state, label] of [
    ['paxos', 'ballot (round.node)', 'prepare', null],
    ['zab', 'epoch', 'looking', 'n6 (observer)'],
    ['pbft', 'view', 'view-change', '(byzantine)'],
  ] as const) {
    it(`--engine ${engine}: its roles and its ${round.split(' ')[0]} on the lanes, named in the legend; hovering a tick and an active span says what they are; no labels over each other`, async () => {
      const { page, external, errors } = browser;
      const m = pages[engine];
      const d = m.data;
      await load(page, m);
      const legend = await page.locator('#legend').innerText();
      expect(legend).toContain(`ticks: ${round}`);
      expect(legend).toContain(state);
      const lay = await layout(page);
      if (label) expect(lay.labels.some((l) => l.endsWith(label)), lay.labels.join(', ')).toBe(true);
      await shot(page, engine);
      expectNoOverlap(await drawnTexts(page), `${engine}, whole run`);

      // The last round change of the first lane that has one after boot: its tick, hovered.
      const li = d.terms.findIndex((t) => t.length >= 4);
      expect(li).toBeGreaterThanOrEqual(0);
      const t = d.terms[li]!;
      const [tUs, v] = [t[t.length - 2]!, t[t.length - 1]!];
      const shown = engine === 'paxos' ? `${Math.floor(v / 256)}.${v % 256}` : String(v);
      const row = lay.laneRow[String(d.lanes[li]!.id)]!;
      await page.evaluate(([a, b]) => window.quorumdTimeline.chart.setRange(a!, b!), [tUs / 1000 - 300, tUs / 1000 + 300]);
      const tick = await at(page, tUs / 1000, row, 0.91);
      const tip = await hover(page, tick.x, tick.y);
      expect(tip).toContain(`n${d.lanes[li]!.id}: ${round.split(' ')[0]} ${shown}`);

      // An active span: drawn in the legend's colour, its hover names the token it acts with.
      let found: { lane: number; from: number; to: number } | null = null;
      d.lanes.forEach((_l, i) => {
        for (const s of visibleSpans(d, i, 0, d.end / 1000)) if (s.state === 'active' && s.to - s.from > 500 && found === null) found = { lane: i, from: s.from, to: s.to };
      });
      expect(found).not.toBeNull();
      const a = found! as { lane: number; from: number; to: number };
      await page.evaluate(([x, y]) => window.quorumdTimeline.chart.setRange(x!, y!), [a.from - 200, a.from + 1000]);
      expectNoOverlap(await drawnTexts(page), `${engine}, zoomed`);
      const p = await at(page, a.from + 400, lay.laneRow[String(d.lanes[a.lane]!.id)]!, 0.59);
      expect(p.rgb).toEqual(await legendColor(page, 'active'));
      const activeTip = await hover(page, p.x, p.y);
      expect(activeTip).toMatch(/fencing token \d+/);
      expect(activeTip).toContain(`${round.split(' ')[0]} `);
      expect(errors).toEqual([]);
      expect(external).toEqual([]);
    }, 120_000);
  }
});
