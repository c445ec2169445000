// Shape, indexing, sorting, window and sampling ops (tril/triu, flip, roll, repeat, tile,
// expand, pad, unfold/fold, scatter, maskedSelect, nonzero, topk/sort/argsort, linspace,
// einsum, multinomial, randperm): forward and gradients against PyTorch 1.13
// (test/fixtures/ops_shape.json from scripts/fixtures/make_shape_fixtures.py), gradcheck,
// semantics the fixtures cannot hold (NaN order, randomness), and the error contract.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { EXACT, expectClose, opFixtureTests, type OpFixtures } from './helpers/fixtures.js';

const F = nb.nn.functional;
type Op = (...xs: nb.Tensor[]) => nb.Tensor;

const fixtures = JSON.parse(
  readFileSync(new URL('./fixtures/ops_shape.json', import.meta.url), 'utf8'),
) as OpFixtures;

const OPS: Record<string, Op> = {
  tril: (x) => x.tril(),
  tril_diag1: (x) => x.tril(1),
  tril_diag_neg1_3d: (x) => nb.tril(x, -1),
  triu: (x) => x.triu(),
  triu_diag_neg1: (x) => x.triu(-1),
  triu_diag2_3d: (x) => nb.triu(x, 2),
  tril_int32: (x) => x.tril(),

  flip_dim0: (x) => x.flip(0),
  flip_dims_0_2: (x) => x.flip([0, 2]),
  flip_neg_dim: (x) => nb.flip(x, -1),
  roll_dim1: (x) => x.roll(2, 1),
  roll_neg_shift: (x) => x.roll(-1, 0),
  roll_two_dims: (x) => x.roll([1, -2], [0, 2]),
  roll_flat: (x) => x.roll(3),
  roll_shift_over_size: (x) => nb.roll(x, 7, -1),

  repeat_2d: (x) => x.repeat([2, 3]),
  repeat_new_dims: (x) => x.repeat([2, 1, 2]),
  repeat_3d: (x) => nb.repeat(x, [1, 2, 2]),
  tile_short_dims: (x) => x.tile([2]),
  tile_long_dims: (x) => nb.tile(x, [2, 1, 2]),
  expand_minus1: (x) => x.expand([-1, 4]),
  expand_new_leading: (x) => x.expand([2, 3, -1]),
  expand_int32: (x) => x.expand([2, 3]),

  pad_constant_last: (x) => F.pad(x, [1, 2]),
  pad_constant_value_2d: (x) => F.pad(x, [2, 0, 1, 1], { value: -1.5 }),
  pad_constant_three_dims: (x) => F.pad(x, [0, 1, 1, 0, 1, 1]),
  pad_constant_negative: (x) => F.pad(x, [-1, 2, 1, -1]),
  pad_reflect_1d: (x) => F.pad(x, [2, 3], { mode: 'reflect' }),
  pad_reflect_2d: (x) => F.pad(x, [1, 2, 2, 1], { mode: 'reflect' }),
  pad_reflect_unbatched: (x) => F.pad(x, [1, 1, 2, 0], { mode: 'reflect' }),
  pad_replicate_1d: (x) => F.pad(x, [3, 1], { mode: 'replicate' }),
  pad_replicate_2d: (x) => F.pad(x, [2, 1, 0, 2], { mode: 'replicate' }),
  pad_replicate_3d: (x) => F.pad(x, [1, 0, 0, 1, 1, 1], { mode: 'replicate' }),
  pad_circular_1d: (x) => F.pad(x, [2, 3], { mode: 'circular' }),
  pad_circular_2d: (x) => F.pad(x, [1, 2, 3, 0], { mode: 'circular' }),
  pad_reflect_negative: (x) => F.pad(x, [2, -3, -1, 1], { mode: 'reflect' }),
  pad_replicate_negative: (x) => F.pad(x, [-2, 1], { mode: 'replicate' }),
  pad_circular_negative: (x) => F.pad(x, [2, -3, -1, 2], { mode: 'circular' }),

  unfold_basic: (x) => F.unfold(x, 2),
  unfold_pad_stride_dil: (x) =>
    F.unfold(x, [2, 3], { dilation: [2, 1], padding: [1, 2], stride: [2, 3] }),
  unfold_unbatched: (x) => F.unfold(x, 3, { padding: 1 }),
  unfold_stride2: (x) => F.unfold(x, 3, { stride: 2 }),
  fold_basic: (x) => F.fold(x, [4, 5], 2),
  fold_pad_stride_dil: (x) =>
    F.fold(x, [6, 7], [2, 3], { dilation: [2, 1], padding: [1, 2], stride: [2, 3] }),
  fold_unbatched: (x) => F.fold(x, 4, 3, { padding: 1 }),

  scatter_src_dim0: (x, i, s) => x.scatter(0, i, s),
  scatter_src_dim1_larger_src: (x, i, s) => x.scatter(1, i, s),
  scatter_value: (x, i) => x.scatter(1, i, -2.5),
  scatter_src_3d_neg_dim: (x, i, s) => nb.scatter(x, -1, i, s),
  scatter_int32: (x, i, s) => x.scatter(0, i, s),

  masked_select: (x, m) => x.maskedSelect(m),
  masked_select_bcast_mask: (x, m) => x.maskedSelect(m),
  masked_select_bcast_input: (x, m) => nb.maskedSelect(x, m),
  nonzero_int32: (x) => x.nonzero(),
  nonzero_float_3d: (x) => nb.nonzero(x),
  nonzero_1d: (x) => x.nonzero(),

  topk_values: (x) => x.topk(3)[0],
  topk_indices: (x) => x.topk(3)[1],
  topk_smallest_dim0: (x) => x.topk(2, 0, false)[0],
  topk_smallest_dim0_indices: (x) => nb.topk(x, 2, 0, false)[1],
  topk_3d_dim1: (x) => x.topk(2, 1)[0],
  topk_k0: (x) => x.topk(0)[0],
  sort_values: (x) => x.sort()[0],
  sort_indices: (x) => x.sort()[1],
  sort_desc_dim0: (x) => x.sort(0, true)[0],
  sort_desc_dim0_indices: (x) => nb.sort(x, 0, true)[1],
  sort_3d_dim1: (x) => x.sort(1)[0],
  sort_stable_ties_indices: (x) => x.sort(-1, false, { stable: true })[1],
  sort_stable_desc_ties_indices: (x) => x.sort(-1, true, { stable: true })[1],
  sort_int32: (x) => x.sort(-1)[0],
  argsort: (x) => x.argsort(),
  argsort_desc_dim0_stable: (x) => nb.argsort(x, 0, true, { stable: true }),

  linspace_5: () => nb.linspace(0, 1, 5),
  linspace_neg_even: () => nb.linspace(3, -2.5, 8),
  linspace_one: () => nb.linspace(2, 7, 1),
  linspace_many: () => nb.linspace(-1, 1, 101),

  einsum_matmul: (a, b) => nb.einsum('ij,jk->ik', a, b),
  einsum_implicit: (a, b) => nb.einsum('ij,jk', a, b),
  einsum_bmm: (a, b) => nb.einsum('bij,bjk->bik', a, b),
  einsum_attention: (q, k) => nb.einsum('bhqd,bhkd->bhqk', q, k),
  einsum_outer: (a, b) => nb.einsum('i,j->ij', a, b),
  einsum_dot: (a, b) => nb.einsum('i,i->', a, b),
  einsum_transpose: (x) => nb.einsum('ij->ji', x),
  einsum_permute_3d: (x) => nb.einsum('abc->cab', x),
  einsum_row_sum: (x) => nb.einsum('ij->i', x),
  einsum_total: (x) => nb.einsum('ijk->', x),
  einsum_sum_unshared: (a, b) => nb.einsum('ij,kl->ik', a, b),
  einsum_batch_outer_keep: (a, b) => nb.einsum('bi,bj->bij', a, b),
  einsum_elementwise: (a, b) => nb.einsum('ij,ij->ij', a, b),
  einsum_three: (a, b, c) => nb.einsum('ij,jk,kl->il', a, b, c),
  einsum_ellipsis_matmul: (a, b) => nb.einsum('...ij,...jk->...ik', a, b),
  einsum_ellipsis_bcast: (a, b) => nb.einsum('...ij,...jk', a, b),
  einsum_ellipsis_transpose: (x) => nb.einsum('...ij->...ji', x),
};

