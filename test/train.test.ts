// nb.train: fit/evaluate/predict against hand-written loops, gradient accumulation and
// clipping, schedulers, callbacks (EarlyStopping, ModelCheckpoint, hook order), progress
// output, and a flat heap over a run.
//
// Tolerances. fit and the reference loops below run the same float32 ops in the same order,
// so weights are compared bitwise and logged means to 1e-12. Where the reference differs in
// how it groups the work (one batch of 12 vs three accumulated batches of 4, one full-batch
// loss vs batch means weighted by size) float32 rounding differs, so 1e-6 (the losses and
// weights are O(1)).
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { onTestFinished } from 'vitest';
import * as nb from '../ts/index.js';
import { Progress } from '../ts/train/progress.js';

const { nn } = nb;
type Tensor = nb.Tensor;
type Pairs = nb.data.TensorDataset<[Tensor, Tensor]>;

beforeAll(async () => {
  await nb.init();
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** `n` samples of 4 features with labels in 0..2, from `seed`. */
function dataset(n: number, seed: number): Pairs {
  nb.manualSeed(seed);
  return new nb.data.TensorDataset(nb.randn([n, 4]), nb.randint(0, 3, [n]));
}

/** Linear(4,8)-ReLU-[Dropout]-Linear(8,3), initialised from `seed`. */
function mlp(seed: number, dropout = 0): nb.nn.Sequential {
  nb.manualSeed(seed);
  const layers: nb.nn.Module[] = [new nn.Linear(4, 8), new nn.ReLU()];
  if (dropout > 0) layers.push(new nn.Dropout(dropout));
  layers.push(new nn.Linear(8, 3));
  return new nn.Sequential(...layers);
}

function loader(ds: Pairs, batchSize: number, shuffle = false, seed = 11) {
  return new nb.data.DataLoader(ds, { batchSize, shuffle, seed });
}

/** Every parameter, concatenated. */
function weights(model: nb.nn.Module): Float32Array {
  const parts = model.parameters().map((p) => p.toArray() as Float32Array);
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The float32 bit patterns, for bitwise comparisons. */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Every module of `model` in training mode (true), eval mode (false), or mixed (null). */
function mode(model: nb.nn.Module): boolean | null {
  const modes = new Set([...model.modules()].map((m) => m.training));
  return modes.size === 1 ? [...modes][0] : null;
}

/**
 * A metric whose value is scripted by epoch (read from a callback's onEpochBegin), so
 * EarlyStopping and ModelCheckpoint see a chosen sequence from a real training run.
 * Values are dyadic, so the batch-size-weighted mean over batches is exactly the value.
 */
function scripted(name: string, values: number[]) {
  let epoch = 0;
  const tracker: nb.train.Callback = {
    onEpochBegin: (e) => {
      epoch = e;
    },
  };
  const metric: nb.train.Metric = { name, fn: () => values[epoch] };
  return { tracker, metric };
}

/** A small SGD run monitored by a scripted metric; returns the model and history. */
async function runScripted(values: number[], callbacks: nb.train.Callback[], name = 'score') {
  const { tracker, metric } = scripted(name, values);
  const model = mlp(21);
  const optimizer = new nb.optim.SGD(model.parameters(), { lr: 0.2 });
  const ds = dataset(16, 4);
  const h = await nb.train.fit(model, {
    trainLoader: loader(ds, 8, true),
    lossFn: new nn.CrossEntropyLoss(),
    optimizer,
    epochs: values.length,
    metrics: [metric],
    callbacks: [tracker, ...callbacks],
    progress: 'silent',
  });
  ds.tensors.forEach((t) => t.dispose());
  return { model, h };
}

describe('fit', () => {
  it('matches a hand-written PyTorch-style loop: epoch losses, accuracy and bitwise weights', async () => {
    const ds = dataset(36, 1);
    const val = dataset(20, 2);
    const lossFn = new nn.CrossEntropyLoss();

    // the reference loop
    const a = mlp(3);
    const optA = new nb.optim.SGD(a.parameters(), { lr: 0.1, momentum: 0.9 });
    const la = loader(ds, 8, true);
    const loss: number[] = [];
    const acc: number[] = [];
    for (let e = 0; e < 2; e++) {
      let l = 0;
      let c = 0;
      let seen = 0;
      for (const [x, y] of la) {
        const n = x.shape[0];
        nb.tidy(() => {
          const out = a.forward(x);
          const batchLoss = lossFn.forward(out, y);
          batchLoss.backward();
          l += batchLoss.item() * n;
          c += nb.metrics.accuracy(out, y) * n;
        });
        optA.step();
        optA.zeroGrad();
        seen += n;
        x.dispose();
        y.dispose();
      }
      loss.push(l / seen);
      acc.push(c / seen);
    }

    const b = mlp(3);
    const initial = weights(b);
    const optB = new nb.optim.SGD(b.parameters(), { lr: 0.1, momentum: 0.9 });
    const valLoader = loader(val, 6);
    const h = await nb.train.fit(b, {
      trainLoader: loader(ds, 8, true),
      valLoader,
      lossFn,
      optimizer: optB,
      epochs: 2,
      metrics: ['accuracy'],
      progress: 'silent',
    });

    expect(h.epochs).toBe(2);
    expect(Object.keys(h.history).sort()).toEqual([
      'accuracy',
      'loss',
      'lr',
      'valAccuracy',
      'valLoss',
    ]);
    for (const v of Object.values(h.history)) expect(v).toHaveLength(2);
    expect(Math.abs(h.history.loss[0] - loss[0])).toBeLessThan(1e-6);
    expect(maxDiff(h.history.loss, loss)).toBeLessThan(1e-12);
    expect(maxDiff(h.history.accuracy, acc)).toBeLessThan(1e-12);
    expect(h.history.lr).toEqual([0.1, 0.1]);
    expect(maxDiff(weights(b), initial)).toBeGreaterThan(1e-3); // it trained
    expect(bits(weights(b))).toEqual(bits(weights(a)));

    // the last epoch's validation numbers are evaluate() on the final weights
    const ev = nb.train.evaluate(b, valLoader, { lossFn, metrics: ['accuracy'] });
    expect(h.history.valLoss[1]).toBe(ev.loss);
    expect(h.history.valAccuracy[1]).toBe(ev.accuracy);
    expect(mode(b)).toBe(true);
  });

  it('trains on an array of [x, y] pairs like on an unshuffled loader, leaving the pairs alive', async () => {
    const ds = dataset(20, 5);
    const lossFn = new nn.CrossEntropyLoss();
    const run = async (trainLoader: nb.train.FitOptions['trainLoader']) => {
      const m = mlp(6);
      await nb.train.fit(m, {
        trainLoader,
        lossFn,
        optimizer: new nb.optim.Adam(m.parameters(), { lr: 0.01 }),
        epochs: 2,
        progress: 'silent',
      });
      return weights(m);
    };
    const pairs = [...loader(ds, 8)];
    const fromPairs = await run(pairs);
    expect(pairs.flat().every((t) => !t.isDisposed)).toBe(true);
    expect(bits(fromPairs)).toEqual(bits(await run(loader(ds, 8))));
    pairs.flat().forEach((t) => t.dispose());
  });

  it('logs {name, fn} metrics for training and validation', async () => {
    const ds = dataset(20, 7);
    const val = dataset(10, 8);
    const meanLogit: nb.train.Metric = { name: 'meanLogit', fn: (out) => out.mean().item() };
    const m = mlp(9);
    const valLoader = loader(val, 4); // batches of 4, 4, 2
    const h = await nb.train.fit(m, {
      trainLoader: loader(ds, 8),
      valLoader,
      lossFn: new nn.CrossEntropyLoss(),
      optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.1 }),
      epochs: 2,
      metrics: ['accuracy', meanLogit],
      progress: 'silent',
    });
    expect(Object.keys(h.history).sort()).toEqual([
      'accuracy',
      'loss',
      'lr',
      'meanLogit',
      'valAccuracy',
      'valLoss',
      'valMeanLogit',
    ]);
    const full = nb.noGrad(() => m.forward(val.tensors[0]));
    expect(Math.abs(h.history.valMeanLogit[1] - full.mean().item())).toBeLessThan(1e-6);
    expect(h.history.valAccuracy[1]).toBeCloseTo(nb.metrics.accuracy(full, val.tensors[1]), 12);
    full.dispose();
  });

  it('rejects bad options and an empty loader with ValueError', async () => {
    const m = mlp(1);
    const base = {
      trainLoader: loader(dataset(8, 1), 4),
      lossFn: new nn.CrossEntropyLoss(),
      optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.1 }),
      progress: 'silent' as const,
    };
    await expect(nb.train.fit(m, { ...base, epochs: 0 })).rejects.toThrow(nb.ValueError);
    await expect(nb.train.fit(m, { ...base, epochs: 1.5 })).rejects.toThrow(nb.ValueError);
    await expect(nb.train.fit(m, { ...base, epochs: 1, gradAccumulation: 0 })).rejects.toThrow(
      nb.ValueError,
    );
    await expect(nb.train.fit(m, { ...base, epochs: 1, trainLoader: [] })).rejects.toThrow(
      /no batches/,
    );
  });
});

