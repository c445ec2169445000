// Tensor.T (all dims reversed) and Tensor.mT (the last two swapped): values and gradients
// against PyTorch 1.13 (scripts/fixtures/make_T_fixtures.py), gradcheck, the same-data view
// for 0-d and 1-d tensors, and mT's refusal of fewer than two dims, as in PyTorch.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

interface Shaped {
  shape: number[];
  data: number[];
}
interface Case {
  attr: 'T' | 'mT';
  input: Shaped;
  output: Shaped;
  upstream: number[];
  grad: number[];
}
const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/transpose_T.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

beforeAll(async () => {
  await nb.init();
});

describe('T and mT against PyTorch', () => {
  it('has the cases it expects', () => {
    expect(fixtures.cases.map((c) => `${c.attr}${JSON.stringify(c.input.shape)}`)).toEqual([
      'T[]',
      'T[5]',
      'T[2,3]',
      'T[2,3,4]',
      'T[2,1,3,2]',
      'mT[3,4]',
      'mT[2,3,4]',
      'mT[2,1,2,3]',
    ]);
  });

  for (const c of fixtures.cases) {
    it(`${c.attr} of ${JSON.stringify(c.input.shape)}: values and gradient exactly`, () => {
      const x = nb.tensor(Float32Array.from(c.input.data), {
        shape: c.input.shape,
        requiresGrad: true,
      });
      const y = x[c.attr];
      expect(y.shape).toEqual(c.output.shape);
      // A permutation moves float32 values without arithmetic: equality is exact.
      expect(Array.from(y.toArray())).toEqual(Array.from(Float32Array.from(c.output.data)));
      y.backward(nb.tensor(Float32Array.from(c.upstream), { shape: c.output.shape }));
      expect(Array.from(x.grad!.toArray())).toEqual(Array.from(Float32Array.from(c.grad)));
    });
  }
});

describe('T and mT', () => {
  it('pass gradcheck', () => {
    nb.manualSeed(7);
    for (const shape of [[], [4], [3, 2], [2, 3, 4], [1, 2, 3, 2]]) {
      const x = nb.randn(shape).requiresGrad_();
      expect(nb.gradcheck((t) => t.T, [x]).ok, `T ${JSON.stringify(shape)}`).toBe(true);
      if (shape.length >= 2)
        expect(nb.gradcheck((t) => t.mT, [x]).ok, `mT ${JSON.stringify(shape)}`).toBe(true);
    }
  });

  it('T of a 0-d or 1-d tensor is a new handle on the same data', () => {
    for (const x of [nb.tensor(2.5), nb.arange(4).float()]) {
      const y = x.T;
      expect(y).not.toBe(x);
      expect(y.shape).toEqual(x.shape);
      expect(y.ptr).toBe(x.ptr);
      y.dispose();
      expect(x.tolist()).toEqual(x.ndim ? [0, 1, 2, 3] : 2.5); // still alive
    }
    const m = nb.ones([2, 3]);
    expect(m.T.ptr).not.toBe(m.ptr); // 2-d and up are copies (nabla stores contiguously)
  });

  it('reverses every dim, for int32 too', () => {
    const x = nb.tensor(
      Int32Array.from({ length: 24 }, (_, i) => i),
      { shape: [2, 3, 4], dtype: 'int32' },
    );
    const y = x.T;
    expect([y.shape, y.dtype]).toEqual([[4, 3, 2], 'int32']);
    const xs = x.tolist() as number[][][];
    const ys = y.tolist() as number[][][];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expect(ys[k][j][i]).toBe(xs[i][j][k]);
  });

  it('mT refuses fewer than two dims with a ShapeError', () => {
    expect(() => nb.arange(3).mT).toThrow(nb.ShapeError);
    expect(() => nb.arange(3).mT).toThrow(
      'mT: needs a matrix or a batch of matrices (ndim >= 2), got shape [3]',
    );
    expect(() => nb.tensor(1).mT).toThrow(
      'mT: needs a matrix or a batch of matrices (ndim >= 2), got shape []',
    );
  });
});
