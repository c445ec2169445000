// BatchNorm1d/2d, interpolate / Upsample and Dropout2d against PyTorch 1.13
// (test/fixtures/conv.json "batchnorm" and "interpolate", from
// scripts/fixtures/make_conv_fixtures.py). Batch norm: several training steps (outputs, input
// and parameter gradients, running statistics and num_batches_tracked after each), then an
// eval-mode step, for momentum / momentum null / eps / affine / trackRunningStats; the state
// dict's names and order. Interpolation: nearest and (bi)linear, sizes and scale factors,
// alignCorners. Dropout2d: whole channels, scaled survivors, seeded.
//
// Tolerances: rtol 1e-5, atol 1e-5 (a normalised value near zero carries its mean's rounding).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

interface Shaped {
  shape: number[];
  data: number[];
}
type State = [string, number[], number[]][];
interface BnStep {
  training: boolean;
  input: Shaped;
  out: Shaped;
  upstream: number[];
  grads: { input: number[]; params: Record<string, number[]> };
  state: State;
}
interface BnCase {
  name: string;
  kind: 'BatchNorm1d' | 'BatchNorm2d';
  numFeatures: number;
  options: Record<string, unknown>;
  initial: State;
  steps: BnStep[];
}
interface InterpCase {
  name: string;
  options: nb.nn.functional.InterpolateOptions;
  input: Shaped;
  out: Shaped;
  upstream: number[];
  grad: number[];
}

const fx = JSON.parse(readFileSync('test/fixtures/conv.json', 'utf8')) as {
  batchnorm: BnCase[];
  interpolate: InterpCase[];
};
const TOL = { rtol: 1e-5, atol: 1e-5 };
const values = (t: nb.Tensor | null) => Array.from(t!.toArray());
const fromState = (s: State) =>
  Object.fromEntries(
    s.map(([k, shape, data]) => [
      k,
      nb.tensor(data, { shape, dtype: k.endsWith('tracked') ? 'int32' : 'float32' }),
    ]),
  );

describe('BatchNorm vs PyTorch', () => {
  for (const c of fx.batchnorm) {
    it(c.name, () => {
      const Ctor = c.kind === 'BatchNorm2d' ? nn.BatchNorm2d : nn.BatchNorm1d;
      const m = new Ctor(c.numFeatures, c.options);
      // Names, order and shapes of the state dict are torch's; it loads strictly.
      expect(Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape])).toEqual(
        c.initial.map(([k, shape]) => [k, shape]),
      );
      m.loadStateDict(fromState(c.initial));
      c.steps.forEach((s, i) => {
        nb.tidy(() => {
          m.train(s.training);
          m.zeroGrad();
          const x = nb.tensor(s.input.data, { shape: s.input.shape, requiresGrad: true });
          const y = m.forward(x);
          assertClose(values(y), s.out.data, TOL, `${c.name} step ${i} out`);
          y.backward(nb.tensor(s.upstream, { shape: y.shape }));
          assertClose(values(x.grad), s.grads.input, TOL, `${c.name} step ${i} d input`);
          for (const [k, p] of m.namedParameters()) {
            assertClose(values(p.grad), s.grads.params[k], TOL, `${c.name} step ${i} d ${k}`);
          }
          const sd = m.stateDict();
          for (const [k, , data] of s.state) {
            if (k.endsWith('tracked')) expect(values(sd[k]), k).toEqual(data);
            else assertClose(values(sd[k]), data, TOL, `${c.name} step ${i} ${k}`);
          }
        });
      });
      m.dispose();
    });
  }

  it('keeps the state dict in PyTorch order inside containers', () => {
    const model = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2), new nn.ReLU());
    expect(Object.keys(model.stateDict())).toEqual([
      '0.weight',
      '0.bias',
      '1.weight',
      '1.bias',
      '1.running_mean',
      '1.running_var',
      '1.num_batches_tracked',
    ]);
    model.dispose();
  });

  it('prints and rejects like PyTorch', () => {
    expect(String(new nn.BatchNorm2d(8))).toBe(
      'BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)',
    );
    expect(String(new nn.BatchNorm1d(4, { momentum: null, affine: false }))).toBe(
      'BatchNorm1d(4, eps=1e-05, momentum=None, affine=False, track_running_stats=True)',
    );
    const bn = new nn.BatchNorm1d(3);
    expect(() => bn.forward(nb.zeros([1, 3]))).toThrow(
      /expected more than 1 value per channel when training, got input size \[1, 3\]/,
    );
    // The failed call left the running statistics as they were.
    expect(values(bn.runningMean)).toEqual([0, 0, 0]);
    expect(values(bn.numBatchesTracked)).toEqual([0]);
    expect(() => bn.forward(nb.zeros([4, 2]))).toThrow(
      /BatchNorm1d: input \[4, 2\] has 2 channels/,
    );
    expect(() => new nn.BatchNorm2d(2).forward(nb.zeros([2, 2, 3]))).toThrow(
      /BatchNorm2d: expected a 4-D input, got \[2, 2, 3\]/,
    );
    expect(() => new nn.BatchNorm2d(0)).toThrow(/numFeatures must be a positive integer/);
    bn.eval();
    expect(values(bn.forward(nb.ones([1, 3])))).toEqual(
      Array(3).fill(Math.fround(1 / Math.sqrt(1 + 1e-5))),
    );
  });

  it('gradcheck through training-mode batch statistics', () => {
    nb.manualSeed(5);
    const F = nn.functional;
    const r = nb.gradcheck(
      (x, w, b) => F.batchNorm(x, { weight: w, bias: b, training: true }),
      [
        nb.randn([3, 2, 2, 3], { requiresGrad: true }),
        nb.randn([2], { requiresGrad: true }),
        nb.randn([2], { requiresGrad: true }),
      ],
    );
    expect(r.ok, `${r.maxAbsError}`).toBe(true);
  });

  it('a training loop keeps the live tensors flat', () => {
    nb.manualSeed(6);
    const model = new nn.Sequential(
      new nn.Conv2d(1, 3, 3),
      new nn.BatchNorm2d(3),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Flatten(),
      new nn.Linear(3 * 2 * 2, 2),
    );
    const opt = new nb.optim.Adam(model.parameters(), { lr: 0.01 });
    const x = nb.keep(nb.randn([4, 1, 6, 6]));
    const y = nb.keep(nb.tensor([0, 1, 1, 0], { dtype: 'int32' }));
    const live: number[] = [];
    for (let i = 0; i < 12; i++) {
      opt.zeroGrad();
      nn.functional.crossEntropy(model.forward(x) as nb.Tensor, y).backward();
      opt.step();
      live.push(nb.memory().tensors);
    }
    expect(live[11]).toBe(live[4]);
    model.eval();
    for (let i = 0; i < 5; i++) nb.noGrad(() => model.forward(x));
    model.dispose();
  });
});

