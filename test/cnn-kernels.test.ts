// The fused CNN kernels (conv, pooling, batch norm) against the compositions they replace
// (nb.composed runs the same call through the composition): outputs and every gradient over a
// grid of shapes and options, plus finite differences through the fused backward. The PyTorch
// fixtures (conv, pool, batchnorm, resnet tests) run the fused path by default.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { assertClose } from './helpers/close.js';
import type { ConvOptions } from '../ts/ops/conv.js';
import type { AvgPoolOptions, MaxPoolOptions } from '../ts/ops/pool.js';

beforeAll(async () => {
  await nb.init();
});

const F = nb.nn.functional;
const arr = (t: nb.Tensor | null) => Array.from(t!.toArray() as Float32Array);
const TOL = { rtol: 1e-5, atol: 1e-5 };

/**
 * Runs `fn` on fresh leaves (copies of `inputs`) fused and composed: the same output shape and
 * values, and the same gradient for every input, from the same upstream gradient.
 */
function sameAsComposed(
  label: string,
  fn: (...xs: nb.Tensor[]) => nb.Tensor,
  inputs: nb.Tensor[],
  families: ('conv' | 'pool' | 'batchNorm')[],
  tol = TOL,
): void {
  nb.tidy(() => {
    const run = () => {
      const leaves = inputs.map((t) => t.detach().clone().requiresGrad_());
      const y = fn(...leaves);
      nb.manualSeed(5);
      const up = nb.randn(y.shape);
      y.backward(up);
      return { y: arr(y), shape: y.shape, grads: leaves.map((l) => (l.grad ? arr(l.grad) : [])) };
    };
    const f = run();
    const c = nb.composed(run, families);
    expect(f.shape, label).toEqual(c.shape);
    assertClose(f.y, c.y, tol, `${label} out`);
    f.grads.forEach((g, i) => assertClose(g, c.grads[i], tol, `${label} grad ${i}`));
  });
}

const r = (shape: number[]) => nb.randn(shape);

