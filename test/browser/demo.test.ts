// Drives `npm run demo`'s page in chromium: trains on a subset of MNIST in the worker until
// validation accuracy passes 90%, draws a 0 and a 1 with the mouse and checks the
// predictions, saves and reloads the weights, and leaves a screenshot in test/artifacts/.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Nabla from '../../ts/index.js';
import { launch, type Browser } from './chromium.js';
import { startDemo } from './demo-server.js';
import { importFromRoot, root } from './harness.js';

let server: ChildProcess;
let url: string;
let browser: Browser;
let page: Page;
const errors: string[] = [];

/** Draws a stroke through `points` (fractions of the pad's size) with the mouse. */
async function stroke(points: [number, number][]): Promise<void> {
  const box = (await page.locator('#pad').boundingBox())!;
  const at = ([x, y]: [number, number]): [number, number] => [
    box.x + x * box.width,
    box.y + y * box.height,
  ];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 2 });
  await page.mouse.up();
}

/** The predicted digit and probabilities once the page shows them. */
async function prediction(): Promise<{ digit: number; probs: number[] }> {
  await page.waitForSelector('#prediction[data-digit]');
  return page.evaluate(`(() => {
    const el = document.querySelector('#prediction');
    return { digit: Number(el.dataset.digit), probs: JSON.parse(el.dataset.probs) };
  })()`);
}

async function clearPad(): Promise<void> {
  await page.click('#clear');
  await page.waitForSelector('#prediction:not([data-digit])', { state: 'attached' });
}

beforeAll(async () => {
  const demo = await startDemo();
  url = demo.url;
  server = demo.process;
  browser = await launch();
  page = await browser.context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  server?.kill();
});

describe('the demo page', () => {
  it('trains in a worker past 90% validation accuracy, then recognises drawn digits', async () => {
    const started = Date.now();
    await page.goto(`${url}?samples=12000&epochs=2`);
    await page.waitForSelector('body[data-state="idle"]');
    await page.click('#train');
    await page.waitForSelector('body[data-state="training"]', { state: 'attached' });
    // The page stays responsive while the worker trains: it answers script at once.
    expect(await page.evaluate('document.querySelector("#progress").max')).toBe(1);
    await page.waitForFunction(
      'Number(document.querySelector("#val-acc").dataset.value) > 0.9',
      null,
      {
        timeout: 60_000,
      },
    );
    await page.waitForSelector('body[data-state="idle"]', { timeout: 60_000 });
    const trainSeconds = (Date.now() - started) / 1000;
    expect(await page.textContent('#progress-text')).toMatch(
      /epoch 2\/2 · batch 188\/188 · [\d,]+ samples\/s/,
    );
    expect(await page.textContent('#status')).toMatch(/^trained 2 epochs/);
    console.log(`demo: trained to >90% validation accuracy in ${trainSeconds.toFixed(1)} s`);

    // A "0": an oval loop.
    const loop: [number, number][] = [];
    for (let i = 0; i <= 40; i++) {
      const a = (2 * Math.PI * i) / 40;
      loop.push([0.5 + 0.22 * Math.sin(a), 0.5 - 0.32 * Math.cos(a)]);
    }
    await stroke(loop);
    const zero = await prediction();
    expect(zero.probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(zero.digit).toBe(0);
    await page.screenshot({ path: join(root, 'test/artifacts/demo.png'), fullPage: true });

    // A "1": one slightly slanted stroke.
    await clearPad();
    await stroke([
      [0.52, 0.15],
      [0.5, 0.5],
      [0.48, 0.85],
    ]);
    // Mouse events can coalesce on a loaded machine, which thins the stroke; the model must
    // still rank "1" among its three most likely digits.
    const one = await prediction();
    const top3 = one.probs
      .map((p, d) => [p, d] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 3)
      .map(([, d]) => d);
    expect(top3).toContain(1);
    expect(errors).toEqual([]);
  }, 120_000);

  it('saves the weights (download and IndexedDB) and loads them back', async () => {
    const before = await prediction();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
    await page.waitForSelector('#status:text-matches("^saved")');
    expect(download.suggestedFilename()).toBe('mnist-mlp.safetensors');
    const nb = await importFromRoot<typeof Nabla>('dist/index.js');
    await nb.init();
    const bytes = readFileSync(await download.path());
    const tensors = nb.io.loadSafetensors(bytes);
    const metadata = nb.io.safetensorsMetadata(bytes);
    expect(Object.keys(tensors).sort()).toEqual([
      '0.bias',
      '0.weight',
      '2.bias',
      '2.weight',
      '4.bias',
      '4.weight',
    ]);
    expect(metadata.model).toBe('784-256-128-10 MLP');

    // Retrain briefly (other weights), then load the saved ones: the prediction comes back.
    await page.evaluate(
      'document.querySelector("#samples").value = "10000"; document.querySelector("#epochs").value = "1"',
    );
    await page.click('#train');
    await page.waitForSelector('body[data-state="training"]', { state: 'attached' });
    await page.click('#stop');
    await page.waitForSelector('#status:text("stopped")');
    const saved = JSON.stringify(JSON.stringify(before.probs));
    await page.waitForFunction(`document.querySelector('#prediction').dataset.probs !== ${saved}`);
    await page.click('#load');
    await page.waitForSelector('#status:text("loaded the weights from browser storage")');
    await page.waitForFunction(`document.querySelector('#prediction').dataset.probs === ${saved}`);
    expect(errors).toEqual([]);
  }, 60_000);
});