/** Sums of many products (matmul-like einsum, fold's overlaps) round like matmul does. */
const tolFor = (name: string) =>
  /^(einsum|fold|unfold|linspace)/.test(name) ? { rtol: 1e-5, atol: 1e-5 } : {};

beforeAll(async () => {
  await nb.init();
});

describe(`shape ops vs PyTorch ${fixtures.torch}`, () => {
  opFixtureTests(fixtures, OPS, tolFor);
});

// ------------------------------------------------------------------ gradcheck

const leaf = (shape: number[]): nb.Tensor => {
  const v = Float32Array.from(nb.randn(shape).toArray());
  return nb.tensor(v, { shape, requiresGrad: true });
};

/** A shuffled grid 0.25 apart: sorting never meets a tie within a finite-difference step. */
const distinct = (shape: number[]): nb.Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  const perm = nb.randperm(n).toArray();
  const v = Float32Array.from(perm, (p) => (p - n / 2) * 0.25);
  return nb.tensor(v, { shape, requiresGrad: true });
};

const idx = (values: number[], shape = [values.length]): nb.Tensor =>
  nb.tensor(Int32Array.from(values), { dtype: 'int32', shape });

const GRAD_CASES: Record<string, { fn: Op; inputs: () => nb.Tensor[] }> = {
  tril: { fn: (x) => x.tril(-1), inputs: () => [leaf([2, 3, 4])] },
  triu: { fn: (x) => x.triu(1), inputs: () => [leaf([4, 3])] },
  flip: { fn: (x) => x.flip([0, 1]), inputs: () => [leaf([3, 4])] },
  roll: { fn: (x) => x.roll([2, -1], [1, 0]), inputs: () => [leaf([3, 4])] },
  roll_flat: { fn: (x) => x.roll(5), inputs: () => [leaf([2, 3])] },
  repeat: { fn: (x) => x.repeat([2, 1, 3]), inputs: () => [leaf([2, 2])] },
  tile: { fn: (x) => x.tile([3]), inputs: () => [leaf([2, 2])] },
  expand: { fn: (x) => x.expand([2, -1, 3]), inputs: () => [leaf([4, 1])] },
  pad_constant: { fn: (x) => F.pad(x, [1, -1, 2, 0], { value: 3 }), inputs: () => [leaf([3, 4])] },
  pad_reflect: {
    fn: (x) => F.pad(x, [2, 1, 1, 2], { mode: 'reflect' }),
    inputs: () => [leaf([1, 3, 4])],
  },
  pad_replicate: {
    fn: (x) => F.pad(x, [2, 2], { mode: 'replicate' }),
    inputs: () => [leaf([2, 3])],
  },
  pad_circular: {
    fn: (x) => F.pad(x, [1, 3], { mode: 'circular' }),
    inputs: () => [leaf([1, 1, 4])],
  },
  unfold: {
    fn: (x) => F.unfold(x, [2, 2], { padding: 1, stride: [1, 2], dilation: [2, 1] }),
    inputs: () => [leaf([2, 2, 4, 5])],
  },
  fold: { fn: (x) => F.fold(x, [4, 4], 2, { stride: 1 }), inputs: () => [leaf([1, 8, 9])] },
  scatter: {
    fn: (x, s) => x.scatter(1, idx([2, 0, 1, 3], [2, 2]), s),
    inputs: () => [leaf([2, 4]), leaf([2, 3])],
  },
  scatter_value: {
    fn: (x) => x.scatter(0, idx([1, 0, 1], [1, 3]), 2),
    inputs: () => [leaf([2, 3])],
  },
  masked_select: {
    fn: (x) => x.maskedSelect(idx([1, 0, 1, 1, 0, 0], [2, 3])),
    inputs: () => [leaf([3])],
  },
  topk: { fn: (x) => x.topk(2, 0)[0], inputs: () => [distinct([4, 3])] },
  sort: { fn: (x) => x.sort(-1, true)[0], inputs: () => [distinct([3, 5])] },
  einsum_bmm: {
    fn: (a, b) => nb.einsum('bij,bjk->bik', a, b),
    inputs: () => [leaf([2, 3, 4]), leaf([2, 4, 2])],
  },
  einsum_ellipsis: {
    fn: (a, b) => nb.einsum('...i,...i->...', a, b),
    inputs: () => [leaf([2, 3, 4]), leaf([3, 4])],
  },
  einsum_single: { fn: (x) => nb.einsum('ijk->ki', x), inputs: () => [leaf([2, 3, 4])] },
};