describe('evaluate and predict', () => {
  it('evaluate returns the batch-size-weighted mean loss and metrics, in eval mode', () => {
    const ds = dataset(36, 12);
    const m = mlp(13, 0.5); // dropout: train-mode outputs would differ
    const lossFn = new nn.CrossEntropyLoss();
    const l = loader(ds, 8); // 8, 8, 8, 8, 4: a short last batch
    const ev = nb.train.evaluate(m, l, { lossFn, metrics: ['accuracy'] });
    expect(Object.keys(ev).sort()).toEqual(['accuracy', 'loss']);
    expect(mode(m)).toBe(true);

    m.eval();
    let sum = 0;
    const means: number[] = [];
    for (const [x, y] of l) {
      const v = nb.tidy(() => nb.noGrad(() => lossFn.forward(m.forward(x), y).item()));
      sum += v * x.shape[0];
      means.push(v);
      x.dispose();
      y.dispose();
    }
    const [x, y] = ds.tensors;
    const [fullLoss, fullAcc] = nb.tidy(() =>
      nb.noGrad(() => {
        const out = m.forward(x);
        return [lossFn.forward(out, y).item(), nb.metrics.accuracy(out, y)];
      }),
    );
    m.train();
    expect(Math.abs(ev.loss - sum / 36)).toBeLessThan(1e-12);
    expect(Math.abs(ev.loss - fullLoss)).toBeLessThan(1e-6);
    // an unweighted mean of the batch means is measurably different on this data
    const unweighted = means.reduce((s, v) => s + v, 0) / means.length;
    expect(Math.abs(unweighted - fullLoss)).toBeGreaterThan(1e-4);
    expect(ev.accuracy).toBeCloseTo(fullAcc, 12);

    // a model in eval mode stays there
    m.eval();
    const again = nb.train.evaluate(m, l, { lossFn });
    expect(again.loss).toBe(ev.loss);
    expect(mode(m)).toBe(false);
  });

  it('evaluate without a lossFn reports metrics only', () => {
    const ds = dataset(10, 14);
    const m = mlp(15);
    const ev = nb.train.evaluate(m, loader(ds, 4), {
      metrics: [{ name: 'rows', fn: (out) => out.shape[0] }],
    });
    // batches of 4, 4, 2 weighted by size: (4·4 + 4·4 + 2·2) / 10
    expect(ev).toEqual({ rows: 3.6 });
  });

  it('predict equals model.forward in eval mode under noGrad, for a tensor and for a loader', () => {
    const ds = dataset(20, 16);
    const m = mlp(17, 0.5);
    const [x] = ds.tensors;
    m.eval();
    const expected = nb.noGrad(() => m.forward(x));
    m.train();

    // Exact tensor counts: step boundaries (predict's model calls) would also release
    // leftovers of earlier tests, so count with automatic release off.
    nb.setAutoRelease(false);
    onTestFinished(() => nb.setAutoRelease(true));
    const before = nb.memory().tensors;
    const p1 = nb.train.predict(m, x);
    expect(nb.memory().tensors).toBe(before + 1);
    expect(mode(m)).toBe(true);
    expect(p1.requiresGrad).toBe(false);
    expect(p1.shape).toEqual([20, 3]);
    expect(bits(p1.toArray() as Float32Array)).toEqual(bits(expected.toArray() as Float32Array));

    const p2 = nb.train.predict(m, loader(ds, 8)); // 8, 8, 4
    expect(nb.memory().tensors).toBe(before + 2);
    expect(p2.shape).toEqual([20, 3]);
    expect(bits(p2.toArray() as Float32Array)).toEqual(bits(expected.toArray() as Float32Array));

    m.eval();
    nb.train.predict(m, x).dispose();
    expect(mode(m)).toBe(false);
    [p1, p2, expected].forEach((t) => t.dispose());
  });
});

