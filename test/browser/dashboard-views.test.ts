/**
 * The node dashboard (GET /ui) in headless Chromium, against the HTTP server with a
 * scripted backend: this node's status, fences and jobs are whatever the test says,
 * changed while the page polls, so that the moments a user looks at the page — a
 * failover, a fence, a job that stopped running, a node that stopped answering, a
 * phone — are shown exactly, without a cluster (light on a loaded machine). What the
 * page shows then:
 *
 *   - a member fenced off is "fenced" (not "heard" from a message older than the fence)
 *     until it is heard again after the fence; a reboot fence's "powered-on" ends it;
 *   - under an engine without a replicated fence history (PBFT) the fences this node ran
 *     are listed, not "none";
 *   - while the node does not answer, what it said last is greyed out and the other
 *     members' lanes say "unknown", not the roles they had;
 *   - "elected, not active" without a reason ends there (no dangling colon);
 *   - under bully (no log) keys, locks and jobs are not asked for: each 501 was an
 *     error in the browser's console at every load;
 *   - a job's last slot in the future (a leader's clock was ahead) is flagged with
 *     what to do; a reset job says "none since reset";
 *   - at 390 px the page does not scroll sideways (the chart follows the window), pills
 *     and short names are not broken over lines; at 1920 px the chart is as wide.
 * The page against a real `quorumd dev` cluster: test/browser/dashboard.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startApiServer, type ApiServer } from '../../daemon/http/server.ts';
import type { LeaderView, StatusView } from '../../daemon/http/backend.ts';
import { FakeBackend } from '../daemon/http/fake-backend.ts';
import { testToken } from '../helpers/auth.ts';
import { SKIP_BROWSER, openBrowser, type Browser } from './chromium.ts';

interface Span { member: string; state: string; to: number | null }
declare const window: { quorumdDashboard: { state: { spans: Span[]; polls: number } } };
declare const document: { documentElement: { scrollWidth: number }; querySelector(s: string): { getBoundingClientRect(): { width: number; height: number } } | null };

interface Peer { id: string; state?: string; contactAt: number | null }

/** Status, leader and jobs as the test sets them; peers' last contact counted from `contactAt` (real time). */
class ScriptedBackend extends FakeBackend {
  engine = 'raft';
  self = 'n2';
  role = 'leader';
  term = 2;
  leaderId: string | null = 'n2';
  peers: Peer[] = [];
  history: Array<Record<string, unknown>> = [];
  local: Array<Record<string, unknown>> = [];
  extra: Partial<StatusView> = {};
  failing = false;
  jobList: unknown[] = [];

  override status(): StatusView {
    if (this.failing) throw new Error('scripted failure');
    const now = Date.now();
    return {
      id: this.self, engine: this.engine, role: this.role, term: this.term, leader: this.leaderId, active: true, commitIndex: 7, appliedIndex: 7,
      peers: this.peers.map((p, i) => {
        const ago = p.contactAt === null ? null : now - p.contactAt;
        return { id: p.id, nodeId: i + 1, role: 'voter', lastContactMs: ago, linkContactMs: { mqtt: ago }, ...(p.state ? { state: p.state, match: 7 } : {}) };
      }),
      links: [{ name: 'mqtt', up: true }], relays: [],
      fences: { local: this.local, history: this.history },
      ...this.extra,
    };
  }
  override leader(): LeaderView {
    return { leader: this.leaderId, term: this.term, token: 9 };
  }
  jobs(): unknown[] {
    return this.jobList;
  }
}

let srv: ApiServer;
let b: ScriptedBackend;
let browser: Browser;
let origin = '';

async function waitFor<T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const memberRole = (page: Page, id: string) => page.locator(`#members tr[data-member=${id}] td:nth-child(3)`).innerText();
const openSpan = (page: Page, id: string) => page.evaluate((m) => {
  const sp = window.quorumdDashboard.state.spans.filter((s) => s.member === m && s.to === null);
  return sp.length ? sp[sp.length - 1]!.state : null;
}, id);
/** Two polls after now: what the page shows reflects the backend as it is now. */
async function settle(page: Page): Promise<void> {
  const p0 = await page.evaluate(() => window.quorumdDashboard.state.polls);
  await waitFor('two status polls', async () => (await page.evaluate(() => window.quorumdDashboard.state.polls)) >= p0 + 2, 20_000);
}

