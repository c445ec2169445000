// Drives the demo's LoRA page (examples/browser/lora.html) in chromium with small settings from
// the address: the worker pretrains a character GPT-2 base on the Brown slice, fine-tunes it
// with LoRA as a spam classifier on the SpamAssassin sample the demo server serves (test
// accuracy well above the majority class, base weights bitwise unchanged), classifies typed
// text, saves the adapter to IndexedDB and loads it into a fresh base with the same
// probabilities, keeps the worker's live tensors flat, and reports bad settings as typed errors.
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
let savedNames: string[] = [];
/** The worker's live tensor count after each of the repeated loads. */
const loadLive: number[] = [];

// A 600-step base is the shortest that LoRA learns from reliably here (150 steps: loss 3.15,
// test accuracy 0.59; 600: loss 2.52, 0.895, seeds 1 and 2 0.86 and 0.85).
const STEPS = 600;
const EPOCHS = 8;
const SETTINGS =
  `chars=300000&embd=32&layers=1&heads=2&context=64&batch=16&steps=${STEPS}&lr=0.01` +
  `&r=4&alpha=8&epochs=${EPOCHS}&ftBatch=16&ftLr=0.01`;
// The sample is balanced (400 spam, 400 ham): the majority class scores 0.5.
const MIN_ACCURACY = 0.75;

const data = (selector: string, key: string): Promise<string | undefined> =>
  page.evaluate(([s, k]) => (document.querySelector(s) as HTMLElement).dataset[k], [
    selector,
    key,
  ] as const);

