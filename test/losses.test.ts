// Losses against PyTorch 1.13 (test/fixtures/losses.json, from
// scripts/fixtures/make_loss_fixtures.py): forward values, then `backward(upstream)` and the
// `.grad` of every input that requires one; then gradcheck of each loss, the fused
// cross-entropy against the unfused logSoftmax + gather path, and the typed errors.
//
// Tolerances: rtol 1e-5, atol 1e-6, as for single ops (test/helpers/fixtures.ts). References
// are float64 from the exact float32 inputs, so the gap is nabla's own float32 error: a few ulp
// from exp/log (≤ 2e-6 relative) plus the rounding of at most a few dozen summed terms, well
// inside 1e-5; atol absorbs results that land near zero (losses of logits at ±100).
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import {
  BCELoss,
  BCEWithLogitsLoss,
  CrossEntropyLoss,
  L1Loss,
  MSELoss,
  NLLLoss,
  binaryCrossEntropy,
  binaryCrossEntropyWithLogits,
  crossEntropy,
  l1Loss,
  mseLoss,
  nllLoss,
  type CrossEntropyOptions,
} from '../ts/nn/losses.js';
import { expectClose, tensorFromSpec, type TensorSpec } from './helpers/fixtures.js';
import { readFileSync } from 'node:fs';

const TOL = { rtol: 1e-5, atol: 1e-6 };

type LossFn = (input: nb.Tensor, target: nb.Tensor, opts: object) => nb.Tensor;

const FNS: Record<string, LossFn> = {
  mseLoss,
  l1Loss,
  binaryCrossEntropy,
  binaryCrossEntropyWithLogits,
  crossEntropy,
  nllLoss,
};

/** The Module form of each loss, built from the same options. */
const MODULES: Record<
  string,
  (opts: object) => nb.nn.Module & { forward: (input: nb.Tensor, target: nb.Tensor) => nb.Tensor }
> = {
  mseLoss: (o) => new MSELoss(o),
  l1Loss: (o) => new L1Loss(o),
  binaryCrossEntropy: (o) => new BCELoss(o),
  binaryCrossEntropyWithLogits: (o) => new BCEWithLogitsLoss(o),
  crossEntropy: (o) => new CrossEntropyLoss(o),
  nllLoss: (o) => new NLLLoss(o),
};

interface LossCase {
  name: string;
  fn: string;
  options: Record<string, unknown>;
  input: TensorSpec;
  target: TensorSpec;
  output: { shape: number[]; data: number[] };
  upstream: number[];
  grads: (number[] | null)[];
}

const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/losses.json', import.meta.url), 'utf8'),
) as { torch: string; cases: LossCase[] };

/** The case's options with tensor-valued ones (weight, posWeight) built. */
function options(c: LossCase): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c.options)) {
    out[k] = typeof v === 'object' && v !== null ? tensorFromSpec(v as TensorSpec) : v;
  }
  return out;
}

const floats = (t: nb.Tensor): Float32Array => t.toArray() as Float32Array;

beforeAll(async () => {
  await nb.init();
});

