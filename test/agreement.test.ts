// Training agrees with PyTorch: the same initial weights (PyTorch's, loaded from safetensors)
// and the same batches give losses within 1e-4 relative of PyTorch's at each of 50 steps, for
// SGD with momentum, Adam, AdamW and RMSprop, with cross-entropy and with MSE. And a state
// dict saved by nabla is the file that scripts/fixtures/make_train_fixtures.py loads into
// PyTorch (it checks the outputs agree), so both directions are covered.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

const dir = new URL('./fixtures/train/', import.meta.url);
const runs = JSON.parse(readFileSync(new URL('runs.json', dir), 'utf8')) as {
  steps: number;
  x: number[];
  xShape: [number, number, number];
  yClass: number[];
  yReg: number[];
  optimizers: Record<string, { lr: number; momentum?: number; weightDecay?: number }>;
  runs: Record<string, number[]>;
};

beforeAll(async () => {
  await nb.init();
});

function mlp(): nb.nn.Sequential {
  return new nb.nn.Sequential(
    new nb.nn.Linear(10, 32),
    new nb.nn.ReLU(),
    new nb.nn.Linear(32, 32),
    new nb.nn.ReLU(),
    new nb.nn.Linear(32, 5),
  );
}

function makeOptimizer(name: string, params: nb.Tensor[]) {
  const o = runs.optimizers[name];
  switch (name) {
    case 'sgd_momentum':
      return new nb.optim.SGD(params, { lr: o.lr, momentum: o.momentum });
    case 'adam':
      return new nb.optim.Adam(params, { lr: o.lr });
    case 'adamw':
      return new nb.optim.AdamW(params, { lr: o.lr, weightDecay: o.weightDecay });
    case 'rmsprop':
      return new nb.optim.RMSprop(params, { lr: o.lr });
  }
  throw new Error(`unknown optimizer ${name}`);
}

describe('50 training steps agree with PyTorch', () => {
  const [batches, batch] = runs.xShape;
  for (const [key, expected] of Object.entries(runs.runs)) {
    it(key, () => {
      const [optName, lossName] = key.split('/');
      const model = mlp();
      const init = nb.io.loadSafetensors(readFileSync(new URL('init.safetensors', dir)));
      model.loadStateDict(init);
      const optimizer = makeOptimizer(optName, model.parameters());
      const lossFn =
        lossName === 'cross_entropy' ? new nb.nn.CrossEntropyLoss() : new nb.nn.MSELoss();
      const x = nb.tensor(runs.x, { shape: runs.xShape, dtype: 'float32' });
      const yClass = nb.tensor(runs.yClass, { shape: [batches, batch], dtype: 'int32' });
      const yReg = nb.tensor(runs.yReg, { shape: [batches, batch, 5], dtype: 'float32' });
      const losses: number[] = [];
      for (let step = 0; step < runs.steps; step++) {
        losses.push(
          nb.tidy(() => {
            const b = nb.tensor([step % batches], { dtype: 'int32' });
            const xb = x.indexSelect(0, b).squeeze(0);
            const yb = (lossName === 'cross_entropy' ? yClass : yReg).indexSelect(0, b).squeeze(0);
            optimizer.zeroGrad();
            const loss = lossFn.forward(model.forward(xb), yb);
            loss.backward();
            optimizer.step();
            return loss.item();
          }),
        );
      }
      let worst = 0;
      losses.forEach(
        (l, i) => (worst = Math.max(worst, Math.abs(l - expected[i]) / Math.abs(expected[i]))),
      );
      expect(worst, `worst relative loss difference over ${runs.steps} steps`).toBeLessThan(1e-4);
      // The run must really train, or agreement would be trivial.
      expect(new Set(losses.map((l) => l.toFixed(6))).size).toBeGreaterThan(runs.steps / 2);
    });
  }
});

describe('state dicts move between nabla and PyTorch', () => {
  it('loads PyTorch-named weights and gives PyTorch names back', () => {
    const model = mlp();
    const init = nb.io.loadSafetensors(readFileSync(new URL('init.safetensors', dir)));
    expect(Object.keys(init).sort()).toEqual(Object.keys(model.stateDict()).sort());
    model.loadStateDict(init);
    for (const [k, t] of Object.entries(model.stateDict())) {
      expect(Array.from(t.toArray()), k).toEqual(Array.from(init[k].toArray()));
    }
  });

  it('writes byte for byte the nabla_state.safetensors that PyTorch was checked against', async () => {
    // The script runs against the built package, so use that instance here too.
    const dist = (await import('nabla')) as unknown as typeof nb;
    await dist.init();
    const { nablaStateModel } = await import('../scripts/fixtures/write_nabla_state.mjs');
    const committed = readFileSync(new URL('nabla_state.safetensors', dir));
    const ours = dist.io.saveSafetensors(nablaStateModel().stateDict());
    expect(Buffer.from(ours).equals(committed)).toBe(true);
  });
});