describe('gradcheck: shape ops vs finite differences', () => {
  for (const [name, c] of Object.entries(GRAD_CASES)) {
    it(name, () => {
      nb.manualSeed(4321);
      const r = nb.gradcheck(c.fn, c.inputs());
      expect(r.ok, `${name}: ${JSON.stringify(r.worst)}`).toBe(true);
    });
  }
});

// ------------------------------------------------------------------ semantics beyond the fixtures

describe('sorting semantics', () => {
  it('NaN sorts as the largest value (last ascending, first descending), as in PyTorch', () => {
    const x = nb.tensor([2, NaN, -1, Infinity, 0]);
    expect(Array.from(x.argsort().toArray())).toEqual([2, 4, 0, 3, 1]);
    expect(Array.from(x.argsort(-1, true).toArray())).toEqual([1, 3, 0, 4, 2]);
    const [v, i] = x.topk(2);
    expect(Array.from(i.toArray())).toEqual([1, 3]);
    expect(Number.isNaN(v.toArray()[0])).toBe(true);
  });

  it('topk returns a destructurable pair and works on a 0-d tensor', () => {
    const [v, i] = nb.tensor(3.5).topk(1);
    expect(v.shape).toEqual([]);
    expect(i.shape).toEqual([]);
    expect(v.item()).toBe(3.5);
    expect(i.item()).toBe(0);
  });

  it('values of sort gather the input at the returned indices', () => {
    nb.manualSeed(7);
    const x = nb.randn([4, 33]);
    const [v, i] = x.sort(1);
    expectClose(x.gather(1, i).toArray(), Array.from(v.toArray()), EXACT);
    const row = Array.from(v.toArray()).slice(0, 33);
    expect(row).toEqual([...row].sort((a, b) => a - b));
  });

  it('sort and argsort of int32 keep the dtype and order', () => {
    const [v, i] = nb.tensor([[3, -1, 3, 0]]).sort();
    expect(v.dtype).toBe('int32');
    expect(Array.from(v.toArray())).toEqual([-1, 0, 3, 3]);
    expect(Array.from(i.toArray())).toEqual([1, 3, 0, 2]);
  });
});