describe(`losses against PyTorch ${fixtures.torch}`, () => {
  it('has a case for every loss, reduction and cross-entropy option', () => {
    const names = fixtures.cases.map((c) => c.name).join(' ');
    for (const fn of Object.keys(FNS)) {
      for (const r of ['mean', 'sum', 'none']) {
        expect(fixtures.cases.some((c) => c.fn === fn && c.options.reduction === r)).toBe(true);
      }
    }
    for (const key of ['weight', 'posWeight', 'ignoreIndex', 'labelSmoothing']) {
      expect(
        fixtures.cases.some((c) => key in c.options),
        key,
      ).toBe(true);
    }
    expect(names).toMatch(/ce_prob_/);
    expect(names).toMatch(/ce_3d_/);
    expect(names).toMatch(/ce_extreme_/);
  });

  for (const c of fixtures.cases) {
    it(c.name, () => {
      nb.tidy(() => {
        const input = tensorFromSpec(c.input);
        const target = tensorFromSpec(c.target);
        const out = FNS[c.fn](input, target, options(c));
        expect(out.shape).toEqual(c.output.shape);
        expectClose(floats(out), c.output.data, TOL, `${c.name} output`);

        out.backward(nb.tensor(Float32Array.from(c.upstream), { shape: c.output.shape }));
        [input, target].forEach((t, i) => {
          const want = c.grads[i];
          if (want === null) return expect(t.grad).toBeNull();
          expect(t.grad, `${c.name} grad ${i}`).not.toBeNull();
          expectClose(floats(t.grad!), want, TOL, `${c.name} grad of input ${i}`);
        });

        const module = MODULES[c.fn](options(c));
        const viaModule = nb.noGrad(() => module.forward(input, target));
        expect(Array.from(floats(viaModule))).toEqual(Array.from(floats(out)));
        module.dispose(); // frees its weight buffers
      });
    });
  }
});

// ------------------------------------------------------------------ gradcheck

const leaf = (values: ArrayLike<number>, shape: number[]): nb.Tensor =>
  nb.tensor(Float32Array.from(values), { shape, requiresGrad: true });

const randn = (shape: number[], scale = 1): nb.Tensor =>
  leaf(
    floats(nb.randn(shape)).map((v) => v * scale),
    shape,
  );

const uniform = (shape: number[], lo: number, hi: number, grad = true): nb.Tensor =>
  nb.tensor(
    floats(nb.rand(shape)).map((v) => lo + (hi - lo) * v),
    { shape, requiresGrad: grad },
  );

const ints = (values: number[], shape = [values.length]): nb.Tensor =>
  nb.tensor(Int32Array.from(values), { dtype: 'int32', shape });

/** Rows of class probabilities along `dim`, requiring grad. */
const probs = (shape: number[], dim = -1): nb.Tensor =>
  leaf(floats(nb.randn(shape).softmax(dim)), shape);

describe('gradcheck', () => {
  const cases: Record<string, () => [(...xs: nb.Tensor[]) => nb.Tensor, nb.Tensor[]]> = {
    mse: () => [(x, y) => mseLoss(x, y), [randn([3, 4]), randn([3, 4])]],
    l1: () => {
      const x = randn([3, 4]);
      // the target sits at least 0.2 from the input, clear of the kink at x = y
      const off = floats(nb.rand([3, 4])).map((v, i) => (i % 2 ? 1 : -1) * (0.2 + v));
      const y = leaf(
        floats(x).map((v, i) => v + off[i]),
        [3, 4],
      );
      return [(a, b) => l1Loss(a, b, { reduction: 'sum' }), [x, y]];
    },
    bce_weight: () => {
      const w = uniform([4], 0.5, 2, false);
      return [
        (x, y) => binaryCrossEntropy(x, y, { weight: w }),
        [uniform([3, 4], 0.1, 0.9), uniform([3, 4], 0, 1)],
      ];
    },
    bce_with_logits_pos_weight: () => {
      const w = uniform([3, 1], 0.5, 2, false);
      const pw = uniform([4], 0.5, 3, false);
      return [
        (x, y) =>
          binaryCrossEntropyWithLogits(x, y, { weight: w, posWeight: pw, reduction: 'none' }),
        [randn([3, 4], 2), uniform([3, 4], 0, 1)],
      ];
    },
    cross_entropy_all_options: () => {
      const w = uniform([5], 0.5, 2, false);
      const t = ints([1, -100, 4, 0, 2, -100, 3]);
      const opts: CrossEntropyOptions = { weight: w, labelSmoothing: 0.2 };
      return [(x) => crossEntropy(x, t, opts), [randn([7, 5], 2)]];
    },
    cross_entropy_3d_none: () => {
      const t = ints([0, 2, 1, 1, -100, 0], [2, 3]);
      return [
        (x) => crossEntropy(x, t, { reduction: 'none', labelSmoothing: 0.1 }),
        [randn([2, 3, 3], 2)],
      ];
    },
    cross_entropy_probs: () => {
      const w = uniform([4], 0.5, 2, false);
      return [
        (x, y) => crossEntropy(x, y, { weight: w, labelSmoothing: 0.1, reduction: 'sum' }),
        [randn([3, 4, 2], 2), probs([3, 4, 2], 1)],
      ];
    },
    nll: () => {
      const w = uniform([4], 0.5, 2, false);
      const t = ints([3, 0, -100, 2, 1]);
      return [(x) => nllLoss(x, t, { weight: w }), [randn([5, 4])]];
    },
  };
  for (const [name, make] of Object.entries(cases)) {
    it(name, () => {
      nb.manualSeed(7);
      nb.tidy(() => {
        const [fn, inputs] = make();
        const res = nb.gradcheck(fn, inputs);
        expect(res.ok, JSON.stringify(res.worst)).toBe(true);
      });
    });
  }
});

