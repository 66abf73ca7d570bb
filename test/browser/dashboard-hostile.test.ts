/**
 * The node dashboard (GET /ui) in headless Chromium with hostile data in the cluster:
 * whoever holds a write token chooses the keys, values, lock names and lock holders an
 * operator's dashboard shows. Against the HTTP server with an in-process backend (no
 * cluster: this is about the page, and it is light on a loaded machine):
 *
 *   - markup and script in keys, values, lock names and holders stay text: nothing of
 *     them runs, loads or adds an element (and the page reaches nothing but its node);
 *   - a right-to-left override or a zero-width space in a name is shown as a marked
 *     code, so "backup" and "backup" + U+200B are two different rows on screen;
 *   - the page asks for a bounded list of locks (thousands of locks would be megabytes
 *     per poll) and says that there are more;
 *   - the log of a watched key keeps its last 50 changes, each cut to 2,000
 *     characters, however often the key is written.
 * The page against a real `quorumd dev` cluster: test/browser/dashboard.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../daemon/http/server.ts';
import { FakeBackend } from '../daemon/http/fake-backend.ts';
import { testToken } from '../helpers/auth.ts';
import { SKIP_BROWSER, openBrowser, type Browser } from './chromium.ts';

declare const window: { __pwned?: number };
interface El { getAttribute(n: string): string | null; length?: number }
declare const document: { scripts: Iterable<El>; body: { querySelectorAll(s: string): ArrayLike<El> }; querySelectorAll(s: string): Iterable<El> };

const PAYLOADS = [
  '<script>window.__pwned=(window.__pwned||0)+1</script>',
  '"><img src=x onerror="window.__pwned=(window.__pwned||0)+1">',
  '</script><script>window.__pwned=(window.__pwned||0)+1</script>',
  'javascript:window.__pwned=(window.__pwned||0)+1',
  '<svg onload="window.__pwned=(window.__pwned||0)+1">',
  '<iframe src="http://evil.example/"></iframe>',
  '<a href="http://evil.example/x">click</a><link rel=stylesheet href="http://evil.example/c.css">',
  '<img src="http://evil.example/pixel.gif">',
];

let srv: ApiServer;
let b: FakeBackend;
let browser: Browser;
let origin = '';
let leaseN = 0;

const put = (k: string, v: string) => new Promise<number>((r) => b.put(k, new TextEncoder().encode(v), {}, (x) => r(x.index ?? 0)));
const lock = (name: string, owner: string) => new Promise<void>((r) => b.lockAcquire(name, owner, 3_600_000, `lease${String(leaseN++).padStart(17, '0')}`, () => r()));

async function waitFor<T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  if (SKIP_BROWSER) return;
  b = new FakeBackend();
  srv = await startApiServer(b, { port: 0, backstopMs: 300, token: testToken() });
  origin = `http://127.0.0.1:${srv.address().port}`;
  for (const [i, p] of PAYLOADS.entries()) {
    await put(`x${i}/${p}`, `${p}\n${p}`);
    await lock(`l${i}/${p}`, p);
  }
  await put('report\u202Etxt.exe', 'a key whose end reads backwards');
  await lock('backup', 'nightly');
  await lock('backup\u200B', 'intruder');
  for (let i = 0; i < 250; i++) await lock(`zbulk/${String(i).padStart(4, '0')}`, `owner-${i}`);
  await put('watched', 'v0');
  browser = await openBrowser({ width: 1300, height: 1000 }, { allowOrigins: [origin] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await srv?.close();
}, 60_000);

describe.skipIf(SKIP_BROWSER)('the dashboard with hostile keys, values and locks', () => {
  it('shows them as text: nothing runs or loads, marked codes for invisible and bidi characters, a bounded lock list, a bounded watch log', async () => {
    const page = browser.page;
    await page.goto(`${origin}/ui`);
    await page.fill('[data-testid=token]', testToken());
    await page.click('[data-testid=login-submit]');
    await waitFor('the keys', async () => (await page.locator('#keys tr[data-key]').count()) >= PAYLOADS.length + 2);
    await waitFor('the locks', async () => (await page.locator('#locks tr[data-lock]').count()) > 0);

    // Every payload is in the page as text, verbatim.
    const keyTexts = await page.$$eval('#keys tr[data-key] td:first-child', (tds) => tds.map((t) => t.textContent));
    for (const [i, p] of PAYLOADS.entries()) expect(keyTexts).toContain(`x${i}/${p}`);
    const lockCells = await page.$$eval('#locks tr[data-lock] td', (tds) => tds.map((t) => t.textContent));
    for (const [i, p] of PAYLOADS.entries()) {
      expect(lockCells).toContain(`l${i}/${p}`);
      expect(lockCells).toContain(p);
    }
    // Open each hostile key's value.
    for (const [i, p] of PAYLOADS.entries()) {
      await page.locator('#keys tr[data-key]').filter({ hasText: `x${i}/` }).first().click();
      await waitFor(`the value of key x${i}`, async () => (await page.locator('#kv-text').textContent()) === `${p}\n${p}`);
    }

    // 1. Nothing of it ran, loaded or became an element.
    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(browser.external).toEqual([]);
    // (The in-process backend has no jobs: /v1/jobs answers 501, which Chromium logs.)
    const pageErrors = () => browser.errors.filter((e) => !/status of 501/.test(e));
    expect(pageErrors()).toEqual([]);
    const elements = await page.evaluate(() => ({
      scripts: [...document.scripts].map((s) => s.getAttribute('src')),
      foreign: document.body.querySelectorAll('img, iframe, svg, a, link, object, embed, style:not(#ql-css)').length,
      links: [...document.querySelectorAll('link')].map((l) => `${l.getAttribute('rel')} ${l.getAttribute('href')}`),
    }));
    expect(elements.scripts).toEqual(['/ui/uplot.js', '/ui/lanes.js', '/ui/text.js', '/ui/dashboard.js']);
    expect(elements.foreign).toBe(0);
    expect(elements.links).toEqual(['icon data:,', 'stylesheet /ui/uplot.css', 'stylesheet /ui/dashboard.css']);

    // 2. Invisible and direction-changing characters are shown as marked codes.
    const rlo = page.locator('#keys tr[data-key]').filter({ hasText: 'report' });
    expect(await rlo.locator('.qt-mark').allTextContents()).toEqual(['U+202E']);
    expect(await rlo.locator('td').first().innerText()).toBe('reportU+202Etxt.exe');
    const backupRows = await page.$$eval('#locks tr[data-lock]', (trs) =>
      trs.filter((t) => (t.getAttribute('data-lock') ?? '').startsWith('backup')).map((t) => ({ name: t.getAttribute('data-lock'), shown: (t.children[0] as unknown as { innerText: string }).innerText, marks: t.querySelectorAll('.qt-mark').length })),
    );
    expect(backupRows).toEqual([
      { name: 'backup', shown: 'backup', marks: 0 },
      { name: 'backup\u200B', shown: 'backupU+200B', marks: 1 },
    ]);
    // Clicking a marked key still reads the key itself (the attribute holds it, not the shown text).
    await rlo.click();
    await waitFor('the value of the RTL key', async () => (await page.locator('#kv-text').textContent()) === 'a key whose end reads backwards');

    // 3. Locks: the first 200 by name, and a line saying there are more.
    const lockRows = await page.locator('#locks tr[data-lock]').count();
    expect(lockRows).toBe(200);
    expect(await page.locator('#locks').innerText()).toMatch(/the first 200 locks are shown; more: narrow the prefix/);
    await page.fill('[data-testid=lock-prefix]', 'zbulk/02');
    await page.press('[data-testid=lock-prefix]', 'Enter');
    await waitFor('the locks under zbulk/02', async () => (await page.locator('#locks tr[data-lock]').count()) === 50);
    expect(await page.locator('#locks').innerText()).not.toMatch(/more/);

    // 4. The watch log keeps the last 50 changes, each cut to 2,000 characters.
    await page.locator('#keys tr[data-key="watched"]').click();
    // Ticking the box reads the key again, then starts the watch from that read's index: a
    // change made before the watch's request left is shown as the value, not logged. So
    // the first change waits until that request is sent (it failed so in a full run: the
    // value v0, shown since the click, satisfied the wait before the re-read had returned).
    const watching = page.waitForRequest((r) => r.url().includes('/v1/kv/watched?watch='), { timeout: 30_000 });
    await page.check('[data-testid=kv-watch]');
    await watching;
    await waitFor('the watched value', async () => (await page.locator('#kv-text').textContent()) === 'v0');
    const big = 'W'.repeat(5000);
    let last = 0;
    for (let i = 1; i <= 70; i++) {
      last = await put('watched', `${i}:${big}`);
      // One change at a time, so that each is one entry of the log (a watch returns the newest value).
      await waitFor(`change ${i} in the log`, async () => (await page.locator('#kv-log li').first().textContent())?.includes(`index ${last}: ${i}:`));
    }
    const log = await page.$$eval('#kv-log li', (lis) => lis.map((l) => l.textContent ?? ''));
    expect(log).toHaveLength(50);
    expect(log[0]).toContain(`index ${last}: 70:`);
    expect(log[49]).toContain(': 21:');
    for (const l of log) {
      expect(l.length).toBeLessThan(2100);
      expect(l).toMatch(/… \(5003 characters in all\)$/);
    }
    expect(pageErrors()).toEqual([]);
  }, 180_000);
});