describe('nonzero and maskedSelect', () => {
  it('asTuple gives one index tensor per dim', () => {
    const [r, c] = nb
      .tensor([
        [0, 1, 0],
        [2, 0, 3],
      ])
      .nonzero({ asTuple: true });
    expect(Array.from(r.toArray())).toEqual([0, 1, 1]);
    expect(Array.from(c.toArray())).toEqual([1, 0, 2]);
  });

  it('an all-zero input gives a [0, ndim] result', () => {
    expect(nb.zeros([2, 3], { dtype: 'int32' }).nonzero().shape).toEqual([0, 2]);
  });
});

describe('scatter', () => {
  it('the later of two writes to the same element wins', () => {
    const out = nb.zeros([3]).scatter(0, idx([1, 1]), nb.tensor([5.5, 7.5]));
    expect(Array.from(out.toArray())).toEqual([0, 7.5, 0]);
  });
});

describe('expand as PyTorch', () => {
  it('-1 keeps an existing dim and new dims are prepended', () => {
    expect(nb.zeros([3, 1]).expand([2, -1, 5]).shape).toEqual([2, 3, 5]);
  });
});

describe('multinomial', () => {
  /** Pearson's chi-square of observed counts against expected ones. */
  const chiSquare = (counts: number[], expected: number[]): number =>
    counts.reduce((s, c, k) => s + (c - expected[k]) ** 2 / expected[k], 0);

  it('with replacement, draw frequencies follow the probabilities (chi-square bound)', () => {
    nb.manualSeed(11);
    const p = [0.1, 0.2, 0, 0.4, 0.3];
    const n = 20000;
    const draws = nb.multinomial(nb.tensor([p, [...p].reverse()]), n, { replacement: true });
    expect(draws.shape).toEqual([2, n]);
    expect(draws.dtype).toBe('int32');
    const v = draws.toArray();
    for (let r = 0; r < 2; r++) {
      const probs = r === 0 ? p : [...p].reverse();
      const counts = [0, 0, 0, 0, 0];
      for (let s = 0; s < n; s++) counts[v[r * n + s] as number]++;
      expect(counts[2]).toBe(0); // both rows: the zero-probability category never appears
      const keep = probs.map((q, k) => (q > 0 ? k : -1)).filter((k) => k >= 0);
      // 4 categories -> 3 degrees of freedom; P(chi2_3 > 20) < 2e-4.
      const stat = chiSquare(
        keep.map((k) => counts[k]),
        keep.map((k) => probs[k] * n),
      );
      expect(stat).toBeLessThan(20);
    }
  });

  it('without replacement gives distinct indices with first-draw frequencies as probabilities', () => {
    nb.manualSeed(12);
    const p = [1, 2, 3, 4, 0, 6];
    const rows = 4000;
    const probs = nb.tensor(
      Float32Array.from({ length: rows * 6 }, (_, i) => p[i % 6]),
      {
        shape: [rows, 6],
      },
    );
    const draws = probs.multinomial(5).toArray();
    const first = [0, 0, 0, 0, 0, 0];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(draws.slice(r * 5, r * 5 + 5));
      expect(new Set(row).size).toBe(5);
      expect(row).not.toContain(4);
      first[row[0]]++;
    }
    const keep = [0, 1, 2, 3, 5];
    const stat = chiSquare(
      keep.map((k) => first[k]),
      keep.map((k) => (p[k] / 16) * rows),
    );
    expect(stat).toBeLessThan(20); // 4 degrees of freedom: P(chi2_4 > 20) < 5e-4
  });

  it('is reproducible under manualSeed', () => {
    nb.manualSeed(3);
    const a = nb.multinomial(nb.tensor([0.2, 0.3, 0.5]), 50, { replacement: true }).toArray();
    nb.manualSeed(3);
    const b = nb.multinomial(nb.tensor([0.2, 0.3, 0.5]), 50, { replacement: true }).toArray();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(new Set(a).size).toBe(3);
  });
});