// ------------------------------------------------------------------ fused vs unfused

/** `-(w_t · logSoftmax(x)[t])` per row, 0 where ignored; composed from public ops. */
function unfusedNll(x: nb.Tensor, t: number[], w: number[] | null, ignore = -100): nb.Tensor {
  const keep = t.map((v) => (v === ignore ? 0 : 1));
  const safe = ints(t.map((v) => (v === ignore ? 0 : v)));
  const picked = x.logSoftmax(1).gather(1, safe.unsqueeze(1)).squeeze(1);
  const wt = nb.tensor(t.map((v, i) => keep[i] * (w ? w[v === ignore ? 0 : v] : 1)));
  return picked.mul(wt).neg();
}

/** Runs `f` on a fresh leaf copy of `x` and returns the output and the input's gradient. */
function valueAndGrad(x: Float32Array, shape: number[], f: (x: nb.Tensor) => nb.Tensor) {
  const leafX = leaf(x, shape);
  const out = f(leafX);
  out.backward(out.size === 1 ? undefined : nb.onesLike(out));
  return { out: floats(out), grad: floats(leafX.grad!) };
}

function expectSame(
  a: { out: Float32Array; grad: Float32Array },
  b: { out: Float32Array; grad: Float32Array },
  label: string,
): void {
  expectClose(a.out, Array.from(b.out), { rtol: 1e-5, atol: 1e-5 }, `${label} value`);
  expectClose(a.grad, Array.from(b.grad), { rtol: 1e-5, atol: 1e-6 }, `${label} grad`);
}

