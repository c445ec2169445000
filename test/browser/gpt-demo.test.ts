// Drives the demo's GPT page (examples/browser/gpt.html) in chromium with tiny settings from
// the address: the worker pretrains a character GPT-2 on the Brown slice the demo server
// serves until its train and validation losses are well below the uniform ln(V), then the
// page streams sampled characters of the corpus's vocabulary, one message per character;
// Stop ends training and generation; the worker's live tensors stay flat across runs.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, type Browser } from './chromium.js';
import { startDemo } from './demo-server.js';
import { root } from './harness.js';

let server: ChildProcess;
let url: string;
let browser: Browser;
let page: Page;
const errors: string[] = [];

const STEPS = 200;
const LENGTH = 120;
const SETTINGS =
  `chars=300000&embd=32&layers=1&heads=2&context=32&batch=16&steps=${STEPS}` +
  `&lr=0.01&warmup=20&evalEvery=50&length=${LENGTH}&prompt=The%20`;

const data = (selector: string, key: string): Promise<string | undefined> =>
  page.evaluate(([s, k]) => (document.querySelector(s) as HTMLElement).dataset[k], [
    selector,
    key,
  ] as const);

/** Clicks Generate and waits for the end; returns the sampled text and its message count. */
async function generate(): Promise<{ text: string; chars: number; appends: number }> {
  // Count the separate appends to the output as they happen (one per streamed character).
  await page.evaluate(() => {
    const w = window as unknown as { appends: number; observer?: MutationObserver };
    w.appends = 0;
    w.observer?.disconnect();
    w.observer = new MutationObserver((records) => {
      w.appends += records.filter((r) => r.type === 'characterData').length;
    });
    w.observer.observe(document.querySelector('#sample')!, {
      characterData: true,
      subtree: true,
    });
  });
  await page.click('#generate');
  await page.waitForSelector('#sample[data-done]', { state: 'attached', timeout: 30_000 });
  await page.waitForSelector('body[data-state="idle"]');
  return page.evaluate(() => {
    const out = document.querySelector('#sample') as HTMLElement;
    return {
      text: out.lastChild!.textContent!,
      chars: Number(out.dataset.chars),
      appends: (window as unknown as { appends: number }).appends,
    };
  });
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

describe('the GPT demo page', () => {
  it('is linked from the MNIST page', async () => {
    await page.goto(url);
    await page.click('a[href="./gpt.html"]');
    await page.waitForSelector('body[data-state="idle"]');
    expect(await page.title()).toMatch(/character GPT/);
  });

  it('pretrains in a worker: train and validation loss fall well below ln(V)', async () => {
    await page.goto(`${url}gpt.html?${SETTINGS}`);
    await page.waitForSelector('body[data-state="idle"]');
    expect(await page.isDisabled('#generate')).toBe(true); // nothing to sample yet
    const started = Date.now();
    await page.click('#train');
    await page.waitForSelector('body[data-state="training"]', { state: 'attached' });
    await page.waitForSelector('body[data-state="idle"]', { timeout: 60_000 });
    const seconds = (Date.now() - started) / 1000;
    expect(await page.textContent('#status')).toMatch(new RegExp(`^trained ${STEPS} steps`));

    const vocab = (await data('#corpus-info', 'vocab'))!;
    const uniform = Number(await data('#corpus-info', 'uniform'));
    expect(vocab.length).toBeGreaterThan(60); // letters, digits, punctuation, space, newline
    expect(uniform).toBeCloseTo(Math.log(vocab.length), 6);
    const history = JSON.parse((await data('#val-loss', 'history'))!) as number[][];
    expect(history.map(([step]) => step)).toEqual([0, 50, 100, 150, 200]);
    // Once the optimizer has its state, the worker's live tensors stay the same.
    const live = history.slice(1).map(([, , tensors]) => tensors);
    expect(live.every((n) => n === live[0])).toBe(true);
    // Untrained (GPT-2's small initial weights): about uniform. Trained: far below it.
    expect(Math.abs(history[0][1] - uniform)).toBeLessThan(0.3);
    const valLoss = history[history.length - 1][1];
    const trainLoss = Number(await data('#progress-text', 'loss'));
    expect(valLoss).toBeLessThan(uniform - 1);
    expect(trainLoss).toBeLessThan(uniform - 1);
    console.log(
      `gpt demo: ${STEPS} steps in ${seconds.toFixed(1)} s; ln V ${uniform.toFixed(3)}, ` +
        `train ${trainLoss.toFixed(3)}, validation ${valLoss.toFixed(3)}`,
    );
    expect(errors).toEqual([]);
  }, 90_000);

  it('streams sampled characters of the vocabulary into the page, one at a time', async () => {
    const vocab = new Set((await data('#corpus-info', 'vocab'))!);
    const first = await generate();
    expect(first.chars).toBe(LENGTH);
    expect(first.text).toHaveLength(LENGTH);
    expect([...first.text].every((c) => vocab.has(c))).toBe(true);
    expect(first.appends).toBe(LENGTH); // one DOM append per character message
    expect(await page.textContent('#sample .prompt')).toBe('The ');
    expect(await page.textContent('#status')).toMatch(new RegExp(`^generated ${LENGTH} `));
    const tensors = await data('#sample-info', 'tensors');

    // A second run: other characters, and the worker's live tensors are the same.
    const second = await generate();
    expect(second.chars).toBe(LENGTH);
    expect(second.text).not.toBe(first.text);
    expect(await data('#sample-info', 'tensors')).toBe(tensors);
    await page.screenshot({ path: join(root, 'test/artifacts/gpt-demo.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 60_000);

  it('stops training and generation on request, keeping the model', async () => {
    await page.fill('#steps', '100000');
    await page.click('#train');
    await page.waitForFunction(() => {
      const step = (document.querySelector('#progress-text') as HTMLElement).dataset.step;
      return Number(step) >= 5;
    });
    await page.click('#stop');
    await page.waitForSelector('body[data-state="idle"]');
    expect(await page.textContent('#status')).toMatch(/^stopped at step \d+/);

    await page.fill('#length', '100000');
    await page.click('#generate');
    await page.waitForFunction(
      () => Number((document.querySelector('#sample') as HTMLElement).dataset.chars) >= 20,
    );
    await page.click('#stop-generate');
    await page.waitForSelector('#sample[data-done]', { state: 'attached' });
    expect(await page.textContent('#status')).toBe('generation stopped');
    const chars = Number(await data('#sample', 'chars'));
    expect(chars).toBeGreaterThanOrEqual(20);
    expect(chars).toBeLessThan(100000);

    // The worker is free again at once: a short generation right after runs to its end.
    await page.fill('#length', '30');
    const after = await generate();
    expect(after.chars).toBe(30);
    expect(errors).toEqual([]);
  }, 60_000);

  it("reports bad settings with the worker's typed error and stays usable", async () => {
    await page.fill('#steps', '20');
    await page.fill('#heads', '3'); // 32 is not divisible by 3
    await page.click('#train');
    await page.waitForSelector('#status.error');
    expect(await page.textContent('#status')).toMatch(
      /^training failed: ValueError in worker job "train": GPT2Config: nEmbd 32 must be divisible by nHead 3/,
    );
    await page.waitForSelector('body[data-state="idle"]');
    await page.fill('#heads', '2');
    await page.click('#train');
    await page.waitForSelector('#status:text-matches("^trained 20 steps")', { timeout: 30_000 });
    expect(errors).toEqual([]);
  }, 60_000);
});