describe('randperm', () => {
  it('is a permutation, reproducible under manualSeed and not the identity', () => {
    nb.manualSeed(5);
    const a = Array.from(nb.randperm(100).toArray());
    nb.manualSeed(5);
    const b = Array.from(nb.randperm(100).toArray());
    expect(a).toEqual(b);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(a).not.toEqual([...a].sort((x, y) => x - y));
    expect(nb.randperm(0).shape).toEqual([0]);
  });

  it('every position is uniform over many draws (chi-square bound)', () => {
    nb.manualSeed(6);
    const n = 5;
    const trials = 5000;
    const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    for (let t = 0; t < trials; t++) {
      nb.randperm(n)
        .toArray()
        .forEach((v, pos) => counts[pos][v as number]++);
    }
    for (const row of counts) {
      // 4 degrees of freedom per position
      expect(chi(row, trials / n)).toBeLessThan(20);
    }
  });

  const chi = (row: number[], e: number): number => row.reduce((s, c) => s + (c - e) ** 2 / e, 0);
});

// ------------------------------------------------------------------ errors

function expectError(fn: () => unknown, cls: abstract new (...a: never[]) => Error, re: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${cls.name} ${re}`).toBeInstanceOf(cls);
  expect((caught as Error).message).toMatch(re);
}

describe('errors name the op and the offending shapes or values', () => {
  const z = (...s: number[]) => nb.zeros(s);

  it('tril/triu need 2 dims', () => {
    expectError(() => z(3).tril(), nb.ShapeError, /^tril: .*\[3\]/);
    expectError(() => z(3).triu(), nb.ShapeError, /^triu: .*\[3\]/);
  });
  it('flip rejects repeated or out-of-range dims', () => {
    expectError(() => z(2, 3).flip([0, 0]), nb.ShapeError, /^flip: .*\[2, 3\]/);
    expectError(() => z(2, 3).flip(2), nb.ShapeError, /^flip: dim 2 .*\[2, 3\]/);
  });
  it('roll needs matching shifts and dims', () => {
    expectError(() => z(2, 3).roll([1, 2], [0]), nb.ShapeError, /^roll: .*\[1, 2\].*\[0\]/);
    expectError(() => z(2, 3).roll([1, 2]), nb.ShapeError, /^roll: .*\[1, 2\]/);
  });
  it('repeat needs a repeat per dim', () => {
    expectError(() => z(2, 3).repeat([2]), nb.ShapeError, /^repeat: .*\[2\].*\[2, 3\]/);
  });
  it('expand rejects -1 in a new leading dim and a non-1 mismatch', () => {
    expectError(() => z(3).expand([-1, 3]), nb.ShapeError, /^expand: .*\[3\].*\[-1, 3\]/);
    expectError(() => z(3).expand([2, 4]), nb.ShapeError, /^expand: .*\[3\].*\[2, 4\]/);
  });
  it('pad checks the tuple, the mode and the sizes', () => {
    expectError(() => F.pad(z(2, 3), [1]), nb.ShapeError, /^pad: .*\[1\].*\[2, 3\]/);
    expectError(() => F.pad(z(2, 3), [1, 1, 1, 1, 1, 1]), nb.ShapeError, /^pad: /);
    expectError(
      () => F.pad(z(1, 2, 3), [3, 0], { mode: 'reflect' }),
      nb.ValueError,
      /^pad: reflect .*\[3, 0\].*size 3.*\[1, 2, 3\]/,
    );
    expectError(
      () => F.pad(z(3), [1, 1], { mode: 'replicate' }),
      nb.ShapeError,
      /^pad: replicate .*\[3\]/,
    );
    expectError(
      () => F.pad(z(2, 3), [1, 1], { mode: 'wrap' as never }),
      nb.ValueError,
      /^pad: mode .*'wrap'/,
    );
    expectError(() => F.pad(z(2, 3), [-2, -2]), nb.ShapeError, /^pad: .*\[-2, -2\].*\[2, 3\]/);
  });
  it('unfold and fold check rank, geometry and block counts', () => {
    expectError(() => F.unfold(z(4, 4), 2), nb.ShapeError, /^unfold: .*\[4, 4\]/);
    expectError(
      () => F.unfold(z(1, 1, 2, 2), 3),
      nb.ShapeError,
      /^unfold: kernel \[3, 3\].*\[2, 2\]/,
    );
    expectError(() => F.unfold(z(1, 1, 4, 4), 2, { stride: 0 }), nb.ValueError, /^unfold: stride/);
    expectError(() => F.fold(z(1, 5, 9), 4, 2), nb.ShapeError, /^fold: .*\[1, 5, 9\].*\[2, 2\]/);
    expectError(() => F.fold(z(1, 8, 8), 4, 2), nb.ShapeError, /^fold: .*\[1, 8, 8\].*9/);
  });
  it('scatter checks dtypes, shapes and index range', () => {
    expectError(
      () => z(2, 3).scatter(1, idx([3], [1, 1]), z(1, 1)),
      nb.IndexError,
      /^scatter: index 3 .*\[2, 3\]/,
    );
    expectError(
      () => z(2, 3).scatter(1, idx([0], [1]), z(1, 1)),
      nb.ShapeError,
      /^scatter: index \[1\].*\[2, 3\]/,
    );
    expectError(
      () => z(2, 3).scatter(0, idx([0], [1, 1]), nb.zeros([1, 1], { dtype: 'int32' })),
      nb.DTypeError,
      /^scatter: .*int32.*float32/,
    );
    expectError(
      () => z(2, 3).scatter(0, z(1, 1), 1),
      nb.DTypeError,
      /^scatter: index must be int32/,
    );
  });
  it('maskedSelect needs an int32 mask that broadcasts', () => {
    expectError(() => z(2, 3).maskedSelect(z(2, 3)), nb.DTypeError, /^maskedSelect: .*float32/);
    expectError(
      () => z(2, 3).maskedSelect(nb.zeros([4], { dtype: 'int32' })),
      nb.ShapeError,
      /^maskedSelect: .*\[2, 3\].*\[4\]/,
    );
  });
  it('topk and sort check k and dim', () => {
    expectError(() => z(2, 3).topk(4), nb.ValueError, /^topk: k 4 .*\[2, 3\]/);
    expectError(() => z(2, 3).sort(2), nb.ShapeError, /^sort: dim 2 .*\[2, 3\]/);
    expectError(() => z(2, 3).argsort(-3), nb.ShapeError, /^argsort: dim -3 .*\[2, 3\]/);
    expectError(
      () => nb.tensor([1, 2 ** 24 + 1], { dtype: 'int32' }).sort(),
      nb.ValueError,
      /^sort: int32 values of shape \[2\] reach 16777217/,
    );
  });
  it('multinomial rejects bad distributions and counts as PyTorch does', () => {
    const p = (v: number[]) => nb.tensor(v, { dtype: 'float32' });
    expectError(
      () => p([0.5, -0.1]).multinomial(1),
      nb.ValueError,
      /^multinomial: (?=.*\[2\])(?=.*-0\.1)/,
    );
    expectError(
      () => p([0, 0]).multinomial(1),
      nb.ValueError,
      /^multinomial: row 0 .*\[2\] sums to 0/,
    );
    expectError(() => p([1, NaN]).multinomial(1), nb.ValueError, /^multinomial: .*NaN/);
    expectError(
      () => p([1, 2]).multinomial(3),
      nb.ValueError,
      /^multinomial: cannot draw 3 .*2 categories/,
    );
    expectError(
      () => p([1, 0, 0]).multinomial(2),
      nb.ValueError,
      /^multinomial: row 0 .*1 non-zero categories/,
    );
    expectError(() => p([1, 2]).multinomial(0), nb.ValueError, /^multinomial: numSamples .*0/);
    expectError(
      () => nb.zeros([1, 2, 2]).multinomial(1),
      nb.ShapeError,
      /^multinomial: .*\[1, 2, 2\]/,
    );
  });
  it('multinomial needs float32 probabilities', () => {
    expectError(
      () => nb.tensor([1, 2]).multinomial(1),
      nb.DTypeError,
      /^multinomial: probs must be float32, got int32/,
    );
  });
  it('randperm and linspace check their counts', () => {
    expectError(() => nb.randperm(-1), nb.ValueError, /^randperm: .*-1/);
    expectError(() => nb.linspace(0, 1, 2.5), nb.ValueError, /^linspace: steps .*2\.5/);
  });
  it('einsum checks subscripts against operands', () => {
    expectError(
      () => nb.einsum('ij,jk->ik', z(2, 3)),
      nb.ValueError,
      /^einsum: .*2 operand subscripts but 1/,
    );
    expectError(
      () => nb.einsum('ij,jk->ik', z(2, 3), z(4, 2)),
      nb.ShapeError,
      /^einsum: subscript 'j' has size 3 and 4/,
    );
    expectError(
      () => nb.einsum('ijk->i', z(2, 3)),
      nb.ShapeError,
      /^einsum: operand 0 \[2, 3\] has 2 dims/,
    );
    expectError(() => nb.einsum('ii->i', z(2, 2)), nb.ValueError, /^einsum: operand 0 repeats/);
    expectError(() => nb.einsum('ij->k', z(2, 2)), nb.ValueError, /^einsum: output subscript 'k'/);
  });
});

describe('memory', () => {
  it('composite ops free their temporaries at once: a forward leaves only its outputs', () => {
    nb.manualSeed(8);
    const base = nb.randn([2, 3, 4, 5]);
    const probs = nb.rand([3, 6]);
    const m = nb.tensor([1, 0, 1, 1, 0], { dtype: 'int32' });
    const at = nb.tensor([[[[4, 1]]]], { dtype: 'int32' });
    const forwards: Record<string, (x: nb.Tensor) => nb.Tensor | nb.Tensor[]> = {
      tril: (x) => x.tril(),
      flip: (x) => x.flip([0, 3]),
      roll: (x) => x.roll([1, 2], [1, 3]),
      roll_flat: (x) => x.roll(3),
      repeat: (x) => x.repeat([1, 2, 1, 1, 2]),
      pad_reflect: (x) => F.pad(x, [1, 1, 2, 2], { mode: 'reflect' }),
      pad_constant: (x) => F.pad(x, [1, 1]),
      unfold: (x) => F.unfold(x, 2),
      scatter: (x) => x.scatter(3, at, 1),
      maskedSelect: (x) => x.maskedSelect(m),
      sort: (x) => x.sort(1),
      topk_0d: (x) => x.sum().topk(1),
      argsort: (x) => x.argsort(2),
      einsum: (x) => nb.einsum('abcd,abed->abce', x, x),
      einsum_ellipsis: (x) => nb.einsum('...cd->...', x),
      multinomial: () => probs.multinomial(4),
      multinomial_replacement: () => probs.multinomial(4, { replacement: true }),
    };
    // Without grad nothing is saved for a backward, so only the outputs may stay alive (the
    // recorded case, with its saved masks and indices, is covered by the tidy test below).
    for (const [name, f] of Object.entries(forwards)) {
      const before = nb.memory().tensors;
      const out = nb.noGrad(() => f(base));
      const outs = Array.isArray(out) ? out : [out];
      const extra = name === 'topk_0d' ? 1 : 0; // its input `x.sum()`
      expect(nb.memory().tensors - before, name).toBe(outs.length + extra);
    }
  });

  it('forward and backward inside tidy leave the heap as they found it', () => {
    const before = nb.memory().tensors;
    nb.tidy(() => {
      for (const c of Object.values(GRAD_CASES)) {
        nb.manualSeed(9);
        const inputs = c.inputs();
        c.fn(...inputs)
          .sum()
          .backward();
        for (const t of inputs) {
          t.grad?.dispose();
          t.grad = null;
        }
      }
    });
    expect(nb.memory().tensors).toBe(before);
  });
});