describe('gradient accumulation and clipping', () => {
  it('gradAccumulation k over batches of b equals batches of k·b with plain SGD', async () => {
    const ds = dataset(24, 18);
    const run = async (batchSize: number, gradAccumulation: number) => {
      const m = mlp(19);
      const h = await nb.train.fit(m, {
        trainLoader: loader(ds, batchSize, true),
        lossFn: new nn.CrossEntropyLoss(),
        optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.5 }),
        epochs: 3,
        gradAccumulation,
        progress: 'silent',
      });
      return { w: weights(m), loss: h.history.loss };
    };
    const acc = await run(4, 3);
    const big = await run(12, 1);
    const small = await run(4, 1);
    expect(maxDiff(acc.w, big.w)).toBeLessThan(1e-6);
    expect(maxDiff(acc.loss, big.loss)).toBeLessThan(1e-6);
    // without accumulation the run is clearly different
    expect(maxDiff(small.w, big.w)).toBeGreaterThan(1e-3);
  });

  it('steps the optimizer every k batches and at the end of each epoch', async () => {
    const m = mlp(20);
    const sgd = new nb.optim.SGD(m.parameters(), { lr: 0.1 });
    const steps: number[] = [];
    let batch = -1;
    const optimizer = {
      paramGroups: sgd.paramGroups,
      zeroGrad: () => sgd.zeroGrad(),
      step: () => {
        steps.push(batch + 1);
        sgd.step();
      },
    };
    let schedulerSteps = 0;
    await nb.train.fit(m, {
      trainLoader: loader(dataset(20, 20), 4), // 5 batches
      lossFn: new nn.CrossEntropyLoss(),
      optimizer,
      scheduler: { step: () => void schedulerSteps++ },
      schedulerInterval: 'batch',
      epochs: 2,
      gradAccumulation: 2,
      callbacks: [{ onBatchEnd: (b) => void (batch = b) }],
      progress: 'silent',
    });
    // batch index (0-based) of each step: after batches 1, 3 and the last (4)
    expect(steps).toEqual([1, 3, 4, 1, 3, 4]);
    expect(schedulerSteps).toBe(6);
  });

  it('steps on the last partial window of a loader without a length too', async () => {
    const m = mlp(20);
    const sgd = new nb.optim.SGD(m.parameters(), { lr: 0.1 });
    let steps = 0;
    const optimizer = {
      paramGroups: sgd.paramGroups,
      zeroGrad: () => sgd.zeroGrad(),
      step: () => {
        steps++;
        sgd.step();
      },
    };
    const dl = loader(dataset(20, 20), 4); // 5 batches, but the iterable below has no length
    const trainLoader = { [Symbol.iterator]: () => dl[Symbol.iterator]() };
    await nb.train.fit(m, {
      trainLoader,
      lossFn: new nn.CrossEntropyLoss(),
      optimizer,
      epochs: 2,
      gradAccumulation: 2,
      progress: 'silent',
    });
    expect(steps).toBe(6);
    expect(m.parameters().every((p) => p.grad === null)).toBe(true);
  });

  it('clipGradNorm clips like nb.nn.utils.clipGradNorm before each step', async () => {
    const ds = dataset(24, 22);
    const lossFn = new nn.CrossEntropyLoss();
    const maxNorm = 0.05;

    const a = mlp(23);
    const optA = new nb.optim.SGD(a.parameters(), { lr: 0.5 });
    const la = loader(ds, 8, true);
    const norms: number[] = [];
    for (let e = 0; e < 2; e++) {
      for (const [x, y] of la) {
        nb.tidy(() => lossFn.forward(a.forward(x), y).backward());
        norms.push(nb.nn.utils.clipGradNorm(a.parameters(), maxNorm));
        optA.step();
        optA.zeroGrad();
        x.dispose();
        y.dispose();
      }
    }
    expect(Math.min(...norms)).toBeGreaterThan(maxNorm); // every step was clipped

    const run = async (clipGradNorm?: number) => {
      const m = mlp(23);
      await nb.train.fit(m, {
        trainLoader: loader(ds, 8, true),
        lossFn,
        optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.5 }),
        epochs: 2,
        clipGradNorm,
        progress: 'silent',
      });
      return weights(m);
    };
    const clipped = await run(maxNorm);
    expect(bits(clipped)).toEqual(bits(weights(a)));
    expect(maxDiff(await run(), clipped)).toBeGreaterThan(1e-3);
  });
});

