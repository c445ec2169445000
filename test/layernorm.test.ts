// The fused LayerNorm op (ts/ops/layernorm.ts) against the unfused composite of mean, var and
// rsqrt ops it replaced: forward and the gradients of input, weight and bias at several
// shapes, plus gradcheck, a float64 reference where the composite itself loses accuracy,
// errors, and what the op keeps alive.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { assertClose, seeded } from './helpers/close.js';

const F = nb.nn.functional;
type Tensor = nb.Tensor;

beforeAll(async () => {
  await nb.init();
});

/** The composite `nn.functional.layerNorm` was before it was fused. */
function composite(
  x: Tensor,
  shape: number[],
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor {
  const dims = shape.map((_, i) => x.ndim - shape.length + i);
  const mu = x.mean(dims, true);
  const centered = x.sub(mu);
  const v = centered.square().mean(dims, true);
  let out = centered.mul(v.add(eps).rsqrt());
  if (weight) out = out.mul(weight);
  if (bias) out = out.add(bias);
  return out;
}

const leaf = (shape: number[], seed: number, lo: number, hi: number): Tensor =>
  nb.tensor(
    seeded(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
    {
      shape,
      requiresGrad: true,
    },
  );

const values = (t: Tensor | null): number[] => Array.from(t!.toArray());

interface Run {
  y: number[];
  grads: (number[] | null)[];
}

/** Forward, then backward of `sum(y * G)`, returning the output and the three gradients. */
function run(
  fn: typeof composite,
  xShape: number[],
  shape: number[],
  affine: { weight: boolean; bias: boolean },
  eps: number,
): Run {
  return nb.tidy(() => {
    const x = leaf(xShape, 1, -2, 3);
    const w = affine.weight ? leaf(shape, 2, 0.5, 1.5) : null;
    const b = affine.bias ? leaf(shape, 3, -1, 1) : null;
    const y = fn(x, shape, w, b, eps);
    const g = nb.tensor(seeded(y.size, 4), { shape: y.shape });
    y.mul(g).sum().backward();
    return { y: values(y), grads: [x, w, b].map((t) => (t ? values(t.grad) : null)) };
  });
}

const fused: typeof composite = (x, shape, w, b, eps) => F.layerNorm(x, shape, w, b, eps);

describe('fused layerNorm', () => {
  const cases: [number[], number[]][] = [
    [[4, 6], [6]],
    [
      [2, 3, 4],
      [3, 4],
    ],
    [[5, 17], [17]],
    [[3, 257], [257]],
    // 77,100 elements, above SPLIT_MIN_ELEMENTS: the backward sums parameter gradients in
    // fixed row chunks (layer_norm_bwd_chunks_f32), added in order.
    [[300, 257], [257]],
    [[2, 1], [1]],
    [[16], [16]],
    [
      [2, 2, 5],
      [2, 5],
    ],
  ];
  const affines = [
    { weight: true, bias: true },
    { weight: true, bias: false },
    { weight: false, bias: true },
    { weight: false, bias: false },
  ];

  for (const [xShape, shape] of cases) {
    for (const affine of affines) {
      it(`matches the composite on ${xShape} over ${shape} (${JSON.stringify(affine)})`, () => {
        const want = run(composite, xShape, shape, affine, 1e-5);
        const got = run(fused, xShape, shape, affine, 1e-5);
        const tol = { rtol: 1e-5, atol: 2e-6 };
        assertClose(got.y, want.y, tol, 'y');
        ['dx', 'dweight', 'dbias'].forEach((name, i) => {
          if (want.grads[i] === null) expect(got.grads[i]).toBeNull();
          // dweight sums over rows: the kernel adds row by row, the composite pairwise.
          else assertClose(got.grads[i]!, want.grads[i]!, { rtol: 1e-5, atol: 1e-5 }, name);
        });
      });
    }
  }

  it('passes gradcheck in input, weight and bias', () => {
    nb.manualSeed(7);
    for (const [xShape, shape] of [
      [[3, 5], [5]],
      [
        [2, 2, 3],
        [2, 3],
      ],
    ]) {
      const inputs = [
        nb.randn(xShape, { requiresGrad: true }),
        nb.rand(shape).add(0.5).detach(),
        nb.randn(shape),
      ];
      inputs[1].requiresGrad = true;
      inputs[2].requiresGrad = true;
      const res = nb.gradcheck(
        (x, w, b) => F.layerNorm(x, shape, w, b, 1e-5),
        inputs,
        // eps 1e-2 keeps the float32 finite differences above their rounding noise.
        { eps: 1e-2, atol: 2e-3, rtol: 2e-3 },
      );
      expect(res.ok, JSON.stringify(res.worst)).toBe(true);
    }
  });

  it('stays accurate where the composite loses digits (|mean| >> std)', () => {
    // 1e4 + U(-0.01, 0.01): the f32 mean alone is off by up to 5e-4, i.e. 0.05 in x̂.
    const d = 64;
    const raw = seeded(2 * d, 9, -0.01, 0.01).map((v) => v + 10_000);
    const y = F.layerNorm(nb.tensor(raw, { shape: [2, d] }), d, null, null, 0).toArray();
    const want: number[] = [];
    for (let r = 0; r < 2; r++) {
      const row = Array.from(raw.subarray(r * d, (r + 1) * d));
      const mean = row.reduce((a, b) => a + b, 0) / d;
      const v = row.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
      want.push(...row.map((b) => (b - mean) / Math.sqrt(v)));
    }
    assertClose(y, want, { rtol: 1e-5, atol: 1e-5 }, 'y');
  });

  it('keeps its saved statistics only while a graph needs them', () => {
    const x = nb.randn([4, 8]);
    const w = nb.ones([8], { requiresGrad: true });
    const before = nb.memory().tensors;
    const plain = F.layerNorm(x, 8);
    expect(nb.memory().tensors).toBe(before + 1);
    const graphed = F.layerNorm(x, 8, w);
    expect(nb.memory().tensors).toBe(before + 4); // output, mean pairs, rstd
    graphed.sum().backward();
    expect(Array.from(w.grad!.toArray()).every(Number.isFinite)).toBe(true);
    for (const t of [plain, graphed, x, w]) t.dispose();
  });

  it('rejects non-float32 input and mismatched shapes', () => {
    const xi = nb.zeros([2, 3], { dtype: 'int32' });
    expect(() => F.layerNorm(xi, 3)).toThrow(nb.DTypeError);
    expect(() => F.layerNorm(xi, 3)).toThrow(/^layerNorm: expected float32 input/);
    expect(() => F.layerNorm(nb.zeros([2, 3]), 4)).toThrow(nb.ShapeError);
  });
});