describe('fused conv2d equals the composition', () => {
  // One input channel runs the direct kernels (conv_direct.rs), which sum each weight's
  // 2352 products in another order than the composition's GEMM: both are within 6e-5 of an
  // f64 reference there (the direct one closer, see below), so that case's atol is 1e-4.
  const cases: [string, number[], number[], ConvOptions, boolean, typeof TOL?][] = [
    ['3x3 pad 1', [2, 3, 9, 9], [5, 3, 3, 3], { padding: 1 }, true],
    [
      '5x5 lenet c1',
      [3, 1, 28, 28],
      [6, 1, 5, 5],
      { padding: 2 },
      true,
      { rtol: 1e-5, atol: 1e-4 },
    ],
    ['1 channel, tails', [2, 1, 9, 13], [5, 1, 3, 4], { padding: [1, 2] }, true],
    ['1 channel, stride 2', [2, 1, 9, 13], [3, 1, 3, 3], { stride: 2 }, true],
    ['5x5 lenet c2', [3, 6, 14, 14], [16, 6, 5, 5], {}, true],
    ['stride 2', [2, 4, 11, 10], [6, 4, 3, 3], { stride: 2, padding: 1 }, false],
    ['dilation 2, rect', [2, 3, 12, 13], [4, 3, 3, 2], { dilation: [2, 1], padding: [2, 0] }, true],
    ['groups 2', [2, 4, 17, 17], [6, 2, 3, 3], { groups: 2, padding: 1 }, true],
    ['depthwise', [2, 4, 10, 18], [4, 1, 3, 3], { groups: 4, padding: 1 }, true],
    ['depthwise x2', [2, 3, 9, 20], [6, 1, 3, 3], { groups: 3, stride: 2 }, true],
    ['1x1', [2, 8, 7, 9], [5, 8, 1, 1], {}, true],
    ['1x1 stride 2', [2, 8, 7, 9], [5, 8, 1, 1], { stride: 2 }, false],
    ['wide rows', [1, 3, 6, 40], [4, 3, 3, 3], { padding: [1, 2] }, true],
    // Planes past one column chunk (288 taps: 455 columns) pack from the image and chunk the
    // gradients off row boundaries; the others unfold by whole rows (row stride 2, copies
    // shorter than a vector, a column stride that misses the row path).
    ['implicit packing', [1, 32, 24, 24], [4, 32, 3, 3], { padding: 1 }, true],
    ['row stride 2', [2, 3, 11, 9], [4, 3, 3, 3], { stride: [2, 1], padding: 1 }, true],
    ['short rows, wide pad', [2, 2, 7, 5], [3, 2, 3, 3], { padding: [0, 2] }, true],
    ['column stride 2', [2, 2, 9, 13], [3, 2, 3, 3], { stride: [1, 2], padding: 1 }, true],
    ['deep (KC + 1 taps)', [1, 29, 6, 20], [4, 29, 3, 3], { padding: 1 }, false],
    ['same, even kernel', [2, 3, 8, 8], [4, 3, 2, 4], { padding: 'same' }, true],
  ];
  for (const [name, xs, ws, opts, bias, tol] of cases) {
    it(name, () => {
      nb.manualSeed(11);
      const inputs = [r(xs), r(ws), ...(bias ? [r([ws[0]])] : [])];
      const conv = (x: nb.Tensor, w: nb.Tensor, b?: nb.Tensor) => F.conv2d(x, w, b ?? null, opts);
      sameAsComposed(name, conv, inputs, ['conv'], tol);
    });
  }

  it('direct 1-channel weight gradient: as close to an f64 reference as the composition', () => {
    nb.manualSeed(11);
    nb.tidy(() => {
      const [x, w, up] = [r([3, 1, 28, 28]), r([6, 1, 5, 5]), r([3, 6, 28, 28])];
      const [X, U] = [x.toArray() as Float32Array, up.toArray() as Float32Array];
      const ref = new Float64Array(150);
      for (let n = 0; n < 3; n++) {
        for (let c = 0; c < 6; c++) {
          for (let i = 0; i < 28 * 28; i++) {
            const d = U[(n * 6 + c) * 784 + i];
            const [oi, oj] = [Math.floor(i / 28), i % 28];
            for (let t = 0; t < 25; t++) {
              const [row, col] = [oi + Math.floor(t / 5) - 2, oj + (t % 5) - 2];
              if (row < 0 || row >= 28 || col < 0 || col >= 28) continue;
              ref[c * 25 + t] += d * X[n * 784 + row * 28 + col];
            }
          }
        }
      }
      const grad = () => {
        const wl = w.detach().clone().requiresGrad_();
        F.conv2d(x, wl, null, { padding: 2 }).backward(up);
        return arr(wl.grad);
      };
      const err = (g: number[]) => Math.max(...g.map((v, i) => Math.abs(v - ref[i])));
      const [fused, comp] = [err(grad()), err(nb.composed(grad, ['conv']))];
      expect(fused).toBeLessThan(1e-4);
      expect(fused).toBeLessThanOrEqual(comp * 1.5);
    });
  });

  it('conv1d and unbatched inputs', () => {
    nb.manualSeed(12);
    const inputs = [r([2, 3, 31]), r([4, 3, 5]), r([4])];
    sameAsComposed('conv1d', (x, w, b) => F.conv1d(x, w, b, { padding: 2 }), inputs, ['conv']);
    const un = [r([3, 8, 8]), r([4, 3, 3, 3])];
    sameAsComposed('unbatched', (x, w) => F.conv2d(x, w), un, ['conv']);
  });

  it('passes finite differences', () => {
    nb.manualSeed(13);
    for (const [xs, ws, opts] of [
      [[2, 3, 6, 7], [4, 3, 3, 3], { padding: 1, stride: [1, 2] }],
      [[1, 4, 5, 20], [4, 1, 3, 3], { groups: 4, padding: 1 }],
      [[2, 3, 4, 5], [2, 3, 1, 1], {}],
    ] as [number[], number[], ConvOptions][]) {
      const x = r(xs).requiresGrad_();
      const w = r(ws).requiresGrad_();
      const b = r([ws[0]]).requiresGrad_();
      const res = nb.gradcheck((x, w, b) => F.conv2d(x, w, b, opts), [x, w, b]);
      expect(res.ok, `${JSON.stringify(opts)}: ${res.maxAbsError}`).toBe(true);
    }
  });
});