async function signIn(page: Page): Promise<void> {
  await page.goto(`${origin}/ui`);
  // The tab keeps the token (sessionStorage): after the first time, the page starts by itself.
  await page.waitForSelector('[data-testid=app]:not([hidden]), [data-testid=login]:not([hidden])', { timeout: 15_000 });
  if (await page.locator('[data-testid=login]').isVisible()) {
    await page.fill('[data-testid=token]', testToken());
    await page.click('[data-testid=login-submit]');
  }
  await page.waitForSelector('[data-testid=app]:not([hidden])', { timeout: 15_000 });
  await waitFor('the member rows', async () => (await page.locator('#members tr[data-member]').count()) === b.peers.length + 1);
}

beforeAll(async () => {
  if (SKIP_BROWSER) return;
  b = new ScriptedBackend();
  srv = await startApiServer(b, { port: 0, backstopMs: 300, token: testToken() });
  origin = `http://127.0.0.1:${srv.address().port}`;
  browser = await openBrowser({ width: 1280, height: 900 }, { allowOrigins: [origin] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await srv?.close();
}, 60_000);

describe.skipIf(SKIP_BROWSER)('the dashboard in the moments users look at it', () => {
  it('shows a fenced member as fenced until it is heard after the fence, and lists a PBFT node\'s own fences', async () => {
    const page = browser.page;
    // n2 leads; n1 (the old leader, not replicated to) is heard, n3 replicates.
    b.peers = [{ id: 'n1', contactAt: Date.now() }, { id: 'n3', state: 'replicate', contactAt: Date.now() }];
    let n1Talks = true;
    const live = setInterval(() => {
      b.peers[1]!.contactAt = Date.now();
      if (n1Talks) b.peers[0]!.contactAt = Date.now() - 300;
    }, 100);
    try {
      await signIn(page);
      await waitFor('n1 heard', async () => (await memberRole(page, 'n1')) === 'heard');

      // n2 fences n1 (power off, verified): its last message is older than the fence.
      n1Talks = false;
      b.history = [{ index: 12, target: 'n1', by: 'n2', term: 2, outcome: 'off', level: 0, atMs: 5, reason: 'earlier leader, before n2 acts in term 2' }];
      await waitFor('the fence row', async () => /n1\s+n2\s+2\s+off/.test(await page.locator('#fences').innerText()));
      await settle(page);
      expect(await memberRole(page, 'n1')).toBe('fenced');
      expect(await openSpan(page, 'n1')).toBe('fenced');
      expect(await memberRole(page, 'n3')).toBe('follower');

      // The reboot fence switches it on again and it talks: no longer fenced.
      b.history = [...b.history, { index: 14, target: 'n1', by: 'n2', term: 2, outcome: 'powered-on', level: 0, atMs: 9, reason: 'fence action reboot: powered back on' }];
      b.peers[0] = { id: 'n1', state: 'replicate', contactAt: Date.now() };
      const revive = setInterval(() => { b.peers[0]!.contactAt = Date.now(); }, 100);
      try {
        await waitFor('n1 a follower again', async () => (await memberRole(page, 'n1')) === 'follower');
        expect(await openSpan(page, 'n1')).toBe('follower');
      } finally {
        clearInterval(revive);
      }

      // Fenced again, and a message from it arrives after the fence (switched on by hand):
      // it is back, not fenced, even without a "powered-on" record.
      b.peers[0] = { id: 'n1', contactAt: Date.now() - 2000 };
      b.history = [...b.history, { index: 20, target: 'n1', by: 'n2', term: 2, outcome: 'already-off', level: 0, atMs: 20, reason: 'again' }];
      await waitFor('n1 fenced again', async () => (await memberRole(page, 'n1')) === 'fenced');
      b.peers[0] = { id: 'n1', contactAt: Date.now() };
      await waitFor('n1 heard after the fence', async () => (await memberRole(page, 'n1')) === 'heard');
    } finally {
      clearInterval(live);
    }

    // PBFT keeps no replicated fence history: the fences this node ran are listed.
    b.engine = 'pbft';
    b.history = [];
    b.peers = [{ id: 'n1', contactAt: Date.now() - 2500 }, { id: 'n3', contactAt: Date.now() }, { id: 'n4', contactAt: Date.now() }];
    b.local = [];
    await signIn(page);
    b.local = [{ id: 1, target: 'n1', term: 125, reason: 'pbft decision at 125 by n3,n4', action: 'reboot', outcome: 'already-off', level: 1, delayMs: 167, attempts: 1, error: null, requestedAtMs: 100, finishedAtMs: 300, poweredOnAtMs: null, powerOnError: null }];
    await waitFor('the local fence row', async () => /1\s+n1\s+n2\s+125\s+already-off\s+1\s+pbft decision/.test(await page.locator('#fences').innerText()));
    expect(await page.locator('[data-testid=fence-scope]').innerText()).toMatch(/this node ran/);
    await settle(page);
    expect(await memberRole(page, 'n1')).toBe('fenced');
    // Its power-on (the same record, updated) ends it.
    b.local = [{ ...b.local[0]!, poweredOnAtMs: 5300 }];
    b.peers[0] = { id: 'n1', contactAt: Date.now() };
    await waitFor('n1 heard again', async () => (await memberRole(page, 'n1')) === 'heard');
    expect(await page.locator('#fences tr').count()).toBe(2); // the header and one record, not two
    b.engine = 'raft';
    b.local = [];
  }, 120_000);

  it('greys out the last answer while the node does not answer, and does not go on showing the others\' roles', async () => {
    const page = browser.page;
    b.peers = [{ id: 'n1', state: 'replicate', contactAt: Date.now() }, { id: 'n3', state: 'replicate', contactAt: Date.now() }];
    const live = setInterval(() => { for (const p of b.peers) p.contactAt = Date.now(); }, 100);
    try {
      await signIn(page);
      await waitFor('n3 a follower', async () => (await openSpan(page, 'n3')) === 'follower');
      b.failing = true;
      await waitFor('n3 unknown', async () => (await openSpan(page, 'n3')) === 'unknown');
      await waitFor('the error line', async () => /has not answered since/.test(await page.locator('[data-testid=error]').innerText()));
      expect(await openSpan(page, 'n2')).toBe('unreachable');
      expect(await page.locator('#app').getAttribute('class')).toMatch(/\bstale\b/);
      expect(await page.locator('[data-testid=updated]').innerText()).toMatch(/^no answer since/);
      // Meanwhile only its status is asked for (each failed request is an error in the
      // browser's console): not /metrics, keys, locks or jobs, which it cannot answer either.
      const asked: string[] = [];
      const onRequest = (r: { url(): string }) => asked.push(new URL(r.url()).pathname);
      page.on('request', onRequest);
      // A window of observation (that something is not asked for cannot be polled for):
      // longer than the 3 s period of the lists, so that old code asks for them in it.
      await new Promise((r) => setTimeout(r, 3500));
      page.off('request', onRequest);
      expect(asked.length).toBeGreaterThan(0);
      expect([...new Set(asked)].sort()).toEqual(['/v1/leader', '/v1/status']);
      b.failing = false;
      await waitFor('n3 a follower again', async () => (await openSpan(page, 'n3')) === 'follower');
      expect(await page.locator('#app').getAttribute('class') ?? '').not.toMatch(/\bstale\b/);
      expect(await page.locator('[data-testid=error]').innerText()).toBe('');
    } finally {
      clearInterval(live);
      b.failing = false;
    }
  }, 120_000);

  it('says "elected, not active" without a dangling colon, flags a job slot claimed in the future, and shows a reset', async () => {
    const page = browser.page;
    b.peers = [{ id: 'n1', contactAt: Date.now() }];
    b.extra = { elected: true, active: false, waitingFor: '' };
    const future = new Date(Math.floor(Date.now() / 10_000) * 10_000 + 3_600_000).toISOString();
    b.jobList = [{
      name: 'heartbeat', cron: '*/10 * * * * *', timezone: 'UTC', overlap: 'skip', timeoutMs: 5000, command: 'true', nextRun: future, runningHere: 0,
      last: { slot: future, node: 'n1', term: 1, token: 1, result: 'ok', exitCode: 0, signal: null, startedAt: future, durationMs: 21 }, reset: null,
    }];
    await signIn(page);
    await waitFor('the activation', async () => (await page.locator('[data-testid=sum-active]').innerText()).includes('elected'));
    expect((await page.locator('[data-testid=sum-active]').innerText()).split('\n').pop()).toBe('elected, not active');
    const flag = await waitFor('the future slot flag', async () => (await page.locator('[data-testid=job-future]').count()) === 1 && page.locator('[data-testid=job-future]').innerText());
    expect(flag).toContain(future);
    expect(flag).toMatch(/in the future by \d+ min/);
    expect(flag).toContain('quorumd jobs reset heartbeat');

    // `quorumd jobs reset heartbeat` withdrew it: no slot granted since.
    b.jobList = [{ ...(b.jobList[0] as object), last: null, reset: { at: new Date().toISOString(), floor: new Date().toISOString(), node: 'n1', term: 1, withdrawn: { slot: future, node: 'n1', term: 1 } } }];
    await waitFor('the reset row', async () => /none since reset[\s\S]*reset \(withdrew /.test(await page.locator('#jobs').innerText()), 20_000);
    expect(await page.locator('[data-testid=job-future]').count()).toBe(0);
    b.extra = {};
  }, 120_000);

  it('under bully does not ask for keys, locks or jobs (three 501s the console showed as errors at every load), and says "epoch"; under PBFT says there are no jobs', async () => {
    const page = browser.page;
    b.engine = 'bully';
    b.peers = [{ id: 'n1', contactAt: Date.now() }];
    const asked: string[] = [];
    const onRequest = (r: { url(): string }) => { if (/\/v1\/(keys|locks|jobs)/.test(r.url())) asked.push(r.url()); };
    page.on('request', onRequest);
    const errorsBefore = browser.errors.length;
    try {
      await signIn(page);
      // Past the first status answer and the first round of list polls (3 s).
      await settle(page);
      await settle(page);
      await settle(page);
      expect(asked).toEqual([]);
      expect(await page.locator('#jobs').innerText()).toMatch(/no scheduled jobs under this engine/);
      expect(await page.locator('#keys').innerText()).toMatch(/this engine keeps no keys/);
      expect(await page.locator('#locks').innerText()).toMatch(/this engine has no locks/);
      expect(browser.errors.slice(errorsBefore)).toEqual([]);
      expect(await page.locator('[data-testid=sum-term]').innerText()).toMatch(/^epoch/);
      // Its fence history is this node's own (no log to replicate it): not "every node's".
      expect(await page.locator('[data-testid=fence-scope]').innerText()).toMatch(/this node ran/);

      // PBFT answers /v1/jobs with an empty list ("none", as if no job were configured):
      // it offers no jobs, and the table says so.
      b.engine = 'pbft';
      b.jobList = [];
      await signIn(page);
      await settle(page);
      await waitFor('the PBFT jobs note', async () => /no scheduled jobs under this engine/.test(await page.locator('#jobs').innerText()), 10_000);
    } finally {
      page.off('request', onRequest);
      b.engine = 'raft';
    }
  }, 120_000);

  it('fits a phone (390 px) without sideways scrolling or broken words, and uses a 1920 px window', async () => {
    const page = browser.page;
    b.peers = [{ id: 'n1', contactAt: Date.now() - 10_000 }, { id: 'n3', state: 'replicate', contactAt: Date.now() }];
    b.jobList = [{ name: 'heartbeat', cron: '*/10 * * * * *', timezone: 'UTC', overlap: 'skip', timeoutMs: 5000, command: 'true', nextRun: new Date(Date.now() + 5000).toISOString(), runningHere: 0,
      last: { slot: new Date(Date.now() - 5000).toISOString(), node: 'n2', term: 2, token: 9, result: 'ok', exitCode: 0, signal: null, startedAt: null, durationMs: 21 }, reset: null }];
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page);
    await waitFor('the chart', async () => (await page.locator('#chart canvas').count()) > 0);
    await waitFor('the job row', async () => (await page.locator('#jobs tr[data-job]').count()) === 1);

    await page.setViewportSize({ width: 390, height: 844 });
    // The chart was made 1280 px wide: it must follow the window down.
    await waitFor('the page as narrow as the window', async () => (await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, 15_000);
    await settle(page);
    const box = (sel: string) => page.evaluate((s) => { const r = document.querySelector(s)!.getBoundingClientRect(); return { width: r.width, height: r.height }; }, sel);
    // One line each: a pill ("not heard"), a short job name, the sign-out button.
    const line = (await box('#members tr[data-member=n3] .pill')).height;
    expect((await box('#members tr[data-member=n1] .pill')).height).toBeLessThan(line * 1.5);
    expect((await box('#jobs tr[data-job] td:first-child span')).height).toBeLessThan(line * 1.5);
    expect((await box('#signout')).height).toBeLessThan(line * 2);

    await page.setViewportSize({ width: 1920, height: 1000 });
    await waitFor('the chart as wide as the window', async () => (await box('#chart .uplot')).width > 1800, 15_000);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1920);

    expect(browser.external).toEqual([]);
    // Failed fetches Chromium logs by itself: the scripted 500s of the previous test.
    expect(browser.errors.filter((e) => !/status of 500/.test(e))).toEqual([]);
  }, 120_000);
});