describe('schedulers in fit', () => {
  it('steps an epoch scheduler once per epoch: StepLR lr history is the closed form', async () => {
    const m = mlp(24);
    const optimizer = new nb.optim.SGD(m.parameters(), { lr: 0.1 });
    const scheduler = new nb.optim.StepLR(optimizer, { stepSize: 2, gamma: 0.1 });
    const h = await nb.train.fit(m, {
      trainLoader: loader(dataset(16, 24), 8),
      lossFn: new nn.CrossEntropyLoss(),
      optimizer,
      scheduler,
      epochs: 5,
      progress: 'silent',
    });
    const expected = [0, 1, 2, 3, 4].map((e) => 0.1 * 0.1 ** Math.floor(e / 2));
    h.history.lr.forEach((lr, e) => expect(lr).toBeCloseTo(expected[e], 15));
    expect(optimizer.paramGroups[0].lr).toBeCloseTo(0.1 * 0.1 ** 2, 15);
  });

  it("schedulerInterval 'batch' steps after every batch and not per epoch", async () => {
    const m = mlp(25);
    const optimizer = new nb.optim.SGD(m.parameters(), { lr: 0.1 });
    const scheduler = new nb.optim.StepLR(optimizer, { stepSize: 3, gamma: 0.5 });
    const lrs: number[] = [];
    const h = await nb.train.fit(m, {
      trainLoader: loader(dataset(36, 25), 8), // 5 batches
      lossFn: new nn.CrossEntropyLoss(),
      optimizer,
      scheduler,
      schedulerInterval: 'batch',
      epochs: 2,
      callbacks: [{ onBatchEnd: () => void lrs.push(optimizer.paramGroups[0].lr) }],
      progress: 'silent',
    });
    expect(lrs).toEqual(Array.from({ length: 10 }, (_, k) => 0.1 * 0.5 ** Math.floor((k + 1) / 3)));
    expect(h.history.lr).toEqual([0.1 * 0.5 ** 1, 0.1 * 0.5 ** 3]);
  });

  it('ReduceLROnPlateau receives valLoss (loss without a valLoader) and cuts lr after patience', async () => {
    const m = mlp(26);
    // an optimizer that never moves the weights: every epoch has the same valLoss
    const optimizer = { paramGroups: [{ lr: 1 }], zeroGrad: () => m.zeroGrad(), step: () => {} };
    const plateau = new nb.optim.ReduceLROnPlateau(optimizer, { patience: 1, factor: 0.5 });
    const seen: number[] = [];
    const scheduler = {
      step: (v?: number) => {
        seen.push(v!);
        plateau.step(v);
      },
    };
    const base = {
      trainLoader: loader(dataset(16, 26), 8, true),
      lossFn: new nn.CrossEntropyLoss(),
      optimizer,
      scheduler,
      progress: 'silent' as const,
    };
    const h = await nb.train.fit(m, { ...base, valLoader: loader(dataset(12, 27), 6), epochs: 6 });
    expect(new Set(h.history.valLoss).size).toBe(1);
    expect(h.history.valLoss[0]).not.toBe(h.history.loss[0]);
    expect(seen).toEqual(h.history.valLoss);
    expect(h.history.lr).toEqual([1, 1, 1, 0.5, 0.5, 0.25]);
    expect(optimizer.paramGroups[0].lr).toBe(0.25);

    seen.length = 0;
    const h2 = await nb.train.fit(m, { ...base, epochs: 2 });
    expect(seen).toEqual(h2.history.loss);
  });
});