describe('the fused cross-entropy equals the unfused logSoftmax + gather path', () => {
  // 257 classes run the kernel's SIMD body and its scalar tail; 17 rows, several leaves.
  const C = 257;
  const N = 17;
  const targets = Array.from({ length: N }, (_, i) => (i % 5 === 3 ? -100 : (i * 37) % C));
  const weights = Array.from({ length: C }, (_, i) => 0.5 + (i % 7) / 4);

  it('plain mean', () => {
    nb.manualSeed(1);
    nb.tidy(() => {
      const x = floats(nb.randn([N, C]).mul(3));
      const t = ints(targets.map((v) => (v < 0 ? 0 : v)));
      const tl = Array.from(t.toArray());
      expectSame(
        valueAndGrad(x, [N, C], (v) => crossEntropy(v, t)),
        valueAndGrad(x, [N, C], (v) => unfusedNll(v, tl, null).mean()),
        'mean',
      );
    });
  });

  it('weights and ignored targets, every reduction, and nllLoss of logSoftmax', () => {
    nb.manualSeed(2);
    nb.tidy(() => {
      const x = floats(nb.randn([N, C]).mul(3));
      const t = ints(targets);
      const w = nb.tensor(weights);
      const total = targets.reduce((s, v) => s + (v === -100 ? 0 : weights[v]), 0);
      const ref = (v: nb.Tensor) => unfusedNll(v, targets, weights);
      for (const reduction of ['none', 'sum', 'mean'] as const) {
        const fused = valueAndGrad(x, [N, C], (v) => crossEntropy(v, t, { weight: w, reduction }));
        const unfused = valueAndGrad(x, [N, C], (v) =>
          reduction === 'none'
            ? ref(v)
            : reduction === 'sum'
              ? ref(v).sum()
              : ref(v).sum().div(total),
        );
        expectSame(fused, unfused, reduction);
        const viaNll = valueAndGrad(x, [N, C], (v) =>
          nllLoss(v.logSoftmax(1), t, { weight: w, reduction }),
        );
        expectSame(fused, viaNll, `nllLoss ${reduction}`);
      }
    });
  });

  it('label smoothing: (1 - ε) nll + ε/C Σ -w logp, over the same weight sum', () => {
    nb.manualSeed(3);
    nb.tidy(() => {
      const eps = 0.15;
      const x = floats(nb.randn([N, C]).mul(3));
      const t = ints(targets);
      const w = nb.tensor(weights);
      const keep = nb.tensor(targets.map((v) => (v === -100 ? 0 : 1)));
      const total = targets.reduce((s, v) => s + (v === -100 ? 0 : weights[v]), 0);
      const unfused = (v: nb.Tensor) => {
        const smooth = v.logSoftmax(1).mul(w).sum(1).neg().mul(keep);
        const nll = unfusedNll(v, targets, weights);
        return nll
          .mul(1 - eps)
          .add(smooth.mul(eps / C))
          .sum()
          .div(total);
      };
      expectSame(
        valueAndGrad(x, [N, C], (v) => crossEntropy(v, t, { weight: w, labelSmoothing: eps })),
        valueAndGrad(x, [N, C], unfused),
        'smoothing',
      );
    });
  });

  it('class probabilities on an [N, C, d] input: -Σ_c w_c t_c logSoftmax(x)_c', () => {
    nb.manualSeed(4);
    nb.tidy(() => {
      const shape = [3, 19, 5];
      const x = floats(nb.randn(shape).mul(3));
      const tp = nb.randn(shape).softmax(1);
      const w = nb.rand([19]).add(0.5);
      const unfused = (v: nb.Tensor) =>
        v
          .logSoftmax(1)
          .mul(tp)
          .mul(w.reshape([19, 1]))
          .sum(1)
          .neg()
          .mean();
      expectSame(
        valueAndGrad(x, shape, (v) => crossEntropy(v, tp, { weight: w })),
        valueAndGrad(x, shape, unfused),
        'probabilities',
      );
    });
  });

  it('an [N, C, d1, d2] input moves its class dim last', () => {
    nb.manualSeed(5);
    nb.tidy(() => {
      const shape = [2, 6, 3, 4];
      const x = floats(nb.randn(shape).mul(2));
      const tv = Array.from(floats(nb.rand([2, 3, 4]).mul(6))).map(Math.floor);
      const t = ints(tv, [2, 3, 4]);
      const unfused = (v: nb.Tensor) => v.logSoftmax(1).gather(1, t.unsqueeze(1)).squeeze(1).neg();
      expectSame(
        valueAndGrad(x, shape, (v) => crossEntropy(v, t, { reduction: 'none' })),
        valueAndGrad(x, shape, unfused),
        '4-d',
      );
    });
  });

  it('stays finite and exact for logits of ±1e4', () => {
    nb.tidy(() => {
      const x = leaf([1e4, -1e4, 1e4, 1e4, -1e4, 1e4], [3, 2]);
      const out = crossEntropy(x, ints([0, 1, 0]), { reduction: 'none' });
      expectClose(floats(out), [0, Math.LN2, 2e4], { rtol: 1e-7, atol: 1e-7 });
      out.sum().backward();
      expectClose(floats(x.grad!), [0, 0, 0.5, -0.5, -1, 1], { rtol: 0, atol: 1e-7 });
    });
  });
});

// ------------------------------------------------------------------ edge cases

