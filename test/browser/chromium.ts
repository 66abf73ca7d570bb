/**
 * Headless Chromium for the browser tests: Debian's `chromium` (installed by .ci/run),
 * driven by playwright-core, which never downloads a browser of its own. Each launch
 * gets a fresh profile (--user-data-dir) and the network is cut off for the page: any
 * request that is not a file: or data: URL is aborted and recorded, so a test can
 * insist that a page needs nothing from outside.
 *
 * Outside CI a machine without chromium skips these tests with a message saying how to
 * get it; in CI (CI=true) they must run, so a missing browser fails them.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.QUORUMD_CHROMIUM ?? '/usr/bin/chromium';
export const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
/** Skip (outside CI only) when there is no browser. */
export const SKIP_BROWSER = !HAVE_CHROMIUM && !IN_CI;
if (SKIP_BROWSER) {
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set QUORUMD_CHROMIUM); in CI they run and fail without it`);
}

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Requests the page tried to make to anything but file: and data: URLs (all aborted). */
  external: string[];
  /** Uncaught errors and console errors of the page. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * `allowOrigins`: origins (e.g. `http://127.0.0.1:7071`) the page may reach besides
 * file: and data: — a node's own dashboard; anything else is still aborted and recorded.
 */
export async function openBrowser(viewport = { width: 1400, height: 900 }, o: { allowOrigins?: string[] } = {}): Promise<Browser> {
  if (!HAVE_CHROMIUM) throw new Error(`no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium; locally apt-get install chromium`);
  const profile = mkdtempSync(join(tmpdir(), 'quorumd-chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport,
    timeout: 90_000,
  });
  const external: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
    if ((o.allowOrigins ?? []).some((origin) => url === origin || url.startsWith(`${origin}/`))) return route.continue();
    external.push(url);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  return {
    context,
    page,
    external,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