describe('EarlyStopping', () => {
  it('stops after patience + 1 epochs without improvement', async () => {
    const es = new nb.train.EarlyStopping({ monitor: 'score', patience: 2 });
    const values = [1, 0.5, 0.75, 0.5, 0.625, 0.25, 0.125, 0.0625];
    const { h } = await runScripted(values, [es]);
    expect(h.history.score).toEqual(values.slice(0, 5));
    expect(h.history.loss).toHaveLength(5);
    expect(h.epochs).toBe(5);
    expect(es.bestEpoch).toBe(1);
    expect(es.stoppedEpoch).toBe(4);

    // patience 0 stops at the first epoch that does not improve
    const es0 = new nb.train.EarlyStopping({ monitor: 'score' });
    const r0 = await runScripted([1, 2, 0.5, 0.25], [es0]);
    expect(r0.h.history.loss).toHaveLength(2);
    expect([es0.bestEpoch, es0.stoppedEpoch]).toEqual([0, 1]);

    // always improving: runs to the end, stoppedEpoch stays -1
    const es1 = new nb.train.EarlyStopping({ monitor: 'score', patience: 1 });
    const r1 = await runScripted([1, 0.875, 0.75, 0.5], [es1]);
    expect(r1.h.history.loss).toHaveLength(4);
    expect([es1.bestEpoch, es1.stoppedEpoch]).toEqual([3, -1]);
  });

  it('an improvement must beat the best by more than minDelta', async () => {
    const values = [1, 0.875, 0.8125, 0.75, 0.5, 0.25];
    const plain = new nb.train.EarlyStopping({ monitor: 'score', patience: 1 });
    expect((await runScripted(values, [plain])).h.history.loss).toHaveLength(6);
    expect(plain.bestEpoch).toBe(5);

    const delta = new nb.train.EarlyStopping({ monitor: 'score', patience: 1, minDelta: 0.25 });
    expect((await runScripted(values, [delta])).h.history.loss).toHaveLength(3);
    expect([delta.bestEpoch, delta.stoppedEpoch]).toEqual([0, 2]);

    // exactly minDelta better is not an improvement
    const exact = new nb.train.EarlyStopping({ monitor: 'score', minDelta: 0.25 });
    expect((await runScripted([1, 0.75, 0.5], [exact])).h.history.loss).toHaveLength(2);
    expect([exact.bestEpoch, exact.stoppedEpoch]).toEqual([0, 1]);
  });

  it("mode 'max' (and 'auto' on an accuracy-like name) waits for increases", async () => {
    const values = [0.25, 0.5, 0.75, 0.5, 0.5, 1];
    const max = new nb.train.EarlyStopping({ monitor: 'score', patience: 1, mode: 'max' });
    expect((await runScripted(values, [max])).h.history.loss).toHaveLength(5);
    expect([max.bestEpoch, max.stoppedEpoch]).toEqual([2, 4]);

    const min = new nb.train.EarlyStopping({ monitor: 'score', patience: 1 }); // auto → min
    expect((await runScripted(values, [min])).h.history.loss).toHaveLength(3);
    expect([min.bestEpoch, min.stoppedEpoch]).toEqual([0, 2]);

    const auto = new nb.train.EarlyStopping({ monitor: 'acc', patience: 1 }); // auto → max
    expect((await runScripted(values, [auto], 'acc')).h.history.loss).toHaveLength(5);
    expect([auto.bestEpoch, auto.stoppedEpoch]).toEqual([2, 4]);
  });

  it('restoreBestWeights restores exactly the best epoch weights', async () => {
    const snapshots: Record<string, Float32Array>[] = [];
    const snap: nb.train.Callback = {
      onEpochEnd: (_e, _logs, state) => {
        const sd = state.model.stateDict();
        snapshots.push(
          Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.toArray() as Float32Array])),
        );
        Object.values(sd).forEach((t) => t.dispose());
      },
    };
    const es = new nb.train.EarlyStopping({
      monitor: 'score',
      patience: 2,
      restoreBestWeights: true,
    });
    const before = nb.memory().tensors;
    const { model, h } = await runScripted([1, 0.5, 0.25, 0.5, 0.75, 0.875, 0.125], [snap, es]);
    expect(h.history.loss).toHaveLength(6);
    expect([es.bestEpoch, es.stoppedEpoch]).toEqual([2, 5]);
    const sd = model.stateDict();
    for (const [k, t] of Object.entries(sd)) {
      expect(bits(t.toArray() as Float32Array), k).toEqual(bits(snapshots[2][k]));
    }
    Object.values(sd).forEach((t) => t.dispose());
    // the weights did move after the best epoch, and the snapshot was freed
    expect(maxDiff(snapshots[5]['0.weight'], snapshots[2]['0.weight'])).toBeGreaterThan(1e-4);
    expect(nb.memory().tensors - before).toBe(model.parameters().length);
  });

  it('a monitored value that is not logged throws ValueError', async () => {
    const m = mlp(27);
    const opts = {
      trainLoader: loader(dataset(8, 27), 4),
      lossFn: new nn.CrossEntropyLoss(),
      optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.1 }),
      epochs: 2,
      progress: 'silent' as const,
    };
    const es = new nb.train.EarlyStopping(); // valLoss, but no valLoader
    await expect(nb.train.fit(m, { ...opts, callbacks: [es] })).rejects.toThrow(nb.ValueError);
    await expect(nb.train.fit(m, { ...opts, callbacks: [es] })).rejects.toThrow(/valLoss/);
    const mc = new nb.train.ModelCheckpoint({ monitor: 'f1', save: () => {} });
    await expect(nb.train.fit(m, { ...opts, callbacks: [mc] })).rejects.toThrow(nb.ValueError);
  });
});

