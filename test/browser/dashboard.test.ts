/**
 * The node dashboard (GET /ui) in headless Chromium against a real `quorumd dev`
 * cluster of 3 node processes, started through the CLI as a user would
 * (`node bin/quorumd.js dev`): sign in with the cluster's token (a wrong one is
 * refused), the members, links, keys, locks and jobs are there, the lanes answer
 * hover and click, a watched key shows a change as it is applied, the commit latency
 * chart gets points from /metrics — then the leader's process is killed (SIGKILL) and
 * the page must show it: the old leader's lane stops being "leader", another member's
 * lane becomes leader, a term line is drawn, and the fence of the old leader appears
 * in the fence history.
 *
 * The page may reach its own node only: every other request is aborted and recorded.
 * Screenshots go to $QUORUMD_SCREENSHOT_DIR when set (kept), else to a temp folder.
 * Waits are bounded polls (a busy machine elects slower, never differently).
 */
import type { ChildProcess } from 'node:child_process';
import { spawnTied } from '../helpers/tied.ts';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { call } from '../../daemon/client/http.ts';
import { SKIP_BROWSER, openBrowser, type Browser } from './chromium.ts';
import { freeBasePort } from '../helpers/ports.ts';

interface Span { row: number; member: string; state: string; term: number | null; from: number; to: number | null }
interface Mark { row: number; at: number; kind: string; text: string }
interface Hit { text: string }
declare const window: {
  quorumdDashboard: {
    t0: number;
    state: { spans: Span[]; marks: Mark[]; members: Array<{ id: string }>; metrics: Array<[number, number | null, number | null, number | null]>; polls: number };
    chart: { posOf(ms: number): number; rowBox(r: number): { top: number; height: number }; hitAt(x: number, y: number): Hit | null; renderedAt: number } | null;
    renderLanes(force: boolean): void;
  };
};

const bin = join(import.meta.dirname, '..', '..', 'bin', 'quorumd.js');
const keepShots = process.env.QUORUMD_SCREENSHOT_DIR;
// Made only when the tests run: skipped, the file's afterAll does not run either, and the
// directory stayed behind.
const work = SKIP_BROWSER ? '' : mkdtempSync(join(tmpdir(), 'quorumd-dashboard-'));
const shots = keepShots ?? join(work, 'shots');
if (!SKIP_BROWSER) mkdirSync(shots, { recursive: true });

let dev: ChildProcess | undefined;
let printed = '';
let browser: Browser;
let token = '';
const pids = new Map<string, number>();
let leader = '';
let base = 0;
const url = (k: number) => `http://127.0.0.1:${base + k}`;

async function waitFor<T>(what: string, f: () => Promise<T | undefined | false>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** `quorumd dev` as a child process; resolves once its guide is printed (a leader is stable). */
async function startDevCli(): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    base = await freeBasePort(3);
    printed = '';
    const child = spawnTied(process.execPath, [bin, 'dev', '--nodes', '3', '--base-port', String(base), '--data-dir', join(work, 'dev')], { stdio: ['ignore', 'pipe', 'pipe'] });
    dev = child;
    child.stdout!.on('data', (c: Buffer) => (printed += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (printed += c.toString()));
    const ok = await waitFor('the dev guide', async () => (/Ctrl-C stops everything/.test(printed) ? true : child.exitCode !== null ? 'exited' : undefined), 120_000);
    if (ok === true) return;
    if (!/is in use/.test(printed)) throw new Error(`quorumd dev exited: ${printed}`);
  }
  throw new Error('no free base port found for quorumd dev');
}