describe('interpolate vs PyTorch', () => {
  for (const c of fx.interpolate) {
    it(c.name, () => {
      nb.tidy(() => {
        const x = nb.tensor(c.input.data, { shape: c.input.shape, requiresGrad: true });
        const y = new nn.Upsample(c.options).forward(x);
        expect(y.shape).toEqual(c.out.shape);
        assertClose(values(y), c.out.data, TOL, `${c.name} out`);
        y.backward(nb.tensor(c.upstream, { shape: y.shape }));
        assertClose(values(x.grad), c.grad, TOL, `${c.name} d input`);
      });
    });
  }

  it('prints and rejects like PyTorch', () => {
    expect(String(new nn.Upsample({ scaleFactor: 2 }))).toBe(
      'Upsample(scale_factor=2.0, mode=nearest)',
    );
    expect(String(new nn.Upsample({ size: [4, 5], mode: 'bilinear' }))).toBe(
      'Upsample(size=(4, 5), mode=bilinear)',
    );
    const F = nn.functional;
    const x = nb.zeros([1, 2, 3, 3]);
    expect(() => F.interpolate(x, {})).toThrow(/exactly one of size and scaleFactor/);
    expect(() => F.interpolate(x, { size: 4, mode: 'linear' })).toThrow(
      /mode 'linear' needs a 3-D input/,
    );
    expect(() => F.interpolate(x, { size: 4, alignCorners: true })).toThrow(/alignCorners/);
    expect(() => F.interpolate(x, { size: [4, 4, 4] })).toThrow(/size must have 2 entries/);
  });
});

describe('Dropout2d', () => {
  it('zeroes whole channels with probability p and scales the rest, reproducibly', () => {
    nb.manualSeed(11);
    const d = new nn.Dropout2d(0.25);
    const x = nb.ones([50, 40, 2, 3]);
    const y = values(d.forward(x)) as number[];
    let dropped = 0;
    for (let ch = 0; ch < 50 * 40; ch++) {
      const vals = y.slice(ch * 6, ch * 6 + 6);
      expect(new Set(vals).size, `channel ${ch}`).toBe(1);
      if (vals[0] === 0) dropped++;
      else expect(vals[0]).toBeCloseTo(1 / 0.75, 6);
    }
    expect(dropped / 2000).toBeGreaterThan(0.22);
    expect(dropped / 2000).toBeLessThan(0.28);
    nb.manualSeed(11);
    expect(values(d.forward(x))).toEqual(y);
    d.eval();
    expect(d.forward(x)).toBe(x);
    expect(String(d)).toBe('Dropout2d(p=0.25, inplace=False)');
  });
});