describe('ModelCheckpoint', () => {
  it('saveBestOnly saves on improvement; the last bytes reload into a fresh model', async () => {
    const values = [1, 0.5, 0.75, 0.25, 0.25, 0.5];
    const files: Uint8Array[] = [];
    const logged: number[] = [];
    const weightsByEpoch: Float32Array[] = [];
    const ck = new nb.train.ModelCheckpoint({
      monitor: 'score',
      save: (sd, _epoch, logs) => {
        files.push(nb.io.saveSafetensors(sd));
        logged.push(logs.score);
      },
    });
    const rec: nb.train.Callback = {
      onEpochEnd: (_e, _l, s) => void weightsByEpoch.push(weights(s.model)),
    };
    const before = nb.memory().tensors;
    const { model } = await runScripted(values, [rec, ck]);
    expect(nb.memory().tensors - before).toBe(model.parameters().length);
    expect(ck.savedEpochs).toEqual([0, 1, 3]);
    expect(files).toHaveLength(3);
    expect(logged).toEqual([1, 0.5, 0.25]);

    const fresh = mlp(99);
    expect(maxDiff(weights(fresh), weightsByEpoch[3])).toBeGreaterThan(1e-3);
    const tensors = nb.io.loadSafetensors(files[2]);
    expect(Object.keys(tensors).sort()).toEqual(['0.bias', '0.weight', '2.bias', '2.weight']);
    fresh.loadStateDict(tensors);
    Object.values(tensors).forEach((t) => t.dispose());
    expect(bits(weights(fresh))).toEqual(bits(weightsByEpoch[3]));
    expect(maxDiff(weights(model), weightsByEpoch[3])).toBeGreaterThan(1e-4);
  });

  it('saveBestOnly: false saves every epoch', async () => {
    const saved: number[] = [];
    const ck = new nb.train.ModelCheckpoint({
      saveBestOnly: false,
      save: (_sd, epoch) => void saved.push(epoch),
    });
    await runScripted([1, 2, 3, 4], [ck]); // never improves, and valLoss is not even logged
    expect(ck.savedEpochs).toEqual([0, 1, 2, 3]);
    expect(saved).toEqual([0, 1, 2, 3]);
  });
});