/** Types `text` into the box and waits for the debounced P(spam) of exactly that text. */
async function pSpam(text: string): Promise<number> {
  await page.fill('#text', text);
  await page.waitForFunction(
    (t) => (document.querySelector('#pspam') as HTMLElement).dataset.text === t,
    text,
  );
  return Number(await data('#pspam', 'value'));
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

describe('the LoRA demo page', () => {
  it('is linked from the GPT page', async () => {
    await page.goto(`${url}gpt.html`);
    await page.click('a[href="./lora.html"]');
    await page.waitForSelector('body[data-state="idle"]');
    expect(await page.title()).toMatch(/LoRA/);
    expect(await page.isDisabled('#finetune')).toBe(true); // no base yet
  });

  it('pretrains the base in a worker: the loss falls well below ln(96)', async () => {
    await page.goto(`${url}lora.html?${SETTINGS}`);
    await page.waitForSelector('body[data-state="idle"]');
    await page.click('#pretrain');
    await page.waitForSelector('body[data-state="pretraining"]', { state: 'attached' });
    await page.waitForSelector('body[data-state="idle"]', { timeout: 60_000 });
    expect(await page.textContent('#status')).toBe('base model ready · press Fine-tune');
    expect(Number(await data('#pretrain-text', 'steps'))).toBe(STEPS);
    expect(Number(await data('#pretrain-text', 'loss'))).toBeLessThan(Math.log(96) - 1);
    // Once AdamW has its moments (after step 1), the live tensor count stays the same.
    const live = JSON.parse((await data('#pretrain-text', 'tensors'))!) as number[];
    expect(live).toHaveLength(STEPS);
    expect(live.slice(1).every((n) => n === live[1])).toBe(true);
    console.log(
      `lora demo: pretraining ${STEPS} steps in ${Number(await data('#pretrain-text', 'seconds')).toFixed(1)} s`,
    );
    expect(errors).toEqual([]);
  }, 90_000);

  it('fine-tunes with LoRA: few trainable parameters, test accuracy well above the majority, base unchanged', async () => {
    await page.click('#finetune');
    await page.waitForSelector('body[data-state="finetuning"]', { state: 'attached' });
    await page.waitForSelector('body[data-state="idle"]', { timeout: 60_000 });
    expect(await page.textContent('#status')).toMatch(/^fine-tuned in /);
    const trainable = Number(await data('#params', 'trainable'));
    const total = Number(await data('#params', 'total'));
    // r 4 on c_attn (32→96), c_proj (32→32), c_fc (32→128), mlp c_proj (128→32), + head 32·2+2.
    expect(trainable).toBe(4 * (32 + 96) + 4 * (32 + 32) + 4 * (32 + 128) + 4 * (128 + 32) + 66);
    expect(trainable / total).toBeLessThan(0.2);
    const history = JSON.parse((await data('#test-scores', 'history'))!) as number[][];
    expect(history.map(([e]) => e)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const accuracy = Number(await data('#finetune-text', 'accuracy'));
    const f1 = Number(await data('#finetune-text', 'f1'));
    expect(accuracy).toBeGreaterThanOrEqual(MIN_ACCURACY);
    expect(f1).toBeGreaterThan(0.7);
    // The base weights are bitwise those pretraining produced.
    const pretrained = await data('#pretrain-text', 'checksum');
    expect(await data('#finetune-text', 'checksumBefore')).toBe(pretrained);
    expect(await data('#finetune-text', 'checksumAfter')).toBe(pretrained);
    expect(await data('#finetune-text', 'baseChecksum')).toBe(pretrained);
    // Live tensors after each epoch's evaluation: the same every time.
    const live = history.map(([, , , n]) => n);
    expect(live.every((n) => n === live[0])).toBe(true);
    console.log(
      `lora demo: fine-tuning ${EPOCHS} epochs in ${Number(await data('#finetune-text', 'seconds')).toFixed(1)} s, ` +
        `test accuracy ${accuracy.toFixed(3)}, F1 ${f1.toFixed(3)}, ${trainable}/${total} trainable`,
    );
    expect(errors).toEqual([]);
  }, 70_000);

  it('classifies typed text: spam-like and ham-like texts get different predictions', async () => {
    const spam = await pSpam(
      'FREE!!! Make $$$ fast, click here to order now. Limited time offer, 100% guaranteed, no risk!!! Remove me from this list',
    );
    const ham = await pSpam(
      'Re: patch for the kernel build\nI tried your change on my machine and the tests pass, thanks. Will merge it tomorrow.',
    );
    expect(spam).toBeGreaterThan(0.5);
    expect(ham).toBeLessThan(0.5);
    expect(errors).toEqual([]);
  }, 30_000);

  it('saves the adapter to IndexedDB and loads it into a fresh base: same probabilities', async () => {
    await page.click('#save');
    await page.waitForSelector('#status:text("adapter saved to IndexedDB")');
    const names = JSON.parse((await data('#adapter-info', 'names'))!) as string[];
    savedNames = names;
    expect(names).toContain('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight');
    expect(names).toContain('base_model.model.score.weight');
    const before = JSON.parse((await data('#finetune-text', 'probabilities'))!) as number[];
    for (let round = 0; round < 4; round++) {
      await page.click('#load');
      await page.waitForSelector('#status:text-matches("^adapter loaded")');
      const after = JSON.parse((await data('#adapter-info', 'loadedProbabilities'))!) as number[];
      expect(after).toEqual(before); // identical, not merely close
      expect(await data('#adapter-info', 'loadedChecksum')).toBe(
        await data('#pretrain-text', 'checksum'),
      );
      loadLive.push(Number(await data('#adapter-info', 'tensors')));
    }
    // After a reload of the page (a new worker), the adapter and base come from IndexedDB.
    await page.reload();
    await page.waitForSelector('body[data-state="idle"]');
    await page.click('#load');
    await page.waitForSelector('#status:text-matches("^adapter loaded")');
    const reloaded = JSON.parse((await data('#adapter-info', 'loadedProbabilities'))!);
    expect(reloaded).toEqual(before);
    await page.screenshot({ path: join(root, 'test/artifacts/lora-demo.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 40_000);

  // Each load replaces the base and the model and frees the old ones: the worker's live
  // tensor count is the same after every round (a leak of even one tensor per load shows).
  it('keeps the live tensor count flat over repeated loads', () => {
    expect(loadLive).toHaveLength(4);
    expect(loadLive[0]).toBeGreaterThan(0);
    expect(loadLive).toEqual(loadLive.map(() => loadLive[0]));
  });

  it('downloads adapter_model.safetensors and adapter_config.json', async () => {
    const files = new Map<string, string>();
    const got = new Promise<void>((resolve) => {
      page.on('download', (d) => {
        void d.path().then((p) => {
          files.set(d.suggestedFilename(), p!);
          if (files.size === 2) resolve();
        });
      });
    });
    await page.click('#download');
    await got;
    const { readFileSync } = await import('node:fs');
    const config = JSON.parse(readFileSync(files.get('adapter_config.json')!, 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, task_type: 'SEQ_CLS' });
    const bytes = readFileSync(files.get('adapter_model.safetensors')!);
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
    const keys = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(keys).toContain('base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight');
    expect(keys.sort()).toEqual([...savedNames].sort());
    expect(errors).toEqual([]);
  }, 30_000);

  it("reports bad settings with the worker's typed errors and stays usable", async () => {
    const before = Number(await data('#pspam', 'value'));
    await page.fill('#r', '0');
    await page.click('#finetune');
    await page.waitForSelector('#status.error');
    expect(await page.textContent('#status')).toBe(
      'fine-tuning failed: ValueError in worker job "finetune": r must be an integer in [1, Infinity], got 0',
    );
    await page.waitForSelector('body[data-state="idle"]');
    await page.fill('#r', '4');
    await page.fill('#heads', '3'); // 32 is not divisible by 3
    await page.click('#pretrain');
    await page.waitForSelector('#status:text-matches("^pretraining failed")');
    expect(await page.textContent('#status')).toMatch(
      /^pretraining failed: ValueError in worker job "pretrain": GPT2Config: nEmbd 32 must be divisible by nHead 3/,
    );
    // The loaded classifier is still there and answers as before.
    await page.waitForSelector('body[data-state="idle"]');
    await page.click('#classify');
    await page.waitForSelector('body[data-state="idle"]');
    expect(Number(await data('#pspam', 'value'))).toBe(before);
    expect(errors).toEqual([]);
  }, 30_000);
});
