// examples/gpt: short pretraining runs on the Brown corpus must learn (validation loss below a
// stated bound), an interrupted and resumed run must reproduce the uninterrupted one's losses
// bitwise, and generation through the key/value cache must match recomputing the whole prefix.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as nb from 'nabla';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain-JS example modules without types
import { SmallGPT } from '../examples/gpt/model.mjs';
// @ts-expect-error: plain-JS example modules without types
import { generate, sampleNext } from '../examples/gpt/generate.mjs';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'nabla-gpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  steps: number;
  bestValLoss: number;
  vocabSize: number;
  history: { step: number; valLoss: number }[];
  losses: number[];
  sample: string;
}

async function train(out: string, flags: string[]): Promise<Result> {
  const { stdout } = await run(
    process.execPath,
    ['examples/gpt/train.mjs', '--json', '--out', join(dir, out), ...flags],
    { maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as Result;
}

const tiny = [
  ...['--n-embd', '32', '--n-layer', '2', '--n-head', '2', '--block', '32'],
  ...['--batch', '8', '--accum', '2', '--warmup', '10', '--eval-batches', '8'],
];

describe('examples/gpt/train.mjs', () => {
  it('learns characters of Brown: validation loss falls below 2.6 nats/char', async () => {
    const r = await train('char', [
      ...tiny,
      ...['--tokenizer', 'char', '--chars', '300000', '--max-iters', '250', '--eval-every', '50'],
      ...['--lr', '3e-3', '--sample', '60'],
    ]);
    // ln 78 ≈ 4.36 nats is a uniform guess over this vocabulary; letter frequencies alone
    // give about 2.9 nats, so a loss below 2.6 means the model uses the context.
    expect(r.vocabSize).toBeLessThan(100);
    expect(r.steps).toBe(250);
    expect(r.history).toHaveLength(5);
    expect(r.bestValLoss).toBeLessThan(2.6);
    expect(r.history[4].valLoss).toBeLessThan(r.history[0].valLoss);
    expect(r.sample.startsWith('The ')).toBe(true);
    expect([...r.sample].length).toBe(4 + 60);
  }, 120_000);

  it('learns with a BPE tokenizer trained on the split: below 5.2 nats/token with 512 tokens', async () => {
    const r = await train('bpe', [
      ...tiny,
      ...['--tokenizer', 'bpe', '--vocab', '512', '--chars', '300000', '--max-iters', '150'],
      ...['--eval-every', '50', '--lr', '3e-3', '--sample', '20'],
    ]);
    // ln 512 ≈ 6.24 nats is a uniform guess.
    expect(r.vocabSize).toBe(512);
    expect(r.bestValLoss).toBeLessThan(5.2);
    expect(r.sample.startsWith('The ')).toBe(true);
  }, 120_000);

  it('resumes exactly: stop at step 30, resume, and every loss equals the uninterrupted run', async () => {
    // Dropout on, so the restored random generator matters too.
    const flags = [
      ...tiny,
      ...['--tokenizer', 'char', '--chars', '100000', '--max-iters', '60', '--eval-every', '20'],
      ...['--dropout', '0.1', '--sample', '30'],
    ];
    const whole = await train('whole', flags);
    const first = await train('parts', [...flags, '--stop-after', '30']);
    const rest = await train('parts', [...flags, '--resume']);
    expect(first.losses).toHaveLength(30);
    expect(first.losses).toEqual(whole.losses.slice(0, 30));
    expect(rest.losses).toHaveLength(60);
    expect(rest.losses).toEqual(whole.losses); // bitwise
    expect(rest.history.map((h) => h.valLoss)).toEqual(whole.history.map((h) => h.valLoss));
    expect(rest.sample).toBe(whole.sample);
  }, 120_000);
});

describe('examples/gpt generation with a key/value cache', () => {
  type Out = { logits: nb.Tensor; pastKeyValues: nb.Tensor[][] };
  type GPT = nb.nn.Module & {
    forward(
      ids: nb.Tensor,
      opts?: { pastKeyValues?: nb.Tensor[][] | null; useCache?: boolean },
    ): Out;
  };
  let model: GPT;
  const V = 50;
  const ids = Array.from({ length: 24 }, (_, i) => (i * 7 + 3) % V);

  beforeAll(async () => {
    await nb.init();
    nb.manualSeed(1);
    model = new SmallGPT({ vocabSize: V, nPositions: 16, nEmbd: 32, nLayer: 2, nHead: 4 });
    model.eval();
  });

  const maxDiff = (a: nb.Tensor, b: nb.Tensor): number => {
    const x = a.toArray() as Float32Array;
    const y = b.toArray() as Float32Array;
    expect(x.length).toBe(y.length);
    return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
  };

  it('one position at a time (and several after a prefix) gives the full-prefix logits', () => {
    nb.noGrad(() => {
      const seq = nb.tensor([ids.slice(0, 16)], { dtype: 'int32' });
      const full = model.forward(seq).logits;
      let r = model.forward(seq.narrow(1, 0, 9), { useCache: true });
      expect(maxDiff(r.logits, full.narrow(1, 0, 9))).toBeLessThan(1e-5);
      r = model.forward(seq.narrow(1, 9, 3), { pastKeyValues: r.pastKeyValues, useCache: true });
      expect(maxDiff(r.logits, full.narrow(1, 9, 3))).toBeLessThan(1e-5);
      for (let t = 12; t < 16; t++) {
        r = model.forward(seq.narrow(1, t, 1), { pastKeyValues: r.pastKeyValues, useCache: true });
        expect(r.pastKeyValues[0][0].shape).toEqual([1, 4, t + 1, 8]); // one position added
        expect(maxDiff(r.logits, full.narrow(1, t, 1))).toBeLessThan(1e-5);
      }
    });
  });

  it('greedy generation through the cache equals recomputing the prefix every token', () => {
    const prompt = ids.slice(0, 5);
    const cached: number[] = generate(model, prompt, {
      maxNewTokens: 9,
      nPositions: 16,
      temperature: 0,
    });
    const slow = [...prompt];
    nb.noGrad(() => {
      for (let n = 0; n < 9; n++) {
        const logits = model.forward(nb.tensor([slow], { dtype: 'int32' })).logits;
        slow.push(
          logits
            .narrow(1, slow.length - 1, 1)
            .reshape([-1])
            .argmax()
            .item(),
        );
      }
    });
    expect(cached).toEqual(slow);
    // Past nPositions the window slides instead of failing.
    expect(
      generate(model, prompt, { maxNewTokens: 30, nPositions: 16, temperature: 0 }),
    ).toHaveLength(35);
  });

  it('samples only inside top-k and the top-p head', () => {
    const logits = nb.tensor([0, 5, 1, 4.5, -2, 3, 0.5, 4]);
    const counts = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const k = sampleNext(logits, { temperature: 1, topK: 3 });
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([1, 3, 7]); // the three largest logits
    for (let i = 0; i < 50; i++) {
      // p(1) ≈ 0.47, p(3) ≈ 0.28: the head reaching 0.6 is {1, 3}
      expect([1, 3]).toContain(sampleNext(logits, { temperature: 1, topP: 0.6 }));
    }
    expect(sampleNext(logits, { temperature: 1, topK: 1 })).toBe(1);
    expect(sampleNext(logits, { temperature: 0 })).toBe(1);
  });
});