describe('callbacks', () => {
  it('runs the hooks in order, awaiting async ones, with running batch logs', async () => {
    const events: string[] = [];
    const batchLoss: number[] = [];
    const first: nb.train.Callback = {
      onTrainBegin: () => void events.push('trainBegin'),
      onEpochBegin: (e, s) => void events.push(`epochBegin ${e} ${s.epoch}`),
      onBatchEnd: (b, logs) => {
        events.push(`batch ${b}`);
        batchLoss.push(logs.loss);
      },
      onEpochEnd: async (e) => {
        await new Promise((r) => setTimeout(r, 2));
        events.push(`epochEnd ${e}`);
      },
      onTrainEnd: (logs) => void events.push(`trainEnd ${Object.keys(logs).join(',')}`),
    };
    const second: nb.train.Callback = { onEpochEnd: (e) => void events.push(`second ${e}`) };
    const m = mlp(28);
    const h = await nb.train.fit(m, {
      trainLoader: loader(dataset(20, 28), 8), // 8, 8, 4
      lossFn: new nn.CrossEntropyLoss(),
      optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.1 }),
      epochs: 2,
      callbacks: [first, second],
      progress: 'silent',
    });
    expect(events).toEqual([
      'trainBegin',
      'epochBegin 0 0',
      'batch 0',
      'batch 1',
      'batch 2',
      'epochEnd 0',
      'second 0',
      'epochBegin 1 1',
      'batch 0',
      'batch 1',
      'batch 2',
      'epochEnd 1',
      'second 1',
      'trainEnd loss,lr',
    ]);
    // the batch logs are the running mean; after the last batch it is the epoch's loss
    expect(batchLoss[2]).toBe(h.history.loss[0]);
    expect(batchLoss[5]).toBe(h.history.loss[1]);
  });

  it('state.stopTraining set in onEpochEnd stops after that epoch', async () => {
    const ends: number[] = [];
    const stopper: nb.train.Callback = {
      onEpochEnd: (e, _logs, state) => {
        if (e === 1) state.stopTraining = true;
      },
      onTrainEnd: (_l, state) => void ends.push(state.epoch),
    };
    const m = mlp(29);
    const h = await nb.train.fit(m, {
      trainLoader: loader(dataset(8, 29), 4),
      lossFn: new nn.CrossEntropyLoss(),
      optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.1 }),
      epochs: 5,
      callbacks: [stopper],
      progress: 'silent',
    });
    expect(h.epochs).toBe(2);
    expect(h.history.loss).toHaveLength(2);
    expect(ends).toEqual([1]);
  });
});

