// What each browser test file starts with: the static server (dist/ and the test pages on
// 127.0.0.1, a free port) and a chromium page open on it, with page errors collected.
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { serveStatic, type StaticServer } from '../../scripts/serve.mjs';
import { launch, type Browser } from './chromium.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Harness {
  server: StaticServer;
  browser: Browser;
  page: Page;
  /** Uncaught errors and console errors from the page and its workers. */
  errors: string[];
  close(): Promise<void>;
}

export async function startHarness(extraMounts: Record<string, string> = {}): Promise<Harness> {
  const server = await serveStatic({
    '/dist/': `${root}dist`,
    '/pages/': `${root}test/browser/pages`,
    ...extraMounts,
  });
  let browser: Browser;
  try {
    browser = await launch();
  } catch (e) {
    await server.close();
    throw e;
  }
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${server.url}/pages/index.html`);
  return {
    server,
    browser,
    page,
    errors,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/** Base64 of bytes, for comparing binary results across the page boundary. */
export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** Calls `fn(...args)` exported by a page module (plain JS under test/browser/pages/). */
export function call<T>(page: Page, module: string, fn: string, ...args: unknown[]): Promise<T> {
  const m = JSON.stringify(`/pages/${module}`);
  return page.evaluate(
    `import(${m}).then((m) => m[${JSON.stringify(fn)}](...${JSON.stringify(args)}))`,
  ) as Promise<T>;
}

/** Imports a file of this repository in Node (kept out of tsc's sight: dist/ may not be built). */
export function importFromRoot<T>(path: string): Promise<T> {
  return import(pathToFileURL(`${root}${path}`).href) as Promise<T>;
}