describe('fused pooling equals the composition', () => {
  const maxCases: [string, number[], number | number[], MaxPoolOptions][] = [
    ['2x2', [2, 3, 8, 8], 2, {}],
    // The kernel's 2×2 stride-2 fast path: four outputs a step plus tails, odd sizes dropping
    // the last row/column, and ceil mode (clipped windows) and padding missing the path.
    ['2x2 fast path, tails', [2, 3, 11, 23], 2, {}],
    ['2x2 fast path, LeNet', [3, 6, 28, 28], 2, {}],
    ['2x2 ceil mode', [1, 2, 7, 9], 2, { ceilMode: true }],
    ['2x2 padded', [1, 2, 6, 10], 2, { padding: 1 }],
    ['3x3 stride 2 pad 1', [2, 2, 9, 11], 3, { stride: 2, padding: 1 }],
    ['ceil mode', [1, 3, 10, 7], [3, 2], { stride: 2, ceilMode: true, padding: [1, 0] }],
    ['dilation', [2, 2, 12, 13], 3, { dilation: 2, padding: 1 }],
    ['stride 1', [1, 2, 17, 16], [2, 3], { stride: 1 }],
  ];
  for (const [name, xs, k, opts] of maxCases) {
    it(`maxPool2d ${name}`, () => {
      nb.manualSeed(21);
      sameAsComposed(name, (x) => F.maxPool2d(x, k, opts), [r(xs)], ['pool']);
      nb.tidy(() => {
        const x = r(xs);
        const [, i] = F.maxPool2d(x, k, { ...opts, returnIndices: true });
        const [, ic] = nb.composed(() => F.maxPool2d(x, k, { ...opts, returnIndices: true }));
        expect(Array.from(i.toArray() as Int32Array)).toEqual(
          Array.from(ic.toArray() as Int32Array),
        );
      });
    });
  }

  it('maxPool2d ties go to the first maximum, maxPool1d as 2-d', () => {
    nb.tidy(() => {
      const x = nb.tensor(Float32Array.from([1, 3, 3, 2, 3, 0, 3, 3, 1]), { shape: [1, 1, 3, 3] });
      const [, i] = F.maxPool2d(x, 2, { stride: 1, returnIndices: true });
      expect(Array.from(i.toArray() as Int32Array)).toEqual([1, 1, 4, 4]);
      sameAsComposed(
        '1d',
        (x) => F.maxPool1d(x, 3, { stride: 2, padding: 1 }),
        [r([2, 3, 20])],
        ['pool'],
      );
    });
  });

  const avgCases: [string, number[], number | number[], AvgPoolOptions][] = [
    ['2x2', [2, 3, 8, 8], 2, {}],
    ['pad, include', [2, 2, 9, 11], 3, { stride: 2, padding: 1 }],
    ['pad, exclude', [2, 2, 9, 11], 3, { stride: 2, padding: 1, countIncludePad: false }],
    ['ceil mode', [1, 3, 10, 7], [3, 2], { stride: 2, ceilMode: true, padding: [1, 1] }],
    ['divisor', [2, 2, 7, 7], 3, { divisorOverride: 5, padding: 1 }],
  ];
  for (const [name, xs, k, opts] of avgCases) {
    it(`avgPool2d ${name}`, () => {
      nb.manualSeed(22);
      sameAsComposed(name, (x) => F.avgPool2d(x, k, opts), [r(xs)], ['pool']);
    });
  }

  it('pass finite differences', () => {
    nb.manualSeed(23);
    for (const fn of [
      (x: nb.Tensor) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
      (x: nb.Tensor) => F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }),
      (x: nb.Tensor) => F.avgPool2d(x, 2, { ceilMode: true }),
    ]) {
      const res = nb.gradcheck(fn, [r([2, 2, 7, 7]).requiresGrad_()]);
      expect(res.ok, `${res.maxAbsError}`).toBe(true);
    }
  });
});

describe('fused batchNorm equals the composition', () => {
  const shapes = [
    [4, 3],
    [2, 5, 7],
    [3, 4, 5, 6],
    [2, 2, 17, 3],
  ];
  for (const shape of shapes) {
    it(`training and eval, ${JSON.stringify(shape)}`, () => {
      nb.manualSeed(31);
      const c = shape[1];
      for (const affine of [true, false]) {
        for (const training of [true, false]) {
          const inputs = [r(shape).mul(2).add(1), r([c]), r([c])];
          const stats = () => [nb.zeros([c]).add(0.1), nb.ones([c]).mul(1.5)];
          const got: number[][] = [];
          const fn = (x: nb.Tensor, w: nb.Tensor, b: nb.Tensor) => {
            const [rm, rv] = stats();
            const y = F.batchNorm(x, {
              runningMean: rm,
              runningVar: rv,
              weight: affine ? w : null,
              bias: affine ? b : null,
              training,
              momentum: 0.2,
            });
            got.push(arr(rm), arr(rv));
            return y;
          };
          sameAsComposed(`affine ${affine} training ${training}`, fn, inputs, ['batchNorm']);
          // The running statistics move the same way (fused run first, composed second).
          assertClose(got[0], got[2], TOL, 'running mean');
          assertClose(got[1], got[3], TOL, 'running var');
        }
      }
    });
  }

  it('passes finite differences (batch statistics and running ones)', () => {
    nb.manualSeed(32);
    for (const training of [true, false]) {
      const res = nb.gradcheck(
        (x, w, b) =>
          F.batchNorm(x, {
            runningMean: nb.zeros([3]),
            runningVar: nb.ones([3]),
            weight: w,
            bias: b,
            training,
          }),
        [r([4, 3, 2, 2]).requiresGrad_(), r([3]).requiresGrad_(), r([3]).requiresGrad_()],
      );
      expect(res.ok, `training ${training}: ${res.maxAbsError}`).toBe(true);
    }
  });
});