describe('edge cases', () => {
  it("'mean' over only ignored targets is NaN (0 / 0) and 'sum' is 0 with a zero gradient", () => {
    nb.tidy(() => {
      const x = randn([3, 4]);
      const t = ints([-100, -100, -100]);
      expect(crossEntropy(x, t).item()).toBeNaN();
      expect(crossEntropy(x, t, { labelSmoothing: 0.1 }).item()).toBeNaN();
      expect(nllLoss(x, t).item()).toBeNaN();
      const s = crossEntropy(x, t, { reduction: 'sum' });
      expect(s.item()).toBe(0);
      s.backward();
      expect(Array.from(floats(x.grad!))).toEqual(new Array(12).fill(0));
    });
  });

  it("an empty batch gives NaN for 'mean' and 0 for 'sum'", () => {
    nb.tidy(() => {
      const x = nb.zeros([0, 3]);
      expect(crossEntropy(x, ints([])).item()).toBeNaN();
      expect(crossEntropy(x, nb.zeros([0, 3]), { reduction: 'sum' }).item()).toBe(0);
      expect(crossEntropy(x, ints([]), { reduction: 'none' }).shape).toEqual([0]);
    });
  });

  it('binary cross-entropy with logits has slope sigmoid(0) - y at a logit of exactly 0', () => {
    nb.tidy(() => {
      const x = leaf([0, 0], [2]);
      binaryCrossEntropyWithLogits(x, nb.tensor([1, 0.25]), { reduction: 'sum' }).backward();
      expect(Array.from(floats(x.grad!))).toEqual([-0.5, 0.25]);
    });
  });

  it('frees every intermediate: repeated forward + backward leave the tensor count flat', () => {
    const x = randn([8, 10]);
    const t = ints([1, 2, 3, 4, 5, 6, 7, -100]);
    const w = nb.rand([10]);
    const step = () =>
      nb.tidy(() => {
        crossEntropy(x, t, { weight: w, labelSmoothing: 0.1 }).backward();
        binaryCrossEntropyWithLogits(x, x.sigmoid().detach(), { posWeight: w }).backward();
        nllLoss(x.logSoftmax(1), t).backward();
        x.grad!.dispose();
        x.grad = null;
        return undefined;
      });
    step();
    const before = nb.memory();
    for (let i = 0; i < 20; i++) step();
    expect(nb.memory()).toMatchObject({ tensors: before.tensors, bytes: before.bytes });
    [x, t, w].forEach((v) => v.dispose());
  });

  it("weighted loss modules keep their weights as buffers under PyTorch's names", () => {
    const ce = new CrossEntropyLoss({ weight: nb.ones([3]), labelSmoothing: 0.1 });
    expect(Object.keys(ce.stateDict())).toEqual(['weight']);
    const bce = new BCEWithLogitsLoss({ weight: nb.ones([2]), posWeight: nb.ones([2]) });
    expect(Object.keys(bce.stateDict())).toEqual(['weight', 'pos_weight']);
    expect(Object.keys(new MSELoss().stateDict())).toEqual([]);
    ce.dispose();
    bce.dispose();
  });

  it('are exported as nb.nn classes and nb.nn.functional functions', () => {
    expect(nb.nn.CrossEntropyLoss).toBe(CrossEntropyLoss);
    expect(nb.nn.functional.crossEntropy).toBe(crossEntropy);
    expect(nb.nn.functional.binaryCrossEntropyWithLogits).toBe(binaryCrossEntropyWithLogits);
  });
});

// ------------------------------------------------------------------ typed errors