describe('Progress', () => {
  function sink(isTTY: boolean) {
    const out: string[] = [];
    return { out, sink: { isTTY, write: (s: string) => void out.push(s) } };
  }
  /** performance.now() returns these (in ms), one per call. */
  function clock(...ms: number[]) {
    const spy = vi.spyOn(performance, 'now');
    for (const t of ms) spy.mockReturnValueOnce(t);
  }

  it("'lines' writes one line per epoch with the epoch, logs, samples/s and time", () => {
    const { out, sink: s } = sink(false);
    const p = new Progress('lines', 2, s);
    clock(1000, 3000);
    p.epochBegin();
    p.batch(0, 1, 2, 8, { loss: 1 });
    p.batch(0, 2, 2, 8, { loss: 0.75 });
    p.epochEnd(0, { loss: 0.75, lr: 0.001 });
    expect(out).toEqual(['epoch 1/2 · loss 0.7500 · lr 0.0010 · 8 samples/s · 2.0s\n']);
    clock(0, 500);
    p.epochBegin();
    p.batch(1, 1, 1, 4, { loss: 0.5 });
    p.epochEnd(1, { loss: 0.5, valLoss: 2e-5 });
    expect(out).toHaveLength(2);
    expect(out[1]).toBe('epoch 2/2 · loss 0.5000 · valLoss 2.000e-5 · 8 samples/s · 0.5s\n');
  });

  it("'bar' redraws with \\r, the count, samples/s and the ETA, then ends the line", () => {
    const { out, sink: s } = sink(true);
    const p = new Progress('bar', 3, s);
    clock(1000, 2000, 2050, 3000, 3080, 3080);
    p.epochBegin();
    p.batch(0, 1, 4, 8, { loss: 1 }); // t = 1 s: 1 of 4 done, 3 s to go
    p.batch(0, 2, 4, 8, { loss: 1 }); // 50 ms after the last draw: skipped
    p.batch(0, 3, 4, 8, { loss: 1 }); // t = 2 s: 24 samples, 2/3 s to go
    p.batch(0, 4, 4, 8, { loss: 1 }); // 80 ms after the last draw, but the last batch draws
    p.epochEnd(0, { loss: 1 });
    expect(out).toHaveLength(4);
    expect(out[0].startsWith('\r')).toBe(true);
    expect(out[0]).toContain('epoch 1/3 [');
    expect(out[0]).toContain('] 1/4 · loss 1.0000 · 8 samples/s · ETA 3.0s');
    expect(out[1]).toContain('] 3/4 · loss 1.0000 · 12 samples/s · ETA 0.7s');
    expect(out[2]).toContain('] 4/4 · loss 1.0000 · 15 samples/s · ETA 0.0s');
    expect(out.slice(0, 3).every((l) => l.startsWith('\r') && !l.includes('\n'))).toBe(true);
    expect(out[3].startsWith('\r')).toBe(true);
    expect(out[3].endsWith('epoch 1/3 · loss 1.0000 · 15 samples/s · 2.1s\n')).toBe(true);
  });

  it("'auto' picks the bar on a TTY and lines otherwise; 'silent' writes nothing", () => {
    for (const [mode, tty, bar] of [
      ['auto', true, true],
      ['auto', false, false],
      ['silent', true, null],
    ] as const) {
      const { out, sink: s } = sink(tty);
      const p = new Progress(mode, 1, s);
      p.epochBegin();
      p.batch(0, 1, 1, 2, { loss: 1 });
      p.epochEnd(0, { loss: 1 });
      if (bar === null) expect(out).toEqual([]);
      else expect(out).toHaveLength(bar ? 2 : 1);
      if (bar) expect(out.every((l) => l.startsWith('\r'))).toBe(true);
    }
  });

  it("fit with progress 'silent' writes nothing to stdout; 'lines' writes a line per epoch", async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const run = async (progress: nb.train.ProgressMode) => {
      const m = mlp(30);
      await nb.train.fit(m, {
        trainLoader: loader(dataset(8, 30), 4),
        lossFn: new nn.CrossEntropyLoss(),
        optimizer: new nb.optim.SGD(m.parameters(), { lr: 0.1 }),
        epochs: 2,
        progress,
      });
    };
    await run('silent');
    expect(write).not.toHaveBeenCalled();
    await run('lines');
    const lines = write.mock.calls.map((c) => String(c[0]));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^epoch 1\/2 · loss \d\.\d{4} · lr 0\.1000 · \d+ samples\/s/);
    expect(lines[1]).toMatch(/^epoch 2\/2 /);
  });
});

describe('memory', () => {
  it('keeps the heap flat across epochs and frees everything but the optimizer state', async () => {
    const ds = dataset(36, 31);
    const val = dataset(12, 32);
    const m = mlp(33, 0.25);
    const optimizer = new nb.optim.Adam(m.parameters(), { lr: 0.01 });
    const scheduler = new nb.optim.StepLR(optimizer, { stepSize: 2 });
    const es = new nb.train.EarlyStopping({ patience: 10, restoreBestWeights: true });
    const ck = new nb.train.ModelCheckpoint({ save: (sd) => void nb.io.saveSafetensors(sd) });
    const marks: { tensors: number; bytes: number }[] = [];
    const trainLoader = loader(ds, 8, true);
    const valLoader = loader(val, 5);
    const before = nb.memory();
    await nb.train.fit(m, {
      trainLoader,
      valLoader,
      lossFn: new nn.CrossEntropyLoss(),
      optimizer,
      scheduler,
      epochs: 5,
      metrics: ['accuracy', { name: 'meanLogit', fn: (out) => out.mean().item() }],
      callbacks: [es, ck, { onEpochEnd: () => void marks.push({ ...nb.memory() }) }],
      progress: 'silent',
    });
    expect(marks).toHaveLength(5);
    expect(marks[4].tensors).toBe(marks[1].tensors);
    expect(marks[4].bytes).toBe(marks[1].bytes);

    // Adam keeps expAvg and expAvgSq per parameter; no gradients remain
    const params = m.parameters();
    expect(params.every((p) => p.grad === null)).toBe(true);
    const paramBytes = params.reduce((s, p) => s + 4 * p.size, 0);
    const after = nb.memory();
    expect(after.tensors).toBe(before.tensors + 2 * params.length);
    expect(after.bytes).toBe(before.bytes + 2 * paramBytes);
    optimizer.dispose();
    expect(nb.memory().tensors).toBe(before.tensors);
    expect(nb.memory().bytes).toBe(before.bytes);
  });
});
