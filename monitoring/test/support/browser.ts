// Headless Debian Chromium for the dashboard browser tests (monitoring's own and the e2e scenario):
// playwright-core drives /usr/bin/chromium; no browser is ever downloaded.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** as root Chromium needs --no-sandbox; the rest keep it quiet and off the closed network */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Installs Debian's Chromium when missing (give the caller's hook a long timeout), then launches it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) execFileSync('bash', [new URL('../../scripts/ensure-chromium.sh', import.meta.url).pathname], { stdio: 'inherit' });
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A page whose uncaught errors and console errors are collected into the returned list. */
export async function newDashboardPage(browser: Browser): Promise<{ page: Page; pageErrors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  return { page, pageErrors };
}

/** Signs in through the dashboard's form at `${base}/monitoring/`. */
export async function signInThroughForm(page: Page, base: string, identity: string, password: string): Promise<void> {
  await page.goto(`${base}/monitoring/`);
  await page.getByLabel('Email or username').fill(identity);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Saves a full-page screenshot as `dir/name` (dir created when missing) and returns its path. */
export async function screenshot(page: Page, dir: URL, name: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = new URL(name, dir).pathname;
  await page.screenshot({ path, fullPage: true });
  return path;
}