describe('errors', () => {
  const x = () => nb.zeros([3, 4]);

  it('an out-of-range class index is an IndexError naming the op and the value', () => {
    nb.tidy(() => {
      expect(() => crossEntropy(x(), ints([0, 4, 1]))).toThrow(nb.IndexError);
      expect(() => crossEntropy(x(), ints([0, 4, 1]))).toThrow(
        /^crossEntropy: target 4 at position 1/,
      );
      expect(() => crossEntropy(x(), ints([0, 1, -1]))).toThrow(/target -1 at position 2/);
      expect(() => nllLoss(x(), ints([7, 0, 0]))).toThrow(/^nllLoss: target 7 at position 0/);
      expect(() => new CrossEntropyLoss().forward(x(), ints([0, 0, 9]))).toThrow(nb.IndexError);
      // the ignore index itself is fine, even when it is a valid class or a negative number
      expect(() => crossEntropy(x(), ints([-1, 0, 3]), { ignoreIndex: -1 })).not.toThrow();
      expect(() => nllLoss(x(), ints([2, 2, 3]), { ignoreIndex: 2 })).not.toThrow();
    });
  });

  it('a target of the wrong shape is a ShapeError', () => {
    nb.tidy(() => {
      expect(() => crossEntropy(x(), nb.zeros([3, 5]))).toThrow(nb.ShapeError);
      expect(() => crossEntropy(x(), nb.zeros([3, 5]))).toThrow(
        /^crossEntropy: .*\[3, 4\].*\[3, 5\]/,
      );
      expect(() => crossEntropy(x(), ints([0, 1]))).toThrow(nb.ShapeError);
      expect(() => crossEntropy(nb.zeros([2, 3, 5]), ints([0, 1]))).toThrow(/must be \[2, 5\]/);
      expect(() => nllLoss(x(), ints([0, 1, 2, 3]))).toThrow(nb.ShapeError);
      expect(() => mseLoss(x(), nb.zeros([4]))).toThrow(nb.ShapeError);
      expect(() => binaryCrossEntropy(x(), nb.zeros([3, 1]))).toThrow(nb.ShapeError);
      expect(() => crossEntropy(x(), ints([0, 1, 2]), { weight: nb.ones([3]) })).toThrow(
        /^crossEntropy: weight \[3\] must have one entry per class, \[4\]/,
      );
      expect(() => binaryCrossEntropyWithLogits(x(), x(), { posWeight: nb.ones([3]) })).toThrow(
        nb.ShapeError,
      );
      expect(() => crossEntropy(nb.zeros([]), ints([0]))).toThrow(nb.ShapeError);
    });
  });

  it('a target of the wrong dtype is a DTypeError', () => {
    nb.tidy(() => {
      // int32 where the input's shape means class probabilities
      expect(() => crossEntropy(x(), nb.zeros([3, 4], { dtype: 'int32' }))).toThrow(nb.DTypeError);
      // float32 where class indices are expected
      expect(() => crossEntropy(x(), nb.zeros([3]))).toThrow(nb.DTypeError);
      expect(() => nllLoss(x(), x())).toThrow(/^nllLoss: class-index target must be int32/);
      expect(() => mseLoss(x(), nb.zeros([3, 4], { dtype: 'int32' }))).toThrow(nb.DTypeError);
      expect(() => crossEntropy(nb.zeros([3, 4], { dtype: 'int32' }), ints([0, 1, 2]))).toThrow(
        nb.DTypeError,
      );
    });
  });

  it('bad options and out-of-domain probabilities are ValueErrors', () => {
    nb.tidy(() => {
      const t = ints([0, 1, 2]);
      const bad = { reduction: 'avg' } as unknown as CrossEntropyOptions;
      expect(() => crossEntropy(x(), t, bad)).toThrow(nb.ValueError);
      expect(() => new MSELoss(bad)).toThrow(/^MSELoss: reduction must be/);
      expect(() => crossEntropy(x(), t, { labelSmoothing: 1.5 })).toThrow(nb.ValueError);
      expect(() => crossEntropy(x(), t, { ignoreIndex: 0.5 })).toThrow(nb.ValueError);
      expect(() => crossEntropy(x(), x(), { ignoreIndex: 1 })).toThrow(/not supported/);
      const p = nb.tensor([0.5, 1.5]);
      expect(() => binaryCrossEntropy(p, nb.zeros([2]))).toThrow(
        /^binaryCrossEntropy: input values must be in \[0, 1\], got 1.5 at position 1/,
      );
    });
  });
});