beforeAll(async () => {
  if (SKIP_BROWSER) return;
  await startDevCli();
  leader = /leader (n\d)/.exec(printed)![1]!;
  for (const m of printed.matchAll(/^\s+(n\d)\s+http:\S+\s+pid (\d+)/gm)) pids.set(m[1]!, Number(m[2]));
  expect(pids.size).toBe(3);
  token = readFileSync(join(work, 'dev', 'api.token'), 'utf8').trim();
  browser = await openBrowser({ width: 1300, height: 1000 }, { allowOrigins: [1, 2, 3].map(url) });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  if (dev && dev.exitCode === null) {
    const exited = new Promise((r) => dev!.once('exit', r));
    dev.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (dev.exitCode === null) dev.kill('SIGKILL');
  }
  for (const pid of pids.values()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone, as it should be */
    }
  }
  if (keepShots) console.log(`dashboard screenshots in ${keepShots}`);
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

async function shot(page: Page, name: string): Promise<void> {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  expect(statSync(path).size).toBeGreaterThan(10_000);
}

/** The tooltip after moving the real mouse onto member row `row` at time `atMs` (page clock). */
async function hover(page: Page, row: number, atMs: 'open' | 'closed-leader'): Promise<string> {
  return waitFor(`a tooltip on lane ${row}`, async () => {
    await page.evaluate(() => window.quorumdDashboard.renderLanes(true));
    const p = await page.evaluate(([row, which]) => {
      const d = window.quorumdDashboard;
      const c = d.chart!;
      const spans = d.state.spans.filter((s) => s.row === row && (which === 'open' ? s.to === null : s.state === 'leader' && s.to !== null));
      const sp = spans[spans.length - 1];
      if (!sp) return null;
      // A point inside the span that no mark claims (a mark takes the hover within 5 px:
      // the term mark sits where a new leader's span begins). Until the span is wide
      // enough for one, none: the caller polls while the open span grows.
      const x0 = c.posOf(sp.from - d.t0);
      const x1 = c.posOf(Math.min(sp.to ?? c.renderedAt, c.renderedAt) - d.t0);
      const markXs = d.state.marks.filter((m) => m.row === -1 || m.row === row).map((m) => c.posOf(m.at - d.t0));
      const free = (x: number) => markXs.every((mx) => Math.abs(mx - x) > 8);
      let x: number | undefined = free((x0 + x1) / 2) ? (x0 + x1) / 2 : undefined;
      for (let cand = x1 - 3; x === undefined && cand > x0 + 3; cand -= 2) if (free(cand)) x = cand;
      if (x === undefined) return null;
      const b = c.rowBox(row as number);
      return { x, y: b.top + b.height / 2 };
    }, [row, atMs] as const);
    if (!p) return undefined;
    const plot = (await page.locator('[data-testid=lanes] [data-testid=plot]').boundingBox())!;
    await page.mouse.move(plot.x + p.x, plot.y + p.y);
    const tip = page.locator('[data-testid=lanes] [data-testid=tooltip]');
    if (!(await tip.isVisible())) return undefined;
    return tip.innerText();
  }, 20_000);
}

describe.skipIf(SKIP_BROWSER)('node dashboard in Chromium against quorumd dev', () => {
  it('shows the cluster, answers hover and click, watches a key, and sees a leader kill', async () => {
    const { page, errors, external } = browser;
    // A follower's dashboard: it must outlive the leader's kill.
    const k = [1, 2, 3].find((i) => `n${i}` !== leader)!;
    const self = `n${k}`;

    // 1. Sign in: the page holds no data until a token the node accepts is given.
    await page.goto(`${url(k)}/ui`);
    await expect(page.locator('[data-testid=login]').isVisible()).resolves.toBe(true);
    await expect(page.locator('[data-testid=app]').isVisible()).resolves.toBe(false);
    await shot(page, 'dashboard-0-login');
    await page.fill('[data-testid=token]', 'not-the-token-0123456789');
    await page.click('[data-testid=login-submit]');
    await waitFor('the refusal', async () => /refused/.test(await page.locator('[data-testid=login-error]').innerText()), 15_000);
    await page.fill('[data-testid=token]', token);
    await page.click('[data-testid=login-submit]');
    await page.waitForSelector('[data-testid=app]:not([hidden])', { timeout: 15_000 });

    // 2. Members: one row each, the leader named where the dev guide said.
    await waitFor('3 member rows', async () => (await page.locator('[data-testid=members] tr[data-member]').count()) === 3, 15_000);
    await waitFor(`${leader} shown as leader`, async () => /leader/.test(await page.locator(`[data-testid=members] tr[data-member=${leader}]`).innerText()), 15_000);
    expect(await page.locator(`[data-testid=members] tr[data-member=${self}]`).innerText()).toMatch(/this node[\s\S]*follower/);
    expect(await page.locator('[data-testid=sum-leader]').innerText()).toContain(leader);
    expect(await page.locator('[data-testid=links]').innerText()).toMatch(/mqtt\s+up/);

    // 3. Data through this node: a key (then watched), a lock, and the demo job.
    const put = (v: string) => call(url(k), 'PUT', '/v1/kv/dash%2Fgreeting', { body: v, token });
    expect((await put('hello')).status).toBe(200);
    const lock = await call(url(k), 'POST', '/v1/locks/backup?ttl=120s&owner=nightly-job', { token });
    expect(lock.status).toBe(200);
    await page.fill('[data-testid=kv-prefix]', 'dash/');
    await page.press('[data-testid=kv-prefix]', 'Enter');
    await waitFor('the key row', async () => (await page.locator('[data-testid=keys] tr[data-key="dash/greeting"]').count()) === 1, 15_000);
    await page.click('[data-testid=keys] tr[data-key="dash/greeting"]');
    await waitFor('the value', async () => (await page.locator('[data-testid=kv-text]').innerText()) === 'hello', 15_000);
    // Checking the box re-reads the key, then asks for changes after the index it read.
    // Write only once the watch request is out: a write that lands before that re-read
    // is already in the value it shows and never reaches the change log (a race that a
    // loaded machine lost: 'timed out waiting for the watched change').
    const watching = page.waitForRequest((r) => r.url().includes('?watch='), { timeout: 20_000 });
    await page.check('[data-testid=kv-watch]');
    await watching;
    // The watch asks for changes after the index it read: a write before its request arrives is seen too.
    expect((await put('hello again')).status).toBe(200);
    await waitFor('the watched change', async () => /hello again/.test(await page.locator('[data-testid=kv-log]').innerText()), 20_000);
    expect(await page.locator('[data-testid=kv-text]').innerText()).toBe('hello again');
    await waitFor('the lock row', async () => /nightly-job/.test(await page.locator('[data-testid=locks] tr[data-lock=backup]').innerText().catch(() => '')), 15_000);
    await waitFor('the heartbeat job', async () => /heartbeat/.test(await page.locator('[data-testid=jobs] tr[data-job=heartbeat]').innerText().catch(() => '')), 15_000);
    // The chart: a commit latency point from the writes through this node.
    await waitFor('a commit latency point', () => page.evaluate(() => window.quorumdDashboard.state.metrics.some((m) => m[1] !== null && m[1] > 0)), 20_000);

    // 4. The lanes: hover names a member's state; a click puts it into the details line.
    const rowOf = async (member: string) => page.evaluate((m) => window.quorumdDashboard.state.members.findIndex((x) => x.id === m), member);
    const oldRow = await rowOf(leader);
    expect(await hover(page, oldRow, 'open')).toContain(`${leader}: leader`);
    const selfRow = await rowOf(self);
    const selfTip = await hover(page, selfRow, 'open');
    expect(selfTip).toContain(`${self}: follower`);
    await page.mouse.down();
    await page.mouse.up();
    await waitFor('the clicked details', async () => (await page.locator('[data-testid=lane-details]').innerText()).includes(`${self}: follower`), 10_000);
    await page.mouse.move(5, 5);
    await shot(page, 'dashboard-1-before-kill');

    // 5. Kill the leader's process: another member leads, the page shows it.
    process.kill(pids.get(leader)!, 'SIGKILL');
    const next = await waitFor('a new leader on the page', () => page.evaluate((old) => {
      const s = window.quorumdDashboard.state;
      const open = s.spans.filter((x) => x.to === null && x.state === 'leader' && x.member !== old);
      const oldOpen = s.spans.find((x) => x.to === null && x.member === old);
      return open.length === 1 && oldOpen && oldOpen.state !== 'leader' ? open[0]!.member : undefined;
    }, leader), 90_000);
    expect(next).not.toBe(leader);
    await waitFor(`${next} shown as leader`, async () => (await page.locator('[data-testid=sum-leader]').innerText()).includes(next), 15_000);
    expect(await hover(page, await rowOf(next), 'open')).toContain(`${next}: leader`);
    await shot(page, 'dashboard-2-hover-new-leader');
    // The old leader's lane: its leader span is closed (hover finds it), and now it is something else.
    expect(await hover(page, oldRow, 'closed-leader')).toContain(`${leader}: leader`);
    expect(await hover(page, oldRow, 'open')).not.toContain(`${leader}: leader`);
    expect(await page.evaluate(() => window.quorumdDashboard.state.marks.some((m) => m.kind === 'term'))).toBe(true);
    // The new leader fences the old one before it acts: the fence history shows it.
    await waitFor(`the fence of ${leader}`, async () => new RegExp(`${leader}[\\s\\S]*(off|already-off)`).test(await page.locator('[data-testid=fences]').innerText()), 60_000);
    await page.mouse.move(5, 5);
    await page.evaluate(() => window.quorumdDashboard.renderLanes(true));
    await shot(page, 'dashboard-3-after-kill');

    expect(external).toEqual([]);
    // The only console errors allowed: the 401 of the wrong token (the browser logs failed fetches).
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  }, 300_000);
});
