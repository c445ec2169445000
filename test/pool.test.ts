// Pooling against PyTorch 1.13 (test/fixtures/conv.json "pools", from
// scripts/fixtures/make_conv_fixtures.py): MaxPool1d/2d (padding, dilation, ceil mode, indices,
// tied maxima), AvgPool1d/2d (countIncludePad, ceil mode, divisorOverride), AdaptiveAvgPool1d/2d
// and AdaptiveMaxPool2d: outputs, indices and input gradients; reprs and typed errors.
//
// Tolerances: rtol 1e-5, atol 1e-6 (a max is exact; an average sums a few float32 terms).
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
interface PoolCase {
  name: string;
  kind: keyof typeof KINDS;
  args: [unknown];
  options: Record<string, unknown>;
  input: Shaped;
  out: Shaped;
  indices: Shaped | null;
  upstream: number[];
  grad: number[];
}

const KINDS = {
  MaxPool1d: nn.MaxPool1d,
  MaxPool2d: nn.MaxPool2d,
  AvgPool1d: nn.AvgPool1d,
  AvgPool2d: nn.AvgPool2d,
  AdaptiveAvgPool1d: nn.AdaptiveAvgPool1d,
  AdaptiveAvgPool2d: nn.AdaptiveAvgPool2d,
  AdaptiveMaxPool2d: nn.AdaptiveMaxPool2d,
};

const { pools } = JSON.parse(readFileSync('test/fixtures/conv.json', 'utf8')) as {
  pools: PoolCase[];
};
const TOL = { rtol: 1e-5, atol: 1e-6 };
const values = (t: nb.Tensor | null) => Array.from(t!.toArray() as Float32Array);

function build(c: PoolCase): { forward(x: nb.Tensor): nb.Tensor | [nb.Tensor, nb.Tensor] } {
  if (c.kind === 'AdaptiveMaxPool2d') {
    return new nn.AdaptiveMaxPool2d(c.args[0] as number, Boolean(c.options.returnIndices));
  }
  const Ctor = KINDS[c.kind] as unknown as new (
    a: unknown,
    o: unknown,
  ) => { forward(x: nb.Tensor): nb.Tensor | [nb.Tensor, nb.Tensor] };
  return new Ctor(c.args[0], c.options);
}

describe('pooling modules vs PyTorch', () => {
  it('covers every kind', () => {
    expect(new Set(pools.map((c) => c.kind)).size).toBe(Object.keys(KINDS).length);
  });

  for (const c of pools) {
    it(c.name, () => {
      nb.tidy(() => {
        const x = nb.tensor(Float32Array.from(c.input.data), {
          shape: c.input.shape,
          requiresGrad: true,
        });
        const res = build(c).forward(x);
        const [y, idx] = Array.isArray(res) ? res : [res, null];
        expect(y.shape).toEqual(c.out.shape);
        assertClose(values(y), c.out.data, TOL, `${c.name} out`);
        if (c.indices) {
          expect(idx!.dtype).toBe('int32');
          expect(idx!.shape).toEqual(c.indices.shape);
          expect(Array.from(idx!.toArray())).toEqual(c.indices.data);
        } else {
          expect(idx).toBeNull();
        }
        y.backward(nb.tensor(Float32Array.from(c.upstream), { shape: y.shape }));
        assertClose(values(x.grad), c.grad, TOL, `${c.name} d input`);
      });
    });
  }
});

describe('pooling like PyTorch', () => {
  it('prints as PyTorch does', () => {
    expect(String(new nn.MaxPool2d(2))).toBe(
      'MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)',
    );
    expect(String(new nn.MaxPool2d([3, 2], { stride: 1, ceilMode: true }))).toBe(
      'MaxPool2d(kernel_size=(3, 2), stride=1, padding=0, dilation=1, ceil_mode=True)',
    );
    expect(String(new nn.AvgPool2d(3, { stride: 2, padding: 1 }))).toBe(
      'AvgPool2d(kernel_size=3, stride=2, padding=1)',
    );
    expect(String(new nn.AvgPool1d(3))).toBe(
      'AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))',
    );
    expect(String(new nn.AdaptiveAvgPool2d([null, 7]))).toBe(
      'AdaptiveAvgPool2d(output_size=(None, 7))',
    );
    expect(String(new nn.AdaptiveMaxPool2d(1))).toBe('AdaptiveMaxPool2d(output_size=1)');
  });

  it('reject bad input with typed errors naming the op', () => {
    const x = nb.zeros([1, 2, 4, 4]);
    expect(() => nn.functional.maxPool2d(x, 3, { padding: 2 })).toThrow(
      /maxPool2d: padding should be at most half of the kernel size/,
    );
    expect(() => nn.functional.maxPool2d(x, 5)).toThrow(nb.ShapeError);
    expect(() => nn.functional.maxPool2d(x, 5)).toThrow(
      /maxPool2d: input \[1, 2, 4, 4\] is too small/,
    );
    expect(() => nn.functional.avgPool2d(nb.zeros([4, 4]), 2)).toThrow(
      /avgPool2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input, got \[4, 4\]/,
    );
    expect(() => nn.functional.avgPool2d(x, 2, { divisorOverride: 0 })).toThrow(/divisorOverride/);
    expect(() => nn.functional.adaptiveAvgPool2d(x, [2, 0])).toThrow(/outputSize/);
    expect(() => nn.functional.adaptiveMaxPool2d(x, [1, 2, 3])).toThrow(/outputSize must have 2/);
    expect(() => nn.functional.maxPool1d(nb.zeros([1, 2, 4], { dtype: 'int32' }), 2)).toThrow(
      nb.DTypeError,
    );
  });

  it('gradcheck: max (no ties), average and adaptive pools', () => {
    nb.manualSeed(9);
    const F = nn.functional;
    const fns: [(x: nb.Tensor) => nb.Tensor, number[]][] = [
      [(x) => F.maxPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true }), [1, 2, 6, 7]],
      [(x) => F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }), [1, 2, 6, 7]],
      [(x) => F.adaptiveAvgPool2d(x, [3, 2]), [1, 2, 7, 5]],
      [(x) => F.adaptiveMaxPool2d(x, [2, 3]), [1, 2, 5, 7]],
      [(x) => F.avgPool1d(x, 3, { stride: 2, ceilMode: true }), [2, 2, 8]],
    ];
    for (const [fn, shape] of fns) {
      const r = nb.gradcheck(fn, [nb.randn(shape, { requiresGrad: true })]);
      expect(r.ok, `${fn}: ${r.maxAbsError}`).toBe(true);
    }
  });
});
